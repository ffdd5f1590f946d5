use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = daum)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
