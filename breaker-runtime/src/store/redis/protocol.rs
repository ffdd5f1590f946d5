//! What the instances and the operators' tools write to Redis and read from it, as data: the
//! keys and channels, the events channel's message, the audit log's entry, and [`redact`] for
//! anything that may quote a Redis URL. No I/O here (the rest of the folder does that).

use std::time::Duration;

use crate::core::config::HASH_TAG_CHARS;
use crate::core::machine::{FleetState, Forced, State};
use crate::notify::AlertKind;

/// The key prefix when none is configured (`BREAKER_KEY_PREFIX`).
pub const DEFAULT_KEY_PREFIX: &str = "breaker";

/// How many entries the audit log (`<prefix>:audit`) keeps: every writer trims it to this.
pub const AUDIT_KEEP: usize = 1000;

/// What [`is_valid_prefix`] asks of a key prefix, as error messages say it.
pub const PREFIX_RULE: &str = "must be non-empty, without spaces, control characters, `{` or `}` \
                               (a brace would move the Redis Cluster hash tag of the breakers' \
                               keys, `<prefix>:{<name>}:s`)";

/// Whether `prefix` can prefix keys ([`PREFIX_RULE`]): non-empty, without whitespace or control
/// characters (a key with a space is not one Redis's tools can name), and without `{` or `}`:
/// a breaker's keys are `<prefix>:{<name>}:…`, and Redis Cluster hashes the first `{…}` of a
/// key, so a brace in the prefix would split a breaker's keys over slots (`a{}`) or put every
/// breaker in one slot (`{a}`).
///
/// ```
/// use breaker_runtime::redis::is_valid_prefix;
/// assert!(is_valid_prefix("myapp"));
/// assert!(!is_valid_prefix(""));
/// assert!(!is_valid_prefix("my app"));
/// assert!(!is_valid_prefix("my{app}"));
/// ```
#[must_use]
pub fn is_valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && !prefix
            .contains(|c: char| c.is_whitespace() || c.is_control() || HASH_TAG_CHARS.contains(&c))
}

/// Every key and channel of one fleet (one key prefix): what its instances and the operators'
/// tools share.
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | [`events`](Keys::events) `<prefix>:events` | channel | every state change, a [`Message`] |
/// | [`controls`](Keys::controls) `<prefix>:controls` | channel | the name of a breaker whose controls changed |
/// | [`fleet`](Keys::fleet) `<prefix>:fleet` | hash | `inc` (an incarnation id) and `hw` (the highest generation written): how an instance learns that Redis lost data or that it missed a message |
/// | [`store_reset`](Keys::store_reset) `<prefix>:store_reset` | string, 60 s | the one `store_reset` alert of the minute (`name:gen`) |
/// | [`audit`](Keys::audit) `<prefix>:audit` | list | [`AuditEntry`]s, newest first, the last [`AUDIT_KEEP`] |
/// | [`breakers`](Keys::breakers) `<prefix>:breakers` | hash | every breaker an instance reported → its fallback (empty: none) |
/// | [`breaker`](Keys::breaker) `<prefix>:{name}:*` | | one breaker's keys: [`BreakerKeys`] |
///
/// ```
/// use breaker_runtime::redis::Keys;
/// let keys = Keys::new("myapp");
/// assert_eq!(keys.events(), "myapp:events");
/// assert_eq!(keys.breaker("daum").state, "myapp:{daum}:s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    events: String,
    controls: String,
    fleet: String,
    store_reset: String,
    audit: String,
    breakers: String,
}

