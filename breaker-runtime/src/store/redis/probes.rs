//! Fleet probe leases: at most `half_open_probes` probes in flight over every instance of a
//! HALF_OPEN breaker, as leases in `<prefix>:{name}:p` (a sorted set of tokens scored by their
//! expiry). A call that finds HALF_OPEN without a lease asks for one: [`acquire_loop`] (a task
//! of its own, woken by the breaker) sends one `ACQUIRE` per request at once, on the sync
//! loop's connection, and answers the waiting call with the token or with how long to wait.
//! When the probe ends, the sync loop's flush gives the lease back with its verdict through
//! [`release_probes`] (`RELEASE`); a grant whose reply was lost is given back as abandoned, so
//! it never expires as a failed probe. Replies are applied through [`Inner`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::connection::{Conn, RESPONSE_TIMEOUT, bounded, is_connection_error};
use super::protocol::redact;
use super::scripts::{Acquire, LeaseOutcome, Release, ScriptCall};
use super::shared::{Inner, lock};
use crate::breaker::{Breaker, ProbeOutcome};

/// A call that finds HALF_OPEN waits for the fleet's answer to its request for a probe lease
/// three round trips (as the last flushes measured them), at least this and at most
/// [`RESPONSE_TIMEOUT`]; then it is served as rejected, and a later call asks again.
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(250);
/// The fleet lease outlives the local one by this much, so a probe that ends just in time can
/// still report before Redis counts it as expired.
const LEASE_SLACK: Duration = Duration::from_secs(1);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Gives back the leases of finished probes, with their verdicts.
pub(super) async fn release_probes(
    inner: &Inner,
    con: &mut Conn,
    name: &'static str,
    handle: &'static Breaker,
) -> redis::RedisResult<bool> {
    let b = handle;
    let results = b.take_probe_results();
    if results.is_empty() {
        return Ok(false);
    }
    let keys = inner.keys.breaker(name);
    let cfg = b.config();
    let mut results = results.into_iter();
    while let Some((token, outcome)) = results.next() {
        let release = Release {
            keys: &keys,
            token: &token,
            outcome: match outcome {
                ProbeOutcome::Succeeded => LeaseOutcome::Succeeded,
                ProbeOutcome::Failed => LeaseOutcome::Failed,
                _ => LeaseOutcome::Abandoned,
            },
            limit: cfg.half_open_probes,
            channel: inner.keys.events(),
            name,
            open_ms: ms(cfg.open_for).max(1),
            max_open_ms: ms(cfg.max_open_for).max(1),
            seen_generation: b.fleet_generation(),
        };
        match bounded(RESPONSE_TIMEOUT, release.invoke(con)).await {
            Ok(r) => inner.adopt(name, handle, &r.reply, false),
            Err(e) => {
                // Not delivered: keep it (and the rest) for the next flush.
                let mut rest = vec![(token, outcome)];
                rest.extend(results);
                b.restore_probe_results(rest);
                if is_connection_error(&e) {
                    return Err(e);
                }
                inner.refused(name, handle, &e);
                return Ok(true);
            }
        }
    }
    Ok(true)
}

/// Answers the calls waiting for a HALF_OPEN probe lease: one `ACQUIRE` each, sent at once
/// (concurrently, on the sync loop's connection), each bounded by the command timeout.
pub(super) async fn acquire_loop(inner: Arc<Inner>) {
    loop {
        inner.acquire_wake.notified().await;
        let wanted: Vec<(&'static str, &'static Breaker, Vec<u64>)> = lock(&inner.entries)
            .iter()
            .filter_map(|(n, e)| {
                let leases = e.handle.take_probe_requests();
                (!leases.is_empty()).then_some((*n, e.handle, leases))
            })
            .collect();
        let con = lock(&inner.conn).clone();
        for (name, handle, leases) in wanted {
            for lease in leases {
                match &con {
                    // No connection: the call is refused at once (the fleet cannot be asked).
                    None => handle.answer_probe(lease, Err(Duration::ZERO), 0),
                    Some(c) => {
                        tokio::spawn(acquire_one(inner.clone(), c.clone(), name, handle, lease));
                    }
                }
            }
        }
    }
}

async fn acquire_one(
    inner: Arc<Inner>,
    mut con: Conn,
    name: &'static str,
    handle: &'static Breaker,
    lease: u64,
) {
    let b = handle;
    if !b.probe_wanted(lease) {
        return;
    }
    let cfg = b.config();
    let token = format!(
        "{}-{}",
        inner.nonce,
        inner.tokens.fetch_add(1, Ordering::Relaxed)
    );
    let started = std::time::Instant::now();
    let keys = inner.keys.breaker(name);
    let acquire = Acquire {
        keys: &keys,
        limit: cfg.half_open_probes,
        lease_ms: ms(cfg.probe_lease() + LEASE_SLACK),
        token: &token,
        channel: inner.keys.events(),
        name,
        open_ms: ms(cfg.open_for).max(1),
        max_open_ms: ms(cfg.max_open_for).max(1),
        seen_generation: b.fleet_generation(),
    };
    let rtt = Duration::from_micros(inner.rtt_us.load(Ordering::Acquire));
    let limit = (rtt * 3).clamp(ACQUIRE_TIMEOUT, RESPONSE_TIMEOUT);
    match bounded(limit, acquire.invoke(&mut con)).await {
        Ok(g) => {
            let generation = g.reply.fleet_at().map_or(0, |(_, gen_)| gen_);
            inner.adopt(name, handle, &g.reply, false);
            if g.granted {
                b.answer_probe(lease, Ok(token), generation);
            } else {
                b.answer_probe(lease, Err(Duration::from_millis(g.wait_ms)), generation);
            }
        }
        Err(e) => {
            b.answer_probe(lease, Err(Duration::ZERO), 0);
            // The grant may have been made and its reply lost: give the token back (a release
            // of a lease not held is ignored), so it never expires as a failed probe.
            b.restore_probe_results(vec![(token, ProbeOutcome::Abandoned)]);
            if is_connection_error(&e) {
                // A fleet that cannot answer a probe request in time is failing too: if it
                // goes on, probes are judged locally (Redis counts as down).
                inner.note_failure(&redact(&e.to_string()), started);
                inner.wake.notify_one();
            } else {
                inner.refused(name, handle, &e);
            }
        }
    }
}
