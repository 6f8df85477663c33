//! Availability analysis against fault schedules whose truth is known to the minute.
//!
//! The fleet: cluster `a` with sites a1..a10 of customers c1..c10 (one each); cluster `b` with
//! b1..b4 of customers c11..c14, and b5 of customer c1, who so spans both clusters. Runs every
//! minute over 2026-10-01 (1,440 runs), `confirm_after = 2`, incidents merge across gaps under 5
//! minutes, major above half of a cluster's customers. Each schedule says which site fails in
//! which minutes; the expected minutes and shares are worked out by hand in the comments.

use crate::schedule::{Schedule, at, minutes};
use fleetprobe::analysis::incidents::{MaintenanceOverlap, Scope};
use fleetprobe::probe::Failure;

#[test]
fn storage_failure_hits_30_percent_of_one_cluster_for_47_minutes() {
    let mut s = Schedule::day();
    // a1, a2, a3 fail every run from 10:00 to 10:46; the 10:47 run succeeds.
    for site in ["a1", "a2", "a3"] {
        s.down(site, "10:00", "10:47", Failure::Timeout(fleetprobe::probe::Phase::FirstByte));
    }
    let r = s.analyze_day();
    assert_eq!(r.history.outages.len(), 3);
    for outage in &r.history.outages {
        assert_eq!((outage.start_ms, outage.end_ms), (at("10:00"), Some(at("10:47"))));
        assert_eq!(minutes(outage.downtime_ms(&r.history.period)), 47);
    }
    assert_eq!(r.incidents.len(), 1);
    let i = &r.incidents[0];
    assert_eq!(i.id, "a-20261001T1000");
    assert_eq!((i.start_ms, i.end_ms), (at("10:00"), Some(at("10:47"))));
    assert_eq!(minutes(i.duration_ms()), 47);
    assert_eq!((i.peak_sites_down, i.sites.len(), i.customers.len(), i.cluster_customers), (3, 3, 3, 10));
    assert_eq!((i.affected_customer_share, i.peak_customer_share), (0.3, 0.3));
    assert_eq!(i.customer_minutes, 3.0 * 47.0);
    assert_eq!(i.scope, Scope::Partial);
    assert_eq!(i.classes.get(&Failure::Timeout(fleetprobe::probe::Phase::FirstByte)), Some(&(3 * 47)));
    assert_eq!(i.maintenance, MaintenanceOverlap::None);
    // Cluster a: 141 down site-minutes of 10 × 1,440 monitored.
    assert_eq!(r.cluster_downtime_minutes("a"), 141);
    assert_eq!(r.cluster_monitored_minutes("a"), 14_400);
    assert_eq!(r.cluster_downtime_minutes("b"), 0);
}

#[test]
fn a_streak_shorter_than_the_confirmation_is_a_blip_not_downtime() {
    let mut s = Schedule::day();
    s.down("a4", "12:00", "12:01", Failure::HttpStatus); // one failed run: a blip
    s.down("a5", "13:00", "13:02", Failure::HttpStatus); // two failed runs: confirmed, 2 minutes
    let r = s.analyze_day();
    assert_eq!(r.history.blips.len(), 1);
    assert_eq!((r.history.blips[0].start_ms, r.history.blips[0].failed_runs), (at("12:00"), 1));
    assert_eq!(r.site_downtime_minutes("a4"), 0);
    assert_eq!(r.site_downtime_minutes("a5"), 2);
    assert_eq!(r.incidents.len(), 1, "the blip makes no incident");
    assert_eq!(r.incidents[0].scope, Scope::Isolated);
}

