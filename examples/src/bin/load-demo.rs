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

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use reqwest::{Client, Url};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// The breaker whose switch the demo measures.
const PRIMARY_BREAKER: &str = "provider.daum";
/// How often the admin API of each instance is polled.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// Width of a bin in the plot and in the per-bin series.
const BIN_MS: f64 = 100.0;

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
    /// addresses in the mock providers' dataset.
    #[arg(long = "query", default_values_t = ["gangnam".to_owned(), "teheran".to_owned(), "서울".to_owned(), "부산".to_owned()])]
    queries: Vec<String>,
    /// Client timeout of one search in milliseconds (a search that takes longer is an error).
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

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
    let (daum, juso) = procs.start_providers(&binary)?;
    let fleet = Fleet {
        daum,
        juso,
        token: format!("load-demo-{}", unique_suffix()),
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
    write_file(&args.out.join("latency.svg"), &report.latency_svg())?;
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

/// What the instances of the fleet share.
#[derive(Debug)]
struct Fleet {
    /// Base URL of the daum-like mock provider.
    daum: String,
    /// Base URL of the juso-like mock provider.
    juso: String,
    /// The admin token of every instance.
    token: String,
    /// `redis://127.0.0.1:PORT/`.
    redis: String,
    /// `BREAKER_KEY_PREFIX`, unique to the run.
    prefix: String,
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
    /// Their admin token.
    token: String,
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/// The demo's child processes; each is killed by its pid when this is dropped (at the end, on an
/// error, during a panic's unwinding, after Ctrl-C).
#[derive(Debug)]
struct Processes {
    /// Where their logs (and Redis's working directory) go.
    dir: PathBuf,
    /// Name and process, in start order.
    children: Vec<(String, Child)>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Processes {
    fn new(dir: PathBuf) -> Self {
        Processes {
            dir,
            children: Vec::new(),
        }
    }

    /// Starts `command` as `name`, its stderr and stdout appended to `<dir>/<name>.log`; returns
    /// the stdout lines as they come (a thread drains the pipe to the end).
    fn spawn(
        &mut self,
        name: &str,
        mut command: Command,
    ) -> Result<(mpsc::Receiver<String>, PathBuf)> {
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone()?));
        let mut child = command.spawn().map_err(|e| {
            let program = command.get_program().to_string_lossy().into_owned();
            if e.kind() == std::io::ErrorKind::NotFound && program == "redis-server" {
                format!(
                    "cannot start redis-server ({e}): install it with `apt-get install redis-server` \
                     (or `brew install redis`); the demo starts its own on a free port"
                )
            } else {
                format!("cannot start {program} ({name}): {e}")
            }
        })?;
        let stdout = child.stdout.take();
        self.children.push((name.to_owned(), child));
        let stdout = stdout.ok_or_else(|| format!("{name}: no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || drain(stdout, log, &tx));
        Ok((rx, log_path))
    }

    /// `redis-server` on `port`, without persistence; waits until it answers PING.
    fn start_redis(&mut self, port: u16) -> Result<String> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir);
        let (_, log) = self.spawn("redis", command)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while redis_command(port, "PING").as_deref() != Some("+PONG") {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer within 10 s; see {}",
                    log.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(format!("redis://127.0.0.1:{port}/"))
    }

    /// `address-search --mock-providers-only`; returns the daum and juso base URLs it prints.
    fn start_providers(&mut self, binary: &Path) -> Result<(String, String)> {
        let mut command = Command::new(binary);
        command.arg("--mock-providers-only");
        clean_env(&mut command);
        let (lines, log) = self.spawn("providers", command)?;
        let (mut daum, mut juso) = (None, None);
        let found = wait_for_line(&lines, "the mock providers", &log, |line| {
            let line = strip_ansi(line);
            let mut words = line.split_whitespace();
            match (words.next(), url_in(&line)) {
                (Some("daum"), Some(url)) => daum = Some(url),
                (Some("juso"), Some(url)) => juso = Some(url),
                _ => {}
            }
            daum.clone().zip(juso.clone())
        })?;
        Ok(found)
    }

    /// One service instance of `fleet` on a free port; returns its base URL.
    fn start_instance(&mut self, binary: &Path, name: &str, fleet: &Fleet) -> Result<String> {
        let mut command = Command::new(binary);
        command.args([
            "--port",
            "0",
            "--daum-url",
            &fleet.daum,
            "--juso-url",
            &fleet.juso,
        ]);
        clean_env(&mut command);
        // The token through the environment (`--admin-token`'s fallback), not visible in `ps`.
        command
            .env("BREAKER_ADMIN_TOKEN", &fleet.token)
            .env("BREAKER_REDIS_URL", &fleet.redis)
            .env("BREAKER_KEY_PREFIX", &fleet.prefix);
        let (lines, log) = self.spawn(name, command)?;
        wait_for_line(&lines, name, &log, |line| {
            let line = strip_ansi(line);
            if line.contains("listening on") {
                url_in(&line)
            } else {
                None
            }
        })
    }
}

/// Removes the variables that would change the service's behaviour behind the demo's back.
fn clean_env(command: &mut Command) {
    for var in [
        "PORT",
        "BREAKER_ADMIN_TOKEN",
        "BREAKER_REDIS_URL",
        "BREAKER_REDIS_CLUSTER",
        "BREAKER_KEY_PREFIX",
        "BREAKER_OVERRIDES",
        "BREAKER_FAULTS",
        "BREAKER_WEBHOOK_URL",
        "BREAKER_TELEGRAM_TOKEN",
    ] {
        command.env_remove(var);
    }
}

/// Copies a child's stdout to its log and to `tx`, line by line, until the pipe closes.
fn drain(stdout: impl Read, mut log: std::fs::File, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let _ = log.write_all(&buf);
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                // The receiver stops listening once it found its line; keep draining anyway.
                let _ = tx.send(line);
            }
        }
    }
}

/// Waits (30 s at most) until `parse` returns something for the lines read so far.
fn wait_for_line<T>(
    lines: &mpsc::Receiver<String>,
    what: &str,
    log: &Path,
    mut parse: impl FnMut(&str) -> Option<T>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(found) = parse(&line) {
                    return Ok(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(
                    format!("{what} printed no URL within 30 s; see {}", log.display()).into(),
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "{what} exited before printing its URL; see {}",
                    log.display()
                )
                .into());
            }
        }
    }
}

