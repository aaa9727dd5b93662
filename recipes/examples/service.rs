//! The shortest correct service: a warden from a config file, a leader that adds one to a
//! counter node with fenced writes, and its pause between writes followed from a config node
//! (`/pause_ms`, JSON).
//!
//! ```text
//! echo 'connect = "127.0.0.1:2181"' > service.toml
//! cargo run -p zkwarden-recipes --example service
//! ```
//!
//! Run several copies: one leads at a time. A former leader's write (its session expired,
//! or it was suspended long enough for another to take over) is refused by the server with
//! `FencedOut`, so the counter only ever holds writes made by the leader of the moment.
//! `tests/service_example.rs` runs [`serve`] against a real server and expires its session
//! in the middle.

use std::{sync::Arc, sync::atomic::AtomicU64, sync::atomic::Ordering::SeqCst, time::Duration};

use zkwarden::{Error, Result, Warden, WardenConfig};
use zkwarden_recipes::{config::ConfigWatch, leader::LeaderSelector, leader::SelectorHandle};

/// The counter node: the count, then the leader's node that wrote it.
pub const COUNTER: &str = "/counter";

/// Joins the election on `w` (creating the counter node if missing). While leader, adds one
/// to [`COUNTER`] with fenced, versioned writes, and counts each write the server accepted in
/// `accepted`, until the handle is closed.
///
/// # Errors
/// As `ConfigWatchBuilder::start` and `Warden::create`; a term's errors end that term and
/// are kept on the handle (`SelectorHandle::last_error`).
pub async fn serve(w: Warden, accepted: Arc<AtomicU64>) -> Result<SelectorHandle> {
    let pause_ms = ConfigWatch::<u64>::builder(&w, "/pause_ms").default(10);
    let pause_ms = Arc::new(pause_ms.start().await?); // followed while the election runs
    let exists_ok = |e| (e == Error::NodeExists).then(String::new).ok_or(e);
    w.create(COUNTER, b"0").await.or_else(exists_ok)?;
    let election = LeaderSelector::new(&w, "/leader");
    Ok(election.start(move |term, cancel| {
        let (w, accepted, pause_ms) = (w.clone(), accepted.clone(), pause_ms.clone());
        async move {
            while !cancel.is_cancelled() {
                let (data, stat) = w.get_data(COUNTER).await?;
                let text = String::from_utf8_lossy(&data);
                // A node that does not hold a count starts again from 0.
                let count: u64 = text.split(' ').next().unwrap_or("0").parse().unwrap_or(0);
                // Only this term writes these bytes: after a lost reply they tell if it landed.
                let next = format!("{} {}", count + 1, term.node_path());
                let tx = w.transaction().fenced_by(&term);
                let tx = tx.set_data(COUNTER, &*next, Some(stat.version));
                let landed = match tx.commit().await {
                    Ok(_) => true,
                    Err(e) if e.is_fenced_out() => return Ok(()), // no longer leader: refused
                    Err(e) if e.is_connection_loss() => w.get_data(COUNTER).await?.0 == next,
                    Err(e) => return Err(e),
                };
                accepted.fetch_add(u64::from(landed), SeqCst);
                tokio::time::sleep(Duration::from_millis(pause_ms.get())).await;
            }
            Ok(())
        }
    }))
}

/// Runs the service with the warden settings in `service.toml`, until killed.
#[tokio::main]
async fn main() -> Result<()> {
    let warden = Warden::start(WardenConfig::from_file("service.toml")?).await?;
    let _running = serve(warden, Arc::default()).await?;
    std::future::pending().await
}
