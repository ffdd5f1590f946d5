//! The Lua scripts every instance and operator tool runs, and a typed call for each.
//!
//! The scripts live in `scripts/*.lua`, each starting with a comment that lists its KEYS and
//! ARGV. `clock.lua` (Redis's time in milliseconds) and `prologue.lua` (the breaker's state
//! read defensively, the timing helpers and `save_and_publish`) are prepended at compile time
//! to the scripts that need them, once each.
//!
//! A call is a struct of the script's arguments, fields in the script's order (KEYS, then
//! ARGV); [`ScriptCall`] turns it into a [`redis::ScriptInvocation`] or runs it and decodes the
//! reply.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, ParsingError, Script, ScriptInvocation, Value};

use super::protocol::{BreakerKeys, forced_str, parse_alert, parse_forced, parse_state, state_str};
use crate::core::machine::{FleetState, Forced, State};
use crate::notify::AlertKind;

macro_rules! lua {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("scripts/", $file, ".lua"))),+)
    };
}

// Each script whole: the clock and the prologue first where it uses them, once each.
const RECORD_SOURCE: &str = lua!("clock", "prologue", "record");
const FORCE_SOURCE: &str = lua!("clock", "prologue", "force");
const ACQUIRE_SOURCE: &str = lua!("clock", "prologue", "acquire");
const RELEASE_SOURCE: &str = lua!("clock", "prologue", "release");
const CLAIM_SOURCE: &str = lua!("clock", "claim");
const DELIVERED_SOURCE: &str = lua!("delivered");
const RAISE_HW_SOURCE: &str = lua!("raise_hw");
const READ_CONTROLS_SOURCE: &str = lua!("clock", "read_controls");
/// The write, then `READ_CONTROLS`'s reply.
const WRITE_CONTROL_SOURCE: &str = lua!("clock", "write_control", "read_controls");

/// Every script, by name, with its source: for loading them ahead (`SCRIPT LOAD`) or checking
/// a Redis has them.
///
/// ```
/// use breaker_runtime::redis::SCRIPTS;
/// assert_eq!(SCRIPTS.len(), 9);
/// assert!(SCRIPTS.iter().any(|(name, _)| *name == "FORCE"));
/// ```
pub const SCRIPTS: [(&str, &str); 9] = [
    ("RECORD", RECORD_SOURCE),
    ("FORCE", FORCE_SOURCE),
    ("ACQUIRE", ACQUIRE_SOURCE),
    ("RELEASE", RELEASE_SOURCE),
    ("CLAIM", CLAIM_SOURCE),
    ("DELIVERED", DELIVERED_SOURCE),
    ("RAISE_HW", RAISE_HW_SOURCE),
    ("READ_CONTROLS", READ_CONTROLS_SOURCE),
    ("WRITE_CONTROL", WRITE_CONTROL_SOURCE),
];

static RECORD: LazyLock<Script> = LazyLock::new(|| Script::new(RECORD_SOURCE));
static FORCE: LazyLock<Script> = LazyLock::new(|| Script::new(FORCE_SOURCE));
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_SOURCE));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_SOURCE));
static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM_SOURCE));
static DELIVERED: LazyLock<Script> = LazyLock::new(|| Script::new(DELIVERED_SOURCE));
static RAISE_HW: LazyLock<Script> = LazyLock::new(|| Script::new(RAISE_HW_SOURCE));
static READ_CONTROLS: LazyLock<Script> = LazyLock::new(|| Script::new(READ_CONTROLS_SOURCE));
static WRITE_CONTROL: LazyLock<Script> = LazyLock::new(|| Script::new(WRITE_CONTROL_SOURCE));

/// A call of one of the scripts: its arguments, and how its reply reads.
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Force, Keys, ScriptCall};
/// use breaker_runtime::Forced;
/// let keys = Keys::new("breaker");
/// let mut conn = breaker_runtime::redis::connect("redis://127.0.0.1:6379/").await?;
/// let reply = Force {
///     keys: &keys.breaker("daum"),
///     forced: Some(Forced::Open),
///     channel: keys.events(),
///     name: "daum",
///     seen_generation: 0,
/// }
/// .invoke(&mut conn)
/// .await?;
/// println!("generation {}", reply.generation);
/// # Ok(()) }
/// ```
pub trait ScriptCall {
    /// The script's reply, decoded.
    type Reply: FromRedisValue;

