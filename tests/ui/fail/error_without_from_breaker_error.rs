use breaker_runtime::circuit_breaker;

#[derive(Debug)]
struct SearchError;

#[circuit_breaker(threshold = 5)]
async fn daum(query: &str) -> Result<usize, SearchError> {
    Ok(query.len())
}

fn main() {}
