//! Coordination recipes built on [`zkwarden`]: locks, leader election, caches, typed
//! configuration, counters and barriers, sharing znodes with Apache Curator.
//!
//! The recipes arrive in later releases; this crate currently holds only its documentation so
//! that the workspace layout is stable for users who depend on it early.
