//! The HTTP requests of the demo: a search judged as a user would, the providers' control
//! endpoint and the instances' admin API.

use std::fmt::Write as _;

use reqwest::{Client, Url};
use serde_json::Value;

use crate::{PRIMARY_BREAKER, Result};

/// `<instance>/api/search?q=<query>`.
pub(crate) fn search_url(instance: &Url, query: &str) -> Result<Url> {
    let mut url = instance.join("/api/search")?;
    url.query_pairs_mut().append_pair("q", query);
    Ok(url)
}

/// What one search returned.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// HTTP status, `None` when no answer came.
    pub(crate) status: Option<u16>,
    /// The `provider` field of the answer.
    pub(crate) provider: Option<String>,
    /// The `degraded` field.
    pub(crate) degraded: bool,
    /// Whether the answer carried a notice.
    pub(crate) notice: bool,
    /// How many addresses it carried.
    pub(crate) addresses: usize,
    /// What the user saw as an error, if anything.
    pub(crate) error: Option<String>,
}

impl Outcome {
    pub(crate) fn failed(status: Option<u16>, error: String) -> Self {
        Outcome {
            status,
            error: Some(error),
            ..Outcome::default()
        }
    }
}

/// One `GET /api/search`, judged as the user would: an error is a failed request, a status other
/// than 200, or a 200 with neither addresses nor a notice.
pub(crate) async fn search(client: &Client, url: Url) -> Outcome {
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::failed(None, format!("request failed: {}", error_chain(&e))),
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return Outcome::failed(Some(status), format!("body failed: {}", error_chain(&e)));
        }
    };
    if status != 200 {
        return Outcome::failed(Some(status), format!("HTTP {status}: {}", snippet(&body)));
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::failed(Some(status), format!("not JSON ({e}): {}", snippet(&body)));
        }
    };
    let Some(addresses) = json
        .get("addresses")
        .and_then(Value::as_array)
        .map(Vec::len)
    else {
        return Outcome::failed(
            Some(status),
            format!("no `addresses` list: {}", snippet(&body)),
        );
    };
    let notice = json.get("notice").and_then(Value::as_str).is_some();
    Outcome {
        status: Some(status),
        provider: json
            .get("provider")
            .and_then(Value::as_str)
            .map(str::to_owned),
        degraded: json
            .get("degraded")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        notice,
        addresses,
        error: (addresses == 0 && !notice)
            .then(|| "200 with no addresses and no notice".to_owned()),
    }
}

/// `GET url` as JSON (with `token` as a bearer token, when given), any status other than 200 an
/// error.
pub(crate) async fn get_json(client: &Client, url: Url, token: Option<&str>) -> Result<Value> {
    let shown = url.to_string();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {shown}: HTTP {status}: {}", snippet(&body)).into());
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("GET {shown}: not JSON ({e}): {}", snippet(&body)).into())
}

/// `POST <provider>/_control` with `body`, with the mocks' control `token`.
pub(crate) async fn post_control(
    client: &Client,
    provider: &Url,
    token: &str,
    body: &Value,
) -> Result<()> {
    let url = provider.join("/_control")?;
    let response = client
        .post(url.clone())
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let answer = response.bytes().await.unwrap_or_default();
        return Err(format!("POST {url} {body}: HTTP {status}: {}", snippet(&answer)).into());
    }
    Ok(())
}

/// The state of `provider.daum` as `instance`'s admin API reports it: `CLOSED`, `OPEN` or
/// `HALF_OPEN` (whatever the spelling in the JSON).
pub(crate) async fn breaker_state(client: &Client, instance: &Url, token: &str) -> Result<String> {
    let url = instance.join("/api/admin/breakers")?;
    let shown = url.to_string();
    let json = get_json(client, url, Some(token)).await?;
    // A list, or an object holding the list under "breakers".
    let list = json
        .as_array()
        .or_else(|| json.get("breakers").and_then(Value::as_array))
        .ok_or_else(|| {
            format!(
                "GET {shown}: no list of breakers: {}",
                snippet(json.to_string().as_bytes())
            )
        })?;
    let state = list
        .iter()
        .find(|b| b.get("name").and_then(Value::as_str) == Some(PRIMARY_BREAKER))
        .and_then(|b| b.get("state"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "GET {shown}: no state for {PRIMARY_BREAKER}: {}",
                snippet(json.to_string().as_bytes())
            )
        })?;
    let letters: String = state
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    Ok(match letters.as_str() {
        "HALFOPEN" => "HALF_OPEN".to_owned(),
        _ => letters,
    })
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}
