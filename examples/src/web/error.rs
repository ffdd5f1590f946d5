//! The API's error answer, and the header every API answer carries.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer: `{"error": message}` with a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub(super) status: StatusCode,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
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
        no_store(response)
    }
}

/// `body` as a response that no cache keeps (API answers change from one request to the next).
pub(super) fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 429 with `Retry-After: <wait in whole seconds, rounded up, at least 1>`.
pub(super) fn too_many(message: &str, wait: Duration) -> Response {
    let seconds = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1);
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// Middleware (`map_response`): the error answers of the layers (the request timeout's empty
/// 503, the body limit's plain-text 413, axum's empty 405) get the API's JSON error body and
/// `no-store`, so that every error of the service reads the same. Answers that already carry a
/// body type are left alone.
pub(super) async fn json_errors(
    response: Response,
    max_body: usize,
    request_timeout: Duration,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.to_str().is_ok_and(|t| !t.starts_with("text/plain")))
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    // A layer's or axum's own text (a path rejection says what is wrong), when short.
    let text = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let message = match (status, text) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => {
            format!("the request body is too large: at most {max_body} bytes")
        }
        (StatusCode::SERVICE_UNAVAILABLE, None) => format!(
            "the service did not answer within {}; try again",
            humantime::format_duration(request_timeout)
        ),
        (_, Some(text)) => text,
        (StatusCode::METHOD_NOT_ALLOWED, None) => "method not allowed here".to_owned(),
        (other, None) => other
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let mut json = ApiError::new(status, message).into_response();
    // Keep what the layer said besides its body (Allow of a 405, Retry-After).
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// The answer to a request body that could not be read: 408 when it did not arrive within the
/// body-read timeout (the client is too slow), otherwise what axum says (413 over the size limit,
/// 400 for a broken body).
pub(super) fn body_rejection(rejection: &BytesRejection) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return body_too_slow();
        }
        source = e.source();
    }
    ApiError::new(rejection.status(), rejection.body_text())
}

/// 408: the request body did not arrive within the body-read timeout (hyper closes the
/// connection: the rest of the body is never read).
pub(super) fn body_too_slow() -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive in time",
    )
}
