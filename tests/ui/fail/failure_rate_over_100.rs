use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(failure_rate = 101)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
