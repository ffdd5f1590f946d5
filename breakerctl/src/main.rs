//! `breakerctl`: the operator's command line for Redis-backed breakers. See `breakerctl --help`.

use std::borrow::Cow;
use std::process::ExitCode;
use std::time::Duration;

use breakerctl::{
    Admin, AdminError, AuditEntry, BreakerStatus, Controls, Fault, Forced, Target, WatchItem,
    format_ms, format_unix_ms,
};
use clap::{Parser, Subcommand};
use futures_util::StreamExt as _;

/// Operate the circuit breakers a fleet shares through Redis.
#[derive(Debug, Parser)]
#[command(name = "breakerctl", version, about, long_about = None)]
struct Cli {
    /// Redis URL, `redis://[user:password@]host:port[/db]` (several, comma-separated: a
    /// cluster). Default: the nodes in $BREAKER_REDIS_CLUSTER, else $BREAKER_REDIS_URL
    #[arg(long, global = true, value_name = "URL")]
    redis: Option<String>,
    /// Key prefix. Default: $BREAKER_KEY_PREFIX, else `breaker`
    #[arg(long, global = true, value_name = "P")]
    prefix: Option<String>,
    /// Machine-readable output (JSON; one object per line for `watch`)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every breaker an instance has reported, with its fleet state and controls
    List,
    /// One breaker in detail
    Status {
        /// The breaker's name
        name: String,
    },
    /// Force a breaker OPEN on every instance (calls rejected; the fallback serves)
    Open(Target1),
    /// Force a breaker CLOSED on every instance (calls run whatever fails; it never trips)
    Close(Target1),
    /// Clear the forced mode (and the swap): back to CLOSED with cleared counts
    Reset(Target1),
    /// Toggle the swap: calls go straight to the fallback, or back to the function
    Swap(Target1),
    /// Switch shadow mode on every instance: `on` (every call runs, none is rejected or sent to
    /// the fallback; all are counted, transitions and alerts happen), `off` (enforce), or
    /// `default` (no operator's mode: each instance's declared `mode`)
    Shadow {
        /// The breaker's name
        name: String,
        /// `on` (shadow), `off` (enforce) or `default` (each instance's declared mode)
        #[arg(value_name = "MODE", value_enum)]
        mode: ShadowMode,
        /// Act even if no instance has reported this breaker
        #[arg(long)]
        force: bool,
    },
    /// Inject a fault into every instance's calls (QA), or clear it
    Inject {
        /// The breaker's name
        name: String,
        /// `error`, `error:P` (0 < P <= 1), `delay:D` (e.g. `delay:2s`), `timeout` or `open`
        #[arg(
            value_name = "FAULT",
            value_parser = parse_fault,
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        fault: Option<Fault>,
        /// How long the fault lasts (`30s`, `10m`, `2h`)
        #[arg(
            long = "for",
            value_name = "D",
            value_parser = parse_duration,
            default_value = "10m",
            conflicts_with = "clear"
        )]
        duration: Duration,
        /// Remove the fault
        #[arg(long)]
        clear: bool,
        /// Act even if no instance has reported this breaker
        #[arg(long)]
        force: bool,
    },
    /// Post a notice shown to users while the breaker is affected, or clear it
    Notice {
        /// The breaker's name
        name: String,
        /// The notice
        #[arg(
            value_name = "TEXT",
            value_parser = parse_text,
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        text: Option<String>,
        /// How long the notice stays (default: until cleared)
        #[arg(long = "for", value_name = "D", value_parser = parse_duration, conflicts_with = "clear")]
        duration: Option<Duration>,
        /// Remove the notice
        #[arg(long)]
        clear: bool,
        /// Act even if no instance has reported this breaker
        #[arg(long)]
        force: bool,
    },
    /// Print every state and control change live, until interrupted
    Watch,
    /// The latest operator actions, newest first
    Audit {
        /// How many entries
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
    },
}

