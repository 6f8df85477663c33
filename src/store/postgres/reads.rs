//! Reading runs back: the runs themselves, their results spelled out, the lean outcomes the
//! availability analysis replays, and each run's own histograms.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use postgres::GenericClient;

use super::blocks::{RosterCache, for_each_block};
use super::{DataError, PostgresStore, check_kind, code};
use crate::probe::Phase;
use crate::store::{
    HistogramRecord, ResultFilter, Roster, RunId, RunOutcomes, SiteRecord, StoreResult, StoredResult, StoredRun,
    columns, histogram,
};

const RUN_COLUMNS: &str =
    "u.id, u.vantage, u.started_at_ms, u.finished_at_ms, u.valid, u.invalid_reason, u.checks, u.failures";

pub(super) fn runs(store: &PostgresStore, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>> {
    let (from, to) = (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX));
    let rows = store
        .with(|c| {
            c.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM runs u WHERE u.started_at_ms >= $1 AND u.started_at_ms < $2 \
                     ORDER BY u.started_at_ms, u.id"
                ),
                &[&from, &to],
            )
        })
        .map_err(|e| store.query_error("runs", e))?;
    rows.iter().map(run_from_row).collect::<Result<_, _>>().map_err(|e| store.query_error("runs", e))
}

pub(super) fn results(
    store: &PostgresStore,
    filter: &ResultFilter,
    each: &mut dyn FnMut(StoredResult) -> StoreResult<()>,
) -> StoreResult<()> {
    let sites = store.sites()?;
    let wanted: Option<HashSet<i64>> = match (&filter.site_id, &filter.cluster) {
        (None, None) => None,
        (site, cluster) => Some(
            sites
                .iter()
                .filter(|(_, s)| site.as_ref().is_none_or(|id| &s.id == id))
                .filter(|(_, s)| cluster.as_ref().is_none_or(|c| &s.cluster == c))
                .map(|(&key, _)| key)
                .collect(),
        ),
    };
    if wanted.as_ref().is_some_and(|w| w.is_empty()) {
        return Ok(());
    }
    let certs = store.site_certs()?;
    let (run_id, from, to) = (filter.run_id, filter.from_ms.unwrap_or(i64::MIN), filter.to_ms.unwrap_or(i64::MAX));
    let mut left = filter.limit.unwrap_or(usize::MAX);
    let mut rosters = RosterCache::default();
    let condition = "($1::bigint IS NULL OR u.id = $1) AND u.started_at_ms >= $2 AND u.started_at_ms < $3";
    store
        .with(|client| {
            for_each_block(client, condition, &[&run_id, &from, &to], &mut |client, block| {
                if left == 0 {
                    return Ok(false);
                }
                let roster = rosters.get(client, block.roster_id)?;
                let failed = if filter.failed_only {
                    let failed = block.failed(&roster)?;
                    if failed.is_empty() {
                        return Ok(true);
                    }
                    Some(failed.into_iter().map(|(i, _)| i).collect::<HashSet<_>>())
                } else {
                    None
                };
                let keys = &roster.keys;
                let matching: Vec<usize> = (0..keys.len())
                    .filter(|i| failed.as_ref().is_none_or(|f| f.contains(i)))
                    .filter(|&i| wanted.as_ref().is_none_or(|w| w.contains(&keys[i].0)))
                    .take(left)
                    .collect();
                if matching.is_empty() {
                    return Ok(true);
                }
                let first = matching[0];
                let rows = block.rows_in(&roster, first..matching[matching.len() - 1] + 1)?;
                let details = run_details(client, block.run_id, block.started_at_ms)?;
                for i in matching {
                    let row = &rows[i - first];
                    let site = sites.get(&row.site_key).ok_or_else(|| {
                        DataError::Data(format!("run {}: unknown site key {}", block.run_id, row.site_key))
                    })?;
                    let cert_not_after = row
                        .has_cert
                        .then(|| certs.get(&row.site_key).and_then(|history| columns::cert_at(history, block.run_id)))
                        .flatten();
                    each(StoredResult {
                        run_id: block.run_id,
                        site: site.clone(),
                        check: row.check,
                        outcome: row.outcome,
                        started_at_ms: block.started_at_ms + row.offset_ms,
                        attempts: row.attempts,
                        http_status: row.http_status,
                        timings: row.timings,
                        cert_not_after,
                        detail: details.get(&(row.site_key, row.check.code())).cloned(),
                    })
                    .map_err(DataError::Store)?;
                    left -= 1;
                }
                Ok(left > 0)
            })
        })
        .map_err(|e| store.data_error("results", e))
}

pub(super) fn site_keys(store: &PostgresStore) -> StoreResult<Vec<(i64, String)>> {
    let rows = store
        .with(|c| c.query("SELECT key, site_id FROM sites ORDER BY key", &[]))
        .map_err(|e| store.query_error("sites", e))?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, postgres::Error>>()
        .map_err(|e| store.query_error("sites", e))
}

pub(super) fn vantages(store: &PostgresStore) -> StoreResult<Vec<String>> {
    let rows = store
        .with(|c| c.query("SELECT DISTINCT vantage FROM runs ORDER BY vantage", &[]))
        .map_err(|e| store.query_error("vantages", e))?;
    rows.iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, postgres::Error>>()
        .map_err(|e| store.query_error("vantages", e))
}

