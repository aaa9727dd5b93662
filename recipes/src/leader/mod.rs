//! Leader election that shares its znodes with Apache Curator: [`LeaderLatch`] (Curator's
//! `LeaderLatch`) and [`LeaderSelector`] (Curator's `LeaderSelector`).
//!
//! Both hand out a [`Leadership`] that tells the truth about the term:
//! [`Leadership::lost`] resolves the moment the leadership can no longer be trusted (by
//! default at `Suspended`), [`Leadership::fencing_token`] grows with every term, and
//! a `Leadership` is a [`Fence`](zkwarden::warden::Fence):
//! `warden.transaction().fenced_by(&leadership)` makes a transaction fail on the server, with
//! [`Error::FencedOut`](zkwarden::Error::FencedOut), once the term's node is gone. A fenced
//! write can still succeed after `lost()` fired at `Suspended` while the session lived:
//! `lost()` says when to stop, the fence that a former leader's write never lands; use both.
//! [`LeaderLatch::participants`] and [`LeaderSelector::participants`] list everybody queued
//! on a path, Curator participants included.

mod contend;
mod latch;
mod leadership;
mod naming;
mod participants;
mod selector;

pub use crate::lock::LostReason;
pub use latch::{LeaderLatch, LeaderLatchBuilder};
pub use leadership::Leadership;
pub use naming::LATCH_NAME;
pub use participants::Participant;
#[allow(deprecated)]
pub use selector::SelectorHandle;
pub use selector::{LeaderSelector, LeaderSelectorBuilder, TermOutcome};
/// The token a [`LeaderSelector`] scope is handed, re-exported so that a scope's signature
/// needs no other crate.
pub use tokio_util::sync::CancellationToken;

/// This process's participant id: `host:pid` (the same id lock nodes carry).
fn holder_id() -> String {
    String::from_utf8_lossy(&crate::lock::internals::holder_id()).into_owned()
}
