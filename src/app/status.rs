//! `fleetprobe report status`: analyses the days the public status page shows and writes
//! `index.html` and `feed.atom`; and the daily cluster rollup (`cluster_days` in the store) that
//! keeps the page's bars once the raw runs of their days are pruned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::analysis::Span;
use crate::analysis::days::{DayFigures, cluster_days};
use crate::analysis::period::LOOKBACK_MS;
use crate::fleet::Fleet;
use crate::report::status::{RolledUpDays, atom, build, html, window};
use crate::store::rollup::{DAY_MS, DAY_SETTLE_MS};
use crate::store::{ClusterDay, Store};

/// Analyzes the last `days` UTC days up to `now_ms` and writes `index.html` and `feed.atom` into
/// `dir` (created if missing). Returns the path of `index.html`. The demo calls this too.
pub fn write(fleet: &Fleet, store: &dyn Store, dir: &Path, now_ms: i64, days: u32) -> Result<PathBuf> {
    let days = days.max(1);
    let span = window(now_ms, days);
    let analysis = super::analyze::analyze(fleet, store, span.start, span.end, now_ms)?;
    let rolled_up = rolled_up_days(fleet, store, span)?;
    let updates = store.incident_updates(Some(span.start - LOOKBACK_MS), Some(now_ms.saturating_add(1)))?;
    let page = build(fleet, &analysis, &rolled_up, &updates, now_ms, days);
    let write_error = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    for (name, content) in [("index.html", html(&page)), ("feed.atom", atom(&page))] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| write_error(&path, e))?;
    }
    Ok(dir.join("index.html"))
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
