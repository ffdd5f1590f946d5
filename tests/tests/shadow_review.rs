//! Review of shadow mode (3d2b440, 0841914): the problems a second engineer found, each test seen
//! failing before its mend (e43a872). Each test has
//! breakers of its own (breakers are process-wide).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant as StdInstant};

use breaker_runtime::{
    AlertKind, Breaker, BreakerBuilder, BreakerError, EventKind, Fault, Handle, Mode, State,
};
use breaker_tests::{Recorder, TestError};
use tokio::time::sleep;

fn built(name: &str, f: impl FnOnce(BreakerBuilder) -> BreakerBuilder) -> Handle {
    f(Breaker::builder(name)).build().expect("valid settings")
}

/// An injected `delay` on a breaker with a full bulkhead and no `max_wait`: enforcing, the call
/// is refused (`Full`); in shadow it should run *unjudged* and count a shadow rejection. It runs
/// judged instead (a success is counted) and nothing records that the bulkhead was full:
/// `admit_limited`'s delayed arm force-takes a place in shadow whatever `max_wait` says.
#[tokio::test(start_paused = true)]
async fn a_delayed_call_over_a_full_bulkhead_without_max_wait_is_a_shadow_rejection() {
    let enforcing = built("review.delay_full.enforce", |b| b.max_concurrent(1));
    let shadow = built("review.delay_full.shadow", |b| {
        b.max_concurrent(1).mode(Mode::Shadow)
    });
    for h in [enforcing, shadow] {
        h.inject(Some(Fault::Delay(Duration::from_millis(100))), None)
            .await
            .unwrap();
        let first = tokio::spawn(async move {
            h.call(|| async {
                sleep(Duration::from_secs(1)).await;
                Ok::<u32, TestError>(1)
            })
            .await
        });
        tokio::task::yield_now().await;
        assert_eq!(h.bulkhead_load(), Some((1, 1)));
        let second = h.call(|| async { Ok::<u32, TestError>(2) }).await;
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(h.bulkhead_load(), Some((0, 1)));
        let c = h.counters();
        if h.is_shadow() {
            assert_eq!(second, Ok(2), "shadow: runs");
            assert_eq!(
                (c.successes, c.shadow_rejections),
                (1, 1),
                "shadow: counted as a call a real breaker would have refused (Full), unjudged"
            );
        } else {
            assert!(
                matches!(second, Err(TestError::Breaker(BreakerError::Full { .. }))),
                "{second:?}"
            );
            assert_eq!((c.successes, c.rejections), (1, 1));
        }
    }
}

/// Design review item 5: switching shadow off while the breaker is OPEN starts rejecting calls
/// with no page (the only OPEN alert was marked shadow). An unmarked OPEN alert is expected when
/// the switch makes the OPEN real.
#[tokio::test(start_paused = true)]
async fn switching_shadow_off_during_an_open_raises_an_unmarked_open_alert() {
    let rec = Recorder::install();
    let h = built("review.switch_off_open", |b| {
        b.threshold(1)
            .open_for(Duration::from_secs(30))
            .mode(Mode::Shadow)
    });
    let _ = h
        .call(|| async { Err::<u32, _>(TestError::Down("provider")) })
        .await;
    assert_eq!(h.state(), State::Open);
    h.set_shadow(Some(false)).await.unwrap();
    let refused = h.call(|| async { Ok::<u32, TestError>(1) }).await;
    assert!(refused.unwrap_err().is_open(), "enforcing now: rejected");
    let alerts: Vec<_> = rec
        .events("review.switch_off_open")
        .into_iter()
        .filter_map(|e| match e {
            EventKind::Alert(a) => Some((a.kind, a.shadow)),
            _ => None,
        })
        .collect();
    assert!(
        alerts.contains(&(AlertKind::Opened, false)),
        "calls are rejected for real now, but the only alert says shadow: {alerts:?}"
    );
}

/// `rejected()` decides "shadow rejection or real one" on one load of the word, `admit_slow`
/// (with the `w` loaded in `admit`) and `run_anyway` decide "run or refuse" on others: a switch
/// between them refuses a call counted as a shadow rejection (no `rejections`, no `Rejected`
/// event), or the reverse. Every call of an OPEN breaker must be either run and counted in
/// `shadow_rejections`, or refused and counted in `rejections`.
#[test]
fn a_mode_switch_never_splits_a_rejections_count_from_its_outcome() {
    static RAN: AtomicU64 = AtomicU64::new(0);
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(3)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let h = built("review.switch_race", |b| {
            b.threshold(1).open_for(Duration::from_secs(3600))
        });
        let _ = h
            .call(|| async { Err::<u32, _>(TestError::Down("provider")) })
            .await;
        assert_eq!(h.state(), State::Open);
        let stop = Arc::new(AtomicBool::new(false));
        let callers: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(SeqCst) {
                        let r = h
                            .call(|| async {
                                RAN.fetch_add(1, SeqCst);
                                Ok::<u32, TestError>(1)
                            })
                            .await;
                        if r.is_err() {
                            REFUSED.fetch_add(1, SeqCst);
                        }
                    }
                })
            })
            .collect();
        let toggler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let began = StdInstant::now();
                let mut on = true;
                while began.elapsed() < Duration::from_secs(3) {
                    futures::executor::block_on(h.set_shadow(Some(on))).unwrap();
                    on = !on;
                }
                stop.store(true, SeqCst);
            })
        };
        toggler.join().unwrap();
        for c in callers {
            c.await.unwrap();
        }
        let c = h.counters();
        assert_eq!(
            (RAN.load(SeqCst), REFUSED.load(SeqCst)),
            (c.shadow_rejections, c.rejections),
            "(ran, refused) vs (shadow_rejections, rejections): {c:?}"
        );
    });
}
