//! Writes the SLA PDFs: fills the PDF view model from a customer's SLA and renders it; for
//! `--all`, one PDF per customer (with a progress bar when a person watches), `credits.csv` for
//! billing and `summary.html`, one printable page for the account-management team.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::availability::Availability;
use super::pdf::{self, Branding, SlaDocument};
use super::period::Period;
use super::sla::{CreditRow, credits_table, money, pdf_file_name};
use super::sla_charts::LatencyCharts;
use super::table::{duration, escape_html};
use crate::analysis::incidents::MaintenanceOverlap;
use crate::analysis::sla::{CustomerSla, minutes};
use crate::cli::CommandError;
use crate::fleet::Fleet;
use crate::probe::{Failure, Phase};
use crate::store::Store;

#[allow(clippy::too_many_arguments)]
pub fn write(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    slas: &[CustomerSla],
    rows: &[CreditRow],
    target: &Path,
    all: bool,
    branding_path: Option<&Path>,
    config_path: Option<&Path>,
    store: &dyn Store,
) -> Result<(), CommandError> {
    let branding = load_branding(branding_path, config_path)?;
    let io = |path: &Path, e: std::io::Error| CommandError::internal(format!("{}: {e}", path.display()));
    if !all {
        let sla = &slas[0];
        if sla.availability.is_none() {
            return Err(CommandError::store(format!(
                "customer {} has no monitored time in {}; there is nothing to report",
                fleet.customers[sla.customer].id, period.label
            )));
        }
        let bytes = render(fleet, period, analysis, sla, &branding, store, &mut LatencyCharts::default())?;
        return std::fs::write(target, bytes).map_err(|e| io(target, e));
    }

    std::fs::create_dir_all(target).map_err(|e| io(target, e))?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(slas.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} SLA PDFs [{bar:40}] {pos}/{len} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let mut skipped = Vec::new();
    let mut latency_charts = LatencyCharts::default();
    for sla in slas {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let customer = &fleet.customers[sla.customer];
        if sla.availability.is_none() {
            skipped.push(customer.id.clone());
            continue;
        }
        let path = target.join(pdf_file_name(&customer.id, &period.label));
        let bytes = render(fleet, period, analysis, sla, &branding, store, &mut latency_charts)?;
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let credits = target.join("credits.csv");
    let mut file = std::fs::File::create(&credits).map_err(|e| io(&credits, e))?;
    credits_table(rows).write_csv(&mut file).map_err(|e| io(&credits, e))?;
    let summary = target.join("summary.html");
    std::fs::write(&summary, summary_html(period, slas, rows, &branding)).map_err(|e| io(&summary, e))?;
    let written = slas.len() - skipped.len();
    eprintln!(
        "wrote {written} SLA PDFs, credits.csv and summary.html to {}{}",
        target.display(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} customers without monitored time skipped: {})", skipped.len(), skipped.join(", "))
        }
    );
    Ok(())
}

/// `--branding`, else `reports/branding.toml` beside or above the configuration, else built in.
fn load_branding(explicit: Option<&Path>, config_path: Option<&Path>) -> Result<Branding, CommandError> {
    let found: Option<PathBuf> = explicit.map(Path::to_path_buf).or_else(|| {
        let dir = config_path.and_then(Path::parent).unwrap_or(Path::new("."));
        [dir.join("reports/branding.toml"), dir.join("../reports/branding.toml")].into_iter().find(|p| p.exists())
    });
    Branding::load(found.as_deref()).map_err(|e| CommandError::config(e.to_string()))
}

fn render(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    sla: &CustomerSla,
    branding: &Branding,
    store: &dyn Store,
    latency_charts: &mut LatencyCharts,
) -> Result<Vec<u8>, CommandError> {
    let doc = document(fleet, period, analysis, sla, store, latency_charts);
    pdf::render_sla_pdf(&doc, branding)
        .map_err(|e| CommandError::internal(format!("SLA PDF of {}: {e}", fleet.customers[sla.customer].id)))
}

