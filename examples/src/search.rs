//! The search chain: daum, then juso, then the emergency notice, each step one
//! `#[circuit_breaker]` function.
//!
//! ```text
//! daum ──fails, times out or is open──▶ juso ──fails, times out or is open──▶ outage_notice
//! ```
//!
//! A failed or slow daum call is counted by `provider.daum`'s breaker and juso answers the same
//! request; after three failures within 30 s the breaker opens and daum is not called at all for
//! 5 s (then one probe). When juso fails too, `outage_notice` ends the chain with the text an
//! operator set on `provider.juso` (`breakerctl notice provider.juso "..."` or the admin page), or
//! [`DEFAULT_NOTICE`]. No user sees an error.
//!
//! Only the provider's failures count: a transport error, a timeout, an HTTP 5xx, 429 or other
//! status that is not the query's fault, an unreadable answer, juso's system and key errors
//! ([`is_outage`], each breaker's `failure_if`). A query the provider refuses — daum's 400,
//! juso's input codes such as `E0008` ([`crate::providers::rules`]) — is the user's mistake: it
//! is answered "fix your query" ([`Refusal`]), is not passed to the next provider and counts as
//! a success, so no amount of bad queries opens a breaker.
//!
//! The provider functions take only the query, as a team would write them; the provider URLs and
//! the record of who answered travel with the request in a task-local ([`search`] sets it).

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use breaker_runtime::{BreakerError, circuit_breaker};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::providers::rules::{is_daum_input_status, is_juso_input_code};
use crate::providers::{
    CONTROL_PATH, DAUM_PATH, DaumResponse, JUSO_PATH, JusoResponse, PAGE_SIZE, PROVINCES, Provider,
};

/// The primary's breaker.
pub const DAUM_BREAKER: &str = "provider.daum";
/// The secondary's breaker; its notice is what users read when both providers are down.
pub const JUSO_BREAKER: &str = "provider.juso";
/// What users read when both providers are down and no operator has set a notice.
pub const DEFAULT_NOTICE: &str = "주소 검색이 일시적으로 중단되었습니다. 주소를 직접 입력해 주세요. \
     / Address search is temporarily unavailable; please type your address by hand.";

/// One address, whichever provider found it: road-name and lot-number (jibun) forms with the full
/// province name (`서울특별시`, not daum's `서울`), postcode and building.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// Road-name address: `서울특별시 강남구 테헤란로 152`.
    pub road: String,
    /// Lot-number address: `서울특별시 강남구 역삼동 737`.
    pub jibun: String,
    /// Five-digit postcode.
    pub zip: String,
    /// Building name, if any.
    pub building: Option<String>,
}

/// Why a provider step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearchError {
    /// The provider could not be reached, or the connection broke.
    Unreachable {
        /// `daum` or `juso`.
        provider: Provider,
        /// What went wrong.
        message: String,
    },
    /// The provider answered with an HTTP error status.
    Status {
        /// `daum` or `juso`.
        provider: Provider,
        /// The status code.
        status: u16,
    },
    /// The provider answered with an error code in its body (juso's `errorCode`).
    Refused {
        /// `daum` or `juso`.
        provider: Provider,
        /// The provider's code, e.g. `E0001`.
        code: String,
        /// The provider's message.
        message: String,
    },
    /// The provider refused the query itself: the user's mistake, not an outage (not counted by
    /// the breaker, not passed to the next provider).
    InvalidQuery(Refusal),
    /// The answer could not be read (or was larger than [`MAX_RESPONSE_BYTES`]).
    Malformed {
        /// `daum` or `juso`.
        provider: Provider,
        /// What did not parse.
        message: String,
    },
    /// A breaker rejected or timed out the call (seen only when the chain has nothing left).
    Breaker(BreakerError),
    /// Both providers are down: the chain ended at `outage_notice`, with this text for users.
    Unavailable {
        /// The operator's notice, or [`DEFAULT_NOTICE`].
        notice: String,
    },
    /// A provider function was called outside [`search`], so it does not know where to go.
    NoProviders,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Unreachable { provider, message } => write!(f, "{provider}: {message}"),
            SearchError::Status { provider, status } => {
                write!(f, "{provider} answered HTTP {status}")
            }
            SearchError::Refused {
                provider,
                code,
                message,
            } => write!(f, "{provider} answered error {code}: {message}"),
            SearchError::InvalidQuery(r) => r.fmt(f),
            SearchError::Malformed { provider, message } => {
                write!(f, "{provider} sent an unreadable answer: {message}")
            }
            SearchError::Breaker(e) => e.fmt(f),
            SearchError::Unavailable { notice } => {
                write!(
                    f,
                    "both providers are down; users see the notice {notice:?}"
                )
            }
            SearchError::NoProviders => {
                f.write_str("provider function called outside `search::search`")
            }
        }
    }
}

