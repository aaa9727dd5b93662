//! [`LeaderSelector`]: leadership handed to user code as a scope, in the queue Curator's
//! `LeaderSelector` uses.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use zkwarden::warden::LockSafety;
use zkwarden::{Error, Result, Warden};

use super::contend::{Contender, OwnNode, Pauser, pause_until};
use super::naming::trim_path;
use super::participants::{self, Participant};
use super::{Leadership, holder_id};
use crate::lock::LOCK_NAME;

/// What a leader scope returns: `()`, or a `Result` so that `?` works inside the scope. An
/// error ends the term like a return does; it is logged and kept on the handle
/// ([`LeaderSelector::last_error`]).
pub trait TermOutcome: Send + 'static {
    /// The error the term ended with, as text, if it ended with one.
    fn into_error(self) -> Option<String>;
}

impl TermOutcome for () {
    fn into_error(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display + Send + 'static> TermOutcome for std::result::Result<(), E> {
    fn into_error(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// Settings of a [`LeaderSelector`], from [`LeaderSelector::builder`];
/// [`start`](Self::start) joins the election with a scope to run each term, and
/// [`run`](Self::run) runs one scope once.
#[derive(Clone)]
#[must_use = "a selector does nothing until started"]
pub struct LeaderSelectorBuilder {
    contender: Contender,
    id: String,
    requeue: bool,
}

impl fmt::Debug for LeaderSelectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderSelectorBuilder")
            .field("path", &self.contender.parent)
            .field("id", &self.id)
            .field("requeue", &self.requeue)
            .finish_non_exhaustive()
    }
}

impl LeaderSelectorBuilder {
    /// The participant id written into the queue node.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self.contender.payload = self.id.clone().into_bytes();
        self
    }

    /// When the token is cancelled on a lost connection (see [`Leadership::lost`]).
    pub fn safety(mut self, safety: LockSafety) -> Self {
        self.contender.safety = safety;
        self
    }

    /// Whether to queue again after a term ends (the default) or run at most one term.
    pub fn requeue(mut self, requeue: bool) -> Self {
        self.requeue = requeue;
        self
    }

