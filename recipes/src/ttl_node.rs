//! [`PersistentTtlNode`]: a node that lives while this process keeps it, and goes a TTL after
//! it stops, even if the process dies (Apache Curator's `PersistentTtlNode`, same layout).
//!
//! Unlike an ephemeral node it does not depend on a session: it survives session expiries and
//! reconnections, and outlives the process by at most one TTL.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use std::time::Duration;
//! use zkwarden_recipes::ttl_node::PersistentTtlNode;
//!
//! let node = PersistentTtlNode::builder(&warden, "/app/alive/worker-7", Duration::from_secs(10))
//!     .data("busy")
//!     .start()
//!     .await?;
//! node.wait_for_initial_create(Duration::from_secs(10)).await;
//! // ... work; the node is there while `node` lives ...
//! node.close(); // gone within ten seconds (and a check interval of the server)
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! The node at `path` is a [`PersistentNode`] in mode
//! [`NodeMode::PersistentWithTtl`] holding the data. A background task writes its child
//! `path/touch` (itself a TTL node, created when missing) every TTL divided by the touch
//! factor (2 by default). A TTL node is deleted by the server once it has had no children and
//! no change for its TTL: while the child is written it keeps the parent, and once the
//! writes stop the child expires, then the parent.
//!
//! The server must allow TTL nodes (`zookeeper.extendedTypesEnabled=true`); it looks for
//! expired ones every `znode.container.checkIntervalMs` (a minute by default), so a node goes
//! between one TTL and one TTL plus that interval after the last write. A server that does not
//! allow them answers `Unimplemented`: the node is then never created, and
//! [`events`](PersistentTtlNode::events) reports a [`NodeEvent::Failed`] for every try.
//!
//! [`NodeEvent::Failed`]: crate::persistent_node::NodeEvent::Failed
//!
//! # Suspended / Lost
//!
//! Nothing here is ephemeral. While `Suspended` the writes fail and are tried again at the
//! next tick; if the connection stays away longer than the TTL the nodes may expire, and are
//! made again once it is back. A new session changes nothing.

use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use zkwarden::{CreateMode, Error, Warden};

use crate::lock::internals::join;
use crate::persistent_node::{NodeEvents, NodeMode, PersistentNode, PersistentNodeBuilder};

/// The name of the child that is written to keep the node (Curator's
/// `DEFAULT_CHILD_NODE_NAME`).
pub const TOUCH_CHILD: &str = "touch";

/// How many writes of the child per TTL by default (Curator's
/// `DEFAULT_TOUCH_SCHEDULE_FACTOR`).
pub const TOUCH_FACTOR: u32 = 2;

/// A TTL node kept alive by writing a child (see the [module docs](self)).
///
/// Dropping it, or [`close`](Self::close), stops keeping it; the server deletes it one TTL
/// later.
#[derive(Debug)]
pub struct PersistentTtlNode {
    node: PersistentNode,
    touch: JoinHandle<()>,
    child: String,
}

/// Settings of a [`PersistentTtlNode`], from [`PersistentTtlNode::builder`].
#[derive(Debug, Clone)]
#[must_use = "a TTL node does nothing until started"]
pub struct PersistentTtlNodeBuilder {
    node: PersistentNodeBuilder,
    warden: Warden,
    path: String,
    ttl: Duration,
    child_name: String,
    factor: u32,
}

impl PersistentTtlNodeBuilder {
    /// The data the node is created with (empty unless set).
    pub fn data(mut self, data: impl Into<Bytes>) -> Self {
        self.node = self.node.data(data);
        self
    }

    /// The name of the child that is written to keep the node ([`TOUCH_CHILD`] unless set).
    pub fn child_name(mut self, name: &str) -> Self {
        self.child_name = name.to_owned();
        self
    }

    /// How many writes of the child per TTL ([`TOUCH_FACTOR`] unless set; 0 counts as 1).
    pub fn touch_factor(mut self, factor: u32) -> Self {
        self.factor = factor;
        self
    }

    /// Starts keeping the node. Returns without waiting for the server (see
    /// [`wait_for_initial_create`](PersistentTtlNode::wait_for_initial_create)).
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path or child name; [`Error::Closed`] when the
    /// warden is closed.
    pub async fn start(self) -> zkwarden::Result<PersistentTtlNode> {
        crate::starting::check(&self.warden, &join(&self.path, &self.child_name), false)?;
        Ok(self.spawn())
    }

