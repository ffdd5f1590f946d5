//! The seed's outage as a bulkhead sees it, over real HTTP: daum answers slowly, and no more
//! than 64 searches wait on it (`provider.daum`'s `max_concurrent = 64`); the others are
//! answered by juso at once instead of piling up behind the slow provider.

use std::time::{Duration, Instant};

use breaker_examples::providers::{Mode, Provider};
use breaker_examples::{Config, start};
use reqwest::StatusCode;

mod common;
use common::{SERIAL, client, fresh, read, unlimited};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_daum_holds_at_most_64_searches_and_juso_answers_the_rest_at_once() {
    let _serial = SERIAL.lock().await;
    fresh().await;
    let running = start(Config {
        limits: unlimited(),
        ..Config::default()
    })
    .await
    .expect("starting the service");
    running
        .mock(Provider::Daum)
        .expect("mock")
        .set(Mode::Slow, Some(Duration::from_millis(600)));
    let daum = breaker_runtime::breaker("provider.daum").expect("declared");
    assert_eq!(daum.bulkhead_load(), Some((0, 64)));
    let url = format!("{}/api/search?q=gangnam", running.url());
    // One client (building one is slow in a debug build), a connection per search.
    let http = client();
    let began = Instant::now();
    let searches: Vec<_> = (0..120)
        .map(|_| {
            let (url, http) = (url.clone(), http.clone());
            tokio::spawn(async move {
                let (status, body) = read(http.get(url).send().await.expect("a search")).await;
                (
                    status,
                    body["provider"].as_str().map(str::to_owned),
                    began.elapsed(),
                )
            })
        })
        .collect();
    // While daum is slow, at most 64 searches are in it; the console shows them too.
    let console = format!("{}/api/admin/breakers", running.url());
    let (mut most, mut console_most) = (0, 0);
    while began.elapsed() < Duration::from_millis(400) {
        most = most.max(daum.bulkhead_load().map_or(0, |(n, _)| n));
        let (status, list) = read(
            http.get(&console)
                .bearer_auth(running.admin_token())
                .send()
                .await
                .expect("GET /api/admin/breakers"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        let shown = &list[0]["bulkhead"];
        assert_eq!(list[0]["name"], "provider.daum");
        assert_eq!(shown["max_concurrent"], 64, "{shown}");
        let in_flight = shown["in_flight"].as_u64().expect("in_flight");
        assert!(in_flight <= 64, "the console shows {in_flight} in daum");
        console_most = console_most.max(in_flight);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut fast_juso = 0;
    for s in searches {
        let (status, provider, took) = s.await.expect("task");
        assert_eq!(status, StatusCode::OK);
        if provider.as_deref() == Some("juso") && took < Duration::from_millis(500) {
            fast_juso += 1;
        }
    }
    eprintln!(
        "most searches in daum at once: {most} (the console: {console_most}); answered by juso before daum's 600 ms: {fast_juso}"
    );
    assert!(most <= 64, "{most} searches in daum at once");
    assert!(most >= 32, "daum was never busy: {most}");
    assert!(console_most > 0, "the console never showed daum busy");
    assert!(
        fast_juso >= 120 - 64,
        "only {fast_juso} searches were turned to juso at once"
    );
    assert!(daum.counters().rejections >= 56);
    assert_eq!(
        daum.counters().failures,
        0,
        "a full bulkhead is not the provider failing"
    );
    running.shutdown().await;
}
