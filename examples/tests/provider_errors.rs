//! Which provider errors the breakers count, over real HTTP: the user's bad queries never open a
//! breaker (the service refuses them first, and a refusal only the provider knows counts as a
//! success), while the provider's own failures (429, 5xx, a redirect, an oversized answer, juso's
//! system error) do. Providers are the embedded mocks or a stub provider on loopback that answers
//! whatever the test sets.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use breaker_examples::providers::{Mode, Provider};
use breaker_examples::search::{self, DAUM_BREAKER, JUSO_BREAKER, MAX_ADDRESSES, Providers};
use breaker_examples::{Config, Running, start};
use breaker_runtime::State;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;
use common::{SERIAL, client, fresh};

/// The providers `running` uses, for calling the search chain without the service.
fn providers_of(running: &Running) -> Arc<Providers> {
    Arc::new(
        Providers::new(
            &running.provider_url(Provider::Daum),
            &running.provider_url(Provider::Juso),
        )
        .expect("the mocks' URLs"),
    )
}

/// The embedded mocks (or `daum_url`), without the per-client search limit: these tests search
/// as one client far faster than a person (tests/limits.rs tests the limit).
fn config(daum_url: Option<String>) -> Config {
    Config {
        daum_url,
        limits: common::unlimited(),
        ..Config::default()
    }
}

fn handle(name: &str) -> breaker_runtime::Handle {
    breaker_runtime::breaker(name).unwrap_or_else(|| panic!("breaker {name}"))
}

async fn search(running: &Running, http: &reqwest::Client, q: &str) -> (StatusCode, Value) {
    let response = http
        .get(format!("{}/api/search", running.url()))
        .query(&[("q", q)])
        .send()
        .await
        .expect("GET /api/search");
    let status = response.status();
    let bytes = response.bytes().await.expect("the body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{q:?}: a JSON body ({e}), got {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, body)
}

/// Failures, timeouts and slow calls each breaker has counted so far (the counters are
/// cumulative over the process; tests compare before and after).
fn failures() -> [u64; 2] {
    [DAUM_BREAKER, JUSO_BREAKER].map(|name| {
        let c = handle(name).counters();
        c.failures + c.timeouts + c.slow_calls
    })
}

/// The breakers `names` CLOSED, and no failure counted by either since `before`.
fn assert_untouched(names: &[&str], before: [u64; 2]) {
    for name in names {
        assert_eq!(handle(name).state(), State::Closed, "{name}");
    }
    assert_eq!(failures(), before, "failures counted (daum, juso)");
}

/// Every kind of query the road-name API refuses, `n` of them, varied by a small deterministic
/// generator.
fn garbage(n: usize) -> Vec<String> {
    let mut seed: u64 = 0x2019_1127;
    let mut next = move |m: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap_or(0) % m
    };
    let words = [
        "강남",
        "테헤란로",
        "gangnam",
        "seoul",
        "152",
        "역삼동",
        "판교역로",
    ];
    let symbols = ['%', '=', '<', '>', '[', ']'];
    let sql = [
        "OR", "select", "Insert", "DELETE", "update", "create", "DROP", "exec", "union", "fetch",
        "declare", "truncate",
    ];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let w = words[next(words.len())];
        let q = match i % 10 {
            // E0008: one character.
            0 => ["강", "a", "7", "서", "z"][next(5)].to_owned(),
            // E0010: over 40 Hangul syllables or 80 other characters.
            1 => "가".repeat(41 + next(30)),
            2 => "a".repeat(81 + next(40)),
            // E0013: a forbidden character anywhere.
            3 => {
                let c = symbols[next(symbols.len())];
                match next(3) {
                    0 => format!("{c}{w}"),
                    1 => format!("{w}{c}"),
                    _ => format!("{w} {c}{c} {w}"),
                }
            }
            // E0013: an SQL keyword as a word.
            4 => format!("{w} {} {w}", sql[next(sql.len())]),
            5 => "<script>alert(1)</script>".to_owned(),
            // E0011: a number of more than 10 digits.
            6 => format!("{w} {}", "9".repeat(11 + next(10))),
            // E0012 and E0009: no letters.
            7 => ["152-1", "#12", "1-1-1", "(3)", "12 !"][next(5)].to_owned(),
            8 => ["!!", "--", "...", "~~~", "?!"][next(5)].to_owned(),
            // Control and bidi characters.
            _ => [
                format!("{w}\u{0}"),
                format!("{w}\u{1b}[31m"),
                format!("{w}\u{202E}"),
                format!("\u{2066}{w}"),
                format!("{w}\u{7f}"),
            ][next(5)]
            .clone(),
        };
        out.push(q);
    }
    out
}

