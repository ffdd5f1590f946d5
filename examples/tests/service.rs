//! The address-search service over real HTTP: the service and its mock providers run in-process on
//! free loopback ports, and every request goes through a real socket.
//!
//! The breakers (`provider.daum`, `provider.juso`) are process-wide statics shared by every test
//! of this binary, so the tests that search or act on breakers take [`SERIAL`] and start from
//! clean breakers ([`fresh`]). Breaker timing is real time here (real servers are involved);
//! each test stays well under 10 s.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use breaker_examples::providers::{Mode, Provider};
use breaker_examples::search::{Address, DEFAULT_NOTICE, SearchOutcome};
use breaker_examples::{Config, Running, start};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{SERIAL, client, fresh, read};

const TOKEN: &str = "service-test-token";

struct Fixture {
    running: Running,
    http: reqwest::Client,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

async fn fixture() -> Fixture {
    let serial = SERIAL.lock().await;
    fresh().await;
    let running = start(Config {
        admin_token: Some(TOKEN.to_owned()),
        // These tests act as one client far faster than a person (200 searches at once, a dozen
        // admin actions in a few milliseconds); the per-client limits have their own tests in
        // tests/limits.rs.
        limits: common::unlimited(),
        ..Config::default()
    })
    .await
    .expect("starting the service");
    Fixture {
        running,
        http: client(),
        _serial: serial,
    }
}

impl Fixture {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn search_raw(&self, q: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url("/api/search"))
            .query(&[("q", q)])
            .send()
            .await
            .expect("GET /api/search");
        read(response).await
    }

