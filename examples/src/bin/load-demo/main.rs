//! Load demo of the address-search service: a fleet of two instances sharing one Redis, under
//! steady search traffic, while the primary provider fails.
//!
//! ```sh
//! cargo build --release -p breaker-examples          # builds address-search next to load-demo
//! cargo run --release -p breaker-examples --bin load-demo -- --seconds 30 --rate 400
//! ```
//!
//! What it does:
//!
//! 1. starts its own `redis-server` on a free loopback port (no persistence), one process of
//!    mock providers (`address-search --mock-providers-only`) and two service instances
//!    (`address-search --port 0 --daum-url .. --juso-url ..`) sharing that Redis under a key
//!    prefix of their own; every child is killed by pid at the end, on an error, on a panic and
//!    on Ctrl-C;
//! 2. checks that every query finds addresses at both providers and through both instances;
//! 3. sends searches open-loop at `--rate` per second, alternately to the two instances, for
//!    `--seconds`; at 1/3 of the run the daum provider fails (`POST /_control {"mode":"down"}`),
//!    at 2/3 it comes back (unless `--no-recovery`);
//! 4. meanwhile polls `GET /api/admin/breakers` on both instances every 5 ms and records when
//!    each reports `provider.daum` OPEN (the fleet-wide switch is when both do) and CLOSED again;
//! 5. writes `summary.md` (the table by phase), `requests.csv` (one line per search) and
//!    `latency.svg` (latency over time with the failure and the switch marked) to `--out`.
//!
//! A search is an error seen by a user when the request fails (connection, timeout), the status
//! is not 200, or a 200 carries neither addresses nor a notice. The target is zero: the demo
//! exits non-zero, listing the failing searches, when any user saw an error or when the fleet
//! never switched.
//!
//! The modules: [`processes`] starts and kills the children, [`run`](mod@run) drives the load,
//! the poller and the failure through [`http`], [`report`] judges the run and writes `summary.md`
//! and `requests.csv`, and [`plot`] draws `latency.svg`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use serde_json::Value;

mod http;
mod plot;
mod processes;
mod report;
mod run;

use processes::{Fleet, Processes, free_port, redis_command, unique_suffix};
use report::Report;
use run::run;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The breaker whose switch the demo measures.
const PRIMARY_BREAKER: &str = "provider.daum";

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "load-demo",
    about = "Two address-search instances sharing Redis, under load, while the primary provider fails"
)]
struct Args {
    /// Length of the run in seconds: the primary fails at 1/3 and comes back at 2/3.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Searches per second, sent open-loop (on schedule, whether earlier ones answered or not),
    /// alternately to the two instances.
    #[arg(long, default_value_t = 400)]
    rate: u32,
    /// Most searches in flight at once; a search waiting for a slot counts the wait in its
    /// latency.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Directory for summary.md, requests.csv and latency.svg.
    #[arg(long, default_value = "docs/load")]
    out: PathBuf,
    /// How the primary fails: `down` answers 503 at once; `slow` answers after 1.5 s, past the
    /// breaker's timeout.
    #[arg(long, value_enum, default_value_t = Failure::Down)]
    failure: Failure,
    /// Leave the primary down to the end (no recovery phase).
    #[arg(long)]
    no_recovery: bool,
    /// A query to search for (repeatable; the searches cycle through them). Each must find
    /// addresses in the mock providers' dataset (a province alone does not: juso refuses it as
    /// too broad, E0006).
    #[arg(long = "query", default_values_t = DEFAULT_QUERIES.map(str::to_owned))]
    queries: Vec<String>,
    /// Client timeout of one search in milliseconds (a search that takes longer is an error).
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

/// The queries searched when none is given.
const DEFAULT_QUERIES: [&str; 4] = ["gangnam", "teheran", "세종대로", "해운대"];

/// How the primary provider fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Failure {
    /// HTTP 503 at once.
    Down,
    /// Answers after 1.5 s (the breaker's timeout is shorter).
    Slow,
}

impl Failure {
    /// The body of the `POST /_control` that starts the failure.
    fn control_body(self) -> Value {
        match self {
            Failure::Down => serde_json::json!({ "mode": "down" }),
            Failure::Slow => serde_json::json!({ "mode": "slow", "delay_ms": 1500 }),
        }
    }

