//! A standalone ZooKeeper server.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::config::{Options, kv, option_setters};
use super::error::TestingError;
use super::java::JavaSetup;
use super::node::{Node, Ready};
use super::ports;
use super::probe;
use super::tls::{TlsClientAuth, TlsMaterial};

/// How many times a start is retried on new ports when a port turned out to be taken.
pub(crate) const PORT_RETRIES: usize = 3;

/// The mode a standalone server reports once it serves.
const STANDALONE: &[&str] = &["standalone"];

/// A standalone ZooKeeper server on a free `127.0.0.1` port, with its own data directory.
///
/// Dropping it kills the JVM and removes the data directory.
#[derive(Debug)]
pub struct ZkServer {
    node: Node,
    opts: Options,
}

/// Configures a [`ZkServer`] before starting it. Made by [`ZkServer::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `.start()` is called"]
pub struct ZkServerBuilder {
    opts: Options,
}

impl ZkServerBuilder {
    /// ZooKeeper's `tickTime` (default 200 ms). Unless set explicitly, the session timeouts
    /// the server accepts are 2 to 20 ticks: 400 ms to 4 s by default.
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.opts.tick_time = tick;
        self
    }

    option_setters!();

    /// Starts the server and returns once it answers `ruok` and `srvr` says
    /// `Mode: standalone`. When the chosen port turns out to be taken, retries on a new one
    /// (up to 3 times).
    ///
    /// # Errors
    ///
    /// [`TestingError::JavaNotFound`] / [`TestingError::JarNotFound`] when ZooKeeper is not
    /// installed; [`TestingError::Exited`] or [`TestingError::Timeout`] (with the end of the
    /// server log) when it does not come up; [`TestingError::Io`] for local I/O failures.
    pub fn start(self) -> Result<ZkServer, TestingError> {
        let java = JavaSetup::detect()?;
        let mut attempt = 0;
        loop {
            let port = ports::free_port()?;
            let node = Node::new(&java, &self.opts, port)?;
            let mut server = ZkServer {
                node,
                opts: self.opts.clone(),
            };
            server.write_config()?;
            match server.launch(true) {
                Ok(()) => return Ok(server),
                Err(_) if attempt < PORT_RETRIES && server.node.port_clash() => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

impl ZkServer {
    /// Starts a server with the default settings; see [`ZkServerBuilder::start`].
    ///
    /// # Errors
    ///
    /// As [`ZkServerBuilder::start`].
    pub fn start() -> Result<ZkServer, TestingError> {
        ZkServer::builder().start()
    }

    /// A builder for a server with non-default settings.
    pub fn builder() -> ZkServerBuilder {
        ZkServerBuilder::default()
    }

    /// `"127.0.0.1:PORT"`, ready for a client's connect string.
    pub fn connect_string(&self) -> String {
        self.addr().to_string()
    }

    /// `"127.0.0.1:SECURE_PORT"`, when the server was built with
    /// [`tls`](ZkServerBuilder::tls).
    pub fn secure_connect_string(&self) -> Option<String> {
        self.secure_addr().map(|a| a.to_string())
    }

    /// The secure (TLS) client address, when the server has one.
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.node.secure_addr()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.node.addr().port()
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        self.node.addr()
    }

    /// The data directory; it also holds `zoo.cfg` and the log.
    pub fn data_dir(&self) -> &Path {
        self.node.data_dir()
    }

    /// The file receiving the server's log (`<data_dir>/zookeeper.log`).
    pub fn log_path(&self) -> &Path {
        self.node.log_path()
    }

    /// Kills the server (SIGKILL) and waits until it is gone. The port and the data
    /// directory are kept for [`restart`](Self::restart). Does nothing when already stopped.
    pub fn stop(&mut self) {
        self.node.kill();
    }

    /// Stops the server if it runs, then starts it again on the same port with the same
    /// data, so znodes and (unexpired) sessions survive. Returns once it serves.
    ///
    /// # Errors
    ///
    /// [`TestingError::Exited`] or [`TestingError::Timeout`] when it does not come back,
    /// for example because another process took the port meanwhile.
    pub fn restart(&mut self) -> Result<(), TestingError> {
        self.launch(false)
    }

    /// True while the server process runs.
    pub fn is_running(&self) -> bool {
        self.node.is_running()
    }

    /// Sends a four-letter word (`ruok`, `srvr`, `stat`, `cons`, `mntr`, `dump`, ...) and
    /// returns the full answer.
    ///
    /// # Errors
    ///
    /// [`TestingError::NotRunning`] when stopped, [`TestingError::Io`] when the server does
    /// not answer.
    pub fn four_letter(&self, cmd: &str) -> Result<String, TestingError> {
        self.node.four_letter(cmd)
    }

    /// The ids of the sessions connected to this server right now (from `cons`).
    ///
    /// # Errors
    ///
    /// As [`four_letter`](Self::four_letter).
    pub fn session_ids(&self) -> Result<Vec<i64>, TestingError> {
        Ok(probe::session_ids(&self.four_letter("cons")?))
    }

    fn write_config(&self) -> Result<(), TestingError> {
        let mut cfg = self
            .opts
            .common_config(&self.node.data_dir_string(), self.port());
        cfg.push(kv("standaloneEnabled", "true"));
        cfg.extend(self.node.tls_config(&self.opts));
        self.node.write_file("zoo.cfg", &self.opts.render(cfg))
    }

    /// Starts the JVM and waits until it serves; kills it again if it does not.
    fn launch(&mut self, fresh_log: bool) -> Result<(), TestingError> {
        self.node.launch(fresh_log)?;
        let deadline = Instant::now() + self.opts.start_timeout;
        match self.node.wait_ready(Ready::Mode(STANDALONE), deadline) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.node.kill();
                Err(e)
            }
        }
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        // The node kills its JVM before its data directory is removed; being explicit here
        // keeps that order independent of field order.
        self.node.kill();
    }
}
