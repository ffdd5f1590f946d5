//! Small formatting helpers shared by the binary and other front ends.

/// `450ms`, `2.5s`, `1m30s`, `2h5m`, `3d4h`: a short human form of a number of milliseconds.
#[must_use]
pub fn format_ms(ms: u64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    match ms {
        0..S => format!("{ms}ms"),
        S..M if ms.is_multiple_of(S) => format!("{}s", ms / S),
        S..M => format!("{}.{}s", ms / S, (ms % S) / 100),
        M..H => with_rest(ms / M, "m", (ms % M) / S, "s"),
        H..D => with_rest(ms / H, "h", (ms % H) / M, "m"),
        _ => with_rest(ms / D, "d", (ms % D) / H, "h"),
    }
}

fn with_rest(big: u64, big_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

/// `2025-06-01T12:34:56.789Z`: a Unix time in milliseconds as RFC 3339, in UTC.
#[must_use]
pub fn format_unix_ms(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(format_ms(0), "0ms");
        assert_eq!(format_ms(450), "450ms");
        assert_eq!(format_ms(2000), "2s");
        assert_eq!(format_ms(2500), "2.5s");
        assert_eq!(format_ms(90_000), "1m30s");
        assert_eq!(format_ms(600_000), "10m");
        assert_eq!(format_ms(3_600_000 + 5 * 60_000), "1h5m");
        assert_eq!(format_ms(2 * 86_400_000 + 3_600_000), "2d1h");
    }

    #[test]
    fn unix_times_are_utc_dates() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            format_unix_ms(1_748_781_296_789),
            "2025-06-01T12:34:56.789Z"
        );
    }
}
