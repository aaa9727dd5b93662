//! Looking for a read-write server while the session is served by a read-only one.
//!
//! A server that lost its quorum (and runs with `readonlymode.enabled=true`) serves reads to
//! clients that allow it. While connected to such a server the session task asks the other
//! hosts of the connect string, one at a time and in turn, whether they are read-write: it
//! sends the four-letter word `isro` and reads `rw` or `ro`. The pause before each question
//! starts at [`MIN_PAUSE`] and doubles up to [`MAX_PAUSE`] (the values ZooKeeper's Java client
//! uses), so a long partition costs one short TCP exchange a minute. The first host that
//! answers `rw` is where the session goes next.
//!
//! The probe runs beside the connection as a boxed future the task polls from its select
//! loop ([`Seeker::found`]); dropping the seeker stops it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

use super::connect::{AttemptError, resolve};
use super::transport::{Security, Transport};
use crate::Backoff;
use crate::client::connect_string::HostPort;

/// The pause before the first probe.
pub(crate) const MIN_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two probes.
pub(crate) const MAX_PAUSE: Duration = Duration::from_secs(60);
/// How long one probe (connect, ask, read the answer) may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// An `isro` answer is two bytes; anything much longer is not a ZooKeeper server.
const MAX_ANSWER: u64 = 64;

/// The pauses between probes: [`MIN_PAUSE`] doubling up to [`MAX_PAUSE`], without jitter (the
/// schedule ZooKeeper's Java client follows, and one a user can predict).
fn probe_schedule() -> Backoff {
    Backoff::new(MIN_PAUSE, MAX_PAUSE).without_jitter()
}

/// What a server said to `isro`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServerMode {
    /// `rw`: part of a quorum, takes writes.
    ReadWrite,
    /// `ro` (or `null`, a server not serving yet): no use for a session that wants writes.
    NotReadWrite,
}

