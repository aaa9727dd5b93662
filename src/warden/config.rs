//! [`WardenConfig`]: every setting of a warden, loadable from TOML, JSON or any serde format,
//! and [`WardenBuilder`] to set the same fields in code.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::retry::RetryConfig;
use crate::client::connect_string::ConnectString;
use crate::client::path::validate_path;
use crate::client::resolver::SharedResolver;
use crate::client::{Resolver, SaslConfig};
use crate::error::{Error, Result};
use crate::proto::DEFAULT_MAX_FRAME_LEN;

/// Credentials presented on every session (for example scheme `digest`, `user:password`).
/// `Debug` shows the scheme only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The scheme (`digest`, `ip`, ...).
    pub scheme: String,
    /// The scheme-specific credentials. A secret.
    pub credentials: String,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("scheme", &self.scheme)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

/// How lock holders (and anything else that guards a resource with a session) treat a lost
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum LockSafety {
    /// Assume the lock is gone the moment the connection is lost (`Suspended`). The safe
    /// default: another process may hold the lock from the instant the session expires, and
    /// a disconnected client cannot know when that is.
    #[default]
    Suspend,
    /// Keep working through a disconnection until the session deadline (last time a server
    /// answered plus the session timeout) minus `margin` passes. Faster recovery from short
    /// blips, at the price of trusting the local clock and the margin.
    SessionDeadline {
        /// Safety margin before the deadline.
        #[serde(with = "humantime_serde")]
        margin: Duration,
    },
    /// Keep working until the session is `Lost` (or replaced). Unsafe for mutual exclusion;
    /// for work where an overlap is tolerable.
    Lost,
}

/// The `tls` section of a [`WardenConfig`] (cargo feature `tls`): PEM files read when the
/// warden starts. See [`TlsConfig`](crate::client::TlsConfig) for what each setting does.
///
/// ```toml
/// tls = { ca_file = "/etc/zk/ca.pem", cert_file = "/etc/app/cert.pem", key_file = "/etc/app/key.pem" }
/// ```
#[cfg(feature = "tls")]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM file with the CA certificates that sign the servers' certificates.
    pub ca_file: std::path::PathBuf,
    /// PEM file with this client's certificate chain, for mutual TLS (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM file with this client's private key, for mutual TLS (with `cert_file`). Only the
    /// path is kept here; the key itself never shows in `Debug` output.
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
    /// Whether a server's certificate must name the host it was reached as (default true).
    #[serde(default = "default_verify_hostname")]
    pub verify_hostname: bool,
    /// Check every server's certificate against this name instead of the connect string's
    /// hosts.
    #[serde(default)]
    pub server_name: Option<String>,
}

#[cfg(feature = "tls")]
fn default_verify_hostname() -> bool {
    true
}

#[cfg(feature = "tls")]
impl TlsFiles {
    /// Trusts the CAs in `ca_file`; no client certificate, names checked.
    pub fn new(ca_file: impl Into<std::path::PathBuf>) -> TlsFiles {
        TlsFiles {
            ca_file: ca_file.into(),
            cert_file: None,
            key_file: None,
            verify_hostname: true,
            server_name: None,
        }
    }

    /// Reads the files.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a file that cannot be read or parsed, or when only
    /// one of `cert_file` and `key_file` is given.
    pub fn load(&self) -> Result<crate::client::TlsConfig> {
        let mut tls = crate::client::TlsConfig::from_ca_file(&self.ca_file)?;
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => tls = tls.client_identity_files(cert, key)?,
            (None, None) => {}
            _ => {
                return Err(Error::InvalidArgument(
                    "tls: give both cert_file and key_file, or neither".into(),
                ));
            }
        }
        tls = tls.verify_hostname(self.verify_hostname);
        if let Some(name) = &self.server_name {
            tls = tls.server_name(name.clone());
        }
        Ok(tls)
    }
}

fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_connection_timeout() -> Duration {
    Duration::from_secs(15)
}

fn default_max_frame_len() -> usize {
    DEFAULT_MAX_FRAME_LEN
}

fn default_reconnect_delay() -> Duration {
    crate::client::DEFAULT_RECONNECT_DELAY
}

