use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(failure_if = |e: &BreakerError| e.breaker() == "daum")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
