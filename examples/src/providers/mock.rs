//! The mock servers: each answers its provider's search in its wire format from the dataset, and
//! obeys its `/_control` endpoint.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::dataset::find;
use super::rules::{JUSO_SYSTEM_ERROR, juso_input_error, juso_too_broad};
use super::wire::{
    DaumDocument, DaumJibunAddress, DaumMeta, DaumResponse, DaumRoadAddress, JusoCommon, JusoItem,
    JusoResponse, JusoResults, PROVINCES,
};
use crate::duration::millis;
use crate::server::Server;
use crate::token::MIN_TOKEN_CHARS;

use super::{
    CONTROL_PATH, Control, DAUM_PATH, DEFAULT_DELAY, FLAP_PERIOD, JUSO_PATH, MAX_DELAY, Mode,
    PAGE_SIZE, Provider,
};

/// `서울특별시 강남구 ...` → `서울 강남구 ...`, as daum writes it.
fn abbreviate(address: &str) -> String {
    for (full, short) in PROVINCES {
        if let Some(rest) = address.strip_prefix(full) {
            return format!("{short}{rest}");
        }
    }
    address.to_owned()
}

/// The daum-like answer for `query`.
#[must_use]
pub fn daum_answer(query: &str) -> DaumResponse {
    let found = find(query);
    DaumResponse {
        meta: DaumMeta {
            total_count: found.len() as u64,
        },
        documents: found
            .into_iter()
            .take(PAGE_SIZE)
            .map(|e| DaumDocument {
                address_name: abbreviate(&e.road),
                road_address: Some(DaumRoadAddress {
                    address_name: abbreviate(&e.road),
                    zone_no: e.zip.clone(),
                    building_name: e.building.clone().unwrap_or_default(),
                }),
                address: Some(DaumJibunAddress {
                    address_name: abbreviate(&e.jibun),
                }),
            })
            .collect(),
    }
}

/// The juso-like answer for `keyword`.
#[must_use]
pub fn juso_answer(keyword: &str) -> JusoResponse {
    let found = find(keyword);
    let total = found.len();
    let juso = found
        .into_iter()
        .take(PAGE_SIZE)
        .map(|e| match &e.building {
            Some(b) => JusoItem {
                road_addr: format!("{} ({}, {b})", e.road, e.dong),
                jibun_addr: format!("{} {b}", e.jibun),
                zip_no: e.zip.clone(),
                bd_nm: b.clone(),
            },
            None => JusoItem {
                road_addr: format!("{} ({})", e.road, e.dong),
                jibun_addr: e.jibun.clone(),
                zip_no: e.zip.clone(),
                bd_nm: String::new(),
            },
        })
        .collect();
    JusoResponse {
        results: JusoResults {
            common: JusoCommon {
                error_code: "0".to_owned(),
                error_message: "정상".to_owned(),
                total_count: total.to_string(),
            },
            juso: Some(juso),
        },
    }
}

/// A juso-like error answer (sent with HTTP 200, as the real API does).
#[must_use]
pub fn juso_error(code: &str, message: &str) -> JusoResponse {
    JusoResponse {
        results: JusoResults {
            common: JusoCommon {
                error_code: code.to_owned(),
                error_message: message.to_owned(),
                total_count: "0".to_owned(),
            },
            juso: None,
        },
    }
}

#[derive(Debug)]
struct Setting {
    mode: Mode,
    delay: Duration,
    since: Instant,
}

/// A mock provider's shared control state.
#[derive(Clone)]
struct Shared {
    provider: Provider,
    setting: Arc<Mutex<Setting>>,
    /// The bearer token `/_control` requires.
    token: Arc<str>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("provider", &self.provider)
            .field("setting", &self.setting)
            .field("token", &"<redacted>")
            .finish()
    }
}

enum Health {
    Up,
    Down,
}

impl Shared {
    fn get(&self) -> (Mode, Duration, Instant) {
        let s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        (s.mode, s.delay, s.since)
    }

    fn control(&self) -> Control {
        let (mode, delay, _) = self.get();
        Control {
            mode,
            delay_ms: Some(millis(delay)),
        }
    }

    fn set(&self, mode: Mode, delay: Option<Duration>) {
        let mut s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        s.mode = mode;
        if let Some(d) = delay {
            s.delay = d;
        }
        s.since = Instant::now();
    }

    /// Applies the mode to one request: sleeps when slow, says whether to fail.
    async fn gate(&self) -> Health {
        let (mode, delay, since) = self.get();
        match mode {
            Mode::Up => Health::Up,
            Mode::Down => Health::Down,
            Mode::Slow => {
                tokio::time::sleep(delay).await;
                Health::Up
            }
            Mode::Flap => {
                let period = FLAP_PERIOD.as_millis();
                if (since.elapsed().as_millis() / period).is_multiple_of(2) {
                    Health::Down
                } else {
                    Health::Up
                }
            }
        }
    }
}

/// A running mock provider: an axum server on a loopback port. Dropping it stops the server.
#[derive(Debug)]
pub struct MockProvider {
    shared: Shared,
    server: Server,
}

