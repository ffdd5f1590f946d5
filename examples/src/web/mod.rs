//! The HTTP side: the search page and its API, the admin console and its token-protected API.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the search page |
//! | `GET /api/search?q=...` | `{"addresses":[..],"provider":"daum"\|"juso"\|null,"degraded":bool,"notice":null\|".."}`; 400 for an empty or too long query, never a 5xx for provider failures |
//! | `GET /admin` | the emergency admin console |
//! | `GET /api/admin/breakers` | every breaker: state, forced, swapped, fault, notice, counters, fallback |
//! | `POST /api/admin/breakers/{name}/{action}` | `open`, `close`, `reset`, `swap` (body `{"swapped":bool}`, or none to toggle), `inject` (`{"fault":"error:0.5","for":"10m"}`, `null` clears), `notice` (`{"text":"..","for":"1h"}`, `null` clears) |
//! | `GET /api/admin/providers` | the mock providers' modes |
//! | `POST /api/admin/providers/{daum\|juso}` | `{"mode":"up"\|"down"\|"slow"\|"flap","delay_ms":1500}`, passed on to the provider's `/_control` |
//!
//! Every `/api/admin` route needs `Authorization: Bearer <token>` (401 otherwise); the token is
//! compared in constant time ([`token_matches`]) and never logged. Each admin action has its own
//! handler and a typed body that refuses unknown fields. Breaker actions go through
//! [`breaker_runtime::Handle`], so with Redis they reach every instance of the fleet.

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

use crate::search::Providers;

mod admin;
mod auth;
mod error;
mod pages;
mod search;

pub use admin::{
    ActionReply, BreakerView, CountersView, DEFAULT_FAULT_FOR, MAX_NOTICE_CHARS, ProviderView, view,
};
pub use auth::token_matches;
pub use error::ApiError;
pub use search::{MAX_QUERY_CHARS, validate_query};

/// What the handlers share: the providers and the admin token.
#[derive(Clone)]
pub struct App {
    providers: Arc<Providers>,
    token: Arc<str>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("providers", &self.providers)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl App {
    /// Handlers for `providers`, with the admin API guarded by `token`.
    #[must_use]
    pub fn new(providers: Arc<Providers>, token: &str) -> App {
        App {
            providers,
            token: Arc::from(token),
        }
    }
}

/// The whole service's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(pages::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/search", get(search::api_search))
        .merge(admin::routes(app.clone()))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
        .with_state(app)
}
