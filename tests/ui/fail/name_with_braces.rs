use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(name = "daum{search}")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
