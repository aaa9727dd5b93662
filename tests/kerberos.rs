//! Kerberos (SASL GSSAPI) against a real MIT KDC and a real ZooKeeper server whose JAAS file
//! logs it in with a service keytab: a `sasl` ACL only the Kerberos identity passes,
//! `who_am_i`, a session that survives a server restart and a rebuilt session that
//! authenticates again, bad credentials (none, a wrong server principal, an expired ticket)
//! ending as `AuthFailed` with the reason, after one attempt, and an unreachable KDC retried
//! as an outage.
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
use zkwarden::testing::{FaultProxy, Kdc, ZkServer};
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
        // Nothing of the caller's own Kerberos setup leaks in.
        .env_remove("KRB5_CLIENT_KTNAME")
        .env_remove("KRB5_KTNAME")
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
    captured_log();
    let (kdc, server) = start_kdc_and_server(&dir).await;
    kinit(&kdc, &dir, Duration::from_secs(600));
    let me = kdc.client_principal();

    let client = connect_with(&localhost(&server), kerberos())
        .await
        .expect("Kerberos connect");
    assert_eq!(sasl_users(&client).await, vec![me.clone()]);
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
    assert_eq!(sasl_users(&second).await, vec![me.clone()]);
    assert_eq!(&second.get_data(&path).await.unwrap().0[..], b"again");

    // Without Kerberos, the node is closed.
    let anonymous = connect(&server.connect_string()).await;
    assert!(sasl_users(&anonymous).await.is_empty());
    assert_eq!(anonymous.get_data(&path).await.unwrap_err(), Error::NoAuth);
    for c in [client, second, anonymous] {
        c.close().await.unwrap();
    }
    assert_no_key_material(&kdc.client_keytab());
}

/// No 16-byte run of the keytab (which holds the client's keys) shows in the log, raw or
/// hex-encoded; nor does the log show any configuration with a key in it.
fn assert_no_key_material(keytab: &Path) {
    let keys = std::fs::read(keytab).expect("read the client keytab");
    let log = log_text();
    assert!(
        log.contains("SASL authenticated"),
        "the log saw the exchange"
    );
    let raw = captured_log()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for window in keys.windows(16) {
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !log.to_lowercase().contains(&hex),
            "keytab bytes in the log (hex)"
        );
        assert!(
            !raw.windows(16).any(|w| w == window),
            "keytab bytes in the log (raw)"
        );
    }
}

/// A warden that authenticates from the client keytab (`KRB5_CLIENT_KTNAME`, nothing in the
/// credential cache at first): its session survives a server restart, and the session it
/// builds after an expiry authenticates again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keytab_warden_survives_a_restart_and_reauthenticates_a_rebuilt_session() {
    let Some(dir) = kerberos_child(
        "a_keytab_warden_survives_a_restart_and_reauthenticates_a_rebuilt_session",
        Credentials::ClientKeytab,
    ) else {
        return;
    };
    init_tracing();
    let (kdc, mut server) = start_kdc_and_server(&dir).await;
    let me = kdc.client_principal();
    let warden = Warden::builder(localhost(&server))
        .session_timeout(RESTART_SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .sasl(kerberos())
        .start()
        .await
        .expect("Kerberos warden");
    let path = unique_path("krb-warden");
    warden
        .create(&path, b"w")
        .acl(vec![Acl::sasl(Perms::ALL, &me)])
        .await
        .unwrap();
    let first = warden.client().expect("a connected session");
    assert_eq!(sasl_users(&first).await, vec![me.clone()]);

    // A restart: the same session comes back, authenticated again on its new connection.
    let mut states = first.state();
    let connections = states.borrow().connections;
    tokio::task::block_in_place(|| server.restart()).expect("restart");
    let status = within(
        "the session back on the restarted server",
        states.wait_for(|s| s.connections > connections && s.state == SessionState::Connected),
    )
    .await
    .map(|s| *s)
    .expect("session open");
    assert_eq!(status.session_id, first.session_id());
    assert_eq!(warden.client().unwrap().session_id(), first.session_id());
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"w");

    // An expired session: the warden's new one authenticates before it serves.
    let mut events = warden.events();
    expire_and_await_rebuild(&warden, &mut events).await;
    let second = warden.client().expect("the rebuilt session");
    assert_ne!(second.session_id(), first.session_id());
    assert_eq!(sasl_users(&second).await, vec![me.clone()]);
    assert_eq!(&warden.get_data(&path).await.unwrap().0[..], b"w");

    // A server principal the KDC does not know: the next session is refused, and the warden
    // stops (AuthFailed) instead of retrying, until it is handed working settings.
    let wrong = SaslConfig::gssapi(GssapiConfig::new().service("not-zookeeper"));
    warden.set_sasl(Some(wrong)).unwrap();
    zkwarden::testing::expire_warden(&warden)
        .await
        .expect("expire the session");
    within("the warden to stop on AuthFailed", async {
        while events.next().await.expect("warden events open").state != ConnectionState::AuthFailed
        {
        }
    })
    .await;
    assert_eq!(warden.exists("/").await, Err(Error::AuthFailed));
    let generation = warden.generation();
    warden.set_sasl(Some(kerberos())).unwrap();
    await_rebuilt_session(&mut events, generation).await;
    let third = warden.client().expect("the session after new settings");
    assert_eq!(sasl_users(&third).await, vec![me]);
    warden.close().await.unwrap();
}

