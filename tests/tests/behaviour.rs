//! Behaviour of annotated functions, on paused tokio time. Every test has breakers of its own
//! (breakers are process-wide and tests run in parallel).

use std::cell::Cell;
use std::future::Future as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{BreakerError, Forced, State, breaker, circuit_breaker};
use breaker_tests::{Recorder, TestError};
use tokio::sync::Semaphore;
use tokio::time::{Instant, advance, sleep};

fn handle(name: &str) -> breaker_runtime::Handle {
    breaker(name).unwrap_or_else(|| panic!("no breaker named {name}"))
}

// ---- trip, window, rejection without calling ----

static TRIP_CALLS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "trip", threshold = 3, window = "10s", open_for = "30s")]
async fn trip(fail: bool) -> Result<u32, TestError> {
    TRIP_CALLS.fetch_add(1, SeqCst);
    if fail {
        Err(TestError::Down("trip"))
    } else {
        Ok(7)
    }
}

#[tokio::test(start_paused = true)]
async fn opens_at_threshold_and_rejects_without_calling() {
    let rec = Recorder::install();
    assert_eq!(trip(true).await, Err(TestError::Down("trip")));
    // Successes in between do not reset the count.
    assert_eq!(trip(false).await, Ok(7));
    assert_eq!(trip(true).await, Err(TestError::Down("trip")));
    assert_eq!(handle("trip").state(), State::Closed);
    assert_eq!(trip(true).await, Err(TestError::Down("trip")));
    assert_eq!(handle("trip").state(), State::Open);
    let before = TRIP_CALLS.load(SeqCst);
    for _ in 0..100 {
        let e = trip(false).await.unwrap_err();
        let TestError::Breaker(BreakerError::Open {
            breaker,
            retry_after,
        }) = e
        else {
            panic!("{e:?}")
        };
        assert_eq!(breaker, "trip");
        assert_eq!(retry_after, Some(Duration::from_secs(30)));
    }
    assert_eq!(
        TRIP_CALLS.load(SeqCst),
        before,
        "an open breaker called the function"
    );
    let c = handle("trip").counters();
    assert_eq!((c.successes, c.failures, c.rejections), (1, 3, 100));
    assert_eq!(c.calls, 104);
    assert_eq!(rec.transitions("trip"), [(State::Closed, State::Open)]);
}

// ---- OPEN ends exactly at open_for on paused time; real time uses the coarse clock ----

#[circuit_breaker(name = "exact_end", threshold = 1, open_for = "30s")]
async fn exact_end(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("exact_end"))
    } else {
        Ok(1)
    }
}

/// Paused time runs on a current-thread runtime, where rejections are never armed for the
/// coarse clock: right after `advance`, before any other task ran, the first call is the probe.
#[tokio::test(start_paused = true)]
async fn paused_open_ends_exactly_at_open_for() {
    for _ in 0..3 {
        exact_end(true).await.unwrap_err();
        advance(Duration::from_secs(30) - Duration::from_nanos(1)).await;
        let e = exact_end(false).await.unwrap_err();
        assert_eq!(
            e,
            TestError::Breaker(BreakerError::Open {
                breaker: "exact_end",
                retry_after: Some(Duration::from_nanos(1)),
            })
        );
        assert!(!handle("exact_end").is_armed());
        advance(Duration::from_nanos(1)).await;
        assert_eq!(
            exact_end(false).await,
            Ok(1),
            "the probe is the first call after OPEN"
        );
        assert_eq!(handle("exact_end").state(), State::Closed);
    }
}

#[circuit_breaker(name = "real_time_end", threshold = 1, open_for = "40ms")]
async fn real_time_end(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("real_time_end"))
    } else {
        Ok(1)
    }
}

