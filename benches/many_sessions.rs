//! Many idle sessions in one process against one server, zkwarden beside the
//! `zookeeper-client` crate ("kezhuw") in the same run (issue 14):
//!
//! - client memory: resident set growth per open session (goal: at most 10 KiB);
//! - recovery: the server is killed and restarted on the same port and data (so every session
//!   survives); the time from the restart until every session is connected again (goal:
//!   within 2 × the session timeout T);
//! - the storm: the busiest 100 ms window of TCP connection attempts from the moment the
//!   server is killed until all are back (goal: at most 5% of the sessions), and the busiest
//!   100 ms window of completed reconnections.
//!
//! ```text
//! scripts/many-sessions.sh                        # 10,000 sessions per client, T = 30 s
//! SESSIONS=2000 CLIENTS=zkwarden scripts/many-sessions.sh
//! OUTAGE_SECS=10 CLIENTS="zkwarden zkwarden-spread" scripts/many-sessions.sh
//! ```
//!
//! Clients: `zkwarden` (the defaults), `zkwarden-spread` (the settings docs/operations.md
//! gives for spreading a full restart's attempts thinly: `reconnect_delay`
//! `SPREAD_DELAY_MS`, default 6,000 ms, and round pauses from `SPREAD_BACKOFF_MS`, default
//! 6,000 ms, held there), `kezhuw`. `OUTAGE_SECS` keeps the server down that long after the
//! kill (default 0: restarted at once, which takes a second or two).
//!
//! Each client runs in a child process of its own (this binary with `--child CLIENT`), so its
//! resident set is its own, against a fresh server (so one client's leftover sessions do not
//! burden the next); the parent owns the server and the clock. Connection attempts are
//! counted by the kernel (`ActiveOpens` in /proc/net/snmp, sampled every 2 ms): that counter
//! covers the whole network namespace, so other work on the machine opening connections at the
//! same time shows up too (a few per 100 ms at most on a build machine, against thousands in a
//! storm). It only prints; CI only builds it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use zkwarden::testing::ZkServer;

/// How many connections a child opens at once (the server's accept backlog is finite).
const OPEN_CONCURRENCY: usize = 200;
/// The window the storm is measured in.
const WINDOW: Duration = Duration::from_millis(100);

struct Settings {
    sessions: usize,
    timeout: Duration,
    /// How long the server stays down after the kill, before its restart begins.
    outage: Duration,
    /// `zkwarden-spread`'s `reconnect_delay`.
    spread_delay: Duration,
    /// `zkwarden-spread`'s first pause between rounds, and its cap.
    spread_backoff: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Settings {
            sessions: number("SESSIONS", 10_000) as usize,
            timeout: Duration::from_secs(number("SESSION_TIMEOUT_SECS", 30)),
            outage: Duration::from_secs(number("OUTAGE_SECS", 0)),
            spread_delay: Duration::from_millis(number("SPREAD_DELAY_MS", 6_000)),
            spread_backoff: Duration::from_millis(number("SPREAD_BACKOFF_MS", 6_000)),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().position(|a| a == "--child") {
        Some(i) => child::run(args.get(i + 1).map(String::as_str), args.get(i + 2)),
        None => parent(),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("many_sessions: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lets this process (and the server it starts, which inherits the limit) hold a descriptor
/// per session.
fn raise_fd_limit(needed: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit: {e}"))?;
    if hard < needed {
        return Err(format!(
            "{needed} file descriptors needed, the hard limit is {hard} (raise it, or set SESSIONS lower)"
        ));
    }
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| format!("setrlimit: {e}"))?;
    }
    Ok(())
}

/// One line of a child's conversation.
fn read_line(from: &mut BufReader<ChildStdout>) -> Result<String, String> {
    let mut line = String::new();
    match from.read_line(&mut line) {
        Ok(0) => Err("the child exited early (its errors are above)".into()),
        Ok(_) => Ok(line.trim().to_owned()),
        Err(e) => Err(format!("reading from the child: {e}")),
    }
}

/// The value after `key` in a `key value key value ...` line.
fn field(line: &str, key: &str) -> Result<f64, String> {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            return words
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no number after {key} in {line:?}"));
        }
    }
    Err(format!("no {key} in {line:?}"))
}

