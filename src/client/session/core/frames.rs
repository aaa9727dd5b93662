//! What the core does with each frame the server sends: replies (matched in order to the
//! pending queue), auth replies, pings, SetWatches answers and notifications.

use bytes::Bytes;
use tracing::{trace, warn};

use super::{Exit, SessionCore};
use crate::client::command::{OnReply, Reply};
use crate::client::watch::{WatchKind, WatchedEvent};
use crate::error::Error;
use crate::proto::jute::{Jute, Reader, decode_exact};
use crate::proto::opcode::{XID_AUTH, XID_NOTIFICATION, XID_PING, XID_SET_WATCHES};
use crate::proto::records::{ReplyHeader, WatcherEvent};
use crate::proto::{ErrorCode, EventType, KeeperState, OpCode, WatcherType};

impl SessionCore {
    /// One frame from the server (without its length prefix).
    ///
    /// # Errors
    /// [`Exit::Reconnect`] for a frame that does not fit the conversation (malformed, a reply
    /// out of order); [`Exit::Terminal`] when the server says the session is over, or when it
    /// answered the close.
    pub(crate) fn frame(&mut self, frame: Bytes) -> Result<(), Exit> {
        let mut reader = Reader::new(&frame);
        let header = ReplyHeader::read(&mut reader)
            .map_err(|e| Exit::Reconnect(format!("bad reply header: {e}")))?;
        let body = frame.slice(reader.position()..);
        if header.zxid > self.last_zxid {
            self.last_zxid = header.zxid;
        }
        if header.err == ErrorCode::SessionClosedRequireSaslAuth.code() {
            // The server requires SASL and this session did not authenticate: it answers
            // whatever comes first with this code and closes. Reconnecting cannot help.
            warn!(session_id = %self.session_id, "server requires SASL authentication");
            return Err(Exit::Terminal(Error::AuthFailed));
        }
        // Auth replies are sent before the server's request pipeline, and notifications only
        // tell of watches: neither proves that the server still knows the session.
        let proves = !matches!(header.xid, XID_AUTH | XID_NOTIFICATION);
        self.dispatch(header, body)?;
        if proves {
            self.prove();
        }
        Ok(())
    }

    fn dispatch(&mut self, header: ReplyHeader, body: Bytes) -> Result<(), Exit> {
        match header.xid {
            XID_NOTIFICATION => self.notification(header.zxid, &body),
            // As for a request's reply (see `reply`): the server no longer knows the
            // session, though this connection is still open. Nothing else would tell us.
            XID_PING | XID_SET_WATCHES if ErrorCode::from_code(header.err).means_session_gone() => {
                warn!(session_id = %self.session_id, xid = header.xid, "server answered with session expired");
                Err(Exit::Terminal(Error::SessionExpired))
            }
            XID_PING => Ok(()),
            XID_AUTH => self.auth_reply(header.err),
            XID_SET_WATCHES => self.set_watches_answered(header.err),
            xid => self.reply(xid, header, body),
        }
    }

