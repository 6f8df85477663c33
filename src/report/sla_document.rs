//! The SLA PDF's content: fills the PDF view model from a customer's SLA and renders it; and
//! `summary.html`, one printable page for the account-management team.

use super::ReportError;
use super::pdf::{self, Branding, SlaDocument};
use super::period::Period;
use super::sla::{CreditRow, money};
use super::sla_charts::LatencyCharts;
use super::table::{duration, escape_html};
use crate::analysis::incidents::MaintenanceOverlap;
use crate::analysis::period::Availability;
use crate::analysis::sla::{CustomerSla, minutes};
use crate::fleet::Fleet;
use crate::probe::{Failure, Phase};
use crate::store::Store;

/// One customer's SLA PDF.
pub fn render(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    sla: &CustomerSla,
    branding: &Branding,
    store: &dyn Store,
    latency_charts: &mut LatencyCharts,
) -> Result<Vec<u8>, ReportError> {
    let doc = document(fleet, period, analysis, sla, store, latency_charts);
    pdf::render_sla_pdf(&doc, branding)
        .map_err(|e| ReportError::Render(format!("SLA PDF of {}: {e}", fleet.customers[sla.customer].id)))
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
        downtime_minutes: minutes(sla.downtime_ms),
        maintenance_minutes: minutes(sla.maintenance_downtime_ms),
        site_count: sla.sites.len(),
        downtime_site_minutes: minutes(sla.account.sla_downtime_ms()),
        coverage_percent: sla.coverage.map(|c| c * 100.0),
        min_coverage_percent: sla.needs_review.then_some(sla.min_coverage * 100.0),
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
            vantages: analysis.measuring_vantages().max(1) as u32,
            quorum: analysis.settings.quorum.needed(analysis.measuring_vantages().max(1) as u32),
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
        Failure::RedirectBlocked => "the site redirected visitors to a private or internal address",
        Failure::NotMeasured => "the site was not measured in time (never counted as downtime)",
    }
}

pub fn summary_html(period: &Period, slas: &[CustomerSla], rows: &[CreditRow], branding: &Branding) -> String {
    let below: Vec<&CreditRow> = {
        let mut below: Vec<&CreditRow> = rows.iter().filter(|r| r.total_credit != "0.00").collect();
        below.sort_by(|a, b| {
            b.total_credit.parse::<f64>().unwrap_or(0.0).total_cmp(&a.total_credit.parse::<f64>().unwrap_or(0.0))
        });
        below
    };
    let mut totals: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for s in slas {
        let total = totals.entry(s.currency.as_str()).or_default();
        *total = total.saturating_add(s.total_credit_cents());
    }
    let totals: Vec<String> = totals.iter().map(|(c, cents)| format!("{c} {}", money(*cents))).collect();
    let met = slas.iter().filter(|s| s.met).count();
    let customers_down = slas.iter().filter(|s| s.downtime_ms > 0).count();
    // Rows are the credit lines of `slas`, in the same order.
    let longest = slas.iter().zip(rows).max_by_key(|(s, _)| s.downtime_ms).filter(|(s, _)| s.downtime_ms > 0);
    let mut table = super::table::Table::new(&[
        ("customer", super::table::Align::Left),
        ("name", super::table::Align::Left),
        ("availability", super::table::Align::Right),
        ("target", super::table::Align::Right),
        ("credit", super::table::Align::Right),
        ("goodwill", super::table::Align::Right),
        ("total", super::table::Align::Right),
    ]);
    let mut review = super::table::Table::new(&[
        ("customer", super::table::Align::Left),
        ("name", super::table::Align::Left),
        ("availability", super::table::Align::Right),
        ("coverage", super::table::Align::Right),
        ("why", super::table::Align::Left),
    ]);
    for r in rows.iter().filter(|r| !r.review.is_empty()) {
        review.push(vec![
            r.customer_id.clone(),
            r.customer.clone(),
            r.availability_percent.map_or("–".into(), |a| format!("{a:.3}%")),
            r.coverage_percent.map_or("–".into(), |c| format!("{c:.2}%")),
            r.review.clone(),
        ]);
    }
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
         {downtime}</p>\n<h2>Customers owed a credit</h2>\n{table}{review}\
         <p>Per customer: the PDF in this folder. For billing: credits.csv.</p>\n</body>\n</html>\n",
        period = escape_html(&period_words(&period.label)),
        css = super::clusters::CSS,
        provider = escape_html(&branding.provider_name),
        count = slas.len(),
        met = met,
        owed = below.len(),
        totals = escape_html(&if totals.is_empty() { "none".to_string() } else { totals.join(", ") }),
        downtime = match longest {
            None => "No customer had downtime outside maintenance.".to_string(),
            Some((worst, row)) => format!(
                "{customers_down} customers had downtime outside maintenance (for each, the time in which any of its \
                 sites was down); the longest: {} ({}), {}.",
                escape_html(&row.customer),
                escape_html(&row.customer_id),
                duration(worst.downtime_ms),
            ),
        },
        table = if below.is_empty() { "<p>None.</p>\n".to_string() } else { table.html() },
        review = if review.rows.is_empty() {
            String::new()
        } else {
            format!(
                "<h2>To review before billing</h2>\n<p>Too little of the period was measured to judge these \
                 customers' targets; no credit was computed for them.</p>\n{}",
                review.html()
            )
        },
    )
}
