//! Admin action bodies: a JSON object read into a typed struct that refuses unknown fields, with
//! a message that says what is wrong and shows a body that works.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::Deserialize;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde_json::Value;

use crate::limits::Limits;
use crate::web::BodyReadTimeout;
use crate::web::error::{ApiError, body_too_slow};

/// The body of one admin action.
pub(super) trait ActionBody: DeserializeOwned {
    /// A body that works, shown in error messages.
    const EXAMPLE: &'static str;

    /// What an empty body means; `None` when a body is required.
    fn when_empty() -> Option<Self> {
        None
    }
}

/// Extractor: the request's body as `T`, or 400 with the reason.
#[derive(Debug)]
pub(super) struct Body<T>(pub(super) T);

impl<S: Send + Sync, T: ActionBody> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let deadline = request
            .extensions()
            .get::<BodyReadTimeout>()
            .map_or(Limits::default().body_read_timeout, |t| t.0);
        let bytes = tokio::time::timeout(deadline, Bytes::from_request(request, state))
            .await
            .map_err(|_| body_too_slow())?
            .map_err(|e| crate::web::error::body_rejection(&e))?;
        parse(&bytes).map(Body)
    }
}

/// `body` as `T`. Malformed JSON, a value other than an object, an unknown field and a bad value
/// each get their own message.
fn parse<T: ActionBody>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return T::when_empty().ok_or_else(|| {
            ApiError::bad_request(format!("expected a JSON body, e.g. {}", T::EXAMPLE))
        });
    }
    // Syntax first, then shape: a well-formed value's errors come without a line and column, and
    // name the field.
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed JSON body: {e}; expected e.g. {}",
            T::EXAMPLE
        ))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "expected a JSON object, e.g. {}",
            T::EXAMPLE
        )));
    }
    T::deserialize(value).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A field that is a string or `null`, the string read with `read`; `wrong_type` is the message
/// for any other JSON value.
pub(super) fn nullable_str<'de, D, T>(
    field: D,
    wrong_type: &str,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<String>::deserialize(field).map_err(|_| D::Error::custom(wrong_type))?;
    raw.map(|s| read(&s).map_err(D::Error::custom)).transpose()
}

/// The message for a required field left out.
pub(super) fn missing(field: &str, example: &str) -> ApiError {
    ApiError::bad_request(format!(
        "missing `{field}`: send e.g. {example}, or {{\"{field}\":null}} to clear"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Example {
        #[serde(default, deserialize_with = "number")]
        number: Option<u8>,
    }

    fn number<'de, D: Deserializer<'de>>(field: D) -> Result<Option<u8>, D::Error> {
        nullable_str(field, "`number` must be a string or null", |s| {
            s.parse()
                .map_err(|_| format!("`number`: {s:?} is not a number"))
        })
    }

    impl ActionBody for Example {
        const EXAMPLE: &'static str = r#"{"number":"7"}"#;
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    struct Optional {}

    impl ActionBody for Optional {
        const EXAMPLE: &'static str = "{}";

        fn when_empty() -> Option<Self> {
            Some(Optional {})
        }
    }

    fn error<T: ActionBody + std::fmt::Debug>(body: &str) -> String {
        parse::<T>(body.as_bytes()).unwrap_err().message
    }

    #[test]
    fn bodies_name_their_mistakes() {
        assert!(error::<Example>("").contains("expected a JSON body, e.g. {\"number\""));
        assert_eq!(parse::<Optional>(b"  ").unwrap(), Optional {});
        assert!(error::<Example>("{").contains("malformed JSON"));
        assert!(error::<Example>("[]").contains("JSON object"));
        assert!(error::<Example>("null").contains("JSON object"));
        let e = error::<Example>(r#"{"numbers":1}"#);
        assert!(e.starts_with("unknown field `numbers`"), "{e}");
        assert_eq!(
            error::<Example>(r#"{"number":1}"#),
            "`number` must be a string or null"
        );
        assert_eq!(
            error::<Example>(r#"{"number":"x"}"#),
            "`number`: \"x\" is not a number"
        );
        assert_eq!(
            parse::<Example>(br#"{"number":"7"}"#).unwrap(),
            Example { number: Some(7) }
        );
        assert_eq!(
            parse::<Example>(br#"{"number":null}"#).unwrap(),
            Example { number: None }
        );
        let e = missing("fault", r#"{"fault":"open"}"#).message;
        assert!(e.starts_with("missing `fault`: send e.g."), "{e}");
    }
}
