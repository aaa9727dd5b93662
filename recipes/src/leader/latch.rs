//! [`LeaderLatch`]: leader election that shares its znodes with Apache Curator's
//! `LeaderLatch`.

use std::fmt;
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zkwarden::warden::LockSafety;
use zkwarden::{Error, Result, Warden};

use super::contend::{Contender, OwnNode, Pauser, connected, pause_until};
use super::naming::{LATCH_NAME, trim_path};
use super::participants::{self, Participant};
use super::{Leadership, holder_id};
use crate::lock::LostReason;

/// Leader election among the processes that start a latch on the same path, compatible with
/// Curator's `LeaderLatch` (Rust and Java participants elect one leader among them).
///
/// Starting a latch spawns a task that queues for leadership and stays in the queue until
/// the latch is closed or dropped; leadership, once gained, is kept until it is lost (see
/// below). Ask [`LeaderLatch::has_leadership`], or wait with
/// [`LeaderLatch::await_leadership`] for a [`Leadership`], whose
/// [`lost`](Leadership::lost) future tells when to stop acting as the leader.
///
/// ```no_run
/// # async fn run(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::leader::LeaderLatch;
///
/// let latch = LeaderLatch::builder(&warden, "/services/scheduler/leader")
///     .id("scheduler-1")
///     .start()
///     .await?;
/// loop {
///     let leadership = latch.await_leadership(None).await?;
///     println!("leading with token {}", leadership.fencing_token());
///     // Lead until the term ends, then wait for the next one.
///     let reason = leadership.lost().await;
///     println!("not leading any more: {reason:?}");
/// }
/// # }
/// ```
///
/// # Protocol
///
/// The latch creates an ephemeral sequential node `<path>/_c_<uuid>-latch-<sequence>`
/// holding its id (a protected create: a lost reply never leaves a second node, and a create
/// abandoned midway is deleted by the warden's janitor; missing parents are created as
/// containers). The node with the lowest number after `latch-` is the leader; every other
/// participant watches the node just before its own and looks again when it goes. This is
/// Curator's `LeaderLatch` layout, so [`LeaderLatch::participants`] lists Curator's
/// participants too and Curator lists ours.
///
/// # Suspended and Lost
///
/// * **Ownership is checked, not assumed.** A term begins only after the first node's
///   ephemeral owner is compared with the warden's current session.
/// * **Suspended.** Under [`LockSafety::Suspend`] (the default) the term ends the moment
///   the connection is suspended: [`Leadership::lost`] resolves and
///   [`LeaderLatch::has_leadership`] turns false. The node stays; once reconnected to the
///   same session the latch looks again and, if its node still heads the queue, begins a
///   new term (with the same fencing token: nobody can have led in between). Under
///   [`LockSafety::SessionDeadline`] the term survives a disconnection shorter than the
///   session deadline minus the margin.
/// * **Lost.** The term ends (under every safety setting) when the session is lost or
///   replaced or the node is deleted. The latch then deletes its old node (or verifies
///   that it is gone) before it queues again with a new node in the new session.
/// * **Closed.** [`LeaderLatch::close`] (or dropping the latch) ends the term first and
///   then deletes the node, so the next leader is elected only after this one stopped.
///
/// Curator's latch differs in one respect: it does not end leadership on `Suspended`
/// unless its connection-state error policy says so (its default policy does).
pub struct LeaderLatch {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    done: CancellationToken,
    task: Option<JoinHandle<Result<()>>>,
}

impl fmt::Debug for LeaderLatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderLatch")
            .field("path", &self.shared.contender.parent)
            .field("id", &self.shared.id)
            .field("has_leadership", &self.has_leadership())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`LeaderLatch`]; [`LeaderLatchBuilder::start`] starts it.
#[derive(Debug, Clone)]
#[must_use = "a latch does nothing until started"]
pub struct LeaderLatchBuilder {
    warden: Warden,
    path: String,
    id: String,
    safety: LockSafety,
}

impl LeaderLatchBuilder {
    /// The participant id written into the latch node (Curator's `LeaderLatch` id). The
    /// default is this process's `host:pid`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// When a term ends on a lost connection (see [`Leadership::lost`]); the default is the
    /// warden's [`Warden::lock_safety`].
    pub fn safety(mut self, safety: LockSafety) -> Self {
        self.safety = safety;
        self
    }

