//! What can go wrong, with messages fit for an operator.

use std::fmt;

/// An operation that could not be done. The messages never contain a Redis password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// No Redis was given (no `--redis`, `BREAKER_REDIS_URL` or `BREAKER_REDIS_CLUSTER`).
    NoTarget,
    /// A URL or a prefix that cannot be used.
    BadTarget(String),
    /// Redis did not answer (refused, unreachable, timed out, connection lost).
    Unreachable {
        /// The Redis, without its password.
        target: String,
        /// What happened.
        detail: String,
    },
    /// Redis answered with an error.
    Redis(String),
    /// No instance has ever reported a breaker of this name (it is not a field of
    /// `<prefix>:breakers`).
    UnknownBreaker {
        /// The name asked for.
        name: String,
        /// The nearest name that is known, if any is.
        suggestion: Option<String>,
        /// Whether the operation could go on with `force_unknown` (`--force`).
        forceable: bool,
    },
    /// `swap` on a breaker declared without a fallback.
    NoFallback(String),
    /// An argument that cannot be used (an empty notice, ...).
    Invalid(String),
    /// Data under the breaker's keys that is not what the contract says.
    Malformed(String),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::NoTarget => f.write_str(
                "no Redis given: pass --redis URL, or set BREAKER_REDIS_URL \
                 (or BREAKER_REDIS_CLUSTER for a cluster)",
            ),
            AdminError::BadTarget(m) | AdminError::Invalid(m) => f.write_str(m),
            AdminError::Unreachable { target, detail } => {
                write!(f, "cannot reach Redis at {target}: {detail}")
            }
            AdminError::Redis(m) => write!(f, "Redis: {m}"),
            AdminError::UnknownBreaker {
                name,
                suggestion,
                forceable,
            } => {
                write!(f, "unknown breaker `{name}`: no instance has reported it")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?")?,
                    None => {
                        f.write_str(" (no instance has reported any breaker under this prefix)")?
                    }
                }
                if *forceable {
                    f.write_str(" (pass --force to change it anyway)")?;
                }
                Ok(())
            }
            AdminError::NoFallback(name) => write!(
                f,
                "breaker `{name}` has no fallback: there is nothing to swap to"
            ),
            AdminError::Malformed(m) => write!(f, "unexpected data in Redis: {m}"),
        }
    }
}

impl std::error::Error for AdminError {}
