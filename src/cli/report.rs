//! `fleetprobe report ...`: one subcommand per report, each turned into a request for `app`.

use std::path::PathBuf;

use clap::ValueEnum;

use super::args::{Common, FormatArg, PeriodArgs};
use crate::app::{self, reports, sla::SlaRequest};
use crate::probe::{CheckKind, Phase};
use crate::report::chart::ChartSize;
use crate::report::latency::{By, ChartKind};

#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Per-cluster availability, coverage and incidents with the share of customers affected.
    Clusters(ClustersArgs),
    /// Incidents: when, how long, how many customers, which failures; filter by cluster and scope.
    Incidents(IncidentsArgs),
    /// The customers and sites one incident hit, with contacts and downtime, as CSV.
    Affected(AffectedArgs),
    /// SLA per customer: availability against the plan's target, credits; PDFs and credits.csv.
    Sla(SlaArgs),
    /// Latency percentiles of a cluster or site as a table, or charts (bands, heatmap, phases, CDF).
    Latency(LatencyArgs),
    /// Sites whose certificate expires soon: site, customer, cluster, expiry, days left.
    Certs(CertsArgs),
    /// The public status page: a static site (index.html, feed.atom) with state, history, incidents.
    Status(StatusArgs),
}

#[derive(clap::Args)]
pub struct ClustersArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Latency charts of the HTML report from these vantages only (repeat, or separate with commas) [default: all merged]
    #[arg(long, value_delimiter = ',')]
    pub vantage: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Write to this file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Only incidents on this cluster
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only incidents of this scope: isolated, partial or major
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct CertsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Certificates expiring within this long from now (e.g. 21d, 72h)
    #[arg(long, default_value = "21d", value_parser = parse_within)]
    pub within: std::time::Duration,
    /// Pretend it is this UTC time
    #[arg(long, env = "FLEETPROBE_NOW")]
    pub now: Option<jiff::Timestamp>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

