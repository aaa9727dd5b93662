//! Talking to a server with four-letter words and reading its answers and log.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::error::TestingError;

/// How long a four-letter word asked by the user may take to connect, and to answer.
pub(crate) const USER_TIMEOUT: Duration = Duration::from_secs(5);
/// The same for the harness's own polling, which simply tries again: short, so that a
/// foreign process that took the port and never answers does not stall the start.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends a four-letter word (`ruok`, `srvr`, `stat`, `cons`, `mntr`, ...) and returns the
/// whole answer; the server closes the connection after answering. `timeout` bounds the
/// connect and each read and write.
pub(crate) fn four_letter(
    addr: SocketAddr,
    cmd: &str,
    timeout: Duration,
) -> Result<String, TestingError> {
    let context = || format!("sending {cmd:?} to {addr}");
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| TestingError::io(context(), e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.write_all(cmd.as_bytes()))
        .map_err(|e| TestingError::io(context(), e))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| TestingError::io(context(), e))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Sends the four-letter word `cmd` to the server at `addr` and returns its whole answer,
/// waiting at most five seconds to connect and for each read. Works with any server, not
/// only those this module starts (the server must allow the word: `4lw.commands.whitelist`).
///
/// # Errors
/// [`TestingError`] naming the word and the address when the server cannot be reached or
/// does not answer in time.
pub fn four_letter_word(addr: SocketAddr, cmd: &str) -> Result<String, TestingError> {
    four_letter(addr, cmd, USER_TIMEOUT)
}

/// The value of the `Mode:` line of a `srvr`/`stat` answer: `standalone`, `leader`,
/// `follower`, `observer` or `read-only`. `None` while the server is not serving.
pub(crate) fn mode(srvr_answer: &str) -> Option<&str> {
    srvr_answer
        .lines()
        .find_map(|line| line.strip_prefix("Mode:"))
        .map(str::trim)
}

/// The session ids in a `cons` answer (`...,sid=0x1000a3c2e5b0000,...`). Connections that
/// have no session yet (like the one asking) are skipped.
pub(crate) fn session_ids(cons_answer: &str) -> Vec<i64> {
    cons_answer
        .lines()
        .filter_map(|line| {
            let start = line.find("sid=0x")? + "sid=0x".len();
            let hex: String = line[start..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            // Session ids are signed 64-bit on the wire; the server prints their bit pattern.
            let id = u64::from_str_radix(&hex, 16).ok()?;
            Some(i64::from_ne_bytes(id.to_ne_bytes()))
        })
        .filter(|&id| id != 0)
        .collect()
}

/// The last `n` lines of a log file, or a note saying why it could not be read.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(could not read the log: {e})"),
    }
}

/// True when the log file contains `needle`.
pub(crate) fn log_contains(path: &Path, needle: &str) -> bool {
    fs::read(path).is_ok_and(|bytes| String::from_utf8_lossy(&bytes).contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mode() {
        let srvr = "Zookeeper version: 3.8.0\nZxid: 0x0\nMode: follower\nNode count: 5\n";
        assert_eq!(mode(srvr), Some("follower"));
        assert_eq!(
            mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[test]
    fn parses_session_ids() {
        let cons = " /127.0.0.1:40000[1](queued=0,recved=3,sent=3,sid=0x100003f2b7c0001,lop=PING)\n \
                    /127.0.0.1:40002[0](queued=0,recved=1,sent=0)\n \
                    /127.0.0.1:40004[1](queued=0,recved=1,sent=1,sid=0xffffffffffffffff,lop=PING)\n";
        assert_eq!(session_ids(cons), vec![0x0100_003f_2b7c_0001, -1]);
    }
}
