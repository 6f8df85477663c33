//! The SQLite backend: the default store, one file next to the config.
//!
//! Third stage of the data flow: the sweep writes each run through a [`RunWriter`] in one
//! transaction, and reports read runs, results and histograms back. A month of one-minute runs
//! over 10,000 sites is 864 million results, so a run's results are one row of `run_results`:
//! columns encoded by `columns.rs` (a few bytes per result; the outcomes alone, which the
//! availability analysis reads, a few bytes per run). Sites are stored once and referred to by
//! an integer key. Beside the columns: the texts explaining results (`result_details`) and the
//! certificate expiry of each site when it changes (`site_certs`). `fleetprobe results` spells
//! everything out.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};

use super::*;

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, oldest first. The store's `user_version` is the number applied; append
/// new ones at the end, never edit a published one.
const MIGRATIONS: &[Migration] =
    &[Migration::Sql(SCHEMA_V1), Migration::Sql(SCHEMA_V2), Migration::Sql(SCHEMA_V3), Migration::Code(columns_v4)];

enum Migration {
    Sql(&'static str),
    Code(fn(&Transaction<'_>) -> Result<(), String>),
}

const SCHEMA_V1: &str = "
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
const SCHEMA_V2: &str = "
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

const SCHEMA_V3: &str = "
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

fn columns_v4(tx: &Transaction<'_>) -> Result<(), String> {
    tx.execute_batch(SCHEMA_V4).map_err(|e| e.to_string())?;
    let runs: Vec<(RunId, i64)> = {
        let mut select = tx.prepare("SELECT id, started_at_ms FROM runs ORDER BY id").map_err(|e| e.to_string())?;
        select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| e.to_string())?
    };
    let mut certs: HashMap<i64, i64> = HashMap::new();
    let mut previous: Option<StoredRoster> = None;
    let mut select = tx
        .prepare(
            "SELECT site_key, check_kind, outcome, started_at_ms, attempts, http_status, dns_us, connect_us, tls_us, \
             first_byte_us, total_us, cert_not_after, detail FROM results WHERE run_id = ?1",
        )
        .map_err(|e| e.to_string())?;
    for (run_id, started_at_ms) in runs {
        let mut block = BlockBuilder::default();
        let mut rows = select.query([run_id]).map_err(|e| e.to_string())?;
        while let Some(row) = rows.next().map_err(|e| e.to_string())? {
            let site_key: i64 = row.get(0).map_err(|e| e.to_string())?;
            let code: u8 = row.get(2).map_err(|e| e.to_string())?;
            let outcome =
                Outcome::from_code(code).ok_or_else(|| format!("unknown outcome code {code} in run {run_id}"))?;
            let cert_not_after: Option<i64> = row.get(11).map_err(|e| e.to_string())?;
            let result = columns::Row {
                site_key,
                check: check_kind(row.get(1).map_err(|e| e.to_string())?)?,
                outcome,
                offset_ms: row.get::<_, i64>(3).map_err(|e| e.to_string())? - started_at_ms,
                attempts: row.get(4).map_err(|e| e.to_string())?,
                http_status: row.get(5).map_err(|e| e.to_string())?,
                timings: Timings {
                    dns_us: row.get(6).map_err(|e| e.to_string())?,
                    connect_us: row.get(7).map_err(|e| e.to_string())?,
                    tls_us: row.get(8).map_err(|e| e.to_string())?,
                    first_byte_us: row.get(9).map_err(|e| e.to_string())?,
                    total_us: row.get(10).map_err(|e| e.to_string())?,
                },
                has_cert: cert_not_after.is_some(),
            };
            block.push(result, cert_not_after, row.get(12).map_err(|e| e.to_string())?);
        }
        previous = Some(block.write(tx, run_id, previous.as_ref(), &mut certs).map_err(|e| match e {
            WriteError::Sql(e) => e.to_string(),
            WriteError::Invalid(m) => m,
        })?);
    }
    tx.execute_batch("DROP VIEW results_view; DROP TABLE results; DROP TABLE outcome_names; DROP TABLE check_names;")
        .map_err(|e| e.to_string())
}

/// Levels of `rollups_pending`.
const PENDING_HOUR: i64 = 1;
const PENDING_DAY: i64 = 2;
const PENDING_SITE_DAY: i64 = 3;

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (not its directory) and the schema if needed.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let open_error = |message: String| StoreError::Open { path: path.display().to_string(), message };
        check_location(path).map_err(open_error)?;
        // No SQLITE_OPEN_URI: a file name containing '?' is a file name.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(sqlite_open_message(&e)))?;
        configure(&conn).map_err(open_error)?;
        // SQLite silently falls back to read-only for a write-protected file; the prober must write.
        if conn.is_readonly("main").map_err(|e| open_error(sqlite_open_message(&e)))? {
            return Err(open_error("the file is read-only; the store must be writable".into()));
        }
        migrate(&mut conn, path)?;
        Ok(SqliteStore { conn, path: path.to_path_buf() })
    }

    fn query_error(&self, what: &str, e: rusqlite::Error) -> StoreError {
        read_error(&self.path, what, e)
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt { path: self.location(), message }
    }
}

/// Turns the common mistakes into messages before SQLite's terse "unable to open database file".
fn check_location(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(format!("directory {} does not exist", dir.display())),
        Err(e) => return Err(format!("cannot use directory {}: {e}", dir.display())),
        Ok(meta) if !meta.is_dir() => return Err(format!("{} is not a directory", dir.display())),
        Ok(_) => {}
    }
    if path.is_dir() {
        return Err("this is a directory; give a file path such as fleetprobe.db".into());
    }
    // Creating the file here reports the operating system's reason (permission, read-only file
    // system); SQLite would only say it cannot open it. An empty file is an empty database.
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create the file: {e}")),
    }
}

fn sqlite_open_message(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => format!("the file is not an SQLite database ({e})"),
        // Typically the -wal and -shm files beside it cannot be created.
        Some(ErrorCode::CannotOpen) => {
            format!("cannot open the file and its -wal/-shm files; is the directory writable? ({e})")
        }
        _ => e.to_string(),
    }
}

fn configure(conn: &Connection) -> Result<(), String> {
    let message = |e| sqlite_open_message(&e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(message)?;
    // WAL lets reports read while a sweep writes; NORMAL is durable across application crashes
    // and only risks the last commits on power loss, which is fine for one-minute runs.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(message)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("cannot switch to WAL journal mode (still {mode})"));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(message)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Brings the schema up to date, all steps in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> StoreResult<()> {
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
            Migration::Code(step) => step(&tx).map_err(|m| open_error(format!("cannot upgrade the schema: {m}")))?,
        }
    }
    tx.pragma_update(None, "user_version", supported).map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)
}

/// Errors while reading: a value that does not fit its type means the file holds bad data.
fn read_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    let path = path.display().to_string();
    match e {
        rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..) => {
            StoreError::Corrupt { path, message: format!("{what}: {e}") }
        }
        _ => StoreError::Query { path, message: format!("cannot read {what}: {e}") },
    }
}

/// Writes one run inside a transaction; dropping it rolls the transaction back.
struct SqliteRunWriter<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
    run_id: RunId,
    started_at_ms: i64,
    /// Store key of each site, indexed like the `sites` given to `begin_run`.
    site_keys: Vec<i64>,
    /// The certificate expiry each site had last, by store key.
    certs: HashMap<i64, i64>,
    /// The roster of this prober's last run, whose base offsets this run keeps where it can.
    previous: Option<StoredRoster>,
    block: BlockBuilder,
}

/// A run from the first eight columns of a row: id, vantage, started_at_ms, finished_at_ms,
/// valid, invalid_reason, checks, failures.
fn run_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRun> {
    Ok(StoredRun {
        id: row.get(0)?,
        vantage: row.get(1)?,
        started_at_ms: row.get(2)?,
        finished_at_ms: row.get(3)?,
        valid: row.get(4)?,
        invalid_reason: row.get(5)?,
        checks: row.get(6)?,
        failures: row.get(7)?,
    })
}

/// A roster as stored, decoded.
struct StoredRoster {
    id: i64,
    roster: columns::Roster,
}

/// A stable 64-bit FNV-1a hash of a roster's bytes, to find an equal stored roster.
fn roster_hash(bytes: &[u8]) -> i64 {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    hash as i64
}

/// The roster of `vantage`'s latest run, if it has one.
fn latest_roster(tx: &Transaction<'_>, vantage: &str) -> Result<Option<StoredRoster>, DataError> {
    let found = tx
        .query_row(
            "SELECT r.id, r.count, r.roster FROM runs u JOIN run_results b ON b.run_id = u.id \
             JOIN rosters r ON r.id = b.roster_id WHERE u.vantage = ?1 ORDER BY u.id DESC LIMIT 1",
            [vantage],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Vec<u8>>(2)?)),
        )
        .optional()?;
    let Some((id, count, bytes)) = found else { return Ok(None) };
    let roster = columns::decode_roster(&bytes, usize::try_from(count).unwrap_or(0))
        .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
    Ok(Some(StoredRoster { id, roster }))
}

