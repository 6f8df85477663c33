//! Every chart renders for empty, single-sample, all-failed and month-long inputs; SVG output
//! parses as XML; PNG files have the asked size.

use super::latency::cell_colour;
use super::*;
use crate::analysis::latency::{bin_counts, cdf, log_bin_edges, percentiles};
use crate::store::histogram::{new_latency_histogram, record_micros};

const T0: i64 = 1_790_000_000_000 / 86_400_000 * 86_400_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// A plausible latency histogram for hour `i`: 20-60 ms with a daily swing and a slow tail.
fn hour_histogram(i: i64, samples: u64) -> hdrhistogram::Histogram<u64> {
    let mut h = new_latency_histogram();
    let swing = 1.0 + 0.5 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
    for j in 0..samples {
        let x = ((j * 7_919 + i as u64 * 104_729) % 1000) as f64 / 1000.0;
        let tail = if j % 50 == 0 { 400_000.0 * x } else { 0.0 };
        record_micros(&mut h, (20_000.0 * swing + 40_000.0 * x * x + tail) as u64);
    }
    h
}

/// The checks of hour `i` in the fixture: every day, hour 3 has some failures, hour 5 all of
/// them and hour 9 no measurement (neither has a latency); `samples` 0: every check failed.
fn hour_checks(i: i64, samples: u64) -> CheckCell {
    let (start_ms, end_ms) = (T0 + i * HOUR, T0 + (i + 1) * HOUR);
    let (checks, failed) = match (samples, i % 24) {
        (0, _) | (_, 5) => (60, 60),
        (_, 9) => (0, 0),
        (_, 3) => (60, 12),
        _ => (60, 0),
    };
    CheckCell { start_ms, end_ms, checks, failed }
}

/// Latency charts over `hours` hours with `samples` checks each (0: nothing recorded).
fn latency_charts(hours: i64, samples: u64) -> Vec<Chart> {
    let (from, to) = (T0, T0 + hours * HOUR);
    let tz = TimeZone::UTC;
    let checks: Vec<CheckCell> = (0..hours).map(|i| hour_checks(i, samples)).collect();
    let hists: Vec<(i64, hdrhistogram::Histogram<u64>)> = if samples == 0 {
        Vec::new()
    } else {
        (0..hours)
            .filter(|i| hour_checks(*i, samples).failed < hour_checks(*i, samples).checks)
            .map(|i| (from + i * HOUR, hour_histogram(i, samples)))
            .collect()
    };
    let edges = log_bin_edges(0.1, 10_000.0, 10);
    let mut total = new_latency_histogram();
    for (_, h) in &hists {
        total.add(h).unwrap();
    }
    vec![
        Chart::Bands(LatencyBands {
            title: "Latency percentiles: cluster lon-1, http first byte".into(),
            from_ms: from,
            to_ms: to,
            tz: tz.clone(),
            points: hists
                .iter()
                .filter_map(|(t, h)| {
                    percentiles(h).map(|figures| BandPoint { start_ms: *t, end_ms: t + HOUR, figures })
                })
                .collect(),
            checks: checks.clone(),
        }),
        Chart::Heatmap(LatencyHeatmap {
            title: "Latency distribution: cluster lon-1, http first byte".into(),
            from_ms: from,
            to_ms: to,
            tz: tz.clone(),
            edges_ms: edges.clone(),
            columns: hists
                .iter()
                .map(|(t, h)| HeatmapColumn { start_ms: *t, end_ms: t + HOUR, counts: bin_counts(h, &edges) })
                .collect(),
            checks,
        }),
        Chart::Phases(PhaseBreakdown {
            title: "Where the time goes".into(),
            phases: vec!["dns".into(), "connect".into(), "tls".into(), "first byte".into()],
            over_time: None,
            groups: ["lon-1", "fra-1", "ams-1"]
                .iter()
                .enumerate()
                .map(|(i, name)| PhaseGroup {
                    label: format!("cluster {name}"),
                    start_ms: from,
                    end_ms: to,
                    means_ms: if samples == 0 {
                        vec![0.0; 4]
                    } else {
                        vec![1.5, 0.8 + i as f64, 4.0, 30.0 + 5.0 * i as f64]
                    },
                })
                .collect(),
        }),
        Chart::Phases(PhaseBreakdown {
            title: "Where the time goes, over time".into(),
            phases: vec!["dns".into(), "connect".into(), "tls".into(), "first byte".into()],
            over_time: Some((from, to, tz.clone())),
            groups: hists
                .iter()
                .map(|(t, h)| PhaseGroup {
                    label: String::new(),
                    start_ms: *t,
                    end_ms: t + HOUR,
                    means_ms: vec![1.0, 0.5, 3.0, h.mean() / 1000.0],
                })
                .collect(),
        }),
        Chart::Cdf(LatencyCdf {
            title: "Latency CDF".into(),
            series: vec![
                CdfSeries { label: "cluster lon-1".into(), points: cdf(&total) },
                CdfSeries { label: "cluster fra-1".into(), points: cdf(&hour_histogram(3, samples.min(100))) },
            ],
        }),
        Chart::Availability(AvailabilityTimeline {
            title: "Sites down on lon-1".into(),
            from_ms: from,
            to_ms: to,
            tz: tz.clone(),
            buckets: (0..hours.min(2000) * 60)
                .step_by(5)
                .filter(|_| samples > 0)
                .map(|m| (from + m * 60_000, if (100..130).contains(&(m % 700)) { 7 } else { u32::from(m % 97 == 0) }))
                .collect(),
            total_sites: 140,
            incidents: vec![(from + 100 * 60_000, from + 130 * 60_000)],
            maintenance: vec![(from + 5 * HOUR, from + 7 * HOUR)],
        }),
        Chart::DailyAvailability(DailyAvailability {
            title: "Daily availability".into(),
            days: (0..((hours + 23) / 24).max(1))
                .map(|d| {
                    let date = jiff::civil::date(2026, 10, 1).checked_add(jiff::Span::new().days(d)).unwrap();
                    (date, (samples > 0).then_some(if d == 3 { 99.2 } else { 99.95 + (d % 3) as f64 * 0.02 }))
                })
                .collect(),
            target_percent: 99.9,
            partial: vec![true],
        }),
    ]
}