/// The pauses between failed rounds of connection attempts (`reconnect_backoff` in a config
/// file): see [`ClientBuilder::reconnect_backoff`](crate::ClientBuilder::reconnect_backoff)
/// and [`ClientBuilder::reconnect_backoff_patience`](crate::ClientBuilder::reconnect_backoff_patience).
/// Each field may be left out for its default.
///
/// ```
/// let config: zkwarden::warden::WardenConfig = toml::from_str(r#"
///     connect = "zk1:2181"
///     reconnect_backoff = { min = "100ms", max = "2s", patience = 2, later_max = "8s" }
/// "#).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.reconnect_backoff.patience, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconnectBackoff {
    /// The first pause (default 50 ms); must be positive.
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    /// The cap of the first rounds' pauses (default 1 s); not below `min`.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// After this many failed rounds in a row (default 4), the pauses go on doubling up to
    /// `later_max`.
    pub patience: u32,
    /// The cap once the patience is spent (default 4 s); not below `max` (equal: the pauses
    /// never grow past `max`).
    #[serde(with = "humantime_serde")]
    pub later_max: Duration,
}

impl Default for ReconnectBackoff {
    fn default() -> ReconnectBackoff {
        ReconnectBackoff {
            min: crate::client::DEFAULT_MIN_BACKOFF,
            max: crate::client::DEFAULT_MAX_BACKOFF,
            patience: crate::client::DEFAULT_BACKOFF_PATIENCE,
            later_max: crate::client::DEFAULT_LATER_MAX_BACKOFF,
        }
    }
}

impl ReconnectBackoff {
    /// A zero first pause never grows (the rounds would follow each other at once against a
    /// server that is down), and a cap below the pause it caps would be raised to it silently.
    fn validate(&self) -> std::result::Result<(), String> {
        if self.min.is_zero() {
            return Err("reconnect_backoff.min must be positive".into());
        }
        if self.max < self.min {
            return Err(format!(
                "reconnect_backoff.max ({:?}) must not be below min ({:?})",
                self.max, self.min
            ));
        }
        if self.later_max < self.max {
            return Err(format!(
                "reconnect_backoff.later_max ({:?}) must not be below max ({:?})",
                self.later_max, self.max
            ));
        }
        Ok(())
    }
}

fn default_follow_ensemble() -> bool {
    true
}

