//! Cluster incidents: maximal intervals in which at least one site of a cluster is down, with the
//! share of the cluster's customers they hit. "1% down is 100% down for that 1%."

use std::collections::{BTreeMap, BTreeSet};

use super::outages::{Outage, SiteHistory};
use super::{MINUTE_MS, Settings, Span, length_within, union};
use crate::fleet::{ClusterIdx, CustomerIdx, Fleet, SiteIdx};
use crate::probe::Failure;

/// How much of a cluster's customer base an incident touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// One customer.
    Isolated,
    /// More than one customer, up to the major share.
    Partial,
    /// More than the configured share of the cluster's customers.
    Major,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Isolated => "isolated",
            Scope::Partial => "partial",
            Scope::Major => "major",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [Scope::Isolated, Scope::Partial, Scope::Major].into_iter().find(|s| s.as_str() == text)
    }
}

/// How an incident relates to scheduled maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceOverlap {
    None,
    /// Entirely inside maintenance windows.
    Inside,
    /// Began in a window and went on after it ended: the common overrun.
    Overrun,
    /// Partly inside, partly outside, not an overrun.
    Partial,
}

impl MaintenanceOverlap {
    pub fn as_str(self) -> &'static str {
        match self {
            MaintenanceOverlap::None => "none",
            MaintenanceOverlap::Inside => "inside",
            MaintenanceOverlap::Overrun => "overrun",
            MaintenanceOverlap::Partial => "partial",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Stable: the cluster and the start minute in UTC, e.g. `fra-1-20261014T2200`.
    pub id: String,
    pub cluster: ClusterIdx,
    /// First failed run of the first outage.
    pub start_ms: i64,
    /// End of the last down slot; `None` while a site is still down.
    pub end_ms: Option<i64>,
    /// The incident's time inside the report period; figures below are measured within it.
    pub within_period: Span,
    pub peak_sites_down: usize,
    pub peak_at_ms: i64,
    pub sites: Vec<SiteIdx>,
    pub customers: Vec<CustomerIdx>,
    /// Customers with at least one site on the cluster.
    pub cluster_customers: usize,
    /// Affected customers / customers on the cluster.
    pub affected_customer_share: f64,
    /// The most customers down at one moment / customers on the cluster.
    pub peak_customer_share: f64,
    /// Sum over affected customers of the minutes they had at least one site down.
    pub customer_minutes: f64,
    /// Failed checks by class.
    pub classes: BTreeMap<Failure, u32>,
    pub scope: Scope,
    /// Incident time inside maintenance windows of the cluster or its affected sites.
    pub maintenance_ms: i64,
    /// Incident time after the end of a window it overlapped (and outside any window).
    pub overrun_ms: i64,
    pub maintenance: MaintenanceOverlap,
    /// Indices into the history's outages.
    pub outages: Vec<usize>,
}

impl Incident {
    /// Length of the incident inside the period.
    pub fn duration_ms(&self) -> i64 {
        self.within_period.len()
    }

    pub fn ongoing(&self) -> bool {
        self.end_ms.is_none()
    }

