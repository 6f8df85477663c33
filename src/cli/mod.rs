//! Command-line interface: parses arguments, runs one command through `app`, prints errors once.
//!
//! Top floor of the data flow: every clap type lives here. Exit codes (documented in the
//! README): 0 success (sites being down is success for the prober), 1 internal error, 2 usage or
//! configuration error, 3 store error, 4 another run holds the lock, 5 the run was stored but
//! marked invalid (the prober's own network failed).

mod args;
mod report;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::probe::ProbeReport;
use crate::app::{self, ErrorKind};
use crate::fleet::Fleet;
use args::{Common, ConfigArgs};

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
    Import(ImportArgs),
    /// Reports for engineers, account managers and customers, from stored results.
    Report {
        #[command(subcommand)]
        report: report::ReportCommand,
    },
    /// Serve the demo fleet on loopback inside this process and probe it.
    Demo(DemoArgs),
    /// Roll up latency histograms and remove data older than the configured retention.
    Prune(PruneArgs),
    /// Incidents: post updates (title, cause, what is being done) for the status page.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// The store itself: copy it to another place or backend.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    /// Copy a whole store (runs, results, histograms, rollups, incident updates) into a new,
    /// empty one: SQLite to PostgreSQL, PostgreSQL to SQLite, or either to itself elsewhere.
    Copy {
        /// The store to copy: an SQLite file path, `sqlite://PATH`, or `postgres://USER@HOST:PORT/DB`
        from: String,
        /// The new store (an SQLite file is created; a PostgreSQL database must exist and be empty)
        to: String,
    },
}

#[derive(clap::Args)]
struct ProbeArgs {
    #[command(flatten)]
    common: Common,
    /// Record the run as starting at this UTC time instead of now (tests, demos, backfills)
    #[arg(long, value_name = "TIMESTAMP", env = "FLEETPROBE_AT")]
    at: Option<jiff::Timestamp>,
    /// Print a summary even when every check passed
    #[arg(short, long)]
    verbose: bool,
    /// Print nothing but errors, not even failed checks
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Sweep only shard K of N (overrides `probe.shard`): the sites whose stable hash of their
    /// id modulo N is K-1
    #[arg(long, value_name = "K/N")]
    shard: Option<crate::fleet::Shard>,
}

#[derive(clap::Args)]
struct ResultsArgs {
    #[command(flatten)]
    common: Common,
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

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ResultsFormat {
    Table,
    Csv,
}

#[derive(clap::Args)]
struct PruneArgs {
    #[command(flatten)]
    common: Common,
    /// Pretend it is this UTC time (tests, backfills)
    #[arg(long, value_name = "TIMESTAMP", env = "FLEETPROBE_NOW")]
    now: Option<jiff::Timestamp>,
}

#[derive(clap::Args)]
struct ImportArgs {
    #[command(flatten)]
    common: Common,
    /// Vantage for rows without a `vantage` column
    #[arg(long, default_value = "import")]
    vantage: String,
    /// Whether runs of rows without a `run_valid` value count (yes|no); without it such rows are refused
    #[arg(long, value_name = "yes|no", value_parser = clap::builder::BoolishValueParser::new())]
    valid: Option<bool>,
    /// The CSV file to load
    file: PathBuf,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Directory for the demo's configuration, inventory, store and reports [default: a new temporary directory]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The scenario to play [default: the built-in probes/demo-scenario.toml]
    #[arg(long, conflicts_with = "once")]
    scenario: Option<PathBuf>,
    /// One sweep with a few sites broken on purpose, and what the prober found
    #[arg(long)]
    once: bool,
    /// Probers sweeping each run of the scenario, each with its own vantage and source address
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5), conflicts_with = "once")]
    vantages: u8,
    /// Play into this PostgreSQL database (postgres://...; it must hold no fleetprobe data yet) instead of DIR/fleetprobe.db
    #[arg(long, value_name = "URL", conflicts_with = "once")]
    store: Option<String>,
}

#[derive(clap::Subcommand)]
enum IncidentCommand {
    /// Post an update on an incident (shown on the status page and in its feed).
    Update(UpdateArgs),
}

#[derive(clap::Args)]
struct UpdateArgs {
    #[command(flatten)]
    common: Common,
    /// The incident's id: its cluster and start in UTC, e.g. fra-1-20261014T2200 (see `report incidents`)
    id: String,
    /// What is known and being done, for customers to read
    text: String,
    /// A new title for the incident, e.g. "Storage failure on fra-1"
    #[arg(long)]
    title: Option<String>,
    /// The cause, once known
    #[arg(long)]
    cause: Option<String>,
    /// When the update was posted (UTC, RFC 3339) instead of now
    #[arg(long, value_name = "TIMESTAMP", env = "FLEETPROBE_AT")]
    at: Option<jiff::Timestamp>,
}

