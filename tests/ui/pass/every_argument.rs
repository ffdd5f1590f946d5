//! Every argument at once.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum SearchError {
    Provider,
    Breaker(BreakerError),
}

impl From<BreakerError> for SearchError {
    fn from(e: BreakerError) -> Self {
        SearchError::Breaker(e)
    }
}

fn is_outage(e: &SearchError) -> bool {
    matches!(e, SearchError::Provider)
}

#[circuit_breaker(
    name = "daum",
    fallback = juso,
    timeout = "3s",
    threshold = 5,
    window = "60s",
    failure_rate = 50,
    min_calls = 20,
    slow_call = "1s",
    open_for = "30s",
    max_open_for = "5m",
    half_open_probes = 2,
    max_concurrent = 100,
    max_wait = "50ms",
    mode = "enforce",
    failure_if = is_outage,
    store = "memory",
)]
async fn daum(query: &str, page: u32) -> Result<Vec<String>, SearchError> {
    if query.is_empty() {
        return Err(SearchError::Provider);
    }
    Ok(vec![format!("{query}:{page}")])
}

async fn juso(query: &str, page: u32) -> Result<Vec<String>, SearchError> {
    Ok(vec![format!("{query}:{page} (from juso)")])
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(daum("seoul", 1).await, Ok(vec!["seoul:1".to_owned()]));
    assert_eq!(daum("", 1).await, Ok(vec![":1 (from juso)".to_owned()]));
    let h = breaker_runtime::breaker("daum").expect("registered");
    assert_eq!(h.counters().failures, 1);
    assert_eq!(h.bulkhead_load(), Some((0, 100)));
    assert_eq!(h.config().max_wait, Some(std::time::Duration::from_millis(50)));
}
