//! Operator and QA controls of a breaker in this process (memory store): injected faults,
//! swapping a breaker with its fallback, the user-facing notice, and the alerts a process raises
//! as its own fleet. Time-dependent behaviour runs on paused tokio time. Every test has breakers
//! of its own (breakers are process-wide and tests run in parallel).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use breaker_runtime::{
    Alert, AlertKind, BreakerError, Event, EventKind, Fault, Forced, HandleError, NoticeError,
    Notifier, State, breaker, circuit_breaker,
};
use breaker_tests::{Recorder, TestError};
use tokio::time::{Instant, advance, sleep};

fn handle(name: &str) -> breaker_runtime::Handle {
    breaker(name).unwrap_or_else(|| panic!("no breaker named {name}"))
}

/// An error type with a `Display` form (alerts describe errors by it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum OpsError {
    Down(&'static str),
    Breaker(BreakerError),
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsError::Down(what) => write!(f, "{what} is down"),
            OpsError::Breaker(e) => write!(f, "{e}"),
        }
    }
}

impl From<BreakerError> for OpsError {
    fn from(e: BreakerError) -> Self {
        OpsError::Breaker(e)
    }
}

fn injected(name: &'static str) -> TestError {
    TestError::Breaker(BreakerError::Injected { breaker: name })
}

/// The alerts recorded for `breaker`.
/// The alerts of `breaker`, with their ids checked and blanked: an alert this process raised
/// on its own (memory store) is `breaker:local-<process>-<n>:kind`, unique.
fn alerts(rec: &Recorder, breaker: &str) -> Vec<Alert> {
    let all: Vec<Alert> = rec
        .events(breaker)
        .into_iter()
        .filter_map(|k| match k {
            EventKind::Alert(a) => Some(a),
            _ => None,
        })
        .collect();
    let mut ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
    for a in &all {
        assert!(
            a.id.starts_with(&format!("{breaker}:local-"))
                && a.id.ends_with(&format!(":{}", a.kind.as_str())),
            "alert id {:?}",
            a.id
        );
        assert!(a.receipt.is_none(), "a local alert needs no receipt");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "alert ids are unique");
    all.into_iter()
        .map(|a| Alert {
            id: String::new(),
            ..a
        })
        .collect()
}

/// A notifier that keeps whole events: [`Recorder`] hands out only their kinds, and the
/// `injected` flag is on the event.
#[derive(Debug, Default)]
struct FullLog {
    events: Mutex<Vec<Event>>,
}

impl Notifier for FullLog {
    fn notify(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }

    fn wants_call_events(&self) -> bool {
        true
    }
}

fn full_log() -> &'static FullLog {
    static LOG: OnceLock<Arc<FullLog>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(FullLog::default());
        breaker_runtime::add_notifier(log.clone());
        log
    })
}

/// Every event recorded for `breaker`, after waiting for delivery.
fn full_events(breaker: &str) -> Vec<Event> {
    assert!(
        breaker_runtime::flush_notifications(Duration::from_secs(10)),
        "notifier queue did not drain"
    );
    full_log()
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.breaker == breaker)
        .cloned()
        .collect()
}

/// `(from, to, injected)` of every transition of `breaker`.
fn transitions_flagged(breaker: &str) -> Vec<(State, State, bool)> {
    full_events(breaker)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Transition { from, to, .. } => Some((from, to, e.injected)),
            _ => None,
        })
        .collect()
}

/// `(kind, injected)` of every alert of `breaker`.
fn alerts_flagged(breaker: &str) -> Vec<(AlertKind, bool)> {
    full_events(breaker)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Alert(a) => Some((a.kind, e.injected)),
            _ => None,
        })
        .collect()
}

// ---- injected `error` ----

static ERROR_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.error", threshold = 3, open_for = "30s")]
async fn error_target(fail: bool) -> Result<u32, TestError> {
    ERROR_CALLS.fetch_add(1, SeqCst);
    if fail {
        Err(TestError::Down("ops.error"))
    } else {
        Ok(7)
    }
}

#[tokio::test(start_paused = true)]
async fn error_fault_fails_without_calling_and_trips_at_the_threshold() {
    let h = handle("ops.error");
    h.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .unwrap();
    assert_eq!(h.fault(), Some(Fault::Error { rate: 1.0 }));
    for n in 1..=2 {
        assert_eq!(error_target(false).await, Err(injected("ops.error")));
        assert_eq!(h.counters().failures, n);
        assert_eq!(h.state(), State::Closed, "{n} injected failures of 3");
    }
    assert_eq!(error_target(false).await, Err(injected("ops.error")));
    assert_eq!(
        h.state(),
        State::Open,
        "the third injected failure trips it"
    );
    assert_eq!(
        error_target(false).await,
        Err(TestError::Breaker(BreakerError::Open {
            breaker: "ops.error",
            retry_after: Some(Duration::from_secs(30)),
        })),
        "an OPEN breaker rejects as it would after real failures"
    );
    assert_eq!(ERROR_CALLS.load(SeqCst), 0, "the function was called");
    let c = h.counters();
    assert_eq!((c.failures, c.rejections, c.successes), (3, 1, 0));

    h.inject(None, None).await.unwrap();
    assert_eq!(h.fault(), None);
    h.reset().await.unwrap();
    assert_eq!(error_target(false).await, Ok(7));
    assert_eq!(
        ERROR_CALLS.load(SeqCst),
        1,
        "cleared: calls reach the function"
    );
    assert_eq!(h.counters().successes, 1);
}

