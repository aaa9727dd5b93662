//! Settings shared by [`ZkServerBuilder`](super::ZkServerBuilder) and
//! [`ZkEnsembleBuilder`](super::ZkEnsembleBuilder), and the `zoo.cfg` / JVM flags they produce.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

/// Builder settings common to a single server and an ensemble.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// ZooKeeper's `tickTime`.
    pub(crate) tick_time: Duration,
    /// `minSessionTimeout`; ZooKeeper's default is 2 ticks.
    pub(crate) min_session_timeout: Option<Duration>,
    /// `maxSessionTimeout`; ZooKeeper's default is 20 ticks.
    pub(crate) max_session_timeout: Option<Duration>,
    /// Lines added to `zoo.cfg`; a key already present is replaced.
    pub(crate) extra_config: Vec<(String, String)>,
    /// Flags added to the JVM command line.
    pub(crate) jvm_args: Vec<String>,
    /// How long a start or restart may take.
    pub(crate) start_timeout: Duration,
    /// A secure client port with these certificates.
    pub(crate) tls: Option<super::tls::ServerTls>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick_time: Duration::from_millis(200),
            min_session_timeout: None,
            max_session_timeout: None,
            extra_config: Vec::new(),
            jvm_args: Vec::new(),
            start_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// The JVM flags every server gets: small heap, quick start, quiet, no admin server; then the
/// builder's own flags, then the class path and the main class.
const BASE_JVM_ARGS: &[&str] = &[
    "-Xmx256m",
    "-Xms16m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    // No /tmp/hsperfdata_<user> file per JVM.
    "-XX:-UsePerfData",
    "-Djava.net.preferIPv4Stack=true",
    "-Dzookeeper.admin.enableServer=false",
    "-Dzookeeper.jmx.log4j.disable=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
];

/// ZooKeeper's entry point for both standalone servers and quorum peers.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

impl Options {
    /// `zoo.cfg` lines every server gets, standalone or not.
    pub(crate) fn common_config(&self, data_dir: &str, client_port: u16) -> Vec<(String, String)> {
        let mut cfg = vec![
            kv("tickTime", self.tick_time.as_millis()),
            kv("dataDir", data_dir),
            kv("clientPort", client_port),
            kv("clientPortAddress", "127.0.0.1"),
            kv("4lw.commands.whitelist", "*"),
            kv("admin.enableServer", "false"),
            // Tests do not survive power loss: skip fsync, and keep log files small.
            kv("forceSync", "no"),
            kv("preAllocSize", 1024),
        ];
        if let Some(min) = self.min_session_timeout {
            cfg.push(kv("minSessionTimeout", min.as_millis()));
        }
        if let Some(max) = self.max_session_timeout {
            cfg.push(kv("maxSessionTimeout", max.as_millis()));
        }
        cfg
    }

    /// Renders `zoo.cfg`: `base`, with keys from `extra_config` replacing equal keys in place
    /// and the others appended.
    pub(crate) fn render(&self, mut base: Vec<(String, String)>) -> String {
        for (key, value) in &self.extra_config {
            match base.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1.clone_from(value),
                None => base.push((key.clone(), value.clone())),
            }
        }
        base.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }

    /// The java command line after `java`, ending with the config file.
    pub(crate) fn java_args(&self, classpath: &OsStr, config_file: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = BASE_JVM_ARGS.iter().map(OsString::from).collect();
        args.extend(self.jvm_args.iter().map(OsString::from));
        args.push("-cp".into());
        args.push(classpath.to_owned());
        args.push(MAIN_CLASS.into());
        args.push(config_file.as_os_str().to_owned());
        args
    }
}

/// One `key=value` line.
pub(crate) fn kv(key: &str, value: impl ToString) -> (String, String) {
    (key.to_owned(), value.to_string())
}
