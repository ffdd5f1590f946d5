use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = juso)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

async fn juso(query: &str, page: u32) -> Result<usize, BreakerError> {
    Ok(query.len() + page as usize)
}

fn main() {}
