//! The sync loop: on its own connection, every tick, each breaker's new counts go to Redis in
//! one `RECORD` (a pipeline on one Redis), finished probes' leases are given back (through
//! [`probes`](super::probes)), alerts are claimed and marked delivered, controls re-read, and
//! the fleet's marker checked. Replies are applied through [`Inner`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::connection::{Conn, RECONNECT_EVERY, RESPONSE_TIMEOUT, bounded, is_connection_error};
use super::probes::release_probes;
use super::protocol::{BreakerKeys, redact};
use super::scripts::{
    Claim, ClaimMode, ClaimedAlert, ControlChange, Controls, Delivered, FleetReply, RaiseHw,
    ReadControls, Record, ScriptCall, WriteControl,
};
use super::shared::{AlertRef, Inner, apply_controls, lock};
use crate::breaker::Breaker;
use crate::core::machine::State;
use crate::notify::{self as notifier, AlertKind};

/// The sync loop wakes at once for a failure, a verdict or fleet work, and at least this often
/// otherwise (an idle instance's loop asks Redis nothing).
const TICK: Duration = Duration::from_millis(50);
/// Successes alone are sent this often at most (failures at once, with the successes counted
/// so far): the count rule trips on failures alone, and the window's calls are for operators.
const SUCCESS_FLUSH_EVERY: Duration = Duration::from_secs(1);
/// With the rate rule, successes and failures alike go every tick: one instance's failures
/// reaching the window before the others' successes would make a rate that is not the fleet's
/// (a sick instance opening a healthy fleet).
const RATE_FLUSH_EVERY: Duration = TICK;
/// The sync loop's tick while no breaker has counts to send and no alert is being delivered.
const IDLE_TICK: Duration = Duration::from_millis(500);
/// How often an instance checks the fleet's marker (`<prefix>:fleet`: an incarnation id and the
/// highest generation written) to learn that Redis lost data: one cheap `HMGET`, whatever the
/// number of breakers.
const FLEET_CHECK_EVERY: Duration = Duration::from_secs(2);
/// A breaker with nothing to send still exchanges a `RECORD` every this (it keeps the instance
/// listed for `breakerctl`, and learns of an alert whose claimant died)...
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// ...but an instance sends at most one such heartbeat per this, round robin, whatever its
/// number of breakers: an idle instance costs Redis a quarter of a script a second at most
/// (about one command a second inside it) and half an `HMGET` a second
/// ([`FLEET_CHECK_EVERY`]).
const HEARTBEAT_SPACING: Duration = Duration::from_secs(4);
/// How long a claimed alert is the claimer's to deliver; the claimer renews it every
/// [`ALERT_RENEW`] while its notifiers are still at it (the HTTP notifiers retry for up to
/// about 40 s). A claimer that died is replaced when the lease runs out.
const ALERT_LEASE: Duration = Duration::from_secs(15);
const ALERT_RENEW: Duration = Duration::from_secs(5);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) async fn sync_loop(inner: Arc<Inner>, ready: std::sync::mpsc::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        let started = std::time::Instant::now();
        let mut con = match inner.target.connect().await {
            Ok(c) => c,
            Err(e) => {
                inner.note_failure(&redact(&e.to_string()), started);
                ready.take();
                tokio::time::sleep(RECONNECT_EVERY).await;
                continue;
            }
        };
        // Connected is not yet healthy: only an answer to a script says Redis works (a
        // cluster node can accept connections while the master for a slot is dead).
        let was_down = !inner.healthy.load(Ordering::Acquire);
        {
            let mut entries = lock(&inner.entries);
            for e in entries.values_mut() {
                if was_down {
                    // What happened while Redis was away was judged locally: sending those
                    // counts now would land a whole outage in one bucket of the fleet window.
                    let c = e.handle.counters();
                    e.sent_successes = c.successes;
                    e.sent_failures = c.failures;
                }
                e.needs_sync = true;
                e.listed = false;
            }
        }
        *lock(&inner.conn) = Some(con.clone());
        loop {
            let started = std::time::Instant::now();
            match flush_all(&inner, &mut con).await {
                Err(e) => {
                    *lock(&inner.conn) = None;
                    inner.note_failure(&redact(&e.to_string()), started);
                    break;
                }
                // Only an answer from Redis is news of its health (an idle round asks nothing).
                Ok(true) => inner.note_success(),
                Ok(false) => {}
            }
            // Started: the first round (the fleet marker's check at least) has had its answer.
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            // Calls under way: every tick. Nothing to send: a slower tick (a failure, fleet
            // work or news wakes the loop at once anyway), so a thousand idle instances in one
            // process do not spin.
            let wait = if inner.busy() { TICK } else { IDLE_TICK };
            let _ = tokio::time::timeout(wait, inner.wake.notified()).await;
        }
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

/// One round: for each breaker, a `RECORD` when it has something to send (or a heartbeat is
/// due), its probe results, and its housekeeping. A connection error ends the round (and the
/// connection); a script error about one breaker's data is reported and the others go on.
async fn flush_all(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let now = std::time::Instant::now();
    let (names, heartbeat, forget_ms) = {
        let entries = lock(&inner.entries);
        let names: Vec<&'static str> = entries.keys().copied().collect();
        let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        let period = HEARTBEAT_EVERY.max(HEARTBEAT_SPACING.saturating_mul(count));
        let mut next = lock(&inner.next_heartbeat);
        let heartbeat = if now >= *next {
            entries
                .iter()
                .filter(|(_, e)| now.duration_since(e.last_record) >= period)
                .min_by_key(|(_, e)| e.last_record)
                .map(|(n, _)| *n)
        } else {
            None
        };
        if heartbeat.is_some() {
            *next = now + HEARTBEAT_SPACING;
        }
        // An instance is listed as long as three heartbeats could have reached Redis.
        let forget = (period * 3).max(Duration::from_secs(360));
        (names, heartbeat, ms(forget))
    };
    let mut asked = false;
    let mut failed = None;
    // Every breaker's `RECORD` in one round trip (one Redis: a pipeline; a cluster: one
    // request per breaker, as its keys may live on any node).
    let outgoing: Vec<Outgoing> = names
        .iter()
        .filter_map(|n| outgoing(inner, n, heartbeat == Some(*n)))
        .collect();
    if !outgoing.is_empty() {
        asked = true;
        let started = std::time::Instant::now();
        let replies = send_records(inner, con, &outgoing, forget_ms).await?;
        for (o, reply) in outgoing.iter().zip(replies) {
            match take_record_reply(inner, con, o, reply).await {
                Ok(()) => breaker_answered(inner, o.name),
                Err(e) => {
                    breaker_failed(inner, o.name, &e, started);
                    failed.get_or_insert(e);
                }
            }
        }
    }
    for name in names {
        let started = std::time::Instant::now();
        match flush_one(inner, con, name).await {
            Ok(a) => {
                asked |= a;
                if a {
                    breaker_answered(inner, name);
                }
            }
            // One breaker's keys not answering (a cluster node down, a slow script) does not
            // hold up the others; if it goes on, that breaker decides locally.
            Err(e) => {
                breaker_failed(inner, name, &e, started);
                failed.get_or_insert(e);
            }
        }
    }
    for step in [fleet_marker(inner, con).await, deliveries(inner, con).await] {
        match step {
            Ok(a) => asked |= a,
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        // Nothing answered: the connection (or Redis) is what fails.
        Some(e) if !asked => Err(e),
        _ => Ok(asked),
    }
}

/// A breaker's requests failed (no answer in time): after `store_down_after` of that, it
/// decides locally (probes too) and the failure is reported once, as for data Redis refuses.
fn breaker_failed(
    inner: &Inner,
    name: &'static str,
    e: &redis::RedisError,
    started: std::time::Instant,
) {
    let after = Duration::from_millis(inner.down_after_ms.load(Ordering::Acquire));
    let handle = {
        let mut entries = lock(&inner.entries);
        let Some(en) = entries.get_mut(name) else {
            return;
        };
        let since = *en.failing_since.get_or_insert(started);
        (since.elapsed() >= after).then_some(en.handle)
    };
    if let Some(h) = handle {
        inner.refused(name, h, e);
    }
}

fn breaker_answered(inner: &Inner, name: &'static str) {
    if let Some(en) = lock(&inner.entries).get_mut(name) {
        en.failing_since = None;
    }
}

/// Marks the fleet alerts this instance sent delivered, once every notifier is done with
/// them. One a notifier could not deliver is left to its claim's lease: another instance (or
/// this one) sends it again when the lease runs out.
async fn deliveries(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let now = std::time::Instant::now();
    let (done, renew): (Vec<AlertRef>, Vec<AlertRef>) = {
        let mut receipts = lock(&inner.receipts);
        receipts.retain(|(_, _, r, _)| !r.is_lost());
        let done = receipts
            .iter()
            .filter(|(_, _, r, _)| r.is_done())
            .map(|(n, g, _, _)| (*n, *g))
            .collect();
        let renew = receipts
            .iter_mut()
            .filter(|(_, _, r, at)| !r.is_done() && now.duration_since(*at) >= ALERT_RENEW)
            .map(|(n, g, _, at)| {
                *at = now;
                (*n, *g)
            })
            .collect();
        (done, renew)
    };
    for (name, generation) in &renew {
        let keys = inner.keys.breaker(name);
        // Still being delivered here: the claim stays this instance's.
        let claim = Claim {
            keys: &keys,
            generation: *generation,
            instance: &inner.instance,
            lease_ms: ms(ALERT_LEASE),
            mode: ClaimMode::Renew,
        };
        bounded(RESPONSE_TIMEOUT, claim.invoke(con)).await?;
    }
    for (name, generation) in &done {
        let keys = inner.keys.breaker(name);
        let delivered = Delivered {
            keys: &keys,
            generation: *generation,
        };
        // On an error the rest stay for the next round (delivered; only the mark is late).
        bounded(RESPONSE_TIMEOUT, delivered.invoke(con)).await?;
        lock(&inner.receipts).retain(|(n, g, _, _)| (n, g) != (name, generation));
    }
    Ok(!done.is_empty() || !renew.is_empty())
}

/// The fleet's marker, `<prefix>:fleet`: `inc`, an incarnation id set when missing, and `hw`,
/// the highest generation any instance wrote. A Redis that lost data (restarted empty or from
/// an older snapshot, failed over to a replica that was behind, flushed) has no `inc`, or an
/// `hw` below what this instance saw: every breaker here exchanges a `RECORD` at once (which
/// writes the fleet's state back), and a new `inc` tells the other instances to do the same
/// (also those with breakers this instance does not have). Checked every
/// [`FLEET_CHECK_EVERY`]; `hw` is raised after this instance's scripts made a new generation.
async fn fleet_marker(inner: &Inner, con: &mut Conn) -> redis::RedisResult<bool> {
    let key = inner.keys.fleet();
    let mut asked = false;
    let now = std::time::Instant::now();
    let due = {
        let mut next = lock(&inner.next_fleet_check);
        let due = now >= *next;
        if due {
            *next = now + FLEET_CHECK_EVERY;
        }
        due
    };
    if due {
        asked = true;
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key).arg("inc").arg("hw");
        let (inc, hw): (Option<String>, Option<String>) =
            bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        // Compared with what was seen by the previous check: a generation seen since may not
        // be in `hw` yet (its writer raises it right after its script), one seen a second ago
        // must be.
        let seen = inner
            .checked_seen
            .swap(inner.max_seen.load(Ordering::Acquire), Ordering::AcqRel);
        let hw = hw.and_then(|h| h.parse::<u64>().ok()).unwrap_or(0);
        let known = lock(&inner.fleet_inc).clone();
        let behind = seen > 0 && (inc.is_none() || hw < seen);
        if behind {
            // This instance saw more than Redis holds: Redis lost data. Every instance is to
            // re-sync: a new incarnation says so.
            let fresh = format!(
                "{}-{}",
                inner.nonce,
                inner.tokens.fetch_add(1, Ordering::Relaxed)
            );
            let mut cmd = redis::cmd("HSET");
            cmd.arg(key).arg("inc").arg(&fresh);
            bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
            *lock(&inner.fleet_inc) = Some(fresh);
            tracing::warn!(prefix = %inner.keys.prefix(), "Redis holds less than this instance saw (restarted, restored, failed over or flushed): the fleet's state is written back");
            inner.resync_all();
            inner.hw_dirty.store(true, Ordering::Release);
        } else if let Some(inc) = inc {
            if known.as_ref().is_some_and(|k| *k != inc) {
                // Another instance found Redis behind: re-sync every breaker here too.
                inner.resync_all();
            } else if hw > inner.max_seen.load(Ordering::Acquire) {
                // A generation was written that this instance never heard of: its message was
                // lost. Re-sync (every breaker: the marker does not say which).
                inner.resync_all();
            }
            *lock(&inner.fleet_inc) = Some(inc);
        } else {
            // A fleet that never wrote anything yet.
            let mut cmd = redis::cmd("HSETNX");
            cmd.arg(key).arg("inc").arg(&inner.nonce);
            bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        }
    }
    if inner.hw_dirty.swap(false, Ordering::AcqRel) {
        asked = true;
        let raise = RaiseHw {
            marker: key,
            generation: inner.max_seen.load(Ordering::Acquire),
        };
        let r = bounded(RESPONSE_TIMEOUT, raise.invoke(con)).await;
        if let Err(e) = r {
            inner.hw_dirty.store(true, Ordering::Release);
            return Err(e);
        }
    }
    Ok(asked)
}

/// The rest of a breaker's flush: its probe results and housekeeping.
async fn flush_one(inner: &Inner, con: &mut Conn, name: &'static str) -> redis::RedisResult<bool> {
    let Some(handle) = lock(&inner.entries).get(name).map(|e| e.handle) else {
        return Ok(false);
    };
    let mut asked = release_probes(inner, con, name, handle).await?;
    asked |= housekeeping(inner, con, name, handle).await?;
    Ok(asked)
}

/// One breaker's `RECORD`: its new counts.
struct Outgoing {
    name: &'static str,
    keys: BreakerKeys,
    handle: &'static Breaker,
    successes: u64,
    failures: u64,
}

impl Outgoing {
    /// The `RECORD` call: the counts, the breaker's configuration, and the fleet's state as this
    /// instance last saw it.
    fn record<'a>(&'a self, inner: &'a Inner, forget_ms: u64) -> Record<'a> {
        let b = self.handle;
        let cfg = b.config();
        let (view, view_remaining) = b.fleet_view();
        Record {
            keys: &self.keys,
            successes: self.successes,
            failures: self.failures,
            bucket_ms: ms(cfg.window / 8).max(1),
            threshold: cfg.threshold,
            rate_percent: cfg.failure_rate.unwrap_or(0),
            min_calls: cfg.min_calls,
            open_ms: ms(cfg.open_for).max(1),
            max_open_ms: ms(cfg.max_open_for).max(1),
            channel: inner.keys.events(),
            name: self.name,
            view_remaining_ms: ms(view_remaining),
            view_opens: b.opens_in_row(),
            view_state: view,
            forced: b.forced(),
            instance: &inner.instance,
            quorum: cfg.quorum,
            forget_ms,
            seen_generation: b.fleet_generation(),
            enforcing: b.acts_on_calls(),
        }
    }
}

/// The `RECORD` a breaker has to send this round, if any: new counts, a re-sync, or its
/// heartbeat.
fn outgoing(inner: &Inner, name: &'static str, heartbeat: bool) -> Option<Outgoing> {
    let (handle, successes, failures, needs_sync, last) =
        lock(&inner.entries).get_mut(name).map(|e| {
            let c = e.handle.counters();
            if e.handle.forced().is_some() {
                // Outcomes under an operator's forced state do not count for the fleet.
                e.sent_successes = c.successes;
                e.sent_failures = c.failures;
            }
            (
                e.handle,
                c.successes.saturating_sub(e.sent_successes),
                c.failures.saturating_sub(e.sent_failures),
                e.needs_sync,
                e.last_record,
            )
        })?;
    // A verdict of this instance's own is only a reason to flush now: the fleet decides from
    // its counts, never from one instance's verdict (however old, after an outage).
    let local_event = handle.take_local_event();
    let rate_rule = handle.config().failure_rate.is_some();
    let (counts_due, successes_every) = if rate_rule {
        let due = last.elapsed() >= RATE_FLUSH_EVERY;
        (failures > 0 && due, RATE_FLUSH_EVERY)
    } else {
        // The count rule: a failure goes at once.
        (failures > 0, SUCCESS_FLUSH_EVERY)
    };
    let successes_due = successes > 0 && last.elapsed() >= successes_every;
    (counts_due || successes_due || needs_sync || heartbeat || local_event != 0).then(|| Outgoing {
        name,
        keys: inner.keys.breaker(name),
        handle,
        successes,
        failures,
    })
}

/// Sends the `RECORD`s: a pipeline on one Redis (the script is loaded first when Redis does
/// not have it), one request each on a cluster. A connection error fails the round; a script
/// error is one breaker's.
async fn send_records(
    inner: &Inner,
    con: &mut Conn,
    batch: &[Outgoing],
    forget_ms: u64,
) -> redis::RedisResult<Vec<redis::RedisResult<FleetReply>>> {
    let sent = std::time::Instant::now();
    let replies = if let Conn::Single(_) = con {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for o in batch {
            pipe.add_command(o.record(inner, forget_ms).evalsha());
        }
        let mut replies: Vec<redis::RedisResult<FleetReply>> =
            bounded(RESPONSE_TIMEOUT, pipe.query_async(con)).await?;
        let no_script = |r: &redis::RedisResult<FleetReply>| matches!(r, Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript));
        if let Some(o) = batch.first()
            && replies.iter().any(no_script)
        {
            // Redis lost its script cache (restarted, or `SCRIPT FLUSH`): load it, send again.
            let script = o.record(inner, forget_ms).script();
            bounded(RESPONSE_TIMEOUT, script.load_async(con)).await?;
            replies = bounded(RESPONSE_TIMEOUT, pipe.query_async(con)).await?;
        }
        replies
    } else {
        let mut replies = Vec::with_capacity(batch.len());
        for o in batch {
            let record = o.record(inner, forget_ms);
            match bounded(RESPONSE_TIMEOUT, record.invoke(con)).await {
                Err(e) if is_connection_error(&e) => replies.push(Err(e)),
                r => replies.push(r),
            }
        }
        replies
    };
    // A moving average of the round trip (7/8 old, 1/8 new), for the probe requests' bound.
    let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
    let old = inner.rtt_us.load(Ordering::Acquire);
    inner.rtt_us.store(
        if old == 0 { took } else { (old * 7 + took) / 8 },
        Ordering::Release,
    );
    Ok(replies)
}

