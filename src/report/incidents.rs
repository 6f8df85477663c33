//! `fleetprobe report incidents`: the incident list, filterable by cluster and scope; and
//! `fleetprobe report affected`: every customer and site an incident hit, with contacts, for
//! support to reach each of them personally.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::clusters::{IncidentRow, incident_row, incident_table};
use super::local_failures::{self, LocalFailureRow};
use super::period::Period;
use super::render::{Render, write_json};
use super::table::{Align, Table};
use crate::analysis::Span;
use crate::analysis::incidents::{Incident, Scope};
use crate::analysis::outages::minutes;
use crate::analysis::period::Availability;
use crate::fleet::{ClusterIdx, Fleet};

/// The incidents of a period, optionally of one cluster or scope.
#[derive(Serialize)]
#[serde(transparent)]
pub struct IncidentList {
    pub rows: Vec<IncidentRow>,
    #[serde(skip)]
    pub period_label: String,
    /// Failures fewer vantages than the quorum saw (not incidents): a line under the table.
    #[serde(skip)]
    pub vantage_local_failures: Vec<LocalFailureRow>,
}

pub fn build(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    cluster: Option<ClusterIdx>,
    scope: Option<Scope>,
) -> IncidentList {
    let rows = analysis
        .incidents
        .iter()
        .filter(|i| cluster.is_none_or(|c| i.cluster == c) && scope.is_none_or(|s| i.scope == s))
        .map(|i| incident_row(fleet, period, i))
        .collect();
    let vantage_local_failures = local_failures::rows(fleet, analysis, cluster);
    IncidentList { rows, period_label: period.label.clone(), vantage_local_failures }
}

impl Render for IncidentList {
    fn table(&self) -> Table {
        incident_table(&self.rows.iter().collect::<Vec<_>>())
    }
    fn text(&self) -> String {
        let mut out = if self.rows.is_empty() {
            format!("no incidents in {}\n", self.period_label)
        } else {
            self.table().text(60)
        };
        out.extend(local_failures::summary_line(&self.vantage_local_failures));
        out
    }
    fn json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_json(out, &self.rows)
    }
    fn markdown(&self) -> String {
        let mut out = self.table().markdown();
        if let Some(line) = local_failures::summary_line(&self.vantage_local_failures) {
            out.push_str(&format!("\n{line}"));
        }
        out
    }
    fn html(&self) -> String {
        let mut out = self.table().html();
        if let Some(line) = local_failures::summary_line(&self.vantage_local_failures) {
            out.push_str(&format!("<p>{}</p>\n", super::table::escape_html(line.trim_end())));
        }
        out
    }
}

/// Every customer and site `incident` hit, one row per site grouped by customer, with contacts:
/// the list support works through. Times in `tz`.
pub fn affected(fleet: &Fleet, analysis: &Availability, incident: &Incident, tz: &jiff::tz::TimeZone) -> Table {
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
    table
}

/// The start encoded in an incident id: the `YYYYMMDDTHHMM` after the cluster name.
pub fn incident_start(id: &str) -> Option<i64> {
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
