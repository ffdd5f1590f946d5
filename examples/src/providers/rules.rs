//! What the providers refuse as bad input, as their documentation says.
//!
//! The road-name address API (juso.go.kr) answers a query it will not search with HTTP 200 and an
//! `errorCode` (its developer guide, "검색API 오류 메시지"):
//!
//! | code | when |
//! | --- | --- |
//! | `E0005` | no keyword |
//! | `E0006` | too broad: a province or city alone ("주소를 상세히 입력해 주시기 바랍니다") |
//! | `E0008` | a single character |
//! | `E0009` | no letters or digits at all |
//! | `E0010` | too long: more than 40 Hangul or 80 Latin letters and digits |
//! | `E0011` | a number of more than 10 digits |
//! | `E0012` | only special characters and digits (digits alone, a postcode, are searched) |
//! | `E0013` | `%`, `=`, `<`, `>`, `[`, `]` or an SQL keyword |
//! | `E0014`, `E0001` | our key is expired or not approved |
//! | `-999` | a system error |
//!
//! The input codes are the user's mistake: they count as successes for the breaker and the user
//! is told to fix the query ([`is_juso_input_code`]). The key and system codes — and any code not
//! in this list — are the provider's failure.
//!
//! [`juso_input_error`] checks a keyword as the API does; the mock provider answers with it and
//! the service's own check (`web::validate_query`) refuses the same queries with a 400 before any
//! provider is called ([`juso_too_broad`] excepted). Daum (Kakao's address search) refuses bad input with an HTTP 4xx
//! ([`is_daum_input_status`]).

use super::wire::PROVINCES;

/// The SQL keywords juso refuses (E0013), as its guide's sample lists them; matched as whole
/// words, case-insensitively.
pub const SQL_KEYWORDS: &[&str] = &[
    "OR", "SELECT", "INSERT", "DELETE", "UPDATE", "CREATE", "DROP", "EXEC", "UNION", "FETCH",
    "DECLARE", "TRUNCATE",
];

/// The characters juso refuses (E0013).
pub const FORBIDDEN_CHARS: &[char] = &['%', '=', '<', '>', '[', ']'];

/// Juso's length limit (E0010) in units: a Hangul syllable counts 2, any other character 1.
pub const MAX_KEYWORD_UNITS: usize = 80;

/// The longest run of digits juso searches (E0011).
pub const MAX_DIGIT_RUN: usize = 10;

/// Juso's system error.
pub const JUSO_SYSTEM_ERROR: &str = "-999";

/// One refusal: the code and the API's message (Korean, with an English gloss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputError {
    /// `E0005`, `E0008`, ...
    pub code: &'static str,
    /// What the API says.
    pub message: &'static str,
}

const fn refusal(code: &'static str, message: &'static str) -> InputError {
    InputError { code, message }
}

/// Whether juso's `errorCode` says the query was bad (not the provider).
#[must_use]
pub fn is_juso_input_code(code: &str) -> bool {
    matches!(
        code.trim(),
        "E0005" | "E0006" | "E0008" | "E0009" | "E0010" | "E0011" | "E0012" | "E0013" | "E0015"
    )
}

/// Whether an HTTP status from daum says the query was bad: 400, 413, 414 or 422. Every other
/// status that is not a success (401 and 403: our key; 404: our URL; 408, 429 and 5xx: the
/// provider) is the provider's failure.
#[must_use]
pub fn is_daum_input_status(status: u16) -> bool {
    matches!(status, 400 | 413 | 414 | 422)
}

fn is_hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

/// The length juso measures: a Hangul syllable 2 units, anything else 1.
#[must_use]
pub fn keyword_units(keyword: &str) -> usize {
    keyword
        .chars()
        .map(|c| if is_hangul(c) { 2 } else { 1 })
        .sum()
}

