//! Queue node names as Apache Curator writes and orders them: `queue-` plus a sequence
//! number, with a priority, a due time or an id between the two for the priority, delay and
//! id queues.

use std::cmp::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The name every item node of a Curator queue starts with.
pub const ITEM_PREFIX: &str = "queue-";

/// The separator around a due time or an id in a node name.
const SEPARATOR: char = '|';

/// How the items of one kind of queue are named after [`ITEM_PREFIX`] and ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `queue-<seq>`, in name order (Curator's `DistributedQueue`).
    Plain,
    /// `queue-<priority><seq>`, in name order, so lower priorities first.
    Priority,
    /// `queue-|<due epoch ms, hex>|<seq>`, by due time; only due items are taken.
    Delay,
    /// `queue-|<id>|<seq>`, in sequence order.
    Id,
}

impl Kind {
    /// Whether a consumer lists the queue again as soon as it changed, rather than after
    /// working through the items it has seen: an item put later may belong before them.
    pub(crate) fn relists_on_change(self) -> bool {
        matches!(self, Kind::Priority | Kind::Delay)
    }

    /// The item names among `children`, in the order they are taken. Other children are
    /// skipped (Curator logs them as foreign nodes).
    pub(crate) fn sort(self, children: Vec<String>) -> Vec<String> {
        let mut items: Vec<String> = children
            .into_iter()
            .filter(|c| c.starts_with(ITEM_PREFIX))
            .collect();
        match self {
            Kind::Plain | Kind::Priority => items.sort(),
            Kind::Delay => items.sort_by(|a, b| due_of(a).cmp(&due_of(b)).then_with(|| a.cmp(b))),
            Kind::Id => items.sort_by(|a, b| by_sequence(a, b)),
        }
        items
    }

    /// How long until `name` may be taken at `now` (`None`: now).
    pub(crate) fn wait_for(self, name: &str, now: SystemTime) -> Option<Duration> {
        if self != Kind::Delay {
            return None;
        }
        let due = UNIX_EPOCH + Duration::from_millis(u64::try_from(due_of(name)).unwrap_or(0));
        due.duration_since(now).ok().filter(|d| !d.is_zero())
    }

    /// The name (after [`ITEM_PREFIX`]) an item of `name` gets when it is put back: Curator
    /// keeps an id queue's id and drops a priority or due time.
    pub(crate) fn requeue_suffix(self, name: &str) -> String {
        match self {
            Kind::Id => id_suffix(&parse_id(name).0),
            Kind::Plain | Kind::Priority | Kind::Delay => String::new(),
        }
    }
}

/// The text after [`ITEM_PREFIX`] for `priority`: `1` and eight hex digits for a priority of
/// zero or more, `0` and the 32-bit two's complement for a negative one, so that name order
/// is priority order (as Curator's `priorityToString`).
pub(crate) fn priority_suffix(priority: i32) -> String {
    let sign = if priority >= 0 { '1' } else { '0' };
    // The two's complement bits, as Curator formats them.
    format!("{sign}{:08X}", priority as u32)
}

/// The text after [`ITEM_PREFIX`] for an item due at `due` (Curator's `epochToString`).
pub(crate) fn due_suffix(due: SystemTime) -> String {
    let millis = due
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{SEPARATOR}{millis:08X}{SEPARATOR}")
}

/// The due time in `name` in epoch milliseconds, 0 (due now) when it has none, as Curator's
/// `getEpoch`: the hex number between the last two separators.
pub(crate) fn due_of(name: &str) -> i64 {
    let Some(last) = name.rfind(SEPARATOR) else {
        return 0;
    };
    let Some(first) = name[..last].rfind(SEPARATOR) else {
        return 0;
    };
    if first == 0 || last <= first + 1 {
        return 0;
    }
    i64::from_str_radix(&name[first + 1..last], 16).unwrap_or(0)
}

