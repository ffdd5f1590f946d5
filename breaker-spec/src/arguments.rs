//! The attribute's arguments: one table, read by the macro to check `#[circuit_breaker(...)]`
//! and by the runtime to check `BREAKER_OVERRIDES`.

use crate::{MAX_CONCURRENT, MAX_HALF_OPEN_PROBES, MAX_QUORUM, MAX_THRESHOLD};

/// The kind of value an argument takes, as written in the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string literal of 1 to [`MAX_NAME_LEN`](crate::MAX_NAME_LEN) bytes, without whitespace,
    /// control characters, `{` or `}` (see [`check_name`](crate::check_name)).
    Name,
    /// A path to a function (`juso`, `Self::backup`), not a string.
    Function,
    /// A string literal in the grammar of [`parse_duration`](crate::parse_duration).
    Duration,
    /// An integer from 1 to `max`.
    Count {
        /// The largest value accepted.
        max: u32,
    },
    /// A percentage: an integer from 1 to [`MAX_FAILURE_RATE`](crate::MAX_FAILURE_RATE).
    Percent,
    /// A string literal naming a store: `"memory"` or `"redis"`.
    Store,
    /// A string literal naming a mode: `"enforce"` or `"shadow"`.
    Mode,
}

impl Kind {
    /// Whether the value is written as a string literal in the attribute.
    #[must_use]
    pub const fn is_string(self) -> bool {
        matches!(self, Kind::Name | Kind::Duration | Kind::Store | Kind::Mode)
    }
}

/// One argument of the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argument {
    /// The key: `threshold`.
    pub name: &'static str,
    /// The kind of value it takes.
    pub kind: Kind,
    /// What it does, in one line.
    pub doc: &'static str,
    /// A typical value as written in the attribute, quotes included: `5`, `"3s"`, `juso`.
    pub example: &'static str,
    /// Whether `BREAKER_OVERRIDES` (and `RuntimeBuilder::setting`) can change it at run time;
    /// see [`OVERRIDE_KEYS`].
    pub overridable: bool,
}

impl Argument {
    /// The argument with its example value, as written in the attribute: `timeout = "3s"`.
    #[must_use]
    pub fn usage(&self) -> String {
        format!("{} = {}", self.name, self.example)
    }

    /// The example value without quotes, as `BREAKER_OVERRIDES` takes it: `3s`.
    #[must_use]
    pub fn example_value(&self) -> &'static str {
        self.example.trim_matches('"')
    }
}

const fn arg(
    name: &'static str,
    kind: Kind,
    example: &'static str,
    overridable: bool,
    doc: &'static str,
) -> Argument {
    Argument {
        name,
        kind,
        doc,
        example,
        overridable,
    }
}

/// Every argument of `#[circuit_breaker(...)]`, in the order the documentation lists them.
pub const ARGUMENTS: &[Argument] = &[
    arg(
        "name",
        Kind::Name,
        "\"daum\"",
        false,
        "the breaker's id, shared by every function that names it",
    ),
    arg(
        "fallback",
        Kind::Function,
        "juso",
        false,
        "an `async fn` with the same parameters and return type, called when the call is \
         rejected, fails or times out",
    ),
    arg(
        "timeout",
        Kind::Duration,
        "\"3s\"",
        true,
        "the call is abandoned after this long and counts as a failure",
    ),
    arg(
        "threshold",
        Kind::Count { max: MAX_THRESHOLD },
        "5",
        true,
        "opens when this many failures fall inside `window`",
    ),
    arg(
        "window",
        Kind::Duration,
        "\"60s\"",
        true,
        "the sliding window failures (and calls, for the rate rule) are counted in",
    ),
    arg(
        "failure_rate",
        Kind::Percent,
        "50",
        true,
        "the rate rule: opens when at least this percent of the calls in `window` failed",
    ),
    arg(
        "min_calls",
        Kind::Count { max: u32::MAX },
        "20",
        true,
        "calls the rate rule must see in `window` before it applies",
    ),
    arg(
        "slow_call",
        Kind::Duration,
        "\"1s\"",
        true,
        "a successful call slower than this counts as a failure (its result is still returned)",
    ),
    arg(
        "open_for",
        Kind::Duration,
        "\"30s\"",
        true,
        "how long OPEN lasts; each consecutive re-open doubles it, up to `max_open_for`",
    ),
    arg(
        "max_open_for",
        Kind::Duration,
        "\"5m\"",
        true,
        "the upper bound the OPEN period doubles up to",
    ),
    arg(
        "half_open_probes",
        Kind::Count {
            max: MAX_HALF_OPEN_PROBES,
        },
        "1",
        true,
        "calls admitted at once in HALF_OPEN; that many successes close the breaker",
    ),
    arg(
        "quorum",
        Kind::Count { max: MAX_QUORUM },
        "2",
        true,
        "`store = \"redis\"` only: the distinct instances whose failures it takes to open the \
         fleet",
    ),
    arg(
        "max_concurrent",
        Kind::Count {
            max: MAX_CONCURRENT,
        },
        "100",
        true,
        "a bulkhead: at most this many calls in flight in this instance; the next is rejected \
         (its fallback serves) without calling the function",
    ),
    arg(
        "max_wait",
        Kind::Duration,
        "\"50ms\"",
        true,
        "with `max_concurrent`: how long a call may wait for a place before it is rejected",
    ),
    arg(
        "mode",
        Kind::Mode,
        "\"shadow\"",
        true,
        "`\"shadow\"`: count, open and alert as usual but never reject a call or serve the \
         fallback (to see what the breaker would do); `\"enforce\"` (the default) acts",
    ),
    arg(
        "failure_if",
        Kind::Function,
        "is_outage",
        false,
        "a `fn(&E) -> bool` saying which errors are failures (every `Err` without it)",
    ),
    arg(
        "store",
        Kind::Store,
        "\"memory\"",
        false,
        "where the state lives: `\"memory\"` (this process) or `\"redis\"` (shared by a fleet)",
    ),
];

