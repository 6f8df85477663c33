//! Sweep throughput against a bare client, peak memory, schedule keeping, and whether the
//! latency the prober reports is honest under full load.
//!
//! `cargo bench --bench sweep -- [SITES] [RUNS] [CONCURRENCY] [options]` (default 10000 sites,
//! 3 runs, 256 in flight). Every site gets an HTTP check through DNS and a DNS check: two checks
//! and three round trips. Each run first times a *bare client* over the same sites with the same
//! concurrency (one DNS query, connect, one GET read to the end, one more DNS query; no
//! bookkeeping, no storage), then the real sweep (`app::probe::run_probe`: checks, timings, the store),
//! and prints both rates and their ratio, so the figure holds on a noisy machine.
//!
//! The fleet's servers (4 clusters of HTTP virtual hosts and an authoritative DNS server) run in
//! a child process (this binary again, with `--serve-child`) on one runtime thread, so the
//! prober's figures (peak RSS, CPU) are its own and the servers' time is measured on their side:
//! each response's time from the request's kernel arrival stamp to its send call.
//!
//! Options:
//! - `--delays`: clusters c0 and c1 wait 20 ms and 50 ms before the first byte; prints the
//!   first-byte p50/p99 the prober reported per cluster against the injected delay.
//! - `--spread SECONDS`: spread check starts over this window (default 0: all at once) and see
//!   whether the latest-started check kept to its planned offset.
//! - `--scale`: RUNS rounds of (bare run, sweep) at 1,000, 10,000 and 100,000 sites, medians in
//!   a table.
//! - `--nginx`: the end-to-end suite's servers instead (nginx and NSD, configured and started as
//!   `tests/e2e_nginx_nsd.rs` does; its generated fleet of customer zones).
//! - `--in-process`: the servers in this process on their own runtime thread (the old setup).
//! - `--user-stamps`: the prober without kernel timestamps (its fallback), to compare.
//! - `--server-threads N`: runtime threads of the server process (default 1); more keep the
//!   servers' own tail latency down at the cost of CPU for the prober.
//! - `--silent-dns`: the fleet's nameserver (and resolver) is a socket that never answers
//!   (with `--nginx`: an nft rule drops every packet to NSD; needs root and nftables).
//! - `--drop-cluster cN`: cluster cN's frontend drops new connections (a listener that never
//!   accepts: the kernel drops the SYNs once its one-connection queue is full; with `--nginx`
//!   an nft rule drops every packet to that cluster's nginx address).
//!   With a fault the sweep runs with the default `[probe]` settings (concurrency, retries,
//!   spread, deadline), no bare client; it prints the time, the outcomes, the checks parked and
//!   the peak of open connections each answering cluster's server saw.
//! - `--hold-permits`: `parked_per_cluster = 0`, checks hold their permits while they wait (as
//!   before parking); the deadline still holds.
//! - `--pg URL`: the store is a fresh PostgreSQL database on that server (e.g.
//!   `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the end, instead of an SQLite
//!   file; for the sweep's rate with each backend.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fleetprobe::app::probe::{ProbeReport, run_probe};
use fleetprobe::fleet::{Fleet, StoreLocation};
use fleetprobe::probe::{CheckKind, Phase, tls};
use fleetprobe::servers::http::ResponseTimes;
use fleetprobe::servers::{self, dns::NameBehavior, http::Behavior};
use fleetprobe::store::{self, histogram};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Serializer as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// The end-to-end suite's helpers: its generated fleet and its nginx and NSD (see `--nginx`).
// At the crate root because they refer to each other as `super::`.
#[allow(dead_code)]
#[path = "../tests/e2e/dns.rs"]
mod dns;
#[allow(dead_code)]
#[path = "../tests/e2e/fleet.rs"]
mod fleet;
#[allow(dead_code)]
#[path = "../tests/e2e/nft.rs"]
mod nft;
#[allow(dead_code)]
#[path = "../tests/e2e/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../tests/e2e/nsd.rs"]
mod nsd;
#[allow(dead_code)]
#[path = "../tests/e2e/process.rs"]
mod process;

/// The suite's modules under one name.
mod e2e {
    pub(crate) use super::{fleet, nginx, nsd, process};
}

const CLUSTERS: u8 = 4;
/// Delay before the first byte per cluster with `--delays`: c0 20 ms, c1 50 ms, the others none.
const INJECTED_MS: [u64; CLUSTERS as usize] = [20, 50, 0, 0];
/// The servers' nice value when the benchmark may set it (as root).
const SERVER_NICE: i32 = -10;
/// Every bare request and query gives up after this; the bare run asserts none did.
const BARE_TIMEOUT: Duration = Duration::from_secs(10);
/// A bare run or a sweep that takes longer than this fails the benchmark.
const RUN_LIMIT: Duration = Duration::from_secs(300);

struct Options {
    sites: usize,
    runs: usize,
    concurrency: usize,
    delays: bool,
    spread: Duration,
    scale: bool,
    nginx: bool,
    in_process: bool,
    /// Runtime threads of the server process (`--server-threads N`, default 1).
    server_threads: usize,
    silent_dns: bool,
    drop_cluster: Option<u8>,
    hold_permits: bool,
    /// `--pg URL`: the store in a fresh PostgreSQL database on this server.
    pg: Option<String>,
}