fn write_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Query { path: path.display().to_string(), message: format!("cannot write {what}: {e}") }
}

/// A run's results gathered for [`columns::encode`], with what is kept beside the columns.
#[derive(Default)]
struct BlockBuilder {
    rows: Vec<columns::Row>,
    /// (site key, check code, expiry), for results that carried a certificate.
    certs: Vec<(i64, i64)>,
    details: Vec<(i64, u8, String)>,
}

enum WriteError {
    Sql(rusqlite::Error),
    /// The run cannot be stored as given (two results for one check), or its own encoding
    /// does not read back.
    Invalid(String),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

impl BlockBuilder {
    fn push(&mut self, row: columns::Row, cert_not_after: Option<i64>, detail: Option<String>) {
        if let Some(cert) = cert_not_after {
            self.certs.push((row.site_key, cert));
        }
        if let Some(detail) = detail {
            self.details.push((row.site_key, row.check.code(), detail));
        }
        self.rows.push(row);
    }

    /// Writes the run's columns, details and changed certificates; `certs` (each site's latest
    /// expiry) is brought up to date. Returns the run's roster.
    fn write(
        mut self,
        tx: &Transaction<'_>,
        run_id: RunId,
        previous: Option<&StoredRoster>,
        certs: &mut HashMap<i64, i64>,
    ) -> Result<StoredRoster, WriteError> {
        let block = columns::encode(&mut self.rows, previous.map(|p| &p.roster));
        if let Some(pair) =
            self.rows.windows(2).find(|pair| (pair[0].site_key, pair[0].check) == (pair[1].site_key, pair[1].check))
        {
            return Err(WriteError::Invalid(format!(
                "two {} results for site #{} in run {run_id}",
                pair[0].check, pair[0].site_key
            )));
        }
        let (roster_id, stored) = match (&block.roster, previous) {
            (None, Some(previous)) => (previous.id, None),
            (None, None) => unreachable!("encode gives a roster when there is no previous one"),
            (Some(bytes), _) => {
                let hash = roster_hash(bytes);
                let found: Option<i64> = tx
                    .prepare_cached("SELECT id FROM rosters WHERE hash = ?1 AND count = ?2 AND roster = ?3")?
                    .query_row(params![hash, block.count as i64, bytes], |row| row.get(0))
                    .optional()?;
                let id = match found {
                    Some(id) => id,
                    None => {
                        tx.prepare_cached("INSERT INTO rosters (hash, count, roster) VALUES (?1, ?2, ?3)")?
                            .execute(params![hash, block.count as i64, bytes])?;
                        tx.last_insert_rowid()
                    }
                };
                (id, Some(bytes.clone()))
            }
        };
        tx.prepare_cached("INSERT INTO run_results (run_id, roster_id, outcomes, details) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![run_id, roster_id, block.outcomes, block.details])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO result_details (run_id, site_key, check_kind, detail) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (site_key, check, detail) in &self.details {
            insert.execute(params![run_id, site_key, check, detail])?;
        }
        // Expiry dates change a few times a year: a row only when one does.
        let mut insert =
            tx.prepare_cached("INSERT OR REPLACE INTO site_certs (site_key, from_run, not_after) VALUES (?1, ?2, ?3)")?;
        let mut update = tx.prepare_cached("UPDATE sites SET cert_not_after = ?2 WHERE key = ?1")?;
        for &(site_key, not_after) in &self.certs {
            if certs.get(&site_key) != Some(&not_after) {
                insert.execute(params![site_key, run_id, not_after])?;
                update.execute(params![site_key, not_after])?;
                certs.insert(site_key, not_after);
            }
        }
        match (stored, previous) {
            (Some(bytes), _) => {
                let roster = columns::decode_roster(&bytes, block.count).map_err(WriteError::Invalid)?;
                Ok(StoredRoster { id: roster_id, roster })
            }
            (None, Some(previous)) => Ok(StoredRoster { id: previous.id, roster: previous.roster.clone() }),
            (None, None) => unreachable!("encode gives a roster when there is no previous one"),
        }
    }
}

impl RunWriter for SqliteRunWriter<'_> {
    fn insert(&mut self, result: &CheckResult) -> StoreResult<()> {
        let Some(&site_key) = self.site_keys.get(result.site) else {
            return Err(StoreError::Query {
                path: self.path.display().to_string(),
                message: format!("result for site #{} but the run has {} sites", result.site, self.site_keys.len()),
            });
        };
        let row = columns::Row {
            site_key,
            check: result.check,
            outcome: result.outcome,
            offset_ms: result.started_at_ms - self.started_at_ms,
            attempts: result.attempts,
            http_status: result.http_status,
            timings: result.timings,
            has_cert: result.cert_not_after.is_some(),
        };
        self.block.push(row, result.cert_not_after, result.detail.clone());
        Ok(())
    }

    fn finish(self: Box<Self>, summary: &RunSummary, histograms: &[HistogramRecord]) -> StoreResult<RunId> {
        let SqliteRunWriter { tx, path, run_id, started_at_ms, mut certs, previous, block, .. } = *self;
        block.write(&tx, run_id, previous.as_ref(), &mut certs).map_err(|e| match e {
            WriteError::Sql(e) => write_error(path, "results", e),
            WriteError::Invalid(message) => StoreError::Query { path: path.display().to_string(), message },
        })?;
        tx.execute(
            "UPDATE runs SET finished_at_ms = ?2, valid = ?3, invalid_reason = ?4, checks = ?5, failures = ?6 \
             WHERE id = ?1",
            params![
                run_id,
                summary.finished_at_ms,
                summary.valid,
                summary.invalid_reason,
                summary.checks,
                summary.failures
            ],
        )
        .map_err(|e| write_error(path, "run summary", e))?;
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO histograms (run_id, cluster, check_kind, phase, hist) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(|e| write_error(path, "histograms", e))?;
            for h in histograms {
                let blob = histogram::encode(&h.histogram);
                insert
                    .execute(params![run_id, h.cluster, h.check.code(), h.phase.code(), blob])
                    .map_err(|e| write_error(path, "histograms", e))?;
            }
        }
        if summary.valid {
            // The run's hour and day must be rolled up (again) once they are over; a new run in
            // a day whose site pass is under way starts that pass over.
            tx.execute(
                "INSERT INTO rollups_pending (level, bucket_ms) VALUES (?1, ?2), (?3, ?4), (?5, ?4) \
                 ON CONFLICT (level, bucket_ms) DO UPDATE SET next_site_key = 0",
                params![
                    PENDING_HOUR,
                    rollup::bucket_start(started_at_ms, rollup::HOUR_MS),
                    PENDING_DAY,
                    rollup::bucket_start(started_at_ms, rollup::DAY_MS),
                    PENDING_SITE_DAY
                ],
            )
            .map_err(|e| write_error(path, "pending rollups", e))?;
        }
        tx.commit().map_err(|e| write_error(path, "run (commit)", e))?;
        Ok(run_id)
    }
}

/// Inserts new sites and updates changed ones; returns the key of each given site, in order.
/// Reads the table once so an unchanged fleet of 100,000 sites costs no writes.
fn upsert_sites(tx: &Transaction<'_>, sites: &[SiteRecord]) -> rusqlite::Result<(Vec<i64>, HashMap<i64, i64>)> {
    let mut known: HashMap<String, (i64, SiteRecord)> = HashMap::new();
    let mut certs = HashMap::new();
    {
        let mut select = tx.prepare("SELECT key, site_id, customer, cluster, hostname, cert_not_after FROM sites")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let site =
                SiteRecord { id: row.get(1)?, customer: row.get(2)?, cluster: row.get(3)?, hostname: row.get(4)? };
            let key: i64 = row.get(0)?;
            if let Some(cert) = row.get::<_, Option<i64>>(5)? {
                certs.insert(key, cert);
            }
            known.insert(site.id.clone(), (key, site));
        }
    }
    let mut insert = tx.prepare("INSERT INTO sites (site_id, customer, cluster, hostname) VALUES (?1, ?2, ?3, ?4)")?;
    let mut update = tx.prepare("UPDATE sites SET customer = ?2, cluster = ?3, hostname = ?4 WHERE key = ?1")?;
    let mut keys = Vec::with_capacity(sites.len());
    for site in sites {
        let key = match known.get(&site.id) {
            Some((key, stored)) if stored == site => *key,
            Some((key, _)) => {
                update.execute(params![key, site.customer, site.cluster, site.hostname])?;
                *key
            }
            None => {
                insert.execute(params![site.id, site.customer, site.cluster, site.hostname])?;
                tx.last_insert_rowid()
            }
        };
        // Keeps a site listed twice consistent with whichever record came last.
        known.insert(site.id.clone(), (key, site.clone()));
        keys.push(key);
    }
    Ok((keys, certs))
}

