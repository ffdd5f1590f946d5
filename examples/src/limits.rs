//! The service's timeouts and limits ([`Limits`]), each a setting with a default and a flag of
//! `address-search`. They exist so that no client, slow or greedy, can hold the service's
//! connections, tasks or memory for long, nor take all of its capacity from the others.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

/// Timeouts and limits of the service; the defaults suit the search page and the console on a
/// small machine. Every field has an `address-search` flag (named in its doc).
///
/// The per-client limits key clients by their peer IP address (an IPv6 client by its /64, the
/// block one host usually owns): behind a reverse proxy every client has the proxy's address, so
/// lift them there (`--search-rate-limit 0` …, `--max-connections-per-client` as high as
/// `--max-connections`) and limit at the proxy instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// How long a client may take to send a request's headers, from the moment the connection
    /// is ready for one (also how long an idle keep-alive connection stays open); past it the
    /// connection is closed. Without it, clients sending a byte now and then ("slowloris") hold
    /// connections forever. `--header-read-timeout`, default 5 s.
    pub header_read_timeout: Duration,
    /// How long a request may take from its headers to its answer; past it the answer is 503
    /// (the time went to the service and its providers, not to the client: a client that is
    /// slow to send is cut off by the other two timeouts). `--request-timeout`, default 10 s.
    pub request_timeout: Duration,
    /// How long reading a request's whole body may take; past it the answer is 408 and the
    /// connection is closed. Within [`Limits::request_timeout`], which bounds the whole request:
    /// a body-read timeout at least as long never answers (the request timeout's 503 comes
    /// first). `--body-read-timeout`, default 5 s.
    pub body_read_timeout: Duration,
    /// The largest request body accepted, in bytes; a larger one gets 413 before any handler
    /// runs (the admin API's bodies are a few hundred bytes). `--max-body-bytes`, default 16 KiB.
    pub max_body_bytes: usize,
    /// Most connections open at once. When all are taken the service stops accepting: new
    /// connections wait in the kernel's listen queue until one closes (this cap closes none that
    /// was accepted; [`Limits::max_connections_per_client`] does). `--max-connections`, default
    /// 1024.
    pub max_connections: usize,
    /// Most connections open at once from one client ([`client_key`]); a connection over it is
    /// closed at once, so that one client cannot take every place of `max_connections` (idle
    /// keep-alive connections that send a request now and then would hold them for good).
    /// Browsers open at most 6 per site; the default leaves room for an office behind one
    /// address. `--max-connections-per-client`, default 128.
    pub max_connections_per_client: usize,
    /// Most requests being handled at once; a request over it is answered 503 with
    /// `Retry-After: 1` at once (load shedding) rather than queued without bound.
    /// `--max-concurrent-requests`, default 256.
    pub max_concurrent_requests: usize,
    /// Per-client rate of `GET /api/search`; over it, 429 with `Retry-After`. `None`: no limit.
    /// `--search-rate-limit` (`0` turns it off) and `--search-burst`; default 20/s, burst 40.
    pub search_rate: Option<RateLimit>,
    /// Per-client rate of every `/api/admin` request, whatever its token: the bound on how fast
    /// anyone can guess tokens. `--admin-rate-limit` (`0`: off) and `--admin-burst`; default
    /// 20/s, burst 40 (a console polls twice every 500 ms: a few tabs and an operator's clicks
    /// fit).
    pub admin_rate: Option<RateLimit>,
    /// Per-client budget of failed admin authentications (missing or wrong token): past it,
    /// failed attempts get 429 with `Retry-After` instead of 401. `--failed-login-limit` (`0`:
    /// off); default 5 per minute.
    pub failed_logins: Option<RateLimit>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(5),
            max_body_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_client: 128,
            max_concurrent_requests: 256,
            search_rate: Some(RateLimit::per_second(20).with_burst(40)),
            admin_rate: Some(RateLimit::per_second(20).with_burst(40)),
            failed_logins: Some(RateLimit::per_minute(5)),
        }
    }
}

