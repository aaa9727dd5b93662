//! SASL authentication inside the connection handshake: the settings a user gives
//! ([`SaslConfig`]) and the mechanisms, which do no I/O.

mod config;
pub(crate) mod digest_md5;
#[cfg(feature = "kerberos")]
mod gssapi;
pub(crate) mod mechanism;

#[cfg(feature = "kerberos")]
pub(crate) use config::ServicePrincipal;
pub use config::{GssapiConfig, SaslConfig};
