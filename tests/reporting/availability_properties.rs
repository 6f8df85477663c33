//! Properties that hold for any fault schedule: downtime never exceeds monitored time or the
//! period, shares stay in [0, 1], splitting a period in two and adding up gives the same
//! downtime, and the order in which a run's results arrive does not matter.

use crate::schedule::{Schedule, at};
use fleetprobe::analysis::{MINUTE_MS, Span};
use fleetprobe::probe::Failure;
use proptest::prelude::*;

/// Random outages (site, first minute, length), missing runs and invalid runs over 6 hours.
fn schedules() -> impl Strategy<Value = Schedule> {
    let outages = prop::collection::vec((0usize..15, 0i64..360, 1i64..90), 0..12);
    let missing = prop::collection::vec(0i64..360, 0..20);
    let invalid = prop::collection::vec(0i64..360, 0..10);
    (outages, missing, invalid).prop_map(|(outages, missing, invalid)| {
        let mut s = Schedule::day();
        s.gap("06:00", "24:00");
        for (site, from, len) in outages {
            s.down_minutes(site, from, from + len, Failure::HttpStatus);
        }
        for minute in missing {
            s.drop_minute(minute);
        }
        for minute in invalid {
            s.invalid_minute(minute);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn downtime_is_bounded_and_shares_are_shares(s in schedules()) {
        let r = s.analyze("00:00", "06:00");
        let period = r.history.period.len();
        for account in &r.accounts {
            prop_assert!(account.downtime_ms >= 0);
            prop_assert!(account.downtime_ms <= account.monitored_ms);
            prop_assert!(account.monitored_ms <= period);
            prop_assert!(account.maintenance_downtime_ms <= account.downtime_ms);
            prop_assert!(account.availability().is_none_or(|a| (0.0..=1.0).contains(&a)));
        }
        for i in &r.incidents {
            prop_assert!((0.0..=1.0).contains(&i.affected_customer_share));
            prop_assert!(i.peak_customer_share <= i.affected_customer_share);
            prop_assert!(i.peak_sites_down <= i.sites.len());
            prop_assert!(i.duration_ms() <= period);
            prop_assert!(i.customer_minutes * MINUTE_MS as f64 <= (i.customers.len() as i64 * i.duration_ms()) as f64);
        }
    }

    #[test]
    fn splitting_the_period_adds_up(s in schedules(), split in 1i64..359) {
        let split_ms = at("00:00") + split * MINUTE_MS;
        let whole = s.analyze_runs(Span::new(at("00:00"), at("06:00")), s.run_list(at("06:00")));
        let first = s.analyze_runs(Span::new(at("00:00"), split_ms), s.run_list(split_ms));
        let second = s.analyze_runs(Span::new(split_ms, at("06:00")), s.run_list(at("06:00")));
        for site in 0..s.fleet.sites.len() {
            let (w, a, b) = (&whole.accounts[site], &first.accounts[site], &second.accounts[site]);
            prop_assert_eq!(a.monitored_ms + b.monitored_ms, w.monitored_ms, "monitored, site {}", site);
            // The first half cannot know whether a streak still open at the split gets confirmed,
            // so compare with what the whole day confirmed before the split.
            let confirmed_before_split: i64 = whole.history.outages.iter()
                .filter(|o| o.site == site)
                .map(|o| o.downtime_ms(&Span::new(at("00:00"), split_ms)))
                .sum();
            let pending_at_split: i64 = first.history.unconfirmed.iter().filter(|u| u.site == site).count() as i64;
            if pending_at_split == 0 {
                prop_assert_eq!(a.downtime_ms, confirmed_before_split, "first half, site {}", site);
            }
            prop_assert_eq!(b.downtime_ms, w.downtime_ms - confirmed_before_split, "second half, site {}", site);
        }
    }

    #[test]
    fn the_order_of_results_within_a_run_does_not_matter(s in schedules(), seed in any::<u64>()) {
        let period = Span::new(at("00:00"), at("06:00"));
        let runs = s.run_list(at("06:00"));
        let mut shuffled = runs.clone();
        let mut state = seed | 1;
        for (_, observations) in shuffled.iter_mut() {
            // A small xorshift keeps the shuffle reproducible from the seed.
            for i in (1..observations.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                observations.swap(i, (state % (i as u64 + 1)) as usize);
            }
        }
        let a = s.analyze_runs(period, runs);
        let b = s.analyze_runs(period, shuffled);
        prop_assert_eq!(a.history, b.history);
        prop_assert_eq!(a.incidents, b.incidents);
    }
}
