//! Checks measured and failed per time bucket, counted from the outcome columns of the runs
//! ([`Store::run_outcomes`](super::Store::run_outcomes)): the part of
//! [`Store::check_counts`](super::Store::check_counts) that every backend shares. One pass over
//! the runs serves every scope asked for, so a report charting each cluster or site reads the
//! period's outcomes once.

use std::collections::HashMap;
use std::sync::Arc;

use super::rollup::output_buckets;
use super::{CheckCounts, CheckQuery, LatencyScope, Roster, RunOutcomes, SiteRecord, StoreResult, StoredRun};

/// Reads runs started in [from, to) with their outcomes, as `Store::run_outcomes` does.
pub(crate) type ReadOutcomes<'a> =
    dyn FnOnce(i64, i64, &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>) -> StoreResult<()> + 'a;

/// What one roster's rows are to the query: the scopes (indices into `query.scopes`) of each
/// row of the query's check, and how many rows each scope has.
struct RosterScopes {
    roster: Arc<Roster>,
    rows: Vec<Vec<usize>>,
    totals: Vec<u64>,
}

/// Counts `query`'s checks per scope and bucket, given the store's sites by key and a reader
/// of the runs.
pub(crate) fn check_counts(
    query: &CheckQuery,
    sites: &HashMap<i64, SiteRecord>,
    read: Box<ReadOutcomes<'_>>,
) -> StoreResult<Vec<Vec<CheckCounts>>> {
    // Site key → the scopes it is in (its cluster's and its own).
    let mut scopes_of_key: HashMap<i64, Vec<usize>> = HashMap::new();
    for (&key, site) in sites {
        for (i, scope) in query.scopes.iter().enumerate() {
            let member = match scope {
                LatencyScope::Cluster(name) => &site.cluster == name,
                LatencyScope::Site(id) => &site.id == id,
            };
            if member {
                scopes_of_key.entry(key).or_default().push(i);
            }
        }
    }
    let buckets = output_buckets(query.from_ms, query.to_ms, query.bucket_ms);
    let empty: Vec<CheckCounts> =
        buckets.iter().map(|&(start_ms, end_ms)| CheckCounts { start_ms, end_ms, checks: 0, failed: 0 }).collect();
    let mut counts = vec![empty; query.scopes.len()];
    // Runs of an unchanged fleet share their roster: each roster is mapped once.
    let mut recent: Vec<RosterScopes> = Vec::new();
    read(query.from_ms, query.to_ms, &mut |run, outcomes| {
        if !run.valid || !(query.vantages.is_empty() || query.vantages.contains(&run.vantage)) {
            return Ok(());
        }
        let index = buckets.partition_point(|&(_, end)| end <= run.started_at_ms);
        if buckets.get(index).is_none_or(|&(start, _)| start > run.started_at_ms) {
            return Ok(());
        }
        let position = match recent.iter().position(|r| Arc::ptr_eq(&r.roster, &outcomes.roster)) {
            Some(position) => position,
            None => {
                let rows: Vec<Vec<usize>> = outcomes
                    .roster
                    .iter()
                    .map(|(key, check)| {
                        if *check == query.check {
                            scopes_of_key.get(key).cloned().unwrap_or_default()
                        } else {
                            Vec::new()
                        }
                    })
                    .collect();
                let mut totals = vec![0u64; query.scopes.len()];
                for scope in rows.iter().flatten() {
                    totals[*scope] += 1;
                }
                recent.insert(0, RosterScopes { roster: outcomes.roster.clone(), rows, totals });
                recent.truncate(8);
                0
            }
        };
        let mapped = &recent[position];
        for (scope, &total) in mapped.totals.iter().enumerate() {
            counts[scope][index].checks += total;
        }
        for &(row, outcome) in &outcomes.failed {
            let (Some(failure), Some(scopes)) = (outcome.failure(), mapped.rows.get(row)) else { continue };
            for &scope in scopes {
                let bucket = &mut counts[scope][index];
                if failure.is_observation() {
                    bucket.failed += 1;
                } else {
                    // Cut by the sweep's deadline: no observation either way.
                    bucket.checks = bucket.checks.saturating_sub(1);
                }
            }
        }
        Ok(())
    })?;
    for scope in &mut counts {
        scope.retain(|c| c.checks > 0);
    }
    Ok(counts)
}