impl Options {
    fn faulty(&self) -> bool {
        self.silent_dns || self.drop_cluster.is_some()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-child") {
        let sites = args.get(1).and_then(|a| a.parse().ok()).expect("--serve-child SITES DELAYS");
        let threads = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
        let drop = args.get(4).and_then(|a| a.parse().ok());
        serve_child(sites, args.get(2).is_some_and(|a| a == "delays"), threads, drop);
        return;
    }
    let flag = |name: &str| args.iter().any(|a| a == name);
    let spread_at = args.iter().position(|a| a == "--spread");
    let threads_at = args.iter().position(|a| a == "--server-threads");
    let drop_at = args.iter().position(|a| a == "--drop-cluster");
    let pg_at = args.iter().position(|a| a == "--pg");
    let drop_cluster = drop_at.and_then(|i| args.get(i + 1)).map(|a| {
        a.trim_start_matches('c').parse::<u8>().ok().filter(|&c| c < CLUSTERS).expect("--drop-cluster c0..c3")
    });
    let server_threads = threads_at.and_then(|i| args.get(i + 1)).and_then(|a| a.parse().ok()).unwrap_or(1);
    let spread = spread_at.and_then(|i| args.get(i + 1)).and_then(|a| a.parse::<f64>().ok()).unwrap_or(0.0);
    let numbers: Vec<usize> = args
        .iter()
        .enumerate()
        .filter(|&(i, a)| {
            !a.starts_with("--")
                && Some(i) != spread_at.map(|s| s + 1)
                && Some(i) != threads_at.map(|t| t + 1)
                && Some(i) != drop_at.map(|d| d + 1)
                && Some(i) != pg_at.map(|d| d + 1)
        })
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let options = Options {
        sites: numbers.first().copied().unwrap_or(10_000),
        runs: numbers.get(1).copied().unwrap_or(3).max(1),
        concurrency: numbers.get(2).copied().unwrap_or(256),
        delays: flag("--delays"),
        spread: Duration::from_secs_f64(spread),
        scale: flag("--scale"),
        nginx: flag("--nginx"),
        in_process: flag("--in-process"),
        server_threads,
        silent_dns: flag("--silent-dns"),
        drop_cluster,
        hold_permits: flag("--hold-permits"),
        pg: pg_at.and_then(|i| args.get(i + 1)).cloned(),
    };
    if flag("--user-stamps") {
        fleetprobe::probe::stamp::set_kernel_timestamps(false);
        println!("kernel timestamps off: the prober stamps in user space (its fallback)");
    }
    print_machine();
    if options.scale {
        scale(&options);
    } else if options.faulty() {
        faulty_runs(&options);
    } else {
        runs(&options);
    }
}

/// The sweep's store: an SQLite file in the bench's directory, or with `--pg URL` a fresh
/// PostgreSQL database on that server, dropped when this is.
struct BenchStore {
    location: StoreLocation,
    /// (server URL, database name) of a database to drop.
    database: Option<(String, String)>,
}

impl BenchStore {
    fn new(options: &Options, dir: &Path) -> Self {
        let Some(server) = &options.pg else {
            return BenchStore { location: StoreLocation::Sqlite(dir.join("bench.db")), database: None };
        };
        let name = format!("fleetprobe_sweep_{}", std::process::id());
        let mut admin = postgres::Client::connect(server, postgres::NoTls).expect("PostgreSQL server");
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).expect("drop");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create");
        let (base, _) = server.rsplit_once('/').expect("--pg takes a URL ending in /DATABASE");
        BenchStore {
            location: StoreLocation::Postgres(format!("{base}/{name}")),
            database: Some((server.clone(), name)),
        }
    }

    fn describe(&self) -> String {
        match &self.location {
            StoreLocation::Sqlite(path) => format!("SQLite {}", path.display()),
            StoreLocation::Postgres(url) => format!("PostgreSQL {url}"),
        }
    }
}

impl Drop for BenchStore {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.database
            && let Ok(mut admin) = postgres::Client::connect(server, postgres::NoTls)
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("machine: {cores} cores ({model}), Linux {}", kernel.trim());
}

