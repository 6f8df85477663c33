//! SLA per customer and period: availability against the plan's target, and the credit owed.
//!
//! Availability is site-minutes weighted over the customer's sites with maintenance left out of
//! both sides (see `availability`). The plan's tiers give a credit percentage of the monthly fee
//! (the lowest tier the availability falls below wins), capped at the fee. Goodwill credits
//! ("N months free for every customer affected by incident X") come on top and are listed apart.

use std::collections::BTreeSet;

use super::availability::{Account, total};
use super::incidents::Incident;
use super::outages::SiteHistory;
use super::{MINUTE_MS, Span};
use crate::fleet::{CustomerIdx, Fleet, Goodwill, SiteIdx};

/// One customer's SLA for one period.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSla {
    pub customer: CustomerIdx,
    pub sites: Vec<(SiteIdx, Account)>,
    /// The customer's sites added up: site-time, so 7 sites down for 7 hours are 49 site-hours.
    pub account: Account,
    /// Wall-clock time in which at least one of the customer's sites was down outside its
    /// maintenance windows: the customer's downtime, as a person reads it.
    pub downtime_ms: i64,
    /// Wall-clock time in which at least one of the customer's sites was down inside a
    /// maintenance window (shown, excluded from the SLA).
    pub maintenance_downtime_ms: i64,
    /// Share of the customer's site-time in the elapsed period that was monitored.
    pub coverage: Option<f64>,
    /// SLA availability (maintenance left out); `None` when nothing was monitored.
    pub availability: Option<f64>,
    pub target_percent: f64,
    /// Availability at or above the target. Unmeasured is not met, and earns no credit either.
    pub met: bool,
    /// Coverage below `sla.min_coverage`: too little was measured to judge the target, so no
    /// credit is computed and the customer is marked for an account manager's review.
    pub needs_review: bool,
    /// The coverage the verdict needs (`sla.min_coverage`).
    pub min_coverage: f64,
    /// The tier reached: its threshold ("below 99.9 %") and credit percentage.
    pub tier: Option<(f64, f64)>,
    pub credit_percent: f64,
    pub credit_cents: i64,
    pub goodwill: Vec<(Goodwill, i64)>,
    pub currency: String,
    pub monthly_fee_cents: i64,
    /// Indices into the incidents that touched the customer.
    pub incidents: Vec<usize>,
}

impl CustomerSla {
    pub fn goodwill_cents(&self) -> i64 {
        self.goodwill.iter().fold(0, |sum: i64, (_, cents)| sum.saturating_add(*cents))
    }

    pub fn total_credit_cents(&self) -> i64 {
        self.credit_cents.saturating_add(self.goodwill_cents())
    }
}

/// The SLA of one customer.
#[allow(clippy::too_many_arguments)]
pub fn customer_sla(
    fleet: &Fleet,
    customer: CustomerIdx,
    history: &SiteHistory,
    maintenance_by_site: &[Vec<Span>],
    accounts: &[Account],
    incidents: &[Incident],
    goodwill: &[Goodwill],
    elapsed: &Span,
) -> CustomerSla {
    let c = &fleet.customers[customer];
    let plan = &fleet.plans[c.plan];
    let site_ids: Vec<SiteIdx> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].customer == customer).collect();
    let account = total(accounts, &site_ids);
    let (downtime_ms, maintenance_downtime_ms) = wall_clock_downtime(history, &site_ids, maintenance_by_site, elapsed);
    let availability = account.sla_availability();
    let possible = elapsed.len() * site_ids.len() as i64;
    let coverage = (possible > 0).then(|| account.monitored_ms as f64 / possible as f64);
    // Too little measured to judge (but something was): no verdict and no automatic credit.
    let min_coverage = fleet.sla.min_coverage;
    let needs_review = availability.is_some() && coverage.is_some_and(|c| c < min_coverage - 1e-12);
    let judged = availability.filter(|_| !needs_review);
    let met = judged.is_some_and(|a| a * 100.0 >= plan.target_percent - 1e-9);
    // Tiers are sorted from the highest threshold down: the last one still above the
    // availability is the deepest tier reached.
    let tier = judged
        .and_then(|a| plan.credit_tiers.iter().rfind(|t| a * 100.0 < t.below_percent - 1e-9))
        .map(|t| (t.below_percent, t.credit_percent.min(100.0)));
    let credit_percent = tier.map_or(0.0, |(_, percent)| percent);
    let credit_cents = percent_of(c.monthly_fee_cents, credit_percent);
    let touched: Vec<usize> =
        incidents.iter().enumerate().filter(|(_, i)| i.customers.contains(&customer)).map(|(n, _)| n).collect();
    let touched_ids: BTreeSet<&str> = touched.iter().map(|&n| incidents[n].id.as_str()).collect();
    let goodwill = goodwill
        .iter()
        .filter(|g| touched_ids.contains(g.incident.as_str()))
        .map(|g| (g.clone(), months_of(c.monthly_fee_cents, g.months)))
        .collect();
    CustomerSla {
        customer,
        sites: site_ids.iter().map(|&s| (s, accounts[s])).collect(),
        account,
        downtime_ms,
        maintenance_downtime_ms,
        coverage,
        availability,
        target_percent: plan.target_percent,
        met,
        needs_review,
        min_coverage,
        tier,
        credit_percent,
        credit_cents,
        goodwill,
        currency: plan.currency.clone(),
        monthly_fee_cents: c.monthly_fee_cents,
        incidents: touched,
    }
}

