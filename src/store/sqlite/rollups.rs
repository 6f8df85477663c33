//! Rollup and prune: cluster hours and days merged from per-run histograms, site days built from
//! results in budgeted chunks, and data past its retention removed, never before its rollup.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::blocks::{RosterCache, for_each_block};
use super::{DataError, PENDING_DAY, PENDING_HOUR, PENDING_SITE_DAY, SqliteStore, write_error};
use crate::fleet::Retention;
use crate::probe::Phase;
use crate::store::{PruneStats, RollupStats, RunId, StoreError, StoreResult, histogram, rollup};

pub(super) fn rollup(store: &mut SqliteStore, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats> {
    let mut stats = RollupStats::default();
    let path = store.path.clone();
    let error = |e| write_error(&path, "latency rollups", e);
    let corrupt = |message: String| StoreError::Corrupt { path: path.display().to_string(), message };
    {
        let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
        let hours = pending_due(&tx, PENDING_HOUR, rollup::HOUR_MS, now_ms).map_err(error)?;
        for (hour, _) in &hours {
            roll_up_hour(&tx, *hour).map_err(|e| match e {
                DataError::Sql(e) => error(e),
                DataError::Data(m) => corrupt(m),
                DataError::Store(e) => e,
            })?;
        }
        stats.hours = hours.len();
        // A day is rolled up from its hours, once none of them is pending.
        for (day, _) in pending_due(&tx, PENDING_DAY, rollup::DAY_MS, now_ms).map_err(error)? {
            let hours_pending: i64 = tx
                .query_row(
                    "SELECT count(*) FROM rollups_pending WHERE level = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3",
                    params![PENDING_HOUR, day, day + rollup::DAY_MS],
                    |row| row.get(0),
                )
                .map_err(error)?;
            if hours_pending == 0 {
                roll_up_day(&tx, day).map_err(|e| match e {
                    DataError::Sql(e) => error(e),
                    DataError::Data(m) => corrupt(m),
                    DataError::Store(e) => e,
                })?;
                stats.days += 1;
            }
        }
        tx.commit().map_err(error)?;
    }
    // Site days read a whole day of raw results, so they go in chunks of sites, each chunk
    // in its own transaction, and stop when the budget is spent.
    let mut budget = site_budget.unwrap_or(usize::MAX);
    let due = pending_due(&store.conn, PENDING_SITE_DAY, rollup::DAY_MS, now_ms).map_err(error)?;
    for (i, (day, next_site_key)) in due.iter().enumerate() {
        let mut next = *next_site_key;
        loop {
            if budget == 0 {
                stats.site_days_unfinished = due.len() - i;
                return Ok(stats);
            }
            let chunk = budget.min(SITE_CHUNK);
            let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
            let (done, more) = roll_up_site_days(&tx, *day, next, chunk).map_err(|e| match e {
                DataError::Sql(e) => error(e),
                DataError::Data(m) => corrupt(m),
                DataError::Store(e) => e,
            })?;
            stats.site_days += done;
            budget -= done;
            match more {
                Some(next_key) => {
                    tx.execute(
                        "UPDATE rollups_pending SET next_site_key = ?3 WHERE level = ?1 AND bucket_ms = ?2",
                        params![PENDING_SITE_DAY, day, next_key],
                    )
                    .map_err(error)?;
                    next = next_key;
                    tx.commit().map_err(error)?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM rollups_pending WHERE level = ?1 AND bucket_ms = ?2",
                        params![PENDING_SITE_DAY, day],
                    )
                    .map_err(error)?;
                    tx.commit().map_err(error)?;
                    break;
                }
            }
        }
    }
    Ok(stats)
}

