use breaker_runtime::{BreakerError, circuit_breaker};

struct Query(String);

#[circuit_breaker(fallback = juso)]
async fn daum(query: Query) -> Result<usize, BreakerError> {
    Ok(query.0.len())
}

async fn juso(query: Query) -> Result<usize, BreakerError> {
    Ok(query.0.len() + 1)
}

fn main() {}