/// The view model of one customer's PDF.
pub fn document(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    sla: &CustomerSla,
    store: &dyn Store,
    latency_charts: &mut LatencyCharts,
) -> SlaDocument {
    let customer = &fleet.customers[sla.customer];
    let show = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_zoned(period.tz.clone()).strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    SlaDocument {
        customer_name: customer.name.clone(),
        customer_id: customer.id.clone(),
        contact: customer.contact.clone(),
        plan_name: fleet.plans[customer.plan].name.clone(),
        period_label: period_words(&period.label),
        time_zone: period.tz.iana_name().unwrap_or("UTC").to_string(),
        availability_percent: sla.availability.map(|a| a * 100.0),
        target_percent: sla.target_percent,
        met: sla.met,
        downtime_minutes: minutes(sla.account.sla_downtime_ms()),
        maintenance_minutes: minutes(sla.account.maintenance_downtime_ms),
        coverage_percent: sla.coverage.map(|c| c * 100.0),
        credit: sla.tier.map(|(below, percent)| pdf::CreditLine {
            tier: format!("below {below}%"),
            percent,
            amount_cents: sla.credit_cents,
            currency: sla.currency.clone(),
        }),
        goodwill: sla
            .goodwill
            .iter()
            .map(|(g, cents)| pdf::GoodwillLine {
                incident_id: g.incident.clone(),
                text: if g.note.is_empty() {
                    format!("{} months of the monthly fee", g.months)
                } else {
                    g.note.clone()
                },
                amount_cents: *cents,
                currency: sla.currency.clone(),
            })
            .collect(),
        sites: sla
            .sites
            .iter()
            .map(|(site, account)| pdf::SiteRow {
                site_id: fleet.sites[*site].id.clone(),
                hostname: fleet.sites[*site].hostname.clone(),
                cluster: fleet.clusters[fleet.sites[*site].cluster].name.clone(),
                availability_percent: account.sla_availability().map(|a| a * 100.0),
                downtime_minutes: minutes(account.sla_downtime_ms()),
                maintenance_minutes: minutes(account.maintenance_downtime_ms),
            })
            .collect(),
        incidents: sla
            .incidents
            .iter()
            .map(|&n| {
                let i = &analysis.incidents[n];
                pdf::IncidentRow {
                    id: i.id.clone(),
                    start: show(i.start_ms),
                    end: i.end_ms.map(show).unwrap_or_else(|| "ongoing".into()),
                    duration_minutes: minutes(i.duration_ms()),
                    cause: i.main_class().map_or("unknown".into(), |f| cause_words(f).to_string()),
                    cluster: fleet.clusters[i.cluster].name.clone(),
                    in_maintenance: match i.maintenance {
                        MaintenanceOverlap::None => pdf::MaintenanceOverlap::None,
                        MaintenanceOverlap::Inside => pdf::MaintenanceOverlap::Full,
                        MaintenanceOverlap::Partial | MaintenanceOverlap::Overrun => pdf::MaintenanceOverlap::Partial,
                    },
                }
            })
            .collect(),
        charts: super::sla_charts::charts(fleet, period, analysis, sla, store, latency_charts),
        method: pdf::MethodNote {
            probe_interval_seconds: fleet.probe.interval.as_secs(),
            confirm_after: fleet.confirm_after(sla.customer),
            vantages: analysis.vantages.len().max(1) as u32,
        },
        generated_at: period.now.to_zoned(period.tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
    }
}

/// "2026-10" → "October 2026"; other labels unchanged.
pub fn period_words(label: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    match label.split_once('-') {
        Some((year, month)) if year.len() == 4 && month.len() == 2 => month
            .parse::<usize>()
            .ok()
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
            .map_or(label.to_string(), |name| format!("{name} {year}")),
        _ => label.to_string(),
    }
}

/// A failure class in words a customer understands.
pub fn cause_words(failure: Failure) -> &'static str {
    match failure {
        Failure::DnsNxdomain => "the site's name did not resolve (NXDOMAIN)",
        Failure::DnsServfail => "the nameservers failed (SERVFAIL)",
        Failure::DnsRefused => "the nameservers refused to answer",
        Failure::DnsTimeout => "the nameservers did not answer",
        Failure::DnsWrongAnswer => "DNS pointed to the wrong address",
        Failure::DnsNoData => "DNS had no address for the site",
        Failure::DnsError => "DNS failed",
        Failure::ConnectRefused => "the web servers refused connections",
        Failure::ConnectTimeout => "the web servers could not be reached",
        Failure::ConnectError => "the network to the web servers failed",
        Failure::TlsInvalid => "the TLS certificate was not valid",
        Failure::TlsExpired => "the TLS certificate had expired",
        Failure::Timeout(Phase::FirstByte) => "the site did not answer in time",
        Failure::Timeout(_) => "the site was too slow to load",
        Failure::HttpStatus => "the site answered with an error page",
        Failure::BodyMismatch => "the site showed the wrong content",
        Failure::RedirectLoop | Failure::TooManyRedirects => "the site redirected in a loop",
        Failure::ProtocolError => "the web server sent a broken answer",
        Failure::BannerMismatch => "the service greeted connections with the wrong banner",
    }
}