impl Keys {
    /// The keys under `prefix` (see [`is_valid_prefix`]).
    #[must_use]
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            events: format!("{prefix}:events"),
            controls: format!("{prefix}:controls"),
            fleet: format!("{prefix}:fleet"),
            store_reset: format!("{prefix}:store_reset"),
            audit: format!("{prefix}:audit"),
            breakers: format!("{prefix}:breakers"),
        }
    }

    /// The prefix.
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("myapp").prefix(), "myapp");
    /// ```
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:events`: the channel of state changes, each a [`Message`].
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").events(), "p:events");
    /// ```
    #[must_use]
    pub fn events(&self) -> &str {
        &self.events
    }

    /// `<prefix>:controls`: the channel of control changes (swap, fault, notice); each message
    /// is a breaker's name, whose controls are read back with `ReadControls`.
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").controls(), "p:controls");
    /// ```
    #[must_use]
    pub fn controls(&self) -> &str {
        &self.controls
    }

    /// `<prefix>:fleet`: the fleet's marker, a hash of `inc` (an incarnation id, set when
    /// missing) and `hw` (the highest generation any instance wrote, raised by `RaiseHw`).
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").fleet(), "p:fleet");
    /// ```
    #[must_use]
    pub fn fleet(&self) -> &str {
        &self.fleet
    }

    /// `<prefix>:store_reset`: which breaker's `store_reset` alert speaks for the fleet this
    /// minute (`SET NX PX 60000` of `name:gen`).
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").store_reset(), "p:store_reset");
    /// ```
    #[must_use]
    pub fn store_reset(&self) -> &str {
        &self.store_reset
    }

    /// `<prefix>:audit`: the operators' audit log, a list of [`AuditEntry`] (JSON), newest
    /// first, the last [`AUDIT_KEEP`].
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").audit(), "p:audit");
    /// ```
    #[must_use]
    pub fn audit(&self) -> &str {
        &self.audit
    }

    /// `<prefix>:breakers`: every breaker an instance reported (a hash field per name), with
    /// its fallback as written in the attribute (empty: none).
    ///
    /// ```
    /// assert_eq!(breaker_runtime::redis::Keys::new("p").breakers(), "p:breakers");
    /// ```
    #[must_use]
    pub fn breakers(&self) -> &str {
        &self.breakers
    }

    /// The keys of the breaker `name`.
    ///
    /// ```
    /// let k = breaker_runtime::redis::Keys::new("p").breaker("daum");
    /// assert_eq!(k.window, "p:{daum}:w");
    /// ```
    #[must_use]
    pub fn breaker(&self, name: &str) -> BreakerKeys {
        BreakerKeys::new(&self.prefix, name)
    }
}

/// The keys of one breaker. They share the hash tag `{name}`, so on a Redis Cluster they live
/// in one slot and every script on them is single-slot.
///
/// ```
/// use breaker_runtime::redis::BreakerKeys;
/// let k = BreakerKeys::new("myapp", "daum");
/// assert_eq!(
///     [k.state, k.window, k.probes, k.failing, k.instances],
///     ["myapp:{daum}:s", "myapp:{daum}:w", "myapp:{daum}:p", "myapp:{daum}:q", "myapp:{daum}:i"]
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerKeys {
    /// `<prefix>:{name}:s`, a hash: the fleet's state (`state`, `gen`, `open_until`, `forced`,
    /// `opens`, `reset_gen`, `probe_ok`, `bucket_ms`), the alert queue (`alerts`: generations,
    /// oldest first; `a:<gen>`: `kind|from|failures|claimed until|claimer`), `chain_failed`,
    /// and the controls (`swapped`, `fault`, `fault_until`, `notice`, `notice_until`, `cgen`).
    pub state: String,
    /// `<prefix>:{name}:w`, a hash: the fleet's window, `<bucket>:f` (failures) and
    /// `<bucket>:t` (calls) per eighth of the window (`bucket` = Redis ms / `bucket_ms`).
    pub window: String,
    /// `<prefix>:{name}:p`, a sorted set: HALF_OPEN probe leases, token by expiry.
    pub probes: String,
    /// `<prefix>:{name}:q`, a hash: instances with failures in the window → the bucket of
    /// their last failure (what `quorum` counts).
    pub failing: String,
    /// `<prefix>:{name}:i`, a sorted set: instance ids by the Redis time of their last
    /// `RECORD`.
    pub instances: String,
}

impl BreakerKeys {
    /// The keys of `name` under `prefix`.
    #[must_use]
    pub fn new(prefix: &str, name: &str) -> BreakerKeys {
        let key = |kind: &str| format!("{prefix}:{{{name}}}:{kind}");
        BreakerKeys {
            state: key("s"),
            window: key("w"),
            probes: key("p"),
            failing: key("q"),
            instances: key("i"),
        }
    }
}

