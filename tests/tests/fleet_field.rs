//! Field scenarios of `store = "redis"`: what a fleet meets in production rather than on a
//! bench. Low and bursty traffic in HALF_OPEN, Redis restored from an older snapshot, `FLUSHALL`
//! under an operator's forced state, and a short Redis stall.
//!
//! The harness of `breaker_tests::fleet`, as in `redis_fleet.rs`: the parent test starts its
//! own `redis-server` and re-runs this test binary as child processes (the `field_child` entry,
//! with `FIELD_ROLE` set), each one an instance of the application, and reads their `@tag`
//! lines on stdout. The provider every instance calls is down while the file named by
//! `FIELD_DOWN_FILE` exists. Children time every line with the wall clock (unix ms), so the
//! parent can compare them with its own moments.

use std::path::Path;
use std::time::{Duration, Instant};

use breaker_runtime::redis::Keys;
use breaker_runtime::{EventKind, Forced, Handle, State, breaker, breakers, circuit_breaker};
use breaker_tests::fleet::{
    self, Instance, Line, Scratch, Spawn, Stopped, report, serial, unix_ms,
};
use breaker_tests::{Recorder, RedisServer, TestError};

const ROLE: &str = "FIELD_ROLE";
/// The provider fails while this file exists.
const DOWN_FILE: &str = "FIELD_DOWN_FILE";
/// The burst role reads the unix ms of its one call from this file, once it appears.
const GO_FILE: &str = "FIELD_GO_FILE";
/// Which breaker a role drives.
const BREAKER: &str = "FIELD_BREAKER";
/// The recover role calls once per this many ms.
const PERIOD_MS: &str = "FIELD_PERIOD_MS";
/// Set on the one instance that resets (snapshot role) or forces open (forced role).
const LEADER: &str = "FIELD_LEADER";

const RECOVER: &str = "field.recover";
const RECOVER_TIMED: &str = "field.recover_timed";
const SNAPSHOT: &str = "field.snapshot";
const FORCED: &str = "field.forced";
const STEADY: &str = "field.steady";

/// `open_for` of `field.recover` and `field.recover_timed`, in ms.
const RECOVER_OPEN_FOR_MS: u128 = 2000;
/// `open_for` of `field.snapshot`, in ms.
const SNAPSHOT_OPEN_FOR_MS: u128 = 5000;
/// How long the parent waits for a line: every child ends on its own well before.
const PATIENCE: Duration = Duration::from_secs(60);

fn provider_down() -> bool {
    std::env::var_os(DOWN_FILE).is_some_and(|f| Path::new(&f).exists())
}

/// The provider's body: a call that runs while the breaker is HALF_OPEN is a probe.
fn provider(name: &'static str) -> Result<u32, TestError> {
    let now = unix_ms();
    if breaker(name).is_some_and(|h| h.state() == State::HalfOpen) {
        report("probe", format_args!("{} {now}", std::process::id()));
    }
    report("call", format_args!("primary {now}"));
    if provider_down() {
        Err(TestError::Down(name))
    } else {
        Ok(1)
    }
}

/// Every breaker's fallback: answers 0 (the provider answers 1).
async fn served_by_fallback() -> Result<u32, TestError> {
    report("call", format_args!("fallback {}", unix_ms()));
    Ok(0)
}

#[circuit_breaker(
    name = "field.recover",
    fallback = served_by_fallback,
    threshold = 2,
    window = "60s",
    open_for = "2s",
    half_open_probes = 1,
    store = "redis"
)]
async fn recover() -> Result<u32, TestError> {
    provider(RECOVER)
}

#[circuit_breaker(
    name = "field.recover_timed",
    fallback = served_by_fallback,
    threshold = 2,
    window = "60s",
    open_for = "2s",
    timeout = "200ms",
    half_open_probes = 1,
    store = "redis"
)]
async fn recover_timed() -> Result<u32, TestError> {
    provider(RECOVER_TIMED)
}

#[circuit_breaker(
    name = "field.snapshot",
    fallback = served_by_fallback,
    threshold = 2,
    window = "60s",
    open_for = "5s",
    half_open_probes = 1,
    store = "redis"
)]
async fn snapshot() -> Result<u32, TestError> {
    provider(SNAPSHOT)
}

#[circuit_breaker(
    name = "field.forced",
    fallback = served_by_fallback,
    threshold = 2,
    window = "60s",
    open_for = "2s",
    store = "redis"
)]
async fn forced() -> Result<u32, TestError> {
    provider(FORCED)
}

