//! Latency charts: percentile bands over time, the distribution as a heatmap, the time per
//! phase, and CDFs comparing clusters or sites. Inputs are figures already computed from merged
//! histograms (`analysis::latency`); nothing here reads the store.

use jiff::tz::TimeZone;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    ChartError, FONT, GRID, RectTitles, TEXT, area_size, fail, label_style, latency_label, log_axis, note, palette,
    show_time, text_width, time_axis_margin, time_ticks, titled, trim_number, tz_name,
};
use crate::analysis::latency::Percentiles;

/// Percentiles of one time bucket.
#[derive(Debug, Clone)]
pub struct BandPoint {
    pub start_ms: i64,
    pub end_ms: i64,
    pub figures: Percentiles,
}

/// The checks measured in one time bucket and how many failed, for the strip under a chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCell {
    pub start_ms: i64,
    pub end_ms: i64,
    /// 0: nothing was measured (no valid run, or no check of the scope in one).
    pub checks: u64,
    pub failed: u64,
}

/// p50 line with p90, p99 and max bands over [from, to), SmokePing style. Buckets without data
/// are gaps; the strip of `checks` under the plot tells a bucket whose checks all failed from
/// one where nothing was measured.
#[derive(Debug, Clone)]
pub struct LatencyBands {
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub tz: TimeZone,
    pub points: Vec<BandPoint>,
    /// One cell per bucket for which results are kept, in time order; none: no strip.
    pub checks: Vec<CheckCell>,
}

/// Checks per latency bin in one time bucket.
#[derive(Debug, Clone)]
pub struct HeatmapColumn {
    pub start_ms: i64,
    pub end_ms: i64,
    /// `counts[i]` checks took from `edges_ms[i]` to `edges_ms[i + 1]`.
    pub counts: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct LatencyHeatmap {
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub tz: TimeZone,
    /// Bin edges in milliseconds, increasing (logarithmic bins read best).
    pub edges_ms: Vec<f64>,
    pub columns: Vec<HeatmapColumn>,
    /// The strip under the plot, as for [`LatencyBands::checks`].
    pub checks: Vec<CheckCell>,
}

/// One stack of the phase breakdown: a cluster or site, or a time bucket.
#[derive(Debug, Clone)]
pub struct PhaseGroup {
    /// Name shown under the stack (when not over time).
    pub label: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Mean time of each phase, in the order of [`PhaseBreakdown::phases`].
    pub means_ms: Vec<f64>,
}

/// Mean time per phase, stacked: one stack per group, or over time when `over_time` gives the
/// period and zone.
#[derive(Debug, Clone)]
pub struct PhaseBreakdown {
    pub title: String,
    pub phases: Vec<String>,
    pub over_time: Option<(i64, i64, TimeZone)>,
    pub groups: Vec<PhaseGroup>,
}

#[derive(Debug, Clone)]
pub struct CdfSeries {
    pub label: String,
    /// (latency in ms, share of checks at or below it, 0 to 1), increasing.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct LatencyCdf {
    pub title: String,
    pub series: Vec<CdfSeries>,
}

/// Room right of a heatmap for its colour scale.
const LEGEND_WIDTH: u32 = 150;

/// Which two figures bound a band.
type BandRange = fn(&Percentiles) -> (f64, f64);

const NO_DATA: &str = "No latency recorded in this period (no successful checks)";

/// The note over an empty plot, from what the strip under it counted.
fn no_latency_note(checks: &[CheckCell]) -> &'static str {
    let measured = checks.iter().any(|c| c.checks > 0);
    if measured && checks.iter().all(|c| c.failed >= c.checks) {
        "No latency recorded: every check in this period failed"
    } else if !checks.is_empty() && !measured {
        "Nothing measured in this period"
    } else {
        NO_DATA
    }
}

fn legend_box<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> Result<(), ChartError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(label_style())
        .draw()
        .map_err(fail)
}

