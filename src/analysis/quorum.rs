//! The verdict of several vantages: each keeps its own runs, slots and outages (an
//! [`outages::Tracker`](super::outages::Tracker) per vantage, exactly as one prober alone), and
//! the verdict combines them site by site.
//!
//! At an instant `t`, `k(t)` vantages have a valid slot covering the site and `d(t)` of them are
//! in their own outage. The site is down when `d(t) ≥ q(k(t))` (the configured quorum),
//! unmonitored when `k(t) = 0`, and up otherwise. A verdict outage starts at its first down
//! instant and ends at the first up one; unmonitored time inside it does not end it, as with one
//! prober. With one vantage the verdict is that vantage's history, figure for figure.
//!
//! Time in a vantage's own outage while the verdict is up is a [`LocalFailure`]: kept and shown,
//! never downtime.

use std::collections::{BTreeMap, HashMap};

use super::outages::{Coverage, Outage, SiteHistory, SiteTime, Tracker};
use super::{Settings, Span, length_within, union};
use crate::fleet::{Quorum, SiteIdx};
use crate::probe::Failure;

/// Time one vantage saw a site down while the verdict did not.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFailure {
    /// Index into [`Verdict::vantages`].
    pub vantage: usize,
    pub site: SiteIdx,
    pub span: Span,
    /// The failure classes of the vantage's own outage.
    pub classes: BTreeMap<Failure, u32>,
}

/// What one vantage contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VantageRuns {
    pub name: String,
    /// Runs starting inside the period.
    pub valid_runs: u32,
    pub invalid_runs: u32,
}

/// The combined analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub history: SiteHistory,
    /// Sorted by name.
    pub vantages: Vec<VantageRuns>,
    /// Sorted by start, vantage and site.
    pub local_failures: Vec<LocalFailure>,
}

impl Verdict {
    /// The vantages with at least one valid run in the period: the ones that measured it.
    pub fn measuring_vantages(&self) -> usize {
        self.vantages.iter().filter(|v| v.valid_runs > 0).count()
    }
}

/// One tracker per vantage, created as its runs appear.
pub struct Vantages<'a> {
    period: Span,
    settings: Settings,
    confirm_after: &'a [u32],
    maintenance: &'a [Vec<Span>],
    names: Vec<String>,
    trackers: Vec<Tracker<'a>>,
}

impl<'a> Vantages<'a> {
    /// As [`Tracker::new`]; `settings.quorum` decides the verdict.
    pub fn new(period: Span, settings: Settings, confirm_after: &'a [u32], maintenance: &'a [Vec<Span>]) -> Self {
        Vantages { period, settings, confirm_after, maintenance, names: Vec::new(), trackers: Vec::new() }
    }

    /// The tracker of the vantage called `name`. Each vantage's runs must come in time order;
    /// those of different vantages may interleave.
    pub fn tracker(&mut self, name: &str) -> &mut Tracker<'a> {
        let i = match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_string());
                self.trackers.push(Tracker::new(self.period, self.settings, self.confirm_after, self.maintenance));
                self.names.len() - 1
            }
        };
        &mut self.trackers[i]
    }

    /// Ends the data at `data_end_ms` and combines the vantages.
    pub fn finish(self, data_end_ms: i64) -> Verdict {
        let mut named: Vec<(String, SiteHistory)> =
            self.names.into_iter().zip(self.trackers.into_iter().map(|t| t.finish(data_end_ms))).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let vantages = named
            .iter()
            .map(|(name, h)| VantageRuns { name: name.clone(), valid_runs: h.valid_runs, invalid_runs: h.invalid_runs })
            .collect();
        let histories: Vec<SiteHistory> = named.into_iter().map(|(_, h)| h).collect();
        let (history, local_failures) = if histories.is_empty() {
            let empty = Tracker::new(self.period, self.settings, self.confirm_after, self.maintenance);
            (empty.finish(data_end_ms), Vec::new())
        } else {
            combine(&histories, self.settings.quorum, self.maintenance)
        };
        Verdict { history, vantages, local_failures }
    }
}

