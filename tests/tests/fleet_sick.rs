//! One sick instance among healthy ones: six instances share a real `redis-server` at steady
//! traffic (a call every 10 ms each); on one of them the primary always fails (a bad
//! deployment, a broken local dependency), on the other five it never does.
//!
//! The parent test starts Redis and re-runs this test binary as child processes (the
//! `sick_child` entry, with `SICK_ROLE` set), each one an instance of the application with
//! `BREAKER_REDIS_URL` and `BREAKER_KEY_PREFIX` set; every child waits for a go file, calls
//! its breaker for 4 s and reports its counts through a `@done` line on stdout.
//!
//! What is expected:
//! - the sick instance stops calling its primary within `threshold` calls (count rule), or
//!   about `min_calls` calls (rate rule), and then makes no primary call for its open period;
//! - with `quorum = 2` the sick instance alone does not open the fleet: the healthy instances
//!   call their primary for at least 99 % of their calls;
//! - with `quorum = 1` (the default) one instance's failures open the fleet (documented: the
//!   healthy instances see OPEN too).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breaker_runtime::{State, breaker, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Line, Scratch, Spawn, report, serial};
use breaker_tests::{RedisServer, TestError};

const ROLE: &str = "SICK_ROLE";
/// The breakers' `open_for`.
const OPEN_FOR: Duration = Duration::from_secs(3);
/// How long each instance calls.
const RUN: Duration = Duration::from_secs(4);
/// The part of the open period checked for primary calls, from the sick instance's first
/// rejected call (its trip is at most one call earlier).
const OPEN_CHECK: Duration = Duration::from_millis(2900);
const INSTANCES: usize = 6;

// ---------------------------------------------------------------------------------------------
// The child: one instance of the application.
// ---------------------------------------------------------------------------------------------

static PRIMARY: AtomicU64 = AtomicU64::new(0);
static FALLBACK: AtomicU64 = AtomicU64::new(0);

/// Whether this instance is the sick one (`SICK_FAIL=1`): its primary always fails.
fn sick() -> bool {
    static SICK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SICK.get_or_init(|| std::env::var("SICK_FAIL").is_ok_and(|v| v == "1"))
}

fn primary(seq: u64) -> Result<u64, TestError> {
    PRIMARY.fetch_add(1, Ordering::Relaxed);
    if sick() {
        Err(TestError::Down("primary"))
    } else {
        Ok(seq)
    }
}

async fn secondary(seq: u64) -> Result<u64, TestError> {
    FALLBACK.fetch_add(1, Ordering::Relaxed);
    Ok(seq)
}

#[circuit_breaker(
    name = "sick.q1",
    fallback = secondary,
    threshold = 5,
    window = "10s",
    open_for = "3s",
    store = "redis"
)]
async fn q1(seq: u64) -> Result<u64, TestError> {
    primary(seq)
}

#[circuit_breaker(
    name = "sick.q2",
    fallback = secondary,
    threshold = 5,
    window = "10s",
    open_for = "3s",
    quorum = 2,
    store = "redis"
)]
async fn q2(seq: u64) -> Result<u64, TestError> {
    primary(seq)
}

// `threshold = 1000`: the count rule's default (5) would trip this breaker (and the fleet) on
// the sick instance's first five failures, before the rate rule is ever consulted.
#[circuit_breaker(
    name = "sick.rate",
    fallback = secondary,
    threshold = 1000,
    failure_rate = 50,
    min_calls = 10,
    window = "10s",
    open_for = "3s",
    store = "redis"
)]
async fn rate(seq: u64) -> Result<u64, TestError> {
    primary(seq)
}

/// The child entry point: does nothing unless run by a parent test with `SICK_ROLE` set (to the
/// breaker to call: `sick.q1`, `sick.q2` or `sick.rate`).
#[test]
fn sick_child() {
    let Some(name) = fleet::role(ROLE) else {
        return;
    };
    fleet::run(steady(&name));
}

