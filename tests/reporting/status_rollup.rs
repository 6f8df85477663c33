//! The status page's daily bars from the cluster day rollup: forty days of a fault schedule
//! written to a store (SQLite, and PostgreSQL on 127.0.0.1:5432 when it answers), rolled up,
//! compared day by day with the figures computed from the raw runs, then pruned to the default
//! 35 days of raw runs: the 90-day page still shows the older days' bars, figure for figure,
//! and so does a copy of the store.

use fleetprobe::analysis::days::{DayFigures, cluster_days};
use fleetprobe::analysis::{MINUTE_MS, Span};
use fleetprobe::app::analyze::analyze;
use fleetprobe::app::status::{roll_up_cluster_days, rolled_up_days};
use fleetprobe::fleet::StoreLocation;
use fleetprobe::probe::{CheckKind, CheckResult, Failure, Outcome};
use fleetprobe::report::status::{ListedSince, RolledUpDays, build, window};
use fleetprobe::store::{self, RunMeta, RunSummary, Store};

use crate::fixtures::TestDatabase;
use crate::schedule::{Schedule, at};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Forty days probed every 30 minutes (`confirm_after = 2`). Day numbers count from
/// 2026-10-01 (day 0); "94:00" is 22:00 on day 3.
fn forty_days() -> Schedule {
    let mut s = Schedule::days(40, 30).with_maintenance("b", "60:00", "62:00");
    // Across midnight: 120 minutes down on day 3 and 120 on day 4.
    s.down("a1", "94:00", "98:00", Failure::ConnectTimeout);
    // Two of b's sites for an hour on day 4.
    s.down("b1", "106:00", "107:00", Failure::HttpStatus);
    s.down("b2", "106:00", "107:00", Failure::HttpStatus);
    // Down through a maintenance window on day 2 (02:00-04:00 inside, 60 minutes overrun).
    s.down("b3", "60:00", "63:00", Failure::ConnectRefused);
    // One failed run: a blip, not downtime.
    s.down("a3", "80:00", "80:30", Failure::Timeout(fleetprobe::probe::Phase::Total));
    // Day 5: four hours of invalid runs; day 6: six hours without runs.
    s.invalid_at(0, "130:00", "134:00");
    s.gap("150:00", "156:00");
    // Within the raw retention: an hour on day 20.
    s.down("a2", "490:00", "491:00", Failure::DnsServfail);
    s
}

/// Stores the schedule's runs: one HTTP check per site and run.
fn write_runs(s: &Schedule, store: &mut dyn Store) {
    let sites = store::site_records(&s.fleet);
    for (&started_at_ms, &valid) in &s.runs {
        let meta = RunMeta { vantage: "test".into(), started_at_ms };
        let mut writer = store.begin_run(&meta, &sites).unwrap();
        let mut failures = 0;
        for site in 0..s.fleet.sites.len() {
            let outcome = match s.failures.get(&(site, started_at_ms)) {
                Some(&failure) => Outcome::Failed(failure),
                None => Outcome::Ok,
            };
            failures += u64::from(!outcome.is_ok());
            let result = CheckResult {
                site,
                check: CheckKind::Http,
                outcome,
                started_at_ms,
                attempts: 1,
                http_status: None,
                timings: Default::default(),
                cert_not_after: None,
                cert_issuer: None,
                detail: None,
            };
            writer.insert(&result).unwrap();
        }
        let invalid_reason = (!valid).then(|| "control targets failed".to_string());
        let summary = RunSummary {
            finished_at_ms: started_at_ms + 1_000,
            valid,
            invalid_reason,
            checks: s.fleet.sites.len() as u64,
            failures,
        };
        writer.finish(&summary, &[]).unwrap();
    }
}