impl Store for SqliteStore {
    fn begin_run<'a>(&'a mut self, meta: &RunMeta, sites: &[SiteRecord]) -> StoreResult<Box<dyn RunWriter + 'a>> {
        let path = self.path.as_path();
        let error = |e| write_error(path, "run start", e);
        // Immediate: take the write lock now (waiting up to the busy timeout), not halfway through.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
        tx.execute(
            "INSERT INTO runs (vantage, started_at_ms) VALUES (?1, ?2)",
            params![meta.vantage, meta.started_at_ms],
        )
        .map_err(error)?;
        let run_id = tx.last_insert_rowid();
        let (site_keys, certs) = upsert_sites(&tx, sites).map_err(|e| write_error(path, "sites", e))?;
        let previous = latest_roster(&tx, &meta.vantage).map_err(|e| match e {
            DataError::Sql(e) => write_error(path, "run start", e),
            DataError::Data(message) => StoreError::Corrupt { path: path.display().to_string(), message },
            DataError::Store(e) => e,
        })?;
        Ok(Box::new(SqliteRunWriter {
            tx,
            path,
            run_id,
            started_at_ms: meta.started_at_ms,
            site_keys,
            certs,
            previous,
            block: BlockBuilder::default(),
        }))
    }

    fn runs(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>> {
        let mut sql = String::from(
            "SELECT id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, failures \
             FROM runs WHERE valid IS NOT NULL",
        );
        let mut args = Vec::new();
        push_time_range(&mut sql, &mut args, "started_at_ms", from_ms, to_ms);
        sql.push_str(" ORDER BY started_at_ms, id");
        let error = |e| self.query_error("runs", e);
        let mut select = self.conn.prepare(&sql).map_err(error)?;
        let rows = select.query_map(rusqlite::params_from_iter(args), run_from_row).map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }

    fn results(&self, filter: &ResultFilter, each: &mut dyn FnMut(StoredResult) -> StoreResult<()>) -> StoreResult<()> {
        let sites = self.sites()?;
        // The site keys asked for, when a site or cluster narrows the selection.
        let wanted: Option<std::collections::HashSet<i64>> = match (&filter.site_id, &filter.cluster) {
            (None, None) => None,
            (site, cluster) => Some(
                sites
                    .iter()
                    .filter(|(_, s)| site.as_ref().is_none_or(|id| &s.id == id))
                    .filter(|(_, s)| cluster.as_ref().is_none_or(|c| &s.cluster == c))
                    .map(|(&key, _)| key)
                    .collect(),
            ),
        };
        if wanted.as_ref().is_some_and(|w| w.is_empty()) {
            return Ok(());
        }
        let mut sql = String::from("1 = 1");
        let mut args = Vec::new();
        if let Some(run_id) = filter.run_id {
            sql.push_str(" AND u.id = ?");
            args.push(Value::Integer(run_id));
        }
        push_time_range(&mut sql, &mut args, "u.started_at_ms", filter.from_ms, filter.to_ms);
        let mut left = filter.limit.unwrap_or(usize::MAX);
        let mut rosters = RosterCache::default();
        let mut certs: Option<HashMap<i64, Vec<(RunId, i64)>>> = None;
        for_each_block(&self.conn, &sql, rusqlite::params_from_iter(args), &mut |block| {
            if left == 0 {
                return Ok(false);
            }
            let roster = rosters.get(&self.conn, block.roster_id)?;
            let failed = if filter.failed_only {
                let failed = block.failed(&roster)?;
                if failed.is_empty() {
                    return Ok(true);
                }
                Some(failed.into_iter().map(|(i, _)| i).collect::<std::collections::HashSet<_>>())
            } else {
                None
            };
            let keys = &roster.keys;
            let matching: Vec<usize> = (0..keys.len())
                .filter(|i| failed.as_ref().is_none_or(|f| f.contains(i)))
                .filter(|&i| wanted.as_ref().is_none_or(|w| w.contains(&keys[i].0)))
                .take(left)
                .collect();
            if matching.is_empty() {
                return Ok(true);
            }
            let first = matching[0];
            let rows = block.rows_in(&roster, first..matching[matching.len() - 1] + 1)?;
            let details = self.run_details(block.run_id).map_err(DataError::Store)?;
            let certs = match &mut certs {
                Some(certs) => certs,
                None => certs.insert(self.site_certs().map_err(DataError::Store)?),
            };
            for i in matching {
                let row = &rows[i - first];
                let site = sites.get(&row.site_key).ok_or_else(|| {
                    DataError::Data(format!("run {}: unknown site key {}", block.run_id, row.site_key))
                })?;
                let cert_not_after = row
                    .has_cert
                    .then(|| certs.get(&row.site_key).and_then(|history| cert_at(history, block.run_id)))
                    .flatten();
                each(StoredResult {
                    run_id: block.run_id,
                    site: site.clone(),
                    check: row.check,
                    outcome: row.outcome,
                    started_at_ms: block.started_at_ms + row.offset_ms,
                    attempts: row.attempts,
                    http_status: row.http_status,
                    timings: row.timings,
                    cert_not_after,
                    detail: details.get(&(row.site_key, row.check.code())).cloned(),
                })
                .map_err(DataError::Store)?;
                left -= 1;
            }
            Ok(left > 0)
        })
        .map_err(|e| self.data_error("results", e))
    }

    fn site_keys(&self) -> StoreResult<Vec<(i64, String)>> {
        let error = |e| self.query_error("sites", e);
        let mut select = self.conn.prepare_cached("SELECT key, site_id FROM sites").map_err(error)?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(error)
    }

    fn run_outcomes(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut sql = String::from(
            "SELECT u.id, u.vantage, u.started_at_ms, u.finished_at_ms, u.valid, u.invalid_reason, u.checks, \
             u.failures, b.roster_id, b.outcomes FROM runs u LEFT JOIN run_results b ON b.run_id = u.id \
             WHERE u.valid IS NOT NULL",
        );
        let mut args = Vec::new();
        push_time_range(&mut sql, &mut args, "u.started_at_ms", from_ms, to_ms);
        sql.push_str(" ORDER BY u.started_at_ms, u.id");
        let error = |e| self.query_error("runs", e);
        let mut select = self.conn.prepare(&sql).map_err(error)?;
        let mut rows = select.query(rusqlite::params_from_iter(args)).map_err(error)?;
        let mut rosters = RosterCache::default();
        let empty = std::sync::Arc::new(Roster::new());
        while let Some(row) = rows.next().map_err(error)? {
            let run = run_from_row(row).map_err(error)?;
            let outcomes = match row.get::<_, Option<i64>>(8).map_err(error)? {
                None => RunOutcomes { roster: empty.clone(), failed: Vec::new() },
                Some(roster_id) => {
                    let roster = rosters.get(&self.conn, roster_id).map_err(|e| self.data_error("results", e))?;
                    let outcome_runs = row.get_ref(9).and_then(|v| Ok(v.as_blob()?)).map_err(error)?;
                    let corrupt = |m: String| self.corrupt(format!("results of run {}: {m}", run.id));
                    RunOutcomes {
                        failed: failed_rows(outcome_runs, roster.keys.len()).map_err(corrupt)?,
                        roster: roster.keys.clone(),
                    }
                }
            };
            each(&run, &outcomes)?;
        }
        Ok(())
    }

    fn run_histograms(&self, run_id: RunId) -> StoreResult<Vec<HistogramRecord>> {
        let error = |e| self.query_error("histograms", e);
        let mut select = self
            .conn
            .prepare(
                "SELECT cluster, check_kind, phase, hist FROM histograms WHERE run_id = ?1 \
                 ORDER BY cluster, check_kind, phase",
            )
            .map_err(error)?;
        let mut rows = select.query([run_id]).map_err(error)?;
        let mut records = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            let cluster: String = row.get(0).map_err(error)?;
            let check = check_kind(row.get(1).map_err(error)?).map_err(|m| self.corrupt(m))?;
            let phase_code: u8 = row.get(2).map_err(error)?;
            let phase = Phase::from_code(phase_code)
                .ok_or_else(|| self.corrupt(format!("unknown phase code {phase_code} in run {run_id}")))?;
            let blob: Vec<u8> = row.get(3).map_err(error)?;
            let histogram = histogram::decode(&blob)
                .map_err(|m| self.corrupt(format!("run {run_id}, {cluster} {check} {}: {m}", phase.as_str())))?;
            records.push(HistogramRecord { cluster, check, phase, histogram });
        }
        Ok(records)
    }

    fn latency_histograms(
        &self,
        query: &LatencyQuery,
        each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let pending = self.pending()?;
        let site_key = match &query.scope {
            LatencyScope::Cluster(_) => None,
            LatencyScope::Site(id) => {
                let key = self
                    .conn
                    .query_row("SELECT key FROM sites WHERE site_id = ?1", [id], |row| row.get::<_, i64>(0))
                    .optional()
                    .map_err(|e| self.query_error("sites", e))?;
                match key {
                    Some(key) => Some(key),
                    // A site never probed has no latencies.
                    None => return Ok(()),
                }
            }
        };
        for (start_ms, end_ms) in rollup::output_buckets(query.from_ms, query.to_ms, query.bucket_ms) {
            let mut sum: Option<Histogram<u64>> = None;
            for piece in rollup::cover(start_ms, end_ms, &pending, site_key.is_some()) {
                self.read_piece(query, site_key, piece, &mut |histogram| match &mut sum {
                    Some(sum) => rollup::merge(sum, &histogram).map_err(|m| self.corrupt(m)),
                    None => {
                        sum = Some(histogram);
                        Ok(())
                    }
                })?;
            }
            if let Some(histogram) = sum.filter(|h| !h.is_empty()) {
                each(TimedHistogram { start_ms, end_ms, histogram })?;
            }
        }
        Ok(())
    }

    fn rollup(&mut self, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats> {
        let mut stats = RollupStats::default();
        let path = self.path.clone();
        let error = |e| write_error(&path, "latency rollups", e);
        let corrupt = |message: String| StoreError::Corrupt { path: path.display().to_string(), message };
        {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
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
        let due = pending_due(&self.conn, PENDING_SITE_DAY, rollup::DAY_MS, now_ms).map_err(error)?;
        for (i, (day, next_site_key)) in due.iter().enumerate() {
            let mut next = *next_site_key;
            loop {
                if budget == 0 {
                    stats.site_days_unfinished = due.len() - i;
                    return Ok(stats);
                }
                let chunk = budget.min(SITE_CHUNK);
                let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
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

    fn prune(&mut self, now_ms: i64, retention: &Retention, run_budget: Option<usize>) -> StoreResult<PruneStats> {
        let path = self.path.clone();
        let error = |e| write_error(&path, "pruned data", e);
        let cutoff = |kept: Duration| now_ms.saturating_sub(i64::try_from(kept.as_millis()).unwrap_or(i64::MAX));
        let raw_cutoff = cutoff(retention.raw);
        let mut stats = PruneStats::default();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(error)?;
        // Runs whose hour or day still waits for its rollup stay until it is done.
        let runs: Vec<RunId> = {
            let mut select = tx
                .prepare(
                    "SELECT id FROM runs u WHERE started_at_ms < ?1 AND NOT EXISTS (\
                     SELECT 1 FROM rollups_pending p WHERE \
                     (p.level = 1 AND p.bucket_ms = u.started_at_ms / 3600000 * 3600000) OR \
                     (p.level IN (2, 3) AND p.bucket_ms = u.started_at_ms / 86400000 * 86400000)) \
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

    fn add_incident_update(&mut self, update: &IncidentUpdate) -> StoreResult<()> {
        self.conn
            .execute(
                "INSERT INTO incident_updates (incident_id, posted_at_ms, text, title, cause) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![update.incident_id, update.posted_at_ms, update.text, update.title, update.cause],
            )
            .map(|_| ())
            .map_err(|e| write_error(&self.path, "incident update", e))
    }

    fn incident_updates(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<IncidentUpdate>> {
        let error = |e| self.query_error("incident updates", e);
        let mut select = self
            .conn
            .prepare_cached(
                "SELECT incident_id, posted_at_ms, text, title, cause FROM incident_updates \
                 WHERE posted_at_ms >= ?1 AND posted_at_ms < ?2 ORDER BY posted_at_ms, id",
            )
            .map_err(error)?;
        let rows = select
            .query_map(params![from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX)], |row| {
                Ok(IncidentUpdate {
                    incident_id: row.get(0)?,
                    posted_at_ms: row.get(1)?,
                    text: row.get(2)?,
                    title: row.get(3)?,
                    cause: row.get(4)?,
                })
            })
            .map_err(error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(error)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// Sites per transaction when building site days.
const SITE_CHUNK: usize = 500;

/// What can go wrong while reading stored data inside a longer operation.
enum DataError {
    Sql(rusqlite::Error),
    /// The stored data does not decode.
    Data(String),
    /// Raised by a caller's callback, passed through as is.
    Store(StoreError),
}

impl From<rusqlite::Error> for DataError {
    fn from(e: rusqlite::Error) -> Self {
        DataError::Sql(e)
    }
}

impl From<rusqlite::types::FromSqlError> for DataError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        DataError::Data(format!("a stored run's columns are not blobs: {e}"))
    }
}

/// One run's stored columns, borrowed from the row being read.
struct BlockRef<'a> {
    run_id: RunId,
    started_at_ms: i64,
    roster_id: i64,
    outcomes: &'a [u8],
    details: &'a [u8],
}

impl BlockRef<'_> {
    fn failed(&self, roster: &columns::Roster) -> Result<Vec<(usize, Outcome)>, DataError> {
        failed_rows(self.outcomes, roster.keys.len())
            .map_err(|m| DataError::Data(format!("results of run {}: {m}", self.run_id)))
    }

    fn rows(&self, roster: &columns::Roster) -> Result<Vec<columns::Row>, DataError> {
        self.rows_in(roster, 0..roster.keys.len())
    }

    /// The rows in `range` (row indexes), inflating only the segments they are in.
    fn rows_in(&self, roster: &columns::Roster, range: std::ops::Range<usize>) -> Result<Vec<columns::Row>, DataError> {
        columns::decode_rows(roster, self.outcomes, self.details, range)
            .map_err(|m| DataError::Data(format!("results of run {}: {m}", self.run_id)))
    }
}

/// Calls `each` with the stored columns of every run matching `condition` (on `runs u`), in run
/// order, until it returns false.
fn for_each_block(
    conn: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
    each: &mut dyn FnMut(BlockRef<'_>) -> Result<bool, DataError>,
) -> Result<(), DataError> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT u.id, u.started_at_ms, b.roster_id, b.outcomes, b.details FROM runs u \
         JOIN run_results b ON b.run_id = u.id WHERE {condition} ORDER BY u.id"
    ))?;
    let mut rows = select.query(args)?;
    while let Some(row) = rows.next()? {
        let block = BlockRef {
            run_id: row.get(0)?,
            started_at_ms: row.get(1)?,
            roster_id: row.get(2)?,
            outcomes: row.get_ref(3)?.as_blob()?,
            details: row.get_ref(4)?.as_blob()?,
        };
        if !each(block)? {
            break;
        }
    }
    Ok(())
}

/// Rows that failed, from a run's outcome column: (row index, outcome).
fn failed_rows(outcomes: &[u8], count: usize) -> Result<Vec<(usize, Outcome)>, String> {
    let mut failed = Vec::new();
    let mut at = 0;
    for (outcome, len) in columns::decode_outcomes(outcomes, count)? {
        if !outcome.is_ok() {
            failed.extend((at..at + len).map(|i| (i, outcome)));
        }
        at += len;
    }
    Ok(failed)
}

/// Decoded rosters of recent runs by id: runs over an unchanged fleet share one, decoded once.
/// A few are kept, for probers that take turns with different shards.
#[derive(Default)]
struct RosterCache {
    recent: Vec<(i64, std::sync::Arc<columns::Roster>)>,
}

impl RosterCache {
    const KEPT: usize = 8;

    fn get(&mut self, conn: &Connection, id: i64) -> Result<std::sync::Arc<columns::Roster>, DataError> {
        if let Some(i) = self.recent.iter().position(|(known, _)| *known == id) {
            let entry = self.recent.remove(i);
            let roster = entry.1.clone();
            self.recent.insert(0, entry);
            return Ok(roster);
        }
        let (count, bytes): (i64, Vec<u8>) = conn
            .prepare_cached("SELECT count, roster FROM rosters WHERE id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let roster = columns::decode_roster(&bytes, usize::try_from(count).unwrap_or(0))
            .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
        let roster = std::sync::Arc::new(roster);
        self.recent.insert(0, (id, roster.clone()));
        self.recent.truncate(Self::KEPT);
        Ok(roster)
    }
}

/// The expiry a site's certificate had at `run`, from its history (sorted by first run).
fn cert_at(history: &[(RunId, i64)], run: RunId) -> Option<i64> {
    let after = history.partition_point(|&(from_run, _)| from_run <= run);
    after.checked_sub(1).map(|i| history[i].1)
}

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
            rollup::add_to_bucket(&mut buckets, rollup::HOUR_MS, hour, key, h).map_err(DataError::Data)?;
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
                rollup::add_to_bucket(&mut buckets, rollup::HOUR_MS, hour, key, h).map_err(DataError::Data)?;
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
            rollup::add_to_bucket(&mut buckets, rollup::DAY_MS, hour, key, h).map_err(DataError::Data)?;
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

impl SqliteStore {
    fn data_error(&self, what: &str, e: DataError) -> StoreError {
        match e {
            DataError::Sql(e) => self.query_error(what, e),
            DataError::Data(message) => self.corrupt(message),
            DataError::Store(e) => e,
        }
    }

    /// Every site the store knows, by key.
    fn sites(&self) -> StoreResult<HashMap<i64, SiteRecord>> {
        let error = |e| self.query_error("sites", e);
        let mut select =
            self.conn.prepare_cached("SELECT key, site_id, customer, cluster, hostname FROM sites").map_err(error)?;
        let rows = select
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    SiteRecord { id: row.get(1)?, customer: row.get(2)?, cluster: row.get(3)?, hostname: row.get(4)? },
                ))
            })
            .map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }

    /// The texts explaining results of one run, by (site key, check code).
    fn run_details(&self, run_id: RunId) -> StoreResult<HashMap<(i64, u8), String>> {
        let error = |e| self.query_error("result details", e);
        let mut select = self
            .conn
            .prepare_cached("SELECT site_key, check_kind, detail FROM result_details WHERE run_id = ?1")
            .map_err(error)?;
        let rows = select.query_map([run_id], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?))).map_err(error)?;
        rows.collect::<Result<_, _>>().map_err(error)
    }

    /// Every site's certificate expiry history: (first run, expiry), oldest first.
    fn site_certs(&self) -> StoreResult<HashMap<i64, Vec<(RunId, i64)>>> {
        let error = |e| self.query_error("certificate expiry dates", e);
        let mut select = self
            .conn
            .prepare_cached("SELECT site_key, from_run, not_after FROM site_certs ORDER BY site_key, from_run")
            .map_err(error)?;
        let mut rows = select.query([]).map_err(error)?;
        let mut certs: HashMap<i64, Vec<(RunId, i64)>> = HashMap::new();
        while let Some(row) = rows.next().map_err(error)? {
            certs
                .entry(row.get(0).map_err(error)?)
                .or_default()
                .push((row.get(1).map_err(error)?, row.get(2).map_err(error)?));
        }
        Ok(certs)
    }

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
            "u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2 \
             AND NOT EXISTS (SELECT 1 FROM histograms h WHERE h.run_id = u.id)",
            params![a, b],
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
    fn pending(&self) -> StoreResult<rollup::Pending> {
        let error = |e| self.query_error("pending rollups", e);
        let mut select = self.conn.prepare("SELECT level, bucket_ms FROM rollups_pending").map_err(error)?;
        let mut rows = select.query([]).map_err(error)?;
        let mut pending = rollup::Pending::default();
        while let Some(row) = rows.next().map_err(error)? {
            let (level, bucket): (i64, i64) = (row.get(0).map_err(error)?, row.get(1).map_err(error)?);
            let set = match level {
                PENDING_HOUR => &mut pending.hours,
                PENDING_DAY => &mut pending.days,
                _ => &mut pending.site_days,
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
                    "SELECT h.hist FROM runs u JOIN histograms h ON h.run_id = u.id AND h.cluster = ?1 \
                     AND h.check_kind = ?2 AND h.phase = ?3 WHERE u.valid = 1 AND u.started_at_ms >= ?4 AND u.started_at_ms < ?5",
                    params![cluster, check, phase, a, b],
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
                    "u.valid = 1 AND u.started_at_ms >= ?1 AND u.started_at_ms < ?2",
                    params![a, b],
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

fn check_kind(code: u8) -> Result<CheckKind, String> {
    CheckKind::from_code(code).ok_or_else(|| format!("unknown check kind code {code}"))
}

/// Appends the half-open [from, to) condition on `column`.
fn push_time_range(sql: &mut String, args: &mut Vec<Value>, column: &str, from_ms: Option<i64>, to_ms: Option<i64>) {
    if let Some(from) = from_ms {
        sql.push_str(&format!(" AND {column} >= ?"));
        args.push(Value::Integer(from));
    }
    if let Some(to) = to_ms {
        sql.push_str(&format!(" AND {column} < ?"));
        args.push(Value::Integer(to));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Failure;

    fn site(id: &str, customer: &str, cluster: &str) -> SiteRecord {
        SiteRecord {
            id: id.into(),
            customer: customer.into(),
            cluster: cluster.into(),
            hostname: format!("{id}.example"),
        }
    }

    fn fleet() -> Vec<SiteRecord> {
        vec![site("a", "acme", "web1"), site("b", "acme", "web1"), site("c", "bolt", "web2")]
    }

    fn ok(site: usize, check: CheckKind, started_at_ms: i64) -> CheckResult {
        CheckResult {
            site,
            check,
            outcome: Outcome::Ok,
            started_at_ms,
            attempts: 1,
            http_status: Some(200),
            timings: Timings {
                dns_us: Some(1_200),
                connect_us: Some(800),
                tls_us: Some(4_000),
                first_byte_us: Some(20_000),
                total_us: 26_000,
            },
            cert_not_after: Some(1_800_000_000),
            detail: None,
        }
    }

    fn failed(site: usize, check: CheckKind, failure: Failure, started_at_ms: i64) -> CheckResult {
        CheckResult {
            site,
            check,
            outcome: Outcome::Failed(failure),
            started_at_ms,
            attempts: 3,
            http_status: None,
            timings: Timings { total_us: 5_000_000, ..Timings::default() },
            cert_not_after: None,
            detail: Some(format!("{failure} on site #{site}")),
        }
    }

    fn summary(finished_at_ms: i64, results: &[CheckResult]) -> RunSummary {
        RunSummary {
            finished_at_ms,
            valid: true,
            invalid_reason: None,
            checks: results.len() as u64,
            failures: results.iter().filter(|r| !r.outcome.is_ok()).count() as u64,
        }
    }

    fn write_run(store: &mut SqliteStore, started_at_ms: i64, sites: &[SiteRecord], results: &[CheckResult]) -> RunId {
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms };
        let mut writer = store.begin_run(&meta, sites).unwrap();
        for result in results {
            writer.insert(result).unwrap();
        }
        writer.finish(&summary(started_at_ms + 30_000, results), &[]).unwrap()
    }

    fn collect(store: &SqliteStore, filter: &ResultFilter) -> Vec<StoredResult> {
        let mut found = Vec::new();
        store
            .results(filter, &mut |r| {
                found.push(r);
                Ok(())
            })
            .unwrap();
        found
    }

    fn open_temp() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("fleetprobe.db")).unwrap();
        (dir, store)
    }

    fn open_message(path: &Path) -> String {
        match SqliteStore::open(path) {
            Err(e @ StoreError::Open { .. }) => e.to_string(),
            Err(e) => panic!("expected an Open error, got {e:?}"),
            Ok(_) => panic!("opening {} should fail", path.display()),
        }
    }

    #[test]
    fn a_run_round_trips_with_every_field() {
        let (_dir, mut store) = open_temp();
        let results = vec![
            ok(0, CheckKind::Http, 1_000),
            ok(0, CheckKind::Dns, 1_001),
            failed(1, CheckKind::Http, Failure::Timeout(Phase::FirstByte), 1_002),
            failed(2, CheckKind::Dns, Failure::DnsNxdomain, 1_003),
        ];
        let run_id = write_run(&mut store, 1_000, &fleet(), &results);

        let runs = store.runs(None, None).unwrap();
        let expected_run = StoredRun {
            id: run_id,
            vantage: "probe-1".into(),
            started_at_ms: 1_000,
            finished_at_ms: 31_000,
            valid: true,
            invalid_reason: None,
            checks: 4,
            failures: 2,
        };
        assert_eq!(runs, vec![expected_run]);

        let stored = collect(&store, &ResultFilter::default());
        let expected: Vec<StoredResult> = results
            .iter()
            .map(|r| StoredResult {
                run_id,
                site: fleet()[r.site].clone(),
                check: r.check,
                outcome: r.outcome,
                started_at_ms: r.started_at_ms,
                attempts: r.attempts,
                http_status: r.http_status,
                timings: columns::as_stored(&r.timings),
                cert_not_after: r.cert_not_after,
                detail: r.detail.clone(),
            })
            .collect();
        assert_eq!(stored, expected);
    }

    #[test]
    fn invalid_runs_keep_their_reason() {
        let (_dir, mut store) = open_temp();
        let meta = RunMeta { vantage: "probe-2".into(), started_at_ms: 5 };
        let writer = store.begin_run(&meta, &fleet()).unwrap();
        let summary = RunSummary {
            finished_at_ms: 9,
            valid: false,
            invalid_reason: Some("control targets unreachable".into()),
            checks: 0,
            failures: 0,
        };
        writer.finish(&summary, &[]).unwrap();
        let run = &store.runs(None, None).unwrap()[0];
        assert!(!run.valid);
        assert_eq!(run.invalid_reason.as_deref(), Some("control targets unreachable"));
    }

    #[test]
    fn filters_narrow_the_selection() {
        let (_dir, mut store) = open_temp();
        let run_results = |t| {
            vec![
                ok(0, CheckKind::Http, t),
                failed(1, CheckKind::Http, Failure::ConnectRefused, t),
                ok(2, CheckKind::Http, t),
                failed(2, CheckKind::Dns, Failure::DnsServfail, t),
            ]
        };
        let first = write_run(&mut store, 60_000, &fleet(), &run_results(60_000));
        let second = write_run(&mut store, 120_000, &fleet(), &run_results(120_000));
        let keys = |filter: ResultFilter| -> Vec<(RunId, String, CheckKind)> {
            collect(&store, &filter).into_iter().map(|r| (r.run_id, r.site.id, r.check)).collect()
        };
        let key = |run, site: &str, check| (run, site.to_string(), check);

        assert_eq!(keys(ResultFilter::default()).len(), 8);
        assert_eq!(keys(ResultFilter { run_id: Some(second), ..Default::default() }).len(), 4);
        assert_eq!(
            keys(ResultFilter { site_id: Some("c".into()), ..Default::default() }),
            vec![
                key(first, "c", CheckKind::Http),
                key(first, "c", CheckKind::Dns),
                key(second, "c", CheckKind::Http),
                key(second, "c", CheckKind::Dns)
            ]
        );
        assert_eq!(
            keys(ResultFilter { cluster: Some("web1".into()), failed_only: true, ..Default::default() }),
            vec![key(first, "b", CheckKind::Http), key(second, "b", CheckKind::Http)]
        );
        // Half-open: a run starting exactly at `to` is left out, one at `from` is kept.
        assert_eq!(
            keys(ResultFilter { from_ms: Some(60_000), to_ms: Some(120_000), failed_only: true, ..Default::default() }),
            vec![key(first, "b", CheckKind::Http), key(first, "c", CheckKind::Dns)]
        );
        assert_eq!(keys(ResultFilter { from_ms: Some(60_001), ..Default::default() }).len(), 4);
        assert_eq!(
            keys(ResultFilter { cluster: Some("web2".into()), limit: Some(3), ..Default::default() }),
            vec![key(first, "c", CheckKind::Http), key(first, "c", CheckKind::Dns), key(second, "c", CheckKind::Http)]
        );
        assert_eq!(
            keys(ResultFilter { cluster: Some("web1".into()), from_ms: Some(120_000), ..Default::default() }),
            vec![key(second, "a", CheckKind::Http), key(second, "b", CheckKind::Http)]
        );
        assert!(keys(ResultFilter { cluster: Some("nowhere".into()), ..Default::default() }).is_empty());
        assert!(keys(ResultFilter { from_ms: Some(500_000), ..Default::default() }).is_empty());

        let run_ids = |from, to| store.runs(from, to).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(run_ids(None, None), vec![first, second]);
        assert_eq!(run_ids(Some(60_000), Some(120_000)), vec![first]);
        assert_eq!(run_ids(Some(60_001), None), vec![second]);
    }

    #[test]
    fn a_dropped_writer_leaves_nothing_behind() {
        let (_dir, mut store) = open_temp();
        {
            let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
            let mut writer = store.begin_run(&meta, &fleet()).unwrap();
            writer.insert(&ok(0, CheckKind::Http, 1_000)).unwrap();
            // Dropped here, as when the sweep fails halfway.
        }
        assert!(store.runs(None, None).unwrap().is_empty());
        assert!(collect(&store, &ResultFilter::default()).is_empty());
        let sites: i64 = store.conn.query_row("SELECT count(*) FROM sites", [], |row| row.get(0)).unwrap();
        assert_eq!(sites, 0);

        let run_id = write_run(&mut store, 2_000, &fleet(), &[ok(2, CheckKind::Dns, 2_000)]);
        assert_eq!(store.runs(None, None).unwrap().len(), 1);
        let stored = collect(&store, &ResultFilter::default());
        assert_eq!(stored.len(), 1);
        assert_eq!((stored[0].run_id, stored[0].site.id.as_str()), (run_id, "c"));
    }

    #[test]
    fn a_result_for_an_unknown_site_index_is_an_error() {
        let (_dir, mut store) = open_temp();
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
        let mut writer = store.begin_run(&meta, &fleet()).unwrap();
        let error = writer.insert(&ok(7, CheckKind::Http, 1_000)).unwrap_err();
        assert!(matches!(error, StoreError::Query { .. }), "{error:?}");
    }

    #[test]
    fn a_site_moving_cluster_is_updated_in_place() {
        let (_dir, mut store) = open_temp();
        write_run(&mut store, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
        let mut moved = fleet();
        moved[0].cluster = "web2".into();
        moved.push(site("d", "corn", "web3"));
        let second =
            write_run(&mut store, 2_000, &moved, &[ok(0, CheckKind::Http, 2_000), ok(3, CheckKind::Http, 2_000)]);

        let in_web2 =
            collect(&store, &ResultFilter { run_id: Some(second), cluster: Some("web2".into()), ..Default::default() });
        assert_eq!(in_web2.len(), 1);
        assert_eq!(in_web2[0].site, moved[0]);
        let sites: i64 = store.conn.query_row("SELECT count(*) FROM sites", [], |row| row.get(0)).unwrap();
        assert_eq!(sites, 4);
        // Both runs' results stay attached to the one site.
        assert_eq!(collect(&store, &ResultFilter { site_id: Some("a".into()), ..Default::default() }).len(), 2);
    }

    #[test]
    fn histograms_round_trip() {
        let (_dir, mut store) = open_temp();
        let mut records = Vec::new();
        for (cluster, check, phase) in [
            ("web1", CheckKind::Http, Phase::FirstByte),
            ("web1", CheckKind::Http, Phase::Total),
            ("web2", CheckKind::Dns, Phase::Dns),
        ] {
            let mut h = histogram::new_latency_histogram();
            for v in 1..=500u64 {
                histogram::record_micros(&mut h, v * 97);
            }
            records.push(HistogramRecord { cluster: cluster.into(), check, phase, histogram: h });
        }
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
        let writer = store.begin_run(&meta, &fleet()).unwrap();
        let run_id = writer.finish(&summary(2_000, &[]), &records).unwrap();

        let stored = store.run_histograms(run_id).unwrap();
        assert_eq!(stored.len(), records.len());
        for (got, want) in stored.iter().zip(&records) {
            assert_eq!((got.cluster.as_str(), got.check, got.phase), (want.cluster.as_str(), want.check, want.phase));
            assert_eq!(got.histogram, want.histogram);
        }
        assert!(store.run_histograms(run_id + 1).unwrap().is_empty());
    }

    #[test]
    fn unknown_codes_are_reported_as_corrupt() {
        let (_dir, mut store) = open_temp();
        let run_id = write_run(&mut store, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
        // A run whose outcome column names a code no build ever wrote.
        store.conn.execute("UPDATE run_results SET outcomes = x'6301'", []).unwrap();
        let error = store.results(&ResultFilter::default(), &mut |_| Ok(())).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert!(error.to_string().contains(&format!("run {run_id}")), "{error}");
        assert!(error.to_string().contains("unknown outcome code 99"), "{error}");
        let error = store.run_outcomes(None, None, &mut |_, _| Ok(())).unwrap_err();
        assert!(error.to_string().contains("unknown outcome code 99"), "{error}");

        store.conn.execute("UPDATE rosters SET roster = x'00ff'", []).unwrap();
        store.conn.execute("UPDATE run_results SET outcomes = x'0001'", []).unwrap();
        let error = store.results(&ResultFilter::default(), &mut |_| Ok(())).unwrap_err();
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
        assert!(error.to_string().contains("roster"), "{error}");
    }

    #[test]
    fn incident_updates_read_back_by_time() {
        let (_dir, mut store) = open_temp();
        let update = |at: i64, text: &str, title: Option<&str>| IncidentUpdate {
            incident_id: "a-20261001T1000".into(),
            posted_at_ms: at,
            text: text.into(),
            title: title.map(String::from),
            cause: None,
        };
        store.add_incident_update(&update(2_000, "later <b>", Some("Storage"))).unwrap();
        store.add_incident_update(&update(1_000, "first", None)).unwrap();
        store.add_incident_update(&update(3_000, "too late", None)).unwrap();
        let read = store.incident_updates(Some(1_000), Some(3_000)).unwrap();
        assert_eq!(read, vec![update(1_000, "first", None), update(2_000, "later <b>", Some("Storage"))]);
        assert_eq!(store.incident_updates(None, None).unwrap().len(), 3);
    }

    #[test]
    fn the_schema_version_is_stored_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetprobe.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), MIGRATIONS.len() as i64);
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        assert_eq!(journal, "wal");
        // Reopening a current store is a no-op.
        drop(SqliteStore::open(&path).unwrap());

        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        match SqliteStore::open(&path) {
            Err(StoreError::TooNew { found: 99, supported, .. }) => assert_eq!(supported, MIGRATIONS.len() as i64),
            Err(e) => panic!("expected TooNew, got {e:?}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "these are my notes, not a database\n").unwrap();
        let message = open_message(&text);
        assert!(message.contains("is not an SQLite database (file is not a database)"), "{message}");
        assert!(message.contains("notes.txt"), "{message}");

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>())
            .unwrap();
        assert!(open_message(&garbage).contains("is not an SQLite database"));
    }

    #[test]
    fn a_database_of_another_program_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE recipes (name TEXT)").unwrap();
        let message = open_message(&path);
        assert!(message.contains("not a fleetprobe store"), "{message}");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir");
        let message = open_message(&missing.join("fleetprobe.db"));
        assert!(message.contains(&format!("directory {} does not exist", missing.display())), "{message}");
        assert!(!missing.exists(), "the directory must not be created");
    }

    #[test]
    fn unwritable_locations_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let message = open_message(&file.join("fleetprobe.db"));
        assert!(message.contains(&format!("{} is not a directory", file.display())), "{message}");

        let message = open_message(dir.path());
        assert!(message.contains(&dir.path().display().to_string()) && message.contains("is a directory"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_directory_is_a_clear_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root (as in many CI containers) writes regardless of permission bits: nothing to check.
        let writable = std::fs::write(locked.join("probe"), "x").is_ok();
        if !writable {
            let path = locked.join("fleetprobe.db");
            let message = open_message(&path);
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("cannot create the file"), "{message}");
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_reader_does_not_wait_for_a_sweep_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetprobe.db");
        let mut sweep = SqliteStore::open(&path).unwrap();
        let first = write_run(&mut sweep, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 2_000 };
        let mut writer = sweep.begin_run(&meta, &fleet()).unwrap();
        writer.insert(&ok(1, CheckKind::Http, 2_000)).unwrap();

        let started = std::time::Instant::now();
        let report = SqliteStore::open(&path).unwrap();
        assert_eq!(report.runs(None, None).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>(), vec![first]);
        assert_eq!(collect(&report, &ResultFilter::default()).len(), 1);
        assert!(started.elapsed() < BUSY_TIMEOUT / 2, "the reader waited for the writer's lock");
        drop(writer);
    }

    #[test]
    fn a_version_3_store_gets_its_results_converted_to_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetprobe.db");
        let conn = Connection::open(&path).unwrap();
        for step in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3] {
            conn.execute_batch(step).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO sites (key, site_id, customer, cluster, hostname) VALUES \
               (1, 'a', 'c1', 'web1', 'a.example'), (2, 'b', 'c2', 'web1', 'b.example'); \
             INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, checks, failures) VALUES \
               (1, 'p', 60000, 61000, 1, 3, 1), (2, 'p', 120000, 121000, 1, 1, 0); \
             INSERT INTO results VALUES \
               (1, 1, 0, 0, 60010, 1, 200, 100, 200, 300, 400, 500, 1800000000, NULL), \
               (1, 1, 1, 0, 60011, 1, NULL, NULL, NULL, NULL, NULL, 90, NULL, NULL), \
               (1, 2, 0, 40, 60020, 3, 503, 100, 200, 300, 400, 500, NULL, 'status 503'), \
               (2, 1, 0, 0, 120010, 1, 200, 100, 200, 300, 400, 500, 1900000000, NULL);",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 3).unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let results = collect(&store, &ResultFilter::default());
        type Seen<'a> = (RunId, &'a str, CheckKind, u8, i64, Option<i64>, Option<&'a str>);
        let seen: Vec<Seen> = results
            .iter()
            .map(|r| {
                (
                    r.run_id,
                    r.site.id.as_str(),
                    r.check,
                    r.outcome.code(),
                    r.started_at_ms,
                    r.cert_not_after,
                    r.detail.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, "a", CheckKind::Http, 0, 60_010, Some(1_800_000_000), None),
                (1, "a", CheckKind::Dns, 0, 60_011, None, None),
                (1, "b", CheckKind::Http, 40, 60_020, None, Some("status 503")),
                (2, "a", CheckKind::Http, 0, 120_010, Some(1_900_000_000), None),
            ]
        );
        assert_eq!(results[2].attempts, 3);
        assert_eq!(results[2].http_status, Some(503));
        assert_eq!(results[0].timings.first_byte_us, Some(400));
        let tables: i64 = store
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name IN ('results', 'results_view')", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0, "the row table is gone");
    }

    #[test]
    fn certificate_dates_are_stored_when_they_change_and_read_back_per_run() {
        let (_dir, mut store) = open_temp();
        let with_cert = |at: i64, cert: i64| {
            let mut r = ok(0, CheckKind::Http, at);
            r.cert_not_after = Some(cert);
            vec![r]
        };
        for (at, cert) in [(0, 100), (60_000, 100), (120_000, 200), (180_000, 200)] {
            write_run(&mut store, at, &fleet(), &with_cert(at, cert));
        }
        let certs: Vec<Option<i64>> =
            collect(&store, &ResultFilter::default()).iter().map(|r| r.cert_not_after).collect();
        assert_eq!(certs, [Some(100), Some(100), Some(200), Some(200)]);
        let rows: i64 = store.conn.query_row("SELECT count(*) FROM site_certs", [], |row| row.get(0)).unwrap();
        assert_eq!(rows, 2, "one row per change, not per run");
    }

    #[test]
    fn two_results_for_one_site_and_check_are_refused() {
        let (_dir, mut store) = open_temp();
        let meta = RunMeta { vantage: "p".into(), started_at_ms: 0 };
        let mut writer = store.begin_run(&meta, &fleet()).unwrap();
        writer.insert(&ok(1, CheckKind::Dns, 0)).unwrap();
        writer.insert(&ok(1, CheckKind::Dns, 5)).unwrap();
        let results = [ok(1, CheckKind::Dns, 0), ok(1, CheckKind::Dns, 5)];
        let error = writer.finish(&summary(10, &results), &[]).unwrap_err().to_string();
        assert!(error.contains("two dns results for site"), "{error}");
        assert!(store.runs(None, None).unwrap().is_empty());
    }

    #[test]
    fn run_outcomes_share_one_roster_between_runs_of_an_unchanged_fleet() {
        let (_dir, mut store) = open_temp();
        let healthy = |t| vec![ok(0, CheckKind::Http, t), ok(1, CheckKind::Http, t), ok(2, CheckKind::Dns, t)];
        write_run(&mut store, 0, &fleet(), &healthy(0));
        let mut second = healthy(60_000);
        second[1] = failed(1, CheckKind::Http, Failure::ConnectRefused, 60_000);
        write_run(&mut store, 60_000, &fleet(), &second);
        let mut third = healthy(120_000);
        third.pop();
        write_run(&mut store, 120_000, &fleet(), &third);
        let mut seen = Vec::new();
        store
            .run_outcomes(None, None, &mut |run, outcomes| {
                seen.push((run.started_at_ms, outcomes.roster.clone(), outcomes.failed.clone()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen.len(), 3);
        assert!(std::sync::Arc::ptr_eq(&seen[0].1, &seen[1].1), "same roster, decoded once");
        assert_eq!(seen[2].1.len(), 2, "the third run checked one result less");
        let rosters: i64 = store.conn.query_row("SELECT count(*) FROM rosters", [], |row| row.get(0)).unwrap();
        assert_eq!(rosters, 2, "one roster stored per change of the fleet, not per run");
        assert_eq!(seen[0].2, vec![]);
        assert_eq!(seen[1].2, vec![(1, Outcome::Failed(Failure::ConnectRefused))]);
    }

    // ---- latency rollups ----------------------------------------------------------------------

    const T0: i64 = 1_790_000_000_000 / rollup::DAY_MS * rollup::DAY_MS;
    const MIN: i64 = 60_000;

    /// A run where every site answers HTTP with its own first byte (µs), with the per-cluster
    /// histograms the prober would store for it.
    fn write_latency_run(store: &mut SqliteStore, at: i64, first_byte_us: [u32; 3], valid: bool) -> RunId {
        let results: Vec<CheckResult> = (0..3)
            .map(|site| {
                let mut r = ok(site, CheckKind::Http, at);
                r.timings.first_byte_us = Some(first_byte_us[site]);
                r
            })
            .collect();
        let mut histograms: BTreeMap<(String, Phase), Histogram<u64>> = BTreeMap::new();
        for r in &results {
            for phase in Phase::ALL {
                if let Some(us) = r.timings.get(phase) {
                    let h = histograms
                        .entry((fleet()[r.site].cluster.clone(), phase))
                        .or_insert_with(histogram::new_latency_histogram);
                    histogram::record_micros(h, u64::from(us));
                }
            }
        }
        let records: Vec<HistogramRecord> = histograms
            .into_iter()
            .map(|((cluster, phase), histogram)| HistogramRecord { cluster, check: CheckKind::Http, phase, histogram })
            .collect();
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: at };
        let mut writer = store.begin_run(&meta, &fleet()).unwrap();
        for r in &results {
            writer.insert(r).unwrap();
        }
        let mut s = summary(at + 20_000, &results);
        s.valid = valid;
        writer.finish(&s, &records).unwrap()
    }

    /// First byte of site `site` in run `i`: spread over three orders of magnitude.
    fn first_byte(i: i64, site: usize) -> u32 {
        let us =
            (500 + (i as u32).wrapping_mul(7_919).wrapping_add(site as u32 * 104_729) % 300_000) * (1 + site as u32);
        // As the columns keep it, so site histograms built from stored results compare exactly.
        columns::timing_value(columns::timing_code(us)).unwrap()
    }

    /// Three days of runs every 10 minutes (and an invalid run that must not count).
    fn three_days(store: &mut SqliteStore) -> Vec<(i64, [u32; 3])> {
        let mut runs = Vec::new();
        for i in 0..(3 * 24 * 6) {
            let at = T0 + i * 10 * MIN + 7_000;
            let values = [first_byte(i, 0), first_byte(i, 1), first_byte(i, 2)];
            write_latency_run(store, at, values, true);
            runs.push((at, values));
        }
        write_latency_run(store, T0 + 5 * MIN, [9_000_000; 3], false);
        runs
    }

    /// What a query must return: the values of `sites` in runs starting in [from, to).
    fn direct(runs: &[(i64, [u32; 3])], sites: &[usize], from: i64, to: i64) -> Histogram<u64> {
        let mut h = histogram::new_latency_histogram();
        for (at, values) in runs.iter().filter(|(at, _)| (from..to).contains(at)) {
            let _ = at;
            for &site in sites {
                histogram::record_micros(&mut h, u64::from(values[site]));
            }
        }
        h
    }

    fn query(store: &SqliteStore, scope: LatencyScope, from: i64, to: i64, bucket: Option<i64>) -> Vec<TimedHistogram> {
        let q = LatencyQuery {
            scope,
            check: CheckKind::Http,
            phase: Phase::FirstByte,
            from_ms: from,
            to_ms: to,
            bucket_ms: bucket,
        };
        let mut found = Vec::new();
        store
            .latency_histograms(&q, &mut |b| {
                found.push(b);
                Ok(())
            })
            .unwrap();
        found
    }

    fn web1() -> LatencyScope {
        LatencyScope::Cluster("web1".into())
    }

    #[test]
    fn rolled_up_latencies_equal_the_runs_merged_directly() {
        let (_dir, mut store) = open_temp();
        let runs = three_days(&mut store);
        let end = T0 + 3 * rollup::DAY_MS;
        let odd_from = T0 + 90 * MIN;
        let odd_to = T0 + 2 * rollup::DAY_MS + 35 * MIN;
        let whole = |store: &SqliteStore| query(store, web1(), T0, end, None);
        let before = whole(&store);
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].histogram, direct(&runs, &[0, 1], T0, end), "runs alone, before any rollup");

        let stats = store.rollup(end + rollup::HOUR_MS, None).unwrap();
        assert_eq!((stats.hours, stats.days, stats.site_days_unfinished), (72, 3, 0));
        assert_eq!(stats.site_days, 3 * 3);
        assert_eq!(whole(&store)[0].histogram, before[0].histogram);
        let odd = query(&store, web1(), odd_from, odd_to, None);
        assert_eq!(odd[0].histogram, direct(&runs, &[0, 1], odd_from, odd_to));
        let days = query(&store, web1(), T0, end, Some(rollup::DAY_MS));
        assert_eq!(days.len(), 3);
        for (d, bucket) in days.iter().enumerate() {
            let from = T0 + d as i64 * rollup::DAY_MS;
            assert_eq!((bucket.start_ms, bucket.end_ms), (from, from + rollup::DAY_MS));
            assert_eq!(bucket.histogram, direct(&runs, &[0, 1], from, from + rollup::DAY_MS));
        }
        let site_a = query(&store, LatencyScope::Site("a".into()), odd_from, odd_to, None);
        assert_eq!(site_a[0].histogram, direct(&runs, &[0], odd_from, odd_to));

        // Idempotent: nothing left to do, nothing changes.
        assert_eq!(store.rollup(end + rollup::DAY_MS, None).unwrap(), RollupStats::default());
        assert_eq!(whole(&store)[0].histogram, before[0].histogram);

        // With the runs pruned, whole days are answered from the rollups alone, exactly.
        let keep_one_day = Retention { raw: Duration::from_secs(86_400), ..Retention::default() };
        let pruned = store.prune(end + 2 * rollup::DAY_MS, &keep_one_day, None).unwrap();
        assert_eq!((pruned.runs, pruned.runs_left), (runs.len() + 1, 0));
        assert!(collect(&store, &ResultFilter::default()).is_empty());
        let rosters: i64 = store.conn.query_row("SELECT count(*) FROM rosters", [], |row| row.get(0)).unwrap();
        assert_eq!(rosters, 0, "rosters of pruned runs go with them");
        assert_eq!(whole(&store)[0].histogram, before[0].histogram);
        let hours = query(&store, web1(), T0 + rollup::HOUR_MS, T0 + 5 * rollup::HOUR_MS, None);
        assert_eq!(hours[0].histogram, direct(&runs, &[0, 1], T0 + rollup::HOUR_MS, T0 + 5 * rollup::HOUR_MS));
        let site_c = query(&store, LatencyScope::Site("c".into()), T0, end, Some(rollup::DAY_MS));
        assert_eq!(site_c[1].histogram, direct(&runs, &[2], T0 + rollup::DAY_MS, T0 + 2 * rollup::DAY_MS));
        assert!(query(&store, LatencyScope::Site("nobody".into()), T0, end, None).is_empty());
    }

    #[test]
    fn a_late_run_reopens_its_hour_and_day_only() {
        let (_dir, mut store) = open_temp();
        let mut runs = three_days(&mut store);
        let end = T0 + 3 * rollup::DAY_MS;
        store.rollup(end, None).unwrap();
        // A backfilled run in the middle of day 1 counts at once (its hour is read from runs)...
        let late = (T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS + 3 * MIN, [123_456, 7, 8]);
        write_latency_run(&mut store, late.0, late.1, true);
        runs.push(late);
        let expected = direct(&runs, &[0, 1], T0, end);
        assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, expected);
        // ...and the next rollup redoes just that hour and day.
        let stats = store.rollup(end, None).unwrap();
        assert_eq!((stats.hours, stats.days, stats.site_days), (1, 1, 3));
        assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, expected);
        let site_a = query(&store, LatencyScope::Site("a".into()), T0, end, None);
        assert_eq!(site_a[0].histogram, direct(&runs, &[0], T0, end));
    }

    #[test]
    fn pruned_run_histograms_are_computed_from_results_for_queries_and_late_rollups() {
        let (_dir, mut store) = open_temp();
        let mut runs = three_days(&mut store);
        let end = T0 + 3 * rollup::DAY_MS;
        store.rollup(end, None).unwrap();
        let keep_runs = Retention { run_histograms: Duration::ZERO, ..Retention::default() };
        let pruned = store.prune(end, &keep_runs, None).unwrap();
        assert_eq!(pruned.runs, 0, "the runs stay");
        assert!(pruned.run_histograms > 0, "their per-run histograms go");
        // A stretch finer than hours is read from the results now.
        let (from, to) = (T0 + 90 * MIN, T0 + 2 * rollup::DAY_MS + 35 * MIN);
        assert_eq!(query(&store, web1(), from, to, None)[0].histogram, direct(&runs, &[0, 1], from, to));
        // A late run reopens an hour whose other runs have no histograms left: the hour is
        // rebuilt from all of them.
        let late = (T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS + 3 * MIN, [123_456, 7, 8]);
        write_latency_run(&mut store, late.0, late.1, true);
        runs.push(late);
        store.rollup(end, None).unwrap();
        let hour = T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS;
        let rebuilt = query(&store, web1(), hour, hour + rollup::HOUR_MS, None);
        assert_eq!(rebuilt[0].histogram, direct(&runs, &[0, 1], hour, hour + rollup::HOUR_MS));
        assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, direct(&runs, &[0, 1], T0, end));
    }

    #[test]
    fn site_days_are_built_within_the_budget_and_pending_data_stays_readable() {
        let (_dir, mut store) = open_temp();
        let runs = three_days(&mut store);
        let end = T0 + 3 * rollup::DAY_MS;
        let stats = store.rollup(end, Some(2)).unwrap();
        assert_eq!((stats.site_days, stats.site_days_unfinished), (2, 3));
        // Half-built days are still read from the raw results.
        let site_b =
            |store: &SqliteStore| query(store, LatencyScope::Site("b".into()), T0, end, None)[0].histogram.clone();
        assert_eq!(site_b(&store), direct(&runs, &[1], T0, end));
        // The hour and day of the current time are not over: they stay pending.
        let stats = store.rollup(end, Some(4)).unwrap();
        assert_eq!((stats.hours, stats.site_days, stats.site_days_unfinished), (0, 4, 1));
        let stats = store.rollup(end, None).unwrap();
        assert_eq!((stats.site_days, stats.site_days_unfinished), (3, 0));
        assert_eq!(site_b(&store), direct(&runs, &[1], T0, end));
        // Runs whose day is not rolled up are never pruned.
        write_latency_run(&mut store, end + 10 * MIN, [1, 2, 3], true);
        let everything = Retention {
            raw: Duration::ZERO,
            run_histograms: Duration::ZERO,
            hourly: Duration::ZERO,
            daily: Duration::ZERO,
        };
        let pruned = store.prune(end + 20 * MIN, &everything, Some(10)).unwrap();
        assert_eq!((pruned.runs, pruned.runs_left), (10, runs.len() + 1 - 10 + 1));
        assert!(pruned.hour_histograms > 0 && pruned.day_histograms > 0 && pruned.site_day_histograms > 0);
        store.prune(end + 20 * MIN, &everything, None).unwrap();
        assert_eq!(
            store.runs(None, None).unwrap().iter().map(|r| r.started_at_ms).collect::<Vec<_>>(),
            vec![end + 10 * MIN]
        );
    }

    #[test]
    fn a_version_1_store_gets_its_runs_rolled_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetprobe.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO runs (vantage, started_at_ms, finished_at_ms, valid) VALUES ('p', ?1, ?1, 1)",
            [T0 + 61 * MIN],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        drop(conn);
        let store = SqliteStore::open(&path).unwrap();
        let pending = store.pending().unwrap();
        assert_eq!(pending.hours, [T0 + rollup::HOUR_MS].into());
        assert_eq!((pending.days.clone(), pending.site_days), ([T0].into(), [T0].into()));
    }
}
