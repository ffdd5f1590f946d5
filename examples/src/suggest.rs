//! `GET /api/suggest?q=`: road addresses suggested while a user types, from daum's search,
//! through a `reqwest` client whose breaker is the runtime's reqwest middleware
//! ([`BreakerMiddleware`], one breaker per provider host, named `suggest.<host:port>`). The
//! service's other style of breaker, beside the `#[circuit_breaker]` functions of the search
//! itself: both run side by side, in the registry, the console and `/readyz`.
//!
//! Suggestions are optional, so there is no second provider: when daum fails, times out or its
//! breaker is OPEN, the answer is an empty list marked `degraded`, at once, and typing goes on.

use std::time::Duration;

use breaker_runtime::Breaker;
use breaker_runtime::middleware::{BreakerMiddleware, breaker_error};
use reqwest::Url;
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};

use crate::providers::{DAUM_PATH, DaumResponse};
use crate::search::{Providers, normalise_daum, read_capped};

/// Suggestions at most.
pub const MAX_SUGGESTIONS: usize = 5;

/// The breaker settings of every suggestion host: a quick timeout (a suggestion that comes
/// late is useless), three failures in 10 s open it for 5 s.
fn settings() -> breaker_runtime::BreakerBuilder {
    Breaker::builder("suggest")
        .timeout(Duration::from_millis(300))
        .threshold(3)
        .window(Duration::from_secs(10))
        .open_for(Duration::from_secs(5))
}

/// What `/api/suggest` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestions {
    /// Road-name addresses, at most [`MAX_SUGGESTIONS`].
    pub suggestions: Vec<String>,
    /// No suggestions could be asked for (the provider failed, or its breaker is OPEN).
    pub degraded: bool,
}

/// Asks daum for suggestions through the breaker middleware.
#[derive(Debug, Clone)]
pub struct Suggester {
    client: ClientWithMiddleware,
    search: Url,
}

impl Suggester {
    /// Suggestions from `providers`' daum, with its HTTP client.
    #[must_use]
    pub fn new(providers: &Providers) -> Suggester {
        let mut search = providers.url(crate::providers::Provider::Daum).clone();
        search.set_path(DAUM_PATH);
        Suggester {
            client: reqwest_middleware::ClientBuilder::new(providers.client().clone())
                .with(BreakerMiddleware::per_host(settings()))
                .build(),
            search,
        }
    }

    /// Suggestions for `query` (already validated), or an empty, degraded answer.
    pub async fn suggest(&self, query: &str) -> Suggestions {
        let degraded = Suggestions {
            suggestions: Vec::new(),
            degraded: true,
        };
        let mut url = self.search.clone();
        url.query_pairs_mut()
            .append_pair("query", query)
            .append_pair("size", &MAX_SUGGESTIONS.to_string());
        let mut answer = match self.client.get(url).send().await {
            Ok(a) if a.status().is_success() => a,
            Ok(a) => {
                tracing::debug!(status = %a.status(), "suggestions: the provider refused");
                return degraded;
            }
            Err(e) => {
                match breaker_error(&e) {
                    Some(b) => tracing::debug!("suggestions: {b}"),
                    None => tracing::debug!("suggestions: {e}"),
                }
                return degraded;
            }
        };
        // At most the search's cap.
        let Ok(Some(body)) = read_capped(&mut answer).await else {
            tracing::debug!("suggestions: an oversized or broken answer");
            return degraded;
        };
        match serde_json::from_slice::<DaumResponse>(&body) {
            Ok(r) => Suggestions {
                suggestions: normalise_daum(r)
                    .into_iter()
                    .map(|a| a.road)
                    .take(MAX_SUGGESTIONS)
                    .collect(),
                degraded: false,
            },
            Err(e) => {
                tracing::debug!("suggestions: unreadable answer: {e}");
                degraded
            }
        }
    }
}
