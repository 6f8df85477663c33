//! Vantage-local failures as the cluster and incident reports list them: per vantage and
//! cluster, the sites one vantage saw down while the verdict (the quorum of vantages) did not.
//! Never downtime; shown so that a prober's own network trouble is seen for what it is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::table::{Align, Table};
use crate::analysis::Span;
use crate::analysis::outages::minutes;
use crate::analysis::period::Availability;
use crate::fleet::{ClusterIdx, Fleet, SiteIdx};

/// At least this many sites of one cluster failing at once for one vantage alone point at the
/// vantage's own path...
pub const LIKELY_PATH_SITES: usize = 3;
/// ...or this share of the cluster's sites (and at least two of them).
pub const LIKELY_PATH_SHARE: f64 = 0.2;

/// One vantage's local failures on one cluster inside the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalFailureRow {
    pub vantage: String,
    pub cluster: String,
    /// Distinct sites the vantage alone saw down.
    pub sites: usize,
    /// Site-minutes in such failures.
    pub site_minutes: i64,
    /// Most sites failing for this vantage alone at one instant.
    pub peak_sites: usize,
    /// Many sites of the cluster at once: likely the vantage's own path, not the cluster.
    pub likely_vantage_path: bool,
}

/// The rows of a period, by vantage then cluster; `cluster` keeps one cluster's.
pub fn rows(fleet: &Fleet, analysis: &Availability, cluster: Option<ClusterIdx>) -> Vec<LocalFailureRow> {
    let within = analysis.elapsed;
    let mut grouped: BTreeMap<(usize, ClusterIdx), Vec<(SiteIdx, Span)>> = BTreeMap::new();
    for local in &analysis.local_failures {
        let span = local.span.intersect(&within);
        let site_cluster = fleet.sites[local.site].cluster;
        if span.is_empty() || cluster.is_some_and(|c| c != site_cluster) {
            continue;
        }
        grouped.entry((local.vantage, site_cluster)).or_default().push((local.site, span));
    }
    grouped
        .into_iter()
        .map(|((vantage, cluster), spans)| {
            let sites: BTreeSet<SiteIdx> = spans.iter().map(|(s, _)| *s).collect();
            let cluster_sites = fleet.sites.iter().filter(|s| s.cluster == cluster).count().max(1);
            let peak_sites = peak(spans.iter().map(|(_, s)| *s));
            LocalFailureRow {
                vantage: analysis.vantages.get(vantage).map(|v| v.name.clone()).unwrap_or_default(),
                cluster: fleet.clusters[cluster].name.clone(),
                sites: sites.len(),
                site_minutes: minutes(spans.iter().map(|(_, s)| s.len()).sum()),
                peak_sites,
                likely_vantage_path: peak_sites >= LIKELY_PATH_SITES
                    || (peak_sites >= 2 && peak_sites as f64 >= LIKELY_PATH_SHARE * cluster_sites as f64),
            }
        })
        .collect()
}

/// Most spans covering one instant.
fn peak(spans: impl Iterator<Item = Span>) -> usize {
    let mut events: Vec<(i64, i32)> = spans.flat_map(|s| [(s.start, 1), (s.end, -1)]).collect();
    events.sort_unstable();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in events {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

pub fn table(rows: &[LocalFailureRow]) -> Table {
    let mut t = Table::new(&[
        ("vantage", Align::Left),
        ("cluster", Align::Left),
        ("sites", Align::Right),
        ("site-min", Align::Right),
        ("peak sites", Align::Right),
        ("likely cause", Align::Left),
    ]);
    for r in rows {
        t.push(vec![
            r.vantage.clone(),
            r.cluster.clone(),
            r.sites.to_string(),
            r.site_minutes.to_string(),
            r.peak_sites.to_string(),
            if r.likely_vantage_path { "likely the vantage's own path".into() } else { String::new() },
        ]);
    }
    t
}

/// One line for the foot of a table: "vantage-local failures (not downtime): v2 on ams-1 3
/// sites 94 site-min, likely the vantage's own path".
pub fn summary_line(rows: &[LocalFailureRow]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let parts: Vec<String> = rows
        .iter()
        .map(|r| {
            let cause = if r.likely_vantage_path { ", likely the vantage's own path" } else { "" };
            format!("{} on {}: {} sites, {} site-min{cause}", r.vantage, r.cluster, r.sites, r.site_minutes)
        })
        .collect();
    Some(format!(
        "vantage-local failures (seen by fewer vantages than the quorum, not downtime): {}\n",
        parts.join("; ")
    ))
}
