//! [`TlsConfig`]: TLS to ZooKeeper's secure client port (cargo feature `tls`).
//!
//! ZooKeeper serves TLS on its `secureClientPort` when it runs the Netty connection factory
//! (`serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory`). The client
//! speaks TLS 1.3 or 1.2 through rustls (ring provider, no OpenSSL) and, by default:
//!
//! * trusts only the CA certificates you give it (no system roots: ZooKeeper deployments
//!   almost always run on a private CA);
//! * checks that the server's certificate names the host as written in the connect string
//!   (a DNS name, or an IP address matched against the certificate's IP SANs), unless a
//!   [`server_name`](TlsConfig::server_name) override is set or the check is switched off
//!   with [`verify_hostname(false)`](TlsConfig::verify_hostname) (the chain is still checked);
//! * presents a client certificate only when one is configured (mutual TLS, for servers with
//!   `ssl.clientAuth=need`).
//!
//! A certificate the client refuses (unknown CA, wrong name, expired), or a server that
//! refuses the client's, keeps the client trying the other hosts until the connect timeout
//! and then fails with [`Error::Tls`] naming the reason. The private key never appears in
//! `Debug` output or logs.
//!
//! ```no_run
//! use zkwarden::CreateMode;
//! use zkwarden::client::{Client, TlsConfig};
//!
//! # async fn run() -> zkwarden::Result<()> {
//! let tls = TlsConfig::from_ca_file("/etc/zookeeper/ca.pem")?
//!     // Mutual TLS, for servers with ssl.clientAuth=need:
//!     .client_identity_files("/etc/myapp/client.pem", "/etc/myapp/client-key.pem")?;
//! let client = Client::builder("zk1.example.com:2281,zk2.example.com:2281")
//!     .tls(tls)
//!     .connect()
//!     .await?;
//! client.create("/hello", b"over TLS", CreateMode::Persistent).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The same settings in a [`WardenConfig`](crate::warden::WardenConfig):
//!
//! ```toml
//! connect = "zk1.example.com:2281,zk2.example.com:2281"
//! tls = { ca_file = "/etc/zookeeper/ca.pem", cert_file = "/etc/myapp/client.pem", key_file = "/etc/myapp/client-key.pem" }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// TLS settings of a client: the CA certificates to trust, an optional client certificate
/// and how the server's name is checked. Hand it to
/// [`ClientBuilder::tls`](crate::client::ClientBuilder::tls). See the
/// [module docs](self) for the behaviour and an example.
///
/// `Debug` shows how many CA certificates there are and whether a client identity is set,
/// never the key.
pub struct TlsConfig {
    roots: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
    verify_hostname: bool,
    server_name: Option<String>,
}

