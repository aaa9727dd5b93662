//! One server connection: the handshake, then requests in and replies and events out, with
//! the faults the plan gave this connection.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::codec::FramedRead;
use zkwarden::proto::jute::decode_exact;
use zkwarden::proto::request::encode_frame;
use zkwarden::proto::{ConnectRequest, FrameCodec};

use super::{Model, Out};
use crate::net::{Dir, Links};
use crate::trace::Trace;

/// The model shared by the connections and the ticker.
pub type Shared = Arc<Mutex<Model>>;

/// Locks the model (a panic elsewhere already failed the run; the state is still readable).
pub fn lock(model: &Shared) -> MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(|e| e.into_inner())
}

/// What goes wrong on one connection, drawn from the seed when it is opened.
#[derive(Debug, Clone, Default)]
pub struct ConnFaults {
    /// Close the connection instead of handling request `n` (0 = the handshake).
    pub drop_before: Option<usize>,
    /// Apply request `n`, then close without sending its reply.
    pub lose_reply: Option<usize>,
    /// Before request `n`, neither read nor write for this long.
    pub stall: Option<(usize, Duration)>,
    /// Delay before each frame written.
    pub latency: Duration,
    /// Extra random delay up to this, per frame.
    pub jitter: Duration,
    /// Seed of the jitter.
    pub seed: u64,
}

impl ConnFaults {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.drop_before {
            parts.push(format!("drop before request {n}"));
        }
        if let Some(n) = self.lose_reply {
            parts.push(format!("lose reply {n}"));
        }
        if let Some((n, d)) = self.stall {
            parts.push(format!("stall {d:?} before request {n}"));
        }
        if !self.latency.is_zero() || !self.jitter.is_zero() {
            parts.push(format!("latency {:?}+{:?}", self.latency, self.jitter));
        }
        if parts.is_empty() {
            "no faults".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Where a connection leads: which member serves it, which client dialed it, and the
/// network windows (partitions, client pauses) that hold its frames.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The member serving it.
    pub member: usize,
    /// The client (actor) that dialed it.
    pub client: usize,
    /// The windows to obey (none: frames always flow).
    pub links: Option<Links>,
}

impl Endpoint {
    /// When frames going `dir` on this connection may flow again, if they are held at `now`:
    /// by a partition or pause window, or by the member being stalled.
    fn held_until(&self, model: &Shared, dir: Dir, now: Instant) -> Option<Instant> {
        let stalled = lock(model).stalled_until(self.member, now);
        let window = self
            .links
            .as_ref()
            .and_then(|l| l.held_until(self.client, self.member, dir, now));
        stalled.max(window)
    }

