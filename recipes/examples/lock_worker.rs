//! A worker that does its job only while it holds a [`Mutex`], and stops the moment it may
//! have lost it. Run several at once, and a Curator `InterProcessMutex` on the same path if
//! you like: they take turns, and a shared log shows that no two ever held the lock at once.
//! The chaos tests (`recipes/tests/lock_chaos.rs`) run it under expired sessions, network
//! partitions, killed servers and SIGSTOP.
//!
//! ```text
//! lock_worker --connect C --path P --id NAME --rounds R --hold-ms H --log FILE
//!             [--session-timeout-ms T] [--safety none|lost|suspend] [--session-file F]
//!             [--fence-node N]
//! ```
//!
//! For example, with a server on 127.0.0.1:2181:
//!
//! ```text
//! cargo run -p zkwarden-recipes --example lock_worker -- --connect 127.0.0.1:2181 \
//!     --path /jobs/lock --id a --rounds 5 --hold-ms 500 --log /tmp/holders.log
//! ```
//!
//! # What it does
//!
//! Each round it acquires the mutex on P, appends `NAME enter <unix-nanos>` to FILE, holds
//! the lock for H ms, appends `NAME exit <unix-nanos>` and releases. If the lock may be lost
//! during the hold, it stops at once and appends `NAME lost <unix-nanos>` instead of `exit`:
//!
//! | `--safety` | stops when |
//! |---|---|
//! | `suspend` (default) | the connection is `Suspended` (or anything worse) |
//! | `lost` | the session is `Lost` or replaced by a new one |
//! | `none` | never: it works on, believing it holds the lock |
//!
//! Each log line is written with a single append, so several processes can share FILE. The
//! worker rides through connection faults and session loss (its warden retries forever and
//! builds a new session after an expiry) and exits 0 after R rounds.
//!
//! On stdout it prints one JSON object per line for every event: `start`, `state` (each
//! connection change), `session`, `enter`, `fenced`, `exit`, `lost`, `skipped` (a lock that
//! was already doubtful when granted: released without entering), `error` and `done`. Every
//! object carries `event`, `id` and `ts_ns`; `enter`, `exit` and `lost` also carry the round,
//! the fencing token and the session id; `fenced` carries the round, the token, `accepted`
//! (`true`, `false`, or `null` when the fate could not be learnt), `sent_ns` (when the fenced
//! step began), and for a refusal the failing op's `index` and `code`.
//!
//! # Chaos interface
//!
//! * `--session-file F`: each time a session is established, F is replaced (a temporary file,
//!   then a rename) by one JSON line
//!   `{"id":..,"session_id":"0x..","password":"<hex>","timeout_ms":..,"pid":..,"ts_ns":..}`,
//!   so an external tool can expire exactly that session. The password is written there on
//!   purpose and nowhere else: never to stdout, stderr or the log.
//! * `--fence-node N`: inside each hold (at its end) the worker reads the integer stored at
//!   N and writes it back plus one in a transaction fenced by the lock node
//!   ([`LockGuard::fence`]); the transaction also creates the marker `N/w-<token>`. The
//!   `fenced` event says whether the server accepted it. When the reply was lost, the
//!   worker releases the lock, waits until its lock node is gone (so no copy of the
//!   transaction can still pass its check) and then looks for the marker, so the answer is
//!   exact. After any run, N holds the number of accepted fenced writes, even if a holder
//!   was paused past its session timeout and woke up believing it still held the lock: its
//!   late write is refused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use zkwarden::warden::{ConnectionUpdate, LockSafety, ParentMode, RetryConfig};
use zkwarden::{ConnectionState, CreateMode, Error, Op, SessionId, Warden};
use zkwarden_recipes::lock::{LockGuard, LostReason, Mutex};

const USAGE: &str = "usage: lock_worker --connect C --path P --id NAME --rounds R --hold-ms H \
--log FILE [--session-timeout-ms T] [--safety none|lost|suspend] [--session-file F] \
[--fence-node N]";

/// How long the worker waits for a lost transaction's fate before calling it unknown.
const RESOLVE_PATIENCE: Duration = Duration::from_secs(60);

/// When the worker stops working on a held lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safety {
    /// Never.
    None,
    /// On `Lost` or a new session.
    Lost,
    /// On `Suspended` and anything worse.
    Suspend,
}

