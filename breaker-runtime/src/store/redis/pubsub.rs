//! The subscription to the events and controls channels: every state change published by any
//! instance (or an operator) is applied here as it arrives; a control change marks the
//! breaker's controls to be read again at the next flush.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt as _;

use super::connection::{CONNECT_TIMEOUT, Pushed, RECONNECT_EVERY, bounded};
use super::protocol::{Message, redact};
use super::shared::{Inner, apply, lock};
use crate::notify::AlertKind;

/// Applies every state change published by any instance.
pub(super) async fn subscribe_loop(inner: Arc<Inner>) {
    loop {
        let ended = subscribe(&inner).await;
        // A subscription that cannot be made or is lost is Redis failing too: an idle instance
        // (nothing to flush) learns of an outage this way.
        let detail = match ended {
            Err(e) => redact(&e.to_string()),
            Ok(()) => "the subscription ended".to_owned(),
        };
        tracing::debug!(error = %detail, "breaker subscription lost");
        // Failing from now: a subscription that ran for hours failed just now.
        inner.note_failure(&detail, std::time::Instant::now());
        tokio::time::sleep(RECONNECT_EVERY).await;
    }
}

async fn subscribe(inner: &Inner) -> redis::RedisResult<()> {
    let channels = [inner.keys.events(), inner.keys.controls()];
    // A cluster's subscription finds its node first.
    let limit = CONNECT_TIMEOUT * if inner.target.is_cluster() { 4 } else { 2 };
    let mut messages = bounded(limit, inner.target.subscribe(&channels)).await?;
    // Anything published while we were away is in Redis: resynchronise with a flush now.
    inner.resync_all();
    while let Some(pushed) = messages.next().await {
        match pushed {
            Pushed::Message { channel, payload } => handle_any(inner, &channel, &payload),
            // A cluster connection subscribed again (after a reconnection): news was missed.
            Pushed::Subscribed => inner.resync_all(),
        }
    }
    Ok(())
}

/// A message on either channel: the controls channel carries a breaker's name (re-read its
/// controls); the events channel a state change.
fn handle_any(inner: &Inner, channel: &str, payload: &str) {
    if channel == inner.keys.controls() {
        if let Some(e) = lock(&inner.entries).get_mut(payload) {
            e.controls_stale = true;
        }
        inner.wake.notify_one();
    } else {
        handle_message(inner, payload);
    }
}

/// A state change published by any instance (or an operator). An alert-worthy change is
/// claimed at the next flush (by one instance: the claim is atomic).
fn handle_message(inner: &Inner, payload: &str) {
    let Some(m) = Message::decode(payload) else {
        tracing::warn!(%payload, "ignoring a malformed breaker message");
        return;
    };
    inner.max_seen.fetch_max(m.generation, Ordering::AcqRel);
    let found = lock(&inner.entries).get_mut(m.name.as_str()).map(|e| {
        if m.reset {
            e.reset_seen = Some(e.reset_seen.unwrap_or(0).max(m.generation));
        }
        // An alert-worthy transition: race to claim it (whoever made it). An opening is
        // described by the claimant's own last error, so an instance that has seen none leaves
        // the race to those that have (the instance that tripped the fleet claims from its
        // RECORD reply); it still claims the alert if it is pending when its next RECORD
        // replies, or when a claimant's lease runs out.
        let witness = m.alert != Some(AlertKind::Opened) || e.handle.has_last_error();
        if m.alert.is_some() && witness && !e.claims.contains(&m.generation) {
            e.claims.push(m.generation);
            inner.wake.notify_one();
        }
        (e.handle, e.sent_failures)
    });
    let Some((handle, sent_failures)) = found else {
        return;
    };
    let unflushed = handle.counters().failures > sent_failures;
    apply(
        &m.name,
        handle,
        Some((m.fleet_state(), m.generation)),
        unflushed,
    );
}
