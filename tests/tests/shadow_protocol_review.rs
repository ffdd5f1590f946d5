//! Review of the controls' write-back (3f615d4) and the fleet alert mark (c68b4b2) across real
//! OS processes sharing a real `redis-server`: the problems a second engineer found, each test
//! seen failing before the mend that followed (`cgen` on Redis's clock, `restore` only over
//! older controls and with cleared values, RECORD not counting an instance as enforcing while
//! the operator's shadow mode is written). The doc of each test tells what went wrong then. Modelled on `shadow_fleet.rs`: the
//! parent starts Redis and re-runs this test binary as instances (`review_instance`, with
//! `REVIEW_ROLE` set), each answering one `@` line for each line on its stdin.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use breaker_runtime::redis::{ControlChange, Keys};
use breaker_runtime::{breaker, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Line, Spawn, Stderr, Stopped, report, serial};
use breaker_tests::{RedisServer, TestError, word};

const ROLE: &str = "REVIEW_ROLE";
const PREFIX: &str = "protoreview";
const DAUM: &str = "review.daum";
const PROPAGATION: Duration = Duration::from_secs(3);

#[circuit_breaker(
    name = "review.daum",
    fallback = juso,
    threshold = 1,
    window = "60s",
    open_for = "60s",
    store = "redis"
)]
async fn daum(fail: bool) -> Result<String, TestError> {
    if fail {
        Err(TestError::Down("daum"))
    } else {
        Ok("daum".to_owned())
    }
}

/// The rate rule: its counts go to Redis every tick while calls run.
#[circuit_breaker(
    name = "review.rated",
    threshold = 1000,
    failure_rate = 50,
    min_calls = 10,
    window = "60s",
    open_for = "60s",
    store = "redis"
)]
async fn rated() -> Result<String, TestError> {
    Ok("rated".to_owned())
}

const RATED: &str = "review.rated";

async fn juso(_fail: bool) -> Result<String, TestError> {
    Ok("juso".to_owned())
}