static ERROR_FB_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.error_fb", fallback = error_fb_fallback, threshold = 2)]
async fn error_fb_target(x: u32) -> Result<u32, TestError> {
    ERROR_FB_CALLS.fetch_add(1, SeqCst);
    Ok(x)
}

async fn error_fb_fallback(x: u32) -> Result<u32, TestError> {
    Ok(x + 1000)
}

#[tokio::test(start_paused = true)]
async fn error_fault_is_served_by_the_fallback() {
    let h = handle("ops.error_fb");
    assert_eq!(error_fb_target(1).await, Ok(1));
    h.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .unwrap();
    assert_eq!(error_fb_target(2).await, Ok(1002));
    assert_eq!(h.state(), State::Closed);
    assert_eq!(error_fb_target(3).await, Ok(1003));
    assert_eq!(h.state(), State::Open);
    assert_eq!(error_fb_target(4).await, Ok(1004), "rejected: fallback");
    assert_eq!(
        ERROR_FB_CALLS.load(SeqCst),
        1,
        "only the call before the fault"
    );
    let c = h.counters();
    assert_eq!(
        (c.successes, c.failures, c.rejections, c.fallbacks),
        (1, 2, 1, 3)
    );
    h.inject(None, None).await.unwrap();
    h.reset().await.unwrap();
    assert_eq!(error_fb_target(5).await, Ok(5));
    assert_eq!(ERROR_FB_CALLS.load(SeqCst), 2);
}