/// Every setting of a [`Warden`](super::Warden).
///
/// ```
/// let config: zkwarden::warden::WardenConfig = toml::from_str(r#"
///     connect = "zk1:2181,zk2:2181,zk3:2181"
///     session_timeout = "10s"
///     connection_timeout = "15s"
///     namespace = "/my-service"
///     retry = { kind = "exponential", base = "100ms", max_retries = 10, max_sleep = "30s" }
///     lock_safety = { mode = "suspend" }
/// "#).unwrap();
/// config.validate().unwrap();
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WardenConfig {
    /// Servers, `host:port,host:port` (a `/chroot` suffix works, but prefer `namespace`).
    pub connect: String,
    /// The session timeout to ask for (the server clamps it to its bounds).
    #[serde(with = "humantime_serde", default = "default_session_timeout")]
    pub session_timeout: Duration,
    /// How long `start` and operations wait for a connected session.
    #[serde(with = "humantime_serde", default = "default_connection_timeout")]
    pub connection_timeout: Duration,
    /// How long a call may take in all (waiting for a session, retries and the attempts)
    /// when its handle sets no deadline ([`Warden::with_deadline`](super::Warden::with_deadline));
    /// past it the call fails with [`Error::Timeout`]. Unset, it is twice the
    /// `connection_timeout` (30 s with the defaults): long enough for one full wait for a
    /// connected session plus the retries after it, short enough that no call can hang
    /// forever on a warden that will never connect. See [`WardenConfig::operation_timeout`].
    #[serde(
        with = "humantime_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub operation_timeout: Option<Duration>,
    /// The default retry policy of every operation.
    #[serde(default)]
    pub retry: RetryConfig,
    /// A path prefix applied to every path and stripped from every path returned; created
    /// (with its parents) at start if missing.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Credentials presented on every session.
    #[serde(default)]
    pub auth: Vec<AuthConfig>,
    /// SASL credentials every connection authenticates with before it serves
    /// (`sasl = { mechanism = "digest-md5", username = "bob", password = "..." }`).
    #[serde(default)]
    pub sasl: Option<SaslConfig>,
    /// Whether a read-only server may serve this warden (see
    /// [`ClientBuilder::read_only`](crate::ClientBuilder::read_only)). While one does, the
    /// state is [`ConnectionState::ReadOnly`](super::ConnectionState::ReadOnly): reads work,
    /// writes fail with `NotReadOnly` at once (never retried). When a read-write server takes
    /// over, the state is `Reconnected` for the same session, or `Lost` then `Reconnected`
    /// with the next generation when the read-only session had to be replaced (always, with
    /// servers since 3.7). With this set, a lost session whose close cannot be confirmed (no
    /// quorum) is not waited for: the new session is built at once.
    #[serde(default)]
    pub read_only: bool,
    /// Largest frame sent or accepted, in bytes.
    #[serde(default = "default_max_frame_len")]
    pub max_frame_len: usize,
    /// The pause before re-attaching after a lost connection, drawn between half and all of
    /// this (default 100 ms; see [`ClientBuilder::reconnect_delay`](crate::ClientBuilder::reconnect_delay)).
    #[serde(with = "humantime_serde", default = "default_reconnect_delay")]
    pub reconnect_delay: Duration,
    /// The pauses between failed rounds of connection attempts, and how they grow through a
    /// long outage (`reconnect_backoff = { min = "50ms", max = "1s", patience = 4,
    /// later_max = "4s" }`, the defaults).
    #[serde(default)]
    pub reconnect_backoff: ReconnectBackoff,
    /// How lock holders treat a lost connection.
    #[serde(default)]
    pub lock_safety: LockSafety,
    /// Whether the warden follows the ensemble's membership (default true): it watches
    /// `/zookeeper/config` and, on every change, replaces its host list with the members'
    /// client addresses (see [`Client::update_hosts`](crate::Client::update_hosts)), keeping
    /// the chroot or namespace. A session on a member that was removed moves to another
    /// before that member is shut down, and added members take a share of the sessions.
    /// Servers without dynamic configuration (before 3.5, or listing no client addresses)
    /// leave the host list as configured. Not done over TLS: the configuration names the
    /// members' plain client ports only.
    #[serde(default = "default_follow_ensemble")]
    pub follow_ensemble: bool,
    /// Connect over TLS with these files (cargo feature `tls`); `connect` then names the
    /// servers' secure client ports.
    #[cfg(feature = "tls")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

impl fmt::Debug for WardenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("WardenConfig");
        f.field("connect", &self.connect)
            .field("session_timeout", &self.session_timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("retry", &self.retry)
            .field("namespace", &self.namespace)
            .field("auth", &self.auth)
            .field("sasl", &self.sasl)
            .field("read_only", &self.read_only)
            .field("max_frame_len", &self.max_frame_len)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("reconnect_backoff", &self.reconnect_backoff)
            .field("lock_safety", &self.lock_safety)
            .field("follow_ensemble", &self.follow_ensemble);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls);
        f.finish()
    }
}

impl WardenConfig {
    /// Defaults for everything but the servers.
    pub fn new(connect: impl Into<String>) -> WardenConfig {
        WardenConfig {
            connect: connect.into(),
            session_timeout: default_session_timeout(),
            connection_timeout: default_connection_timeout(),
            operation_timeout: None,
            retry: RetryConfig::default(),
            namespace: None,
            auth: Vec::new(),
            sasl: None,
            read_only: false,
            max_frame_len: default_max_frame_len(),
            reconnect_delay: default_reconnect_delay(),
            reconnect_backoff: ReconnectBackoff::default(),
            lock_safety: LockSafety::default(),
            follow_ensemble: default_follow_ensemble(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The deadline a call gets when its handle sets none: `operation_timeout` if set, else
    /// twice `connection_timeout`.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
            .unwrap_or_else(|| self.connection_timeout.saturating_mul(2))
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] for bad servers, [`Error::InvalidPath`] for a bad
    /// namespace, [`Error::InvalidArgument`] naming the field for anything else.
    pub fn validate(&self) -> Result<()> {
        let parsed = ConnectString::parse(&self.connect)?;
        if self.namespace.is_some() && !parsed.chroot.is_empty() {
            return Err(Error::InvalidArgument(
                "give either a chroot in `connect` or a `namespace`, not both".into(),
            ));
        }
        let invalid = |msg: String| Err(Error::InvalidArgument(msg));
        if self.session_timeout.as_millis() == 0
            || self.session_timeout.as_millis() > i32::MAX as u128
        {
            return invalid(format!(
                "session_timeout must be between 1 ms and 2^31-1 ms, got {:?}",
                self.session_timeout
            ));
        }
        if self.connection_timeout.is_zero() {
            return invalid("connection_timeout must be positive".into());
        }
        if self.operation_timeout.is_some_and(|t| t.is_zero()) {
            return invalid("operation_timeout must be positive".into());
        }
        if let Err(msg) = self.retry.validate() {
            return invalid(msg);
        }
        if let Some(namespace) = &self.namespace {
            validate_path(namespace, false)?;
            if namespace == "/" {
                return invalid("namespace must not be the root".into());
            }
        }
        for auth in &self.auth {
            if auth.scheme.is_empty() {
                return invalid("auth scheme must not be empty".into());
            }
        }
        if let Some(sasl) = &self.sasl {
            sasl.validate().map_err(Error::InvalidArgument)?;
        }
        if self.max_frame_len < 1024 || self.max_frame_len > i32::MAX as usize {
            return invalid(format!(
                "max_frame_len must be between 1024 and 2^31-1, got {}",
                self.max_frame_len
            ));
        }
        self.reconnect_backoff
            .validate()
            .map_err(Error::InvalidArgument)?;
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return invalid("tls: give both cert_file and key_file, or neither".into());
            }
        }
        if let LockSafety::SessionDeadline { margin } = self.lock_safety {
            if margin >= self.session_timeout {
                return invalid(format!(
                    "lock_safety margin ({margin:?}) must be shorter than the session timeout"
                ));
            }
        }
        Ok(())
    }
}

