//! Stress for `expire_session`: many expiries of busy sessions, each of which must end.

mod common;

use std::time::Duration;

use common::*;
use tokio::task::JoinHandle;
use zkwarden::testing::{FaultProxy, expire_client, expire_session, expire_warden};
use zkwarden::warden::{ConnectionEvents, ConnectionState};
use zkwarden::{CreateMode, SessionState, Warden};

/// Expiries per run (override with `ZKWARDEN_EXPIRE_STRESS`).
fn rounds() -> usize {
    std::env::var("ZKWARDEN_EXPIRE_STRESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expiry_of_a_busy_session_ends_it() {
    let server = start_server().await;
    let connect_string = server.connect_string();
    let path = unique_path("stress");
    let setup = connect(&connect_string).await;
    setup
        .create(&path, b"x", CreateMode::Persistent)
        .await
        .unwrap();
    let mut failures = Vec::new();
    let n = rounds();
    for round in 0..n {
        let client = connect(&connect_string).await;
        let mut states = client.state();
        // Keep the session busy so it reconnects at once when its connection is cut.
        let busy = {
            let client = client.clone();
            let path = path.clone();
            // Every other round the session idles (pings only), so only the connection can
            // tell it the session is gone.
            let idle = round % 2 == 1;
            tokio::spawn(async move {
                loop {
                    if !idle {
                        let _ = client.get_data_and_watch(&path).await;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let id = client.session_id();
        if round % 3 == 2 {
            // The one-call form, through the server the client is connected to.
            let expired = expire_client(&client).await.expect("expire the session");
            assert_eq!(expired, id, "expire_client named another session");
        } else {
            expire_session(&connect_string, id, &client.session_password())
                .await
                .expect("expire the session");
        }
        let ended = tokio::time::timeout(PATIENCE, async {
            loop {
                if states.borrow_and_update().state == SessionState::Expired {
                    return;
                }
                if states.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        busy.abort();
        if ended.is_err() {
            eprintln!(
                "round {round}: session {id:?} still {:?}",
                client.session_state()
            );
            failures.push(round);
        }
        drop(client);
    }
    assert!(
        failures.is_empty(),
        "{} of {n} expiries did not end the session: {failures:?}",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expiry_of_a_busy_warden_moves_it_to_a_new_session() {
    let server = start_server().await;
    let connect_string = server.connect_string();
    let (warden, busy) = busy_warden(&connect_string, "stress-warden").await;
    let mut failures = Vec::new();
    let n = rounds();
    for round in 0..n {
        let mut events = warden.events();
        if !expiry_moves(&warden, &connect_string, &mut events, round).await {
            failures.push(round);
        }
    }
    busy.abort();
    assert!(
        failures.is_empty(),
        "{} of {n} expiries did not move the warden: {failures:?}",
        failures.len()
    );
}

/// As the cache convergence test does: the warden goes through a proxy that cuts, stalls and
/// drops, and between those faults its session is expired directly on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiries_between_proxy_faults_move_the_warden() {
    let server = start_server().await;
    let connect_string = server.connect_string();
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let (warden, busy) = busy_warden(&proxy.connect_string(), "stress-proxy").await;
    let mut failures = Vec::new();
    let n = rounds() / 8;
    for round in 0..n {
        let mut events = warden.events();
        match round % 3 {
            0 => proxy.reset_all(),
            1 => proxy.drop_replies(),
            _ => proxy.blackhole(),
        }
        warden_state(&mut events, ConnectionState::Suspended).await;
        proxy.pass_through();
        warden_state(&mut events, ConnectionState::Reconnected).await;
        if !expiry_moves(&warden, &connect_string, &mut events, round).await {
            failures.push(round);
        }
    }
    busy.abort();
    assert!(
        failures.is_empty(),
        "{} of {n} expiries did not move the warden: {failures:?}",
        failures.len()
    );
}

/// On a server-side expiry the warden reports `Suspended → Lost → Reconnected` (a new
/// generation), and nothing else: never the expired session `Reconnected` in between.
///
/// `expire_session` attaches the session on a second connection, which makes the server drop
/// the warden's, and closes it there. A client that re-attached at once could take the
/// session back before that close (and be answered: `Reconnected` of the old generation, then
/// `Suspended` and `Lost` when the close lands), or land on a connection ZooKeeper 3.8 neither
/// answers nor closes. The client's pause before re-attaching after a lost connection lets the
/// close land first. The sequence of every round is printed with `--nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_expiry_reads_suspended_lost_reconnected() {
    let server = start_server().await;
    let connect_string = server.connect_string();
    let (warden, busy) = busy_warden(&connect_string, "stress-sequence").await;
    let n = rounds();
    let mut odd = Vec::new();
    for round in 0..n {
        let mut events = warden.events();
        let generation = warden.generation();
        if round % 2 == 0 {
            let client = warden.client().expect("a client");
            expire_session(
                &connect_string,
                client.session_id(),
                &client.session_password(),
            )
            .await
            .expect("expire the session");
        } else {
            expire_warden(&warden).await.expect("expire the session");
        }
        let mut seen = Vec::new();
        within("the new session", async {
            while let Some(event) = events.next().await {
                seen.push((event.state, event.generation));
                if event.state == ConnectionState::Reconnected && event.generation > generation {
                    return;
                }
            }
            panic!("event stream ended");
        })
        .await;
        let expected = [
            (ConnectionState::Suspended, generation),
            (ConnectionState::Lost, generation),
            (ConnectionState::Reconnected, generation + 1),
        ];
        if seen != expected {
            eprintln!("round {round}: {seen:?}");
            odd.push(round);
        }
    }
    busy.abort();
    eprintln!(
        "{} of {n} expiries read otherwise than Suspended, Lost, Reconnected",
        odd.len()
    );
    assert!(
        odd.is_empty(),
        "{} of {n} expiries did not read Suspended, Lost, Reconnected: {odd:?}",
        odd.len()
    );
}

/// A warden on `connect` with a tree watch on a fresh node, and a task that keeps reading
/// that node so every expiry lands on a busy session.
async fn busy_warden(connect: &str, prefix: &str) -> (Warden, JoinHandle<()>) {
    let path = unique_path(prefix);
    let warden = Warden::builder(connect)
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .start()
        .await
        .expect("start the warden");
    warden.create(&path, b"x").await.unwrap();
    let tree = warden.watch_tree(&path);
    let busy = {
        let warden = warden.clone();
        tokio::spawn(async move {
            let _tree = tree;
            loop {
                let _ = warden.get_data(&path).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    (warden, busy)
}

/// Expires the warden's session on the server at `connect` and reports whether `events`
/// then showed `Reconnected` on a newer generation within [`PATIENCE`] (and says why not on
/// stderr).
async fn expiry_moves(
    warden: &Warden,
    connect: &str,
    events: &mut ConnectionEvents,
    round: usize,
) -> bool {
    let generation = warden.generation();
    let id = if round % 2 == 0 {
        let client = warden.client().expect("a client");
        let id = client.session_id();
        expire_session(connect, id, &client.session_password())
            .await
            .expect("expire the session");
        id
    } else {
        // The one-call form (the server the warden is on, the warden's own settings).
        expire_warden(warden).await.expect("expire the session")
    };
    let moved = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            if event.state == ConnectionState::Reconnected && event.generation > generation {
                return;
            }
        }
    })
    .await;
    if moved.is_ok() && warden.generation() != generation {
        return true;
    }
    eprintln!(
        "round {round}: warden still on {id:?} ({:?}), client {:?}",
        warden.connection(),
        warden.client().map(|c| c.session_state())
    );
    false
}

/// Waits for `state` on the warden's event stream.
async fn warden_state(events: &mut ConnectionEvents, state: ConnectionState) {
    within("warden state", async {
        while let Some(event) = events.next().await {
            if event.state == state {
                return;
            }
        }
        panic!("event stream ended");
    })
    .await;
}