/// On a multi-thread runtime the first rejection arms the breaker: the next ones are decided on
/// the coarse clock. They report a wait no longer than `open_for`, and the first call asked after
/// OPEN ended is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_time_open_rejects_on_the_coarse_clock_and_ends_on_time() {
    let open_for = Duration::from_millis(40);
    for _ in 0..5 {
        let before = std::time::Instant::now();
        real_time_end(true).await.unwrap_err();
        let after = std::time::Instant::now();
        let mut rejections = 0_u32;
        loop {
            let asked = std::time::Instant::now();
            match real_time_end(false).await {
                Ok(1) => {
                    assert!(
                        std::time::Instant::now() >= before + open_for,
                        "admitted before OPEN ended"
                    );
                    break;
                }
                Err(TestError::Breaker(BreakerError::Open {
                    retry_after: Some(wait),
                    ..
                })) => {
                    assert!(wait <= open_for, "{wait:?}");
                    assert!(
                        // The runtime's `GUARD`: its last 10 ms are decided on the real clock.
                        asked < after + open_for + Duration::from_millis(10),
                        "rejected a call asked {:?} after OPEN ended",
                        asked - (after + open_for)
                    );
                    if rejections == 0 {
                        assert!(
                            handle("real_time_end").is_armed(),
                            "the first rejection arms"
                        );
                    }
                    rejections += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(rejections > 100, "only {rejections} rejections in 40 ms");
        assert!(
            !handle("real_time_end").is_armed(),
            "the probe's transition disarms"
        );
    }
}

#[circuit_breaker(name = "sliding", threshold = 3, window = "10s")]
async fn sliding() -> Result<(), TestError> {
    Err(TestError::Down("sliding"))
}

#[tokio::test(start_paused = true)]
async fn window_slides_so_old_failures_expire() {
    // Two failures, then one every 6 s: never three within 10 s... until two land close.
    sliding().await.unwrap_err();
    advance(Duration::from_secs(6)).await;
    sliding().await.unwrap_err();
    advance(Duration::from_secs(6)).await;
    // The first failure (12 s ago) has left the window: two inside.
    sliding().await.unwrap_err();
    assert_eq!(handle("sliding").failures_in_window(), 2);
    assert_eq!(handle("sliding").state(), State::Closed);
    advance(Duration::from_secs(3)).await;
    // 9 s, 3 s and 0 s ago: three inside the window.
    sliding().await.unwrap_err();
    assert_eq!(handle("sliding").state(), State::Open);
}

// ---- HALF_OPEN: probe limit, success closes, failure re-opens with backoff ----

static PROBE_GATE: Semaphore = Semaphore::const_new(0);
static PROBE_FAIL: AtomicBool = AtomicBool::new(true);
static PROBE_RUNNING: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "probes", threshold = 1, open_for = "10s", half_open_probes = 3)]
async fn probed() -> Result<(), TestError> {
    if PROBE_FAIL.load(SeqCst) {
        return Err(TestError::Down("probes"));
    }
    PROBE_RUNNING.fetch_add(1, SeqCst);
    let _permit = PROBE_GATE
        .acquire()
        .await
        .map_err(|_| TestError::NotFound)?;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_the_probe_limit_under_concurrency() {
    let rec = Recorder::install();
    probed().await.unwrap_err();
    assert_eq!(handle("probes").state(), State::Open);
    PROBE_FAIL.store(false, SeqCst);
    advance(Duration::from_secs(10)).await;
    assert_eq!(handle("probes").state(), State::HalfOpen);
    let calls: Vec<_> = (0..12).map(|_| tokio::spawn(probed())).collect();
    tokio::task::yield_now().await;
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(PROBE_RUNNING.load(SeqCst), 3, "probes admitted at once");
    PROBE_GATE.add_permits(100);
    let mut ok = 0;
    let mut rejected = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) if e.is_open() => rejected += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, rejected), (3, 9));
    assert_eq!(handle("probes").state(), State::Closed);
    assert_eq!(
        rec.transitions("probes"),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

static BACKOFF_FAIL: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(
    name = "backoff",
    threshold = 1,
    open_for = "10s",
    max_open_for = "35s"
)]
async fn backoff() -> Result<(), TestError> {
    if BACKOFF_FAIL.load(SeqCst) {
        Err(TestError::Down("backoff"))
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_for_twice_as_long_up_to_the_max() {
    backoff().await.unwrap_err();
    let h = handle("backoff");
    assert_eq!(h.retry_after(), Some(Duration::from_secs(10)));
    // Each failed probe doubles the open period (less up to 10 % jitter), capped at 35 s.
    for max in [20u64, 35, 35] {
        advance(h.retry_after().unwrap()).await;
        assert_eq!(h.state(), State::HalfOpen);
        backoff().await.unwrap_err();
        let open = h.retry_after().unwrap();
        assert!(open <= Duration::from_secs(max), "{open:?} > {max}s");
        assert!(
            open >= Duration::from_secs(max) * 9 / 10,
            "{open:?} too short"
        );
    }
    BACKOFF_FAIL.store(false, SeqCst);
    advance(h.retry_after().unwrap()).await;
    backoff().await.unwrap();
    assert_eq!(h.state(), State::Closed);
    // After a close, the next opening starts from `open_for` again.
    BACKOFF_FAIL.store(true, SeqCst);
    backoff().await.unwrap_err();
    assert_eq!(h.retry_after(), Some(Duration::from_secs(10)));
}

// ---- a probe that is cancelled, panics or hangs never wedges HALF_OPEN ----

static CANCEL_MODE: AtomicU32 = AtomicU32::new(0); // 0 fail, 1 hang, 2 panic, 3 succeed

#[circuit_breaker(name = "cancel", threshold = 1, open_for = "5s")]
async fn cancellable() -> Result<(), TestError> {
    match CANCEL_MODE.load(SeqCst) {
        0 => Err(TestError::Down("cancel")),
        1 => {
            sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        2 => panic!("provider client bug"),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn cancelled_probe_frees_its_permit() {
    cancellable().await.unwrap_err();
    advance(Duration::from_secs(5)).await;
    CANCEL_MODE.store(1, SeqCst);
    // The probe hangs; dropping its future (as a timeout or select! would) frees the permit.
    let probe = tokio::time::timeout(Duration::from_secs(1), cancellable()).await;
    assert!(
        probe.is_err(),
        "the hung probe should have been cut off: {probe:?}"
    );
    assert_eq!(handle("cancel").counters().cancelled, 1);
    CANCEL_MODE.store(3, SeqCst);
    cancellable()
        .await
        .expect("the freed permit admits the next probe");
    assert_eq!(handle("cancel").state(), State::Closed);
}

#[circuit_breaker(name = "panics", threshold = 1, open_for = "5s")]
async fn panicky(mode: u32) -> Result<(), TestError> {
    match mode {
        0 => Err(TestError::Down("panics")),
        1 => panic!("provider client bug"),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn panicking_probe_is_a_failure_and_the_panic_is_resumed() {
    panicky(0).await.unwrap_err();
    advance(Duration::from_secs(5)).await;
    let joined = tokio::spawn(panicky(1)).await;
    assert!(
        joined.unwrap_err().is_panic(),
        "the panic must reach the caller"
    );
    let h = handle("panics");
    assert_eq!(h.counters().panics, 1);
    assert_eq!(
        h.state(),
        State::Open,
        "a panicking probe counts as a failure"
    );
}

#[tokio::test(start_paused = true)]
async fn panic_in_closed_state_counts_as_failure() {
    #[circuit_breaker(name = "panics_closed", threshold = 2)]
    async fn f(p: bool) -> Result<(), TestError> {
        assert!(!p, "boom");
        Ok(())
    }
    assert!(tokio::spawn(f(true)).await.unwrap_err().is_panic());
    assert!(tokio::spawn(f(true)).await.unwrap_err().is_panic());
    assert_eq!(handle("panics_closed").state(), State::Open);
    assert!(f(false).await.unwrap_err().is_open());
}

static HANG: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "hung", threshold = 1, open_for = "20s")]
async fn hung() -> Result<(), TestError> {
    if HANG.load(SeqCst) {
        sleep(Duration::from_secs(1_000_000)).await;
    }
    Err(TestError::Down("hung"))
}

#[tokio::test(start_paused = true)]
async fn hung_probe_reopens_after_its_lease_without_a_timeout() {
    HANG.store(false, SeqCst);
    hung().await.unwrap_err();
    advance(Duration::from_secs(20)).await;
    HANG.store(true, SeqCst);
    // A probe that never answers holds the only permit...
    let stuck = tokio::spawn(hung());
    tokio::task::yield_now().await;
    assert!(hung().await.unwrap_err().is_open());
    // ...until its lease (`open_for`, as there is no timeout) runs out: a failed probe.
    advance(Duration::from_secs(20)).await;
    let h = handle("hung");
    assert_eq!(h.state(), State::Open);
    assert!(hung().await.unwrap_err().is_open());
    // The next open period ends and a new probe is admitted.
    advance(h.retry_after().unwrap()).await;
    HANG.store(false, SeqCst);
    assert_eq!(hung().await, Err(TestError::Down("hung")));
    stuck.abort();
}

static TIMED_PROBE_HANG: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "timed_probe", threshold = 1, open_for = "10s", timeout = "1s")]
async fn timed_probe() -> Result<(), TestError> {
    if TIMED_PROBE_HANG.load(SeqCst) {
        sleep(Duration::from_secs(3600)).await;
    }
    Err(TestError::Down("timed_probe"))
}

/// A probe that times out while other callers keep arriving re-opens the breaker; it used to be
/// dropped from the lease table by the next caller before its timeout was reported, leaving the
/// breaker HALF_OPEN and letting a new probe into the hung provider every `timeout`.
#[tokio::test(start_paused = true)]
async fn regression_probe_timing_out_under_traffic_reopens() {
    timed_probe().await.unwrap_err();
    advance(Duration::from_secs(10)).await;
    TIMED_PROBE_HANG.store(true, SeqCst);
    let probe = tokio::spawn(timed_probe());
    tokio::task::yield_now().await;
    advance(Duration::from_secs(1)).await;
    // Another caller arrives at the moment the lease runs out, before the probe's task runs.
    assert!(timed_probe().await.unwrap_err().is_open());
    assert!(probe.await.unwrap().unwrap_err().is_timeout());
    let h = handle("timed_probe");
    assert_eq!(h.state(), State::Open);
    assert_eq!(h.counters().timeouts, 1);
}

// ---- timeout and slow calls ----

#[circuit_breaker(name = "timeout", timeout = "1s", threshold = 2)]
async fn slow_provider(delay: Duration) -> Result<&'static str, TestError> {
    sleep(delay).await;
    Ok("answer")
}

#[tokio::test(start_paused = true)]
async fn timeout_abandons_the_call_and_counts_a_failure() {
    let start = Instant::now();
    assert_eq!(
        slow_provider(Duration::from_millis(999)).await,
        Ok("answer")
    );
    let e = slow_provider(Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(
        e,
        TestError::Breaker(BreakerError::Timeout {
            breaker: "timeout",
            after: Duration::from_secs(1)
        })
    );
    assert_eq!(start.elapsed(), Duration::from_millis(1999));
    let c = handle("timeout").counters();
    assert_eq!((c.timeouts, c.failures, c.successes), (1, 1, 1));
    assert!(
        slow_provider(Duration::from_secs(5))
            .await
            .unwrap_err()
            .is_timeout()
    );
    assert_eq!(handle("timeout").state(), State::Open);
}

#[circuit_breaker(name = "slow", slow_call = "1s", threshold = 2)]
async fn sluggish(delay: Duration) -> Result<u32, TestError> {
    sleep(delay).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn slow_success_is_returned_but_counted_as_failure() {
    assert_eq!(sluggish(Duration::from_millis(500)).await, Ok(1));
    assert_eq!(sluggish(Duration::from_secs(2)).await, Ok(1));
    let h = handle("slow");
    assert_eq!(h.counters().slow_calls, 1);
    assert_eq!(h.state(), State::Closed);
    assert_eq!(sluggish(Duration::from_secs(2)).await, Ok(1));
    assert_eq!(h.state(), State::Open);
}

// ---- fallbacks and chains ----

static PRIMARY_UP: AtomicBool = AtomicBool::new(true);
static SECONDARY_UP: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "chain.primary", fallback = secondary, threshold = 2, timeout = "3s")]
async fn primary(q: String) -> Result<String, TestError> {
    if PRIMARY_UP.load(SeqCst) {
        Ok(format!("primary:{q}"))
    } else {
        Err(TestError::Down("primary"))
    }
}

#[circuit_breaker(name = "chain.secondary", fallback = emergency, threshold = 2)]
async fn secondary(q: String) -> Result<String, TestError> {
    if SECONDARY_UP.load(SeqCst) {
        Ok(format!("secondary:{q}"))
    } else {
        Err(TestError::Down("secondary"))
    }
}

async fn emergency(_q: String) -> Result<String, TestError> {
    Ok("notice: address search is down".into())
}

#[tokio::test(start_paused = true)]
async fn fallback_chain_primary_secondary_emergency() {
    assert_eq!(primary("a".into()).await.unwrap(), "primary:a");
    PRIMARY_UP.store(false, SeqCst);
    for _ in 0..5 {
        assert_eq!(primary("b".into()).await.unwrap(), "secondary:b");
    }
    let p = handle("chain.primary");
    assert_eq!(p.state(), State::Open);
    assert_eq!(p.counters().failures, 2);
    assert_eq!(p.counters().rejections, 3);
    assert_eq!(p.counters().fallbacks, 5);
    SECONDARY_UP.store(false, SeqCst);
    for _ in 0..3 {
        assert_eq!(
            primary("c".into()).await.unwrap(),
            "notice: address search is down"
        );
    }
    assert_eq!(handle("chain.secondary").state(), State::Open);
    // Recovery: both come back; after open_for the probes close the breakers.
    PRIMARY_UP.store(true, SeqCst);
    SECONDARY_UP.store(true, SeqCst);
    advance(Duration::from_secs(30)).await;
    assert_eq!(primary("d".into()).await.unwrap(), "primary:d");
    assert_eq!(p.state(), State::Closed);
}

fn not_found_is_no_outage(e: &TestError) -> bool {
    *e != TestError::NotFound
}

#[circuit_breaker(name = "classify", threshold = 1, failure_if = not_found_is_no_outage, fallback = classify_fallback)]
async fn classified(found: bool) -> Result<u32, TestError> {
    if found {
        Ok(1)
    } else {
        Err(TestError::NotFound)
    }
}

async fn classify_fallback(_found: bool) -> Result<u32, TestError> {
    Ok(99)
}

#[tokio::test(start_paused = true)]
async fn failure_if_lets_answers_through_as_successes() {
    for _ in 0..10 {
        assert_eq!(classified(false).await, Err(TestError::NotFound));
    }
    let h = handle("classify");
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.counters().successes, 10);
    assert_eq!(h.counters().fallbacks, 0);
}

// ---- the rate rule ----

#[circuit_breaker(
    name = "rate",
    threshold = 1000,
    failure_rate = 50,
    min_calls = 10,
    window = "10s"
)]
async fn rated(fail: bool) -> Result<(), TestError> {
    if fail {
        Err(TestError::Down("rate"))
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn failure_rate_trips_once_min_calls_are_seen() {
    // 4 failures in 4 calls: 100 % but below min_calls.
    for _ in 0..4 {
        rated(true).await.unwrap_err();
    }
    assert_eq!(handle("rate").state(), State::Closed);
    for _ in 0..5 {
        rated(false).await.unwrap();
    }
    // 5 of 10 failed: 50 %.
    rated(true).await.unwrap_err();
    assert_eq!(handle("rate").state(), State::Open);
}

#[circuit_breaker(
    name = "rate_slides",
    threshold = 1000,
    failure_rate = 50,
    min_calls = 4,
    window = "8s"
)]
async fn rated_sliding(fail: bool) -> Result<(), TestError> {
    if fail {
        Err(TestError::Down("rate"))
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn failure_rate_window_slides() {
    for _ in 0..3 {
        rated_sliding(true).await.unwrap_err();
    }
    // The three failures leave the window; the new calls are 1 failure in 5.
    advance(Duration::from_secs(9)).await;
    for _ in 0..4 {
        rated_sliding(false).await.unwrap();
    }
    rated_sliding(true).await.unwrap_err();
    assert_eq!(handle("rate_slides").state(), State::Closed);
}

// ---- operator control ----

static FORCED_CALLS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "forced", threshold = 1, open_for = "1s")]
async fn forced_fn(fail: bool) -> Result<(), TestError> {
    FORCED_CALLS.fetch_add(1, SeqCst);
    if fail {
        Err(TestError::Down("forced"))
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn forced_states_hold_until_reset() {
    let h = handle("forced");
    h.force_open().await.unwrap();
    assert_eq!(h.forced(), Some(Forced::Open));
    advance(Duration::from_secs(3600)).await;
    assert_eq!(
        h.state(),
        State::Open,
        "forced open never drifts into HALF_OPEN"
    );
    let e = forced_fn(false).await.unwrap_err();
    assert_eq!(
        e,
        TestError::Breaker(BreakerError::Open {
            breaker: "forced",
            retry_after: None
        })
    );
    assert_eq!(FORCED_CALLS.load(SeqCst), 0);

    h.force_closed().await.unwrap();
    for _ in 0..10 {
        forced_fn(true).await.unwrap_err();
    }
    assert_eq!(FORCED_CALLS.load(SeqCst), 10, "forced closed keeps calling");
    assert_eq!(h.state(), State::Closed);

    h.reset().await.unwrap();
    assert_eq!(h.forced(), None);
    forced_fn(true).await.unwrap_err();
    assert_eq!(h.state(), State::Open, "normal counting after reset");
    h.reset().await.unwrap();
    assert_eq!(h.state(), State::Closed);
    forced_fn(false).await.unwrap();
}

// ---- names, methods, registry ----

#[derive(Debug)]
struct Daum;
#[derive(Debug)]
struct Juso;

impl Daum {
    #[circuit_breaker(threshold = 1)]
    async fn search(&self, fail: bool) -> Result<(), TestError> {
        if fail {
            Err(TestError::Down("daum"))
        } else {
            Ok(())
        }
    }
}

impl Juso {
    #[circuit_breaker(threshold = 1)]
    async fn search(&self, fail: bool) -> Result<(), TestError> {
        if fail {
            Err(TestError::Down("juso"))
        } else {
            Ok(())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn methods_of_two_types_get_distinct_breakers() {
    Daum.search(true).await.unwrap_err();
    assert!(Daum.search(false).await.unwrap_err().is_open());
    Juso.search(false).await.unwrap();
    assert_eq!(handle("behaviour::Daum::search").state(), State::Open);
    assert_eq!(handle("behaviour::Juso::search").state(), State::Closed);
}

#[circuit_breaker]
async fn never_called() -> Result<(), TestError> {
    Ok(())
}

#[test]
fn breakers_are_listed_before_their_first_call() {
    let names: Vec<_> = breaker_runtime::breakers()
        .iter()
        .map(|h| h.name())
        .collect();
    assert!(names.contains(&"behaviour::never_called"), "{names:?}");
    assert!(names.contains(&"trip"), "{names:?}");
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "sorted by name");
    let _ = never_called;
}

// ---- Send: annotated futures go where the original's would ----

// `Cell` is `Send` but not `Sync`: the future stays `Send` only if the body owns the value
// rather than borrowing it across an `.await`.
#[circuit_breaker(name = "send", fallback = send_fallback)]
async fn send_not_sync(c: Cell<u32>) -> Result<u32, TestError> {
    c.set(c.get() + 1);
    tokio::task::yield_now().await;
    Ok(c.get())
}

async fn send_fallback(c: Cell<u32>) -> Result<u32, TestError> {
    Ok(c.get())
}

#[circuit_breaker(name = "send_nofb")]
async fn owns_receiver(rx: std::sync::mpsc::Receiver<u32>) -> Result<u32, TestError> {
    tokio::task::yield_now().await;
    Ok(rx.try_recv().unwrap_or(0))
}

#[tokio::test]
async fn futures_are_send_when_the_originals_are() {
    assert_eq!(
        tokio::spawn(send_not_sync(Cell::new(1))).await.unwrap(),
        Ok(2)
    );
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(41).unwrap();
    assert_eq!(tokio::spawn(owns_receiver(rx)).await.unwrap(), Ok(41));
}

// ---- regressions ----

#[circuit_breaker(name = "late_origin", threshold = 1, open_for = "5s")]
async fn late_origin() -> Result<(), TestError> {
    Err(TestError::Down("late_origin"))
}

/// A breaker first seen outside any runtime (by `breakers()`, on the real clock) and then used
/// in a paused runtime created earlier: the runtime's clock reads earlier than the breaker's
/// first reading. Timestamps used to saturate at zero, so OPEN outlived `open_for`.
#[test]
fn regression_breaker_created_after_a_paused_runtime_started() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    // Let real time pass so the breaker's first reading is later than the paused clock.
    std::thread::sleep(Duration::from_millis(5));
    assert!(
        breaker_runtime::breakers()
            .iter()
            .any(|h| h.name() == "late_origin")
    );
    rt.block_on(async {
        late_origin().await.unwrap_err();
        assert_eq!(
            handle("late_origin").retry_after(),
            Some(Duration::from_secs(5))
        );
        advance(Duration::from_secs(5)).await;
        assert_eq!(handle("late_origin").state(), State::HalfOpen);
    });
}

// ---- review regressions: trait default methods, owned `self`, `impl Trait`, unwinding ----

trait Provider {
    fn down(&self) -> bool;

    #[circuit_breaker(threshold = 1)]
    async fn lookup(&self) -> Result<u32, TestError> {
        if self.down() {
            Err(TestError::Down("provider"))
        } else {
            Ok(1)
        }
    }
}

#[derive(Debug)]
struct DownProvider;
#[derive(Debug)]
struct UpProvider;

impl Provider for DownProvider {
    fn down(&self) -> bool {
        true
    }
}

impl Provider for UpProvider {
    fn down(&self) -> bool {
        false
    }
}

/// A trait's default method is one function (one `static`) for every implementer; each type
/// still gets its own breaker. They used to share the first type's.
#[tokio::test(start_paused = true)]
async fn regression_trait_default_method_gets_a_breaker_per_type() {
    DownProvider.lookup().await.unwrap_err();
    assert!(DownProvider.lookup().await.unwrap_err().is_open());
    assert_eq!(UpProvider.lookup().await, Ok(1));
    assert_eq!(UpProvider.lookup().await, Ok(1));
    assert_eq!(
        handle("behaviour::DownProvider::lookup").state(),
        State::Open
    );
    assert_eq!(
        handle("behaviour::UpProvider::lookup").state(),
        State::Closed
    );
    assert_eq!(
        handle("behaviour::UpProvider::lookup").counters().successes,
        2
    );
}

#[derive(Debug, Clone)]
struct Conn {
    hits: Cell<u32>,
}

impl Conn {
    #[circuit_breaker(name = "owned_self", fallback = Self::spare)]
    async fn fetch(self, extra: &mut Vec<u32>) -> Result<u32, TestError> {
        self.hits.set(self.hits.get() + 1);
        tokio::task::yield_now().await;
        extra.push(self.hits.get());
        Err(TestError::Down("owned_self"))
    }

    async fn spare(self, extra: &mut Vec<u32>) -> Result<u32, TestError> {
        extra.push(100);
        Ok(self.hits.get())
    }
}

/// A method taking `self` by value moves it into the body as the original did: the future is
/// `Send` with a `Send + !Sync` receiver (`Cell`), and `&mut` parameters still reach the
/// fallback. It used to borrow `self` across the `.await` and lose `Send`.
#[tokio::test]
async fn regression_owned_self_keeps_the_future_send() {
    let got = tokio::spawn(async {
        let mut extra = Vec::new();
        let r = Conn { hits: Cell::new(0) }.fetch(&mut extra).await;
        (r, extra)
    })
    .await
    .unwrap();
    // The fallback gets the copy of `self` kept before the call.
    assert_eq!(got, (Ok(0), vec![1, 100]));
}

#[circuit_breaker(name = "impl_trait_return", threshold = 3)]
async fn evens(up_to: u32) -> Result<impl Iterator<Item = u32>, TestError> {
    if up_to == 0 {
        return Err(TestError::NotFound);
    }
    Ok((0..up_to).filter(|n| n % 2 == 0))
}

#[tokio::test(start_paused = true)]
async fn impl_trait_in_the_return_type_is_kept() {
    assert_eq!(evens(7).await.unwrap().collect::<Vec<_>>(), [0, 2, 4, 6]);
    assert!(evens(0).await.is_err());
    assert_eq!(handle("impl_trait_return").counters().failures, 1);
}

#[circuit_breaker(name = "unwind_bystander", threshold = 1)]
async fn waits_forever() -> Result<(), TestError> {
    std::future::pending::<()>().await;
    Ok(())
}

/// A call dropped while its thread unwinds from an unrelated panic is a cancellation, not a
/// failure of the provider (it used to count as a panic and could trip the breaker).
#[test]
fn regression_call_dropped_during_another_panic_is_cancelled() {
    let unwound = std::panic::catch_unwind(|| {
        let mut call = Box::pin(waits_forever());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(call.as_mut().poll(&mut cx).is_pending());
        std::panic::panic_any("unrelated bug, elsewhere");
    });
    assert!(unwound.is_err());
    let h = handle("unwind_bystander");
    let c = h.counters();
    assert_eq!((c.cancelled, c.panics, c.failures), (1, 0, 0));
    assert_eq!(h.state(), State::Closed);
}
