//! `POST /api/admin/breakers/{name}/{action}`: one handler per action, each with its typed body.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use breaker_runtime::{Fault, Forced, Handle, HandleError, parse_duration};
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::body::{ActionBody, Body, missing, nullable_str};
use super::breakers::{BreakerView, view};
use crate::web::error::{ApiError, no_store};

/// The longest notice accepted, in characters (the runtime's limit).
pub const MAX_NOTICE_CHARS: usize = breaker_runtime::MAX_NOTICE_CHARS;
/// How long an injected fault lasts when the request gives no `for` (as `breakerctl inject`).
pub const DEFAULT_FAULT_FOR: Duration = Duration::from_secs(600);

const ACTIONS: &str = "open, close, reset, swap, shadow, inject or notice";

/// The answer to an admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    /// What was done, in words.
    pub message: String,
    /// The breaker afterwards.
    pub breaker: BreakerView,
}

/// Extractor: the breaker named in the path; 404 naming the known ones when there is none.
#[derive(Debug)]
pub(super) struct Target {
    name: String,
    handle: Handle,
}

#[derive(Deserialize)]
struct TargetPath {
    name: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(TargetPath { name }) = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(e.status(), e.body_text()))?;
        match breaker_runtime::breaker(&name) {
            Some(handle) => Ok(Target { name, handle }),
            None => {
                let known: Vec<&str> = breaker_runtime::breakers()
                    .iter()
                    .map(Handle::name)
                    .collect();
                Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no breaker named `{name}`; known: {}", known.join(", ")),
                ))
            }
        }
    }
}

impl Target {
    /// 503 when the breaker store did not take the command; 400 for a request the breaker
    /// cannot carry out (no fallback to swap with, a fault out of range).
    fn store_error(&self, e: HandleError) -> ApiError {
        match e {
            HandleError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "`{}`: the breaker store did not take the command: {e}",
                    self.name
                ),
            ),
            e => ApiError::new(StatusCode::BAD_REQUEST, format!("`{}`: {e}", self.name)),
        }
    }

    /// The reply once `action` is done: `message` and the breaker afterwards.
    fn done(&self, action: &str, message: String) -> Response {
        tracing::info!(breaker = %self.name, action = %action, "admin action: {message}");
        no_store(Json(ActionReply {
            message,
            breaker: view(&self.handle),
        }))
    }
}

/// `open`: forced OPEN until reset. Any body is ignored.
pub(super) async fn open(target: Target) -> Result<Response, ApiError> {
    let h = target.handle;
    h.force_open().await.map_err(|e| target.store_error(e))?;
    let message = format!("{} forced OPEN: calls go to its fallback", target.name);
    Ok(target.done("open", message))
}

/// `close`: forced CLOSED until reset. Any body is ignored.
pub(super) async fn close(target: Target) -> Result<Response, ApiError> {
    let h = target.handle;
    h.force_closed().await.map_err(|e| target.store_error(e))?;
    let message = format!("{} forced CLOSED: calls always run", target.name);
    Ok(target.done("close", message))
}

/// `reset`: CLOSED, counts cleared, no longer forced. Any body is ignored.
pub(super) async fn reset(target: Target) -> Result<Response, ApiError> {
    let h = target.handle;
    h.reset().await.map_err(|e| target.store_error(e))?;
    let message = format!("{} reset to CLOSED", target.name);
    Ok(target.done("reset", message))
}

/// The body of `swap`: `{"swapped":true}` or `false` sets; no body, `{}` or `null` toggles.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Swap {
    #[serde(default, deserialize_with = "swapped")]
    swapped: Option<bool>,
}

impl ActionBody for Swap {
    const EXAMPLE: &'static str = r#"{"swapped":true}"#;

    fn when_empty() -> Option<Self> {
        Some(Swap::default())
    }
}

fn swapped<'de, D: Deserializer<'de>>(field: D) -> Result<Option<bool>, D::Error> {
    Option::<bool>::deserialize(field)
        .map_err(|_| serde::de::Error::custom("`swapped` must be true or false"))
}

/// `swap`: its fallback is called first (or no longer).
pub(super) async fn swap(target: Target, Body(body): Body<Swap>) -> Result<Response, ApiError> {
    let (name, h) = (&target.name, target.handle);
    let Some(fallback) = h.fallback() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("`{name}` has no fallback to swap with"),
        ));
    };
    let on = body.swapped.unwrap_or(!h.swapped());
    h.swap(on).await.map_err(|e| target.store_error(e))?;
    let message = if on {
        format!("{name} swapped: {fallback} is called first")
    } else {
        format!("{name} unswapped: normal order")
    };
    Ok(target.done("swap", message))
}

/// The body of `shadow`: `{"shadow":true}` shadow mode, `false` enforce, `null` back to the
/// declared mode. Required (no toggle: three states).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Shadow {
    /// `None` when left out (refused), `Some(None)` for `null`.
    #[serde(default, deserialize_with = "shadow_mode")]
    shadow: Option<Option<bool>>,
}

