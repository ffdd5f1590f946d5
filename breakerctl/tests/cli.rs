//! `breakerctl` run as a process against a `redis-server` of the test's own (no mocks). Where a
//! test needs "an instance reported this breaker" it seeds Redis as an instance would:
//! `HSET <prefix>:breakers` and the runtime's `FORCE` script.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use breaker_runtime::Forced;
use breaker_runtime::redis::{BreakerKeys, FleetReply, Force, Keys, ScriptCall};
use breaker_tests::{RedisCluster, RedisServer};
use redis::Commands as _;
use serde_json::Value as Json;

const P: &str = "t";

/// A connection to the test's server.
fn con(r: &RedisServer) -> redis::Connection {
    redis::Client::open(r.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// The breakerctl binary with a clean environment: no BREAKER_* variables, USER=tester.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_breakerctl"));
    for v in [
        "BREAKER_REDIS_URL",
        "BREAKER_REDIS_CLUSTER",
        "BREAKER_KEY_PREFIX",
        "LOGNAME",
    ] {
        c.env_remove(v);
    }
    c.env("USER", "tester");
    c
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn output(mut c: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("run breakerctl");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `breakerctl --redis <url> --prefix t <args>`.
fn ctl(r: &RedisServer, args: &[&str]) -> Run {
    let mut c = bin();
    c.args(["--redis", &r.url(), "--prefix", P]).args(args);
    output(c)
}

fn ok(r: &RedisServer, args: &[&str]) -> Run {
    let run = ctl(r, args);
    assert!(run.ok(), "breakerctl {args:?} failed: {run:?}");
    run
}

fn fails(r: &RedisServer, args: &[&str]) -> Run {
    let run = ctl(r, args);
    assert!(!run.ok(), "breakerctl {args:?} should fail: {run:?}");
    assert!(
        run.code.is_some_and(|c| c != 0),
        "must exit non-zero, not by a signal: {run:?}"
    );
    run
}

/// The fleet's keys (prefix `t`).
fn keys() -> Keys {
    Keys::new(P)
}

/// A breaker's keys.
fn key(name: &str) -> BreakerKeys {
    keys().breaker(name)
}

/// What an instance writes when it attaches a breaker.
fn report(con: &mut redis::Connection, name: &str, fallback: &str) {
    let _: () = con.hset(keys().breakers(), name, fallback).unwrap();
}

/// The runtime's FORCE script, as an instance runs it (`open`, `closed`, or empty to reset).
fn force(con: &mut redis::Connection, name: &str, mode: &str) {
    let forced = match mode {
        "open" => Some(Forced::Open),
        "closed" => Some(Forced::Closed),
        _ => None,
    };
    let fleet = keys();
    let _: FleetReply = Force {
        keys: &key(name),
        forced,
        channel: fleet.events(),
        name,
        seen_generation: 0,
    }
    .invocation()
    .invoke(con)
    .unwrap();
}

fn redis_now_ms(con: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(con).unwrap();
    s * 1000 + us / 1000
}

fn field(con: &mut redis::Connection, name: &str, f: &str) -> Option<String> {
    con.hget(key(name).state, f).unwrap()
}

fn audit(con: &mut redis::Connection) -> Vec<Json> {
    let raw: Vec<String> = con.lrange(keys().audit(), 0, -1).unwrap();
    raw.iter()
        .map(|r| serde_json::from_str(r).unwrap_or_else(|e| panic!("audit entry {r}: {e}")))
        .collect()
}

fn hostname() -> String {
    breaker_runtime::redis::hostname().expect("a hostname")
}

/// A fleet with `daum` (fallback `juso`) and `juso` (none) reported, both CLOSED.
fn fleet() -> (RedisServer, redis::Connection) {
    let r = RedisServer::start();
    let mut con = con(&r);
    report(&mut con, "daum", "juso");
    report(&mut con, "juso", "");
    force(&mut con, "daum", "");
    force(&mut con, "juso", "");
    (r, con)
}

fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{text}"))
}

#[test]
fn list_shows_state_window_controls_and_instances() {
    let (r, mut con) = fleet();
    report(&mut con, "kakao", "juso");
    force(&mut con, "daum", "open");
    ok(&r, &["inject", "daum", "error:0.5", "--for", "1m"]);
    ok(&r, &["notice", "daum", "Address search is slow"]);
    let now = redis_now_ms(&mut con);
    // kakao: OPEN by the fleet (not forced) for 30 s more.
    let _: () = con
        .hset_multiple(
            key("kakao").state,
            &[("state", "open"), ("gen", "7"), ("opens", "2")],
        )
        .unwrap();
    let _: () = con
        .hset(key("kakao").state, "open_until", now + 30_000)
        .unwrap();
    // daum's window: 2 s buckets (a 16 s window), written just now (RECORD sets it to expire
    // 9 buckets after each write); one bucket is too old to count.
    let cur = now / 2000;
    for (b, f, t) in [(cur, 2, 5), (cur - 3, 1, 1), (cur - 20, 7, 7)] {
        let _: () = con.hset(key("daum").window, format!("{b}:f"), f).unwrap();
        let _: () = con.hset(key("daum").window, format!("{b}:t"), t).unwrap();
    }
    let _: () = con.pexpire(key("daum").window, 18_000).unwrap();
    let _: () = con.hset(key("daum").state, "bucket_ms", 2000).unwrap();
    // Instances that reported failures (what `quorum` counts): web1 in the window, web3 long
    // before it.
    let _: () = con
        .hset(key("daum").failing, "web1:11:aaaaaaaa", cur)
        .unwrap();
    let _: () = con
        .hset(key("daum").failing, "web3:13:cccccccc", cur - 20)
        .unwrap();
    // Two instances of daum: one heartbeating, one silent for four minutes.
    let _: () = con
        .zadd(key("daum").instances, "web1:11:aaaaaaaa", now)
        .unwrap();
    let _: () = con
        .zadd(key("daum").instances, "web2:12:bbbbbbbb", now - 240_000)
        .unwrap();

    let run = ok(&r, &["list"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{run:?}");
    assert!(
        lines[0].starts_with("BREAKER") && lines[0].contains("FAILS/CALLS"),
        "{run:?}"
    );
    let daum: Vec<&str> = line_of(&run.stdout, "daum ").split_whitespace().collect();
    assert_eq!(
        &daum[..6],
        ["daum", "OPEN", "3/6", "open", "no", "-"],
        "{run:?}"
    );
    assert_eq!(daum[6], "error:0.5", "{run:?}");
    assert_eq!(daum.last(), Some(&"1"), "one instance seen: {run:?}");
    assert!(line_of(&run.stdout, "daum ").contains("\"Address search is slow\""));
    let kakao = line_of(&run.stdout, "kakao ");
    assert!(
        kakao.contains("OPEN (") && kakao.contains("s left)"),
        "{run:?}"
    );
    let juso: Vec<&str> = line_of(&run.stdout, "juso ").split_whitespace().collect();
    assert_eq!(
        juso,
        ["juso", "CLOSED", "0/0", "-", "no", "-", "-", "-", "0"]
    );

    let all = ok(&r, &["list", "--json"]).json();
    let all = all.as_array().unwrap();
    let names: Vec<&str> = all.iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["daum", "juso", "kakao"]);
    let d = &all[0];
    assert_eq!(d["state"], "open");
    assert_eq!(d["forced"], "open");
    assert_eq!(d["fallback"], "juso");
    assert_eq!(
        (d["window_failures"].as_u64(), d["window_calls"].as_u64()),
        (Some(3), Some(6))
    );
    assert_eq!(d["instances"], serde_json::json!(["web1:11:aaaaaaaa"]));
    assert_eq!(
        d["failing_instances"],
        serde_json::json!(["web1:11:aaaaaaaa"])
    );
    let status = ok(&r, &["status", "daum"]);
    assert!(
        line_of(&status.stdout, "failing").contains("1 instance(s) reported failures")
            && status.stdout.contains("web1:11:aaaaaaaa"),
        "{status:?}"
    );
    assert_eq!(d["controls"]["fault"], "error:0.5");
    let left = d["controls"]["fault_ms_left"].as_u64().unwrap();
    assert!(left > 50_000 && left <= 60_000, "{d}");
    assert_eq!(d["controls"]["notice"], "Address search is slow");
    assert_eq!(d["controls"]["notice_ms_left"], Json::Null, "until cleared");
    assert_eq!(all[1]["fallback"], Json::Null);
    assert_eq!(all[1]["state"], "closed");
    let k = &all[2];
    assert_eq!(
        (k["state"].as_str(), k["forced"].as_str()),
        (Some("open"), None)
    );
    assert_eq!((k["gen"].as_u64(), k["opens"].as_u64()), (Some(7), Some(2)));
    let left = k["open_ms_left"].as_u64().unwrap();
    assert!(left > 20_000 && left <= 30_000, "{k}");
}

#[test]
fn list_of_an_empty_prefix_says_so() {
    let r = RedisServer::start();
    let run = ok(&r, &["list"]);
    assert!(
        run.stdout
            .contains("no breaker has been reported under the prefix `t`"),
        "{run:?}"
    );
    assert_eq!(ok(&r, &["list", "--json"]).json(), serde_json::json!([]));
}

#[test]
fn status_shows_one_breaker_and_suggests_near_names() {
    let (r, mut con) = fleet();
    force(&mut con, "daum", "open");
    let now = redis_now_ms(&mut con);
    let _: () = con
        .zadd(key("daum").instances, "web1:11:aaaaaaaa", now)
        .unwrap();
    let _: () = con
        .zadd(key("daum").instances, "web3:13:cccccccc", now - 1000)
        .unwrap();
    let gen_now: u64 = field(&mut con, "daum", "gen").unwrap().parse().unwrap();

    let run = ok(&r, &["status", "daum"]);
    assert_eq!(
        line_of(&run.stdout, "state").split_whitespace().nth(1),
        Some("OPEN")
    );
    assert!(
        line_of(&run.stdout, "fallback").ends_with("juso"),
        "{run:?}"
    );
    assert!(line_of(&run.stdout, "forced").ends_with("open"), "{run:?}");
    assert!(
        line_of(&run.stdout, "gen").ends_with(&format!(" {gen_now}")),
        "{run:?}"
    );
    assert!(
        line_of(&run.stdout, "instances")
            .contains("2 seen in the last 3 minutes: web1:11:aaaaaaaa, web3:13:cccccccc"),
        "{run:?}"
    );
    let j = ok(&r, &["status", "daum", "--json"]).json();
    assert_eq!(j["gen"].as_u64(), Some(gen_now));
    assert_eq!(j["known"], true);
    assert_eq!(j["instances"].as_array().unwrap().len(), 2);

    let run = fails(&r, &["status", "daun"]);
    assert!(run.stderr.contains("unknown breaker `daun`"), "{run:?}");
    assert!(run.stderr.contains("did you mean `daum`?"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let run = fails(&r, &["status", "jsuo", "--json"]);
    assert!(run.stderr.contains("did you mean `juso`?"), "{run:?}");
}

#[test]
fn open_close_and_reset_run_the_force_script_and_are_audited() {
    let (r, mut con) = fleet();
    let gen0: u64 = field(&mut con, "daum", "gen").unwrap().parse().unwrap();

    let run = ok(&r, &["open", "daum"]);
    assert!(run.stdout.starts_with("daum: forced OPEN"), "{run:?}");
    assert_eq!(
        line_of(&run.stdout, "state").split_whitespace().nth(1),
        Some("OPEN")
    );
    assert_eq!(field(&mut con, "daum", "state").as_deref(), Some("open"));
    assert_eq!(field(&mut con, "daum", "forced").as_deref(), Some("open"));
    // Generations follow Redis's clock and always grow.
    let gen1: u64 = field(&mut con, "daum", "gen").unwrap().parse().unwrap();
    assert!(gen1 > gen0, "{gen1} after {gen0}");
    // The fleet marker learns of it (instances that miss the message re-sync).
    let hw: Option<String> = con.hget(keys().fleet(), "hw").unwrap();
    assert_eq!(hw, Some(gen1.to_string()));

    let j = ok(&r, &["close", "daum", "--json"]).json();
    assert_eq!(
        (j["state"].as_str(), j["forced"].as_str()),
        (Some("closed"), Some("closed"))
    );
    assert!(j["gen"].as_u64().unwrap() > gen1, "{j}");
    assert_eq!(field(&mut con, "daum", "forced").as_deref(), Some("closed"));

    // Reset clears the forced mode and the swap.
    ok(&r, &["swap", "daum"]);
    assert_eq!(field(&mut con, "daum", "swapped").as_deref(), Some("1"));
    let j = ok(&r, &["reset", "daum", "--json"]).json();
    assert_eq!(
        (j["state"].as_str(), &j["forced"]),
        (Some("closed"), &Json::Null)
    );
    assert_eq!(j["controls"]["swapped"], false);
    assert_eq!(field(&mut con, "daum", "forced").as_deref(), Some(""));
    assert_eq!(field(&mut con, "daum", "swapped").as_deref(), Some("0"));

    let entries = audit(&mut con);
    let commands: Vec<&str> = entries
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["reset", "swap", "close", "open"], "newest first");
    let who = format!("tester@{}", hostname());
    for e in &entries {
        assert_eq!(e["who"], who.as_str());
        assert_eq!(e["breaker"], "daum");
        assert!(e["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let at = e["at_ms"].as_u64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(at <= now && now - at < 60_000, "{e}");
    }
    assert_eq!(entries[3]["detail"], "forced open");
}

#[test]
fn who_falls_back_to_logname_then_unknown() {
    let (r, mut con) = fleet();
    let mut c = bin();
    c.env_remove("USER").env("LOGNAME", "ops");
    c.args(["--redis", &r.url(), "--prefix", P, "open", "daum"]);
    assert!(output(c).ok());
    let mut c = bin();
    c.env_remove("USER");
    c.args(["--redis", &r.url(), "--prefix", P, "close", "daum"]);
    assert!(output(c).ok());
    let entries = audit(&mut con);
    let host = hostname();
    assert_eq!(entries[1]["who"], format!("ops@{host}").as_str());
    assert_eq!(entries[0]["who"], format!("unknown@{host}").as_str());
}

#[test]
fn changes_refuse_unknown_names_unless_forced() {
    let (r, mut con) = fleet();
    for args in [
        &["open", "daun"][..],
        &["close", "daun"],
        &["reset", "daun"],
        &["swap", "daun"],
        &["shadow", "daun", "on"],
        &["shadow", "daun", "default"],
        &["inject", "daun", "error"],
        &["inject", "daun", "--clear"],
        &["notice", "daun", "down"],
        &["notice", "daun", "--clear"],
    ] {
        let run = fails(&r, args);
        assert!(
            run.stderr.contains("unknown breaker `daun`"),
            "{args:?}: {run:?}"
        );
        assert!(
            run.stderr.contains("did you mean `daum`?"),
            "{args:?}: {run:?}"
        );
        assert!(run.stderr.contains("--force"), "{args:?}: {run:?}");
    }
    let exists: bool = con.exists(key("daun").state).unwrap();
    assert!(!exists, "nothing was written for the unknown name");
    assert!(audit(&mut con).is_empty());

    let run = ok(&r, &["open", "daun", "--force"]);
    assert!(
        run.stdout
            .contains("unknown (no instance has reported this breaker)"),
        "{run:?}"
    );
    assert_eq!(field(&mut con, "daun", "forced").as_deref(), Some("open"));
    ok(&r, &["inject", "--force", "daun", "timeout"]);
    assert_eq!(field(&mut con, "daun", "fault").as_deref(), Some("timeout"));
    let entries = audit(&mut con);
    assert_eq!(entries.len(), 2);
    assert!(
        entries[1]["detail"]
            .as_str()
            .unwrap()
            .contains("never reported by an instance"),
        "{entries:?}"
    );
    // Known names never need --force, and --force on them changes nothing about the result.
    ok(&r, &["open", "daum", "--force"]);
    assert_eq!(field(&mut con, "daum", "forced").as_deref(), Some("open"));
}

#[test]
fn braces_are_refused_in_prefixes_and_in_names_even_with_force() {
    let (r, mut con) = fleet();
    // A brace would move the Redis Cluster hash tag of `<prefix>:{<name>}:s`.
    for prefix in ["a{b", "t}", "{t}"] {
        for args in [&["list"][..], &["open", "daum"]] {
            let mut c = bin();
            c.args(["--redis", &r.url(), "--prefix", prefix]).args(args);
            let run = output(c);
            assert_eq!(run.code, Some(1), "{prefix} {args:?}: {run:?}");
            assert!(
                run.stderr.contains(&format!("the key prefix `{prefix}`"))
                    && run.stderr.contains("`{` or `}`"),
                "{prefix} {args:?}: {run:?}"
            );
        }
        let env = output({
            let mut c = bin();
            c.env("BREAKER_KEY_PREFIX", prefix)
                .args(["--redis", &r.url(), "list"]);
            c
        });
        assert_eq!(env.code, Some(1), "{env:?}");
        assert!(env.stderr.contains("`{` or `}`"), "{env:?}");
    }
    for name in ["da{um}", "{daum}", "daum}"] {
        for args in [
            &["open", name, "--force"][..],
            &["swap", name, "--force"],
            &["shadow", name, "on", "--force"],
            &["inject", name, "error", "--force"],
            &["notice", name, "down", "--force"],
        ] {
            let run = fails(&r, args);
            assert!(
                run.stderr.contains(&format!("breaker name `{name}`"))
                    && run.stderr.contains("`{` or `}`"),
                "{args:?}: {run:?}"
            );
        }
    }
    let written: Vec<String> = con.keys("*").unwrap();
    assert!(
        written.iter().all(
            |k| k.matches('{').count() == 1 && k.matches('}').count() == 1
                || !k.contains(['{', '}'])
        ),
        "{written:?}"
    );
    assert!(audit(&mut con).is_empty());
}

#[test]
fn swap_toggles_and_refuses_a_breaker_without_fallback() {
    let (r, mut con) = fleet();
    let run = ok(&r, &["swap", "daum"]);
    assert!(
        run.stdout
            .starts_with("daum: swapped: calls go to the fallback `juso`"),
        "{run:?}"
    );
    assert!(line_of(&run.stdout, "swapped").ends_with("yes"));
    assert_eq!(field(&mut con, "daum", "swapped").as_deref(), Some("1"));
    let j = ok(&r, &["swap", "daum", "--json"]).json();
    assert_eq!(j["controls"]["swapped"], false);
    assert_eq!(field(&mut con, "daum", "swapped").as_deref(), Some("0"));
    let run = ok(&r, &["swap", "daum"]);
    assert_eq!(
        field(&mut con, "daum", "swapped").as_deref(),
        Some("1"),
        "{run:?}"
    );

    let run = fails(&r, &["swap", "juso"]);
    assert!(run.stderr.contains("`juso` has no fallback"), "{run:?}");
    assert_eq!(field(&mut con, "juso", "swapped"), None);
    let run = fails(&r, &["swap", "juso", "--force"]);
    assert!(run.stderr.contains("has no fallback"), "{run:?}");
    let details: Vec<String> = audit(&mut con)
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(details.len(), 3);
    assert!(details[0].starts_with("swapped") && details[1].starts_with("unswapped"));
}

#[test]
fn shadow_on_off_default_writes_the_field_bumps_cgen_announces_and_is_audited() {
    let (r, mut con) = fleet();
    let w = Watch::start(&r, true);
    let cgen = |con: &mut redis::Connection| -> u64 {
        field(con, "daum", "cgen").map_or(0, |c| c.parse().unwrap())
    };
    let before = cgen(&mut con);

    let run = ok(&r, &["shadow", "daum", "on"]);
    assert!(
        run.stdout
            .starts_with("daum: shadow mode on every instance"),
        "{run:?}"
    );
    assert!(
        line_of(&run.stdout, "mode ").starts_with("mode       shadow (set by an operator"),
        "{run:?}"
    );
    assert!(
        run.stderr.is_empty(),
        "no note for a breaker not forced: {run:?}"
    );
    assert_eq!(field(&mut con, "daum", "shadow").as_deref(), Some("1"));
    let first = cgen(&mut con);
    assert!(first > before, "WRITE_CONTROL moves cgen on");
    // Announced on the controls channel, read back with the mode.
    let j: Json = serde_json::from_str(&w.next()).unwrap();
    assert_eq!(
        (j["kind"].as_str(), j["breaker"].as_str()),
        (Some("controls"), Some("daum"))
    );
    assert_eq!(j["controls"]["shadow"], true, "{j}");
    // list and status show it; juso has no operator's mode.
    let list = ok(&r, &["list"]);
    assert!(
        line_of(&list.stdout, "BREAKER").contains("  SWAPPED  MODE  "),
        "{list:?}"
    );
    let daum: Vec<&str> = line_of(&list.stdout, "daum ").split_whitespace().collect();
    assert_eq!(&daum[4..6], ["no", "shadow"], "{list:?}");
    let juso: Vec<&str> = line_of(&list.stdout, "juso ").split_whitespace().collect();
    assert_eq!(&juso[4..6], ["no", "-"], "{list:?}");
    let all = ok(&r, &["list", "--json"]).json();
    assert_eq!(all[0]["controls"]["shadow"], true);
    assert_eq!(all[1]["controls"]["shadow"], Json::Null);

    let j = ok(&r, &["shadow", "daum", "off", "--json"]).json();
    assert_eq!(j["controls"]["shadow"], false, "{j}");
    assert_eq!(j["name"], "daum");
    assert_eq!(field(&mut con, "daum", "shadow").as_deref(), Some("0"));
    let second = cgen(&mut con);
    assert!(second > first);
    let status = ok(&r, &["status", "daum"]);
    assert!(
        line_of(&status.stdout, "mode ").contains("enforce (set by an operator)"),
        "{status:?}"
    );
    let line = w.next();
    assert!(line.contains(r#""shadow":false"#), "{line}");

    let run = ok(&r, &["shadow", "daum", "default"]);
    assert!(run.stdout.contains("back to its declared mode"), "{run:?}");
    assert_eq!(
        field(&mut con, "daum", "shadow"),
        None,
        "the field is deleted"
    );
    assert!(cgen(&mut con) > second);
    assert!(
        line_of(&run.stdout, "mode ").contains("declared"),
        "{run:?}"
    );
    let j: Json = serde_json::from_str(&w.next()).unwrap();
    assert_eq!(j["controls"]["shadow"], Json::Null, "{j}");
    // Twice the same: still a change of its own (audited, announced), same field.
    ok(&r, &["shadow", "daum", "default"]);
    assert_eq!(field(&mut con, "daum", "shadow"), None);

    let entries = audit(&mut con);
    let got: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["command"].as_str().unwrap(),
                e["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("shadow", "declared mode"),
            ("shadow", "declared mode"),
            ("shadow", "enforce"),
            ("shadow", "shadow"),
        ],
        "newest first, the runtime's own words"
    );
    let who = format!("tester@{}", hostname());
    assert!(
        entries
            .iter()
            .all(|e| e["who"] == who.as_str() && e["breaker"] == "daum")
    );
    // `watch` in words.
    let words = Watch::start(&r, false);
    ok(&r, &["shadow", "juso", "on"]);
    let line = words.next();
    assert!(
        line.contains("  juso  controls  not swapped, no fault, no notice, mode shadow"),
        "{line}"
    );
}

#[test]
fn shadow_refuses_a_bad_mode_and_notes_a_forced_open_or_a_swap() {
    let (r, mut con) = fleet();
    for args in [
        &["shadow", "daum", "maybe"][..],
        &["shadow", "daum", "ON"],
        &["shadow", "daum", "1"],
        &["shadow", "daum", ""],
        &["shadow", "daum"],
        &["shadow"],
    ] {
        let run = fails(&r, args);
        assert_eq!(run.code, Some(2), "a usage error: {args:?}: {run:?}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run:?}");
        assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    }
    let run = fails(&r, &["shadow", "daum", "maybe"]);
    assert!(
        run.stderr.contains("invalid value 'maybe'")
            && run.stderr.contains("[possible values: on, off, default]"),
        "{run:?}"
    );
    assert_eq!(field(&mut con, "daum", "shadow"), None);
    assert!(audit(&mut con).is_empty(), "nothing was done");

    // A force-open wins over shadow: said once, on stderr, whatever the output format.
    force(&mut con, "daum", "open");
    let run = ok(&r, &["shadow", "daum", "on"]);
    let notes: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(notes.len(), 1, "{run:?}");
    assert!(
        notes[0].starts_with("breakerctl: note: `daum` is forced OPEN")
            && notes[0].contains("rejects calls even in shadow mode")
            && notes[0].contains("breakerctl reset daum"),
        "{run:?}"
    );
    assert_eq!(field(&mut con, "daum", "shadow").as_deref(), Some("1"));
    let run = ok(&r, &["shadow", "daum", "on", "--json"]);
    assert_eq!(run.json()["forced"], "open", "stdout stays JSON: {run:?}");
    assert!(run.stderr.contains("forced OPEN"), "{run:?}");
    // Enforcing or going back to the declared mode: nothing to say.
    for mode in ["off", "default"] {
        let run = ok(&r, &["shadow", "daum", mode]);
        assert!(run.stderr.is_empty(), "{mode}: {run:?}");
    }
    // Forced closed: calls run anyway, no note.
    force(&mut con, "daum", "closed");
    assert!(ok(&r, &["shadow", "daum", "on"]).stderr.is_empty());
    // A swap is dormant in shadow.
    force(&mut con, "daum", "");
    ok(&r, &["swap", "daum"]);
    let run = ok(&r, &["shadow", "daum", "on"]);
    assert!(
        run.stderr
            .starts_with("breakerctl: note: `daum` is swapped: the swap is dormant"),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}

#[test]
fn a_shadow_field_an_instance_would_not_read_shows_as_no_mode() {
    let (r, mut con) = fleet();
    // Written by something else than WRITE_CONTROL: instances read it as no operator's mode
    // (READ_CONTROLS), and so does breakerctl.
    let _: () = con.hset(key("daum").state, "shadow", "yes").unwrap();
    let j = ok(&r, &["status", "daum", "--json"]).json();
    assert_eq!(j["controls"]["shadow"], Json::Null, "{j}");
    let list = ok(&r, &["list"]);
    let daum: Vec<&str> = line_of(&list.stdout, "daum ").split_whitespace().collect();
    assert_eq!(daum[5], "-", "{list:?}");
}

#[test]
fn inject_writes_the_canonical_fault_for_a_time() {
    let (r, mut con) = fleet();
    let run = ok(&r, &["inject", "daum", "error:0.50", "--for", "30s"]);
    assert!(
        run.stdout
            .starts_with("daum: fault `error:0.5` injected for 30s"),
        "{run:?}"
    );
    let now = redis_now_ms(&mut con);
    assert_eq!(
        field(&mut con, "daum", "fault").as_deref(),
        Some("error:0.5")
    );
    let until: u64 = field(&mut con, "daum", "fault_until")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        until > now + 25_000 && until <= now + 30_000,
        "{until} vs {now}"
    );

    // Default: 10 minutes. The canonical form of a delay is in ms.
    let j = ok(&r, &["inject", "daum", "delay:2s", "--json"]).json();
    assert_eq!(j["controls"]["fault"], "delay:2000ms");
    let left = j["controls"]["fault_ms_left"].as_u64().unwrap();
    assert!(left > 590_000 && left <= 600_000, "{j}");
    assert_eq!(
        field(&mut con, "daum", "fault").as_deref(),
        Some("delay:2000ms")
    );

    let cgen = field(&mut con, "daum", "cgen");
    for (args, needle) in [
        (
            &["inject", "daum", "explode"][..],
            "`explode` is not a fault",
        ),
        (&["inject", "daum", "error:1.5"], "at most 1"),
        (&["inject", "daum", "delay:2"], "no unit"),
        (&["inject", "daum", "timeout:3s"], "takes no argument"),
        (
            &["inject", "daum", "open", "--for", "soon"],
            "not a duration",
        ),
        (&["inject", "daum"], "required"),
        (
            &["inject", "daum", "error", "--clear"],
            "cannot be used with",
        ),
    ] {
        let run = fails(&r, args);
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }
    assert_eq!(field(&mut con, "daum", "cgen"), cgen, "nothing written");
    assert_eq!(
        field(&mut con, "daum", "fault").as_deref(),
        Some("delay:2000ms")
    );

    let run = ok(&r, &["inject", "daum", "--clear"]);
    assert!(run.stdout.starts_with("daum: fault cleared"), "{run:?}");
    assert!(line_of(&run.stdout, "fault").ends_with("none"), "{run:?}");
    assert_eq!(field(&mut con, "daum", "fault").as_deref(), Some(""));
    let details: Vec<String> = audit(&mut con)
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        details,
        ["fault cleared", "delay:2000ms for 10m", "error:0.5 for 30s"]
    );
}

#[test]
fn notice_posts_until_cleared_or_for_a_time() {
    let (r, mut con) = fleet();
    let run = ok(
        &r,
        &[
            "notice",
            "daum",
            "Address search is slow; retry in a minute",
        ],
    );
    assert!(
        run.stdout.starts_with("daum: notice posted until cleared"),
        "{run:?}"
    );
    assert_eq!(
        field(&mut con, "daum", "notice").as_deref(),
        Some("Address search is slow; retry in a minute")
    );
    assert_eq!(
        field(&mut con, "daum", "notice_until").as_deref(),
        Some("0")
    );

    let j = ok(
        &r,
        &["notice", "daum", "Back soon", "--for", "1h", "--json"],
    )
    .json();
    assert_eq!(j["controls"]["notice"], "Back soon");
    let left = j["controls"]["notice_ms_left"].as_u64().unwrap();
    assert!(left > 3_590_000 && left <= 3_600_000, "{j}");
    let now = redis_now_ms(&mut con);
    let until: u64 = field(&mut con, "daum", "notice_until")
        .unwrap()
        .parse()
        .unwrap();
    assert!(until > now + 3_590_000 && until <= now + 3_600_000);

    for (args, needle) in [
        (&["notice", "daum", ""][..], "a notice needs some text"),
        (&["notice", "daum", "   "], "a notice needs some text"),
        (&["notice", "daum"], "required"),
        (&["notice", "daum", "x", "--for", "0s"], "zero"),
        (&["notice", "daum", "x", "--clear"], "cannot be used with"),
    ] {
        let run = fails(&r, args);
        assert!(run.stderr.contains(needle), "{args:?}: {run:?}");
    }
    assert_eq!(
        field(&mut con, "daum", "notice").as_deref(),
        Some("Back soon")
    );

    ok(&r, &["notice", "daum", "--clear"]);
    assert_eq!(field(&mut con, "daum", "notice").as_deref(), Some(""));
    let details: Vec<String> = audit(&mut con)
        .iter()
        .map(|e| e["detail"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        details,
        [
            "notice cleared",
            "\"Back soon\" for 1h",
            "\"Address search is slow; retry in a minute\" until cleared"
        ]
    );
}

#[test]
fn notices_with_control_or_bidi_characters_or_too_long_are_refused() {
    let (r, mut con) = fleet();
    let long = "x".repeat(501);
    for (text, needle) in [
        ("down \x1b[31mnow", "U+001B at character 6"),
        ("see \u{202e}exe.live", "U+202E at character 5"),
        ("two\nlines", "U+000A at character 4"),
        (long.as_str(), "at most 500"),
    ] {
        let run = fails(&r, &["notice", "daum", text]);
        assert_eq!(run.code, Some(1), "{text:?}: {run:?}");
        assert!(run.stderr.contains(needle), "{text:?}: {run:?}");
        assert!(!run.stderr.contains('\x1b'), "{run:?}");
    }
    assert_eq!(field(&mut con, "daum", "notice"), None, "nothing written");
    assert!(audit(&mut con).is_empty());
    ok(&r, &["notice", "daum", &"주".repeat(500)]);
}

#[test]
fn global_flags_work_before_or_after_the_subcommand_and_from_the_environment() {
    let (r, mut con) = fleet();
    let after = output({
        let mut c = bin();
        c.args(["open", "daum", "--json", "--prefix", P, "--redis", &r.url()]);
        c
    });
    assert!(after.ok(), "{after:?}");
    assert_eq!(after.json()["forced"], "open");

    let env = output({
        let mut c = bin();
        c.env("BREAKER_REDIS_URL", r.url())
            .env("BREAKER_KEY_PREFIX", P)
            .args(["status", "daum", "--json"]);
        c
    });
    assert!(env.ok(), "{env:?}");
    assert_eq!(env.json()["forced"], "open");

    // A flag beats the environment; the default prefix is `breaker`.
    let _: () = con.hset("breaker:breakers", "other", "").unwrap();
    let default = output({
        let mut c = bin();
        c.env("BREAKER_REDIS_URL", "redis://127.0.0.1:1/").args([
            "list",
            "--redis",
            &r.url(),
            "--json",
        ]);
        c
    });
    assert!(default.ok(), "{default:?}");
    let names: Vec<String> = default
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["other"]);

    let none = output({
        let mut c = bin();
        c.arg("list");
        c
    });
    assert!(!none.ok());
    assert!(none.stderr.contains("no Redis given"), "{none:?}");
}

#[test]
fn an_unreachable_redis_fails_fast_naming_the_url_without_its_password() {
    // Nothing listens on port 1 (a free port from the OS could be taken by a parallel test).
    let port = 1;
    let url = format!("redis://admin:hunter2@127.0.0.1:{port}/");
    for args in [&["list"][..], &["open", "daum"], &["watch"]] {
        let start = Instant::now();
        let run = output({
            let mut c = bin();
            c.args(["--redis", &url]).args(args);
            c
        });
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert!(run.code.is_some_and(|c| c != 0), "{run:?}");
        assert!(
            run.stderr.contains(&format!(
                "cannot reach Redis at redis://admin:***@127.0.0.1:{port}/"
            )),
            "{run:?}"
        );
        assert!(!run.stderr.contains("hunter2"), "{run:?}");
    }
}

#[test]
fn a_redis_that_does_not_answer_times_out() {
    // SIGSTOPped: the port accepts, nothing answers.
    let r = RedisServer::start();
    let pid = r.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let run = ctl(&r, &["list"]);
    let took = start.elapsed();
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(!run.ok(), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("cannot reach Redis at {}", r.url())),
        "{run:?}"
    );
}

/// Lines of a child's pipe, through a thread, so reads can time out.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running `breakerctl watch`, killed (by its pid) when dropped.
struct Watch {
    child: Child,
    out: mpsc::Receiver<String>,
}

impl Watch {
    fn start(r: &RedisServer, json: bool) -> Watch {
        let mut c = bin();
        c.args(["--redis", &r.url(), "--prefix", P, "watch"]);
        if json {
            c.arg("--json");
        }
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn breakerctl watch");
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        // Subscribed once it says so.
        let first = err
            .recv_timeout(Duration::from_secs(10))
            .expect("watch says it is watching");
        assert!(
            first.starts_with("watching t:events and t:controls"),
            "{first}"
        );
        Watch { child, out }
    }

    fn next(&self) -> String {
        self.out
            .recv_timeout(Duration::from_secs(10))
            .expect("watch printed a line within 10 s")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_prints_a_line_per_change() {
    let (r, _con) = fleet();
    let w = Watch::start(&r, false);
    ok(&r, &["open", "daum"]);
    let line = w.next();
    assert!(line.contains("  daum  OPEN  gen "), "{line}");
    assert!(line.contains("forced open"), "{line}");
    assert!(line.contains("alert opened"), "{line}");
    ok(&r, &["inject", "daum", "error:0.25", "--for", "1m"]);
    let line = w.next();
    assert!(
        line.contains("  daum  controls  not swapped, fault error:0.25 ("),
        "{line}"
    );
    assert!(line.contains("no notice"), "{line}");
    ok(&r, &["reset", "daum"]);
    let line = w.next();
    assert!(line.contains("  daum  CLOSED  gen "), "{line}");
    assert!(!line.contains("forced"), "{line}");

    let wj = Watch::start(&r, true);
    ok(&r, &["close", "daum"]);
    for w in [&w, &wj] {
        let line = w.next();
        if std::ptr::eq(w, &wj) {
            let j: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(j["kind"], "event");
            assert_eq!(
                (j["breaker"].as_str(), j["state"].as_str()),
                (Some("daum"), Some("closed"))
            );
            assert_eq!(j["forced"], "closed");
            assert!(j["gen"].as_u64().is_some_and(|g| g >= 4), "{j}");
        } else {
            assert!(
                line.contains("daum  CLOSED") && line.contains("forced closed"),
                "{line}"
            );
        }
    }
    ok(&r, &["notice", "daum", "down", "--for", "5m"]);
    let j: Json = serde_json::from_str(&wj.next()).unwrap();
    assert_eq!(j["kind"], "controls");
    assert_eq!(j["controls"]["notice"], "down");
    assert_eq!(j["controls"]["fault"], "error:0.25");
}

#[test]
fn audit_lists_newest_first_keeps_1000_and_shows_unreadable_entries() {
    let (r, mut con) = fleet();
    let filler: Vec<String> = (0..1000)
        .map(|i| {
            serde_json::json!({"at_ms": i, "who": "old@host", "command": "open", "breaker": "daum", "detail": "old"})
                .to_string()
        })
        .collect();
    let _: () = con.rpush(keys().audit(), &filler).unwrap();
    ok(&r, &["open", "daum"]);
    ok(&r, &["swap", "daum"]);
    let len: usize = con.llen(keys().audit()).unwrap();
    assert_eq!(len, 1000, "trimmed to 1000");

    let j = ok(&r, &["audit", "--limit", "3", "--json"]).json();
    let j = j.as_array().unwrap();
    assert_eq!(j.len(), 3);
    assert_eq!(j[0]["command"], "swap");
    assert_eq!(j[1]["command"], "open");
    assert_eq!(j[2]["who"], "old@host");

    let run = ok(&r, &["audit"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 21, "a header and the default 20: {run:?}");
    assert!(lines[0].starts_with("AT (UTC)") && lines[0].contains("DETAIL"));
    assert!(
        lines[1].contains(&format!("tester@{}", hostname())) && lines[1].contains("swap"),
        "{run:?}"
    );
    assert!(lines[1].contains("swapped: calls go to `juso`"), "{run:?}");

    let _: () = con.lpush(keys().audit(), "not json").unwrap();
    let run = ok(&r, &["audit", "--limit", "1"]);
    assert!(run.stdout.contains("unreadable entry: not json"), "{run:?}");
    let j = ok(&r, &["audit", "--limit", "1", "--json"]).json();
    assert_eq!(j[0]["unreadable"], "not json");
}

#[test]
fn a_cluster_works_from_the_environment() {
    let cluster = RedisCluster::start();
    let nodes = cluster.urls();
    let urls: Vec<&str> = nodes.split(',').collect();
    let client = redis::cluster::ClusterClient::new(urls.clone()).unwrap();
    let mut con = client.get_connection().unwrap();
    // Names chosen to land on different nodes' slots.
    for name in ["daum", "juso", "kakao", "naver"] {
        let _: () = con.hset(keys().breakers(), name, "juso").unwrap();
    }
    let run_env = |args: &[&str]| {
        let mut c = bin();
        c.env("BREAKER_REDIS_CLUSTER", urls.join(","))
            .env("BREAKER_KEY_PREFIX", P)
            .args(args);
        output(c)
    };
    let mut c = bin();
    c.env("BREAKER_REDIS_CLUSTER", urls.join(","))
        .env("BREAKER_KEY_PREFIX", P)
        .args(["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let first = err.recv_timeout(Duration::from_secs(10)).expect("watching");
    assert!(first.starts_with("watching t:events"), "{first}");

    for name in ["daum", "kakao", "naver"] {
        let run = run_env(&["open", name, "--json"]);
        assert!(run.ok(), "{run:?}");
        assert_eq!(run.json()["forced"], "open");
        let forced: String = con.hget(key(name).state, "forced").unwrap();
        assert_eq!(forced, "open");
    }
    let run = run_env(&["inject", "juso", "open"]);
    assert!(run.ok(), "{run:?}");
    let all = run_env(&["list", "--json"]);
    assert!(all.ok(), "{all:?}");
    let forced: Vec<Json> = all
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["forced"].clone())
        .collect();
    assert_eq!(
        forced,
        [
            serde_json::json!("open"),
            Json::Null,
            serde_json::json!("open"),
            serde_json::json!("open")
        ]
    );

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let line = out
            .recv_timeout(Duration::from_secs(10))
            .expect("a watch line");
        let j: Json = serde_json::from_str(&line).unwrap();
        seen.push((
            j["kind"].as_str().unwrap().to_owned(),
            j["breaker"].as_str().unwrap().to_owned(),
        ));
    }
    seen.sort();
    let expect: Vec<(String, String)> = [
        ("controls", "juso"),
        ("event", "daum"),
        ("event", "kakao"),
        ("event", "naver"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(seen, expect);
    let audit: Vec<String> = con.lrange(keys().audit(), 0, -1).unwrap();
    assert_eq!(audit.len(), 4);
    let _ = child.kill();
    let _ = child.wait();
}

/// What a terminal must never receive from data in Redis: ESC (ANSI and OSC sequences), BEL,
/// the one-character CSI U+009B, a bidi override, a newline inside a field.
const RAW: [char; 4] = ['\x1b', '\x07', '\u{9b}', '\u{202e}'];

fn assert_no_raw(what: &str, text: &str) {
    assert!(
        !text.contains(RAW),
        "{what} printed a raw control:\n{text:?}"
    );
}

#[test]
fn text_from_redis_is_printed_with_its_control_characters_escaped() {
    use breaker_runtime::redis::{ControlChange, Controls, WriteControl};
    let (r, mut con) = fleet();
    // An old version or a hostile writer, straight into Redis: no runtime check on the way.
    let write = |con: &mut redis::Connection, change: ControlChange<'_>| {
        let _: Controls = WriteControl {
            keys: &key("daum"),
            change,
            for_ms: 0,
            channel: keys().controls(),
            name: "daum",
        }
        .invocation()
        .invoke(con)
        .unwrap();
    };
    write(
        &mut con,
        ControlChange::Notice("red \x1b[31malert\x1b[0m \u{202e}exe.live\nFAKE LINE"),
    );
    write(&mut con, ControlChange::Fault("error\x1b[2J"));
    let now = redis_now_ms(&mut con);
    let _: () = con
        .zadd(key("daum").instances, "host\x1b]0;pwned\x07:1:ab", now)
        .unwrap();
    report(&mut con, "evil\x1b[5mname", "ju\u{9b}31mso");
    let entry = serde_json::json!({
        "at_ms": now,
        "who": "mallory\x1b[2J@host",
        "command": "open\u{9b}31m",
        "breaker": "daum\u{202e}",
        "detail": "forced open\nFAKE LINE \x1b[31m",
    });
    let _: () = con.lpush(keys().audit(), entry.to_string()).unwrap();
    let _: () = con.lpush(keys().audit(), "not json \x1b[31m").unwrap();

    let audit = ok(&r, &["audit"]);
    assert_no_raw("audit", &audit.stdout);
    for escaped in [
        r"mallory\u{1b}[2J@host",
        r"open\u{9b}31m",
        r"daum\u{202e}",
        r"forced open\u{a}FAKE LINE \u{1b}[31m",
        r"unreadable entry: not json \u{1b}[31m",
    ] {
        assert!(audit.stdout.contains(escaped), "{escaped}: {audit:?}");
    }
    assert!(
        !audit.stdout.lines().any(|l| l.starts_with("FAKE")),
        "a newline in a field forged a line: {audit:?}"
    );

    let status = ok(&r, &["status", "daum"]);
    assert_no_raw("status", &status.stdout);
    for escaped in [
        r"red \u{1b}[31malert\u{1b}[0m \u{202e}exe.live\u{a}FAKE LINE",
        r"error\u{1b}[2J",
        r"host\u{1b}]0;pwned\u{7}:1:ab",
    ] {
        assert!(status.stdout.contains(escaped), "{escaped}: {status:?}");
    }
    let status = ok(&r, &["status", "evil\x1b[5mname"]);
    assert_no_raw("status", &status.stdout);
    assert!(
        status.stdout.contains(r"evil\u{1b}[5mname") && status.stdout.contains(r"ju\u{9b}31mso"),
        "{status:?}"
    );

    let list = ok(&r, &["list"]);
    assert_no_raw("list", &list.stdout);
    assert!(list.stdout.contains(r"evil\u{1b}[5mname"), "{list:?}");
    assert!(list.stdout.contains(r"error\u{1b}[2J"), "{list:?}");
    assert!(list.stdout.contains(r"red \u{1b}[31m"), "{list:?}");

    // JSON: the same values, every control written as a JSON escape (serde_json leaves DEL,
    // the C1 controls and the bidi controls raw).
    let j = ok(&r, &["audit", "--json"]);
    assert_no_raw("audit --json", &j.stdout);
    let j = j.json();
    assert_eq!(j[1]["command"], "open\u{9b}31m");
    assert_eq!(j[1]["breaker"], "daum\u{202e}");
    assert_eq!(j[0]["unreadable"], "not json \x1b[31m");
    let j = ok(&r, &["status", "daum", "--json"]);
    assert_no_raw("status --json", &j.stdout);
    assert!(j.stdout.contains(r"\u202e"), "{j:?}");
    assert_eq!(
        j.json()["controls"]["notice"],
        "red \x1b[31malert\x1b[0m \u{202e}exe.live\nFAKE LINE"
    );
    let j = ok(&r, &["list", "--json"]);
    assert_no_raw("list --json", &j.stdout);
    assert!(
        j.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["fallback"] == "ju\u{9b}31mso"),
        "{j:?}"
    );

    // Errors quote Redis's data too.
    report(&mut con, "broken", "");
    let _: () = con
        .hset(key("broken").state, "state", "open\x1b[2J")
        .unwrap();
    let run = fails(&r, &["status", "broken"]);
    assert_no_raw("an error", &run.stderr);
    assert!(run.stderr.contains(r"open\u{1b}[2J"), "{run:?}");

    // Live messages.
    let w = Watch::start(&r, false);
    let _: () = con
        .publish(keys().events(), "evil\x1b[2J|open|5|100||1|opened|")
        .unwrap();
    let line = w.next();
    assert_no_raw("watch", &line);
    assert!(line.contains(r"evil\u{1b}[2J  OPEN"), "{line}");
    let _: () = con.publish(keys().controls(), "daum").unwrap();
    let line = w.next();
    assert_no_raw("watch", &line);
    assert!(line.contains(r#"notice "red \u{1b}[31malert"#), "{line}");
    let wj = Watch::start(&r, true);
    let _: () = con
        .publish(keys().events(), "ev\u{202e}il|open|6|100||1|opened|")
        .unwrap();
    let line = wj.next();
    assert_no_raw("watch --json", &line);
    let j: Json = serde_json::from_str(&line).unwrap();
    assert_eq!(j["breaker"], "ev\u{202e}il");
}