/// 500 queries the real API refuses, over HTTP: each gets a 400 or an empty result, never the
/// notice, and neither breaker counts a failure or opens. The first half with daum up, the
/// second with daum forced open, so that any query the service let through would reach juso
/// (which refuses more than daum); the next test sends them past the service's check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_garbage_queries_leave_both_breakers_closed() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(config(None)).await.expect("start");
    let http = client();
    let queries = garbage(500);
    let before = failures();
    for (i, q) in queries.iter().enumerate() {
        if i == 250 {
            // The second half would go to juso.
            assert_untouched(&[DAUM_BREAKER, JUSO_BREAKER], before);
            handle(DAUM_BREAKER).force_open().await.expect("force open");
        }
        let (status, body) = search(&running, &http, q).await;
        assert!(
            status == StatusCode::BAD_REQUEST
                || (status == StatusCode::OK && body["addresses"] == json!([])),
            "{q:?}: {status} {body}"
        );
        assert!(
            body.get("notice").is_none_or(Value::is_null),
            "{q:?} got the outage notice: {body}"
        );
    }
    assert_untouched(&[JUSO_BREAKER], before);
    handle(DAUM_BREAKER).reset().await.expect("reset");
    // The service still answers real queries from daum.
    let (status, body) = search(&running, &http, "테헤란로 152").await;
    assert_eq!(
        (status, body["provider"].clone()),
        (StatusCode::OK, json!("daum"))
    );
    running.shutdown().await;
}

/// The same 500 queries past the service's own check, straight into the search chain with daum
/// forced open: each reaches juso, which refuses most of them with its input codes (E0005,
/// E0008, E0009, E0010, E0011, E0012, E0013); none is counted as a failure, none ends at the
/// outage notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_past_the_service_check_is_refused_by_juso_and_not_counted() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(config(None)).await.expect("start");
    let providers = providers_of(&running);
    handle(DAUM_BREAKER).force_open().await.expect("force open");
    let before = failures();
    let juso_calls = handle(JUSO_BREAKER).counters().calls;
    let mut codes = std::collections::BTreeMap::<String, usize>::new();
    for q in garbage(500) {
        match search::search(&providers, &q).await {
            Err(refusal) => {
                assert_eq!(refusal.provider, "juso", "{q:?}: {refusal}");
                *codes.entry(refusal.code).or_default() += 1;
            }
            Ok(outcome) => assert_eq!(outcome.notice, None, "{q:?} got the notice"),
        }
    }
    assert_untouched(&[JUSO_BREAKER], before);
    assert_eq!(handle(JUSO_BREAKER).counters().calls, juso_calls + 500);
    for code in ["E0008", "E0009", "E0010", "E0011", "E0012", "E0013"] {
        assert!(
            codes.get(code).copied().unwrap_or(0) > 0,
            "no {code}: {codes:?}"
        );
    }
    running.shutdown().await;
}

/// A query only the provider refuses (juso's E0006, a province alone: the service passes it, as
/// daum searches it) is answered "check your query" and counts as a success, however often.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_only_the_provider_knows_is_not_a_failure() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(config(None)).await.expect("start");
    let http = client();
    handle(DAUM_BREAKER).force_open().await.expect("force open");
    let before = failures();
    let successes = handle(JUSO_BREAKER).counters().successes;
    for _ in 0..30 {
        let (status, body) = search(&running, &http, "서울").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("Check your query"), "{body}");
        assert!(error.contains("상세히"), "the provider's message: {body}");
    }
    assert_untouched(&[JUSO_BREAKER], before);
    assert_eq!(handle(JUSO_BREAKER).counters().successes, successes + 30);
    // The same search through daum (not forced) is answered by daum.
    handle(DAUM_BREAKER).reset().await.expect("reset");
    let (status, body) = search(&running, &http, "서울").await;
    assert_eq!(
        (status, body["provider"].clone()),
        (StatusCode::OK, json!("daum"))
    );
    running.shutdown().await;
}

/// Juso's system error (`-999`, the mock's `down`) is a failure: three open the breaker and users
/// get the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn juso_system_errors_are_failures() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(config(None)).await.expect("start");
    let http = client();
    handle(DAUM_BREAKER).force_open().await.expect("force open");
    running
        .mock(Provider::Juso)
        .expect("the embedded juso")
        .set(Mode::Down, None);
    for _ in 0..3 {
        let (status, body) = search(&running, &http, "테헤란로 152").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["notice"].is_string(), "{body}");
    }
    assert_eq!(handle(JUSO_BREAKER).state(), State::Open);
    running.shutdown().await;
}

