//! Charts: latency and availability pictures as SVG (a string, for HTML and PDF reports) or as
//! PNG and SVG files.
//!
//! Last stage of the data flow, and pure apart from writing the file: each chart takes a plain
//! input struct built by a report (`report::latency`, the availability reports) and draws it
//! with plotters and the DejaVu Sans font compiled into the binary, so no system font is needed.
//! `latency.rs` draws bands and heatmaps (each with the strip of failed checks under it), phase
//! breakdowns and CDFs; `availability.rs` the availability timeline and the daily availability
//! bars.

mod availability;
mod latency;

use std::path::Path;
use std::sync::OnceLock;

use jiff::tz::TimeZone;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use availability::{AvailabilityTimeline, DailyAvailability};
pub use latency::{
    BandPoint, CdfSeries, CheckCell, HeatmapColumn, LatencyBands, LatencyCdf, LatencyHeatmap, PhaseBreakdown,
    PhaseGroup,
};

/// Every chart fleetprobe draws.
#[derive(Debug, Clone)]
pub enum Chart {
    Bands(LatencyBands),
    Heatmap(LatencyHeatmap),
    Phases(PhaseBreakdown),
    Cdf(LatencyCdf),
    Availability(AvailabilityTimeline),
    DailyAvailability(DailyAvailability),
}

/// Pixels (PNG) or SVG user units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSize {
    fn default() -> Self {
        ChartSize { width: 1000, height: 500 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartFormat {
    Png,
    Svg,
}

impl ChartFormat {
    /// The format named by a file's extension.
    pub fn from_path(path: &Path) -> Result<ChartFormat, ChartError> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(ChartFormat::Png),
            Some("svg") => Ok(ChartFormat::Svg),
            _ => Err(ChartError(format!("{}: expected a file name ending in .png or .svg", path.display()))),
        }
    }
}

/// Why a chart could not be drawn or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(pub String);

fn fail<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("drawing the chart: {e:?}"))
}

const FONT: &str = "sans-serif";
static DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font once; plotters finds it by the family name "sans-serif".
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the embedded DejaVu Sans font could not be loaded".to_string())
        })
        .clone()
        .map_err(ChartError)
}

/// The chart as an SVG document (text stays text, in the font family "sans-serif").
pub fn render_svg(chart: &Chart, size: ChartSize) -> Result<String, ChartError> {
    register_font()?;
    let mut svg = String::new();
    let titles;
    {
        let root = SVGBackend::with_string(&mut svg, (size.width, size.height)).into_drawing_area();
        titles = draw(chart, &root)?;
        root.present().map_err(fail)?;
    }
    Ok(match titles {
        Some(titles) => titles.insert_into(&svg),
        None => svg,
    })
}

/// Writes the chart to `path`, as PNG or SVG by its extension.
pub fn write_file(chart: &Chart, path: &Path, size: ChartSize) -> Result<(), ChartError> {
    let write_error = |e: std::io::Error| ChartError(format!("{}: cannot write the chart: {e}", path.display()));
    match ChartFormat::from_path(path)? {
        ChartFormat::Svg => std::fs::write(path, render_svg(chart, size)?).map_err(write_error),
        ChartFormat::Png => {
            register_font()?;
            let root = BitMapBackend::new(path, (size.width, size.height)).into_drawing_area();
            draw(chart, &root)?;
            root.present().map_err(|e| ChartError(format!("{}: cannot write the chart: {e}", path.display())))
        }
    }
}

/// Draws the chart; returns the `<title>`s its SVG elements should carry, if any.
fn draw<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<Option<RectTitles>, ChartError> {
    root.fill(&WHITE).map_err(fail)?;
    match chart {
        Chart::Bands(c) => latency::draw_bands(c, root),
        Chart::Heatmap(c) => latency::draw_heatmap(c, root),
        Chart::Phases(c) => latency::draw_phases(c, root).map(|_| None),
        Chart::Cdf(c) => latency::draw_cdf(c, root).map(|_| None),
        Chart::Availability(c) => availability::draw_timeline(c, root).map(|_| None),
        Chart::DailyAvailability(c) => availability::draw_daily(c, root).map(|_| None),
    }
}

