//! [`Admin`]: a connection to the fleet's Redis and the operations on it.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use breaker_runtime::redis::{
    self as protocol, BreakerKeys, Conn, ConnectOptions, ControlChange, Force, Keys, PREFIX_RULE,
    Pushed, RaiseHw, ReadControls, ScriptCall, TargetError, WriteControl, hostname,
    is_connection_error, is_valid_prefix, redact,
};
use breaker_runtime::{ENV_REDIS_CLUSTER, ENV_REDIS_URL, Fault, Forced, check_name, check_notice};
use futures_util::{Stream, StreamExt as _};
use redis::Script;

use crate::SEEN_WITHIN_MS;
use crate::error::AdminError;
use crate::model::{AuditEntry, BreakerStatus, Controls, ControlsChange, FleetEvent, WatchItem};
use crate::text::format_ms;

/// How long connecting may take, and how long a request may wait for its answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads everything `status` shows of one breaker in one round trip, on Redis's clock (see the
/// file for its KEYS, ARGV and reply).
const SNAPSHOT: &str = include_str!("snapshot.lua");

/// Where the fleet's Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// One Redis: `redis://[user:password@]host:port[/db]` (or `rediss://` with the `tls`
    /// feature).
    Single(String),
    /// A Redis Cluster, by some of its nodes' URLs.
    Cluster(Vec<String>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a password.
        write!(f, "Target({})", self.display())
    }
}

impl Target {
    /// `BREAKER_REDIS_CLUSTER` (comma-separated node URLs), else `BREAKER_REDIS_URL`: the
    /// runtime's order.
    ///
    /// # Errors
    /// [`AdminError::NoTarget`] when neither is set.
    pub fn from_env() -> Result<Target, AdminError> {
        // The same order as the runtime's: a cluster, when configured, wins.
        if let Ok(nodes) = std::env::var(ENV_REDIS_CLUSTER) {
            let t = Target::cluster(&nodes);
            if !matches!(&t, Target::Cluster(n) if n.is_empty()) {
                return Ok(t);
            }
        }
        if let Ok(url) = std::env::var(ENV_REDIS_URL)
            && !url.trim().is_empty()
        {
            return Ok(Target::Single(url.trim().to_owned()));
        }
        Err(AdminError::NoTarget)
    }

