//! A fleet sharing a real `redis-server`, with each instance's link to Redis going through a
//! [`FaultProxy`] of its own: one instance partitioned from Redis (its bytes held, as a real
//! partition holds TCP segments until it heals), or every link slowed down.
//!
//! The parent test starts Redis and the proxies, and re-runs this test binary as child
//! processes (the `partition_child` entry, with `PARTITION_ROLE` set), each one an instance of
//! the application whose `BREAKER_REDIS_URL` points at its proxy. A child calls the breaker
//! every 5 ms and reports on stdout through `@tag` lines (`@state`, `@transition`, `@done`);
//! the parent steers it through files (the provider is down while its file exists; pause,
//! reset and stop files) and watches the fleet directly in Redis (`HGET` of the state hash,
//! and a subscription to the fleet's events channel).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use breaker_runtime::redis::{Keys, Message};
use breaker_runtime::{Event, EventKind, Notifier, State, breaker, circuit_breaker};
use breaker_tests::fleet::{self, Instance, Scratch, Spawn, remove, report, serial, touch};
use breaker_tests::proxy::FaultProxy;
use breaker_tests::{Recorder, RedisServer, TestError};

const ROLE: &str = "PARTITION_ROLE";
const NAME: &str = "part.daum";
/// The breaker's `open_for`.
const OPEN_FOR: Duration = Duration::from_secs(2);
/// The store's flush heartbeat.
const FLUSH: Duration = Duration::from_millis(50);
/// A call slower than this waited on something it should not have.
const CALL_BUDGET: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// The child: one instance of the application.
// ---------------------------------------------------------------------------------------------

static PRIMARY: AtomicU64 = AtomicU64::new(0);
static FALLBACK: AtomicU64 = AtomicU64::new(0);

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(PathBuf::from)
}

/// The provider fails while the file named by `PART_DOWN_FILE` exists.
fn provider_down() -> bool {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| env_path("PART_DOWN_FILE"))
        .as_ref()
        .is_some_and(|p| p.exists())
}

#[circuit_breaker(
    name = "part.daum",
    fallback = juso,
    threshold = 3,
    window = "10s",
    open_for = "2s",
    timeout = "500ms",
    store = "redis"
)]
async fn daum(seq: u64) -> Result<u64, TestError> {
    PRIMARY.fetch_add(1, Ordering::Relaxed);
    if provider_down() {
        Err(TestError::Down("daum"))
    } else {
        Ok(seq)
    }
}

async fn juso(seq: u64) -> Result<u64, TestError> {
    FALLBACK.fetch_add(1, Ordering::Relaxed);
    Ok(seq)
}

/// Prints the breaker's transitions and the store's health changes as they are delivered.
#[derive(Debug)]
struct Printer;

impl Notifier for Printer {
    fn notify(&self, event: &Event) {
        match &event.kind {
            EventKind::Transition {
                from, to, reason, ..
            } if event.breaker == NAME => {
                report("transition", format_args!("{from} {to} {reason:?}"));
            }
            EventKind::StoreHealth { healthy, .. } => report("health", healthy),
            _ => {}
        }
    }
}

/// The child entry point: does nothing unless run by a parent test with `PARTITION_ROLE` set.
#[test]
fn partition_child() {
    let Some(role) = fleet::role(ROLE) else {
        return;
    };
    assert_eq!(role, "caller", "unknown role");
    let rec = Recorder::install();
    breaker_runtime::add_notifier(Arc::new(Printer));
    fleet::run(caller(&rec));
}

