//! Every Lua script of the Redis protocol against a real `redis-server` (this binary's own, on
//! a free loopback port, stopped by pid when the last test using it ends): one test per script
//! for its main effect and an edge, one that `SCRIPT LOAD`s them all, and the audit log and the
//! events message as a real script writes them. A missing `redis-server` fails the tests with
//! how to install it.

#![cfg(feature = "redis")]

#[path = "../benches/common/redis_server.rs"]
mod redis_server;

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use breaker_runtime::redis::{
    AUDIT_KEEP, Acquire, AuditEntry, BreakerKeys, Claim, ClaimMode, ClaimedAlert, Conn,
    ControlChange, Delivered, FleetReply, Force, Keys, LeaseOutcome, Message, ProbeReply, Pushed,
    RaiseHw, ReadControls, Record, Release, SCRIPTS, ScriptCall, Target, WriteControl, connect,
    is_connection_error,
};
use breaker_runtime::{AlertKind, Forced, State};
use futures::StreamExt as _;
use redis_server::{Server, start_redis};

/// One server for the tests running at a time; stopped when the last of them drops it.
fn server() -> Arc<Server> {
    static SHARED: Mutex<Weak<Server>> = Mutex::new(Weak::new());
    let mut shared = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = shared.upgrade() {
        return s;
    }
    let s = Arc::new(start_redis(&[]));
    *shared = Arc::downgrade(&s);
    s
}

/// A fleet of the test's own (its own key prefix) on the shared server.
struct Fleet {
    _server: Arc<Server>,
    url: String,
    keys: Keys,
    conn: Conn,
}

impl Fleet {
    async fn new(test: &str) -> Fleet {
        let server = server();
        let url = format!("redis://127.0.0.1:{}/", server.port);
        let conn = connect(&url)
            .await
            .expect("connect to the test's redis-server");
        Fleet {
            _server: server,
            url,
            keys: Keys::new(&format!("scripts-{test}")),
            conn,
        }
    }

