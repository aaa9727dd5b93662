//! Helpers shared by the recipes' integration tests: real servers and wardens.
#![allow(dead_code)] // each test binary uses a different subset

pub mod chaos;

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zkwarden::Warden;
use zkwarden::testing::{ZkServer, ZkServerBuilder};
use zkwarden::warden::RetryConfig;

/// Generous bound for anything a test waits for; reaching it means the test failed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Session timeout the tests ask for.
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

/// Starts a standalone server (sessions up to 30 s) without blocking the runtime.
pub async fn start_server() -> ZkServer {
    start_server_with(|builder| builder).await
}

/// As [`start_server`], also allowing TTL nodes, and looking for expired TTL nodes and empty
/// containers every 100 ms (instead of every minute) so tests see them go quickly.
pub async fn start_ttl_server() -> ZkServer {
    start_server_with(|builder| {
        builder
            .jvm_arg("-Dzookeeper.extendedTypesEnabled=true")
            .jvm_arg("-Dznode.container.checkIntervalMs=100")
    })
    .await
}

/// As [`start_server`], with more settings made by `configure`.
pub async fn start_server_with(
    configure: impl FnOnce(ZkServerBuilder) -> ZkServerBuilder + Send + 'static,
) -> ZkServer {
    init_tracing();
    tokio::task::spawn_blocking(|| {
        configure(ZkServer::builder().max_session_timeout(Duration::from_secs(30))).start()
    })
    .await
    .expect("server start task")
    .expect("start ZooKeeper (run scripts/install-zookeeper.sh)")
}

/// A warden on `connect` that retries forever (bounded by each call's own patience).
pub async fn warden(connect: &str) -> Warden {
    Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(50),
        })
        .start()
        .await
        .expect("warden start")
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

pub mod java_peer;
pub mod znodes;
