//! `fleetprobe report status -o DIR`: the public status page, a static site that works from any
//! web server or a file path without JavaScript: `index.html` (styles inline) and `feed.atom`.
//!
//! It shows the current state per cluster (operational, degraded, partial outage, major outage,
//! under maintenance) with the share of customers affected now, daily availability bars over the
//! last `--days` days, open and recent incidents with the updates people posted
//! (`fleetprobe incident update`), scheduled maintenance, and a link to the Atom feed of incidents
//! and updates. Everything configured or typed by people is escaped; customer and site names only
//! appear when `[status] show_customer_names = true`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::table::{duration, escape_html};
use crate::analysis::Span;
use crate::analysis::days::{DayFigures, cluster_days};
use crate::analysis::incidents::{Incident, MaintenanceOverlap, Scope};
use crate::analysis::period::Availability;
use crate::fleet::{ClusterIdx, Fleet, MaintenanceScope, MaintenanceWindow};
use crate::store::IncidentUpdate;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// Most incidents listed on the page and in the feed (newest first); open ones always are.
const MAX_INCIDENTS: usize = 50;

/// A cluster's state now, from its incidents and maintenance windows. Ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// No recent measurement: the state is not known, and never shown as operational.
    Unknown,
    Operational,
    /// Up, but answering much slower than usual (`[status]` slow rule).
    SlowResponses,
    Maintenance,
    Degraded,
    PartialOutage,
    MajorOutage,
}

impl State {
    pub fn label(self) -> &'static str {
        match self {
            State::Unknown => "State unknown",
            State::Operational => "Operational",
            State::SlowResponses => "Degraded performance",
            State::Maintenance => "Under maintenance",
            State::Degraded => "Degraded",
            State::PartialOutage => "Partial outage",
            State::MajorOutage => "Major outage",
        }
    }

    fn class(self) -> &'static str {
        match self {
            State::Unknown => "unknown",
            State::Operational => "ok",
            State::SlowResponses => "slow",
            State::Maintenance => "maint",
            State::Degraded => "degraded",
            State::PartialOutage => "partial",
            State::MajorOutage => "major",
        }
    }
}

/// One day's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub start_ms: i64,
    /// SLA availability (maintenance left out); `None` when nothing was monitored.
    pub availability: Option<f64>,
    pub incidents: usize,
}

/// One cluster on the page.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    pub name: String,
    pub state: State,
    /// Customers with a site down now (outside maintenance) / customers on the cluster.
    pub affected_now: f64,
    pub customers_down_now: usize,
    pub customers: usize,
    pub days: Vec<Day>,
    /// Over the days shown that have measurements.
    pub availability: Option<f64>,
    /// Days shown with at least some measurement.
    pub measured_days: usize,
    pub incidents: usize,
    /// Up but slow now (see [`mark_slow`]).
    pub slow: Option<Slow>,
}

/// A cluster answering slower than the `[status]` slow rule allows: its HTTP first-byte median
/// over the rule's window against its usual one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slow {
    /// Start of the first window of the slow stretch that goes on now.
    pub since_ms: i64,
    pub recent_p50_ms: f64,
    /// The median over the week before the window, when there was one.
    pub usual_p50_ms: Option<f64>,
}

/// Marks the clusters that are up (operational) but slow: `slow[c]` for cluster `c`. A cluster
/// in an outage or maintenance keeps that state, and no state is set while the page is stale.
pub fn mark_slow(page: &mut StatusPage, slow: &[Option<Slow>]) {
    for (cluster, slow) in page.clusters.iter_mut().zip(slow) {
        cluster.slow = *slow;
        if slow.is_some() && cluster.state == State::Operational && page.stale.is_none() {
            cluster.state = State::SlowResponses;
        }
    }
}

/// An incident with what people posted about it.
pub struct IncidentView<'a> {
    pub incident: &'a Incident,
    pub cluster: String,
    pub title: String,
    pub cause: Option<String>,
    /// Newest first.
    pub updates: Vec<&'a IncidentUpdate>,
}

/// Everything the page and the feed show.
pub struct StatusPage<'a> {
    pub title: String,
    pub description: Option<String>,
    pub url: Option<String>,
    pub now_ms: i64,
    pub days: u32,
    pub clusters: Vec<ClusterStatus>,
    /// Newest first; open ones first.
    pub incidents: Vec<IncidentView<'a>>,
    /// Incidents left out (older ones past [`MAX_INCIDENTS`]).
    pub incidents_left_out: usize,
    /// When the raw runs (which list incidents) begin after the first day shown: that start, and
    /// the days before it whose stored figures count incidents. Such incidents are in the bars
    /// but can no longer be listed.
    pub listed_since: Option<ListedSince>,
    /// Windows that have not ended, soonest first.
    pub maintenance: Vec<&'a MaintenanceWindow>,
    /// Windows that ended within the days shown, newest first: the history keeps them, with the
    /// overrun of any incident that outlasted one.
    pub past_maintenance: Vec<&'a MaintenanceWindow>,
    /// End of the last monitored time when it is more than two probe intervals before now: the
    /// states shown are as of then. `Some(None)`: nothing was ever measured in the period.
    pub stale: Option<Option<i64>>,
    fleet: &'a Fleet,
}

/// Where the incident list begins when the raw runs no longer reach the first day shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedSince {
    /// Start of the raw runs' measurements.
    pub from_ms: i64,
    /// UTC days before the one holding it with at least one incident in the stored day figures
    /// of any cluster.
    pub days_with_incidents: usize,
}