/// Whether the verdict holds a site down, up or unmeasured in one stretch of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down,
    Up,
    Unmonitored,
}

/// Combines per-vantage histories (same period and sites, at least one) into the verdict, and
/// the vantage-local failures (indexed like `histories`).
pub fn combine(
    histories: &[SiteHistory],
    quorum: Quorum,
    maintenance: &[Vec<Span>],
) -> (SiteHistory, Vec<LocalFailure>) {
    let period = histories[0].period;
    let site_count = histories[0].sites.len();

    // Sites grouped by which coverage entries (of which vantage) hold them.
    let entries: Vec<(usize, &Coverage)> =
        histories.iter().enumerate().flat_map(|(v, h)| h.coverage.iter().map(move |c| (v, c))).collect();
    let words = entries.len().div_ceil(64).max(1);
    let mut masks = vec![0u64; site_count * words];
    for (e, (_, coverage)) in entries.iter().enumerate() {
        for &site in coverage.sites.iter().filter(|&&s| s < site_count) {
            masks[site * words + e / 64] |= 1 << (e % 64);
        }
    }
    let mut group_of_site: Vec<usize> = vec![0; site_count];
    let mut group_index: HashMap<&[u64], usize> = HashMap::new();
    // Per group: each vantage's valid slots (merged), and their union.
    let mut groups: Vec<(Vec<Vec<Span>>, Vec<Span>)> = Vec::new();
    for site in 0..site_count {
        let mask = &masks[site * words..(site + 1) * words];
        let next = group_index.len();
        let group = *group_index.entry(mask).or_insert(next);
        if group == groups.len() {
            let mut per_vantage = vec![Vec::new(); histories.len()];
            for (e, (v, coverage)) in entries.iter().enumerate() {
                if mask[e / 64] & (1 << (e % 64)) != 0 {
                    per_vantage[*v].extend(coverage.slots.iter().copied());
                }
            }
            let per_vantage: Vec<Vec<Span>> = per_vantage.into_iter().map(|s| union(s, 0)).collect();
            let all = union(per_vantage.iter().flatten().copied().collect(), 0);
            groups.push((per_vantage, all));
        }
        group_of_site[site] = group;
    }

    // Monitored time per site: the union of the vantages' valid slots.
    let sites: Vec<SiteTime> = (0..site_count)
        .map(|site| {
            let monitored = &groups[group_of_site[site]].1;
            let monitored_ms = length_within(monitored, &period);
            let maintenance_ms = match maintenance.get(site) {
                Some(windows) if !windows.is_empty() => {
                    monitored.iter().map(|m| length_within(windows, &m.intersect(&period))).sum()
                }
                _ => 0,
            };
            SiteTime { monitored_ms, maintenance_ms }
        })
        .collect();

    // Outages per site, per vantage.
    let mut by_site: BTreeMap<SiteIdx, Vec<Vec<&Outage>>> = BTreeMap::new();
    for (v, history) in histories.iter().enumerate() {
        for outage in history.outages.iter().filter(|o| o.site < site_count) {
            by_site.entry(outage.site).or_insert_with(|| vec![Vec::new(); histories.len()])[v].push(outage);
        }
    }
    let mut outages = Vec::new();
    let mut local_failures = Vec::new();
    for (site, seen) in by_site {
        let (monitored, _) = &groups[group_of_site[site]];
        let verdict = site_verdict(site, &seen, monitored, quorum);
        let verdict_down = union(verdict.iter().flat_map(|o| o.down.iter().copied()).collect(), 0);
        for (vantage, own) in seen.iter().enumerate() {
            for outage in own {
                for span in subtract(&outage.down, &verdict_down) {
                    local_failures.push(LocalFailure { vantage, site, span, classes: outage.classes.clone() });
                }
            }
        }
        outages.extend(verdict);
    }
    outages.sort_by_key(|o| (o.start_ms, o.site));
    local_failures.sort_by_key(|l| (l.span.start, l.vantage, l.site));

    // Blips stay each vantage's own: counted and shown, never downtime.
    let mut blips: Vec<_> = histories.iter().flat_map(|h| h.blips.iter().copied()).collect();
    let mut unconfirmed: Vec<_> = histories.iter().flat_map(|h| h.unconfirmed.iter().copied()).collect();
    if histories.len() > 1 {
        blips.sort_by_key(|b| (b.start_ms, b.site));
        unconfirmed.sort_by_key(|b| (b.site, b.start_ms));
    }
    let history = SiteHistory {
        period,
        outages,
        blips,
        sites,
        monitored: union(histories.iter().flat_map(|h| h.monitored.iter().copied()).collect(), 0),
        coverage: histories.iter().flat_map(|h| h.coverage.iter().cloned()).collect(),
        valid_runs: histories.iter().map(|h| h.valid_runs).sum(),
        invalid_runs: histories.iter().map(|h| h.invalid_runs).sum(),
        unconfirmed,
    };
    (history, local_failures)
}