    /// The script (its source and SHA1).
    fn script(&self) -> &'static Script;

    /// KEYS, in the script's order.
    fn keys(&self) -> Vec<&str>;

    /// ARGV, in the script's order.
    fn args(&self) -> Vec<String>;

    /// The call, ready to run (`EVALSHA`, loading the script when Redis does not have it).
    fn invocation(&self) -> ScriptInvocation<'static> {
        let mut inv = self.script().prepare_invoke();
        for k in self.keys() {
            inv.key(k);
        }
        for a in self.args() {
            inv.arg(a);
        }
        inv
    }

    /// The call as one `EVALSHA` command, for a pipeline (which does not load the script:
    /// on a `NOSCRIPT` error, load it with `self.script().load_async(..)` and send again).
    fn evalsha(&self) -> Cmd {
        let keys = self.keys();
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script().get_hash())
            .arg(keys.len())
            .arg(&keys[..])
            .arg(self.args());
        cmd
    }

    /// Runs the call and decodes its reply.
    fn invoke<'c, C>(
        &self,
        conn: &'c mut C,
    ) -> impl Future<Output = redis::RedisResult<Self::Reply>> + Send + 'c
    where
        C: ConnectionLike + Send,
        Self::Reply: Send,
    {
        let inv = self.invocation();
        async move { inv.invoke_async(conn).await }
    }
}

/// `RECORD`: an instance's new counts join the fleet's window, the fleet decides, and the reply
/// is the authoritative state (`record.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Keys, Record, ScriptCall};
/// use breaker_runtime::State;
/// let keys = Keys::new("breaker");
/// let reply = Record {
///     keys: &keys.breaker("daum"),
///     successes: 10,
///     failures: 2,
///     bucket_ms: 3750,
///     threshold: 5,
///     rate_percent: 0,
///     min_calls: 10,
///     open_ms: 5000,
///     max_open_ms: 60_000,
///     channel: keys.events(),
///     name: "daum",
///     view_remaining_ms: 0,
///     view_opens: 0,
///     view_state: State::Closed,
///     forced: None,
///     instance: "host:1:abcdef01",
///     quorum: 1,
///     forget_ms: 360_000,
///     seen_generation: 0,
///     enforcing: true,
/// }
/// .invoke(conn)
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// KEYS: state, window, probes, failing instances, instances.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: successes since the last record.
    pub successes: u64,
    /// `ARGV[2]`: failures since the last record.
    pub failures: u64,
    /// `ARGV[3]`: the window's bucket, an eighth of it, in ms (at least 1).
    pub bucket_ms: u64,
    /// `ARGV[4]`: failures in the window that trip.
    pub threshold: u32,
    /// `ARGV[5]`: the failure rate in percent that trips; 0 when the rate rule is off.
    pub rate_percent: u8,
    /// `ARGV[6]`: calls in the window before the rate rule applies.
    pub min_calls: u32,
    /// `ARGV[7]`: how long the first opening lasts, ms (at least 1).
    pub open_ms: u64,
    /// `ARGV[8]`: the longest an opening lasts (openings in a row double), ms (at least 1).
    pub max_open_ms: u64,
    /// `ARGV[9]`: the events channel ([`Keys::events`](super::protocol::Keys::events)).
    pub channel: &'a str,
    /// `ARGV[10]`: the breaker's name.
    pub name: &'a str,
    /// `ARGV[11]`: the fleet's state as this instance last saw it: OPEN's remaining ms...
    pub view_remaining_ms: u64,
    /// `ARGV[12]`: ...consecutive openings...
    pub view_opens: u32,
    /// `ARGV[13]`: ...and state (written back when Redis lost it).
    pub view_state: State,
    /// `ARGV[14]`: the forced state this instance knows.
    pub forced: Option<Forced>,
    /// `ARGV[15]`: the instance's id (`host:pid:nonce`).
    pub instance: &'a str,
    /// `ARGV[16]`: distinct failing instances needed to trip.
    pub quorum: u32,
    /// `ARGV[17]`: ms after which a silent instance is no longer listed.
    pub forget_ms: u64,
    /// `ARGV[19]`: the highest generation this instance has seen.
    pub seen_generation: u64,
    /// `ARGV[18]`: the instance acts on calls (not in shadow mode); fleet alerts are not
    /// marked shadow while one did lately.
    pub enforcing: bool,
}