/// `call` / `fail`: one call (`@did got=..`); `state`: `@state shadow=.. override=..`;
/// `notice`: `@notice text=..`; `set on|off|default`: `Handle::set_shadow`.
#[test]
fn review_instance() {
    if fleet::role(ROLE).is_none() {
        return;
    }
    fleet::run(async {
        let first = word(&daum(false).await);
        let _ = rated().await;
        report("ready", format_args!("first={first}"));
        let mut lines = BufReader::new(std::io::stdin()).lines();
        while let Some(Ok(line)) = lines.next() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [what @ ("call" | "fail")] => {
                    let got = word(&daum(*what == "fail").await);
                    report("did", format_args!("got={got}"));
                }
                ["burst", ms] => {
                    // Calls `review.rated` on a thread of its own for `ms` ms.
                    let ms: u64 = ms.parse().unwrap();
                    std::thread::spawn(move || {
                        fleet::run(async move {
                            let end = Instant::now() + Duration::from_millis(ms);
                            while Instant::now() < end {
                                let _ = rated().await;
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        });
                    });
                    report("burst", "started");
                }
                ["rated"] => {
                    let h = breaker(RATED).expect("attached");
                    report("rated", format_args!("shadow={}", h.is_shadow()));
                }
                ["state"] => {
                    let h = breaker(DAUM).expect("attached");
                    report(
                        "state",
                        format_args!(
                            "state={} shadow={} override={:?}",
                            h.state(),
                            h.is_shadow(),
                            h.shadow_override()
                        ),
                    );
                }
                ["notice"] => report(
                    "notice",
                    format_args!("text={}", breaker_runtime::notice(DAUM).unwrap_or_default()),
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

fn spawn(redis: &RedisServer, label: &str) -> Instance {
    let i = Spawn::new("review_instance", ROLE, "instance")
        .label(label)
        .env("BREAKER_REDIS_URL", redis.url())
        .env("BREAKER_KEY_PREFIX", PREFIX)
        .stdin()
        .stderr(Stderr::Capture)
        .start();
    i.expect("ready", Duration::from_secs(20));
    i
}

fn ask(i: &mut Instance, what: &str) -> Line {
    i.send(what);
    i.next_line(Duration::from_secs(10))
}

/// Polls `state` until it shows every `key=value` of `want`.
fn until(i: &mut Instance, want: &[&str], within: Duration) -> Line {
    let deadline = Instant::now() + within;
    loop {
        let s = ask(i, "state");
        if want.iter().all(|w| s.words().any(|x| x == *w)) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "[{}] shows `{}`, not {want:?}",
            i.label(),
            s.text
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn until_notice(i: &mut Instance, text: &str) {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        let l = ask(i, "notice");
        if l.field("text") == Some(text) {
            return;
        }
        assert!(Instant::now() < deadline, "[{}] notice {l:?}", i.label());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn state_key() -> String {
    Keys::new(PREFIX).breaker(DAUM).state
}

/// A field of the breaker's state hash (`None`: no such field).
fn hash_field(redis: &RedisServer, field: &str) -> Option<String> {
    hash_field_of(redis, DAUM, field)
}

fn hash_field_of(redis: &RedisServer, name: &str, field: &str) -> Option<String> {
    redis.breaker_field(PREFIX, name, field)
}

/// `WRITE_CONTROL` as an operator's tool (`breakerctl`) runs it.
fn write_control(redis: &RedisServer, change: ControlChange<'_>) {
    write_control_of(redis, DAUM, change);
}

fn write_control_of(redis: &RedisServer, name: &str, change: ControlChange<'_>) {
    redis.write_control(PREFIX, name, change);
}

/// The `shadow` field and every instance's view, after the write-backs have had time to run.
fn settled(redis: &RedisServer, fleet: &mut [&mut Instance]) -> (Option<String>, Vec<String>) {
    std::thread::sleep(Duration::from_secs(4));
    let views = fleet
        .iter_mut()
        .map(|i| {
            let s = ask(i, "state");
            format!("{}:{}", i.label(), s.field("override").unwrap_or("?"))
        })
        .collect();
    (hash_field(redis, "shadow"), views)
}

/// An application's admin endpoint calls `Handle::set_shadow(None)` on instance `a` right after
/// Redis lost its data (before the instances' fleet check noticed). `a`'s write makes `cgen` 1;
/// `b`, which saw `cgen` 2, takes that for a loss and writes its old `shadow=1` back, undoing
/// the deliberate change fleet-wide (and auditing it as "written back: Redis had lost it").
#[test]
fn a_deliberate_change_right_after_a_loss_is_not_undone_by_a_write_back() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let mut a = spawn(&redis, "a");
    let mut b = spawn(&redis, "b");
    assert_eq!(ask(&mut a, "set on").text, "@set ok");
    write_control(&redis, ControlChange::Notice("maintenance"));
    for i in [&mut a, &mut b] {
        until(i, &["override=Some(true)"], PROPAGATION);
        until_notice(i, "maintenance");
    }
    assert!(hash_field(&redis, "cgen").is_some());

    assert_eq!(redis.command("FLUSHALL").as_deref(), Some("+OK"));
    // The operator goes back to the declared mode (enforce), deliberately, after the loss.
    assert_eq!(ask(&mut a, "set default").text, "@set ok");

    let (field, views) = settled(&redis, &mut [&mut a, &mut b]);
    assert_eq!(
        (field.as_deref(), views),
        (None, vec!["a:None".to_owned(), "b:None".to_owned()]),
        "the operator's `default`, made after the loss, was undone by a write-back"
    );
}

/// Redis comes back from an older snapshot (here: the state hash as it was, restored with
/// `COPY .. REPLACE`) taken while the operator had the breaker in shadow and swapped; the
/// operator has since gone back to the declared mode and unswapped. Every instance saw the
/// newer controls (`cgen` 4 > 2), but the write-back only writes `Some(mode)` and
/// `swapped = true`: a cleared mode and an unswap are never written back, so the snapshot's
/// shadow and swap win and the fleet silently stops enforcing.
#[test]
fn an_older_snapshot_does_not_bring_back_a_mode_and_swap_the_operator_cleared() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let mut a = spawn(&redis, "a");
    let mut b = spawn(&redis, "b");
    assert_eq!(ask(&mut a, "set on").text, "@set ok");
    write_control(&redis, ControlChange::Swap(true));
    for i in [&mut a, &mut b] {
        until(i, &["override=Some(true)"], PROPAGATION);
    }
    let state = state_key();
    let snap = format!("{state}.snapshot");
    assert_eq!(
        redis.command(&format!("COPY {state} {snap}")).as_deref(),
        Some(":1")
    );
    // Later, the operator clears both.
    assert_eq!(ask(&mut a, "set default").text, "@set ok");
    write_control(&redis, ControlChange::Swap(false));
    for i in [&mut a, &mut b] {
        until(i, &["shadow=false", "override=None"], PROPAGATION);
        // And the unswap applied (the swapped order would answer `juso`).
        let deadline = Instant::now() + PROPAGATION;
        while ask(i, "call").field("got") != Some("daum") {
            assert!(
                Instant::now() < deadline,
                "the unswap never reached an instance"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(hash_field(&redis, "cgen").is_some());

    // Redis goes back to the snapshot's hash; the instances' next records notice.
    assert_eq!(
        redis
            .command(&format!("COPY {snap} {state} REPLACE"))
            .as_deref(),
        Some(":1")
    );
    for i in [&mut a, &mut b] {
        assert_eq!(ask(i, "call").field("got"), Some("daum"));
    }
    let (field, views) = settled(&redis, &mut [&mut a, &mut b]);
    let swapped = hash_field(&redis, "swapped");
    assert_eq!(
        (field.as_deref(), swapped.as_deref(), views),
        (
            None,
            Some("0"),
            vec!["a:None".to_owned(), "b:None".to_owned()]
        ),
        "the older snapshot's shadow and swap came back"
    );
}

/// Two instances with different views race their write-backs: `b` missed the operator's last
/// change (its controls message was lost; simulated by writing the control without
/// `PUBLISH`, while `b` is stopped so that no record of its own tells it), `a` applied it.
/// Redis is flushed; `a` writes `shadow=1` back (`cgen` 1); `b`, which saw `cgen` 3 > 1, then
/// writes its older `shadow=0` back (`cgen` 2), and `a` adopts it (2 > 1). The older value wins.
#[test]
fn a_stale_instances_write_back_does_not_win_over_a_newer_one() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let mut a = spawn(&redis, "a");
    let mut b = spawn(&redis, "b");
    assert_eq!(ask(&mut a, "set off").text, "@set ok");
    write_control(&redis, ControlChange::Notice("one"));
    write_control(&redis, ControlChange::Notice("two"));
    for i in [&mut a, &mut b] {
        until(i, &["override=Some(false)"], PROPAGATION);
        until_notice(i, "two");
    }
    let seen: u64 = hash_field(&redis, "cgen").unwrap().parse().unwrap();

    let stopped = Stopped::new(b.pid());
    // The operator's shadow=1 (cgen 4), whose message `b` never gets.
    let state = state_key();
    assert_eq!(
        redis
            .command(&format!(
                "EVAL \"redis.call('HSET', KEYS[1], 'shadow', '1') return redis.call('HINCRBY', KEYS[1], 'cgen', 1)\" 1 {state}"
            ))
            .as_deref(),
        Some(format!(":{}", seen + 1).as_str())
    );
    // `a` learns it from its next record's reply.
    assert_eq!(ask(&mut a, "call").field("got"), Some("daum"));
    until(&mut a, &["override=Some(true)"], PROPAGATION);

    assert_eq!(redis.command("FLUSHALL").as_deref(), Some("+OK"));
    // `a` notices (its next record's reply: `cgen` 0) and writes its newer mode back.
    assert_eq!(ask(&mut a, "call").field("got"), Some("daum"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while hash_field(&redis, "shadow").as_deref() != Some("1") {
        assert!(Instant::now() < deadline, "a never wrote back");
        std::thread::sleep(Duration::from_millis(20));
    }
    stopped.resume();

    let (field, views) = settled(&redis, &mut [&mut a, &mut b]);
    assert_eq!(
        (field.as_deref(), views),
        (
            Some("1"),
            vec!["a:Some(true)".to_owned(), "b:Some(true)".to_owned()]
        ),
        "the stale instance's older mode won over the newer one"
    );
}

/// The operator switches a busy enforcing fleet to shadow: WRITE_CONTROL deletes
/// `enforcing_until`, but an instance's flush sends its `RECORD`s *before* its housekeeping
/// reads the controls, so when the flush woken by the controls message has a `RECORD` due, it
/// carries the old mode (`enforcing = 1`) and writes `enforcing_until` back for `forget_ms`
/// (6 min): for that long every fleet alert is unmarked though no instance acts on calls.
/// Per instance and switch the chance is small (the wake must find a `RECORD` due); a busy
/// fleet of three, switched forty times, shows it.
#[test]
fn switching_a_busy_fleet_to_shadow_forgets_enforcing_until() {
    if fleet::role(ROLE).is_some() {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start();
    let mut fleet: Vec<Instance> = ["a", "b", "c"].iter().map(|l| spawn(&redis, l)).collect();
    let field = || hash_field_of(&redis, RATED, "enforcing_until");
    let rounds = 40;
    for i in &mut fleet {
        assert_eq!(
            ask(i, &format!("burst {}", rounds * 1000 + 5000)).text,
            "@burst started"
        );
    }
    let mut written_back = 0;
    for _ in 0..rounds {
        // Enforcing: the busy instances record it.
        write_control_of(&redis, RATED, ControlChange::Shadow(Some(false)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while field().is_none() {
            assert!(Instant::now() < deadline, "never recorded as enforcing");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(200));
        // The whole fleet to shadow.
        write_control_of(&redis, RATED, ControlChange::Shadow(Some(true)));
        for i in &mut fleet {
            let deadline = Instant::now() + PROPAGATION;
            while ask(i, "rated").field("shadow") != Some("true") {
                assert!(Instant::now() < deadline, "never went to shadow");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        if field().is_some() {
            written_back += 1;
        }
    }
    assert_eq!(
        written_back, 0,
        "switches to shadow after which enforcing_until was written back (the whole fleet in \
         shadow, yet fleet alerts unmarked for 6 min)"
    );
}