/// The UTC days the page covers: `days` days up to the one holding `now_ms`, as the span
/// [start of the first, end of today).
pub fn window(now_ms: i64, days: u32) -> Span {
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    Span::new(today - (i64::from(days.max(1)) - 1) * DAY_MS, today + DAY_MS)
}

/// Stored day figures by (cluster, UTC day start): they stand in for the figures of days the
/// raw runs no longer cover.
pub type RolledUpDays = HashMap<(ClusterIdx, i64), DayFigures>;

/// Builds the page's content from an analysis of the last `days` days (UTC) up to `now_ms`;
/// the bars of the days in `rolled_up` come from there.
pub fn build<'a>(
    fleet: &'a Fleet,
    analysis: &'a Availability,
    rolled_up: &RolledUpDays,
    updates: &'a [IncidentUpdate],
    now_ms: i64,
    days: u32,
) -> StatusPage<'a> {
    let first_day = analysis.period.start;
    let day_spans: Vec<Span> = (0..i64::from(days))
        .map(|d| Span::new(first_day + d * DAY_MS, first_day + (d + 1) * DAY_MS))
        .map(|d| Span::new(d.start, d.end.min(now_ms).max(d.start)))
        .collect();
    let mut clusters: Vec<ClusterStatus> =
        (0..fleet.clusters.len()).map(|c| cluster_status(fleet, analysis, rolled_up, c, &day_spans, now_ms)).collect();

    let mut by_incident: BTreeMap<&str, Vec<&IncidentUpdate>> = BTreeMap::new();
    for update in updates {
        by_incident.entry(update.incident_id.as_str()).or_default().push(update);
    }
    let mut incidents: Vec<IncidentView> = analysis
        .incidents
        .iter()
        .map(|incident| {
            let mut posted = by_incident.get(incident.id.as_str()).cloned().unwrap_or_default();
            posted.sort_by_key(|u| std::cmp::Reverse(u.posted_at_ms));
            let cluster = fleet.clusters[incident.cluster].name.clone();
            let title = posted
                .iter()
                .find_map(|u| u.title.clone())
                .unwrap_or_else(|| format!("{} on {cluster}", incident_kind(incident)));
            let cause = posted.iter().find_map(|u| u.cause.clone());
            IncidentView { incident, cluster, title, cause, updates: posted }
        })
        .collect();
    incidents.sort_by_key(|v| (v.incident.end_ms.is_some(), std::cmp::Reverse(v.incident.start_ms)));
    let keep = incidents.iter().filter(|v| v.incident.ongoing()).count().max(MAX_INCIDENTS);
    let incidents_left_out = incidents.len().saturating_sub(keep);
    incidents.truncate(keep);

    let mut maintenance: Vec<&MaintenanceWindow> =
        fleet.maintenance.iter().filter(|w| w.end.as_millisecond() > now_ms).collect();
    maintenance.sort_by_key(|w| (w.start, w.end));
    let mut past_maintenance: Vec<&MaintenanceWindow> = fleet
        .maintenance
        .iter()
        .filter(|w| w.end.as_millisecond() <= now_ms && w.end.as_millisecond() > analysis.period.start)
        .collect();
    past_maintenance.sort_by_key(|w| std::cmp::Reverse((w.end, w.start)));
    // Incidents come from the raw runs; days before them show stored figures only.
    let listed_since = analysis.history.monitored.first().map(|m| m.start).and_then(|from_ms| {
        let first_raw_day = from_ms.div_euclid(DAY_MS) * DAY_MS;
        {
            let older: std::collections::BTreeSet<i64> = rolled_up
                .iter()
                .filter(|((_, day), figures)| *day < first_raw_day && figures.incidents > 0)
                .map(|((_, day), _)| *day)
                .collect();
            // Only measured days count: a day with no runs is stored too (a run marks the day
            // before its own).
            let shown_before =
                rolled_up.iter().any(|((_, day), figures)| *day < first_raw_day && figures.eligible_ms > 0);
            shown_before.then_some(ListedSince { from_ms, days_with_incidents: older.len() })
        }
    });
    let last_measured = analysis.history.monitored.last().map(|m| m.end);
    let interval_ms = i64::try_from(fleet.probe.interval.as_millis()).unwrap_or(i64::MAX);
    let stale = match last_measured {
        Some(end) if now_ms.saturating_sub(end) <= interval_ms.saturating_mul(2) => None,
        other => Some(other),
    };
    // Missing data is never good news: without a recent measurement no cluster has a known state.
    if stale.is_some() {
        for cluster in &mut clusters {
            cluster.state = State::Unknown;
        }
    }
    StatusPage {
        title: fleet.status.title.clone(),
        description: fleet.status.description.clone(),
        url: fleet.status.url.clone(),
        now_ms,
        days,
        clusters,
        incidents,
        incidents_left_out,
        listed_since,
        maintenance,
        past_maintenance,
        stale,
        fleet,
    }
}

/// "Major outage", "Partial outage", "Degraded service" or "Maintenance", by the incident's
/// scope and its relation to maintenance.
fn incident_kind(incident: &Incident) -> &'static str {
    match (incident.maintenance, incident.scope) {
        (MaintenanceOverlap::Inside, _) => "Maintenance",
        (_, Scope::Major) => "Major outage",
        (_, Scope::Partial) => "Partial outage",
        (_, Scope::Isolated) => "Degraded service",
    }
}

