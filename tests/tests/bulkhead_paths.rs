//! Bulkheads on the paths a review of 11bf1ff attacked: every place is given back exactly once,
//! never more than N calls inside, a waiter is woken when a place frees and gives up at
//! `max_wait`; a refused call never takes a place (admission first, then the place), so a
//! forced-open breaker rejects at once and refused calls never crowd out admitted ones; a
//! swapped breaker's own try waits for a place like any call. The four tests under 1. and 2.
//! failed on 11bf1ff.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{Breaker, BreakerError, Fault, State, breaker, circuit_breaker};
use breaker_tests::TestError;
use tokio::time::{Instant, sleep};

fn handle(name: &str) -> breaker_runtime::Handle {
    breaker(name).unwrap_or_else(|| panic!("no breaker named {name}"))
}

// ---------------------------------------------------------------------------------------------
// 1. Swapped breaker + a call that has to queue (on 11bf1ff, after the wait it was admitted as
//    not the primary, got SWAPPED, and that was handed out as a final rejection).

/// Handle::call (no fallback): a swapped breaker calls the function at once. A call that
/// queued gets `BreakerError::Open { retry_after: None }` from a CLOSED breaker instead.
#[tokio::test(start_paused = true)]
async fn swapped_queued_handle_call_runs_the_function() {
    let b = Breaker::builder("rv.swap.handle")
        .max_concurrent(1)
        .max_wait(Duration::from_millis(50))
        .fallback("fb")
        .build()
        .unwrap();
    b.swap(true).await.unwrap();
    let holder = tokio::spawn(async move {
        b.call(|| async {
            sleep(Duration::from_millis(10)).await;
            Ok::<u32, TestError>(1)
        })
        .await
    });
    tokio::task::yield_now().await;
    assert_eq!(b.bulkhead_load(), Some((1, 1)));
    let r = b.call(|| async { Ok::<u32, TestError>(2) }).await;
    assert_eq!(holder.await.unwrap(), Ok(1));
    assert_eq!(b.state(), State::Closed);
    assert_eq!(r, Ok(2), "queued call on a swapped, CLOSED breaker");
}

/// Handle::call_with_fallback: swapped means fallback first, then the function if the fallback
/// failed. A call that queued gets the fallback's failure; the function is never tried.
#[tokio::test(start_paused = true)]
async fn swapped_queued_call_with_fallback_tries_the_function_when_the_fallback_fails() {
    let b = Breaker::builder("rv.swap.cwf")
        .max_concurrent(1)
        .max_wait(Duration::from_millis(50))
        .fallback("fb")
        .build()
        .unwrap();
    b.swap(true).await.unwrap();
    let holder = tokio::spawn(async move {
        b.call_with_fallback(
            || async {
                sleep(Duration::from_millis(10)).await;
                Ok::<u32, TestError>(1)
            },
            || async { Err(TestError::Down("fb")) },
        )
        .await
    });
    tokio::task::yield_now().await;
    assert_eq!(b.bulkhead_load(), Some((1, 1)));
    let r = b
        .call_with_fallback(
            || async { Ok::<u32, TestError>(2) },
            || async { Err(TestError::Down("fb")) },
        )
        .await;
    assert_eq!(holder.await.unwrap(), Ok(1));
    assert_eq!(
        r,
        Ok(2),
        "the function was never tried after the fallback failed"
    );
}

async fn fb_down(_hold: Duration) -> Result<u32, TestError> {
    Err(TestError::Down("fb"))
}