#[test]
fn a_maintenance_window_overrun_by_seven_hours() {
    // Cluster b is in maintenance 01:00-05:00; its four own sites and b5 go down at 01:00 and
    // come back at 12:00: 4 hours inside the window, 7 hours of overrun.
    let mut s = Schedule::day().with_maintenance("b", "01:00", "05:00");
    for site in ["b1", "b2", "b3", "b4", "b5"] {
        s.down(site, "01:00", "12:00", Failure::ConnectRefused);
    }
    let r = s.analyze_day();
    assert_eq!(r.incidents.len(), 1);
    let i = &r.incidents[0];
    assert_eq!((i.start_ms, i.end_ms), (at("01:00"), Some(at("12:00"))));
    assert_eq!(minutes(i.duration_ms()), 660);
    assert_eq!(minutes(i.maintenance_ms), 240);
    assert_eq!(minutes(i.overrun_ms), 420);
    assert_eq!(i.maintenance, MaintenanceOverlap::Overrun);
    assert_eq!((i.customers.len(), i.cluster_customers, i.affected_customer_share), (5, 5, 1.0));
    assert_eq!(i.scope, Scope::Major);
    // Per site: 660 minutes down, 240 of them in maintenance; 240 of its 1,440 monitored
    // minutes fall in the window.
    assert_eq!(r.site_downtime_minutes("b1"), 660);
    assert_eq!(r.site_maintenance_downtime_minutes("b1"), 240);
    assert_eq!(r.site_maintenance_monitored_minutes("b1"), 240);
    // Cluster a has no window: its sites' maintenance time is zero.
    assert_eq!(r.site_maintenance_monitored_minutes("a1"), 0);
}

#[test]
fn an_unmonitored_gap_is_excluded_from_downtime_and_coverage() {
    // No runs from 14:00 to 15:59: the 13:59 run speaks for one minute, then 2 hours are
    // unmonitored. a5 fails from 13:30 and until 16:10: 30 + 10 monitored minutes down.
    let mut s = Schedule::day();
    s.gap("14:00", "16:00");
    s.down("a5", "13:30", "16:10", Failure::HttpStatus);
    let r = s.analyze_day();
    assert_eq!(minutes(r.history.monitored.iter().map(|s| s.len()).sum()), 1440 - 120);
    assert_eq!(r.site_monitored_minutes("a5"), 1320);
    assert_eq!(r.site_downtime_minutes("a5"), 40);
    let outage = &r.history.outages[0];
    assert_eq!((outage.start_ms, outage.end_ms), (at("13:30"), Some(at("16:10"))));
    // The incident spans the gap in wall-clock time; customer-minutes count monitored time only.
    let i = &r.incidents[0];
    assert_eq!(minutes(i.duration_ms()), 160);
    assert_eq!(i.customer_minutes, 40.0);
}

#[test]
fn overlapping_outages_and_short_gaps_merge_into_one_incident() {
    let mut s = Schedule::day();
    s.down("a6", "08:00", "08:30", Failure::HttpStatus);
    s.down("a7", "08:20", "09:00", Failure::HttpStatus); // overlaps a6 for 10 minutes
    s.down("a8", "18:00", "18:10", Failure::HttpStatus);
    s.down("a9", "18:13", "18:20", Failure::HttpStatus); // 3 minutes after a8: merged
    s.down("a10", "20:00", "20:10", Failure::HttpStatus);
    s.down("a1", "20:20", "20:30", Failure::HttpStatus); // 10 minutes after a10: separate
    let r = s.analyze_day();
    let spans: Vec<(i64, i64, usize)> =
        r.incidents.iter().map(|i| (i.start_ms, i.end_ms.unwrap(), i.peak_sites_down)).collect();
    assert_eq!(
        spans,
        vec![
            (at("08:00"), at("09:00"), 2),
            (at("18:00"), at("18:20"), 1),
            (at("20:00"), at("20:10"), 1),
            (at("20:20"), at("20:30"), 1)
        ]
    );
    assert_eq!(r.incidents[0].customer_minutes, 30.0 + 40.0);
    assert_eq!(r.incidents[0].peak_at_ms, at("08:20"));
    assert_eq!(minutes(r.incidents[1].duration_ms()), 20, "the 3-minute gap is inside the incident");
    assert_eq!(r.incidents[1].customer_minutes, 10.0 + 7.0);
}