/// A message on the events channel ([`Keys::events`]): a breaker's new fleet state, published
/// by the script that made the change.
///
/// Its text is `name|state|gen|remaining_ms|forced|opens|alert|op`: the name may itself
/// contain `|` (the fields are read from the right); `state` is `closed`, `open` or
/// `half_open`; `forced` `open`, `closed` or empty; `alert` `opened`, `recovered`,
/// `store_reset` or empty; `op` `reset` or empty. The previous version's seven fields (no `op`)
/// are read too, so a fleet can be upgraded one instance at a time.
///
/// ```
/// use breaker_runtime::redis::Message;
/// use breaker_runtime::{AlertKind, State};
/// let m = Message::decode("svc|daum|open|42|800||1|opened|").unwrap();
/// assert_eq!((m.name.as_str(), m.state, m.generation), ("svc|daum", State::Open, 42));
/// assert_eq!(m.alert, Some(AlertKind::Opened));
/// assert_eq!(m.encode(), "svc|daum|open|42|800||1|opened|");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The breaker.
    pub name: String,
    /// Its new state.
    pub state: State,
    /// The generation of the change (they only grow; an instance ignores older news).
    pub generation: u64,
    /// Milliseconds OPEN lasts from the change (0 unless open).
    pub remaining_ms: u64,
    /// The operator's forced state.
    pub forced: Option<Forced>,
    /// Consecutive openings.
    pub opens: u32,
    /// The fleet alert the change raises (one instance claims and sends it), if any.
    pub alert: Option<AlertKind>,
    /// An operator's reset: it ends even an instance's own episode.
    pub reset: bool,
}

impl Message {
    /// The message's text, in the current (eight-field) form.
    #[must_use]
    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}",
            self.name,
            state_str(self.state),
            self.generation,
            self.remaining_ms,
            forced_str(self.forced),
            self.opens,
            self.alert.map_or("", AlertKind::as_str),
            if self.reset { "reset" } else { "" }
        )
    }

    /// Reads a message of either form; `None` for text that is not one (an unknown state or
    /// forced mode, a field that is not a number). An alert or op this version does not know
    /// reads as none.
    #[must_use]
    pub fn decode(payload: &str) -> Option<Message> {
        Self::fields(payload, true).or_else(|| Self::fields(payload, false))
    }

    fn fields(payload: &str, with_op: bool) -> Option<Message> {
        let mut parts = payload.rsplitn(if with_op { 8 } else { 7 }, '|');
        let op = if with_op { parts.next()? } else { "" };
        let alert = parts.next()?;
        let opens = parts.next()?.parse().ok()?;
        let forced = parse_forced(parts.next()?)?;
        let remaining_ms = parts.next()?.parse().ok()?;
        let generation = parts.next()?.parse().ok()?;
        let state = parse_state(parts.next()?)?;
        let name = parts.next()?;
        Some(Message {
            name: name.to_owned(),
            state,
            generation,
            remaining_ms,
            forced,
            opens,
            alert: parse_alert(alert),
            reset: op == "reset",
        })
    }

    /// The fleet's state the message announces.
    ///
    /// ```
    /// use breaker_runtime::redis::Message;
    /// let m = Message::decode("daum|closed|9|0||0||reset").unwrap();
    /// assert!(m.fleet_state().reset);
    /// ```
    #[must_use]
    pub fn fleet_state(&self) -> FleetState {
        FleetState {
            state: self.state,
            forced: self.forced,
            remaining: Duration::from_millis(self.remaining_ms),
            opens_in_row: self.opens,
            reset: self.reset,
        }
    }
}

/// One entry of the audit log ([`Keys::audit`]): an operator's change, made with `breakerctl`
/// (or a front end built on it) or from application code. Stored as one JSON object,
/// `{"at_ms":…,"who":…,"command":…,"breaker":…,"detail":…}`.
///
/// ```
/// use breaker_runtime::redis::AuditEntry;
/// let e = AuditEntry {
///     at_ms: 1_748_781_296_789,
///     who: "ana@ops-1".into(),
///     command: "open".into(),
///     breaker: "daum".into(),
///     detail: "forced open".into(),
/// };
/// assert_eq!(AuditEntry::from_json(&e.to_json()), Some(e));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When (Unix milliseconds, the writer's clock).
    pub at_ms: u64,
    /// Who: `user@host`, `program@host` from application code, or a front end's name for its
    /// user.
    pub who: String,
    /// `open`, `close`, `reset`, `swap`, `inject` or `notice`.
    pub command: String,
    /// The breaker.
    pub breaker: String,
    /// What was done, in words.
    pub detail: String,
}

