//! `service-bench`: what the breakers cost the address-search service, as throughput and
//! latency of its search API, against the same handler calling the providers directly.
//!
//! ```sh
//! cargo run --release -p breaker-examples --bin service-bench -- --rounds 6 --seconds 2
//! ```
//!
//! One process: the two mock providers (real HTTP on loopback), two axum servers whose
//! `/api/search` differs only in the search they run — `search::search` (the chain of
//! `#[circuit_breaker]` functions) or `search::search_without_breakers` (the same provider calls
//! in the same order, by hand) — and a closed-loop load generator: `--connections` clients,
//! each sending its next search when the last one is answered. The arms alternate round by round
//! (A, B, A, B...) so that the machine's drift is shared; the report sums each arm's rounds and
//! gives the ratio, and the mean of the round-by-round ratios with a 95 % confidence interval.
//! Everything shares this machine's cores, so the absolute numbers include the generator's and
//! the providers' work; the ratio is the result.
//!
//! `--instructions N` counts instead of timing: the program runs itself under valgrind
//! (cachegrind) with `--count N` and `--count 2N` for each arm and reports the instructions one
//! search costs in each, which the machine's load does not move.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use breaker_examples::providers::{MockProvider, Provider};
use breaker_examples::search::{self, Providers, SearchOutcome};
use clap::Parser;
use serde::Deserialize;

/// Measures the breakers' cost in the service's search API (see the module docs).
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Rounds per arm (each arm runs this many times, alternating).
    #[arg(long, default_value_t = 6)]
    rounds: u32,
    /// Length of one round, in seconds.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Both arms call the providers directly (an A/A run): the difference it reports is the
    /// measurement's own noise, the floor under which the breakers' cost cannot be told.
    #[arg(long)]
    same_arms: bool,
    /// The second arm calls the providers directly but each under `tokio::time::timeout`
    /// (800 ms, the breakers' timeout): the breakers' cost apart from the timers.
    #[arg(long, conflicts_with = "same_arms")]
    direct_with_timeouts: bool,
    /// Counts instructions instead of timing: runs this program under valgrind (cachegrind)
    /// once per arm and search count, and reports the instructions one search costs in each
    /// arm (the difference between a run of `--instructions` searches and one of twice as
    /// many, so start-up and warm-up cancel out). Independent of the machine's load.
    #[arg(long, value_name = "SEARCHES", conflicts_with = "count")]
    instructions: Option<u64>,
    /// Runs exactly this many searches against `--arm` and exits (what `--instructions` runs
    /// under valgrind).
    #[arg(long, value_name = "SEARCHES", requires = "arm")]
    count: Option<u64>,
    /// The arm a `--count` run searches.
    #[arg(long, value_enum)]
    arm: Option<Arm>,
    /// A query (repeatable; the clients cycle through them).
    #[arg(long = "query", default_values_t = ["gangnam".to_owned(), "teheran".to_owned(), "세종대로".to_owned(), "해운대".to_owned()])]
    queries: Vec<String>,
}

/// Which search the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Arm {
    Breakers,
    Direct,
    DirectWithTimeouts,
}

impl Arm {
    fn name(self) -> &'static str {
        match self {
            Arm::Breakers => "with breakers (`search::search`)",
            Arm::Direct => "providers called directly",
            Arm::DirectWithTimeouts => "providers called directly, each under a timeout",
        }
    }
}

#[derive(Clone)]
struct Served {
    providers: Arc<Providers>,
    arm: Arm,
}

#[derive(Deserialize)]
struct Params {
    q: String,
}

async fn api_search(State(s): State<Served>, Query(p): Query<Params>) -> Response {
    let outcome = match s.arm {
        Arm::Breakers => search::search(&s.providers, &p.q).await,
        Arm::Direct => search::search_without_breakers(&s.providers, &p.q).await,
        Arm::DirectWithTimeouts => search::search_with_timeouts_only(&s.providers, &p.q).await,
    };
    match outcome {
        Ok(o) => axum::Json::<SearchOutcome>(o).into_response(),
        Err(refusal) => (StatusCode::BAD_REQUEST, refusal.to_string()).into_response(),
    }
}

