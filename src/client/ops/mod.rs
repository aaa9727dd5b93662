//! The operations of [`Client`](super::Client), one file per family.

mod create;
mod multi;
mod read;
mod reconfig;
mod session;
mod watches;
mod write;

pub use create::CreateOptions;
pub use multi::{MultiReadOp, Op};
pub use reconfig::Reconfig;
