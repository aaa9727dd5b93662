//! The simulated network: a [`Dialer`] that opens an in-memory pipe to a member of the model
//! for every connection, with the faults the plan draws for it; and the ensemble's faults
//! (member crashes, stalls, partitions between a client and a member, client pauses) drawn
//! from the seed and played on a schedule.
//!
//! Addresses: member `m` is `10.0.0.{m + 1}`; the port is `2181 + client`, so the network
//! knows which client dials (partitions and pauses are per client). `10.0.0.1:2181` is
//! member 0 dialed by client 0, the one-server setup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use zkwarden::client::{DialFuture, DialedStream, Dialer};

use crate::model::conn::{self, ConnFaults, Endpoint, Shared, lock};
use crate::trace::Trace;

/// The port member addresses use for client 0.
const BASE_PORT: u16 = 2181;

/// The connect string of client `client` for an ensemble of `members`.
pub fn connect_string(members: usize, client: usize) -> String {
    (0..members.max(1))
        .map(|m| address(m, client).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The address of member `member` as client `client` dials it.
pub fn address(member: usize, client: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, 0, 0, (member + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), BASE_PORT + client as u16)
}

/// The member and client an address names.
fn endpoint_of(addr: SocketAddr) -> (usize, usize) {
    let member = match addr.ip() {
        IpAddr::V4(ip) => usize::from(ip.octets()[3].saturating_sub(1)),
        IpAddr::V6(_) => 0,
    };
    let client = usize::from(addr.port().saturating_sub(BASE_PORT));
    (member, client)
}

/// A direction frames travel in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the client to the member.
    ToServer,
    /// From the member to the client.
    ToClient,
}

/// A time window during which frames between a client and a member are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The client.
    pub client: usize,
    /// The member (`None`: every member, a pause of the client process).
    pub member: Option<usize>,
    /// The direction held (`None`: both).
    pub dir: Option<Dir>,
    /// From then...
    pub from: Instant,
    /// ...until then.
    pub until: Instant,
}

impl Window {
    fn holds(&self, client: usize, member: usize, dir: Dir, now: Instant) -> bool {
        self.client == client
            && self.member.is_none_or(|m| m == member)
            && self.dir.is_none_or(|d| d == dir)
            && self.from <= now
            && now < self.until
    }
}

/// The partition and pause windows of a run, shared by its connections.
#[derive(Debug, Clone, Default)]
pub struct Links(Arc<Mutex<Vec<Window>>>);

impl Links {
    fn windows(&self) -> std::sync::MutexGuard<'_, Vec<Window>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a window.
    pub fn add(&self, window: Window) {
        self.windows().push(window);
    }

    /// Ends every window (the network heals).
    pub fn clear(&self) {
        self.windows().clear();
    }

    /// When frames from `client` to `member` (or back) going `dir` flow again, if they are
    /// held at `now`.
    pub fn held_until(
        &self,
        client: usize,
        member: usize,
        dir: Dir,
        now: Instant,
    ) -> Option<Instant> {
        self.windows()
            .iter()
            .filter(|w| w.holds(client, member, dir, now))
            .map(|w| w.until)
            .max()
    }

    /// Waits out a pause of client `client`'s process: its own code starts no work
    /// meanwhile (`who` names it in the trace).
    pub async fn wait_out_pause(&self, client: usize, who: &str, trace: &Trace) {
        while let Some(until) = self.paused_until(client, Instant::now()) {
            trace.log(format_args!(
                "{who} {client}: process paused until {:?} from now",
                until - Instant::now()
            ));
            tokio::time::sleep_until(until).await;
        }
    }

    /// When client `client`'s pause ends, if it is paused at `now`.
    pub fn paused_until(&self, client: usize, now: Instant) -> Option<Instant> {
        self.windows()
            .iter()
            .filter(|w| w.member.is_none() && w.client == client && w.from <= now && now < w.until)
            .map(|w| w.until)
            .max()
    }
}

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
    /// The partition and pause windows.
    pub links: Links,
    /// Whether the network has healed.
    pub healed: bool,
}

