//! Availability figures from a site history: per site, per cluster, fleet-wide.
//!
//! Availability is site-minutes weighted: 1 − downtime / monitored time, over the sites asked
//! about. The SLA variant leaves maintenance out of both sides: downtime inside a window is not
//! counted, and neither is the window's monitored time. Downtime after a window ends counts.

use std::collections::BTreeSet;

use super::outages::SiteHistory;
use super::{Span, length_within};
use crate::fleet::{ClusterIdx, CustomerIdx, Fleet, SiteIdx};

/// Time accounts of one site (or a sum over sites) inside the period, in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    pub monitored_ms: i64,
    pub downtime_ms: i64,
    /// Monitored time inside maintenance windows.
    pub maintenance_monitored_ms: i64,
    /// Downtime inside maintenance windows (shown, excluded from SLA figures).
    pub maintenance_downtime_ms: i64,
}

impl Account {
    pub fn add(&mut self, other: &Account) {
        self.monitored_ms += other.monitored_ms;
        self.downtime_ms += other.downtime_ms;
        self.maintenance_monitored_ms += other.maintenance_monitored_ms;
        self.maintenance_downtime_ms += other.maintenance_downtime_ms;
    }

    /// Share of monitored time up, all downtime counted. `None` with nothing monitored.
    pub fn availability(&self) -> Option<f64> {
        (self.monitored_ms > 0).then(|| 1.0 - self.downtime_ms as f64 / self.monitored_ms as f64)
    }

    /// Downtime that counts against an SLA: outside maintenance.
    pub fn sla_downtime_ms(&self) -> i64 {
        self.downtime_ms - self.maintenance_downtime_ms
    }

    /// Availability with maintenance left out of both sides.
    pub fn sla_availability(&self) -> Option<f64> {
        let eligible = self.monitored_ms - self.maintenance_monitored_ms;
        (eligible > 0).then(|| 1.0 - self.sla_downtime_ms() as f64 / eligible as f64)
    }
}

/// Per-site accounts, indexed by site.
pub fn site_accounts(history: &SiteHistory, maintenance_by_site: &[Vec<Span>]) -> Vec<Account> {
    let mut accounts: Vec<Account> = history
        .sites
        .iter()
        .map(|t| Account {
            monitored_ms: t.monitored_ms,
            maintenance_monitored_ms: t.maintenance_ms,
            ..Account::default()
        })
        .collect();
    for outage in &history.outages {
        let account = &mut accounts[outage.site];
        account.downtime_ms += outage.downtime_ms(&history.period);
        account.maintenance_downtime_ms += outage.maintenance_ms(&history.period, &maintenance_by_site[outage.site]);
    }
    accounts
}

/// Sums accounts over the given sites.
pub fn total<'a>(accounts: &[Account], sites: impl IntoIterator<Item = &'a SiteIdx>) -> Account {
    let mut sum = Account::default();
    for &site in sites {
        sum.add(&accounts[site]);
    }
    sum
}

/// A cluster's figures for a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterAvailability {
    pub cluster: ClusterIdx,
    pub sites: usize,
    pub customers: usize,
    pub account: Account,
    /// Customers of this cluster with any downtime on it in the period.
    pub customers_with_downtime: usize,
}

pub fn clusters(fleet: &Fleet, accounts: &[Account]) -> Vec<ClusterAvailability> {
    (0..fleet.clusters.len())
        .map(|cluster| {
            let sites: Vec<SiteIdx> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].cluster == cluster).collect();
            let customers: BTreeSet<CustomerIdx> = sites.iter().map(|&s| fleet.sites[s].customer).collect();
            let hit: BTreeSet<CustomerIdx> =
                sites.iter().filter(|&&s| accounts[s].downtime_ms > 0).map(|&s| fleet.sites[s].customer).collect();
            ClusterAvailability {
                cluster,
                sites: sites.len(),
                customers: customers.len(),
                account: total(accounts, &sites),
                customers_with_downtime: hit.len(),
            }
        })
        .collect()
}

/// Customers with any downtime in the period, fleet-wide.
pub fn customers_with_downtime(fleet: &Fleet, accounts: &[Account]) -> BTreeSet<CustomerIdx> {
    (0..fleet.sites.len()).filter(|&s| accounts[s].downtime_ms > 0).map(|s| fleet.sites[s].customer).collect()
}

/// The time a customer had at least one site down (union over their sites), inside the period.
pub fn customer_down_ms(fleet: &Fleet, history: &SiteHistory, customer: CustomerIdx) -> i64 {
    let spans: Vec<Span> = history
        .outages
        .iter()
        .filter(|o| fleet.sites[o.site].customer == customer)
        .flat_map(|o| o.down.iter().map(|d| d.intersect(&history.period)))
        .collect();
    super::union(spans, 0).iter().map(Span::len).sum()
}

/// The fleet's monitored share of the elapsed period, site-time weighted: a site no valid run
/// checked (its shard did not run, say) is unmonitored for that time.
pub fn coverage(history: &SiteHistory, elapsed: &Span) -> Option<f64> {
    if elapsed.is_empty() {
        return None;
    }
    if history.sites.is_empty() {
        return Some(length_within(&history.monitored, elapsed) as f64 / elapsed.len() as f64);
    }
    let sites: Vec<SiteIdx> = (0..history.sites.len()).collect();
    let monitored: i64 = history
        .monitored_groups(&sites, elapsed)
        .iter()
        .map(|(sites, spans)| sites.len() as i64 * spans.iter().map(Span::len).sum::<i64>())
        .sum();
    Some(monitored as f64 / (elapsed.len() as f64 * history.sites.len() as f64))
}
