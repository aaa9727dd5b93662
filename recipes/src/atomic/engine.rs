//! The one compare-and-set loop behind every atomic recipe: read the node and its version,
//! compute the new value, write it at that version, and try again when another writer came
//! first; optionally proving each write with a ticket, and promoting to a mutex when the
//! optimistic tries run out.

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;
use zkwarden::warden::ParentMode;
use zkwarden::{Error, ErrorCode, Op, Result, Warden};

use crate::lock::Mutex;

/// The name prefix of the ticket nodes that make changes exactly-once.
pub const TICKET_PREFIX: &str = "zkwarden-ticket-";

/// What the tries of one change cost (Curator's `AtomicStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AtomicStats {
    /// Reads-and-writes made optimistically.
    pub optimistic_tries: u32,
    /// Reads-and-writes made while holding the promotion mutex.
    pub promoted_tries: u32,
    /// Time spent optimistically.
    pub optimistic_time: Duration,
    /// Time spent on the promotion mutex (waiting for it and inside).
    pub promoted_time: Duration,
}

/// The outcome of a change (Curator's `AtomicValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicValue<T> {
    /// Whether the change was applied.
    pub succeeded: bool,
    /// The value just before the change (the value found, when nothing was changed).
    pub pre: T,
    /// The value after the change (equal to `pre` when nothing was changed).
    pub post: T,
    /// What the change cost.
    pub stats: AtomicStats,
}

impl<T> AtomicValue<T> {
    /// The same outcome with the values mapped by `f`.
    pub(crate) fn try_map<U>(self, f: impl Fn(T) -> Result<U>) -> Result<AtomicValue<U>> {
        Ok(AtomicValue {
            succeeded: self.succeeded,
            pre: f(self.pre)?,
            post: f(self.post)?,
            stats: self.stats,
        })
    }
}

/// When and how a change falls back to a mutex (Curator's `PromotedToLock`): once the
/// optimistic tries are spent, it takes a [`Mutex`] (Curator's `InterProcessMutex`, so
/// Curator processes promoted on the same lock path exclude ours) and tries again while
/// holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotedToLock {
    /// The mutex's path (not the counter's).
    pub lock_path: String,
    /// How long to wait for the mutex; `None` waits as long as it takes. Running out makes
    /// the change fail (`succeeded == false`), as in Curator.
    pub max_wait: Option<Duration>,
    /// Tries while holding the mutex (at least one; Curator's default policy allows one).
    pub tries: u32,
}

impl PromotedToLock {
    /// Promotion to the mutex at `lock_path`, waiting for it as long as it takes, one try.
    pub fn new(lock_path: impl Into<String>) -> PromotedToLock {
        PromotedToLock {
            lock_path: lock_path.into(),
            max_wait: None,
            tries: 1,
        }
    }

    /// Sets how long to wait for the mutex.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = Some(wait);
        self
    }

    /// Sets the tries made while holding the mutex.
    pub fn tries(mut self, tries: u32) -> Self {
        self.tries = tries;
        self
    }
}

/// A ticket node: its path and, when known, its data version.
#[derive(Debug, Clone)]
struct Ticket {
    path: String,
    version: Option<i32>,
}

/// The settings and state of one atomic recipe on one node.
#[derive(Debug)]
pub(crate) struct Engine {
    pub(crate) warden: Warden,
    pub(crate) path: String,
    /// Optimistic tries per change; `None`: until it lands.
    pub(crate) tries: Option<u32>,
    pub(crate) promotion: Option<(PromotedToLock, Mutex)>,
    /// Where tickets live; `None`: no tickets (Curator's plain versioned writes).
    pub(crate) ticket_parent: Option<String>,
    /// Tickets not in use by a change right now.
    tickets: StdMutex<Vec<Ticket>>,
}

/// What one run of tries came to.
enum Round {
    Done {
        pre: Option<Vec<u8>>,
        post: Vec<u8>,
    },
    /// The change wanted nothing written for this value.
    Refused {
        pre: Option<Vec<u8>>,
    },
    /// The tries ran out; the last value read.
    Exhausted {
        pre: Option<Vec<u8>>,
    },
}

/// The state of one run of tries, kept across the attempts of its retry loop.
struct Progress {
    ticket: Option<Ticket>,
    /// `(pre, post)` of a write whose outcome is not known yet.
    pending: Option<(Option<Vec<u8>>, Vec<u8>)>,
    tries: u32,
}

