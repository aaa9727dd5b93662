//! A node that keeps itself in existence: [`PersistentNode`] (the role of Apache Curator's
//! `PersistentNode`).
//!
//! The node is created once started, and created again whenever it goes missing: after the
//! warden built a new session (an ephemeral node dies with its session), or after someone
//! else deleted it. Its data is whatever was last given to [`PersistentNode::set_data`],
//! also on every recreation.
//!
//! There is never more than one copy:
//!
//! * Sequential modes use protected creates (`_c_<uuid>-` names, see
//!   [`CreateBuilder::protected`](zkwarden::warden::CreateBuilder::protected)), so a create
//!   whose reply was lost is found instead of repeated, and the previous copy, if it is still
//!   there, is deleted before a new one is made.
//! * A non-sequential ephemeral whose create fails with `NodeExists` is checked by owner:
//!   owned by the current session, it is adopted; owned by an earlier session of this node,
//!   it is deleted and created again; owned by anyone else, a [`NodeEvent::Conflict`] is
//!   reported and the create is retried once that node is gone (or after a pause).
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use std::time::Duration;
//! use zkwarden_recipes::persistent_node::{NodeMode, PersistentNode};
//!
//! let node = PersistentNode::builder(&warden, "/services/api/instance-", NodeMode::EphemeralSequential)
//!     .data("10.0.0.7:8080")
//!     .start()
//!     .await?;
//! if node.wait_for_initial_create(Duration::from_secs(10)).await {
//!     println!("registered as {:?}", node.actual_path());
//! }
//! node.set_data("10.0.0.7:8081").await?;
//! node.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Under Suspended/Lost
//!
//! While the connection is `Suspended` nothing is done: an ephemeral node lives on the
//! server as long as its session may. When the session is `Lost`, its ephemeral node vanishes
//! with it; once the warden reports `Reconnected` with a new generation, the node is created
//! again on the new session (for sequential modes under a new name: follow
//! [`PersistentNode::actual_path`] or [`PersistentNode::events`]). Between the loss and the
//! recreation [`PersistentNode::actual_path`] is `None`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use zkwarden::warden::{ConnectionUpdate, DataEvent, ParentMode};
use zkwarden::{Backoff, ConnectionState, CreateMode, Error, Result, SessionId, Warden};

/// How many events a slow [`NodeEvents`] subscriber may fall behind before it is told it
/// lagged.
const EVENT_BUFFER: usize = 64;

/// The first pause after a failed create (or a conflict), doubled up to [`PAUSE_MAX`]
/// (jittered, so the nodes of many clients that lost one server are not made again in step).
const PAUSE_FIRST: Duration = Duration::from_millis(100);
const PAUSE_MAX: Duration = Duration::from_secs(5);

/// What kind of node a [`PersistentNode`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    /// An ephemeral node at exactly the given path.
    Ephemeral,
    /// An ephemeral sequential node, created protected: its name is
    /// `_c_<uuid>-<given name><sequence>` and changes with every recreation.
    EphemeralSequential,
    /// A persistent node at exactly the given path (recreated if someone deletes it).
    Persistent,
    /// A persistent sequential node, created protected; a new one is made (under a new name)
    /// if someone deletes it.
    PersistentSequential,
    /// A persistent node with a time to live: the server deletes it once it has had no
    /// children and no change for that long, and it is then created again (the server needs
    /// `zookeeper.extendedTypesEnabled=true`). Keep it alive by writing it or a child, as
    /// [`PersistentTtlNode`](crate::ttl_node::PersistentTtlNode) does.
    PersistentWithTtl(Duration),
    /// As [`PersistentWithTtl`](Self::PersistentWithTtl), sequential, created protected.
    PersistentSequentialWithTtl(Duration),
}

impl NodeMode {
    fn create_mode(self) -> CreateMode {
        match self {
            NodeMode::Ephemeral => CreateMode::Ephemeral,
            NodeMode::EphemeralSequential => CreateMode::EphemeralSequential,
            NodeMode::Persistent => CreateMode::Persistent,
            NodeMode::PersistentSequential => CreateMode::PersistentSequential,
            NodeMode::PersistentWithTtl(_) => CreateMode::PersistentWithTtl,
            NodeMode::PersistentSequentialWithTtl(_) => CreateMode::PersistentSequentialWithTtl,
        }
    }