impl Safety {
    /// The mutex setting behind it (`none` watches like `lost` but ignores the result).
    fn lock_safety(self) -> LockSafety {
        match self {
            Safety::Suspend => LockSafety::Suspend,
            Safety::Lost | Safety::None => LockSafety::Lost,
        }
    }
}

/// The command line.
#[derive(Debug)]
struct Args {
    connect: String,
    path: String,
    id: String,
    rounds: u64,
    hold: Duration,
    log: PathBuf,
    session_timeout: Duration,
    safety: Safety,
    session_file: Option<PathBuf>,
    fence_node: Option<String>,
}

impl Args {
    /// Parses `--name value` (or `--name=value`) pairs.
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let (mut connect, mut path, mut id, mut rounds, mut hold, mut log) =
            (None, None, None, None, None, None);
        let mut session_timeout = Duration::from_secs(10);
        let mut safety = Safety::Suspend;
        let (mut session_file, mut fence_node) = (None, None);
        while let Some(arg) = argv.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            if name == "--help" || name == "-h" {
                return Err(String::new());
            }
            let value = match inline.or_else(|| argv.next()) {
                Some(value) => value,
                None => return Err(format!("{name} needs a value")),
            };
            match name.as_str() {
                "--connect" => connect = Some(value),
                "--path" => path = Some(value),
                "--id" => id = Some(value),
                "--rounds" => rounds = Some(number(&name, &value)?),
                "--hold-ms" => hold = Some(Duration::from_millis(number(&name, &value)?)),
                "--log" => log = Some(PathBuf::from(value)),
                "--session-timeout-ms" => {
                    session_timeout = Duration::from_millis(number(&name, &value)?);
                }
                "--safety" => {
                    safety = match value.as_str() {
                        "none" => Safety::None,
                        "lost" => Safety::Lost,
                        "suspend" => Safety::Suspend,
                        other => return Err(format!("unknown --safety {other:?}")),
                    };
                }
                "--session-file" => session_file = Some(PathBuf::from(value)),
                "--fence-node" => fence_node = Some(value),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let missing = |what: &str| format!("{what} is required");
        Ok(Args {
            connect: connect.ok_or_else(|| missing("--connect"))?,
            path: path.ok_or_else(|| missing("--path"))?,
            id: id.ok_or_else(|| missing("--id"))?,
            rounds: rounds.ok_or_else(|| missing("--rounds"))?,
            hold: hold.ok_or_else(|| missing("--hold-ms"))?,
            log: log.ok_or_else(|| missing("--log"))?,
            session_timeout,
            safety,
            session_file,
            fence_node,
        })
    }
}

fn number(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse()
        .map_err(|_| format!("{name} wants a whole number, not {value:?}"))
}

/// Wall-clock nanoseconds since the Unix epoch: comparable across processes on one machine.
fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Prints one event as a JSON line, adding `event`, `id` and `ts_ns`.
fn emit(id: &str, event: &str, mut fields: Value) {
    if let Value::Object(map) = &mut fields {
        map.insert("event".to_owned(), json!(event));
        map.insert("id".to_owned(), json!(id));
        map.insert("ts_ns".to_owned(), json!(unix_nanos()));
    }
    println!("{fields}");
}