    async fn hget(&mut self, key: &str, field: &str) -> Option<String> {
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    async fn hset(&mut self, key: &str, fields: &[(&str, &str)]) {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        let _: i64 = cmd.query_async(&mut self.conn).await.unwrap();
    }

    /// `RECORD` of `failures` failures by `instance`, with a threshold of 3 in a 30 s window.
    async fn record(&mut self, keys: &BreakerKeys, instance: &str, failures: u64) -> FleetReply {
        self.record_as(keys, instance, failures, true).await
    }

    /// As [`Fleet::record`], by an instance that enforces (`true`) or is in shadow mode.
    async fn record_as(
        &mut self,
        keys: &BreakerKeys,
        instance: &str,
        failures: u64,
        enforcing: bool,
    ) -> FleetReply {
        Record {
            keys,
            successes: 0,
            failures,
            bucket_ms: 3750,
            threshold: 3,
            rate_percent: 0,
            min_calls: 1,
            open_ms: 5000,
            max_open_ms: 60_000,
            channel: self.keys.events(),
            name: "daum",
            view_remaining_ms: 0,
            view_opens: 0,
            view_state: State::Closed,
            forced: None,
            instance,
            quorum: 1,
            forget_ms: 360_000,
            seen_generation: 0,
            enforcing,
        }
        .invoke(&mut self.conn)
        .await
        .unwrap()
    }

    /// A breaker OPEN whose time is up: the next `ACQUIRE` starts HALF_OPEN.
    async fn open_and_due(&mut self, keys: &BreakerKeys) {
        self.hset(
            &keys.state,
            &[
                ("state", "open"),
                ("gen", "1"),
                ("open_until", "1"),
                ("opens", "1"),
            ],
        )
        .await;
    }

    async fn acquire(&mut self, keys: &BreakerKeys, token: &str, limit: u32) -> ProbeReply {
        Acquire {
            keys,
            limit,
            lease_ms: 10_000,
            token,
            channel: self.keys.events(),
            name: "daum",
            open_ms: 5000,
            max_open_ms: 60_000,
            seen_generation: 0,
        }
        .invoke(&mut self.conn)
        .await
        .unwrap()
    }

    async fn release(
        &mut self,
        keys: &BreakerKeys,
        token: &str,
        outcome: LeaseOutcome,
        limit: u32,
    ) -> ProbeReply {
        Release {
            keys,
            token,
            outcome,
            limit,
            channel: self.keys.events(),
            name: "daum",
            open_ms: 5000,
            max_open_ms: 60_000,
            seen_generation: 0,
        }
        .invoke(&mut self.conn)
        .await
        .unwrap()
    }

    async fn claim(
        &mut self,
        keys: &BreakerKeys,
        generation: u64,
        instance: &str,
        mode: ClaimMode,
    ) -> Vec<ClaimedAlert> {
        Claim {
            keys,
            generation,
            instance,
            lease_ms: 15_000,
            mode,
        }
        .invoke(&mut self.conn)
        .await
        .unwrap()
    }

    async fn write(
        &mut self,
        keys: &BreakerKeys,
        change: ControlChange<'_>,
        for_ms: u64,
    ) -> breaker_runtime::redis::Controls {
        WriteControl {
            keys,
            change,
            for_ms,
            channel: self.keys.controls(),
            name: "daum",
        }
        .invoke(&mut self.conn)
        .await
        .unwrap()
    }
}

fn state(reply: &FleetReply) -> State {
    reply.fleet.expect("a state this version knows").state
}

#[tokio::test]
async fn every_script_loads_under_the_sha_its_call_uses() {
    let mut f = Fleet::new("load").await;
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut f.conn)
        .await
        .unwrap();
    for (name, source) in SCRIPTS {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(source)
            .query_async(&mut f.conn)
            .await
            .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert_eq!(sha, redis::Script::new(source).get_hash(), "{name}");
    }
    // The typed calls run those very sources.
    let keys = f.keys.breaker("daum");
    let calls: [(&str, &dyn Fn() -> String); 9] = [
        ("RECORD", &|| sha_of(&record_call(&keys))),
        ("FORCE", &|| {
            sha_of(&Force {
                keys: &keys,
                forced: None,
                channel: "",
                name: "",
                seen_generation: 0,
            })
        }),
        ("ACQUIRE", &|| {
            sha_of(&Acquire {
                keys: &keys,
                limit: 1,
                lease_ms: 1,
                token: "",
                channel: "",
                name: "",
                open_ms: 1,
                max_open_ms: 1,
                seen_generation: 0,
            })
        }),
        ("RELEASE", &|| {
            sha_of(&Release {
                keys: &keys,
                token: "",
                outcome: LeaseOutcome::Abandoned,
                limit: 1,
                channel: "",
                name: "",
                open_ms: 1,
                max_open_ms: 1,
                seen_generation: 0,
            })
        }),
        ("CLAIM", &|| {
            sha_of(&Claim {
                keys: &keys,
                generation: 0,
                instance: "",
                lease_ms: 1,
                mode: ClaimMode::Claim,
            })
        }),
        ("DELIVERED", &|| {
            sha_of(&Delivered {
                keys: &keys,
                generation: 0,
            })
        }),
        ("RAISE_HW", &|| {
            sha_of(&RaiseHw {
                marker: "",
                generation: 0,
            })
        }),
        ("READ_CONTROLS", &|| sha_of(&ReadControls { keys: &keys })),
        ("WRITE_CONTROL", &|| {
            sha_of(&WriteControl {
                keys: &keys,
                change: ControlChange::ToggleSwap,
                for_ms: 0,
                channel: "",
                name: "",
            })
        }),
    ];
    for ((name, call), (listed, source)) in calls.iter().zip(SCRIPTS) {
        assert_eq!(*name, listed);
        assert_eq!(call(), redis::Script::new(source).get_hash(), "{name}");
    }
    let loaded: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(calls.iter().map(|(_, c)| c()).collect::<Vec<_>>())
        .query_async(&mut f.conn)
        .await
        .unwrap();
    assert!(loaded.iter().all(|l| *l), "{loaded:?}");
}

