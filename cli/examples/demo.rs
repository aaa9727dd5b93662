//! What zkwarden is for, in under a minute, on a ZooKeeper server of its own.
//!
//! ```text
//! scripts/demo.sh        # or: cargo run -p zkwarden-cli --example demo
//! ```
//!
//! A service holds a warden (through a fault proxy, so the network can be broken), a lock, a
//! config watch and a tree cache. An operator (a second warden, straight to the server)
//! writes the config and the tree. Then two real faults:
//!
//! 1. the service's session is expired on the server (as after a long partition): the
//!    connection goes `Suspended`, the lock is reported lost at once, the session is `Lost`,
//!    a new one is built (`Reconnected`, generation 2), the lock is taken again with a higher
//!    fencing token, and the cache and config resync, picking up what changed meanwhile;
//! 2. the connection is blackholed by the proxy (sockets open, nothing passes) for less than
//!    the session timeout: `Suspended` after the read timeout, the lock reported lost, then
//!    `Reconnected` to the same session, the lock re-taken, the cache resynced.
//!
//! Meanwhile the config value in force never changes to anything the operator did not write.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use zkwarden::Warden;
use zkwarden::testing::{FaultProxy, ZkServer, expire_session};
use zkwarden::warden::{ConnectionState, ConnectionUpdate, RetryConfig};
use zkwarden_recipes::cache::{CacheEvent, TreeCache};
use zkwarden_recipes::config::{ConfigEvent, ConfigWatch};
use zkwarden_recipes::lock::Mutex;

/// The service's session timeout: short, so the show is quick.
const SESSION_TIMEOUT: Duration = Duration::from_secs(4);
/// Bound on every wait of the show; reaching one means something is wrong.
const PATIENCE: Duration = Duration::from_secs(30);

/// The typed configuration the service follows.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
struct AppConfig {
    color: String,
    limit: u32,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Seconds since the show began, for every line.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn say(&self, who: &str, what: impl std::fmt::Display) {
        println!("[{:>5.2}s] {who:<8} {what}", self.0.elapsed().as_secs_f64());
    }
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let clock = Clock(Instant::now());
    let server = tokio::task::spawn_blocking(ZkServer::start).await??;
    // "Zookeeper version: 3.8.0-<commit>, built on ..." -> "3.8.0"
    let version = server
        .four_letter("srvr")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.strip_prefix("Zookeeper version: ")?;
            line.split(['-', ',']).next().map(str::to_owned)
        })
        .unwrap_or_else(|| "(version unknown)".into());
    clock.say(
        "server",
        format!("ZooKeeper {version} serving on {}", server.addr()),
    );
    let proxy = FaultProxy::start(server.addr()).await?;
    clock.say(
        "proxy",
        format!("fault proxy on {} in front of it", proxy.addr()),
    );

    let operator = Warden::builder(server.connect_string()).start().await?;
    operator
        .create("/demo/config", br#"{"color": "blue", "limit": 10}"#)
        .parents(zkwarden::warden::ParentMode::Persistent)
        .await?;
    for name in ["web-1", "web-2"] {
        operator
            .create(&format!("/demo/services/{name}"), b"up")
            .parents(zkwarden::warden::ParentMode::Persistent)
            .await?;
    }

    let service = Warden::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(PATIENCE)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(100),
        })
        .start()
        .await?;
    clock.say(
        "service",
        format!(
            "warden connected: session {}, generation {}, session timeout {}",
            service.session_id(),
            service.generation(),
            human(SESSION_TIMEOUT)
        ),
    );
    spawn_state_printer(&service, clock);

    let config = ConfigWatch::<AppConfig>::builder(&service, "/demo/config")
        .start()
        .await?;
    clock.say("config", format!("in force: {:?}", config.get()));
    spawn_config_printer(&config, clock);

    let cache = TreeCache::builder(&service, "/demo/services")
        .start()
        .await?;
    cache.initialized().await?;
    clock.say("cache", format!("initialized with {} nodes", cache.len()));
    let resynced = Arc::new(Notify::new());
    spawn_cache_printer(&cache, clock, resynced.clone());

    let lock_taken = Arc::new(Notify::new());
    let (holder, tokens) = spawn_lock_holder(&service, clock, lock_taken.clone());
    timeout(PATIENCE, lock_taken.notified()).await?;

    // ---- Fault 1: the session expires on the server. ---------------------------------
    println!();
    let client = service.client().ok_or("the service has no session")?;
    // Refused reconnections keep the service out until the operator has made changes it
    // cannot see; then the network comes back.
    proxy.refuse_new(true);
    clock.say(
        "chaos",
        format!(
            "expiring session {} on the server (what a long partition does); the proxy \
             refuses new connections for now",
            client.session_id()
        ),
    );
    let waiting = lock_taken.notified();
    let resync = resynced.notified();
    let mut states = service.events();
    expire_session(
        &server.connect_string(),
        client.session_id(),
        &client.session_password(),
    )
    .await?;
    wait_for_state(&mut states, ConnectionState::Suspended).await?;
    operator
        .set_data("/demo/config", br#"{"color": "green", "limit": 10}"#, None)
        .await?;
    operator.create("/demo/services/web-3", b"up").await?;
    clock.say(
        "operator",
        "set color=green and added web-3 while the service was out",
    );
    clock.say(
        "config",
        format!("in force while out (kept): {:?}", config.get()),
    );
    clock.say("chaos", "the proxy accepts connections again");
    proxy.refuse_new(false);
    timeout(PATIENCE, waiting).await?;
    timeout(PATIENCE, resync).await?;
    wait_for_config(&config, "green").await?;

    // ---- Fault 2: the network goes silent for less than the session timeout. -----------
    println!();
    clock.say(
        "chaos",
        format!(
            "blackholing the connection (read timeout {} of the {} session)",
            human(SESSION_TIMEOUT * 2 / 3),
            human(SESSION_TIMEOUT)
        ),
    );
    let waiting = lock_taken.notified();
    let resync = resynced.notified();
    let mut states = service.events();
    proxy.blackhole();
    wait_for_state(&mut states, ConnectionState::Suspended).await?;
    clock.say(
        "config",
        format!("in force while cut off (kept): {:?}", config.get()),
    );
    operator.delete("/demo/services/web-1", None).await?;
    clock.say("operator", "removed web-1 while the service was cut off");
    clock.say("chaos", "network healed");
    proxy.pass_through();
    timeout(PATIENCE, waiting).await?;
    timeout(PATIENCE, resync).await?;

    println!();
    let mut names: Vec<String> = cache
        .children("/demo/services")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort();
    clock.say(
        "summary",
        format!("cache holds {names:?}, as the server does"),
    );
    clock.say("summary", format!("config in force: {:?}", config.get()));
    let tokens = tokens.lock().map(|t| t.clone()).unwrap_or_default();
    clock.say(
        "summary",
        format!("fencing tokens, one per lock term: {tokens:?} (each higher than the last)"),
    );
    // The show is over: stop the holder first so its release is not reported as a loss.
    holder.abort();
    service.close().await?;
    operator.close().await?;
    Ok(())
}

