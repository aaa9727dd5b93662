//! [`DistributedAtomicNumber`]: an `i32` ([`DistributedAtomicInteger`]) or `i64`
//! ([`DistributedAtomicLong`], also [`AtomicLong`]) in one znode, big-endian as Curator writes
//! it.

use zkwarden::{Error, Result, Warden};

use super::engine::{AtomicValue, PromotedToLock};
use super::value::DistributedAtomicValue;

/// A number kept in a znode as Curator keeps it: big-endian, `size_of` bytes; a node without
/// data reads as zero.
pub trait AtomicNumber: Copy + Eq + std::fmt::Debug + Send + Sync + 'static {
    /// How Curator names it in messages (`int`, `long`).
    const JAVA_NAME: &'static str;
    /// Big-endian bytes.
    fn encode(self) -> Vec<u8>;
    /// From big-endian bytes; `None` for a wrong length.
    fn decode(data: &[u8]) -> Option<Self>;
    /// `self + delta`, wrapping on overflow as Java does.
    fn wrapping_add(self, delta: Self) -> Self;
    /// `-self`, wrapping as Java does.
    fn wrapping_neg(self) -> Self;
    /// Zero.
    fn zero() -> Self;
    /// One.
    fn one() -> Self;
}

macro_rules! atomic_number {
    ($t:ty, $java:literal) => {
        impl AtomicNumber for $t {
            const JAVA_NAME: &'static str = $java;
            fn encode(self) -> Vec<u8> {
                self.to_be_bytes().to_vec()
            }
            fn decode(data: &[u8]) -> Option<Self> {
                data.try_into().ok().map(<$t>::from_be_bytes)
            }
            fn wrapping_add(self, delta: Self) -> Self {
                <$t>::wrapping_add(self, delta)
            }
            fn wrapping_neg(self) -> Self {
                <$t>::wrapping_neg(self)
            }
            fn zero() -> Self {
                0
            }
            fn one() -> Self {
                1
            }
        }
    };
}
atomic_number!(i32, "int");
atomic_number!(i64, "long");

/// Curator reads a missing node or one without data as 0; any length but 0 or the number's
/// size is corrupt.
fn decode<N: AtomicNumber>(path: &str, data: Option<&[u8]>) -> Result<N> {
    match data {
        None | Some([]) => Ok(N::zero()),
        Some(bytes) => N::decode(bytes).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{path} holds {} bytes, not a big-endian {}",
                bytes.len(),
                N::JAVA_NAME
            ))
        }),
    }
}

/// A number in one znode, changed atomically, as Curator's `DistributedAtomicInteger` /
/// `DistributedAtomicLong` (see the [module docs](super) for the modes and the layout).
#[derive(Debug)]
pub struct DistributedAtomicNumber<N> {
    value: DistributedAtomicValue,
    number: std::marker::PhantomData<fn() -> N>,
}

/// An `i32` in one znode (Curator's `DistributedAtomicInteger`: four big-endian bytes).
pub type DistributedAtomicInteger = DistributedAtomicNumber<i32>;

/// An `i64` in one znode (Curator's `DistributedAtomicLong`: eight big-endian bytes).
pub type DistributedAtomicLong = DistributedAtomicNumber<i64>;

/// The name this crate first gave [`DistributedAtomicLong`].
pub type AtomicLong = DistributedAtomicLong;

/// The outcome of an [`AtomicLong`] change.
pub type AtomicResult = AtomicValue<i64>;

impl<N: AtomicNumber> DistributedAtomicNumber<N> {
    /// A number at `path` with the defaults of [`DistributedAtomicValue::new`]
    /// (exactly-once, optimistic until a change lands, no promotion).
    pub fn new(warden: &Warden, path: &str) -> Self {
        DistributedAtomicNumber {
            value: DistributedAtomicValue::new(warden, path),
            number: std::marker::PhantomData,
        }
    }

    /// See [`DistributedAtomicValue::optimistic_tries`].
    pub fn optimistic_tries(mut self, tries: u32) -> Self {
        self.value = self.value.optimistic_tries(tries);
        self
    }

    /// See [`DistributedAtomicValue::promoted`].
    pub fn promoted(mut self, promotion: PromotedToLock) -> Self {
        self.value = self.value.promoted(promotion);
        self
    }

