//! Guaranteed deletes: a delete that failed for want of a connection keeps being tried in the
//! background until the node is gone, as Apache Curator's `delete().guaranteed()` does.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::handle::Warden;
use super::metrics::Metrics;
use crate::backoff::Backoff;
use crate::error::{Error, Result};

/// First pause between background attempts; it doubles up to [`PAUSE_MAX`].
const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// One pending delete: the version to delete at, and a counter that changes whenever the
/// entry is registered again, so the task that finishes an older request does not remove a
/// newer one.
#[derive(Debug, Clone, Copy)]
struct Pending {
    version: Option<i32>,
    registration: u64,
}

/// The deletes a warden still owes, by path.
#[derive(Debug, Default)]
pub(crate) struct PendingDeletes {
    entries: Mutex<BTreeMap<String, Pending>>,
    registrations: std::sync::atomic::AtomicU64,
}

impl PendingDeletes {
    /// Records a pending delete. Returns `true` when no background task serves this path
    /// yet (the caller must start one); an existing task picks up the new version.
    fn register(&self, metrics: &Metrics, path: &str, version: Option<i32>) -> bool {
        let registration = self.registrations.fetch_add(1, Ordering::Relaxed);
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        let fresh = entries
            .insert(
                path.to_owned(),
                Pending {
                    version,
                    registration,
                },
            )
            .is_none();
        metrics
            .pending_deletes
            .store(entries.len() as i64, Ordering::Relaxed);
        fresh
    }

    /// The current request for `path`, if still pending.
    fn get(&self, path: &str) -> Option<Pending> {
        self.entries.lock().ok()?.get(path).copied()
    }

    /// Removes `path` if its entry is still registration `registration`. Returns whether it
    /// did (otherwise a newer request arrived and the task must go on).
    fn finish(&self, metrics: &Metrics, path: &str, registration: u64) -> bool {
        let Ok(mut entries) = self.entries.lock() else {
            return true;
        };
        let done = match entries.get(path) {
            Some(pending) if pending.registration != registration => false,
            _ => {
                entries.remove(path);
                true
            }
        };
        metrics
            .pending_deletes
            .store(entries.len() as i64, Ordering::Relaxed);
        done
    }