/// Wall-clock downtime of a set of sites within `within`: the time in which at least one of them
/// was down outside its maintenance windows, and the time in which at least one was down inside
/// one. Each instant counts once, however many sites were down at it.
pub fn wall_clock_downtime(
    history: &SiteHistory,
    sites: &[SiteIdx],
    maintenance_by_site: &[Vec<Span>],
    within: &Span,
) -> (i64, i64) {
    let (mut outside, mut inside) = (Vec::new(), Vec::new());
    for outage in history.outages.iter().filter(|o| sites.contains(&o.site)) {
        let maintenance = &maintenance_by_site[outage.site];
        for down in outage.down.iter().map(|d| d.intersect(within)).filter(|d| !d.is_empty()) {
            // Cut the down span at the site's maintenance windows (sorted, disjoint).
            let mut cursor = down.start;
            for window in maintenance.iter().map(|m| m.intersect(&down)).filter(|m| !m.is_empty()) {
                outside.push(Span::new(cursor, window.start));
                inside.push(window);
                cursor = window.end;
            }
            outside.push(Span::new(cursor, down.end));
        }
    }
    let length = |spans: Vec<Span>| super::union(spans, 0).iter().map(Span::len).sum::<i64>();
    (length(outside), length(inside))
}

/// `percent` of an amount in cents, rounded half up to the cent. The percentage counts to a
/// hundredth of a percent (credit tiers are written so); the rest is integer arithmetic.
pub fn percent_of(cents: i64, percent: f64) -> i64 {
    scaled(cents, hundredths(percent), 10_000)
}

/// `months` monthly fees of `cents`, rounded half up to the cent; months count to a hundredth.
pub fn months_of(cents: i64, months: f64) -> i64 {
    scaled(cents, hundredths(months), 100)
}

/// A factor in hundredths (rounded), as an integer; not a number counts as none.
fn hundredths(factor: f64) -> i128 {
    let steps = (factor * 100.0).round();
    if steps.is_finite() { steps as i128 } else { 0 }
}

/// `cents × steps / denominator` in integers: exact to the cent (half up), saturating rather
/// than wrapping.
fn scaled(cents: i64, steps: i128, denominator: i128) -> i64 {
    let product =
        i128::from(cents).checked_mul(steps).unwrap_or(if (cents < 0) == (steps < 0) { i128::MAX } else { i128::MIN });
    let rounded = product.saturating_add(denominator / 2).div_euclid(denominator);
    i64::try_from(rounded).unwrap_or(if rounded < 0 { i64::MIN } else { i64::MAX })
}