    /// A search that must succeed with HTTP 200.
    async fn search(&self, q: &str) -> SearchOutcome {
        let (status, body) = self.search_raw(q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        serde_json::from_value(body).expect("a search outcome")
    }

    async fn admin(&self, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = match body {
            Some(b) => self.http.post(self.url(path)).json(&b),
            None if path.contains("/breakers/") || path.contains("/providers/") => {
                self.http.post(self.url(path))
            }
            None => self.http.get(self.url(path)),
        };
        let response = request
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("admin request");
        read(response).await
    }

    /// `POST /api/admin/breakers/{name}/{action}`, which must succeed.
    async fn act(&self, name: &str, action: &str, body: Option<Value>) -> Value {
        let (status, reply) = self
            .admin(&format!("/api/admin/breakers/{name}/{action}"), body)
            .await;
        assert_eq!(status, StatusCode::OK, "{name} {action}: {reply}");
        reply
    }

    /// One breaker from `GET /api/admin/breakers`.
    async fn breaker(&self, name: &str) -> Value {
        let (status, list) = self.admin("/api/admin/breakers", None).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list.as_array()
            .and_then(|l| l.iter().find(|b| b["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {list}"))
    }

    /// Sets a mock provider's mode through its own control endpoint.
    async fn provider(&self, provider: Provider, mode: Mode, delay_ms: Option<u64>) {
        let mut body = json!({ "mode": mode });
        if let Some(d) = delay_ms {
            body["delay_ms"] = json!(d);
        }
        let response = self
            .http
            .post(self.running.control_url(provider))
            .bearer_auth(self.running.control_token())
            .json(&body)
            .send()
            .await
            .expect("POST /_control");
        let (status, reply) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["mode"], json!(mode));
    }
}

fn counter(b: &Value, name: &str) -> u64 {
    b["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name} in {b}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_returns_normalised_addresses_from_daum() {
    let f = fixture().await;
    let before = f.breaker("provider.daum").await;
    let found = f.search("테헤란로 152").await;
    assert_eq!(found.provider.as_deref(), Some("daum"));
    assert!(!found.degraded);
    assert_eq!(found.notice, None);
    assert_eq!(
        found.addresses,
        [Address {
            road: "서울특별시 강남구 테헤란로 152".into(),
            jibun: "서울특별시 강남구 역삼동 737".into(),
            zip: "06236".into(),
            building: Some("강남파이낸스센터".into()),
        }]
    );
    // Romanized aliases, case and hyphens do not matter.
    assert_eq!(f.search("Teheran-ro").await.addresses.len(), 2);
    // Nothing found is still daum's answer, not a failure.
    let none = f.search("atlantis").await;
    assert_eq!(
        (none.provider.as_deref(), none.degraded),
        (Some("daum"), false)
    );
    assert!(none.addresses.is_empty());
    let daum = f.breaker("provider.daum").await;
    assert_eq!(
        counter(&daum, "successes") - counter(&before, "successes"),
        3,
        "{daum}"
    );
    assert_eq!(
        counter(&daum, "failures"),
        counter(&before, "failures"),
        "{daum}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_get_400_with_a_message() {
    let f = fixture().await;
    for q in ["", "   "] {
        let (status, body) = f.search_raw(q).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q:?}");
        assert!(
            body["error"].as_str().unwrap().contains("Type part"),
            "{body}"
        );
    }
    // Juso's limit: 40 Hangul syllables (80 units).
    let (status, body) = f.search_raw(&"강".repeat(41)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("at most 40 Hangul"),
        "{body}"
    );
    let (status, _) = f.search_raw(&"강".repeat(40)).await;
    assert_eq!(status, StatusCode::OK);
    // No `q` at all.
    let response = f.http.get(f.url("/api/search")).send().await.unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daum_down_opens_its_breaker_and_juso_serves_without_a_5xx() {
    let f = fixture().await;
    let before = f.breaker("provider.daum").await;
    f.provider(Provider::Daum, Mode::Down, None).await;
    for q in ["gangnam", "busan", "seoul"] {
        let found = f.search(q).await;
        assert_eq!(found.provider.as_deref(), Some("juso"), "{q}");
        assert!(found.degraded && found.notice.is_none(), "{q}: {found:?}");
        assert!(!found.addresses.is_empty(), "{q}");
    }
    let daum = f.breaker("provider.daum").await;
    assert_eq!(daum["state"], "OPEN", "{daum}");
    assert_eq!(counter(&daum, "failures") - counter(&before, "failures"), 3);
    assert!(daum["retry_after_ms"].as_u64().unwrap() <= 5000, "{daum}");
    // While OPEN, daum is not called at all: rejected, juso answers.
    let found = f.search("teheran").await;
    assert_eq!(found.provider.as_deref(), Some("juso"));
    let after = f.breaker("provider.daum").await;
    assert_eq!(
        counter(&after, "rejections") - counter(&daum, "rejections"),
        1
    );
    assert_eq!(counter(&after, "failures"), counter(&daum, "failures"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daum_slow_times_out_after_800ms_and_juso_serves() {
    let f = fixture().await;
    let before = f.breaker("provider.daum").await;
    f.provider(Provider::Daum, Mode::Slow, Some(1500)).await;
    for q in ["pangyo", "jeju", "incheon"] {
        let began = Instant::now();
        let found = f.search(q).await;
        let took = began.elapsed();
        assert_eq!(found.provider.as_deref(), Some("juso"), "{q}");
        assert!(found.degraded);
        assert!(
            took >= Duration::from_millis(790) && took < Duration::from_millis(1500),
            "{q}: the 800 ms timeout, not the provider's 1500 ms, decides: {took:?}"
        );
    }
    let daum = f.breaker("provider.daum").await;
    assert_eq!(counter(&daum, "timeouts") - counter(&before, "timeouts"), 3);
    assert_eq!(daum["state"], "OPEN", "{daum}");
    // Open: no more waiting for daum.
    let began = Instant::now();
    assert_eq!(f.search("daegu").await.provider.as_deref(), Some("juso"));
    assert!(
        began.elapsed() < Duration::from_millis(500),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_down_answers_200_with_the_notice() {
    let f = fixture().await;
    f.provider(Provider::Daum, Mode::Down, None).await;
    f.provider(Provider::Juso, Mode::Down, None).await;
    let found = f.search("gangnam").await;
    assert_eq!(found.provider, None);
    assert!(found.degraded);
    assert!(found.addresses.is_empty());
    assert_eq!(found.notice.as_deref(), Some(DEFAULT_NOTICE));

    let text = "주소 검색 점검 중입니다. 직접 입력해 주세요 / Search is under maintenance";
    let reply = f
        .act(
            "provider.juso",
            "notice",
            Some(json!({ "text": text, "for": "1h" })),
        )
        .await;
    assert_eq!(reply["breaker"]["notice"], text);
    for q in ["gangnam", "busan", "seoul", "jeju"] {
        let found = f.search(q).await;
        assert_eq!(found.notice.as_deref(), Some(text), "{q}");
        assert_eq!(found.provider, None);
    }
    let juso = f.breaker("provider.juso").await;
    assert_eq!(
        juso["state"], "OPEN",
        "juso's own breaker opened too: {juso}"
    );

    f.act("provider.juso", "notice", Some(json!({ "text": null })))
        .await;
    assert_eq!(
        f.search("gangnam").await.notice.as_deref(),
        Some(DEFAULT_NOTICE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_missing_and_wrong_tokens() {
    let f = fixture().await;
    let list = f.url("/api/admin/breakers");
    let open = f.url("/api/admin/breakers/provider.daum/open");
    let shadow = f.url("/api/admin/breakers/provider.daum/shadow");
    let attempts = [
        f.http.get(&list),
        f.http.get(&list).bearer_auth("wrong"),
        f.http.get(&list).bearer_auth(format!("{TOKEN}x")),
        f.http.get(&list).bearer_auth(&TOKEN[..TOKEN.len() - 1]),
        f.http.get(&list).basic_auth("admin", Some(TOKEN)),
        f.http.get(&list).header("Authorization", TOKEN),
        f.http.post(&open),
        f.http.post(&open).bearer_auth("wrong"),
        f.http.post(&shadow).json(&json!({"shadow": true})),
        f.http
            .post(&shadow)
            .bearer_auth("wrong")
            .json(&json!({"shadow": true})),
        f.http.get(f.url("/api/admin/providers")),
        f.http
            .post(f.url("/api/admin/providers/daum"))
            .json(&json!({"mode": "down"})),
    ];
    for request in attempts {
        let response = request.send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body) = read(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    }
    // Nothing happened.
    let daum = f.breaker("provider.daum").await;
    assert_eq!(
        (daum["state"].clone(), daum["forced"].clone()),
        (json!("CLOSED"), Value::Null)
    );
    assert_eq!(
        (daum["shadow"].clone(), daum["shadow_override"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(
        f.running.mock(Provider::Daum).unwrap().control().mode,
        Mode::Up
    );

    let (status, list) = f.admin("/api/admin/breakers", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["provider.daum", "provider.juso"]);
    assert_eq!(list[0]["fallback"], "juso");
    assert_eq!(list[1]["fallback"], "outage_notice");
    // daum's bulkhead (`max_concurrent = 64`), idle; juso has none: `null`, not left out.
    assert_eq!(
        list[0]["bulkhead"],
        json!({"in_flight": 0, "max_concurrent": 64})
    );
    assert_eq!(list[1].get("bulkhead"), Some(&Value::Null), "{}", list[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_admin_action_is_reflected_in_the_breaker_list() {
    let f = fixture().await;
    let daum = "provider.daum";

    let reply = f.act(daum, "open", None).await;
    assert!(
        reply["message"].as_str().unwrap().contains("forced OPEN"),
        "{reply}"
    );
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["state"].clone(), b["forced"].clone()),
        (json!("OPEN"), json!("open"))
    );
    let found = f.search("gangnam").await;
    assert_eq!(
        found.provider.as_deref(),
        Some("juso"),
        "forced open: the fallback serves"
    );

    f.act(daum, "close", None).await;
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["state"].clone(), b["forced"].clone()),
        (json!("CLOSED"), json!("closed"))
    );
    assert_eq!(f.search("gangnam").await.provider.as_deref(), Some("daum"));

    f.act(daum, "reset", None).await;
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["state"].clone(), b["forced"].clone()),
        (json!("CLOSED"), Value::Null)
    );

    // Swap without a body toggles; with one, sets.
    f.act(daum, "swap", None).await;
    assert_eq!(f.breaker(daum).await["swapped"], true);
    let found = f.search("busan").await;
    assert_eq!(
        found.provider.as_deref(),
        Some("juso"),
        "swapped: juso first"
    );
    assert!(found.degraded);
    f.act(daum, "swap", Some(json!({ "swapped": true }))).await;
    assert_eq!(f.breaker(daum).await["swapped"], true);
    f.act(daum, "swap", None).await;
    assert_eq!(f.breaker(daum).await["swapped"], false);
    assert_eq!(f.search("busan").await.provider.as_deref(), Some("daum"));

    let reply = f
        .act(
            daum,
            "inject",
            Some(json!({ "fault": "error:0.5", "for": "1m" })),
        )
        .await;
    assert_eq!(reply["breaker"]["fault"], "error:0.5");
    let b = f.breaker(daum).await;
    assert_eq!(b["fault"], "error:0.5");
    let left = b["fault_ms_left"].as_u64().unwrap();
    assert!(left > 50_000 && left <= 60_000, "{b}");
    f.act(daum, "inject", Some(json!({ "fault": "open" })))
        .await;
    assert_eq!(f.breaker(daum).await["fault"], "open");
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("juso"));
    f.act(daum, "inject", Some(json!({ "fault": null }))).await;
    assert_eq!(f.breaker(daum).await["fault"], Value::Null);
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("daum"));

    f.act(daum, "notice", Some(json!({ "text": "daum 점검" })))
        .await;
    assert_eq!(f.breaker(daum).await["notice"], "daum 점검");
    f.act(daum, "notice", Some(json!({ "text": null }))).await;
    assert_eq!(f.breaker(daum).await["notice"], Value::Null);

    // The provider panel's API.
    let (status, reply) = f
        .admin(
            "/api/admin/providers/juso",
            Some(json!({ "mode": "slow", "delay_ms": 900 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["mode"], "slow");
    let (status, list) = f.admin("/api/admin/providers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[1]["name"], "juso");
    assert_eq!(
        (list[1]["mode"].clone(), list[1]["delay_ms"].clone()),
        (json!("slow"), json!(900))
    );
    assert_eq!(list[1]["url"], f.running.provider_url(Provider::Juso));
    assert_eq!(list[0]["mode"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_admin_requests_are_refused_with_the_reason() {
    let f = fixture().await;
    let cases: [(&str, Option<Value>, StatusCode, &str); 21] = [
        (
            "breakers/provider.daum/inject",
            Some(json!({"fault": "error:2"})),
            StatusCode::BAD_REQUEST,
            "at most 1",
        ),
        (
            "breakers/provider.daum/inject",
            Some(json!({"fault": "explode"})),
            StatusCode::BAD_REQUEST,
            "is not a fault",
        ),
        (
            "breakers/provider.daum/inject",
            Some(json!({"fault": "error", "for": "10"})),
            StatusCode::BAD_REQUEST,
            "no unit",
        ),
        (
            "breakers/provider.daum/inject",
            Some(json!({"for": "10m"})),
            StatusCode::BAD_REQUEST,
            "missing `fault`",
        ),
        (
            "breakers/provider.daum/inject",
            None,
            StatusCode::BAD_REQUEST,
            "expected a JSON body",
        ),
        (
            "breakers/provider.daum/inject",
            Some(json!({"fault": "error", "forr": "1m"})),
            StatusCode::BAD_REQUEST,
            "unknown field `forr`",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": "  "})),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": 5})),
            StatusCode::BAD_REQUEST,
            "string or null",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": "점검 \u{1b}[31m중"})),
            StatusCode::BAD_REQUEST,
            "U+001B",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": "점검 \u{202E}중"})),
            StatusCode::BAD_REQUEST,
            "U+202E",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": "첫 줄\n둘째 줄"})),
            StatusCode::BAD_REQUEST,
            "U+000A",
        ),
        (
            "breakers/provider.juso/notice",
            Some(json!({"text": "가".repeat(501)})),
            StatusCode::BAD_REQUEST,
            "at most 500 characters",
        ),
        (
            "breakers/provider.daum/swap",
            Some(json!({"swapped": "yes"})),
            StatusCode::BAD_REQUEST,
            "true or false",
        ),
        (
            "breakers/provider.daum/shadow",
            Some(json!({"shadow": "on"})),
            StatusCode::BAD_REQUEST,
            "`shadow` must be true, false or null",
        ),
        (
            "breakers/provider.daum/shadow",
            Some(json!({})),
            StatusCode::BAD_REQUEST,
            "missing `shadow`",
        ),
        (
            "breakers/provider.daum/shadow",
            None,
            StatusCode::BAD_REQUEST,
            "expected a JSON body",
        ),
        (
            "breakers/provider.daum/shadow",
            Some(json!({"shadow": true, "for": "1h"})),
            StatusCode::BAD_REQUEST,
            "unknown field `for`",
        ),
        (
            "breakers/provider.kakao/open",
            None,
            StatusCode::NOT_FOUND,
            "no breaker named `provider.kakao`",
        ),
        (
            "breakers/provider.daum/explode",
            None,
            StatusCode::NOT_FOUND,
            "unknown action `explode`",
        ),
        (
            "providers/kakao",
            Some(json!({"mode": "down"})),
            StatusCode::NOT_FOUND,
            "no provider named `kakao`",
        ),
        (
            "providers/daum",
            Some(json!({"mode": "sideways"})),
            StatusCode::BAD_REQUEST,
            "unknown variant `sideways`",
        ),
    ];
    for (path, body, want, needle) in cases {
        let (status, reply) = f.admin(&format!("/api/admin/{path}"), body).await;
        assert_eq!(status, want, "{path}: {reply}");
        let message = reply["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(needle),
            "{path}: {message:?} should say {needle:?}"
        );
    }
    // A malformed JSON body.
    let response = f
        .http
        .post(f.url("/api/admin/breakers/provider.daum/inject"))
        .bearer_auth(TOKEN)
        .body("{\"fault\":")
        .send()
        .await
        .unwrap();
    let (status, reply) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        reply["error"].as_str().unwrap().contains("malformed JSON"),
        "{reply}"
    );
    // Nothing changed.
    let daum = f.breaker("provider.daum").await;
    assert_eq!(
        (daum["fault"].clone(), daum["swapped"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(
        (daum["shadow"].clone(), daum["shadow_override"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(f.breaker("provider.juso").await["notice"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_action_lets_every_call_run_and_shows_the_mode() {
    let f = fixture().await;
    let daum = "provider.daum";
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["shadow"].clone(), b["shadow_override"].clone()),
        (json!(false), Value::Null),
        "declared enforcing"
    );
    // An injected `open` rejects while enforcing: juso answers.
    f.act(daum, "inject", Some(json!({ "fault": "open" })))
        .await;
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("juso"));

    let reply = f.act(daum, "shadow", Some(json!({ "shadow": true }))).await;
    assert_eq!(
        reply["message"],
        "provider.daum in shadow mode: every call runs, none is rejected or sent to its fallback"
    );
    assert_eq!(
        (
            reply["breaker"]["shadow"].clone(),
            reply["breaker"]["shadow_override"].clone()
        ),
        (json!(true), json!(true))
    );
    let before = f.breaker(daum).await;
    for q in ["seoul", "busan"] {
        let found = f.search(q).await;
        assert_eq!(
            (found.provider.as_deref(), found.degraded),
            (Some("daum"), false),
            "shadow: daum is called and answers ({q})"
        );
    }
    let after = f.breaker(daum).await;
    assert_eq!(
        counter(&after, "shadow_rejections"),
        counter(&before, "shadow_rejections") + 2,
        "{after}"
    );
    for c in ["rejections", "fallbacks"] {
        assert_eq!(counter(&after, c), counter(&before, c), "{c}: {after}");
    }

    // An operator's force-open still rejects, and the reply says so.
    f.act(daum, "open", None).await;
    let reply = f.act(daum, "shadow", Some(json!({ "shadow": true }))).await;
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("it is forced OPEN, which still rejects in shadow mode"),
        "{reply}"
    );
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("juso"));
    f.act(daum, "reset", None).await;
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("daum"));

    // Enforce: the injected fault rejects again.
    let reply = f
        .act(daum, "shadow", Some(json!({ "shadow": false })))
        .await;
    assert_eq!(
        reply["message"],
        "provider.daum enforcing: it rejects and falls back"
    );
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["shadow"].clone(), b["shadow_override"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("juso"));
    // Back to the declared mode.
    f.act(daum, "shadow", Some(json!({ "shadow": true }))).await;
    let reply = f.act(daum, "shadow", Some(json!({ "shadow": null }))).await;
    assert_eq!(
        reply["message"],
        "provider.daum back to its declared mode: enforce"
    );
    let b = f.breaker(daum).await;
    assert_eq!(
        (b["shadow"].clone(), b["shadow_override"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(f.search("seoul").await.provider.as_deref(), Some("juso"));
    f.act(daum, "inject", Some(json!({ "fault": null }))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_searches_all_succeed_while_an_operator_acts() {
    let f = fixture().await;
    let queries = [
        "gangnam",
        "busan",
        "seoul",
        "teheran",
        "pangyo",
        "판교역로",
        "jeju",
        "incheon",
    ];
    let searches: Vec<_> = (0..200)
        .map(|i| {
            let http = f.http.clone();
            let url = format!("{}/api/search", f.running.url());
            let q = queries[i % queries.len()];
            tokio::spawn(async move {
                let began = Instant::now();
                let response = http.get(url).query(&[("q", q)]).send().await;
                let took = began.elapsed();
                let (status, body) = match response {
                    Ok(r) => read(r).await,
                    Err(e) => panic!("search {i} ({q}) failed: {e}"),
                };
                (status, body, took)
            })
        })
        .collect();

    // Meanwhile, the operator: every kind of action, and a provider outage.
    let operator = async {
        let mut actions = 0;
        let steps: [(&str, &str, Option<Value>); 12] = [
            ("provider.daum", "open", None),
            ("provider.daum", "reset", None),
            ("provider.daum", "swap", Some(json!({"swapped": true}))),
            (
                "provider.juso",
                "notice",
                Some(json!({"text": "점검 / maintenance"})),
            ),
            ("provider.daum", "swap", Some(json!({"swapped": false}))),
            (
                "provider.daum",
                "inject",
                Some(json!({"fault": "error:0.5", "for": "1m"})),
            ),
            ("provider.juso", "inject", Some(json!({"fault": "open"}))),
            ("provider.juso", "inject", Some(json!({"fault": null}))),
            ("provider.daum", "inject", Some(json!({"fault": null}))),
            ("provider.daum", "close", None),
            ("provider.juso", "notice", Some(json!({"text": null}))),
            ("provider.daum", "reset", None),
        ];
        for (i, (name, action, body)) in steps.into_iter().enumerate() {
            f.act(name, action, body).await;
            actions += 1;
            if i == 4 {
                let (status, _) = f
                    .admin("/api/admin/providers/daum", Some(json!({"mode": "down"})))
                    .await;
                assert_eq!(status, StatusCode::OK);
            }
            let (status, _) = f.admin("/api/admin/breakers", None).await;
            assert_eq!(status, StatusCode::OK);
        }
        let (status, _) = f
            .admin("/api/admin/providers/daum", Some(json!({"mode": "up"})))
            .await;
        assert_eq!(status, StatusCode::OK);
        actions
    };
    let actions = operator.await;
    assert_eq!(actions, 12);

    let mut slowest = Duration::ZERO;
    let mut by = std::collections::BTreeMap::<String, usize>::new();
    for s in searches {
        let (status, body, took) = s.await.expect("a search task");
        assert_eq!(status, StatusCode::OK, "{body}");
        let outcome: SearchOutcome = serde_json::from_value(body).expect("a search outcome");
        assert!(
            !outcome.addresses.is_empty() || outcome.notice.is_some(),
            "every search gets addresses or the notice: {outcome:?}"
        );
        *by.entry(outcome.provider.unwrap_or_else(|| "notice".into()))
            .or_default() += 1;
        slowest = slowest.max(took);
    }
    eprintln!("200 searches during 12 admin actions: {by:?}, slowest {slowest:?}");
    assert_eq!(by.values().sum::<usize>(), 200);
    assert!(
        slowest < Duration::from_secs(3),
        "slowest search took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_the_element_ids_the_browser_test_uses() {
    // No breaker is touched: no need for SERIAL.
    let running = start(Config::default()).await.unwrap();
    assert!(running.token_generated());
    assert_eq!(running.admin_token().len(), 32);
    let http = client();
    let get = |path: &str| http.get(format!("{}{path}", running.url())).send();

    let index = get("/").await.unwrap();
    assert!(
        index.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let index = index.text().await.unwrap();
    for id in [
        r#"id="q""#,
        r#"id="search""#,
        r#"id="results""#,
        r#"id="source""#,
        r#"id="banner""#,
        r#"id="error""#,
    ] {
        assert!(index.contains(id), "search page lacks {id}");
    }
    let admin = get("/admin").await.unwrap().text().await.unwrap();
    for needle in [
        r#"id="token""#,
        r#"id="breakers""#,
        r#"id="providers""#,
        r#"id="admin-status""#,
        r#"data-provider="daum""#,
        r#"data-provider="juso""#,
        r#"class="notice-text""#,
        r#"class="fault""#,
        r#"class="mode""#,
        r#"class="bulkhead""#,
    ] {
        assert!(admin.contains(needle), "admin page lacks {needle}");
    }
    for action in [
        "open",
        "close",
        "reset",
        "swap",
        "inject",
        "clear-fault",
        "notice",
        "clear-notice",
        "shadow-on",
        "enforce",
        "declared-mode",
    ] {
        assert!(
            admin.contains(&format!(r#"data-action="{action}""#)),
            "{action}"
        );
    }
    for mode in ["up", "down", "slow", "flap"] {
        assert!(admin.contains(&format!(r#"data-mode="{mode}""#)), "{mode}");
    }
    for (path, kind) in [
        ("/static/style.css", "text/css"),
        ("/static/search.js", "text/javascript"),
        ("/static/admin.js", "text/javascript"),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{path}"
        );
    }
    let (status, body) = read(get("/nowhere").await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_providers_speak_their_formats_and_obey_their_controls() {
    // Straight to the mocks: no breaker is touched.
    let running = start(Config::default()).await.unwrap();
    let http = client();
    let daum = running.provider_url(Provider::Daum);
    let juso = running.provider_url(Provider::Juso);
    let daum_search = || {
        http.get(format!("{daum}/v2/local/search/address.json"))
            .query(&[("query", "판교역로 235")])
            .send()
    };
    let juso_search = || {
        http.get(format!("{juso}/addrlink/addrLinkApi.do"))
            .query(&[
                ("keyword", "판교역로 235"),
                ("resultType", "json"),
                ("confmKey", "demo"),
            ])
            .send()
    };
    let (status, body) = read(daum_search().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["meta"]["total_count"], 1);
    assert_eq!(
        body["documents"][0]["road_address"]["address_name"],
        "경기 성남시 분당구 판교역로 235"
    );
    assert_eq!(body["documents"][0]["road_address"]["zone_no"], "13494");
    let (status, body) = read(juso_search().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"]["common"]["errorCode"], "0");
    assert_eq!(
        body["results"]["juso"][0]["roadAddr"],
        "경기도 성남시 분당구 판교역로 235 (삼평동, 에이치스퀘어)"
    );

    // Down: daum with 503, juso with HTTP 200 and errorCode -999 (its system error).
    running.mock(Provider::Daum).unwrap().set(Mode::Down, None);
    running.mock(Provider::Juso).unwrap().set(Mode::Down, None);
    let (status, body) = read(daum_search().await.unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = read(juso_search().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"]["common"]["errorCode"], "-999");
    assert_eq!(body["results"]["juso"], Value::Null);

    // The control endpoint, over HTTP, with its token.
    let control = running.control_url(Provider::Daum);
    let token = running.control_token();
    let (status, body) = read(http.get(&control).bearer_auth(token).send().await.unwrap()).await;
    assert_eq!(
        (status, body["mode"].clone()),
        (StatusCode::OK, json!("down"))
    );
    let bad = http
        .post(&control)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"mode":"sideways"}"#)
        .send()
        .await
        .unwrap();
    let (status, body) = read(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("sideways"),
        "{body}"
    );

    // Without the token, with a wrong one, or with a body that is not JSON (what a web page can
    // send to any address without asking): refused, and the mode is unchanged.
    let down = r#"{"mode":"up"}"#;
    let attempts = [
        (http.get(&control), StatusCode::UNAUTHORIZED),
        (
            http.post(&control)
                .header("content-type", "application/json")
                .body(down),
            StatusCode::UNAUTHORIZED,
        ),
        (
            http.post(&control)
                .bearer_auth("not-the-token")
                .header("content-type", "application/json")
                .body(down),
            StatusCode::UNAUTHORIZED,
        ),
        (
            http.post(&control)
                .bearer_auth(token)
                .header("content-type", "text/plain")
                .body(down),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            http.post(&control)
                .bearer_auth(token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("mode=up"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            http.post(&control).bearer_auth(token).body(down),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (request, expected) in attempts {
        let (status, body) = read(request.send().await.unwrap()).await;
        assert_eq!(status, expected, "{body}");
    }
    assert_eq!(
        running.mock(Provider::Daum).unwrap().control().mode,
        Mode::Down
    );

    // Slow: answers after the delay.
    let (status, _) = read(
        http.post(&control)
            .bearer_auth(token)
            .json(&json!({"mode": "slow", "delay_ms": 300}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let began = Instant::now();
    assert_eq!(daum_search().await.unwrap().status(), StatusCode::OK);
    assert!(began.elapsed() >= Duration::from_millis(300));

    // Flap: down for 2 s, then up.
    let (status, _) = read(
        http.post(&control)
            .bearer_auth(token)
            .json(&json!({"mode": "flap"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        daum_search().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(daum_search().await.unwrap().status(), StatusCode::OK);
    running.shutdown().await;
}

/// `address-search` with `args`, killed when dropped, and its stdout.
fn spawn(args: &[&str]) -> (common::Killed, std::process::ChildStdout) {
    let mut child = common::address_search()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting address-search");
    let stdout = child.stdout.take().expect("its stdout");
    (common::Killed(child), stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_url_serves_and_stops_on_sigterm() {
    let (mut proc, stdout) = spawn(&["--port", "0", "--admin-token", TOKEN]);
    let url = common::listening_url(stdout).await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let http = client();
    let (status, body) = read(
        http.get(format!("{url}/api/search?q=busan"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["provider"], "daum");
    let r = http
        .get(format!("{url}/api/admin/breakers"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let pid = proc.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let began = Instant::now();
    let status = loop {
        if let Some(status) = proc.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_providers_only_prints_both_urls() {
    let (_proc, stdout) = spawn(&["--mock-providers-only"]);
    let printed: Vec<String> = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.expect("a line"))
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(printed.len(), 2, "{printed:?}");
    let daum = printed[0]
        .strip_prefix("daum http://127.0.0.1:")
        .expect("the daum line");
    let juso = printed[1]
        .strip_prefix("juso http://127.0.0.1:")
        .expect("the juso line");
    assert!(
        daum.parse::<u16>().is_ok() && juso.parse::<u16>().is_ok(),
        "{printed:?}"
    );
    let http = client();
    let url = format!(
        "http://127.0.0.1:{juso}/addrlink/addrLinkApi.do?keyword=seoul&resultType=json&confmKey=demo"
    );
    let (status, body) = read(http.get(url).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"]["common"]["errorCode"], "0");
}
