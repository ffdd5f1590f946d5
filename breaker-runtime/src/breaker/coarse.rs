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
//! clock too ([`used`]), so a busy breaker is not held by a descheduled ticker. What is left:
//! if the ticker *and* a caller are both kept off the CPU for longer than `GUARD` (an
//! oversubscribed machine), that caller's rejection can come up to that long after OPEN ended.
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

/// How long before the real end of OPEN an armed breaker stops rejecting on the coarse clock:
/// the lag it absorbs (the ticker or a caller descheduled right after reading the time). The
/// last `GUARD` of each OPEN is decided on the real clock.
pub(crate) const GUARD: Duration = Duration::from_millis(10);

/// The process's coarse clock.
static CLOCK: CoarseClock = CoarseClock::new();

/// A coarse clock and its ticker (one per process; tests make their own).
struct CoarseClock {
    /// Nanoseconds since `epoch` (plus one, so a reading is never 0); 0 while the ticker is
    /// stopped.
    now: AtomicU64,
    /// An armed rejection used `now` since the ticker last looked (every thread notes it with
    /// its every 64th armed rejection).
    used: AtomicBool,
    epoch: OnceLock<Instant>,
    /// The ticker, or `None` when it could not be started.
    ticker: OnceLock<Option<Thread>>,
}

/// The real time on the coarse clock's scale.
pub(crate) fn real_now() -> u64 {
    CLOCK.real_now()
}

/// The coarse time, or 0 when the ticker is stopped (decide on the real clock then).
#[inline]
pub(crate) fn now() -> u64 {
    CLOCK.now.load(Relaxed)
}

/// An armed rejection's every 64th call on a thread: brings the coarse clock up to the real
/// time and keeps the ticker running.
#[cold]
#[inline(never)]
pub(crate) fn used() {
    CLOCK.used();
}

/// Starts (or wakes) the ticker and sets the coarse clock to now; `false` when no ticker can run.
pub(crate) fn start() -> bool {
    CLOCK.start()
}

impl CoarseClock {
    const fn new() -> Self {
        CoarseClock {
            now: AtomicU64::new(0),
            used: AtomicBool::new(false),
            epoch: OnceLock::new(),
            ticker: OnceLock::new(),
        }
    }

    fn real_now(&self) -> u64 {
        let epoch = *self.epoch.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn used(&self) {
        let real = self.real_now();
        // Only a running clock is moved: a rejection that read the time before the ticker
        // stopped must not bring it back after the ticker wrote 0 and parked (it would then
        // stand still, with nothing left to wake the ticker, and hold every armed OPEN past its
        // end).
        let _ = self
            .now
            .fetch_update(Relaxed, Relaxed, |n| (n != 0 && n < real).then_some(real));
        self.used.store(true, Relaxed);
    }

    /// Brings the clock up to the real time (no further back than it was): for `start` and
    /// the ticker itself, the only ones that may move it from 0.
    fn refresh(&self) {
        self.now.fetch_max(self.real_now(), Relaxed);
    }

    fn start(&'static self) -> bool {
        let Some(ticker) = self.ticker.get_or_init(|| self.spawn()) else {
            return false;
        };
        self.refresh();
        self.used.store(true, Relaxed);
        ticker.unpark();
        true
    }

    fn spawn(&'static self) -> Option<Thread> {
        let spawned = std::thread::Builder::new()
            .name("breaker-clock".into())
            .spawn(|| self.run());
        match spawned {
            Ok(handle) => Some(handle.thread().clone()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the breaker-clock thread; OPEN rejections read the clock");
                None
            }
        }
    }

    fn run(&self) {
        let mut idle = 0;
        loop {
            std::thread::sleep(TICK);
            self.refresh();
            if self.used.swap(false, Relaxed) {
                idle = 0;
            } else if idle < IDLE_TICKS {
                idle += 1;
            } else {
                // No armed rejection noted for `IDLE_TICKS`: stop until the next one starts
                // us. A `start` racing with this store is not lost: its `unpark` makes `park`
                // return at once.
                self.now.store(0, Relaxed);
                std::thread::park();
                idle = 0;
                self.refresh();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_clock() -> &'static CoarseClock {
        Box::leak(Box::new(CoarseClock::new()))
    }

    #[test]
    fn runs_while_used_and_stops_when_idle() {
        let c = own_clock();
        assert!(c.start());
        let first = c.now.load(Relaxed);
        assert!(first > 0, "start sets the clock");
        for _ in 0..20 {
            c.used();
            std::thread::sleep(TICK);
        }
        let later = c.now.load(Relaxed);
        // Never ahead of the real clock, and it moved while in use.
        assert!(later <= c.real_now());
        assert!(later > first, "the ticker advanced it: {first} → {later}");
        // Unused for many ticks: the ticker stops and says so.
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.now.load(Relaxed) != 0 {
            assert!(Instant::now() < deadline, "the ticker never stopped");
            std::thread::sleep(TICK);
        }
        // A rejection that read the time before the ticker stopped notes its use afterwards:
        // the stopped clock stays stopped (reads 0, so rejections read the real clock and
        // restart it) instead of standing still at the note's time. (Review finding R1: it
        // stood still, and held OPEN 273 ms past its end.)
        c.used();
        assert_eq!(c.now.load(Relaxed), 0, "a note revived a stopped clock");
        assert!(c.start());
        assert!(c.now.load(Relaxed) > 0, "a stopped ticker starts again");
    }
}
