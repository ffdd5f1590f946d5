//! `store = "redis"` across real OS processes sharing a real `redis-server` started by the test.
//!
//! The parent only orchestrates: it starts Redis and re-runs this test binary as child
//! processes (the `fleet_child` entry, with `FLEET_ROLE` set), each one an instance of the
//! application with `BREAKER_REDIS_URL` pointing at the test's server.

use std::process::{Command, Stdio};
use std::time::Duration;

use breaker_runtime::redis::Keys;
use breaker_runtime::{EventKind, State, breaker, circuit_breaker};
use breaker_tests::fleet::{
    self, Instance, Scratch, Spawn, Stopped, report, serial, unix_micros, unix_ms,
};
use breaker_tests::{Recorder, RedisCluster, RedisServer, TestError};

const ROLE: &str = "FLEET_ROLE";
/// How long the parent waits for a line: every child ends on its own well before.
const PATIENCE: Duration = Duration::from_secs(60);
const NAME: &str = "fleet.daum";

/// The keys of the test's fleet: each test has its own server, and its own key prefix too.
fn keys(redis: &RedisServer) -> Keys {
    Keys::new(&format!("fleet-{}", redis.port()))
}

#[circuit_breaker(
    name = "fleet.daum",
    threshold = 3,
    window = "60s",
    open_for = "30s",
    store = "redis"
)]
async fn daum(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("daum"))
    } else {
        Ok(1)
    }
}

#[circuit_breaker(
    name = "fleet.probe",
    threshold = 1,
    open_for = "1s",
    half_open_probes = 2,
    store = "redis"
)]
async fn probed(fail: bool) -> Result<u32, TestError> {
    if fail {
        return Err(TestError::Down("probe"));
    }
    if breaker("fleet.probe").map(|h| h.state()) == Some(State::HalfOpen) {
        report("probe", std::process::id());
        if std::env::var_os("FLEET_HANG_PROBES").is_some() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(1)
}

#[circuit_breaker(name = "conformance", threshold = 2, open_for = "1s", store = "redis")]
async fn conformance(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("conformance"))
    } else {
        Ok(1)
    }
}

/// The store-conformance scenario: the same steps and expectations whatever serves
/// `store = "redis"` (memory when no Redis is configured, one Redis, a cluster).
async fn conformance_scenario() {
    let h = breaker("conformance").unwrap();
    // Trip at the threshold; an open breaker rejects without calling.
    assert_eq!(conformance(true).await, Err(TestError::Down("conformance")));
    assert_eq!(h.state(), State::Closed);
    assert_eq!(conformance(true).await, Err(TestError::Down("conformance")));
    assert_eq!(h.state(), State::Open);
    assert!(conformance(false).await.unwrap_err().is_open());
    // After open_for, probes close it (a fleet lease may take one rejected call).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h.state() != State::Closed {
        assert!(
            std::time::Instant::now() < deadline,
            "never closed: {:?}",
            h.state()
        );
        let _ = conformance(false).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Operator commands.
    h.force_open().await.unwrap();
    assert_eq!(h.state(), State::Open);
    assert!(conformance(false).await.unwrap_err().is_open());
    h.force_closed().await.unwrap();
    for _ in 0..5 {
        let _ = conformance(true).await;
    }
    assert_eq!(h.state(), State::Closed, "forced closed never trips");
    h.reset().await.unwrap();
    assert_eq!(h.forced(), None);
    assert_eq!(conformance(false).await, Ok(1));
}

#[circuit_breaker(
    name = "fleet.slow",
    threshold = 1,
    open_for = "1s",
    timeout = "100ms",
    store = "redis"
)]
async fn slow_traffic(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("slow"))
    } else {
        Ok(1)
    }
}

/// Starts one instance in `role` on `redis`, under the test's key prefix.
fn spawn(redis: &RedisServer, role: &str) -> Instance {
    spawn_with(redis, role, &[])
}

/// [`spawn`], with more of its environment.
fn spawn_with(redis: &RedisServer, role: &str, env: &[(&str, &str)]) -> Instance {
    let url = redis.url();
    let keys = keys(redis);
    let mut all = vec![
        ("BREAKER_REDIS_URL", url.as_str()),
        ("BREAKER_KEY_PREFIX", keys.prefix()),
    ];
    all.extend_from_slice(env);
    spawn_env(role, &all)
}

