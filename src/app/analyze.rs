//! Analysing a period: reads its runs from the store (with a lookback before it) and runs the
//! availability analysis on them. The one place where the reports' figures meet the store.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::analysis::availability;
use crate::analysis::incidents;
use crate::analysis::outages::CheckedSites;
use crate::analysis::period::{Availability, LOOKBACK_MS};
use crate::analysis::quorum::Vantages;
use crate::analysis::{self, Observation, Run, Settings, Span};
use crate::fleet::{Fleet, SiteIdx};
use crate::report::period::Period;
use crate::store::{Roster, Store, StoreError};

/// The recent past as a probe run sees it right after storing: the last day (the lookback) up to
/// `now_ms`, what the metrics file and the notifications both read.
///
/// With several probers the newest slots are judged only once every prober still running has
/// reported them: a slot that one prober has swept and another not yet would be decided by the
/// first alone, and an incident could open (and be announced) under one start time and move to
/// an earlier one a minute later, when the second prober's run confirms it.
pub fn recent(fleet: &Fleet, store: &dyn Store, now_ms: i64) -> Result<Availability, StoreError> {
    let until = settled_until(fleet, store, now_ms)?;
    analyze(fleet, store, now_ms - LOOKBACK_MS, until, until)
}

/// The end (exclusive) of the slots every prober has reported: the slot of the least advanced
/// prober's latest valid run, among those with a run in the last three intervals (a prober
/// silent longer than that no longer holds the others back). `now_ms + 1` with one prober.
fn settled_until(fleet: &Fleet, store: &dyn Store, now_ms: i64) -> Result<i64, StoreError> {
    let interval_ms = i64::try_from(fleet.probe.interval.as_millis()).unwrap_or(i64::MAX).max(1);
    let mut latest: HashMap<String, i64> = HashMap::new();
    for run in store.runs(Some(now_ms.saturating_sub(3 * interval_ms)), Some(now_ms + 1))? {
        if run.valid {
            let at = latest.entry(run.vantage).or_insert(run.started_at_ms);
            *at = (*at).max(run.started_at_ms);
        }
    }
    if latest.len() < 2 {
        return Ok(now_ms + 1);
    }
    let least_advanced = latest.values().copied().min().unwrap_or(now_ms);
    let slot_end = least_advanced.div_euclid(interval_ms) * interval_ms + interval_ms;
    Ok(slot_end.min(now_ms + 1))
}

/// Analyzes a report's period, up to its "now".
pub fn analyze_period(fleet: &Fleet, store: &dyn Store, period: &Period) -> Result<Availability, StoreError> {
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
) -> Result<Availability, StoreError> {
    let period = Span::new(start_ms, end_ms);
    let elapsed = Span::new(start_ms, end_ms.min(now_ms));
    let settings = Settings::from_fleet(fleet);
    let maintenance = analysis::maintenance_by_site(fleet);
    let confirm_after: Vec<u32> = fleet.sites.iter().map(|s| fleet.confirm_after(s.customer)).collect();
    let site_index: HashMap<&str, SiteIdx> = fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();

    // Store site keys to fleet sites; sites the fleet no longer has are left out.
    let by_key: HashMap<i64, SiteIdx> = store
        .site_keys()?
        .into_iter()
        .filter_map(|(key, id)| site_index.get(id.as_str()).map(|&site| (key, site)))
        .collect();
    // One tracker per vantage; the quorum of them makes the verdict.
    let mut vantages = Vantages::new(period, settings, &confirm_after, &maintenance);
    // The fleet's sites each recent store roster covers, recognised by the roster's `Arc`.
    let mut checked_by_roster: Vec<(Arc<Roster>, Rc<CheckedSites>)> = Vec::new();
    store.run_outcomes(Some(start_ms - LOOKBACK_MS), Some(elapsed.end), &mut |run, outcomes| {
        let tracker = vantages.tracker(&run.vantage);
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
        // Checks not measured (the sweep's deadline cut them) are no observation: a site none of
        // whose checks were measured is left out of the run's checked sites (unmonitored).
        let unmeasured = unmeasured_sites(roster, &outcomes.failed);
        let checked = if unmeasured.is_empty() {
            checked
        } else {
            let keys: std::collections::HashSet<i64> = unmeasured.into_iter().collect();
            let sites = roster.iter().filter(|(key, _)| !keys.contains(key)).filter_map(|(key, _)| by_key.get(key));
            tracker.checked(sites.copied().collect())
        };
        // A site's observation: the failure classes of its failed checks.
        let mut failed: Vec<Observation> = Vec::new();
        for &(row, outcome) in &outcomes.failed {
            let (Some(failure), Some(&site)) = (outcome.failure(), by_key.get(&roster[row].0)) else { continue };
            if !failure.is_observation() {
                continue;
            }
            match failed.last_mut() {
                // Rows are in key order, so a site's checks are next to each other.
                Some(last) if last.site == site => last.failures.insert(failure),
                _ => failed.push(Observation { site, failures: [failure].into_iter().collect() }),
            }
        }
        tracker.run_checked(Run { id: run.id, started_at_ms: run.started_at_ms, valid: run.valid }, checked, failed);
        Ok(())
    })?;
    let verdict = vantages.finish(elapsed.end);
    let history = verdict.history;
    let incidents = incidents::incidents(fleet, &history, &maintenance, &settings);
    let accounts = availability::site_accounts(&history, &maintenance);
    Ok(Availability {
        period,
        elapsed,
        history,
        incidents,
        accounts,
        maintenance,
        settings,
        vantages: verdict.vantages,
        local_failures: verdict.local_failures,
    })
}

/// The site keys of `roster` whose every check in the run was not measured; `failed` is in
/// roster order, and a site's checks are next to each other in the roster.
fn unmeasured_sites(roster: &Roster, failed: &[(usize, crate::probe::Outcome)]) -> Vec<i64> {
    let mut sites = Vec::new();
    let mut rows = failed.iter().filter(|(_, o)| o.failure().is_some_and(|f| !f.is_observation())).map(|&(r, _)| r);
    let mut next = rows.next();
    while let Some(row) = next {
        let key = roster[row].0;
        let (mut first, mut end) = (row, row + 1);
        while first > 0 && roster[first - 1].0 == key {
            first -= 1;
        }
        while end < roster.len() && roster[end].0 == key {
            end += 1;
        }
        // Every row of the site among the not measured ones?
        let mut count = 1;
        next = rows.next();
        while next.is_some_and(|r| r < end) {
            count += 1;
            next = rows.next();
        }
        if count == end - first {
            sites.push(key);
        }
    }
    sites
}