pub(super) fn draw_bands<DB: DrawingBackend>(
    c: &LatencyBands,
    root: &DrawingArea<DB, Shift>,
) -> Result<Option<RectTitles>, ChartError> {
    let size = area_size(root);
    let (lo, hi) = c.points.iter().fold((f64::MAX, 0.0f64), |(lo, hi), p| {
        (lo.min(p.figures.p50_ms.min(p.figures.min_ms)), hi.max(p.figures.max_ms))
    });
    // A decade of headroom above the data keeps the legend off the bands.
    let (bottom, top, y_ticks) = if c.points.is_empty() { log_axis(1.0, 100.0) } else { log_axis(lo, hi * 10.0) };
    let (from, to) = (c.from_ms, c.to_ms.max(c.from_ms + 1));
    let (x_ticks, format) = time_ticks(from, to, &c.tz, (size.width / 110).max(2) as i64);
    let right = time_axis_margin(root, &x_ticks, &c.tz, format, 48);
    let body = titled(root, &c.title)?;
    let (plot, strip) = split_for_strip(&body, !c.checks.is_empty());
    let axis = TimeAxis { from, to, ticks: x_ticks.clone(), tz: &c.tz, format, right };
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .margin_right(right)
        .margin_bottom(if strip.is_some() { 0 } else { 12 })
        .x_label_area_size(if strip.is_some() { 0 } else { 40 })
        .y_label_area_size(72)
        .build_cartesian_2d((from..to).with_key_points(x_ticks), (bottom..top).log_scale().with_key_points(y_ticks))
        .map_err(fail)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .axis_desc_style(label_style())
        .label_style(label_style())
        .x_desc(format!("time ({})", tz_name(&c.tz)))
        .y_desc("latency (log scale)")
        .x_label_formatter(&|ms| show_time(*ms, &c.tz, format))
        .y_label_formatter(&|ms| latency_label(*ms))
        .draw()
        .map_err(fail)?;
    let titles = match &strip {
        Some(area) => Some(draw_check_strip(root, area, &c.checks, &axis)?),
        None => None,
    };
    if c.points.is_empty() {
        note(root, no_latency_note(&c.checks))?;
        return Ok(titles);
    }
    // Bands from the outside in, each bucket its own rectangle so gaps in the data stay gaps.
    let bands: [(&str, RGBColor, BandRange); 3] = [
        ("p99 – max", RGBColor(222, 222, 235), |p| (p.p99_ms, p.max_ms)),
        ("p90 – p99", RGBColor(170, 180, 215), |p| (p.p90_ms, p.p99_ms)),
        ("p50 – p90", RGBColor(105, 125, 190), |p| (p.p50_ms, p.p90_ms)),
    ];
    for (label, colour, range) in bands {
        chart
            .draw_series(c.points.iter().map(|p| {
                let (a, b) = range(&p.figures);
                Rectangle::new([(p.start_ms, a.max(bottom)), (p.end_ms, b.max(a * 1.01).min(top))], colour.filled())
            }))
            .map_err(fail)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour.filled()));
    }
    // The median as a line through the middle of each bucket, broken where buckets are missing.
    let p50 = RGBColor(200, 30, 30);
    let mut runs: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut last_end = None;
    for p in &c.points {
        let point = ((p.start_ms + p.end_ms) / 2, p.figures.p50_ms);
        match runs.last_mut() {
            Some(run) if last_end == Some(p.start_ms) => run.push(point),
            _ => runs.push(vec![point]),
        }
        last_end = Some(p.end_ms);
    }
    for (i, run) in runs.into_iter().enumerate() {
        let style = ShapeStyle { color: p50.to_rgba(), filled: false, stroke_width: 2 };
        if run.len() == 1 {
            let series =
                chart.draw_series(run.iter().map(|&(x, y)| Circle::new((x, y), 3, p50.filled()))).map_err(fail)?;
            if i == 0 {
                series.label("p50 (median)").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
            continue;
        }
        let series = chart.draw_series(LineSeries::new(run, style)).map_err(fail)?;
        if i == 0 {
            series.label("p50 (median)").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
    }
    legend_box(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(titles)
}

/// Viridis, sampled: dark blue for few checks through green to yellow for many.
fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

pub(super) fn draw_heatmap<DB: DrawingBackend>(
    c: &LatencyHeatmap,
    root: &DrawingArea<DB, Shift>,
) -> Result<Option<RectTitles>, ChartError> {
    let size = area_size(root);
    let bins = c.edges_ms.len().saturating_sub(1);
    let max_count = c.columns.iter().flat_map(|col| col.counts.iter().copied()).max().unwrap_or(0);
    // Only the occupied latency range, in whole decades.
    let first_bin = c.columns.iter().filter_map(|col| col.counts.iter().position(|&n| n > 0)).min().unwrap_or(0);
    let last_bin = c.columns.iter().filter_map(|col| col.counts.iter().rposition(|&n| n > 0)).max().unwrap_or(0);
    let (bottom, top, y_ticks) = if bins == 0 || max_count == 0 {
        log_axis(1.0, 100.0)
    } else {
        log_axis(c.edges_ms[first_bin], c.edges_ms[(last_bin + 1).min(bins)])
    };

    // The title spans the whole picture, plot and colour scale.
    let body = titled(root, &c.title)?;
    let (upper, strip) = split_for_strip(&body, !c.checks.is_empty());
    let plot_width = size.width.saturating_sub(LEGEND_WIDTH);
    let (plot, legend) = upper.split_horizontally(plot_width);
    let strip = strip.map(|area| area.split_horizontally(plot_width).0);
    let (from, to) = (c.from_ms, c.to_ms.max(c.from_ms + 1));
    let (x_ticks, format) = time_ticks(from, to, &c.tz, (plot_width / 110).max(2) as i64);
    let right = time_axis_margin(root, &x_ticks, &c.tz, format, 48);
    let axis = TimeAxis { from, to, ticks: x_ticks.clone(), tz: &c.tz, format, right };
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .margin_right(right)
        .margin_bottom(if strip.is_some() { 0 } else { 12 })
        .x_label_area_size(if strip.is_some() { 0 } else { 40 })
        .y_label_area_size(72)
        .build_cartesian_2d((from..to).with_key_points(x_ticks), (bottom..top).log_scale().with_key_points(y_ticks))
        .map_err(fail)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_desc_style(label_style())
        .label_style(label_style())
        .x_desc(format!("time ({})", tz_name(&c.tz)))
        .y_desc("latency (log scale)")
        .x_label_formatter(&|ms| show_time(*ms, &c.tz, format))
        .y_label_formatter(&|ms| latency_label(*ms))
        .draw()
        .map_err(fail)?;
    let titles = match &strip {
        Some(area) => Some(draw_check_strip(root, area, &c.checks, &axis)?),
        None => None,
    };
    if max_count == 0 {
        note(&plot, no_latency_note(&c.checks))?;
        return Ok(titles);
    }
    // Colour by log(count), so a tail of a few slow checks still shows next to thousands.
    let scale = |n: u64| (n as f64).ln_1p() / (max_count as f64).ln_1p();
    chart
        .draw_series(c.columns.iter().flat_map(|col| {
            col.counts.iter().enumerate().filter(|(_, n)| **n > 0).map(move |(i, &n)| {
                let (a, b) = (c.edges_ms[i].max(bottom), c.edges_ms[(i + 1).min(bins)].min(top));
                Rectangle::new([(col.start_ms, a), (col.end_ms, b)], viridis(scale(n)).filled())
            })
        }))
        .map_err(fail)?;

    // The colour scale: checks per cell, logarithmic like the colouring.
    let most = (max_count as f64).max(2.0);
    let mut ticks: Vec<f64> =
        (0..10).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|t| *t * 1.3 <= most).collect();
    ticks.push(most);
    let mut scale_chart = ChartBuilder::on(&legend)
        .caption("checks per cell", label_style())
        .margin_top(24)
        .margin_bottom(if strip.is_some() { 12 } else { 52 })
        .margin_left(30)
        .margin_right(20)
        .right_y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, (1.0..most).log_scale().with_key_points(ticks))
        .map_err(fail)?;
    scale_chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .label_style(label_style())
        .y_label_formatter(&|n| trim_number(n.round()))
        .draw()
        .map_err(fail)?;
    let steps = 64;
    scale_chart
        .draw_series((0..steps).map(|i| {
            let (a, b) = (f64::from(i) / f64::from(steps), f64::from(i + 1) / f64::from(steps));
            let n = |t: f64| ((max_count as f64).ln_1p() * t).exp_m1().max(1.0);
            Rectangle::new([(0.0, n(a)), (1.0, n(b))], viridis(a).filled())
        }))
        .map_err(fail)?;
    Ok(titles)
}

