//! Per-breaker call counters that cost a plain load and store on the hot path.
//!
//! Every thread owns one slot index (handed out when the thread first counts, returned when it
//! exits) and each breaker keeps one cache line of counters per slot. A thread only ever writes
//! its own line, so counting is a relaxed load plus a relaxed store: no `lock`-prefixed
//! instruction, no cache line bouncing between cores, and still exact. Threads beyond
//! [`SLOTS`] share line 0 with atomic read-modify-write. Readers sum every line.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::core::machine::{RATE_BUCKETS, in_rate_window};

/// Lines per breaker: line 0 is shared, each of the others is one thread's. A power of two, so
/// `slot % LINES` proves the index in range without a bounds check.
const LINES: usize = 64;
/// Threads that get a line of their own.
pub(crate) const SLOTS: usize = LINES - 1;
const SHARED: usize = 0;

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(1);
static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

struct SlotGuard(usize);

impl SlotGuard {
    fn acquire() -> Self {
        let reused = FREE_SLOTS.lock().ok().and_then(|mut free| free.pop());
        let slot = reused.unwrap_or_else(|| {
            NEXT_SLOT
                .fetch_update(Relaxed, Relaxed, |n| (n <= SLOTS).then_some(n + 1))
                .unwrap_or(SHARED)
        });
        SlotGuard(slot)
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        // The mutex orders this thread's last writes before the next owner's first.
        // Counting later in this thread's teardown must not write to a line another thread
        // may own by then.
        let _ = SLOT.try_with(|c| c.set(SHARED));
        if self.0 != SHARED
            && let Ok(mut free) = FREE_SLOTS.lock()
        {
            free.push(self.0);
        }
    }
}

thread_local! {
    // The index is read on every count: a `const`-initialised `Cell` without drop glue is a
    // single thread-pointer-relative load. The guard that returns the slot when the thread
    // exits is touched only once, when the slot is handed out.
    static SLOT: Cell<usize> = const { Cell::new(UNASSIGNED) };
    static SLOT_GUARD: SlotGuard = SlotGuard::acquire();
}

const UNASSIGNED: usize = usize::MAX;

#[inline]
fn slot() -> usize {
    let s = SLOT.with(Cell::get);
    if s == UNASSIGNED { assign_slot() } else { s }
}

#[cold]
#[inline(never)]
fn assign_slot() -> usize {
    let s = SLOT_GUARD.try_with(|g| g.0).unwrap_or(SHARED);
    SLOT.with(|c| c.set(s));
    s
}

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Count {
    Successes = 0,
    Failures,
    Timeouts,
    SlowCalls,
    Rejections,
    Fallbacks,
    Cancelled,
    Panics,
}

#[repr(align(64))]
#[derive(Debug, Default)]
struct Line([AtomicU64; 8]);

#[derive(Debug)]
pub(crate) struct Counters {
    /// The shared line and one per slot: a fixed length, so indexing needs no bounds check.
    lines: Box<[Line; LINES]>,
    /// For the rate rule only: per slot, `RATE_BUCKETS` words of `epoch << 32 | successes`.
    rate: Option<Box<[Line]>>,
}

impl Counters {
    pub(crate) fn new(rate_rule: bool) -> Self {
        let lines = || (0..LINES).map(|_| Line::default()).collect::<Box<[Line]>>();
        Counters {
            lines: lines()
                .try_into()
                .unwrap_or_else(|_| unreachable!("LINES lines")),
            rate: rate_rule.then(lines),
        }
    }

    #[inline]
    pub(crate) fn add(&self, what: Count) {
        let _ = self.add_counted(what);
    }

    /// Counts `what` and returns this thread's count of it (the shared line's total for
    /// threads beyond [`SLOTS`]).
    #[inline]
    pub(crate) fn add_counted(&self, what: Count) -> u64 {
        let s = slot();
        let a = &self.lines[s % LINES].0[what as usize];
        if s != SHARED {
            let v = a.load(Relaxed).wrapping_add(1);
            a.store(v, Relaxed);
            v
        } else {
            a.fetch_add(1, Relaxed).wrapping_add(1)
        }
    }

    /// Counts a success in the rate rule's bucket for `epoch`.
    #[inline]
    pub(crate) fn add_window_success(&self, epoch: u64) {
        let Some(rate) = &self.rate else { return };
        let s = slot();
        let word = &rate[s % LINES].0[(epoch % RATE_BUCKETS) as usize];
        // Epochs are compared modulo 2^32; a bucket is reused after RATE_BUCKETS epochs.
        let tag = (epoch & 0xffff_ffff) << 32;
        let next = |v: u64| {
            if v & !0xffff_ffff != tag {
                tag | 1
            } else if v & 0xffff_ffff == 0xffff_ffff {
                // Saturate rather than carry into the epoch tag.
                v
            } else {
                v + 1
            }
        };
        if s != SHARED {
            word.store(next(word.load(Relaxed)), Relaxed);
        } else {
            let _ = word.fetch_update(Relaxed, Relaxed, |v| Some(next(v)));
        }
    }

    /// Successes in the rate window ending at `epoch`, counting buckets from `floor` on.
    pub(crate) fn window_successes(&self, epoch: u64, floor: u64) -> u64 {
        let Some(rate) = &self.rate else { return 0 };
        let mut sum = 0;
        for line in rate.iter() {
            for word in &line.0[..RATE_BUCKETS as usize] {
                let v = word.load(Relaxed);
                // Rebuild the full epoch from its low 32 bits, relative to `epoch`.
                let low = v >> 32;
                let e = (epoch & !0xffff_ffff) | low;
                let e = if e > epoch {
                    e.wrapping_sub(1 << 32)
                } else {
                    e
                };
                if in_rate_window(e, epoch, floor) {
                    sum += v & 0xffff_ffff;
                }
            }
        }
        sum
    }

    pub(crate) fn get(&self, what: Count) -> u64 {
        self.lines
            .iter()
            .map(|l| l.0[what as usize].load(Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_exact_across_threads() {
        let c = std::sync::Arc::new(Counters::new(false));
        let threads: Vec<_> = (0..SLOTS + 8)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(Count::Successes);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(Count::Successes), 1000 * (SLOTS as u64 + 8));
        assert_eq!(c.get(Count::Failures), 0);
    }

    #[test]
    fn window_successes_slide_and_respect_floor() {
        let c = Counters::new(true);
        for e in 0..20u64 {
            c.add_window_success(e);
        }
        // Epochs 12..=19 are inside a window ending at 19.
        assert_eq!(c.window_successes(19, 0), 8);
        assert_eq!(c.window_successes(19, 17), 3);
        assert_eq!(c.window_successes(40, 0), 0);
    }
}
