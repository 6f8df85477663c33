//! Command-line interface: parses arguments, runs one command, prints errors once.
//!
//! Exit codes (documented in the README): 0 success (sites being down is success for the
//! prober), 1 internal error, 2 usage or configuration error, 3 store error, 4 another run holds
//! the lock, 5 the run was stored but marked invalid (the prober's own network failed).

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

mod import;
pub mod incident;

use crate::fleet::{Fleet, StoreLocation};
use crate::probe::{CheckResult, Probers, sweep, tls};
use crate::store::{self, ResultFilter, RunLock, RunMeta, RunSummary, StoredResult};

#[derive(Parser)]
#[command(name = "fleetprobe", version, about = "Uptime prober and SLA reporter for hosting fleets")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and inventory, and summarize the fleet.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Run one sweep of the whole fleet and store the results (for cron, every minute).
    Probe(ProbeArgs),
    /// List or export stored results.
    Results(ResultsArgs),
    /// Load results from CSV (the `results --format csv` format): backfills, migrations, tests.
    Import(import::ImportArgs),
    /// Reports for engineers, account managers and customers, from stored results.
    Report {
        #[command(subcommand)]
        report: crate::report::ReportCommand,
    },
    /// Serve the demo fleet on loopback inside this process and probe it.
    Demo(crate::demo::DemoArgs),
    /// Roll up latency histograms and remove data older than the configured retention.
    Prune(PruneArgs),
    /// Incidents: post updates (title, cause, what is being done) for the status page.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
}

#[derive(clap::Args, Clone)]
pub struct ConfigArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/fleetprobe/fleetprobe.toml, then /etc/fleetprobe/fleetprobe.toml]
    #[arg(short, long, env = "FLEETPROBE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Store location, overriding the configuration: a file path or sqlite://PATH
    #[arg(long, env = "FLEETPROBE_STORE")]
    pub store: Option<String>,
}

#[derive(clap::Args, Clone)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Record the run as starting at this UTC time instead of now (tests, demos, backfills)
    #[arg(long, value_name = "TIMESTAMP", env = "FLEETPROBE_AT")]
    pub at: Option<jiff::Timestamp>,
    /// Print a summary even when every check passed
    #[arg(short, long)]
    pub verbose: bool,
    /// Print nothing but errors, not even failed checks
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(clap::Args)]
struct ResultsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// A run id, or `latest`
    #[arg(long)]
    run: Option<String>,
    /// Only this site
    #[arg(long)]
    site: Option<String>,
    /// Only this cluster
    #[arg(long)]
    cluster: Option<String>,
    /// Only failed checks
    #[arg(long)]
    failed: bool,
    /// At most this many rows
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    format: ResultsFormat,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PruneArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Pretend it is this UTC time (tests, backfills)
    #[arg(long, value_name = "TIMESTAMP", env = "FLEETPROBE_NOW")]
    now: Option<jiff::Timestamp>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ResultsFormat {
    Table,
    Csv,
}

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub struct CommandError {
    pub exit: u8,
    pub message: String,
}

impl CommandError {
    pub fn internal(message: impl Into<String>) -> Self {
        CommandError { exit: 1, message: message.into() }
    }
    pub fn config(message: impl Into<String>) -> Self {
        CommandError { exit: 2, message: message.into() }
    }
    pub fn store(message: impl Into<String>) -> Self {
        CommandError { exit: 3, message: message.into() }
    }
}

pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,usvg=error")).init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check { config } => check(&config),
        Command::Probe(args) => probe(&args).map(|_| ()),
        Command::Results(args) => results(&args),
        Command::Import(args) => import::run(&args),
        Command::Report { report } => crate::report::run(&report),
        Command::Demo(args) => crate::demo::run(&args),
        Command::Prune(args) => prune(&args),
        Command::Incident { command } => incident::run(&command),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed once, here; `tool: what went wrong`.
            let _ = std::io::stdout().flush();
            eprintln!("fleetprobe: {}", e.message.trim_end());
            ExitCode::from(e.exit)
        }
    }
}

/// Finds the configuration file: the flag, then the XDG location, then /etc.
pub fn config_path(args: &ConfigArgs) -> Result<PathBuf, CommandError> {
    if let Some(path) = &args.config {
        return Ok(path.clone());
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let candidates: Vec<PathBuf> = xdg
        .map(|d| d.join("fleetprobe/fleetprobe.toml"))
        .into_iter()
        .chain([PathBuf::from("/etc/fleetprobe/fleetprobe.toml")])
        .collect();
    candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        CommandError::config(format!(
            "no configuration given; pass -c FILE (tried {}). `fleetprobe demo` runs without one",
            tried.join(", ")
        ))
    })
}