    /// Forgets `path` whatever its registration (the warden closed).
    fn abandon(&self, metrics: &Metrics, path: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(path);
            metrics
                .pending_deletes
                .store(entries.len() as i64, Ordering::Relaxed);
        }
    }

    fn paths(&self) -> Vec<String> {
        self.entries
            .lock()
            .map(|entries| entries.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Whether a failed delete is worth finishing in the background: the failure came from the
/// connection or the session, not from the node.
fn worth_pursuing(error: &Error) -> bool {
    error.is_transient()
}

impl Warden {
    /// Deletes `path` (only at `version`, when given), and keeps trying in the background if
    /// the connection prevents it now.
    ///
    /// The delete is first tried like [`Warden::delete`], with this handle's retry policy and
    /// deadline. If it still fails for a connection or session reason, the path is
    /// registered as pending (see [`Warden::pending_deletes`] and the `pending_deletes`
    /// metric), the error is returned, and a background task keeps deleting it — across
    /// reconnections and new sessions, pausing between attempts (100 ms doubling to 5 s,
    /// jittered) — until the delete succeeds, the node turns out to be gone already, the
    /// delete fails for a reason of the node's own (`BadVersion`, `NotEmpty`, `NoAuth`; logged
    /// as a warning), or the warden closes. Registering the same path again while it is
    /// pending replaces the version to delete at.
    ///
    /// Use it for nodes whose leftover would do harm, such as a lock node after the holder
    /// is done: an error from this call then means "not deleted yet", not "will not be
    /// deleted".
    ///
    /// # Errors
    /// The error of the immediate attempt. Connection errors (`ConnectionLoss`,
    /// `NotConnected`, `OperationTimeout`, `SessionMoved`, `Throttled`), `SessionExpired` and
    /// `Timeout` (the errors [`Error::is_transient`] holds for) leave the delete pending in
    /// the background. Anything else is final and
    /// nothing stays pending: `NoNode` (it may have been ours, applied before a lost reply),
    /// `BadVersion`, `NotEmpty`, `NoAuth`, `InvalidPath` (also for the root), `Closed`.
    pub async fn delete_guaranteed(&self, path: &str, version: Option<i32>) -> Result<()> {
        let error = match self.delete(path, version).await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        if !worth_pursuing(&error) || self.is_closed() {
            return Err(error);
        }
        let inner = &self.inner;
        if inner.guaranteed.register(&inner.metrics, path, version) {
            info!(%path, %error, "delete failed; retrying it in the background");
            let warden = self.detached();
            let path = path.to_owned();
            tokio::spawn(async move { pursue(warden, path).await });
        } else {
            debug!(%path, "delete already pending; version updated");
        }
        Err(error)
    }

    /// The paths whose guaranteed delete ([`Warden::delete_guaranteed`]) is still being
    /// tried in the background, in order.
    pub fn pending_deletes(&self) -> Vec<String> {
        self.inner.guaranteed.paths()
    }
}

/// Deletes `path` until it is gone, the failure is final, or the warden closes.
async fn pursue(warden: Warden, path: String) {
    let inner = &warden.inner;
    let mut shutdown = inner.shutdown.subscribe();
    // Jittered, so many wardens that lost the same server do not retry in step.
    let mut pause = Backoff::new(PAUSE_FIRST, PAUSE_MAX);
    loop {
        let Some(pending) = inner.guaranteed.get(&path) else {
            return;
        };
        if *shutdown.borrow_and_update() {
            warn!(%path, "warden closed before a guaranteed delete was done");
            inner.guaranteed.abandon(&inner.metrics, &path);
            return;
        }
        // Waits for a connected session (bounded by the connection timeout, then again).
        let outcome = match warden.connected_client().await {
            Ok((client, _)) => client.delete(&path, pending.version).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(()) | Err(Error::NoNode) => {
                if inner
                    .guaranteed
                    .finish(&inner.metrics, &path, pending.registration)
                {
                    info!(%path, "guaranteed delete done");
                    return;
                }
                // A newer request for the same path arrived meanwhile: serve it too.
                continue;
            }
            Err(Error::Closed) => {
                warn!(%path, "warden closed before a guaranteed delete was done");
                inner.guaranteed.abandon(&inner.metrics, &path);
                return;
            }
            Err(error) if worth_pursuing(&error) => {
                debug!(%path, %error, "guaranteed delete will try again");
            }
            Err(error) => {
                if inner
                    .guaranteed
                    .finish(&inner.metrics, &path, pending.registration)
                {
                    warn!(%path, %error, "guaranteed delete gave up");
                    return;
                }
                continue;
            }
        }
        tokio::select! {
            biased;
            () = tokio::time::sleep(pause.next_pause()) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_replace_and_finish_only_their_own() {
        let metrics = Metrics::default();
        let pending = PendingDeletes::default();
        assert!(pending.register(&metrics, "/a", Some(1)));
        let first = pending.get("/a").unwrap();
        // A second request for the same path reuses the running task, with the new version.
        assert!(!pending.register(&metrics, "/a", Some(2)));
        assert!(pending.register(&metrics, "/b", None));
        assert_eq!(pending.paths(), ["/a", "/b"]);
        assert_eq!(metrics.snapshot().pending_deletes, 2);
        // The task that served the first request must not drop the second.
        assert!(!pending.finish(&metrics, "/a", first.registration));
        let second = pending.get("/a").unwrap();
        assert_eq!(second.version, Some(2));
        assert!(pending.finish(&metrics, "/a", second.registration));
        pending.abandon(&metrics, "/b");
        assert!(pending.paths().is_empty());
        assert_eq!(metrics.snapshot().pending_deletes, 0);
    }

    #[test]
    fn only_connection_failures_are_pursued() {
        for error in [
            Error::ConnectionLoss,
            Error::NotConnected,
            Error::Timeout,
            Error::OperationTimeout,
            Error::SessionExpired,
        ] {
            assert!(worth_pursuing(&error), "{error}");
        }
        for error in [
            Error::NoNode,
            Error::BadVersion,
            Error::NotEmpty,
            Error::NoAuth,
            Error::Closed,
        ] {
            assert!(!worth_pursuing(&error), "{error}");
        }
    }
}
