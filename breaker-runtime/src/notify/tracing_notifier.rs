//! [`TracingNotifier`]: the default notifier, through `tracing`.

use crate::core::machine::State;
use crate::notify::{Event, EventKind, Notifier};

/// The default notifier: transitions through `tracing` (OPEN at `warn`, the rest at `info`),
/// call events at `debug`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingNotifier;

impl Notifier for TracingNotifier {
    fn notify(&self, event: &Event) {
        let breaker = event.breaker;
        match &event.kind {
            EventKind::Transition {
                from,
                to: to @ State::Open,
                reason,
                open_for,
                ..
            } => {
                tracing::warn!(breaker, %from, %to, ?reason, ?open_for, "circuit breaker opened");
            }
            EventKind::Transition {
                from, to, reason, ..
            } => tracing::info!(breaker, %from, %to, ?reason, "circuit breaker state changed"),
            EventKind::Rejected { retry_after } => {
                tracing::debug!(breaker, ?retry_after, "call rejected by circuit breaker");
            }
            EventKind::Fallback { reason } => {
                tracing::debug!(breaker, ?reason, "fallback served the call");
            }
            EventKind::ConfigRejected { message } => {
                tracing::error!(breaker, %message, "circuit breaker configuration refused");
            }
            EventKind::StoreHealth { healthy, message } => {
                tracing::info!(healthy, %message, "circuit breaker store");
            }
            EventKind::StoreError { message } => {
                tracing::error!(breaker, %message, "circuit breaker store error");
            }
            EventKind::Alert(a) => {
                let injected = event.injected;
                tracing::warn!(
                    breaker,
                    kind = a.kind.as_str(),
                    from = %a.from,
                    to = %a.to,
                    failures = a.failures,
                    last_error = a.last_error.as_deref().unwrap_or(""),
                    fallback = a.fallback.unwrap_or(""),
                    injected,
                    "circuit breaker alert"
                );
            }
        }
    }
}
