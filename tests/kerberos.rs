//! Kerberos (SASL GSSAPI) against a real MIT KDC and a real ZooKeeper server whose JAAS file
//! logs it in with a service keytab: a `sasl` ACL only the Kerberos identity passes,
//! `who_am_i`, a session that survives a server restart and a rebuilt session that
//! authenticates again, and bad credentials (none, a wrong server principal, an expired
//! ticket) ending as `AuthFailed` with the reason, after one attempt.
//!
//! The Kerberos library reads `KRB5_CONFIG` and `KRB5CCNAME` from the environment, which a
//! test cannot safely set for its own process: each test runs itself again in a child
//! process with that environment pointing into a fresh directory, where the child starts
//! the KDC and the server.
#![cfg(all(feature = "kerberos", feature = "testing"))]

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::capture::captured_log;
use common::*;
use zkwarden::testing::{Kdc, ZkServer};
use zkwarden::warden::ConnectionState;
use zkwarden::{
    Acl, Client, CreateMode, CreateOptions, Error, GssapiConfig, Perms, SaslConfig, SessionState,
    Warden,
};

/// Set in the child: the directory of its KDC and credential cache.
const CHILD_DIR_ENV: &str = "ZKWARDEN_KERBEROS_TEST_DIR";

/// How the child finds its credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Credentials {
    /// The credential cache `<dir>/ccache` (`KRB5CCNAME`), filled by the test with `kinit`.
    Ccache,
    /// The client keytab (`KRB5_CLIENT_KTNAME`), and an empty credential cache.
    ClientKeytab,
}

/// In the parent: runs test `name` again in a child process whose Kerberos environment
/// points into a fresh directory, shows its output and asserts it passed; returns `None`.
/// In that child: returns the directory.
fn kerberos_child(name: &str, credentials: Credentials) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    let dir = tempfile::Builder::new()
        .prefix("zkwarden-krb-")
        .tempdir()
        .expect("a directory for the KDC");
    let mut env = Kdc::client_env(dir.path());
    env.push(("KRB5CCNAME", ccache_name(dir.path())));
    if credentials == Credentials::ClientKeytab {
        env.push((
            "KRB5_CLIENT_KTNAME",
            dir.path().join("client.keytab").into(),
        ));
    }
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir.path())
        .envs(env)
        .output()
        .expect("run the test in a child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "{name} failed in its child process"
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run in its child"
    );
    None
}

fn ccache_path(dir: &Path) -> PathBuf {
    dir.join("ccache")
}

fn ccache_name(dir: &Path) -> OsString {
    let mut name = OsString::from("FILE:");
    name.push(ccache_path(dir));
    name
}

/// The KDC and a server that logs in to it, both in `dir`.
async fn start_kdc_and_server(dir: &Path) -> (Kdc, ZkServer) {
    let dir = dir.to_path_buf();
    blocking(move || {
        let kdc = Kdc::start_in(&dir).expect("start the KDC");
        let server = ZkServer::builder()
            .max_session_timeout(Duration::from_secs(30))
            .kerberos(&kdc)
            .start()
            .expect("start ZooKeeper with Kerberos");
        (kdc, server)
    })
    .await
}

/// `localhost:PORT`: the host name the default server principal `zookeeper/localhost` is
/// made from.
fn localhost(server: &ZkServer) -> String {
    format!("localhost:{}", server.port())
}

/// A ticket for the client principal in the child's credential cache, valid for `lifetime`.
fn kinit(kdc: &Kdc, dir: &Path, lifetime: Duration) {
    tokio::task::block_in_place(|| kdc.kinit(&ccache_path(dir), lifetime)).expect("kinit");
}

fn kerberos() -> SaslConfig {
    SaslConfig::gssapi(GssapiConfig::new())
}

/// The SASL identities the server knows the session by.
async fn sasl_users(client: &Client) -> Vec<String> {
    client
        .who_am_i()
        .await
        .expect("whoAmI")
        .into_iter()
        .filter(|info| info.auth_scheme == "sasl")
        .map(|info| info.user)
        .collect()
}

async fn connect_with(connect_string: &str, sasl: SaslConfig) -> Result<Client, Error> {
    Client::builder(connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connect_timeout(PATIENCE)
        .sasl(sasl)
        .connect()
        .await
}

fn log_text() -> String {
    let log = captured_log();
    let bytes = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kerberos_identity_passes_a_sasl_acl() {
    let Some(dir) = kerberos_child(
        "the_kerberos_identity_passes_a_sasl_acl",
        Credentials::Ccache,
    ) else {
        return;
    };
    init_tracing();
    let (kdc, server) = start_kdc_and_server(&dir).await;
    kinit(&kdc, &dir, Duration::from_secs(600));
    let me = kdc.client_principal();

    let client = connect_with(&localhost(&server), kerberos())
        .await
        .expect("Kerberos connect");
    assert_eq!(sasl_users(&client).await, [me.clone()]);
    let path = unique_path("krb-acl");
    client
        .create(
            &path,
            b"kerberos only",
            CreateOptions::new(CreateMode::Persistent).acl(vec![Acl::sasl(Perms::ALL, &me)]),
        )
        .await
        .unwrap();
    assert_eq!(
        &client.get_data(&path).await.unwrap().0[..],
        b"kerberos only"
    );
    client.set_data(&path, b"again", None).await.unwrap();

    // The principal named exactly, without canonicalization, from an IP connect string.
    let pinned = GssapiConfig::new()
        .host("localhost")
        .realm(zkwarden::testing::TEST_REALM)
        .principal(&me);
    let second = connect_with(&server.connect_string(), SaslConfig::gssapi(pinned))
        .await
        .expect("Kerberos connect with an explicit server principal");
    assert_eq!(sasl_users(&second).await, [me.clone()]);
    assert_eq!(&second.get_data(&path).await.unwrap().0[..], b"again");

    // Without Kerberos, the node is closed.
    let anonymous = connect(&server.connect_string()).await;
    assert!(sasl_users(&anonymous).await.is_empty());
    assert_eq!(anonymous.get_data(&path).await.unwrap_err(), Error::NoAuth);
    for c in [client, second, anonymous] {
        c.close().await.unwrap();
    }
}