/// `<title>`s for rectangles a chart drew one after another (plotters' SVG has no titles of
/// its own): the first `<rect>` with exactly the geometry `first` (x, y, width, height, in
/// pixels of the whole picture) gets `titles[0]`, and the `<rect>`s right after it the rest,
/// in order. Viewers show a title as a tooltip; tests and screen readers read them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RectTitles {
    first: (i32, i32, i32, i32),
    titles: Vec<String>,
}

impl RectTitles {
    fn insert_into(&self, svg: &str) -> String {
        let (x, y, w, h) = self.first;
        let Some(start) = svg.find(&format!("<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" ")) else {
            return svg.to_string();
        };
        let mut out = String::with_capacity(svg.len() + self.titles.iter().map(|t| t.len() + 24).sum::<usize>());
        out.push_str(&svg[..start]);
        let mut rest = &svg[start..];
        for title in &self.titles {
            let (Some(0), Some(end)) = (rest.find("<rect "), rest.find("/>")) else { break };
            out.push_str(&rest[..end]);
            out.push_str("><title>");
            out.push_str(&escape_xml(title));
            out.push_str("</title></rect>");
            rest = rest[end + 2..].trim_start_matches('\n');
            out.push('\n');
        }
        out.push_str(rest);
        out
    }
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

// ---- shared pieces ----------------------------------------------------------------------------

/// Ten distinguishable colours (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn palette(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const TEXT: RGBColor = RGBColor(40, 40, 40);
const GRID: RGBColor = RGBColor(225, 225, 225);

const TITLE_LARGEST: f64 = 19.0;
const TITLE_SMALLEST: f64 = 13.0;
/// Room kept free at each side of a title line.
const TITLE_PAD: u32 = 10;

fn title_style(px: f64) -> TextStyle<'static> {
    // plotters draws text smaller than asked (about 0.8); ask for what should come out.
    (FONT, px / 0.8).into_font().color(&TEXT)
}

/// Width of `text` in `style` as plotters measures it with the embedded font. An SVG viewer
/// draws the same text narrower (plotters writes 1/1.24 of the size as the SVG font size, and
/// measures glyphs at the full size over ascent to descent), so what fits here fits there.
fn text_width<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str, style: &TextStyle) -> u32 {
    area.estimate_text_size(text, style).map_or(u32::MAX, |(w, _)| w)
}

/// The lines of a title in `room` pixels: the whole title at the largest size that fits (down
/// to a legible minimum), else broken at spaces into two lines at the minimum; a line still too
/// wide (one very long word) is cut with "…", never clipped by the picture's edge.
fn title_lines<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str, room: u32) -> (f64, Vec<String>) {
    let mut px = TITLE_LARGEST;
    while px >= TITLE_SMALLEST {
        if text_width(area, title, &title_style(px)) <= room {
            return (px, vec![title.to_string()]);
        }
        px -= 0.5;
    }
    let style = title_style(TITLE_SMALLEST);
    let fits = |line: &str| text_width(area, line, &style) <= room;
    let mut lines: Vec<String> = Vec::new();
    for word in title.split(' ') {
        match lines.last_mut() {
            Some(line) if fits(&format!("{line} {word}")) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.len() > 2 {
        let rest = lines.split_off(1).join(" ");
        lines.push(rest);
    }
    for line in &mut lines {
        if !fits(line) {
            let mut chars: Vec<char> = line.chars().collect();
            while !chars.is_empty() && !fits(&format!("{}…", chars.iter().collect::<String>())) {
                chars.pop();
            }
            *line = format!("{}…", chars.iter().collect::<String>());
        }
    }
    (TITLE_SMALLEST, lines)
}

/// Draws `title` centred at the top of `area` (see [`title_lines`]) and returns the area below.
fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, ChartError> {
    let (width, _) = area.dim_in_pixel();
    let (px, lines) = title_lines(area, title, width.saturating_sub(2 * TITLE_PAD));
    let style = title_style(px).pos(Pos::new(HPos::Center, VPos::Top));
    let line_height = (px * 1.3).ceil() as i32;
    let top = 6;
    for (i, line) in lines.iter().enumerate() {
        area.draw_text(line, &style, (width as i32 / 2, top + i as i32 * line_height)).map_err(fail)?;
    }
    let used = top + lines.len() as i32 * line_height;
    Ok(area.split_vertically(used).1)
}

/// Right margin for a time axis: room for half the last tick's label, which is centred on its
/// tick and may sit at the very end of the axis.
fn time_axis_margin<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    ticks: &[i64],
    tz: &TimeZone,
    format: &str,
    least: u32,
) -> u32 {
    let last = ticks.last().map_or(0, |t| text_width(area, &show_time(*t, tz, format), &label_style()));
    least.max(last / 2 + 6)
}

fn label_style() -> TextStyle<'static> {
    (FONT, 14).into_font().color(&TEXT)
}