#[test]
fn a_customer_on_two_clusters_counts_on_each_and_once_fleet_wide() {
    let mut s = Schedule::day();
    s.down("b5", "03:00", "03:30", Failure::DnsNxdomain); // c1's site on cluster b
    s.down("a1", "04:00", "04:10", Failure::HttpStatus); // c1's site on cluster a
    s.down("b1", "05:00", "05:05", Failure::HttpStatus); // c11
    let r = s.analyze_day();
    let on_b: Vec<f64> =
        r.incidents.iter().filter(|i| i.id.starts_with("b-")).map(|i| i.affected_customer_share).collect();
    assert_eq!(on_b, vec![1.0 / 5.0, 1.0 / 5.0]);
    let on_a: Vec<f64> =
        r.incidents.iter().filter(|i| i.id.starts_with("a-")).map(|i| i.affected_customer_share).collect();
    assert_eq!(on_a, vec![1.0 / 10.0]);
    // Fleet-wide: c1 and c11 had downtime, of 14 customers.
    assert_eq!(r.customers_with_downtime(), 2);
    assert_eq!(r.customer_downtime_minutes("c1"), 40);
}

#[test]
fn a_period_boundary_cuts_an_incident_and_the_halves_add_up() {
    let mut s = Schedule::day();
    s.down("a10", "11:30", "12:30", Failure::HttpStatus);
    let morning = s.analyze("00:00", "12:00");
    let afternoon = s.analyze("12:00", "24:00");
    let whole = s.analyze_day();
    assert_eq!(morning.site_downtime_minutes("a10"), 30);
    assert_eq!(afternoon.site_downtime_minutes("a10"), 30);
    assert_eq!(whole.site_downtime_minutes("a10"), 60);
    // The morning cannot see the end yet; the afternoon knows the true start (state carried in
    // from before its period), so the incident keeps its id.
    assert_eq!((morning.incidents[0].start_ms, morning.incidents[0].end_ms), (at("11:30"), None));
    assert_eq!(morning.incidents[0].within_period, fleetprobe::analysis::Span::new(at("11:30"), at("12:00")));
    assert_eq!(afternoon.incidents[0].id, "a-20261001T1130");
    assert_eq!(afternoon.incidents[0].end_ms, Some(at("12:30")));
    assert_eq!(minutes(afternoon.incidents[0].duration_ms()), 30);
}

#[test]
fn an_invalid_run_during_a_real_outage_is_unmonitored_not_downtime() {
    let mut s = Schedule::day();
    s.invalid("20:05");
    s.down("a3", "20:00", "20:10", Failure::ConnectTimeout);
    // Another site "fails" only in the invalid run: that must not count at all.
    s.down("a4", "20:05", "20:06", Failure::ConnectTimeout);
    let r = s.analyze_day();
    assert_eq!(r.history.invalid_runs, 1);
    assert_eq!(r.site_monitored_minutes("a3"), 1439);
    assert_eq!(r.site_downtime_minutes("a3"), 9);
    assert_eq!(r.history.outages.len(), 1);
    assert_eq!(r.history.outages[0].end_ms, Some(at("20:10")));
    assert_eq!(r.site_downtime_minutes("a4"), 0);
    assert!(r.history.blips.is_empty(), "a failure seen only by an invalid run is not even a blip");
}

#[test]
fn an_outage_still_running_at_the_end_of_the_data_is_ongoing() {
    let mut s = Schedule::day();
    s.down("a2", "23:00", "24:00", Failure::HttpStatus);
    let r = s.analyze_day();
    assert_eq!(r.incidents[0].end_ms, None);
    assert!(r.incidents[0].ongoing());
    assert_eq!(r.site_downtime_minutes("a2"), 60);
}

// SLA per customer. The plan: target 99.9 %, credits 10 % below 99.9, 25 % below 99, 50 % below
// 95; every customer pays 10.00 a month.

#[test]
fn sla_of_a_customer_on_two_clusters() {
    let mut s = Schedule::day();
    s.down("b5", "03:00", "03:30", Failure::DnsNxdomain); // c1's site on cluster b: 30 minutes
    s.down("a1", "04:00", "04:10", Failure::HttpStatus); // c1's site on cluster a: 10 minutes
    let sla = s.analyze_day().sla("c1");
    // Two sites × 1,440 monitored minutes, 40 down: 1 - 40/2880 = 98.61 %, below 99: 25 %.
    assert_eq!((minutes(sla.account.monitored_ms), minutes(sla.account.sla_downtime_ms())), (2880, 40));
    assert_eq!(sla.availability, Some(1.0 - 40.0 / 2880.0));
    assert!(!sla.met);
    assert_eq!(sla.tier, Some((99.0, 25.0)));
    assert_eq!((sla.credit_percent, sla.credit_cents, sla.currency.as_str()), (25.0, 250, "EUR"));
    assert_eq!(sla.coverage, Some(1.0));
    assert_eq!(sla.incidents.len(), 2, "one incident on each cluster touched c1");
    assert_eq!(sla.sites.len(), 2);
}

