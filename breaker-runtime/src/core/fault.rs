//! QA fault injection: make a breaker's calls fail, slow down, time out or be rejected without
//! changing code, from `BREAKER_FAULTS` (one process) or `breakerctl inject` (the whole fleet).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::core::config::parse_duration;

/// A fault injected into a breaker's calls. Injected failures are counted, trip the breaker,
/// serve fallbacks and raise alerts as real ones do; their events carry `injected: true`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// A fraction (0 < rate ≤ 1) of calls fail without calling the function
    /// ([`crate::BreakerError::Injected`]). `error` alone is `error:1`.
    Error {
        /// The fraction of calls that fail.
        rate: f64,
    },
    /// Every call waits this long before the function runs, inside the call's `timeout` (a
    /// delay longer than `timeout` times the call out).
    Delay(Duration),
    /// Calls fail as timeouts without calling the function: after the breaker's `timeout`, or at
    /// once when it has none.
    Timeout,
    /// The breaker is held open: every call is rejected (its fallback serves).
    Open,
}

/// A fault specification that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError {
    message: String,
}

impl FaultError {
    fn new(message: impl Into<String>) -> Self {
        FaultError {
            message: message.into(),
        }
    }
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FaultError {}

impl Fault {
    /// Checks a fault built in code (parsing checks the same): an error rate above 0 and at
    /// most 1, a delay that is not zero.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), FaultError> {
        match *self {
            Fault::Error { rate } if !(rate > 0.0 && rate <= 1.0) => Err(FaultError::new(format!(
                "`error:{rate}`: the error rate must be above 0 and at most 1"
            ))),
            Fault::Delay(d) if d.is_zero() => {
                Err(FaultError::new("`delay:0`: a delay must not be zero"))
            }
            _ => Ok(()),
        }
    }
}

const FORMS: &str =
    "expected `error`, `error:P` (0 < P <= 1), `delay:D` (e.g. `delay:2s`), `timeout` or `open`";

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (s, None),
        };
        match (kind, arg) {
            ("error", None) => Ok(Fault::Error { rate: 1.0 }),
            ("error", Some(p)) => {
                let rate: f64 = p.parse().map_err(|_| {
                    FaultError::new(format!("`{s}`: `{p}` is not a number; {FORMS}"))
                })?;
                if rate > 0.0 && rate <= 1.0 {
                    Ok(Fault::Error { rate })
                } else {
                    Err(FaultError::new(format!(
                        "`{s}`: the error rate must be above 0 and at most 1"
                    )))
                }
            }
            ("delay", Some(d)) => parse_duration(d)
                .map(Fault::Delay)
                .map_err(|e| FaultError::new(format!("`{s}`: {e}"))),
            ("delay", None) => Err(FaultError::new(format!(
                "`{s}`: a delay needs a duration, e.g. `delay:2s`"
            ))),
            ("timeout", None) => Ok(Fault::Timeout),
            ("open", None) => Ok(Fault::Open),
            ("timeout" | "open", Some(_)) => Err(FaultError::new(format!(
                "`{s}`: `{kind}` takes no argument; {FORMS}"
            ))),
            _ => Err(FaultError::new(format!("`{s}` is not a fault; {FORMS}"))),
        }
    }
}

impl fmt::Display for Fault {
    /// The canonical form, which [`Fault::from_str`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Error { rate } if *rate >= 1.0 => f.write_str("error"),
            Fault::Error { rate } => write!(f, "error:{rate}"),
            // Whole milliseconds when exact, else microseconds or nanoseconds: the canonical
            // form always reads back to the same delay.
            Fault::Delay(d) if d.subsec_nanos() % 1_000_000 == 0 => {
                write!(f, "delay:{}ms", d.as_millis())
            }
            Fault::Delay(d) if d.subsec_nanos() % 1_000 == 0 => {
                write!(f, "delay:{}us", d.as_micros())
            }
            Fault::Delay(d) => write!(f, "delay:{}ns", d.as_nanos()),
            Fault::Timeout => f.write_str("timeout"),
            Fault::Open => f.write_str("open"),
        }
    }
}

/// Parses `name=fault,...` (the `BREAKER_FAULTS` form): the good entries, and a message for each
/// bad one (the caller reports them; the good ones still apply).
#[must_use]
pub fn parse_fault_list(raw: &str) -> (Vec<(String, Fault)>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match entry.split_once('=') {
            Some((name, spec)) if !name.trim().is_empty() => match spec.parse::<Fault>() {
                Ok(f) => good.push((name.trim().to_owned(), f)),
                Err(e) => bad.push(format!("breaker `{}`: {e}", name.trim())),
            },
            _ => bad.push(format!("`{entry}` is not of the form `breaker=fault`")),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back() {
        for (s, f) in [
            ("error", Fault::Error { rate: 1.0 }),
            ("error:0.5", Fault::Error { rate: 0.5 }),
            ("error:1", Fault::Error { rate: 1.0 }),
            ("delay:2s", Fault::Delay(Duration::from_secs(2))),
            ("delay:150ms", Fault::Delay(Duration::from_millis(150))),
            ("delay:500us", Fault::Delay(Duration::from_micros(500))),
            ("delay:1500ns", Fault::Delay(Duration::from_nanos(1500))),
            ("timeout", Fault::Timeout),
            ("open", Fault::Open),
            (" error : 0.25 ", Fault::Error { rate: 0.25 }),
        ] {
            let parsed: Fault = s.parse().unwrap();
            assert_eq!(parsed, f, "{s}");
            assert_eq!(parsed.to_string().parse::<Fault>().unwrap(), f, "{s}");
        }
    }

    #[test]
    fn malformed_faults_say_what_is_wrong() {
        for (s, needle) in [
            ("error:0", "above 0"),
            ("error:1.5", "at most 1"),
            ("error:-1", "above 0"),
            ("error:half", "not a number"),
            ("error:NaN", "above 0"),
            ("delay", "needs a duration"),
            ("delay:2", "no unit"),
            ("timeout:3s", "takes no argument"),
            ("open:1", "takes no argument"),
            ("explode", "is not a fault"),
            ("", "is not a fault"),
        ] {
            let e = s.parse::<Fault>().unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn faults_built_in_code_are_checked() {
        assert!(Fault::Error { rate: 0.5 }.check().is_ok());
        assert!(Fault::Delay(Duration::from_micros(1)).check().is_ok());
        for bad in [
            Fault::Error { rate: 0.0 },
            Fault::Error { rate: 1.5 },
            Fault::Error { rate: f64::NAN },
            Fault::Delay(Duration::ZERO),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_list_keeps_good_entries_and_reports_bad_ones() {
        let (good, bad) =
            parse_fault_list("daum=error:0.5, juso=delay:2s,kakao=open,x=boom,,=open,y");
        assert_eq!(
            good,
            [
                ("daum".to_owned(), Fault::Error { rate: 0.5 }),
                ("juso".to_owned(), Fault::Delay(Duration::from_secs(2))),
                ("kakao".to_owned(), Fault::Open),
            ]
        );
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad[0].contains("breaker `x`") && bad[0].contains("is not a fault"));
        assert!(bad[1].contains("`=open` is not of the form"));
        assert!(bad[2].contains("`y` is not of the form"));
    }
}
