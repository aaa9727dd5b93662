//! COMMAND for `lock` and `leader`: started with the fencing token in its environment,
//! stopped with SIGTERM and then SIGKILL after the grace period.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::exit::Failure;
use crate::output::note;

/// Starts `argv` with `env` added to this process's environment; it shares our standard
/// input, output and error.
///
/// # Errors
/// [`Failure::Usage`] when the program cannot be started (not found, not executable).
pub fn spawn(argv: &[String], env: &[(String, String)]) -> Result<Child, Failure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Failure::Usage("no COMMAND given after --".into()))?;
    Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Usage(format!("cannot run {program}: {e}")))
}

/// The exit code a shell would report for `status`: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(signal)) => u8::try_from((128 + signal) & 0xff).unwrap_or(1),
        (None, None) => 1,
    }
}

/// Stops `child`: SIGTERM, then SIGKILL if it has not exited after `grace`. Returns how it
/// ended.
///
/// # Errors
/// [`Failure::Usage`] only when waiting for the child fails (it is not our child any more).
pub async fn stop(child: &mut Child, grace: Duration) -> Result<ExitStatus, Failure> {
    let waited = |e: std::io::Error| Failure::Usage(format!("waiting for COMMAND: {e}"));
    // `id` is None once the child has been reaped: then it has ended already.
    let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) else {
        return child.wait().await.map_err(waited);
    };
    // The child may exit between our check and the signal; ESRCH then is harmless.
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.map_err(waited),
        Err(_) => {
            note(format!(
                "COMMAND still running {} after SIGTERM: SIGKILL",
                humantime::format_duration(grace)
            ));
            child.kill().await.map_err(waited)?;
            child.wait().await.map_err(waited)
        }
    }
}
