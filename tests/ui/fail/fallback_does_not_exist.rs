use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = jusoo)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

async fn juso(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len() + 1)
}

fn main() {}
