//! Breaker configuration: the values of the attribute, checked once more at run time for
//! configuration that arrives from the environment or the builder.
//!
//! The keys, defaults, limits and duration grammar are the attribute's own, from the internal
//! crate `breaker-spec` that the macro reads too, so compile time and run time cannot disagree.

use std::fmt;
use std::time::Duration;

use breaker_spec::{
    DEFAULT_HALF_OPEN_PROBES, DEFAULT_MIN_CALLS, DEFAULT_OPEN_FOR, DEFAULT_QUORUM,
    DEFAULT_THRESHOLD, DEFAULT_WINDOW, MAX_FAILURE_RATE,
};

/// Where a breaker keeps its state.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// Process-local state (the default).
    Memory,
    /// State shared through Redis. Until a Redis store is installed this behaves exactly like
    /// [`StoreKind::Memory`] and says so once through `tracing`.
    Redis,
}

impl StoreKind {
    /// The name used in the attribute (`store = "memory"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
        }
    }
}

/// Whether a breaker acts on its verdicts (`mode = "enforce"`, the default) or only counts them
/// (`mode = "shadow"`): in shadow every call runs, none is rejected or sent to the fallback, and
/// the machine still counts, transitions and alerts as it would have.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Rejections, fallbacks and timeouts act on calls.
    #[default]
    Enforce,
    /// Everything is counted and alerted; no call is rejected, abandoned or sent to the
    /// fallback.
    Shadow,
}

impl Mode {
    /// The name used in the attribute (`mode = "shadow"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }

    /// `"enforce"` or `"shadow"`.
    ///
    /// # Errors
    /// Any other text, with what is expected.
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text.trim() {
            "enforce" => Ok(Mode::Enforce),
            "shadow" => Ok(Mode::Shadow),
            other => Err(format!(
                "unknown mode `{other}`; expected `shadow` or `enforce`"
            )),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The configuration of one breaker. Built by the attribute at compile time (every value has
/// already been validated there), or by hand with the `const` builder methods and
/// [`Config::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Abandon a call after this long; counts as a failure.
    pub timeout: Option<Duration>,
    /// Failures inside `window` that open the breaker.
    pub threshold: u32,
    /// Sliding window over which failures (and calls, for the rate rule) are counted.
    pub window: Duration,
    /// Optional rate rule: open when at least this percent of the calls in the window failed.
    pub failure_rate: Option<u8>,
    /// Calls that must be seen in the window before the rate rule applies.
    pub min_calls: u32,
    /// A successful call slower than this counts as a failure.
    pub slow_call: Option<Duration>,
    /// How long the first OPEN lasts.
    pub open_for: Duration,
    /// Upper bound for the doubling of consecutive OPEN periods.
    pub max_open_for: Duration,
    /// Probes admitted at once in HALF_OPEN; that many successes close the breaker.
    pub half_open_probes: u32,
    /// Shared stores: the fleet opens only when failures in its window came from at least this
    /// many distinct instances (1: any instance's failures count, as they would in one process).
    /// An instance's own failures still open it locally.
    pub quorum: u32,
    /// Where state lives.
    pub store: StoreKind,
    /// A bulkhead: at most this many calls in flight in this instance (none without it).
    pub max_concurrent: Option<u32>,
    /// With `max_concurrent`: how long a call may wait for a place (none: refused at once).
    pub max_wait: Option<Duration>,
    /// The declared mode: `Shadow` counts and alerts without acting on any call. An operator
    /// can switch it at run time (`breakerctl shadow`); this is the value until one does.
    pub mode: Mode,
}

/// Largest `threshold` accepted (100,000): the sliding window keeps one timestamp per counted
/// failure.
pub const MAX_THRESHOLD: u32 = breaker_spec::MAX_THRESHOLD;
/// Largest `half_open_probes` accepted (10,000).
pub const MAX_HALF_OPEN_PROBES: u32 = breaker_spec::MAX_HALF_OPEN_PROBES;
/// Largest `quorum` accepted (10,000).
pub const MAX_QUORUM: u32 = breaker_spec::MAX_QUORUM;
/// Largest `max_concurrent` accepted (1,000,000).
pub const MAX_CONCURRENT: u32 = breaker_spec::MAX_CONCURRENT;
/// Longest duration accepted anywhere in a configuration (1,000,000,000 s, about 31.7 years):
/// keeps every time computation inside `u64` nanoseconds.
pub const MAX_DURATION: Duration = breaker_spec::MAX_DURATION;
/// Longest breaker name the attribute accepts, in bytes (200); see [`check_name`].
pub const MAX_NAME_LEN: usize = breaker_spec::MAX_NAME_LEN;

/// What a breaker's name may be, the attribute's rule, for names that arrive at run time (an
/// operator's console): [`check_name`] refuses an empty name, one longer than [`MAX_NAME_LEN`],
/// whitespace, control characters and [`HASH_TAG_CHARS`] (`{`, `}`: a breaker's Redis keys
/// are `<prefix>:{<name>}:…`).
pub use breaker_spec::{HASH_TAG_CHARS, NameError, check_name};

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// The defaults of the attribute: threshold 5 in a 60 s window, open for 30 s, one probe.
    #[must_use]
    pub const fn new() -> Self {
        Config {
            timeout: None,
            threshold: DEFAULT_THRESHOLD,
            window: DEFAULT_WINDOW,
            failure_rate: None,
            min_calls: DEFAULT_MIN_CALLS,
            slow_call: None,
            open_for: DEFAULT_OPEN_FOR,
            max_open_for: DEFAULT_OPEN_FOR,
            half_open_probes: DEFAULT_HALF_OPEN_PROBES,
            quorum: DEFAULT_QUORUM,
            store: StoreKind::Memory,
            max_concurrent: None,
            max_wait: None,
            mode: Mode::Enforce,
        }
    }

    /// Sets `mode`.
    #[must_use]
    pub const fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets `max_concurrent` (a bulkhead).
    #[must_use]
    pub const fn max_concurrent(mut self, calls: u32) -> Self {
        self.max_concurrent = Some(calls);
        self
    }

    /// Sets `max_wait` (with `max_concurrent`).
    #[must_use]
    pub const fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }

