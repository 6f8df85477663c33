//! Availability charts: a cluster's sites down over time with incidents and maintenance
//! shaded, and daily availability against the plan's target (for the SLA PDF). Inputs are
//! plain structs filled by the availability analysis; nothing here reads the store.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    ChartError, FONT, GRID, TEXT, area_size, fail, label_style, note, show_time, time_axis_margin, time_ticks, titled,
    tz_name,
};

/// Sites down over time on one cluster.
#[derive(Debug, Clone)]
pub struct AvailabilityTimeline {
    /// Says what, where and when, e.g. "Sites down on lon-1 · 2026-10".
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub tz: TimeZone,
    /// (bucket start in Unix ms, sites down from then until the next bucket or `to_ms`), in
    /// time order. Unmonitored stretches are simply left out.
    pub buckets: Vec<(i64, u32)>,
    /// Sites on the cluster (the height the axis is measured against).
    pub total_sites: u32,
    /// Cluster incidents, [start, end) in Unix ms.
    pub incidents: Vec<(i64, i64)>,
    /// Maintenance windows, [start, end) in Unix ms.
    pub maintenance: Vec<(i64, i64)>,
}

/// Availability per day against a target, e.g. for one customer's month.
#[derive(Debug, Clone)]
pub struct DailyAvailability {
    pub title: String,
    /// Each day and its availability in percent; `None` when the day was not monitored.
    pub days: Vec<(Date, Option<f64>)>,
    /// The plan's target in percent, drawn as a line.
    pub target_percent: f64,
    /// Days the period covers only in part (its first and last when it starts or ends mid-day):
    /// drawn lighter and marked `*`.
    pub partial: Vec<bool>,
}

const DOWN: RGBColor = RGBColor(200, 40, 40);
const INCIDENT: RGBColor = RGBColor(255, 200, 170);
const MAINTENANCE: RGBColor = RGBColor(190, 215, 245);

pub(super) fn draw_timeline<DB: DrawingBackend>(
    c: &AvailabilityTimeline,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), ChartError> {
    let size = area_size(root);
    let (from, to) = (c.from_ms, c.to_ms.max(c.from_ms + 1));
    let peak = c.buckets.iter().map(|b| b.1).max().unwrap_or(0);
    // Scaled to the peak (small outages must be visible), with room above it; never past the fleet.
    let top =
        if peak == 0 { c.total_sites.clamp(1, 10) } else { (peak + peak.div_ceil(5)).min(c.total_sites.max(peak)) };
    let top = f64::from(top.max(1));
    let (x_ticks, format) = time_ticks(from, to, &c.tz, (size.width / 110).max(2) as i64);
    let right = time_axis_margin(root, &x_ticks, &c.tz, format, 30);
    let body = titled(root, &c.title)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_right(right)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d((from..to).with_key_points(x_ticks), 0.0..top)
        .map_err(fail)?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_desc_style(label_style())
        .label_style(label_style())
        .x_desc(format!("time ({})", tz_name(&c.tz)))
        .y_desc(format!("sites down (of {})", c.total_sites))
        .x_label_formatter(&|ms| show_time(*ms, &c.tz, format))
        .y_label_formatter(&|n| if n.fract().abs() < 1e-9 { format!("{n:.0}") } else { String::new() })
        .draw()
        .map_err(fail)?;
    let clip = |(a, b): (i64, i64)| (a.max(from), b.min(to));
    let shaded = |intervals: &[(i64, i64)], colour: RGBColor, top: f64| -> Vec<Rectangle<(i64, f64)>> {
        intervals
            .iter()
            .map(|&i| clip(i))
            .filter(|(a, b)| a < b)
            .map(|(a, b)| Rectangle::new([(a, 0.0), (b, top)], colour.mix(0.7).filled()))
            .collect()
    };
    // Incidents first, maintenance over them: an incident that overruns its window shows both.
    chart
        .draw_series(shaded(&c.incidents, INCIDENT, top))
        .map_err(fail)?
        .label("incident")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], INCIDENT.filled()));
    chart
        .draw_series(shaded(&c.maintenance, MAINTENANCE, top))
        .map_err(fail)?
        .label("maintenance")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], MAINTENANCE.filled()));
    // Sites down as a step area: each bucket holds its value until the next one starts.
    let mut outline = Vec::with_capacity(c.buckets.len() * 2 + 2);
    for (i, &(at, down)) in c.buckets.iter().enumerate() {
        let end = c.buckets.get(i + 1).map_or(to, |next| next.0);
        let (a, b) = clip((at, end));
        if a >= b {
            continue;
        }
        outline.push((a, f64::from(down)));
        outline.push((b, f64::from(down)));
    }
    chart
        .draw_series(AreaSeries::new(outline, 0.0, DOWN.mix(0.55)).border_style(ShapeStyle {
            color: DOWN.to_rgba(),
            filled: false,
            stroke_width: 1,
        }))
        .map_err(fail)?
        .label("sites down")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], DOWN.mix(0.55).filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font(label_style())
        .draw()
        .map_err(fail)?;
    if c.buckets.is_empty() {
        note(root, "No monitored time in this period")?;
    }
    Ok(())
}

