//! The report: the run divided into phases, judged (no error seen by a user, a fleet-wide
//! switch), and written up as `summary.md` and `requests.csv`.

use std::fmt::Write as _;

use crate::plot::Plot;
use crate::run::{Measured, POLL_EVERY, Sample, name};
use crate::{Args, Failure, PRIMARY_BREAKER, Result, Setup};

/// The instants that divide the run, in ms since it began.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timeline {
    pub(crate) fail_ms: Option<f64>,
    /// When each instance first reported `provider.daum` OPEN after the failure.
    pub(crate) open_ms: [Option<f64>; 2],
    /// When both had: the fleet-wide switch.
    pub(crate) switch_ms: Option<f64>,
    pub(crate) up_ms: Option<f64>,
    /// When each instance first reported CLOSED again after the primary came back.
    pub(crate) closed_ms: [Option<f64>; 2],
    /// When both had: the fleet recovered.
    pub(crate) recovered_ms: Option<f64>,
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
            stats.errors += usize::from(s.outcome.error.is_some());
            match s.outcome.provider.as_deref() {
                Some("daum") => stats.by_daum += 1,
                Some("juso") => stats.by_juso += 1,
                _ => {}
            }
            stats.notices += usize::from(s.outcome.notice);
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
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The run, judged and written up.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    args: &'a Args,
    setup: &'a Setup,
    measured: Measured,
    timeline: Timeline,
    /// How many instances registered `provider.daum` in Redis (`None`: could not ask).
    registered: Option<u64>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(
        args: &'a Args,
        setup: &'a Setup,
        measured: Measured,
        registered: Option<u64>,
    ) -> Self {
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
        self.measured
            .samples
            .iter()
            .filter(|s| s.outcome.error.is_some())
    }

    /// Whether the target was met (no error seen by a user, a fleet-wide switch); prints why not.
    pub(crate) fn verdict(&self) -> bool {
        let errors: Vec<&Sample> = self.errors().collect();
        for s in errors.iter().take(50) {
            eprintln!(
                "load-demo: user error: search #{} at {} s on instance {} ({:?}) after {}: {}",
                s.seq,
                fmt_s(s.start_ms / 1000.0),
                name(s.instance),
                self.args.queries.get(s.query).map_or("?", String::as_str),
                fmt_ms(s.latency_ms),
                s.outcome.error.as_deref().unwrap_or_default()
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
    pub(crate) fn summary_markdown(&self) -> String {
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
                    s.outcome.error.as_deref().unwrap_or_default()
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
    pub(crate) fn requests_csv(&self) -> String {
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
                s.outcome.status.map_or_else(String::new, |c| c.to_string()),
                s.outcome.provider.as_deref().unwrap_or_default(),
                s.outcome.degraded,
                s.outcome.notice,
                s.outcome.addresses,
                csv_field(s.outcome.error.as_deref().unwrap_or_default())
            );
        }
        csv
    }

    /// `latency.svg`: per-bin p50/p99/max latency over time (log scale) with the failure, the
    /// switch and the recovery marked; below, who served the searches of each bin.
    pub(crate) fn latency_svg(&self) -> Result<String> {
        Plot::new(&self.measured, &self.timeline)
            .render()
            .map_err(|e| format!("cannot draw latency.svg: {e}").into())
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
pub(crate) fn fmt_ms(ms: f64) -> String {
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

pub(crate) fn fmt_s(s: f64) -> String {
    format!("{s:.2}")
}

fn fmt_s3(s: f64) -> String {
    format!("{s:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::fixture;

    #[test]
    fn the_summary_divides_the_run_at_the_failure_the_switch_and_the_recovery() {
        let (args, setup) = (fixture::args(), fixture::setup());
        let report = Report::new(&args, &setup, fixture::measured(), Some(2));
        let md = report.summary_markdown();
        for row in [
            "| before the failure | 0.00 s | 100 | 0 | 100 | 0 | 0 |",
            "| failover: daum fails → fleet-wide switch | 2.00 s | 5 | **1** | 0 | 4 | 0 |",
            "| after the switch (daum OPEN, juso serves) | 2.10 s | 95 | **1** | 0 | 94 | 0 |",
            "| daum back up → fleet CLOSED again | 4.00 s | 55 | 0 | 0 | 55 | 0 |",
            "| after recovery | 5.10 s | 45 | 0 | 45 | 0 | 0 |",
            "| **whole run** |  | 300 | **2** | 145 | 153 | 0 |",
            "**From the first failure to the fleet-wide switch: 100 ms** (A reported OPEN after 80.0 ms, B after 100 ms)",
            "From daum back up to the fleet CLOSED again: 1100 ms (A after 1090 ms, B after 1100 ms)",
            "| 4.050 s | A | HALF_OPEN |",
            "Errors seen by users: **2** of 300 searches (target 0)",
            "- #101 at 2.020 s on B: request failed: timeout, \"x\"",
        ] {
            assert!(md.contains(row), "{row:?} not in\n{md}");
        }
        assert!(!report.verdict(), "two users saw an error");
    }

    #[test]
    fn the_csv_has_a_line_per_search_and_quotes_what_needs_it() {
        let (args, setup) = (fixture::args(), fixture::setup());
        let csv = Report::new(&args, &setup, fixture::measured(), Some(2)).requests_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 301);
        assert!(lines[0].starts_with("seq,instance,query,start_ms,"));
        assert!(lines[1].starts_with("0,A,gangnam,0.000,"), "{}", lines[1]);
        assert!(
            lines[102].ends_with(",,,false,false,0,\"request failed: timeout, \"\"x\"\"\""),
            "{}",
            lines[102]
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted[..1], 99.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        assert_eq!(fmt_ms(1.234), "1.23 ms");
        assert_eq!(fmt_ms(12.34), "12.3 ms");
        assert_eq!(fmt_ms(1234.5), "1234 ms");
    }
}
