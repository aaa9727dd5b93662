//! The data commands: `ls`, `get`, `set`, `create`, `rm`, `stat`, `tree`.

use serde_json::{Value, json};
use zkwarden::warden::ParentMode;
use zkwarden::{CreateMode, Warden};

use crate::args::Mode;
use crate::data_text;
use crate::exit::Failure;
use crate::output::{Output, Progress, stat_json, stat_text};

/// `ls PATH`.
///
/// # Errors
/// As `getChildren`.
pub async fn ls(warden: &Warden, out: Output, path: &str) -> Result<(), Failure> {
    let mut children = warden
        .get_children(path)
        .await
        .map_err(|e| Failure::zk(format!("ls {path}"), e))?;
    children.sort();
    out.emit(
        children.join("\n"),
        &json!({ "path": path, "children": children }),
    );
    Ok(())
}

/// `get PATH [--stat]`.
///
/// # Errors
/// As `getData`.
pub async fn get(warden: &Warden, out: Output, path: &str, with_stat: bool) -> Result<(), Failure> {
    let (data, stat) = warden
        .get_data(path)
        .await
        .map_err(|e| Failure::zk(format!("get {path}"), e))?;
    let (text, encoding) = data_text::encode(&data);
    let mut human = data_text::human(&data);
    if with_stat {
        human = format!("{human}\n{}", stat_text(&stat));
    }
    out.emit(
        human,
        &json!({ "path": path, "data": text, "encoding": encoding, "stat": stat_json(&stat) }),
    );
    Ok(())
}

/// The bytes of a DATA argument.
fn data_arg(data: &str, base64: bool) -> Result<Vec<u8>, Failure> {
    let encoding = if base64 {
        data_text::Encoding::Base64
    } else {
        data_text::Encoding::Utf8
    };
    data_text::decode(data, encoding)
}

/// `set PATH DATA [--version V]`.
///
/// # Errors
/// As `setData`; [`Failure::Usage`] for invalid base64.
pub async fn set(
    warden: &Warden,
    out: Output,
    path: &str,
    data: &str,
    version: Option<i32>,
    base64: bool,
) -> Result<(), Failure> {
    let data = data_arg(data, base64)?;
    let stat = warden
        .set_data(path, &data, version)
        .await
        .map_err(|e| Failure::zk(format!("set {path}"), e))?;
    out.emit(
        format!("{path}: version {}", stat.version),
        &json!({ "path": path, "stat": stat_json(&stat) }),
    );
    Ok(())
}

/// What `create` was asked to make.
#[derive(Debug)]
pub struct CreateRequest<'a> {
    /// The node.
    pub path: &'a str,
    /// Its data, as given.
    pub data: &'a str,
    /// DATA is base64.
    pub base64: bool,
    /// The kind of node.
    pub mode: Mode,
    /// The TTL for TTL modes.
    pub ttl: Option<std::time::Duration>,
    /// Create missing parents.
    pub parents: bool,
}

/// `create PATH [DATA] [--mode M] [--ttl D] [-p]`.
///
/// # Errors
/// As `create`; [`Failure::Usage`] for a TTL mode without `--ttl` (or the reverse).
pub async fn create(warden: &Warden, out: Output, req: CreateRequest<'_>) -> Result<(), Failure> {
    let data = data_arg(req.data, req.base64)?;
    let mode = match req.mode {
        Mode::Persistent => CreateMode::Persistent,
        Mode::PersistentSequential => CreateMode::PersistentSequential,
        Mode::Ephemeral => CreateMode::Ephemeral,
        Mode::EphemeralSequential => CreateMode::EphemeralSequential,
        Mode::Container => CreateMode::Container,
        Mode::Ttl => CreateMode::PersistentWithTtl,
        Mode::TtlSequential => CreateMode::PersistentSequentialWithTtl,
    };
    let is_ttl = matches!(req.mode, Mode::Ttl | Mode::TtlSequential);
    let mut builder = warden.create(req.path, &data).mode(mode);
    match (is_ttl, req.ttl) {
        (true, Some(ttl)) => builder = builder.ttl(ttl),
        (false, None) => {}
        (true, None) => return Err(Failure::Usage("--mode ttl needs --ttl DURATION".into())),
        (false, Some(_)) => {
            return Err(Failure::Usage(
                "--ttl needs --mode ttl or ttl-sequential".into(),
            ));
        }
    }
    if req.parents {
        builder = builder.parents(ParentMode::Persistent);
    }
    let created = builder
        .await
        .map_err(|e| Failure::zk(format!("create {}", req.path), e))?;
    out.emit(&created, &json!({ "created": created }));
    Ok(())
}