static RATE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.error_rate", threshold = 10000)]
async fn rate_target() -> Result<(), TestError> {
    RATE_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn error_fault_with_a_rate_fails_about_that_fraction() {
    let h = handle("ops.error_rate");
    h.inject(Some(Fault::Error { rate: 0.5 }), None)
        .await
        .unwrap();
    let (mut ok, mut failed) = (0u64, 0u64);
    for _ in 0..2000 {
        match rate_target().await {
            Ok(()) => ok += 1,
            Err(e) if e == injected("ops.error_rate") => failed += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    let called = RATE_CALLS.load(SeqCst);
    assert!(
        (700..=1300).contains(&called),
        "the function was called {called} times of 2000"
    );
    assert_eq!(u64::try_from(called).unwrap(), ok);
    assert_eq!(ok + failed, 2000);
    let c = h.counters();
    assert_eq!((c.successes, c.failures), (ok, failed));
    assert_eq!(h.state(), State::Closed);
}

// ---- injected `delay` ----

static DELAY_STARTED: AtomicUsize = AtomicUsize::new(0);
static DELAY_FINISHED: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.delay", timeout = "5s", threshold = 10)]
async fn delay_target(work: Duration) -> Result<&'static str, TestError> {
    DELAY_STARTED.fetch_add(1, SeqCst);
    sleep(work).await;
    DELAY_FINISHED.fetch_add(1, SeqCst);
    Ok("done")
}

#[tokio::test(start_paused = true)]
async fn delay_fault_waits_then_calls_and_times_out_past_the_timeout() {
    let h = handle("ops.delay");
    h.inject(Some(Fault::Delay(Duration::from_secs(2))), None)
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(delay_target(Duration::ZERO).await, Ok("done"));
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(2), "took {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(DELAY_STARTED.load(SeqCst), 1);

    // The delay counts inside the timeout: 2 s + 1 s of work is still within 5 s.
    let start = Instant::now();
    assert_eq!(delay_target(Duration::from_secs(1)).await, Ok("done"));
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(3), "took {took:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(DELAY_FINISHED.load(SeqCst), 2);
    assert_eq!(h.counters().successes, 2);

    // A delay longer than the timeout: the call times out and the function never runs.
    h.inject(Some(Fault::Delay(Duration::from_secs(10))), None)
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        delay_target(Duration::ZERO).await,
        Err(TestError::Breaker(BreakerError::Timeout {
            breaker: "ops.delay",
            after: Duration::from_secs(5),
        }))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    advance(Duration::from_secs(60)).await;
    assert_eq!(DELAY_STARTED.load(SeqCst), 2, "the function ran");
    assert_eq!(DELAY_FINISHED.load(SeqCst), 2, "the function completed");
    let c = h.counters();
    assert_eq!((c.timeouts, c.failures, c.successes), (1, 1, 2));

    h.inject(None, None).await.unwrap();
    let start = Instant::now();
    assert_eq!(delay_target(Duration::ZERO).await, Ok("done"));
    assert_eq!(start.elapsed(), Duration::ZERO, "cleared: no delay");
}

static DELAY_NT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.delay_no_timeout")]
async fn delay_no_timeout_target() -> Result<(), TestError> {
    DELAY_NT_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn delay_fault_without_a_timeout_waits_then_calls() {
    let h = handle("ops.delay_no_timeout");
    h.inject(Some(Fault::Delay(Duration::from_secs(3))), None)
        .await
        .unwrap();
    let start = Instant::now();
    assert_eq!(delay_no_timeout_target().await, Ok(()));
    assert!(start.elapsed() >= Duration::from_secs(3), "no delay");
    assert_eq!(DELAY_NT_CALLS.load(SeqCst), 1);
    assert_eq!(h.counters().successes, 1);
}

static DELAY_DROP_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.delay_dropped", threshold = 1, open_for = "10s")]
async fn delay_dropped_target(fail: bool) -> Result<(), TestError> {
    DELAY_DROP_CALLS.fetch_add(1, SeqCst);
    if fail {
        Err(TestError::Down("delay_dropped"))
    } else {
        Ok(())
    }
}

/// Without a `timeout`, an injected delay is slept out in the admission wait (the generated
/// function's one await before the body). A call dropped during it was admitted: it counts as
/// cancelled, never runs, and a probe dropped there frees its slot for the next call.
#[tokio::test(start_paused = true)]
async fn delay_fault_without_a_timeout_dropped_midway_counts_a_cancellation() {
    let h = handle("ops.delay_dropped");
    h.inject(Some(Fault::Delay(Duration::from_secs(3))), None)
        .await
        .unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(1), delay_dropped_target(false)).await;
    assert!(dropped.is_err(), "the delay was not waited");
    let c = h.counters();
    assert_eq!((c.cancelled, c.successes, c.failures), (1, 0, 0));
    assert_eq!(DELAY_DROP_CALLS.load(SeqCst), 0, "the function ran");

    // A probe held by the delay: dropped, it frees the probe slot; awaited, it probes.
    h.inject(None, None).await.unwrap();
    assert_eq!(
        delay_dropped_target(true).await,
        Err(TestError::Down("delay_dropped"))
    );
    assert_eq!(h.state(), State::Open);
    advance(Duration::from_secs(10)).await;
    h.inject(Some(Fault::Delay(Duration::from_secs(3))), None)
        .await
        .unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(1), delay_dropped_target(false)).await;
    assert!(dropped.is_err());
    assert_eq!(
        h.state(),
        State::HalfOpen,
        "a cancelled probe decides nothing"
    );
    let start = Instant::now();
    assert_eq!(
        delay_dropped_target(false).await,
        Ok(()),
        "the slot was not freed"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "the probe was not delayed"
    );
    assert_eq!(h.state(), State::Closed);
    h.inject(None, None).await.unwrap();
    let start = Instant::now();
    assert_eq!(delay_dropped_target(false).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::ZERO, "cleared: no delay");
}

// ---- injected `timeout` ----

static TIMEOUT_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.timeout_fault", timeout = "1s", threshold = 10)]
async fn timeout_target() -> Result<(), TestError> {
    TIMEOUT_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeout_fault_times_out_after_the_breakers_timeout() {
    let h = handle("ops.timeout_fault");
    h.inject(Some(Fault::Timeout), None).await.unwrap();
    let start = Instant::now();
    assert_eq!(
        timeout_target().await,
        Err(TestError::Breaker(BreakerError::Timeout {
            breaker: "ops.timeout_fault",
            after: Duration::from_secs(1),
        }))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(TIMEOUT_CALLS.load(SeqCst), 0, "the function was called");
    let c = h.counters();
    assert_eq!((c.timeouts, c.failures), (1, 1));
}

static TIMEOUT_NONE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.timeout_fault_none", threshold = 10)]
async fn timeout_none_target() -> Result<(), TestError> {
    TIMEOUT_NONE_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeout_fault_without_a_timeout_fails_at_once() {
    let h = handle("ops.timeout_fault_none");
    h.inject(Some(Fault::Timeout), None).await.unwrap();
    let start = Instant::now();
    assert_eq!(
        timeout_none_target().await,
        Err(TestError::Breaker(BreakerError::Timeout {
            breaker: "ops.timeout_fault_none",
            after: Duration::ZERO,
        }))
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        TIMEOUT_NONE_CALLS.load(SeqCst),
        0,
        "the function was called"
    );
    let c = h.counters();
    assert_eq!((c.timeouts, c.failures), (1, 1));
}

// ---- injected `open` ----

static OPEN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.open_fault", threshold = 1)]
async fn open_target() -> Result<(), TestError> {
    OPEN_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

static OPEN_FB_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.open_fault_fb", fallback = open_fb_fallback, threshold = 1)]
async fn open_fb_target() -> Result<&'static str, TestError> {
    OPEN_FB_CALLS.fetch_add(1, SeqCst);
    Ok("primary")
}

async fn open_fb_fallback() -> Result<&'static str, TestError> {
    Ok("fallback")
}

#[tokio::test(start_paused = true)]
async fn open_fault_rejects_every_call() {
    let h = handle("ops.open_fault");
    h.inject(Some(Fault::Open), None).await.unwrap();
    for _ in 0..5 {
        assert_eq!(
            open_target().await,
            Err(TestError::Breaker(BreakerError::Open {
                breaker: "ops.open_fault",
                retry_after: None,
            }))
        );
    }
    assert_eq!(OPEN_CALLS.load(SeqCst), 0, "the function was called");
    let c = h.counters();
    assert_eq!((c.rejections, c.failures, c.calls), (5, 0, 5));

    let fb = handle("ops.open_fault_fb");
    fb.inject(Some(Fault::Open), None).await.unwrap();
    for _ in 0..3 {
        assert_eq!(open_fb_target().await, Ok("fallback"));
    }
    assert_eq!(OPEN_FB_CALLS.load(SeqCst), 0, "the function was called");
    let c = fb.counters();
    assert_eq!((c.rejections, c.fallbacks), (3, 3));
    fb.inject(None, None).await.unwrap();
    assert_eq!(open_fb_target().await, Ok("primary"));
}

// ---- expiry ----

static EXPIRY_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "ops.expiry", threshold = 1000)]
async fn expiry_target() -> Result<(), TestError> {
    EXPIRY_CALLS.fetch_add(1, SeqCst);
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn injected_fault_expires() {
    let h = handle("ops.expiry");
    h.inject(
        Some(Fault::Error { rate: 1.0 }),
        Some(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    assert_eq!(expiry_target().await, Err(injected("ops.expiry")));
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(h.fault(), Some(Fault::Error { rate: 1.0 }));
    assert_eq!(expiry_target().await, Err(injected("ops.expiry")));
    assert_eq!(EXPIRY_CALLS.load(SeqCst), 0);
    advance(Duration::from_millis(1)).await;
    assert_eq!(h.fault(), None, "still injected after 10 s");
    assert_eq!(expiry_target().await, Ok(()));
    assert_eq!(expiry_target().await, Ok(()));
    assert_eq!(EXPIRY_CALLS.load(SeqCst), 2);
    let c = h.counters();
    assert_eq!((c.failures, c.successes), (2, 2));
}

// ---- events say whether they were caused by injected faults ----

static INJ_EVENTS_UP: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "ops.injected_events", threshold = 2, open_for = "10s")]
async fn injected_events_target() -> Result<(), TestError> {
    if INJ_EVENTS_UP.load(SeqCst) {
        Ok(())
    } else {
        Err(TestError::Down("ops.injected_events"))
    }
}

static REAL_EVENTS_UP: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "ops.real_events", threshold = 2, open_for = "10s")]
async fn real_events_target() -> Result<(), TestError> {
    if REAL_EVENTS_UP.load(SeqCst) {
        Ok(())
    } else {
        Err(TestError::Down("ops.real_events"))
    }
}

