//! Fault schedules for availability tests: a small fleet, one run a minute over one day, and
//! which site fails in which minutes. The analysis is fed exactly what a store would hold.

#![allow(dead_code)]

use std::collections::BTreeMap;

use fleetprobe::analysis::availability::{self, Account};
use fleetprobe::analysis::incidents::{self, Incident};
use fleetprobe::analysis::outages::SiteHistory;
use fleetprobe::analysis::quorum::{LocalFailure, Vantages};
use fleetprobe::analysis::{self, FailureSet, MINUTE_MS, Observation, Run, Settings, Span};
use fleetprobe::fleet::{Fleet, SiteIdx};
use fleetprobe::probe::Failure;

use crate::fixtures::{FleetFiles, clusters_a_and_b, temp_dir};

const DAY_START: &str = "2026-10-01T00:00:00Z";

/// Milliseconds of a clock time ("10:47", "24:00") on 2026-10-01 UTC.
pub fn at(clock: &str) -> i64 {
    let (h, m) = clock.split_once(':').expect("HH:MM");
    let base = DAY_START.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    base + (h.parse::<i64>().unwrap() * 60 + m.parse::<i64>().unwrap()) * MINUTE_MS
}

/// Milliseconds of a clock time and seconds ("10:47", 20) on 2026-10-01 UTC.
pub fn at_s(clock: &str, seconds: i64) -> i64 {
    at(clock) + seconds * 1000
}

/// Whole minutes of a length; panics on a fraction, since every schedule is on the minute.
pub fn minutes(ms: i64) -> i64 {
    assert_eq!(ms % MINUTE_MS, 0, "{ms} ms is not a whole number of minutes");
    ms / MINUTE_MS
}

#[derive(Clone)]
pub struct Schedule {
    /// What `fleet` was loaded from.
    files: FleetFiles,
    pub fleet: Fleet,
    /// Run start → valid.
    pub runs: BTreeMap<i64, bool>,
    /// (site, run start) → failure.
    pub failures: BTreeMap<(SiteIdx, i64), Failure>,
    /// The other vantages, when there are several (`runs` and `failures` are the first's).
    pub others: Vec<VantageRuns>,
    /// Per vantage, the sites its runs check when it sweeps a shard (none: every site).
    pub rosters: BTreeMap<usize, Vec<SiteIdx>>,
}

/// The runs of one more vantage and what they saw.
#[derive(Clone)]
pub struct VantageRuns {
    pub runs: BTreeMap<i64, bool>,
    pub failures: BTreeMap<(SiteIdx, i64), Failure>,
}

pub struct Report {
    pub fleet: Fleet,
    pub history: SiteHistory,
    pub incidents: Vec<Incident>,
    pub accounts: Vec<Account>,
    /// Time a vantage alone (or too few) saw a site down.
    pub local_failures: Vec<LocalFailure>,
    /// Vantages with a valid run in the period.
    pub measuring_vantages: usize,
}

impl Schedule {
    /// The test fleet with one valid run every minute of the day: `clusters_a_and_b`, a run
    /// every minute, `confirm_after = 2`, incidents merged across gaps under 5 minutes, major
    /// above half of a cluster's customers.
    pub fn day() -> Schedule {
        let files = clusters_a_and_b()
            .probe("interval", "60s")
            .probe("confirm_after", 2)
            .analysis("incident_merge_gap", "5m")
            .analysis("major_share", 0.5);
        let runs = (0..1440).map(|m| (at("00:00") + m * MINUTE_MS, true)).collect();
        Schedule {
            fleet: load(&files),
            files,
            runs,
            failures: BTreeMap::new(),
            others: Vec::new(),
            rosters: BTreeMap::new(),
        }
    }

    /// `days` days from 2026-10-01 on the fleet of [`Schedule::day`] probed every
    /// `interval_minutes`, with a valid run at each interval. Later days' times are clock times
    /// past 24:00 ("49:30" is 01:30 on the third day).
    pub fn days(days: i64, interval_minutes: i64) -> Schedule {
        let mut s = Schedule::day();
        let files = s.files.clone().probe("interval", format!("{interval_minutes}m"));
        let step = interval_minutes * MINUTE_MS;
        s.runs = (0..days * 1440 / interval_minutes).map(|i| (at("00:00") + i * step, true)).collect();
        s.with_files(files)
    }

