//! Certificates for TLS tests, and the `zoo.cfg` lines of a secure client port.
//!
//! [`TlsMaterial`] makes a fresh CA, a server certificate signed by it, a client certificate
//! signed by it (for mutual TLS) and a second, unrelated CA (to check that a client refuses
//! servers it should not trust), all with rcgen, in memory and as PEM files in a temporary
//! directory. Hand it to [`ZkServerBuilder::tls`](super::ZkServerBuilder::tls) or
//! [`ZkEnsembleBuilder::tls`](super::ZkEnsembleBuilder::tls): the servers then also listen on
//! a secure client port (Netty connection factory, PEM key and trust stores, which ZooKeeper
//! 3.5.7+ reads directly).

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use super::config::kv;
use super::error::TestingError;

/// Whether servers ask clients for a certificate on the secure port (`ssl.clientAuth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsClientAuth {
    /// Clients need no certificate.
    #[default]
    None,
    /// Clients may present one; it is checked if they do.
    Want,
    /// Clients must present a certificate signed by the CA: mutual TLS.
    Need,
}

impl TlsClientAuth {
    fn as_config(self) -> &'static str {
        match self {
            TlsClientAuth::None => "none",
            TlsClientAuth::Want => "want",
            TlsClientAuth::Need => "need",
        }
    }
}

/// A test CA with a server and a client certificate it signed, plus an unrelated CA. Made
/// fresh by [`generate`](Self::generate); the PEM files live in a temporary directory removed
/// on drop. `Debug` shows the file names only.
pub struct TlsMaterial {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
    other_ca_pem: String,
    server_names: Vec<String>,
    dir: TempDir,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("dir", &self.dir.path())
            .field("server_names", &self.server_names)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Certificates for servers reached as `127.0.0.1` or `localhost`.
    ///
    /// # Errors
    /// [`TestingError::Io`] when generating or writing them fails.
    pub fn generate() -> Result<TlsMaterial, TestingError> {
        TlsMaterial::generate_for(&["localhost", "127.0.0.1"])
    }

    /// Certificates whose server certificate names only `server_names` (DNS names or IP
    /// addresses): for example a name that is not `127.0.0.1`, to see a client refuse it.
    ///
    /// # Errors
    /// [`TestingError::Io`] when generating or writing them fails.
    pub fn generate_for(server_names: &[&str]) -> Result<TlsMaterial, TestingError> {
        let (ca_key, ca_params) = ca("zkwarden test CA")?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_error)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let (server_cert_pem, server_key_pem) = leaf(
            "zkwarden test server",
            server_names,
            ExtendedKeyUsagePurpose::ServerAuth,
            &issuer,
        )?;
        let (client_cert_pem, client_key_pem) = leaf(
            "zkwarden test client",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ClientAuth,
            &issuer,
        )?;
        let (other_key, other_params) = ca("unrelated test CA")?;
        let other_ca_pem = other_params
            .self_signed(&other_key)
            .map_err(rcgen_error)?
            .pem();
        let dir = tempfile::Builder::new()
            .prefix("zkwarden-tls-")
            .tempdir()
            .map_err(|e| TestingError::io("creating a directory for test certificates", e))?;
        let material = TlsMaterial {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
            other_ca_pem,
            server_names: server_names.iter().map(|s| (*s).to_owned()).collect(),
            dir,
        };
        for (name, pem) in [
            ("ca.pem", &material.ca_pem),
            ("client.pem", &material.client_cert_pem),
            ("client-key.pem", &material.client_key_pem),
            ("other-ca.pem", &material.other_ca_pem),
        ] {
            let path = material.dir.path().join(name);
            std::fs::write(&path, pem)
                .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))?;
        }
        Ok(material)
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate as a PEM file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The client certificate (PEM), signed by the CA.
    pub fn client_cert_pem(&self) -> &str {
        &self.client_cert_pem
    }

    /// The client certificate's private key (PKCS#8 PEM).
    pub fn client_key_pem(&self) -> &str {
        &self.client_key_pem
    }

    /// The client certificate as a PEM file.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }

    /// The client key as a PEM file.
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.path().join("client-key.pem")
    }

    /// A CA certificate (PEM) that signed nothing here: a client trusting only it must
    /// refuse the servers.
    pub fn other_ca_pem(&self) -> &str {
        &self.other_ca_pem
    }

    /// The unrelated CA as a PEM file.
    pub fn other_ca_file(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The names the server certificate carries.
    pub fn server_names(&self) -> &[String] {
        &self.server_names
    }

    /// Client settings that trust the CA (no client certificate).
    #[cfg(feature = "tls")]
    pub fn client_config(&self) -> crate::client::TlsConfig {
        crate::client::TlsConfig::from_ca_pem(&self.ca_pem)
            .expect("rcgen made a valid CA certificate")
    }

    /// Client settings that trust the CA and present the client certificate (mutual TLS).
    #[cfg(feature = "tls")]
    pub fn mutual_client_config(&self) -> crate::client::TlsConfig {
        self.client_config()
            .client_identity_pem(&self.client_cert_pem, &self.client_key_pem)
            .expect("rcgen made a valid client certificate and key")
    }

    /// What a server needs to serve TLS with these certificates.
    pub(crate) fn server_side(&self, client_auth: TlsClientAuth) -> ServerTls {
        ServerTls {
            // ZooKeeper's PEM key store: the private key and the certificate in one file.
            key_store: format!("{}{}", self.server_key_pem, self.server_cert_pem),
            trust_store: self.ca_pem.clone(),
            client_auth,
        }
    }
}