/// What a stub provider answers.
#[derive(Clone)]
enum Reply {
    /// This status and JSON body.
    Json(u16, Value),
    /// A redirect to this URL.
    Redirect(String),
    /// A body of this many bytes, sent without a length (chunked).
    Huge(usize),
}

/// A daum-like provider on loopback that answers what the test sets, and counts its requests.
struct Stub {
    url: String,
    reply: Arc<Mutex<Reply>>,
    hits: Arc<AtomicUsize>,
    /// Requests that carried an `Authorization` header.
    authorised: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Stub {
    async fn start(reply: Reply) -> Stub {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let reply = Arc::new(Mutex::new(reply));
        let hits = Arc::new(AtomicUsize::new(0));
        let authorised = Arc::new(AtomicUsize::new(0));
        let (r, h, a) = (
            Arc::clone(&reply),
            Arc::clone(&hits),
            Arc::clone(&authorised),
        );
        let router = Router::new().fallback(move |headers: axum::http::HeaderMap| {
            let (r, h, a) = (Arc::clone(&r), Arc::clone(&h), Arc::clone(&a));
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                if headers.contains_key(axum::http::header::AUTHORIZATION) {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                let reply = r.lock().expect("the reply").clone();
                answer(reply)
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Stub {
            url,
            reply,
            hits,
            authorised,
            _task: task,
        }
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().expect("the reply") = reply;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Json(status, body) => (
            AxumStatus::from_u16(status).unwrap_or(AxumStatus::INTERNAL_SERVER_ERROR),
            axum::Json(body),
        )
            .into_response(),
        Reply::Redirect(to) => {
            (AxumStatus::FOUND, [(axum::http::header::LOCATION, to)], "").into_response()
        }
        Reply::Huge(bytes) => {
            let chunk = vec![b' '; 64 * 1024];
            let chunks = bytes.div_ceil(chunk.len());
            let stream = futures_util::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            axum::body::Body::from_stream(stream).into_response()
        }
    }
}

/// `n` daum documents.
fn documents(n: usize) -> Value {
    let docs: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "address_name": format!("서울 강남구 테헤란로 {i}"),
                "road_address": {"address_name": format!("서울 강남구 테헤란로 {i}"), "zone_no": "06236", "building_name": ""},
                "address": null,
            })
        })
        .collect();
    json!({"meta": {"total_count": n}, "documents": docs})
}

async fn with_stub_daum(reply: Reply) -> (Running, Stub) {
    let stub = Stub::start(reply).await;
    let running = start(config(Some(stub.url.clone()))).await.expect("start");
    (running, stub)
}

/// Daum's 400 (and 413, 414, 422) is the query's fault: answered 400 with daum's message, not
/// passed to juso, not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daum_refusing_the_query_is_not_a_failure() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let refusal = json!({"errorType": "InvalidArgument", "message": "query is not valid"});
    let (running, stub) = with_stub_daum(Reply::Json(400, refusal.clone())).await;
    let http = client();
    let before = failures();
    let juso_calls = handle(JUSO_BREAKER).counters().calls;
    for status in [400, 413, 414, 422] {
        stub.set(Reply::Json(status, refusal.clone()));
        for _ in 0..5 {
            let (code, body) = search(&running, &http, "테헤란로 152").await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{status}: {body}");
            assert!(
                body["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("query is not valid"),
                "{body}"
            );
        }
    }
    assert_untouched(&[DAUM_BREAKER, JUSO_BREAKER], before);
    assert_eq!(
        handle(JUSO_BREAKER).counters().calls,
        juso_calls,
        "juso was asked"
    );
    running.shutdown().await;
}

