//! The faults of one run, drawn the same way for both sweeps: the session timeout, how
//! rough the network is, the ensemble (one, three or five members, their lags, crashes,
//! stalls and elections), partitions between a client and a member, a client's pause, and a
//! forced expiry; then the model, the network plan and the tasks that play the faults.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::model::Model;
use crate::model::conn::{Shared, lock};
use crate::net::{EnsembleFaults, FaultRates, Links, Plan, SimNet};
use crate::scenario::{TICK, lock_plan, ticker};
use crate::trace::Trace;

/// A run's model, network and faults, playing from `start` until [`Setup::heal`].
pub(crate) struct Setup {
    /// The session timeout every client asks for.
    pub session_timeout: Duration,
    /// How many members the ensemble has.
    pub members: usize,
    /// How many clients (actors or wardens) the faults were drawn for.
    pub clients: usize,
    /// The server.
    pub model: Shared,
    /// The network's partition and pause windows.
    pub links: Links,
    /// The dialer every client uses.
    pub net: SimNet,
    ticker: JoinHandle<()>,
    player: JoinHandle<()>,
}

impl Setup {
    /// Draws a run's faults from `rng` and starts playing them; `tree` makes the nodes the
    /// run starts with. `what` names the run in the trace (empty for the client sweep).
    ///
    /// The order of the draws is the client sweep's since before the recipe sweep shared
    /// it, so that its seeds run as they did.
    pub fn draw(
        rng: &mut fastrand::Rng,
        seed: u64,
        what: &str,
        trace: &Trace,
        tree: impl FnOnce(&Shared),
    ) -> Setup {
        let session_timeout = Duration::from_millis(rng.u64(6..=20) * TICK.as_millis() as u64);
        let rough = rng.bool();
        let rates = if rough {
            FaultRates {
                refuse: 0.05,
                drop: 0.2,
                lose_reply: 0.2,
                stall: 0.1,
                latency: 0.5,
            }
        } else {
            FaultRates {
                refuse: 0.0,
                drop: 0.05,
                lose_reply: 0.05,
                stall: 0.02,
                latency: 0.3,
            }
        };
        let members = [1, 1, 3, 3, 3, 5][rng.usize(..6)];
        let start = Instant::now();
        let model: Shared = Arc::new(Mutex::new(Model::with_members(TICK, start, members)));
        tree(&model);
        let plan = Arc::new(Mutex::new(Plan::new(rng.u64(..), rates, session_timeout)));
        let links = lock_plan(&plan).links.clone();
        let net = SimNet {
            model: model.clone(),
            plan: plan.clone(),
            trace: trace.clone(),
        };
        trace.log(format_args!(
            "run: {what}seed {seed}, session timeout {session_timeout:?}, faults {rates:?}"
        ));
        let forced_expiry = rng
            .bool()
            .then(|| Duration::from_millis(rng.u64(500..15_000)));
        let ticker = tokio::spawn(ticker(
            model.clone(),
            forced_expiry,
            rng.u64(..),
            trace.clone(),
        ));
        let clients = rng.usize(2..=3);
        let mut ensemble_rng = fastrand::Rng::with_seed(rng.u64(..));
        let ensemble = EnsembleFaults::draw(
            &mut ensemble_rng,
            members,
            clients,
            session_timeout,
            start,
            rough,
        );
        trace.log(format_args!(
            "run: {members} member(s), lags {:?}, member faults {:?}, windows {:?}",
            ensemble.lags,
            ensemble.events,
            ensemble
                .windows
                .iter()
                .map(|w| format!(
                    "client {} member {:?} dir {:?} {:?}+{:?}",
                    w.client,
                    w.member,
                    w.dir,
                    w.from - start,
                    w.until - w.from
                ))
                .collect::<Vec<_>>()
        ));
        ensemble.install(&model, &links);
        let player = tokio::spawn(ensemble.play(model.clone(), plan, start, trace.clone()));
        Setup {
            session_timeout,
            members,
            clients,
            model,
            links,
            net,
            ticker,
            player,
        }
    }

    /// The connect string of client `client`: every member.
    pub fn connect_string(&self, client: usize) -> String {
        crate::net::connect_string(self.members, client)
    }

    /// The network heals: no more faults, every window ends, crashed or stalled members
    /// come back and an election under way ends.
    pub fn heal(&self, trace: &Trace) {
        lock_plan(&self.net.plan).heal();
        self.player.abort();
        lock(&self.model).restart_all(Instant::now());
        trace.log(format_args!("run: the network heals"));
    }

    /// Stops expiring sessions (after the run's checks have what they need).
    pub fn stop(&self) {
        self.ticker.abort();
    }
}
