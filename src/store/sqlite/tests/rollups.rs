//! Latency rollups: what queries return against the runs merged directly, late runs, pruning and
//! the site budget.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::*;
use crate::store::{LatencyScope, columns, histogram, rollup};

pub(super) const T0: i64 = 1_790_000_000_000 / rollup::DAY_MS * rollup::DAY_MS;
pub(super) const MIN: i64 = 60_000;

/// A run where every site answers HTTP with its own first byte (µs), with the per-cluster
/// histograms the prober would store for it.
fn write_latency_run(store: &mut dyn Store, at: i64, first_byte_us: [u32; 3], valid: bool) -> RunId {
    write_vantage_run(store, "probe-1", at, first_byte_us, valid)
}

/// [`write_latency_run`] by the prober of `vantage`.
fn write_vantage_run(store: &mut dyn Store, vantage: &str, at: i64, first_byte_us: [u32; 3], valid: bool) -> RunId {
    let results: Vec<CheckResult> = (0..3)
        .map(|site| {
            let mut r = ok(site, CheckKind::Http, at);
            r.timings.first_byte_us = Some(first_byte_us[site]);
            r
        })
        .collect();
    let mut histograms: BTreeMap<(String, Phase), Histogram<u64>> = BTreeMap::new();
    for r in &results {
        for phase in Phase::ALL {
            if let Some(us) = r.timings.get(phase) {
                let h = histograms
                    .entry((fleet()[r.site].cluster.clone(), phase))
                    .or_insert_with(histogram::new_latency_histogram);
                histogram::record_micros(h, u64::from(us));
            }
        }
    }
    let records: Vec<HistogramRecord> = histograms
        .into_iter()
        .map(|((cluster, phase), histogram)| HistogramRecord { cluster, check: CheckKind::Http, phase, histogram })
        .collect();
    let meta = RunMeta { vantage: vantage.into(), started_at_ms: at };
    let mut writer = store.begin_run(&meta, &fleet()).unwrap();
    for r in &results {
        writer.insert(r).unwrap();
    }
    let mut s = summary(at + 20_000, &results);
    s.valid = valid;
    writer.finish(&s, &records).unwrap()
}

/// First byte of site `site` in run `i`: spread over three orders of magnitude.
fn first_byte(i: i64, site: usize) -> u32 {
    let us = (500 + (i as u32).wrapping_mul(7_919).wrapping_add(site as u32 * 104_729) % 300_000) * (1 + site as u32);
    // As the columns keep it, so site histograms built from stored results compare exactly.
    columns::timing_value(columns::timing_code(us)).unwrap()
}

/// Three days of runs every 10 minutes (and an invalid run that must not count).
fn three_days(store: &mut dyn Store) -> Vec<(i64, [u32; 3])> {
    let mut runs = Vec::new();
    for i in 0..(3 * 24 * 6) {
        let at = T0 + i * 10 * MIN + 7_000;
        let values = [first_byte(i, 0), first_byte(i, 1), first_byte(i, 2)];
        write_latency_run(store, at, values, true);
        runs.push((at, values));
    }
    write_latency_run(store, T0 + 5 * MIN, [9_000_000; 3], false);
    runs
}

/// What a query must return: the values of `sites` in runs starting in [from, to).
fn direct(runs: &[(i64, [u32; 3])], sites: &[usize], from: i64, to: i64) -> Histogram<u64> {
    let mut h = histogram::new_latency_histogram();
    for (at, values) in runs.iter().filter(|(at, _)| (from..to).contains(at)) {
        let _ = at;
        for &site in sites {
            histogram::record_micros(&mut h, u64::from(values[site]));
        }
    }
    h
}

fn query(store: &dyn Store, scope: LatencyScope, from: i64, to: i64, bucket: Option<i64>) -> Vec<TimedHistogram> {
    query_of(store, &[], scope, from, to, bucket)
}

/// [`query`] of some vantages' runs only (none: all).
fn query_of(
    store: &dyn Store,
    vantages: &[&str],
    scope: LatencyScope,
    from: i64,
    to: i64,
    bucket: Option<i64>,
) -> Vec<TimedHistogram> {
    let q = LatencyQuery {
        scope,
        check: CheckKind::Http,
        phase: Phase::FirstByte,
        from_ms: from,
        to_ms: to,
        bucket_ms: bucket,
        vantages: vantages.iter().map(|v| v.to_string()).collect(),
    };
    let mut found = Vec::new();
    store
        .latency_histograms(&q, &mut |b| {
            found.push(b);
            Ok(())
        })
        .unwrap();
    found
}

