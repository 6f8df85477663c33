//! The store: runs, results and latency histograms.
//!
//! Third stage of the data flow. The prober writes one run at a time through a [`RunWriter`]:
//! every result of the run and the run's histograms land in one transaction, or nothing does
//! (dropping the writer without [`RunWriter::finish`] rolls back). Reports read through the
//! query methods of [`Store`]. SQLite is the default backend (`sqlite.rs`); every backend
//! implements the same trait.
//!
//! Latency histograms are kept at three resolutions (per run, hour and day; per site: per day)
//! and rolled up and pruned by [`Store::rollup`] and [`Store::prune`]; `rollup.rs` holds the pure
//! part (buckets, merging, which resolution answers which stretch of a period).

pub mod columns;
pub mod histogram;
pub mod lock;
pub mod rollup;
pub mod sqlite;

use std::path::PathBuf;

use hdrhistogram::Histogram;

use crate::fleet::{Retention, StoreLocation};
use crate::probe::{CheckKind, CheckResult, Outcome, Phase, Timings};

pub use lock::RunLock;
pub use rollup::Resolution;

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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Identifies a run in the store.
pub type RunId = i64;

/// What is known about a run when it starts.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// The prober's name (vantage point).
    pub vantage: String,
    /// When the sweep started, Unix milliseconds (simulated when the clock is overridden).
    pub started_at_ms: i64,
}

/// What is known about a run when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub finished_at_ms: i64,
    /// False when the prober could not reach its own control targets: the run says nothing about
    /// the fleet and never counts as an outage.
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub checks: u64,
    pub failures: u64,
}

/// A site as the store records it, so stored results stay readable when the inventory changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRecord {
    pub id: String,
    pub customer: String,
    pub cluster: String,
    pub hostname: String,
}

/// Latencies of one phase of one check kind on one cluster during one run.
#[derive(Debug, Clone)]
pub struct HistogramRecord {
    pub cluster: String,
    pub check: CheckKind,
    pub phase: Phase,
    /// Values in microseconds.
    pub histogram: Histogram<u64>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub id: RunId,
    pub vantage: String,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub checks: u64,
    pub failures: u64,
}

/// A result as stored, with its site spelled out.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResult {
    pub run_id: RunId,
    pub site: SiteRecord,
    pub check: CheckKind,
    pub outcome: Outcome,
    pub started_at_ms: i64,
    pub attempts: u8,
    pub http_status: Option<u16>,
    pub timings: Timings,
    pub cert_not_after: Option<i64>,
    pub detail: Option<String>,
}

/// The (site key, check) of every result of a run, sorted.
pub type Roster = Vec<(i64, CheckKind)>;

/// What the availability analysis reads of one run.
#[derive(Debug, Clone)]
pub struct RunOutcomes {
    pub roster: std::sync::Arc<Roster>,
    /// Results that failed: (index into the roster, outcome), in roster order.
    pub failed: Vec<(usize, Outcome)>,
}

/// Which results to read. Every set field narrows the selection.
#[derive(Debug, Clone, Default)]
pub struct ResultFilter {
    pub run_id: Option<RunId>,
    pub site_id: Option<String>,
    pub cluster: Option<String>,
    /// Only failed results.
    pub failed_only: bool,
    /// Half-open [from, to) on the run's start, Unix milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: Option<usize>,
}

/// Whose latencies a query reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LatencyScope {
    /// A cluster: per-run histograms and their hour and day rollups.
    Cluster(String),
    /// One site (by id): its raw results and its day rollups.
    Site(String),
}

/// Latencies of one phase of one check kind, over [from, to), in buckets.
#[derive(Debug, Clone)]
pub struct LatencyQuery {
    pub scope: LatencyScope,
    pub check: CheckKind,
    pub phase: Phase,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Length of the output buckets (aligned to the Unix epoch, so to UTC hours and days), or
    /// `None` for one histogram over the whole period.
    pub bucket_ms: Option<i64>,
}

/// The merged latencies of one output bucket, [start, end), in microseconds.
#[derive(Debug, Clone)]
pub struct TimedHistogram {
    pub start_ms: i64,
    pub end_ms: i64,
    pub histogram: Histogram<u64>,
}