/// A time axis as the plot above the strip drew it, so the strip lines up with the plot.
struct TimeAxis<'a> {
    from: i64,
    to: i64,
    ticks: Vec<i64>,
    tz: &'a TimeZone,
    format: &'static str,
    /// Right margin of the plot.
    right: u32,
}

/// Room under the plot for the strip of failed checks: a gap, the strip, the time axis labels
/// (the plot above has none) and the key.
const STRIP_GAP: u32 = 4;
const STRIP_HEIGHT: u32 = 16;
const STRIP_AXIS: u32 = 40;
const STRIP_KEY: u32 = 24;

const CLEAN: RGBColor = RGBColor(161, 217, 155);
const ALL_FAILED: RGBColor = RGBColor(189, 0, 38);
const NO_DATA_FILL: RGBColor = RGBColor(238, 238, 238);
const NO_DATA_HATCH: RGBColor = RGBColor(160, 160, 160);

/// Some checks failed: light orange for a few, dark orange for nearly all (the square root
/// keeps one failure in a thousand visibly orange).
fn some_failed(share: f64) -> RGBColor {
    let (light, dark) = ((253, 190, 133), (217, 72, 1));
    let t = share.clamp(0.0, 1.0).sqrt();
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(mix(light.0, dark.0), mix(light.1, dark.1), mix(light.2, dark.2))
}

