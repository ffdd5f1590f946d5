//! The pure core: configuration and its duration grammar, the state machine, the call counters,
//! the clock, fault descriptions, the breaker's error, and the rules for text shown to people
//! (notices, escapes).
//!
//! Nothing here starts a thread, reads the environment, holds a global or knows of stores and
//! notifiers; every layer above builds on it.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod counters;
pub(crate) mod error;
pub(crate) mod fault;
pub mod machine;
pub(crate) mod text;
