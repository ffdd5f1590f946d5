//! The admin API's bearer token: compared in constant time, failed attempts logged (peer and
//! reason, never the token) and throttled per client.
//!
//! A client over its failed-attempt budget gets 429 for each further failed attempt, but a
//! right token still gets in: an operator who mistyped, or who shares an address with whoever
//! is guessing (everyone behind one proxy or NAT), is not locked out of the emergency console.
//! That makes 429 as telling as 401 to a guesser, so the budget does not bound guessing; what
//! bounds it is the per-client admin rate limit ([`crate::Limits::admin_rate`], 20 requests a
//! second by default) against a token of at least 16 characters: trying all tokens of 16
//! lowercase letters alone takes 10^13 years at that rate, and a generated token is 128 random
//! bits. The budget
//! tells well-meaning clients to stop and bounds the 401s a client gets before being told so.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::App;
use super::error::{ApiError, too_many};
use crate::limits::RateLimit;
use crate::token::{self, bearer};

/// Whether `given` equals `expected`, in time that depends only on their lengths (unequal
/// lengths are simply unequal: the length of the token is no secret worth hiding, at least 16
/// characters).
#[must_use]
pub fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    token::matches(given, expected)
}

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token, not the right one.
    Wrong,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Missing => "missing token",
            Failure::Wrong => "wrong token",
        }
    }
}

/// Each client's budget of failed authentications (keyed by [`super::client_key`]).
pub(crate) struct FailedLogins {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl fmt::Debug for FailedLogins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedLogins")
            .field("clients", &self.limiter.len())
            .finish()
    }
}

impl FailedLogins {
    /// A budget of `rate`; `None` for a rate that cannot work (zero).
    pub(crate) fn new(rate: RateLimit) -> Option<FailedLogins> {
        let quota = Quota::with_period(rate.interval())?.allow_burst(NonZeroU32::new(rate.burst)?);
        Some(FailedLogins {
            limiter: RateLimiter::keyed(quota),
        })
    }

    /// Counts a failed attempt of `client`: `Some(wait)` when it is over its budget (until one
    /// more attempt comes back).
    fn record(&self, client: IpAddr) -> Option<Duration> {
        self.limiter
            .check_key(&client)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets the clients whose budget is full again.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Middleware: the request goes on only with the right token; otherwise 401, or 429 when the
/// client is over its failed-attempt budget. Each failure within the budget is logged at `warn`
/// with the peer and the reason (those past it at `debug`).
pub(super) async fn require_token(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Response {
    let failure = match bearer(request.headers()) {
        Some(given) if token_matches(given, app.token.as_bytes()) => {
            return next.run(request).await;
        }
        Some(_) => Failure::Wrong,
        None => Failure::Missing,
    };
    let peer = super::peer(&request);
    let wait = match (&app.failed_logins, peer) {
        (Some(budget), Some(peer)) => budget.record(super::client_key(peer.ip())),
        _ => None,
    };
    if wait.is_none() {
        tracing::warn!(
            peer = %Peer(peer),
            reason = failure.as_str(),
            method = %request.method(),
            path = %request.uri().path(),
            "admin authentication failed"
        );
    } else {
        // Past the budget only at debug: the warnings of one client are bounded by its budget
        // (a console tab left with a wrong token polls four times a second).
        tracing::debug!(
            peer = %Peer(peer),
            reason = failure.as_str(),
            path = %request.uri().path(),
            "admin authentication failed again, over the client's budget"
        );
    }
    if let Some(wait) = wait {
        return too_many(
            "too many failed admin authentications from your address; wait before trying again",
            wait,
        );
    }
    match failure {
        Failure::Wrong => ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token"),
        Failure::Missing => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing admin token: send `Authorization: Bearer <token>`",
        ),
    }
    .into_response()
}

/// A peer address in logs, `unknown` when the server did not say.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn failed_logins_are_counted_per_client() {
        let budget = FailedLogins::new(RateLimit::per_minute(2)).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(budget.record(a), None);
        assert_eq!(budget.record(a), None);
        let wait = budget.record(a).expect("over the budget");
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        assert_eq!(budget.record(b), None);
        assert!(FailedLogins::new(RateLimit::per_minute(0)).is_none());
    }
}
