//! `fleetprobe report latency`: latency percentiles of a cluster or site as a table, CSV or
//! JSON, or as a chart (PNG or SVG).
//!
//! Last stage of the data flow: reads merged histograms from the store
//! (`Store::latency_histograms`), turns them into figures with `analysis::latency`, and prints
//! them or hands them to `report::chart`.

use std::io::Write;

use serde::Serialize;

use super::ReportError;
use super::render::{Render, write_json};
use super::table::{Align, Table};
use crate::analysis::latency::{self as analysis, Percentiles};
use crate::probe::{CheckKind, Phase};
use crate::report::chart::{self, Chart};
use crate::report::period::Period;
use crate::store::{CheckQuery, LatencyQuery, LatencyScope, Store};

/// Rows per bucket of time instead of one for the whole period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Hour,
    Day,
}

impl By {
    pub fn bucket_ms(self) -> i64 {
        match self {
            By::Hour => crate::store::rollup::HOUR_MS,
            By::Day => crate::store::rollup::DAY_MS,
        }
    }
}

/// The latency charts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    /// p50 line with p90, p99 and max bands over time (SmokePing style)
    Bands,
    /// distribution over time: time × log latency, colour = checks
    Heatmap,
    /// mean time per phase, stacked: per cluster or site, or over time for one
    Phases,
    /// cumulative distribution, one line per cluster or site
    Cdf,
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
    /// `None` when no check of the bucket succeeded: a bucket whose checks all failed has one
    /// row, of the check's headline phase, with its counts and no percentiles.
    #[serde(flatten)]
    pub figures: Option<Percentiles>,
    /// Checks measured in the bucket over the scope (every phase's row says the same), and how
    /// many of them failed; counted from the runs still kept (`retention.raw`), `None` before
    /// the oldest.
    pub checks: Option<u64>,
    pub failed: Option<u64>,
}

/// Whose runs a latency report reads: some vantages, or every vantage merged (`selected` empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vantages {
    pub selected: Vec<String>,
    /// Every vantage the store has runs of.
    pub known: Vec<String>,
}

impl Vantages {
    /// Every vantage of the store, merged.
    pub fn all(store: &dyn Store) -> Result<Vantages, ReportError> {
        Ok(Vantages { selected: Vec::new(), known: store.vantages()? })
    }

    /// The vantages named (none: all), each checked against the store's, so a typo is an error
    /// rather than an empty report.
    pub fn chosen(store: &dyn Store, names: &[String]) -> Result<Vantages, ReportError> {
        let known = store.vantages()?;
        let mut selected: Vec<String> = Vec::new();
        for name in names {
            if !known.contains(name) {
                let listed = if known.is_empty() { "none yet".to_string() } else { known.join(", ") };
                return Err(ReportError::Input(format!(
                    "--vantage: unknown vantage `{name}`; store {} has runs of: {listed}",
                    store.location()
                )));
            }
            if !selected.contains(name) {
                selected.push(name.clone());
            }
        }
        Ok(Vantages { selected, known })
    }

    /// "vantages: all (3)", "vantage: ams", "vantages: ams, fra".
    pub fn label(&self) -> String {
        match self.selected.as_slice() {
            [] => format!("vantages: all ({})", self.known.len()),
            [one] => format!("vantage: {one}"),
            many => format!("vantages: {}", many.join(", ")),
        }
    }
}

pub fn scope_name(scope: &LatencyScope) -> String {
    match scope {
        LatencyScope::Cluster(name) => format!("cluster {name}"),
        LatencyScope::Site(id) => format!("site {id}"),
    }
}

/// Reads merged histograms for one scope, check and phase, bucket by bucket.
fn each_bucket(
    (store, vantages): (&dyn Store, &Vantages),
    scope: &LatencyScope,
    check: CheckKind,
    phase: Phase,
    period: &Period,
    bucket_ms: Option<i64>,
    each: &mut dyn FnMut(crate::store::TimedHistogram),
) -> Result<(), ReportError> {
    let query = LatencyQuery {
        scope: scope.clone(),
        check,
        phase,
        from_ms: period.start_ms(),
        to_ms: period.elapsed_end_ms(),
        bucket_ms,
        vantages: vantages.selected.clone(),
    };
    Ok(store.latency_histograms(&query, &mut |bucket| {
        each(bucket);
        Ok(())
    })?)
}

