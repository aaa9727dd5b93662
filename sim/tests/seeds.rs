//! The seed sweep: every seed runs the real client against the model with faults drawn from
//! it, and every invariant is checked. `ZKSIM_SEEDS` sets how many (default 2,000; a soak
//! runs 100,000), `ZKSIM_FIRST` the first; `ZKSIM_SEED` replays one seed with its trace
//! (`ZKSIM_TRACE=1` prints it even when the seed passes).

use std::time::Instant;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn sweep() {
    let count = env_u64("ZKSIM_SEEDS").unwrap_or(2_000);
    let first = env_u64("ZKSIM_FIRST").unwrap_or(0);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let (failures, stats) = zkwarden_sim::sweep(first, count, threads);
    let elapsed = started.elapsed();
    // The figures README quotes come from here (`--nocapture`).
    println!(
        "{count} seeds in {elapsed:.1?} on {threads} threads ({:.0} seeds/s): {} calls, {} \
         connection losses, {} sessions expired, {} watch events",
        count as f64 / elapsed.as_secs_f64(),
        stats.calls,
        stats.connection_losses,
        stats.expirations,
        stats.events,
    );
    if let Some(first) = failures.first() {
        panic!(
            "{} of {count} seeds failed; the first:\n{first}",
            failures.len()
        );
    }
    // The sweep must exercise the faults it claims to.
    assert!(
        count < 100 || stats.connection_losses > 0,
        "no connection was ever lost"
    );
    assert!(
        count < 100 || stats.expirations > 0,
        "no session ever expired"
    );
}

#[test]
fn replay() {
    let Some(seed) = env_u64("ZKSIM_SEED") else {
        return;
    };
    // `ZKSIM_TRACE=1` prints the trace of a seed that passes too.
    if std::env::var_os("ZKSIM_TRACE").is_some() {
        for line in zkwarden_sim::run_traced(seed, true).1 {
            println!("{line}");
        }
    }
    match zkwarden_sim::run_seed(seed, true) {
        Ok(stats) => println!("seed {seed} passed: {stats:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
fn a_seed_replays_exactly() {
    // Line for line, twice in one process (where every HashMap is seeded differently).
    for seed in 0..50 {
        let a = zkwarden_sim::run_traced(seed, true);
        let b = zkwarden_sim::run_traced(seed, true);
        assert!(!a.1.is_empty(), "seed {seed} left no trace");
        assert_eq!(a, b, "seed {seed} ran differently twice");
    }
}
