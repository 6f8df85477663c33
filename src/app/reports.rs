//! The engineers' reports: `report clusters`, `report incidents`, `report affected` and
//! `report latency`. Each analyses or reads what it needs, builds its report's model and
//! renders it to standard output or a file.

use std::io::Write;
use std::path::PathBuf;

use super::{Context, Error, Result};
use crate::analysis::incidents::Scope;
use crate::probe::{CheckKind, Phase};
use crate::report::chart::{self, ChartSize};
use crate::report::latency::{self, By, ChartKind, LatencyTable, Vantages};
use crate::report::period::{PeriodSpec, time_zone};
use crate::report::{Format, Render, clusters, incidents, render};
use crate::store::LatencyScope;

/// Renders `model` to the output and flushes it.
fn write(model: &dyn Render, format: Format, output: Option<&std::path::Path>) -> Result<()> {
    let mut out = super::output(output)?;
    render(model, format, &mut out).and_then(|_| out.flush()).map_err(super::write_error("the report"))
}

/// `report clusters`: availability, coverage and incidents per cluster, worst first.
/// `vantages` narrows the HTML report's latency charts to those vantages (none: all merged);
/// availability and incidents always come from the verdict of every vantage.
pub fn clusters(
    context: &Context,
    period: &PeriodSpec,
    vantages: &[String],
    format: Format,
    output: Option<PathBuf>,
) -> Result<()> {
    let fleet = &context.fleet;
    let period = period.resolve("30d").map_err(|e| Error::config(e.to_string()))?;
    let store = context.open_existing_store()?;
    let vantages = Vantages::chosen(store.as_ref(), vantages)?;
    let analysis = super::analyze::analyze_period(fleet, store.as_ref(), &period)?;
    let mut report = clusters::build(fleet, &period, &analysis);
    if format == Format::Html {
        report.charts = clusters::charts(fleet, &period, &analysis, store.as_ref(), &vantages);
    }
    write(&report, format, output.as_deref())
}

/// What `report incidents` lists.
#[derive(Debug, Clone)]
pub struct IncidentsRequest {
    pub period: PeriodSpec,
    pub cluster: Option<String>,
    /// isolated, partial or major.
    pub scope: Option<String>,
    pub format: Format,
    pub output: Option<PathBuf>,
}

/// `report incidents`: the incident list, optionally of one cluster or scope.
pub fn incidents(context: &Context, request: &IncidentsRequest) -> Result<()> {
    let fleet = &context.fleet;
    let period = request.period.resolve("30d").map_err(|e| Error::config(e.to_string()))?;
    let cluster = request.cluster.as_deref().map(|name| context.cluster(name)).transpose()?;
    let scope = match &request.scope {
        None => None,
        Some(text) => Some(
            Scope::parse(text)
                .ok_or_else(|| Error::config(format!("--scope `{text}`: expected isolated, partial or major")))?,
        ),
    };
    let store = context.open_existing_store()?;
    let analysis = super::analyze::analyze_period(fleet, store.as_ref(), &period)?;
    let list = incidents::build(fleet, &period, &analysis, cluster, scope);
    write(&list, request.format, request.output.as_deref())
}

/// `report affected`: every customer and site one incident hit, with contacts, as CSV.
pub fn affected(
    context: &Context,
    incident_id: &str,
    now: Option<jiff::Timestamp>,
    tz: &str,
    output: Option<PathBuf>,
) -> Result<()> {
    let fleet = &context.fleet;
    let tz = time_zone(tz).map_err(|e| Error::config(e.to_string()))?;
    let now = now.unwrap_or_else(jiff::Timestamp::now);
    // The id carries the incident's start: analyze from there to now.
    let start_ms = incidents::incident_start(incident_id).ok_or_else(|| {
        Error::config(format!("--incident `{incident_id}`: expected an id such as fra-1-20261014T2200"))
    })?;
    let store = context.open_existing_store()?;
    let analysis =
        super::analyze::analyze(fleet, store.as_ref(), start_ms, now.as_millisecond() + 1, now.as_millisecond())?;
    let incident = analysis.incidents.iter().find(|i| i.id == incident_id).ok_or_else(|| {
        Error::config(format!("no incident `{incident_id}` in the store; `fleetprobe report incidents` lists them"))
    })?;
    let table = incidents::affected(fleet, &analysis, incident, &tz);
    let mut out = super::output(output.as_deref())?;
    table.write_csv(&mut out).and_then(|_| out.flush()).map_err(super::write_error("the list"))
}