pub fn load_fleet(args: &ConfigArgs) -> Result<Fleet, CommandError> {
    let path = config_path(args)?;
    Fleet::load(&path).map_err(|e| CommandError::config(format!("invalid configuration:\n{e}")))
}

pub fn store_location(fleet: &Fleet, args: &StoreArgs) -> Result<StoreLocation, CommandError> {
    match &args.store {
        None => Ok(fleet.store.clone()),
        Some(text) => {
            StoreLocation::parse(text, Path::new("")).map_err(|e| CommandError::config(format!("--store: {e}")))
        }
    }
}

fn check(args: &ConfigArgs) -> Result<(), CommandError> {
    let fleet = load_fleet(args)?;
    let summary = fleet.cluster_summary();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}: ok", fleet.config_path.display());
    let _ = writeln!(
        out,
        "{} sites, {} customers, {} clusters, {} plans, {} maintenance windows, {} checks per sweep",
        fleet.sites.len(),
        fleet.customers.len(),
        fleet.clusters.len(),
        fleet.plans.len(),
        fleet.maintenance.len(),
        fleet.check_count()
    );
    let width = fleet.clusters.iter().map(|c| c.name.len()).max().unwrap_or(7).max(7);
    let _ = writeln!(out, "\n{:<width$}  {:>7}  {:>9}", "cluster", "sites", "customers");
    for (cluster, (sites, customers)) in fleet.clusters.iter().zip(summary) {
        let _ = writeln!(out, "{:<width$}  {sites:>7}  {customers:>9}", cluster.name);
    }
    let _ = writeln!(out, "\nstore: {}", fleet.store);
    Ok(())
}

/// What a finished sweep reports back (the demo prints it its own way).
pub struct ProbeReport {
    pub run_id: store::RunId,
    pub summary: RunSummary,
    /// (cluster, failure class) → failed checks.
    pub failures: BTreeMap<(String, String), u64>,
    pub sites_down: usize,
    pub elapsed: std::time::Duration,
    /// Time spent rolling up and pruning after the run was stored.
    pub housekeeping: std::time::Duration,
    /// How the sweep kept to its planned start times.
    pub schedule: sweep::SweepStats,
}

/// Runs a probe run prunes at most after storing its own (one expires per run in the steady
/// state); `fleetprobe prune` does any backlog at once.
const HOUSEKEEPING_RUNS: usize = 5;

fn probe(args: &ProbeArgs) -> Result<ProbeReport, CommandError> {
    let fleet = Arc::new(load_fleet(&args.config)?);
    let location = store_location(&fleet, &args.store)?;
    let tls = tls::client_config(fleet.probe.ca_file.as_deref()).map_err(|e| CommandError::config(e.to_string()))?;
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let report = run_probe(fleet.clone(), &location, tls, args.at, progress)?;
    print_probe_report(&fleet, &report, args.verbose, args.quiet);
    if !report.summary.valid {
        return Err(CommandError {
            exit: 5,
            message: format!(
                "run {} stored as invalid: {}",
                report.run_id,
                report.summary.invalid_reason.as_deref().unwrap_or("control targets failed")
            ),
        });
    }
    Ok(report)
}