    /// Starts the latch: a task queues for leadership until the latch is closed or dropped.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path; [`Error::Closed`] when the warden is
    /// closed.
    pub async fn start(self) -> Result<LeaderLatch> {
        crate::starting::check(&self.warden, &self.path, false)?;
        let (current, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            contender: Contender {
                warden: self.warden,
                parent: self.path,
                marker: LATCH_NAME,
                payload: self.id.clone().into_bytes(),
                safety: self.safety,
            },
            id: self.id,
            current,
            node: StdMutex::new(None),
        });
        let shutdown = CancellationToken::new();
        let done = CancellationToken::new();
        let task = tokio::spawn(drive(shared.clone(), shutdown.clone(), done.clone()));
        Ok(LeaderLatch {
            shared,
            shutdown,
            done,
            task: Some(task),
        })
    }
}

impl LeaderLatch {
    /// Settings for a latch on `path` (the parent of the latch nodes).
    pub fn builder(warden: &Warden, path: impl Into<String>) -> LeaderLatchBuilder {
        LeaderLatchBuilder {
            safety: warden.lock_safety(),
            warden: warden.clone(),
            path: trim_path(path.into()),
            id: holder_id(),
        }
    }

    /// The latch's path.
    pub fn path(&self) -> &str {
        &self.shared.contender.parent
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Whether this participant leads right now: a term has begun and its
    /// [`Leadership::lost`] has not resolved.
    pub fn has_leadership(&self) -> bool {
        self.leadership().is_some()
    }

    /// The current term, if this participant leads.
    pub fn leadership(&self) -> Option<Leadership> {
        self.shared
            .current
            .borrow()
            .as_ref()
            .filter(|l| l.is_valid())
            .cloned()
    }

    /// The full path of this participant's node, once it has one.
    pub fn node_path(&self) -> Option<String> {
        self.shared.node()
    }

    /// Waits until this participant leads (until `deadline`, when given) and returns the
    /// term.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the deadline passes first; [`Error::Closed`] when the latch
    /// stopped (its warden was closed).
    pub async fn await_leadership(&self, deadline: Option<Instant>) -> Result<Leadership> {
        let mut rx = self.shared.current.subscribe();
        let wait = async {
            loop {
                let found = rx
                    .borrow_and_update()
                    .as_ref()
                    .filter(|l| l.is_valid())
                    .cloned();
                if let Some(leadership) = found {
                    return Ok(leadership);
                }
                if rx.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        };
        let expiry = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            result = wait => result,
            () = self.done.cancelled() => Err(Error::Closed),
            () = expiry => Err(Error::Timeout),
        }
    }

    /// Everybody queued as a latch participant on `path` (Rust and Curator alike), the
    /// leader first, without joining the election.
    ///
    /// # Errors
    /// As [`LeaderLatch::participants`].
    pub async fn participants_on(warden: &Warden, path: &str) -> Result<Vec<Participant>> {
        participants::list(warden, &trim_path(path.to_owned()), LATCH_NAME).await
    }

    /// The latch participant whose node heads the queue on `path`, if any, without joining
    /// the election.
    ///
    /// # Errors
    /// As [`LeaderLatch::participants`].
    pub async fn leader_on(warden: &Warden, path: &str) -> Result<Option<Participant>> {
        participants::leader(warden, &trim_path(path.to_owned()), LATCH_NAME).await
    }

    /// Everybody queued on this latch's path (Rust and Curator participants alike), the
    /// leader first, with the ids their nodes hold.
    ///
    /// # Errors
    /// Errors of `getChildren` and `getData` after the warden's retries (a missing path is
    /// an empty list).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        let c = &self.shared.contender;
        participants::list(&c.warden, &c.parent, LATCH_NAME).await
    }

    /// The participant whose node heads the queue, if any.
    ///
    /// # Errors
    /// As [`LeaderLatch::participants`].
    pub async fn leader(&self) -> Result<Option<Participant>> {
        let c = &self.shared.contender;
        participants::leader(&c.warden, &c.parent, LATCH_NAME).await
    }