fn area_size<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> ChartSize {
    let (width, height) = root.dim_in_pixel();
    ChartSize { width, height }
}

/// A note in the middle of the plot, e.g. that there is no data.
fn note<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, text: &str) -> Result<(), ChartError> {
    let (w, h) = root.dim_in_pixel();
    let style = (FONT, 18).into_font().color(&RGBColor(120, 120, 120)).pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(text.to_string(), (w as i32 / 2, h as i32 / 2), style)).map_err(fail)
}

/// Tick marks for a time axis: round times in `tz` (every 5 minutes, hour, 6 hours, day, ...),
/// at most about `max_ticks` of them, and the strftime format to label them with.
fn time_ticks(from_ms: i64, to_ms: i64, tz: &TimeZone, max_ticks: i64) -> (Vec<i64>, &'static str) {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    let span = (to_ms - from_ms).max(1);
    let steps = [
        MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        HOUR,
        2 * HOUR,
        3 * HOUR,
        6 * HOUR,
        12 * HOUR,
        DAY,
        2 * DAY,
        7 * DAY,
        14 * DAY,
        28 * DAY,
        91 * DAY,
    ];
    let step = steps.into_iter().find(|s| span / s <= max_ticks).unwrap_or(182 * DAY);
    // Align to round local times; the zone's offset at the start is close enough for ticks.
    let offset_ms =
        jiff::Timestamp::from_millisecond(from_ms).map(|t| i64::from(tz.to_offset(t).seconds()) * 1000).unwrap_or(0);
    let align = if step >= 7 * DAY { DAY } else { step };
    let mut at = (from_ms + offset_ms).div_euclid(align) * align - offset_ms;
    if at < from_ms {
        at += align;
    }
    let mut ticks = Vec::new();
    while at <= to_ms && ticks.len() < 200 {
        ticks.push(at);
        at += step;
    }
    let format = if step >= DAY {
        "%b %-d"
    } else if span > DAY {
        "%b %-d %H:%M"
    } else {
        "%H:%M"
    };
    (ticks, format)
}

fn show_time(ms: i64, tz: &TimeZone, format: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).strftime(format).to_string())
        .unwrap_or_default()
}

fn tz_name(tz: &TimeZone) -> String {
    tz.iana_name().map_or_else(|| "UTC".to_string(), str::to_string)
}

/// A latency in milliseconds for an axis label: "0.5 ms", "20 ms", "1.5 s".
fn latency_label(ms: f64) -> String {
    if ms >= 1000.0 { format!("{} s", trim_number(ms / 1000.0)) } else { format!("{} ms", trim_number(ms)) }
}

/// Three significant digits at most (what the histograms hold), trailing zeros dropped.
fn trim_number(v: f64) -> String {
    let text = match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    };
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// Log-axis range and ticks covering [lo, hi] ms: whole decades, ticks at 1-2-5 steps when the
/// range spans few decades.
fn log_axis(lo_ms: f64, hi_ms: f64) -> (f64, f64, Vec<f64>) {
    let lo = lo_ms.max(0.001);
    let hi = hi_ms.max(lo);
    let mut bottom = 10f64.powf(lo.log10().floor());
    let mut top = 10f64.powf(hi.log10().ceil());
    if top <= bottom * 1.0001 {
        top = bottom * 10.0;
    }
    // Show at least two decades so a single value is not pinned to an edge.
    if top / bottom < 100.0 {
        if lo / bottom < top / hi {
            bottom /= 10.0;
        } else {
            top *= 10.0;
        }
    }
    let decades = (top / bottom).log10().round() as i32;
    let multipliers: &[f64] = if decades <= 3 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut ticks = Vec::new();
    let mut decade = bottom;
    while decade <= top * 1.0001 {
        for m in multipliers {
            let t = decade * m;
            if t <= top * 1.0001 {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    (bottom, top, ticks)
}

#[cfg(test)]
mod tests;
