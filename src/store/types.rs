//! The values the store keeps and gives back, the same for every backend: runs, results,
//! histograms, what a query asks for and what a rollup or a prune did.

use hdrhistogram::Histogram;

use crate::probe::{CheckKind, Outcome, Phase, Timings};
use crate::store::notifications::Notification;

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

/// A site's latest known certificate, as its checks saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteCertificate {
    pub site: SiteRecord,
    /// Expiry, Unix seconds.
    pub not_after: i64,
    /// "R11 (Let's Encrypt)"; `None` until a check after the store learned issuers saw one.
    pub issuer: Option<String>,
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
    /// Only the runs of these vantages; empty for every vantage merged. Rollups merge all
    /// vantages, so a query for some reads per-run data only: as far back as runs are kept.
    pub vantages: Vec<String>,
}

/// Which checks [`Store::check_counts`](super::Store::check_counts) counts: those of one check
/// kind in each of some scopes, in the runs started in [from, to), per bucket.
#[derive(Debug, Clone)]
pub struct CheckQuery {
    pub scopes: Vec<LatencyScope>,
    pub check: CheckKind,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Length of the buckets, aligned to the Unix epoch, or `None` for one bucket over the
    /// whole period (as [`LatencyQuery::bucket_ms`]).
    pub bucket_ms: Option<i64>,
    /// Only the runs of these vantages; empty for every vantage (each vantage's checks count).
    pub vantages: Vec<String>,
}

/// The checks measured in one bucket, [start, end), and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckCounts {
    pub start_ms: i64,
    pub end_ms: i64,
    pub checks: u64,
    pub failed: u64,
}

/// The merged latencies of one output bucket, [start, end), in microseconds.
#[derive(Debug, Clone)]
pub struct TimedHistogram {
    pub start_ms: i64,
    pub end_ms: i64,
    pub histogram: Histogram<u64>,
}

/// What one [`Store::rollup`](super::Store::rollup) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupStats {
    pub hours: usize,
    pub days: usize,
    /// Sites whose day histograms were built.
    pub site_days: usize,
    /// Days whose per-site histograms are still being built (the site budget ran out).
    pub site_days_unfinished: usize,
}

/// What one [`Store::prune`](super::Store::prune) removed.
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

/// A stored row as the store keeps it, for copying a whole store to another
/// (`fleetprobe store copy`). Encoded columns and histograms travel as they are, never decoded
/// and encoded again; keys (site keys, roster and run ids) are kept, since rosters refer to
/// sites by key and certificate dates to runs by id.
#[derive(Debug, Clone, PartialEq)]
pub enum RawRecord {
    Site {
        key: i64,
        site: SiteRecord,
        cert_not_after: Option<i64>,
        cert_issuer: Option<String>,
    },
    Roster {
        id: i64,
        hash: i64,
        count: i64,
        roster: Vec<u8>,
    },
    /// A finished run with its columns (`None` for a run stored without results).
    Run {
        run: StoredRun,
        columns: Option<RawColumns>,
    },
    Detail {
        run_id: RunId,
        site_key: i64,
        check: u8,
        detail: String,
    },
    Histogram {
        run_id: RunId,
        cluster: String,
        check: u8,
        phase: u8,
        hist: Vec<u8>,
    },
    Cert {
        site_key: i64,
        from_run: RunId,
        not_after: i64,
    },
    /// An hour (resolution 1) or day (2) histogram of a cluster.
    Rollup {
        resolution: u8,
        cluster: String,
        check: u8,
        phase: u8,
        bucket_ms: i64,
        hist: Vec<u8>,
    },
    SiteDay {
        site_key: i64,
        check: u8,
        phase: u8,
        day_ms: i64,
        hist: Vec<u8>,
    },
    Pending {
        level: u8,
        bucket_ms: i64,
        next_site_key: i64,
    },
    IncidentUpdate(IncidentUpdate),
    /// An event recorded for a notification target, with its delivery state.
    Notification(Notification),
    /// Deliveries to a target with one result (the metrics file's counter).
    NotificationCount {
        target: String,
        result: String,
        count: i64,
    },
    ClusterDay(ClusterDay),
}

/// One cluster's availability over one UTC day, as the status page's bar shows it: the
/// daily rollup that outlives the raw runs it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDay {
    pub cluster: String,
    /// Start of the UTC day.
    pub day_ms: i64,
    /// Monitored site-milliseconds outside maintenance (the availability's denominator).
    pub eligible_ms: i64,
    /// Site-milliseconds in confirmed outages outside maintenance.
    pub down_ms: i64,
    /// Incidents of the cluster that overlap the day.
    pub incidents: i64,
}

/// A run's results as stored (see `columns.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumns {
    pub roster_id: i64,
    pub outcomes: Vec<u8>,
    pub details: Vec<u8>,
}
