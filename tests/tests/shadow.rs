//! Shadow mode (`mode = "shadow"`, `Breaker::builder(..).mode(..)`, `Handle::set_shadow`) on
//! paused tokio time: the breaker counts, opens, probes, recovers and alerts as it would, but
//! every call runs and returns the function's own result; no call is rejected, abandoned at its
//! deadline or sent to the fallback. An operator's force-open still stops calls. Every test has
//! breakers of its own (breakers are process-wide).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{
    AlertKind, Breaker, BreakerError, EventKind, Fault, Handle, Mode, State, breaker,
    circuit_breaker,
};
use breaker_tests::{Recorder, TestError};
use tokio::time::{Instant, advance, sleep};

fn handle(name: &str) -> Handle {
    breaker(name).unwrap_or_else(|| panic!("no breaker named {name}"))
}

/// Calls of the primaries and of the fallbacks, one pair per test.
struct Calls {
    primary: AtomicU32,
    fallback: AtomicU32,
}

impl Calls {
    const fn new() -> Self {
        Calls {
            primary: AtomicU32::new(0),
            fallback: AtomicU32::new(0),
        }
    }
}

static TRIP: Calls = Calls::new();
static TRIP_FAIL: AtomicU32 = AtomicU32::new(1);

async fn trip_backup() -> Result<u32, TestError> {
    TRIP.fallback.fetch_add(1, SeqCst);
    Ok(99)
}

#[circuit_breaker(
    name = "shadow.trip",
    threshold = 3,
    window = "10s",
    open_for = "30s",
    fallback = trip_backup,
    mode = "shadow"
)]
async fn trip() -> Result<u32, TestError> {
    TRIP.primary.fetch_add(1, SeqCst);
    if TRIP_FAIL.load(SeqCst) == 1 {
        Err(TestError::Down("trip"))
    } else {
        Ok(7)
    }
}

