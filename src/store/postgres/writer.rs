//! Writing one run: [`begin_run`] takes the run's id, [`PostgresRunWriter`] gathers the
//! results, and `finish` stores the run in one transaction: the fleet's new and changed sites,
//! one `runs` row carrying its summary and its result columns, its details, changed
//! certificate dates, histograms and pending rollups, a statement each. Nothing is held open
//! while the sweep runs, and a writer dropped without `finish` leaves nothing behind.

use std::collections::HashMap;

use postgres::{Client, GenericClient, Transaction};

use super::{DataError, PENDING_DAY, PENDING_HOUR, PENDING_SITE_DAY, PostgresStore, schema, write_error};
use crate::probe::CheckResult;
use crate::store::{
    HistogramRecord, RunId, RunMeta, RunSummary, RunWriter, SiteRecord, StoreError, StoreResult, columns, histogram,
    rollup,
};

/// Starts a run (see [`crate::store::Store::begin_run`]): creates its month's partitions if
/// needed and takes its id.
pub(super) fn begin_run<'a>(
    store: &'a mut PostgresStore,
    meta: &RunMeta,
    sites: &[SiteRecord],
) -> StoreResult<Box<dyn RunWriter + 'a>> {
    let location = store.location.clone();
    let client = store.client.get_mut();
    let error = |e| write_error(&location, "run start", e);
    schema::ensure_partitions(client, meta.started_at_ms)
        .map_err(|message| StoreError::Query { path: location.clone(), message })?;
    let run_id: i64 = client.query_one("SELECT nextval('runs_id_seq')", &[]).map_err(error)?.get(0);
    Ok(Box::new(PostgresRunWriter {
        client,
        location,
        run_id,
        meta: meta.clone(),
        sites: sites.to_vec(),
        rows: Vec::new(),
        cert_rows: Vec::new(),
        issuers: Vec::new(),
        details: Vec::new(),
    }))
}

/// The store key of each given site, in order: from the snapshot of this exact fleet when one
/// is stored (one row read), otherwise by [`upsert_sites`], whose keys are then stored as this
/// fleet's snapshot.
fn site_keys(client: &mut impl GenericClient, sites: &[SiteRecord]) -> Result<Vec<i64>, DataError> {
    let fingerprint = fleet_fingerprint(sites);
    let count = sites.len() as i64;
    let stored = client.query_opt(
        "SELECT site_keys FROM site_snapshots WHERE fingerprint = $1 AND count = $2",
        &[&fingerprint, &count],
    )?;
    if let Some(row) = stored {
        let bytes: &[u8] = row.try_get(0)?;
        match decode_keys(bytes, sites.len()) {
            Some(keys) => return Ok(keys),
            None => return Err(DataError::Data(format!("site snapshot {fingerprint}: keys do not decode"))),
        }
    }
    let (keys, changed) = upsert_sites(client, sites)?;
    if changed {
        // Another fleet's snapshot may name records this run has just changed.
        client.execute("DELETE FROM site_snapshots", &[])?;
    }
    client.execute(
        "INSERT INTO site_snapshots (fingerprint, count, site_keys) VALUES ($1, $2, $3) \
         ON CONFLICT (fingerprint) DO NOTHING",
        &[&fingerprint, &count, &encode_keys(&keys)],
    )?;
    Ok(keys)
}

