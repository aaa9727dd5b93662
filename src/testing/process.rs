//! Spawning a JVM that cannot outlive the test process.
//!
//! Java is started by a small `sh` wrapper that runs in its own process group:
//!
//! * the wrapper starts java in the background and prints java's pid on its stdout;
//! * a watcher subshell reads the wrapper's stdin, which is a pipe whose only writer is this
//!   (Rust) process. The pipe reaches end-of-file when we drop our end *or when this process
//!   dies for any reason, SIGKILL included*; the watcher then kills the wrapper and java and
//!   removes the data directory;
//! * the wrapper waits for java and exits with java's status, so "the wrapper has exited"
//!   means "java has exited and has been reaped".
//!
//! To stop a server we SIGKILL java and wait for the wrapper to exit: the wrapper has then
//! reaped java, so the JVM is gone entirely and its ports are free again.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::error::TestingError;

/// The wrapper. `$@` is the java command line; fd 3 keeps the lifeline (our pipe) away from
/// java, whose stdin is `/dev/null` and whose stdout goes to stderr (the log file). When the
/// lifeline breaks, the watcher also removes the data directory, which the dead test
/// process can no longer do. On a normal stop the wrapper kills the watcher first.
const WRAPPER: &str = r#"
exec 3<&0 0</dev/null
"$@" 1>&2 3<&- &
jpid=$!
( while read -r _line; do :; done
  kill -KILL "$$" "$jpid"
  rm -rf -- "$ZKWARDEN_ORPHAN_DIR" || { sleep 1; rm -rf -- "$ZKWARDEN_ORPHAN_DIR"; }
) <&3 >/dev/null 2>&1 &
wpid=$!
exec 3<&-
echo "$jpid"
exec 1>/dev/null
wait "$jpid"
code=$?
kill -KILL "$wpid" 2>/dev/null
exit "$code"
"#;

/// How long `kill` waits for java to disappear after SIGKILL.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to run: the java executable, its arguments, where it logs and where it runs.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The `java` executable.
    pub(crate) java: PathBuf,
    /// Everything after `java` on the command line.
    pub(crate) args: Vec<OsString>,
    /// File receiving java's stdout and stderr.
    pub(crate) log_path: PathBuf,
    /// Working directory of the JVM.
    pub(crate) work_dir: PathBuf,
}

/// A running (or exited) JVM under its wrapper.
#[derive(Debug)]
pub(crate) struct JvmProcess {
    /// The `sh` wrapper; its pid is also the process group id.
    wrapper: Child,
    /// Our end of the lifeline. Dropping it while the wrapper runs makes the watcher kill
    /// the wrapper and java and remove the data directory.
    lifeline: Option<ChildStdin>,
    /// Java's pid as the wrapper reported it; `None` until it has.
    java_pid: Option<u32>,
}

impl JvmProcess {
    /// Starts the JVM. With `fresh_log` the log file is truncated first, otherwise appended to.
    pub(crate) fn spawn(launch: &Launch, fresh_log: bool) -> Result<JvmProcess, TestingError> {
        let log = open_log(&launch.log_path, fresh_log)?;
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("zk-wrapper")
            .arg(&launch.java)
            .args(&launch.args)
            .current_dir(&launch.work_dir)
            .env("ZKWARDEN_ORPHAN_DIR", &launch.work_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| TestingError::io("spawning sh to start the ZooKeeper JVM", e))?;

        let lifeline = wrapper.stdin.take();
        let java_pid = wrapper
            .stdout
            .take()
            .ok_or_else(|| missing("the wrapper's stdout"))
            .and_then(read_pid);
        let mut process = JvmProcess {
            wrapper,
            lifeline,
            java_pid: None,
        };
        // On error `process` is dropped here, which kills the group.
        process.java_pid = Some(java_pid?);
        Ok(process)
    }

    /// True while java runs (the wrapper exits right after java does).
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.wrapper.try_wait(), Ok(None))
    }

    /// Java's exit status once it has exited, as text.
    pub(crate) fn exit_status(&mut self) -> Option<String> {
        match self.wrapper.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown ({e})")),
        }
    }

    /// Kills java with SIGKILL and waits until it is gone. Idempotent.
    ///
    /// Java is killed alone so that the wrapper reaps it: only then is every thread of the
    /// JVM dead and every socket closed (a killed JVM's main thread turns into a zombie while
    /// other threads still hold its listening sockets). The group is killed only as a backstop.
    pub(crate) fn kill(&mut self) {
        let pgid = self.wrapper.id();
        // While the wrapper is not reaped it has not reaped java either, so neither pid can
        // have been reused.
        if self.is_running() {
            let java_gone = self.java_pid.is_some_and(|pid| {
                send_sigkill(&pid.to_string());
                self.wait_for_wrapper(GONE_TIMEOUT)
            });
            if !java_gone {
                send_sigkill(&format!("-{pgid}"));
            }
        }
        self.lifeline = None;
        // Ignore the error: it only says the wrapper was reaped before.
        let _ = self.wrapper.wait();
        // Only matters if someone else killed the wrapper and left java to the watcher.
        if let Some(pid) = self.java_pid {
            wait_until_gone(pid, pgid);
        }
    }

    /// Polls until the wrapper exits; false on timeout.
    fn wait_for_wrapper(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

impl Drop for JvmProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open_log(path: &Path, fresh: bool) -> Result<File, TestingError> {
    if fresh {
        File::create(path)
            .map_err(|e| TestingError::io(format!("creating {}", path.display()), e))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TestingError::io(format!("opening {}", path.display()), e))
}

fn missing(what: &str) -> TestingError {
    TestingError::io(
        format!("starting the ZooKeeper JVM: {what} is missing"),
        std::io::Error::from(std::io::ErrorKind::BrokenPipe),
    )
}

/// Reads the first line the wrapper prints: java's pid.
fn read_pid(stdout: std::process::ChildStdout) -> Result<u32, TestingError> {
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| TestingError::io("reading java's pid from the wrapper", e))?;
    line.trim().parse().map_err(|_| {
        TestingError::io(
            format!("reading java's pid from the wrapper (got {line:?})"),
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        )
    })
}

/// Sends SIGKILL to a pid, or to a process group given as `-PGID`. `std` has no safe call
/// for either and `unsafe` is forbidden, so we use the shell's `kill` builtin (present even
/// where `/bin/kill` is not).
fn send_sigkill(target: &str) {
    let _ = Command::new("sh")
        .arg("-c")
        .arg(r#"kill -KILL "$1" 2>/dev/null"#)
        .arg("zk-kill")
        .arg(target)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits until `pid` is no longer a live member of group `pgid`: gone, a zombie, or reused
/// by an unrelated process. Without `/proc` it just waits a moment.
fn wait_until_gone(pid: u32, pgid: u32) {
    if !Path::new("/proc/self/stat").exists() {
        thread::sleep(Duration::from_millis(200));
        return;
    }
    let deadline = Instant::now() + GONE_TIMEOUT;
    while is_live_member(pid, pgid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
}

/// Reads `/proc/<pid>/stat`: `pid (comm) state ppid pgrp ...`.
fn is_live_member(pid: u32, pgid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `comm` may contain spaces and parentheses; the fields after the last ')' are plain.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    let mut fields = rest.split_whitespace();
    let state = fields.next();
    let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
    state != Some("Z") && state != Some("X") && group == Some(pgid)
}