async fn wait_for_state(
    states: &mut zkwarden::warden::ConnectionEvents,
    wanted: ConnectionState,
) -> Result<(), Failure> {
    timeout(PATIENCE, async {
        while let Some(update) = states.next_update().await {
            if matches!(update, ConnectionUpdate::Event(e) if e.state == wanted) {
                return;
            }
        }
    })
    .await?;
    Ok(())
}

async fn wait_for_config(config: &ConfigWatch<AppConfig>, color: &str) -> Result<(), Failure> {
    let mut receiver = config.receiver();
    timeout(PATIENCE, receiver.wait_for(|c| c.color == color)).await??;
    Ok(())
}

fn spawn_state_printer(warden: &Warden, clock: Clock) {
    let mut events = warden.events();
    tokio::spawn(async move {
        while let Some(update) = events.next_update().await {
            match update {
                ConnectionUpdate::Event(e) => clock.say(
                    "state",
                    format!(
                        "{:?}: session {}, generation {}",
                        e.state, e.session_id, e.generation
                    ),
                ),
                ConnectionUpdate::Lagged { missed } => {
                    clock.say("state", format!("({missed} events missed)"))
                }
            }
        }
    });
}

fn spawn_config_printer(config: &ConfigWatch<AppConfig>, clock: Clock) {
    let mut events = config.events();
    let receiver = config.receiver();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let line = match event {
                ConfigEvent::Updated { version } => {
                    format!("updated to {:?} (version {version})", *receiver.borrow())
                }
                ConfigEvent::Resynced { generation } => {
                    format!("re-read on the new session (generation {generation})")
                }
                other => format!("{other:?}"),
            };
            clock.say("config", line);
        }
    });
}

fn spawn_cache_printer(cache: &TreeCache, clock: Clock, resynced: Arc<Notify>) {
    let mut events = cache.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                CacheEvent::Created { path, .. } => clock.say("cache", format!("+ {path}")),
                CacheEvent::Changed { path, .. } => clock.say("cache", format!("~ {path}")),
                CacheEvent::Deleted { path, .. } => clock.say("cache", format!("- {path}")),
                CacheEvent::Resynced { generation } => {
                    clock.say(
                        "cache",
                        format!("resynced with the server (generation {generation})"),
                    );
                    resynced.notify_one();
                }
                other => clock.say("cache", format!("{other:?}")),
            }
        }
    });
}

/// Holds the lock, term after term: takes it, reports the token, waits until it may be
/// lost, reports why, and takes it again. Returns the task and the tokens seen.
fn spawn_lock_holder(
    warden: &Warden,
    clock: Clock,
    taken: Arc<Notify>,
) -> (JoinHandle<()>, Arc<std::sync::Mutex<Vec<i64>>>) {
    let tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = tokens.clone();
    let mutex = Mutex::new(warden, "/demo/lock");
    let holder = tokio::spawn(async move {
        loop {
            let guard = match mutex.lock().await {
                Ok(guard) => guard,
                Err(e) => {
                    clock.say("lock", format!("cannot lock: {e}"));
                    return;
                }
            };
            clock.say(
                "lock",
                format!(
                    "held: fencing token {} (session {})",
                    guard.fencing_token(),
                    guard.session_id()
                ),
            );
            if let Ok(mut seen) = seen.lock() {
                seen.push(guard.fencing_token());
            }
            taken.notify_one();
            let since = Instant::now();
            let reason = guard.lost().await;
            clock.say(
                "lock",
                format!(
                    "reported LOST ({reason:?}) after a term of {}: stop writing with token {}",
                    human(since.elapsed()),
                    guard.fencing_token()
                ),
            );
            drop(guard);
        }
    });
    (holder, tokens)
}
