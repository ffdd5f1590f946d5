//! `&self`, `&mut self` and owned `self` (which must be `Clone` when there is a fallback).
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum SearchError {
    Down,
    Breaker(BreakerError),
}

impl From<BreakerError> for SearchError {
    fn from(e: BreakerError) -> Self {
        SearchError::Breaker(e)
    }
}

#[derive(Debug, Clone)]
struct Client {
    base: String,
    calls: u32,
}

impl Client {
    #[circuit_breaker(threshold = 3)]
    async fn get(&self, path: &str) -> Result<String, SearchError> {
        Ok(format!("{}/{path}", self.base))
    }

    #[circuit_breaker(threshold = 3)]
    async fn count(&mut self) -> Result<u32, SearchError> {
        self.calls += 1;
        Ok(self.calls)
    }

    #[circuit_breaker(threshold = 3, fallback = Client::offline)]
    async fn into_base(self, fail: bool) -> Result<String, SearchError> {
        if fail {
            return Err(SearchError::Down);
        }
        Ok(self.base)
    }

    async fn offline(self, _fail: bool) -> Result<String, SearchError> {
        Ok(format!("offline:{}", self.base))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut c = Client {
        base: "https://daum.example".to_owned(),
        calls: 0,
    };
    assert_eq!(c.get("q").await, Ok("https://daum.example/q".to_owned()));
    assert_eq!(c.count().await, Ok(1));
    assert_eq!(c.count().await, Ok(2));
    assert_eq!(
        c.clone().into_base(false).await,
        Ok("https://daum.example".to_owned())
    );
    assert_eq!(
        c.into_base(true).await,
        Ok("offline:https://daum.example".to_owned())
    );
}