fn assert_well_formed(svg: &str) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("SVG is not well-formed: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn every_chart_renders_for_empty_single_failed_and_month_long_inputs() {
    for (what, hours, samples) in
        [("empty", 24, 0), ("single sample", 1, 1), ("all failed", 24, 0), ("month", 31 * 24, 60)]
    {
        for chart in latency_charts(hours, samples) {
            let svg = render_svg(&chart, ChartSize::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_well_formed(&svg);
            assert!(svg.contains("font-family=\"sans-serif\""), "{what}: text is text");
        }
    }
}

#[test]
fn titles_and_units_are_in_the_svg() {
    let charts = latency_charts(24, 100);
    let svg = render_svg(&charts[0], ChartSize::default()).unwrap();
    assert!(svg.contains("Latency percentiles: cluster lon-1"), "title");
    assert!(svg.contains("time (UTC)") && svg.contains("latency (log scale)"), "axis descriptions");
    assert!(svg.contains(" ms\n"), "latency ticks carry units");
    assert!(svg.contains("p50 (median)"), "legend");
}

#[test]
fn png_files_have_the_asked_size_and_svg_files_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (i, chart) in latency_charts(48, 50).iter().enumerate() {
        for size in [ChartSize::default(), ChartSize { width: 640, height: 360 }] {
            let png = dir.path().join(format!("chart-{i}-{}.png", size.width));
            write_file(chart, &png, size).unwrap();
            assert_eq!(png_size(&std::fs::read(&png).unwrap()), (size.width, size.height));
        }
        let svg = dir.path().join(format!("chart-{i}.SVG"));
        write_file(chart, &svg, ChartSize::default()).unwrap();
        assert_well_formed(&std::fs::read_to_string(&svg).unwrap());
    }
    let error = write_file(&latency_charts(1, 1)[0], &dir.path().join("chart.jpg"), ChartSize::default()).unwrap_err();
    assert!(error.to_string().contains("expected a file name ending in .png or .svg"), "{error}");
}

#[test]
fn log_axes_cover_the_data_with_round_ticks() {
    let (bottom, top, ticks) = log_axis(23.0, 870.0);
    assert_eq!((bottom, top), (10.0, 1000.0));
    assert_eq!(ticks.first(), Some(&10.0));
    assert!(ticks.contains(&50.0) && ticks.contains(&1000.0));
    // A single value still gets two decades around it.
    let (bottom, top, _) = log_axis(30.0, 30.0);
    assert!(bottom <= 30.0 && top >= 30.0 && top / bottom >= 100.0);
}