/// A server's secure-port settings, carried in the builders' options. `Debug` leaves out the
/// key store (it holds the server's private key).
#[derive(Clone)]
pub(crate) struct ServerTls {
    key_store: String,
    trust_store: String,
    pub(crate) client_auth: TlsClientAuth,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// File names of the stores in a server's data directory.
const KEY_STORE_FILE: &str = "tls-keystore.pem";
const TRUST_STORE_FILE: &str = "tls-truststore.pem";

impl ServerTls {
    /// The files to write into the server's data directory.
    pub(crate) fn files(&self) -> [(&'static str, &str); 2] {
        [
            (KEY_STORE_FILE, &self.key_store),
            (TRUST_STORE_FILE, &self.trust_store),
        ]
    }

    /// The `zoo.cfg` lines for a secure client port on `127.0.0.1:secure_port` next to the
    /// plain one (which keeps serving four-letter words to the harness).
    pub(crate) fn config(&self, data_dir: &Path, secure_port: u16) -> Vec<(String, String)> {
        let file = |name: &str| data_dir.join(name).display().to_string();
        vec![
            kv(
                "serverCnxnFactory",
                "org.apache.zookeeper.server.NettyServerCnxnFactory",
            ),
            kv("secureClientPort", secure_port),
            kv("secureClientPortAddress", "127.0.0.1"),
            kv("ssl.keyStore.location", file(KEY_STORE_FILE)),
            kv("ssl.keyStore.type", "PEM"),
            kv("ssl.trustStore.location", file(TRUST_STORE_FILE)),
            kv("ssl.trustStore.type", "PEM"),
            kv("ssl.clientAuth", self.client_auth.as_config()),
        ]
    }
}

/// A CA key and its parameters.
fn ca(name: &str) -> Result<(KeyPair, CertificateParams), TestingError> {
    let key = KeyPair::generate().map_err(rcgen_error)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((key, params))
}

/// A certificate for `names` signed by `issuer`, and its key, both PEM.
fn leaf(
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), TestingError> {
    let key = KeyPair::generate().map_err(rcgen_error)?;
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let mut params = CertificateParams::new(names).map_err(rcgen_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).map_err(rcgen_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn rcgen_error(e: rcgen::Error) -> TestingError {
    TestingError::io(
        "generating test certificates",
        std::io::Error::other(e.to_string()),
    )
}
