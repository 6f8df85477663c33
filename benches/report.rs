//! The store and the reports at scale: a month of one-minute runs over 10,000 sites.
//!
//! `cargo bench --bench report -- [SITES] [DAYS] [PDFS] [--keep DIR]` (default 10000 sites, 30
//! days, 1000 SLA PDFs). The history is written through the store API as the prober writes it:
//! per run an HTTP check (DNS, connect, TLS, first byte, total, with spread start times and
//! noisy timings) and a DNS check per site, and the per-cluster histograms; then rolled up as
//! `fleetprobe probe` does after runs. A fault schedule with known truth runs through it: every
//! day one cluster (in turn) loses 30 % of its sites for exactly 47 minutes from 10:00 UTC. The
//! bench prints the write time per run, the bytes on disk per result (after the rollups), the
//! cluster report (checked against the schedule: one incident per day of 47 minutes hitting
//! the right sites) and the latency report over the month, each against a baseline measured in
//! the same run (every run's stored columns read and nothing done with them), and the time for
//! PDFS customers' SLA PDFs. `--keep DIR` writes the history into DIR once and reuses it.
//! `--pg URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) writes the same history into a
//! fresh PostgreSQL database on that server too, and prints its write cost, its size per result
//! (tables and indexes), the cluster report and the SLA PDFs read from it; the database is
//! dropped at the end. `--status` measures the status page's daily cluster rollup instead: one
//! settled day rolled up (what the first probe run after it settles pays), a probe run's check
//! when no day is due, and the 90-day page's build time with the part that reads the rollup.
//!
//! Several probers: `--vantages N` (1-5) writes every minute's run of N vantages at once, each
//! from its own thread and store handle (a barrier per minute, as probers on cron start
//! together), and prints each vantage's write cost; with three or more, the last vantage's path
//! to one cluster a day breaks for 20 minutes, which the cluster report must list as that
//! vantage's own failures and never as downtime. `--runs N` writes only N minutes and prints the
//! write cost and size (no reports). `--no-sqlite` with `--pg URL` skips the SQLite store;
//! `--pg-db NAME` keeps the PostgreSQL database under that name and reuses the history in it
//! next time; `--replicate` builds a long PostgreSQL history from its first day (see
//! `replicate_days`). `--shards` makes the N vantages shards instead: vantage k sweeps the sites
//! i with i mod N = k (as N prober machines sharing a fleet), for the write rate of a fleet too
//! large for one prober. `--no-rollup` skips the final rollup of the written runs (for the
//! write rate alone).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use fleetprobe::analysis::period::Availability;
use fleetprobe::app::analyze;
use fleetprobe::fleet::{Fleet, StoreLocation};
use fleetprobe::probe::{CheckKind, CheckResult, Failure, Outcome, Phase, Timings};
use fleetprobe::report::{clusters, period::PeriodSpec};
use fleetprobe::store::{self, CheckQuery, LatencyQuery, LatencyScope, RunMeta, RunSummary, histogram::RunLatencies};

