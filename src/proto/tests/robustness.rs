//! Property tests on hostile input: decoders return `Ok` or `Err` on any bytes and never panic,
//! and the frame codec yields the same frames however its input is split, and refuses every
//! declared length over its limit.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::encode_multi_results;
use super::strategies::*;
use crate::proto::frame::{FrameCodec, FrameError, begin_frame, finish_frame};
use crate::proto::jute::{Jute, Reader, decode_exact, encode_to_bytes};
use crate::proto::multi::{MultiRequest, decode_multi_results};
use crate::proto::records::*;
use crate::proto::{Acl, Id, Stat};

/// Decodes `bytes` as every record type, and as multi results; only a panic can fail this.
fn decode_everything(bytes: &Bytes) {
    macro_rules! try_all {
        ($($ty:ty),* $(,)?) => {
            $( let _ = decode_exact::<$ty>(bytes); )*
        };
    }
    try_all!(
        // Replies and everything else a client receives.
        ConnectResponse,
        ReplyHeader,
        CreateResponse,
        Create2Response,
        StatResponse,
        GetDataResponse,
        GetAclResponse,
        GetChildrenResponse,
        GetChildren2Response,
        GetAllChildrenNumberResponse,
        GetEphemeralsResponse,
        SyncResponse,
        WhoAmIResponse,
        ClientInfo,
        ErrorResponse,
        MultiHeader,
        WatcherEvent,
        Stat,
        Acl,
        Id,
        // Requests, which a test server or proxy would decode.
        ConnectRequest,
        RequestHeader,
        CreateRequest,
        CreateTtlRequest,
        DeleteRequest,
        PathWatchRequest,
        PathRequest,
        SetDataRequest,
        SetAclRequest,
        CheckVersionRequest,
        WatchesRequest,
        AddWatchRequest,
        AuthPacket,
        SetWatches,
        SetWatches2,
        ReconfigRequest,
        MultiRequest,
    );
    let _ = decode_multi_results(bytes);

    // A reply as the client reads it: a header, then a body of the kind the xid calls for.
    let mut r = Reader::new(bytes);
    if ReplyHeader::read(&mut r).is_ok() {
        let body = bytes.slice(r.position()..);
        let _ = decode_exact::<WatcherEvent>(&body);
        let _ = decode_multi_results(&body);
    }
}

/// Byte strings that look like jute more often than uniform noise does: runs of big-endian
/// integers that are typical lengths, counts, booleans and codes, mixed with raw bytes.
fn jute_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        4 => any::<u8>().prop_map(|b| vec![b]),
        3 => prop_oneof![Just(-1i32), Just(0), Just(1), Just(2), Just(3), Just(-2), Just(-110),
                         Just(15), 0i32..40, Just(i32::MAX), Just(i32::MIN)]
            .prop_map(|n| n.to_be_bytes().to_vec()),
        1 => any::<i64>().prop_map(|n| n.to_be_bytes().to_vec()),
        1 => Just(vec![0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff]), // multi terminator
    ];
    vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

