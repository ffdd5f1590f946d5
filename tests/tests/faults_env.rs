//! `BREAKER_FAULTS` injects faults into this process's breakers without a code change. Runtime
//! settings are fixed once per process, so the test re-runs this binary as a child process with
//! the variable set.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{BreakerError, EventKind, Fault, breaker, circuit_breaker};
use breaker_tests::{Recorder, TestError};
use tokio::time::Instant;

const CHILD: &str = "BREAKER_TEST_FAULTS_CHILD";

static A_CALLS: AtomicUsize = AtomicUsize::new(0);
static B_CALLS: AtomicUsize = AtomicUsize::new(0);
static C_CALLS: AtomicUsize = AtomicUsize::new(0);

#[circuit_breaker(name = "a", threshold = 100)]
async fn a() -> Result<u32, TestError> {
    A_CALLS.fetch_add(1, SeqCst);
    Ok(1)
}

#[circuit_breaker(name = "b", threshold = 100)]
async fn b() -> Result<u32, TestError> {
    B_CALLS.fetch_add(1, SeqCst);
    Ok(2)
}

#[circuit_breaker(name = "c", threshold = 100)]
async fn c() -> Result<u32, TestError> {
    C_CALLS.fetch_add(1, SeqCst);
    Ok(3)
}

#[test]
fn env_faults_apply_and_bad_entries_are_reported() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    breaker_tests::run_child(
        "env_faults_apply_and_bad_entries_are_reported",
        CHILD,
        &[("BREAKER_FAULTS", "a=error,b=delay:2s,c=bogus,=x")],
    );
}

fn child() {
    // Before any breaker exists: the settings (and their complaints) are read with the first.
    let rec = Recorder::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        // a: every call fails as injected, without calling the function.
        for _ in 0..3 {
            assert_eq!(
                a().await,
                Err(TestError::Breaker(BreakerError::Injected { breaker: "a" }))
            );
        }
        assert_eq!(A_CALLS.load(SeqCst), 0, "a's function was called");
        let ha = breaker("a").unwrap();
        assert_eq!(ha.fault(), Some(Fault::Error { rate: 1.0 }));
        assert_eq!(ha.counters().failures, 3);

        // b: delayed by 2 s, then called.
        let hb = breaker("b").unwrap();
        assert_eq!(hb.fault(), Some(Fault::Delay(Duration::from_secs(2))));
        let start = Instant::now();
        assert_eq!(b().await, Ok(2));
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(2), "b took {took:?}");
        assert_eq!(B_CALLS.load(SeqCst), 1);

        // c: its entry is malformed, so it is untouched.
        let hc = breaker("c").unwrap();
        assert_eq!(hc.fault(), None);
        let start = Instant::now();
        assert_eq!(c().await, Ok(3));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(C_CALLS.load(SeqCst), 1);
        assert_eq!(hc.counters().successes, 1);
    });
    let mut events = rec.events("");
    events.extend(rec.events("c"));
    let rejected: Vec<String> = events
        .into_iter()
        .filter_map(|k| match k {
            EventKind::ConfigRejected { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected
            .iter()
            .any(|m| m.contains("`c`") && m.contains("is not a fault")),
        "{rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|m| m.contains("`=x`") && m.contains("is not of the form")),
        "{rejected:?}"
    );
    assert!(
        rejected.iter().all(|m| m.contains("BREAKER_FAULTS")),
        "{rejected:?}"
    );
    println!("child checks passed");
}
