//! Finding a Java runtime and the ZooKeeper jars.
//!
//! Debian's `zkEnv.sh` puts only `/usr/share/java/zookeeper.jar` on the class path and lets
//! the jar's manifest (`Class-Path:`) pull in its dependencies. That manifest names
//! `slf4j-api` but no slf4j binding, so the server would log nowhere. We therefore list the
//! jars the server needs explicitly and add `slf4j-simple`, which logs to stderr; stderr is
//! redirected to a log file in the server's data directory.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::error::TestingError;

/// Environment variable that replaces the computed class path entirely.
pub const CLASSPATH_ENV: &str = "ZOOKEEPER_CLASSPATH";

/// Where Debian installs jars.
const DEBIAN_JAR_DIR: &str = "/usr/share/java";

/// Jars added after `zookeeper.jar` when present: the dependencies its Debian manifest lists,
/// minus the Jetty and Jackson jars that only the (disabled) admin server uses, plus the netty
/// jars that `NettyServerCnxnFactory` needs when a test selects it.
const OPTIONAL_JARS: &[&str] = &[
    "zookeeper-jute.jar",
    "slf4j-api.jar",
    "commons-cli.jar",
    "commons-io.jar",
    "metrics-core.jar",
    "snappy-java.jar",
    "netty-buffer.jar",
    "netty-codec.jar",
    "netty-common.jar",
    "netty-handler.jar",
    "netty-resolver.jar",
    "netty-transport.jar",
    "netty-transport-native-epoll.jar",
    "netty-transport-native-unix-common.jar",
];

/// slf4j bindings in order of preference: `simple` logs to stderr (our log file); `nop`
/// at least silences the "no binding" warning.
const SLF4J_BINDINGS: &[&str] = &["slf4j-simple.jar", "slf4j-nop.jar"];

/// How to launch a ZooKeeper JVM: the `java` executable and the class path.
#[derive(Debug, Clone)]
pub(crate) struct JavaSetup {
    /// The `java` executable.
    pub(crate) java: PathBuf,
    /// The `-cp` argument.
    pub(crate) classpath: OsString,
}

impl JavaSetup {
    /// Locates `java` and builds the class path.
    ///
    /// # Errors
    ///
    /// [`TestingError::JavaNotFound`] or [`TestingError::JarNotFound`], both naming
    /// `scripts/install-zookeeper.sh`.
    pub(crate) fn detect() -> Result<JavaSetup, TestingError> {
        Ok(JavaSetup {
            java: find_java()?,
            classpath: classpath()?,
        })
    }
}

/// `$JAVA_HOME/bin/java`, else `java` on `$PATH`, else `/usr/bin/java`.
fn find_java() -> Result<PathBuf, TestingError> {
    let mut candidates = Vec::new();
    if let Some(home) = env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        candidates.push(Path::new(&home).join("bin").join("java"));
    }
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(env::split_paths(&path).map(|dir| dir.join("java")));
    }
    candidates.push(PathBuf::from("/usr/bin/java"));

    candidates
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .ok_or_else(|| TestingError::JavaNotFound {
            searched: "$JAVA_HOME/bin/java, $PATH, /usr/bin/java".to_owned(),
        })
}

/// `$ZOOKEEPER_CLASSPATH` when set, otherwise the Debian jars that exist.
fn classpath() -> Result<OsString, TestingError> {
    if let Some(cp) = env::var_os(CLASSPATH_ENV).filter(|cp| !cp.is_empty()) {
        return Ok(cp);
    }
    let dir = Path::new(DEBIAN_JAR_DIR);
    let server_jar = dir.join("zookeeper.jar");
    if !server_jar.is_file() {
        return Err(TestingError::JarNotFound { path: server_jar });
    }
    let mut jars = vec![server_jar];
    jars.extend(
        OPTIONAL_JARS
            .iter()
            .map(|name| dir.join(name))
            .filter(|p| p.is_file()),
    );
    if let Some(binding) = SLF4J_BINDINGS
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
    {
        jars.push(binding);
    }
    env::join_paths(&jars).map_err(|e| {
        TestingError::io(
            "building the ZooKeeper class path",
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        )
    })
}
