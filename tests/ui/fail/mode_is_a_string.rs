use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(mode = shadow)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