/// Always up, and silent (no line per call: nothing but the call itself is timed).
async fn steady_fallback() -> Result<u32, TestError> {
    Ok(0)
}

#[circuit_breaker(
    name = "field.steady",
    fallback = steady_fallback,
    threshold = 5,
    window = "60s",
    open_for = "2s",
    store = "redis"
)]
async fn steady() -> Result<u32, TestError> {
    Ok(1)
}

async fn call(name: &str) -> Result<u32, TestError> {
    match name {
        RECOVER => recover().await,
        RECOVER_TIMED => recover_timed().await,
        SNAPSHOT => snapshot().await,
        FORCED => forced().await,
        STEADY => steady().await,
        other => panic!("no breaker {other} in this file"),
    }
}

/// The breaker named by `FIELD_BREAKER`, as the `&'static str` the registry knows.
fn breaker_from_env() -> &'static str {
    let name = std::env::var(BREAKER).expect("FIELD_BREAKER");
    [RECOVER, RECOVER_TIMED, SNAPSHOT, FORCED, STEADY]
        .into_iter()
        .find(|n| *n == name)
        .unwrap_or_else(|| panic!("no breaker {name} in this file"))
}

/// A uniformly drawn duration in `[0, below)`, different in every process.
fn random_below(below: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ms = u64::try_from(below.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(unix_ms());
    Duration::from_millis(h.finish() % ms)
}

/// Polls a breaker's state and prints `@state <STATE> <unix ms>` at every change it sees.
struct Watch {
    h: Handle,
    last: Option<State>,
}

impl Watch {
    fn new(h: Handle) -> Watch {
        let mut w = Watch { h, last: None };
        w.poll();
        w
    }

    fn poll(&mut self) -> State {
        let s = self.h.state();
        if self.last != Some(s) {
            report("state", format_args!("{} {}", s.as_str(), unix_ms()));
            self.last = Some(s);
        }
        s
    }

    /// Waits (polling every ms) until the breaker is no longer CLOSED.
    async fn until_not_closed(&mut self, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        while self.poll() == State::Closed {
            assert!(Instant::now() < deadline, "never saw the fleet open");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Instant::now()
    }
}

/// Every recorded event that `keep` selects, over the store's own events (breaker `""`) and
/// every breaker of the process, as `name: Debug` lines.
fn recorded(rec: &Recorder, keep: impl Fn(&EventKind) -> bool) -> Vec<String> {
    let mut names = vec![""];
    names.extend(breakers().iter().map(Handle::name));
    let mut out = Vec::new();
    for name in names {
        for kind in rec.events(name) {
            if keep(&kind) {
                out.push(format!("{name}: {kind:?}"));
            }
        }
    }
    out
}

/// The child entry point: does nothing unless run by a parent test with `FIELD_ROLE` set.
#[test]
fn field_child() {
    let Some(role) = fleet::role(ROLE) else {
        return;
    };
    let rec = Recorder::install();
    fleet::run(async {
        match role.as_str() {
            // Watches the fleet open, then calls once every FIELD_PERIOD_MS (first call at a
            // random offset) and watches the state every 5 ms, until it has seen CLOSED for 1 s
            // or the parent's bound (open_for + period + 1 s after recovery) is well past.
            "recover" => {
                let name = breaker_from_env();
                let period: u64 = std::env::var(PERIOD_MS).unwrap().parse().unwrap();
                let period = Duration::from_millis(period);
                let h = breaker(name).unwrap();
                let mut watch = Watch::new(h);
                report("ready", "");
                let opened = watch.until_not_closed(Duration::from_secs(15)).await;
                report("open", unix_ms());
                let deadline = opened + h.config().open_for + period + Duration::from_secs(2);
                let mut next = Instant::now() + random_below(period);
                let mut closed: Option<Instant> = None;
                loop {
                    let now = Instant::now();
                    if now >= deadline || closed.is_some_and(|t| now >= t + Duration::from_secs(1))
                    {
                        break;
                    }
                    if now >= next {
                        let _ = call(name).await;
                        while next <= Instant::now() {
                            next += period;
                        }
                    }
                    if watch.poll() == State::Closed && closed.is_none() {
                        closed = Some(Instant::now());
                    }
                    let wait = next
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(5));
                    tokio::time::sleep(wait).await;
                }
                report("done", format_args!("at={}", unix_ms()));
            }
            // Trips the fleet: `threshold` failures while the provider is down.
            "trip" => {
                let name = breaker_from_env();
                let h = breaker(name).unwrap();
                assert!(provider_down(), "the tripper needs the provider down");
                for _ in 0..h.config().threshold {
                    let _ = call(name).await;
                }
                assert_eq!(h.state(), State::Open, "the tripper did not trip");
                report("tripped", unix_ms());
                // Stays up while the flush goes out.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // Watches the fleet open, then makes exactly one call at the moment the parent
            // writes into FIELD_GO_FILE (unix ms), then watches the state for 3 s.
            "burst" => {
                let name = breaker_from_env();
                let h = breaker(name).unwrap();
                let mut watch = Watch::new(h);
                report("ready", "");
                watch.until_not_closed(Duration::from_secs(15)).await;
                report("open", unix_ms());
                let go = std::env::var_os(GO_FILE).unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                let at: u128 = loop {
                    if let Ok(s) = std::fs::read_to_string(&go)
                        && let Ok(at) = s.trim().parse()
                    {
                        break at;
                    }
                    assert!(Instant::now() < deadline, "no go from the parent");
                    watch.poll();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                let wait = u64::try_from(at.saturating_sub(unix_ms())).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(wait)).await;
                let _ = call(name).await;
                let called = Instant::now();
                while called.elapsed() < Duration::from_secs(3) {
                    if watch.poll() == State::Closed {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                report("done", format_args!("at={}", unix_ms()));
            }
            // Calls every 20 ms; the leader resets first (so Redis holds an explicit CLOSED
            // record). Runs until 4.5 s after it saw the fleet open, then reports the
            // StoreReset events it heard.
            "snapshot" => {
                let h = breaker(SNAPSHOT).unwrap();
                if std::env::var_os(LEADER).is_some() {
                    h.reset().await.unwrap();
                }
                let mut watch = Watch::new(h);
                assert_eq!(snapshot().await, Ok(1));
                report("ready", "");
                let mut end = Instant::now() + Duration::from_secs(30);
                let mut opened = false;
                let mut next = Instant::now();
                while Instant::now() < end {
                    if Instant::now() >= next {
                        let _ = snapshot().await;
                        next = Instant::now() + Duration::from_millis(20);
                    }
                    if !opened && watch.poll() != State::Closed {
                        opened = true;
                        report("open", unix_ms());
                        end = Instant::now() + Duration::from_millis(4500);
                    }
                    watch.poll();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Every close after the fleet opened, however short (the 5 ms polls may miss
                // one that the next failures re-open at once).
                let closes = rec
                    .transitions(SNAPSHOT)
                    .into_iter()
                    .skip_while(|(_, to)| *to != State::Open)
                    .filter(|(_, to)| *to == State::Closed)
                    .count();
                let resets = recorded(&rec, |k| format!("{k:?}").contains("StoreReset"));
                report(
                    "done",
                    format_args!(
                        "at={} closes={closes} store_reset={} events={resets:?}",
                        unix_ms(),
                        resets.len()
                    ),
                );
            }
            // The leader forces the breaker open; every instance then calls every 5 ms for 3 s
            // and prints `@unforced` whenever it finds the breaker not forced open.
            "forced" => {
                let h = breaker(FORCED).unwrap();
                if std::env::var_os(LEADER).is_some() {
                    assert_eq!(forced().await, Ok(1));
                    h.force_open().await.unwrap();
                } else {
                    // The leader may have forced the fleet open already.
                    let _ = forced().await;
                }
                report("ready", "");
                let deadline = Instant::now() + Duration::from_secs(10);
                while h.forced() != Some(Forced::Open) {
                    assert!(Instant::now() < deadline, "never saw the forced state");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                report("forced", unix_ms());
                let mut watch = Watch::new(h);
                // Long enough for at least two checks of the fleet marker (every 2 s) after the
                // parent's FLUSHALL: the write-back the later newcomer relies on comes from
                // one of them (with one check in the window, a busy machine could miss it).
                let end = Instant::now() + Duration::from_secs(6);
                let mut was_forced = true;
                while Instant::now() < end {
                    let _ = forced().await;
                    let f = h.forced();
                    if f != Some(Forced::Open) && was_forced {
                        report("unforced", format_args!("{f:?} {}", unix_ms()));
                    }
                    was_forced = f == Some(Forced::Open);
                    watch.poll();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                report("done", format_args!("at={}", unix_ms()));
            }
            // A new instance: its first call, its forced state before and after it, and how
            // long after its start it was forced open (polled for up to 1 s).
            "forced-new" => {
                let start = Instant::now();
                let h = breaker(FORCED).unwrap();
                let before = h.forced();
                let served = match forced().await {
                    Ok(1) => "primary",
                    Ok(_) => "fallback",
                    Err(_) => "error",
                };
                let after = h.forced();
                while h.forced() != Some(Forced::Open) && start.elapsed() < Duration::from_secs(5) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let forced_after = if h.forced() == Some(Forced::Open) {
                    start.elapsed().as_millis().to_string()
                } else {
                    "never".to_owned()
                };
                report(
                    "first",
                    format_args!(
                        "{served} before={before:?} after={after:?} forced_after_ms={forced_after}"
                    ),
                );
            }
            // Calls every 5 ms for 3 s (the provider is up); reports errors (anything but the
            // provider's answer), the slowest call, and the StoreHealth events.
            "steady" => {
                assert_eq!(steady().await, Ok(1));
                report("ready", "");
                let mut errors = 0u32;
                let mut calls = 0u32;
                let mut slowest = Duration::ZERO;
                let end = Instant::now() + Duration::from_secs(3);
                while Instant::now() < end {
                    let t = Instant::now();
                    let r = steady().await;
                    slowest = slowest.max(t.elapsed());
                    calls += 1;
                    if r != Ok(1) {
                        errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let health = recorded(&rec, |k| matches!(k, EventKind::StoreHealth { .. }));
                report(
                    "done",
                    format_args!(
                        "errors={errors} calls={calls} slowest_us={} health={health:?}",
                        slowest.as_micros()
                    ),
                );
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// What one instance printed.
#[derive(Debug, Default)]
struct Report {
    primary: Vec<u128>,
    fallback: Vec<u128>,
    probes: Vec<u128>,
    /// Every state change it saw, in order.
    states: Vec<(String, u128)>,
    unforced: Vec<String>,
    /// The rest of the `@done` line.
    done: String,
}

impl Report {
    fn parse(lines: &[Line]) -> Report {
        let mut r = Report::default();
        for line in lines {
            let tag = line.tag();
            let words: Vec<&str> = line.words().collect();
            let time = |i: usize| words.get(i).and_then(|w| w.parse::<u128>().ok());
            match (tag, words.first().copied()) {
                ("call", Some("primary")) => r.primary.extend(time(1)),
                ("call", Some("fallback")) => r.fallback.extend(time(1)),
                ("probe", _) => r.probes.extend(time(1)),
                ("state", Some(s)) => {
                    if let Some(t) = time(1) {
                        r.states.push((s.to_owned(), t));
                    }
                }
                ("unforced", _) => r.unforced.push(words.join(" ")),
                ("done", _) => r.done = words.join(" "),
                _ => {}
            }
        }
        r
    }

    /// When it first saw CLOSED after having seen OPEN or HALF_OPEN.
    fn closed_after_open(&self) -> Option<u128> {
        self.closings().into_iter().next()
    }

    /// Every time it saw CLOSED again after OPEN or HALF_OPEN.
    fn closings(&self) -> Vec<u128> {
        let mut was_open = false;
        let mut out = Vec::new();
        for (s, t) in &self.states {
            if s == "CLOSED" {
                if was_open {
                    out.push(*t);
                }
                was_open = false;
            } else {
                was_open = true;
            }
        }
        out
    }

    /// A `key=value` field of the `@done` line (not the last, free-form one).
    fn field(&self, key: &str) -> Option<&str> {
        self.done
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}

/// States seen, as `STATE@<ms relative to base>`.
fn relative(states: &[(String, u128)], base: u128) -> Vec<String> {
    states
        .iter()
        .map(|(s, t)| {
            let d = i128::try_from(*t).unwrap() - i128::try_from(base).unwrap();
            format!("{s}@{d:+}")
        })
        .collect()
}

/// Starts one instance of the application in `role`, sharing `redis` under `prefix`.
fn spawn(
    label: impl Into<String>,
    redis: &RedisServer,
    prefix: &str,
    role: &str,
    env: &[(&str, &str)],
) -> Instance {
    Spawn::new("field_child", ROLE, role)
        .label(label)
        .env("BREAKER_REDIS_URL", redis.url())
        .env("BREAKER_KEY_PREFIX", prefix)
        .envs(env.iter().copied())
        .start()
}

/// Everything the instance printed, up to and with `@done`.
fn read_report(i: &Instance) -> Report {
    i.expect("done", PATIENCE);
    Report::parse(&i.lines())
}

/// Trips the fleet of `name` with a separate instance, waits until every instance of `fleet`
/// has seen it open, and removes the down file at once: the provider has recovered. Their
/// `@open` times, and the moment of the recovery.
fn trip_then_recover(
    redis: &RedisServer,
    prefix: &str,
    name: &str,
    down: &Path,
    fleet: &[Instance],
) -> (Vec<u128>, u128) {
    let down_s = down.display().to_string();
    let tripper = spawn(
        "tripper",
        redis,
        prefix,
        "trip",
        &[(DOWN_FILE, &down_s), (BREAKER, name)],
    );
    tripper.expect("tripped", PATIENCE);
    let opened = fleet
        .iter()
        .map(|i| i.expect("open", PATIENCE).rest().parse().unwrap())
        .collect();
    let recovered = unix_ms();
    std::fs::remove_file(down).unwrap();
    tripper.finish();
    (opened, recovered)
}

/// 6 instances, each calling once every `period_ms`; the fleet opened with the provider down,
/// then the provider recovers. Every instance must see CLOSED within `open_for + period + 1 s`
/// of the recovery, after exactly one probe in the fleet. The problems found, if any.
fn recovery_at(redis: &RedisServer, name: &str, period_ms: u64) -> Vec<String> {
    let tag = format!("{name}-{period_ms}");
    let scratch = Scratch::new(&format!("field-{tag}"));
    let down = scratch.path("down");
    fleet::touch(&down);
    let down_s = down.display().to_string();
    let period_s = period_ms.to_string();
    let prefix = format!("field-{}-{tag}", redis.port());
    let env = [
        (DOWN_FILE, down_s.as_str()),
        (BREAKER, name),
        (PERIOD_MS, period_s.as_str()),
    ];
    let fleet: Vec<Instance> = (0..6)
        .map(|i| spawn(format!("instance {i}"), redis, &prefix, "recover", &env))
        .collect();
    for i in &fleet {
        i.expect("ready", PATIENCE);
    }
    let (_, recovered) = trip_then_recover(redis, &prefix, name, &down, &fleet);
    let reports: Vec<Report> = fleet.iter().map(read_report).collect();
    for i in fleet {
        i.finish();
    }
    let bound = RECOVER_OPEN_FOR_MS + u128::from(period_ms) + 1000;
    let mut problems = Vec::new();
    let head = format!("{name}, one call every {period_ms} ms");
    for (i, r) in reports.iter().enumerate() {
        let after = |v: &[u128]| v.iter().filter(|t| **t >= recovered).count();
        match r.closed_after_open() {
            Some(t) if t.saturating_sub(recovered) <= bound => {}
            Some(t) => problems.push(format!(
                "{head}: instance {i} saw CLOSED {} ms after the provider recovered (bound {bound} ms)",
                t.saturating_sub(recovered)
            )),
            None => problems.push(format!(
                "{head}: instance {i} never saw CLOSED (watched for {} ms after the provider \
                 recovered, bound {bound} ms; {} calls served by the fallback and {} by the \
                 provider after recovery; states seen, ms after recovery: {:?})",
                r.field("at")
                    .and_then(|a| a.parse::<u128>().ok())
                    .map_or(0, |a| a.saturating_sub(recovered)),
                after(&r.fallback),
                after(&r.primary),
                relative(&r.states, recovered)
            )),
        }
    }
    let probes: usize = reports.iter().map(|r| r.probes.len()).sum();
    let last_closed = reports
        .iter()
        .filter_map(Report::closed_after_open)
        .max()
        .map(|t| t.saturating_sub(recovered));
    println!(
        "{head}: {probes} probes; {} of 6 instances saw CLOSED, the last {last_closed:?} ms \
         after the recovery (bound {bound} ms)",
        reports.iter().filter_map(Report::closed_after_open).count()
    );
    if probes != 1 {
        problems.push(format!(
            "{head}: {probes} probe calls across the 6 instances, want exactly 1 \
             (half_open_probes = 1, and the first probe succeeds)"
        ));
    }
    problems
}

fn recovery_at_rates(name: &str, periods_ms: &[u64]) {
    let _serial = serial();
    let redis = RedisServer::start();
    let mut problems = Vec::new();
    for &period in periods_ms {
        let started = Instant::now();
        let found = recovery_at(&redis, name, period);
        println!(
            "{name} at one call every {period} ms: {} ({:?})",
            if found.is_empty() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "the fleet did not recover as it should:\n{}",
        problems.join("\n")
    );
}

#[test]
fn low_traffic_recovers_at_every_rate() {
    recovery_at_rates(RECOVER, &[10, 300, 1000, 3000]);
}

#[test]
fn low_traffic_recovers_at_every_rate_with_timeout() {
    recovery_at_rates(RECOVER_TIMED, &[10, 300, 1000, 3000]);
}

#[test]
fn one_call_every_10s_still_recovers() {
    recovery_at_rates(RECOVER, &[10_000]);
}

/// 8 instances; the fleet open, the provider recovered; after `open_for` each instance makes
/// exactly one call at the same moment. Exactly one of them probes, and the fleet closes.
fn burst(name: &str) {
    let _serial = serial();
    let redis = RedisServer::start();
    let scratch = Scratch::new(&format!("field-burst-{name}"));
    let down = scratch.path("down");
    let go = scratch.path("go");
    fleet::touch(&down);
    let (down_s, go_s) = (down.display().to_string(), go.display().to_string());
    let prefix = format!("field-{}-burst", redis.port());
    let env = [
        (DOWN_FILE, down_s.as_str()),
        (GO_FILE, go_s.as_str()),
        (BREAKER, name),
    ];
    let fleet: Vec<Instance> = (0..8)
        .map(|i| spawn(format!("instance {i}"), &redis, &prefix, "burst", &env))
        .collect();
    for i in &fleet {
        i.expect("ready", PATIENCE);
    }
    let (opened, _) = trip_then_recover(&redis, &prefix, name, &down, &fleet);
    let at = opened.iter().max().unwrap() + RECOVER_OPEN_FOR_MS + 300;
    scratch.publish("go", &at.to_string());
    let reports: Vec<Report> = fleet.iter().map(read_report).collect();
    for i in fleet {
        i.finish();
    }
    let mut problems = Vec::new();
    let probes: usize = reports.iter().map(|r| r.probes.len()).sum();
    if probes != 1 {
        problems.push(format!(
            "{probes} probe calls among the 8 simultaneous calls, want exactly 1 (half_open_probes = 1)"
        ));
    }
    for (i, r) in reports.iter().enumerate() {
        if r.closed_after_open().is_none() {
            problems.push(format!(
                "instance {i} never saw CLOSED within 3 s of its call (its call: {} by the \
                 provider, {} by the fallback; states seen, ms after the go: {:?})",
                r.primary.iter().filter(|t| **t >= at).count(),
                r.fallback.iter().filter(|t| **t >= at).count(),
                relative(&r.states, at)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{name}, burst of 8 calls after open_for:\n{}",
        problems.join("\n")
    );
}

#[test]
fn burst_after_open_for_probes_once_and_closes() {
    burst(RECOVER);
}

#[test]
fn burst_after_open_for_probes_once_and_closes_with_timeout() {
    burst(RECOVER_TIMED);
}

#[test]
fn redis_restored_from_an_older_snapshot_keeps_the_fleet_open() {
    let _serial = serial();
    let scratch = Scratch::new("field-snapshot");
    let down = scratch.path("down");
    let down_s = down.display().to_string();
    let mut redis = RedisServer::start();
    let port = redis.port();
    // The formula of `RedisServer::start_with`: the same for the same port in this process.
    let redis_dir =
        std::env::temp_dir().join(format!("breaker-redis-{port}-{}", std::process::id()));
    let prefix = format!("field-{port}-snapshot");
    let state_key = Keys::new(&prefix).breaker(SNAPSHOT).state;
    // The leader resets first: Redis holds an explicit CLOSED record of the fleet.
    let mut fleet = vec![spawn(
        "instance 0",
        &redis,
        &prefix,
        "snapshot",
        &[(DOWN_FILE, &down_s), (LEADER, "1")],
    )];
    fleet[0].expect("ready", PATIENCE);
    for i in 1..3 {
        fleet.push(spawn(
            format!("instance {i}"),
            &redis,
            &prefix,
            "snapshot",
            &[(DOWN_FILE, &down_s)],
        ));
    }
    for i in &fleet[1..] {
        i.expect("ready", PATIENCE);
    }
    assert_eq!(
        redis.command(&format!("HGET {state_key} state")).as_deref(),
        Some("$6"),
        "the snapshot must hold the fleet's CLOSED record"
    );
    assert_eq!(redis.command("SAVE").as_deref(), Some("+OK"));
    let saved = scratch.path("older.rdb");
    std::fs::copy(redis_dir.join("dump.rdb"), &saved)
        .expect("SAVE writes dump.rdb into the server's --dir");
    // The provider goes down: the fleet opens.
    fleet::touch(&down);
    let opened: Vec<u128> = fleet
        .iter()
        .map(|i| i.expect("open", PATIENCE).rest().parse().unwrap())
        .collect();
    let tripped = *opened.iter().min().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        redis.command(&format!("HGET {state_key} state")).as_deref(),
        Some("$4"),
        "the fleet is OPEN in Redis before the restore"
    );
    // Redis comes back from the older snapshot; the provider stays down.
    redis.kill();
    drop(redis);
    std::fs::create_dir_all(&redis_dir).unwrap();
    std::fs::copy(&saved, redis_dir.join("older.rdb")).unwrap();
    let restarted = unix_ms();
    let redis = RedisServer::start_with(port, &["--dbfilename", "older.rdb"]);
    assert_eq!(
        redis.command(&format!("EXISTS {state_key}")).as_deref(),
        Some(":1"),
        "Redis came back from the snapshot, not empty"
    );
    let reports: Vec<Report> = fleet.iter().map(read_report).collect();
    for i in fleet {
        i.finish();
    }
    let window_end = restarted + 3000;
    let open_ends = tripped + SNAPSHOT_OPEN_FOR_MS;
    let mut problems = Vec::new();
    let mut probes_after_open_for = 0;
    for (i, r) in reports.iter().enumerate() {
        let done_at: u128 = r.field("at").and_then(|a| a.parse().ok()).unwrap_or(0);
        assert!(
            done_at >= window_end,
            "instance {i} stopped watching before the 3 s after the restart were over"
        );
        let in_window: Vec<u128> = r
            .primary
            .iter()
            .copied()
            .filter(|t| (restarted..=window_end).contains(t))
            .collect();
        let early: Vec<u128> = in_window
            .iter()
            .copied()
            .filter(|t| *t < open_ends)
            .collect();
        probes_after_open_for += in_window.len() - early.len();
        if !early.is_empty() {
            problems.push(format!(
                "instance {i} called the provider {} times in the 3 s after the restore, before \
                 open_for was over (ms after the restart: {:?})",
                early.len(),
                early
                    .iter()
                    .take(10)
                    .map(|t| t - restarted)
                    .collect::<Vec<_>>()
            ));
        }
        let closings: Vec<u128> = r.closings();
        let closes: usize = r.field("closes").and_then(|n| n.parse().ok()).unwrap_or(0);
        if closes > 0 || !closings.is_empty() {
            problems.push(format!(
                "instance {i} closed {closes} times with the provider down (seen by its 5 ms \
                 polls at {:?} ms after the restart; states seen: {:?})",
                closings
                    .iter()
                    .map(|t| t.saturating_sub(restarted))
                    .collect::<Vec<_>>(),
                relative(&r.states, restarted)
            ));
        }
    }
    if probes_after_open_for > 1 {
        problems.push(format!(
            "{probes_after_open_for} provider calls after open_for in the 3 s after the restore, \
             want at most 1 (half_open_probes = 1)"
        ));
    }
    let resets: usize = reports
        .iter()
        .map(|r| {
            r.field("store_reset")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum();
    if resets != 1 {
        problems.push(format!(
            "{resets} StoreReset alerts across the fleet, want exactly 1 (events: {:?})",
            reports
                .iter()
                .map(|r| r.done.split_once("events=").map_or("", |(_, e)| e))
                .collect::<Vec<_>>()
        ));
    }
    assert!(
        problems.is_empty(),
        "Redis restored from a snapshot older than the OPEN state:\n{}",
        problems.join("\n")
    );
    drop(redis);
}

#[test]
fn flushall_while_forced_open_keeps_every_instance_forced_open() {
    let _serial = serial();
    let redis = RedisServer::start();
    let prefix = format!("field-{}-forced", redis.port());
    let fleet: Vec<Instance> = (0..3)
        .map(|i| {
            let env: &[(&str, &str)] = if i == 0 { &[(LEADER, "1")] } else { &[] };
            spawn(format!("instance {i}"), &redis, &prefix, "forced", env)
        })
        .collect();
    for i in &fleet {
        i.expect("ready", PATIENCE);
    }
    let forced_at: Vec<u128> = fleet
        .iter()
        .map(|i| i.expect("forced", PATIENCE).rest().parse().unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(redis.command("FLUSHALL").as_deref(), Some("+OK"));
    let flushed = unix_ms();
    let mut problems = Vec::new();
    // An instance that starts at once may sync before any instance has written the forced
    // state back (nothing in an empty Redis tells it): it must be forced open soon after, once
    // an old instance's check of the fleet marker (every 2 s) has found Redis behind and
    // every instance re-synced, writing the state back.
    let racing = spawn("racing newcomer", &redis, &prefix, "forced-new", &[]);
    let first = racing.expect("first", PATIENCE).rest().to_owned();
    racing.finish();
    println!("a newcomer started at once after FLUSHALL: {first}");
    let converged = first
        .split_once("forced_after_ms=")
        .and_then(|(_, ms)| ms.trim().parse::<u64>().ok());
    if converged.is_none_or(|ms| ms > 3_500) {
        problems.push(format!(
            "a new instance started at once after FLUSHALL was not forced open within 3.5 s: {first}"
        ));
    }
    // The instances write the forced state back to Redis...
    let forced_key = format!("HGET {} forced", Keys::new(&prefix).breaker(FORCED).state);
    let deadline = Instant::now() + Duration::from_secs(2);
    while redis.command(&forced_key).as_deref() != Some("$4") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if redis.command(&forced_key).as_deref() != Some("$4") {
        problems.push(format!(
            "Redis does not hold the forced state 2 s after FLUSHALL: {:?}",
            redis.command(&forced_key)
        ));
    }
    // ...so an instance started afterwards starts forced open: its first call is rejected.
    std::thread::sleep(Duration::from_millis(500));
    let later = spawn("later newcomer", &redis, &prefix, "forced-new", &[]);
    let first = later.expect("first", PATIENCE).rest().to_owned();
    later.finish();
    println!("a newcomer started after the write-back: {first}");
    if !first.starts_with("fallback") || !first.contains("before=Some(Open)") {
        problems.push(format!(
            "a new instance started {} ms after FLUSHALL did not start forced open: first call {first}",
            unix_ms() - flushed
        ));
    }
    let reports: Vec<Report> = fleet.iter().map(read_report).collect();
    for i in fleet {
        i.finish();
    }
    for (i, r) in reports.iter().enumerate() {
        if !r.unforced.is_empty() {
            problems.push(format!(
                "instance {i} lost its forced state after FLUSHALL: {:?}",
                r.unforced
            ));
        }
        let called: Vec<u128> = r
            .primary
            .iter()
            .copied()
            .filter(|t| *t > forced_at[i])
            .collect();
        if !called.is_empty() {
            problems.push(format!(
                "instance {i} called the provider {} times while forced open (ms after FLUSHALL: {:?})",
                called.len(),
                called
                    .iter()
                    .take(10)
                    .map(|t| i128::try_from(*t).unwrap() - i128::try_from(flushed).unwrap())
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "FLUSHALL while forced open:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_300ms_redis_stall_does_not_switch_to_local_mode() {
    let _serial = serial();
    let redis = RedisServer::start();
    let prefix = format!("field-{}-stall", redis.port());
    let fleet: Vec<Instance> = (0..3)
        .map(|i| spawn(format!("instance {i}"), &redis, &prefix, "steady", &[]))
        .collect();
    for i in &fleet {
        i.expect("ready", PATIENCE);
    }
    std::thread::sleep(Duration::from_millis(800));
    {
        let _stopped = Stopped::new(redis.pid());
        std::thread::sleep(Duration::from_millis(300));
    }
    let reports: Vec<Report> = fleet.iter().map(read_report).collect();
    for i in fleet {
        i.finish();
    }
    let mut problems = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let errors: u32 = r.field("errors").unwrap().parse().unwrap();
        let slowest: u128 = r.field("slowest_us").unwrap().parse().unwrap();
        let health = r.done.split_once("health=").map_or("", |(_, h)| h);
        println!("instance {i}: {}", r.done);
        if errors > 0 {
            problems.push(format!(
                "instance {i}: {errors} calls not answered by the provider"
            ));
        }
        if slowest > 20_000 {
            problems.push(format!("instance {i}: a call took {slowest} µs"));
        }
        if health != "[]" {
            problems.push(format!("instance {i}: StoreHealth events {health}"));
        }
    }
    assert!(
        problems.is_empty(),
        "a 300 ms Redis stall (SIGSTOP, SIGCONT):\n{}",
        problems.join("\n")
    );
}
