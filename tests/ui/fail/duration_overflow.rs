use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(open_for = "99999999999999999999999999d", slow_call = "1000000001s")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