pub fn table_rows(
    store: &dyn Store,
    vantages: &Vantages,
    scopes: &[LatencyScope],
    check: CheckKind,
    period: &Period,
    bucket_ms: Option<i64>,
) -> Result<Vec<LatencyRow>, ReportError> {
    let mut rows = Vec::new();
    let earliest_ms = store.earliest_run_ms()?;
    // Checks per bucket of every scope, in one pass over the runs.
    let mut counts_of_scopes = match earliest_ms {
        Some(_) => store.check_counts(&CheckQuery {
            scopes: scopes.to_vec(),
            check,
            from_ms: period.start_ms(),
            to_ms: period.elapsed_end_ms(),
            bucket_ms,
            vantages: vantages.selected.clone(),
        })?,
        None => Vec::new(),
    }
    .into_iter();
    for scope in scopes {
        let counts: std::collections::BTreeMap<i64, crate::store::CheckCounts> =
            counts_of_scopes.next().unwrap_or_default().into_iter().map(|c| (c.start_ms, c)).collect();
        // A bucket wholly before the oldest kept run has no counts; a later one without any is 0.
        let counted = |start_ms: i64, end_ms: i64| {
            let kept = earliest_ms.is_some_and(|earliest| end_ms > earliest);
            let found = counts.get(&start_ms);
            (kept.then(|| found.map_or(0, |c| c.checks)), kept.then(|| found.map_or(0, |c| c.failed)))
        };
        let first_row = rows.len();
        for &phase in check.phases() {
            each_bucket((store, vantages), scope, check, phase, period, bucket_ms, &mut |bucket| {
                if let Some(figures) = analysis::percentiles(&bucket.histogram) {
                    let (checks, failed) = counted(bucket.start_ms, bucket.end_ms);
                    rows.push(LatencyRow {
                        scope: scope_name(scope),
                        check: check.as_str(),
                        phase: phase.as_str(),
                        from: super::format_ms(bucket.start_ms),
                        to: super::format_ms(bucket.end_ms),
                        figures: Some(figures),
                        checks,
                        failed,
                    });
                }
            })?;
        }
        // Buckets whose checks all failed have no latency: one row says so.
        let timed: std::collections::HashSet<String> = rows[first_row..].iter().map(|r| r.from.clone()).collect();
        for c in counts.values().filter(|c| c.checks > 0 && !timed.contains(&super::format_ms(c.start_ms))) {
            let (checks, failed) = counted(c.start_ms, c.end_ms);
            rows.push(LatencyRow {
                scope: scope_name(scope),
                check: check.as_str(),
                phase: check.headline_phase().as_str(),
                from: super::format_ms(c.start_ms),
                to: super::format_ms(c.end_ms),
                figures: None,
                checks,
                failed,
            });
        }
    }
    // Per bucket, phases in the order they happen: sort by scope and time, keeping phase order.
    if bucket_ms.is_some() {
        rows.sort_by(|a, b| (&a.scope, &a.from).cmp(&(&b.scope, &b.from)));
    }
    Ok(rows)
}

/// Percentiles of one check's phases, per scope, for the period or per bucket of it.
#[derive(Serialize)]
#[serde(transparent)]
pub struct LatencyTable {
    pub rows: Vec<LatencyRow>,
    #[serde(skip)]
    pub check: CheckKind,
    #[serde(skip)]
    pub period: Period,
    /// Rows are per bucket of time.
    #[serde(skip)]
    pub by: bool,
    #[serde(skip)]
    pub vantages: Vantages,
}

impl LatencyTable {
    fn rows_table(&self) -> Table {
        let mut t = Table::new(&[
            ("scope", Align::Left),
            ("check", Align::Left),
            ("phase", Align::Left),
            ("from", Align::Left),
            ("to", Align::Left),
            ("count", Align::Right),
            ("p50_ms", Align::Right),
            ("p90_ms", Align::Right),
            ("p99_ms", Align::Right),
            ("max_ms", Align::Right),
            ("mean_ms", Align::Right),
            ("checks", Align::Right),
            ("failed", Align::Right),
        ]);
        let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        for r in &self.rows {
            let figure =
                |f: fn(&Percentiles) -> f64| r.figures.as_ref().map(|p| format!("{:.3}", f(p))).unwrap_or_default();
            t.push(vec![
                r.scope.clone(),
                r.check.to_string(),
                r.phase.to_string(),
                r.from.clone(),
                r.to.clone(),
                r.figures.map_or(0, |f| f.count).to_string(),
                figure(|p| p.p50_ms),
                figure(|p| p.p90_ms),
                figure(|p| p.p99_ms),
                figure(|p| p.max_ms),
                figure(|p| p.mean_ms),
                count(r.checks),
                count(r.failed),
            ]);
        }
        t
    }
}

