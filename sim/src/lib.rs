//! Deterministic simulation of zkwarden: the real [`zkwarden::Client`] runs over an
//! in-memory network against a ZooKeeper model server that speaks the wire protocol, on a
//! single-threaded tokio runtime whose clock is paused. Everything random is drawn from the
//! seed (the fault plan, the actors' calls, and `fastrand`'s thread-local generator, which
//! the client's jitter and host shuffling use), so a seed replays exactly.
//!
//! See docs/simulation.md for how it works, how to replay a seed and what the model leaves
//! out.

pub mod actors;
pub mod check;
pub mod check_recipes;
pub mod model;
pub mod net;
pub mod scenario;
mod setup;
pub mod trace;

use std::time::Duration;

pub use scenario::Stats;
use trace::Trace;

/// A seed that broke an invariant.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What broke: the invariant, the simulated time and the actors.
    pub message: String,
    /// The run's trace (empty unless traced).
    pub trace: Vec<String>,
    /// The test target that replays it (`seeds` or `recipes`).
    pub suite: &'static str,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.message)?;
        writeln!(
            f,
            "replay: RUSTFLAGS=\"--cfg tokio_unstable\" ZKSIM_SEED={} cargo test -p zkwarden-sim \
             --test {} replay -- --nocapture",
            self.seed, self.suite
        )?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// How long one seed may run in simulated time before it counts as a hang.
const SIMULATED_LIMIT: Duration = Duration::from_secs(600);

/// Runs seed `seed` on a fresh paused-clock runtime on this thread; with `traced`, keeps the
/// trace (of a failure).
///
/// # Errors
/// The [`Failure`] when an invariant broke.
pub fn run_seed(seed: u64, traced: bool) -> Result<Stats, Failure> {
    failure_of(seed, "seeds", run_traced(seed, traced))
}

/// Runs seed `seed` of the recipe scenario (the warden and the recipes, [`actors`]) on a
/// fresh paused-clock runtime on this thread; with `traced`, keeps the trace.
///
/// # Errors
/// The [`Failure`] when an invariant broke.
pub fn run_recipe_seed(seed: u64, traced: bool) -> Result<Stats, Failure> {
    failure_of(seed, "recipes", run_recipes_traced(seed, traced))
}

/// A run's verdict and trace as a [`Failure`] of `suite` (the test target that replays it).
fn failure_of(
    seed: u64,
    suite: &'static str,
    (result, trace): (Result<Stats, String>, Vec<String>),
) -> Result<Stats, Failure> {
    result.map_err(|message| Failure {
        seed,
        message,
        trace,
        suite,
    })
}

/// As [`run_traced`], for the recipe scenario.
pub fn run_recipes_traced(seed: u64, traced: bool) -> (Result<Stats, String>, Vec<String>) {
    on_runtime(seed, traced, actors::run)
}

/// Runs seed `seed`; returns the verdict (a violation's message) and the trace (empty unless
/// `traced`). Two runs of one seed give the same trace, line for line.
pub fn run_traced(seed: u64, traced: bool) -> (Result<Stats, String>, Vec<String>) {
    on_runtime(seed, traced, scenario::run)
}

/// Runs `scenario` for `seed` on a fresh paused-clock runtime on this thread.
fn on_runtime<F, Fut>(seed: u64, traced: bool, scenario: F) -> (Result<Stats, String>, Vec<String>)
where
    F: FnOnce(u64, Trace) -> Fut,
    Fut: std::future::Future<Output = Result<Stats, String>>,
{
    // The client's jitter and host order come from this thread's generator.
    fastrand::seed(seed);
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time().start_paused(true);
    // tokio's own generator (which branch of an unbiased `select!` goes first, which of a
    // watch channel's wakers a receiver waits on, hence the order tasks wake in) is seeded
    // from the seed too; that needs `--cfg tokio_unstable` (`Builder::rng_seed`). Without
    // it, the plain client's runs still replay exactly (its `select!`s are biased and it
    // waits on no watch channel from several tasks); the warden's and recipes' may not.
    #[cfg(tokio_unstable)]
    builder.rng_seed(tokio::runtime::RngSeed::from_bytes(&seed.to_le_bytes()));
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(e) => return (Err(format!("cannot build a runtime: {e}")), vec![]),
    };
    runtime.block_on(async {
        let trace = Trace::new(traced);
        let result = tokio::time::timeout(SIMULATED_LIMIT, scenario(seed, trace.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "at {}: the run did not finish within {SIMULATED_LIMIT:?} of simulated time",
                    trace.time()
                ))
            });
        (result, trace.lines())
    })
}

/// Runs seeds `first..first + count` on `threads` threads; returns the failures (each
/// replayed with its trace) and the summed figures.
pub fn sweep(first: u64, count: u64, threads: usize) -> (Vec<Failure>, Stats) {
    sweep_with(first, count, threads, run_seed)
}

/// As [`sweep`], for the recipe scenario.
pub fn sweep_recipes(first: u64, count: u64, threads: usize) -> (Vec<Failure>, Stats) {
    sweep_with(first, count, threads, run_recipe_seed)
}

/// Runs seeds `first..first + count` of one scenario (`run`) on `threads` threads.
fn sweep_with(
    first: u64,
    count: u64,
    threads: usize,
    run: fn(u64, bool) -> Result<Stats, Failure>,
) -> (Vec<Failure>, Stats) {
    let threads = threads.max(1) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let mut stats = Stats::default();
                let mut seed = first + t;
                while seed < first + count {
                    match run(seed, false) {
                        Ok(s) => {
                            stats.calls += s.calls;
                            stats.connection_losses += s.connection_losses;
                            stats.expirations += s.expirations;
                            stats.events += s.events;
                        }
                        // Replayed with the trace on: the seed decides everything.
                        Err(_) => failures.push(
                            run(seed, true).err().unwrap_or(Failure {
                                seed,
                                message: "failed, then passed when replayed: the run is not \
                                      deterministic"
                                    .into(),
                                trace: vec![],
                                suite: "seeds",
                            }),
                        ),
                    }
                    seed += threads;
                }
                (failures, stats)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut stats = Stats::default();
    for handle in handles {
        match handle.join() {
            Ok((f, s)) => {
                failures.extend(f);
                stats.calls += s.calls;
                stats.connection_losses += s.connection_losses;
                stats.expirations += s.expirations;
                stats.events += s.events;
            }
            Err(_) => failures.push(Failure {
                seed: first,
                message: "a sweep thread panicked".into(),
                trace: vec![],
                suite: "seeds",
            }),
        }
    }
    failures.sort_by_key(|f| f.seed);
    (failures, stats)
}
