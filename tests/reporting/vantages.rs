//! Several vantages against fault schedules: each vantage keeps its own outages, and a site is
//! down only while the quorum of the vantages measuring it see it down. The fleet and day are
//! those of `availability.rs`; every vantage runs once a minute unless a test staggers it.

use crate::schedule::{Schedule, at, at_s, minutes};
use fleetprobe::analysis::Span;
use fleetprobe::probe::Failure;

/// A fault every vantage sees is the same outage one prober sees.
#[test]
fn a_fault_all_vantages_see_is_down() {
    let mut s = Schedule::day().with_vantages(3, "majority");
    for v in 0..3 {
        for site in ["a1", "a2", "a3"] {
            s.down_at(v, site, "10:00", "10:47", Failure::ConnectRefused);
        }
    }
    let r = s.analyze_day();
    assert_eq!(r.measuring_vantages, 3);
    assert_eq!(r.history.outages.len(), 3);
    for outage in &r.history.outages {
        assert_eq!((outage.start_ms, outage.end_ms), (at("10:00"), Some(at("10:47"))));
        // Classes as one vantage counted them, not three times over.
        assert_eq!(outage.classes.get(&Failure::ConnectRefused), Some(&47));
    }
    assert_eq!(r.cluster_downtime_minutes("a"), 141);
    assert_eq!(r.cluster_monitored_minutes("a"), 14_400, "vantages overlap in time: monitored once");
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].affected_customer_share, 0.3);
    assert!(r.local_failures.is_empty());
}

/// One of three sees a site fail: under the majority that is the vantage's own failure, never
/// downtime, kept per vantage with its span and classes.
#[test]
fn a_fault_one_of_three_sees_is_vantage_local() {
    let mut s = Schedule::day().with_vantages(3, "majority");
    s.down_at(2, "a1", "10:00", "10:47", Failure::DnsTimeout);
    let r = s.analyze_day();
    assert!(r.history.outages.is_empty());
    assert_eq!(r.site_downtime_minutes("a1"), 0);
    assert!(r.incidents.is_empty());
    assert_eq!(r.local_failures.len(), 1);
    let local = &r.local_failures[0];
    assert_eq!((local.vantage, local.site, local.span), (2, s.site("a1"), Span::new(at("10:00"), at("10:47"))));
    assert_eq!(local.classes.get(&Failure::DnsTimeout), Some(&47));
    assert!(r.sla("c1").credit_cents == 0);
}

/// The same two-of-three fault under each quorum rule.
#[test]
fn any_all_and_a_number() {
    let two_of_three = |quorum: toml::Value| {
        let mut s = Schedule::day().with_vantages(3, quorum);
        s.down_at(0, "a1", "10:00", "10:30", Failure::HttpStatus);
        s.down_at(1, "a1", "10:00", "10:30", Failure::HttpStatus);
        s.down_at(0, "a2", "12:00", "12:10", Failure::HttpStatus); // one of three
        s.analyze_day()
    };
    let r = two_of_three("majority".into());
    assert_eq!((r.site_downtime_minutes("a1"), r.site_downtime_minutes("a2")), (30, 0));
    let r = two_of_three("any".into());
    assert_eq!((r.site_downtime_minutes("a1"), r.site_downtime_minutes("a2")), (30, 10));
    assert!(r.local_failures.is_empty());
    let r = two_of_three("all".into());
    assert_eq!((r.site_downtime_minutes("a1"), r.site_downtime_minutes("a2")), (0, 0));
    // Two vantages each saw a1 down for 30 minutes, one saw a2 for 10: three local failures.
    assert_eq!(r.local_failures.len(), 3);
    let r = two_of_three(2.into());
    assert_eq!((r.site_downtime_minutes("a1"), r.site_downtime_minutes("a2")), (30, 0));
    let r = two_of_three(3.into());
    assert_eq!(r.site_downtime_minutes("a1"), 0);
}

/// Vantages 20 s apart see a fault from 10:00:30 to 10:10:30 in different runs:
/// v1 (hh:mm:00) fails 10:01-10:10, down [10:01:00, 10:11:00);
/// v2 (hh:mm:20) fails 10:01:20-10:10:20, down [10:01:20, 10:11:20);
/// v3 (hh:mm:40) fails 10:00:40-10:09:40, down [10:00:40, 10:10:40).
/// The verdict starts when the quorum-th vantage's outage does and ends when fewer than the
/// quorum still see it: each edge moves by up to one interval from the earliest vantage's view.
#[test]
fn staggered_vantages_move_the_verdicts_edges() {
    let outage_of = |quorum: &str| {
        let mut s = Schedule::day().with_vantages(3, quorum);
        s.stagger(1, 20);
        s.stagger(2, 40);
        s.down_at(0, "a1", "10:01", "10:11", Failure::ConnectTimeout);
        s.down_at(1, "a1", "10:01", "10:11", Failure::ConnectTimeout);
        s.down_at(2, "a1", "10:00", "10:10", Failure::ConnectTimeout);
        let r = s.analyze_day();
        assert_eq!(r.history.outages.len(), 1, "{quorum}");
        let o = r.history.outages[0].clone();
        (o.start_ms, o.end_ms.unwrap(), o.downtime_ms(&r.history.period))
    };
    assert_eq!(outage_of("any"), (at_s("10:00", 40), at_s("10:11", 20), 640_000));
    assert_eq!(outage_of("majority"), (at_s("10:01", 0), at_s("10:11", 0), 600_000));
    assert_eq!(outage_of("all"), (at_s("10:01", 20), at_s("10:10", 40), 560_000));
}