pub(super) fn prune(
    store: &mut SqliteStore,
    now_ms: i64,
    retention: &Retention,
    run_budget: Option<usize>,
) -> StoreResult<PruneStats> {
    let path = store.path.clone();
    let error = |e| write_error(&path, "pruned data", e);
    let cutoff = |kept: Duration| now_ms.saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX));
    let raw_cutoff = cutoff(retention.raw);
    let mut stats = PruneStats::default();
    let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
    // Runs whose hour or day still waits for its rollup stay until it is done.
    let runs: Vec<RunId> = {
        let mut select = tx
            .prepare(
                "SELECT id FROM runs u WHERE started_at_ms < ?1 AND NOT EXISTS (\
                 SELECT 1 FROM rollups_pending p WHERE \
                 (p.level = 1 AND p.bucket_ms = u.started_at_ms / 3600000 * 3600000) OR \
                 (p.level IN (2, 3, 4) AND p.bucket_ms = u.started_at_ms / 86400000 * 86400000) OR \
                 (p.level = 4 AND p.bucket_ms = u.started_at_ms / 86400000 * 86400000 + 86400000)) \
                 ORDER BY started_at_ms LIMIT ?2",
            )
            .map_err(error)?;
        let limit = run_budget.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        select.query_map(params![raw_cutoff, limit], |row| row.get(0)).map_err(error)?.collect::<Result<_, _>>()
    }
    .map_err(error)?;
    for run_id in &runs {
        for table in ["run_results", "result_details", "histograms"] {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE run_id = ?1"))
                .and_then(|mut delete| delete.execute([run_id]))
                .map_err(error)?;
        }
        tx.execute("DELETE FROM runs WHERE id = ?1", [run_id]).map_err(error)?;
    }
    if !runs.is_empty() {
        tx.execute(
            "DELETE FROM rosters WHERE NOT EXISTS (SELECT 1 FROM run_results b WHERE b.roster_id = rosters.id)",
            [],
        )
        .map_err(error)?;
    }
    // A certificate date superseded before the oldest run left describes no stored result.
    tx.execute(
        "DELETE FROM site_certs WHERE from_run < (SELECT min(id) FROM runs) AND EXISTS (\
         SELECT 1 FROM site_certs n WHERE n.site_key = site_certs.site_key AND n.from_run > site_certs.from_run \
         AND n.from_run <= (SELECT min(id) FROM runs))",
        [],
    )
    .map_err(error)?;
    stats.runs = runs.len();
    // Per-run histograms go sooner, once their hour is rolled up: sub-hour detail of older
    // runs is computed from their results when asked for.
    stats.run_histograms = tx
        .execute(
            "DELETE FROM histograms WHERE run_id IN (SELECT id FROM runs u WHERE started_at_ms < ?1 AND NOT EXISTS (\
             SELECT 1 FROM rollups_pending p WHERE p.level = 1 AND p.bucket_ms = u.started_at_ms / 3600000 * 3600000))",
            [cutoff(retention.run_histograms)],
        )
        .map_err(error)?;
    stats.runs_left = tx
        .query_row("SELECT count(*) FROM runs WHERE started_at_ms < ?1", [raw_cutoff], |row| row.get(0))
        .map_err(error)?;
    // A bucket goes once all of it is older than its retention.
    let hour_cutoff = cutoff(retention.hourly) - rollup::HOUR_MS;
    let day_cutoff = cutoff(retention.daily) - rollup::DAY_MS;
    stats.hour_histograms = tx
        .execute("DELETE FROM latency_rollups WHERE resolution = 1 AND bucket_ms <= ?1", [hour_cutoff])
        .map_err(error)?;
    stats.day_histograms = tx
        .execute("DELETE FROM latency_rollups WHERE resolution = 2 AND bucket_ms <= ?1", [day_cutoff])
        .map_err(error)?;
    stats.site_day_histograms =
        tx.execute("DELETE FROM site_latency_days WHERE day_ms <= ?1", [day_cutoff]).map_err(error)?;
    tx.commit().map_err(error)?;
    Ok(stats)
}

/// Sites per transaction when building site days.
const SITE_CHUNK: usize = 500;