/// One site's verdict outages from each vantage's outages of it and valid slots for it.
fn site_verdict(site: SiteIdx, seen: &[Vec<&Outage>], monitored: &[Vec<Span>], quorum: Quorum) -> Vec<Outage> {
    // +1/-1 events on (measuring, down).
    let mut events: Vec<(i64, i32, i32)> = Vec::new();
    for (v, slots) in monitored.iter().enumerate() {
        for slot in slots {
            events.push((slot.start, 1, 0));
            events.push((slot.end, -1, 0));
        }
        let down = union(seen[v].iter().flat_map(|o| o.down.iter().copied()).collect(), 0);
        for span in down {
            events.push((span.start, 0, 1));
            events.push((span.end, 0, -1));
        }
    }
    events.sort_unstable();
    let (mut measuring, mut down) = (0i32, 0i32);
    let mut stretches: Vec<(Span, State)> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            measuring += events[i].1;
            down += events[i].2;
            i += 1;
        }
        let Some(&(next, _, _)) = events.get(i) else { break };
        let state = if measuring <= 0 {
            State::Unmonitored
        } else if down.max(0) as u32 >= quorum.needed(measuring as u32) {
            State::Down
        } else {
            State::Up
        };
        stretches.push((Span::new(at, next), state));
    }

    let mut verdict: Vec<Outage> = Vec::new();
    let mut open: Option<Outage> = None;
    for (span, state) in stretches {
        match state {
            State::Down => {
                let outage = open.get_or_insert_with(|| Outage {
                    site,
                    start_ms: span.start,
                    end_ms: None,
                    down: Vec::new(),
                    failed_runs: 0,
                    classes: BTreeMap::new(),
                });
                match outage.down.last_mut() {
                    Some(last) if last.end == span.start => last.end = span.end,
                    _ => outage.down.push(span),
                }
            }
            State::Up => {
                if let Some(mut outage) = open.take() {
                    outage.end_ms = Some(span.start);
                    verdict.push(outage);
                }
            }
            State::Unmonitored => {}
        }
    }
    verdict.extend(open);

    // Runs and classes: per vantage, those of its outages that overlap the verdict outage; the
    // verdict keeps the largest count of any vantage (one vantage: its own figures).
    for outage in &mut verdict {
        for own in seen {
            let overlapping: Vec<&&Outage> =
                own.iter().filter(|o| o.down.iter().any(|d| outage.down.iter().any(|v| d.overlap(v) > 0))).collect();
            let runs: u32 = overlapping.iter().map(|o| o.failed_runs).sum();
            outage.failed_runs = outage.failed_runs.max(runs);
            let mut classes: BTreeMap<Failure, u32> = BTreeMap::new();
            for o in &overlapping {
                for (failure, count) in &o.classes {
                    *classes.entry(*failure).or_default() += count;
                }
            }
            for (failure, count) in classes {
                let entry = outage.classes.entry(failure).or_default();
                *entry = (*entry).max(count);
            }
        }
    }
    verdict
}

