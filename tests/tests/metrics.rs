//! The `metrics` feature: counters and state of every breaker through the `metrics` facade,
//! read here with `metrics-util`'s debugging recorder (as an exporter would).

use std::collections::HashMap;
use std::time::Duration;

use breaker_runtime::{Runtime, circuit_breaker};
use breaker_tests::TestError;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// A bulkheaded breaker: its calls in flight and limit are gauges.
#[circuit_breaker(name = "metered.bulk", max_concurrent = 3)]
async fn bulk(hold: Duration) -> Result<u32, TestError> {
    tokio::time::sleep(hold).await;
    Ok(1)
}

#[circuit_breaker(name = "metered", threshold = 2, open_for = "1h", fallback = spare)]
async fn metered(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("metered"))
    } else {
        Ok(1)
    }
}

async fn spare(_fail: bool) -> Result<u32, TestError> {
    Ok(0)
}

/// What the recorder has seen so far. Its snapshots drain counters, as an exporter's scrape
/// would: absolute counters (republished every interval) keep their largest value, incremented
/// ones (transitions) add up, gauges keep the last.
#[derive(Default)]
struct Seen(HashMap<String, f64>);

impl Seen {
    fn take(&mut self, snap: &Snapshotter) {
        for (key, _, _, v) in snap.snapshot().into_vec() {
            let k = key.key();
            let mut labels: Vec<String> = k
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            let id = format!("{}{{{}}}", k.name(), labels.join(","));
            let slot = self.0.entry(id).or_insert(0.0);
            match v {
                DebugValue::Counter(n) if k.name() == "breaker_transitions_total" => {
                    *slot += n as f64
                }
                DebugValue::Counter(n) => *slot = slot.max(n as f64),
                DebugValue::Gauge(g) => *slot = g.into_inner(),
                DebugValue::Histogram(_) => {}
            }
        }
    }

    fn get(&self, id: &str) -> f64 {
        self.0.get(id).copied().unwrap_or(-1.0)
    }
}

#[tokio::test]
async fn counters_state_and_transitions_reach_the_recorder() {
    let recorder = DebuggingRecorder::new();
    let snap = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    Runtime::builder()
        .metrics_interval(Duration::from_millis(20))
        .install()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(metered(false).await, Ok(1));
    }
    assert_eq!(metered(true).await, Ok(0));
    assert_eq!(metered(true).await, Ok(0));
    assert_eq!(metered(false).await, Ok(0), "open: served by the fallback");
    let held = tokio::spawn(bulk(Duration::from_secs(60)));

    let want = [
        ("breaker_calls_total{breaker=metered,outcome=success}", 3.0),
        ("breaker_calls_total{breaker=metered,outcome=error}", 2.0),
        ("breaker_calls_total{breaker=metered,outcome=rejected}", 1.0),
        ("breaker_calls_total{breaker=metered,outcome=timeout}", 0.0),
        ("breaker_fallbacks_total{breaker=metered}", 3.0),
        (
            "breaker_transitions_total{breaker=metered,from=CLOSED,to=OPEN}",
            1.0,
        ),
        ("breaker_state{breaker=metered}", 1.0),
        ("breaker_forced{breaker=metered}", 0.0),
        ("breaker_in_flight{breaker=metered.bulk}", 1.0),
        ("breaker_max_concurrent{breaker=metered.bulk}", 3.0),
    ];
    // The exporter publishes every 20 ms: wait (bounded) for it.
    let mut seen = Seen::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        seen.take(&snap);
        if want
            .iter()
            .all(|(id, v)| (seen.get(id) - v).abs() < f64::EPSILON)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics never matched: {:?}",
            seen.0
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.abort();
}