/// The kernel's count of active TCP opens (connect() calls that sent a SYN) so far.
fn active_opens() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let names = tcp.next()?.split_whitespace();
    let values = tcp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "ActiveOpens")
        .and_then(|(_, value)| value.parse().ok())
}

/// Samples [`active_opens`] every 2 ms on a thread of its own until stopped.
struct OpenCounter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Instant, u64)>>,
}

impl OpenCounter {
    fn start() -> OpenCounter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(count) = active_opens() {
                    samples.push((Instant::now(), count));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            samples
        });
        OpenCounter { stop, thread }
    }

    /// The most connection attempts within any [`WINDOW`], when that window began (after
    /// the counting started), the total, and the attempts in each [`WINDOW`] after the start
    /// (where the storm is: the first rounds while the server is down, or later ones).
    fn finish(self, restarted: Instant) -> Storm {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.thread.join().unwrap_or_default();
        let Some(&(first_at, first_count)) = samples.first() else {
            return Storm::default();
        };
        let mut storm = Storm::default();
        let mut end = 0;
        for (i, &(start, at_start)) in samples.iter().enumerate() {
            end = end.max(i);
            while end + 1 < samples.len() && samples[end + 1].0 <= start + WINDOW {
                end += 1;
            }
            let in_window = samples[end].1.saturating_sub(at_start);
            if start >= restarted {
                storm.busiest_after_restart = storm.busiest_after_restart.max(in_window);
            }
            if in_window > storm.busiest {
                storm.busiest = in_window;
                storm.busiest_at = start.duration_since(first_at);
            }
        }
        for &(at, count) in &samples {
            let slot = (at.duration_since(first_at).as_millis() / WINDOW.as_millis()) as usize;
            storm
                .per_window
                .resize(storm.per_window.len().max(slot + 1), first_count);
            storm.per_window[slot] = count;
        }
        // Cumulative counts at each window's last sample, to counts within each window.
        let mut before = first_count;
        for slot in &mut storm.per_window {
            let at_end = (*slot).max(before);
            *slot = at_end - before;
            before = at_end;
        }
        storm.total = before - first_count;
        storm
    }
}

/// Connection attempts from the kill until every session is back.
#[derive(Default)]
struct Storm {
    busiest: u64,
    busiest_at: Duration,
    /// The busiest window that began once the server was serving again: the herd it meets
    /// (the windows before are attempts on a closed port, which the kernel refuses).
    busiest_after_restart: u64,
    total: u64,
    per_window: Vec<u64>,
}

/// A child process running one client's sessions.
struct ChildRun {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl ChildRun {
    fn spawn(client: &str, connect: &str, settings: &Settings) -> Result<ChildRun, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(["--child", client, connect])
            .env("SESSIONS", settings.sessions.to_string())
            .env(
                "SESSION_TIMEOUT_SECS",
                settings.timeout.as_secs().to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning the {client} child: {e}"))?;
        let to = child.stdin.take().ok_or("no child stdin")?;
        let from = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
        Ok(ChildRun { child, to, from })
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.to, "{line}")
            .and_then(|()| self.to.flush())
            .map_err(|e| format!("writing to the child: {e}"))
    }
}

/// One client's figures.
struct Figures {
    client: String,
    open_secs: f64,
    rss_per_session_kib: f64,
    back_after_restart_secs: f64,
    back_after_kill_secs: f64,
    attempts_busiest: u64,
    attempts_busiest_after_restart: u64,
    attempts_total: u64,
    reconnects_busiest: f64,
    not_back: f64,
}