/// Sets the fields of a [`WardenConfig`] in code. Get one from
/// [`Warden::builder`](super::Warden::builder).
#[derive(Debug, Clone)]
pub struct WardenBuilder {
    config: WardenConfig,
    /// Settings that are code, not configuration (they have no serde form).
    extras: WardenExtras,
}

/// What a warden takes in code beside its [`WardenConfig`].
#[derive(Debug, Clone, Default)]
pub(crate) struct WardenExtras {
    /// Resolves host names for every session (the system's resolver when `None`).
    pub resolver: Option<SharedResolver>,
    /// Opens every connection instead of TCP (feature `sim`).
    #[cfg(feature = "sim")]
    pub dialer: Option<crate::client::session::transport::SharedDialer>,
}

impl WardenBuilder {
    /// Defaults for everything but the servers.
    pub fn new(connect: impl Into<String>) -> Self {
        WardenBuilder::from_config(WardenConfig::new(connect))
    }

    /// Starts from an existing configuration.
    pub fn from_config(config: WardenConfig) -> Self {
        WardenBuilder {
            config,
            extras: WardenExtras::default(),
        }
    }

    /// Replaces the servers, for example those of a config file read for another
    /// environment (see [`WardenConfig::from_file`] for `ZK_CONNECT`).
    pub fn connect(mut self, connect: impl Into<String>) -> Self {
        self.config.connect = connect.into();
        self
    }

