//! `breakerctl` against a running fleet: a real `redis-server`, three application instances as
//! OS processes (this test binary re-run with `FLEET_ROLE`), and each command run as a process.
//! Every command's effect is asserted on every instance, within 100 ms of the command's exit.

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

use breaker_runtime::{breaker, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Spawn, Stderr, report};
use breaker_tests::{RedisServer, TestError};

const ROLE: &str = "FLEET_ROLE";
const NAME: &str = "ops.daum";
const PREFIX: &str = "ops";
/// How fast a change must reach every instance.
const PROPAGATION: Duration = Duration::from_millis(100);

#[circuit_breaker(
    name = "ops.daum",
    fallback = juso,
    threshold = 3,
    window = "10s",
    open_for = "500ms",
    timeout = "300ms",
    store = "redis"
)]
async fn daum(q: u32) -> Result<String, TestError> {
    Ok(format!("daum {q}"))
}

async fn juso(q: u32) -> Result<String, TestError> {
    if std::env::var_os("JUSO_DOWN").is_some() {
        return Err(TestError::Down("juso"));
    }
    Ok(format!("juso {q}"))
}

/// The instance: answers `call` and `state` on stdin, one line each on stdout.
#[test]
fn fleet_instance() {
    if fleet::role(ROLE).is_none() {
        return;
    }
    fleet::run(async {
        let _ = daum(0).await;
        report("ready", "");
        let mut lines = BufReader::new(std::io::stdin()).lines();
        while let Some(Ok(line)) = lines.next() {
            match line.trim() {
                "call" => {
                    let start = tokio::time::Instant::now();
                    let r = match daum(1).await {
                        Ok(s) => s,
                        Err(e) => format!("err {e:?}"),
                    };
                    report("call", format_args!("{} {r}", start.elapsed().as_millis()));
                }
                "state" => {
                    let h = breaker(NAME).unwrap();
                    report(
                        "state",
                        format_args!(
                            "{} forced={:?} swapped={} shadow={} override={:?} fault={} notice={}|",
                            h.state(),
                            h.forced(),
                            h.swapped(),
                            h.is_shadow(),
                            h.shadow_override(),
                            h.fault().map(|f| f.to_string()).unwrap_or_default(),
                            breaker_runtime::notice(NAME).unwrap_or_default()
                        ),
                    );
                }
                _ => break,
            }
        }
    });
}

/// Starts one instance sharing `redis`, answering on its stdin; returns once it is ready.
fn spawn(redis: &RedisServer, extra_env: &[(&str, &str)]) -> Instance {
    let i = Spawn::new("fleet_instance", ROLE, "instance")
        .env("BREAKER_REDIS_URL", redis.url())
        .env("BREAKER_KEY_PREFIX", PREFIX)
        .envs(extra_env.iter().copied())
        .stdin()
        .stderr(Stderr::Null)
        .start();
    assert_eq!(i.next_line(Duration::from_secs(10)).text, "@ready");
    i
}

/// Questions to an instance, one line each way.
trait Ask {
    /// Sends `what`; its answer.
    fn ask(&mut self, what: &str) -> String;

    /// Polls `state` until it contains every one of `want`; returns how long that took.
    fn until(&mut self, want: &[&str], within: Duration) -> Duration;
}

impl Ask for Instance {
    fn ask(&mut self, what: &str) -> String {
        self.send(what);
        self.next_line(Duration::from_secs(10)).text
    }

