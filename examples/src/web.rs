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
//! compared in constant time and never logged. Breaker actions go through
//! [`breaker_runtime::Handle`], so with Redis they reach every instance of the fleet.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use breaker_runtime::{Fault, Forced, Handle, parse_duration};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::duration::millis;
use crate::pages;
use crate::providers::{Control, Provider};
use crate::search::{self, Providers, SearchOutcome};

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 100;
/// The longest notice accepted, in characters.
pub const MAX_NOTICE_CHARS: usize = 500;
/// How long an injected fault lasts when the request gives no `for` (as `breakerctl inject`).
pub const DEFAULT_FAULT_FOR: Duration = Duration::from_secs(600);

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
    let admin = Router::new()
        .route("/api/admin/breakers", get(list_breakers))
        .route("/api/admin/breakers/{name}/{action}", post(breaker_action))
        .route("/api/admin/providers", get(list_providers))
        .route("/api/admin/providers/{name}", post(provider_mode))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    Router::new()
        .route("/", get(|| async { page(pages::INDEX) }))
        .route("/admin", get(|| async { page(pages::ADMIN) }))
        .route(
            "/static/style.css",
            get(|| async { asset(pages::STYLE, "text/css") }),
        )
        .route(
            "/static/search.js",
            get(|| async { asset(pages::SEARCH_JS, "text/javascript") }),
        )
        .route(
            "/static/admin.js",
            get(|| async { asset(pages::ADMIN_JS, "text/javascript") }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/search", get(api_search))
        .merge(admin)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such page") })
        .with_state(app)
}

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let kind = HeaderValue::from_str(&format!("{kind}; charset=utf-8"))
        .unwrap_or(HeaderValue::from_static("text/plain"));
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// An error answer: `{"error": message}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"address-search admin\""),
            );
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Search.

#[derive(Debug, Deserialize)]
struct SearchParams {
    q: Option<String>,
}

/// Checks a query: trimmed, not empty, at most [`MAX_QUERY_CHARS`] characters.
///
/// # Errors
/// A message for users when the query is empty or too long.
pub fn validate_query(raw: Option<&str>) -> Result<&str, String> {
    let q = raw.unwrap_or_default().trim();
    if q.is_empty() {
        return Err(
            "검색어를 입력해 주세요 / Type part of an address, e.g. 테헤란로 152 or gangnam".into(),
        );
    }
    let chars = q.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(format!(
            "검색어가 너무 깁니다 / The query is too long: {chars} characters, at most {MAX_QUERY_CHARS}"
        ));
    }
    if q.chars().any(char::is_control) {
        return Err("검색어에 제어 문자가 있습니다 / The query contains control characters".into());
    }
    Ok(q)
}

async fn api_search(
    State(app): State<App>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let q = validate_query(params.q.as_deref()).map_err(ApiError::bad_request)?;
    let outcome: SearchOutcome = search::search(&app.providers, q).await;
    let mut response = Json(outcome).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Admin: the token.

/// Whether `given` equals `expected`, in time that depends only on their lengths.
#[must_use]
pub fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    let len = given.len().max(expected.len());
    let mut diff = u8::from(given.len() != expected.len());
    for i in 0..len {
        let a = given.get(i).copied().unwrap_or(0);
        let b = expected.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(a ^ b);
    }
    diff == 0
}

fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

