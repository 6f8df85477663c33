//! `fleetprobe results`: stored results, one row per check, as an aligned table or as the CSV
//! that `fleetprobe import` reads back.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use super::{Context, Error, Result};
use crate::store::{self, ResultFilter, StoredResult};

/// Which results to list, and how.
#[derive(Debug, Clone, Default)]
pub struct ResultsRequest {
    /// A run id, or `latest`.
    pub run: Option<String>,
    pub site: Option<String>,
    pub cluster: Option<String>,
    pub failed: bool,
    pub limit: Option<usize>,
    /// CSV instead of the aligned table.
    pub csv: bool,
    pub output: Option<PathBuf>,
}

/// `fleetprobe results`: stored results as a table or CSV.
pub fn list(context: &Context, args: &ResultsRequest) -> Result<()> {
    let store = context.open_existing_store()?;
    let runs = store.runs(None, None)?;
    let run_id = match args.run.as_deref() {
        None => None,
        Some("latest") => Some(runs.last().map(|r| r.id).ok_or_else(|| Error::store("the store holds no runs yet"))?),
        Some(text) => {
            Some(text.parse().map_err(|_| Error::config(format!("--run `{text}`: expected a run id or `latest`")))?)
        }
    };
    if let Some(cluster) = &args.cluster {
        context.cluster(cluster)?;
    }
    let vantages: HashMap<i64, (String, i64, bool)> =
        runs.iter().map(|r| (r.id, (r.vantage.clone(), r.started_at_ms, r.valid))).collect();
    let filter = ResultFilter {
        run_id,
        site_id: args.site.clone(),
        cluster: args.cluster.clone(),
        failed_only: args.failed,
        limit: args.limit,
        ..ResultFilter::default()
    };
    let sink = super::output(args.output.as_deref())?;
    let write_error = super::write_error("results");
    // A CSV error is an I/O error underneath (a closed pipe, a full disk).
    let csv_error = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => write_error(io),
        other => Error::internal(format!("writing results: {other:?}")),
    };
    if args.csv {
        let mut csv = csv::Writer::from_writer(sink);
        csv.write_record(RESULT_COLUMNS).map_err(csv_error)?;
        let mut output_failed = None;
        let read = store.results(&filter, &mut |r| {
            let row = result_row(&r, &vantages);
            csv.write_record(row.iter().map(|c| crate::report::csv_safe(c).into_owned())).map_err(|e| {
                let message = e.to_string();
                output_failed = Some(e);
                store::StoreError::Query { path: "output".into(), message }
            })
        });
        if let Some(e) = output_failed {
            return Err(csv_error(e));
        }
        read?;
        csv.flush().map_err(&write_error)?;
    } else {
        let mut rows = Vec::new();
        store
            .results(&filter, &mut |r| {
                rows.push(result_row(&r, &vantages));
                Ok(())
            })
            .map_err(|e| Error::store(e.to_string()))?;
        let mut out = sink;
        // run, start, site, customer, cluster, check, outcome, status, total, detail
        let shown = [0usize, 1, 3, 4, 5, 7, 8, 9, 15, 17];
        let mut widths: Vec<usize> = shown.iter().map(|&i| RESULT_COLUMNS[i].len()).collect();
        for row in &rows {
            for (w, &i) in widths.iter_mut().zip(&shown) {
                *w = (*w).max(row[i].chars().count().min(60));
            }
        }
        let line = |cells: Vec<&str>| {
            cells.iter().zip(&widths).map(|(c, &w)| format!("{:<w$}", truncate(c, 60))).collect::<Vec<_>>().join("  ")
        };
        writeln!(out, "{}", line(shown.iter().map(|&i| RESULT_COLUMNS[i]).collect()).trim_end())
            .map_err(&write_error)?;
        for row in &rows {
            writeln!(out, "{}", line(shown.iter().map(|&i| row[i].as_str()).collect()).trim_end())
                .map_err(&write_error)?;
        }
        if rows.is_empty() {
            writeln!(out, "(no results match)").map_err(&write_error)?;
        }
        out.flush().map_err(&write_error)?;
    }
    Ok(())
}

const RESULT_COLUMNS: [&str; 19] = [
    "run_id",
    "run_started_at",
    "vantage",
    "site_id",
    "customer",
    "cluster",
    "hostname",
    "check",
    "outcome",
    "http_status",
    "attempts",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "first_byte_ms",
    "total_ms",
    "cert_expires",
    "detail",
    // Last, so the columns before it keep their places: whether the run counts (`import` keeps it).
    "run_valid",
];

fn result_row(r: &StoredResult, runs: &HashMap<i64, (String, i64, bool)>) -> Vec<String> {
    let ms = |us: Option<u32>| us.map_or(String::new(), |us| format!("{:.3}", f64::from(us) / 1000.0));
    let (vantage, run_start, valid) = runs.get(&r.run_id).cloned().unwrap_or_default();
    vec![
        r.run_id.to_string(),
        crate::report::format_ms(run_start),
        vantage,
        r.site.id.clone(),
        r.site.customer.clone(),
        r.site.cluster.clone(),
        r.site.hostname.clone(),
        r.check.to_string(),
        r.outcome.to_string(),
        r.http_status.map_or(String::new(), |s| s.to_string()),
        r.attempts.to_string(),
        ms(r.timings.dns_us),
        ms(r.timings.connect_us),
        ms(r.timings.tls_us),
        ms(r.timings.first_byte_us),
        ms(Some(r.timings.total_us)),
        r.cert_not_after
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map_or(String::new(), |t| t.strftime("%Y-%m-%d").to_string()),
        r.detail.clone().unwrap_or_default(),
        valid.to_string(),
    ]
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}
