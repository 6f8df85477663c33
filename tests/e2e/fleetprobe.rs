//! Running the `fleetprobe` binary under test and reading back its results CSV.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::process::wait_for;

/// The header of `fleetprobe results --format csv`, as the CLI contract fixes it.
pub const RESULTS_HEADER: &str = "run_id,run_started_at,vantage,site_id,customer,cluster,hostname,check,outcome,\
http_status,attempts,dns_ms,connect_ms,tls_ms,first_byte_ms,total_ms,cert_expires,detail,run_valid";

pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// The binary under test: the one Cargo built for this test, or `FLEETPROBE_BIN` when set (to
/// run the suite against a release build, or when several work trees share one target folder
/// and the uplifted `target/debug/fleetprobe` may belong to another of them).
pub fn binary() -> PathBuf {
    std::env::var_os("FLEETPROBE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fleetprobe")), PathBuf::from)
}

/// Runs the binary with `args`, killing it if it takes longer than `limit`.
pub fn run(args: &[&str], limit: Duration) -> Ran {
    let started = Instant::now();
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = wait_for(limit, Duration::from_millis(20), || child.try_wait().ok().flatten());
    let status = match status {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fleetprobe {} did not finish within {limit:?}", args.join(" "));
        }
    };
    Ran {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// One row of the results CSV, by column name.
#[derive(Debug, Clone)]
pub struct Row(pub HashMap<String, String>);

impl Row {
    pub fn get(&self, column: &str) -> &str {
        self.0.get(column).map_or("", String::as_str)
    }
}

/// `fleetprobe results -c CONFIG --run latest --format csv -o FILE [FILTERS]`, parsed.
pub fn latest_results(config: &Path, out: &Path, filters: &[&str]) -> Vec<Row> {
    let (config, out_arg) = (config.to_string_lossy(), out.to_string_lossy());
    let mut args = vec!["results", "-c", &config, "--run", "latest", "--format", "csv", "-o", &out_arg];
    args.extend_from_slice(filters);
    let ran = run(&args, Duration::from_secs(30));
    assert!(
        ran.status.success(),
        "fleetprobe {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        ran.status,
        ran.stdout,
        ran.stderr
    );
    let text = std::fs::read_to_string(out).unwrap_or_else(|e| panic!("cannot read {}: {e}", out.display()));
    let header = text.lines().next().unwrap_or_default();
    assert_eq!(header, RESULTS_HEADER, "the results CSV header differs from the CLI contract");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let record = record.unwrap_or_else(|e| panic!("{}: row {} is not CSV: {e}", out.display(), i + 2));
            Row(columns.iter().cloned().zip(record.iter().map(str::to_string)).collect())
        })
        .collect()
}
