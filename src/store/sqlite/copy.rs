//! A whole store's rows out and in, as stored (`fleetprobe store copy`): see
//! [`crate::store::Store::export`] and [`crate::store::Store::import`].

use rusqlite::{Transaction, TransactionBehavior, params};

use super::{SqliteStore, notifications, write_error};
use crate::store::{
    ClusterDay, Importer, IncidentUpdate, RawColumns, RawRecord, SiteRecord, StoreError, StoreResult, StoredRun,
};

pub(super) fn export(store: &SqliteStore, each: &mut dyn FnMut(RawRecord) -> StoreResult<()>) -> StoreResult<()> {
    let conn = &store.conn;
    let error = |e| store.query_error("the store for copying", e);
    // One read transaction: a sweep committing meanwhile is either wholly in the copy or not.
    conn.execute_batch("BEGIN").map_err(error)?;
    let result = (|| {
        let rows_of = |sql: &str, each: &mut dyn FnMut(&rusqlite::Row<'_>) -> StoreResult<()>| {
            let mut select = conn.prepare(sql).map_err(error)?;
            let mut rows = select.query([]).map_err(error)?;
            while let Some(row) = rows.next().map_err(error)? {
                each(row)?;
            }
            Ok::<_, StoreError>(())
        };
        let get = |e| error(e);
        rows_of(
            "SELECT key, site_id, customer, cluster, hostname, cert_not_after, cert_issuer FROM sites ORDER BY key",
            &mut |r| {
                each(RawRecord::Site {
                    key: r.get(0).map_err(get)?,
                    site: SiteRecord {
                        id: r.get(1).map_err(get)?,
                        customer: r.get(2).map_err(get)?,
                        cluster: r.get(3).map_err(get)?,
                        hostname: r.get(4).map_err(get)?,
                    },
                    cert_not_after: r.get(5).map_err(get)?,
                    cert_issuer: r.get(6).map_err(get)?,
                })
            },
        )?;
        rows_of("SELECT id, hash, count, roster FROM rosters ORDER BY id", &mut |r| {
            each(RawRecord::Roster {
                id: r.get(0).map_err(get)?,
                hash: r.get(1).map_err(get)?,
                count: r.get(2).map_err(get)?,
                roster: r.get(3).map_err(get)?,
            })
        })?;
        rows_of(
            "SELECT u.id, u.vantage, u.started_at_ms, u.finished_at_ms, u.valid, u.invalid_reason, u.checks, \
             u.failures, b.roster_id, b.outcomes, b.details FROM runs u LEFT JOIN run_results b ON b.run_id = u.id \
             WHERE u.valid IS NOT NULL ORDER BY u.id",
            &mut |r| {
                let run = StoredRun {
                    id: r.get(0).map_err(get)?,
                    vantage: r.get(1).map_err(get)?,
                    started_at_ms: r.get(2).map_err(get)?,
                    finished_at_ms: r.get(3).map_err(get)?,
                    valid: r.get(4).map_err(get)?,
                    invalid_reason: r.get(5).map_err(get)?,
                    checks: r.get(6).map_err(get)?,
                    failures: r.get(7).map_err(get)?,
                };
                let columns = match r.get::<_, Option<i64>>(8).map_err(get)? {
                    None => None,
                    Some(roster_id) => Some(RawColumns {
                        roster_id,
                        outcomes: r.get(9).map_err(get)?,
                        details: r.get(10).map_err(get)?,
                    }),
                };
                each(RawRecord::Run { run, columns })
            },
        )?;
        rows_of(
            "SELECT run_id, site_key, check_kind, detail FROM result_details ORDER BY run_id, site_key, check_kind",
            &mut |r| {
                each(RawRecord::Detail {
                    run_id: r.get(0).map_err(get)?,
                    site_key: r.get(1).map_err(get)?,
                    check: r.get(2).map_err(get)?,
                    detail: r.get(3).map_err(get)?,
                })
            },
        )?;
        rows_of(
            "SELECT run_id, cluster, check_kind, phase, hist FROM histograms ORDER BY run_id, cluster, check_kind, phase",
            &mut |r| {
                each(RawRecord::Histogram {
                    run_id: r.get(0).map_err(get)?,
                    cluster: r.get(1).map_err(get)?,
                    check: r.get(2).map_err(get)?,
                    phase: r.get(3).map_err(get)?,
                    hist: r.get(4).map_err(get)?,
                })
            },
        )?;
        rows_of("SELECT site_key, from_run, not_after FROM site_certs ORDER BY site_key, from_run", &mut |r| {
            each(RawRecord::Cert {
                site_key: r.get(0).map_err(get)?,
                from_run: r.get(1).map_err(get)?,
                not_after: r.get(2).map_err(get)?,
            })
        })?;
        rows_of(
            "SELECT resolution, cluster, check_kind, phase, bucket_ms, hist FROM latency_rollups \
             ORDER BY resolution, cluster, check_kind, phase, bucket_ms",
            &mut |r| {
                each(RawRecord::Rollup {
                    resolution: r.get(0).map_err(get)?,
                    cluster: r.get(1).map_err(get)?,
                    check: r.get(2).map_err(get)?,
                    phase: r.get(3).map_err(get)?,
                    bucket_ms: r.get(4).map_err(get)?,
                    hist: r.get(5).map_err(get)?,
                })
            },
        )?;
        rows_of(
            "SELECT site_key, check_kind, phase, day_ms, hist FROM site_latency_days \
             ORDER BY site_key, check_kind, phase, day_ms",
            &mut |r| {
                each(RawRecord::SiteDay {
                    site_key: r.get(0).map_err(get)?,
                    check: r.get(1).map_err(get)?,
                    phase: r.get(2).map_err(get)?,
                    day_ms: r.get(3).map_err(get)?,
                    hist: r.get(4).map_err(get)?,
                })
            },
        )?;
        rows_of("SELECT level, bucket_ms, next_site_key FROM rollups_pending ORDER BY level, bucket_ms", &mut |r| {
            each(RawRecord::Pending {
                level: r.get(0).map_err(get)?,
                bucket_ms: r.get(1).map_err(get)?,
                next_site_key: r.get(2).map_err(get)?,
            })
        })?;
        rows_of("SELECT incident_id, posted_at_ms, text, title, cause FROM incident_updates ORDER BY id", &mut |r| {
            each(RawRecord::IncidentUpdate(IncidentUpdate {
                incident_id: r.get(0).map_err(get)?,
                posted_at_ms: r.get(1).map_err(get)?,
                text: r.get(2).map_err(get)?,
                title: r.get(3).map_err(get)?,
                cause: r.get(4).map_err(get)?,
            }))
        })?;
        rows_of(
            &format!("SELECT {} FROM notifications ORDER BY created_at_ms, target, event_key", notifications::COLUMNS),
            &mut |r| each(RawRecord::Notification(notifications::row_to_notification(r).map_err(get)?)),
        )?;
        rows_of("SELECT target, result, count FROM notification_counts ORDER BY target, result", &mut |r| {
            each(RawRecord::NotificationCount {
                target: r.get(0).map_err(get)?,
                result: r.get(1).map_err(get)?,
                count: r.get(2).map_err(get)?,
            })
        })?;
        rows_of(
            "SELECT cluster, day_ms, eligible_ms, down_ms, incidents FROM cluster_days ORDER BY day_ms, cluster",
            &mut |r| {
                each(RawRecord::ClusterDay(ClusterDay {
                    cluster: r.get(0).map_err(get)?,
                    day_ms: r.get(1).map_err(get)?,
                    eligible_ms: r.get(2).map_err(get)?,
                    down_ms: r.get(3).map_err(get)?,
                    incidents: r.get(4).map_err(get)?,
                }))
            },
        )
    })();
    let _ = conn.execute_batch("COMMIT");
    result
}

