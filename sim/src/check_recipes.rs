//! The invariants of the warden and the recipes, as pure functions over what a run recorded:
//! connection events, holding intervals, fenced writes, counters. Each violation names the
//! simulated time and the actors (the runner adds the seed).

use std::time::Duration;

use zkwarden::ConnectionState;

/// One connection event as a warden reported it, at a simulated time since the run began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The state.
    pub state: ConnectionState,
    /// The session generation the event names.
    pub generation: u64,
    /// When it was reported.
    pub at: Duration,
}

/// The warden's documented order: `Connected` first (generation 1); `Suspended` only from a
/// connected state; `Reconnected` after `Suspended` (same generation) or after `Lost` (the
/// next generation); `Lost` from any state of a live session, with its generation;
/// `AuthFailed` only after `Lost`; nothing after `Closed`. The generation never goes down
/// and only a new session raises it, by one.
///
/// # Errors
/// The first step out of that order, named with the warden and the time.
pub fn warden_states(warden: usize, events: &[Seen]) -> Result<(), String> {
    use ConnectionState::*;
    let mut prev: Option<Seen> = None;
    for &e in events {
        let ok = match (prev.map(|p| p.state), e.state) {
            (None, Connected | ReadOnly) => e.generation == 1,
            (None, _) => false,
            (Some(Closed), _) => false,
            (Some(_), Closed) => true,
            (Some(Connected | Reconnected | ReadOnly), Suspended) => true,
            (Some(Suspended), Reconnected | ReadOnly) => true,
            (Some(Lost), Reconnected | ReadOnly) => true,
            (Some(Connected | Reconnected | ReadOnly | Suspended), Lost) => true,
            (Some(AuthFailed), Lost) => true,
            (Some(Lost), AuthFailed) => true,
            _ => false,
        };
        let generation_ok = match prev {
            None => true,
            Some(p) if p.state == Lost && matches!(e.state, Reconnected | ReadOnly) => {
                e.generation == p.generation + 1
            }
            // After AuthFailed, the next Lost names the generation being built.
            Some(p) => e.generation == p.generation || e.state == Closed,
        };
        if !ok || !generation_ok {
            return Err(format!(
                "at {:.3}s: warden {warden}: {:?} (generation {}) after {:?}: out of the \
                 documented order",
                e.at.as_secs_f64(),
                e.state,
                e.generation,
                prev.map(|p| (p.state, p.generation))
            ));
        }
        prev = Some(e);
    }
    Ok(())
}

/// One holder of a lock, a lease or a leadership: from `from` until `until`, the earlier of
/// when it was told it lost (`lost()` resolved) and when it began to release. `until` is
/// `None` while it still believes it holds.
#[derive(Debug, Clone)]
pub struct Holding {
    /// Who held (warden and actor), for messages.
    pub who: String,
    /// Acquired at.
    pub from: Duration,
    /// Stopped believing it holds at.
    pub until: Option<Duration>,
    /// The session that holds.
    pub session: i64,
}

/// At no instant more than `max` holders believe they hold. A holder whose belief ended at
/// the instant another's began does not count against it (the simulated clock stands still
/// while both happen).
///
/// # Errors
/// The instant and the holders involved.
pub fn holders(what: &str, max: usize, held: &[Holding], end: Duration) -> Result<(), String> {
    // Ends sort before starts at one instant.
    let mut marks: Vec<(Duration, bool, usize)> = Vec::new();
    for (i, h) in held.iter().enumerate() {
        // Half-open: a holding told it lost at the instant it was granted held nothing.
        let until = h.until.unwrap_or(end).max(h.from);
        if until > h.from {
            marks.push((h.from, true, i));
            marks.push((until, false, i));
        }
    }
    marks.sort_by_key(|&(at, start, i)| (at, start, i));
    let mut now: Vec<usize> = Vec::new();
    for (at, start, i) in marks {
        if !start {
            now.retain(|&j| j != i);
            continue;
        }
        now.push(i);
        if now.len() > max {
            let who: Vec<String> = now
                .iter()
                .map(|&j| {
                    format!(
                        "{} (since {:?}, until {:?})",
                        held[j].who, held[j].from, held[j].until
                    )
                })
                .collect();
            return Err(format!(
                "at {:.3}s: {what}: {} holders at once (at most {max}), none told it lost: {}",
                at.as_secs_f64(),
                now.len(),
                who.join(", ")
            ));
        }
    }
    Ok(())
}

/// A fenced write the server applied, in zxid order: the fencing token of the holder that
/// wrote it.
#[derive(Debug, Clone)]
pub struct FencedWrite {
    /// The zxid that applied it.
    pub zxid: i64,
    /// The writer's fencing token.
    pub token: i64,
    /// Who wrote, for messages.
    pub who: String,
}

