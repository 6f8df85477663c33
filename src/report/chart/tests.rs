//! Every chart renders for empty, single-sample, all-failed and month-long inputs; SVG output
//! parses as XML; PNG files have the asked size.

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

/// Latency charts over `hours` hours with `samples` checks each (0: nothing recorded).
fn latency_charts(hours: i64, samples: u64) -> Vec<Chart> {
    let (from, to) = (T0, T0 + hours * HOUR);
    let tz = TimeZone::UTC;
    let hists: Vec<(i64, hdrhistogram::Histogram<u64>)> = if samples == 0 {
        Vec::new()
    } else {
        (0..hours).map(|i| (from + i * HOUR, hour_histogram(i, samples))).collect()
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
        }
    }
}