/// A standalone server for many sessions: no per-address connection limit, room for the
/// session objects, the log not forced to disk (the bench measures clients, not the disk).
fn start_server() -> Result<ZkServer, String> {
    ZkServer::builder()
        .tick_time(Duration::from_secs(2))
        .extra_config("maxClientCnxns", "0")
        .jvm_arg("-Xmx1g")
        .jvm_arg("-Dzookeeper.forceSync=no")
        .start()
        .map_err(|e| format!("starting ZooKeeper (scripts/install-zookeeper.sh): {e}"))
}

fn measure(client: &str, settings: &Settings) -> Result<Figures, String> {
    let mut server = start_server()?;
    let mut run = ChildRun::spawn(client, &server.connect_string(), settings)?;
    // "opened secs S rss_kib_per_session R"
    let opened = read_line(&mut run.from)?;
    eprintln!("many_sessions: {client}: {opened}");
    let counter = OpenCounter::start();
    let killed = Instant::now();
    server.stop();
    std::thread::sleep(settings.outage);
    server
        .restart()
        .map_err(|e| format!("restarting the server: {e}"))?;
    let restarted = Instant::now();
    // "back N not_back M busiest_reconnects B"
    let back = read_line(&mut run.from)?;
    let all_back = Instant::now();
    let storm = counter.finish(restarted);
    eprintln!("many_sessions: {client}: {back}");
    eprintln!(
        "many_sessions: {client}: busiest 100 ms of attempts {} from {:.2} s after the kill; \
         restart took {:.2} s; attempts per 100 ms: {:?}",
        storm.busiest,
        storm.busiest_at.as_secs_f64(),
        restarted.duration_since(killed).as_secs_f64(),
        storm.per_window
    );
    run.send("close")?;
    let closed = read_line(&mut run.from)?;
    eprintln!("many_sessions: {client}: {closed}");
    let _ = run.child.wait();
    Ok(Figures {
        client: client.to_owned(),
        open_secs: field(&opened, "secs")?,
        rss_per_session_kib: field(&opened, "rss_kib_per_session")?,
        back_after_restart_secs: all_back.duration_since(restarted).as_secs_f64(),
        back_after_kill_secs: all_back.duration_since(killed).as_secs_f64(),
        attempts_busiest: storm.busiest,
        attempts_busiest_after_restart: storm.busiest_after_restart,
        attempts_total: storm.total,
        reconnects_busiest: field(&back, "busiest_reconnects")?,
        not_back: field(&back, "not_back")?,
    })
}

fn parent() -> Result<(), String> {
    let settings = Settings::from_env();
    let clients = std::env::var("CLIENTS").unwrap_or_else(|_| "zkwarden kezhuw".to_owned());
    // The server and each child hold a descriptor per session, plus their own.
    raise_fd_limit(settings.sessions as u64 + 1_000)?;
    let mut rows = Vec::new();
    for client in clients.split_whitespace() {
        rows.push(measure(client, &settings)?);
    }
    let n = settings.sessions as f64;
    let t = settings.timeout.as_secs_f64();
    println!(
        "{} idle sessions per client against one ZooKeeper server on loopback, session timeout \
         T = {t} s; the server is killed and restarted with its data after {:?} (goals: \
         RSS/session <= 10 KiB, all back within 2T = {} s, busiest 100 ms of attempts <= 5% = \
         {}); zkwarden-spread: reconnect_delay {:?}, reconnect_backoff {:?}",
        settings.sessions,
        settings.outage,
        2.0 * t,
        (0.05 * n).round(),
        settings.spread_delay,
        settings.spread_backoff
    );
    println!();
    println!(
        "| client | open all (s) | RSS/session (KiB) | all back after restart (s) | after kill (s) \
         | busiest 100 ms of attempts | % of sessions | after the restart | % of sessions \
         | attempts in all | busiest 100 ms of reconnects | not back |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for f in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.2} | {} | {:.1}% | {} | {:.1}% | {} | {} | {} |",
            f.client,
            f.open_secs,
            f.rss_per_session_kib,
            f.back_after_restart_secs,
            f.back_after_kill_secs,
            f.attempts_busiest,
            100.0 * f.attempts_busiest as f64 / n,
            f.attempts_busiest_after_restart,
            100.0 * f.attempts_busiest_after_restart as f64 / n,
            f.attempts_total,
            f.reconnects_busiest,
            f.not_back
        );
    }
    Ok(())
}

