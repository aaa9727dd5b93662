//! Running the built `zkwarden` binary against real servers.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use zkwarden::testing::ZkServer;

/// One server per test binary, shared by its tests (each works under its own path). The
/// JVM goes with the test process.
pub fn server() -> &'static ZkServer {
    static SERVER: OnceLock<ZkServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        ZkServer::builder()
            .extra_config("extendedTypesEnabled", "true")
            .max_session_timeout(Duration::from_secs(30))
            .start()
            .expect("start ZooKeeper (run scripts/install-zookeeper.sh)")
    })
}

/// A path no other test uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "/{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The binary, connected to the shared server, without ZK_CONNECT from the environment.
pub fn zk() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zkwarden"));
    command
        .env_remove("ZK_CONNECT")
        .arg("--connect")
        .arg(server().connect_string())
        .arg("--session-timeout")
        .arg("6s");
    command
}

/// Runs `zkwarden ARGS` against the shared server and waits for it.
pub fn run(args: &[&str]) -> Output {
    zk().args(args).output().expect("run zkwarden")
}

/// Runs it and expects exit 0; returns standard output.
pub fn ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "zkwarden {args:?} failed: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs `zkwarden --json ARGS`, expects exit 0 and parses the output.
pub fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&all)).expect("one JSON document")
}

/// The exit code (panics when killed by a signal).
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

/// A spawned `zkwarden` with piped output, read line by line.
pub struct Running {
    pub child: Child,
    pub stdout: BufReader<ChildStdout>,
    pub stderr: BufReader<ChildStderr>,
}

impl Running {
    /// Starts `zkwarden ARGS` against the shared server.
    pub fn start(args: &[&str]) -> Running {
        Running::start_command(zk().args(args))
    }

    /// Starts a prepared command with piped stdout and stderr.
    pub fn start_command(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zkwarden");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        Running {
            child,
            stdout,
            stderr,
        }
    }

    /// The next line of standard output (blocks; the process's own timeouts bound it).
    pub fn stdout_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read stdout");
        assert!(
            !line.is_empty(),
            "stdout closed; stderr: {}",
            self.rest_of_stderr()
        );
        line.trim_end().to_owned()
    }

    /// Reads standard error until a line containing `needle`; returns that line.
    pub fn stderr_until(&mut self, needle: &str) -> String {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            self.stderr.read_line(&mut line).expect("read stderr");
            assert!(!line.is_empty(), "stderr closed before {needle:?}: {seen}");
            if line.contains(needle) {
                return line.trim_end().to_owned();
            }
            seen.push_str(&line);
        }
    }

    /// Everything left on standard error.
    pub fn rest_of_stderr(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        rest
    }

    /// Waits for the process; its exit code.
    pub fn wait(&mut self) -> i32 {
        self.child
            .wait()
            .expect("wait for zkwarden")
            .code()
            .expect("exited, not killed")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
