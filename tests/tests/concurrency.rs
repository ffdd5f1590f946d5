//! Races on a multi-threaded runtime: the atomic fast path against the locked slow path. Time is
//! a manual clock installed for this test binary (paused tokio time needs a current-thread
//! runtime, which never runs two calls at once).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use breaker_runtime::{Clock, Runtime, State, breaker, circuit_breaker};
use breaker_tests::TestError;
use tokio::sync::{Barrier, Semaphore};
use tokio::time::Instant;

#[derive(Debug)]
struct ManualClock {
    base: Instant,
    offset: AtomicU64,
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.offset.load(SeqCst))
    }
}

fn clock() -> &'static ManualClock {
    static CLOCK: OnceLock<Arc<ManualClock>> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let c = Arc::new(ManualClock {
            base: Instant::now(),
            offset: AtomicU64::new(0),
        });
        Runtime::builder()
            .clock(c.clone())
            .install()
            .expect("first install in this binary");
        c
    })
}

fn advance(d: Duration) {
    clock()
        .offset
        .fetch_add(u64::try_from(d.as_nanos()).unwrap(), SeqCst);
}

static FAIL: AtomicBool = AtomicBool::new(false);
static RUNNING: AtomicU32 = AtomicU32::new(0);
static GATE: Semaphore = Semaphore::const_new(0);

#[circuit_breaker(
    name = "mt.probes",
    threshold = 1,
    open_for = "10s",
    half_open_probes = 3
)]
async fn probe() -> Result<(), TestError> {
    if FAIL.load(SeqCst) {
        return Err(TestError::Down("mt"));
    }
    RUNNING.fetch_add(1, SeqCst);
    GATE.acquire()
        .await
        .map_err(|_| TestError::NotFound)?
        .forget();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_probe_limit_holds_across_threads() {
    clock();
    const CALLERS: usize = 64;
    for round in 0..20 {
        FAIL.store(true, SeqCst);
        probe().await.unwrap_err();
        let h = breaker("mt.probes").unwrap();
        assert_eq!(h.state(), State::Open, "round {round}");
        FAIL.store(false, SeqCst);
        advance(Duration::from_secs(10));
        RUNNING.store(0, SeqCst);
        let start = Arc::new(Barrier::new(CALLERS));
        let rejected = Arc::new(AtomicU32::new(0));
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (start, rejected) = (start.clone(), rejected.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    let r = probe().await;
                    if r.as_ref().is_err_and(TestError::is_open) {
                        rejected.fetch_add(1, SeqCst);
                    }
                    r
                })
            })
            .collect();
        // Every caller has either been rejected or is running as a probe.
        tokio::time::timeout(Duration::from_secs(20), async {
            while rejected.load(SeqCst) + RUNNING.load(SeqCst) < CALLERS as u32 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("callers did not settle");
        assert_eq!(
            RUNNING.load(SeqCst),
            3,
            "round {round}: probes admitted at once"
        );
        GATE.add_permits(3);
        let mut ok = 0;
        for c in calls {
            if c.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 3, "round {round}");
        assert_eq!(h.state(), State::Closed, "round {round}");
    }
}

#[circuit_breaker(name = "mt.count", threshold = 1_000)]
async fn counted(fail: bool) -> Result<(), TestError> {
    if fail {
        Err(TestError::Down("mt"))
    } else {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_are_exact_under_concurrency() {
    clock();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            tokio::spawn(async move {
                for i in 0..5_000u32 {
                    let _ = counted(t == 0 && i % 100 == 0).await;
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let c = breaker("mt.count").unwrap().counters();
    assert_eq!(
        (c.successes, c.failures, c.calls),
        (40_000 - 50, 50, 40_000)
    );
}