/// The first `http://...` word of a line, without a trailing slash or punctuation.
fn url_in(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let word = line[start..].split_whitespace().next()?;
    Some(
        word.trim_end_matches(['/', ',', ';', ')', '"', '\''])
            .to_owned(),
    )
}

/// A line without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))?;
    Ok(port)
}

/// Sends one inline command to the Redis on `port`; the first line of its reply.
fn redis_command(port: u16, command: &str) -> Option<String> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    (&stream)
        .write_all(format!("{command}\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_owned())
}

/// Distinguishes this run's token and key prefix from any other's.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/// One search as a user experienced it.
#[derive(Debug, Clone)]
struct Sample {
    /// Sequence number (schedule order).
    seq: usize,
    /// Which instance served it (0 or 1).
    instance: usize,
    /// Index into the queries.
    query: usize,
    /// Scheduled start, in ms since the run began.
    start_ms: f64,
    /// Time spent waiting for one of the `--concurrency` slots, in ms.
    wait_ms: f64,
    /// When it was sent (`start_ms + wait_ms`).
    sent_ms: f64,
    /// Scheduled start to the end of the answer, in ms (includes `wait_ms`).
    latency_ms: f64,
    /// HTTP status, `None` when no answer came.
    status: Option<u16>,
    /// The `provider` field of the answer.
    provider: Option<String>,
    /// The `degraded` field.
    degraded: bool,
    /// Whether the answer carried a notice.
    notice: bool,
    /// How many addresses it carried.
    addresses: usize,
    /// What the user saw as an error, if anything.
    error: Option<String>,
}

/// A state of `provider.daum` reported by one instance's admin API, first seen at `at_ms`.
#[derive(Debug, Clone)]
struct StateChange {
    at_ms: f64,
    instance: usize,
    state: String,
}

/// What the poller saw.
#[derive(Debug, Default)]
struct PollLog {
    changes: Vec<StateChange>,
    polls: u64,
    errors: u64,
    last_error: Option<String>,
    slowest_ms: f64,
}

/// The instants the controller changed the primary's mode, in ms since the run began.
#[derive(Debug, Default, Clone, Copy)]
struct ControlTimes {
    /// When the failure was requested (the `POST /_control` was sent).
    fail_ms: Option<f64>,
    /// How long that POST took.
    fail_post_ms: Option<f64>,
    /// When the primary was brought back up.
    up_ms: Option<f64>,
}

/// Everything measured during the run.
#[derive(Debug)]
struct Measured {
    samples: Vec<Sample>,
    poll: PollLog,
    control: ControlTimes,
    end_ms: f64,
}

/// Warm-up checks, then the load with the failure, the poller and the controller together.
async fn run(args: &Args, setup: &Setup) -> Result<Measured> {
    let client = Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(args.timeout_ms))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let instances = [
        parse_url(&setup.instances[0])?,
        parse_url(&setup.instances[1])?,
    ];
    let daum = parse_url(&setup.daum)?;
    let juso = parse_url(&setup.juso)?;

    warm_up(&client, args, setup, &instances, &daum, &juso).await?;

    let total = usize::try_from(args.seconds.saturating_mul(u64::from(args.rate)))
        .map_err(|_| "--seconds × --rate is too large")?;
    let run_for = Duration::from_secs(args.seconds);
    println!(
        "load-demo: {total} searches over {} s at {}/s on {} and {}; daum {} at {} s{}",
        args.seconds,
        args.rate,
        setup.instances[0],
        setup.instances[1],
        if args.failure == Failure::Down {
            "goes down"
        } else {
            "turns slow"
        },
        fmt_s(run_for.as_secs_f64() / 3.0),
        if args.no_recovery {
            String::new()
        } else {
            format!(
                ", back up at {} s",
                fmt_s(run_for.as_secs_f64() * 2.0 / 3.0)
            )
        }
    );

    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = tokio::spawn(poll_breakers(
        client.clone(),
        instances.clone(),
        setup.token.clone(),
        t0,
        Arc::clone(&stop),
    ));
    let controller = tokio::spawn(control(
        client.clone(),
        daum.clone(),
        args.failure,
        t0,
        run_for / 3,
        (!args.no_recovery).then_some(run_for * 2 / 3),
    ));
    let samples = generate(&client, args, &instances, total, t0).await;
    let end_ms = ms_since(t0);
    stop.store(true, Ordering::Relaxed);
    let mut poll = poller
        .await
        .map_err(|e| format!("the poller failed: {e}"))?;
    poll.changes.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let control = controller
        .await
        .map_err(|e| format!("the controller failed: {e}"))??;
    // Leave the providers as they were found.
    let _ = post_control(&client, &daum, &serde_json::json!({ "mode": "up" })).await;
    Ok(Measured {
        samples,
        poll,
        control,
        end_ms,
    })
}

fn parse_url(url: &str) -> Result<Url> {
    Url::parse(url).map_err(|e| format!("bad URL {url:?}: {e}").into())
}