/// The provider's failures do count: 429, 401, 5xx, a redirect (not followed) and an answer over
/// the size cap each open daum's breaker after three, and juso answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_open_the_breaker_and_juso_answers() {
    let _serial = SERIAL.lock().await;
    let target = Stub::start(Reply::Json(200, documents(1))).await;
    let failures = [
        Reply::Json(429, json!({"errorType": "RequestThrottled"})),
        Reply::Json(401, json!({"errorType": "AccessDenied"})),
        Reply::Json(500, json!({})),
        Reply::Json(503, json!({})),
        Reply::Redirect(format!("{}/v2/local/search/address.json", target.url)),
        Reply::Huge(300 * 1024),
    ];
    for failure in failures {
        fresh().await;
        let (running, stub) = with_stub_daum(failure).await;
        let http = client();
        for i in 0..3 {
            let (status, body) = search(&running, &http, "테헤란로 152").await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["provider"], json!("juso"), "search {i}: {body}");
        }
        assert_eq!(handle(DAUM_BREAKER).state(), State::Open);
        assert_eq!(stub.hits(), 3);
        running.shutdown().await;
    }
    assert_eq!(target.hits(), 0, "a redirect was followed");
}

/// A provider that sends more addresses than asked for is cut to [`MAX_ADDRESSES`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_too_many_addresses_is_cut() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let (running, _stub) = with_stub_daum(Reply::Json(200, documents(400))).await;
    let (status, body) = search(&running, &client(), "테헤란로").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], json!("daum"));
    assert_eq!(
        body["addresses"].as_array().map(Vec::len),
        Some(MAX_ADDRESSES)
    );
    running.shutdown().await;
}

/// The console's provider controls with an external daum: the mocks' control token is not sent
/// to it (none was given for it); its 401 is a 502 naming the control token (not read as the
/// console's own 401); an oversized control answer is refused, not read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_providers_control_endpoint_gets_no_token_and_its_refusals_are_502() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let (running, stub) = with_stub_daum(Reply::Json(401, json!({"error": "who are you"}))).await;
    let http = client();
    let admin = |path: &str| format!("{}/api/admin/providers{path}", running.url());
    let response = http
        .post(admin("/daum"))
        .bearer_auth(running.admin_token())
        .json(&json!({"mode": "down"}))
        .send()
        .await
        .expect("POST /api/admin/providers/daum");
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.expect("a JSON error");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("control token"),
        "{body}"
    );
    assert!(stub.hits() >= 1);
    assert_eq!(
        stub.authorised.load(Ordering::SeqCst),
        0,
        "a token was sent"
    );

    stub.set(Reply::Huge(100 * 1024));
    let list: Value = http
        .get(admin(""))
        .bearer_auth(running.admin_token())
        .send()
        .await
        .expect("GET /api/admin/providers")
        .json()
        .await
        .expect("the providers");
    let daum = &list[0];
    assert_eq!(daum["name"], json!("daum"), "{list}");
    assert!(
        daum["error"].as_str().unwrap_or_default().contains("16384"),
        "{list}"
    );
    // The embedded juso mock got its token: its mode reads back.
    assert_eq!(list[1]["mode"], json!("up"), "{list}");
    running.shutdown().await;
}

/// The search without breakers (what `service-bench` compares against) answers as the chain of
/// breakers does: daum, juso when daum is down, a refusal as a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_without_breakers_answers_as_the_chain_does() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(config(None)).await.expect("start");
    let providers = providers_of(&running);
    let with = search::search(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    let without = search::search_without_breakers(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    assert_eq!(with, without);
    assert_eq!(without.provider.as_deref(), Some("daum"));
    running
        .mock(Provider::Daum)
        .expect("the embedded daum")
        .set(Mode::Down, None);
    let without = search::search_without_breakers(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    assert_eq!(
        (
            without.provider.as_deref(),
            without.degraded,
            without.addresses.is_empty()
        ),
        (Some("juso"), true, false)
    );
    let refused = search::search_without_breakers(&providers, "서울").await;
    // Daum is down, so juso is asked, and refuses a province alone.
    assert_eq!(refused.map_err(|r| r.code), Err("E0006".to_owned()));
    // The same with each call under a timeout (`service-bench --direct-with-timeouts`), and a
    // slow daum is abandoned after 800 ms for juso.
    let timed = search::search_with_timeouts_only(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    assert_eq!(timed.provider.as_deref(), Some("juso"));
    running
        .mock(Provider::Daum)
        .expect("the embedded daum")
        .set(Mode::Slow, Some(Duration::from_secs(3)));
    let started = std::time::Instant::now();
    let timed = search::search_with_timeouts_only(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    assert_eq!(timed.provider.as_deref(), Some("juso"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    running
        .mock(Provider::Daum)
        .expect("the embedded daum")
        .set(Mode::Up, None);
    let timed = search::search_with_timeouts_only(&providers, "테헤란로 152")
        .await
        .expect("an answer");
    assert_eq!(timed, with);
    running.shutdown().await;
}
