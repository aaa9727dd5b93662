//! A participant in a leader election that prints when it gains and loses leadership. Run
//! several at once (and Curator `LeaderLatch` participants on the same path, if you like);
//! stop the leader with Ctrl-C and watch another one take over.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example leader -- --connect 127.0.0.1:2181 --path /demo/leader --id alpha
//! cargo run -p zkwarden-recipes --example leader -- --connect 127.0.0.1:2181 --path /demo/leader --id beta
//! ```
//!
//! Without `--connect` it starts a ZooKeeper server of its own and prints its address, for
//! the other participants' `--connect`.

use std::time::Duration;

use zkwarden::Warden;
use zkwarden::testing::ZkServer;
use zkwarden::warden::RetryConfig;
use zkwarden_recipes::leader::LeaderLatch;

/// Command-line settings.
struct Args {
    connect: Option<String>,
    path: String,
    id: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        connect: None,
        path: "/leader_example".to_owned(),
        id: format!("participant-{}", std::process::id()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--connect" => args.connect = Some(value()?),
            "--path" => args.path = value()?,
            "--id" => args.id = value()?,
            "-h" | "--help" => {
                return Err(
                    "usage: leader [--connect HOST:PORT,...] [--path PATH] [--id NAME]".into(),
                );
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (connect, _server) = match args.connect {
        Some(connect) => (connect, None),
        None => {
            let server = tokio::task::spawn_blocking(ZkServer::start).await??;
            println!("started ZooKeeper at {}", server.connect_string());
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
    let latch = LeaderLatch::builder(&warden, &args.path)
        .id(args.id.clone())
        .start()
        .await?;
    println!("{} joined the election on {}", args.id, args.path);

    let follow = async {
        loop {
            let leadership = latch.await_leadership(None).await?;
            println!(
                "{} GAINED leadership: fencing token {}, session {}",
                args.id,
                leadership.fencing_token(),
                leadership.session_id()
            );
            if let Ok(participants) = latch.participants().await {
                let ids: Vec<&str> = participants.iter().map(|p| p.id.as_str()).collect();
                println!("  participants, leader first: {ids:?}");
            }
            let reason = leadership.lost().await;
            println!(
                "{} LOST leadership ({reason:?}): fencing token {} no longer valid",
                args.id,
                leadership.fencing_token()
            );
        }
    };
    let outcome: zkwarden::Result<()> = tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if latch.has_leadership() {
        println!("{} giving up leadership", args.id);
    }
    println!("{} leaving the election", args.id);
    if let Err(e) = latch.close().await {
        // The server is unreachable: the node goes when the session expires.
        println!("{} could not delete its node yet: {e}", args.id);
    }
    warden.close().await?;
    outcome?;
    Ok(())
}
