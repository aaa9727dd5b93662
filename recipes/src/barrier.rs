//! Barriers, with Apache Curator's znode layout: [`Barrier`] (Curator's
//! `DistributedBarrier`: processes wait while one node exists) and [`DoubleBarrier`]
//! (Curator's `DistributedDoubleBarrier`: a fixed number of members enter together and leave
//! together).
//!
//! Waits are driven by watches and always re-read the nodes when woken, so a watch firing
//! for a connection change, a reconnection or a new session never lets anyone through early.

use std::time::Duration;

use tokio::time::Instant;
use zkwarden::warden::ParentMode;
use zkwarden::{CreateMode, Error, OneshotWatcher, Result, Warden};

/// A random (version 4) UUID in its usual text form, as Java's `UUID.randomUUID()` prints.
/// Drawn from `fastrand`'s thread-local generator (seeded from the OS per thread, and by a
/// simulation from its seed, so that a run replays), as the warden's protected names are.
pub(crate) fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn join(parent: &str, name: &str) -> String {
    format!("{}/{name}", parent.trim_end_matches('/'))
}

/// Waits for a one-shot watch until `deadline`. `false` when the deadline passed first. A
/// watch that ended with its session counts as woken: the caller re-reads.
async fn woken(watcher: OneshotWatcher, deadline: Option<Instant>) -> bool {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, watcher).await.is_ok(),
        None => {
            let _ = watcher.await;
            true
        }
    }
}

/// A handle that gives up at `deadline`, when there is one.
fn bounded(warden: &Warden, deadline: Option<Instant>) -> Warden {
    match deadline {
        Some(deadline) => warden.with_deadline(deadline),
        None => warden.clone(),
    }
}

/// A barrier held by one node, as Apache Curator's `DistributedBarrier`: while the node
/// exists, [`wait_on_barrier`](Barrier::wait_on_barrier) waits; deleting it releases every
/// waiter.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use std::time::Duration;
/// use zkwarden_recipes::barrier::Barrier;
///
/// let barrier = Barrier::new(&warden, "/app/start-gate");
/// barrier.set_barrier().await?;
/// // ... elsewhere, workers wait:
/// let opened = barrier.wait_on_barrier(Some(Duration::from_secs(60))).await?;
/// // ... and a coordinator opens it:
/// barrier.remove_barrier().await?;
/// # let _ = opened; Ok(()) }
/// ```
///
/// # Under Suspended/Lost
///
/// The node is persistent, so neither state opens the barrier. A waiter that is `Suspended`
/// keeps waiting (its watch survives a reconnection to the same session); after a `Lost`
/// session it reads the node again on the new session and waits on. It passes only after it
/// has read that the node does not exist.
#[derive(Debug, Clone)]
pub struct Barrier {
    warden: Warden,
    path: String,
}