fn cluster_status(
    fleet: &Fleet,
    analysis: &Availability,
    rolled_up: &RolledUpDays,
    cluster: usize,
    days: &[Span],
    now_ms: i64,
) -> ClusterStatus {
    let sites: Vec<usize> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].cluster == cluster).collect();
    let customers: BTreeSet<usize> = sites.iter().map(|&s| fleet.sites[s].customer).collect();
    let in_maintenance = |site: usize| analysis.maintenance[site].iter().any(|m| m.start <= now_ms && now_ms < m.end);
    let outages: Vec<_> = analysis.history.outages.iter().filter(|o| fleet.sites[o.site].cluster == cluster).collect();
    let down_now: BTreeSet<usize> = outages
        .iter()
        .filter(|o| o.end_ms.is_none() && !in_maintenance(o.site))
        .map(|o| fleet.sites[o.site].customer)
        .collect();
    let affected_now = down_now.len() as f64 / customers.len().max(1) as f64;
    let maintenance_now = fleet.maintenance.iter().any(|w| {
        w.start.as_millisecond() <= now_ms
            && now_ms < w.end.as_millisecond()
            && match &w.scope {
                MaintenanceScope::Cluster(c) => *c == cluster,
                MaintenanceScope::Sites(s) => s.iter().any(|&s| fleet.sites[s].cluster == cluster),
            }
    });
    let state = match down_now.len() {
        0 if maintenance_now => State::Maintenance,
        0 => State::Operational,
        _ if affected_now > fleet.analysis.major_share => State::MajorOutage,
        1 => State::Degraded,
        _ => State::PartialOutage,
    };

    let incidents = analysis.incidents.iter().filter(|i| i.cluster == cluster).count();
    let mut figures = cluster_days(fleet, analysis, cluster, days, now_ms);
    for (day, figure) in days.iter().zip(&mut figures) {
        if let Some(stored) = rolled_up.get(&(cluster, day.start)) {
            *figure = *stored;
        }
    }
    let total_eligible: i64 = figures.iter().map(|f| f.eligible_ms).sum();
    let total_down: i64 = figures.iter().map(|f| f.down_ms).sum();
    let bars: Vec<Day> = days
        .iter()
        .zip(&figures)
        .map(|(day, f)| Day { start_ms: day.start, availability: f.availability(), incidents: f.incidents })
        .collect();
    let measured_days = bars.iter().filter(|d| d.availability.is_some()).count();
    ClusterStatus {
        name: fleet.clusters[cluster].name.clone(),
        state,
        affected_now,
        customers_down_now: down_now.len(),
        customers: customers.len(),
        days: bars,
        availability: (total_eligible > 0).then(|| 1.0 - total_down as f64 / total_eligible as f64),
        measured_days,
        incidents,
        slow: None,
    }
}

// ---- rendering ------------------------------------------------------------------------------

/// "99.95 %": never rounds up to 100 unless nothing was lost; trailing zeros dropped.
pub fn availability_text(share: f64) -> String {
    if share >= 1.0 {
        return "100 %".into();
    }
    let hundredths = super::table::truncate_to(share * 100.0, 2).max(0.0);
    let text = format!("{hundredths:.2}");
    format!("{} %", text.trim_end_matches('0').trim_end_matches('.'))
}

/// A share of customers: "30 %", "0.5 %".
fn share_text(share: f64) -> String {
    let text = format!("{:.1}", super::table::truncate_to(share * 100.0, 1));
    format!("{} %", text.trim_end_matches('0').trim_end_matches('.'))
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn date(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%d").to_string())
}

fn time_tag(ms: i64) -> String {
    format!("<time datetime=\"{}\">{}</time>", rfc3339(ms), utc(ms))
}

/// Text people typed, as HTML: escaped, direction taken from the text itself.
fn user_text(text: &str) -> String {
    format!("<bdi>{}</bdi>", escape_html(text))
}

/// What the tooltip and the text alternative say about one day.
pub fn day_text(day: &Day) -> String {
    let incidents = match day.incidents {
        0 => "no incidents".to_string(),
        1 => "1 incident".to_string(),
        n => format!("{n} incidents"),
    };
    match day.availability {
        Some(a) => format!("{}: {} available, {incidents}", date(day.start_ms), availability_text(a)),
        None => format!("{}: no data", date(day.start_ms)),
    }
}

fn bar_colour(day: &Day) -> &'static str {
    match day.availability {
        None => "#7b8798",
        Some(a) if a >= 0.999 && day.incidents == 0 => "#2f7d4f",
        Some(a) if a >= 0.999 => "#5f9e3a",
        Some(a) if a >= 0.99 => "#a86b00",
        Some(a) if a >= 0.95 => "#c2410c",
        Some(_) => "#b91c1c",
    }
}

/// Bars of `days` with their axis, in a `<div class>`: the page carries all days for wide
/// screens and the last [`PHONE_DAYS`] for narrow ones (CSS shows one of them).
fn bars_svg(days: &[Day], class: &str) -> String {
    let width = days.len() * 10;
    // Few days: bars of about the usual width on the left, not stretched over the card.
    let max_width = (days.len() * 3 / 4).max(14);
    let mut svg = format!(
        "<div class=\"{class}\" style=\"max-width:{max_width}rem\"><svg class=\"bars\" viewBox=\"0 0 {width} 40\" preserveAspectRatio=\"none\" aria-hidden=\"true\" focusable=\"false\">"
    );
    for (i, day) in days.iter().enumerate() {
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"0\" width=\"8\" height=\"40\" rx=\"1\" fill=\"{}\"><title>{}</title></rect>",
            i * 10 + 1,
            bar_colour(day),
            escape_html(&day_text(day))
        );
    }
    let _ = write!(
        svg,
        "</svg><div class=\"axis\" aria-hidden=\"true\"><span>{}</span><span>today</span></div></div>",
        match days.len() {
            1 => "today".to_string(),
            n => format!("{} days ago", n - 1),
        }
    );
    svg
}