#[test]
fn time_ticks_are_round_times() {
    let (ticks, format) = time_ticks(T0 + 5 * 60_000, T0 + DAY, &TimeZone::UTC, 9);
    assert_eq!(format, "%H:%M");
    assert!(ticks.iter().all(|t| t % (3 * HOUR) == 0), "{ticks:?}");
    let (ticks, format) = time_ticks(T0, T0 + 31 * DAY, &TimeZone::UTC, 9);
    assert_eq!(format, "%b %-d");
    assert!(ticks.iter().all(|t| t % DAY == 0));
}

/// `FLEETPROBE_CHART_DIR=/tmp/charts cargo test --lib dump_charts -- --ignored` writes every
/// chart as PNG and SVG, to look at.
#[test]
#[ignore]
fn dump_charts_for_review() {
    let dir =
        std::path::PathBuf::from(std::env::var("FLEETPROBE_CHART_DIR").unwrap_or_else(|_| "target/charts".into()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["bands", "heatmap", "phases", "phases-over-time", "cdf", "availability", "daily"];
    for (set, hours, samples) in [("day", 24, 60), ("month", 31 * 24, 60), ("empty", 24, 0), ("single", 1, 1)] {
        for (chart, name) in latency_charts(hours, samples).iter().zip(names) {
            write_file(chart, &dir.join(format!("{set}-{name}.png")), ChartSize::default()).unwrap();
            write_file(chart, &dir.join(format!("{set}-{name}.svg")), ChartSize::default()).unwrap();
            // The SLA PDF's size.
            let small = ChartSize { width: 640, height: 260 };
            write_file(chart, &dir.join(format!("{set}-{name}-640.png")), small).unwrap();
        }
    }
}

/// Each `<text>` of an SVG chart that is not rotated: its content and horizontal extent, measured
/// with rustybuzz on the embedded DejaVu Sans at the SVG's own font size (what a viewer draws).
fn text_extents(svg: &str) -> Vec<(String, f64, f64, f64)> {
    // (text, left, right, font size)
    let face = rustybuzz::Face::from_slice(DEJAVU_SANS, 0).expect("font");
    let doc = roxmltree::Document::parse(svg).expect("SVG parses");
    doc.descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("transform").is_none())
        .map(|n| {
            let text: String = n.text().unwrap_or_default().trim().to_string();
            let number = |name: &str| n.attribute(name).and_then(|v| v.parse::<f64>().ok()).expect(name);
            let (x, size) = (number("x"), number("font-size"));
            let mut buffer = rustybuzz::UnicodeBuffer::new();
            buffer.push_str(&text);
            let shaped = rustybuzz::shape(&face, &[], buffer);
            let units: i32 = shaped.glyph_positions().iter().map(|p| p.x_advance).sum();
            let width = f64::from(units) / f64::from(face.units_per_em()) * size;
            let left = match n.attribute("text-anchor") {
                Some("middle") => x - width / 2.0,
                Some("end") => x - width,
                _ => x,
            };
            (text, left, left + width, size)
        })
        .collect()
}

#[test]
fn titles_fit_whole_and_the_last_time_tick_stays_inside() {
    let long = "Latency percentiles: site c0042-s1, http first byte · 2026-10-01 00:00 CEST – 2026-11-01 00:00 CET";
    let mut charts = latency_charts(31 * 24, 20);
    for (index, width) in [(0, 640), (1, 640), (1, 1000)] {
        match &mut charts[index] {
            Chart::Bands(c) => c.title = long.into(),
            Chart::Heatmap(c) => c.title = long.into(),
            _ => unreachable!(),
        }
        let svg = render_svg(&charts[index], ChartSize { width, height: 260 }).unwrap();
        let texts = text_extents(&svg);
        for (text, left, right, _) in &texts {
            assert!(*left >= 0.0 && *right <= f64::from(width), "{text:?} spans {left:.1}..{right:.1} of {width}");
        }
        // The title (the text larger than the labels) is whole, on one or two lines, never cut.
        let title: Vec<&str> = texts.iter().filter(|t| t.3 >= 12.5).map(|t| t.0.as_str()).collect();
        assert_eq!(title.join(" "), long, "chart {index} at {width}");
    }
    // A month ending on a tick: the last label ("Mar 1") sits at the end of the axis.
    let from = jiff::civil::date(2027, 2, 1).to_zoned(TimeZone::UTC).unwrap().timestamp().as_millisecond();
    let chart = Chart::Bands(LatencyBands {
        title: "February".into(),
        from_ms: from,
        to_ms: from + 28 * DAY,
        tz: TimeZone::UTC,
        points: (0..28)
            .filter_map(|d| {
                percentiles(&hour_histogram(d, 20)).map(|figures| BandPoint {
                    start_ms: from + d * DAY,
                    end_ms: from + (d + 1) * DAY,
                    figures,
                })
            })
            .collect(),
        checks: Vec::new(),
    });
    let texts = text_extents(&render_svg(&chart, ChartSize { width: 640, height: 260 }).unwrap());
    let last = texts.iter().find(|t| t.0 == "Mar 1").expect("a tick at the end of February");
    assert!(last.2 <= 640.0, "last tick label ends at {}", last.2);
}

/// What a strip cell's `<title>` says: the bucket's start ("2026-10-01 05:00") and the share of
/// its checks that failed, `None` for no data.
fn strip_cells(svg: &str) -> Vec<(String, Option<f64>)> {
    let doc = roxmltree::Document::parse(svg).expect("SVG parses");
    let titles: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| n.children().find(|c| c.has_tag_name("title")).and_then(|t| t.text()).map(str::to_string))
        .collect();
    assert_eq!(titles.first().map(String::as_str), Some("Failed checks per time bucket"), "{titles:?}");
    titles[1..]
        .iter()
        .map(|title| {
            let (when, what) = title.split_once(": ").expect("when: what");
            let share = if what.starts_with("no data") {
                None
            } else if what.starts_with("no failed checks") {
                Some(0.0)
            } else if what.starts_with("all ") {
                Some(1.0)
            } else {
                let (failed, rest) = what.split_once(" of ").expect("n of m");
                let checks = rest.split(' ').next().unwrap();
                Some(failed.parse::<f64>().unwrap() / checks.parse::<f64>().unwrap())
            };
            (when[..16].to_string(), share)
        })
        .collect()
}