    /// The same day measured by `count` vantages (`v1`, `v2`, ...), each with a valid run every
    /// minute and no failures yet, deciding by `quorum` (`"majority"`, `"all"`, `"any"`, `2`).
    pub fn with_vantages(self, count: usize, quorum: impl Into<toml::Value>) -> Schedule {
        let files = self.files.clone().analysis("quorum", quorum.into());
        let others = (1..count).map(|_| VantageRuns { runs: self.runs.clone(), failures: BTreeMap::new() }).collect();
        Schedule { others, ..self.with_files(files) }
    }

    /// Vantage `vantage` (0-based) runs `seconds` later than the first, every minute.
    pub fn stagger(&mut self, vantage: usize, seconds: i64) {
        let v = self.vantage_mut(vantage);
        v.runs = v.runs.iter().map(|(start, valid)| (start + seconds * 1000, *valid)).collect();
    }

    /// Vantage `vantage` sweeps a shard: its runs check only `sites`.
    pub fn roster(&mut self, vantage: usize, sites: &[&str]) {
        let sites = sites.iter().map(|s| self.site(s)).collect();
        self.rosters.insert(vantage, sites);
    }

    fn vantage_mut(&mut self, vantage: usize) -> &mut VantageRuns {
        assert!(vantage > 0, "vantage 0 is the schedule's own runs");
        &mut self.others[vantage - 1]
    }

    /// Vantage `vantage` (0-based) sees `site` fail in its runs starting in [from, to).
    pub fn down_at(&mut self, vantage: usize, site: &str, from: &str, to: &str, failure: Failure) {
        if vantage == 0 {
            return self.down(site, from, to, failure);
        }
        let site = self.site(site);
        let v = self.vantage_mut(vantage);
        let starts: Vec<i64> = v.runs.range(at(from)..at(to)).map(|(s, _)| *s).collect();
        for start in starts {
            v.failures.insert((site, start), failure);
        }
    }

    /// Vantage `vantage`'s runs starting in [from, to) could not reach their control targets.
    pub fn invalid_at(&mut self, vantage: usize, from: &str, to: &str) {
        let runs = if vantage == 0 { &mut self.runs } else { &mut self.vantage_mut(vantage).runs };
        for (_, valid) in runs.range_mut(at(from)..at(to)) {
            *valid = false;
        }
    }

    /// Vantage `vantage` did not run in [from, to).
    pub fn gap_at(&mut self, vantage: usize, from: &str, to: &str) {
        let runs = if vantage == 0 { &mut self.runs } else { &mut self.vantage_mut(vantage).runs };
        runs.retain(|start, _| !(at(from)..at(to)).contains(start));
    }

    pub fn with_maintenance(self, cluster: &str, from: &str, to: &str) -> Schedule {
        let iso = |clock: &str| jiff::Timestamp::from_millisecond(at(clock)).unwrap().to_string();
        let files = self.files.clone().maintenance(cluster, &iso(from), &iso(to), "test window");
        self.with_files(files)
    }

    /// The same schedule with a goodwill credit of `months` monthly fees for an incident.
    pub fn with_goodwill(self, incident: &str, months: f64, note: &str) -> Schedule {
        let files = self.files.clone().goodwill(incident, months, note);
        self.with_files(files)
    }

    fn with_files(self, files: FleetFiles) -> Schedule {
        Schedule { fleet: load(&files), files, ..self }
    }

    pub fn site(&self, id: &str) -> SiteIdx {
        self.fleet.site_index(id).unwrap_or_else(|| panic!("no site {id}"))
    }

