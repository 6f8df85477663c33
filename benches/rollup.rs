//! What the housekeeping at the end of a probe run costs: the rollup when an hour ends, when a
//! day ends (the cluster day and the first budget of site days), and pruning the runs that
//! drop out of the raw retention.
//!
//! `cargo bench --bench rollup -- [SITES] [RUNS]` (default 2000 sites, 1440 runs: a day of
//! one-minute sweeps, each site with an HTTP and a DNS check). The store is written directly,
//! without probing, with the histograms the prober would record.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fleetprobe::fleet::Retention;
use fleetprobe::probe::{CheckKind, CheckResult, Outcome, Phase, Timings};
use fleetprobe::store::sqlite::SqliteStore;
use fleetprobe::store::{HistogramRecord, RunMeta, RunSummary, SiteRecord, Store, histogram, rollup};

const CLUSTERS: usize = 4;
const T0: i64 = 1_790_000_000_000 / 86_400_000 * 86_400_000; // a UTC midnight
const RUN_BUDGET: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let sites: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let runs: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1_440);
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut store = SqliteStore::open(&dir.path().join("bench.db")).expect("store");
    let fleet: Vec<SiteRecord> = (0..sites)
        .map(|i| SiteRecord {
            id: format!("s{i}"),
            customer: format!("c{}", i / 3),
            cluster: format!("cluster-{}", i % CLUSTERS),
            hostname: format!("www.s{i}.test"),
        })
        .collect();

    println!("rollup benchmark: {sites} sites × (http + dns), {runs} one-minute runs");
    let written = Instant::now();
    let mut write_time = Duration::ZERO;
    for run in 0..runs {
        let at = T0 + run * 60_000;
        let started = Instant::now();
        write_run(&mut store, &fleet, at, run);
        write_time += started.elapsed();
    }
    println!(
        "  writing the runs: {:.1} s ({:.0} ms per run)",
        written.elapsed().as_secs_f64(),
        write_time.as_secs_f64() * 1000.0 / runs as f64
    );

    let time = |what: &str, f: &mut dyn FnMut() -> String| {
        let started = Instant::now();
        let detail = f();
        println!("  {what}: {:.0} ms ({detail})", started.elapsed().as_secs_f64() * 1000.0);
    };
    let site_budget = rollup::site_budget(sites, 60_000);
    println!("  site days per probe run: {site_budget}");
    let end = T0 + runs * 60_000;
    let next_hour = end.div_euclid(rollup::HOUR_MS) * rollup::HOUR_MS + rollup::HOUR_MS;
    time("rollup inside the hour (nothing due)", &mut || {
        format!("{:?}", store.rollup(end - 1, Some(site_budget)).unwrap())
    });
    time("rollup when the last hour and the day end (clusters only)", &mut || {
        format!("{:?}", store.rollup(next_hour, Some(0)).unwrap())
    });
    let mut passes = 0;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    loop {
        let one = Instant::now();
        let stats = store.rollup(next_hour, Some(site_budget)).unwrap();
        slowest = slowest.max(one.elapsed());
        passes += 1;
        if stats.site_days_unfinished == 0 {
            break;
        }
    }
    println!(
        "  site days, {site_budget} sites per probe run: {passes} runs, {:.0} ms per run on average, {:.0} ms at most",
        started.elapsed().as_secs_f64() * 1000.0 / f64::from(passes),
        slowest.as_secs_f64() * 1000.0
    );
    let hour_end = next_hour;
    let retention = Retention::default();
    let month_later = hour_end + retention.raw.as_millis() as i64;
    time("prune of 5 runs past the raw retention", &mut || {
        format!("{:?}", store.prune(month_later, &retention, Some(RUN_BUDGET)).unwrap())
    });
    time("prune with nothing due", &mut || {
        format!("{:?}", store.prune(T0 + 3_600_000, &retention, Some(RUN_BUDGET)).unwrap())
    });
}

fn write_run(store: &mut SqliteStore, fleet: &[SiteRecord], at: i64, run: i64) {
    let meta = RunMeta { vantage: "bench".into(), started_at_ms: at };
    let mut writer = store.begin_run(&meta, fleet).expect("begin run");
    let mut histograms: HashMap<(usize, CheckKind, Phase), hdrhistogram::Histogram<u64>> = HashMap::new();
    let mut checks = 0;
    for (site, _) in fleet.iter().enumerate() {
        // The fleet of the figures in BENCHMARKS.md: an HTTP and a DNS check per site.
        for check in [CheckKind::Http, CheckKind::Dns] {
            let jitter = ((site as u32).wrapping_mul(2_654_435_761) ^ run as u32) % 5_000;
            let timings = match check {
                CheckKind::Http => Timings {
                    dns_us: Some(300 + jitter / 10),
                    connect_us: Some(200 + jitter / 20),
                    tls_us: Some(1_500 + jitter / 5),
                    first_byte_us: Some(20_000 + jitter * 3),
                    total_us: 25_000 + jitter * 4,
                },
                _ => Timings { dns_us: Some(400 + jitter / 8), total_us: 450 + jitter / 8, ..Timings::default() },
            };
            let result = CheckResult {
                site,
                check,
                outcome: Outcome::Ok,
                started_at_ms: at,
                attempts: 1,
                http_status: (check == CheckKind::Http).then_some(200),
                timings,
                cert_not_after: None,
                cert_issuer: None,
                detail: None,
            };
            writer.insert(&result).expect("insert");
            for phase in Phase::ALL {
                if let Some(us) = timings.get(phase) {
                    let h = histograms
                        .entry((site % CLUSTERS, check, phase))
                        .or_insert_with(histogram::new_latency_histogram);
                    histogram::record_micros(h, u64::from(us));
                }
            }
            checks += 1;
        }
    }
    let records: Vec<HistogramRecord> = histograms
        .into_iter()
        .map(|((cluster, check, phase), histogram)| HistogramRecord {
            cluster: format!("cluster-{cluster}"),
            check,
            phase,
            histogram,
        })
        .collect();
    let summary = RunSummary { finished_at_ms: at + 20_000, valid: true, invalid_reason: None, checks, failures: 0 };
    writer.finish(&summary, &records).expect("finish");
}
