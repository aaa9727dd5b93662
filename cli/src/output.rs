//! Printing results: text for people, JSON for scripts.

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};
use zkwarden::Stat;

use crate::exit::Failure;

/// Where and how results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// JSON when `json`, text otherwise.
    pub fn new(json: bool) -> Output {
        Output { json }
    }

    /// One result as a line: `human` as text, or `value` as one line of JSON.
    pub fn render(self, human: impl std::fmt::Display, value: &Value) -> String {
        if self.json {
            value.to_string()
        } else {
            human.to_string()
        }
    }

    /// Prints one result (see [`Output::render`]). Returns false once standard output is
    /// closed (a reader like `head` went away), so streams can stop.
    pub fn emit(self, human: impl std::fmt::Display, value: &Value) -> bool {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", self.render(human, value))
            .and_then(|()| out.flush())
            .is_ok()
    }

    /// Reports a failure on standard error (as JSON with `--json`).
    pub fn failure(self, failure: &Failure) {
        let mut err = std::io::stderr().lock();
        // Nothing sensible is left to do when standard error itself is gone.
        let _ = if self.json {
            let value = json!({
                "error": failure.error_name(),
                "message": failure.to_string(),
                "exit_code": failure.exit_code(),
            });
            writeln!(err, "{value}")
        } else {
            writeln!(err, "zkwarden: {failure}")
        };
    }
}

/// A note for the person at the terminal (progress, what is happening): standard error, so
/// it never mixes with results.
pub fn note(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "zkwarden: {text}");
}

/// A progress line on standard error for long walks, shown only on a terminal.
#[derive(Debug)]
pub struct Progress {
    verb: &'static str,
    count: u64,
    shown: bool,
    enabled: bool,
}

impl Progress {
    /// Nodes counted so far are shown as `<verb> N nodes`.
    pub fn new(verb: &'static str) -> Progress {
        Progress {
            verb,
            count: 0,
            shown: false,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    /// One more node; the line is redrawn every 500.
    pub fn tick(&mut self) {
        self.count += 1;
        if self.enabled && self.count % 500 == 0 {
            self.shown = true;
            let _ = write!(std::io::stderr(), "\r{} {} nodes...", self.verb, self.count);
        }
    }

    /// Nodes counted.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// A session id as ZooKeeper prints it.
pub fn hex(id: i64) -> String {
    format!("0x{id:x}")
}

/// A stat as JSON: ZooKeeper's field names, times in ms since the epoch, owner in hex.
pub fn stat_json(stat: &Stat) -> Value {
    json!({
        "czxid": stat.czxid,
        "mzxid": stat.mzxid,
        "pzxid": stat.pzxid,
        "ctime": stat.ctime,
        "mtime": stat.mtime,
        "version": stat.version,
        "cversion": stat.cversion,
        "aversion": stat.aversion,
        "ephemeralOwner": hex(stat.ephemeral_owner),
        "dataLength": stat.data_length,
        "numChildren": stat.num_children,
    })
}

/// A stat as text, one field a line, times as dates.
pub fn stat_text(stat: &Stat) -> String {
    let time = |ms: i64| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
        humantime::format_rfc3339_millis(at).to_string()
    };
    let owner = if stat.ephemeral_owner == 0 {
        "none (persistent)".to_owned()
    } else {
        hex(stat.ephemeral_owner)
    };
    format!(
        "czxid          {:#x}\nmzxid          {:#x}\npzxid          {:#x}\nctime          {}\n\
         mtime          {}\nversion        {}\ncversion       {}\naversion       {}\n\
         ephemeralOwner {owner}\ndataLength     {}\nnumChildren    {}",
        stat.czxid,
        stat.mzxid,
        stat.pzxid,
        time(stat.ctime),
        time(stat.mtime),
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.data_length,
        stat.num_children
    )
}