/// RUNS rounds of (bare client, sweep) over one fleet, then the latencies of the last sweep.
fn runs(options: &Options) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut servers = Servers::start(options, options.sites, dir.path());
    println!(
        "sweep benchmark: {} sites × (http via DNS + dns) on {}, {} runs, concurrency {}, spread {:?}",
        options.sites,
        servers.describe(),
        options.runs,
        options.concurrency,
        options.spread
    );
    let fleet = Arc::new(Fleet::load(&servers.config).unwrap_or_else(|e| panic!("bench fleet: {e}")));
    let bench_store = BenchStore::new(options, dir.path());
    let location = bench_store.location.clone();
    println!("store: {}", bench_store.describe());
    let client_tls = tls::client_config(None).expect("TLS config");
    let (mut bare_rates, mut sweep_rates, mut ratios, mut cpu_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    for run in 1..=options.runs {
        let cpu = cpu_time();
        let bare = bare_client(&servers.targets, options.concurrency);
        let bare_cpu = cpu_time() - cpu;
        servers.reset_times();
        let (cpu, writer_cpu) = (cpu_time(), thread_cpu_time());
        let (report, rss_kb) = measured_sweep(&fleet, &location, &client_tls);
        let (sweep_cpu, writer_cpu) = (cpu_time() - cpu, thread_cpu_time() - writer_cpu);
        let rate = options.sites as f64 / report.elapsed.as_secs_f64();
        let bare_rate = options.sites as f64 / bare.as_secs_f64();
        println!(
            "run {run}: bare client {bare_rate:>6.0} sites/s ({:.2} s, CPU {:.2} s) | sweep {rate:>6.0} sites/s ({:.2} s, CPU {:.2} s of which store writer {:.2} s, {:.0} checks/s) | ratio {:.2}, by CPU {:.2} | prober peak RSS {:.1} MB",
            bare.as_secs_f64(),
            bare_cpu.as_secs_f64(),
            report.elapsed.as_secs_f64(),
            sweep_cpu.as_secs_f64(),
            writer_cpu.as_secs_f64(),
            report.summary.checks as f64 / report.elapsed.as_secs_f64(),
            rate / bare_rate,
            bare_cpu.as_secs_f64() / sweep_cpu.as_secs_f64(),
            rss_kb as f64 / 1024.0
        );
        print_schedule(&report);
        bare_rates.push(bare_rate);
        sweep_rates.push(rate);
        ratios.push(rate / bare_rate);
        cpu_ratios.push(bare_cpu.as_secs_f64() / sweep_cpu.as_secs_f64());
        last = Some(report);
    }
    let (bare, sweep) = (median(&mut bare_rates), median(&mut sweep_rates));
    println!(
        "median: bare client {bare:.0} sites/s, sweep {sweep:.0} sites/s; sweep / bare client {:.2} (median of the runs' ratios; target ≥ 0.70), by CPU time {:.2}{}",
        median(&mut ratios),
        median(&mut cpu_ratios),
        if options.spread.is_zero() { "" } else { " (the sweep is paced by its spread: not a throughput ratio)" }
    );
    let report = last.expect("at least one run");
    let server_times = servers.take_times();
    print_latencies(&location, report.run_id, &server_times);
    if options.delays {
        print_delay_error(&location, report.run_id, &server_times);
    }
    if let Some(kb) = servers.peak_rss_kb() {
        println!("servers' peak RSS ({}): {:.1} MB", servers.describe(), kb as f64 / 1024.0);
    }
}

/// Sweeps under a fault with the default settings: the time, the outcomes per cluster and
/// class, the checks parked and not measured, and the open connections' peak per cluster.
fn faulty_runs(options: &Options) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut servers = Servers::start(options, options.sites, dir.path());
    let fleet = Arc::new(Fleet::load(&servers.config).unwrap_or_else(|e| panic!("bench fleet: {e}")));
    let p = &fleet.probe;
    println!(
        "sweep under a fault: {} sites × (http via DNS + dns) on {}, {}{}; concurrency {}, per cluster {}, retries {} after {:?}, spread {:?}, timeouts dns {:?} connect {:?}, deadline {:?}, {}",
        options.sites,
        servers.describe(),
        if options.silent_dns { "the nameserver silent" } else { "" },
        options.drop_cluster.map_or(String::new(), |c| format!("cluster c{c} dropping connections")),
        p.concurrency,
        p.cluster_concurrency,
        p.retries,
        p.retry_delay,
        p.spread,
        p.timeouts.dns,
        p.timeouts.connect,
        p.deadline,
        if p.parked_per_cluster == 0 {
            "checks hold their permits while they wait (--hold-permits)".to_string()
        } else {
            format!("parked after {:?} of silence, {} per cluster at most", p.park_after, p.parked_per_cluster)
        }
    );
    let location = StoreLocation::Sqlite(dir.path().join("bench.db"));
    let client_tls = tls::client_config(None).expect("TLS config");
    for run in 1..=options.runs {
        let _ = servers.take_peaks();
        let started = Instant::now();
        let report = run_probe(fleet.clone(), &location, client_tls.clone(), None, false).expect("sweep");
        let took = started.elapsed();
        assert!(took < RUN_LIMIT, "the sweep took {took:?}");
        let peaks = servers.take_peaks();
        let mut classes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for ((_, class), n) in &report.failures {
            *classes.entry(class.clone()).or_default() += n;
        }
        let s = report.schedule;
        println!(
            "run {run}: {:.2} s ({:.2} s of checks), {} checks: {} ok, {} failed {:?}, {} not measured; {} attempts parked{}; servers' peak open connections per cluster {:?} (limit {} per cluster)",
            took.as_secs_f64(),
            s.elapsed.as_secs_f64(),
            report.summary.checks,
            report.summary.checks - report.summary.failures - report.not_measured,
            report.summary.failures,
            classes,
            report.not_measured,
            s.parked,
            if s.parking_stopped > 0 {
                format!(" (parking stopped in {} clusters)", s.parking_stopped)
            } else {
                String::new()
            },
            peaks,
            p.cluster_concurrency
        );
    }
}