    /// Leaves the election: ends the current term (its `lost()` resolves with
    /// [`LostReason::Released`]), then deletes the latch node, so another participant is
    /// elected only after this one stopped. While the connection is down it waits at most
    /// the session timeout for the delete, which then goes on in the warden's background
    /// (see [`Warden::delete_guaranteed`]).
    ///
    /// # Errors
    /// The delete attempt's error when it goes on in the background (connection errors,
    /// `SessionExpired`, `Timeout`), or `NoAuth`.
    pub async fn close(mut self) -> Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for LeaderLatch {
    /// Leaves the election in the background, as [`LeaderLatch::close`] does.
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What the latch's task and its handle share.
struct Shared {
    contender: Contender,
    id: String,
    /// The current term (possibly already lost, until the task notices).
    current: watch::Sender<Option<Leadership>>,
    /// Our node, while we have one (deleted on close).
    node: StdMutex<Option<String>>,
}

/// What the task does once a node has to go.
enum Next {
    /// Delete it and queue again with a new one.
    Replace,
    /// Stop: the warden closed.
    Stop,
}

impl Shared {
    fn node(&self) -> Option<String> {
        self.node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set_node(&self, node: Option<String>) {
        *self
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = node;
    }

    /// Queues, leads and re-queues until closed (by the handle or the warden).
    async fn run(&self, shutdown: &CancellationToken) {
        let c = &self.contender;
        let mut stale: Option<String> = None;
        let mut pause = Pauser::default();
        loop {
            if let Some(old) = stale.take() {
                // Never queue twice: the old node goes (or is seen gone) first.
                tokio::select! {
                    biased;
                    () = c.remove(&old) => self.set_node(None),
                    () = shutdown.cancelled() => return,
                }
            }
            if c.warden.is_closed() || shutdown.is_cancelled() {
                return;
            }
            let own = match c.create_until(shutdown).await {
                None | Some(Err(Error::Closed)) => return,
                Some(Ok(own)) => own,
                Some(Err(e)) => {
                    tracing::warn!(path = %c.parent, error = %e, "latch node create failed");
                    pause_until(&mut pause, shutdown).await;
                    continue;
                }
            };
            pause.reset();
            self.set_node(Some(own.path.clone()));
            let next = tokio::select! {
                biased;
                next = self.hold(&own) => next,
                () = shutdown.cancelled() => return,
            };
            match next {
                Next::Replace => stale = Some(own.path),
                Next::Stop => return,
            }
        }
    }

    /// Leads whenever `own` heads the queue, until the node has to be replaced.
    async fn hold(&self, own: &OwnNode) -> Next {
        let c = &self.contender;
        let mut pause = Pauser::default();
        loop {
            let leadership = match c.wait_first(own).await {
                Ok(Some(leadership)) => leadership,
                Ok(None) => return Next::Replace,
                Err(Error::Closed) => return Next::Stop,
                Err(e) => {
                    tracing::debug!(node = %own.path, error = %e, "latch check failed; trying again");
                    pause.pause().await;
                    continue;
                }
            };
            pause.reset();
            tracing::info!(
                node = %own.path,
                fencing_token = leadership.fencing_token(),
                "leadership gained"
            );
            self.current.send_replace(Some(leadership.clone()));
            let reason = leadership.lost().await;
            self.current.send_replace(None);
            leadership.end();
            tracing::info!(node = %own.path, ?reason, "leadership lost");
            match reason {
                // The session may live on: look again once reconnected.
                LostReason::Suspended | LostReason::SessionDeadline => {
                    if !connected(&c.warden).await {
                        return Next::Stop;
                    }
                }
                LostReason::Closed | LostReason::Released => return Next::Stop,
                _ => return Next::Replace,
            }
        }
    }

    /// Ends the term and deletes the node (guaranteed).
    async fn retire(&self) -> Result<()> {
        if let Some(leadership) = self.current.send_replace(None) {
            leadership.end();
        }
        let Some(node) = self.node() else {
            return Ok(());
        };
        self.set_node(None);
        self.contender.leave(&node).await
    }
}

/// The latch's task: run until closed, then retire.
async fn drive(
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    done: CancellationToken,
) -> Result<()> {
    shared.run(&shutdown).await;
    let result = shared.retire().await;
    done.cancel();
    result
}
