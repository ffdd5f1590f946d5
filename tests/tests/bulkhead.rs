//! Bulkheads (`max_concurrent`, `max_wait`) on paused tokio time: at most N calls in flight,
//! the next rejected at once (or served by the fallback) and counted as a rejection, or queued
//! up to `max_wait`; every way a call ends gives its place back.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use breaker_runtime::{Breaker, BreakerError, Fault, State, breaker, circuit_breaker};
use breaker_tests::TestError;
use tokio::time::{Instant, sleep};

fn handle(name: &str) -> breaker_runtime::Handle {
    breaker(name).unwrap_or_else(|| panic!("no breaker named {name}"))
}

static RAN: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "bulk.plain", max_concurrent = 2)]
async fn plain(hold: Duration) -> Result<u32, TestError> {
    RAN.fetch_add(1, SeqCst);
    sleep(hold).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_rejects_at_once_without_calling() {
    let h = handle("bulk.plain");
    let a = tokio::spawn(plain(Duration::from_secs(10)));
    let b = tokio::spawn(plain(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    assert_eq!(h.bulkhead_load(), Some((2, 2)));
    let ran = RAN.load(SeqCst);
    let began = Instant::now();
    let third = plain(Duration::ZERO).await;
    assert_eq!(
        third,
        Err(TestError::Breaker(BreakerError::Full {
            breaker: "bulk.plain",
            max_concurrent: 2
        }))
    );
    assert_eq!(began.elapsed(), Duration::ZERO, "a full bulkhead waited");
    assert_eq!(RAN.load(SeqCst), ran, "the function ran without a place");
    let c = h.counters();
    assert_eq!(
        (c.rejections, c.failures),
        (1, 0),
        "a rejection, not a failure"
    );
    assert_eq!(h.state(), State::Closed);
    assert_eq!(a.await.unwrap(), Ok(1));
    assert_eq!(b.await.unwrap(), Ok(1));
    assert_eq!(h.bulkhead_load(), Some((0, 2)));
    assert_eq!(plain(Duration::ZERO).await, Ok(1));
}

async fn served(_hold: Duration) -> Result<u32, TestError> {
    Ok(99)
}

#[circuit_breaker(name = "bulk.fallback", max_concurrent = 1, fallback = served)]
async fn with_fallback(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_sends_the_call_to_the_fallback() {
    let h = handle("bulk.fallback");
    let a = tokio::spawn(with_fallback(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    assert_eq!(with_fallback(Duration::ZERO).await, Ok(99));
    let c = h.counters();
    assert_eq!((c.rejections, c.fallbacks, c.failures), (1, 1, 0));
    assert_eq!(a.await.unwrap(), Ok(1));
}

#[circuit_breaker(name = "bulk.wait", max_concurrent = 1, max_wait = "50ms")]
async fn queued(hold: Duration) -> Result<u32, TestError> {
    sleep(hold).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn max_wait_queues_for_a_place_then_gives_up() {
    let h = handle("bulk.wait");
    // The place frees after 30 ms: the queued call gets it then.
    let a = tokio::spawn(queued(Duration::from_millis(30)));
    tokio::task::yield_now().await;
    let began = Instant::now();
    assert_eq!(queued(Duration::ZERO).await, Ok(1));
    assert_eq!(began.elapsed(), Duration::from_millis(30));
    assert_eq!(a.await.unwrap(), Ok(1));
    // Held for 10 s: the queued call gives up after 50 ms.
    let b = tokio::spawn(queued(Duration::from_secs(10)));
    tokio::task::yield_now().await;
    let began = Instant::now();
    assert!(matches!(
        queued(Duration::ZERO).await,
        Err(TestError::Breaker(BreakerError::Full { .. }))
    ));
    assert_eq!(began.elapsed(), Duration::from_millis(50));
    assert_eq!(h.counters().rejections, 1);
    // A queued call dropped while it waits holds nothing.
    let dropped = tokio::time::timeout(Duration::from_millis(10), queued(Duration::ZERO)).await;
    assert!(dropped.is_err());
    assert_eq!(b.await.unwrap(), Ok(1));
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    // It was admitted (the breaker is CLOSED) and waited for a place: dropped, it counts as a
    // cancelled call, as a call dropped during an injected delay does.
    assert_eq!(h.counters().cancelled, 1);
}

#[circuit_breaker(
    name = "bulk.ends",
    max_concurrent = 1,
    timeout = "100ms",
    threshold = 100
)]
async fn ends(how: u8) -> Result<u32, TestError> {
    match how {
        0 => Ok(1),
        1 => Err(TestError::Down("ends")),
        2 => {
            sleep(Duration::from_secs(10)).await;
            Ok(1)
        }
        _ => panic!("the call panicked"),
    }
}

/// Success, failure, timeout, cancellation, panic, an injected error and an injected delay:
/// each gives the place back (the next call is admitted).
#[tokio::test(start_paused = true)]
async fn every_way_a_call_ends_gives_its_place_back() {
    let h = handle("bulk.ends");
    let free = || async { assert_eq!(handle("bulk.ends").bulkhead_load(), Some((0, 1))) };
    assert_eq!(ends(0).await, Ok(1));
    free().await;
    assert_eq!(ends(1).await, Err(TestError::Down("ends")));
    free().await;
    assert!(matches!(
        ends(2).await,
        Err(TestError::Breaker(BreakerError::Timeout { .. }))
    ));
    free().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(10), ends(2))
            .await
            .is_err()
    );
    free().await;
    let panicked = tokio::spawn(ends(3)).await;
    assert!(panicked.is_err());
    free().await;
    h.inject(Some(Fault::Error { rate: 1.0 }), None)
        .await
        .unwrap();
    assert!(matches!(
        ends(0).await,
        Err(TestError::Breaker(BreakerError::Injected { .. }))
    ));
    free().await;
    h.inject(Some(Fault::Delay(Duration::from_millis(20))), None)
        .await
        .unwrap();
    assert_eq!(ends(0).await, Ok(1));
    free().await;
    h.inject(None, None).await.unwrap();
    let c = h.counters();
    assert_eq!(
        (c.successes, c.failures, c.cancelled, c.panics),
        (2, 4, 1, 1)
    );
}

#[circuit_breaker(name = "bulk.open", max_concurrent = 1, threshold = 1, open_for = "1s")]
async fn opens(fail: bool) -> Result<u32, TestError> {
    if fail {
        Err(TestError::Down("open"))
    } else {
        Ok(1)
    }
}

#[tokio::test(start_paused = true)]
async fn rejections_of_an_open_breaker_hold_no_place() {
    let h = handle("bulk.open");
    assert!(opens(true).await.is_err());
    assert_eq!(h.state(), State::Open);
    for _ in 0..10 {
        assert!(opens(false).await.unwrap_err().is_open());
    }
    assert_eq!(h.bulkhead_load(), Some((0, 1)));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(opens(false).await, Ok(1), "the probe got the place");
    assert_eq!(h.state(), State::Closed);
}

static IN: AtomicU32 = AtomicU32::new(0);
static MOST: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "bulk.threads", max_concurrent = 4, max_wait = "1s")]
async fn crowded() -> Result<u32, TestError> {
    let now = IN.fetch_add(1, SeqCst) + 1;
    MOST.fetch_max(now, SeqCst);
    tokio::task::yield_now().await;
    std::thread::sleep(Duration::from_micros(50));
    IN.fetch_sub(1, SeqCst);
    Ok(1)
}

/// 400 calls from 4 threads at once: never more than 4 inside, every place back at the end.
#[test]
fn never_more_than_max_concurrent_inside_on_many_threads() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let calls: Vec<_> = (0..400).map(|_| tokio::spawn(crowded())).collect();
        let mut full = 0;
        for c in calls {
            match c.await.unwrap() {
                Ok(1) => {}
                Err(TestError::Breaker(BreakerError::Full { .. })) => full += 1,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(full, 0, "a call waited more than a second for a place");
    });
    let most = MOST.load(SeqCst);
    assert!((1..=4).contains(&most), "{most} calls inside at once");
    assert_eq!(handle("bulk.threads").bulkhead_load(), Some((0, 4)));
}

#[tokio::test(start_paused = true)]
async fn built_breakers_have_bulkheads_too() {
    let b = Breaker::builder("bulk.built")
        .max_concurrent(1)
        .max_wait(Duration::from_millis(5))
        .build()
        .expect("valid");
    let holder = tokio::spawn(async move {
        b.call(|| async {
            sleep(Duration::from_secs(1)).await;
            Ok::<u32, TestError>(1)
        })
        .await
    });
    tokio::task::yield_now().await;
    let r = b.call(|| async { Ok::<u32, TestError>(2) }).await;
    assert!(matches!(
        r,
        Err(TestError::Breaker(BreakerError::Full {
            max_concurrent: 1,
            ..
        }))
    ));
    assert_eq!(holder.await.unwrap(), Ok(1));
    let e = Breaker::builder("bulk.built.bad")
        .max_wait(Duration::from_millis(5))
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "max_wait");
    let e = Breaker::builder("bulk.built.zero")
        .max_concurrent(0)
        .build()
        .unwrap_err();
    assert_eq!(e.setting(), "max_concurrent");
}
