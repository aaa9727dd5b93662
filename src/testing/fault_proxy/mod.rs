//! A loopback TCP proxy that puts network faults between clients and a server.
//!
//! * `proxy.rs`: the public [`FaultProxy`] handle, its fault switches and its accept loop.
//! * `state.rs`: the fault settings every connection follows, and the counters behind
//!   [`ProxyStats`].
//! * `conn.rs`: one proxied connection: the upstream socket, both directions, resets.
//! * `pump.rs`: one direction of a connection: read eagerly, then forward, delay, hold or
//!   discard each chunk as the settings say.

mod conn;
mod proxy;
mod pump;
mod state;

pub use proxy::{FaultProxy, connect_string_of};
pub use state::ProxyStats;