/// The juso API's answer to `keyword` when it refuses it, or `None` when it would search it.
/// `keyword` is taken as sent; the API trims it first, as this does.
#[must_use]
pub fn juso_input_error(keyword: &str) -> Option<InputError> {
    let k = keyword.trim();
    if k.is_empty() {
        return Some(refusal(
            "E0005",
            "검색어가 입력되지 않았습니다 (no keyword)",
        ));
    }
    if k.chars().count() < 2 {
        return Some(refusal(
            "E0008",
            "검색어는 두글자 이상 입력되어야 합니다 (at least two characters)",
        ));
    }
    if keyword_units(k) > MAX_KEYWORD_UNITS {
        return Some(refusal(
            "E0010",
            "검색어가 너무 깁니다 (한글 40자, 영문·숫자 80자 이하) (too long)",
        ));
    }
    if k.contains(FORBIDDEN_CHARS) || words(k).any(is_sql_keyword) {
        return Some(refusal(
            "E0013",
            "SQL 예약어 또는 특수문자( %,=,>,<,[,] )는 검색이 불가능 합니다 \
             (no SQL keywords or % = > < [ ])",
        ));
    }
    if longest_digit_run(k) > MAX_DIGIT_RUN {
        return Some(refusal(
            "E0011",
            "검색어에 너무 긴 숫자가 포함되어 있습니다 (a number of at most 10 digits)",
        ));
    }
    if k.chars().any(char::is_alphabetic) {
        return None;
    }
    let digits = k.chars().any(|c| c.is_ascii_digit());
    let symbols = k.chars().any(|c| !c.is_ascii_digit() && !c.is_whitespace());
    match (digits, symbols) {
        // A postcode alone is searched.
        (true, false) => None,
        (true, true) => Some(refusal(
            "E0012",
            "특수문자+숫자만으로는 검색이 불가능 합니다 (not only digits and symbols)",
        )),
        (false, _) => Some(refusal(
            "E0009",
            "검색어는 문자와 숫자만 입력되어야 합니다 (letters or digits needed)",
        )),
    }
}

/// Juso's E0006 for a keyword that is a province alone (`서울`, `경기도`): the mock answers it,
/// the service does not refuse it itself (daum searches such a query), so it is how the tests
/// meet an input error that only the provider knows.
#[must_use]
pub fn juso_too_broad(keyword: &str) -> Option<InputError> {
    let k = keyword.trim();
    PROVINCES
        .iter()
        .any(|(full, short)| k == *full || k == *short)
        .then_some(refusal(
            "E0006",
            "주소를 상세히 입력해 주시기 바랍니다 (more detail, please)",
        ))
}

/// The keyword's words: runs of letters (SQL keywords are refused as words, so `Gangnam-daero`
/// or `World Cup-ro` are searched; `1 or 1` is not).
fn words(k: &str) -> impl Iterator<Item = &str> {
    k.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn is_sql_keyword(word: &str) -> bool {
    SQL_KEYWORDS.iter().any(|kw| kw.eq_ignore_ascii_case(word))
}

fn longest_digit_run(k: &str) -> usize {
    k.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(k: &str) -> Option<&'static str> {
        juso_input_error(k).map(|e| e.code)
    }

    #[test]
    fn the_documented_refusals() {
        assert_eq!(code(""), Some("E0005"));
        assert_eq!(code("   "), Some("E0005"));
        assert_eq!(code("강"), Some("E0008"));
        assert_eq!(code(" a "), Some("E0008"));
        assert_eq!(code(&"가".repeat(40)), None);
        assert_eq!(code(&"가".repeat(41)), Some("E0010"));
        assert_eq!(code(&"a".repeat(80)), None);
        assert_eq!(code(&"a".repeat(81)), Some("E0010"));
        for c in FORBIDDEN_CHARS {
            assert_eq!(code(&format!("강남{c}")), Some("E0013"), "{c}");
        }
        assert_eq!(code("1 or 1"), Some("E0013"));
        assert_eq!(code("x; DROP table"), Some("E0013"));
        assert_eq!(code("select"), Some("E0013"));
        assert_eq!(code("12345678901"), Some("E0011"));
        assert_eq!(code("1234567890"), None);
        assert_eq!(code("06236"), None);
        assert_eq!(code("152-1"), Some("E0012"));
        assert_eq!(code("!!"), Some("E0009"));
        assert_eq!(juso_too_broad(" 서울 ").map(|e| e.code), Some("E0006"));
        assert_eq!(juso_too_broad("경기도").map(|e| e.code), Some("E0006"));
        assert_eq!(juso_too_broad("서울 강남"), None);
    }

    #[test]
    fn addresses_are_searched() {
        for k in [
            "테헤란로 152",
            "teheran",
            "Gangnam-daero",
            "World Cup-ro",
            "seoul",
            "역삼동 737",
            "06236 강남",
            "강남",
        ] {
            assert_eq!(code(k), None, "{k}");
        }
    }

    #[test]
    fn input_codes_and_statuses_are_told_from_failures() {
        for c in ["E0005", "E0008", "E0010", "E0013", " E0006 "] {
            assert!(is_juso_input_code(c), "{c}");
        }
        for c in ["-999", "E0001", "E0014", "E9999", "", "0"] {
            assert!(!is_juso_input_code(c), "{c}");
        }
        for s in [400, 413, 414, 422] {
            assert!(is_daum_input_status(s));
        }
        for s in [301, 401, 403, 404, 408, 429, 500, 503] {
            assert!(!is_daum_input_status(s));
        }
    }
}