pub(super) fn cell_colour(cell: &CheckCell) -> RGBColor {
    match (cell.checks, cell.failed) {
        (0, _) => NO_DATA_FILL,
        (_, 0) => CLEAN,
        (checks, failed) if failed >= checks => ALL_FAILED,
        (checks, failed) => some_failed(failed as f64 / checks as f64),
    }
}

/// "2026-10-01 02:00 – 03:00 UTC: all 24 checks failed".
fn cell_title(cell: &CheckCell, tz: &TimeZone) -> String {
    let start = show_time(cell.start_ms, tz, "%Y-%m-%d %H:%M");
    let same_day = show_time(cell.start_ms, tz, "%F") == show_time(cell.end_ms, tz, "%F");
    let end = show_time(cell.end_ms, tz, if same_day { "%H:%M" } else { "%Y-%m-%d %H:%M" });
    let what = match (cell.checks, cell.failed) {
        (0, _) => "no data (nothing measured)".to_string(),
        (checks, 0) => format!("no failed checks (of {checks})"),
        (checks, failed) if failed >= checks => format!("all {checks} checks failed"),
        (checks, failed) => {
            format!("{failed} of {checks} checks failed ({} %)", trim_number(failed as f64 * 100.0 / checks as f64))
        }
    };
    format!("{start} – {end} {}: {what}", tz_name(tz))
}

/// Splits the area under a title into the plot and, with a strip, the room under it.
fn split_for_strip<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    with_strip: bool,
) -> (DrawingArea<DB, Shift>, Option<DrawingArea<DB, Shift>>) {
    if !with_strip {
        return (body.clone(), None);
    }
    let (_, height) = body.dim_in_pixel();
    let (plot, under) = body.split_vertically(height.saturating_sub(STRIP_GAP + STRIP_HEIGHT + STRIP_AXIS + STRIP_KEY));
    (plot, Some(under))
}