/// Appends `NAME what <unix-nanos>` to the shared log in one write.
fn append_log(log: &Path, id: &str, what: &str) -> std::io::Result<()> {
    let line = format!("{id} {what} {}\n", unix_nanos());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    file.write_all(line.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_hex(id: SessionId) -> String {
    format!("0x{:x}", id.0)
}

/// Replaces the session file with the warden's current session, if it is `expected`.
/// Returns whether it wrote.
fn write_session_file(
    file: &Path,
    id: &str,
    warden: &Warden,
    expected: SessionId,
) -> std::io::Result<bool> {
    let Some(client) = warden.client() else {
        return Ok(false);
    };
    if client.session_id() != expected {
        return Ok(false);
    }
    let record = json!({
        "id": id,
        "session_id": session_hex(expected),
        "password": hex(client.session_password().expose()),
        "timeout_ms": client.negotiated_timeout().map(|t| t.as_millis()),
        "pid": std::process::id(),
        "ts_ns": unix_nanos(),
    });
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // The password lets anyone take over the session: readable by this user only.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(format!("{record}\n").as_bytes())?;
    drop(out);
    std::fs::rename(&tmp, file)?;
    Ok(true)
}

/// Reports every connection change, and keeps the session file current.
async fn follow_connection(warden: Warden, id: String, session_file: Option<PathBuf>) {
    let mut events = warden.events();
    let mut written: Option<SessionId> = None;
    let record = |session: SessionId, written: &mut Option<SessionId>| {
        let Some(file) = &session_file else { return };
        if *written == Some(session) {
            return;
        }
        match write_session_file(file, &id, &warden, session) {
            Ok(true) => {
                *written = Some(session);
                emit(
                    &id,
                    "session",
                    json!({ "session_id": session_hex(session) }),
                );
            }
            Ok(false) => {}
            Err(e) => emit(
                &id,
                "error",
                json!({ "what": "session file", "error": e.to_string() }),
            ),
        }
    };
    let now = warden.connection();
    if matches!(
        now.state,
        ConnectionState::Connected | ConnectionState::Reconnected
    ) {
        record(now.session_id, &mut written);
    }
    while let Some(update) = events.next_update().await {
        let event = match update {
            ConnectionUpdate::Event(event) => event,
            ConnectionUpdate::Lagged { missed } => {
                emit(&id, "state", json!({ "lagged": missed }));
                warden.connection()
            }
        };
        emit(
            &id,
            "state",
            json!({
                "state": format!("{:?}", event.state),
                "session_id": session_hex(event.session_id),
                "generation": event.generation,
            }),
        );
        if matches!(
            event.state,
            ConnectionState::Connected | ConnectionState::Reconnected
        ) {
            record(event.session_id, &mut written);
        }
    }
}

/// Why a freshly granted lock should not be entered, under `safety`.
fn doubt(warden: &Warden, guard: &LockGuard, safety: Safety) -> Option<String> {
    if safety == Safety::None {
        return None;
    }
    if let Some(reason) = guard.lost_reason() {
        return Some(format!("{reason:?}"));
    }
    let now = warden.connection();
    if now.session_id != guard.session_id() {
        return Some("NewSession".to_owned());
    }
    match now.state {
        ConnectionState::Lost | ConnectionState::Closed => Some(format!("{:?}", now.state)),
        ConnectionState::Suspended | ConnectionState::ReadOnly if safety == Safety::Suspend => {
            Some(format!("{:?}", now.state))
        }
        _ => None,
    }
}

/// The fate of one fenced increment.
enum Fenced {
    /// Applied: the counter now holds `value`.
    Accepted { value: i64 },
    /// Refused by the server: op `index` failed with `code`.
    Rejected { index: usize, code: String },
    /// The reply was lost; the marker says whether it was applied.
    Resolved { accepted: bool },
    /// Nothing was sent (the read failed), or the outcome could not be learnt.
    Failed { error: String },
}

/// Reads the counter and sends the fenced increment. Returns the pending transaction (in a
/// task of its own, so a lost lock cannot cancel it midway) and the marker path.
async fn start_fenced_write(
    warden: &Warden,
    guard: &LockGuard,
    counter: &str,
    id: &str,
) -> Result<(tokio::task::JoinHandle<zkwarden::Result<i64>>, String), String> {
    let (data, stat) = warden
        .get_data(counter)
        .await
        .map_err(|e| format!("read {counter}: {e}"))?;
    let text = String::from_utf8_lossy(&data);
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{counter} holds {text:?}, not an integer"))?;
    let next = value + 1;
    let marker = format!("{counter}/w-{}", guard.fencing_token());
    let ops = guard.fence(vec![
        Op::set_data(counter, next.to_string(), Some(stat.version)),
        Op::create(marker.clone(), id.as_bytes(), CreateMode::Persistent),
    ]);
    let warden = warden.clone();
    let task = tokio::spawn(async move { warden.multi(&ops).await.map(|_| next) });
    Ok((task, marker))
}

/// Turns a finished transaction into a verdict; `None` when its reply was lost.
fn judge_write(result: Result<zkwarden::Result<i64>, tokio::task::JoinError>) -> Option<Fenced> {
    match result {
        Ok(Ok(value)) => Some(Fenced::Accepted { value }),
        Ok(Err(Error::MultiFailed { index, code, .. })) => Some(Fenced::Rejected {
            index,
            code: format!("{code:?}"),
        }),
        Ok(Err(e)) if e.is_invalid_request() => Some(Fenced::Failed {
            error: e.to_string(),
        }),
        // Connection loss, expiry, a failed task: the transaction may have been applied.
        Ok(Err(_)) | Err(_) => None,
    }
}

/// Learns whether a transaction whose reply was lost was applied. Call it after releasing
/// the lock: once the lock node is gone no copy of the transaction can still pass its check,
/// so the marker's presence is then the final word.
async fn resolve(warden: &Warden, lock_node: &str, counter: &str, marker: &str) -> Fenced {
    let work = async {
        loop {
            warden.sync(counter).await?;
            match warden.exists_and_watch(lock_node).await? {
                (None, _) => break,
                (Some(_), watcher) => {
                    let _ = watcher.await;
                }
            }
        }
        warden.sync(counter).await?;
        Ok::<bool, Error>(warden.exists(marker).await?.is_some())
    };
    match tokio::time::timeout(RESOLVE_PATIENCE, work).await {
        Ok(Ok(accepted)) => Fenced::Resolved { accepted },
        Ok(Err(e)) => Fenced::Failed {
            error: format!("resolving: {e}"),
        },
        Err(_) => Fenced::Failed {
            error: "resolving: the lock node stayed".to_owned(),
        },
    }
}

fn report_fenced(id: &str, round: u64, token: i64, sent_ns: u64, fenced: &Fenced) {
    let mut fields = json!({ "round": round, "token": token, "sent_ns": sent_ns });
    let extra = match fenced {
        Fenced::Accepted { value } => json!({ "accepted": true, "value": value }),
        Fenced::Rejected { index, code } => {
            json!({ "accepted": false, "index": index, "code": code })
        }
        Fenced::Resolved { accepted } => json!({ "accepted": accepted, "resolved": true }),
        Fenced::Failed { error } => json!({ "accepted": null, "error": error }),
    };
    if let (Value::Object(map), Value::Object(extra)) = (&mut fields, extra) {
        map.extend(extra);
    }
    emit(id, "fenced", fields);
}

/// What finished first while the fenced transaction was pending.
enum Race<T> {
    Done(T),
    Lost(LostReason),
}

/// Records that the lock may be lost: the log line and the event.
fn note_lost(
    args: &Args,
    round: u64,
    token: i64,
    session: &str,
    reason: LostReason,
) -> Result<(), String> {
    append_log(&args.log, &args.id, "lost").map_err(|e| format!("log: {e}"))?;
    emit(
        &args.id,
        "lost",
        json!({
            "round": round,
            "token": token,
            "session_id": session,
            "reason": format!("{reason:?}"),
        }),
    );
    Ok(())
}

/// A fenced transaction whose reply was lost: its fate is learnt once the lock is released.
struct Unresolved {
    round: u64,
    token: i64,
    sent_ns: u64,
    lock_node: String,
    counter: String,
    marker: String,
}

/// One granted lock: enter, hold (then the fenced write), exit; or lost, the moment the lock
/// may be gone (unless `--safety none`). Returns a fenced write still to resolve.
async fn hold(
    args: &Args,
    warden: &Warden,
    guard: &LockGuard,
    round: u64,
) -> Result<Option<Unresolved>, String> {
    let watch_lost = args.safety != Safety::None;
    let mut lost = Box::pin(guard.lost());
    let token = guard.fencing_token();
    let session = session_hex(guard.session_id());
    append_log(&args.log, &args.id, "enter").map_err(|e| format!("log: {e}"))?;
    emit(
        &args.id,
        "enter",
        json!({
            "round": round,
            "token": token,
            "session_id": session,
            "node": guard.node_path(),
        }),
    );

    let held = tokio::select! {
        reason = &mut lost, if watch_lost => Race::Lost(reason),
        () = tokio::time::sleep(args.hold) => Race::Done(()),
    };
    if let Race::Lost(reason) = held {
        note_lost(args, round, token, &session, reason)?;
        return Ok(None);
    }

    if let Some(counter) = &args.fence_node {
        let sent_ns = unix_nanos();
        let started = tokio::select! {
            reason = &mut lost, if watch_lost => Race::Lost(reason),
            started = start_fenced_write(warden, guard, counter, &args.id) => Race::Done(started),
        };
        let (mut task, marker) = match started {
            Race::Lost(reason) => {
                note_lost(args, round, token, &session, reason)?;
                return Ok(None);
            }
            Race::Done(Ok(pending)) => pending,
            Race::Done(Err(error)) => {
                // Nothing was sent; the hold ends normally.
                report_fenced(&args.id, round, token, sent_ns, &Fenced::Failed { error });
                exit(args, round, token, &session)?;
                return Ok(None);
            }
        };
        let finished = tokio::select! {
            reason = &mut lost, if watch_lost => Race::Lost(reason),
            result = &mut task => Race::Done(result),
        };
        let (result, lost_during_write) = match finished {
            Race::Done(result) => (result, false),
            Race::Lost(reason) => {
                // Stop at once; the transaction's fate is learnt afterwards.
                note_lost(args, round, token, &session, reason)?;
                (task.await, true)
            }
        };
        let unresolved = match judge_write(result) {
            Some(fenced) => {
                report_fenced(&args.id, round, token, sent_ns, &fenced);
                None
            }
            None => Some(Unresolved {
                round,
                token,
                sent_ns,
                lock_node: guard.node_path().to_owned(),
                counter: counter.clone(),
                marker,
            }),
        };
        if lost_during_write {
            return Ok(unresolved);
        }
        exit(args, round, token, &session)?;
        return Ok(unresolved);
    }
    exit(args, round, token, &session)?;
    Ok(None)
}

/// Records the end of a hold that was not lost: the log line and the event.
fn exit(args: &Args, round: u64, token: i64, session: &str) -> Result<(), String> {
    append_log(&args.log, &args.id, "exit").map_err(|e| format!("log: {e}"))?;
    emit(
        &args.id,
        "exit",
        json!({ "round": round, "token": token, "session_id": session }),
    );
    Ok(())
}

/// Makes the fenced counter (holding `0`) unless it exists.
async fn ensure_counter(warden: &Warden, counter: &str) -> zkwarden::Result<()> {
    match warden
        .create(counter, b"0")
        .mode(CreateMode::Persistent)
        .parents(ParentMode::Persistent)
        .await
    {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let warden = Warden::builder(&args.connect)
        .session_timeout(args.session_timeout)
        .connection_timeout(Duration::from_secs(30))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(100),
        })
        .start()
        .await
        .map_err(|e| format!("connect to {}: {e}", args.connect))?;
    emit(
        &args.id,
        "start",
        json!({
            "pid": std::process::id(),
            "session_id": session_hex(warden.session_id()),
            "safety": format!("{:?}", args.safety).to_lowercase(),
        }),
    );
    let follower = tokio::spawn(follow_connection(
        warden.clone(),
        args.id.clone(),
        args.session_file.clone(),
    ));
    if let Some(counter) = &args.fence_node {
        ensure_counter(&warden, counter)
            .await
            .map_err(|e| format!("create {counter}: {e}"))?;
    }

    let mutex = Mutex::new(&warden, &args.path)
        .payload(args.id.clone())
        .safety(args.safety.lock_safety());
    let mut round = 1;
    while round <= args.rounds {
        let guard = match mutex.lock().await {
            Ok(guard) => guard,
            Err(Error::Closed) => return Err("the warden closed".to_owned()),
            Err(e) => {
                // Retries are the warden's job; what reaches here is worth a pause.
                emit(
                    &args.id,
                    "error",
                    json!({ "what": "lock", "error": e.to_string() }),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Some(reason) = doubt(&warden, &guard, args.safety) {
            emit(
                &args.id,
                "skipped",
                json!({ "round": round, "token": guard.fencing_token(), "reason": reason }),
            );
            release(&args.id, guard).await;
            continue;
        }
        let unresolved = hold(&args, &warden, &guard, round).await?;
        release(&args.id, guard).await;
        if let Some(write) = unresolved {
            let fenced = resolve(&warden, &write.lock_node, &write.counter, &write.marker).await;
            report_fenced(&args.id, write.round, write.token, write.sent_ns, &fenced);
        }
        round += 1;
    }
    follower.abort();
    if let Err(e) = warden.close().await {
        emit(
            &args.id,
            "error",
            json!({ "what": "close", "error": e.to_string() }),
        );
    }
    emit(&args.id, "done", json!({ "rounds": args.rounds }));
    Ok(())
}

/// Releases the lock; a delete that has to wait for the connection goes on in the background.
async fn release(id: &str, guard: LockGuard) {
    if let Err(e) = guard.release().await {
        emit(
            id,
            "error",
            json!({ "what": "release", "error": e.to_string() }),
        );
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("lock_worker: {why}");
            }
            eprintln!("{USAGE}");
            return if why.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lock_worker: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let id = args.id.clone();
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            emit(&id, "error", json!({ "what": "fatal", "error": why }));
            ExitCode::FAILURE
        }
    }
}