/// `rm PATH [-r] [--version V]`.
///
/// # Errors
/// As `delete`.
pub async fn rm(
    warden: &Warden,
    out: Output,
    path: &str,
    recursive: bool,
    version: Option<i32>,
) -> Result<(), Failure> {
    let mut builder = warden.delete(path, version);
    if recursive {
        builder = builder.recursive();
    }
    builder
        .await
        .map_err(|e| Failure::zk(format!("rm {path}"), e))?;
    out.emit(format!("deleted {path}"), &json!({ "deleted": path }));
    Ok(())
}

/// `stat PATH`.
///
/// # Errors
/// `NoNode` when the node does not exist; otherwise as `exists`.
pub async fn stat(warden: &Warden, out: Output, path: &str) -> Result<(), Failure> {
    let stat = warden
        .exists(path)
        .await
        .map_err(|e| Failure::zk(format!("stat {path}"), e))?
        .ok_or_else(|| Failure::zk(format!("stat {path}"), zkwarden::Error::NoNode))?;
    out.emit(
        stat_text(&stat),
        &json!({ "path": path, "stat": stat_json(&stat) }),
    );
    Ok(())
}

/// The full path of `child` under `parent`.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `tree PATH`: every node below PATH, depth first, children sorted.
///
/// # Errors
/// As `getChildren`/`exists` on any node (a node deleted during the walk is skipped).
pub async fn tree(warden: &Warden, out: Output, path: &str) -> Result<(), Failure> {
    let mut progress = Progress::new("read");
    let mut lines = Vec::new();
    let value = walk(warden, path, 0, &mut lines, &mut progress)
        .await?
        .ok_or_else(|| Failure::zk(format!("tree {path}"), zkwarden::Error::NoNode))?;
    out.emit(lines.join("\n"), &value);
    Ok(())
}

/// One node of `tree` and everything below it; `None` when it vanished meanwhile.
async fn walk(
    warden: &Warden,
    path: &str,
    depth: usize,
    lines: &mut Vec<String>,
    progress: &mut Progress,
) -> Result<Option<Value>, Failure> {
    let context = || format!("tree {path}");
    let Some(stat) = warden
        .exists(path)
        .await
        .map_err(|e| Failure::zk(context(), e))?
    else {
        return Ok(None);
    };
    progress.tick();
    let name = if depth == 0 {
        path
    } else {
        path.rsplit('/').next().unwrap_or(path)
    };
    let ephemeral = if stat.ephemeral_owner != 0 {
        " [ephemeral]"
    } else {
        ""
    };
    lines.push(format!(
        "{}{name} ({} bytes){ephemeral}",
        "  ".repeat(depth),
        stat.data_length
    ));
    let mut children = match warden.get_children(path).await {
        Ok(children) => children,
        Err(zkwarden::Error::NoNode) => return Ok(None),
        Err(e) => return Err(Failure::zk(context(), e)),
    };
    children.sort();
    let mut below = Vec::with_capacity(children.len());
    for child in children {
        let child_path = join(path, &child);
        if let Some(value) = Box::pin(walk(warden, &child_path, depth + 1, lines, progress)).await?
        {
            below.push(value);
        }
    }
    Ok(Some(json!({
        "path": path,
        "dataLength": stat.data_length,
        "ephemeralOwner": crate::output::hex(stat.ephemeral_owner),
        "children": below,
    })))
}
