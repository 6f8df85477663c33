//! `fleetprobe report latency`: latency percentiles of a cluster or site as a table, CSV or
//! JSON, or as a chart (PNG or SVG).
//!
//! Last stage of the data flow: reads merged histograms from the store
//! (`Store::latency_histograms`), turns them into figures with `analysis::latency`, and prints
//! them or hands them to `report::chart`.

use std::io::Write;
use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use crate::analysis::latency::{self as analysis, Percentiles};
use crate::cli::{CommandError, ConfigArgs, StoreArgs};
use crate::fleet::Fleet;
use crate::probe::{CheckKind, Phase};
use crate::report::chart::{self, Chart, ChartSize};
use crate::report::period::{Period, PeriodArgs};
use crate::store::{LatencyQuery, LatencyScope, Store, StoreError};

#[derive(clap::Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// A cluster (repeat, or separate with commas, to compare clusters)
    #[arg(long, value_delimiter = ',', required_unless_present = "site", conflicts_with = "site")]
    pub cluster: Vec<String>,
    /// A site id (repeat, or separate with commas, to compare sites)
    #[arg(long, value_delimiter = ',')]
    pub site: Vec<String>,
    /// Which check's latencies: any check kind (http, dns, ...)
    #[arg(long, default_value = "http", value_parser = parse_check)]
    pub check: CheckKind,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// One row per hour or day instead of one for the whole period (tables)
    #[arg(long, value_enum)]
    pub by: Option<ByArg>,
    /// Table format
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Draw a chart instead of a table (needs -o FILE.png or FILE.svg)
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// The phase charted by bands, heatmap and cdf [default: the check's own: first_byte for http, dns for dns]
    #[arg(long, value_parser = parse_phase)]
    pub phase: Option<Phase>,
    /// Write here: FILE.png or FILE.svg for a chart, any other name for the table
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Chart size in pixels
    #[arg(long, default_value = "1000x500", value_parser = parse_size)]
    pub size: ChartSize,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ByArg {
    Hour,
    Day,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum KindArg {
    /// p50 line with p90, p99 and max bands over time (SmokePing style)
    Bands,
    /// distribution over time: time × log latency, colour = checks
    Heatmap,
    /// mean time per phase, stacked: per cluster or site, or over time for one
    Phases,
    /// cumulative distribution, one line per cluster or site
    Cdf,
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::parse(text)
        .filter(|p| *p != Phase::Body)
        .ok_or_else(|| format!("`{text}` is not a phase; expected dns, connect, tls, first_byte or total"))
}

fn parse_size(text: &str) -> Result<ChartSize, String> {
    let bad = || format!("`{text}` is not a size; expected WIDTHxHEIGHT such as 1000x500");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (width, height) = (w.trim().parse::<u32>().map_err(|_| bad())?, h.trim().parse::<u32>().map_err(|_| bad())?);
    if !(200..=8000).contains(&width) || !(150..=8000).contains(&height) {
        return Err(format!("{text}: expected a width of 200 to 8000 and a height of 150 to 8000 pixels"));
    }
    Ok(ChartSize { width, height })
}

fn parse_check(text: &str) -> Result<CheckKind, String> {
    text.parse::<CheckKind>().map_err(|e| e.to_string())
}

/// One row of the percentile table.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRow {
    pub scope: String,
    pub check: &'static str,
    pub phase: &'static str,
    /// Bucket start and end (RFC 3339, UTC) when rows are per hour or day; the period otherwise.
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub figures: Percentiles,
}

pub fn run(args: &LatencyArgs) -> Result<(), CommandError> {
    let fleet = crate::cli::load_fleet(&args.config)?;
    let period = args.period.resolve("24h").map_err(CommandError::config)?;
    let scopes = scopes(&fleet, args)?;
    let store = crate::report::open_existing_store(&fleet, &args.store)?;
    let check = args.check;
    let chart_path = args.output.as_ref().filter(|p| chart::ChartFormat::from_path(p).is_ok());
    match (args.kind, chart_path) {
        (Some(kind), Some(path)) => {
            let chart = build_chart(store.as_ref(), &scopes, check, args.phase, kind, &period)?;
            chart::write_file(&chart, path, args.size).map_err(|e| CommandError::internal(e.to_string()))
        }
        (Some(_), None) => Err(CommandError::config(
            "--kind draws a chart: give -o FILE.png or -o FILE.svg (the extension picks the format)",
        )),
        (None, Some(path)) => Err(CommandError::config(format!(
            "-o {}: a chart needs --kind bands, heatmap, phases or cdf",
            path.display()
        ))),
        (None, None) => {
            let bucket_ms = args.by.map(|by| match by {
                ByArg::Hour => crate::store::rollup::HOUR_MS,
                ByArg::Day => crate::store::rollup::DAY_MS,
            });
            let rows = table_rows(store.as_ref(), &scopes, check, &period, bucket_ms)?;
            write_table(args, &rows, &period)
        }
    }
}

