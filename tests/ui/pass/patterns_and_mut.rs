//! `mut` parameters and destructuring patterns (without a fallback), and a `_` parameter.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

struct Point {
    x: i32,
    y: i32,
}

#[circuit_breaker(threshold = 5)]
async fn norm1(Point { x, y }: Point, (dx, dy): (i32, i32), _: ()) -> Result<i32, AppError> {
    Ok((x + dx).abs() + (y + dy).abs())
}

#[circuit_breaker(threshold = 5, fallback = zero)]
async fn push_all(mut acc: Vec<u8>, n: u8) -> Result<Vec<u8>, AppError> {
    acc.extend(0..n);
    Ok(acc)
}

async fn zero(_acc: Vec<u8>, _n: u8) -> Result<Vec<u8>, AppError> {
    Ok(Vec::new())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(norm1(Point { x: 1, y: -2 }, (1, 0), ()).await, Ok(4));
    assert_eq!(push_all(vec![9], 2).await, Ok(vec![9, 0, 1]));
}
