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
//!
//! This file opens the store and answers the [`Store`] trait by handing each call to the file
//! of its role: `schema.rs` (tables and migrations), `writer.rs` (a run's transaction),
//! `reads.rs` (runs, results, outcomes, per-run histograms), `latency.rs` (latency queries over
//! runs and rollups), `rollups.rs` (rollup and prune), `incidents.rs` (incident updates), `copy.rs` (a whole store
//! out and in, for `fleetprobe store copy`);
//! `blocks.rs` reads a run's stored columns back for all of them.

mod blocks;
mod cluster_days;
mod copy;
mod incidents;
mod latency;
mod notifications;
mod reads;
mod rollups;
mod schema;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::fleet::Retention;
use crate::probe::CheckKind;
use crate::store::{
    CheckCounts, CheckQuery, ClusterDay, DeliveryOutcome, HistogramRecord, Importer, IncidentUpdate, LatencyQuery,
    Notification, PruneStats, RawRecord, ResultFilter, RollupStats, RunId, RunMeta, RunOutcomes, RunWriter,
    SiteCertificate, SiteRecord, Store, StoreError, StoreResult, StoredResult, StoredRun, TimedHistogram,
};

/// How long to wait for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Levels of `rollups_pending`.
const PENDING_HOUR: i64 = 1;
const PENDING_DAY: i64 = 2;
const PENDING_SITE_DAY: i64 = 3;
/// A day whose cluster day figures are to be computed (again); `next_site_key` holds its mark.
const PENDING_CLUSTER_DAY: i64 = 4;

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens the store at `path`, creating the file (not its directory) and the schema if needed.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        check_location(path)?;
        // No SQLITE_OPEN_URI: a file name containing '?' is a file name.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(path, sqlite_open_message(&e)))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| open_error(path, sqlite_open_message(&e)))?;
        // Before anything is changed (the journal mode is a change to the file): is it ours?
        schema::check_ours(&conn, path)?;
        configure(&conn, path)?;
        // SQLite silently falls back to read-only for a write-protected file; the prober must write.
        if conn.is_readonly("main").map_err(|e| open_error(path, sqlite_open_message(&e)))? {
            return Err(open_error(path, "the file is read-only; the store must be writable".into()));
        }
        schema::migrate(&mut conn, path)?;
        Ok(SqliteStore { conn, path: path.to_path_buf() })
    }

    /// Opens an existing store for reading only: nothing in the file or its folder is changed,
    /// so a store on a read-only file system or mount can be reported on. A store with an older
    /// schema is opened for writing instead, to be upgraded first.
    pub fn open_read_only(path: &Path) -> StoreResult<SqliteStore> {
        let message = |e: rusqlite::Error| open_error(path, sqlite_open_message(&e));
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(message)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(message)?;
        let conn = match schema::check_ours(&conn, path) {
            Ok(()) => conn,
            // A store in WAL mode needs its -shm file; where none can be made (a read-only
            // folder), the file is read as it is, which is all a read-only mount holds.
            Err(_) if schema::user_version(&conn).is_err() => {
                let uri =
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
                let conn =
                    Connection::open_with_flags(format!("{}?immutable=1", file_uri(path)), uri).map_err(message)?;
                schema::check_ours(&conn, path)?;
                conn
            }
            Err(e) => return Err(e),
        };
        match schema::user_version(&conn).map_err(message)? {
            found if found < schema::MIGRATIONS.len() as i64 => {
                drop(conn);
                SqliteStore::open(path)
            }
            found if found > schema::MIGRATIONS.len() as i64 => Err(StoreError::TooNew {
                path: path.display().to_string(),
                found,
                supported: schema::MIGRATIONS.len() as i64,
            }),
            _ => Ok(SqliteStore { conn, path: path.to_path_buf() }),
        }
    }

    fn query_error(&self, what: &str, e: rusqlite::Error) -> StoreError {
        read_error(&self.path, what, e)
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt { path: self.location(), message }
    }
}

