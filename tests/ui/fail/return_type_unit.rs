use breaker_runtime::circuit_breaker;

#[circuit_breaker(threshold = 5)]
async fn daum(query: &str) -> () {
    println!("{query}");
}

fn main() {}
