use breaker_runtime::circuit_breaker;

struct Reply(usize);

#[circuit_breaker(threshold = 5)]
async fn daum(query: &str) -> Reply {
    Reply(query.len())
}

fn main() {}
