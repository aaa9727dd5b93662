//! [`ServiceProvider`]: picks one instance of a service, with a [`ProviderStrategy`], among
//! those enabled and not noted down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use zkwarden::Result;

use super::cache::ServiceCache;
use super::instance::ServiceInstance;

/// How a [`ServiceProvider`] picks (Curator's `ProviderStrategy` implementations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Each in turn (Curator's `RoundRobinStrategy`).
    RoundRobin,
    /// Uniformly at random (Curator's `RandomStrategy`).
    Random,
    /// The same instance for as long as it is available; when it is not, a new one picked
    /// by the inner strategy (Curator's `StickyStrategy`).
    Sticky(Box<Strategy>),
}

/// A [`Strategy`] with its state (the round-robin position, the sticky choice). Usable on
/// any list of instances, not only a provider's.
#[derive(Debug)]
pub struct ProviderStrategy {
    strategy: Strategy,
    next: AtomicUsize,
    /// The id of the sticky choice.
    chosen: Mutex<Option<String>>,
    /// How often the sticky choice changed.
    changes: AtomicU64,
    inner: Option<Box<ProviderStrategy>>,
}

impl ProviderStrategy {
    /// A fresh state for `strategy`.
    pub fn new(strategy: Strategy) -> ProviderStrategy {
        let inner = match &strategy {
            Strategy::Sticky(inner) => Some(Box::new(ProviderStrategy::new((**inner).clone()))),
            _ => None,
        };
        ProviderStrategy {
            strategy,
            next: AtomicUsize::new(0),
            chosen: Mutex::new(None),
            changes: AtomicU64::new(0),
            inner,
        }
    }

    /// Round robin.
    pub fn round_robin() -> ProviderStrategy {
        ProviderStrategy::new(Strategy::RoundRobin)
    }

    /// Random.
    pub fn random() -> ProviderStrategy {
        ProviderStrategy::new(Strategy::Random)
    }

    /// Sticky over `inner`.
    pub fn sticky(inner: Strategy) -> ProviderStrategy {
        ProviderStrategy::new(Strategy::Sticky(Box::new(inner)))
    }

    /// The strategy.
    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    /// How many times a sticky strategy picked a new instance (Curator's
    /// `getInstanceNumber` plus one); 0 for the others.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// Picks one of `instances`; `None` when there are none.
    pub fn pick<'a, P>(
        &self,
        instances: &'a [ServiceInstance<P>],
    ) -> Option<&'a ServiceInstance<P>> {
        if instances.is_empty() {
            return None;
        }
        match (&self.strategy, &self.inner) {
            (Strategy::RoundRobin, _) => {
                instances.get(self.next.fetch_add(1, Ordering::Relaxed) % instances.len())
            }
            (Strategy::Random, _) => instances.get(fastrand::usize(..instances.len())),
            (Strategy::Sticky(_), Some(inner)) => {
                let Ok(mut chosen) = self.chosen.lock() else {
                    return inner.pick(instances);
                };
                if let Some(id) = chosen.as_deref() {
                    if let Some(same) = instances.iter().find(|i| i.id == id) {
                        return Some(same);
                    }
                }
                let picked = inner.pick(instances)?;
                *chosen = Some(picked.id.clone());
                self.changes.fetch_add(1, Ordering::Relaxed);
                Some(picked)
            }
            (Strategy::Sticky(_), None) => instances.first(),
        }
    }
}

/// When a provider takes an instance for down (Curator's `DownInstancePolicy`):
/// `error_threshold` errors noted ([`ServiceProvider::note_error`]) within `timeout` of the
/// first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownInstancePolicy {
    /// How long noted errors count.
    pub timeout: Duration,
    /// How many errors make an instance down.
    pub error_threshold: u32,
}

impl Default for DownInstancePolicy {
    /// Curator's defaults: two errors within 30 seconds.
    fn default() -> Self {
        DownInstancePolicy {
            timeout: Duration::from_secs(30),
            error_threshold: 2,
        }
    }
}

