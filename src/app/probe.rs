//! One probe run: the lock, the control rounds, the sweep, the writer, then the rollups and the
//! pruning that follow a stored run; and `prune`, the same housekeeping without a sweep.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Error, ErrorKind, Result};
use crate::fleet::{Fleet, StoreLocation};
use crate::probe::{CheckResult, Probers, sweep};
use crate::store::{self, RunLock, RunMeta, RunSummary};

/// What a finished sweep reports back (the demo prints it its own way).
pub struct ProbeReport {
    pub run_id: store::RunId,
    pub summary: RunSummary,
    /// (cluster, failure class) → failed checks.
    pub failures: BTreeMap<(String, String), u64>,
    pub sites_down: usize,
    /// Checks not finished by `probe.deadline`: stored as not measured (no observation).
    pub not_measured: u64,
    pub elapsed: std::time::Duration,
    /// Time spent rolling up and pruning after the run was stored.
    pub housekeeping: std::time::Duration,
    /// How the sweep kept to its planned start times.
    pub schedule: sweep::SweepStats,
    /// When the sweep started (Unix ms, simulated with `--at`).
    pub started_at_ms: i64,
    /// Counts per cluster and site, for the metrics file.
    pub figures: super::metrics::RunFigures,
}

/// Runs a probe run prunes at most after storing its own (one expires per run in the steady
/// state); `fleetprobe prune` does any backlog at once.
const HOUSEKEEPING_RUNS: usize = 5;
/// Days whose cluster figures a probe run computes at most: one settles per day in the steady
/// state, and an upgraded store catches up a day per run rather than lengthen one run.
const HOUSEKEEPING_DAYS: usize = 1;