fn sha_of(call: &impl ScriptCall) -> String {
    call.script().get_hash().to_owned()
}

fn record_call(keys: &BreakerKeys) -> Record<'_> {
    Record {
        keys,
        successes: 0,
        failures: 0,
        bucket_ms: 1,
        threshold: 1,
        rate_percent: 0,
        min_calls: 1,
        open_ms: 1,
        max_open_ms: 1,
        channel: "",
        name: "",
        view_remaining_ms: 0,
        view_opens: 0,
        view_state: State::Closed,
        forced: None,
        instance: "",
        quorum: 1,
        forget_ms: 1,
        seen_generation: 0,
        enforcing: true,
    }
}

#[tokio::test]
async fn record_trips_at_the_threshold_and_not_before() {
    let mut f = Fleet::new("record").await;
    let keys = f.keys.breaker("daum");
    let target = Target::single(&f.url).unwrap();
    let mut events = target.subscribe(&[f.keys.events()]).await.unwrap();
    let below = f.record(&keys, "a", 2).await;
    assert_eq!(state(&below), State::Closed);
    assert_eq!((below.generation, below.pending_alert), (0, 0));
    // The third failure comes from another instance: the fleet's window counts both.
    let tripped = f.record(&keys, "b", 1).await;
    let fleet = tripped.fleet.unwrap();
    assert_eq!((fleet.state, fleet.opens_in_row), (State::Open, 1));
    assert!(
        fleet.remaining <= Duration::from_millis(5000)
            && fleet.remaining > Duration::from_millis(4000),
        "{fleet:?}"
    );
    assert!(tripped.generation > 0);
    assert_eq!(
        tripped.pending_alert, tripped.generation,
        "the opening's alert waits for a claim"
    );
    // Both instances are listed; the window was cleared by the trip.
    let instances: Vec<String> = redis::cmd("ZRANGE")
        .arg(&keys.instances)
        .arg(0)
        .arg(-1)
        .query_async(&mut f.conn)
        .await
        .unwrap();
    assert_eq!(instances, ["a", "b"]);
    assert_eq!(f.hget(&keys.state, "state").await.as_deref(), Some("open"));
    // The change was published as a `Message` this version reads.
    let pushed = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the OPEN message")
        .unwrap();
    let Pushed::Message { channel, payload } = pushed else {
        panic!("{pushed:?}")
    };
    assert_eq!(channel, f.keys.events());
    let m = Message::decode(&payload).unwrap_or_else(|| panic!("{payload}"));
    assert_eq!(
        (m.name.as_str(), m.state, m.generation),
        ("daum", State::Open, tripped.generation)
    );
    assert_eq!(
        (m.alert, m.reset, m.forced),
        (Some(AlertKind::Opened), false, None)
    );
    // More failures while OPEN change nothing.
    let again = f.record(&keys, "a", 5).await;
    assert_eq!(again.generation, tripped.generation);
}

