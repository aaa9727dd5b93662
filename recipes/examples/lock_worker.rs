//! A worker that does its jobs only while it holds a lock, and stops the moment it may have
//! lost it. Run several at once (and a Curator `InterProcessMutex` on the same path, if you
//! like): they take turns.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example lock_worker                     # its own server
//! ZK_CONNECT=127.0.0.1:2181 cargo run -p zkwarden-recipes --example lock_worker -- /jobs/lock 5
//! ```
//!
//! Each round it waits up to 30 s for the lock, then works in small steps. Every step is a
//! write to the guarded resource (`<lock path>-resource`) fenced by the lock node, so a step
//! the worker makes after losing the lock is refused by the server; and the work stops as
//! soon as [`LockGuard::lost`](zkwarden_recipes::lock::LockGuard::lost) resolves.

use std::time::Duration;

use tokio::time::Instant;
use zkwarden::testing::ZkServer;
use zkwarden::warden::RetryConfig;
use zkwarden::{CreateMode, Error, Op, Warden};
use zkwarden_recipes::lock::{LockGuard, Mutex};

/// Steps of work per round.
const STEPS: u32 = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/lock_worker/lock".to_owned());
    let rounds: u32 = args.next().map(|r| r.parse()).transpose()?.unwrap_or(3);

    let (connect, _server) = match std::env::var("ZK_CONNECT") {
        Ok(connect) => (connect, None),
        Err(_) => {
            let server = tokio::task::spawn_blocking(ZkServer::start).await??;
            (server.connect_string(), Some(server))
        }
    };
    let warden = Warden::builder(&connect)
        .session_timeout(Duration::from_secs(10))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(200),
        })
        .start()
        .await?;

    let resource = format!("{path}-resource");
    match warden
        .create(&resource, b"")
        .mode(CreateMode::Persistent)
        .parents(zkwarden::warden::ParentMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => {}
        Err(e) => return Err(e.into()),
    }

    let mutex = Mutex::new(&warden, &path);
    for round in 1..=rounds {
        let guard = match mutex
            .lock_until(Instant::now() + Duration::from_secs(30))
            .await
        {
            Ok(guard) => guard,
            Err(Error::Timeout) => {
                println!("round {round}: the lock stayed busy for 30 s; trying again");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        println!(
            "round {round}: holding {} (fencing token {})",
            guard.node_path(),
            guard.fencing_token()
        );
        let lost = guard.lost();
        tokio::select! {
            done = work(&warden, &guard, &resource) => match done {
                Ok(()) => println!("round {round}: done"),
                Err(e) => println!("round {round}: a fenced write was refused: {e}"),
            },
            reason = lost => println!("round {round}: stopped, the lock may be lost ({reason:?})"),
        }
        guard.release().await?;
    }
    warden.close().await?;
    Ok(())
}

/// The job: a few writes to the resource, each refused unless the lock node still exists.
async fn work(warden: &Warden, guard: &LockGuard, resource: &str) -> zkwarden::Result<()> {
    for step in 1..=STEPS {
        let record = format!("token {} step {step}", guard.fencing_token());
        warden
            .multi(&guard.fence(vec![Op::set_data(resource, record, None)]))
            .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