impl ActionBody for Shadow {
    const EXAMPLE: &'static str = r#"{"shadow":true}"#;
}

fn shadow_mode<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(field)
        .map(Some)
        .map_err(|_| serde::de::Error::custom("`shadow` must be true, false or null"))
}

/// `shadow`: the operator's mode on every instance sharing the breaker's store (the same
/// control as `breakerctl shadow`, audited as `shadow`).
pub(super) async fn shadow(target: Target, Body(body): Body<Shadow>) -> Result<Response, ApiError> {
    let (name, h) = (&target.name, target.handle);
    let Some(mode) = body.shadow else {
        return Err(missing("shadow", Shadow::EXAMPLE));
    };
    h.set_shadow(mode)
        .await
        .map_err(|e| target.store_error(e))?;
    let mut message = match (mode, h.is_shadow()) {
        (Some(true), _) => format!(
            "{name} in shadow mode: every call runs, none is rejected or sent to its fallback"
        ),
        (Some(false), _) => format!("{name} enforcing: it rejects and falls back"),
        (None, true) => format!("{name} back to its declared mode: shadow"),
        (None, false) => format!("{name} back to its declared mode: enforce"),
    };
    if h.is_shadow() {
        // What shadow does not overrule.
        if h.forced() == Some(Forced::Open) {
            message += "; it is forced OPEN, which still rejects in shadow mode (reset to lift it)";
        }
        if h.swapped() {
            message += "; its swap is dormant in shadow mode";
        }
    }
    Ok(target.done("shadow", message))
}

/// The body of `inject`: `{"fault":"error:0.5","for":"10m"}` injects (for [`DEFAULT_FAULT_FOR`]
/// without `for`); `{"fault":null}` clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Inject {
    /// `None` when left out (refused), `Some(None)` for `null`.
    #[serde(default, deserialize_with = "fault")]
    fault: Option<Option<Fault>>,
    #[serde(default, rename = "for", deserialize_with = "duration")]
    for_: Option<Duration>,
}

impl ActionBody for Inject {
    const EXAMPLE: &'static str = r#"{"fault":"error:0.5","for":"10m"}"#;
}

fn fault<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Option<Fault>>, D::Error> {
    nullable_str(field, "`fault` must be a string or null", |s| {
        s.parse::<Fault>().map_err(|e| e.to_string())
    })
    .map(Some)
}

/// `for`: how long a fault or a notice lasts.
fn duration<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Duration>, D::Error> {
    nullable_str(
        field,
        "`for` must be a duration string such as \"10m\" or \"1h\"",
        |s| parse_duration(s).map_err(|e| format!("`for`: {e}")),
    )
}

/// `inject`: a fault on the breaker's calls, or none.
pub(super) async fn inject(target: Target, Body(body): Body<Inject>) -> Result<Response, ApiError> {
    let (name, h) = (&target.name, target.handle);
    let Some(fault) = body.fault else {
        return Err(missing("fault", Inject::EXAMPLE));
    };
    let message = match fault {
        Some(f) => {
            let for_ = body.for_.unwrap_or(DEFAULT_FAULT_FOR);
            h.inject(Some(f), Some(for_))
                .await
                .map_err(|e| target.store_error(e))?;
            format!(
                "{name}: fault `{f}` injected for {}",
                humantime::format_duration(for_)
            )
        }
        None => {
            h.inject(None, None)
                .await
                .map_err(|e| target.store_error(e))?;
            format!("{name}: fault cleared")
        }
    };
    Ok(target.done("inject", message))
}

/// The body of `notice`: `{"text":"..","for":"1h"}` posts (until cleared without `for`);
/// `{"text":null}` clears.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Notice {
    /// `None` when left out (refused), `Some(None)` for `null`.
    #[serde(default, deserialize_with = "notice_text")]
    text: Option<Option<String>>,
    #[serde(default, rename = "for", deserialize_with = "duration")]
    for_: Option<Duration>,
}

impl ActionBody for Notice {
    const EXAMPLE: &'static str =
        r#"{"text":"Address search is down; please type your address","for":"1h"}"#;
}

fn notice_text<'de, D: Deserializer<'de>>(field: D) -> Result<Option<Option<String>>, D::Error> {
    nullable_str(field, "`text` must be a string or null", validate_notice).map(Some)
}