/// One locked, transactional run: control checks, the sweep, the writer, the histograms.
pub fn run_probe(
    fleet: Arc<Fleet>,
    location: &StoreLocation,
    tls: Arc<rustls::ClientConfig>,
    at: Option<jiff::Timestamp>,
    progress: bool,
) -> Result<ProbeReport, CommandError> {
    let _lock = match store::lock_path(location) {
        Some(path) => Some(RunLock::acquire(&path).map_err(|e| match e {
            store::lock::LockError::Held { .. } => CommandError { exit: 4, message: e.to_string() },
            store::lock::LockError::Io { .. } => CommandError::store(e.to_string()),
        })?),
        None => None,
    };
    let mut store = store::open(location).map_err(|e| CommandError::store(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::internal(format!("cannot start the async runtime: {e}")))?;
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
    let mut writer = store.begin_run(&meta, &sites).map_err(|e| CommandError::store(e.to_string()))?;

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<CheckResult>(4096);
    let sweep_task = runtime.spawn(sweep::sweep(fleet.clone(), probers.clone(), started_at_ms, sender));
    let bar = progress.then(|| progress_bar(fleet.check_count() as u64));
    let mut latencies = store::histogram::RunLatencies::default();
    let mut failures: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut down = vec![false; fleet.sites.len()];
    let (mut checks, mut failed) = (0u64, 0u64);
    while let Some(result) = next_result(&mut receiver) {
        writer.insert(&result).map_err(|e| CommandError::store(format!("{e}; the run was not stored")))?;
        checks += 1;
        let cluster = fleet.sites[result.site].cluster;
        match result.outcome.failure() {
            None => latencies.record(cluster, &result),
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
    let schedule =
        runtime.block_on(sweep_task).map_err(|e| CommandError::internal(format!("the sweep failed: {e}")))?;
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
    let histogram_records = latencies.into_records(&fleet);
    let run_id = writer
        .finish(&summary, &histogram_records)
        .map_err(|e| CommandError::store(format!("{e}; the run was not stored")))?;
    let elapsed = wall_start.elapsed();

    // The run is stored; now roll up the hours and days that just ended and drop what the
    // retention no longer keeps, in small steps so that a sweep stays short.
    let now = now_ms();
    let interval_ms = i64::try_from(fleet.probe.interval.as_millis()).unwrap_or(i64::MAX);
    store
        .rollup(now, Some(store::rollup::site_budget(fleet.sites.len(), interval_ms)))
        .and_then(|_| store.prune(now, &fleet.retention, Some(HOUSEKEEPING_RUNS)))
        .map_err(|e| CommandError::store(format!("{e} (run {run_id} was stored)")))?;
    let housekeeping = wall_start.elapsed() - elapsed;
    log::debug!("rollup and prune after run {run_id}: {housekeeping:?}");
    Ok(ProbeReport {
        run_id,
        summary,
        failures,
        sites_down: down.iter().filter(|&&d| d).count(),
        elapsed,
        housekeeping,
        schedule,
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

/// Quiet when all is well (cron mails any output); a short summary by cluster and class otherwise.
fn print_probe_report(fleet: &Fleet, report: &ProbeReport, verbose: bool, quiet: bool) {
    if quiet || (!verbose && report.summary.failures == 0) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let s = &report.summary;
    let _ = writeln!(
        out,
        "run {}: {} of {} checks failed, {} of {} sites down ({:.1}s, {:.0} checks/s)",
        report.run_id,
        s.failures,
        s.checks,
        report.sites_down,
        fleet.sites.len(),
        report.elapsed.as_secs_f64(),
        s.checks as f64 / report.elapsed.as_secs_f64().max(1e-9)
    );
    if !report.failures.is_empty() {
        let width = report.failures.keys().map(|(c, _)| c.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(out, "  {:<width$}  {:<24} {:>7}", "cluster", "failure", "checks");
        for ((cluster, class), count) in &report.failures {
            let _ = writeln!(out, "  {cluster:<width$}  {class:<24} {count:>7}");
        }
    }
}

/// Rolls up everything due and prunes in steps of a few hundred runs, so that a probe starting
/// meanwhile waits for one short transaction at most.
fn prune(args: &PruneArgs) -> Result<(), CommandError> {
    let fleet = load_fleet(&args.config)?;
    let mut store = crate::report::open_existing_store(&fleet, &args.store)?;
    let now = args.now.unwrap_or_else(jiff::Timestamp::now).as_millisecond();
    let store_error = |e: store::StoreError| CommandError::store(e.to_string());
    let rolled = store.rollup(now, None).map_err(store_error)?;
    let mut pruned = store::PruneStats::default();
    loop {
        let step = store.prune(now, &fleet.retention, Some(200)).map_err(store_error)?;
        pruned.runs += step.runs;
        pruned.runs_left = step.runs_left;
        pruned.hour_histograms += step.hour_histograms;
        pruned.day_histograms += step.day_histograms;
        pruned.site_day_histograms += step.site_day_histograms;
        if step.runs == 0 {
            break;
        }
    }
    println!(
        "rolled up {} hours, {} days, {} site days; removed {} runs, {} hour, {} day and {} site day histograms",
        rolled.hours,
        rolled.days,
        rolled.site_days,
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

fn results(args: &ResultsArgs) -> Result<(), CommandError> {
    let fleet = load_fleet(&args.config)?;
    let location = store_location(&fleet, &args.store)?;
    if let StoreLocation::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(CommandError::store(format!(
            "store {} does not exist yet; run `fleetprobe probe` first",
            path.display()
        )));
    }
    let store = store::open(&location).map_err(|e| CommandError::store(e.to_string()))?;
    let runs = store.runs(None, None).map_err(|e| CommandError::store(e.to_string()))?;
    let run_id = match args.run.as_deref() {
        None => None,
        Some("latest") => {
            Some(runs.last().map(|r| r.id).ok_or_else(|| CommandError::store("the store holds no runs yet"))?)
        }
        Some(text) => Some(
            text.parse().map_err(|_| CommandError::config(format!("--run `{text}`: expected a run id or `latest`")))?,
        ),
    };
    if let Some(cluster) = &args.cluster
        && fleet.cluster_index(cluster).is_none()
    {
        let known: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(CommandError::config(format!(
            "--cluster: unknown cluster `{cluster}`; expected one of: {}",
            known.join(", ")
        )));
    }
    let vantages: HashMap<i64, (String, i64)> =
        runs.iter().map(|r| (r.id, (r.vantage.clone(), r.started_at_ms))).collect();
    let filter = ResultFilter {
        run_id,
        site_id: args.site.clone(),
        cluster: args.cluster.clone(),
        failed_only: args.failed,
        limit: args.limit,
        ..ResultFilter::default()
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| CommandError::internal(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let write_error = |e: std::io::Error| CommandError::internal(format!("writing results: {e}"));
    match args.format {
        ResultsFormat::Csv => {
            let mut csv = csv::Writer::from_writer(sink);
            csv.write_record(RESULT_COLUMNS).map_err(|e| CommandError::internal(e.to_string()))?;
            store
                .results(&filter, &mut |r| {
                    let row = result_row(&r, &vantages);
                    csv.write_record(row.iter().map(|c| crate::report::csv_safe(c).into_owned()))
                        .map_err(|e| store::StoreError::Query { path: "output".into(), message: e.to_string() })
                })
                .map_err(|e| CommandError::store(e.to_string()))?;
            csv.flush().map_err(write_error)?;
        }
        ResultsFormat::Table => {
            let mut rows = Vec::new();
            store
                .results(&filter, &mut |r| {
                    rows.push(result_row(&r, &vantages));
                    Ok(())
                })
                .map_err(|e| CommandError::store(e.to_string()))?;
            let mut out = sink;
            let shown = [0usize, 1, 3, 5, 7, 8, 9, 15, 17];
            let mut widths: Vec<usize> = shown.iter().map(|&i| RESULT_COLUMNS[i].len()).collect();
            for row in &rows {
                for (w, &i) in widths.iter_mut().zip(&shown) {
                    *w = (*w).max(row[i].chars().count().min(60));
                }
            }
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, &w)| format!("{:<w$}", truncate(c, 60)))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            writeln!(out, "{}", line(shown.iter().map(|&i| RESULT_COLUMNS[i]).collect()).trim_end())
                .map_err(write_error)?;
            for row in &rows {
                writeln!(out, "{}", line(shown.iter().map(|&i| row[i].as_str()).collect()).trim_end())
                    .map_err(write_error)?;
            }
            if rows.is_empty() {
                writeln!(out, "(no results match)").map_err(write_error)?;
            }
            out.flush().map_err(write_error)?;
        }
    }
    Ok(())
}

const RESULT_COLUMNS: [&str; 18] = [
    "run_id",
    "run_started_at",
    "vantage",
    "site_id",
    "customer",
    "cluster",
    "hostname",
    "check",
    "outcome",
    "http_status",
    "attempts",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "first_byte_ms",
    "total_ms",
    "cert_expires",
    "detail",
];

fn result_row(r: &StoredResult, runs: &HashMap<i64, (String, i64)>) -> Vec<String> {
    let ms = |us: Option<u32>| us.map_or(String::new(), |us| format!("{:.3}", f64::from(us) / 1000.0));
    let (vantage, run_start) = runs.get(&r.run_id).cloned().unwrap_or_default();
    vec![
        r.run_id.to_string(),
        format_ms(run_start),
        vantage,
        r.site.id.clone(),
        r.site.customer.clone(),
        r.site.cluster.clone(),
        r.site.hostname.clone(),
        r.check.to_string(),
        r.outcome.to_string(),
        r.http_status.map_or(String::new(), |s| s.to_string()),
        r.attempts.to_string(),
        ms(r.timings.dns_us),
        ms(r.timings.connect_us),
        ms(r.timings.tls_us),
        ms(r.timings.first_byte_us),
        ms(Some(r.timings.total_us)),
        r.cert_not_after
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or(String::new(), |t| t.strftime("%Y-%m-%d").to_string()),
        r.detail.clone().unwrap_or_default(),
    ]
}

/// A Unix-millisecond time as RFC 3339 UTC, to the second.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}
