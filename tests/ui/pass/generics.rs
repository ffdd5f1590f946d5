//! Generic functions and methods of generic types, with and without a fallback.
use std::fmt::Display;

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

#[circuit_breaker(threshold = 5)]
async fn show<T: Display>(value: T) -> Result<String, AppError> {
    Ok(value.to_string())
}

#[circuit_breaker(threshold = 5, fallback = first_or_default)]
async fn first<T>(items: Vec<T>) -> Result<T, AppError>
where
    T: Clone + Default,
{
    items
        .into_iter()
        .next()
        .ok_or_else(|| unreachable!("tested with a non-empty list"))
}

async fn first_or_default<T>(items: Vec<T>) -> Result<T, AppError>
where
    T: Clone + Default,
{
    Ok(items.into_iter().next().unwrap_or_default())
}

/// A fallback generic only in its return type: the function's return type decides it.
#[circuit_breaker(threshold = 5, fallback = nothing)]
async fn lookup(key: &str) -> Result<Vec<u8>, AppError> {
    Ok(key.as_bytes().to_vec())
}

async fn nothing<T: Default, E>(_key: &str) -> Result<T, E> {
    Ok(T::default())
}

/// A generic error type, converted from the breaker's.
#[circuit_breaker(threshold = 5)]
async fn parse<E: From<BreakerError>>(text: &str) -> Result<usize, E> {
    Ok(text.len())
}

struct Repo<T> {
    items: Vec<T>,
}

impl<T: Clone + Send + Sync> Repo<T> {
    #[circuit_breaker(threshold = 5)]
    async fn get(&self, i: usize) -> Result<Option<T>, AppError> {
        Ok(self.items.get(i).cloned())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(show(7).await, Ok("7".to_owned()));
    assert_eq!(show("seven").await, Ok("seven".to_owned()));
    assert_eq!(first(vec![3, 4]).await, Ok(3));
    assert_eq!(parse::<AppError>("abc").await, Ok(3));
    assert_eq!(lookup("ab").await, Ok(vec![b'a', b'b']));
    let repo = Repo {
        items: vec!['a', 'b'],
    };
    assert_eq!(repo.get(1).await, Ok(Some('b')));
    let names: Vec<_> = breaker_runtime::breakers()
        .iter()
        .map(|h| h.name())
        .collect();
    assert!(names.iter().any(|n| n.ends_with("Repo::get")), "{names:?}");
}
