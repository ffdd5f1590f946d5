//! Arming OPEN rejections for the coarse clock: who arms, what disarms, and that an armed
//! rejection never outlives OPEN.
//!
//! These run on real time, unlike the rest of the suite: arming exists only where tokio's time
//! cannot be paused (a multi-thread runtime, the tokio clock), and what they check is the
//! coarse clock thread against the real clock. Paused time is checked to stay exact (never
//! armed) in `tests/tests/behaviour.rs::paused_open_ends_exactly_at_open_for`. Bounds are the
//! design's own (`GUARD`), held with 4 busy loops on a 2-core machine.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn leaked(config: Config, clock: Option<Arc<dyn Clock>>) -> &'static Breaker {
    Box::leak(Box::new(Breaker::new("armed-test", config, None, clock)))
}

fn fail(b: &'static Breaker) {
    let permit = b.admit().expect("admitted");
    let failed = permit.settle::<Result<(), ()>>(&Err(()), None, Started::NONE, |_, _| {});
    assert!(failed);
}

fn open_for(d: Duration) -> Config {
    Config::new().threshold(1).open_for(d)
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime")
}

#[test]
fn a_rejection_on_a_multi_thread_runtime_arms_and_the_next_ones_use_the_coarse_clock() {
    let rt = multi_thread();
    let _entered = rt.enter();
    let b = leaked(open_for(Duration::from_secs(60)), None);
    fail(b);
    assert!(!b.is_armed(), "opening alone does not arm");
    let r = b.admit().expect_err("rejected");
    assert!(b.is_armed(), "the first rejection arms");
    let first = r.retry_after().expect("a wait");
    assert!(first <= Duration::from_secs(60), "{first:?}");
    for _ in 0..1000 {
        let r = b.admit().expect_err("rejected");
        let wait = r.retry_after().expect("a wait");
        assert!(
            wait > Duration::from_secs(59) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
    assert_eq!(b.counters().rejections, 1001);
}

#[test]
fn current_thread_runtimes_no_runtime_and_custom_clocks_never_arm() {
    // Outside any runtime.
    let b = leaked(open_for(Duration::from_secs(60)), None);
    fail(b);
    b.admit().expect_err("rejected");
    assert!(!b.is_armed());
    // On a current-thread runtime (where tokio's time may be paused).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let b = leaked(open_for(Duration::from_secs(60)), None);
    rt.block_on(async {
        fail(b);
        b.admit().expect_err("rejected");
    });
    assert!(!b.is_armed());
    // A clock of the user's own, on a multi-thread runtime.
    let mt = multi_thread();
    let _entered = mt.enter();
    let b = leaked(
        open_for(Duration::from_secs(60)),
        Some(Arc::new(TokioClock) as Arc<dyn Clock>),
    );
    fail(b);
    b.admit().expect_err("rejected");
    assert!(
        !b.is_armed(),
        "a custom clock (even one that wraps tokio's) is never armed"
    );
}

#[test]
fn an_open_too_short_to_guard_is_not_armed() {
    let rt = multi_thread();
    let _entered = rt.enter();
    let b = leaked(open_for(Duration::from_millis(2)), None);
    fail(b);
    b.admit().expect_err("rejected");
    assert!(!b.is_armed());
}

#[test]
fn forcing_reset_and_a_new_open_disarm() {
    let rt = multi_thread();
    let _entered = rt.enter();
    let b = leaked(open_for(Duration::from_secs(60)), None);
    for _ in 0..200 {
        fail(b);
        b.admit().expect_err("rejected");
        assert!(b.is_armed());
        // The console polling the state changes nothing.
        assert_eq!(b.state(), State::Open);
        assert!(b.is_armed(), "a read of the state disarmed");
        // Forced closed: admitted at once, from this thread and from another.
        b.apply(Some(Forced::Closed));
        assert!(!b.is_armed());
        drop(b.admit().expect("forced closed admits"));
        std::thread::scope(|s| {
            s.spawn(|| drop(b.admit().expect("forced closed admits on another thread")));
        });
        // Forced open: held open, no wait, never armed.
        b.apply(Some(Forced::Open));
        assert_eq!(b.admit().expect_err("forced open").retry_after(), None);
        assert!(!b.is_armed());
        b.apply(None);
        drop(b.admit().expect("released"));
    }
}

#[test]
fn armed_rejections_end_with_open_for() {
    let rt = multi_thread();
    let _entered = rt.enter();
    let open_for_ = Duration::from_millis(30);
    let b = leaked(open_for(open_for_), None);
    let mut latest = Duration::ZERO;
    for _ in 0..20 {
        let before = Instant::now();
        fail(b);
        let after = Instant::now();
        b.admit().expect_err("rejected");
        assert!(b.is_armed());
        let end = after + open_for_;
        loop {
            let asked = Instant::now();
            match b.admit() {
                Ok(permit) => {
                    assert!(
                        Instant::now() >= before + open_for_,
                        "admitted before OPEN ended"
                    );
                    assert!(!permit.settle::<Result<(), ()>>(
                        &Ok(()),
                        None,
                        Started::NONE,
                        |_, _| {}
                    ));
                    break;
                }
                Err(r) => {
                    let wait = r.retry_after().expect("a wait");
                    assert!(wait <= open_for_, "{wait:?}");
                    latest = latest.max(asked.saturating_duration_since(end));
                }
            }
        }
        assert_eq!(b.state(), State::Closed);
    }
    // A call asked after OPEN ended is admitted: the last `GUARD` of OPEN is decided on the
    // real clock, so only a thread kept off the CPU for longer than that right after reading
    // the coarse time (with the ticker starved too) could be rejected late.
    assert!(
        latest < coarse::GUARD,
        "rejected a call asked {latest:?} after OPEN ended"
    );
}

#[test]
fn a_stopped_coarse_clock_falls_back_to_the_real_one() {
    let rt = multi_thread();
    let _entered = rt.enter();
    let open = Duration::from_secs(3);
    let b = leaked(open_for(open), None);
    fail(b);
    let after = Instant::now();
    b.admit().expect_err("rejected");
    assert!(b.is_armed());
    // No armed rejection for 64 ticks (here, or in the tests running beside this one): the
    // ticker stops and the coarse clock reads 0.
    while coarse::now() != 0 {
        assert!(
            Instant::now() < after + open - Duration::from_millis(500),
            "the coarse clock never stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Still armed; the rejection is decided on the real clock, and it starts the ticker again.
    assert!(b.is_armed());
    let wait = b
        .admit()
        .expect_err("still OPEN")
        .retry_after()
        .expect("a wait");
    assert!(
        wait > Duration::from_millis(400) && wait <= open,
        "{wait:?}"
    );
    assert_ne!(
        coarse::now(),
        0,
        "the rejection did not restart the coarse clock"
    );
    while Instant::now() < after + open {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(b.admit().expect("OPEN ended"));
}

#[test]
fn dropping_the_runtime_that_armed_does_not_hold_open() {
    let b = leaked(open_for(Duration::from_millis(20)), None);
    let after;
    {
        let rt = multi_thread();
        let _entered = rt.enter();
        fail(b);
        after = Instant::now();
        b.admit().expect_err("rejected");
        assert!(b.is_armed());
    }
    b.admit().expect_err("still OPEN after the runtime is gone");
    while Instant::now() < after + Duration::from_millis(20) {
        std::hint::spin_loop();
    }
    drop(b.admit().expect("OPEN ended without a runtime"));
}

#[test]
fn a_runtime_without_timers_arms_without_a_panic() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime without enable_time");
    let _entered = rt.enter();
    let b = leaked(open_for(Duration::from_secs(60)), None);
    fail(b);
    b.admit().expect_err("rejected");
    assert!(b.is_armed());
}