#[circuit_breaker(name = "ops.injected_open_events")]
async fn injected_open_events_target() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn events_say_whether_faults_were_injected() {
    let _ = full_log();
    // An episode caused by injected failures: flagged from opening until it recovers.
    let h = handle("ops.injected_events");
    h.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .unwrap();
    injected_events_target().await.unwrap_err();
    injected_events_target().await.unwrap_err();
    assert_eq!(h.state(), State::Open);
    h.inject(None, None).await.unwrap();
    advance(Duration::from_secs(10)).await;
    injected_events_target().await.unwrap();
    assert_eq!(h.state(), State::Closed);
    assert_eq!(
        transitions_flagged("ops.injected_events"),
        [
            (State::Closed, State::Open, true),
            (State::Open, State::HalfOpen, true),
            (State::HalfOpen, State::Closed, true),
        ]
    );
    assert_eq!(
        alerts_flagged("ops.injected_events"),
        [(AlertKind::Opened, true), (AlertKind::Recovered, true)]
    );

    // The same episode with real failures: not flagged.
    let r = handle("ops.real_events");
    real_events_target().await.unwrap_err();
    real_events_target().await.unwrap_err();
    assert_eq!(r.state(), State::Open);
    REAL_EVENTS_UP.store(true, SeqCst);
    advance(Duration::from_secs(10)).await;
    real_events_target().await.unwrap();
    assert_eq!(r.state(), State::Closed);
    assert_eq!(
        transitions_flagged("ops.real_events"),
        [
            (State::Closed, State::Open, false),
            (State::Open, State::HalfOpen, false),
            (State::HalfOpen, State::Closed, false),
        ]
    );
    assert_eq!(
        alerts_flagged("ops.real_events"),
        [(AlertKind::Opened, false), (AlertKind::Recovered, false)]
    );

    // Rejections by an injected `open` are flagged too.
    let o = handle("ops.injected_open_events");
    o.inject(Some(Fault::Open), None).await.unwrap();
    injected_open_events_target().await.unwrap_err();
    injected_open_events_target().await.unwrap_err();
    let rejected: Vec<_> = full_events("ops.injected_open_events")
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Rejected { retry_after } => Some((retry_after, e.injected)),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, [(None, true), (None, true)]);
}

// ---- swap ----

static SWAP_PRIMARY_CALLS: AtomicUsize = AtomicUsize::new(0);
static SWAP_FALLBACK_CALLS: AtomicUsize = AtomicUsize::new(0);
static SWAP_PRIMARY_UP: AtomicBool = AtomicBool::new(true);
static SWAP_FALLBACK_UP: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "ops.swap", fallback = swap_fallback, threshold = 100)]
async fn swap_primary(q: String) -> Result<String, OpsError> {
    SWAP_PRIMARY_CALLS.fetch_add(1, SeqCst);
    if SWAP_PRIMARY_UP.load(SeqCst) {
        Ok(format!("primary:{q}"))
    } else {
        Err(OpsError::Down("swap primary"))
    }
}

async fn swap_fallback(q: String) -> Result<String, OpsError> {
    SWAP_FALLBACK_CALLS.fetch_add(1, SeqCst);
    if SWAP_FALLBACK_UP.load(SeqCst) {
        Ok(format!("fallback:{q}"))
    } else {
        Err(OpsError::Down("swap fallback"))
    }
}

fn swap_calls() -> (usize, usize) {
    (
        SWAP_PRIMARY_CALLS.load(SeqCst),
        SWAP_FALLBACK_CALLS.load(SeqCst),
    )
}