pub(super) fn import<'a>(store: &'a mut SqliteStore) -> StoreResult<Box<dyn Importer + 'a>> {
    let path = store.path.display().to_string();
    let error = |e| write_error(&store.path, "copied rows", e);
    let tx = store.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
    let used: i64 = tx
        .query_row(
            "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM sites) + (SELECT count(*) FROM incident_updates)",
            [],
            |row| row.get(0),
        )
        .map_err(error)?;
    if used > 0 {
        return Err(StoreError::Query {
            path,
            message: "the store to copy into already holds data; copy into a new, empty store".into(),
        });
    }
    Ok(Box::new(SqliteImporter { tx, path }))
}

struct SqliteImporter<'a> {
    tx: Transaction<'a>,
    path: String,
}

impl Importer for SqliteImporter<'_> {
    fn add(&mut self, record: RawRecord) -> StoreResult<()> {
        let tx = &self.tx;
        let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| tx.prepare_cached(sql)?.execute(params).map(|_| ());
        let done = match &record {
            RawRecord::Site { key, site, cert_not_after, cert_issuer } => run(
                "INSERT INTO sites (key, site_id, customer, cluster, hostname, cert_not_after, cert_issuer) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![key, site.id, site.customer, site.cluster, site.hostname, cert_not_after, cert_issuer],
            ),
            RawRecord::Roster { id, hash, count, roster } => run(
                "INSERT INTO rosters (id, hash, count, roster) VALUES (?1, ?2, ?3, ?4)",
                params![id, hash, count, roster],
            ),
            RawRecord::Run { run: r, columns } => run(
                "INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, failures) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![r.id, r.vantage, r.started_at_ms, r.finished_at_ms, r.valid, r.invalid_reason, r.checks, r.failures],
            )
            .and_then(|()| match columns {
                None => Ok(()),
                Some(c) => run(
                    "INSERT INTO run_results (run_id, roster_id, outcomes, details) VALUES (?1, ?2, ?3, ?4)",
                    params![r.id, c.roster_id, c.outcomes, c.details],
                ),
            }),
            RawRecord::Detail { run_id, site_key, check, detail } => run(
                "INSERT INTO result_details (run_id, site_key, check_kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, site_key, check, detail],
            ),
            RawRecord::Histogram { run_id, cluster, check, phase, hist } => run(
                "INSERT INTO histograms (run_id, cluster, check_kind, phase, hist) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_id, cluster, check, phase, hist],
            ),
            RawRecord::Cert { site_key, from_run, not_after } => run(
                "INSERT INTO site_certs (site_key, from_run, not_after) VALUES (?1, ?2, ?3)",
                params![site_key, from_run, not_after],
            ),
            RawRecord::Rollup { resolution, cluster, check, phase, bucket_ms, hist } => run(
                "INSERT INTO latency_rollups (resolution, cluster, check_kind, phase, bucket_ms, hist) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![resolution, cluster, check, phase, bucket_ms, hist],
            ),
            RawRecord::SiteDay { site_key, check, phase, day_ms, hist } => run(
                "INSERT INTO site_latency_days (site_key, check_kind, phase, day_ms, hist) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![site_key, check, phase, day_ms, hist],
            ),
            RawRecord::Pending { level, bucket_ms, next_site_key } => run(
                "INSERT INTO rollups_pending (level, bucket_ms, next_site_key) VALUES (?1, ?2, ?3)",
                params![level, bucket_ms, next_site_key],
            ),
            RawRecord::IncidentUpdate(u) => run(
                "INSERT INTO incident_updates (incident_id, posted_at_ms, text, title, cause) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![u.incident_id, u.posted_at_ms, u.text, u.title, u.cause],
            ),
            RawRecord::Notification(n) => run(notifications::INSERT, &notifications::values(n)[..]),
            RawRecord::NotificationCount { target, result, count } => run(
                "INSERT INTO notification_counts (target, result, count) VALUES (?1, ?2, ?3)",
                params![target, result, count],
            ),
            RawRecord::ClusterDay(d) => run(
                "INSERT INTO cluster_days (cluster, day_ms, eligible_ms, down_ms, incidents) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.cluster, d.day_ms, d.eligible_ms, d.down_ms, d.incidents],
            ),
        };
        done.map_err(|e| StoreError::Query { path: self.path.clone(), message: format!("cannot copy a row in: {e}") })
    }

    fn finish(self: Box<Self>) -> StoreResult<()> {
        let path = self.path.clone();
        self.tx.commit().map_err(|e| StoreError::Query { path, message: format!("cannot commit the copy: {e}") })
    }
}
