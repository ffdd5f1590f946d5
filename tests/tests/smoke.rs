#![allow(missing_docs)]
use breaker_runtime::{BreakerError, circuit_breaker};

#[derive(Debug, Clone, PartialEq)]
pub enum E {
    Down,
    Breaker(BreakerError),
}
impl From<BreakerError> for E {
    fn from(e: BreakerError) -> Self {
        E::Breaker(e)
    }
}

#[circuit_breaker(threshold = 2)]
async fn plain(fail: bool) -> Result<u32, E> {
    if fail { Err(E::Down) } else { Ok(1) }
}

#[circuit_breaker(threshold = 2, fallback = second)]
async fn first(s: String, r: &mut Vec<u8>) -> Result<String, E> {
    r.push(1);
    Err(E::Down)?;
    Ok(s)
}
async fn second(s: String, r: &mut Vec<u8>) -> Result<String, E> {
    r.push(2);
    Ok(format!("fb:{s}"))
}

#[derive(Debug)]
pub struct Client {
    n: u32,
}
impl Client {
    #[circuit_breaker(fallback = Self::backup)]
    async fn get(&self, q: &str) -> Result<u32, E> {
        if q.is_empty() {
            return Err(E::Down);
        }
        Ok(self.n)
    }
    async fn backup(&self, _q: &str) -> Result<u32, E> {
        Ok(0)
    }
    #[circuit_breaker]
    async fn bump(&mut self) -> Result<u32, E> {
        self.n += 1;
        Ok(self.n)
    }
}

#[tokio::test]
async fn smoke() {
    assert_eq!(plain(false).await, Ok(1));
    assert_eq!(plain(true).await, Err(E::Down));
    assert_eq!(plain(true).await, Err(E::Down));
    assert!(matches!(
        plain(false).await,
        Err(E::Breaker(BreakerError::Open { .. }))
    ));
    let mut v = vec![];
    assert_eq!(first("a".into(), &mut v).await.unwrap(), "fb:a");
    assert_eq!(v, [1, 2]);
    let mut c = Client { n: 3 };
    assert_eq!(c.get("x").await, Ok(3));
    assert_eq!(c.get("").await, Ok(0));
    assert_eq!(c.bump().await, Ok(4));
    let names: Vec<_> = breaker_runtime::breakers()
        .iter()
        .map(|h| h.name())
        .collect();
    assert!(names.contains(&"smoke::Client::get"), "{names:?}");
    assert!(names.contains(&"smoke::plain"), "{names:?}");
    let h = tokio::spawn(plain(false));
    let _ = h.await;
}