    /// Sets `timeout`.
    #[must_use]
    pub const fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Sets `threshold`.
    #[must_use]
    pub const fn threshold(mut self, n: u32) -> Self {
        self.threshold = n;
        self
    }
    /// Sets `window`.
    #[must_use]
    pub const fn window(mut self, d: Duration) -> Self {
        self.window = d;
        self
    }
    /// Sets the rate rule (`failure_rate`, percent).
    #[must_use]
    pub const fn failure_rate(mut self, percent: u8) -> Self {
        self.failure_rate = Some(percent);
        self
    }
    /// Sets `min_calls` of the rate rule.
    #[must_use]
    pub const fn min_calls(mut self, n: u32) -> Self {
        self.min_calls = n;
        self
    }
    /// Sets `slow_call`.
    #[must_use]
    pub const fn slow_call(mut self, d: Duration) -> Self {
        self.slow_call = Some(d);
        self
    }
    /// Sets `open_for`; `max_open_for` follows it unless set after.
    #[must_use]
    pub const fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self.max_open_for = d;
        self
    }
    /// Sets `max_open_for`.
    #[must_use]
    pub const fn max_open_for(mut self, d: Duration) -> Self {
        self.max_open_for = d;
        self
    }
    /// Sets `half_open_probes`.
    #[must_use]
    pub const fn half_open_probes(mut self, n: u32) -> Self {
        self.half_open_probes = n;
        self
    }
    /// Sets `quorum` (shared stores only).
    #[must_use]
    pub const fn quorum(mut self, n: u32) -> Self {
        self.quorum = n;
        self
    }
    /// Sets `store`.
    #[must_use]
    pub const fn store(mut self, store: StoreKind) -> Self {
        self.store = store;
        self
    }

    /// How long a HALF_OPEN probe may run before its permit is given to another call: the
    /// `timeout` when there is one (a probe cannot outlive it), otherwise `open_for` (the time the
    /// breaker already waited before probing).
    #[must_use]
    pub fn probe_lease(&self) -> Duration {
        self.timeout.unwrap_or(self.open_for)
    }

    /// Checks the same rules the attribute checks at compile time, for configuration that comes
    /// from the builder or the environment.
    ///
    /// # Errors
    /// The first rule broken, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let dur = |key: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError::new(key, "must be greater than zero"))
            } else if d > MAX_DURATION {
                Err(ConfigError::new(
                    key,
                    format!("is too long (at most {}s)", MAX_DURATION.as_secs()),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(t) = self.timeout {
            dur("timeout", t)?;
        }
        if self.threshold == 0 || self.threshold > MAX_THRESHOLD {
            return Err(ConfigError::new(
                "threshold",
                format!("must be between 1 and {MAX_THRESHOLD}"),
            ));
        }
        dur("window", self.window)?;
        if let Some(r) = self.failure_rate
            && !(1..=MAX_FAILURE_RATE).contains(&r)
        {
            return Err(ConfigError::new(
                "failure_rate",
                format!("must be between 1 and {MAX_FAILURE_RATE}"),
            ));
        }
        if self.min_calls == 0 {
            return Err(ConfigError::new("min_calls", "must be greater than zero"));
        }
        if let Some(s) = self.slow_call {
            dur("slow_call", s)?;
        }
        dur("open_for", self.open_for)?;
        dur("max_open_for", self.max_open_for)?;
        if self.max_open_for < self.open_for {
            return Err(ConfigError::new(
                "max_open_for",
                "must not be shorter than `open_for`",
            ));
        }
        if self.half_open_probes == 0 || self.half_open_probes > MAX_HALF_OPEN_PROBES {
            return Err(ConfigError::new(
                "half_open_probes",
                format!("must be between 1 and {MAX_HALF_OPEN_PROBES}"),
            ));
        }
        if let Some(n) = self.max_concurrent
            && !(1..=MAX_CONCURRENT).contains(&n)
        {
            return Err(ConfigError::new(
                "max_concurrent",
                format!("must be between 1 and {MAX_CONCURRENT}"),
            ));
        }
        if let Some(w) = self.max_wait {
            dur("max_wait", w)?;
            if self.max_concurrent.is_none() {
                return Err(ConfigError::new(
                    "max_wait",
                    "is the wait for a place in a bulkhead; it needs `max_concurrent`",
                ));
            }
        }
        if self.quorum == 0 || self.quorum > MAX_QUORUM {
            return Err(ConfigError::new(
                "quorum",
                format!("must be between 1 and {MAX_QUORUM}"),
            ));
        }
        Ok(())
    }

    /// Applies one `key=value` setting, as found in `BREAKER_OVERRIDES`.
    ///
    /// # Errors
    /// An unknown key, a value that does not parse, or a result [`Config::validate`] refuses; the
    /// configuration is left unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let mut next = *self;
        next.assign(key, value)?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Checks one setting on its own: the key exists and the value is in range. Rules between
    /// settings (`max_open_for` against `open_for`) are left to [`Config::set`].
    pub(crate) fn check_setting(key: &str, value: &str) -> Result<(), ConfigError> {
        let mut c = Config::new();
        if key == "max_open_for" {
            c.open_for = Duration::from_nanos(1);
        }
        if key == "max_wait" {
            c.max_concurrent = Some(1);
        }
        c.assign(key, value)?;
        c.validate()
    }

    pub(crate) fn assign(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let key_static = OVERRIDE_KEYS
            .iter()
            .copied()
            .find(|k| *k == key)
            .ok_or_else(|| {
                ConfigError::new(
                    "",
                    format!(
                        "unknown setting `{key}`; expected one of {}",
                        OVERRIDE_KEYS.join(", ")
                    ),
                )
            })?;
        let count = || {
            value
                .parse::<u32>()
                .map_err(|_| ConfigError::new(key_static, format!("`{value}` is not a count")))
        };
        let duration = || parse_duration(value).map_err(|m| ConfigError::new(key_static, m));
        match key_static {
            "timeout" => self.timeout = Some(duration()?),
            "threshold" => self.threshold = count()?,
            "window" => self.window = duration()?,
            // Out-of-range percentages saturate to 255 and are refused by `validate`.
            "failure_rate" => self.failure_rate = Some(u8::try_from(count()?).unwrap_or(u8::MAX)),
            "min_calls" => self.min_calls = count()?,
            "slow_call" => self.slow_call = Some(duration()?),
            "open_for" => {
                let d = duration()?;
                if self.max_open_for == self.open_for || self.max_open_for < d {
                    self.max_open_for = d;
                }
                self.open_for = d;
            }
            "max_open_for" => self.max_open_for = duration()?,
            "half_open_probes" => self.half_open_probes = count()?,
            "quorum" => self.quorum = count()?,
            "max_concurrent" => self.max_concurrent = Some(count()?),
            "max_wait" => self.max_wait = Some(duration()?),
            "mode" => {
                self.mode = Mode::parse(value).map_err(|m| ConfigError::new(key_static, m))?
            }
            _ => unreachable!("every entry of OVERRIDE_KEYS is handled"),
        }
        Ok(())
    }
}

/// The keys `BREAKER_OVERRIDES` and [`Config::set`] (so `RuntimeBuilder::setting`) accept: the
/// attribute's arguments that can change at run time. The name, the fallback, `failure_if` and
/// the store are compiled in.
pub const OVERRIDE_KEYS: &[&str] = breaker_spec::OVERRIDE_KEYS;

/// Parses `"250ms"`, `"3s"`, `"1m"`, `"2h"`, `"1d"` (also `"us"`, `"ns"`): an integer and a unit,
/// greater than zero and at most [`MAX_DURATION`]. Surrounding whitespace is ignored.
///
/// The grammar is the attribute's, defined once for both (in the internal crate
/// `breaker-spec`). The attribute refuses whitespace: a string in source is exact, and a stray
/// space there is a typo. This function trims it, because its text comes from outside a
/// program (an environment variable, a command line, JSON), where whitespace is picked up in
/// transit.
///
/// # Errors
/// A message saying what is wrong: not a duration, no unit, unknown unit, zero, or too long.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    breaker_spec::parse_duration(s.trim())
}