    fn until(&mut self, want: &[&str], within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.ask("state");
            if want.iter().all(|w| s.contains(w)) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "after {:?} the instance shows `{s}`, not {want:?}",
                start.elapsed()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Runs `breakerctl <args>` against the test's Redis; returns (success, stdout, stderr).
fn ctl(redis: &RedisServer, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_breakerctl"))
        .args(args)
        .args(["--redis", &redis.url(), "--prefix", PREFIX])
        .env("USER", "qa")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command that must succeed, then checks every instance shows `want` within 100 ms.
fn apply(redis: &RedisServer, fleet: &mut [Instance], args: &[&str], want: &[&str]) {
    let (ok, out, err) = ctl(redis, args);
    assert!(ok, "breakerctl {args:?} failed:\n{out}\n{err}");
    for (i, inst) in fleet.iter_mut().enumerate() {
        let took = inst.until(want, PROPAGATION);
        assert!(took < PROPAGATION, "instance {i}: {args:?} took {took:?}");
    }
}

fn calls(fleet: &mut [Instance]) -> Vec<String> {
    fleet.iter_mut().map(|i| i.ask("call")).collect()
}

#[test]
fn every_command_reaches_every_instance_within_100ms_and_persists() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let mut fleet: Vec<Instance> = (0..3).map(|_| spawn(&redis, &[])).collect();
    for c in calls(&mut fleet) {
        assert!(c.ends_with("daum 1"), "{c}");
    }

    // A name no instance reported is refused, with a suggestion; --force overrides.
    let (ok, _, err) = ctl(&redis, &["open", "ops.duam"]);
    assert!(
        !ok && err.contains("did you mean") && err.contains(NAME),
        "{err}"
    );

    // open / close / reset.
    apply(
        &redis,
        &mut fleet,
        &["open", NAME],
        &["OPEN", "forced=Some(Open)"],
    );
    for c in calls(&mut fleet) {
        assert!(
            c.ends_with("juso 1"),
            "forced open serves the fallback: {c}"
        );
    }
    // Persists: an instance started now honours it from its first call.
    let mut late = spawn(&redis, &[]);
    assert!(late.ask("state").contains("forced=Some(Open)"));
    assert!(late.ask("call").ends_with("juso 1"));
    drop(late);
    apply(
        &redis,
        &mut fleet,
        &["close", NAME],
        &["CLOSED", "forced=Some(Closed)"],
    );
    apply(
        &redis,
        &mut fleet,
        &["reset", NAME],
        &["CLOSED", "forced=None"],
    );
    for c in calls(&mut fleet) {
        assert!(c.ends_with("daum 1"), "{c}");
    }

    // swap: the fallback serves first; a second swap restores the order; reset clears it.
    apply(&redis, &mut fleet, &["swap", NAME], &["swapped=true"]);
    for c in calls(&mut fleet) {
        assert!(c.ends_with("juso 1"), "swapped: {c}");
    }
    apply(&redis, &mut fleet, &["swap", NAME], &["swapped=false"]);
    for c in calls(&mut fleet) {
        assert!(c.ends_with("daum 1"), "{c}");
    }
    apply(&redis, &mut fleet, &["swap", NAME], &["swapped=true"]);
    apply(&redis, &mut fleet, &["reset", NAME], &["swapped=false"]);

    // inject: error trips the breaker on every instance (the fallback serves meanwhile);
    // clearing it lets the breaker heal through its probes.
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "error", "--for", "1m"],
        &["fault=error"],
    );
    for _ in 0..2 {
        for c in calls(&mut fleet) {
            assert!(
                c.ends_with("juso 1"),
                "injected error serves the fallback: {c}"
            );
        }
    }
    for inst in &mut fleet {
        inst.until(&["OPEN"], Duration::from_secs(2));
    }
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "--clear"],
        &["fault= "],
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let results = calls(&mut fleet);
        if results.iter().all(|c| c.ends_with("daum 1")) {
            break;
        }
        assert!(Instant::now() < deadline, "never healed: {results:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for inst in &mut fleet {
        inst.until(&["CLOSED"], Duration::from_secs(2));
    }

    // delay: calls take the delay; a delay over the 300 ms timeout times them out.
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "delay:100ms"],
        &["fault=delay:100ms"],
    );
    for c in calls(&mut fleet) {
        let ms: u64 = c.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(ms >= 100 && c.ends_with("daum 1"), "{c}");
    }
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "timeout"],
        &["fault=timeout"],
    );
    for c in calls(&mut fleet) {
        let ms: u64 = c.split(' ').nth(1).unwrap().parse().unwrap();
        assert!(ms >= 300 && c.ends_with("juso 1"), "timeout fault: {c}");
    }
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "open"],
        &["fault=open"],
    );
    for c in calls(&mut fleet) {
        assert!(c.ends_with("juso 1"), "{c}");
    }
    // Malformed input is refused at the CLI and changes nothing.
    let (ok, _, err) = ctl(&redis, &["inject", NAME, "error:2"]);
    assert!(!ok && err.contains("at most 1"), "{err}");
    assert!(fleet[0].ask("state").contains("fault=open"));
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "--clear"],
        &["fault= "],
    );

    // notice: every instance reads it; cleared everywhere.
    apply(
        &redis,
        &mut fleet,
        &["notice", NAME, "Address search is down; type it by hand"],
        &["notice=Address search is down; type it by hand"],
    );
    apply(
        &redis,
        &mut fleet,
        &["notice", NAME, "--clear"],
        &["notice=|"],
    );
    for inst in &mut fleet {
        assert!(inst.ask("state").ends_with("notice=|"));
    }

    // The audit log has every change, newest first, with who did it.
    let (ok, out, _) = ctl(&redis, &["audit", "--limit", "50", "--json"]);
    assert!(ok);
    let entries: Vec<serde_json::Value> = serde_json::from_str(&out)
        .or_else(|_| {
            out.lines()
                .map(serde_json::from_str)
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let commands: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["command"].as_str())
        .collect();
    assert_eq!(commands.first(), Some(&"notice"), "{commands:?}");
    for c in ["open", "close", "reset", "swap", "inject", "notice"] {
        assert!(commands.contains(&c), "{c} not audited: {commands:?}");
    }
    assert!(
        entries
            .iter()
            .all(|e| e["who"].as_str().unwrap().starts_with("qa@"))
    );
}

