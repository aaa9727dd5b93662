//! The driver: the task that moves bytes and time between the socket and the
//! [`SessionCore`].
//!
//! # Who owns what
//!
//! The driver owns the tokio side: the command channel from the handles, the transport of the
//! live connection, its [`FrameReader`], the one timer (armed at the core's next deadline),
//! and the clock (every input to the core carries `Instant::now()`). It decides nothing: the
//! [core](super::core) decides what to send, what a frame means, when a timer fires and when
//! the connection or the session ends; the [`Connector`] decides which host to try and how to
//! reach it. The loop is tuned for throughput: everything queued goes out in one write, and
//! one read takes as many frames as arrived.

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::debug;

use super::config::SessionConfig;
use super::connect::Established;
use super::connector::Connector;
use super::core::{Exit, Handshaken, SessionCore};
use super::reader::FrameReader;
use super::rebalance::Rebalance;
use super::shared::Shared;
use super::transport::Transport;
#[cfg(any(feature = "tls", feature = "sim", test))]
use super::transport::buffered_io;
use crate::client::command::Command;
use crate::client::connect_string::HostPort;
use crate::error::Error;

/// Commands taken from the channel in one go before writing them out.
const COMMAND_BATCH: usize = 4096;

/// What woke the serving loop.
enum Wake {
    /// A read completed (0 bytes: the server closed the connection).
    Read(std::io::Result<usize>),
    /// A command from a handle (`None`: every handle is gone).
    Command(Option<Command>),
    /// The socket can take more of the out buffer.
    Writable,
    /// The connection failed (over a buffered transport: reading or writing).
    Failed(String),
    /// The core's deadline.
    Timer,
    /// While read-only: the background probe found a read-write server.
    ReadWriteFound(HostPort),
    /// The host list changed (`false`: every handle is gone, no change will come).
    Hosts(bool),
}

/// The task behind a [`Client`](crate::client::Client).
pub(crate) struct Driver {
    core: SessionCore,
    connector: Connector,
    commands: mpsc::UnboundedReceiver<Command>,
    /// The host list the handles set ([`Client::update_hosts`](crate::Client::update_hosts)).
    hosts: watch::Receiver<Vec<HostPort>>,
    /// False once every sender of `hosts` is gone.
    hosts_open: bool,
}

impl Driver {
    pub(crate) fn new(
        config: &SessionConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        hosts: watch::Receiver<Vec<HostPort>>,
        shared: std::sync::Arc<Shared>,
    ) -> Driver {
        Driver {
            core: SessionCore::new(config, shared, Instant::now()),
            connector: Connector::new(config),
            commands,
            hosts,
            hosts_open: true,
        }
    }

    /// Takes the new host list. Returns what the session should do about it.
    fn take_hosts(&mut self) -> Rebalance {
        let hosts = self.hosts.borrow_and_update().clone();
        let decision = self.connector.update_hosts(hosts);
        debug!(hosts = ?self.connector.hosts(), ?decision, "host list replaced");
        decision
    }

    /// Runs the session until it ends.
    pub(crate) async fn run(mut self) {
        let mut after_loss = false;
        let cause = loop {
            let est = match self.connect(after_loss).await {
                Ok(est) => est,
                Err(cause) => break cause,
            };
            let exit = self.serve(est).await;
            // A re-attach whose probe went unanswered was never serving: the next attempt
            // (which then hears whether the session expired) goes at once.
            after_loss = self.core.connection_proven();
            self.connector.disconnected();
            match exit {
                Exit::Reconnect(reason) => {
                    if let Some(cause) = self.core.connection_lost(&reason) {
                        break cause;
                    }
                }
                Exit::Terminal(cause) => break cause,
            }
        };
        self.commands.close();
        let commands = &mut self.commands;
        self.core
            .terminate(cause, std::iter::from_fn(|| commands.try_recv().ok()));
    }

    /// Hands a command to the core while no connection is up.
    fn hold(&mut self, command: Option<Command>) -> Result<(), Error> {
        self.core.command(command).map_err(Exit::into_error)
    }

