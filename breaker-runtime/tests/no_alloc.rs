//! After its first calls, a `#[circuit_breaker]` function does not touch the heap: closed
//! successes, closed failures, open rejections, with and without `timeout`.
//!
//! Allocations are counted per thread by `allocation_counter` (a global allocator wrapping
//! `std::alloc::System`; this package forbids `unsafe`, so the test cannot implement
//! `GlobalAlloc` itself). `measure` counts only what the calling thread allocates while the
//! closure runs, so the test harness, other tests and the notifier thread never count.
//!
//! Futures that finish on their first poll are polled once with a no-op waker: no executor is
//! involved, so every allocation counted is the breaker's.
//!
//! One allocation is expected and bounded rather than zero: the first failures a breaker sees grow
//! its failure window (a `VecDeque` of at most `threshold` timestamps) to its final capacity,
//! a handful of times over the life of the process ([`failure_window_grows_only_while_filling`]).

#![allow(missing_docs)]

use std::time::Duration;

use allocation_counter::{AllocationInfo, measure};
use breaker_runtime::{BreakerError, circuit_breaker};

#[path = "../benches/common/mod.rs"]
mod common;

use common::{E, poll_once as now};

fn outcome(fail: bool) -> Result<u64, E> {
    if fail { Err(E::Down) } else { Ok(1) }
}

#[circuit_breaker(threshold = 1000)]
async fn closed(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1000, max_concurrent = 4, max_wait = "1s")]
async fn bulkheaded(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1000, timeout = "3s")]
async fn closed_timeout(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1, open_for = "1h")]
async fn tripped(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1, open_for = "1h")]
async fn tripped_armed(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1, open_for = "1h", timeout = "3s")]
async fn tripped_timeout(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 64)]
async fn filling(fail: bool) -> Result<u64, E> {
    outcome(fail)
}

#[circuit_breaker(threshold = 1000, timeout = "1ms")]
async fn hangs() -> Result<u64, E> {
    std::future::pending::<()>().await;
    Ok(1)
}

/// Runs `call` `warmup` times, then counts the allocations of `calls` more calls.
fn after_warmup(warmup: usize, calls: usize, mut call: impl FnMut()) -> AllocationInfo {
    for _ in 0..warmup {
        call();
    }
    measure(|| {
        for _ in 0..calls {
            call();
        }
    })
}

#[track_caller]
fn assert_none(what: &str, info: AllocationInfo) {
    assert_eq!(
        info.count_total, 0,
        "{what}: {} allocations ({} bytes) after warm-up",
        info.count_total, info.bytes_total
    );
}

/// The counter is live on this thread: a zero below is not a zero by default.
#[test]
fn counter_sees_this_threads_allocations() {
    let info = measure(|| drop(std::hint::black_box(Box::new(1_u64))));
    assert_eq!(info.count_total, 1);
}

#[test]
fn closed_success_does_not_allocate() {
    let info = after_warmup(10, 1000, || assert!(matches!(now(closed(false)), Ok(1))));
    assert_none("closed success", info);
}

/// A bulkhead with room: a place taken and given back (a success settles on the slow path,
/// as a failure does), no allocation (a call that has to queue
/// for a place allocates its wait).
#[test]
fn bulkhead_with_room_does_not_allocate() {
    let info = after_warmup(10, 1000, || {
        assert!(matches!(now(bulkheaded(false)), Ok(1)));
    });
    assert_none("bulkhead with room", info);
}

#[test]
fn closed_success_with_timeout_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    let info = after_warmup(10, 1000, || {
        assert!(matches!(now(closed_timeout(false)), Ok(1)));
    });
    assert_none("closed success with timeout", info);
}

/// `threshold = 1000`: 600 failures of warm-up grow the window to its capacity for 1024
/// timestamps; 300 more stay below the threshold and inside that capacity.
#[test]
fn closed_failure_does_not_allocate() {
    let info = after_warmup(600, 300, || {
        assert!(matches!(now(closed(true)), Err(E::Down)));
    });
    assert_none("closed failure", info);
    // Still closed: the 900 failures did not trip it.
    assert!(matches!(now(closed(false)), Ok(1)));
}

