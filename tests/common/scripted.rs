//! A scripted peer that speaks just enough of the server side of the protocol to misbehave
//! on purpose: the real server never sends bad frames, so these cases need a stand-in.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
}

/// Listens on a free loopback port and serves every connection with `behaviour`.
pub async fn start(behaviour: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind scripted peer");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, behaviour));
        }
    });
    addr.to_string()
}

async fn read_frame(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let len = socket.read_i32().await.ok()?;
    let mut body = vec![0u8; usize::try_from(len).ok()?];
    socket.read_exact(&mut body).await.ok()?;
    Some(body)
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn connect_response() -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i32(0); // protocol version
    body.put_i32(4000); // negotiated timeout
    body.put_i64(0x5c1e_0001); // session id
    body.put_i32(16);
    body.put_slice(&[7u8; 16]); // password
    body.put_u8(0); // read-only
    frame(&body)
}

fn reply_header(xid: i32, zxid: i64, err: i32) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_i32(xid);
    body.put_i64(zxid);
    body.put_i32(err);
    body
}

async fn serve(mut socket: TcpStream, behaviour: Misbehaviour) {
    if read_frame(&mut socket).await.is_none() {
        return;
    }
    if let Misbehaviour::SilentHandshake = behaviour {
        // Hold the socket open and say nothing.
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    if socket.write_all(&connect_response()).await.is_err() {
        return;
    }
    let Some(request) = read_frame(&mut socket).await else {
        return;
    };
    let xid = i32::from_be_bytes([request[0], request[1], request[2], request[3]]);
    let out: Vec<u8> = match behaviour {
        Misbehaviour::CloseOnRequest | Misbehaviour::SilentHandshake => Vec::new(),
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
    if let Misbehaviour::UnknownEventType = behaviour {
        // Stay connected so the test can see the session survive.
        let mut sink = [0u8; 1024];
        while matches!(socket.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}
