//! primary -> secondary -> emergency, each its own breaker.
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, PartialEq)]
enum AppError {
    Down(&'static str),
    Breaker(BreakerError),
}

impl From<BreakerError> for AppError {
    fn from(e: BreakerError) -> Self {
        AppError::Breaker(e)
    }
}

#[circuit_breaker(name = "primary", threshold = 1, fallback = secondary)]
async fn primary(q: String, log: &mut Vec<&'static str>) -> Result<String, AppError> {
    log.push("primary");
    Err(AppError::Down("primary"))?;
    Ok(q)
}

#[circuit_breaker(name = "secondary", threshold = 1, fallback = emergency)]
async fn secondary(q: String, log: &mut Vec<&'static str>) -> Result<String, AppError> {
    log.push("secondary");
    Err(AppError::Down("secondary"))?;
    Ok(q)
}

#[circuit_breaker(name = "emergency", threshold = 100)]
async fn emergency(q: String, log: &mut Vec<&'static str>) -> Result<String, AppError> {
    log.push("emergency");
    Ok(format!("emergency:{q}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut log = Vec::new();
    assert_eq!(
        primary("q".to_owned(), &mut log).await,
        Ok("emergency:q".to_owned())
    );
    assert_eq!(log, ["primary", "secondary", "emergency"]);
    // Both breakers are now open: the chain skips straight to the emergency function.
    log.clear();
    assert_eq!(
        primary("r".to_owned(), &mut log).await,
        Ok("emergency:r".to_owned())
    );
    assert_eq!(log, ["emergency"]);
    for name in ["primary", "secondary", "emergency"] {
        assert!(breaker_runtime::breaker(name).is_some(), "{name}");
    }
}
