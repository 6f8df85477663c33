//! Rollup and prune: cluster hours and days merged from per-run histograms, site days built from
//! results in budgeted chunks, and data past its retention removed, never before its rollup:
//! whole month partitions where all of a month is due, run by run otherwise. Several probers
//! share the database, so housekeeping takes an advisory lock for each of its transactions.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;
use postgres::{GenericClient, Transaction};

use super::blocks::{RosterCache, for_each_block};
use super::{
    DataError, LOCK_HOUSEKEEPING, PENDING_DAY, PENDING_HOUR, PENDING_SITE_DAY, PostgresStore, code, schema, write_error,
};
use crate::fleet::Retention;
use crate::probe::Phase;
use crate::store::{PruneStats, RollupStats, RunId, StoreError, StoreResult, histogram, rollup};

/// Sites per transaction when building site days.
const SITE_CHUNK: usize = 500;

/// A transaction holding the housekeeping lock: one rollup or prune step at a time.
pub(super) fn housekeeping(client: &mut postgres::Client) -> Result<Transaction<'_>, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_HOUSEKEEPING])?;
    Ok(tx)
}

pub(super) fn rollup(store: &mut PostgresStore, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats> {
    let mut stats = RollupStats::default();
    let location = store.location.clone();
    let error = |e| write_error(&location, "latency rollups", e);
    let data_error = |e: DataError| match e {
        DataError::Sql(e) => error(e),
        DataError::Data(message) => StoreError::Corrupt { path: location.clone(), message },
        DataError::Store(e) => e,
    };
    let client = store.client.get_mut();
    {
        let mut tx = housekeeping(client).map_err(error)?;
        let hours = pending_due(&mut tx, PENDING_HOUR, rollup::HOUR_MS, now_ms).map_err(error)?;
        for (hour, _) in &hours {
            roll_up_hour(&mut tx, *hour).map_err(data_error)?;
        }
        stats.hours = hours.len();
        // A day is rolled up from its hours, once none of them is pending.
        for (day, _) in pending_due(&mut tx, PENDING_DAY, rollup::DAY_MS, now_ms).map_err(error)? {
            let hours_pending: i64 = tx
                .query_one(
                    "SELECT count(*) FROM rollups_pending WHERE level = $1 AND bucket_ms >= $2 AND bucket_ms < $3",
                    &[&PENDING_HOUR, &day, &(day + rollup::DAY_MS)],
                )
                .map_err(error)?
                .get(0);
            if hours_pending == 0 {
                roll_up_day(&mut tx, day).map_err(data_error)?;
                stats.days += 1;
            }
        }
        tx.commit().map_err(error)?;
    }
    // Site days read a whole day of results, so they go in chunks of sites, each chunk in its
    // own transaction, and stop when the budget is spent.
    let mut budget = site_budget.unwrap_or(usize::MAX);
    let due = pending_due(client, PENDING_SITE_DAY, rollup::DAY_MS, now_ms).map_err(error)?;
    for (i, (day, next_site_key)) in due.iter().enumerate() {
        let mut next = *next_site_key;
        loop {
            if budget == 0 {
                stats.site_days_unfinished = due.len() - i;
                return Ok(stats);
            }
            let chunk = budget.min(SITE_CHUNK);
            let mut tx = housekeeping(client).map_err(error)?;
            // Another prober may have finished (or moved on with) this day meanwhile.
            let Some(row) = tx
                .query_opt(
                    "SELECT next_site_key FROM rollups_pending WHERE level = $1 AND bucket_ms = $2",
                    &[&PENDING_SITE_DAY, day],
                )
                .map_err(error)?
            else {
                break;
            };
            next = next.max(row.get::<_, i64>(0));
            let (done, more) = roll_up_site_days(&mut tx, *day, next, chunk).map_err(data_error)?;
            stats.site_days += done;
            budget -= done;
            match more {
                Some(next_key) => {
                    tx.execute(
                        "UPDATE rollups_pending SET next_site_key = $3 WHERE level = $1 AND bucket_ms = $2",
                        &[&PENDING_SITE_DAY, day, &next_key],
                    )
                    .map_err(error)?;
                    next = next_key;
                    tx.commit().map_err(error)?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM rollups_pending WHERE level = $1 AND bucket_ms = $2",
                        &[&PENDING_SITE_DAY, day],
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
    store: &mut PostgresStore,
    now_ms: i64,
    retention: &Retention,
    run_budget: Option<usize>,
) -> StoreResult<PruneStats> {
    let location = store.location.clone();
    let error = |e| write_error(&location, "pruned data", e);
    let cutoff = |kept: Duration| now_ms.saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX));
    let raw_cutoff = cutoff(retention.raw);
    let mut stats = PruneStats::default();
    let mut tx = housekeeping(store.client.get_mut()).map_err(error)?;
    // Whole months first: a partition all of whose month is past the raw retention, with no
    // rollup pending in it, is dropped at once (whatever the run budget: dropping is cheap).
    for (suffix, start, end) in schema::partitions(&mut tx).map_err(error)? {
        if end > raw_cutoff {
            break;
        }
        let pending: i64 = tx
            // A pending cluster day on the next month's first day still reads this month's last.
            .query_one(
                "SELECT count(*) FROM rollups_pending WHERE (bucket_ms >= $1 AND bucket_ms < $2) \
                 OR (level = 4 AND bucket_ms = $2)",
                &[&start, &end],
            )
            .map_err(error)?
            .get(0);
        if pending > 0 {
            continue;
        }
        let runs: i64 = tx.query_one(&format!("SELECT count(*) FROM runs_{suffix}"), &[]).map_err(error)?.get(0);
        for table in schema::PARTITIONED {
            tx.batch_execute(&format!("DROP TABLE {table}_{suffix}")).map_err(error)?;
        }
        stats.runs += usize::try_from(runs).unwrap_or(0);
    }
    // Then run by run. Runs whose hour or day still waits for its rollup stay until it is done.
    let limit = run_budget.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let runs: Vec<(RunId, i64)> = tx
        .query(
            "SELECT id, started_at_ms FROM runs u WHERE started_at_ms < $1 AND NOT EXISTS (\
             SELECT 1 FROM rollups_pending p WHERE \
             (p.level = 1 AND p.bucket_ms = u.started_at_ms / 3600000 * 3600000) OR \
             (p.level IN (2, 3, 4) AND p.bucket_ms = u.started_at_ms / 86400000 * 86400000) OR \
             (p.level = 4 AND p.bucket_ms = u.started_at_ms / 86400000 * 86400000 + 86400000)) \
             ORDER BY started_at_ms LIMIT $2",
            &[&raw_cutoff, &limit],
        )
        .map_err(error)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    if !runs.is_empty() {
        let ids: Vec<RunId> = runs.iter().map(|r| r.0).collect();
        let last = runs.iter().map(|r| r.1).max().unwrap_or(i64::MIN);
        for table in schema::PARTITIONED {
            let column = if table == "runs" { "id" } else { "run_id" };
            tx.execute(
                &format!("DELETE FROM {table} WHERE {column} = ANY($1) AND started_at_ms <= $2"),
                &[&ids, &last],
            )
            .map_err(error)?;
        }
        stats.runs += runs.len();
    }
    if stats.runs > 0 {
        // A writer may be about to store a run with a roster no stored run uses any more; then
        // the foreign key refuses this delete, and a later prune tries again.
        tx.batch_execute("SAVEPOINT rosters").map_err(error)?;
        let removed =
            tx.batch_execute("DELETE FROM rosters r WHERE NOT EXISTS (SELECT 1 FROM runs u WHERE u.roster_id = r.id)");
        let end = if removed.is_ok() { "RELEASE SAVEPOINT rosters" } else { "ROLLBACK TO SAVEPOINT rosters" };
        tx.batch_execute(end).map_err(error)?;
    }
    // A certificate date superseded before the oldest run left describes no stored result.
    tx.execute(
        "DELETE FROM site_certs c WHERE from_run < (SELECT min(id) FROM runs) AND EXISTS (\
         SELECT 1 FROM site_certs n WHERE n.site_key = c.site_key AND n.from_run > c.from_run \
         AND n.from_run <= (SELECT min(id) FROM runs))",
        &[],
    )
    .map_err(error)?;
    // Per-run histograms go sooner, once their hour is rolled up: sub-hour detail of older
    // runs is computed from their results when asked for.
    let histograms = tx
        .execute(
            "DELETE FROM histograms h WHERE started_at_ms < $1 AND NOT EXISTS (\
             SELECT 1 FROM rollups_pending p WHERE p.level = 1 AND p.bucket_ms = h.started_at_ms / 3600000 * 3600000)",
            &[&cutoff(retention.run_histograms)],
        )
        .map_err(error)?;
    stats.run_histograms = usize::try_from(histograms).unwrap_or(0);
    let left: i64 =
        tx.query_one("SELECT count(*) FROM runs WHERE started_at_ms < $1", &[&raw_cutoff]).map_err(error)?.get(0);
    stats.runs_left = usize::try_from(left).unwrap_or(0);
    // A bucket goes once all of it is older than its retention.
    let hour_cutoff = cutoff(retention.hourly) - rollup::HOUR_MS;
    let day_cutoff = cutoff(retention.daily) - rollup::DAY_MS;
    let count = |n: u64| usize::try_from(n).unwrap_or(0);
    stats.hour_histograms = count(
        tx.execute("DELETE FROM latency_rollups WHERE resolution = 1 AND bucket_ms <= $1", &[&hour_cutoff])
            .map_err(error)?,
    );
    stats.day_histograms = count(
        tx.execute("DELETE FROM latency_rollups WHERE resolution = 2 AND bucket_ms <= $1", &[&day_cutoff])
            .map_err(error)?,
    );
    stats.site_day_histograms =
        count(tx.execute("DELETE FROM site_latency_days WHERE day_ms <= $1", &[&day_cutoff]).map_err(error)?);
    tx.commit().map_err(error)?;
    Ok(stats)
}

/// Pending buckets of `level` that have ended by `now_ms`, oldest first, with the site key a
/// half-built site pass goes on from.
fn pending_due(
    client: &mut impl GenericClient,
    level: i16,
    len_ms: i64,
    now_ms: i64,
) -> Result<Vec<(i64, i64)>, postgres::Error> {
    let rows = client.query(
        "SELECT bucket_ms, next_site_key FROM rollups_pending WHERE level = $1 AND bucket_ms <= $2 ORDER BY bucket_ms",
        &[&level, &(now_ms - len_ms)],
    )?;
    rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
}

fn decode_row(blob: &[u8], what: impl FnOnce() -> String) -> Result<Histogram<u64>, DataError> {
    histogram::decode(blob).map_err(|m| DataError::Data(format!("{}: {m}", what())))
}

fn histogram_key(row: &postgres::Row, first: usize) -> Result<(String, u8, u8), DataError> {
    Ok((row.try_get(first)?, code(row.try_get(first + 1)?, "check kind")?, code(row.try_get(first + 2)?, "phase")?))
}

fn insert_rollups(
    tx: &mut Transaction<'_>,
    resolution: i16,
    buckets: rollup::Buckets<(String, u8, u8)>,
) -> Result<(), postgres::Error> {
    if buckets.is_empty() {
        return Ok(());
    }
    let (mut clusters, mut checks, mut phases, mut starts, mut blobs) = (vec![], vec![], vec![], vec![], vec![]);
    for ((bucket, (cluster, check, phase)), h) in buckets {
        clusters.push(cluster);
        checks.push(i16::from(check));
        phases.push(i16::from(phase));
        starts.push(bucket);
        blobs.push(histogram::encode(&h));
    }
    tx.execute(
        "INSERT INTO latency_rollups (resolution, cluster, check_kind, phase, bucket_ms, hist) \
         SELECT $1::smallint, * FROM unnest($2::text[], $3::smallint[], $4::smallint[], $5::bigint[], $6::bytea[])",
        &[&resolution, &clusters, &checks, &phases, &starts, &blobs],
    )?;
    Ok(())
}

/// Replaces the hour histograms of the hour starting at `hour` with the merge of its runs'.
fn roll_up_hour(tx: &mut Transaction<'_>, hour: i64) -> Result<(), DataError> {
    let end = hour + rollup::HOUR_MS;
    tx.execute("DELETE FROM latency_rollups WHERE resolution = 1 AND bucket_ms = $1", &[&hour])?;
    let mut buckets = rollup::Buckets::new();
    for row in tx.query(
        "SELECT u.id, h.cluster, h.check_kind, h.phase, h.hist FROM runs u JOIN histograms h \
         ON h.run_id = u.id AND h.started_at_ms = u.started_at_ms \
         WHERE u.valid AND u.started_at_ms >= $1 AND u.started_at_ms < $2 AND h.started_at_ms >= $1 AND h.started_at_ms < $2",
        &[&hour, &end],
    )? {
        let run_id: i64 = row.try_get(0)?;
        let key = histogram_key(&row, 1)?;
        let h = decode_row(row.try_get(4)?, || format!("histogram of run {run_id}, {}", key.0))?;
        rollup::add_to_bucket(&mut buckets, rollup::HOUR_MS, hour, key, h).map_err(|e| DataError::Data(e.to_string()))?;
    }
    // Runs whose per-run histograms were already pruned (a late run reopened the hour): their
    // latencies come from their results.
    let mut clusters: Option<HashMap<i64, String>> = None;
    let mut rosters = RosterCache::default();
    for_each_block(
        tx,
        "u.valid AND u.started_at_ms >= $1 AND u.started_at_ms < $2 \
         AND NOT EXISTS (SELECT 1 FROM histograms h WHERE h.run_id = u.id AND h.started_at_ms = u.started_at_ms)",
        &[&hour, &end],
        &mut |tx, block| {
            let clusters = match &mut clusters {
                Some(clusters) => clusters,
                None => {
                    let rows = tx.query("SELECT key, cluster FROM sites", &[])?;
                    let map = rows
                        .iter()
                        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                        .collect::<Result<_, postgres::Error>>()?;
                    clusters.insert(map)
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
    tx.execute("DELETE FROM rollups_pending WHERE level = $1 AND bucket_ms = $2", &[&PENDING_HOUR, &hour])?;
    Ok(())
}

/// Replaces the day histograms of the day starting at `day` with the merge of its hours'.
fn roll_up_day(tx: &mut Transaction<'_>, day: i64) -> Result<(), DataError> {
    tx.execute("DELETE FROM latency_rollups WHERE resolution = 2 AND bucket_ms = $1", &[&day])?;
    let mut buckets = rollup::Buckets::new();
    for row in tx.query(
        "SELECT cluster, check_kind, phase, bucket_ms, hist FROM latency_rollups \
         WHERE resolution = 1 AND bucket_ms >= $1 AND bucket_ms < $2",
        &[&day, &(day + rollup::DAY_MS)],
    )? {
        let key = histogram_key(&row, 0)?;
        let hour: i64 = row.try_get(3)?;
        let h = decode_row(row.try_get(4)?, || format!("hour histogram of {} at {hour}", key.0))?;
        rollup::add_to_bucket(&mut buckets, rollup::DAY_MS, hour, key, h)
            .map_err(|e| DataError::Data(e.to_string()))?;
    }
    insert_rollups(tx, 2, buckets)?;
    tx.execute("DELETE FROM rollups_pending WHERE level = $1 AND bucket_ms = $2", &[&PENDING_DAY, &day])?;
    Ok(())
}

/// Builds the day histograms of up to `limit` sites (keys from `first_key` on) for the day
/// starting at `day`; returns how many sites were done and the key to go on from, if any.
fn roll_up_site_days(
    tx: &mut Transaction<'_>,
    day: i64,
    first_key: i64,
    limit: usize,
) -> Result<(usize, Option<i64>), DataError> {
    // One site more than asked, to know whether the day is done.
    let ask = i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1);
    let mut sites: Vec<i64> = tx
        .query("SELECT key FROM sites WHERE key >= $1 ORDER BY key LIMIT $2", &[&first_key, &ask])?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let more = if sites.len() > limit { sites.pop() } else { None };
    let (Some(&lo), Some(&hi)) = (sites.first(), sites.last()) else { return Ok((0, None)) };
    // The chunk's timings for the day, then one histogram at a time.
    let mut values: BTreeMap<(i64, u8, u8), Vec<u32>> = BTreeMap::new();
    let mut rosters = RosterCache::default();
    for_each_block(
        tx,
        "u.valid AND u.started_at_ms >= $1 AND u.started_at_ms < $2",
        &[&day, &(day + rollup::DAY_MS)],
        &mut |tx, block| {
            let roster = rosters.get(tx, block.roster_id)?;
            let first = roster.keys.partition_point(|&(key, _)| key < lo);
            let end = roster.keys.partition_point(|&(key, _)| key <= hi);
            if first == end {
                return Ok(true);
            }
            for row in block.rows_in(&roster, first..end)?.iter().filter(|row| row.outcome.is_ok()) {
                for phase in Phase::ALL {
                    if let Some(us) = row.timings.get(phase) {
                        values.entry((row.site_key, row.check.code(), phase.code())).or_default().push(us);
                    }
                }
            }
            Ok(true)
        },
    )?;
    tx.execute("DELETE FROM site_latency_days WHERE day_ms = $1 AND site_key BETWEEN $2 AND $3", &[&day, &lo, &hi])?;
    if !values.is_empty() {
        let mut columns: (Vec<i64>, Vec<i16>, Vec<i16>, Vec<Vec<u8>>) = Default::default();
        for ((site_key, check, phase), micros) in values {
            let mut h = histogram::new_latency_histogram();
            for us in micros {
                histogram::record_micros(&mut h, u64::from(us));
            }
            columns.0.push(site_key);
            columns.1.push(i16::from(check));
            columns.2.push(i16::from(phase));
            columns.3.push(histogram::encode(&h));
        }
        tx.execute(
            "INSERT INTO site_latency_days (site_key, check_kind, phase, day_ms, hist) \
             SELECT k, c, p, $1::bigint, h FROM unnest($2::bigint[], $3::smallint[], $4::smallint[], $5::bytea[]) \
             AS v (k, c, p, h)",
            &[&day, &columns.0, &columns.1, &columns.2, &columns.3],
        )?;
    }
    Ok((sites.len(), more))
}
