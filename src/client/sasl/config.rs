//! [`SaslConfig`]: which SASL mechanism a client authenticates with, and its credentials;
//! [`GssapiConfig`]: how a Kerberos client names the server and itself.

use std::fmt;

use serde::{Deserialize, Serialize};

/// SASL credentials, presented on every connection right after the handshake and before any
/// request is sent (so a reconnect, or a new session, is authenticated again).
///
/// ZooKeeper servers configured with a JAAS `Server` section and
/// `authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider` accept
/// DIGEST-MD5 with the users listed there. A session that authenticated as `bob` is known to
/// ACLs as `sasl:bob`.
///
/// With cargo feature `kerberos`, servers whose JAAS `Server` section uses `Krb5LoginModule`
/// accept SASL GSSAPI ([`SaslConfig::gssapi`]): the client's Kerberos identity comes from the
/// default credential cache (or the client keytab named by `KRB5_CLIENT_KTNAME`), and ACLs
/// know the session as `sasl:<principal>` (for example `sasl:alice@EXAMPLE.COM`).
///
/// `Debug` shows the mechanism and the user name, never the password.
///
/// In a [`WardenConfig`](crate::WardenConfig) (TOML):
///
/// ```
/// let config: zkwarden::WardenConfig = toml::from_str(r#"
///     connect = "zk1:2181"
///     sasl = { mechanism = "digest-md5", username = "bob", password = "hunter2" }
/// "#).unwrap();
/// assert_eq!(config.sasl, Some(zkwarden::SaslConfig::digest_md5("bob", "hunter2")));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SaslConfig {
    /// DIGEST-MD5 (RFC 2831) with qop `auth`: the password never crosses the wire, and the
    /// server proves it knows it too.
    #[non_exhaustive]
    DigestMd5 {
        /// The user, as named in the server's JAAS file (`user_<name>="<password>"`).
        username: String,
        /// The user's password. A secret.
        password: String,
    },
    /// Kerberos v5 through SASL GSSAPI (RFC 4752), without a security layer (as ZooKeeper's
    /// default `auth` quality of protection). Needs cargo feature `kerberos`; without it the
    /// settings still parse, but building a client with them fails with
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument).
    Gssapi(GssapiConfig),
}

/// How a Kerberos (SASL GSSAPI) client names the ZooKeeper server it authenticates to, and
/// which of its own credentials it uses. Nothing here is secret: the keys stay in the
/// credential cache or keytab, which the system Kerberos library reads.
///
/// The server principal is `<service>/<host>@<realm>`: `zookeeper/<host>` by default, where
/// `<host>` is the host of the connect-string entry being connected to, and the realm is the
/// one Kerberos maps that host to (`[domain_realm]`, else `default_realm` in `krb5.conf`).
///
/// In a [`WardenConfig`](crate::WardenConfig) (TOML):
///
/// ```
/// let config: zkwarden::WardenConfig = toml::from_str(r#"
///     connect = "zk1.example.com:2181"
///     sasl = { mechanism = "gssapi", realm = "EXAMPLE.COM", canonicalize_host = false }
/// "#).unwrap();
/// let expected = zkwarden::GssapiConfig::new()
///     .realm("EXAMPLE.COM")
///     .canonicalize_host(false);
/// assert_eq!(config.sasl, Some(zkwarden::SaslConfig::gssapi(expected)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GssapiConfig {
    /// The service part of the server principal (Java client: `zookeeper.sasl.client.username`),
    /// `zookeeper` by default.
    pub service: String,
    /// The host part of the server principal; by default the host of the connect-string
    /// entry being connected to.
    pub host: Option<String>,
    /// The realm of the server principal. When set, the principal is used exactly as
    /// `<service>/<host>@<realm>`, without host name canonicalization.
    pub realm: Option<String>,
    /// Let Kerberos canonicalize the host name (forward and reverse DNS, as `krb5.conf`'s
    /// `dns_canonicalize_hostname` and `rdns` say) and map it to its realm, as the Java
    /// client's `zookeeper.sasl.client.canonicalize.hostname` (default `true`). With `false`
    /// the principal is `<service>/<host>` in the default realm, exactly as written.
    pub canonicalize_host: bool,
    /// The client principal to authenticate as (for example `alice@EXAMPLE.COM`); by default
    /// the default principal of the credential cache, or of the client keytab.
    pub principal: Option<String>,
}