#[tokio::test(start_paused = true)]
async fn swap_calls_the_fallback_first_and_the_primary_if_it_fails() {
    let h = handle("ops.swap");
    assert!(!h.swapped());
    assert_eq!(swap_primary("a".into()).await.unwrap(), "primary:a");
    assert_eq!(swap_calls(), (1, 0));

    h.swap(true).await.unwrap();
    assert!(h.swapped());
    // The fallback answers: the primary is not called at all.
    assert_eq!(swap_primary("b".into()).await.unwrap(), "fallback:b");
    assert_eq!(swap_primary("c".into()).await.unwrap(), "fallback:c");
    assert_eq!(swap_calls(), (1, 2));
    let c = h.counters();
    assert_eq!((c.successes, c.failures), (1, 0));

    // The fallback fails: the primary is called through the breaker, its result returned.
    SWAP_FALLBACK_UP.store(false, SeqCst);
    assert_eq!(swap_primary("d".into()).await.unwrap(), "primary:d");
    assert_eq!(swap_calls(), (2, 3));
    assert_eq!(h.counters().successes, 2);
    SWAP_PRIMARY_UP.store(false, SeqCst);
    assert_eq!(
        swap_primary("e".into()).await,
        Err(OpsError::Down("swap primary"))
    );
    assert_eq!(swap_calls(), (3, 4));
    let c = h.counters();
    assert_eq!((c.successes, c.failures), (2, 1));

    // Restored: the primary first, the fallback only when it fails.
    h.swap(false).await.unwrap();
    assert!(!h.swapped());
    SWAP_PRIMARY_UP.store(true, SeqCst);
    SWAP_FALLBACK_UP.store(true, SeqCst);
    assert_eq!(swap_primary("f".into()).await.unwrap(), "primary:f");
    assert_eq!(swap_calls(), (4, 4));
    SWAP_PRIMARY_UP.store(false, SeqCst);
    assert_eq!(swap_primary("g".into()).await.unwrap(), "fallback:g");
    assert_eq!(swap_calls(), (5, 5));
    let c = h.counters();
    // Four calls served by the fallback first while swapped, one after the primary failed.
    assert_eq!((c.successes, c.failures, c.fallbacks), (3, 2, 5));
}

#[circuit_breaker(name = "ops.swap_no_fallback")]
async fn swap_no_fallback() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn swap_needs_a_fallback() {
    let h = handle("ops.swap_no_fallback");
    let e = h.swap(true).await.unwrap_err();
    assert!(e.to_string().contains("no fallback"), "{e}");
    assert!(!h.swapped());
    assert_eq!(h.fallback(), None);
    assert_eq!(swap_no_fallback().await, Ok(()));
    assert_eq!(handle("ops.swap").fallback(), Some("swap_fallback"));
}

// ---- notice ----

#[circuit_breaker(name = "ops.notice")]
async fn notice_target() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn notice_is_set_cleared_and_expires() {
    let h = handle("ops.notice");
    assert_eq!(breaker_runtime::notice("ops.notice"), None);
    h.set_notice(Some("sorry".into()), None).await.unwrap();
    assert_eq!(
        breaker_runtime::notice("ops.notice").as_deref(),
        Some("sorry")
    );
    assert_eq!(h.notice().as_deref(), Some("sorry"));
    advance(Duration::from_secs(86_400)).await;
    assert_eq!(
        breaker_runtime::notice("ops.notice").as_deref(),
        Some("sorry"),
        "a notice without a duration stays"
    );
    h.set_notice(None, None).await.unwrap();
    assert_eq!(breaker_runtime::notice("ops.notice"), None);

    h.set_notice(Some("back soon".into()), Some(Duration::from_secs(5)))
        .await
        .unwrap();
    advance(Duration::from_millis(4_999)).await;
    assert_eq!(
        breaker_runtime::notice("ops.notice").as_deref(),
        Some("back soon")
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(breaker_runtime::notice("ops.notice"), None, "expired");

    assert_eq!(breaker_runtime::notice("ops.no_such_breaker"), None);
    assert_eq!(notice_target().await, Ok(()));
}

#[circuit_breaker(name = "ops.notice_checked")]
async fn notice_checked_target() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn notices_with_control_or_bidi_characters_or_too_long_are_refused() {
    let h = handle("ops.notice_checked");
    h.set_notice(Some("Search is down".into()), None)
        .await
        .unwrap();
    for (text, shown) in [
        // An ANSI escape that would turn a terminal red.
        ("Search \x1b[31mis down", "U+001B at character 8"),
        // RIGHT-TO-LEFT OVERRIDE: "evil.exe" shown backwards on a web page.
        ("see \u{202e}exe.live", "U+202E at character 5"),
        ("two\nlines", "U+000A at character 4"),
        ("tab\there", "U+0009 at character 4"),
        ("\u{7f}", "U+007F at character 1"),
        ("c1 \u{9b}", "U+009B at character 4"),
        ("lrm \u{200e}", "U+200E"),
        ("isolate \u{2066}x\u{2069}", "U+2066"),
        ("arabic mark \u{61c}", "U+061C"),
    ] {
        let e = h
            .set_notice(Some(text.to_owned()), None)
            .await
            .expect_err(text);
        let msg = e.to_string();
        assert!(msg.contains(shown), "{text:?}: {msg}");
        assert!(
            matches!(
                e,
                HandleError::InvalidNotice(NoticeError::UnsafeChar { .. })
            ),
            "{e:?}"
        );
        assert_eq!(
            breaker_runtime::notice("ops.notice_checked").as_deref(),
            Some("Search is down"),
            "a refused notice changes nothing"
        );
    }
    let long = "x".repeat(501);
    let e = h.set_notice(Some(long), None).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert_eq!(
        e,
        HandleError::InvalidNotice(NoticeError::TooLong { chars: 501 })
    );
    // The bound counts characters, not bytes.
    let korean = "주".repeat(500);
    h.set_notice(Some(korean.clone()), None).await.unwrap();
    assert_eq!(breaker_runtime::notice("ops.notice_checked"), Some(korean));
    h.set_notice(None, None).await.unwrap();
    assert_eq!(notice_checked_target().await, Ok(()));
}

// ---- alerts (memory store: this process is its own fleet) ----

static ALERT_UP: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(
    name = "ops.alert_open",
    fallback = alert_open_fallback,
    threshold = 3,
    open_for = "10s",
    half_open_probes = 2
)]
async fn alert_open_target() -> Result<u32, OpsError> {
    if ALERT_UP.load(SeqCst) {
        Ok(1)
    } else {
        Err(OpsError::Down("alert_open"))
    }
}

