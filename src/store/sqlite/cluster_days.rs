//! Cluster days: each cluster's availability per UTC day (`cluster_days`), the rollup the status
//! page's bars read once the raw runs of a day are pruned. The figures come from the analysis
//! (the store only keeps them); `rollups_pending` level 4 marks the days to compute again.

use rusqlite::params;

use super::{PENDING_CLUSTER_DAY, SqliteStore, write_error};
use crate::store::{ClusterDay, StoreResult, rollup};

/// Schema version 7. Every day holding a run is computed by the next probe run or prune.
pub(super) const SCHEMA: &str = "
-- Per cluster and UTC day: monitored site-milliseconds outside maintenance, those in outages
-- outside maintenance, and the incidents overlapping the day.
CREATE TABLE cluster_days (
    cluster     TEXT NOT NULL,
    day_ms      INTEGER NOT NULL,
    eligible_ms INTEGER NOT NULL,
    down_ms     INTEGER NOT NULL,
    incidents   INTEGER NOT NULL,
    PRIMARY KEY (day_ms, cluster)
) WITHOUT ROWID;
INSERT OR IGNORE INTO rollups_pending (level, bucket_ms)
SELECT DISTINCT 4, started_at_ms / 86400000 * 86400000 FROM runs;
";

/// The statement a run's writer marks its day and the day before with; on a day marked already
/// it bumps the mark (kept in `next_site_key`), so a computation under way knows it is stale.
pub(super) const MARK: &str = "INSERT INTO rollups_pending (level, bucket_ms) VALUES (?1, ?2), (?1, ?3) \
     ON CONFLICT (level, bucket_ms) DO UPDATE SET next_site_key = next_site_key + 1";

/// The days (start) a run starting at `started_at_ms` marks.
pub(super) fn marked_days(started_at_ms: i64) -> (i64, i64) {
    let day = rollup::bucket_start(started_at_ms, rollup::DAY_MS);
    (day, rollup::bucket_start(started_at_ms - rollup::DAY_SETTLE_MS, rollup::DAY_MS))
}

pub(super) fn pending(store: &SqliteStore, ended_by_ms: i64) -> StoreResult<Vec<(i64, i64)>> {
    let error = |e| store.query_error("pending cluster days", e);
    let mut select = store
        .conn
        .prepare_cached(
            "SELECT bucket_ms, next_site_key FROM rollups_pending WHERE level = ?1 AND bucket_ms <= ?2 \
             ORDER BY bucket_ms",
        )
        .map_err(error)?;
    let rows = select
        .query_map(params![PENDING_CLUSTER_DAY, ended_by_ms - rollup::DAY_MS], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(error)?;
    rows.collect::<Result<_, _>>().map_err(error)
}

pub(super) fn put(store: &mut SqliteStore, days: &[(i64, i64)], rows: &[ClusterDay]) -> StoreResult<()> {
    let path = store.path.clone();
    let error = |e| write_error(&path, "cluster days", e);
    let tx = store.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(error)?;
    for &(day, mark) in days {
        tx.execute("DELETE FROM cluster_days WHERE day_ms = ?1", [day]).map_err(error)?;
        tx.execute(
            "DELETE FROM rollups_pending WHERE level = ?1 AND bucket_ms = ?2 AND next_site_key = ?3",
            params![PENDING_CLUSTER_DAY, day, mark],
        )
        .map_err(error)?;
    }
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO cluster_days (cluster, day_ms, eligible_ms, down_ms, incidents) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(error)?;
        for r in rows.iter().filter(|r| days.iter().any(|&(day, _)| day == r.day_ms)) {
            insert.execute(params![r.cluster, r.day_ms, r.eligible_ms, r.down_ms, r.incidents]).map_err(error)?;
        }
    }
    tx.commit().map_err(error)
}

pub(super) fn list(store: &SqliteStore, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ClusterDay>> {
    let error = |e| store.query_error("cluster days", e);
    let mut select = store
        .conn
        .prepare_cached(
            "SELECT cluster, day_ms, eligible_ms, down_ms, incidents FROM cluster_days d \
             WHERE day_ms >= ?1 AND day_ms < ?2 AND NOT EXISTS (\
             SELECT 1 FROM rollups_pending p WHERE p.level = ?3 AND p.bucket_ms = d.day_ms) \
             ORDER BY day_ms, cluster",
        )
        .map_err(error)?;
    let rows = select
        .query_map(params![from_ms, to_ms, PENDING_CLUSTER_DAY], |row| {
            Ok(ClusterDay {
                cluster: row.get(0)?,
                day_ms: row.get(1)?,
                eligible_ms: row.get(2)?,
                down_ms: row.get(3)?,
                incidents: row.get(4)?,
            })
        })
        .map_err(error)?;
    rows.collect::<Result<_, _>>().map_err(error)
}

pub(super) fn earliest_run(store: &SqliteStore) -> StoreResult<Option<i64>> {
    store
        .conn
        .query_row("SELECT min(started_at_ms) FROM runs", [], |row| row.get(0))
        .map_err(|e| store.query_error("runs", e))
}
