//! Requests: decoding with zkwarden's own records, applying them to the model, encoding the
//! reply.

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use zkwarden::proto::multi::{MULTI_TERMINATOR, MultiOpRecord, MultiRequest};
use zkwarden::proto::opcode::{XID_AUTH, XID_PING, XID_SET_WATCHES};
use zkwarden::proto::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, ClientInfo, Create2Response, CreateMode,
    CreateRequest, CreateResponse, CreateTtlRequest, DecodeError, DeleteRequest, ErrorCode,
    ErrorResponse, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, Id, Jute, MultiHeader, OpCode,
    PathRequest, PathWatchRequest, Reader, ReplyHeader, RequestHeader, SetAclRequest,
    SetDataRequest, SetWatches, SetWatches2, Stat, StatResponse, SyncResponse, WatchesRequest,
    WhoAmIResponse,
};

use super::tree::{CreateArgs, Tree, Trigger};
use super::watches::Mode;
use super::{Applied, Model, reply_frame};

/// What the connection does after a request.
#[derive(Debug)]
pub struct Handled {
    /// The reply (none for a request the server answers by closing).
    pub reply: Option<Bytes>,
    /// Close the connection after the reply.
    pub close: bool,
    /// The op, for traces.
    pub op: Option<OpCode>,
    /// Refused because the session moved to another member (no reply, the connection
    /// closes).
    pub moved: bool,
}

/// Where a request is handled in an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// By the member, from what it has applied (reads, watches, pings, auth).
    Local,
    /// Ordered by the quorum, then applied by the member before it answers.
    Write,
    /// A `sync`: the member catches up with the quorum.
    Sync,
}

fn route(op: OpCode) -> Route {
    match op {
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTtl
        | OpCode::Delete
        | OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Multi
        | OpCode::CloseSession => Route::Write,
        OpCode::Sync => Route::Sync,
        _ => Route::Local,
    }
}

/// A reply body, written after the header.
type Body = Box<dyn FnOnce(&mut BytesMut)>;

fn body<T: for<'a> Jute<'a> + 'static>(record: T) -> Body {
    Box::new(move |buf| record.write(buf))
}

fn empty() -> Body {
    Box::new(|_| {})
}

/// One op's outcome inside a multi, before encoding.
enum MultiResult {
    Create(OpCode, String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Bytes, Stat),
    GetChildren(Vec<String>),
    Error(ErrorCode),
}

impl Model {
    /// Handles one request frame from `conn` at `now`.
    pub fn request(&mut self, conn: u64, frame: &Bytes, now: Instant) -> Handled {
        self.now = self.now.max(now);
        self.heard(conn, now);
        let mut r = Reader::new(frame);
        let Ok(header) = RequestHeader::read(&mut r) else {
            return Handled {
                reply: None,
                close: true,
                op: None,
                moved: false,
            };
        };
        let op = OpCode::from_code(header.op);
        let Some(session) = self.session_of(conn) else {
            return Handled {
                reply: None,
                close: true,
                op,
                moved: false,
            };
        };
        let member = self.member_of(conn).unwrap_or(0);
        let gone = Handled {
            reply: None,
            close: true,
            op,
            moved: false,
        };
        if !self.serving(member) {
            return gone;
        }
        let route = op.map_or(Route::Local, route);
        let moved = self.sessions.get(&session).map(|s| s.member) != Some(member);
        if moved && route != Route::Local && op != Some(OpCode::CloseSession) {
            // The session is attached to another member now: the quorum refuses this
            // request with "session moved" and the member drops the connection without an
            // answer (ZooKeeper 3.8, ZOOKEEPER-710). A refused write still takes a zxid.
            if route == Route::Write {
                self.next_zxid();
                self.commit(now);
            }
            return Handled {
                moved: true,
                ..gone
            };
        }
        let rest = frame.slice(r.position()..);
        let outcome = match op {
            Some(op) if route == Route::Local && self.behind(member) => {
                // A read on a member behind the quorum: served from what it has applied.
                let view = self.view(member).clone();
                let committed = std::mem::replace(&mut self.tree, view);
                let outcome = self.dispatch(conn, session, header.xid, op, &rest, now);
                self.tree = committed;
                outcome
            }
            Some(op) => self.dispatch(conn, session, header.xid, op, &rest, now),
            None => Err(ErrorCode::Unimplemented),
        };
        if route != Route::Local {
            // The member applies everything committed up to this request before answering
            // it (a write it forwarded, or the catch-up a sync asks for).
            self.commit(now);
            self.catch_up(member);
        }
        let (err, body, close) = match outcome {
            Ok((body, close)) => (0, body, close),
            Err(code) => (code.code(), empty(), false),
        };
        let zxid = self.member_zxid(member);
        Handled {
            reply: Some(reply_frame(
                ReplyHeader {
                    xid: header.xid,
                    zxid,
                    err,
                },
                body,
            )),
            close,
            op,
            moved: false,
        }
    }