const CLUSTERS: usize = 20;
/// Sites per customer, in turn: many customers have one site, some have a few.
const CUSTOMER_SIZES: [usize; 6] = [1, 3, 1, 2, 5, 1];
const OUTAGE_MINUTE: i64 = 600;
const OUTAGE_MINUTES: i64 = 47;
const MINUTE_MS: i64 = 60_000;
/// `--shards`: the vantages split the fleet (site i is swept by vantage i mod N) instead of each
/// sweeping all of it, as N shard machines do.
static SHARDS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
const LOCAL_MINUTE: i64 = 840;
const LOCAL_MINUTES: i64 = 20;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).cloned();
    let keep = value("--keep").map(std::path::PathBuf::from);
    let pg = value("--pg");
    let vantages: usize = value("--vantages").map_or(1, |v| v.parse().expect("--vantages N"));
    assert!((1..=10).contains(&vantages), "--vantages takes 1 to 10");
    if argv.iter().any(|a| a == "--shards") {
        SHARDS.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let only_runs: Option<i64> = value("--runs").map(|v| v.parse().expect("--runs N"));
    let no_sqlite = argv.iter().any(|a| a == "--no-sqlite");
    assert!(!no_sqlite || pg.is_some(), "--no-sqlite needs --pg URL");
    let with_value = ["--keep", "--pg", "--pg-db", "--vantages", "--runs"];
    let args: Vec<&String> = argv
        .iter()
        .enumerate()
        .filter(|(i, a)| !(a.starts_with("--") || *i > 0 && with_value.contains(&argv[i - 1].as_str())))
        .map(|(_, a)| a)
        .collect();
    let sites: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let days: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let pdf_count: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let temporary = tempfile::tempdir().expect("temporary directory");
    let dir = keep.clone().unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("history directory");
    let fleet = Arc::new(write_fleet(&dir, sites));
    let suffix = if vantages == 1 { String::new() } else { format!("x{vantages}v") };
    let db = dir.join(format!("history-{sites}x{days}{suffix}.db"));
    let location = StoreLocation::Sqlite(db.clone());
    let start_ms = "2026-10-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let runs = only_runs.unwrap_or(days * 1440);
    let results = runs as u64 * sites as u64 * 2 * if sharded() { 1 } else { vantages as u64 };
    match only_runs {
        Some(runs) => println!(
            "machine: {} cores; {runs} one-minute runs of {sites} sites × (http + dns) by {vantages} vantage(s) = {results} results",
            cores()
        ),
        None => println!(
            "machine: {} cores; history: {sites} sites × {days} days of one-minute runs × (http + dns) × {vantages} vantage(s) = {results} results",
            cores()
        ),
    }

    let end = jiff::Timestamp::from_millisecond(start_ms + days * 86_400_000).unwrap();
    let period = PeriodSpec {
        from: Some("2026-10-01".into()),
        to: Some(end.strftime("%Y-%m-%d").to_string()),
        tz: "UTC".into(),
        now: Some(end),
        ..PeriodSpec::default()
    }
    .resolve("30d")
    .expect("period");
    let history = History {
        start_ms,
        runs,
        days,
        results,
        vantages,
        full_days: only_runs.is_none(),
        final_rollup: !argv.iter().any(|a| a == "--no-rollup"),
        replicate: argv.iter().any(|a| a == "--replicate"),
        pg_db: value("--pg-db"),
    };
    if no_sqlite {
        postgres_figures(pg.as_deref().unwrap_or_default(), &fleet, &history, &period, pdf_count);
        return;
    }

    if db.exists() && keep.is_some() {
        println!("reusing {}", db.display());
    } else {
        let _ = std::fs::remove_file(&db);
        generate(&fleet, &location, start_ms, runs, vantages, history.final_rollup);
    }
    report_store_size(&db, results);
    if only_runs.is_some() {
        if let Some(server) = pg {
            postgres_figures(&server, &fleet, &history, &period, pdf_count);
        }
        return;
    }
    if argv.iter().any(|a| a == "--status") {
        status_figures(&fleet, &location, start_ms, days, &dir);
        return;
    }

    // Baseline: every run's stored columns read from the file, nothing done with them.
    let started = Instant::now();
    let bytes_read = {
        let conn = rusqlite::Connection::open(&db).expect("store");
        let mut select = conn
            .prepare(
                "SELECT u.started_at_ms, b.roster_id, b.outcomes FROM runs u JOIN run_results b ON b.run_id = u.id",
            )
            .expect("baseline query");
        let lengths = select
            .query_map([], |row| Ok(row.get_ref(2)?.as_blob().map_or(0, |b| b.len()) as i64))
            .expect("baseline rows");
        lengths.map(|l| l.unwrap_or(0)).sum::<i64>()
    };
    let baseline = started.elapsed().as_secs_f64();
    println!("baseline: every run's outcome column read, {bytes_read} bytes in {baseline:.3} s");

    let store = store::open(&location).expect("store");
    let rss_before = peak_rss_kb();
    for attempt in 1..=2 {
        let started = Instant::now();
        let analysis = analyze::analyze_period(&fleet, store.as_ref(), &period).unwrap_or_else(|e| panic!("{e}"));
        let report = clusters::build(&fleet, &period, &analysis);
        let took = started.elapsed().as_secs_f64();
        check_against_schedule(&fleet, &analysis, &history);
        println!(
            "report clusters, attempt {attempt}: {took:.2} s for {results} results ({:.0} M results/s, {:.1} × the baseline), \
             {} incidents, all as scheduled",
            results as f64 / took / 1e6,
            took / baseline,
            report.incidents.len()
        );
    }
    // What every probe run adds with `[metrics] textfile` or `[notify]` on: an analysis of the
    // last day (the metrics file's open incidents and shares, the notifications' events).
    let end_ms = start_ms + days * 86_400_000;
    let started = Instant::now();
    let last_day = analyze::analyze(&fleet, store.as_ref(), end_ms - 86_400_000, end_ms + 1, end_ms + 1)
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "after-run analysis of the last day (metrics file, notifications): {:.3} s, {} incidents open or recent",
        started.elapsed().as_secs_f64(),
        last_day.incidents.len()
    );
    println!(
        "peak RSS after the cluster reports: {:.1} MB (before them: {:.1} MB)",
        peak_rss_kb() as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );

    for (by, bucket_ms) in [("hour", Some(3_600_000)), ("day", Some(86_400_000))] {
        let started = Instant::now();
        let mut buckets = 0;
        let mut p99_max = 0u64;
        for check in [CheckKind::Http, CheckKind::Dns] {
            let phase = if check == CheckKind::Http { Phase::FirstByte } else { Phase::Total };
            let query = LatencyQuery {
                scope: LatencyScope::Cluster("c0".into()),
                check,
                phase,
                from_ms: period.start_ms(),
                to_ms: period.end_ms(),
                bucket_ms,
                vantages: Vec::new(),
            };
            store
                .latency_histograms(&query, &mut |bucket| {
                    buckets += 1;
                    p99_max = p99_max.max(bucket.histogram.value_at_quantile(0.99));
                    Ok(())
                })
                .expect("latency");
        }
        println!(
            "report latency --cluster c0 --by {by} (http first byte and dns, {days} days): {buckets} buckets in {:.3} s ({:.2} × the baseline)",
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() / baseline
        );
        assert!(buckets > 0 && p99_max > 0, "the month has latencies");
    }

    // The strips of failed checks under every cluster's latency chart, counted in one pass.
    let started = Instant::now();
    let query = CheckQuery {
        scopes: (0..CLUSTERS).map(|c| LatencyScope::Cluster(format!("c{c}"))).collect(),
        check: CheckKind::Http,
        from_ms: period.start_ms(),
        to_ms: period.end_ms(),
        bucket_ms: Some(3_600_000),
        vantages: Vec::new(),
    };
    let counts = store.check_counts(&query).expect("check counts");
    let failed: u64 = counts.iter().flatten().map(|c| c.failed).sum();
    println!(
        "failed checks per hour for the strips of all {CLUSTERS} clusters ({days} days): {} hours in {:.3} s ({:.2} × the baseline), {failed} failed",
        counts.iter().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64() / baseline
    );
    assert!(failed > 0, "the schedule's outages are failed checks");

    pdfs(&fleet, &period, store.as_ref(), pdf_count, "SLA PDFs");
    if let Some(server) = pg {
        postgres_figures(&server, &fleet, &history, &period, pdf_count);
    }
}

