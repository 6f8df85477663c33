//! The SQLite store's schema: its tables, and the migrations that bring an older file up to date,
//! including the conversion of version 3's result rows into version 4's per-run columns.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::writer::{BlockBuilder, StoredRoster, WriteError};
use super::{DataError, check_kind, sqlite_open_message};
use crate::probe::{Outcome, Timings};
use crate::store::{RunId, StoreError, StoreResult, columns};

/// Schema migrations, oldest first. The store's `user_version` is the number applied; append
/// new ones at the end, never edit a published one.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration::Sql(SCHEMA_V1),
    Migration::Sql(SCHEMA_V2),
    Migration::Sql(SCHEMA_V3),
    Migration::Code(columns_v4),
    Migration::Sql(super::notifications::SCHEMA),
    Migration::Sql(SCHEMA_V6),
    Migration::Sql(super::cluster_days::SCHEMA),
];

/// Version 6: who issued each site's certificate, as its latest check saw it.
pub(super) const SCHEMA_V6: &str = "ALTER TABLE sites ADD COLUMN cert_issuer TEXT;";

pub(super) enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> Result<(), DataError>),
}

pub(super) const SCHEMA_V1: &str = "
-- Sites as last seen by a run; results refer to them by `key` so each result row stays small.
CREATE TABLE sites (
    key      INTEGER PRIMARY KEY,
    site_id  TEXT NOT NULL UNIQUE,
    customer TEXT NOT NULL,
    cluster  TEXT NOT NULL,
    hostname TEXT NOT NULL
);
CREATE INDEX sites_by_cluster ON sites (cluster);

-- `valid` is NULL until the run finishes (and an unfinished run is never committed).
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    vantage        TEXT NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER,
    valid          INTEGER,
    invalid_reason TEXT,
    checks         INTEGER NOT NULL DEFAULT 0,
    failures       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_start ON runs (started_at_ms);

CREATE TABLE results (
    run_id         INTEGER NOT NULL REFERENCES runs (id),
    site_key       INTEGER NOT NULL REFERENCES sites (key),
    check_kind     INTEGER NOT NULL,
    outcome        INTEGER NOT NULL,
    started_at_ms  INTEGER NOT NULL,
    attempts       INTEGER NOT NULL,
    http_status    INTEGER,
    dns_us         INTEGER,
    connect_us     INTEGER,
    tls_us         INTEGER,
    first_byte_us  INTEGER,
    total_us       INTEGER NOT NULL,
    cert_not_after INTEGER,
    detail         TEXT,
    PRIMARY KEY (run_id, site_key, check_kind)
) WITHOUT ROWID;
-- A site's history; a cluster's history goes through sites_by_cluster and this.
CREATE INDEX results_by_site ON results (site_key, run_id);
-- Failures are rare, so this stays small and lets failed-only reads skip the successes.
CREATE INDEX results_failed ON results (run_id, site_key) WHERE outcome <> 0;

CREATE TABLE histograms (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    cluster    TEXT NOT NULL,
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    PRIMARY KEY (run_id, cluster, check_kind, phase)
) WITHOUT ROWID;

