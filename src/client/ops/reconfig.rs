//! `reconfig`: changes the ensemble's membership (ZooKeeper 3.5+ dynamic reconfiguration).

use std::future::Future;

use bytes::Bytes;

use crate::client::command::OnReply;
use crate::client::handle::{Client, await_reply, decode};
use crate::error::{Error, Result};
use crate::proto::records::{GetDataResponse, ReconfigRequest};
use crate::proto::{OpCode, Stat};

use super::session::CONFIG_NODE;

/// A change of the ensemble's membership, for [`Client::reconfig`] and
/// [`Warden::reconfig`](crate::Warden::reconfig).
///
/// Members are given as ZooKeeper writes them in a dynamic config file, for example
/// `server.4=10.0.0.4:2888:3888:participant;0.0.0.0:2181`; leaving members by their server id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconfig {
    change: Change,
    from_config: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Members join and leave; the others stay.
    Incremental {
        joining: Vec<String>,
        leaving: Vec<u64>,
    },
    /// The membership becomes exactly this list.
    Replace(Vec<String>),
}

impl Reconfig {
    /// An incremental change: `joining` members are added (or, for an id already a member,
    /// updated), the servers with the `leaving` ids removed, the rest kept.
    pub fn incremental(
        joining: impl IntoIterator<Item = impl Into<String>>,
        leaving: impl IntoIterator<Item = u64>,
    ) -> Reconfig {
        Reconfig {
            change: Change::Incremental {
                joining: joining.into_iter().map(Into::into).collect(),
                leaving: leaving.into_iter().collect(),
            },
            from_config: -1,
        }
    }

    /// A non-incremental change: the membership becomes exactly `members`.
    pub fn replace(members: impl IntoIterator<Item = impl Into<String>>) -> Reconfig {
        Reconfig {
            change: Change::Replace(members.into_iter().map(Into::into).collect()),
            from_config: -1,
        }
    }

    /// Applies the change only if the current configuration's version (the `version=` line of
    /// [`Client::get_config`]'s data, read by [`Reconfig::version_of`]) is `version`; `-1`,
    /// the default, for any.
    pub fn from_config(mut self, version: i64) -> Reconfig {
        self.from_config = version;
        self
    }

    /// The version of a configuration as [`Client::get_config`] returns it: its `version=`
    /// line, which ZooKeeper writes in hexadecimal. `None` when there is no such line or it
    /// does not parse.
    pub fn version_of(config: &[u8]) -> Option<i64> {
        let text = std::str::from_utf8(config).ok()?;
        let hex = text
            .lines()
            .find_map(|line| line.trim().strip_prefix("version="))?;
        i64::from_str_radix(hex.trim(), 16).ok()
    }

    /// The request's three lists as the server reads them: comma separated, `None` for the
    /// ones the kind of change leaves out (sent as null; the server tells an incremental
    /// change from a replacement by which are present).
    fn wire_lists(&self) -> Result<[Option<String>; 3]> {
        if self.from_config < -1 {
            return Err(Error::InvalidArgument(format!(
                "reconfig: from_config must be a version or -1, not {}",
                self.from_config
            )));
        }
        match &self.change {
            Change::Incremental { joining, leaving } => {
                if joining.is_empty() && leaving.is_empty() {
                    return Err(Error::InvalidArgument(
                        "reconfig: an incremental change needs a joining or a leaving member"
                            .into(),
                    ));
                }
                let leaving: Vec<String> = leaving.iter().map(u64::to_string).collect();
                Ok([
                    non_empty(joined(joining)?),
                    non_empty(leaving.join(",")),
                    None,
                ])
            }
            Change::Replace(members) => {
                if members.is_empty() {
                    return Err(Error::InvalidArgument(
                        "reconfig: a new membership needs at least one member".into(),
                    ));
                }
                Ok([None, None, Some(joined(members)?)])
            }
        }
    }
}

