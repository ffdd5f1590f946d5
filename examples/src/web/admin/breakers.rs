//! `GET /api/admin/breakers`: every breaker as the console shows it.

use axum::Json;
use axum::response::Response;
use breaker_runtime::{Forced, Handle};
use serde::{Deserialize, Serialize};

use crate::duration::millis;
use crate::web::error::no_store;

/// One breaker as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerView {
    /// `provider.daum`, `provider.juso`.
    pub name: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub state: String,
    /// `open` or `closed` while an operator forces it.
    pub forced: Option<String>,
    /// Whether its fallback is called first (dormant while in shadow mode).
    pub swapped: bool,
    /// Whether it runs in shadow mode now: every call runs, none is rejected or sent to the
    /// fallback, everything is counted (an operator's force-open still rejects).
    pub shadow: bool,
    /// The operator's mode: `true` shadow, `false` enforce, `None` when none is set (the mode
    /// declared in the attribute is in force).
    pub shadow_override: Option<bool>,
    /// The injected fault (`error:0.5`, `delay:2000ms`, ...).
    pub fault: Option<String>,
    /// Milliseconds the fault has left, when it expires.
    pub fault_ms_left: Option<u64>,
    /// The notice users read.
    pub notice: Option<String>,
    /// Its fallback, as written in the attribute.
    pub fallback: Option<String>,
    /// Milliseconds until an OPEN breaker lets a probe through.
    pub retry_after_ms: Option<u64>,
    /// Failures in the sliding window now.
    pub failures_in_window: u64,
    /// Its bulkhead (`max_concurrent`) in this instance, `None` (`null`) without one.
    pub bulkhead: Option<BulkheadView>,
    /// Counters since the process started.
    pub counters: CountersView,
}

/// A breaker's bulkhead as this instance sees it: a bulkhead is per instance, so another
/// instance's calls are not in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkheadView {
    /// Calls of the breaker in flight in this instance now.
    pub in_flight: u32,
    /// The most it lets in at once (`max_concurrent`).
    pub max_concurrent: u32,
}

/// A breaker's counters since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountersView {
    /// Every call, admitted or rejected.
    pub calls: u64,
    /// Admitted calls that succeeded.
    pub successes: u64,
    /// Admitted calls that failed (errors, timeouts, slow calls, panics).
    pub failures: u64,
    /// Failures that were timeouts.
    pub timeouts: u64,
    /// Calls rejected without calling the provider.
    pub rejections: u64,
    /// Calls served by the fallback.
    pub fallbacks: u64,
    /// Calls a breaker in shadow mode would have rejected and ran anyway.
    pub shadow_rejections: u64,
}

/// The admin view of one breaker.
#[must_use]
pub fn view(handle: &Handle) -> BreakerView {
    let c = handle.counters();
    BreakerView {
        name: handle.name().to_owned(),
        state: handle.state().as_str().to_owned(),
        forced: handle.forced().map(|f| {
            match f {
                Forced::Open => "open",
                Forced::Closed => "closed",
                _ => "other",
            }
            .to_owned()
        }),
        swapped: handle.swapped(),
        shadow: handle.is_shadow(),
        shadow_override: handle.shadow_override(),
        fault: handle.fault().map(|f| f.to_string()),
        fault_ms_left: handle.fault_remaining().map(millis),
        notice: handle.notice(),
        fallback: handle.fallback().map(str::to_owned),
        retry_after_ms: handle.retry_after().map(millis),
        failures_in_window: u64::try_from(handle.failures_in_window()).unwrap_or(u64::MAX),
        bulkhead: handle
            .bulkhead_load()
            .map(|(in_flight, max_concurrent)| BulkheadView {
                in_flight,
                max_concurrent,
            }),
        counters: CountersView {
            calls: c.calls,
            successes: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            rejections: c.rejections,
            fallbacks: c.fallbacks,
            shadow_rejections: c.shadow_rejections,
        },
    }
}

pub(super) async fn list() -> Response {
    let all: Vec<BreakerView> = breaker_runtime::breakers().iter().map(view).collect();
    no_store(Json(all))
}