fn bars_survive_pruning(location: &StoreLocation) {
    let s = forty_days();
    let fleet = &s.fleet;
    let mut store = store::open(location).unwrap();
    write_runs(&s, store.as_mut());
    let now = at("972:00"); // noon on day 40
    let span = window(now, 90);
    let day_index = |day: i64| usize::try_from(day + 49).unwrap(); // day 40 is the page's last
    let day_spans: Vec<Span> =
        (0..90).map(|d| Span::new(span.start + d * DAY_MS, (span.start + (d + 1) * DAY_MS).min(now))).collect();
    let raw = analyze(fleet, store.as_ref(), span.start, span.end, now).unwrap();
    let raw_figures: Vec<Vec<DayFigures>> =
        (0..fleet.clusters.len()).map(|c| cluster_days(fleet, &raw, c, &day_spans, now)).collect();
    let raw_page = build(fleet, &raw, &RolledUpDays::new(), &[], now, 90);

    // The truth of the schedule, from the raw runs.
    let (a, b) = (fleet.cluster_index("a").unwrap(), fleet.cluster_index("b").unwrap());
    let figures = |c: usize, day: i64| raw_figures[c][day_index(day)];
    assert_eq!(figures(a, 3).down_ms, 120 * MINUTE_MS);
    assert_eq!(figures(a, 3).eligible_ms, 10 * DAY_MS);
    assert_eq!(figures(a, 4).down_ms, 120 * MINUTE_MS);
    assert_eq!(figures(b, 4).down_ms, 2 * HOUR_MS);
    // b has five sites; the window keeps two hours of b's day out of the SLA.
    assert_eq!(figures(b, 2).down_ms, HOUR_MS);
    assert_eq!(figures(b, 2).eligible_ms, 5 * (DAY_MS - 2 * HOUR_MS));
    assert_eq!(figures(a, 5).eligible_ms, 10 * (DAY_MS - 4 * HOUR_MS));
    assert_eq!(figures(a, 6).eligible_ms, 10 * (DAY_MS - 6 * HOUR_MS));
    assert_eq!(figures(a, 3).incidents, 1);
    assert_eq!(figures(a, 4).incidents, 1);

    // (a) Every settled day (ended a day ago or more: up to day 38) is rolled up, and its
    // stored figures are those computed from the raw runs.
    roll_up_cluster_days(fleet, store.as_mut(), now, None).unwrap();
    let rows = store.cluster_days(at("00:00"), span.end).unwrap();
    let days: std::collections::BTreeSet<i64> = rows.iter().map(|r| (r.day_ms - at("00:00")) / DAY_MS).collect();
    assert_eq!(days, (0..=38).collect(), "days rolled up");
    assert_eq!(rows.len(), 2 * 39);
    for row in &rows {
        let c = fleet.cluster_index(&row.cluster).unwrap();
        let day = (row.day_ms - at("00:00")) / DAY_MS;
        let raw = figures(c, day);
        assert_eq!(
            (row.eligible_ms, row.down_ms, row.incidents),
            (raw.eligible_ms, raw.down_ms, raw.incidents as i64),
            "cluster {} day {day}",
            row.cluster
        );
    }
    // Nothing settled is left pending; day 39 ended, but runs of day 40 may still change it.
    assert!(store.pending_cluster_days(now - DAY_MS).unwrap().is_empty());
    let ended: Vec<i64> = store.pending_cluster_days(now).unwrap().iter().map(|d| d.0).collect();
    assert_eq!(ended, [at("00:00") + 39 * DAY_MS]);

    // While the raw runs reach back to the first measured day the list is the whole window's,
    // though the day before the first run is stored too (empty: its runs mark it).
    let stored = rolled_up_days(fleet, store.as_ref(), span).unwrap();
    assert!(stored.keys().any(|(_, day)| *day < at("00:00")), "the empty day before the first run is stored");
    assert_eq!(build(fleet, &raw, &stored, &[], now, 90).listed_since, None);

    // (b) Raw runs older than 35 days go; the page's bars stay what they were.
    store.rollup(now, None).unwrap();
    while store.prune(now, &fleet.retention, Some(500)).unwrap().runs > 0 {}
    let earliest = store.earliest_run_ms().unwrap().unwrap();
    assert!(earliest >= now - 35 * DAY_MS && earliest < now - 34 * DAY_MS, "raw runs kept from {earliest}");
    let after = analyze(fleet, store.as_ref(), span.start, span.end, now).unwrap();
    let rolled_up = rolled_up_days(fleet, store.as_ref(), span).unwrap();
    let page = build(fleet, &after, &rolled_up, &[], now, 90);
    for (c, cluster) in page.clusters.iter().enumerate() {
        assert_eq!(cluster.days, raw_page.clusters[c].days, "{}", cluster.name);
        assert_eq!(cluster.availability, raw_page.clusters[c].availability, "{}", cluster.name);
        assert_eq!(cluster.measured_days, raw_page.clusters[c].measured_days, "{}", cluster.name);
    }
    assert_eq!(page.clusters[a].days[day_index(3)].availability, Some(1.0 - 120.0 / (10.0 * 1440.0)));
    // The incidents of the pruned days can no longer be listed: the page says where its list
    // begins and how many earlier days had incidents (days 2, 3 and 4), never "last 90 days".
    assert_eq!(raw_page.listed_since, None);
    let with_incidents = (0..5).filter(|&day| (0..2).any(|c| figures(c, day).incidents > 0)).count();
    assert_eq!(with_incidents, 3);
    // The oldest kept runs (day 5 from noon) are invalid until 14:00: the list starts there.
    assert!(earliest < at("134:00"));
    assert_eq!(page.listed_since, Some(ListedSince { from_ms: at("134:00"), days_with_incidents: with_incidents }));
    let html = fleetprobe::report::status::html(&page);
    assert!(html.contains("Past incidents (since 2026-10-06)"), "{html}");
    assert!(html.contains("detailed measurements are kept 35 days; 3 days before it had incidents"), "{html}");
    assert!(!html.contains("Past incidents (last 90 days)"));
    // Without the rollup, the pruned days would show no data.
    let bare = build(fleet, &after, &RolledUpDays::new(), &[], now, 90);
    assert_eq!(bare.clusters[a].days[day_index(3)].availability, None);

    // `store copy` moves the cluster days (and their pending marks) with the runs.
    let copy_dir = crate::fixtures::temp_dir();
    let copy_path = copy_dir.path().join("copy.db");
    let copied = fleetprobe::app::store_copy::copy(&location.to_string(), copy_path.to_str().unwrap()).unwrap();
    // Days 0 to 38, and the empty day before the first run (which its runs mark too).
    assert_eq!(copied.rows.get("cluster days"), Some(&(2 * 40)));
    let copy = store::open(&StoreLocation::Sqlite(copy_path)).unwrap();
    assert_eq!(rolled_up_days(fleet, copy.as_ref(), span).unwrap(), rolled_up);
    assert_eq!(copy.pending_cluster_days(now).unwrap(), store.pending_cluster_days(now).unwrap());
}

#[test]
fn status_bars_survive_pruning_on_sqlite() {
    let dir = crate::fixtures::temp_dir();
    bars_survive_pruning(&StoreLocation::Sqlite(dir.path().join("runs.db")));
}

#[test]
fn status_bars_survive_pruning_on_postgres() {
    let Some(db) = TestDatabase::create("status_days") else { return };
    bars_survive_pruning(&StoreLocation::Postgres(db.url.clone()));
}
