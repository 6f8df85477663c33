//! A whole store's rows out and in, as stored (`fleetprobe store copy`): see
//! [`crate::store::Store::export`] and [`crate::store::Store::import`].

use std::collections::{HashMap, HashSet};

use postgres::{Row, Statement, Transaction};

use super::{DataError, LOCK_PARTITIONS, PostgresStore, code, notifications, schema, write_error};
use crate::store::{
    ClusterDay, Importer, IncidentUpdate, RawColumns, RawRecord, RunId, SiteRecord, StoreError, StoreResult, StoredRun,
};

/// Rows fetched per round trip while exporting.
const FETCH: usize = 256;

pub(super) fn export(store: &PostgresStore, each: &mut dyn FnMut(RawRecord) -> StoreResult<()>) -> StoreResult<()> {
    store
        .with(|client| {
            // One snapshot: probers writing meanwhile are either wholly in the copy or not.
            let mut tx = client.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).read_only(true).start()?;
            let mut rows_of = |sql: &str, each: &mut dyn FnMut(&Row) -> Result<(), DataError>| {
                tx.batch_execute(&format!("DECLARE export NO SCROLL CURSOR FOR {sql}"))?;
                loop {
                    let rows = tx.query(&format!("FETCH {FETCH} FROM export"), &[])?;
                    for row in &rows {
                        each(row)?;
                    }
                    if rows.len() < FETCH {
                        break;
                    }
                }
                tx.batch_execute("CLOSE export")?;
                Ok::<_, DataError>(())
            };
            let mut out = |record| each(record).map_err(DataError::Store);
            rows_of("SELECT key, site_id, customer, cluster, hostname, cert_not_after, cert_issuer FROM sites ORDER BY key", &mut |r| {
                out(RawRecord::Site {
                    key: r.try_get(0)?,
                    site: SiteRecord {
                        id: r.try_get(1)?,
                        customer: r.try_get(2)?,
                        cluster: r.try_get(3)?,
                        hostname: r.try_get(4)?,
                    },
                    cert_not_after: r.try_get(5)?,
                    cert_issuer: r.try_get(6)?,
                })
            })?;
            rows_of("SELECT id, hash, count, roster FROM rosters ORDER BY id", &mut |r| {
                out(RawRecord::Roster { id: r.try_get(0)?, hash: r.try_get(1)?, count: r.try_get(2)?, roster: r.try_get(3)? })
            })?;
            rows_of(
                "SELECT id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, failures, \
                 roster_id, outcomes, details FROM runs ORDER BY id",
                &mut |r| {
                    let count = |i| r.try_get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
                    let run = StoredRun {
                        id: r.try_get(0)?,
                        vantage: r.try_get(1)?,
                        started_at_ms: r.try_get(2)?,
                        finished_at_ms: r.try_get(3)?,
                        valid: r.try_get(4)?,
                        invalid_reason: r.try_get(5)?,
                        checks: count(6)?,
                        failures: count(7)?,
                    };
                    let columns = match r.try_get::<_, Option<i64>>(8)? {
                        None => None,
                        Some(roster_id) => {
                            Some(RawColumns { roster_id, outcomes: r.try_get(9)?, details: r.try_get(10)? })
                        }
                    };
                    out(RawRecord::Run { run, columns })
                },
            )?;
            rows_of(
                "SELECT run_id, site_key, check_kind, detail FROM result_details ORDER BY run_id, site_key, check_kind",
                &mut |r| {
                    out(RawRecord::Detail {
                        run_id: r.try_get(0)?,
                        site_key: r.try_get(1)?,
                        check: code(r.try_get(2)?, "check kind")?,
                        detail: r.try_get(3)?,
                    })
                },
            )?;
            rows_of(
                "SELECT run_id, cluster, check_kind, phase, hist FROM histograms ORDER BY run_id, cluster, check_kind, phase",
                &mut |r| {
                    out(RawRecord::Histogram {
                        run_id: r.try_get(0)?,
                        cluster: r.try_get(1)?,
                        check: code(r.try_get(2)?, "check kind")?,
                        phase: code(r.try_get(3)?, "phase")?,
                        hist: r.try_get(4)?,
                    })
                },
            )?;
            rows_of("SELECT site_key, from_run, not_after FROM site_certs ORDER BY site_key, from_run", &mut |r| {
                out(RawRecord::Cert { site_key: r.try_get(0)?, from_run: r.try_get(1)?, not_after: r.try_get(2)? })
            })?;
            rows_of(
                "SELECT resolution, cluster, check_kind, phase, bucket_ms, hist FROM latency_rollups \
                 ORDER BY resolution, cluster, check_kind, phase, bucket_ms",
                &mut |r| {
                    out(RawRecord::Rollup {
                        resolution: code(r.try_get(0)?, "resolution")?,
                        cluster: r.try_get(1)?,
                        check: code(r.try_get(2)?, "check kind")?,
                        phase: code(r.try_get(3)?, "phase")?,
                        bucket_ms: r.try_get(4)?,
                        hist: r.try_get(5)?,
                    })
                },
            )?;
            rows_of(
                "SELECT site_key, check_kind, phase, day_ms, hist FROM site_latency_days \
                 ORDER BY site_key, check_kind, phase, day_ms",
                &mut |r| {
                    out(RawRecord::SiteDay {
                        site_key: r.try_get(0)?,
                        check: code(r.try_get(1)?, "check kind")?,
                        phase: code(r.try_get(2)?, "phase")?,
                        day_ms: r.try_get(3)?,
                        hist: r.try_get(4)?,
                    })
                },
            )?;
            rows_of("SELECT level, bucket_ms, next_site_key FROM rollups_pending ORDER BY level, bucket_ms", &mut |r| {
                out(RawRecord::Pending {
                    level: code(r.try_get(0)?, "level")?,
                    bucket_ms: r.try_get(1)?,
                    next_site_key: r.try_get(2)?,
                })
            })?;
            rows_of("SELECT incident_id, posted_at_ms, text, title, cause FROM incident_updates ORDER BY id", &mut |r| {
                out(RawRecord::IncidentUpdate(IncidentUpdate {
                    incident_id: r.try_get(0)?,
                    posted_at_ms: r.try_get(1)?,
                    text: r.try_get(2)?,
                    title: r.try_get(3)?,
                    cause: r.try_get(4)?,
                }))
            })?;
            let select = format!("SELECT {} FROM notifications ORDER BY created_at_ms, target, event_key", notifications::COLUMNS);
            rows_of(&select, &mut |r| out(RawRecord::Notification(notifications::row_to_notification(r)?)))?;
            rows_of("SELECT target, result, count FROM notification_counts ORDER BY target, result", &mut |r| {
                out(RawRecord::NotificationCount { target: r.try_get(0)?, result: r.try_get(1)?, count: r.try_get(2)? })
            })?;
            rows_of(
                "SELECT cluster, day_ms, eligible_ms, down_ms, incidents FROM cluster_days ORDER BY day_ms, cluster",
                &mut |r| {
                    out(RawRecord::ClusterDay(ClusterDay {
                        cluster: r.try_get(0)?,
                        day_ms: r.try_get(1)?,
                        eligible_ms: r.try_get(2)?,
                        down_ms: r.try_get(3)?,
                        incidents: r.try_get(4)?,
                    }))
                },
            )?;
            tx.commit()?;
            Ok(())
        })
        .map_err(|e| store.data_error("the store for copying", e))
}