    /// How the summary describes it.
    fn describe(self) -> &'static str {
        match self {
            Failure::Down => "`down` (HTTP 503 for every search, at once)",
            Failure::Slow => "`slow` (every search answered after 1.5 s)",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match demo(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("load-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The whole demo. `Ok(false)` when it ran but missed its target (errors seen by users, or no
/// fleet-wide switch).
fn demo(args: &Args) -> Result<bool> {
    if args.seconds < 3 || args.rate == 0 || args.concurrency == 0 || args.queries.is_empty() {
        return Err("--seconds must be at least 3, --rate and --concurrency at least 1, and at least one --query given".into());
    }
    let binary = service_binary()?;
    let work = std::env::temp_dir().join(format!("load-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut procs = Processes::new(work.clone());

    println!(
        "load-demo: starting redis-server, the mock providers and two instances (logs in {})",
        work.display()
    );
    let redis_port = free_port()?;
    let redis = procs.start_redis(redis_port)?;
    // One token for the instances' admin API and the mocks' control endpoints.
    let token = breaker_examples::generate_token();
    let (daum, juso) = procs.start_providers(&binary, &token)?;
    let fleet = Fleet {
        daum,
        juso,
        token,
        redis,
        prefix: format!("load-demo-{}", unique_suffix()),
    };
    let instances = [
        procs.start_instance(&binary, "instance-a", &fleet)?,
        procs.start_instance(&binary, "instance-b", &fleet)?,
    ];
    let prefix = fleet.prefix;
    let setup = Setup {
        daum: fleet.daum,
        juso: fleet.juso,
        instances,
        token: fleet.token,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let measured = runtime.block_on(async {
        tokio::select! {
            r = run(args, &setup) => r,
            _ = tokio::signal::ctrl_c() => Err("interrupted (Ctrl-C)".into()),
        }
    })?;
    drop(runtime);

    // Do the instances really share their breakers through Redis? They register there.
    let registered = redis_command(
        redis_port,
        &format!("ZCARD {prefix}:{{{PRIMARY_BREAKER}}}:i"),
    )
    .and_then(|r| r.strip_prefix(':').and_then(|n| n.parse::<u64>().ok()));
    drop(procs);

    let report = Report::new(args, &setup, measured, registered);
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let summary = report.summary_markdown();
    write_file(&args.out.join("summary.md"), &summary)?;
    write_file(&args.out.join("requests.csv"), &report.requests_csv())?;
    write_file(&args.out.join("latency.svg"), &report.latency_svg()?)?;
    println!("\n{summary}");
    println!(
        "load-demo: wrote {0}/summary.md, {0}/requests.csv and {0}/latency.svg (process logs in {1})",
        args.out.display(),
        work.display()
    );
    Ok(report.verdict())
}

/// The `address-search` binary next to this one.
fn service_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().map_err(|e| format!("cannot locate load-demo itself: {e}"))?;
    let binary = me.with_file_name(format!("address-search{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "{} not found: build the service first with `cargo build --release -p breaker-examples` \
             (`cargo run --bin load-demo` builds only the load demo)",
            binary.display()
        )
        .into())
    }
}

/// The processes the demo started.
#[derive(Debug)]
struct Setup {
    /// Base URL of the daum-like mock provider.
    daum: String,
    /// Base URL of the juso-like mock provider.
    juso: String,
    /// Base URLs of the two service instances.
    instances: [String; 2],
    /// Their admin token, also the mock providers' control token.
    token: String,
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    use breaker_examples::providers::rules::{juso_input_error, juso_too_broad};
    use breaker_examples::providers::{daum_answer, juso_answer};
    use breaker_examples::web::validate_query;

    use super::DEFAULT_QUERIES;

    #[test]
    fn the_default_queries_find_addresses_at_both_providers() {
        for q in DEFAULT_QUERIES {
            assert_eq!(validate_query(Some(q)), Ok(q));
            assert_eq!(
                juso_input_error(q).or_else(|| juso_too_broad(q)),
                None,
                "{q}"
            );
            assert!(!daum_answer(q).documents.is_empty(), "{q}");
            assert!(
                juso_answer(q).results.juso.is_some_and(|j| !j.is_empty()),
                "{q}"
            );
        }
    }
}
