//! The store: runs, results and latency histograms.
//!
//! Third stage of the data flow. The prober writes one run at a time through a [`RunWriter`]:
//! every result of the run and the run's histograms land in one transaction, or nothing does
//! (dropping the writer without [`RunWriter::finish`] rolls back). Reports read through the
//! query methods of [`Store`]. SQLite is the default backend (`sqlite/`); every backend
//! implements the same trait, and [`open`] picks one from the [`StoreLocation`].
//!
//! Latency histograms are kept at three resolutions (per run, hour and day; per site: per day)
//! and rolled up and pruned by [`Store::rollup`] and [`Store::prune`]; `rollup.rs` holds the pure
//! part (buckets, merging, which resolution answers which stretch of a period).
//!
//! The second backend, PostgreSQL (`postgres/`, for several probers writing to one database),
//! implements [`Store`] and [`RunWriter`] over the values of `types.rs`. Both keep the trait's
//! contracts: a run is committed whole or not at all, periods are half-open and results come in
//! the documented order, [`Store::rollup`] and [`Store::prune`] can be repeated and never drop data whose rollup is pending; histograms are
//! stored with [`histogram::encode`] and merged with [`rollup::merge`]. Their errors become
//! [`StoreError`]s naming the store's location, and no type of a database library appears
//! here. `columns.rs` is the compact encoding of a run's results that both backends keep, so
//! [`Store::export`] and [`Store::import`] copy a store from one backend to the other row by
//! row without decoding it.

pub mod columns;
mod counts;
pub mod histogram;
pub mod lock;
mod notifications;
pub mod postgres;
pub mod rollup;
pub mod sqlite;
mod types;

use std::path::PathBuf;

use crate::fleet::{Retention, StoreLocation};
use crate::probe::CheckResult;

pub use lock::RunLock;
pub use notifications::{DeliveryOutcome, Notification};
pub use rollup::Resolution;
pub use types::{
    CheckCounts, CheckQuery, ClusterDay, HistogramRecord, IncidentUpdate, LatencyQuery, LatencyScope, PruneStats,
    RawColumns, RawRecord, ResultFilter, RollupStats, Roster, RunId, RunMeta, RunOutcomes, RunSummary, SiteCertificate,
    SiteRecord, StoredResult, StoredRun, TimedHistogram, site_records,
};

