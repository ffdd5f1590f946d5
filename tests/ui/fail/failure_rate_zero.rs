use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(failure_rate = 0)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