/// Before the run: both providers up, both instances' `provider.daum` CLOSED (which also checks
/// the token), and every query answered with addresses by both providers and both instances.
async fn warm_up(
    client: &Client,
    args: &Args,
    setup: &Setup,
    instances: &[Url; 2],
    daum: &Url,
    juso: &Url,
) -> Result<()> {
    for provider in [daum, juso] {
        post_control(client, provider, &serde_json::json!({ "mode": "up" })).await?;
    }
    for (i, instance) in instances.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match breaker_state(client, instance, &setup.token).await {
                Ok(state) if state == "CLOSED" => break,
                Ok(state) if Instant::now() > deadline => {
                    return Err(format!(
                        "{PRIMARY_BREAKER} on instance {} is {state}, not CLOSED, before the run",
                        name(i)
                    )
                    .into());
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }
    for query in &args.queries {
        let mut url = juso.join("/addrlink/addrLinkApi.do")?;
        url.query_pairs_mut()
            .append_pair("keyword", query)
            .append_pair("resultType", "json")
            .append_pair("confmKey", "demo");
        let body = get_json(client, url).await?;
        let found = body
            .pointer("/results/juso")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if found == 0 {
            return Err(format!("the juso mock finds nothing for {query:?}: pick queries from its dataset with --query").into());
        }
        for (i, instance) in instances.iter().enumerate() {
            let outcome = search(client, search_url(instance, query)?).await;
            if outcome.error.is_some()
                || outcome.addresses == 0
                || outcome.provider.as_deref() != Some("daum")
            {
                return Err(format!(
                    "warm-up search {query:?} on instance {}: expected addresses from daum, got status {:?}, provider {:?}, {} addresses{}: pick queries from the dataset with --query",
                    name(i),
                    outcome.status,
                    outcome.provider,
                    outcome.addresses,
                    outcome.error.map(|e| format!(" ({e})")).unwrap_or_default()
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The open-loop generator: search number `seq` is scheduled at `seq / rate` seconds, on instance
/// `seq % 2`, whatever happened to the earlier ones (at most `--concurrency` in flight; the wait
/// for a slot counts in the latency). Returns every search, in schedule order.
async fn generate(
    client: &Client,
    args: &Args,
    instances: &[Url; 2],
    total: usize,
    t0: Instant,
) -> Vec<Sample> {
    let slots = Arc::new(Semaphore::new(args.concurrency));
    let queries: Arc<Vec<String>> = Arc::new(args.queries.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let nanos_per_search = 1_000_000_000 / u64::from(args.rate);
    for seq in 0..total {
        let scheduled = t0 + Duration::from_nanos(nanos_per_search.saturating_mul(seq as u64));
        tokio::time::sleep_until(scheduled).await;
        let instance = seq % 2;
        let query = (seq / 2) % queries.len();
        let (client, slots, queries, tx) = (
            client.clone(),
            Arc::clone(&slots),
            Arc::clone(&queries),
            tx.clone(),
        );
        let base = instances[instance].clone();
        tokio::spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail; a failure would only lift
            // the concurrency limit for this search.
            let slot = slots.acquire_owned().await.ok();
            let began = Instant::now();
            let outcome = match search_url(&base, &queries[query]) {
                Ok(url) => search(&client, url).await,
                Err(e) => Outcome::failed(None, format!("bad URL: {e}")),
            };
            let done = Instant::now();
            drop(slot);
            let _ = tx.send(Sample {
                seq,
                instance,
                query,
                start_ms: ms_between(t0, scheduled),
                wait_ms: ms_between(scheduled, began),
                sent_ms: ms_between(t0, began),
                latency_ms: ms_between(scheduled, done),
                status: outcome.status,
                provider: outcome.provider,
                degraded: outcome.degraded,
                notice: outcome.notice,
                addresses: outcome.addresses,
                error: outcome.error,
            });
        });
    }
    drop(tx);
    let mut samples = Vec::with_capacity(total);
    while let Some(sample) = rx.recv().await {
        samples.push(sample);
    }
    samples.sort_by_key(|s| s.seq);
    samples
}

/// `<instance>/api/search?q=<query>`.
fn search_url(instance: &Url, query: &str) -> Result<Url> {
    let mut url = instance.join("/api/search")?;
    url.query_pairs_mut().append_pair("q", query);
    Ok(url)
}

/// What one search returned.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<u16>,
    provider: Option<String>,
    degraded: bool,
    notice: bool,
    addresses: usize,
    /// What the user saw as an error, if anything.
    error: Option<String>,
}

impl Outcome {
    fn failed(status: Option<u16>, error: String) -> Self {
        Outcome {
            status,
            error: Some(error),
            ..Outcome::default()
        }
    }
}

/// One `GET /api/search`, judged as the user would: an error is a failed request, a status other
/// than 200, or a 200 with neither addresses nor a notice.
async fn search(client: &Client, url: Url) -> Outcome {
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::failed(None, format!("request failed: {}", error_chain(&e))),
    };
    let status = response.status().as_u16();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            return Outcome::failed(Some(status), format!("body failed: {}", error_chain(&e)));
        }
    };
    if status != 200 {
        return Outcome::failed(Some(status), format!("HTTP {status}: {}", snippet(&body)));
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::failed(Some(status), format!("not JSON ({e}): {}", snippet(&body)));
        }
    };
    let Some(addresses) = json
        .get("addresses")
        .and_then(Value::as_array)
        .map(Vec::len)
    else {
        return Outcome::failed(
            Some(status),
            format!("no `addresses` list: {}", snippet(&body)),
        );
    };
    let notice = json.get("notice").and_then(Value::as_str).is_some();
    Outcome {
        status: Some(status),
        provider: json
            .get("provider")
            .and_then(Value::as_str)
            .map(str::to_owned),
        degraded: json
            .get("degraded")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        notice,
        addresses,
        error: (addresses == 0 && !notice)
            .then(|| "200 with no addresses and no notice".to_owned()),
    }
}

/// `GET url` as JSON, any status other than 200 an error.
async fn get_json(client: &Client, url: Url) -> Result<Value> {
    let shown = url.to_string();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {shown}: HTTP {status}: {}", snippet(&body)).into());
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("GET {shown}: not JSON ({e}): {}", snippet(&body)).into())
}

/// `POST <provider>/_control` with `body`.
async fn post_control(client: &Client, provider: &Url, body: &Value) -> Result<()> {
    let url = provider.join("/_control")?;
    let response = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let answer = response.bytes().await.unwrap_or_default();
        return Err(format!("POST {url} {body}: HTTP {status}: {}", snippet(&answer)).into());
    }
    Ok(())
}

