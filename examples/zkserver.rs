//! A throwaway ZooKeeper server for benchmarks and manual experiments.
//!
//! ```text
//! cargo run --release --features testing --example zkserver
//! ```
//!
//! Starts one standalone server (Debian's ZooKeeper, see `scripts/install-zookeeper.sh`) on a
//! free loopback port, prints its connect string and then its version on stdout, one line
//! each, and serves until its stdin closes (or reads `stop`); then the server and its data
//! go. `scripts/bench.sh` drives it that way.
//!
//! Settings for benchmarking rather than for fault tests: the usual `tickTime` of 2 s (so
//! sessions of 4 to 40 s are granted), no client connection limit, and the transaction log
//! not forced to disk after every write unless `ZK_FORCE_SYNC=yes` (a benchmark of clients
//! should not measure the disk; set it to compare with a production-like server).

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use zkwarden::testing::ZkServer;

fn main() -> ExitCode {
    let force_sync = match std::env::var("ZK_FORCE_SYNC").as_deref() {
        Ok("yes") => "yes",
        Ok("no") | Err(_) => "no",
        Ok(other) => {
            eprintln!("zkserver: ZK_FORCE_SYNC must be yes or no, not {other:?}");
            return ExitCode::from(2);
        }
    };
    let server = match ZkServer::builder()
        .tick_time(Duration::from_secs(2))
        .extra_config("maxClientCnxns", "0")
        .jvm_arg(format!("-Dzookeeper.forceSync={force_sync}"))
        .start()
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("zkserver: could not start ZooKeeper: {e}");
            return ExitCode::FAILURE;
        }
    };
    let version = server
        .four_letter("srvr")
        .ok()
        .and_then(|srvr| {
            srvr.lines()
                .find_map(|line| line.strip_prefix("Zookeeper version:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());

    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", server.connect_string())
        .and_then(|()| writeln!(stdout, "{version} (forceSync={force_sync})"))
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // Nobody is listening: no point in serving.
        return ExitCode::FAILURE;
    }
    drop(stdout);

    // Serve until told to stop or until whoever started us goes away.
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line.trim() == "stop" => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    drop(server);
    ExitCode::SUCCESS
}
