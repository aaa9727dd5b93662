//! The client side of SASL GSSAPI (RFC 4752) with Kerberos v5, through the system GSS-API
//! library (cargo feature `kerberos`).
//!
//! No network I/O of its own: [`GssapiClient::step`] takes what the server sent and returns
//! what to send back. The Kerberos library may talk to the KDC inside the first step (to get
//! a service ticket), so callers run steps on a blocking thread.
//!
//! The exchange, as ZooKeeper's server runs it:
//! 1. the client sends the initial context token (an AP-REQ);
//! 2. the server answers with its token (the AP-REP, for mutual authentication); the client
//!    completes its context and answers with an empty token;
//! 3. the server sends a wrapped 4-byte offer: the security layers it supports and its
//!    maximum message size;
//! 4. the client answers, wrapped: "no security layer", a maximum size of 0 and its
//!    authorization identity (its own principal);
//! 5. the server's last reply carries no token: authenticated.

use std::fmt;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as GssError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL, Oid};

use super::{GssapiConfig, ServicePrincipal};

/// RFC 4752 security layer bit: no security layer.
const LAYER_NONE: u8 = 1;

/// Kerberos minor codes that say the KDC could not be reached: worth another try later,
/// unlike a refused or missing credential. From MIT krb5's error table.
const TRANSIENT_MINOR: &[i64] = &[
    -1765328228, // KRB5_KDC_UNREACH: cannot contact any KDC for the realm
    -1765328164, // KRB5_REALM_CANT_RESOLVE: cannot resolve the KDC's address
];

/// Why a GSSAPI exchange could not go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GssapiError {
    /// The credentials are missing, expired or refused, the server principal is unknown, or
    /// the server asks for what this client does not do: the same settings fail again.
    #[error("{0}")]
    Refused(String),
    /// The KDC could not be reached, or the server's message is malformed: try again.
    #[error("{0}")]
    Transient(String),
}

/// Where the exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet.
    Start,
    /// Context tokens are being exchanged.
    Context,
    /// The context is established; waiting for the server's security layer offer.
    SecurityLayer,
    /// The security layer answer is sent; waiting for the server's last reply.
    Answered,
    /// Done.
    Complete,
}

/// One GSSAPI authentication, for one connection.
pub(crate) struct GssapiClient {
    ctx: ClientCtx,
    target: String,
    state: State,
}