    /// Waits until frames going `dir` may flow (held frames keep their order: TCP delivers
    /// them late, or the connection dies first).
    async fn wait(&self, model: &Shared, dir: Dir) {
        while let Some(until) = self.held_until(model, dir, Instant::now()) {
            tokio::time::sleep_until(until).await;
        }
    }
}

/// What the reader does after a frame.
enum Step {
    /// Reads the next one.
    Next,
    /// Ends the connection now.
    End,
    /// Reads no more; the connection ends once the writer has sent what is queued.
    Close,
}

/// Serves one connection to member 0 until it closes.
pub async fn serve(model: Shared, stream: DuplexStream, faults: ConnFaults, trace: Trace) {
    serve_on(model, stream, Endpoint::default(), faults, trace).await;
}

/// Serves one connection to `endpoint.member` until it closes: a reader that hands requests
/// to the model, and a writer that sends what the model queued; each waits while its
/// direction is held.
pub async fn serve_on(
    model: Shared,
    stream: DuplexStream,
    endpoint: Endpoint,
    faults: ConnFaults,
    trace: Trace,
) {
    let (read, mut write) = tokio::io::split(stream);
    let mut frames = FramedRead::new(read, FrameCodec::new(1 << 20));
    let (outbox, mut out) = mpsc::unbounded_channel();
    let conn = lock(&model).open_on(endpoint.member, outbox.clone());
    trace.log(format_args!(
        "server: conn {conn} to member {} from client {} opened ({})",
        endpoint.member,
        endpoint.client,
        faults.describe()
    ));
    // A stall of this connection holds both directions.
    let quiet = Arc::new(Mutex::new(None::<Instant>));
    let reader = async {
        let mut n = 0usize;
        loop {
            if let Some((at, pause)) = faults.stall {
                if at == n {
                    trace.log(format_args!("server: conn {conn} stalls {pause:?}"));
                    let until = Instant::now() + pause;
                    *quiet.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
                    tokio::time::sleep_until(until).await;
                }
            }
            let Some(Ok(frame)) = frames.next().await else {
                break;
            };
            endpoint.wait(&model, Dir::ToServer).await;
            if faults.drop_before == Some(n) {
                trace.log(format_args!(
                    "server: conn {conn} dropped before request {n}"
                ));
                break;
            }
            let step = handle(&model, conn, n, &frame, &endpoint, &faults, &outbox, &trace);
            match step {
                Step::Next => {}
                Step::End => break,
                // Nothing more is read; the writer sends what is queued, then closes.
                Step::Close => std::future::pending::<()>().await,
            }
            n += 1;
        }
    };
    let writer = async {
        let mut rng = fastrand::Rng::with_seed(faults.seed);
        while let Some(Out::Frame(frame)) = out.recv().await {
            let quiet_until = *quiet.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = quiet_until {
                tokio::time::sleep_until(until).await;
            }
            endpoint.wait(&model, Dir::ToClient).await;
            let delay = faults.latency + faults.jitter.mul_f64(rng.f64());
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if write.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    // Whichever side ends first ends the connection.
    tokio::select! {
        biased;
        () = writer => {}
        () = reader => {}
    }
    lock(&model).closed(conn);
    trace.log(format_args!("server: conn {conn} closed"));
    let _ = write.shutdown().await;
}

/// Hands request `n` of connection `conn` (0: the handshake) to the model and queues what
/// it answers.
#[allow(clippy::too_many_arguments)]
fn handle(
    model: &Shared,
    conn: u64,
    n: usize,
    frame: &bytes::Bytes,
    endpoint: &Endpoint,
    faults: &ConnFaults,
    outbox: &mpsc::UnboundedSender<Out>,
    trace: &Trace,
) -> Step {
    let now = Instant::now();
    let mut m = lock(model);
    if n == 0 {
        let Ok(request) = decode_exact::<ConnectRequest>(frame) else {
            return Step::End;
        };
        let Some(reply) = m.handshake(conn, &request, now) else {
            let why = if m.serving(endpoint.member) {
                "it is behind the client"
            } else {
                "it does not serve (down, without a quorum or electing)"
            };
            trace.log(format_args!(
                "server: conn {conn} handshake session {:#x} (seen zxid {:#x}) refused by \
                 member {} at zxid {:#x}, {why}: closed",
                request.session_id,
                request.last_zxid_seen,
                endpoint.member,
                m.member_zxid(endpoint.member)
            ));
            return Step::End;
        };
        trace.log(format_args!(
            "server: conn {conn} handshake session {:#x} -> {:#x} timeout {} ms",
            request.session_id, reply.session_id, reply.timeout_ms
        ));
        let mut buf = bytes::BytesMut::new();
        if encode_frame(&mut buf, &reply, 1 << 20).is_err() {
            return Step::End;
        }
        let _ = outbox.send(Out::Frame(buf.freeze()));
        if reply.timeout_ms <= 0 {
            let _ = outbox.send(Out::Close);
            return Step::Close;
        }
    } else {
        let handled = m.request(conn, frame, now);
        if trace.on() {
            trace.log(format_args!(
                "server: conn {conn} request {n} {:?} (member zxid {}, committed {})",
                handled.op,
                m.member_zxid(endpoint.member),
                m.tree.zxid
            ));
        }
        if faults.lose_reply == Some(n) {
            trace.log(format_args!(
                "server: conn {conn} loses reply {n} after applying it"
            ));
            return Step::End;
        }
        match handled.reply {
            Some(reply) => {
                let _ = outbox.send(Out::Frame(reply));
            }
            None if handled.moved => {
                trace.log(format_args!(
                    "server: conn {conn} session moved to another member: closed \
                         unanswered"
                ));
            }
            None => {}
        }
        if handled.close {
            let _ = outbox.send(Out::Close);
            return Step::Close;
        }
    }
    Step::Next
}
