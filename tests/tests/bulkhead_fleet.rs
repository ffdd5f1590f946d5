//! A bulkheaded `store = "redis"` breaker probing through a fleet lease
//! (real redis-server, a child process): a probe under an injected fault gives its place back
//! (on 11bf1ff the place of a probe failed by an injected `error`, or held by a `delay`, was
//! never given back).

use std::time::Duration;

use breaker_runtime::redis::Keys;
use breaker_runtime::{State, breaker, circuit_breaker};
use breaker_tests::fleet::{self, Spawn, report, unix_ms};
use breaker_tests::{RedisServer, TestError};

const ROLE: &str = "RV_FLEET_ROLE";

#[circuit_breaker(
    name = "rv.fleet",
    max_concurrent = 1,
    threshold = 100,
    open_for = "1s",
    store = "redis"
)]
async fn fleet_fn() -> Result<u32, TestError> {
    Ok(1)
}

#[test]
fn rv_fleet_child() {
    let Some(_role) = fleet::role(ROLE) else {
        return;
    };
    fleet::run(async {
        let _ = fleet_fn().await;
        let h = breaker("rv.fleet").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        // The fleet's OPEN (seeded in Redis) adopted, then its end: HALF_OPEN judged by the fleet.
        while h.state() != State::Open {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw the fleet's OPEN"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while h.state() != State::HalfOpen {
            assert!(std::time::Instant::now() < deadline, "never HALF_OPEN");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let probe = fleet_fn().await;
        report("probe", format!("{probe:?}"));
        let (in_flight, _) = h.bulkhead_load().unwrap();
        report("load", in_flight);
        let next = fleet_fn().await;
        report("next", format!("{next:?}"));
    });
}

fn run(fault: &str) -> (String, String, String) {
    let _serial = fleet::serial();
    let redis = RedisServer::start();
    let keys = Keys::new(&format!("rv-{}", redis.port()));
    let key = keys.breaker("rv.fleet").state;
    let until = unix_ms() + 1500;
    redis
        .command(&format!(
            "HSET {key} state open gen 5 opens 1 open_until {until} forced \"\""
        ))
        .expect("seeded");
    let url = redis.url();
    let faults = format!("rv.fleet={fault}");
    let i = Spawn::new("rv_fleet_child", ROLE, fault)
        .envs([
            ("BREAKER_REDIS_URL", url.as_str()),
            ("BREAKER_KEY_PREFIX", keys.prefix()),
            ("BREAKER_FAULTS", faults.as_str()),
        ])
        .start();
    let probe = i.expect("probe", Duration::from_secs(30)).rest().to_owned();
    let load = i.expect("load", Duration::from_secs(30)).rest().to_owned();
    let next = i.expect("next", Duration::from_secs(30)).rest().to_owned();
    i.finish();
    (probe, load, next)
}

/// An injected `error` applied to a probe when its fleet lease arrives (fleet.rs
/// probe_answered -> with_fault): the call fails, and its place must come back.
#[test]
fn a_fleet_probe_failed_by_an_injected_error_gives_its_place_back() {
    let (probe, load, next) = run("error");
    assert!(probe.contains("Injected"), "{probe}");
    assert_eq!(
        load, "0",
        "place kept after the probe ended; next call: {next}"
    );
}

/// An injected `delay` applied to a probe when its lease arrives: the delayed code comes out of
/// the wait as a rejection (reported as `Open`), and the place must still come back.
#[test]
fn a_fleet_probe_held_by_an_injected_delay_gives_its_place_back() {
    let (probe, load, next) = run("delay:10ms");
    assert_eq!(
        load, "0",
        "place kept after the probe ended ({probe}); next call: {next}"
    );
    assert!(probe.contains("Ok(1)"), "{probe}");
}
