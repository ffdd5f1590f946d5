//! Random input at the running service, over real HTTP: query strings (any Unicode, raw bytes
//! percent-encoded, the characters the providers refuse), admin action bodies (any JSON, broken
//! JSON, any bytes) and paths. The service never answers a 5xx and never panics (a panicking
//! handler drops the connection, which the client sees as an error, not an answer).

use std::sync::OnceLock;

use breaker_examples::{Config, Running, start};
use proptest::prelude::*;
use serde_json::Value;

mod common;

const TOKEN: &str = "property-test-token";

/// One service and one runtime for every case.
struct Shared {
    runtime: tokio::runtime::Runtime,
    running: Running,
    http: reqwest::Client,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let running = runtime
            .block_on(start(Config {
                admin_token: Some(TOKEN.to_owned()),
                // One client, far faster than a person: without the per-client limits the
                // handlers behind them see every case (tests/limits.rs tests the limits).
                limits: common::unlimited(),
                ..Config::default()
            }))
            .expect("starting the service");
        let http = common::client();
        Shared {
            runtime,
            running,
            http,
        }
    })
}

/// Sends `request` and returns its status; a failed exchange (a dropped connection) fails the
/// property.
fn status_of(request: reqwest::RequestBuilder) -> Result<u16, TestCaseError> {
    let s = shared();
    s.runtime.block_on(async {
        let response = request
            .send()
            .await
            .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        // The whole body is read: an answer cut short is a failure too.
        response
            .bytes()
            .await
            .map_err(|e| TestCaseError::fail(format!("body cut short: {e}")))?;
        Ok(status)
    })
}

fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ %=<>\\[\\]a-zA-Z0-9가-힣\\-#.,()]{0,120}",
        "(or|OR|select|drop|union|서울|강남|테헤란로|[0-9]{1,14}| |[%=<>])*",
        proptest::collection::vec(any::<char>(), 0..200).prop_map(|c| c.into_iter().collect()),
    ]
}

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<String>().prop_map(Value::String),
        "(open|error|slow|latency|reject|up|down|flap|[0-9]{1,6}(ms|s|m|h)?|error:0\\.[0-9]|slow:[0-9]{1,5}ms)"
            .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    "(text|for|fault|swapped|shadow|mode|delay_ms|[a-z_]{1,8})",
                    inner
                ),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<String>().prop_map(String::into_bytes),
    ]
}

fn admin_path() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("provider.daum".to_owned()),
        Just("provider.juso".to_owned()),
        "[a-z.{}]{0,12}",
    ];
    let action = prop_oneof![
        Just("inject".to_owned()),
        Just("notice".to_owned()),
        Just("swap".to_owned()),
        Just("shadow".to_owned()),
        Just("reset".to_owned()),
        Just("close".to_owned()),
        "[a-z]{0,8}",
    ];
    prop_oneof![
        (name, action).prop_map(|(n, a)| format!("/api/admin/breakers/{n}/{a}")),
        "(daum|juso|[a-z]{0,6})".prop_map(|p| format!("/api/admin/providers/{p}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_queries_never_get_a_5xx(q in query_text()) {
        let s = shared();
        let status = status_of(
            s.http.get(format!("{}/api/search", s.running.url())).query(&[("q", &q)]),
        )?;
        prop_assert!(status < 500, "{q:?}: HTTP {status}");
    }

    #[test]
    fn random_query_bytes_never_get_a_5xx(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let s = shared();
        let url = format!("{}/api/search?q={}", s.running.url(), percent_encoded(&bytes));
        let status = status_of(s.http.get(url))?;
        prop_assert!(status < 500, "{bytes:?}: HTTP {status}");
    }

    #[test]
    fn random_admin_requests_never_get_a_5xx(
        path in admin_path(),
        body in body(),
        json in any::<bool>(),
        authorised in any::<bool>(),
    ) {
        let s = shared();
        let mut request = s.http.post(format!("{}{path}", s.running.url())).body(body.clone());
        if json {
            request = request.header("content-type", "application/json");
        }
        if authorised {
            request = request.bearer_auth(TOKEN);
        }
        let status = status_of(request)?;
        prop_assert!(
            status < 500,
            "POST {path} {}: HTTP {status}",
            String::from_utf8_lossy(&body)
        );
    }
}
