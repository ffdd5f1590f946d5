//! `Self::` fallbacks: methods, associated functions, and a fallback that is itself a method on
//! a generic type.
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

struct Search {
    up: bool,
}

impl Search {
    #[circuit_breaker(threshold = 5, fallback = Self::cached)]
    async fn query(&self, q: &str) -> Result<String, AppError> {
        if self.up {
            Ok(format!("live:{q}"))
        } else {
            Err(AppError::Down)
        }
    }

    async fn cached(&self, q: &str) -> Result<String, AppError> {
        Ok(format!("cached:{q}"))
    }

    #[circuit_breaker(threshold = 5, fallback = Self::default_limit)]
    async fn limit(up: bool) -> Result<u32, AppError> {
        if up { Ok(100) } else { Err(AppError::Down) }
    }

    async fn default_limit(_up: bool) -> Result<u32, AppError> {
        Ok(10)
    }
}

struct Cache<K> {
    key: K,
}

impl<K: Clone + ToString> Cache<K> {
    #[circuit_breaker(threshold = 5, fallback = Self::stale)]
    async fn fresh(&self, fail: bool) -> Result<String, AppError> {
        if fail {
            Err(AppError::Down)
        } else {
            Ok(self.key.to_string())
        }
    }

    async fn stale(&self, _fail: bool) -> Result<String, AppError> {
        Ok(format!("stale:{}", self.key.to_string()))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(
        Search { up: true }.query("a").await,
        Ok("live:a".to_owned())
    );
    assert_eq!(
        Search { up: false }.query("a").await,
        Ok("cached:a".to_owned())
    );
    assert_eq!(Search::limit(true).await, Ok(100));
    assert_eq!(Search::limit(false).await, Ok(10));
    assert_eq!(Cache { key: 7 }.fresh(true).await, Ok("stale:7".to_owned()));
    let names: Vec<_> = breaker_runtime::breakers()
        .iter()
        .map(|h| h.name())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with("Search::limit")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("Cache::fresh")),
        "{names:?}"
    );
}