async fn require_token(State(app): State<App>, request: Request, next: Next) -> Response {
    match bearer(request.headers()) {
        Some(given) if token_matches(given, app.token.as_bytes()) => next.run(request).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing admin token: send `Authorization: Bearer <token>`",
        )
        .into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin: breakers.

/// One breaker as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerView {
    /// `provider.daum`, `provider.juso`.
    pub name: String,
    /// `CLOSED`, `OPEN` or `HALF_OPEN`.
    pub state: String,
    /// `open` or `closed` while an operator forces it.
    pub forced: Option<String>,
    /// Whether its fallback is called first.
    pub swapped: bool,
    /// The injected fault (`error:0.5`, `delay:2000ms`, ...).
    pub fault: Option<String>,
    /// Milliseconds the fault has left, when it expires.
    pub fault_ms_left: Option<u64>,
    /// The notice users read.
    pub notice: Option<String>,
    /// Its fallback, as written in the attribute.
    pub fallback: Option<String>,
    /// Milliseconds until an OPEN breaker lets a probe through.
    pub retry_after_ms: Option<u64>,
    /// Failures in the sliding window now.
    pub failures_in_window: u64,
    /// Counters since the process started.
    pub counters: CountersView,
}

/// A breaker's counters since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountersView {
    /// Every call, admitted or rejected.
    pub calls: u64,
    /// Admitted calls that succeeded.
    pub successes: u64,
    /// Admitted calls that failed (errors, timeouts, slow calls, panics).
    pub failures: u64,
    /// Failures that were timeouts.
    pub timeouts: u64,
    /// Calls rejected without calling the provider.
    pub rejections: u64,
    /// Calls served by the fallback.
    pub fallbacks: u64,
}

/// The admin view of one breaker.
#[must_use]
pub fn view(handle: &Handle) -> BreakerView {
    let c = handle.counters();
    BreakerView {
        name: handle.name().to_owned(),
        state: handle.state().as_str().to_owned(),
        forced: handle.forced().map(|f| {
            match f {
                Forced::Open => "open",
                Forced::Closed => "closed",
                _ => "other",
            }
            .to_owned()
        }),
        swapped: handle.swapped(),
        fault: handle.fault().map(|f| f.to_string()),
        fault_ms_left: handle.breaker().fault_remaining().map(millis),
        notice: handle.notice(),
        fallback: handle.fallback().map(str::to_owned),
        retry_after_ms: handle.retry_after().map(millis),
        failures_in_window: u64::try_from(handle.failures_in_window()).unwrap_or(u64::MAX),
        counters: CountersView {
            calls: c.calls,
            successes: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            rejections: c.rejections,
            fallbacks: c.fallbacks,
        },
    }
}

async fn list_breakers() -> Response {
    let all: Vec<BreakerView> = breaker_runtime::breakers().iter().map(view).collect();
    no_store(Json(all))
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The answer to an admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    /// What was done, in words.
    pub message: String,
    /// The breaker afterwards.
    pub breaker: BreakerView,
}

const ACTIONS: &str = "open, close, reset, swap, inject or notice";

