//! The run: warm-up checks, then the open-loop load, the admin poller and the controller that
//! fails the primary, together.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Client, Url};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::http::{Outcome, breaker_state, get_json, post_control, search, search_url};
use crate::report::fmt_s;
use crate::{Args, Failure, PRIMARY_BREAKER, Result, Setup};

/// How often the admin API of each instance is polled.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(5);

/// One search as a user experienced it.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// Sequence number (schedule order).
    pub(crate) seq: usize,
    /// Which instance served it (0 or 1).
    pub(crate) instance: usize,
    /// Index into the queries.
    pub(crate) query: usize,
    /// Scheduled start, in ms since the run began.
    pub(crate) start_ms: f64,
    /// Time spent waiting for one of the `--concurrency` slots, in ms.
    pub(crate) wait_ms: f64,
    /// When it was sent (`start_ms + wait_ms`).
    pub(crate) sent_ms: f64,
    /// Scheduled start to the end of the answer, in ms (includes `wait_ms`).
    pub(crate) latency_ms: f64,
    /// What it returned.
    pub(crate) outcome: Outcome,
}

/// A state of `provider.daum` reported by one instance's admin API, first seen at `at_ms`.
#[derive(Debug, Clone)]
pub(crate) struct StateChange {
    pub(crate) at_ms: f64,
    pub(crate) instance: usize,
    pub(crate) state: String,
}

/// What the poller saw.
#[derive(Debug, Default)]
pub(crate) struct PollLog {
    pub(crate) changes: Vec<StateChange>,
    pub(crate) polls: u64,
    pub(crate) errors: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) slowest_ms: f64,
}

/// The instants the controller changed the primary's mode, in ms since the run began.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ControlTimes {
    /// When the failure was requested (the `POST /_control` was sent).
    pub(crate) fail_ms: Option<f64>,
    /// How long that POST took.
    pub(crate) fail_post_ms: Option<f64>,
    /// When the primary was brought back up.
    pub(crate) up_ms: Option<f64>,
}

/// Everything measured during the run.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) samples: Vec<Sample>,
    pub(crate) poll: PollLog,
    pub(crate) control: ControlTimes,
    pub(crate) end_ms: f64,
}

/// Warm-up checks, then the load with the failure, the poller and the controller together.
pub(crate) async fn run(args: &Args, setup: &Setup) -> Result<Measured> {
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
        setup.token.clone(),
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
    let up = serde_json::json!({ "mode": "up" });
    let _ = post_control(&client, &daum, &setup.token, &up).await;
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
        post_control(
            client,
            provider,
            &setup.token,
            &serde_json::json!({ "mode": "up" }),
        )
        .await?;
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
        let body = get_json(client, url, None).await?;
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
                outcome,
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
    token: String,
    failure: Failure,
    t0: Instant,
    fail_at: Duration,
    up_at: Option<Duration>,
) -> Result<ControlTimes> {
    let mut times = ControlTimes::default();
    tokio::time::sleep_until(t0 + fail_at).await;
    let sent = Instant::now();
    times.fail_ms = Some(ms_between(t0, sent));
    post_control(&client, &daum, &token, &failure.control_body()).await?;
    times.fail_post_ms = Some(ms_since(sent));
    println!(
        "load-demo: daum failed at {} s",
        fmt_s(ms_between(t0, sent) / 1000.0)
    );
    if let Some(up_at) = up_at {
        tokio::time::sleep_until(t0 + up_at).await;
        times.up_ms = Some(ms_since(t0));
        post_control(&client, &daum, &token, &serde_json::json!({ "mode": "up" })).await?;
        println!(
            "load-demo: daum back up at {} s",
            fmt_s(ms_since(t0) / 1000.0)
        );
    }
    Ok(times)
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

fn ms_since(from: Instant) -> f64 {
    ms_between(from, Instant::now())
}

/// Instance 0 is "A", 1 is "B".
pub(crate) fn name(instance: usize) -> &'static str {
    if instance == 0 { "A" } else { "B" }
}

/// A fixed run for the report's and the plot's tests: 6 s at 50 searches/s, daum fails at 2 s, the
/// fleet switches at 2.1 s, daum is back at 4 s and the fleet closes at 5.1 s; two searches fail.
#[cfg(test)]
pub(crate) mod fixture {
    use clap::Parser as _;

    use super::*;

    pub(crate) fn args() -> Args {
        Args::parse_from(["load-demo", "--seconds", "6", "--rate", "50"])
    }

    pub(crate) fn setup() -> Setup {
        Setup {
            daum: "http://127.0.0.1:1001".to_owned(),
            juso: "http://127.0.0.1:1002".to_owned(),
            instances: [
                "http://127.0.0.1:2001".to_owned(),
                "http://127.0.0.1:2002".to_owned(),
            ],
            token: "t".to_owned(),
        }
    }

    pub(crate) fn measured() -> Measured {
        // A small linear congruential generator: varied latencies, the same on every run.
        let mut seed: u64 = 42;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as f64 / f64::from(u32::MAX >> 1)
        };
        let samples = (0..300)
            .map(|seq| {
                let start_ms = seq as f64 * 20.0;
                let backup = (2000.0..5100.0).contains(&start_ms);
                let failover = (2000.0..2100.0).contains(&start_ms);
                let latency_ms = if failover {
                    800.0 + 50.0 * next()
                } else {
                    2.0 + 6.0 * next()
                };
                let outcome = if seq == 101 || seq == 150 {
                    Outcome::failed(None, "request failed: timeout, \"x\"".to_owned())
                } else {
                    Outcome {
                        status: Some(200),
                        provider: Some(if backup { "juso" } else { "daum" }.to_owned()),
                        degraded: backup,
                        notice: false,
                        addresses: 3,
                        error: None,
                    }
                };
                Sample {
                    seq,
                    instance: seq % 2,
                    query: (seq / 2) % 4,
                    start_ms,
                    wait_ms: 0.25 * next(),
                    sent_ms: start_ms + 0.1,
                    latency_ms,
                    outcome,
                }
            })
            .collect();
        let change = |at_ms: f64, instance: usize, state: &str| StateChange {
            at_ms,
            instance,
            state: state.to_owned(),
        };
        Measured {
            samples,
            poll: PollLog {
                changes: vec![
                    change(3.0, 0, "CLOSED"),
                    change(3.5, 1, "CLOSED"),
                    change(2080.0, 0, "OPEN"),
                    change(2100.0, 1, "OPEN"),
                    change(4050.0, 0, "HALF_OPEN"),
                    change(5090.0, 0, "CLOSED"),
                    change(5100.0, 1, "CLOSED"),
                ],
                polls: 2400,
                errors: 1,
                last_error: Some("GET x: timeout".to_owned()),
                slowest_ms: 12.5,
            },
            control: ControlTimes {
                fail_ms: Some(2000.0),
                fail_post_ms: Some(1.2),
                up_ms: Some(4000.0),
            },
            end_ms: 6000.0,
        }
    }
}