/// Calls `daum` every 5 ms until the stop file exists (at most 45 s), reporting every change of
/// the state it sees (`@state`), and at the end `@done` with its counts, its slowest call and
/// the store's health events. Skips calls while its pause file exists; resets the breaker (an
/// operator's command from application code) once its reset file appears.
async fn caller(rec: &Recorder) {
    let h = breaker(NAME).expect("declared");
    let stop = env_path("PART_STOP_FILE").expect("PART_STOP_FILE");
    let pause = env_path("PART_PAUSE_FILE");
    let reset = env_path("PART_RESET_FILE");
    let exists = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| p.exists());
    report("ready", "");
    let end = Instant::now() + Duration::from_secs(45);
    let (mut calls, mut errors, mut slowest) = (0u64, 0u64, Duration::ZERO);
    let mut seen = None;
    let mut reset_done = false;
    let mut report_state = |state: State| {
        if seen != Some(state) {
            report("state", state);
            seen = Some(state);
        }
    };
    while !stop.exists() && Instant::now() < end {
        report_state(h.state());
        if !reset_done && exists(&reset) {
            h.reset().await.expect("reset");
            report("reset", "");
            reset_done = true;
        }
        if !exists(&pause) {
            let t = Instant::now();
            let r = daum(calls).await;
            let took = t.elapsed();
            calls += 1;
            slowest = slowest.max(took);
            if took >= CALL_BUDGET {
                report("slow", took.as_micros());
            }
            if let Err(e) = r {
                errors += 1;
                report("error", format_args!("{e:?}"));
            }
            report_state(h.state());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
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
        format_args!(
            "calls={calls} primary={} fallback={} errors={errors} slowest_us={} health={health:?}",
            PRIMARY.load(Ordering::Relaxed),
            FALLBACK.load(Ordering::Relaxed),
            slowest.as_micros()
        ),
    );
}

// ---------------------------------------------------------------------------------------------
// The parent's harness.
// ---------------------------------------------------------------------------------------------

/// What an instance reported when it stopped.
#[derive(Debug)]
struct Done {
    calls: u64,
    primary: u64,
    fallback: u64,
    errors: u64,
    slowest: Duration,
    health: String,
}

/// Starts one instance of the application (the `caller` role), its `@` lines echoed as
/// `[label]`.
fn spawn(label: &'static str, env: &[(&str, String)]) -> Instance {
    Spawn::new("partition_child", ROLE, "caller")
        .label(label)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .echo()
        .start()
}

/// What an instance's `@state` lines say.
trait States {
    /// The states it reported, with when the parent read them.
    fn states(&self) -> Vec<(Instant, String)>;

    /// The state it reported last.
    fn state(&self) -> Option<String> {
        self.states().pop().map(|(_, s)| s)
    }

    /// The states reported at or after `since`.
    fn states_since(&self, since: Instant) -> Vec<String> {
        self.states()
            .into_iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, s)| s)
            .collect()
    }

    /// Waits up to `timeout` for its last reported state to be `state`; when it was reported.
    fn wait_state(&self, state: &str, timeout: Duration) -> Option<Instant>;
}

impl States for Instance {
    fn states(&self) -> Vec<(Instant, String)> {
        self.lines()
            .into_iter()
            .filter(|l| l.is("state"))
            .map(|l| (l.at, l.rest().to_owned()))
            .collect()
    }

    fn wait_state(&self, state: &str, timeout: Duration) -> Option<Instant> {
        self.wait_until(timeout, |lines| {
            lines
                .iter()
                .rev()
                .find(|l| l.is("state"))
                .filter(|l| l.rest() == state)
                .map(|l| l.at)
        })
    }
}

/// Waits for `@done` (the stop file must exist) and for the process to end well.
fn finish(instance: Instance) -> Done {
    let line = instance.expect("done", Duration::from_secs(15));
    instance.finish();
    let num = |k: &str| line.num::<u64>(k);
    Done {
        calls: num("calls"),
        primary: num("primary"),
        fallback: num("fallback"),
        errors: num("errors"),
        slowest: Duration::from_micros(num("slowest_us")),
        health: line.text[line.text.find("health=").unwrap() + 7..].to_owned(),
    }
}

/// A subscription of the parent's own to the fleet's events channel, straight to Redis (no
/// proxy): every fleet transition, with when the parent received it.
struct EventTap {
    events: Arc<Mutex<Vec<(Instant, String)>>>,
    stream: TcpStream,
}

impl EventTap {
    /// Subscribes to `<prefix>:events`; returns once Redis confirmed the subscription.
    fn start(port: u16, prefix: &str) -> EventTap {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        (&stream)
            .write_all(format!("SUBSCRIBE {}\r\n", Keys::new(prefix).events()).as_bytes())
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        // The confirmation: `*3 $9 subscribe $n <channel> :1`.
        let confirm = read_resp(&mut reader).expect("SUBSCRIBE confirmation");
        assert_eq!(confirm.first().map(String::as_str), Some("subscribe"));
        let events: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let sink = events.clone();
        std::thread::spawn(move || {
            while let Some(msg) = read_resp(&mut reader) {
                if msg.len() == 3 && msg[0] == "message" {
                    println!("[fleet] {}", msg[2]);
                    sink.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((Instant::now(), msg[2].clone()));
                }
            }
        });
        EventTap { events, stream }
    }