/// Days of bars on narrow screens, where 90 would be hairlines.
const PHONE_DAYS: usize = 30;

fn cluster_html(cluster: &ClusterStatus, days: u32) -> String {
    let name = escape_html(&cluster.name);
    let anchor = slug(&cluster.name);
    let now = if let (Some(slow), 0) = (&cluster.slow, cluster.customers_down_now) {
        format!("No customers cut off, but {}", slow_words(slow))
    } else if cluster.customers_down_now == 0 {
        "No customers affected now".to_string()
    } else {
        format!(
            "{} of customers affected now ({} of {})",
            share_text(cluster.affected_now),
            cluster.customers_down_now,
            cluster.customers
        )
    };
    // The figure covers the measured days only, and says how many those were.
    let summary = match cluster.availability {
        Some(a) if cluster.measured_days as u32 >= days => {
            format!("{} available over the last {days} days", availability_text(a))
        }
        Some(a) => format!(
            "{} available over the {} of the last {days} days with measurements",
            availability_text(a),
            match cluster.measured_days {
                1 => "1 day".to_string(),
                n => format!("{n} days"),
            }
        ),
        None => format!("no data over the last {days} days"),
    };
    let incidents = match cluster.incidents {
        0 => "no incidents".to_string(),
        1 => "1 incident".to_string(),
        n => format!("{n} incidents"),
    };
    let day_items: String =
        cluster.days.iter().rev().map(|d| format!("<li>{}</li>", escape_html(&day_text(d)))).collect();
    format!(
        "<li class=\"cluster s-{class}\" id=\"cluster-{anchor}\">\n<div class=\"cluster-head\"><h3><bdi>{name}</bdi></h3>\
         <p class=\"state s-{class}\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {state}</p></div>\n\
         <p class=\"now\">{now}</p>\n<figure>{svg}{short}<figcaption>{summary}, {incidents}.</figcaption></figure>\n\
         <details><summary>Daily availability of <bdi>{name}</bdi></summary><ol class=\"days\">{day_items}</ol></details>\n</li>\n",
        class = cluster.state.class(),
        icon = icon(cluster.state),
        state = cluster.state.label(),
        svg = bars_svg(&cluster.days, if cluster.days.len() > PHONE_DAYS { "long" } else { "all" }),
        short = if cluster.days.len() > PHONE_DAYS {
            bars_svg(&cluster.days[cluster.days.len() - PHONE_DAYS..], "short")
        } else {
            String::new()
        },
    )
}

/// "answering slowly since 2026-10-14 09:00 UTC: half the pages take over 182 ms to their first
/// byte (usually 12 ms)".
fn slow_words(slow: &Slow) -> String {
    let ms = |v: f64| if v >= 1000.0 { format!("{:.1} s", v / 1000.0) } else { format!("{v:.0} ms") };
    let usual = slow.usual_p50_ms.map(|u| format!(" (usually {})", ms(u))).unwrap_or_default();
    format!(
        "answering slowly since {}: half the pages take over {} to their first byte{usual}",
        utc(slow.since_ms),
        ms(slow.recent_p50_ms)
    )
}

fn icon(state: State) -> &'static str {
    match state {
        State::Unknown => "?",
        State::Operational => "✓",
        State::SlowResponses => "◔",
        State::Maintenance => "◆",
        State::Degraded | State::PartialOutage => "▲",
        State::MajorOutage => "✕",
    }
}

/// A fragment-safe name: ASCII letters, digits and `-`; anything else as `_XX` hex.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02X}");
        }
    }
    out
}

fn incident_html(page: &StatusPage, view: &IncidentView) -> String {
    let i = view.incident;
    let fleet = page.fleet;
    let status = match i.end_ms {
        None => format!("Ongoing for {}", duration(page.now_ms - i.start_ms)),
        Some(end) => format!("Resolved {} after {}", time_tag(end), duration(end - i.start_ms)),
    };
    let mut facts = vec![
        format!("<dt>Started</dt><dd>{}</dd>", time_tag(i.start_ms)),
        format!("<dt>Status</dt><dd>{status}</dd>"),
        format!(
            "<dt>Customers affected</dt><dd>{} of customers on <bdi>{}</bdi> ({} of {}); at most {} at once</dd>",
            share_text(i.affected_customer_share),
            escape_html(&view.cluster),
            i.customers.len(),
            i.cluster_customers,
            share_text(i.peak_customer_share)
        ),
    ];
    let maintenance = maintenance_words(i);
    if let Some(m) = maintenance {
        facts.push(format!("<dt>Maintenance</dt><dd>{m}</dd>"));
    }
    if let Some(cause) = &view.cause {
        facts.push(format!("<dt>Cause</dt><dd class=\"text\" dir=\"auto\">{}</dd>", escape_html(cause)));
    }
    if fleet.status.show_customer_names {
        let names: Vec<String> =
            i.customers.iter().map(|&c| format!("<li>{}</li>", user_text(&fleet.customers[c].name))).collect();
        let sites: Vec<String> =
            i.sites.iter().map(|&s| format!("<li>{}</li>", user_text(&fleet.sites[s].hostname))).collect();
        facts.push(format!("<dt>Customers</dt><dd><ul class=\"names\">{}</ul></dd>", names.concat()));
        facts.push(format!("<dt>Sites</dt><dd><ul class=\"names\">{}</ul></dd>", sites.concat()));
    }
    let updates = if view.updates.is_empty() {
        String::new()
    } else {
        let items: String = view
            .updates
            .iter()
            .map(|u| {
                format!(
                    "<li id=\"update-{}-{}\">{}<p class=\"text\" dir=\"auto\">{}</p></li>\n",
                    slug(&i.id),
                    u.posted_at_ms,
                    time_tag(u.posted_at_ms),
                    escape_html(&u.text)
                )
            })
            .collect();
        format!("<h4>Updates</h4>\n<ol class=\"updates\" reversed>\n{items}</ol>\n")
    };
    let state = if i.ongoing() { "open" } else { "resolved" };
    format!(
        "<li><article class=\"incident {state}\" id=\"incident-{anchor}\">\n<h3><bdi>{title}</bdi></h3>\n\
         <p class=\"meta\"><span class=\"badge {state}\">{state_label}</span> <span class=\"id\">{id}</span></p>\n\
         <dl>{facts}</dl>\n{updates}</article></li>\n",
        anchor = slug(&i.id),
        title = escape_html(&view.title),
        state_label = if i.ongoing() { "Open" } else { "Resolved" },
        id = escape_html(&i.id),
        facts = facts.concat(),
    )
}

