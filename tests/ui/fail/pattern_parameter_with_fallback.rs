use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(fallback = juso)]
async fn daum((query, page): (&str, u32)) -> Result<usize, BreakerError> {
    Ok(query.len() + page as usize)
}

async fn juso(pair: (&str, u32)) -> Result<usize, BreakerError> {
    Ok(pair.0.len())
}

fn main() {}