/// One bare run and one sweep at 1k, 10k and 100k sites: time and memory should grow linearly.
fn scale(options: &Options) {
    println!(
        "scale: {} rounds of (bare run, sweep) per fleet size, concurrency {}, spread {:?}; medians, and the \
         largest peak RSS and lateness",
        options.runs, options.concurrency, options.spread
    );
    println!(
        "{:>8}  {:>11}  {:>9}  {:>11}  {:>6}  {:>12}  {:>10}  {:>14}  {:>12}  ratio per round",
        "sites", "bare s/s", "sweep s", "sweep s/s", "ratio", "µs per site", "peak RSS", "RSS per site", "max late"
    );
    for sites in [1_000, 10_000, 100_000] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let servers = Servers::start(options, sites, dir.path());
        let fleet = Arc::new(Fleet::load(&servers.config).unwrap_or_else(|e| panic!("bench fleet: {e}")));
        let bench_store = BenchStore::new(options, dir.path());
        let location = bench_store.location.clone();
        let client_tls = tls::client_config(None).expect("TLS config");
        let (mut bare_rates, mut elapsed, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut rss_kb, mut late) = (0, Duration::ZERO);
        for _ in 0..options.runs {
            let bare_rate = sites as f64 / bare_client(&servers.targets, options.concurrency).as_secs_f64();
            let (report, rss) = measured_sweep(&fleet, &location, &client_tls);
            let took = report.elapsed.as_secs_f64();
            bare_rates.push(bare_rate);
            elapsed.push(took);
            ratios.push(sites as f64 / took / bare_rate);
            rss_kb = rss_kb.max(rss);
            late = late.max(report.schedule.max_lateness);
        }
        let per_round = ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ");
        let elapsed = median(&mut elapsed);
        println!(
            "{sites:>8}  {:>11.0}  {elapsed:>9.2}  {:>11.0}  {:>6.2}  {:>12.1}  {:>7.1} MB  {:>8.0} bytes  {:>9.0} ms  {per_round}",
            median(&mut bare_rates),
            sites as f64 / elapsed,
            median(&mut ratios),
            elapsed * 1e6 / sites as f64,
            rss_kb as f64 / 1024.0,
            rss_kb as f64 * 1024.0 / sites as f64,
            late.as_secs_f64() * 1e3
        );
        drop(fleet);
    }
}

/// The middle value (the upper one of an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A sweep through the real command path, with the prober's peak RSS over it.
fn measured_sweep(
    fleet: &Arc<Fleet>,
    location: &StoreLocation,
    client_tls: &Arc<rustls::ClientConfig>,
) -> (ProbeReport, u64) {
    reset_peak_rss();
    let started = Instant::now();
    let report = run_probe(fleet.clone(), location, client_tls.clone(), None, false).expect("sweep");
    assert!(started.elapsed() < RUN_LIMIT, "the sweep took {:?}", started.elapsed());
    let failed = report.summary.failures;
    assert_eq!(failed, 0, "a benchmark against healthy servers must not fail checks: {:?}", report.failures);
    (report, peak_rss_kb("self").unwrap_or(0))
}

