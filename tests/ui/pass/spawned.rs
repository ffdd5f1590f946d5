//! The annotated function's future is `Send + 'static` when the original's would be, so it can
//! be handed to `tokio::spawn`, fallback and all.
use std::sync::Arc;

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

#[circuit_breaker(threshold = 100, timeout = "5s")]
async fn fetch(id: u32) -> Result<u32, AppError> {
    tokio::task::yield_now().await;
    Ok(id * 2)
}

#[circuit_breaker(threshold = 100, fallback = greet_offline)]
async fn greet(name: String, fail: bool) -> Result<String, AppError> {
    tokio::task::yield_now().await;
    if fail {
        return Err(AppError::Down);
    }
    Ok(format!("hello {name}"))
}

async fn greet_offline(name: String, _fail: bool) -> Result<String, AppError> {
    Ok(format!("offline {name}"))
}

struct Service {
    prefix: String,
}

impl Service {
    #[circuit_breaker(threshold = 100)]
    async fn call(self: Arc<Self>, n: u32) -> Result<String, AppError> {
        tokio::task::yield_now().await;
        Ok(format!("{}{n}", self.prefix))
    }
}

fn assert_send<T: Send + 'static>(t: T) -> T {
    t
}

#[tokio::main]
async fn main() {
    let handles: Vec<_> = (0..8).map(|i| tokio::spawn(fetch(i))).collect();
    for (i, h) in (0..).zip(handles) {
        assert_eq!(h.await.expect("task"), Ok(i * 2));
    }
    let ok = tokio::spawn(assert_send(greet("kim".to_owned(), false)));
    let fb = tokio::spawn(greet("lee".to_owned(), true));
    assert_eq!(ok.await.expect("task"), Ok("hello kim".to_owned()));
    assert_eq!(fb.await.expect("task"), Ok("offline lee".to_owned()));
    let svc = Arc::new(Service {
        prefix: "n=".to_owned(),
    });
    let h = tokio::spawn(svc.clone().call(3));
    assert_eq!(h.await.expect("task"), Ok("n=3".to_owned()));
}