/// Bad configuration from the builder or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            setting,
            message: message.into(),
        }
    }

    /// The setting (or environment variable) at fault; empty for an unknown setting.
    #[must_use]
    pub fn setting(&self) -> &str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.setting.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "`{}` {}", self.setting, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn durations_reject_missing_unit_unknown_unit_zero_overflow() {
        assert!(parse_duration("3").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("3y")
                .unwrap_err()
                .contains("unknown unit `y`")
        );
        assert!(parse_duration("0s").unwrap_err().contains("zero"));
        assert!(
            parse_duration("99999999999999999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_duration("1000000001s")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("-1s")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn durations_trim_surrounding_whitespace_only() {
        assert_eq!(parse_duration(" 3s\n"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("\t250ms "), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("3 s")
                .unwrap_err()
                .contains("unknown unit ` s`")
        );
        assert!(parse_duration("  ").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn every_overridable_argument_is_handled_by_set() {
        for arg in breaker_spec::ARGUMENTS {
            // `max_wait` is valid only beside `max_concurrent`.
            let mut c = if arg.name == "max_wait" {
                Config::new().max_concurrent(1)
            } else {
                Config::new()
            };
            let r = c.set(arg.name, arg.example_value());
            if arg.overridable {
                assert_eq!(r, Ok(()), "{}", arg.name);
            } else {
                let e = r.expect_err(arg.name).to_string();
                assert!(e.starts_with("unknown setting"), "{}: {e}", arg.name);
            }
        }
        assert_eq!(
            OVERRIDE_KEYS.len(),
            breaker_spec::ARGUMENTS
                .iter()
                .filter(|a| a.overridable)
                .count()
        );
    }

    #[test]
    fn limits_and_defaults_are_the_attribute_s() {
        let c = Config::new();
        assert_eq!(c.threshold, 5);
        assert_eq!(c.window, Duration::from_secs(60));
        assert_eq!(c.min_calls, 20);
        assert_eq!(
            (c.open_for, c.max_open_for),
            (Duration::from_secs(30), Duration::from_secs(30))
        );
        assert_eq!((c.half_open_probes, c.quorum), (1, 1));
        assert_eq!(
            Config::new()
                .threshold(MAX_THRESHOLD + 1)
                .validate()
                .unwrap_err()
                .to_string(),
            "`threshold` must be between 1 and 100000"
        );
        assert_eq!(
            Config::new()
                .quorum(MAX_QUORUM + 1)
                .validate()
                .unwrap_err()
                .to_string(),
            "`quorum` must be between 1 and 10000"
        );
        assert_eq!(
            Config::new()
                .half_open_probes(MAX_HALF_OPEN_PROBES + 1)
                .validate()
                .unwrap_err()
                .to_string(),
            "`half_open_probes` must be between 1 and 10000"
        );
        assert_eq!(
            Config::new()
                .window(MAX_DURATION + Duration::from_nanos(1))
                .validate()
                .unwrap_err()
                .to_string(),
            "`window` is too long (at most 1000000000s)"
        );
        assert!(Config::new().window(MAX_DURATION).validate().is_ok());
    }

    #[test]
    fn validate_catches_each_rule() {
        assert!(Config::new().validate().is_ok());
        let bad = [
            (Config::new().threshold(0), "threshold"),
            (Config::new().failure_rate(0), "failure_rate"),
            (Config::new().failure_rate(101), "failure_rate"),
            (Config::new().min_calls(0), "min_calls"),
            (Config::new().half_open_probes(0), "half_open_probes"),
            (Config::new().window(Duration::ZERO), "window"),
            (Config::new().timeout(Duration::ZERO), "timeout"),
            (
                Config::new()
                    .open_for(Duration::from_secs(10))
                    .max_open_for(Duration::from_secs(5)),
                "max_open_for",
            ),
        ];
        for (cfg, setting) in bad {
            assert_eq!(cfg.validate().unwrap_err().setting(), setting, "{cfg:?}");
        }
    }

    #[test]
    fn set_applies_valid_and_refuses_invalid_without_change() {
        let mut c = Config::new();
        c.set("threshold", "10").unwrap();
        c.set("open_for", "1m").unwrap();
        assert_eq!(c.threshold, 10);
        assert_eq!(c.open_for, Duration::from_secs(60));
        assert_eq!(c.max_open_for, Duration::from_secs(60));
        let before = c;
        assert!(c.set("threshold", "0").is_err());
        assert!(c.set("threshold", "five").is_err());
        assert!(c.set("failure_rate", "300").is_err());
        assert!(c.set("max_open_for", "1s").is_err());
        assert!(
            c.set("treshold", "3")
                .unwrap_err()
                .to_string()
                .contains("unknown setting")
        );
        assert_eq!(c, before);
    }
}