impl Render for LatencyTable {
    fn table(&self) -> Table {
        self.rows_table()
    }
    fn text(&self) -> String {
        let period = &self.period;
        // The period once, its zone named: "last 24h (… – …)", "2026-10 (UTC)".
        let when = if period.label.starts_with("last ") {
            format!("{} ({} – {})", period.label, period.show(period.start_ms()), period.show(period.elapsed_end_ms()))
        } else if period.label.contains(':') {
            period.label.clone()
        } else {
            format!("{} ({})", period.label, period.tz.iana_name().unwrap_or("UTC"))
        };
        let mut out = format!("{} latency, {when}, {}\n", self.check, self.vantages.label());
        if self.rows.is_empty() {
            out.push_str("(no latencies recorded: no successful checks in this period)\n");
            return out;
        }
        let scope_width = self.rows.iter().map(|r| r.scope.len()).max().unwrap_or(5).max(5);
        let starts: Vec<String> = self.rows.iter().map(|r| period.show(ms_of(&r.from))).collect();
        let from_width = starts.iter().map(|s| s.chars().count()).max().unwrap_or(4).max(4);
        let when = |from: &str| if self.by { format!("{from:<from_width$}  ") } else { String::new() };
        out.push_str(&format!(
            "{:<scope_width$}  {}{:<10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}  {:>7}\n",
            "scope",
            when("from"),
            "phase",
            "count",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "checks",
            "failed"
        ));
        let count = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        for (r, start) in self.rows.iter().zip(&starts) {
            let figure =
                |f: fn(&Percentiles) -> f64| r.figures.as_ref().map_or_else(|| "-".to_string(), |p| short(f(p)));
            out.push_str(&format!(
                "{:<scope_width$}  {}{:<10}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>7}  {:>7}\n",
                r.scope,
                when(start),
                r.phase,
                r.figures.map_or(0, |f| f.count),
                figure(|p| p.p50_ms),
                figure(|p| p.p90_ms),
                figure(|p| p.p99_ms),
                figure(|p| p.max_ms),
                count(r.checks),
                count(r.failed)
            ));
        }
        out
    }
    fn json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_json(out, &self.rows)
    }
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
fn chart_title(
    what: &str,
    (scopes, vantages): (&[LatencyScope], &Vantages),
    check: CheckKind,
    phase: Option<Phase>,
    period: &Period,
) -> String {
    let names = |kind: &str, list: Vec<&str>| match list.as_slice() {
        [] => None,
        [one] => Some(format!("{kind} {one}")),
        many => Some(format!("{kind}s {}", many.join(", "))),
    };
    let clusters = scopes.iter().filter_map(|s| if let LatencyScope::Cluster(c) = s { Some(c.as_str()) } else { None });
    let sites = scopes.iter().filter_map(|s| if let LatencyScope::Site(id) = s { Some(id.as_str()) } else { None });
    let names: Vec<String> =
        [names("cluster", clusters.collect()), names("site", sites.collect())].into_iter().flatten().collect();
    // "http first byte", but "dns" rather than "dns dns" for the DNS check's own phase.
    let phase = phase
        .filter(|p| p.as_str() != check.as_str())
        .map(|p| format!(" {}", p.as_str().replace('_', " ")))
        .unwrap_or_default();
    format!(
        "{what}: {}, {check}{phase} · {} · {} – {}",
        names.join(", "),
        vantages.label(),
        period.show(period.start_ms()),
        period.show(period.elapsed_end_ms())
    )
}

