//! Restoring watches on a new connection: SetWatches2 packets (xid -8) naming every watched
//! path, split so that no packet grows past [`SET_WATCHES_CHUNK`].

use bytes::BytesMut;
use tracing::warn;

use crate::client::watch::WatchPaths;
use crate::proto::OpCode;
use crate::proto::opcode::XID_SET_WATCHES;
use crate::proto::records::SetWatches2;
use crate::proto::request::encode_request;

/// Largest SetWatches2 packet we send; more watches are split over several packets.
pub(super) const SET_WATCHES_CHUNK: usize = 128 * 1024;

/// Appends the SetWatches2 packets for `paths`, relative to `last_zxid`, to `out`.
pub(super) fn write(out: &mut BytesMut, paths: WatchPaths, last_zxid: i64, max_frame_len: usize) {
    let mut chunk = SetWatches2 {
        relative_zxid: last_zxid,
        data_watches: Vec::new(),
        exist_watches: Vec::new(),
        child_watches: Vec::new(),
        persistent_watches: Vec::new(),
        persistent_recursive_watches: Vec::new(),
    };
    let mut chunk_len = 0;
    let lists = [
        (0, paths.data),
        (1, paths.exist),
        (2, paths.child),
        (3, paths.persistent),
        (4, paths.recursive),
    ];
    for (which, list) in lists {
        for path in list {
            if chunk_len + path.len() + 4 > SET_WATCHES_CHUNK {
                write_packet(out, &chunk, max_frame_len);
                chunk.data_watches.clear();
                chunk.exist_watches.clear();
                chunk.child_watches.clear();
                chunk.persistent_watches.clear();
                chunk.persistent_recursive_watches.clear();
                chunk_len = 0;
            }
            chunk_len += path.len() + 4;
            match which {
                0 => chunk.data_watches.push(path),
                1 => chunk.exist_watches.push(path),
                2 => chunk.child_watches.push(path),
                3 => chunk.persistent_watches.push(path),
                _ => chunk.persistent_recursive_watches.push(path),
            }
        }
    }
    if chunk_len > 0 {
        write_packet(out, &chunk, max_frame_len);
    }
}

fn write_packet(out: &mut BytesMut, record: &SetWatches2, max_frame_len: usize) {
    if encode_request(
        out,
        XID_SET_WATCHES,
        OpCode::SetWatches2,
        record,
        max_frame_len,
    )
    .is_err()
    {
        warn!("watch list too large to restore in one packet; some watches are lost");
    }
}