/// The same history in a fresh PostgreSQL database: write cost, size, the cluster report (checked
/// against the schedule) and `pdf_count` SLA PDFs read from it, beside the SQLite figures above.
fn postgres_figures(
    server: &str,
    fleet: &Arc<Fleet>,
    history: &History,
    period: &fleetprobe::report::period::Period,
    pdf_count: usize,
) {
    let History { start_ms, runs, results, vantages, full_days, .. } = *history;
    // `--pg-db NAME` keeps the database (and reuses a history already in it); otherwise a fresh
    // one is made and dropped at the end.
    let kept = history.pg_db.clone();
    let name = kept.clone().unwrap_or_else(|| format!("fleetprobe_bench_{}", std::process::id()));
    let mut admin = postgres::Client::connect(server, postgres::NoTls).expect("PostgreSQL server");
    let (base, _) = server.rsplit_once('/').expect("a URL ending in /DATABASE");
    let url = format!("{base}/{name}");
    let exists =
        admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).expect("database list").is_some();
    if exists && kept.is_some() {
        println!("PostgreSQL: reusing the history in {url}");
    } else {
        // One statement each: CREATE DATABASE cannot run inside the transaction a batch is.
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).expect("drop");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create");
        println!("PostgreSQL: the history into {url}");
        let location = StoreLocation::Postgres(url.clone());
        if history.replicate && full_days && history.days > 1 {
            replicate_days(fleet, &location, &url, start_ms, history.days, vantages);
        } else {
            generate(fleet, &location, start_ms, runs, vantages, history.final_rollup);
        }
    }
    let location = StoreLocation::Postgres(url.clone());
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("bench database");
    client.batch_execute("VACUUM ANALYZE").expect("vacuum");
    // Tables with their partitions, indexes and TOAST, by the table they belong to.
    let sizes = client
        .query(
            "SELECT coalesce(p.relname, c.relname) AS name, sum(pg_total_relation_size(c.oid))::bigint \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent \
             WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY 1 ORDER BY 2 DESC",
            &[],
        )
        .expect("size");
    let size: i64 = sizes.iter().map(|row| row.get::<_, i64>(1)).sum();
    let per = |bytes: i64| bytes as f64 / results as f64;
    let parts: Vec<String> = sizes
        .iter()
        .filter(|row| row.get::<_, i64>(1) * 100 >= size)
        .map(|row| format!("{} {:.2}", row.get::<_, String>(0), per(row.get(1))))
        .collect();
    println!(
        "PostgreSQL store: {:.1} MB, tables and indexes = {:.2} bytes/result ({})",
        size as f64 / 1e6,
        per(size),
        parts.join(", ")
    );
    let store = store::open(&location).expect("store");
    if full_days {
        for attempt in 1..=2 {
            let started = Instant::now();
            let analysis = analyze::analyze_period(fleet, store.as_ref(), period).unwrap_or_else(|e| panic!("{e}"));
            let took = started.elapsed().as_secs_f64();
            check_against_schedule(fleet, &analysis, history);
            println!(
                "PostgreSQL report clusters, attempt {attempt}: {took:.2} s for {results} results, {} vantages, \
                 all incidents as scheduled",
                analysis.vantages.len()
            );
        }
        pdfs(fleet, period, store.as_ref(), pdf_count, "PostgreSQL SLA PDFs");
    }
    drop(store);
    drop(client);
    if kept.is_none() {
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).expect("drop");
    }
}