/// Adopts one breaker's `RECORD` reply (or reports what Redis refused).
async fn take_record_reply(
    inner: &Inner,
    con: &mut Conn,
    o: &Outgoing,
    reply: redis::RedisResult<FleetReply>,
) -> redis::RedisResult<()> {
    let (name, handle, successes, failures) = (o.name, o.handle, o.successes, o.failures);
    let synced = lock(&inner.entries).get(name).map(|e| e.synced.clone());
    match reply {
        Ok(r) => {
            let (unflushed, was_refused, first) = {
                let mut entries = lock(&inner.entries);
                let now_failures = handle.counters().failures;
                match entries.get_mut(name) {
                    Some(e) => {
                        e.sent_successes += successes;
                        e.sent_failures += failures;
                        e.needs_sync = false;
                        e.last_record = std::time::Instant::now();
                        (
                            now_failures > e.sent_failures,
                            std::mem::replace(&mut e.refused, false),
                            e.cgen.is_none(),
                        )
                    }
                    None => (false, false, false),
                }
            };
            if was_refused {
                handle.set_fleet_gate(inner.healthy.load(Ordering::Acquire));
            }
            inner.adopt(name, handle, &r, unflushed);
            if first {
                // A new breaker learns its controls before its first call is decided.
                read_controls(inner, con, name, handle, &o.keys).await?;
            }
        }
        Err(e) if is_connection_error(&e) => return Err(e),
        Err(e) => {
            // Not taken again before its next heartbeat (a refused breaker must not take
            // every heartbeat from the others); its counts were judged here.
            if let Some(en) = lock(&inner.entries).get_mut(name) {
                en.last_record = std::time::Instant::now();
                en.needs_sync = false;
                en.sent_successes += successes;
                en.sent_failures += failures;
            }
            inner.refused(name, handle, &e);
        }
    }
    if let Some(s) = synced {
        s.store(true, Ordering::Release);
    }
    Ok(())
}

