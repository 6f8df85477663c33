//! `fleetprobe import`: loads results from CSV (backfills, another monitor's history, tests).
//!
//! The format is what `fleetprobe results --format csv` writes; only `run_started_at`,
//! `site_id`, `check` and `outcome` are required. Rows with the same vantage and run start form
//! one run. Every row is validated first and all problems are reported together; nothing is
//! written unless the whole file is valid. Each run is then stored in its own transaction.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::{Context, Error, ErrorKind, Result};
use crate::fleet::{FleetError, FleetErrors, SiteIdx};
use crate::probe::{CheckKind, CheckResult, Outcome, Timings};
use crate::store::{self, RunMeta, RunSummary};

const REQUIRED: [&str; 4] = ["run_started_at", "site_id", "check", "outcome"];

/// A run to be written: its results, in file order.
struct PendingRun {
    valid: bool,
    results: Vec<CheckResult>,
}

/// Validates `file` against the fleet and stores its runs; rows without a `vantage` column get
/// `vantage`, rows without a `run_valid` value get `valid` (none given: such rows are refused,
/// so that invalid runs are never imported as valid ones).
pub fn run(context: &Context, file: &Path, vantage: &str, valid: Option<bool>) -> Result<()> {
    let fleet = &context.fleet;
    let runs = read(file, fleet, vantage, valid).map_err(|e| Error::config(format!("nothing imported:\n{e}")))?;
    let location = &context.store;
    let _lock = match store::lock_path(location) {
        Some(path) => Some(store::RunLock::acquire(&path).map_err(|e| Error::new(ErrorKind::Locked, e.to_string()))?),
        None => None,
    };
    let mut store = store::open(location).map_err(|e| Error::store(e.to_string()))?;
    let existing: HashSet<(String, i64)> = store
        .runs(None, None)
        .map_err(|e| Error::store(e.to_string()))?
        .into_iter()
        .map(|r| (r.vantage, r.started_at_ms))
        .collect();
    let clash: Vec<String> = runs
        .keys()
        .filter(|k| existing.contains(*k))
        .map(|(v, ms)| format!("{} by {v}", crate::report::format_ms(*ms)))
        .take(5)
        .collect();
    if !clash.is_empty() {
        return Err(Error::store(format!(
            "nothing imported: the store already holds runs at {} (import each run once)",
            clash.join(", ")
        )));
    }
    let sites = store::site_records(fleet);
    let (mut run_count, mut result_count) = (0, 0);
    for ((vantage, started_at_ms), run) in runs {
        let meta = RunMeta { vantage, started_at_ms };
        let mut writer = store.begin_run(&meta, &sites).map_err(|e| Error::store(e.to_string()))?;
        let mut latencies = store::histogram::RunLatencies::default();
        let mut failures = 0;
        for result in &run.results {
            writer.insert(result).map_err(|e| Error::store(e.to_string()))?;
            latencies.record(fleet.sites[result.site].cluster, result);
            failures += u64::from(!result.outcome.is_ok());
        }
        let last_start = run.results.iter().map(|r| r.started_at_ms).max().unwrap_or(started_at_ms);
        let summary = RunSummary {
            finished_at_ms: last_start.max(started_at_ms),
            valid: run.valid,
            invalid_reason: (!run.valid).then(|| "imported as invalid".to_string()),
            checks: run.results.len() as u64,
            failures,
        };
        let records = latencies.into_records(fleet);
        writer.finish(&summary, &records).map_err(|e| Error::store(e.to_string()))?;
        run_count += 1;
        result_count += run.results.len();
    }
    eprintln!("imported {result_count} results in {run_count} runs from {}", file.display());
    Ok(())
}

