//! Fleet scale: what N instances sharing the same 20 breakers through one Redis cost that Redis,
//! and how fast the fleet agrees, for N = 10, 100 and 1,000 simulated instances.
//!
//! One instance is one [`RedisStore`] (its own background thread, tokio runtime, script
//! connection and pub/sub connection) with the 20 breakers `scale.b00`..`scale.b19` attached to
//! it through `__private::standalone_breaker`, so one process simulates the whole fleet. Each
//! size runs in a child process of this binary (started with `FLEET_SCALE_CHILD`), against a
//! fresh `redis-server --maxclients 10000` this benchmark starts on a free loopback port and
//! stops when the child is done: a store's thread lives as long as its process, so a size's
//! instances must not linger into the next one.
//!
//! Per size:
//! 1. **Idle**: 5 s after every instance is attached, 10 s of `INFO commandstats` (every command,
//!    including those run inside scripts; and `EVALSHA`/`EVAL` alone) and `INFO cpu` deltas.
//!    An idle breaker's first heartbeat comes 40 s after its last exchange (20 breakers, one
//!    heartbeat per 2 s per instance), so a second 10 s window is taken once heartbeats run
//!    (41 s after the last attach; `FLEET_SCALE_STEADY=0` skips it), followed by 5 s of `MONITOR`
//!    that separates the requests clients send (round trips) from commands run inside scripts.
//! 2. **Load**: two driver threads make successful calls on every breaker of every instance,
//!    round robin, paced to `FLEET_SCALE_RATE` calls/s in all (default 300,000); after 2 s of
//!    warm-up, 10 s of the same counters per 1,000 successful calls.
//! 3. **Trip propagation**: one instance fails `threshold` (3) times on `scale.b00`; this thread
//!    then sweeps every instance's `published_state()` (yielding between sweeps) and notes when
//!    each first reads OPEN, counted from just before the first failure. The tripping instance
//!    is left out of the samples (it opens locally at once). The breaker is reset through the
//!    tripping instance's store (`Store::command(Reset)`, what `Handle::reset` does for a
//!    registered breaker) and every instance is seen CLOSED before the next round; the tripping
//!    instance changes every round. `FLEET_SCALE_ROUNDS` rounds (default 20). A bare
//!    subscriber to `<prefix>:events`, subscribed after every instance (Redis fans a message out
//!    in subscription order, so to it last), times Redis's announcement too: the difference is
//!    the simulated instances' own wake-up on this shared box.
//! 4. **Fleet-wide recovery** (`open_for` = 1 s): after a trip, every instance calls `scale.b00`
//!    every 200 ms (phases spread evenly), every call succeeding; the time from the end of
//!    `open_for` (taken as first failure + 1 s, so a little early: Redis starts the period when
//!    the trip reaches it) until every instance reads CLOSED. `FLEET_SCALE_RECOVERY_ROUNDS`
//!    rounds (default 3).
//!
//! Prints a markdown table, one column per size.
//!
//! Run: `cargo bench -p breaker-runtime --features redis --bench fleet_scale`
//! Quick: `FLEET_SCALE_SIZES=10,100 FLEET_SCALE_STEADY=0 cargo bench -p breaker-runtime
//! --features redis --bench fleet_scale` (or the sizes as an argument: `... -- 10,100`).
//! Needs `redis-server` on `PATH`, and about 3 file descriptors and one thread per instance.

#![allow(missing_docs, unreachable_pub)]

#[path = "common/redis_server.rs"]
mod redis_server;
use redis_server::{command_totals, info_text, start_redis, url};

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breaker_runtime::__private::{Config, Permit, StoreKind, standalone_breaker};
use breaker_runtime::redis::{Keys, Message, Pushed, Target};
use breaker_runtime::{Breaker, Handle, RedisStore, State, Store};
use futures::StreamExt as _;

mod common;

use common::E;

const BREAKERS: [&str; 20] = [
    "scale.b00",
    "scale.b01",
    "scale.b02",
    "scale.b03",
    "scale.b04",
    "scale.b05",
    "scale.b06",
    "scale.b07",
    "scale.b08",
    "scale.b09",
    "scale.b10",
    "scale.b11",
    "scale.b12",
    "scale.b13",
    "scale.b14",
    "scale.b15",
    "scale.b16",
    "scale.b17",
    "scale.b18",
    "scale.b19",
];
const PREFIX: &str = "fleet";
const THRESHOLD: u32 = 3;
const OPEN_FOR: Duration = Duration::from_secs(1);
const CONFIG: Config = Config::new()
    .threshold(THRESHOLD)
    .open_for(OPEN_FOR)
    .store(StoreKind::Redis);