impl ScriptCall for Record<'_> {
    type Reply = FleetReply;

    fn script(&self) -> &'static Script {
        &RECORD
    }

    fn keys(&self) -> Vec<&str> {
        let k = self.keys;
        vec![&k.state, &k.window, &k.probes, &k.failing, &k.instances]
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.successes.to_string(),
            self.failures.to_string(),
            self.bucket_ms.to_string(),
            self.threshold.to_string(),
            self.rate_percent.to_string(),
            self.min_calls.to_string(),
            self.open_ms.to_string(),
            self.max_open_ms.to_string(),
            self.channel.to_owned(),
            self.name.to_owned(),
            self.view_remaining_ms.to_string(),
            self.view_opens.to_string(),
            state_str(self.view_state).to_owned(),
            forced_str(self.forced).to_owned(),
            self.instance.to_owned(),
            self.quorum.to_string(),
            self.forget_ms.to_string(),
            if self.enforcing { "1" } else { "0" }.to_owned(),
            self.seen_generation.to_string(),
        ]
    }
}

/// `FORCE`: an operator's command for the whole fleet: forced OPEN, forced CLOSED, or (`None`)
/// a reset, which also clears the swap (`force.lua`). See [`ScriptCall`] for an example.
#[derive(Debug, Clone, Copy)]
pub struct Force<'a> {
    /// KEYS: state, window, probes, failing instances.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: the forced state; `None` resets.
    pub forced: Option<Forced>,
    /// `ARGV[2]`: the events channel; the controls channel is this with `:events` replaced by
    /// `:controls` (a reset that clears the swap publishes there).
    pub channel: &'a str,
    /// `ARGV[3]`: the breaker's name.
    pub name: &'a str,
    /// `ARGV[4]`: the highest generation the caller has seen (0 from an operator's tool).
    pub seen_generation: u64,
}

impl ScriptCall for Force<'_> {
    type Reply = FleetReply;

    fn script(&self) -> &'static Script {
        &FORCE
    }

    fn keys(&self) -> Vec<&str> {
        let k = self.keys;
        vec![&k.state, &k.window, &k.probes, &k.failing]
    }

    fn args(&self) -> Vec<String> {
        vec![
            forced_str(self.forced).to_owned(),
            self.channel.to_owned(),
            self.name.to_owned(),
            self.seen_generation.to_string(),
        ]
    }
}

/// `ACQUIRE`: a HALF_OPEN probe lease, if fewer than `limit` are out (`acquire.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Acquire, Keys, ScriptCall};
/// let keys = Keys::new("breaker");
/// let r = Acquire {
///     keys: &keys.breaker("daum"),
///     limit: 1,
///     lease_ms: 4000,
///     token: "host-1",
///     channel: keys.events(),
///     name: "daum",
///     open_ms: 5000,
///     max_open_ms: 60_000,
///     seen_generation: 0,
/// }
/// .invoke(conn)
/// .await?;
/// if !r.granted {
///     println!("a slot may free in {} ms", r.wait_ms);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Acquire<'a> {
    /// KEYS: state, window, probes.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: probes in flight at most, fleet-wide (`half_open_probes`).
    pub limit: u32,
    /// `ARGV[2]`: how long the lease lasts, ms.
    pub lease_ms: u64,
    /// `ARGV[3]`: the lease's token, unique across the fleet.
    pub token: &'a str,
    /// `ARGV[4]`: the events channel.
    pub channel: &'a str,
    /// `ARGV[5]`: the breaker's name.
    pub name: &'a str,
    /// `ARGV[6]`: how long the first opening lasts, ms.
    pub open_ms: u64,
    /// `ARGV[7]`: the longest an opening lasts, ms.
    pub max_open_ms: u64,
    /// `ARGV[8]`: the highest generation this instance has seen.
    pub seen_generation: u64,
}

impl ScriptCall for Acquire<'_> {
    type Reply = ProbeReply;

    fn script(&self) -> &'static Script {
        &ACQUIRE
    }

    fn keys(&self) -> Vec<&str> {
        let k = self.keys;
        vec![&k.state, &k.window, &k.probes]
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.limit.to_string(),
            self.lease_ms.to_string(),
            self.token.to_owned(),
            self.channel.to_owned(),
            self.name.to_owned(),
            self.open_ms.to_string(),
            self.max_open_ms.to_string(),
            self.seen_generation.to_string(),
        ]
    }
}

