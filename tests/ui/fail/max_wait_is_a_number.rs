use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(max_concurrent = 10, max_wait = 50)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
