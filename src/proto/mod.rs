//! The wire format: jute records, op codes, error codes and length-prefixed frames.
//!
//! This module does no I/O. Everything here can be fed arbitrary bytes: malformed input
//! becomes a [`DecodeError`] or [`FrameError`], never a panic.

pub mod data;
pub mod error_code;
pub mod event;
pub mod frame;
pub mod jute;
pub mod multi;
pub mod opcode;
pub mod records;
pub mod request;

#[cfg(test)]
mod tests;

pub use data::{Acl, AddWatchMode, CreateMode, Id, Perms, Stat, WatcherType};
pub use error_code::ErrorCode;
pub use event::{EventType, KeeperState};
pub use frame::{DEFAULT_MAX_FRAME_LEN, FrameCodec, FrameError};
pub use jute::{DecodeError, Jute, Reader};
pub use multi::OpResult;
pub use opcode::OpCode;
pub use records::*;
