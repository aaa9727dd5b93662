//! The contention loop every lock recipe shares (Curator's "lock internals"): create an
//! ephemeral sequential node, list the contenders, ask a [`Driver`] whether the node holds
//! the lock or which node to watch, wait, and look again.
//!
//! A recipe is a node name and a driver: the mutex's driver watches the node just before
//! its own, a reader's watches the first writer ahead of it.

use std::fmt;

use tokio::time::Instant;
use zkwarden::warden::{LockSafety, ParentMode};
use zkwarden::{CreateMode, Error, Result, SessionId, Warden};

use super::guard::LockGuard;

/// Decides, from the children of the lock path, where one contender stands.
pub(crate) trait Driver: Send + Sync {
    /// `Ok(None)` when `own` holds the lock, `Ok(Some(name))` with the child to watch
    /// otherwise, `Err(())` when `own` is not among `children` (its node is gone).
    fn standing<'a>(&self, children: &'a [String], own: &str) -> Result<Option<&'a str>, ()>;
}

/// A lock path, the name of this recipe's nodes under it, and how they are made.
#[derive(Clone)]
pub(crate) struct LockInternals {
    pub(crate) warden: Warden,
    pub(crate) path: String,
    /// The node name before the sequence number (`lock-`, `__READ__`, `__WRIT__`).
    pub(crate) name: &'static str,
    pub(crate) payload: Vec<u8>,
    pub(crate) safety: LockSafety,
}

impl fmt::Debug for LockInternals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockInternals")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("safety", &self.safety)
            .finish_non_exhaustive()
    }
}

/// How one round of contention ended.
enum Contended {
    Acquired(LockGuard),
    /// Someone else holds the lock (`try_lock` only).
    Busy,
    /// Our node is gone or belongs to an old session: make a new one.
    Again,
}

impl LockInternals {
    /// Internals for `path` with the path's trailing slashes removed.
    pub(crate) fn new(warden: &Warden, path: String, name: &'static str) -> LockInternals {
        LockInternals {
            safety: warden.lock_safety(),
            warden: warden.clone(),
            path: trim_path(path),
            name,
            payload: holder_id(),
        }
    }

