//! What the operations return: plain data, `serde::Serialize` for `--json` and web front ends.

use breaker_runtime::redis;
use breaker_runtime::{Forced, State};
use serde::{Deserialize, Serialize};

/// One breaker's fleet state and controls, as Redis holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// The breaker's name.
    pub name: String,
    /// Whether some instance has reported it (it is a field of `<prefix>:breakers`).
    pub known: bool,
    /// Its fallback as written in the attribute, `None` when it has none (or is unknown).
    pub fallback: Option<String>,
    /// `closed`, `open` or `half_open`, as stored. A stored `open` whose time is up becomes
    /// `half_open` at the next call of any instance; [`BreakerStatus::probe_due`] says so.
    pub state: String,
    /// Whether the breaker is `open` with its time up, so the next call will probe.
    pub probe_due: bool,
    /// Generation: bumps on every state change (`gen` in JSON).
    #[serde(rename = "gen")]
    pub generation: u64,
    /// Consecutive openings (each one doubles the time OPEN lasts, up to its maximum).
    pub opens: u64,
    /// Milliseconds OPEN has left (0 when not open), on Redis's clock.
    pub open_ms_left: u64,
    /// The operator's forced mode: `open`, `closed`, or `None`.
    pub forced: Option<String>,
    /// Failures in the fleet's sliding window.
    pub window_failures: u64,
    /// All calls in the fleet's sliding window.
    pub window_calls: u64,
    /// Swap, fault, notice and the operator's mode.
    pub controls: Controls,
    /// Instances whose heartbeat for this breaker is less than 3 minutes old, sorted.
    pub instances: Vec<String>,
    /// Instances that reported failures inside the fleet's window, sorted: what `quorum`
    /// counts.
    pub failing_instances: Vec<String>,
    /// Redis's clock when this was read (Unix milliseconds).
    pub redis_time_ms: u64,
}

/// A breaker's operator controls, on Redis's clock. An expired fault or notice reads as none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Controls {
    /// Calls go straight to the fallback.
    pub swapped: bool,
    /// The injected fault in its canonical form (`error:0.5`, `delay:2000ms`, ...), if any.
    pub fault: Option<String>,
    /// Milliseconds the fault has left; `None` when there is no fault or it holds until cleared.
    pub fault_ms_left: Option<u64>,
    /// The notice users are shown, if any.
    pub notice: Option<String>,
    /// Milliseconds the notice has left; `None` when there is none or it holds until cleared.
    pub notice_ms_left: Option<u64>,
    /// Control generation: bumps on every control change.
    pub cgen: u64,
    /// The operator's mode (field `shadow`): `Some(true)` shadow (every call runs: none is
    /// rejected or sent to the fallback, all are counted), `Some(false)` enforce, `None` when no
    /// operator set one (each instance keeps the `mode` it declares). A value other than `1` or
    /// `0` reads as `None`, as the instances read it.
    pub shadow: Option<bool>,
}

impl From<redis::Controls> for Controls {
    /// The `READ_CONTROLS` / `WRITE_CONTROL` reply, decoded by the runtime.
    fn from(c: redis::Controls) -> Controls {
        Controls {
            swapped: c.swapped,
            fault: c.fault,
            fault_ms_left: c.fault_ms_left,
            notice: c.notice,
            notice_ms_left: c.notice_ms_left,
            cgen: c.cgen,
            shadow: c.shadow,
        }
    }
}

/// One entry of `<prefix>:audit` (the runtime's [`redis::AuditEntry`], serializable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (Unix milliseconds, the operator's clock).
    pub at_ms: u64,
    /// Who: `user@host`, or the front end's name for its user.
    pub who: String,
    /// `open`, `close`, `reset`, `swap`, `shadow`, `inject` or `notice`.
    pub command: String,
    /// The breaker.
    pub breaker: String,
    /// What was done, in words.
    pub detail: String,
}

impl From<redis::AuditEntry> for AuditEntry {
    fn from(e: redis::AuditEntry) -> AuditEntry {
        AuditEntry {
            at_ms: e.at_ms,
            who: e.who,
            command: e.command,
            breaker: e.breaker,
            detail: e.detail,
        }
    }
}

/// What `watch` sees: a state change or a control change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WatchItem {
    /// A fleet state change, from `<prefix>:events`.
    Event(FleetEvent),
    /// A control change, from `<prefix>:controls`, with the controls read back.
    Controls(ControlsChange),
}

/// A message of `<prefix>:events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetEvent {
    /// When it was received (Unix milliseconds, this machine's clock).
    pub at_ms: u64,
    /// The breaker.
    pub breaker: String,
    /// Its new state: `closed`, `open` or `half_open`.
    pub state: String,
    /// The new generation (`gen` in JSON).
    #[serde(rename = "gen")]
    pub generation: u64,
    /// Milliseconds OPEN lasts from now (0 unless open).
    pub open_ms_left: u64,
    /// Forced mode: `open`, `closed` or `None`.
    pub forced: Option<String>,
    /// Consecutive openings.
    pub opens: u64,
    /// `opened`, `recovered` or `store_reset` when the change raises an alert.
    pub alert: Option<String>,
    /// `reset` when an operator reset the breaker.
    pub op: Option<String>,
}

impl FleetEvent {
    /// Reads a message of the events channel (the runtime's [`redis::Message`], either form),
    /// received at `at_ms`.
    #[must_use]
    pub fn parse(payload: &str, at_ms: u64) -> Option<FleetEvent> {
        let m = redis::Message::decode(payload)?;
        Some(FleetEvent {
            at_ms,
            state: match m.state {
                State::Open => "open",
                State::HalfOpen => "half_open",
                _ => "closed",
            }
            .to_owned(),
            breaker: m.name,
            generation: m.generation,
            open_ms_left: m.remaining_ms,
            forced: m.forced.map(|f| {
                match f {
                    Forced::Open => "open",
                    _ => "closed",
                }
                .to_owned()
            }),
            opens: u64::from(m.opens),
            alert: m.alert.map(|a| a.as_str().to_owned()),
            op: m.reset.then(|| "reset".to_owned()),
        })
    }
}

/// A message of `<prefix>:controls`, with the breaker's controls as they are now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlsChange {
    /// When it was received (Unix milliseconds, this machine's clock).
    pub at_ms: u64,
    /// The breaker.
    pub breaker: String,
    /// Its controls, read back after the message.
    pub controls: Controls,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_the_runtimes_messages() {
        let e = FleetEvent::parse("a|b|open|7|1500|open|2|opened", 5).unwrap();
        assert_eq!(e.breaker, "a|b");
        assert_eq!(e.state, "open");
        assert_eq!(e.generation, 7);
        assert_eq!(e.open_ms_left, 1500);
        assert_eq!(e.forced.as_deref(), Some("open"));
        assert_eq!(e.opens, 2);
        assert_eq!(e.alert.as_deref(), Some("opened"));
        let e = FleetEvent::parse("daum|closed|8|0||0|", 5).unwrap();
        assert_eq!((e.forced, e.alert), (None, None));
        assert!(FleetEvent::parse("daum|ajar|8|0||0|", 5).is_none());
        assert!(FleetEvent::parse("daum|closed|x|0||0|", 5).is_none());
        assert!(FleetEvent::parse("closed|8|0||0|", 5).is_none());
        let e = FleetEvent::parse("daum|half_open|9|0|closed|1||reset", 5).unwrap();
        assert_eq!(
            (e.state.as_str(), e.forced.as_deref()),
            ("half_open", Some("closed"))
        );
        assert_eq!(e.op.as_deref(), Some("reset"));
    }
}