    /// A cluster from comma-separated node URLs.
    #[must_use]
    pub fn cluster(nodes: &str) -> Target {
        Target::Cluster(
            nodes
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// The URL(s), without passwords: what messages may show.
    #[must_use]
    pub fn display(&self) -> String {
        match self {
            Target::Single(u) => redact(u),
            Target::Cluster(nodes) => redact(&format!("cluster {}", nodes.join(","))),
        }
    }
}

/// The operator's handle on a fleet: cheap to clone, usable from many tasks at once.
#[derive(Clone)]
pub struct Admin {
    target: Target,
    /// The same Redis, as the runtime reaches it (for subscribing).
    endpoint: protocol::Target,
    keys: Keys,
    who: String,
    conn: Conn,
    snapshot: Script,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("target", &self.target)
            .field("prefix", &self.keys.prefix())
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

/// The live messages of [`Admin::watch`]. An item that cannot be understood is an `Err` and the
/// stream goes on; the stream ends when the subscription is lost.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchItem, AdminError>> + Send>>;

/// `$USER@host` (or `$LOGNAME@host`, or `unknown@host`; the host from
/// `/proc/sys/kernel/hostname` or `$HOSTNAME`, left out when neither is known).
#[must_use]
pub fn default_who() -> String {
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let user = nonempty(std::env::var("USER").ok())
        .or_else(|| nonempty(std::env::var("LOGNAME").ok()))
        .unwrap_or_else(|| "unknown".to_owned());
    match hostname() {
        Some(h) => format!("{user}@{h}"),
        None => user,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Admin {
    /// Connects (within about 2 s) to `target`, for breakers under `prefix`. Runs `PING` so an
    /// unreachable Redis or a wrong password is reported here.
    ///
    /// # Errors
    /// [`AdminError::BadTarget`] for a malformed URL or prefix, [`AdminError::Unreachable`] when
    /// Redis does not answer, [`AdminError::Redis`] when it refuses (e.g. authentication).
    pub async fn connect(target: Target, prefix: &str) -> Result<Admin, AdminError> {
        if !is_valid_prefix(prefix) {
            return Err(AdminError::BadTarget(format!(
                "the key prefix `{prefix}` {PREFIX_RULE}"
            )));
        }
        let shown = target.display();
        let unreachable = |detail: String| AdminError::Unreachable {
            target: shown.clone(),
            detail: redact(&detail),
        };
        let endpoint = match &target {
            Target::Single(url) => protocol::Target::single(url),
            Target::Cluster(nodes) => protocol::Target::cluster(nodes),
        }
        .map_err(|e| {
            AdminError::BadTarget(match e {
                TargetError::TlsNotEnabled => {
                    format!("`{shown}` is a TLS URL: build breakerctl with the `tls` feature")
                }
                TargetError::NoNodes => format!("{ENV_REDIS_CLUSTER} lists no node"),
                TargetError::NotAUrl(detail) => {
                    format!("`{shown}` is not a usable Redis URL: {detail}")
                }
                e => format!("`{shown}`: {e}"),
            })
        })?
        .with_options(
            ConnectOptions::new()
                .connect_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                .cluster_retries(1),
        );
        let mut conn = tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_millis(500),
            endpoint.connect(),
        )
        .await
        .map_err(|_| {
            unreachable(format!(
                "no answer within {}",
                format_ms(ms(CONNECT_TIMEOUT))
            ))
        })?
        .map_err(|e| unreachable(e.to_string()))?;
        let admin_target = target.clone();
        let pong = tokio::time::timeout(
            RESPONSE_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| unreachable("PING went unanswered".to_owned()))?;
        pong.map_err(|e| error_from(&admin_target, &e))?;
        Ok(Admin {
            target,
            endpoint,
            keys: Keys::new(prefix),
            who: default_who(),
            conn,
            snapshot: Script::new(SNAPSHOT),
        })
    }

    /// Names the actor in audit entries (default: [`default_who`]), e.g. `admin-web@host` or
    /// the signed-in user of a web console.
    #[must_use]
    pub fn with_who(mut self, who: impl Into<String>) -> Admin {
        self.who = who.into();
        self
    }

    /// Who audit entries name.
    #[must_use]
    pub fn who(&self) -> &str {
        &self.who
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Where Redis is, without passwords.
    #[must_use]
    pub fn target(&self) -> &Target {
        &self.target
    }

    fn err(&self, e: &redis::RedisError) -> AdminError {
        error_from(&self.target, e)
    }

    /// Every reported breaker (`<prefix>:breakers`) with its fallback (`None` for none).
    ///
    /// # Errors
    /// Redis unreachable or refusing.
    pub async fn known(&self) -> Result<Vec<(String, Option<String>)>, AdminError> {
        let mut conn = self.conn.clone();
        let map: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.breakers())
            .query_async(&mut conn)
            .await
            .map_err(|e| self.err(&e))?;
        let mut v: Vec<_> = map
            .into_iter()
            .map(|(n, f)| (n, (!f.is_empty()).then_some(f)))
            .collect();
        v.sort();
        Ok(v)
    }

    /// Every reported breaker's status, sorted by name.
    ///
    /// # Errors
    /// Redis unreachable or refusing, or malformed data under a breaker's keys.
    pub async fn list(&self) -> Result<Vec<BreakerStatus>, AdminError> {
        let mut out = Vec::new();
        for (name, fallback) in self.known().await? {
            out.push(self.read_status(&name, true, fallback).await?);
        }
        Ok(out)
    }

    /// One breaker's status.
    ///
    /// # Errors
    /// [`AdminError::UnknownBreaker`] (with the nearest known name) when no instance has
    /// reported it; Redis errors.
    pub async fn status(&self, name: &str) -> Result<BreakerStatus, AdminError> {
        let fallback = self.check_known(name, false, false).await?;
        self.read_status(name, true, fallback.flatten()).await
    }

    /// Whether `name` is reported: its fallback if so, an error with a suggestion if not (or
    /// `None` when `force_unknown`).
    async fn check_known(
        &self,
        name: &str,
        force_unknown: bool,
        forceable: bool,
    ) -> Result<Option<Option<String>>, AdminError> {
        let mut conn = self.conn.clone();
        let fallback: Option<String> = redis::cmd("HGET")
            .arg(self.keys.breakers())
            .arg(name)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.err(&e))?;
        match fallback {
            Some(f) => Ok(Some((!f.is_empty()).then_some(f))),
            // An instance could never have this name: its keys would not share a hash tag.
            None if force_unknown => match check_name(name) {
                Ok(()) => Ok(None),
                Err(e) => Err(AdminError::Invalid(format!(
                    "the breaker name `{name}` {e}"
                ))),
            },
            None => {
                let names: Vec<String> = self.known().await?.into_iter().map(|(n, _)| n).collect();
                Err(AdminError::UnknownBreaker {
                    name: name.to_owned(),
                    suggestion: suggest(name, &names),
                    forceable,
                })
            }
        }
    }

    async fn read_status(
        &self,
        name: &str,
        known: bool,
        fallback: Option<String>,
    ) -> Result<BreakerStatus, AdminError> {
        let mut conn = self.conn.clone();
        let keys = self.keys.breaker(name);
        let mut inv = self.snapshot.prepare_invoke();
        inv.key(&keys.state)
            .key(&keys.window)
            .key(&keys.instances)
            .key(&keys.failing)
            .arg(SEEN_WITHIN_MS);
        #[allow(clippy::type_complexity)]
        let (now, s, w, pttl, mut instances, q): (
            u64,
            Vec<String>,
            Vec<String>,
            i64,
            Vec<String>,
            Vec<String>,
        ) = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.err(&e))?;
        let s = pairs(s);
        let get = |f: &str| s.get(f).map(String::as_str).unwrap_or_default();
        let num = |f: &str| -> Result<u64, AdminError> {
            let v = get(f);
            if v.is_empty() {
                return Ok(0);
            }
            v.parse::<u64>()
                .or_else(|_| v.parse::<f64>().map(|x| x.max(0.0) as u64))
                .map_err(|_| {
                    AdminError::Malformed(format!(
                        "field `{f}` of {} is `{v}`, not a number",
                        keys.state
                    ))
                })
        };
        let state = match get("state") {
            "" => "closed",
            st @ ("closed" | "open" | "half_open") => st,
            other => {
                return Err(AdminError::Malformed(format!(
                    "field `state` of {} is `{other}`",
                    keys.state
                )));
            }
        };
        let open_until = num("open_until")?;
        let open_ms_left = if state == "open" {
            open_until.saturating_sub(now)
        } else {
            0
        };
        let forced = match get("forced") {
            "" => None,
            f @ ("open" | "closed") => Some(f.to_owned()),
            other => {
                return Err(AdminError::Malformed(format!(
                    "field `forced` of {} is `{other}`",
                    keys.state
                )));
            }
        };
        // As READ_CONTROLS reads them: an expired fault or notice is none.
        let until =
            |text: &str, until_field: &str| -> Result<(Option<String>, Option<u64>), AdminError> {
                if text.is_empty() {
                    return Ok((None, None));
                }
                match num(until_field)? {
                    0 => Ok((Some(text.to_owned()), None)),
                    u if u <= now => Ok((None, None)),
                    u => Ok((Some(text.to_owned()), Some(u - now))),
                }
            };
        let (fault, fault_ms_left) = until(get("fault"), "fault_until")?;
        let (notice, notice_ms_left) = until(get("notice"), "notice_until")?;
        // `RECORD` records the bucket length; older data only has the window's time to live.
        let bucket_ms = get("bucket_ms").parse::<u64>().ok().filter(|b| *b > 0);
        let (window_failures, window_calls) = window_counts(&pairs(w), now, pttl, bucket_ms);
        instances.sort();
        // As `RECORD` counts them: an instance whose last failure is in the window's 8 buckets.
        let mut failing_instances: Vec<String> = match bucket_ms {
            Some(b) => pairs(q)
                .into_iter()
                .filter(|(_, v)| {
                    v.parse::<u64>()
                        .is_ok_and(|bucket| bucket <= now / b && bucket + 8 > now / b)
                })
                .map(|(k, _)| k)
                .collect(),
            None => Vec::new(),
        };
        failing_instances.sort();
        Ok(BreakerStatus {
            name: name.to_owned(),
            known,
            fallback,
            state: state.to_owned(),
            probe_due: state == "open" && forced.is_none() && open_until <= now,
            generation: num("gen")?,
            opens: num("opens")?,
            open_ms_left,
            forced,
            window_failures,
            window_calls,
            controls: Controls {
                swapped: get("swapped") == "1",
                fault,
                fault_ms_left,
                notice,
                notice_ms_left,
                cgen: num("cgen")?,
                shadow: shadow_field(get("shadow")),
            },
            instances,
            failing_instances,
            redis_time_ms: now,
        })
    }

    /// Forces a breaker `open` or `closed` for the whole fleet, or clears the forced mode (and
    /// the swap) with `None`, through the runtime's `FORCE` script. Returns the state after.
    ///
    /// # Errors
    /// [`AdminError::UnknownBreaker`] unless `force_unknown`; [`AdminError::Invalid`] for an
    /// unknown name that breaks the attribute's rule (`check_name`: no spaces, `{` or `}`...);
    /// Redis errors.
    pub async fn force(
        &self,
        name: &str,
        forced: Option<Forced>,
        force_unknown: bool,
    ) -> Result<BreakerStatus, AdminError> {
        let known = self.check_known(name, force_unknown, true).await?;
        let (command, detail) = match forced {
            Some(Forced::Open) => ("open", "forced open"),
            Some(Forced::Closed) => ("close", "forced closed"),
            None => ("reset", "forced mode and swap cleared"),
            Some(other) => {
                return Err(AdminError::Invalid(format!(
                    "forced mode {other:?} is not supported by this version"
                )));
            }
        };
        let mut conn = self.conn.clone();
        let reply = Force {
            keys: &self.keys.breaker(name),
            forced,
            channel: self.keys.events(),
            name,
            seen_generation: 0,
        }
        .invoke(&mut conn)
        .await
        .map_err(|e| self.err(&e))?;
        // Instances that miss the change's message learn of it from the fleet's marker.
        RaiseHw {
            marker: self.keys.fleet(),
            generation: reply.generation,
        }
        .invoke(&mut conn)
        .await
        .map_err(|e| self.err(&e))?;
        self.audit_push(command, name, detail, known.is_none())
            .await?;
        self.read_status(name, known.is_some(), known.flatten())
            .await
    }

    /// Toggles the swap of a breaker (calls go straight to its fallback, or back). Returns the
    /// state after: `controls.swapped` says which it is now.
    ///
    /// # Errors
    /// [`AdminError::NoFallback`] for a breaker reported without a fallback;
    /// [`AdminError::UnknownBreaker`] unless `force_unknown`; [`AdminError::Invalid`] for an
    /// unknown name that breaks the attribute's rule (`check_name`: no spaces, `{` or `}`...);
    /// Redis errors.
    pub async fn swap(&self, name: &str, force_unknown: bool) -> Result<BreakerStatus, AdminError> {
        let known = self.check_known(name, force_unknown, true).await?;
        if let Some(None) = known {
            return Err(AdminError::NoFallback(name.to_owned()));
        }
        let controls = self
            .write_control(name, ControlChange::ToggleSwap, 0)
            .await?;
        let detail = match (&known, controls.swapped) {
            (Some(Some(f)), true) => format!("swapped: calls go to `{f}`"),
            (_, true) => "swapped: calls go to the fallback".to_owned(),
            (_, false) => "unswapped: calls go to the breaker's function".to_owned(),
        };
        self.audit_push("swap", name, &detail, known.is_none())
            .await?;
        self.read_status(name, known.is_some(), known.flatten())
            .await
    }

    /// Sets the operator's mode of a breaker for the whole fleet: `Some(true)` shadow (every
    /// call runs: none is rejected or sent to the fallback, all are counted, transitions and
    /// alerts happen), `Some(false)` enforce, `None` to delete the field (each instance goes
    /// back to the `mode` it declares). Written with the runtime's `WRITE_CONTROL` (op
    /// `shadow`: bumps `cgen` and publishes on the controls channel, so every instance applies
    /// it at once) and audited as `shadow`. Returns the state after: `controls.shadow`.
    ///
    /// An operator's force-open wins over shadow (a breaker forced OPEN rejects even in shadow
    /// mode), and a swap is dormant in shadow: `forced` and `controls.swapped` of the reply say
    /// whether either applies.
    ///
    /// # Errors
    /// [`AdminError::UnknownBreaker`] unless `force_unknown`; [`AdminError::Invalid`] for an
    /// unknown name that breaks the attribute's rule (`check_name`: no spaces, `{` or `}`...);
    /// Redis errors.
    pub async fn shadow(
        &self,
        name: &str,
        mode: Option<bool>,
        force_unknown: bool,
    ) -> Result<BreakerStatus, AdminError> {
        let known = self.check_known(name, force_unknown, true).await?;
        self.write_control(name, ControlChange::Shadow(mode), 0)
            .await?;
        // The words the runtime's own audit entry uses (`Handle::set_shadow`).
        let detail = match mode {
            Some(true) => "shadow",
            Some(false) => "enforce",
            None => "declared mode",
        };
        self.audit_push("shadow", name, detail, known.is_none())
            .await?;
        self.read_status(name, known.is_some(), known.flatten())
            .await
    }

    /// Injects `fault` into every instance's calls of a breaker for `duration`
    /// (`Duration::ZERO`: until cleared), or clears the fault with `None`.
    ///
    /// # Errors
    /// [`AdminError::UnknownBreaker`] unless `force_unknown`; [`AdminError::Invalid`] for an
    /// unknown name that breaks the attribute's rule (`check_name`: no spaces, `{` or `}`...);
    /// Redis errors.
    pub async fn inject(
        &self,
        name: &str,
        fault: Option<Fault>,
        duration: Duration,
        force_unknown: bool,
    ) -> Result<BreakerStatus, AdminError> {
        let known = self.check_known(name, force_unknown, true).await?;
        let (value, for_ms, detail) = match fault {
            Some(f) => {
                let value = f.to_string();
                let detail = match ms(duration) {
                    0 => format!("{value} until cleared"),
                    n => format!("{value} for {}", format_ms(n)),
                };
                (value, ms(duration), detail)
            }
            None => (String::new(), 0, "fault cleared".to_owned()),
        };
        self.write_control(name, ControlChange::Fault(&value), for_ms)
            .await?;
        self.audit_push("inject", name, &detail, known.is_none())
            .await?;
        self.read_status(name, known.is_some(), known.flatten())
            .await
    }

    /// Posts a notice (shown to users while the breaker is affected) for `duration` (`None`:
    /// until cleared), or clears it with `None`.
    ///
    /// # Errors
    /// [`AdminError::Invalid`] for an empty text, or one `breaker_runtime::check_notice`
    /// refuses (longer than `MAX_NOTICE_CHARS`, a control or bidirectional character);
    /// [`AdminError::UnknownBreaker`] unless `force_unknown`; Redis errors.
    pub async fn notice(
        &self,
        name: &str,
        text: Option<&str>,
        duration: Option<Duration>,
        force_unknown: bool,
    ) -> Result<BreakerStatus, AdminError> {
        if text.is_some_and(|t| t.trim().is_empty()) {
            return Err(AdminError::Invalid(
                "a notice needs some text (use --clear to remove one)".to_owned(),
            ));
        }
        if let Some(t) = text {
            check_notice(t).map_err(|e| AdminError::Invalid(e.to_string()))?;
        }
        let known = self.check_known(name, force_unknown, true).await?;
        let for_ms = duration.map_or(0, ms);
        let detail = match (text, for_ms) {
            (None, _) => "notice cleared".to_owned(),
            (Some(t), 0) => format!("{t:?} until cleared"),
            (Some(t), n) => format!("{t:?} for {}", format_ms(n)),
        };
        self.write_control(
            name,
            ControlChange::Notice(text.unwrap_or_default()),
            for_ms,
        )
        .await?;
        self.audit_push("notice", name, &detail, known.is_none())
            .await?;
        self.read_status(name, known.is_some(), known.flatten())
            .await
    }

    async fn write_control(
        &self,
        name: &str,
        change: ControlChange<'_>,
        for_ms: u64,
    ) -> Result<Controls, AdminError> {
        let mut conn = self.conn.clone();
        let reply = WriteControl {
            keys: &self.keys.breaker(name),
            change,
            for_ms,
            channel: self.keys.controls(),
            name,
        }
        .invoke(&mut conn)
        .await
        .map_err(|e| self.err(&e))?;
        Ok(reply.into())
    }

    /// A breaker's controls, read with the runtime's `READ_CONTROLS` script.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn controls(&self, name: &str) -> Result<Controls, AdminError> {
        read_controls(self.conn.clone(), &self.keys.breaker(name), &self.target).await
    }

    async fn audit_push(
        &self,
        command: &str,
        name: &str,
        detail: &str,
        unknown: bool,
    ) -> Result<(), AdminError> {
        let detail = if unknown {
            format!("{detail} (never reported by an instance; forced)")
        } else {
            detail.to_owned()
        };
        let mut conn = self.conn.clone();
        protocol::AuditEntry::now(&self.who, command, name, &detail)
            .push(&mut conn, &self.keys)
            .await
            .map_err(|e| self.err(&e))
    }

    /// The last `limit` audit entries, newest first. An entry that is not valid JSON of the
    /// contract's shape is an `Err` item (with its text); the others are still returned.
    ///
    /// # Errors
    /// Redis errors.
    pub async fn audit(&self, limit: usize) -> Result<Vec<Result<AuditEntry, String>>, AdminError> {
        let mut conn = self.conn.clone();
        let entries = protocol::AuditEntry::read(&mut conn, &self.keys, limit)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(entries
            .into_iter()
            .map(|e| e.map(AuditEntry::from))
            .collect())
    }

    /// Subscribes to `<prefix>:events` and `<prefix>:controls`; the subscription is active
    /// when this returns. Control messages come with the controls read back
    /// (`READ_CONTROLS`).
    ///
    /// # Errors
    /// Redis unreachable or refusing the subscription.
    pub async fn watch(&self) -> Result<WatchStream, AdminError> {
        let events = self.keys.events().to_owned();
        let subscribed = tokio::time::timeout(
            CONNECT_TIMEOUT * 2,
            self.endpoint.subscribe(&[&events, self.keys.controls()]),
        )
        .await
        .map_err(|_| AdminError::Unreachable {
            target: self.target.display(),
            detail: "SUBSCRIBE went unanswered".to_owned(),
        })?
        .map_err(|e| self.err(&e))?;
        let raw = subscribed.filter_map(|pushed| async move {
            match pushed {
                Pushed::Message { channel, payload } => Some((channel, payload)),
                _ => None,
            }
        });
        let conn = self.conn.clone();
        let target = self.target.clone();
        let keys = self.keys.clone();
        Ok(Box::pin(raw.then(move |(channel, payload)| {
            let (conn, target, keys, events) =
                (conn.clone(), target.clone(), keys.clone(), events.clone());
            async move {
                let at_ms = unix_ms();
                if channel == events {
                    FleetEvent::parse(&payload, at_ms)
                        .map(WatchItem::Event)
                        .ok_or_else(|| AdminError::Malformed(format!("event message `{payload}`")))
                } else {
                    let controls = read_controls(conn, &keys.breaker(&payload), &target).await?;
                    Ok(WatchItem::Controls(ControlsChange {
                        at_ms,
                        breaker: payload,
                        controls,
                    }))
                }
            }
        })))
    }
}

async fn read_controls(
    mut conn: Conn,
    keys: &BreakerKeys,
    target: &Target,
) -> Result<Controls, AdminError> {
    let reply = ReadControls { keys }
        .invoke(&mut conn)
        .await
        .map_err(|e| error_from(target, &e))?;
    Ok(reply.into())
}

fn error_from(target: &Target, e: &redis::RedisError) -> AdminError {
    let detail = redact(&e.to_string());
    if is_connection_error(e) {
        AdminError::Unreachable {
            target: target.display(),
            detail,
        }
    } else {
        AdminError::Redis(detail)
    }
}

/// The state hash's `shadow` field as the instances read it (`READ_CONTROLS`): `1` shadow, `0`
/// enforce, anything else (absent included) no operator's mode.
fn shadow_field(v: &str) -> Option<bool> {
    match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

/// A flat `HGETALL` reply as a map.
fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut m = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        m.insert(k, v);
    }
    m
}

