//! Helpers shared by the cache tests: reading the server's truth and waiting on caches.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use zkwarden::warden::ConnectionState;
use zkwarden::{Error, Warden};
use zkwarden_recipes::cache::{CacheEvent, CacheEvents, Snapshot};

use crate::common::PATIENCE;

/// What the comparison looks at for one node: creation and modification zxids and data.
pub type Truth = BTreeMap<String, (i64, i64, Bytes)>;

/// A fresh listing of the subtree at `root` on the server (empty if the root is missing).
pub async fn server_tree(warden: &Warden, root: &str) -> Truth {
    let mut out = Truth::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        match warden.get_data(&path).await {
            Ok((data, stat)) => {
                out.insert(path.clone(), (stat.czxid, stat.mzxid, data));
            }
            Err(Error::NoNode) => continue,
            Err(e) => panic!("reading {path}: {e}"),
        }
        match warden.get_children(&path).await {
            Ok(children) => todo.extend(children.iter().map(|c| join(&path, c))),
            Err(Error::NoNode) => {
                out.remove(&path);
            }
            Err(e) => panic!("listing {path}: {e}"),
        }
    }
    out
}

/// The same view of a cache snapshot.
pub fn truth_of(snapshot: &Snapshot) -> Truth {
    snapshot
        .iter()
        .map(|(path, node)| {
            (
                path.clone(),
                (node.stat.czxid, node.stat.mzxid, node.data.clone()),
            )
        })
        .collect()
}

/// `parent/child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// A small deterministic generator, so a failing run can be told apart by its seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next number (xorshift).
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Polls `check` until it holds, failing the test after [`PATIENCE`].
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event that `pick` accepts, with every event read on the way (it included).
pub async fn events_until(
    events: &mut CacheEvents,
    what: &str,
    mut pick: impl FnMut(&CacheEvent) -> bool,
) -> Vec<CacheEvent> {
    let mut seen = Vec::new();
    let result = tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            let done = pick(&event);
            seen.push(event);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    match result {
        Ok(true) => seen,
        Ok(false) => panic!("event stream ended waiting for {what}; saw {seen:?}"),
        Err(_) => panic!("timed out waiting for {what}; saw {seen:?}"),
    }
}

/// Waits for the warden to report `state`.
pub async fn wait_for_state(
    events: &mut zkwarden::warden::ConnectionEvents,
    state: ConnectionState,
) {
    tokio::time::timeout(PATIENCE, async {
        while let Some(event) = events.next().await {
            if event.state == state {
                return;
            }
        }
        panic!("warden events ended waiting for {state:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {state:?}"))
}
