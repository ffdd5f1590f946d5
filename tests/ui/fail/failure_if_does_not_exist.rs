use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(failure_if = is_outage)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
