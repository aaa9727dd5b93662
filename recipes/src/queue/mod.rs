//! Distributed queues on Apache Curator's layout, so Rust and Curator producers and
//! consumers can share one queue: [`DistributedQueue`], [`DistributedPriorityQueue`],
//! [`DistributedDelayQueue`], [`DistributedIdQueue`] (all [`Queue`]s, with Curator's
//! lock-safe mode and bounded `put`) and [`SimpleDistributedQueue`] (the ZooKeeper recipe's
//! queue of byte strings).
//!
//! Producers `put` (or feed a [`PutSink`]); consumers are [`Consumer`]s (or a
//! [`ConsumerStream`]) handing out [`Delivery`]s. Items become bytes through a
//! [`QueueSerializer`]; [`BytesSerializer`], [`Utf8Serializer`] and [`JsonSerializer`] are
//! provided. Each node
//! holds its items in Curator's item format, so a Curator queue with a serializer of the
//! same encoding reads what Rust writes and the reverse.

mod consumer;
mod core;
mod delay;
mod distributed;
mod handle;
mod held;
mod id;
mod items;
mod naming;
mod priority;
mod serializer;
mod simple;
mod sink;

pub use consumer::{Consumer, ConsumerStream, Delivery};
pub use delay::{Delay, DistributedDelayQueue};
pub use distributed::{DistributedQueue, Fifo};
pub use handle::Queue;
pub use id::{DistributedIdQueue, Id};
pub use naming::ITEM_PREFIX;
pub use priority::{DistributedPriorityQueue, Priority};
pub use serializer::{BytesSerializer, JsonSerializer, QueueSerializer, Utf8Serializer};
pub use simple::{SIMPLE_PREFIX, SimpleDistributedQueue};
pub use sink::PutSink;
