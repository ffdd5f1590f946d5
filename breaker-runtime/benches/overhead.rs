//! What a breaker costs around a call that does (almost) nothing, next to failsafe 1.3 and
//! recloser 1.4.
//!
//! Every contestant wraps the same `async fn` (`Ok(black_box(x))`) and every future is polled the
//! same way: pinned on the stack and polled once with a no-op waker ([`poll_once`]). All of them
//! complete on their first poll, so no executor is involved and the numbers are the breaker's
//! own cost plus the (shared) cost of building and polling the future.
//!
//! Groups (criterion prints each group's contestants together):
//! - `closed/*`: a success in CLOSED, default configuration, one thread.
//! - `open/*`: a rejection by a tripped breaker (open for an hour): `breaker` armed (tripped on a
//!   multi-thread runtime: decided on the coarse clock), `breaker_clock` not armed (tripped
//!   outside any runtime: every rejection reads the clock), next to `bare` and the peers.
//! - `two_threads/*`: two OS threads calling one shared breaker; the time reported is wall time
//!   divided by the total number of calls of both threads (so perfect scaling shows half the
//!   single-thread time).
//! - `timeout/*`: our breaker with `timeout = "3s"` next to the same breaker without, inside a
//!   tokio runtime context, for a call that completes at once.
//! - `not_inlined/*`: bare, ours and the peers polled through a function the compiler may not
//!   inline, so all return their result through memory, as calls too large to inline do; and
//!   `bare_poll_outlined`, the bare call behind a `poll` that is not inlined either (what any
//!   async call pays when its poll is out of line: the result written to memory and copied);
//!   and `bare_await`, a plain call with one await it does not take (every real client call
//!   has one), whose future is a state machine of the annotated function's size: what the
//!   same call costs without a breaker when its future is moved into the function that polls
//!   it, the baseline the breaker's own cost in this row is read against.
//!
//! Before the groups it prints the size of each annotated function's future next to the plain
//! function's (`future sizes`).
//!
//! Run: `cargo bench -p breaker-runtime --bench overhead` (short warm-up and measurement times
//! are set below; `-- --warm-up-time/--measurement-time` override them).

#![allow(missing_docs, unreachable_pub)]

use std::future::Future;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use breaker_runtime::{BreakerError, circuit_breaker};
use criterion::{Criterion, criterion_group};
use failsafe::futures::CircuitBreaker as _;
use recloser::{AsyncRecloser, Recloser};

mod common;

use common::{E, poll_once};