    /// Tries hosts, round after round, until a handshake succeeds or the core gives up;
    /// commands arriving meanwhile are held by the core. `after_loss`: a connection that was
    /// serving was just lost, and the connector's pause comes first.
    async fn connect(&mut self, after_loss: bool) -> Result<Established, Error> {
        self.core.begin_connecting(Instant::now());
        if after_loss {
            let pause = self.connector.pause_after_loss();
            debug!(?pause, "pausing before re-attaching");
            let wake = (Instant::now() + pause).min(self.core.give_up_at());
            self.hold_until(wake).await?;
        }
        loop {
            if self.hosts.has_changed().unwrap_or(false) {
                // Not connected: nothing to move, the round below uses the new list.
                self.take_hosts();
            }
            let order = self.connector.round();
            for host in &order {
                let budget = self.core.attempt_budget(Instant::now(), order.len())?;
                debug!(%host, ?budget, session_id = %self.core.session_id(), "connecting");
                let attempt = self.connector.attempt(host, self.core.offer());
                // Boxed: the attempt (resolve, dial, handshake, SASL) is the largest state
                // of the task, and inline it would stay part of every idle session's task.
                let mut attempt = Box::pin(tokio::time::timeout(budget, attempt));
                // Biased (as every select of the session): a simulation replays a seed only
                // if nothing is left to tokio's random branch order.
                let outcome = loop {
                    tokio::select! {
                        biased;
                        outcome = &mut attempt => break outcome,
                        command = self.commands.recv() => self.hold(command)?,
                    }
                };
                match outcome {
                    Ok(Ok(est)) => {
                        self.connector.connected_to(host, est.addr, est.read_only);
                        return Ok(est);
                    }
                    Ok(Err(failure)) => self.core.attempt_failed(failure)?,
                    Err(_) => self.core.attempt_timed_out(host, budget),
                }
            }
            let give_up = self.core.round_failed();
            let wake = (Instant::now() + self.connector.next_pause()).min(give_up);
            self.hold_until(wake).await?;
        }
    }