/// The scopes asked for, checked against the fleet so a typo is an error rather than no data.
fn scopes(fleet: &Fleet, args: &LatencyArgs) -> Result<Vec<LatencyScope>, CommandError> {
    let mut scopes = Vec::new();
    for name in &args.cluster {
        if fleet.cluster_index(name).is_none() {
            let known: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
            return Err(CommandError::config(format!(
                "--cluster: unknown cluster `{name}`; expected one of: {}",
                known.join(", ")
            )));
        }
        scopes.push(LatencyScope::Cluster(name.clone()));
    }
    for id in &args.site {
        if fleet.site_index(id).is_none() {
            return Err(CommandError::config(format!(
                "--site: unknown site `{id}`; expected a site id from {}",
                fleet.config_path.display()
            )));
        }
        scopes.push(LatencyScope::Site(id.clone()));
    }
    if scopes.is_empty() {
        return Err(CommandError::config("give --cluster NAME or --site ID"));
    }
    Ok(scopes)
}

pub fn scope_name(scope: &LatencyScope) -> String {
    match scope {
        LatencyScope::Cluster(name) => format!("cluster {name}"),
        LatencyScope::Site(id) => format!("site {id}"),
    }
}

fn store_error(e: StoreError) -> CommandError {
    CommandError::store(e.to_string())
}

/// Reads merged histograms for one scope, check and phase, bucket by bucket.
fn each_bucket(
    store: &dyn Store,
    scope: &LatencyScope,
    check: CheckKind,
    phase: Phase,
    period: &Period,
    bucket_ms: Option<i64>,
    each: &mut dyn FnMut(crate::store::TimedHistogram),
) -> Result<(), CommandError> {
    let query = LatencyQuery {
        scope: scope.clone(),
        check,
        phase,
        from_ms: period.start_ms(),
        to_ms: period.elapsed_end_ms(),
        bucket_ms,
    };
    store
        .latency_histograms(&query, &mut |bucket| {
            each(bucket);
            Ok(())
        })
        .map_err(store_error)
}

pub fn table_rows(
    store: &dyn Store,
    scopes: &[LatencyScope],
    check: CheckKind,
    period: &Period,
    bucket_ms: Option<i64>,
) -> Result<Vec<LatencyRow>, CommandError> {
    let mut rows = Vec::new();
    for scope in scopes {
        for &phase in check.phases() {
            each_bucket(store, scope, check, phase, period, bucket_ms, &mut |bucket| {
                if let Some(figures) = analysis::percentiles(&bucket.histogram) {
                    rows.push(LatencyRow {
                        scope: scope_name(scope),
                        check: check.as_str(),
                        phase: phase.as_str(),
                        from: crate::cli::format_ms(bucket.start_ms),
                        to: crate::cli::format_ms(bucket.end_ms),
                        figures,
                    });
                }
            })?;
        }
    }
    // Per bucket, phases in the order they happen: sort by scope and time, keeping phase order.
    if bucket_ms.is_some() {
        rows.sort_by(|a, b| (&a.scope, &a.from).cmp(&(&b.scope, &b.from)));
    }
    Ok(rows)
}

