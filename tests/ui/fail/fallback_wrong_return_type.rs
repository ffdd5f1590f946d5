use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = juso)]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

async fn juso(query: &str) -> Result<String, BreakerError> {
    Ok(query.to_owned())
}

fn main() {}
