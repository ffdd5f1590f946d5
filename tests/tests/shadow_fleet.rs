//! Shadow mode across real OS processes sharing a real `redis-server` started by the test: the
//! operator's mode (`Handle::set_shadow`, field `shadow` of the breaker's state hash) reaches
//! every instance, those already running and those started after the switch; a shadow breaker
//! that the fleet opened runs every call (the function is called, its result returned: no
//! rejection, no fallback) and counts what it would have rejected; going back to the declared
//! mode rejects again. A hash without the field leaves each instance on its declared mode.
//!
//! The parent only orchestrates: it starts Redis and re-runs this test binary as child processes
//! (the `shadow_instance` entry, with `SHADOW_ROLE` set), each one an instance of the
//! application answering one line on stdout for each line on its stdin.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use breaker_runtime::redis::ControlChange;
use breaker_runtime::{breaker, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Line, Spawn, Stderr, report, serial};
use breaker_tests::{RedisServer, TestError, word};

const ROLE: &str = "SHADOW_ROLE";
const PREFIX: &str = "shadowfleet";
/// Declared enforcing: opens at its first failure and stays OPEN for the test's length.
const DAUM: &str = "shadow.daum";
/// Declared `mode = "shadow"`, no fallback: opens at its first failure too.
const DECLARED: &str = "shadow.declared";
/// How long a change may take to reach an instance (the controls channel and the events
/// channel carry it at once; this is the bound on a loaded machine, not the expectation).
const PROPAGATION: Duration = Duration::from_secs(3);

/// The alerts this process raised, as `kind:shadow` (`opened:false`).
static ALERTS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

#[derive(Debug)]
struct AlertLog;

impl breaker_runtime::Notifier for AlertLog {
    fn notify(&self, event: &breaker_runtime::Event) {
        if let breaker_runtime::EventKind::Alert(a) = &event.kind
            && event.breaker == DAUM
        {
            ALERTS
                .lock()
                .unwrap()
                .push(format!("{}:{}", a.kind.as_str(), a.shadow));
        }
    }
}

/// A field of breaker `name`'s state hash in Redis (`None`: no such field).
fn hash_field(redis: &RedisServer, name: &str, field: &str) -> Option<String> {
    redis.breaker_field(PREFIX, name, field)
}

/// `WRITE_CONTROL` on `name` as an operator's tool runs it.
fn write_control(redis: &RedisServer, name: &str, change: ControlChange<'_>) {
    redis.write_control(PREFIX, name, change);
}

/// How many times each function's body ran in this process.
static DAUM_RAN: AtomicU64 = AtomicU64::new(0);
static DECLARED_RAN: AtomicU64 = AtomicU64::new(0);

#[circuit_breaker(
    name = "shadow.daum",
    fallback = juso,
    threshold = 1,
    window = "60s",
    open_for = "60s",
    store = "redis"
)]
async fn daum(fail: bool) -> Result<String, TestError> {
    DAUM_RAN.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(TestError::Down("daum"))
    } else {
        Ok("daum".to_owned())
    }
}

async fn juso(_fail: bool) -> Result<String, TestError> {
    Ok("juso".to_owned())
}

#[circuit_breaker(
    name = "shadow.declared",
    mode = "shadow",
    threshold = 1,
    window = "60s",
    open_for = "60s",
    store = "redis"
)]
async fn declared(fail: bool) -> Result<String, TestError> {
    DECLARED_RAN.fetch_add(1, Ordering::SeqCst);
    if fail {
        Err(TestError::Down("declared"))
    } else {
        Ok("declared".to_owned())
    }
}