    /// The time to live of the TTL modes.
    pub fn ttl(self) -> Option<Duration> {
        match self {
            NodeMode::PersistentWithTtl(ttl) | NodeMode::PersistentSequentialWithTtl(ttl) => {
                Some(ttl)
            }
            _ => None,
        }
    }

    fn is_ephemeral(self) -> bool {
        matches!(self, NodeMode::Ephemeral | NodeMode::EphemeralSequential)
    }

    fn is_sequential(self) -> bool {
        matches!(
            self,
            NodeMode::EphemeralSequential
                | NodeMode::PersistentSequential
                | NodeMode::PersistentSequentialWithTtl(_)
        )
    }
}

/// What a [`PersistentNode`] did or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// The node exists at `path`, made (or adopted) on session `session_id`.
    Created {
        /// The node's path.
        path: String,
        /// The session it was made on (its owner, for ephemeral modes).
        session_id: SessionId,
    },
    /// The node was found missing (deleted, or gone with its session); it is being created
    /// again.
    Vanished {
        /// The path it had.
        path: String,
    },
    /// The path is held by an ephemeral node of another live session; the create is tried
    /// again once that node is gone, or after a pause.
    Conflict {
        /// The path.
        path: String,
        /// The session that owns the node there.
        owner: SessionId,
    },
    /// A create or check failed; it is tried again after a pause.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// This subscriber fell behind and missed `missed` events.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// The events of a [`PersistentNode`] from the moment of subscription
/// ([`PersistentNode::events`]), as a [`Stream`](futures_core::Stream) and through
/// [`NodeEvents::next`].
pub struct NodeEvents {
    inner: BroadcastStream<NodeEvent>,
}

impl std::fmt::Debug for NodeEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeEvents").finish_non_exhaustive()
    }
}

impl NodeEvents {
    /// The next event, or `None` once the node's task has stopped (the warden closed, or the
    /// node was closed or dropped) and every event before that was read.
    pub async fn next(&mut self) -> Option<NodeEvent> {
        tokio_stream::StreamExt::next(self).await
    }
}

impl futures_core::Stream for NodeEvents {
    type Item = NodeEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NodeEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|result| match result {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => NodeEvent::Lagged { missed },
            })
        })
    }
}

/// What the handle and its task share.
struct Shared {
    warden: Warden,
    /// The path asked for (for sequential modes, the prefix of the name).
    path: String,
    mode: NodeMode,
    data: watch::Sender<Bytes>,
    actual: watch::Sender<Option<String>>,
    /// Held open by the node's task alone, so subscriptions end when it stops.
    events: broadcast::WeakSender<NodeEvent>,
}

impl Shared {
    fn emit(&self, event: NodeEvent) {
        if let Some(events) = self.events.upgrade() {
            // No subscribers is fine.
            let _ = events.send(event);
        }
    }

    /// The session the warden's operations run on now.
    fn session(&self) -> SessionId {
        self.warden.operating_session_id()
    }
}

/// A node kept in existence by a background task (see the [module docs](self)).
///
/// Dropping it stops the task without deleting the node (an ephemeral node then lives until
/// its session ends); [`close`](PersistentNode::close) deletes it.
pub struct PersistentNode {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for PersistentNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistentNode")
            .field("path", &self.shared.path)
            .field("mode", &self.shared.mode)
            .field("actual_path", &*self.shared.actual.borrow())
            .finish_non_exhaustive()
    }
}

/// Settings of a [`PersistentNode`], from [`PersistentNode::builder`].
#[derive(Debug, Clone)]
#[must_use = "a persistent node does nothing until started"]
pub struct PersistentNodeBuilder {
    warden: Warden,
    path: String,
    mode: NodeMode,
    data: Bytes,
}