    /// What [`start`](Self::start) does after its checks; nothing in it waits.
    fn spawn(self) -> PersistentTtlNode {
        let node = self.node.spawn();
        let child = join(&self.path, &self.child_name);
        let every = self.ttl / self.factor.max(1);
        let touch = tokio::spawn(touch_loop(self.warden, child.clone(), self.ttl, every));
        PersistentTtlNode { node, touch, child }
    }
}

impl PersistentTtlNode {
    /// Settings for keeping a TTL node at `path` with time to live `ttl`: by default empty,
    /// with the child [`TOUCH_CHILD`] written [`TOUCH_FACTOR`] times per `ttl`.
    pub fn builder(warden: &Warden, path: &str, ttl: Duration) -> PersistentTtlNodeBuilder {
        PersistentTtlNodeBuilder {
            node: PersistentNode::builder(warden, path, NodeMode::PersistentWithTtl(ttl)),
            warden: warden.clone(),
            path: path.to_owned(),
            ttl,
            child_name: TOUCH_CHILD.to_owned(),
            factor: TOUCH_FACTOR,
        }
    }

    /// Starts keeping a TTL node at `path` holding `data`, with the child [`TOUCH_CHILD`]
    /// written [`TOUCH_FACTOR`] times per `ttl`, without checking the path.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[deprecated(
        note = "use `PersistentTtlNode::builder(warden, path, ttl).data(data).start().await`"
    )]
    pub fn start(
        warden: &Warden,
        path: &str,
        ttl: Duration,
        data: impl Into<Bytes>,
    ) -> PersistentTtlNode {
        PersistentTtlNode::builder(warden, path, ttl)
            .data(data)
            .spawn()
    }

    /// As [`start`](Self::start), with the child's name and the writes per TTL given
    /// (`factor` 0 counts as 1).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    #[deprecated(
        note = "use `PersistentTtlNode::builder(warden, path, ttl).data(data).child_name(name).touch_factor(factor).start().await`"
    )]
    pub fn start_with(
        warden: &Warden,
        path: &str,
        ttl: Duration,
        data: impl Into<Bytes>,
        child_name: &str,
        factor: u32,
    ) -> PersistentTtlNode {
        PersistentTtlNode::builder(warden, path, ttl)
            .data(data)
            .child_name(child_name)
            .touch_factor(factor)
            .spawn()
    }

    /// The path of the node while it exists (see [`PersistentNode::actual_path`]).
    pub fn actual_path(&self) -> Option<String> {
        self.node.actual_path()
    }

    /// The path of the child that is written to keep the node.
    pub fn touch_path(&self) -> &str {
        &self.child
    }

    /// Waits until the node exists, up to `timeout`; returns whether it does.
    pub async fn wait_for_initial_create(&self, timeout: Duration) -> bool {
        self.node.wait_for_initial_create(timeout).await
    }

    /// Replaces the node's data (see [`PersistentNode::set_data`]).
    ///
    /// # Errors
    /// As [`PersistentNode::set_data`].
    pub async fn set_data(&self, data: impl Into<Bytes>) -> zkwarden::Result<()> {
        self.node.set_data(data).await
    }

    /// The data the node is kept with.
    pub fn data(&self) -> Bytes {
        self.node.data()
    }

    /// What the task keeping the node does from now on (see [`PersistentNode::events`]).
    pub fn events(&self) -> NodeEvents {
        self.node.events()
    }

    /// Stops keeping the node without deleting it (as Curator's `close`): the server
    /// deletes it one TTL after the last write.
    pub fn close(self) {
        // Dropping stops both tasks; neither deletes anything.
    }
}

impl Drop for PersistentTtlNode {
    fn drop(&mut self) {
        self.touch.abort();
    }
}

/// Writes the child every `every`, creating it (as a TTL node) when it is missing. Failures
/// wait for the next tick: a missed write costs nothing while the TTL has not run out.
async fn touch_loop(warden: Warden, child: String, ttl: Duration, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if warden.is_closed() {
            return;
        }
        let outcome = match warden.set_data(&child, b"", None).await {
            Err(Error::NoNode) => {
                match warden
                    .create(&child, b"")
                    .mode(CreateMode::PersistentWithTtl)
                    .ttl(ttl)
                    .await
                {
                    // The parent is missing (being made again): the next tick tries again.
                    Ok(_) | Err(Error::NodeExists) | Err(Error::NoNode) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            other => other.map(|_| ()),
        };
        if let Err(error) = outcome {
            tracing::debug!(%child, %error, "could not touch the TTL node's child");
        }
    }
}
