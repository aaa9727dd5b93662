//! [`ClientBuilder`]: the settings of a session, and connecting with them.

use std::fmt;
use std::time::Duration;

use super::connect_string::ConnectString;
use super::credentials::Credentials;
use super::handle::Client;
use super::resolver::{Resolver, SharedResolver};
use super::sasl::SaslConfig;
use super::session::transport::Security;
use super::session::{self, SessionConfig};
use super::state::{SessionId, SessionPassword};
use crate::error::{Error, Result};
use crate::proto::DEFAULT_MAX_FRAME_LEN;

/// Default requested session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for the first connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default [`ClientBuilder::reconnect_delay`]: after a lost connection the client waits 50 to
/// 100 ms before re-attaching.
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Default shortest pause after a failed round of connection attempts
/// ([`ClientBuilder::reconnect_backoff`]).
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Default cap of the pauses after the first failed rounds
/// ([`ClientBuilder::reconnect_backoff`]).
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Default number of failed rounds in a row before the pause may grow past
/// [`DEFAULT_MAX_BACKOFF`] ([`ClientBuilder::reconnect_backoff_patience`]).
pub const DEFAULT_BACKOFF_PATIENCE: u32 = 4;
/// Default cap of the pauses once the patience is spent
/// ([`ClientBuilder::reconnect_backoff_patience`]).
pub const DEFAULT_LATER_MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Settings for a [`Client`]. Build one with [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    connect_string: String,
    session_timeout: Duration,
    connect_timeout: Duration,
    read_only: bool,
    max_frame_len: usize,
    auth: Credentials,
    sasl: Option<SaslConfig>,
    resume: Option<(SessionId, SessionPassword)>,
    min_backoff: Duration,
    max_backoff: Duration,
    backoff_patience: u32,
    later_max_backoff: Duration,
    reconnect_delay: Duration,
    resolver: SharedResolver,
    #[cfg(feature = "tls")]
    tls: Option<super::tls::TlsConfig>,
    #[cfg(feature = "sim")]
    dialer: Option<super::session::transport::SharedDialer>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ClientBuilder");
        f.field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_only", &self.read_only)
            .field("max_frame_len", &self.max_frame_len)
            .field("auth", &self.auth)
            .field("sasl", &self.sasl)
            .field("resume", &self.resume.as_ref().map(|(id, _)| *id))
            .field("reconnect_delay", &self.reconnect_delay);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        f.finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Settings for `connect_string` (`host:port,host:port/chroot`), with defaults for the rest.
    pub fn new(connect_string: impl Into<String>) -> Self {
        ClientBuilder {
            connect_string: connect_string.into(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_only: false,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            auth: Credentials::new(),
            sasl: None,
            resume: None,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            backoff_patience: DEFAULT_BACKOFF_PATIENCE,
            later_max_backoff: DEFAULT_LATER_MAX_BACKOFF,
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
            resolver: SharedResolver::default(),
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "sim")]
            dialer: None,
        }
    }

    /// The session timeout to ask for; the server clamps it to its own bounds (by default
    /// 2 to 20 ticks). Timers follow the timeout the server grants.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How long [`connect`](Self::connect) waits for the first session before failing.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one round of connection attempts (each host of the connect string once) may
    /// take with these settings: each host gets the session timeout divided among the hosts,
    /// at least 250 ms and at most 5 s. A connect timeout shorter than this can give up
    /// before every host had its turn.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] for a bad connect string.
    pub fn connect_round(&self) -> Result<Duration> {
        let hosts = ConnectString::parse(&self.connect_string)?.hosts.len();
        let per_host = session::config::Timers::connect_per_host(self.session_timeout, hosts);
        Ok(per_host.saturating_mul(u32::try_from(hosts).unwrap_or(u32::MAX)))
    }

    /// How long the client waits without a byte from its server before it drops the
    /// connection (two thirds of the session timeout asked for; the client follows the
    /// timeout the server grants once connected).
    pub fn read_timeout(&self) -> Duration {
        session::config::Timers::new(self.session_timeout).read
    }

    /// Whether a server in read-only mode may serve this client (default `false`).
    ///
    /// A server that lost its quorum and runs with `readonlymode.enabled=true` serves reads
    /// to such clients: the state is then [`SessionState::ConnectedReadOnly`](crate::SessionState::ConnectedReadOnly),
    /// reads work and writes (and `sync`) fail with [`Error::NotReadOnly`](crate::Error::NotReadOnly).
    /// Meanwhile the client asks the other hosts in the background whether they are
    /// read-write (four-letter word `isro`, pauses from 100 ms doubling up to 60 s) and
    /// moves to the first that is; requests in flight on the read-only server then fail
    /// with `ConnectionLoss`.
    ///
    /// Sessions follow ZooKeeper's own client: a session a read-write server has known is
    /// offered to every server, and a session made by a read-only server is never offered
    /// again: the next connection asks for a new session (the state goes to `Connected` or
    /// `ConnectedReadOnly` with a new [`session_id`](crate::Client::session_id)); the
    /// client's watches are restored on it. Servers since 3.7 make only local sessions in
    /// read-only mode (`localSessionsEnabled=true` is needed) and refuse or expire sessions
    /// the quorum made, so a session that was on the quorum ends (`Expired`) when only
    /// read-only servers are left; a [`Warden`](crate::Warden) then builds a read-only
    /// session in its place.
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.read_only = allowed;
        self
    }

    /// Largest frame sent or accepted, in bytes (default `0xfffff`, the server's default
    /// `jute.maxbuffer`). Keep it equal to the servers' setting.
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = bytes;
        self
    }

    /// Credentials to present right after every handshake (for example `digest`,
    /// `user:password`).
    pub fn auth(mut self, scheme: impl Into<String>, auth: impl Into<Vec<u8>>) -> Self {
        self.auth.push(scheme, auth);
        self
    }

    /// Adds every pair of `credentials`, as [`auth`](Self::auth) does one.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        for (scheme, secret) in credentials {
            self.auth.push(scheme, secret);
        }
        self
    }

    /// Authenticates every connection with SASL (see [`SaslConfig`]) right after the
    /// handshake, before any request goes out. Refused credentials end the session with
    /// [`Error::AuthFailed`] instead of trying other servers.
    ///
    /// ```
    /// use zkwarden::{Client, SaslConfig};
    ///
    /// let builder = Client::builder("zk1:2181,zk2:2181")
    ///     .sasl(SaslConfig::digest_md5("bob", "hunter2"));
    /// # let _ = builder;
    /// ```
    pub fn sasl(mut self, config: SaslConfig) -> Self {
        self.sasl = Some(config);
        self
    }

    /// Resumes an existing session instead of creating one (the session must still be alive).
    pub fn resume_session(mut self, id: SessionId, password: SessionPassword) -> Self {
        self.resume = Some((id, password));
        self
    }

    /// The pause after a full round of failed connection attempts: starts at `min`, doubles
    /// up to `max`, drawn between half and all of the step (defaults
    /// [`DEFAULT_MIN_BACKOFF`], 50 ms, and [`DEFAULT_MAX_BACKOFF`], 1 s). Pauses happen only
    /// between rounds, never before reporting a lost connection. See
    /// [`reconnect_backoff_patience`](Self::reconnect_backoff_patience) for longer outages.
    /// A zero `min` is refused when the client is built (`InvalidArgument`).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// After `rounds` failed rounds in a row, the pause goes on doubling past the
    /// [`reconnect_backoff`](Self::reconnect_backoff) maximum up to `later_max` (defaults
    /// [`DEFAULT_BACKOFF_PATIENCE`], 4 rounds, and [`DEFAULT_LATER_MAX_BACKOFF`], 4 s; a
    /// `later_max` at or below that maximum turns this off).
    ///
    /// A short outage is ridden out with quick retries; when a server stays down longer (a
    /// restart: a JVM start takes seconds), the retries of the many clients that lost it at
    /// once spread over a few seconds instead of arriving together when it comes back. The
    /// pause never reaches past the moment the client gives the session up.
    pub fn reconnect_backoff_patience(mut self, rounds: u32, later_max: Duration) -> Self {
        self.backoff_patience = rounds;
        self.later_max_backoff = later_max;
        self
    }

    /// The pause before re-attaching after losing a connection that was serving (closed,
    /// reset, silent past the read timeout): drawn at random between half and all of `delay`
    /// (default [`DEFAULT_RECONNECT_DELAY`], 100 ms), and never more than a third of the
    /// session timeout. `Duration::ZERO` re-attaches at once. A re-attached connection the
    /// server never answered was not serving: the next attempt follows it at once.
    ///
    /// The pause has two jobs. When a server-side expiry closes the session from another
    /// connection, the server drops this client's connection first; re-attaching at once
    /// could take the session back just before the close lands, so the client would report
    /// the session connected again only to lose it a moment later. And when a whole ensemble
    /// restarts, its clients do not all come back in the same instant. Leaving a read-only
    /// server for a read-write one takes no pause.
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// Resolves the hosts' names with `resolver` instead of the operating system's
    /// ([`SystemResolver`](super::SystemResolver)). It is asked on every connection attempt,
    /// also by the read-only probe and [`close_session`](Self::close_session), so a name that
    /// moves to another address is followed. See [`Resolver`] for an example.
    pub fn resolver(self, resolver: impl Resolver) -> Self {
        self.shared_resolver(SharedResolver::new(resolver))
    }

    /// As [`resolver`](Self::resolver), for one already shared (a warden's).
    pub(crate) fn shared_resolver(mut self, resolver: SharedResolver) -> Self {
        self.resolver = resolver;
        self
    }

    /// Connects over TLS with these settings (cargo feature `tls`); the connect string then
    /// names the servers' secure client ports. See [`TlsConfig`](super::TlsConfig).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Opens every connection with `dialer` instead of TCP (cargo feature `sim`): how a
    /// simulation runs the client over its own network. TLS settings are then ignored.
    #[cfg(feature = "sim")]
    pub fn dialer(mut self, dialer: impl super::Dialer) -> Self {
        self.dialer = Some(super::session::transport::SharedDialer(
            std::sync::Arc::new(dialer),
        ));
        self
    }

    /// The dialer set with [`dialer`](Self::dialer), for a builder made from other settings.
    #[cfg(feature = "sim")]
    pub(crate) fn shared_dialer(
        mut self,
        dialer: Option<super::session::transport::SharedDialer>,
    ) -> Self {
        self.dialer = dialer;
        self
    }

    /// Plain TCP, TLS when configured, or the dialer.
    fn security(&self) -> Result<Security> {
        Ok(Security {
            resolver: self.resolver.clone(),
            #[cfg(feature = "tls")]
            tls: self.tls.as_ref().map(super::TlsConfig::build).transpose()?,
            #[cfg(feature = "sim")]
            dialer: self.dialer.clone(),
            #[cfg(all(test, not(feature = "sim")))]
            dialer: None,
        })
    }

    /// Ends session `session_id` on the servers of this builder's connect string, the way
    /// [`close_session`](super::close_session) does, over TLS when the builder is set up
    /// for it, authenticating first with the builder's SASL credentials when it has some (a
    /// server that requires SASL takes nothing else before; a live client of the session that
    /// reconnects meanwhile takes the session back, and the close is tried again). Waits at
    /// most `timeout`.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] or [`Error::InvalidArgument`] for bad settings;
    /// [`Error::AuthFailed`] when a server refused the SASL credentials;
    /// [`Error::ConnectFailed`] when no server answered within `timeout`.
    pub async fn close_session(
        &self,
        session_id: SessionId,
        password: &SessionPassword,
        timeout: Duration,
    ) -> Result<session::SessionEnd> {
        let parsed = ConnectString::parse(&self.connect_string)?;
        let security = self.security()?;
        session::connect::close_session(
            &parsed.hosts,
            session_id,
            password,
            timeout,
            self.max_frame_len,
            &security,
            self.read_only,
            self.sasl.as_ref(),
        )
        .await
        .map_err(|e| match e {
            session::connect::CloseError::AuthFailed => Error::AuthFailed,
            session::connect::CloseError::Failed(last_error) => Error::ConnectFailed {
                hosts: parsed.hosts.iter().map(ToString::to_string).collect(),
                timeout_ms: timeout.as_millis() as u64,
                last_error: last_error.into(),
            },
        })
    }

    fn into_config(self) -> Result<SessionConfig> {
        let security = self.security()?;
        let parsed = ConnectString::parse(&self.connect_string)?;
        // The wire carries whole milliseconds: under one would go out as a timeout of 0.
        let timeout_ms = self.session_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > i32::MAX as u128 {
            return Err(Error::InvalidArgument(format!(
                "session timeout must be between 1 ms and {} ms, got {:?}",
                i32::MAX,
                self.session_timeout
            )));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "connect timeout must be positive".into(),
            ));
        }
        // A zero first pause never grows: the rounds would follow each other at once
        // against a server that is down, until the session times out.
        if self.min_backoff.is_zero() {
            return Err(Error::InvalidArgument(
                "reconnect backoff minimum must be positive".into(),
            ));
        }
        if self.max_frame_len < 1024 || self.max_frame_len > i32::MAX as usize {
            return Err(Error::InvalidArgument(format!(
                "frame limit must be between 1024 and {} bytes, got {}",
                i32::MAX,
                self.max_frame_len
            )));
        }
        if let Some(sasl) = &self.sasl {
            sasl.validate().map_err(Error::InvalidArgument)?;
        }
        Ok(SessionConfig {
            hosts: parsed.hosts,
            chroot: parsed.chroot,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            read_only: self.read_only,
            max_frame_len: self.max_frame_len,
            resume: self.resume,
            auth: self.auth,
            sasl: self.sasl,
            min_backoff: self.min_backoff,
            max_backoff: self.max_backoff,
            backoff_patience: self.backoff_patience,
            later_max_backoff: self.later_max_backoff,
            reconnect_delay: self.reconnect_delay,
            security,
        })
    }

    /// Starts the session and waits until it is connected.
    ///
    /// Must be called within a tokio runtime (current-thread or multi-thread).
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] or [`Error::InvalidArgument`] for bad settings;
    /// [`Error::ConnectFailed`] (naming the hosts tried) when no server completed a handshake
    /// within the connect timeout; [`Error::SessionExpired`] when resuming a session that is
    /// gone; [`Error::AuthFailed`] when the credentials are refused.
    pub async fn connect(self) -> Result<Client> {
        let client = self.connect_lazy()?;
        client.wait_connected().await?;
        Ok(client)
    }

    /// Starts the session without waiting: requests made before the connection is up are held
    /// until it is (or fail with [`Error::NotConnected`] if a whole round of hosts fails).
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] or [`Error::InvalidArgument`] for bad settings.
    pub fn connect_lazy(self) -> Result<Client> {
        let config = self.into_config()?;
        let chroot = config.chroot.clone();
        let max_frame_len = config.max_frame_len;
        let spawned = session::spawn(config);
        Ok(Client::from_parts(spawned, chroot, max_frame_len))
    }
}