async fn breaker_action(
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(handle) = breaker_runtime::breaker(&name) else {
        let known: Vec<&str> = breaker_runtime::breakers()
            .iter()
            .map(Handle::name)
            .collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no breaker named `{name}`; known: {}", known.join(", ")),
        ));
    };
    let store = |e: breaker_runtime::StoreError| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("`{name}`: the breaker store did not take the command: {e}"),
        )
    };
    let message = match action.as_str() {
        "open" => {
            handle.force_open().await.map_err(store)?;
            format!("{name} forced OPEN: calls go to its fallback")
        }
        "close" => {
            handle.force_closed().await.map_err(store)?;
            format!("{name} forced CLOSED: calls always run")
        }
        "reset" => {
            handle.reset().await.map_err(store)?;
            format!("{name} reset to CLOSED")
        }
        "swap" => {
            let Some(fallback) = handle.fallback() else {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("`{name}` has no fallback to swap with"),
                ));
            };
            let fields = object(&body, false, &["swapped"], r#"{"swapped":true}"#)?;
            let on = match fields.get("swapped") {
                None | Some(Value::Null) => !handle.swapped(),
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(ApiError::bad_request("`swapped` must be true or false")),
            };
            handle.swap(on).await.map_err(store)?;
            if on {
                format!("{name} swapped: {fallback} is called first")
            } else {
                format!("{name} unswapped: normal order")
            }
        }
        "inject" => {
            let example = r#"{"fault":"error:0.5","for":"10m"}"#;
            let fields = object(&body, true, &["fault", "for"], example)?;
            let fault = match fields.get("fault") {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "missing `fault`: send e.g. {example}, or {{\"fault\":null}} to clear"
                    )));
                }
                Some(Value::Null) => None,
                Some(Value::String(s)) => Some(
                    s.parse::<Fault>()
                        .map_err(|e| ApiError::bad_request(e.to_string()))?,
                ),
                Some(_) => return Err(ApiError::bad_request("`fault` must be a string or null")),
            };
            let for_ = duration_field(&fields)?;
            match fault {
                Some(f) => {
                    let for_ = for_.unwrap_or(DEFAULT_FAULT_FOR);
                    handle.inject(Some(f), Some(for_)).await.map_err(store)?;
                    format!("{name}: fault `{f}` injected for {}", human(for_))
                }
                None => {
                    handle.inject(None, None).await.map_err(store)?;
                    format!("{name}: fault cleared")
                }
            }
        }
        "notice" => {
            let example =
                r#"{"text":"Address search is down; please type your address","for":"1h"}"#;
            let fields = object(&body, true, &["text", "for"], example)?;
            let text = match fields.get("text") {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "missing `text`: send e.g. {example}, or {{\"text\":null}} to clear"
                    )));
                }
                Some(Value::Null) => None,
                Some(Value::String(s)) => Some(validate_notice(s)?),
                Some(_) => return Err(ApiError::bad_request("`text` must be a string or null")),
            };
            let for_ = duration_field(&fields)?;
            let cleared = text.is_none();
            handle
                .set_notice(text, for_.filter(|_| !cleared))
                .await
                .map_err(store)?;
            match (cleared, for_) {
                (true, _) => format!("{name}: notice cleared"),
                (false, Some(d)) => format!("{name}: notice posted for {}", human(d)),
                (false, None) => format!("{name}: notice posted until cleared"),
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("unknown action `{other}`; expected {ACTIONS}"),
            ));
        }
    };
    tracing::info!(breaker = %name, action = %action, "admin action: {message}");
    Ok(no_store(Json(ActionReply {
        message,
        breaker: view(&handle),
    })))
}

/// The JSON object in `body`, with only `allowed` keys. An empty body is `{}` unless `required`.
fn object(
    body: &[u8],
    required: bool,
    allowed: &[&str],
    example: &str,
) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if required {
            return Err(ApiError::bad_request(format!(
                "expected a JSON body, e.g. {example}"
            )));
        }
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("malformed JSON body: {e}; expected e.g. {example}"))
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(format!(
            "expected a JSON object, e.g. {example}"
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        return Err(ApiError::bad_request(format!(
            "unknown field `{unknown}`; expected {}",
            allowed.join(" and ")
        )));
    }
    Ok(map)
}

fn duration_field(fields: &Map<String, Value>) -> Result<Option<Duration>, ApiError> {
    match fields.get("for") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("`for`: {e}"))),
        Some(_) => Err(ApiError::bad_request(
            "`for` must be a duration string such as \"10m\" or \"1h\"",
        )),
    }
}

fn validate_notice(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "the notice is empty; send {\"text\":null} to clear it",
        ));
    }
    let chars = text.chars().count();
    if chars > MAX_NOTICE_CHARS {
        return Err(ApiError::bad_request(format!(
            "the notice is too long: {chars} characters, at most {MAX_NOTICE_CHARS}"
        )));
    }
    Ok(text.to_owned())
}

/// `90s` → `1m 30s`, for messages.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, 0) => format!("{}ms", d.as_millis()),
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin: mock providers.

/// One provider as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    /// `daum` or `juso`.
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Its mode, when its control endpoint answered.
    pub mode: Option<String>,
    /// Its `slow` delay in milliseconds, when its control endpoint answered.
    pub delay_ms: Option<u64>,
    /// Why the control endpoint did not answer.
    pub error: Option<String>,
}

