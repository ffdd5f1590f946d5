//! The two address providers, as mock HTTP servers on loopback: their wire formats, a small
//! dataset, and the controls that take them down.
//!
//! - **daum**, shaped like Daum/Kakao's address search:
//!   `GET /v2/local/search/address.json?query=...` answers [`DaumResponse`]; abbreviated
//!   province names (`서울 강남구 ...`), as the real service writes them.
//! - **juso**, shaped like the road-name address API of juso.go.kr:
//!   `GET /addrlink/addrLinkApi.do?keyword=...&resultType=json&confmKey=demo` answers
//!   [`JusoResponse`]; full province names and the reference part in parentheses
//!   (`... 테헤란로 152 (역삼동, 강남파이낸스센터)`), and errors as HTTP 200 with an `errorCode`.
//!
//! Both serve the same [`dataset()`] (`examples/data/addresses.json`), so a failover changes who
//! answers, not what users find.
//! `POST /_control` with `{"mode":"up"|"down"|"slow"|"flap","delay_ms":1500}` changes how a provider
//! behaves ([`Mode`]); `GET /_control` reads it back ([`Control`]). Both need the mock's control
//! token (`Authorization: Bearer <token>`, [`MockProvider::control_token`]), and the POST a JSON
//! body (`Content-Type: application/json`): a web page cannot switch a mock off.
//!
//! The juso mock refuses bad keywords as the real API does ([`rules`]); daum's refuses an empty
//! query with HTTP 400.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod dataset;
mod mock;
pub mod rules;
mod wire;

pub use dataset::{Entry, dataset, find};
pub use mock::{MockProvider, daum_answer, juso_answer, juso_error};
pub use wire::{
    DaumDocument, DaumJibunAddress, DaumMeta, DaumResponse, DaumRoadAddress, JusoCommon, JusoItem,
    JusoResponse, JusoResults, PROVINCES,
};

/// Path of the daum-like search endpoint.
pub const DAUM_PATH: &str = "/v2/local/search/address.json";
/// Path of the juso-like search endpoint.
pub const JUSO_PATH: &str = "/addrlink/addrLinkApi.do";
/// Path of every mock provider's control endpoint.
pub const CONTROL_PATH: &str = "/_control";
/// How long `slow` sleeps when no `delay_ms` was given.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(1500);
/// The longest `delay_ms` a control request may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long each half of a `flap` cycle lasts (down, then up, then down...).
pub const FLAP_PERIOD: Duration = Duration::from_secs(2);
/// Most addresses one search returns (both real APIs page by 10 by default).
pub const PAGE_SIZE: usize = 10;

/// One of the two providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// The primary, shaped like Daum's postcode / address search.
    Daum,
    /// The secondary, shaped like the road-name address API (juso.go.kr).
    Juso,
}

impl Provider {
    /// Both, primary first.
    pub const ALL: [Provider; 2] = [Provider::Daum, Provider::Juso];

    /// `"daum"` or `"juso"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Provider::Daum => "daum",
            Provider::Juso => "juso",
        }
    }

    /// The provider called `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a mock provider behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Answers at once.
    Up,
    /// Fails at once: HTTP 503 (daum), or HTTP 200 with `errorCode` `-999`, the system error
    /// (juso, like the real API).
    Down,
    /// Sleeps `delay_ms`, then answers: the 2019 outage, where the provider hung.
    Slow,
    /// Down for 2 s, up for 2 s, and so on, from the moment the mode was set.
    Flap,
}

impl Mode {
    /// `"up"`, `"down"`, `"slow"` or `"flap"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Up => "up",
            Mode::Down => "down",
            Mode::Slow => "slow",
            Mode::Flap => "flap",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider's control state: the body of `GET /_control` and of `POST /_control` (where
/// `delay_ms` may be left out to keep the current delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// How the provider behaves.
    pub mode: Mode,
    /// How long `slow` sleeps, in milliseconds (at most 60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_body_names_its_mistakes() {
        let ok: Control = serde_json::from_str(r#"{"mode":"slow","delay_ms":1500}"#).unwrap();
        assert_eq!(ok.mode, Mode::Slow);
        assert_eq!(ok.delay_ms, Some(1500));
        let e = serde_json::from_str::<Control>(r#"{"mode":"fast"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown variant `fast`"), "{e}");
        let e = serde_json::from_str::<Control>(r#"{"mode":"up","delay":1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `delay`"), "{e}");
    }
}