/// Trimmed, not empty, and the runtime's rule ([`breaker_runtime::check_notice`]): one line of
/// at most [`MAX_NOTICE_CHARS`] characters without control or bidi characters.
fn validate_notice(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the notice is empty; send {\"text\":null} to clear it".to_owned());
    }
    breaker_runtime::check_notice(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// `notice`: the text users read while both providers are down, or none.
pub(super) async fn notice(target: Target, Body(body): Body<Notice>) -> Result<Response, ApiError> {
    let (name, h) = (&target.name, target.handle);
    let Some(text) = body.text else {
        return Err(missing("text", Notice::EXAMPLE));
    };
    let cleared = text.is_none();
    let for_ = body.for_.filter(|_| !cleared);
    h.set_notice(text, for_)
        .await
        .map_err(|e| target.store_error(e))?;
    let message = match (cleared, for_) {
        (true, _) => format!("{name}: notice cleared"),
        (false, Some(d)) => format!(
            "{name}: notice posted for {}",
            humantime::format_duration(d)
        ),
        (false, None) => format!("{name}: notice posted until cleared"),
    };
    Ok(target.done("notice", message))
}

/// Any other action: 404 naming the known ones (after the breaker's name is checked).
pub(super) async fn unknown(
    _target: Target,
    Path((_, action)): Path<(String, String)>,
) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("unknown action `{action}`; expected {ACTIONS}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from<T: for<'de> Deserialize<'de>>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn inject_bodies_tell_left_out_from_null() {
        let b: Inject = from(r#"{"fault":"error:0.5","for":"1m"}"#).unwrap();
        assert_eq!(
            (b.fault.flatten().map(|f| f.to_string()), b.for_),
            (Some("error:0.5".to_owned()), Some(Duration::from_secs(60)))
        );
        let b: Inject = from(r#"{"fault":null}"#).unwrap();
        assert!(matches!(b.fault, Some(None)));
        let b: Inject = from(r#"{"for":"1m"}"#).unwrap();
        assert!(b.fault.is_none());
        let e = from::<Inject>(r#"{"fault":"error","for":"10"}"#).unwrap_err();
        assert!(e.starts_with("`for`:"), "{e}");
        let e = from::<Inject>(r#"{"fault":"error","for":10}"#).unwrap_err();
        assert!(e.starts_with("`for` must be a duration string"), "{e}");
    }

    #[test]
    fn notices_are_trimmed_and_bounded() {
        let b: Notice = from(r#"{"text":"  점검 중 "}"#).unwrap();
        assert_eq!(b.text, Some(Some("점검 중".to_owned())));
        let e = from::<Notice>(r#"{"text":"  "}"#).unwrap_err();
        assert!(e.starts_with("the notice is empty"), "{e}");
        let long = format!(r#"{{"text":"{}"}}"#, "가".repeat(MAX_NOTICE_CHARS + 1));
        let e = from::<Notice>(&long).unwrap_err();
        assert!(e.contains("this one has 501"), "{e}");
        for bad in [
            "\\u001b[31mred",
            "a\\nb",
            "\\u202Egnp.exe",
            "x\\u2066y",
            "a\\u0085b",
        ] {
            let e = from::<Notice>(&format!(r#"{{"text":"점검 {bad}"}}"#)).unwrap_err();
            assert!(e.contains("U+"), "{bad}: {e}");
        }
        let b: Notice = from(r#"{"text":"<b>점검</b> & 'quotes'"}"#).unwrap();
        assert_eq!(b.text, Some(Some("<b>점검</b> & 'quotes'".to_owned())));
        let e = from::<Notice>(r#"{"text":"x","until":"1h"}"#).unwrap_err();
        assert!(e.starts_with("unknown field `until`"), "{e}");
    }

    #[test]
    fn shadow_bodies_tell_left_out_from_null() {
        assert_eq!(
            from::<Shadow>(r#"{"shadow":true}"#).unwrap().shadow,
            Some(Some(true))
        );
        assert_eq!(
            from::<Shadow>(r#"{"shadow":false}"#).unwrap().shadow,
            Some(Some(false))
        );
        assert_eq!(
            from::<Shadow>(r#"{"shadow":null}"#).unwrap().shadow,
            Some(None)
        );
        assert_eq!(from::<Shadow>("{}").unwrap().shadow, None);
        for bad in [r#"{"shadow":"on"}"#, r#"{"shadow":1}"#, r#"{"shadow":[]}"#] {
            let e = from::<Shadow>(bad).unwrap_err();
            assert!(
                e.starts_with("`shadow` must be true, false or null"),
                "{bad}: {e}"
            );
        }
        let e = from::<Shadow>(r#"{"mode":"shadow"}"#).unwrap_err();
        assert!(e.starts_with("unknown field `mode`"), "{e}");
    }

    #[test]
    fn swap_bodies_are_booleans_or_null() {
        assert_eq!(from::<Swap>("{}").unwrap().swapped, None);
        assert_eq!(from::<Swap>(r#"{"swapped":null}"#).unwrap().swapped, None);
        assert_eq!(
            from::<Swap>(r#"{"swapped":false}"#).unwrap().swapped,
            Some(false)
        );
        let e = from::<Swap>(r#"{"swapped":"yes"}"#).unwrap_err();
        assert!(e.starts_with("`swapped` must be true or false"), "{e}");
    }
}