impl MockProvider {
    /// Starts `provider`'s mock on `bind`, on a free port, in mode [`Mode::Up`], with a
    /// generated control token ([`MockProvider::control_token`]).
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(provider: Provider, bind: IpAddr) -> io::Result<MockProvider> {
        MockProvider::start_with_token(provider, bind, &crate::token::generate()).await
    }

    /// Starts `provider`'s mock on `bind`, on a free port, in mode [`Mode::Up`]; its `/_control`
    /// takes `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// When the port cannot be bound, or `token` has fewer than [`crate::MIN_TOKEN_CHARS`]
    /// characters (after trimming).
    pub async fn start_with_token(
        provider: Provider,
        bind: IpAddr,
        token: &str,
    ) -> io::Result<MockProvider> {
        let token = token.trim();
        let chars = token.chars().count();
        if chars < MIN_TOKEN_CHARS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the mock providers' control token has {chars} characters; it must have \
                     at least {MIN_TOKEN_CHARS}"
                ),
            ));
        }
        let listener = TcpListener::bind(SocketAddr::new(bind, 0)).await?;
        let shared = Shared {
            provider,
            setting: Arc::new(Mutex::new(Setting {
                mode: Mode::Up,
                delay: DEFAULT_DELAY,
                since: Instant::now(),
            })),
            token: Arc::from(token),
        };
        let router = match provider {
            Provider::Daum => Router::new().route(DAUM_PATH, get(daum_search)),
            Provider::Juso => Router::new().route(JUSO_PATH, get(juso_search)),
        }
        .route(CONTROL_PATH, get(get_control).post(post_control))
        .with_state(shared.clone());
        let server = Server::spawn(listener, router)?;
        Ok(MockProvider { shared, server })
    }

    /// Which provider this is.
    #[must_use]
    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// The bearer token its `/_control` endpoint requires.
    #[must_use]
    pub fn control_token(&self) -> &str {
        &self.shared.token
    }

    /// The current mode and delay (what `GET /_control` returns).
    #[must_use]
    pub fn control(&self) -> Control {
        self.shared.control()
    }

    /// Changes the mode (and the `slow` delay, when given), as `POST /_control` does.
    pub fn set(&self, mode: Mode, delay: Option<Duration>) {
        self.shared.set(mode, delay.map(|d| d.min(MAX_DELAY)));
    }

    /// Stops the server and waits (at most 2 s) for it to finish.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// A JSON error body with a status.
fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn daum_search(State(shared): State<Shared>, Query(params): Params) -> Response {
    if let Health::Down = shared.gate().await {
        let body = serde_json::json!({
            "errorType": "ServiceUnavailable",
            "message": "daum address search is temporarily unavailable",
        });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    match params.get("query").map(|q| q.trim()) {
        Some(q) if !q.is_empty() => axum::Json(daum_answer(q)).into_response(),
        _ => {
            let body = serde_json::json!({
                "errorType": "MissingParameter",
                "message": "query parameter required",
            });
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
    }
}

async fn juso_search(State(shared): State<Shared>, Query(params): Params) -> Response {
    let answer = if let Health::Down = shared.gate().await {
        juso_error(JUSO_SYSTEM_ERROR, "시스템에러 (system error)")
    } else {
        let keyword = params.get("keyword").map_or("", String::as_str);
        match juso_input_error(keyword).or_else(|| juso_too_broad(keyword)) {
            Some(refused) => juso_error(refused.code, refused.message),
            None => juso_answer(keyword.trim()),
        }
    };
    axum::Json(answer).into_response()
}

/// The 401 to send unless the request carries the control token.
fn refused(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match crate::token::bearer(headers) {
        Some(given) if crate::token::matches(given, shared.token.as_bytes()) => None,
        Some(_) => Some(json_error(StatusCode::UNAUTHORIZED, "wrong control token")),
        None => Some(json_error(
            StatusCode::UNAUTHORIZED,
            "missing control token: send `Authorization: Bearer <token>`",
        )),
    }
}

async fn get_control(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(refused) = refused(&shared, &headers) {
        return refused;
    }
    axum::Json(shared.control()).into_response()
}

/// Changes the mode. Only with the token and a JSON body: a form or `text/plain` POST, which a
/// web page may send to any address without asking, is refused (415) before it is read.
async fn post_control(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refused(&shared, &headers) {
        return refused;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the control body as `Content-Type: application/json`",
        );
    }
    let control: Control = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}; expected {{\"mode\":\"up\"|\"down\"|\"slow\"|\"flap\",\"delay_ms\":1500}}"
                ),
            );
        }
    };
    let delay = control.delay_ms.map(Duration::from_millis);
    if delay.is_some_and(|d| d > MAX_DELAY) {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("`delay_ms` is at most {}", MAX_DELAY.as_millis()),
        );
    }
    shared.set(control.mode, delay);
    tracing::info!(provider = %shared.provider, mode = %control.mode, "mock provider mode changed");
    axum::Json(shared.control()).into_response()
}
