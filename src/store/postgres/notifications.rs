//! Notifications: what was announced to which target (`notifications`), the delivery counts
//! (`notification_counts`), and the sites' latest certificate dates for the certificate report.

use postgres::GenericClient;

use super::{PostgresStore, write_error};
use crate::store::{DeliveryOutcome, Notification, SiteCertificate, SiteRecord, StoreResult};

/// Schema version 2.
pub(super) const SCHEMA: &str = "
-- One row per event and target: recorded before the first attempt, so that an event is sent
-- once whatever the number of runs and probers; a failed attempt sets the next one.
CREATE TABLE notifications (
    target          text NOT NULL,
    event_key       text NOT NULL,
    kind            text NOT NULL,
    subject         text NOT NULL,
    peak_sites      bigint NOT NULL,
    peak_share      double precision NOT NULL,
    payload         text NOT NULL,
    created_at_ms   bigint NOT NULL,
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_ms bigint NOT NULL,
    delivered_at_ms bigint,
    abandoned_at_ms bigint,
    last_error      text,
    PRIMARY KEY (target, event_key)
);
CREATE INDEX notifications_by_time ON notifications (created_at_ms);
-- Deliveries per target and result, for the metrics file's counters.
CREATE TABLE notification_counts (
    target text NOT NULL,
    result text NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (target, result)
);
";

pub(super) const COLUMNS: &str = "target, event_key, kind, subject, peak_sites, peak_share, payload, created_at_ms, attempts, \
                       next_attempt_ms, delivered_at_ms, abandoned_at_ms, last_error";

/// Inserts one record as it is (`store copy`); recording new events adds `ON CONFLICT`.
pub(super) const INSERT: &str = "INSERT INTO notifications (target, event_key, kind, subject, peak_sites, peak_share, \
     payload, created_at_ms, attempts, next_attempt_ms, delivered_at_ms, abandoned_at_ms, last_error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// The values of [`INSERT`], in its order.
pub(super) fn values(n: &Notification) -> [&(dyn postgres::types::ToSql + Sync); 13] {
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

pub(super) fn row_to_notification(row: &postgres::Row) -> Result<Notification, postgres::Error> {
    Ok(Notification {
        target: row.try_get(0)?,
        event_key: row.try_get(1)?,
        kind: row.try_get(2)?,
        subject: row.try_get(3)?,
        peak_sites: row.try_get(4)?,
        peak_share: row.try_get(5)?,
        payload: row.try_get(6)?,
        created_at_ms: row.try_get(7)?,
        attempts: row.try_get(8)?,
        next_attempt_ms: row.try_get(9)?,
        delivered_at_ms: row.try_get(10)?,
        abandoned_at_ms: row.try_get(11)?,
        last_error: row.try_get(12)?,
    })
}

pub(super) fn add(store: &mut PostgresStore, notifications: &[Notification]) -> StoreResult<Vec<Notification>> {
    let location = store.location.clone();
    let error = |e| write_error(&location, "notifications", e);
    let client = store.client.get_mut();
    let mut tx = client.transaction().map_err(error)?;
    let insert = tx.prepare(&format!("{INSERT} ON CONFLICT (target, event_key) DO NOTHING")).map_err(error)?;
    let mut added = Vec::new();
    for n in notifications {
        let inserted = tx.execute(&insert, &values(n)).map_err(error)?;
        if inserted == 1 {
            added.push(n.clone());
        }
    }
    tx.commit().map_err(error)?;
    Ok(added)
}

pub(super) fn list(store: &PostgresStore, since_ms: i64) -> StoreResult<Vec<Notification>> {
    let error = |e| store.query_error("notifications", e);
    let rows = store
        .with(|c| {
            c.query(
                &format!(
                    "SELECT {COLUMNS} FROM notifications \
                     WHERE created_at_ms >= $1 OR (delivered_at_ms IS NULL AND abandoned_at_ms IS NULL) \
                     ORDER BY created_at_ms, target, event_key"
                ),
                &[&since_ms],
            )
        })
        .map_err(error)?;
    rows.iter().map(row_to_notification).collect::<Result<_, _>>().map_err(error)
}

pub(super) fn claim(
    store: &mut PostgresStore,
    target: &str,
    event_key: &str,
    now_ms: i64,
    lease_until_ms: i64,
) -> StoreResult<bool> {
    store
        .client
        .get_mut()
        .execute(
            "UPDATE notifications SET next_attempt_ms = $4 WHERE target = $1 AND event_key = $2 \
             AND next_attempt_ms <= $3 AND delivered_at_ms IS NULL AND abandoned_at_ms IS NULL",
            &[&target, &event_key, &now_ms, &lease_until_ms],
        )
        .map(|n| n == 1)
        .map_err(|e| write_error(&store.location, "notification claim", e))
}

pub(super) fn finish(
    store: &mut PostgresStore,
    target: &str,
    event_key: &str,
    outcome: &DeliveryOutcome,
) -> StoreResult<()> {
    let location = store.location.clone();
    let error = |e| write_error(&location, "notification", e);
    let mut tx = store.client.get_mut().transaction().map_err(error)?;
    let result = match outcome {
        DeliveryOutcome::Delivered { at_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, delivered_at_ms = $3, last_error = NULL \
                 WHERE target = $1 AND event_key = $2",
                &[&target, &event_key, at_ms],
            )
            .map_err(error)?;
            "ok"
        }
        DeliveryOutcome::Failed { error: message, next_attempt_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_ms = $3, last_error = $4 \
                 WHERE target = $1 AND event_key = $2",
                &[&target, &event_key, next_attempt_ms, message],
            )
            .map_err(error)?;
            "failed"
        }
        DeliveryOutcome::Abandoned { error: message, at_ms } => {
            tx.execute(
                "UPDATE notifications SET attempts = attempts + 1, abandoned_at_ms = $3, last_error = $4 \
                 WHERE target = $1 AND event_key = $2",
                &[&target, &event_key, at_ms, message],
            )
            .map_err(error)?;
            "abandoned"
        }
    };
    add_count(&mut tx, target, result, 1).map_err(error)?;
    tx.commit().map_err(error)
}