/// The child: opens the sessions, reports, watches them come back, closes them on request.
mod child {
    use super::*;

    use tokio::sync::mpsc;

    /// Resident set size of this process, in KiB.
    fn rss_kib() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    /// What becomes of one session after the server goes away.
    enum Outcome {
        /// Connected again (on the same session) at this moment.
        Back(Instant),
        /// The session ended (expired, or closed by the client).
        Lost(&'static str),
    }

    pub(super) fn run(client: Option<&str>, connect: Option<&String>) -> Result<(), String> {
        let (Some(client), Some(connect)) = (client, connect) else {
            return Err(
                "usage: many_sessions --child zkwarden|zkwarden-spread|kezhuw HOST:PORT".into(),
            );
        };
        let settings = Settings::from_env();
        raise_fd_limit(settings.sessions as u64 + 500)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(async {
            match client {
                "zkwarden" => ours(connect, &settings, false).await,
                "zkwarden-spread" => ours(connect, &settings, true).await,
                "kezhuw" => kezhuw(connect, &settings).await,
                other => Err(format!("unknown client {other}")),
            }
        })
    }

    /// Prints the opening figures, then waits for every session's outcome and prints those.
    async fn report(
        opened: Duration,
        rss_before: f64,
        sessions: usize,
        timeout: Duration,
        mut outcomes: mpsc::UnboundedReceiver<Outcome>,
    ) -> Result<(), String> {
        // Let the sessions' first pings and buffers settle before reading the resident set.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let per_session = (rss_kib() - rss_before) / sessions as f64;
        println!(
            "opened secs {:.2} rss_kib_per_session {per_session:.2}",
            opened.as_secs_f64()
        );
        let mut back = Vec::with_capacity(sessions);
        let mut lost = std::collections::BTreeMap::<&str, usize>::new();
        // A session not back within three session timeouts of the restart is not coming.
        let patience = tokio::time::sleep(3 * timeout + Duration::from_secs(30));
        tokio::pin!(patience);
        while back.len() + lost.values().sum::<usize>() < sessions {
            tokio::select! {
                outcome = outcomes.recv() => match outcome {
                    Some(Outcome::Back(at)) => back.push(at),
                    Some(Outcome::Lost(why)) => *lost.entry(why).or_default() += 1,
                    None => break,
                },
                () = &mut patience => break,
            }
        }
        back.sort();
        let mut busiest = 0;
        let mut end = 0;
        for (i, start) in back.iter().enumerate() {
            end = end.max(i);
            while end + 1 < back.len() && back[end + 1] <= *start + WINDOW {
                end += 1;
            }
            busiest = busiest.max(end + 1 - i);
        }
        let first = back.first().copied();
        let spread = match (first, back.last()) {
            (Some(first), Some(last)) => last.duration_since(first).as_secs_f64(),
            _ => 0.0,
        };
        println!(
            "back {} not_back {} busiest_reconnects {busiest} first_to_last_back_secs {spread:.2} lost {lost:?}",
            back.len(),
            sessions - back.len()
        );
        Ok(())
    }

    /// Opens `n` sessions with `open`, [`OPEN_CONCURRENCY`] at a time.
    async fn open_all<C, E, Fut>(n: usize, open: impl Fn() -> Fut) -> Result<Vec<C>, String>
    where
        Fut: std::future::Future<Output = Result<C, E>>,
        E: std::fmt::Display,
    {
        stream::iter(0..n)
            .map(|_| open())
            .buffer_unordered(OPEN_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| format!("connecting: {e}"))
    }