/// A client certificate chain and its private key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            roots: self.roots.clone(),
            identity: self.identity.as_ref().map(|id| Identity {
                chain: id.chain.clone(),
                key: id.key.clone_key(),
            }),
            verify_hostname: self.verify_hostname,
            server_name: self.server_name.clone(),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_certificates", &self.roots.len())
            .field(
                "client_certificates",
                &self.identity.as_ref().map_or(0, |id| id.chain.len()),
            )
            .field("client_key", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("verify_hostname", &self.verify_hostname)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsConfig {
    /// Trusts the CA certificates in `pem` (one or more `CERTIFICATE` blocks).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `pem` holds no certificate or a malformed one.
    pub fn from_ca_pem(pem: impl AsRef<[u8]>) -> Result<TlsConfig> {
        TlsConfig {
            roots: Vec::new(),
            identity: None,
            verify_hostname: true,
            server_name: None,
        }
        .add_ca_pem(pem)
    }

    /// Trusts the CA certificates in the PEM file at `path`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the file when it cannot be read or holds no valid
    /// certificate.
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<TlsConfig> {
        let pem = read_file("CA file", path.as_ref())?;
        TlsConfig::from_ca_pem(pem).map_err(|e| in_file(e, "CA file", path.as_ref()))
    }

    /// Trusts the CA certificates in `pem` as well.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `pem` holds no certificate or a malformed one.
    pub fn add_ca_pem(mut self, pem: impl AsRef<[u8]>) -> Result<TlsConfig> {
        let certs = parse_certs(pem.as_ref(), "CA certificates")?;
        let mut check = RootCertStore::empty();
        for cert in &certs {
            check.add(cert.clone()).map_err(|e| {
                Error::InvalidArgument(format!("TLS: unusable CA certificate: {e}"))
            })?;
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// Presents this certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or SEC1
    /// PEM) to servers that ask for one: mutual TLS.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when either PEM is malformed or holds nothing usable. The
    /// message never contains key material.
    pub fn client_identity_pem(
        mut self,
        cert_chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<TlsConfig> {
        let chain = parse_certs(cert_chain_pem.as_ref(), "client certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|e| {
            Error::InvalidArgument(format!("TLS: no usable private key in the PEM: {e}"))
        })?;
        // Fails early on a key the provider cannot sign with, rather than at the handshake.
        provider()
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| Error::InvalidArgument(format!("TLS: unusable private key: {e}")))?;
        self.identity = Some(Identity { chain, key });
        Ok(self)
    }

    /// As [`client_identity_pem`](Self::client_identity_pem), reading the certificate chain
    /// and the key from files.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the file that cannot be read or parsed.
    pub fn client_identity_files(
        self,
        cert_chain_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<TlsConfig> {
        let (cert_path, key_path) = (cert_chain_path.as_ref(), key_path.as_ref());
        let chain = read_file("certificate file", cert_path)?;
        let key = read_file("key file", key_path)?;
        // Parse separately so an error names the file it came from.
        parse_certs(&chain, "client certificate")
            .map_err(|e| in_file(e, "certificate file", cert_path))?;
        self.client_identity_pem(chain, key)
            .map_err(|e| in_file(e, "key file", key_path))
    }

    /// Whether the server's certificate must name the host it was reached as (default
    /// `true`). With `false` the certificate chain is still checked against the CA
    /// certificates, but any name is accepted: for servers reached through addresses their
    /// certificates do not list (use only inside a trusted network).
    pub fn verify_hostname(mut self, verify: bool) -> TlsConfig {
        self.verify_hostname = verify;
        self
    }

    /// Checks every server's certificate against `name` (a DNS name or an IP address)
    /// instead of the host in the connect string, and sends it as SNI: for ensembles whose
    /// members share one certificate.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsConfig {
        self.server_name = Some(name.into());
        self
    }

    /// Builds the connector the session task uses.
    pub(crate) fn build(&self) -> Result<TlsSetup> {
        let provider = Arc::new(provider());
        let mut roots = RootCertStore::empty();
        for cert in &self.roots {
            roots.add(cert.clone()).map_err(|e| {
                Error::InvalidArgument(format!("TLS: unusable CA certificate: {e}"))
            })?;
        }
        let roots = Arc::new(roots);
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidArgument(format!("TLS: {e}")))?;
        let builder = if self.verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier {
                    roots,
                    algorithms: provider.signature_verification_algorithms,
                }))
        };
        let config = match &self.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| Error::InvalidArgument(format!("TLS: client identity: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        let server_name = match &self.server_name {
            Some(name) => Some(parse_server_name(name).map_err(Error::InvalidArgument)?),
            None => None,
        };
        Ok(TlsSetup {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }
}

/// What a session keeps of its [`TlsConfig`]: a ready connector.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    connector: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Runs the TLS handshake over `tcp` with server `host` (as written in the connect
    /// string). Certificate problems come back as an `io::Error` wrapping a `rustls::Error`
    /// (see [`is_tls_error`]).
    pub(crate) async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => parse_server_name(host)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        };
        self.connector.connect(name, tcp).await
    }
}

/// True when `e` is TLS refusing to go on (a certificate refused by either side, a protocol
/// mismatch, an alert from the server) rather than the network failing.
pub(crate) fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// The crypto provider: always ring, whatever the process installed as rustls's default.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn parse_server_name(name: &str) -> std::result::Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_owned())
        .map_err(|e| format!("TLS: {name:?} is not a valid server name: {e}"))
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidArgument(format!("TLS: malformed {what} PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "TLS: no CERTIFICATE block in the {what} PEM"
        )));
    }
    Ok(certs)
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::InvalidArgument(format!("TLS: cannot read {what} {}: {e}", path.display()))
    })
}

/// Puts the file name into a parse error.
fn in_file(e: Error, what: &str, path: &Path) -> Error {
    match e {
        Error::InvalidArgument(msg) => {
            Error::InvalidArgument(format!("{msg} ({what} {})", path.display()))
        }
        other => other,
    }
}

/// Checks that the server's chain leads to one of our CA certificates and that its
/// handshake signatures are valid, but accepts any name: what
/// [`TlsConfig::verify_hostname(false)`](TlsConfig::verify_hostname) asks for.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_pem_is_a_clear_error() {
        let err = TlsConfig::from_ca_pem("not a certificate").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
        let err = TlsConfig::from_ca_file("/nonexistent/ca.pem").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
