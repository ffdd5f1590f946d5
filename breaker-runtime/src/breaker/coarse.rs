//! A coarse clock for OPEN rejections that do not read the time.
//!
//! An OPEN breaker rejects until `open_until`; deciding that with the real clock is most of a
//! rejection's cost (a `clock_gettime` through the vDSO, ~20 ns here). Once a breaker is *armed*
//! ([`crate::breaker::Breaker`]'s `armed_until`), a rejection compares its end with [`now`]
//! instead: a relaxed load of the time a `breaker-clock` thread writes every [`TICK`].
//!
//! The reading is never ahead of the real time, only behind it (by up to a tick plus the
//! thread's wake-up latency). A breaker is armed to stop `GUARD` before its OPEN really ends, so
//! while the clock lags by less than that, the last stretch of OPEN is decided on the real clock
//! and OPEN never outlives `open_for`. Every 64th armed rejection of a thread reads the real
//! clock too ([`refresh`]), so a busy breaker is not held by a descheduled ticker.
//!
//! The thread only runs while armed rejections use it: after [`IDLE_TICKS`] with none it writes 0
//! ("stopped") and parks, and the next rejection (decided on the real clock, since [`now`] says
//! 0) wakes it with [`start`]. No runtime is involved: the ticker keeps going whatever happens to
//! the tokio runtime that opened the breaker, and a process that cannot start the thread never
//! arms a breaker.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How often the ticker writes the time while it is in use.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Ticks without an armed rejection's note ([`used`]) before the ticker stops.
const IDLE_TICKS: u32 = 64;

/// How long before the real end of OPEN an armed breaker stops rejecting on the coarse clock.
pub(crate) const GUARD: Duration = Duration::from_millis(2);

/// Nanoseconds since [`EPOCH`] (plus one, so a reading is never 0); 0 while the ticker is stopped.
static NOW: AtomicU64 = AtomicU64::new(0);
/// An armed rejection used [`NOW`] since the ticker last looked (every thread notes it with
/// its every 64th armed rejection).
static USED: AtomicBool = AtomicBool::new(false);
static EPOCH: OnceLock<Instant> = OnceLock::new();
/// The ticker, or `None` when it could not be started.
static TICKER: OnceLock<Option<Thread>> = OnceLock::new();

/// The real time on the coarse clock's scale.
pub(crate) fn real_now() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos())
        .unwrap_or(u64::MAX - 1)
        .saturating_add(1)
}

/// The coarse time, or 0 when the ticker is stopped (decide on the real clock then).
#[inline]
pub(crate) fn now() -> u64 {
    NOW.load(Relaxed)
}

/// An armed rejection's every 64th call on a thread: brings the coarse clock up to the real
/// time and keeps the ticker running.
#[cold]
#[inline(never)]
pub(crate) fn used() {
    refresh();
    USED.store(true, Relaxed);
}

/// Brings the coarse clock up to the real time (no further back than it was).
pub(crate) fn refresh() {
    NOW.fetch_max(real_now(), Relaxed);
}

/// Starts (or wakes) the ticker and sets the coarse clock to now; `false` when no ticker can run.
pub(crate) fn start() -> bool {
    let Some(ticker) = TICKER.get_or_init(spawn) else {
        return false;
    };
    refresh();
    USED.store(true, Relaxed);
    ticker.unpark();
    true
}

fn spawn() -> Option<Thread> {
    let spawned = std::thread::Builder::new()
        .name("breaker-clock".into())
        .spawn(run);
    match spawned {
        Ok(handle) => Some(handle.thread().clone()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the breaker-clock thread; OPEN rejections read the clock");
            None
        }
    }
}

fn run() {
    let mut idle = 0;
    loop {
        std::thread::sleep(TICK);
        refresh();
        if USED.swap(false, Relaxed) {
            idle = 0;
        } else if idle < IDLE_TICKS {
            idle += 1;
        } else {
            // No armed rejection noted for `IDLE_TICKS`: stop until the next one starts us. A
            // `start` racing with this store is not lost: its `unpark` makes `park` return at
            // once.
            NOW.store(0, Relaxed);
            std::thread::park();
            idle = 0;
            refresh();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_while_used_and_stops_when_idle() {
        assert!(start());
        let first = now();
        assert!(first > 0, "start sets the clock");
        for _ in 0..20 {
            used();
            std::thread::sleep(TICK);
        }
        let later = now();
        // Never ahead of the real clock, and it moved while in use. (0 is allowed: a slow
        // machine may miss a tick between two `used` calls.)
        assert!(later <= real_now());
        assert!(
            later == 0 || later > first,
            "the ticker advanced it: {first} → {later}"
        );
        // Unused for many ticks: the ticker stops and says so.
        let deadline = Instant::now() + Duration::from_secs(5);
        while now() != 0 {
            assert!(Instant::now() < deadline, "the ticker never stopped");
            std::thread::sleep(TICK);
        }
        assert!(start());
        assert!(now() > 0, "a stopped ticker starts again");
    }
}