fn summary_html(period: &Period, slas: &[CustomerSla], rows: &[CreditRow], branding: &Branding) -> String {
    let below: Vec<&CreditRow> = {
        let mut below: Vec<&CreditRow> = rows.iter().filter(|r| !r.met || r.goodwill != "0.00").collect();
        below.sort_by(|a, b| {
            b.total_credit.parse::<f64>().unwrap_or(0.0).total_cmp(&a.total_credit.parse::<f64>().unwrap_or(0.0))
        });
        below
    };
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for s in slas {
        *totals.entry(s.currency.as_str()).or_default() += s.total_credit_cents();
    }
    let totals: Vec<String> = totals.iter().map(|(c, cents)| format!("{c} {}", money(*cents))).collect();
    let met = slas.iter().filter(|s| s.met).count();
    let downtime: i64 = slas.iter().map(|s| s.account.sla_downtime_ms()).sum();
    let mut table = super::table::Table::new(&[
        ("customer", super::table::Align::Left),
        ("name", super::table::Align::Left),
        ("availability", super::table::Align::Right),
        ("target", super::table::Align::Right),
        ("credit", super::table::Align::Right),
        ("goodwill", super::table::Align::Right),
        ("total", super::table::Align::Right),
    ]);
    for r in &below {
        table.push(vec![
            r.customer_id.clone(),
            r.customer.clone(),
            r.availability_percent.map_or("–".into(), |a| format!("{a:.3}%")),
            format!("{}%", r.target_percent),
            format!("{} {}", r.currency, r.credit),
            format!("{} {}", r.currency, r.goodwill),
            format!("{} {}", r.currency, r.total_credit),
        ]);
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>SLA summary {period}</title>\n<style>{css}\
         @media print{{body{{margin:1cm}}}}</style>\n</head>\n<body>\n<h1>{provider}: SLA summary, {period}</h1>\n\
         <p>{count} customers; {met} met their target; {owed} owed a credit. Credits in total: <strong>{totals}</strong>. \
         Downtime outside maintenance, all customers' sites together: {downtime}.</p>\n<h2>Customers owed a credit</h2>\n{table}\
         <p>Per customer: the PDF in this folder. For billing: credits.csv.</p>\n</body>\n</html>\n",
        period = escape_html(&period_words(&period.label)),
        css = super::clusters::CSS,
        provider = escape_html(&branding.provider_name),
        count = slas.len(),
        met = met,
        owed = below.len(),
        totals = escape_html(&if totals.is_empty() { "none".to_string() } else { totals.join(", ") }),
        downtime = duration(downtime),
        table = if below.is_empty() { "<p>None.</p>\n".to_string() } else { table.html() },
    )
}
