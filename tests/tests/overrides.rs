//! `BREAKER_OVERRIDES` changes settings without a rebuild. Runtime settings are fixed once per
//! process, so the test re-runs this binary as a child process with the variable set.

use std::time::Duration;

use breaker_runtime::{EventKind, State, breaker, circuit_breaker};
use breaker_tests::{Recorder, TestError};

const CHILD: &str = "BREAKER_TEST_OVERRIDES_CHILD";

#[circuit_breaker(name = "ov", threshold = 5, open_for = "30s")]
async fn overridden() -> Result<(), TestError> {
    Err(TestError::Down("ov"))
}

#[test]
fn env_overrides_apply_and_bad_entries_are_reported() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    breaker_tests::run_child(
        "env_overrides_apply_and_bad_entries_are_reported",
        CHILD,
        &[(
            "BREAKER_OVERRIDES",
            "ov.threshold=2, ov.open_for=1m, ov.treshold=3, bogus, ov.half_open_probes=0, ov.timeout=1s",
        )],
    );
}

fn child() {
    let rec = Recorder::install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        overridden().await.unwrap_err();
        overridden().await.unwrap_err();
        let h = breaker("ov").unwrap();
        assert_eq!(h.state(), State::Open, "threshold 2 from the environment");
        assert_eq!(h.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(
            h.config().half_open_probes,
            1,
            "the invalid entry was skipped"
        );
    });
    // Malformed entries are reported when the settings are read (under no breaker), the rest
    // when the breaker they name is created.
    let mut events = rec.events("");
    events.extend(rec.events("ov"));
    let rejected: Vec<String> = events
        .into_iter()
        .filter_map(|k| match k {
            EventKind::ConfigRejected { message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 4, "{rejected:?}");
    assert!(
        rejected[0].contains("unknown setting `treshold`"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].contains("`bogus` is not of the form"),
        "{rejected:?}"
    );
    assert!(rejected[2].contains("half_open_probes"), "{rejected:?}");
    assert!(
        rejected[3].contains("declared with a `timeout`"),
        "{rejected:?}"
    );
    println!("child checks passed");
}