impl Barrier {
    /// A barrier at `path`.
    pub fn new(warden: &Warden, path: &str) -> Barrier {
        Barrier {
            warden: warden.clone(),
            path: path.to_owned(),
        }
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Closes the barrier: creates the node (missing parents as containers). Already closed
    /// is fine.
    ///
    /// # Errors
    /// `NoAuth`; `InvalidPath`; connection errors once retries are spent; `Closed`.
    pub async fn set_barrier(&self) -> Result<()> {
        match self
            .warden
            .create(&self.path, b"")
            .parents(ParentMode::Container)
            .await
        {
            Ok(_) | Err(Error::NodeExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Opens the barrier: deletes the node. Already open is fine.
    ///
    /// # Errors
    /// `NotEmpty` if someone put children below it; `NoAuth`; connection errors once
    /// retries are spent; `Closed`.
    pub async fn remove_barrier(&self) -> Result<()> {
        self.warden.delete(&self.path, None).idempotent().await
    }

    /// Waits while the node exists: `true` once it does not, `false` if `timeout` (when
    /// given) passed first.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn wait_on_barrier(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let warden = bounded(&self.warden, deadline);
        loop {
            let (stat, watcher) = match warden.exists_and_watch(&self.path).await {
                Ok(found) => found,
                Err(Error::Timeout) => return Ok(false),
                Err(e) => return Err(e),
            };
            if stat.is_none() {
                return Ok(true);
            }
            if !woken(watcher, deadline).await {
                return Ok(false);
            }
        }
    }
}

/// The name of the node the last member to enter creates, as in Curator.
pub const READY_NODE: &str = "ready";

/// A double barrier, as Apache Curator's `DistributedDoubleBarrier`: `member_count` members
/// [`enter`](DoubleBarrier::enter) and none passes until all have entered; then each
/// [`leave`](DoubleBarrier::leave)s and none gets out until all have left.
///
/// ```no_run
/// # async fn demo(warden: zkwarden::Warden) -> zkwarden::Result<()> {
/// use zkwarden_recipes::barrier::DoubleBarrier;
///
/// let barrier = DoubleBarrier::new(&warden, "/app/round-7", 3);
/// barrier.enter().await?; // returns once all 3 members are in
/// // ... compute together ...
/// barrier.leave().await?; // returns once all 3 have left
/// # Ok(()) }
/// ```
///
/// # Nodes, as Curator lays them out
///
/// Each member is an ephemeral child of the barrier node named by a random UUID (its
/// [`member_id`](DoubleBarrier::member_id)); missing parents are created as containers.
///
/// * Entering: a member notes whether `<barrier>/ready` exists (and watches it), creates its
///   own node, and passes at once if `ready` was there. Otherwise it counts the children
///   (`ready` not counted); if there are at least `member_count`, it creates `ready`
///   (existing is fine) and passes; if not, it waits for `ready` to appear.
/// * Leaving: the members' children are sorted by name. The lowest member keeps its node
///   and waits for the highest one to go; every other member deletes its node and waits for
///   the lowest to go. When the lowest finds itself alone it deletes its node. Once no member
///   node is left, each leaver deletes `ready` (missing is fine).
///
/// These are the nodes and the order Curator's recipe uses, so Rust and Curator members can
/// share one barrier. One difference, which does not change what a Curator member sees: a
/// Curator member other than the lowest returns from `leave` once only the lowest node
/// remains, while this one waits until that node is gone too.
///
/// # Under Suspended/Lost
///
/// While `Suspended` nothing changes: a waiting member keeps waiting (its watch survives a
/// reconnection to the same session) and passes only after it has read the nodes again.
/// A `Lost` session deletes the member's ephemeral node on the server, so the member is no
/// longer counted:
///
/// * in [`enter`](DoubleBarrier::enter) before the barrier filled, the call notices its node
///   is gone when it wakes (the watch ends with the session) and fails with
///   `SessionExpired`; call `enter` again to rejoin (with a new node on the new session);
/// * in [`leave`](DoubleBarrier::leave), a lost node is what leaving means anyway: the call
///   goes on waiting for the other members to go.
#[derive(Debug, Clone)]
pub struct DoubleBarrier {
    warden: Warden,
    path: String,
    member_count: usize,
    id: String,
    member_path: String,
    ready_path: String,
}

impl DoubleBarrier {
    /// A double barrier at `path` for `member_count` members. Each `DoubleBarrier` value is
    /// one member, with a fresh UUID.
    pub fn new(warden: &Warden, path: &str, member_count: usize) -> DoubleBarrier {
        let id = random_uuid();
        DoubleBarrier {
            warden: warden.clone(),
            path: path.to_owned(),
            member_count,
            member_path: join(path, &id),
            ready_path: join(path, READY_NODE),
            id,
        }
    }

    /// The barrier node's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This member's node name (a UUID).
    pub fn member_id(&self) -> &str {
        &self.id
    }

    /// This member's node path.
    pub fn member_path(&self) -> &str {
        &self.member_path
    }

    /// Enters and waits until all `member_count` members have entered.
    ///
    /// # Errors
    /// `SessionExpired` when the session was lost while waiting (this member's node went
    /// with it: enter again); `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn enter(&self) -> Result<()> {
        self.enter_until(None).await.map(|_| ())
    }

    /// As [`enter`](DoubleBarrier::enter), giving up after `timeout`: `false` then. The
    /// member's node stays (as in Curator): enter again to go on waiting, or leave.
    ///
    /// # Errors
    /// As [`enter`](DoubleBarrier::enter).
    pub async fn enter_timeout(&self, timeout: Duration) -> Result<bool> {
        self.enter_until(Some(Instant::now() + timeout)).await
    }

    /// Leaves (deletes this member's node, in Curator's order) and waits until every
    /// member's node is gone.
    ///
    /// # Errors
    /// `NoAuth`; connection errors once retries are spent; `Closed`.
    pub async fn leave(&self) -> Result<()> {
        self.leave_until(None).await.map(|_| ())
    }

    /// As [`leave`](DoubleBarrier::leave), giving up after `timeout`: `false` then (this
    /// member's node may be deleted already).
    ///
    /// # Errors
    /// As [`leave`](DoubleBarrier::leave).
    pub async fn leave_timeout(&self, timeout: Duration) -> Result<bool> {
        self.leave_until(Some(Instant::now() + timeout)).await
    }

    /// The members' node names, sorted (`ready` left out); none while the barrier node is
    /// missing.
    async fn members(&self, warden: &Warden) -> Result<Vec<String>> {
        match warden.get_children(&self.path).await {
            Ok(mut children) => {
                children.retain(|c| c != READY_NODE);
                children.sort_unstable();
                Ok(children)
            }
            Err(Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    async fn enter_until(&self, deadline: Option<Instant>) -> Result<bool> {
        let warden = bounded(&self.warden, deadline);
        let timed_out = |e: Error| match e {
            Error::Timeout => Ok(false),
            e => Err(e),
        };
        let ready_before = match warden.exists(&self.ready_path).await {
            Ok(stat) => stat.is_some(),
            Err(e) => return timed_out(e),
        };
        match warden
            .create(&self.member_path, b"")
            .mode(CreateMode::Ephemeral)
            .parents(ParentMode::Container)
            .await
        {
            // `NodeExists`: ours (a UUID), from an earlier call or a lost reply.
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return timed_out(e),
        }
        if ready_before {
            return Ok(true);
        }
        let mut first = true;
        loop {
            if !first {
                match warden.exists(&self.member_path).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        // Gone with a lost session, unless the barrier filled meanwhile.
                        return match warden.exists(&self.ready_path).await {
                            Ok(Some(_)) => Ok(true),
                            Ok(None) => Err(Error::SessionExpired),
                            Err(e) => timed_out(e),
                        };
                    }
                    Err(e) => return timed_out(e),
                }
            }
            first = false;
            let members = match self.members(&warden).await {
                Ok(members) => members,
                Err(e) => return timed_out(e),
            };
            if members.len() >= self.member_count {
                return match warden.create(&self.ready_path, b"").await {
                    Ok(_) | Err(Error::NodeExists) => Ok(true),
                    Err(e) => timed_out(e),
                };
            }
            let (stat, watcher) = match warden.exists_and_watch(&self.ready_path).await {
                Ok(found) => found,
                Err(e) => return timed_out(e),
            };
            if stat.is_some() {
                return Ok(true);
            }
            if !woken(watcher, deadline).await {
                return Ok(false);
            }
        }
    }

    async fn leave_until(&self, deadline: Option<Instant>) -> Result<bool> {
        let warden = bounded(&self.warden, deadline);
        let timed_out = |e: Error| match e {
            Error::Timeout => Ok(false),
            e => Err(e),
        };
        loop {
            let members = match self.members(&warden).await {
                Ok(members) => members,
                Err(e) => return timed_out(e),
            };
            if members.is_empty() {
                break;
            }
            let ours = members.iter().position(|m| *m == self.id);
            let target = match ours {
                // Alone: the last to go.
                Some(_) if members.len() == 1 => {
                    if let Err(e) = self.delete_own(&warden).await {
                        return timed_out(e);
                    }
                    continue;
                }
                // The lowest waits for the highest.
                Some(0) => &members[members.len() - 1],
                // Everyone else goes now and waits for the lowest.
                Some(_) => {
                    if let Err(e) = self.delete_own(&warden).await {
                        return timed_out(e);
                    }
                    &members[0]
                }
                // Already gone (deleted before, or with a lost session).
                None => &members[0],
            };
            let (stat, watcher) = match warden.exists_and_watch(&join(&self.path, target)).await {
                Ok(found) => found,
                Err(e) => return timed_out(e),
            };
            if stat.is_some() && !woken(watcher, deadline).await {
                return Ok(false);
            }
        }
        match warden.delete(&self.ready_path, None).idempotent().await {
            Ok(()) => Ok(true),
            Err(e) => timed_out(e),
        }
    }

    async fn delete_own(&self, warden: &Warden) -> Result<()> {
        warden.delete(&self.member_path, None).idempotent().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_fresh_and_well_formed() {
        let a = random_uuid();
        let b = random_uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn paths_join() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/a/", "b"), "/a/b");
    }
}