#[test]
fn shadow_reaches_every_instance_within_100ms_and_a_forced_open_still_rejects() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let mut fleet: Vec<Instance> = (0..2).map(|_| spawn(&redis, &[])).collect();
    for inst in &mut fleet {
        // Declared enforcing, no operator's mode.
        inst.until(&["shadow=false override=None"], PROPAGATION);
    }
    // An injected `open` rejects while enforcing ...
    apply(
        &redis,
        &mut fleet,
        &["inject", NAME, "open", "--for", "1m"],
        &["fault=open"],
    );
    for c in calls(&mut fleet) {
        assert!(c.ends_with("juso 1"), "enforcing: {c}");
    }
    // ... and in shadow every call runs.
    apply(
        &redis,
        &mut fleet,
        &["shadow", NAME, "on"],
        &["shadow=true override=Some(true)"],
    );
    for c in calls(&mut fleet) {
        assert!(c.ends_with("daum 1"), "shadow: the function answers: {c}");
    }
    // Persists: an instance started now is in shadow from its first call.
    let mut late = spawn(&redis, &[]);
    assert!(
        late.ask("state")
            .contains("shadow=true override=Some(true)")
    );
    assert!(late.ask("call").ends_with("daum 1"));
    drop(late);
    // An operator's force-open wins over shadow, and breakerctl says so.
    let (ok, _, err) = ctl(&redis, &["open", NAME]);
    assert!(ok, "{err}");
    for inst in &mut fleet {
        inst.until(&["forced=Some(Open)", "shadow=true"], PROPAGATION);
    }
    for c in calls(&mut fleet) {
        assert!(c.ends_with("juso 1"), "forced open in shadow: {c}");
    }
    let (ok, _, err) = ctl(&redis, &["shadow", NAME, "on"]);
    assert!(ok && err.contains("is forced OPEN"), "{err}");
    apply(&redis, &mut fleet, &["reset", NAME], &["forced=None"]);
    for c in calls(&mut fleet) {
        assert!(c.ends_with("daum 1"), "{c}");
    }
    // Enforce, then back to the declared mode (enforce here).
    apply(
        &redis,
        &mut fleet,
        &["shadow", NAME, "off"],
        &["shadow=false override=Some(false)"],
    );
    for c in calls(&mut fleet) {
        assert!(c.ends_with("juso 1"), "enforcing again: {c}");
    }
    apply(
        &redis,
        &mut fleet,
        &["shadow", NAME, "default"],
        &["shadow=false override=None"],
    );
    let (ok, _, err) = ctl(&redis, &["shadow", NAME, "sometimes"]);
    assert!(
        !ok && err.contains("possible values: on, off, default"),
        "{err}"
    );
}

#[test]
fn a_failing_swapped_fallback_hands_the_call_to_the_primary() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let mut fleet = vec![spawn(&redis, &[("JUSO_DOWN", "1")])];
    apply(&redis, &mut fleet, &["swap", NAME], &["swapped=true"]);
    // juso (now first) fails: the call goes on to daum through daum's breaker.
    assert!(fleet[0].ask("call").ends_with("daum 1"));
    // With daum held open too, the chain is exhausted: juso's error comes back.
    apply(&redis, &mut fleet, &["open", NAME], &["forced=Some(Open)"]);
    let c = fleet[0].ask("call");
    assert!(c.contains("err") && c.contains("juso"), "{c}");
}

#[test]
fn a_notice_written_by_an_old_or_hostile_writer_reaches_users_escaped_and_bounded() {
    use breaker_runtime::redis::{ControlChange, Controls, Keys, ScriptCall, WriteControl};
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let mut instance = spawn(&redis, &[]);
    // Straight into Redis, past the checks of `Handle::set_notice` and `breakerctl notice`.
    let mut con = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let keys = Keys::new(PREFIX);
    let hostile = format!(
        "red \x1b[31malert\x1b[0m \u{202e}exe.live\nsecond line{}",
        "x".repeat(2000)
    );
    let _: Controls = WriteControl {
        keys: &keys.breaker(NAME),
        change: ControlChange::Notice(&hostile),
        for_ms: 0,
        channel: keys.controls(),
        name: NAME,
    }
    .invocation()
    .invoke(&mut con)
    .unwrap();
    instance.until(
        &["notice=red \\u{1b}[31malert\\u{1b}[0m \\u{202e}exe.live\\u{a}second linexxx"],
        Duration::from_secs(2),
    );
    let shown = instance.ask("state");
    let notice = shown.split("notice=").nth(1).unwrap().trim_end_matches('|');
    assert!(!notice.contains(['\x1b', '\u{202e}', '\n']), "{shown}");
    assert_eq!(
        notice.chars().count(),
        501,
        "500 characters and `…`: {shown}"
    );
    assert!(notice.ends_with('…'), "{shown}");
}
