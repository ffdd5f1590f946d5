use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(max_concurrent = 0)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