/// What `report latency` shows: a table of percentiles, or a chart.
#[derive(Debug, Clone)]
pub struct LatencyRequest {
    pub clusters: Vec<String>,
    pub sites: Vec<String>,
    /// Only these vantages' runs; none for every vantage merged.
    pub vantages: Vec<String>,
    pub check: CheckKind,
    pub period: PeriodSpec,
    pub by: Option<By>,
    pub format: Format,
    /// A chart instead of a table (needs an output ending in .png or .svg).
    pub chart: Option<ChartKind>,
    /// The phase charted by bands, heatmap and cdf; the check's headline phase when `None`.
    pub phase: Option<Phase>,
    pub output: Option<PathBuf>,
    pub size: ChartSize,
}

/// `report latency`: percentiles of a cluster or site as a table, or a chart.
pub fn latency(context: &Context, request: &LatencyRequest) -> Result<()> {
    let period = request.period.resolve("24h").map_err(|e| Error::config(e.to_string()))?;
    let scopes = latency_scopes(context, request)?;
    let store = context.open_existing_store()?;
    let vantages = Vantages::chosen(store.as_ref(), &request.vantages)?;
    let chart_path = request.output.as_ref().filter(|p| chart::ChartFormat::from_path(p).is_ok());
    match (request.chart, chart_path) {
        (Some(kind), Some(path)) => {
            let chart = latency::build_chart(
                store.as_ref(),
                &vantages,
                None,
                &scopes,
                request.check,
                request.phase,
                kind,
                &period,
            )?;
            chart::write_file(&chart, path, request.size).map_err(|e| Error::internal(e.to_string()))
        }
        (Some(_), None) => {
            Err(Error::config("--kind draws a chart: give -o FILE.png or -o FILE.svg (the extension picks the format)"))
        }
        (None, Some(path)) => {
            Err(Error::config(format!("-o {}: a chart needs --kind bands, heatmap, phases or cdf", path.display())))
        }
        (None, None) => {
            let bucket_ms = request.by.map(By::bucket_ms);
            let rows = latency::table_rows(store.as_ref(), &vantages, &scopes, request.check, &period, bucket_ms)?;
            let table = LatencyTable { rows, check: request.check, period, by: request.by.is_some(), vantages };
            write(&table, request.format, request.output.as_deref())
        }
    }
}

/// The scopes asked for, checked against the fleet so a typo is an error rather than no data.
fn latency_scopes(context: &Context, request: &LatencyRequest) -> Result<Vec<LatencyScope>> {
    let fleet = &context.fleet;
    let mut scopes = Vec::new();
    for name in &request.clusters {
        context.cluster(name)?;
        scopes.push(LatencyScope::Cluster(name.clone()));
    }
    for id in &request.sites {
        if fleet.site_index(id).is_none() {
            return Err(Error::config(format!(
                "--site: unknown site `{id}`; expected a site id from {}",
                fleet.config_path.display()
            )));
        }
        scopes.push(LatencyScope::Site(id.clone()));
    }
    if scopes.is_empty() {
        return Err(Error::config("give --cluster NAME or --site ID"));
    }
    Ok(scopes)
}

/// `report certs`: the sites whose latest recorded certificate expires within `within` of `now`.
pub fn certs(
    context: &Context,
    within: std::time::Duration,
    now: Option<jiff::Timestamp>,
    format: Format,
    output: Option<PathBuf>,
) -> Result<()> {
    let fleet = &context.fleet;
    let now_ms = now.unwrap_or_else(jiff::Timestamp::now).as_millisecond();
    let store = context.open_existing_store()?;
    let index: std::collections::HashMap<&str, usize> =
        fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let horizon_s = now_ms / 1000 + within.as_secs() as i64;
    let mut expiring: Vec<(usize, i64, Option<String>)> = store
        .site_certificates()?
        .into_iter()
        .filter_map(|cert| index.get(cert.site.id.as_str()).map(|&i| (i, cert.not_after, cert.issuer)))
        .filter(|&(_, not_after, _)| not_after <= horizon_s)
        .collect();
    expiring.sort_by_key(|&(site, not_after, _)| (not_after, site));
    let list = crate::report::certs::build(fleet, &expiring, now_ms, within.as_secs() as i64 / 86_400);
    write(&list, format, output.as_deref())
}
