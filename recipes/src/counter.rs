//! Counters kept in one znode, in Apache Curator's encodings: [`SharedCount`] (Curator's
//! `SharedCount`, a 4-byte big-endian `int`) and [`AtomicLong`] (Curator's
//! `DistributedAtomicLong`, an 8-byte big-endian `long`).
//!
//! Both change the node only with versioned writes (compare-and-set on the node's data
//! version), so a Rust process and a Curator process can share one counter path.

use std::sync::Mutex;

use tokio::sync::Mutex as AsyncMutex;
use zkwarden::warden::{DataEvent, DataWatch, ParentMode};
use zkwarden::{Error, ErrorCode, Op, Result, Warden};

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

/// Encodes an atomic long as Curator does: eight bytes, big-endian.
fn encode_i64(value: i64) -> [u8; 8] {
    value.to_be_bytes()
}

/// Curator reads a node without data as 0; anything but 0 or 8 bytes is corrupt.
fn decode_i64(path: &str, data: &[u8]) -> Result<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    let bytes: [u8; 8] = data.try_into().map_err(|_| {
        Error::InvalidArgument(format!(
            "{path} holds {} bytes, not an 8-byte atomic long",
            data.len()
        ))
    })?;
    Ok(i64::from_be_bytes(bytes))
}

/// Creates `path` with `data` (and missing parents as containers); an existing node is fine.
async fn create_if_missing(warden: &Warden, path: &str, data: &[u8]) -> Result<()> {
    match warden
        .create(path, data)
        .parents(ParentMode::Container)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

/// An `i32` shared through one znode, as Apache Curator's `SharedCount`: the node's data is
/// the value as four big-endian bytes, and every change is a versioned write.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::counter::SharedCount;
///
/// let count = SharedCount::new(&warden, "/app/workers", 0);
/// count.start().await?;
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
    /// A shared count at `path`; `seed` is the value [`start`](SharedCount::start) gives a
    /// node that does not exist yet.
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
    pub async fn start(&self) -> Result<()> {
        create_if_missing(&self.warden, &self.path, &encode_i32(self.seed)).await
    }

    /// The current value and the node's data version.
    ///
    /// # Errors
    /// `NoNode` before [`start`](SharedCount::start); `InvalidArgument` when the node does
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
    pub async fn next(&mut self) -> Option<VersionedValue> {
        loop {
            let (data, stat) = match self.inner.next().await? {
                DataEvent::Resync {
                    node: Some((data, stat)),
                    ..
                }
                | DataEvent::Changed { data, stat }
                | DataEvent::Created { data, stat } => (data, stat),
                DataEvent::Resync { node: None, .. } | DataEvent::Deleted => continue,
            };
            match decode_i32(&self.path, &data) {
                Ok(value) => {
                    return Some(VersionedValue {
                        value,
                        version: stat.version,
                    });
                }
                Err(error) => tracing::warn!(%error, "shared count not decodable"),
            }
        }
    }
}

/// The outcome of an [`AtomicLong`] change, as Curator's `AtomicValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AtomicResult {
    /// Whether the change was applied (always for `add`; for `compare_and_set` only when the
    /// value was the expected one).
    pub succeeded: bool,
    /// The value just before the change (the value found, when nothing was changed).
    pub pre: i64,
    /// The value after the change (equal to `pre` when nothing was changed).
    pub post: i64,
}

/// The name prefix of the ticket nodes an [`AtomicLong`] keeps below its counter node.
pub const TICKET_PREFIX: &str = "zkwarden-ticket-";

/// A ticket node: its path and, when known, its data version.
#[derive(Debug, Clone)]
struct Ticket {
    path: String,
    version: Option<i32>,
}

/// An `i64` in one znode, changed atomically, as Apache Curator's `DistributedAtomicLong`:
/// the node's data is the value as eight big-endian bytes (a node without data reads as 0),
/// and every change is an optimistic compare-and-set: read the value and data version,
/// write the new value at that version, and start over when another writer came first.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::counter::AtomicLong;
///
/// let hits = AtomicLong::new(&warden, "/app/hits");
/// let result = hits.increment().await?;
/// assert!(result.succeeded);
/// println!("{} -> {}", result.pre, result.post);
/// let swapped = hits.compare_and_set(result.post, 0).await?;
/// println!("reset: {}", swapped.succeeded);
/// hits.close().await?;
/// # Ok(()) }
/// ```
///
/// # Exactly once
///
/// A change is one logical operation under [`Warden::retrying`]: connection errors anywhere
/// inside it (the read, the write, the checks below) share one retry budget.
///
/// A versioned write whose reply was lost is ambiguous, and the data cannot settle it: every
/// contender that read the same version writes the same bytes, so "the node holds my value
/// at the next version" does not prove the write was mine, and a write of mine that did land
/// may already have been overwritten. So each write is a transaction that also bumps the
/// version of a *ticket* node owned by this `AtomicLong` (a persistent child of the counter
/// node named [`TICKET_PREFIX`] + a UUID). After a lost reply the ticket's version says
/// exactly whether the transaction was applied; the change is then reported as done, or
/// tried again. Every successful change is therefore counted exactly once, however often
/// connections drop or sessions expire.
///
/// Concurrent calls on one `AtomicLong` use separate tickets. [`close`](AtomicLong::close)
/// deletes them; tickets of a process that never closed stay behind (a few bytes each) and
/// make a plain delete of the counter node fail `NotEmpty` (delete it recursively).
/// Curator ignores the children: it reads and writes only the counter node's data.
///
/// # Under Suspended/Lost
///
/// The value and the tickets are persistent nodes, so neither state loses anything. While
/// `Suspended`, a change waits for the connection and is retried within its budget; across a
/// `Lost` session it continues on the new session, first checking its ticket when a write
/// was in flight. When the budget runs out the call fails with the connection error, and the
/// change may or may not have been applied (as for any write); the next call on the same
/// `AtomicLong` re-reads the ticket's version before using it.
#[derive(Debug)]
pub struct AtomicLong {
    warden: Warden,
    path: String,
    /// Tickets not in use by a call right now.
    tickets: Mutex<Vec<Ticket>>,
}

