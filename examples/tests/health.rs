//! `/healthz` (liveness) and `/readyz` (readiness) over real HTTP: neither fails because a
//! provider's breaker is open, and neither is shed when the search API is.

use std::time::{Duration, Instant};

use breaker_examples::providers::{Mode, Provider};
use breaker_examples::{Config, Limits, Running, start};
use reqwest::StatusCode;
use serde_json::Value;

mod common;
use common::{SERIAL, client, fresh, read, unlimited};

async fn start_with(limits: Limits) -> Running {
    start(Config {
        limits,
        ..Config::default()
    })
    .await
    .expect("starting the service")
}

fn state_of<'a>(ready: &'a Value, name: &str) -> &'a str {
    ready["breakers"]
        .as_array()
        .expect("a list of breakers")
        .iter()
        .find(|b| b["name"] == name)
        .and_then(|b| b["state"].as_str())
        .unwrap_or_else(|| panic!("{name} not in {ready}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_breakers_do_not_make_the_service_unhealthy_or_unready() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(unlimited()).await;
    let http = client();
    let (status, ready) = read(
        http.get(format!("{}/readyz", running.url()))
            .send()
            .await
            .expect("readyz"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(state_of(&ready, "provider.daum"), "CLOSED");
    // Both providers down: both breakers open, users see the outage notice.
    for p in [Provider::Daum, Provider::Juso] {
        running.mock(p).expect("mock").set(Mode::Down, None);
    }
    for _ in 0..10 {
        let _ = http
            .get(format!("{}/api/search?q=gangnam", running.url()))
            .send()
            .await
            .expect("search");
    }
    for name in ["provider.daum", "provider.juso"] {
        assert_eq!(
            breaker_runtime::breaker(name).expect(name).state(),
            breaker_runtime::State::Open
        );
    }
    let live = http
        .get(format!("{}/healthz", running.url()))
        .send()
        .await
        .expect("healthz");
    assert_eq!(live.status(), StatusCode::OK);
    let (status, ready) = read(
        http.get(format!("{}/readyz", running.url()))
            .send()
            .await
            .expect("readyz"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["status"], "ready");
    assert_eq!(state_of(&ready, "provider.daum"), "OPEN");
    assert_eq!(state_of(&ready, "provider.juso"), "OPEN");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_answered_while_searches_are_shed() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start_with(Limits {
        max_concurrent_requests: 1,
        ..unlimited()
    })
    .await;
    running
        .mock(Provider::Daum)
        .expect("mock")
        .set(Mode::Slow, Some(Duration::from_millis(500)));
    let http = client();
    let slow = {
        let (http, url) = (
            http.clone(),
            format!("{}/api/search?q=gangnam", running.url()),
        );
        tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) })
    };
    // The one place is taken by the slow search.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let shed = http
        .get(format!("{}/api/search?q=teheran", running.url()))
        .send()
        .await
        .expect("a second search");
    assert_eq!(
        shed.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the limit holds"
    );
    for path in ["/healthz", "/readyz"] {
        let began = Instant::now();
        let r = http
            .get(format!("{}{path}", running.url()))
            .send()
            .await
            .expect(path);
        assert_eq!(r.status(), StatusCode::OK, "{path} shed with the searches");
        assert!(
            began.elapsed() < Duration::from_millis(300),
            "{path} waited"
        );
    }
    assert_eq!(
        slow.await.expect("task").expect("slow search"),
        StatusCode::OK
    );
    running.shutdown().await;
}