    /// `site` fails in every run that starts in [from, to).
    pub fn down(&mut self, site: &str, from: &str, to: &str, failure: Failure) {
        let site = self.site(site);
        let starts: Vec<i64> = self.runs.range(at(from)..at(to)).map(|(s, _)| *s).collect();
        for start in starts {
            self.failures.insert((site, start), failure);
        }
    }

    /// No runs in [from, to): the prober was down.
    pub fn gap(&mut self, from: &str, to: &str) {
        let starts: Vec<i64> = self.runs.range(at(from)..at(to)).map(|(s, _)| *s).collect();
        for start in starts {
            self.runs.remove(&start);
        }
    }

    /// The run at `clock` could not reach its control targets.
    pub fn invalid(&mut self, clock: &str) {
        *self.runs.get_mut(&at(clock)).expect("a run at that minute") = false;
    }

    pub fn analyze_day(&self) -> Report {
        self.analyze("00:00", "24:00")
    }

    /// Analyzes [from, to), feeding every run of the day before `to` (earlier ones carry state).
    pub fn analyze(&self, from: &str, to: &str) -> Report {
        let mut all = vec![self.run_list(at(to))];
        for v in &self.others {
            all.push(runs_of(&self.fleet, &v.runs, &v.failures, at(to)));
        }
        for (vantage, sites) in &self.rosters {
            for (_, observations) in &mut all[*vantage] {
                observations.retain(|o| sites.contains(&o.site));
            }
        }
        self.analyze_vantages(Span::new(at(from), at(to)), all)
    }

    /// The runs before `end` with what each saw, as the store would return them.
    pub fn run_list(&self, end: i64) -> Vec<(Run, Vec<Observation>)> {
        runs_of(&self.fleet, &self.runs, &self.failures, end)
    }

    /// Analyzes the runs of one vantage.
    pub fn analyze_runs(&self, period: Span, runs: Vec<(Run, Vec<Observation>)>) -> Report {
        self.analyze_vantages(period, vec![runs])
    }

    /// Analyzes the runs of each vantage (`v1`, `v2`, ...) and combines them by the quorum, as
    /// `fleetprobe` does with a store's runs.
    pub fn analyze_vantages(&self, period: Span, vantages: Vec<Vec<(Run, Vec<Observation>)>>) -> Report {
        let settings = Settings::from_fleet(&self.fleet);
        let maintenance = analysis::maintenance_by_site(&self.fleet);
        let confirm: Vec<u32> = self.fleet.sites.iter().map(|s| self.fleet.confirm_after(s.customer)).collect();
        let mut all = Vantages::new(period, settings, &confirm, &maintenance);
        for (v, runs) in vantages.into_iter().enumerate() {
            for (run, observations) in runs {
                all.tracker(&format!("v{}", v + 1)).run(run, observations);
            }
        }
        let verdict = all.finish(period.end);
        let measuring_vantages = verdict.measuring_vantages();
        let history = verdict.history;
        let incidents = incidents::incidents(&self.fleet, &history, &maintenance, &settings);
        let accounts = availability::site_accounts(&history, &maintenance);
        Report {
            fleet: self.fleet.clone(),
            history,
            incidents,
            accounts,
            local_failures: verdict.local_failures,
            measuring_vantages,
        }
    }
}