/// How a probe ended, for [`Release`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The probe succeeded (`1`).
    Succeeded,
    /// The probe failed (`0`): the breaker opens again.
    Failed,
    /// The lease was not used (`2`): the slot is free again.
    Abandoned,
}

impl LeaseOutcome {
    fn code(self) -> u8 {
        match self {
            LeaseOutcome::Succeeded => 1,
            LeaseOutcome::Failed => 0,
            LeaseOutcome::Abandoned => 2,
        }
    }
}

/// `RELEASE`: gives back a probe lease with its outcome (`release.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Keys, LeaseOutcome, Release, ScriptCall};
/// let keys = Keys::new("breaker");
/// let r = Release {
///     keys: &keys.breaker("daum"),
///     token: "host-1",
///     outcome: LeaseOutcome::Succeeded,
///     limit: 1,
///     channel: keys.events(),
///     name: "daum",
///     open_ms: 5000,
///     max_open_ms: 60_000,
///     seen_generation: 0,
/// }
/// .invoke(conn)
/// .await?;
/// assert!(r.granted, "the lease was still held");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// KEYS: state, window, probes, failing instances.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: the lease's token.
    pub token: &'a str,
    /// `ARGV[2]`: how the probe ended.
    pub outcome: LeaseOutcome,
    /// `ARGV[3]`: probes in flight at most (`half_open_probes`): this many successes close.
    pub limit: u32,
    /// `ARGV[4]`: the events channel.
    pub channel: &'a str,
    /// `ARGV[5]`: the breaker's name.
    pub name: &'a str,
    /// `ARGV[6]`: how long the first opening lasts, ms.
    pub open_ms: u64,
    /// `ARGV[7]`: the longest an opening lasts, ms.
    pub max_open_ms: u64,
    /// `ARGV[8]`: the highest generation this instance has seen.
    pub seen_generation: u64,
}

impl ScriptCall for Release<'_> {
    type Reply = ProbeReply;

    fn script(&self) -> &'static Script {
        &RELEASE
    }

    fn keys(&self) -> Vec<&str> {
        let k = self.keys;
        vec![&k.state, &k.window, &k.probes, &k.failing]
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.token.to_owned(),
            self.outcome.code().to_string(),
            self.limit.to_string(),
            self.channel.to_owned(),
            self.name.to_owned(),
            self.open_ms.to_string(),
            self.max_open_ms.to_string(),
            self.seen_generation.to_string(),
        ]
    }
}

/// What a [`Claim`] does.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimMode {
    /// Claims the alert and every younger one nobody holds.
    Claim,
    /// Extends this instance's claim of the alert.
    Renew,
}

/// `CLAIM`: the one instance that sends a fleet alert claims it, for a lease on Redis's clock
/// (`claim.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Claim, ClaimMode, Keys, ScriptCall};
/// let won = Claim {
///     keys: &Keys::new("breaker").breaker("daum"),
///     generation: 1_796_427_146_042,
///     instance: "host:1:abcdef01",
///     lease_ms: 15_000,
///     mode: ClaimMode::Claim,
/// }
/// .invoke(conn)
/// .await?;
/// for alert in won {
///     println!("send {:?} of generation {}", alert.kind, alert.generation);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// KEYS: state.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: the generation of the transition whose alert is claimed.
    pub generation: u64,
    /// `ARGV[2]`: the claiming instance's id.
    pub instance: &'a str,
    /// `ARGV[3]`: how long the claim holds, ms.
    pub lease_ms: u64,
    /// `ARGV[4]`: claim or renew.
    pub mode: ClaimMode,
}

impl ScriptCall for Claim<'_> {
    type Reply = Vec<ClaimedAlert>;

    fn script(&self) -> &'static Script {
        &CLAIM
    }

    fn keys(&self) -> Vec<&str> {
        vec![&self.keys.state]
    }

    fn args(&self) -> Vec<String> {
        vec![
            self.generation.to_string(),
            self.instance.to_owned(),
            self.lease_ms.to_string(),
            match self.mode {
                ClaimMode::Claim => "claim",
                ClaimMode::Renew => "renew",
            }
            .to_owned(),
        ]
    }
}

