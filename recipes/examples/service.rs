//! The shortest correct service: a warden from a config file, a leader that adds one to a
//! counter node with fenced writes, and its pause between writes followed from a config node
//! (`/pause_ms`, JSON; the service starts once it holds a number).
//!
//! ```text
//! echo 'connect = "127.0.0.1:2181"' > service.toml
//! cargo run -p zkwarden-cli -- --connect 127.0.0.1:2181 create /pause_ms 100
//! cargo run -p zkwarden-recipes --example service
//! ```
//!
//! Run several copies: one leads at a time. A former leader's write (its session expired,
//! or it was suspended long enough for another to take over) is refused by the server with
//! `FencedOut`, so the counter only ever holds writes made by the leader of the moment.
//! After a lost reply the leader reads the counter again: the bytes it wrote name its term,
//! so it can tell whether the write landed (unless its session ended meanwhile and a newer
//! leader already wrote over them; then it counts the write as not landed).
//! `tests/service_example.rs` runs [`serve`] against a real server and expires its session in
//! the middle.

use std::{sync::Arc, sync::atomic::AtomicU64, sync::atomic::Ordering::SeqCst, time::Duration};
use zkwarden::{Error, Result, Warden, WardenConfig};
use zkwarden_recipes::{config::ConfigWatch, leader::LeaderSelector};

/// The counter: its version is the count (a write adds one), its data `<count> <term's node>`.
pub const COUNTER: &str = "/counter";
/// While leader, adds one to [`COUNTER`] with fenced writes; `accepted` counts those that landed.
pub async fn serve(w: Warden, accepted: Arc<AtomicU64>) -> Result<LeaderSelector> {
    let pause_ms = Arc::new(ConfigWatch::<u64>::builder(&w, "/pause_ms").start().await?);
    let exists_ok = |e| (e == Error::NodeExists).then(String::new).ok_or(e);
    w.create(COUNTER, b"0").await.or_else(exists_ok)?;
    LeaderSelector::builder(&w, "/leader")
        .start(move |term, cancel| {
            let (w, accepted, pause_ms) = (w.clone(), accepted.clone(), pause_ms.clone());
            async move {
                while !cancel.is_cancelled() {
                    let version = w.get_data(COUNTER).await?.1.version;
                    let next = format!("{} {}", version + 1, term.node_path());
                    let tx = w.transaction().fenced_by(&term);
                    let landed = match tx.set_data(COUNTER, &*next, Some(version)).commit().await {
                        Err(e) if e.is_fenced_out() => return Ok(()), // not leader: refused
                        Err(e) if e.is_connection_loss() => w.get_data(COUNTER).await?.0 == next,
                        other => other.map(|_| true)?,
                    };
                    accepted.fetch_add(u64::from(landed), SeqCst);
                    tokio::time::sleep(Duration::from_millis(pause_ms.get())).await;
                }
                Ok::<_, Error>(())
            }
        })
        .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let warden = Warden::start(WardenConfig::from_file("service.toml")?).await?;
    let _running = serve(warden, Arc::default()).await?;
    std::future::pending().await
}