fn maintenance_html(page: &StatusPage, w: &MaintenanceWindow) -> String {
    let fleet = page.fleet;
    let scope = match &w.scope {
        MaintenanceScope::Cluster(c) => format!("Cluster <bdi>{}</bdi>", escape_html(&fleet.clusters[*c].name)),
        MaintenanceScope::Sites(sites) => {
            let clusters: BTreeSet<&str> =
                sites.iter().map(|&s| fleet.clusters[fleet.sites[s].cluster].name.as_str()).collect();
            let clusters: Vec<String> = clusters.into_iter().map(user_text).collect();
            let names = if fleet.status.show_customer_names {
                let names: Vec<String> = sites.iter().map(|&s| user_text(&fleet.sites[s].hostname)).collect();
                format!(": {}", names.join(", "))
            } else {
                String::new()
            };
            let count = if sites.len() == 1 { "1 site".to_string() } else { format!("{} sites", sites.len()) };
            format!("{count} on {}{names}", clusters.join(", "))
        }
    };
    let under_way = w.start.as_millisecond() <= page.now_ms;
    let completed = w.end.as_millisecond() <= page.now_ms;
    // The incidents of the window's clusters that outlasted it, by how long.
    let overran: Vec<String> = if completed {
        page.incidents
            .iter()
            .map(|v| v.incident)
            .filter(|i| i.maintenance == MaintenanceOverlap::Overrun && i.overrun_ms > 0)
            .filter(|i| i.start_ms < w.end.as_millisecond() && i.end_ms.is_none_or(|e| e > w.end.as_millisecond()))
            .filter(|i| match &w.scope {
                MaintenanceScope::Cluster(c) => i.cluster == *c,
                MaintenanceScope::Sites(sites) => sites.iter().any(|&s| fleet.sites[s].cluster == i.cluster),
            })
            .map(|i| format!("<p>{} overran the window by {}.</p>", escape_html(&i.id), duration(i.overrun_ms)))
            .collect()
    } else {
        Vec::new()
    };
    let note = if w.note.trim().is_empty() {
        String::new()
    } else {
        format!("<p class=\"text\" dir=\"auto\">{}</p>", escape_html(&w.note))
    };
    format!(
        "<li class=\"maintenance\"><p><span class=\"badge {badge_class}\">{badge}</span> {scope}</p>\
         <p>{} – {} ({})</p>{note}{overran}</li>\n",
        time_tag(w.start.as_millisecond()),
        time_tag(w.end.as_millisecond()),
        duration(w.end.as_millisecond() - w.start.as_millisecond()),
        overran = overran.concat(),
        badge_class = if completed {
            "done"
        } else if under_way {
            "maint"
        } else {
            "planned"
        },
        badge = if completed {
            "Completed"
        } else if under_way {
            "In progress"
        } else {
            "Scheduled"
        },
    )
}

/// The overall banner: the worst state of any cluster, in words.
fn banner(page: &StatusPage) -> (State, String) {
    let worst = page.clusters.iter().map(|c| c.state).max().unwrap_or(State::Operational);
    let affected = page.clusters.iter().filter(|c| c.state == worst).count();
    let of = page.clusters.len();
    let words = match (worst, page.stale) {
        (_, Some(Some(at))) => format!("Current state unknown: no measurements since {}", utc(at)),
        (_, Some(None)) => format!("Current state unknown: no measurements in the last {} days", page.days),
        (worst, None) => match worst {
            State::Unknown => "Current state unknown".to_string(),
            State::Operational => "All systems operational".to_string(),
            State::SlowResponses => format!("Degraded performance on {affected} of {of} clusters"),
            State::Maintenance => format!("Scheduled maintenance in progress on {affected} of {of} clusters"),
            State::Degraded => format!("Degraded service on {affected} of {of} clusters"),
            State::PartialOutage => format!("Partial outage on {affected} of {of} clusters"),
            State::MajorOutage => format!("Major outage on {affected} of {of} clusters"),
        },
    };
    (worst, words)
}

