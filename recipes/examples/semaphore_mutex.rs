//! A `SemaphoreMutex` (Curator's `InterProcessSemaphoreMutex`): three tasks take turns, and
//! one hands its lease to another task to release.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example semaphore_mutex [-- HOST:PORT]
//! ```

mod support;

use std::time::Duration;

use zkwarden_recipes::lock::SemaphoreMutex;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (warden, _server) = support::warden().await?;
    let mut tasks = Vec::new();
    for worker in 0..3 {
        let mutex = SemaphoreMutex::new(&warden, "/example/semaphore-mutex");
        tasks.push(tokio::spawn(async move {
            for round in 0..2 {
                let lease = mutex.lock().await?;
                println!("worker {worker} holds the mutex (round {round})");
                tokio::time::sleep(Duration::from_millis(100)).await;
                // A lease is not tied to the task that took it.
                tokio::spawn(async move { lease.release().await })
                    .await
                    .map_err(|e| {
                        zkwarden::Error::InvalidArgument(format!("release task: {e}"))
                    })??;
            }
            Ok::<_, zkwarden::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    warden.close().await?;
    Ok(())
}
