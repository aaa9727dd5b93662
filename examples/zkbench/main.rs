//! zkbench: the same ZooKeeper workloads run by zkwarden or by the `zookeeper-client` crate,
//! reported as one JSON line.
//!
//! ```text
//! cargo run --release --example zkbench -- --connect 127.0.0.1:2181 --workload get_pipe --n 100000
//! cargo run --release --example zkbench -- --connect 127.0.0.1:2181 --workload get_seq --n 5000 \
//!     --client peer --runtime multi --count-allocs
//! ```
//!
//! The line reads
//! `{"client":..,"workload":..,"n":..,"secs":..,"ops_per_sec":..,"p50_us":..,"p99_us":..,
//! "cpu_user_s":..,"cpu_sys_s":..,"max_rss_kb":..,"runtime":..}`; with `--count-allocs` it
//! also carries `allocs_per_op` and `alloc_bytes_per_op`. `secs`, the CPU times and the
//! allocations cover only the timed section (CPU and allocations of every thread of the
//! process, so a client's own background threads count); `max_rss_kb` is the process peak.
//! Latencies run from issuing a request to its completion, for the pipelined workloads too
//! (where they include the wait behind up to `--inflight` earlier requests).
//!
//! `scripts/bench.sh` runs every workload with both clients on both runtimes, beside the C
//! client and Curator (`peers/`, printing the same line), and tabulates the medians.

mod args;
mod driver;
mod measure;
mod ours;
mod peer;
mod raw;
mod workloads;

use std::alloc::System;
use std::fmt::Write as _;
use std::process::ExitCode;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

use args::{Args, ArgsError, ClientKind, RuntimeKind, USAGE};
use driver::{BenchError, BenchResult};
use measure::{Sample, max_rss_kb, percentile_us};

/// The system allocator with counters (a few atomic adds per allocation, paid by both
/// clients alike), so that `--count-allocs` can report allocations per op.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() -> ExitCode {
    let mut raw = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => raw.push(arg),
            Err(arg) => {
                eprintln!("zkbench: argument {arg:?} is not valid UTF-8\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let args = match Args::parse(raw) {
        Ok(args) => args,
        Err(ArgsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(ArgsError::Bad(msg)) => {
            eprintln!("zkbench: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match bench(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "zkbench: {} with {} on the {} runtime failed: {e}",
                args.workload.name(),
                args.client.name(),
                args.runtime.name()
            );
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark on the runtime asked for and returns the JSON line.
fn bench(args: &Args) -> BenchResult<String> {
    let runtime = match args.runtime {
        RuntimeKind::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        RuntimeKind::Multi => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .map_err(|e| BenchError::new("building the tokio runtime", e))?;

    // The workload runs as a spawned task, the way a service calls a client (from a request
    // handler, a worker task...): on a multi-thread runtime a `block_on` future lives on a
    // thread that is not a worker, so every reply would cost both clients a thread hand-off
    // that real callers do not pay. The same harness drives both clients either way.
    let task_args = args.clone();
    let sample = runtime.block_on(async move {
        let work = tokio::spawn(async move {
            let work = async {
                match task_args.client {
                    ClientKind::Zkwarden => workloads::run::<ours::Ours>(&task_args).await,
                    ClientKind::Peer => workloads::run::<peer::Peer>(&task_args).await,
                    ClientKind::Raw => raw::run(&task_args).await,
                }
            };
            match tokio::time::timeout(task_args.timeout, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(BenchError::msg(format!(
                    "gave up after {} s (--timeout)",
                    task_args.timeout.as_secs()
                ))),
            }
        });
        work.await
            .map_err(|e| BenchError::msg(format!("the workload task failed: {e}")))?
    })?;
    // Let the clients' tasks go before reading the peak RSS.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(json_line(args, &sample, max_rss_kb()?))
}

/// Formats a number for JSON (`null` when there is none or it is not finite).
fn num(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "null".to_owned(),
    }
}

fn json_line(args: &Args, sample: &Sample, max_rss_kb: u64) -> String {
    let secs = sample.wall.as_secs_f64();
    let ops = sample.ops as f64;
    let (p50, p99) = match &sample.latencies_ns {
        Some(latencies) => {
            let mut sorted = latencies.clone();
            sorted.sort_unstable();
            (percentile_us(&sorted, 0.50), percentile_us(&sorted, 0.99))
        }
        None => (None, None),
    };
    let mut line = format!(
        "{{\"client\":\"{}\",\"workload\":\"{}\",\"n\":{},\"secs\":{},\"ops_per_sec\":{},\
         \"p50_us\":{},\"p99_us\":{},\"cpu_user_s\":{},\"cpu_sys_s\":{},\"max_rss_kb\":{},\
         \"runtime\":\"{}\"",
        args.client.name(),
        args.workload.name(),
        args.n,
        num(Some(secs), 6),
        num((secs > 0.0).then(|| ops / secs), 1),
        num(p50, 1),
        num(p99, 1),
        num(Some(sample.cpu_user_s), 6),
        num(Some(sample.cpu_sys_s), 6),
        max_rss_kb,
        args.runtime.name(),
    );
    if args.count_allocs {
        let per_op = |count: u64| (ops > 0.0).then(|| count as f64 / ops);
        let _ = write!(
            line,
            ",\"allocs_per_op\":{},\"alloc_bytes_per_op\":{}",
            num(per_op(sample.allocs), 2),
            num(per_op(sample.alloc_bytes), 1)
        );
    }
    line.push('}');
    line
}