#[tokio::test]
async fn force_sets_the_forced_state_and_a_reset_bumps_reset_gen() {
    let mut f = Fleet::new("force").await;
    let keys = f.keys.breaker("daum");
    let events = f.keys.events().to_owned();
    let force = |forced| Force {
        keys: &keys,
        forced,
        channel: &events,
        name: "daum",
        seen_generation: 0,
    };
    let (open, closed, reset) = (
        force(Some(Forced::Open)),
        force(Some(Forced::Closed)),
        force(None),
    );
    let mut conn = f.conn.clone();
    let r = open.invoke(&mut conn).await.unwrap();
    let fleet = r.fleet.unwrap();
    assert_eq!(
        (fleet.state, fleet.forced),
        (State::Open, Some(Forced::Open))
    );
    assert_eq!(r.reset_gen, 0);
    assert_eq!(f.hget(&keys.state, "forced").await.as_deref(), Some("open"));
    let r2 = closed.invoke(&mut conn).await.unwrap();
    assert_eq!(r2.fleet.unwrap().forced, Some(Forced::Closed));
    assert!(r2.generation > r.generation);
    // A reset: no forced state, CLOSED, and `reset_gen` marks it (it ends instances' own
    // episodes); it also clears the swap.
    f.write(&keys, ControlChange::Swap(true), 0).await;
    let r3 = reset.invoke(&mut conn).await.unwrap();
    let fleet = r3.fleet.unwrap();
    assert_eq!((fleet.state, fleet.forced), (State::Closed, None));
    assert!(r3.generation > r2.generation);
    assert_eq!(r3.reset_gen, r3.generation);
    assert_eq!(
        f.hget(&keys.state, "reset_gen").await,
        Some(r3.generation.to_string())
    );
    assert_eq!(f.hget(&keys.state, "swapped").await.as_deref(), Some("0"));
}

#[tokio::test]
async fn acquire_grants_up_to_the_limit_then_refuses_with_a_wait() {
    let mut f = Fleet::new("acquire").await;
    let keys = f.keys.breaker("daum");
    f.open_and_due(&keys).await;
    let first = f.acquire(&keys, "t1", 2).await;
    assert!(first.granted);
    assert_eq!(state(&first.reply), State::HalfOpen);
    assert!(f.acquire(&keys, "t2", 2).await.granted);
    let refused = f.acquire(&keys, "t3", 2).await;
    assert!(!refused.granted);
    assert!(
        refused.wait_ms > 9000 && refused.wait_ms <= 10_000,
        "a slot frees when the first lease runs out: {}",
        refused.wait_ms
    );
    // Not HALF_OPEN: nothing is granted, and the wait is what OPEN has left.
    let other = f.keys.breaker("juso");
    f.hset(
        &other.state,
        &[("state", "open"), ("gen", "1"), ("opens", "1")],
    )
    .await;
    let now: (u64, u64) = redis::cmd("TIME").query_async(&mut f.conn).await.unwrap();
    let until = (now.0 * 1000 + 3000).to_string();
    f.hset(&other.state, &[("open_until", until.as_str())])
        .await;
    let open = f.acquire(&other, "t4", 2).await;
    assert!(!open.granted);
    assert!(
        open.wait_ms > 1000 && open.wait_ms <= 3000,
        "{}",
        open.wait_ms
    );
}

#[tokio::test]
async fn release_frees_the_slot_and_enough_successes_close() {
    let mut f = Fleet::new("release").await;
    let keys = f.keys.breaker("daum");
    f.open_and_due(&keys).await;
    assert!(f.acquire(&keys, "t1", 1).await.granted);
    assert!(!f.acquire(&keys, "t2", 1).await.granted);
    // Given back unused: the slot is free again.
    let freed = f.release(&keys, "t1", LeaseOutcome::Abandoned, 1).await;
    assert!(freed.granted, "the lease was held");
    assert_eq!(state(&freed.reply), State::HalfOpen);
    assert!(f.acquire(&keys, "t2", 1).await.granted);
    // A lease not held (already given back, or of an earlier episode) is ignored.
    let stale = f.release(&keys, "t1", LeaseOutcome::Failed, 1).await;
    assert!(!stale.granted);
    assert_eq!(state(&stale.reply), State::HalfOpen);
    // The probe succeeded: with a limit of one, the breaker closes.
    let closed = f.release(&keys, "t2", LeaseOutcome::Succeeded, 1).await;
    assert!(closed.granted);
    assert_eq!(state(&closed.reply), State::Closed);
    assert_eq!(
        closed.reply.pending_alert, closed.reply.generation,
        "recovered"
    );
}

