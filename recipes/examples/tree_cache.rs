//! Follows a subtree with a [`TreeCache`] and prints one JSON line per cache event.
//!
//! ```text
//! cargo run -p zkwarden-recipes --example tree_cache -- --connect 127.0.0.1:2181 --path /app
//! cargo run -p zkwarden-recipes --example tree_cache -- --connect 127.0.0.1:2181 --path /app \
//!     --snapshot-file /tmp/app.json
//! ```
//!
//! Each line has the event's `kind` (`created`, `changed`, `deleted`, `initialized`,
//! `resynced`, `lagged`) and, for node events, `path`, `czxid`, `mzxid` and `data_len`.
//! With `--snapshot-file F`, F is rewritten after every event with the whole cache as
//! `{path: {"data": base64, "czxid": .., "mzxid": .., "version": ..}}`: written to a
//! temporary file beside F and renamed over it, so a reader never sees half a file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use zkwarden::Warden;
use zkwarden::warden::RetryConfig;
use zkwarden_recipes::cache::{CacheEvent, Snapshot, TreeCache};

const USAGE: &str = "usage: tree_cache --connect HOSTS --path PATH [--snapshot-file FILE]";

struct Args {
    connect: String,
    path: String,
    snapshot_file: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut connect = None;
    let mut path = None;
    let mut snapshot_file = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--connect" => connect = Some(value()?),
            "--path" => path = Some(value()?),
            "--snapshot-file" => snapshot_file = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(Args {
        connect: connect.ok_or_else(|| format!("--connect is required\n{USAGE}"))?,
        path: path.ok_or_else(|| format!("--path is required\n{USAGE}"))?,
        snapshot_file,
    })
}

/// The JSON line for one event.
fn event_line(event: &CacheEvent) -> Value {
    let kind = match event {
        CacheEvent::Created { .. } => "created",
        CacheEvent::Changed { .. } => "changed",
        CacheEvent::Deleted { .. } => "deleted",
        CacheEvent::Initialized => "initialized",
        CacheEvent::Resynced { .. } => "resynced",
        CacheEvent::Lagged { .. } => "lagged",
    };
    match (event.path(), event.node(), event) {
        (Some(path), Some(node), _) => json!({
            "kind": kind,
            "path": path,
            "czxid": node.stat.czxid,
            "mzxid": node.stat.mzxid,
            "data_len": node.stat.data_length,
        }),
        (_, _, CacheEvent::Resynced { generation }) => {
            json!({"kind": kind, "generation": generation})
        }
        (_, _, CacheEvent::Lagged { missed }) => json!({"kind": kind, "missed": missed}),
        _ => json!({ "kind": kind }),
    }
}

/// The whole snapshot as one JSON object.
fn snapshot_json(snapshot: &Snapshot) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let nodes: Map<String, Value> = snapshot
        .iter()
        .map(|(path, node)| {
            let entry = json!({
                "data": b64.encode(&node.data),
                "czxid": node.stat.czxid,
                "mzxid": node.stat.mzxid,
                "version": node.stat.version,
            });
            (path.clone(), entry)
        })
        .collect();
    Value::Object(nodes)
}

/// Replaces `file` with `value`: write a temporary file in the same directory, then rename.
fn write_atomically(file: &Path, value: &Value) -> std::io::Result<()> {
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    let temp = file.with_file_name(name);
    std::fs::write(&temp, serde_json::to_vec(value)?)?;
    std::fs::rename(&temp, file)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let warden = Warden::builder(&args.connect)
        .session_timeout(Duration::from_secs(10))
        .retry(RetryConfig::Forever {
            sleep: Duration::from_millis(200),
        })
        .start()
        .await?;
    let cache = TreeCache::builder(&warden, &args.path).start().await?;
    // The snapshot this subscription starts from (empty: the cache has not read anything
    // yet) plus its events is the cache, so the file can follow the events alone.
    let (mut snapshot, mut events) = cache.subscribe();
    let mut shutdown = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = &mut shutdown => break,
        };
        let Some(event) = event else { break };
        println!("{}", event_line(&event));
        if let CacheEvent::Lagged { .. } = event {
            // Some events went by unseen: take the cache's own copy.
            snapshot = cache.snapshot();
        } else {
            snapshot.apply(&event);
        }
        if let Some(file) = &args.snapshot_file {
            write_atomically(file, &snapshot_json(&snapshot))?;
        }
    }
    drop(cache);
    warden.close().await?;
    Ok(())
}
