//! Shared helpers for the workspace tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker_runtime::{BreakerError, Event, EventKind, Notifier, State};

/// The error type of the test providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// The provider failed.
    Down(&'static str),
    /// The provider answered with an error that is not an outage.
    NotFound,
    /// The breaker rejected or timed out the call.
    Breaker(BreakerError),
}

impl From<BreakerError> for TestError {
    fn from(e: BreakerError) -> Self {
        TestError::Breaker(e)
    }
}

impl TestError {
    /// Whether this is a rejection by an open breaker.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self, TestError::Breaker(BreakerError::Open { .. }))
    }

    /// Whether this is a timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, TestError::Breaker(BreakerError::Timeout { .. }))
    }
}

/// A notifier that records every event.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// Installs a new recorder as a notifier of this process.
    #[must_use]
    pub fn install() -> Arc<Recorder> {
        let r = Arc::new(Recorder::default());
        breaker_runtime::add_notifier(r.clone());
        r
    }

    /// The transitions `(from, to)` recorded for `breaker`, after waiting for delivery.
    #[must_use]
    pub fn transitions(&self, breaker: &str) -> Vec<(State, State)> {
        assert!(
            breaker_runtime::flush_notifications(Duration::from_secs(10)),
            "notifier queue did not drain"
        );
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.breaker == breaker)
            .filter_map(|e| match e.kind {
                EventKind::Transition { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    }

    /// Every event recorded for `breaker`, after waiting for delivery.
    #[must_use]
    pub fn events(&self, breaker: &str) -> Vec<EventKind> {
        assert!(breaker_runtime::flush_notifications(Duration::from_secs(
            10
        )));
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.breaker == breaker)
            .map(|e| e.kind.clone())
            .collect()
    }
}

impl Notifier for Recorder {
    fn notify(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }

    fn wants_call_events(&self) -> bool {
        true
    }
}
