//! What sharing a breaker through Redis costs, measured against a `redis-server` this benchmark
//! starts on a free loopback port (`redis-server` must be on `PATH`).
//!
//! 1. Closed-state success, memory store next to Redis store (criterion, same process).
//! 2. Redis commands per 1,000 successful calls at 10,000 calls/s (from `INFO commandstats`).
//! 3. Trip propagation: this process trips the breaker; two other instances (this binary,
//!    re-run as child processes) report when they see OPEN. p50/p99 over 100 rounds.
//! 4. For contrast: one Redis round trip per call (an `EVALSHA` of a small script), what the peers
//!    with shared state pay on every call.
//!
//! Run: `cargo bench -p breaker-runtime --features redis --bench redis`

#![allow(missing_docs, unreachable_pub)]

#[path = "common/redis_server.rs"]
mod redis_server;
use redis_server::{command_totals, info_text, redis_cmd, start_redis};

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use breaker_runtime::{RedisStore, Runtime, State, breaker, circuit_breaker};
use criterion::Criterion;

mod common;

use common::{E, poll_once};

#[circuit_breaker(name = "bench.memory")]
async fn memory(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

#[circuit_breaker(name = "bench.redis", store = "redis")]
async fn shared(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

#[circuit_breaker(name = "bench.trip", threshold = 1, open_for = "1h", store = "redis")]
async fn trip(fail: bool) -> Result<u64, E> {
    if fail { Err(E::Down) } else { Ok(1) }
}

fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// `(requests, commands)`: requests a client sent (`EVALSHA`, plus any plain command), and every
/// command Redis executed, including those run inside scripts.
fn command_counts(port: u16) -> (u64, u64) {
    let info = info_text(redis_cmd(port, &["INFO", "commandstats"]).expect("INFO"));
    // What the store sends: EVALSHA (a script's inner commands are counted in all only).
    let (commands, requests) = command_totals(&info, &["evalsha", "script"]);
    (requests, commands)
}

/// A second instance: reports every time it sees the breaker OPEN, then CLOSED again, until
/// its stdin closes.
fn watcher() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let _ = trip(false).await;
        let b = breaker("bench.trip").unwrap().breaker();
        println!("@ready");
        let mut stdin = std::io::stdin().lock();
        // One round per line on stdin: wait for OPEN, then for CLOSED again.
        let mut line = String::new();
        while stdin.read_line(&mut line).unwrap_or(0) > 0 {
            while b.published_state() != State::Open {
                std::thread::yield_now();
            }
            println!("@open {}", unix_micros());
            while b.published_state() == State::Open {
                std::thread::yield_now();
            }
            println!("@closed");
            line.clear();
        }
    });
}

fn main() {
    if std::env::var_os("BENCH_WATCHER").is_some() {
        watcher();
        return;
    }
    let server = start_redis(&[]);
    let url = server.url();
    let store = RedisStore::connect(&url, "bench").expect("store");
    assert!(store.is_healthy(), "Redis at {url} unreachable");
    Runtime::builder()
        .redis_store(Arc::new(store))
        .install()
        .expect("runtime");

    // 1. Closed-state success, memory next to Redis.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("closed");
        g.bench_function("memory", |b| {
            b.iter(|| black_box(poll_once(memory(black_box(7)))).is_ok())
        });
        g.bench_function("redis", |b| {
            b.iter(|| black_box(poll_once(shared(black_box(7)))).is_ok())
        });
        g.finish();
    }

    // 2. Redis commands per 1,000 successful calls at 10,000 calls/s, for 3 s.
    let before = command_counts(server.port);
    let calls = 30_000u64;
    let start = Instant::now();
    for i in 0..calls {
        let due = start + Duration::from_micros(i * 100);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let _ = black_box(poll_once(shared(black_box(i))));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = command_counts(server.port);
    let (requests, commands) = (after.0 - before.0, after.1 - before.1);
    println!(
        "\n{calls} successful calls at 10,000 calls/s: {requests} Redis requests ({:.2} per 1,000 calls), \
         {commands} commands executed by Redis including inside scripts ({:.2} per 1,000 calls)",
        requests as f64 * 1000.0 / calls as f64,
        commands as f64 * 1000.0 / calls as f64
    );

    // 3. Trip propagation to two other instances.
    let _ = poll_once(trip(false));
    let mut watchers: Vec<_> = (0..2)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env("BENCH_WATCHER", "1")
                .env("BREAKER_REDIS_URL", &url)
                .env("BREAKER_KEY_PREFIX", "bench")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(child.stdout.take().unwrap());
            (child, out)
        })
        .collect();
    let expect = |out: &mut BufReader<std::process::ChildStdout>, tag: &str| -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "watcher ended");
            if let Some(at) = line.find(tag) {
                return line[at + tag.len()..].trim().to_owned();
            }
        }
    };
    for (_, out) in &mut watchers {
        expect(out, "@ready");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = breaker("bench.trip").unwrap();
    let mut lags = Vec::new();
    for _ in 0..100 {
        for (child, _) in &mut watchers {
            let _ = child.stdin.as_mut().unwrap().write_all(b"next\n");
        }
        let t0 = unix_micros();
        let _ = poll_once(trip(true));
        for (_, out) in &mut watchers {
            let seen: u128 = expect(out, "@open ").parse().unwrap();
            lags.push(seen.saturating_sub(t0));
        }
        rt.block_on(handle.reset()).unwrap();
        for (_, out) in &mut watchers {
            expect(out, "@closed");
        }
    }
    for (mut child, _) in watchers {
        drop(child.stdin.take());
        let _ = child.wait();
    }
    lags.sort_unstable();
    let pct = |p: usize| lags[(lags.len() * p / 100).min(lags.len() - 1)];
    println!(
        "trip propagation to another instance over {} samples: p50 {} µs, p99 {} µs, max {} µs",
        lags.len(),
        pct(50),
        pct(99),
        lags[lags.len() - 1]
    );

    // 4. Contrast: one round trip per call.
    let client = redis::Client::open(url.as_str()).unwrap();
    let script = redis::Script::new("return redis.call('INCR', KEYS[1])");
    let mut rtts = rt.block_on(async {
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let mut v = Vec::new();
        for _ in 0..5_000 {
            let t = Instant::now();
            let _: i64 = script
                .key("bench:rtt")
                .invoke_async(&mut con)
                .await
                .unwrap();
            v.push(t.elapsed().as_micros());
        }
        v
    });
    rtts.sort_unstable();
    println!(
        "one Redis round trip per call (EVALSHA): p50 {} µs, p99 {} µs",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
    c.final_summary();
    drop(server);
}
