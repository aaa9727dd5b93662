//! Typed configuration kept in one znode: [`ConfigWatch`].
//!
//! A `ConfigWatch<T>` follows a node with [`Warden::watch_data`], decodes its data as JSON or
//! TOML into `T`, and publishes every valid value on a [`tokio::sync::watch`] channel. The
//! channel only ever holds valid values: data that does not decode is reported as a
//! [`ConfigEvent::Invalid`] and the previous value stays. While the node does not exist the
//! channel holds the configured default, if there is one, or else the last valid value.
//!
//! ```no_run
//! # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
//! use zkwarden_recipes::config::{ConfigWatch, Format};
//!
//! #[derive(Clone, Debug, Default, serde::Deserialize)]
//! struct Limits {
//!     max_connections: u32,
//! }
//!
//! let config = ConfigWatch::<Limits>::builder(&warden, "/app/limits")
//!     .format(Format::Toml)
//!     .default(Limits { max_connections: 10 })
//!     .start()
//!     .await?;
//! let mut limits = config.receiver();
//! println!("starting with {:?}", *limits.borrow());
//! while limits.changed().await.is_ok() {
//!     println!("now {:?}", *limits.borrow_and_update());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Under Suspended/Lost
//!
//! While the connection is `Suspended` the receiver keeps the last value it had: nothing
//! is read, so nothing changes. When the session is `Lost` the underlying watch is re-armed on
//! the new session and the node is read again: a [`ConfigEvent::Resynced`] is sent, followed
//! by the state found then (`Updated`, `Invalid` or `Missing`) if it differs from the last one
//! reported, so a change made while no session existed is picked up and an unchanged node is
//! not reported again.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use zkwarden::warden::DataEvent;
use zkwarden::{Error, Result, Warden};

/// How many events a slow [`ConfigEvents`] subscriber may fall behind before it is told it
/// lagged.
const EVENT_BUFFER: usize = 64;

/// How the node's data is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// JSON (`serde_json`).
    #[default]
    Json,
    /// TOML (`toml`); the data must be UTF-8.
    Toml,
}

impl Format {
    /// Decodes `data` in this format.
    ///
    /// # Errors
    /// The decoder's message, when `data` is not a valid `T`.
    pub fn decode<T: DeserializeOwned>(self, data: &[u8]) -> std::result::Result<T, String> {
        match self {
            Format::Json => serde_json::from_slice(data).map_err(|e| e.to_string()),
            Format::Toml => {
                let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
                toml::from_str(text).map_err(|e| e.to_string())
            }
        }
    }
}

/// What happened to a [`ConfigWatch`]'s node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEvent {
    /// The node held a valid value, now in the receiver.
    Updated {
        /// The node's data version.
        version: i32,
    },
    /// The node's data did not decode; the receiver keeps its previous value.
    Invalid {
        /// The decoder's message.
        error: String,
        /// The data version that failed.
        version: i32,
    },
    /// The node does not exist (deleted, or not created yet); the receiver now holds the
    /// default if one was configured, or else keeps its previous value.
    Missing,
    /// The node was read again on a new session (changes in between went unseen). The
    /// state found follows as another event when it differs from the last one reported.
    Resynced {
        /// The generation of the session the node was read on.
        generation: u64,
    },
    /// This subscriber fell behind and missed `missed` events; the receiver is still
    /// current.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
}

/// The events of a [`ConfigWatch`] from the moment of subscription
/// ([`ConfigWatch::events`]), as a [`Stream`](futures_core::Stream) and through
/// [`ConfigEvents::next`]. It ends when the watch stops: the `ConfigWatch` was dropped or
/// its warden closed.
pub struct ConfigEvents {
    inner: BroadcastStream<ConfigEvent>,
}

impl std::fmt::Debug for ConfigEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigEvents").finish_non_exhaustive()
    }
}

impl ConfigEvents {
    /// The next event, or `None` once the watch has stopped (the `ConfigWatch` was dropped,
    /// or its warden closed) and every event before that was read.
    pub async fn next(&mut self) -> Option<ConfigEvent> {
        tokio_stream::StreamExt::next(self).await
    }
}

impl futures_core::Stream for ConfigEvents {
    type Item = ConfigEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConfigEvent>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|result| match result {
                Ok(event) => event,
                Err(BroadcastStreamRecvError::Lagged(missed)) => ConfigEvent::Lagged { missed },
            })
        })
    }
}

/// Settings for a [`ConfigWatch`], from [`ConfigWatch::builder`].
#[must_use = "a config watch does nothing until started"]
pub struct ConfigWatchBuilder<T> {
    warden: Warden,
    path: String,
    format: Format,
    default: Option<T>,
    timeout: Option<Duration>,
}

