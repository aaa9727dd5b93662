//! The [`Connector`]: how a session reaches a server.
//!
//! # Who owns what
//!
//! The connector owns the host list and its order (shuffled every round, the host whose
//! connection just died last, a host found read-write first, the hosts a
//! [rebalance](super::rebalance) chose first after the list changed), the way to a server
//! (the transport: TCP, TLS, or a dialer; names are resolved on every attempt), the
//! handshake and SASL ([`connect::attempt`]), the pause before re-attaching after a lost
//! connection and the pause between failed rounds (both [`Backoff`]), and the probe that
//! looks for a read-write server while the session sits on a read-only one ([`Seeker`]). It decides nothing about the session: how long an
//! attempt may take, when to give up and what the failure means belong to the
//! [core](super::core); the [driver](super::driver) runs the attempts.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use super::config::SessionConfig;
use super::connect::{self, AttemptError, Established, Handshake};
use super::core::Offer;
use super::rebalance::{self, Current, Rebalance};
use super::rw_probe::Seeker;
use super::transport::Security;
use crate::Backoff;
use crate::client::SaslConfig;
use crate::client::connect_string::HostPort;

/// Host order, dialing, and the pause between rounds.
pub(crate) struct Connector {
    hosts: Vec<HostPort>,
    security: Security,
    sasl: Option<SaslConfig>,
    session_timeout: Duration,
    read_only: bool,
    max_frame_len: usize,
    backoff: Backoff,
    /// The pause before the first round after a lost connection: the same distribution every
    /// time (between half and all of the configured delay).
    loss_pause: Backoff,
    /// The host of the connection that just died: tried last in the next round, so a dead
    /// server does not eat the time the session has left before the healthy ones are tried.
    last_host: Option<HostPort>,
    /// A host found read-write while connected read-only: tried first on the next round.
    prefer_host: Option<HostPort>,
    /// After the host list changed: the hosts the next round tries first.
    prefer_group: Vec<HostPort>,
    /// The address of the live connection, if one is up.
    current_addr: Option<SocketAddr>,
    /// Looks for a read-write server while the connection is read-only.
    seeker: Seeker,
}

impl Connector {
    pub(crate) fn new(config: &SessionConfig) -> Connector {
        Connector {
            hosts: config.hosts.clone(),
            security: config.security.clone(),
            sasl: config.sasl.clone(),
            session_timeout: config.session_timeout,
            read_only: config.read_only,
            max_frame_len: config.max_frame_len,
            backoff: Backoff::new(config.min_backoff, config.max_backoff)
                .patience(config.backoff_patience, config.later_max_backoff),
            loss_pause: {
                // At least two thirds of the session's life stay for finding a server.
                let delay = config.reconnect_delay.min(config.session_timeout / 3);
                Backoff::new(delay, delay)
            },
            last_host: None,
            prefer_host: None,
            prefer_group: Vec::new(),
            current_addr: None,
            seeker: Seeker::idle(),
        }
    }

    /// The hosts to try in the next round, in order.
    pub(crate) fn round(&mut self) -> Vec<HostPort> {
        let mut order = self.hosts.clone();
        fastrand::shuffle(&mut order);
        let group = std::mem::take(&mut self.prefer_group);
        // A stable sort keeps the shuffle within each part.
        order.sort_by_key(|h| !group.contains(h));
        order_round(&mut order, self.last_host.take(), self.prefer_host.take());
        order
    }

    /// The hosts as they are now.
    pub(crate) fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    /// Replaces the host list. While a connection is up, decides by a weighted coin whether
    /// this session moves so the load evens out (see [`rebalance`]); on
    /// [`Rebalance::MoveTo`] the caller drops the connection and the next round tries the
    /// chosen hosts first. An empty list is ignored.
    pub(crate) fn update_hosts(&mut self, hosts: Vec<HostPort>) -> Rebalance {
        if hosts.is_empty() || hosts == self.hosts {
            return Rebalance::Stay;
        }
        let current = match (&self.last_host, self.current_addr) {
            (Some(host), Some(addr)) => Some(Current { host, addr }),
            _ => None,
        };
        let decision = rebalance::decide(&self.hosts, &hosts, current.as_ref(), fastrand::f64());
        self.prefer_group = match &decision {
            Rebalance::MoveTo(group) => group.clone(),
            Rebalance::Stay => Vec::new(),
        };
        self.hosts = hosts;
        decision
    }

