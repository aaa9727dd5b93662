//! Stress for `expire_session`: many expiries of busy sessions, each of which must end.

mod common;

use std::time::Duration;

use common::*;
use zkwarden::testing::expire_session;
use zkwarden::{CreateMode, SessionState};

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
        expire_session(&connect_string, id, &client.session_password())
            .await
            .expect("expire the session");
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
    use zkwarden::Warden;
    let server = start_server().await;
    let connect_string = server.connect_string();
    let path = unique_path("stress-warden");
    let warden = Warden::builder(&connect_string)
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .start()
        .await
        .expect("start the warden");
    warden.create(&path, b"x").await.unwrap();
    let _tree = warden.watch_tree(&path);
    let busy = {
        let warden = warden.clone();
        let path = path.clone();
        tokio::spawn(async move {
            loop {
                let _ = warden.get_data(&path).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut failures = Vec::new();
    let n = rounds();
    for round in 0..n {
        let mut events = warden.events();
        let generation = warden.generation();
        let client = warden.client().expect("a client");
        let id = client.session_id();
        expire_session(&connect_string, id, &client.session_password())
            .await
            .expect("expire the session");
        let moved = tokio::time::timeout(PATIENCE, async {
            use zkwarden::warden::ConnectionState;
            while let Some(event) = events.next_event().await {
                if event.state == ConnectionState::Reconnected && event.generation > generation {
                    return;
                }
            }
        })
        .await;
        if moved.is_err() || warden.generation() == generation {
            eprintln!(
                "round {round}: warden still on {id:?} ({:?}), client {:?}",
                warden.connection(),
                client.session_state()
            );
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

/// Waits for `state` on the warden's event stream.
async fn warden_state(
    events: &mut zkwarden::warden::ConnectionEvents,
    state: zkwarden::warden::ConnectionState,
) {
    within("warden state", async {
        while let Some(event) = events.next_event().await {
            if event.state == state {
                return;
            }
        }
        panic!("event stream ended");
    })
    .await;
}

/// As the cache convergence test does: the warden goes through a proxy that cuts, stalls and
/// drops, and between those faults its session is expired directly on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiries_between_proxy_faults_move_the_warden() {
    use zkwarden::Warden;
    use zkwarden::testing::FaultProxy;
    use zkwarden::warden::ConnectionState;
    let server = start_server().await;
    let connect_string = server.connect_string();
    let proxy = FaultProxy::start(server.addr()).await.expect("proxy");
    let path = unique_path("stress-proxy");
    let warden = Warden::builder(proxy.connect_string())
        .session_timeout(SESSION_TIMEOUT)
        .connection_timeout(Duration::from_secs(20))
        .start()
        .await
        .expect("start the warden");
    warden.create(&path, b"x").await.unwrap();
    let _tree = warden.watch_tree(&path);
    let busy = {
        let warden = warden.clone();
        let path = path.clone();
        tokio::spawn(async move {
            loop {
                let _ = warden.get_data(&path).await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
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

        let generation = warden.generation();
        let client = warden.client().expect("a client");
        let id = client.session_id();
        expire_session(&connect_string, id, &client.session_password())
            .await
            .expect("expire the session");
        let moved = tokio::time::timeout(PATIENCE, async {
            while let Some(event) = events.next_event().await {
                if event.state == ConnectionState::Reconnected && event.generation > generation {
                    return;
                }
            }
        })
        .await;
        if moved.is_err() || warden.generation() == generation {
            eprintln!(
                "round {round}: warden still on {id:?} ({:?}), client {:?}",
                warden.connection(),
                client.session_state()
            );
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