#[test]
fn closed_failure_with_timeout_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    let info = after_warmup(600, 300, || {
        assert!(matches!(now(closed_timeout(true)), Err(E::Down)));
    });
    assert_none("closed failure with timeout", info);
    assert!(matches!(now(closed_timeout(false)), Ok(1)));
}

#[test]
fn open_rejection_does_not_allocate() {
    assert!(matches!(now(tripped(true)), Err(E::Down)));
    let info = after_warmup(10, 1000, || {
        assert!(matches!(
            now(tripped(false)),
            Err(E::Breaker(BreakerError::Open { .. }))
        ));
    });
    assert_none("open rejection", info);
}

/// On a multi-thread runtime the first rejection arms the breaker (and starts the coarse
/// clock's thread, outside the measured calls); armed rejections allocate nothing either.
#[test]
fn armed_open_rejection_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    assert!(matches!(now(tripped_armed(true)), Err(E::Down)));
    assert!(now(tripped_armed(false)).is_err());
    let armed = breaker_runtime::breaker(&format!("{}::tripped_armed", module_path!()))
        .expect("the breaker");
    assert!(armed.is_armed());
    let info = after_warmup(10, 1000, || {
        assert!(matches!(
            now(tripped_armed(false)),
            Err(E::Breaker(BreakerError::Open { .. }))
        ));
    });
    assert!(armed.is_armed());
    assert_none("armed open rejection", info);
}

#[test]
fn open_rejection_with_timeout_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let _in_runtime = rt.enter();
    assert!(matches!(now(tripped_timeout(true)), Err(E::Down)));
    let info = after_warmup(10, 1000, || {
        assert!(matches!(
            now(tripped_timeout(false)),
            Err(E::Breaker(BreakerError::Open { .. }))
        ));
    });
    assert_none("open rejection with timeout", info);
}

/// The one allocation on a call path: a fresh breaker's failure window grows (doubling) while it
/// fills towards `threshold`. It keeps its capacity for the life of the process (closing or
/// opening the breaker clears it without shrinking), so this happens at most
/// `log2(threshold) + 2` times per breaker, ever.
#[test]
fn failure_window_grows_only_while_filling() {
    // A success first: the breaker itself is created at the first call.
    assert!(matches!(now(filling(false)), Ok(1)));
    let growth = measure(|| {
        for _ in 0..63 {
            assert!(matches!(now(filling(true)), Err(E::Down)));
        }
    });
    println!(
        "filling a window of 63 failures (threshold 64): {} allocations, {} bytes",
        growth.count_total, growth.bytes_total
    );
    assert!(growth.count_total > 0, "the window was expected to grow");
    assert!(
        growth.count_total <= 64_u64.ilog2() as u64 + 2,
        "more growth than doubling allows: {growth:?}"
    );
    // Full now: further failures of the same window cost nothing (the 64th trips the breaker, so
    // stop at the 63rd).
    assert!(matches!(now(filling(false)), Ok(1)));
}

/// A call abandoned by `timeout` arms a tokio `Sleep`, which lives inside the call's future: the
/// breaker adds no allocation to what the same `tokio::time::sleep` costs on this runtime.
#[test]
fn timed_out_call_allocates_no_more_than_a_bare_sleep() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let timed_out = |n: usize| {
        rt.block_on(async {
            for _ in 0..n {
                let r = hangs().await;
                assert!(matches!(r, Err(E::Breaker(BreakerError::Timeout { .. }))));
            }
        });
    };
    let bare_sleep = |n: usize| {
        rt.block_on(async {
            for _ in 0..n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    };
    // 40 timeouts grow the failure window to a capacity of 64; the 20 measured stay inside it.
    timed_out(40);
    bare_sleep(3);
    let breaker = measure(|| timed_out(20));
    let baseline = measure(|| bare_sleep(20));
    println!(
        "20 timed-out calls: {} allocations; 20 bare sleeps: {} allocations",
        breaker.count_total, baseline.count_total
    );
    assert!(
        breaker.count_total <= baseline.count_total,
        "timed-out calls: {breaker:?}; bare sleeps: {baseline:?}"
    );
}