impl std::error::Error for SearchError {}

/// A provider's refusal of a query: its code (juso's `errorCode`, or daum's HTTP status as
/// `HTTP 400`) and its message, at most [`MAX_REFUSAL_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// `daum` or `juso`.
    pub provider: String,
    /// `E0008`, `HTTP 400`, ...
    pub code: String,
    /// What the provider said.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} refused the query ({}): {}",
            self.provider, self.code, self.message
        )
    }
}

/// Whether a provider function's error is the provider's failure, which the breaker counts and
/// the next provider answers: everything but [`SearchError::InvalidQuery`]. The breakers'
/// `failure_if`.
#[must_use]
pub fn is_outage(error: &SearchError) -> bool {
    !matches!(error, SearchError::InvalidQuery(_))
}

/// The largest provider answer read, in bytes; a larger one is [`SearchError::Malformed`] (a
/// page of 10 addresses is about 3 KiB).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The most addresses kept from one answer (both providers are asked for one page of
/// [`PAGE_SIZE`]); the rest are dropped.
pub const MAX_ADDRESSES: usize = 5 * PAGE_SIZE;
/// The longest provider message kept in a [`Refusal`], in characters.
pub const MAX_REFUSAL_CHARS: usize = 200;

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

impl From<BreakerError> for SearchError {
    fn from(e: BreakerError) -> Self {
        SearchError::Breaker(e)
    }
}

/// Where the providers are, and the HTTP client that calls them (one connection pool per
/// service).
#[derive(Clone)]
pub struct Providers {
    client: reqwest::Client,
    daum: Url,
    juso: Url,
    daum_search: Url,
    juso_search: Url,
    /// The mock providers' control token, per provider (daum, juso), sent to their `/_control`:
    /// only to the embedded mocks, or to external ones when a token was given for them.
    control_tokens: [Option<Arc<str>>; 2],
}

impl Providers {
    /// Providers at the base URLs `daum` and `juso` (`http://127.0.0.1:PORT`, no path).
    ///
    /// # Errors
    /// When a URL is not an absolute `http` or `https` URL, or the HTTP client cannot be built.
    pub fn new(daum: &str, juso: &str) -> Result<Providers, String> {
        let base = |name: &str, raw: &str| -> Result<Url, String> {
            let url = Url::parse(raw.trim_end_matches('/'))
                .map_err(|e| format!("{name} URL `{raw}`: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!(
                    "{name} URL `{raw}`: expected http://host:port or https://host:port"
                ));
            }
            Ok(url)
        };
        let daum = base("daum", daum)?;
        let juso = base("juso", juso)?;
        let daum_search = join(&daum, DAUM_PATH);
        let juso_search = join(&juso, JUSO_PATH);
        let client = reqwest::Client::builder()
            // Loopback providers must not go through an HTTP proxy from the environment.
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            // A backstop only: the breakers' 800 ms timeout abandons a call much earlier.
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("address-search/", env!("CARGO_PKG_VERSION")))
            // A provider that redirects has moved or is misconfigured: that is its failure, and
            // following it could take the query (and its client's address) anywhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Providers {
            client,
            daum,
            juso,
            daum_search,
            juso_search,
            control_tokens: [None, None],
        })
    }

    /// The same providers, `provider`'s `/_control` endpoint (a mock provider's) taking `token`.
    #[must_use]
    pub fn with_control_token(mut self, provider: Provider, token: &str) -> Providers {
        self.control_tokens[provider as usize] = Some(Arc::from(token));
        self
    }

    /// A request to a provider's control endpoint, with its token when one is known.
    pub fn control_request(
        &self,
        method: reqwest::Method,
        provider: Provider,
    ) -> reqwest::RequestBuilder {
        let request = self
            .client
            .request(method, self.control_url(provider))
            .timeout(Duration::from_secs(2));
        match &self.control_tokens[provider as usize] {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// A provider's base URL.
    #[must_use]
    pub fn url(&self, provider: Provider) -> &Url {
        match provider {
            Provider::Daum => &self.daum,
            Provider::Juso => &self.juso,
        }
    }

    /// A provider's control endpoint (`/_control`; only the mock providers have one).
    #[must_use]
    pub fn control_url(&self, provider: Provider) -> Url {
        join(self.url(provider), CONTROL_PATH)
    }

    /// The shared HTTP client.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("daum", &self.daum.as_str())
            .field("juso", &self.juso.as_str())
            .field(
                "control_tokens",
                &self
                    .control_tokens
                    .each_ref()
                    .map(|t| t.as_ref().map(|_| "<redacted>")),
            )
            .finish_non_exhaustive()
    }
}

