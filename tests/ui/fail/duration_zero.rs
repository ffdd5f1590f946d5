use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(timeout = "0ms")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
