//! Lock chaos tests' tools: `lock_worker` processes and their JSON events, the Curator peer,
//! session files, and the shared log of critical sections with its overlap check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use zkwarden::{SessionId, SessionPassword};

use super::PATIENCE;

/// How long a whole run of workers may take before the test gives up on it.
pub const RUN_PATIENCE: Duration = Duration::from_secs(150);

/// Wall-clock nanoseconds since the Unix epoch (the clock of the workers' log lines).
pub fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The `lock_worker` example next to this test binary (`target/<profile>/examples`).
pub fn worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let binary = profile_dir.join("examples").join("lock_worker");
    assert!(
        binary.exists(),
        "{} is missing: build it first with \
         `cargo build -p zkwarden-recipes --all-features --example lock_worker` \
         (plain `cargo test -p zkwarden-recipes` builds it too; `--test lock_chaos` alone does not, \
         and may leave it stale)",
        binary.display()
    );
    binary
}

pub use super::java_peer::Scratch;

/// One event a worker printed, tagged with who printed it.
pub type Event = Value;

/// Every worker's events, in the order they were read.
pub struct Events {
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    /// Every event received so far.
    pub seen: Vec<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new()
    }
}

impl Events {
    /// An empty bus.
    pub fn new() -> Events {
        let (tx, rx) = mpsc::unbounded_channel();
        Events {
            tx,
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits (up to [`PATIENCE`]) for the next event, from now on, that `pred` accepts.
    pub async fn wait(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        self.wait_from(self.seen.len(), what, pred).await
    }

    /// Like [`Events::wait`], but also accepts events received since `seen[from]`: an event
    /// read while waiting for something else is not missed.
    pub async fn wait_from(
        &mut self,
        from: usize,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> Event {
        if let Some(event) = self.seen.iter().skip(from).find(|e| pred(e)) {
            return event.clone();
        }
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let event = self.rx.recv().await.expect("the bus keeps a sender");
                self.seen.push(event.clone());
                if pred(&event) {
                    return event;
                }
            }
        })
        .await;
        match found {
            Ok(event) => event,
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }

    /// Where the next event will be in [`Events::seen`] (for [`Events::wait_from`]).
    pub fn mark(&self) -> usize {
        self.seen.len()
    }

    /// Takes in every event already received, without waiting.
    pub fn drain(&mut self) {
        while let Ok(event) = self.rx.try_recv() {
            self.seen.push(event);
        }
    }

    /// Events received so far with this `event` name (drain first for the latest).
    pub fn all(&self, name: &str) -> Vec<&Event> {
        self.seen.iter().filter(|e| e["event"] == name).collect()
    }
}

/// Whether `event` is `name` from worker `id` (any worker when `id` is `None`).
pub fn is(event: &Event, name: &str, id: Option<&str>) -> bool {
    event["event"] == name && id.is_none_or(|id| event["id"] == id)
}

/// The `id` field of an event.
pub fn id_of(event: &Event) -> String {
    event["id"].as_str().expect("id").to_owned()
}

/// How to start one `lock_worker`.
#[derive(Clone)]
pub struct WorkerSpec {
    /// `--id`.
    pub id: String,
    /// `--connect`.
    pub connect: String,
    /// `--path`.
    pub path: String,
    /// `--rounds`.
    pub rounds: u32,
    /// `--hold-ms`.
    pub hold_ms: u64,
    /// `--session-timeout-ms`.
    pub session_timeout_ms: u64,
    /// `--safety`.
    pub safety: &'static str,
    /// `--fence-node`.
    pub fence_node: Option<String>,
}

/// A running `lock_worker`, killed if the test ends early.
pub struct Worker {
    /// Its `--id`.
    pub id: String,
    /// The process.
    pub child: Child,
    /// Its `--session-file`.
    pub session_file: PathBuf,
}

impl Worker {
    /// Starts the worker with `log` and a session file in `dir`; its stdout events go to
    /// `events`.
    pub fn spawn(spec: &WorkerSpec, log: &Path, dir: &Path, events: &Events) -> Worker {
        let session_file = dir.join(format!("{}.session", spec.id));
        let mut command = Command::new(worker_binary());
        command
            .arg("--connect")
            .arg(&spec.connect)
            .arg("--path")
            .arg(&spec.path)
            .arg("--id")
            .arg(&spec.id)
            .arg("--rounds")
            .arg(spec.rounds.to_string())
            .arg("--hold-ms")
            .arg(spec.hold_ms.to_string())
            .arg("--log")
            .arg(log)
            .arg("--session-timeout-ms")
            .arg(spec.session_timeout_ms.to_string())
            .arg("--safety")
            .arg(spec.safety)
            .arg("--session-file")
            .arg(&session_file);
        if let Some(node) = &spec.fence_node {
            command.arg("--fence-node").arg(node);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start lock_worker");
        let stdout = child.stdout.take().expect("worker stdout");
        let (tx, id) = (events.tx.clone(), spec.id.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let event = serde_json::from_str(&line).unwrap_or_else(
                    |_| serde_json::json!({ "event": "garbage", "id": id, "line": line }),
                );
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Worker {
            id: spec.id.clone(),
            child,
            session_file,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the worker runs")
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the worker with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.pid());
    }

    /// The session the worker last wrote to its session file.
    pub fn session(&self) -> (SessionId, SessionPassword) {
        read_session_file(&self.session_file)
    }
}

/// The session in a session file (`lock_worker --session-file`, or the Curator peer's).
pub fn read_session_file(file: &Path) -> (SessionId, SessionPassword) {
    let text = std::fs::read_to_string(file).expect("read the session file");
    let record: Value = serde_json::from_str(text.trim()).expect("session file JSON");
    let id = record["session_id"].as_str().expect("session_id");
    let id = u64::from_str_radix(id.trim_start_matches("0x"), 16).expect("hex session id");
    let password = record["password"].as_str().expect("password");
    let bytes = (0..password.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&password[i..i + 2], 16).expect("hex password"))
        .collect::<Vec<u8>>();
    (SessionId(id as i64), SessionPassword::new(bytes))
}

/// Waits for every worker to finish its rounds and exit 0.
pub async fn finish(workers: Vec<Worker>) {
    for mut worker in workers {
        let status = tokio::time::timeout(RUN_PATIENCE, worker.child.wait())
            .await
            .unwrap_or_else(|_| panic!("worker {} did not finish its rounds", worker.id))
            .expect("wait for a worker");
        assert!(status.success(), "worker {} failed: {status}", worker.id);
    }
}

/// Waits (up to [`RUN_PATIENCE`]) for a child process to exit.
pub async fn wait_child(what: &str, child: &mut Child) -> std::process::ExitStatus {
    tokio::time::timeout(RUN_PATIENCE, child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish"))
        .expect("wait for a child process")
}

/// The session id of an event (`"0x.."`), as a number.
pub fn session_of(event: &Event) -> i64 {
    let text = event["session_id"].as_str().expect("session_id");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex session id") as i64
}

// ---------------------------------------------------------------------------------------
// The shared log.

/// How a critical section ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `exit`: the holder finished and released.
    Exit,
    /// `lost`: the holder stopped because the lock may be gone.
    Lost,
}

/// One holder's critical section, from the log.
#[derive(Debug, Clone)]
pub struct Section {
    /// Who held the lock.
    pub who: String,
    /// `enter` time, Unix nanoseconds.
    pub enter: u128,
    /// `exit` or `lost` time.
    pub end: u128,
    /// Which of the two.
    pub ended: End,
}

/// Reads the log into critical sections, sorted by entry. Panics on a malformed log or a
/// section left open.
pub fn sections(log: &Path) -> Vec<Section> {
    let text = std::fs::read_to_string(log).expect("read the log");
    let mut open: BTreeMap<String, u128> = BTreeMap::new();
    let mut done = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [who, what, at] = parts[..] else {
            panic!("malformed log line {line:?}");
        };
        let at: u128 = at.parse().expect("nanos");
        match what {
            "enter" => {
                let before = open.insert(who.to_owned(), at);
                assert!(before.is_none(), "{who} entered twice without leaving");
            }
            "exit" | "lost" => {
                let enter = open
                    .remove(who)
                    .unwrap_or_else(|| panic!("{who} left without entering: {line:?}"));
                assert!(at >= enter, "{who} left before entering");
                done.push(Section {
                    who: who.to_owned(),
                    enter,
                    end: at,
                    ended: if what == "exit" { End::Exit } else { End::Lost },
                });
            }
            other => panic!("unknown event {other:?} in {line:?}"),
        }
    }
    assert!(open.is_empty(), "sections left open: {open:?}");
    done.sort_by_key(|s| s.enter);
    done
}

/// Pairs of sections that overlap in time, among holders `counted` accepts.
pub fn overlaps(sections: &[Section], counted: impl Fn(&str) -> bool) -> Vec<(&Section, &Section)> {
    let mut found = Vec::new();
    for (i, a) in sections.iter().enumerate() {
        for b in &sections[i + 1..] {
            if b.enter >= a.end {
                continue;
            }
            if counted(&a.who) && counted(&b.who) {
                found.push((a, b));
            }
        }
    }
    found
}

/// Asserts that no two counted holders overlap; returns how many sections were checked.
pub fn assert_exclusive(sections: &[Section], counted: impl Fn(&str) -> bool + Copy) -> usize {
    let found = overlaps(sections, counted);
    assert!(
        found.is_empty(),
        "{} overlapping critical sections, first: {:?}",
        found.len(),
        found.first()
    );
    sections.iter().filter(|s| counted(&s.who)).count()
}

/// Hand-off times (a holder's `exit` to the next holder's `enter`), by kind of the two
/// holders (`rust` or `curator`).
pub fn handoffs(sections: &[Section]) -> BTreeMap<String, Vec<Duration>> {
    let kind = |who: &str| if who == "java" { "curator" } else { "rust" };
    let mut by_kind: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for pair in sections.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.ended != End::Exit || b.enter < a.end {
            continue;
        }
        let gap = Duration::from_nanos((b.enter - a.end) as u64);
        by_kind
            .entry(format!("{}->{}", kind(&a.who), kind(&b.who)))
            .or_default()
            .push(gap);
    }
    by_kind
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied()
}