/// The call every contestant wraps.
async fn bare(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// A call that fails, to trip the peers.
async fn bare_err(_x: u64) -> Result<u64, E> {
    Err(E::Down)
}

/// Ours, default configuration.
#[circuit_breaker]
async fn breaker(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// Ours, tripped before the `open/*` group runs.
#[circuit_breaker(threshold = 1, open_for = "1h")]
async fn breaker_open(x: u64, fail: bool) -> Result<u64, E> {
    if fail { Err(E::Down) } else { Ok(black_box(x)) }
}

/// Ours, tripped outside any runtime, so its rejections read the clock (`open/breaker_clock`).
#[circuit_breaker(threshold = 1, open_for = "1h")]
async fn breaker_open_clock(x: u64, fail: bool) -> Result<u64, E> {
    if fail { Err(E::Down) } else { Ok(black_box(x)) }
}

/// Ours, default configuration, for the `two_threads` group (each group has its own annotated
/// function, as each call site of an application would: the compiler decides inlining per
/// function, and a function polled from several benchmark groups is not inlined into any).
#[circuit_breaker]
async fn breaker_threads(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// Ours, default configuration, for the `timeout` and `not_inlined` groups.
#[circuit_breaker]
async fn breaker_no_timeout(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// Ours with a timeout.
#[circuit_breaker(timeout = "3s")]
async fn breaker_timeout(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// A plain call with one await that it does not take, as every real client call has one: its
/// future is a state machine (here 72 bytes, the annotated function's size) rather than the
/// bare call's two words. The `not_inlined` group's baseline for the breaker.
async fn bare_await(x: u64) -> Result<u64, E> {
    let room = std::mem::MaybeUninit::<[u64; 4]>::uninit();
    if black_box(false) {
        tokio::task::yield_now().await;
    }
    black_box(&room);
    Ok(black_box(x))
}

/// A fallback, for the future sizes.
async fn fallback(x: u64) -> Result<u64, E> {
    Ok(black_box(x + 1))
}

/// Ours with a fallback, for the future sizes.
#[circuit_breaker(fallback = fallback)]
async fn breaker_fallback(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// Ours with a timeout and a fallback, for the future sizes.
#[circuit_breaker(timeout = "3s", fallback = fallback)]
async fn breaker_timeout_fallback(x: u64) -> Result<u64, E> {
    Ok(black_box(x))
}

/// A call that keeps a 1 KiB buffer across an await, as a real client's future does.
async fn bare_large(x: u64) -> Result<u64, E> {
    let buffer = [black_box(x as u8); 1024];
    tokio::task::yield_now().await;
    Ok(u64::from(buffer[black_box(7)]))
}

/// The same call, ours.
#[circuit_breaker(timeout = "3s", fallback = fallback)]
async fn breaker_large(x: u64) -> Result<u64, E> {
    let buffer = [black_box(x as u8); 1024];
    tokio::task::yield_now().await;
    Ok(u64::from(buffer[black_box(7)]))
}

/// Prints the size of each annotated function's future next to the plain function's (the
/// futures are built, not polled).
fn future_sizes() {
    use std::mem::size_of_val;
    let plain = size_of_val(&bare(7));
    let large = size_of_val(&bare_large(7));
    println!("future sizes, bytes (`size_of_val` of the future an async fn returns):");
    println!("| shape | plain `async fn` | annotated | growth |");
    println!("| --- | ---: | ---: | ---: |");
    for (shape, original, annotated) in [
        (
            "no timeout, no fallback",
            plain,
            size_of_val(&breaker_no_timeout(7)),
        ),
        (
            "`timeout = \"3s\"`",
            plain,
            size_of_val(&breaker_timeout(7)),
        ),
        ("`fallback = ..`", plain, size_of_val(&breaker_fallback(7))),
        (
            "timeout and fallback",
            plain,
            size_of_val(&breaker_timeout_fallback(7)),
        ),
        (
            "timeout and fallback, a 1 KiB body",
            large,
            size_of_val(&breaker_large(7)),
        ),
    ] {
        println!(
            "| {shape} | {original} | {annotated} | +{} |",
            annotated.saturating_sub(original)
        );
    }
    println!(
        "parts: a permit {} B, the start time of a `slow_call` rule (`Started`) {} B, \
         tokio's `Sleep` (the timeout's timer) {} B, `BreakerError` {} B",
        std::mem::size_of::<breaker_runtime::__private::Permit>(),
        std::mem::size_of::<breaker_runtime::__private::Started>(),
        std::mem::size_of::<tokio::time::Sleep>(),
        std::mem::size_of::<BreakerError>(),
    );
    println!(
        "`not_inlined/bare_await`'s future (a plain call with one await): {} B",
        size_of_val(&bare_await(7))
    );
    println!();
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::OrElse<
        failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
        failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
    >,
    (),
>;

fn failsafe_default() -> Failsafe {
    failsafe::Config::new().build()
}

fn recloser_default() -> AsyncRecloser {
    AsyncRecloser::from(Recloser::custom().build())
}

fn closed(c: &mut Criterion) {
    let fs = failsafe_default();
    let rc = recloser_default();
    let mut g = c.benchmark_group("closed");
    g.bench_function("bare", |b| {
        b.iter(|| black_box(poll_once(bare(black_box(7)))).is_ok())
    });
    g.bench_function("breaker", |b| {
        b.iter(|| black_box(poll_once(breaker(black_box(7)))).is_ok())
    });
    g.bench_function("failsafe", |b| {
        b.iter(|| black_box(poll_once(fs.call(bare(black_box(7))))).is_ok())
    });
    g.bench_function("recloser", |b| {
        b.iter(|| black_box(poll_once(rc.call(bare(black_box(7))))).is_ok())
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    // Ours: one failure trips it (threshold 1), open for an hour. The first rejection on a
    // multi-thread runtime arms it: the rest are decided on the coarse clock.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("tokio runtime");
    let entered = rt.enter();
    assert!(matches!(poll_once(breaker_open(1, true)), Err(E::Down)));
    assert!(matches!(
        poll_once(breaker_open(1, false)),
        Err(E::Breaker(BreakerError::Open { .. }))
    ));
    let armed = breaker_runtime::breaker(&format!("{}::breaker_open", module_path!()))
        .expect("the benchmark's breaker");
    assert!(
        armed.is_armed(),
        "open/breaker must measure an armed breaker"
    );
    // The same, tripped outside the runtime: never armed, every rejection reads the clock.
    drop(entered);
    assert!(matches!(
        poll_once(breaker_open_clock(1, true)),
        Err(E::Down)
    ));
    assert!(matches!(
        poll_once(breaker_open_clock(1, false)),
        Err(E::Breaker(BreakerError::Open { .. }))
    ));
    let _entered = rt.enter();
    // failsafe: one consecutive failure trips it, open for an hour.
    let fs = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(Duration::from_secs(3600)),
        ))
        .build();
    let _ = poll_once(fs.call(bare_err(1)));
    assert!(matches!(
        poll_once(fs.call(bare(1))),
        Err(failsafe::Error::Rejected)
    ));
    // recloser: a ring of one call, open for an hour; it judges once the ring is full.
    let rc = AsyncRecloser::from(
        Recloser::custom()
            .closed_len(1)
            .open_wait(Duration::from_secs(3600))
            .build(),
    );
    for _ in 0..3 {
        let _ = poll_once(rc.call(bare_err(1)));
    }
    assert!(matches!(
        poll_once(rc.call(bare(1))),
        Err(recloser::Error::Rejected)
    ));

    let mut g = c.benchmark_group("open");
    g.bench_function("bare", |b| {
        b.iter(|| black_box(poll_once(bare(black_box(7)))).is_ok())
    });
    g.bench_function("breaker", |b| {
        b.iter(|| black_box(poll_once(breaker_open(black_box(7), black_box(false)))).is_err())
    });
    g.bench_function("breaker_clock", |b| {
        b.iter(|| {
            black_box(poll_once(breaker_open_clock(
                black_box(7),
                black_box(false),
            )))
            .is_err()
        })
    });
    g.bench_function("failsafe", |b| {
        b.iter(|| black_box(poll_once(fs.call(bare(black_box(7))))).is_err())
    });
    g.bench_function("recloser", |b| {
        b.iter(|| black_box(poll_once(rc.call(bare(black_box(7))))).is_err())
    });
    g.finish();
}

/// Runs `call` `iters` times on each of two fresh OS threads started together; returns the wall
/// time divided by 2, so criterion's per-iteration figure is wall time per call of either thread.
fn two_threads<F>(iters: u64, call: F) -> Duration
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let call = Arc::new(call);
    let start = Arc::new(Barrier::new(3));
    let end = Arc::new(Barrier::new(3));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (call, start, end) = (call.clone(), start.clone(), end.clone());
            std::thread::spawn(move || {
                // First call outside the timing: thread-local setup (our counter slot).
                black_box(call());
                start.wait();
                for _ in 0..iters {
                    black_box(call());
                }
                end.wait();
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    end.wait();
    let wall = t0.elapsed();
    for w in workers {
        w.join().expect("worker panicked");
    }
    wall / 2
}

fn threads(c: &mut Criterion) {
    let fs = failsafe_default();
    let rc = recloser_default();
    let mut g = c.benchmark_group("two_threads");
    g.bench_function("bare", |b| {
        b.iter_custom(|n| two_threads(n, || black_box(poll_once(bare(black_box(7)))).is_ok()))
    });
    g.bench_function("breaker", |b| {
        b.iter_custom(|n| {
            two_threads(n, || {
                black_box(poll_once(breaker_threads(black_box(7)))).is_ok()
            })
        })
    });
    g.bench_function("failsafe", |b| {
        b.iter_custom(|n| {
            let fs = fs.clone();
            two_threads(n, move || {
                black_box(poll_once(fs.call(bare(black_box(7))))).is_ok()
            })
        })
    });
    g.bench_function("recloser", |b| {
        b.iter_custom(|n| {
            let rc = rc.clone();
            two_threads(n, move || {
                black_box(poll_once(rc.call(bare(black_box(7))))).is_ok()
            })
        })
    });
    g.finish();
}

fn timeout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    let _entered = rt.enter();
    let mut g = c.benchmark_group("timeout");
    g.bench_function("bare", |b| {
        b.iter(|| black_box(poll_once(bare(black_box(7)))).is_ok())
    });
    g.bench_function("none", |b| {
        b.iter(|| black_box(poll_once(breaker_no_timeout(black_box(7)))).is_ok())
    });
    g.bench_function("3s", |b| {
        b.iter(|| black_box(poll_once(breaker_timeout(black_box(7)))).is_ok())
    });
    g.finish();
}

/// Polls a future once inside a function the compiler may not inline: the result comes back
/// through memory, as it does from any call too large to inline (most real provider calls).
#[inline(never)]
fn poll_outlined<F: Future>(f: F) -> F::Output {
    poll_once(f)
}

pin_project_lite::pin_project! {
    /// A future whose `poll` the compiler may not inline: what the annotated function's poll
    /// is wherever it is too large to inline.
    struct OutlinedPoll<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for OutlinedPoll<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

fn not_inlined(c: &mut Criterion) {
    let fs = failsafe_default();
    let rc = recloser_default();
    let mut g = c.benchmark_group("not_inlined");
    g.bench_function("bare", |b| {
        b.iter(|| black_box(poll_outlined(bare(black_box(7)))).is_ok())
    });
    g.bench_function("bare_poll_outlined", |b| {
        b.iter(|| {
            black_box(poll_outlined(OutlinedPoll {
                inner: bare(black_box(7)),
            }))
            .is_ok()
        })
    });
    g.bench_function("bare_await", |b| {
        b.iter(|| black_box(poll_outlined(bare_await(black_box(7)))).is_ok())
    });
    g.bench_function("breaker", |b| {
        b.iter(|| black_box(poll_outlined(breaker_no_timeout(black_box(7)))).is_ok())
    });
    g.bench_function("failsafe", |b| {
        b.iter(|| black_box(poll_outlined(fs.call(bare(black_box(7))))).is_ok())
    });
    g.bench_function("recloser", |b| {
        b.iter(|| black_box(poll_outlined(rc.call(bare(black_box(7))))).is_ok())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = closed, open, threads, timeout, not_inlined
}
fn main() {
    future_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
