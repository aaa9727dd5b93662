//! Looking at znodes and connection states from lock and leader tests.

use zkwarden::testing::ZkServer;
use zkwarden::{ConnectionState, Error, Warden};

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
                    let (_, watcher) = w.exists_and_watch(path).await.expect("exists");
                    let _ = watcher.await;
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
        while let Some(event) = events.next_event().await {
            if event.state == state {
                return;
            }
        }
        panic!("warden went away");
    })
    .await;
}

/// Expires `w`'s current session on `server`.
pub async fn expire(server: &ZkServer, w: &Warden) {
    let client = w.client().expect("client");
    zkwarden::testing::expire_session(
        &server.connect_string(),
        w.session_id(),
        &client.session_password(),
    )
    .await
    .expect("expire");
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

/// The last segment of `path`.
pub fn name_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or("").to_owned()
}