/// Reads the breaker's controls (swap, fault, notice) and applies them here.
async fn read_controls(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &BreakerKeys,
) -> redis::RedisResult<()> {
    let reply = bounded(RESPONSE_TIMEOUT, ReadControls { keys }.invoke(con)).await;
    match reply {
        Ok(c) => {
            let seen = lock(&inner.entries).get(name).and_then(|e| e.cgen);
            let c = match seen {
                Some(seen) if c.cgen < seen => {
                    write_back_controls(inner, con, name, handle, keys, seen, c).await?
                }
                _ => c,
            };
            let turned = apply_controls(handle, &c);
            if let Some(e) = lock(&inner.entries).get_mut(name) {
                e.cgen = Some(c.cgen);
            }
            if turned {
                alert_now_enforcing(inner, con, name, handle, c.cgen).await?;
            }
            Ok(())
        }
        Err(e) if is_connection_error(&e) => Err(e),
        Err(e) => {
            inner.refused(name, handle, &e);
            Ok(())
        }
    }
}

/// The controls `cgen` turned shadow off while the breaker is OPEN or HALF_OPEN: it refuses
/// calls from now on. Every instance that applies them gets here; the first to claim the change
/// (a key per `cgen`, kept ten minutes) raises the unmarked `opened` alert for the fleet.
pub(super) async fn alert_now_enforcing(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    cgen: u64,
) -> redis::RedisResult<()> {
    let key = format!("{}:enforcing:{cgen}", inner.keys.breaker(name).state);
    let mut cmd = redis::cmd("SET");
    cmd.arg(&key)
        .arg(&inner.instance)
        .arg("NX")
        .arg("PX")
        .arg(600_000);
    let won: Option<String> = bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
    if won.is_some() {
        handle.now_enforcing();
    }
    Ok(())
}

