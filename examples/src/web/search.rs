//! `GET /api/search`: the search page's API.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::App;
use super::error::{ApiError, no_store};
use crate::providers::rules;
use crate::search::{self, SearchOutcome};

/// The longest query accepted, in characters: juso's limit for Latin letters and digits (a
/// Hangul syllable counts twice, so at most 40 of them: [`rules::MAX_KEYWORD_UNITS`]).
pub const MAX_QUERY_CHARS: usize = rules::MAX_KEYWORD_UNITS;

#[derive(Debug, Deserialize)]
pub(super) struct SearchParams {
    q: Option<String>,
}

/// Checks a query as the providers will (their documented rules, [`rules::juso_input_error`]),
/// so that a query they would refuse gets a 400 from the service without calling them: trimmed,
/// 2 to 80 units long (a Hangul syllable counts 2), no control, bidi, line-separator or
/// zero-width characters, none of
/// `% = < > [ ]`, no SQL keyword as a word, no number of more than 10 digits, some letter or a
/// postcode.
///
/// # Errors
/// A message for users saying what to fix.
pub fn validate_query(raw: Option<&str>) -> Result<&str, String> {
    let q = raw.unwrap_or_default().trim();
    if q.chars()
        .any(|c| breaker_runtime::is_unsafe_char(c) || is_zero_width(c))
    {
        return Err(
            "검색어에 제어 문자가 있습니다 / The query contains control or invisible characters"
                .into(),
        );
    }
    let Some(refused) = rules::juso_input_error(q) else {
        return Ok(q);
    };
    Err(match refused.code {
        "E0005" => {
            "검색어를 입력해 주세요 / Type part of an address, e.g. 테헤란로 152 or gangnam".into()
        }
        "E0008" => "두 글자 이상 입력해 주세요 / Type at least two characters".into(),
        "E0010" => format!(
            "검색어가 너무 깁니다 / The query is too long: at most 40 Hangul or {MAX_QUERY_CHARS} \
             other characters ({} given)",
            rules::keyword_units(q)
        ),
        "E0013" => "검색어에 % = < > [ ] 또는 SQL 예약어를 쓸 수 없습니다 / The query may not \
                    contain % = < > [ ] or SQL keywords (OR, SELECT, ...)"
            .into(),
        "E0011" => "숫자는 10자리까지 입력해 주세요 / Numbers of at most 10 digits, please".into(),
        _ => "도로명, 건물명 또는 지번을 입력해 주세요 / Type a road, building or lot, e.g. \
              테헤란로 152"
            .into(),
    })
}

/// The invisible characters the runtime's rule for text shown to people
/// ([`breaker_runtime::is_unsafe_char`]: controls, bidi controls, line separators) leaves to
/// each use: zero-width spaces and joiners (U+200B–U+200D), invisible operators (U+2060–U+2064)
/// and the byte-order mark (U+FEFF). No address has them, and they make a query read
/// differently from what it is.
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
}

/// The request's `q`, checked by [`validate_query`]; a 400 saying what is wrong otherwise.
fn checked_query(params: Result<Query<SearchParams>, QueryRejection>) -> Result<String, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))?;
    validate_query(params.q.as_deref())
        .map(str::to_owned)
        .map_err(ApiError::bad_request)
}

pub(super) async fn api_search(
    State(app): State<App>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = &checked_query(params)?;
    let outcome: SearchOutcome = search::search(&app.providers, q).await.map_err(|refusal| {
        ApiError::bad_request(format!(
            "검색어를 확인해 주세요 / Check your query: {}",
            refusal.message
        ))
    })?;
    Ok(no_store(Json(outcome)))
}

/// `GET /api/suggest?q=`: suggestions while typing ([`crate::suggest`]); the same query rules
/// as the search; a provider that fails gives `{"suggestions":[],"degraded":true}`, never an
/// error.
pub(super) async fn api_suggest(
    State(app): State<App>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = checked_query(params)?;
    Ok(no_store(Json(app.suggester.suggest(&q).await)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert_eq!(validate_query(Some("  강남 ")), Ok("강남"));
        assert!(validate_query(None).unwrap_err().contains("Type part"));
        assert!(validate_query(Some("   ")).is_err());
        let long = "가".repeat(41);
        assert!(
            validate_query(Some(&long))
                .unwrap_err()
                .contains("82 given")
        );
        assert!(validate_query(Some(&"가".repeat(40))).is_ok());
        assert!(validate_query(Some(&"a".repeat(80))).is_ok());
        assert!(validate_query(Some(&"a".repeat(81))).is_err());
        assert!(validate_query(Some("a\u{0}b")).is_err());
        for invisible in [
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{2028}', '\u{FEFF}', '\u{85}',
        ] {
            assert!(
                validate_query(Some(&format!("강{invisible}남"))).is_err(),
                "{invisible:?}"
            );
        }
    }

    #[test]
    fn what_the_providers_refuse_is_refused_first() {
        for q in [
            "강",
            "a",
            "강남%",
            "1=1",
            "<b>",
            "[x]",
            "1 or 1",
            "select",
            "12345678901",
            "!!",
            "152-1",
        ] {
            assert!(validate_query(Some(q)).is_err(), "{q}");
            assert!(rules::juso_input_error(q).is_some(), "{q}");
        }
        for q in ["테헤란로 152", "gangnam", "06236", "World Cup-ro"] {
            assert_eq!(validate_query(Some(q)), Ok(q));
        }
    }
}