#[tokio::test]
async fn claim_claims_an_alert_once_and_renews_it() {
    let mut f = Fleet::new("claim").await;
    let keys = f.keys.breaker("daum");
    let tripped = f.record(&keys, "a", 3).await;
    let generation = tripped.pending_alert;
    assert!(generation > 0);
    let won = f.claim(&keys, generation, "a", ClaimMode::Claim).await;
    assert_eq!(
        won,
        [ClaimedAlert {
            generation,
            kind: Some(AlertKind::Opened),
            from: Some(State::Closed),
            failures: 3,
            enforcing: true,
        }]
    );
    // Held: nobody else claims it, and replies no longer name it as pending.
    assert!(
        f.claim(&keys, generation, "b", ClaimMode::Claim)
            .await
            .is_empty()
    );
    assert!(
        f.claim(&keys, generation, "a", ClaimMode::Claim)
            .await
            .is_empty()
    );
    assert_eq!(f.record(&keys, "b", 0).await.pending_alert, 0);
    // The claimer renews it; another instance cannot.
    assert_eq!(
        f.claim(&keys, generation, "a", ClaimMode::Renew)
            .await
            .len(),
        1
    );
    assert!(
        f.claim(&keys, generation, "b", ClaimMode::Renew)
            .await
            .is_empty()
    );
    let record = f
        .hget(&keys.state, &format!("a:{generation}"))
        .await
        .unwrap();
    assert!(
        record.starts_with("opened|closed|3|") && record.ends_with("|a"),
        "{record}"
    );
}

#[tokio::test]
async fn delivered_takes_the_alert_off_the_queue() {
    let mut f = Fleet::new("delivered").await;
    let keys = f.keys.breaker("daum");
    let generation = f.record(&keys, "a", 3).await.pending_alert;
    assert_eq!(
        f.hget(&keys.state, "alerts").await,
        Some(generation.to_string())
    );
    let mut conn = f.conn.clone();
    let done = Delivered {
        keys: &keys,
        generation,
    };
    assert_eq!(done.invoke(&mut conn).await.unwrap(), 1);
    assert_eq!(f.hget(&keys.state, "alerts").await.as_deref(), Some(""));
    assert_eq!(f.hget(&keys.state, &format!("a:{generation}")).await, None);
    // Gone: no claim can take it any more, and it is never pending again.
    assert!(
        f.claim(&keys, generation, "b", ClaimMode::Claim)
            .await
            .is_empty()
    );
    assert_eq!(f.record(&keys, "b", 0).await.pending_alert, 0);
    // Marking it again (a lost reply) is harmless.
    assert_eq!(done.invoke(&mut conn).await.unwrap(), 1);
}

#[tokio::test]
async fn raise_hw_only_raises() {
    let mut f = Fleet::new("raise").await;
    let marker = f.keys.fleet().to_owned();
    let mut conn = f.conn.clone();
    for (generation, hw) in [(10, "10"), (5, "10"), (20, "20"), (20, "20")] {
        RaiseHw {
            marker: &marker,
            generation,
        }
        .invoke(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            f.hget(&marker, "hw").await.as_deref(),
            Some(hw),
            "{generation}"
        );
    }
}

