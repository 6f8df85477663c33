//! Site outages: a state machine per site, fed one run at a time in time order.
//!
//! Memory stays proportional to the number of sites (plus the outages found), so a month of
//! one-minute runs over a large fleet streams through. A run's slot is only known when the next
//! run arrives, so the tracker holds one run back.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::{FailureSet, MINUTE_MS, Observation, Run, Settings, Span, length_within, union};
use crate::fleet::SiteIdx;
use crate::probe::Failure;

/// A confirmed outage of one site.
#[derive(Debug, Clone, PartialEq)]
pub struct Outage {
    pub site: SiteIdx,
    /// Start of the first failed run.
    pub start_ms: i64,
    /// Start of the first successful run after it; `None` while the site is still down.
    pub end_ms: Option<i64>,
    /// The monitored time the site was down: the slots of its failed runs, merged. Unmonitored
    /// time inside the outage (an invalid run, a prober gap) is not in here.
    pub down: Vec<Span>,
    pub failed_runs: u32,
    /// Failed checks by class over the outage's runs.
    pub classes: BTreeMap<Failure, u32>,
}

impl Outage {
    /// From the first failed run to the end of the last down slot.
    pub fn hull(&self) -> Span {
        Span::new(self.start_ms, self.down.last().map_or(self.start_ms, |s| s.end))
    }

    /// Downtime inside `period`.
    pub fn downtime_ms(&self, period: &Span) -> i64 {
        length_within(&self.down, period)
    }

    /// Downtime inside `period` that falls in the given maintenance windows (sorted, merged).
    pub fn maintenance_ms(&self, period: &Span, maintenance: &[Span]) -> i64 {
        self.down.iter().map(|d| length_within(maintenance, &d.intersect(period))).sum()
    }
}

/// A failed streak shorter than the confirmation threshold: counted, not downtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blip {
    pub site: SiteIdx,
    pub start_ms: i64,
    pub failed_runs: u32,
}

/// Per-site time accounts inside the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SiteTime {
    /// Slots of valid runs that checked the site.
    pub monitored_ms: i64,
    /// The part of the monitored time inside the site's maintenance windows.
    pub maintenance_ms: i64,
}

/// Everything the tracker found.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteHistory {
    pub period: Span,
    pub outages: Vec<Outage>,
    pub blips: Vec<Blip>,
    /// Indexed by site.
    pub sites: Vec<SiteTime>,
    /// Slots of valid runs inside the period, merged: the time any site was monitored.
    pub monitored: Vec<Span>,
    /// Which sites were monitored when: the slots of valid runs (from the lookback on, not cut
    /// to the period), merged, per set of sites checked. A run checks its roster's sites only
    /// (a shard of the fleet, say), so a site's monitored time is the slots of the entries
    /// that hold it.
    pub coverage: Vec<Coverage>,
    pub valid_runs: u32,
    pub invalid_runs: u32,
    /// Streaks still too short to confirm when the data ended (neither outage nor blip yet).
    pub unconfirmed: Vec<Blip>,
}

/// The valid slots of the runs that checked one set of sites.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Sorted.
    pub sites: Arc<[SiteIdx]>,
    /// Sorted, merged.
    pub slots: Vec<Span>,
}

impl Coverage {
    pub fn contains(&self, site: SiteIdx) -> bool {
        self.sites.binary_search(&site).is_ok()
    }
}

impl SiteHistory {
    /// The time `site` was monitored inside `within`: the slots of the valid runs that checked it.
    pub fn monitored_of(&self, site: SiteIdx, within: &Span) -> Vec<Span> {
        let spans = self
            .coverage
            .iter()
            .filter(|c| c.contains(site))
            .flat_map(|c| c.slots.iter().map(|s| s.intersect(within)))
            .collect();
        union(spans, 0)
    }

