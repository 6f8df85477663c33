//! `fleetprobe report clusters`: availability, coverage and incidents per cluster, worst first,
//! with the share of customers each incident hit.

use serde::Serialize;

use super::local_failures::{self, LocalFailureRow};
use super::period::Period;
use super::render::{Render, write_json};
use super::table::{Align, Table, duration, escape_html, percent};
use crate::analysis::availability;
use crate::analysis::incidents::Incident;
use crate::analysis::period::Availability;
use crate::fleet::Fleet;

#[derive(Serialize)]
pub struct ClusterReport {
    pub period: PeriodInfo,
    /// Share of the elapsed period in which the fleet was monitored by a valid run.
    pub coverage: Option<f64>,
    pub customers: usize,
    pub customers_with_downtime: usize,
    pub valid_runs: u32,
    pub invalid_runs: u32,
    pub clusters: Vec<ClusterRow>,
    pub incidents: Vec<IncidentRow>,
    /// Vantages with a valid run in the period.
    pub vantages: usize,
    /// How many of them must see a site fail ("majority", "all", "any" or a number).
    pub quorum: String,
    /// Failures only fewer vantages than the quorum saw, per vantage and cluster: not downtime.
    pub vantage_local_failures: Vec<LocalFailureRow>,
    /// Inline SVG charts per cluster for the HTML page (see [`charts`]); empty elsewhere.
    #[serde(skip)]
    pub charts: Vec<(String, Vec<String>)>,
}

#[derive(Serialize)]
pub struct PeriodInfo {
    pub label: String,
    /// RFC 3339 in the report's zone.
    pub start: String,
    pub end: String,
    pub time_zone: String,
    /// The same times as people read them ("2026-10-01 00:00 CEST").
    #[serde(skip)]
    pub start_shown: String,
    #[serde(skip)]
    pub end_shown: String,
}

#[derive(Serialize)]
pub struct ClusterRow {
    pub cluster: String,
    pub sites: usize,
    pub customers: usize,
    /// All downtime counted.
    pub availability: Option<f64>,
    /// Maintenance left out (the SLA view).
    pub availability_excluding_maintenance: Option<f64>,
    pub downtime_site_minutes: i64,
    pub maintenance_downtime_site_minutes: i64,
    pub monitored_site_minutes: i64,
    pub customers_with_downtime: usize,
    pub incidents: usize,
    pub worst_incident_share: Option<f64>,
}

#[derive(Serialize)]
pub struct IncidentRow {
    pub id: String,
    pub cluster: String,
    /// RFC 3339 in the report's zone.
    pub start: String,
    /// Empty while ongoing or past the period's end.
    pub end: String,
    /// The same times as people read them, for tables and pages.
    #[serde(skip)]
    pub start_shown: String,
    #[serde(skip)]
    pub end_shown: String,
    pub state: &'static str,
    pub duration_minutes: i64,
    pub peak_sites_down: usize,
    pub sites: usize,
    pub customers: usize,
    pub cluster_customers: usize,
    pub affected_customer_share: f64,
    pub peak_customer_share: f64,
    pub customer_minutes: f64,
    pub failure_classes: Vec<(String, u32)>,
    pub scope: &'static str,
    pub maintenance: &'static str,
    pub maintenance_minutes: i64,
    pub overrun_minutes: i64,
}