async fn alert_open_fallback() -> Result<u32, OpsError> {
    Ok(2)
}

/// The alerts of `breaker` without their `last_error`, and the `last_error`s, apart: the
/// tests check the alerts' structure first and the descriptions last.
fn alerts_split(rec: &Recorder, breaker: &str) -> (Vec<Alert>, Vec<Option<String>>) {
    let all = alerts(rec, breaker);
    let errors = all.iter().map(|a| a.last_error.clone()).collect();
    let shapes = all
        .into_iter()
        .map(|a| Alert {
            last_error: None,
            ..a
        })
        .collect();
    (shapes, errors)
}

#[tokio::test(start_paused = true)]
async fn opening_and_recovery_raise_one_alert_each() {
    let rec = Recorder::install();
    let h = handle("ops.alert_open");
    for _ in 0..3 {
        assert_eq!(alert_open_target().await, Ok(2));
    }
    assert_eq!(h.state(), State::Open);
    for _ in 0..5 {
        assert_eq!(alert_open_target().await, Ok(2), "rejected: fallback");
    }
    let opened = Alert {
        id: String::new(),
        receipt: None,
        kind: AlertKind::Opened,
        from: State::Closed,
        to: State::Open,
        failures: 3,
        last_error: None, // checked apart, below
        fallback: Some("alert_open_fallback"),
        forced: None,
        shadow: false,
    };
    assert_eq!(
        alerts_split(&rec, "ops.alert_open").0,
        std::slice::from_ref(&opened)
    );

    // HALF_OPEN, and back to OPEN from there: transitions, no alerts.
    advance(Duration::from_secs(10)).await;
    assert_eq!(h.state(), State::HalfOpen);
    assert_eq!(alert_open_target().await, Ok(2), "failed probe: fallback");
    assert_eq!(h.state(), State::Open);
    assert_eq!(
        rec.transitions("ops.alert_open"),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Open),
        ]
    );
    assert_eq!(
        alerts_split(&rec, "ops.alert_open").0,
        std::slice::from_ref(&opened)
    );

    // Recovery: two successful probes close it.
    ALERT_UP.store(true, SeqCst);
    advance(h.retry_after().unwrap()).await;
    assert_eq!(alert_open_target().await, Ok(1));
    assert_eq!(h.state(), State::HalfOpen);
    assert_eq!(
        alerts_split(&rec, "ops.alert_open").0,
        std::slice::from_ref(&opened)
    );
    assert_eq!(alert_open_target().await, Ok(1));
    assert_eq!(h.state(), State::Closed);
    let recovered = Alert {
        id: String::new(),
        receipt: None,
        kind: AlertKind::Recovered,
        from: State::HalfOpen,
        to: State::Closed,
        failures: 0,
        last_error: None,
        fallback: Some("alert_open_fallback"),
        forced: None,
        shadow: false,
    };
    let (shapes, errors) = alerts_split(&rec, "ops.alert_open");
    assert_eq!(shapes, [opened, recovered]);
    assert_eq!(errors, [Some("alert_open is down".to_owned()), None]);
}

#[circuit_breaker(name = "ops.alert_forced", threshold = 5)]
async fn alert_forced_target() -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn operator_force_open_raises_an_opened_alert() {
    let rec = Recorder::install();
    let h = handle("ops.alert_forced");
    assert_eq!(alert_forced_target().await, Ok(()));
    h.force_open().await.unwrap();
    assert!(alert_forced_target().await.unwrap_err().is_open());
    let got = alerts(&rec, "ops.alert_forced");
    assert_eq!(
        got,
        [Alert {
            id: String::new(),
            kind: AlertKind::Opened,
            from: State::Closed,
            to: State::Open,
            failures: 0,
            last_error: None,
            fallback: None,
            forced: Some(Forced::Open),
            shadow: false,
            receipt: None,
        }]
    );
    h.reset().await.unwrap();
    let got = alerts(&rec, "ops.alert_forced");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1].kind, got[1].from, got[1].to, got[1].forced),
        (AlertKind::Recovered, State::Open, State::Closed, None)
    );
}

static CHAIN_FALLBACK_UP: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "ops.chain", fallback = chain_fallback, threshold = 100)]
async fn chain_target() -> Result<u32, OpsError> {
    Err(OpsError::Down("chain primary"))
}

async fn chain_fallback() -> Result<u32, OpsError> {
    if CHAIN_FALLBACK_UP.load(SeqCst) {
        Ok(9)
    } else {
        Err(OpsError::Down("chain fallback"))
    }
}

