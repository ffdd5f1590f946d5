//! The operator side of Redis-backed breakers (`store = "redis"`): read every breaker's fleet
//! state, force it, swap it to its fallback, switch it to shadow mode, inject faults, post
//! notices, follow changes live and read the audit trail.
//!
//! [`Admin`] is the library the `breakerctl` binary is a thin layer over; a web console can use
//! it the same way (with [`Admin::with_who`] naming who acts). It speaks the runtime's own
//! protocol (`breaker_runtime::redis`: its keys, messages, audit entries and Lua scripts `FORCE`,
//! `WRITE_CONTROL`...), so every instance applies an operator's change exactly as it applies its
//! own, and every change is recorded in `<prefix>:audit`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), breakerctl::AdminError> {
//! use breakerctl::{Admin, Target};
//! let admin = Admin::connect(Target::from_env()?, "breaker").await?;
//! for b in admin.list().await? {
//!     println!("{} {}", b.name, b.state);
//! }
//! admin.force("daum", Some(breakerctl::Forced::Open), false).await?;
//! # Ok(()) }
//! ```

mod admin;
mod error;
mod model;
mod text;

pub use admin::{Admin, Target, WatchStream, default_who};
pub use error::AdminError;
pub use model::{AuditEntry, BreakerStatus, Controls, ControlsChange, FleetEvent, WatchItem};
pub use text::{format_ms, format_unix_ms};

/// How many audit entries `<prefix>:audit` keeps (every writer trims it to this).
pub use breaker_runtime::redis::AUDIT_KEEP;
/// Hides the password of every Redis URL in a text (a cluster's list, a message quoting one).
pub use breaker_runtime::redis::redact;
pub use breaker_runtime::{Fault, Forced};

/// Milliseconds within which an instance's heartbeat counts as "seen" (an idle instance
/// heartbeats each of its `n` breakers every max(30, 4 × `n`) seconds).
pub const SEEN_WITHIN_MS: u64 = 180_000;