#[test]
fn sla_excludes_maintenance_but_counts_the_overrun() {
    let mut s = Schedule::day().with_maintenance("b", "01:00", "05:00");
    s.down("b1", "01:00", "12:00", Failure::ConnectRefused);
    let r = s.analyze_day();
    let sla = r.sla("c11");
    // 660 minutes down, 240 inside the window: 420 count, over 1,440 - 240 eligible minutes.
    assert_eq!(minutes(sla.account.maintenance_downtime_ms), 240);
    assert_eq!(minutes(sla.account.sla_downtime_ms()), 420);
    assert_eq!(sla.availability, Some(1.0 - 420.0 / 1200.0));
    assert_eq!((sla.tier, sla.credit_cents), (Some((95.0, 50.0)), 500));
    // A customer untouched by the outage meets the target and is owed nothing.
    let fine = r.sla("c2");
    assert_eq!((fine.availability, fine.met, fine.tier, fine.credit_cents), (Some(1.0), true, None, 0));
}

/// Measured over a twelfth of the day, c2 looks 66.7 % available; that is too little coverage to
/// judge a 99.9 % target (`sla.min_coverage`, 90 % by default): no verdict and no credit, marked
/// for review. At 95 % coverage the same kind of outage is judged and credited.
#[test]
fn too_little_coverage_marks_the_customer_for_review_instead_of_crediting() {
    let mut s = Schedule::day();
    s.gap("02:00", "24:00"); // only 00:00-02:00 measured: 120 of 1,440 minutes
    s.down("a2", "01:00", "01:40", Failure::HttpStatus);
    let sla = s.analyze_day().sla("c2");
    assert!(sla.coverage.is_some_and(|c| c < 0.1), "{:?}", sla.coverage);
    assert!(sla.availability.is_some_and(|a| a < 0.7), "the figure is still shown: {:?}", sla.availability);
    assert!(sla.needs_review);
    assert_eq!((sla.met, sla.tier, sla.credit_percent, sla.credit_cents), (false, None, 0.0, 0));

    let mut s = Schedule::day();
    s.gap("23:00", "24:00"); // 23 of 24 hours measured: 95.8 %
    s.down("a2", "01:00", "01:40", Failure::HttpStatus);
    let sla = s.analyze_day().sla("c2");
    assert!(!sla.needs_review);
    assert_eq!(sla.tier, Some((99.0, 25.0)), "97.1 % is judged and credited");
}

#[test]
fn a_short_outage_reaches_only_the_first_tier() {
    let mut s = Schedule::day();
    s.down("a2", "09:00", "09:02", Failure::HttpStatus); // 2 of 1,440 minutes: 99.861 %
    let sla = s.analyze_day().sla("c2");
    assert_eq!(sla.availability, Some(1.0 - 2.0 / 1440.0));
    assert_eq!((sla.tier, sla.credit_cents), (Some((99.9, 10.0)), 100));
}

#[test]
fn goodwill_credits_go_to_every_customer_of_the_incident() {
    let mut s = Schedule::day().with_goodwill("b-20261001T0100", 2.0, "two months free after the storage outage");
    for site in ["b1", "b5"] {
        s.down(site, "01:00", "02:00", Failure::ConnectRefused);
    }
    let r = s.analyze_day();
    for customer in ["c11", "c1"] {
        let sla = r.sla(customer);
        assert_eq!(sla.goodwill.len(), 1, "{customer}");
        assert_eq!(sla.goodwill_cents(), 2000, "{customer}: two monthly fees");
    }
    assert_eq!(r.sla("c12").goodwill_cents(), 0, "c12 was not affected");
}

