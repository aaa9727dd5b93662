//! Every request and reply record a client sends or receives, in the order of their fields on
//! the wire. Requests borrow their paths and data (they are encoded straight into the send
//! buffer); replies own theirs, with data buffers sliced from the received frame.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};

use super::data::{Acl, Stat};
use super::jute::{DecodeError, Jute, Reader, jute_record};

/// A session password. Its bytes are a secret: `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(pub Bytes);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes redacted>)", self.0.len())
    }
}

impl<'a> Jute<'a> for Password {
    fn write(&self, buf: &mut BytesMut) {
        self.0.write(buf)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Bytes::read(r).map(Password)
    }
}

/// Authentication data of an [`AuthPacket`]; `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<'a>(pub Cow<'a, [u8]>);

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

impl<'a> Jute<'a> for Secret<'a> {
    fn write(&self, buf: &mut BytesMut) {
        super::jute::write_slice(buf, &self.0)
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_slice().map(|s| Secret(Cow::Borrowed(s)))
    }
}

/// The first record a client sends on a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid this client has seen (so a server behind it refuses the session).
    pub last_zxid_seen: i64,
    /// Requested session timeout in milliseconds.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// Zeros for a new session, else the password of the session to resume.
    pub password: Password,
    /// Whether a read-only server may accept this client.
    pub read_only: bool,
}

impl<'a> Jute<'a> for ConnectRequest {
    fn write(&self, buf: &mut BytesMut) {
        self.protocol_version.write(buf);
        self.last_zxid_seen.write(buf);
        self.timeout_ms.write(buf);
        self.session_id.write(buf);
        self.password.write(buf);
        self.read_only.write(buf);
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: Password::read(r)?,
            // Very old clients omit the flag.
            read_only: if r.remaining() > 0 {
                r.read_bool()?
            } else {
                false
            },
        })
    }
}

/// The server's answer to a [`ConnectRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated session timeout in milliseconds; `<= 0` means the session has expired.
    pub timeout_ms: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password.
    pub password: Password,
    /// Whether the server is in read-only mode.
    pub read_only: bool,
}

impl<'a> Jute<'a> for ConnectResponse {
    fn write(&self, buf: &mut BytesMut) {
        self.protocol_version.write(buf);
        self.timeout_ms.write(buf);
        self.session_id.write(buf);
        self.password.write(buf);
        self.read_only.write(buf);
    }
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: Password::read(r)?,
            read_only: if r.remaining() > 0 {
                r.read_bool()?
            } else {
                false
            },
        })
    }
}

jute_record! {
    /// Precedes every request after the handshake.
    #[derive(Copy)]
    pub struct RequestHeader {
        /// Client-chosen id echoed in the reply (or a special xid).
        pub xid: i32,
        /// The [`OpCode`](super::OpCode) as an integer.
        pub op: i32,
    }
}

jute_record! {
    /// Precedes every reply and notification.
    #[derive(Copy)]
    pub struct ReplyHeader {
        /// The xid of the request answered, or a special xid.
        pub xid: i32,
        /// The zxid of the server's state when it replied.
        pub zxid: i64,
        /// 0, or an [`ErrorCode`](super::ErrorCode) value.
        pub err: i32,
    }
}

jute_record! {
    /// `create` / `create2` / `createContainer` request.
    pub struct CreateRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// Initial data.
        pub data: &'a [u8],
        /// Initial ACL.
        pub acl: Cow<'a, [Acl]>,
        /// [`CreateMode`](super::CreateMode) flags.
        pub flags: i32,
    }
}

jute_record! {
    /// `createTTL` request.
    pub struct CreateTtlRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// Initial data.
        pub data: &'a [u8],
        /// Initial ACL.
        pub acl: Cow<'a, [Acl]>,
        /// [`CreateMode`](super::CreateMode) flags.
        pub flags: i32,
        /// Time to live in milliseconds.
        pub ttl: i64,
    }
}

jute_record! {
    /// Reply to `create`.
    pub struct CreateResponse {
        /// The created path (with the sequence suffix for sequential modes).
        pub path: String,
    }
}

jute_record! {
    /// Reply to `create2`, `createContainer` and `createTTL`.
    pub struct Create2Response {
        /// The created path.
        pub path: String,
        /// The new node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `delete` request.
    pub struct DeleteRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// A request that names a path and asks whether to leave a watch: `exists`, `getData`,
    /// `getChildren` and `getChildren2` share this shape.
    pub struct PathWatchRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// Whether to leave a watch.
        pub watch: bool,
    }
}

jute_record! {
    /// A request that carries only a path: `getACL`, `sync`, `getAllChildrenNumber`,
    /// `getEphemerals`.
    pub struct PathRequest<'a> {
        /// The path (for `getEphemerals`, a path prefix).
        pub path: &'a str,
    }
}