#[tokio::test]
async fn controls_written_are_read_back() {
    let mut f = Fleet::new("controls").await;
    let keys = f.keys.breaker("daum");
    let target = Target::single(&f.url).unwrap();
    let mut messages = target.subscribe(&[f.keys.controls()]).await.unwrap();
    let mut conn = f.conn.clone();
    let read = ReadControls { keys: &keys };
    assert_eq!(
        read.invoke(&mut conn).await.unwrap(),
        breaker_runtime::redis::Controls::default()
    );
    let written = f
        .write(&keys, ControlChange::Fault("error:0.5"), 60_000)
        .await;
    assert_eq!(written.fault.as_deref(), Some("error:0.5"));
    let left = written.fault_ms_left.unwrap();
    assert!(left > 59_000 && left <= 60_000, "{left}");
    // `cgen` follows Redis's clock (ms since the epoch, far above any count of writes).
    assert!(written.cgen > 1_600_000_000_000, "{}", written.cgen);
    let read_back = read.invoke(&mut conn).await.unwrap();
    assert_eq!(
        (read_back.fault, read_back.cgen),
        (written.fault.clone(), written.cgen)
    );
    // Every write is announced with the breaker's name.
    let pushed = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        pushed,
        Pushed::Message {
            channel: f.keys.controls().to_owned(),
            payload: "daum".to_owned()
        }
    );
    let on = f.write(&keys, ControlChange::ToggleSwap, 0).await;
    assert!(on.swapped);
    assert!(!f.write(&keys, ControlChange::ToggleSwap, 0).await.swapped);
    let notice = f.write(&keys, ControlChange::Notice("slow"), 0).await;
    assert_eq!(
        (notice.notice.as_deref(), notice.notice_ms_left),
        (Some("slow"), None),
        "until cleared"
    );
    let cleared = f.write(&keys, ControlChange::Fault(""), 0).await;
    assert_eq!(
        (cleared.fault, cleared.notice.as_deref()),
        (None, Some("slow"))
    );
    assert!(cleared.cgen >= written.cgen + 4, "every write moves it on");
    // An expired fault reads as none.
    f.write(&keys, ControlChange::Fault("timeout"), 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(read.invoke(&mut conn).await.unwrap().fault, None);
}

#[tokio::test]
async fn the_shadow_control_sets_enforces_and_clears_and_refuses_other_values() {
    let mut f = Fleet::new("shadow").await;
    let keys = f.keys.breaker("daum");
    let target = Target::single(&f.url).unwrap();
    let mut messages = target.subscribe(&[f.keys.controls()]).await.unwrap();
    let mut conn = f.conn.clone();
    let read = ReadControls { keys: &keys };
    assert_eq!(read.invoke(&mut conn).await.unwrap().shadow, None);
    let first = f.write(&keys, ControlChange::Notice("slow"), 0).await.cgen;

    let on = f.write(&keys, ControlChange::Shadow(Some(true)), 0).await;
    assert_eq!(on.shadow, Some(true));
    assert!(on.cgen > first);
    assert_eq!(f.hget(&keys.state, "shadow").await.as_deref(), Some("1"));
    // The other controls are left as they were.
    assert_eq!(on.notice.as_deref(), Some("slow"));
    assert_eq!(read.invoke(&mut conn).await.unwrap(), on);
    let off = f.write(&keys, ControlChange::Shadow(Some(false)), 0).await;
    assert_eq!(off.shadow, Some(false));
    assert!(off.cgen > on.cgen);
    assert_eq!(f.hget(&keys.state, "shadow").await.as_deref(), Some("0"));
    let cleared = f.write(&keys, ControlChange::Shadow(None), 0).await;
    assert_eq!(cleared.shadow, None);
    assert!(cleared.cgen > off.cgen);
    assert_eq!(
        f.hget(&keys.state, "shadow").await,
        None,
        "an empty value deletes the field"
    );
    assert_eq!(read.invoke(&mut conn).await.unwrap().shadow, None);
    // Clearing twice: still a change (bumped, announced), nothing to delete.
    assert!(f.write(&keys, ControlChange::Shadow(None), 0).await.cgen > cleared.cgen);
    // Each write is announced with the breaker's name.
    for _ in 0..5 {
        let pushed = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            pushed,
            Pushed::Message {
                channel: f.keys.controls().to_owned(),
                payload: "daum".to_owned()
            }
        );
    }

    // Any other value is an error reply: nothing written, no bump, no message.
    let script = WriteControl {
        keys: &keys,
        change: ControlChange::Shadow(None),
        for_ms: 0,
        channel: f.keys.controls(),
        name: "daum",
    }
    .script();
    let last = f.hget(&keys.state, "cgen").await;
    for bad in ["2", "true", "yes", "on", " 1", "shadow"] {
        let e = script
            .key(&keys.state)
            .arg("shadow")
            .arg(bad)
            .arg(0)
            .arg(f.keys.controls())
            .arg("daum")
            .invoke_async::<redis::Value>(&mut conn)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some("BREAKER_BAD_VALUE"), "{bad:?}: {e}");
        assert!(e.to_string().contains("shadow"), "{bad:?}: {e}");
    }
    assert_eq!(f.hget(&keys.state, "shadow").await, None);
    assert_eq!(f.hget(&keys.state, "cgen").await, last);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), messages.next())
            .await
            .is_err(),
        "a refused write is not announced"
    );
    // A field READ_CONTROLS does not know (an old or foreign writer) reads as none.
    f.hset(&keys.state, &[("shadow", "yes")]).await;
    assert_eq!(read.invoke(&mut conn).await.unwrap().shadow, None);
}