/// Daily SLA availability of a set of sites: one value per day span (`None` when unmonitored).
/// Monitored time per day is each site's own: the valid slots of the runs that checked it.
pub fn daily_availability(
    history: &SiteHistory,
    sites: &[SiteIdx],
    maintenance_by_site: &[Vec<Span>],
    days: &[Span],
) -> Vec<Option<f64>> {
    days.iter()
        .map(|day| {
            let mut eligible = 0i64;
            let mut down = 0i64;
            for &site in sites {
                let monitored = history.monitored_of(site, &day.intersect(&history.period));
                let monitored_ms: i64 = monitored.iter().map(Span::len).sum();
                let in_maintenance: i64 =
                    monitored.iter().map(|m| super::length_within(&maintenance_by_site[site], m)).sum();
                eligible += monitored_ms - in_maintenance;
                for outage in history.outages.iter().filter(|o| o.site == site) {
                    down += outage.downtime_ms(day) - outage.maintenance_ms(day, &maintenance_by_site[site]);
                }
            }
            (eligible > 0).then(|| 1.0 - down as f64 / eligible as f64)
        })
        .collect()
}

/// Whole minutes, rounded, for display.
pub fn minutes(ms: i64) -> i64 {
    (ms + MINUTE_MS / 2).div_euclid(MINUTE_MS)
}

#[cfg(test)]
mod tests {
    use super::super::Span;
    use super::super::outages::{Outage, SiteHistory};

    fn history_of(outages: Vec<Outage>) -> SiteHistory {
        SiteHistory {
            period: Span::new(0, 0),
            outages,
            blips: Vec::new(),
            sites: Vec::new(),
            monitored: Vec::new(),
            coverage: Vec::new(),
            valid_runs: 0,
            invalid_runs: 0,
            unconfirmed: Vec::new(),
        }
    }

    fn outage(site: usize, down: &[(i64, i64)]) -> Outage {
        Outage {
            site,
            start_ms: down[0].0,
            end_ms: Some(down[down.len() - 1].1),
            down: down.iter().map(|&(a, b)| Span::new(a, b)).collect(),
            failed_runs: 1,
            classes: Default::default(),
        }
    }

    /// Seven sites down for the same seven hours are seven hours of the customer's downtime (and
    /// 49 site-hours); a four-hour window over all of them is four hours of maintenance.
    #[test]
    fn a_customers_downtime_is_wall_clock_time() {
        let hour = 3_600_000;
        let history = history_of((0..7).map(|s| outage(s, &[(10 * hour, 17 * hour)])).collect());
        let sites: Vec<usize> = (0..7).collect();
        let no_windows = vec![Vec::new(); 7];
        let day = Span::new(0, 48 * hour);
        assert_eq!(super::wall_clock_downtime(&history, &sites, &no_windows, &day), (7 * hour, 0));
        // A window from 09:00 to 13:00 on every site: 3 h of the outage inside, 4 h outside.
        let windows = vec![vec![Span::new(9 * hour, 13 * hour)]; 7];
        assert_eq!(super::wall_clock_downtime(&history, &sites, &windows, &day), (4 * hour, 3 * hour));
        // Staggered sites: 10-12 and 11-14 are 4 h, not 5; a site of another customer is left out.
        let history = history_of(vec![
            outage(0, &[(10 * hour, 12 * hour)]),
            outage(1, &[(11 * hour, 14 * hour)]),
            outage(9, &[(0, hour)]),
        ]);
        assert_eq!(super::wall_clock_downtime(&history, &[0, 1], &no_windows, &day), (4 * hour, 0));
        // Only the part inside the period counts.
        assert_eq!(
            super::wall_clock_downtime(&history, &[0, 1], &no_windows, &Span::new(13 * hour, day.end)),
            (hour, 0)
        );
    }

    #[test]
    fn percentages_round_half_up_to_the_cent() {
        assert_eq!(super::percent_of(1990, 10.0), 199);
        assert_eq!(super::percent_of(499, 25.0), 125); // 124.75
        assert_eq!(super::percent_of(1000, 0.0), 0);
        // Beyond 2^53 a float loses cents; integers do not.
        assert_eq!(super::percent_of(9_007_199_254_740_993, 100.0), 9_007_199_254_740_993);
        assert_eq!(super::percent_of(100_000_000, 12.5), 12_500_000);
        assert_eq!(super::months_of(9_007_199_254_740_993, 1.0), 9_007_199_254_740_993);
        assert_eq!(super::months_of(1999, 0.5), 1000); // 999.5
        assert_eq!(super::months_of(i64::MAX, 24.0), i64::MAX, "saturates, never wraps");
    }
}
