//! `address-search`: the address-search service of a job board, with its two providers behind
//! circuit breakers, a search page and an emergency admin console.
//!
//! ```sh
//! cargo run -p breaker-examples --bin address-search            # http://127.0.0.1:8080
//! cargo run -p breaker-examples --bin address-search -- --port 0 --admin-token "$(openssl rand -hex 16)"
//! cargo run -p breaker-examples --bin address-search -- --request-timeout 5s --search-rate-limit 50/s
//! cargo run -p breaker-examples --bin address-search -- --mock-providers-only
//! ```
//!
//! See the library's documentation (`breaker_examples`) for the routes, and
//! [`breaker_examples::Limits`] for what each limit is for; the README's "Deploying the service"
//! has them all in a table.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use breaker_examples::providers::{MockProvider, Provider};
use breaker_examples::{Config, Limits, MIN_TOKEN_CHARS, RateLimit, start};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The address-search service: search page at `/`, admin console at `/admin`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on (0: a free port)
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// Address to listen on
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// Bearer token of the admin API, at least 16 characters (default: a random one, printed at
    /// startup)
    #[arg(long, env = "BREAKER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Base URL of an external daum-like provider (default: the embedded mock)
    #[arg(long, value_name = "URL")]
    daum_url: Option<String>,
    /// Base URL of an external juso-like provider (default: the embedded mock)
    #[arg(long, value_name = "URL")]
    juso_url: Option<String>,
    /// Bearer token of the mock providers' `/_control` endpoints: the embedded or
    /// `--mock-providers-only` mocks require it, the admin console sends it (default: a random
    /// one)
    #[arg(long, env = "BREAKER_MOCK_TOKEN", hide_env_values = true)]
    mock_control_token: Option<String>,
    /// Run only the two mock providers and print their URLs (for instances that share them)
    #[arg(long, conflicts_with_all = ["daum_url", "juso_url"])]
    mock_providers_only: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

/// The flags of [`Limits`], their defaults taken from `Limits::default()`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Timeouts and limits")]
struct LimitArgs {
    /// How long a client may take to send a request's headers (and an idle connection stays open)
    #[arg(long, value_name = "DURATION", value_parser = Humantime::parse,
          default_value_t = Humantime(Limits::default().header_read_timeout))]
    header_read_timeout: Humantime,
    /// How long a request may take to be answered (503 past it)
    #[arg(long, value_name = "DURATION", value_parser = Humantime::parse,
          default_value_t = Humantime(Limits::default().request_timeout))]
    request_timeout: Humantime,
    /// How long reading a request body may take
    #[arg(long, value_name = "DURATION", value_parser = Humantime::parse,
          default_value_t = Humantime(Limits::default().body_read_timeout))]
    body_read_timeout: Humantime,
    /// Largest request body in bytes (413 over it)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Most connections open at once (more wait to be accepted)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Most connections open at once from one client (more are closed at once)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections_per_client)]
    max_connections_per_client: usize,
    /// Most requests handled at once (more get 503 at once)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Searches per client (peer address), e.g. 20/s or 600/min; 0 for no limit [default: 20/s]
    #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
    search_rate_limit: Option<Rate>,
    /// Searches a client may send at once before its rate applies [default: 40 with the
    /// default rate, else the rate's COUNT]
    #[arg(long, value_name = "N")]
    search_burst: Option<u32>,
    /// Admin API requests per client, whatever their token; 0 for no limit [default: 20/s]
    #[arg(long, value_name = "RATE", value_parser = Rate::parse)]
    admin_rate_limit: Option<Rate>,
    /// Admin API requests a client may send at once before its rate applies [default: 40 with
    /// the default rate, else the rate's COUNT]
    #[arg(long, value_name = "N")]
    admin_burst: Option<u32>,
    /// Failed admin authentications per client before they get 429, e.g. 5/min; 0 for no limit
    #[arg(long, value_name = "RATE", value_parser = Rate::parse,
          default_value_t = Rate(Limits::default().failed_logins))]
    failed_login_limit: Rate,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        let defaults = Limits::default();
        Limits {
            header_read_timeout: self.header_read_timeout.0,
            request_timeout: self.request_timeout.0,
            body_read_timeout: self.body_read_timeout.0,
            max_body_bytes: self.max_body_bytes,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            max_concurrent_requests: self.max_concurrent_requests,
            // A burst flag applies when given; without it, a rate given keeps its own burst
            // (its COUNT: `1/min` is one search a minute, not 40 at once), the default its 40.
            search_rate: rate(
                self.search_rate_limit,
                self.search_burst,
                defaults.search_rate,
            ),
            admin_rate: rate(self.admin_rate_limit, self.admin_burst, defaults.admin_rate),
            failed_logins: self.failed_login_limit.0,
        }
    }
}

/// A duration flag, shown in `--help` as humantime writes it (`5s`).
#[derive(Debug, Clone, Copy)]
struct Humantime(Duration);