-- Names of the codes, refreshed by every run, only for results_view.
CREATE TABLE outcome_names (code INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE check_names (code INTEGER PRIMARY KEY, name TEXT NOT NULL);

CREATE VIEW results_view AS
SELECT r.run_id, u.vantage, s.site_id, s.customer, s.cluster, s.hostname,
       coalesce(c.name, r.check_kind) AS check_kind,
       coalesce(o.name, r.outcome) AS outcome,
       strftime('%Y-%m-%dT%H:%M:%fZ', r.started_at_ms / 1000.0, 'unixepoch') AS started_at,
       r.attempts, r.http_status, r.dns_us, r.connect_us, r.tls_us, r.first_byte_us, r.total_us,
       datetime(r.cert_not_after, 'unixepoch') AS cert_not_after,
       r.detail
FROM results r
JOIN runs u ON u.id = r.run_id
JOIN sites s ON s.key = r.site_key
LEFT JOIN check_names c ON c.code = r.check_kind
LEFT JOIN outcome_names o ON o.code = r.outcome;
";

/// Latency rollups. Rows are replaced whole when their bucket is rolled up again, so a rollup
/// is a function of the stored runs and running it twice changes nothing.
pub(super) const SCHEMA_V2: &str = "
-- Hour (resolution 1) and day (2) histograms per cluster, merged from the per-run histograms
-- of valid runs; bucket_ms is the start of the UTC hour or day.
CREATE TABLE latency_rollups (
    resolution INTEGER NOT NULL,
    cluster    TEXT NOT NULL,
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    PRIMARY KEY (resolution, cluster, check_kind, phase, bucket_ms)
) WITHOUT ROWID;
CREATE INDEX latency_rollups_by_time ON latency_rollups (resolution, bucket_ms);

-- Day histograms per site, built from the successful results of valid runs.
CREATE TABLE site_latency_days (
    site_key   INTEGER NOT NULL REFERENCES sites (key),
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    day_ms     INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    PRIMARY KEY (site_key, check_kind, phase, day_ms)
) WITHOUT ROWID;
CREATE INDEX site_latency_days_by_day ON site_latency_days (day_ms);

-- Buckets that received a valid run since they were last rolled up: level 1 an hour, 2 a day
-- (clusters), 3 a day (sites; next_site_key is where a half-built pass goes on).
CREATE TABLE rollups_pending (
    level         INTEGER NOT NULL,
    bucket_ms     INTEGER NOT NULL,
    next_site_key INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (level, bucket_ms)
) WITHOUT ROWID;
-- Runs stored before this version are rolled up by the next rollup.
INSERT OR IGNORE INTO rollups_pending (level, bucket_ms)
SELECT DISTINCT 1, started_at_ms / 3600000 * 3600000 FROM runs WHERE valid = 1;
INSERT OR IGNORE INTO rollups_pending (level, bucket_ms)
SELECT DISTINCT level, started_at_ms / 86400000 * 86400000 FROM runs, (SELECT 2 AS level UNION SELECT 3)
WHERE valid = 1;
";

pub(super) const SCHEMA_V3: &str = "
-- Updates people post about an incident (`fleetprobe incident update`), shown on the status page
-- and in its feed. `incident_id` is the incident's stable id, e.g. fra-1-20261014T2200.
CREATE TABLE incident_updates (
    id            INTEGER PRIMARY KEY,
    incident_id   TEXT NOT NULL,
    posted_at_ms  INTEGER NOT NULL,
    text          TEXT NOT NULL,
    title         TEXT,
    cause         TEXT
);
CREATE INDEX incident_updates_by_time ON incident_updates (posted_at_ms);
";

/// Version 4: results as per-run columns. Existing results are converted run by run, then the
/// row table goes.
const SCHEMA_V4: &str = "
-- Who a run checked and when each check usually starts (columns.rs); shared by runs.
CREATE TABLE rosters (
    id     INTEGER PRIMARY KEY,
    hash   INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    roster BLOB NOT NULL
);
CREATE INDEX rosters_by_hash ON rosters (hash);
CREATE TABLE run_results (
    run_id    INTEGER PRIMARY KEY REFERENCES runs (id),
    roster_id INTEGER NOT NULL REFERENCES rosters (id),
    outcomes  BLOB NOT NULL,
    details   BLOB NOT NULL
);
CREATE TABLE result_details (
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    site_key   INTEGER NOT NULL REFERENCES sites (key),
    check_kind INTEGER NOT NULL,
    detail     TEXT NOT NULL,
    PRIMARY KEY (run_id, site_key, check_kind)
) WITHOUT ROWID;
-- A site's certificate expiry from run `from_run` on (until its next row).
CREATE TABLE site_certs (
    site_key  INTEGER NOT NULL REFERENCES sites (key),
    from_run  INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    PRIMARY KEY (site_key, from_run)
) WITHOUT ROWID;
ALTER TABLE sites ADD COLUMN cert_not_after INTEGER;

-- Histogram blobs are hundreds of bytes to kilobytes: in WITHOUT ROWID tables each took up to
-- several times its size. Ordinary tables with the key as a unique index keep them packed.
CREATE TABLE histograms_v4 (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id),
    cluster    TEXT NOT NULL,
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    UNIQUE (run_id, cluster, check_kind, phase)
);
INSERT INTO histograms_v4 (run_id, cluster, check_kind, phase, hist)
SELECT run_id, cluster, check_kind, phase, hist FROM histograms;
DROP TABLE histograms;
ALTER TABLE histograms_v4 RENAME TO histograms;

