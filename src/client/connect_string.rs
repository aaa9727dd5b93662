//! Connect strings: `host1:port1,host2:port2/optional/chroot`.

use super::path::Chroot;
use crate::error::{Error, Result};

/// ZooKeeper's client port when none is given.
pub const DEFAULT_PORT: u16 = 2181;

/// One server address as written in the connect string (resolved on every attempt).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed connect string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// The servers, in the order written.
    pub hosts: Vec<HostPort>,
    /// The chroot, if one was given.
    pub chroot: Chroot,
}

impl ConnectString {
    /// Parses `h1:p1,h2:p2/chroot`. Ports default to 2181; IPv6 addresses go in brackets.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] when there is no host, a port is not a number from 1 to
    /// 65535, or the chroot is not a valid path.
    pub fn parse(input: &str) -> Result<ConnectString> {
        let bad = |reason: String| Error::InvalidConnectString {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        let (host_part, chroot) = match trimmed.find('/') {
            Some(i) => {
                let chroot =
                    Chroot::new(&trimmed[i..]).map_err(|e| bad(format!("invalid chroot: {e}")))?;
                (&trimmed[..i], chroot)
            }
            None => (trimmed, Chroot::none()),
        };
        let mut hosts = Vec::new();
        for entry in host_part
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            hosts.push(parse_host_port(entry).map_err(bad)?);
        }
        if hosts.is_empty() {
            return Err(bad("no hosts given".into()));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

fn parse_host_port(entry: &str) -> std::result::Result<HostPort, String> {
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| format!("unclosed '[' in {entry:?}"))?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected text after ']' in {entry:?}")),
        };
        (host, port)
    } else {
        match entry.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "IPv6 address {entry:?} must be written in brackets"
                ));
            }
            Some((h, p)) => (h, Some(p)),
            None => (entry, None),
        }
    };
    if host.is_empty() {
        return Err(format!("empty host in {entry:?}"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("invalid port {p:?} in {entry:?}")),
            Ok(port) => port,
        },
    };
    Ok(HostPort {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let cs = ConnectString::parse("a:1,b, [::1]:3/app/x").unwrap();
        let hosts: Vec<String> = cs.hosts.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["a:1", "b:2181", "[::1]:3"]);
        assert_eq!(cs.chroot.prefix(), Some("/app/x"));
    }

    #[test]
    fn rejects_bad_input() {
        for input in [
            "", "/chroot", ",", "a:0", "a:70000", "a:x", "::1:2", "[::1", "a:1/bad/",
        ] {
            assert!(
                matches!(
                    ConnectString::parse(input),
                    Err(Error::InvalidConnectString { .. })
                ),
                "{input:?}"
            );
        }
    }
}
