//! `--client raw`: the upper bound of one session against the server, for `get_pipe` and
//! `set_pipe` only. No client library: one request encoded once (only its xid changes), a
//! writer task that sends everything the in-flight limit allows in one write (or at most
//! `--raw-batch` requests per write, to see what the server makes of each pattern), and a reader
//! task that reads 64 KiB at a time and only counts the replies (it checks their error codes,
//! nothing else). Whatever the server does per request, it does for this as for any client;
//! what this spends is the least any client can. A client as fast as this one is limited by
//! the server, not by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::args::{Args, Workload};
use crate::driver::{BenchError, BenchResult, SESSION_TIMEOUT};
use crate::measure::{Probe, Sample};

const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_CLOSE: i32 = -11;

fn put_str(buf: &mut BytesMut, s: &[u8]) {
    buf.put_i32(s.len() as i32);
    buf.put_slice(s);
}

/// A request frame: length, xid, op, body.
fn frame(xid: i32, op: i32, body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(12 + body.len());
    buf.put_i32(8 + body.len() as i32);
    buf.put_i32(xid);
    buf.put_i32(op);
    buf.put_slice(body);
    buf
}

/// The body of a request on `path`: getData (no watch) or setData (any version).
fn body(op: i32, path: &str, data: &[u8]) -> BytesMut {
    let mut body = BytesMut::new();
    put_str(&mut body, path.as_bytes());
    match op {
        OP_GET_DATA => body.put_u8(0),
        OP_SET_DATA => {
            put_str(&mut body, data);
            body.put_i32(-1);
        }
        OP_DELETE => body.put_i32(-1),
        OP_CREATE => {
            put_str(&mut body, data);
            // One ACL: all permissions for world:anyone; persistent.
            body.put_i32(1);
            body.put_i32(31);
            put_str(&mut body, b"world");
            put_str(&mut body, b"anyone");
            body.put_i32(0);
        }
        _ => {}
    }
    body
}

/// Reads one whole frame (without its length) into `buf`'s front.
async fn read_frame(stream: &mut TcpStream, buf: &mut BytesMut) -> BenchResult<BytesMut> {
    loop {
        if buf.len() >= 4 {
            let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let len = usize::try_from(len).map_err(|_| BenchError::msg("raw: negative length"))?;
            if buf.len() >= 4 + len {
                buf.advance(4);
                return Ok(buf.split_to(len));
            }
        }
        if stream
            .read_buf(buf)
            .await
            .map_err(|e| BenchError::new("raw: read", e))?
            == 0
        {
            return Err(BenchError::msg("raw: the server closed the connection"));
        }
    }
}

/// One request and its reply; fails unless the server answers Ok.
async fn call(stream: &mut TcpStream, buf: &mut BytesMut, op: i32, body: &[u8]) -> BenchResult<()> {
    stream
        .write_all(&frame(1, op, body))
        .await
        .map_err(|e| BenchError::new("raw: write", e))?;
    let mut reply = read_frame(stream, buf).await?;
    reply.advance(12); // xid, zxid; the error code follows
    match reply.get_i32() {
        0 => Ok(()),
        err => Err(BenchError::msg(format!("raw: op {op} failed with {err}"))),
    }
}