impl Store for SqliteStore {
    fn begin_run<'a>(&'a mut self, meta: &RunMeta, sites: &[SiteRecord]) -> StoreResult<Box<dyn RunWriter + 'a>> {
        writer::begin_run(self, meta, sites)
    }

    fn runs(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>> {
        reads::runs(self, from_ms, to_ms)
    }

    fn results(&self, filter: &ResultFilter, each: &mut dyn FnMut(StoredResult) -> StoreResult<()>) -> StoreResult<()> {
        reads::results(self, filter, each)
    }

    fn site_keys(&self) -> StoreResult<Vec<(i64, String)>> {
        reads::site_keys(self)
    }

    fn run_outcomes(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>,
    ) -> StoreResult<()> {
        reads::run_outcomes(self, from_ms, to_ms, each)
    }

    fn vantages(&self) -> StoreResult<Vec<String>> {
        reads::vantages(self)
    }

    fn run_histograms(&self, run_id: RunId) -> StoreResult<Vec<HistogramRecord>> {
        reads::run_histograms(self, run_id)
    }

    fn latency_histograms(
        &self,
        query: &LatencyQuery,
        each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
    ) -> StoreResult<()> {
        latency::latency_histograms(self, query, each)
    }

    fn check_counts(&self, query: &CheckQuery) -> StoreResult<Vec<Vec<CheckCounts>>> {
        let sites = self.sites()?;
        let read = |from, to, each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>| {
            reads::run_outcomes(self, Some(from), Some(to), each)
        };
        crate::store::counts::check_counts(query, &sites, Box::new(read))
    }

    fn rollup(&mut self, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats> {
        rollups::rollup(self, now_ms, site_budget)
    }

    fn prune(&mut self, now_ms: i64, retention: &Retention, run_budget: Option<usize>) -> StoreResult<PruneStats> {
        rollups::prune(self, now_ms, retention, run_budget)
    }

    fn pending_cluster_days(&self, ended_by_ms: i64) -> StoreResult<Vec<(i64, i64)>> {
        cluster_days::pending(self, ended_by_ms)
    }

    fn put_cluster_days(&mut self, days: &[(i64, i64)], rows: &[ClusterDay]) -> StoreResult<()> {
        cluster_days::put(self, days, rows)
    }

    fn cluster_days(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ClusterDay>> {
        cluster_days::list(self, from_ms, to_ms)
    }

    fn earliest_run_ms(&self) -> StoreResult<Option<i64>> {
        cluster_days::earliest_run(self)
    }

    fn add_incident_update(&mut self, update: &IncidentUpdate) -> StoreResult<()> {
        incidents::add_incident_update(self, update)
    }

    fn incident_updates(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<IncidentUpdate>> {
        incidents::incident_updates(self, from_ms, to_ms)
    }

    fn add_notifications(&mut self, notifications: &[Notification]) -> StoreResult<Vec<Notification>> {
        notifications::add(self, notifications)
    }

    fn notifications(&self, since_ms: i64) -> StoreResult<Vec<Notification>> {
        notifications::list(self, since_ms)
    }

    fn claim_notification(
        &mut self,
        target: &str,
        event_key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<bool> {
        notifications::claim(self, target, event_key, now_ms, lease_until_ms)
    }

    fn finish_notification(&mut self, target: &str, event_key: &str, outcome: &DeliveryOutcome) -> StoreResult<()> {
        notifications::finish(self, target, event_key, outcome)
    }

    fn prune_notifications(&mut self, before_ms: i64) -> StoreResult<usize> {
        notifications::prune(self, before_ms)
    }

    fn count_deliveries(&mut self, target: &str, result: &str, n: i64) -> StoreResult<()> {
        notifications::count(self, target, result, n)
    }

    fn notification_counts(&self) -> StoreResult<Vec<(String, String, i64)>> {
        notifications::counts(self)
    }

    fn site_certificates(&self) -> StoreResult<Vec<SiteCertificate>> {
        notifications::site_certificates(self)
    }

    fn export(&self, each: &mut dyn FnMut(RawRecord) -> StoreResult<()>) -> StoreResult<()> {
        copy::export(self, each)
    }

    fn import<'a>(&'a mut self) -> StoreResult<Box<dyn Importer + 'a>> {
        copy::import(self)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

/// Turns the common mistakes into messages before SQLite's terse "unable to open database file".
fn check_location(path: &Path) -> StoreResult<()> {
    let error = |message: String| open_error(path, message);
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(error(format!("directory {} does not exist", dir.display())));
        }
        Err(e) => return Err(error(format!("cannot use directory {}: {e}", dir.display()))),
        Ok(meta) if !meta.is_dir() => return Err(error(format!("{} is not a directory", dir.display()))),
        Ok(_) => {}
    }
    if path.is_dir() {
        return Err(error("this is a directory; give a file path such as fleetprobe.db".into()));
    }
    // Creating the file here reports the operating system's reason (permission, read-only file
    // system); SQLite would only say it cannot open it. An empty file is an empty database.
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(error(format!("cannot create the file: {e}"))),
    }
}

/// A `file:` URI of a path, with the characters a URI gives meaning to escaped.
fn file_uri(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut uri = String::from("file:");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => uri.push(char::from(*byte)),
            other => uri.push_str(&format!("%{other:02X}")),
        }
    }
    uri
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

fn configure(conn: &Connection, path: &Path) -> StoreResult<()> {
    let message = |e| open_error(path, sqlite_open_message(&e));
    // WAL lets reports read while a sweep writes; NORMAL is durable across application crashes
    // and only risks the last commits on power loss, which is fine for one-minute runs.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(message)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(open_error(path, format!("cannot switch to WAL journal mode (still {mode})")));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(message)
}

fn open_error(path: &Path, message: String) -> StoreError {
    StoreError::Open { path: path.display().to_string(), message }
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

fn write_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Query { path: path.display().to_string(), message: format!("cannot write {what}: {e}") }
}

/// What can go wrong while reading stored data inside a longer operation.
#[derive(Debug, thiserror::Error)]
enum DataError {
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    /// The stored data does not decode.
    #[error("{0}")]
    Data(String),
    /// Raised by a caller's callback, passed through as is.
    #[error("{0}")]
    Store(StoreError),
}

impl From<rusqlite::types::FromSqlError> for DataError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        DataError::Data(format!("a stored run's columns are not blobs: {e}"))
    }
}

impl SqliteStore {
    fn data_error(&self, what: &str, e: DataError) -> StoreError {
        match e {
            DataError::Sql(e) => self.query_error(what, e),
            DataError::Data(message) => self.corrupt(message),
            DataError::Store(e) => e,
        }
    }
}

fn check_kind(code: u8) -> Result<CheckKind, DataError> {
    CheckKind::from_code(code).ok_or_else(|| DataError::Data(format!("unknown check kind code {code}")))
}
