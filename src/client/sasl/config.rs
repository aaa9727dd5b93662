//! [`SaslConfig`]: which SASL mechanism a client authenticates with, and its credentials.

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

    /// The mechanism's SASL name, e.g. `DIGEST-MD5`.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslConfig::DigestMd5 { .. } => "DIGEST-MD5",
        }
    }

    /// The user name the credentials are for.
    pub fn username(&self) -> &str {
        match self {
            SaslConfig::DigestMd5 { username, .. } => username,
        }
    }

    /// Checks the settings before any connection is made.
    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            SaslConfig::DigestMd5 { username, .. } if username.is_empty() => {
                Err("SASL user name must not be empty".into())
            }
            SaslConfig::DigestMd5 { .. } => Ok(()),
        }
    }
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        assert!(serde_json::from_str::<SaslConfig>(r#"{"mechanism":"gssapi"}"#).is_err());
        assert!(SaslConfig::digest_md5("", "pw").validate().is_err());
    }
}
