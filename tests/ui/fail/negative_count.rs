use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(half_open_probes = -1)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