fn print_schedule(report: &ProbeReport) {
    let s = report.schedule;
    println!(
        "       schedule: the checks took {:.2} s of the run's {:.2} s (the rest: the store before and after); {} checks spread over {:.1} s; latest start {:.3} s after the sweep began (planned {:.3} s), most late {:.1} ms{}",
        s.elapsed.as_secs_f64(),
        report.elapsed.as_secs_f64(),
        s.checks,
        s.spread.as_secs_f64(),
        s.latest_start.as_secs_f64(),
        s.latest_start_planned.as_secs_f64(),
        s.max_lateness.as_secs_f64() * 1e3,
        if s.spread.is_zero() {
            " (no spread: every check is planned at 0 and waits for a permit)".to_string()
        } else if s.latest_start <= s.spread {
            " (inside the spread window)".to_string()
        } else {
            format!(" (OUTSIDE the spread window by {:.1} ms)", (s.latest_start - s.spread).as_secs_f64() * 1e3)
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The servers: a child process (default), this process (--in-process), or nginx and NSD.

/// What the bare client asks of one site.
struct Target {
    hostname: String,
    frontend: SocketAddr,
    dns: SocketAddr,
}

struct Servers {
    kind: ServerKind,
    config: PathBuf,
    targets: Vec<Target>,
    /// Kept open for the faults' lifetime (`--silent-dns`, `--drop-cluster`).
    _faults: (Option<std::net::UdpSocket>, Option<std::net::TcpListener>),
    /// With `--nginx`: the control target's listener, and the nft table of the faults.
    _nginx_extras: Option<(std::net::TcpListener, Option<nft::Nft>)>,
}

enum ServerKind {
    Child {
        child: Child,
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
    },
    InProcess {
        _runtime: tokio::runtime::Runtime,
        _handles: Vec<servers::ServerHandle>,
        times: Vec<Arc<ResponseTimes>>,
    },
    Nginx {
        nginx: e2e::nginx::Nginx,
        nsd: e2e::nsd::Nsd,
    },
}

impl Servers {
    fn start(options: &Options, sites: usize, dir: &Path) -> Servers {
        if options.nginx {
            return Servers::nginx(options, sites, dir);
        }
        let (kind, dns, port) = if options.in_process {
            let runtime =
                tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
            let (handles, times, dns, port) = runtime.block_on(serve(sites, options.delays, options.drop_cluster));
            (ServerKind::InProcess { _runtime: runtime, _handles: handles, times }, dns, port)
        } else {
            let mut child = Command::new(std::env::current_exe().expect("this benchmark's path"))
                .args([
                    "--serve-child",
                    &sites.to_string(),
                    if options.delays { "delays" } else { "instant" },
                    &options.server_threads.to_string(),
                    &options.drop_cluster.map_or("-".to_string(), |c| c.to_string()),
                ])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the server process");
            let stdin = child.stdin.take().expect("piped");
            let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
            let mut line = String::new();
            stdout.read_line(&mut line).expect("the server process's first line");
            let mut words = line.split_whitespace().skip(1);
            let dns: SocketAddr =
                words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("servers: {line}"));
            let port: u16 = words.next().and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("servers: {line}"));
            (ServerKind::Child { child, stdin, stdout }, dns, port)
        };
        // The faults: a nameserver that never answers, a frontend that drops connections.
        let silent = options.silent_dns.then(|| {
            std::net::UdpSocket::bind((Ipv4Addr::new(127, 0, 30, 54), 0)).expect("the silent nameserver's socket")
        });
        let dns = silent.as_ref().map_or(dns, |s| s.local_addr().expect("its address"));
        let dropping = options.drop_cluster.map(|c| {
            let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
            socket.set_reuse_address(true).expect("SO_REUSEADDR");
            socket.bind(&SocketAddr::new(frontend(c), port).into()).expect("the dropping frontend's address");
            socket.listen(0).expect("listen");
            std::net::TcpListener::from(socket)
        });
        let config = write_fleet(dir, sites, dns, port, options);
        let targets = (0..sites)
            .map(|i| Target { hostname: hostname(i), frontend: (frontend(cluster_of(i)), port).into(), dns })
            .collect();
        Servers { kind, config, targets, _faults: (silent, dropping), _nginx_extras: None }
    }

    fn nginx(options: &Options, sites: usize, dir: &Path) -> Servers {
        let find = |name: &str| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
                .map(|d| d.join(name))
                .find(|c| c.is_file())
        };
        let (Some(nginx_bin), Some(nsd_bin)) = (find("nginx"), find("nsd")) else {
            panic!("--nginx needs nginx and nsd installed (apt-get install nginx-light nsd)");
        };
        let fleet = e2e::fleet::Fleet::generate(e2e::fleet::Net::pick(), sites);
        let healthy = e2e::fleet::Faults::none();
        let started = Instant::now();
        let nsd = e2e::nsd::Nsd::start(&nsd_bin, find("nsd-checkconf").as_deref(), dir, &fleet, &healthy)
            .unwrap_or_else(|e| panic!("{e}"));
        let nginx = e2e::nginx::Nginx::start(&nginx_bin, dir, &fleet, &healthy).unwrap_or_else(|e| panic!("{e}"));
        println!("nginx and NSD up after {:.1?} ({} customer zones)", started.elapsed(), fleet.customers.len());
        let config = fleet.write_config(dir);
        let text = std::fs::read_to_string(&config).expect("read the suite's config");
        let text = if options.faulty() {
            // With a fault: the default `[probe]` settings, as with the benchmark's own servers.
            nginx_fault_settings(&text, options.hold_permits)
        } else {
            // The suite's fleet, with this benchmark's concurrency and spread, no retries, and
            // the default deadline.
            text.replace("concurrency = 128\n", &format!("concurrency = {}\n", options.concurrency))
                .replace("cluster_concurrency = 32\n", &format!("cluster_concurrency = {}\n", options.concurrency))
                .replace("spread = \"250ms\"\n", &format!("spread = \"{}ms\"\n", options.spread.as_millis()))
                .replace("retries = 1\n", "retries = 0\n")
                .replace("deadline = \"15s\"\n", "")
        };
        std::fs::write(&config, text).expect("write the config");
        // The suite's control target is a listener of its own, outside every fault.
        let control = std::net::TcpListener::bind(fleet.net.control()).expect("the control target's listener");
        let faults = options.faulty().then(|| {
            let bin = find("nft").expect("faults with --nginx need nft (apt-get install nftables)");
            let nft = nft::Nft::create(&bin).unwrap_or_else(|e| panic!("faults with --nginx: {e}"));
            let port = fleet.net.port;
            if options.silent_dns {
                nft.add(&format!("ip daddr {} th dport {port} drop", fleet.net.nameserver().ip()))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            if let Some(c) = options.drop_cluster {
                nft.add(&format!("ip daddr {} tcp dport {port} drop", fleet.net.frontend(usize::from(c))))
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            nft
        });
        let targets = fleet
            .sites
            .iter()
            .map(|s| Target {
                hostname: s.hostname.clone(),
                frontend: fleet.net.frontend_addr(s.cluster),
                dns: fleet.net.nameserver(),
            })
            .collect();
        Servers {
            kind: ServerKind::Nginx { nginx, nsd },
            config,
            targets,
            _faults: (None, None),
            _nginx_extras: Some((control, faults)),
        }
    }

    fn describe(&self) -> &'static str {
        match self.kind {
            ServerKind::Child { .. } => "servers in a child process (nice -10 if permitted)",
            ServerKind::InProcess { .. } => "servers in this process (1 runtime thread)",
            ServerKind::Nginx { .. } => "nginx (1 worker) and NSD (1 server)",
        }
    }

    /// The most connections each cluster's server had open at once since the last call.
    fn take_peaks(&mut self) -> Vec<usize> {
        match &mut self.kind {
            ServerKind::InProcess { times, .. } => times.iter().map(|t| t.take_peak_connections()).collect(),
            ServerKind::Child { stdin, stdout, .. } => {
                writeln!(stdin, "peaks").and_then(|()| stdin.flush()).expect("ask the server process");
                let mut line = String::new();
                stdout.read_line(&mut line).expect("the server process's peaks");
                line.split_whitespace().filter_map(|w| w.parse().ok()).collect()
            }
            ServerKind::Nginx { .. } => Vec::new(),
        }
    }

    fn reset_times(&mut self) {
        let _ = self.take_times();
    }

    /// The server-side response times per cluster since the last take (none from nginx).
    fn take_times(&mut self) -> Vec<Histogram<u64>> {
        match &mut self.kind {
            ServerKind::InProcess { times, .. } => times.iter().map(|t| t.take()).collect(),
            ServerKind::Child { stdin, stdout, .. } => {
                writeln!(stdin, "times").and_then(|()| stdin.flush()).expect("ask the server process");
                let mut line = String::new();
                stdout.read_line(&mut line).expect("the server process's times");
                let bytes: Vec<u8> = decode_hex(line.trim());
                let mut reader = &bytes[..];
                let mut deserializer = hdrhistogram::serialization::Deserializer::new();
                (0..CLUSTERS).map(|_| deserializer.deserialize(&mut reader).expect("a histogram")).collect()
            }
            ServerKind::Nginx { .. } => Vec::new(),
        }
    }

    fn peak_rss_kb(&self) -> Option<u64> {
        match &self.kind {
            ServerKind::Child { child, .. } => peak_rss_kb(&child.id().to_string()),
            ServerKind::InProcess { .. } => None,
            ServerKind::Nginx { nginx, nsd } => {
                let tree = |pid: u32| {
                    e2e::process::descendants_of(pid)
                        .iter()
                        .map(|p| p.pid)
                        .chain([pid])
                        .filter_map(|p| peak_rss_kb(&p.to_string()))
                        .sum::<u64>()
                };
                Some(tree(nginx.daemon.pid()) + tree(nsd.daemon.pid()))
            }
        }
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let ServerKind::Child { child, .. } = &mut self.kind {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The end-to-end suite's configuration with the `[probe]` limits, retries, spread, deadline
/// and timeouts left at their defaults; `parked_per_cluster = 0` with `--hold-permits`.
fn nginx_fault_settings(text: &str, hold_permits: bool) -> String {
    const LIMITS: [&str; 7] =
        ["concurrency", "cluster_concurrency", "spread", "retries", "retry_delay", "deadline", "confirm_after"];
    let mut out = String::new();
    let mut section = String::new();
    for line in text.lines() {
        if line.starts_with('[') {
            section = line.to_string();
        }
        let key = line.split('=').next().unwrap_or_default().trim();
        let dropped = (section == "[probe]" && LIMITS.contains(&key)) || section == "[probe.timeouts]";
        if !dropped {
            out.push_str(line);
            out.push('\n');
        }
        if line == "[probe]" && hold_permits {
            out.push_str("parked_per_cluster = 0\n");
        }
    }
    out
}

/// The server process: serves until its standard input closes; answers `times` with the
/// per-cluster response-time histograms since the last `times` (V2 serialized, hex, one line).
fn serve_child(sites: usize, delays: bool, threads: usize, drop: Option<u8>) {
    // Servers first where permitted (root): their own queueing is measured, but the less of it
    // the closer the delays they add come to the ones asked for. Threads made later inherit it.
    // SAFETY: setpriority takes integers only; 0 is this thread.
    let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, SERVER_NICE) } == 0;
    if !niced {
        eprintln!("servers: could not raise their priority (nice {SERVER_NICE}); they run at the prober's");
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime");
    let (_handles, times, dns, port) = runtime.block_on(serve(sites, delays, drop));
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready {dns} {port}").and_then(|()| out.flush()).expect("stdout");
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "peaks" {
            let peaks: Vec<String> = times.iter().map(|t| t.take_peak_connections().to_string()).collect();
            writeln!(out, "{}", peaks.join(" ")).and_then(|()| out.flush()).expect("stdout");
        }
        if line.trim() == "times" {
            let mut bytes = Vec::new();
            let mut serializer = hdrhistogram::serialization::V2Serializer::new();
            for t in &times {
                serializer.serialize(&t.take(), &mut bytes).expect("serialize");
            }
            writeln!(out, "{}", encode_hex(&bytes)).and_then(|()| out.flush()).expect("stdout");
        }
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn decode_hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2).filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()).collect()
}

/// Starts 4 clusters of virtual hosts on 127.0.30.1-4 (one port) and a DNS server on 127.0.30.53.
async fn serve(
    sites: usize,
    delays: bool,
    drop: Option<u8>,
) -> (Vec<servers::ServerHandle>, Vec<Arc<ResponseTimes>>, SocketAddr, u16) {
    let mut zone = servers::dns::Zone::new(["bench.test"]);
    let mut per_cluster: Vec<servers::http::VirtualHosts> =
        (0..CLUSTERS).map(|_| servers::http::VirtualHosts::new(Behavior::Status(421))).collect();
    for i in 0..sites {
        let cluster = cluster_of(i);
        zone.set(&hostname(i), NameBehavior::Answer(vec![frontend(cluster)]));
        let ok = Behavior::Ok { body: "ok".into() };
        let behavior = match INJECTED_MS[cluster as usize] {
            ms if delays && ms > 0 => Behavior::SlowFirstByte { delay: Duration::from_millis(ms), then: Box::new(ok) },
            _ => ok,
        };
        per_cluster[cluster as usize].set(&hostname(i), behavior);
    }
    let dns = servers::dns::spawn((Ipv4Addr::new(127, 0, 30, 53), 0).into(), Arc::new(RwLock::new(zone)))
        .await
        .expect("DNS server");
    let dns_addr = dns.addr();
    let mut handles = vec![dns];
    let mut times = Vec::new();
    let mut port = 0;
    for (cluster, hosts) in per_cluster.into_iter().enumerate() {
        let t = ResponseTimes::new();
        if drop == Some(cluster as u8) {
            // Served by the benchmark's dropping listener instead.
            times.push(t);
            continue;
        }
        let address = (frontend(cluster as u8), port).into();
        let handle = servers::http::spawn_timed(address, None, Arc::new(RwLock::new(hosts)), Some(t.clone()))
            .await
            .expect("HTTP server");
        port = handle.addr().port();
        handles.push(handle);
        times.push(t);
    }
    (handles, times, dns_addr, port)
}

fn cluster_of(site: usize) -> u8 {
    (site % CLUSTERS as usize) as u8
}

fn frontend(cluster: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 30, cluster + 1).into()
}