/// `pdf_count` customers' SLA PDFs, as `report sla --all -o DIR` writes them, the period's
/// analysis included.
fn pdfs(
    fleet: &Fleet,
    period: &fleetprobe::report::period::Period,
    store: &dyn store::Store,
    pdf_count: usize,
    label: &str,
) {
    let started = Instant::now();
    let analysis = analyze::analyze_period(fleet, store, period).unwrap_or_else(|e| panic!("{e}"));
    let customers = pdf_count.min(fleet.customers.len());
    let slas: Vec<_> = (0..customers).map(|c| analysis.customer_sla(fleet, c)).collect();
    let rows: Vec<_> = slas.iter().map(|s| fleetprobe::report::sla::credit_row(fleet, period, s)).collect();
    let out = tempfile::tempdir().expect("temporary directory");
    let branding = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let branding = fleetprobe::app::sla::load_branding(Some(&branding), None).unwrap_or_else(|e| panic!("{e}"));
    fleetprobe::app::sla::write_pdfs(fleet, period, &analysis, &slas, &rows, out.path(), true, &branding, store)
        .unwrap_or_else(|e| panic!("{}", e.message));
    let written = std::fs::read_dir(out.path())
        .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pdf"))).count())
        .unwrap_or(0);
    assert_eq!(written, customers, "one PDF per customer");
    let took = started.elapsed().as_secs_f64();
    println!(
        "{label}: {customers} customers in {took:.1} s ({:.1} ms each, the period's analysis included), peak RSS {:.1} MB",
        took * 1000.0 / customers.max(1) as f64,
        peak_rss_kb() as f64 / 1024.0
    );
}

/// The history a run of the bench writes or reuses.
struct History {
    start_ms: i64,
    runs: i64,
    days: i64,
    results: u64,
    vantages: usize,
    /// Whole days (the fault schedule's truth applies); false with `--runs`.
    full_days: bool,
    /// Roll up and prune once after writing (not with `--no-rollup`).
    final_rollup: bool,
    /// `--replicate`: see [`replicate_days`].
    replicate: bool,
    /// `--pg-db NAME`: the PostgreSQL database kept under this name.
    pg_db: Option<String>,
}

/// Whether `site` is down in the fault schedule at run `run` (minutes from the start).
fn down(site: usize, run: i64) -> bool {
    let day = run / 1440;
    let minute = run % 1440;
    site % CLUSTERS == day as usize % CLUSTERS
        && (site / CLUSTERS) % 10 < 3
        && (OUTAGE_MINUTE..OUTAGE_MINUTE + OUTAGE_MINUTES).contains(&minute)
}

/// A small deterministic generator, so every run of the bench writes the same history.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A latency around `base_us`: mostly within ±30 %, sometimes several times slower.
    fn latency(&mut self, base_us: u32) -> u32 {
        let r = self.next();
        let spread = 0.7 + (r % 600) as f64 / 1000.0;
        let tail = if r >> 60 == 0 { 3.0 + ((r >> 20) % 5) as f64 } else { 1.0 };
        (f64::from(base_us) * spread * tail) as u32
    }
}

/// The vantage names of a history written by `vantages` probers.
fn vantage_name(vantage: usize, vantages: usize) -> String {
    if vantages == 1 { "bench".into() } else { format!("v{}", vantage + 1) }
}

/// Whether the last of several vantages alone sees `site` fail at run `run`: its path to the
/// day's cluster after the scheduled one breaks for 20 minutes from 14:00 (a vantage-local
/// failure, never downtime under a majority quorum).
fn locally_down(site: usize, run: i64, vantage: usize, vantages: usize) -> bool {
    let minute = run % 1440;
    vantages >= 3
        && !sharded()
        && vantage == vantages - 1
        && site % CLUSTERS == (run / 1440 + 5) as usize % CLUSTERS
        && (LOCAL_MINUTE..LOCAL_MINUTE + LOCAL_MINUTES).contains(&minute)
}