/// Reads and validates the whole file; runs keyed by (vantage, start), in time order.
fn read(
    path: &Path,
    fleet: &crate::fleet::Fleet,
    default_vantage: &str,
    default_valid: Option<bool>,
) -> std::result::Result<BTreeMap<(String, i64), PendingRun>, FleetErrors> {
    let mut errors = FleetErrors::default();
    let text = std::fs::read_to_string(path)
        .map_err(|e| FleetErrors::one(FleetError::file(path, format!("cannot read: {e}"))))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| FleetErrors::one(FleetError::at(path, Some(1), "header", format!("unreadable header: {e}"))))?
        .clone();
    let column: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h, i)).collect();
    for required in REQUIRED {
        if !column.contains_key(required) {
            errors.push(FleetError::at(
                path,
                Some(1),
                "header",
                format!("missing column `{required}`; expected at least {}", REQUIRED.join(",")),
            ));
        }
    }
    if !column.contains_key("run_valid") && default_valid.is_none() {
        errors.push(FleetError::at(
            path,
            Some(1),
            "header",
            "missing column `run_valid`: whether each run counts is not known; \
             add the column (true or false) or pass --valid yes|no",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let site_index: HashMap<&str, SiteIdx> = fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut runs: BTreeMap<(String, i64), PendingRun> = BTreeMap::new();
    let mut seen: HashMap<(String, i64, SiteIdx, CheckKind), u64> = HashMap::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                errors.push(FleetError {
                    file: path.to_path_buf(),
                    line: e.position().map(|p| p.line()),
                    field: None,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, |p| p.line());
        let get = |name: &str| column.get(name).and_then(|&i| row.get(i)).unwrap_or("");
        let before = errors.len();
        let mut err = |field: &str, message: String| errors.push(FleetError::at(path, Some(line), field, message));
        let started_at_ms = match get("run_started_at").parse::<jiff::Timestamp>() {
            Ok(t) => t.as_millisecond(),
            Err(_) => {
                err(
                    "run_started_at",
                    format!("`{}` is not a UTC time; expected e.g. 2026-10-01T00:00:00Z", get("run_started_at")),
                );
                0
            }
        };
        let site = site_index.get(get("site_id")).copied();
        if site.is_none() {
            err("site_id", format!("unknown site `{}`; expected a site of the configured inventory", get("site_id")));
        }
        let check = CheckKind::parse(get("check"));
        if check.is_none() {
            err("check", format!("`{}` is not a check; expected http or dns", get("check")));
        }
        let outcome = match get("outcome") {
            "ok" => Some(Outcome::Ok),
            other => crate::probe::Failure::parse(other).map(Outcome::Failed),
        };
        if outcome.is_none() {
            err(
                "outcome",
                format!("`{}` is not an outcome; expected ok or a failure class such as http_status", get("outcome")),
            );
        }
        let valid = match get("run_valid") {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            "" => default_valid.unwrap_or_else(|| {
                err("run_valid", "empty; expected true or false (or pass --valid yes|no)".to_string());
                true
            }),
            other => {
                err("run_valid", format!("`{other}` is not true or false"));
                true
            }
        };
        let mut number = |field: &str, max: f64| -> Option<f64> {
            match get(field) {
                "" => None,
                text => match text.parse::<f64>() {
                    Ok(v) if (0.0..=max).contains(&v) => Some(v),
                    _ => {
                        err(field, format!("`{text}` is not a number from 0 to {max}"));
                        None
                    }
                },
            }
        };
        let micros = |ms: Option<f64>| ms.map(|v| (v * 1000.0).round() as u32);
        let http_status = number("http_status", 999.0).map(|v| v as u16);
        let attempts = number("attempts", 255.0).map_or(1, |v| v as u8);
        let timings = Timings {
            dns_us: micros(number("dns_ms", 3_600_000.0)),
            connect_us: micros(number("connect_ms", 3_600_000.0)),
            tls_us: micros(number("tls_ms", 3_600_000.0)),
            first_byte_us: micros(number("first_byte_ms", 3_600_000.0)),
            total_us: micros(number("total_ms", 3_600_000.0)).unwrap_or(0),
        };
        let cert_not_after = match get("cert_expires") {
            "" => None,
            text => match text.parse::<jiff::civil::Date>() {
                Ok(d) => d.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp().as_second()),
                Err(_) => {
                    errors.push(FleetError::at(
                        path,
                        Some(line),
                        "cert_expires",
                        format!("`{text}` is not a date; expected e.g. 2027-03-01"),
                    ));
                    None
                }
            },
        };
        let vantage = Some(get("vantage")).filter(|v| !v.is_empty()).unwrap_or(default_vantage).to_string();
        if errors.len() != before {
            continue;
        }
        let (Some(site), Some(check), Some(outcome)) = (site, check, outcome) else { continue };
        if let Some(first) = seen.insert((vantage.clone(), started_at_ms, site, check), line) {
            errors.push(FleetError::at(
                path,
                Some(line),
                "site_id",
                format!("a second {check} result for this site in the same run (first on line {first})"),
            ));
            continue;
        }
        let detail = Some(get("detail")).filter(|d| !d.is_empty()).map(str::to_string);
        let run = runs.entry((vantage, started_at_ms)).or_insert(PendingRun { valid, results: Vec::new() });
        run.valid &= valid;
        run.results.push(CheckResult {
            site,
            check,
            outcome,
            started_at_ms,
            attempts,
            http_status,
            timings,
            cert_not_after,
            cert_issuer: None,
            detail,
        });
    }
    if runs.is_empty() && errors.is_empty() {
        errors.push(FleetError::file(path, "no rows; expected a header line and one row per result"));
    }
    if errors.is_empty() { Ok(runs) } else { Err(errors) }
}
