//! `address-search`: the address-search service of a job board, with its two providers behind
//! circuit breakers, a search page and an emergency admin console.
//!
//! ```sh
//! cargo run -p breaker-examples --bin address-search            # http://127.0.0.1:8080
//! cargo run -p breaker-examples --bin address-search -- --port 0 --admin-token s3cret
//! cargo run -p breaker-examples --bin address-search -- --mock-providers-only
//! ```
//!
//! See the library's documentation (`breaker_examples`) for the routes.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use breaker_examples::providers::{MockProvider, Provider};
use breaker_examples::{Config, start};
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
    /// Bearer token of the admin API (default: a random one, printed at startup)
    #[arg(long, env = "BREAKER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Base URL of an external daum-like provider (default: the embedded mock)
    #[arg(long, value_name = "URL")]
    daum_url: Option<String>,
    /// Base URL of an external juso-like provider (default: the embedded mock)
    #[arg(long, value_name = "URL")]
    juso_url: Option<String>,
    /// Run only the two mock providers and print their URLs (for instances that share them)
    #[arg(long, conflicts_with_all = ["daum_url", "juso_url"])]
    mock_providers_only: bool,
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
        mock_providers_only(args.bind).await
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
        limits: breaker_examples::Limits::default(),
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

async fn mock_providers_only(bind: IpAddr) -> ExitCode {
    let mut mocks = Vec::new();
    for provider in Provider::ALL {
        match MockProvider::start(provider, bind).await {
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