    /// Joins the election: a task queues, and `scope` runs once per term.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path; [`Error::Closed`] when the warden is
    /// closed.
    pub async fn start<F, Fut>(self, scope: F) -> Result<LeaderSelector>
    where
        F: FnMut(Leadership, CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TermOutcome,
    {
        crate::starting::check(&self.contender.warden, &self.contender.parent, false)?;
        Ok(self.spawn(scope))
    }

    fn spawn<F, Fut>(self, scope: F) -> LeaderSelector
    where
        F: FnMut(Leadership, CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TermOutcome,
    {
        let (current, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            selector: self,
            current,
            node: StdMutex::new(None),
            terms: AtomicU64::new(0),
            last_error: StdMutex::new(None),
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(drive(shared.clone(), scope, shutdown.clone()));
        LeaderSelector {
            shared,
            shutdown,
            task: Some(task),
        }
    }

    /// Waits until this participant leads, runs `scope` for that one term, steps down (its
    /// queue node deleted) and returns what the scope returned: the shortest way to run
    /// something while leader. The token is cancelled when leadership may be lost, as for
    /// [`start`](Self::start); the scope should return promptly then.
    ///
    /// # Errors
    /// As [`start`](Self::start); [`Error::Closed`] when the warden closes before this
    /// participant leads, or when the scope panicked (the panic is logged).
    pub async fn run<F, Fut, T>(self, scope: F) -> Result<T>
    where
        F: FnOnce(Leadership, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut once = Some((scope, tx));
        let handle = self
            .requeue(false)
            .start(move |leadership, cancel| {
                let taken = once.take();
                async move {
                    if let Some((scope, tx)) = taken {
                        let _ = tx.send(scope(leadership, cancel).await);
                    }
                }
            })
            .await?;
        let output = rx.await;
        // The term is over (or never began): leave the queue before answering.
        handle.close().await?;
        output.map_err(|_| Error::Closed)
    }
}

/// Leader election that runs user code while leading: each term calls a scope
/// `async fn(Leadership, CancellationToken)`; returning from it gives leadership up, and the
/// token is cancelled the moment leadership may be lost. The scope may return `()` or a
/// `Result` (see [`TermOutcome`]). Compatible with Curator's `LeaderSelector` on the same path.
///
/// Built like every recipe that runs in the background:
/// [`LeaderSelector::builder`], options, then [`start`](LeaderSelectorBuilder::start).
/// For "wait until leader, run this once, step down" there is
/// [`run`](LeaderSelectorBuilder::run):
///
/// ```no_run
/// # async fn run(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::leader::LeaderSelector;
///
/// let token = LeaderSelector::builder(&warden, "/services/compactor/leader")
///     .run(|leadership, _cancel| async move { leadership.fencing_token() })
///     .await?;
/// # Ok(())
/// # }
/// ```
///
/// ```no_run
/// # async fn run(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::leader::LeaderSelector;
///
/// let selector = LeaderSelector::builder(&warden, "/services/compactor/leader")
///     .id("compactor-1")
///     .start(|leadership, cancel| async move {
///         println!("leading with token {}", leadership.fencing_token());
///         tokio::select! {
///             () = cancel.cancelled() => println!("leadership may be lost: stop now"),
///             () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
///         }
///         // Returning hands leadership to the next participant; this one queues again.
///     })
///     .await?;
/// // ... later
/// selector.close().await?;
/// # Ok(())
/// # }
/// ```
///
/// # Protocol
///
/// A selector queues exactly as Curator's `LeaderSelector` does (through an
/// `InterProcessMutex`): an ephemeral sequential node `<path>/_c_<uuid>-lock-<sequence>`
/// holding the participant id; the lowest number leads, every other participant watches
/// the node before its own. Rust and Curator selectors (and [`Mutex`](crate::lock::Mutex)
/// holders) on one path therefore take turns, and [`LeaderSelector::participants`] lists
/// them all.
///
/// By default the selector queues again after each term (Curator's `autoRequeue`);
/// [`LeaderSelectorBuilder::requeue`]`(false)` runs at most one term.
///
/// # Suspended and Lost
///
/// * The token is cancelled when the term's [`Leadership::lost`] resolves: at `Suspended`
///   under the default [`LockSafety::Suspend`], at the session deadline minus the margin
///   under [`LockSafety::SessionDeadline`], and always on `Lost`, a new session or the
///   node's deletion. The scope should return promptly then; the leader's node is deleted
///   only after it has returned, so the next leader is elected after this one stopped.
/// * A node that turns out to belong to an earlier session is deleted before the selector
///   queues again. A create dropped midway (on close) is cleaned up by the warden's janitor.
/// * A scope that panics counts as returned (the panic is logged).
/// * Closing (or dropping) cancels the token and waits for the scope to return.
pub struct LeaderSelector {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

/// The running selector's old name.
#[deprecated(note = "renamed `LeaderSelector` (the settings are now `LeaderSelectorBuilder`)")]
pub type SelectorHandle = LeaderSelector;

impl LeaderSelector {
    /// Settings for a selector on `path` (the parent of the queue nodes), with this
    /// process's `host:pid` as id, the warden's [`Warden::lock_safety`], re-queueing after
    /// every term.
    pub fn builder(warden: &Warden, path: impl Into<String>) -> LeaderSelectorBuilder {
        let id = holder_id();
        LeaderSelectorBuilder {
            contender: Contender {
                warden: warden.clone(),
                parent: trim_path(path.into()),
                marker: LOCK_NAME,
                payload: id.clone().into_bytes(),
                safety: warden.lock_safety(),
            },
            id,
            requeue: true,
        }
    }

    /// The settings of a selector on `path`.
    #[deprecated(note = "use `LeaderSelector::builder`")]
    #[allow(clippy::new_ret_no_self)] // the old name of `builder`, kept for old callers
    pub fn new(warden: &Warden, path: impl Into<String>) -> LeaderSelectorBuilder {
        LeaderSelector::builder(warden, path)
    }

    /// Everybody queued as a selector participant on `path` (Rust and Curator selectors,
    /// and [`Mutex`](crate::lock::Mutex) contenders), the leader first, without joining.
    ///
    /// # Errors
    /// Errors of `getChildren` and `getData` after the warden's retries (a missing path is
    /// an empty list).
    pub async fn participants_on(warden: &Warden, path: &str) -> Result<Vec<Participant>> {
        participants::list(warden, &trim_path(path.to_owned()), LOCK_NAME).await
    }

    /// The selector participant whose node heads the queue on `path`, if any.
    ///
    /// # Errors
    /// As [`LeaderSelector::participants_on`].
    pub async fn leader_on(warden: &Warden, path: &str) -> Result<Option<Participant>> {
        participants::leader(warden, &trim_path(path.to_owned()), LOCK_NAME).await
    }
}

impl fmt::Debug for LeaderSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderSelector")
            .field("selector", &self.shared.selector)
            .field("terms", &self.terms())
            .field("has_leadership", &self.has_leadership())
            .finish_non_exhaustive()
    }
}

impl LeaderSelector {
    /// Whether a term is running and its leadership is still valid.
    pub fn has_leadership(&self) -> bool {
        self.shared
            .current
            .borrow()
            .as_ref()
            .is_some_and(Leadership::is_valid)
    }

    /// How many terms have begun so far.
    pub fn terms(&self) -> u64 {
        self.shared.terms.load(Ordering::SeqCst)
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.shared.selector.id
    }

    /// Everybody queued on the selector's path (Rust selectors, Curator selectors, and
    /// [`Mutex`](crate::lock::Mutex) contenders alike), the leader first.
    ///
    /// # Errors
    /// Errors of `getChildren` and `getData` after the warden's retries (a missing path is
    /// an empty list).
    pub async fn participants(&self) -> Result<Vec<Participant>> {
        let c = &self.shared.selector.contender;
        participants::list(&c.warden, &c.parent, LOCK_NAME).await
    }

    /// The participant whose node heads the queue, if any.
    ///
    /// # Errors
    /// As [`LeaderSelector::participants`].
    pub async fn leader(&self) -> Result<Option<Participant>> {
        let c = &self.shared.selector.contender;
        participants::leader(&c.warden, &c.parent, LOCK_NAME).await
    }

    /// The error the last term that failed ended with (a scope returning `Err`), as text.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether the selector stopped on its own (one term without re-queueing, or the warden
    /// closed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Leaves the election: cancels the running term's token, waits for the scope to
    /// return, and deletes the queue node (while the connection is down it waits at most
    /// the session timeout, then the delete goes on in the warden's background).
    ///
    /// # Errors
    /// None in practice: a delete that could not be made at once goes on in the background.
    pub async fn close(mut self) -> Result<()> {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "leader selector task failed");
            }
        }
        Ok(())
    }
}

