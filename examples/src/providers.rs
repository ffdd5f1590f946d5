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
//! Both serve the same [`DATASET`], so a failover changes who answers, not what users find.
//! `POST /_control` with `{"mode":"up"|"down"|"slow"|"flap","delay_ms":1500}` changes how a provider
//! behaves ([`Mode`]); `GET /_control` reads it back ([`Control`]).

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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
    /// Fails at once: HTTP 503 (daum), or HTTP 200 with `errorCode` `E0001` (juso, like the real API).
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

// ---------------------------------------------------------------------------------------------
// Wire formats. Only the fields the service reads are declared; unknown fields are ignored, as
// the real APIs send many more.

/// The daum-like answer:
/// `{"meta":{"total_count":N},"documents":[{"address_name":..,"road_address":{..},"address":{..}}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumResponse {
    /// Counts.
    pub meta: DaumMeta,
    /// The addresses found (at most one page).
    pub documents: Vec<DaumDocument>,
}

/// `meta` of a [`DaumResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumMeta {
    /// Every address that matched, over all pages.
    pub total_count: u64,
}

/// One address of a [`DaumResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumDocument {
    /// The whole address as matched (abbreviated province: `서울 강남구 테헤란로 152`).
    pub address_name: String,
    /// The road-name form; `null` for a lot without a road-name address.
    #[serde(default)]
    pub road_address: Option<DaumRoadAddress>,
    /// The lot-number (jibun) form; `null` when there is none.
    #[serde(default)]
    pub address: Option<DaumJibunAddress>,
}

/// `road_address` of a [`DaumDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumRoadAddress {
    /// `서울 강남구 테헤란로 152`.
    pub address_name: String,
    /// The five-digit postcode.
    pub zone_no: String,
    /// The building's name, empty when it has none.
    #[serde(default)]
    pub building_name: String,
}

/// `address` (the jibun form) of a [`DaumDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumJibunAddress {
    /// `서울 강남구 역삼동 737`.
    pub address_name: String,
}

/// The juso-like answer: `{"results":{"common":{..},"juso":[..]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoResponse {
    /// Everything is under `results`.
    pub results: JusoResults,
}

/// `results` of a [`JusoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoResults {
    /// The status: `errorCode` `"0"` is success, anything else an error (with HTTP 200).
    pub common: JusoCommon,
    /// The addresses; `null` when the request failed.
    #[serde(default)]
    pub juso: Option<Vec<JusoItem>>,
}

/// `results.common` of a [`JusoResponse`]. The API sends numbers as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JusoCommon {
    /// `"0"` on success, e.g. `"E0001"` on failure.
    pub error_code: String,
    /// `"정상"` on success, else what went wrong.
    pub error_message: String,
    /// Every address that matched, over all pages, as a string.
    pub total_count: String,
}

/// One address of a [`JusoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoItem {
    /// `서울특별시 강남구 테헤란로 152 (역삼동, 강남파이낸스센터)`.
    #[serde(rename = "roadAddr")]
    pub road_addr: String,
    /// `서울특별시 강남구 역삼동 737 강남파이낸스센터`.
    #[serde(rename = "jibunAddr")]
    pub jibun_addr: String,
    /// The five-digit postcode.
    #[serde(rename = "zipNo")]
    pub zip_no: String,
    /// The building's name, empty when it has none.
    #[serde(rename = "bdNm", default)]
    pub bd_nm: String,
}

// ---------------------------------------------------------------------------------------------
// The dataset.

/// Provinces: the full name (juso, and the service's normal form) and daum's abbreviation.
pub const PROVINCES: &[(&str, &str)] = &[
    ("서울특별시", "서울"),
    ("부산광역시", "부산"),
    ("대구광역시", "대구"),
    ("인천광역시", "인천"),
    ("광주광역시", "광주"),
    ("대전광역시", "대전"),
    ("울산광역시", "울산"),
    ("세종특별자치시", "세종특별자치시"),
    ("경기도", "경기"),
    ("강원특별자치도", "강원특별자치도"),
    ("충청북도", "충북"),
    ("충청남도", "충남"),
    ("전북특별자치도", "전북특별자치도"),
    ("전라남도", "전남"),
    ("경상북도", "경북"),
    ("경상남도", "경남"),
    ("제주특별자치도", "제주특별자치도"),
];

