//! The tower layer (`breaker_runtime::layer`) around hyper's HTTP client, and the reqwest
//! middleware (`breaker_runtime::middleware`), against a real HTTP server on loopback whose
//! answer each path chooses; the server counts the requests that reach it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use breaker_runtime::layer::{BreakerLayer, HttpFailures, LayerError};
use breaker_runtime::middleware::{BreakerMiddleware, Endpoint, breaker_error};
use breaker_runtime::{Breaker, BreakerError, State as BreakerState, breakers};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceExt};

/// A server answering `/status/{code}` with that status and `/slow` after 2 s.
struct Upstream {
    url: String,
    hits: Arc<AtomicU32>,
}

async fn upstream() -> Upstream {
    let hits = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/status/{code}",
            get(
                |State(hits): State<Arc<AtomicU32>>, Path(code): Path<u16>| async move {
                    hits.fetch_add(1, SeqCst);
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
                },
            ),
        )
        .route(
            "/slow",
            get(|State(hits): State<Arc<AtomicU32>>| async move {
                hits.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_secs(2)).await;
                "late"
            }),
        )
        .with_state(Arc::clone(&hits));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Upstream { url, hits }
}

fn get_request(url: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(url)
        .body(Empty::new())
        .expect("a request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_layer_counts_5xx_and_429_rejects_without_sending_and_times_out() {
    let up = upstream().await;
    let breaker = Breaker::builder("http.tower")
        .threshold(3)
        .timeout(Duration::from_millis(300))
        .open_for(Duration::from_secs(60))
        .build()
        .expect("valid");
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = tower::ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker).classify(HttpFailures))
        .service(client);
    let mut send = async |path: &str| {
        svc.ready()
            .await
            .expect("ready")
            .call(get_request(&format!("{}{path}", up.url)))
            .await
    };
    // 4xx are answers, not failures.
    for _ in 0..5 {
        let r = send("/status/404").await.expect("an answer");
        assert_eq!(r.status(), 404);
    }
    assert_eq!(breaker.counters().failures, 0);
    // 503 and 429 are returned to the caller and counted.
    assert_eq!(send("/status/503").await.expect("an answer").status(), 503);
    assert_eq!(send("/status/429").await.expect("an answer").status(), 429);
    // A call past the breaker's timeout is abandoned: the third failure opens it.
    let began = Instant::now();
    let slow = send("/slow").await;
    assert!(
        matches!(slow, Err(LayerError::Breaker(BreakerError::Timeout { .. }))),
        "{slow:?}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(breaker.state(), BreakerState::Open);
    // OPEN: poll_ready does not wait, the call is refused and nothing reaches the server.
    let hits = up.hits.load(SeqCst);
    for _ in 0..20 {
        let began = Instant::now();
        let r = send("/status/200").await;
        assert!(
            matches!(&r, Err(LayerError::Breaker(e)) if e.is_open()),
            "{r:?}"
        );
        assert!(began.elapsed() < Duration::from_millis(100));
    }
    assert_eq!(up.hits.load(SeqCst), hits, "an open breaker sent requests");
    assert_eq!(breaker.counters().rejections, 20);
    // Its name is in the registry, like a declared breaker's.
    assert!(breakers().iter().any(|h| h.name() == "http.tower"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_layer_with_a_closure_classifier_and_service_errors() {
    let breaker = Breaker::builder("http.tower.closure")
        .threshold(2)
        .build()
        .expect("valid");
    // Nothing listens on this port: every call is a transport error.
    let closed = {
        let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a port");
        l.local_addr().expect("its address")
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut svc = tower::ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker).classify(
            |r: &Result<
                http::Response<hyper::body::Incoming>,
                hyper_util::client::legacy::Error,
            >| { r.is_err() },
        ))
        .service(client);
    for _ in 0..2 {
        let r = svc
            .ready()
            .await
            .expect("ready")
            .call(get_request(&format!("http://{closed}/")))
            .await;
        assert!(matches!(r, Err(LayerError::Service(_))), "{r:?}");
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

fn client_with(
    template: breaker_runtime::BreakerBuilder,
) -> reqwest_middleware::ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a client");
    reqwest_middleware::ClientBuilder::new(inner)
        .with(BreakerMiddleware::per_host(template))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_middleware_keeps_a_breaker_per_host_and_per_endpoint() {
    let (a, b) = (upstream().await, upstream().await);
    let client = client_with(
        Breaker::builder("http.mw")
            .threshold(2)
            .open_for(Duration::from_secs(60)),
    );
    let host = |u: &Upstream| u.url.trim_start_matches("http://").to_owned();
    // Host a fails twice: its breaker opens; host b is unaffected.
    for _ in 0..2 {
        let r = client
            .get(format!("{}/status/500", a.url))
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), 500);
    }
    let a_breaker = breaker_runtime::breaker(&format!("http.mw.{}", host(&a))).expect("made");
    assert_eq!(a_breaker.state(), BreakerState::Open);
    let hits = a.hits.load(SeqCst);
    let e = client
        .get(format!("{}/status/200", a.url))
        .send()
        .await
        .expect_err("rejected");
    assert!(
        breaker_error(&e).is_some_and(BreakerError::is_open),
        "{e:?}"
    );
    assert_eq!(a.hits.load(SeqCst), hits, "a rejected request was sent");
    let r = client
        .get(format!("{}/status/200", b.url))
        .send()
        .await
        .expect("host b answers");
    assert_eq!(r.status(), 200);
    let b_breaker = breaker_runtime::breaker(&format!("http.mw.{}", host(&b))).expect("made");
    assert_eq!(b_breaker.state(), BreakerState::Closed);
    // A named endpoint has its own breaker, whatever the host: host a's requests go through.
    let r = client
        .get(format!("{}/status/200", a.url))
        .with_extension(Endpoint("billing"))
        .send()
        .await
        .expect("the endpoint's breaker is closed");
    assert_eq!(r.status(), 200);
    let billing = breaker_runtime::breaker("http.mw.billing").expect("made");
    assert_eq!(billing.counters().successes, 1);
    // 404 is an answer, a transport error a failure.
    for _ in 0..3 {
        let r = client
            .get(format!("{}/status/404", b.url))
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), 404);
    }
    assert_eq!(b_breaker.counters().failures, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_middleware_refuses_a_template_with_bad_settings_per_request() {
    let up = upstream().await;
    let client = client_with(Breaker::builder("http.bad").threshold(0));
    let e = client
        .get(format!("{}/status/200", up.url))
        .send()
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("threshold"), "{e}");
    assert_eq!(up.hits.load(SeqCst), 0);
}