/// Writes fenced by one exclusive lock (or leadership) land in token order: once a holder's
/// write was accepted, no write of an earlier holder (a stale one) is.
///
/// # Errors
/// The stale write and the newer one it followed.
pub fn fenced_writes(what: &str, writes: &[FencedWrite]) -> Result<(), String> {
    for w in writes.windows(2) {
        if w[1].token < w[0].token {
            return Err(format!(
                "{what}: a stale holder's fenced write was accepted: {} (token {}) at zxid {} \
                 after {} (token {}) at zxid {}",
                w[1].who, w[1].token, w[1].zxid, w[0].who, w[0].token, w[0].zxid
            ));
        }
    }
    Ok(())
}

/// A counter incremented by one per applied change: its final value equals the changes the
/// server applied, and lies between the increments acknowledged and those plus the ones
/// whose outcome was lost.
///
/// # Errors
/// The figures that disagree.
pub fn counter(
    final_value: i64,
    applied: usize,
    acked: usize,
    doubtful: usize,
) -> Result<(), String> {
    if final_value != applied as i64 {
        return Err(format!(
            "counter: the value is {final_value} but the server applied {applied} increments \
             (an update was lost or counted twice)"
        ));
    }
    if final_value < acked as i64 || final_value > (acked + doubtful) as i64 {
        return Err(format!(
            "counter: the value is {final_value}, but {acked} increments were acknowledged and \
             {doubtful} more had a lost outcome"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConnectionState::*;

    fn s(state: ConnectionState, generation: u64, ms: u64) -> Seen {
        Seen {
            state,
            generation,
            at: Duration::from_millis(ms),
        }
    }

    #[test]
    fn warden_states_follow_the_documented_order() {
        let good = [
            s(Connected, 1, 0),
            s(Suspended, 1, 5),
            s(Reconnected, 1, 6),
            s(Suspended, 1, 7),
            s(Lost, 1, 9),
            s(Reconnected, 2, 10),
            s(Closed, 2, 11),
        ];
        assert!(warden_states(0, &good).is_ok());
        // A skipped Lost: a new generation straight after Suspended.
        let skipped = [s(Connected, 1, 0), s(Suspended, 1, 1), s(Reconnected, 2, 2)];
        assert!(warden_states(0, &skipped).is_err());
        // Reconnected without a Suspended before it.
        assert!(warden_states(0, &[s(Connected, 1, 0), s(Reconnected, 1, 1)]).is_err());
        // A generation skipped.
        let jump = [s(Connected, 1, 0), s(Lost, 1, 1), s(Reconnected, 3, 2)];
        assert!(warden_states(0, &jump).is_err());
        // Anything after Closed.
        assert!(warden_states(0, &[s(Connected, 1, 0), s(Closed, 1, 1), s(Lost, 1, 2)]).is_err());
    }

    fn h(from: u64, until: Option<u64>) -> Holding {
        Holding {
            who: format!("h{from}"),
            from: Duration::from_millis(from),
            until: until.map(Duration::from_millis),
            session: 1,
        }
    }

    #[test]
    fn two_holders_at_once_are_caught_but_a_hand_over_at_one_instant_is_not() {
        let end = Duration::from_secs(1);
        assert!(holders("mutex", 1, &[h(0, Some(10)), h(10, None)], end).is_ok());
        assert!(holders("mutex", 1, &[h(0, Some(11)), h(10, None)], end).is_err());
        assert!(holders("mutex", 1, &[h(0, None), h(10, Some(20))], end).is_err());
        assert!(holders("lease", 2, &[h(0, None), h(10, Some(20))], end).is_ok());
        // Told it lost at the instant it was granted: it held nothing.
        assert!(
            holders(
                "mutex",
                1,
                &[h(10, Some(10)), h(10, Some(10)), h(0, None)],
                end
            )
            .is_ok()
        );
    }

    #[test]
    fn a_stale_fenced_write_is_caught() {
        let w = |zxid, token| FencedWrite {
            zxid,
            token,
            who: "w".into(),
        };
        assert!(fenced_writes("mutex", &[w(1, 5), w(2, 5), w(3, 7)]).is_ok());
        assert!(fenced_writes("mutex", &[w(1, 7), w(2, 5)]).is_err());
    }

    #[test]
    fn a_counter_sums_exactly() {
        assert!(counter(3, 3, 2, 1).is_ok());
        assert!(counter(4, 3, 2, 2).is_err());
        assert!(counter(3, 3, 4, 0).is_err());
    }
}
