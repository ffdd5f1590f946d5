//! Alerts reach the team exactly once per fleet transition, whatever the number of instances:
//! real `redis-server`, instances as OS processes (this test binary re-run with `ALERT_ROLE`),
//! and a real HTTP server standing in for the webhook receiver and the Telegram Bot API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use breaker_runtime::redis::{Force, Keys, RaiseHw, ScriptCall, connect};
use breaker_runtime::{Forced, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Scratch, Spawn, Stderr, report};
use breaker_tests::{HttpReceiver, RedisServer, TestError};

const ROLE: &str = "ALERT_ROLE";
const DIR: &str = "ALERT_DIR";
const TOKEN: &str = "123456:test-token-never-logged";

fn flag(name: &str) -> bool {
    std::env::var_os(DIR).is_some_and(|d| Path::new(&d).join(name).exists())
}

#[circuit_breaker(
    name = "alerts.daum",
    fallback = juso,
    threshold = 3,
    window = "10s",
    open_for = "1s",
    store = "redis"
)]
async fn daum(q: u32) -> Result<u32, TestError> {
    if flag("daum-down") {
        Err(TestError::Down("daum"))
    } else {
        Ok(q)
    }
}

async fn juso(q: u32) -> Result<u32, TestError> {
    if flag("juso-down") {
        Err(TestError::Down("juso"))
    } else {
        Ok(q + 1000)
    }
}