impl Default for GssapiConfig {
    fn default() -> Self {
        GssapiConfig {
            service: "zookeeper".into(),
            host: None,
            realm: None,
            canonicalize_host: true,
            principal: None,
        }
    }
}

/// How GSSAPI is to read a server principal name.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServicePrincipal {
    /// `service@host`, a GSS host-based service name: Kerberos canonicalizes the host and
    /// finds its realm.
    HostBased(String),
    /// `service/host[@REALM]`, a Kerberos principal name taken as it is.
    Krb5(String),
}

impl GssapiConfig {
    /// The defaults: service `zookeeper`, the connect string's host, canonicalized; the
    /// credential cache's default principal.
    pub fn new() -> GssapiConfig {
        GssapiConfig::default()
    }

    /// Sets [`service`](Self::service).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// Sets [`host`](Self::host).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets [`realm`](Self::realm).
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets [`canonicalize_host`](Self::canonicalize_host).
    pub fn canonicalize_host(mut self, canonicalize: bool) -> Self {
        self.canonicalize_host = canonicalize;
        self
    }

    /// Sets [`principal`](Self::principal).
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// The server principal for a connection to `connect_host`.
    #[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
    pub(crate) fn service_principal(&self, connect_host: &str) -> ServicePrincipal {
        let host = self.host.as_deref().unwrap_or(connect_host);
        match &self.realm {
            Some(realm) => ServicePrincipal::Krb5(format!("{}/{host}@{realm}", self.service)),
            None if self.canonicalize_host => {
                ServicePrincipal::HostBased(format!("{}@{host}", self.service))
            }
            None => ServicePrincipal::Krb5(format!("{}/{host}", self.service)),
        }
    }

    fn validate(&self) -> Result<(), String> {
        let names = [
            ("service", Some(self.service.as_str())),
            ("host", self.host.as_deref()),
            ("realm", self.realm.as_deref()),
            ("principal", self.principal.as_deref()),
        ];
        for (what, value) in names {
            match value {
                Some("") => return Err(format!("Kerberos {what} must not be empty")),
                Some(v) if v.contains('\0') => {
                    return Err(format!("Kerberos {what} must not contain NUL"));
                }
                _ => {}
            }
        }
        if self.service.contains(['/', '@']) {
            return Err(format!(
                "Kerberos service {:?} must be a bare name (no '/' or '@')",
                self.service
            ));
        }
        if !cfg!(feature = "kerberos") {
            return Err(
                "SASL GSSAPI (Kerberos) needs zkwarden built with cargo feature `kerberos`".into(),
            );
        }
        Ok(())
    }
}

impl SaslConfig {
    /// DIGEST-MD5 credentials (the mechanism ZooKeeper's `DigestLoginModule` serves).
    ///
    /// ```
    /// use zkwarden::{Client, SaslConfig};
    ///
    /// let builder = Client::builder("127.0.0.1:2181")
    ///     .sasl(SaslConfig::digest_md5("bob", "hunter2"));
    /// assert!(!format!("{builder:?}").contains("hunter2"));
    /// ```
    pub fn digest_md5(username: impl Into<String>, password: impl Into<String>) -> SaslConfig {
        SaslConfig::DigestMd5 {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Kerberos credentials (SASL GSSAPI) with the given settings; `GssapiConfig::new()` for
    /// the defaults (server principal `zookeeper/<host>`, the credential cache's principal).
    /// Needs cargo feature `kerberos`.
    ///
    /// ```
    /// use zkwarden::{GssapiConfig, SaslConfig};
    ///
    /// let sasl = SaslConfig::gssapi(GssapiConfig::new().principal("alice@EXAMPLE.COM"));
    /// assert_eq!(sasl.mechanism(), "GSSAPI");
    /// assert_eq!(sasl.username(), "alice@EXAMPLE.COM");
    /// ```
    pub fn gssapi(config: GssapiConfig) -> SaslConfig {
        SaslConfig::Gssapi(config)
    }

    /// The mechanism's SASL name, e.g. `DIGEST-MD5`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslConfig::DigestMd5 { .. } => "DIGEST-MD5",
            SaslConfig::Gssapi(_) => "GSSAPI",
        }
    }

