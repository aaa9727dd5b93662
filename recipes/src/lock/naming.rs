//! Lock node names and their order.
//!
//! A contender's node is named `[_c_<guid>-]lock-<sequence>`: the optional protection prefix
//! (Curator writes a dashed UUID, go-zookeeper 32 hex digits), the lock name, and the
//! sequence number the server appended. Only the text after the *last* `lock-` decides the
//! order, so the prefix never matters.
//!
//! The server formats the sequence number as a signed 32-bit integer (`%010d`); after 2^31
//! sequential creates under one parent it turns negative (`-2147483648`). Numbers are
//! therefore compared as integers with wrap-around ("serial number") arithmetic: `b` comes
//! after `a` when `b - a`, computed modulo 2^32, is positive. That is a total order for any
//! set of contenders whose numbers lie within 2^31 of each other, which holds for every set
//! of live contenders in practice.

use std::cmp::Ordering;

/// The lock name every contender node carries before its sequence number (Curator's
/// `InterProcessMutex` uses the same).
pub const LOCK_NAME: &str = "lock-";

/// The sequence number of a contender node name, or `None` when the name is not a lock node
/// (no `lock-`, or no integer after the last one).
///
/// ```
/// use zkwarden_recipes::lock::sequence_of;
///
/// assert_eq!(sequence_of("_c_6f1d2a4e-0b1c-4d2e-8f3a-5b6c7d8e9f00-lock-0000000007"), Some(7));
/// assert_eq!(sequence_of("lock--2147483648"), Some(i32::MIN));
/// assert_eq!(sequence_of("leader-0000000001"), None);
/// ```
pub fn sequence_of(name: &str) -> Option<i32> {
    sequence_after(name, LOCK_NAME)
}

/// The lock name in the nodes of kazoo's `Lock` recipe (`<32 hex>__lock__<sequence>`).
pub const KAZOO_LOCK_NAME: &str = "__lock__";

/// Like [`sequence_of`], but also takes kazoo's `__lock__` nodes as contenders.
///
/// ```
/// use zkwarden_recipes::lock::sequence_of_any;
///
/// assert_eq!(sequence_of_any("0f3e9a1c5b7d4e2f8a6b1c3d5e7f9a0b__lock__0000000012"), Some(12));
/// assert_eq!(sequence_of_any("_c_6f1d2a4e-0b1c-4d2e-8f3a-5b6c7d8e9f00-lock-0000000007"), Some(7));
/// ```
pub fn sequence_of_any(name: &str) -> Option<i32> {
    sequence_of(name).or_else(|| sequence_after(name, KAZOO_LOCK_NAME))
}

/// The sequence number after the last `marker` in `name`.
pub(crate) fn sequence_after(name: &str, marker: &str) -> Option<i32> {
    let at = name.rfind(marker)?;
    parse_sequence(&name[at + marker.len()..])
}

/// A sequence number as the server writes it: an optional `-` and decimal digits.
fn parse_sequence(digits: &str) -> Option<i32> {
    // `i32::from_str` accepts a leading `+`, which the server never writes.
    if digits.starts_with('+') {
        return None;
    }
    digits.parse().ok()
}

/// The read lock's marker in a read/write lock node name (Curator's `__READ__`).
pub const READ_NAME: &str = "__READ__";
/// The write lock's marker in a read/write lock node name (Curator's `__WRIT__`).
pub const WRITE_NAME: &str = "__WRIT__";

/// What a node under a read/write lock path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The kind and sequence number of a read/write lock node: the text after the last of
/// either marker decides, as in Curator (which sorts by that text).
pub(crate) fn rw_node(name: &str) -> Option<(Access, i32)> {
    let read = name.rfind(READ_NAME);
    let write = name.rfind(WRITE_NAME);
    let (access, at) = match (read, write) {
        (Some(r), Some(w)) if r > w => (Access::Read, r),
        (_, Some(w)) => (Access::Write, w),
        (Some(r), None) => (Access::Read, r),
        (None, None) => return None,
    };
    // Both markers are eight characters long.
    parse_sequence(&name[at + READ_NAME.len()..]).map(|seq| (access, seq))
}

/// Compares two sequence numbers with wrap-around: `Less` when `a` was issued before `b`.
pub fn compare_sequences(a: i32, b: i32) -> Ordering {
    a.wrapping_sub(b).cmp(&0)
}

/// Sorts contender names into acquisition order (the holder first) and drops names that are
/// not lock nodes. The order is computed relative to one of the names, so it is a proper
/// total order even across the wrap to negative numbers.
///
/// ```
/// use zkwarden_recipes::lock::sort_contenders;
///
/// let sorted = sort_contenders(vec![
///     "lock--2147483647".to_owned(),
///     "other".to_owned(),
///     "lock-2147483647".to_owned(),
/// ]);
/// assert_eq!(sorted, ["lock-2147483647", "lock--2147483647"]);
/// ```
pub fn sort_contenders(names: Vec<String>) -> Vec<String> {
    sort_by_wrapping_sequence(names, sequence_of)
}