/// The state of one call, kept across the attempts of its retry loop.
struct Progress {
    ticket: Ticket,
    /// `(pre, post)` of a write whose outcome is not known yet.
    pending: Option<(i64, i64)>,
}

/// A ticket taken from the pool for one call; goes back when the call ends (or is dropped).
struct Lease<'a> {
    pool: &'a Mutex<Vec<Ticket>>,
    progress: AsyncMutex<Progress>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let progress = self.progress.get_mut();
        let mut ticket = progress.ticket.clone();
        if progress.pending.is_some() {
            // A write may be in flight: the next user must read the version first.
            ticket.version = None;
        }
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(ticket);
        }
    }
}

impl AtomicLong {
    /// An atomic long at `path`. Nothing is read or created until the first call; the node
    /// (and missing parents, as containers) is created holding 0 on first use.
    pub fn new(warden: &Warden, path: &str) -> AtomicLong {
        AtomicLong {
            warden: warden.clone(),
            path: path.to_owned(),
            tickets: Mutex::new(Vec::new()),
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The current value; 0 while the node does not exist.
    ///
    /// # Errors
    /// `InvalidArgument` when the node holds neither 0 nor 8 bytes; `NoAuth`; connection
    /// errors once retries are spent; `Closed`.
    pub async fn get(&self) -> Result<i64> {
        match self.warden.get_data(&self.path).await {
            Ok((data, _)) => decode_i64(&self.path, &data),
            Err(Error::NoNode) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Adds one.
    ///
    /// # Errors
    /// As [`add`](AtomicLong::add).
    pub async fn increment(&self) -> Result<AtomicResult> {
        self.add(1).await
    }

    /// Subtracts one.
    ///
    /// # Errors
    /// As [`add`](AtomicLong::add).
    pub async fn decrement(&self) -> Result<AtomicResult> {
        self.add(-1).await
    }

    /// Adds `delta` (wrapping on overflow, as Java's `long`). Always `succeeded` when it
    /// returns `Ok`: contention is retried until the write lands.
    ///
    /// # Errors
    /// `InvalidArgument` for a node holding neither 0 nor 8 bytes; `NoAuth`; connection
    /// errors once the call's retry budget is spent (the change may then have been
    /// applied); `Server(DataInconsistency)` when another client changed this call's ticket
    /// node so its outcome cannot be known; `Closed`.
    pub async fn add(&self, delta: i64) -> Result<AtomicResult> {
        self.modify(|value| Some(value.wrapping_add(delta))).await
    }

    /// Sets the value to `new` if it is `expected` now. A write that loses a race to a
    /// writer that left the value at `expected` is tried again; `succeeded` is `false` only
    /// when the value was something else (then `pre == post ==` that value).
    ///
    /// # Errors
    /// As [`add`](AtomicLong::add).
    pub async fn compare_and_set(&self, expected: i64, new: i64) -> Result<AtomicResult> {
        self.modify(|value| (value == expected).then_some(new))
            .await
    }

    /// Deletes the ticket nodes this `AtomicLong` made (the counter node stays). Call it
    /// when done; the `AtomicLong` stays usable (it makes a new ticket when needed).
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent (the remaining tickets are kept
    /// for a later `close`); `Closed`.
    pub async fn close(&self) -> Result<()> {
        let tickets: Vec<Ticket> = match self.tickets.lock() {
            Ok(mut pool) => pool.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let mut result = Ok(());
        for ticket in tickets {
            match self.warden.delete(&ticket.path, None).idempotent().await {
                Ok(()) => {}
                Err(e) => {
                    if let Ok(mut pool) = self.tickets.lock() {
                        pool.push(ticket);
                    }
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
        }
        result
    }

    fn lease(&self) -> Lease<'_> {
        let pooled = self.tickets.lock().ok().and_then(|mut pool| pool.pop());
        let ticket = pooled.unwrap_or_else(|| Ticket {
            path: format!(
                "{}/{TICKET_PREFIX}{}",
                self.path.trim_end_matches('/'),
                crate::barrier::random_uuid()
            ),
            version: None,
        });
        Lease {
            pool: &self.tickets,
            progress: AsyncMutex::new(Progress {
                ticket,
                pending: None,
            }),
        }
    }

    /// The optimistic loop: `change` maps the value found to the value to write, or `None`
    /// to write nothing.
    async fn modify(&self, change: impl Fn(i64) -> Option<i64>) -> Result<AtomicResult> {
        let lease = self.lease();
        let change = &change;
        let progress = &lease.progress;
        let path = self.path.as_str();
        self.warden
            .retrying(|warden| async move {
                let mut progress = progress.lock().await;
                attempt(&warden, path, &mut progress, change).await
            })
            .await
    }
}

/// One attempt of a change: settle an earlier write of unknown outcome, then read, write and
/// repeat while other writers come first.
async fn attempt(
    warden: &Warden,
    path: &str,
    progress: &mut Progress,
    change: &impl Fn(i64) -> Option<i64>,
) -> Result<AtomicResult> {
    if let Some((pre, post)) = progress.pending {
        if settle(warden, path, &mut progress.ticket).await? {
            progress.pending = None;
            return Ok(AtomicResult {
                succeeded: true,
                pre,
                post,
            });
        }
        progress.pending = None;
    }
    loop {
        let (pre, version) = match warden.get_data(path).await {
            Ok((data, stat)) => (decode_i64(path, &data)?, stat.version),
            Err(Error::NoNode) => {
                // First use: create it holding 0, then read it like any other.
                create_if_missing(warden, path, &encode_i64(0)).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(post) = change(pre) else {
            return Ok(AtomicResult {
                succeeded: false,
                pre,
                post: pre,
            });
        };
        let ticket_version = ticket_version(warden, &mut progress.ticket).await?;
        progress.pending = Some((pre, post));
        let written = warden
            .multi(&[
                // The ticket first: if an earlier send of ours landed (a repeat the warden
                // made after the reply was lost), this op is the one that fails.
                Op::set_data(
                    progress.ticket.path.clone(),
                    Vec::new(),
                    Some(ticket_version),
                ),
                Op::set_data(path, encode_i64(post).to_vec(), Some(version)),
            ])
            .await;
        match written {
            Ok(_) => {
                progress.pending = None;
                progress.ticket.version = Some(ticket_version.wrapping_add(1));
                return Ok(AtomicResult {
                    succeeded: true,
                    pre,
                    post,
                });
            }
            // The ticket matched, so no earlier send of ours landed; another writer came
            // first, or the node was deleted meanwhile. Nothing was applied (a transaction
            // is all or nothing): read again.
            Err(Error::MultiFailed {
                index: 1,
                code: ErrorCode::BadVersion | ErrorCode::NoNode,
                ..
            }) => progress.pending = None,
            // Never sent.
            Err(e) if e.is_not_applied() => {
                progress.pending = None;
                return Err(e);
            }
            // The ticket did not match: an earlier attempt of ours may have landed after all.
            Err(Error::MultiFailed { index: 0, .. }) => {
                if settle(warden, path, &mut progress.ticket).await? {
                    progress.pending = None;
                    return Ok(AtomicResult {
                        succeeded: true,
                        pre,
                        post,
                    });
                }
                progress.pending = None;
            }
            // Ambiguous (or final): the next attempt, if any, settles it first.
            Err(e) => return Err(e),
        }
    }
}

/// The ticket's version, reading it (or creating the ticket) when it is not known.
async fn ticket_version(warden: &Warden, ticket: &mut Ticket) -> Result<i32> {
    loop {
        if let Some(version) = ticket.version {
            return Ok(version);
        }
        match warden.exists(&ticket.path).await? {
            Some(stat) => ticket.version = Some(stat.version),
            None => match warden.create(&ticket.path, b"").await {
                Ok(_) => ticket.version = Some(0),
                // Ours (the name holds a fresh UUID), made by an attempt whose reply was
                // lost: read its version.
                Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            },
        }
    }
}

/// Whether the transaction written with the ticket at its known version was applied: the
/// ticket's version moved on by exactly one if and only if it was.
async fn settle(warden: &Warden, path: &str, ticket: &mut Ticket) -> Result<bool> {
    let Some(before) = ticket.version else {
        return Err(Error::Server(ErrorCode::DataInconsistency));
    };
    // Make sure this server has seen everything the write could have become.
    warden.sync(path).await?;
    match warden.exists(&ticket.path).await? {
        Some(stat) if stat.version == before.wrapping_add(1) => {
            ticket.version = Some(stat.version);
            Ok(true)
        }
        Some(stat) if stat.version == before => Ok(false),
        other => {
            tracing::warn!(ticket = %ticket.path, found = ?other.map(|s| s.version), before,
                "ticket changed by someone else: outcome of the write unknown");
            ticket.version = None;
            Err(Error::Server(ErrorCode::DataInconsistency))
        }
    }
}
