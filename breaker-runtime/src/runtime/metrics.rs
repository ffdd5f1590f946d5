//! Per-breaker counters and state through the `metrics` facade (feature `metrics`), so whatever
//! exporter the application installs (Prometheus, OpenTelemetry, ...) picks them up.
//!
//! Nothing is added to the call path: a `breaker-metrics` thread, started with the first breaker,
//! reads every breaker's counters each interval (1 s by default,
//! [`RuntimeBuilder::metrics_interval`](crate::runtime::builder::RuntimeBuilder::metrics_interval))
//! and publishes them as absolute counter values; transitions are counted where they happen
//! (the slow path).
//!
//! | metric | kind | labels | meaning |
//! | --- | --- | --- | --- |
//! | `breaker_calls_total` | counter | `breaker`, `outcome` | calls by outcome: `success`, `error`, `timeout`, `slow`, `panic` (the four failures), `rejected`, `cancelled`; they sum to all calls |
//! | `breaker_fallbacks_total` | counter | `breaker` | calls served by the fallback |
//! | `breaker_state` | gauge | `breaker` | 0 CLOSED, 1 OPEN, 2 HALF_OPEN |
//! | `breaker_forced` | gauge | `breaker` | 0 none, 1 forced open, 2 forced closed |
//! | `breaker_transitions_total` | counter | `breaker`, `from`, `to` | state changes |

use std::sync::OnceLock;
use std::time::Duration;

use crate::core::machine::{Forced, State};
use crate::runtime::handle::Handle;

/// Starts the exporter thread (once per process).
pub(crate) fn start(interval: Duration, breakers: fn() -> Vec<Handle>) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("breaker-metrics".into())
            .spawn(move || {
                loop {
                    for h in breakers() {
                        export(&h);
                    }
                    std::thread::sleep(interval);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the breaker-metrics thread");
        }
    });
}

/// Publishes one breaker's counters and state.
pub(crate) fn export(h: &Handle) {
    let c = h.counters();
    let name = h.name();
    let errors = c
        .failures
        .saturating_sub(c.timeouts + c.slow_calls + c.panics);
    for (outcome, value) in [
        ("success", c.successes),
        ("error", errors),
        ("timeout", c.timeouts),
        ("slow", c.slow_calls),
        ("panic", c.panics),
        ("rejected", c.rejections),
        ("cancelled", c.cancelled),
        ("shadow_rejected", c.shadow_rejections),
    ] {
        metrics::counter!("breaker_calls_total", "breaker" => name, "outcome" => outcome)
            .absolute(value);
    }
    metrics::counter!("breaker_fallbacks_total", "breaker" => name).absolute(c.fallbacks);
    let state = match h.state() {
        State::Open => 1.0,
        State::HalfOpen => 2.0,
        _ => 0.0,
    };
    metrics::gauge!("breaker_state", "breaker" => name).set(state);
    let forced = match h.forced() {
        Some(Forced::Open) => 1.0,
        Some(Forced::Closed) => 2.0,
        _ => 0.0,
    };
    metrics::gauge!("breaker_forced", "breaker" => name).set(forced);
    let shadow = if h.is_shadow() { 1.0 } else { 0.0 };
    metrics::gauge!("breaker_shadow", "breaker" => name).set(shadow);
    if let Some((in_flight, max)) = h.bulkhead_load() {
        metrics::gauge!("breaker_in_flight", "breaker" => name).set(f64::from(in_flight));
        metrics::gauge!("breaker_max_concurrent", "breaker" => name).set(f64::from(max));
    }
}
