//! Counters on Curator's `DistributedAtomicLong` / `DistributedAtomicInteger` layout: four
//! tasks increment one long (exactly once each) and one integer promoted to a mutex after
//! two optimistic tries, then print the totals and what the changes cost.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example atomic_counter [-- HOST:PORT]
//! ```

mod support;

use zkwarden_recipes::atomic::{AtomicLong, DistributedAtomicInteger, PromotedToLock};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (warden, _server) = support::warden().await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let warden = warden.clone();
        tasks.push(tokio::spawn(async move {
            let long = AtomicLong::new(&warden, "/example/counters/long");
            let int = DistributedAtomicInteger::new(&warden, "/example/counters/int")
                .optimistic_tries(2)
                .promoted(PromotedToLock::new("/example/counters/int-lock"));
            let (mut optimistic, mut promoted) = (0, 0);
            for _ in 0..50 {
                long.increment().await?;
                loop {
                    let r = int.increment().await?;
                    optimistic += r.stats.optimistic_tries;
                    promoted += r.stats.promoted_tries;
                    if r.succeeded {
                        break;
                    }
                }
            }
            long.close().await?;
            int.close().await?;
            Ok::<_, zkwarden::Error>((optimistic, promoted))
        }));
    }
    for task in tasks {
        let (optimistic, promoted) = task.await??;
        println!("a task made {optimistic} optimistic and {promoted} promoted tries");
    }
    let long = AtomicLong::new(&warden, "/example/counters/long");
    let int = DistributedAtomicInteger::new(&warden, "/example/counters/int");
    println!("long = {}, int = {}", long.get().await?, int.get().await?);
    warden.close().await?;
    Ok(())
}
