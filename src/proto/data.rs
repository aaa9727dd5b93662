//! The data types that appear inside requests and replies: [`Stat`], [`Acl`], [`Id`],
//! permissions and creation modes.

use std::borrow::Cow;

use super::jute::jute_record;

jute_record! {
    /// The metadata ZooKeeper keeps for every node.
    #[derive(Copy, Default, Hash)]
    pub struct Stat {
        /// Zxid of the transaction that created the node.
        pub czxid: i64,
        /// Zxid of the transaction that last changed the node's data.
        pub mzxid: i64,
        /// Creation time, milliseconds since the epoch.
        pub ctime: i64,
        /// Last data change time, milliseconds since the epoch.
        pub mtime: i64,
        /// Number of changes to the data.
        pub version: i32,
        /// Number of changes to the children.
        pub cversion: i32,
        /// Number of changes to the ACL.
        pub aversion: i32,
        /// Session id of the owner if the node is ephemeral, 0 otherwise.
        pub ephemeral_owner: i64,
        /// Length of the data.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// Zxid of the last change to the children.
        pub pzxid: i64,
    }
}

jute_record! {
    /// An identity in a scheme, such as `world:anyone` or `digest:user:hash`.
    #[derive(Hash)]
    pub struct Id {
        /// The scheme (`world`, `auth`, `digest`, `ip`, `sasl`, `x509`, ...).
        pub scheme: Cow<'static, str>,
        /// The identity within the scheme.
        pub id: Cow<'static, str>,
    }
}

jute_record! {
    /// An access control entry: permissions granted to an identity.
    #[derive(Hash)]
    pub struct Acl {
        /// A bit set of [`Perms`].
        pub perms: i32,
        /// Who is granted them.
        pub id: Id,
    }
}

/// Permission bits of an [`Acl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perms;

impl Perms {
    /// Read data and list children.
    pub const READ: i32 = 1;
    /// Set data.
    pub const WRITE: i32 = 2;
    /// Create children.
    pub const CREATE: i32 = 4;
    /// Delete children.
    pub const DELETE: i32 = 8;
    /// Set the ACL.
    pub const ADMIN: i32 = 16;
    /// All of the above.
    pub const ALL: i32 = 31;
}

impl Id {
    /// `world:anyone`.
    pub const ANYONE: Id = Id {
        scheme: Cow::Borrowed("world"),
        id: Cow::Borrowed("anyone"),
    };
    /// `auth:` — whoever is authenticated on the creating session.
    pub const AUTH: Id = Id {
        scheme: Cow::Borrowed("auth"),
        id: Cow::Borrowed(""),
    };

    /// An identity from its scheme and id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: Cow::Owned(scheme.into()),
            id: Cow::Owned(id.into()),
        }
    }
}

impl Acl {
    /// Everyone may do everything (ZooKeeper's `OPEN_ACL_UNSAFE`).
    pub const OPEN_UNSAFE: &'static [Acl] = &[Acl {
        perms: Perms::ALL,
        id: Id::ANYONE,
    }];
    /// Everyone may read (ZooKeeper's `READ_ACL_UNSAFE`).
    pub const READ_UNSAFE: &'static [Acl] = &[Acl {
        perms: Perms::READ,
        id: Id::ANYONE,
    }];
    /// Only the identities authenticated on the creating session (ZooKeeper's `CREATOR_ALL_ACL`).
    pub const CREATOR_ALL: &'static [Acl] = &[Acl {
        perms: Perms::ALL,
        id: Id::AUTH,
    }];

    /// An entry granting `perms` to `id`.
    pub fn new(perms: i32, id: Id) -> Acl {
        Acl { perms, id }
    }
}

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CreateMode {
    /// Lives until deleted.
    #[default]
    Persistent,
    /// Lives until deleted; the server appends a 10-digit sequence number to the name.
    PersistentSequential,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Ephemeral, with a sequence number appended.
    EphemeralSequential,
    /// Deleted by the server some time after its last child is deleted (ZooKeeper 3.5.3+).
    Container,
    /// Persistent, deleted by the server when unchanged and childless for the TTL (3.5.3+,
    /// needs `extendedTypesEnabled=true` on the server).
    PersistentWithTtl,
    /// As [`CreateMode::PersistentWithTtl`], with a sequence number appended.
    PersistentSequentialWithTtl,
}

impl CreateMode {
    /// The `flags` value of a create request.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }

    /// The mode for a `flags` value.
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    /// Whether the server appends a sequence number.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether the node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the mode needs a TTL.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// The kind of a persistent watch added with `addWatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Fires for data changes, creation, deletion and child-list changes of one node, and stays.
    Persistent,
    /// Fires for creation, data change and deletion of the node and every descendant, and stays.
    PersistentRecursive,
}

impl AddWatchMode {
    /// The `mode` value of an `AddWatchRequest`.
    pub fn code(self) -> i32 {
        match self {
            AddWatchMode::Persistent => 0,
            AddWatchMode::PersistentRecursive => 1,
        }
    }
}

/// The watcher kinds `removeWatches` and `checkWatches` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    /// Child watches.
    Children,
    /// Data and exists watches.
    Data,
    /// Every kind.
    Any,
    /// Persistent watches (3.6+).
    Persistent,
    /// Persistent recursive watches (3.6+).
    PersistentRecursive,
}

impl WatcherType {
    /// The `type` value on the wire.
    pub fn code(self) -> i32 {
        match self {
            WatcherType::Children => 1,
            WatcherType::Data => 2,
            WatcherType::Any => 3,
            WatcherType::Persistent => 4,
            WatcherType::PersistentRecursive => 5,
        }
    }
}