impl<T> std::fmt::Debug for ConfigWatchBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatchBuilder")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("has_default", &self.default.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<T> ConfigWatchBuilder<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// How the node's data is encoded (JSON unless set).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The value to hold while the node does not exist, and to start with if the node's
    /// first data is invalid. With a default, [`start`](Self::start) returns as soon as the
    /// node has been read once.
    pub fn default(mut self, value: T) -> Self {
        self.default = Some(value);
        self
    }

    /// Bounds how long [`start`](Self::start) waits for a first value (unbounded unless
    /// set).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts following the node and returns once the receiver has a value: the node's
    /// value if it is valid, else the default. Without a default, this waits until the
    /// node exists and holds a valid value.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for an invalid path; [`Error::Timeout`] when no value was
    /// available within the [`timeout`](Self::timeout); [`Error::Closed`] when the warden is
    /// closed, or closes first.
    pub async fn start(self) -> Result<ConfigWatch<T>> {
        crate::starting::check(&self.warden, &self.path, false)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (ready_tx, ready_rx) = oneshot::channel();
        let mut task = Follow {
            stream: self.warden.watch_data(&self.path),
            format: self.format,
            default: self.default,
            events: events.clone(),
            value: None,
            ready: Some(ready_tx),
            last: None,
        };
        let handle = tokio::spawn(async move { task.run().await });
        let ready = async {
            match ready_rx.await {
                Ok(receiver) => Ok(receiver),
                Err(_) => Err(Error::Closed),
            }
        };
        let receiver = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, ready).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout),
            },
            None => ready.await,
        };
        match receiver {
            Ok(receiver) => Ok(ConfigWatch {
                receiver,
                // Only the task holds the channel open, so subscriptions end with it.
                events: events.downgrade(),
                task: handle,
                path: self.path,
                _value: PhantomData,
            }),
            Err(error) => {
                handle.abort();
                Err(error)
            }
        }
    }
}

/// A typed value kept in one znode, followed for as long as this is held (see the
/// [module docs](self)). Dropping it stops the background task; receivers then keep the
/// last value and report the sender closed.
pub struct ConfigWatch<T> {
    receiver: watch::Receiver<T>,
    events: broadcast::WeakSender<ConfigEvent>,
    task: JoinHandle<()>,
    path: String,
    _value: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ConfigWatch<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatch")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<T> ConfigWatch<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Settings for a watch of the node at `path`.
    pub fn builder(warden: &Warden, path: &str) -> ConfigWatchBuilder<T> {
        ConfigWatchBuilder {
            warden: warden.clone(),
            path: path.to_owned(),
            format: Format::default(),
            default: None,
            timeout: None,
        }
    }

    /// A receiver of the current value; it always holds a valid value.
    pub fn receiver(&self) -> watch::Receiver<T> {
        self.receiver.clone()
    }

    /// The current value.
    pub fn get(&self) -> T {
        self.receiver.borrow().clone()
    }

    /// Subscribes to what happens to the node from now on.
    pub fn events(&self) -> ConfigEvents {
        ConfigEvents {
            inner: BroadcastStream::new(crate::events_end::subscribe(&self.events)),
        }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl<T> Drop for ConfigWatch<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The background task: turns data events into values and config events.
struct Follow<T> {
    stream: zkwarden::warden::DataWatch,
    format: Format,
    default: Option<T>,
    events: broadcast::Sender<ConfigEvent>,
    /// `None` until the first value exists.
    value: Option<watch::Sender<T>>,
    ready: Option<oneshot::Sender<watch::Receiver<T>>>,
    /// The node's state as last reported, so that a resync finding the same state reports
    /// nothing more.
    last: Option<Seen>,
}

/// A state of the node, as far as its events tell.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Data at a version (valid or not: the data decides, and it is compared whole).
    Data { version: i32, data: Bytes },
    /// No node.
    Missing,
}

impl<T> Follow<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    async fn run(&mut self) {
        while let Some(event) = self.stream.next().await {
            match event {
                DataEvent::Resync { generation, node } => {
                    self.emit(ConfigEvent::Resynced { generation });
                    match node {
                        Some((data, stat)) => self.apply(data, stat.version),
                        None => self.missing(),
                    }
                }
                DataEvent::Changed { data, stat } | DataEvent::Created { data, stat } => {
                    self.apply(data, stat.version)
                }
                DataEvent::Deleted => self.missing(),
            }
        }
    }

    /// Whether `seen` is news (it differs from the state last reported); records it.
    fn news(&mut self, seen: Seen) -> bool {
        if self.last.as_ref() == Some(&seen) {
            return false;
        }
        self.last = Some(seen);
        true
    }

    fn apply(&mut self, data: Bytes, version: i32) {
        let seen = Seen::Data {
            version,
            data: data.clone(),
        };
        if !self.news(seen) {
            return;
        }
        match self.format.decode::<T>(&data) {
            Ok(value) => {
                self.publish(value);
                self.emit(ConfigEvent::Updated { version });
                self.announce();
            }
            Err(error) => {
                tracing::warn!(%error, version, "invalid configuration data; keeping the last value");
                // The default stands in for a first value that is invalid.
                if self.value.is_none() {
                    if let Some(default) = self.default.clone() {
                        self.publish(default);
                    }
                }
                self.emit(ConfigEvent::Invalid { error, version });
                self.announce();
            }
        }
    }

    fn missing(&mut self) {
        if !self.news(Seen::Missing) {
            return;
        }
        if let Some(default) = self.default.clone() {
            self.publish(default);
        }
        self.emit(ConfigEvent::Missing);
        self.announce();
    }

    fn publish(&mut self, value: T) {
        match &self.value {
            Some(sender) => {
                sender.send_replace(value);
            }
            None => {
                self.value = Some(watch::Sender::new(value));
            }
        }
    }

    /// Hands the receiver to `start` once there is a first value (after the events that
    /// go with it, so that subscribers from then on see only what comes later).
    fn announce(&mut self) {
        if let Some(sender) = &self.value {
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(sender.subscribe());
            }
        }
    }

    fn emit(&self, event: ConfigEvent) {
        // No subscribers is fine.
        let _ = self.events.send(event);
    }
}
