//! `?` inside the body, converting through `From` into the function's error type.
use std::num::ParseIntError;

use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Parse(ParseIntError),
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

impl From<ParseIntError> for AppError {
    fn from(e: ParseIntError) -> Self {
        AppError::Parse(e)
    }
}

async fn fetch(raw: &str) -> Result<String, AppError> {
    Ok(raw.trim().to_owned())
}

#[circuit_breaker(threshold = 5)]
async fn parse_sum(a: &str, b: &str) -> Result<i64, AppError> {
    let a: i64 = fetch(a).await?.parse()?;
    let b: i64 = b.parse()?;
    Ok(a + b)
}

/// `?` on the breaker's own result in a caller.
async fn caller() -> Result<i64, AppError> {
    let n = parse_sum("1", "2").await?;
    Ok(n * 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse_sum(" 40 ", "2").await, Ok(42));
    assert!(matches!(parse_sum("x", "2").await, Err(AppError::Parse(_))));
    assert_eq!(caller().await, Ok(30));
}
