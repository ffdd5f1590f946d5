//! The address-search demo: the story of the 2019 postcode outage, replayed in ten seconds.
//!
//! Users search for addresses. The primary provider (shaped like Daum's postcode service) sits
//! behind a circuit breaker whose fallback is the secondary provider (shaped like the road-name
//! address API); an emergency notice is the last step when both are down. Midway the primary
//! starts hanging, as it did in the outage: the breaker times the calls out, opens, and the
//! secondary serves every request while an alert is printed; when the primary recovers, a
//! HALF_OPEN probe closes the breaker again. For a while the secondary fails too, and searches
//! end at the emergency notice. No user sees an error.
//!
//! Run: `cargo run -p breaker-examples --bin address-search`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use breaker_runtime::{
    BreakerError, Event, EventKind, Notifier, Runtime, State, breaker, circuit_breaker,
};
use tokio::time::{Instant, sleep};

/// One normalised address, whichever provider found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address {
    /// Road-name address.
    pub(crate) road: String,
    /// Lot-number (jibun) address.
    pub(crate) jibun: String,
    /// Five-digit postcode.
    pub(crate) zip: String,
    /// Which provider answered.
    pub(crate) source: &'static str,
}

/// Why a search failed.
#[derive(Debug, Clone)]
pub(crate) enum SearchError {
    /// A provider answered with an error.
    Provider(&'static str, String),
    /// A breaker rejected or timed out the call.
    Breaker(BreakerError),
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchError::Provider(p, e) => write!(f, "{p}: {e}"),
            SearchError::Breaker(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SearchError {}

impl From<BreakerError> for SearchError {
    fn from(e: BreakerError) -> Self {
        SearchError::Breaker(e)
    }
}

/// The primary provider, in process: a Daum-postcode-like response.
mod daum_api {
    use super::{AtomicU8, Duration, Ordering, sleep};

    pub(crate) const UP: u8 = 0;
    pub(crate) const HANGING: u8 = 1;
    pub(crate) static HEALTH: AtomicU8 = AtomicU8::new(UP);

    /// `{"documents": [{"road_address": ..., "jibun_address": ..., "zonecode": ...}]}`
    pub(crate) struct Document {
        pub(crate) road_address: String,
        pub(crate) jibun_address: String,
        pub(crate) zonecode: String,
    }

    pub(crate) async fn search(query: &str) -> Result<Vec<Document>, String> {
        if HEALTH.load(Ordering::SeqCst) == HANGING {
            // The 2019 outage: the service stopped answering.
            sleep(Duration::from_secs(30)).await;
            return Err("connection reset".into());
        }
        sleep(Duration::from_millis(40)).await;
        Ok(vec![Document {
            road_address: format!("경기 성남시 분당구 {query}"),
            jibun_address: "경기 성남시 분당구 삼평동 681".into(),
            zonecode: "13529".into(),
        }])
    }
}

/// The secondary provider, in process: a road-name-address-API-like response.
mod juso_api {
    use super::{AtomicBool, Duration, Ordering, sleep};

    pub(crate) static DOWN: AtomicBool = AtomicBool::new(false);

    /// `{"results": {"common": {"errorCode": "0"}, "juso": [{"roadAddr", "jibunAddr", "zipNo"}]}}`
    pub(crate) struct Results {
        pub(crate) error_code: String,
        pub(crate) juso: Vec<Juso>,
    }

    pub(crate) struct Juso {
        pub(crate) road_addr: String,
        pub(crate) jibun_addr: String,
        pub(crate) zip_no: String,
    }

    pub(crate) async fn search(keyword: &str) -> Results {
        sleep(Duration::from_millis(60)).await;
        if DOWN.load(Ordering::SeqCst) {
            return Results {
                error_code: "E0001".into(),
                juso: Vec::new(),
            };
        }
        Results {
            error_code: "0".into(),
            juso: vec![Juso {
                road_addr: format!("경기도 성남시 분당구 {keyword} (삼평동)"),
                jibun_addr: "경기도 성남시 분당구 삼평동 681".into(),
                zip_no: "13529".into(),
            }],
        }
    }
}

/// Primary: Daum's postcode service. A slow answer is a failure (the story's signal).
#[circuit_breaker(name = "daum", fallback = juso, timeout = "300ms", threshold = 3,
                  window = "10s", open_for = "2s", half_open_probes = 1)]
async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
    let docs = daum_api::search(query)
        .await
        .map_err(|e| SearchError::Provider("daum", e))?;
    Ok(docs
        .into_iter()
        .map(|d| Address {
            road: d.road_address,
            jibun: d.jibun_address,
            zip: d.zonecode,
            source: "daum",
        })
        .collect())
}

