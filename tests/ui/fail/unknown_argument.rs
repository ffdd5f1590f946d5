use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(treshold = 5)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
