//! Which sessions move when the host list changes, so the load evens out over the new list
//! without every session reconnecting at once.
//!
//! Each session decides alone, by a weighted coin, following the reasoning of ZooKeeper's
//! own client (its `updateServerList`): assume the sessions are spread evenly over the old
//! hosts, `1/o` of them on each, and find the smallest movement that leaves `1/n` on each
//! new host.
//!
//! - A session on a host that stays: when the list grows (`n > o`) its host holds `1/o` but
//!   should hold `1/n`, so it moves with probability `1 - o/n`, to one of the added hosts
//!   (they start empty and every other host has too many). When the list does not grow, its
//!   host should hold at least as many as now: it stays.
//! - A session on a host that left (or on no known host) must move. When the list grows, to
//!   an added host, for the reason above. Otherwise the hosts that left shed `r/o` of the
//!   sessions; the `a` added hosts need `a/n` of them and the `k` staying hosts the rest
//!   (`1/n - 1/o` each), so it goes to an added host with probability `(a/n) / (r/o)` and to a
//!   staying host otherwise.
//!
//! The session then reconnects trying the chosen group first (shuffled), the rest after.

use std::net::{IpAddr, SocketAddr};

use crate::client::connect_string::HostPort;

/// Where the session's current connection is: the host it dialed and the address that
/// answered.
#[derive(Debug, Clone)]
pub(crate) struct Current<'a> {
    pub host: &'a HostPort,
    pub addr: SocketAddr,
}

impl Current<'_> {
    /// Whether `host` names the server this session is on: the same name and port, or the
    /// address that answered written as an IP address (an ensemble's configuration names
    /// members by address even when the connect string used names).
    fn is(&self, host: &HostPort) -> bool {
        host == self.host
            || (host.port == self.addr.port()
                && host.host.parse::<IpAddr>().ok() == Some(self.addr.ip()))
    }
}

/// What a session does about a new host list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rebalance {
    /// Keep the connection.
    Stay,
    /// Drop the connection and try these hosts first.
    MoveTo(Vec<HostPort>),
}

