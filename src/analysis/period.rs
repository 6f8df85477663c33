//! The analysis of one period, as every report reads it: the sites' histories, the incidents,
//! each site's account and the maintenance windows, with the customer SLA on top.

use super::availability::{self, Account};
use super::incidents::Incident;
use super::outages::SiteHistory;
use super::quorum::{LocalFailure, VantageRuns};
use super::{Settings, Span};
use crate::fleet::{CustomerIdx, Fleet};

/// How far before a period runs are read, so an outage that began earlier keeps its true
/// start (and its incident its id).
pub const LOOKBACK_MS: i64 = 24 * 3600 * 1000;

/// The analysis of one period.
pub struct Availability {
    pub period: Span,
    /// The part of the period that has happened.
    pub elapsed: Span,
    pub history: SiteHistory,
    pub incidents: Vec<Incident>,
    pub accounts: Vec<Account>,
    pub maintenance: Vec<Vec<Span>>,
    pub settings: Settings,
    /// The probers whose runs were read, by name, with their runs in the period.
    pub vantages: Vec<VantageRuns>,
    /// Time a vantage saw a site down while the verdict did not: never downtime.
    pub local_failures: Vec<LocalFailure>,
}

impl Availability {
    /// The vantages with a valid run in the period: how many locations measured it.
    pub fn measuring_vantages(&self) -> usize {
        self.vantages.iter().filter(|v| v.valid_runs > 0).count()
    }

    pub fn coverage(&self) -> Option<f64> {
        availability::coverage(&self.history, &self.elapsed)
    }

    /// A customer's SLA over this period: availability, credit and goodwill.
    pub fn customer_sla(&self, fleet: &Fleet, customer: CustomerIdx) -> super::sla::CustomerSla {
        super::sla::customer_sla(
            fleet,
            customer,
            &self.history,
            &self.maintenance,
            &self.accounts,
            &self.incidents,
            &fleet.goodwill,
            &self.elapsed,
        )
    }
}
