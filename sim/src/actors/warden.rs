//! Follows one warden's connection events: they must come in the documented order, none
//! dropped, `Suspended` no later than the read timeout and `Lost` no later than the session
//! timeout after the last contact with a server.

use std::time::Duration;

use zkwarden::ConnectionState;
use zkwarden::warden::ConnectionUpdate;

use super::Ctx;
use crate::check_recipes::{self, Seen};

/// Slack on "`Lost` within the session timeout": the warden's timer fires at its deadline on
/// the paused clock; this only absorbs the instant a reply is being processed.
const LOST_SLACK: Duration = Duration::from_millis(100);

/// Runs until the warden closes, then checks the order of what it reported.
pub(super) async fn follow(ctx: Ctx) {
    let mut events = ctx.warden.events();
    let first = ctx.warden.connection();
    let mut seen = vec![Seen {
        state: first.state,
        generation: first.generation,
        at: ctx.rec.now(),
    }];
    // The contact a deadline was already checked for (no second check of the same one).
    let mut checked = None;
    loop {
        let state = seen.last().map(|s| s.state);
        let heard = ctx.warden.last_heard();
        // Suspended: `Lost` is due a session timeout after the last contact. Connected:
        // the connection must be given up (`Suspended`) a read timeout (two thirds of the
        // session timeout) after the last contact.
        let due = match (state, heard) {
            (Some(ConnectionState::Suspended), Some(heard)) if checked != Some(heard) => {
                Some(heard + ctx.session_timeout + LOST_SLACK)
            }
            (Some(ConnectionState::Connected | ConnectionState::Reconnected), Some(heard))
                if checked != Some(heard) =>
            {
                Some(heard + ctx.session_timeout * 2 / 3 + LOST_SLACK)
            }
            _ => None,
        };
        let timer = crate::scenario::sleep_until_due(due);
        tokio::select! {
            biased;
            update = events.next_update() => match update {
                Some(ConnectionUpdate::Event(e)) => {
                    ctx.trace.log(format_args!(
                        "warden {}: {:?} (generation {}, session {})",
                        ctx.id, e.state, e.generation, e.session_id
                    ));
                    let at = ctx.rec.now();
                    if !matches!(e.state, ConnectionState::Connected | ConnectionState::Reconnected) {
                        ctx.rec.with(|r| r.doubts.push((e.session_id.0, at)));
                    }
                    seen.push(Seen { state: e.state, generation: e.generation, at });
                }
                Some(ConnectionUpdate::Lagged { missed }) => {
                    ctx.rec.violate(format!(
                        "at {}: warden {}: {missed} connection events dropped",
                        ctx.trace.time(), ctx.id
                    ));
                }
                None => break,
            },
            () = timer => {
                checked = heard;
                let now = ctx.warden.connection().state;
                let silent = ctx.warden.last_heard() == heard;
                if silent && state == Some(now) && now != ConnectionState::Suspended {
                    ctx.rec.violate(format!(
                        "at {}: warden {}: still {now:?} {:?} after the last contact with a \
                         server (read timeout {:?})",
                        ctx.trace.time(), ctx.id, ctx.session_timeout * 2 / 3 + LOST_SLACK,
                        ctx.session_timeout * 2 / 3
                    ));
                    break;
                }
                if now == ConnectionState::Suspended && silent {
                    ctx.rec.violate(format!(
                        "at {}: warden {}: still Suspended {:?} after the last contact with a \
                         server (session timeout {:?}): Lost not reported in time",
                        ctx.trace.time(), ctx.id, ctx.session_timeout + LOST_SLACK,
                        ctx.session_timeout
                    ));
                    break;
                }
            }
        }
    }
    if let Err(e) = check_recipes::warden_states(ctx.id, &seen) {
        ctx.rec.violate(e);
    }
}