impl Report {
    fn site(&self, id: &str) -> SiteIdx {
        self.fleet.site_index(id).unwrap_or_else(|| panic!("no site {id}"))
    }
    pub fn site_downtime_minutes(&self, id: &str) -> i64 {
        minutes(self.accounts[self.site(id)].downtime_ms)
    }
    pub fn site_monitored_minutes(&self, id: &str) -> i64 {
        minutes(self.accounts[self.site(id)].monitored_ms)
    }
    pub fn site_maintenance_downtime_minutes(&self, id: &str) -> i64 {
        minutes(self.accounts[self.site(id)].maintenance_downtime_ms)
    }
    pub fn site_maintenance_monitored_minutes(&self, id: &str) -> i64 {
        minutes(self.accounts[self.site(id)].maintenance_monitored_ms)
    }
    fn cluster(&self, name: &str) -> availability::ClusterAvailability {
        let idx = self.fleet.cluster_index(name).unwrap();
        availability::clusters(&self.fleet, &self.accounts).remove(idx)
    }
    pub fn cluster_downtime_minutes(&self, name: &str) -> i64 {
        minutes(self.cluster(name).account.downtime_ms)
    }
    pub fn cluster_monitored_minutes(&self, name: &str) -> i64 {
        minutes(self.cluster(name).account.monitored_ms)
    }
    pub fn customers_with_downtime(&self) -> usize {
        availability::customers_with_downtime(&self.fleet, &self.accounts).len()
    }
    pub fn sla(&self, customer: &str) -> fleetprobe::analysis::sla::CustomerSla {
        let idx = self.fleet.customers.iter().position(|c| c.id == customer).unwrap();
        let elapsed = self.history.period;
        let maintenance = fleetprobe::analysis::maintenance_by_site(&self.fleet);
        fleetprobe::analysis::sla::customer_sla(
            &self.fleet,
            idx,
            &self.history,
            &maintenance,
            &self.accounts,
            &self.incidents,
            &self.fleet.goodwill,
            &elapsed,
        )
    }

    pub fn customer_downtime_minutes(&self, id: &str) -> i64 {
        let customer = self.fleet.customers.iter().position(|c| c.id == id).unwrap();
        minutes(availability::customer_down_ms(&self.fleet, &self.history, customer))
    }
}

impl Schedule {
    /// `site` fails in the runs starting in minutes [from, to) of the day.
    pub fn down_minutes(&mut self, site: SiteIdx, from: i64, to: i64, failure: Failure) {
        let base = at("00:00");
        let starts: Vec<i64> =
            self.runs.range(base + from * MINUTE_MS..base + to * MINUTE_MS).map(|(s, _)| *s).collect();
        for start in starts {
            self.failures.insert((site, start), failure);
        }
    }

    /// Removes the run at `minute` (the prober did not run).
    pub fn drop_minute(&mut self, minute: i64) {
        self.runs.remove(&(at("00:00") + minute * MINUTE_MS));
    }

    /// Marks the run at `minute` invalid, if there is one.
    pub fn invalid_minute(&mut self, minute: i64) {
        if let Some(valid) = self.runs.get_mut(&(at("00:00") + minute * MINUTE_MS)) {
            *valid = false;
        }
    }
}

/// The runs before `end` with what each saw of every site, as the store would return them.
fn runs_of(
    fleet: &Fleet,
    runs: &BTreeMap<i64, bool>,
    failures: &BTreeMap<(SiteIdx, i64), Failure>,
    end: i64,
) -> Vec<(Run, Vec<Observation>)> {
    runs.range(..end)
        .enumerate()
        .map(|(i, (&start, &valid))| {
            let observations = (0..fleet.sites.len())
                .map(|site| {
                    let failures: FailureSet = failures.get(&(site, start)).copied().into_iter().collect();
                    Observation { site, failures }
                })
                .collect();
            (Run { id: i as i64 + 1, started_at_ms: start, valid }, observations)
        })
        .collect()
}

fn load(files: &FleetFiles) -> Fleet {
    let dir = temp_dir();
    Fleet::load(&files.write(dir.path())).unwrap_or_else(|e| panic!("{e}"))
}

/// What a failing property prints: the schedule's faults, not the whole fleet.
impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let minute = |ms: i64| (ms - at("00:00")) / MINUTE_MS;
        let missing: Vec<i64> = (0..360).filter(|m| !self.runs.contains_key(&(at("00:00") + m * MINUTE_MS))).collect();
        let invalid: Vec<i64> = self.runs.iter().filter(|(_, v)| !**v).map(|(s, _)| minute(*s)).collect();
        let mut down: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (site, start) in self.failures.keys() {
            down.entry(self.fleet.sites[*site].id.clone()).or_default().push(minute(*start));
        }
        f.debug_struct("Schedule")
            .field("down_minutes", &down)
            .field("missing", &missing)
            .field("invalid", &invalid)
            .finish()
    }
}
