//! Contender node names of the election recipes and their order.
//!
//! A latch node is named `[_c_<uuid>-]latch-<sequence>` (Curator's `LeaderLatch`), a selector
//! node `[_c_<uuid>-]lock-<sequence>` (Curator's `LeaderSelector`, which queues through an
//! `InterProcessMutex`). Only the number after the *last* marker decides the order, and
//! numbers are compared with wrap-around, exactly as the lock recipe does (see
//! [`crate::lock::compare_sequences`]). Children without the marker take no part.

/// The marker before the sequence number of a [`LeaderLatch`](super::LeaderLatch) node, as
/// in Curator's `LeaderLatch`.
pub const LATCH_NAME: &str = "latch-";

/// The sequence number after the last `marker` in `name`, if there is one.
pub(crate) fn sequence_after(name: &str, marker: &str) -> Option<i32> {
    let at = name.rfind(marker)?;
    let digits = &name[at + marker.len()..];
    if digits.starts_with('+') {
        return None;
    }
    digits.parse().ok()
}

/// Keeps the names that carry `marker` and sorts them into queue order (the leader first).
/// Ordering is relative to one of the names, so it stays a total order across the wrap.
pub(crate) fn sort_by_sequence(names: Vec<String>, marker: &str) -> Vec<String> {
    crate::lock::naming::sort_by_wrapping_sequence(names, |name| sequence_after(name, marker))
}

/// Where a contender stands in the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// First: the leader.
    First,
    /// Behind this node (the closest one before it).
    Behind(&'a str),
    /// Not among the children at all (the node is gone).
    Missing,
}

/// Where `own` stands among `children`.
pub(crate) fn place_of<'a>(children: &'a [String], own: &str, marker: &str) -> Place<'a> {
    let Some(own_seq) = sequence_after(own, marker) else {
        return Place::Missing;
    };
    if !children.iter().any(|c| c == own) {
        return Place::Missing;
    }
    // Relative to our own number, the nodes before us have negative offsets; the closest
    // one has the largest.
    children
        .iter()
        .filter(|c| c.as_str() != own)
        .filter_map(|c| sequence_after(c, marker).map(|seq| (seq.wrapping_sub(own_seq), c)))
        .filter(|(offset, _)| *offset < 0)
        .max_by_key(|(offset, _)| *offset)
        .map_or(Place::First, |(_, name)| Place::Behind(name.as_str()))
}

/// `parent/name`, minding the root.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The path without trailing slashes (the root stays `/`).
pub(crate) fn trim_path(path: String) -> String {
    let mut path = path;
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn latch_names_sort_by_number_whatever_the_prefix() {
        let sorted = sort_by_sequence(
            names(&[
                "_c_9b2f6c1e-1111-4222-8333-444455556666-latch-0000000012",
                "latch-0000000003",
                "_c_00000000-0000-4000-8000-000000000000-lock-0000000001",
                "_c_ffffffff-1111-4222-8333-444455556666-latch-0000000007",
            ]),
            LATCH_NAME,
        );
        assert_eq!(
            sorted,
            names(&[
                "latch-0000000003",
                "_c_ffffffff-1111-4222-8333-444455556666-latch-0000000007",
                "_c_9b2f6c1e-1111-4222-8333-444455556666-latch-0000000012",
            ])
        );
    }

    #[test]
    fn place_is_first_behind_or_missing() {
        let children = names(&["latch-0000000003", "x-latch-0000000001", "latch-0000000005"]);
        assert_eq!(
            place_of(&children, "x-latch-0000000001", LATCH_NAME),
            Place::First
        );
        assert_eq!(
            place_of(&children, "latch-0000000005", LATCH_NAME),
            Place::Behind("latch-0000000003")
        );
        assert_eq!(
            place_of(&children, "latch-0000000009", LATCH_NAME),
            Place::Missing
        );
        assert_eq!(sequence_after("lock-+1", "lock-"), None);
        assert_eq!(
            sequence_after("latch--2147483648", LATCH_NAME),
            Some(i32::MIN)
        );
    }

    #[test]
    fn the_wrap_to_negative_numbers_keeps_the_order() {
        let children = names(&["latch-2147483647", "latch--2147483648"]);
        assert_eq!(
            place_of(&children, "latch--2147483648", LATCH_NAME),
            Place::Behind("latch-2147483647")
        );
        assert_eq!(
            sort_by_sequence(children, LATCH_NAME),
            names(&["latch-2147483647", "latch--2147483648"])
        );
    }
}