/// Serves `arm` on a loopback port; returns its search URL.
async fn serve(providers: &Arc<Providers>, arm: Arm) -> std::io::Result<String> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let url = format!("http://{}/api/search", listener.local_addr()?);
    let router = Router::new()
        .route("/api/search", get(api_search))
        .with_state(Served {
            providers: Arc::clone(providers),
            arm,
        });
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(url)
}

/// What one round (or a sum of rounds) measured.
#[derive(Debug, Default)]
struct Measured {
    latencies_us: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

impl Measured {
    fn add(&mut self, other: Measured) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    fn per_second(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The nearest-rank percentile `p` (0 to 100), in microseconds.
    fn percentile(&mut self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        self.latencies_us.sort_unstable();
        let rank = ((p / 100.0) * self.latencies_us.len() as f64).ceil() as usize;
        self.latencies_us[rank.clamp(1, self.latencies_us.len()) - 1]
    }
}

/// One round: `connections` closed-loop clients for `length`.
async fn round(
    client: &reqwest::Client,
    urls: &Arc<Vec<reqwest::Url>>,
    connections: usize,
    length: Duration,
) -> Measured {
    let started = Instant::now();
    let end = started + length;
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let (client, urls) = (client.clone(), Arc::clone(urls));
        workers.push(tokio::spawn(async move {
            let mut m = Measured::default();
            let mut i = worker;
            while Instant::now() < end {
                let url = urls[i % urls.len()].clone();
                i += 1;
                let sent = Instant::now();
                let ok = match client.get(url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    let us = sent.elapsed().as_micros();
                    m.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                } else {
                    m.errors += 1;
                }
            }
            m
        }));
    }
    let mut total = Measured::default();
    for w in workers {
        if let Ok(m) = w.await {
            total.add(m);
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Exactly `n` searches shared by `connections` closed-loop clients.
async fn counted(
    client: &reqwest::Client,
    urls: &Arc<Vec<reqwest::Url>>,
    connections: usize,
    n: u64,
) -> Measured {
    let left = Arc::new(std::sync::atomic::AtomicU64::new(n));
    let mut workers = Vec::with_capacity(connections);
    for worker in 0..connections {
        let (client, urls, left) = (client.clone(), Arc::clone(urls), Arc::clone(&left));
        workers.push(tokio::spawn(async move {
            let mut m = Measured::default();
            let mut i = worker;
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                .is_ok()
            {
                let url = urls[i % urls.len()].clone();
                i += 1;
                let ok = match client.get(url).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    m.latencies_us.push(0);
                } else {
                    m.errors += 1;
                }
            }
            m
        }));
    }
    let mut total = Measured::default();
    for w in workers {
        match w.await {
            Ok(m) => total.add(m),
            Err(_) => total.errors += 1,
        }
    }
    total
}

/// `--instructions`: this program under cachegrind, `searches` and twice as many searches per
/// arm; prints the instructions per search of each arm and their ratio.
fn count_instructions(args: &Args, searches: u64) -> Result<(), String> {
    if searches == 0 {
        return Err("--instructions must be at least 1".to_owned());
    }
    let me = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let second = if args.direct_with_timeouts {
        Arm::DirectWithTimeouts
    } else {
        Arm::Direct
    };
    let first = if args.same_arms {
        Arm::Direct
    } else {
        Arm::Breakers
    };
    let mut per_search = Vec::new();
    for arm in [first, second] {
        let mut totals = Vec::new();
        for n in [searches, 2 * searches] {
            let mut cmd = std::process::Command::new("valgrind");
            cmd.args(["--tool=cachegrind", "--cache-sim=no"])
                .arg("--cachegrind-out-file=/dev/null")
                .arg(&me)
                .args(["--count", &n.to_string(), "--arm"])
                .arg(
                    clap::ValueEnum::to_possible_value(&arm)
                        .map_or_else(String::new, |v| v.get_name().to_owned()),
                )
                .args(["--connections", &args.connections.to_string()]);
            for q in &args.queries {
                cmd.args(["--query", q]);
            }
            let out = cmd.output().map_err(|e| {
                format!("cannot run valgrind ({e}); install it: apt-get install -y valgrind")
            })?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                return Err(format!("the run under valgrind failed: {stderr}"));
            }
            let refs = stderr
                .lines()
                .find_map(|l| {
                    // `==pid== I   refs:      1,122,082,121`
                    let mut words = l.split_whitespace().skip(1);
                    if (words.next(), words.next()) != (Some("I"), Some("refs:")) {
                        return None;
                    }
                    words.next()?.replace(',', "").parse::<u64>().ok()
                })
                .ok_or_else(|| format!("no \"I refs\" in valgrind's report: {stderr}"))?;
            totals.push(refs);
        }
        let each = totals[1].saturating_sub(totals[0]) as f64 / searches as f64;
        println!(
            "{}: {} instructions for {searches} searches, {} for {}: {each:.0} per search",
            arm.name(),
            totals[0],
            totals[1],
            2 * searches
        );
        per_search.push(each);
    }
    println!(
        "{}: {:+.3} % instructions per search ({:+.0} per search)",
        if args.same_arms {
            "noise (A/A: both arms direct)"
        } else {
            "breakers' cost"
        },
        (per_search[0] / per_search[1] - 1.0) * 100.0,
        per_search[0] - per_search[1]
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.rounds == 0 || args.seconds == 0 || args.connections == 0 || args.queries.is_empty() {
        eprintln!(
            "service-bench: --rounds, --seconds and --connections must be at least 1, with a --query"
        );
        return ExitCode::FAILURE;
    }
    if let Some(searches) = args.instructions {
        return match count_instructions(&args, searches) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("service-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("service-bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("service-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let loopback = std::net::IpAddr::V4(Ipv4Addr::LOCALHOST);
    let token = breaker_examples::generate_token();
    let mut mocks = Vec::new();
    for provider in Provider::ALL {
        mocks.push(
            MockProvider::start_with_token(provider, loopback, &token)
                .await
                .map_err(|e| format!("the {provider} mock: {e}"))?,
        );
    }
    let providers = Arc::new(Providers::new(mocks[0].url(), mocks[1].url())?);
    let first = if let Some(arm) = args.arm {
        arm
    } else if args.same_arms {
        Arm::Direct
    } else {
        Arm::Breakers
    };
    let second = if args.direct_with_timeouts {
        Arm::DirectWithTimeouts
    } else {
        Arm::Direct
    };
    let urls = [
        (first, serve(&providers, first).await),
        (second, serve(&providers, second).await),
    ];
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("an HTTP client: {e}"))?;
    // Each arm's search URLs, one per query.
    let mut searches = Vec::new();
    for (_, url) in &urls {
        let url = url.as_ref().map_err(|e| format!("a server: {e}"))?;
        let per_query = args
            .queries
            .iter()
            .map(|q| reqwest::Url::parse_with_params(url, [("q", q)]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("a search URL: {e}"))?;
        searches.push(Arc::new(per_query));
    }
    if let Some(n) = args.count {
        let m = counted(&client, &searches[0], args.connections, n).await;
        println!(
            "searched: {} answered, {} errors",
            m.latencies_us.len(),
            m.errors
        );
        return if m.errors == 0 {
            Ok(())
        } else {
            Err(format!("{} searches failed", m.errors))
        };
    }
    let length = Duration::from_secs(args.seconds);
    println!(
        "service-bench: {} rounds of {} s per arm, {} closed-loop clients, queries {:?}",
        args.rounds, args.seconds, args.connections, args.queries
    );
    let mut results: Vec<(Arm, Measured)> = Vec::new();
    for ((arm, _), arm_searches) in urls.iter().zip(&searches) {
        // Warm-up: connections, the breakers' first calls, caches.
        let _ = round(
            &client,
            arm_searches,
            args.connections,
            Duration::from_millis(500),
        )
        .await;
        results.push((*arm, Measured::default()));
    }
    // Each round's (throughput, p99) per arm: the two arms of one round ran back to back, so
    // their ratio is free of the machine's slower drift.
    let mut pairs: Vec<[(f64, u32); 2]> = Vec::new();
    for r in 0..args.rounds {
        // Alternate which arm goes first, so neither always follows the other.
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut pair = [(0.0, 0); 2];
        for i in order {
            let mut m = round(&client, &searches[i], args.connections, length).await;
            pair[i] = (m.per_second(), m.percentile(99.0));
            results[i].1.add(m);
        }
        pairs.push(pair);
    }
    println!();
    println!("| arm | searches | errors | searches/s | p50 | p99 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut summary = Vec::new();
    for (arm, m) in &mut results {
        let (p50, p99, rate) = (m.percentile(50.0), m.percentile(99.0), m.per_second());
        println!(
            "| {} | {} | {} | {rate:.0} | {:.2} ms | {:.2} ms |",
            arm.name(),
            m.latencies_us.len(),
            m.errors,
            f64::from(p50) / 1000.0,
            f64::from(p99) / 1000.0
        );
        summary.push((rate, p99));
    }
    let (with, direct) = (summary[0], summary[1]);
    println!();
    println!(
        "{}: throughput {:+.2} %, p99 {:+.2} % (first arm against the second, same run)",
        if args.same_arms {
            "noise (A/A: both arms direct)"
        } else if args.direct_with_timeouts {
            "breakers' cost over timeouts alone"
        } else {
            "breakers' cost"
        },
        (with.0 / direct.0 - 1.0) * 100.0,
        (f64::from(with.1) / f64::from(direct.1).max(1.0) - 1.0) * 100.0
    );
    let throughput: Vec<f64> = pairs.iter().map(|[a, b]| a.0 / b.0.max(1e-9)).collect();
    let p99: Vec<f64> = pairs
        .iter()
        .map(|[a, b]| f64::from(a.1) / f64::from(b.1).max(1.0))
        .collect();
    for (what, ratios) in [("throughput", throughput), ("p99", p99)] {
        match mean_with_interval(&ratios) {
            Some((mean, half)) => println!(
                "paired rounds, {what}: {:+.2} %, 95 % confidence interval [{:+.2} %, {:+.2} %] \
                 ({} rounds)",
                (mean - 1.0) * 100.0,
                (mean - half - 1.0) * 100.0,
                (mean + half - 1.0) * 100.0,
                ratios.len()
            ),
            None => println!("paired rounds, {what}: needs at least 2 rounds"),
        }
    }
    let errors: u64 = results.iter().map(|(_, m)| m.errors).sum();
    if errors > 0 {
        return Err(format!("{errors} searches failed"));
    }
    for m in mocks {
        m.shutdown().await;
    }
    Ok(())
}

/// The mean of `xs` and the half-width of its 95 % confidence interval (Student's t), or `None`
/// for fewer than two values.
fn mean_with_interval(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.len() < 2 {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, t95(xs.len() - 1) * (var / n).sqrt()))
}

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.021,
        61..=120 => 2.000,
        _ => 1.960,
    }
}

#[cfg(test)]
mod tests {
    use super::{mean_with_interval, t95};

    #[test]
    fn interval_of_two_and_of_many() {
        assert_eq!(mean_with_interval(&[1.0]), None);
        // Mean 2, standard deviation sqrt(2), standard error 1: half-width t(1) = 12.706.
        let (mean, half) = mean_with_interval(&[1.0, 3.0]).expect("two values");
        assert!((mean - 2.0).abs() < 1e-12);
        assert!((half - 12.706).abs() < 1e-9);
        // Identical values: no spread.
        assert_eq!(mean_with_interval(&[0.5; 30]).map(|(_, h)| h), Some(0.0));
    }

    #[test]
    fn t_quantiles_fall_towards_the_normal() {
        let qs: Vec<f64> = [1, 2, 10, 30, 31, 60, 61, 120, 121, 10_000]
            .into_iter()
            .map(t95)
            .collect();
        assert!(qs.windows(2).all(|w| w[0] >= w[1]), "{qs:?}");
        assert!((t95(10_000) - 1.96).abs() < 1e-12);
        assert!(t95(0).is_infinite());
    }
}