/// One locked, transactional run: control checks, the sweep, the writer, the histograms.
pub fn run_probe(
    fleet: Arc<Fleet>,
    location: &StoreLocation,
    tls: Arc<rustls::ClientConfig>,
    at: Option<jiff::Timestamp>,
    progress: bool,
) -> Result<ProbeReport> {
    let _lock = match store::lock_path(location) {
        Some(path) => Some(RunLock::acquire(&path).map_err(|e| match e {
            store::lock::LockError::Held { .. } => Error::new(ErrorKind::Locked, e.to_string()),
            store::lock::LockError::Io { .. } => Error::store(e.to_string()),
        })?),
        None => None,
    };
    let mut store = store::open(location).map_err(|e| Error::store(e.to_string()))?;
    // A store shared by several probers (PostgreSQL) locks per vantage instead of per file.
    store.lock_vantage(&fleet.probe.vantage).map_err(|e| match e {
        store::StoreError::Locked(message) => Error::new(ErrorKind::Locked, message),
        e => Error::store(e.to_string()),
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    sweep::raise_open_files_limit();
    let probers = Probers::new(&fleet, tls);
    let wall_start = std::time::Instant::now();

    let has_control = !fleet.control.targets.is_empty();
    let control_before = has_control.then(|| runtime.block_on(sweep::control_round(&fleet, &probers)));

    let sites = store::site_records(&fleet);
    // The run starts when its sweep starts; `--at` pins that instant exactly, and later times
    // (each result's start, the run's end) keep their real distance from it.
    let real_start_ms = jiff::Timestamp::now().as_millisecond();
    let started_at_ms = at.map_or(real_start_ms, |t| t.as_millisecond());
    let now_ms = || jiff::Timestamp::now().as_millisecond() - real_start_ms + started_at_ms;
    let meta = RunMeta { vantage: fleet.probe.vantage.clone(), started_at_ms };
    let mut writer = store.begin_run(&meta, &sites).map_err(|e| Error::store(e.to_string()))?;

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<CheckResult>(4096);
    // The deadline counts from the run's start, control round included.
    let deadline = tokio::time::Instant::from_std(wall_start) + fleet.probe.deadline;
    let sweep_task = runtime.spawn(sweep::sweep_until(fleet.clone(), probers.clone(), started_at_ms, deadline, sender));
    let bar = progress.then(|| progress_bar(fleet.check_count() as u64));
    let mut latencies = store::histogram::RunLatencies::default();
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut down = vec![false; fleet.sites.len()];
    let mut figures = super::metrics::RunFigures::new(&fleet);
    let (mut checks, mut failed, mut not_measured) = (0u64, 0u64, 0u64);
    while let Some(result) = next_result(&mut receiver) {
        writer.insert(&result).map_err(|e| Error::store(format!("{e}; the run was not stored")))?;
        checks += 1;
        figures.record(&fleet, &result);
        let cluster = fleet.sites[result.site].cluster;
        match result.outcome.failure() {
            None => latencies.record(cluster, &result),
            Some(failure) if !failure.is_observation() => not_measured += 1,
            Some(failure) => {
                failed += 1;
                down[result.site] = true;
                *failures.entry((fleet.clusters[cluster].name.clone(), failure.to_string())).or_default() += 1;
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    let schedule = runtime.block_on(sweep_task).map_err(|e| Error::internal(format!("the sweep failed: {e}")))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let control_after = has_control.then(|| runtime.block_on(sweep::control_round(&fleet, &probers)));

    let min_ok = fleet.control.min_ok;
    let invalid_reason = [("before", &control_before), ("after", &control_after)].iter().find_map(|(when, round)| {
        round.as_ref().filter(|r| !r.passed(min_ok)).map(|r| {
            format!(
                "{} of {} control targets answered {when} the sweep (need {min_ok}): {}",
                r.ok,
                r.total,
                r.failures.join("; ")
            )
        })
    });
    let summary = RunSummary {
        finished_at_ms: now_ms(),
        valid: invalid_reason.is_none(),
        invalid_reason,
        checks,
        failures: failed,
    };
    figures.latencies(&fleet, &latencies);
    let histogram_records = latencies.into_records(&fleet);
    let run_id = writer
        .finish(&summary, &histogram_records)
        .map_err(|e| Error::store(format!("{e}; the run was not stored")))?;
    let elapsed = wall_start.elapsed();

    // The run is stored; now roll up the hours and days that just ended and drop what the
    // retention no longer keeps, in small steps so that a sweep stays short.
    let now = now_ms();
    let interval_ms = i64::try_from(fleet.probe.interval.as_millis()).unwrap_or(i64::MAX);
    store
        .rollup(now, Some(store::rollup::site_budget(fleet.sites.len(), interval_ms)))
        .map_err(|e| Error::store(format!("{e} (run {run_id} was stored)")))?;
    super::status::roll_up_cluster_days(&fleet, store.as_mut(), now, Some(HOUSEKEEPING_DAYS))
        .map_err(|e| Error::store(format!("cluster days: {e} (run {run_id} was stored)")))?;
    store
        .prune(now, &fleet.retention, Some(HOUSEKEEPING_RUNS))
        .and_then(|_| store.prune_notifications(notification_cutoff(&fleet, now)))
        .map_err(|e| Error::store(format!("{e} (run {run_id} was stored)")))?;
    let housekeeping = wall_start.elapsed() - elapsed;
    log::debug!("rollup and prune after run {run_id}: {housekeeping:?}");
    Ok(ProbeReport {
        run_id,
        summary,
        failures,
        sites_down: down.iter().filter(|&&d| d).count(),
        not_measured,
        elapsed,
        housekeeping,
        schedule,
        started_at_ms,
        figures,
    })
}

/// The next result for the store writer. With none waiting it naps a millisecond before it
/// blocks: a writer that blocks whenever it has caught up is woken once per result (a futex call
/// and a context switch for a prober thread and for it), which cost more than the write.
fn next_result(receiver: &mut tokio::sync::mpsc::Receiver<CheckResult>) -> Option<CheckResult> {
    match receiver.try_recv() {
        Ok(result) => Some(result),
        Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => None,
        Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
            std::thread::sleep(std::time::Duration::from_millis(1));
            receiver.blocking_recv()
        }
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} probing [{bar:40}] {pos}/{len} checks ({per_sec}, {eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// `fleetprobe prune`: rolls up everything due and prunes in steps of a few hundred runs, so that a probe starting
/// meanwhile waits for one short transaction at most.
/// Event records are kept as long as runs, and always as long as the notifier still reads
/// them to know what was sent.
fn notification_cutoff(fleet: &Fleet, now_ms: i64) -> i64 {
    let raw_ms = i64::try_from(fleet.retention.raw.as_millis()).unwrap_or(i64::MAX);
    super::notify::records_needed_since(&fleet.notify, now_ms).min(now_ms.saturating_sub(raw_ms))
}

pub fn prune(context: &super::Context, now: jiff::Timestamp) -> Result<()> {
    let fleet = &context.fleet;
    let mut store = context.open_existing_store_for_writing()?;
    let now = now.as_millisecond();
    let rolled = store.rollup(now, None)?;
    let cluster_days = super::status::roll_up_cluster_days(fleet, store.as_mut(), now, None)?;
    let mut pruned = store::PruneStats::default();
    loop {
        let step = store.prune(now, &fleet.retention, Some(200))?;
        pruned.runs += step.runs;
        pruned.runs_left = step.runs_left;
        pruned.hour_histograms += step.hour_histograms;
        pruned.day_histograms += step.day_histograms;
        pruned.site_day_histograms += step.site_day_histograms;
        if step.runs == 0 {
            break;
        }
    }
    let notifications = store.prune_notifications(notification_cutoff(fleet, now))?;
    println!(
        "rolled up {} hours, {} days, {} site days, {} cluster days; removed {} runs, {} hour, {} day and {} site \
         day histograms, {notifications} notification records",
        rolled.hours,
        rolled.days,
        rolled.site_days,
        cluster_days,
        pruned.runs,
        pruned.hour_histograms,
        pruned.day_histograms,
        pruned.site_day_histograms
    );
    if pruned.runs_left > 0 {
        println!("{} runs past retention are kept until their hour and day are rolled up", pruned.runs_left);
    }
    Ok(())
}

/// `fleetprobe probe`: one run of the whole fleet. A run stored as invalid is an error of its
/// own kind, returned after the report so the caller can print both.
pub fn probe(
    context: &super::Context,
    at: Option<jiff::Timestamp>,
    progress: bool,
) -> Result<(ProbeReport, Option<Error>)> {
    let fleet = Arc::new(context.fleet.clone());
    // A source address this machine does not have would fail every check: say so instead.
    if let Some(source) = fleet.probe.source_address
        && let Err(e) = std::net::UdpSocket::bind((source, 0))
    {
        return Err(Error::config(format!(
            "{}: probe.source_address {source} cannot be used on this machine: {e}",
            fleet.config_path.display()
        )));
    }
    let tls =
        crate::probe::tls::client_config(fleet.probe.ca_file.as_deref()).map_err(|e| Error::config(e.to_string()))?;
    let report = run_probe(fleet.clone(), &context.store, tls, at, progress)?;
    // Metrics and notifications read the same analysis of the last day, made once. They are for
    // watching the fleet: failing at them never fails the run, and delivery is bounded by
    // `notify.deadline`.
    if fleet.metrics.textfile.is_some() || !fleet.notify.targets.is_empty() {
        let now_ms = report.started_at_ms + report.elapsed.as_millis() as i64;
        let opened = context.open_existing_store_for_writing().and_then(|store| {
            let recent = super::analyze::recent(&fleet, store.as_ref(), now_ms)?;
            Ok((store, recent))
        });
        match opened {
            Ok((mut store, recent)) => {
                if let Some(path) = &fleet.metrics.textfile
                    && let Err(e) = super::metrics::write(&fleet, &recent, &report, path)
                {
                    log::warn!("{e}");
                }
                super::notify::after_run(&fleet, store.as_mut(), &recent, now_ms);
            }
            Err(e) => log::warn!("metrics and notifications after run {}: {e}", report.run_id),
        }
    }
    let invalid = (!report.summary.valid).then(|| {
        Error::new(
            ErrorKind::InvalidRun,
            format!(
                "run {} stored as invalid: {}",
                report.run_id,
                report.summary.invalid_reason.as_deref().unwrap_or("control targets failed")
            ),
        )
    });
    Ok((report, invalid))
}
