//! The SASL mechanisms behind one interface, so that the exchange on the wire
//! (`session/sasl.rs`) is written once for all of them.

use super::SaslConfig;
use super::digest_md5::{DigestMd5Client, DigestMd5Error};
#[cfg(feature = "kerberos")]
use super::gssapi::{GssapiClient, GssapiError};

/// Why a mechanism cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MechanismError {
    /// The credentials are refused or unusable (a wrong password, a missing or expired
    /// Kerberos ticket, an unknown principal): the same settings would fail again, so the
    /// session ends with `AuthFailed`. Names the reason; never a secret.
    Refused(String),
    /// The exchange broke (a malformed message, an unreachable KDC): try the next host.
    Broken(String),
}

/// One authentication with one mechanism, for one connection.
#[derive(Debug)]
pub(crate) enum Mechanism {
    /// DIGEST-MD5 with a user name and password.
    DigestMd5(DigestMd5Client),
    /// Kerberos. An `Option` so a step can move the context to a blocking thread and back;
    /// `None` only while a step runs (or after one panicked).
    #[cfg(feature = "kerberos")]
    Gssapi(Option<Box<GssapiClient>>),
}

impl Mechanism {
    /// Starts an authentication as `config` says, with the server reached as `host`.
    pub(crate) fn new(config: &SaslConfig, host: &str) -> Result<Mechanism, MechanismError> {
        match config {
            SaslConfig::DigestMd5 { username, password } => Ok(Mechanism::DigestMd5(
                DigestMd5Client::new(username, password),
            )),
            #[cfg(feature = "kerberos")]
            SaslConfig::Gssapi(gssapi) => GssapiClient::new(gssapi, host)
                .map(|client| Mechanism::Gssapi(Some(Box::new(client))))
                .map_err(MechanismError::from),
            #[cfg(not(feature = "kerberos"))]
            SaslConfig::Gssapi(_) => {
                // Unreachable through the builders, which validate the settings first.
                let _ = host;
                Err(MechanismError::Refused(
                    "SASL GSSAPI needs zkwarden built with cargo feature `kerberos`".into(),
                ))
            }
        }
    }

    /// Who is authenticating, for logs: the user name, or the Kerberos server principal.
    pub(crate) fn describe(&self) -> String {
        match self {
            Mechanism::DigestMd5(client) => format!("user {}", client.username()),
            #[cfg(feature = "kerberos")]
            Mechanism::Gssapi(client) => match client {
                Some(client) => format!("server principal {}", client.target()),
                None => "server principal (unknown)".into(),
            },
        }
    }

    /// The first message: empty for DIGEST-MD5, which has no initial response; the initial
    /// context token for GSSAPI.
    pub(crate) async fn initial(&mut self) -> Result<Vec<u8>, MechanismError> {
        match self {
            Mechanism::DigestMd5(_) => Ok(Vec::new()),
            #[cfg(feature = "kerberos")]
            Mechanism::Gssapi(slot) => gssapi_step(slot, None)
                .await?
                .ok_or_else(|| MechanismError::Broken("GSSAPI produced no initial token".into())),
        }
    }

    /// The answer to the server's `token`, or `None` when the exchange is complete.
    pub(crate) async fn step(&mut self, token: &[u8]) -> Result<Option<Vec<u8>>, MechanismError> {
        match self {
            Mechanism::DigestMd5(client) => client.step(token).map_err(MechanismError::from),
            #[cfg(feature = "kerberos")]
            Mechanism::Gssapi(slot) => gssapi_step(slot, Some(token.to_vec())).await,
        }
    }

    /// True once the server accepted the client (and, where the mechanism proves it, the
    /// server proved itself).
    pub(crate) fn is_complete(&self) -> bool {
        match self {
            Mechanism::DigestMd5(client) => client.is_complete(),
            #[cfg(feature = "kerberos")]
            Mechanism::Gssapi(client) => client.as_ref().is_some_and(|c| c.is_complete()),
        }
    }
}

/// One GSSAPI step on a blocking thread: the Kerberos library may talk to the KDC, and must
/// not stall the runtime's workers while it does.
#[cfg(feature = "kerberos")]
async fn gssapi_step(
    slot: &mut Option<Box<GssapiClient>>,
    token: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, MechanismError> {
    let Some(mut client) = slot.take() else {
        return Err(MechanismError::Broken(
            "GSSAPI context lost by an earlier failed step".into(),
        ));
    };
    let (client, result) = tokio::task::spawn_blocking(move || {
        let result = client.step(token.as_deref());
        (client, result)
    })
    .await
    .map_err(|e| MechanismError::Broken(format!("GSSAPI step failed: {e}")))?;
    *slot = Some(client);
    result.map_err(MechanismError::from)
}

impl From<DigestMd5Error> for MechanismError {
    fn from(e: DigestMd5Error) -> Self {
        match e {
            DigestMd5Error::BadServerProof => MechanismError::Refused(
                "the server could not prove it knows the SASL password".into(),
            ),
            other => MechanismError::Broken(format!("DIGEST-MD5: {other}")),
        }
    }
}

#[cfg(feature = "kerberos")]
impl From<GssapiError> for MechanismError {
    fn from(e: GssapiError) -> Self {
        match e {
            GssapiError::Refused(reason) => MechanismError::Refused(reason),
            GssapiError::Transient(reason) => MechanismError::Broken(reason),
        }
    }
}
