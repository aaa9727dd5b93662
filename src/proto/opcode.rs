//! Request type codes (`RequestHeader.type`) and the special xids of the protocol.

/// The operation a request asks for, as numbered on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
#[allow(missing_docs)] // the names are ZooKeeper's own
pub enum OpCode {
    Notification = 0,
    Create = 1,
    Delete = 2,
    Exists = 3,
    GetData = 4,
    SetData = 5,
    GetAcl = 6,
    SetAcl = 7,
    GetChildren = 8,
    Sync = 9,
    Ping = 11,
    GetChildren2 = 12,
    Check = 13,
    Multi = 14,
    Create2 = 15,
    Reconfig = 16,
    CheckWatches = 17,
    RemoveWatches = 18,
    CreateContainer = 19,
    DeleteContainer = 20,
    CreateTtl = 21,
    MultiRead = 22,
    Auth = 100,
    SetWatches = 101,
    Sasl = 102,
    GetEphemerals = 103,
    GetAllChildrenNumber = 104,
    SetWatches2 = 105,
    AddWatch = 106,
    WhoAmI = 107,
    CreateSession = -10,
    CloseSession = -11,
    Error = -1,
}

impl OpCode {
    /// The code as sent on the wire.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The op for a wire code, if it is one ZooKeeper defines.
    pub fn from_code(code: i32) -> Option<OpCode> {
        use OpCode::*;
        Some(match code {
            0 => Notification,
            1 => Create,
            2 => Delete,
            3 => Exists,
            4 => GetData,
            5 => SetData,
            6 => GetAcl,
            7 => SetAcl,
            8 => GetChildren,
            9 => Sync,
            11 => Ping,
            12 => GetChildren2,
            13 => Check,
            14 => Multi,
            15 => Create2,
            16 => Reconfig,
            17 => CheckWatches,
            18 => RemoveWatches,
            19 => CreateContainer,
            20 => DeleteContainer,
            21 => CreateTtl,
            22 => MultiRead,
            100 => Auth,
            101 => SetWatches,
            102 => Sasl,
            103 => GetEphemerals,
            104 => GetAllChildrenNumber,
            105 => SetWatches2,
            106 => AddWatch,
            107 => WhoAmI,
            -10 => CreateSession,
            -11 => CloseSession,
            -1 => Error,
            _ => return None,
        })
    }

    /// A short lower-case name for logs and spans.
    pub fn name(self) -> &'static str {
        use OpCode::*;
        match self {
            Notification => "notification",
            Create => "create",
            Delete => "delete",
            Exists => "exists",
            GetData => "get_data",
            SetData => "set_data",
            GetAcl => "get_acl",
            SetAcl => "set_acl",
            GetChildren => "get_children",
            Sync => "sync",
            Ping => "ping",
            GetChildren2 => "get_children2",
            Check => "check",
            Multi => "multi",
            Create2 => "create2",
            Reconfig => "reconfig",
            CheckWatches => "check_watches",
            RemoveWatches => "remove_watches",
            CreateContainer => "create_container",
            DeleteContainer => "delete_container",
            CreateTtl => "create_ttl",
            MultiRead => "multi_read",
            Auth => "auth",
            SetWatches => "set_watches",
            Sasl => "sasl",
            GetEphemerals => "get_ephemerals",
            GetAllChildrenNumber => "get_all_children_number",
            SetWatches2 => "set_watches2",
            AddWatch => "add_watch",
            WhoAmI => "who_am_i",
            CreateSession => "create_session",
            CloseSession => "close_session",
            Error => "error",
        }
    }
}

/// Xid the server uses for watch notifications.
pub const XID_NOTIFICATION: i32 = -1;
/// Xid of pings and their replies.
pub const XID_PING: i32 = -2;
/// Xid of authentication packets and their replies.
pub const XID_AUTH: i32 = -4;
/// Xid of SetWatches / SetWatches2 and their replies.
pub const XID_SET_WATCHES: i32 = -8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_back_to_itself() {
        for code in -20..200 {
            if let Some(op) = OpCode::from_code(code) {
                assert_eq!(op.code(), code, "{}", op.name());
            }
        }
        assert_eq!(OpCode::from_code(10), None);
    }
}
