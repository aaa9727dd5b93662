//! The readable trace of a run: one line per step, stamped with the simulated time. Off
//! while seeds are swept (formatting costs), on when a failing seed is replayed.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

/// A trace shared by everything in one run.
#[derive(Clone, Debug)]
pub struct Trace {
    lines: Option<Arc<Mutex<Vec<String>>>>,
    start: Instant,
}

impl Trace {
    /// A trace that records when `on`.
    pub fn new(on: bool) -> Trace {
        Trace {
            lines: on.then(Default::default),
            start: Instant::now(),
        }
    }

    /// Whether lines are kept.
    pub fn on(&self) -> bool {
        self.lines.is_some()
    }

    /// The simulated time since the run started, for messages.
    pub fn time(&self) -> String {
        format!("{:.3}s", self.start.elapsed().as_secs_f64())
    }

    /// Adds a line.
    pub fn log(&self, line: fmt::Arguments<'_>) {
        if let Some(lines) = &self.lines {
            let line = format!("[{}] {line}", self.time());
            lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    }

    /// The lines so far.
    pub fn lines(&self) -> Vec<String> {
        match &self.lines {
            Some(lines) => lines.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            None => Vec::new(),
        }
    }
}