/// The argument called `name`, if there is one.
#[must_use]
pub fn argument(name: &str) -> Option<&'static Argument> {
    ARGUMENTS.iter().find(|a| a.name == name)
}

const OVERRIDE_COUNT: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < ARGUMENTS.len() {
        if ARGUMENTS[i].overridable {
            n += 1;
        }
        i += 1;
    }
    n
};

const OVERRIDES: [&str; OVERRIDE_COUNT] = {
    let mut keys = [""; OVERRIDE_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < ARGUMENTS.len() {
        if ARGUMENTS[i].overridable {
            keys[n] = ARGUMENTS[i].name;
            n += 1;
        }
        i += 1;
    }
    keys
};

/// The keys `BREAKER_OVERRIDES` and `RuntimeBuilder::setting` accept: the
/// [`overridable`](Argument::overridable) arguments, in table order.
pub const OVERRIDE_KEYS: &[&str] = &OVERRIDES;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_FAILURE_RATE, check_name, parse_duration};

    #[test]
    fn names_are_unique_snake_case_and_found() {
        for (i, a) in ARGUMENTS.iter().enumerate() {
            assert!(
                a.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                a.name
            );
            assert!(
                ARGUMENTS[..i].iter().all(|b| b.name != a.name),
                "`{}` twice",
                a.name
            );
            assert_eq!(argument(a.name), Some(a));
            assert!(!a.doc.is_empty() && !a.doc.ends_with('.'), "{}", a.name);
        }
        assert_eq!(argument("treshold"), None);
    }

    #[test]
    fn every_example_is_a_valid_value_of_its_kind() {
        for a in ARGUMENTS {
            let quoted =
                a.example.len() >= 2 && a.example.starts_with('"') && a.example.ends_with('"');
            assert_eq!(quoted, a.kind.is_string(), "{}", a.name);
            let v = a.example_value();
            match a.kind {
                Kind::Name => assert_eq!(check_name(v), Ok(()), "{}", a.name),
                Kind::Function => assert!(v.chars().all(|c| c.is_alphanumeric() || c == '_')),
                Kind::Duration => assert!(parse_duration(v).is_ok(), "{}", a.name),
                Kind::Count { max } => {
                    assert!((1..=max).contains(&v.parse::<u32>().unwrap()), "{}", a.name);
                }
                Kind::Percent => {
                    assert!((1..=MAX_FAILURE_RATE).contains(&v.parse::<u8>().unwrap()));
                }
                Kind::Store => assert!(["memory", "redis"].contains(&v)),
                Kind::Mode => assert!(["enforce", "shadow"].contains(&v)),
            }
        }
    }

    #[test]
    fn usage_is_written_as_in_the_attribute() {
        let usage = |n| argument(n).map(Argument::usage);
        assert_eq!(usage("timeout").as_deref(), Some("timeout = \"3s\""));
        assert_eq!(usage("fallback").as_deref(), Some("fallback = juso"));
        assert_eq!(usage("threshold").as_deref(), Some("threshold = 5"));
        assert_eq!(argument("timeout").map(Argument::example_value), Some("3s"));
    }

    #[test]
    fn override_keys_are_the_overridable_arguments_in_order() {
        let expected: Vec<_> = ARGUMENTS
            .iter()
            .filter(|a| a.overridable)
            .map(|a| a.name)
            .collect();
        assert_eq!(OVERRIDE_KEYS, expected);
        // The documented list (README, `BREAKER_OVERRIDES`): the values a running breaker can
        // change. The name, the fallback, `failure_if` and the store are compiled in.
        assert_eq!(
            OVERRIDE_KEYS,
            [
                "timeout",
                "threshold",
                "window",
                "failure_rate",
                "min_calls",
                "slow_call",
                "open_for",
                "max_open_for",
                "half_open_probes",
                "quorum",
                "max_concurrent",
                "max_wait",
                "mode",
            ]
        );
    }
}