/// Picks instances of one service from a [`ServiceCache`] (Curator's `ServiceProvider`):
/// only instances that are `enabled` and not down by the [`DownInstancePolicy`].
#[derive(Debug)]
pub struct ServiceProvider<P> {
    cache: ServiceCache<P>,
    strategy: ProviderStrategy,
    policy: DownInstancePolicy,
    /// Noted errors per instance (`name`, `id`): when the first counted one was noted, and
    /// how many.
    errors: Mutex<HashMap<(String, String), (Instant, u32)>>,
}

impl<P: DeserializeOwned> ServiceProvider<P> {
    /// A provider over `cache`, picking with `strategy`, with the default down policy.
    pub fn new(cache: ServiceCache<P>, strategy: ProviderStrategy) -> ServiceProvider<P> {
        ServiceProvider {
            cache,
            strategy,
            policy: DownInstancePolicy::default(),
            errors: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the down-instance policy.
    pub fn down_instance_policy(mut self, policy: DownInstancePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Resolves once the provider's cache has read the instances.
    ///
    /// # Errors
    /// As [`ServiceCache::initialized`].
    pub async fn initialized(&self) -> Result<()> {
        self.cache.initialized().await
    }

    /// The instances a pick chooses from: enabled and not down.
    pub fn all_instances(&self) -> Vec<ServiceInstance<P>> {
        let mut instances = self.cache.instances();
        instances.retain(|i| i.enabled && !self.is_down(i));
        instances
    }

    /// One instance, picked by the strategy; `None` when none is available. Do not keep it:
    /// ask again for every use.
    pub fn instance(&self) -> Option<ServiceInstance<P>>
    where
        P: Clone,
    {
        let instances = self.all_instances();
        self.strategy.pick(&instances).cloned()
    }

    /// Notes that `instance` failed; enough errors within the policy's timeout take it out
    /// of the picks until they age out.
    pub fn note_error(&self, instance: &ServiceInstance<P>) {
        let now = Instant::now();
        if let Ok(mut errors) = self.errors.lock() {
            errors.retain(|_, (first, _)| now.duration_since(*first) < self.policy.timeout);
            errors
                .entry((instance.name.clone(), instance.id.clone()))
                .or_insert((now, 0))
                .1 += 1;
        }
    }

    fn is_down(&self, instance: &ServiceInstance<P>) -> bool {
        let Ok(errors) = self.errors.lock() else {
            return false;
        };
        errors
            .get(&(instance.name.clone(), instance.id.clone()))
            .is_some_and(|(first, count)| {
                first.elapsed() < self.policy.timeout && *count >= self.policy.error_threshold
            })
    }

    /// The strategy and its state.
    pub fn strategy(&self) -> &ProviderStrategy {
        &self.strategy
    }

    /// The provider's cache.
    pub fn cache(&self) -> &ServiceCache<P> {
        &self.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(ids: &[&str]) -> Vec<ServiceInstance<()>> {
        ids.iter()
            .map(|id| ServiceInstance::new("svc").with_id(*id))
            .collect()
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let list = instances(&["a", "b", "c"]);
        let strategy = ProviderStrategy::round_robin();
        let picks: Vec<&str> = (0..6)
            .map(|_| strategy.pick(&list).unwrap().id.as_str())
            .collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
        assert!(strategy.pick::<()>(&[]).is_none());
    }

    #[test]
    fn sticky_keeps_its_choice_until_it_goes() {
        let list = instances(&["a", "b", "c"]);
        let strategy = ProviderStrategy::sticky(Strategy::RoundRobin);
        for _ in 0..5 {
            assert_eq!(strategy.pick(&list).unwrap().id, "a");
        }
        assert_eq!(strategy.changes(), 1);
        let without_a = instances(&["b", "c"]);
        let next = strategy.pick(&without_a).unwrap().id.clone();
        assert_ne!(next, "a");
        assert_eq!(strategy.pick(&list).unwrap().id, next);
        assert_eq!(strategy.changes(), 2);
    }

    #[test]
    fn random_picks_only_from_the_list_and_reaches_every_one() {
        let list = instances(&["a", "b", "c"]);
        let strategy = ProviderStrategy::random();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(strategy.pick(&list).unwrap().id.clone());
        }
        assert_eq!(seen.len(), 3);
    }
}
