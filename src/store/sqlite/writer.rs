//! Writing one run: [`begin_run`] opens the transaction and records the fleet's sites,
//! [`SqliteRunWriter`] gathers the results, and `finish` stores them as the run's columns with
//! its summary and histograms, then commits.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::{DataError, PENDING_DAY, PENDING_HOUR, PENDING_SITE_DAY, SqliteStore, write_error};
use crate::probe::CheckResult;
use crate::store::{
    HistogramRecord, RunId, RunMeta, RunSummary, RunWriter, SiteRecord, StoreError, StoreResult, columns, histogram,
    rollup,
};

/// Starts a run (see [`crate::store::Store::begin_run`]): takes the write lock, records the run
/// and the fleet's sites, and finds the prober's last roster.
pub(super) fn begin_run<'a>(
    store: &'a mut SqliteStore,
    meta: &RunMeta,
    sites: &[SiteRecord],
) -> StoreResult<Box<dyn RunWriter + 'a>> {
    let path = store.path.as_path();
    let error = |e| write_error(path, "run start", e);
    // Immediate: take the write lock now (waiting up to the busy timeout), not halfway through.
    let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
    tx.execute("INSERT INTO runs (vantage, started_at_ms) VALUES (?1, ?2)", params![meta.vantage, meta.started_at_ms])
        .map_err(error)?;
    let run_id = tx.last_insert_rowid();
    let (site_keys, certs) = upsert_sites(&tx, sites).map_err(|e| write_error(path, "sites", e))?;
    let previous = latest_roster(&tx, &meta.vantage).map_err(|e| match e {
        DataError::Sql(e) => write_error(path, "run start", e),
        DataError::Data(message) => StoreError::Corrupt { path: path.display().to_string(), message },
        DataError::Store(e) => e,
    })?;
    Ok(Box::new(SqliteRunWriter {
        tx,
        path,
        run_id,
        started_at_ms: meta.started_at_ms,
        site_keys,
        certs,
        previous,
        block: BlockBuilder::default(),
        issuers: Vec::new(),
    }))
}

/// Inserts new sites and updates changed ones; returns the key of each given site, in order.
/// Reads the table once so an unchanged fleet of 100,000 sites costs no writes.
fn upsert_sites(tx: &Transaction<'_>, sites: &[SiteRecord]) -> rusqlite::Result<(Vec<i64>, HashMap<i64, i64>)> {
    let mut known: HashMap<String, (i64, SiteRecord)> = HashMap::new();
    let mut certs = HashMap::new();
    {
        let mut select = tx.prepare("SELECT key, site_id, customer, cluster, hostname, cert_not_after FROM sites")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let site =
                SiteRecord { id: row.get(1)?, customer: row.get(2)?, cluster: row.get(3)?, hostname: row.get(4)? };
            let key: i64 = row.get(0)?;
            if let Some(cert) = row.get::<_, Option<i64>>(5)? {
                certs.insert(key, cert);
            }
            known.insert(site.id.clone(), (key, site));
        }
    }
    let mut insert = tx.prepare("INSERT INTO sites (site_id, customer, cluster, hostname) VALUES (?1, ?2, ?3, ?4)")?;
    let mut update = tx.prepare("UPDATE sites SET customer = ?2, cluster = ?3, hostname = ?4 WHERE key = ?1")?;
    let mut keys = Vec::with_capacity(sites.len());
    for site in sites {
        let key = match known.get(&site.id) {
            Some((key, stored)) if stored == site => *key,
            Some((key, _)) => {
                update.execute(params![key, site.customer, site.cluster, site.hostname])?;
                *key
            }
            None => {
                insert.execute(params![site.id, site.customer, site.cluster, site.hostname])?;
                tx.last_insert_rowid()
            }
        };
        // Keeps a site listed twice consistent with whichever record came last.
        known.insert(site.id.clone(), (key, site.clone()));
        keys.push(key);
    }
    Ok((keys, certs))
}

/// Records each site's certificate issuer where it changed: issuers change a few times a year,
/// so a run reads them once and writes only the new ones.
fn update_issuers(tx: &Transaction<'_>, issuers: &[(i64, String)]) -> rusqlite::Result<()> {
    if issuers.is_empty() {
        return Ok(());
    }
    let mut stored: HashMap<i64, String> = HashMap::new();
    {
        let mut select = tx.prepare_cached("SELECT key, cert_issuer FROM sites WHERE cert_issuer IS NOT NULL")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            stored.insert(row.get(0)?, row.get(1)?);
        }
    }
    let mut update = tx.prepare_cached("UPDATE sites SET cert_issuer = ?2 WHERE key = ?1")?;
    for (key, issuer) in issuers {
        if stored.get(key) != Some(issuer) {
            update.execute(params![key, issuer])?;
            stored.insert(*key, issuer.clone());
        }
    }
    Ok(())
}