    /// Waits until `wake`, handing the core the commands that arrive meanwhile. A new host
    /// list ends the wait early: it is worth trying now rather than after the pause.
    async fn hold_until(&mut self, wake: Instant) -> Result<(), Error> {
        let sleep = tokio::time::sleep_until(wake);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                () = &mut sleep => return Ok(()),
                command = self.commands.recv() => self.hold(command)?,
                changed = self.hosts.changed(), if self.hosts_open => {
                    if changed.is_ok() {
                        self.take_hosts();
                        return Ok(());
                    }
                    self.hosts_open = false;
                }
            }
        }
    }

    async fn serve(&mut self, est: Established) -> Exit {
        let hs = Handshaken {
            session_id: est.session_id,
            password: est.password.clone(),
            negotiated: est.negotiated,
            read_only: est.read_only,
            addr: est.addr,
        };
        self.core.connected(&hs, Instant::now());
        let Established {
            mut stream,
            mut reader,
            ..
        } = est;
        self.serve_loop(&mut stream, &mut reader).await
    }

    async fn serve_loop(&mut self, stream: &mut Transport, reader: &mut FrameReader) -> Exit {
        let far = Instant::now() + std::time::Duration::from_secs(86_400);
        let sleep = tokio::time::sleep_until(self.core.next_deadline().unwrap_or(far));
        tokio::pin!(sleep);
        let mut commands_open = true;
        // Set when the session decided to move to other hosts: no new command is taken (they
        // wait in the channel for the next connection), and the connection is left once
        // everything sent on it is answered, so a planned move fails no request.
        let mut draining = false;
        loop {
            if let Err(exit) = self.flush(stream) {
                return exit;
            }
            reader.reserve_chunk();
            // Set only by the buffered transports (TLS; a dialed stream).
            #[cfg_attr(not(any(feature = "tls", feature = "sim", test)), allow(unused_mut))]
            let mut wrote = false;
            let wake = match &mut *stream {
                Transport::Plain(tcp) => {
                    let want_write = !self.core.out_mut().is_empty();
                    // Read through AsyncRead rather than `try_read`: after a short read tokio
                    // knows the socket is drained and waits for the next readiness event,
                    // instead of making us find out with a read that returns EAGAIN (one
                    // syscall per wake-up saved).
                    let (mut read_half, write_half) = tcp.split();
                    tokio::select! {
                        biased;
                        read = read_half.read_buf(reader.buffer_mut()) => Wake::Read(read),
                        command = self.commands.recv(), if commands_open && !draining => Wake::Command(command),
                        ready = write_half.as_ref().writable(), if want_write => match ready {
                            Ok(()) => Wake::Writable,
                            Err(e) => Wake::Failed(format!("socket error: {e}")),
                        },
                        () = &mut sleep => Wake::Timer,
                        host = self.connector.read_write_found() => Wake::ReadWriteFound(host),
                        changed = self.hosts.changed(), if self.hosts_open => Wake::Hosts(changed.is_ok()),
                    }
                }
                #[cfg(any(feature = "tls", feature = "sim", test))]
                buffered => {
                    let io = buffered_io(
                        buffered,
                        self.core.out_mut(),
                        reader.buffer_mut(),
                        &mut wrote,
                    );
                    tokio::select! {
                        biased;
                        read = io => match read {
                            Ok(n) => Wake::Read(Ok(n)),
                            Err(e) => Wake::Failed(format!("connection failed: {e}")),
                        },
                        command = self.commands.recv(), if commands_open && !draining => Wake::Command(command),
                        () = &mut sleep => Wake::Timer,
                        host = self.connector.read_write_found() => Wake::ReadWriteFound(host),
                        changed = self.hosts.changed(), if self.hosts_open => Wake::Hosts(changed.is_ok()),
                    }
                }
            };
            if wrote {
                self.core.sent(Instant::now());
            }
            let step = match wake {
                Wake::Read(Ok(0)) => {
                    // Replies that arrived before the close still count.
                    Self::process_frames(&mut self.core, reader)
                        .and(Err(Exit::Reconnect("server closed the connection".into())))
                }
                Wake::Read(Ok(n)) => {
                    reader.note_read(n);
                    self.core.received(Instant::now());
                    Self::process_frames(&mut self.core, reader)
                }
                Wake::Read(Err(e)) => Err(Exit::Reconnect(format!("read failed: {e}"))),
                Wake::Failed(reason) => Err(Exit::Reconnect(reason)),
                Wake::Command(command) => {
                    commands_open = command.is_some();
                    self.batch_commands(command)
                }
                Wake::Writable => Ok(()),
                Wake::Timer => {
                    let step = self.core.on_timer(Instant::now());
                    sleep
                        .as_mut()
                        .reset(self.core.next_deadline().unwrap_or(far));
                    step
                }
                Wake::ReadWriteFound(host) => {
                    // Requests still in flight on the read-only server fail with
                    // ConnectionLoss (as on any reconnect); the next round tries `host` first.
                    Err(Exit::Reconnect(format!(
                        "read-write server {host} found; leaving the read-only server"
                    )))
                }
                Wake::Hosts(false) => {
                    self.hosts_open = false;
                    Ok(())
                }
                Wake::Hosts(true) => {
                    if let Rebalance::MoveTo(_) = self.take_hosts() {
                        draining = true;
                    }
                    Ok(())
                }
            };
            if let Err(exit) = step {
                return exit;
            }
            if draining && self.core.is_idle() {
                return Exit::Reconnect(
                    "the host list changed: moving to even out the load".into(),
                );
            }
        }
    }

    /// Hands `first` and whatever else is queued to the core, so it all goes out in one
    /// write.
    fn batch_commands(&mut self, first: Option<Command>) -> Result<(), Exit> {
        self.core.command(first)?;
        for _ in 0..COMMAND_BATCH {
            match self.commands.try_recv() {
                Ok(command) => self.core.command(Some(command))?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn process_frames(core: &mut SessionCore, reader: &mut FrameReader) -> Result<(), Exit> {
        loop {
            match reader.next_buffered() {
                Ok(Some(frame)) => core.frame(frame)?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(Exit::Reconnect(format!("bad frame from server: {e}"))),
            }
        }
    }

    /// Writes as much of the out buffer as a plain TCP socket takes without blocking. (The
    /// other transports write while the serving loop waits instead: see [`buffered_io`].)
    fn flush(&mut self, stream: &Transport) -> Result<(), Exit> {
        use bytes::Buf;

        let Some(tcp) = stream.as_plain() else {
            return Ok(());
        };
        let mut wrote = false;
        let out = self.core.out_mut();
        let result = loop {
            if out.is_empty() {
                break Ok(());
            }
            match tcp.try_write(out) {
                Ok(0) => break Err(Exit::Reconnect("socket accepted no bytes".into())),
                Ok(n) => {
                    out.advance(n);
                    wrote = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) => break Err(Exit::Reconnect(format!("write failed: {e}"))),
            }
        };
        if wrote {
            self.core.sent(Instant::now());
        }
        result
    }
}

#[cfg(test)]
mod tests;
