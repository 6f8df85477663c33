//! Cluster report time and memory over a generated history.
//!
//! `cargo bench --bench report -- [SITES] [DAYS]` (default 1000 sites, 7 days of one-minute
//! runs; one customer per site). The history is written through the store API like real runs
//! (HTTP results only, every 97th site down for 30 minutes each day), then `report clusters` is
//! built over it twice, and the SLA PDFs of every customer are written as `report sla --all` does.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use fleetprobe::fleet::{Fleet, StoreLocation};
use fleetprobe::probe::{CheckKind, CheckResult, Failure, Outcome, Timings};
use fleetprobe::report::{availability, clusters, period::PeriodArgs};
use fleetprobe::store::{self, RunMeta, RunSummary, SiteRecord};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let sites: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let days: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    let dir = tempfile::tempdir().expect("temporary directory");
    let fleet = Arc::new(write_fleet(dir.path(), sites));
    let location = StoreLocation::Sqlite(dir.path().join("history.db"));
    let start_ms = "2026-10-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let runs = days * 1440;

    let generating = Instant::now();
    {
        let mut store = store::open(&location).expect("store");
        let records: Vec<SiteRecord> = fleet
            .sites
            .iter()
            .map(|s| SiteRecord {
                id: s.id.clone(),
                customer: fleet.customers[s.customer].id.clone(),
                cluster: fleet.clusters[s.cluster].name.clone(),
                hostname: s.hostname.clone(),
            })
            .collect();
        for run in 0..runs {
            let at = start_ms + run * 60_000;
            let minute_of_day = run % 1440;
            let mut writer =
                store.begin_run(&RunMeta { vantage: "bench".into(), started_at_ms: at }, &records).expect("run");
            let mut failures = 0;
            for site in 0..sites {
                let down = site % 97 == 0 && (600..630).contains(&minute_of_day);
                failures += u64::from(down);
                let result = CheckResult {
                    site,
                    check: CheckKind::Http,
                    outcome: if down { Outcome::Failed(Failure::HttpStatus) } else { Outcome::Ok },
                    started_at_ms: at,
                    attempts: 1,
                    http_status: Some(if down { 503 } else { 200 }),
                    timings: Timings {
                        connect_us: Some(150),
                        first_byte_us: Some(900),
                        total_us: 1200,
                        ..Timings::default()
                    },
                    cert_not_after: None,
                    detail: None,
                };
                writer.insert(&result).expect("insert");
            }
            let summary = RunSummary {
                finished_at_ms: at + 1000,
                valid: true,
                invalid_reason: None,
                checks: sites as u64,
                failures,
            };
            writer.finish(&summary, &[]).expect("commit");
        }
    }
    let generated = generating.elapsed();
    let bytes = std::fs::metadata(dir.path().join("history.db")).map(|m| m.len()).unwrap_or(0);
    let results = runs as u64 * sites as u64;
    println!(
        "history: {sites} sites × {days} days of one-minute runs = {results} results, written in {:.1} s ({:.1} µs/result), {:.1} MB on disk ({:.1} bytes/result)",
        generated.as_secs_f64(),
        generated.as_micros() as f64 / results as f64,
        bytes as f64 / 1e6,
        bytes as f64 / results as f64
    );

    let period = PeriodArgs {
        from: Some("2026-10-01".into()),
        to: Some(format!("2026-10-{:02}", 1 + days)),
        tz: "UTC".into(),
        now: Some(format!("2026-10-{:02}T00:00:00Z", 1 + days).parse().unwrap()),
        ..PeriodArgs::default()
    }
    .resolve("7d")
    .expect("period");
    // Baseline: every stored row streamed through the generic results read, nothing else done.
    let started = Instant::now();
    let mut rows = 0u64;
    store::open(&location)
        .expect("store")
        .results(
            &fleetprobe::store::ResultFilter {
                from_ms: Some(period.start_ms()),
                to_ms: Some(period.end_ms()),
                ..Default::default()
            },
            &mut |_| {
                rows += 1;
                Ok(())
            },
        )
        .expect("results");
    let baseline = started.elapsed().as_secs_f64();
    println!("baseline, every row read through `results`: {baseline:.2} s for {rows} rows");
    let rss_before = peak_rss_kb();
    for attempt in 1..=2 {
        let started = Instant::now();
        let store = store::open(&location).expect("store");
        let analysis = availability::analyze(
            &fleet,
            store.as_ref(),
            period.start_ms(),
            period.end_ms(),
            period.now.as_millisecond(),
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        let report = clusters::build(&fleet, &period, &analysis);
        let expected_incidents = days as usize * fleet.clusters.len();
        assert_eq!(report.incidents.len(), expected_incidents, "one incident per cluster and day");
        let took = started.elapsed().as_secs_f64();
        println!(
            "report clusters, attempt {attempt}: {took:.2} s ({:.0} k results/s, {:.2} × the baseline), {} incidents",
            results as f64 / took / 1000.0,
            took / baseline,
            report.incidents.len()
        );
    }
    println!(
        "peak RSS after the cluster reports: {:.1} MB (before them: {:.1} MB)",
        peak_rss_kb() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );

    // Every customer's SLA PDF, credits.csv and the summary, as `report sla --all -o DIR` does.
    let started = Instant::now();
    let store = store::open(&location).expect("store");
    let analysis =
        availability::analyze(&fleet, store.as_ref(), period.start_ms(), period.end_ms(), period.now.as_millisecond())
            .unwrap_or_else(|e| panic!("{}", e.message));
    let slas: Vec<_> = (0..fleet.customers.len())
        .map(|c| {
            fleetprobe::analysis::sla::customer_sla(
                &fleet,
                c,
                &analysis.accounts,
                &analysis.incidents,
                &fleet.goodwill,
                &analysis.elapsed,
            )
        })
        .collect();
    let rows: Vec<_> = slas.iter().map(|s| fleetprobe::report::sla::credit_row(&fleet, &period, s)).collect();
    let out = dir.path().join("sla");
    let branding = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    fleetprobe::report::sla_pdf_output::write(
        &fleet,
        &period,
        &analysis,
        &slas,
        &rows,
        &out,
        true,
        Some(&branding),
        None,
        store.as_ref(),
    )
    .unwrap_or_else(|e| panic!("{}", e.message));
    let pdfs = std::fs::read_dir(&out)
        .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pdf"))).count())
        .unwrap_or(0);
    let took = started.elapsed().as_secs_f64();
    println!(
        "SLA PDFs: {pdfs} customers in {took:.1} s ({:.1} ms each, analysis included), peak RSS {:.1} MB",
        took * 1000.0 / pdfs.max(1) as f64,
        peak_rss_kb() as f64 / 1024.0
    );
}

fn write_fleet(dir: &std::path::Path, sites: usize) -> Fleet {
    let mut config = String::from(
        "[inventory]\nsites = \"sites.csv\"\ncustomers = \"customers.csv\"\n\n[[plan]]\nname = \"p\"\ntarget = 99.9\n\
         credits = [{ below = 99.9, credit = 10 }, { below = 99.0, credit = 25 }]\n",
    );
    for c in 0..4 {
        let _ = write!(config, "\n[[cluster]]\nname = \"c{c}\"\n");
    }
    let mut customers = String::from("customer_id,name,plan,monthly_fee\n");
    let mut rows = String::from("site_id,customer,cluster,hostname,checks\n");
    for i in 0..sites {
        let _ = writeln!(customers, "k{i},Customer {i},p,10");
        let _ = writeln!(rows, "s{i},k{i},c{},s{i}.bench.test,http", i % 4);
    }
    std::fs::write(dir.join("fleet.toml"), config).expect("config");
    std::fs::write(dir.join("customers.csv"), customers).expect("customers");
    std::fs::write(dir.join("sites.csv"), rows).expect("sites");
    Fleet::load(&dir.join("fleet.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
