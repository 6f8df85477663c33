//! Reports: what people read, built from stored results. Last stage of the data flow.

pub mod certs;
pub mod chart;
pub mod clusters;
pub mod incidents;
pub mod latency;
pub mod local_failures;
pub mod metrics;
pub mod notify;
pub mod pdf;
pub mod period;
pub mod render;
pub mod sla;
pub mod sla_charts;
pub mod sla_document;
pub mod status;
pub mod table;

pub use render::{Format, Render, render};

use crate::store::StoreError;

/// Why a report could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// What was asked does not fit the fleet or the data (an unknown cluster, a bad period).
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Period(#[from] period::PeriodError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing an output file or stream.
    #[error("{what}: {source}")]
    Write { what: String, source: std::io::Error },
    /// Drawing a chart or a PDF.
    #[error("{0}")]
    Render(String),
}

impl ReportError {
    /// A write error that names what was being written.
    pub fn write(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ReportError {
        let what = what.to_string();
        move |source| ReportError::Write { what, source }
    }
}

/// A Unix-millisecond time as RFC 3339 UTC, to the second.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map_or_else(|_| ms.to_string(), |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
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
