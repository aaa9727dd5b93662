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

/// Serves one connection until it closes.
pub async fn serve(model: Shared, stream: DuplexStream, faults: ConnFaults, trace: Trace) {
    let (read, mut write) = tokio::io::split(stream);
    let mut frames = FramedRead::new(read, FrameCodec::new(1 << 20));
    let (outbox, mut out) = mpsc::unbounded_channel();
    let conn = lock(&model).open(outbox.clone());
    trace.log(format_args!(
        "server: conn {conn} opened ({})",
        faults.describe()
    ));
    let mut rng = fastrand::Rng::with_seed(faults.seed);
    let mut n = 0usize;
    // A stall happens once (the outbox may be served while `n` stays at the stall's request).
    let mut stalled = false;
    loop {
        if let Some((at, pause)) = faults.stall {
            if at == n && !stalled {
                stalled = true;
                trace.log(format_args!("server: conn {conn} stalls {pause:?}"));
                tokio::time::sleep(pause).await;
            }
        }
        tokio::select! {
            biased;
            item = out.recv() => match item {
                Some(Out::Frame(frame)) => {
                    let delay = faults.latency + faults.jitter.mul_f64(rng.f64());
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if write.write_all(&frame).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close) | None => break,
            },
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                if faults.drop_before == Some(n) {
                    trace.log(format_args!("server: conn {conn} dropped before request {n}"));
                    break;
                }
                let now = Instant::now();
                let mut m = lock(&model);
                if n == 0 {
                    let Ok(request) = decode_exact::<ConnectRequest>(&frame) else { break };
                    let reply = m.connect(conn, &request, now);
                    trace.log(format_args!(
                        "server: conn {conn} handshake session {:#x} -> {:#x} timeout {} ms",
                        request.session_id, reply.session_id, reply.timeout_ms
                    ));
                    let mut buf = bytes::BytesMut::new();
                    if encode_frame(&mut buf, &reply, 1 << 20).is_err() {
                        break;
                    }
                    let _ = outbox.send(Out::Frame(buf.freeze()));
                    if reply.timeout_ms <= 0 {
                        let _ = outbox.send(Out::Close);
                    }
                } else {
                    let handled = m.request(conn, &frame, now);
                    if trace.on() {
                        trace.log(format_args!(
                            "server: conn {conn} request {n} {:?} (zxid {})",
                            handled.op, m.tree.zxid
                        ));
                    }
                    if faults.lose_reply == Some(n) {
                        trace.log(format_args!("server: conn {conn} loses reply {n} after applying it"));
                        drop(m);
                        break;
                    }
                    if let Some(reply) = handled.reply {
                        let _ = outbox.send(Out::Frame(reply));
                    }
                    if handled.close {
                        let _ = outbox.send(Out::Close);
                    }
                }
                n += 1;
            }
        }
    }
    lock(&model).closed(conn);
    trace.log(format_args!("server: conn {conn} closed"));
    let _ = write.shutdown().await;
}
