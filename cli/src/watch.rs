//! `watch`: one-shot data or children watches, re-armed up to `--count`, or one persistent
//! recursive watch streaming every change below a path.

use serde_json::json;
use zkwarden::{AddWatchMode, Warden, WatchedEvent};

use crate::exit::Failure;
use crate::output::{Output, note};

/// What `watch` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct WatchRequest<'a> {
    /// The node.
    pub path: &'a str,
    /// A persistent recursive watch instead of one-shot watches.
    pub recursive: bool,
    /// Watch the children list (one-shot mode).
    pub children: bool,
    /// Stop after this many events.
    pub count: Option<u64>,
}

/// Prints one event; false once standard output is closed.
fn print(out: Output, event: &WatchedEvent) -> bool {
    out.emit(
        format!("{:?} {}", event.event_type, event.path),
        &json!({
            "type": format!("{:?}", event.event_type),
            "path": event.path,
            "zxid": event.zxid,
        }),
    )
}

/// Runs the watch until `count` events were printed (one-shot mode: 1 by default; recursive
/// mode: until interrupted). "watching PATH" goes to standard error once the watch is set,
/// so a script knows when changes will be seen.
///
/// # Errors
/// As `exists`/`getChildren`/`addWatch`; [`Failure::Zk`] with `SessionExpired` when a
/// recursive watch ends with its session.
pub async fn run(warden: &Warden, out: Output, req: WatchRequest<'_>) -> Result<(), Failure> {
    let path = req.path;
    let context = || format!("watch {path}");
    if req.recursive {
        let mut watcher = warden
            .add_watch(path, AddWatchMode::PersistentRecursive)
            .await
            .map_err(|e| Failure::zk(context(), e))?;
        note(format!("watching {path} and everything below it"));
        let mut seen = 0u64;
        while req.count.is_none_or(|count| seen < count) {
            let Some(event) = watcher.next().await else {
                return Err(Failure::zk(context(), zkwarden::Error::SessionExpired));
            };
            seen += 1;
            if !print(out, &event) {
                break;
            }
        }
        return Ok(());
    }
    for _ in 0..req.count.unwrap_or(1) {
        let watcher = if req.children {
            warden
                .get_children_and_watch(path)
                .await
                .map(|(_, watcher)| watcher)
        } else {
            warden
                .exists_and_watch(path)
                .await
                .map(|(_, watcher)| watcher)
        }
        .map_err(|e| Failure::zk(context(), e))?;
        note(format!(
            "watching {path}{}",
            if req.children { " (children)" } else { "" }
        ));
        let event = watcher.await.map_err(|e| Failure::zk(context(), e))?;
        if !print(out, &event) {
            break;
        }
    }
    Ok(())
}