/// The strip of failed checks under a time-series plot, SmokePing style: one cell per bucket,
/// green when none of its checks failed, orange graded by the share that failed, red when all
/// did, and hatched grey where nothing was measured (the plot above shows a gap for both of the
/// last two). Time for which no results are kept has no cell. Draws the time axis under the
/// strip and a key, and returns the cells' titles for the SVG.
fn draw_check_strip<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &DrawingArea<DB, Shift>,
    cells: &[CheckCell],
    axis: &TimeAxis<'_>,
) -> Result<RectTitles, ChartError> {
    let mut strip = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(axis.right)
        .margin_top(STRIP_GAP)
        .margin_bottom(STRIP_KEY)
        .x_label_area_size(STRIP_AXIS)
        .y_label_area_size(72)
        .build_cartesian_2d((axis.from..axis.to).with_key_points(axis.ticks.clone()), 0.0..1.0)
        .map_err(fail)?;
    strip
        .configure_mesh()
        .disable_mesh()
        .disable_y_axis()
        .axis_desc_style(label_style())
        .label_style(label_style())
        .x_desc(format!("time ({})", tz_name(axis.tz)))
        .x_label_formatter(&|ms| show_time(*ms, axis.tz, axis.format))
        .draw()
        .map_err(fail)?;
    // Drawn in pixels of the whole picture, so the SVG's rectangles are known exactly.
    let x = |ms: i64| strip.backend_coord(&(ms.clamp(axis.from, axis.to), 0.0)).0;
    let (top, bottom) = (strip.backend_coord(&(axis.from, 1.0)).1, strip.backend_coord(&(axis.from, 0.0)).1);
    let (left, right) = (x(axis.from), x(axis.to));
    let outline = (left - 1, top - 1, right - left + 1, bottom - top + 1);
    root.draw(&Rectangle::new([(outline.0, outline.1), (right, bottom)], RGBColor(170, 170, 170))).map_err(fail)?;
    let mut titles = vec!["Failed checks per time bucket".to_string()];
    for cell in cells {
        root.draw(&Rectangle::new([(x(cell.start_ms), top), (x(cell.end_ms), bottom - 1)], cell_colour(cell).filled()))
            .map_err(fail)?;
        titles.push(cell_title(cell, axis.tz));
    }
    // Hatching over each stretch with nothing measured.
    let mut stretches: Vec<(i32, i32)> = Vec::new();
    let mut last_end = None;
    for cell in cells.iter().filter(|c| c.checks == 0) {
        match stretches.last_mut() {
            Some(stretch) if last_end == Some(cell.start_ms) => stretch.1 = x(cell.end_ms),
            _ => stretches.push((x(cell.start_ms), x(cell.end_ms))),
        }
        last_end = Some(cell.end_ms);
    }
    for (x0, x1) in stretches {
        hatch(root, (x0, top), (x1, bottom - 1))?;
    }
    // The strip's name left of it.
    let name = label_style().pos(Pos::new(HPos::Right, VPos::Center));
    root.draw_text("failed", &name, (left - 8, (top + bottom) / 2)).map_err(fail)?;
    draw_strip_key(root, (left, bottom + STRIP_AXIS as i32 + STRIP_KEY as i32 / 2 - 2), right)?;
    Ok(RectTitles { first: outline, titles })
}

/// 45° lines every 5 pixels across [x0, x1] × [y0, y1].
fn hatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
) -> Result<(), ChartError> {
    let height = y1 - y0;
    let mut k = x0 - height;
    while k < x1 {
        // The line (k + t, y1 - t) for t in [0, height], cut to [x0, x1].
        let (t0, t1) = ((x0 - k).max(0), (x1 - k).min(height));
        if t0 < t1 {
            root.draw(&PathElement::new(vec![(k + t0, y1 - t0), (k + t1, y1 - t1)], NO_DATA_HATCH)).map_err(fail)?;
        }
        k += 5;
    }
    Ok(())
}