#[tokio::test(start_paused = true)]
async fn a_shadow_breaker_opens_probes_and_recovers_but_runs_every_call() {
    let rec = Recorder::install();
    let h = handle("shadow.trip");
    assert!(h.is_shadow());
    assert_eq!(h.config().mode, Mode::Shadow);
    for _ in 0..3 {
        // A counted failure: the function's own error, not the fallback's answer.
        assert_eq!(trip().await, Err(TestError::Down("trip")));
    }
    assert_eq!(h.state(), State::Open);
    for _ in 0..10 {
        assert_eq!(
            trip().await,
            Err(TestError::Down("trip")),
            "OPEN: still runs"
        );
    }
    assert_eq!(TRIP.primary.load(SeqCst), 13, "every call ran");
    assert_eq!(TRIP.fallback.load(SeqCst), 0, "the fallback never ran");
    let c = h.counters();
    assert_eq!(
        (c.failures, c.rejections, c.shadow_rejections, c.fallbacks),
        (3, 0, 10, 0),
        "calls OPEN would have rejected are counted apart, their results unjudged"
    );
    assert_eq!(c.calls, 13);
    // The probe after `open_for` is judged: a success closes the breaker.
    advance(Duration::from_secs(30)).await;
    TRIP_FAIL.store(0, SeqCst);
    assert_eq!(trip().await, Ok(7));
    assert_eq!(h.state(), State::Closed);
    assert_eq!(
        rec.transitions("shadow.trip"),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    let alerts: Vec<_> = rec
        .events("shadow.trip")
        .into_iter()
        .filter_map(|e| match e {
            EventKind::Alert(a) => Some((a.kind, a.shadow)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alerts,
        [(AlertKind::Opened, true), (AlertKind::Recovered, true)],
        "alerted, marked shadow"
    );
    let fallbacks = rec
        .events("shadow.trip")
        .into_iter()
        .filter(|e| matches!(e, EventKind::Fallback { .. } | EventKind::Rejected { .. }))
        .count();
    assert_eq!(fallbacks, 0, "no rejection or fallback event in shadow");
}

static PLAIN: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "shadow.plain",
    threshold = 1,
    open_for = "30s",
    mode = "shadow"
)]
async fn plain(fail: bool) -> Result<u32, TestError> {
    PLAIN.fetch_add(1, SeqCst);
    if fail {
        Err(TestError::NotFound)
    } else {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn without_a_fallback_an_open_shadow_breaker_returns_the_functions_result() {
    let h = handle("shadow.plain");
    assert_eq!(plain(true).await, Err(TestError::NotFound));
    assert_eq!(h.state(), State::Open);
    assert_eq!(plain(false).await, Ok(1), "not BreakerError::Open");
    assert_eq!(plain(true).await, Err(TestError::NotFound));
    assert_eq!(PLAIN.load(SeqCst), 3);
    let c = h.counters();
    assert_eq!(
        (c.failures, c.successes, c.shadow_rejections),
        (1, 0, 2),
        "the OPEN calls are unjudged: neither success nor failure"
    );
    // Unjudged calls do not move the machine: still OPEN for its 30 s, then HALF_OPEN.
    advance(Duration::from_secs(29)).await;
    assert_eq!(h.state(), State::Open);
    advance(Duration::from_secs(1)).await;
    assert_eq!(h.state(), State::HalfOpen);
}

static SLOW: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "shadow.slow", threshold = 1, open_for = "30s", timeout = "100ms", fallback = slow_backup, mode = "shadow")]
async fn slow(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(SLOW.fetch_add(1, SeqCst))
}

async fn slow_backup(_hold: Duration) -> Result<u32, TestError> {
    Ok(99)
}

#[tokio::test(start_paused = true)]
async fn a_shadow_deadline_counts_the_timeout_and_lets_the_call_run_on() {
    let h = handle("shadow.slow");
    let began = Instant::now();
    let call = tokio::spawn(slow(Duration::from_millis(500)));
    // Past the deadline: the timeout is counted (a hung provider trips a shadow breaker)...
    sleep(Duration::from_millis(150)).await;
    assert_eq!(h.state(), State::Open, "the deadline counted the timeout");
    assert_eq!(h.counters().timeouts, 1);
    assert!(!call.is_finished(), "...and the call runs on");
    // ...to its own answer, not the fallback's, not BreakerError::Timeout.
    assert_eq!(call.await.unwrap(), Ok(0));
    assert_eq!(began.elapsed(), Duration::from_millis(500));
    let c = h.counters();
    assert_eq!(
        (c.failures, c.timeouts, c.successes, c.fallbacks),
        (1, 1, 0, 0),
        "the late answer is not counted again"
    );
    // OPEN now: the next slow call runs unjudged, with no deadline at all.
    assert_eq!(slow(Duration::from_secs(5)).await, Ok(1));
    assert_eq!(h.counters().timeouts, 1);
    assert_eq!(h.counters().shadow_rejections, 1);
}

static SWITCH: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "shadow.switch", threshold = 1, open_for = "30s")]
async fn switch() -> Result<u32, TestError> {
    SWITCH.fetch_add(1, SeqCst);
    Err(TestError::Down("switch"))
}

#[tokio::test(start_paused = true)]
async fn an_operator_switches_shadow_on_off_and_back_to_the_declared_mode() {
    let h = handle("shadow.switch");
    assert!(!h.is_shadow());
    assert_eq!(h.shadow_override(), None);
    assert_eq!(switch().await, Err(TestError::Down("switch")));
    assert!(switch().await.unwrap_err().is_open(), "enforcing: rejected");
    assert_eq!(SWITCH.load(SeqCst), 1);

    h.set_shadow(Some(true)).await.unwrap();
    assert!(h.is_shadow());
    assert_eq!(h.shadow_override(), Some(true));
    assert_eq!(
        switch().await,
        Err(TestError::Down("switch")),
        "shadow: runs"
    );
    assert_eq!(SWITCH.load(SeqCst), 2);

    h.set_shadow(Some(false)).await.unwrap();
    assert!(switch().await.unwrap_err().is_open(), "enforce again");

    h.set_shadow(Some(true)).await.unwrap();
    h.set_shadow(None).await.unwrap();
    assert!(!h.is_shadow(), "back to the declared mode (enforce)");
    assert!(switch().await.unwrap_err().is_open());
    assert_eq!(SWITCH.load(SeqCst), 2);
    let c = h.counters();
    assert_eq!((c.rejections, c.shadow_rejections), (3, 1));
}

static FORCED: Calls = Calls::new();

async fn forced_backup() -> Result<u32, TestError> {
    FORCED.fallback.fetch_add(1, SeqCst);
    Ok(99)
}