async fn read_control(providers: &Providers, provider: Provider) -> ProviderView {
    let mut view = ProviderView {
        name: provider.name().to_owned(),
        url: providers
            .url(provider)
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        mode: None,
        delay_ms: None,
        error: None,
    };
    let result = async {
        let response = providers
            .client()
            .get(providers.control_url(provider))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("control endpoint answered {}", response.status()));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| e.without_url().to_string())?;
        serde_json::from_slice::<Control>(&body).map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(c) => {
            view.mode = Some(c.mode.name().to_owned());
            view.delay_ms = c.delay_ms;
        }
        Err(e) => view.error = Some(e),
    }
    view
}

async fn list_providers(State(app): State<App>) -> Response {
    let (daum, juso) = tokio::join!(
        read_control(&app.providers, Provider::Daum),
        read_control(&app.providers, Provider::Juso)
    );
    no_store(Json([daum, juso]))
}

async fn provider_mode(
    State(app): State<App>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let provider = Provider::from_name(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no provider named `{name}`; expected daum or juso"),
        )
    })?;
    // Checked here for a clear message; the provider checks again.
    let control: Control = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "{e}; expected {{\"mode\":\"up\"|\"down\"|\"slow\"|\"flap\",\"delay_ms\":1500}}"
        ))
    })?;
    let unreachable = |e: reqwest::Error| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{name}'s control endpoint: {}", e.without_url()),
        )
    };
    let response = app
        .providers
        .client()
        .post(app.providers.control_url(provider))
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&control).unwrap_or_default())
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_client_error() {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("{name} refused the mode: HTTP {status}"));
        return Err(ApiError::new(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
            message,
        ));
    }
    let now: Control = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{name}'s control endpoint answered HTTP {status} without its mode"),
        )
    })?;
    tracing::info!(provider = %name, mode = %now.mode, "admin action: provider mode");
    Ok(no_store(Json(serde_json::json!({
        "message": format!("{name} is now {}", now.mode),
        "provider": name,
        "mode": now.mode,
        "delay_ms": now.delay_ms,
    }))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(token_matches(b"secret-token", b"secret-token"));
        assert!(!token_matches(b"secret-tokeN", b"secret-token"));
        assert!(!token_matches(b"secret", b"secret-token"));
        assert!(!token_matches(b"secret-token-and-more", b"secret-token"));
        assert!(!token_matches(b"", b"secret-token"));
        assert!(token_matches(b"", b""));
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_trimmed() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc "),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bear"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert_eq!(validate_query(Some("  강남 ")), Ok("강남"));
        assert!(validate_query(None).unwrap_err().contains("Type part"));
        assert!(validate_query(Some("   ")).is_err());
        let long = "가".repeat(101);
        assert!(
            validate_query(Some(&long))
                .unwrap_err()
                .contains("101 characters")
        );
        assert!(validate_query(Some(&"가".repeat(100))).is_ok());
        assert!(validate_query(Some("a\u{0}b")).is_err());
    }

    #[test]
    fn bodies_name_their_mistakes() {
        let e = object(b"", true, &["fault"], "{}").unwrap_err();
        assert!(e.message.contains("expected a JSON body"), "{e:?}");
        assert!(object(b"  ", false, &["swapped"], "{}").unwrap().is_empty());
        let e = object(b"{", true, &["fault"], "{}").unwrap_err();
        assert!(e.message.contains("malformed JSON"), "{e:?}");
        let e = object(b"[]", true, &["fault"], "{}").unwrap_err();
        assert!(e.message.contains("JSON object"), "{e:?}");
        let e = object(br#"{"faults":1}"#, true, &["fault", "for"], "{}").unwrap_err();
        assert!(e.message.contains("unknown field `faults`"), "{e:?}");
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(600)), "10m");
        assert_eq!(human(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
    }
}