/// A fleet's fingerprint: FNV-1a (64 bits, top bit cleared) over every site's fields in order.
fn fleet_fingerprint(sites: &[SiteRecord]) -> i64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for site in sites {
        for field in [&site.id, &site.customer, &site.cluster, &site.hostname] {
            for byte in field.bytes().chain([0xff]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    (hash >> 1) as i64
}

/// Keys as zigzag varints of their differences (a fleet's keys mostly count up by one: a byte
/// each).
fn encode_keys(keys: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.len() + 8);
    let mut previous = 0i64;
    for &key in keys {
        let delta = key.wrapping_sub(previous);
        let mut zigzag = ((delta << 1) ^ (delta >> 63)) as u64;
        previous = key;
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The inverse of [`encode_keys`]; `None` unless exactly `count` keys are there.
fn decode_keys(bytes: &[u8], count: usize) -> Option<Vec<i64>> {
    let mut keys = Vec::with_capacity(count);
    let (mut previous, mut zigzag, mut shift) = (0i64, 0u64, 0u32);
    for &byte in bytes {
        if shift > 63 {
            return None;
        }
        zigzag |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 != 0 {
            shift += 7;
            continue;
        }
        let delta = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        previous = previous.wrapping_add(delta);
        keys.push(previous);
        (zigzag, shift) = (0, 0);
    }
    (shift == 0 && keys.len() == count).then_some(keys)
}

/// Inserts new sites and updates changed ones in one statement; returns the key of each given
/// site, in order, and whether any row changed. Reads the whole `sites` table: [`site_keys`]
/// calls it only for a fleet without a snapshot.
fn upsert_sites(client: &mut impl GenericClient, sites: &[SiteRecord]) -> Result<(Vec<i64>, bool), postgres::Error> {
    let mut known: HashMap<String, (i64, SiteRecord)> = HashMap::new();
    for row in client.query("SELECT key, site_id, customer, cluster, hostname FROM sites", &[])? {
        let key: i64 = row.try_get(0)?;
        let site = SiteRecord {
            id: row.try_get(1)?,
            customer: row.try_get(2)?,
            cluster: row.try_get(3)?,
            hostname: row.try_get(4)?,
        };
        known.insert(site.id.clone(), (key, site));
    }
    // New or changed sites, in fleet order (new ones get their keys in that order); a site
    // listed twice takes its last record.
    let mut last: HashMap<&str, &SiteRecord> = HashMap::new();
    for site in sites {
        last.insert(&site.id, site);
    }
    let mut changed: Vec<&SiteRecord> = Vec::new();
    for site in sites {
        let Some(site) = last.remove(site.id.as_str()) else { continue };
        if known.get(&site.id).is_none_or(|(_, stored)| stored != site) {
            changed.push(site);
        }
    }
    if !changed.is_empty() {
        let mut columns: [Vec<&str>; 4] = Default::default();
        for site in &changed {
            for (column, value) in columns.iter_mut().zip([&site.id, &site.customer, &site.cluster, &site.hostname]) {
                column.push(value);
            }
        }
        let rows = client.query(
            "INSERT INTO sites (site_id, customer, cluster, hostname) \
             SELECT i, c, l, h FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY \
             AS s (i, c, l, h, n) ORDER BY n \
             ON CONFLICT (site_id) DO UPDATE SET customer = excluded.customer, cluster = excluded.cluster, \
             hostname = excluded.hostname RETURNING key, site_id, customer, cluster, hostname",
            &[&columns[0], &columns[1], &columns[2], &columns[3]],
        )?;
        for row in rows {
            let site = SiteRecord {
                id: row.try_get(1)?,
                customer: row.try_get(2)?,
                cluster: row.try_get(3)?,
                hostname: row.try_get(4)?,
            };
            known.insert(site.id.clone(), (row.try_get(0)?, site));
        }
    }
    let keys = sites.iter().map(|site| known.get(&site.id).map_or(0, |(key, _)| *key)).collect();
    Ok((keys, !changed.is_empty()))
}

/// The roster of `vantage`'s latest run, if it has one.
fn latest_roster(client: &mut impl GenericClient, vantage: &str) -> Result<Option<StoredRoster>, DataError> {
    let found = client.query_opt(
        "SELECT r.id, r.count, r.roster FROM runs u JOIN rosters r ON r.id = u.roster_id \
         WHERE u.vantage = $1 ORDER BY u.id DESC LIMIT 1",
        &[&vantage],
    )?;
    let Some(row) = found else { return Ok(None) };
    let (id, count, bytes): (i64, i64, &[u8]) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let roster = columns::decode_roster(bytes, usize::try_from(count).unwrap_or(0))
        .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
    Ok(Some(StoredRoster { id, roster }))
}

/// A roster as stored, decoded.
struct StoredRoster {
    id: i64,
    roster: columns::Roster,
}

/// Gathers one run's results; nothing reaches the database before `finish`.
struct PostgresRunWriter<'a> {
    client: &'a mut Client,
    location: String,
    run_id: RunId,
    meta: RunMeta,
    /// The fleet's sites, as given to `begin_run`.
    sites: Vec<SiteRecord>,
    /// The results, with the site's index in `sites` as their key until `finish` knows the
    /// store's keys.
    rows: Vec<columns::Row>,
    /// (site index, expiry), for results that carried a certificate.
    cert_rows: Vec<(i64, i64)>,
    /// (site index, issuer), for results that carried a certificate.
    issuers: Vec<(i64, String)>,
    /// (site index, check code, text).
    details: Vec<(i64, i16, String)>,
}

impl RunWriter for PostgresRunWriter<'_> {
    fn insert(&mut self, result: &CheckResult) -> StoreResult<()> {
        if result.site >= self.sites.len() {
            return Err(StoreError::Query {
                path: self.location.clone(),
                message: format!("result for site #{} but the run has {} sites", result.site, self.sites.len()),
            });
        }
        let site_key = result.site as i64;
        if let Some(cert) = result.cert_not_after {
            self.cert_rows.push((site_key, cert));
        }
        if let Some(issuer) = &result.cert_issuer {
            self.issuers.push((site_key, issuer.clone()));
        }
        if let Some(detail) = &result.detail {
            self.details.push((site_key, i16::from(result.check.code()), detail.clone()));
        }
        self.rows.push(columns::Row {
            site_key,
            check: result.check,
            outcome: result.outcome,
            offset_ms: result.started_at_ms - self.meta.started_at_ms,
            attempts: result.attempts,
            http_status: result.http_status,
            timings: result.timings,
            has_cert: result.cert_not_after.is_some(),
        });
        Ok(())
    }

    fn finish(self: Box<Self>, summary: &RunSummary, histograms: &[HistogramRecord]) -> StoreResult<RunId> {
        let PostgresRunWriter { client, location, run_id, meta, sites, mut rows, cert_rows, issuers, mut details } =
            *self;
        let error = |what: &str, e| write_error(&location, what, e);
        let mut tx = client.transaction().map_err(|e| error("run", e))?;
        let data_error = |what: &str, e| match e {
            DataError::Sql(e) => error(what, e),
            DataError::Data(message) => StoreError::Corrupt { path: location.clone(), message },
            DataError::Store(e) => e,
        };
        let site_keys = site_keys(&mut tx, &sites).map_err(|e| data_error("sites", e))?;
        let key = |index: i64| site_keys[usize::try_from(index).unwrap_or(0)];
        for row in &mut rows {
            row.site_key = key(row.site_key);
        }
        for detail in &mut details {
            detail.0 = key(detail.0);
        }
        let previous = latest_roster(&mut tx, &meta.vantage).map_err(|e| data_error("run", e))?;
        let block = columns::encode(&mut rows, previous.as_ref().map(|p| &p.roster));
        if let Some(pair) = rows.windows(2).find(|p| (p[0].site_key, p[0].check) == (p[1].site_key, p[1].check)) {
            return Err(StoreError::Query {
                path: location,
                message: format!("two {} results for site #{} in run {run_id}", pair[0].check, pair[0].site_key),
            });
        }
        let roster_id = match (&block.roster, &previous) {
            (None, Some(previous)) => previous.id,
            (None, None) => unreachable!("encode gives a roster when there is no previous one"),
            (Some(bytes), _) => find_or_add_roster(&mut tx, bytes, block.count).map_err(|e| error("roster", e))?,
        };
        let started = meta.started_at_ms;
        tx.execute(
            "INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, failures, \
             roster_id, outcomes, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &run_id,
                &meta.vantage,
                &started,
                &summary.finished_at_ms,
                &summary.valid,
                &summary.invalid_reason,
                &i64::try_from(summary.checks).unwrap_or(i64::MAX),
                &i64::try_from(summary.failures).unwrap_or(i64::MAX),
                &roster_id,
                &block.outcomes,
                &block.details,
            ],
        )
        .map_err(|e| error("results", e))?;
        if !details.is_empty() {
            let keys: Vec<i64> = details.iter().map(|d| d.0).collect();
            let checks: Vec<i16> = details.iter().map(|d| d.1).collect();
            let texts: Vec<&str> = details.iter().map(|d| d.2.as_str()).collect();
            tx.execute(
                "INSERT INTO result_details (run_id, started_at_ms, site_key, check_kind, detail) \
                 SELECT $1::bigint, $2::bigint, * FROM unnest($3::bigint[], $4::smallint[], $5::text[])",
                &[&run_id, &started, &keys, &checks, &texts],
            )
            .map_err(|e| error("result details", e))?;
        }
        // Expiry dates and issuers change a few times a year: the database compares them with
        // the stored ones and writes only the changed (a lookup per site of this run, never a
        // read of the whole table).
        if !cert_rows.is_empty() {
            let mut latest: HashMap<i64, i64> = HashMap::new();
            for (index, not_after) in cert_rows {
                latest.insert(key(index), not_after);
            }
            let (keys, dates): (Vec<i64>, Vec<i64>) = latest.into_iter().unzip();
            tx.execute(
                "WITH changed AS (UPDATE sites SET cert_not_after = c.n \
                 FROM unnest($2::bigint[], $3::bigint[]) AS c (k, n) \
                 WHERE sites.key = c.k AND sites.cert_not_after IS DISTINCT FROM c.n RETURNING sites.key, c.n) \
                 INSERT INTO site_certs (site_key, from_run, not_after) SELECT key, $1::bigint, n FROM changed \
                 ON CONFLICT (site_key, from_run) DO UPDATE SET not_after = excluded.not_after",
                &[&run_id, &keys, &dates],
            )
            .map_err(|e| error("certificate dates", e))?;
        }
        if !issuers.is_empty() {
            let latest: HashMap<i64, &str> =
                issuers.iter().map(|(index, issuer)| (key(*index), issuer.as_str())).collect();
            let (keys, names): (Vec<i64>, Vec<&str>) = latest.into_iter().unzip();
            tx.execute(
                "UPDATE sites SET cert_issuer = c.i FROM unnest($1::bigint[], $2::text[]) AS c (k, i) \
                 WHERE sites.key = c.k AND sites.cert_issuer IS DISTINCT FROM c.i",
                &[&keys, &names],
            )
            .map_err(|e| error("certificate issuers", e))?;
        }
        if !histograms.is_empty() {
            let clusters: Vec<&str> = histograms.iter().map(|h| h.cluster.as_str()).collect();
            let checks: Vec<i16> = histograms.iter().map(|h| i16::from(h.check.code())).collect();
            let phases: Vec<i16> = histograms.iter().map(|h| i16::from(h.phase.code())).collect();
            let blobs: Vec<Vec<u8>> = histograms.iter().map(|h| histogram::encode(&h.histogram)).collect();
            tx.execute(
                "INSERT INTO histograms (run_id, started_at_ms, cluster, check_kind, phase, hist) \
                 SELECT $1::bigint, $2::bigint, * FROM unnest($3::text[], $4::smallint[], $5::smallint[], $6::bytea[])",
                &[&run_id, &started, &clusters, &checks, &phases, &blobs],
            )
            .map_err(|e| error("histograms", e))?;
        }
        if summary.valid {
            // The run's hour and day must be rolled up (again) once they are over; a new run in
            // a day whose site pass is under way starts that pass over.
            let (hour, day) =
                (rollup::bucket_start(started, rollup::HOUR_MS), rollup::bucket_start(started, rollup::DAY_MS));
            tx.execute(
                "INSERT INTO rollups_pending (level, bucket_ms) VALUES ($1, $2), ($3, $4), ($5, $4) \
                 ON CONFLICT (level, bucket_ms) DO UPDATE SET next_site_key = 0",
                &[&PENDING_HOUR, &hour, &PENDING_DAY, &day, &PENDING_SITE_DAY],
            )
            .map_err(|e| error("pending rollups", e))?;
        }
        // Valid or not, a run changes what its day (and the day before) shows as monitored.
        let (day, day_before) = super::cluster_days::marked_days(started);
        tx.execute(super::cluster_days::MARK, &[&super::PENDING_CLUSTER_DAY, &day, &day_before])
            .map_err(|e| error("pending cluster days", e))?;
        tx.commit().map_err(|e| error("run (commit)", e))?;
        Ok(run_id)
    }
}

/// The id of the stored roster equal to `bytes`, stored now if there is none.
fn find_or_add_roster(tx: &mut Transaction<'_>, bytes: &[u8], count: usize) -> Result<i64, postgres::Error> {
    let hash = columns::roster_hash(bytes);
    let count = count as i64;
    if let Some(row) = tx.query_opt(
        "SELECT id FROM rosters WHERE hash = $1 AND count = $2 AND roster = $3 LIMIT 1",
        &[&hash, &count, &bytes],
    )? {
        return row.try_get(0);
    }
    tx.query_one(
        "INSERT INTO rosters (hash, count, roster) VALUES ($1, $2, $3) RETURNING id",
        &[&hash, &count, &bytes],
    )?
    .try_get(0)
}

#[cfg(test)]
pub(super) mod tests {
    pub(in crate::store::postgres) fn encode(keys: &[i64]) -> Vec<u8> {
        super::encode_keys(keys)
    }

    pub(in crate::store::postgres) fn decode(bytes: &[u8], count: usize) -> Option<Vec<i64>> {
        super::decode_keys(bytes, count)
    }
}