fn sharded() -> bool {
    SHARDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether `vantage` of `vantages` sweeps `site`.
fn sweeps(site: usize, vantage: usize, vantages: usize) -> bool {
    !sharded() || site % vantages == vantage
}

/// Writes `runs` one-minute runs of every vantage through the store API, as `vantages` probers
/// on cron would: each in its own thread with its own store handle, all writing the same minute
/// at once (a barrier per minute), each rolling up and pruning after its run.
fn generate(
    fleet: &Arc<Fleet>,
    location: &StoreLocation,
    start_ms: i64,
    runs: i64,
    vantages: usize,
    final_rollup: bool,
) {
    let barrier = std::sync::Barrier::new(vantages);
    let generating = Instant::now();
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let costs: Vec<(std::time::Duration, std::time::Duration)> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..vantages)
            .map(|vantage| {
                let barrier = &barrier;
                let minutes: Vec<i64> = (0..runs).collect();
                scope.spawn(move || {
                    write_vantage(
                        fleet, location, start_ms, &minutes, true, vantage, vantages, barrier, progress, generating,
                    )
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().expect("writer thread")).collect()
    });
    // The final rollup and pruning, once, as the next probe run would do it (`--no-rollup`: not
    // at all, for the write rate alone).
    let rollup_started = Instant::now();
    if final_rollup {
        let mut store = store::open(location).expect("store");
        let end_ms = start_ms + runs * MINUTE_MS;
        store.rollup(end_ms + 86_400_000, None).expect("final rollup");
        store.prune(end_ms, &fleet.retention, None).expect("final prune");
    }
    let final_rollup = rollup_started.elapsed();
    let swept = if sharded() { fleet.sites.len().div_ceil(vantages) } else { fleet.sites.len() };
    let results_per_vantage = runs as f64 * swept as f64 * 2.0;
    for (vantage, (writing, rollup)) in costs.iter().enumerate() {
        println!(
            "  vantage {}: store writes {:.1} ms per run ({:.2} µs per result), rollups and pruning {:.1} ms per run",
            vantage_name(vantage, vantages),
            writing.as_secs_f64() * 1000.0 / runs as f64,
            writing.as_secs_f64() * 1e6 / results_per_vantage,
            rollup.as_secs_f64() * 1000.0 / runs as f64,
        );
    }
    let writing: f64 = costs.iter().map(|c| c.0.as_secs_f64()).sum::<f64>() / vantages as f64;
    let rollup: f64 = costs.iter().map(|c| c.1.as_secs_f64()).sum::<f64>() / vantages as f64;
    println!(
        "written in {:.0} s by {vantages} writer(s) at once: store writes {:.1} ms per run ({:.2} µs per result), \
         rollups and pruning {:.1} ms per run (means over the vantages), final rollup {:.1} s",
        generating.elapsed().as_secs_f64(),
        writing * 1000.0 / runs as f64,
        writing * 1e6 / results_per_vantage,
        rollup * 1000.0 / runs as f64,
        final_rollup.as_secs_f64(),
    );
}

/// `--replicate` (PostgreSQL): a long history built from its first day, for the reports' read
/// figures when writing every day through the API would take hours. The first day is written by
/// the probers as [`generate`] does; every later day's runs outside its fault windows are copied
/// from the first day's runs at the same minute, server-side with the times shifted, and the runs
/// inside its windows (the scheduled outage, the last vantage's broken path) are written through
/// the API, in time order so that run ids still follow time. The first day's latency rollups
/// (clusters' hours and days, sites' days) are copied to every day. What the cluster report and
/// the SLA PDFs read is then what a month of probing leaves, row for row.
fn replicate_days(fleet: &Arc<Fleet>, location: &StoreLocation, url: &str, start_ms: i64, days: i64, vantages: usize) {
    generate(fleet, location, start_ms, 1440, vantages, true);
    let started = Instant::now();
    let mut client = postgres::Client::connect(url, postgres::NoTls).expect("bench database");
    let day_ms = 86_400_000i64;
    // Minutes of the first day copied to [from, to) of each later day; the windows between them
    // are written through the API.
    let windows = [(OUTAGE_MINUTE, OUTAGE_MINUTE + OUTAGE_MINUTES), (LOCAL_MINUTE, LOCAL_MINUTE + LOCAL_MINUTES)];
    let mut copied_runs = 0u64;
    let mut written = std::time::Duration::ZERO;
    for day in 1..days {
        let mut from = 0;
        for (window_start, window_end) in windows.iter().copied().chain([(1440, 1440)]) {
            copied_runs += client
                .execute(
                    "INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, invalid_reason, checks, \
                     failures, roster_id, outcomes, details) \
                     SELECT nextval('runs_id_seq'), vantage, started_at_ms + $1, finished_at_ms + $1, valid, \
                     invalid_reason, checks, failures, roster_id, outcomes, details FROM runs \
                     WHERE started_at_ms >= $2 AND started_at_ms < $3 ORDER BY id",
                    &[&(day * day_ms), &(start_ms + from * MINUTE_MS), &(start_ms + window_start * MINUTE_MS)],
                )
                .expect("copy runs");
            if window_start < 1440 {
                let minutes: Vec<i64> = (window_start..window_end).map(|m| day * 1440 + m).collect();
                let writing = Instant::now();
                let barrier = std::sync::Barrier::new(vantages);
                std::thread::scope(|scope| {
                    for vantage in 0..vantages {
                        let (barrier, minutes) = (&barrier, &minutes);
                        scope.spawn(move || {
                            write_vantage(
                                fleet, location, start_ms, minutes, false, vantage, vantages, barrier, false, writing,
                            )
                        });
                    }
                });
                written += writing.elapsed();
            }
            from = window_end;
        }
        for (table, column) in [("latency_rollups", "bucket_ms"), ("site_latency_days", "day_ms")] {
            let columns = if table == "latency_rollups" {
                "resolution, cluster, check_kind, phase"
            } else {
                "site_key, check_kind, phase"
            };
            client
                .execute(
                    &format!(
                        "INSERT INTO {table} ({columns}, {column}, hist) SELECT {columns}, {column} + $1, hist \
                         FROM {table} WHERE {column} >= $2 AND {column} < $3 ON CONFLICT DO NOTHING"
                    ),
                    &[&(day * day_ms), &start_ms, &(start_ms + day_ms)],
                )
                .expect("copy rollups");
        }
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("  day {} of {days} replicated ({:.0} s)", day + 1, started.elapsed().as_secs_f64());
        }
    }
    // The copied days' rollups stand in for the ones the windows' runs asked for.
    client.execute("DELETE FROM rollups_pending WHERE bucket_ms >= $1", &[&(start_ms + day_ms)]).expect("pending");
    println!(
        "replicated days 2 to {days}: {copied_runs} runs copied server-side and the fault windows' runs written \
         through the API ({:.0} s of it) in {:.0} s",
        written.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// One prober's runs (see [`generate`]); returns its time in store writes and in rollups.
#[allow(clippy::too_many_arguments)]
fn write_vantage(
    fleet: &Arc<Fleet>,
    location: &StoreLocation,
    start_ms: i64,
    minutes: &[i64],
    roll_up: bool,
    vantage: usize,
    vantages: usize,
    barrier: &std::sync::Barrier,
    progress: bool,
    generating: Instant,
) -> (std::time::Duration, std::time::Duration) {
    let sites = fleet.sites.len();
    let records = store::site_records(fleet);
    let name = vantage_name(vantage, vantages);
    let mut store = store::open(location).expect("store");
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15 ^ (vantage as u64 * 0x1234_5678_9abc));
    // Each site's place in the spread: its checks start at the same second every run.
    let offsets: Vec<i64> = (0..sites).map(|_| (noise.next() % 50_000) as i64).collect();
    let mut writing = std::time::Duration::ZERO;
    let mut rollup = std::time::Duration::ZERO;
    let runs = minutes.last().map_or(0, |last| last + 1);
    for &run in minutes {
        let at = start_ms + run * MINUTE_MS;
        let mut latencies = RunLatencies::default();
        let mut batch = Vec::with_capacity(sites * 2);
        let mut failures = 0u64;
        for (site, offset) in offsets.iter().enumerate() {
            if !sweeps(site, vantage, vantages) {
                continue;
            }
            let cluster = fleet.sites[site].cluster;
            let started_at_ms = at + offset + (noise.next() % 20) as i64;
            let base = 8_000 + 2_000 * cluster as u32;
            let dns_us = noise.latency(400);
            let connect_us = noise.latency(base / 4);
            let tls_us = noise.latency(base / 2);
            let first_byte_us = noise.latency(base * 3);
            let body_us = noise.latency(900);
            let http = if down(site, run) || locally_down(site, run, vantage, vantages) {
                failures += 1;
                CheckResult {
                    site,
                    check: CheckKind::Http,
                    outcome: Outcome::Failed(Failure::ConnectRefused),
                    started_at_ms,
                    attempts: 2,
                    http_status: None,
                    timings: Timings { dns_us: Some(dns_us), total_us: dns_us + 60, ..Timings::default() },
                    cert_not_after: None,
                    cert_issuer: None,
                    detail: Some("connection refused".into()),
                }
            } else {
                CheckResult {
                    site,
                    check: CheckKind::Http,
                    outcome: Outcome::Ok,
                    started_at_ms,
                    attempts: 1,
                    http_status: Some(200),
                    timings: Timings {
                        dns_us: Some(dns_us),
                        connect_us: Some(connect_us),
                        tls_us: Some(tls_us),
                        first_byte_us: Some(first_byte_us),
                        total_us: dns_us + connect_us + tls_us + first_byte_us + body_us,
                    },
                    cert_not_after: Some(1_830_000_000 + site as i64 * 3_600),
                    cert_issuer: None,
                    detail: None,
                }
            };
            let dns = CheckResult {
                site,
                check: CheckKind::Dns,
                outcome: Outcome::Ok,
                started_at_ms,
                attempts: 1,
                http_status: None,
                timings: Timings { total_us: noise.latency(300), ..Timings::default() },
                cert_not_after: None,
                cert_issuer: None,
                detail: None,
            };
            latencies.record(cluster, &http);
            latencies.record(cluster, &dns);
            batch.push(http);
            batch.push(dns);
        }
        // The probers start each minute together.
        barrier.wait();
        let writing_started = Instant::now();
        let mut writer = store.begin_run(&RunMeta { vantage: name.clone(), started_at_ms: at }, &records).expect("run");
        for result in &batch {
            writer.insert(result).expect("insert");
        }
        let summary = RunSummary {
            finished_at_ms: at + 55_000,
            valid: true,
            invalid_reason: None,
            checks: batch.len() as u64,
            failures,
        };
        writer.finish(&summary, &latencies.into_records(fleet)).expect("commit");
        writing += writing_started.elapsed();
        let own = writing_started.elapsed();
        // The minute is stored when every prober's run is.
        barrier.wait();
        if vantage == 0 && minutes.len() <= 20 {
            eprintln!(
                "  minute {run}: {name}'s run stored in {:.0} ms, every vantage's in {:.0} ms",
                own.as_secs_f64() * 1e3,
                writing_started.elapsed().as_secs_f64() * 1e3
            );
        }
        // As `fleetprobe probe` does after each run: due rollups (site days in small budgets)
        // and a few expired runs pruned.
        let rollup_started = Instant::now();
        if roll_up {
            store.rollup(at + 55_000, Some(500)).expect("rollup");
            store.prune(at + 55_000, &fleet.retention, Some(5)).expect("prune");
        }
        rollup += rollup_started.elapsed();
        if progress && vantage == 0 && run % 1440 == 1439 {
            eprintln!(
                "  day {} of {} written ({:.0} s)",
                run / 1440 + 1,
                runs / 1440,
                generating.elapsed().as_secs_f64()
            );
        }
    }
    (writing, rollup)
}

fn report_store_size(db: &std::path::Path, results: u64) {
    let conn = rusqlite::Connection::open(db).expect("store");
    let pragma = |name: &str| conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0)).unwrap_or(0);
    let used = (pragma("page_count") - pragma("freelist_count")) * pragma("page_size");
    let sum = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, Option<i64>>(0)).ok().flatten().unwrap_or(0);
    let columns = sum("SELECT sum(length(outcomes) + length(details)) FROM run_results")
        + sum("SELECT sum(length(roster)) FROM rosters");
    let run_histograms = sum("SELECT sum(length(hist)) FROM histograms");
    let rollups = sum("SELECT sum(length(hist)) FROM latency_rollups");
    let site_days = sum("SELECT sum(length(hist)) FROM site_latency_days");
    let per = |bytes: i64| bytes as f64 / results as f64;
    println!(
        "store: {:.1} MB in use = {:.2} bytes/result (run columns {:.2}, per-run cluster histograms {:.2}, \
         hour/day rollups {:.2}, site days {:.2}, the rest SQLite's pages and indexes)",
        used as f64 / 1e6,
        per(used),
        per(columns),
        per(run_histograms),
        per(rollups),
        per(site_days)
    );
}

