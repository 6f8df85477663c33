//! Reports: what people read, built from stored results. Last stage of the data flow.

pub mod chart;
pub mod clusters;
pub mod latency;
pub mod period;

use crate::cli::CommandError;

/// `fleetprobe report ...`: one variant per report, each in its own module.
#[derive(clap::Subcommand)]
pub enum ReportCommand {
    /// Per-cluster availability, coverage and incidents with the share of customers affected.
    Clusters(clusters::ClustersArgs),
    /// Latency percentiles of a cluster or site as a table, or charts (bands, heatmap, phases, CDF).
    Latency(latency::LatencyArgs),
}

pub fn run(command: &ReportCommand) -> Result<(), CommandError> {
    match command {
        ReportCommand::Clusters(args) => clusters::run(args),
        ReportCommand::Latency(args) => latency::run(args),
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