    /// `sites` grouped by the runs that checked them, each group with its monitored time
    /// inside `within`: one union per group instead of one per site.
    pub fn monitored_groups(&self, sites: &[SiteIdx], within: &Span) -> Vec<(Vec<SiteIdx>, Vec<Span>)> {
        let mut groups: BTreeMap<Vec<usize>, Vec<SiteIdx>> = BTreeMap::new();
        for &site in sites {
            let entries = self.coverage.iter().enumerate().filter(|(_, c)| c.contains(site)).map(|(i, _)| i).collect();
            groups.entry(entries).or_default().push(site);
        }
        groups
            .into_iter()
            .map(|(entries, sites)| {
                let spans =
                    entries.iter().flat_map(|&i| self.coverage[i].slots.iter().map(|s| s.intersect(within))).collect();
                (sites, union(spans, 0))
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Streak {
    start_ms: i64,
    failed_runs: u32,
    down: Vec<Span>,
    classes: BTreeMap<Failure, u32>,
    confirmed: bool,
}

/// The sites one run checked, sorted, with those that have maintenance windows picked out. Runs
/// over an unchanged fleet share one (see [`Tracker::checked`]), so their monitored time is
/// added up per roster and handed to each site once, not once per run.
#[derive(Debug)]
pub struct CheckedSites {
    sites: Arc<[SiteIdx]>,
    with_maintenance: Vec<SiteIdx>,
}

impl CheckedSites {
    pub fn len(&self) -> usize {
        self.sites.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    fn contains(&self, site: SiteIdx) -> bool {
        self.sites.binary_search(&site).is_ok()
    }
}

/// Monitored time owed to every site of a roster, not yet handed out.
struct RosterTime {
    sites: Rc<CheckedSites>,
    monitored_ms: i64,
}

/// Rosters whose time is gathered at once; more are handed out oldest first.
const ROSTERS_GATHERED: usize = 8;

/// Feeds runs in time order; `finish` returns the outages.
pub struct Tracker<'a> {
    period: Span,
    settings: Settings,
    confirm_after: &'a [u32],
    maintenance: &'a [Vec<Span>],
    pending: Option<(Run, Rc<CheckedSites>, Vec<Observation>)>,
    streaks: Vec<Option<Streak>>,
    /// Sites with a streak, the only ones a successful check changes.
    open: std::collections::BTreeSet<SiteIdx>,
    rosters: Vec<RosterTime>,
    /// Valid slots per roster, for [`SiteHistory::coverage`].
    slots: Vec<(Rc<CheckedSites>, Vec<Span>)>,
    history: SiteHistory,
}

impl<'a> Tracker<'a> {
    /// `confirm_after` and `maintenance` are indexed by site. Runs before `period` may be fed to
    /// carry state in (an outage that began before the period); only time inside it is counted.
    pub fn new(period: Span, settings: Settings, confirm_after: &'a [u32], maintenance: &'a [Vec<Span>]) -> Self {
        let site_count = confirm_after.len();
        Tracker {
            period,
            settings,
            confirm_after,
            maintenance,
            pending: None,
            streaks: vec![None; site_count],
            open: Default::default(),
            rosters: Vec::new(),
            slots: Vec::new(),
            history: SiteHistory {
                period,
                outages: Vec::new(),
                blips: Vec::new(),
                sites: vec![SiteTime::default(); site_count],
                monitored: Vec::new(),
                coverage: Vec::new(),
                valid_runs: 0,
                invalid_runs: 0,
                unconfirmed: Vec::new(),
            },
        }
    }

    /// Adds a run and what it saw of each site it checked. Runs must come in order of start
    /// time; for an invalid run the observations are ignored.
    pub fn run(&mut self, run: Run, observations: Vec<Observation>) {
        let checked = self.checked(observations.iter().map(|o| o.site).collect());
        let failed = observations.into_iter().filter(|o| !o.failures.is_empty()).collect();
        self.run_checked(run, checked, failed);
    }

    /// The sites a run checked, for [`Tracker::run_checked`]; build it once per roster.
    pub fn checked(&self, mut sites: Vec<SiteIdx>) -> Rc<CheckedSites> {
        sites.sort_unstable();
        sites.dedup();
        sites.retain(|&site| site < self.streaks.len());
        let with_maintenance = sites.iter().copied().filter(|&site| !self.maintenance[site].is_empty()).collect();
        Rc::new(CheckedSites { sites: sites.into(), with_maintenance })
    }

    /// Adds a run that checked `checked` and saw the `failed` sites fail (every other checked
    /// site was up): the cost is the failures and open streaks, not the fleet.
    pub fn run_checked(&mut self, run: Run, checked: Rc<CheckedSites>, failed: Vec<Observation>) {
        if let Some((previous, sites, seen)) = self.pending.take() {
            let slot = self.slot(previous.started_at_ms, Some(run.started_at_ms));
            self.apply(previous, slot, sites, seen);
        }
        self.pending = Some((run, checked, failed));
    }

    /// Ends the data at `data_end_ms` (the period's end, or now if sooner).
    pub fn finish(mut self, data_end_ms: i64) -> SiteHistory {
        if let Some((last, sites, seen)) = self.pending.take() {
            let slot = self.slot(last.started_at_ms, None).intersect(&Span::new(i64::MIN, data_end_ms));
            self.apply(last, slot, sites, seen);
        }
        while !self.rosters.is_empty() {
            self.hand_out_oldest_roster();
        }
        for (site, streak) in self.streaks.iter_mut().enumerate() {
            match streak.take() {
                Some(s) if s.confirmed => self.history.outages.push(Outage {
                    site,
                    start_ms: s.start_ms,
                    end_ms: None,
                    down: s.down,
                    failed_runs: s.failed_runs,
                    classes: s.classes,
                }),
                Some(s) => {
                    self.history.unconfirmed.push(Blip { site, start_ms: s.start_ms, failed_runs: s.failed_runs })
                }
                None => {}
            }
        }
        self.history.monitored = union(std::mem::take(&mut self.history.monitored), 0);
        self.history.coverage = std::mem::take(&mut self.slots)
            .into_iter()
            .map(|(checked, slots)| Coverage { sites: checked.sites.clone(), slots: union(slots, 0) })
            .collect();
        self.history.outages.sort_by_key(|o| (o.start_ms, o.site));
        self.history
    }

    /// The time a run speaks for: until the next run, or one interval if the next is late.
    fn slot(&self, start: i64, next: Option<i64>) -> Span {
        let interval = self.settings.interval_ms;
        match next {
            Some(next) if next - start <= interval + interval / 2 => Span::new(start, next),
            _ => Span::new(start, start + interval),
        }
    }

    fn apply(&mut self, run: Run, slot: Span, checked: Rc<CheckedSites>, failed: Vec<Observation>) {
        let starts_in_period = self.period.start <= run.started_at_ms && run.started_at_ms < self.period.end;
        if !run.valid {
            self.history.invalid_runs += u32::from(starts_in_period);
            return;
        }
        self.history.valid_runs += u32::from(starts_in_period);
        let in_period = slot.intersect(&self.period);
        if !in_period.is_empty() {
            self.history.monitored.push(in_period);
        }
        self.add_monitored(&checked, in_period);
        self.add_slot(&checked, slot);
        // The sites whose state this run can change, in site order: those that failed, and
        // those with a streak that the run found up.
        let mut changes: Vec<(SiteIdx, FailureSet)> = failed
            .into_iter()
            .filter(|o| o.site < self.streaks.len() && checked.contains(o.site))
            .map(|o| (o.site, o.failures))
            .collect();
        changes.sort_unstable_by_key(|&(site, _)| site);
        changes.dedup_by_key(|&mut (site, _)| site);
        let recovered: Vec<SiteIdx> = self
            .open
            .iter()
            .copied()
            .filter(|&site| checked.contains(site) && changes.binary_search_by_key(&site, |&(s, _)| s).is_err())
            .collect();
        changes.extend(recovered.into_iter().map(|site| (site, FailureSet::default())));
        changes.sort_unstable_by_key(|&(site, _)| site);
        for (site, failures) in changes {
            if failures.is_empty() {
                self.site_up(site, run.started_at_ms);
            } else {
                self.site_down(site, run.started_at_ms, slot, failures);
            }
        }
    }

    /// Counts `in_period` as monitored for every checked site: maintenance at once (few sites
    /// have windows), the rest gathered per roster.
    fn add_monitored(&mut self, checked: &Rc<CheckedSites>, in_period: Span) {
        for &site in &checked.with_maintenance {
            self.history.sites[site].maintenance_ms += length_within(&self.maintenance[site], &in_period);
        }
        if let Some(roster) = self.rosters.iter_mut().find(|r| Rc::ptr_eq(&r.sites, checked)) {
            roster.monitored_ms += in_period.len();
            return;
        }
        if self.rosters.len() == ROSTERS_GATHERED {
            self.hand_out_oldest_roster();
        }
        self.rosters.push(RosterTime { sites: checked.clone(), monitored_ms: in_period.len() });
    }

    /// Records a valid run's slot (lookback included) for the sites it checked. Runs of one
    /// roster share an entry; so do runs whose rosters hold the same sites.
    fn add_slot(&mut self, checked: &Rc<CheckedSites>, slot: Span) {
        if slot.is_empty() {
            return;
        }
        let entry = match self.slots.iter().position(|(c, _)| Rc::ptr_eq(c, checked)) {
            Some(i) => i,
            None => match self.slots.last() {
                Some((last, _)) if last.sites == checked.sites => self.slots.len() - 1,
                _ => {
                    self.slots.push((checked.clone(), Vec::new()));
                    self.slots.len() - 1
                }
            },
        };
        let slots = &mut self.slots[entry].1;
        match slots.last_mut() {
            Some(last) if last.end == slot.start => last.end = slot.end,
            _ => slots.push(slot),
        }
    }

    fn hand_out_oldest_roster(&mut self) {
        let roster = self.rosters.remove(0);
        for &site in roster.sites.sites.iter() {
            self.history.sites[site].monitored_ms += roster.monitored_ms;
        }
    }

    fn site_up(&mut self, site: SiteIdx, at_ms: i64) {
        let Some(streak) = self.streaks[site].take() else { return };
        self.open.remove(&site);
        if streak.confirmed {
            self.history.outages.push(Outage {
                site,
                start_ms: streak.start_ms,
                end_ms: Some(at_ms),
                down: streak.down,
                failed_runs: streak.failed_runs,
                classes: streak.classes,
            });
        } else if self.period.start <= streak.start_ms && streak.start_ms < self.period.end {
            self.history.blips.push(Blip { site, start_ms: streak.start_ms, failed_runs: streak.failed_runs });
        }
    }

    fn site_down(&mut self, site: SiteIdx, at_ms: i64, slot: Span, failures: FailureSet) {
        self.open.insert(site);
        let streak = self.streaks[site].get_or_insert_with(|| Streak {
            start_ms: at_ms,
            failed_runs: 0,
            down: Vec::new(),
            classes: BTreeMap::new(),
            confirmed: false,
        });
        streak.failed_runs += 1;
        match streak.down.last_mut() {
            Some(last) if last.end == slot.start => last.end = slot.end,
            _ => streak.down.push(slot),
        }
        for failure in failures.iter() {
            *streak.classes.entry(failure).or_default() += 1;
        }
        if streak.failed_runs >= self.confirm_after[site].max(1) {
            streak.confirmed = true;
        }
    }
}

/// Whole minutes of a length in ms, rounded to the nearest minute (figures in reports).
pub fn minutes(ms: i64) -> i64 {
    (ms + MINUTE_MS / 2).div_euclid(MINUTE_MS)
}