/// A ticket taken from the pool for one run; goes back when it ends (or is dropped).
struct Lease<'a> {
    pool: &'a StdMutex<Vec<Ticket>>,
    progress: AsyncMutex<Progress>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let progress = self.progress.get_mut();
        if let Some(mut ticket) = progress.ticket.take() {
            if progress.pending.is_some() {
                // A write may be in flight: the next user must read the version first.
                ticket.version = None;
            }
            if let Ok(mut pool) = self.pool.lock() {
                pool.push(ticket);
            }
        }
    }
}

/// How a change maps the value found (`None`: no node) to the value to write (`None`: write
/// nothing).
pub(crate) type Change<'a> = dyn Fn(Option<&[u8]>) -> Result<Option<Vec<u8>>> + Send + Sync + 'a;

impl Engine {
    /// An engine on `path` with exactly-once tickets under `<path>-tickets`, unbounded
    /// optimistic tries and no promotion.
    pub(crate) fn new(warden: &Warden, path: &str) -> Engine {
        Engine {
            warden: warden.clone(),
            path: path.to_owned(),
            tries: None,
            promotion: None,
            ticket_parent: Some(format!("{}-tickets", path.trim_end_matches('/'))),
            tickets: StdMutex::new(Vec::new()),
        }
    }

    /// Sets the promotion (its mutex carries the warden's lock safety).
    pub(crate) fn promote(&mut self, promotion: PromotedToLock) {
        let mutex = Mutex::new(&self.warden, promotion.lock_path.clone());
        self.promotion = Some((promotion, mutex));
    }

    /// Applies `change`: optimistically, then (if set) under the promotion mutex.
    /// `optimistic` overrides the optimistic tries (`Some(1)` for a single compare-and-set);
    /// `promote` allows the promotion.
    pub(crate) async fn modify(
        &self,
        change: &Change<'_>,
        optimistic: Option<Option<u32>>,
        promote: bool,
    ) -> Result<AtomicValue<Option<Vec<u8>>>> {
        let mut stats = AtomicStats::default();
        let started = Instant::now();
        let tries = optimistic.unwrap_or(self.tries);
        let first = self.round(change, tries, &mut stats.optimistic_tries).await;
        stats.optimistic_time = started.elapsed();
        let pre = match first? {
            Round::Done { pre, post } => return Ok(done(pre, post, stats)),
            Round::Refused { pre } => return Ok(not_done(pre, stats)),
            Round::Exhausted { pre } => pre,
        };
        let Some((promotion, mutex)) = self.promotion.as_ref().filter(|_| promote) else {
            return Ok(not_done(pre, stats));
        };
        let started = Instant::now();
        let held = match promotion.max_wait {
            Some(wait) => mutex.lock_until(Instant::now() + wait).await,
            None => mutex.lock().await,
        };
        let guard = match held {
            Ok(guard) => guard,
            Err(Error::Timeout) => {
                stats.promoted_time = started.elapsed();
                return Ok(not_done(pre, stats));
            }
            Err(e) => return Err(e),
        };
        let second = self
            .round(
                change,
                Some(promotion.tries.max(1)),
                &mut stats.promoted_tries,
            )
            .await;
        if let Err(error) = guard.release().await {
            tracing::debug!(path = %self.path, %error, "promotion mutex release pending");
        }
        stats.promoted_time = started.elapsed();
        Ok(match second? {
            Round::Done { pre, post } => done(pre, post, stats),
            Round::Refused { pre } | Round::Exhausted { pre } => not_done(pre, stats),
        })
    }