pub(super) fn import<'a>(store: &'a mut PostgresStore) -> StoreResult<Box<dyn Importer + 'a>> {
    let location = store.location.clone();
    let error = |e| write_error(&location, "copied rows", e);
    let mut tx = store.client.get_mut().transaction().map_err(error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PARTITIONS]).map_err(error)?;
    let used: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM sites) + (SELECT count(*) FROM incident_updates)",
            &[],
        )
        .map_err(error)?
        .get(0);
    if used > 0 {
        return Err(StoreError::Query {
            path: location,
            message: "the store to copy into already holds data; copy into a new, empty database".into(),
        });
    }
    Ok(Box::new(PostgresImporter {
        tx,
        location,
        statements: HashMap::new(),
        run_starts: HashMap::new(),
        partitions: HashSet::new(),
    }))
}

struct PostgresImporter<'a> {
    tx: Transaction<'a>,
    location: String,
    statements: HashMap<&'static str, Statement>,
    /// Each copied run's start, for the partition key of its details and histograms.
    run_starts: HashMap<RunId, i64>,
    partitions: HashSet<String>,
}

impl PostgresImporter<'_> {
    fn run(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<(), postgres::Error> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.tx.prepare(sql)?;
                self.statements.insert(sql, statement.clone());
                statement
            }
        };
        self.tx.execute(&statement, params).map(|_| ())
    }

    fn started(&self, run_id: RunId) -> Result<i64, StoreError> {
        self.run_starts.get(&run_id).copied().ok_or_else(|| StoreError::Query {
            path: self.location.clone(),
            message: format!("a copied row refers to run {run_id}, which was not copied"),
        })
    }
}

