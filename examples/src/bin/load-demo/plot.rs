//! `latency.svg`: per-bin latency over time on a log scale and who served each bin, with the
//! failure, the switch and the recovery marked. Drawn with plotters' SVG backend, which writes
//! text as `<text>` for the viewer to lay out, so no font is needed here.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 590;
const LEFT: i32 = 70;
const RIGHT: i32 = 960;
/// Top panel (latency): top and bottom y.
const TOP_Y: (i32, i32) = (70, 340);
/// Bottom panel (searches per bin by provider).
const BOTTOM_Y: (i32, i32) = (400, 510);

const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
const DAUM: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const JUSO: RGBColor = RGBColor(0xe8, 0xa3, 0x3d);
const NOTICE: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);
const ERROR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const P50: RGBColor = DAUM;
const P99: RGBColor = RGBColor(0xd9, 0x73, 0x1a);
const MAX: RGBColor = RGBColor(0x9a, 0x9a, 0x9a);
const BAND: RGBColor = RGBColor(0xff, 0xf1, 0xd6);
const BAND_EDGE: RGBColor = RGBColor(0xc9, 0xa3, 0x6b);
const FRAME: RGBColor = RGBColor(0x88, 0x88, 0x88);
const GRID: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Text of `px` pixels, its baseline at the point drawn (the SVG backend divides the size it is
/// given by 1.24).
fn text(px: f64, colour: RGBColor, anchor: HPos) -> TextStyle<'static> {
    styled(px, FontStyle::Normal, colour, anchor)
}