/// The name of the breaker a state-changing command acts on.
#[derive(Debug, clap::Args)]
struct Target1 {
    /// The breaker's name
    name: String,
    /// Act even if no instance has reported this breaker
    #[arg(long)]
    force: bool,
}

/// The operator's mode `shadow` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ShadowMode {
    /// Shadow: every call runs (none rejected, no fallback), everything is counted
    On,
    /// Enforce: the breaker rejects and falls back as usual
    Off,
    /// No operator's mode: each instance's declared `mode`
    Default,
}

impl ShadowMode {
    /// The `shadow` field it writes: `1`, `0`, or none.
    fn field(self) -> Option<bool> {
        match self {
            ShadowMode::On => Some(true),
            ShadowMode::Off => Some(false),
            ShadowMode::Default => None,
        }
    }
}

fn parse_fault(s: &str) -> Result<Fault, String> {
    s.parse::<Fault>().map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    breaker_runtime::parse_duration(s)
}

fn parse_text(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("a notice needs some text (use --clear to remove one)".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

/// A field that came from Redis or from another program (a name, a notice, an audit entry, an
/// instance id, an error's text), as it may reach a terminal: control characters (newlines
/// included) and bidirectional controls written out as `\u{1b}`. Every printed field goes
/// through it; `out` and `err` check whole lines once more.
fn esc(text: &str) -> Cow<'_, str> {
    breaker_runtime::escape_controls(text)
}

/// `text` for the terminal: each line escaped as [`esc`] does, the line breaks kept. What this
/// program formats itself has no control characters but its newlines, so a control character
/// in the output can only come from data: never printed as it is.
fn terminal(text: &str) -> String {
    text.split('\n').map(esc).collect::<Vec<_>>().join("\n")
}

/// Prints `text` (whole lines) on stdout, escaped.
fn out(text: &str) {
    print!("{}", terminal(text));
}

/// Prints one line on stderr, escaped.
fn err(line: &str) {
    eprintln!("{}", terminal(line));
}

/// JSON with every character `esc` would escape written as a JSON escape: `serde_json` escapes
/// the C0 controls in strings but leaves DEL, the C1 controls (U+009B is a one-character CSI to
/// some terminals) and the bidirectional controls raw. Those can only appear inside strings, so
/// the document means the same; the newlines of pretty-printing are its own.
fn json_safe(json: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| c != '\n' && breaker_runtime::is_unsafe_char(c);
    if !json.contains(unsafe_char) {
        return Cow::Borrowed(json);
    }
    let mut safe = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_char(c) {
            // All of them are in the Basic Multilingual Plane: one `\uXXXX` each.
            safe.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            safe.push(c);
        }
    }
    Cow::Owned(safe)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            err(&format!(
                "breakerctl: error: cannot start the async runtime: {e}"
            ));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err(&format!("breakerctl: error: {e}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), AdminError> {
    let target = match cli.redis {
        Some(url) if url.contains(',') => Target::cluster(&url),
        Some(url) => Target::Single(url),
        None => Target::from_env()?,
    };
    let prefix = cli
        .prefix
        .or_else(|| {
            std::env::var(breaker_runtime::ENV_KEY_PREFIX)
                .ok()
                .filter(|p| !p.is_empty())
        })
        .unwrap_or_else(|| breaker_runtime::redis::DEFAULT_KEY_PREFIX.to_owned());
    let admin = Admin::connect(target, &prefix).await?;
    let json = cli.json;
    match cli.command {
        Command::List => {
            let all = admin.list().await?;
            if json {
                print_json(&all);
            } else if all.is_empty() {
                out(&format!(
                    "no breaker has been reported under the prefix `{prefix}`\n"
                ));
            } else {
                out(&list_table(&all));
            }
        }
        Command::Status { name } => {
            let s = admin.status(&name).await?;
            if json {
                print_json(&s);
            } else {
                out(&status_block(&s));
            }
        }
        Command::Open(t) => {
            let s = admin.force(&t.name, Some(Forced::Open), t.force).await?;
            changed(json, &s, "forced OPEN on every instance");
        }
        Command::Close(t) => {
            let s = admin.force(&t.name, Some(Forced::Closed), t.force).await?;
            changed(json, &s, "forced CLOSED on every instance");
        }
        Command::Reset(t) => {
            let s = admin.force(&t.name, None, t.force).await?;
            changed(
                json,
                &s,
                "forced mode cleared: CLOSED with cleared counts, not swapped",
            );
        }
        Command::Swap(t) => {
            let s = admin.swap(&t.name, t.force).await?;
            let what = match (&s.fallback, s.controls.swapped) {
                (Some(f), true) => format!("swapped: calls go to the fallback `{}`", esc(f)),
                (None, true) => "swapped: calls go to the fallback".to_owned(),
                (_, false) => "not swapped: calls go to the breaker's function".to_owned(),
            };
            changed(json, &s, &what);
        }
        Command::Shadow { name, mode, force } => {
            let s = admin.shadow(&name, mode.field(), force).await?;
            let what = match s.controls.shadow {
                Some(true) => {
                    "shadow mode on every instance: calls always run (none rejected or \
                               sent to the fallback), counted as usual"
                }
                Some(false) => "enforce mode on every instance: the breaker rejects and falls back",
                None => "no operator's mode: each instance is back to its declared mode",
            };
            changed(json, &s, what);
            for note in shadow_notes(&s) {
                err(&format!("breakerctl: note: {note}"));
            }
        }
        Command::Inject {
            name,
            fault,
            duration,
            clear: _,
            force,
        } => {
            let s = admin.inject(&name, fault, duration, force).await?;
            let what = match fault {
                Some(f) => format!("fault `{f}` injected for {}", format_ms(ms(duration))),
                None => "fault cleared".to_owned(),
            };
            changed(json, &s, &what);
        }
        Command::Notice {
            name,
            text,
            duration,
            clear: _,
            force,
        } => {
            let s = admin
                .notice(&name, text.as_deref(), duration, force)
                .await?;
            let what = match (text.is_some(), duration) {
                (false, _) => "notice cleared".to_owned(),
                (true, Some(d)) => format!("notice posted for {}", format_ms(ms(d))),
                (true, None) => "notice posted until cleared".to_owned(),
            };
            changed(json, &s, &what);
        }
        Command::Watch => watch(&admin, json).await?,
        Command::Audit { limit } => {
            let entries = admin.audit(limit).await?;
            if json {
                let v: Vec<serde_json::Value> = entries
                    .iter()
                    .map(|e| match e {
                        Ok(e) => serde_json::to_value(e).unwrap_or_default(),
                        Err(raw) => serde_json::json!({ "unreadable": raw }),
                    })
                    .collect();
                print_json(&v);
            } else if entries.is_empty() {
                out(&format!(
                    "no operator action recorded under the prefix `{prefix}`\n"
                ));
            } else {
                out(&audit_table(&entries));
            }
        }
    }
    Ok(())
}

/// What an operator who just switched shadow on should know: a force-open wins over shadow,
/// and a swap is dormant in it. One line each, on stderr (`--json` output stays JSON).
fn shadow_notes(s: &BreakerStatus) -> Vec<String> {
    if s.controls.shadow != Some(true) {
        return Vec::new();
    }
    let name = esc(&s.name);
    let mut notes = Vec::new();
    if s.forced.as_deref() == Some("open") {
        notes.push(format!(
            "`{name}` is forced OPEN, and a forced-open breaker rejects calls even in shadow \
             mode (`breakerctl reset {name}` lets them run)"
        ));
    }
    if s.controls.swapped {
        notes.push(format!(
            "`{name}` is swapped: the swap is dormant in shadow mode (calls go to the function \
             first) and comes back with `shadow {name} off`"
        ));
    }
    notes
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{}", json_safe(&s)),
        Err(e) => err(&format!("breakerctl: error: cannot encode JSON: {e}")),
    }
}

/// After a change: what was done, then the breaker as it is now.
fn changed(json: bool, s: &BreakerStatus, what: &str) {
    if json {
        print_json(s);
    } else {
        out(&format!("{}: {what}\n\n", esc(&s.name)));
        out(&status_block(s));
    }
}

async fn watch(admin: &Admin, json: bool) -> Result<(), AdminError> {
    let mut stream = admin.watch().await?;
    err(&format!(
        "watching {p}:events and {p}:controls on {} (Ctrl-C to stop)",
        admin.target().display(),
        p = admin.prefix()
    ));
    while let Some(item) = stream.next().await {
        match item {
            Ok(item) if json => match serde_json::to_string(&item) {
                Ok(line) => println!("{}", json_safe(&line)),
                Err(e) => err(&format!("breakerctl: warning: cannot encode JSON: {e}")),
            },
            Ok(item) => out(&format!("{}\n", watch_line(&item))),
            Err(e) => err(&format!("breakerctl: warning: {e}")),
        }
    }
    Err(AdminError::Unreachable {
        target: admin.target().display(),
        detail: "the subscription was lost".to_owned(),
    })
}

fn watch_line(item: &WatchItem) -> String {
    match item {
        WatchItem::Event(e) => {
            let mut line = format!(
                "{}  {}  {}",
                format_unix_ms(e.at_ms),
                esc(&e.breaker),
                esc(&e.state.to_uppercase())
            );
            if e.open_ms_left > 0 {
                line += &format!(" ({} left)", format_ms(e.open_ms_left));
            }
            line += &format!("  gen {}", e.generation);
            if let Some(f) = &e.forced {
                line += &format!("  forced {}", esc(f));
            }
            if let Some(a) = &e.alert {
                line += &format!("  alert {}", esc(a));
            }
            line
        }
        WatchItem::Controls(c) => format!(
            "{}  {}  controls  {}",
            format_unix_ms(c.at_ms),
            esc(&c.breaker),
            controls_inline(&c.controls)
        ),
    }
}

fn left(ms_left: Option<u64>) -> String {
    match ms_left {
        Some(ms) => format!("{} left", format_ms(ms)),
        None => "until cleared".to_owned(),
    }
}

/// The operator's mode as `status` shows it.
fn mode_text(c: &Controls) -> &'static str {
    match c.shadow {
        Some(true) => "shadow (set by an operator: no call is rejected or sent to the fallback)",
        Some(false) => "enforce (set by an operator)",
        None => "declared (no operator's mode: each instance's `mode`)",
    }
}