CREATE TABLE latency_rollups_v4 (
    id         INTEGER PRIMARY KEY,
    resolution INTEGER NOT NULL,
    cluster    TEXT NOT NULL,
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    bucket_ms  INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    UNIQUE (resolution, cluster, check_kind, phase, bucket_ms)
);
INSERT INTO latency_rollups_v4 (resolution, cluster, check_kind, phase, bucket_ms, hist)
SELECT resolution, cluster, check_kind, phase, bucket_ms, hist FROM latency_rollups;
DROP TABLE latency_rollups;
ALTER TABLE latency_rollups_v4 RENAME TO latency_rollups;
CREATE INDEX latency_rollups_by_time ON latency_rollups (resolution, bucket_ms);

CREATE TABLE site_latency_days_v4 (
    id         INTEGER PRIMARY KEY,
    site_key   INTEGER NOT NULL REFERENCES sites (key),
    check_kind INTEGER NOT NULL,
    phase      INTEGER NOT NULL,
    day_ms     INTEGER NOT NULL,
    hist       BLOB NOT NULL,
    UNIQUE (site_key, check_kind, phase, day_ms)
);
INSERT INTO site_latency_days_v4 (site_key, check_kind, phase, day_ms, hist)
SELECT site_key, check_kind, phase, day_ms, hist FROM site_latency_days;
DROP TABLE site_latency_days;
ALTER TABLE site_latency_days_v4 RENAME TO site_latency_days;
CREATE INDEX site_latency_days_by_day ON site_latency_days (day_ms);
";

fn columns_v4(tx: &Transaction<'_>) -> Result<(), DataError> {
    tx.execute_batch(SCHEMA_V4)?;
    let runs: Vec<(RunId, i64)> = {
        let mut select = tx.prepare("SELECT id, started_at_ms FROM runs ORDER BY id")?;
        select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).and_then(|rows| rows.collect())?
    };
    let mut certs: HashMap<i64, i64> = HashMap::new();
    let mut previous: Option<StoredRoster> = None;
    let mut select = tx.prepare(
        "SELECT site_key, check_kind, outcome, started_at_ms, attempts, http_status, dns_us, connect_us, tls_us, \
             first_byte_us, total_us, cert_not_after, detail FROM results WHERE run_id = ?1",
    )?;
    for (run_id, started_at_ms) in runs {
        let mut block = BlockBuilder::default();
        let mut rows = select.query([run_id])?;
        while let Some(row) = rows.next()? {
            let site_key: i64 = row.get(0)?;
            let code: u8 = row.get(2)?;
            let outcome = Outcome::from_code(code)
                .ok_or_else(|| DataError::Data(format!("unknown outcome code {code} in run {run_id}")))?;
            let cert_not_after: Option<i64> = row.get(11)?;
            let result = columns::Row {
                site_key,
                check: check_kind(row.get(1)?)?,
                outcome,
                offset_ms: row.get::<_, i64>(3)? - started_at_ms,
                attempts: row.get(4)?,
                http_status: row.get(5)?,
                timings: Timings {
                    dns_us: row.get(6)?,
                    connect_us: row.get(7)?,
                    tls_us: row.get(8)?,
                    first_byte_us: row.get(9)?,
                    total_us: row.get(10)?,
                },
                has_cert: cert_not_after.is_some(),
            };
            block.push(result, cert_not_after, row.get(12)?);
        }
        previous = Some(block.write(tx, run_id, previous.as_ref(), &mut certs).map_err(|e| match e {
            WriteError::Sql(e) => DataError::Sql(e),
            WriteError::Invalid(m) => DataError::Data(m),
        })?);
    }
    tx.execute_batch("DROP VIEW results_view; DROP TABLE results; DROP TABLE outcome_names; DROP TABLE check_names;")?;
    Ok(())
}