fn web1() -> LatencyScope {
    LatencyScope::Cluster("web1".into())
}

pub(crate) fn rolled_up_latencies_equal_the_runs_merged_directly<S: TestStore>(mut store: S) {
    let runs = three_days(&mut store);
    let end = T0 + 3 * rollup::DAY_MS;
    let odd_from = T0 + 90 * MIN;
    let odd_to = T0 + 2 * rollup::DAY_MS + 35 * MIN;
    let whole = |store: &dyn Store| query(store, web1(), T0, end, None);
    let before = whole(&store);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].histogram, direct(&runs, &[0, 1], T0, end), "runs alone, before any rollup");

    let stats = store.rollup(end + rollup::HOUR_MS, None).unwrap();
    assert_eq!((stats.hours, stats.days, stats.site_days_unfinished), (72, 3, 0));
    assert_eq!(stats.site_days, 3 * 3);
    assert_eq!(whole(&store)[0].histogram, before[0].histogram);
    let odd = query(&store, web1(), odd_from, odd_to, None);
    assert_eq!(odd[0].histogram, direct(&runs, &[0, 1], odd_from, odd_to));
    let days = query(&store, web1(), T0, end, Some(rollup::DAY_MS));
    assert_eq!(days.len(), 3);
    for (d, bucket) in days.iter().enumerate() {
        let from = T0 + d as i64 * rollup::DAY_MS;
        assert_eq!((bucket.start_ms, bucket.end_ms), (from, from + rollup::DAY_MS));
        assert_eq!(bucket.histogram, direct(&runs, &[0, 1], from, from + rollup::DAY_MS));
    }
    let site_a = query(&store, LatencyScope::Site("a".into()), odd_from, odd_to, None);
    assert_eq!(site_a[0].histogram, direct(&runs, &[0], odd_from, odd_to));

    // Idempotent: nothing left to do, nothing changes.
    assert_eq!(store.rollup(end + rollup::DAY_MS, None).unwrap(), RollupStats::default());
    assert_eq!(whole(&store)[0].histogram, before[0].histogram);

    // With the runs pruned, whole days are answered from the rollups alone, exactly.
    let keep_one_day = Retention { raw: Duration::from_secs(86_400), ..Retention::default() };
    // The status page's cluster days are computed above the store; here they are cleared as done.
    let days = store.pending_cluster_days(i64::MAX / 2).unwrap();
    store.put_cluster_days(&days, &[]).unwrap();
    let pruned = store.prune(end + 2 * rollup::DAY_MS, &keep_one_day, None).unwrap();
    assert_eq!((pruned.runs, pruned.runs_left), (runs.len() + 1, 0));
    assert!(collect(&store, &ResultFilter::default()).is_empty());
    let rosters: i64 = store.count("rosters");
    assert_eq!(rosters, 0, "rosters of pruned runs go with them");
    assert_eq!(whole(&store)[0].histogram, before[0].histogram);
    let hours = query(&store, web1(), T0 + rollup::HOUR_MS, T0 + 5 * rollup::HOUR_MS, None);
    assert_eq!(hours[0].histogram, direct(&runs, &[0, 1], T0 + rollup::HOUR_MS, T0 + 5 * rollup::HOUR_MS));
    let site_c = query(&store, LatencyScope::Site("c".into()), T0, end, Some(rollup::DAY_MS));
    assert_eq!(site_c[1].histogram, direct(&runs, &[2], T0 + rollup::DAY_MS, T0 + 2 * rollup::DAY_MS));
    assert!(query(&store, LatencyScope::Site("nobody".into()), T0, end, None).is_empty());
}