/// The key under the strip: "failed checks: ■ none ■■■ some ■ all ▨ no data", its words
/// shortened when the picture is narrow.
fn draw_strip_key<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (left, middle): (i32, i32),
    right: i32,
) -> Result<(), ChartError> {
    let style = label_style().pos(Pos::new(HPos::Left, VPos::Center));
    let long = ["failed checks:", "none", "some (darker: more)", "all", "no data (nothing measured)"];
    let short = ["failed checks:", "none", "some", "all", "no data"];
    // Swatches: one for none, three for some, one for all, one hatched for no data.
    let swatches = 6 * 16 + 4 * 12;
    let width = |words: &[&str; 5]| words.iter().map(|w| text_width(root, w, &label_style()) as i32).sum::<i32>();
    let words = if left + width(&long) + swatches + 5 * 8 <= right { long } else { short };
    let mut at = left;
    let text = |at: &mut i32, word: &str| -> Result<(), ChartError> {
        root.draw_text(word, &style, (*at, middle)).map_err(fail)?;
        *at += text_width(root, word, &label_style()) as i32 + 8;
        Ok(())
    };
    let swatch = |at: &mut i32, colour: RGBColor| -> Result<(), ChartError> {
        root.draw(&Rectangle::new([(*at, middle - 5), (*at + 13, middle + 5)], colour.filled())).map_err(fail)?;
        *at += 16;
        Ok(())
    };
    text(&mut at, words[0])?;
    swatch(&mut at, CLEAN)?;
    text(&mut at, words[1])?;
    at += 4;
    for share in [0.05, 0.35, 0.8] {
        swatch(&mut at, some_failed(share))?;
    }
    text(&mut at, words[2])?;
    at += 4;
    swatch(&mut at, ALL_FAILED)?;
    text(&mut at, words[3])?;
    at += 12;
    root.draw(&Rectangle::new([(at, middle - 5), (at + 13, middle + 5)], NO_DATA_FILL.filled())).map_err(fail)?;
    hatch(root, (at, middle - 5), (at + 13, middle + 5))?;
    root.draw(&Rectangle::new([(at, middle - 5), (at + 13, middle + 5)], NO_DATA_HATCH)).map_err(fail)?;
    at += 16;
    text(&mut at, words[4])
}

pub(super) fn draw_phases<DB: DrawingBackend>(
    c: &PhaseBreakdown,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), ChartError> {
    let size = area_size(root);
    let total = c.groups.iter().map(|g| g.means_ms.iter().sum::<f64>()).fold(0.0, f64::max);
    let top = if total > 0.0 { total * 1.15 } else { 1.0 };
    let empty = c.groups.iter().all(|g| g.means_ms.iter().sum::<f64>() <= 0.0);
    // Stacks: (x from, x to, means). Over time the x axis is time; otherwise one slot per group.
    let ms_axis = |ms: &f64| latency_label(*ms);
    let draw_stacks = |chart: &mut ChartContext<'_, DB, Cartesian2d<_, _>>,
                       stacks: Vec<(i64, i64, &Vec<f64>)>|
     -> Result<(), ChartError> {
        for (phase_index, phase) in c.phases.iter().enumerate() {
            let colour = palette(phase_index);
            chart
                .draw_series(stacks.iter().map(|(x0, x1, means)| {
                    let below: f64 = means.iter().take(phase_index).sum();
                    let here = means.get(phase_index).copied().unwrap_or(0.0);
                    Rectangle::new([(*x0, below), (*x1, below + here)], colour.filled())
                }))
                .map_err(fail)?
                .label(phase.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], colour.filled()));
        }
        Ok(())
    };
    match &c.over_time {
        Some((from, to, tz)) => {
            let (from, to) = (*from, (*to).max(*from + 1));
            let (ticks, format) = time_ticks(from, to, tz, (size.width / 110).max(2) as i64);
            let right = time_axis_margin(root, &ticks, tz, format, 48);
            let body = titled(root, &c.title)?;
            let mut chart = ChartBuilder::on(&body)
                .margin(12)
                .margin_right(right)
                .x_label_area_size(40)
                .y_label_area_size(72)
                .build_cartesian_2d((from..to).with_key_points(ticks), 0.0..top)
                .map_err(fail)?;
            chart
                .configure_mesh()
                .bold_line_style(GRID)
                .light_line_style(TRANSPARENT)
                .axis_desc_style(label_style())
                .label_style(label_style())
                .x_desc(format!("time ({})", tz_name(tz)))
                .y_desc("mean time per check")
                .x_label_formatter(&|ms| show_time(*ms, tz, format))
                .y_label_formatter(&ms_axis)
                .draw()
                .map_err(fail)?;
            if empty {
                return note(root, NO_DATA);
            }
            let stacks = c.groups.iter().map(|g| (g.start_ms, g.end_ms, &g.means_ms)).collect();
            draw_stacks(&mut chart, stacks)?;
            legend_box(&mut chart, SeriesLabelPosition::UpperRight)
        }
        None => {
            // One slot of 1000 units per group, so the axis stays integer.
            let n = c.groups.len().max(1) as i64;
            let labels: Vec<String> = c.groups.iter().map(|g| g.label.clone()).collect();
            let body = titled(root, &c.title)?;
            let mut chart = ChartBuilder::on(&body)
                .margin(12)
                .margin_right(48)
                .x_label_area_size(40)
                .y_label_area_size(72)
                .build_cartesian_2d(
                    (-500..n * 1000 - 500).with_key_points((0..n).map(|i| i * 1000).collect()),
                    0.0..top,
                )
                .map_err(fail)?;
            chart
                .configure_mesh()
                .bold_line_style(GRID)
                .light_line_style(TRANSPARENT)
                .disable_x_mesh()
                .axis_desc_style(label_style())
                .label_style(label_style())
                .y_desc("mean time per check")
                .x_label_formatter(&|x| {
                    labels.get(usize::try_from((x + 500) / 1000).unwrap_or(0)).cloned().unwrap_or_default()
                })
                .y_label_formatter(&ms_axis)
                .draw()
                .map_err(fail)?;
            if empty {
                return note(root, NO_DATA);
            }
            let stacks = (0i64..).zip(&c.groups).map(|(i, g)| (i * 1000 - 300, i * 1000 + 300, &g.means_ms)).collect();
            draw_stacks(&mut chart, stacks)?;
            // The total on top of each stack.
            chart
                .draw_series((0i64..).zip(&c.groups).map(|(i, g)| {
                    let sum: f64 = g.means_ms.iter().sum();
                    Text::new(
                        latency_label(sum),
                        (i * 1000 - 120, sum + top * 0.05),
                        (FONT, 14).into_font().color(&TEXT),
                    )
                }))
                .map_err(fail)?;
            legend_box(&mut chart, SeriesLabelPosition::UpperRight)
        }
    }
}