/// The fleet window's failures and calls: fields `<bucket>:f` / `<bucket>:t`, bucket =
/// floor(ms / (window / 8)); only buckets newer than current − 8 count.
///
/// The window's length is not stored, but `RECORD` sets the hash to expire 9 buckets after each
/// write, so the newest bucket `b` and the time to live give the bucket length:
/// `now + pttl = t + 9·len` with `t`, the time of the last write, in `[b·len, (b+1)·len)`, so
/// `len ≈ (now + pttl) / (b + 9.5)`, to within half a bucket's worth of `now / len`. Without a
/// time to live every bucket counts.
fn window_counts(
    w: &HashMap<String, String>,
    now: u64,
    pttl: i64,
    bucket_ms: Option<u64>,
) -> (u64, u64) {
    let parsed: Vec<(u64, bool, u64)> = w
        .iter()
        .filter_map(|(k, v)| {
            let (b, kind) = k.split_once(':')?;
            let b = b.parse::<u64>().ok()?;
            let n = v.parse::<u64>().ok()?;
            match kind {
                "f" => Some((b, true, n)),
                "t" => Some((b, false, n)),
                _ => None,
            }
        })
        .collect();
    let Some(newest) = parsed.iter().map(|p| p.0).max() else {
        return (0, 0);
    };
    let oldest_counted = match u64::try_from(pttl) {
        _ if bucket_ms.is_some() => (now / bucket_ms.unwrap_or(1)).saturating_sub(7),
        Ok(ttl) if ttl > 0 => {
            let len = (now + ttl) as f64 / (newest as f64 + 9.5);
            if len >= 1.0 {
                let current = (now as f64 / len).floor() as u64;
                current.saturating_sub(7)
            } else {
                0
            }
        }
        _ => 0,
    };
    parsed
        .iter()
        .filter(|p| p.0 >= oldest_counted)
        .fold(
            (0, 0),
            |(f, t), &(_, is_f, n)| {
                if is_f { (f + n, t) } else { (f, t + n) }
            },
        )
}