/// The text after [`ITEM_PREFIX`] for an item with `id`; `/` and `|` become `_`, as Curator's
/// `fixId` has it.
pub(crate) fn id_suffix(id: &str) -> String {
    format!("{SEPARATOR}{}{SEPARATOR}", fix_id(id))
}

/// `id` as it appears in a node name: `/` and `|` replaced by `_`.
pub(crate) fn fix_id(id: &str) -> String {
    id.chars()
        .map(|c| if c == '/' || c == SEPARATOR { '_' } else { c })
        .collect()
}

/// The id in an id queue's node name and the name without it (`queue-<seq>`); a name without
/// two separators is its own id, as in Curator.
pub(crate) fn parse_id(name: &str) -> (String, String) {
    let Some(first) = name.find(SEPARATOR) else {
        return (name.to_owned(), name.to_owned());
    };
    let Some(len) = name[first + 1..].find(SEPARATOR) else {
        return (name.to_owned(), name.to_owned());
    };
    let second = first + 1 + len;
    (
        name[first + 1..second].to_owned(),
        format!("{}{}", &name[..first], &name[second + 1..]),
    )
}

/// Id queue order: the names without their ids, compared as text (as Curator does).
fn by_sequence(a: &str, b: &str) -> Ordering {
    parse_id(a).1.cmp(&parse_id(b).1).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_named_as_curator_names_them_and_sort_by_value() {
        assert_eq!(priority_suffix(0), "100000000");
        assert_eq!(priority_suffix(10), "10000000A");
        assert_eq!(priority_suffix(-1), "0FFFFFFFF");
        assert_eq!(priority_suffix(i32::MIN), "080000000");
        let names: Vec<String> = [5, -3, i32::MAX, 0, i32::MIN]
            .iter()
            .map(|p| format!("{ITEM_PREFIX}{}0000000001", priority_suffix(*p)))
            .collect();
        let sorted = Kind::Priority.sort(names.clone());
        assert_eq!(
            sorted,
            [&names[4], &names[1], &names[3], &names[0], &names[2]].map(String::clone)
        );
    }

    #[test]
    fn due_times_round_trip_and_order_the_delay_queue() {
        let due = UNIX_EPOCH + Duration::from_millis(0x0190_0000_0000);
        let name = format!("{ITEM_PREFIX}{}0000000003", due_suffix(due));
        assert_eq!(name, "queue-|19000000000|0000000003");
        assert_eq!(due_of(&name), 0x0190_0000_0000);
        assert_eq!(due_of("queue-0000000001"), 0);
        assert_eq!(
            due_of("|12|"),
            0,
            "Curator wants a separator after the start"
        );
        let early = format!("{ITEM_PREFIX}{}0000000009", due_suffix(UNIX_EPOCH));
        assert_eq!(
            Kind::Delay.sort(vec![name.clone(), early.clone(), "other".into()]),
            [early, name.clone()]
        );
        let before = due - Duration::from_millis(5);
        assert_eq!(
            Kind::Delay.wait_for(&name, before),
            Some(Duration::from_millis(5))
        );
        assert_eq!(Kind::Delay.wait_for(&name, due), None);
    }

    #[test]
    fn ids_are_cleaned_parsed_and_kept_on_requeue() {
        assert_eq!(id_suffix("a/b|c"), "|a_b_c|");
        let name = format!("{ITEM_PREFIX}{}0000000007", id_suffix("job-1"));
        assert_eq!(
            parse_id(&name),
            ("job-1".to_owned(), "queue-0000000007".to_owned())
        );
        assert_eq!(Kind::Id.requeue_suffix(&name), "|job-1|");
        assert_eq!(parse_id("queue-1").0, "queue-1");
        let later = format!("{ITEM_PREFIX}{}0000000008", id_suffix("a"));
        assert_eq!(
            Kind::Id.sort(vec![later.clone(), name.clone()]),
            [name, later]
        );
    }
}