/// The longest timeout accepted: longer ones are mistakes (and would overflow some clocks).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl Limits {
    /// Checks that every limit can work: timeouts above zero and at most [`MAX_TIMEOUT`], counts
    /// above zero (a zero would refuse everything; "no limit" is `None` for the rates).
    ///
    /// # Errors
    /// A message naming the setting, its flag and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (value, name) in [
            (self.header_read_timeout, "--header-read-timeout"),
            (self.request_timeout, "--request-timeout"),
            (self.body_read_timeout, "--body-read-timeout"),
        ] {
            if value.is_zero() || value > MAX_TIMEOUT {
                return Err(format!(
                    "{name} must be above 0 and at most {}, got {}",
                    humantime::format_duration(MAX_TIMEOUT),
                    humantime::format_duration(value)
                ));
            }
        }
        // A semaphore holds at most usize::MAX >> 3 permits.
        let most_permits = usize::MAX >> 3;
        for (value, name) in [
            (self.max_body_bytes, "--max-body-bytes"),
            (self.max_connections, "--max-connections"),
            (
                self.max_connections_per_client,
                "--max-connections-per-client",
            ),
            (self.max_concurrent_requests, "--max-concurrent-requests"),
        ] {
            if value == 0 || value > most_permits {
                return Err(format!(
                    "{name} must be at least 1 and at most {most_permits}, got {value}"
                ));
            }
        }
        for (rate, name) in [
            (self.search_rate, "--search-rate-limit"),
            (self.admin_rate, "--admin-rate-limit"),
            (self.failed_logins, "--failed-login-limit"),
        ] {
            if let Some(rate) = rate {
                rate.validate().map_err(|e| format!("{name}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A per-client rate: `count` requests every `per`, and up to `burst` at once after a quiet spell
/// (a token bucket of `burst` tokens refilled one every `per / count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed every `per`.
    pub count: u32,
    /// The period `count` is counted over.
    pub per: Duration,
    /// Requests allowed at once.
    pub burst: u32,
}

impl RateLimit {
    /// `count` a second, burst `count`.
    #[must_use]
    pub const fn per_second(count: u32) -> RateLimit {
        RateLimit {
            count,
            per: Duration::from_secs(1),
            burst: count,
        }
    }

    /// `count` a minute, burst `count`.
    #[must_use]
    pub const fn per_minute(count: u32) -> RateLimit {
        RateLimit {
            count,
            per: Duration::from_secs(60),
            burst: count,
        }
    }

    /// The same rate with another burst.
    #[must_use]
    pub const fn with_burst(self, burst: u32) -> RateLimit {
        RateLimit { burst, ..self }
    }

    /// How often one request's allowance comes back: `per / count`.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }

    /// Checks the rate is usable.
    ///
    /// # Errors
    /// When a count is zero or the period is zero or over [`MAX_TIMEOUT`] × 24.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 || self.burst == 0 {
            return Err(format!(
                "count and burst must be at least 1, got {self} (use no limit to turn it off)"
            ));
        }
        if self.interval().is_zero() || self.per > MAX_TIMEOUT * 24 {
            return Err(format!(
                "the period must be above 0 and at most {}, got {self}",
                humantime::format_duration(MAX_TIMEOUT * 24)
            ));
        }
        Ok(())
    }

    /// A flag's value: `off` or `0` is no limit (`None`), otherwise a [`RateLimit`] as
    /// [`FromStr`] reads it.
    ///
    /// # Errors
    /// As [`FromStr`].
    pub fn parse_setting(s: &str) -> Result<Option<RateLimit>, String> {
        match s.trim() {
            "0" | "off" | "none" => Ok(None),
            s => s.parse().map(Some),
        }
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per.as_secs() {
            1 if self.per.subsec_nanos() == 0 => write!(f, "{}/s", self.count)?,
            60 if self.per.subsec_nanos() == 0 => write!(f, "{}/min", self.count)?,
            3600 if self.per.subsec_nanos() == 0 => write!(f, "{}/h", self.count)?,
            _ => write!(f, "{}/{}", self.count, humantime::format_duration(self.per))?,
        }
        if self.burst != self.count {
            write!(f, " (burst {})", self.burst)?;
        }
        Ok(())
    }
}

impl FromStr for RateLimit {
    type Err = String;

    /// `COUNT/PERIOD`: `20/s`, `5/min`, `100/h`, or any humantime period (`3/10s`, `5/1m`); the
    /// burst is `COUNT`.
    fn from_str(s: &str) -> Result<RateLimit, String> {
        let usage = || format!("expected COUNT/PERIOD such as 20/s, 5/min or 3/10s, got {s:?}");
        let (count, per) = s.trim().split_once('/').ok_or_else(usage)?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        let per = match per.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).map_err(|e| format!("{}: {e}", usage()))?,
        };
        let rate = RateLimit {
            count,
            per,
            burst: count,
        };
        rate.validate()?;
        Ok(rate)
    }
}

/// The per-client key: the peer's IPv4 address, or its IPv6 /64 (one host usually owns a whole
/// /64, so keying by address would give it 2^64 budgets).
#[must_use]
pub fn client_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = u128::MAX << 64;
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let l = Limits::default();
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(l.header_read_timeout, Duration::from_secs(5));
        assert_eq!(l.max_body_bytes, 16384);
        assert_eq!(l.search_rate.unwrap().to_string(), "20/s (burst 40)");
        assert_eq!(l.failed_logins.unwrap().to_string(), "5/min");
        assert_eq!(l.failed_logins.unwrap().interval(), Duration::from_secs(12));
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!("20/s".parse(), Ok(RateLimit::per_second(20)));
        assert_eq!("5/min".parse(), Ok(RateLimit::per_minute(5)));
        assert_eq!(" 5 / 1m ".parse(), Ok(RateLimit::per_minute(5)));
        let r: RateLimit = "3/10s".parse().unwrap();
        assert_eq!(
            r.interval(),
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
        assert_eq!(r.to_string(), "3/10s");
        assert_eq!("100/h".parse::<RateLimit>().unwrap().to_string(), "100/h");
        for bad in [
            "",
            "20",
            "x/s",
            "0/s",
            "-1/s",
            "5/0s",
            "5/fortnight",
            "5/1000years",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        assert_eq!(RateLimit::parse_setting("0"), Ok(None));
        assert_eq!(RateLimit::parse_setting("off"), Ok(None));
        assert_eq!(
            RateLimit::parse_setting("2/s"),
            Ok(Some(RateLimit::per_second(2)))
        );
    }

    #[test]
    fn unusable_limits_are_named() {
        let zero = Limits {
            request_timeout: Duration::ZERO,
            ..Limits::default()
        };
        assert!(zero.validate().unwrap_err().contains("--request-timeout"));
        let huge = Limits {
            header_read_timeout: Duration::from_secs(u64::MAX),
            ..Limits::default()
        };
        assert!(
            huge.validate()
                .unwrap_err()
                .contains("--header-read-timeout")
        );
        let none = Limits {
            max_connections: 0,
            ..Limits::default()
        };
        assert!(none.validate().unwrap_err().contains("--max-connections"));
        let burstless = Limits {
            search_rate: Some(RateLimit::per_second(5).with_burst(0)),
            ..Limits::default()
        };
        assert!(
            burstless
                .validate()
                .unwrap_err()
                .contains("--search-rate-limit")
        );
    }
}
