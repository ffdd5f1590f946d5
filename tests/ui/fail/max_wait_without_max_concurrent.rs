use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(max_wait = "50ms")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