    /// Deletes the ticket nodes this engine made.
    pub(crate) async fn close(&self) -> Result<()> {
        let tickets: Vec<Ticket> = match self.tickets.lock() {
            Ok(mut pool) => pool.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        let mut result = Ok(());
        for ticket in tickets {
            if let Err(e) = self.warden.delete(&ticket.path, None).idempotent().await {
                if let Ok(mut pool) = self.tickets.lock() {
                    pool.push(ticket);
                }
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Up to `tries` reads-and-writes (all of them under one retry budget of the warden).
    async fn round(
        &self,
        change: &Change<'_>,
        tries: Option<u32>,
        spent: &mut u32,
    ) -> Result<Round> {
        let ticket = self.ticket_parent.as_ref().map(|parent| {
            let pooled = self.tickets.lock().ok().and_then(|mut pool| pool.pop());
            pooled.unwrap_or_else(|| Ticket {
                path: format!("{parent}/{TICKET_PREFIX}{}", crate::barrier::random_uuid()),
                version: None,
            })
        });
        let lease = Lease {
            pool: &self.tickets,
            progress: AsyncMutex::new(Progress {
                ticket,
                pending: None,
                tries: 0,
            }),
        };
        let progress = &lease.progress;
        let path = self.path.as_str();
        let outcome = self
            .warden
            .retrying(|warden| async move {
                let mut progress = progress.lock().await;
                attempt(&warden, path, &mut progress, change, tries).await
            })
            .await;
        *spent += lease.progress.lock().await.tries;
        outcome
    }
}

fn done(pre: Option<Vec<u8>>, post: Vec<u8>, stats: AtomicStats) -> AtomicValue<Option<Vec<u8>>> {
    AtomicValue {
        succeeded: true,
        pre,
        post: Some(post),
        stats,
    }
}

fn not_done(pre: Option<Vec<u8>>, stats: AtomicStats) -> AtomicValue<Option<Vec<u8>>> {
    AtomicValue {
        succeeded: false,
        post: pre.clone(),
        pre,
        stats,
    }
}

/// One attempt of a run: settle an earlier write of unknown outcome, then read, write and
/// repeat while other writers come first and tries are left.
async fn attempt(
    warden: &Warden,
    path: &str,
    progress: &mut Progress,
    change: &Change<'_>,
    limit: Option<u32>,
) -> Result<Round> {
    let Progress {
        ticket,
        pending,
        tries,
    } = progress;
    if let (Some((pre, post)), Some(ticket)) = (pending.take(), ticket.as_mut()) {
        if settle(warden, path, ticket).await? {
            return Ok(Round::Done { pre, post });
        }
    }
    loop {
        let (pre, version) = match warden.get_data(path).await {
            Ok((data, stat)) => (Some(data.to_vec()), Some(stat.version)),
            Err(Error::NoNode) => (None, None),
            Err(e) => return Err(e),
        };
        if let (Some(_), None) = (&ticket, version) {
            // The ticket goes with a versioned write: make the node first (empty, which
            // every recipe reads as no value), then read it like any other.
            create_if_missing(warden, path, b"").await?;
            continue;
        }
        if limit.is_some_and(|n| *tries >= n) {
            // Out of tries: report the value as it is now.
            return Ok(Round::Exhausted { pre });
        }
        *tries += 1;
        let Some(post) = change(pre.as_deref())? else {
            return Ok(Round::Refused { pre });
        };
        let landed = match (ticket.as_mut(), version) {
            // Curator's writes: a repeat after a lost reply fails `BadVersion` (or
            // `NodeExists`) like a lost race, so such a change may be applied twice.
            (None, Some(version)) => match warden.set_data(path, &post, Some(version)).await {
                Ok(_) => true,
                Err(Error::BadVersion | Error::NoNode) => false,
                Err(e) => return Err(e),
            },
            (None, None) => match warden
                .create(path, &post)
                .parents(ParentMode::Container)
                .await
            {
                Ok(_) => true,
                Err(Error::NodeExists) => false,
                Err(e) => return Err(e),
            },
            (Some(ticket), Some(version)) => {
                let ticket_version = ticket_version(warden, ticket).await?;
                *pending = Some((pre.clone(), post.clone()));
                let written = warden
                    .multi(&[
                        // The ticket first: if an earlier send of ours landed (a repeat the
                        // warden made after the reply was lost), this op is the one that fails.
                        Op::set_data(ticket.path.clone(), Vec::new(), Some(ticket_version)),
                        Op::set_data(path, post.clone(), Some(version)),
                    ])
                    .await;
                match written {
                    Ok(_) => {
                        *pending = None;
                        ticket.version = Some(ticket_version.wrapping_add(1));
                        true
                    }
                    // The ticket matched, so no earlier send of ours landed; another writer
                    // came first, or the node was deleted. Nothing was applied.
                    Err(Error::MultiFailed {
                        index: 1,
                        code: ErrorCode::BadVersion | ErrorCode::NoNode,
                        ..
                    }) => {
                        *pending = None;
                        false
                    }
                    Err(e) if e.is_not_applied() => {
                        *pending = None;
                        return Err(e);
                    }
                    // The ticket did not match: an earlier send of ours may have landed.
                    Err(Error::MultiFailed { index: 0, .. }) => {
                        *pending = None;
                        settle(warden, path, ticket).await?
                    }
                    // Ambiguous (or final): the next attempt, if any, settles it first.
                    Err(e) => return Err(e),
                }
            }
            (Some(_), None) => false,
        };
        if landed {
            return Ok(Round::Done { pre, post });
        }
    }
}

/// Creates `path` with `data` (and missing parents as containers); an existing node is fine.
pub(crate) async fn create_if_missing(warden: &Warden, path: &str, data: &[u8]) -> Result<()> {
    match warden
        .create(path, data)
        .parents(ParentMode::Container)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
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
            None => match warden
                .create(&ticket.path, b"")
                .parents(ParentMode::Container)
                .await
            {
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