fn parse_within(text: &str) -> Result<std::time::Duration, String> {
    crate::fleet::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
pub struct AffectedArgs {
    #[command(flatten)]
    pub common: Common,
    /// The incident id, as listed by `report incidents` (e.g. fra-1-20261014T2200)
    #[arg(long)]
    pub incident: String,
    /// Pretend it is this UTC time
    #[arg(long, env = "FLEETPROBE_NOW")]
    pub now: Option<jiff::Timestamp>,
    /// Time zone for the times shown
    #[arg(long, default_value = "UTC", env = "FLEETPROBE_TZ")]
    pub tz: String,
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct SlaArgs {
    #[command(flatten)]
    pub common: Common,
    /// The period [default: the last full calendar month in --tz]
    #[command(flatten)]
    pub period: PeriodArgs,
    /// One customer
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub customer: Option<String>,
    /// Every customer: with `-o DIR`, one PDF each, credits.csv and summary.html
    #[arg(long)]
    pub all: bool,
    /// Table, CSV or JSON of the SLA figures when not writing PDFs
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// A .pdf file (one customer), a directory (--all), or a file for --format
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Branding and wording of the PDFs [default: reports/branding.toml next to the config, else built in]
    #[arg(long)]
    pub branding: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub common: Common,
    /// A cluster (repeat, or separate with commas, to compare clusters)
    #[arg(long, value_delimiter = ',', required_unless_present = "site", conflicts_with = "site")]
    pub cluster: Vec<String>,
    /// A site id (repeat, or separate with commas, to compare sites)
    #[arg(long, value_delimiter = ',')]
    pub site: Vec<String>,
    /// Only this vantage's runs (repeat, or separate with commas) [default: every vantage merged]
    #[arg(long, value_delimiter = ',')]
    pub vantage: Vec<String>,
    /// Which check's latencies: a check kind (http, dns, ...)
    #[arg(long, default_value = "http", value_parser = parse_check)]
    pub check: CheckKind,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// One row per hour or day instead of one for the whole period (tables)
    #[arg(long, value_enum)]
    pub by: Option<ByArg>,
    /// Table format
    #[arg(long, value_enum, default_value = "table")]
    pub format: LatencyFormatArg,
    /// Draw a chart instead of a table (needs -o FILE.png or FILE.svg)
    #[arg(long, value_enum)]
    pub kind: Option<ChartArg>,
    /// The phase charted by bands, heatmap and cdf [default: the check's own: first_byte for http, dns for dns, connect for tcp]
    #[arg(long, value_parser = parse_phase)]
    pub phase: Option<Phase>,
    /// Write here: FILE.png or FILE.svg for a chart, any other name for the table
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Chart size in pixels
    #[arg(long, default_value = "1000x500", value_parser = parse_size)]
    pub size: ChartSize,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ByArg {
    Hour,
    Day,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LatencyFormatArg {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ChartArg {
    /// p50 line with p90, p99 and max bands over time (SmokePing style)
    Bands,
    /// distribution over time: time × log latency, colour = checks
    Heatmap,
    /// mean time per phase, stacked: per cluster or site, or over time for one
    Phases,
    /// cumulative distribution, one line per cluster or site
    Cdf,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
    /// Directory to write index.html and feed.atom into (created if missing)
    #[arg(short, long)]
    pub output: PathBuf,
    /// Pretend it is this UTC time (deterministic pages in tests and demos)
    #[arg(long, env = "FLEETPROBE_NOW", value_name = "TIMESTAMP")]
    pub now: Option<jiff::Timestamp>,
    /// Days of daily availability bars and incident history
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
}

fn parse_check(text: &str) -> Result<CheckKind, String> {
    CheckKind::parse(text).ok_or_else(|| {
        let known: Vec<&str> = CheckKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("`{text}` is not a check kind; expected one of {}", known.join(", "))
    })
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::parse(text)
        .filter(|p| *p != Phase::Body)
        .ok_or_else(|| format!("`{text}` is not a phase; expected dns, connect, tls, first_byte or total"))
}

fn parse_size(text: &str) -> Result<ChartSize, String> {
    let bad = || format!("`{text}` is not a size; expected WIDTHxHEIGHT such as 1000x500");
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let (width, height) = (w.trim().parse::<u32>().map_err(|_| bad())?, h.trim().parse::<u32>().map_err(|_| bad())?);
    if !(200..=8000).contains(&width) || !(150..=8000).contains(&height) {
        return Err(format!("{text}: expected a width of 200 to 8000 and a height of 150 to 8000 pixels"));
    }
    Ok(ChartSize { width, height })
}

pub fn run(command: &ReportCommand) -> app::Result<()> {
    match command {
        ReportCommand::Clusters(args) => {
            let context = args.common.context()?;
            reports::clusters(&context, &args.period.spec(), &args.vantage, args.format.into(), args.output.clone())
        }
        ReportCommand::Incidents(args) => reports::incidents(
            &args.common.context()?,
            &reports::IncidentsRequest {
                period: args.period.spec(),
                cluster: args.cluster.clone(),
                scope: args.scope.clone(),
                format: args.format.into(),
                output: args.output.clone(),
            },
        ),
        ReportCommand::Certs(args) => {
            reports::certs(&args.common.context()?, args.within, args.now, args.format.into(), args.output.clone())
        }
        ReportCommand::Affected(args) => {
            reports::affected(&args.common.context()?, &args.incident, args.now, &args.tz, args.output.clone())
        }
        ReportCommand::Sla(args) => app::sla::run(
            &args.common.context()?,
            &SlaRequest {
                period: args.period.spec(),
                customer: if args.all { None } else { args.customer.clone() },
                format: args.format.into(),
                output: args.output.clone(),
                branding: args.branding.clone(),
                config_path: args.common.config.config.clone(),
            },
        ),
        ReportCommand::Latency(args) => reports::latency(
            &args.common.context()?,
            &reports::LatencyRequest {
                clusters: args.cluster.clone(),
                sites: args.site.clone(),
                vantages: args.vantage.clone(),
                check: args.check,
                period: args.period.spec(),
                by: args.by.map(|by| match by {
                    ByArg::Hour => By::Hour,
                    ByArg::Day => By::Day,
                }),
                format: match args.format {
                    LatencyFormatArg::Table => crate::report::Format::Table,
                    LatencyFormatArg::Csv => crate::report::Format::Csv,
                    LatencyFormatArg::Json => crate::report::Format::Json,
                },
                chart: args.kind.map(|kind| match kind {
                    ChartArg::Bands => ChartKind::Bands,
                    ChartArg::Heatmap => ChartKind::Heatmap,
                    ChartArg::Phases => ChartKind::Phases,
                    ChartArg::Cdf => ChartKind::Cdf,
                }),
                phase: args.phase,
                output: args.output.clone(),
                size: args.size,
            },
        ),
        ReportCommand::Status(args) => {
            let context = args.common.context()?;
            let now_ms = args.now.unwrap_or_else(jiff::Timestamp::now).as_millisecond();
            let store = context.open_existing_store()?;
            let index = app::status::write(&context.fleet, store.as_ref(), &args.output, now_ms, args.days)?;
            eprintln!("fleetprobe: status page written to {}", index.display());
            Ok(())
        }
    }
}
