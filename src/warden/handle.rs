//! [`Warden`]: the handle most users hold.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::config::{LockSafety, WardenBuilder, WardenConfig, WardenExtras};
use super::metrics::{Metrics, MetricsSnapshot};
use super::retry::RetryPolicy;
use super::state::{ConnectionEvent, ConnectionEvents, ConnectionState};
use super::supervisor;
use crate::client::connect_string::ConnectString;
use crate::client::resolver::SharedResolver;
use crate::client::{
    Client, ClientBuilder, CreateOptions, Credentials, HostPort, SaslConfig, SessionId,
};
use crate::error::{Error, Result};
use crate::proto::CreateMode;

/// How many connection events a slow subscriber may fall behind before it is told it lagged.
const EVENT_BUFFER: usize = 256;

/// The session a warden is using right now.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    /// `None` while a new session is being built.
    pub client: Option<Client>,
    pub generation: u64,
    pub state: ConnectionState,
    pub session_id: SessionId,
}

/// What every clone of a warden shares.
pub(crate) struct Inner {
    pub config: WardenConfig,
    pub policy: Arc<dyn RetryPolicy>,
    pub slot: watch::Sender<Slot>,
    pub events: broadcast::Sender<ConnectionEvent>,
    /// Credentials for new sessions: the configured ones plus those added or replaced at
    /// runtime.
    pub auth: Mutex<Credentials>,
    /// SASL credentials for new connections: the configured ones until replaced at runtime.
    pub sasl: Mutex<Option<SaslConfig>>,
    /// Bumped whenever `auth` or `sasl` is replaced: wakes a supervisor that stopped after
    /// refused credentials.
    pub credentials_changed: watch::Sender<u64>,
    pub metrics: Metrics,
    pub shutdown: watch::Sender<bool>,
    /// Deletes still being tried in the background ([`Warden::delete_guaranteed`]).
    pub guaranteed: super::guaranteed::PendingDeletes,
    /// Whether the servers take persistent recursive watches (tree watches fall back to
    /// one-shot watches when they do not).
    pub watch_support: super::watches::WatchSupport,
    /// Resolves host names for every session (the system's resolver when `None`).
    pub resolver: Option<SharedResolver>,
    /// The members' client addresses, once the warden follows the ensemble and has read its
    /// configuration: new sessions connect to these instead of `config.connect`'s hosts.
    pub followed_hosts: Mutex<Option<Vec<HostPort>>>,
    /// TLS settings loaded from `config.tls` at start.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::client::TlsConfig>,
    /// Opens connections instead of TCP (cargo feature `sim`).
    #[cfg(feature = "sim")]
    pub dialer: Option<crate::client::session::transport::SharedDialer>,
}

impl Inner {
    /// Publishes a connection event and the slot state that goes with it.
    pub(crate) fn emit(&self, state: ConnectionState, session_id: SessionId, generation: u64) {
        tracing::info!(?state, %session_id, generation, "connection state");
        self.slot.send_modify(|slot| {
            slot.state = state;
            slot.session_id = session_id;
            slot.generation = generation;
        });
        self.metrics.transition(state);
        // No subscribers is fine.
        let _ = self.events.send(ConnectionEvent {
            state,
            session_id,
            generation,
            at: Instant::now(),
        });
    }

    /// `builder` with the warden's transport security and SASL credentials: over TLS when
    /// the warden is configured for it, authenticating with SASL when it has credentials.
    pub(crate) fn secured(&self, mut builder: ClientBuilder) -> ClientBuilder {
        if let Some(sasl) = self.sasl.lock().ok().and_then(|s| s.clone()) {
            builder = builder.sasl(sasl);
        }
        if let Some(resolver) = &self.resolver {
            builder = builder.shared_resolver(resolver.clone());
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            builder = builder.tls(tls.clone());
        }
        #[cfg(feature = "sim")]
        {
            builder = builder.shared_dialer(self.dialer.clone());
        }
        builder
    }

