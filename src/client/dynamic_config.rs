//! Reading an ensemble's dynamic configuration (the data of `/zookeeper/config`) for the
//! addresses clients connect to.

use super::connect_string::{ConnectString, HostPort};

/// The client addresses of the members (participants and observers) a configuration lists,
/// in the order listed. A member's client address is the part after `;` in
/// `server.N=quorumhost:port:port[:role];[clienthost:]port`; a wildcard client host
/// (`0.0.0.0`, `::`, or none at all) means "every interface" on the member, which a client
/// reaches at the member's quorum host. Members without a client address (no `;` part) are
/// left out, as are lines that do not parse.
pub(crate) fn client_hosts(config: &[u8]) -> Vec<HostPort> {
    let Ok(text) = std::str::from_utf8(config) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once('=')?;
            key.strip_prefix("server.")?.parse::<u64>().ok()?;
            member_client_host(value)
        })
        .collect()
}

/// The client address of one member's specification.
fn member_client_host(spec: &str) -> Option<HostPort> {
    let (quorum, client) = spec.split_once(';')?;
    let client = client.trim();
    let (host, port) = if client.bytes().all(|b| b.is_ascii_digit()) {
        (None, client.parse::<u16>().ok()?)
    } else {
        let parsed = ConnectString::parse(client).ok()?;
        if !parsed.chroot.is_empty() || parsed.hosts.len() != 1 {
            return None;
        }
        let hp = parsed.hosts.into_iter().next()?;
        (Some(hp.host), hp.port)
    };
    if port == 0 {
        return None;
    }
    let host = match host {
        Some(h) if !is_wildcard(&h) => h,
        _ => quorum_host(quorum)?,
    };
    Some(HostPort { host, port })
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
}

/// The host of `host:port:port[:role]` (an IPv6 host in brackets).
fn quorum_host(quorum: &str) -> Option<String> {
    let quorum = quorum.trim();
    let host = match quorum.strip_prefix('[') {
        Some(rest) => &rest[..rest.find(']')?],
        None => quorum.split(':').next()?,
    };
    (!host.is_empty() && !is_wildcard(host)).then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(config: &str) -> Vec<String> {
        client_hosts(config.as_bytes())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn members_give_their_client_addresses() {
        let config = "server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n\
                      server.2=zk2.example:2888:3888:observer;zk2.example:2182\n\
                      version=100000003\n";
        assert_eq!(shown(config), ["10.0.0.1:2181", "zk2.example:2182"]);
    }

    #[test]
    fn a_wildcard_or_missing_client_host_means_the_quorum_host() {
        let config = "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                      server.2=10.0.0.2:2888:3888;2181\n\
                      server.3=[fd00::3]:2888:3888:participant;[::]:2181\n";
        assert_eq!(
            shown(config),
            ["10.0.0.1:2181", "10.0.0.2:2181", "[fd00::3]:2181"]
        );
    }

    #[test]
    fn lines_without_a_client_address_or_that_do_not_parse_are_left_out() {
        let config = "server.1=10.0.0.1:2888:3888:participant\n\
                      server.x=10.0.0.2:2888:3888;2181\n\
                      server.3=10.0.0.3:2888:3888;0\n\
                      server.4=0.0.0.0:2888:3888;0.0.0.0:2181\n\
                      server.5=10.0.0.5:2888:3888;a:1/chroot\n\
                      version=1\n";
        assert!(shown(config).is_empty());
        assert!(client_hosts(&[0xff, 0xfe]).is_empty());
        assert!(client_hosts(b"").is_empty());
    }
}
