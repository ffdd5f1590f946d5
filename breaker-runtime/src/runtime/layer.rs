//! [`BreakerLayer`]: a breaker around any [`tower::Service`] (cargo feature `tower`).
//!
//! The breaker is any [`Handle`]: one built in code ([`crate::Breaker::builder`]) or a
//! declared one ([`crate::breaker`]), so the service's calls share the registry, overrides,
//! Redis fleet state, alerts, console and `breakerctl` with everything else.
//!
//! ```
//! use std::time::Duration;
//! use breaker_runtime::Breaker;
//! use breaker_runtime::layer::{BreakerLayer, HttpFailures, LayerError};
//! use tower::{Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = Breaker::builder("geo.api")
//!     .threshold(3)
//!     .timeout(Duration::from_secs(2))
//!     .build()?;
//! // Any tower service; here one answering 503 (an HTTP client's would do the same).
//! let upstream = service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::io::Error>(http::Response::builder().status(503).body(()).unwrap())
//! });
//! let mut svc = tower::ServiceBuilder::new()
//!     .layer(BreakerLayer::new(breaker).classify(HttpFailures))
//!     .service(upstream);
//! for _ in 0..3 {
//!     let answer = svc.ready().await?.call(http::Request::new(())).await?;
//!     assert_eq!(answer.status(), 503); // answers are returned; 503 counts as a failure
//! }
//! let rejected = svc.ready().await?.call(http::Request::new(())).await;
//! assert!(matches!(rejected, Err(LayerError::Breaker(e)) if e.is_open()));
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::core::error::BreakerError;
use crate::runtime::handle::Handle;

/// Says which results of a service are failures for the breaker; `Some(what went wrong)` (for
/// alerts) for a failure, `None` for a success.
///
/// A closure `Fn(&Result<Response, Error>) -> bool` is one (`true`: a failure); [`Errors`]
/// (every `Err`, the default) and [`HttpFailures`] (transport errors, 5xx and 429) are the
/// two usual ones.
pub trait Classify<Resp, E> {
    /// `Some(description)` when `result` is a failure.
    fn failure(&self, result: &Result<Resp, E>) -> Option<String>;
}

impl<F, Resp, E> Classify<Resp, E> for F
where
    F: Fn(&Result<Resp, E>) -> bool,
    E: fmt::Display,
{
    fn failure(&self, result: &Result<Resp, E>) -> Option<String> {
        self(result).then(|| match result {
            Err(e) => e.to_string(),
            Ok(_) => "a response classified as a failure".to_owned(),
        })
    }
}

/// Every `Err` is a failure, every response a success (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct Errors;

impl<Resp, E: fmt::Display> Classify<Resp, E> for Errors {
    fn failure(&self, result: &Result<Resp, E>) -> Option<String> {
        result.as_ref().err().map(ToString::to_string)
    }
}

/// For HTTP: a transport error (`Err`), a 5xx and a 429 are failures; every other answer,
/// 4xx included, is the provider working (a request it refuses is the caller's mistake).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFailures;

impl HttpFailures {
    /// Whether an answer with `status` is the provider failing.
    #[must_use]
    pub fn is_failure_status(status: http::StatusCode) -> bool {
        crate::runtime::http_status::is_http_failure(status)
    }
}

impl<B, E: fmt::Display> Classify<http::Response<B>, E> for HttpFailures {
    fn failure(&self, result: &Result<http::Response<B>, E>) -> Option<String> {
        match result {
            Err(e) => Some(e.to_string()),
            Ok(r) if Self::is_failure_status(r.status()) => Some(format!("HTTP {}", r.status())),
            Ok(_) => None,
        }
    }
}

/// What a [`BreakerService`] call returns instead of a response.
#[derive(Debug)]
pub enum LayerError<E> {
    /// The breaker rejected the call (the service was not called) or it timed out.
    Breaker(BreakerError),
    /// The service's own error.
    Service(E),
}

impl<E: fmt::Display> fmt::Display for LayerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Breaker(e) => e.fmt(f),
            LayerError::Service(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LayerError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LayerError::Breaker(e) => Some(e),
            LayerError::Service(e) => Some(e),
        }
    }
}

/// Wraps services in a [`BreakerService`] calling through `handle`'s breaker.
#[derive(Debug, Clone)]
pub struct BreakerLayer<C = Errors> {
    handle: Handle,
    classify: C,
}

impl BreakerLayer {
    /// Every `Err` counts as a failure; [`BreakerLayer::classify`] says otherwise.
    #[must_use]
    pub fn new(handle: Handle) -> Self {
        BreakerLayer {
            handle,
            classify: Errors,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// Which results are failures: [`HttpFailures`], or a closure
    /// `|r: &Result<Response, Error>| -> bool`.
    #[must_use]
    pub fn classify<C2>(self, classify: C2) -> BreakerLayer<C2> {
        BreakerLayer {
            handle: self.handle,
            classify,
        }
    }
}

impl<S, C: Clone> tower::Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            handle: self.handle,
            classify: self.classify.clone(),
        }
    }
}

/// A service whose calls go through a breaker (see [`BreakerLayer`]).
///
/// `poll_ready` is the inner service's: it never waits on the breaker, so an OPEN breaker
/// answers at once, from `call`'s future, with [`LayerError::Breaker`] and without calling the
/// inner service. The breaker's `timeout` applies to the inner call; a HALF_OPEN probe is one
/// call like any other.
#[derive(Debug, Clone)]
pub struct BreakerService<S, C = Errors> {
    inner: S,
    handle: Handle,
    classify: C,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, C, Req> tower::Service<Req> for BreakerService<S, C>
where
    S: tower::Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    C: Classify<S::Response, S::Error> + Clone + Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = LayerError<S::Error>;
    type Future = BoxFuture<Result<S::Response, LayerError<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LayerError::Service)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The service that was polled ready goes into the future (called there once admitted);
        // a clone stays for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (handle, classify) = (self.handle, self.classify.clone());
        Box::pin(async move {
            match handle
                .call_judged(move || inner.call(req), move |r| classify.failure(r))
                .await
            {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err(LayerError::Service(e)),
                Err(e) => Err(LayerError::Breaker(e)),
            }
        })
    }
}