/// The state of `provider.daum` as `instance`'s admin API reports it: `CLOSED`, `OPEN` or
/// `HALF_OPEN` (whatever the spelling in the JSON).
async fn breaker_state(client: &Client, instance: &Url, token: &str) -> Result<String> {
    let url = instance.join("/api/admin/breakers")?;
    let shown = url.to_string();
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {shown}: {}", error_chain(&e)))?;
    if status != reqwest::StatusCode::OK {
        return Err(format!("GET {shown}: HTTP {status}: {}", snippet(&body)).into());
    }
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET {shown}: not JSON ({e})"))?;
    // A list, or an object holding the list under "breakers".
    let list = json
        .as_array()
        .or_else(|| json.get("breakers").and_then(Value::as_array))
        .ok_or_else(|| format!("GET {shown}: no list of breakers: {}", snippet(&body)))?;
    let state = list
        .iter()
        .find(|b| b.get("name").and_then(Value::as_str) == Some(PRIMARY_BREAKER))
        .and_then(|b| b.get("state"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            format!(
                "GET {shown}: no state for {PRIMARY_BREAKER}: {}",
                snippet(&body)
            )
        })?;
    let letters: String = state
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect::<String>()
        .to_ascii_uppercase();
    Ok(match letters.as_str() {
        "HALFOPEN" => "HALF_OPEN".to_owned(),
        _ => letters,
    })
}

/// Polls both instances every [`POLL_EVERY`] until `stop`, recording each change of state with
/// the instant its answer arrived (so a switch is seen at most one poll interval plus one round
/// trip late).
async fn poll_breakers(
    client: Client,
    instances: [Url; 2],
    token: String,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> PollLog {
    let mut log = PollLog::default();
    let mut last: [Option<String>; 2] = [None, None];
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let poll = |i: usize| {
            let (client, token, url) = (&client, &token, &instances[i]);
            async move {
                let sent = Instant::now();
                let state = breaker_state(client, url, token).await;
                (sent, Instant::now(), state)
            }
        };
        let (a, b) = tokio::join!(poll(0), poll(1));
        for (i, (sent, arrived, state)) in [a, b].into_iter().enumerate() {
            log.polls += 1;
            log.slowest_ms = log.slowest_ms.max(ms_between(sent, arrived));
            match state {
                Ok(state) => {
                    if last[i].as_ref() != Some(&state) {
                        log.changes.push(StateChange {
                            at_ms: ms_between(t0, arrived),
                            instance: i,
                            state: state.clone(),
                        });
                        last[i] = Some(state);
                    }
                }
                Err(e) => {
                    log.errors += 1;
                    log.last_error = Some(e.to_string());
                }
            }
        }
    }
    log
}

/// Fails the primary at `t0 + fail_at` and, with `up_at`, brings it back then.
async fn control(
    client: Client,
    daum: Url,
    failure: Failure,
    t0: Instant,
    fail_at: Duration,
    up_at: Option<Duration>,
) -> Result<ControlTimes> {
    let mut times = ControlTimes::default();
    tokio::time::sleep_until(t0 + fail_at).await;
    let sent = Instant::now();
    times.fail_ms = Some(ms_between(t0, sent));
    post_control(&client, &daum, &failure.control_body()).await?;
    times.fail_post_ms = Some(ms_since(sent));
    println!(
        "load-demo: daum failed at {} s",
        fmt_s(ms_between(t0, sent) / 1000.0)
    );
    if let Some(up_at) = up_at {
        tokio::time::sleep_until(t0 + up_at).await;
        times.up_ms = Some(ms_since(t0));
        post_control(&client, &daum, &serde_json::json!({ "mode": "up" })).await?;
        println!(
            "load-demo: daum back up at {} s",
            fmt_s(ms_since(t0) / 1000.0)
        );
    }
    Ok(times)
}

/// An error with its sources, `a: b: c`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

fn ms_since(from: Instant) -> f64 {
    ms_between(from, Instant::now())
}

/// Instance 0 is "A", 1 is "B".
fn name(instance: usize) -> &'static str {
    if instance == 0 { "A" } else { "B" }
}

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// The instants that divide the run, in ms since it began.
#[derive(Debug, Default, Clone)]
struct Timeline {
    fail_ms: Option<f64>,
    /// When each instance first reported `provider.daum` OPEN after the failure.
    open_ms: [Option<f64>; 2],
    /// When both had: the fleet-wide switch.
    switch_ms: Option<f64>,
    up_ms: Option<f64>,
    /// When each instance first reported CLOSED again after the primary came back.
    closed_ms: [Option<f64>; 2],
    /// When both had: the fleet recovered.
    recovered_ms: Option<f64>,
}

impl Timeline {
    fn new(measured: &Measured) -> Self {
        let fail_ms = measured.control.fail_ms;
        let up_ms = measured.control.up_ms;
        let first = |instance: usize, state: &str, after: Option<f64>| {
            let after = after?;
            measured
                .poll
                .changes
                .iter()
                .find(|c| c.instance == instance && c.state == state && c.at_ms >= after)
                .map(|c| c.at_ms)
        };
        let open_ms = [first(0, "OPEN", fail_ms), first(1, "OPEN", fail_ms)];
        let closed_ms = [first(0, "CLOSED", up_ms), first(1, "CLOSED", up_ms)];
        let both = |[a, b]: [Option<f64>; 2]| a.zip(b).map(|(a, b)| a.max(b));
        Timeline {
            fail_ms,
            open_ms,
            switch_ms: both(open_ms),
            up_ms,
            closed_ms,
            recovered_ms: both(closed_ms),
        }
    }

    /// The phases, as (label, start ms); each ends where the next starts.
    fn phases(&self) -> Vec<(&'static str, f64)> {
        let mut phases = vec![("before the failure", 0.0)];
        if let Some(fail) = self.fail_ms {
            phases.push(("failover: daum fails → fleet-wide switch", fail));
        }
        if let Some(switch) = self.switch_ms {
            phases.push(("after the switch (daum OPEN, juso serves)", switch));
        }
        if let Some(up) = self.up_ms {
            phases.push(("daum back up → fleet CLOSED again", up));
        }
        if let Some(recovered) = self.recovered_ms {
            phases.push(("after recovery", recovered));
        }
        // A later event seen before an earlier one (a switch after the primary came back, say)
        // would make a phase negative: keep the order of time.
        phases.sort_by(|a, b| a.1.total_cmp(&b.1));
        phases
    }
}

