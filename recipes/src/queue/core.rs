//! What every Curator-layout queue does the same way: its paths, encoding and putting items,
//! waiting for room in a bounded queue, and listing the items in order.

use std::fmt;
use std::sync::Arc;

use zkwarden::warden::{LockSafety, ParentMode};
use zkwarden::{CreateMode, Error, Result, Warden};

use super::items;
use super::naming::{ITEM_PREFIX, Kind};
use super::serializer::QueueSerializer;
use crate::lock::internals::{join, trim_path};

/// A queue's settings and the warden it runs on, shared by its producers and consumers.
pub(crate) struct Core<T> {
    pub(crate) warden: Warden,
    pub(crate) path: String,
    /// Where lock-safe consumers take their per-item locks (`None`: not lock-safe).
    pub(crate) lock_path: Option<String>,
    /// At most this many children before `put` waits (`None`: unbounded).
    pub(crate) max_items: Option<usize>,
    pub(crate) serializer: Arc<dyn QueueSerializer<T>>,
    pub(crate) kind: Kind,
    /// When a delivered item's lock counts as lost.
    pub(crate) safety: LockSafety,
}

impl<T> Clone for Core<T> {
    fn clone(&self) -> Self {
        Core {
            warden: self.warden.clone(),
            path: self.path.clone(),
            lock_path: self.lock_path.clone(),
            max_items: self.max_items,
            serializer: Arc::clone(&self.serializer),
            kind: self.kind,
            safety: self.safety,
        }
    }
}

impl<T> fmt::Debug for Core<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.path)
            .field("lock_path", &self.lock_path)
            .field("max_items", &self.max_items)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Core<T> {
    pub(crate) fn new(
        warden: &Warden,
        path: &str,
        serializer: impl QueueSerializer<T>,
        kind: Kind,
    ) -> Core<T> {
        Core {
            warden: warden.clone(),
            path: trim_path(path.to_owned()),
            lock_path: None,
            max_items: None,
            serializer: Arc::new(serializer),
            kind,
            safety: warden.lock_safety(),
        }
    }

    /// The full path of the item node `name`.
    pub(crate) fn item_path(&self, name: &str) -> String {
        join(&self.path, name)
    }

    /// Serializes `items` into one node's data.
    pub(crate) fn encode(&self, items: &[&T]) -> Result<Vec<u8>> {
        if items.is_empty() {
            return Err(Error::InvalidArgument(
                "a queue node needs at least one item".to_owned(),
            ));
        }
        let serialized = items
            .iter()
            .map(|item| self.serializer.serialize(item))
            .collect::<Result<Vec<_>>>()?;
        Ok(items::encode(&serialized))
    }

    /// Puts one node holding `items` named [`ITEM_PREFIX`] + `suffix` + a sequence number,
    /// after waiting for room in a bounded queue; returns its full path.
    pub(crate) async fn put(&self, items: &[&T], suffix: &str) -> Result<String> {
        let data = self.encode(items)?;
        self.wait_for_room().await?;
        self.create_item(suffix, &data).await
    }

    /// Creates the item node (and the queue's nodes when they are missing).
    pub(crate) async fn create_item(&self, suffix: &str, data: &[u8]) -> Result<String> {
        let path = join(&self.path, &format!("{ITEM_PREFIX}{suffix}"));
        let create = || {
            self.warden
                .create(&path, data)
                .mode(CreateMode::PersistentSequential)
        };
        match create().await {
            Err(Error::NoNode) => {
                self.ensure_paths().await?;
                create().await
            }
            other => other,
        }
    }

    /// Creates the queue node and the lock node as Curator's `start` does: persistent, with
    /// missing parents as containers. Existing nodes are fine.
    pub(crate) async fn ensure_paths(&self) -> Result<()> {
        for path in std::iter::once(&self.path).chain(self.lock_path.as_ref()) {
            match self
                .warden
                .create(path, b"")
                .parents(ParentMode::Container)
                .await
            {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Waits while the queue has `max_items` children or more (Curator's bounded `put`): by
    /// child watches, so a consumer taking an item lets the next `put` through.
    async fn wait_for_room(&self) -> Result<()> {
        let Some(max) = self.max_items else {
            return Ok(());
        };
        loop {
            let watcher = match self.warden.get_children_and_watch(&self.path).await {
                Ok((children, _)) if children.len() < max => return Ok(()),
                Ok((_, watcher)) => watcher,
                Err(Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            // Whatever fires (a change, the session's end), count again.
            let _ = watcher.await;
        }
    }

    /// The number of items in the queue now.
    pub(crate) async fn len(&self) -> Result<usize> {
        match self.warden.get_children(&self.path).await {
            Ok(children) => Ok(children
                .iter()
                .filter(|c| c.starts_with(ITEM_PREFIX))
                .count()),
            Err(Error::NoNode) => Ok(0),
            Err(e) => Err(e),
        }
    }
}