#[circuit_breaker(name = "shadow.forced", fallback = forced_backup, mode = "shadow")]
async fn forced() -> Result<u32, TestError> {
    FORCED.primary.fetch_add(1, SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn an_operators_force_open_wins_over_shadow() {
    let rec = Recorder::install();
    let h = handle("shadow.forced");
    h.force_open().await.unwrap();
    assert_eq!(forced().await, Ok(99), "forced open: the fallback serves");
    assert_eq!(
        (FORCED.primary.load(SeqCst), FORCED.fallback.load(SeqCst)),
        (0, 1)
    );
    let c = h.counters();
    assert_eq!((c.rejections, c.shadow_rejections, c.fallbacks), (1, 0, 1));
    h.reset().await.unwrap();
    assert_eq!(forced().await, Ok(1));
    let alerts: Vec<_> = rec
        .events("shadow.forced")
        .into_iter()
        .filter_map(|e| match e {
            EventKind::Alert(a) => Some((a.kind, a.shadow)),
            _ => None,
        })
        .collect();
    assert_eq!(
        alerts,
        [(AlertKind::Opened, false), (AlertKind::Recovered, true)],
        "forced open, calls are refused for real: not marked shadow"
    );
}

static SWAP: Calls = Calls::new();

async fn swap_backup() -> Result<u32, TestError> {
    SWAP.fallback.fetch_add(1, SeqCst);
    Ok(99)
}

#[circuit_breaker(name = "shadow.swap", fallback = swap_backup, mode = "shadow")]
async fn swap() -> Result<u32, TestError> {
    SWAP.primary.fetch_add(1, SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_swap_is_dormant_in_shadow_and_wakes_when_enforcing() {
    let h = handle("shadow.swap");
    h.swap(true).await.unwrap();
    assert!(h.swapped());
    assert_eq!(
        swap().await,
        Ok(1),
        "shadow: the function, not the fallback"
    );
    assert_eq!(SWAP.fallback.load(SeqCst), 0);
    h.set_shadow(Some(false)).await.unwrap();
    assert_eq!(
        swap().await,
        Ok(99),
        "enforcing: swapped, the fallback first"
    );
    assert_eq!(SWAP.fallback.load(SeqCst), 1);
    h.set_shadow(None).await.unwrap();
    assert_eq!(swap().await, Ok(1));
    assert_eq!(SWAP.primary.load(SeqCst), 2);
}

static HELD: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "shadow.bulkhead", max_concurrent = 1, mode = "shadow")]
async fn held(hold: Duration) -> Result<u32, TestError> {
    HELD.fetch_add(1, SeqCst);
    sleep(hold).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_in_shadow_counts_but_never_refuses() {
    let h = handle("shadow.bulkhead");
    let a = tokio::spawn(held(Duration::from_secs(10)));
    let b = tokio::spawn(held(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    assert_eq!(HELD.load(SeqCst), 2, "both run");
    assert_eq!(h.bulkhead_load(), Some((2, 1)), "over the limit, and held");
    assert_eq!(h.counters().shadow_rejections, 1);
    assert_eq!((a.await.unwrap(), b.await.unwrap()), (Ok(1), Ok(1)));
    assert_eq!(h.bulkhead_load(), Some((0, 1)), "every place given back");
    // Enforcing again: the bulkhead refuses.
    h.set_shadow(Some(false)).await.unwrap();
    let a = tokio::spawn(held(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    assert_eq!(
        held(Duration::ZERO).await,
        Err(TestError::Breaker(BreakerError::Full {
            breaker: "shadow.bulkhead",
            max_concurrent: 1
        }))
    );
    assert_eq!(a.await.unwrap(), Ok(1));
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
}

static HALF: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "shadow.half", threshold = 1, open_for = "30s", mode = "shadow")]
async fn half(hold: Duration, fail: bool) -> Result<u32, TestError> {
    HALF.fetch_add(1, SeqCst);
    sleep(hold).await;
    if fail {
        Err(TestError::Down("half"))
    } else {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn half_open_judges_the_probe_and_runs_the_rest_unjudged() {
    let h = handle("shadow.half");
    assert!(half(Duration::ZERO, true).await.is_err());
    advance(Duration::from_secs(30)).await;
    // The probe (slow, failing) holds the one slot; a second call would have been rejected.
    let probe = tokio::spawn(half(Duration::from_secs(1), true));
    tokio::task::yield_now().await;
    assert_eq!(h.state(), State::HalfOpen);
    assert_eq!(half(Duration::ZERO, false).await, Ok(1), "runs, unjudged");
    assert_eq!(h.state(), State::HalfOpen, "its success did not close");
    assert_eq!(h.counters().shadow_rejections, 1);
    assert!(probe.await.unwrap().is_err());
    assert_eq!(h.state(), State::Open, "the failed probe re-opened it");
    assert_eq!(HALF.load(SeqCst), 3);
}

static FAULTY: Calls = Calls::new();

async fn faulty_backup() -> Result<u32, TestError> {
    FAULTY.fallback.fetch_add(1, SeqCst);
    Ok(99)
}

#[circuit_breaker(name = "shadow.faults", threshold = 100, fallback = faulty_backup, mode = "shadow")]
async fn faulty() -> Result<u32, TestError> {
    FAULTY.primary.fetch_add(1, SeqCst);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn injected_faults_are_counted_and_the_call_still_runs() {
    let h = handle("shadow.faults");
    h.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .unwrap();
    assert_eq!(
        faulty().await,
        Ok(1),
        "an injected error: counted, the call runs"
    );
    assert_eq!(h.counters().failures, 1);
    h.inject(Some(Fault::Open), None).await.unwrap();
    assert_eq!(faulty().await, Ok(1));
    assert_eq!(h.counters().shadow_rejections, 1);
    // No `timeout` declared: an injected timeout is counted at once and the call runs.
    h.inject(Some(Fault::Timeout), None).await.unwrap();
    assert_eq!(faulty().await, Ok(1));
    assert_eq!(h.counters().timeouts, 1);
    h.inject(None, None).await.unwrap();
    assert_eq!(
        (FAULTY.primary.load(SeqCst), FAULTY.fallback.load(SeqCst)),
        (3, 0)
    );
}

static TIMED_FAULT: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(
    name = "shadow.timed_fault",
    threshold = 100,
    timeout = "200ms",
    mode = "shadow"
)]
async fn timed_fault() -> Result<u32, TestError> {
    Ok(TIMED_FAULT.fetch_add(1, SeqCst))
}

#[tokio::test(start_paused = true)]
async fn an_injected_timeout_under_a_deadline_counts_then_runs_the_function() {
    let h = handle("shadow.timed_fault");
    h.inject(Some(Fault::Timeout), None).await.unwrap();
    let began = Instant::now();
    assert_eq!(
        timed_fault().await,
        Ok(0),
        "not a year's wait, not a Timeout"
    );
    assert_eq!(began.elapsed(), Duration::from_millis(200));
    assert_eq!(h.counters().timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_built_shadow_breaker_runs_calls_and_never_its_fallback() {
    let b = Breaker::builder("shadow.built")
        .threshold(1)
        .mode(Mode::Shadow)
        .build()
        .expect("valid settings");
    let ran = AtomicU32::new(0);
    let down = || async {
        ran.fetch_add(1, SeqCst);
        Err::<u32, _>(TestError::Down("built"))
    };
    assert_eq!(b.call(down).await, Err(TestError::Down("built")));
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.call(down).await, Err(TestError::Down("built")));
    let served = b
        .call_with_fallback(down, || async { Ok::<u32, TestError>(99) })
        .await;
    assert_eq!(
        served,
        Err(TestError::Down("built")),
        "no fallback in shadow"
    );
    assert_eq!(ran.load(SeqCst), 3);
    assert_eq!(b.counters().shadow_rejections, 2);
    // The same name with another mode is another breaker's settings: refused.
    let other = Breaker::builder("shadow.built").threshold(1).build();
    assert!(other.is_err(), "{other:?}");
}

#[tokio::test(start_paused = true)]
async fn the_mode_is_an_override_key() {
    let mut c = breaker_runtime::Config::new();
    c.set("mode", "shadow").unwrap();
    assert_eq!(c.mode, Mode::Shadow);
    c.set("mode", "enforce").unwrap();
    assert_eq!(c.mode, Mode::Enforce);
    let e = c.set("mode", "shadwo").unwrap_err().to_string();
    assert!(
        e.contains("unknown mode `shadwo`; expected `shadow` or `enforce`"),
        "{e}"
    );
}