/// Starts one instance in `role` on `cluster`.
fn spawn_cluster(cluster: &RedisCluster, role: &str) -> Instance {
    let urls = cluster.urls();
    spawn_env(
        role,
        &[
            ("BREAKER_REDIS_CLUSTER", urls.as_str()),
            ("BREAKER_KEY_PREFIX", "fleet-cluster"),
        ],
    )
}

/// Starts one instance in `role` with exactly this environment of settings.
fn spawn_env(role: &str, env: &[(&str, &str)]) -> Instance {
    Spawn::new("fleet_child", ROLE, role)
        .envs(env.iter().copied())
        .start()
}

/// The child entry point: does nothing unless run by a parent test with `FLEET_ROLE` set.
#[test]
fn fleet_child() {
    let Some(role) = fleet::role(ROLE) else {
        return;
    };
    let rec = Recorder::install();
    fleet::run(async {
        match role.as_str() {
            // Joins, then waits to see the fleet open the breaker.
            "watch" => {
                assert_eq!(daum(false).await, Ok(1));
                report("ready", "");
                let h = breaker(NAME).unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while h.state() != State::Open {
                    assert!(std::time::Instant::now() < deadline, "never saw OPEN");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                report("open", unix_micros());
                assert!(daum(false).await.unwrap_err().is_open());
            }
            // Fails until the breaker opens here, then stays up while the flush goes out.
            "trip" => {
                for _ in 0..3 {
                    assert_eq!(daum(true).await, Err(TestError::Down("daum")));
                }
                report("tripped", unix_micros());
                assert_eq!(breaker(NAME).unwrap().state(), State::Open);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // A breaker built in code, shared through Redis: waits to see the fleet open it.
            "built-watch" => {
                let b = built_breaker();
                assert_eq!(b.call(|| async { Ok::<u32, TestError>(1) }).await, Ok(1));
                report("ready", "");
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while b.state() != State::Open {
                    assert!(std::time::Instant::now() < deadline, "never saw OPEN");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                report("open", "");
                let r = b.call(|| async { Ok::<u32, TestError>(1) }).await;
                assert!(
                    r.unwrap_err().is_open(),
                    "a call admitted while the fleet is OPEN"
                );
            }
            "built-trip" => {
                let b = built_breaker();
                for _ in 0..3 {
                    let r = b
                        .call(|| async { Err::<u32, _>(TestError::Down("built")) })
                        .await;
                    assert_eq!(r, Err(TestError::Down("built")));
                }
                assert_eq!(b.state(), State::Open);
                report("tripped", "");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            "built-expect-open" => {
                let b = built_breaker();
                let r = b.call(|| async { Ok::<u32, TestError>(1) }).await;
                assert!(r.unwrap_err().is_open(), "first call admitted");
                report("rejected", "");
            }
            // A new instance must start OPEN: its very first call is rejected.
            "expect-open" => {
                assert!(
                    daum(false).await.unwrap_err().is_open(),
                    "first call admitted"
                );
                report("rejected", "");
            }
            "expect-closed" => {
                assert_eq!(daum(false).await, Ok(1));
                report("admitted", "");
            }
            "force-open" => {
                assert_eq!(daum(false).await, Ok(1));
                breaker(NAME).unwrap().force_open().await.unwrap();
                report("forced", "");
            }
            "reset" => {
                let _ = daum(false).await;
                breaker(NAME).unwrap().reset().await.unwrap();
                report("reset", "");
            }
            // Open here and stay up while Redis is restarted empty.
            "hold-open" => {
                for _ in 0..3 {
                    let _ = daum(true).await;
                }
                assert_eq!(breaker(NAME).unwrap().state(), State::Open);
                report("open", "");
                tokio::time::sleep(Duration::from_secs(4)).await;
                assert_eq!(breaker(NAME).unwrap().state(), State::Open);
            }
            // Garbage under the breaker's key: an error event, calls go on.
            "malformed" => {
                for _ in 0..20 {
                    assert_eq!(daum(false).await, Ok(1));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let errors = rec
                    .events(NAME)
                    .into_iter()
                    .filter(|e| matches!(e, EventKind::StoreError { .. }))
                    .count();
                assert!(errors > 0, "no StoreError event");
                report("reported", errors);
            }
            // Waits for the breaker to open, then calls until it has been closed again for a
            // while; every call that runs while HALF_OPEN prints `@probe`.
            "probe-race" => {
                // Joining while HALF_OPEN, the first call may be rejected: that is fine here.
                let _ = probed(false).await;
                report("ready", "");
                let h = breaker("fleet.probe").unwrap();
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                while h.state() == State::Closed {
                    assert!(std::time::Instant::now() < deadline, "never saw OPEN");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let mut closed_since = None;
                while closed_since
                    .is_none_or(|t: std::time::Instant| t.elapsed() < Duration::from_millis(500))
                {
                    assert!(std::time::Instant::now() < deadline, "never closed again");
                    let _ = probed(false).await;
                    match (h.state(), closed_since) {
                        (State::Closed, None) => closed_since = Some(std::time::Instant::now()),
                        (State::Closed, Some(_)) => {}
                        _ => closed_since = None,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                report("closed", "");
            }
            "probe-trip" => {
                assert_eq!(probed(true).await, Err(TestError::Down("probe")));
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            // Calls for 4 s while the parent breaks Redis; reports errors, the slowest call and
            // the store's health events.
            "steady" => {
                report("ready", "");
                let mut errors = 0;
                let mut slowest = Duration::ZERO;
                let end = std::time::Instant::now() + Duration::from_secs(4);
                while std::time::Instant::now() < end {
                    let t = std::time::Instant::now();
                    if daum(false).await.is_err() {
                        errors += 1;
                    }
                    slowest = slowest.max(t.elapsed());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let health: Vec<bool> = rec
                    .events("")
                    .into_iter()
                    .filter_map(|e| match e {
                        EventKind::StoreHealth { healthy, .. } => Some(healthy),
                        _ => None,
                    })
                    .collect();
                report(
                    "done",
                    format_args!("{errors} {} {health:?}", slowest.as_micros()),
                );
            }
            "conformance" => {
                conformance_scenario().await;
                report("conformant", "");
            }
            // Holds the breaker forced open while Redis restarts empty.
            "hold-forced" => {
                let _ = daum(false).await;
                breaker(NAME).unwrap().force_open().await.unwrap();
                report("forced", "");
                tokio::time::sleep(Duration::from_secs(4)).await;
                let h = breaker(NAME).unwrap();
                assert_eq!(h.forced(), Some(breaker_runtime::Forced::Open));
            }
            // One call every 300 ms after a trip: the breaker must still recover (a lease granted
            // between calls is held long enough for the next one, not expired as a failure).
            "slow-recovery" => {
                let _ = slow_traffic(true).await;
                let h = breaker("fleet.slow").unwrap();
                assert_eq!(h.state(), State::Open);
                let deadline = std::time::Instant::now() + Duration::from_secs(8);
                while h.state() != State::Closed {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "never recovered: {:?}",
                        h.state()
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    let _ = slow_traffic(false).await;
                }
                report("recovered", "");
            }
            // Open while Redis is up; once Redis is gone, HALF_OPEN probing runs locally.
            "local-probe" => {
                let _ = probed(true).await;
                let h = breaker("fleet.probe").unwrap();
                assert_eq!(h.state(), State::Open);
                report("open", "");
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                loop {
                    let down = rec
                        .events("")
                        .iter()
                        .any(|e| matches!(e, EventKind::StoreHealth { healthy: false, .. }));
                    if down {
                        break;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "Redis never went away"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                while h.state() != State::Closed {
                    assert!(std::time::Instant::now() < deadline, "no local probing");
                    let _ = probed(false).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                report("recovered", "");
            }
            // A breaker Redis says is OPEN for a very long time: it must probe (and close) within
            // its own `open_for` (1 s), the longest this opening can last.
            "absurd-open" => {
                let h = breaker("fleet.probe").unwrap();
                let _ = probed(false).await;
                let start = std::time::Instant::now();
                let mut saw_open = h.state() == State::Open;
                while h.state() != State::Closed {
                    assert!(
                        start.elapsed() < Duration::from_secs(4),
                        "still {:?} after 4 s: an absurd open_until was trusted",
                        h.state()
                    );
                    saw_open |= h.state() == State::Open;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = probed(false).await;
                }
                report(
                    "closed",
                    format_args!("{saw_open} {}", start.elapsed().as_millis()),
                );
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// The breaker the `built-*` roles make in code.
fn built_breaker() -> breaker_runtime::Handle {
    breaker_runtime::Breaker::builder("fleet.built")
        .threshold(3)
        .open_for(Duration::from_secs(30))
        .store(breaker_runtime::StoreKind::Redis)
        .build()
        .expect("valid settings")
}

#[test]
fn a_breaker_built_in_code_is_shared_through_redis() {
    let _serial = serial();
    let redis = RedisServer::start();
    let watcher = spawn(&redis, "built-watch");
    watcher.expect("ready", PATIENCE);
    let tripper = spawn(&redis, "built-trip");
    tripper.expect("tripped", PATIENCE);
    watcher.expect("open", PATIENCE);
    tripper.finish();
    watcher.finish();
    // An instance started now builds the breaker and finds it OPEN before its first call.
    spawn(&redis, "built-expect-open").finish();
}

#[test]
fn trip_in_one_process_rejects_in_the_others() {
    let _serial = serial();
    let redis = RedisServer::start();
    let watchers: Vec<_> = (0..3).map(|_| spawn(&redis, "watch")).collect();
    for w in &watchers {
        w.expect("ready", PATIENCE);
    }
    let tripper = spawn(&redis, "trip");
    let tripped: u128 = tripper.expect("tripped", PATIENCE).rest().parse().unwrap();
    let mut lags = Vec::new();
    for w in &watchers {
        let seen: u128 = w.expect("open", PATIENCE).rest().parse().unwrap();
        lags.push(seen.saturating_sub(tripped));
    }
    println!("propagation to 3 instances (µs): {lags:?}");
    for lag in &lags {
        // Under the 50 ms flush heartbeat: the trip reached them pushed, not polled.
        assert!(*lag < 45_000, "an instance took {lag} µs to see OPEN");
    }
    tripper.finish();
    for w in watchers {
        w.finish();
    }
    // An instance started now learns the state before its first call.
    spawn(&redis, "expect-open").finish();
}

#[test]
fn operator_commands_reach_every_instance_and_persist() {
    let _serial = serial();
    let redis = RedisServer::start();
    let watcher = spawn(&redis, "watch");
    watcher.expect("ready", PATIENCE);
    let admin = spawn(&redis, "force-open");
    admin.expect("forced", PATIENCE);
    watcher.expect("open", PATIENCE);
    admin.finish();
    watcher.finish();
    // Forced open holds for instances started later...
    spawn(&redis, "expect-open").finish();
    // ...until a reset.
    spawn(&redis, "reset").finish();
    spawn(&redis, "expect-closed").finish();
    // Changes made from application code are in the audit log `breakerctl audit` reads.
    let port = redis.port();
    let newest = Command::new("redis-cli")
        .args([
            "-p",
            &port.to_string(),
            "LRANGE",
            keys(&redis).audit(),
            "0",
            "0",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(
        newest.contains(r#""command":"reset""#) && newest.contains(NAME),
        "{newest}"
    );
    let count = redis.command(&format!("LLEN {}", keys(&redis).audit()));
    assert_eq!(count.as_deref(), Some(":2"), "open and reset were audited");
}

#[test]
fn redis_restarted_empty_while_open_elsewhere_converges_on_open() {
    let _serial = serial();
    let mut redis = RedisServer::start();
    let port = redis.port();
    let holder = spawn(&redis, "hold-open");
    holder.expect("open", PATIENCE);
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    drop(redis);
    let redis = RedisServer::start_on(port);
    // The instance that is OPEN writes its state back within a flush or two of reconnecting.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let key = format!("HGET {} state", keys(&redis).breaker(NAME).state);
    while redis.command(&key).as_deref() != Some("$4") {
        assert!(
            std::time::Instant::now() < deadline,
            "the OPEN state was not written back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    spawn(&redis, "expect-open").finish();
    holder.finish();
}

#[test]
fn malformed_data_under_the_key_is_reported_and_calls_go_on() {
    let _serial = serial();
    let redis = RedisServer::start();
    assert_eq!(
        redis
            .command(&format!(
                "HSET {} state ajar",
                keys(&redis).breaker(NAME).state
            ))
            .as_deref(),
        Some(":1")
    );
    let i = spawn(&redis, "malformed");
    i.expect("reported", PATIENCE);
    i.finish();
}

#[test]
fn fleet_wide_probe_limit_holds_with_8_processes_racing() {
    let _serial = serial();
    let redis = RedisServer::start();
    let racers: Vec<_> = (0..8).map(|_| spawn(&redis, "probe-race")).collect();
    for r in &racers {
        r.expect("ready", PATIENCE);
    }
    spawn(&redis, "probe-trip").finish();
    let mut probes = 0;
    for r in &racers {
        let out = r.lines_until("closed", PATIENCE);
        probes += out.iter().filter(|l| l.is("probe")).count();
    }
    for r in racers {
        r.finish();
    }
    assert_eq!(
        probes, 2,
        "probe calls across the fleet (half_open_probes = 2)"
    );
}

#[test]
fn killing_a_process_mid_probe_does_not_wedge_half_open() {
    let _serial = serial();
    let redis = RedisServer::start();
    // An instance whose probes hang forever takes a probe lease, and is killed holding it.
    let mut hanger = spawn_with(&redis, "probe-race", &[("FLEET_HANG_PROBES", "1")]);
    hanger.expect("ready", PATIENCE);
    spawn(&redis, "probe-trip").finish();
    let _ = hanger.expect("probe", PATIENCE);
    hanger.kill();
    drop(hanger);
    // Its lease runs out (1 s, the open period, as there is no timeout): a failed probe; the
    // breaker re-opens, half-opens again, and the other instances' probes close it.
    let racers: Vec<_> = (0..3).map(|_| spawn(&redis, "probe-race")).collect();
    for r in &racers {
        let _ = r.lines_until("closed", PATIENCE);
    }
    for r in racers {
        r.finish();
    }
}

/// A `steady` instance (with `env`) while Redis is killed 800 ms in and restarted on its port
/// 1.8 s later; the restarted server and the instance's report.
fn steady_through_outage(env: &[(&str, &str)]) -> (RedisServer, (u32, u128, String)) {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let app = spawn_with(&redis, "steady", env);
    app.expect("ready", PATIENCE);
    std::thread::sleep(Duration::from_millis(800));
    redis.kill();
    drop(redis);
    std::thread::sleep(Duration::from_millis(1800));
    let redis = RedisServer::start_on(port);
    let report = steady_report(&app);
    app.finish();
    (redis, report)
}

/// Parses `@done <errors> <slowest µs> <health events>`.
fn steady_report(i: &Instance) -> (u32, u128, String) {
    let done = i.expect("done", PATIENCE);
    let done = done.rest();
    let mut parts = done.splitn(3, ' ');
    let errors = parts.next().unwrap().parse().unwrap();
    let slowest = parts.next().unwrap().parse().unwrap();
    (errors, slowest, parts.next().unwrap_or_default().to_owned())
}

#[test]
fn redis_killed_and_restarted_mid_run_fails_no_call() {
    let _serial = serial();
    // Longer than `store_down_after` (1 s): an outage, not a stall.
    let (redis, (errors, slowest, health)) = steady_through_outage(&[]);
    assert_eq!(errors, 0, "calls failed because Redis went away");
    assert!(slowest < 100_000, "a call waited {slowest} µs");
    // Lost (local mode), connected again: each switch is an event; connecting at start is
    // not news (logged, not an event).
    assert_eq!(health, "[false, true]");
    drop(redis);
}

/// `BREAKER_STORE_DOWN_AFTER` longer than the outage: the same outage is slowness, not news
/// (no `StoreHealth` event, no local mode); with a malformed value the store still shares the
/// fleet's state (the default applies).
#[test]
fn store_down_after_sets_what_counts_as_an_outage() {
    let _serial = serial();
    let (redis, (errors, _, health)) = steady_through_outage(&[("BREAKER_STORE_DOWN_AFTER", "3s")]);
    assert_eq!(errors, 0);
    assert_eq!(
        health, "[]",
        "an outage shorter than BREAKER_STORE_DOWN_AFTER is no event"
    );
    // A malformed value: reported, and the store still shares the fleet's state.
    let watcher = spawn(&redis, "watch");
    watcher.expect("ready", PATIENCE);
    let tripper = spawn_with(&redis, "trip", &[("BREAKER_STORE_DOWN_AFTER", "soon")]);
    tripper.expect("tripped", PATIENCE);
    watcher.expect("open", PATIENCE);
    tripper.finish();
    watcher.finish();
}

#[test]
fn redis_stopped_longer_than_the_budget_never_holds_a_call() {
    let _serial = serial();
    let redis = RedisServer::start();
    let app = spawn(&redis, "steady");
    app.expect("ready", PATIENCE);
    std::thread::sleep(Duration::from_millis(800));
    let stopped = Stopped::new(redis.pid());
    std::thread::sleep(Duration::from_millis(1500));
    stopped.resume();
    let (errors, slowest, health) = steady_report(&app);
    app.finish();
    assert_eq!(errors, 0);
    assert!(
        slowest < 100_000,
        "a call waited {slowest} µs while Redis was stopped"
    );
    assert_eq!(health, "[false, true]");
}

#[test]
fn cluster_trip_propagates_and_probe_limit_holds() {
    let _serial = serial();
    let cluster = RedisCluster::start();
    let watchers: Vec<_> = (0..2).map(|_| spawn_cluster(&cluster, "watch")).collect();
    for w in &watchers {
        w.expect("ready", PATIENCE);
    }
    let tripper = spawn_cluster(&cluster, "trip");
    let tripped: u128 = tripper.expect("tripped", PATIENCE).rest().parse().unwrap();
    for w in &watchers {
        let seen: u128 = w.expect("open", PATIENCE).rest().parse().unwrap();
        assert!(
            seen.saturating_sub(tripped) < 45_000,
            "slow propagation on the cluster"
        );
    }
    tripper.finish();
    for w in watchers {
        w.finish();
    }
    spawn_cluster(&cluster, "expect-open").finish();
    // The fleet-wide probe budget on the cluster.
    let racers: Vec<_> = (0..4)
        .map(|_| spawn_cluster(&cluster, "probe-race"))
        .collect();
    for r in &racers {
        r.expect("ready", PATIENCE);
    }
    spawn_cluster(&cluster, "probe-trip").finish();
    let mut probes = 0;
    for r in &racers {
        probes += r
            .lines_until("closed", PATIENCE)
            .iter()
            .filter(|l| l.is("probe"))
            .count();
    }
    for r in racers {
        r.finish();
    }
    assert_eq!(probes, 2);
}

#[test]
fn store_conformance_memory_single_redis_and_cluster() {
    let _serial = serial();
    // Memory: no Redis configured, `store = "redis"` breakers keep their state in the process.
    let memory = spawn_env("conformance", &[]);
    memory.expect("conformant", PATIENCE);
    memory.finish();
    let redis = RedisServer::start();
    let single = spawn(&redis, "conformance");
    single.expect("conformant", PATIENCE);
    single.finish();
    let cluster = RedisCluster::start();
    let clustered = spawn_cluster(&cluster, "conformance");
    clustered.expect("conformant", PATIENCE);
    clustered.finish();
}

#[test]
fn redis_down_at_start_then_up_fails_no_call() {
    let _serial = serial();
    let port = breaker_tests::free_port();
    let app = spawn_env(
        "steady",
        &[("BREAKER_REDIS_URL", &format!("redis://127.0.0.1:{port}/"))],
    );
    app.expect("ready", PATIENCE);
    // Longer than `store_down_after` (1 s): an outage, reported (a shorter one is not news).
    std::thread::sleep(Duration::from_millis(2000));
    let redis = RedisServer::start_on(port);
    let (errors, slowest, health) = steady_report(&app);
    app.finish();
    assert_eq!(errors, 0);
    assert!(slowest < 100_000, "a call waited {slowest} µs");
    // Local mode from the start (reported), then shared once Redis is up.
    assert_eq!(health, "[false, true]");
    drop(redis);
}

/// A CA and a server certificate for 127.0.0.1, made with the `openssl` command.
fn tls_certs(dir: &std::path::Path) -> [String; 3] {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (apt-get install openssl)")
            .success();
        assert!(ok, "openssl {args:?} failed");
    };
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=breaker-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    ["ca.crt", "server.crt", "server.key"].map(|f| dir.join(f).display().to_string())
}

#[test]
fn tls_and_password_in_the_url() {
    let _serial = serial();
    let scratch = Scratch::new("tls");
    let [ca, crt, key] = tls_certs(scratch.dir());
    let tls_port = breaker_tests::free_port().to_string();
    let redis = RedisServer::start_with(
        breaker_tests::free_port(),
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &crt,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "s3cret",
        ],
    );
    let url = format!("rediss://:s3cret@127.0.0.1:{tls_port}/");
    let env = [
        ("BREAKER_REDIS_URL", url.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
    ];
    // Propagation needs the shared state: it only works if TLS and the password do.
    let watcher = spawn_env("watch", &env);
    watcher.expect("ready", PATIENCE);
    let tripper = spawn_env("trip", &env);
    tripper.expect("tripped", PATIENCE);
    watcher.expect("open", PATIENCE);
    tripper.finish();
    watcher.finish();
    spawn_env("expect-open", &env).finish();
    drop(redis);
    drop(scratch);
}

#[test]
fn forced_state_survives_redis_restarting_empty() {
    let _serial = serial();
    let mut redis = RedisServer::start();
    let port = redis.port();
    let holder = spawn(&redis, "hold-forced");
    holder.expect("forced", PATIENCE);
    redis.kill();
    drop(redis);
    let redis = RedisServer::start_on(port);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let key = format!("HGET {} forced", keys(&redis).breaker(NAME).state);
    while redis.command(&key).as_deref() != Some("$4") {
        assert!(
            std::time::Instant::now() < deadline,
            "the forced state was not written back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    spawn(&redis, "expect-open").finish();
    holder.finish();
}

#[test]
fn slow_traffic_still_recovers_through_fleet_probes() {
    let _serial = serial();
    let redis = RedisServer::start();
    let i = spawn(&redis, "slow-recovery");
    i.expect("recovered", PATIENCE);
    i.finish();
}

#[test]
fn half_open_probing_runs_locally_while_redis_is_down() {
    let _serial = serial();
    let mut redis = RedisServer::start();
    let i = spawn(&redis, "local-probe");
    i.expect("open", PATIENCE);
    redis.kill();
    i.expect("recovered", PATIENCE);
    i.finish();
}

/// Redis says OPEN until far in the future (a clock that jumped, foreign data): the time is
/// clamped to what this opening can last (`open_for`), not trusted.
#[test]
fn an_absurd_open_until_from_redis_is_clamped() {
    let _serial = serial();
    let redis = RedisServer::start();
    let key = keys(&redis).breaker("fleet.probe").state;
    let now_ms = unix_ms();
    let far = now_ms + 1_000_000_000;
    assert_eq!(
        redis
            .command(&format!(
                "HSET {key} state open gen 5 opens 1 open_until {far} forced \"\""
            ))
            .as_deref(),
        Some(":5")
    );
    let i = spawn(&redis, "absurd-open");
    let closed = i.expect("closed", PATIENCE);
    let closed = closed.rest();
    i.finish();
    assert!(
        closed.starts_with("true"),
        "it started OPEN from Redis: {closed}"
    );
}

/// Numbers under a breaker's key that are not digits (an exponent, `inf`, `nan`) are somebody
/// else's data: a `StoreError`, never a long loop inside Redis, and calls go on.
#[test]
fn malformed_numbers_under_the_key_are_refused() {
    let _serial = serial();
    for (field, value) in [("opens", "1e12"), ("open_until", "inf"), ("gen", "nan")] {
        let redis = RedisServer::start();
        let key = keys(&redis).breaker(NAME).state;
        assert_eq!(
            redis
                .command(&format!("HSET {key} state open {field} {value}"))
                .as_deref(),
            Some(":2"),
            "{field}"
        );
        let started = std::time::Instant::now();
        let i = spawn(&redis, "malformed");
        i.expect("reported", PATIENCE);
        i.finish();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{field}={value}"
        );
        // Redis itself was never stuck in a script.
        assert_eq!(redis.command("PING").as_deref(), Some("+PONG"));
    }
}