impl Plan {
    /// A plan drawing from `seed`.
    pub fn new(seed: u64, rates: FaultRates, session_timeout: Duration) -> Plan {
        Plan {
            rng: fastrand::Rng::with_seed(seed),
            rates,
            session_timeout,
            links: Links::default(),
            healed: false,
        }
    }

    /// From now on, no faults: the network heals (partitions and pauses end).
    pub fn heal(&mut self) {
        self.rates = FaultRates::NONE;
        self.links.clear();
        self.healed = true;
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
    /// A crashed member refuses the dial; a partition or pause holds it until it ends (the
    /// client's own attempt timeout decides whether it waits that long).
    fn dial(&self, addr: SocketAddr) -> DialFuture {
        let (member, client) = endpoint_of(addr);
        let (faults, links) = {
            let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
            (plan.next(), plan.links.clone())
        };
        let up = lock(&self.model)
            .members_up()
            .get(member)
            .copied()
            .unwrap_or(false);
        let Some(faults) = faults.filter(|_| up) else {
            self.trace.log(format_args!("net: dial {addr} refused"));
            return Box::pin(async {
                Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
            });
        };
        let (model, trace) = (self.model.clone(), self.trace.clone());
        Box::pin(async move {
            loop {
                let now = Instant::now();
                let held = [Dir::ToServer, Dir::ToClient]
                    .iter()
                    .filter_map(|&d| links.held_until(client, member, d, now))
                    .max();
                match held {
                    Some(until) => tokio::time::sleep_until(until).await,
                    None => break,
                }
            }
            let (near, far) = tokio::io::duplex(64 * 1024);
            let endpoint = Endpoint {
                member,
                client,
                links: Some(links),
            };
            tokio::spawn(conn::serve_on(model, far, endpoint, faults, trace));
            Ok(Box::new(near) as Box<dyn DialedStream>)
        })
    }
}

/// A fault of one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberFault {
    /// The member crashes, and restarts after `down`.
    Crash {
        /// Which.
        member: usize,
        /// For how long.
        down: Duration,
    },
    /// The member stalls (serves and applies nothing) for `pause`.
    Stall {
        /// Which.
        member: usize,
        /// For how long.
        pause: Duration,
    },
    /// The leader is lost and a new one elected after `pause`: every member drops its
    /// clients meanwhile.
    Election {
        /// For how long.
        pause: Duration,
    },
}

/// The ensemble's faults of one run, drawn from the seed.
#[derive(Debug, Clone, Default)]
pub struct EnsembleFaults {
    /// How far behind the commits each member applies them.
    pub lags: Vec<Duration>,
    /// Member faults, at times from the start of the run, in time order.
    pub events: Vec<(Duration, MemberFault)>,
    /// Partitions between a client and a member, and client pauses.
    pub windows: Vec<Window>,
}