const DEFAULT_SIZES: [usize; 3] = [10, 100, 1_000];
/// Threads that connect instances and attach their breakers (mostly waiting for Redis).
const ATTACHERS: usize = 16;
/// Threads that make calls in the load phase.
const DRIVERS: usize = 2;
const SETTLE: Duration = Duration::from_secs(5);
const WINDOW: Duration = Duration::from_secs(10);
/// An idle breaker's first heartbeat comes 40 s (20 breakers × 2 s) after its last exchange.
const STEADY_AFTER: Duration = Duration::from_secs(41);
const MONITOR_FOR: Duration = Duration::from_secs(5);
const LOAD_WARM_UP: Duration = Duration::from_secs(2);
/// Longest a trip round waits for every instance to read OPEN (it must be seen before the fleet's
/// `open_for` ends, after which nothing announces OPEN any more).
const TRIP_WAIT: Duration = Duration::from_secs(3);
const CALL_EVERY: Duration = Duration::from_millis(200);

fn describe(_: &E, _: &mut String) {}

// ---------------------------------------------------------------------------------------------
// Counters: Redis's (one long-lived connection, so the measurement opens none) and this
// process's CPU time.

/// What Redis and this process have done so far.
#[derive(Clone, Copy)]
struct Snap {
    at: Instant,
    /// Every command Redis executed (`INFO` excepted), including those run inside scripts.
    commands: u64,
    /// `EVALSHA` and `EVAL`.
    scripts: u64,
    redis_cpu: f64,
    process_cpu: f64,
    connections: u64,
}

/// The difference of two [`Snap`]s.
#[derive(Clone, Copy)]
struct Delta {
    secs: f64,
    commands: u64,
    scripts: u64,
    /// Percent of one core.
    redis_cpu: f64,
    process_cpu: f64,
    connections: u64,
}

impl Snap {
    fn to(&self, later: &Snap) -> Delta {
        let secs = later.at.duration_since(self.at).as_secs_f64();
        Delta {
            secs,
            commands: later.commands - self.commands,
            scripts: later.scripts - self.scripts,
            redis_cpu: (later.redis_cpu - self.redis_cpu) * 100.0 / secs,
            process_cpu: (later.process_cpu - self.process_cpu) * 100.0 / secs,
            connections: later.connections - self.connections,
        }
    }
}

struct Admin {
    con: redis::Connection,
}

impl Admin {
    fn connect(port: u16) -> Admin {
        let client = redis::Client::open(url(port)).unwrap();
        Admin {
            con: client.get_connection().expect("admin connection"),
        }
    }

    fn info(&mut self, section: &str) -> String {
        info_text(
            redis::cmd("INFO")
                .arg(section)
                .query(&mut self.con)
                .expect("INFO"),
        )
    }

    /// The counters over the next `d`.
    fn window(&mut self, d: Duration) -> Delta {
        let a = self.snap();
        std::thread::sleep(d);
        a.to(&self.snap())
    }

    fn snap(&mut self) -> Snap {
        let stats = self.info("commandstats");
        let cpu = self.info("cpu");
        let server_stats = self.info("stats");
        let at = Instant::now();
        let process_cpu = process_cpu_secs();
        let (commands, scripts) = command_totals(&stats, &["evalsha", "eval"]);
        let field = |text: &str, name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let redis_cpu = field(&cpu, "used_cpu_sys") + field(&cpu, "used_cpu_user");
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let connections = field(&server_stats, "total_connections_received") as u64;
        Snap {
            at,
            commands,
            scripts,
            redis_cpu,
            process_cpu,
            connections,
        }
    }
}

/// This process's CPU time (user + system), from `/proc/self/stat` (Linux; 0 elsewhere).
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // After the command name (in parentheses): state is field 3; utime and stime are 14 and 15,
    // in USER_HZ (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// This process's resident memory (Linux; NaN elsewhere).
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `MONITOR` for `d`: `(requests clients sent, commands run inside scripts)`.
fn monitor(port: u16, d: Duration) -> (u64, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("MONITOR connection");
    s.write_all(b"MONITOR\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = Instant::now() + d;
    let (mut requests, mut inner) = (0, 0);
    let mut line = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while Instant::now() < deadline {
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => panic!("MONITOR: {e}"),
        };
        for &b in &buf[..n] {
            if b != b'\n' {
                line.push(b);
                continue;
            }
            // `+<time> [<db> lua] "CMD" ...` for a command run by a script, `+<time> [<db>
            // <addr>] "CMD" ...` for a client's request; `+OK` first.
            if line.starts_with(b"+") && line != b"+OK\r" {
                if line.windows(5).any(|w| w == b" lua]") {
                    inner += 1;
                } else {
                    requests += 1;
                }
            }
            line.clear();
        }
    }
    (requests, inner)
}

/// A bare subscriber to the events channel, subscribed after every instance (Redis writes a
/// message to a channel's subscribers in the order they subscribed, so to this one last): when
/// each state of `scale.b00` was announced. Tells Redis's share of a propagation from the
/// simulated instances' (which share this box's two cores).
struct Listener {
    heard: Arc<Mutex<Vec<(Instant, State)>>>,
}

