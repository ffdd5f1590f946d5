//! The HTTP side: the search page and its API, the admin console and its token-protected API.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /` | the search page |
//! | `GET /api/search?q=...` | `{"addresses":[..],"provider":"daum"\|"juso"\|null,"degraded":bool,"notice":null\|".."}`; 400 for an empty or too long query, never a 5xx for provider failures |
//! | `GET /admin` | the emergency admin console |
//! | `GET /api/admin/breakers` | every breaker: state, forced, swapped, shadow (and shadow_override), fault, notice, counters, fallback, bulkhead (`{"in_flight":n,"max_concurrent":m}` in this instance, `null` without one) |
//! | `POST /api/admin/breakers/{name}/{action}` | `open`, `close`, `reset`, `swap` (body `{"swapped":bool}`, or none to toggle), `shadow` (`{"shadow":true}` shadow mode, `false` enforce, `null` the declared mode), `inject` (`{"fault":"error:0.5","for":"10m"}`, `null` clears), `notice` (`{"text":"..","for":"1h"}`, `null` clears) |
//! | `GET /api/admin/providers` | the mock providers' modes |
//! | `POST /api/admin/providers/{daum\|juso}` | `{"mode":"up"\|"down"\|"slow"\|"flap","delay_ms":1500}`, passed on to the provider's `/_control` |
//!
//! Every `/api/admin` route needs `Authorization: Bearer <token>` (401 otherwise); the token is
//! compared in constant time ([`token_matches`]) and never logged; failed attempts are logged
//! with the peer and the reason, and throttled per client. Each admin action has its own
//! handler and a typed body that refuses unknown fields. Breaker actions go through
//! [`breaker_runtime::Handle`], so with Redis they reach every instance of the fleet.
//!
//! Every answer passes through the layers of [`router`], outermost first: the security headers,
//! JSON error bodies, the concurrency limit with load shedding (503), the request timeout (503),
//! the body-read timeout (408) and the body size limit (413); `/api/search` and `/api/admin` also pass
//! their per-client rate limits (429 with `Retry-After`). The handlers and limits learn the
//! client's address from [`ConnectInfo`], which the server inserts for each connection.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use governor::middleware::NoOpMiddleware;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::load_shed::error::Overloaded;
use tower_governor::GovernorLayer;
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

use crate::limits::{Limits, RateLimit};
use crate::search::Providers;

mod admin;
mod auth;
mod error;
mod health;
mod pages;
mod search;

pub use crate::limits::client_key;
pub use admin::{
    ActionReply, BreakerView, BulkheadView, CountersView, DEFAULT_FAULT_FOR, MAX_NOTICE_CHARS,
    ProviderView, view,
};
pub use auth::token_matches;
pub use error::ApiError;
pub use search::{MAX_QUERY_CHARS, validate_query};

use auth::FailedLogins;

/// `Content-Security-Policy` of every answer: scripts, styles and requests from this origin only
/// (the pages have no inline script or style), and no framing (clickjacking of the console).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'";
/// `Referrer-Policy` of every answer: the pages link nowhere else, so nothing needs a referrer.
pub const REFERRER_POLICY: &str = "no-referrer";

/// What the handlers share: the providers, the admin token and the failed-login budget.
#[derive(Clone)]
pub struct App {
    providers: Arc<Providers>,
    token: Arc<str>,
    failed_logins: Option<Arc<FailedLogins>>,
    suggester: Arc<crate::suggest::Suggester>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("providers", &self.providers)
            .field("token", &"<redacted>")
            .field("failed_logins", &self.failed_logins)
            .finish()
    }
}

impl App {
    /// Handlers for `providers`, with the admin API guarded by `token`.
    #[must_use]
    pub fn new(providers: Arc<Providers>, token: &str) -> App {
        App {
            suggester: Arc::new(crate::suggest::Suggester::new(&providers)),
            providers,
            token: Arc::from(token),
            failed_logins: None,
        }
    }
}

/// The whole service's routes, with `limits` applied (see [`Limits`]; [`crate::start`] checks
/// them first: a rate that cannot work here is no limit). The server must insert
/// [`ConnectInfo<SocketAddr>`] in each request (as [`crate::start`]'s does); without it the
/// per-client limits answer 500.
pub fn router(app: App, limits: &Limits) -> Router {
    build(app, limits).0
}

/// The per-client rate limiters' state: one entry per client seen, forgotten by
/// [`Throttles::forget_idle`].
#[derive(Debug, Default)]
pub(crate) struct Throttles {
    search: Option<Weak<KeyedLimiter>>,
    admin: Option<Weak<KeyedLimiter>>,
    failed_logins: Option<Weak<FailedLogins>>,
}

type KeyedLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