fn hostname(i: usize) -> String {
    format!("s{i}.bench.test")
}

fn write_fleet(dir: &Path, sites: usize, dns: SocketAddr, port: u16, options: &Options) -> PathBuf {
    let concurrency = options.concurrency;
    // With a fault: the default settings (concurrency, retries, spread, deadline).
    let limits = if options.faulty() {
        format!("parked_per_cluster = {}\n", if options.hold_permits { 0 } else { 2048 })
    } else {
        format!(
            "spread = \"{}ms\"\nconcurrency = {concurrency}\ncluster_concurrency = {concurrency}\nretries = 0\n{}",
            options.spread.as_millis(),
            if options.hold_permits { "parked_per_cluster = 0\n" } else { "" }
        )
    };
    let mut config = format!(
        "[probe]\nvantage = \"bench\"\n{limits}\
         resolvers = [\"{dns}\"]\n\n[inventory]\nsites = \"sites.csv\"\ncustomers = \"customers.csv\"\n\n\
         [[plan]]\nname = \"p\"\ntarget = 99.9\n"
    );
    for c in 0..CLUSTERS {
        let _ = write!(
            config,
            "\n[[cluster]]\nname = \"c{c}\"\nfrontends = [\"{}\"]\nnameservers = [\"{dns}\"]\n",
            frontend(c)
        );
    }
    let mut customers = String::from("customer_id,name,plan,monthly_fee\n");
    let mut site_rows = String::from("site_id,customer,cluster,hostname,url\n");
    for i in 0..sites {
        if i % 10 == 0 {
            let _ = writeln!(customers, "k{},Customer {},p,10", i / 10, i / 10);
        }
        let _ =
            writeln!(site_rows, "s{i},k{},c{},{},http://{}:{port}/", i / 10, cluster_of(i), hostname(i), hostname(i));
    }
    std::fs::write(dir.join("fleet.toml"), config).expect("write config");
    std::fs::write(dir.join("customers.csv"), customers).expect("write customers");
    std::fs::write(dir.join("sites.csv"), site_rows).expect("write sites");
    dir.join("fleet.toml")
}