/// The known name nearest to `name`: one whose last `::` segment is `name`, else the smallest
/// edit distance (ties: the larger Jaro-Winkler similarity, then alphabetical).
#[must_use]
pub(crate) fn suggest(name: &str, known: &[String]) -> Option<String> {
    if let Some(k) = known.iter().find(|k| k.rsplit("::").next() == Some(name)) {
        return Some(k.clone());
    }
    known
        .iter()
        .min_by(|a, b| {
            let key = |k: &String| {
                (
                    strsim::levenshtein(name, k),
                    std::cmp::Reverse((strsim::jaro_winkler(name, k) * 1e6) as i64),
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.cmp(b))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(fields: &[(String, u64)]) -> HashMap<String, String> {
        fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }

    #[test]
    fn window_counts_only_live_buckets() {
        // 1 s buckets (an 8 s window), last written just now.
        let now = 1_748_781_296_400;
        let cur = now / 1000;
        let fields = w(&[
            (format!("{cur}:f"), 2),
            (format!("{cur}:t"), 5),
            (format!("{}:f", cur - 7), 1),
            (format!("{}:t", cur - 7), 1),
            (format!("{}:f", cur - 8), 4),
            (format!("{}:t", cur - 8), 4),
        ]);
        assert_eq!(window_counts(&fields, now, 9000, None), (3, 6));
        // 5 s later nothing new was written: the TTL went down, more buckets are out.
        assert_eq!(window_counts(&fields, now + 5000, 4000, None), (2, 5));
        // No TTL: everything counts.
        assert_eq!(window_counts(&fields, now, -1, None), (7, 10));
        assert_eq!(window_counts(&HashMap::new(), now, -2, None), (0, 0));
    }

    #[test]
    fn suggestions_prefer_the_last_segment_then_edit_distance() {
        let known = [
            "app::providers::daum".to_owned(),
            "juso".to_owned(),
            "kakao".to_owned(),
        ];
        assert_eq!(
            suggest("daum", &known).as_deref(),
            Some("app::providers::daum")
        );
        assert_eq!(suggest("jsuo", &known).as_deref(), Some("juso"));
        assert_eq!(suggest("kakoa", &known).as_deref(), Some("kakao"));
        assert_eq!(suggest("x", &[]), None);
    }
}