/// One line per hand-off kind: count and median.
pub fn describe_handoffs(sections: &[Section]) -> String {
    handoffs(sections)
        .iter()
        .map(|(kind, gaps)| {
            format!(
                "{kind}: n={} median={:.2?}",
                gaps.len(),
                median(gaps).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------
// The Curator peer.

/// Compiles `tests/java/CuratorLockPeer.java` into `scratch`; returns the class path to run
/// it with (the scratch directory first).
pub async fn compile_curator_peer(scratch: &Scratch) -> String {
    let classpath = super::java_peer::prepare("CuratorLockPeer.java", scratch).await;
    format!("{}:{classpath}", scratch.0.display())
}

/// Starts the Curator peer and waits until it is connected. With `chaos`, the peer writes
/// its session to the file given and reports `enter`, `exit`, `lost` and `session` as
/// events (id `java`) on the bus given.
pub async fn start_curator_peer(
    classpath: &str,
    connect: &str,
    path: &str,
    rounds: u32,
    log: &Path,
    hold_ms: u64,
    chaos: Option<(&Path, &Events)>,
) -> Child {
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(classpath)
        .arg("CuratorLockPeer")
        .arg(connect)
        .arg(path)
        .arg(rounds.to_string())
        .arg(log)
        .arg(hold_ms.to_string());
    if let Some((session_file, _)) = chaos {
        command.arg(session_file);
    }
    let mut peer = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Curator peer");
    let mut lines = BufReader::new(peer.stdout.take().expect("peer stdout")).lines();
    super::within("the Curator peer to connect", async {
        while let Some(line) = lines.next_line().await.expect("peer stdout") {
            if line == "ready" {
                return;
            }
        }
        panic!("the Curator peer ended before it was ready");
    })
    .await;
    // Keep reading so the peer never blocks on a full pipe.
    let tx = chaos.map(|(_, events)| events.tx.clone());
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(tx) = &tx else { continue };
            let (word, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let event = match (word, arg.parse::<u64>()) {
                ("session", _) => {
                    serde_json::json!({ "event": "session", "id": "java", "session_id": arg })
                }
                (_, Ok(round)) => {
                    serde_json::json!({ "event": word, "id": "java", "round": round })
                }
                _ => serde_json::json!({ "event": word, "id": "java" }),
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    peer
}