    /// See [`DistributedAtomicValue::exactly_once`].
    pub fn exactly_once(mut self, exactly_once: bool) -> Self {
        self.value = self.value.exactly_once(exactly_once);
        self
    }

    /// See [`DistributedAtomicValue::ticket_parent`].
    pub fn ticket_parent(mut self, parent: impl Into<String>) -> Self {
        self.value = self.value.ticket_parent(parent);
        self
    }

    /// The node's path.
    pub fn path(&self) -> &str {
        self.value.path()
    }

    /// The current value; 0 while the node does not exist.
    ///
    /// # Errors
    /// `InvalidArgument` when the node holds neither 0 bytes nor the number's size; `NoAuth`;
    /// connection errors once retries are spent; `Closed`.
    pub async fn get(&self) -> Result<N> {
        decode(self.path(), self.value.get().await?.as_deref())
    }

    /// Writes `value` whatever the node holds (Curator's `forceSet`).
    ///
    /// # Errors
    /// As [`DistributedAtomicValue::force_set`].
    pub async fn force_set(&self, value: N) -> Result<()> {
        self.value.force_set(&value.encode()).await
    }

    /// Creates the node holding `value` unless it exists; whether it was created.
    ///
    /// # Errors
    /// As [`DistributedAtomicValue::initialize`].
    pub async fn initialize(&self, value: N) -> Result<bool> {
        self.value.initialize(&value.encode()).await
    }

    /// Adds one.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn increment(&self) -> Result<AtomicValue<N>> {
        self.add(N::one()).await
    }

    /// Subtracts one.
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn decrement(&self) -> Result<AtomicValue<N>> {
        self.add(N::one().wrapping_neg()).await
    }

    /// Subtracts `delta` (wrapping, as Java).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn subtract(&self, delta: N) -> Result<AtomicValue<N>> {
        self.add(delta.wrapping_neg()).await
    }

    /// Adds `delta` (wrapping on overflow, as Java). `succeeded` unless the optimistic tries
    /// and the promotion (if set) ran out.
    ///
    /// # Errors
    /// `InvalidArgument` for a node holding neither 0 bytes nor the number's size; `NoAuth`;
    /// connection errors once the change's retry budget is spent (the change may then have
    /// been applied); `Server(DataInconsistency)` when another client changed this handle's
    /// ticket so the outcome cannot be known; `Closed` when the warden was closed meanwhile
    /// (a send whose reply was lost may then have been applied).
    pub async fn add(&self, delta: N) -> Result<AtomicValue<N>> {
        let path = self.path();
        let change =
            |found: Option<&[u8]>| Ok(Some(decode::<N>(path, found)?.wrapping_add(delta).encode()));
        self.finish(self.value.engine.modify(&change, None, true).await?)
    }

    /// Sets the value to `new` (by the optimistic loop and the promotion, as Curator's
    /// `trySet`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn try_set(&self, new: N) -> Result<AtomicValue<N>> {
        let change = |_: Option<&[u8]>| Ok(Some(new.encode()));
        self.finish(self.value.engine.modify(&change, None, true).await?)
    }

    /// Sets the value to `new` if it is `expected` now. A write that loses a race to a
    /// writer that left the value at `expected` is tried again (within the optimistic
    /// tries); `succeeded` is `false` when the value was something else (then `pre == post
    /// ==` that value).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    pub async fn compare_and_set(&self, expected: N, new: N) -> Result<AtomicValue<N>> {
        let path = self.path();
        let change = |found: Option<&[u8]>| {
            Ok((decode::<N>(path, found)? == expected).then(|| new.encode()))
        };
        self.finish(self.value.engine.modify(&change, None, false).await?)
    }

    /// Deletes this handle's ticket nodes (the value stays); the handle stays usable.
    ///
    /// # Errors
    /// As [`DistributedAtomicValue::close`].
    pub async fn close(&self) -> Result<()> {
        self.value.close().await
    }

    fn finish(&self, outcome: AtomicValue<Option<Vec<u8>>>) -> Result<AtomicValue<N>> {
        outcome.try_map(|bytes| decode(self.path(), bytes.as_deref()))
    }
}