// ---------------------------------------------------------------------------------------------
// The bare client: the same round trips as the sweep, nothing else.

/// Every site once with `concurrency` in flight: a DNS query, connect and one GET read to the
/// end, and another DNS query (the sweep's HTTP check through DNS and its DNS check).
fn bare_client(targets: &[Target], concurrency: usize) -> Duration {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let next = AtomicUsize::new(0);
    let failures = AtomicUsize::new(0);
    let started = Instant::now();
    runtime.block_on(async {
        let targets = Arc::new(targets.iter().map(|t| (t.hostname.clone(), t.frontend, t.dns)).collect::<Vec<(
            String,
            SocketAddr,
            SocketAddr,
        )>>());
        let next = Arc::new(next);
        let failures = Arc::new(failures);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (targets, next, failures) = (targets.clone(), next.clone(), failures.clone());
            workers.spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((host, frontend, dns)) = targets.get(i) else { return };
                    let ok = tokio::time::timeout(BARE_TIMEOUT, async {
                        dns_query(*dns, host, i as u16, &mut buf).await?;
                        http_get(*frontend, host, &mut buf).await?;
                        dns_query(*dns, host, (i as u16).wrapping_add(1), &mut buf).await
                    })
                    .await;
                    if !matches!(ok, Ok(Ok(()))) {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
        let failed = failures.load(Ordering::Relaxed);
        assert_eq!(failed, 0, "the bare client failed {failed} sites");
    });
    let elapsed = started.elapsed();
    assert!(elapsed < RUN_LIMIT, "the bare client took {elapsed:?}");
    elapsed
}

async fn dns_query(server: SocketAddr, name: &str, id: u16, buf: &mut [u8]) -> std::io::Result<()> {
    let socket = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.connect(server).await?;
    let mut packet = Vec::with_capacity(64);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]); // root, A, IN
    socket.send(&packet).await?;
    loop {
        let n = socket.recv(buf).await?;
        if n >= 2 && buf[..2] == id.to_be_bytes() {
            return Ok(());
        }
    }
}