impl PersistentNodeBuilder {
    /// The data the node is created with (empty unless set); see
    /// [`PersistentNode::set_data`] to change it later.
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = data.into();
        self
    }

    /// Starts keeping the node, creating missing parents as container nodes. Returns without
    /// waiting for the server; the node is created in the background (see
    /// [`wait_for_initial_create`](PersistentNode::wait_for_initial_create)).
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path (for sequential modes, an invalid prefix);
    /// [`Error::Closed`] when the warden is closed.
    pub async fn start(self) -> Result<PersistentNode> {
        crate::starting::check(&self.warden, &self.path, self.mode.is_sequential())?;
        Ok(self.spawn())
    }

    /// What [`start`](Self::start) does after its checks; nothing in it waits.
    pub(crate) fn spawn(self) -> PersistentNode {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let shared = Arc::new(Shared {
            warden: self.warden,
            path: self.path,
            mode: self.mode,
            data: watch::Sender::new(self.data),
            actual: watch::Sender::new(None),
            events: events.downgrade(),
        });
        let task = tokio::spawn(keep(shared.clone(), events));
        PersistentNode { shared, task }
    }
}

impl PersistentNode {
    /// Settings for keeping a node at `path` in `mode`. For sequential modes `path` is the
    /// prefix of the node's name, as for a sequential create (`/parent/name-` or
    /// `/parent/`).
    pub fn builder(warden: &Warden, path: &str, mode: NodeMode) -> PersistentNodeBuilder {
        PersistentNodeBuilder {
            warden: warden.clone(),
            path: path.to_owned(),
            mode,
            data: Bytes::new(),
        }
    }