pub(super) fn draw_cdf<DB: DrawingBackend>(c: &LatencyCdf, root: &DrawingArea<DB, Shift>) -> Result<(), ChartError> {
    let values = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let empty = c.series.iter().all(|s| s.points.is_empty());
    let (left, right, ticks) = if empty { log_axis(1.0, 100.0) } else { log_axis(lo, hi) };
    let body = titled(root, &c.title)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_right(48)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d((left..right).log_scale().with_key_points(ticks), 0.0..100.0)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_desc_style(label_style())
        .label_style(label_style())
        .x_desc("latency (log scale)")
        .y_desc("checks at or below (%)")
        .x_label_formatter(&|ms| latency_label(*ms))
        .y_label_formatter(&|p| format!("{p:.0} %"))
        .draw()
        .map_err(fail)?;
    if empty {
        return note(root, NO_DATA);
    }
    // Reference lines at the percentiles the tables show.
    for q in [50.0, 90.0, 99.0] {
        chart.draw_series(LineSeries::new([(left, q), (right, q)], RGBColor(190, 190, 190))).map_err(fail)?;
        chart
            .draw_series([Text::new(format!("p{q:.0}"), (left * 1.05, q + 1.0), (FONT, 12).into_font().color(&TEXT))])
            .map_err(fail)?;
    }
    for (i, s) in c.series.iter().enumerate() {
        let colour = palette(i);
        let style = ShapeStyle { color: colour.to_rgba(), filled: false, stroke_width: 2 };
        // A step function: each value holds its share until the next.
        let mut steps = Vec::with_capacity(s.points.len() * 2 + 1);
        let mut previous = 0.0;
        for &(ms, share) in &s.points {
            steps.push((ms, previous * 100.0));
            steps.push((ms, share * 100.0));
            previous = share;
        }
        if let Some(&(_, share)) = s.points.last() {
            steps.push((right, share * 100.0));
        }
        chart
            .draw_series(LineSeries::new(steps, style))
            .map_err(fail)?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    legend_box(&mut chart, SeriesLabelPosition::LowerRight)
}
