//! Analysis: stored results in, outages, incidents and availability out.
//!
//! Fourth stage of the data flow, and pure: no store, clock or files inside. The caller feeds
//! runs in time order (`outages::Tracker`), and gets back site outages, blips and per-site time
//! accounts; `incidents` turns a cluster's outages into incidents with the share of customers
//! they hit; `latency` turns merged latency histograms into percentiles, bins and CDFs. Every
//! availability figure can be recomputed by hand from the runs, to the minute:
//!
//! - A run's *slot* is the time it speaks for: from its start to the next run's start, or one
//!   interval when the next run is late (the rest of the gap is unmonitored).
//! - Only valid runs monitor. A site's *monitored time* is the slots of the valid runs that
//!   checked it; its *downtime* is the slots of the failed runs of confirmed outages.
//! - An *outage* is confirmed after `confirm_after` consecutive failed runs; it starts at the
//!   first failed run and ends at the first successful one. Shorter streaks are *blips*.
//! - With several vantages each keeps its own runs, slots and outages; `quorum` combines them
//!   into the verdict: a site is down while at least the quorum of the vantages measuring it are
//!   in their own outage. Time a vantage alone sees down is a *vantage-local failure*.
//! - Maintenance windows split downtime into inside (shown, excluded from SLA figures) and
//!   outside (counts; downtime after a window's end is an overrun).

pub mod availability;
pub mod days;
pub mod incidents;
pub mod latency;
pub mod notify;
pub mod outages;
pub mod period;
pub mod quorum;
pub mod sla;

use crate::fleet::{Fleet, MaintenanceScope, Quorum, SiteIdx};
use crate::probe::Failure;

pub const MINUTE_MS: i64 = 60_000;

/// A run as the analysis needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    pub started_at_ms: i64,
    pub valid: bool,
}

/// Half-open time interval [start, end) in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: i64,
    pub end: i64,
}

impl Span {
    pub fn new(start: i64, end: i64) -> Span {
        Span { start, end: end.max(start) }
    }

    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn intersect(&self, other: &Span) -> Span {
        Span::new(self.start.max(other.start), self.end.min(other.end))
    }

    pub fn overlap(&self, other: &Span) -> i64 {
        self.intersect(other).len()
    }
}

/// Sorts and merges spans, joining those separated by at most `gap` ms (0: touching ones).
pub fn union(mut spans: Vec<Span>, gap: i64) -> Vec<Span> {
    spans.retain(|s| !s.is_empty());
    spans.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end + gap => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// Total length of the parts of `spans` (disjoint, sorted) inside `within`.
pub fn length_within(spans: &[Span], within: &Span) -> i64 {
    spans.iter().map(|s| s.overlap(within)).sum()
}

/// Analysis settings beyond the fleet's own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Expected time between runs; a run speaks for at most this long, and a gap of more than
    /// `interval * 1.5` leaves the excess unmonitored.
    pub interval_ms: i64,
    /// Outages of a cluster closer than this are one incident.
    pub incident_merge_gap_ms: i64,
    /// An incident hitting more than this share of the cluster's customers is `major`.
    pub major_share: f64,
    /// With several vantages: how many of those measuring a site must see it down.
    pub quorum: Quorum,
}

impl Settings {
    pub fn from_fleet(fleet: &Fleet) -> Settings {
        Settings {
            interval_ms: fleet.probe.interval.as_millis() as i64,
            incident_merge_gap_ms: fleet.analysis.incident_merge_gap.as_millis() as i64,
            major_share: fleet.analysis.major_share,
            quorum: fleet.analysis.quorum,
        }
    }
}

/// Maintenance windows per site, sorted and merged: what the analysis needs of them.
pub fn maintenance_by_site(fleet: &Fleet) -> Vec<Vec<Span>> {
    let mut by_site: Vec<Vec<Span>> = vec![Vec::new(); fleet.sites.len()];
    for window in &fleet.maintenance {
        let span = Span::new(window.start.as_millisecond(), window.end.as_millisecond());
        match &window.scope {
            MaintenanceScope::Cluster(cluster) => {
                for (idx, site) in fleet.sites.iter().enumerate() {
                    if site.cluster == *cluster {
                        by_site[idx].push(span);
                    }
                }
            }
            MaintenanceScope::Sites(sites) => {
                for &idx in sites {
                    by_site[idx].push(span);
                }
            }
        }
    }
    by_site.into_iter().map(|spans| union(spans, 0)).collect()
}

/// Failure classes seen, as a bit set of failure codes (codes are below 64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct FailureSet(pub u64);

impl FailureSet {
    pub fn insert(&mut self, failure: Failure) {
        self.0 |= 1 << (failure.code() & 63);
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Failure> + '_ {
        (0..64u8).filter(|bit| self.0 & (1 << bit) != 0).filter_map(Failure::from_code)
    }
}

impl FromIterator<Failure> for FailureSet {
    fn from_iter<I: IntoIterator<Item = Failure>>(iter: I) -> Self {
        let mut set = FailureSet::default();
        for failure in iter {
            set.insert(failure);
        }
        set
    }
}

/// What one valid run saw of one site: the failure classes of its failed checks (none: up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub site: SiteIdx,
    pub failures: FailureSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_merge_overlaps_and_short_gaps() {
        let s = |a, b| Span::new(a, b);
        assert_eq!(union(vec![s(5, 7), s(0, 2), s(2, 3), s(10, 10)], 0), vec![s(0, 3), s(5, 7)]);
        assert_eq!(union(vec![s(5, 7), s(0, 3)], 2), vec![s(0, 7)]);
        assert_eq!(length_within(&[s(0, 3), s(5, 7)], &s(2, 6)), 2);
    }

    #[test]
    fn failure_sets() {
        let set: FailureSet = [Failure::HttpStatus, Failure::DnsNxdomain, Failure::HttpStatus].into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Failure::DnsNxdomain, Failure::HttpStatus]);
    }
}