/// A valid encoding of some record, then damaged: bytes overwritten and the tail cut.
fn damaged_encoding() -> impl Strategy<Value = Vec<u8>> {
    let valid = prop_oneof![
        (text(), stat()).prop_map(|(path, stat)| encode_to_bytes(&Create2Response { path, stat })),
        (blob(), stat()).prop_map(|(data, stat)| encode_to_bytes(&GetDataResponse {
            data: Bytes::from(data),
            stat
        })),
        (acls(), stat()).prop_map(|(acl, stat)| encode_to_bytes(&GetAclResponse { acl, stat })),
        (texts(), stat())
            .prop_map(|(children, stat)| encode_to_bytes(&GetChildren2Response { children, stat })),
        connect_response().prop_map(|r| encode_to_bytes(&r)),
        vec(client_info(), 0..3)
            .prop_map(|client_info| encode_to_bytes(&WhoAmIResponse { client_info })),
        vec(op_result(), 0..4).prop_map(|results| encode_multi_results(&results)),
    ];
    (
        valid,
        vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(valid, edits, cut)| {
            let mut bytes = valid.to_vec();
            if !bytes.is_empty() {
                for (at, value) in edits {
                    let at = at.index(bytes.len());
                    bytes[at] = value;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// Feeds `chunks` to a fresh codec one after the other, decoding all it can after each, then
/// signals end of input. Returns the frames and the error that stopped decoding, if any.
fn run_codec(limit: usize, chunks: &[&[u8]]) -> (Vec<Bytes>, Option<FrameError>) {
    let mut codec = FrameCodec::new(limit);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

/// Splits `stream` at the given points (taken modulo its length, in any order).
fn split_at_points<'s>(stream: &'s [u8], points: &[prop::sample::Index]) -> Vec<&'s [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p.index(stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&stream[start..cut]);
        start = cut;
    }
    chunks.push(&stream[start..]);
    chunks
}

/// A byte stream of well-formed frames, optionally followed by arbitrary bytes.
fn frame_stream() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
    (
        vec(vec(any::<u8>(), 0..40), 0..6),
        prop_oneof![2 => Just(Vec::new()), 1 => vec(any::<u8>(), 0..12)],
    )
}

fn concat_frames(payloads: &[Vec<u8>], tail: &[u8]) -> Vec<u8> {
    let mut stream = Vec::new();
    for payload in payloads {
        stream.put_i32(payload.len() as i32);
        stream.extend_from_slice(payload);
    }
    stream.extend_from_slice(tail);
    stream
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic_on_random_bytes(bytes in vec(any::<u8>(), 0..96)) {
        decode_everything(&Bytes::from(bytes));
    }

    #[test]
    fn decoders_never_panic_on_jute_like_bytes(bytes in jute_ish()) {
        decode_everything(&Bytes::from(bytes));
    }

    #[test]
    fn decoders_never_panic_on_damaged_encodings(bytes in damaged_encoding()) {
        decode_everything(&Bytes::from(bytes));
    }

    /// Well-formed frames come out as they went in, however the stream is split.
    #[test]
    fn frames_survive_any_split(
        (payloads, _) in frame_stream(),
        points in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream = concat_frames(&payloads, &[]);
        let (frames, error) = run_codec(64, &split_at_points(&stream, &points));
        prop_assert_eq!(error, None);
        prop_assert_eq!(frames, payloads);
    }

    /// On any stream, valid or not, splitting it does not change the frames decoded or the error
    /// that stops decoding.
    #[test]
    fn splitting_never_changes_the_outcome(
        (payloads, tail) in frame_stream(),
        noise in vec(any::<u8>(), 0..48),
        use_noise in any::<bool>(),
        limit in 0usize..48,
        points in vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let stream = if use_noise { noise } else { concat_frames(&payloads, &tail) };
        let whole = run_codec(limit, &[&stream]);
        let split = run_codec(limit, &split_at_points(&stream, &points));
        prop_assert_eq!(&split, &whole);
        let bytes_one_at_a_time: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(&run_codec(limit, &bytes_one_at_a_time), &whole);
        // Nothing decoded is over the limit.
        prop_assert!(whole.0.iter().all(|f| f.len() <= limit));
    }

    /// A declared length over the limit is an error as soon as the prefix is complete, whatever
    /// follows it and however much of it has arrived.
    #[test]
    fn oversized_lengths_are_always_refused(
        limit in 0usize..(1 << 20),
        excess in 1usize..(1 << 20),
        following in vec(any::<u8>(), 0..16),
        split in any::<prop::sample::Index>(),
    ) {
        let len = limit + excess;
        let mut stream = (len as i32).to_be_bytes().to_vec();
        stream.extend_from_slice(&following);
        let expected = Some(FrameError::TooLarge { len, limit });
        prop_assert_eq!(run_codec(limit, &[&stream]), (vec![], expected.clone()));
        let cut = split.index(stream.len() + 1);
        prop_assert_eq!(
            run_codec(limit, &[&stream[..cut], &stream[cut..]]),
            (vec![], expected.clone())
        );

        // Behind a good frame, too.
        let mut behind = vec![0, 0, 0, 0];
        behind.extend_from_slice(&stream);
        prop_assert_eq!(run_codec(limit, &[&behind]), (vec![Bytes::new()], expected));
    }

    #[test]
    fn negative_lengths_are_always_refused(len in i32::MIN..0, following in vec(any::<u8>(), 0..8)) {
        let mut stream = len.to_be_bytes().to_vec();
        stream.extend_from_slice(&following);
        prop_assert_eq!(
            run_codec(DEFAULT_LIMIT, &[&stream]),
            (vec![], Some(FrameError::NegativeLength(len)))
        );
    }

    /// The encoder and the in-place frame builder refuse what the decoder would refuse, and leave
    /// the output buffer as it was.
    #[test]
    fn encoders_respect_the_limit(
        limit in 0usize..64,
        payload in vec(any::<u8>(), 0..96),
        already in vec(any::<u8>(), 0..8),
    ) {
        let mut codec = FrameCodec::new(limit);
        let mut dst = BytesMut::from(&already[..]);
        let result = codec.encode(Bytes::from(payload.clone()), &mut dst);
        let mut in_place = BytesMut::from(&already[..]);
        let start = begin_frame(&mut in_place);
        in_place.extend_from_slice(&payload);
        let in_place_result = finish_frame(&mut in_place, start, limit);
        if payload.len() > limit {
            let expected = FrameError::TooLarge { len: payload.len(), limit };
            prop_assert_eq!(result, Err(expected.clone()));
            prop_assert_eq!(in_place_result, Err(expected));
            prop_assert_eq!(&dst[..], &already[..]);
            prop_assert_eq!(&in_place[..], &already[..]);
        } else {
            prop_assert_eq!(result, Ok(()));
            prop_assert_eq!(in_place_result, Ok(()));
            prop_assert_eq!(&dst, &in_place);
            let mut frames = dst.split_off(already.len());
            prop_assert_eq!(codec.decode(&mut frames), Ok(Some(Bytes::from(payload))));
            prop_assert!(frames.is_empty());
        }
    }
}

const DEFAULT_LIMIT: usize = crate::proto::DEFAULT_MAX_FRAME_LEN;

#[test]
fn hostile_counts_do_not_allocate_or_panic() {
    // Counts and lengths at the edges of i32, for every kind of vector a reply can hold.
    for count in [i32::MAX, i32::MIN, -2, 1 << 30] {
        let mut buf = BytesMut::new();
        buf.put_i32(count);
        buf.put_slice(&[0; 8]);
        decode_everything(&buf.freeze());
    }
}