/// Redis holds older controls than this instance saw (their generation went back: it lost
/// its data, was restored from an older snapshot or failed over to a replica that was
/// behind): the operator's choices that decide whether calls are refused, the mode and the
/// swap, are restored as this instance holds them (set or cleared), so a data loss never
/// silently switches protection off (or on). Only over controls older than the ones this
/// instance saw (`restore`): the newest view among the instances wins, and a change made
/// since the loss (its `cgen` follows Redis's clock) stands. Faults (QA's, meant to run out)
/// and notices are not restored. The controls as Redis holds them after.
async fn write_back_controls(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &BreakerKeys,
    seen: u64,
    c: Controls,
) -> redis::RedisResult<Controls> {
    let (shadow, swapped) = (handle.shadow_override(), handle.swapped());
    if c.shadow == shadow && c.swapped == swapped {
        return Ok(c);
    }
    let write = WriteControl {
        keys,
        change: ControlChange::Restore {
            shadow,
            swapped,
            seen,
        },
        for_ms: 0,
        channel: inner.keys.controls(),
        name,
    };
    let now = bounded(RESPONSE_TIMEOUT, write.invoke(con)).await?;
    if now.cgen == seen && now.cgen != c.cgen {
        let mode = match shadow {
            Some(true) => "shadow",
            Some(false) => "enforce",
            None => "declared mode",
        };
        let order = if swapped { "swapped" } else { "not swapped" };
        let detail = format!("{mode}, {order}: restored, Redis had lost it");
        tracing::warn!(breaker = name, "{detail}");
        super::audit::audit_from_app(con, &inner.keys, "restore", name, &detail).await;
    }
    Ok(now)
}

