//! The defaults of the attribute and the largest values it accepts.
//!
//! Arguments without a constant here are off by default: `timeout`, `failure_rate` and
//! `slow_call`, `max_concurrent` (no bulkhead) and `max_wait` (a full bulkhead refuses at
//! once); `max_open_for` defaults to `open_for` (no doubling); `store` to `"memory"`.

use std::time::Duration;

/// Longest explicit `name`, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Largest `threshold`: the sliding window keeps one timestamp per counted failure.
pub const MAX_THRESHOLD: u32 = 100_000;
/// Largest `half_open_probes`.
pub const MAX_HALF_OPEN_PROBES: u32 = 10_000;
/// Largest `quorum`.
pub const MAX_QUORUM: u32 = 10_000;
/// Largest `max_concurrent`.
pub const MAX_CONCURRENT: u32 = 1_000_000;
/// Largest `failure_rate`: it is a percentage.
pub const MAX_FAILURE_RATE: u8 = 100;
/// Longest duration accepted anywhere in a configuration (about 31.7 years): keeps every time
/// computation inside `u64` nanoseconds.
pub const MAX_DURATION: Duration = Duration::from_secs(1_000_000_000);

/// `threshold`: failures inside `window` that open the breaker.
pub const DEFAULT_THRESHOLD: u32 = 5;
/// `window`: the sliding window failures are counted in.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
/// `min_calls`: calls the rate rule waits for in the window.
pub const DEFAULT_MIN_CALLS: u32 = 20;
/// `open_for`: how long the first OPEN lasts (and `max_open_for`, unless given).
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(30);
/// `half_open_probes`: one probe at a time.
pub const DEFAULT_HALF_OPEN_PROBES: u32 = 1;
/// `quorum`: any instance's failures count, as they would in one process.
pub const DEFAULT_QUORUM: u32 = 1;

// Checked when the crate builds: every default is a value the attribute accepts, and every
// duration fits in `u64` nanoseconds.
const _: () = {
    assert!(DEFAULT_THRESHOLD >= 1 && DEFAULT_THRESHOLD <= MAX_THRESHOLD);
    assert!(DEFAULT_HALF_OPEN_PROBES >= 1 && DEFAULT_HALF_OPEN_PROBES <= MAX_HALF_OPEN_PROBES);
    assert!(DEFAULT_QUORUM >= 1 && DEFAULT_QUORUM <= MAX_QUORUM);
    assert!(DEFAULT_MIN_CALLS >= 1);
    assert!(!DEFAULT_WINDOW.is_zero() && DEFAULT_WINDOW.as_nanos() <= MAX_DURATION.as_nanos());
    assert!(!DEFAULT_OPEN_FOR.is_zero() && DEFAULT_OPEN_FOR.as_nanos() <= MAX_DURATION.as_nanos());
    assert!(MAX_DURATION.as_nanos() <= u64::MAX as u128);
};