impl Humantime {
    fn parse(s: &str) -> Result<Humantime, humantime::DurationError> {
        humantime::parse_duration(s).map(Humantime)
    }
}

impl std::fmt::Display for Humantime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

/// A rate from its flag (or the default when not given) and its burst flag.
fn rate(given: Option<Rate>, burst: Option<u32>, default: Option<RateLimit>) -> Option<RateLimit> {
    let rate = given.map_or(default, |r| r.0)?;
    Some(burst.map_or(rate, |b| rate.with_burst(b)))
}

/// A rate flag: `COUNT/PERIOD`, or `0` / `off` for no limit.
#[derive(Debug, Clone, Copy)]
struct Rate(Option<RateLimit>);

impl Rate {
    fn parse(s: &str) -> Result<Rate, String> {
        RateLimit::parse_setting(s).map(Rate)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // The rate alone: the burst has its own flag.
            Some(r) => RateLimit {
                burst: r.count,
                ..r
            }
            .fmt(f),
            None => f.write_str("0"),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Logs go to stderr; stdout carries the lines scripts read.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let code = if args.mock_providers_only {
        mock_providers_only(args.bind, args.mock_control_token).await
    } else {
        serve(args).await
    };
    // Alerts still queued (webhook, Telegram) are delivered before exit.
    let _ = tokio::task::spawn_blocking(|| {
        breaker_runtime::flush_notifications(Duration::from_secs(2));
    })
    .await;
    code
}

async fn serve(args: Args) -> ExitCode {
    let config = Config {
        bind: args.bind,
        port: args.port,
        admin_token: args.admin_token,
        daum_url: args.daum_url,
        juso_url: args.juso_url,
        mock_control_token: args.mock_control_token,
        limits: args.limits.limits(),
    };
    let running = match start(config).await {
        Ok(r) => r,
        Err(e) => {
            warn(&format!("address-search: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let url = running.url();
    say(&format!("address-search listening on {url}"));
    say(&format!(
        "admin console: {url}/admin (Authorization: Bearer <token>)"
    ));
    say(&format!(
        "providers: daum {} , juso {}",
        running.provider_url(Provider::Daum),
        running.provider_url(Provider::Juso)
    ));
    if running.token_generated() {
        warn(&format!(
            "warning: no admin token given (--admin-token or BREAKER_ADMIN_TOKEN); \
             generated one for this run: {}",
            running.admin_token()
        ));
    }
    shutdown_signal().await;
    warn("address-search: shutting down");
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn mock_providers_only(bind: IpAddr, token: Option<String>) -> ExitCode {
    let token = match token {
        Some(t) if t.trim().chars().count() < MIN_TOKEN_CHARS => {
            warn(&format!(
                "address-search: the mock control token (--mock-control-token / \
                 BREAKER_MOCK_TOKEN) has {} characters; it must have at least {MIN_TOKEN_CHARS}",
                t.trim().chars().count()
            ));
            return ExitCode::FAILURE;
        }
        Some(t) => t,
        None => {
            let t = breaker_examples::generate_token();
            warn(&format!(
                "warning: no mock control token given (--mock-control-token or \
                 BREAKER_MOCK_TOKEN); generated one for this run: {t}"
            ));
            t
        }
    };
    if !bind.is_loopback() {
        warn(&format!(
            "warning: the mock providers listen on {bind}, not only on loopback: anyone who \
             reaches it and has the control token can take them down"
        ));
    }
    let mut mocks = Vec::new();
    for provider in Provider::ALL {
        match MockProvider::start_with_token(provider, bind, &token).await {
            Ok(m) => {
                say(&format!("{provider} {}", m.url()));
                mocks.push(m);
            }
            Err(e) => {
                warn(&format!(
                    "address-search: cannot start the {provider} mock on {bind}: {e}"
                ));
                return ExitCode::FAILURE;
            }
        }
    }
    shutdown_signal().await;
    for m in mocks {
        m.shutdown().await;
    }
    ExitCode::SUCCESS
}

/// One line on stdout, flushed. A closed stdout (a reader that went away) is not a reason to stop
/// serving, so write errors are ignored (`println!` would panic).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One line on stderr; errors ignored, as for [`say`].
fn warn(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_flag_keeps_its_burst_unless_one_is_given() {
        let default = Limits::default().search_rate;
        // No flag: the default, burst 40.
        assert_eq!(rate(None, None, default).map(|r| r.burst), Some(40));
        assert_eq!(rate(None, Some(5), default).map(|r| r.burst), Some(5));
        // A rate given: its COUNT is its burst, unless a burst flag says otherwise.
        let one_a_minute = Rate::parse("1/min").ok();
        assert_eq!(rate(one_a_minute, None, default).map(|r| r.burst), Some(1));
        assert_eq!(
            rate(one_a_minute, Some(3), default).map(|r| r.burst),
            Some(3)
        );
        // Off.
        assert_eq!(rate(Rate::parse("0").ok(), Some(3), default), None);
    }
}
