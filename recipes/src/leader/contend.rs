//! The queue both election recipes stand in: create an ephemeral sequential node, wait
//! behind the node just before it, and become leader once first — after checking that the
//! node really belongs to the current session.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use zkwarden::warden::{ConnectionState, LockSafety, ParentMode};
use zkwarden::{Backoff, CreateMode, Error, Result, Warden};

use super::Leadership;
use super::naming::{Place, join, place_of};
use crate::lock::lost::LostWatch;

/// Pause after an error before the background task tries again.
const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(2);
/// How long a create under way may still take once the recipe is closed.
const CREATE_GRACE: Duration = Duration::from_secs(2);

/// One participant's place in a queue of `marker` nodes under `parent`.
#[derive(Clone)]
pub(crate) struct Contender {
    pub(crate) warden: Warden,
    pub(crate) parent: String,
    pub(crate) marker: &'static str,
    pub(crate) payload: Vec<u8>,
    pub(crate) safety: LockSafety,
}

/// A node this participant created, and the session generation it was created in.
#[derive(Debug, Clone)]
pub(crate) struct OwnNode {
    pub(crate) path: String,
    pub(crate) name: String,
    pub(crate) generation: u64,
}

impl Contender {
    /// Creates this participant's node: a protected create, so a lost reply never leaves a
    /// second node and a dropped create is cleaned up by the warden's janitor.
    ///
    /// # Errors
    /// As [`Warden::create`].
    pub(crate) async fn create(&self) -> Result<OwnNode> {
        let generation = self.warden.generation();
        let path = self
            .warden
            .create(&join(&self.parent, self.marker), &self.payload)
            .mode(CreateMode::EphemeralSequential)
            .protected()
            .parents(ParentMode::Container)
            .await?;
        let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
        Ok(OwnNode {
            path,
            name,
            generation,
        })
    }

    /// [`Contender::create`], unless `shutdown` is cancelled first. A create already under
    /// way is given a short grace to finish, so that closing in the common case leaves no
    /// node for the janitor; `None` means it was abandoned (to the warden's janitor).
    pub(crate) async fn create_until(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<Result<OwnNode>> {
        let create = self.create();
        tokio::pin!(create);
        tokio::select! {
            biased;
            created = &mut create => Some(created),
            () = shutdown.cancelled() => tokio::time::timeout(CREATE_GRACE, create).await.ok(),
        }
    }

    /// Waits until `own` heads the queue and is confirmed ours: `Ok(None)` when the node is
    /// gone or belongs to an earlier session (make a new one).
    ///
    /// # Errors
    /// Errors of `getChildren`, `getData` and `exists` after the warden's retries.
    pub(crate) async fn wait_first(&self, own: &OwnNode) -> Result<Option<Leadership>> {
        loop {
            if self.warden.generation() != own.generation && !self.owned(own).await? {
                return Ok(None);
            }
            let children = match self.warden.get_children(&self.parent).await {
                Ok(children) => children,
                // The container went away, and our node with it.
                Err(Error::NoNode) => return Ok(None),
                Err(e) => return Err(e),
            };
            let predecessor = match place_of(&children, &own.name, self.marker) {
                Place::Missing => return Ok(None),
                Place::First => return self.confirm(own).await,
                Place::Behind(name) => join(&self.parent, name),
            };
            // A data watch (not exists) so that a node already gone leaves no watch behind.
            match self.warden.get_data_and_watch(&predecessor).await {
                // Whatever fires (deletion, a data change, the end of the session), look again.
                Ok((_, _, watcher)) => {
                    let _ = watcher.await;
                }
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether `own` exists and its ephemeral owner is the warden's current session.
    async fn owned(&self, own: &OwnNode) -> Result<bool> {
        Ok(matches!(
            self.warden.exists(&own.path).await?,
            Some(stat) if stat.ephemeral_owner == self.warden.session_id().0
        ))
    }

    /// `own` is first: check that it is ours and begin a term.
    async fn confirm(&self, own: &OwnNode) -> Result<Option<Leadership>> {
        // Subscribe before the check, so no connection change after it goes unseen.
        let events = self.warden.events();
        let Some(stat) = self.warden.exists(&own.path).await? else {
            return Ok(None);
        };
        let now = self.warden.connection();
        if stat.ephemeral_owner != now.session_id.0 {
            // Left over from a session that is gone (or going): never trust it.
            return Ok(None);
        }
        let lost = LostWatch::spawn(
            self.warden.clone(),
            own.path.clone(),
            now.session_id,
            now.generation,
            self.safety,
            events,
        );
        Ok(Some(Leadership::new(
            own.path.clone(),
            stat.czxid,
            now.session_id,
            lost,
        )))
    }

    /// Deletes `path` as a recipe leaving the election does: one attempt bounded by the
    /// session timeout (past it, the session is expiring and the node goes with it anyway),
    /// then, if the connection prevented it, a guaranteed delete in the warden's
    /// background.
    ///
    /// # Errors
    /// The attempt's error when the delete goes on in the background, or `NoAuth`; a node
    /// already gone, or a closed warden, is success.
    pub(crate) async fn leave(&self, path: &str) -> Result<()> {
        let bounded = self
            .warden
            .with_timeout(self.warden.config().session_timeout);
        match bounded.delete_guaranteed(path, None).await {
            Ok(()) | Err(Error::NoNode) | Err(Error::Closed) => Ok(()),
            Err(e) => {
                tracing::debug!(%path, error = %e, "election node delete pending");
                Err(e)
            }
        }
    }

    /// Deletes `path` and returns once it is verified gone (or the failure is final, or the
    /// warden closed). Used for a node of an earlier session before contending again.
    pub(crate) async fn remove(&self, path: &str) {
        let mut pause = Pauser::default();
        loop {
            match self.warden.delete(path, None).await {
                Ok(()) | Err(Error::NoNode) | Err(Error::Closed) => return,
                Err(e) if e.is_transient() => {
                    tracing::debug!(%path, error = %e, "election node delete failed; trying again");
                    pause.pause().await;
                }
                Err(e) => {
                    tracing::warn!(%path, error = %e, "cannot delete an election node");
                    return;
                }
            }
        }
    }
}

/// Waits until the warden is connected (`Connected` or `Reconnected`) or closed. Returns
/// `false` when it closed.
pub(crate) async fn connected(warden: &Warden) -> bool {
    let mut events = warden.events();
    loop {
        match warden.connection().state {
            ConnectionState::Connected | ConnectionState::Reconnected => return true,
            ConnectionState::Closed => return false,
            _ => {}
        }
        if events.next().await.is_none() {
            return false;
        }
    }
}

/// Growing pauses between background attempts (100 ms doubling to 2 s, jittered so the
/// participants of one election do not all try again in step).
#[derive(Debug)]
pub(crate) struct Pauser {
    schedule: Backoff,
}

impl Default for Pauser {
    fn default() -> Self {
        Pauser {
            schedule: Backoff::new(PAUSE_FIRST, PAUSE_MAX),
        }
    }
}

impl Pauser {
    /// Sleeps for the next pause.
    pub(crate) async fn pause(&mut self) {
        tokio::time::sleep(self.schedule.next_pause()).await;
    }

    /// Starts again from the shortest pause.
    pub(crate) fn reset(&mut self) {
        self.schedule.reset();
    }
}

/// Sleeps for the next pause of `pause`, or until `shutdown` is cancelled.
pub(crate) async fn pause_until(pause: &mut Pauser, shutdown: &CancellationToken) {
    tokio::select! {
        biased;
        () = pause.pause() => {}
        () = shutdown.cancelled() => {}
    }
}
