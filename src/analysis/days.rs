//! A cluster's availability per day: monitored site-time outside maintenance, downtime outside
//! maintenance, and the incidents that overlap the day. The status page's bars are these
//! figures, and the store keeps them per UTC day (`ClusterDay`) so that the bars outlive the
//! raw runs they come from.

use super::incidents::Incident;
use super::period::Availability;
use super::{Span, length_within};
use crate::fleet::Fleet;

/// One cluster's figures over one day (or the part of it that has passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayFigures {
    /// Monitored site-milliseconds outside maintenance: the availability's denominator.
    pub eligible_ms: i64,
    /// Site-milliseconds in confirmed outages outside maintenance.
    pub down_ms: i64,
    /// Incidents of the cluster that overlap the day (ongoing ones up to `now`).
    pub incidents: usize,
}

impl DayFigures {
    /// SLA availability; `None` when nothing was monitored.
    pub fn availability(&self) -> Option<f64> {
        (self.eligible_ms > 0).then(|| 1.0 - self.down_ms as f64 / self.eligible_ms as f64)
    }
}

/// The figures of `cluster` for each of `days`, from an analysis whose period holds them.
pub fn cluster_days(
    fleet: &Fleet,
    analysis: &Availability,
    cluster: usize,
    days: &[Span],
    now_ms: i64,
) -> Vec<DayFigures> {
    let sites: Vec<usize> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].cluster == cluster).collect();
    let outages: Vec<_> = analysis.history.outages.iter().filter(|o| fleet.sites[o.site].cluster == cluster).collect();
    let incidents: Vec<&Incident> = analysis.incidents.iter().filter(|i| i.cluster == cluster).collect();
    // Sites grouped by the runs that checked them (one group unless the fleet is sharded or
    // changed), each with its monitored time.
    let groups = analysis.history.monitored_groups(&sites, &analysis.period);
    days.iter()
        .map(|day| {
            let mut eligible_ms = 0i64;
            for (group, spans) in &groups {
                let monitored: Vec<Span> = spans.iter().map(|m| m.intersect(day)).filter(|m| !m.is_empty()).collect();
                let monitored_ms: i64 = monitored.iter().map(Span::len).sum();
                eligible_ms += monitored_ms * group.len() as i64;
                for &site in group.iter().filter(|&&s| !analysis.maintenance[s].is_empty()) {
                    eligible_ms -= monitored.iter().map(|m| length_within(&analysis.maintenance[site], m)).sum::<i64>();
                }
            }
            let down_ms =
                outages.iter().map(|o| o.downtime_ms(day) - o.maintenance_ms(day, &analysis.maintenance[o.site])).sum();
            let incidents = incidents
                .iter()
                .filter(|i| Span::new(i.start_ms, i.end_ms.unwrap_or(now_ms).max(i.start_ms + 1)).overlap(day) > 0)
                .count();
            DayFigures { eligible_ms, down_ms, incidents }
        })
        .collect()
}