    /// A client builder with this warden's settings (for a new session).
    pub(crate) fn client_builder(&self) -> ClientBuilder {
        let connect = self.connect_string();
        let connect = match &self.config.namespace {
            Some(namespace) => format!("{}{}", connect.trim_end(), namespace),
            None => connect,
        };
        let backoff = self.config.reconnect_backoff;
        let mut builder = ClientBuilder::new(connect)
            .session_timeout(self.config.session_timeout)
            .connect_timeout(self.config.connection_timeout)
            .read_only(self.config.read_only)
            .max_frame_len(self.config.max_frame_len)
            .reconnect_delay(self.config.reconnect_delay)
            .reconnect_backoff(backoff.min, backoff.max)
            .reconnect_backoff_patience(backoff.patience, backoff.later_max);
        builder = self.secured(builder);
        for (scheme, auth) in self.credentials() {
            builder = builder.auth(scheme, auth);
        }
        builder
    }

    /// The servers (and chroot) new sessions connect to: the followed members when the warden
    /// follows the ensemble and has read its configuration, else `config.connect`.
    fn connect_string(&self) -> String {
        let followed = self.followed_hosts.lock().ok().and_then(|h| h.clone());
        let Some(hosts) = followed else {
            return self.config.connect.clone();
        };
        let hosts: Vec<String> = hosts.iter().map(ToString::to_string).collect();
        // Validated at start: the chroot parses.
        let chroot = ConnectString::parse(&self.config.connect)
            .ok()
            .and_then(|c| c.chroot.prefix().map(str::to_owned))
            .unwrap_or_default();
        format!("{}{chroot}", hosts.join(","))
    }

    /// The `addAuth` credentials for a new session.
    pub(crate) fn credentials(&self) -> Credentials {
        self.auth.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// Closes the warden when the last user-held handle goes away.
pub(crate) struct DropGuard {
    shutdown: watch::Sender<bool>,
}

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Per-call settings: a retry policy overriding the warden's, and a deadline.
#[derive(Clone, Default)]
pub(crate) struct CallOptions {
    pub retry: Option<Arc<dyn RetryPolicy>>,
    pub deadline: Option<Instant>,
}

/// A supervised ZooKeeper session: the client's operations, wrapped in the behaviour every
/// ZooKeeper user otherwise writes by hand.
///
/// * It waits for a connected session before it sends anything (up to the connection
///   timeout), so operations issued during a disconnection wait instead of failing.
/// * It retries what may be retried (`ConnectionLoss`, `OperationTimeout`, `SessionMoved`,
///   `Throttled`, and `SessionExpired` once a new session is up) by its [`RetryPolicy`], and
///   returns everything else at once. Writes that may already have been applied are not
///   repeated blindly (see [`Warden::create`]).
/// * Every call has a deadline: the handle's own ([`Warden::with_deadline`]), else the
///   configured [`operation_timeout`](WardenConfig::operation_timeout) from the moment it
///   is called (twice the connection timeout unless set). Past it the call fails with
///   [`Error::Timeout`]; no call waits forever, whatever the retry policy.
/// * When the session is lost it builds a new one with the same settings and credentials.
///   If the servers refuse the credentials, it stops trying: the state becomes
///   [`ConnectionState::AuthFailed`] and calls fail with [`Error::AuthFailed`] until new
///   credentials are supplied ([`Warden::set_sasl`], [`Warden::set_auth`]).
/// * It reports every change as a [`ConnectionEvent`] ([`Warden::events`]).
///
/// Cloning is cheap. The warden closes its session when the last clone is dropped, or on
/// [`Warden::close`].
#[derive(Clone)]
pub struct Warden {
    pub(crate) inner: Arc<Inner>,
    /// `None` for clones used by the warden's own background tasks, so they do not keep it
    /// alive.
    pub(crate) _guard: Option<Arc<DropGuard>>,
    pub(crate) call: CallOptions,
}

impl fmt::Debug for Warden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.inner.slot.borrow();
        f.debug_struct("Warden")
            .field("session_id", &slot.session_id)
            .field("generation", &slot.generation)
            .field("state", &slot.state)
            .field("namespace", &self.inner.config.namespace)
            .finish_non_exhaustive()
    }
}