/// The operator's mode in one word: `shadow`, `enforce`, or `declared` when none is set.
fn mode_word(c: &Controls) -> &'static str {
    match c.shadow {
        Some(true) => "shadow",
        Some(false) => "enforce",
        None => "declared",
    }
}

fn controls_inline(c: &Controls) -> String {
    let swapped = if c.swapped { "swapped" } else { "not swapped" };
    let fault = match &c.fault {
        Some(f) => format!("fault {} ({})", esc(f), left(c.fault_ms_left)),
        None => "no fault".to_owned(),
    };
    let notice = match &c.notice {
        Some(n) => format!("notice {} ({})", quoted(n), left(c.notice_ms_left)),
        None => "no notice".to_owned(),
    };
    format!("{swapped}, {fault}, {notice}, mode {}", mode_word(c))
}

/// A notice, in quotes, escaped.
fn quoted(text: &str) -> String {
    format!("\"{}\"", esc(text))
}

fn state_text(s: &BreakerStatus) -> String {
    let mut t = esc(&s.state).to_uppercase();
    if s.open_ms_left > 0 {
        t += &format!(" ({} left)", format_ms(s.open_ms_left));
    } else if s.probe_due {
        t += " (probe due)";
    }
    t
}

fn status_block(s: &BreakerStatus) -> String {
    let mut rows: Vec<(&str, String)> = vec![("breaker", esc(&s.name).into_owned())];
    rows.push(("state", state_text(s)));
    rows.push((
        "forced",
        s.forced
            .as_deref()
            .map_or_else(|| "no".to_owned(), |f| esc(f).into_owned()),
    ));
    rows.push((
        "fallback",
        match (&s.fallback, s.known) {
            (Some(f), _) => esc(f).into_owned(),
            (None, true) => "none".to_owned(),
            (None, false) => "unknown (no instance has reported this breaker)".to_owned(),
        },
    ));
    rows.push((
        "window",
        format!(
            "{} failures / {} calls (fleet)",
            s.window_failures, s.window_calls
        ),
    ));
    rows.push(("gen", s.generation.to_string()));
    rows.push(("opens", s.opens.to_string()));
    rows.push((
        "swapped",
        if s.controls.swapped { "yes" } else { "no" }.to_owned(),
    ));
    rows.push(("mode", mode_text(&s.controls).to_owned()));
    rows.push((
        "fault",
        match &s.controls.fault {
            Some(f) => format!("{} ({})", esc(f), left(s.controls.fault_ms_left)),
            None => "none".to_owned(),
        },
    ));
    rows.push((
        "notice",
        match &s.controls.notice {
            Some(n) => format!("{} ({})", quoted(n), left(s.controls.notice_ms_left)),
            None => "none".to_owned(),
        },
    ));
    rows.push((
        "instances",
        if s.instances.is_empty() {
            "none seen in the last 3 minutes".to_owned()
        } else {
            format!(
                "{} seen in the last 3 minutes: {}",
                s.instances.len(),
                esc(&s.instances.join(", "))
            )
        },
    ));
    rows.push((
        "failing",
        if s.failing_instances.is_empty() {
            "no instance reported failures in the window".to_owned()
        } else {
            format!(
                "{} instance(s) reported failures in the window (quorum counts these): {}",
                s.failing_instances.len(),
                esc(&s.failing_instances.join(", "))
            )
        },
    ));
    let mut out = String::new();
    for (k, v) in rows {
        out += &format!("{k:<10} {v}\n");
    }
    out
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn list_table(all: &[BreakerStatus]) -> String {
    let header = [
        "BREAKER",
        "STATE",
        "FAILS/CALLS",
        "FORCED",
        "SWAPPED",
        "MODE",
        "FAULT",
        "NOTICE",
        "SEEN",
    ];
    let rows: Vec<[String; 9]> = all
        .iter()
        .map(|s| {
            [
                esc(&s.name).into_owned(),
                state_text(s),
                format!("{}/{}", s.window_failures, s.window_calls),
                s.forced
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |f| esc(f).into_owned()),
                if s.controls.swapped { "yes" } else { "no" }.to_owned(),
                match s.controls.shadow {
                    Some(true) => "shadow",
                    Some(false) => "enforce",
                    None => "-",
                }
                .to_owned(),
                match &s.controls.fault {
                    Some(f) => match s.controls.fault_ms_left {
                        Some(ms) => format!("{} ({})", esc(f), format_ms(ms)),
                        None => esc(f).into_owned(),
                    },
                    None => "-".to_owned(),
                },
                match &s.controls.notice {
                    Some(n) => short(&quoted(n), 32),
                    None => "-".to_owned(),
                },
                s.instances.len().to_string(),
            ]
        })
        .collect();
    table(&header, &rows)
}

fn audit_table(entries: &[Result<AuditEntry, String>]) -> String {
    let header = ["AT (UTC)", "WHO", "COMMAND", "BREAKER", "DETAIL"];
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| match e {
            Ok(e) => [
                format_unix_ms(e.at_ms),
                esc(&e.who).into_owned(),
                esc(&e.command).into_owned(),
                esc(&e.breaker).into_owned(),
                esc(&e.detail).into_owned(),
            ],
            Err(raw) => [
                "?".to_owned(),
                "?".to_owned(),
                "?".to_owned(),
                "?".to_owned(),
                format!("unreadable entry: {}", short(&esc(raw), 80)),
            ],
        })
        .collect();
    table(&header, &rows)
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out += c;
            } else {
                out += &format!("{c:<w$}  ", w = widths[i]);
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}
