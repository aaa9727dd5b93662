//! One ZooKeeper JVM with its data directory: the piece shared by a standalone server and
//! each member of an ensemble.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::config::Options;
use super::error::TestingError;
use super::java::JavaSetup;
use super::probe;
use super::process::{JvmProcess, Launch};

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How many log lines an error carries.
const TAIL_LINES: usize = 30;

/// What "ready" means for a wait.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ready<'a> {
    /// `ruok` answers `imok` (the process listens, it may not serve yet).
    Imok,
    /// `srvr` reports one of these modes.
    Mode(&'a [&'a str]),
}

/// A ZooKeeper JVM, its config and its data directory.
#[derive(Debug)]
pub(crate) struct Node {
    /// The JVM, when started. A mutex so that `is_running` can take `&self`.
    process: Mutex<Option<JvmProcess>>,
    launch: Launch,
    addr: SocketAddr,
    /// The secure (TLS) client address, when the options ask for one.
    secure_addr: Option<SocketAddr>,
    /// Declared last: removed only after the process is gone.
    dir: TempDir,
}

impl Node {
    /// Creates the data directory; nothing runs yet. The config lives in `<dir>/zoo.cfg` and
    /// the log in `<dir>/zookeeper.log`.
    pub(crate) fn new(
        java: &JavaSetup,
        opts: &Options,
        client_port: u16,
    ) -> Result<Node, TestingError> {
        let dir = tempfile::Builder::new()
            .prefix("zkwarden-zk-")
            .tempdir()
            .map_err(|e| TestingError::io("creating a ZooKeeper data directory", e))?;
        let launch = Launch {
            java: java.java.clone(),
            args: opts.java_args(&java.classpath, &dir.path().join("zoo.cfg")),
            log_path: dir.path().join("zookeeper.log"),
            work_dir: dir.path().to_path_buf(),
        };
        if let Some(jaas) = opts.sasl.jaas_file() {
            let path = dir.path().join(super::config::JAAS_FILE);
            std::fs::write(&path, jaas)
                .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))?;
        }
        let mut secure_addr = None;
        if let Some(tls) = &opts.tls {
            secure_addr = Some(SocketAddr::from((
                Ipv4Addr::LOCALHOST,
                super::ports::free_port()?,
            )));
            for (name, contents) in tls.files() {
                let path = dir.path().join(name);
                std::fs::write(&path, contents)
                    .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))?;
            }
        }
        Ok(Node {
            process: Mutex::new(None),
            launch,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, client_port)),
            secure_addr,
            dir,
        })
    }

    /// The data directory (also holding `zoo.cfg`, `myid` and the log).
    pub(crate) fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory as it goes into `zoo.cfg`.
    pub(crate) fn data_dir_string(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// The log file receiving the JVM's output.
    pub(crate) fn log_path(&self) -> &Path {
        &self.launch.log_path
    }

    /// The client address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The secure (TLS) client address, if the node has one.
    pub(crate) fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// The `zoo.cfg` lines of the secure client port, if the node has one.
    pub(crate) fn tls_config(&self, opts: &Options) -> Vec<(String, String)> {
        match (&opts.tls, self.secure_addr) {
            (Some(tls), Some(addr)) => tls.config(self.data_dir(), addr.port()),
            _ => Vec::new(),
        }
    }

    /// Writes a file into the data directory.
    pub(crate) fn write_file(&self, name: &str, contents: &str) -> Result<(), TestingError> {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, contents)
            .map_err(|e| TestingError::io(format!("writing {}", path.display()), e))
    }

    /// Starts the JVM (killing a previous one first).
    pub(crate) fn launch(&mut self, fresh_log: bool) -> Result<(), TestingError> {
        self.kill();
        let process = JvmProcess::spawn(&self.launch, fresh_log)?;
        *self.slot() = Some(process);
        Ok(())
    }

    /// SIGKILLs the JVM and waits until it is gone; the data directory stays.
    pub(crate) fn kill(&mut self) {
        if let Some(mut process) = self.slot().take() {
            process.kill();
        }
    }

    /// True while the JVM runs.
    pub(crate) fn is_running(&self) -> bool {
        self.slot().as_mut().is_some_and(JvmProcess::is_running)
    }

    /// Sends a four-letter word, or says the server is not running.
    pub(crate) fn four_letter(&self, cmd: &str) -> Result<String, TestingError> {
        if !self.is_running() {
            return Err(TestingError::NotRunning {
                port: self.addr.port(),
            });
        }
        probe::four_letter(self.addr, cmd, probe::USER_TIMEOUT)
    }

    /// The mode `srvr` reports, if the server answers and serves.
    pub(crate) fn mode(&self) -> Option<String> {
        let answer = self.four_letter("srvr").ok()?;
        probe::mode(&answer).map(str::to_owned)
    }

    /// True when the log shows that a port was taken by someone else.
    pub(crate) fn port_clash(&self) -> bool {
        probe::log_contains(self.log_path(), "Address already in use")
    }

    /// Polls until the server is `ready`, the JVM exits, or `deadline` passes. Returns the
    /// last `srvr` mode seen (empty for [`Ready::Imok`]).
    pub(crate) fn wait_ready(
        &self,
        ready: Ready<'_>,
        deadline: Instant,
    ) -> Result<String, TestingError> {
        let started = Instant::now();
        let mut last_answer = String::from("(none yet)");
        loop {
            if let Some(status) = self.exit_status() {
                return Err(TestingError::Exited {
                    status,
                    log_tail: probe::log_tail(self.log_path(), TAIL_LINES),
                });
            }
            match self.probe(ready) {
                Ok(Some(mode)) => return Ok(mode),
                Ok(None) => {}
                Err(answer) => last_answer = answer,
            }
            if Instant::now() >= deadline {
                return Err(TestingError::Timeout {
                    wanted: describe(ready),
                    waited: started.elapsed(),
                    last_answer,
                    log_tail: probe::log_tail(self.log_path(), TAIL_LINES),
                });
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// One readiness check: `Ok(Some(mode))` when ready, `Err(answer)` otherwise.
    fn probe(&self, ready: Ready<'_>) -> Result<Option<String>, String> {
        let ruok = probe::four_letter(self.addr, "ruok", probe::POLL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if ruok != "imok" {
            return Err(format!("ruok: {ruok:?}"));
        }
        let Ready::Mode(wanted) = ready else {
            return Ok(Some(String::new()));
        };
        let srvr = probe::four_letter(self.addr, "srvr", probe::POLL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        match probe::mode(&srvr) {
            Some(mode) if wanted.contains(&mode) => {
                self.check_identity()?;
                Ok(Some(mode.to_owned()))
            }
            _ => Err(srvr.trim().to_owned()),
        }
    }

    /// Makes sure the server answering on our port is ours and not, say, another test
    /// process's server that got the same port: its `conf` must name our data directory.
    fn check_identity(&self) -> Result<(), String> {
        let conf = probe::four_letter(self.addr, "conf", probe::POLL_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if conf.contains(&format!("dataDir={}", self.data_dir().display())) {
            Ok(())
        } else {
            Err(format!(
                "a foreign server answers on {}: {}",
                self.addr,
                conf.trim()
            ))
        }
    }

    /// The JVM's exit status once it has exited; `None` while it runs or was never started.
    fn exit_status(&self) -> Option<String> {
        self.slot().as_mut().and_then(JvmProcess::exit_status)
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<JvmProcess>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn describe(ready: Ready<'_>) -> String {
    match ready {
        Ready::Imok => "ruok answers imok".to_owned(),
        Ready::Mode(modes) => format!("Mode: {}", modes.join("|")),
    }
}