/// `DELIVERED`: a claimed alert was delivered and leaves the queue (`delivered.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Delivered, Keys, ScriptCall};
/// let keys = Keys::new("breaker").breaker("daum");
/// Delivered { keys: &keys, generation: 1_796_427_146_042 }.invoke(conn).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Delivered<'a> {
    /// KEYS: state.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]`: the generation of the transition whose alert was delivered.
    pub generation: u64,
}

impl ScriptCall for Delivered<'_> {
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &DELIVERED
    }

    fn keys(&self) -> Vec<&str> {
        vec![&self.keys.state]
    }

    fn args(&self) -> Vec<String> {
        vec![self.generation.to_string()]
    }
}

/// `RAISE_HW`: raises the fleet marker's `hw` to a generation (never lowers it); every writer
/// of a generation does, so instances that missed its message re-sync (`raise_hw.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Keys, RaiseHw, ScriptCall};
/// let keys = Keys::new("breaker");
/// RaiseHw { marker: keys.fleet(), generation: 1_796_427_146_042 }.invoke(conn).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RaiseHw<'a> {
    /// `KEYS[1]`: the fleet's marker ([`Keys::fleet`](super::protocol::Keys::fleet)).
    pub marker: &'a str,
    /// `ARGV[1]`: the generation written.
    pub generation: u64,
}

impl ScriptCall for RaiseHw<'_> {
    type Reply = i64;

    fn script(&self) -> &'static Script {
        &RAISE_HW
    }

    fn keys(&self) -> Vec<&str> {
        vec![self.marker]
    }

    fn args(&self) -> Vec<String> {
        vec![self.generation.to_string()]
    }
}

/// `READ_CONTROLS`: a breaker's controls on Redis's clock (`read_controls.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{Keys, ReadControls, ScriptCall};
/// let keys = Keys::new("breaker").breaker("daum");
/// let c = ReadControls { keys: &keys }.invoke(conn).await?;
/// println!("swapped: {}, fault: {:?}", c.swapped, c.fault);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ReadControls<'a> {
    /// KEYS: state.
    pub keys: &'a BreakerKeys,
}

impl ScriptCall for ReadControls<'_> {
    type Reply = Controls;

    fn script(&self) -> &'static Script {
        &READ_CONTROLS
    }

    fn keys(&self) -> Vec<&str> {
        vec![&self.keys.state]
    }

    fn args(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The change a [`WriteControl`] makes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlChange<'a> {
    /// Calls go straight to the fallback (`true`), or back to the function.
    Swap(bool),
    /// The swap flips.
    ToggleSwap,
    /// A fault in its canonical form (`error:0.5`, `delay:2000ms`...); empty clears it.
    Fault(&'a str),
    /// The notice users are shown; empty clears it.
    Notice(&'a str),
    /// The operator's mode: shadow (`Some(true)`), enforce (`Some(false)`), or none (`None`:
    /// each instance keeps the mode it declares).
    Shadow(Option<bool>),
    /// An instance's view of the operator's mode and swap, written back only if Redis holds
    /// controls older than `seen` (their `cgen`): Redis lost or rolled them back. `cgen` becomes
    /// `seen`, so a newer view, or a change made since, wins.
    Restore {
        /// The operator's mode as the instance holds it.
        shadow: Option<bool>,
        /// The swap as the instance holds it.
        swapped: bool,
        /// The `cgen` of the controls the instance saw last.
        seen: u64,
    },
}

/// `WRITE_CONTROL`: changes one control of a breaker for every instance (`write_control.lua`).
///
/// ```no_run
/// # async fn demo(conn: &mut breaker_runtime::redis::Conn) -> redis::RedisResult<()> {
/// use breaker_runtime::redis::{ControlChange, Keys, ScriptCall, WriteControl};
/// let keys = Keys::new("breaker");
/// let now = WriteControl {
///     keys: &keys.breaker("daum"),
///     change: ControlChange::Fault("error:0.5"),
///     for_ms: 60_000,
///     channel: keys.controls(),
///     name: "daum",
/// }
/// .invoke(conn)
/// .await?;
/// assert_eq!(now.fault.as_deref(), Some("error:0.5"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct WriteControl<'a> {
    /// KEYS: state.
    pub keys: &'a BreakerKeys,
    /// `ARGV[1]` and `ARGV[2]`: the control (`swap`, `fault`, `notice`) and its value.
    pub change: ControlChange<'a>,
    /// `ARGV[3]`: ms until a fault or notice expires; 0 until cleared.
    pub for_ms: u64,
    /// `ARGV[4]`: the controls channel ([`Keys::controls`](super::protocol::Keys::controls)).
    pub channel: &'a str,
    /// `ARGV[5]`: the breaker's name.
    pub name: &'a str,
}

impl ScriptCall for WriteControl<'_> {
    type Reply = Controls;

    fn script(&self) -> &'static Script {
        &WRITE_CONTROL
    }

    fn keys(&self) -> Vec<&str> {
        vec![&self.keys.state]
    }

    fn args(&self) -> Vec<String> {
        let flag = |on: bool| if on { "1" } else { "0" };
        let shadow = |mode: Option<bool>| mode.map_or("", flag);
        let (op, value) = match self.change {
            ControlChange::Swap(on) => ("swap", flag(on).to_owned()),
            ControlChange::ToggleSwap => ("swap", "toggle".to_owned()),
            ControlChange::Fault(f) => ("fault", f.to_owned()),
            ControlChange::Notice(n) => ("notice", n.to_owned()),
            ControlChange::Shadow(mode) => ("shadow", shadow(mode).to_owned()),
            ControlChange::Restore {
                shadow: mode,
                swapped,
                ..
            } => ("restore", format!("{}|{}", shadow(mode), flag(swapped))),
        };
        let mut args = vec![
            op.to_owned(),
            value,
            self.for_ms.to_string(),
            self.channel.to_owned(),
            self.name.to_owned(),
        ];
        if let ControlChange::Restore { seen, .. } = self.change {
            args.push(seen.to_string());
        }
        args
    }
}