/// Decides for one session, `roll` being a uniform draw from `[0, 1)`. `current` is `None`
/// while the session has no connection (then nothing moves: the next round uses the new
/// list anyway).
pub(crate) fn decide(
    old: &[HostPort],
    new: &[HostPort],
    current: Option<&Current<'_>>,
    roll: f64,
) -> Rebalance {
    let Some(current) = current else {
        return Rebalance::Stay;
    };
    let old_count = old.len();
    let new_count = new.len();
    let (staying, added): (Vec<&HostPort>, Vec<&HostPort>) =
        new.iter().partition(|h| old.contains(h));
    let on_staying_host = new.iter().any(|h| current.is(h));
    let grows = new_count > old_count;
    let group: Vec<&HostPort> = if on_staying_host {
        // Ratios of small counts: exact enough in f64.
        let p_move = if grows {
            1.0 - old_count as f64 / new_count as f64
        } else {
            0.0
        };
        if roll >= p_move {
            return Rebalance::Stay;
        }
        added
    } else if grows || staying.is_empty() {
        added
    } else {
        let left = old_count.saturating_sub(staying.len()).max(1);
        let p_added =
            (added.len() as f64 / new_count as f64) / (left as f64 / old_count.max(1) as f64);
        if roll < p_added { added } else { staying }
    };
    let group = if group.is_empty() {
        new.iter().collect()
    } else {
        group
    };
    Rebalance::MoveTo(group.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(ports: &[u16]) -> Vec<HostPort> {
        ports
            .iter()
            .map(|&port| HostPort {
                host: "127.0.0.1".into(),
                port,
            })
            .collect()
    }

    fn on(host: &HostPort) -> Current<'_> {
        Current {
            host,
            addr: SocketAddr::from(([127, 0, 0, 1], host.port)),
        }
    }

    /// Spreads `sessions` evenly over `old`, applies `decide` with evenly spaced rolls, and
    /// counts the sessions each new host ends with (a moving session takes the first host
    /// of its group, round-robin, as shuffling would on average).
    fn spread(old: &[HostPort], new: &[HostPort], sessions: usize) -> Vec<usize> {
        let mut load = vec![0usize; new.len()];
        let mut next = 0usize;
        for s in 0..sessions {
            let host = &old[s % old.len()];
            let roll = (s / old.len()) as f64 / (sessions / old.len()) as f64;
            let index = |h: &HostPort| new.iter().position(|n| n == h);
            match decide(old, new, Some(&on(host)), roll) {
                Rebalance::Stay => load[index(host).expect("stays on a new host")] += 1,
                Rebalance::MoveTo(group) => {
                    let target = &group[next % group.len()];
                    next += 1;
                    load[index(target).expect("moves to a new host")] += 1;
                }
            }
        }
        load
    }

    #[test]
    fn growing_moves_a_share_to_the_added_hosts_only() {
        // 3 -> 5: 2/5 of each old host's sessions move, all to the two new hosts.
        let load = spread(&hosts(&[1, 2, 3]), &hosts(&[1, 2, 3, 4, 5]), 3000);
        assert_eq!(load, [600, 600, 600, 600, 600]);
    }

    #[test]
    fn shrinking_moves_only_the_sessions_of_the_hosts_that_left() {
        // 5 -> 3: the sessions on 4 and 5 move, spread over the three staying hosts.
        let load = spread(&hosts(&[1, 2, 3, 4, 5]), &hosts(&[1, 2, 3]), 3000);
        assert_eq!(load, [1000, 1000, 1000]);
        let old = hosts(&[1, 2, 3, 4, 5]);
        let new = hosts(&[1, 2, 3]);
        assert_eq!(decide(&old, &new, Some(&on(&old[0])), 0.0), Rebalance::Stay);
        assert_eq!(
            decide(&old, &new, Some(&on(&old[4])), 0.99),
            Rebalance::MoveTo(new.clone())
        );
    }

    #[test]
    fn replacing_hosts_sends_the_leaving_sessions_to_both_groups_in_proportion() {
        // {1,2,3} -> {1,2,4}: host 3's sessions all move, to 4 (which needs 1/3) before the
        // staying hosts (which already hold 1/3 each).
        let load = spread(&hosts(&[1, 2, 3]), &hosts(&[1, 2, 4]), 3000);
        assert_eq!(load, [1000, 1000, 1000]);
    }

    #[test]
    fn an_unchanged_list_or_no_connection_moves_nothing() {
        let list = hosts(&[1, 2, 3]);
        for roll in [0.0, 0.5, 0.999] {
            assert_eq!(
                decide(&list, &list, Some(&on(&list[1])), roll),
                Rebalance::Stay
            );
        }
        assert_eq!(decide(&list, &hosts(&[9]), None, 0.0), Rebalance::Stay);
    }

    #[test]
    fn a_name_in_the_connect_string_matches_the_address_in_the_new_list() {
        let named = HostPort {
            host: "zk1.example".into(),
            port: 2181,
        };
        let current = Current {
            host: &named,
            addr: SocketAddr::from(([10, 0, 0, 1], 2181)),
        };
        let new = vec![HostPort {
            host: "10.0.0.1".into(),
            port: 2181,
        }];
        assert_eq!(
            decide(std::slice::from_ref(&named), &new, Some(&current), 0.0),
            Rebalance::Stay
        );
        let elsewhere = vec![HostPort {
            host: "10.0.0.2".into(),
            port: 2181,
        }];
        assert_eq!(
            decide(
                std::slice::from_ref(&named),
                &elsewhere,
                Some(&current),
                0.0
            ),
            Rebalance::MoveTo(elsewhere.clone())
        );
    }
}