/// Checks the sweep's deadline cut are no observation. Runs every minute 10:00-10:10 through a
/// real store and `app::analyze`: a1 is down from 10:02 to 10:08 but not measured at all in the
/// 10:05 run; a2 is healthy and not measured at 10:05; a3's DNS check is not measured at 10:05
/// while its HTTP check passes; a4 fails its HTTP check at 10:05 while its DNS check is not
/// measured.
#[test]
fn a_site_not_measured_during_an_outage_is_unmonitored_in_that_slot_not_down_or_up() {
    use fleetprobe::probe::{CheckKind, CheckResult, Outcome};
    use fleetprobe::store::{self, RunMeta, RunSummary};

    let s = Schedule::day();
    let fleet = &s.fleet;
    let dir = crate::fixtures::temp_dir();
    let location = fleetprobe::fleet::StoreLocation::Sqlite(dir.path().join("runs.db"));
    let mut store = store::open(&location).unwrap();
    let sites = store::site_records(fleet);
    let outcome = |site: &str, minute: i64, kind: CheckKind| -> Outcome {
        let not_measured = Outcome::Failed(Failure::NotMeasured);
        match (site, minute, kind) {
            ("a1", 5, _) | ("a2", 5, _) | ("a3", 5, CheckKind::Dns) | ("a4", 5, CheckKind::Dns) => not_measured,
            ("a1", 2..=7, _) => Outcome::Failed(Failure::ConnectTimeout),
            ("a4", 5, CheckKind::Http) => Outcome::Failed(Failure::HttpStatus),
            _ => Outcome::Ok,
        }
    };
    for minute in 0..=10 {
        let started_at_ms = at("10:00") + minute * 60_000;
        let meta = RunMeta { vantage: "test".into(), started_at_ms };
        let mut writer = store.begin_run(&meta, &sites).unwrap();
        let mut failures = 0;
        for (site, record) in fleet.sites.iter().enumerate() {
            for check in [CheckKind::Http, CheckKind::Dns] {
                let outcome = outcome(record.id.as_str(), minute, check);
                failures += u64::from(!outcome.is_ok());
                let result = CheckResult {
                    site,
                    check,
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
        }
        let summary = RunSummary {
            finished_at_ms: started_at_ms + 1_000,
            valid: true,
            invalid_reason: None,
            checks: 2 * fleet.sites.len() as u64,
            failures,
        };
        writer.finish(&summary, &[]).unwrap();
    }
    let analysis = fleetprobe::app::analyze::analyze(fleet, store.as_ref(), at("10:00"), at("10:11"), at("10:11"))
        .unwrap_or_else(|e| panic!("{e}"));
    let account = |id: &str| &analysis.accounts[fleet.site_index(id).unwrap()];
    // a1: the 10:05 slot is neither down nor up: one outage from 10:02 to 10:08 whose downtime
    // is the five measured failed minutes, and ten monitored minutes out of eleven.
    assert_eq!(analysis.history.outages.len(), 1, "{:?}", analysis.history.outages);
    let outage = &analysis.history.outages[0];
    assert_eq!(fleet.sites[outage.site].id, "a1");
    assert_eq!((outage.start_ms, outage.end_ms), (at("10:02"), Some(at("10:08"))));
    assert_eq!((minutes(account("a1").downtime_ms), minutes(account("a1").monitored_ms)), (5, 10));
    assert!(!outage.classes.contains_key(&Failure::NotMeasured), "{:?}", outage.classes);
    // a2: unmonitored in that slot, never down.
    assert_eq!((minutes(account("a2").downtime_ms), minutes(account("a2").monitored_ms)), (0, 10));
    // a3: its HTTP check was measured (up), so the slot is monitored and up.
    assert_eq!((minutes(account("a3").downtime_ms), minutes(account("a3").monitored_ms)), (0, 11));
    // a4: the measured HTTP failure counts (a blip), the unmeasured DNS check does not.
    assert_eq!(minutes(account("a4").monitored_ms), 11);
    let blips: Vec<&str> = analysis.history.blips.iter().map(|b| fleet.sites[b.site].id.as_str()).collect();
    assert_eq!(blips, ["a4"]);
    assert!(analysis.incidents.iter().all(|i| i.sites.len() == 1), "only a1's outage makes an incident");
}
