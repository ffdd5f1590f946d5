//! Breakers built in code (`Breaker::builder`) and calls through a handle (`Handle::call`,
//! `Handle::call_with_fallback`), on paused tokio time: the attribute's semantics, the
//! registry, validation. Every test has breakers of its own (breakers are process-wide).

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{Breaker, BreakerError, Fault, Handle, State, StoreKind, breakers};
use breaker_tests::{Recorder, TestError};
use tokio::time::{advance, sleep};

async fn fail(calls: &AtomicU32) -> Result<u32, TestError> {
    calls.fetch_add(1, SeqCst);
    Err(TestError::Down("built"))
}

async fn succeed(calls: &AtomicU32) -> Result<u32, TestError> {
    calls.fetch_add(1, SeqCst);
    Ok(7)
}

async fn fallback_answer(calls: &AtomicU32) -> Result<u32, TestError> {
    calls.fetch_add(1, SeqCst);
    Ok(99)
}

fn built(name: &str) -> Handle {
    Breaker::builder(name)
        .threshold(3)
        .window(Duration::from_secs(10))
        .open_for(Duration::from_secs(30))
        .build()
        .expect("valid settings")
}

#[tokio::test(start_paused = true)]
async fn opens_at_threshold_rejects_without_calling_and_probes_after_open_for() {
    let rec = Recorder::install();
    let b = built("built.trip");
    let calls = AtomicU32::new(0);
    for _ in 0..3 {
        assert_eq!(b.call(|| fail(&calls)).await, Err(TestError::Down("built")));
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(calls.load(SeqCst), 3);
    for _ in 0..50 {
        let e = b.call(|| succeed(&calls)).await.unwrap_err();
        assert_eq!(
            e,
            TestError::Breaker(BreakerError::Open {
                breaker: "built.trip",
                retry_after: Some(Duration::from_secs(30)),
            })
        );
    }
    assert_eq!(calls.load(SeqCst), 3, "an open breaker ran the call");
    advance(Duration::from_secs(30) - Duration::from_nanos(1)).await;
    assert!(b.call(|| succeed(&calls)).await.is_err());
    advance(Duration::from_nanos(1)).await;
    assert_eq!(b.call(|| succeed(&calls)).await, Ok(7), "the probe");
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        rec.transitions("built.trip"),
        [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
    let c = b.counters();
    assert_eq!((c.failures, c.successes, c.rejections), (3, 1, 51));
}

#[tokio::test(start_paused = true)]
async fn a_call_past_its_timeout_is_abandoned_and_counted() {
    let b = Breaker::builder("built.timeout")
        .timeout(Duration::from_millis(100))
        .build()
        .expect("valid settings");
    let started = tokio::time::Instant::now();
    let r: Result<u32, TestError> = b
        .call(|| async {
            sleep(Duration::from_secs(5)).await;
            Ok(1)
        })
        .await;
    assert_eq!(
        r,
        Err(TestError::Breaker(BreakerError::Timeout {
            breaker: "built.timeout",
            after: Duration::from_millis(100),
        }))
    );
    assert_eq!(started.elapsed(), Duration::from_millis(100));
    let c = b.counters();
    assert_eq!((c.failures, c.timeouts), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn the_fallback_answers_failures_timeouts_and_rejections() {
    let b = Breaker::builder("built.fallback")
        .threshold(2)
        .timeout(Duration::from_millis(50))
        .fallback("cached")
        .build()
        .expect("valid settings");
    let (calls, fb) = (AtomicU32::new(0), AtomicU32::new(0));
    // A failure: the fallback answers.
    assert_eq!(
        b.call_with_fallback(|| fail(&calls), || fallback_answer(&fb))
            .await,
        Ok(99)
    );
    // A timeout: the fallback answers.
    let slow = b
        .call_with_fallback(
            || async {
                sleep(Duration::from_secs(1)).await;
                Ok::<u32, TestError>(1)
            },
            || fallback_answer(&fb),
        )
        .await;
    assert_eq!(slow, Ok(99));
    assert_eq!(b.state(), State::Open);
    // Rejections: the fallback answers, the call is not made.
    for _ in 0..5 {
        assert_eq!(
            b.call_with_fallback(|| succeed(&calls), || fallback_answer(&fb))
                .await,
            Ok(99)
        );
    }
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(fb.load(SeqCst), 7);
    let c = b.counters();
    assert_eq!(
        (c.failures, c.timeouts, c.rejections, c.fallbacks),
        (2, 1, 5, 7)
    );
    // A success passes through; the fallback is not called.
    b.force_closed().await.expect("force closed");
    assert_eq!(
        b.call_with_fallback(|| succeed(&calls), || fallback_answer(&fb))
            .await,
        Ok(7)
    );
    assert_eq!(fb.load(SeqCst), 7);
}

#[tokio::test(start_paused = true)]
async fn a_swapped_built_breaker_calls_the_fallback_first() {
    let b = Breaker::builder("built.swap")
        .fallback("secondary")
        .build()
        .expect("valid settings");
    let (calls, fb) = (AtomicU32::new(0), AtomicU32::new(0));
    b.swap(true).await.expect("swap");
    assert_eq!(
        b.call_with_fallback(|| succeed(&calls), || fallback_answer(&fb))
            .await,
        Ok(99)
    );
    assert_eq!((calls.load(SeqCst), fb.load(SeqCst)), (0, 1));
    // The fallback fails: the call runs, through the breaker.
    let failing_fallback = || async { Err::<u32, TestError>(TestError::Down("secondary")) };
    assert_eq!(
        b.call_with_fallback(|| succeed(&calls), failing_fallback)
            .await,
        Ok(7)
    );
    assert_eq!(calls.load(SeqCst), 1);
    // Without a fallback to call, a swapped breaker runs the call at once.
    assert_eq!(b.call(|| succeed(&calls)).await, Ok(7));
    b.swap(false).await.expect("restore");
    // A breaker built without `fallback` cannot be swapped, as a function without one.
    let plain = Breaker::builder("built.swap.plain").build().expect("valid");
    assert!(plain.swap(true).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn an_injected_fault_reaches_built_calls() {
    let b = Breaker::builder("built.fault")
        .timeout(Duration::from_millis(200))
        .build()
        .expect("valid settings");
    let calls = AtomicU32::new(0);
    b.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .expect("inject");
    assert!(b.call(|| succeed(&calls)).await.is_err());
    assert_eq!(calls.load(SeqCst), 0, "an injected error runs no call");
    b.inject(Some(Fault::Delay(Duration::from_millis(500))), None)
        .await
        .expect("inject delay");
    let started = tokio::time::Instant::now();
    let r = b.call(|| succeed(&calls)).await;
    assert!(
        matches!(r, Err(TestError::Breaker(BreakerError::Timeout { .. }))),
        "a delay longer than the timeout times the call out: {r:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(200));
    b.inject(None, None).await.expect("clear");
    assert_eq!(b.call(|| succeed(&calls)).await, Ok(7));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_call_counts_a_cancellation_and_frees_the_probe() {
    let b = Breaker::builder("built.cancel")
        .threshold(1)
        .open_for(Duration::from_secs(1))
        .build()
        .expect("valid settings");
    let calls = AtomicU32::new(0);
    assert!(b.call(|| fail(&calls)).await.is_err());
    advance(Duration::from_secs(1)).await;
    // The probe's future is dropped midway.
    let probe = b.call(|| async {
        sleep(Duration::from_secs(60)).await;
        Ok::<u32, TestError>(1)
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(10), probe)
            .await
            .is_err()
    );
    assert_eq!(b.counters().cancelled, 1);
    // The probe slot is free again: the next call is the probe.
    assert_eq!(b.call(|| succeed(&calls)).await, Ok(7));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn the_builder_applies_the_attributes_rules_and_defaults() {
    let d = Breaker::builder("built.defaults")
        .build()
        .expect("defaults");
    assert_eq!(d.config(), breaker_runtime::Config::new());
    let e = Breaker::builder("built.bad")
        .threshold(0)
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "threshold");
    let e = Breaker::builder("built.bad")
        .open_for(Duration::from_secs(60))
        .max_open_for(Duration::from_secs(10))
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "max_open_for");
    // The text form gives the error BREAKER_OVERRIDES gives for the same setting.
    let by_text = Breaker::builder("built.bad")
        .set("timeout", "soon")
        .build()
        .unwrap_err();
    let mut c = breaker_runtime::Config::new();
    let by_override = c.set("timeout", "soon").unwrap_err();
    assert_eq!(by_text.to_string(), by_override.to_string());
    let unknown = Breaker::builder("built.bad")
        .set("treshold", "5")
        .build()
        .unwrap_err();
    assert!(
        unknown.to_string().contains("unknown setting `treshold`"),
        "{unknown}"
    );
    // Text settings apply in order and are checked together, at build.
    let ok = Breaker::builder("built.text")
        .set("max_open_for", "10m")
        .set("open_for", "5m")
        .build()
        .expect("valid text settings");
    assert_eq!(ok.config().max_open_for, Duration::from_secs(600));
    for name in ["", "with space", "fleet{a}", &"x".repeat(201)] {
        let e = Breaker::builder(name).build().unwrap_err();
        assert_eq!(e.setting(), "name", "{name:?}");
    }
    assert!(
        breakers().iter().all(|h| h.name() != "built.bad"),
        "a refused breaker was registered"
    );
}

#[test]
fn one_name_is_one_breaker() {
    let a = Breaker::builder("built.same")
        .threshold(4)
        .build()
        .expect("first");
    let b = Breaker::builder("built.same")
        .threshold(4)
        .build()
        .expect("same settings");
    assert_eq!(a.name(), b.name());
    assert!(breakers().iter().any(|h| h.name() == "built.same"));
    let e = Breaker::builder("built.same")
        .threshold(5)
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "name");
    assert!(e.to_string().contains("exists with other settings"), "{e}");
    let e = Breaker::builder("built.same")
        .threshold(4)
        .store(StoreKind::Memory)
        .fallback("other")
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "name");
}

#[tokio::test(start_paused = true)]
async fn failure_if_counts_only_the_errors_it_names() {
    let b = Breaker::builder("built.failure_if")
        .threshold(1)
        .build()
        .expect("valid settings");
    let outage = |e: &TestError| matches!(e, TestError::Down(_));
    for _ in 0..3 {
        let r: Result<u32, TestError> = b
            .call_with_failure_if(|| async { Err(TestError::NotFound) }, outage)
            .await;
        assert_eq!(r, Err(TestError::NotFound), "returned as it is");
    }
    assert_eq!(b.state(), State::Closed, "a not-found is an answer");
    let c = b.counters();
    assert_eq!((c.successes, c.failures), (3, 0));
    let r: Result<u32, TestError> = b
        .call_with_failure_if(|| async { Err(TestError::Down("p")) }, outage)
        .await;
    assert_eq!(r, Err(TestError::Down("p")));
    assert_eq!(b.state(), State::Open, "an outage counts");
    let r: Result<u32, TestError> = b.call_with_failure_if(|| async { Ok(1) }, outage).await;
    assert!(r.unwrap_err().is_open());
}