    /// Contends until `driver` grants the lock (`Ok(Some)`), the deadline passes
    /// (`Err(Timeout)`), or, when `wait` is false, someone else holds it (`Ok(None)`).
    /// Dropping the future at any point leaves no node behind.
    pub(crate) async fn acquire(
        &self,
        driver: &dyn Driver,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<Option<LockGuard>> {
        let warden = match deadline {
            Some(at) => self.warden.with_deadline(at),
            None => self.warden.clone(),
        };
        let prefix = join(&self.path, self.name);
        loop {
            // A create abandoned midway is the janitor's to clean up.
            let created = warden
                .create(&prefix, &self.payload)
                .mode(CreateMode::EphemeralSequential)
                .protected()
                .parents(ParentMode::Container)
                .await?;
            // From here on, dropping this future deletes the node.
            let mut own = OwnNode::arm(&self.warden, created);
            let session = warden.session_id();
            let outcome = self
                .contend(driver, &warden, &own, session, deadline, wait)
                .await;
            match outcome {
                Ok(Contended::Acquired(guard)) => {
                    own.disarm();
                    return Ok(Some(guard));
                }
                Ok(Contended::Busy) => {
                    own.delete().await;
                    return Ok(None);
                }
                Ok(Contended::Again) => own.delete().await,
                Err(e) => {
                    own.delete().await;
                    return Err(e);
                }
            }
        }
    }

    /// Waits until the driver says `own` holds the lock (or, when `wait` is false, tells
    /// whether it does).
    async fn contend(
        &self,
        driver: &dyn Driver,
        warden: &Warden,
        own: &OwnNode,
        created_in: SessionId,
        deadline: Option<Instant>,
        wait: bool,
    ) -> Result<Contended> {
        let name = own.name();
        loop {
            if warden.session_id() != created_in && !owned(warden, own.path()).await? {
                return Ok(Contended::Again);
            }
            let children = match warden.get_children(&self.path).await {
                Ok(children) => children,
                // The container went away, and our node with it.
                Err(Error::NoNode) => return Ok(Contended::Again),
                Err(e) => return Err(e),
            };
            let Ok(standing) = driver.standing(&children, name) else {
                return Ok(Contended::Again);
            };
            let Some(watched) = standing else {
                return Ok(
                    match LockGuard::confirm(&self.warden, warden, own.path(), self.safety).await? {
                        Some(guard) => Contended::Acquired(guard),
                        None => Contended::Again,
                    },
                );
            };
            if !wait {
                return Ok(Contended::Busy);
            }
            let watched = join(&self.path, watched);
            let watcher = match warden.get_data_and_watch(&watched).await {
                Ok((_, _, watcher)) => watcher,
                // Gone between the listing and the read: look again.
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            // A read retried across a session change sets its watch on the new session,
            // while our node may have gone with the old one: look again first.
            if warden.session_id() != created_in {
                continue;
            }
            // Whatever fires (deletion, a data change, the end of the session), look again.
            wait_until(watcher, deadline).await?;
        }
    }
}

/// Awaits `fired` or fails with `Timeout` at `deadline`.
pub(crate) async fn wait_until<F: std::future::Future>(
    fired: F,
    deadline: Option<Instant>,
) -> Result<()> {
    match deadline {
        Some(at) => tokio::select! {
            biased;
            _ = fired => Ok(()),
            () = tokio::time::sleep_until(at) => Err(Error::Timeout),
        },
        None => {
            let _ = fired.await;
            Ok(())
        }
    }
}

/// Whether `path` exists and belongs to the warden's current session.
pub(crate) async fn owned(warden: &Warden, path: &str) -> Result<bool> {
    Ok(matches!(
        warden.exists(path).await?,
        Some(stat) if stat.ephemeral_owner == warden.session_id().0
    ))
}

/// This process's holder id: `host:pid`, the default payload of a lock node.
pub(crate) fn holder_id() -> Vec<u8> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}:{}", std::process::id()).into_bytes()
}

/// `path` without trailing slashes (the root stays `/`).
pub(crate) fn trim_path(mut path: String) -> String {
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    path
}

/// `parent/name`.
pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A contender node while we wait: deleted (guaranteed) if the wait is abandoned.
pub(crate) struct OwnNode {
    warden: Warden,
    path: String,
    armed: bool,
}

impl OwnNode {
    pub(crate) fn arm(warden: &Warden, path: String) -> OwnNode {
        OwnNode {
            warden: warden.clone(),
            path,
            armed: true,
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Deletes the node now. Failures that may pass stay pending in the warden's
    /// background; if this future is dropped midway, `Drop` starts the delete again.
    pub(crate) async fn delete(&mut self) {
        match self.warden.delete_guaranteed(&self.path, None).await {
            Ok(()) | Err(Error::NoNode) => {}
            Err(e) => tracing::debug!(path = %self.path, error = %e, "lock node delete pending"),
        }
        self.armed = false;
    }
}

impl Drop for OwnNode {
    fn drop(&mut self) {
        if self.armed {
            delete_in_background(&self.warden, &self.path);
        }
    }
}

/// Starts a guaranteed delete of `path` without waiting for it.
pub(crate) fn delete_in_background(warden: &Warden, path: &str) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(%path, "no runtime to delete a lock node; it goes with the session");
        return;
    };
    let warden = warden.clone();
    let path = path.to_owned();
    runtime.spawn(async move {
        match warden.delete_guaranteed(&path, None).await {
            Ok(()) | Err(Error::NoNode) => {}
            Err(e) => tracing::debug!(%path, error = %e, "lock node delete pending"),
        }
    });
}