    /// The dominant failure class (most failed checks), for one-word summaries.
    pub fn main_class(&self) -> Option<Failure> {
        self.classes.iter().max_by_key(|(failure, count)| (**count, std::cmp::Reverse(**failure))).map(|(f, _)| *f)
    }
}

/// Builds the incidents of every cluster from a site history. Incidents that do not reach into
/// the history's period are left out. Sorted by start.
pub fn incidents(
    fleet: &Fleet,
    history: &SiteHistory,
    maintenance_by_site: &[Vec<Span>],
    settings: &Settings,
) -> Vec<Incident> {
    let period = history.period;
    let mut cluster_customers: Vec<BTreeSet<CustomerIdx>> = vec![BTreeSet::new(); fleet.clusters.len()];
    for site in &fleet.sites {
        cluster_customers[site.cluster].insert(site.customer);
    }
    let mut by_cluster: Vec<Vec<usize>> = vec![Vec::new(); fleet.clusters.len()];
    for (i, outage) in history.outages.iter().enumerate() {
        by_cluster[fleet.sites[outage.site].cluster].push(i);
    }
    let mut found = Vec::new();
    for (cluster, outage_ids) in by_cluster.into_iter().enumerate() {
        // Group outages whose hulls overlap or nearly touch.
        let mut ordered = outage_ids;
        ordered.sort_by_key(|&i| history.outages[i].hull());
        let mut groups: Vec<(Span, Vec<usize>)> = Vec::new();
        for i in ordered {
            let hull = history.outages[i].hull();
            match groups.last_mut() {
                Some((span, members)) if hull.start <= span.end + settings.incident_merge_gap_ms => {
                    span.end = span.end.max(hull.end);
                    members.push(i);
                }
                _ => groups.push((hull, vec![i])),
            }
        }
        for (span, members) in groups {
            if span.overlap(&period) == 0 {
                continue;
            }
            let outages: Vec<&Outage> = members.iter().map(|&i| &history.outages[i]).collect();
            found.push(build(
                fleet,
                cluster,
                span,
                members.clone(),
                &outages,
                &cluster_customers[cluster],
                maintenance_by_site,
                period,
                settings,
            ));
        }
    }
    found.sort_by_key(|i| (i.start_ms, i.cluster));
    found
}

#[allow(clippy::too_many_arguments)]
fn build(
    fleet: &Fleet,
    cluster: ClusterIdx,
    span: Span,
    members: Vec<usize>,
    outages: &[&Outage],
    cluster_customers: &BTreeSet<CustomerIdx>,
    maintenance_by_site: &[Vec<Span>],
    period: Span,
    settings: &Settings,
) -> Incident {
    let within_period = span.intersect(&period);
    let ongoing = outages.iter().any(|o| o.end_ms.is_none());

    // Peak sites down: sweep over the down slots inside the period.
    let site_spans: Vec<Vec<Span>> = outages
        .iter()
        .map(|o| o.down.iter().map(|d| d.intersect(&period)).filter(|d| !d.is_empty()).collect())
        .collect();
    let (peak_sites_down, peak_at_ms) = peak(site_spans.iter().flatten().copied());

    // Per customer: the union of their sites' down time.
    let mut per_customer: BTreeMap<CustomerIdx, Vec<Span>> = BTreeMap::new();
    for (outage, spans) in outages.iter().zip(&site_spans) {
        per_customer.entry(fleet.sites[outage.site].customer).or_default().extend(spans.iter().copied());
    }
    let per_customer: BTreeMap<CustomerIdx, Vec<Span>> =
        per_customer.into_iter().map(|(c, spans)| (c, union(spans, 0))).collect();
    let customer_ms: i64 = per_customer.values().map(|spans| spans.iter().map(Span::len).sum::<i64>()).sum();
    let (peak_customers, _) = peak(per_customer.values().flatten().copied());

    let sites: BTreeSet<SiteIdx> = outages.iter().map(|o| o.site).collect();
    let customers: BTreeSet<CustomerIdx> = sites.iter().map(|&s| fleet.sites[s].customer).collect();
    let total_customers = cluster_customers.len().max(1);
    let affected_customer_share = customers.len() as f64 / total_customers as f64;

    let mut classes: BTreeMap<Failure, u32> = BTreeMap::new();
    for outage in outages {
        for (failure, count) in &outage.classes {
            *classes.entry(*failure).or_default() += count;
        }
    }

    // Maintenance: windows of the affected sites (cluster windows apply to every site).
    let windows = union(sites.iter().flat_map(|&s| maintenance_by_site[s].iter().copied()).collect(), 0);
    let maintenance_ms = length_within(&windows, &within_period);
    let after_windows: Vec<Span> = union(
        windows
            .iter()
            .filter(|w| w.overlap(&span) > 0 || w.end == span.start)
            .map(|w| Span::new(w.end, span.end))
            .collect(),
        0,
    );
    let overrun_ms = length_within(&after_windows, &within_period)
        - after_windows.iter().map(|a| length_within(&windows, &a.intersect(&within_period))).sum::<i64>();
    let maintenance = match (maintenance_ms > 0, overrun_ms > 0) {
        (false, _) => MaintenanceOverlap::None,
        (true, true) => MaintenanceOverlap::Overrun,
        (true, false) if maintenance_ms >= within_period.len() => MaintenanceOverlap::Inside,
        (true, false) => MaintenanceOverlap::Partial,
    };

    let scope = if customers.len() <= 1 {
        Scope::Isolated
    } else if affected_customer_share > settings.major_share {
        Scope::Major
    } else {
        Scope::Partial
    };
    let start = jiff::Timestamp::from_millisecond(span.start).unwrap_or_default();
    Incident {
        id: format!("{}-{}", fleet.clusters[cluster].name, start.strftime("%Y%m%dT%H%M")),
        cluster,
        start_ms: span.start,
        end_ms: (!ongoing).then_some(span.end),
        within_period,
        peak_sites_down,
        peak_at_ms,
        sites: sites.into_iter().collect(),
        customers: customers.into_iter().collect(),
        cluster_customers: cluster_customers.len(),
        affected_customer_share,
        peak_customer_share: peak_customers as f64 / total_customers as f64,
        customer_minutes: customer_ms as f64 / MINUTE_MS as f64,
        classes,
        scope,
        maintenance_ms,
        overrun_ms: overrun_ms.max(0),
        maintenance,
        outages: members,
    }
}

/// The most spans covering one instant, and the first instant it happens (ends before starts).
fn peak(spans: impl Iterator<Item = Span>) -> (usize, i64) {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for s in spans.filter(|s| !s.is_empty()) {
        events.push((s.start, 1));
        events.push((s.end, -1));
    }
    events.sort_unstable();
    let (mut now, mut best, mut best_at) = (0i32, 0i32, events.first().map_or(0, |e| e.0));
    for (at, delta) in events {
        now += delta;
        if now > best {
            best = now;
            best_at = at;
        }
    }
    (best.max(0) as usize, best_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_counts_overlaps_not_touches() {
        let s = Span::new;
        assert_eq!(peak([s(0, 10), s(5, 15), s(10, 20)].into_iter()), (2, 5));
        assert_eq!(peak([s(0, 10), s(10, 20)].into_iter()), (1, 0));
        assert_eq!(peak(std::iter::empty()), (0, 0));
    }
}