/// The `application_id` of a fleetprobe store ("FLPR"), set when the schema is created or
/// upgraded, so another program's database is told apart before anything is written to it.
pub(super) const APPLICATION_ID: i64 = 0x464C_5052;

/// Refuses a file that is not a fleetprobe store, reading only: ours by its `application_id`;
/// without one (stores written before it was set), by its schema version and tables; an empty
/// database is a new store.
pub(super) fn check_ours(conn: &Connection, path: &Path) -> StoreResult<()> {
    let open_error = |message: String| StoreError::Open { path: path.display().to_string(), message };
    let read = |e: rusqlite::Error| open_error(sqlite_open_message(&e));
    let application_id: i64 = conn.query_row("PRAGMA application_id", [], |row| row.get(0)).map_err(read)?;
    if application_id == APPLICATION_ID {
        return Ok(());
    }
    let other = || open_error("the file is an SQLite database of another program, not a fleetprobe store".into());
    if application_id != 0 {
        return Err(other());
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).map_err(read)?;
    if tables == 0 {
        return Ok(());
    }
    let ours: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('runs', 'sites')", [], |row| {
            row.get(0)
        })
        .map_err(read)?;
    if user_version(conn).map_err(read)? >= 1 && ours == 2 { Ok(()) } else { Err(other()) }
}

pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the schema up to date, all steps in one transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> StoreResult<()> {
    let open_error = |message: String| StoreError::Open { path: path.display().to_string(), message };
    let sqlite_error = |e: rusqlite::Error| open_error(format!("cannot set up the schema: {e}"));
    let supported = MIGRATIONS.len() as i64;
    let too_new = |found| StoreError::TooNew { path: path.display().to_string(), found, supported };
    // Checked without a write lock first: a report opening the store while a sweep holds the
    // write transaction must not wait for it.
    let found = user_version(conn).map_err(|e| open_error(sqlite_open_message(&e)))?;
    if found > supported {
        return Err(too_new(found));
    }
    if found == supported {
        // Stores written before the application id was set get it now.
        let id: i64 = conn.query_row("PRAGMA application_id", [], |row| row.get(0)).map_err(sqlite_error)?;
        if id != APPLICATION_ID {
            conn.pragma_update(None, "application_id", APPLICATION_ID).map_err(sqlite_error)?;
        }
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_error)?;
    // Another process may have migrated between the first look and the lock.
    let found = user_version(&tx).map_err(sqlite_error)?;
    if found > supported {
        return Err(too_new(found));
    }
    if found == 0 {
        let tables: i64 =
            tx.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).map_err(sqlite_error)?;
        if tables > 0 {
            return Err(open_error("the file is an SQLite database of another program, not a fleetprobe store".into()));
        }
    }
    for step in MIGRATIONS.iter().skip(usize::try_from(found).unwrap_or(0)) {
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql).map_err(sqlite_error)?,
            Migration::Code(step) => step(&tx).map_err(|e| open_error(format!("cannot upgrade the schema: {e}")))?,
        }
    }
    tx.pragma_update(None, "user_version", supported).map_err(sqlite_error)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID).map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)
}
