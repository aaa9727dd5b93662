//! The simulated network: a [`Dialer`] that opens an in-memory pipe to the model server for
//! every connection, with the faults the plan draws for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zkwarden::client::{DialFuture, DialedStream, Dialer};

use crate::model::conn::{self, ConnFaults, Shared};
use crate::trace::Trace;

/// How likely each fault is, per connection (0 turns it off).
#[derive(Debug, Clone, Copy)]
pub struct FaultRates {
    /// A dial refused.
    pub refuse: f64,
    /// The connection dropped before one of its first requests.
    pub drop: f64,
    /// A reply lost after the server applied the request (the connection then drops).
    pub lose_reply: f64,
    /// The server stalls, up to twice the session timeout.
    pub stall: f64,
    /// Latency and jitter on every frame.
    pub latency: f64,
}

impl FaultRates {
    /// No faults at all.
    pub const NONE: FaultRates = FaultRates {
        refuse: 0.0,
        drop: 0.0,
        lose_reply: 0.0,
        stall: 0.0,
        latency: 0.0,
    };
}

/// Draws the faults of each new connection from the seed.
#[derive(Debug)]
pub struct Plan {
    rng: fastrand::Rng,
    rates: FaultRates,
    /// The session timeout the clients ask for (stalls are scaled to it).
    pub session_timeout: Duration,
}

impl Plan {
    /// A plan drawing from `seed`.
    pub fn new(seed: u64, rates: FaultRates, session_timeout: Duration) -> Plan {
        Plan {
            rng: fastrand::Rng::with_seed(seed),
            rates,
            session_timeout,
        }
    }

    /// From now on, no faults: the network heals.
    pub fn heal(&mut self) {
        self.rates = FaultRates::NONE;
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.f64() < p
    }

    /// `None` when the dial is refused.
    fn next(&mut self) -> Option<ConnFaults> {
        if self.chance(self.rates.refuse) {
            return None;
        }
        let mut f = ConnFaults {
            seed: self.rng.u64(..),
            ..ConnFaults::default()
        };
        // Request 0 is the handshake: dropping it is a failed connection attempt.
        if self.chance(self.rates.drop) {
            f.drop_before = Some(self.rng.usize(0..12));
        }
        if self.chance(self.rates.lose_reply) {
            f.lose_reply = Some(self.rng.usize(1..12));
        }
        if self.chance(self.rates.stall) {
            let t = self.session_timeout.as_millis() as u64;
            let pause = Duration::from_millis(self.rng.u64(t / 4..=t * 2));
            f.stall = Some((self.rng.usize(0..12), pause));
        }
        if self.chance(self.rates.latency) {
            f.latency = Duration::from_millis(self.rng.u64(0..30));
            f.jitter = Duration::from_millis(self.rng.u64(0..30));
        }
        Some(f)
    }
}

/// The dialer the clients of a run use.
#[derive(Clone, Debug)]
pub struct SimNet {
    /// The server.
    pub model: Shared,
    /// The faults to come.
    pub plan: Arc<Mutex<Plan>>,
    /// The run's trace.
    pub trace: Trace,
}

impl Dialer for SimNet {
    fn dial(&self, addr: SocketAddr) -> DialFuture {
        let faults = self.plan.lock().unwrap_or_else(|e| e.into_inner()).next();
        let Some(faults) = faults else {
            self.trace.log(format_args!("net: dial {addr} refused"));
            return Box::pin(async {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
            });
        };
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(conn::serve(
            self.model.clone(),
            server,
            faults,
            self.trace.clone(),
        ));
        Box::pin(async move { Ok(Box::new(client) as Box<dyn DialedStream>) })
    }
}
