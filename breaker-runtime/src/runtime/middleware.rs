//! [`BreakerMiddleware`]: a breaker per host (or per named endpoint) for a
//! [`reqwest_middleware`] client (cargo feature `reqwest-middleware`).
//!
//! ```no_run
//! use std::time::Duration;
//! use breaker_runtime::Breaker;
//! use breaker_runtime::middleware::{BreakerMiddleware, Endpoint, breaker_error};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     // One breaker per host: `http.api.example.com`, `http.maps.example.com:8443`...
//!     .with(BreakerMiddleware::per_host(
//!         Breaker::builder("http").threshold(5).timeout(Duration::from_secs(3)),
//!     ))
//!     .build();
//! let answer = client.get("https://api.example.com/v1/geo").send().await;
//! // Or one per named endpoint: `http.billing`, whatever the host.
//! let answer = client
//!     .get("https://api.example.com/v1/invoices")
//!     .with_extension(Endpoint("billing"))
//!     .send()
//!     .await;
//! if let Err(e) = &answer
//!     && let Some(rejected) = breaker_error(e)
//! {
//!     println!("not sent: {rejected}");
//! }
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::core::config::ConfigError;
use crate::core::error::BreakerError;
use crate::runtime::built::BreakerBuilder;
use crate::runtime::handle::Handle;
use crate::runtime::http_status::is_http_failure;

/// Names the breaker a request goes through (`<prefix>.<name>`) instead of its host: put it
/// in the request's extensions (`RequestBuilder::with_extension(Endpoint("billing"))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint(pub &'static str);

/// A breaker for each host (or [`Endpoint`]) a client talks to, made on first use from one
/// set of settings and registered like any other (listed by `breakers()`, the console and
/// `breakerctl`, overrides and faults by name, state in memory or Redis).
///
/// A request the breaker rejects is not sent: the client gets
/// `reqwest_middleware::Error::Middleware` holding the [`BreakerError`] (see
/// [`breaker_error`]). Answers are returned as they come; a transport error, a 5xx and a 429
/// count as failures, any other status (4xx included) as a success.
#[derive(Debug)]
pub struct BreakerMiddleware {
    template: BreakerBuilder,
    breakers: RwLock<HashMap<String, Handle>>,
}

impl BreakerMiddleware {
    /// Breakers named `<template's name>.<host>` (with `:port` when not the scheme's default),
    /// each with the template's settings.
    #[must_use]
    pub fn per_host(template: BreakerBuilder) -> Self {
        BreakerMiddleware {
            template,
            breakers: RwLock::new(HashMap::new()),
        }
    }

    /// The breaker for `key` (a host or an endpoint name), made on first use.
    fn breaker(&self, key: &str) -> Result<Handle, ConfigError> {
        if let Some(h) = self
            .breakers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
        {
            return Ok(*h);
        }
        let name = format!("{}.{key}", self.template.name());
        let h = self.template.renamed(name).build()?;
        self.breakers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.to_owned(), h);
        Ok(h)
    }
}

/// The breaker's error in a client's error, when a breaker rejected (or timed out) the request.
#[must_use]
pub fn breaker_error(e: &reqwest_middleware::Error) -> Option<&BreakerError> {
    match e {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<BreakerError>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

/// The request's breaker key: its [`Endpoint`], or its host and non-default port.
fn key(req: &Request, extensions: &Extensions) -> Option<String> {
    if let Some(Endpoint(name)) = extensions.get::<Endpoint>() {
        return Some((*name).to_owned());
    }
    let url = req.url();
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[async_trait::async_trait]
impl Middleware for BreakerMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let Some(key) = key(&req, extensions) else {
            // No host (not an http URL): reqwest refuses it itself.
            return next.run(req, extensions).await;
        };
        let breaker = self
            .breaker(&key)
            .map_err(reqwest_middleware::Error::middleware)?;
        let judged = breaker
            .call_judged(
                || next.run(req, extensions),
                |r: &reqwest_middleware::Result<Response>| match r {
                    Err(e) => Some(e.to_string()),
                    Ok(a) if is_http_failure(a.status()) => Some(format!("HTTP {}", a.status())),
                    Ok(_) => None,
                },
            )
            .await;
        match judged {
            Ok(answer) => answer,
            Err(e) => Err(reqwest_middleware::Error::middleware(e)),
        }
    }
}