pub(crate) fn a_late_run_reopens_its_hour_and_day_only<S: TestStore>(mut store: S) {
    let mut runs = three_days(&mut store);
    let end = T0 + 3 * rollup::DAY_MS;
    store.rollup(end, None).unwrap();
    // A backfilled run in the middle of day 1 counts at once (its hour is read from runs)...
    let late = (T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS + 3 * MIN, [123_456, 7, 8]);
    write_latency_run(&mut store, late.0, late.1, true);
    runs.push(late);
    let expected = direct(&runs, &[0, 1], T0, end);
    assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, expected);
    // ...and the next rollup redoes just that hour and day.
    let stats = store.rollup(end, None).unwrap();
    assert_eq!((stats.hours, stats.days, stats.site_days), (1, 1, 3));
    assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, expected);
    let site_a = query(&store, LatencyScope::Site("a".into()), T0, end, None);
    assert_eq!(site_a[0].histogram, direct(&runs, &[0], T0, end));
}

pub(crate) fn pruned_run_histograms_are_computed_from_results_for_queries_and_late_rollups<S: TestStore>(mut store: S) {
    let mut runs = three_days(&mut store);
    let end = T0 + 3 * rollup::DAY_MS;
    store.rollup(end, None).unwrap();
    let keep_runs = Retention { run_histograms: Duration::ZERO, ..Retention::default() };
    let pruned = store.prune(end, &keep_runs, None).unwrap();
    assert_eq!(pruned.runs, 0, "the runs stay");
    assert!(pruned.run_histograms > 0, "their per-run histograms go");
    // A stretch finer than hours is read from the results now.
    let (from, to) = (T0 + 90 * MIN, T0 + 2 * rollup::DAY_MS + 35 * MIN);
    assert_eq!(query(&store, web1(), from, to, None)[0].histogram, direct(&runs, &[0, 1], from, to));
    // A late run reopens an hour whose other runs have no histograms left: the hour is
    // rebuilt from all of them.
    let late = (T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS + 3 * MIN, [123_456, 7, 8]);
    write_latency_run(&mut store, late.0, late.1, true);
    runs.push(late);
    store.rollup(end, None).unwrap();
    let hour = T0 + rollup::DAY_MS + 5 * rollup::HOUR_MS;
    let rebuilt = query(&store, web1(), hour, hour + rollup::HOUR_MS, None);
    assert_eq!(rebuilt[0].histogram, direct(&runs, &[0, 1], hour, hour + rollup::HOUR_MS));
    assert_eq!(query(&store, web1(), T0, end, None)[0].histogram, direct(&runs, &[0, 1], T0, end));
}

