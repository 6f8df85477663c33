//! Writes the example SLA PDF, to see what a branding change looks like, and times rendering:
//!
//! ```sh
//! cargo run --release --example sla_pdf -- example.pdf reports      # with reports/branding.toml
//! cargo run --release --example sla_pdf -- example.pdf - 1000       # built-in branding, 1000 renders
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use fleetprobe::report::pdf::{Branding, example_document, render_sla_pdf};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: sla_pdf OUT.pdf [BRANDING_DIR|-] [RENDERS]");
        return ExitCode::from(2);
    };
    let branding = match args.get(1).map(String::as_str) {
        None | Some("-") => Ok(Branding::default()),
        Some(dir) => Branding::load(Some(Path::new(dir))),
    };
    let branding = match branding {
        Ok(branding) => branding,
        Err(e) => {
            eprintln!("sla_pdf: {e}");
            return ExitCode::from(2);
        }
    };
    let renders: u32 = match args.get(2).map(|n| n.parse()) {
        None => 1,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("sla_pdf: RENDERS must be a positive number");
            return ExitCode::from(2);
        }
    };
    let doc = example_document();
    let started = Instant::now();
    let mut bytes = Vec::new();
    for _ in 0..renders {
        bytes = match render_sla_pdf(&doc, &branding) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("sla_pdf: {e}");
                return ExitCode::FAILURE;
            }
        };
    }
    let elapsed = started.elapsed();
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("sla_pdf: {out}: {e}");
        return ExitCode::FAILURE;
    }
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "wrote {out} ({} bytes); {renders} render(s) in {:.2} s, {:.1} ms each; peak RSS {peak}",
        bytes.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / f64::from(renders)
    );
    ExitCode::SUCCESS
}