/// Bands and heatmap draw a strip under the plot, one titled cell per hour: the hour whose
/// checks all failed is red and says so, the hour with nothing measured is "no data", not
/// clean, although the plot above has a gap at both.
#[test]
fn the_strip_tells_failed_checks_from_missing_data() {
    for chart in &latency_charts(24, 60)[..2] {
        let svg = render_svg(chart, ChartSize::default()).unwrap();
        let cells = strip_cells(&svg);
        assert_eq!(cells.len(), 24);
        for (hour, (start, share)) in cells.iter().enumerate() {
            assert_eq!(start, &format!("{} {hour:02}:00", show_time(T0, &TimeZone::UTC, "%Y-%m-%d")));
            let expected = match hour {
                3 => Some(0.2),
                5 => Some(1.0),
                9 => None,
                _ => Some(0.0),
            };
            assert_eq!(*share, expected, "hour {hour}");
        }
        assert!(svg.contains("failed checks:") && svg.contains("no data"), "the key names both");
    }
    // Without counts there is no strip, and the time axis stays under the plot.
    let mut charts = latency_charts(24, 60);
    if let Chart::Bands(c) = &mut charts[0] {
        c.checks.clear();
    }
    let svg = render_svg(&charts[0], ChartSize::default()).unwrap();
    assert!(!svg.contains("<title>") && svg.contains("time (UTC)"));
}

#[test]
fn strip_colours_grade_the_share_of_failed_checks() {
    let cell = |checks, failed| CheckCell { start_ms: 0, end_ms: 1, checks, failed };
    let (none, few, most, all, empty) = (
        cell_colour(&cell(60, 0)),
        cell_colour(&cell(60, 1)),
        cell_colour(&cell(60, 59)),
        cell_colour(&cell(60, 60)),
        cell_colour(&cell(0, 0)),
    );
    let distinct = [none, few, most, all, empty];
    for (i, a) in distinct.iter().enumerate() {
        for b in &distinct[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // More failures, darker orange.
    let lightness = |c: RGBColor| u32::from(c.0) + u32::from(c.1) + u32::from(c.2);
    assert!(lightness(few) > lightness(most));
}