    /// One attempt on `host`: resolve, dial, handshake offering `offer`, SASL. The future
    /// owns what it needs, so commands can be held while it runs.
    pub(crate) fn attempt(
        &self,
        host: &HostPort,
        offer: Offer,
    ) -> impl Future<Output = Result<Established, AttemptError>> + use<> {
        let hs = Handshake {
            last_zxid: offer.last_zxid,
            timeout: self.session_timeout,
            session_id: offer.session_id,
            password: offer.password,
            read_only: self.read_only,
            max_frame_len: self.max_frame_len,
            sasl: self.sasl.clone(),
        };
        let host = host.clone();
        let security = self.security.clone();
        async move { connect::attempt(&host, &hs, &security).await }
    }

    /// `host` accepted the session: it goes last if its connection dies, and the pauses
    /// start over. While `read_only`, the other hosts are probed for a read-write one.
    pub(crate) fn connected_to(&mut self, host: &HostPort, addr: SocketAddr, read_only: bool) {
        self.last_host = Some(host.clone());
        self.current_addr = Some(addr);
        self.backoff.reset();
        self.seeker = if read_only {
            Seeker::start(&self.hosts, Some(host), &self.security)
        } else {
            Seeker::idle()
        };
    }

    /// The connection ended: the probe stops.
    pub(crate) fn disconnected(&mut self) {
        self.current_addr = None;
        self.seeker = Seeker::idle();
    }

    /// The pause after a failed round.
    pub(crate) fn next_pause(&mut self) -> Duration {
        self.backoff.next_pause()
    }

    /// The pause before re-attaching after a lost connection. Without it, a client whose
    /// connection the server dropped because another connection attached the session (to
    /// close it: an expiry) would take the session back before the close lands, be answered,
    /// and lose it again a moment later; and the clients of a restarted ensemble would all
    /// come back in the same instant. None when a read-write server was found: leaving a
    /// read-only one is no loss.
    pub(crate) fn pause_after_loss(&mut self) -> Duration {
        if self.prefer_host.is_some() {
            return Duration::ZERO;
        }
        self.loss_pause.next_pause()
    }

    /// Completes when the probe finds a read-write host (never while none runs); the next
    /// round then tries that host first. Cancel-safe.
    pub(crate) async fn read_write_found(&mut self) -> HostPort {
        let host = self.seeker.found().await;
        self.prefer_host = Some(host.clone());
        host
    }
}

/// Puts `last` (the host that just failed) at the end of `order` and `preferred` at the front.
fn order_round(order: &mut Vec<HostPort>, last: Option<HostPort>, preferred: Option<HostPort>) {
    if let Some(last) = last {
        if let Some(i) = order.iter().position(|h| *h == last) {
            let host = order.remove(i);
            order.push(host);
        }
    }
    if let Some(preferred) = preferred {
        if let Some(i) = order.iter().position(|h| *h == preferred) {
            let host = order.remove(i);
            order.insert(0, host);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(port: u16) -> HostPort {
        HostPort {
            host: "h".into(),
            port,
        }
    }

    #[test]
    fn the_failed_host_goes_last_and_the_preferred_first() {
        let mut order = vec![host(1), host(2), host(3)];
        order_round(&mut order, Some(host(1)), Some(host(3)));
        assert_eq!(order, [host(3), host(2), host(1)]);
        let mut order = vec![host(1), host(2)];
        order_round(&mut order, Some(host(9)), None);
        assert_eq!(order, [host(1), host(2)]);
    }
}