/// The instance. On stdin, one command a line; on stdout, one `@` line each:
/// - `call NAME` / `fail NAME`: calls the breaker's function (succeeding or failing);
///   `@did got=WORD ran=N` (N: how many times that function's body has run in this process);
/// - `state NAME`: `@state state=.. shadow=.. override=.. rejections=.. shadow_rejections=..
///   fallbacks=..`;
/// - `notice NAME`: `@notice text=..` (the notice users are shown, one word in these tests);
/// - `set on|off|default`: `Handle::set_shadow` on `shadow.daum`; `@set ok` or `@set err=..`.
#[test]
fn shadow_instance() {
    if fleet::role(ROLE).is_none() {
        return;
    }
    breaker_runtime::add_notifier(std::sync::Arc::new(AlertLog));
    fleet::run(async {
        // Attach both breakers: the first call of each (its result says which mode it was in
        // when it was decided).
        let first = word(&daum(false).await);
        let _ = declared(false).await;
        report("ready", format_args!("first={first}"));
        let mut lines = BufReader::new(std::io::stdin()).lines();
        while let Some(Ok(line)) = lines.next() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [what @ ("call" | "fail"), name] => {
                    let fail = *what == "fail";
                    let (got, ran) = if *name == DAUM {
                        (word(&daum(fail).await), DAUM_RAN.load(Ordering::SeqCst))
                    } else {
                        (
                            word(&declared(fail).await),
                            DECLARED_RAN.load(Ordering::SeqCst),
                        )
                    };
                    report("did", format_args!("got={got} ran={ran}"));
                }
                ["state", name] => {
                    let h = breaker(name).expect("an attached breaker");
                    let c = h.counters();
                    report(
                        "state",
                        format_args!(
                            "state={} shadow={} override={:?} rejections={} shadow_rejections={} fallbacks={}",
                            h.state(),
                            h.is_shadow(),
                            h.shadow_override(),
                            c.rejections,
                            c.shadow_rejections,
                            c.fallbacks
                        ),
                    );
                }
                ["alerts"] => {
                    breaker_runtime::flush_notifications(Duration::from_secs(5));
                    let list = ALERTS.lock().unwrap().join(",");
                    report("alerts", format_args!("list={list}"));
                }
                ["notice", name] => report(
                    "notice",
                    format_args!("text={}", breaker_runtime::notice(name).unwrap_or_default()),
                ),
                ["set", mode] => {
                    let mode = match *mode {
                        "on" => Some(true),
                        "off" => Some(false),
                        _ => None,
                    };
                    match breaker(DAUM).unwrap().set_shadow(mode).await {
                        Ok(()) => report("set", "ok"),
                        Err(e) => report("set", format_args!("err={e}")),
                    }
                }
                _ => break,
            }
        }
    });
}

/// Starts one instance sharing `redis`; returns it and its `@ready` line once it is ready.
fn spawn(redis: &RedisServer, label: &str) -> (Instance, Line) {
    spawn_with(redis, label, "")
}

/// As [`spawn`], with `BREAKER_OVERRIDES` (empty: none).
fn spawn_with(redis: &RedisServer, label: &str, overrides: &str) -> (Instance, Line) {
    let i = Spawn::new("shadow_instance", ROLE, "instance")
        .label(label)
        .env("BREAKER_OVERRIDES", overrides)
        .env("BREAKER_REDIS_URL", redis.url())
        .env("BREAKER_KEY_PREFIX", PREFIX)
        .stdin()
        .stderr(Stderr::Capture)
        .start();
    let ready = i.expect("ready", Duration::from_secs(20));
    (i, ready)
}

/// Questions to an instance, one line each way.
trait Ask {
    /// Sends `what`; its answer.
    fn ask(&mut self, what: &str) -> Line;

    /// `state NAME`.
    fn state(&mut self, name: &str) -> Line;

    /// Polls `state NAME` until it shows every `key=value` of `want`; panics with the last
    /// answer after `within`.
    fn until(&mut self, name: &str, want: &[&str], within: Duration) -> Line;
}

impl Ask for Instance {
    fn ask(&mut self, what: &str) -> Line {
        self.send(what);
        self.next_line(Duration::from_secs(10))
    }

    fn state(&mut self, name: &str) -> Line {
        let l = self.ask(&format!("state {name}"));
        assert!(l.is("state"), "{l:?}");
        l
    }

