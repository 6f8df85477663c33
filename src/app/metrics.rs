//! `[metrics] textfile`: after every run, the run's figures and the fleet's state now in the
//! Prometheus text format, written atomically (a temporary file, then a rename) where
//! node_exporter's textfile collector reads it. A failure to write is logged, never a failed run.

use std::collections::BTreeMap;
use std::path::Path;

use super::probe::ProbeReport;
use super::{Error, Result};
use crate::analysis::period::Availability;
use crate::fleet::Fleet;
use crate::probe::CheckResult;
use crate::report::metrics::{ClusterMetrics, LatencySummary, RunMetrics, render};
use crate::store::histogram::RunLatencies;

/// What a run counted as it went, per cluster and site, for the metrics file.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    /// Per cluster: (check, outcome) → checks.
    checks: Vec<BTreeMap<(String, String), u64>>,
    /// Per site: a check failed in this run.
    failed: Vec<bool>,
    /// Per site: it was checked in this run.
    checked: Vec<bool>,
    /// Per cluster: the earliest certificate expiry seen, Unix seconds.
    earliest_certificate: Vec<Option<i64>>,
    /// Per cluster: latency of the successful checks.
    latency: Vec<Vec<LatencySummary>>,
}

impl RunFigures {
    pub fn new(fleet: &Fleet) -> RunFigures {
        RunFigures {
            checks: vec![BTreeMap::new(); fleet.clusters.len()],
            failed: vec![false; fleet.sites.len()],
            checked: vec![false; fleet.sites.len()],
            earliest_certificate: vec![None; fleet.clusters.len()],
            latency: vec![Vec::new(); fleet.clusters.len()],
        }
    }

    pub fn record(&mut self, fleet: &Fleet, result: &CheckResult) {
        let cluster = fleet.sites[result.site].cluster;
        *self.checks[cluster].entry((result.check.to_string(), result.outcome.to_string())).or_default() += 1;
        // A check the deadline cut off says nothing about the site: neither up nor down.
        let observed = result.outcome.failure().is_none_or(|f| f.is_observation());
        self.checked[result.site] |= observed;
        self.failed[result.site] |= observed && !result.outcome.is_ok();
        if let Some(expiry) = result.cert_not_after {
            let earliest = &mut self.earliest_certificate[cluster];
            *earliest = Some(earliest.map_or(expiry, |e| e.min(expiry)));
        }
    }

    /// Takes the run's latency histograms: p50, p90 and p99 with their count and sum.
    pub fn latencies(&mut self, fleet: &Fleet, latencies: &RunLatencies) {
        let mut keyed: Vec<_> = latencies.iter().collect();
        keyed.sort_by_key(|((cluster, check, phase), _)| (*cluster, *check, *phase));
        for ((cluster, check, phase), histogram) in keyed {
            if histogram.is_empty() || *cluster >= fleet.clusters.len() {
                continue;
            }
            let seconds = |us: u64| us as f64 / 1e6;
            self.latency[*cluster].push(LatencySummary {
                check: check.to_string(),
                phase: phase.as_str().to_string(),
                count: histogram.len(),
                sum_seconds: histogram.mean() * histogram.len() as f64 / 1e6,
                quantiles: [0.5, 0.9, 0.99]
                    .into_iter()
                    .map(|q| (q, seconds(histogram.highest_equivalent(histogram.value_at_quantile(q)))))
                    .collect(),
            });
        }
    }
}

/// Writes the metrics of `report` (a run just stored) and of the fleet's state now to `path`:
/// incidents still open and the share of customers in an outage now come from `recent`, the
/// analysis of the last day (`analyze::recent`).
pub fn write(fleet: &Fleet, recent: &Availability, report: &ProbeReport, path: &Path) -> Result<()> {
    let analysis = recent;
    let figures = &report.figures;
    let clusters = fleet
        .clusters
        .iter()
        .enumerate()
        .map(|(c, cluster)| {
            let sites: Vec<usize> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].cluster == c).collect();
            let customers: std::collections::BTreeSet<usize> = sites.iter().map(|&s| fleet.sites[s].customer).collect();
            let down_now: std::collections::BTreeSet<usize> = analysis
                .history
                .outages
                .iter()
                .filter(|o| o.end_ms.is_none() && fleet.sites[o.site].cluster == c)
                .map(|o| fleet.sites[o.site].customer)
                .collect();
            ClusterMetrics {
                name: cluster.name.clone(),
                checks: figures.checks[c].clone(),
                sites: sites.len(),
                sites_down: sites.iter().filter(|&&s| figures.failed[s]).count(),
                customers_affected_share: down_now.len() as f64 / customers.len().max(1) as f64,
                open_incidents: analysis.incidents.iter().filter(|i| i.cluster == c && i.ongoing()).count(),
                latency: figures.latency[c].clone(),
                earliest_certificate_expiry: figures.earliest_certificate[c],
            }
        })
        .collect();
    let sites = if fleet.metrics.per_site {
        (0..fleet.sites.len())
            .filter(|&s| figures.checked[s])
            .map(|s| {
                (fleet.sites[s].id.clone(), fleet.clusters[fleet.sites[s].cluster].name.clone(), !figures.failed[s])
            })
            .collect()
    } else {
        Vec::new()
    };
    let metrics = RunMetrics {
        vantage: fleet.probe.vantage.clone(),
        started_at_ms: report.started_at_ms,
        duration_seconds: report.elapsed.as_secs_f64(),
        valid: report.summary.valid,
        clusters,
        sites,
    };
    write_atomically(path, &render(&metrics))
}

/// Adds the notification counters to the metrics file written for this run (again atomically).
pub fn append_notification_counts(path: &Path, counts: &[(String, String, i64)]) -> Result<()> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::internal(format!("metrics file {}: {e}", path.display())))?;
    write_atomically(path, &(text + &crate::report::metrics::render_notification_counts(counts)))
}

/// A temporary file beside `path`, then a rename: the collector never reads half a file.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let fail = |e: std::io::Error| Error::internal(format!("metrics file {}: {e}", path.display()));
    std::fs::write(&temporary, text).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        fail(e)
    })
}
