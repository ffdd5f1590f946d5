use breaker_runtime::circuit_breaker;

#[circuit_breaker(threshold = 5)]
struct Daum;

fn main() {}