    /// Starts keeping a node at `path` holding `data` in `mode`, without checking the path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[deprecated(
        note = "use `PersistentNode::builder(warden, path, mode).data(data).start().await`"
    )]
    pub fn start(warden: &Warden, path: &str, data: impl Into<Bytes>, mode: NodeMode) -> Self {
        PersistentNode::builder(warden, path, mode)
            .data(data)
            .spawn()
    }

    /// The path of the node as created, or `None` while it does not exist (not created yet,
    /// or being created again). For sequential modes it changes with every recreation.
    pub fn actual_path(&self) -> Option<String> {
        self.shared.actual.borrow().clone()
    }

    /// A receiver of [`actual_path`](Self::actual_path), to await its changes.
    pub fn actual_path_receiver(&self) -> watch::Receiver<Option<String>> {
        self.shared.actual.subscribe()
    }

    /// The mode the node is kept in.
    pub fn mode(&self) -> NodeMode {
        self.shared.mode
    }

    /// The data the node is kept with.
    pub fn data(&self) -> Bytes {
        self.shared.data.borrow().clone()
    }

    /// Subscribes to what the node's task does from now on.
    pub fn events(&self) -> NodeEvents {
        NodeEvents {
            inner: BroadcastStream::new(crate::events_end::subscribe(&self.shared.events)),
        }
    }

    /// Waits until the node exists, up to `timeout`; returns whether it does. Returns at
    /// once if it exists already.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        let mut actual = self.shared.actual.subscribe();
        matches!(
            tokio::time::timeout(timeout, actual.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        )
    }

    /// Replaces the node's data: written to the node now if it exists, and used for every
    /// recreation from now on.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`. A node that
    /// is missing at the moment is not an error (it is created again with this data).
    pub async fn set_data(&self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        self.shared.data.send_replace(data.clone());
        let Some(path) = self.actual_path() else {
            return Ok(());
        };
        match self.shared.warden.set_data(&path, &data, None).await {
            Ok(_) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Stops keeping the node and deletes it (an ephemeral one only if the current session
    /// owns it).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once the warden's retries are spent; `Closed`.
    pub async fn close(mut self) -> Result<()> {
        self.task.abort();
        let _ = (&mut self.task).await;
        let shared = &self.shared;
        let target = shared.actual.send_replace(None).or_else(|| {
            // An aborted plain create may still have made the node. (An aborted protected
            // create is cleaned up by the warden's janitor.)
            (!shared.mode.is_sequential()).then(|| shared.path.clone())
        });
        let Some(path) = target else {
            return Ok(());
        };
        let Some(stat) = shared.warden.exists(&path).await? else {
            return Ok(());
        };
        if shared.mode.is_ephemeral() && stat.ephemeral_owner != shared.session().0 {
            return Ok(());
        }
        shared.warden.delete(&path, None).idempotent().await
    }
}

impl Drop for PersistentNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the node could not be made to exist just now.
enum Problem {
    /// Another live session owns the node at this path.
    Conflict(SessionId),
    /// Try again at once (the situation changed under us).
    Again,
    /// An error; pause, then try again.
    Failed(Error),
}

impl From<Error> for Problem {
    fn from(error: Error) -> Self {
        Problem::Failed(error)
    }
}

/// The node's task: make sure the node exists, follow it, and start over whenever it is
/// found missing or the warden has a new session. It holds `_events` open while it runs.
async fn keep(shared: Arc<Shared>, _events: broadcast::Sender<NodeEvent>) {
    let mut connection = shared.warden.events();
    let mut pause = Backoff::new(PAUSE_FIRST, PAUSE_MAX);
    // Sessions this node was created on: a node at our path owned by one of them is a stale
    // copy of ours, not a conflict.
    let mut ours: Vec<SessionId> = Vec::new();
    // Data given from now on is written by `follow`; what `ensure` wrote is marked seen.
    let mut data = shared.data.subscribe();
    loop {
        if shared.warden.is_closed() {
            return;
        }
        let generation = shared.warden.generation();
        let path = match ensure(&shared, &mut ours, &mut data).await {
            Ok(path) => {
                pause.reset();
                path
            }
            Err(Problem::Again) => continue,
            Err(Problem::Conflict(owner)) => {
                tracing::warn!(path = %shared.path, %owner, "node held by another session");
                shared.emit(NodeEvent::Conflict {
                    path: shared.path.clone(),
                    owner,
                });
                wait_gone(&shared, pause.next_pause()).await;
                continue;
            }
            Err(Problem::Failed(error)) => {
                if shared.warden.is_closed() {
                    return;
                }
                tracing::warn!(path = %shared.path, %error, "could not create the node; trying again");
                shared.emit(NodeEvent::Failed {
                    error: error.to_string(),
                });
                tokio::time::sleep(pause.next_pause()).await;
                continue;
            }
        };
        if !follow(&shared, &path, generation, &mut connection, &mut data).await {
            return;
        }
    }
}

/// Follows the node at `path` until it needs checking again (`true`) or the warden closed
/// (`false`).
async fn follow(
    shared: &Shared,
    path: &str,
    generation: u64,
    connection: &mut zkwarden::warden::ConnectionEvents,
    data: &mut watch::Receiver<Bytes>,
) -> bool {
    let mut watch = shared.warden.watch_data(path);
    loop {
        tokio::select! {
            biased;
            event = watch.next() => match event {
                None => return false,
                Some(DataEvent::Resync { node: None, .. }) | Some(DataEvent::Deleted) => {
                    shared.actual.send_replace(None);
                    shared.emit(NodeEvent::Vanished { path: path.to_owned() });
                    return true;
                }
                Some(DataEvent::Resync { node: Some((data, stat)), .. }) => {
                    if shared.mode.is_ephemeral() && stat.ephemeral_owner != shared.session().0 {
                        // A copy left by an earlier session: check it again.
                        return true;
                    }
                    let wanted = shared.data.borrow().clone();
                    if data != wanted {
                        // Written while we could not see it: put our data back.
                        if let Err(error) = shared.warden.set_data(path, &wanted, None).await {
                            tracing::debug!(%error, "could not restore the node's data");
                            return true;
                        }
                    }
                }
                Some(DataEvent::Changed { .. } | DataEvent::Created { .. }) => {}
            },
            changed = data.changed() => {
                if changed.is_err() {
                    return false;
                }
                let wanted = data.borrow_and_update().clone();
                if let Err(error) = shared.warden.set_data(path, &wanted, None).await {
                    // Missing, or unreachable: check the node again (which writes the data).
                    tracing::debug!(%error, "could not write the node's new data");
                    return true;
                }
            },
            update = connection.next_update() => match update {
                None => return false,
                Some(ConnectionUpdate::Event(event)) => {
                    if event.state == ConnectionState::Closed {
                        return false;
                    }
                    if event.state == ConnectionState::Reconnected && event.generation != generation {
                        return true;
                    }
                }
                Some(ConnectionUpdate::Lagged { .. }) => return true,
            },
        }
    }
}

/// Makes sure the node exists and belongs to the current session; returns its path.
async fn ensure(
    shared: &Shared,
    ours: &mut Vec<SessionId>,
    data_rx: &mut watch::Receiver<Bytes>,
) -> std::result::Result<String, Problem> {
    let warden = &shared.warden;
    let mode = shared.mode;
    let current = shared.actual.borrow().clone();
    if let Some(current) = current {
        if let Some(stat) = warden.exists(&current).await? {
            if !mode.is_ephemeral() || stat.ephemeral_owner == shared.session().0 {
                return Ok(current);
            }
            if mode.is_sequential() {
                // Our earlier copy outlived its session: remove it before making a new one.
                delete_stale(warden, &current, stat.version).await?;
            }
        }
        shared.actual.send_replace(None);
    }
    let data = data_rx.borrow_and_update().clone();
    let mut create = warden
        .create(&shared.path, &data)
        .mode(mode.create_mode())
        .parents(ParentMode::Container);
    if mode.is_sequential() {
        create = create.protected();
    }
    if let Some(ttl) = mode.ttl() {
        create = create.ttl(ttl);
    }
    let path = match create.await {
        Ok(path) => path,
        Err(Error::NodeExists) if !mode.is_sequential() => {
            let Some(stat) = warden.exists(&shared.path).await? else {
                return Err(Problem::Again);
            };
            let session = shared.session();
            let owner = SessionId(stat.ephemeral_owner);
            if mode.is_ephemeral() && owner != session {
                if ours.contains(&owner) {
                    delete_stale(warden, &shared.path, stat.version).await?;
                    return Err(Problem::Again);
                }
                return Err(Problem::Conflict(owner));
            }
            shared.path.clone()
        }
        Err(e) => return Err(Problem::Failed(e)),
    };
    let session = shared.session();
    if mode.is_ephemeral() && !ours.contains(&session) {
        ours.push(session);
    }
    // Data given while the create ran (or held by an adopted node) is brought up to date.
    let wanted = data_rx.borrow_and_update().clone();
    let (held, _) = match warden.get_data(&path).await {
        Ok(read) => read,
        Err(Error::NoNode) => return Err(Problem::Again),
        Err(e) => return Err(Problem::Failed(e)),
    };
    if held != wanted {
        match warden.set_data(&path, &wanted, None).await {
            Ok(_) => {}
            Err(Error::NoNode) => return Err(Problem::Again),
            Err(e) => return Err(Problem::Failed(e)),
        }
    }
    shared.actual.send_replace(Some(path.clone()));
    shared.emit(NodeEvent::Created {
        path: path.clone(),
        session_id: session,
    });
    Ok(path)
}

/// Deletes a copy of the node left by an earlier session (only the version we saw).
async fn delete_stale(warden: &Warden, path: &str, version: i32) -> Result<()> {
    tracing::info!(%path, "deleting a copy left by an earlier session");
    match warden.delete(path, Some(version)).await {
        Ok(()) | Err(Error::NoNode) | Err(Error::BadVersion) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Waits until the node at the asked-for path is gone, or `pause` has passed.
async fn wait_gone(shared: &Shared, pause: Duration) {
    let mut watch = shared.warden.watch_data(&shared.path);
    let gone = async {
        while let Some(event) = watch.next().await {
            if matches!(
                event,
                DataEvent::Resync { node: None, .. } | DataEvent::Deleted
            ) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(pause.max(Duration::from_secs(1)), gone).await;
}