/// Waits for the go file, calls breaker `name` every 10 ms for [`RUN`], and reports.
async fn steady(name: &str) {
    // Creating the breaker attaches it to the store and learns the fleet's state.
    let h = breaker(name).expect("declared");
    let go = PathBuf::from(std::env::var_os("SICK_GO_FILE").expect("SICK_GO_FILE"));
    report("ready", "");
    fleet::wait_for_file(&go, Duration::from_secs(30)).await;
    if sick() && name == "sick.rate" {
        // The rate rule's case is a sick instance in a running fleet: its network breaks once
        // the fleet's window holds the others' calls. (At a fleet's very start, one instance's
        // failures can reach an empty window before the others' first successes, within one
        // 50 ms flush: README, known limits.)
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let start = Instant::now();
    // (time since start, whether the primary ran) for every call.
    let mut ticks: Vec<(Duration, bool)> = Vec::new();
    let (mut errors, mut slowest, mut saw_open) = (0u64, Duration::ZERO, false);
    let mut seen = State::Closed;
    let mut seq = 0;
    while start.elapsed() < RUN {
        let before = PRIMARY.load(Ordering::Relaxed);
        let t = Instant::now();
        let r = match name {
            "sick.q1" => q1(seq).await,
            "sick.q2" => q2(seq).await,
            "sick.rate" => rate(seq).await,
            other => panic!("unknown breaker {other}"),
        };
        slowest = slowest.max(t.elapsed());
        seq += 1;
        if r.is_err() {
            errors += 1;
        }
        ticks.push((t - start, PRIMARY.load(Ordering::Relaxed) > before));
        let state = h.state();
        saw_open |= state == State::Open;
        if state != seen {
            report(
                "state",
                format_args!("{} {state}", start.elapsed().as_millis()),
            );
            seen = state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let primary = ticks.iter().filter(|(_, p)| *p).count();
    let first_reject = ticks.iter().position(|(_, p)| !*p);
    let (first_reject_ms, before_reject, in_open) = match first_reject {
        Some(i) => {
            let at = ticks[i].0;
            let in_open = ticks[i..]
                .iter()
                .filter(|(t, p)| *p && *t < at + OPEN_CHECK)
                .count();
            (at.as_millis().to_string(), i, in_open.to_string())
        }
        None => ("none".to_owned(), primary, "none".to_owned()),
    };
    report(
        "done",
        format_args!(
            "calls={} primary={primary} fallback={} errors={errors} \
             first_reject_ms={first_reject_ms} primary_before_reject={before_reject} \
             primary_in_open={in_open} saw_open={saw_open} slowest_us={}",
            ticks.len(),
            FALLBACK.load(Ordering::Relaxed),
            slowest.as_micros()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// The parent's harness.
// ---------------------------------------------------------------------------------------------

/// Starts one instance of the application calling `breaker`, its `@` lines echoed as `[label]`.
fn spawn(label: String, breaker: &str, env: &[(&str, String)]) -> Instance {
    Spawn::new("sick_child", ROLE, breaker)
        .label(label)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .echo()
        .start()
}

/// Waits for the instance's `@done`, and for it to end well; its report.
fn finish(instance: Instance) -> Report {
    let line = instance.expect("done", RUN + Duration::from_secs(20));
    let label = instance.label().to_owned();
    instance.finish();
    Report::parse(&label, &line)
}

/// What an instance reported.
#[derive(Debug)]
struct Report {
    label: String,
    calls: u64,
    primary: u64,
    fallback: u64,
    errors: u64,
    /// When its first call was rejected (the primary not called), from the go.
    first_reject_ms: Option<u64>,
    /// Primary calls before its first rejected call.
    primary_before_reject: u64,
    /// Primary calls within [`OPEN_CHECK`] of its first rejected call.
    primary_in_open: Option<u64>,
    saw_open: bool,
    slowest_us: u64,
}

impl Report {
    fn parse(label: &str, line: &Line) -> Report {
        let field = |k: &str| {
            line.field(k)
                .unwrap_or_else(|| panic!("no {k} in {}", line.text))
                .to_owned()
        };
        let num = |k: &str| line.num::<u64>(k);
        let opt = |k: &str| field(k).parse::<u64>().ok();
        Report {
            label: label.to_owned(),
            calls: num("calls"),
            primary: num("primary"),
            fallback: num("fallback"),
            errors: num("errors"),
            first_reject_ms: opt("first_reject_ms"),
            primary_before_reject: num("primary_before_reject"),
            primary_in_open: opt("primary_in_open"),
            saw_open: field("saw_open") == "true",
            slowest_us: num("slowest_us"),
        }
    }

    /// The share of its calls that ran the primary, in percent.
    fn primary_share(&self) -> f64 {
        if self.calls == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let share = self.primary as f64 * 100.0 / self.calls as f64;
        share
    }
}

/// Runs the scenario on breaker `name`: six instances (the first one sick) calling it every
/// 10 ms for [`RUN`] against a Redis of the test's own; their reports, printed as a table.
fn scenario(name: &str) -> Vec<Report> {
    let redis = RedisServer::start();
    let scratch = Scratch::new("sick");
    let go = scratch.path("go");
    let prefix = format!("sick-{}", redis.port());
    let instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| {
            let (label, fail) = if i == 0 {
                ("sick".to_owned(), "1")
            } else {
                (format!("healthy{i}"), "0")
            };
            spawn(
                label,
                name,
                &[
                    ("BREAKER_REDIS_URL", redis.url()),
                    ("BREAKER_KEY_PREFIX", prefix.clone()),
                    ("SICK_FAIL", fail.to_owned()),
                    ("SICK_GO_FILE", go.display().to_string()),
                ],
            )
        })
        .collect();
    for i in &instances {
        i.expect("ready", Duration::from_secs(15));
    }
    scratch.touch("go");
    let reports: Vec<Report> = instances.into_iter().map(finish).collect();
    drop(scratch);
    println!("breaker {name}, {INSTANCES} instances, a call every 10 ms for {RUN:?}:");
    println!(
        "{:<9} {:>6} {:>8} {:>9} {:>9} {:>13} {:>17} {:>16} {:>9} {:>11}",
        "instance",
        "calls",
        "primary",
        "fallback",
        "primary%",
        "first reject",
        "primary before it",
        "primary in open",
        "saw OPEN",
        "slowest µs"
    );
    for r in &reports {
        println!(
            "{:<9} {:>6} {:>8} {:>9} {:>8.1}% {:>13} {:>17} {:>16} {:>9} {:>11}",
            r.label,
            r.calls,
            r.primary,
            r.fallback,
            r.primary_share(),
            r.first_reject_ms
                .map_or("never".to_owned(), |ms| format!("{ms} ms")),
            r.primary_before_reject,
            r.primary_in_open.map_or("-".to_owned(), |n| n.to_string()),
            r.saw_open,
            r.slowest_us
        );
    }
    for r in &reports {
        assert_eq!(r.errors, 0, "calls failed (the fallback serves): {r:?}");
    }
    reports
}

/// The sick instance stops calling its primary within `max_calls` calls and then makes no
/// primary call for its open period; what it did otherwise, as messages.
fn sick_stays_off(sick: &Report, max_calls: u64) -> Vec<String> {
    let mut wrong = Vec::new();
    if sick.first_reject_ms.is_none() {
        wrong.push(format!(
            "the sick instance never stopped calling its primary ({} primary calls of {}; saw \
             OPEN right after some call: {})",
            sick.primary, sick.calls, sick.saw_open
        ));
        return wrong;
    }
    if sick.primary_before_reject > max_calls {
        wrong.push(format!(
            "the sick instance made {} primary calls before stopping (at most {max_calls})",
            sick.primary_before_reject
        ));
    }
    if sick.primary_in_open != Some(0) {
        wrong.push(format!(
            "the sick instance made {} primary calls during its open period ({OPEN_CHECK:?} from \
             when it stopped; open_for {OPEN_FOR:?}), {} in all",
            sick.primary_in_open.unwrap_or(0),
            sick.primary
        ));
    }
    wrong
}

/// The healthy instances call their primary for at least 99 % of their calls.
fn healthy_keep_their_primary(healthy: &[Report]) -> Vec<String> {
    healthy
        .iter()
        .filter(|r| r.primary_share() < 99.0)
        .map(|r| {
            format!(
                "{} called its primary for {:.1} % of its calls (< 99 %; saw OPEN: {})",
                r.label,
                r.primary_share(),
                r.saw_open
            )
        })
        .collect()
}

/// Fails with every expectation that did not hold.
fn verdict(wrong: &[String]) {
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `quorum = 1` (the default), count rule: the sick instance's five failures open the fleet
/// (documented: every instance sees OPEN), and the sick instance stops within five calls and
/// stays off its primary for the open period.
#[test]
fn count_rule_quorum_1_one_sick_instance_opens_the_fleet() {
    let _serial = serial();
    let reports = scenario("sick.q1");
    let (sick, healthy) = reports.split_first().unwrap();
    let mut wrong = sick_stays_off(sick, 5);
    wrong.extend(healthy.iter().filter(|r| !r.saw_open).map(|r| {
        format!(
            "{} never saw OPEN: with quorum 1 one instance's failures open the fleet",
            r.label
        )
    }));
    verdict(&wrong);
}

/// `quorum = 2`, count rule: failures from one instance do not open the fleet (the healthy
/// instances call their primary for >= 99 % of their calls), yet the sick instance stops within
/// five calls on its own evidence and stays off its primary for its open period (3 s), not
/// closed again by the fleet's next reply.
#[test]
fn count_rule_quorum_2_one_sick_instance_opens_only_itself() {
    let _serial = serial();
    let reports = scenario("sick.q2");
    let (sick, healthy) = reports.split_first().unwrap();
    let mut wrong = sick_stays_off(sick, 5);
    wrong.extend(healthy_keep_their_primary(healthy));
    verdict(&wrong);
}

/// Rate rule (50 % of at least 10 calls; the count rule out of reach): the sick instance trips on its own calls within
/// about `min_calls` calls and stays off its primary for its open period (3 s), not closed
/// again by the fleet's next reply (which says CLOSED: one instance in six is under 50 %);
/// the healthy instances keep their primary (>= 99 %).
#[test]
fn rate_rule_sick_instance_stays_open_for_its_open_period() {
    let _serial = serial();
    let reports = scenario("sick.rate");
    let (sick, healthy) = reports.split_first().unwrap();
    let mut wrong = sick_stays_off(sick, 12);
    wrong.extend(healthy_keep_their_primary(healthy));
    verdict(&wrong);
}
