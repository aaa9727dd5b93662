//! [`DistributedAtomicValue`]: bytes in one znode, changed atomically.

use bytes::Bytes;
use zkwarden::{Error, Result, Warden};

use zkwarden::warden::ParentMode;

use super::engine::{AtomicValue, Engine, PromotedToLock};

/// A byte array in one znode, changed atomically (Curator's `DistributedAtomicValue`); see
/// the [module docs](super) for the modes.
#[derive(Debug)]
pub struct DistributedAtomicValue {
    pub(crate) engine: Engine,
}

impl DistributedAtomicValue {
    /// A value at `path`: exactly-once writes (tickets under `<path>-tickets`), optimistic
    /// tries until a change lands, no promotion. Nothing is read or created until used.
    pub fn new(warden: &Warden, path: &str) -> DistributedAtomicValue {
        DistributedAtomicValue {
            engine: Engine::new(warden, path),
        }
    }

    /// Gives up optimistically after `tries` reads-and-writes lost to other writers (then
    /// promotes, if set, or reports `succeeded == false`), as Curator's retry policy does.
    pub fn optimistic_tries(mut self, tries: u32) -> Self {
        self.engine.tries = Some(tries);
        self
    }

    /// Falls back to a mutex once the optimistic tries are spent (Curator's promoted mode).
    pub fn promoted(mut self, promotion: PromotedToLock) -> Self {
        self.engine.promote(promotion);
        self
    }

    /// With `false`, writes are Curator's plain versioned `setData` with no ticket nodes;
    /// a write whose reply was lost and that the warden repeated may then be applied twice
    /// (as in Curator). With `true` (the default) each write also bumps a ticket node of this
    /// handle, so its outcome is always known.
    pub fn exactly_once(mut self, exactly_once: bool) -> Self {
        self.engine.ticket_parent =
            exactly_once.then(|| format!("{}-tickets", self.engine.path.trim_end_matches('/')));
        self
    }

    /// Keeps the ticket nodes under `parent` instead of `<path>-tickets` (and turns
    /// exactly-once writes on).
    pub fn ticket_parent(mut self, parent: impl Into<String>) -> Self {
        self.engine.ticket_parent = Some(parent.into());
        self
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.engine.path
    }

    /// The node's data; `None` while it does not exist.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn get(&self) -> Result<Option<Bytes>> {
        match self.engine.warden.get_data(&self.engine.path).await {
            Ok((data, _)) => Ok(Some(data)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `value` whatever the node holds, creating it (and missing parents as
    /// containers) if needed (Curator's `forceSet`).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn force_set(&self, value: &[u8]) -> Result<()> {
        let (warden, path) = (&self.engine.warden, self.engine.path.as_str());
        loop {
            match warden.set_data(path, value, None).await {
                Ok(_) => return Ok(()),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
            match warden
                .create(path, value)
                .parents(ParentMode::Container)
                .await
            {
                Ok(_) => return Ok(()),
                Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates the node holding `value` unless it exists; whether it was created (Curator's
    /// `initialize`). As in Curator, a create whose reply was lost and that landed before the
    /// warden repeated it reads as `false`.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn initialize(&self, value: &[u8]) -> Result<bool> {
        match self
            .engine
            .warden
            .create(&self.engine.path, value)
            .parents(ParentMode::Container)
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::NodeExists) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the value to `new` if it is `expected` now, with one read and one versioned
    /// write, as Curator's `compareAndSet` (so a race with another writer reports
    /// `succeeded == false` even when the value was `expected`). A missing node is never
    /// `expected`.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn compare_and_set(
        &self,
        expected: &[u8],
        new: &[u8],
    ) -> Result<AtomicValue<Option<Vec<u8>>>> {
        let change = |found: Option<&[u8]>| Ok((found == Some(expected)).then(|| new.to_vec()));
        self.engine.modify(&change, Some(Some(1)), false).await
    }

    /// Sets the value to `new` by the optimistic loop (and the promotion, if set), as
    /// Curator's `trySet`; `succeeded == false` when the tries ran out.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent (the change may then have been
    /// applied); `Server(DataInconsistency)` when another client changed this handle's
    /// ticket; `Closed`.
    pub async fn try_set(&self, new: &[u8]) -> Result<AtomicValue<Option<Vec<u8>>>> {
        let change = |_: Option<&[u8]>| Ok(Some(new.to_vec()));
        self.engine.modify(&change, None, true).await
    }

    /// Deletes this handle's ticket nodes (the value stays); the handle stays usable.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent (the rest are kept for a later
    /// `close`); `Closed`.
    pub async fn close(&self) -> Result<()> {
        self.engine.close().await
    }
}