/// One address of the built-in dataset, in the service's normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Road-name address with the full province name.
    pub road: &'static str,
    /// Lot-number (jibun) address with the full province name.
    pub jibun: &'static str,
    /// The legal dong, which juso adds in parentheses after the road address.
    pub dong: &'static str,
    /// Five-digit postcode.
    pub zip: &'static str,
    /// Building name, if it has one.
    pub building: Option<&'static str>,
    /// Romanized and English names it is also found by.
    pub aliases: &'static str,
}

/// About twenty well-known addresses across the country.
pub const DATASET: &[Entry] = &[
    Entry {
        road: "서울특별시 강남구 테헤란로 152",
        jibun: "서울특별시 강남구 역삼동 737",
        dong: "역삼동",
        zip: "06236",
        building: Some("강남파이낸스센터"),
        aliases: "seoul gangnam-gu teheran-ro yeoksam-dong gangnam finance center gfc",
    },
    Entry {
        road: "서울특별시 강남구 테헤란로 521",
        jibun: "서울특별시 강남구 삼성동 159-8",
        dong: "삼성동",
        zip: "06164",
        building: Some("파르나스타워"),
        aliases: "seoul gangnam-gu teheran-ro samseong-dong parnas tower",
    },
    Entry {
        road: "서울특별시 강남구 강남대로 396",
        jibun: "서울특별시 강남구 역삼동 825",
        dong: "역삼동",
        zip: "06232",
        building: None,
        aliases: "seoul gangnam-gu gangnam-daero yeoksam-dong gangnam station",
    },
    Entry {
        road: "서울특별시 서초구 강남대로 465",
        jibun: "서울특별시 서초구 서초동 1303-22",
        dong: "서초동",
        zip: "06611",
        building: Some("교보타워"),
        aliases: "seoul seocho-gu gangnam-daero seocho-dong kyobo tower",
    },
    Entry {
        road: "서울특별시 중구 세종대로 110",
        jibun: "서울특별시 중구 태평로1가 31",
        dong: "태평로1가",
        zip: "04524",
        building: Some("서울특별시청"),
        aliases: "seoul jung-gu sejong-daero taepyeongno seoul city hall",
    },
    Entry {
        road: "서울특별시 종로구 세종대로 175",
        jibun: "서울특별시 종로구 세종로 81-3",
        dong: "세종로",
        zip: "03172",
        building: Some("세종문화회관"),
        aliases: "seoul jongno-gu sejong-daero sejongno sejong center",
    },
    Entry {
        road: "서울특별시 종로구 사직로 161",
        jibun: "서울특별시 종로구 세종로 1-1",
        dong: "세종로",
        zip: "03045",
        building: Some("경복궁"),
        aliases: "seoul jongno-gu sajik-ro sejongno gyeongbokgung palace",
    },
    Entry {
        road: "서울특별시 영등포구 여의대로 108",
        jibun: "서울특별시 영등포구 여의도동 22",
        dong: "여의도동",
        zip: "07335",
        building: Some("파크원"),
        aliases: "seoul yeongdeungpo-gu yeoui-daero yeouido-dong parc1",
    },
    Entry {
        road: "서울특별시 영등포구 국제금융로 10",
        jibun: "서울특별시 영등포구 여의도동 23",
        dong: "여의도동",
        zip: "07326",
        building: Some("서울국제금융센터"),
        aliases: "seoul yeongdeungpo-gu gukjegeumyung-ro yeouido-dong ifc seoul",
    },
    Entry {
        road: "서울특별시 송파구 올림픽로 300",
        jibun: "서울특별시 송파구 신천동 29",
        dong: "신천동",
        zip: "05551",
        building: Some("롯데월드타워"),
        aliases: "seoul songpa-gu olympic-ro sincheon-dong lotte world tower jamsil",
    },
    Entry {
        road: "서울특별시 마포구 월드컵북로 396",
        jibun: "서울특별시 마포구 상암동 1601",
        dong: "상암동",
        zip: "03925",
        building: Some("누리꿈스퀘어"),
        aliases: "seoul mapo-gu worldcupbuk-ro sangam-dong nuri dream square dmc",
    },
    Entry {
        road: "서울특별시 구로구 디지털로 300",
        jibun: "서울특별시 구로구 구로동 222-14",
        dong: "구로동",
        zip: "08379",
        building: Some("지밸리비즈플라자"),
        aliases: "seoul guro-gu digital-ro guro-dong g valley biz plaza",
    },
    Entry {
        road: "부산광역시 해운대구 해운대해변로 264",
        jibun: "부산광역시 해운대구 우동 1411-1",
        dong: "우동",
        zip: "48099",
        building: None,
        aliases: "busan haeundae-gu haeundaehaebyeon-ro u-dong haeundae beach",
    },
    Entry {
        road: "부산광역시 동구 중앙대로 206",
        jibun: "부산광역시 동구 초량동 1187-1",
        dong: "초량동",
        zip: "48729",
        building: Some("부산역"),
        aliases: "busan dong-gu jungang-daero choryang-dong busan station",
    },
    Entry {
        road: "부산광역시 해운대구 센텀중앙로 79",
        jibun: "부산광역시 해운대구 우동 1505",
        dong: "우동",
        zip: "48058",
        building: Some("센텀사이언스파크"),
        aliases: "busan haeundae-gu centumjungang-ro u-dong centum science park",
    },
    Entry {
        road: "인천광역시 중구 공항로 272",
        jibun: "인천광역시 중구 운서동 2850",
        dong: "운서동",
        zip: "22382",
        building: Some("인천국제공항"),
        aliases: "incheon jung-gu gonghang-ro unseo-dong incheon international airport icn",
    },
    Entry {
        road: "경기도 성남시 분당구 판교역로 235",
        jibun: "경기도 성남시 분당구 삼평동 681",
        dong: "삼평동",
        zip: "13494",
        building: Some("에이치스퀘어"),
        aliases: "gyeonggi seongnam bundang-gu pangyoyeok-ro sampyeong-dong pangyo h square",
    },
    Entry {
        road: "경기도 성남시 분당구 판교역로 166",
        jibun: "경기도 성남시 분당구 백현동 532",
        dong: "백현동",
        zip: "13529",
        building: Some("카카오판교아지트"),
        aliases: "gyeonggi seongnam bundang-gu pangyoyeok-ro baekhyeon-dong pangyo kakao agit",
    },
    Entry {
        road: "대전광역시 서구 둔산로 100",
        jibun: "대전광역시 서구 둔산동 1420",
        dong: "둔산동",
        zip: "35242",
        building: Some("대전광역시청"),
        aliases: "daejeon seo-gu dunsan-ro dunsan-dong daejeon city hall",
    },
    Entry {
        road: "대구광역시 중구 공평로 88",
        jibun: "대구광역시 중구 동인동1가 2-1",
        dong: "동인동1가",
        zip: "41911",
        building: Some("대구광역시청"),
        aliases: "daegu jung-gu gongpyeong-ro dongin-dong daegu city hall",
    },
    Entry {
        road: "광주광역시 서구 내방로 111",
        jibun: "광주광역시 서구 치평동 1200",
        dong: "치평동",
        zip: "61945",
        building: Some("광주광역시청"),
        aliases: "gwangju seo-gu naebang-ro chipyeong-dong gwangju city hall",
    },
    Entry {
        road: "제주특별자치도 제주시 문연로 6",
        jibun: "제주특별자치도 제주시 연동 312-1",
        dong: "연동",
        zip: "63122",
        building: Some("제주특별자치도청"),
        aliases: "jeju jeju-si munyeon-ro yeon-dong jeju provincial office",
    },
];

