//! The monthly SLA PDF: last stage of the data flow for account managers. `analysis` computes a
//! customer's figures for a period; whoever wires `report sla` copies them into the plain view
//! model below ([`SlaDocument`]); [`render_sla_pdf`] turns it and the provider's [`Branding`] into
//! PDF bytes. Nothing here reads the store or the clock.
//!
//! Inside: `text` (fonts, cleaning untrusted strings, measuring), `layout` (pages, tables),
//! `content` (what goes where), `draw` (krilla output).

mod branding;
mod content;
mod draw;
mod layout;
mod text;

use std::path::Path;

pub use branding::{Branding, BrandingError, Colours, Logo, Phrases, Rgb};

/// One customer's SLA report for one period, every field ready to print or a plain number.
/// Strings from the inventory (names, hostnames, contact) are untrusted: the renderer cleans them.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaDocument {
    pub customer_name: String,
    pub customer_id: String,
    pub contact: String,
    pub plan_name: String,
    /// The period as the customer reads it: "October 2026".
    pub period_label: String,
    /// The zone the period and all times below are in: "Europe/Berlin".
    pub time_zone: String,
    /// Overall availability over all sites, site-minutes weighted, in percent (99.87, not
    /// 0.9987); `None` when nothing was monitored in the period.
    pub availability_percent: Option<f64>,
    pub target_percent: f64,
    pub met: bool,
    /// Time in which any of the customer's sites was down outside maintenance (wall clock):
    /// what the availability counts.
    pub downtime_minutes: i64,
    /// Time in which any site was down inside maintenance windows: shown, excluded.
    pub maintenance_minutes: i64,
    /// Sites monitored, and their downtime outside maintenance added up site by site; the PDF
    /// says so beside the wall-clock figure when there are several sites.
    pub site_count: usize,
    pub downtime_site_minutes: i64,
    /// Share of the period with a valid probe run, in percent; `None` when unknown.
    pub coverage_percent: Option<f64>,
    /// The coverage a verdict needs, in percent, when the period was measured less than that:
    /// no verdict and no automatic credit, the customer is marked for review.
    pub min_coverage_percent: Option<f64>,
    /// The plan's credit, when a tier was reached.
    pub credit: Option<CreditLine>,
    /// Credits granted per incident, listed apart from the plan's credit.
    pub goodwill: Vec<GoodwillLine>,
    pub sites: Vec<SiteRow>,
    pub incidents: Vec<IncidentRow>,
    /// Charts in the order they are printed (daily availability, latency, ...).
    pub charts: Vec<SvgChart>,
    pub method: MethodNote,
    /// When the report was made, formatted: "2026-11-01 06:00 CET".
    pub generated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreditLine {
    /// The tier reached, in words: "below 99.9%".
    pub tier: String,
    pub percent: f64,
    /// In the currency's minor unit (cents).
    pub amount_cents: i64,
    /// ISO 4217 code: "EUR".
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GoodwillLine {
    pub incident_id: String,
    /// What was granted, in words: "one month free after the fra-1 storage failure".
    pub text: String,
    pub amount_cents: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SiteRow {
    pub site_id: String,
    pub hostname: String,
    pub cluster: String,
    /// In percent; `None` when the site was never monitored in the period.
    pub availability_percent: Option<f64>,
    pub downtime_minutes: i64,
    pub maintenance_minutes: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub id: String,
    /// Formatted in the report's time zone: "2026-10-14 03:12".
    pub start: String,
    pub end: String,
    pub duration_minutes: i64,
    /// The failure in words: "web server answered 503".
    pub cause: String,
    pub cluster: String,
    pub in_maintenance: MaintenanceOverlap,
}

/// How much of an incident fell inside an announced maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceOverlap {
    None,
    Partial,
    Full,
}

/// A chart as SVG, e.g. from `report::chart::render_svg`; its text is drawn with the embedded
/// DejaVu Sans.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgChart {
    /// Printed as a heading above the chart; empty when the SVG carries its own title.
    pub title: String,
    /// What the chart shows, in a sentence with its key figures: the text alternative a screen
    /// reader speaks instead of the picture ("Availability per day, 1 to 31 October: lowest
    /// 99.28 % on 14 October; target 99.9 %"). When empty, the title stands in.
    pub description: String,
    pub svg: String,
}

/// The numbers behind "How availability is measured".
#[derive(Debug, Clone, PartialEq)]
pub struct MethodNote {
    pub probe_interval_seconds: u64,
    /// Consecutive failed runs that confirm an outage.
    pub confirm_after: u32,
    /// Probers (monitoring locations) whose runs count.
    pub vantages: u32,
    /// Of `vantages`, how many must see a site fail for it to count as down.
    pub quorum: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("chart {index} ({title:?}) is not a usable SVG: {message}")]
    Chart { index: usize, title: String, message: String },
    #[error("the provider's logo cannot be drawn: {0}")]
    Logo(String),
    #[error("the embedded fonts cannot be read")]
    Fonts,
    #[error("writing the PDF failed: {0}")]
    Pdf(String),
}

/// Renders one customer's SLA report. Lays out every page first, then draws them, so each page
/// can say "Page i of n".
pub fn render_sla_pdf(doc: &SlaDocument, branding: &Branding) -> Result<Vec<u8>, PdfError> {
    let fonts = text::Fonts::load().ok_or(PdfError::Fonts)?;
    let assets = draw::Assets::prepare(doc, branding)?;
    let (pages, structure) = content::lay_out(doc, branding, &fonts, &assets);
    draw::draw(&pages, &structure, doc, branding, &fonts, &assets)
}