    /// The fleet states published for the breaker at or after `since`, each with its whole
    /// payload (read as the runtime reads it).
    fn states_since(&self, since: Instant) -> Vec<(State, String)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(t, _)| *t >= since)
            .filter_map(|(_, p)| {
                let m = Message::decode(p).filter(|m| m.name == NAME)?;
                Some((m.state, p.clone()))
            })
            .collect()
    }

    /// Waits up to `timeout` for a published `state` at or after `since`; when it was received.
    fn wait_state(&self, state: State, since: Instant, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let at = self
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|(t, p)| {
                    *t >= since
                        && Message::decode(p).is_some_and(|m| m.name == NAME && m.state == state)
                })
                .map(|(t, _)| *t);
            if at.is_some() || Instant::now() >= deadline {
                return at;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for EventTap {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads one RESP reply made of simple strings, integers, bulk strings or one level of array;
/// every element as text (`None` for a nil). `None` at the end of the stream.
fn read_resp(r: &mut impl BufRead) -> Option<Vec<String>> {
    fn line(r: &mut impl BufRead) -> Option<String> {
        let mut l = String::new();
        (r.read_line(&mut l).ok()? > 0).then(|| l.trim_end().to_owned())
    }
    fn item(r: &mut impl BufRead, head: &str) -> Option<String> {
        match head.as_bytes().first()? {
            b'$' => {
                let n: i64 = head[1..].parse().ok()?;
                if n < 0 {
                    return Some(String::new());
                }
                let mut buf = vec![0u8; usize::try_from(n).ok()? + 2];
                r.read_exact(&mut buf).ok()?;
                buf.truncate(buf.len() - 2);
                Some(String::from_utf8_lossy(&buf).into_owned())
            }
            _ => Some(head[1..].to_owned()),
        }
    }
    let head = line(r)?;
    if let Some(n) = head.strip_prefix('*') {
        let n: usize = n.parse().ok()?;
        (0..n)
            .map(|_| {
                let h = line(r)?;
                item(r, &h)
            })
            .collect()
    } else {
        Some(vec![item(r, &head)?])
    }
}

/// The fleet's state as Redis holds it (`HGET <prefix>:{part.daum}:s state`); `closed` when
/// the breaker has never changed state (the field is written on the first transition).
fn fleet_state(redis: &RedisServer, prefix: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (&stream)
        .write_all(format!("HGET {} state\r\n", Keys::new(prefix).breaker(NAME).state).as_bytes())
        .unwrap();
    let reply = read_resp(&mut BufReader::new(&stream)).expect("HGET reply");
    match reply[0].as_str() {
        "" => "closed".to_owned(),
        s => s.to_owned(),
    }
}

/// Redis, one proxy and one instance per label, a tap on the fleet's events, and the control
/// files of each instance (in a directory removed at the end).
struct Fleet {
    redis: RedisServer,
    prefix: String,
    scratch: Scratch,
    proxies: Vec<FaultProxy>,
    labels: Vec<&'static str>,
    instances: Vec<Instance>,
    tap: EventTap,
    started: Instant,
}

impl Fleet {
    fn start(labels: &[&'static str]) -> Fleet {
        let redis = RedisServer::start();
        let prefix = format!("part-{}", redis.port());
        let scratch = Scratch::new("partition");
        let tap = EventTap::start(redis.port(), &prefix);
        let mut proxies = Vec::new();
        let mut instances = Vec::new();
        for label in labels {
            let proxy = FaultProxy::start(redis.port());
            let file = |kind: &str| scratch.path_str(&format!("{kind}-{label}"));
            let env = [
                (
                    "BREAKER_REDIS_URL",
                    format!("redis://127.0.0.1:{}/", proxy.port()),
                ),
                ("BREAKER_KEY_PREFIX", prefix.clone()),
                ("PART_DOWN_FILE", file("down")),
                ("PART_PAUSE_FILE", file("pause")),
                ("PART_RESET_FILE", file("reset")),
                ("PART_STOP_FILE", scratch.path_str("stop")),
            ];
            instances.push(spawn(label, &env));
            proxies.push(proxy);
        }
        for i in &instances {
            assert!(
                i.wait_state("CLOSED", Duration::from_secs(15)).is_some(),
                "[{}] did not start: {:?}",
                i.label(),
                i.tail(12)
            );
        }
        Fleet {
            redis,
            prefix,
            scratch,
            proxies,
            labels: labels.to_vec(),
            instances,
            tap,
            started: Instant::now(),
        }
    }

    fn file(&self, kind: &str, i: usize) -> PathBuf {
        self.scratch.path(&format!("{kind}-{}", self.labels[i]))
    }

    fn fleet_state(&self) -> String {
        fleet_state(&self.redis, &self.prefix)
    }

    /// Stops every instance and collects their reports; asserts that no call waited and none
    /// failed.
    fn finish(mut self) -> Vec<(&'static str, Done)> {
        self.scratch.touch("stop");
        let done: Vec<_> = std::mem::take(&mut self.instances)
            .into_iter()
            .zip(self.labels.clone())
            .map(|(i, label)| (label, finish(i)))
            .collect();
        for (label, d) in &done {
            println!("[{label}] {d:?}");
        }
        for (label, d) in &done {
            assert_eq!(d.errors, 0, "[{label}] calls failed: {d:?}");
            assert!(
                d.slowest < CALL_BUDGET,
                "[{label}] a call waited {:?} (budget {CALL_BUDGET:?}): {d:?}",
                d.slowest
            );
        }
        done
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.scratch.touch("stop");
        self.instances.clear();
    }
}

/// Sleeps until `at` (at once if it has passed).
fn sleep_until(at: Instant) {
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
}

/// Waits for the fleet's open period (from `opened`) to be over: the idle instances B and C
/// see HALF_OPEN (whether or not the store publishes that step), and Redis has had a flush to
/// note it.
fn fleet_open_period_over(f: &Fleet, opened: Instant) {
    for i in 1..3 {
        assert!(
            f.instances[i]
                .wait_state("HALF_OPEN", OPEN_FOR + Duration::from_secs(1))
                .is_some(),
            "[{}] never saw the fleet's open period end ({:?} after it opened): {:?}",
            f.instances[i].label(),
            opened.elapsed(),
            f.instances[i].tail(12)
        );
    }
    std::thread::sleep(FLUSH * 2);
}

fn assert_only_closed(f: &Fleet, i: usize, since: Instant, when: &str) {
    let states = f.instances[i].states_since(since);
    assert!(
        states.iter().all(|s| s == "CLOSED"),
        "[{}] left CLOSED {when}: {states:?}",
        f.instances[i].label()
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------------------

/// One of three instances is cut off from Redis while calling every 5 ms and its provider
/// fails: its calls never wait on the dead link, it trips on its own evidence while the other
/// two stay CLOSED (calling their primary, never the fallback) for the whole run, and once the
/// link heals and its provider is back it is CLOSED again within one flush + `open_for`
/// (+1 s), in agreement with the others and with Redis.
#[test]
fn partitioned_instance_trips_on_its_own_and_rejoins_the_fleet_on_heal() {
    let _serial = serial();
    let f = Fleet::start(&["A", "B", "C"]);
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    f.proxies[0].cut();
    touch(&f.file("down", 0));
    let opened = f.instances[0]
        .wait_state("OPEN", Duration::from_secs(2))
        .expect("the partitioned instance never tripped on its own failures");
    println!("A OPEN {:?} after the cut", opened - cut);
    // The partition lasts past A's open period: its local probe fails, it re-opens.
    sleep_until(cut + Duration::from_millis(2600));
    assert_only_closed(&f, 1, f.started, "during the partition");
    assert_only_closed(&f, 2, f.started, "during the partition");
    assert_eq!(
        f.fleet_state(),
        "closed",
        "the fleet opened during the partition"
    );
    let heal = Instant::now();
    remove(&f.file("down", 0));
    f.proxies[0].heal();
    let budget = FLUSH + OPEN_FOR + Duration::from_secs(1);
    let closed = f.instances[0].wait_state("CLOSED", budget);
    assert!(
        closed.is_some(),
        "A not CLOSED within {budget:?} of the heal: {:?}",
        f.instances[0].tail(12)
    );
    println!("A CLOSED {:?} after the heal", closed.unwrap() - heal);
    // And it stays in agreement with the others and with Redis.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(f.instances[0].state().as_deref(), Some("CLOSED"));
    assert_only_closed(&f, 1, f.started, "(whole run)");
    assert_only_closed(&f, 2, f.started, "(whole run)");
    assert_eq!(f.fleet_state(), "closed");
    let opens = f.tap.states_since(f.started);
    assert!(
        opens.iter().all(|(s, _)| *s == State::Closed),
        "the fleet changed state although only A's provider failed, while A was cut off: {opens:?}"
    );
    let done = f.finish();
    for (label, d) in &done[1..] {
        assert_eq!(d.fallback, 0, "[{label}] called its fallback: {d:?}");
    }
}

/// The operator resets a fleet that tripped while instance A was cut off (A had tripped on its
/// own failures meanwhile, and its local probe failed); when A's link heals (its provider back),
/// A's verdict from the partition does not re-open the fleet: Redis stays `closed`, B and C
/// stay CLOSED, and A closes within one flush + `open_for` (+1 s).
#[test]
fn partition_verdict_does_not_reopen_a_fleet_the_operator_reset() {
    let _serial = serial();
    let f = Fleet::start(&["A", "B", "C"]);
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    f.proxies[0].cut();
    touch(&f.file("down", 0));
    assert!(
        f.instances[0]
            .wait_state("OPEN", Duration::from_secs(2))
            .is_some()
    );
    // The rest of the fleet trips on its own failures.
    touch(&f.file("down", 1));
    touch(&f.file("down", 2));
    let fleet_open = f
        .tap
        .wait_state(State::Open, cut, Duration::from_secs(2))
        .expect("the fleet never opened");
    // A's local probe fails during the partition (its open period ends 2 s after its trip).
    f.instances[0].expect_since("transition HALF_OPEN OPEN", cut, Duration::from_secs(4));
    remove(&f.file("down", 1));
    remove(&f.file("down", 2));
    // An operator resets the fleet from B.
    let asked = Instant::now();
    touch(&f.file("reset", 1));
    f.instances[1].expect_since("reset", asked, Duration::from_secs(3));
    let reset = f
        .tap
        .wait_state(State::Closed, fleet_open, Duration::from_secs(2))
        .expect("the reset was not published");
    for i in 1..3 {
        assert!(
            f.instances[i]
                .wait_state("CLOSED", Duration::from_secs(1))
                .is_some()
        );
    }
    let settled = Instant::now();
    let heal = Instant::now();
    remove(&f.file("down", 0));
    f.proxies[0].heal();
    println!("heal {:?} after the cut", heal - cut);
    let budget = FLUSH + OPEN_FOR + Duration::from_secs(1);
    assert!(
        f.instances[0].wait_state("CLOSED", budget).is_some(),
        "A not CLOSED within {budget:?} of the heal: {:?}",
        f.instances[0].tail(12)
    );
    // Past any stale effect: A's old failures or verdicts would have landed by now.
    sleep_until(heal + OPEN_FOR + Duration::from_millis(500));
    let after: Vec<_> = f.tap.states_since(reset + Duration::from_millis(1));
    assert!(
        after.iter().all(|(s, _)| *s == State::Closed),
        "the fleet changed state after the reset although no provider failed: {after:?}"
    );
    assert_eq!(f.fleet_state(), "closed");
    assert_only_closed(&f, 1, settled, "after the reset");
    assert_only_closed(&f, 2, settled, "after the reset");
    assert_eq!(f.instances[0].state().as_deref(), Some("CLOSED"));
    f.finish();
}

/// The fleet tripped while A was cut off and is recovering: HALF_OPEN, its providers back, its
/// instances idle (no probe yet). A, whose local probe failed during the partition, heals with
/// its provider back and idle too (so no fresh call of its own replaces that verdict): the old
/// verdict must not re-open the recovering fleet (no `open` published within 1.5 s of the
/// heal), and once traffic resumes the fleet closes through fresh probes.
#[test]
fn partition_probe_failure_does_not_reopen_a_recovering_fleet() {
    let _serial = serial();
    let f = Fleet::start(&["A", "B", "C"]);
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    f.proxies[0].cut();
    touch(&f.file("down", 0));
    assert!(
        f.instances[0]
            .wait_state("OPEN", Duration::from_secs(2))
            .is_some()
    );
    touch(&f.file("down", 1));
    touch(&f.file("down", 2));
    let fleet_open = f
        .tap
        .wait_state(State::Open, cut, Duration::from_secs(2))
        .expect("the fleet never opened");
    // B and C go idle with their providers back: the fleet half-opens and waits for a probe.
    touch(&f.file("pause", 1));
    touch(&f.file("pause", 2));
    remove(&f.file("down", 1));
    remove(&f.file("down", 2));
    f.instances[0].expect_since("transition HALF_OPEN OPEN", cut, Duration::from_secs(4));
    fleet_open_period_over(&f, fleet_open);
    touch(&f.file("pause", 0));
    remove(&f.file("down", 0));
    let heal = Instant::now();
    f.proxies[0].heal();
    println!("heal {:?} after the cut", heal - cut);
    std::thread::sleep(Duration::from_millis(1500));
    let after = f.tap.states_since(heal);
    assert!(
        after.iter().all(|(s, _)| *s != State::Open),
        "A's probe failure from the partition re-opened the recovering fleet (every provider \
         is up): {after:?}"
    );
    for i in 0..3 {
        remove(&f.file("pause", i));
    }
    let budget = FLUSH + OPEN_FOR + Duration::from_secs(1);
    for i in 0..3 {
        assert!(
            f.instances[i].wait_state("CLOSED", budget).is_some(),
            "[{}] not CLOSED: {:?}",
            f.instances[i].label(),
            f.instances[i].tail(12)
        );
    }
    assert_eq!(f.fleet_state(), "closed");
    f.finish();
}

/// The fleet tripped while A was cut off and sits HALF_OPEN, its instances idle and their
/// providers still down. A's provider came back during the partition and its local probe
/// succeeded (A closed locally); at the heal its provider is down again, like everyone's, and A
/// is idle (so no fresh call of its own replaces that verdict). That old success must not close
/// the fleet: no `closed` is published within 1.5 s of the heal.
#[test]
fn partition_probe_success_does_not_close_a_fleet_still_failing() {
    let _serial = serial();
    let f = Fleet::start(&["A", "B", "C"]);
    std::thread::sleep(Duration::from_millis(300));
    let cut = Instant::now();
    f.proxies[0].cut();
    touch(&f.file("down", 0));
    assert!(
        f.instances[0]
            .wait_state("OPEN", Duration::from_secs(2))
            .is_some()
    );
    touch(&f.file("down", 1));
    touch(&f.file("down", 2));
    let fleet_open = f
        .tap
        .wait_state(State::Open, cut, Duration::from_secs(2))
        .expect("the fleet never opened");
    touch(&f.file("pause", 1));
    touch(&f.file("pause", 2));
    // A's provider recovers during the partition: its local probe succeeds.
    sleep_until(cut + Duration::from_millis(1000));
    remove(&f.file("down", 0));
    f.instances[0].expect_since("transition HALF_OPEN CLOSED", cut, Duration::from_secs(4));
    fleet_open_period_over(&f, fleet_open);
    // Down again for everyone, A idle, then the heal.
    touch(&f.file("down", 0));
    touch(&f.file("pause", 0));
    let heal = Instant::now();
    f.proxies[0].heal();
    println!("heal {:?} after the cut", heal - cut);
    std::thread::sleep(Duration::from_millis(1500));
    let after = f.tap.states_since(heal);
    assert!(
        after.iter().all(|(s, _)| *s != State::Closed),
        "A's probe success from the partition closed the fleet while every provider is down: \
         {after:?}"
    );
    assert_ne!(f.fleet_state(), "closed");
    f.finish();
}

/// 300 ms added to every chunk in each direction on every instance's link (600 ms round
/// trips): calls every 5 ms for 3 s never wait (slowest < 20 ms), none fails, and the store
/// treats the link as slow, not down: no `StoreHealth` event.
#[test]
fn latency_of_300ms_on_every_link_never_slows_a_call_nor_reads_as_down() {
    let _serial = serial();
    let f = Fleet::start(&["A", "B", "C"]);
    for p in &f.proxies {
        p.set_latency(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let done = f.finish();
    for (label, d) in &done {
        assert_eq!(
            d.primary, d.calls,
            "[{label}] not every call ran the primary: {d:?}"
        );
    }
    for (label, d) in &done {
        assert_eq!(
            d.health, "[]",
            "[{label}] 300 ms of latency read as Redis down/up (StoreHealth events): {d:?}"
        );
    }
}