impl Listener {
    /// Returns once Redis confirmed the subscription.
    fn start(port: u16) -> Listener {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = heard.clone();
        let (subscribed, confirmed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let target = Target::single(&url(port)).expect("Redis URL");
                let mut sub = target
                    .subscribe(&[Keys::new(PREFIX).events()])
                    .await
                    .expect("subscriber connection");
                let _ = subscribed.send(());
                while let Some(item) = sub.next().await {
                    let Pushed::Message { payload, .. } = item else {
                        continue;
                    };
                    if let Some(m) = Message::decode(&payload)
                        && m.name == BREAKERS[0]
                    {
                        sink.lock().unwrap().push((Instant::now(), m.state));
                    }
                }
            });
        });
        confirmed.recv().expect("subscribed");
        Listener { heard }
    }

    /// When `state` was first announced after `t0`, since `t0`.
    fn first(&self, state: State, t0: Instant) -> Option<Duration> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .find(|(at, s)| *at >= t0 && *s == state)
            .map(|(at, _)| at.duration_since(t0))
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet.

struct Fleet {
    stores: Vec<RedisStore>,
    /// `handles[instance][breaker]`.
    handles: Vec<Vec<Handle>>,
}

impl Fleet {
    fn len(&self) -> usize {
        self.stores.len()
    }

    /// Breaker `b` of every instance.
    fn column(&self, b: usize) -> Vec<&'static Breaker> {
        self.handles.iter().map(|h| h[b].breaker()).collect()
    }
}

/// One simulated instance: its store and its 20 breakers.
type Instance = (RedisStore, Vec<Handle>);

/// Connects `n` instances and attaches the 20 breakers to each, on [`ATTACHERS`] threads.
fn attach(n: usize, url: &str) -> Fleet {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Instance>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..ATTACHERS.min(n) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let store = RedisStore::connect(url, PREFIX).expect("store");
                    let handles = BREAKERS
                        .into_iter()
                        .map(|name| standalone_breaker(name, CONFIG, None, &store))
                        .collect();
                    slots.lock().unwrap()[i] = Some((store, handles));
                }
            });
        }
    });
    let (stores, handles) = slots
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|s| s.expect("every instance attached"))
        .unzip();
    Fleet { stores, handles }
}

/// One successful call, as the generated code makes it (a rejection may be a request for a
/// fleet probe lease, and is awaited).
async fn call(b: &'static Breaker, fail: bool) -> bool {
    let permit = match b.admit() {
        Ok(p) => p,
        Err(r) => match b.wait_for_probe(r).await {
            Ok(p) => p,
            Err(_) => return false,
        },
    };
    settle(permit, fail)
}

/// [`call`] from a thread outside any runtime (a rejection that asks for a fleet probe lease
/// blocks this thread for the answer).
fn call_blocking(b: &'static Breaker, fail: bool) -> bool {
    match b.admit() {
        Ok(permit) => settle(permit, fail),
        Err(r) => match futures::executor::block_on(b.wait_for_probe(r)) {
            Ok(permit) => settle(permit, fail),
            Err(_) => false,
        },
    }
}

fn settle(permit: Permit, fail: bool) -> bool {
    let result: Result<u64, E> = if fail { Err(E::Down) } else { Ok(black_box(1)) };
    !permit.settle(
        &result,
        None,
        breaker_runtime::__private::Started::NONE,
        describe,
    )
}