/// The page: `index.html`, styles inline, no scripts.
pub fn html(page: &StatusPage) -> String {
    let title = escape_html(&page.title);
    let (worst, banner_text) = banner(page);
    let description = page
        .description
        .as_ref()
        .map(|d| format!("<p class=\"description\">{}</p>\n", user_text(d)))
        .unwrap_or_default();
    let clusters: String = page.clusters.iter().map(|c| cluster_html(c, page.days)).collect();
    let stale = match page.stale {
        None => String::new(),
        Some(Some(at)) => format!(
            "<p class=\"stale\"><strong>Measurements are delayed:</strong> the last one covers up to {}; what is happening now is not known.</p>\n",
            time_tag(at)
        ),
        Some(None) => format!(
            "<p class=\"stale\"><strong>No measurements</strong> in the last {} days; the states below are not known.</p>\n",
            page.days
        ),
    };
    let (open, past): (Vec<&IncidentView>, Vec<&IncidentView>) =
        page.incidents.iter().partition(|v| v.incident.ongoing());
    let list = |views: &[&IncidentView], empty: &str| -> String {
        if views.is_empty() {
            format!("<p class=\"empty\">{empty}</p>\n")
        } else {
            let items: String = views.iter().map(|v| incident_html(page, v)).collect();
            format!("<ol class=\"incidents\">\n{items}</ol>\n")
        }
    };
    let mut left_out = match page.incidents_left_out {
        0 => String::new(),
        n => format!("<p class=\"empty\">{n} older incidents are not listed.</p>\n"),
    };
    let past_heading = match page.listed_since {
        Some(since) => {
            let days = match since.days_with_incidents {
                0 => "no day before it had an incident".to_string(),
                1 => "1 day before it had incidents, counted in the daily bars above".to_string(),
                n => format!("{n} days before it had incidents, counted in the daily bars above"),
            };
            let _ = writeln!(
                left_out,
                "<p class=\"empty\">The list begins at {}: detailed measurements are kept {} days; {days}.</p>",
                utc(since.from_ms),
                page.fleet.retention.raw.as_secs() / 86_400
            );
            format!("Past incidents (since {})", date(since.from_ms))
        }
        None => format!("Past incidents (last {} days)", page.days),
    };
    let maintenance = if page.maintenance.is_empty() {
        "<p class=\"empty\">No maintenance scheduled.</p>\n".to_string()
    } else {
        let items: String = page.maintenance.iter().map(|w| maintenance_html(page, w)).collect();
        format!("<ul class=\"plain\">\n{items}</ul>\n")
    };
    let past_maintenance = if page.past_maintenance.is_empty() {
        String::new()
    } else {
        let items: String = page.past_maintenance.iter().map(|w| maintenance_html(page, w)).collect();
        format!("<h3>Completed maintenance</h3>\n<ul class=\"plain\">\n{items}</ul>\n")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n\
         <link rel=\"alternate\" type=\"application/atom+xml\" href=\"feed.atom\" title=\"{title}: incidents and updates\">\n\
         <style>{CSS}</style>\n</head>\n<body>\n\
         <header class=\"top\"><div class=\"wrap\"><h1>{title}</h1>\n{description}</div></header>\n\
         <main class=\"wrap\">\n\
         <p class=\"banner s-{class}\"><span class=\"icon\" aria-hidden=\"true\">{icon}</span> {banner_text}</p>\n\
         <p class=\"updated\">Updated {updated}. All times UTC. <a href=\"feed.atom\">Subscribe to incidents and updates (Atom feed)</a></p>\n{stale}{open}\
         <section aria-labelledby=\"h-current\">\n<h2 id=\"h-current\">Current status</h2>\n<ul class=\"clusters\">\n{clusters}</ul>\n\
         <p class=\"legend\" aria-hidden=\"true\"><span><i style=\"background:#2f7d4f\"></i>100 %</span><span><i style=\"background:#5f9e3a\"></i>≥ 99.9 % with incidents</span>\
         <span><i style=\"background:#a86b00\"></i>≥ 99 %</span><span><i style=\"background:#c2410c\"></i>≥ 95 %</span><span><i style=\"background:#b91c1c\"></i>below 95 %</span><span><i style=\"background:#7b8798\"></i>no data</span></p>\n</section>\n\
         <section aria-labelledby=\"h-maintenance\">\n<h2 id=\"h-maintenance\">Scheduled maintenance</h2>\n{maintenance}</section>\n\
         <section aria-labelledby=\"h-past\">\n<h2 id=\"h-past\">{past_heading}</h2>\n{past}{left_out}{past_maintenance}</section>\n\
         </main>\n<footer class=\"wrap\"><p>Measured every {every} by fleetprobe from outside the clusters. \
         Availability leaves out scheduled maintenance. <a href=\"feed.atom\">Atom feed</a></p></footer>\n</body>\n</html>\n",
        class = worst.class(),
        icon = icon(worst),
        updated = time_tag(page.now_ms),
        // Open incidents come first, right under the banner; with none the banner says so.
        open = if open.is_empty() {
            String::new()
        } else {
            format!(
                "<section aria-labelledby=\"h-open\">\n<h2 id=\"h-open\">Open incidents</h2>\n{}</section>\n",
                list(&open, "")
            )
        },
        past = list(&past, "No incidents."),
        every = match page.fleet.probe.interval.as_secs() {
            60 => "minute".to_string(),
            s if s % 60 == 0 => format!("{} minutes", s / 60),
            s => format!("{s} seconds"),
        },
    )
}

