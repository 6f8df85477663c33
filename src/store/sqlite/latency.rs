//! Latency queries: each output bucket merged from the coarsest stored histograms that cover it
//! exactly (day and hour rollups, per-run histograms, or the results themselves where those
//! were pruned or a site's latencies are asked for).

use hdrhistogram::Histogram;
use rusqlite::{OptionalExtension, params};

use super::blocks::{RosterCache, for_each_block};
use super::{PENDING_DAY, PENDING_HOUR, PENDING_SITE_DAY, SqliteStore};
use crate::store::{LatencyQuery, LatencyScope, Resolution, StoreResult, TimedHistogram, histogram, rollup};

pub(super) fn latency_histograms(
    store: &SqliteStore,
    query: &LatencyQuery,
    each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
) -> StoreResult<()> {
    let pending = store.pending()?;
    let site_key = match &query.scope {
        LatencyScope::Cluster(_) => None,
        LatencyScope::Site(id) => {
            let key = store
                .conn
                .query_row("SELECT key FROM sites WHERE site_id = ?1", [id], |row| row.get::<_, i64>(0))
                .optional()
                .map_err(|e| store.query_error("sites", e))?;
            match key {
                Some(key) => Some(key),
                // A site never probed has no latencies.
                None => return Ok(()),
            }
        }
    };
    rollup::merged_buckets(
        (query.from_ms, query.to_ms, query.bucket_ms),
        &pending,
        (site_key.is_some(), !query.vantages.is_empty()),
        &mut |piece, read| store.read_piece(query, site_key, piece, read),
        &|message| store.corrupt(message),
        each,
    )
}

/// The condition on a run's vantage, with the list of [`vantage_list`] as parameter `?n`: any
/// vantage when the list is NULL.
fn of_vantages(n: usize) -> String {
    format!("(?{n} IS NULL OR u.vantage IN (SELECT value FROM json_each(?{n})))")
}

/// The query's vantages as a JSON array, or NULL for every vantage.
fn vantage_list(query: &LatencyQuery) -> Option<String> {
    (!query.vantages.is_empty()).then(|| serde_json::to_string(&query.vantages).unwrap_or_default())
}