/// The cluster report must find exactly the scheduled outages: one incident per day, on that
/// day's cluster, 47 minutes from 10:00, hitting the scheduled sites and nothing else.
fn check_against_schedule(fleet: &Fleet, analysis: &Availability, history: &History) {
    let (start_ms, days) = (history.start_ms, history.days);
    assert_eq!(analysis.vantages.len(), history.vantages, "every vantage measured");
    // The last of three or more vantages alone saw a whole cluster fail each day: listed as
    // its own, never downtime.
    let local: std::collections::BTreeSet<usize> = analysis.local_failures.iter().map(|f| f.site).collect();
    let expected_local: std::collections::BTreeSet<usize> = (0..fleet.sites.len())
        .filter(|&s| {
            (0..days).any(|day| locally_down(s, day * 1440 + LOCAL_MINUTE, history.vantages - 1, history.vantages))
        })
        .collect();
    assert_eq!(local, expected_local, "the vantage-local failures are the last vantage's broken path");
    assert_eq!(analysis.incidents.len(), days as usize, "one incident per day");
    for (day, incident) in analysis.incidents.iter().enumerate() {
        let expected_start = start_ms + day as i64 * 86_400_000 + OUTAGE_MINUTE * MINUTE_MS;
        assert_eq!(incident.start_ms, expected_start, "incident {} starts at 10:00", incident.id);
        assert_eq!(
            incident.end_ms,
            Some(expected_start + OUTAGE_MINUTES * MINUTE_MS),
            "incident {} lasts 47 min",
            incident.id
        );
        assert_eq!(incident.cluster, day % CLUSTERS, "incident {} is on the day's cluster", incident.id);
        let expected: Vec<usize> =
            (0..fleet.sites.len()).filter(|&s| down(s, day as i64 * 1440 + OUTAGE_MINUTE)).collect();
        assert_eq!(incident.sites, expected, "incident {} hit the scheduled sites", incident.id);
    }
    let downtime: i64 = analysis.accounts.iter().map(|a| a.downtime_ms).sum();
    let scheduled: i64 = (0..days)
        .map(|day| (0..fleet.sites.len()).filter(|&s| down(s, day * 1440 + OUTAGE_MINUTE)).count() as i64)
        .sum::<i64>()
        * OUTAGE_MINUTES
        * MINUTE_MS;
    assert_eq!(downtime, scheduled, "downtime to the minute");
}