/// What one [`Store::rollup`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupStats {
    pub hours: usize,
    pub days: usize,
    /// Sites whose day histograms were built.
    pub site_days: usize,
    /// Days whose per-site histograms are still being built (the site budget ran out).
    pub site_days_unfinished: usize,
}

/// What one [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Runs removed with their results and per-run histograms.
    pub runs: usize,
    /// Runs past the raw retention still waiting (the run budget ran out, or a rollup is pending).
    pub runs_left: usize,
    /// Per-run histograms removed (kept for less time than the runs: see `retention.run_histograms`).
    pub run_histograms: usize,
    pub hour_histograms: usize,
    pub day_histograms: usize,
    pub site_day_histograms: usize,
}

/// A note people post about an incident ("engineers are replacing the storage controller"),
/// with an optional new title and cause; the latest title and cause are the incident's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentUpdate {
    /// The incident's stable id, e.g. `fra-1-20261014T2200`.
    pub incident_id: String,
    pub posted_at_ms: i64,
    pub text: String,
    pub title: Option<String>,
    pub cause: Option<String>,
}

/// Writes one run. Dropped without `finish`, nothing of the run is kept.
pub trait RunWriter {
    /// Adds one result; `result.site` indexes the `sites` passed to [`Store::begin_run`].
    fn insert(&mut self, result: &CheckResult) -> StoreResult<()>;
    /// Stores the run record and histograms and commits everything at once.
    fn finish(self: Box<Self>, summary: &RunSummary, histograms: &[HistogramRecord]) -> StoreResult<RunId>;
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
    /// Histograms of one run.
    fn run_histograms(&self, run_id: RunId) -> StoreResult<Vec<HistogramRecord>>;
    /// Merged latencies for `query`, one bucket at a time in time order (empty buckets left
    /// out), each merged from the coarsest stored histograms that fit it exactly. Invalid runs
    /// and failed checks have no latencies.
    fn latency_histograms(
        &self,
        query: &LatencyQuery,
        each: &mut dyn FnMut(TimedHistogram) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Rolls up every hour and day that has ended by `now_ms` and received runs since its last
    /// rollup: cluster hours and days from per-run histograms, site days from raw results (at
    /// most `site_budget` sites per call; the rest on the next). Idempotent.
    fn rollup(&mut self, now_ms: i64, site_budget: Option<usize>) -> StoreResult<RollupStats>;
    /// Removes data older than `retention` allows before `now_ms`: at most `run_budget` runs
    /// (with their results and histograms), never one whose rollups are pending.
    fn prune(&mut self, now_ms: i64, retention: &Retention, run_budget: Option<usize>) -> StoreResult<PruneStats>;
    /// Stores one incident update.
    fn add_incident_update(&mut self, update: &IncidentUpdate) -> StoreResult<()>;
    /// Incident updates posted in [from, to), oldest first.
    fn incident_updates(&self, from_ms: Option<i64>, to_ms: Option<i64>) -> StoreResult<Vec<IncidentUpdate>>;
    /// Where this store lives, for messages.
    fn location(&self) -> String;
}

/// The fleet's sites as the store records them, in fleet order.
pub fn site_records(fleet: &crate::fleet::Fleet) -> Vec<SiteRecord> {
    fleet
        .sites
        .iter()
        .map(|s| SiteRecord {
            id: s.id.clone(),
            customer: fleet.customers[s.customer].id.clone(),
            cluster: fleet.clusters[s.cluster].name.clone(),
            hostname: s.hostname.clone(),
        })
        .collect()
}

/// Opens the store at `location`, creating it (and migrating its schema) if needed.
pub fn open(location: &StoreLocation) -> StoreResult<Box<dyn Store>> {
    match location {
        StoreLocation::Sqlite(path) => Ok(Box::new(sqlite::SqliteStore::open(path)?)),
        StoreLocation::Postgres(url) => Err(StoreError::Unsupported(format!(
            "store {url}: the PostgreSQL backend is not available in this build; use an SQLite file path"
        ))),
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