/// `base` with `path` appended to its path (a base URL may carry a prefix of its own).
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    url
}

/// What one search found, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// The addresses (empty when nothing matched, or when the notice answered).
    pub addresses: Vec<Address>,
    /// `"daum"` or `"juso"`: who answered; `None` when the notice answered.
    pub provider: Option<String>,
    /// Whether the primary did not answer (the secondary or the notice did).
    pub degraded: bool,
    /// The notice users read when both providers are down.
    pub notice: Option<String>,
}

/// Per-request context for the provider functions.
struct Call {
    providers: Arc<Providers>,
    answered: Cell<Option<Provider>>,
}

tokio::task_local! {
    static CALL: Call;
}

fn providers() -> Result<Arc<Providers>, SearchError> {
    CALL.try_with(|c| Arc::clone(&c.providers))
        .map_err(|_| SearchError::NoProviders)
}

/// Records who answered. Called right before a provider function returns `Ok`, with no
/// `.await` in between, so a call abandoned by its timeout never records itself.
fn answered(provider: Provider) {
    let _ = CALL.try_with(|c| c.answered.set(Some(provider)));
}

/// Searches `query` through the chain: daum, juso, the notice. Never fails for an outage: the
/// worst case is an outcome with the notice.
///
/// # Errors
/// [`Refusal`] when the provider asked refused the query itself (the user should fix it).
pub async fn search(providers: &Arc<Providers>, query: &str) -> Result<SearchOutcome, Refusal> {
    outcome(providers, daum(query)).await
}

/// The same search with no breaker: daum; juso when daum's error is an outage; the notice when
/// juso's is too — what the service would do by hand, without timeouts, counting or probing.
/// For measuring what the breakers cost in the service (`service-bench`), not for serving.
///
/// # Errors
/// As [`search`].
pub async fn search_without_breakers(
    providers: &Arc<Providers>,
    query: &str,
) -> Result<SearchOutcome, Refusal> {
    search_by_hand(providers, query, None).await
}

/// The same search by hand with each provider call under `tokio::time::timeout` (the
/// breakers' 800 ms): what a service without breakers but with timeouts would run. A call that
/// times out is an outage (`Unreachable`). For `service-bench --direct-with-timeouts`: it tells
/// the breakers' own cost from the cost of the timers any careful client arms.
///
/// # Errors
/// As [`search`].
pub async fn search_with_timeouts_only(
    providers: &Arc<Providers>,
    query: &str,
) -> Result<SearchOutcome, Refusal> {
    search_by_hand(providers, query, Some(Duration::from_millis(800))).await
}

/// daum; juso when daum's error is an outage; the notice when juso's is too; each provider
/// call under `timeout`, if any.
async fn search_by_hand(
    providers: &Arc<Providers>,
    query: &str,
    timeout: Option<Duration>,
) -> Result<SearchOutcome, Refusal> {
    async fn call(
        provider: Provider,
        timeout: Option<Duration>,
        call: impl std::future::Future<Output = Result<Vec<Address>, SearchError>>,
    ) -> Result<Vec<Address>, SearchError> {
        let Some(after) = timeout else {
            return call.await;
        };
        tokio::time::timeout(after, call).await.unwrap_or_else(|_| {
            Err(SearchError::Unreachable {
                provider,
                message: format!("timed out after {after:?}"),
            })
        })
    }
    let chain = async {
        match call(Provider::Daum, timeout, daum_call(query)).await {
            Err(e) if is_outage(&e) => {
                match call(Provider::Juso, timeout, juso_call(query)).await {
                    Err(e) if is_outage(&e) => outage_notice(query).await,
                    other => other,
                }
            }
            other => other,
        }
    };
    outcome(providers, chain).await
}

