//! Counters kept in one znode, in Apache Curator's encodings: [`SharedCount`] (Curator's
//! `SharedCount`, a 4-byte big-endian `int`) and [`AtomicLong`] (Curator's
//! `DistributedAtomicLong`, an 8-byte big-endian `long`; it lives in
//! [`atomic`](crate::atomic) with the other atomic values and is re-exported here).
//!
//! Both change the node only with versioned writes (compare-and-set on the node's data
//! version), so a Rust process and a Curator process can share one counter path.

pub use crate::atomic::{AtomicLong, AtomicResult, TICKET_PREFIX};

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use zkwarden::warden::{DataEvent, DataWatch};
use zkwarden::{Error, Result, Warden};

/// A value read from a counter node together with the node's data version, which a later
/// compare-and-set ([`SharedCount::try_set`]) must still find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionedValue {
    /// The counter's value.
    pub value: i32,
    /// The data version of the node when `value` was read.
    pub version: i32,
}

/// Encodes a shared count as Curator does: four bytes, big-endian.
fn encode_i32(value: i32) -> [u8; 4] {
    value.to_be_bytes()
}

fn decode_i32(path: &str, data: &[u8]) -> Result<i32> {
    let bytes: [u8; 4] = data.try_into().map_err(|_| {
        Error::InvalidArgument(format!(
            "{path} holds {} bytes, not a 4-byte shared count",
            data.len()
        ))
    })?;
    Ok(i32::from_be_bytes(bytes))
}

/// An `i32` shared through one znode, as Apache Curator's `SharedCount`: the node's data is
/// the value as four big-endian bytes, and every change is a versioned write.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::counter::SharedCount;
///
/// let count = SharedCount::new(&warden, "/app/workers", 0);
/// count.create_if_missing().await?;
/// loop {
///     let seen = count.get().await?;
///     if count.try_set(seen, seen.value + 1).await? {
///         break;
///     }
/// }
/// let mut changes = count.watch();
/// while let Some(now) = changes.next().await {
///     println!("count is {} (version {})", now.value, now.version);
/// }
/// # Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// The count lives in a persistent node, so neither state changes it. Calls made while the
/// connection is `Suspended` wait for it (up to the warden's connection timeout) and are
/// retried by the warden's policy; across a `Lost` session they continue on the new session.
/// A [`try_set`](SharedCount::try_set) whose reply was lost is repeated; see its docs for
/// what it then returns. The [`watch`](SharedCount::watch) stream stays open through
/// both and reports the value read again on a new session, since changes made meanwhile
/// went unseen.
#[derive(Debug, Clone)]
pub struct SharedCount {
    warden: Warden,
    path: String,
    seed: i32,
}

impl SharedCount {
    /// A shared count at `path`; `seed` is the value
    /// [`create_if_missing`](SharedCount::create_if_missing) gives a node that does not exist
    /// yet. Nothing runs in the background: every call is one operation.
    pub fn new(warden: &Warden, path: &str, seed: i32) -> SharedCount {
        SharedCount {
            warden: warden.clone(),
            path: path.to_owned(),
            seed,
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Creates the node holding the seed if it does not exist (missing parents become
    /// container nodes, as in Curator). An existing node keeps its value.
    ///
    /// # Errors
    /// `NoAuth`; `InvalidPath`; connection errors once the warden's retries are spent;
    /// `Closed`.
    pub async fn create_if_missing(&self) -> Result<()> {
        crate::atomic::create_if_missing(&self.warden, &self.path, &encode_i32(self.seed)).await
    }

    /// Creates the node holding the seed if it does not exist (the old name of
    /// [`create_if_missing`](SharedCount::create_if_missing), from Curator's `start`).
    ///
    /// # Errors
    /// As [`create_if_missing`](SharedCount::create_if_missing).
    #[deprecated(note = "use `SharedCount::create_if_missing`")]
    pub async fn start(&self) -> Result<()> {
        self.create_if_missing().await
    }

    /// The current value and the node's data version.
    ///
    /// # Errors
    /// `NoNode` before [`create_if_missing`](SharedCount::create_if_missing); `InvalidArgument` when the node does
    /// not hold exactly four bytes; `NoAuth`; connection errors once retries are spent.
    pub async fn get(&self) -> Result<VersionedValue> {
        let (data, stat) = self.warden.get_data(&self.path).await?;
        Ok(VersionedValue {
            value: decode_i32(&self.path, &data)?,
            version: stat.version,
        })
    }

    /// Sets the count to `new` only if the node is still at `previous.version` (Curator's
    /// `trySetCount`). Returns `false` when another write came first: read again with
    /// [`get`](SharedCount::get) and retry.
    ///
    /// `true` is always accurate. A write whose reply was lost is repeated by the warden,
    /// and if the first send had landed the repeat finds the version moved on: then `false`
    /// is returned although the count holds `new` (Curator behaves the same). A caller that
    /// re-reads and tries again may so apply its change twice; for exact counting under
    /// failures use [`AtomicLong`].
    ///
    /// (This deliberately does not use [`SetDataBuilder::idempotent`]: it judges any
    /// `BadVersion` by the data alone, and every contender that read the same version writes
    /// the same next value, so under contention it reports other writers' writes as ours.)
    ///
    /// [`SetDataBuilder::idempotent`]: zkwarden::warden::SetDataBuilder::idempotent
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn try_set(&self, previous: VersionedValue, new: i32) -> Result<bool> {
        match self
            .warden
            .set_data(&self.path, &encode_i32(new), Some(previous.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::BadVersion) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the count to `new` whatever it holds now (Curator's `setCount`).
    ///
    /// # Errors
    /// `NoNode`; `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn set(&self, new: i32) -> Result<()> {
        self.warden
            .set_data(&self.path, &encode_i32(new), None)
            .await
            .map(|_| ())
    }

    /// Follows the count: the value now, then every change, through reconnections and new
    /// sessions (built on [`Warden::watch_data`]).
    pub fn watch(&self) -> CountWatch {
        CountWatch {
            path: self.path.clone(),
            inner: self.warden.watch_data(&self.path),
        }
    }
}

/// The values a [`SharedCount`] takes, from [`SharedCount::watch`].
#[derive(Debug)]
#[must_use = "the watch is removed when the stream is dropped"]
pub struct CountWatch {
    path: String,
    inner: DataWatch,
}

impl CountWatch {
    /// The next value seen: first the current one, then one per observed change (quick
    /// successive changes may arrive as one). While the node does not exist, or holds
    /// something other than four bytes, nothing is reported. `None` once the warden closed.
    /// The same as `StreamExt::next` on the watch.
    pub async fn next(&mut self) -> Option<VersionedValue> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

/// Yields what [`CountWatch::next`] returns.
impl futures_core::Stream for CountWatch {
    type Item = VersionedValue;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<VersionedValue>> {
        loop {
            let (data, stat) = match std::task::ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(
                    DataEvent::Resync {
                        node: Some((data, stat)),
                        ..
                    }
                    | DataEvent::Changed { data, stat }
                    | DataEvent::Created { data, stat },
                ) => (data, stat),
                Some(DataEvent::Resync { node: None, .. } | DataEvent::Deleted) => continue,
            };
            match decode_i32(&self.path, &data) {
                Ok(value) => {
                    return Poll::Ready(Some(VersionedValue {
                        value,
                        version: stat.version,
                    }));
                }
                Err(error) => tracing::warn!(%error, "shared count not decodable"),
            }
        }
    }
}