/// The roster of `vantage`'s latest run, if it has one.
fn latest_roster(tx: &Transaction<'_>, vantage: &str) -> Result<Option<StoredRoster>, DataError> {
    let found = tx
        .query_row(
            "SELECT r.id, r.count, r.roster FROM runs u JOIN run_results b ON b.run_id = u.id \
             JOIN rosters r ON r.id = b.roster_id WHERE u.vantage = ?1 ORDER BY u.id DESC LIMIT 1",
            [vantage],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?)),
        )
        .optional()?;
    let Some((id, count, bytes)) = found else { return Ok(None) };
    let roster = columns::decode_roster(&bytes, usize::try_from(count).unwrap_or(0))
        .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
    Ok(Some(StoredRoster { id, roster }))
}

/// Writes one run inside a transaction; dropping it rolls the transaction back.
struct SqliteRunWriter<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
    run_id: RunId,
    started_at_ms: i64,
    /// Store key of each site, indexed like the `sites` given to `begin_run`.
    site_keys: Vec<i64>,
    /// The certificate expiry each site had last, by store key.
    certs: HashMap<i64, i64>,
    /// The roster of this prober's last run, whose base offsets this run keeps where it can.
    previous: Option<StoredRoster>,
    block: BlockBuilder,
    /// (store key, issuer) for results that carried a certificate.
    issuers: Vec<(i64, String)>,
}

impl RunWriter for SqliteRunWriter<'_> {
    fn insert(&mut self, result: &CheckResult) -> StoreResult<()> {
        let Some(&site_key) = self.site_keys.get(result.site) else {
            return Err(StoreError::Query {
                path: self.path.display().to_string(),
                message: format!("result for site #{} but the run has {} sites", result.site, self.site_keys.len()),
            });
        };
        let row = columns::Row {
            site_key,
            check: result.check,
            outcome: result.outcome,
            offset_ms: result.started_at_ms - self.started_at_ms,
            attempts: result.attempts,
            http_status: result.http_status,
            timings: result.timings,
            has_cert: result.cert_not_after.is_some(),
        };
        self.block.push(row, result.cert_not_after, result.detail.clone());
        if let Some(issuer) = &result.cert_issuer {
            self.issuers.push((site_key, issuer.clone()));
        }
        Ok(())
    }

    fn finish(self: Box<Self>, summary: &RunSummary, histograms: &[HistogramRecord]) -> StoreResult<RunId> {
        let SqliteRunWriter { tx, path, run_id, started_at_ms, mut certs, previous, block, issuers, .. } = *self;
        block.write(&tx, run_id, previous.as_ref(), &mut certs).map_err(|e| match e {
            WriteError::Sql(e) => write_error(path, "results", e),
            WriteError::Invalid(message) => StoreError::Query { path: path.display().to_string(), message },
        })?;
        update_issuers(&tx, &issuers).map_err(|e| write_error(path, "certificate issuers", e))?;
        tx.execute(
            "UPDATE runs SET finished_at_ms = ?2, valid = ?3, invalid_reason = ?4, checks = ?5, failures = ?6 \
             WHERE id = ?1",
            params![
                run_id,
                summary.finished_at_ms,
                summary.valid,
                summary.invalid_reason,
                summary.checks,
                summary.failures
            ],
        )
        .map_err(|e| write_error(path, "run summary", e))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO histograms (run_id, cluster, check_kind, phase, hist) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| write_error(path, "histograms", e))?;
            for h in histograms {
                let blob = histogram::encode(&h.histogram);
                insert
                    .execute(params![run_id, h.cluster, h.check.code(), h.phase.code(), blob])
                    .map_err(|e| write_error(path, "histograms", e))?;
            }
        }
        if summary.valid {
            // The run's hour and day must be rolled up (again) once they are over; a new run in
            // a day whose site pass is under way starts that pass over.
            tx.execute(
                "INSERT INTO rollups_pending (level, bucket_ms) VALUES (?1, ?2), (?3, ?4), (?5, ?4) \
                 ON CONFLICT (level, bucket_ms) DO UPDATE SET next_site_key = 0",
                params![
                    PENDING_HOUR,
                    rollup::bucket_start(started_at_ms, rollup::HOUR_MS),
                    PENDING_DAY,
                    rollup::bucket_start(started_at_ms, rollup::DAY_MS),
                    PENDING_SITE_DAY
                ],
            )
            .map_err(|e| write_error(path, "pending rollups", e))?;
        }
        // Valid or not, a run changes what its day (and the day before) shows as monitored.
        let (day, day_before) = super::cluster_days::marked_days(started_at_ms);
        tx.execute(super::cluster_days::MARK, params![super::PENDING_CLUSTER_DAY, day, day_before])
            .map_err(|e| write_error(path, "pending cluster days", e))?;
        tx.commit().map_err(|e| write_error(path, "run (commit)", e))?;
        Ok(run_id)
    }
}

