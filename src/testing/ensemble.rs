//! A ZooKeeper ensemble of quorum peers on loopback.

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::config::{Options, kv, option_setters};
use super::error::TestingError;
use super::java::JavaSetup;
use super::node::{Node, Ready};
use super::ports;
use super::probe;
use super::server::PORT_RETRIES;
use super::tls::{TlsClientAuth, TlsMaterial};

/// The modes of a member that is part of a working quorum.
const IN_QUORUM: &[&str] = &["leader", "follower"];
/// The mode of a member serving reads without a quorum (`-Dreadonlymode.enabled=true`).
const READ_ONLY: &[&str] = &["read-only"];

/// `n` ZooKeeper servers (`QuorumPeerMain`) forming one ensemble on `127.0.0.1`.
///
/// Member `i` (0-based) has `myid` `i + 1`, its own data directory and free client, quorum
/// and election ports. Dropping the ensemble kills every member and removes the data.
#[derive(Debug)]
pub struct ZkEnsemble {
    members: Vec<Node>,
    /// True for a spare member that has not been started yet (not in any configuration).
    dormant: Vec<bool>,
    /// Member `i`'s line in a dynamic configuration (`server.N=...;client`).
    specs: Vec<String>,
    opts: Options,
    read_only: bool,
}

/// Configures a [`ZkEnsemble`] before starting it. Made by [`ZkEnsemble::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `.start(n)` is called"]
pub struct ZkEnsembleBuilder {
    opts: Options,
    read_only: bool,
    reconfig: bool,
    spares: usize,
}

