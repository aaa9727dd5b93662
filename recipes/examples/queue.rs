//! A work queue shared with Apache Curator: a producer feeds JSON jobs into a
//! `DistributedQueue` through its sink, and lock-safe consumers take them as a stream, acking
//! each job once done. A Curator `DistributedQueue` with a JSON serializer and the same lock
//! path can join on either side.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example queue -- --connect 127.0.0.1:2181 --path /demo/jobs \
//!     --jobs 20 --consumers 2
//! ```
//!
//! Without `--connect` it starts a ZooKeeper server of its own. `--jobs 0` only consumes
//! (until Ctrl-C); `--consumers 0` only produces.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zkwarden::Warden;
use zkwarden::testing::ZkServer;
use zkwarden::warden::RetryConfig;
use zkwarden_recipes::queue::{DistributedQueue, JsonSerializer};

/// One unit of work, as JSON in the queue.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: u32,
    text: String,
}

/// Command-line settings.
struct Args {
    connect: Option<String>,
    path: String,
    jobs: u32,
    consumers: usize,
}

const USAGE: &str =
    "usage: queue [--connect HOST:PORT,...] [--path PATH] [--jobs N] [--consumers N]";

fn parse_args() -> Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        return Err(USAGE.into());
    }
    let mut args = Args {
        connect: None,
        path: "/queue_example".to_owned(),
        jobs: 20,
        consumers: 2,
    };
    for pair in raw.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{} needs a value\n{USAGE}", pair[0]));
        };
        let number = |what: &str| value.parse().map_err(|e| format!("{what}: {e}"));
        match flag.as_str() {
            "--connect" => args.connect = Some(value.clone()),
            "--path" => args.path = value.clone(),
            "--jobs" => args.jobs = number("--jobs")?,
            "--consumers" => args.consumers = number("--consumers")? as usize,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    // A server of our own unless one was named; kept alive until the end of `main`.
    let own = match &args.connect {
        Some(_) => None,
        None => Some(tokio::task::spawn_blocking(ZkServer::start).await??),
    };
    let connect = own
        .as_ref()
        .map(ZkServer::connect_string)
        .or_else(|| args.connect.clone())
        .ok_or("no server to connect to")?;
    let warden = Warden::builder(&connect)
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(200),
        })
        .start()
        .await?;
    println!("connected to {connect}");
    let locks = format!("{}-locks", args.path);
    let queue =
        DistributedQueue::new(&warden, &args.path, JsonSerializer::<Job>::new()).lock_path(&locks);

    // Each worker reports every job it finished, so the example knows when to stop.
    let (finished, mut done) = tokio::sync::mpsc::unbounded_channel::<u32>();
    let mut workers = Vec::new();
    for n in 0..args.consumers {
        let mut jobs = queue.stream();
        let finished = finished.clone();
        workers.push(tokio::spawn(async move {
            while let Some(next) = jobs.next().await {
                let delivery = match next {
                    Ok(delivery) => delivery,
                    Err(e) => {
                        println!("consumer {n}: {e}");
                        continue;
                    }
                };
                let id = delivery.item().id;
                println!("consumer {n} works on {:?}", delivery.item());
                // An ack after the session was lost fails, and the job goes to someone else.
                match delivery.ack().await {
                    Ok(()) => {
                        let _ = finished.send(id);
                    }
                    Err(e) => println!("consumer {n}: job {id} not acked ({e}); it comes back"),
                }
            }
        }));
    }

    for id in 0..args.jobs {
        let job = Job {
            id,
            text: format!("job number {id}"),
        };
        // `queue.sink()` is the same put as a `futures::Sink`.
        queue.put(&job).await?;
    }
    println!("queued {} jobs on {}", args.jobs, args.path);

    if args.consumers > 0 {
        if args.jobs > 0 {
            for _ in 0..args.jobs {
                done.recv().await;
            }
            println!("all {} jobs done", args.jobs);
        } else {
            tokio::signal::ctrl_c().await?;
        }
    }
    for worker in workers {
        worker.abort();
    }
    warden.close().await?;
    Ok(())
}