fn add_count(client: &mut impl GenericClient, target: &str, result: &str, n: i64) -> Result<u64, postgres::Error> {
    client.execute(
        "INSERT INTO notification_counts (target, result, count) VALUES ($1, $2, $3) \
         ON CONFLICT (target, result) DO UPDATE SET count = notification_counts.count + excluded.count",
        &[&target, &result, &n],
    )
}

pub(super) fn count(store: &mut PostgresStore, target: &str, result: &str, n: i64) -> StoreResult<()> {
    let location = store.location.clone();
    add_count(store.client.get_mut(), target, result, n)
        .map(|_| ())
        .map_err(|e| write_error(&location, "notification counts", e))
}

pub(super) fn prune(store: &mut PostgresStore, before_ms: i64) -> StoreResult<usize> {
    let location = store.location.clone();
    store
        .client
        .get_mut()
        .execute("DELETE FROM notifications WHERE created_at_ms < $1 AND (delivered_at_ms IS NOT NULL OR abandoned_at_ms IS NOT NULL)", &[&before_ms])
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .map_err(|e| write_error(&location, "pruned notifications", e))
}

pub(super) fn counts(store: &PostgresStore) -> StoreResult<Vec<(String, String, i64)>> {
    let error = |e| store.query_error("notification counts", e);
    let rows = store
        .with(|c| c.query("SELECT target, result, count FROM notification_counts ORDER BY target, result", &[]))
        .map_err(error)?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<_, postgres::Error>>()
        .map_err(error)
}

pub(super) fn site_certificates(store: &PostgresStore) -> StoreResult<Vec<SiteCertificate>> {
    let error = |e| store.query_error("certificates", e);
    let rows = store
        .with(|c| {
            c.query(
                "SELECT site_id, customer, cluster, hostname, cert_not_after, cert_issuer FROM sites \
                 WHERE cert_not_after IS NOT NULL ORDER BY cert_not_after, site_id",
                &[],
            )
        })
        .map_err(error)?;
    rows.iter()
        .map(|row| {
            Ok(SiteCertificate {
                site: SiteRecord {
                    id: row.try_get(0)?,
                    customer: row.try_get(1)?,
                    cluster: row.try_get(2)?,
                    hostname: row.try_get(3)?,
                },
                not_after: row.try_get(4)?,
                issuer: row.try_get(5)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()
        .map_err(error)
}