impl ZkEnsembleBuilder {
    /// ZooKeeper's `tickTime` (default 200 ms); session timeouts default to 2 to 20 ticks.
    /// `initLimit` is 20 ticks and `syncLimit` 10 ticks unless set with
    /// [`extra_config`](Self::extra_config).
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.opts.tick_time = tick;
        self
    }

    option_setters!();

    /// Lets members that lost the quorum keep serving reads to clients that allow it
    /// (`-Dreadonlymode.enabled=true`). Off by default.
    ///
    /// Also sets `localSessionsEnabled=true` (replaceable with
    /// [`extra_config`](Self::extra_config)): since ZooKeeper 3.7 a read-only server creates
    /// only local sessions and refuses to resume a global one, so without local sessions it
    /// would serve nobody. With them, a session stays local to the member that made it until
    /// it creates an ephemeral node. The `isro` four-letter word clients use to find a
    /// read-write member again is allowed, as every other one.
    pub fn read_only_mode(mut self, enabled: bool) -> Self {
        self.read_only = enabled;
        self
    }

    /// Allows dynamic reconfiguration (`reconfigEnabled=true`) and keeps the membership in a
    /// dynamic config file, each member listed with its client address (see
    /// [`ZkEnsemble::member_spec`]), as ZooKeeper's `reconfig` needs. Off by default: a
    /// `reconfig` then fails `ReconfigDisabled`.
    ///
    /// A reconfig also needs write permission on `/zookeeper/config`: give the ensemble a
    /// [`superuser`](Self::superuser) and authenticate as it.
    pub fn reconfig_enabled(mut self, enabled: bool) -> Self {
        self.reconfig = enabled;
        self
    }

    /// Adds `count` spare members after the `n` that `start(n)` starts: they get ports, a
    /// data directory and a [`member_spec`](ZkEnsemble::member_spec) (indexes `n` to
    /// `n + count - 1`) but do not run and are in no configuration until
    /// [`ZkEnsemble::start_spare`] starts one, which a `reconfig` then adds. Needs
    /// [`reconfig_enabled`](Self::reconfig_enabled).
    pub fn spare_members(mut self, count: usize) -> Self {
        self.spares = count;
        self
    }

    /// Makes `super` with `password` ZooKeeper's superuser (scheme `digest`, credentials
    /// `super:password`), who passes every ACL check, `/zookeeper/config`'s included. Only
    /// the password's digest reaches the servers' command line.
    pub fn superuser(mut self, password: &str) -> Self {
        self.opts.jvm_args.push(format!(
            "-Dzookeeper.DigestAuthenticationProvider.superDigest={}",
            crate::acl::digest_id("super", password)
        ));
        self
    }

    /// Starts `n` members and returns once every one serves as leader or follower and
    /// exactly one is the leader. Retries on new ports (up to 3 times) when a port turned
    /// out to be taken.
    ///
    /// # Errors
    ///
    /// [`TestingError::EmptyEnsemble`] for `n == 0`; [`TestingError::JavaNotFound`] /
    /// [`TestingError::JarNotFound`] when ZooKeeper is not installed;
    /// [`TestingError::Exited`], [`TestingError::Timeout`] or [`TestingError::NoLeader`]
    /// when the ensemble does not form; [`TestingError::Io`] for local I/O failures.
    pub fn start(self, n: usize) -> Result<ZkEnsemble, TestingError> {
        if n == 0 {
            return Err(TestingError::EmptyEnsemble);
        }
        if self.spares > 0 && !self.reconfig {
            return Err(TestingError::SparesNeedReconfig);
        }
        let java = JavaSetup::detect()?;
        let mut opts = self.opts;
        if self.read_only {
            opts.jvm_args.push("-Dreadonlymode.enabled=true".to_owned());
        }
        let mut attempt = 0;
        loop {
            let mut ensemble = ZkEnsemble::create(
                &java,
                opts.clone(),
                self.read_only,
                self.reconfig,
                (n, self.spares),
            )?;
            match ensemble.launch_all() {
                Ok(()) => return Ok(ensemble),
                Err(_)
                    if attempt < PORT_RETRIES && ensemble.members.iter().any(Node::port_clash) =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl ZkEnsemble {
    /// Starts an ensemble of `n` members with the default settings; see
    /// [`ZkEnsembleBuilder::start`].
    ///
    /// # Errors
    ///
    /// As [`ZkEnsembleBuilder::start`].
    pub fn start(n: usize) -> Result<ZkEnsemble, TestingError> {
        ZkEnsemble::builder().start(n)
    }

    /// A builder for an ensemble with non-default settings.
    pub fn builder() -> ZkEnsembleBuilder {
        ZkEnsembleBuilder::default()
    }

    /// The number of members, running or not, spares included.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: an ensemble has at least one member. (Here for clippy's `len` rule.)
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member's `127.0.0.1:PORT`, comma separated, in member order (spares only once
    /// started).
    pub fn connect_string(&self) -> String {
        let hosts: Vec<String> = self
            .members
            .iter()
            .zip(&self.dormant)
            .filter(|(_, dormant)| !**dormant)
            .map(|(m, _)| m.addr().to_string())
            .collect();
        hosts.join(",")
    }

    /// Starts spare member `i` (see [`ZkEnsembleBuilder::spare_members`]) with a dynamic
    /// configuration naming the current members, as a running member reports them, plus
    /// itself, which is how ZooKeeper wants a server that is about to be added. Returns once
    /// it has synced with the leader (it serves as a follower without a vote); then
    /// `Reconfig::incremental([member_spec(i)], [])` makes it a member.
    ///
    /// # Errors
    ///
    /// [`TestingError::NoSuchMember`] when `i` is out of range; [`TestingError::NotASpare`]
    /// when member `i` is not a spare waiting to join; [`TestingError::NotRunning`] when no
    /// member runs to ask for the configuration; [`TestingError::Exited`] or
    /// [`TestingError::Timeout`] when the spare does not join in time.
    pub fn start_spare(&mut self, i: usize) -> Result<(), TestingError> {
        self.member(i)?;
        if !self.dormant[i] {
            return Err(TestingError::NotASpare { index: i });
        }
        let current = self.current_membership()?;
        let mut dynamic: String = current
            .iter()
            .filter(|line| !line.starts_with(&format!("server.{}=", i + 1)))
            .map(|line| format!("{line}\n"))
            .collect();
        dynamic.push_str(&format!("{}\n", self.specs[i]));
        let deadline = Instant::now() + self.opts.start_timeout;
        let member = self.member_mut(i)?;
        member.write_file("zoo.cfg.dynamic", &dynamic)?;
        member.launch(true)?;
        member.wait_ready(Ready::Mode(IN_QUORUM), deadline)?;
        self.dormant[i] = false;
        Ok(())
    }

    /// The `server.N=` lines of the configuration a running member reports (`conf`).
    fn current_membership(&self) -> Result<Vec<String>, TestingError> {
        let mut last = None;
        for (i, member) in self.members.iter().enumerate() {
            if self.dormant[i] || !member.is_running() {
                continue;
            }
            match member.four_letter("conf") {
                Ok(conf) => {
                    let lines: Vec<String> = conf
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with("server."))
                        .map(str::to_owned)
                        .collect();
                    if !lines.is_empty() {
                        return Ok(lines);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(TestingError::NotRunning {
            port: self.members.first().map_or(0, |m| m.addr().port()),
        }))
    }

    /// Every member's secure `127.0.0.1:PORT`, comma separated, in member order, when the
    /// ensemble was built with [`tls`](ZkEnsembleBuilder::tls).
    pub fn secure_connect_string(&self) -> Option<String> {
        let hosts: Option<Vec<String>> = self
            .members
            .iter()
            .map(|m| m.secure_addr().map(|a| a.to_string()))
            .collect();
        hosts.map(|h| h.join(","))
    }

    /// Member `i`'s secure (TLS) client address, if it has one (and `i` is in range).
    pub fn secure_addr(&self, i: usize) -> Option<SocketAddr> {
        self.members.get(i).and_then(Node::secure_addr)
    }

    /// The member listening on `addr`, plain or secure: for example a client's
    /// [`connected_server`](crate::client::Client::connected_server).
    pub fn member_at(&self, addr: SocketAddr) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.addr() == addr || m.secure_addr() == Some(addr))
    }

    /// Member `i`'s `127.0.0.1:PORT` alone.
    ///
    /// # Panics
    ///
    /// When `i >= self.len()`, like slice indexing.
    pub fn member_connect_string(&self, i: usize) -> String {
        self.addr(i).to_string()
    }

    /// Member `i`'s client address.
    ///
    /// # Panics
    ///
    /// When `i >= self.len()`, like slice indexing.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].addr()
    }

    /// Member `i`'s line in a dynamic configuration,
    /// `server.ID=127.0.0.1:QUORUM:ELECTION:participant;127.0.0.1:CLIENT`: what a
    /// [`Reconfig`](crate::Reconfig) names to add it back after removing it.
    ///
    /// # Panics
    ///
    /// When `i >= self.len()`, like slice indexing.
    pub fn member_spec(&self, i: usize) -> &str {
        &self.specs[i]
    }

    /// Member `i`'s data directory (with its `zoo.cfg`, `myid` and log), if it exists.
    pub fn data_dir(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(Node::data_dir)
    }

    /// Member `i`'s log file, if the member exists.
    pub fn log_path(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(Node::log_path)
    }

    /// Kills member `i` with SIGKILL and waits until it is gone; its ports and data stay for
    /// [`restart`](Self::restart). Killing a stopped member does nothing.
    ///
    /// # Errors
    ///
    /// [`TestingError::NoSuchMember`] when `i` is out of range.
    pub fn kill(&mut self, i: usize) -> Result<(), TestingError> {
        self.member_mut(i)?.kill();
        Ok(())
    }

    /// Starts member `i` again (killing it first if it runs) with the same ports and data.
    ///
    /// Returns once the member answers `ruok` and then:
    /// * when a majority of members is running (this one included), once it has joined the
    ///   quorum as leader or follower;
    /// * otherwise, with [read-only mode](ZkEnsembleBuilder::read_only_mode), once it serves
    ///   as `read-only`;
    /// * otherwise right after `ruok`, since it cannot serve without a quorum.
    ///
    /// # Errors
    ///
    /// [`TestingError::NoSuchMember`] when `i` is out of range; [`TestingError::Exited`] or
    /// [`TestingError::Timeout`] when the member does not reach that state in time.
    pub fn restart(&mut self, i: usize) -> Result<(), TestingError> {
        let deadline = Instant::now() + self.opts.start_timeout;
        self.member_mut(i)?.launch(false)?;
        let member = &self.members[i];
        member.wait_ready(Ready::Imok, deadline)?;
        let running = self.members.iter().filter(|m| m.is_running()).count();
        if running > self.members.len() / 2 {
            member.wait_ready(Ready::Mode(IN_QUORUM), deadline)?;
        } else if self.read_only {
            member.wait_ready(Ready::Mode(READ_ONLY), deadline)?;
        }
        Ok(())
    }

    /// Waits until member `i` serves in read-only mode (it lost the quorum, and the ensemble
    /// has [read-only mode](ZkEnsembleBuilder::read_only_mode)), up to the start timeout.
    /// A member that just lost its quorum may still serve read-write for a moment, and then
    /// takes a few ticks to open read-only: wait for this before expecting a client to get a
    /// read-only session.
    ///
    /// # Errors
    ///
    /// [`TestingError::NoSuchMember`] when `i` is out of range; [`TestingError::Exited`] or
    /// [`TestingError::Timeout`] when the member does not get there in time.
    pub fn wait_read_only(&self, i: usize) -> Result<(), TestingError> {
        let deadline = Instant::now() + self.opts.start_timeout;
        self.member(i)?
            .wait_ready(Ready::Mode(READ_ONLY), deadline)
            .map(|_| ())
    }

    /// True while member `i` runs (false for an index out of range).
    pub fn is_running(&self, i: usize) -> bool {
        self.members.get(i).is_some_and(Node::is_running)
    }

    /// The mode member `i` reports in `srvr` (`leader`, `follower`, `read-only`, ...), or
    /// `None` when it is stopped, does not answer or does not serve.
    pub fn mode(&self, i: usize) -> Option<String> {
        self.members.get(i).and_then(Node::mode)
    }

    /// The member that is leader right now, if any member says so.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len()).find(|&i| self.mode(i).as_deref() == Some("leader"))
    }

    /// The running member that holds a connection for session `session_id` (from `cons`).
    pub fn member_of_session(&self, session_id: i64) -> Option<usize> {
        self.members.iter().position(|m| {
            m.four_letter("cons")
                .is_ok_and(|cons| probe::session_ids(&cons).contains(&session_id))
        })
    }

    /// Sends a four-letter word to member `i` and returns the full answer.
    ///
    /// # Errors
    ///
    /// [`TestingError::NoSuchMember`], [`TestingError::NotRunning`], or
    /// [`TestingError::Io`] when the member does not answer.
    pub fn four_letter(&self, i: usize, cmd: &str) -> Result<String, TestingError> {
        self.member(i)?.four_letter(cmd)
    }

    /// Makes the members' directories and configs; starts nothing.
    fn create(
        java: &JavaSetup,
        opts: Options,
        read_only: bool,
        reconfig: bool,
        (n, spares): (usize, usize),
    ) -> Result<ZkEnsemble, TestingError> {
        let ports = ports::free_ports(3 * (n + spares))?;
        let peer = |i: usize, p: &[u16]| {
            kv(
                &format!("server.{}", i + 1),
                format!("127.0.0.1:{}:{}", p[1], p[2]),
            )
        };
        let peers: Vec<(String, String)> = ports
            .chunks(3)
            .enumerate()
            .map(|(i, p)| peer(i, p))
            .collect();
        // With the client address in each line, a reconfig can carry it to every member.
        let specs: Vec<String> = ports
            .chunks(3)
            .enumerate()
            .map(|(i, p)| {
                let (key, value) = peer(i, p);
                format!("{key}={value}:participant;127.0.0.1:{}", p[0])
            })
            .collect();
        // Spares are in no configuration until they are started.
        let dynamic: String = specs[..n].iter().map(|line| format!("{line}\n")).collect();
        let mut members = Vec::with_capacity(n);
        for (i, p) in ports.chunks(3).enumerate() {
            let node = Node::new(java, &opts, p[0])?;
            let mut cfg = opts.common_config(&node.data_dir_string(), p[0]);
            cfg.extend([
                kv("initLimit", 20),
                kv("syncLimit", 10),
                kv("reconfigEnabled", reconfig.to_string()),
                kv("standaloneEnabled", "false"),
            ]);
            if read_only {
                cfg.push(kv("localSessionsEnabled", "true"));
            }
            if reconfig {
                // The client address lives in the dynamic file; the server refuses a static
                // one beside it that differs, so it is left out here.
                cfg.retain(|(k, _)| k != "clientPort" && k != "clientPortAddress");
                node.write_file("zoo.cfg.dynamic", &dynamic)?;
                cfg.push(kv(
                    "dynamicConfigFile",
                    format!("{}/zoo.cfg.dynamic", node.data_dir_string()),
                ));
            } else {
                cfg.extend(peers.iter().cloned());
            }
            cfg.extend(node.tls_config(&opts));
            node.write_file("zoo.cfg", &opts.render(cfg))?;
            node.write_file("myid", &format!("{}\n", i + 1))?;
            members.push(node);
        }
        let dormant = (0..n + spares).map(|i| i >= n).collect();
        Ok(ZkEnsemble {
            members,
            dormant,
            specs,
            opts,
            read_only,
        })
    }

    /// Starts every member and waits for a quorum with exactly one leader.
    fn launch_all(&mut self) -> Result<(), TestingError> {
        let started = Instant::now();
        let deadline = started + self.opts.start_timeout;
        let dormant = &self.dormant;
        for (member, _) in self.members.iter_mut().zip(dormant).filter(|(_, d)| !**d) {
            member.launch(true)?;
        }
        for (member, _) in self.members.iter().zip(dormant).filter(|(_, d)| !**d) {
            member.wait_ready(Ready::Mode(IN_QUORUM), deadline)?;
        }
        loop {
            let modes: Vec<Option<String>> = (0..self.len()).map(|i| self.mode(i)).collect();
            let leaders = modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count();
            if leaders == 1 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestingError::NoLeader {
                    waited: started.elapsed(),
                    modes: format!("{modes:?}"),
                });
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn member(&self, i: usize) -> Result<&Node, TestingError> {
        let len = self.len();
        self.members
            .get(i)
            .ok_or(TestingError::NoSuchMember { index: i, len })
    }

    fn member_mut(&mut self, i: usize) -> Result<&mut Node, TestingError> {
        let len = self.len();
        self.members
            .get_mut(i)
            .ok_or(TestingError::NoSuchMember { index: i, len })
    }
}

impl Drop for ZkEnsemble {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
    }
}