/// Calls breakers round robin at `rate` calls/s until `stop`; counts successes in `done`.
fn drive(breakers: &[&'static Breaker], rate: f64, stop: &AtomicBool, done: &AtomicU64) {
    let start = Instant::now();
    let mut made = 0u64;
    let mut ok = 0u64;
    let mut cursor = 0;
    while !stop.load(Ordering::Relaxed) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        // Fallen behind by more than 100 ms (descheduled): the backlog is dropped, not burst.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let backlog = (rate / 10.0) as u64;
        made = made.max(due.saturating_sub(backlog));
        while made < due {
            if call_blocking(breakers[cursor], false) {
                ok += 1;
            }
            cursor = (cursor + 1) % breakers.len();
            made += 1;
        }
        done.store(ok, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sweeps `breakers` until each one in `mask` has been seen in a state `want` accepts, or until
/// `deadline`: when each was first seen so, since `t0`.
fn watch(
    breakers: &[&'static Breaker],
    mask: &[bool],
    want: impl Fn(State) -> bool,
    t0: Instant,
    deadline: Instant,
) -> Vec<Option<Duration>> {
    let mut seen: Vec<Option<Duration>> = vec![None; breakers.len()];
    let mut left = mask.iter().filter(|w| **w).count();
    while left > 0 && Instant::now() < deadline {
        let mut now = None;
        for (i, b) in breakers.iter().enumerate() {
            if mask[i] && seen[i].is_none() && want(b.published_state()) {
                let at = *now.get_or_insert_with(Instant::now);
                seen[i] = Some(at.duration_since(t0));
                left -= 1;
            }
        }
        std::thread::yield_now();
    }
    seen
}

/// Resets `scale.b00` for the whole fleet through instance `k`'s store, and waits until every
/// instance reads CLOSED.
fn reset(fleet: &Fleet, k: usize, notes: &mut Vec<String>) {
    let h = fleet.handles[k][0];
    let command = Store::command(
        &fleet.stores[k],
        h.breaker(),
        breaker_runtime::Command::Reset,
    );
    if let Err(e) = futures::executor::block_on(command) {
        notes.push(format!("reset through instance {k} failed: {e}"));
    }
    let all = vec![true; fleet.len()];
    let t0 = Instant::now();
    let seen = watch(
        &fleet.column(0),
        &all,
        |s| s == State::Closed,
        t0,
        t0 + Duration::from_secs(5),
    );
    let stuck = seen.iter().filter(|s| s.is_none()).count();
    if stuck > 0 {
        notes.push(format!(
            "{stuck} instances still not CLOSED 5 s after a reset"
        ));
    }
}

/// The instance that trips the breaker in round `r`: a different one every round.
fn tripper(r: usize, n: usize) -> usize {
    (r * 7919 + 3) % n
}

fn trip(fleet: &Fleet, k: usize) -> Instant {
    let b = fleet.handles[k][0].breaker();
    let t0 = Instant::now();
    for _ in 0..THRESHOLD {
        call_blocking(b, true);
    }
    t0
}

// ---------------------------------------------------------------------------------------------
// One size, in a child process: prints `@r <key> <value>` and `@note <text>` lines.

fn put(key: &str, value: f64) {
    println!("@r {key} {value}");
}

/// An idle window's counters, as `<phase>_cmds_s`, `<phase>_scripts_s`, `<phase>_cpu` and
/// `<phase>_proc_cpu`.
#[allow(clippy::cast_precision_loss)]
fn put_idle(phase: &str, d: &Delta) {
    put(&format!("{phase}_cmds_s"), d.commands as f64 / d.secs);
    put(&format!("{phase}_scripts_s"), d.scripts as f64 / d.secs);
    put(&format!("{phase}_cpu"), d.redis_cpu);
    put(&format!("{phase}_proc_cpu"), d.process_cpu);
}

fn progress(n: usize, what: &str) {
    eprintln!("[fleet_scale n={n}] {what}");
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    pct(&v, 50.0)
}

#[allow(clippy::cast_precision_loss)]
fn child(n: usize, port: u16) {
    // The parent keeps our stdin open: if it dies, so do we (and our instances with us).
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(3);
    });
    let url = url(port);
    let mut admin = Admin::connect(port);
    let mut notes = Vec::new();
    let nf = n as f64;

    progress(n, "attaching instances");
    let t = Instant::now();
    let fleet = attach(n, &url);
    let attached = Instant::now();
    put("attach_s", t.elapsed().as_secs_f64());
    put("rss_mb", resident_mb());
    // A store counts as healthy from its first script answer.
    let unhealthy = fleet.stores.iter().filter(|s| !s.is_healthy()).count();
    if unhealthy > 0 {
        notes.push(format!(
            "{unhealthy} stores not yet healthy (no script answer yet) when the last attach returned"
        ));
    }

    // 1. Idle.
    progress(n, "idle, 5 s after attach");
    std::thread::sleep(SETTLE);
    let unhealthy = fleet.stores.iter().filter(|s| !s.is_healthy()).count();
    if unhealthy > 0 {
        notes.push(format!("{unhealthy} stores unhealthy 5 s after attaching"));
    }
    put_idle("fresh", &admin.window(WINDOW));
    if env_flag("FLEET_SCALE_STEADY", true) {
        let at = attached + STEADY_AFTER;
        progress(n, "idle, waiting for heartbeats (41 s after attach)");
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        put_idle("steady", &admin.window(WINDOW));
    }
    progress(n, "idle, MONITOR");
    let (requests, inner) = monitor(port, MONITOR_FOR);
    put("idle_req_s", requests as f64 / MONITOR_FOR.as_secs_f64());
    put("idle_inner_s", inner as f64 / MONITOR_FOR.as_secs_f64());

    // 2. Under load.
    let rate = env_num("FLEET_SCALE_RATE", 300_000) as f64;
    progress(n, &format!("load, {rate} calls/s"));
    let stop = AtomicBool::new(false);
    let done: Vec<AtomicU64> = (0..DRIVERS).map(|_| AtomicU64::new(0)).collect();
    let shares: Vec<Vec<&'static Breaker>> = (0..DRIVERS)
        .map(|t| {
            // Breaker-major, so consecutive calls go to different instances.
            (0..BREAKERS.len())
                .flat_map(|b| (t..n).step_by(DRIVERS).map(move |i| (i, b)))
                .map(|(i, b)| fleet.handles[i][b].breaker())
                .collect()
        })
        .collect();
    let calls = || done.iter().map(|d| d.load(Ordering::Relaxed)).sum::<u64>();
    let (d, made, worst_unhealthy) = std::thread::scope(|s| {
        for (share, done) in shares.iter().zip(&done) {
            if share.is_empty() {
                continue;
            }
            let (stop, rate) = (&stop, rate * share.len() as f64 / (nf * 20.0));
            s.spawn(move || drive(share, rate, stop, done));
        }
        std::thread::sleep(LOAD_WARM_UP);
        let (a, calls_a) = (admin.snap(), calls());
        let mut worst = 0;
        let end = Instant::now() + WINDOW;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs(1).min(end - Instant::now()));
            worst = worst.max(fleet.stores.iter().filter(|s| !s.is_healthy()).count());
        }
        let (b, calls_b) = (admin.snap(), calls());
        stop.store(true, Ordering::Relaxed);
        (a.to(&b), calls_b - calls_a, worst)
    });
    let per_k = |x: u64| x as f64 * 1000.0 / (made.max(1)) as f64;
    put("load_calls_s", made as f64 / d.secs);
    put("load_cmds_per_k", per_k(d.commands));
    put("load_scripts_per_k", per_k(d.scripts));
    put("load_cpu", d.redis_cpu);
    put("load_proc_cpu", d.process_cpu);
    put("load_unhealthy", worst_unhealthy as f64);
    put("load_new_conns", d.connections as f64);
    // What is still queued is flushed, then quiet.
    std::thread::sleep(Duration::from_secs(2));

    // 3. Trip propagation.
    let rounds = usize::try_from(env_num("FLEET_SCALE_ROUNDS", 20).max(1)).unwrap();
    progress(n, &format!("trip propagation, {rounds} rounds"));
    let column = fleet.column(0);
    let listener = Listener::start(port);
    std::thread::sleep(Duration::from_millis(100));
    let mut announced = Vec::new();
    let mut lags = Vec::new();
    let mut alls = Vec::new();
    let mut missed = 0;
    let mut round_cmds = Vec::new();
    for r in 0..rounds {
        let k = tripper(r, n);
        let a = admin.snap();
        let t0 = trip(&fleet, k);
        let others: Vec<bool> = (0..n).map(|i| i != k).collect();
        let seen = watch(&column, &others, |s| s == State::Open, t0, t0 + TRIP_WAIT);
        let mut worst: f64 = 0.0;
        for (i, s) in seen.iter().enumerate() {
            match s {
                Some(d) => {
                    let ms = d.as_secs_f64() * 1000.0;
                    worst = worst.max(ms);
                    lags.push(ms);
                }
                None if others[i] => missed += 1,
                None => {}
            }
        }
        if n > 1 {
            alls.push(worst);
        }
        if let Some(d) = listener.first(State::Open, t0) {
            announced.push(d.as_secs_f64() * 1000.0);
        }
        reset(&fleet, k, &mut notes);
        std::thread::sleep(Duration::from_millis(250));
        round_cmds.push(a.to(&admin.snap()).commands as f64 / nf);
    }
    lags.sort_by(f64::total_cmp);
    put("trip_samples", lags.len() as f64);
    put("trip_missed", f64::from(missed));
    put("trip_p50_ms", pct(&lags, 50.0));
    put("trip_p99_ms", pct(&lags, 99.0));
    put("trip_max_ms", lags.last().copied().unwrap_or(f64::NAN));
    put("trip_all_med_ms", median(alls));
    announced.sort_by(f64::total_cmp);
    put("trip_bare_p50_ms", pct(&announced, 50.0));
    put("trip_bare_p99_ms", pct(&announced, 99.0));
    if announced.len() < rounds {
        notes.push(format!(
            "trip: the bare subscriber missed the OPEN message in {} rounds",
            rounds - announced.len()
        ));
    }
    put("trip_round_cmds", median(round_cmds));
    if missed > 0 {
        notes.push(format!(
            "trip: {missed} instance-rounds never read OPEN within {} s",
            TRIP_WAIT.as_secs()
        ));
    }

    // 4. Fleet-wide recovery.
    let rounds_rec = usize::try_from(env_num("FLEET_SCALE_RECOVERY_ROUNDS", 3).max(1)).unwrap();
    progress(n, &format!("recovery, {rounds_rec} rounds"));
    let mut all_closed = Vec::new();
    let mut first_closed = Vec::new();
    let mut rec_missed = 0;
    let mut rec_cmds = Vec::new();
    let mut rec_bare = Vec::new();
    for r in 0..rounds_rec {
        let k = tripper(rounds + r, n);
        let a = admin.snap();
        let t0 = trip(&fleet, k);
        let everyone = vec![true; n];
        let opened = watch(&column, &everyone, |s| s == State::Open, t0, t0 + TRIP_WAIT);
        let was_open: Vec<bool> = opened.iter().map(Option::is_some).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let callers = {
            let (stop, column) = (stop.clone(), column.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let n = u32::try_from(column.len()).unwrap();
                    let tasks: Vec<_> = column
                        .into_iter()
                        .zip(0u32..)
                        .map(|(b, i)| {
                            let stop = stop.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(CALL_EVERY * i / n).await;
                                let mut every = tokio::time::interval(CALL_EVERY);
                                every.set_missed_tick_behavior(
                                    tokio::time::MissedTickBehavior::Delay,
                                );
                                while !stop.load(Ordering::Relaxed) {
                                    every.tick().await;
                                    call(b, false).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        let _ = t.await;
                    }
                });
            })
        };
        let closed = watch(
            &column,
            &was_open,
            |s| s == State::Closed,
            t0,
            t0 + OPEN_FOR + Duration::from_secs(6),
        );
        stop.store(true, Ordering::Relaxed);
        callers.join().unwrap();
        let after_end: Vec<f64> = closed
            .iter()
            .flatten()
            .map(|d| (d.as_secs_f64() - OPEN_FOR.as_secs_f64()) * 1000.0)
            .collect();
        let never = was_open.iter().filter(|w| !**w).count()
            + closed
                .iter()
                .zip(&was_open)
                .filter(|(c, w)| **w && c.is_none())
                .count();
        rec_missed += never;
        if let Some(worst) = after_end.iter().copied().max_by(f64::total_cmp) {
            all_closed.push(if never > 0 { f64::INFINITY } else { worst });
        }
        if let Some(first) = after_end.iter().copied().min_by(f64::total_cmp) {
            if first < 0.0 {
                notes.push(format!(
                    "recovery round {r}: an instance read CLOSED {:.1} ms before open_for ended",
                    -first
                ));
            }
            first_closed.push(first);
        }
        if let Some(d) = listener.first(State::Closed, t0) {
            rec_bare.push((d.as_secs_f64() - OPEN_FOR.as_secs_f64()) * 1000.0);
        }
        std::thread::sleep(Duration::from_millis(300));
        rec_cmds.push(a.to(&admin.snap()).commands as f64 / nf);
        // Leave no counts behind for the next round.
        reset(&fleet, k, &mut notes);
    }
    put(
        "rec_worst_ms",
        all_closed
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(f64::NAN),
    );
    put("rec_med_ms", median(all_closed));
    put("rec_first_med_ms", median(first_closed));
    put("rec_bare_med_ms", median(rec_bare));
    put("rec_missed", rec_missed as f64);
    put("rec_round_cmds", median(rec_cmds));
    if rec_missed > 0 {
        notes.push(format!(
            "recovery: {rec_missed} instance-rounds never read OPEN then CLOSED"
        ));
    }
    for note in notes {
        println!("@note {note}");
    }
    let _ = std::io::stdout().flush();
    // The instances' threads never end: leave without waiting for them.
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// The parent: one child per size, then the table.

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn env_flag(name: &str, default: bool) -> bool {
    std::env::var(name).map_or(default, |v| !matches!(v.trim(), "0" | "false" | "no"))
}