pub fn build(fleet: &Fleet, period: &Period, analysis: &Availability) -> ClusterReport {
    let clusters = availability::clusters(fleet, &analysis.accounts);
    let minutes = crate::analysis::outages::minutes;
    let mut rows: Vec<ClusterRow> = clusters
        .iter()
        .map(|c| {
            let incidents: Vec<&Incident> = analysis.incidents.iter().filter(|i| i.cluster == c.cluster).collect();
            ClusterRow {
                cluster: fleet.clusters[c.cluster].name.clone(),
                sites: c.sites,
                customers: c.customers,
                availability: c.account.availability(),
                availability_excluding_maintenance: c.account.sla_availability(),
                downtime_site_minutes: minutes(c.account.downtime_ms),
                maintenance_downtime_site_minutes: minutes(c.account.maintenance_downtime_ms),
                monitored_site_minutes: minutes(c.account.monitored_ms),
                customers_with_downtime: c.customers_with_downtime,
                incidents: incidents.len(),
                worst_incident_share: incidents.iter().map(|i| i.affected_customer_share).reduce(f64::max),
            }
        })
        .collect();
    // Worst first: lowest availability, then most downtime.
    rows.sort_by(|a, b| {
        let key = |r: &ClusterRow| r.availability_excluding_maintenance.unwrap_or(1.0);
        key(a)
            .total_cmp(&key(b))
            .then(b.downtime_site_minutes.cmp(&a.downtime_site_minutes))
            .then(a.cluster.cmp(&b.cluster))
    });
    ClusterReport {
        period: PeriodInfo {
            label: period.label.clone(),
            start: period.rfc3339(period.start_ms()),
            end: period.rfc3339(period.end_ms()),
            start_shown: period.show(period.start_ms()),
            end_shown: period.show(period.end_ms()),
            time_zone: period.tz.iana_name().unwrap_or("UTC").to_string(),
        },
        coverage: analysis.coverage(),
        customers: fleet.customers.len(),
        customers_with_downtime: availability::customers_with_downtime(fleet, &analysis.accounts).len(),
        valid_runs: analysis.history.valid_runs,
        invalid_runs: analysis.history.invalid_runs,
        clusters: rows,
        incidents: analysis.incidents.iter().map(|i| incident_row(fleet, period, i)).collect(),
        vantages: analysis.measuring_vantages(),
        quorum: fleet.analysis.quorum.to_string(),
        vantage_local_failures: local_failures::rows(fleet, analysis, None),
        charts: Vec::new(),
    }
}

pub fn incident_row(fleet: &Fleet, period: &Period, i: &Incident) -> IncidentRow {
    let minutes = crate::analysis::outages::minutes;
    let state = match i.end_ms {
        Some(_) => "resolved",
        None if period.end_ms() >= period.now.as_millisecond() => "ongoing",
        None => "continues",
    };
    IncidentRow {
        id: i.id.clone(),
        cluster: fleet.clusters[i.cluster].name.clone(),
        start: period.rfc3339(i.start_ms),
        end: i.end_ms.map(|e| period.rfc3339(e)).unwrap_or_default(),
        start_shown: period.show(i.start_ms),
        end_shown: i.end_ms.map(|e| period.show(e)).unwrap_or_default(),
        state,
        duration_minutes: minutes(i.duration_ms()),
        peak_sites_down: i.peak_sites_down,
        sites: i.sites.len(),
        customers: i.customers.len(),
        cluster_customers: i.cluster_customers,
        affected_customer_share: i.affected_customer_share,
        peak_customer_share: i.peak_customer_share,
        customer_minutes: i.customer_minutes,
        failure_classes: i.classes.iter().map(|(f, n)| (f.to_string(), *n)).collect(),
        scope: i.scope.as_str(),
        maintenance: i.maintenance.as_str(),
        maintenance_minutes: minutes(i.maintenance_ms),
        overrun_minutes: minutes(i.overrun_ms),
    }
}

fn cluster_table(r: &ClusterReport) -> Table {
    let mut t = Table::new(&[
        ("cluster", Align::Left),
        ("availability", Align::Right),
        ("excl. maintenance", Align::Right),
        ("downtime", Align::Right),
        ("in maintenance", Align::Right),
        ("sites", Align::Right),
        ("customers", Align::Right),
        ("customers hit", Align::Right),
        ("incidents", Align::Right),
        ("worst share", Align::Right),
    ]);
    for c in &r.clusters {
        t.push(vec![
            c.cluster.clone(),
            percent(c.availability, 3),
            percent(c.availability_excluding_maintenance, 3),
            format!("{} site-min", c.downtime_site_minutes),
            format!("{} site-min", c.maintenance_downtime_site_minutes),
            c.sites.to_string(),
            c.customers.to_string(),
            c.customers_with_downtime.to_string(),
            c.incidents.to_string(),
            percent(c.worst_incident_share, 1),
        ]);
    }
    t
}

pub fn incident_table(rows: &[&IncidentRow]) -> Table {
    let mut t = Table::new(&[
        ("incident", Align::Left),
        ("start", Align::Left),
        ("end", Align::Left),
        ("duration", Align::Right),
        ("peak sites", Align::Right),
        ("customers", Align::Right),
        ("share", Align::Right),
        ("peak share", Align::Right),
        ("customer-min", Align::Right),
        ("scope", Align::Left),
        ("maintenance", Align::Left),
        ("failures", Align::Left),
    ]);
    for i in rows {
        t.push(vec![
            i.id.clone(),
            i.start_shown.clone(),
            if i.end_shown.is_empty() { i.state.to_string() } else { i.end_shown.clone() },
            duration(i.duration_minutes * 60_000),
            i.peak_sites_down.to_string(),
            format!("{}/{}", i.customers, i.cluster_customers),
            percent(Some(i.affected_customer_share), 1),
            percent(Some(i.peak_customer_share), 1),
            format!("{:.0}", i.customer_minutes),
            i.scope.to_string(),
            maintenance_words(i),
            i.failure_classes.iter().map(|(c, n)| format!("{c} ×{n}")).collect::<Vec<_>>().join(", "),
        ]);
    }
    t
}