/// A roster as stored, decoded.
pub(super) struct StoredRoster {
    id: i64,
    roster: columns::Roster,
}

/// A run's results gathered for [`columns::encode`], with what is kept beside the columns.
#[derive(Default)]
pub(super) struct BlockBuilder {
    rows: Vec<columns::Row>,
    /// (site key, check code, expiry), for results that carried a certificate.
    certs: Vec<(i64, i64)>,
    details: Vec<(i64, u8, String)>,
}

pub(super) enum WriteError {
    Sql(rusqlite::Error),
    /// The run cannot be stored as given (two results for one check), or its own encoding
    /// does not read back.
    Invalid(String),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

impl BlockBuilder {
    pub(super) fn push(&mut self, row: columns::Row, cert_not_after: Option<i64>, detail: Option<String>) {
        if let Some(cert) = cert_not_after {
            self.certs.push((row.site_key, cert));
        }
        if let Some(detail) = detail {
            self.details.push((row.site_key, row.check.code(), detail));
        }
        self.rows.push(row);
    }

    /// Writes the run's columns, details and changed certificates; `certs` (each site's latest
    /// expiry) is brought up to date. Returns the run's roster.
    pub(super) fn write(
        mut self,
        tx: &Transaction<'_>,
        run_id: RunId,
        previous: Option<&StoredRoster>,
        certs: &mut HashMap<i64, i64>,
    ) -> Result<StoredRoster, WriteError> {
        let block = columns::encode(&mut self.rows, previous.map(|p| &p.roster));
        if let Some(pair) =
            self.rows.windows(2).find(|pair| (pair[0].site_key, pair[0].check) == (pair[1].site_key, pair[1].check))
        {
            return Err(WriteError::Invalid(format!(
                "two {} results for site #{} in run {run_id}",
                pair[0].check, pair[0].site_key
            )));
        }
        let (roster_id, stored) = match (&block.roster, previous) {
            (None, Some(previous)) => (previous.id, None),
            (None, None) => unreachable!("encode gives a roster when there is no previous one"),
            (Some(bytes), _) => {
                let hash = columns::roster_hash(bytes);
                let found: Option<i64> = tx
                    .prepare_cached("SELECT id FROM rosters WHERE hash = ?1 AND count = ?2 AND roster = ?3")?
                    .query_row(params![hash, block.count as i64, bytes], |row| row.get(0))
                    .optional()?;
                let id = match found {
                    Some(id) => id,
                    None => {
                        tx.prepare_cached("INSERT INTO rosters (hash, count, roster) VALUES (?1, ?2, ?3)")?
                            .execute(params![hash, block.count as i64, bytes])?;
                        tx.last_insert_rowid()
                    }
                };
                (id, Some(bytes.clone()))
            }
        };
        tx.prepare_cached("INSERT INTO run_results (run_id, roster_id, outcomes, details) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![run_id, roster_id, block.outcomes, block.details])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO result_details (run_id, site_key, check_kind, detail) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (site_key, check, detail) in &self.details {
            insert.execute(params![run_id, site_key, check, detail])?;
        }
        // Expiry dates change a few times a year: a row only when one does.
        let mut insert =
            tx.prepare_cached("INSERT OR REPLACE INTO site_certs (site_key, from_run, not_after) VALUES (?1, ?2, ?3)")?;
        let mut update = tx.prepare_cached("UPDATE sites SET cert_not_after = ?2 WHERE key = ?1")?;
        for &(site_key, not_after) in &self.certs {
            if certs.get(&site_key) != Some(&not_after) {
                insert.execute(params![site_key, run_id, not_after])?;
                update.execute(params![site_key, not_after])?;
                certs.insert(site_key, not_after);
            }
        }
        match (stored, previous) {
            (Some(bytes), _) => {
                let roster =
                    columns::decode_roster(&bytes, block.count).map_err(|e| WriteError::Invalid(e.to_string()))?;
                Ok(StoredRoster { id: roster_id, roster })
            }
            (None, Some(previous)) => Ok(StoredRoster { id: previous.id, roster: previous.roster.clone() }),
            (None, None) => unreachable!("encode gives a roster when there is no previous one"),
        }
    }
}
