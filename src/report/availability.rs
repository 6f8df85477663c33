//! Reads a period's runs and results from the store and runs the availability analysis on them:
//! the one place where reports meet the store.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::analysis::availability::{self, Account};
use crate::analysis::incidents::{self, Incident};
use crate::analysis::outages::{CheckedSites, SiteHistory, Tracker};
use crate::analysis::{self, Observation, Run, Settings, Span};
use crate::cli::CommandError;
use crate::fleet::{Fleet, SiteIdx};
use crate::store::{Roster, Store};

/// How far before the period runs are read, so an outage that began earlier keeps its true
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
    /// The probers whose runs were read.
    pub vantages: std::collections::BTreeSet<String>,
}

impl Availability {
    pub fn coverage(&self) -> Option<f64> {
        availability::coverage(&self.history, &self.elapsed)
    }

    /// A customer's SLA over this period: availability, credit and goodwill.
    pub fn customer_sla(
        &self,
        fleet: &Fleet,
        customer: crate::fleet::CustomerIdx,
    ) -> crate::analysis::sla::CustomerSla {
        crate::analysis::sla::customer_sla(
            fleet,
            customer,
            &self.accounts,
            &self.incidents,
            &fleet.goodwill,
            &self.elapsed,
        )
    }
}

/// Analyzes a report's period, up to its "now".
pub fn analyze_period(
    fleet: &Fleet,
    store: &dyn Store,
    period: &super::period::Period,
) -> Result<Availability, CommandError> {
    analyze(fleet, store, period.start_ms(), period.end_ms(), period.now.as_millisecond())
}

/// Loads `[start, end)` (and the lookback before it) and analyzes it. `now` bounds the data: a
/// period that reaches into the future ends at now.
pub fn analyze(
    fleet: &Fleet,
    store: &dyn Store,
    start_ms: i64,
    end_ms: i64,
    now_ms: i64,
) -> Result<Availability, CommandError> {
    let period = Span::new(start_ms, end_ms);
    let elapsed = Span::new(start_ms, end_ms.min(now_ms));
    let settings = Settings::from_fleet(fleet);
    let maintenance = analysis::maintenance_by_site(fleet);
    let confirm_after: Vec<u32> = fleet.sites.iter().map(|s| fleet.confirm_after(s.customer)).collect();
    let site_index: HashMap<&str, SiteIdx> = fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let store_error = |e: crate::store::StoreError| CommandError::store(e.to_string());

    // Store site keys to fleet sites; sites the fleet no longer has are left out.
    let by_key: HashMap<i64, SiteIdx> = store
        .site_keys()
        .map_err(store_error)?
        .into_iter()
        .filter_map(|(key, id)| site_index.get(id.as_str()).map(|&site| (key, site)))
        .collect();
    let mut vantages = std::collections::BTreeSet::new();
    let mut tracker = Tracker::new(period, settings, &confirm_after, &maintenance);
    // The fleet's sites each recent store roster covers, recognised by the roster's `Arc`.
    let mut checked_by_roster: Vec<(Arc<Roster>, Rc<CheckedSites>)> = Vec::new();
    store
        .run_outcomes(Some(start_ms - LOOKBACK_MS), Some(elapsed.end), &mut |run, outcomes| {
            if !vantages.contains(&run.vantage) {
                vantages.insert(run.vantage.clone());
            }
            let roster = &outcomes.roster;
            let checked = match checked_by_roster.iter().find(|(r, _)| Arc::ptr_eq(r, roster)) {
                Some((_, checked)) => checked.clone(),
                None => {
                    let sites = roster.iter().filter_map(|(key, _)| by_key.get(key).copied()).collect();
                    let checked = tracker.checked(sites);
                    checked_by_roster.insert(0, (roster.clone(), checked.clone()));
                    checked_by_roster.truncate(8);
                    checked
                }
            };
            // A site's observation: the failure classes of its failed checks.
            let mut failed: Vec<Observation> = Vec::new();
            for &(row, outcome) in &outcomes.failed {
                let (Some(failure), Some(&site)) = (outcome.failure(), by_key.get(&roster[row].0)) else { continue };
                match failed.last_mut() {
                    // Rows are in key order, so a site's checks are next to each other.
                    Some(last) if last.site == site => last.failures.insert(failure),
                    _ => failed.push(Observation { site, failures: [failure].into_iter().collect() }),
                }
            }
            tracker.run_checked(
                Run { id: run.id, started_at_ms: run.started_at_ms, valid: run.valid },
                checked,
                failed,
            );
            Ok(())
        })
        .map_err(store_error)?;
    let history = tracker.finish(elapsed.end);
    let incidents = incidents::incidents(fleet, &history, &maintenance, &settings);
    let accounts = availability::site_accounts(&history, &maintenance);
    Ok(Availability { period, elapsed, history, incidents, accounts, maintenance, settings, vantages })
}
