//! Micro-benchmarks of the wire format: encoding requests into frames and decoding replies,
//! events and streams of frames, for the records on the hot path.
//!
//! ```text
//! cargo bench --bench codec
//! ```
//!
//! CI only builds this; numbers come from running it by hand.

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use tokio_util::codec::Decoder;
use zkwarden::proto::frame::{DEFAULT_MAX_FRAME_LEN, FrameCodec, begin_frame, finish_frame};
use zkwarden::proto::{
    GetDataResponse, Jute, OpCode, PathWatchRequest, Reader, ReplyHeader, RequestHeader,
    SetDataRequest, Stat, StatResponse, WatcherEvent,
};

/// A path of a typical length.
const PATH: &str = "/services/payments/config/feature-flags";

/// A plausible stat, so that no field encodes as a run of zeros.
fn stat(data_length: usize) -> Stat {
    Stat {
        czxid: 0x1_0000_0042,
        mzxid: 0x1_0000_1f00,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_123_456,
        version: 17,
        cversion: 3,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: data_length as i32,
        num_children: 3,
        pzxid: 0x1_0000_1e00,
    }
}

/// One request frame (length prefix, header, record) appended to `buf`, as the client builds
/// it.
fn encode_request<'r, R: Jute<'r>>(buf: &mut BytesMut, xid: i32, op: OpCode, record: &R) {
    let start = begin_frame(buf);
    RequestHeader { xid, op: op.code() }.write(buf);
    record.write(buf);
    finish_frame(buf, start, DEFAULT_MAX_FRAME_LEN).expect("a small frame fits");
}

/// The body of a reply frame (what follows the length prefix): header and record.
fn reply_body<'r, R: Jute<'r>>(xid: i32, record: &R) -> Bytes {
    let mut buf = BytesMut::new();
    ReplyHeader {
        xid,
        zxid: 0x1_0000_2000,
        err: 0,
    }
    .write(&mut buf);
    record.write(&mut buf);
    buf.freeze()
}

/// Reads a reply header and then one `R` filling the rest of `body`.
fn decode_reply<'a, R: Jute<'a>>(body: &'a Bytes) -> (ReplyHeader, R) {
    let mut reader = Reader::new(body);
    let header = ReplyHeader::read(&mut reader).expect("header");
    let record = R::read(&mut reader).expect("record");
    reader.finish().expect("nothing left over");
    (header, record)
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    let mut buf = BytesMut::with_capacity(64 * 1024);

    group.throughput(Throughput::Elements(1));
    group.bench_function("get_data_request", |b| {
        b.iter(|| {
            buf.clear();
            let request = PathWatchRequest {
                path: black_box(PATH),
                watch: false,
            };
            encode_request(&mut buf, black_box(7), OpCode::GetData, &request);
            black_box(buf.len())
        })
    });

    for size in [100usize, 4096] {
        let data = vec![0xa5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("set_data_request", size),
            &data,
            |b, data| {
                b.iter(|| {
                    buf.clear();
                    let request = SetDataRequest {
                        path: black_box(PATH),
                        data: black_box(data),
                        version: -1,
                    };
                    encode_request(&mut buf, black_box(8), OpCode::SetData, &request);
                    black_box(buf.len())
                })
            },
        );
    }
    group.finish();
}

fn replies(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");

    for size in [100usize, 4096] {
        let body = reply_body(
            7,
            &GetDataResponse {
                data: Bytes::from(vec![0x5au8; size]),
                stat: stat(size),
            },
        );
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("get_data_reply", size),
            &body,
            |b, body| {
                b.iter(|| {
                    let (header, reply): (ReplyHeader, GetDataResponse) =
                        decode_reply(black_box(body));
                    black_box((header.xid, reply.data.len(), reply.stat.version))
                })
            },
        );
    }

    // The client decodes its own requests only in tests, but the server-side shape of a
    // SetData request is the same record: decode it to see the cost of a borrowed record.
    let mut request = BytesMut::new();
    RequestHeader {
        xid: 8,
        op: OpCode::SetData.code(),
    }
    .write(&mut request);
    SetDataRequest {
        path: PATH,
        data: &[0xa5; 100],
        version: -1,
    }
    .write(&mut request);
    let request = request.freeze();
    // Criterion keeps a group's throughput until it is set again: set it for every benchmark.
    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("set_data_request", |b| {
        b.iter(|| {
            let mut reader = Reader::new(black_box(&request));
            let header = RequestHeader::read(&mut reader).expect("header");
            let record = SetDataRequest::read(&mut reader).expect("record");
            reader.finish().expect("nothing left over");
            black_box((header.op, record.path.len(), record.data.len()))
        })
    });

    let set_reply = reply_body(8, &StatResponse { stat: stat(100) });
    group.throughput(Throughput::Bytes(set_reply.len() as u64));
    group.bench_function("set_data_reply", |b| {
        b.iter(|| {
            let (header, reply): (ReplyHeader, StatResponse) = decode_reply(black_box(&set_reply));
            black_box((header.zxid, reply.stat.version))
        })
    });

    let event = reply_body(
        -1,
        &WatcherEvent {
            kind: 3,  // NodeDataChanged
            state: 3, // SyncConnected
            path: PATH.to_owned(),
        },
    );
    group.throughput(Throughput::Bytes(event.len() as u64));
    group.bench_function("watcher_event", |b| {
        b.iter(|| {
            let (header, event): (ReplyHeader, WatcherEvent) = decode_reply(black_box(&event));
            black_box((header.xid, event.kind, event.path.len()))
        })
    });
    group.finish();
}

fn frames(c: &mut Criterion) {
    const FRAMES: usize = 100;
    let mut group = c.benchmark_group("frame_codec");
    // A read buffer holding 100 GetData replies of 100 bytes each, as a busy pipeline sees.
    let body = reply_body(
        7,
        &GetDataResponse {
            data: Bytes::from(vec![0x5au8; 100]),
            stat: stat(100),
        },
    );
    let mut stream = BytesMut::new();
    for _ in 0..FRAMES {
        stream.put_i32(body.len() as i32);
        stream.put_slice(&body);
    }
    let stream = stream.freeze();
    group.throughput(Throughput::Elements(FRAMES as u64));
    group.bench_function("decode_100_frames", |b| {
        let mut codec = FrameCodec::default();
        b.iter_batched_ref(
            || BytesMut::from(&stream[..]),
            |buf| {
                let mut total = 0;
                while let Some(frame) = codec.decode(buf).expect("well-formed frames") {
                    total += frame.len();
                }
                black_box(total)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

// What `criterion_group!`/`criterion_main!` would generate, spelled out so that every item
// here is documented.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    requests(&mut criterion);
    replies(&mut criterion);
    frames(&mut criterion);
    criterion.final_summary();
}
