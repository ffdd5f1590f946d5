use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(
    treshold = 5,
    timeout = "3",
    failure_rate = 101,
    min_calls = 0,
    fallback = "juso",
    store = "disk",
    timeout = "5s"
)]
fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
