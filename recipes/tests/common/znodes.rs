//! Looking at znodes and connection states from lock and leader tests.

use std::collections::{BTreeMap, BTreeSet};

use zkwarden::testing::ZkServer;
use zkwarden::warden::ConnectionUpdate;
use zkwarden::{ConnectionState, Error, SessionId, Warden};

use super::within;

/// The children of `path` (none if it is gone).
pub async fn children_of(w: &Warden, path: &str) -> Vec<String> {
    match w.get_children(path).await {
        Ok(children) => children,
        Err(Error::NoNode) => Vec::new(),
        Err(e) => panic!("list {path}: {e}"),
    }
}

/// Waits, by child watches, until the children of `path` satisfy `done`; returns them. A
/// missing `path` is waited for (it counts as no children).
pub async fn await_children_where(
    w: &Warden,
    path: &str,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    within(what, async {
        loop {
            let (children, watcher) = match w.get_children_and_watch(path).await {
                Ok(found) => found,
                Err(Error::NoNode) => {
                    if done(&[]) {
                        return Vec::new();
                    }
                    let (stat, watcher) = w.exists_and_watch(path).await.expect("exists");
                    // Created between the two reads: its creation event is already past, so
                    // list again at once instead of waiting for an event that will not come.
                    if stat.is_none() {
                        let _ = watcher.await;
                    }
                    continue;
                }
                Err(e) => panic!("list {path}: {e}"),
            };
            if done(&children) {
                return children;
            }
            let _ = watcher.await;
        }
    })
    .await
}

/// Waits, by child watches, until `path` has exactly `n` children; returns them.
pub async fn await_children(w: &Warden, path: &str, n: usize) -> Vec<String> {
    await_children_where(w, path, &format!("{n} children under {path}"), |c| {
        c.len() == n
    })
    .await
}

/// Waits for a connection event with `state` on `w` (from now on, or already current).
pub async fn await_state(w: &Warden, state: ConnectionState) {
    let mut events = w.events();
    if w.connection().state == state {
        return;
    }
    within(&format!("state {state:?}"), async {
        while let Some(event) = events.next().await {
            if event.state == state {
                return;
            }
        }
        panic!("warden went away");
    })
    .await;
}

/// Expires `w`'s current session on the server at `connect` (returns once the server has
/// confirmed the expiry).
pub async fn expire(connect: &str, w: &Warden) {
    let client = w.client().expect("a connected client");
    zkwarden::testing::expire_session(connect, client.session_id(), &client.session_password())
        .await
        .expect("expire the session");
}

/// Waits until `w` runs a session other than generation `old` and is connected.
pub async fn await_new_session(w: &Warden, old: u64) {
    within("a new session", async {
        let mut events = w.events();
        while w.generation() == old || w.connection().state == ConnectionState::Lost {
            events.next().await;
        }
    })
    .await;
}

/// Expires `w`'s current session and waits for the warden's `Reconnected` on a newer
/// generation; returns the new session's id. Lag in the event stream is no obstacle: the
/// warden's own generation then decides.
pub async fn expire_and_await_new_session(connect: &str, w: &Warden) -> SessionId {
    let generation = w.generation();
    let old = w.session_id();
    let mut events = w.events();
    expire(connect, w).await;
    within("a new session after a confirmed expiry", async {
        loop {
            match events.next_update().await {
                Some(ConnectionUpdate::Event(event))
                    if event.state == ConnectionState::Reconnected
                        && event.generation > generation =>
                {
                    break;
                }
                Some(ConnectionUpdate::Lagged { .. }) if w.generation() > generation => break,
                Some(_) => {}
                None => panic!("warden events ended waiting for a new session"),
            }
        }
    })
    .await;
    let new = w.session_id();
    assert_ne!(new, old, "the warden kept the expired session");
    new
}

/// Per session (hex id as the server prints it), the paths it watches (`wchc`).
pub fn watches_by_session(server: &ZkServer) -> BTreeMap<String, BTreeSet<String>> {
    let text = server.four_letter("wchc").expect("wchc");
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut session = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some(session) = &session {
                map.entry(String::clone(session))
                    .or_default()
                    .insert(line.trim().to_owned());
            }
        } else {
            session = Some(line.trim().to_owned());
        }
    }
    map
}

/// The last segment of `path`.
pub fn name_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or("").to_owned()
}

/// Waits, by exists watches, until `path` is gone.
pub async fn await_gone(w: &Warden, path: &str) {
    within(&format!("{path} to go"), async {
        loop {
            let (stat, watcher) = w.exists_and_watch(path).await.unwrap();
            if stat.is_none() {
                return;
            }
            let _ = watcher.await;
        }
    })
    .await;
}
