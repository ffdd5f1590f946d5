//! What counts as a provider's failure in an HTTP answer, for the tower layer's
//! [`HttpFailures`](crate::layer::HttpFailures) and the reqwest middleware.

/// A 5xx or a 429: the provider failing (or asking to be left alone); any other status, 4xx
/// included, is an answer (a request it refuses is the caller's mistake, not an outage).
pub(crate) fn is_http_failure(status: http::StatusCode) -> bool {
    status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS
}
