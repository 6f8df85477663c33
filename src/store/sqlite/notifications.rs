//! Notifications: what was announced to which target (`notifications`), the delivery counts
//! (`notification_counts`), and the sites' latest certificate dates for the certificate report.

use rusqlite::params;

use super::{SqliteStore, write_error};
use crate::store::{DeliveryOutcome, Notification, SiteCertificate, SiteRecord, StoreResult};

/// Schema version 5.
pub(super) const SCHEMA: &str = "
-- One row per event and target: recorded before the first attempt, so that an event is sent
-- once whatever the number of runs and probers; a failed attempt sets the next one.
CREATE TABLE notifications (
    target          TEXT NOT NULL,
    event_key       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    peak_sites      INTEGER NOT NULL,
    peak_share      REAL NOT NULL,
    payload         TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    abandoned_at_ms INTEGER,
    last_error      TEXT,
    PRIMARY KEY (target, event_key)
);
CREATE INDEX notifications_by_time ON notifications (created_at_ms);
-- Deliveries per target and result, for the metrics file's counters.
CREATE TABLE notification_counts (
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (target, result)
);
";

pub(super) const COLUMNS: &str = "target, event_key, kind, subject, peak_sites, peak_share, payload, created_at_ms, attempts, \
                       next_attempt_ms, delivered_at_ms, abandoned_at_ms, last_error";

/// Inserts one record as it is (`store copy`); recording new events adds `ON CONFLICT`.
pub(super) const INSERT: &str = "INSERT INTO notifications (target, event_key, kind, subject, peak_sites, peak_share, \
     payload, created_at_ms, attempts, next_attempt_ms, delivered_at_ms, abandoned_at_ms, last_error) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// The values of [`INSERT`], in its order.
pub(super) fn values(n: &Notification) -> [&dyn rusqlite::ToSql; 13] {
    [
        &n.target,
        &n.event_key,
        &n.kind,
        &n.subject,
        &n.peak_sites,
        &n.peak_share,
        &n.payload,
        &n.created_at_ms,
        &n.attempts,
        &n.next_attempt_ms,
        &n.delivered_at_ms,
        &n.abandoned_at_ms,
        &n.last_error,
    ]
}

pub(super) fn row_to_notification(row: &rusqlite::Row<'_>) -> rusqlite::Result<Notification> {
    Ok(Notification {
        target: row.get(0)?,
        event_key: row.get(1)?,
        kind: row.get(2)?,
        subject: row.get(3)?,
        peak_sites: row.get(4)?,
        peak_share: row.get(5)?,
        payload: row.get(6)?,
        created_at_ms: row.get(7)?,
        attempts: row.get(8)?,
        next_attempt_ms: row.get(9)?,
        delivered_at_ms: row.get(10)?,
        abandoned_at_ms: row.get(11)?,
        last_error: row.get(12)?,
    })
}

pub(super) fn add(store: &mut SqliteStore, notifications: &[Notification]) -> StoreResult<Vec<Notification>> {
    let path = store.path.clone();
    let error = |e| write_error(&path, "notifications", e);
    let tx = store.conn.transaction().map_err(error)?;
    let mut added = Vec::new();
    {
        let mut insert =
            tx.prepare_cached(&format!("{INSERT} ON CONFLICT (target, event_key) DO NOTHING")).map_err(error)?;
        for n in notifications {
            let inserted = insert.execute(&values(n)[..]).map_err(error)?;
            if inserted == 1 {
                added.push(n.clone());
            }
        }
    }
    tx.commit().map_err(error)?;
    Ok(added)
}

pub(super) fn list(store: &SqliteStore, since_ms: i64) -> StoreResult<Vec<Notification>> {
    let error = |e| store.query_error("notifications", e);
    let mut select = store
        .conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notifications \
             WHERE created_at_ms >= ?1 OR (delivered_at_ms IS NULL AND abandoned_at_ms IS NULL) \
             ORDER BY created_at_ms, rowid"
        ))
        .map_err(error)?;
    let rows = select.query_map([since_ms], row_to_notification).map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}