    fn reply(&mut self, xid: i32, header: ReplyHeader, body: Bytes) -> Result<(), Exit> {
        let Some(link) = &mut self.link else {
            return Err(Exit::Reconnect(format!(
                "reply with xid {xid} to no request"
            )));
        };
        let Some(pending) = link.pending.pop_front() else {
            return Err(Exit::Reconnect(format!(
                "reply with xid {xid} to no request"
            )));
        };
        if pending.xid != xid {
            let expected = pending.xid;
            link.pending.push_front(pending);
            return Err(Exit::Reconnect(format!(
                "reply out of order: expected xid {expected}, got {xid}"
            )));
        }
        let code = ErrorCode::from_code(header.err);
        trace!(parent: &pending.span, xid, op = pending.op.name(), err = header.err, "reply");
        self.server_watches.replied(xid, code == ErrorCode::Ok);
        match pending.on_reply {
            OnReply::Nothing => {}
            OnReply::RegisterWatch {
                id,
                server_path,
                on_ok,
                on_no_node,
                sink,
            } => {
                let kind = match code {
                    ErrorCode::Ok => Some(on_ok),
                    ErrorCode::NoNode => on_no_node,
                    _ => None,
                };
                if kind.is_none() && matches!(on_ok, WatchKind::Persistent | WatchKind::Recursive) {
                    self.add_watch_failed(&server_path);
                }
                if let Some(kind) = kind {
                    // A handle dropped before this reply sent its Unwatch too early to find
                    // anything; undo the registration now, on the server too.
                    let abandoned = sink.is_closed();
                    self.watches.register(kind, server_path.clone(), id, sink);
                    if abandoned {
                        self.unwatch(id, kind, &server_path);
                    }
                }
            }
            OnReply::RemoveLocalWatches {
                server_path,
                client_path,
                watcher_type,
            } => {
                if code == ErrorCode::Ok {
                    self.watches
                        .remove_all(&server_path, watcher_type, &client_path);
                    // Servers from 3.9 remove one persistent mode alone: bring the entry
                    // down to what the watchers left need.
                    match watcher_type {
                        WatcherType::Persistent => {
                            self.step_down(WatchKind::Persistent, &server_path);
                        }
                        WatcherType::PersistentRecursive => {
                            self.step_down(WatchKind::Recursive, &server_path);
                        }
                        _ => {}
                    }
                }
            }
        }
        if let Some(reply) = pending.reply {
            let result = if code == ErrorCode::Ok {
                Ok(Reply {
                    zxid: header.zxid,
                    body,
                })
            } else if code == ErrorCode::UnknownSession {
                // The server's word for a session it has already closed.
                Err(Error::SessionExpired)
            } else {
                Err(Error::from_code(code))
            };
            let _ = reply.send(result);
        }
        if pending.op == OpCode::CloseSession {
            if let Some(Some(reply)) = self.closing.take() {
                let _ = reply.send(Ok(()));
            }
            return Err(Exit::Terminal(Error::Closed));
        }
        if code == ErrorCode::SessionMoved {
            // The session was attached on another server since this connection opened:
            // everything sent here will be refused. Reconnecting takes the session back, as
            // the server does by closing such a connection (it need not, on every version).
            return Err(Exit::Reconnect(
                "session moved to another server".to_owned(),
            ));
        }
        if code.means_session_gone() {
            // The quorum no longer knows this session, though this server let the connection
            // in (a follower can finish a reconnect that the leader validated just before the
            // session was closed). Such a connection is never closed by the server: end here.
            warn!(session_id = %self.session_id, xid, "server answered a request with session expired");
            return Err(Exit::Terminal(Error::SessionExpired));
        }
        Ok(())
    }

    fn auth_reply(&mut self, err: i32) -> Result<(), Exit> {
        let pending = self
            .link
            .as_mut()
            .and_then(|link| link.pending_auth.pop_front());
        let code = ErrorCode::from_code(err);
        if code == ErrorCode::AuthFailed {
            if let Some(super::PendingAuth {
                reply: Some(reply), ..
            }) = pending
            {
                let _ = reply.send(Err(Error::AuthFailed));
            }
            warn!(session_id = %self.session_id, "authentication failed");
            return Err(Exit::Terminal(Error::AuthFailed));
        }
        let Some(pending) = pending else {
            warn!("auth reply with no auth request");
            return Ok(());
        };
        if code == ErrorCode::Ok {
            self.auth.insert(pending.scheme, pending.auth);
            if let Some(reply) = pending.reply {
                let _ = reply.send(Ok(()));
            }
        } else if let Some(reply) = pending.reply {
            let _ = reply.send(Err(Error::from_code(code)));
        }
        Ok(())
    }

    fn notification(&mut self, zxid: i64, body: &Bytes) -> Result<(), Exit> {
        let event: WatcherEvent =
            decode_exact(body).map_err(|e| Exit::Reconnect(format!("bad notification: {e}")))?;
        let Some(event_type) = EventType::from_code(event.kind) else {
            warn!(kind = event.kind, path = %event.path, "ignoring notification of unknown type");
            return Ok(());
        };
        if event_type == EventType::None {
            return match KeeperState::from_code(event.state) {
                Some(KeeperState::Expired) => Err(Exit::Terminal(Error::SessionExpired)),
                Some(KeeperState::AuthFailed) => Err(Exit::Terminal(Error::AuthFailed)),
                _ => Ok(()),
            };
        }
        let client_path = self.settings.chroot.strip_owned(event.path.clone());
        trace!(?event_type, path = %client_path, "watch event");
        let delivered = WatchedEvent {
            event_type,
            path: client_path,
            zxid,
        };
        self.watches.dispatch(event_type, &event.path, &delivered);
        self.derive_child_list_change(event_type, &event.path, zxid);
        Ok(())
    }
}
