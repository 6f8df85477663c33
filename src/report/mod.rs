//! Reports: what people read, built from stored results. Last stage of the data flow.

pub mod availability;
pub mod chart;
pub mod clusters;
pub mod incidents;
pub mod latency;
pub mod pdf;
pub mod period;
pub mod sla;
pub mod sla_charts;
pub mod sla_pdf_output;
pub mod status;
pub mod table;

use crate::cli::CommandError;

/// `fleetprobe report ...`: one variant per report, each in its own module.
#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Per-cluster availability, coverage and incidents with the share of customers affected.
    Clusters(clusters::ClustersArgs),
    /// Incidents: when, how long, how many customers, which failures; filter by cluster and scope.
    Incidents(incidents::IncidentsArgs),
    /// The customers and sites one incident hit, with contacts and downtime, as CSV.
    Affected(incidents::AffectedArgs),
    /// SLA per customer: availability against the plan's target, credits; PDFs and credits.csv.
    Sla(sla::SlaArgs),
    /// Latency percentiles of a cluster or site as a table, or charts (bands, heatmap, phases, CDF).
    Latency(latency::LatencyArgs),
    /// The public status page: a static site (index.html, feed.atom) with state, history, incidents.
    Status(status::StatusArgs),
}

pub fn run(command: &ReportCommand) -> Result<(), CommandError> {
    match command {
        ReportCommand::Clusters(args) => clusters::run(args),
        ReportCommand::Latency(args) => latency::run(args),
        ReportCommand::Incidents(args) => incidents::run_incidents(args),
        ReportCommand::Affected(args) => incidents::run_affected(args),
        ReportCommand::Sla(args) => sla::run(args),
        ReportCommand::Status(args) => status::run(args),
    }
}

/// Opens the store for a report; a store that does not exist yet is an error, not a new file.
pub fn open_existing_store(
    fleet: &crate::fleet::Fleet,
    args: &crate::cli::StoreArgs,
) -> Result<Box<dyn crate::store::Store>, CommandError> {
    let location = crate::cli::store_location(fleet, args)?;
    if let crate::fleet::StoreLocation::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(CommandError::store(format!(
            "store {} does not exist yet; run `fleetprobe probe` first",
            path.display()
        )));
    }
    crate::store::open(&location).map_err(|e| CommandError::store(e.to_string()))
}

/// Standard output, or the file given with `-o`.
pub fn output(path: Option<&std::path::Path>) -> Result<Box<dyn std::io::Write>, CommandError> {
    match path {
        None => Ok(Box::new(std::io::BufWriter::new(std::io::stdout().lock()))),
        Some(path) => std::fs::File::create(path)
            .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write>)
            .map_err(|e| CommandError::internal(format!("{}: {e}", path.display()))),
    }
}

/// Makes a CSV cell safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`, `@` or a
/// tab/CR would be run as a formula, so it gets a leading apostrophe (the OWASP advice).
pub fn csv_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let numeric = cell.parse::<f64>().is_ok();
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') if !numeric => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::csv_safe;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(csv_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(csv_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_safe("-1.5"), "-1.5");
        assert_eq!(csv_safe("+cmd"), "'+cmd");
        assert_eq!(csv_safe("plain"), "plain");
        assert_eq!(csv_safe(""), "");
    }
}