/// Counts and latency percentiles of a group of searches.
#[derive(Debug, Default)]
struct Stats {
    requests: usize,
    errors: usize,
    by_daum: usize,
    by_juso: usize,
    notices: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>) -> Self {
        let mut stats = Stats::default();
        let mut latencies = Vec::new();
        for s in samples {
            stats.requests += 1;
            stats.errors += usize::from(s.error.is_some());
            match s.provider.as_deref() {
                Some("daum") => stats.by_daum += 1,
                Some("juso") => stats.by_juso += 1,
                _ => {}
            }
            stats.notices += usize::from(s.notice);
            latencies.push(s.latency_ms);
        }
        latencies.sort_by(f64::total_cmp);
        stats.p50 = percentile(&latencies, 50.0);
        stats.p95 = percentile(&latencies, 95.0);
        stats.p99 = percentile(&latencies, 99.0);
        stats.max = latencies.last().copied().unwrap_or_default();
        stats
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The run, judged and written up.
#[derive(Debug)]
struct Report<'a> {
    args: &'a Args,
    setup: &'a Setup,
    measured: Measured,
    timeline: Timeline,
    /// How many instances registered `provider.daum` in Redis (`None`: could not ask).
    registered: Option<u64>,
}

impl<'a> Report<'a> {
    fn new(args: &'a Args, setup: &'a Setup, measured: Measured, registered: Option<u64>) -> Self {
        let timeline = Timeline::new(&measured);
        Report {
            args,
            setup,
            measured,
            timeline,
            registered,
        }
    }

    fn errors(&self) -> impl Iterator<Item = &Sample> {
        self.measured.samples.iter().filter(|s| s.error.is_some())
    }

    /// Whether the target was met (no error seen by a user, a fleet-wide switch); prints why not.
    fn verdict(&self) -> bool {
        let errors: Vec<&Sample> = self.errors().collect();
        for s in errors.iter().take(50) {
            eprintln!(
                "load-demo: user error: search #{} at {} s on instance {} ({:?}) after {}: {}",
                s.seq,
                fmt_s(s.start_ms / 1000.0),
                name(s.instance),
                self.args.queries.get(s.query).map_or("?", String::as_str),
                fmt_ms(s.latency_ms),
                s.error.as_deref().unwrap_or_default()
            );
        }
        if errors.len() > 50 {
            eprintln!(
                "load-demo: ... and {} more (all in requests.csv)",
                errors.len() - 50
            );
        }
        let mut ok = errors.is_empty();
        if !ok {
            eprintln!(
                "load-demo: FAILED: {} searches ended in an error a user saw (target: 0)",
                errors.len()
            );
        }
        if self.timeline.switch_ms.is_none() {
            eprintln!(
                "load-demo: FAILED: the fleet never reported {PRIMARY_BREAKER} OPEN on both instances after the failure"
            );
            ok = false;
        }
        if self.measured.poll.errors > 0 {
            eprintln!(
                "load-demo: warning: {} of {} admin polls failed (last: {})",
                self.measured.poll.errors,
                self.measured.poll.polls,
                self.measured.poll.last_error.as_deref().unwrap_or_default()
            );
        }
        if self.registered != Some(2) {
            eprintln!(
                "load-demo: warning: {} instance(s) registered {PRIMARY_BREAKER} in Redis, expected 2: are the breakers `store = \"redis\"`?",
                self.registered
                    .map_or_else(|| "an unknown number of".to_owned(), |n| n.to_string())
            );
        }
        ok
    }

    /// `summary.md`: setup, the table by phase, switch and recovery times, the poller's log.
    fn summary_markdown(&self) -> String {
        let (args, m, t) = (self.args, &self.measured, &self.timeline);
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Load demo: the primary fails under load, two instances sharing Redis\n"
        );
        let _ = writeln!(
            md,
            "`cargo run --release -p breaker-examples --bin load-demo -- --seconds {} --rate {} --concurrency {}{}{}`\n",
            args.seconds,
            args.rate,
            args.concurrency,
            if args.failure == Failure::Slow {
                " --failure slow"
            } else {
                ""
            },
            if args.no_recovery {
                " --no-recovery"
            } else {
                ""
            }
        );
        let _ = writeln!(
            md,
            "- **Fleet:** two `address-search` instances (A, B) sharing one `redis-server` (breakers `store = \"redis\"`; {} of 2 instances registered `{PRIMARY_BREAKER}` there), and one process of mock providers that both use.",
            self.registered
                .map_or_else(|| "?".to_owned(), |n| n.to_string())
        );
        let _ = writeln!(
            md,
            "- **Load:** {} searches/s open-loop for {} s ({} searches), alternately on A and B, queries {}; at most {} in flight. Latency counts from each search's scheduled start, so waiting for a slot counts too; a search belongs to the phase in which it was scheduled (the user's click; one scheduled within a millisecond or two of a change may land on either side of it).",
            args.rate,
            args.seconds,
            m.samples.len(),
            args.queries
                .iter()
                .map(|q| format!("`{q}`"))
                .collect::<Vec<_>>()
                .join(", "),
            args.concurrency
        );
        let _ = writeln!(
            md,
            "- **Failure:** at {} s daum was switched to {}{}.",
            t.fail_ms
                .map_or_else(|| "–".to_owned(), |f| fmt_s(f / 1000.0)),
            args.failure.describe(),
            t.up_ms.map_or_else(String::new, |u| format!(
                "; back `up` at {} s",
                fmt_s(u / 1000.0)
            ))
        );
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
        let _ = writeln!(
            md,
            "- **Machine:** {cores} cores, shared by the load generator, both instances, the mock providers and Redis (and the 5 ms admin polling of both instances), so the latencies include their competition for CPU.\n"
        );

