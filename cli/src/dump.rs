//! `dump` and `restore`: a subtree to and from a JSON document.
//!
//! ```json
//! {"format": "zkwarden-dump", "version": 1, "root": "/app",
//!  "nodes": [{"path": "", "data": "", "encoding": "utf8"},
//!            {"path": "/config", "data": "color=blue", "encoding": "utf8"},
//!            {"path": "/blob", "data": "AJ+SlvA=", "encoding": "base64"}]}
//! ```
//!
//! Paths are relative to `root` (`""` is the root itself), parents before children, so a
//! dump restores under any other path. Ephemeral nodes belong to a session and are left out;
//! so is `/zookeeper`, the server's own subtree.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use zkwarden::warden::ParentMode;
use zkwarden::{Error, Warden};

use crate::data::join;
use crate::data_text::{self, Encoding};
use crate::exit::Failure;
use crate::output::{Output, Progress};

/// The `format` field of every dump.
const FORMAT: &str = "zkwarden-dump";
/// The version of the layout this code writes and reads.
const VERSION: u32 = 1;

/// A dump document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dump {
    /// Always `zkwarden-dump`.
    pub format: String,
    /// The layout version (1).
    pub version: u32,
    /// The path that was dumped.
    pub root: String,
    /// Every node, parents first.
    pub nodes: Vec<DumpNode>,
}

/// One node of a dump.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpNode {
    /// The path below the root, starting with `/`; empty for the root.
    pub path: String,
    /// The data, as `encoding` says.
    pub data: String,
    /// How `data` is written.
    #[serde(default)]
    pub encoding: Encoding,
}

/// `dump PATH [-o FILE]`.
///
/// # Errors
/// As `getData`/`getChildren`; `NoNode` when PATH does not exist; [`Failure::Usage`] when
/// FILE cannot be written.
pub async fn dump(
    warden: &Warden,
    out: Output,
    root: &str,
    file: Option<&Path>,
) -> Result<(), Failure> {
    let mut progress = Progress::new("dumped");
    let mut nodes = Vec::new();
    let mut skipped = 0u64;
    // Depth first with an explicit stack, children pushed in reverse so they come out sorted.
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let (data, stat) = match warden.get_data(&path).await {
            Ok(found) => found,
            // Deleted while we walked: it is simply not in the dump.
            Err(Error::NoNode) if path != root => continue,
            Err(e) => return Err(Failure::zk(format!("dump {path}"), e)),
        };
        if stat.ephemeral_owner != 0 {
            skipped += 1;
            continue;
        }
        let (text, encoding) = data_text::encode(&data);
        let relative = path[root.len()..].to_owned();
        let relative = if root == "/" && !relative.is_empty() {
            format!("/{relative}")
        } else {
            relative
        };
        nodes.push(DumpNode {
            path: relative,
            data: text,
            encoding,
        });
        progress.tick();
        let mut children = match warden.get_children(&path).await {
            Ok(children) => children,
            Err(Error::NoNode) => continue,
            Err(e) => return Err(Failure::zk(format!("dump {path}"), e)),
        };
        children.sort();
        for child in children.iter().rev() {
            let child_path = join(&path, child);
            if child_path != "/zookeeper" {
                stack.push(child_path);
            }
        }
    }
    let count = nodes.len();
    let document = Dump {
        format: FORMAT.into(),
        version: VERSION,
        root: root.to_owned(),
        nodes,
    };
    let text = serde_json::to_string_pretty(&document)
        .map_err(|e| Failure::Usage(format!("cannot encode the dump: {e}")))?;
    match file {
        None => {
            out.emit(&text, &serde_json::to_value(&document).unwrap_or_default());
        }
        Some(file) => {
            std::fs::write(file, text + "\n")
                .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", file.display())))?;
            out.emit(
                format!(
                    "dumped {count} nodes from {root} to {} ({skipped} ephemeral nodes left out)",
                    file.display()
                ),
                &json!({ "root": root, "nodes": count, "skipped_ephemeral": skipped,
                         "file": file.display().to_string() }),
            );
        }
    }
    Ok(())
}

/// Reads and checks a dump document (`-` is standard input).
///
/// # Errors
/// [`Failure::Usage`] when the file cannot be read, is not a dump, or has a bad path.
pub fn read(file: &Path) -> Result<Dump, Failure> {
    let mut text = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map_err(|e| Failure::Usage(format!("cannot read {}: {e}", file.display())))?;
    let dump: Dump = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{} is not a dump: {e}", file.display())))?;
    if dump.format != FORMAT || dump.version != VERSION {
        return Err(Failure::Usage(format!(
            "{}: format {:?} version {} (expected {FORMAT:?} version {VERSION})",
            file.display(),
            dump.format,
            dump.version
        )));
    }
    for node in &dump.nodes {
        if !(node.path.is_empty() || node.path.starts_with('/')) || node.path.ends_with('/') {
            return Err(Failure::Usage(format!(
                "{}: bad node path {:?} (relative paths start with /, the root is \"\")",
                file.display(),
                node.path
            )));
        }
    }
    Ok(dump)
}

/// `restore FILE [--to PATH] [--overwrite]`.
///
/// # Errors
/// As [`read`]; `NodeExists` for a node that exists already (without `--overwrite`);
/// otherwise as `create`/`setData`.
pub async fn restore(
    warden: &Warden,
    out: Output,
    file: &Path,
    to: Option<&str>,
    overwrite: bool,
) -> Result<(), Failure> {
    let dump = read(file)?;
    let root = to.unwrap_or(&dump.root).trim_end_matches('/');
    let mut progress = Progress::new("restored");
    let (mut created, mut updated) = (0u64, 0u64);
    for node in &dump.nodes {
        let path = match (root, node.path.as_str()) {
            ("", "") => continue, // the server's root always exists and has no data of ours
            ("", rel) => rel.to_owned(),
            (root, rel) => format!("{root}{rel}"),
        };
        let data = data_text::decode(&node.data, node.encoding)?;
        let made = warden
            .create(&path, &data)
            .parents(ParentMode::Persistent)
            .await;
        match made {
            Ok(_) => created += 1,
            Err(Error::NodeExists) if overwrite => {
                warden
                    .set_data(&path, &data, None)
                    .await
                    .map_err(|e| Failure::zk(format!("restore {path}"), e))?;
                updated += 1;
            }
            Err(e) => {
                let hint = if e == Error::NodeExists {
                    " (--overwrite sets its data instead)"
                } else {
                    ""
                };
                return Err(Failure::zk(format!("restore {path}{hint}"), e));
            }
        }
        progress.tick();
    }
    let shown_root = if root.is_empty() { "/" } else { root };
    out.emit(
        format!(
            "restored {} nodes under {shown_root}: {created} created, {updated} updated",
            progress.count()
        ),
        &json!({ "root": shown_root, "created": created, "updated": updated }),
    );
    Ok(())
}