pub(crate) async fn run(args: &Args) -> BenchResult<Sample> {
    let op = match args.workload {
        Workload::GetPipe => OP_GET_DATA,
        Workload::SetPipe => OP_SET_DATA,
        other => {
            return Err(BenchError::msg(format!(
                "raw: only get_pipe and set_pipe, not {}",
                other.name()
            )));
        }
    };
    let mut stream = TcpStream::connect(&args.connect)
        .await
        .map_err(|e| BenchError::new("raw: connect", e))?;
    stream
        .set_nodelay(true)
        .map_err(|e| BenchError::new("raw: nodelay", e))?;
    // The handshake: protocol 0, no zxid seen, the timeout, a new session, empty password.
    let mut hello = BytesMut::new();
    hello.put_i32(0);
    hello.put_i64(0);
    hello.put_i32(SESSION_TIMEOUT.as_millis() as i32);
    hello.put_i64(0);
    put_str(&mut hello, &[0; 16]);
    hello.put_u8(0);
    let mut framed = BytesMut::new();
    framed.put_i32(hello.len() as i32);
    framed.put_slice(&hello);
    stream
        .write_all(&framed)
        .await
        .map_err(|e| BenchError::new("raw: handshake", e))?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    read_frame(&mut stream, &mut buf).await?;

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let root = format!("/zkbench-raw-{}-{nanos}", std::process::id());
    let node = format!("{root}/node");
    let data = vec![b'z'; args.size];
    call(
        &mut stream,
        &mut buf,
        OP_CREATE,
        &body(OP_CREATE, &root, b"zkbench"),
    )
    .await?;
    call(
        &mut stream,
        &mut buf,
        OP_CREATE,
        &body(OP_CREATE, &node, &data),
    )
    .await?;

    let request = frame(2, op, &body(op, &node, &data));
    let batch = if args.raw_batch == 0 {
        usize::MAX
    } else {
        args.raw_batch
    };
    let (stream, warm) =
        pipelined(stream, buf, &request, 200.min(args.n), args.inflight, batch).await?;
    drop(warm);
    let probe = Probe::start()?;
    let (mut stream, mut buf) = pipelined(
        stream,
        BytesMut::with_capacity(64 * 1024),
        &request,
        args.n,
        args.inflight,
        batch,
    )
    .await?;
    let sample = probe.stop(args.n as u64, None)?;

    call(
        &mut stream,
        &mut buf,
        OP_DELETE,
        &body(OP_DELETE, &node, &[]),
    )
    .await?;
    call(
        &mut stream,
        &mut buf,
        OP_DELETE,
        &body(OP_DELETE, &root, &[]),
    )
    .await?;
    let _ = call(&mut stream, &mut buf, OP_CLOSE, &[]).await;
    Ok(sample)
}

/// Sends `n` copies of `request` (xids renumbered), at most `inflight` unanswered, and reads
/// all the replies, writing at most `batch` requests per write; returns the stream and read
/// buffer for what follows.
async fn pipelined(
    stream: TcpStream,
    buf: BytesMut,
    request: &[u8],
    n: usize,
    inflight: usize,
    batch: usize,
) -> BenchResult<(TcpStream, BytesMut)> {
    let (mut read_half, mut write_half) = stream.into_split();
    let completed = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let reader = {
        let completed = Arc::clone(&completed);
        let progress = Arc::clone(&progress);
        tokio::spawn(async move {
            let mut buf = buf;
            let mut done = 0;
            while done < n {
                buf.reserve(64 * 1024);
                if read_half
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| BenchError::new("raw: read", e))?
                    == 0
                {
                    return Err(BenchError::msg("raw: the server closed the connection"));
                }
                let before = done;
                while buf.len() >= 4 {
                    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    if buf.len() < 4 + len {
                        break;
                    }
                    let err = i32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
                    if err != 0 {
                        return Err(BenchError::msg(format!("raw: a request failed with {err}")));
                    }
                    buf.advance(4 + len);
                    done += 1;
                }
                if done > before {
                    completed.store(done, Ordering::Release);
                    progress.notify_one();
                }
            }
            Ok((read_half, buf))
        })
    };
    let mut out = BytesMut::with_capacity(request.len() * inflight);
    let mut issued = 0;
    let mut xid = 2i32;
    while issued < n {
        let allowed = ((completed.load(Ordering::Acquire) + inflight).min(n) - issued).min(batch);
        if allowed == 0 {
            progress.notified().await;
            continue;
        }
        for _ in 0..allowed {
            xid = xid.wrapping_add(1);
            out.put_slice(request);
            let at = out.len() - request.len() + 4;
            out[at..at + 4].copy_from_slice(&xid.to_be_bytes());
        }
        write_half
            .write_all(&out)
            .await
            .map_err(|e| BenchError::new("raw: write", e))?;
        out.clear();
        issued += allowed;
    }
    let (read_half, buf) = reader
        .await
        .map_err(|e| BenchError::msg(format!("raw: the reader failed: {e}")))??;
    let stream = read_half
        .reunite(write_half)
        .map_err(|e| BenchError::new("raw: reunite", e))?;
    Ok((stream, buf))
}
