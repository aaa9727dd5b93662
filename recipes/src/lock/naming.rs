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
    let at = name.rfind(LOCK_NAME)?;
    let digits = &name[at + LOCK_NAME.len()..];
    // `i32::from_str` accepts a leading `+`, which the server never writes.
    if digits.starts_with('+') {
        return None;
    }
    digits.parse().ok()
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
    let mut numbered: Vec<(i32, String)> = names
        .into_iter()
        .filter_map(|name| sequence_of(&name).map(|seq| (seq, name)))
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
    let own_seq = sequence_of(own).ok_or(())?;
    if !children.iter().any(|c| c == own) {
        return Err(());
    }
    // Relative to our own number, predecessors are exactly the negative offsets; the closest
    // one is the largest of them.
    let best = children
        .iter()
        .filter(|c| c.as_str() != own)
        .filter_map(|c| sequence_of(c).map(|seq| (seq.wrapping_sub(own_seq), c.as_str())))
        .filter(|(offset, _)| *offset < 0)
        .max_by_key(|(offset, _)| *offset);
    Ok(best.map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

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
