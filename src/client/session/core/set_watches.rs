//! Restoring watches on a new connection, split so that no packet grows past
//! [`SET_WATCHES_CHUNK`].
//!
//! Two requests can do it, both sent with xid -8: SetWatches (op 101), which every server
//! version takes but which carries one-shot watches only, and SetWatches2 (op 105, 3.6+), which
//! carries persistent and recursive watches too. As ZooKeeper's own client does, a packet is
//! SetWatches2 only when it holds a persistent or recursive watch, so a session with one-shot
//! watches alone restores them on any server.
//!
//! A server before 3.6 answers SetWatches2 `Unimplemented` and closes the connection (a
//! session moved there from a newer member of a mixed ensemble, for example). From then on the
//! session restores with SetWatches only: its persistent and recursive watches cannot be
//! restored (such a server has none to offer anyway), so each is removed as the server would
//! remove it: its stream gets [`EventType::PersistentWatchRemoved`] and ends. Its owner must
//! add it again and read afresh what it watched (the warden's resilient watches do, and on such
//! a server fall back to one-shot watches). One-shot watches are not lost.

use bytes::BytesMut;
use tracing::warn;

use super::{Exit, SessionCore};
use crate::client::watch::WatchPaths;
use crate::proto::opcode::XID_SET_WATCHES;
use crate::proto::records::{SetWatches, SetWatches2};
use crate::proto::request::encode_request;
use crate::proto::{ErrorCode, OpCode, WatcherType};

/// Largest SetWatches packet we send; more watches are split over several packets.
pub(super) const SET_WATCHES_CHUNK: usize = 128 * 1024;

impl SessionCore {
    /// Appends the packets restoring every watch, after dropping the persistent and recursive
    /// ones if the servers do not take SetWatches2.
    pub(super) fn restore_watches(&mut self) {
        if self.set_watches2_refused && !self.watches.is_empty() {
            self.remove_persistent_watches();
        }
        // The new connection holds exactly what this restore sets.
        self.server_watches.reset(self.watches.covers());
        if self.watches.is_empty() {
            return;
        }
        let sent_v2 = write(
            &mut self.out,
            self.watches.paths(),
            self.last_zxid,
            self.settings.max_frame_len,
        );
        if let Some(link) = &mut self.link {
            link.sent_set_watches2 = sent_v2;
        }
    }

    /// The server's answer to a SetWatches packet, with error code `err` (a session gone
    /// is handled before).
    ///
    /// # Errors
    /// [`Exit::Reconnect`] when the server does not know SetWatches2 (it closes the
    /// connection after saying so).
    pub(super) fn set_watches_answered(&mut self, err: i32) -> Result<(), Exit> {
        let code = ErrorCode::from_code(err);
        let sent_v2 = self
            .link
            .as_ref()
            .is_some_and(|link| link.sent_set_watches2);
        if code == ErrorCode::Unimplemented && sent_v2 && !self.set_watches2_refused {
            self.set_watches2_refused = true;
            warn!(
                session_id = %self.session_id,
                "server does not know SetWatches2 (before 3.6); restoring watches with SetWatches \
                 from the next connection on, without persistent and recursive watches"
            );
            return Err(Exit::Reconnect(
                "server does not know SetWatches2; reconnecting to restore watches with SetWatches"
                    .into(),
            ));
        }
        if err != 0 {
            warn!(err, "server refused to restore watches");
        }
        Ok(())
    }

    /// Removes every persistent and recursive watch, telling each watcher so.
    fn remove_persistent_watches(&mut self) {
        let paths = self.watches.paths();
        let lists = [
            (paths.persistent, WatcherType::Persistent),
            (paths.recursive, WatcherType::PersistentRecursive),
        ];
        for (list, watcher_type) in lists {
            for server_path in list {
                warn!(path = %server_path, ?watcher_type, "the server cannot restore this watch (before 3.6); removing it");
                let client_path = self.settings.chroot.strip_owned(server_path.clone());
                self.watches
                    .remove_all(&server_path, watcher_type, &client_path);
            }
        }
    }
}

/// Appends the packets for `paths`, relative to `last_zxid`, to `out`. Returns whether any of
/// them is SetWatches2.
pub(super) fn write(
    out: &mut BytesMut,
    paths: WatchPaths,
    last_zxid: i64,
    max_frame_len: usize,
) -> bool {
    let mut chunk = SetWatches2 {
        relative_zxid: last_zxid,
        data_watches: Vec::new(),
        exist_watches: Vec::new(),
        child_watches: Vec::new(),
        persistent_watches: Vec::new(),
        persistent_recursive_watches: Vec::new(),
    };
    let mut chunk_len = 0;
    let mut sent_v2 = false;
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
                sent_v2 |= write_packet(out, &mut chunk, max_frame_len);
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
        sent_v2 |= write_packet(out, &mut chunk, max_frame_len);
    }
    sent_v2
}

/// Appends `chunk` as one packet (SetWatches when it holds one-shot watches only) and empties
/// it. Returns whether it went out as SetWatches2.
fn write_packet(out: &mut BytesMut, chunk: &mut SetWatches2, max_frame_len: usize) -> bool {
    let v2 = !chunk.persistent_watches.is_empty() || !chunk.persistent_recursive_watches.is_empty();
    let encoded = if v2 {
        let encoded = encode_request(
            out,
            XID_SET_WATCHES,
            OpCode::SetWatches2,
            &*chunk,
            max_frame_len,
        );
        chunk.persistent_watches.clear();
        chunk.persistent_recursive_watches.clear();
        encoded
    } else {
        let record = SetWatches {
            relative_zxid: chunk.relative_zxid,
            data_watches: std::mem::take(&mut chunk.data_watches),
            exist_watches: std::mem::take(&mut chunk.exist_watches),
            child_watches: std::mem::take(&mut chunk.child_watches),
        };
        encode_request(
            out,
            XID_SET_WATCHES,
            OpCode::SetWatches,
            &record,
            max_frame_len,
        )
    };
    chunk.data_watches.clear();
    chunk.exist_watches.clear();
    chunk.child_watches.clear();
    if encoded.is_err() {
        warn!("watch list too large to restore in one packet; some watches are lost");
    }
    v2
}