#[tokio::test]
async fn audit_entries_are_written_read_and_trimmed() {
    let mut f = Fleet::new("audit").await;
    let first = AuditEntry::now("ana@ops-1", "open", "daum", "forced \"open\"");
    first.push(&mut f.conn, &f.keys).await.unwrap();
    let _: () = redis::cmd("LPUSH")
        .arg(f.keys.audit())
        .arg("not json")
        .query_async(&mut f.conn)
        .await
        .unwrap();
    let second = AuditEntry::now("bo@ops-2", "reset", "daum", "cleared");
    second.push(&mut f.conn, &f.keys).await.unwrap();
    let read = AuditEntry::read(&mut f.conn, &f.keys, 10).await.unwrap();
    assert_eq!(
        read,
        [
            Ok(second.clone()),
            Err("not json".to_owned()),
            Ok(first.clone())
        ]
    );
    assert_eq!(
        AuditEntry::read(&mut f.conn, &f.keys, 1).await.unwrap(),
        [Ok(second)]
    );
    assert!(
        AuditEntry::read(&mut f.conn, &f.keys, 0)
            .await
            .unwrap()
            .is_empty()
    );
    // Whoever writes keeps the log at `AUDIT_KEEP` entries.
    let filler = vec![first.to_json(); AUDIT_KEEP];
    let _: () = redis::cmd("RPUSH")
        .arg(f.keys.audit())
        .arg(filler)
        .query_async(&mut f.conn)
        .await
        .unwrap();
    first.push(&mut f.conn, &f.keys).await.unwrap();
    let len: usize = redis::cmd("LLEN")
        .arg(f.keys.audit())
        .query_async(&mut f.conn)
        .await
        .unwrap();
    assert_eq!(len, AUDIT_KEEP);
}