impl Drop for LeaderSelector {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct Shared {
    selector: LeaderSelectorBuilder,
    current: watch::Sender<Option<Leadership>>,
    node: StdMutex<Option<String>>,
    terms: AtomicU64,
    last_error: StdMutex<Option<String>>,
}

impl Shared {
    fn set_node(&self, node: Option<String>) {
        *self
            .node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = node;
    }

    fn take_node(&self) -> Option<String> {
        self.node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Creates a node and waits until it leads; `None` when closed (by the handle or the
    /// warden). A node left at that point is in `self.node`.
    async fn queue(&self, shutdown: &CancellationToken) -> Option<(OwnNode, Leadership)> {
        let c = &self.selector.contender;
        let mut pause = Pauser::default();
        loop {
            if c.warden.is_closed() || shutdown.is_cancelled() {
                return None;
            }
            let own = match c.create_until(shutdown).await? {
                Ok(own) => own,
                Err(Error::Closed) => return None,
                Err(e) => {
                    tracing::warn!(path = %c.parent, error = %e, "selector node create failed");
                    pause_until(&mut pause, shutdown).await;
                    continue;
                }
            };
            pause.reset();
            self.set_node(Some(own.path.clone()));
            loop {
                let waited = tokio::select! {
                    biased;
                    waited = c.wait_first(&own) => waited,
                    () = shutdown.cancelled() => return None,
                };
                match waited {
                    Ok(Some(leadership)) => return Some((own, leadership)),
                    Ok(None) => break,
                    Err(Error::Closed) => return None,
                    Err(e) => {
                        tracing::debug!(node = %own.path, error = %e, "selector check failed; trying again");
                        pause_until(&mut pause, shutdown).await;
                    }
                }
            }
            // Gone, or left from an earlier session: make sure it is gone, then queue anew.
            tokio::select! {
                biased;
                () = c.remove(&own.path) => self.set_node(None),
                () = shutdown.cancelled() => return None,
            }
        }
    }

    /// Runs one term: the scope, with a token cancelled when leadership may be lost or
    /// the selector closes.
    async fn lead<F, Fut>(
        &self,
        leadership: Leadership,
        scope: &mut F,
        shutdown: &CancellationToken,
    ) where
        F: FnMut(Leadership, CancellationToken) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: TermOutcome,
    {
        self.terms.fetch_add(1, Ordering::SeqCst);
        self.current.send_replace(Some(leadership.clone()));
        tracing::info!(
            node = %leadership.node_path(),
            fencing_token = leadership.fencing_token(),
            "leadership gained"
        );
        // The token is cancelled only after the term has ended, so a scope woken by it sees
        // why in `lost_reason()`.
        let token = CancellationToken::new();
        let lost = leadership.lost();
        let (canceller, ender, closing) = (token.clone(), leadership.clone(), shutdown.clone());
        let watcher = tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = lost => {}
                () = closing.cancelled() => ender.end(),
                () = canceller.cancelled() => {}
            }
            canceller.cancel();
        });
        // The scope runs as its own task, so a panic in it is contained.
        match tokio::spawn(scope(leadership.clone(), token.clone())).await {
            Ok(outcome) => {
                if let Some(error) = outcome.into_error() {
                    tracing::warn!(node = %leadership.node_path(), %error, "leader scope returned an error");
                    *self
                        .last_error
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(error);
                }
            }
            Err(e) => tracing::error!(error = %e, "leader scope failed"),
        }
        token.cancel();
        let _ = watcher.await;
        self.current.send_replace(None);
        leadership.end();
        tracing::info!(node = %leadership.node_path(), "leadership given up");
    }
}

async fn drive<F, Fut>(shared: Arc<Shared>, mut scope: F, shutdown: CancellationToken)
where
    F: FnMut(Leadership, CancellationToken) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: TermOutcome,
{
    let c = shared.selector.contender.clone();
    loop {
        let queued = shared.queue(&shutdown).await;
        let Some((own, leadership)) = queued else {
            break;
        };
        shared.lead(leadership, &mut scope, &shutdown).await;
        if shutdown.is_cancelled() || !shared.selector.requeue {
            break;
        }
        // Give up the node before queueing again, and be sure it is gone (closing meanwhile
        // leaves it to the guaranteed delete below).
        tokio::select! {
            biased;
            () = c.remove(&own.path) => shared.set_node(None),
            () = shutdown.cancelled() => break,
        }
    }
    // Leaving: delete whatever node is left (in the background if the connection is down
    // for longer than the session timeout).
    if let Some(node) = shared.take_node() {
        let _ = c.leave(&node).await;
    }
}