fn write_fleet(dir: &std::path::Path, sites: usize) -> Fleet {
    let mut config = String::from(
        "[inventory]\nsites = \"sites.csv\"\ncustomers = \"customers.csv\"\n\n[[plan]]\nname = \"p\"\ntarget = 99.9\n\
         credits = [{ below = 99.9, credit = 10 }, { below = 99.0, credit = 25 }]\n",
    );
    for c in 0..CLUSTERS {
        let _ = write!(config, "\n[[cluster]]\nname = \"c{c}\"\n");
    }
    let mut customers = String::from("customer_id,name,plan,monthly_fee\n");
    let mut rows = String::from("site_id,customer,cluster,hostname,checks\n");
    let (mut customer, mut left) = (0, 0);
    for i in 0..sites {
        if left == 0 {
            customer += 1;
            left = CUSTOMER_SIZES[customer % CUSTOMER_SIZES.len()];
            let _ = writeln!(customers, "k{customer},Customer {customer},p,10");
        }
        left -= 1;
        let _ = writeln!(rows, "s{i},k{customer},c{},s{i}.bench.test,http dns", i % CLUSTERS);
    }
    std::fs::write(dir.join("fleet.toml"), config).expect("config");
    std::fs::write(dir.join("customers.csv"), customers).expect("customers");
    std::fs::write(dir.join("sites.csv"), rows).expect("sites");
    Fleet::load(&dir.join("fleet.toml")).unwrap_or_else(|e| panic!("{e}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The status page's cluster days on the generated history, whose last day is left unsettled.
fn status_figures(fleet: &Fleet, location: &StoreLocation, start_ms: i64, days: i64, dir: &std::path::Path) {
    use fleetprobe::app::status::{roll_up_cluster_days, rolled_up_days, write};
    let mut store = store::open(location).expect("store");
    let now_ms = start_ms + days * 86_400_000 - 1;
    let timed = |store: &mut dyn store::Store, budget: Option<usize>| {
        let started = Instant::now();
        let stored = roll_up_cluster_days(fleet, store, now_ms, budget).unwrap_or_else(|e| panic!("{e}"));
        (stored, started.elapsed().as_secs_f64())
    };
    let (first, first_s) = timed(store.as_mut(), Some(1));
    let (rest, rest_s) = timed(store.as_mut(), None);
    let (idle, idle_s) = timed(store.as_mut(), None);
    println!(
        "cluster days at {} sites: {first} day in {:.0} ms (the probe run after a day settles), \
         then {rest} days in {:.0} ms; with none due ({idle}) {:.2} ms per run",
        fleet.sites.len(),
        first_s * 1e3,
        rest_s * 1e3,
        idle_s * 1e3
    );
    for attempt in 1..=2 {
        let started = Instant::now();
        write(fleet, store.as_ref(), &dir.join("status"), now_ms, 90).unwrap_or_else(|e| panic!("{e}"));
        let page_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let span = fleetprobe::report::status::window(now_ms, 90);
        let rolled = rolled_up_days(fleet, store.as_ref(), span).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "status page over 90 days, attempt {attempt}: {page_s:.2} s, of which reading the rollup {:.2} ms \
             ({} cluster days used: raw runs cover every day here)",
            started.elapsed().as_secs_f64() * 1e3,
            rolled.len()
        );
    }
}
