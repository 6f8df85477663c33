//! The PostgreSQL backend: one database shared by several probers, read by reports while they
//! write.
//!
//! It keeps what the SQLite store keeps, in the same encoding: a run's results are one row's
//! columns (`columns.rs`, `bytea`), so a result costs a few bytes here too, and `fleetprobe store
//! copy` moves rows between the two backends without decoding them. Runs, their result details
//! and their per-run histograms are partitioned by month of the run's start (declarative
//! partitioning on `started_at_ms`, partitions created by the writer as runs arrive), so that
//! retention drops whole months. A sweep holds an advisory lock named after its vantage for as
//! long as the store is open ([`PostgresStore::lock_vantage`]): a vantage never overlaps
//! itself, and different vantages never wait for each other.
//!
//! The client is the blocking `postgres` crate. This file connects and answers the [`Store`]
//! trait by handing each call to the file of its role: `schema.rs` (tables, migrations,
//! partitions), `writer.rs` (a run's transaction), `reads.rs` (runs, results, outcomes, per-run
//! histograms), `latency.rs` (latency queries), `rollups.rs` (rollup and prune), `incidents.rs`
//! (incident updates), `copy.rs` (a whole store out and in); `blocks.rs` reads a run's stored
//! columns back for all of them.

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
mod tests;
mod writer;

use std::cell::RefCell;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config, NoTls};

use crate::fleet::Retention;
use crate::probe::CheckKind;
use crate::store::{
    CheckCounts, CheckQuery, ClusterDay, DeliveryOutcome, HistogramRecord, Importer, IncidentUpdate, LatencyQuery,
    Notification, PruneStats, RawRecord, ResultFilter, RollupStats, RunId, RunMeta, RunOutcomes, RunWriter,
    SiteCertificate, SiteRecord, Store, StoreError, StoreResult, StoredResult, StoredRun, TimedHistogram,
};

/// Levels of `rollups_pending`, as in the SQLite store.
const PENDING_HOUR: i16 = 1;
const PENDING_DAY: i16 = 2;
const PENDING_SITE_DAY: i16 = 3;
const PENDING_CLUSTER_DAY: i16 = 4;

/// Advisory lock keys (64-bit) of the store's own: the vantage locks are hashes of their names
/// with the top bit clear, these have it set.
const LOCK_SCHEMA: i64 = i64::MIN | 0x666c_7072_0001;
const LOCK_PARTITIONS: i64 = i64::MIN | 0x666c_7072_0002;
const LOCK_HOUSEKEEPING: i64 = i64::MIN | 0x666c_7072_0003;

/// A store in a PostgreSQL database.
pub struct PostgresStore {
    /// Reads take `&self`; the client needs `&mut` for every statement. No borrow is held while
    /// a caller's callback runs.
    client: RefCell<Client>,
    /// The URL without its password, for messages.
    location: String,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://` or `postgresql://`), creating or migrating the schema.
    pub fn open(url: &str) -> StoreResult<PostgresStore> {
        let location = redact(url);
        let open_error = |message: String| StoreError::Open { path: location.clone(), message };
        let mut config: Config = url.parse().map_err(|e| open_error(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_ssl_mode() == SslMode::Require {
            return Err(open_error("TLS to PostgreSQL is not supported by this build; use sslmode=disable".into()));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Names the process in pg_stat_activity, so a held vantage lock can say who holds it.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        config.application_name(&format!("fleetprobe pid {} on {}", std::process::id(), host.trim()));
        let mut client = config.connect(NoTls).map_err(|e| open_error(format!("cannot connect: {}", message(&e))))?;
        schema::migrate(&mut client, &location)?;
        Ok(PostgresStore { client: RefCell::new(client), location })
    }

    fn query_error(&self, what: &str, e: postgres::Error) -> StoreError {
        read_error(&self.location, what, e)
    }

    fn corrupt(&self, message: String) -> StoreError {
        StoreError::Corrupt { path: self.location.clone(), message }
    }

    fn data_error(&self, what: &str, e: DataError) -> StoreError {
        match e {
            DataError::Sql(e) => self.query_error(what, e),
            DataError::Data(message) => self.corrupt(message),
            DataError::Store(e) => e,
        }
    }

    /// Runs `f` with the client; never call it again from inside `f`.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> T) -> T {
        f(&mut self.client.borrow_mut())
    }
}

impl Store for PostgresStore {
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

    fn lock_vantage(&mut self, vantage: &str) -> StoreResult<()> {
        let key = vantage_lock_key(vantage);
        let location = self.location.clone();
        let error = |e| write_error(&location, "the vantage lock", e);
        let client = self.client.get_mut();
        let taken: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).map_err(error)?.get(0);
        if taken {
            return Ok(());
        }
        // Who holds it: the application name every fleetprobe connection sets.
        let holder: Option<String> = client
            .query_opt(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
                 AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1",
                &[&key],
            )
            .ok()
            .flatten()
            .and_then(|row| row.get(0));
        let holder = holder.filter(|h| !h.is_empty()).map(|h| format!(" ({h})")).unwrap_or_default();
        Err(StoreError::Locked(format!(
            "another fleetprobe run of vantage `{vantage}` holds its lock in store {location}{holder}; \
             not starting a second sweep"
        )))
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
        self.location.clone()
    }
}

/// The advisory lock key of a vantage: a 63-bit FNV-1a hash of its name.
fn vantage_lock_key(vantage: &str) -> i64 {
    let hash = format!("fleetprobe vantage {vantage}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (hash >> 1) as i64
}

/// The URL with its password (if any) replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// The server's own words for an error when it sent some, else the client's.
fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn read_error(location: &str, what: &str, e: postgres::Error) -> StoreError {
    let path = location.to_string();
    // A column of an unexpected type means the database holds something this build did not write.
    if e.as_db_error().is_none() && e.to_string().starts_with("error deserializing") {
        return StoreError::Corrupt { path, message: format!("{what}: {}", message(&e)) };
    }
    StoreError::Query { path, message: format!("cannot read {what}: {}", message(&e)) }
}

fn write_error(location: &str, what: &str, e: postgres::Error) -> StoreError {
    StoreError::Query { path: location.to_string(), message: format!("cannot write {what}: {}", message(&e)) }
}

/// What can go wrong while reading stored data inside a longer operation.
#[derive(Debug)]
enum DataError {
    Sql(postgres::Error),
    /// The stored data does not decode.
    Data(String),
    /// Raised by a caller's callback, passed through as is.
    Store(StoreError),
}

impl From<postgres::Error> for DataError {
    fn from(e: postgres::Error) -> Self {
        DataError::Sql(e)
    }
}

fn check_kind(code: i16) -> Result<CheckKind, DataError> {
    u8::try_from(code)
        .ok()
        .and_then(CheckKind::from_code)
        .ok_or_else(|| DataError::Data(format!("unknown check kind code {code}")))
}

/// A stored small code (check kind, phase, level) as the `u8` the rest of fleetprobe uses.
fn code(value: i16, what: &str) -> Result<u8, DataError> {
    u8::try_from(value).map_err(|_| DataError::Data(format!("{what} code {value} out of range")))
}
