//! The duration grammar: `"250ms"`, `"3s"`, `"1m"`.

use std::time::Duration;

use crate::MAX_DURATION;

/// The units, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
];

/// Parses a duration: decimal digits, then one unit of `ns`, `us`, `ms`, `s`, `m`, `h`, `d`
/// (`"250ms"`, `"3s"`, `"1m"`, `"2h"`, `"1d"`). The value must be greater than zero and at most
/// [`MAX_DURATION`].
///
/// The grammar is strict: no whitespace anywhere, no sign, no fraction. A string written in
/// source (`timeout = " 3s"` in the attribute) is exact, so a stray space there is a typo for
/// the compiler to point at rather than something to guess around. Text that arrives from
/// outside a program (an environment variable, a command line, JSON) picks up whitespace in
/// transit; the runtime trims it at that boundary (`breaker_runtime::parse_duration` trims, and
/// `BREAKER_OVERRIDES` trims each key and value as it splits the list), before this grammar.
///
/// # Errors
/// A message saying what is wrong, quoting the input: not a duration, no unit, unknown unit,
/// zero, or too long.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{s}` is not a duration; expected e.g. \"3s\" or \"250ms\""
        ));
    }
    if unit.is_empty() {
        return Err(format!("`{s}` has no unit; add one of {}", unit_list()));
    }
    let Some(&(_, nanos_per)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "unknown unit `{unit}`; expected one of {}",
            unit_list()
        ));
    };
    let too_long = || format!("`{s}` is too long (at most {}s)", MAX_DURATION.as_secs());
    // Only a number longer than `u128` fails here; anything that fits is bounded below.
    let n: u128 = digits.parse().map_err(|_| too_long())?;
    let nanos = n.saturating_mul(nanos_per);
    if nanos == 0 {
        return Err(format!(
            "`{s}` is zero; a duration must be greater than zero"
        ));
    }
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, sub))
}

fn unit_list() -> String {
    UNITS.map(|(name, _)| name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit() {
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("5us"), Ok(Duration::from_micros(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn the_limit_is_inclusive() {
        assert_eq!(parse_duration("1000000000s"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("1000000000000000000ns"),
            Ok(MAX_DURATION),
            "the limit in the smallest unit"
        );
        assert_eq!(
            parse_duration("1000000001s"),
            Err("`1000000001s` is too long (at most 1000000000s)".to_owned())
        );
        assert!(parse_duration("11574d").is_ok());
        assert!(parse_duration("11575d").unwrap_err().contains("too long"));
    }

    #[test]
    fn each_mistake_has_its_message() {
        assert_eq!(
            parse_duration("3"),
            Err("`3` has no unit; add one of ns, us, ms, s, m, h, d".to_owned())
        );
        assert_eq!(
            parse_duration("3y"),
            Err("unknown unit `y`; expected one of ns, us, ms, s, m, h, d".to_owned())
        );
        assert_eq!(
            parse_duration("0s"),
            Err("`0s` is zero; a duration must be greater than zero".to_owned())
        );
        assert_eq!(
            parse_duration("s"),
            Err("`s` is not a duration; expected e.g. \"3s\" or \"250ms\"".to_owned())
        );
        assert!(parse_duration("").unwrap_err().contains("not a duration"));
        assert!(
            parse_duration("-1s")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse_duration("1.5s")
                .unwrap_err()
                .contains("unknown unit `.5s`")
        );
        assert!(
            parse_duration("3S")
                .unwrap_err()
                .contains("unknown unit `S`")
        );
        assert!(
            parse_duration("99999999999999999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_duration(&"9".repeat(60))
                .unwrap_err()
                .contains("has no unit")
        );
        assert!(
            parse_duration(&format!("{}s", "9".repeat(60)))
                .unwrap_err()
                .contains("too long"),
            "a number longer than u128"
        );
    }

    #[test]
    fn whitespace_is_refused_not_trimmed() {
        for s in [" 3s", "3s ", "3 s", "\t3s", "3s\n"] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
        assert!(
            parse_duration(" 3s")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(
            parse_duration("3 s")
                .unwrap_err()
                .contains("unknown unit ` s`")
        );
    }
}