/// Why the store could not do what was asked. The binary prints these with the store's location.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "store {path} has schema version {found}, newer than this fleetprobe understands ({supported}); upgrade fleetprobe"
    )]
    TooNew { path: String, found: i64, supported: i64 },
    #[error("store {path}: {message}")]
    Query { path: String, message: String },
    #[error("store {path}: stored data is corrupt: {message}")]
    Corrupt { path: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    /// Another sweep of the same vantage holds the store's run lock.
    #[error("{0}")]
    Locked(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Writes one run. Dropped without `finish`, nothing of the run is kept.
pub trait RunWriter {
    /// Adds one result; `result.site` indexes the `sites` passed to [`Store::begin_run`].
    fn insert(&mut self, result: &CheckResult) -> StoreResult<()>;
    /// Stores the run record and histograms and commits everything at once.
    fn finish(self: Box<Self>, summary: &RunSummary, histograms: &[HistogramRecord]) -> StoreResult<RunId>;
}

/// Takes a whole store's rows, in the order [`Store::export`] gives them.
pub trait Importer {
    fn add(&mut self, record: RawRecord) -> StoreResult<()>;
    /// Commits everything at once (dropped without it, nothing is kept).
    fn finish(self: Box<Self>) -> StoreResult<()>;
}

/// A place where runs are kept.
pub trait Store {
    /// Starts writing a run over `sites` (the fleet's sites, in fleet order).
    fn begin_run<'a>(&'a mut self, meta: &RunMeta, sites: &[SiteRecord]) -> StoreResult<Box<dyn RunWriter + 'a>>;
    /// Runs whose start is in [from, to), oldest first.
    fn runs(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>>;
    /// Calls `each` for every result matching `filter`, ordered by run then site.
    fn results(&self, filter: &ResultFilter, each: &mut dyn FnMut(StoredResult) -> StoreResult<()>) -> StoreResult<()>;
    /// The store's site registry: (site key, site id). Keys are what [`Store::run_outcomes`] gives.
    fn site_keys(&self) -> StoreResult<Vec<(i64, String)>>;
    /// Every finished run whose start is in [from, to), oldest first, with its outcomes in the
    /// lean shape the availability analysis replays: who was checked, and what failed. Runs
    /// with the same roster share one [`Roster`] (the same `Arc`), so a month of runs over an
    /// unchanged fleet costs the analysis its failures, not its results.
    fn run_outcomes(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        each: &mut dyn FnMut(&StoredRun, &RunOutcomes) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Every vantage that has a run in the store, sorted.
    fn vantages(&self) -> StoreResult<Vec<String>>;
    /// Histograms of one run.
    fn run_histograms(&self, run_id: RunId) -> StoreResult<Vec<HistogramRecord>>;
    /// Merged latencies for `query`, one bucket at a time in time order (empty buckets left
    /// out), each merged from the coarsest stored histograms that fit it exactly. Invalid runs
    /// and failed checks have no latencies. With `query.vantages`, only those vantages' runs
    /// count, read from per-run histograms and results (rollups hold every vantage merged).
    fn latency_histograms(
        &self,
        query: &LatencyQuery,
        each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Checks measured and failed per bucket for each scope of `query` (in its order), in time
    /// order, buckets where nothing was measured left out. One pass serves every scope. Read from the outcome columns of the runs, so only as far back as
    /// runs are kept (see [`Store::earliest_run_ms`]). Invalid runs and checks the sweep did not
    /// get to measure count as nothing measured; with several vantages, each vantage's checks
    /// count. A site is in a cluster's scope by the cluster the store last recorded for it.
    fn check_counts(&self, query: &CheckQuery) -> StoreResult<Vec<Vec<CheckCounts>>>;
    /// Rolls up every hour and day that has ended by `now_ms` and received runs since its last
    /// rollup: cluster hours and days from per-run histograms, site days from raw results (at
    /// most `site_budget` sites per call; the rest on the next). Idempotent.
    fn rollup(&mut self, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats>;
    /// Removes data older than `retention` allows before `now_ms`: at most `run_budget` runs
    /// (with their results and histograms), never one whose rollups are pending.
    fn prune(&mut self, now_ms: i64, retention: &Retention, run_budget: Option<usize>) -> StoreResult<PruneStats>;
    /// UTC days whose cluster day figures ([`ClusterDay`]) are missing or stale and that ended by
    /// `ended_by_ms`, oldest first, each with its mark: a run stored later marks its day again.
    /// A run marks its own day and the day before (see [`rollup::DAY_SETTLE_MS`]).
    fn pending_cluster_days(&self, ended_by_ms: i64) -> StoreResult<Vec<(i64, i64)>>;
    /// Replaces the figures of each day of `days` (day start, mark) with the `rows` of that day,
    /// and clears the day's pending mark unless a run marked it again meanwhile.
    fn put_cluster_days(&mut self, days: &[(i64, i64)], rows: &[ClusterDay]) -> StoreResult<()>;
    /// Stored cluster day figures of the days starting in [from, to), by day then cluster;
    /// days still pending are left out.
    fn cluster_days(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ClusterDay>>;
    /// Start of the oldest stored run: raw results cover the time from then on.
    fn earliest_run_ms(&self) -> StoreResult<Option<i64>>;
    /// Stores one incident update.
    fn add_incident_update(&mut self, update: &IncidentUpdate) -> StoreResult<()>;
    /// Incident updates posted in [from, to), oldest first.
    fn incident_updates(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<IncidentUpdate>>;
    /// Records events not recorded yet (by target and event key); returns those that were new.
    /// Two probers recording the same event at once record it once.
    fn add_notifications(&mut self, notifications: &[Notification]) -> StoreResult<Vec<Notification>>;
    /// Events recorded at or after `since_ms`, and every older one still pending, oldest first.
    fn notifications(&self, since_ms: i64) -> StoreResult<Vec<Notification>>;
    /// Takes a pending event whose next attempt is due at `now_ms` for one delivery attempt,
    /// pushing its next attempt to `lease_until_ms` so that no other prober takes it meanwhile.
    /// False when it is not due, done, or another prober took it first.
    fn claim_notification(
        &mut self,
        target: &str,
        event_key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> StoreResult<bool>;
    /// Records how a claimed attempt ended, and counts it for `target` (see
    /// [`Store::notification_counts`]).
    fn finish_notification(&mut self, target: &str, event_key: &str, outcome: &DeliveryOutcome) -> StoreResult<()>;
    /// Adds `n` to the count of deliveries to `target` that ended in `result` (`ok`, `failed`,
    /// `abandoned`): Alertmanager's re-sent alerts are counted here without an event.
    fn count_deliveries(&mut self, target: &str, result: &str, n: i64) -> StoreResult<()>;
    /// Removes the records of events delivered or abandoned before `before_ms`; pending ones
    /// stay whatever their age. Returns how many went.
    fn prune_notifications(&mut self, before_ms: i64) -> StoreResult<usize>;
    /// Every (target, result, count) so far, sorted.
    fn notification_counts(&self) -> StoreResult<Vec<(String, String, i64)>>;
    /// Every site's latest known certificate (expiry and issuer), soonest expiry first, for
    /// sites whose checks saw a certificate.
    fn site_certificates(&self) -> StoreResult<Vec<SiteCertificate>>;
    /// Keeps every other sweep of `vantage` from writing this store while it is open, or fails
    /// with [`StoreError::Locked`] when one already does. Sweeps of other vantages go on. The
    /// SQLite store has no such lock of its own: its lock file ([`lock_path`]) keeps a second
    /// sweep out of the whole file.
    fn lock_vantage(&mut self, vantage: &str) -> StoreResult<()> {
        let _ = vantage;
        Ok(())
    }
    /// Every stored row, for [`Store::import`] into another store: sites, rosters, runs with
    /// their columns, result details, per-run histograms, certificate dates, rollups, site days,
    /// pending rollups, incident updates, cluster days, in that order.
    fn export(&self, each: &mut dyn FnMut(RawRecord) -> StoreResult<()>) -> StoreResult<()>;
    /// Starts loading another store's rows (from [`Store::export`]) into this one, which must
    /// hold no runs, sites or incident updates yet.
    fn import<'a>(&'a mut self) -> StoreResult<Box<dyn Importer + 'a>>;
    /// Where this store lives, for messages.
    fn location(&self) -> String;
}

/// Opens the store at `location`, creating it (and migrating its schema) if needed.
pub fn open(location: &StoreLocation) -> StoreResult<Box<dyn Store>> {
    match location {
        StoreLocation::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path)?)),
        StoreLocation::Postgres(url) => Ok(Box::new(postgres::PostgresStore::open(url)?)),
    }
}

/// Opens an existing store for reading only (reports, `results`): nothing in it is changed.
pub fn open_read_only(location: &StoreLocation) -> StoreResult<Box<dyn Store>> {
    match location {
        StoreLocation::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open_read_only(path)?)),
        StoreLocation::Postgres(_) => open(location),
    }
}

/// The lock file that keeps two sweeps from writing the same store at once.
pub fn lock_path(location: &StoreLocation) -> Option<PathBuf> {
    match location {
        StoreLocation::Sqlite(path) => {
            let mut name = path.file_name()?.to_os_string();
            name.push(".lock");
            Some(path.with_file_name(name))
        }
        StoreLocation::Postgres(_) => None,
    }
}
