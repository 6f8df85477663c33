//! Checks measured and failed per time bucket, counted from the outcome columns of the runs
//! ([`Store::run_outcomes`](super::Store::run_outcomes)): the part of
//! [`Store::check_counts`](super::Store::check_counts) that every backend shares.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::rollup::output_buckets;
use super::{CheckCounts, CheckQuery, LatencyScope, Roster, RunOutcomes, SiteRecord, StoreResult, StoredRun};

/// Reads runs started in [from, to) with their outcomes, as `Store::run_outcomes` does.
pub(crate) type ReadOutcomes<'a> =
    dyn FnOnce(i64, i64, &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>) -> StoreResult<()> + 'a;

/// Counts `query`'s checks per bucket, given the store's sites by key and a reader of the runs.
pub(crate) fn check_counts(
    query: &CheckQuery,
    sites: &HashMap<i64, SiteRecord>,
    read: Box<ReadOutcomes<'_>>,
) -> StoreResult<Vec<CheckCounts>> {
    let in_scope: HashSet<i64> = sites
        .iter()
        .filter(|(_, site)| match &query.scope {
            LatencyScope::Cluster(name) => &site.cluster == name,
            LatencyScope::Site(id) => &site.id == id,
        })
        .map(|(&key, _)| key)
        .collect();
    let buckets = output_buckets(query.from_ms, query.to_ms, query.bucket_ms);
    let mut counts: Vec<CheckCounts> =
        buckets.iter().map(|&(start_ms, end_ms)| CheckCounts { start_ms, end_ms, checks: 0, failed: 0 }).collect();
    // Rows of the scope and check, per roster: runs of an unchanged fleet share their roster.
    let mut rows_by_roster: Vec<(Arc<Roster>, Arc<Vec<bool>>, u64)> = Vec::new();
    read(query.from_ms, query.to_ms, &mut |run, outcomes| {
        if !run.valid || !(query.vantages.is_empty() || query.vantages.contains(&run.vantage)) {
            return Ok(());
        }
        let roster = &outcomes.roster;
        let (selected, total) = match rows_by_roster.iter().find(|(r, _, _)| Arc::ptr_eq(r, roster)) {
            Some((_, selected, total)) => (selected.clone(), *total),
            None => {
                let selected: Vec<bool> =
                    roster.iter().map(|(key, check)| *check == query.check && in_scope.contains(key)).collect();
                let total = selected.iter().filter(|s| **s).count() as u64;
                let selected = Arc::new(selected);
                rows_by_roster.insert(0, (roster.clone(), selected.clone(), total));
                rows_by_roster.truncate(8);
                (selected, total)
            }
        };
        let (mut checks, mut failed) = (total, 0);
        for &(row, outcome) in &outcomes.failed {
            if !selected.get(row).copied().unwrap_or(false) {
                continue;
            }
            match outcome.failure() {
                // Cut by the sweep's deadline: no observation either way.
                Some(failure) if !failure.is_observation() => checks = checks.saturating_sub(1),
                Some(_) => failed += 1,
                None => {}
            }
        }
        let index = counts.partition_point(|c| c.end_ms <= run.started_at_ms);
        if let Some(bucket) = counts.get_mut(index).filter(|c| c.start_ms <= run.started_at_ms) {
            bucket.checks += checks;
            bucket.failed += failed;
        }
        Ok(())
    })?;
    counts.retain(|c| c.checks > 0);
    Ok(counts)
}
