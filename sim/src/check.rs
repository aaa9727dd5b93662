//! The invariants: what every run must satisfy, whatever the faults. Each violation names the
//! seed (added by the runner), the simulated time and the actor.

use bytes::Bytes;
use std::collections::BTreeMap;
use zkwarden::Error;

use crate::model::Applied;

/// What a write call's tag tells about it afterwards.
#[derive(Debug, Clone)]
pub struct WriteCall {
    /// Who called.
    pub actor: usize,
    /// Description, for messages.
    pub what: String,
    /// The data it wrote (unique per call).
    pub tag: Bytes,
    /// Its outcome: `Ok`, or the error.
    pub outcome: Result<(), String>,
    /// `None` for success; for an error, whether it may have been applied.
    pub maybe_applied: Option<bool>,
    /// When it completed, for messages.
    pub at: String,
}

impl WriteCall {
    /// A write's outcome, classified.
    pub fn new(
        actor: usize,
        what: String,
        tag: Bytes,
        result: &Result<(), Error>,
        at: String,
    ) -> WriteCall {
        let (outcome, maybe_applied) = match result {
            Ok(()) => (Ok(()), None),
            Err(e) => (Err(e.to_string()), Some(maybe_applied(e))),
        };
        WriteCall {
            actor,
            what,
            tag,
            outcome,
            maybe_applied,
            at,
        }
    }
}

/// Whether a write that failed with `e` may have been applied: only when the outcome was
/// lost with the connection. Every other error is a server's answer (or a refusal before
/// sending), and says it was not.
pub fn maybe_applied(e: &Error) -> bool {
    e.is_connection_loss() || matches!(e, Error::OperationTimeout | Error::Timeout)
}

/// Acknowledged writes are in the log once; writes that failed without doubt are not;
/// writes whose outcome was lost are in it at most once.
pub fn writes(calls: &[WriteCall], applied: &[Applied]) -> Result<(), String> {
    let mut count: BTreeMap<&[u8], usize> = BTreeMap::new();
    for a in applied
        .iter()
        .filter(|a| a.kind == "create" || a.kind == "set")
    {
        *count.entry(a.data.as_ref()).or_default() += 1;
    }
    for call in calls {
        let n = count.get(call.tag.as_ref()).copied().unwrap_or(0);
        let wrong = match (&call.outcome, call.maybe_applied) {
            (Ok(()), _) if n != 1 => Some(format!("acknowledged but applied {n} times")),
            (Err(e), Some(false)) if n != 0 => Some(format!(
                "failed with \"{e}\" (certainly not applied) but applied {n} times"
            )),
            (Err(e), _) if n > 1 => Some(format!("failed with \"{e}\" and applied {n} times")),
            _ => None,
        };
        if let Some(wrong) = wrong {
            return Err(format!(
                "at {}: actor {}: write {} (data {:?}) {wrong}",
                call.at,
                call.actor,
                call.what,
                String::from_utf8_lossy(&call.tag)
            ));
        }
    }
    Ok(())
}

/// Replies of one batch (calls made back to back on one session) completed in call order.
pub fn call_order(actor: usize, at: &str, completed: &[usize]) -> Result<(), String> {
    if completed.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        Err(format!(
            "at {at}: actor {actor}: replies completed out of call order: {completed:?}"
        ))
    }
}

/// A read of `path` shows it as of zxid `shown` (its `mzxid`, or with `children` its
/// `pzxid`) after the reader had seen zxid `newest`: no change of the node (or of its child
/// list) may lie between the two, or the read went back in time.
pub fn fresh(
    applied: &[Applied],
    path: &str,
    children: bool,
    shown: i64,
    newest: i64,
) -> Result<(), String> {
    let changes = |a: &&Applied| {
        if children {
            a.kind != "set"
                && a.path
                    .rsplit_once('/')
                    .map(|(p, _)| if p.is_empty() { "/" } else { p })
                    == Some(path)
        } else {
            a.path == path
        }
    };
    match applied
        .iter()
        .filter(|a| a.zxid > shown && a.zxid <= newest)
        .find(changes)
    {
        Some(a) => Err(format!(
            "a read of {path} shows it as of zxid {shown:#x}, but the client had already seen \
             zxid {newest:#x}, and {} {} at zxid {:#x} in between: the read went back in time",
            a.kind, a.path, a.zxid
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(data: &'static [u8]) -> Applied {
        Applied {
            zxid: 1,
            session: 1,
            kind: "create",
            path: "/a".into(),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn a_write_failed_for_certain_must_not_be_in_the_log() {
        let call = WriteCall::new(
            0,
            "create /a".into(),
            Bytes::from_static(b"t1"),
            &Err(Error::NotConnected),
            "1s".into(),
        );
        assert!(writes(std::slice::from_ref(&call), &[]).is_ok());
        let err = writes(&[call], &[applied(b"t1")]).unwrap_err();
        assert!(err.contains("certainly not applied"), "{err}");
    }

    #[test]
    fn an_acknowledged_write_must_be_in_the_log_once() {
        let call = WriteCall::new(
            1,
            "set /a".into(),
            Bytes::from_static(b"t2"),
            &Ok(()),
            "2s".into(),
        );
        assert!(writes(std::slice::from_ref(&call), &[]).is_err());
        assert!(writes(std::slice::from_ref(&call), &[applied(b"t2")]).is_ok());
        assert!(writes(&[call], &[applied(b"t2"), applied(b"t2")]).is_err());
        assert!(call_order(0, "0s", &[2, 1]).is_err());
    }

    #[test]
    fn a_read_older_than_what_was_seen_went_back_in_time() {
        let log = [Applied {
            zxid: 7,
            session: 1,
            kind: "set",
            path: "/a".into(),
            data: Bytes::new(),
        }];
        // Seen zxid 9, then /a as of zxid 5: the set at 7 is missing.
        assert!(fresh(&log, "/a", false, 5, 9).is_err());
        assert!(fresh(&log, "/a", false, 7, 9).is_ok());
        assert!(fresh(&log, "/a", false, 5, 6).is_ok());
        // A child list ignores data changes of its children.
        assert!(fresh(&log, "/", true, 5, 9).is_ok());
    }
}