    /// The next transaction's zxid (a failed write uses one too, as in ZooKeeper).
    fn next_zxid(&mut self) -> i64 {
        self.tree.zxid += 1;
        self.tree.zxid
    }

    fn dispatch(
        &mut self,
        conn: u64,
        session: i64,
        xid: i32,
        op: OpCode,
        rest: &Bytes,
        now: Instant,
    ) -> Result<(Body, bool), ErrorCode> {
        let bad = |_: DecodeError| ErrorCode::MarshallingError;
        let mut r = Reader::new(rest);
        let now_ms = self.now_ms(now);
        let reply = match op {
            OpCode::Ping if xid == XID_PING => empty(),
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                let record = if op == OpCode::CreateTtl {
                    MultiOpRecord::CreateTtl(CreateTtlRequest::read(&mut r).map_err(bad)?)
                } else {
                    MultiOpRecord::Create(op, CreateRequest::read(&mut r).map_err(bad)?)
                };
                let zxid = self.next_zxid();
                let mut triggers = Vec::new();
                let mut tree = std::mem::take(&mut self.tree);
                let result = create(
                    &mut tree,
                    &record,
                    session,
                    zxid,
                    now_ms,
                    self.extended_types,
                    &mut triggers,
                );
                self.tree = tree;
                let path = result?;
                let stat = self.tree.node(&path)?.stat;
                let data = Bytes::copy_from_slice(match &record {
                    MultiOpRecord::Create(_, r) => r.data,
                    MultiOpRecord::CreateTtl(r) => r.data,
                    _ => &[],
                });
                self.record(zxid, session, "create", &path, data);
                self.fire(&triggers);
                if op == OpCode::Create {
                    body(CreateResponse { path })
                } else {
                    body(Create2Response { path, stat })
                }
            }
            OpCode::Delete => {
                let req = DeleteRequest::read(&mut r).map_err(bad)?;
                let zxid = self.next_zxid();
                let mut triggers = Vec::new();
                self.tree
                    .delete(req.path, req.version, zxid, &mut triggers)?;
                self.record(zxid, session, "delete", req.path, Bytes::new());
                self.fire(&triggers);
                empty()
            }
            OpCode::SetData => {
                let req = SetDataRequest::read(&mut r).map_err(bad)?;
                let zxid = self.next_zxid();
                let mut triggers = Vec::new();
                let stat = self.tree.set_data(
                    req.path,
                    req.data,
                    req.version,
                    zxid,
                    now_ms,
                    &mut triggers,
                )?;
                self.record(
                    zxid,
                    session,
                    "set",
                    req.path,
                    Bytes::copy_from_slice(req.data),
                );
                self.fire(&triggers);
                body(StatResponse { stat })
            }
            OpCode::Exists => {
                let req = PathWatchRequest::read(&mut r).map_err(bad)?;
                let stat = self.tree.get(req.path).map(|n| n.stat);
                if req.watch {
                    self.watches(conn).add(req.path, true, Mode::Standard);
                }
                body(StatResponse {
                    stat: stat.ok_or(ErrorCode::NoNode)?,
                })
            }
            OpCode::GetData => {
                let req = PathWatchRequest::read(&mut r).map_err(bad)?;
                let node = self.tree.node(req.path)?;
                let reply = GetDataResponse {
                    data: node.data.clone(),
                    stat: node.stat,
                };
                if req.watch {
                    self.watches(conn).add(req.path, true, Mode::Standard);
                }
                body(reply)
            }
            OpCode::GetChildren | OpCode::GetChildren2 => {
                let req = PathWatchRequest::read(&mut r).map_err(bad)?;
                let node = self.tree.node(req.path)?;
                let children: Vec<String> = node.children.iter().cloned().collect();
                let stat = node.stat;
                if req.watch {
                    self.watches(conn).add(req.path, false, Mode::Standard);
                }
                if op == OpCode::GetChildren {
                    body(GetChildrenResponse { children })
                } else {
                    body(GetChildren2Response { children, stat })
                }
            }
            OpCode::GetAcl => {
                let req = PathRequest::read(&mut r).map_err(bad)?;
                let node = self.tree.node(req.path)?;
                body(GetAclResponse {
                    acl: node.acl.clone(),
                    stat: node.stat,
                })
            }
            OpCode::SetAcl => {
                let req = SetAclRequest::read(&mut r).map_err(bad)?;
                self.next_zxid();
                let stat = self
                    .tree
                    .set_acl(req.path, req.acl.into_owned(), req.version)?;
                body(StatResponse { stat })
            }
            OpCode::Sync => {
                let req = PathRequest::read(&mut r).map_err(bad)?;
                body(SyncResponse {
                    path: req.path.to_string(),
                })
            }
            OpCode::Multi | OpCode::MultiRead => {
                let req = MultiRequest::read(&mut r).map_err(bad)?;
                let results = if op == OpCode::Multi {
                    self.multi(session, &req.ops, now_ms)
                } else {
                    self.multi_read(&req.ops)
                };
                Box::new(move |buf: &mut BytesMut| encode_multi(buf, results))
            }
            OpCode::CheckWatches | OpCode::RemoveWatches => {
                let req = WatchesRequest::read(&mut r).map_err(bad)?;
                let remove = op == OpCode::RemoveWatches;
                if !self.watches(conn).take(req.path, req.kind, remove) {
                    return Err(ErrorCode::NoWatcher);
                }
                empty()
            }
            OpCode::AddWatch => {
                let req = AddWatchRequest::read(&mut r).map_err(bad)?;
                match req.mode {
                    0 | 1 => self.watches(conn).add_persistent(req.path, req.mode == 1),
                    _ => return Err(ErrorCode::BadArguments),
                }
                empty()
            }
            OpCode::SetWatches | OpCode::SetWatches2 if xid == XID_SET_WATCHES => {
                let req = if op == OpCode::SetWatches {
                    // The older form (3.5), which the client sends when it has only one-shot
                    // watches to restore: the same lists without the persistent ones.
                    let old = SetWatches::read(&mut r).map_err(bad)?;
                    SetWatches2 {
                        relative_zxid: old.relative_zxid,
                        data_watches: old.data_watches,
                        exist_watches: old.exist_watches,
                        child_watches: old.child_watches,
                        persistent_watches: Vec::new(),
                        persistent_recursive_watches: Vec::new(),
                    }
                } else {
                    SetWatches2::read(&mut r).map_err(bad)?
                };
                let tree = std::mem::take(&mut self.tree);
                let missed = self.watches(conn).restore(&tree, &req);
                self.tree = tree;
                // The missed events go to this connection only, before the reply.
                if let Some(c) = self.conns.get(&conn) {
                    for trigger in &missed {
                        let _ = c
                            .outbox
                            .send(super::Out::Frame(super::notification(trigger)));
                    }
                }
                empty()
            }
            OpCode::Auth if xid == XID_AUTH => {
                let req = AuthPacket::read(&mut r).map_err(bad)?;
                if req.scheme != "digest" {
                    return Err(ErrorCode::AuthFailed);
                }
                let text = String::from_utf8_lossy(&req.auth.0).to_string();
                let user = text.split(':').next().unwrap_or_default().to_string();
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.auth.push(Id::new("digest", user));
                }
                empty()
            }
            OpCode::WhoAmI => {
                let mut client_info = vec![ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }];
                if let Some(s) = self.sessions.get(&session) {
                    client_info.extend(s.auth.iter().map(|id| ClientInfo {
                        auth_scheme: id.scheme.to_string(),
                        user: id.id.to_string(),
                    }));
                }
                body(WhoAmIResponse { client_info })
            }
            OpCode::GetEphemerals => {
                let req = PathRequest::read(&mut r).map_err(bad)?;
                let ephemerals = self
                    .tree
                    .ephemerals_of(session)
                    .into_iter()
                    .filter(|p| p.starts_with(req.path))
                    .collect();
                body(GetEphemeralsResponse { ephemerals })
            }
            OpCode::GetAllChildrenNumber => {
                let req = PathRequest::read(&mut r).map_err(bad)?;
                self.tree.node(req.path)?;
                body(GetAllChildrenNumberResponse {
                    total: self.tree.descendants(req.path) as i32,
                })
            }
            OpCode::CloseSession => {
                self.end_session(session, now, "closed");
                return Ok((empty(), true));
            }
            _ => return Err(ErrorCode::Unimplemented),
        };
        Ok((reply, false))
    }

    fn watches(&mut self, conn: u64) -> &mut super::watches::Watches {
        &mut self
            .conns
            .get_mut(&conn)
            .expect("a request comes from an open connection")
            .watches
    }

    fn record(&mut self, zxid: i64, session: i64, kind: &'static str, path: &str, data: Bytes) {
        self.applied.push(Applied {
            zxid,
            session,
            kind,
            path: path.to_string(),
            data,
        });
    }

    /// A transaction: every op on a copy of the tree; the copy replaces the tree only when
    /// all succeeded. One zxid, success or not.
    fn multi(&mut self, session: i64, ops: &[MultiOpRecord<'_>], now_ms: i64) -> Vec<MultiResult> {
        let zxid = self.next_zxid();
        let mut copy = self.tree.clone();
        let mut triggers = Vec::new();
        let mut results = Vec::new();
        let mut writes = Vec::new();
        let mut failed = None;
        for (i, op) in ops.iter().enumerate() {
            let outcome = match op {
                MultiOpRecord::Create(..) | MultiOpRecord::CreateTtl(_) => {
                    // ZooKeeper answers a create2 inside a multi as a plain create (no stat).
                    let code = match op {
                        MultiOpRecord::Create(OpCode::Create2, _) => OpCode::Create,
                        MultiOpRecord::Create(code, _) => *code,
                        _ => OpCode::CreateTtl,
                    };
                    create(
                        &mut copy,
                        op,
                        session,
                        zxid,
                        now_ms,
                        self.extended_types,
                        &mut triggers,
                    )
                    .and_then(|path| {
                        let stat = copy.node(&path)?.stat;
                        let data = match op {
                            MultiOpRecord::Create(_, r) => r.data,
                            MultiOpRecord::CreateTtl(r) => r.data,
                            _ => &[],
                        };
                        writes.push(("create", path.clone(), Bytes::copy_from_slice(data)));
                        Ok(MultiResult::Create(code, path, stat))
                    })
                }
                MultiOpRecord::Delete(d) => copy
                    .delete(d.path, d.version, zxid, &mut triggers)
                    .map(|()| {
                        writes.push(("delete", d.path.to_string(), Bytes::new()));
                        MultiResult::Delete
                    }),
                MultiOpRecord::SetData(s) => copy
                    .set_data(s.path, s.data, s.version, zxid, now_ms, &mut triggers)
                    .map(|stat| {
                        writes.push(("set", s.path.to_string(), Bytes::copy_from_slice(s.data)));
                        MultiResult::SetData(stat)
                    }),
                MultiOpRecord::Check(CheckVersionRequest { path, version }) => copy
                    .check_version(path, *version)
                    .map(|()| MultiResult::Check),
                MultiOpRecord::GetData(_) | MultiOpRecord::GetChildren(_) => {
                    Err(ErrorCode::BadArguments)
                }
            };
            match outcome {
                Ok(result) => results.push(result),
                Err(code) => {
                    failed = Some((i, code));
                    break;
                }
            }
        }
        if let Some((index, code)) = failed {
            return (0..ops.len())
                .map(|i| {
                    MultiResult::Error(match i.cmp(&index) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => code,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    })
                })
                .collect();
        }
        copy.zxid = zxid;
        self.tree = copy;
        for (kind, path, data) in writes {
            self.record(zxid, session, kind, &path, data);
        }
        self.fire(&triggers);
        results
    }

    /// Reads, each on its own: a failed one does not stop the others. No watches.
    fn multi_read(&self, ops: &[MultiOpRecord<'_>]) -> Vec<MultiResult> {
        ops.iter()
            .map(|op| match op {
                MultiOpRecord::GetData(r) => match self.tree.node(r.path) {
                    Ok(n) => MultiResult::GetData(n.data.clone(), n.stat),
                    Err(code) => MultiResult::Error(code),
                },
                MultiOpRecord::GetChildren(r) => match self.tree.node(r.path) {
                    Ok(n) => MultiResult::GetChildren(n.children.iter().cloned().collect()),
                    Err(code) => MultiResult::Error(code),
                },
                _ => MultiResult::Error(ErrorCode::BadArguments),
            })
            .collect()
    }
}

