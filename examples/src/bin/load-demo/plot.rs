//! `latency.svg`, written by hand: per-bin latency over time on a log scale and who served each
//! bin, with the failure, the switch and the recovery marked.

use std::fmt::Write as _;

use crate::report::{Timeline, fmt_ms, fmt_s, percentile};
use crate::run::Measured;

/// Width of a bin in the plot and in the per-bin series.
const BIN_MS: f64 = 100.0;

/// Per-bin series of the run and where to draw them.
#[derive(Debug)]
pub(crate) struct Plot<'a> {
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
    pub(crate) fn new(measured: &'a Measured, timeline: &'a Timeline) -> Self {
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
            if s.outcome.error.is_some() {
                bin.errors += 1;
            } else if s.outcome.provider.as_deref() == Some("daum") {
                bin.daum += 1;
            } else if s.outcome.provider.as_deref() == Some("juso") {
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

    pub(crate) fn render(&self) -> String {
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
        for s in self
            .measured
            .samples
            .iter()
            .filter(|s| s.outcome.error.is_some())
        {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use crate::run::fixture;

    #[test]
    fn the_plot_marks_the_failure_the_switch_and_the_recovery() {
        let (args, setup) = (fixture::args(), fixture::setup());
        let svg = Report::new(&args, &setup, fixture::measured(), Some(2)).latency_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        for label in [
            ">daum fails (2.00 s)<",
            ">fleet switched to juso: +100 ms<",
            ">daum back up (4.00 s)<",
            ">fleet CLOSED: +1100 ms<",
        ] {
            assert!(svg.contains(label), "{label}");
        }
        // One cross per error, and one in the legend.
        assert_eq!(svg.matches("<path ").count(), 3);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn ticks_are_one_two_five() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(60.0), 100.0);
        assert_eq!(nice_floor(3.0), 2.0);
        assert_eq!(nice_floor(0.07), 0.05);
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(100.0), "100");
    }
}
