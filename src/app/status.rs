//! `fleetprobe report status`: analyses the days the public status page shows and writes
//! `index.html` and `feed.atom`; and the daily cluster rollup (`cluster_days` in the store) that
//! keeps the page's bars once the raw runs of their days are pruned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::analysis::Span;
use crate::analysis::days::{DayFigures, cluster_days};
use crate::analysis::latency::percentiles;
use crate::analysis::period::LOOKBACK_MS;
use crate::fleet::Fleet;
use crate::fleet::SlowRule;
use crate::probe::{CheckKind, Phase};
use crate::report::status::{RolledUpDays, Slow, atom, build, html, mark_slow, window};
use crate::store::rollup::{DAY_MS, DAY_SETTLE_MS};
use crate::store::{ClusterDay, LatencyQuery, LatencyScope, Store};

/// Analyzes the last `days` UTC days up to `now_ms` and writes `index.html` and `feed.atom` into
/// `dir` (created if missing). Returns the path of `index.html`. The demo calls this too.
pub fn write(fleet: &Fleet, store: &dyn Store, dir: &Path, now_ms: i64, days: u32) -> Result<PathBuf> {
    let days = days.max(1);
    let span = window(now_ms, days);
    let analysis = super::analyze::analyze(fleet, store, span.start, span.end, now_ms)?;
    let rolled_up = rolled_up_days(fleet, store, span)?;
    let updates = store.incident_updates(Some(span.start - LOOKBACK_MS), Some(now_ms.saturating_add(1)))?;
    let mut page = build(fleet, &analysis, &rolled_up, &updates, now_ms, days);
    mark_slow(&mut page, &slow_clusters(fleet, store, now_ms)?);
    let write_error = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    for (name, content) in [("index.html", html(&page)), ("feed.atom", atom(&page))] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| write_error(&path, e))?;
    }
    Ok(dir.join("index.html"))
}

/// Checks in a window below which its median says nothing.
const SLOW_MIN_CHECKS: u64 = 3;
/// How far back a slow stretch is followed to find its start.
const SLOW_LOOKBACK_MS: i64 = DAY_MS;

/// Each cluster's slow stretch going on at `now_ms` under `[status]`'s slow rule: its HTTP
/// first-byte median over the last window against its median over the week before (or the
/// rule's absolute bound); the stretch is followed back window by window to where it began.
pub fn slow_clusters(fleet: &Fleet, store: &dyn Store, now_ms: i64) -> Result<Vec<Option<Slow>>> {
    let rule = fleet.status.slow;
    let window = i64::try_from(rule.window.as_millis()).unwrap_or(DAY_MS).max(1);
    fleet
        .clusters
        .iter()
        .map(|cluster| {
            let median = |from_ms: i64, to_ms: i64| -> Result<Option<f64>> {
                let query = LatencyQuery {
                    scope: LatencyScope::Cluster(cluster.name.clone()),
                    check: CheckKind::Http,
                    phase: Phase::FirstByte,
                    from_ms,
                    to_ms,
                    bucket_ms: None,
                    vantages: Vec::new(),
                };
                // No bucket length: the store gives the window's checks as one histogram.
                let mut p50 = None;
                store.latency_histograms(&query, &mut |bucket| {
                    p50 = percentiles(&bucket.histogram).filter(|p| p.count >= SLOW_MIN_CHECKS).map(|p| p.p50_ms);
                    Ok(())
                })?;
                Ok(p50)
            };
            let usual = median(now_ms - window - 7 * DAY_MS, now_ms - window)?;
            let mut since = None;
            let mut recent = None;
            let mut end = now_ms;
            while now_ms - end < SLOW_LOOKBACK_MS {
                let Some(p50) = median(end - window, end)? else { break };
                if !is_slow(&rule, p50, usual) {
                    break;
                }
                recent.get_or_insert(p50);
                since = Some(end - window);
                end -= window;
            }
            Ok(since.zip(recent).map(|(since_ms, recent_p50_ms)| Slow { since_ms, recent_p50_ms, usual_p50_ms: usual }))
        })
        .collect()
}

/// Whether a window's first-byte median `p50` (ms) is slow against the `usual` one.
fn is_slow(rule: &SlowRule, p50: f64, usual: Option<f64>) -> bool {
    let min_increase = rule_ms(SlowRule::MIN_INCREASE);
    let relative = rule.factor > 0.0 && usual.is_some_and(|u| p50 >= rule.factor * u && p50 - u >= min_increase);
    let absolute = rule.above.is_some_and(|above| p50 > rule_ms(above));
    relative || absolute
}

fn rule_ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The stored figures of the days in `span` that the raw runs no longer cover whole (with the
/// day of lookback before them that the analysis reads), by fleet cluster.
pub fn rolled_up_days(fleet: &Fleet, store: &dyn Store, span: Span) -> Result<RolledUpDays> {
    let Some(earliest) = store.earliest_run_ms()? else {
        return Ok(RolledUpDays::new());
    };
    let raw_from = earliest.saturating_add(LOOKBACK_MS);
    if span.start >= raw_from {
        return Ok(RolledUpDays::new());
    }
    let clusters: HashMap<&str, usize> = fleet.clusters.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
    Ok(store
        .cluster_days(span.start, span.end.min(raw_from))?
        .into_iter()
        .filter_map(|d| {
            let cluster = *clusters.get(d.cluster.as_str())?;
            let figures = DayFigures {
                eligible_ms: d.eligible_ms,
                down_ms: d.down_ms,
                incidents: usize::try_from(d.incidents).unwrap_or(0),
            };
            Some(((cluster, d.day_ms), figures))
        })
        .collect())
}

/// Computes the cluster day figures of pending days that have settled by `now_ms` (ended at
/// least [`DAY_SETTLE_MS`] ago), at most `day_budget` of them, oldest first, and stores them.
/// Consecutive days share one analysis. Returns the number of days stored.
pub fn roll_up_cluster_days(
    fleet: &Fleet,
    store: &mut dyn Store,
    now_ms: i64,
    day_budget: Option<usize>,
) -> Result<usize> {
    let mut pending = store.pending_cluster_days(now_ms - DAY_SETTLE_MS)?;
    pending.truncate(day_budget.unwrap_or(usize::MAX));
    let mut stored = 0;
    for block in pending.chunk_by(|a, b| b.0 == a.0 + DAY_MS) {
        let (first, last) = (block[0].0, block[block.len() - 1].0 + DAY_MS);
        // Runs up to a settle time past the last day may still confirm an outage in it.
        let analysis = super::analyze::analyze(fleet, store, first, last + DAY_SETTLE_MS, now_ms)?;
        let days: Vec<Span> = block.iter().map(|&(day, _)| Span::new(day, day + DAY_MS)).collect();
        let mut rows = Vec::new();
        for (cluster, c) in fleet.clusters.iter().enumerate() {
            for (day, f) in days.iter().zip(cluster_days(fleet, &analysis, cluster, &days, now_ms)) {
                rows.push(ClusterDay {
                    cluster: c.name.clone(),
                    day_ms: day.start,
                    eligible_ms: f.eligible_ms,
                    down_ms: f.down_ms,
                    incidents: i64::try_from(f.incidents).unwrap_or(i64::MAX),
                });
            }
        }
        store.put_cluster_days(block, &rows).map_err(|e| Error::store(e.to_string()))?;
        stored += block.len();
    }
    Ok(stored)
}