fn styled(px: f64, style: FontStyle, colour: RGBColor, anchor: HPos) -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FONT), px * 1.24, style)
        .color(&colour)
        .pos(Pos::new(anchor, VPos::Bottom))
}

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

    /// Seconds to pixels along the time axis, for what is drawn across both panels.
    fn x(&self, seconds: f64) -> i32 {
        let f = (seconds / self.x_max).clamp(0.0, 1.0);
        LEFT + (f64::from(RIGHT - LEFT) * f).round() as i32
    }

    /// The SVG document.
    pub(crate) fn render(&self) -> Result<String, DrawingAreaErrorKind<std::io::Error>> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE)?;
            root.draw(&Text::new(
                "Search latency, two instances sharing Redis: daum fails, the fleet switches to juso",
                (LEFT, 22),
                styled(15.0, FontStyle::Bold, BLACK, HPos::Left),
            ))?;
            self.backup_band(&root)?;
            self.latency_panel(&root)?;
            self.served_panel(&root)?;
            self.legend(&root, BOTTOM_Y.1 + 62)?;
            self.markers(&root)?;
            root.present()?;
        }
        Ok(svg)
    }

    /// A shaded band over both panels while daum's breaker was OPEN on the fleet.
    fn backup_band(&self, root: &Area<'_>) -> DrawResult {
        let Some(switch) = self.timeline.switch_ms else {
            return Ok(());
        };
        let end = self.timeline.recovered_ms.unwrap_or(self.x_max * 1000.0);
        let (x0, x1) = (self.x(switch / 1000.0), self.x(end / 1000.0));
        root.draw(&Rectangle::new(
            [(x0, TOP_Y.0), (x1, BOTTOM_Y.1)],
            BAND.filled(),
        ))
    }

    /// Latency per bin on a log scale: p50 and p99 lines, max as dots, errors as red crosses.
    fn latency_panel(&self, root: &Area<'_>) -> DrawResult {
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
        // Grid and labels: 1, 2, 5 × 10^k.
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi * 1.0001 {
            for m in [1.0, 2.0, 5.0] {
                let v = decade * m;
                if v >= lo * 0.9999 && v <= hi * 1.0001 {
                    ticks.push(v);
                }
            }
            decade *= 10.0;
        }
        let mut chart = ChartBuilder::on(root)
            .margin_top(TOP_Y.0)
            .margin_bottom(HEIGHT as i32 - TOP_Y.1)
            .margin_right(WIDTH as i32 - RIGHT)
            .y_label_area_size(LEFT)
            .build_cartesian_2d(0.0..self.x_max, (lo..hi).log_scale().with_key_points(ticks))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_x_axis()
            .bold_line_style(GRID)
            .axis_style(FRAME)
            .y_label_formatter(&|v| tick_label(*v))
            .y_label_style(text(12.0, BLACK, HPos::Right))
            .y_desc(format!("latency per {BIN_MS} ms (ms, log scale)"))
            .axis_desc_style(text(12.0, BLACK, HPos::Center))
            .draw()?;
        let centre = |k: usize| (k as f64 + 0.5) * BIN_MS / 1000.0;
        let clamp = |ms: f64| ms.clamp(lo, hi);
        chart.draw_series(self.bins.iter().enumerate().filter_map(|(k, b)| {
            let max = *b.latencies.last()?;
            Some(Circle::new((centre(k), clamp(max)), 2, MAX.filled()))
        }))?;
        for (p, colour) in [(99.0, P99), (50.0, P50)] {
            let points = self
                .bins
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.latencies.is_empty())
                .map(|(k, b)| (centre(k), clamp(percentile(&b.latencies, p))));
            chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        }
        let errors = self
            .measured
            .samples
            .iter()
            .filter(|s| s.outcome.error.is_some());
        chart.draw_series(errors.map(|s| {
            let at = (s.start_ms / 1000.0, clamp(s.latency_ms));
            Cross::new(at, 4, ERROR.stroke_width(2))
        }))?;
        root.draw(&Rectangle::new(
            [(LEFT, TOP_Y.0), (RIGHT, TOP_Y.1)],
            FRAME.stroke_width(1),
        ))
    }

    /// Searches per bin, stacked by who answered: daum, juso, a notice, an error; the time axis
    /// under it.
    fn served_panel(&self, root: &Area<'_>) -> DrawResult {
        let most = self
            .bins
            .iter()
            .map(|b| b.daum + b.juso + b.notice + b.errors)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut chart = ChartBuilder::on(root)
            .margin_top(BOTTOM_Y.0)
            .margin_bottom(HEIGHT as i32 - BOTTOM_Y.1 - 40)
            .margin_right(WIDTH as i32 - RIGHT)
            .y_label_area_size(LEFT)
            .x_label_area_size(40)
            .build_cartesian_2d(0.0..self.x_max, (0..most).with_key_points(vec![0, most]))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .axis_style(FRAME)
            .x_labels(10)
            .x_label_formatter(&|v| tick_label(*v))
            .label_style(text(12.0, BLACK, HPos::Center))
            .y_label_style(text(12.0, BLACK, HPos::Right))
            .x_desc("time since the start of the run (s)")
            .y_desc("searches")
            .axis_desc_style(text(12.0, BLACK, HPos::Center))
            .draw()?;
        let width = BIN_MS / 1000.0;
        for (k, bin) in self.bins.iter().enumerate() {
            let x0 = k as f64 * width;
            let mut base = 0;
            for (count, colour) in [
                (bin.daum, DAUM),
                (bin.juso, JUSO),
                (bin.notice, NOTICE),
                (bin.errors, ERROR),
            ] {
                if count == 0 {
                    continue;
                }
                let top = base + count;
                chart.draw_series([Rectangle::new(
                    [(x0, base), (x0 + width, top)],
                    colour.filled(),
                )])?;
                base = top;
            }
        }
        root.draw(&Rectangle::new(
            [(LEFT, BOTTOM_Y.0), (RIGHT, BOTTOM_Y.1)],
            FRAME.stroke_width(1),
        ))?;
        // Its legend, above it.
        let y = BOTTOM_Y.0 - 8;
        root.draw(&Text::new(
            format!("searches per {BIN_MS} ms, by who answered:"),
            (LEFT, y),
            text(12.0, BLACK, HPos::Left),
        ))?;
        let mut x = LEFT + 250;
        for (label, colour) in [
            ("daum", DAUM),
            ("juso", JUSO),
            ("notice", NOTICE),
            ("error", ERROR),
        ] {
            root.draw(&Rectangle::new([(x, y - 10), (x + 10, y)], colour.filled()))?;
            root.draw(&Text::new(
                label,
                (x + 14, y),
                text(12.0, BLACK, HPos::Left),
            ))?;
            x += 70;
        }
        Ok(())
    }

    /// The latency panel's legend and the band's, in one row under the time axis.
    fn legend(&self, root: &Area<'_>, y: i32) -> DrawResult {
        enum Mark {
            Line,
            Dot,
            Cross,
            Band,
        }
        let mut x = LEFT;
        for (label, colour, mark) in [
            ("p50", P50, Mark::Line),
            ("p99", P99, Mark::Line),
            ("max per 100 ms", MAX, Mark::Dot),
            ("error seen by a user", ERROR, Mark::Cross),
            ("provider.daum OPEN on both instances", BAND, Mark::Band),
        ] {
            let centre = (x + 8, y - 4);
            match mark {
                Mark::Line => root.draw(&PathElement::new(
                    [(x, y - 4), (x + 16, y - 4)],
                    colour.stroke_width(2),
                ))?,
                Mark::Dot => root.draw(&Circle::new(centre, 3, colour.filled()))?,
                Mark::Cross => root.draw(&Cross::new(centre, 4, colour.stroke_width(2)))?,
                Mark::Band => {
                    let corners = [(x, y - 9), (x + 16, y + 1)];
                    root.draw(&Rectangle::new(corners, colour.filled()))?;
                    root.draw(&Rectangle::new(corners, BAND_EDGE))?;
                }
            }
            root.draw(&Text::new(
                label,
                (x + 20, y),
                text(12.0, BLACK, HPos::Left),
            ))?;
            // About 6.5 px per character at 12 px.
            x += 20 + (6.5 * label.chars().count() as f64) as i32 + 18;
        }
        Ok(())
    }

    /// Vertical lines at the failure, the switch, the primary's return and the recovery. The two
    /// of a pair are milliseconds apart: the first is labelled on its left, the second on its
    /// right; the recovery pair on a second row.
    fn markers(&self, root: &Area<'_>) -> DrawResult {
        let t = self.timeline;
        let seconds = |at: Option<f64>| at.map_or_else(String::new, |a| fmt_s(a / 1000.0));
        let delay = |from: Option<f64>, to: Option<f64>| {
            from.zip(to)
                .map_or_else(String::new, |(f, t)| fmt_ms(t - f))
        };
        let markers = [
            (
                t.fail_ms,
                ERROR,
                true,
                format!("daum fails ({} s)", seconds(t.fail_ms)),
                0,
            ),
            (
                t.switch_ms,
                RGBColor(0x8c, 0x4a, 0x00),
                false,
                format!("fleet switched to juso: +{}", delay(t.fail_ms, t.switch_ms)),
                0,
            ),
            (
                t.up_ms,
                RGBColor(0x2c, 0xa0, 0x2c),
                true,
                format!("daum back up ({} s)", seconds(t.up_ms)),
                1,
            ),
            (
                t.recovered_ms,
                RGBColor(0x1b, 0x7a, 0x1b),
                false,
                format!("fleet CLOSED: +{}", delay(t.up_ms, t.recovered_ms)),
                1,
            ),
        ];
        for (at, colour, dashed, label, row) in markers {
            let Some(at) = at else { continue };
            let x = self.x(at / 1000.0);
            let label_y = TOP_Y.0 - 24 + 13 * row;
            let (top, bottom) = (label_y - 10, BOTTOM_Y.1);
            if dashed {
                // Dashes of 5, gaps of 3, as the failure and the return are drawn.
                let mut y = top;
                while y < bottom {
                    let end = (y + 5).min(bottom);
                    root.draw(&PathElement::new(
                        [(x, y), (x, end)],
                        colour.stroke_width(2),
                    ))?;
                    y += 8;
                }
            } else {
                root.draw(&PathElement::new(
                    [(x, top), (x, bottom)],
                    colour.stroke_width(2),
                ))?;
            }
            // The event before the switch or the recovery is labelled on the left.
            let (anchor, dx) = if dashed {
                (HPos::Right, -4)
            } else {
                (HPos::Left, 4)
            };
            root.draw(&Text::new(
                label,
                (x + dx, label_y),
                text(12.0, colour, anchor),
            ))?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use crate::run::fixture;

    #[test]
    fn the_plot_marks_the_failure_the_switch_and_the_recovery() {
        let (args, setup) = (fixture::args(), fixture::setup());
        let svg = Report::new(&args, &setup, fixture::measured(), Some(2))
            .latency_svg()
            .unwrap();
        assert!(
            svg.starts_with("<svg width=\"1000\" height=\"590\""),
            "{svg:.100}"
        );
        assert!(svg.ends_with("</svg>\n"));
        for label in [
            "daum fails (2.00 s)",
            "fleet switched to juso: +100 ms",
            "daum back up (4.00 s)",
            "fleet CLOSED: +1100 ms",
            "time since the start of the run (s)",
            "latency per 100 ms (ms, log scale)",
        ] {
            assert!(svg.contains(&format!("\n{label}\n</text>")), "{label}");
        }
        // A cross (two lines) per error, and one in the legend.
        assert_eq!(
            svg.matches("<line opacity=\"1\" stroke=\"#D62728\"")
                .count(),
            6
        );
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