fn parse_sizes(s: &str) -> Option<Vec<usize>> {
    let v: Option<Vec<usize>> = s
        .split(',')
        .map(|x| x.trim().replace('_', "").parse().ok().filter(|n| *n > 0))
        .collect();
    v.filter(|v| !v.is_empty())
}

fn sizes() -> Vec<usize> {
    // `cargo bench` passes `--bench`; a plain argument is the list of sizes.
    let arg = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| parse_sizes(&a));
    arg.or_else(|| {
        std::env::var("FLEET_SCALE_SIZES")
            .ok()
            .and_then(|s| parse_sizes(&s))
    })
    .unwrap_or_else(|| DEFAULT_SIZES.to_vec())
}

struct Run {
    n: usize,
    r: BTreeMap<String, f64>,
    notes: Vec<String>,
    failed: Option<String>,
}

fn run_size(n: usize) -> Run {
    let server = start_redis(&["--maxclients", "10000"]);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("FLEET_SCALE_CHILD", n.to_string())
        .env("FLEET_SCALE_PORT", server.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("child");
    let mut run = Run {
        n,
        r: BTreeMap::new(),
        notes: Vec::new(),
        failed: None,
    };
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if let Some(kv) = line.strip_prefix("@r ") {
            if let Some((k, v)) = kv.split_once(' ') {
                run.r.insert(k.to_owned(), v.parse().unwrap_or(f64::NAN));
            }
        } else if let Some(note) = line.strip_prefix("@note ") {
            run.notes.push(note.to_owned());
        } else {
            println!("{line}");
        }
    }
    drop(child.stdin.take());
    let status = child.wait().expect("child status");
    if !status.success() {
        run.failed = Some(format!("child exited with {status}"));
    }
    drop(server);
    run
}

