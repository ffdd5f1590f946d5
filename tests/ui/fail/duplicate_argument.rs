use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(threshold = 5, timeout = "3s", threshold = 10)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
