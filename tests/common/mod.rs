//! Helpers shared by the integration tests: real servers, clients with short timeouts, and
//! waiting for events instead of sleeping.
#![allow(dead_code)] // each test binary uses a different subset

pub mod capture;
pub mod pre36;
pub mod scripted;
pub mod watching;

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use zkwarden::testing::{FaultProxy, ZkServer};
use zkwarden::warden::{ConnectionEvent, ConnectionEvents, ConnectionState};
use zkwarden::{Client, SessionState, SessionStatus, Warden};

/// Generous bound for anything a test waits for; reaching it means the test failed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Session timeout the tests ask for. Long enough that a loaded 2-core machine (JVMs
/// starting, compilers running) does not trip the 4 s read timeout it implies.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
    });
}

/// Starts a standalone server (TTL nodes enabled; sessions of 400 ms to 30 s) without
/// blocking the runtime.
pub async fn start_server() -> ZkServer {
    init_tracing();
    tokio::task::spawn_blocking(|| {
        ZkServer::builder()
            .extra_config("extendedTypesEnabled", "true")
            .max_session_timeout(Duration::from_secs(30))
            .start()
    })
    .await
    .expect("server start task")
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)")
}

/// A session timeout long enough to ride out a server restart on a loaded 2-core machine
/// (a JVM start can take several seconds there); use with [`start_server_for_restarts`].
pub const RESTART_SESSION_TIMEOUT: Duration = Duration::from_secs(20);

/// Starts a server that grants sessions up to 30 s, for tests that stop and restart it while
/// a session must survive.
pub async fn start_server_for_restarts() -> ZkServer {
    init_tracing();
    tokio::task::spawn_blocking(|| {
        ZkServer::builder()
            .extra_config("extendedTypesEnabled", "true")
            .max_session_timeout(Duration::from_secs(30))
            .start()
    })
    .await
    .expect("server start task")
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)")
}

/// Connects with [`RESTART_SESSION_TIMEOUT`].
pub async fn connect_for_restarts(connect_string: &str) -> Client {
    Client::builder(connect_string)
        .session_timeout(RESTART_SESSION_TIMEOUT)
        .connect()
        .await
        .expect("connect to the test server")
}

/// Connects with the tests' session timeout.
pub async fn connect(connect_string: &str) -> Client {
    Client::builder(connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connect()
        .await
        .expect("connect to the test server")
}

/// A path no other test uses.
pub fn unique_path(prefix: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("/{prefix}-{nanos:x}-{n}")
}

/// The SASL identities the server knows the session by.
pub async fn sasl_users(client: &Client) -> Vec<String> {
    client
        .who_am_i()
        .await
        .expect("whoAmI")
        .into_iter()
        .filter(|info| info.auth_scheme == "sasl")
        .map(|info| info.user)
        .collect()
}

/// Waits (up to [`PATIENCE`]) until the state satisfies `pred`, and returns it.
pub async fn wait_for_state(
    states: &mut watch::Receiver<SessionStatus>,
    what: &str,
    pred: impl Fn(SessionState) -> bool,
) -> SessionStatus {
    let result = tokio::time::timeout(PATIENCE, async {
        loop {
            let status = *states.borrow_and_update();
            if pred(status.state) {
                return status;
            }
            if states.changed().await.is_err() {
                let status = *states.borrow();
                assert!(
                    pred(status.state),
                    "state channel closed in {status:?} while waiting for {what}"
                );
                return status;
            }
        }
    })
    .await;
    match result {
        Ok(status) => status,
        Err(_) => panic!(
            "timed out waiting for {what}; state is {:?}",
            *states.borrow()
        ),
    }
}

/// Runs a blocking closure (server control) off the runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Awaits `fut` with [`PATIENCE`], failing the test on timeout.
pub async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out: {what}"),
    }
}

/// Reads `events` until the warden reports `Reconnected` on a generation after `generation`;
/// returns every event read on the way, that one included.
pub async fn await_rebuilt_session(
    events: &mut ConnectionEvents,
    generation: u64,
) -> Vec<ConnectionEvent> {
    within("the warden's new session", async {
        let mut seen = Vec::new();
        loop {
            let event = events.next().await.expect("warden events open");
            let rebuilt =
                event.state == ConnectionState::Reconnected && event.generation > generation;
            seen.push(event);
            if rebuilt {
                return seen;
            }
        }
    })
    .await
}

/// Expires `warden`'s current session on the server (confirmed by the server), then waits on
/// `events`, subscribed beforehand, for the rebuilt session; returns the events read on the
/// way.
pub async fn expire_and_await_rebuild(
    warden: &Warden,
    events: &mut ConnectionEvents,
) -> Vec<ConnectionEvent> {
    let generation = warden.generation();
    zkwarden::testing::expire_warden(warden)
        .await
        .expect("expire the session");
    await_rebuilt_session(events, generation).await
}

/// Bytes a create reply for `path` takes on the wire at the least: length prefix, reply
/// header and the returned path; always more than a ping reply (20 bytes).
pub fn create_reply_len(path: &str) -> u64 {
    (4 + 16 + 4 + path.len()) as u64
}

/// Bytes a `set_data` reply takes on the wire: length prefix, reply header and a stat.
pub const SET_DATA_REPLY_LEN: u64 = 4 + 16 + 68;

/// Waits until `proxy`, in drop-replies mode, has discarded at least `reply_len` bytes since
/// its counter stood at `before`. A write can be seen on the server before its reply reaches
/// the proxy; leaving drop-replies before the reply was discarded would let it through.
pub async fn await_dropped_reply(proxy: &FaultProxy, before: u64, reply_len: u64) {
    within("the reply to be discarded", async {
        while proxy.stats().bytes_dropped.saturating_sub(before) < reply_len {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Resets every connection through `proxy` and waits until `client` is connected again on a
/// new one (with its session, or a new one).
pub async fn reset_and_await_reconnect(proxy: &FaultProxy, client: &Client) {
    let mut states = client.state();
    let before = states.borrow().connections;
    proxy.reset_all();
    within(
        "reconnect after the proxy reset",
        states.wait_for(|s| s.connections > before && s.state == SessionState::Connected),
    )
    .await
    .expect("the session task is gone");
}
