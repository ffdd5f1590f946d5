use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(open_for = 30)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