impl Importer for PostgresImporter<'_> {
    fn add(&mut self, record: RawRecord) -> StoreResult<()> {
        let i16_of = |v: u8| i16::from(v);
        let done = match &record {
            RawRecord::Site { key, site, cert_not_after, cert_issuer } => self.run(
                "INSERT INTO sites (key, site_id, customer, cluster, hostname, cert_not_after, cert_issuer) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[key, &site.id, &site.customer, &site.cluster, &site.hostname, cert_not_after, cert_issuer],
            ),
            RawRecord::Roster { id, hash, count, roster } => self.run(
                "INSERT INTO rosters (id, hash, count, roster) VALUES ($1, $2, $3, $4)",
                &[id, hash, count, roster],
            ),
            RawRecord::Run { run: r, columns } => {
                if !self.partitions.contains(&schema::month_of(r.started_at_ms).map_or(String::new(), |m| m.2)) {
                    let suffix = schema::create_partitions_in(&mut self.tx, r.started_at_ms)
                        .map_err(|message| StoreError::Query { path: self.location.clone(), message })?;
                    self.partitions.insert(suffix);
                }
                self.run_starts.insert(r.id, r.started_at_ms);
                let (checks, failures) =
                    (i64::try_from(r.checks).unwrap_or(i64::MAX), i64::try_from(r.failures).unwrap_or(i64::MAX));
                let (roster_id, outcomes, details) = match columns {
                    Some(c) => (Some(c.roster_id), Some(&c.outcomes), Some(&c.details)),
                    None => (None, None, None),
                };
                self.run(
                    "INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, \
                     failures, roster_id, outcomes, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &[
                        &r.id,
                        &r.vantage,
                        &r.started_at_ms,
                        &r.finished_at_ms,
                        &r.valid,
                        &r.invalid_reason,
                        &checks,
                        &failures,
                        &roster_id,
                        &outcomes,
                        &details,
                    ],
                )
            }
            RawRecord::Detail { run_id, site_key, check, detail } => {
                let started = self.started(*run_id)?;
                self.run(
                    "INSERT INTO result_details (run_id, started_at_ms, site_key, check_kind, detail) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[run_id, &started, site_key, &i16_of(*check), detail],
                )
            }
            RawRecord::Histogram { run_id, cluster, check, phase, hist } => {
                let started = self.started(*run_id)?;
                self.run(
                    "INSERT INTO histograms (run_id, started_at_ms, cluster, check_kind, phase, hist) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[run_id, &started, cluster, &i16_of(*check), &i16_of(*phase), hist],
                )
            }
            RawRecord::Cert { site_key, from_run, not_after } => self.run(
                "INSERT INTO site_certs (site_key, from_run, not_after) VALUES ($1, $2, $3)",
                &[site_key, from_run, not_after],
            ),
            RawRecord::Rollup { resolution, cluster, check, phase, bucket_ms, hist } => self.run(
                "INSERT INTO latency_rollups (resolution, cluster, check_kind, phase, bucket_ms, hist) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&i16_of(*resolution), cluster, &i16_of(*check), &i16_of(*phase), bucket_ms, hist],
            ),
            RawRecord::SiteDay { site_key, check, phase, day_ms, hist } => self.run(
                "INSERT INTO site_latency_days (site_key, check_kind, phase, day_ms, hist) VALUES ($1, $2, $3, $4, $5)",
                &[site_key, &i16_of(*check), &i16_of(*phase), day_ms, hist],
            ),
            RawRecord::Pending { level, bucket_ms, next_site_key } => self.run(
                "INSERT INTO rollups_pending (level, bucket_ms, next_site_key) VALUES ($1, $2, $3)",
                &[&i16_of(*level), bucket_ms, next_site_key],
            ),
            RawRecord::IncidentUpdate(u) => self.run(
                "INSERT INTO incident_updates (incident_id, posted_at_ms, text, title, cause) VALUES ($1, $2, $3, $4, $5)",
                &[&u.incident_id, &u.posted_at_ms, &u.text, &u.title, &u.cause],
            ),
            RawRecord::Notification(n) => self.run(notifications::INSERT, &notifications::values(n)),
            RawRecord::NotificationCount { target, result, count } => self.run(
                "INSERT INTO notification_counts (target, result, count) VALUES ($1, $2, $3)",
                &[target, result, count],
            ),
            RawRecord::ClusterDay(d) => self.run(
                "INSERT INTO cluster_days (cluster, day_ms, eligible_ms, down_ms, incidents) VALUES ($1, $2, $3, $4, $5)",
                &[&d.cluster, &d.day_ms, &d.eligible_ms, &d.down_ms, &d.incidents],
            ),
        };
        done.map_err(|e| write_error(&self.location, "a copied row", e))
    }

    fn finish(self: Box<Self>) -> StoreResult<()> {
        let PostgresImporter { mut tx, location, .. } = *self;
        let error = |e| write_error(&location, "the copy", e);
        // New rows go on from the copied keys.
        tx.batch_execute(
            "SELECT setval('runs_id_seq', coalesce((SELECT max(id) FROM runs), 0) + 1, false); \
             SELECT setval(pg_get_serial_sequence('sites', 'key'), coalesce((SELECT max(key) FROM sites), 0) + 1, false); \
             SELECT setval(pg_get_serial_sequence('rosters', 'id'), coalesce((SELECT max(id) FROM rosters), 0) + 1, false); \
             SELECT setval(pg_get_serial_sequence('incident_updates', 'id'), \
                 coalesce((SELECT max(id) FROM incident_updates), 0) + 1, false);",
        )
        .map_err(error)?;
        tx.commit().map_err(error)
    }
}