#[tokio::test(start_paused = true)]
async fn failing_fallback_alerts_once_until_it_succeeds_again() {
    let rec = Recorder::install();
    let chain_failed = Alert {
        id: String::new(),
        receipt: None,
        kind: AlertKind::ChainFailed,
        from: State::Closed,
        to: State::Closed,
        failures: 0,
        last_error: None, // checked apart, below
        fallback: Some("chain_fallback"),
        forced: None,
        shadow: false,
    };
    assert_eq!(chain_target().await, Err(OpsError::Down("chain fallback")));
    assert_eq!(
        alerts_split(&rec, "ops.chain").0,
        std::slice::from_ref(&chain_failed)
    );
    for _ in 0..5 {
        assert_eq!(chain_target().await, Err(OpsError::Down("chain fallback")));
    }
    assert_eq!(
        alerts_split(&rec, "ops.chain").0,
        std::slice::from_ref(&chain_failed),
        "one alert per episode"
    );
    CHAIN_FALLBACK_UP.store(true, SeqCst);
    assert_eq!(chain_target().await, Ok(9));
    assert_eq!(
        alerts_split(&rec, "ops.chain").0,
        std::slice::from_ref(&chain_failed)
    );
    // A flapping fallback does not alert on every flap: a success within a minute of the
    // failure does not end the episode.
    CHAIN_FALLBACK_UP.store(false, SeqCst);
    assert_eq!(chain_target().await, Err(OpsError::Down("chain fallback")));
    assert_eq!(
        alerts_split(&rec, "ops.chain").0,
        std::slice::from_ref(&chain_failed),
        "a flap within a minute alerts nothing new"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    CHAIN_FALLBACK_UP.store(true, SeqCst);
    assert_eq!(chain_target().await, Ok(9));
    CHAIN_FALLBACK_UP.store(false, SeqCst);
    assert_eq!(chain_target().await, Err(OpsError::Down("chain fallback")));
    assert_eq!(chain_target().await, Err(OpsError::Down("chain fallback")));
    let (shapes, errors) = alerts_split(&rec, "ops.chain");
    assert_eq!(
        shapes,
        [chain_failed.clone(), chain_failed],
        "a new episode after the fallback succeeded"
    );
    assert_eq!(handle("ops.chain").counters().failures, 11);
    assert_eq!(
        errors,
        [
            Some("chain fallback is down".to_owned()),
            Some("chain fallback is down".to_owned())
        ],
        "the fallback's error, by its Display form"
    );
}

/// An error type with `Debug` only (`TestError` has `Display` too); its fields are read by
/// `Debug` alone.
#[derive(Debug)]
#[allow(dead_code)]
enum DebugOnly {
    Down(&'static str),
    Breaker(BreakerError),
}

impl From<BreakerError> for DebugOnly {
    fn from(e: BreakerError) -> Self {
        DebugOnly::Breaker(e)
    }
}

#[circuit_breaker(name = "ops.alert_debug", threshold = 1)]
async fn alert_debug_target() -> Result<(), DebugOnly> {
    Err(DebugOnly::Down("debug only"))
}

#[tokio::test(start_paused = true)]
async fn error_without_display_is_described_by_its_debug_form() {
    let rec = Recorder::install();
    alert_debug_target().await.unwrap_err();
    let got = alerts(&rec, "ops.alert_debug");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind, AlertKind::Opened);
    assert_eq!(got[0].last_error.as_deref(), Some(r#"Down("debug only")"#));
}

#[circuit_breaker(name = "ops.alert_timeout", timeout = "1s", threshold = 1)]
async fn alert_timeout_target() -> Result<(), TestError> {
    sleep(Duration::from_secs(60)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn timeout_is_described_in_the_alert() {
    let rec = Recorder::install();
    assert!(alert_timeout_target().await.unwrap_err().is_timeout());
    let got = alerts(&rec, "ops.alert_timeout");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind, AlertKind::Opened);
    assert_eq!(got[0].failures, 1);
    assert_eq!(got[0].last_error.as_deref(), Some("timed out after 1s"));
}

/// An error type with both forms, telling them apart.
#[derive(Debug)]
struct BothForms;

impl fmt::Display for BothForms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the display form")
    }
}

impl From<BreakerError> for BothForms {
    fn from(_: BreakerError) -> Self {
        BothForms
    }
}

#[circuit_breaker(name = "ops.alert_display", threshold = 1)]
async fn alert_display_target() -> Result<(), BothForms> {
    Err(BothForms)
}

#[tokio::test(start_paused = true)]
async fn display_is_preferred_to_debug_in_alerts() {
    let rec = Recorder::install();
    alert_display_target().await.unwrap_err();
    let got = alerts(&rec, "ops.alert_display");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].last_error.as_deref(), Some("the display form"));
}

static SWAP_CHAIN_FALLBACK_UP: AtomicBool = AtomicBool::new(false);

#[circuit_breaker(name = "ops.swap_chain", fallback = swap_chain_fallback, threshold = 100)]
async fn swap_chain_primary() -> Result<u32, OpsError> {
    Err(OpsError::Down("swap chain primary"))
}

async fn swap_chain_fallback() -> Result<u32, OpsError> {
    if SWAP_CHAIN_FALLBACK_UP.load(SeqCst) {
        Ok(5)
    } else {
        Err(OpsError::Down("swap chain fallback"))
    }
}

