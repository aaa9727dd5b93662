//! What a warden has learned about its servers' watches: whether they take persistent
//! recursive watches (`addWatch`, ZooKeeper 3.6+) or answer it with `Unimplemented`.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::warden::handle::Warden;

/// Shared by every clone of a warden.
#[derive(Debug, Default)]
pub(crate) struct WatchSupport {
    /// A server answered `addWatch` with `Unimplemented`: later tree watches of this warden
    /// go straight to one-shot watches.
    no_recursive: AtomicBool,
    /// Test hook: treat every `addWatch` attempt as if it had been answered with
    /// `Unimplemented`.
    pretend_no_recursive: AtomicBool,
}

impl WatchSupport {
    /// Whether tree watches should skip `addWatch`.
    pub(crate) fn recursive_unsupported(&self) -> bool {
        self.no_recursive.load(Ordering::Relaxed)
    }

    /// Remembers that the servers do not take recursive watches.
    pub(crate) fn mark_recursive_unsupported(&self) {
        self.no_recursive.store(true, Ordering::Relaxed);
    }

    /// Whether `addWatch` attempts should fail as on a server before 3.6.
    pub(crate) fn pretending(&self) -> bool {
        self.pretend_no_recursive.load(Ordering::Relaxed)
    }
}

impl Warden {
    /// **Test hook, not for production use.** From now on this warden's tree watches
    /// ([`Warden::watch_tree`]) behave as if the server had answered `addWatch` with
    /// `Unimplemented`, as ZooKeeper servers before 3.6 do, so they follow the subtree with
    /// one-shot watches. It lets tests run the fallback against a newer server through the
    /// same code path as a real detection. Tree watches already running keep their mode.
    #[doc(hidden)]
    pub fn assume_server_without_persistent_watches(&self) {
        self.inner
            .watch_support
            .pretend_no_recursive
            .store(true, Ordering::Relaxed);
    }

    /// Whether this warden's tree watches use one-shot watches because a server did not take
    /// a persistent recursive watch (or the test hook said so and a tree watch has since
    /// tried one).
    #[doc(hidden)]
    pub fn uses_oneshot_tree_watches(&self) -> bool {
        self.inner.watch_support.recursive_unsupported()
    }
}
