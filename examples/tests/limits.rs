//! The service's timeouts and limits over real HTTP: slow clients are cut off, floods are throttled
//! per client, big bodies refused, slow requests answered, connections capped, wrong admin tokens
//! throttled and logged (without the token), short tokens refused, security headers on every
//! answer, and in-flight requests finishing at shutdown.
//!
//! Two clients on one machine are two peers here because each binds its socket to its own
//! loopback address (`127.0.0.2`, `127.0.0.3`, ...: Linux routes all of 127.0.0.0/8 to `lo`).
//! Tests that need daum to be called (a slow provider) take [`SERIAL`] and reset the
//! process-wide breakers first ([`fresh`]); the others only look at statuses that do not depend
//! on the breakers. Real time throughout, each test a few seconds at most.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use breaker_examples::providers::{Mode, Provider};
use breaker_examples::{Config, Limits, RateLimit, Running, StartError, start};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

mod common;
use common::{SERIAL, fresh, read_all as read};

const TOKEN: &str = "limits-test-token-0123456789";

async fn start_with(limits: Limits) -> Running {
    logs();
    start(Config {
        admin_token: Some(TOKEN.to_owned()),
        limits,
        ..Config::default()
    })
    .await
    .expect("starting the service")
}

/// `127.0.0.<n>`.
fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// An HTTP client whose connections come from `127.0.0.<n>`.
fn client(n: u8) -> reqwest::Client {
    common::client_from(Some(loopback(n)), Duration::from_secs(5))
}

async fn search(http: &reqwest::Client, running: &Running, q: &str) -> reqwest::Response {
    http.get(format!("{}/api/search", running.url()))
        .query(&[("q", q)])
        .send()
        .await
        .expect("GET /api/search")
}

/// The headers every answer carries.
fn assert_security_headers(what: &str, headers: &HeaderMap) {
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name} in {headers:?}"
        );
    }
}

/// `Retry-After` in whole seconds.
fn retry_after(headers: &HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds in {headers:?}"))
}

