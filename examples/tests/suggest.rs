//! `/api/suggest` over real HTTP: suggestions from the daum mock through the runtime's reqwest
//! middleware (a breaker per provider host), beside the search's `#[circuit_breaker]`
//! functions: when daum is down the suggestion breaker opens and answers `degraded` at once
//! without calling it, while the search goes on through juso.

use std::time::{Duration, Instant};

use breaker_examples::providers::{Mode, Provider};
use breaker_examples::suggest::Suggestions;
use breaker_examples::{Config, Running, start};
use breaker_runtime::State;
use reqwest::StatusCode;

mod common;
use common::{SERIAL, client, fresh, read, unlimited};

async fn running() -> Running {
    start(Config {
        limits: unlimited(),
        ..Config::default()
    })
    .await
    .expect("starting the service")
}

async fn suggest(running: &Running, q: &str) -> (StatusCode, Suggestions) {
    let r = client()
        .get(format!("{}/api/suggest", running.url()))
        .query(&[("q", q)])
        .send()
        .await
        .expect("an answer");
    let status = r.status();
    let body: Suggestions = r.json().await.expect("suggestions as JSON");
    (status, body)
}

/// The suggestion breaker of the daum mock: `suggest.<host:port>`.
fn suggest_breaker(running: &Running) -> breaker_runtime::Handle {
    let daum = running.mock(Provider::Daum).expect("the daum mock").url();
    let host = daum.trim_start_matches("http://").trim_end_matches('/');
    breaker_runtime::breaker(&format!("suggest.{host}")).expect("made at the first suggestion")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suggestions_come_through_the_middleware_and_degrade_when_daum_is_down() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = running().await;
    let (status, s) = suggest(&running, "gangnam").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!s.degraded, "{s:?}");
    assert!(
        !s.suggestions.is_empty() && s.suggestions.len() <= 5,
        "{s:?}"
    );
    let breaker = suggest_breaker(&running);
    assert_eq!(breaker.counters().successes, 1);
    // Daum down: three failures open the suggestion breaker; every answer is a 200, degraded.
    running
        .mock(Provider::Daum)
        .expect("mock")
        .set(Mode::Down, None);
    for _ in 0..3 {
        let (status, s) = suggest(&running, "gangnam").await;
        assert_eq!(status, StatusCode::OK);
        assert!(s.degraded && s.suggestions.is_empty(), "{s:?}");
    }
    assert_eq!(breaker.state(), State::Open);
    let failures = breaker.counters().failures;
    for _ in 0..5 {
        let began = Instant::now();
        let (_, s) = suggest(&running, "teheran").await;
        assert!(s.degraded);
        assert!(began.elapsed() < Duration::from_millis(200));
    }
    let c = breaker.counters();
    assert_eq!(c.failures, failures, "a request went to daum while OPEN");
    assert_eq!(c.rejections, 5);
    // The search, with its attribute breakers, still answers (through juso).
    let (status, found) = read(
        client()
            .get(format!("{}/api/search?q=gangnam", running.url()))
            .send()
            .await
            .expect("a search"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["provider"], "juso", "{found}");
    // Both styles are in the registry and in `/readyz`.
    let (_, ready) = read(
        client()
            .get(format!("{}/readyz", running.url()))
            .send()
            .await
            .expect("readyz"),
    )
    .await;
    let names: Vec<&str> = ready["breakers"]
        .as_array()
        .expect("breakers")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"provider.daum"), "{names:?}");
    assert!(names.contains(&breaker.name()), "{names:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_times_suggestions_out_and_a_bad_query_is_refused() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = running().await;
    let (_, s) = suggest(&running, "gangnam").await;
    assert!(!s.degraded);
    running
        .mock(Provider::Daum)
        .expect("mock")
        .set(Mode::Slow, Some(Duration::from_secs(2)));
    let began = Instant::now();
    let (status, s) = suggest(&running, "gangnam").await;
    assert_eq!(status, StatusCode::OK);
    assert!(s.degraded);
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert!(suggest_breaker(&running).counters().timeouts >= 1);
    let r = client()
        .get(format!("{}/api/suggest?q=%3C", running.url()))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    running.shutdown().await;
}