#[circuit_breaker(name = "rv.swap.decl", max_concurrent = 1, max_wait = "50ms", fallback = fb_down)]
async fn swapped_decl(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

/// The same through `#[circuit_breaker]` with a fallback.
#[tokio::test(start_paused = true)]
async fn swapped_queued_declared_call_tries_the_function_when_the_fallback_fails() {
    let h = handle("rv.swap.decl");
    h.swap(true).await.unwrap();
    let holder = tokio::spawn(swapped_decl(Duration::from_millis(10)));
    tokio::task::yield_now().await;
    assert_eq!(h.bulkhead_load(), Some((1, 1)));
    assert_eq!(swapped_decl(Duration::ZERO).await, Ok(1));
    assert_eq!(holder.await.unwrap(), Ok(1));
}

// ---------------------------------------------------------------------------------------------
// 2. On 11bf1ff a place was taken before the state was looked at: a forced-open breaker whose
//    bulkhead was full queued its callers for max_wait, then called it `Full`.

#[circuit_breaker(name = "rv.forced", max_concurrent = 1, max_wait = "50ms")]
async fn forced(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_at_once_even_with_a_full_bulkhead() {
    let h = handle("rv.forced");
    let holder = tokio::spawn(forced(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    h.force_open().await.unwrap();
    let began = Instant::now();
    let r = forced(Duration::ZERO).await;
    let waited = began.elapsed();
    holder.abort();
    assert!(
        r.as_ref().is_err_and(TestError::is_open) && waited == Duration::ZERO,
        "forced open: {r:?} after {waited:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Transient ("phantom") places on 11bf1ff: a call about to be refused (swapped, OPEN,
//    injected error/open, HALF_OPEN with its slots taken) took a place first and gave it back
//    after; another call that looked in between was refused `Full` though nothing ran.

#[test]
fn refused_admissions_do_not_occupy_places() {
    let current = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let b = Breaker::builder("rv.phantom")
        .max_concurrent(1)
        .fallback("fb")
        .build()
        .unwrap();
    current().block_on(b.swap(true)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    // Another OS thread: served by the fallback every time; it never runs the function, so it
    // should never hold a place.
    let s = stop.clone();
    let fb_only = std::thread::spawn(move || {
        current().block_on(async move {
            while !s.load(SeqCst) {
                let _ = b
                    .call_with_fallback(
                        || async { Ok::<u32, TestError>(0) },
                        || async { Ok::<u32, TestError>(9) },
                    )
                    .await;
            }
        });
    });
    // This thread: the only caller that runs the function, one call at a time.
    let (full, calls) = current().block_on(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let (mut full, mut calls) = (0u32, 0u32);
        while full == 0 && std::time::Instant::now() < deadline {
            let r = b.call(|| async { Ok::<u32, TestError>(1) }).await;
            calls += 1;
            if matches!(r, Err(TestError::Breaker(BreakerError::Full { .. }))) {
                full += 1;
            }
        }
        (full, calls)
    });
    stop.store(true, SeqCst);
    fb_only.join().unwrap();
    assert_eq!(
        full, 0,
        "refused Full after {calls} calls while no other call ran the function"
    );
}

// ---------------------------------------------------------------------------------------------
// Paths checked and found sound (these pass).

#[circuit_breaker(name = "rv.handoff", max_concurrent = 1, max_wait = "1s")]
async fn handoff(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

/// A waiter woken by a release and dropped before it runs passes the wakeup on (tokio's
/// `Notified` drop forwards a `notify_one`).
#[tokio::test(start_paused = true)]
async fn a_woken_waiter_dropped_before_it_runs_passes_the_wakeup_on() {
    let h = handle("rv.handoff");
    let mut holder = Box::pin(handoff(Duration::from_millis(10)));
    assert!(futures::poll!(&mut holder).is_pending());
    let first = tokio::spawn(handoff(Duration::ZERO));
    let second = tokio::spawn(handoff(Duration::ZERO));
    tokio::task::yield_now().await;
    tokio::task::yield_now().await;
    let began = Instant::now();
    assert_eq!(holder.await, Ok(1));
    first.abort();
    assert_eq!(second.await.unwrap(), Ok(1));
    assert_eq!(
        began.elapsed(),
        Duration::from_millis(10),
        "the wakeup was lost"
    );
    assert!(first.await.unwrap_err().is_cancelled());
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
}

#[circuit_breaker(name = "rv.delay", max_concurrent = 1, max_wait = "1s")]
async fn delayed(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

/// An injected delay without `timeout`: the place is held through the delay, given back when
/// the wait is dropped mid-delay, and a queued call that gets a place sleeps its own delay.
#[tokio::test(start_paused = true)]
async fn injected_delay_without_timeout_holds_and_returns_the_place() {
    let h = handle("rv.delay");
    h.inject(Some(Fault::Delay(Duration::from_millis(100))), None)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(10), delayed(Duration::ZERO))
            .await
            .is_err()
    );
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    let a = tokio::spawn(delayed(Duration::ZERO));
    tokio::task::yield_now().await;
    assert_eq!(
        h.bulkhead_load(),
        Some((1, 1)),
        "the delayed call holds its place"
    );
    let began = Instant::now();
    assert_eq!(delayed(Duration::ZERO).await, Ok(1));
    assert_eq!(began.elapsed(), Duration::from_millis(200));
    assert_eq!(a.await.unwrap(), Ok(1));
    // Queued, placed, dropped during its own delay.
    let a = tokio::spawn(delayed(Duration::ZERO));
    tokio::task::yield_now().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(150), delayed(Duration::ZERO))
            .await
            .is_err()
    );
    assert_eq!(a.await.unwrap(), Ok(1));
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    h.inject(None, None).await.unwrap();
    assert_eq!(h.counters().cancelled, 2);
}

/// Every injected fault through Handle::call / call_with_fallback, with and without a timeout,
/// and with a swapped breaker: the place always comes back.
#[tokio::test(start_paused = true)]
async fn faults_through_handle_calls_give_places_back() {
    for (name, timeout) in [("rv.faults.t", Some(100)), ("rv.faults.n", None)] {
        let mut builder = Breaker::builder(name)
            .max_concurrent(1)
            .max_wait(Duration::from_millis(5))
            .threshold(1000)
            .fallback("fb");
        if let Some(ms) = timeout {
            builder = builder.timeout(Duration::from_millis(ms));
        }
        let b = builder.build().unwrap();
        for swapped in [false, true] {
            b.swap(swapped).await.unwrap();
            for fault in [
                Fault::Error { rate: 1.0 },
                Fault::Timeout,
                Fault::Open,
                Fault::Delay(Duration::from_millis(20)),
            ] {
                b.inject(Some(fault), None).await.unwrap();
                let _ = b.call(|| async { Ok::<u32, TestError>(1) }).await;
                assert_eq!(
                    b.bulkhead_load(),
                    Some((0, 1)),
                    "{name} {swapped} {fault:?} call"
                );
                let _ = b
                    .call_with_fallback(
                        || async { Ok::<u32, TestError>(1) },
                        || async { Err(TestError::Down("fb")) },
                    )
                    .await;
                assert_eq!(
                    b.bulkhead_load(),
                    Some((0, 1)),
                    "{name} {swapped} {fault:?} cwf"
                );
                let dropped = tokio::time::timeout(
                    Duration::from_millis(1),
                    b.call(|| async { Ok::<u32, TestError>(1) }),
                )
                .await;
                let _ = dropped;
                assert_eq!(
                    b.bulkhead_load(),
                    Some((0, 1)),
                    "{name} {swapped} {fault:?} drop"
                );
            }
            b.inject(None, None).await.unwrap();
        }
    }
}

#[circuit_breaker(
    name = "rv.probes",
    max_concurrent = 3,
    threshold = 1,
    open_for = "1s",
    half_open_probes = 2
)]
async fn probes(fail: bool, hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    if fail {
        Err(TestError::Down("p"))
    } else {
        Ok(1)
    }
}

/// HALF_OPEN with 2 probe slots: a third call is refused (slot taken) and keeps no place.
#[tokio::test(start_paused = true)]
async fn a_probe_refused_for_its_slot_keeps_no_place() {
    let h = handle("rv.probes");
    assert!(probes(true, Duration::ZERO).await.is_err());
    tokio::time::advance(Duration::from_secs(1)).await;
    let a = tokio::spawn(probes(false, Duration::from_millis(10)));
    let b = tokio::spawn(probes(false, Duration::from_millis(10)));
    tokio::task::yield_now().await;
    assert_eq!(h.bulkhead_load(), Some((2, 3)));
    for _ in 0..5 {
        assert!(probes(false, Duration::ZERO).await.unwrap_err().is_open());
    }
    assert_eq!(h.bulkhead_load(), Some((2, 3)));
    assert_eq!(a.await.unwrap(), Ok(1));
    assert_eq!(b.await.unwrap(), Ok(1));
    assert_eq!(h.state(), State::Closed);
    assert_eq!(h.bulkhead_load(), Some((0, 3)));
}

#[circuit_breaker(
    name = "rv.open_after",
    max_concurrent = 1,
    max_wait = "1s",
    threshold = 1
)]
async fn open_after(fail: bool, hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    if fail {
        Err(TestError::Down("o"))
    } else {
        Ok(1)
    }
}