    /// The user name the credentials are for: for GSSAPI the configured client principal, or
    /// `""` when the credential cache's default principal is used.
    pub fn username(&self) -> &str {
        match self {
            SaslConfig::DigestMd5 { username, .. } => username,
            SaslConfig::Gssapi(config) => config.principal.as_deref().unwrap_or(""),
        }
    }

    /// Checks the settings before any connection is made.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            SaslConfig::DigestMd5 { username, .. } if username.is_empty() => {
                Err("SASL user name must not be empty".into())
            }
            SaslConfig::DigestMd5 { .. } => Ok(()),
            SaslConfig::Gssapi(config) => config.validate(),
        }
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let SaslConfig::Gssapi(config) = self {
            // Names only: the keys stay in the credential cache or keytab.
            return f.debug_tuple("SaslConfig::Gssapi").field(config).finish();
        }
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism())
            .field("username", &self.username())
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", SaslConfig::digest_md5("bob", "hunter2"));
        assert!(
            shown.contains("bob") && shown.contains("DIGEST-MD5"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn serde_form() {
        let json = r#"{"mechanism":"digest-md5","username":"bob","password":"pw"}"#;
        let parsed: SaslConfig = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, SaslConfig::digest_md5("bob", "pw"));
        assert!(serde_json::from_str::<SaslConfig>(r#"{"mechanism":"scram"}"#).is_err());
        assert!(SaslConfig::digest_md5("", "pw").validate().is_err());
        let gssapi: SaslConfig = serde_json::from_str(r#"{"mechanism":"gssapi"}"#).unwrap();
        assert_eq!(gssapi, SaslConfig::gssapi(GssapiConfig::new()));
        let custom = r#"{"mechanism":"gssapi","service":"zk","host":"zk1","principal":"a@R"}"#;
        assert_eq!(
            serde_json::from_str::<SaslConfig>(custom).unwrap(),
            SaslConfig::gssapi(
                GssapiConfig::new()
                    .service("zk")
                    .host("zk1")
                    .principal("a@R")
            )
        );
        let typo = r#"{"mechanism":"gssapi","servce":"zk"}"#;
        assert!(serde_json::from_str::<SaslConfig>(typo).is_err());
    }

    #[test]
    fn service_principal_names() {
        let default = GssapiConfig::new();
        assert_eq!(
            default.service_principal("zk1.example.com"),
            ServicePrincipal::HostBased("zookeeper@zk1.example.com".into())
        );
        assert_eq!(
            default
                .clone()
                .canonicalize_host(false)
                .service_principal("zk1"),
            ServicePrincipal::Krb5("zookeeper/zk1".into())
        );
        let pinned = default.service("zk").host("zk.lb").realm("EXAMPLE.COM");
        assert_eq!(
            pinned.service_principal("10.0.0.1"),
            ServicePrincipal::Krb5("zk/zk.lb@EXAMPLE.COM".into())
        );
    }

    #[test]
    fn bad_gssapi_settings_are_refused() {
        for bad in [
            GssapiConfig::new().service(""),
            GssapiConfig::new().service("zookeeper/host"),
            GssapiConfig::new().host(""),
            GssapiConfig::new().realm("A\0B"),
            GssapiConfig::new().principal(""),
        ] {
            let err = SaslConfig::gssapi(bad.clone()).validate().unwrap_err();
            assert!(err.contains("Kerberos"), "{bad:?}: {err}");
        }
        let good = SaslConfig::gssapi(GssapiConfig::new()).validate();
        if cfg!(feature = "kerberos") {
            assert_eq!(good, Ok(()));
        } else {
            assert!(good.unwrap_err().contains("feature `kerberos`"));
        }
    }
}