/// The exit code of a failed command.
fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Internal => 1,
        ErrorKind::Config => 2,
        ErrorKind::Store => 3,
        ErrorKind::Locked => 4,
        ErrorKind::InvalidRun => 5,
        ErrorKind::OutputClosed => 0,
    }
}

pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,usvg=error")).init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check { config } => check(&config),
        Command::Probe(args) => probe(&args),
        Command::Results(args) => args.common.context().and_then(|context| {
            app::results::list(
                &context,
                &app::results::ResultsRequest {
                    run: args.run.clone(),
                    site: args.site.clone(),
                    cluster: args.cluster.clone(),
                    failed: args.failed,
                    limit: args.limit,
                    csv: args.format == ResultsFormat::Csv,
                    output: args.output.clone(),
                },
            )
        }),
        Command::Import(args) => {
            args.common.context().and_then(|context| app::import::run(&context, &args.file, &args.vantage, args.valid))
        }
        Command::Report { report } => report::run(&report),
        Command::Demo(args) => crate::demo::run(
            args.dir.as_deref(),
            args.scenario.as_deref(),
            args.once,
            &crate::demo::Options { vantages: args.vantages, store: args.store.clone() },
        ),
        Command::Prune(args) => args
            .common
            .context()
            .and_then(|context| app::probe::prune(&context, args.now.unwrap_or_else(jiff::Timestamp::now))),
        Command::Incident { command: IncidentCommand::Update(args) } => args.common.context().and_then(|context| {
            app::incident::update(
                &context,
                &app::incident::UpdateRequest {
                    id: args.id.clone(),
                    text: args.text.clone(),
                    title: args.title.clone(),
                    cause: args.cause.clone(),
                    at: args.at,
                },
            )
        }),
        Command::Store { command: StoreCommand::Copy { from, to } } => store_copy(&from, &to),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind == ErrorKind::OutputClosed => ExitCode::SUCCESS,
        Err(e) => {
            // Printed once, here; `tool: what went wrong`.
            let _ = std::io::stdout().flush();
            eprintln!("fleetprobe: {}", e.message.trim_end());
            ExitCode::from(exit_code(e.kind))
        }
    }
}

/// `fleetprobe check`: the configuration is valid; a summary of the fleet.
fn check(args: &ConfigArgs) -> app::Result<()> {
    let fleet = app::load_fleet(args.config.as_deref())?;
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

/// `fleetprobe probe`: one run; quiet unless something failed (cron mails any output).
fn probe(args: &ProbeArgs) -> app::Result<()> {
    let mut context = args.common.context()?;
    if let Some(shard) = args.shard {
        context.fleet.probe.shard = Some(shard);
    }
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let (report, invalid) = app::probe::probe(&context, args.at, progress)?;
    print_probe_report(&context.fleet, &report, args.verbose, args.quiet);
    invalid.map_or(Ok(()), Err)
}

/// Quiet when all is well (cron mails any output); a short summary by cluster and class otherwise.
fn print_probe_report(fleet: &Fleet, report: &ProbeReport, verbose: bool, quiet: bool) {
    if quiet || (!verbose && report.summary.failures == 0 && report.not_measured == 0) {
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
    if report.not_measured > 0 {
        let _ = writeln!(
            out,
            "  {} checks missed the deadline ({:?}): not measured, their sites unmonitored for this run",
            report.not_measured, fleet.probe.deadline
        );
    }
    if !report.failures.is_empty() {
        let width = report.failures.keys().map(|(c, _)| c.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(out, "  {:<width$}  {:<24} {:>7}", "cluster", "failure", "checks");
        for ((cluster, class), count) in &report.failures {
            let _ = writeln!(out, "  {cluster:<width$}  {class:<24} {count:>7}");
        }
    }
}

/// `fleetprobe store copy FROM TO`: one line saying what was copied.
fn store_copy(from: &str, to: &str) -> app::Result<()> {
    let report = app::store_copy::copy(from, to)?;
    let parts: Vec<String> = report.rows.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
    let what = if parts.is_empty() { "nothing (the store is empty)".to_string() } else { parts.join(", ") };
    println!("copied {what}");
    Ok(())
}