impl EnsembleFaults {
    /// Draws the faults of an ensemble of `members` serving `clients` clients whose
    /// sessions time out after `session`, from `rng`, for a run started at `start`; `rough`
    /// draws more of them.
    pub fn draw(
        rng: &mut fastrand::Rng,
        members: usize,
        clients: usize,
        session: Duration,
        start: Instant,
        rough: bool,
    ) -> EnsembleFaults {
        let t = session.as_millis() as u64;
        let clients = clients.max(1);
        let mut faults = EnsembleFaults {
            lags: (0..members)
                .map(|_| {
                    if members > 1 && rng.bool() {
                        Duration::from_millis(rng.u64(100..=t))
                    } else {
                        Duration::ZERO
                    }
                })
                .collect(),
            ..EnsembleFaults::default()
        };
        let most = if rough { 3 } else { 1 };
        for _ in 0..rng.usize(0..=most) {
            let at = Duration::from_millis(rng.u64(200..6_000));
            let member = rng.usize(..members);
            let fault = if rng.bool() {
                MemberFault::Crash {
                    member,
                    down: Duration::from_millis(rng.u64(500..=t * 2)),
                }
            } else {
                MemberFault::Stall {
                    member,
                    pause: Duration::from_millis(rng.u64(t / 4..=t * 2)),
                }
            };
            faults.events.push((at, fault));
        }
        faults.events.sort_by_key(|e| e.0);
        for _ in 0..rng.usize(0..=most.min(2)) {
            let from = start + Duration::from_millis(rng.u64(200..6_000));
            let dir = match rng.u8(..3) {
                0 => Some(Dir::ToServer),
                1 => Some(Dir::ToClient),
                _ => None,
            };
            faults.windows.push(Window {
                client: rng.usize(..clients),
                member: Some(rng.usize(..members)),
                dir,
                from,
                until: from + Duration::from_millis(rng.u64(t / 4..=t * 2)),
            });
        }
        // The client process paused past its session (see docs/simulation.md).
        if rng.u8(..4) == 0 {
            let from = start + Duration::from_millis(rng.u64(200..5_000));
            faults.windows.push(Window {
                client: rng.usize(..clients),
                member: None,
                dir: None,
                from,
                until: from + Duration::from_millis(rng.u64(t..=t * 5 / 2)),
            });
        }
        // A leader lost and re-elected (drawn last, so that the draws before stay as they
        // were for every seed).
        if members > 1 && rng.u8(..4) == 0 {
            let at = Duration::from_millis(rng.u64(200..6_000));
            let pause = Duration::from_millis(rng.u64(200..=t));
            faults.events.push((at, MemberFault::Election { pause }));
            faults.events.sort_by_key(|e| e.0);
        }
        faults
    }

    /// Sets the lags on `model` and the windows on `links`.
    pub fn install(&self, model: &Shared, links: &Links) {
        let mut m = lock(model);
        for (member, lag) in self.lags.iter().enumerate() {
            m.set_lag(member, *lag);
        }
        for window in &self.windows {
            links.add(*window);
        }
    }

    /// Plays the member faults on their schedule from `start`, until the plan heals.
    pub async fn play(self, model: Shared, plan: Arc<Mutex<Plan>>, start: Instant, trace: Trace) {
        let mut restarts: Vec<(Instant, usize)> = Vec::new();
        let mut events = self.events.into_iter().peekable();
        loop {
            let next_event = events.peek().map(|e| start + e.0);
            let next_restart = restarts.iter().map(|r| r.0).min();
            let Some(at) = next_event.into_iter().chain(next_restart).min() else {
                return;
            };
            tokio::time::sleep_until(at).await;
            if plan.lock().unwrap_or_else(|e| e.into_inner()).healed {
                return;
            }
            let now = Instant::now();
            let mut m = lock(&model);
            let due: Vec<usize> = restarts
                .iter()
                .filter(|r| r.0 <= now)
                .map(|r| r.1)
                .collect();
            restarts.retain(|r| r.0 > now);
            for member in due {
                trace.log(format_args!("ensemble: member {member} restarts"));
                m.restart(member, now);
            }
            while let Some((_, fault)) = events.next_if(|e| start + e.0 <= now) {
                match fault {
                    MemberFault::Crash { member, down } => {
                        if m.members_up().get(member) == Some(&true) {
                            m.crash(member, now);
                            trace.log(format_args!(
                                "ensemble: member {member} crashes for {down:?} (quorum: {})",
                                m.has_quorum()
                            ));
                            restarts.push((now + down, member));
                        }
                    }
                    MemberFault::Stall { member, pause } => {
                        trace.log(format_args!("ensemble: member {member} stalls {pause:?}"));
                        m.stall(member, now + pause);
                    }
                    MemberFault::Election { pause } => {
                        trace.log(format_args!(
                            "ensemble: the leader is lost; a new one in {pause:?}"
                        ));
                        m.elect(now + pause);
                    }
                }
            }
        }
    }
}