#[tokio::test(start_paused = true)]
async fn swapped_chain_failure_alerts_again_after_the_chain_served_a_call() {
    let rec = Recorder::install();
    let h = handle("ops.swap_chain");
    h.swap(true).await.unwrap();
    // Fallback (called first) and primary both fail: the chain failed.
    assert_eq!(
        swap_chain_primary().await,
        Err(OpsError::Down("swap chain primary"))
    );
    let kinds = |rec: &Recorder| -> Vec<AlertKind> {
        alerts(rec, "ops.swap_chain")
            .into_iter()
            .map(|a| a.kind)
            .collect()
    };
    assert_eq!(kinds(&rec), [AlertKind::ChainFailed]);
    assert_eq!(
        swap_chain_primary().await,
        Err(OpsError::Down("swap chain primary"))
    );
    assert_eq!(kinds(&rec), [AlertKind::ChainFailed], "once per episode");
    // The fallback serves a call a minute after the failure: the episode is over.
    tokio::time::advance(Duration::from_secs(60)).await;
    SWAP_CHAIN_FALLBACK_UP.store(true, SeqCst);
    assert_eq!(swap_chain_primary().await, Ok(5));
    SWAP_CHAIN_FALLBACK_UP.store(false, SeqCst);
    assert_eq!(
        swap_chain_primary().await,
        Err(OpsError::Down("swap chain primary"))
    );
    assert_eq!(h.state(), State::Closed);
    assert_eq!(
        kinds(&rec),
        [AlertKind::ChainFailed, AlertKind::ChainFailed],
        "a new chain failure after the fallback succeeded"
    );
}

#[circuit_breaker(name = "ops.shared_swap", fallback = shared_swap_fallback)]
async fn shared_swap_with_fallback() -> Result<&'static str, TestError> {
    Ok("primary")
}

async fn shared_swap_fallback() -> Result<&'static str, TestError> {
    Ok("fallback")
}

#[circuit_breaker(name = "ops.shared_swap", timeout = "1s")]
async fn shared_swap_without_fallback() -> Result<&'static str, TestError> {
    Ok("plain")
}

/// Two functions sharing one breaker by name, one with a fallback and one without: swapping the
/// breaker puts the fallback first where there is one; the other function still runs itself
/// (it has nothing to call first), through the breaker.
#[tokio::test(start_paused = true)]
async fn a_swap_does_not_reject_a_function_without_a_fallback_sharing_the_breaker() {
    let h = handle("ops.shared_swap");
    h.swap(true).await.unwrap();
    assert_eq!(shared_swap_with_fallback().await, Ok("fallback"));
    assert_eq!(shared_swap_without_fallback().await, Ok("plain"));
    h.swap(false).await.unwrap();
    assert_eq!(shared_swap_with_fallback().await, Ok("primary"));
}

// ---- swapped, with a timeout and a fallback; and a function without either ----

static SWAP_TIMED_PRIMARY_SLOW: AtomicBool = AtomicBool::new(false);
static SWAP_TIMED_FALLBACK_UP: AtomicBool = AtomicBool::new(true);

#[circuit_breaker(name = "ops.swap_timed", fallback = swap_timed_fallback, timeout = "1s")]
async fn swap_timed(q: u32) -> Result<String, OpsError> {
    if SWAP_TIMED_PRIMARY_SLOW.load(SeqCst) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(format!("primary:{q}"))
}

async fn swap_timed_fallback(q: u32) -> Result<String, OpsError> {
    if SWAP_TIMED_FALLBACK_UP.load(SeqCst) {
        Ok(format!("fallback:{q}"))
    } else {
        Err(OpsError::Down("swap timed fallback"))
    }
}

#[circuit_breaker(name = "ops.swap_timed")]
async fn swap_timed_plain() -> Result<&'static str, OpsError> {
    Ok("plain")
}

/// The swapped paths the other swap tests leave out: a function with `timeout` and
/// `fallback` whose fallback fails and whose primary then times out (the fallback's answer is
/// the last word), a swapped breaker that refuses the primary itself (forced open), and a
/// function with neither `timeout` nor `fallback` sharing the swapped breaker.
#[tokio::test(start_paused = true)]
async fn swapped_with_a_timeout_a_refused_primary_and_a_plain_function() {
    let h = handle("ops.swap_timed");
    h.swap(true).await.unwrap();
    assert_eq!(swap_timed(1).await.unwrap(), "fallback:1");
    SWAP_TIMED_FALLBACK_UP.store(false, SeqCst);
    // The fallback fails: the primary is tried through the breaker.
    assert_eq!(swap_timed(2).await.unwrap(), "primary:2");
    // ...and times out: the fallback's failure is the answer, the timeout is counted.
    SWAP_TIMED_PRIMARY_SLOW.store(true, SeqCst);
    let started = tokio::time::Instant::now();
    assert!(matches!(
        swap_timed(3).await,
        Err(OpsError::Down("swap timed fallback"))
    ));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    assert_eq!(h.counters().timeouts, 1);
    SWAP_TIMED_PRIMARY_SLOW.store(false, SeqCst);
    // Forced open while swapped: the primary is refused, the fallback's failure stands.
    h.force_open().await.unwrap();
    assert!(matches!(
        swap_timed(4).await,
        Err(OpsError::Down("swap timed fallback"))
    ));
    // The function without a fallback is rejected as any call of a forced-open breaker...
    assert!(matches!(
        swap_timed_plain().await,
        Err(OpsError::Breaker(BreakerError::Open { .. }))
    ));
    // ...and, released, runs itself at once while the breaker stays swapped.
    h.reset().await.unwrap();
    assert!(h.swapped());
    assert_eq!(swap_timed_plain().await.unwrap(), "plain");
    SWAP_TIMED_FALLBACK_UP.store(true, SeqCst);
    assert_eq!(swap_timed(5).await.unwrap(), "fallback:5");
    h.swap(false).await.unwrap();
    assert_eq!(swap_timed(6).await.unwrap(), "primary:6");
}
