//! Picking free loopback ports.
//!
//! The kernel hands out a free port when we bind `127.0.0.1:0`; we note it and close the
//! listener so the JVM can bind it. Another process may grab the port in between, which the
//! servers detect ("Address already in use" in the log) and answer by retrying on new ports.
//! Within this process the same port is never handed out twice.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use super::error::TestingError;

/// Every port this process has handed out so far. Ports are never returned: a stopped server
/// keeps its port so that it can be restarted on it.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How many times we ask the kernel before giving up on finding an unused port.
const MAX_TRIES: usize = 64;

/// Returns a loopback port that is free right now and that this process has not handed out
/// before.
pub(crate) fn free_port() -> Result<u16, TestingError> {
    // Hold every listener until we have found a new port so the kernel cannot return the
    // same (already handed out) port again in this loop.
    let mut held = Vec::new();
    for _ in 0..MAX_TRIES {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| TestingError::io("binding 127.0.0.1:0 to find a free port", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| TestingError::io("reading the port of a probe listener", e))?
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.insert(port) {
            return Ok(port);
        }
        drop(handed_out);
        held.push(listener);
    }
    Err(TestingError::io(
        "finding a free loopback port",
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "the kernel kept returning ports this process already uses",
        ),
    ))
}

/// Returns `n` distinct free loopback ports.
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, TestingError> {
    (0..n).map(|_| free_port()).collect()
}
