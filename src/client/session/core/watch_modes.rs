//! Keeping this session's server-side watch entries at what its watchers need, path by path
//! (the rules are in [`ServerWatches`](crate::client::server_watches::ServerWatches)): watching requests are reshaped as they are written,
//! entries step down in place when a watcher goes, and child-list changes a recursive entry
//! reports only as a child's creation or deletion are told to the child-list watchers.

use bytes::BytesMut;

use super::SessionCore;
use super::link::Pending;
use crate::client::command::OnReply;
use crate::client::server_watches::Fix;
use crate::client::watch::{WatchKind, WatchedEvent};
use crate::proto::jute::Jute;
use crate::proto::records::{AddWatchRequest, PathWatchRequest, WatchesRequest};
use crate::proto::request::encode_request;
use crate::proto::{AddWatchMode, EventType, OpCode, WatcherType};

impl SessionCore {
    /// Adjusts a request about to be written with `xid` so that it takes nothing from
    /// another watch on its path: a one-shot watch under a persistent or recursive entry is
    /// kept client-side (the read goes without its watch flag), a persistent watch under a
    /// recursive entry is sent recursive, and removing one-shot watches there only checks.
    pub(super) fn shape_watch_request(
        &mut self,
        xid: i32,
        op: &mut OpCode,
        body: &mut BytesMut,
        on_reply: &OnReply,
    ) {
        match on_reply {
            OnReply::RegisterWatch {
                server_path, on_ok, ..
            } => match on_ok {
                WatchKind::Data | WatchKind::Exist | WatchKind::Child => {
                    if self.server_watches.covers(server_path) {
                        body.clear();
                        PathWatchRequest {
                            path: server_path,
                            watch: false,
                        }
                        .write(body);
                    }
                }
                WatchKind::Persistent | WatchKind::Recursive => {
                    let requested = if *on_ok == WatchKind::Recursive {
                        AddWatchMode::PersistentRecursive
                    } else {
                        AddWatchMode::Persistent
                    };
                    let mode = self.server_watches.add_watch(xid, server_path, requested);
                    if mode != requested {
                        body.clear();
                        AddWatchRequest {
                            path: server_path,
                            mode: mode.code(),
                        }
                        .write(body);
                    }
                }
            },
            OnReply::RemoveLocalWatches {
                server_path,
                watcher_type,
                ..
            } => match watcher_type {
                // The one-shot watches there are client-side only; removing the server's
                // data or child entry would strip the persistent watch.
                WatcherType::Data | WatcherType::Children
                    if self.server_watches.covers(server_path) =>
                {
                    *op = OpCode::CheckWatches;
                }
                WatcherType::Any => self.server_watches.remove_all(xid, server_path),
                _ => {}
            },
            OnReply::Nothing => {}
        }
    }

    /// Forgets a dropped watcher and brings the server's entries on its path down to what
    /// the watchers left there need.
    pub(super) fn unwatch(&mut self, id: u64, kind: WatchKind, server_path: &str) {
        if self.watches.unregister(id, kind, server_path) {
            self.step_down(kind, server_path);
        }
    }

    /// A watcher of `gone` left `server_path` (dropped, or removed by the server's word):
    /// writes what the server must change there. Disconnected, nothing: the next watch
    /// restore sends what remains.
    pub(super) fn step_down(&mut self, gone: WatchKind, server_path: &str) {
        let Some(link) = &self.link else {
            return;
        };
        let mut need = self.watches.needs(server_path);
        need.merge(link.needs_in_flight(server_path));
        let fixes = self.server_watches.after_removal(server_path, gone, need);
        for (i, fix) in fixes.into_iter().enumerate() {
            if let Some(xid) = self.write_fix(server_path, fix)
                && i == 0
            {
                self.server_watches.written(xid, server_path);
            }
        }
    }

    /// An `addWatch` on `server_path` failed (a server before 3.6): the entry there is what
    /// the other watchers need.
    ///
    /// One-shot reads written after it went without their watch flag; if nothing covers the
    /// path now, they are armed on the server (late, but better than never).
    pub(super) fn add_watch_failed(&mut self, server_path: &str) {
        let mut need = self.watches.needs(server_path);
        if let Some(link) = &self.link {
            need.merge(link.needs_in_flight(server_path));
        }
        self.server_watches.add_watch_failed(server_path, need);
        if self.server_watches.covers(server_path) || self.link.is_none() {
            return;
        }
        if need.data {
            self.write_fix(server_path, Fix::ArmData);
        }
        if need.child {
            self.write_fix(server_path, Fix::ArmChild);
        }
    }

    /// Writes one request of a step-down; returns its xid (`None` if it could not be
    /// encoded, which a path that was sent before cannot cause).
    fn write_fix(&mut self, path: &str, fix: Fix) -> Option<i32> {
        let xid = self.next_xid();
        let max = self.settings.max_frame_len;
        let out = &mut self.out;
        let (op, encoded) = match fix {
            Fix::AddWatch(mode) => {
                let record = AddWatchRequest {
                    path,
                    mode: mode.code(),
                };
                (
                    OpCode::AddWatch,
                    encode_request(out, xid, OpCode::AddWatch, &record, max),
                )
            }
            Fix::ArmData | Fix::ArmChild => {
                let op = if fix == Fix::ArmData {
                    OpCode::Exists
                } else {
                    OpCode::GetChildren
                };
                let record = PathWatchRequest { path, watch: true };
                (op, encode_request(out, xid, op, &record, max))
            }
            Fix::Remove(watcher_type) => {
                let record = WatchesRequest {
                    path,
                    kind: watcher_type.code(),
                };
                let op = OpCode::RemoveWatches;
                (op, encode_request(out, xid, op, &record, max))
            }
        };
        encoded.ok()?;
        self.push_pending(Pending {
            xid,
            op,
            reply: None,
            on_reply: OnReply::Nothing,
            span: tracing::Span::none(),
        });
        Some(xid)
    }

    /// After a creation or deletion at `server_path` was dispatched: when the server holds a
    /// recursive entry on its parent, that entry reported it instead of the parent's
    /// child-list change, so tell the parent's child-list watchers here.
    pub(super) fn derive_child_list_change(
        &mut self,
        event_type: EventType,
        server_path: &str,
        zxid: i64,
    ) {
        if !matches!(event_type, EventType::NodeCreated | EventType::NodeDeleted) {
            return;
        }
        let parent = match server_path.rfind('/') {
            Some(0) if server_path.len() > 1 => "/",
            Some(i) if i > 0 => &server_path[..i],
            _ => return,
        };
        if !self.server_watches.recursive_at(parent) {
            return;
        }
        let event = WatchedEvent {
            event_type: EventType::NodeChildrenChanged,
            path: self.settings.chroot.strip_owned(parent.to_owned()),
            zxid,
        };
        self.watches.dispatch_child_list(parent, &event);
    }
}