/// Secondary: the road-name address API; the emergency notice when it fails too.
#[circuit_breaker(name = "juso", fallback = emergency, timeout = "1s", threshold = 3, open_for = "2s")]
async fn juso(query: &str) -> Result<Vec<Address>, SearchError> {
    let r = juso_api::search(query).await;
    if r.error_code != "0" {
        return Err(SearchError::Provider("juso", r.error_code));
    }
    Ok(r.juso
        .into_iter()
        .map(|j| Address {
            road: j.road_addr,
            jibun: j.jibun_addr,
            zip: j.zip_no,
            source: "juso",
        })
        .collect())
}

/// Last step: both providers are down; the caller shows the apology notice.
async fn emergency(_query: &str) -> Result<Vec<Address>, SearchError> {
    Ok(Vec::new())
}

/// Prints alerts the way the team's Telegram bot would receive them.
#[derive(Debug)]
struct Alerts {
    start: Instant,
}

impl Notifier for Alerts {
    fn notify(&self, event: &Event) {
        let t = self.start.elapsed().as_secs_f64();
        if let EventKind::Transition {
            from, to, reason, ..
        } = &event.kind
        {
            let serving = match (event.breaker, to) {
                ("daum", State::Open) => " — juso now serves every search",
                ("daum", State::Closed) => " — daum serves again",
                _ => "",
            };
            println!(
                "[{t:5.2}s] ALERT breaker `{}`: {from} -> {to} ({reason:?}){serving}",
                event.breaker
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    if let Err(e) = Runtime::builder()
        .notifier(Arc::new(Alerts { start }))
        .install()
    {
        eprintln!("cannot configure breakers: {e}");
        std::process::exit(1);
    }
    println!(
        "address search demo: primary `daum` (timeout 300ms, opens after 3 failures, open 2s), secondary `juso`\n"
    );

    let queries = [
        "판교역로 235",
        "판교역로 166",
        "분당내곡로 131",
        "대왕판교로 645",
    ];
    let mut errors = 0;
    let mut served = [0usize; 3];
    for i in 0..44 {
        let t = start.elapsed().as_secs_f64();
        match i {
            10 => {
                daum_api::HEALTH.store(daum_api::HANGING, Ordering::SeqCst);
                println!("[{t:5.2}s] --- daum stops answering (the 2019-11-27 outage) ---");
            }
            16 => {
                juso_api::DOWN.store(true, Ordering::SeqCst);
                println!(
                    "[{t:5.2}s] --- juso fails too: the chain ends at the emergency notice ---"
                );
            }
            20 => {
                juso_api::DOWN.store(false, Ordering::SeqCst);
                println!(
                    "[{t:5.2}s] --- juso is back (its breaker stays open for 2s, then probes) ---"
                );
            }
            34 => {
                daum_api::HEALTH.store(daum_api::UP, Ordering::SeqCst);
                println!("[{t:5.2}s] --- daum is back ---");
            }
            _ => {}
        }
        let q = queries[i % queries.len()];
        let state = breaker("daum").map_or(State::Closed, |h| h.state());
        let began = Instant::now();
        let result = daum(q).await;
        let t = start.elapsed().as_secs_f64();
        match result {
            Ok(found) if found.is_empty() => {
                served[2] += 1;
                println!("[{t:5.2}s] {q:<14} -> notice: address search is temporarily unavailable");
            }
            Ok(found) => {
                let a = &found[0];
                served[usize::from(a.source == "juso")] += 1;
                println!(
                    "[{t:5.2}s] {q:<14} -> {:<4} {} ({}) in {:>3}ms   [daum breaker was {state}]",
                    a.source,
                    a.road,
                    a.zip,
                    began.elapsed().as_millis()
                );
            }
            Err(e) => {
                errors += 1;
                println!("[{t:5.2}s] {q:<14} -> ERROR {e}");
            }
        }
        sleep(Duration::from_millis(200)).await;
    }
    breaker_runtime::flush_notifications(Duration::from_secs(1));
    let d = breaker("daum").map(|h| h.counters()).unwrap_or_default();
    println!(
        "\n{} searches: {} by daum, {} by juso, {} notices, {errors} errors seen by users",
        served.iter().sum::<usize>() + errors,
        served[0],
        served[1],
        served[2]
    );
    println!(
        "daum breaker: {} calls, {} successes, {} failures ({} timeouts), {} rejected without calling daum, {} served by the fallback",
        d.calls, d.successes, d.failures, d.timeouts, d.rejections, d.fallbacks
    );
    if errors > 0 {
        std::process::exit(1);
    }
}