pub(super) fn claim(
    store: &mut SqliteStore,
    target: &str,
    event_key: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> StoreResult<bool> {
    store
        .conn
        .execute(
            "UPDATE notifications SET next_attempt_ms = ?4 WHERE target = ?1 AND event_key = ?2 \
             AND next_attempt_ms <= ?3 AND delivered_at_ms IS NULL AND abandoned_at_ms IS NULL",
            params![target, event_key, now_ms, lease_until_ms],
        )
        .map(|n| n == 1)
        .map_err(|e| write_error(&store.path, "notification claim", e))
}

pub(super) fn finish(
    store: &mut SqliteStore,
    target: &str,
    event_key: &str,
    outcome: &DeliveryOutcome,
) -> StoreResult<()> {
    let path = store.path.clone();
    let error = |e| write_error(&path, "notification", e);
    let tx = store.conn.transaction().map_err(error)?;
    let result = match outcome {
        DeliveryOutcome::Delivered { at_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, delivered_at_ms = ?3, last_error = NULL \
                 WHERE target = ?1 AND event_key = ?2",
                params![target, event_key, at_ms],
            )
            .map_err(error)?;
            "ok"
        }
        DeliveryOutcome::Failed { error: message, next_attempt_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = ?3, last_error = ?4 \
                 WHERE target = ?1 AND event_key = ?2",
                params![target, event_key, next_attempt_ms, message],
            )
            .map_err(error)?;
            "failed"
        }
        DeliveryOutcome::Abandoned { error: message, at_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, abandoned_at_ms = ?3, last_error = ?4 \
                 WHERE target = ?1 AND event_key = ?2",
                params![target, event_key, at_ms, message],
            )
            .map_err(error)?;
            "abandoned"
        }
    };
    add_count(&tx, target, result, 1).map_err(error)?;
    tx.commit().map_err(error)
}

fn add_count(conn: &rusqlite::Connection, target: &str, result: &str, n: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO notification_counts (target, result, count) VALUES (?1, ?2, ?3) \
         ON CONFLICT (target, result) DO UPDATE SET count = count + excluded.count",
        params![target, result, n],
    )
}

pub(super) fn count(store: &mut SqliteStore, target: &str, result: &str, n: i64) -> StoreResult<()> {
    add_count(&store.conn, target, result, n)
        .map(|_| ())
        .map_err(|e| write_error(&store.path, "notification counts", e))
}

pub(super) fn prune(store: &mut SqliteStore, before_ms: i64) -> StoreResult<usize> {
    store
        .conn
        .execute("DELETE FROM notifications WHERE created_at_ms < ?1 AND (delivered_at_ms IS NOT NULL OR abandoned_at_ms IS NOT NULL)", [before_ms])
        .map_err(|e| write_error(&store.path, "pruned notifications", e))
}

pub(super) fn counts(store: &SqliteStore) -> StoreResult<Vec<(String, String, i64)>> {
    let error = |e| store.query_error("notification counts", e);
    let mut select = store
        .conn
        .prepare_cached("SELECT target, result, count FROM notification_counts ORDER BY target, result")
        .map_err(error)?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}

pub(super) fn site_certificates(store: &SqliteStore) -> StoreResult<Vec<SiteCertificate>> {
    let error = |e| store.query_error("certificates", e);
    let mut select = store
        .conn
        .prepare_cached(
            "SELECT site_id, customer, cluster, hostname, cert_not_after, cert_issuer FROM sites \
             WHERE cert_not_after IS NOT NULL ORDER BY cert_not_after, site_id",
        )
        .map_err(error)?;
    let rows = select
        .query_map([], |row| {
            Ok(SiteCertificate {
                site: SiteRecord {
                    id: row.get(0)?,
                    customer: row.get(1)?,
                    cluster: row.get(2)?,
                    hostname: row.get(3)?,
                },
                not_after: row.get(4)?,
                issuer: row.get(5)?,
            })
        })
        .map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}