/// Everything logged in this test binary (installed once, for every test).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init();
        buffer
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged() -> String {
    let logs = logs();
    let bytes = logs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Sends `request` on a raw connection from `127.0.0.1` and reads the answer's status line and
/// headers (until a blank line, EOF or 3 s).
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer (413) and close before the whole request is written.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(3);
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

// (a) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_headers_a_byte_a_second_is_cut_off_while_others_are_served() {
    let running = start_with(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let addr = running.addr();
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let began = Instant::now();
        let request = b"GET /healthz HTTP/1.1\r\nHost: slowloris\r\nX-Padding: aaaaaaaaaa\r\n\r\n";
        let mut buf = [0u8; 1024];
        for byte in request {
            if stream.write_all(&[*byte]).await.is_err() {
                return (began.elapsed(), "write refused".to_owned());
            }
            // A byte a second; meanwhile, watch for the server closing (or answering).
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                Err(_) => {}
                Ok(Ok(0)) => return (began.elapsed(), "closed".to_owned()),
                Ok(Err(e)) => return (began.elapsed(), format!("closed: {e}")),
                Ok(Ok(n)) => {
                    return (
                        began.elapsed(),
                        String::from_utf8_lossy(&buf[..n]).into_owned(),
                    );
                }
            }
            if began.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        (began.elapsed(), "still connected".to_owned())
    });

    let http = client(3);
    let mut served = 0;
    let mut slowest = Duration::ZERO;
    while !slow.is_finished() && served < 100 {
        let began = Instant::now();
        let (status, _, body) = read(search(&http, &running, "gangnam").await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        slowest = slowest.max(began.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (after, how) = slow.await.expect("the slow client");
    eprintln!(
        "slow client cut off after {after:?} ({how}); {served} searches served meanwhile, slowest {slowest:?}"
    );
    assert!(
        how.starts_with("closed")
            || how.starts_with("write refused")
            || how.starts_with("HTTP/1.1 408"),
        "the slow client is cut off, got {how:?} after {after:?}"
    );
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "cut off after the 1 s header-read timeout, got {after:?}"
    );
    assert!(served >= 5, "{served} searches served meanwhile");
    assert!(
        slowest < Duration::from_secs(1),
        "slowest search {slowest:?}"
    );
}

// (b) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_client_gets_429_while_another_clients_searches_go_through() {
    let running = start_with(Limits {
        search_rate: Some(RateLimit::per_second(5).with_burst(10)),
        ..Limits::default()
    })
    .await;
    let flooder = client(2);
    let other = client(3);
    let mut ok = 0;
    let mut limited = Vec::new();
    let began = Instant::now();
    for _ in 0..40 {
        let response = search(&flooder, &running, "busan").await;
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited.push(read(response).await),
            s => panic!("a search gets 200 or 429, got {s}"),
        }
    }
    let took = began.elapsed();
    eprintln!(
        "flood of 40 in {took:?}: {ok} answered, {} got 429",
        limited.len()
    );
    // The burst, plus one search for every 200 ms the flood took (5/s), plus one for rounding.
    let refills = usize::try_from(took.as_millis() / 200).unwrap_or(usize::MAX);
    assert!(
        ok >= 10 && ok <= 11 + refills,
        "the burst of 10 (+ {refills} refills), got {ok}"
    );
    assert!(!limited.is_empty() && ok + limited.len() == 40);
    let (_, headers, body) = &limited[0];
    assert!((1..=2).contains(&retry_after(headers)), "{headers:?}");
    assert!(
        body["error"].as_str().unwrap().contains("too many"),
        "{body}"
    );
    assert_security_headers("429", headers);

    // The flooder is still over its rate; the other client is not.
    assert_eq!(
        search(&flooder, &running, "busan").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    for q in ["gangnam", "seoul", "jeju", "busan", "teheran"] {
        let (status, _, body) = read(search(&other, &running, q).await).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_requests_are_rate_limited_per_client_whatever_the_token() {
    let running = start_with(Limits {
        admin_rate: Some(RateLimit::per_second(2).with_burst(5)),
        ..Limits::default()
    })
    .await;
    let url = format!("{}/api/admin/breakers", running.url());
    let poller = client(6);
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = poller.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(&statuses[..5], [200; 5], "{statuses:?}");
    assert!(statuses[5..].contains(&429), "{statuses:?}");
    let other = client(7);
    let r = other.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

// (c) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_gets_413_and_has_no_effect() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(Limits::default()).await;
    let http = client(8);
    let url = format!("{}/api/admin/breakers/provider.juso/notice", running.url());
    // A valid body a byte over 16 KiB: the notice would be set without the cap.
    let head = r#"{"text":"점검 중 / maintenance"}"#;
    let big = format!("{head}{}", " ".repeat(16 * 1024 + 1 - head.len()));
    assert_eq!(big.len(), 16 * 1024 + 1);
    let response = http
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("16384"), "{body}");
    assert_security_headers("413", &headers);

    // The same without a length (chunked), over a raw connection.
    let chunked = format!(
        "POST /api/admin/breakers/provider.juso/notice HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let answer = raw(running.addr(), chunked.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Nothing happened; a body under the cap still works.
    let breakers = http
        .get(format!("{}/api/admin/breakers", running.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (_, _, list) = read(breakers).await;
    let juso = list
        .as_array()
        .and_then(|l| l.iter().find(|b| b["name"] == "provider.juso"))
        .unwrap();
    assert_eq!(juso["notice"], Value::Null, "{juso}");
    let small = http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"text": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
}

// (d) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_throttled_per_client_and_logged_without_the_token() {
    let running = start_with(Limits {
        failed_logins: Some(RateLimit::per_minute(3)),
        ..Limits::default()
    })
    .await;
    let url = format!("{}/api/admin/breakers", running.url());
    let guesser = client(4);
    let mut statuses = Vec::new();
    let mut throttled = None;
    for i in 0..5 {
        let r = guesser
            .get(&url)
            .bearer_auth(format!("guess-XYZZY-{i}-never-logged"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(read(r).await);
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let (_, headers, body) = throttled.unwrap();
    // One attempt comes back every 20 s (3 a minute).
    assert!((15..=21).contains(&retry_after(&headers)), "{headers:?}");
    assert!(body["error"].as_str().unwrap().contains("failed"), "{body}");
    assert_security_headers("429", &headers);
    // A request without a token is a failed attempt too.
    let missing = guesser.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another client has its own budget.
    let operator = client(5);
    let r = operator.get(&url).bearer_auth("typo").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = operator.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The right token still gets in from a client over its failure budget (see the README,
    // "Deploying the service": an operator who mistyped is not locked out of the console).
    let r = guesser.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let logs = logged();
    assert!(!logs.contains("XYZZY"), "a token was logged:\n{logs}");
    assert!(!logs.contains(TOKEN), "the token was logged:\n{logs}");
    let failures: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("admin authentication failed") && l.contains("127.0.0.4"))
        .collect();
    // At `warn`, the failures within the budget only (those past it go to `debug`: a tab left
    // with a wrong token must not flood the log).
    assert_eq!(failures.len(), 3, "{logs}");
    assert!(
        failures
            .iter()
            .all(|l| l.contains("WARN") && l.contains("wrong token")),
        "{failures:?}"
    );
    // A missing token is logged as such.
    let r = client(6).get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let logs = logged();
    assert!(
        logs.lines()
            .any(|l| l.contains("127.0.0.6") && l.contains("missing token")),
        "{logs}"
    );
}

// (e) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_outlives_the_request_timeout_gets_503() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    // Daum answers after 2 s; its breaker would give up after 800 ms: the 300 ms come first.
    running
        .mock(Provider::Daum)
        .unwrap()
        .set(Mode::Slow, Some(Duration::from_secs(2)));
    let http = client(9);
    let began = Instant::now();
    let (status, headers, body) = read(search(&http, &running, "gangnam").await).await;
    let took = began.elapsed();
    eprintln!("timed out after {took:?}: {body}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("300ms"), "{body}");
    // Well before the breaker's own 800 ms timeout would have let juso answer.
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert_security_headers("503", &headers);
    running.mock(Provider::Daum).unwrap().set(Mode::Up, None);
    fresh().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_limit_are_shed_with_503() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(Limits {
        max_concurrent_requests: 2,
        search_rate: None,
        ..Limits::default()
    })
    .await;
    running
        .mock(Provider::Daum)
        .unwrap()
        .set(Mode::Slow, Some(Duration::from_millis(1000)));
    let url = format!("{}/api/search?q=gangnam", running.url());
    // Every client is built before any search is sent (building one takes a while in a debug
    // build on a busy machine; a search sent late could find a place freed), and all six start
    // together.
    let clients: Vec<_> = (0..6).map(|i| client(10 + i)).collect();
    let start = Arc::new(tokio::sync::Barrier::new(6));
    let began = Instant::now();
    let searches: Vec<_> = clients
        .into_iter()
        .map(|http| {
            let (url, start) = (url.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                let r = http.get(url).send().await.expect("a search");
                let took = began.elapsed();
                let (status, headers, _) = read(r).await;
                (status, headers, took)
            })
        })
        .collect();
    let mut answered = Vec::new();
    let mut shed = Vec::new();
    for s in searches {
        let (status, headers, took) = s.await.unwrap();
        match status {
            StatusCode::OK => answered.push(took),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(retry_after(&headers), 1);
                shed.push(took);
            }
            s => panic!("200 or 503, got {s}"),
        }
    }
    eprintln!("6 concurrent searches, limit 2: answered after {answered:?}, shed after {shed:?}");
    assert!(
        (1..=2).contains(&answered.len()) && shed.len() >= 4,
        "{answered:?} {shed:?}"
    );
    // Shed at once, not queued behind the slow ones.
    assert!(
        shed.iter().max() < answered.iter().min(),
        "{answered:?} {shed:?}"
    );
    running.mock(Provider::Daum).unwrap().set(Mode::Up, None);
    fresh().await;
}

// (f) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let running = start_with(Limits::default()).await;
    let http = client(20);
    let base = running.url();
    for (path, status) in [
        ("/", 200),
        ("/admin", 200),
        ("/static/admin.js", 200),
        ("/api/search?q=gangnam", 200),
        ("/api/search", 400),
        ("/api/admin/breakers", 401),
        ("/nowhere", 404),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_security_headers(path, r.headers());
    }
    // An unknown method on a known path: 405.
    let r = http.delete(format!("{base}/admin")).send().await.unwrap();
    let (status, headers, body) = read(r).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_security_headers("405", &headers);
    // The layers' and axum's own error answers are JSON too, their headers kept.
    assert!(body["error"].is_string(), "{body}");
    assert!(headers.contains_key("allow"), "{headers:?}");
    let r = http
        .post(format!("{base}/api/admin/breakers/%FF/open"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, headers, body) = read(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_security_headers("400", &headers);
    assert!(body["error"].as_str().unwrap().contains("UTF-8"), "{body}");
}

// (g) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_wait_until_one_closes() {
    let running = start_with(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(4),
        ..Limits::default()
    })
    .await;
    let addr = running.addr();
    let url = format!("{}/healthz", running.url());
    // Two idle connections take both places.
    let first = TcpStream::connect(addr).await.unwrap();
    let _second = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let impatient = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let refused = impatient.get(&url).send().await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_timeout),
        "a third connection waits: {refused:?}"
    );
    // One closes: the waiting connection is served.
    drop(first);
    let began = Instant::now();
    let served = client(21).get(&url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    eprintln!("served {:?} after a place freed", began.elapsed());
    assert!(began.elapsed() < Duration::from_secs(2));
}

// (h) -----------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_short_token_is_refused_at_start() {
    // Counted after trimming: the padded one has 15 characters.
    for short in ["", "   ", "fifteen-chars!!", "  fifteen-chars!!  \n"] {
        let refused = start(Config {
            admin_token: Some(short.to_owned()),
            ..Config::default()
        })
        .await;
        let message = refused
            .map(|r| format!("started with {short:?}: {r:?}"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("at least 16 characters"), "{message}");
    }
    let refused = start(Config {
        admin_token: Some("fifteen-chars!!".to_owned()),
        ..Config::default()
    })
    .await;
    assert!(
        matches!(refused, Err(StartError::TokenTooShort { chars: 15 })),
        "{refused:?}"
    );
    let sixteen = start(Config {
        admin_token: Some("sixteen-chars!!!".to_owned()),
        ..Config::default()
    })
    .await
    .expect("16 characters are enough");
    sixteen.shutdown().await;
    // Characters, not bytes: 16 Hangul syllables are 48 bytes; 8 of them are too few.
    let hangul = start(Config {
        admin_token: Some("비밀".repeat(4)),
        ..Config::default()
    })
    .await;
    assert!(hangul.is_err());
}

/// Runs `address-search` with `args` (and `env`), expecting it to exit within 10 s; its status
/// and stderr.
fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut command = common::address_search();
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("starting address-search");
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            return (status, err);
        }
        if began.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("address-search {args:?} still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_binary_refuses_a_short_token_and_unusable_limits() {
    let (status, err) = run_binary(&["--port", "0", "--admin-token", "s3cret"], &[]);
    assert!(!status.success(), "{status}");
    assert!(err.contains("at least 16 characters"), "{err}");
    assert!(!err.contains("s3cret"), "the token is not echoed: {err}");
    let (status, err) = run_binary(&["--port", "0"], &[("BREAKER_ADMIN_TOKEN", "short")]);
    assert!(!status.success(), "{status}");
    assert!(err.contains("at least 16 characters"), "{err}");
    let (status, err) = run_binary(
        &[
            "--port",
            "0",
            "--admin-token",
            TOKEN,
            "--request-timeout",
            "0s",
        ],
        &[],
    );
    assert!(!status.success(), "{status}");
    assert!(err.contains("--request-timeout"), "{err}");
    let (status, err) = run_binary(
        &["--port", "0", "--search-rate-limit", "lots"],
        &[("BREAKER_ADMIN_TOKEN", TOKEN)],
    );
    assert!(!status.success(), "{status}");
    assert!(err.contains("COUNT/PERIOD"), "{err}");
    // The mock providers' control token: the same rule, embedded or alone.
    let (status, err) = run_binary(
        &["--port", "0", "--mock-control-token", "short"],
        &[("BREAKER_ADMIN_TOKEN", TOKEN)],
    );
    assert!(!status.success(), "{status}");
    assert!(err.contains("at least 16"), "{err}");
    let (status, err) = run_binary(
        &["--mock-providers-only"],
        &[("BREAKER_MOCK_TOKEN", "fifteen-chars!!")],
    );
    assert!(!status.success(), "{status}");
    assert!(err.contains("has 15 characters"), "{err}");
    assert!(
        !err.contains("fifteen-chars!!"),
        "the token is not echoed: {err}"
    );
    let _ = std::io::stderr().flush();
}

#[test]
fn the_binary_refuses_settings_the_breaker_runtime_rejects() {
    // A key prefix with a brace would move the Redis Cluster hash tag: the runtime rejects it,
    // and the service does not start with its breakers in memory, apart from the fleet. (The
    // prefix is checked before any connection, so no Redis is needed.)
    let (status, err) = run_binary(
        &["--port", "0"],
        &[
            ("BREAKER_ADMIN_TOKEN", TOKEN),
            ("BREAKER_REDIS_URL", "redis://127.0.0.1:1/"),
            ("BREAKER_KEY_PREFIX", "fleet{a}"),
        ],
    );
    assert!(!status.success(), "{status}");
    assert!(
        err.contains("rejected its settings") && err.contains("BREAKER_KEY_PREFIX"),
        "{err}"
    );
    let (status, err) = run_binary(
        &["--port", "0"],
        &[
            ("BREAKER_ADMIN_TOKEN", TOKEN),
            ("BREAKER_OVERRIDES", "provider.daum.threshold=lots"),
        ],
    );
    assert!(!status.success(), "{status}");
    assert!(err.contains("BREAKER_OVERRIDES"), "{err}");
}

// Graceful shutdown ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_when_shutdown_begins_completes() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(Limits::default()).await;
    // Daum answers after 600 ms, within its breaker's 800 ms.
    running
        .mock(Provider::Daum)
        .unwrap()
        .set(Mode::Slow, Some(Duration::from_millis(600)));
    let http = client(30);
    let url = format!("{}/api/search?q=gangnam", running.url());
    let addr = running.addr();
    let in_flight = tokio::spawn(async move { http.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    running.shutdown().await;
    let took = began.elapsed();
    let (status, _, body) = read(in_flight.await.unwrap().expect("an answer")).await;
    eprintln!("shutdown took {took:?} with a search in flight: {body}");
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["provider"], "daum", "{body}");
    assert!(took >= Duration::from_millis(300), "it waited: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
    fresh().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_at_most_2_s_for_a_connection_that_does_not_finish() {
    let running = start_with(Limits {
        header_read_timeout: Duration::from_secs(30),
        ..Limits::default()
    })
    .await;
    // A request whose body never comes.
    let mut stuck = TcpStream::connect(running.addr()).await.unwrap();
    stuck
        .write_all(
            format!(
                "POST /api/admin/breakers/provider.daum/notice HTTP/1.1\r\nHost: x\r\n\
                 Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let began = Instant::now();
    running.shutdown().await;
    let took = began.elapsed();
    eprintln!("shutdown with a stuck request took {took:?}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

/// The head of an authorised `notice` request whose body has `length` bytes.
fn notice_head(length: usize) -> String {
    format!(
        "POST /api/admin/breakers/provider.daum/notice HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_cut_off_after_the_body_read_timeout() {
    let running = start_with(Limits {
        body_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut stream = TcpStream::connect(running.addr()).await.unwrap();
    let began = Instant::now();
    // The head at once, then 2 bytes of a 40-byte body.
    stream
        .write_all(format!("{}{{\"", notice_head(40)).as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut answer)).await;
    let took = began.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    eprintln!("slow body answered after {took:?}: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_a_byte_at_a_time_is_cut_off_after_the_whole_read_timeout() {
    // Each byte comes well within the timeout of the one before: only a bound on the whole
    // read stops it.
    let running = start_with(Limits {
        body_read_timeout: Duration::from_millis(800),
        ..Limits::default()
    })
    .await;
    let mut stream = TcpStream::connect(running.addr()).await.unwrap();
    let began = Instant::now();
    stream.write_all(notice_head(400).as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..40 {
        if stream.write_all(b" ").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let took = began.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    eprintln!("trickled body answered after {took:?}: {answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        breaker_runtime::breaker("provider.daum").and_then(|h| h.notice()),
        None,
        "no effect"
    );
}

// Per-client connections -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    let running = start_with(Limits {
        max_connections: 8,
        max_connections_per_client: 3,
        header_read_timeout: Duration::from_secs(4),
        ..Limits::default()
    })
    .await;
    let addr = running.addr();
    // 127.0.0.31 opens 6 connections: 3 are kept, the others closed at once.
    let mut held = Vec::new();
    for _ in 0..6 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(loopback(31), 0)).unwrap();
        held.push(socket.connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = 0;
    for stream in &mut held {
        let mut buf = [0u8; 1];
        // A closed connection reads end-of-file at once; an open one has nothing to read.
        if tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf))
            .await
            .is_err()
        {
            open += 1;
        }
    }
    assert_eq!(open, 3, "connections of one client kept open");
    // Another client is served at once, as is the first one on a kept connection's place
    // once it frees.
    let url = format!("{}/healthz", running.url());
    let served = client(32).get(&url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let refused = client(31).get(&url).send().await;
    assert!(
        refused.is_err(),
        "a 4th connection of 127.0.0.31: {refused:?}"
    );
    held.clear();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let served = client(31).get(&url).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
}

/// `address-search` with `args`, killed when dropped; its URL from the first line it prints.
async fn serve_binary(args: &[&str]) -> (common::Killed, String) {
    let mut child = common::address_search()
        .args(["--port", "0", "--admin-token", TOKEN])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting address-search");
    let stdout = child.stdout.take().expect("its stdout");
    let binary = common::Killed(child);
    let url = common::listening_url(stdout).await;
    (binary, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_limit_flags_apply() {
    let (_binary, url) =
        serve_binary(&["--search-rate-limit", "1/min", "--search-burst", "2"]).await;
    let http = client(40);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = http
            .get(format!("{url}/api/search?q=busan"))
            .send()
            .await
            .unwrap();
        assert_security_headers("binary", r.headers());
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);

    // `0` lifts the limit (what the load demo passes).
    let (_binary, url) = serve_binary(&["--search-rate-limit", "0"]).await;
    for _ in 0..60 {
        let r = http
            .get(format!("{url}/api/search?q=busan"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