/// A create of any kind, checked and applied to `tree`.
fn create(
    tree: &mut Tree,
    record: &MultiOpRecord<'_>,
    session: i64,
    zxid: i64,
    now_ms: i64,
    extended_types: bool,
    triggers: &mut Vec<Trigger>,
) -> Result<String, ErrorCode> {
    let (op, path, data, acl, flags, ttl) = match record {
        MultiOpRecord::Create(op, r) => (*op, r.path, r.data, &r.acl, r.flags, 0),
        MultiOpRecord::CreateTtl(r) => (OpCode::CreateTtl, r.path, r.data, &r.acl, r.flags, r.ttl),
        _ => return Err(ErrorCode::BadArguments),
    };
    let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
    let ttl_op = op == OpCode::CreateTtl;
    if mode.is_ttl() != ttl_op || (op == OpCode::CreateContainer) != (mode == CreateMode::Container)
    {
        return Err(ErrorCode::BadArguments);
    }
    if mode.is_ttl() && !extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    tree.create(
        &CreateArgs {
            path,
            data,
            acl: acl.to_vec(),
            mode,
            ttl,
        },
        session,
        zxid,
        now_ms,
        triggers,
    )
}

fn encode_multi(buf: &mut BytesMut, results: Vec<MultiResult>) {
    for result in results {
        let (op, err) = match &result {
            MultiResult::Create(op, ..) => (op.code(), 0),
            MultiResult::Delete => (OpCode::Delete.code(), 0),
            MultiResult::SetData(_) => (OpCode::SetData.code(), 0),
            MultiResult::Check => (OpCode::Check.code(), 0),
            MultiResult::GetData(..) => (OpCode::GetData.code(), 0),
            MultiResult::GetChildren(_) => (OpCode::GetChildren.code(), 0),
            MultiResult::Error(code) => (-1, code.code()),
        };
        MultiHeader {
            op,
            done: false,
            err,
        }
        .write(buf);
        match result {
            MultiResult::Create(OpCode::Create, path, _) => CreateResponse { path }.write(buf),
            MultiResult::Create(_, path, stat) => Create2Response { path, stat }.write(buf),
            MultiResult::SetData(stat) => StatResponse { stat }.write(buf),
            MultiResult::GetData(data, stat) => GetDataResponse { data, stat }.write(buf),
            MultiResult::GetChildren(children) => GetChildrenResponse { children }.write(buf),
            MultiResult::Error(code) => ErrorResponse { err: code.code() }.write(buf),
            MultiResult::Delete | MultiResult::Check => {}
        }
    }
    MULTI_TERMINATOR.write(buf);
}
