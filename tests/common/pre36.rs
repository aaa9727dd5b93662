//! A scripted stand-in for a session that moves from a ZooKeeper 3.6+ member to an older one
//! (a mixed ensemble during a rolling upgrade): no such server is installed here, and what
//! matters is only how it answers the requests that restore watches.
//!
//! The first connection is served as 3.6+ serves it (`addWatch` is taken); every later one as a
//! server before 3.6: `addWatch` and SetWatches2 are answered `Unimplemented` and the connection
//! is closed (ZooKeeper's `UnimplementedRequestProcessor` does both), SetWatches is taken.
//! Nodes never exist: `exists` answers `NoNode`, which leaves an exists watch.

use std::sync::Arc;

use bytes::{Buf, BufMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, mpsc};

use super::scripted::{connect_response, frame, read_frame, reply_header};

const ZXID: i64 = 7;
const NO_NODE: i32 = -101;
const UNIMPLEMENTED: i32 = -6;

/// A request the peer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The connection it came on: 1 for the first.
    pub connection: usize,
    /// Its op code.
    pub op: i32,
    /// For SetWatches (op 101): its data, exist and child watch paths.
    pub set_watches: Option<[Vec<String>; 3]>,
}

/// What the test asks of the live connection.
enum Control {
    /// Close it.
    Cut,
    /// Send a `NodeCreated` notification for this path.
    Created(String),
}

/// The peer: where it listens, what it received, and a handle on its live connection.
pub struct Pre36Peer {
    /// `host:port` to connect to.
    pub addr: String,
    received: mpsc::UnboundedReceiver<Received>,
    control: mpsc::UnboundedSender<Control>,
}

impl Pre36Peer {
    /// Listens on a free loopback port.
    pub async fn start() -> Pre36Peer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind scripted peer");
        let addr = listener.local_addr().expect("local addr").to_string();
        let (received_tx, received) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        // One connection at a time takes the test's instructions.
        let control_rx = Arc::new(Mutex::new(control_rx));
        tokio::spawn(async move {
            let mut connection = 0;
            while let Ok((socket, _)) = listener.accept().await {
                connection += 1;
                let received = received_tx.clone();
                let control = control_rx.clone();
                tokio::spawn(async move {
                    let mut control = control.lock().await;
                    serve(socket, connection, &received, &mut control).await;
                });
            }
        });
        Pre36Peer {
            addr,
            received,
            control,
        }
    }

    /// Closes the live connection.
    pub fn cut(&self) {
        let _ = self.control.send(Control::Cut);
    }

    /// Sends a `NodeCreated` notification for `path` on the live connection.
    pub fn created(&self, path: &str) {
        let _ = self.control.send(Control::Created(path.to_owned()));
    }

    /// The next request received, pings left out.
    pub async fn next(&mut self) -> Received {
        loop {
            let received = self.received.recv().await.expect("the peer runs");
            if received.op != 11 {
                return received;
            }
        }
    }
}

async fn serve(
    socket: tokio::net::TcpStream,
    connection: usize,
    received: &mpsc::UnboundedSender<Received>,
    control: &mut mpsc::UnboundedReceiver<Control>,
) {
    let (mut read, mut write) = socket.into_split();
    if read_frame(&mut read).await.is_none() {
        return;
    }
    if write.write_all(&connect_response()).await.is_err() {
        return;
    }
    // Frames are read by their own task, so that waiting for one never loses half of it.
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut read).await {
            if frames_tx.send(frame).is_err() {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            request = frames.recv() => {
                let Some(request) = request else { break };
                if !answer(&mut write, connection, &request, received).await {
                    break;
                }
            }
            instruction = control.recv() => match instruction {
                Some(Control::Created(path)) => {
                    let mut event = reply_header(-1, ZXID, 0);
                    event.put_i32(1); // NodeCreated
                    event.put_i32(3); // SyncConnected
                    event.put_i32(path.len() as i32);
                    event.put_slice(path.as_bytes());
                    if write.write_all(&frame(&event)).await.is_err() {
                        break;
                    }
                }
                Some(Control::Cut) | None => break,
            },
        }
    }
    reader.abort();
}

/// Answers one request; `false` when the connection is to be closed.
async fn answer(
    write: &mut OwnedWriteHalf,
    connection: usize,
    request: &[u8],
    received: &mpsc::UnboundedSender<Received>,
) -> bool {
    let mut body = request;
    if body.len() < 8 {
        return false;
    }
    let xid = body.get_i32();
    let op = body.get_i32();
    let set_watches = (op == 101).then(|| read_set_watches(body));
    let _ = received.send(Received {
        connection,
        op,
        set_watches,
    });
    let newer = connection == 1;
    let (err, close) = match op {
        // Ping, SetWatches.
        11 | 101 => (0, false),
        // exists: no node.
        3 => (NO_NODE, false),
        // addWatch, SetWatches2: 3.6+ only.
        106 | 105 if newer => (0, false),
        // closeSession.
        -11 => (0, true),
        _ => (UNIMPLEMENTED, true),
    };
    let sent = write
        .write_all(&frame(&reply_header(xid, ZXID, err)))
        .await
        .is_ok();
    sent && !close
}

/// The three path lists of a SetWatches body (after its relative zxid).
fn read_set_watches(mut body: &[u8]) -> [Vec<String>; 3] {
    body.get_i64();
    let mut list = || {
        let count = body.get_i32();
        (0..count)
            .map(|_| {
                let len = body.get_i32() as usize;
                let path = String::from_utf8(body[..len].to_vec()).expect("a UTF-8 path");
                body.advance(len);
                path
            })
            .collect::<Vec<_>>()
    };
    [list(), list(), list()]
}