/// Asks `host` whether it serves read-write, over the transport the session uses (TLS to a
/// TLS-only member, checking its certificate as a connection would).
///
/// # Errors
/// A description of the failure when the host cannot be reached, does not answer within
/// `timeout`, or is not allowed to answer (`isro` missing from `4lw.commands.whitelist`).
pub(crate) async fn ask(
    host: &HostPort,
    timeout: Duration,
    security: &Security,
) -> Result<ServerMode, String> {
    let exchange = async {
        let mut last = format!("{host}: resolved to no address");
        for addr in resolve(host, security).await.map_err(|e| e.to_string())? {
            match Transport::open(addr, host, security).await {
                Ok(mut stream) => return ask_over(&mut stream).await,
                Err(AttemptError::Failed(e) | AttemptError::Tls(e)) => last = e.to_string(),
                Err(e) => last = format!("{host}: {e:?}"),
            }
        }
        Err(last)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Sends `isro` and reads the answer up to the end of the stream.
async fn ask_over<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<ServerMode, String> {
    stream
        .write_all(b"isro")
        .await
        .map_err(|e| format!("cannot send isro: {e}"))?;
    // A no-op for TCP; pushes the TLS record out of rustls's buffer.
    stream
        .flush()
        .await
        .map_err(|e| format!("cannot send isro: {e}"))?;
    let mut answer = Vec::with_capacity(8);
    match stream.take(MAX_ANSWER).read_to_end(&mut answer).await {
        Ok(_) => {}
        // The server closes right after answering; over TLS it may do so without a
        // close_notify, which rustls reports as an error after the answer was read.
        Err(_) if !answer.is_empty() => {}
        Err(e) => return Err(format!("cannot read the answer: {e}")),
    }
    Ok(parse_answer(&answer))
}

fn parse_answer(answer: &[u8]) -> ServerMode {
    if answer.trim_ascii() == b"rw" {
        ServerMode::ReadWrite
    } else {
        ServerMode::NotReadWrite
    }
}

/// Probes `hosts` in turn, pausing by `schedule` before each probe, until one answers `rw`;
/// returns that host. Never returns when `hosts` is empty.
pub(crate) async fn seek(
    hosts: Vec<HostPort>,
    mut schedule: Backoff,
    security: Security,
) -> HostPort {
    if hosts.is_empty() {
        return std::future::pending().await;
    }
    for host in hosts.iter().cycle() {
        let pause = schedule.next_pause();
        tokio::time::sleep(pause).await;
        match ask(host, PROBE_TIMEOUT, &security).await {
            Ok(ServerMode::ReadWrite) => {
                debug!(%host, "read-write server found");
                return host.clone();
            }
            Ok(ServerMode::NotReadWrite) => debug!(%host, "probed: not read-write"),
            Err(reason) => debug!(%host, %reason, "probed: no answer"),
        }
    }
    // `cycle` over a non-empty list never ends.
    std::future::pending().await
}

type SeekFuture = Pin<Box<dyn Future<Output = HostPort> + Send>>;

/// A probe running beside a read-only connection, or nothing.
#[derive(Default)]
pub(crate) struct Seeker {
    running: Option<SeekFuture>,
}

impl Seeker {
    /// No probe: [`found`](Self::found) never completes.
    pub(crate) fn idle() -> Seeker {
        Seeker { running: None }
    }

    /// Starts probing every host of `hosts` except `current` (the read-only server itself),
    /// with the default schedule, reaching them as `security` says (the session's own
    /// transport).
    pub(crate) fn start(
        hosts: &[HostPort],
        current: Option<&HostPort>,
        security: &Security,
    ) -> Seeker {
        let others: Vec<HostPort> = hosts
            .iter()
            .filter(|h| Some(*h) != current)
            .cloned()
            .collect();
        if others.is_empty() {
            // A lone server leaves read-only mode by closing its connections; the
            // reconnect then finds it read-write.
            return Seeker::idle();
        }
        Seeker {
            running: Some(Box::pin(seek(others, probe_schedule(), security.clone()))),
        }
    }

    /// Completes with a read-write host once the probe finds one. Cancel-safe: the probe
    /// lives in the seeker, not in this future, so a select loop may call it every turn.
    pub(crate) async fn found(&mut self) -> HostPort {
        match self.running.as_mut() {
            Some(running) => {
                let host = running.await;
                self.running = None;
                host
            }
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_minimum_up_to_the_cap() {
        let mut schedule = probe_schedule();
        let pauses: Vec<u64> = (0..14)
            .map(|_| schedule.next_pause().as_millis() as u64)
            .collect();
        assert_eq!(
            pauses,
            [
                100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000, 60_000,
                60_000, 60_000
            ]
        );
    }

    #[test]
    fn only_rw_means_read_write() {
        assert_eq!(parse_answer(b"rw"), ServerMode::ReadWrite);
        assert_eq!(parse_answer(b"rw\n"), ServerMode::ReadWrite);
        assert_eq!(parse_answer(b"ro"), ServerMode::NotReadWrite);
        assert_eq!(parse_answer(b"null"), ServerMode::NotReadWrite);
        assert_eq!(
            parse_answer(b"isro is not executed because it is not in the whitelist."),
            ServerMode::NotReadWrite
        );
        assert_eq!(parse_answer(b""), ServerMode::NotReadWrite);
    }

    /// A fake server on loopback that answers every `isro` with `answer` and counts probes
    /// with the (paused) time each arrived.
    async fn fake_server(
        answer: &'static [u8],
    ) -> (
        HostPort,
        tokio::sync::mpsc::UnboundedReceiver<tokio::time::Instant>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut word = [0u8; 4];
                if stream.read_exact(&mut word).await.is_ok() && &word == b"isro" {
                    let _ = tx.send(tokio::time::Instant::now());
                    let _ = stream.write_all(answer).await;
                }
            }
        });
        (
            HostPort {
                host: "127.0.0.1".into(),
                port,
            },
            rx,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn probes_follow_the_schedule_until_a_server_says_rw() {
        let (ro, mut ro_probes) = fake_server(b"ro").await;
        let start = tokio::time::Instant::now();
        let mut seeker = Seeker::start(std::slice::from_ref(&ro), None, &Security::default());
        // Nothing answers rw: the probe keeps going, each pause twice the last.
        let mut arrivals = Vec::new();
        tokio::select! {
            biased;
            _ = seeker.found() => panic!("a read-only server was taken for read-write"),
            () = async {
                for _ in 0..5 {
                    arrivals.push(ro_probes.recv().await.expect("probe"));
                }
            } => {}
        }
        let offsets: Vec<u128> = arrivals.iter().map(|t| (*t - start).as_millis()).collect();
        // Paused clock: sleeps end exactly on time; local I/O takes no virtual time.
        assert_eq!(offsets, [100, 300, 700, 1_500, 3_100]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_rw_answer_ends_the_search() {
        let (ro, _ro_probes) = fake_server(b"ro").await;
        let (rw, mut rw_probes) = fake_server(b"rw").await;
        let current = HostPort {
            host: "127.0.0.1".into(),
            port: 1,
        };
        let hosts = vec![current.clone(), ro.clone(), rw.clone()];
        let mut seeker = Seeker::start(&hosts, Some(&current), &Security::default());
        let found = seeker.found().await;
        assert_eq!(found, rw);
        assert!(rw_probes.recv().await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_server_is_not_probed() {
        let only = HostPort {
            host: "127.0.0.1".into(),
            port: 1,
        };
        let mut seeker = Seeker::start(
            std::slice::from_ref(&only),
            Some(&only),
            &Security::default(),
        );
        assert!(seeker.running.is_none());
        let done = tokio::time::timeout(MAX_PAUSE * 10, seeker.found()).await;
        assert!(done.is_err());
    }
}