impl Throttles {
    /// Every `period`, forgets the clients whose budgets are full again (they would be
    /// allowed as if never seen), so that the state stays as small as the set of recent clients.
    /// Ends when the router is gone.
    pub(crate) async fn forget_idle(self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let mut alive = false;
            for limiter in [&self.search, &self.admin].into_iter().flatten() {
                if let Some(l) = limiter.upgrade() {
                    l.retain_recent();
                    l.shrink_to_fit();
                    alive = true;
                }
            }
            if let Some(l) = self.failed_logins.as_ref().and_then(Weak::upgrade) {
                l.forget_idle();
                alive = true;
            }
            if !alive {
                return;
            }
        }
    }
}

/// [`router`], and its rate limiters' state for [`Throttles::forget_idle`].
pub(crate) fn build(app: App, limits: &Limits) -> (Router, Throttles) {
    let mut throttles = Throttles::default();
    let failed_logins = limits
        .failed_logins
        .and_then(FailedLogins::new)
        .map(Arc::new);
    throttles.failed_logins = failed_logins.as_ref().map(Arc::downgrade);
    let app = App {
        failed_logins,
        ..app
    };

    let mut search_route = get(search::api_search);
    if let Some(config) = limits.search_rate.and_then(per_client) {
        throttles.search = Some(Arc::downgrade(config.limiter()));
        search_route = search_route.route_layer(throttle(config, "searches"));
    }
    let mut admin_routes = admin::routes(app.clone());
    if let Some(config) = limits.admin_rate.and_then(per_client) {
        throttles.admin = Some(Arc::downgrade(config.limiter()));
        admin_routes = admin_routes.route_layer(throttle(config, "admin requests"));
    }

    let max_body = limits.max_body_bytes;
    let request_timeout = limits.request_timeout;
    let router = Router::new()
        .merge(pages::routes())
        .route("/api/search", search_route)
        .route("/api/suggest", get(search::api_suggest))
        .merge(admin_routes)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
        .with_state(app)
        // Innermost first. A body over the cap: 413 before any handler runs (at once for a
        // Content-Length over it, when the cap is reached for a chunked body).
        .layer(RequestBodyLimitLayer::new(max_body))
        // Two bounds on reading a body: tower-http's between two chunks, and the whole read's,
        // which the body extractor applies (a byte every few seconds passes the first).
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .layer(axum::Extension(BodyReadTimeout(limits.body_read_timeout)))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        // One semaphore for the whole router (the plain ConcurrencyLimitLayer would make one per
        // route); a request finding it full is refused at once, not queued.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|e: tower::BoxError| async move {
                    shed(&e)
                }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests,
                )),
        )
        .layer(axum::middleware::map_response(move |r: Response| {
            error::json_errors(r, max_body, request_timeout)
        }));
    // The probes, outside the limits above (see `health`).
    let router = health::routes().merge(router);
    (security_headers(router), throttles)
}

/// How long reading a whole request body may take ([`Limits::body_read_timeout`]), for the
/// extractors that read one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyReadTimeout(pub(crate) Duration);

/// The headers every answer carries, unless a handler set its own.
fn security_headers(router: Router) -> Router {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, REFERRER_POLICY))
}

/// The answer to a request refused by the load shedder (or, never expected, another error of
/// the layers).
fn shed(e: &tower::BoxError) -> Response {
    if e.is::<Overloaded>() {
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is busy; try again in a second",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    } else {
        tracing::error!(error = %e, "a request failed in the service's layers");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    }
}

/// The peer of `request`, when the server said ([`ConnectInfo`]).
fn peer<B>(request: &Request<B>) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// [`client_key`] of the peer, for the per-client rate limits.
#[derive(Debug, Clone, Copy)]
struct ClientKey;

impl KeyExtractor for ClientKey {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, tower_governor::GovernorError> {
        peer(request)
            .map(|p| client_key(p.ip()))
            .ok_or(tower_governor::GovernorError::UnableToExtractKey)
    }
}

/// A per-client limiter of `rate`; `None` for a rate that cannot work (zero).
fn per_client(rate: RateLimit) -> Option<GovernorConfig<ClientKey, NoOpMiddleware>> {
    GovernorConfigBuilder::default()
        .key_extractor(ClientKey)
        .period(rate.interval())
        .burst_size(rate.burst)
        .finish()
}

/// The layer limiting `what` per client: 429 with `Retry-After` (whole seconds, rounded up) and
/// a JSON error over the rate.
fn throttle(
    config: GovernorConfig<ClientKey, NoOpMiddleware>,
    what: &'static str,
) -> GovernorLayer<ClientKey, NoOpMiddleware, axum::body::Body> {
    GovernorLayer::new(config).error_handler(move |e| match e {
        tower_governor::GovernorError::TooManyRequests { wait_time, .. } => {
            // `wait_time` is rounded down; one more second is never too early.
            error::too_many(
                &format!("too many {what} from your address; slow down"),
                Duration::from_secs(wait_time.saturating_add(1)),
            )
        }
        tower_governor::GovernorError::UnableToExtractKey => {
            tracing::error!("a request without the peer's address (ConnectInfo)");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
        tower_governor::GovernorError::Other { code, msg, .. } => {
            ApiError::new(code, msg.unwrap_or_default()).into_response()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_keyed_by_ipv4_address_or_ipv6_64() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), v4);
    }
}