/// "inside maintenance", "overrun by 7h 0m", "partly in maintenance (30m)", "".
pub fn maintenance_words(i: &IncidentRow) -> String {
    match i.maintenance {
        "inside" => "inside maintenance".into(),
        "overrun" => format!("overran maintenance by {}", duration(i.overrun_minutes * 60_000)),
        "partial" => format!("partly in maintenance ({})", duration(i.maintenance_minutes * 60_000)),
        _ => String::new(),
    }
}

fn headline(r: &ClusterReport) -> String {
    let hit = r.customers_with_downtime as f64 / r.customers.max(1) as f64;
    // The period as people read it, its zone named once: "2026-10 (Europe/Berlin)", "2026-10-13 –
    // 2026-10-15 (UTC)", "last 7d (2026-10-01 12:00 UTC – 2026-10-08 12:00 UTC)".
    let label = if r.period.label.starts_with("last ") {
        format!("{} ({} – {})", r.period.label, r.period.start_shown, r.period.end_shown)
    } else if r.period.label.contains(':') {
        r.period.label.clone()
    } else {
        format!("{} ({})", r.period.label, r.period.time_zone)
    };
    let vantages = match r.vantages {
        0 | 1 => String::new(),
        n => format!(" from {n} vantages, down by {}", quorum_words(&r.quorum, n)),
    };
    format!(
        "Clusters, {label}\ncoverage {} of the period monitored{vantages} ({} valid runs, {} invalid) · {} of {} customers ({}) had downtime\n",
        percent(r.coverage, 2),
        r.valid_runs,
        r.invalid_runs,
        r.customers_with_downtime,
        r.customers,
        percent(Some(hit), 1),
    )
}

/// "majority (2 of 3)", "all 3", "any 1 of 3", "2 of 3".
fn quorum_words(quorum: &str, vantages: usize) -> String {
    match quorum {
        "majority" => format!("majority ({} of {vantages})", vantages / 2 + 1),
        "all" => format!("all {vantages}"),
        "any" => format!("any 1 of {vantages}"),
        n => format!("{} of {vantages}", n.parse::<usize>().map_or(vantages, |n| n.min(vantages))),
    }
}

const LOCAL_FAILURES_NOTE: &str = "Seen by fewer vantages than the quorum: not downtime, never credited.";

pub fn text(r: &ClusterReport) -> String {
    let mut out = headline(r);
    out.push('\n');
    out.push_str(&cluster_table(r).text(40));
    if r.incidents.is_empty() {
        out.push_str("\nno incidents\n");
    } else {
        out.push_str(&format!("\n{} incidents\n", r.incidents.len()));
        out.push_str(&incident_table(&r.incidents.iter().collect::<Vec<_>>()).text(60));
    }
    if !r.vantage_local_failures.is_empty() {
        out.push_str(&format!("\nVantage-local failures\n{LOCAL_FAILURES_NOTE}\n"));
        out.push_str(&local_failures::table(&r.vantage_local_failures).text(40));
    }
    out
}

impl Render for ClusterReport {
    fn table(&self) -> Table {
        cluster_table(self)
    }
    fn text(&self) -> String {
        text(self)
    }
    fn json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        write_json(out, self)
    }
    fn markdown(&self) -> String {
        markdown(self)
    }
    fn html(&self) -> String {
        html(self, &self.charts)
    }
}

fn markdown(r: &ClusterReport) -> String {
    let mut out = format!("# {}\n", headline(r).replace('\n', "\n\n"));
    out.push_str(&cluster_table(r).markdown());
    out.push_str("\n## Incidents\n\n");
    out.push_str(&incident_table(&r.incidents.iter().collect::<Vec<_>>()).markdown());
    if !r.vantage_local_failures.is_empty() {
        out.push_str(&format!("\n## Vantage-local failures\n\n{LOCAL_FAILURES_NOTE}\n\n"));
        out.push_str(&local_failures::table(&r.vantage_local_failures).markdown());
    }
    out
}