/// The reply of `RECORD` and `FORCE` (and the tail of `ACQUIRE`'s and `RELEASE`'s): the fleet's
/// state, and what the instance is to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetReply {
    /// The fleet's state; `None` when Redis replied with a state or forced mode this version
    /// does not know.
    pub fleet: Option<FleetState>,
    /// The generation of that state.
    pub generation: u64,
    /// The generation of the oldest alert nobody holds a claim on (0: none): the instance
    /// claims it.
    pub pending_alert: u64,
    /// The control generation: the controls changed when it did.
    pub cgen: u64,
    /// The generation of the last operator reset.
    pub reset_gen: u64,
}

impl FleetReply {
    /// The fleet's state with its generation, when this version knows the state.
    #[must_use]
    pub fn fleet_at(&self) -> Option<(FleetState, u64)> {
        self.fleet.map(|f| (f, self.generation))
    }
}

impl FromRedisValue for FleetReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let (state, generation, remaining, forced, opens, pending_alert, cgen, reset_gen): (
            String,
            u64,
            u64,
            String,
            u32,
            u64,
            u64,
            u64,
        ) = FromRedisValue::from_redis_value(v)?;
        let fleet = match (parse_state(&state), parse_forced(&forced)) {
            (Some(state), Some(forced)) => Some(FleetState {
                state,
                forced,
                remaining: Duration::from_millis(remaining),
                opens_in_row: opens,
                reset: false,
            }),
            _ => None,
        };
        Ok(FleetReply {
            fleet,
            generation,
            pending_alert,
            cgen,
            reset_gen,
        })
    }
}

/// The reply of `ACQUIRE` (a lease granted, or when to ask again) and `RELEASE` (whether the
/// lease was still held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeReply {
    /// `ACQUIRE`: the lease is granted. `RELEASE`: the lease was held (its outcome counted).
    pub granted: bool,
    /// `ACQUIRE` refused: ms until a probe slot may free (0: unknown).
    pub wait_ms: u64,
    /// The fleet's state after the call.
    pub reply: FleetReply,
}

impl FromRedisValue for ProbeReply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        // A flag and a wait, then the fields of a `FleetReply`.
        let mut items: Vec<Value> = FromRedisValue::from_redis_value(v)?;
        if items.is_empty() {
            return Err(ParsingError::from("an empty reply"));
        }
        if items.len() < 2 {
            return Err(ParsingError::from("a reply without its flags"));
        }
        let flag: i64 = FromRedisValue::from_redis_value(items.remove(0))?;
        let wait_ms: u64 = FromRedisValue::from_redis_value(items.remove(0))?;
        Ok(ProbeReply {
            granted: flag == 1,
            wait_ms,
            reply: FromRedisValue::from_redis_value(Value::Array(items))?,
        })
    }
}