/// Keeps the names `sequence` finds a number in and sorts them by that number with
/// wrap-around, relative to one of them (a total order across the wrap); equal numbers by name.
pub(crate) fn sort_by_wrapping_sequence(
    names: Vec<String>,
    sequence: impl Fn(&str) -> Option<i32>,
) -> Vec<String> {
    let mut numbered: Vec<(i32, String)> = names
        .into_iter()
        .filter_map(|name| sequence(&name).map(|seq| (seq, name)))
        .collect();
    let Some(anchor) = numbered.first().map(|(seq, _)| *seq) else {
        return Vec::new();
    };
    numbered.sort_by(|(a, name_a), (b, name_b)| {
        a.wrapping_sub(anchor)
            .cmp(&b.wrapping_sub(anchor))
            .then_with(|| name_a.cmp(name_b))
    });
    numbered.into_iter().map(|(_, name)| name).collect()
}

/// Where `own` stands among `children`: `Ok(None)` when it holds the lock, `Ok(Some(name))`
/// with the contender immediately before it otherwise, `Err(())` when `own` is not among
/// them (its node is gone).
pub(crate) fn predecessor_of<'a>(children: &'a [String], own: &str) -> Result<Option<&'a str>, ()> {
    closest_ahead(children, own, sequence_of)
}

/// [`predecessor_of`], counting kazoo's `__lock__` nodes as contenders too.
pub(crate) fn predecessor_among_any<'a>(
    children: &'a [String],
    own: &str,
) -> Result<Option<&'a str>, ()> {
    closest_ahead(children, own, sequence_of_any)
}

/// The nodes among `children` that come before `own` in `sequence` order, each with its
/// offset (negative: the closer to zero, the closer to `own`). `Err(())` when `own` is not
/// among `children` or has no sequence number.
pub(crate) fn ahead_of<'a, F>(
    children: &'a [String],
    own: &str,
    sequence: F,
) -> Result<impl Iterator<Item = (i32, &'a str)> + use<'a, F>, ()>
where
    F: Fn(&str) -> Option<i32>,
{
    let own_seq = sequence(own).ok_or(())?;
    if !children.iter().any(|c| c == own) {
        return Err(());
    }
    let own = own.to_owned();
    // Relative to our own number, the nodes ahead are exactly the negative offsets.
    Ok(children
        .iter()
        .filter(move |c| **c != own)
        .filter_map(move |c| sequence(c).map(|seq| (seq.wrapping_sub(own_seq), c.as_str())))
        .filter(|(offset, _)| *offset < 0))
}

/// The node immediately before `own` (`Ok(None)` when `own` is first); see [`ahead_of`].
pub(crate) fn closest_ahead<'a>(
    children: &'a [String],
    own: &str,
    sequence: impl Fn(&str) -> Option<i32>,
) -> Result<Option<&'a str>, ()> {
    let best = ahead_of(children, own, sequence)?.max_by_key(|(offset, _)| *offset);
    Ok(best.map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoo_nodes_count_only_when_asked() {
        let children: Vec<String> = [
            "_c_6f1d2a4e-0b1c-4d2e-8f3a-5b6c7d8e9f00-lock-0000000004",
            "0f3e9a1c5b7d4e2f8a6b1c3d5e7f9a0b__lock__0000000003",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let own = children[0].as_str();
        assert_eq!(predecessor_of(&children, own), Ok(None));
        assert_eq!(
            predecessor_among_any(&children, own),
            Ok(Some(children[1].as_str()))
        );
    }

    #[test]
    fn predecessor_is_the_closest_earlier_node() {
        let children: Vec<String> = ["lock-0000000003", "x-lock-0000000001", "lock-0000000005"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(predecessor_of(&children, "x-lock-0000000001"), Ok(None));
        assert_eq!(
            predecessor_of(&children, "lock-0000000005"),
            Ok(Some("lock-0000000003"))
        );
        assert_eq!(predecessor_of(&children, "lock-0000000009"), Err(()));
    }

    #[test]
    fn wrapped_numbers_come_after_the_largest() {
        let children: Vec<String> = ["lock-2147483646", "lock-2147483647", "lock--2147483648"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            predecessor_of(&children, "lock--2147483648"),
            Ok(Some("lock-2147483647"))
        );
        assert_eq!(predecessor_of(&children, "lock-2147483646"), Ok(None));
        assert_eq!(compare_sequences(i32::MAX, i32::MIN), Ordering::Less);
    }
}
