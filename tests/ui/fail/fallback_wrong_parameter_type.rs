use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = juso)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

async fn juso(id: u64) -> Result<usize, BreakerError> {
    Ok(id as usize)
}

fn main() {}