/// Lowercase, without hyphens: `Teheran-ro` and `teheranro` find the same entry.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

static HAYSTACKS: LazyLock<Vec<String>> = LazyLock::new(|| {
    DATASET
        .iter()
        .map(|e| {
            fold(&format!(
                "{} {} {} {} {}",
                e.road,
                e.jibun,
                e.zip,
                e.building.unwrap_or_default(),
                e.aliases
            ))
        })
        .collect()
});

/// Every entry that contains each whitespace-separated word of `query` (case-insensitive,
/// hyphens ignored, romanized aliases included); none for a blank query.
#[must_use]
pub fn find(query: &str) -> Vec<&'static Entry> {
    let words: Vec<String> = query
        .split_whitespace()
        .map(fold)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    DATASET
        .iter()
        .zip(HAYSTACKS.iter())
        .filter(|(_, hay)| words.iter().all(|w| hay.contains(w.as_str())))
        .map(|(e, _)| e)
        .collect()
}

/// `서울특별시 강남구 ...` → `서울 강남구 ...`, as daum writes it.
fn abbreviate(address: &str) -> String {
    for (full, short) in PROVINCES {
        if let Some(rest) = address.strip_prefix(full) {
            return format!("{short}{rest}");
        }
    }
    address.to_owned()
}

