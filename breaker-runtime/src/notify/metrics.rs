//! Transitions counted through the `metrics` facade where they happen (feature `metrics`); the
//! periodic export of every breaker's counters is the runtime's (`metrics_export`).

use crate::core::machine::Transition;

/// Counts a transition.
pub(crate) fn transition(name: &'static str, t: &Transition) {
    metrics::counter!(
        "breaker_transitions_total",
        "breaker" => name,
        "from" => t.from.as_str(),
        "to" => t.to.as_str()
    )
    .increment(1);
}