/// A row: label, target, and the cell of one run (value, and whether the target is met).
type Cell = Option<(String, Option<bool>)>;
type Row = (&'static str, &'static str, Box<dyn Fn(&Run) -> Cell>);

fn get(run: &Run, key: &str) -> Option<f64> {
    run.r.get(key).copied()
}

#[allow(clippy::cast_precision_loss)]
fn rows() -> Vec<Row> {
    fn num(v: f64, digits: usize) -> String {
        if v.is_infinite() {
            "never".to_owned()
        } else if v.is_nan() {
            "n/a".to_owned()
        } else {
            format!("{v:.digits$}")
        }
    }
    fn plain(key: &'static str, digits: usize) -> Box<dyn Fn(&Run) -> Cell> {
        Box::new(move |run| get(run, key).map(|v| (num(v, digits), None)))
    }
    fn per_instance(key: &'static str, max: f64) -> Box<dyn Fn(&Run) -> Cell> {
        Box::new(move |run| {
            get(run, key).map(|v| {
                let v = v / run.n as f64;
                (num(v, 2), Some(v <= max))
            })
        })
    }
    fn per_instance_plain(key: &'static str) -> Box<dyn Fn(&Run) -> Cell> {
        Box::new(move |run| get(run, key).map(|v| (num(v / run.n as f64, 2), None)))
    }
    fn below(key: &'static str, max: f64, digits: usize) -> Box<dyn Fn(&Run) -> Cell> {
        Box::new(move |run| get(run, key).map(|v| (num(v, digits), Some(v < max))))
    }
    fn at_most(key: &'static str, max: f64, digits: usize) -> Box<dyn Fn(&Run) -> Cell> {
        Box::new(move |run| get(run, key).map(|v| (num(v, digits), Some(v <= max))))
    }
    /// An idle window's rows: commands/s, then per instance, scripts per instance, Redis's CPU
    /// and this process's, from the keys `[cmds_s, scripts_s, cpu, proc_cpu]`.
    fn idle(heading: &'static str, [cmds, scripts, cpu, proc_cpu]: [&'static str; 4]) -> [Row; 5] {
        [
            (heading, "", plain(cmds, 0)),
            ("… per instance", "≤ 2", per_instance(cmds, 2.0)),
            (
                "… scripts (EVALSHA/EVAL)/s per instance",
                "",
                per_instance_plain(scripts),
            ),
            ("… Redis CPU (% of one core)", "< 10 %", below(cpu, 10.0, 1)),
            (
                "… this process's CPU, all instances (% of one core)",
                "",
                plain(proc_cpu, 1),
            ),
        ]
    }
    let mut rows: Vec<Row> = vec![
        ("attach every instance (s)", "", plain("attach_s", 2)),
        (
            "this process's memory, all instances (RSS, MB)",
            "",
            plain("rss_mb", 0),
        ),
    ];
    rows.extend(idle(
        "**idle, 5 s after attach**: Redis commands/s (all, incl. inside scripts)",
        [
            "fresh_cmds_s",
            "fresh_scripts_s",
            "fresh_cpu",
            "fresh_proc_cpu",
        ],
    ));
    rows.extend(idle(
        "**idle, heartbeats running (41 s after attach)**: Redis commands/s (all)",
        [
            "steady_cmds_s",
            "steady_scripts_s",
            "steady_cpu",
            "steady_proc_cpu",
        ],
    ));
    rows.extend([
        (
            "idle, MONITOR: client requests/s per instance (round trips, not counting commands inside scripts)",
            "≤ 2",
            per_instance("idle_req_s", 2.0),
        ),
        (
            "idle, MONITOR: commands run inside scripts/s per instance",
            "",
            per_instance_plain("idle_inner_s"),
        ),
        (
            "**load**: successful calls/s, all instances",
            "",
            plain("load_calls_s", 0),
        ),
        (
            "… calls/s per breaker per instance",
            "",
            Box::new(|run| {
                get(run, "load_calls_s").map(|v| (num(v / (run.n as f64 * 20.0), 1), None))
            }),
        ),
        (
            "… Redis commands per 1,000 calls (all, incl. inside scripts)",
            "< 5",
            below("load_cmds_per_k", 5.0, 1),
        ),
        (
            "… scripts (EVALSHA/EVAL) per 1,000 calls",
            "< 5",
            below("load_scripts_per_k", 5.0, 1),
        ),
        ("… Redis CPU (% of one core)", "", plain("load_cpu", 1)),
        (
            "… this process's CPU (% of one core; 200 = the whole box)",
            "",
            plain("load_proc_cpu", 1),
        ),
        (
            "… stores unhealthy (worst of 1 s samples)",
            "0",
            at_most("load_unhealthy", 0.0, 0),
        ),
        (
            "… new Redis connections during the window (reconnections)",
            "0",
            at_most("load_new_conns", 0.0, 0),
        ),
        (
            "**trip propagation** to the other instances: p50 (ms)",
            "",
            plain("trip_p50_ms", 2),
        ),
        ("… p99 (ms)", "< 5", below("trip_p99_ms", 5.0, 2)),
        ("… max (ms)", "", plain("trip_max_ms", 2)),
        (
            "… every instance OPEN, median round (ms)",
            "",
            plain("trip_all_med_ms", 2),
        ),
        (
            "… Redis's OPEN message at a bare subscriber (subscribed last): p50 over rounds (ms)",
            "",
            plain("trip_bare_p50_ms", 2),
        ),
        (
            "… Redis's OPEN message at a bare subscriber: p99 over rounds (ms)",
            "",
            plain("trip_bare_p99_ms", 2),
        ),
        (
            "… samples (instances × rounds)",
            "",
            plain("trip_samples", 0),
        ),
        (
            "… never read OPEN within 3 s",
            "0",
            at_most("trip_missed", 0.0, 0),
        ),
        (
            "… Redis commands per instance per round (trip + reset)",
            "",
            plain("trip_round_cmds", 1),
        ),
        (
            "**recovery**: every instance CLOSED, ms after open_for (1 s) ended, worst round",
            "≤ 1000",
            at_most("rec_worst_ms", 1000.0, 0),
        ),
        (
            "… median round (ms after open_for ended)",
            "≤ 1000",
            at_most("rec_med_ms", 1000.0, 0),
        ),
        (
            "… first instance CLOSED, median round (ms after open_for ended)",
            "",
            plain("rec_first_med_ms", 0),
        ),
        (
            "… Redis's CLOSED message at a bare subscriber, median round (ms after open_for ended)",
            "",
            plain("rec_bare_med_ms", 0),
        ),
        ("… never read CLOSED", "0", at_most("rec_missed", 0.0, 0)),
        (
            "… Redis commands per instance per round",
            "",
            plain("rec_round_cmds", 1),
        ),
    ]);
    rows
}