/// An alert a [`Claim`] won: this instance sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimedAlert {
    /// The generation of the transition.
    pub generation: u64,
    /// `Opened`, `Recovered` or `StoreReset`; `None` for a kind this version does not know.
    pub kind: Option<AlertKind>,
    /// The state the transition left; `None` when unknown.
    pub from: Option<State>,
    /// Failures in the fleet's window when it opened.
    pub failures: u64,
    /// An instance that acts on calls (not in shadow mode) recorded lately: the alert is not
    /// marked shadow, whatever the claimant's mode.
    pub enforcing: bool,
}

impl FromRedisValue for ClaimedAlert {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let (generation, kind, from, failures, enforcing): (u64, String, String, u64, i64) =
            FromRedisValue::from_redis_value(v)?;
        Ok(ClaimedAlert {
            generation,
            kind: parse_alert(&kind),
            from: parse_state(&from),
            failures,
            enforcing: enforcing != 0,
        })
    }
}

/// A breaker's controls, as `READ_CONTROLS` and `WRITE_CONTROL` reply, on Redis's clock. An
/// expired fault or notice reads as none.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controls {
    /// Calls go straight to the fallback.
    pub swapped: bool,
    /// The injected fault in its canonical form, if any.
    pub fault: Option<String>,
    /// Milliseconds the fault has left; `None` when there is none or it holds until cleared.
    pub fault_ms_left: Option<u64>,
    /// The notice users are shown, if any.
    pub notice: Option<String>,
    /// Milliseconds the notice has left; `None` when there is none or it holds until cleared.
    pub notice_ms_left: Option<u64>,
    /// The control generation: bumps on every control change.
    pub cgen: u64,
    /// The operator's mode: shadow (`Some(true)`), enforce (`Some(false)`), or none set.
    pub shadow: Option<bool>,
}

