use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(window = "1y")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