/// The rest of a flush: the listing for `breakerctl`, alerts to claim, the chain's flag, and
/// the controls.
async fn housekeeping(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
) -> redis::RedisResult<bool> {
    let b = handle;
    let (list, claims, stale, clear_chain) = {
        let mut entries = lock(&inner.entries);
        let Some(e) = entries.get_mut(name) else {
            return Ok(false);
        };
        let stale = std::mem::take(&mut e.controls_stale);
        let clear_chain = e.chain_flagged && b.chain_ok();
        (!e.listed, std::mem::take(&mut e.claims), stale, clear_chain)
    };
    if !list && claims.is_empty() && !stale && !clear_chain && !b.chain_pending() {
        return Ok(false);
    }
    // A failed request about this breaker's data is reported and ends its housekeeping for this
    // flush; only a lost connection ends the flush round.
    let keys = inner.keys.breaker(name);
    let work = Housekeeping {
        list,
        claims,
        stale,
        clear_chain,
    };
    match housekeeping_steps(inner, con, name, handle, &keys, work).await {
        Err(e) if is_connection_error(&e) => Err(e),
        Err(e) => {
            inner.refused(name, handle, &e);
            Ok(true)
        }
        Ok(()) => Ok(true),
    }
}

/// A breaker's housekeeping this flush.
struct Housekeeping {
    /// List it in `<prefix>:breakers`.
    list: bool,
    /// Alerts to claim.
    claims: Vec<u64>,
    /// Read its controls again.
    stale: bool,
    /// Clear the fleet's `chain_failed` flag this instance set.
    clear_chain: bool,
}