fn write_table(args: &LatencyArgs, rows: &[LatencyRow], period: &Period) -> Result<(), CommandError> {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| CommandError::internal(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let write_error = |e: std::io::Error| CommandError::internal(format!("writing the latency report: {e}"));
    let mut out = sink;
    let by = args.by.is_some();
    match args.format {
        FormatArg::Json => {
            serde_json::to_writer_pretty(&mut out, rows).map_err(|e| CommandError::internal(e.to_string()))?;
            writeln!(out).map_err(write_error)?;
        }
        FormatArg::Csv => {
            let mut csv = csv::Writer::from_writer(&mut out);
            let header =
                ["scope", "check", "phase", "from", "to", "count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"];
            csv.write_record(header).map_err(|e| CommandError::internal(e.to_string()))?;
            for r in rows {
                let f = &r.figures;
                let cells = [
                    r.scope.clone(),
                    r.check.to_string(),
                    r.phase.to_string(),
                    r.from.clone(),
                    r.to.clone(),
                    f.count.to_string(),
                    format!("{:.3}", f.p50_ms),
                    format!("{:.3}", f.p90_ms),
                    format!("{:.3}", f.p99_ms),
                    format!("{:.3}", f.max_ms),
                    format!("{:.3}", f.mean_ms),
                ];
                csv.write_record(cells.iter().map(|c| crate::report::csv_safe(c).into_owned()))
                    .map_err(|e| CommandError::internal(e.to_string()))?;
            }
            csv.flush().map_err(write_error)?;
        }
        FormatArg::Table => {
            writeln!(
                out,
                "{} latency, {} ({} – {})",
                args.check,
                period.label,
                period.show(period.start_ms()),
                period.show(period.elapsed_end_ms())
            )
            .map_err(write_error)?;
            if rows.is_empty() {
                writeln!(out, "(no latencies recorded: no successful checks in this period)").map_err(write_error)?;
            } else {
                let scope_width = rows.iter().map(|r| r.scope.len()).max().unwrap_or(5).max(5);
                let when = if by { format!("{:<17}  ", "from") } else { String::new() };
                writeln!(
                    out,
                    "{:<scope_width$}  {when}{:<10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                    "scope", "phase", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
                )
                .map_err(write_error)?;
                for r in rows {
                    let f = &r.figures;
                    let when = if by { format!("{:<17}  ", period.show(ms_of(&r.from))) } else { String::new() };
                    writeln!(
                        out,
                        "{:<scope_width$}  {when}{:<10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}",
                        r.scope,
                        r.phase,
                        f.count,
                        short(f.p50_ms),
                        short(f.p90_ms),
                        short(f.p99_ms),
                        short(f.max_ms)
                    )
                    .map_err(write_error)?;
                }
            }
        }
    }
    out.flush().map_err(write_error)
}

fn ms_of(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().map_or(0, |t| t.as_millisecond())
}

/// Three significant digits at most, as the histograms hold: 0.123, 12.3, 1234.
fn short(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// "cluster lon-1, http first byte, last 24h (2026-10-01 00:00 UTC – 2026-10-02 00:00 UTC)"
fn chart_title(what: &str, scopes: &[LatencyScope], check: CheckKind, phase: Option<Phase>, period: &Period) -> String {
    let names = |kind: &str, list: Vec<&str>| match list.as_slice() {
        [] => None,
        [one] => Some(format!("{kind} {one}")),
        many => Some(format!("{kind}s {}", many.join(", "))),
    };
    let clusters = scopes.iter().filter_map(|s| if let LatencyScope::Cluster(c) = s { Some(c.as_str()) } else { None });
    let sites = scopes.iter().filter_map(|s| if let LatencyScope::Site(id) = s { Some(id.as_str()) } else { None });
    let names: Vec<String> =
        [names("cluster", clusters.collect()), names("site", sites.collect())].into_iter().flatten().collect();
    let phase = phase.map(|p| format!(" {}", p.as_str().replace('_', " "))).unwrap_or_default();
    format!(
        "{what}: {}, {check}{phase} · {} – {}",
        names.join(", "),
        period.show(period.start_ms()),
        period.show(period.elapsed_end_ms())
    )
}

/// Reads what a chart kind needs and builds its input.
pub fn build_chart(
    store: &dyn Store,
    scopes: &[LatencyScope],
    check: CheckKind,
    phase: Option<Phase>,
    kind: KindArg,
    period: &Period,
) -> Result<Chart, CommandError> {
    let phase = phase.unwrap_or(check.headline_phase());
    let (from_ms, to_ms) = (period.start_ms(), period.elapsed_end_ms());
    let site = scopes.iter().any(|s| matches!(s, LatencyScope::Site(_)));
    let bucket_ms = analysis::chart_bucket_ms(to_ms - from_ms, site);
    let one = |what: &str| -> Result<&LatencyScope, CommandError> {
        match scopes {
            [scope] => Ok(scope),
            _ => Err(CommandError::config(format!("--kind {what} charts one cluster or site; give only one"))),
        }
    };
    let chart = match kind {
        KindArg::Bands => {
            let scope = one("bands")?;
            let mut points = Vec::new();
            each_bucket(store, scope, check, phase, period, Some(bucket_ms), &mut |b| {
                if let Some(p) = analysis::percentiles(&b.histogram) {
                    points.push(chart::BandPoint { start_ms: b.start_ms, end_ms: b.end_ms, figures: p });
                }
            })?;
            Chart::Bands(chart::LatencyBands {
                title: chart_title("Latency percentiles", scopes, check, Some(phase), period),
                from_ms,
                to_ms,
                tz: period.tz.clone(),
                points,
            })
        }
        KindArg::Heatmap => {
            let scope = one("heatmap")?;
            let edges = analysis::log_bin_edges(0.1, 10_000.0, 10);
            let mut columns = Vec::new();
            each_bucket(store, scope, check, phase, period, Some(bucket_ms), &mut |b| {
                columns.push(chart::HeatmapColumn {
                    start_ms: b.start_ms,
                    end_ms: b.end_ms,
                    counts: analysis::bin_counts(&b.histogram, &edges),
                });
            })?;
            Chart::Heatmap(chart::LatencyHeatmap {
                title: chart_title("Latency distribution", scopes, check, Some(phase), period),
                from_ms,
                to_ms,
                tz: period.tz.clone(),
                edges_ms: edges,
                columns,
            })
        }
        KindArg::Cdf => {
            let mut series = Vec::new();
            for scope in scopes {
                let mut curve = Vec::new();
                let mut count = 0;
                each_bucket(store, scope, check, phase, period, None, &mut |b| {
                    count = b.histogram.len();
                    curve = analysis::cdf(&b.histogram);
                })?;
                series
                    .push(chart::CdfSeries { label: format!("{} ({count} checks)", scope_name(scope)), points: curve });
            }
            Chart::Cdf(chart::LatencyCdf {
                title: chart_title("Latency CDF", scopes, check, Some(phase), period),
                series,
            })
        }
        KindArg::Phases => {
            let stacked: Vec<Phase> = check.phases().iter().copied().filter(|p| *p != Phase::Total).collect();
            let mut groups = Vec::new();
            let over_time = scopes.len() == 1;
            if over_time {
                // One stack per time bucket: mean time per phase (means add up, medians do not).
                let mut by_bucket: std::collections::BTreeMap<i64, (i64, Vec<f64>)> = Default::default();
                for (i, &p) in stacked.iter().enumerate() {
                    each_bucket(store, &scopes[0], check, p, period, Some(bucket_ms), &mut |b| {
                        let slot = by_bucket.entry(b.start_ms).or_insert((b.end_ms, vec![0.0; stacked.len()]));
                        slot.1[i] = b.histogram.mean() / 1000.0;
                    })?;
                }
                for (start, (end, means)) in by_bucket {
                    groups.push(chart::PhaseGroup {
                        label: String::new(),
                        start_ms: start,
                        end_ms: end,
                        means_ms: means,
                    });
                }
            } else {
                for scope in scopes {
                    let mut means = vec![0.0; stacked.len()];
                    for (i, &p) in stacked.iter().enumerate() {
                        each_bucket(store, scope, check, p, period, None, &mut |b| {
                            means[i] = b.histogram.mean() / 1000.0;
                        })?;
                    }
                    groups.push(chart::PhaseGroup {
                        label: scope_name(scope),
                        start_ms: from_ms,
                        end_ms: to_ms,
                        means_ms: means,
                    });
                }
            }
            Chart::Phases(chart::PhaseBreakdown {
                title: chart_title("Mean time per phase", scopes, check, None, period),
                phases: stacked.iter().map(|p| p.as_str().replace('_', " ")).collect(),
                over_time: over_time.then(|| (from_ms, to_ms, period.tz.clone())),
                groups,
            })
        }
    };
    Ok(chart)
}