impl fmt::Debug for GssapiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the context: it holds session keys.
        f.debug_struct("GssapiClient")
            .field("target", &self.target)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GssapiClient {
    /// Prepares an exchange with the server reached as `connect_host`: names the server
    /// principal and acquires the client's credentials (from the credential cache or the
    /// client keytab).
    pub(crate) fn new(config: &GssapiConfig, connect_host: &str) -> Result<Self, GssapiError> {
        let principal = config.service_principal(connect_host);
        let (target, kind) = match &principal {
            ServicePrincipal::HostBased(name) => (name.clone(), GSS_NT_HOSTBASED_SERVICE),
            ServicePrincipal::Krb5(name) => (name.clone(), GSS_NT_KRB5_PRINCIPAL),
        };
        let name = import_name(&target, kind, "server principal")?;
        let cred = match &config.principal {
            None => None,
            Some(client) => {
                let client_name = import_name(client, GSS_NT_KRB5_PRINCIPAL, "client principal")?;
                let cred = Cred::acquire(Some(&client_name), None, CredUsage::Initiate, None)
                    .map_err(|e| classify(&format!("no Kerberos credentials for {client}"), e))?;
                Some(cred)
            }
        };
        let flags = CtxFlags::GSS_C_MUTUAL_FLAG | CtxFlags::GSS_C_INTEG_FLAG;
        Ok(GssapiClient {
            ctx: ClientCtx::new(cred, name, flags, Some(GSS_MECH_KRB5)),
            target,
            state: State::Start,
        })
    }

    /// The server principal as given to Kerberos, for logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// True once the server accepted the last message.
    pub(crate) fn is_complete(&self) -> bool {
        self.state == State::Complete
    }

    /// The next message for the server, given its last one (`None` before the first):
    /// `Ok(None)` once the exchange is complete.
    pub(crate) fn step(&mut self, server: Option<&[u8]>) -> Result<Option<Vec<u8>>, GssapiError> {
        match (self.state, server) {
            (State::Start, _) => self.context_step(None).map(Some),
            (State::Context, Some(token)) => self.context_step(Some(token)).map(Some),
            (State::SecurityLayer, Some(offer)) => self.answer_offer(offer).map(Some),
            (State::Answered, Some(_)) => {
                // The server's reply to our answer carries nothing to check; that it came
                // without an error code is the success.
                self.state = State::Complete;
                Ok(None)
            }
            (State::Complete, Some(_)) => Err(GssapiError::Transient(
                "unexpected GSSAPI message after the exchange completed".into(),
            )),
            (_, None) => Err(GssapiError::Transient(
                "GSSAPI exchange stepped without the server's message".into(),
            )),
        }
    }

    fn context_step(&mut self, server: Option<&[u8]>) -> Result<Vec<u8>, GssapiError> {
        let out = self.ctx.step(server, None).map_err(|e| {
            classify(
                &format!("Kerberos could not authenticate to {}", self.target),
                e,
            )
        })?;
        self.state = if self.ctx.is_complete() {
            State::SecurityLayer
        } else {
            State::Context
        };
        // An established context with nothing left to say still answers the server, which
        // waits for a message before it makes its security layer offer.
        Ok(out.map(|buf| buf.to_vec()).unwrap_or_default())
    }

    fn answer_offer(&mut self, wrapped: &[u8]) -> Result<Vec<u8>, GssapiError> {
        let offer = self
            .ctx
            .unwrap(wrapped)
            .map_err(|e| classify("cannot read the server's GSSAPI security layer offer", e))?;
        let [layers, ..] = offer[..] else {
            return Err(GssapiError::Transient(
                "the server's GSSAPI security layer offer is empty".into(),
            ));
        };
        if offer.len() != 4 {
            return Err(GssapiError::Transient(format!(
                "the server's GSSAPI security layer offer has {} bytes, not 4",
                offer.len()
            )));
        }
        if layers & LAYER_NONE == 0 {
            return Err(GssapiError::Refused(
                "the server requires a SASL security layer (quality of protection auth-int or \
                 auth-conf), which zkwarden does not offer"
                    .into(),
            ));
        }
        let authzid = self
            .ctx
            .source_name()
            .and_then(|name| name.display_name())
            .map_err(|e| classify("cannot name the client principal", e))?;
        // No security layer, so no maximum message size (RFC 4752 section 3.1).
        let mut answer = vec![LAYER_NONE, 0, 0, 0];
        answer.extend_from_slice(&authzid);
        let wrapped = self
            .ctx
            .wrap(false, &answer)
            .map_err(|e| classify("cannot wrap the GSSAPI security layer answer", e))?;
        self.state = State::Answered;
        Ok(wrapped.to_vec())
    }
}

fn import_name(name: &str, kind: Oid<'static>, what: &str) -> Result<Name, GssapiError> {
    Name::new(name.as_bytes(), Some(kind))
        .map_err(|e| GssapiError::Refused(format!("bad Kerberos {what} {name:?}: {e}")))
}

/// Whether a GSS-API failure is worth another try, with its description.
fn classify(what: &str, e: GssError) -> GssapiError {
    let message = format!("{what}: {e}");
    if TRANSIENT_MINOR.contains(&i64::from(e.minor as i32))
        && !e.major.contains(MajorFlags::GSS_S_CREDENTIALS_EXPIRED)
    {
        GssapiError::Transient(message)
    } else {
        GssapiError::Refused(message)
    }
}