/// A call admitted while CLOSED that waits for a place runs once it has one, even if the
/// breaker opened meanwhile (admission is decided once, when the call arrives, as for the calls
/// already in flight); its place goes back after; the next call is rejected at once.
#[tokio::test(start_paused = true)]
async fn a_queued_call_admitted_before_the_breaker_opened_runs_and_gives_its_place_back() {
    let h = handle("rv.open_after");
    let holder = tokio::spawn(open_after(true, Duration::from_millis(10)));
    tokio::task::yield_now().await;
    let began = Instant::now();
    assert_eq!(open_after(false, Duration::ZERO).await, Ok(1));
    assert_eq!(began.elapsed(), Duration::from_millis(10));
    assert!(holder.await.unwrap().is_err());
    assert_eq!(h.state(), State::Open);
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    let began = Instant::now();
    assert!(
        open_after(false, Duration::ZERO)
            .await
            .unwrap_err()
            .is_open()
    );
    assert_eq!(began.elapsed(), Duration::ZERO);
}

#[circuit_breaker(name = "rv.forced_closed", max_concurrent = 1, threshold = 1)]
async fn forced_closed(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("fc"))
    } else {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn forced_closed_and_forced_open_give_places_back() {
    let h = handle("rv.forced_closed");
    h.force_closed().await.unwrap();
    for _ in 0..3 {
        assert!(forced_closed(true).await.is_err());
    }
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    h.force_open().await.unwrap();
    for _ in 0..3 {
        assert!(forced_closed(false).await.unwrap_err().is_open());
    }
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    h.reset().await.unwrap();
    assert_eq!(forced_closed(false).await, Ok(1));
}
