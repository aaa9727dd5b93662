//! A scripted peer that speaks just enough of the server side of the protocol to misbehave
//! on purpose: the real server never sends bad frames, so these cases need a stand-in.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the peer does after the handshake, when the first request arrives.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Close the socket without replying.
    CloseOnRequest,
    /// Announce a frame longer than the client's limit.
    OversizedFrame,
    /// Send half a frame, then close.
    TruncatedFrame,
    /// Reply with an xid nobody asked for.
    UnknownXid,
    /// Send a notification with an event type the protocol does not define, then answer the
    /// request properly.
    UnknownEventType,
    /// Never answer the handshake at all.
    SilentHandshake,
    /// Answer the handshake, then read every request and never answer one (nor a ping).
    SilentAfterHandshake,
    /// Send a watch notification whose path is not UTF-8.
    GarbageWatchPath,
    /// Announce a frame with a negative length.
    NegativeFrameLength,
    /// Send a frame too short to hold a reply header.
    ShortReplyHeader,
    /// Answer the handshake with a negotiated timeout of 0 (the server's way of saying the
    /// session has expired), then close.
    ExpiredHandshake,
    /// Answer the first request with success and a body holding only this path (the reply to
    /// a `create`), then stay connected.
    ReplyWithPath(&'static str),
}

/// Listens on a free loopback port and serves every connection with `behaviour`.
pub async fn start(behaviour: Misbehaviour) -> String {
    start_counting(behaviour).await.0
}

/// As [`start`], also telling how many handshakes the peer has answered so far.
pub async fn start_counting(behaviour: Misbehaviour) -> (String, watch::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind scripted peer");
    let addr = listener.local_addr().expect("local addr");
    let (handshakes, counted) = watch::channel(0usize);
    tokio::spawn(async move {
        let handshakes = std::sync::Arc::new(handshakes);
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, behaviour, handshakes.clone()));
        }
    });
    (addr.to_string(), counted)
}

pub(super) async fn read_frame(
    socket: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Option<Vec<u8>> {
    let len = socket.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(len).ok()?];
    socket.read_exact(&mut body).await.ok()?;
    Some(body)
}

pub(super) fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The negotiated timeout the peer grants (the client's read timeout is two thirds of it).
pub const NEGOTIATED_TIMEOUT_MS: i32 = 4000;

/// The session id the peer hands out on every connection.
pub const SESSION_ID: i64 = 0x5c1e_0001;

pub(super) fn connect_response() -> Vec<u8> {
    connect_response_with_timeout(NEGOTIATED_TIMEOUT_MS)
}

fn connect_response_with_timeout(timeout_ms: i32) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i32(0); // protocol version
    body.put_i32(timeout_ms); // negotiated timeout
    body.put_i64(SESSION_ID); // session id
    body.put_i32(16);
    body.put_slice(&[7u8; 16]); // password
    body.put_u8(0); // read-only
    frame(&body)
}

pub(super) fn reply_header(xid: i32, zxid: i64, err: i32) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i32(xid);
    body.put_i64(zxid);
    body.put_i32(err);
    body
}

async fn serve(
    mut socket: TcpStream,
    behaviour: Misbehaviour,
    handshakes: std::sync::Arc<watch::Sender<usize>>,
) {
    if read_frame(&mut socket).await.is_none() {
        return;
    }
    if let Misbehaviour::SilentHandshake = behaviour {
        // Hold the socket open and say nothing.
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    if let Misbehaviour::ExpiredHandshake = behaviour {
        // As a real server does: the verdict, then the connection closes.
        let _ = socket.write_all(&connect_response_with_timeout(0)).await;
        let _ = socket.flush().await;
        return;
    }
    if socket.write_all(&connect_response()).await.is_err() {
        return;
    }
    handshakes.send_modify(|n| *n += 1);
    if let Misbehaviour::SilentAfterHandshake = behaviour {
        // Swallow requests and pings alike; answer nothing.
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    // Pings are answered as a real server answers them (a client that re-attached a session
    // proves it alive with one); the misbehaviour waits for the first real request.
    let request = loop {
        let Some(incoming) = read_frame(&mut socket).await else {
            return;
        };
        if incoming.len() >= 4
            && i32::from_be_bytes([incoming[0], incoming[1], incoming[2], incoming[3]]) == -2
        {
            if socket
                .write_all(&frame(&reply_header(-2, 1, 0)))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        break incoming;
    };
    let xid = i32::from_be_bytes([request[0], request[1], request[2], request[3]]);
    let out: Vec<u8> = match behaviour {
        Misbehaviour::CloseOnRequest
        | Misbehaviour::SilentHandshake
        | Misbehaviour::SilentAfterHandshake
        | Misbehaviour::ExpiredHandshake => Vec::new(),
        Misbehaviour::NegativeFrameLength => (-5i32).to_be_bytes().to_vec(),
        Misbehaviour::ShortReplyHeader => frame(&xid.to_be_bytes()),
        Misbehaviour::GarbageWatchPath => {
            let mut event = reply_header(-1, -1, 0);
            event.put_i32(1); // NodeCreated
            event.put_i32(3); // SyncConnected
            event.put_i32(3);
            event.put_slice(&[b'/', 0xff, 0xfe]); // not UTF-8
            frame(&event)
        }
        Misbehaviour::ReplyWithPath(path) => {
            let mut reply = reply_header(xid, 1, 0);
            reply.put_i32(path.len() as i32);
            reply.put_slice(path.as_bytes());
            frame(&reply)
        }
        Misbehaviour::OversizedFrame => (64 * 1024 * 1024i32).to_be_bytes().to_vec(),
        Misbehaviour::TruncatedFrame => {
            let mut partial = frame(&reply_header(xid, 1, 0));
            partial.truncate(9);
            partial
        }
        Misbehaviour::UnknownXid => frame(&reply_header(xid + 1000, 1, 0)),
        Misbehaviour::UnknownEventType => {
            let mut event = reply_header(-1, -1, 0);
            event.put_i32(99); // no such event type
            event.put_i32(3); // SyncConnected
            event.put_i32(2);
            event.put_slice(b"/x");
            let mut out = frame(&event);
            // Then a proper reply to an exists request: a stat.
            let mut reply = reply_header(xid, 1, 0);
            reply.put_slice(&[0u8; 68]);
            out.extend_from_slice(&frame(&reply));
            out
        }
    };
    let _ = socket.write_all(&out).await;
    let _ = socket.flush().await;
    if let Misbehaviour::UnknownEventType
    | Misbehaviour::ReplyWithPath(_)
    | Misbehaviour::GarbageWatchPath
    | Misbehaviour::NegativeFrameLength
    | Misbehaviour::ShortReplyHeader = behaviour
    {
        // Stay connected so the test can see the session survive (and that the client, not
        // a closed socket, ended a connection that sent it something bad).
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}
