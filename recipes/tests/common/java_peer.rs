//! Running a Java Curator peer next to Rust contenders: class path from the Debian jars,
//! compilation with `javac`, a shared enter/exit log, and its parsing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::OnceCell;

use super::within;

const JAR_DIR: &str = "/usr/share/java";
/// Without these the peer cannot run at all.
const REQUIRED_JARS: &[&str] = &[
    "curator-framework",
    "curator-client",
    "curator-recipes",
    "zookeeper",
    "zookeeper-jute",
    "slf4j-api",
    "guava",
];
/// Used when present (logging quietened, optional dependencies of the above).
const OPTIONAL_JARS: &[&str] = &[
    "slf4j-nop",
    "failureaccess",
    "netty-buffer",
    "netty-codec",
    "netty-common",
    "netty-handler",
    "netty-resolver",
    "netty-transport",
    "netty-transport-native-epoll",
    "netty-transport-native-unix-common",
    "commons-io",
    "commons-lang3",
    // The discovery peer: curator-x-discovery and the JSON library it serializes with.
    "curator-x-discovery",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
];

/// The class path of a Curator peer, or why it cannot be built.
pub fn classpath() -> Result<String, String> {
    let mut jars = Vec::new();
    for name in REQUIRED_JARS {
        let jar = Path::new(JAR_DIR).join(format!("{name}.jar"));
        if !jar.exists() {
            return Err(format!(
                "{} is missing (scripts/install-zookeeper.sh --with-peers installs Curator)",
                jar.display()
            ));
        }
        jars.push(jar);
    }
    for name in OPTIONAL_JARS {
        let jar = Path::new(JAR_DIR).join(format!("{name}.jar"));
        if jar.exists() {
            jars.push(jar);
        }
    }
    Ok(jars
        .iter()
        .map(|j| j.display().to_string())
        .collect::<Vec<_>>()
        .join(":"))
}

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under the system's temporary directory, named after `tag`.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "zkwarden-{tag}-{}-{:x}",
            std::process::id(),
            wall_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiles `tests/java/<source>` into `dir`; `Err` says why it could not. A source that
/// does not compile against present jars is our bug: that panics.
pub async fn compile(classpath: &str, source: &str, dir: &Path) -> Result<(), String> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/java")
        .join(source);
    let output = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg("-cp")
        .arg(classpath)
        .arg(&source)
        .output()
        .await
        .map_err(|e| format!("javac not runnable: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        panic!("javac failed:\n{}", String::from_utf8_lossy(&output.stderr));
    }
}

/// Compiles `tests/java/<source>` into `scratch` and returns the class path to run it with.
/// Curator and a JDK are part of the test setup (`scripts/install-zookeeper.sh
/// --with-peers`): without them the test fails rather than passing without its peer.
pub async fn prepare(source: &str, scratch: &Scratch) -> String {
    let classpath = classpath().unwrap_or_else(|why| panic!("the Curator peer needs: {why}"));
    if let Err(why) = compile(&classpath, source, &scratch.0).await {
        panic!("cannot compile the Curator peer {source}: {why}");
    }
    classpath
}

/// A started Java peer that said `ready`.
pub struct Peer {
    /// The process (killed when dropped).
    pub child: Child,
    /// Its remaining standard output.
    pub lines: Lines<BufReader<ChildStdout>>,
    /// Its standard input (for peers that take commands).
    pub stdin: ChildStdin,
}

impl Peer {
    /// Sends one command line.
    pub async fn send(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to the Java peer");
        self.stdin.flush().await.expect("flush to the Java peer");
    }

    /// The peer's next output line (within the tests' patience).
    pub async fn line(&mut self) -> String {
        within("a line from the Java peer", self.lines.next_line())
            .await
            .expect("read from the Java peer")
            .expect("the Java peer ended")
    }
}

/// Starts `class` from `dir` with `args` and waits for its `ready` line.
pub async fn start(classpath: &str, dir: &Path, class: &str, args: &[String]) -> Peer {
    let mut child = Command::new("java")
        .arg("-cp")
        .arg(format!("{}:{classpath}", dir.display()))
        .arg(class)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Java peer");
    let mut lines = BufReader::new(child.stdout.take().expect("peer stdout")).lines();
    let stdin = child.stdin.take().expect("peer stdin");
    within("the Java peer to connect", async {
        while let Some(line) = lines.next_line().await.expect("peer stdout") {
            if line == "ready" {
                return;
            }
        }
        panic!("the Java peer ended before it was ready");
    })
    .await;
    Peer {
        child,
        lines,
        stdin,
    }
}

/// Nanoseconds since the epoch (the clock the Java peer logs with, too).
pub fn wall_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Appends `<who> <mode> <event> <nanos>` with a single write to a file opened for
/// appending, so lines from every holder land whole and in the order they were written.
pub fn note(log: &Path, who: &str, mode: &str, event: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    file.write_all(format!("{who} {mode} {event} {}\n", wall_nanos()).as_bytes())
        .expect("append to log");
}

/// One parsed log line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The holder (`java-w0`, `rust-r1`, ...).
    pub who: String,
    /// `read`, `write` or `lease`.
    pub mode: String,
    /// Entering (or else leaving) the critical section.
    pub enter: bool,
    /// Wall-clock nanoseconds.
    pub at: u128,
}

impl Entry {
    /// Whether a Java holder wrote the line.
    pub fn is_java(&self) -> bool {
        self.who.starts_with("java")
    }
}

/// Parses a log written with [`note`] (and by the Java peer).
pub fn parse_log(text: &str) -> Vec<Entry> {
    text.lines()
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 4, "malformed log line {line:?}");
            let enter = match parts[2] {
                "enter" => true,
                "exit" => false,
                other => panic!("unknown event {other:?} in {line:?}"),
            };
            Entry {
                who: parts[0].to_owned(),
                mode: parts[1].to_owned(),
                enter,
                at: parts[3].parse().expect("nanos"),
            }
        })
        .collect()
}

/// Compiles `tests/java/<source>` once per test binary, into a directory under cargo's
/// per-target scratch space (`CARGO_TARGET_TMPDIR`, emptied by `cargo clean`), and returns
/// the class path and that directory. Tests of one binary that run the same peer share the
/// compilation instead of each running `javac`.
pub async fn prepare_shared(source: &str) -> (String, PathBuf) {
    type Compiled = Arc<OnceCell<(String, PathBuf)>>;
    static PEERS: StdMutex<Vec<(String, Compiled)>> = StdMutex::new(Vec::new());
    let cell = {
        let mut peers = PEERS.lock().expect("peer table");
        match peers.iter().find(|(name, _)| name == source) {
            Some((_, cell)) => cell.clone(),
            None => {
                let cell = Compiled::default();
                peers.push((source.to_owned(), cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(|| async {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "java-peer-{}-{}-{:x}",
            source.trim_end_matches(".java"),
            std::process::id(),
            wall_nanos()
        ));
        std::fs::create_dir_all(&dir).expect("peer class directory");
        let classpath = classpath().unwrap_or_else(|why| panic!("the Curator peer needs: {why}"));
        if let Err(why) = compile(&classpath, source, &dir).await {
            panic!("cannot compile the Curator peer {source}: {why}");
        }
        (classpath, dir)
    })
    .await
    .clone()
}
