use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(color = "red")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
