//! `return` from the middle of the body, with `Ok` and with `Err`, and from inside a loop.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Negative,
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

#[circuit_breaker(name = "classify", threshold = 5)]
async fn classify(n: i32) -> Result<&'static str, AppError> {
    if n < 0 {
        return Err(AppError::Negative);
    }
    if n == 0 {
        return Ok("zero");
    }
    for d in 2..n {
        if n % d == 0 {
            return Ok("composite");
        }
    }
    Ok("prime or one")
}

#[circuit_breaker(threshold = 5, fallback = never_found)]
async fn find(items: &[u32], wanted: u32) -> Result<usize, AppError> {
    for (i, item) in items.iter().enumerate() {
        if *item == wanted {
            return Ok(i);
        }
    }
    Err(AppError::Negative)
}

async fn never_found(_items: &[u32], _wanted: u32) -> Result<usize, AppError> {
    Ok(usize::MAX)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(classify(-1).await, Err(AppError::Negative));
    assert_eq!(classify(0).await, Ok("zero"));
    assert_eq!(classify(9).await, Ok("composite"));
    assert_eq!(classify(7).await, Ok("prime or one"));
    assert_eq!(find(&[5, 6], 6).await, Ok(1));
    assert_eq!(find(&[5, 6], 7).await, Ok(usize::MAX));
    let h = breaker_runtime::breaker("classify").expect("registered");
    assert_eq!(h.counters().failures, 1);
}
