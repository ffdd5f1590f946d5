use breaker_runtime::circuit_breaker;

#[circuit_breaker(threshold = 5)]
async fn daum(query: &str) -> Option<usize> {
    Some(query.len())
}

fn main() {}
