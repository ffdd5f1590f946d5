//! `/healthz` (liveness) and `/readyz` (readiness), for the orchestrator's probes.
//!
//! Neither fails because a provider's breaker is OPEN: an open breaker is the service working as
//! designed (the secondary answers, or users read the notice). An orchestrator that pulled an
//! instance from its load balancer, or restarted it, because a provider is down would turn a
//! partial outage into a full one: every instance sees the same provider, so every instance
//! would go. `/readyz` reports the breakers' states in its body for people and dashboards.
//!
//! Both routes sit outside the search API's concurrency limit, load shedding and request
//! timeout: an instance that sheds searches under load is alive and must not be restarted for
//! it.

use axum::Json;
use axum::Router;
use axum::routing::get;
use breaker_runtime::Forced;
use serde::Serialize;

/// One breaker as `/readyz` shows it (no notice, fault or counters: the route has no token).
#[derive(Debug, Serialize)]
struct BreakerState {
    name: &'static str,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    state: &'static str,
    /// `open` or `closed` while an operator forces it.
    forced: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Readiness {
    /// Always `ready` while the service answers: breakers do not decide readiness.
    status: &'static str,
    breakers: Vec<BreakerState>,
}

async fn ready() -> Json<Readiness> {
    let breakers = breaker_runtime::breakers()
        .iter()
        .map(|h| BreakerState {
            name: h.name(),
            state: h.state().as_str(),
            forced: h.forced().map(|f| match f {
                Forced::Open => "open",
                Forced::Closed => "closed",
                _ => "other",
            }),
        })
        .collect();
    Json(Readiness {
        status: "ready",
        breakers,
    })
}

/// The two probe routes.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
}
