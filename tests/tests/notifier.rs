//! Notifiers run off the call path: a blocked or panicking notifier never holds up a call, and
//! the other notifiers still hear every event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker_runtime::{Event, EventKind, FallbackReason, Notifier, State, circuit_breaker};
use breaker_tests::{Recorder, TestError};

/// Blocks on its first event until released.
#[derive(Debug)]
struct Blocking {
    release: Mutex<Option<mpsc::Receiver<()>>>,
    returned: AtomicBool,
}

impl Notifier for Blocking {
    fn notify(&self, _event: &Event) {
        if let Some(rx) = self.release.lock().unwrap().take() {
            let _ = rx.recv_timeout(Duration::from_secs(30));
            self.returned.store(true, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
struct Panicking;

impl Notifier for Panicking {
    fn notify(&self, _event: &Event) {
        panic!("notifier bug");
    }
}

#[circuit_breaker(name = "notify.blocked", threshold = 1, open_for = "1s", fallback = spare)]
async fn flaky() -> Result<u32, TestError> {
    Err(TestError::Down("flaky"))
}

async fn spare() -> Result<u32, TestError> {
    Ok(2)
}

#[tokio::test(start_paused = true)]
async fn blocked_and_panicking_notifiers_never_hold_up_calls() {
    let (release, rx) = mpsc::channel();
    let blocking = Arc::new(Blocking {
        release: Mutex::new(Some(rx)),
        returned: AtomicBool::new(false),
    });
    breaker_runtime::add_notifier(blocking.clone());
    breaker_runtime::add_notifier(Arc::new(Panicking));
    let rec = Recorder::install();
    // The notifier thread is stuck on the first event while these calls trip, reject and
    // re-open the breaker: every call still completes.
    for _ in 0..50 {
        assert_eq!(flaky().await, Ok(2));
        tokio::time::advance(Duration::from_millis(500)).await;
    }
    assert!(
        !blocking.returned.load(Ordering::SeqCst),
        "the calls waited for the notifier"
    );
    release.send(()).unwrap();
    let events = rec.events("notify.blocked");
    let transitions = rec.transitions("notify.blocked");
    assert_eq!(transitions[0], (State::Closed, State::Open));
    assert!(transitions.len() >= 10, "{transitions:?}");
    assert!(events.iter().any(|e| matches!(
        e,
        EventKind::Fallback {
            reason: FallbackReason::Rejected
        }
    )));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, EventKind::Rejected { .. }))
    );
    assert_eq!(breaker_runtime::dropped_events(), 0);
}