pub(super) fn run_outcomes(
    store: &PostgresStore,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>,
) -> StoreResult<()> {
    let (from, to) = (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX));
    let error = |e| store.query_error("runs", e);
    // Outcome columns are a few bytes per run: a month of them is read at once.
    let rows = store
        .with(|c| {
            c.query(
                &format!(
                    "SELECT {RUN_COLUMNS}, u.roster_id, u.outcomes FROM runs u \
                     WHERE u.started_at_ms >= $1 AND u.started_at_ms < $2 ORDER BY u.started_at_ms, u.id"
                ),
                &[&from, &to],
            )
        })
        .map_err(error)?;
    let mut rosters = RosterCache::default();
    let empty = Arc::new(Roster::new());
    for row in rows {
        let run = run_from_row(&row).map_err(error)?;
        let outcomes = match row.try_get::<_, Option<i64>>(8).map_err(error)? {
            None => RunOutcomes { roster: empty.clone(), failed: Vec::new() },
            Some(roster_id) => {
                let roster = store.with(|c| rosters.get(c, roster_id)).map_err(|e| store.data_error("results", e))?;
                let outcome_runs: &[u8] = row.try_get(9).map_err(error)?;
                let failed = columns::failed_rows(outcome_runs, roster.keys.len())
                    .map_err(|e| store.corrupt(format!("results of run {}: {e}", run.id)))?;
                RunOutcomes { failed, roster: roster.keys.clone() }
            }
        };
        each(&run, &outcomes)?;
    }
    Ok(())
}

pub(super) fn run_histograms(store: &PostgresStore, run_id: RunId) -> StoreResult<Vec<HistogramRecord>> {
    let error = |e| store.query_error("histograms", e);
    let rows = store
        .with(|c| {
            c.query(
                "SELECT cluster, check_kind, phase, hist FROM histograms WHERE run_id = $1 \
                 ORDER BY cluster, check_kind, phase",
                &[&run_id],
            )
        })
        .map_err(error)?;
    let mut records = Vec::new();
    for row in rows {
        let cluster: String = row.try_get(0).map_err(error)?;
        let check = check_kind(row.try_get(1).map_err(error)?).map_err(|e| store.data_error("histograms", e))?;
        let phase_code =
            code(row.try_get(2).map_err(error)?, "phase").map_err(|e| store.data_error("histograms", e))?;
        let phase = Phase::from_code(phase_code)
            .ok_or_else(|| store.corrupt(format!("unknown phase code {phase_code} in run {run_id}")))?;
        let blob: &[u8] = row.try_get(3).map_err(error)?;
        let histogram = histogram::decode(blob)
            .map_err(|m| store.corrupt(format!("run {run_id}, {cluster} {check} {}: {m}", phase.as_str())))?;
        records.push(HistogramRecord { cluster, check, phase, histogram });
    }
    Ok(records)
}

/// A run from the first eight columns of a row (see `RUN_COLUMNS`).
fn run_from_row(row: &postgres::Row) -> Result<StoredRun, postgres::Error> {
    let count = |i| row.try_get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(StoredRun {
        id: row.try_get(0)?,
        vantage: row.try_get(1)?,
        started_at_ms: row.try_get(2)?,
        finished_at_ms: row.try_get(3)?,
        valid: row.try_get(4)?,
        invalid_reason: row.try_get(5)?,
        checks: count(6)?,
        failures: count(7)?,
    })
}

/// The texts explaining results of one run, by (site key, check code).
fn run_details(
    client: &mut impl GenericClient,
    run_id: RunId,
    started_at_ms: i64,
) -> Result<HashMap<(i64, u8), String>, DataError> {
    let rows = client.query(
        "SELECT site_key, check_kind, detail FROM result_details WHERE run_id = $1 AND started_at_ms = $2",
        &[&run_id, &started_at_ms],
    )?;
    let mut details = HashMap::new();
    for row in rows {
        details.insert((row.try_get(0)?, code(row.try_get(1)?, "check kind")?), row.try_get(2)?);
    }
    Ok(details)
}

impl PostgresStore {
    /// Every site the store knows, by key.
    pub(super) fn sites(&self) -> StoreResult<HashMap<i64, SiteRecord>> {
        let error = |e| self.query_error("sites", e);
        let rows = self
            .with(|c| c.query("SELECT key, site_id, customer, cluster, hostname FROM sites", &[]))
            .map_err(error)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0)?,
                    SiteRecord {
                        id: row.try_get(1)?,
                        customer: row.try_get(2)?,
                        cluster: row.try_get(3)?,
                        hostname: row.try_get(4)?,
                    },
                ))
            })
            .collect::<Result<_, postgres::Error>>()
            .map_err(error)
    }

    /// Every site's certificate expiry history: (first run, expiry), oldest first.
    fn site_certs(&self) -> StoreResult<HashMap<i64, Vec<(RunId, i64)>>> {
        let error = |e| self.query_error("certificate expiry dates", e);
        let rows = self
            .with(|c| c.query("SELECT site_key, from_run, not_after FROM site_certs ORDER BY site_key, from_run", &[]))
            .map_err(error)?;
        let mut certs: HashMap<i64, Vec<(RunId, i64)>> = HashMap::new();
        for row in rows {
            certs
                .entry(row.try_get(0).map_err(error)?)
                .or_default()
                .push((row.try_get(1).map_err(error)?, row.try_get(2).map_err(error)?));
        }
        Ok(certs)
    }
}