/// Raises an alert this instance claimed (`store_reset`: only the first of the minute for
/// the fleet; the others are marked delivered).
async fn raise_claimed(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &BreakerKeys,
    alert: &ClaimedAlert,
    kind: AlertKind,
) -> redis::RedisResult<()> {
    let b = handle;
    let generation = alert.generation;
    let to = match kind {
        AlertKind::Opened => State::Open,
        AlertKind::StoreReset => b.fleet_view().0,
        _ => State::Closed,
    };
    let from = alert.from.unwrap_or(match kind {
        AlertKind::Opened => State::Closed,
        _ => State::Open,
    });
    if kind == AlertKind::StoreReset {
        // One alert per event for the fleet: Redis losing its data touches every breaker, and
        // every breaker's write-back is claimed; the first claim of the minute speaks. Keyed by
        // this alert: an instance that takes over a claim whose claimant died after winning
        // here still sends it. An error leaves the claim to run out: sent later, not lost.
        let id = format!("{name}:{generation}");
        let mut cmd = redis::cmd("SET");
        cmd.arg(inner.keys.store_reset())
            .arg(&id)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(60_000);
        let holder: Option<String> = bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        if holder.is_some_and(|h| h != id) {
            let delivered = Delivered { keys, generation };
            bounded(RESPONSE_TIMEOUT, delivered.invoke(con)).await?;
            return Ok(());
        }
    }
    let receipt = notifier::Receipt::default();
    b.raise_fleet_alert(
        kind,
        from,
        to,
        alert.failures,
        generation,
        alert.enforcing,
        receipt.clone(),
    );
    lock(&inner.receipts).push((name, generation, receipt, std::time::Instant::now()));
    Ok(())
}