async fn http_get(frontend: SocketAddr, host: &str, buf: &mut [u8]) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(frontend).await?;
    stream.set_nodelay(true)?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut total = 0;
    loop {
        let n = stream.read(buf).await?;
        if n == 0 {
            break;
        }
        total += n;
    }
    if total == 0 {
        return Err(std::io::Error::other("empty response"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Percentiles of the last run, merged over clusters from the stored histograms, and the
/// servers' own response times next to the first byte.
fn print_latencies(location: &StoreLocation, run_id: store::RunId, server_times: &[Histogram<u64>]) {
    let store = store::open(location).expect("store");
    let records = store.run_histograms(run_id).expect("histograms");
    println!("latency the prober reported in the last sweep, merged over clusters:");
    let mut first_byte_p50 = None;
    for (check, phase) in [
        (CheckKind::Dns, Phase::Dns),
        (CheckKind::Http, Phase::Dns),
        (CheckKind::Http, Phase::Connect),
        (CheckKind::Http, Phase::FirstByte),
        (CheckKind::Http, Phase::Total),
    ] {
        let mut merged = histogram::new_latency_histogram();
        for r in records.iter().filter(|r| r.check == check && r.phase == phase) {
            merged.add(&r.histogram).expect("same bounds");
        }
        let ms = |q: f64| merged.value_at_quantile(q) as f64 / 1000.0;
        if phase == Phase::FirstByte {
            first_byte_p50 = Some(ms(0.5));
        }
        println!(
            "  {:<4} {:<10}  p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  (n={})",
            check.as_str(),
            phase.as_str(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            merged.max() as f64 / 1000.0,
            merged.len()
        );
    }
    // Instant clusters only: the difference is the prober's own addition to the first byte.
    let instant: Vec<&Histogram<u64>> = server_times
        .iter()
        .enumerate()
        .filter(|&(c, h)| INJECTED_MS[c] == 0 && !h.is_empty())
        .map(|(_, h)| h)
        .collect();
    if instant.is_empty() {
        return;
    }
    let mut merged = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("bounds");
    for h in &instant {
        merged.add(*h).expect("same bounds");
    }
    let server_ms = |q: f64| merged.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  server side (request arrival → response send), instant clusters: p50 {:.3} ms  p99 {:.3} ms  (n={})",
        server_ms(0.5),
        server_ms(0.99),
        merged.len()
    );
    let mut reported = histogram::new_latency_histogram();
    for r in records.iter().filter(|r| {
        r.check == CheckKind::Http
            && r.phase == Phase::FirstByte
            && r.cluster.strip_prefix('c').and_then(|c| c.parse::<usize>().ok()).is_some_and(|c| INJECTED_MS[c] == 0)
    }) {
        reported.add(&r.histogram).expect("same bounds");
    }
    if !reported.is_empty() {
        let p50 = reported.value_at_quantile(0.5) as f64 / 1000.0;
        println!(
            "  prober's own addition to the first byte, instant clusters: p50 {:.3} ms reported − {:.3} ms server side = {:+.3} ms (target ≤ 0.5 ms)",
            p50,
            server_ms(0.5),
            p50 - server_ms(0.5)
        );
    } else if let Some(p50) = first_byte_p50 {
        println!("  first byte p50 {p50:.3} ms");
    }
}

/// The first-byte percentiles each cluster reported, against the delay its servers added.
fn print_delay_error(location: &StoreLocation, run_id: store::RunId, server_times: &[Histogram<u64>]) {
    let store = store::open(location).expect("store");
    let records = store.run_histograms(run_id).expect("histograms");
    println!(
        "honest latency under load: first byte per cluster, reported vs injected delay (and the server's own time):"
    );
    for (c, injected) in INJECTED_MS.iter().enumerate() {
        let Some(r) = records
            .iter()
            .find(|r| r.cluster == format!("c{c}") && r.check == CheckKind::Http && r.phase == Phase::FirstByte)
        else {
            continue;
        };
        let ms = |q: f64| r.histogram.value_at_quantile(q) as f64 / 1000.0;
        let server = server_times.get(c).filter(|h| !h.is_empty()).map_or(String::new(), |h| {
            format!(
                "  | server side p50 {:.3} ms p99 {:.3} ms",
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0
            )
        });
        println!(
            "  c{c}: injected {injected:>3} ms  reported p50 {:>7.3} ms (error {:+.3} ms)  p99 {:>7.3} ms (error {:+.3} ms){server}",
            ms(0.5),
            ms(0.5) - *injected as f64,
            ms(0.99),
            ms(0.99) - *injected as f64
        );
    }
}

/// CPU time (user and system) this process has used so far: the prober's, not the servers'.
fn cpu_time() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// CPU time of the calling thread: for the sweep, the store writer (`run_probe` writes on it).
fn thread_cpu_time() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &raw mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Starts a new peak-RSS measurement of this process (Linux: clear_refs 5 resets VmHWM).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb(pid: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
}
