//! `fleetprobe report sla`: per customer, availability against the plan's target and the credit
//! owed; the monthly SLA PDF for one customer or all of them, `credits.csv` for billing, and a
//! summary for the account-management team.

use std::io::Write;

use serde::Serialize;

use super::period::Period;
use super::render::{Render, write_json};
use super::table::{Align, Table, percent, truncate_to};
use crate::analysis::sla::{self, CustomerSla};
use crate::fleet::Fleet;

/// One customer's line in `credits.csv` and the JSON output.
#[derive(Serialize)]
pub struct CreditRow {
    pub customer_id: String,
    pub customer: String,
    pub plan: String,
    pub period: String,
    pub availability_percent: Option<f64>,
    pub target_percent: f64,
    pub met: bool,
    pub tier: String,
    pub credit_percent: f64,
    pub credit: String,
    pub goodwill: String,
    pub total_credit: String,
    pub currency: String,
    /// Minutes in which at least one of the customer's sites was down outside maintenance.
    pub downtime_minutes: i64,
    /// Minutes in which at least one of the customer's sites was down inside maintenance.
    pub maintenance_minutes: i64,
    /// Each site's downtime outside maintenance, added up (site-minutes).
    pub downtime_site_minutes: i64,
    pub coverage_percent: Option<f64>,
    /// Why an account manager must look at this customer before billing ("" when nothing).
    pub review: String,
    pub sites: usize,
    pub incidents: usize,
}

/// The SLA figures of the customers asked for, as the table, CSV and JSON outputs show them.
#[derive(Serialize)]
#[serde(transparent)]
pub struct CreditsReport {
    pub rows: Vec<CreditRow>,
    #[serde(skip)]
    pub period: Period,
}

impl Render for CreditsReport {
    fn table(&self) -> Table {
        credits_table(&self.rows)
    }
    fn text(&self) -> String {
        format!("SLA, {} ({})\n\n{}", self.period.label, tz_name(&self.period), self.table().text(40))
    }
    fn csv(&self, out: &mut dyn Write) -> std::io::Result<()> {
        credits_csv(&self.rows).write_csv(out)
    }
    fn json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_json(out, &self.rows)
    }
}

fn tz_name(period: &Period) -> String {
    period.tz.iana_name().unwrap_or("UTC").to_string()
}

pub fn credit_row(fleet: &Fleet, period: &Period, s: &CustomerSla) -> CreditRow {
    let customer = &fleet.customers[s.customer];
    CreditRow {
        customer_id: customer.id.clone(),
        customer: customer.name.clone(),
        plan: fleet.plans[customer.plan].name.clone(),
        period: period.label.clone(),
        availability_percent: s.availability.map(|a| truncate_to(a * 100.0, 3)),
        target_percent: s.target_percent,
        met: s.met,
        tier: s.tier.map_or(String::new(), |(below, _)| format!("below {below}%")),
        credit_percent: s.credit_percent,
        credit: money(s.credit_cents),
        goodwill: money(s.goodwill_cents()),
        total_credit: money(s.total_credit_cents()),
        currency: s.currency.clone(),
        downtime_minutes: sla::minutes(s.downtime_ms),
        maintenance_minutes: sla::minutes(s.maintenance_downtime_ms),
        downtime_site_minutes: sla::minutes(s.account.sla_downtime_ms()),
        coverage_percent: s.coverage.map(|c| truncate_to(c * 100.0, 2)),
        review: if s.needs_review {
            format!(
                "coverage {} is under the {} needed: no credit computed",
                percent(s.coverage, 2),
                percent(Some(s.min_coverage), 0)
            )
        } else {
            String::new()
        },
        sites: s.sites.len(),
        incidents: s.incidents.len(),
    }
}

/// The credits as people read them: "–" where nothing was measured.
pub fn credits_table(rows: &[CreditRow]) -> Table {
    credits(rows, "–")
}