/// The number of refusals logged so far, and whether one names `reason`.
fn refusals_naming(reason: &str) -> (usize, bool) {
    let log = log_text();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("SASL authentication failed"))
        .collect();
    let named = refusals.iter().any(|line| line.contains(reason));
    (refusals.len(), named)
}

/// Connects through a proxy (so connections can be counted) with `sasl`; expects one
/// connection refused as `AuthFailed`, the log naming `reason`.
async fn expect_refused(server: &ZkServer, sasl: SaslConfig, reason: &str) {
    let (before, _) = refusals_naming(reason);
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let err = connect_with(&proxy.connect_string(), sasl.clone())
        .await
        .unwrap_err();
    assert_eq!(err, Error::AuthFailed, "{sasl:?}");
    assert_eq!(proxy.stats().accepted, 1, "one connection, no retry loop");
    let (after, named) = refusals_naming(reason);
    assert_eq!(after, before + 1, "one refusal logged");
    assert!(named, "the refusal names {reason:?}:\n{}", log_text());

    // A lazily started client ends in the terminal state after that one attempt.
    let accepted = proxy.stats().accepted;
    let client = Client::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .sasl(sasl)
        .connect_lazy()
        .unwrap();
    let status = wait_for_state(&mut client.state(), "AuthFailed", |s| s.is_terminal()).await;
    assert_eq!(status.state, SessionState::AuthFailed);
    assert_eq!(client.exists("/").await.unwrap_err(), Error::AuthFailed);
    assert_eq!(proxy.stats().accepted, accepted + 1);
}

/// Through a proxy the connect string names `127.0.0.1`: name the server's host.
fn via_proxy(config: GssapiConfig) -> SaslConfig {
    SaslConfig::gssapi(config.host("localhost"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_or_expired_tickets_end_as_auth_failed_with_the_reason() {
    let Some(dir) = kerberos_child(
        "missing_wrong_or_expired_tickets_end_as_auth_failed_with_the_reason",
        Credentials::Ccache,
    ) else {
        return;
    };
    captured_log();
    let (kdc, server) = start_kdc_and_server(&dir).await;

    // No ticket at all.
    expect_refused(
        &server,
        via_proxy(GssapiConfig::new()),
        "No Kerberos credentials available",
    )
    .await;

    // A ticket, but a server principal the KDC does not know.
    kinit(&kdc, &dir, Duration::from_secs(600));
    expect_refused(
        &server,
        via_proxy(GssapiConfig::new().service("not-zookeeper")),
        "not found in Kerberos database",
    )
    .await;
    let good = connect_with(&localhost(&server), kerberos()).await.unwrap();
    good.close().await.unwrap();

    // A ticket that has expired (waiting for `klist -s` to say so, not for a clock).
    kinit(&kdc, &dir, Duration::from_secs(2));
    within("the ticket to expire", async {
        while ticket_valid(&dir) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    expect_refused(&server, via_proxy(GssapiConfig::new()), "expired").await;

    // A KDC that cannot be reached is an outage, not a refusal: the client keeps trying
    // until its connect timeout and names the cause.
    kinit(&kdc, &dir, Duration::from_secs(600));
    drop(kdc);
    let unreached = SaslConfig::gssapi(GssapiConfig::new().service("needs-a-new-ticket"));
    let err = Client::builder(localhost(&server))
        .connect_timeout(Duration::from_secs(2))
        .sasl(unreached)
        .connect()
        .await
        .unwrap_err();
    match &err {
        Error::ConnectFailed { last_error, .. } => {
            assert!(last_error.contains("Cannot contact any KDC"), "{err}");
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

/// `klist -s`: whether the credential cache holds a ticket that has not expired.
fn ticket_valid(dir: &Path) -> bool {
    Command::new("klist")
        .arg("-s")
        .arg("-c")
        .arg(ccache_name(dir))
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
