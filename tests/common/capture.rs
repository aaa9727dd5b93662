//! Every event and span the crate logs, at every level, recorded in memory for tests that
//! check what is (and is not) logged. A test binary that uses it installs its global
//! subscriber on first use, so it must not also call `init_tracing`.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::format::FmtSpan;

/// Everything logged so far, at every level.
pub fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_span_events(FmtSpan::FULL)
            .with_thread_names(true)
            .with_writer(move || Appender(sink.clone()))
            .init();
        log
    })
    .clone()
}

/// A writer that appends to the shared log buffer.
struct Appender(Arc<Mutex<Vec<u8>>>);

impl io::Write for Appender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