#[tokio::test]
async fn a_redis_that_is_not_there_is_a_connection_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let e = connect(&format!("redis://:s3cret@127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(is_connection_error(&e), "{e}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
    // A script error is an answer, not an outage.
    let mut f = Fleet::new("refused").await;
    let keys = f.keys.breaker("daum");
    f.hset(&keys.state, &[("state", "ajar")]).await;
    let mut conn = f.conn.clone();
    let e = record_call(&keys).invoke(&mut conn).await.unwrap_err();
    assert!(!is_connection_error(&e), "{e}");
    assert!(e.to_string().contains("BREAKER_MALFORMED"), "{e}");
}

#[tokio::test]
async fn claims_say_whether_an_instance_that_acts_on_calls_recorded_lately() {
    let mut f = Fleet::new("enforcing").await;
    let keys = f.keys.breaker("daum");
    // Only instances in shadow mode record: the alert they claim is a shadow fleet's.
    let tripped = f.record_as(&keys, "a", 3, false).await;
    assert_eq!(f.hget(&keys.state, "enforcing_until").await, None);
    let generation = tripped.pending_alert;
    let won = f.claim(&keys, generation, "a", ClaimMode::Claim).await;
    assert_eq!(won.len(), 1);
    assert!(!won[0].enforcing, "{won:?}");
    // An instance that enforces records: a claim now says so (it must not be marked shadow).
    f.record_as(&keys, "b", 0, true).await;
    assert!(f.hget(&keys.state, "enforcing_until").await.is_some());
    let renewed = f.claim(&keys, generation, "a", ClaimMode::Renew).await;
    assert!(renewed[0].enforcing, "{renewed:?}");
    // The operator puts the fleet in shadow: forgotten until an enforcing instance records.
    f.write(&keys, ControlChange::Shadow(Some(true)), 0).await;
    assert_eq!(f.hget(&keys.state, "enforcing_until").await, None);
    let renewed = f.claim(&keys, generation, "a", ClaimMode::Renew).await;
    assert!(!renewed[0].enforcing, "{renewed:?}");
    // Enforce (or back to the declared modes) leaves it to the instances' records.
    f.write(&keys, ControlChange::Shadow(Some(false)), 0).await;
    assert_eq!(f.hget(&keys.state, "enforcing_until").await, None);
    f.record_as(&keys, "b", 0, true).await;
    let renewed = f.claim(&keys, generation, "a", ClaimMode::Renew).await;
    assert!(renewed[0].enforcing, "{renewed:?}");
}

#[tokio::test]
async fn restore_writes_an_instances_view_only_over_older_controls() {
    let mut f = Fleet::new("restore").await;
    let keys = f.keys.breaker("daum");
    let mut conn = f.conn.clone();
    let restore = |shadow, swapped, seen| ControlChange::Restore {
        shadow,
        swapped,
        seen,
    };
    // The controls an instance saw: shadow on, swapped.
    f.write(&keys, ControlChange::Shadow(Some(true)), 0).await;
    let seen = f.write(&keys, ControlChange::Swap(true), 0).await;
    assert!(seen.swapped && seen.shadow == Some(true));
    // Redis loses them (`cgen` 0 now): the instance's view is restored, `cgen` becomes the one
    // it saw.
    let _: () = redis::cmd("DEL")
        .arg(&keys.state)
        .query_async(&mut conn)
        .await
        .unwrap();
    let back = f
        .write(&keys, restore(Some(true), true, seen.cgen), 0)
        .await;
    assert_eq!(
        (back.shadow, back.swapped, back.cgen),
        (Some(true), true, seen.cgen)
    );
    // An instance with an older view (it saw less) writes nothing.
    let older = f.write(&keys, restore(None, false, seen.cgen - 1), 0).await;
    assert_eq!(older, back);
    // A newer view wins, cleared values included (the mode back to declared, unswapped).
    let newer = f
        .write(&keys, restore(None, false, seen.cgen + 10), 0)
        .await;
    assert_eq!(
        (newer.shadow, newer.swapped, newer.cgen),
        (None, false, seen.cgen + 10)
    );
    assert_eq!(f.hget(&keys.state, "shadow").await, None);
    // An operator's change after the loss follows Redis's clock: newer than any view before.
    let deliberate = f.write(&keys, ControlChange::Shadow(Some(false)), 0).await;
    assert!(deliberate.cgen > newer.cgen);
    let stale = f
        .write(&keys, restore(Some(true), true, seen.cgen + 10), 0)
        .await;
    assert_eq!(stale, deliberate, "a change made since the loss stands");
    // A malformed restore is refused.
    let e = WriteControl {
        keys: &keys,
        change: ControlChange::Shadow(None),
        for_ms: 0,
        channel: f.keys.controls(),
        name: "daum",
    }
    .script()
    .key(&keys.state)
    .arg("restore")
    .arg("2|1")
    .arg(0)
    .arg(f.keys.controls())
    .arg("daum")
    .arg(5)
    .invoke_async::<redis::Value>(&mut conn)
    .await
    .unwrap_err();
    assert_eq!(e.code(), Some("BREAKER_BAD_VALUE"), "{e}");
}