/// `credits.csv` for billing: empty cells where nothing was measured, so a spreadsheet sees no
/// number rather than text, and `met` is empty rather than "no" for a period nobody measured.
pub fn credits_csv(rows: &[CreditRow]) -> Table {
    credits(rows, "")
}

fn credits(rows: &[CreditRow], unknown: &str) -> Table {
    let mut t = Table::new(&[
        ("customer_id", Align::Left),
        ("customer", Align::Left),
        ("plan", Align::Left),
        ("availability", Align::Right),
        ("target", Align::Right),
        ("met", Align::Left),
        ("tier", Align::Left),
        ("credit %", Align::Right),
        ("credit", Align::Right),
        ("goodwill", Align::Right),
        ("total", Align::Right),
        ("currency", Align::Left),
        ("downtime min", Align::Right),
        ("maintenance min", Align::Right),
        ("site-min down", Align::Right),
        ("coverage", Align::Right),
        ("review", Align::Left),
    ]);
    for r in rows {
        t.push(vec![
            r.customer_id.clone(),
            r.customer.clone(),
            r.plan.clone(),
            r.availability_percent.map_or(unknown.into(), |a| format!("{a:.3}%")),
            format!("{}%", r.target_percent),
            match (r.availability_percent, r.met) {
                (None, _) => unknown.into(),
                (Some(_), true) => "yes".into(),
                (Some(_), false) => "no".into(),
            },
            r.tier.clone(),
            format!("{}", r.credit_percent),
            r.credit.clone(),
            r.goodwill.clone(),
            r.total_credit.clone(),
            r.currency.clone(),
            r.downtime_minutes.to_string(),
            r.maintenance_minutes.to_string(),
            r.downtime_site_minutes.to_string(),
            r.coverage_percent.map_or(unknown.into(), |c| percent(Some(c / 100.0), 2)),
            r.review.clone(),
        ]);
    }
    t
}

/// Cents as a decimal amount: 250 → "2.50".
pub fn money(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

/// Where the per-customer PDFs of `--all` go: `DIR/<customer_id>-<period>.pdf`, with characters
/// unsafe in file names replaced.
pub fn pdf_file_name(customer_id: &str, period: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string()
    };
    format!("{}-{}.pdf", safe(customer_id), safe(period))
}

#[cfg(test)]
mod tests {
    /// A customer nobody measured: empty cells in credits.csv (not "–", not met=no), "–" for people.
    #[test]
    fn unmeasured_customers_have_empty_cells_in_the_csv() {
        let row = super::CreditRow {
            customer_id: "c9".into(),
            customer: "Nine".into(),
            plan: "basic".into(),
            period: "2026-10".into(),
            availability_percent: None,
            target_percent: 99.9,
            met: false,
            tier: String::new(),
            credit_percent: 0.0,
            credit: "0.00".into(),
            goodwill: "0.00".into(),
            total_credit: "0.00".into(),
            currency: "EUR".into(),
            downtime_minutes: 0,
            maintenance_minutes: 0,
            downtime_site_minutes: 0,
            coverage_percent: None,
            review: String::new(),
            sites: 1,
            incidents: 0,
        };
        let mut csv = Vec::new();
        super::credits_csv(std::slice::from_ref(&row)).write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().nth(1), Some("c9,Nine,basic,,99.9%,,,0,0.00,0.00,0.00,EUR,0,0,0,,"), "{csv}");
        let text = super::credits_table(&[row]).text(40);
        assert!(text.lines().nth(1).is_some_and(|l| l.contains('–') && !l.contains(" no ")), "{text}");
    }

    #[test]
    fn money_and_file_names() {
        assert_eq!(super::money(250), "2.50");
        assert_eq!(super::money(0), "0.00");
        assert_eq!(super::money(14_900), "149.00");
        assert_eq!(super::pdf_file_name("../../etc/passwd", "2026-10"), "_.._etc_passwd-2026-10.pdf");
        assert_eq!(super::pdf_file_name("c0001", "2026-10"), "c0001-2026-10.pdf");
    }
}
