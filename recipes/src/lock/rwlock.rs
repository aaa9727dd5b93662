//! [`ReadWriteLock`]: shared readers, one exclusive writer, on the znodes of Apache
//! Curator's `InterProcessReadWriteLock`.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::lock::ReadWriteLock;
//!
//! let lock = ReadWriteLock::new(&warden, "/app/catalog-lock");
//! // Many readers at once...
//! let read = lock.read().lock().await?;
//! let (catalog, _) = warden.get_data("/app/catalog").await?;
//! read.release().await?;
//! // ...or one writer, whose writes fail on the server once its lock is gone.
//! let write = lock.write().lock().await?;
//! let _token = write.fencing_token();
//! warden
//!     .transaction()
//!     .fenced_by(&write)
//!     .set_data("/app/catalog", catalog.to_vec(), None)
//!     .commit()
//!     .await?;
//! write.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Protocol
//!
//! Both sides create ephemeral sequential nodes under the same path, with Curator's names:
//! `<path>/_c_<uuid>-__READ__<sequence>` for a reader, `<path>/_c_<uuid>-__WRIT__<sequence>`
//! for a writer. All nodes are ordered by the number after the last marker.
//!
//! * A **writer** holds the lock when its node is the first of all; otherwise it watches the
//!   node just before its own (reader or writer).
//! * A **reader** holds the lock when no writer's node comes before its own; otherwise it
//!   watches the first writer's node. Readers therefore share the lock, and a reader that
//!   arrives after a waiting writer queues behind it (writers are not starved).
//!
//! # Re-entrancy
//!
//! Curator lets the thread that holds the write lock take the read lock at once (and both
//! are re-entrant per thread). Threads do not map onto async tasks, so here the grant is
//! explicit: [`ReadLock::lock_while_writing`] takes the write guard as proof and is granted
//! at once while that writer's node exists. Like Curator 5.4, this read node is ordered by
//! its own (later) number: once the write guard is released, a writer queued before the
//! read node may take the write lock while the read guard is still held. Release the read
//! guard before (or together with) the write guard unless no other writer can be waiting.
//! Taking the write lock while holding only the read lock deadlocks in Curator and waits
//! forever here too; do not.
//!
//! # Suspended / Lost
//!
//! As for the [`Mutex`](super::Mutex): waiting goes on through `Suspended` (a waiter whose
//! node vanished with an expired session creates a new one and queues again), and a held
//! guard's [`LockGuard::lost`] resolves as the configured
//! [`LockSafety`] says — at `Suspended` by default, and always when the session is lost or
//! the node deleted. A reader that lost its lock must assume a writer may be in; a writer
//! must assume readers or another writer may be.

use std::fmt;

use tokio::time::Instant;
use zkwarden::warden::LockSafety;
use zkwarden::{Error, Result, Warden};

use super::guard::LockGuard;
use super::internals::{Driver, LockInternals};
use super::naming::{Access, READ_NAME, WRITE_NAME, ahead_of, closest_ahead, rw_node};

/// A read/write lock on a ZooKeeper path, compatible with Curator's
/// `InterProcessReadWriteLock` on the same path (see the [module docs](self)).
#[derive(Clone)]
pub struct ReadWriteLock {
    read: LockInternals,
    write: LockInternals,
}

impl fmt::Debug for ReadWriteLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadWriteLock")
            .field("path", &self.write.path)
            .field("payload_len", &self.write.payload.len())
            .field("safety", &self.write.safety)
            .finish_non_exhaustive()
    }
}

impl ReadWriteLock {
    /// A read/write lock on `path` (the parent of the contender nodes). Its payload is this
    /// process's holder id (`host:pid`); its safety is the warden's
    /// [`Warden::lock_safety`].
    pub fn new(warden: &Warden, path: impl Into<String>) -> ReadWriteLock {
        let path = path.into();
        ReadWriteLock {
            read: LockInternals::new(warden, path.clone(), READ_NAME),
            write: LockInternals::new(warden, path, WRITE_NAME),
        }
    }

    /// Sets the data every node of this lock carries (Curator's `lockData`).
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> ReadWriteLock {
        let payload = payload.into();
        self.read.payload = payload.clone();
        self.write.payload = payload;
        self
    }

    /// Sets when guards report the lock as lost (see [`LockGuard::lost`]).
    pub fn safety(mut self, safety: LockSafety) -> ReadWriteLock {
        self.read.safety = safety;
        self.write.safety = safety;
        self
    }

    /// The lock's path.
    pub fn path(&self) -> &str {
        &self.write.path
    }

    /// The shared side.
    pub fn read(&self) -> ReadLock {
        ReadLock {
            internals: self.read.clone(),
        }
    }

    /// The exclusive side.
    pub fn write(&self) -> WriteLock {
        WriteLock {
            internals: self.write.clone(),
        }
    }
}

/// The shared side of a [`ReadWriteLock`].
#[derive(Clone, Debug)]
pub struct ReadLock {
    internals: LockInternals,
}

/// The exclusive side of a [`ReadWriteLock`].
#[derive(Clone, Debug)]
pub struct WriteLock {
    internals: LockInternals,
}

/// The sequence number of a read or write node.
fn rw_sequence(name: &str) -> Option<i32> {
    rw_node(name).map(|(_, seq)| seq)
}

/// A writer's rule: first of all holds; otherwise watch the node just before.
struct Writers;

impl Driver for Writers {
    fn standing<'a>(&self, children: &'a [String], own: &str) -> Result<Option<&'a str>, ()> {
        closest_ahead(children, own, rw_sequence)
    }
}