/// The daum-like answer for `query`.
#[must_use]
pub fn daum_answer(query: &str) -> DaumResponse {
    let found = find(query);
    DaumResponse {
        meta: DaumMeta {
            total_count: found.len() as u64,
        },
        documents: found
            .into_iter()
            .take(PAGE_SIZE)
            .map(|e| DaumDocument {
                address_name: abbreviate(e.road),
                road_address: Some(DaumRoadAddress {
                    address_name: abbreviate(e.road),
                    zone_no: e.zip.to_owned(),
                    building_name: e.building.unwrap_or_default().to_owned(),
                }),
                address: Some(DaumJibunAddress {
                    address_name: abbreviate(e.jibun),
                }),
            })
            .collect(),
    }
}

/// The juso-like answer for `keyword`.
#[must_use]
pub fn juso_answer(keyword: &str) -> JusoResponse {
    let found = find(keyword);
    let total = found.len();
    let juso = found
        .into_iter()
        .take(PAGE_SIZE)
        .map(|e| match e.building {
            Some(b) => JusoItem {
                road_addr: format!("{} ({}, {b})", e.road, e.dong),
                jibun_addr: format!("{} {b}", e.jibun),
                zip_no: e.zip.to_owned(),
                bd_nm: b.to_owned(),
            },
            None => JusoItem {
                road_addr: format!("{} ({})", e.road, e.dong),
                jibun_addr: e.jibun.to_owned(),
                zip_no: e.zip.to_owned(),
                bd_nm: String::new(),
            },
        })
        .collect();
    JusoResponse {
        results: JusoResults {
            common: JusoCommon {
                error_code: "0".to_owned(),
                error_message: "정상".to_owned(),
                total_count: total.to_string(),
            },
            juso: Some(juso),
        },
    }
}