/// Runs `chain` with the request's providers in scope, and turns its result into what users
/// get.
async fn outcome(
    providers: &Arc<Providers>,
    chain: impl std::future::Future<Output = Result<Vec<Address>, SearchError>>,
) -> Result<SearchOutcome, Refusal> {
    let call = Call {
        providers: Arc::clone(providers),
        answered: Cell::new(None),
    };
    let (result, provider) = CALL
        .scope(call, async {
            let result = chain.await;
            (result, CALL.with(|c| c.answered.get()))
        })
        .await;
    Ok(match result {
        Ok(addresses) => SearchOutcome {
            addresses,
            provider: provider.map(|p| p.name().to_owned()),
            degraded: provider != Some(Provider::Daum),
            notice: None,
        },
        Err(SearchError::InvalidQuery(refusal)) => {
            tracing::debug!(%refusal, "a provider refused the query");
            return Err(refusal);
        }
        Err(SearchError::Unavailable { notice }) => SearchOutcome {
            addresses: Vec::new(),
            provider: None,
            degraded: true,
            notice: Some(notice),
        },
        // A swapped chain whose every step failed ends with another step's error: users still
        // get the notice.
        Err(other) => {
            tracing::warn!(error = %other, "address search chain failed");
            SearchOutcome {
                addresses: Vec::new(),
                provider: None,
                degraded: true,
                notice: Some(current_notice()),
            }
        }
    })
}

/// The primary: Daum's address search. A slow answer is a failure, as in the story; a refused
/// query is not ([`is_outage`]).
#[circuit_breaker(name = "provider.daum", fallback = juso, timeout = "800ms", threshold = 3,
                  window = "30s", open_for = "5s", store = "redis", failure_if = is_outage,
                  max_concurrent = 64)]
async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
    daum_call(query).await
}

/// Daum's search itself.
async fn daum_call(query: &str) -> Result<Vec<Address>, SearchError> {
    let providers = providers()?;
    let mut url = providers.daum_search.clone();
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("size", &PAGE_SIZE.to_string());
    let body = fetch(&providers.client, url, Provider::Daum).await?;
    let addresses = normalise_daum(parse(&body, Provider::Daum)?);
    answered(Provider::Daum);
    Ok(addresses)
}

/// The secondary: the road-name address API; errors come as HTTP 200 with an `errorCode`, the
/// input ones not counted ([`is_outage`]).
#[circuit_breaker(name = "provider.juso", fallback = outage_notice, timeout = "800ms",
                  threshold = 3, window = "30s", open_for = "5s", store = "redis",
                  failure_if = is_outage)]
async fn juso(query: &str) -> Result<Vec<Address>, SearchError> {
    juso_call(query).await
}

/// Juso's search itself.
async fn juso_call(query: &str) -> Result<Vec<Address>, SearchError> {
    let providers = providers()?;
    let mut url = providers.juso_search.clone();
    url.query_pairs_mut()
        .append_pair("keyword", query)
        .append_pair("countPerPage", &PAGE_SIZE.to_string())
        .append_pair("resultType", "json")
        .append_pair("confmKey", "demo");
    let body = fetch(&providers.client, url, Provider::Juso).await?;
    let addresses = normalise_juso(parse(&body, Provider::Juso)?)?;
    answered(Provider::Juso);
    Ok(addresses)
}

/// The end of the chain: both providers are down. Returns the operator's notice for
/// `provider.juso`, or [`DEFAULT_NOTICE`], as an error the handler turns into a 200 with the
/// notice (the breaker counts it as the chain failing, which raises the `chain_failed` alert).
async fn outage_notice(_query: &str) -> Result<Vec<Address>, SearchError> {
    Err(SearchError::Unavailable {
        notice: current_notice(),
    })
}

/// The operator's notice for `provider.juso`, or [`DEFAULT_NOTICE`].
#[must_use]
pub fn current_notice() -> String {
    breaker_runtime::notice(JUSO_BREAKER).unwrap_or_else(|| DEFAULT_NOTICE.to_owned())
}

async fn fetch(
    client: &reqwest::Client,
    url: Url,
    provider: Provider,
) -> Result<Vec<u8>, SearchError> {
    let unreachable = |e: reqwest::Error| SearchError::Unreachable {
        provider,
        // Without the URL: it is known, and the message goes into alerts.
        message: e.without_url().to_string(),
    };
    let mut response = client.get(url).send().await.map_err(unreachable)?;
    let status = response.status();
    let too_large = || SearchError::Malformed {
        provider,
        message: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
    };
    let body = match read_capped(&mut response).await {
        Ok(Some(body)) => body,
        Ok(None) => return Err(too_large()),
        Err(e) => return Err(unreachable(e)),
    };
    if status.is_success() {
        return Ok(body);
    }
    if provider == Provider::Daum && is_daum_input_status(status.as_u16()) {
        // Kakao's error body: {"errorType":"MissingParameter","message":"query parameter required"}.
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        return Err(SearchError::InvalidQuery(Refusal {
            provider: provider.name().to_owned(),
            code: format!("HTTP {}", status.as_u16()),
            message: clip(&message, MAX_REFUSAL_CHARS),
        }));
    }
    Err(SearchError::Status {
        provider,
        status: status.as_u16(),
    })
}