/// Reads one scope's histograms bucket by bucket for a chart, in buckets that fit the data: the
/// usual bucket for the period's length, widened (and read again) when the data is sparser than
/// that: its own spacing, and about five samples a bucket (see `analysis::fitted_bucket_ms`).
fn chart_buckets(
    store: &dyn Store,
    vantages: &Vantages,
    scope: &LatencyScope,
    check: CheckKind,
    phase: Phase,
    period: &Period,
    bucket_ms: i64,
) -> Result<(Vec<crate::store::TimedHistogram>, i64), ReportError> {
    let read = |bucket_ms: i64| -> Result<Vec<crate::store::TimedHistogram>, ReportError> {
        let mut buckets = Vec::new();
        each_bucket((store, vantages), scope, check, phase, period, Some(bucket_ms), &mut |b| {
            if !b.histogram.is_empty() {
                buckets.push(b);
            }
        })?;
        Ok(buckets)
    };
    let buckets = read(bucket_ms)?;
    let spacing = analysis::median(buckets.windows(2).map(|w| w[1].start_ms - w[0].start_ms).collect());
    let samples =
        analysis::median(buckets.iter().map(|b| i64::try_from(b.histogram.len()).unwrap_or(i64::MAX)).collect());
    let fitted = analysis::fitted_bucket_ms(bucket_ms, spacing, u64::try_from(samples).unwrap_or(0), 5);
    if fitted == bucket_ms { Ok((buckets, bucket_ms)) } else { Ok((read(fitted)?, fitted)) }
}

/// Checks measured and failed per scope over a period, for the strips under its charts: read
/// for many scopes in one pass over the runs' outcomes (`report clusters` and the SLA PDFs chart
/// a cluster or site each; clusters and sites are one pass each), in the finest bucket a chart
/// of the scope over the period uses, and added up into each chart's own bucket (a whole number
/// of those).
#[derive(Debug, Clone)]
pub struct PeriodChecks {
    check: CheckKind,
    vantages: Vec<String>,
    /// Start of the oldest run the store keeps: older results are gone.
    earliest_ms: Option<i64>,
    /// Per scope, the bucket its counts were read in and the counts.
    counts: std::collections::HashMap<LatencyScope, (i64, Vec<crate::store::CheckCounts>)>,
}

impl PeriodChecks {
    pub fn read(
        (store, vantages): (&dyn Store, &Vantages),
        scopes: &[LatencyScope],
        check: CheckKind,
        period: &Period,
    ) -> Result<PeriodChecks, ReportError> {
        let (from_ms, to_ms) = (period.start_ms(), period.elapsed_end_ms());
        let earliest_ms = store.earliest_run_ms()?;
        let mut counts = std::collections::HashMap::new();
        // A site's charts over a long period are per day: its counts need no finer bucket.
        for site in [false, true] {
            let group: Vec<LatencyScope> =
                scopes.iter().filter(|s| matches!(s, LatencyScope::Site(_)) == site).cloned().collect();
            if group.is_empty() || earliest_ms.is_none() {
                continue;
            }
            let bucket_ms = analysis::chart_bucket_ms(to_ms - from_ms, site);
            let read = store.check_counts(&CheckQuery {
                scopes: group.clone(),
                check,
                from_ms,
                to_ms,
                bucket_ms: Some(bucket_ms),
                vantages: vantages.selected.clone(),
            })?;
            counts.extend(group.into_iter().zip(read.into_iter().map(|c| (bucket_ms, c))));
        }
        Ok(PeriodChecks { check, vantages: vantages.selected.clone(), earliest_ms, counts })
    }

    /// The cells of a chart's strip in buckets of `bucket_ms`, from the bucket of the oldest
    /// kept run on (older time gets no cell rather than a false "no data"); `None` when these
    /// counts cannot answer (another scope, check or vantage, or a finer bucket).
    fn cells(
        &self,
        (scope, check, vantages): (&LatencyScope, CheckKind, &Vantages),
        period: &Period,
        bucket_ms: i64,
    ) -> Option<Vec<chart::CheckCell>> {
        if check != self.check || vantages.selected != self.vantages {
            return None;
        }
        let Some(earliest_ms) = self.earliest_ms else { return Some(Vec::new()) };
        let (read_ms, counts) = self.counts.get(scope)?;
        if bucket_ms % read_ms != 0 {
            return None;
        }
        let mut counts = counts.iter().peekable();
        let from_ms = period.start_ms().max(crate::store::rollup::bucket_start(earliest_ms, bucket_ms));
        let buckets = crate::store::rollup::output_buckets(from_ms, period.elapsed_end_ms(), Some(bucket_ms));
        let cells = buckets.into_iter().map(|(start_ms, end_ms)| {
            let mut cell = chart::CheckCell { start_ms, end_ms, checks: 0, failed: 0 };
            while let Some(c) = counts.next_if(|c| c.start_ms < end_ms) {
                if c.start_ms >= start_ms {
                    cell.checks += c.checks;
                    cell.failed += c.failed;
                }
            }
            cell
        });
        Some(cells.collect())
    }
}

