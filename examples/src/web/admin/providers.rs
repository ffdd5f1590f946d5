//! `GET /api/admin/providers` and `POST /api/admin/providers/{name}`: the mock providers' modes,
//! read from and passed on to each provider's `/_control`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::{ActionBody, Body};
use crate::providers::{Control, Provider};
use crate::search::Providers;
use crate::web::App;
use crate::web::error::{ApiError, no_store};

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
            .control_request(Method::GET, provider)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("control endpoint answered {}", response.status()));
        }
        let body = read_capped(response)
            .await
            .map_err(|e| e.without_url().to_string())?
            .ok_or_else(|| format!("control answer over {MAX_CONTROL_ANSWER} bytes"))?;
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

pub(super) async fn list(State(app): State<App>) -> Response {
    let (daum, juso) = tokio::join!(
        read_control(&app.providers, Provider::Daum),
        read_control(&app.providers, Provider::Juso)
    );
    no_store(Json([daum, juso]))
}

/// The largest control-endpoint answer read (a mode is a few dozen bytes).
const MAX_CONTROL_ANSWER: usize = 16 * 1024;

/// `response`'s body, or `None` when it is over [`MAX_CONTROL_ANSWER`] (read chunk by chunk, so
/// a larger one is cut off there).
async fn read_capped(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_CONTROL_ANSWER {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Extractor: the provider named in the path; 404 when there is none.
#[derive(Debug)]
pub(super) struct Named(Provider);

impl<S: Send + Sync> FromRequestParts<S> for Named {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        Provider::from_name(&name).map(Named).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no provider named `{name}`; expected daum or juso"),
            )
        })
    }
}

// Checked here for a clear message; the provider checks again.
impl ActionBody for Control {
    const EXAMPLE: &'static str = r#"{"mode":"slow","delay_ms":1500}"#;
}

/// Sets a provider's mode through its control endpoint.
pub(super) async fn set_mode(
    State(app): State<App>,
    Named(provider): Named,
    Body(control): Body<Control>,
) -> Result<Response, ApiError> {
    let unreachable = |e: reqwest::Error| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{provider}'s control endpoint: {}", e.without_url()),
        )
    };
    let response = app
        .providers
        .control_request(Method::POST, provider)
        .header(header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&control).unwrap_or_default())
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = read_capped(response)
        .await
        .map_err(unreachable)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "{provider}'s control endpoint answered with over {MAX_CONTROL_ANSWER} bytes"
                ),
            )
        })?;
    if matches!(status.as_u16(), 401 | 403) {
        // The mock's token, not the admin's: the console must not read it as its own 401.
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!(
                "{provider}'s control endpoint refused the control token (HTTP {status}): \
                 --mock-control-token / BREAKER_MOCK_TOKEN must be the mock providers' token"
            ),
        ));
    }
    if status.is_client_error() {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("{provider} refused the mode: HTTP {status}"));
        return Err(ApiError::new(
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
            message,
        ));
    }
    let now: Control = serde_json::from_slice(&body).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("{provider}'s control endpoint answered HTTP {status} without its mode"),
        )
    })?;
    tracing::info!(provider = %provider, mode = %now.mode, "admin action: provider mode");
    Ok(no_store(Json(serde_json::json!({
        "message": format!("{provider} is now {}", now.mode),
        "provider": provider.name(),
        "mode": now.mode,
        "delay_ms": now.delay_ms,
    }))))
}