        let _ = writeln!(
            md,
            "| phase | from | requests | errors seen by users | served by daum | served by juso | notice | p50 | p95 | p99 | max |"
        );
        let _ = writeln!(
            md,
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let phases = t.phases();
        for (k, (label, start)) in phases.iter().enumerate() {
            let end = phases.get(k + 1).map_or(f64::INFINITY, |p| p.1);
            let stats = Stats::of(
                m.samples
                    .iter()
                    .filter(|s| s.start_ms >= *start && s.start_ms < end),
            );
            let _ = writeln!(
                md,
                "{}",
                table_row(label, &format!("{} s", fmt_s(start / 1000.0)), &stats)
            );
        }
        let all = Stats::of(m.samples.iter());
        let _ = writeln!(md, "{}\n", table_row("**whole run**", "", &all));

        match (t.fail_ms, t.switch_ms) {
            (Some(fail), Some(switch)) => {
                let _ = writeln!(
                    md,
                    "**From the first failure to the fleet-wide switch: {}** (A reported OPEN after {}, B after {}). The breaker opens once the fleet has counted its threshold of failed calls, so this is mostly the time the traffic takes to produce them (with `--failure slow`, the time they take to time out).",
                    fmt_ms(switch - fail),
                    fmt_after(t.open_ms[0], fail),
                    fmt_after(t.open_ms[1], fail)
                );
            }
            (Some(_), None) => {
                let _ = writeln!(
                    md,
                    "**The fleet never switched:** both instances never reported `{PRIMARY_BREAKER}` OPEN."
                );
            }
            _ => {
                let _ = writeln!(
                    md,
                    "**The failure was never injected** (the run ended first)."
                );
            }
        }
        if let Some(up) = t.up_ms {
            match t.recovered_ms {
                Some(rec) => {
                    let _ = writeln!(
                        md,
                        "From daum back up to the fleet CLOSED again: {} (A after {}, B after {}); the fleet closes at the first probe after daum is back, and a probe is let through only when an OPEN period ends (HALF_OPEN in the log below).",
                        fmt_ms(rec - up),
                        fmt_after(t.closed_ms[0], up),
                        fmt_after(t.closed_ms[1], up)
                    );
                }
                None => {
                    let _ = writeln!(
                        md,
                        "The fleet was not CLOSED again before the run ended ({} after daum came back).",
                        fmt_ms(m.end_ms - up)
                    );
                }
            }
        }
        let _ = writeln!(
            md,
            "\nThe instants come from polling `GET /api/admin/breakers` on both instances every {} ms and taking the arrival of the first answer with the new state ({} polls, slowest {}, {} failed): each is late by at most one interval plus one round trip. The failure instant is when the `POST /_control` was sent (it took {}).\n",
            POLL_EVERY.as_millis(),
            m.poll.polls,
            fmt_ms(m.poll.slowest_ms),
            m.poll.errors,
            m.control
                .fail_post_ms
                .map_or_else(|| "–".to_owned(), fmt_ms)
        );
        let _ = writeln!(
            md,
            "State changes of `{PRIMARY_BREAKER}` seen by the poller:\n"
        );
        let _ = writeln!(md, "| at | instance | state |");
        let _ = writeln!(md, "| ---: | --- | --- |");
        for c in m.poll.changes.iter().take(60) {
            let _ = writeln!(
                md,
                "| {} s | {} | {} |",
                fmt_s3(c.at_ms / 1000.0),
                name(c.instance),
                c.state
            );
        }
        if m.poll.changes.len() > 60 {
            let _ = writeln!(md, "| … | | {} more |", m.poll.changes.len() - 60);
        }
        let _ = writeln!(md, "\n![latency over time](latency.svg)\n");
        let errors: Vec<&Sample> = self.errors().collect();
        if errors.is_empty() {
            let _ = writeln!(
                md,
                "Errors seen by users: **0** of {} searches.",
                m.samples.len()
            );
        } else {
            let _ = writeln!(
                md,
                "Errors seen by users: **{}** of {} searches (target 0); the first ones:\n",
                errors.len(),
                m.samples.len()
            );
            for s in errors.iter().take(20) {
                let _ = writeln!(
                    md,
                    "- #{} at {} s on {}: {}",
                    s.seq,
                    fmt_s3(s.start_ms / 1000.0),
                    name(s.instance),
                    s.error.as_deref().unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            md,
            "\nInstances: A {}, B {}; providers: daum {}, juso {}.",
            self.setup.instances[0], self.setup.instances[1], self.setup.daum, self.setup.juso
        );
        md
    }

    /// `requests.csv`: one line per search.
    fn requests_csv(&self) -> String {
        let mut csv = String::from(
            "seq,instance,query,start_ms,wait_ms,sent_ms,latency_ms,status,provider,degraded,notice,addresses,user_error\n",
        );
        for s in &self.measured.samples {
            let _ = writeln!(
                csv,
                "{},{},{},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{}",
                s.seq,
                name(s.instance),
                csv_field(self.args.queries.get(s.query).map_or("", String::as_str)),
                s.start_ms,
                s.wait_ms,
                s.sent_ms,
                s.latency_ms,
                s.status.map_or_else(String::new, |c| c.to_string()),
                s.provider.as_deref().unwrap_or_default(),
                s.degraded,
                s.notice,
                s.addresses,
                csv_field(s.error.as_deref().unwrap_or_default())
            );
        }
        csv
    }

    /// `latency.svg`: per-bin p50/p99/max latency over time (log scale) with the failure, the
    /// switch and the recovery marked; below, who served the searches of each bin.
    fn latency_svg(&self) -> String {
        Plot::new(&self.measured, &self.timeline).render()
    }
}

fn table_row(label: &str, from: &str, s: &Stats) -> String {
    format!(
        "| {label} | {from} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s.requests,
        if s.errors == 0 {
            "0".to_owned()
        } else {
            format!("**{}**", s.errors)
        },
        s.by_daum,
        s.by_juso,
        s.notices,
        fmt_ms(s.p50),
        fmt_ms(s.p95),
        fmt_ms(s.p99),
        fmt_ms(s.max)
    )
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// Milliseconds with a precision that suits their size.
fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `at - since`, or "–".
fn fmt_after(at: Option<f64>, since: f64) -> String {
    at.map_or_else(|| "–".to_owned(), |a| fmt_ms(a - since))
}

fn fmt_s(s: f64) -> String {
    format!("{s:.2}")
}

fn fmt_s3(s: f64) -> String {
    format!("{s:.3}")
}

// ---------------------------------------------------------------------------------------------
// The plot (hand-written SVG)
// ---------------------------------------------------------------------------------------------

/// Per-bin series of the run and where to draw them.
#[derive(Debug)]
struct Plot<'a> {
    measured: &'a Measured,
    timeline: &'a Timeline,
    /// Per bin: p50, p99, max latency (ms), searches served by daum, by juso, notices, errors.
    bins: Vec<Bin>,
    /// End of the time axis, seconds.
    x_max: f64,
}

#[derive(Debug, Default, Clone)]
struct Bin {
    latencies: Vec<f64>,
    daum: usize,
    juso: usize,
    notice: usize,
    errors: usize,
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 960.0;
/// Top panel (latency): top and bottom y.
const TOP_Y: (f64, f64) = (70.0, 340.0);
/// Bottom panel (searches per bin by provider).
const BOTTOM_Y: (f64, f64) = (400.0, 510.0);
const HEIGHT: f64 = 590.0;

impl<'a> Plot<'a> {
    fn new(measured: &'a Measured, timeline: &'a Timeline) -> Self {
        let end_ms = measured
            .samples
            .iter()
            .map(|s| s.start_ms)
            .fold(measured.end_ms, f64::max);
        let n = ((end_ms / BIN_MS).ceil() as usize).max(1);
        let mut bins = vec![Bin::default(); n];
        for s in &measured.samples {
            let k = ((s.start_ms / BIN_MS) as usize).min(n - 1);
            let bin = &mut bins[k];
            bin.latencies.push(s.latency_ms);
            if s.error.is_some() {
                bin.errors += 1;
            } else if s.provider.as_deref() == Some("daum") {
                bin.daum += 1;
            } else if s.provider.as_deref() == Some("juso") {
                bin.juso += 1;
            } else {
                bin.notice += 1;
            }
        }
        for bin in &mut bins {
            bin.latencies.sort_by(f64::total_cmp);
        }
        Plot {
            measured,
            timeline,
            bins,
            x_max: n as f64 * BIN_MS / 1000.0,
        }
    }

    fn x(&self, seconds: f64) -> f64 {
        LEFT + (RIGHT - LEFT) * (seconds / self.x_max).clamp(0.0, 1.0)
    }

    fn render(&self) -> String {
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">Search latency, two instances sharing Redis: daum fails, the fleet switches to juso</text>"#
        );
        self.backup_band(&mut svg);
        self.latency_panel(&mut svg);
        self.served_panel(&mut svg);
        self.x_axis(&mut svg, BOTTOM_Y.1);
        self.legend(&mut svg, BOTTOM_Y.1 + 62.0);
        self.markers(&mut svg);
        let _ = writeln!(svg, "</svg>");
        svg
    }

    /// A shaded band over both panels while daum's breaker was OPEN on the fleet.
    fn backup_band(&self, svg: &mut String) {
        let Some(switch) = self.timeline.switch_ms else {
            return;
        };
        let end = self.timeline.recovered_ms.unwrap_or(self.x_max * 1000.0);
        let (x0, x1) = (self.x(switch / 1000.0), self.x(end / 1000.0));
        let _ = writeln!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#fff1d6"/>"##,
            TOP_Y.0,
            (x1 - x0).max(0.0),
            BOTTOM_Y.1 - TOP_Y.0
        );
    }

    /// Latency per bin on a log scale: p50 and p99 lines, max as dots, errors as red crosses.
    fn latency_panel(&self, svg: &mut String) {
        let positive = |v: &f64| *v > 0.0;
        let lowest = self
            .bins
            .iter()
            .map(|b| percentile(&b.latencies, 50.0))
            .filter(positive)
            .fold(f64::INFINITY, f64::min);
        let highest = self
            .bins
            .iter()
            .filter_map(|b| b.latencies.last().copied())
            .fold(0.0, f64::max);
        let lo = if lowest.is_finite() {
            nice_floor(lowest * 0.8).max(0.01)
        } else {
            0.1
        };
        let hi = nice_step(highest.max(lo * 10.0));
        let y = |ms: f64| {
            let f = (ms.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10());
            TOP_Y.1 - (TOP_Y.1 - TOP_Y.0) * f.clamp(0.0, 1.0)
        };
        // Grid and labels: 1, 2, 5 × 10^k.
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi * 1.0001 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                if v < lo * 0.9999 {
                    continue;
                }
                if v > hi * 1.0001 {
                    break;
                }
                let yy = y(v);
                let stroke = if m == 1.0 { "#cccccc" } else { "#eeeeee" };
                let _ = writeln!(
                    svg,
                    r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{RIGHT}" y2="{yy:.1}" stroke="{stroke}"/>"#
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    yy + 4.0,
                    tick_label(v)
                );
            }
            decade *= 10.0;
        }
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">latency per {} ms (ms, log scale)</text>"#,
            f64::midpoint(TOP_Y.0, TOP_Y.1),
            BIN_MS
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="none" stroke="#888888"/>"##,
            TOP_Y.0,
            RIGHT - LEFT,
            TOP_Y.1 - TOP_Y.0
        );
        let centre = |k: usize| self.x((k as f64 + 0.5) * BIN_MS / 1000.0);
        // Max as dots.
        for (k, bin) in self.bins.iter().enumerate() {
            if let Some(max) = bin.latencies.last() {
                let _ = writeln!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="#9a9a9a"/>"##,
                    centre(k),
                    y(*max)
                );
            }
        }
        for (p, colour) in [(99.0, "#d9731a"), (50.0, "#1f5fbf")] {
            let points: Vec<String> = self
                .bins
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.latencies.is_empty())
                .map(|(k, b)| format!("{:.1},{:.1}", centre(k), y(percentile(&b.latencies, p))))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                points.join(" ")
            );
        }
        for s in self.measured.samples.iter().filter(|s| s.error.is_some()) {
            let (cx, cy) = (self.x(s.start_ms / 1000.0), y(s.latency_ms));
            let _ = writeln!(
                svg,
                r##"<path d="M{:.1},{:.1} l6,6 m0,-6 l-6,6" stroke="#d62728" stroke-width="1.5"/>"##,
                cx - 3.0,
                cy - 3.0
            );
        }
    }

    /// The latency panel's legend and the band's, in one row under the time axis.
    fn legend(&self, svg: &mut String, y: f64) {
        let mut x = LEFT;
        for (label, colour, mark) in [
            ("p50", "#1f5fbf", "line"),
            ("p99", "#d9731a", "line"),
            ("max per 100 ms", "#9a9a9a", "dot"),
            ("error seen by a user", "#d62728", "cross"),
            ("provider.daum OPEN on both instances", "#fff1d6", "box"),
        ] {
            let _ = match mark {
                "line" => writeln!(
                    svg,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="2"/>"#,
                    y - 4.0,
                    x + 16.0,
                    y - 4.0
                ),
                "dot" => writeln!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x + 8.0,
                    y - 4.0
                ),
                "cross" => writeln!(
                    svg,
                    r#"<path d="M{:.1},{:.1} l6,6 m0,-6 l-6,6" stroke="{colour}" stroke-width="1.5"/>"#,
                    x + 5.0,
                    y - 7.0
                ),
                _ => writeln!(
                    svg,
                    r##"<rect x="{x:.1}" y="{:.1}" width="16" height="10" fill="{colour}" stroke="#c9a36b"/>"##,
                    y - 9.0
                ),
            };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{y:.1}">{label}</text>"#,
                x + 20.0
            );
            // About 6.5 px per character at 12 px.
            x += 20.0 + 6.5 * label.chars().count() as f64 + 18.0;
        }
    }

    /// Searches per bin, stacked by who answered: daum, juso, a notice, an error.
    fn served_panel(&self, svg: &mut String) {
        let most = self
            .bins
            .iter()
            .map(|b| b.daum + b.juso + b.notice + b.errors)
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let height = BOTTOM_Y.1 - BOTTOM_Y.0;
        let width = (RIGHT - LEFT) / self.bins.len() as f64;
        for (k, bin) in self.bins.iter().enumerate() {
            let mut base = BOTTOM_Y.1;
            for (count, colour) in [
                (bin.daum, "#1f5fbf"),
                (bin.juso, "#e8a33d"),
                (bin.notice, "#8c8c8c"),
                (bin.errors, "#d62728"),
            ] {
                if count == 0 {
                    continue;
                }
                let h = height * count as f64 / most;
                let _ = writeln!(
                    svg,
                    r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{h:.2}" fill="{colour}" shape-rendering="crispEdges"/>"#,
                    LEFT + width * k as f64,
                    base - h,
                    width + 0.4
                );
                base -= h;
            }
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{}" width="{}" height="{height}" fill="none" stroke="#888888"/>"##,
            BOTTOM_Y.0,
            RIGHT - LEFT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{most:.0}</text>"#,
            LEFT - 6.0,
            BOTTOM_Y.0 + 4.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">0</text>"#,
            LEFT - 6.0,
            BOTTOM_Y.1 + 4.0
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">searches</text>"#,
            f64::midpoint(BOTTOM_Y.0, BOTTOM_Y.1)
        );
        let mut x = LEFT;
        let y = BOTTOM_Y.0 - 8.0;
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}">searches per {BIN_MS} ms, by who answered:</text>"#
        );
        x += 250.0;
        for (label, colour) in [
            ("daum", "#1f5fbf"),
            ("juso", "#e8a33d"),
            ("notice", "#8c8c8c"),
            ("error", "#d62728"),
        ] {
            let _ = writeln!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{colour}"/>"#,
                y - 9.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{y:.1}">{label}</text>"#,
                x + 14.0
            );
            x += 70.0;
        }
    }

    /// Seconds along the bottom.
    fn x_axis(&self, svg: &mut String, y: f64) {
        let step = nice_step(self.x_max / 10.0);
        let mut t = 0.0;
        while t <= self.x_max + 1e-9 {
            let x = self.x(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{:.1}" stroke="#888888"/>"##,
                y + 5.0
            );
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                y + 18.0,
                tick_label(t)
            );
            t += step;
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the start of the run (s)</text>"#,
            f64::midpoint(LEFT, RIGHT),
            y + 36.0
        );
    }

    /// Vertical lines at the failure, the switch, the primary's return and the recovery. The two
    /// of a pair are milliseconds apart: the first is labelled on its left, the second on its
    /// right; the recovery pair on a second row.
    fn markers(&self, svg: &mut String) {
        let t = self.timeline;
        let seconds = |at: Option<f64>| at.map_or_else(String::new, |a| fmt_s(a / 1000.0));
        let delay = |from: Option<f64>, to: Option<f64>| {
            from.zip(to)
                .map_or_else(String::new, |(f, t)| fmt_ms(t - f))
        };
        let markers = [
            (
                t.fail_ms,
                "#d62728",
                "5,3",
                format!("daum fails ({} s)", seconds(t.fail_ms)),
                true,
                0.0,
            ),
            (
                t.switch_ms,
                "#8c4a00",
                "",
                format!("fleet switched to juso: +{}", delay(t.fail_ms, t.switch_ms)),
                false,
                0.0,
            ),
            (
                t.up_ms,
                "#2ca02c",
                "5,3",
                format!("daum back up ({} s)", seconds(t.up_ms)),
                true,
                1.0,
            ),
            (
                t.recovered_ms,
                "#1b7a1b",
                "",
                format!("fleet CLOSED: +{}", delay(t.up_ms, t.recovered_ms)),
                false,
                1.0,
            ),
        ];
        for (at, colour, dash, label, left, row) in markers {
            let Some(at) = at else { continue };
            let x = self.x(at / 1000.0);
            let label_y = TOP_Y.0 - 24.0 + 13.0 * row;
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
                label_y - 10.0,
                BOTTOM_Y.1
            );
            let (anchor, dx) = if left { ("end", -4.0) } else { ("start", 4.0) };
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{label_y:.1}" text-anchor="{anchor}" fill="{colour}">{}</text>"#,
                x + dx,
                xml_escape(&label)
            );
        }
    }
}

/// 1, 2, 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let decade = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * decade)
}

/// 1, 2, 5 × 10^k at or below `raw`.
fn nice_floor(raw: f64) -> f64 {
    let raw = raw.max(1e-3);
    let decade = 10f64.powf(raw.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|s| *s <= raw)
        .unwrap_or(decade)
}

/// A tick's value without needless decimals.
fn tick_label(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