pub(super) fn draw_daily<DB: DrawingBackend>(
    c: &DailyAvailability,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), ChartError> {
    let size = area_size(root);
    // The whole scale, 0 to 100 %: a cut axis would make a dip to 99 % look like an outage. The
    // headroom above 100 keeps the target line and the figures off the frame.
    let top = 108.0;
    // One slot of 1000 units per day, so the axis stays integer.
    let n = c.days.len().max(1);
    let slots = n as i64;
    let partial = |i: usize| c.partial.get(i).copied().unwrap_or(false);
    let labels: Vec<String> = c
        .days
        .iter()
        .enumerate()
        .map(|(i, (d, _))| format!("{}{}", d.strftime("%b %-d"), if partial(i) { "*" } else { "" }))
        .collect();
    let every = n.div_ceil(((size.width / 70) as usize).max(1)).max(1);
    let any_partial = (0..c.days.len()).any(partial);
    let body = titled(root, &c.title)?;
    let mut chart = ChartBuilder::on(&body)
        .margin(12)
        .margin_right(30)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(
            (-500..slots * 1000 - 500).with_key_points((0..slots).step_by(every).map(|i| i * 1000).collect()),
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
        .x_desc(format!(
            "day · green: target met · red: target missed · dashed: target {} %{}",
            c.target_percent,
            if any_partial { " · *: part of the day in the period" } else { "" }
        ))
        .y_desc("availability (%)")
        .x_label_formatter(&|x| labels.get(usize::try_from((x + 500) / 1000).unwrap_or(0)).cloned().unwrap_or_default())
        .y_labels(6)
        .y_label_formatter(&|p| if *p <= 100.0 { format!("{p:.0}") } else { String::new() })
        .draw()
        .map_err(fail)?;
    if c.days.iter().all(|d| d.1.is_none()) {
        return note(root, "No monitored days in this period");
    }
    let met = RGBColor(60, 150, 75);
    let missed = RGBColor(200, 40, 40);
    chart
        .draw_series((0i64..).zip(&c.days).enumerate().filter_map(|(i, (x, (_, a)))| {
            a.map(|a| {
                let colour = if a >= c.target_percent { met } else { missed };
                // A partial day is drawn lighter: its figure covers less time.
                let colour = if partial(i) { colour.mix(0.45) } else { colour.to_rgba() };
                Rectangle::new([(x * 1000 - 380, 0.0), (x * 1000 + 380, a.max(0.0))], colour.filled())
            })
        }))
        .map_err(fail)?;
    // The target over the bars, dashed, so it shows where a bar reaches it too.
    let target = c.target_percent.clamp(0.0, 100.0);
    let dash = 160i64;
    chart
        .draw_series((0..(slots * 1000) / (2 * dash)).map(|k| {
            let from = -500 + k * 2 * dash;
            PathElement::new(
                [(from, target), ((from + dash).min(slots * 1000 - 500), target)],
                ShapeStyle { color: RGBColor(20, 20, 20).to_rgba(), filled: false, stroke_width: 2 },
            )
        }))
        .map_err(fail)?;
    // Days below the target carry their figure, centred above the bar (in the headroom for the
    // tall ones), one decimal fewer on crowded charts.
    let decimals = if n > 20 { 1 } else { 2 };
    let label_size = if n > 20 { 10 } else { 12 };
    chart
        .draw_series((0i64..).zip(&c.days).filter_map(|(x, (_, a))| {
            a.filter(|a| *a < c.target_percent).map(|a| {
                Text::new(
                    format!("{:.decimals$}", crate::report::table::truncate_to(a, decimals)),
                    (x * 1000, a.max(0.0) + 1.5),
                    (FONT, label_size).into_font().color(&TEXT).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                )
            })
        }))
        .map_err(fail)?;
    Ok(())
}
