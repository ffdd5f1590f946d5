//! `GET /api/search`: the search page's API.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::App;
use super::error::{ApiError, no_store};
use crate::search::{self, SearchOutcome};

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
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

pub(super) async fn api_search(
    State(app): State<App>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))?;
    let q = validate_query(params.q.as_deref()).map_err(ApiError::bad_request)?;
    let outcome: SearchOutcome = search::search(&app.providers, q).await;
    Ok(no_store(Json(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