/// Charts for the HTML report, per cluster (worst first): sites down over time with incidents
/// and maintenance shaded, and first-byte latency bands. SVG, inline.
pub fn charts(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    store: &dyn crate::store::Store,
    vantages: &super::latency::Vantages,
) -> Vec<(String, Vec<String>)> {
    let size = super::chart::ChartSize { width: 1000, height: 320 };
    let mut clusters: Vec<usize> = (0..fleet.clusters.len()).collect();
    let down = |c: usize| -> i64 {
        analysis
            .history
            .outages
            .iter()
            .filter(|o| fleet.sites[o.site].cluster == c)
            .map(|o| o.downtime_ms(&analysis.period))
            .sum()
    };
    clusters.sort_by_key(|&c| std::cmp::Reverse(down(c)));
    // The failed checks under every cluster's latency chart, counted in one pass over the runs.
    let scopes: Vec<crate::store::LatencyScope> =
        clusters.iter().map(|&c| crate::store::LatencyScope::Cluster(fleet.clusters[c].name.clone())).collect();
    let checks =
        super::latency::PeriodChecks::read((store, vantages), &scopes, crate::probe::CheckKind::Http, period).ok();
    clusters
        .into_iter()
        .map(|c| {
            let mut svgs = Vec::new();
            let cluster = &fleet.clusters[c].name;
            let steps = timeline(fleet, period, analysis, c);
            let (title, message) = timeline_words(&steps, cluster, period);
            if let Ok(svg) = super::chart::render_svg(&super::chart::Chart::Availability(steps), size) {
                svgs.push(accessible_svg(&svg, &title, &message));
            }
            let scope = crate::store::LatencyScope::Cluster(fleet.clusters[c].name.clone());
            if let Ok(bands) = super::latency::build_chart(
                store,
                vantages,
                checks.as_ref(),
                &[scope],
                crate::probe::CheckKind::Http,
                Some(crate::probe::Phase::FirstByte),
                super::latency::ChartKind::Bands,
                period,
            ) && let Ok(svg) = super::chart::render_svg(&bands, size)
            {
                let title = format!("First-byte latency on {cluster} · {}", period.label);
                let strip = match &bands {
                    super::chart::Chart::Bands(chart) => super::sla_charts::describe_strip(chart),
                    _ => String::new(),
                };
                let message = format!(
                    "Percentile bands of the time to first byte of HTTP checks on {cluster} over {}{strip}.",
                    period.label
                );
                svgs.push(accessible_svg(&svg, &title, &message));
            }
            (fleet.clusters[c].name.clone(), svgs)
        })
        .collect()
}

/// A chart's title and its message in words: the most sites down at once, the incidents and
/// the maintenance windows.
fn timeline_words(steps: &super::chart::AvailabilityTimeline, cluster: &str, period: &Period) -> (String, String) {
    let peak = steps.buckets.iter().map(|b| b.1).max().unwrap_or(0);
    let count = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    let message = if peak == 0 {
        format!("No site of {cluster} was down over {}.", period.label)
    } else {
        format!(
            "Sites down on {cluster} over {}: at most {peak} of {} at once; {}, {}.",
            period.label,
            steps.total_sites,
            count(steps.incidents.len(), "incident", "incidents"),
            count(steps.maintenance.len(), "maintenance window", "maintenance windows"),
        )
    };
    (steps.title.clone(), message)
}

/// An inline SVG chart as an image with a name: `role="img"`, an `aria-label` and a `<desc>`
/// with its message, and a `<title>`, so that a screen reader says what the chart shows.
pub fn accessible_svg(svg: &str, title: &str, message: &str) -> String {
    let Some(open) = svg.find("<svg") else { return svg.to_string() };
    let Some(close) = svg[open..].find('>').map(|i| open + i) else { return svg.to_string() };
    let (title, message) = (escape_html(title), escape_html(message));
    format!(
        "{} role=\"img\" aria-label=\"{message}\"{}><title>{title}</title><desc>{message}</desc>{}",
        &svg[..open + 4],
        &svg[open + 4..close],
        &svg[close + 1..]
    )
}