impl SqliteStore {
    /// The latencies of a cluster's sites in the valid runs of [a, b) whose per-run histograms
    /// were pruned, computed from their results.
    fn cluster_latencies_from_results(
        &self,
        cluster: &str,
        query: &LatencyQuery,
        a: i64,
        b: i64,
        each: &mut dyn FnMut(Histogram<u64>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let members: std::collections::HashSet<i64> =
            self.sites()?.into_iter().filter(|(_, s)| s.cluster == cluster).map(|(key, _)| key).collect();
        let mut h = histogram::new_latency_histogram();
        let mut rosters = RosterCache::default();
        for_each_block(
            &self.conn,
            &format!(
                "u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2 \
                 AND NOT EXISTS (SELECT 1 FROM histograms h WHERE h.run_id = u.id) AND {}",
                of_vantages(3)
            ),
            params![a, b, vantage_list(query)],
            &mut |block| {
                let roster = rosters.get(&self.conn, block.roster_id)?;
                for row in block.rows(&roster)? {
                    if row.check == query.check
                        && row.outcome.is_ok()
                        && members.contains(&row.site_key)
                        && let Some(us) = row.timings.get(query.phase)
                    {
                        histogram::record_micros(&mut h, u64::from(us));
                    }
                }
                Ok(true)
            },
        )
        .map_err(|e| self.data_error("latencies", e))?;
        if h.is_empty() { Ok(()) } else { each(h) }
    }

    /// Buckets whose rollups are not up to date (few: the current hour and day, and backfills).
    pub(super) fn pending(&self) -> StoreResult<rollup::Pending> {
        let error = |e| self.query_error("pending rollups", e);
        let mut select = self.conn.prepare("SELECT level, bucket_ms FROM rollups_pending").map_err(error)?;
        let mut rows = select.query([]).map_err(error)?;
        let mut pending = rollup::Pending::default();
        while let Some(row) = rows.next().map_err(error)? {
            let (level, bucket): (i64, i64) = (row.get(0).map_err(error)?, row.get(1).map_err(error)?);
            let set = match level {
                PENDING_HOUR => &mut pending.hours,
                PENDING_DAY => &mut pending.days,
                PENDING_SITE_DAY => &mut pending.site_days,
                _ => continue,
            };
            set.insert(bucket);
        }
        Ok(pending)
    }

    /// Reads one piece of a latency query and hands over its histograms one by one.
    fn read_piece(
        &self,
        query: &LatencyQuery,
        site_key: Option<i64>,
        piece: rollup::Piece,
        each: &mut dyn FnMut(Histogram<u64>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let error = |e| self.query_error("latency histograms", e);
        let (check, phase) = (query.check.code(), query.phase.code());
        let (a, b) = (piece.start_ms, piece.end_ms);
        let decode = |blob: &[u8]| {
            histogram::decode(blob).map_err(|m| {
                self.corrupt(format!(
                    "latency histogram of {:?} {} {}: {m}",
                    query.scope,
                    query.check,
                    query.phase.as_str()
                ))
            })
        };
        let blobs =
            |sql: &str, args: &[&dyn rusqlite::ToSql], each: &mut dyn FnMut(Histogram<u64>) -> StoreResult<()>| {
                let mut select = self.conn.prepare_cached(sql).map_err(error)?;
                let mut rows = select.query(args).map_err(error)?;
                while let Some(row) = rows.next().map_err(error)? {
                    let blob: Vec<u8> = row.get(0).map_err(error)?;
                    each(decode(&blob)?)?;
                }
                Ok(())
            };
        match (&query.scope, site_key, piece.resolution) {
            (LatencyScope::Cluster(cluster), _, Resolution::Run) => {
                blobs(
                    &format!(
                        "SELECT h.hist FROM runs u JOIN histograms h ON h.run_id = u.id AND h.cluster = ?1 \
                         AND h.check_kind = ?2 AND h.phase = ?3 WHERE u.valid = 1 AND u.started_at_ms >= ?4 \
                         AND u.started_at_ms < ?5 AND {}",
                        of_vantages(6)
                    ),
                    params![cluster, check, phase, a, b, vantage_list(query)],
                    each,
                )?;
                self.cluster_latencies_from_results(cluster, query, a, b, each)
            }
            (LatencyScope::Cluster(cluster), _, resolution) => blobs(
                "SELECT hist FROM latency_rollups WHERE resolution = ?1 AND cluster = ?2 AND check_kind = ?3 \
                 AND phase = ?4 AND bucket_ms >= ?5 AND bucket_ms < ?6",
                params![if resolution == Resolution::Hour { 1 } else { 2 }, cluster, check, phase, a, b],
                each,
            ),
            (LatencyScope::Site(_), Some(key), Resolution::Day) => blobs(
                "SELECT hist FROM site_latency_days WHERE site_key = ?1 AND check_kind = ?2 AND phase = ?3 \
                 AND day_ms >= ?4 AND day_ms < ?5",
                params![key, check, phase, a, b],
                each,
            ),
            (LatencyScope::Site(_), Some(key), _) => {
                let mut h = histogram::new_latency_histogram();
                let mut rosters = RosterCache::default();
                for_each_block(
                    &self.conn,
                    &format!("u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2 AND {}", of_vantages(3)),
                    params![a, b, vantage_list(query)],
                    &mut |block| {
                        let roster = rosters.get(&self.conn, block.roster_id)?;
                        if let Ok(i) = roster.keys.binary_search(&(key, query.check)) {
                            let row = &block.rows_in(&roster, i..i + 1)?[0];
                            if let Some(us) = row.timings.get(query.phase).filter(|_| row.outcome.is_ok()) {
                                histogram::record_micros(&mut h, u64::from(us));
                            }
                        }
                        Ok(true)
                    },
                )
                .map_err(|e| self.data_error("latencies", e))?;
                each(h)
            }
            (LatencyScope::Site(_), None, _) => Ok(()),
        }
    }
}
