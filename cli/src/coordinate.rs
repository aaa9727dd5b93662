//! `lock` and `leader`: run COMMAND while holding a lock or leadership, and stop it when
//! that may no longer be trusted.

use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use zkwarden::{Error, SessionId, Warden};
use zkwarden_recipes::leader::LeaderLatch;
use zkwarden_recipes::lock::{LostReason, Mutex};

use crate::args::{ChildArgs, LeaderArgs, LockArgs};
use crate::child;
use crate::exit::{self, Failure};
use crate::output::{hex, note};

/// The environment variable with the lock or latch node's path.
pub const NODE_ENV: &str = "ZKWARDEN_NODE";
/// The environment variable with the holder's session id (hex).
pub const SESSION_ENV: &str = "ZKWARDEN_SESSION";

/// How a supervised COMMAND ended.
enum Outcome {
    /// It exited by itself.
    Exited(ExitStatus),
    /// The lock or leadership was lost and COMMAND was stopped.
    Lost(LostReason, ExitStatus),
    /// We were asked to stop (SIGINT/SIGTERM) and passed it on.
    Interrupted(ExitStatus),
}

/// Runs `child` until it exits, `lost` resolves (then stops it), or we get SIGINT/SIGTERM
/// (then stops it too).
async fn supervise(
    child: &mut Child,
    lost: impl std::future::Future<Output = LostReason>,
    grace: Duration,
) -> Result<Outcome, Failure> {
    let signal_error = |e: std::io::Error| Failure::Usage(format!("cannot watch signals: {e}"));
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    tokio::select! {
        status = child.wait() => status
            .map(Outcome::Exited)
            .map_err(|e| Failure::Usage(format!("waiting for COMMAND: {e}"))),
        reason = lost => {
            note(format!(
                "{reason:?}: the lock may be held by someone else now; stopping COMMAND \
                 (SIGTERM, SIGKILL after {})",
                humantime::format_duration(grace)
            ));
            Ok(Outcome::Lost(reason, child::stop(child, grace).await?))
        }
        _ = interrupt.recv() => Ok(Outcome::Interrupted(child::stop(child, grace).await?)),
        _ = terminate.recv() => Ok(Outcome::Interrupted(child::stop(child, grace).await?)),
    }
}

/// The exit code for an outcome (COMMAND's own, or [`exit::LOST`]).
fn code_of(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Exited(status) | Outcome::Interrupted(status) => child::exit_code(*status),
        Outcome::Lost(reason, status) => {
            note(format!(
                "COMMAND stopped after the loss ({reason:?}): {}; exiting with {}",
                describe(*status),
                exit::LOST
            ));
            exit::LOST
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".into(),
    }
}

/// What COMMAND is told about the lock or leadership it runs under.
#[derive(Debug, Clone, Copy)]
struct Term<'a> {
    token: i64,
    node: &'a str,
    session: SessionId,
}

/// Runs COMMAND for one term: announces it, exports the token, node and session, and
/// supervises COMMAND until it exits or `lost` resolves.
async fn run_term(
    args: &ChildArgs,
    what: &str,
    term: Term<'_>,
    lost: impl std::future::Future<Output = LostReason>,
) -> Result<Outcome, Failure> {
    note(format!(
        "{what} (node {}, session {}, fencing token {})",
        term.node, term.session, term.token
    ));
    let env = [
        (args.fence_env.clone(), term.token.to_string()),
        (NODE_ENV.to_owned(), term.node.to_owned()),
        (SESSION_ENV.to_owned(), hex(term.session.0)),
    ];
    let mut running = child::spawn(&args.command, &env)?;
    supervise(&mut running, lost, args.grace).await
}

/// The deadline for `--wait`, if given.
fn deadline(args: &ChildArgs) -> Option<Instant> {
    args.wait.map(|wait| Instant::now() + wait)
}

/// A timeout while acquiring means "not acquired within --wait" (exit 5).
fn acquire_failure(what: &str, path: &str, wait: Option<Duration>, e: Error) -> Failure {
    match (e, wait) {
        (Error::Timeout, Some(wait)) => {
            note(format!(
                "{what} {path} not acquired within {}",
                humantime::format_duration(wait)
            ));
            Failure::NotAcquired
        }
        (e, _) => Failure::zk(format!("{what} {path}"), e),
    }
}

/// `lock PATH -- COMMAND...`.
///
/// # Errors
/// Connection and ZooKeeper errors while acquiring; [`Failure::NotAcquired`] after `--wait`;
/// [`Failure::Usage`] when COMMAND cannot be started.
pub async fn lock(warden: &Warden, args: &LockArgs) -> Result<u8, Failure> {
    let mutex = Mutex::new(warden, args.path.clone());
    let guard = match deadline(&args.child) {
        Some(deadline) => mutex.lock_until(deadline).await,
        None => mutex.lock().await,
    }
    .map_err(|e| acquire_failure("lock", &args.path, args.child.wait, e))?;
    let what = format!("holding lock {}", args.path);
    let term = Term {
        token: guard.fencing_token(),
        node: guard.node_path(),
        session: guard.session_id(),
    };
    let outcome = run_term(&args.child, &what, term, guard.lost()).await?;
    if !matches!(outcome, Outcome::Lost(..)) {
        if let Err(e) = guard.release().await {
            note(format!("releasing {}: {e}", args.path));
        }
    }
    Ok(code_of(&outcome))
}

/// `leader PATH -- COMMAND...`.
///
/// # Errors
/// As [`lock`].
pub async fn leader(warden: &Warden, args: &LeaderArgs) -> Result<u8, Failure> {
    let mut builder = LeaderLatch::builder(warden, args.path.clone());
    if let Some(id) = &args.id {
        builder = builder.id(id.clone());
    }
    let latch = builder
        .start()
        .await
        .map_err(|e| Failure::zk(format!("leader election on {}", args.path), e))?;
    let leadership = latch
        .await_leadership(deadline(&args.child))
        .await
        .map_err(|e| acquire_failure("leadership of", &args.path, args.child.wait, e))?;
    let what = format!("leading {} as {}", args.path, latch.id());
    let term = Term {
        token: leadership.fencing_token(),
        node: leadership.node_path(),
        session: leadership.session_id(),
    };
    let outcome = run_term(&args.child, &what, term, leadership.lost()).await?;
    if let Err(e) = latch.close().await {
        note(format!("leaving the election on {}: {e}", args.path));
    }
    Ok(code_of(&outcome))
}