/// The instance: calls every 5 ms until the parent creates `stop`.
#[test]
fn alert_child() {
    let Some(role) = fleet::role(ROLE) else {
        return;
    };
    if role == "latency" {
        return latency_child();
    }
    assert_eq!(role, "instance");
    fleet::run(async {
        let _ = daum(1).await;
        report("ready", "");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !flag("stop") && Instant::now() < deadline {
            let _ = daum(1).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // Alerts still in the HTTP queues are delivered before the process exits.
    assert!(breaker_runtime::flush_notifications(Duration::from_secs(5)));
}

/// `n` instances sharing `redis` under the prefix `alerts-<tag>`, alerting `hooks`, steered
/// through the flag files of a scratch directory of their own.
struct Fleet {
    instances: Vec<Instance>,
    scratch: Scratch,
}

impl Fleet {
    fn start(n: usize, redis: &RedisServer, hooks: &HttpReceiver, tag: &str) -> Fleet {
        let scratch = Scratch::new(&format!("alerts-{tag}"));
        let instances: Vec<Instance> = (0..n)
            .map(|i| {
                Spawn::new("alert_child", ROLE, "instance")
                    .label(format!("instance {i}"))
                    .env(DIR, scratch.dir())
                    .env("BREAKER_REDIS_URL", redis.url())
                    .env("BREAKER_KEY_PREFIX", format!("alerts-{tag}"))
                    .env("BREAKER_WEBHOOK_URL", hooks.url(&format!("/hook/{tag}")))
                    .env("BREAKER_TELEGRAM_TOKEN", TOKEN)
                    .env("BREAKER_TELEGRAM_CHAT", "-10042")
                    .env("BREAKER_TELEGRAM_API", hooks.url(&format!("/tg/{tag}")))
                    .stderr(Stderr::Capture)
                    .start()
            })
            .collect();
        for i in &instances {
            i.expect("ready", Duration::from_secs(30));
        }
        Fleet { instances, scratch }
    }

    fn set(&self, name: &str, on: bool) {
        if on {
            self.scratch.touch(name);
        } else {
            self.scratch.remove(name);
        }
    }

    /// Stops every instance; asserts that each passed; their logs (`@` lines and stderr).
    fn stop(mut self) -> String {
        self.set("stop", true);
        let mut logs = String::new();
        for i in std::mem::take(&mut self.instances) {
            let out = i.finish();
            for l in &out.lines {
                logs.push_str(&l.text);
                logs.push('\n');
            }
            logs.push_str(&out.stderr);
        }
        logs
    }

    /// SIGKILLs the instance with process id `pid` (it is no longer waited for by `stop`).
    fn kill(&mut self, pid: u32) {
        let i = self
            .instances
            .iter()
            .position(|c| c.pid() == pid)
            .unwrap_or_else(|| panic!("no instance with pid {pid}"));
        self.instances.remove(i).kill();
    }
}

/// Webhook `kind`s received under `/hook/<tag>`, and Telegram texts under `/tg/<tag>`.
fn alerts(hooks: &HttpReceiver, tag: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let mut webhook = Vec::new();
    let mut telegram = Vec::new();
    for r in hooks.received() {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
        if r.path == format!("/hook/{tag}") {
            webhook.push(body);
        } else if r.path == format!("/tg/{tag}/bot{TOKEN}/sendMessage") {
            telegram.push(body);
        }
    }
    (webhook, telegram)
}

fn count(webhook: &[serde_json::Value], kind: &str) -> usize {
    webhook.iter().filter(|b| b["kind"] == kind).count()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool, hooks: &HttpReceiver) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; received: {:#?}",
            hooks.received()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One scenario: the primary fails (opened), then its fallback too (chain failed), then both
/// recover (recovered). Returns the webhook bodies and Telegram messages received.
fn scenario(
    n: usize,
    redis: &RedisServer,
    hooks: &HttpReceiver,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let tag = format!("n{n}");
    let fleet = Fleet::start(n, redis, hooks, &tag);
    // Startup is not news: nothing is alerted.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(alerts(hooks, &tag).0.len(), 0, "alerts at startup");

    fleet.set("daum-down", true);
    wait_until(
        "the opened alert",
        || count(&alerts(hooks, &tag).0, "opened") >= 1,
        hooks,
    );
    fleet.set("juso-down", true);
    wait_until(
        "the chain_failed alert",
        || count(&alerts(hooks, &tag).0, "chain_failed") >= 1,
        hooks,
    );
    // Let every instance see failing fallbacks for a while: still one alert.
    std::thread::sleep(Duration::from_millis(800));
    fleet.set("juso-down", false);
    fleet.set("daum-down", false);
    wait_until(
        "the recovered alert",
        || count(&alerts(hooks, &tag).0, "recovered") >= 1,
        hooks,
    );
    // Time for duplicates to show up, if there were any.
    std::thread::sleep(Duration::from_millis(1500));
    let logs = fleet.stop();
    assert!(
        !logs.contains(TOKEN),
        "the Telegram token leaked into the logs"
    );
    alerts(hooks, &tag)
}

#[test]
fn one_alert_per_fleet_transition_with_4_instances_as_with_1() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let hooks = HttpReceiver::start();
    for n in [1, 4] {
        let (webhook, telegram) = scenario(n, &redis, &hooks);
        let kinds: Vec<_> = webhook.iter().map(|b| b["kind"].clone()).collect();
        assert_eq!(count(&webhook, "opened"), 1, "{n} instances: {kinds:?}");
        assert_eq!(
            count(&webhook, "chain_failed"),
            1,
            "{n} instances: {kinds:?}"
        );
        assert_eq!(count(&webhook, "recovered"), 1, "{n} instances: {kinds:?}");
        assert_eq!(webhook.len(), 3, "{n} instances: {kinds:?}");
        assert_eq!(telegram.len(), 3, "{n} instances: {telegram:?}");
        let opened = webhook.iter().find(|b| b["kind"] == "opened").unwrap();
        assert_eq!(opened["breaker"], "alerts.daum");
        assert_eq!(opened["from"], "closed");
        assert_eq!(opened["to"], "open");
        assert_eq!(opened["fallback"], "juso");
        assert_eq!(opened["injected"], false);
        assert!(opened["failures"].as_u64().unwrap() >= 3, "{opened}");
        assert!(
            opened["last_error"].as_str().unwrap().contains("daum"),
            "{opened}"
        );
        let chain = webhook
            .iter()
            .find(|b| b["kind"] == "chain_failed")
            .unwrap();
        assert!(
            chain["last_error"].as_str().unwrap().contains("juso"),
            "{chain}"
        );
        for t in &telegram {
            assert_eq!(t["chat_id"], -10042, "numeric chat ids are sent as numbers");
            assert!(t["text"].as_str().unwrap().contains("alerts.daum"), "{t}");
        }
    }
}

/// Trips and heals the breaker over and over for 3 s while the webhook receiver hangs; prints
/// the slowest call.
fn latency_child() {
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let (slowest, calls) = fleet::run(async {
        let _ = daum(1).await;
        let start = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut calls = 0u32;
        while start.elapsed() < Duration::from_secs(3) {
            // 400 ms down, 1.2 s up: opened, then recovered after open_for, again and again.
            let down = start.elapsed().as_millis() % 1600 < 400;
            let flag = dir.join("daum-down");
            if down {
                std::fs::write(&flag, b"").unwrap();
            } else {
                let _ = std::fs::remove_file(&flag);
            }
            let t = Instant::now();
            let _ = daum(1).await;
            slowest = slowest.max(t.elapsed());
            calls += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (slowest, calls)
    });
    let alerts = breaker_runtime::breaker("alerts.daum").map(|h| h.counters().failures);
    report(
        "slowest",
        format_args!("{} {calls} {alerts:?}", slowest.as_micros()),
    );
}

#[test]
fn a_hanging_receiver_never_slows_a_call() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    // Accepts connections and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hang.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in hang.incoming().flatten() {
            held.push(s);
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let redis = RedisServer::start();
    let scratch = Scratch::new("alerts-hang");
    let out = Spawn::new("alert_child", ROLE, "latency")
        .env(DIR, scratch.dir())
        .env("BREAKER_REDIS_URL", redis.url())
        .env("BREAKER_KEY_PREFIX", "alerts-hang")
        .env(
            "BREAKER_WEBHOOK_URL",
            format!("http://127.0.0.1:{port}/hook"),
        )
        .stderr(Stderr::Capture)
        .start()
        .finish();
    drop(scratch);
    let line = out
        .lines
        .iter()
        .find(|l| l.is("slowest"))
        .map(|l| l.rest().to_owned())
        .expect("no report");
    let mut parts = line.split(' ');
    let slowest_us: u64 = parts.next().unwrap().parse().unwrap();
    let calls: u32 = parts.next().unwrap().parse().unwrap();
    assert!(calls > 300, "only {calls} calls in 3 s: {line}");
    // The breaker opened and recovered about twice while the receiver hung; no call waited
    // for an alert (a call here takes microseconds; 20 ms leaves room for a busy machine).
    assert!(slowest_us < 20_000, "a call took {slowest_us} µs: {line}");
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "no alert was ever sent to the hanging receiver"
    );
}

/// A transition whose announcement nobody heard (here: published on a channel no instance
/// listens to, as if every subscriber had been disconnected, or the writer died before it
/// could claim its alert) is still alerted exactly once: every instance's next flush sees the
/// unclaimed alert in Redis and one of them claims it.
#[test]
fn an_unannounced_transition_is_still_alerted_once() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let hooks = HttpReceiver::start();
    let tag = "silent";
    let fleet = Fleet::start(2, &redis, &hooks, tag);
    // A change whose message nobody hears: published on a channel nobody listens to. Its
    // writer raises the fleet marker's `hw` as every writer does (the runtime after its
    // scripts, breakerctl after FORCE), which is how instances learn they missed something.
    let run = |forced| {
        let generation = unheard_force(&redis, tag, forced);
        raise_hw(&redis, tag, generation);
    };
    run(Some(Forced::Open));
    wait_until(
        "the opened alert",
        || count(&alerts(&hooks, tag).0, "opened") >= 1,
        &hooks,
    );
    run(None);
    wait_until(
        "the recovered alert",
        || count(&alerts(&hooks, tag).0, "recovered") >= 1,
        &hooks,
    );
    std::thread::sleep(Duration::from_millis(800));
    fleet.stop();
    let (webhook, _) = alerts(&hooks, tag);
    assert_eq!(count(&webhook, "opened"), 1, "{webhook:?}");
    assert_eq!(count(&webhook, "recovered"), 1, "{webhook:?}");
    let opened = webhook.iter().find(|b| b["kind"] == "opened").unwrap();
    assert_eq!(opened["forced"], "open", "{opened}");
}

/// The instance that claimed an alert dies while its receiver holds the request open: the
/// claim's lease runs out, another instance claims it and sends it, with the same id. The
/// receiver answers the alert once (the held request, never answered, is the rare duplicate a
/// receiver drops by id).
#[test]
fn a_claimant_killed_mid_delivery_is_replaced_and_the_alert_arrives_once() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let tag = "takeover";
    let hooks = HttpReceiver::start_holding(Some(&format!("/hook/{tag}")));
    let mut fleet = Fleet::start(2, &redis, &hooks, tag);
    fleet.set("daum-down", true);
    let webhook_opened = |hooks: &HttpReceiver| -> Vec<(serde_json::Value, bool)> {
        hooks
            .received()
            .into_iter()
            .filter(|r| r.path == format!("/hook/{tag}"))
            .map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                (body, r.answered)
            })
            .filter(|(b, _)| b["kind"] == "opened")
            .collect()
    };
    wait_until(
        "the first delivery of the opened alert",
        || !webhook_opened(&hooks).is_empty(),
        &hooks,
    );
    let (held, answered) = webhook_opened(&hooks).remove(0);
    assert!(!answered, "the first delivery is held");
    let id = held["id"].as_str().unwrap().to_owned();
    assert!(
        id.starts_with("alerts.daum:") && id.ends_with(":opened"),
        "{id}"
    );
    let sender = held["instance"].as_str().unwrap().to_owned();
    let pid: u32 = sender.rsplit(':').next().unwrap().parse().unwrap();
    fleet.kill(pid);
    let killed = Instant::now();
    // The claim's lease (15 s) runs out; the other instance, probing every open period,
    // learns of the unclaimed alert from a reply and sends it.
    let deadline = killed + Duration::from_secs(30);
    while !webhook_opened(&hooks).iter().any(|(_, answered)| *answered) {
        assert!(
            Instant::now() < deadline,
            "the alert was never sent again: {:#?}",
            hooks.received()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("sent again {:?} after the kill", killed.elapsed());
    std::thread::sleep(Duration::from_millis(1000));
    fleet.stop();
    let opened = webhook_opened(&hooks);
    assert_eq!(
        opened.len(),
        2,
        "the held request and one more: {opened:#?}"
    );
    let (again, answered) = &opened[1];
    assert!(*answered);
    assert_eq!(again["id"], id.as_str(), "the same alert, by its id");
    assert_ne!(
        again["instance"],
        sender.as_str(),
        "sent by the other instance"
    );
}

/// Two alert-worthy transitions before any instance claimed the first (here: forced open and
/// reset back to back, their messages unheard): both are alerted, in order, once each.
#[test]
fn two_transitions_before_any_claim_are_both_alerted_in_order() {
    if std::env::var_os(ROLE).is_some() {
        return;
    }
    let redis = RedisServer::start();
    let hooks = HttpReceiver::start();
    let tag = "pair";
    let fleet = Fleet::start(2, &redis, &hooks, tag);
    let mut last = 0;
    for forced in [Some(Forced::Open), None] {
        last = unheard_force(&redis, tag, forced);
    }
    // The writer raises the fleet marker, as every writer does: the instances learn they
    // missed news and re-sync.
    raise_hw(&redis, tag, last);
    wait_until(
        "both alerts",
        || {
            let (webhook, _) = alerts(&hooks, tag);
            count(&webhook, "opened") >= 1 && count(&webhook, "recovered") >= 1
        },
        &hooks,
    );
    std::thread::sleep(Duration::from_millis(800));
    fleet.stop();
    let (webhook, _) = alerts(&hooks, tag);
    let kinds: Vec<&str> = webhook.iter().filter_map(|b| b["kind"].as_str()).collect();
    assert_eq!(kinds, ["opened", "recovered"], "{webhook:#?}");
    let ids: Vec<&str> = webhook.iter().filter_map(|b| b["id"].as_str()).collect();
    assert_ne!(ids[0], ids[1]);
}

/// Runs the runtime's `FORCE` on `alerts.daum` with its message published on a channel nobody
/// listens to; returns the generation it made.
fn unheard_force(redis: &RedisServer, tag: &str, forced: Option<Forced>) -> u64 {
    let keys = Keys::new(&format!("alerts-{tag}"));
    block_on(async {
        let mut conn = connect(&redis.url()).await.unwrap();
        let force = Force {
            keys: &keys.breaker("alerts.daum"),
            forced,
            channel: "nobody-listens",
            name: "alerts.daum",
            seen_generation: 0,
        };
        force.invoke(&mut conn).await.unwrap().generation
    })
}

/// Raises the fleet marker's `hw` to `generation`, as every writer of one does.
fn raise_hw(redis: &RedisServer, tag: &str, generation: u64) {
    let keys = Keys::new(&format!("alerts-{tag}"));
    block_on(async {
        let mut conn = connect(&redis.url()).await.unwrap();
        let raise = RaiseHw {
            marker: keys.fleet(),
            generation,
        };
        raise.invoke(&mut conn).await.unwrap();
    });
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
