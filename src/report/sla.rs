//! `fleetprobe report sla`: per customer, availability against the plan's target and the credit
//! owed; the monthly SLA PDF for one customer or all of them, `credits.csv` for billing, and a
//! summary for the account-management team.

use std::path::PathBuf;

use serde::Serialize;

use super::period::{Period, PeriodArgs};
use super::table::{Align, Format, Table, percent};
use crate::analysis::sla::{self, CustomerSla};
use crate::cli::{CommandError, ConfigArgs, StoreArgs};
use crate::fleet::{CustomerIdx, Fleet};

#[derive(clap::Args)]
pub struct SlaArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The period [default: the last full calendar month in --tz]
    #[command(flatten)]
    pub period: PeriodArgs,
    /// One customer
    #[arg(long, conflicts_with = "all", required_unless_present = "all")]
    pub customer: Option<String>,
    /// Every customer: with `-o DIR`, one PDF each, credits.csv and summary.pdf
    #[arg(long)]
    pub all: bool,
    /// Table, CSV or JSON of the SLA figures when not writing PDFs
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// A .pdf file (one customer), a directory (--all), or a file for --format
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Branding and wording of the PDFs [default: reports/branding.toml next to the config, else built in]
    #[arg(long)]
    pub branding: Option<PathBuf>,
}

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
    pub downtime_minutes: i64,
    pub maintenance_minutes: i64,
    pub coverage_percent: Option<f64>,
    pub sites: usize,
    pub incidents: usize,
}

pub fn run(args: &SlaArgs) -> Result<(), CommandError> {
    let fleet = crate::cli::load_fleet(&args.config)?;
    let period = resolve_period(&args.period)?;
    let customers: Vec<CustomerIdx> = match &args.customer {
        Some(id) => vec![fleet.customers.iter().position(|c| &c.id == id).ok_or_else(|| {
            CommandError::config(format!(
                "--customer: unknown customer `{id}`; expected a customer_id from the inventory"
            ))
        })?],
        None => (0..fleet.customers.len()).collect(),
    };
    let store = super::open_existing_store(&fleet, &args.store)?;
    let analysis = super::availability::analyze_period(&fleet, store.as_ref(), &period)?;
    let slas: Vec<CustomerSla> = customers.iter().map(|&c| analysis.customer_sla(&fleet, c)).collect();
    let rows: Vec<CreditRow> = slas.iter().map(|s| credit_row(&fleet, &period, s)).collect();

    let pdf_target =
        args.output.as_deref().filter(|o| args.all || o.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")));
    if let Some(target) = pdf_target {
        return super::sla_pdf_output::write(
            &fleet,
            &period,
            &analysis,
            &slas,
            &rows,
            target,
            args.all,
            args.branding.as_deref(),
            args.config.config.as_deref(),
            store.as_ref(),
        );
    }
    let mut out = super::output(args.output.as_deref())?;
    let written = match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows).map_err(std::io::Error::other).and_then(|_| writeln!(out))
        }
        Format::Csv => credits_table(&rows).write_csv(&mut out),
        Format::Table => {
            write!(out, "SLA, {} ({})\n\n{}", period.label, tz_name(&period), credits_table(&rows).text(40))
        }
        Format::Markdown => write!(out, "{}", credits_table(&rows).markdown()),
        Format::Html => write!(out, "{}", credits_table(&rows).html()),
    };
    written.and_then(|_| out.flush()).map_err(|e| CommandError::internal(format!("writing the report: {e}")))
}

/// The given period, or the last full calendar month before now in the zone.
pub fn resolve_period(args: &PeriodArgs) -> Result<Period, CommandError> {
    if args.period.is_some() || args.from.is_some() || args.last.is_some() {
        return args.resolve("30d").map_err(CommandError::config);
    }
    let tz = super::period::time_zone(&args.tz).map_err(CommandError::config)?;
    let now = args.now.unwrap_or_else(jiff::Timestamp::now).to_zoned(tz);
    let this_month = now.date().first_of_month();
    let last_month =
        this_month.checked_sub(jiff::ToSpan::month(1)).map_err(|e| CommandError::internal(e.to_string()))?;
    let mut with_period = args.clone();
    with_period.period = Some(last_month.strftime("%Y-%m").to_string());
    with_period.resolve("30d").map_err(CommandError::config)
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
        availability_percent: s.availability.map(|a| round(a * 100.0, 4)),
        target_percent: s.target_percent,
        met: s.met,
        tier: s.tier.map_or(String::new(), |(below, _)| format!("below {below}%")),
        credit_percent: s.credit_percent,
        credit: money(s.credit_cents),
        goodwill: money(s.goodwill_cents()),
        total_credit: money(s.total_credit_cents()),
        currency: s.currency.clone(),
        downtime_minutes: sla::minutes(s.account.sla_downtime_ms()),
        maintenance_minutes: sla::minutes(s.account.maintenance_downtime_ms),
        coverage_percent: s.coverage.map(|c| round(c * 100.0, 2)),
        sites: s.sites.len(),
        incidents: s.incidents.len(),
    }
}

pub fn credits_table(rows: &[CreditRow]) -> Table {
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
        ("coverage", Align::Right),
    ]);
    for r in rows {
        t.push(vec![
            r.customer_id.clone(),
            r.customer.clone(),
            r.plan.clone(),
            r.availability_percent.map_or("–".into(), |a| format!("{a:.3}%")),
            format!("{}%", r.target_percent),
            if r.met { "yes".into() } else { "no".into() },
            r.tier.clone(),
            format!("{}", r.credit_percent),
            r.credit.clone(),
            r.goodwill.clone(),
            r.total_credit.clone(),
            r.currency.clone(),
            r.downtime_minutes.to_string(),
            r.maintenance_minutes.to_string(),
            percent(r.coverage_percent.map(|c| c / 100.0), 2),
        ]);
    }
    t
}

/// Cents as a decimal amount: 250 → "2.50".
pub fn money(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

fn round(value: f64, digits: i32) -> f64 {
    let factor = 10f64.powi(digits);
    (value * factor).round() / factor
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
    #[test]
    fn money_and_file_names() {
        assert_eq!(super::money(250), "2.50");
        assert_eq!(super::money(0), "0.00");
        assert_eq!(super::money(14_900), "149.00");
        assert_eq!(super::pdf_file_name("../../etc/passwd", "2026-10"), "_.._etc_passwd-2026-10.pdf");
        assert_eq!(super::pdf_file_name("c0001", "2026-10"), "c0001-2026-10.pdf");
    }
}