fn print_table(runs: &[Run]) {
    let command = "cargo bench -p breaker-runtime --features redis --bench fleet_scale";
    let version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let sizes: Vec<String> = runs.iter().map(|r| r.n.to_string()).collect();
    println!("\n## Fleet scale: N instances × 20 breakers sharing one Redis\n");
    println!("Command: `{command}`");
    println!(
        "(FLEET_SCALE_SIZES={} FLEET_SCALE_RATE={} FLEET_SCALE_ROUNDS={} FLEET_SCALE_RECOVERY_ROUNDS={} FLEET_SCALE_STEADY={})  ",
        sizes.join(","),
        env_num("FLEET_SCALE_RATE", 300_000),
        env_num("FLEET_SCALE_ROUNDS", 20),
        env_num("FLEET_SCALE_RECOVERY_ROUNDS", 3),
        u8::from(env_flag("FLEET_SCALE_STEADY", true)),
    );
    println!(
        "Machine: {cores} cores; {version}; breakers: threshold {THRESHOLD}, open_for {} s, store redis\n",
        OPEN_FOR.as_secs()
    );
    print!("| measure | target |");
    for r in runs {
        print!(" N = {} |", r.n);
    }
    println!();
    print!("|---|---|");
    for _ in runs {
        print!("---:|");
    }
    println!();
    for (label, target, cell) in rows() {
        let cells: Vec<Cell> = runs.iter().map(&cell).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        print!("| {label} | {target} |");
        for c in cells {
            match c {
                None => print!(" – |"),
                Some((v, None)) => print!(" {v} |"),
                Some((v, Some(true))) => print!(" {v} ✅ |"),
                Some((v, Some(false))) => print!(" {v} ❌ |"),
            }
        }
        println!();
    }
    let mut any = false;
    for r in runs {
        for note in r.failed.iter().chain(&r.notes) {
            if !any {
                println!("\nNotes:");
                any = true;
            }
            println!("- N = {}: {note}", r.n);
        }
    }
    println!();
}

fn main() {
    if let Ok(n) = std::env::var("FLEET_SCALE_CHILD") {
        let n: usize = n.parse().expect("FLEET_SCALE_CHILD");
        let port: u16 = std::env::var("FLEET_SCALE_PORT")
            .expect("FLEET_SCALE_PORT")
            .parse()
            .expect("FLEET_SCALE_PORT");
        child(n, port);
        return;
    }
    let sizes = sizes();
    eprintln!("fleet_scale: sizes {sizes:?}");
    let mut runs = Vec::new();
    for n in sizes {
        runs.push(run_size(n));
    }
    print_table(&runs);
}
