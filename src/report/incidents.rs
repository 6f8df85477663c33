//! `fleetprobe report incidents`: the incident list, filterable by cluster and scope; and
//! `fleetprobe report affected`: every customer and site an incident hit, with contacts, for
//! support to reach each of them personally.

use std::collections::BTreeMap;

use super::clusters::{incident_row, incident_table};
use super::period::PeriodArgs;
use super::table::{Align, Format, Table};
use crate::analysis::Span;
use crate::analysis::incidents::Scope;
use crate::analysis::outages::minutes;
use crate::cli::{CommandError, ConfigArgs, StoreArgs};

#[derive(clap::Args)]
pub struct IncidentsArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Only incidents on this cluster
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only incidents of this scope: isolated, partial or major
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct AffectedArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
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
    pub output: Option<std::path::PathBuf>,
}

pub fn run_incidents(args: &IncidentsArgs) -> Result<(), CommandError> {
    let fleet = crate::cli::load_fleet(&args.config)?;
    let period = args.period.resolve("30d").map_err(CommandError::config)?;
    let cluster = match &args.cluster {
        None => None,
        Some(name) => Some(fleet.cluster_index(name).ok_or_else(|| {
            let known: Vec<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
            CommandError::config(format!("--cluster: unknown cluster `{name}`; expected one of: {}", known.join(", ")))
        })?),
    };
    let scope =
        match &args.scope {
            None => None,
            Some(text) => Some(Scope::parse(text).ok_or_else(|| {
                CommandError::config(format!("--scope `{text}`: expected isolated, partial or major"))
            })?),
        };
    let store = super::open_existing_store(&fleet, &args.store)?;
    let analysis = super::availability::analyze_period(&fleet, store.as_ref(), &period)?;
    let rows: Vec<_> = analysis
        .incidents
        .iter()
        .filter(|i| cluster.is_none_or(|c| i.cluster == c) && scope.is_none_or(|s| i.scope == s))
        .map(|i| incident_row(&fleet, &period, i))
        .collect();
    let mut out = super::output(args.output.as_deref())?;
    let table = incident_table(&rows.iter().collect::<Vec<_>>());
    let written = match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows).map_err(std::io::Error::other).and_then(|_| writeln!(out))
        }
        Format::Csv => table.write_csv(&mut out),
        Format::Table if rows.is_empty() => writeln!(out, "no incidents in {}", period.label),
        Format::Table => write!(out, "{}", table.text(60)),
        Format::Markdown => write!(out, "{}", table.markdown()),
        Format::Html => write!(out, "{}", table.html()),
    };
    written.and_then(|_| out.flush()).map_err(|e| CommandError::internal(format!("writing the report: {e}")))
}

pub fn run_affected(args: &AffectedArgs) -> Result<(), CommandError> {
    let fleet = crate::cli::load_fleet(&args.config)?;
    let tz = super::period::time_zone(&args.tz).map_err(CommandError::config)?;
    let now = args.now.unwrap_or_else(jiff::Timestamp::now);
    // The id carries the incident's start: analyze from there to now.
    let start_ms = incident_start(&args.incident).ok_or_else(|| {
        CommandError::config(format!("--incident `{}`: expected an id such as fra-1-20261014T2200", args.incident))
    })?;
    let store = super::open_existing_store(&fleet, &args.store)?;
    let analysis =
        super::availability::analyze(&fleet, store.as_ref(), start_ms, now.as_millisecond() + 1, now.as_millisecond())?;
    let incident = analysis.incidents.iter().find(|i| i.id == args.incident).ok_or_else(|| {
        CommandError::config(format!(
            "no incident `{}` in the store; `fleetprobe report incidents` lists them",
            args.incident
        ))
    })?;
    let show = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_default()
    };
    let mut table = Table::new(&[
        ("customer_id", Align::Left),
        ("customer", Align::Left),
        ("contact", Align::Left),
        ("plan", Align::Left),
        ("site_id", Align::Left),
        ("hostname", Align::Left),
        ("cluster", Align::Left),
        ("down_from", Align::Left),
        ("down_until", Align::Left),
        ("downtime_minutes", Align::Right),
        ("failures", Align::Left),
    ]);
    let span = Span::new(incident.start_ms, incident.end_ms.unwrap_or(analysis.elapsed.end));
    // One row per affected site, grouped by customer.
    let mut rows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for &o in &incident.outages {
        let outage = &analysis.history.outages[o];
        let site = &fleet.sites[outage.site];
        let customer = &fleet.customers[site.customer];
        rows.insert(
            (customer.id.clone(), site.id.clone()),
            vec![
                customer.id.clone(),
                customer.name.clone(),
                customer.contact.clone(),
                fleet.plans[customer.plan].name.clone(),
                site.id.clone(),
                site.hostname.clone(),
                fleet.clusters[site.cluster].name.clone(),
                show(outage.start_ms),
                outage.end_ms.map(show).unwrap_or_else(|| "still down".into()),
                minutes(outage.downtime_ms(&span)).to_string(),
                outage.classes.iter().map(|(f, n)| format!("{f} ×{n}")).collect::<Vec<_>>().join(", "),
            ],
        );
    }
    for row in rows.into_values() {
        table.push(row);
    }
    let mut out = super::output(args.output.as_deref())?;
    table
        .write_csv(&mut out)
        .and_then(|_| out.flush())
        .map_err(|e| CommandError::internal(format!("writing the list: {e}")))
}

/// The start encoded in an incident id: the `YYYYMMDDTHHMM` after the cluster name.
fn incident_start(id: &str) -> Option<i64> {
    let stamp = id.rsplit('-').next()?;
    let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M", stamp).ok()?;
    civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    #[test]
    fn incident_ids_carry_their_start() {
        let start = super::incident_start("fra-1-20261014T2200").unwrap();
        assert_eq!(jiff::Timestamp::from_millisecond(start).unwrap().to_string(), "2026-10-14T22:00:00Z");
        assert_eq!(super::incident_start("nonsense"), None);
    }
}