    fn until(&mut self, name: &str, want: &[&str], within: Duration) -> Line {
        let deadline = Instant::now() + within;
        loop {
            let s = self.state(name);
            if want.iter().all(|w| s.words().any(|x| x == *w)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] after {within:?} `{name}` shows `{}`, not {want:?}",
                self.label(),
                s.text
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One call of `name` (`call` or `fail`); its `(got, ran)`.
fn call(i: &mut Instance, what: &str, name: &str) -> (String, u64) {
    let l = i.ask(&format!("{what} {name}"));
    assert!(l.is("did"), "{l:?}");
    (l.field("got").unwrap().to_owned(), l.num("ran"))
}

/// Every instance: while `name` is OPEN, `calls` successful calls and one failing call all run
/// the function and return its own result; `shadow_rejections` grows by each, `rejections` and
/// `fallbacks` do not move.
fn every_call_runs(fleet: &mut [Instance], name: &str, ok_word: &str, calls: u64) {
    for i in fleet {
        let before = i.until(name, &["state=OPEN", "shadow=true"], PROPAGATION);
        let (_, ran_before) = call(i, "call", name);
        for n in 1..=calls {
            let (got, ran) = call(i, "call", name);
            assert_eq!(got, ok_word, "[{}] call {n} in shadow", i.label());
            assert_eq!(ran, ran_before + n, "[{}] the function ran", i.label());
        }
        let (got, ran) = call(i, "fail", name);
        assert_eq!(
            (got.as_str(), ran),
            ("down", ran_before + calls + 1),
            "[{}] its own error, no fallback",
            i.label()
        );
        let after = i.state(name);
        assert_eq!(after.field("state"), Some("OPEN"), "{after:?}");
        let grew = after.num::<u64>("shadow_rejections") - before.num::<u64>("shadow_rejections");
        assert_eq!(grew, calls + 2, "[{}] {after:?}", i.label());
        for counter in ["rejections", "fallbacks"] {
            assert_eq!(
                after.num::<u64>(counter),
                before.num::<u64>(counter),
                "[{}] {counter}: {after:?}",
                i.label()
            );
        }
    }
}

#[test]
fn shadow_set_by_one_instance_runs_every_call_of_an_open_breaker_on_every_instance() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let (mut a, _) = spawn(&redis, "a");
    let (mut b, _) = spawn(&redis, "b");
    for i in [&mut a, &mut b] {
        i.until(
            DAUM,
            &["state=CLOSED", "shadow=false", "override=None"],
            PROPAGATION,
        );
    }
    assert_eq!(hash_field(&redis, DAUM, "shadow"), None);

    // A switches the fleet to shadow; B (already running) follows.
    assert_eq!(a.ask("set on").text, "@set ok");
    assert_eq!(hash_field(&redis, DAUM, "shadow").as_deref(), Some("1"));
    a.until(
        DAUM,
        &["shadow=true", "override=Some(true)"],
        Duration::ZERO,
    );
    b.until(DAUM, &["shadow=true", "override=Some(true)"], PROPAGATION);

    // Then the breaker opens (threshold 1): A's failure, in shadow, is counted as usual.
    let (got, _) = call(&mut a, "fail", DAUM);
    assert_eq!(got, "down");
    for i in [&mut a, &mut b] {
        i.until(DAUM, &["state=OPEN", "shadow=true"], PROPAGATION);
    }
    // C starts after the switch, with the fleet OPEN: in shadow from its first call.
    let (mut c, ready) = spawn(&redis, "c");
    assert_eq!(
        ready.field("first"),
        Some("daum"),
        "the late instance's first call: {ready:?}"
    );
    c.until(
        DAUM,
        &["state=OPEN", "shadow=true", "override=Some(true)"],
        PROPAGATION,
    );
    let mut fleet = [a, b, c];
    every_call_runs(&mut fleet, DAUM, "daum", 5);

    // Back to the declared mode (enforce): every instance rejects again, the fallback serves.
    assert_eq!(fleet[0].ask("set default").text, "@set ok");
    assert_eq!(
        hash_field(&redis, DAUM, "shadow"),
        None,
        "the field is deleted"
    );
    for i in &mut fleet {
        let before = i.until(
            DAUM,
            &["state=OPEN", "shadow=false", "override=None"],
            PROPAGATION,
        );
        let (_, ran_before) = call(i, "call", DAUM);
        for _ in 0..3 {
            let (got, ran) = call(i, "call", DAUM);
            assert_eq!(
                (got.as_str(), ran),
                ("juso", ran_before),
                "[{}] enforcing: rejected, not run",
                i.label()
            );
        }
        let after = i.state(DAUM);
        assert_eq!(
            after.num::<u64>("rejections") - before.num::<u64>("rejections"),
            4,
            "{after:?}"
        );
        assert_eq!(
            after.num::<u64>("shadow_rejections"),
            before.num::<u64>("shadow_rejections"),
            "{after:?}"
        );
    }

    // Shadow on, then enforce explicitly: also back to rejecting everywhere.
    assert_eq!(fleet[1].ask("set on").text, "@set ok");
    for i in &mut fleet {
        i.until(DAUM, &["shadow=true"], PROPAGATION);
        assert_eq!(call(i, "call", DAUM).0, "daum", "[{}]", i.label());
    }
    assert_eq!(fleet[2].ask("set off").text, "@set ok");
    assert_eq!(hash_field(&redis, DAUM, "shadow").as_deref(), Some("0"));
    for i in &mut fleet {
        i.until(DAUM, &["shadow=false", "override=Some(false)"], PROPAGATION);
        assert_eq!(call(i, "call", DAUM).0, "juso", "[{}]", i.label());
    }
}

#[test]
fn without_the_shadow_field_each_instance_keeps_its_declared_mode() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let (mut a, _) = spawn(&redis, "a");
    let (mut b, _) = spawn(&redis, "b");
    // Another control changes (a notice: `cgen` moves, every instance reads the controls back)
    // while no operator's mode is written.
    for name in [DAUM, DECLARED] {
        write_control(&redis, name, ControlChange::Notice("maintenance"));
    }
    for i in [&mut a, &mut b] {
        for name in [DAUM, DECLARED] {
            let deadline = Instant::now() + PROPAGATION;
            while breaker_notice(i, name).is_none() {
                assert!(Instant::now() < deadline, "[{}] no notice", i.label());
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        i.until(DAUM, &["shadow=false", "override=None"], Duration::ZERO);
        i.until(DECLARED, &["shadow=true", "override=None"], Duration::ZERO);
    }
    assert_eq!(hash_field(&redis, DAUM, "shadow"), None);
    assert_eq!(hash_field(&redis, DECLARED, "shadow"), None);

    // Both open; the enforcing one's failure is answered by its fallback, the shadow one's
    // is the function's own error.
    assert_eq!(call(&mut a, "fail", DAUM).0, "juso");
    assert_eq!(call(&mut a, "fail", DECLARED).0, "down");
    let mut fleet = [a, b];
    for i in &mut fleet {
        i.until(DAUM, &["state=OPEN"], PROPAGATION);
        i.until(DECLARED, &["state=OPEN"], PROPAGATION);
    }
    // The one declared in shadow runs every call; the one declared enforcing rejects.
    every_call_runs(&mut fleet, DECLARED, "declared", 3);
    for i in &mut fleet {
        let (_, ran_before) = call(i, "call", DAUM);
        assert_eq!(call(i, "call", DAUM), ("juso".to_owned(), ran_before));
    }
    // An operator's `off` makes the declared-shadow breaker enforce; `default` gives it back
    // its declared mode (written here straight into Redis, as `breakerctl shadow` does).
    for (change, want) in [
        (Some(false), ["shadow=false", "override=Some(false)"]),
        (None, ["shadow=true", "override=None"]),
    ] {
        write_control(&redis, DECLARED, ControlChange::Shadow(change));
        for i in &mut fleet {
            i.until(DECLARED, &want, PROPAGATION);
            let got = call(i, "call", DECLARED).0;
            let expected = if change == Some(false) {
                "open"
            } else {
                "declared"
            };
            assert_eq!(got, expected, "[{}] {change:?}", i.label());
        }
    }
}

/// The notice the instance shows for `name` (through `state`'s line: asked separately).
fn breaker_notice(i: &mut Instance, name: &str) -> Option<String> {
    let l = i.ask(&format!("notice {name}"));
    assert!(l.is("notice"), "{l:?}");
    l.field("text").map(str::to_owned).filter(|t| !t.is_empty())
}

#[test]
fn an_operators_mode_and_swap_outlive_a_redis_that_lost_them() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let (mut a, _) = spawn(&redis, "a");
    let (mut b, _) = spawn(&redis, "b");
    // The operator puts `shadow.daum` in shadow (from an instance) and swaps it (from a tool).
    assert_eq!(a.ask("set on").text, "@set ok");
    write_control(&redis, DAUM, ControlChange::Swap(true));
    for i in [&mut a, &mut b] {
        i.until(DAUM, &["shadow=true", "override=Some(true)"], PROPAGATION);
    }
    assert_eq!(hash_field(&redis, DAUM, "swapped").as_deref(), Some("1"));

    // Redis loses everything (a restart without persistence, a FLUSHALL).
    assert_eq!(redis.command("FLUSHALL").as_deref(), Some("+OK"));
    assert_eq!(hash_field(&redis, DAUM, "shadow"), None);

    // The instances write the operator's choices back: the next instance, and every instance
    // reading the controls again, finds them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hash_field(&redis, DAUM, "shadow").as_deref() != Some("1")
        || hash_field(&redis, DAUM, "swapped").as_deref() != Some("1")
    {
        assert!(
            Instant::now() < deadline,
            "not written back: shadow {:?}, swapped {:?}",
            hash_field(&redis, DAUM, "shadow"),
            hash_field(&redis, DAUM, "swapped")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut c, ready) = spawn(&redis, "c");
    assert_eq!(ready.field("first"), Some("daum"), "{ready:?}");
    for i in [&mut a, &mut b, &mut c] {
        i.until(DAUM, &["shadow=true", "override=Some(true)"], PROPAGATION);
    }
    // A deliberate change after the loss is not undone: back to the declared mode.
    assert_eq!(c.ask("set default").text, "@set ok");
    for i in [&mut a, &mut b, &mut c] {
        i.until(DAUM, &["shadow=false", "override=None"], PROPAGATION);
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hash_field(&redis, DAUM, "shadow"),
        None,
        "a deliberate default stays"
    );
}

/// The alerts instance `i` raised so far, as `kind:shadow`.
fn alerts(i: &mut Instance) -> Vec<String> {
    let l = i.ask("alerts");
    assert!(l.is("alerts"), "{l:?}");
    l.field("list")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The alerts the fleet raised: waits for the first (up to 10 s), then a moment more for a
/// duplicate to show.
fn fleet_alerts(fleet: &mut [&mut Instance]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while fleet.iter_mut().all(|i| alerts(i).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    fleet.iter_mut().flat_map(|i| alerts(i)).collect()
}

#[test]
fn a_fleet_alert_is_marked_shadow_only_when_no_instance_acts_on_calls() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    // A mixed fleet (a rolling deploy that changes the declared mode): `a` in shadow, `b`
    // enforcing. `a`'s failure opens the fleet and `a` raises the alert; `b` rejects calls,
    // so the alert must not say "shadow".
    let redis = RedisServer::start();
    let (mut a, _) = spawn_with(&redis, "a", "shadow.daum.mode=shadow");
    let (mut b, _) = spawn(&redis, "b");
    a.until(DAUM, &["shadow=true"], Duration::ZERO);
    b.until(DAUM, &["shadow=false"], Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hash_field(&redis, DAUM, "enforcing_until").is_none() {
        assert!(Instant::now() < deadline, "b never recorded as enforcing");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(call(&mut a, "fail", DAUM).0, "down");
    b.until(DAUM, &["state=OPEN"], PROPAGATION);
    assert_eq!(call(&mut b, "call", DAUM).0, "juso", "b really rejects");
    let raised = fleet_alerts(&mut [&mut a, &mut b]);
    assert_eq!(
        raised,
        ["opened:false"],
        "one alert for the fleet, unmarked"
    );

    // A fleet all in shadow: the alert is marked.
    drop((a, b));
    let redis = RedisServer::start();
    let (mut a, _) = spawn_with(&redis, "a2", "shadow.daum.mode=shadow");
    let (mut b, _) = spawn_with(&redis, "b2", "shadow.daum.mode=shadow");
    b.until(DAUM, &["shadow=true"], Duration::ZERO);
    assert_eq!(call(&mut a, "fail", DAUM).0, "down");
    b.until(DAUM, &["state=OPEN"], PROPAGATION);
    assert_eq!(call(&mut b, "call", DAUM).0, "daum", "b runs the call");
    let raised = fleet_alerts(&mut [&mut a, &mut b]);
    assert_eq!(
        raised,
        ["opened:true"],
        "one alert for the fleet, marked shadow"
    );
    assert_eq!(hash_field(&redis, DAUM, "enforcing_until"), None);

    // An operator's tool (not an instance) switches the OPEN fleet to enforce: calls are
    // refused from now on, and one instance says so, unmarked.
    write_control(&redis, DAUM, ControlChange::Shadow(Some(false)));
    b.until(DAUM, &["state=OPEN", "shadow=false"], PROPAGATION);
    assert_eq!(call(&mut b, "call", DAUM).0, "juso", "b rejects now");
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = |a: &mut Instance, b: &mut Instance| alerts(a).len() + alerts(b).len();
    while count(&mut a, &mut b) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut raised: Vec<String> = alerts(&mut a).into_iter().chain(alerts(&mut b)).collect();
    raised.sort();
    assert_eq!(
        raised,
        ["opened:false", "opened:true"],
        "the switch to enforcing during the OPEN is alerted once, unmarked"
    );
}
