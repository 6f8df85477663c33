//! `fleetprobe report sla`: each customer's SLA over a period, as a table, CSV or JSON, or as
//! the monthly SLA PDFs with `credits.csv` and the account managers' summary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{Context, Error, Result};
use crate::analysis::period::Availability;
use crate::analysis::sla::CustomerSla;
use crate::fleet::{CustomerIdx, Fleet};
use crate::report::pdf::Branding;
use crate::report::period::{Period, PeriodSpec};
use crate::report::sla::{CreditRow, CreditsReport, credit_row, credits_csv, pdf_file_name};
use crate::report::sla_charts::LatencyCharts;
use crate::report::sla_document::{render, summary_html};
use crate::report::{Format, render as render_report};
use crate::store::Store;

/// What `report sla` was asked for.
#[derive(Debug, Clone)]
pub struct SlaRequest {
    pub period: PeriodSpec,
    /// One customer, or all of them when `None`.
    pub customer: Option<String>,
    pub format: Format,
    /// A .pdf file (one customer), a directory (all), or a file for `format`.
    pub output: Option<PathBuf>,
    /// Branding and wording of the PDFs; found beside the configuration when not given.
    pub branding: Option<PathBuf>,
    /// The configuration file, to find `reports/branding.toml` beside it.
    pub config_path: Option<PathBuf>,
}

pub fn run(context: &Context, request: &SlaRequest) -> Result<()> {
    let fleet = &context.fleet;
    let period = request.period.resolve_or_last_month().map_err(|e| Error::config(e.to_string()))?;
    let all = request.customer.is_none();
    let customers: Vec<CustomerIdx> = match &request.customer {
        Some(id) => vec![fleet.customers.iter().position(|c| &c.id == id).ok_or_else(|| {
            Error::config(format!("--customer: unknown customer `{id}`; expected a customer_id from the inventory"))
        })?],
        None => (0..fleet.customers.len()).collect(),
    };
    let store = context.open_existing_store()?;
    let analysis = super::analyze::analyze_period(fleet, store.as_ref(), &period)?;
    let slas: Vec<CustomerSla> = customers.iter().map(|&c| analysis.customer_sla(fleet, c)).collect();
    let rows: Vec<CreditRow> = slas.iter().map(|s| credit_row(fleet, &period, s)).collect();

    let pdf_target =
        request.output.as_deref().filter(|o| all || o.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")));
    if let Some(target) = pdf_target {
        let branding = load_branding(request.branding.as_deref(), request.config_path.as_deref())?;
        return write_pdfs(fleet, &period, &analysis, &slas, &rows, target, all, &branding, store.as_ref());
    }
    let mut out = super::output(request.output.as_deref())?;
    render_report(&CreditsReport { rows, period }, request.format, &mut out)
        .and_then(|_| out.flush())
        .map_err(super::write_error("the report"))
}

/// Writes one customer's PDF to `target`, or with `all` one PDF per customer, `credits.csv` and
/// `summary.html` into the directory `target` (a progress bar when a person watches).
#[allow(clippy::too_many_arguments)]
pub fn write_pdfs(
    fleet: &Fleet,
    period: &Period,
    analysis: &Availability,
    slas: &[CustomerSla],
    rows: &[CreditRow],
    target: &Path,
    all: bool,
    branding: &Branding,
    store: &dyn Store,
) -> Result<()> {
    let io = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    if !all {
        let sla = &slas[0];
        if sla.availability.is_none() {
            return Err(Error::store(format!(
                "customer {} has no monitored time in {}; there is nothing to report",
                fleet.customers[sla.customer].id, period.label
            )));
        }
        let bytes = render(fleet, period, analysis, sla, branding, store, &mut LatencyCharts::default())?;
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
    latency_charts.count_checks(fleet, store, slas, period);
    for sla in slas {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let customer = &fleet.customers[sla.customer];
        if sla.availability.is_none() {
            skipped.push(customer.id.clone());
            continue;
        }
        let path = target.join(pdf_file_name(&customer.id, &period.file_label()));
        let bytes = render(fleet, period, analysis, sla, branding, store, &mut latency_charts)?;
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let credits = target.join("credits.csv");
    let mut file = std::fs::File::create(&credits).map_err(|e| io(&credits, e))?;
    credits_csv(rows).write_csv(&mut file).map_err(|e| io(&credits, e))?;
    let summary = target.join("summary.html");
    std::fs::write(&summary, summary_html(period, slas, rows, branding)).map_err(|e| io(&summary, e))?;
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
pub fn load_branding(explicit: Option<&Path>, config_path: Option<&Path>) -> Result<Branding> {
    let found: Option<PathBuf> = explicit.map(Path::to_path_buf).or_else(|| {
        let dir = config_path.and_then(Path::parent).unwrap_or(Path::new("."));
        [dir.join("reports/branding.toml"), dir.join("../reports/branding.toml")].into_iter().find(|p| p.exists())
    });
    Branding::load(found.as_deref()).map_err(|e| Error::config(e.to_string()))
}
