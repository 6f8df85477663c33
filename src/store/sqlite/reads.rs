//! Reading runs back: the runs themselves, their results spelled out, the lean outcomes the
//! availability analysis replays, and each run's own histograms.

use std::collections::HashMap;

use rusqlite::types::Value;

use super::blocks::{RosterCache, for_each_block};
use super::{DataError, SqliteStore, check_kind};
use crate::probe::Phase;
use crate::store::columns::{self, ColumnsError};
use crate::store::{
    HistogramRecord, ResultFilter, Roster, RunId, RunOutcomes, SiteRecord, StoreResult, StoredResult, StoredRun,
    histogram,
};

pub(super) fn runs(store: &SqliteStore, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>> {
    let mut sql = String::from(
        "SELECT id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, failures \
         FROM runs WHERE valid IS NOT NULL",
    );
    let mut args = Vec::new();
    push_time_range(&mut sql, &mut args, "started_at_ms", from_ms, to_ms);
    sql.push_str(" ORDER BY started_at_ms, id");
    let error = |e| store.query_error("runs", e);
    let mut select = store.conn.prepare(&sql).map_err(error)?;
    let rows = select.query_map(rusqlite::params_from_iter(args), run_from_row).map_err(error)?;
    rows.collect::<Result<_, _>>().map_err(error)
}

pub(super) fn results(
    store: &SqliteStore,
    filter: &ResultFilter,
    each: &mut dyn FnMut(StoredResult) -> StoreResult<()>,
) -> StoreResult<()> {
    let sites = store.sites()?;
    // The site keys asked for, when a site or cluster narrows the selection.
    let wanted: Option<std::collections::HashSet<i64>> = match (&filter.site_id, &filter.cluster) {
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
    let mut sql = String::from("1 = 1");
    let mut args = Vec::new();
    if let Some(run_id) = filter.run_id {
        sql.push_str(" AND u.id = ?");
        args.push(Value::Integer(run_id));
    }
    push_time_range(&mut sql, &mut args, "u.started_at_ms", filter.from_ms, filter.to_ms);
    let mut left = filter.limit.unwrap_or(usize::MAX);
    let mut rosters = RosterCache::default();
    let mut certs: Option<HashMap<i64, Vec<(RunId, i64)>>> = None;
    for_each_block(&store.conn, &sql, rusqlite::params_from_iter(args), &mut |block| {
        if left == 0 {
            return Ok(false);
        }
        let roster = rosters.get(&store.conn, block.roster_id)?;
        let failed = if filter.failed_only {
            let failed = block.failed(&roster)?;
            if failed.is_empty() {
                return Ok(true);
            }
            Some(failed.into_iter().map(|(i, _)| i).collect::<std::collections::HashSet<_>>())
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
        let details = store.run_details(block.run_id).map_err(DataError::Store)?;
        let certs = match &mut certs {
            Some(certs) => certs,
            None => certs.insert(store.site_certs().map_err(DataError::Store)?),
        };
        for i in matching {
            let row = &rows[i - first];
            let site = sites
                .get(&row.site_key)
                .ok_or_else(|| DataError::Data(format!("run {}: unknown site key {}", block.run_id, row.site_key)))?;
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
    .map_err(|e| store.data_error("results", e))
}

pub(super) fn site_keys(store: &SqliteStore) -> StoreResult<Vec<(i64, String)>> {
    let error = |e| store.query_error("sites", e);
    let mut select = store.conn.prepare_cached("SELECT key, site_id FROM sites").map_err(error)?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}

pub(super) fn vantages(store: &SqliteStore) -> StoreResult<Vec<String>> {
    let error = |e| store.query_error("vantages", e);
    let mut select = store.conn.prepare_cached("SELECT DISTINCT vantage FROM runs ORDER BY vantage").map_err(error)?;
    let rows = select.query_map([], |row| row.get(0)).map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}

pub(super) fn run_outcomes(
    store: &SqliteStore,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut sql = String::from(
        "SELECT u.id, u.vantage, u.started_at_ms, u.finished_at_ms, u.valid, u.invalid_reason, u.checks, \
         u.failures, b.roster_id, b.outcomes FROM runs u LEFT JOIN run_results b ON b.run_id = u.id \
         WHERE u.valid IS NOT NULL",
    );
    let mut args = Vec::new();
    push_time_range(&mut sql, &mut args, "u.started_at_ms", from_ms, to_ms);
    sql.push_str(" ORDER BY u.started_at_ms, u.id");
    let error = |e| store.query_error("runs", e);
    let mut select = store.conn.prepare(&sql).map_err(error)?;
    let mut rows = select.query(rusqlite::params_from_iter(args)).map_err(error)?;
    let mut rosters = RosterCache::default();
    let empty = std::sync::Arc::new(Roster::new());
    while let Some(row) = rows.next().map_err(error)? {
        let run = run_from_row(row).map_err(error)?;
        let outcomes = match row.get::<_, Option<i64>>(8).map_err(error)? {
            None => RunOutcomes { roster: empty.clone(), failed: Vec::new() },
            Some(roster_id) => {
                let roster = rosters.get(&store.conn, roster_id).map_err(|e| store.data_error("results", e))?;
                let outcome_runs = row.get_ref(9).and_then(|v| Ok(v.as_blob()?)).map_err(error)?;
                let corrupt = |e: ColumnsError| store.corrupt(format!("results of run {}: {e}", run.id));
                RunOutcomes {
                    failed: columns::failed_rows(outcome_runs, roster.keys.len()).map_err(corrupt)?,
                    roster: roster.keys.clone(),
                }
            }
        };
        each(&run, &outcomes)?;
    }
    Ok(())
}

pub(super) fn run_histograms(store: &SqliteStore, run_id: RunId) -> StoreResult<Vec<HistogramRecord>> {
    let error = |e| store.query_error("histograms", e);
    let mut select = store
        .conn
        .prepare(
            "SELECT cluster, check_kind, phase, hist FROM histograms WHERE run_id = ?1 \
             ORDER BY cluster, check_kind, phase",
        )
        .map_err(error)?;
    let mut rows = select.query([run_id]).map_err(error)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(error)? {
        let cluster: String = row.get(0).map_err(error)?;
        let check = check_kind(row.get(1).map_err(error)?).map_err(|e| store.data_error("histograms", e))?;
        let phase_code: u8 = row.get(2).map_err(error)?;
        let phase = Phase::from_code(phase_code)
            .ok_or_else(|| store.corrupt(format!("unknown phase code {phase_code} in run {run_id}")))?;
        let blob: Vec<u8> = row.get(3).map_err(error)?;
        let histogram = histogram::decode(&blob)
            .map_err(|m| store.corrupt(format!("run {run_id}, {cluster} {check} {}: {m}", phase.as_str())))?;
        records.push(HistogramRecord { cluster, check, phase, histogram });
    }
    Ok(records)
}

/// A run from the first eight columns of a row: id, vantage, started_at_ms, finished_at_ms,
/// valid, invalid_reason, checks, failures.
fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRun> {
    Ok(StoredRun {
        id: row.get(0)?,
        vantage: row.get(1)?,
        started_at_ms: row.get(2)?,
        finished_at_ms: row.get(3)?,
        valid: row.get(4)?,
        invalid_reason: row.get(5)?,
        checks: row.get(6)?,
        failures: row.get(7)?,
    })
}

impl SqliteStore {
    /// Every site the store knows, by key.
    pub(super) fn sites(&self) -> StoreResult<HashMap<i64, SiteRecord>> {
        let error = |e| self.query_error("sites", e);
        let mut select =
            self.conn.prepare_cached("SELECT key, site_id, customer, cluster, hostname FROM sites").map_err(error)?;
        let rows = select
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    SiteRecord { id: row.get(1)?, customer: row.get(2)?, cluster: row.get(3)?, hostname: row.get(4)? },
                ))
            })
            .map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }

    /// The texts explaining results of one run, by (site key, check code).
    fn run_details(&self, run_id: RunId) -> StoreResult<HashMap<(i64, u8), String>> {
        let error = |e| self.query_error("result details", e);
        let mut select = self
            .conn
            .prepare_cached("SELECT site_key, check_kind, detail FROM result_details WHERE run_id = ?1")
            .map_err(error)?;
        let rows = select.query_map([run_id], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?))).map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }

    /// Every site's certificate expiry history: (first run, expiry), oldest first.
    fn site_certs(&self) -> StoreResult<HashMap<i64, Vec<(RunId, i64)>>> {
        let error = |e| self.query_error("certificate expiry dates", e);
        let mut select = self
            .conn
            .prepare_cached("SELECT site_key, from_run, not_after FROM site_certs ORDER BY site_key, from_run")
            .map_err(error)?;
        let mut rows = select.query([]).map_err(error)?;
        let mut certs: HashMap<i64, Vec<(RunId, i64)>> = HashMap::new();
        while let Some(row) = rows.next().map_err(error)? {
            certs
                .entry(row.get(0).map_err(error)?)
                .or_default()
                .push((row.get(1).map_err(error)?, row.get(2).map_err(error)?));
        }
        Ok(certs)
    }
}

/// Appends the half-open [from, to) condition on `column`.
fn push_time_range(sql: &mut String, args: &mut Vec<Value>, column: &str, from_ms: Option<i64>, to_ms: Option<i64>) {
    if let Some(from) = from_ms {
        sql.push_str(&format!(" AND {column} >= ?"));
        args.push(Value::Integer(from));
    }
    if let Some(to) = to_ms {
        sql.push_str(&format!(" AND {column} < ?"));
        args.push(Value::Integer(to));
    }
}
