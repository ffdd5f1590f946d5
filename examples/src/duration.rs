//! Durations as the JSON APIs write them (messages use `humantime::format_duration`).

use std::time::Duration;

/// Whole milliseconds, saturating (for `delay_ms`, `fault_ms_left` and the like).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_saturate() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