/// Sites down on one cluster over the period, as steps, with its incidents and maintenance.
pub fn timeline(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    cluster: usize,
) -> super::chart::AvailabilityTimeline {
    let within = crate::analysis::Span::new(period.start_ms(), period.elapsed_end_ms());
    let mut events: Vec<(i64, i32)> = Vec::new();
    for outage in analysis.history.outages.iter().filter(|o| fleet.sites[o.site].cluster == cluster) {
        for span in outage.down.iter().map(|d| d.intersect(&within)).filter(|d| !d.is_empty()) {
            events.push((span.start, 1));
            events.push((span.end, -1));
        }
    }
    events.sort_unstable();
    let mut buckets = vec![(within.start, 0u32)];
    let mut down = 0i32;
    for (at, delta) in events {
        down += delta;
        match buckets.last_mut() {
            Some(last) if last.0 == at => last.1 = down.max(0) as u32,
            _ => buckets.push((at, down.max(0) as u32)),
        }
    }
    let sites = fleet.sites.iter().filter(|s| s.cluster == cluster).count() as u32;
    let maintenance = crate::analysis::union(
        fleet
            .maintenance
            .iter()
            .filter(|w| match &w.scope {
                crate::fleet::MaintenanceScope::Cluster(c) => *c == cluster,
                crate::fleet::MaintenanceScope::Sites(sites) => {
                    sites.iter().any(|&s| fleet.sites[s].cluster == cluster)
                }
            })
            .map(|w| crate::analysis::Span::new(w.start.as_millisecond(), w.end.as_millisecond()).intersect(&within))
            .collect(),
        0,
    );
    super::chart::AvailabilityTimeline {
        title: format!("Sites down on {} · {}", fleet.clusters[cluster].name, period.label),
        from_ms: within.start,
        to_ms: within.end,
        tz: period.tz.clone(),
        buckets,
        total_sites: sites,
        incidents: analysis
            .incidents
            .iter()
            .filter(|i| i.cluster == cluster)
            .map(|i| (i.within_period.start, i.within_period.end))
            .collect(),
        maintenance: maintenance.iter().map(|m| (m.start, m.end)).collect(),
    }
}

/// Columns whose cells are tokens (ids, times, durations): kept on one line.
const TOKEN_COLUMNS: [&str; 4] = ["incident", "start", "end", "duration"];

/// A table in a labelled container that scrolls sideways on a narrow screen instead of being cut.
fn scrolling(label: &str, table: &str) -> String {
    format!(
        "<div class=\"scroll\" role=\"region\" aria-label=\"{}\" tabindex=\"0\">\n{table}</div>\n",
        escape_html(label)
    )
}

pub fn html(r: &ClusterReport, charts: &[(String, Vec<String>)]) -> String {
    let lines: Vec<String> = headline(r).lines().map(escape_html).collect();
    let charts_html: String = charts
        .iter()
        .map(|(cluster, svgs)| {
            let figures: String = svgs.iter().map(|svg| format!("<figure>{svg}</figure>\n")).collect();
            format!("<h3>{}</h3>\n{figures}", escape_html(cluster))
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{css}{page_css}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{sub}</p>\n<h2>Clusters</h2>\n{clusters}<h2>Incidents</h2>\n{incidents}{local}<h2>Charts</h2>\n{charts_html}</body>\n</html>\n",
        title = lines.first().cloned().unwrap_or_default(),
        sub = lines.get(1).cloned().unwrap_or_default(),
        css = CSS,
        page_css = PAGE_CSS,
        clusters = scrolling("Clusters", &cluster_table(r).html_with_tokens(&["cluster"])),
        incidents = if r.incidents.is_empty() {
            "<p>No incidents.</p>\n".to_string()
        } else {
            scrolling(
                "Incidents",
                &incident_table(&r.incidents.iter().collect::<Vec<_>>()).html_with_tokens(&TOKEN_COLUMNS),
            )
        },
        local = if r.vantage_local_failures.is_empty() {
            String::new()
        } else {
            format!(
                "<h2>Vantage-local failures</h2>\n<p>{LOCAL_FAILURES_NOTE}</p>\n{}",
                scrolling(
                    "Vantage-local failures",
                    &local_failures::table(&r.vantage_local_failures).html_with_tokens(&TOKEN_COLUMNS)
                )
            )
        },
    )
}

pub const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2430}\
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}\
th,td{padding:.35rem .6rem;border-bottom:1px solid #dde2ea;text-align:left;vertical-align:top}\
th{background:#f3f5f8}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}";

/// The cluster page on narrow screens: tables and charts scroll sideways inside their own
/// boxes (charts keep a legible width), tokens stay on one line, margins shrink on a phone.
const PAGE_CSS: &str = ".scroll{overflow-x:auto;max-width:100%}\
td.token,th.token{white-space:nowrap}\
figure{margin:0 0 1rem;overflow-x:auto;max-width:100%}\
figure svg{display:block;width:100%;min-width:40rem;height:auto}\
@media (max-width:40rem){body{margin:1rem}}";