/// Writes a small report from fixed example data with the given branding: for demos, and to
/// see what a branding change looks like.
pub fn write_example_pdf(path: &Path, branding: &Branding) -> Result<(), PdfError> {
    let bytes = render_sla_pdf(&example_document(), branding)?;
    std::fs::write(path, bytes).map_err(|e| PdfError::Pdf(format!("{}: {e}", path.display())))
}

/// Fixed example data: a customer on two clusters who missed the target in one incident.
pub fn example_document() -> SlaDocument {
    let site = |id: &str, host: &str, cluster: &str, availability: f64, down: i64, maintenance: i64| SiteRow {
        site_id: id.to_string(),
        hostname: host.to_string(),
        cluster: cluster.to_string(),
        availability_percent: Some(availability),
        downtime_minutes: down,
        maintenance_minutes: maintenance,
    };
    let incident = |id: &str, start: &str, end: &str, minutes: i64, cause: &str, cluster: &str, m| IncidentRow {
        id: id.to_string(),
        start: start.to_string(),
        end: end.to_string(),
        duration_minutes: minutes,
        cause: cause.to_string(),
        cluster: cluster.to_string(),
        in_maintenance: m,
    };
    SlaDocument {
        customer_name: "Alpenrose Bakery & Café GmbH".to_string(),
        customer_id: "c0042".to_string(),
        contact: "it@alpenrose.example".to_string(),
        plan_name: "Business".to_string(),
        period_label: "October 2026".to_string(),
        time_zone: "Europe/Berlin".to_string(),
        availability_percent: Some(99.8712),
        target_percent: 99.9,
        met: false,
        downtime_minutes: 200,
        maintenance_minutes: 120,
        site_count: 4,
        downtime_site_minutes: 290,
        coverage_percent: Some(99.97),
        min_coverage_percent: None,
        credit: Some(CreditLine {
            tier: "below 99.9%".to_string(),
            percent: 10.0,
            amount_cents: 200,
            currency: "EUR".to_string(),
        }),
        goodwill: vec![GoodwillLine {
            incident_id: "fra-1-2026-10-14".to_string(),
            text: "One month free for every customer hit by the fra-1 storage failure".to_string(),
            amount_cents: 1990,
            currency: "EUR".to_string(),
        }],
        sites: vec![
            site("c0042-s1", "www.alpenrose.example", "fra-1", 99.5968, 180, 0),
            site("c0042-s2", "shop.alpenrose.example", "fra-1", 99.7984, 90, 60),
            site("c0042-s3", "blog.alpenrose.example", "ams-1", 100.0, 0, 60),
            site("c0042-s4", "alpenrose-catering-and-events.example", "ams-1", 99.9552, 20, 0),
        ],
        incidents: vec![
            incident(
                "fra-1-2026-10-14",
                "2026-10-14 03:12",
                "2026-10-14 06:12",
                180,
                "storage failure: web servers answered 503",
                "fra-1",
                MaintenanceOverlap::None,
            ),
            incident(
                "ams-1-2026-10-21",
                "2026-10-21 22:00",
                "2026-10-22 00:20",
                140,
                "planned upgrade overran: connections refused",
                "ams-1",
                MaintenanceOverlap::Partial,
            ),
        ],
        charts: vec![SvgChart {
            title: "Daily availability".to_string(),
            description: "Availability per day, 1 to 31 October: lowest 99.28 % on 14 October; target 99.9 %"
                .to_string(),
            svg: example_chart_svg(),
        }],
        method: MethodNote { probe_interval_seconds: 60, confirm_after: 2, vantages: 2, quorum: 2 },
        generated_at: "2026-11-01 06:00 CET".to_string(),
    }
}

/// A daily availability bar chart in the shape plotters writes (`<text font-family="sans-serif">`).
fn example_chart_svg() -> String {
    let (width, height) = (640.0, 220.0);
    let (left, right, top, bottom) = (56.0, 12.0, 16.0, 34.0);
    let plot_height = height - top - bottom;
    let days = 31;
    let slot = (width - left - right) / f64::from(days);
    let scale = |percent: f64| top + (100.0 - percent) / 1.0 * plot_height; // 99..100 % axis
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">"##
    );
    for (i, label) in ["100.0%", "99.5%", "99.0%"].iter().enumerate() {
        let y = top + plot_height * i as f64 / 2.0;
        svg += &format!(
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#d5dbe3" stroke-width="1"/>"##,
            width - right
        );
        svg += &format!(
            r##"<text x="{}" y="{}" font-family="sans-serif" font-size="11" text-anchor="end" fill="#5f6b7a">{label}</text>"##,
            left - 6.0,
            y + 4.0
        );
    }
    for day in 0..days {
        let availability: f64 = match day {
            13 => 99.28,
            20 => 99.51,
            21 => 99.86,
            _ => 100.0,
        };
        let x = left + f64::from(day) * slot + 2.0;
        let y = scale(availability.max(99.0));
        let colour = if availability < 99.9 { "#b42b1f" } else { "#1e7b4a" };
        let bar = (top + plot_height - y).max(1.0);
        svg +=
            &format!(r##"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bar:.1}" fill="{colour}"/>"##, slot - 4.0);
        if day % 5 == 0 {
            svg += &format!(
                r##"<text x="{:.1}" y="{}" font-family="sans-serif" font-size="11" text-anchor="middle" fill="#5f6b7a">{}</text>"##,
                x + (slot - 4.0) / 2.0,
                height - bottom + 16.0,
                day + 1
            );
        }
    }
    svg += "</svg>";
    svg
}
