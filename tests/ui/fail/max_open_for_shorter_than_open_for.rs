use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(open_for = "1m", max_open_for = "10s")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