impl FromRedisValue for Controls {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let (swapped, fault, fault_left, notice, notice_left, cgen, shadow): (
            i64,
            String,
            u64,
            String,
            u64,
            u64,
            String,
        ) = FromRedisValue::from_redis_value(v)?;
        let text = |s: String| (!s.is_empty()).then_some(s);
        let left = |present: bool, ms: u64| (present && ms > 0).then_some(ms);
        Ok(Controls {
            swapped: swapped == 1,
            fault_ms_left: left(!fault.is_empty(), fault_left),
            fault: text(fault),
            notice_ms_left: left(!notice.is_empty(), notice_left),
            notice: text(notice),
            cgen,
            shadow: match shadow.as_str() {
                "1" => Some(true),
                "0" => Some(false),
                _ => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn every_script_file_starts_with_its_keys_and_argv() {
        for (name, file) in [
            ("RECORD", include_str!("scripts/record.lua")),
            ("FORCE", include_str!("scripts/force.lua")),
            ("ACQUIRE", include_str!("scripts/acquire.lua")),
            ("RELEASE", include_str!("scripts/release.lua")),
            ("CLAIM", include_str!("scripts/claim.lua")),
            ("DELIVERED", include_str!("scripts/delivered.lua")),
            ("RAISE_HW", include_str!("scripts/raise_hw.lua")),
            ("READ_CONTROLS", include_str!("scripts/read_controls.lua")),
            ("WRITE_CONTROL", include_str!("scripts/write_control.lua")),
        ] {
            assert!(file.starts_with(&format!("-- {name}")), "{name}");
            assert!(file.contains("-- KEYS[1]"), "{name}");
            assert!(file.contains("-- Reply:"), "{name}");
        }
        // The prologue and the clock are prepended once each.
        for (name, source) in SCRIPTS {
            assert_eq!(
                source.matches("redis.call('TIME')").count(),
                usize::from(name != "DELIVERED" && name != "RAISE_HW"),
                "{name}"
            );
            assert!(source.matches("local function save_and_publish").count() <= 1);
        }
    }

    #[test]
    fn arguments_come_in_the_scripts_order() {
        let keys = BreakerKeys::new("p", "daum");
        let force = Force {
            keys: &keys,
            forced: Some(Forced::Closed),
            channel: "p:events",
            name: "daum",
            seen_generation: 7,
        };
        assert_eq!(
            force.keys(),
            ["p:{daum}:s", "p:{daum}:w", "p:{daum}:p", "p:{daum}:q"]
        );
        assert_eq!(force.args(), ["closed", "p:events", "daum", "7"]);
        let write = WriteControl {
            keys: &keys,
            change: ControlChange::ToggleSwap,
            for_ms: 0,
            channel: "p:controls",
            name: "daum",
        };
        assert_eq!(write.args(), ["swap", "toggle", "0", "p:controls", "daum"]);
        let cmd = RaiseHw {
            marker: "p:fleet",
            generation: 9,
        }
        .evalsha();
        let packed = String::from_utf8(cmd.get_packed_command()).unwrap();
        assert!(packed.contains(RAISE_HW.get_hash()) && packed.ends_with("p:fleet\r\n$1\r\n9\r\n"));
    }

    #[test]
    fn replies_decode() {
        let fleet = |state: &str, forced: &str| {
            Value::Array(vec![
                bulk(state),
                Value::Int(3),
                Value::Int(1500),
                bulk(forced),
                Value::Int(2),
                Value::Int(0),
                Value::Int(4),
                Value::Int(1),
            ])
        };
        let r = FleetReply::from_redis_value(fleet("open", "")).unwrap();
        let (f, generation) = r.fleet_at().unwrap();
        assert_eq!((f.state, f.forced, generation), (State::Open, None, 3));
        assert_eq!(f.remaining, Duration::from_millis(1500));
        assert_eq!((r.pending_alert, r.cgen, r.reset_gen), (0, 4, 1));
        // A state of another version: the rest of the reply still reads.
        let r = FleetReply::from_redis_value(fleet("ajar", "")).unwrap();
        assert_eq!((r.fleet, r.cgen), (None, 4));
        assert_eq!(
            FleetReply::from_redis_value(fleet("open", "maybe"))
                .unwrap()
                .fleet,
            None
        );
        let Value::Array(mut items) = fleet("half_open", "") else {
            unreachable!()
        };
        items.insert(0, Value::Int(250));
        items.insert(0, Value::Int(0));
        let p = ProbeReply::from_redis_value(Value::Array(items)).unwrap();
        assert_eq!((p.granted, p.wait_ms), (false, 250));
        assert!(ProbeReply::from_redis_value(Value::Array(vec![Value::Int(1)])).is_err());
    }

    #[test]
    fn controls_read_no_expiry_and_empty_text_as_none() {
        let c = |swapped, fault: &str, fl, notice: &str, nl| {
            Controls::from_redis_value(Value::Array(vec![
                Value::Int(swapped),
                bulk(fault),
                Value::Int(fl),
                bulk(notice),
                Value::Int(nl),
                Value::Int(3),
                bulk(""),
            ]))
            .unwrap()
        };
        let one = c(1, "error:0.5", 0, "down", 900);
        assert!(one.swapped);
        assert_eq!(
            (one.fault.as_deref(), one.fault_ms_left),
            (Some("error:0.5"), None)
        );
        assert_eq!(
            (one.notice.as_deref(), one.notice_ms_left),
            (Some("down"), Some(900))
        );
        assert_eq!(
            c(0, "", 500, "", 0),
            Controls {
                cgen: 3,
                ..Controls::default()
            }
        );
        let shadow = |v: &str| {
            Controls::from_redis_value(Value::Array(vec![
                Value::Int(0),
                bulk(""),
                Value::Int(0),
                bulk(""),
                Value::Int(0),
                Value::Int(1),
                bulk(v),
            ]))
            .unwrap()
            .shadow
        };
        assert_eq!(
            (shadow("1"), shadow("0"), shadow(""), shadow("yes")),
            (Some(true), Some(false), None, None)
        );
    }

    #[test]
    fn claimed_alerts_decode() {
        let a = ClaimedAlert::from_redis_value(Value::Array(vec![
            Value::Int(9),
            bulk("opened"),
            bulk("closed"),
            Value::Int(5),
            Value::Int(1),
        ]))
        .unwrap();
        assert_eq!(
            a,
            ClaimedAlert {
                generation: 9,
                kind: Some(AlertKind::Opened),
                from: Some(State::Closed),
                failures: 5,
                enforcing: true,
            }
        );
        let a = ClaimedAlert::from_redis_value(Value::Array(vec![
            Value::Int(9),
            bulk("paged"),
            bulk(""),
            Value::Int(0),
            Value::Int(0),
        ]))
        .unwrap();
        assert_eq!((a.kind, a.from, a.enforcing), (None, None, false));
    }
}