/// Two vantages a day long, each run 10 minutes apart and 5 minutes after the other's: `ams`
/// sees every site answer in 2, 3 and 4 ms, `fra` in 40, 50 and 60 ms (and one late hour).
pub(crate) fn latency_of_some_vantages_is_theirs_alone<S: TestStore>(mut store: S) {
    let (mut ams, mut fra) = (Vec::new(), Vec::new());
    for i in 0..144 {
        let at = T0 + i * 10 * MIN + 1_000;
        let slow = if (60..66).contains(&i) { 10 } else { 1 };
        // As the columns keep them, so latencies computed from results compare exactly.
        let stored = |us: [u32; 3]| us.map(|us| columns::timing_value(columns::timing_code(us)).unwrap());
        ams.push((at, stored([2_000, 3_000, 4_000])));
        fra.push((at + 5 * MIN, stored([40_000 * slow, 50_000, 60_000])));
    }
    for &(at, values) in &ams {
        write_vantage_run(&mut store, "ams", at, values, true);
    }
    for &(at, values) in &fra {
        write_vantage_run(&mut store, "fra", at, values, true);
    }
    assert_eq!(store.vantages().unwrap(), ["ams", "fra"]);
    let both: Vec<(i64, [u32; 3])> = ams.iter().chain(&fra).copied().collect();
    let end = T0 + rollup::DAY_MS;
    // Rolled up, so the merged figures come from rollups, and the per-vantage ones cannot.
    store.rollup(end + rollup::HOUR_MS, None).unwrap();
    let check = |store: &dyn Store, what: &str| {
        let whole = |vantages: &[&str]| query_of(store, vantages, web1(), T0, end, None)[0].histogram.clone();
        assert_eq!(whole(&["ams"]), direct(&ams, &[0, 1], T0, end), "{what}: ams alone");
        assert_eq!(whole(&["fra"]), direct(&fra, &[0, 1], T0, end), "{what}: fra alone");
        assert_eq!(whole(&[]), direct(&both, &[0, 1], T0, end), "{what}: every vantage merged");
        assert_eq!(whole(&["ams", "fra"]), direct(&both, &[0, 1], T0, end), "{what}: both named");
        // Per hour: fra's slow hour is fra's alone.
        let slow_hour = T0 + 10 * rollup::HOUR_MS;
        let hours = query_of(store, &["fra"], web1(), slow_hour, slow_hour + rollup::HOUR_MS, Some(rollup::HOUR_MS));
        assert_eq!(hours.len(), 1);
        assert_eq!(hours[0].histogram, direct(&fra, &[0, 1], slow_hour, slow_hour + rollup::HOUR_MS), "{what}");
        assert!(hours[0].histogram.value_at_quantile(1.0) >= 400_000, "{what}: fra's slow hour");
        let ams_hour = query_of(store, &["ams"], web1(), slow_hour, slow_hour + rollup::HOUR_MS, None);
        assert!(ams_hour[0].histogram.value_at_quantile(1.0) < 5_000, "{what}: ams never saw fra's slow hour");
        let site_a = |vantages: &[&str]| {
            query_of(store, vantages, LatencyScope::Site("a".into()), T0, end, None)[0].histogram.clone()
        };
        assert_eq!(site_a(&["ams"]), direct(&ams, &[0], T0, end), "{what}: site a from ams");
        assert_eq!(site_a(&["fra"]), direct(&fra, &[0], T0, end), "{what}: site a from fra");
        assert_eq!(site_a(&[]), direct(&both, &[0], T0, end), "{what}: site a merged");
    };
    check(&store, "from per-run histograms");
    // With the per-run histograms pruned, a vantage's latencies come from its results.
    let keep_runs = Retention { run_histograms: Duration::ZERO, ..Retention::default() };
    assert!(store.prune(end + rollup::HOUR_MS, &keep_runs, None).unwrap().run_histograms > 0);
    check(&store, "from results");
}

pub(crate) fn site_days_are_built_within_the_budget_and_pending_data_stays_readable<S: TestStore>(mut store: S) {
    let runs = three_days(&mut store);
    let end = T0 + 3 * rollup::DAY_MS;
    let stats = store.rollup(end, Some(2)).unwrap();
    assert_eq!((stats.site_days, stats.site_days_unfinished), (2, 3));
    // Half-built days are still read from the raw results.
    let site_b = |store: &dyn Store| query(store, LatencyScope::Site("b".into()), T0, end, None)[0].histogram.clone();
    assert_eq!(site_b(&store), direct(&runs, &[1], T0, end));
    // The hour and day of the current time are not over: they stay pending.
    let stats = store.rollup(end, Some(4)).unwrap();
    assert_eq!((stats.hours, stats.site_days, stats.site_days_unfinished), (0, 4, 1));
    let stats = store.rollup(end, None).unwrap();
    assert_eq!((stats.site_days, stats.site_days_unfinished), (3, 0));
    assert_eq!(site_b(&store), direct(&runs, &[1], T0, end));
    // Runs whose day is not rolled up are never pruned.
    write_latency_run(&mut store, end + 10 * MIN, [1, 2, 3], true);
    let everything = Retention {
        raw: Duration::ZERO,
        run_histograms: Duration::ZERO,
        hourly: Duration::ZERO,
        daily: Duration::ZERO,
    };
    // The status page's cluster days are computed above the store; here they are cleared as done.
    let days = store.pending_cluster_days(i64::MAX / 2).unwrap();
    store.put_cluster_days(&days, &[]).unwrap();
    let pruned = store.prune(end + 20 * MIN, &everything, Some(10)).unwrap();
    assert_eq!((pruned.runs, pruned.runs_left), (10, runs.len() + 1 - 10 + 1));
    assert!(pruned.hour_histograms > 0 && pruned.day_histograms > 0 && pruned.site_day_histograms > 0);
    store.prune(end + 20 * MIN, &everything, None).unwrap();
    assert_eq!(
        store.runs(None, None).unwrap().iter().map(|r| r.started_at_ms).collect::<Vec<_>>(),
        vec![end + 10 * MIN]
    );
}