jute_record! {
    /// Reply to `exists`, `setData` and `setACL`.
    pub struct StatResponse {
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Reply to `getData`.
    pub struct GetDataResponse {
        /// The node's data.
        pub data: Bytes,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `setData` request.
    pub struct SetDataRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// New data.
        pub data: &'a [u8],
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply to `getACL`.
    pub struct GetAclResponse {
        /// The ACL.
        pub acl: Vec<Acl>,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `setACL` request.
    pub struct SetAclRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// New ACL.
        pub acl: Cow<'a, [Acl]>,
        /// Expected ACL version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// Reply to `getChildren`.
    pub struct GetChildrenResponse {
        /// Names of the children (not full paths).
        pub children: Vec<String>,
    }
}

jute_record! {
    /// Reply to `getChildren2`.
    pub struct GetChildren2Response {
        /// Names of the children.
        pub children: Vec<String>,
        /// The parent's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// Reply to `getAllChildrenNumber`.
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total: i32,
    }
}

jute_record! {
    /// Reply to `getEphemerals`.
    pub struct GetEphemeralsResponse {
        /// Full paths of the session's ephemeral nodes.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// Reply to `sync`.
    pub struct SyncResponse {
        /// The path synced.
        pub path: String,
    }
}

jute_record! {
    /// `check` request (version check, used inside multi).
    pub struct CheckVersionRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// Expected version.
        pub version: i32,
    }
}

jute_record! {
    /// `checkWatches` and `removeWatches` request.
    pub struct WatchesRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// [`WatcherType`](super::WatcherType) code.
        pub kind: i32,
    }
}

jute_record! {
    /// `addWatch` request.
    pub struct AddWatchRequest<'a> {
        /// Path of the node.
        pub path: &'a str,
        /// [`AddWatchMode`](super::AddWatchMode) code.
        pub mode: i32,
    }
}

jute_record! {
    /// `auth` packet (sent with xid -4).
    pub struct AuthPacket<'a> {
        /// Always 0.
        pub kind: i32,
        /// Scheme, e.g. `digest`.
        pub scheme: &'a str,
        /// Scheme-specific credentials.
        pub auth: Secret<'a>,
    }
}

jute_record! {
    /// `sasl` request (`GetSASLRequest`): the client's next SASL token.
    pub struct GetSaslRequest<'a> {
        /// The token; it proves knowledge of a secret, so `Debug` prints only its length.
        pub token: Secret<'a>,
    }
}

jute_record! {
    /// Reply to a `sasl` request (`SetSASLResponse`): the server's next SASL token.
    pub struct SetSaslResponse {
        /// The token (empty when the server sent none).
        pub token: Bytes,
    }
}

jute_record! {
    /// One identity the server knows this session by.
    pub struct ClientInfo {
        /// Authentication scheme.
        pub auth_scheme: String,
        /// The user within the scheme.
        pub user: String,
    }
}

jute_record! {
    /// Reply to `whoAmI`.
    pub struct WhoAmIResponse {
        /// The identities of this session.
        pub client_info: Vec<ClientInfo>,
    }
}

jute_record! {
    /// Error body inside multi results.
    #[derive(Copy)]
    pub struct ErrorResponse {
        /// The [`ErrorCode`](super::ErrorCode) value.
        pub err: i32,
    }
}

jute_record! {
    /// Separates the ops of a multi request and the results of its reply.
    #[derive(Copy)]
    pub struct MultiHeader {
        /// Op code, or -1 for an error result / the terminator.
        pub op: i32,
        /// True only on the terminator.
        pub done: bool,
        /// Error code, -1 on the terminator.
        pub err: i32,
    }
}

jute_record! {
    /// A watch notification (sent with xid -1).
    pub struct WatcherEvent {
        /// [`EventType`](super::EventType) code.
        pub kind: i32,
        /// [`KeeperState`](super::KeeperState) code.
        pub state: i32,
        /// Path of the node (with the chroot, as the server knows it).
        pub path: String,
    }
}

jute_record! {
    /// `setWatches`: re-registers one-shot watches on a new connection (sent with xid -8); every
    /// server version takes it.
    pub struct SetWatches {
        /// The last zxid the client saw; the server fires watches for changes after it.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exists watches (the node did not exist).
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// `setWatches2`: re-registers watches on a new connection (sent with xid -8), persistent
    /// and recursive ones too (3.6+).
    pub struct SetWatches2 {
        /// The last zxid the client saw; the server fires watches for changes after it.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exists watches (the node did not exist).
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// `reconfig` request (dynamic reconfiguration, 3.5+).
    pub struct ReconfigRequest<'a> {
        /// Servers to add, comma separated (`None`, sent as null, in a non-incremental one).
        pub joining_servers: Option<&'a str>,
        /// Server ids to remove, comma separated (`None` in a non-incremental one).
        pub leaving_servers: Option<&'a str>,
        /// A whole new membership (`None` in an incremental one).
        pub new_members: Option<&'a str>,
        /// Expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}