    /// See [`WardenConfig::session_timeout`].
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.config.session_timeout = timeout;
        self
    }

    /// See [`WardenConfig::connection_timeout`].
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection_timeout = timeout;
        self
    }

    /// See [`WardenConfig::operation_timeout`](WardenConfig#structfield.operation_timeout).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.config.operation_timeout = Some(timeout);
        self
    }

    /// See [`WardenConfig::retry`].
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.config.retry = retry;
        self
    }

    /// See [`WardenConfig::namespace`].
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.config.namespace = Some(namespace.into());
        self
    }

    /// Adds credentials (see [`WardenConfig::auth`]).
    pub fn auth(mut self, scheme: impl Into<String>, credentials: impl Into<String>) -> Self {
        self.config.auth.push(AuthConfig {
            scheme: scheme.into(),
            credentials: credentials.into(),
        });
        self
    }

    /// See [`WardenConfig::sasl`].
    pub fn sasl(mut self, sasl: SaslConfig) -> Self {
        self.config.sasl = Some(sasl);
        self
    }

    /// See [`WardenConfig::read_only`].
    pub fn read_only(mut self, allowed: bool) -> Self {
        self.config.read_only = allowed;
        self
    }

    /// See [`WardenConfig::max_frame_len`].
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.config.max_frame_len = bytes;
        self
    }

    /// See [`WardenConfig::reconnect_delay`].
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.config.reconnect_delay = delay;
        self
    }

    /// The first pause after a failed round of connection attempts and its cap (see
    /// [`WardenConfig::reconnect_backoff`] and
    /// [`ClientBuilder::reconnect_backoff`](crate::ClientBuilder::reconnect_backoff)).
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.reconnect_backoff.min = min;
        self.config.reconnect_backoff.max = max;
        self
    }

    /// After `rounds` failed rounds in a row, the pauses go on doubling up to `later_max` (see
    /// [`WardenConfig::reconnect_backoff`] and
    /// [`ClientBuilder::reconnect_backoff_patience`](crate::ClientBuilder::reconnect_backoff_patience)).
    pub fn reconnect_backoff_patience(mut self, rounds: u32, later_max: Duration) -> Self {
        self.config.reconnect_backoff.patience = rounds;
        self.config.reconnect_backoff.later_max = later_max;
        self
    }

    /// See [`WardenConfig::lock_safety`].
    pub fn lock_safety(mut self, safety: LockSafety) -> Self {
        self.config.lock_safety = safety;
        self
    }

    /// See [`WardenConfig::follow_ensemble`].
    pub fn follow_ensemble(mut self, follow: bool) -> Self {
        self.config.follow_ensemble = follow;
        self
    }

    /// Resolves host names with `resolver` for every session of the warden (see
    /// [`ClientBuilder::resolver`](crate::ClientBuilder::resolver)).
    pub fn resolver(mut self, resolver: impl Resolver) -> Self {
        self.extras.resolver = Some(SharedResolver::new(resolver));
        self
    }

    /// See [`WardenConfig::tls`].
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: TlsFiles) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Opens every connection with `dialer` instead of TCP (cargo feature `sim`; see
    /// [`ClientBuilder::dialer`](crate::ClientBuilder::dialer)).
    #[cfg(feature = "sim")]
    pub fn dialer(mut self, dialer: impl crate::client::Dialer) -> Self {
        self.extras.dialer = Some(crate::client::session::transport::SharedDialer(
            std::sync::Arc::new(dialer),
        ));
        self
    }

    /// The configuration, validated.
    ///
    /// # Errors
    /// As [`WardenConfig::validate`].
    pub fn build(self) -> Result<WardenConfig> {
        self.config.validate()?;
        Ok(self.config)
    }

    /// Validates the configuration and starts a warden with it.
    ///
    /// # Errors
    /// As [`Warden::start`](super::Warden::start).
    pub async fn start(self) -> Result<super::Warden> {
        let extras = self.extras.clone();
        super::Warden::start_with(self.build()?, extras).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_missing_fields() {
        let config: WardenConfig = serde_json::from_str(r#"{"connect":"a:1"}"#).unwrap();
        assert_eq!(config, WardenConfig::new("a:1"));
        config.validate().unwrap();
        assert_eq!(config.reconnect_delay, Duration::from_millis(100));
        let config: WardenConfig =
            toml::from_str("connect = \"a:1\"\nreconnect_delay = \"0s\"").unwrap();
        assert_eq!(config.reconnect_delay, Duration::ZERO);
    }

    #[test]
    fn following_the_ensemble_is_on_by_default_and_can_be_switched_off() {
        assert!(WardenConfig::new("a:1").follow_ensemble);
        let off: WardenConfig =
            toml::from_str("connect = \"a:1\"\nfollow_ensemble = false").unwrap();
        assert!(!off.follow_ensemble);
        let off: WardenConfig =
            serde_json::from_str(r#"{"connect":"a:1","follow_ensemble":false}"#).unwrap();
        assert!(!off.follow_ensemble);
        assert!(
            !WardenBuilder::new("a:1")
                .follow_ensemble(false)
                .build()
                .unwrap()
                .follow_ensemble
        );
    }

    #[test]
    fn reconnect_backoff_reads_from_toml_json_and_the_builder_alike() {
        let config: WardenConfig = toml::from_str(
            "connect = \"a:1\"\nreconnect_backoff = { min = \"2s\", max = \"4s\", patience = 0, later_max = \"8s\" }",
        )
        .unwrap();
        config.validate().unwrap();
        let set = ReconnectBackoff {
            min: Duration::from_secs(2),
            max: Duration::from_secs(4),
            patience: 0,
            later_max: Duration::from_secs(8),
        };
        assert_eq!(config.reconnect_backoff, set);
        let built = WardenBuilder::new("a:1")
            .reconnect_backoff(set.min, set.max)
            .reconnect_backoff_patience(set.patience, set.later_max)
            .build()
            .unwrap();
        assert_eq!(built, config);
        // Left out, a field keeps its default.
        let partial: WardenConfig =
            serde_json::from_str(r#"{"connect":"a:1","reconnect_backoff":{"patience":9}}"#)
                .unwrap();
        assert_eq!(
            partial.reconnect_backoff,
            ReconnectBackoff {
                patience: 9,
                ..ReconnectBackoff::default()
            }
        );
        assert_eq!(
            WardenConfig::new("a:1").reconnect_backoff.later_max,
            crate::client::DEFAULT_LATER_MAX_BACKOFF
        );
    }

    #[test]
    fn a_reconnect_backoff_that_cannot_grow_or_caps_below_itself_is_refused() {
        let ms = Duration::from_millis;
        for (builder, needle) in [
            (
                WardenBuilder::new("a:1").reconnect_backoff(Duration::ZERO, ms(100)),
                "reconnect_backoff.min",
            ),
            (
                WardenBuilder::new("a:1").reconnect_backoff(ms(500), ms(100)),
                "reconnect_backoff.max",
            ),
            (
                WardenBuilder::new("a:1").reconnect_backoff_patience(3, ms(100)),
                "reconnect_backoff.later_max",
            ),
        ] {
            match builder.build() {
                Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!("{needle}: {other:?}"),
            }
        }
        assert!(
            toml::from_str::<WardenConfig>(
                "connect = \"a:1\"\nreconnect_backoff = { min = \"1s\", patiense = 2 }"
            )
            .is_err()
        );
    }

    #[test]
    fn operation_timeout_defaults_to_twice_the_connection_timeout() {
        let config = WardenConfig::new("a:1");
        assert_eq!(config.operation_timeout(), Duration::from_secs(30));
        let config: WardenConfig =
            toml::from_str("connect = \"a:1\"\nconnection_timeout = \"4s\"").unwrap();
        assert_eq!(config.operation_timeout(), Duration::from_secs(8));
        let config: WardenConfig =
            toml::from_str("connect = \"a:1\"\noperation_timeout = \"90s\"").unwrap();
        assert_eq!(config.operation_timeout(), Duration::from_secs(90));
        let zero = WardenBuilder::new("a:1")
            .operation_timeout(Duration::ZERO)
            .build();
        assert!(
            matches!(&zero, Err(Error::InvalidArgument(m)) if m.contains("operation_timeout")),
            "{zero:?}"
        );
    }

    #[test]
    fn invalid_config_is_a_clear_error_at_build_time() {
        let bad = [
            WardenBuilder::new("").build(),
            WardenBuilder::new("a:1")
                .session_timeout(Duration::ZERO)
                .build(),
            WardenBuilder::new("a:1").namespace("relative").build(),
            WardenBuilder::new("a:1")
                .operation_timeout(Duration::ZERO)
                .build(),
            WardenBuilder::new("a:1/chroot").namespace("/ns").build(),
            WardenBuilder::new("a:1")
                .lock_safety(LockSafety::SessionDeadline {
                    margin: Duration::from_secs(60),
                })
                .build(),
        ];
        for result in bad {
            assert!(result.is_err());
        }
        assert!(
            toml::from_str::<WardenConfig>("connect = \"a\"\nsession_timout = \"1s\"").is_err()
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_section_parses_with_defaults() {
        let config: WardenConfig = toml::from_str(
            "connect = \"a:1\"\ntls = { ca_file = \"/ca.pem\", cert_file = \"/c.pem\", key_file = \"/k.pem\" }",
        )
        .unwrap();
        let tls = config.tls.clone().unwrap();
        assert!(tls.verify_hostname);
        assert_eq!(
            tls.key_file.as_deref(),
            Some(std::path::Path::new("/k.pem"))
        );
        config.validate().unwrap();
        let half: WardenConfig = toml::from_str(
            "connect = \"a:1\"\ntls = { ca_file = \"/ca.pem\", key_file = \"/k.pem\" }",
        )
        .unwrap();
        assert!(half.validate().is_err());
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let config = WardenBuilder::new("a:1")
            .auth("digest", "bob:hunter2")
            .sasl(SaslConfig::digest_md5("bob", "s3cr3t"))
            .build()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("digest"));
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }
}