const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a202c;background:#f5f7fa}\
.wrap{max-width:56rem;margin:0 auto;padding:0 1rem}\
header.top{background:#1f2a44;color:#fff;padding:1.25rem 0 1rem}\
header.top h1{margin:0;font-size:1.6rem}\
.description{margin:.25rem 0 0;color:#dfe6f2}\
h2{font-size:1.25rem;margin:2rem 0 .75rem}\
h3{font-size:1.05rem;margin:0}\
h4{font-size:.95rem;margin:1rem 0 .25rem}\
a{color:#1d4ed8}\
.banner{margin:1.25rem 0 .5rem;padding:1rem 1.25rem;border-radius:.5rem;font-size:1.2rem;font-weight:600;border:2px solid}\
.stale{margin:0 0 1rem;padding:.6rem 1rem;border-radius:.5rem;background:#fff5d6;color:#5c4100;border:1px solid #a86b00}\
.updated{margin:0 0 1rem;font-size:.9rem;color:#4a5568}\
.s-ok{background:#e7f5ec;color:#14532d;border-color:#2f7d4f}\
.s-unknown{background:#eef0f3;color:#333d4a;border-color:#7b8798}\
.s-maint{background:#e6eeff;color:#1e3a8a;border-color:#3557b7}\
.s-degraded{background:#fff5d6;color:#5c4100;border-color:#a86b00}\
.s-slow{background:#fff5d6;color:#5c4100;border-color:#a86b00}\
.s-partial{background:#ffeadb;color:#7c2d12;border-color:#c2410c}\
.s-major{background:#fde4e4;color:#7f1d1d;border-color:#b91c1c}\
ul.clusters,ol.incidents,ul.plain{list-style:none;margin:0;padding:0}\
li.cluster,.incident,li.maintenance{background:#fff;border:1px solid #d5dbe5;border-left:6px solid;border-radius:.5rem;padding:.9rem 1rem;margin:0 0 .75rem}\
li.cluster{color:inherit;background:#fff}\
li.cluster.s-unknown{border-left-color:#7b8798}li.cluster.s-ok{border-left-color:#2f7d4f}li.cluster.s-maint{border-left-color:#3557b7}\
li.cluster.s-degraded{border-left-color:#a86b00}li.cluster.s-slow{border-left-color:#a86b00}li.cluster.s-partial{border-left-color:#c2410c}\
li.cluster.s-major{border-left-color:#b91c1c}\
.short{display:none}\
.cluster-head{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:.25rem 1rem}\
p.state{margin:0;padding:.1rem .6rem;border-radius:1rem;font-weight:600;font-size:.9rem;border:1px solid}\
.now{margin:.25rem 0 .5rem;font-size:.95rem}\
figure{margin:0}\
svg.bars{display:block;width:100%;height:2.5rem}\
.axis{display:flex;justify-content:space-between;font-size:.8rem;color:#4a5568}\
figcaption{font-size:.9rem;margin-top:.25rem}\
details{margin-top:.5rem;font-size:.9rem}\
summary{cursor:pointer;color:#1d4ed8}\
ol.days{columns:16rem;margin:.5rem 0 0;padding-left:1.25rem}\
.legend{display:flex;flex-wrap:wrap;gap:.25rem 1rem;font-size:.85rem;color:#4a5568;margin:.25rem 0 0}\
.legend i{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin-right:.3rem;vertical-align:-.1rem}\
.incident.open{border-left-color:#b91c1c}\
.incident.resolved{border-left-color:#7b8798}\
li.maintenance{border-left-color:#3557b7}\
li.maintenance p{margin:.15rem 0}\
.meta{margin:.25rem 0;font-size:.85rem;color:#4a5568}\
.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.8rem;font-weight:600;border:1px solid}\
.badge.open{background:#fde4e4;color:#7f1d1d}\
.badge.resolved{background:#edf0f4;color:#2d3748}\
.badge.maint{background:#e6eeff;color:#1e3a8a}\
.badge.planned{background:#edf0f4;color:#2d3748}\
.badge.done{background:#edf0f4;color:#2d3748}\
.id{font-family:ui-monospace,monospace;overflow-wrap:anywhere}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0;font-size:.95rem}\
dt{font-weight:600;color:#2d3748}dd{margin:0;min-width:0}\
.text{white-space:pre-line;overflow-wrap:anywhere}\
ol.updates{list-style:none;margin:0;padding:0;border-left:2px solid #d5dbe5}\
ol.updates li{padding:.25rem 0 .5rem .75rem}\
ol.updates time{font-size:.85rem;font-weight:600;color:#2d3748}\
ol.updates p{margin:.1rem 0 0}\
ul.names{margin:0;padding-left:1.1rem}\
.empty{color:#4a5568}\
footer{font-size:.85rem;color:#4a5568;margin:2rem auto 1.5rem}\
@media (max-width:40rem){.long{display:none}.short{display:block}}\
@media (max-width:32rem){dl{grid-template-columns:1fr}dd{margin-bottom:.35rem}.banner{font-size:1.05rem}}";

// ---- feed -----------------------------------------------------------------------------------

/// An id for the feed: under the page's URL when configured, else a URN.
/// How an incident relates to scheduled maintenance, in words; `None` when it does not.
fn maintenance_words(i: &Incident) -> Option<String> {
    match i.maintenance {
        MaintenanceOverlap::Inside => Some("During scheduled maintenance".to_string()),
        MaintenanceOverlap::Overrun => Some(format!("Overran scheduled maintenance by {}", duration(i.overrun_ms))),
        MaintenanceOverlap::Partial => {
            Some(format!("Partly during scheduled maintenance ({})", duration(i.maintenance_ms)))
        }
        MaintenanceOverlap::None => None,
    }
}

/// A feed or entry id. With `status.url` it is the page's address; without, it names this
/// installation (its configuration file and title), so that two providers' feeds never share ids.
fn feed_id(page: &StatusPage, fragment: &str) -> String {
    match &page.url {
        Some(url) => format!("{url}#{fragment}"),
        None => {
            let installation = format!("{}\n{}", page.fleet.config_path.display(), page.title);
            format!("urn:fleetprobe:status:{:016x}:{fragment}", crate::probe::fnv1a(&installation))
        }
    }
}

/// `feed.atom`: one entry per incident and per update (newest first), Atom 1.0.
pub fn atom(page: &StatusPage) -> String {
    let home = page.url.clone().unwrap_or_else(|| "index.html".into());
    let mut entries: Vec<(i64, String)> = Vec::new();
    for view in &page.incidents {
        let i = view.incident;
        let anchor = format!("incident-{}", slug(&i.id));
        let link = format!("{home}#{anchor}");
        let updated = view.updates.first().map_or(i.start_ms, |u| u.posted_at_ms).max(i.end_ms.unwrap_or(i.start_ms));
        let state = match i.end_ms {
            None => format!("ongoing since {}", utc(i.start_ms)),
            Some(end) => format!("{} – {} ({})", utc(i.start_ms), utc(end), duration(end - i.start_ms)),
        };
        let mut content = format!(
            "{state}. {} of customers on {} affected (at most {} at once).",
            share_text(i.affected_customer_share),
            view.cluster,
            share_text(i.peak_customer_share)
        );
        if let Some(words) = maintenance_words(i) {
            content.push_str(&format!(" {words}."));
        }
        if let Some(cause) = &view.cause {
            content.push_str(&format!("\nCause: {cause}"));
        }
        let prefix = if i.ongoing() { "Open" } else { "Resolved" };
        entries.push((
            updated,
            entry(
                &feed_id(page, &anchor),
                &format!("{prefix}: {}", view.title),
                updated,
                Some(i.start_ms),
                &link,
                &content,
            ),
        ));
        for u in &view.updates {
            let fragment = format!("update-{}-{}", slug(&i.id), u.posted_at_ms);
            entries.push((
                u.posted_at_ms,
                entry(
                    &feed_id(page, &fragment),
                    &format!("Update: {}", view.title),
                    u.posted_at_ms,
                    None,
                    &format!("{home}#{fragment}"),
                    &u.text,
                ),
            ));
        }
    }
    // A slow cluster is news too: one entry per slow stretch, dated when it began.
    for cluster in page.clusters.iter().filter(|c| c.state == State::SlowResponses) {
        let Some(slow) = &cluster.slow else { continue };
        let fragment = format!("slow-{}-{}", slug(&cluster.name), slow.since_ms);
        entries.push((
            slow.since_ms,
            entry(
                &feed_id(page, &fragment),
                &format!("Degraded performance on {}", cluster.name),
                slow.since_ms,
                Some(slow.since_ms),
                &format!("{home}#cluster-{}", slug(&cluster.name)),
                &format!("{} is up, {}.", cluster.name, slow_words(slow)),
            ),
        ));
    }
    entries.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let updated = entries.first().map_or(page.now_ms, |(at, _)| *at);
    let self_link = page.url.as_ref().map_or("feed.atom".to_string(), |u| format!("{u}feed.atom"));
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n\
         <id>{}</id>\n<title>{}</title>\n<subtitle>Incidents and updates</subtitle>\n<updated>{}</updated>\n\
         <author><name>{}</name></author>\n<generator>fleetprobe</generator>\n\
         <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        escape_html(&feed_id(page, "feed")),
        escape_html(&page.title),
        rfc3339(updated),
        escape_html(&page.title),
        escape_html(&self_link),
        escape_html(&home),
    );
    for (_, e) in entries {
        out.push_str(&e);
    }
    out.push_str("</feed>\n");
    out
}

fn entry(id: &str, title: &str, updated: i64, published: Option<i64>, link: &str, content: &str) -> String {
    let published = published.map(|p| format!("<published>{}</published>", rfc3339(p))).unwrap_or_default();
    format!(
        "<entry>\n<id>{}</id>\n<title type=\"text\">{}</title>\n<updated>{}</updated>{published}\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<content type=\"text\">{}</content>\n</entry>\n",
        escape_html(id),
        escape_html(title),
        rfc3339(updated),
        escape_html(link),
        escape_html(content),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_never_rounds_up_to_100() {
        assert_eq!(availability_text(1.0), "100 %");
        assert_eq!(availability_text(0.99999), "99.99 %");
        assert_eq!(availability_text(0.992), "99.2 %");
        assert_eq!(availability_text(0.5), "50 %");
        assert_eq!(share_text(0.3), "30 %");
        assert_eq!(share_text(0.005), "0.5 %");
    }

    #[test]
    fn day_texts() {
        let day = Day { start_ms: 1_791_936_000_000, availability: Some(0.992), incidents: 2 };
        assert_eq!(day_text(&day), "2026-10-14: 99.2 % available, 2 incidents");
        assert_eq!(day_text(&Day { availability: None, ..day }), "2026-10-14: no data");
    }

    #[test]
    fn slugs_are_fragment_safe() {
        assert_eq!(slug("fra-1-20261014T2200"), "fra-1-20261014T2200");
        assert_eq!(slug("a\"<b"), "a_22_3Cb");
    }
}