impl AuditEntry {
    /// An entry made now (this machine's clock).
    ///
    /// ```
    /// let e = breaker_runtime::redis::AuditEntry::now("ana@ops-1", "reset", "daum", "cleared");
    /// assert!(e.at_ms > 0);
    /// ```
    #[must_use]
    pub fn now(who: &str, command: &str, breaker: &str, detail: &str) -> AuditEntry {
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        AuditEntry {
            at_ms,
            who: who.to_owned(),
            command: command.to_owned(),
            breaker: breaker.to_owned(),
            detail: detail.to_owned(),
        }
    }

    /// The entry as stored: one JSON object, fields in the order above.
    #[must_use]
    pub fn to_json(&self) -> String {
        let s = |v: &str| serde_json::Value::from(v).to_string();
        format!(
            r#"{{"at_ms":{},"who":{},"command":{},"breaker":{},"detail":{}}}"#,
            self.at_ms,
            s(&self.who),
            s(&self.command),
            s(&self.breaker),
            s(&self.detail)
        )
    }

    /// Reads a stored entry: a JSON object with the five fields (others are ignored); `None`
    /// for anything else.
    #[must_use]
    pub fn from_json(text: &str) -> Option<AuditEntry> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let s = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        Some(AuditEntry {
            at_ms: v.get("at_ms")?.as_u64()?,
            who: s("who")?,
            command: s("command")?,
            breaker: s("breaker")?,
            detail: s("detail")?,
        })
    }
}

/// Hides the password of every Redis URL in `text` (an URL, a comma-separated list of a
/// cluster's nodes, or a message that quotes them): `redis://user:secret@host` becomes
/// `redis://user:***@host`, `redis://:secret@host` `redis://:***@host`, and a lone userinfo
/// (`redis://secret@host`) `redis://***@host`. A password may contain `@`, `:` or `/`: the
/// userinfo ends at the last `@` before the end of the URL (whitespace, the end of the text,
/// or a `,` that starts the next URL). Text without credentials comes back unchanged.
///
/// ```
/// use breaker_runtime::redis::redact;
/// assert_eq!(redact("redis://:p@ss@host:6379"), "redis://:***@host:6379");
/// assert_eq!(
///     redact("redis://h1:7000,redis://:pw@h2:7001"),
///     "redis://h1:7000,redis://:***@h2:7001"
/// );
/// ```
#[must_use]
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme + 3);
        out.push_str(head);
        let end = url_end(tail);
        let url = &tail[..end];
        match url.rfind('@') {
            Some(at) => {
                let userinfo = &url[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..=colon]);
                        out.push_str("***");
                    }
                    // `redis://secret@host`: a lone userinfo may be a password.
                    None => out.push_str("***"),
                }
                out.push_str(&url[at..]);
            }
            None => out.push_str(url),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where the URL that starts `s` (just after its `://`) ends: at whitespace, at a `,` followed
/// by the next URL's scheme (a cluster's list), or at the end.
fn url_end(s: &str) -> usize {
    let mut from = 0;
    loop {
        let Some(i) = s[from..]
            .find(|c: char| c == ',' || c.is_whitespace())
            .map(|i| i + from)
        else {
            return s.len();
        };
        if !s[i..].starts_with(',') || starts_with_scheme(&s[i + 1..]) {
            return i;
        }
        from = i + 1;
    }
}

/// Whether `s` starts with `scheme://` (a letter, then letters, digits, `+`, `-`, `.`).
fn starts_with_scheme(s: &str) -> bool {
    let Some(colon) = s.find("://") else {
        return false;
    };
    let scheme = &s[..colon];
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// This machine's name (the kernel's, else `/etc/hostname`, else `$HOSTNAME`), if it has a
/// non-empty one: what instance ids and audit entries name.
///
/// ```
/// let host = breaker_runtime::redis::hostname();
/// assert!(host.is_none_or(|h| !h.is_empty() && h.trim() == h));
/// ```
#[must_use]
pub fn hostname() -> Option<String> {
    crate::notify::instance::hostname()
}

/// `closed`, `open`, `half_open`: a state as the scripts write it.
pub(crate) fn state_str(s: State) -> &'static str {
    match s {
        State::Open => "open",
        State::HalfOpen => "half_open",
        _ => "closed",
    }
}

pub(crate) fn parse_state(s: &str) -> Option<State> {
    match s {
        "closed" => Some(State::Closed),
        "open" => Some(State::Open),
        "half_open" => Some(State::HalfOpen),
        _ => None,
    }
}