impl Warden {
    /// Settings for a warden, to adjust in code.
    pub fn builder(connect: impl Into<String>) -> WardenBuilder {
        WardenBuilder::new(connect)
    }

    /// Starts a warden and returns once its first session is connected.
    ///
    /// # Errors
    /// Invalid configuration ([`Error::InvalidConnectString`], [`Error::InvalidPath`],
    /// [`Error::InvalidArgument`]); [`Error::ConnectFailed`], naming the hosts tried, when no
    /// server answered within the connection timeout; [`Error::AuthFailed`] for refused
    /// credentials.
    pub async fn start(config: WardenConfig) -> Result<Warden> {
        Warden::start_with(config, WardenExtras::default()).await
    }

    /// As [`Warden::start`], with the settings a [`WardenBuilder`] holds beside the
    /// configuration.
    pub(crate) async fn start_with(config: WardenConfig, extras: WardenExtras) -> Result<Warden> {
        config.validate()?;
        #[cfg(feature = "tls")]
        let tls = config
            .tls
            .as_ref()
            .map(super::config::TlsFiles::load)
            .transpose()?;
        let auth: Credentials = config
            .auth
            .iter()
            .map(|a| (a.scheme.clone(), a.credentials.clone().into_bytes()))
            .collect();
        let sasl = config.sasl.clone();
        let (slot, _) = watch::channel(Slot {
            client: None,
            generation: 0,
            state: ConnectionState::Suspended,
            session_id: SessionId(0),
        });
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            policy: config.retry.build(),
            config,
            slot,
            events,
            auth: Mutex::new(auth),
            sasl: Mutex::new(sasl),
            credentials_changed: watch::Sender::new(0),
            metrics: Metrics::default(),
            shutdown,
            guaranteed: Default::default(),
            watch_support: Default::default(),
            resolver: extras.resolver,
            followed_hosts: Mutex::new(None),
            #[cfg(feature = "tls")]
            tls,
            #[cfg(feature = "sim")]
            dialer: extras.dialer,
        });
        if let Some(namespace) = inner.config.namespace.clone() {
            ensure_namespace(&inner, &namespace).await?;
        }
        let client = inner.client_builder().connect().await?;
        let session_id = client.session_id();
        inner
            .slot
            .send_modify(|slot| slot.client = Some(client.clone()));
        let first = supervisor::arrival_state(&client, ConnectionState::Connected);
        inner.emit(first, session_id, 1);
        tokio::spawn(supervisor::supervise(inner.clone(), client, 1, first));
        if super::ensemble::should_follow(&inner) {
            tokio::spawn(super::ensemble::follow(inner.clone()));
        }
        let guard = Arc::new(DropGuard {
            shutdown: inner.shutdown.clone(),
        });
        Ok(Warden {
            inner,
            _guard: Some(guard),
            call: CallOptions::default(),
        })
    }

    /// A clone for the warden's own background work: it does not keep the warden open.
    pub(crate) fn detached(&self) -> Warden {
        Warden {
            inner: self.inner.clone(),
            _guard: None,
            call: CallOptions::default(),
        }
    }

    /// A handle whose operations use `policy` instead of the configured one.
    pub fn with_retry(&self, policy: Arc<dyn RetryPolicy>) -> Warden {
        let mut warden = self.clone();
        warden.call.retry = Some(policy);
        warden
    }

    /// A handle whose operations give up at `deadline` (waiting, retrying and the attempt
    /// itself), failing with [`Error::Timeout`].
    pub fn with_deadline(&self, deadline: Instant) -> Warden {
        let mut warden = self.clone();
        warden.call.deadline = Some(deadline);
        warden
    }

    /// As [`Warden::with_deadline`], `timeout` from now.
    pub fn with_timeout(&self, timeout: Duration) -> Warden {
        self.with_deadline(Instant::now() + timeout)
    }

    /// The configuration this warden runs with.
    pub fn config(&self) -> &WardenConfig {
        &self.inner.config
    }

    /// How lock holders should treat a lost connection (from the configuration).
    pub fn lock_safety(&self) -> LockSafety {
        self.inner.config.lock_safety
    }

    /// The latest connection event: state, session id and generation.
    pub fn connection(&self) -> ConnectionEvent {
        let slot = self.inner.slot.borrow();
        ConnectionEvent {
            state: slot.state,
            session_id: slot.session_id,
            generation: slot.generation,
            at: Instant::now(),
        }
    }

    /// Subscribes to connection events from now on, in order, with lag reported.
    pub fn events(&self) -> ConnectionEvents {
        let rx = self.inner.events.subscribe();
        // Read after subscribing: `Closed` is published in the slot before it is sent, so a
        // warden that is not closed now will still send it to `rx`.
        let closed = self.inner.slot.borrow().state == ConnectionState::Closed;
        ConnectionEvents::new(rx, closed)
    }

    /// The current session id (of the latest generation).
    pub fn session_id(&self) -> SessionId {
        self.inner.slot.borrow().session_id
    }

    /// The session the warden's operations run on now: the session of the installed client.
    ///
    /// It can be ahead of [`session_id`](Self::session_id), which is published with the
    /// connection event, for the moment between a client replacing its session (one a
    /// read-only server made) and the warden reporting it. Compare an ephemeral node's owner
    /// with this id to tell whether the warden's current session owns it. While a new session
    /// is being built, it is the last published id.
    pub fn operating_session_id(&self) -> SessionId {
        let slot = self.inner.slot.borrow();
        slot.client
            .as_ref()
            .map_or(slot.session_id, Client::session_id)
    }

    /// The current session generation: 1 for the first session, one more per rebuild.
    pub fn generation(&self) -> u64 {
        self.inner.slot.borrow().generation
    }

    /// When a server last answered the current session.
    pub fn last_heard(&self) -> Option<Instant> {
        self.inner.slot.borrow().client.as_ref()?.last_heard()
    }

    /// The latest instant at which the current session may still be alive on the server
    /// (last heard plus the negotiated timeout). A lock holder that tolerates disconnections
    /// must stop before it. `None` while no session exists.
    pub fn session_deadline(&self) -> Option<Instant> {
        self.inner.slot.borrow().client.as_ref()?.session_deadline()
    }

    /// The servers new sessions connect to: the members' client addresses once the warden
    /// follows the ensemble and has read its configuration, else the configured ones.
    pub fn hosts(&self) -> Vec<HostPort> {
        let followed = self
            .inner
            .followed_hosts
            .lock()
            .ok()
            .and_then(|h| h.clone());
        followed.unwrap_or_else(|| {
            ConnectString::parse(&self.inner.config.connect)
                .map(|c| c.hosts)
                .unwrap_or_default()
        })
    }

    /// The wire client of the current session, if there is one. Operations on it are not
    /// retried; it dies with its session.
    pub fn client(&self) -> Option<Client> {
        self.inner.slot.borrow().client.clone()
    }

    /// What the warden has done so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Adds credentials to the current session and to every session built after it.
    ///
    /// # Errors
    /// `AuthFailed`; a connection error after retries.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        self.run(
            super::retry_loop::OpClass::Idempotent,
            "add_auth",
            "",
            |client| client.add_auth(scheme, auth),
        )
        .await?;
        if let Ok(mut list) = self.inner.auth.lock() {
            list.insert(scheme, auth);
        }
        Ok(())
    }

    /// Replaces the SASL credentials of every connection made from now on (`None`: no SASL),
    /// for example after the password was rotated on the servers. The current connection
    /// keeps the credentials it authenticated with. If the warden had stopped because the
    /// servers refused its credentials ([`ConnectionState::AuthFailed`]), it tries again
    /// with these. ([`Warden::config`] still shows the credentials the warden started with.)
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for invalid settings (an empty user name); nothing changes.
    pub fn set_sasl(&self, sasl: Option<SaslConfig>) -> Result<()> {
        if let Some(config) = &sasl {
            config.validate().map_err(Error::InvalidArgument)?;
        }
        if let Ok(mut current) = self.inner.sasl.lock() {
            *current = sasl;
        }
        self.inner.credentials_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Replaces the `addAuth` credentials presented by every session built from now on (the
    /// current session keeps those it has; [`Warden::add_auth`] adds to it). If the warden
    /// had stopped because the servers refused its credentials
    /// ([`ConnectionState::AuthFailed`]), it tries again with these.
    pub fn set_auth(&self, credentials: Credentials) {
        if let Ok(mut current) = self.inner.auth.lock() {
            *current = credentials;
        }
        self.inner.credentials_changed.send_modify(|n| *n += 1);
    }

    /// Closes the session (its ephemeral nodes go at once) and stops the warden. Every clone
    /// then fails with [`Error::Closed`].
    ///
    /// # Errors
    /// None in practice.
    pub async fn close(&self) -> Result<()> {
        self.inner.shutdown.send_replace(true);
        let mut slot = self.inner.slot.subscribe();
        // The supervisor reports Closed, then closes the session and lets the client go.
        let _ = tokio::time::timeout(self.inner.config.connection_timeout, async {
            loop {
                let done = {
                    let slot = slot.borrow_and_update();
                    slot.state == ConnectionState::Closed && slot.client.is_none()
                };
                if done {
                    return;
                }
                if slot.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        Ok(())
    }

    /// Whether the warden was closed.
    pub fn is_closed(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Waits for a connected session, bounded by the connection timeout and the call's
    /// deadline. Returns the client and its generation; [`Error::AuthFailed`] at once while
    /// the warden waits for new credentials.
    pub(crate) async fn connected_client(&self) -> Result<(Client, u64)> {
        let mut slot = self.inner.slot.subscribe();
        let mut shutdown = self.inner.shutdown.subscribe();
        let limit = Instant::now() + self.inner.config.connection_timeout;
        let wait_until = self.call.deadline.map_or(limit, |d| d.min(limit));
        loop {
            if *shutdown.borrow_and_update() {
                return Err(Error::Closed);
            }
            {
                let current = slot.borrow_and_update();
                if let Some(client) = &current.client {
                    if client.session_state().is_connected() {
                        return Ok((client.clone(), current.generation));
                    }
                } else if current.state == ConnectionState::AuthFailed {
                    // Nothing will connect until new credentials come: fail now.
                    return Err(Error::AuthFailed);
                }
            }
            tokio::select! {
                biased;
                changed = slot.changed() => {
                    if changed.is_err() {
                        return Err(Error::Closed);
                    }
                }
                _ = shutdown.changed() => {}
                () = tokio::time::sleep_until(wait_until) => {
                    return Err(if Some(wait_until) == self.call.deadline {
                        Error::Timeout
                    } else {
                        Error::NotConnected
                    });
                }
            }
        }
    }
}

/// Creates the namespace node (and its parents) with a short-lived session outside it.
async fn ensure_namespace(inner: &Inner, namespace: &str) -> Result<()> {
    let builder = ClientBuilder::new(inner.connect_string())
        .session_timeout(inner.config.session_timeout)
        .connect_timeout(inner.config.connection_timeout)
        .max_frame_len(inner.config.max_frame_len);
    let client = inner.secured(builder).connect().await?;
    for (scheme, auth) in inner.credentials() {
        client.add_auth(&scheme, &auth).await?;
    }
    let mut path = String::new();
    let mut result = Ok(());
    for segment in namespace.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        path.push_str(segment);
        match client
            .create(&path, b"", CreateOptions::new(CreateMode::Persistent))
            .await
        {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let _ = client.close().await;
    result
}