/// A reader's rule: holds when no writer is ahead; otherwise watch the first writer. A
/// reader granted under a write guard holds while that writer's node exists.
struct Readers<'g> {
    under_write: Option<&'g str>,
}

impl Driver for Readers<'_> {
    fn standing<'a>(&self, children: &'a [String], own: &str) -> Result<Option<&'a str>, ()> {
        let ahead = ahead_of(children, own, rw_sequence)?;
        if let Some(writer) = self.under_write {
            if children.iter().any(|c| c == writer) {
                return Ok(None);
            }
        }
        let first_writer = ahead
            .filter(|(_, name)| matches!(rw_node(name), Some((Access::Write, _))))
            .min_by_key(|(offset, _)| *offset);
        Ok(first_writer.map(|(_, name)| name))
    }
}

impl ReadLock {
    /// Waits for a read lock as long as it takes (behind every writer queued before it).
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn lock(&self) -> Result<LockGuard> {
        self.acquire(None, true, None).await?.ok_or(Error::Timeout)
    }

    /// Waits for a read lock until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first (no node is left behind);
    /// otherwise as [`ReadLock::lock`].
    pub async fn lock_until(&self, deadline: Instant) -> Result<LockGuard> {
        self.acquire(Some(deadline), true, None)
            .await?
            .ok_or(Error::Timeout)
    }

    /// Takes a read lock if no writer holds or waits for the lock: `Ok(None)` otherwise.
    ///
    /// # Errors
    /// As [`ReadLock::lock`].
    pub async fn try_lock(&self) -> Result<Option<LockGuard>> {
        self.acquire(None, false, None).await
    }

    /// Takes a read lock at once while `write` holds this lock's write side (Curator's
    /// re-entrancy of the write-lock holder; see the [module docs](self) for the ordering
    /// caveat once the write guard is released).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `write` is not a write guard of this lock;
    /// [`Error::Timeout`] never (it does not wait unless the write node vanished, in which
    /// case it queues as [`ReadLock::lock`] does); otherwise as [`ReadLock::lock`].
    pub async fn lock_while_writing(&self, write: &LockGuard) -> Result<LockGuard> {
        let node = write.node_path();
        let name = node
            .strip_prefix(self.internals.path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|name| !name.contains('/'))
            .filter(|name| matches!(rw_node(name), Some((Access::Write, _))))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{node} is not a write lock node of {}",
                    self.internals.path
                ))
            })?;
        self.acquire(None, true, Some(name))
            .await?
            .ok_or(Error::Timeout)
    }

    async fn acquire(
        &self,
        deadline: Option<Instant>,
        wait: bool,
        under_write: Option<&str>,
    ) -> Result<Option<LockGuard>> {
        let driver = Readers { under_write };
        self.internals.acquire(&driver, deadline, wait).await
    }
}

impl WriteLock {
    /// Waits for the write lock as long as it takes.
    ///
    /// # Errors
    /// As [`Mutex::lock`](super::Mutex::lock).
    pub async fn lock(&self) -> Result<LockGuard> {
        self.internals
            .acquire(&Writers, None, true)
            .await?
            .ok_or(Error::Timeout)
    }

    /// Waits for the write lock until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first (no node is left behind);
    /// otherwise as [`WriteLock::lock`].
    pub async fn lock_until(&self, deadline: Instant) -> Result<LockGuard> {
        self.internals
            .acquire(&Writers, Some(deadline), true)
            .await?
            .ok_or(Error::Timeout)
    }

    /// Takes the write lock if nobody (reader or writer) holds or waits for it: `Ok(None)`
    /// otherwise.
    ///
    /// # Errors
    /// As [`WriteLock::lock`].
    pub async fn try_lock(&self) -> Result<Option<LockGuard>> {
        self.internals.acquire(&Writers, None, false).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn readers_share_until_a_writer_is_ahead() {
        let children = names(&[
            "_c_a-__READ__0000000001",
            "_c_b-__READ__0000000002",
            "_c_c-__WRIT__0000000003",
            "_c_d-__READ__0000000004",
            "_c_e-__WRIT__0000000005",
        ]);
        let readers = Readers { under_write: None };
        assert_eq!(
            readers.standing(&children, "_c_a-__READ__0000000001"),
            Ok(None)
        );
        assert_eq!(
            readers.standing(&children, "_c_b-__READ__0000000002"),
            Ok(None)
        );
        assert_eq!(
            readers.standing(&children, "_c_d-__READ__0000000004"),
            Ok(Some("_c_c-__WRIT__0000000003"))
        );
        assert_eq!(
            Writers.standing(&children, "_c_c-__WRIT__0000000003"),
            Ok(Some("_c_b-__READ__0000000002"))
        );
        assert_eq!(
            Writers.standing(&children, "_c_e-__WRIT__0000000005"),
            Ok(Some("_c_d-__READ__0000000004"))
        );
        assert_eq!(
            readers.standing(&children, "_c_x-__READ__0000000009"),
            Err(())
        );
    }

    #[test]
    fn a_reader_under_the_write_lock_is_granted_while_the_writer_exists() {
        let children = names(&[
            "__WRIT__0000000001",
            "__WRIT__0000000002",
            "__READ__0000000003",
        ]);
        let under = Readers {
            under_write: Some("__WRIT__0000000002"),
        };
        assert_eq!(under.standing(&children, "__READ__0000000003"), Ok(None));
        let gone = Readers {
            under_write: Some("__WRIT__0000000007"),
        };
        assert_eq!(
            gone.standing(&children, "__READ__0000000003"),
            Ok(Some("__WRIT__0000000001"))
        );
    }
}