/// The members joined by commas, refusing a member the server would split or misread.
fn joined(members: &[String]) -> Result<String> {
    for member in members {
        if member.trim().is_empty() || member.contains([',', '\n', '\r']) {
            return Err(Error::InvalidArgument(format!(
                "reconfig: member {member:?} is empty or holds a comma or a line break"
            )));
        }
    }
    Ok(members.join(","))
}

fn non_empty(list: String) -> Option<String> {
    (!list.is_empty()).then_some(list)
}

impl Client {
    /// Changes the ensemble's membership and returns the new configuration (the data of
    /// `/zookeeper/config` and its stat), as [`Client::get_config`] would read it.
    ///
    /// The server must run with `reconfigEnabled=true`, and the session needs write permission
    /// on `/zookeeper/config` (a superuser, or a server with `skipACL`).
    ///
    /// # Errors
    /// `ReconfigDisabled`; `NoAuth`; `BadVersion` when the configuration is no longer
    /// `from_config`; `NewConfigNoQuorum` when the new members could not form a quorum;
    /// `ReconfigInProgress`; `BadArguments` for a change the server cannot apply (such as
    /// removing every participant); `ConnectionLoss` (the change may or may not have been
    /// made: read the configuration to find out); client-side `InvalidArgument` for an empty
    /// change, a member holding a comma or a `from_config` below -1.
    pub fn reconfig(
        &self,
        change: &Reconfig,
    ) -> impl Future<Output = Result<(Bytes, Stat)>> + Send + use<> {
        let sent = change.wire_lists().and_then(|[joining, leaving, members]| {
            let record = ReconfigRequest {
                joining_servers: joining.as_deref(),
                leaving_servers: leaving.as_deref(),
                new_members: members.as_deref(),
                cur_config_id: change.from_config,
            };
            let size = [&joining, &leaving, &members]
                .iter()
                .map(|l| l.as_ref().map_or(0, String::len) + 4)
                .sum::<usize>();
            self.send(
                OpCode::Reconfig,
                &record,
                size + 8,
                OnReply::Nothing,
                CONFIG_NODE,
            )
        });
        async move {
            let reply: GetDataResponse = decode(&await_reply(sent).await?)?;
            Ok((reply.data, reply.stat))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incremental_change_sends_null_for_the_member_list() {
        let change = Reconfig::incremental(["server.4=h:1:2;3"], [2, 3]);
        assert_eq!(
            change.wire_lists().unwrap(),
            [Some("server.4=h:1:2;3".into()), Some("2,3".into()), None]
        );
        let leave_only = Reconfig::incremental(Vec::<String>::new(), [1]);
        assert_eq!(
            leave_only.wire_lists().unwrap(),
            [None, Some("1".into()), None]
        );
    }

    #[test]
    fn a_replacement_sends_only_the_member_list() {
        let change = Reconfig::replace(["server.1=a:1:2;3", "server.2=b:1:2;3"]).from_config(7);
        assert_eq!(
            change.wire_lists().unwrap(),
            [None, None, Some("server.1=a:1:2;3,server.2=b:1:2;3".into())]
        );
        assert_eq!(change.from_config, 7);
    }

    #[test]
    fn the_version_is_read_in_hexadecimal() {
        let config = b"server.1=a:1:2:participant;0.0.0.0:3\nversion=10000001a\n";
        assert_eq!(Reconfig::version_of(config), Some(0x1_0000_001a));
        assert_eq!(Reconfig::version_of(b"server.1=a:1:2;3"), None);
        assert_eq!(Reconfig::version_of(b"version=xyz"), None);
        assert_eq!(Reconfig::version_of(&[0xff, 0xfe]), None);
    }

    #[test]
    fn bad_changes_are_refused_before_sending() {
        let empty = Reconfig::incremental(Vec::<String>::new(), []);
        let no_members = Reconfig::replace(Vec::<String>::new());
        let comma = Reconfig::replace(["server.1=a:1:2;3,server.2=b:1:2;3"]);
        let blank = Reconfig::incremental([" "], []);
        let version = Reconfig::incremental(["server.4=h:1:2;3"], []).from_config(-2);
        for bad in [empty, no_members, comma, blank, version] {
            assert!(
                matches!(bad.wire_lists(), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}