/// `open`, `closed`, or empty for none.
pub(crate) fn forced_str(f: Option<Forced>) -> &'static str {
    match f {
        Some(Forced::Open) => "open",
        Some(Forced::Closed) => "closed",
        None => "",
    }
}

/// `None` for text that is not a forced mode; `Some(None)` for none.
pub(crate) fn parse_forced(s: &str) -> Option<Option<Forced>> {
    match s {
        "" => Some(None),
        "open" => Some(Some(Forced::Open)),
        "closed" => Some(Some(Forced::Closed)),
        _ => None,
    }
}

/// The fleet alerts the scripts queue.
pub(crate) fn parse_alert(s: &str) -> Option<AlertKind> {
    match s {
        "opened" => Some(AlertKind::Opened),
        "recovered" => Some(AlertKind::Recovered),
        "store_reset" => Some(AlertKind::StoreReset),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_fleet_and_of_a_breaker() {
        let k = Keys::new("app");
        assert_eq!(k.prefix(), "app");
        assert_eq!(
            [
                k.events(),
                k.controls(),
                k.fleet(),
                k.store_reset(),
                k.audit(),
                k.breakers()
            ],
            [
                "app:events",
                "app:controls",
                "app:fleet",
                "app:store_reset",
                "app:audit",
                "app:breakers"
            ]
        );
        let b = k.breaker("svc::daum");
        assert_eq!(b, BreakerKeys::new("app", "svc::daum"));
        assert_eq!(
            [b.state, b.window, b.probes, b.failing, b.instances],
            [
                "app:{svc::daum}:s",
                "app:{svc::daum}:w",
                "app:{svc::daum}:p",
                "app:{svc::daum}:q",
                "app:{svc::daum}:i"
            ]
        );
        assert!(is_valid_prefix("app-1"));
        assert!(!is_valid_prefix(""));
        assert!(!is_valid_prefix("a\tb"));
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        // `a{b` + `:{daum}:s` would hash on `b:{daum`, `a{}` on the whole key (every key of a
        // breaker in another slot), `{x}` on `x` (every breaker in one slot).
        for bad in ["a{b", "a}b", "a{}", "{x}", "}"] {
            assert!(!is_valid_prefix(bad), "{bad}");
        }
        assert!(is_valid_prefix("my.app-1:v2"));
    }

    #[test]
    fn messages_round_trip() {
        let m = Message {
            name: "daum".into(),
            state: State::HalfOpen,
            generation: 1_796_427_146_042,
            remaining_ms: 0,
            forced: Some(Forced::Closed),
            opens: 3,
            alert: Some(AlertKind::StoreReset),
            reset: true,
        };
        assert_eq!(
            m.encode(),
            "daum|half_open|1796427146042|0|closed|3|store_reset|reset"
        );
        assert_eq!(Message::decode(&m.encode()), Some(m));
        let quiet = Message::decode("daum|closed|9|0||0||").unwrap();
        assert_eq!(
            (quiet.forced, quiet.alert, quiet.reset),
            (None, None, false)
        );
        assert_eq!(quiet.encode(), "daum|closed|9|0||0||");
    }

    #[test]
    fn messages_of_the_previous_version_have_seven_fields() {
        let m = Message::decode("daum|closed|7|0|open|0|recovered").unwrap();
        assert_eq!(m.name, "daum");
        assert_eq!((m.state, m.forced), (State::Closed, Some(Forced::Open)));
        assert_eq!((m.alert, m.reset), (Some(AlertKind::Recovered), false));
        // Read as seven fields, `a|b` is the name.
        let m = Message::decode("a|b|closed|7|0|open|0|recovered").unwrap();
        assert_eq!(m.name, "a|b");
        assert_eq!(m.generation, 7);
    }

    #[test]
    fn message_names_may_contain_the_separator() {
        let m = Message::decode("svc|daum|open|1796427146042|800||1|opened|").unwrap();
        assert_eq!(m.name, "svc|daum");
        assert_eq!(
            (m.state, m.generation, m.remaining_ms, m.opens),
            (State::Open, 1_796_427_146_042, 800, 1)
        );
        assert_eq!((m.alert, m.reset), (Some(AlertKind::Opened), false));
        let m = Message::decode("a|b|c|closed|9|0||0||reset").unwrap();
        assert_eq!((m.name.as_str(), m.reset), ("a|b|c", true));
        assert_eq!(Message::decode(&m.encode()), Some(m));
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            "daum|ajar|1|0||0||",
            "daum|closed|x|0||0||",
            "daum|closed|1|0|maybe|0||",
            "closed|8|0||0|",
            "nonsense",
            "",
        ] {
            assert_eq!(Message::decode(bad), None, "{bad}");
        }
        // An alert or op of a later version reads as none.
        let m = Message::decode("daum|open|1|5||1|paged|drained").unwrap();
        assert_eq!((m.alert, m.reset), (None, false));
    }

    #[test]
    fn a_message_is_the_fleet_state_it_announces() {
        let f = Message::decode("daum|open|3|1500|open|2||")
            .unwrap()
            .fleet_state();
        assert_eq!(f.state, State::Open);
        assert_eq!(f.forced, Some(Forced::Open));
        assert_eq!(f.remaining, Duration::from_millis(1500));
        assert_eq!((f.opens_in_row, f.reset), (2, false));
    }

    #[test]
    fn audit_entries_round_trip_whatever_the_text() {
        let e = AuditEntry {
            at_ms: 1_748_781_296_789,
            who: "app@host".into(),
            command: "inject".into(),
            breaker: "주소 검색".into(),
            detail: "a \"quoted\" \\ path\nnew\tline\u{1}".into(),
        };
        assert_eq!(
            e.to_json(),
            r#"{"at_ms":1748781296789,"who":"app@host","command":"inject","breaker":"주소 검색","detail":"a \"quoted\" \\ path\nnew\tline\u0001"}"#
        );
        assert_eq!(AuditEntry::from_json(&e.to_json()), Some(e));
        // Other writers' field order and extra fields are fine.
        let other =
            r#"{ "who": "w", "detail": "d", "breaker": "b", "command": "c", "at_ms": 5, "v": 2 }"#;
        assert_eq!(
            AuditEntry::from_json(other),
            Some(AuditEntry {
                at_ms: 5,
                who: "w".into(),
                command: "c".into(),
                breaker: "b".into(),
                detail: "d".into(),
            })
        );
        for bad in [
            "not json",
            "[]",
            r#"{"at_ms":"5"}"#,
            r#"{"at_ms":5,"who":"w"}"#,
        ] {
            assert_eq!(AuditEntry::from_json(bad), None, "{bad}");
        }
        let now = AuditEntry::now("w", "c", "b", "d");
        assert!(now.at_ms > 1_700_000_000_000);
    }

    #[test]
    fn redact_hides_passwords_with_at_signs() {
        assert_eq!(redact("redis://:p@ss@host:6379"), "redis://:***@host:6379");
        assert_eq!(redact("rediss://user:pa@ss@h:1"), "rediss://user:***@h:1");
        assert_eq!(
            redact("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://secret@h"), "redis://***@h");
        // A password with `/`, `:` or `,` in it.
        assert_eq!(redact("redis://:a/b:c,d@h:1/0"), "redis://:***@h:1/0");
    }

    #[test]
    fn redact_hides_every_password_of_a_cluster_list() {
        assert_eq!(
            redact("redis://h1:7000,redis://:pw@h2:7001"),
            "redis://h1:7000,redis://:***@h2:7001"
        );
        assert_eq!(
            redact("redis://a:x@y@h1:7000,rediss://b:y@h2:7001"),
            "redis://a:***@h1:7000,rediss://b:***@h2:7001"
        );
        assert_eq!(
            redact("cluster redis://:p@h1:1, redis://:q@h2:2"),
            "cluster redis://:***@h1:1, redis://:***@h2:2"
        );
    }

    #[test]
    fn redact_leaves_text_without_passwords_alone() {
        for plain in [
            "redis://127.0.0.1:6379/",
            "redis://h1:7000,redis://h2:7001",
            "plain message",
            "",
            "://",
            "@@:@",
            "redis:/",
        ] {
            assert_eq!(redact(plain), plain);
        }
        // Messages that quote a URL.
        assert_eq!(
            redact("cannot reach redis://u:p@host: refused (user@example)"),
            "cannot reach redis://u:***@host: refused (user@example)"
        );
        // Garbage never panics, and what follows `@` stays.
        assert_eq!(redact("x://@"), "x://***@");
        assert_eq!(redact("redis://:@h"), "redis://:***@h");
        assert_eq!(redact("redis://:x@"), "redis://:***@");
    }
}