async fn housekeeping_steps(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
    keys: &BreakerKeys,
    work: Housekeeping,
) -> redis::RedisResult<()> {
    let b = handle;
    if work.list {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(inner.keys.breakers())
            .arg(name)
            .arg(b.fallback().unwrap_or(""));
        bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.listed = true;
        }
    }
    let mut claims = work.claims.into_iter();
    while let Some(generation) = claims.next() {
        let claim = Claim {
            keys,
            generation,
            instance: &inner.instance,
            lease_ms: ms(ALERT_LEASE),
            mode: ClaimMode::Claim,
        };
        let won = match bounded(RESPONSE_TIMEOUT, claim.invoke(con)).await {
            Ok(r) => r,
            Err(e) => {
                // Not claimed: try again at the next flush (the claim is atomic, so trying
                // again can never send it twice).
                if let Some(en) = lock(&inner.entries).get_mut(name) {
                    en.claims.push(generation);
                    en.claims.extend(claims);
                }
                return Err(e);
            }
        };
        // This alert and the younger ones nobody held, oldest first: sent in that order.
        for alert in won {
            let Some(kind) = alert.kind else {
                continue;
            };
            raise_claimed(inner, con, name, handle, keys, &alert, kind).await?;
        }
    }
    if b.take_chain_failure() {
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(&keys.state).arg("chain_failed").arg(1);
        let won: i64 = bounded(RESPONSE_TIMEOUT, cmd.query_async(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.chain_flagged = true;
        }
        if won == 1 {
            let state = b.published_state();
            b.raise_alert(
                AlertKind::ChainFailed,
                state,
                state,
                0,
                b.forced(),
                b.injected(),
            );
        }
    } else if work.clear_chain {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(&keys.state).arg("chain_failed");
        bounded(RESPONSE_TIMEOUT, cmd.query_async::<i64>(con)).await?;
        if let Some(e) = lock(&inner.entries).get_mut(name) {
            e.chain_flagged = false;
        }
    }
    if work.stale {
        read_controls(inner, con, name, handle, keys).await?;
    }
    Ok(())
}
