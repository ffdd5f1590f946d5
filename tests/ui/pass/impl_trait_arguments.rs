//! `impl Trait` arguments, borrowed and owned, with and without a fallback.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Down,
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

#[circuit_breaker(threshold = 5)]
async fn total(values: impl IntoIterator<Item = u32>) -> Result<u32, AppError> {
    Ok(values.into_iter().sum())
}

#[circuit_breaker(threshold = 5, fallback = shout_offline)]
async fn shout(text: impl AsRef<str> + Clone, fail: bool) -> Result<String, AppError> {
    if fail {
        return Err(AppError::Down);
    }
    Ok(text.as_ref().to_uppercase())
}

async fn shout_offline(text: impl AsRef<str>, _fail: bool) -> Result<String, AppError> {
    Ok(format!("offline:{}", text.as_ref()))
}

#[circuit_breaker(threshold = 5, fallback = describe_offline)]
async fn describe(value: &(impl std::fmt::Debug + ?Sized)) -> Result<String, AppError> {
    Ok(format!("{value:?}"))
}

async fn describe_offline(_value: &(impl std::fmt::Debug + ?Sized)) -> Result<String, AppError> {
    Ok(String::new())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(total([1, 2, 3]).await, Ok(6));
    assert_eq!(total(vec![4]).await, Ok(4));
    assert_eq!(shout("hi", false).await, Ok("HI".to_owned()));
    assert_eq!(
        shout(String::from("hi"), true).await,
        Ok("offline:hi".to_owned())
    );
    assert_eq!(describe("x").await, Ok("\"x\"".to_owned()));
}
