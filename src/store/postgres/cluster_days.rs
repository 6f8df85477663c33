//! Cluster days: each cluster's availability per UTC day (`cluster_days`), as in the SQLite
//! store. The figures come from the analysis; `rollups_pending` level 4 marks the days to
//! compute again, its `next_site_key` holding the mark a later run bumps.

use super::{PENDING_CLUSTER_DAY, PostgresStore, write_error};
use crate::store::{ClusterDay, StoreResult, rollup};

/// Schema version 4. Every day holding a run is computed by the next probe run or prune.
pub(super) const SCHEMA: &str = "
-- Per cluster and UTC day: monitored site-milliseconds outside maintenance, those in outages
-- outside maintenance, and the incidents overlapping the day.
CREATE TABLE cluster_days (
    cluster     text NOT NULL,
    day_ms      bigint NOT NULL,
    eligible_ms bigint NOT NULL,
    down_ms     bigint NOT NULL,
    incidents   bigint NOT NULL,
    PRIMARY KEY (day_ms, cluster)
);
INSERT INTO rollups_pending (level, bucket_ms)
SELECT DISTINCT 4, started_at_ms / 86400000 * 86400000 FROM runs ON CONFLICT DO NOTHING;
";

/// The statement a run's writer marks its day and the day before with; on a day marked already
/// it bumps the mark, so a computation under way knows it is stale.
pub(super) const MARK: &str = "INSERT INTO rollups_pending (level, bucket_ms) VALUES ($1, $2), ($1, $3) \
     ON CONFLICT (level, bucket_ms) DO UPDATE SET next_site_key = rollups_pending.next_site_key + 1";

/// The days (start) a run starting at `started_at_ms` marks.
pub(super) fn marked_days(started_at_ms: i64) -> (i64, i64) {
    let day = rollup::bucket_start(started_at_ms, rollup::DAY_MS);
    (day, rollup::bucket_start(started_at_ms - rollup::DAY_SETTLE_MS, rollup::DAY_MS))
}

pub(super) fn pending(store: &PostgresStore, ended_by_ms: i64) -> StoreResult<Vec<(i64, i64)>> {
    let rows = store
        .with(|c| {
            c.query(
                "SELECT bucket_ms, next_site_key FROM rollups_pending WHERE level = $1 AND bucket_ms <= $2 \
                 ORDER BY bucket_ms",
                &[&PENDING_CLUSTER_DAY, &(ended_by_ms - rollup::DAY_MS)],
            )
        })
        .map_err(|e| store.query_error("pending cluster days", e))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

pub(super) fn put(store: &mut PostgresStore, days: &[(i64, i64)], rows: &[ClusterDay]) -> StoreResult<()> {
    let location = store.location.clone();
    let error = |e| write_error(&location, "cluster days", e);
    // Two probers storing the same day one after the other, not interleaved.
    let mut tx = super::rollups::housekeeping(store.client.get_mut()).map_err(error)?;
    for &(day, mark) in days {
        tx.execute("DELETE FROM cluster_days WHERE day_ms = $1", &[&day]).map_err(error)?;
        tx.execute(
            "DELETE FROM rollups_pending WHERE level = $1 AND bucket_ms = $2 AND next_site_key = $3",
            &[&PENDING_CLUSTER_DAY, &day, &mark],
        )
        .map_err(error)?;
    }
    let insert = tx
        .prepare(
            "INSERT INTO cluster_days (cluster, day_ms, eligible_ms, down_ms, incidents) VALUES ($1, $2, $3, $4, $5)",
        )
        .map_err(error)?;
    for r in rows.iter().filter(|r| days.iter().any(|&(day, _)| day == r.day_ms)) {
        tx.execute(&insert, &[&r.cluster, &r.day_ms, &r.eligible_ms, &r.down_ms, &r.incidents]).map_err(error)?;
    }
    tx.commit().map_err(error)
}

pub(super) fn list(store: &PostgresStore, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ClusterDay>> {
    let rows = store
        .with(|c| {
            c.query(
                "SELECT cluster, day_ms, eligible_ms, down_ms, incidents FROM cluster_days d \
                 WHERE day_ms >= $1 AND day_ms < $2 AND NOT EXISTS (\
                 SELECT 1 FROM rollups_pending p WHERE p.level = $3 AND p.bucket_ms = d.day_ms) \
                 ORDER BY day_ms, cluster",
                &[&from_ms, &to_ms, &PENDING_CLUSTER_DAY],
            )
        })
        .map_err(|e| store.query_error("cluster days", e))?;
    Ok(rows
        .iter()
        .map(|row| ClusterDay {
            cluster: row.get(0),
            day_ms: row.get(1),
            eligible_ms: row.get(2),
            down_ms: row.get(3),
            incidents: row.get(4),
        })
        .collect())
}

pub(super) fn earliest_run(store: &PostgresStore) -> StoreResult<Option<i64>> {
    store
        .with(|c| c.query_one("SELECT min(started_at_ms) FROM runs", &[]))
        .map(|row| row.get(0))
        .map_err(|e| store.query_error("runs", e))
}