/// A juso-like error answer (sent with HTTP 200, as the real API does).
#[must_use]
pub fn juso_error(code: &str, message: &str) -> JusoResponse {
    JusoResponse {
        results: JusoResults {
            common: JusoCommon {
                error_code: code.to_owned(),
                error_message: message.to_owned(),
                total_count: "0".to_owned(),
            },
            juso: None,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The mock servers.

#[derive(Debug)]
struct Setting {
    mode: Mode,
    delay: Duration,
    since: Instant,
}

/// A mock provider's shared control state.
#[derive(Debug, Clone)]
struct Shared {
    provider: Provider,
    setting: Arc<Mutex<Setting>>,
}

enum Health {
    Up,
    Down,
}

impl Shared {
    fn get(&self) -> (Mode, Duration, Instant) {
        let s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        (s.mode, s.delay, s.since)
    }

    fn control(&self) -> Control {
        let (mode, delay, _) = self.get();
        Control {
            mode,
            delay_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
        }
    }

    fn set(&self, mode: Mode, delay: Option<Duration>) {
        let mut s = self.setting.lock().unwrap_or_else(PoisonError::into_inner);
        s.mode = mode;
        if let Some(d) = delay {
            s.delay = d;
        }
        s.since = Instant::now();
    }

    /// Applies the mode to one request: sleeps when slow, says whether to fail.
    async fn gate(&self) -> Health {
        let (mode, delay, since) = self.get();
        match mode {
            Mode::Up => Health::Up,
            Mode::Down => Health::Down,
            Mode::Slow => {
                tokio::time::sleep(delay).await;
                Health::Up
            }
            Mode::Flap => {
                let period = FLAP_PERIOD.as_millis();
                if (since.elapsed().as_millis() / period).is_multiple_of(2) {
                    Health::Down
                } else {
                    Health::Up
                }
            }
        }
    }
}

/// A running mock provider: an axum server on a loopback port. Dropping it stops the server.
#[derive(Debug)]
pub struct MockProvider {
    shared: Shared,
    addr: SocketAddr,
    url: String,
    stop: watch::Sender<()>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl MockProvider {
    /// Starts `provider`'s mock on `bind`, on a free port, in mode [`Mode::Up`].
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(provider: Provider, bind: IpAddr) -> io::Result<MockProvider> {
        let listener = TcpListener::bind(SocketAddr::new(bind, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Shared {
            provider,
            setting: Arc::new(Mutex::new(Setting {
                mode: Mode::Up,
                delay: DEFAULT_DELAY,
                since: Instant::now(),
            })),
        };
        let router = match provider {
            Provider::Daum => Router::new().route(DAUM_PATH, get(daum_search)),
            Provider::Juso => Router::new().route(JUSO_PATH, get(juso_search)),
        }
        .route(CONTROL_PATH, get(get_control).post(post_control))
        .with_state(shared.clone());
        let (stop, mut stopped) = watch::channel(());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // Resolves on a send and when the sender is dropped.
                    let _ = stopped.changed().await;
                })
                .await
        });
        Ok(MockProvider {
            shared,
            addr,
            url: crate::base_url(addr),
            stop,
            task: Some(task),
        })
    }

    /// Which provider this is.
    #[must_use]
    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current mode and delay (what `GET /_control` returns).
    #[must_use]
    pub fn control(&self) -> Control {
        self.shared.control()
    }

    /// Changes the mode (and the `slow` delay, when given), as `POST /_control` does.
    pub fn set(&self, mode: Mode, delay: Option<Duration>) {
        self.shared.set(mode, delay.map(|d| d.min(MAX_DELAY)));
    }

    /// Stops the server and waits (at most 2 s) for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(());
        if let Some(task) = self.task.take() {
            crate::join_bounded(task).await;
        }
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// A JSON error body with a status.
fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": message.into() });
    (status, axum::Json(body)).into_response()
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn daum_search(State(shared): State<Shared>, Query(params): Params) -> Response {
    if let Health::Down = shared.gate().await {
        let body = serde_json::json!({
            "errorType": "ServiceUnavailable",
            "message": "daum address search is temporarily unavailable",
        });
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    match params.get("query").map(|q| q.trim()) {
        Some(q) if !q.is_empty() => axum::Json(daum_answer(q)).into_response(),
        _ => {
            let body = serde_json::json!({
                "errorType": "MissingParameter",
                "message": "query parameter required",
            });
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
    }
}

async fn juso_search(State(shared): State<Shared>, Query(params): Params) -> Response {
    let answer = if let Health::Down = shared.gate().await {
        juso_error("E0001", "시스템 점검 중입니다 (system maintenance)")
    } else {
        match params.get("keyword").map(|k| k.trim()) {
            Some(k) if !k.is_empty() => juso_answer(k),
            _ => juso_error("E0005", "검색어가 입력되지 않았습니다 (keyword missing)"),
        }
    };
    axum::Json(answer).into_response()
}

async fn get_control(State(shared): State<Shared>) -> Response {
    axum::Json(shared.control()).into_response()
}

async fn post_control(State(shared): State<Shared>, body: Bytes) -> Response {
    let control: Control = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{e}; expected {{\"mode\":\"up\"|\"down\"|\"slow\"|\"flap\",\"delay_ms\":1500}}"
                ),
            );
        }
    };
    let delay = control.delay_ms.map(Duration::from_millis);
    if delay.is_some_and(|d| d > MAX_DELAY) {
        return json_error(
            StatusCode::BAD_REQUEST,
            format!("`delay_ms` is at most {}", MAX_DELAY.as_millis()),
        );
    }
    shared.set(control.mode, delay);
    tracing::info!(provider = %shared.provider, mode = %control.mode, "mock provider mode changed");
    axum::Json(shared.control()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn romanized_and_korean_queries_find_the_same_entries() {
        let korean = find("테헤란로");
        assert_eq!(korean.len(), 2);
        assert_eq!(find("teheran"), korean);
        assert_eq!(find("Teheran-ro"), korean);
        assert_eq!(find("TEHERANRO"), korean);
        assert_eq!(find("테헤란로 152").len(), 1);
        assert_eq!(find("gangnam 152")[0].zip, "06236");
        assert!(find("busan").len() >= 3);
        assert!(find("seoul").len() >= 10);
        assert!(find("   ").is_empty());
        assert!(find("atlantis").is_empty());
    }

    #[test]
    fn every_entry_has_a_known_province_and_a_five_digit_postcode() {
        assert!(DATASET.len() >= 20);
        for e in DATASET {
            assert!(
                PROVINCES
                    .iter()
                    .any(|(full, _)| e.road.starts_with(full) && e.jibun.starts_with(full)),
                "{e:?}"
            );
            assert!(
                e.zip.len() == 5 && e.zip.bytes().all(|b| b.is_ascii_digit()),
                "{e:?}"
            );
            assert!(e.jibun.contains(e.dong), "{e:?}");
        }
    }

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
