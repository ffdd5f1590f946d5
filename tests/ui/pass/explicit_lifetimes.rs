//! Explicit lifetimes in parameters and in the result, with a fallback.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Empty,
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

#[circuit_breaker(threshold = 5, fallback = whole)]
async fn first_word<'a>(text: &'a str) -> Result<&'a str, AppError> {
    text.split_whitespace().next().ok_or(AppError::Empty)
}

/// The fallback may elide what the primary spells out: the signatures are the same.
async fn whole(text: &str) -> Result<&str, AppError> {
    Ok(text)
}

#[circuit_breaker(threshold = 5)]
async fn longest<'a, 'b: 'a>(a: &'a str, b: &'b str) -> Result<&'a str, AppError> {
    Ok(if b.len() > a.len() { b } else { a })
}

struct Parser<'s> {
    source: &'s str,
}

impl<'s> Parser<'s> {
    #[circuit_breaker(threshold = 5, fallback = Self::rest_or_all)]
    async fn rest(&self, skip: usize) -> Result<&'s str, AppError> {
        self.source.get(skip..).ok_or(AppError::Empty)
    }

    async fn rest_or_all(&self, _skip: usize) -> Result<&'s str, AppError> {
        Ok(self.source)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let text = String::from("circuit breaker");
    assert_eq!(first_word(&text).await, Ok("circuit"));
    assert_eq!(first_word("   ").await, Ok("   "));
    assert_eq!(longest("ab", "abc").await, Ok("abc"));
    let p = Parser { source: &text };
    assert_eq!(p.rest(8).await, Ok("breaker"));
    assert_eq!(p.rest(99).await, Ok("circuit breaker"));
}