/// A provider's answer body, at most [`MAX_RESPONSE_BYTES`]: `None` when it is larger (a stated
/// length over the cap is refused before reading; a provider that sends no length, or a wrong
/// one, is cut off at the cap, read chunk by chunk).
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A provider's answer in its wire format; [`SearchError::Malformed`] when it does not fit.
fn parse<T: DeserializeOwned>(body: &[u8], provider: Provider) -> Result<T, SearchError> {
    serde_json::from_slice(body).map_err(|e| SearchError::Malformed {
        provider,
        message: e.to_string(),
    })
}

/// `서울 강남구 ...` (daum's abbreviation) → `서울특별시 강남구 ...`.
fn expand_province(address: &str) -> String {
    let address = address.trim();
    let first = address.split(' ').next().unwrap_or_default();
    PROVINCES
        .iter()
        .find(|(_, short)| *short == first)
        .map_or_else(
            || address.to_owned(),
            |(full, short)| format!("{full}{}", &address[short.len()..]),
        )
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// Daum's documents in the normal form: full province names; a document without a road-name
/// address keeps its whole address as `road`.
#[must_use]
pub fn normalise_daum(response: DaumResponse) -> Vec<Address> {
    response
        .documents
        .into_iter()
        .take(MAX_ADDRESSES)
        .map(|d| {
            let jibun = d
                .address
                .map(|a| expand_province(&a.address_name))
                .unwrap_or_default();
            match d.road_address {
                Some(r) => Address {
                    road: expand_province(&r.address_name),
                    jibun,
                    zip: r.zone_no.trim().to_owned(),
                    building: non_empty(&r.building_name),
                },
                None => Address {
                    road: expand_province(&d.address_name),
                    jibun,
                    zip: String::new(),
                    building: None,
                },
            }
        })
        .collect()
}

/// Juso's answer in the normal form: the reference part in parentheses is cut from the road
/// address, the building name from the end of the jibun address.
///
/// # Errors
/// When `errorCode` is not `"0"`: [`SearchError::InvalidQuery`] for an input code (the user's
/// mistake), [`SearchError::Refused`] for any other (the provider's failure).
pub fn normalise_juso(response: JusoResponse) -> Result<Vec<Address>, SearchError> {
    let common = response.results.common;
    let code = common.error_code.trim();
    if is_juso_input_code(code) {
        return Err(SearchError::InvalidQuery(Refusal {
            provider: Provider::Juso.name().to_owned(),
            code: clip(code, 16),
            message: clip(&common.error_message, MAX_REFUSAL_CHARS),
        }));
    }
    if code != "0" {
        return Err(SearchError::Refused {
            provider: Provider::Juso,
            code: clip(code, 16),
            message: clip(&common.error_message, MAX_REFUSAL_CHARS),
        });
    }
    Ok(response
        .results
        .juso
        .unwrap_or_default()
        .into_iter()
        .take(MAX_ADDRESSES)
        .map(|j| {
            let building = non_empty(&j.bd_nm);
            let road = match j.road_addr.trim().rsplit_once(" (") {
                Some((road, reference)) if reference.ends_with(')') => road.to_owned(),
                _ => j.road_addr.trim().to_owned(),
            };
            let jibun = j.jibun_addr.trim();
            let jibun = building
                .as_deref()
                .and_then(|b| jibun.strip_suffix(b))
                .map_or(jibun, str::trim_end)
                .to_owned();
            Address {
                road,
                jibun,
                zip: j.zip_no.trim().to_owned(),
                building,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{dataset, daum_answer, juso_answer};

    fn gfc() -> Address {
        Address {
            road: "서울특별시 강남구 테헤란로 152".into(),
            jibun: "서울특별시 강남구 역삼동 737".into(),
            zip: "06236".into(),
            building: Some("강남파이낸스센터".into()),
        }
    }

    #[test]
    fn daum_json_as_the_contract_writes_it_parses_and_normalises() {
        let json = r#"{"meta":{"total_count":1},"documents":[{"address_name":"서울 강남구 테헤란로 152",
            "address_type":"ROAD_ADDR","x":"127.036","y":"37.500",
            "road_address":{"address_name":"서울 강남구 테헤란로 152","zone_no":"06236","building_name":"강남파이낸스센터"},
            "address":{"address_name":"서울 강남구 역삼동 737"}}]}"#;
        let parsed: DaumResponse = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.meta.total_count, 1);
        assert_eq!(normalise_daum(parsed), [gfc()]);
    }

    #[test]
    fn daum_without_road_address_or_building_keeps_what_it_has() {
        let json = r#"{"meta":{"total_count":2},"documents":[
            {"address_name":"부산 해운대구 우동 1411-1","road_address":null,"address":{"address_name":"부산 해운대구 우동 1411-1"}},
            {"address_name":"부산 해운대구 해운대해변로 264","road_address":{"address_name":"부산 해운대구 해운대해변로 264","zone_no":"48099","building_name":""},"address":null}]}"#;
        let parsed: DaumResponse = serde_json::from_str(json).unwrap();
        let got = normalise_daum(parsed);
        assert_eq!(got[0].road, "부산광역시 해운대구 우동 1411-1");
        assert_eq!(got[0].zip, "");
        assert_eq!(got[1].building, None);
        assert_eq!(got[1].jibun, "");
        assert_eq!(got[1].road, "부산광역시 해운대구 해운대해변로 264");
    }

    #[test]
    fn juso_json_as_the_contract_writes_it_parses_and_normalises() {
        let json = r#"{"results":{"common":{"errorCode":"0","errorMessage":"정상","totalCount":"1",
            "currentPage":"1","countPerPage":"10"},
            "juso":[{"roadAddr":"서울특별시 강남구 테헤란로 152 (역삼동, 강남파이낸스센터)",
            "jibunAddr":"서울특별시 강남구 역삼동 737 강남파이낸스센터","zipNo":"06236","bdNm":"강남파이낸스센터",
            "admCd":"1168010100"}]}}"#;
        let parsed: JusoResponse = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.results.common.total_count, "1");
        assert_eq!(normalise_juso(parsed).unwrap(), [gfc()]);
    }

    #[test]
    fn juso_error_codes_are_failures_even_with_http_200() {
        let json = r#"{"results":{"common":{"errorCode":"E0001","errorMessage":"시스템 점검","totalCount":"0"},"juso":null}}"#;
        let parsed: JusoResponse = serde_json::from_str(json).unwrap();
        let err = normalise_juso(parsed).unwrap_err();
        assert_eq!(
            err,
            SearchError::Refused {
                provider: Provider::Juso,
                code: "E0001".into(),
                message: "시스템 점검".into()
            }
        );
        assert_eq!(err.to_string(), "juso answered error E0001: 시스템 점검");
    }

    #[test]
    fn both_mock_formats_normalise_to_the_same_addresses() {
        for entry in dataset() {
            let daum = normalise_daum(daum_answer(&entry.road));
            let juso = normalise_juso(juso_answer(&entry.road)).unwrap();
            assert!(!daum.is_empty(), "{entry:?}");
            assert_eq!(daum, juso, "{entry:?}");
            let wanted = Address {
                road: entry.road.clone(),
                jibun: entry.jibun.clone(),
                zip: entry.zip.clone(),
                building: entry.building.clone(),
            };
            assert!(daum.contains(&wanted), "{entry:?}: {daum:?}");
        }
    }

    #[test]
    fn the_mock_answers_serialise_to_the_contract_shapes() {
        let daum = serde_json::to_value(daum_answer("테헤란로 152")).unwrap();
        assert_eq!(daum["meta"]["total_count"], 1);
        assert_eq!(daum["documents"][0]["road_address"]["zone_no"], "06236");
        assert_eq!(
            daum["documents"][0]["address"]["address_name"],
            "서울 강남구 역삼동 737"
        );
        let juso = serde_json::to_value(juso_answer("teheran 152")).unwrap();
        assert_eq!(juso["results"]["common"]["errorCode"], "0");
        assert_eq!(juso["results"]["common"]["totalCount"], "1");
        assert_eq!(juso["results"]["juso"][0]["zipNo"], "06236");
        assert_eq!(juso["results"]["juso"][0]["bdNm"], "강남파이낸스센터");
    }

    #[tokio::test]
    async fn a_provider_function_outside_search_says_so() {
        // Not through the breaker's chain: the bare helper.
        assert_eq!(providers().unwrap_err(), SearchError::NoProviders);
    }
}
