//! Sweep throughput on a loopback fleet, peak memory, and the latency the prober reports for
//! servers that answer at once (its own overhead).
//!
//! `cargo bench --bench sweep -- [SITES] [RUNS] [CONCURRENCY]` (default 10000 sites, 3 runs, 256 in
//! flight; a low concurrency shows the prober's own overhead without CPU queueing).
//! `-- ... --delays` makes clusters c0 and c1 wait 20 ms and 50 ms before the first byte, and
//! prints the first-byte p50/p99 the prober reported for each cluster against the injected delay. The fleet's HTTP
//! virtual hosts (4 clusters) and its authoritative DNS server run in this process on their own
//! runtime thread, so prober and servers share the machine's cores as they would on one box.
//! Every site gets an HTTP check through DNS and a DNS check: two checks and three round trips.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use fleetprobe::cli::run_probe;
use fleetprobe::fleet::{Fleet, StoreLocation};
use fleetprobe::probe::{CheckKind, Phase, tls};
use fleetprobe::servers::{self, dns::NameBehavior, http::Behavior};
use fleetprobe::store::{self, histogram};

const CLUSTERS: u8 = 4;

fn main() {
    let delays = std::env::args().any(|a| a == "--delays");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let sites: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(256);
    let dir = tempfile::tempdir().expect("temporary directory");

    let servers_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (handles, dns_addr, http_port) = servers_runtime.block_on(serve(sites, delays));
    let config = write_fleet(dir.path(), sites, dns_addr, http_port, concurrency);
    let fleet = Arc::new(Fleet::load(&config).unwrap_or_else(|e| panic!("bench fleet: {e}")));
    let location = StoreLocation::Sqlite(dir.path().join("bench.db"));
    let client_tls = tls::client_config(None).expect("TLS config");

    println!(
        "sweep benchmark: {sites} sites × (http via DNS + dns), {runs} runs, concurrency {}",
        fleet.probe.concurrency
    );
    let mut rates = Vec::new();
    for run in 1..=runs {
        let started = Instant::now();
        let report = run_probe(fleet.clone(), &location, client_tls.clone(), None, false).expect("sweep");
        let elapsed = started.elapsed().as_secs_f64();
        let rate = sites as f64 / elapsed;
        rates.push(rate);
        let failed = report.summary.failures;
        println!(
            "run {run}: {elapsed:.2} s, {rate:.0} sites/s ({:.0} checks/s), {failed} failed checks",
            report.summary.checks as f64 / elapsed
        );
        assert_eq!(failed, 0, "a benchmark against healthy servers must not fail checks: {:?}", report.failures);
        if run == runs {
            print_latencies(&location, report.run_id);
            if delays {
                print_delay_error(&location, report.run_id);
            }
        }
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} sites/s", rates[rates.len() / 2]);
    println!("peak RSS (prober and servers together): {:.1} MB", peak_rss_kb() as f64 / 1024.0);
    drop(handles);
}

/// Starts 4 clusters of virtual hosts on 127.0.30.1-4 (one port) and a DNS server on 127.0.30.53.
/// Delay before the first byte per cluster with `--delays`: c0 20 ms, c1 50 ms, the others none.
const INJECTED_MS: [u64; CLUSTERS as usize] = [20, 50, 0, 0];

async fn serve(sites: usize, delays: bool) -> (Vec<servers::ServerHandle>, SocketAddr, u16) {
    let mut zone = servers::dns::Zone::new(["bench.test"]);
    let mut per_cluster: Vec<servers::http::VirtualHosts> =
        (0..CLUSTERS).map(|_| servers::http::VirtualHosts::new(Behavior::Status(421))).collect();
    for i in 0..sites {
        let cluster = (i % CLUSTERS as usize) as u8;
        zone.set(&hostname(i), NameBehavior::Answer(vec![frontend(cluster)]));
        let ok = Behavior::Ok { body: "ok".into() };
        let behavior = match INJECTED_MS[cluster as usize] {
            ms if delays && ms > 0 => {
                Behavior::SlowFirstByte { delay: std::time::Duration::from_millis(ms), then: Box::new(ok) }
            }
            _ => ok,
        };
        per_cluster[cluster as usize].set(&hostname(i), behavior);
    }
    let dns = servers::dns::spawn((Ipv4Addr::new(127, 0, 30, 53), 0).into(), Arc::new(RwLock::new(zone)))
        .await
        .expect("DNS server");
    let dns_addr = dns.addr();
    let mut handles = vec![dns];
    let mut port = 0;
    for (cluster, hosts) in per_cluster.into_iter().enumerate() {
        let handle = servers::http::spawn((frontend(cluster as u8), port).into(), None, Arc::new(RwLock::new(hosts)))
            .await
            .expect("HTTP server");
        port = handle.addr().port();
        handles.push(handle);
    }
    (handles, dns_addr, port)
}

fn frontend(cluster: u8) -> IpAddr {
    Ipv4Addr::new(127, 0, 30, cluster + 1).into()
}

fn hostname(i: usize) -> String {
    format!("s{i}.bench.test")
}

fn write_fleet(
    dir: &std::path::Path,
    sites: usize,
    dns: SocketAddr,
    port: u16,
    concurrency: usize,
) -> std::path::PathBuf {
    let mut config = format!(
        "[probe]\nvantage = \"bench\"\nspread = \"0s\"\nconcurrency = {concurrency}\ncluster_concurrency = {concurrency}\nretries = 0\n\
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
        let _ = writeln!(
            site_rows,
            "s{i},k{},c{},{},http://{}:{port}/",
            i / 10,
            i % CLUSTERS as usize,
            hostname(i),
            hostname(i)
        );
    }
    std::fs::write(dir.join("fleet.toml"), config).expect("write config");
    std::fs::write(dir.join("customers.csv"), customers).expect("write customers");
    std::fs::write(dir.join("sites.csv"), site_rows).expect("write sites");
    dir.join("fleet.toml")
}

/// Percentiles of the last run, merged over clusters from the stored histograms.
fn print_latencies(location: &StoreLocation, run_id: store::RunId) {
    let store = store::open(location).expect("store");
    let records = store.run_histograms(run_id).expect("histograms");
    println!("latency the prober reported (instant servers), merged over clusters:");
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
}

/// The first-byte percentiles each cluster reported, against the delay its servers added.
fn print_delay_error(location: &StoreLocation, run_id: store::RunId) {
    let store = store::open(location).expect("store");
    let records = store.run_histograms(run_id).expect("histograms");
    println!("honest latency under load: first byte per cluster, reported vs injected delay:");
    for (c, injected) in INJECTED_MS.iter().enumerate() {
        let Some(r) = records
            .iter()
            .find(|r| r.cluster == format!("c{c}") && r.check == CheckKind::Http && r.phase == Phase::FirstByte)
        else {
            continue;
        };
        let ms = |q: f64| r.histogram.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "  c{c}: injected {injected:>3} ms  reported p50 {:>7.3} ms (error {:+.3} ms)  p99 {:>7.3} ms (error {:+.3} ms)",
            ms(0.5),
            ms(0.5) - *injected as f64,
            ms(0.99),
            ms(0.99) - *injected as f64
        );
    }
}

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