    /// Waits for "close" from the parent.
    async fn wait_for_close() {
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
    }

    /// zkwarden's sessions; `spread`: with the settings for spreading a full restart.
    async fn ours(connect: &str, settings: &Settings, spread: bool) -> Result<(), String> {
        let rss_before = rss_kib();
        let started = Instant::now();
        let clients = open_all(settings.sessions, || {
            let builder = zkwarden::Client::builder(connect).session_timeout(settings.timeout);
            let builder = if spread {
                builder
                    .reconnect_delay(settings.spread_delay)
                    .reconnect_backoff(settings.spread_backoff, settings.spread_backoff)
            } else {
                builder
            };
            builder.connect()
        })
        .await?;
        let opened = started.elapsed();
        let (tx, rx) = mpsc::unbounded_channel();
        for client in &clients {
            let mut state = client.state();
            let first = state.borrow().connections;
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let status = *state.borrow_and_update();
                    if status.state.is_connected() && status.connections > first {
                        let _ = tx.send(Outcome::Back(Instant::now()));
                        return;
                    }
                    if status.state.is_terminal() {
                        let _ = tx.send(Outcome::Lost(match status.state {
                            zkwarden::SessionState::Expired => "expired",
                            zkwarden::SessionState::AuthFailed => "auth_failed",
                            _ => "closed",
                        }));
                        return;
                    }
                    if state.changed().await.is_err() {
                        let _ = tx.send(Outcome::Lost("client gone"));
                        return;
                    }
                }
            });
        }
        drop(tx);
        report(opened, rss_before, settings.sessions, settings.timeout, rx).await?;
        wait_for_close().await;
        let closing = Instant::now();
        stream::iter(&clients)
            .for_each_concurrent(OPEN_CONCURRENCY, |c| async move {
                let _ = c.close().await;
            })
            .await;
        println!("closed secs {:.2}", closing.elapsed().as_secs_f64());
        Ok(())
    }

    async fn kezhuw(connect: &str, settings: &Settings) -> Result<(), String> {
        use zookeeper_client::{Client, SessionState};
        let rss_before = rss_kib();
        let started = Instant::now();
        let clients = open_all(settings.sessions, || {
            Client::connector()
                .with_session_timeout(settings.timeout)
                .connect(connect)
        })
        .await?;
        let opened = started.elapsed();
        let (tx, rx) = mpsc::unbounded_channel();
        for client in &clients {
            let mut states = client.state_watcher();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut disconnected = false;
                loop {
                    match states.changed().await {
                        SessionState::Disconnected => disconnected = true,
                        SessionState::SyncConnected if disconnected => {
                            let _ = tx.send(Outcome::Back(Instant::now()));
                            return;
                        }
                        SessionState::Expired => {
                            let _ = tx.send(Outcome::Lost("expired"));
                            return;
                        }
                        state if state.is_terminated() => {
                            let _ = tx.send(Outcome::Lost("closed"));
                            return;
                        }
                        _ => {}
                    }
                }
            });
        }
        drop(tx);
        report(opened, rss_before, settings.sessions, settings.timeout, rx).await?;
        wait_for_close().await;
        let closing = Instant::now();
        // The crate closes a session when its last handle goes; its state watcher tells when
        // the server has confirmed.
        let watchers: Vec<_> = clients.iter().map(Client::state_watcher).collect();
        drop(clients);
        stream::iter(watchers)
            .for_each_concurrent(OPEN_CONCURRENCY, |mut states| async move {
                let wait = async {
                    while !states.peek_state().is_terminated() {
                        states.changed().await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
            })
            .await;
        println!("closed secs {:.2}", closing.elapsed().as_secs_f64());
        Ok(())
    }
}