/// Pending buckets of `level` that have ended by `now_ms`, oldest first, with the site key a
/// half-built site pass goes on from.
fn pending_due(conn: &Connection, level: i64, len_ms: i64, now_ms: i64) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut select = conn.prepare(
        "SELECT bucket_ms, next_site_key FROM rollups_pending WHERE level = ?1 AND bucket_ms <= ?2 ORDER BY bucket_ms",
    )?;
    let rows = select.query_map(params![level, now_ms - len_ms], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

fn decode_row(blob: &[u8], what: impl FnOnce() -> String) -> Result<Histogram<u64>, DataError> {
    histogram::decode(blob).map_err(|m| DataError::Data(format!("{}: {m}", what())))
}

fn insert_rollups(
    tx: &Transaction<'_>,
    resolution: i64,
    buckets: rollup::Buckets<(String, u8, u8)>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO latency_rollups (resolution, cluster, check_kind, phase, bucket_ms, hist) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for ((bucket, (cluster, check, phase)), h) in buckets {
        insert.execute(params![resolution, cluster, check, phase, bucket, histogram::encode(&h)])?;
    }
    Ok(())
}

/// Replaces the hour histograms of the hour starting at `hour` with the merge of its runs'.
fn roll_up_hour(tx: &Transaction<'_>, hour: i64) -> Result<(), DataError> {
    tx.execute("DELETE FROM latency_rollups WHERE resolution = 1 AND bucket_ms = ?1", [hour])?;
    let mut buckets = rollup::Buckets::new();
    {
        let mut select = tx.prepare_cached(
            "SELECT u.id, h.cluster, h.check_kind, h.phase, h.hist FROM runs u JOIN histograms h ON h.run_id = u.id \
             WHERE u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2",
        )?;
        let mut rows = select.query(params![hour, hour + rollup::HOUR_MS])?;
        while let Some(row) = rows.next()? {
            let run_id: i64 = row.get(0)?;
            let key: (String, u8, u8) = (row.get(1)?, row.get(2)?, row.get(3)?);
            let blob: Vec<u8> = row.get(4)?;
            let h = decode_row(&blob, || format!("histogram of run {run_id}, {}", key.0))?;
            rollup::add_to_bucket(&mut buckets, rollup::HOUR_MS, hour, key, h)
                .map_err(|e| DataError::Data(e.to_string()))?;
        }
    }
    // Runs whose per-run histograms were already pruned (a late run reopened the hour): their
    // latencies come from their results.
    let mut clusters: Option<HashMap<i64, String>> = None;
    let mut rosters = RosterCache::default();
    for_each_block(
        tx,
        "u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2 \
         AND NOT EXISTS (SELECT 1 FROM histograms h WHERE h.run_id = u.id)",
        params![hour, hour + rollup::HOUR_MS],
        &mut |block| {
            let clusters = match &mut clusters {
                Some(clusters) => clusters,
                None => {
                    let mut select = tx.prepare_cached("SELECT key, cluster FROM sites")?;
                    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                    clusters.insert(rows.collect::<Result<_, _>>()?)
                }
            };
            let mut run: BTreeMap<(String, u8, u8), Histogram<u64>> = BTreeMap::new();
            let roster = rosters.get(tx, block.roster_id)?;
            for row in block.rows(&roster)?.iter().filter(|row| row.outcome.is_ok()) {
                let Some(cluster) = clusters.get(&row.site_key) else { continue };
                for phase in Phase::ALL {
                    if let Some(us) = row.timings.get(phase) {
                        let h = run
                            .entry((cluster.clone(), row.check.code(), phase.code()))
                            .or_insert_with(histogram::new_latency_histogram);
                        histogram::record_micros(h, u64::from(us));
                    }
                }
            }
            for (key, h) in run {
                rollup::add_to_bucket(&mut buckets, rollup::HOUR_MS, hour, key, h)
                    .map_err(|e| DataError::Data(e.to_string()))?;
            }
            Ok(true)
        },
    )?;
    insert_rollups(tx, 1, buckets)?;
    tx.execute("DELETE FROM rollups_pending WHERE level = ?1 AND bucket_ms = ?2", params![PENDING_HOUR, hour])?;
    Ok(())
}

/// Replaces the day histograms of the day starting at `day` with the merge of its hours'.
fn roll_up_day(tx: &Transaction<'_>, day: i64) -> Result<(), DataError> {
    tx.execute("DELETE FROM latency_rollups WHERE resolution = 2 AND bucket_ms = ?1", [day])?;
    let mut buckets = rollup::Buckets::new();
    {
        let mut select = tx.prepare_cached(
            "SELECT cluster, check_kind, phase, bucket_ms, hist FROM latency_rollups \
             WHERE resolution = 1 AND bucket_ms >= ?1 AND bucket_ms < ?2",
        )?;
        let mut rows = select.query(params![day, day + rollup::DAY_MS])?;
        while let Some(row) = rows.next()? {
            let key: (String, u8, u8) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let hour: i64 = row.get(3)?;
            let blob: Vec<u8> = row.get(4)?;
            let h = decode_row(&blob, || format!("hour histogram of {} at {hour}", key.0))?;
            rollup::add_to_bucket(&mut buckets, rollup::DAY_MS, hour, key, h)
                .map_err(|e| DataError::Data(e.to_string()))?;
        }
    }
    insert_rollups(tx, 2, buckets)?;
    tx.execute("DELETE FROM rollups_pending WHERE level = ?1 AND bucket_ms = ?2", params![PENDING_DAY, day])?;
    Ok(())
}

/// Builds the day histograms of up to `limit` sites (keys from `first_key` on) for the day
/// starting at `day`; returns how many sites were done and the key to go on from, if any.
fn roll_up_site_days(
    tx: &Transaction<'_>,
    day: i64,
    first_key: i64,
    limit: usize,
) -> Result<(usize, Option<i64>), DataError> {
    // One site more than asked, to know whether the day is done.
    let mut sites: Vec<i64> = {
        let mut select = tx.prepare_cached("SELECT key FROM sites WHERE key >= ?1 ORDER BY key LIMIT ?2")?;
        select
            .query_map(params![first_key, i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1)], |row| {
                row.get(0)
            })?
            .collect::<Result<_, _>>()?
    };
    let more = if sites.len() > limit { sites.pop() } else { None };
    let (Some(&lo), Some(&hi)) = (sites.first(), sites.last()) else { return Ok((0, None)) };
    // The chunk's timings for the day, then one histogram at a time: a day of one-minute runs
    // is 1,440 values per site and phase, far smaller than as many histograms held at once.
    let mut values: BTreeMap<(i64, u8, u8), Vec<u32>> = BTreeMap::new();
    let mut rosters = RosterCache::default();
    for_each_block(
        tx,
        "u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2",
        params![day, day + rollup::DAY_MS],
        &mut |block| {
            let roster = rosters.get(tx, block.roster_id)?;
            let first = roster.keys.partition_point(|&(key, _)| key < lo);
            let end = roster.keys.partition_point(|&(key, _)| key <= hi);
            if first == end {
                return Ok(true);
            }
            for row in block.rows_in(&roster, first..end)?.iter() {
                if !row.outcome.is_ok() {
                    continue;
                }
                for phase in Phase::ALL {
                    if let Some(us) = row.timings.get(phase) {
                        values.entry((row.site_key, row.check.code(), phase.code())).or_default().push(us);
                    }
                }
            }
            Ok(true)
        },
    )?;
    tx.prepare_cached("DELETE FROM site_latency_days WHERE day_ms = ?1 AND site_key BETWEEN ?2 AND ?3")?
        .execute(params![day, lo, hi])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO site_latency_days (site_key, check_kind, phase, day_ms, hist) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ((site_key, check, phase), micros) in values {
        let mut h = histogram::new_latency_histogram();
        for us in micros {
            histogram::record_micros(&mut h, u64::from(us));
        }
        insert.execute(params![site_key, check, phase, day, histogram::encode(&h)])?;
    }
    Ok((sites.len(), more))
}