/// The cells of a chart's strip, from `known` counts when they hold them, else read.
fn check_cells(
    (store, vantages, known): (&dyn Store, &Vantages, Option<&PeriodChecks>),
    scope: &LatencyScope,
    check: CheckKind,
    period: &Period,
    bucket_ms: i64,
) -> Result<Vec<chart::CheckCell>, ReportError> {
    if let Some(cells) = known.and_then(|k| k.cells((scope, check, vantages), period, bucket_ms)) {
        return Ok(cells);
    }
    let read = PeriodChecks::read((store, vantages), std::slice::from_ref(scope), check, period)?;
    Ok(read.cells((scope, check, vantages), period, bucket_ms).unwrap_or_default())
}

/// Reads what a chart kind needs and builds its input. `checks` may hold the counts of the
/// strip under bands and heatmaps, read beforehand for many charts at once; without them (or
/// when they do not cover this chart) the chart reads its own.
#[allow(clippy::too_many_arguments)]
pub fn build_chart(
    store: &dyn Store,
    vantages: &Vantages,
    checks: Option<&PeriodChecks>,
    scopes: &[LatencyScope],
    check: CheckKind,
    phase: Option<Phase>,
    kind: ChartKind,
    period: &Period,
) -> Result<Chart, ReportError> {
    let phase = phase.unwrap_or(check.headline_phase());
    let (from_ms, to_ms) = (period.start_ms(), period.elapsed_end_ms());
    let site = scopes.iter().any(|s| matches!(s, LatencyScope::Site(_)));
    let bucket_ms = analysis::chart_bucket_ms(to_ms - from_ms, site);
    let one = |what: &str| -> Result<&LatencyScope, ReportError> {
        match scopes {
            [scope] => Ok(scope),
            _ => Err(ReportError::Input(format!("--kind {what} charts one cluster or site; give only one"))),
        }
    };
    let chart = match kind {
        ChartKind::Bands => {
            let scope = one("bands")?;
            let (buckets, bucket_ms) = chart_buckets(store, vantages, scope, check, phase, period, bucket_ms)?;
            let points = buckets
                .into_iter()
                .filter_map(|b| {
                    analysis::percentiles(&b.histogram).map(|p| chart::BandPoint {
                        start_ms: b.start_ms,
                        end_ms: b.end_ms,
                        figures: p,
                    })
                })
                .collect();
            Chart::Bands(chart::LatencyBands {
                title: chart_title("Latency percentiles", (scopes, vantages), check, Some(phase), period),
                from_ms,
                to_ms,
                tz: period.tz.clone(),
                points,
                checks: check_cells((store, vantages, checks), scope, check, period, bucket_ms)?,
            })
        }
        ChartKind::Heatmap => {
            let scope = one("heatmap")?;
            let edges = analysis::log_bin_edges(0.1, 10_000.0, 10);
            let (buckets, bucket_ms) = chart_buckets(store, vantages, scope, check, phase, period, bucket_ms)?;
            let columns = buckets
                .into_iter()
                .map(|b| chart::HeatmapColumn {
                    start_ms: b.start_ms,
                    end_ms: b.end_ms,
                    counts: analysis::bin_counts(&b.histogram, &edges),
                })
                .collect();
            Chart::Heatmap(chart::LatencyHeatmap {
                title: chart_title("Latency distribution", (scopes, vantages), check, Some(phase), period),
                from_ms,
                to_ms,
                tz: period.tz.clone(),
                edges_ms: edges,
                columns,
                checks: check_cells((store, vantages, checks), scope, check, period, bucket_ms)?,
            })
        }
        ChartKind::Cdf => {
            let mut series = Vec::new();
            for scope in scopes {
                let mut curve = Vec::new();
                let mut count = 0;
                each_bucket((store, vantages), scope, check, phase, period, None, &mut |b| {
                    count = b.histogram.len();
                    curve = analysis::cdf(&b.histogram);
                })?;
                series
                    .push(chart::CdfSeries { label: format!("{} ({count} checks)", scope_name(scope)), points: curve });
            }
            Chart::Cdf(chart::LatencyCdf {
                title: chart_title("Latency CDF", (scopes, vantages), check, Some(phase), period),
                series,
            })
        }
        ChartKind::Phases => {
            let stacked: Vec<Phase> = check.phases().iter().copied().filter(|p| *p != Phase::Total).collect();
            let mut groups = Vec::new();
            let over_time = scopes.len() == 1;
            if over_time {
                // One stack per time bucket: mean time per phase (means add up, medians do not).
                let mut by_bucket: std::collections::BTreeMap<i64, (i64, Vec<f64>)> = Default::default();
                for (i, &p) in stacked.iter().enumerate() {
                    each_bucket((store, vantages), &scopes[0], check, p, period, Some(bucket_ms), &mut |b| {
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
                        each_bucket((store, vantages), scope, check, p, period, None, &mut |b| {
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
                title: chart_title("Mean time per phase", (scopes, vantages), check, None, period),
                phases: stacked.iter().map(|p| p.as_str().replace('_', " ")).collect(),
                over_time: over_time.then(|| (from_ms, to_ms, period.tz.clone())),
                groups,
            })
        }
    };
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chart titles name the check and its phase once: "http first byte", "dns" (not "dns dns").
    #[test]
    fn chart_titles_name_the_phase_once() {
        let period = crate::report::period::PeriodSpec {
            period: Some("2026-10-01".into()),
            now: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        }
        .resolve("24h")
        .unwrap();
        let scopes = [LatencyScope::Cluster("a".into())];
        let all = Vantages { selected: Vec::new(), known: vec!["ams".into(), "fra".into(), "lon".into()] };
        let dns = chart_title("Latency", (&scopes, &all), CheckKind::Dns, Some(Phase::Dns), &period);
        assert!(dns.starts_with("Latency: cluster a, dns · vantages: all (3) · "), "{dns}");
        let ams = Vantages { selected: vec!["ams".into()], ..all };
        let http = chart_title("Latency", (&scopes, &ams), CheckKind::Http, Some(Phase::FirstByte), &period);
        assert!(http.starts_with("Latency: cluster a, http first byte · vantage: ams · "), "{http}");
    }

    /// Per-hour rows line up under their header, and the period is printed once.
    #[test]
    fn hourly_rows_line_up_under_the_header() {
        let period = crate::report::period::PeriodSpec {
            period: Some("2026-10-01".into()),
            tz: "Europe/Berlin".into(),
            now: Some("2026-11-01T00:00:00Z".parse().unwrap()),
            ..Default::default()
        }
        .resolve("24h")
        .unwrap();
        let figures = |p50_ms| Percentiles {
            count: 12,
            min_ms: 0.5,
            p50_ms,
            p90_ms: 2.0,
            p99_ms: 3.0,
            max_ms: 4.0,
            mean_ms: 1.5,
        };
        let row = |from: &str, phase: &'static str| LatencyRow {
            scope: "cluster a".into(),
            check: "http",
            phase,
            from: from.into(),
            to: String::new(),
            figures: Some(figures(1.25)),
            checks: Some(12),
            failed: Some(0),
        };
        let table = LatencyTable {
            rows: vec![row("2026-09-30T22:00:00Z", "connect"), row("2026-09-30T23:00:00Z", "first_byte")],
            check: CheckKind::Http,
            period,
            by: true,
            vantages: Vantages { selected: vec!["ams".into()], known: vec!["ams".into(), "fra".into()] },
        };
        let text = table.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "http latency, 2026-10-01 (Europe/Berlin), vantage: ams");
        let column = |line: &str, word: &str| line.find(word).unwrap();
        assert_eq!(column(lines[1], "phase"), column(lines[2], "connect"), "{text}");
        assert_eq!(column(lines[1], "phase"), column(lines[3], "first_byte"), "{text}");
        assert!(lines[2].contains("2026-10-01 00:00 CEST"), "{text}");
    }
}
