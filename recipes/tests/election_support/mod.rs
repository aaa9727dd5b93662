//! Following who believes it leads, for the election interop tests: every participant
//! reports each gain and loss of leadership on one channel, and the test waits on those
//! reports before applying its next fault.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::common::within;

/// A change of belief, as a participant reports it to the test.
#[derive(Debug, Clone)]
pub struct Belief {
    pub who: String,
    pub leading: bool,
}

/// Who believes they lead, as reported so far, and how many terms each began.
pub struct Beliefs {
    rx: mpsc::UnboundedReceiver<Belief>,
    leading: BTreeMap<String, bool>,
    terms: BTreeMap<String, usize>,
}

impl Beliefs {
    /// Follows the reports arriving on `rx`.
    pub fn new(rx: mpsc::UnboundedReceiver<Belief>) -> Beliefs {
        Beliefs {
            rx,
            leading: BTreeMap::new(),
            terms: BTreeMap::new(),
        }
    }

    /// Terms begun so far, by participant (reports taken in so far).
    pub fn terms(&self) -> &BTreeMap<String, usize> {
        &self.terms
    }

    /// Everybody who believes it leads now.
    pub fn leaders(&self) -> Vec<String> {
        self.leading
            .iter()
            .filter(|(_, leading)| **leading)
            .map(|(who, _)| who.clone())
            .collect()
    }

    fn apply(&mut self, belief: Belief) {
        if belief.leading {
            *self.terms.entry(belief.who.clone()).or_default() += 1;
        }
        self.leading.insert(belief.who, belief.leading);
    }

    async fn next(&mut self) {
        let belief = self.rx.recv().await.expect("beliefs");
        self.apply(belief);
    }

    /// Waits until exactly one participant believes it leads (taking in every report
    /// already queued first); returns it.
    pub async fn one_leader(&mut self) -> String {
        while let Ok(belief) = self.rx.try_recv() {
            self.apply(belief);
        }
        within("a single leader", async {
            loop {
                if let [leader] = self.leaders().as_slice() {
                    return leader.clone();
                }
                self.next().await;
            }
        })
        .await
    }

    /// Waits until somebody other than `who` believes it leads (a report already taken in
    /// counts: before the fault only `who` led); returns it.
    pub async fn gain_by_other_than(&mut self, who: &str) -> String {
        within("a new leader", async {
            loop {
                if let Some(other) = self.leaders().into_iter().find(|l| l != who) {
                    return other;
                }
                self.next().await;
            }
        })
        .await
    }

    /// Waits until `who` reports a loss (or returns at once if it does not lead).
    pub async fn loss_by(&mut self, who: &str) {
        within(&format!("{who} to step down"), async {
            while self.leading.get(who).copied().unwrap_or(false) {
                self.next().await;
            }
        })
        .await;
    }
}

/// Whose leadership a fault is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    Rust,
    Curator,
}

impl Target {
    /// Whether participant `who` (`rust-…` or `java-…`) is of this kind.
    pub fn matches(self, who: &str) -> bool {
        match self {
            Target::Any => true,
            Target::Rust => who.starts_with("rust-"),
            Target::Curator => who.starts_with("java-"),
        }
    }
}