/// The parts of `spans` (sorted, disjoint) outside `minus` (sorted, disjoint).
fn subtract(spans: &[Span], minus: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for span in spans {
        let mut cursor = span.start;
        for cut in minus.iter().filter(|m| m.overlap(span) > 0) {
            if cut.start > cursor {
                out.push(Span::new(cursor, cut.start));
            }
            cursor = cursor.max(cut.end);
        }
        if cursor < span.end {
            out.push(Span::new(cursor, span.end));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Observation, Run};

    const M: i64 = 60_000;

    fn settings(quorum: Quorum) -> Settings {
        Settings { interval_ms: M, incident_merge_gap_ms: 5 * M, major_share: 0.5, quorum }
    }

    /// Two sites, runs every minute from 0 to 60 for each vantage; `down(v, minute)` says
    /// whether vantage `v` saw site 0 fail at that minute.
    fn verdict(vantages: usize, quorum: Quorum, down: impl Fn(usize, i64) -> bool) -> Verdict {
        let confirm = [2u32, 2];
        let maintenance = vec![Vec::new(); 2];
        let mut all = Vantages::new(Span::new(0, 60 * M), settings(quorum), &confirm, &maintenance);
        for minute in 0..60 {
            for v in 0..vantages {
                let failures =
                    if down(v, minute) { [Failure::ConnectRefused].into_iter().collect() } else { Default::default() };
                let observations =
                    vec![Observation { site: 0, failures }, Observation { site: 1, failures: Default::default() }];
                let run = Run { id: minute * 10 + v as i64, started_at_ms: minute * M, valid: true };
                all.tracker(&format!("v{v}")).run(run, observations);
            }
        }
        all.finish(60 * M)
    }

    #[test]
    fn one_vantage_is_its_own_verdict() {
        let confirm = [2u32, 2];
        let maintenance = vec![Vec::new(); 2];
        let mut tracker = Tracker::new(Span::new(0, 60 * M), settings(Quorum::Majority), &confirm, &maintenance);
        let mut all = Vantages::new(Span::new(0, 60 * M), settings(Quorum::Majority), &confirm, &maintenance);
        for minute in 0..60 {
            let failures = if (10..20).contains(&minute) || minute == 30 {
                [Failure::HttpStatus].into_iter().collect()
            } else {
                Default::default()
            };
            let valid = minute != 15;
            let observations =
                vec![Observation { site: 0, failures }, Observation { site: 1, failures: Default::default() }];
            let run = Run { id: minute, started_at_ms: minute * M, valid };
            tracker.run(run, observations.clone());
            all.tracker("only").run(run, observations);
        }
        let verdict = all.finish(60 * M);
        assert_eq!(verdict.history, tracker.finish(60 * M));
        assert!(verdict.local_failures.is_empty());
    }

    #[test]
    fn the_quorum_decides() {
        // Vantage 0 alone sees minutes 10..20 fail.
        let v = verdict(3, Quorum::Majority, |v, m| v == 0 && (10..20).contains(&m));
        assert!(v.history.outages.is_empty());
        assert_eq!(v.local_failures.len(), 1);
        assert_eq!((v.local_failures[0].vantage, v.local_failures[0].span), (0, Span::new(10 * M, 20 * M)));
        let v = verdict(3, Quorum::Any, |v, m| v == 0 && (10..20).contains(&m));
        assert_eq!(v.history.outages[0].down, vec![Span::new(10 * M, 20 * M)]);
        // Two of three: down under majority and 2, not under all.
        let two = |v: usize, m: i64| v < 2 && (10..20).contains(&m);
        assert_eq!(verdict(3, Quorum::Majority, two).history.outages.len(), 1);
        assert_eq!(verdict(3, Quorum::AtLeast(2), two).history.outages.len(), 1);
        assert!(verdict(3, Quorum::All, two).history.outages.is_empty());
        assert_eq!(verdict(3, Quorum::All, two).local_failures.len(), 2);
    }

    #[test]
    fn subtracting_spans() {
        let s = Span::new;
        assert_eq!(subtract(&[s(0, 10)], &[s(2, 4), s(6, 12)]), vec![s(0, 2), s(4, 6)]);
        assert_eq!(subtract(&[s(0, 10)], &[]), vec![s(0, 10)]);
    }
}