/// A vantage that cannot vouch for its runs (invalid: its control targets failed) drops out of
/// `k` for that time: the others decide.
#[test]
fn a_vantage_with_invalid_runs_during_the_outage() {
    // All three see a1 down 10:00-10:47; v3's runs 10:10-10:20 are invalid. Two of the two
    // measuring still agree: one outage of 47 minutes, monitored all day.
    let mut s = Schedule::day().with_vantages(3, "majority");
    for v in 0..3 {
        s.down_at(v, "a1", "10:00", "10:47", Failure::ConnectRefused);
    }
    s.invalid_at(2, "10:10", "10:20");
    let r = s.analyze_day();
    assert_eq!(r.history.outages.len(), 1);
    assert_eq!(r.site_downtime_minutes("a1"), 47);
    assert_eq!(r.site_monitored_minutes("a1"), 1440);
    assert!(r.local_failures.is_empty());

    // Two vantages: v1 sees a1 down 10:00-10:47, v2 sees it up, but v2's runs 10:10-10:20 are
    // invalid. Majority of two is two: not down while both measure; majority of one is one:
    // down 10:10-10:20 while v1 alone measures. The rest is v1's own.
    let mut s = Schedule::day().with_vantages(2, "majority");
    s.down_at(0, "a1", "10:00", "10:47", Failure::ConnectRefused);
    s.invalid_at(1, "10:10", "10:20");
    let r = s.analyze_day();
    assert_eq!(r.history.outages.len(), 1);
    let o = &r.history.outages[0];
    assert_eq!((o.start_ms, o.end_ms), (at("10:10"), Some(at("10:20"))));
    assert_eq!(r.site_downtime_minutes("a1"), 10);
    let local: Vec<Span> = r.local_failures.iter().map(|l| l.span).collect();
    assert_eq!(local, vec![Span::new(at("10:00"), at("10:10")), Span::new(at("10:20"), at("10:47"))]);

    // Every vantage invalid at once: unmonitored, not down and not up.
    let mut s = Schedule::day().with_vantages(2, "majority");
    for v in 0..2 {
        s.down_at(v, "a1", "10:00", "10:47", Failure::ConnectRefused);
        s.invalid_at(v, "10:10", "10:20");
    }
    let r = s.analyze_day();
    assert_eq!(r.history.outages.len(), 1, "the unmonitored stretch does not end the outage");
    assert_eq!((r.site_downtime_minutes("a1"), r.site_monitored_minutes("a1")), (37, 1430));
}

/// Shards split sites: v1 sweeps cluster a, v2 cluster b. When v2 does not run for two hours,
/// b's sites are unmonitored for them, never up, and a's are untouched.
#[test]
fn a_shard_that_did_not_run_leaves_its_sites_unmonitored() {
    let mut s = Schedule::day().with_vantages(2, "majority");
    s.roster(0, &["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "a10"]);
    s.roster(1, &["b1", "b2", "b3", "b4", "b5"]);
    s.gap_at(1, "02:00", "04:00");
    // One shard's prober alone measures b: its view is the verdict.
    s.down_at(1, "b1", "05:00", "05:30", Failure::ConnectRefused);
    // v2 does not check a1: a failure in its data for a1 is not read.
    s.down_at(1, "a1", "06:00", "06:30", Failure::ConnectRefused);
    let r = s.analyze_day();
    assert_eq!(r.site_monitored_minutes("a1"), 1440);
    assert_eq!(r.site_monitored_minutes("b1"), 1320);
    assert_eq!(r.cluster_monitored_minutes("b"), 5 * 1320);
    assert_eq!(r.site_downtime_minutes("b1"), 30);
    assert_eq!(r.site_downtime_minutes("a1"), 0);
    let coverage = fleetprobe::analysis::availability::coverage(&r.history, &r.history.period).unwrap();
    let expected = (10.0 * 1440.0 + 5.0 * 1320.0) / (15.0 * 1440.0);
    assert!((coverage - expected).abs() < 1e-12, "{coverage} vs {expected}");
    // Customer c1 has a1 (cluster a) and b5 (cluster b): its coverage counts b5's gap.
    let sla = r.sla("c1");
    assert_eq!(minutes(r.accounts[s.site("b5")].monitored_ms), 1320);
    assert!((sla.coverage.unwrap() - (1440.0 + 1320.0) / 2880.0).abs() < 1e-12);
}
