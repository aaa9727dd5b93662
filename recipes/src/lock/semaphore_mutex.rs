//! [`SemaphoreMutex`]: a mutex made of a one-lease [`Semaphore`], on the znodes of Apache
//! Curator's `InterProcessSemaphoreMutex`.

use tokio::time::Instant;
use zkwarden::warden::LockSafety;
use zkwarden::{Result, Warden};

use super::multi::{AcquireFuture, Lockable};
use super::semaphore::{Lease, Semaphore};

/// A non-re-entrant mutex compatible with Curator's `InterProcessSemaphoreMutex` on the same
/// path: a [`Semaphore`] allowing one lease (nodes `<path>/locks/...` and
/// `<path>/leases/...`, as the semaphore's docs describe).
///
/// Prefer [`Mutex`](super::Mutex) unless Curator processes use `InterProcessSemaphoreMutex`
/// on the path: the two layouts do not exclude each other. Neither is re-entrant here (see
/// the [`Mutex`](super::Mutex) docs on what re-entrancy would mean for tokio tasks); what
/// this one adds is Curator's reason for it: the holder is a lease, not a position in a
/// queue, so the [`Lease`] may be handed to another task and released there.
///
/// Faults and cancellation behave as for the [`Semaphore`].
#[derive(Debug, Clone)]
pub struct SemaphoreMutex {
    semaphore: Semaphore,
}

impl SemaphoreMutex {
    /// A mutex on `path`; its lease node carries this process's holder id (`host:pid`).
    pub fn new(warden: &Warden, path: impl Into<String>) -> SemaphoreMutex {
        SemaphoreMutex {
            semaphore: Semaphore::new(warden, path, 1),
        }
    }

    /// Sets the data the lease node carries.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> SemaphoreMutex {
        self.semaphore = self.semaphore.payload(payload);
        self
    }

    /// Sets when the lease reports itself lost (see
    /// [`LockGuard::lost`](super::LockGuard::lost)).
    pub fn safety(mut self, safety: LockSafety) -> SemaphoreMutex {
        self.semaphore = self.semaphore.safety(safety);
        self
    }

    /// The mutex's path.
    pub fn path(&self) -> &str {
        self.semaphore.path()
    }

    /// Waits for the mutex as long as it takes.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn lock(&self) -> Result<Lease> {
        self.semaphore.acquire().await
    }

    /// Waits for the mutex until `deadline`.
    ///
    /// # Errors
    /// [`Error::Timeout`](zkwarden::Error::Timeout) when the deadline passes first (no node
    /// is left behind); otherwise as [`Semaphore::acquire`].
    pub async fn lock_until(&self, deadline: Instant) -> Result<Lease> {
        self.semaphore.acquire_until(deadline).await
    }

    /// Takes the mutex if it is free: `Ok(None)` otherwise.
    ///
    /// # Errors
    /// As [`Semaphore::acquire`].
    pub async fn try_lock(&self) -> Result<Option<Lease>> {
        self.semaphore.try_acquire().await
    }

    /// The semaphore underneath.
    pub fn as_semaphore(&self) -> &Semaphore {
        &self.semaphore
    }
}

impl Lockable for SemaphoreMutex {
    fn lock_until(&self, deadline: Option<Instant>) -> AcquireFuture<'_> {
        Lockable::lock_until(&self.semaphore, deadline)
    }
}
