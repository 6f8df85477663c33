//! `fleetprobe demo`: the example fleet served on loopback inside this process, then probed.
//!
//! The demo plays the fleet: HTTP(S) virtual hosts on each cluster's frontend address and an
//! authoritative DNS server on each nameserver address, all from `servers`. By default it plays a
//! scenario (`scenario.rs`) over simulated time: real sweeps, simulated timestamps, faults switched
//! on and off between runs; then it writes the reports people would read. `--once` breaks a few
//! sites in different ways, sweeps once and prints what the prober found next to what was broken.

mod scenario;
mod showcase;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::app::Error;
use crate::app::probe::{ProbeReport, run_probe};
use crate::fleet::{Fleet, SiteIdx, StoreLocation};
use crate::probe::{CheckKind, Failure, tls};
use crate::servers::{self, ServerHandle, dns::NameBehavior, http::Behavior, pki};
use crate::store::{self, ResultFilter};

/// The demo fleet, compiled in so `fleetprobe demo` works from any directory.
pub const EXAMPLE_FILES: &[(&str, &str)] = &[
    ("fleetprobe.toml", include_str!("../../probes/example.toml")),
    ("example-sites.csv", include_str!("../../probes/example-sites.csv")),
    ("example-customers.csv", include_str!("../../probes/example-customers.csv")),
    ("demo-scenario.toml", include_str!("../../probes/demo-scenario.toml")),
    ("reports/branding.toml", include_str!("../../reports/branding.toml")),
    ("reports/logo.svg", include_str!("../../reports/logo.svg")),
];

/// One way a demo site is broken, and what the prober must find for each of its checks.
#[derive(Debug, Clone)]
pub struct Fault {
    pub site: SiteIdx,
    pub what: &'static str,
    pub kind: FaultKind,
    pub expected: Vec<(CheckKind, Failure)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Http503,
    SlowFirstByte,
    RedirectLoop,
    ExpiredCertificate,
    Nxdomain,
    Servfail,
    WrongAnswer,
}

/// How the scenario is played.
#[derive(Debug, Clone)]
pub struct Options {
    /// Probers sweeping every run, each with its own vantage name and source address (1 to 5).
    pub vantages: u8,
    /// A PostgreSQL URL to play into instead of the SQLite file in the demo's directory; the
    /// database must hold no fleetprobe data yet.
    pub store: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { vantages: 1, store: None }
    }
}

/// Runs the demo in `dir` (a new temporary directory when `None`): the scenario (the built-in
/// one unless `scenario` names a file), or with `once` a single sweep with a few sites broken.
pub fn run(dir: Option<&Path>, scenario: Option<&Path>, once: bool, options: &Options) -> Result<(), Error> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("fleetprobe-demo-{}", std::process::id())),
    };
    if once { run_once(&dir) } else { showcase::run(&dir, scenario, options) }
}

fn run_once(dir: &Path) -> Result<(), Error> {
    let dir = dir.to_path_buf();
    let config_path = write_example(&dir)?;
    let fleet = Fleet::load(&config_path).map_err(|e| Error::config(format!("demo fleet: {e}")))?;
    let fleet = Arc::new(fleet);
    let faults = choose_faults(&fleet);

    let ca = pki::TestCa::new("fleetprobe demo CA").map_err(|e| Error::internal(format!("demo CA: {e}")))?;
    std::fs::write(dir.join("demo-ca.pem"), ca.cert_pem())
        .map_err(|e| Error::internal(format!("{}: {e}", dir.join("demo-ca.pem").display())))?;
    let servers_runtime = servers_runtime()?;
    let servers = servers_runtime.block_on(serve_fleet(&fleet, &faults, &ca))?;

    let store = StoreLocation::Sqlite(dir.join("fleetprobe.db"));
    let tls = tls::client_config_with_roots(ca.roots()).map_err(|e| Error::internal(e.to_string()))?;
    let progress = std::io::stderr().is_terminal();
    let report = run_probe(fleet.clone(), &store, tls, None, progress)?;
    drop(servers);

    // Read back what was stored, as any report would.
    let found = failed_checks(&fleet, &store, report.run_id)?;
    print_findings(&fleet, &faults, &found, &report, &dir, &config_path);
    let missed: Vec<String> = faults
        .iter()
        .flat_map(|f| f.expected.iter().map(move |(check, failure)| (f.site, *check, *failure)))
        .filter(|(site, check, failure)| found.get(&(*site, *check)).map(|(f, _)| f) != Some(failure))
        .map(|(site, check, failure)| format!("{} {check}: expected {failure}", fleet.sites[site].id))
        .collect();
    let unexpected = found.keys().filter(|(site, _)| !faults.iter().any(|f| f.site == *site)).count();
    if !missed.is_empty() || unexpected > 0 {
        return Err(Error::internal(format!(
            "the demo's findings differ from its faults ({unexpected} unexpected failures): {}",
            missed.join("; ")
        )));
    }
    Ok(())
}

/// One worker thread serves the whole demo fleet, beside the prober's own runtime.
fn servers_runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("demo-servers")
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the demo servers' runtime: {e}")))
}

/// Writes the embedded example fleet into `dir`; returns the configuration's path.
fn write_example(dir: &Path) -> Result<PathBuf, Error> {
    let io = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    for (name, text) in EXAMPLE_FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| io(&path, e))?;
    }
    Ok(dir.join("fleetprobe.toml"))
}

/// Picks the broken sites: fixed positions in each cluster, so every run of the demo (and its
/// test) breaks the same sites.
pub fn choose_faults(fleet: &Fleet) -> Vec<Fault> {
    let by_cluster = |cluster: &str, tls: Option<bool>| -> Vec<SiteIdx> {
        let Some(c) = fleet.cluster_index(cluster) else { return Vec::new() };
        (0..fleet.sites.len())
            .filter(|&i| {
                fleet.sites[i].cluster == c
                    && fleet.sites[i].checks.contains(CheckKind::Http)
                    && fleet.sites[i].checks.contains(CheckKind::Dns)
            })
            .filter(|&i| tls.is_none_or(|t| fleet.sites[i].url.tls == t))
            .collect()
    };
    let http_only = |f: Failure| vec![(CheckKind::Http, f)];
    let both = |f: Failure| vec![(CheckKind::Http, f), (CheckKind::Dns, f)];
    // (cluster, plain or TLS sites only, nth such site, fault, description, expected findings)
    type Planned = (&'static str, Option<bool>, usize, FaultKind, &'static str, Vec<(CheckKind, Failure)>);
    let plan: [Planned; 7] = [
        ("ams-1", Some(false), 0, FaultKind::Http503, "web server answers 503", http_only(Failure::HttpStatus)),
        (
            "ams-1",
            Some(false),
            1,
            FaultKind::SlowFirstByte,
            "first byte after 3 s (timeout 2 s)",
            http_only(Failure::Timeout(crate::probe::Phase::FirstByte)),
        ),
        ("ams-2", None, 0, FaultKind::Nxdomain, "name deleted from its zone", both(Failure::DnsNxdomain)),
        (
            "ams-2",
            None,
            1,
            FaultKind::WrongAnswer,
            "zone points at a dead address",
            vec![(CheckKind::Http, Failure::ConnectRefused), (CheckKind::Dns, Failure::DnsWrongAnswer)],
        ),
        ("fra-1", Some(true), 0, FaultKind::ExpiredCertificate, "certificate expired", http_only(Failure::TlsExpired)),
        ("lon-1", None, 0, FaultKind::RedirectLoop, "redirects to itself", http_only(Failure::RedirectLoop)),
        ("lon-1", None, 1, FaultKind::Servfail, "nameserver answers SERVFAIL", both(Failure::DnsServfail)),
    ];
    let mut taken = BTreeSet::new();
    let mut faults = Vec::new();
    for (cluster, tls, nth, kind, what, expected) in plan {
        let candidates: Vec<SiteIdx> = by_cluster(cluster, tls).into_iter().filter(|i| !taken.contains(i)).collect();
        if let Some(&site) = candidates.get(nth.min(candidates.len().saturating_sub(1))) {
            taken.insert(site);
            faults.push(Fault { site, what, kind, expected });
        }
    }
    faults
}

/// The demo's servers, with handles on what they serve so faults can change between runs.
pub struct DemoServers {
    _handles: Vec<ServerHandle>,
    pub zone: Arc<RwLock<servers::dns::Zone>>,
    /// Each HTTP listener's sites and virtual hosts.
    pub listeners: Vec<(Vec<SiteIdx>, Arc<RwLock<servers::http::VirtualHosts>>)>,
}

/// Starts the web frontends and nameservers of the fleet, with the faults applied.
async fn serve_fleet(fleet: &Fleet, faults: &[Fault], ca: &pki::TestCa) -> Result<DemoServers, Error> {
    let fault_of: HashMap<SiteIdx, FaultKind> = faults.iter().map(|f| (f.site, f.kind)).collect();
    let dead_address: IpAddr = [127, 0, 9, 9].into();

    // DNS: one zone shared by every nameserver address.
    let suffixes: BTreeSet<String> =
        fleet.sites.iter().map(|s| s.hostname.split('.').rev().take(2).collect::<Vec<_>>().join(".")).collect();
    let suffixes: Vec<String> =
        suffixes.into_iter().map(|s| s.split('.').rev().collect::<Vec<_>>().join(".")).collect();
    let mut zone = servers::dns::Zone::new(&suffixes);
    for (idx, site) in fleet.sites.iter().enumerate() {
        let frontends = fleet.clusters[site.cluster].frontends.clone();
        let behavior = match fault_of.get(&idx) {
            Some(FaultKind::Nxdomain) => None,
            Some(FaultKind::Servfail) => Some(NameBehavior::Servfail),
            Some(FaultKind::WrongAnswer) => Some(NameBehavior::Answer(vec![dead_address])),
            _ => Some(NameBehavior::Answer(frontends)),
        };
        if let Some(behavior) = behavior {
            zone.set(&site.hostname, behavior);
        }
    }
    let zone = Arc::new(RwLock::new(zone));
    let mut listener_hosts = Vec::new();
    let mut nameservers: BTreeSet<SocketAddr> = fleet.clusters.iter().flat_map(|c| c.nameservers.clone()).collect();
    nameservers.extend(fleet.probe.resolvers.iter().copied());

    // HTTP: per frontend address and port, the virtual hosts of that cluster's sites.
    let mut listeners: BTreeMap<(IpAddr, u16, bool), Vec<SiteIdx>> = BTreeMap::new();
    for (idx, site) in fleet.sites.iter().enumerate() {
        for &frontend in &fleet.clusters[site.cluster].frontends {
            listeners.entry((frontend, site.url.port, site.url.tls)).or_default().push(idx);
        }
    }
    let all_addresses = listeners.keys().map(|(ip, _, _)| *ip).chain(nameservers.iter().map(|a| a.ip()));
    if let Some(ip) = all_addresses.clone().find(|ip| !ip.is_loopback()) {
        return Err(Error::config(format!("the demo serves loopback addresses only; {ip} is not one")));
    }

    let mut handles = Vec::new();
    let bind_error = |addr: SocketAddr, e: std::io::Error| {
        Error::internal(format!("cannot serve {addr}: {e} (is another demo running?)"))
    };
    for address in nameservers {
        handles.push(servers::dns::spawn(address, zone.clone()).await.map_err(|e| bind_error(address, e))?);
    }
    for ((ip, port, tls), sites) in listeners {
        let mut hosts = servers::http::VirtualHosts::new(Behavior::Status(421));
        let mut valid_names = Vec::new();
        let mut expired_names = Vec::new();
        for &idx in &sites {
            let site = &fleet.sites[idx];
            let ok = Behavior::Ok { body: demo_page(fleet, idx) };
            let behavior = match fault_of.get(&idx) {
                Some(FaultKind::Http503) => Behavior::Status(503),
                Some(FaultKind::SlowFirstByte) => {
                    Behavior::SlowFirstByte { delay: Duration::from_secs(3), then: Box::new(ok) }
                }
                Some(FaultKind::RedirectLoop) => Behavior::Redirect(site.url.to_string()),
                _ => ok,
            };
            hosts.set(&site.url.host, behavior);
            if fault_of.get(&idx) == Some(&FaultKind::ExpiredCertificate) {
                expired_names.push(site.url.host.clone());
            } else {
                valid_names.push(site.url.host.clone());
            }
        }
        let tls_config = if tls {
            let groups = [(valid_names, pki::Validity::Current), (expired_names, pki::Validity::Expired)];
            Some(ca.server_config_by_name(&groups).map_err(|e| Error::internal(format!("demo certificates: {e}")))?)
        } else {
            None
        };
        let address = SocketAddr::new(ip, port);
        let hosts = Arc::new(RwLock::new(hosts));
        handles
            .push(servers::http::spawn(address, tls_config, hosts.clone()).await.map_err(|e| bind_error(address, e))?);
        listener_hosts.push((sites, hosts));
    }
    // TCP: a mail server's greeting on each frontend address and port that a TCP check connects to.
    let tcp_ports: BTreeSet<(IpAddr, u16)> = fleet
        .sites
        .iter()
        .filter_map(|s| {
            s.checks
                .port(CheckKind::Tcp)
                .or(fleet.probe.tcp.port)
                .filter(|_| s.checks.contains(CheckKind::Tcp))
                .map(|p| (s.cluster, p))
        })
        .flat_map(|(cluster, port)| fleet.clusters[cluster].frontends.iter().map(move |&ip| (ip, port)))
        .collect();
    for (ip, port) in tcp_ports.into_iter().filter(|(ip, _)| ip.is_loopback()) {
        let address = SocketAddr::new(ip, port);
        let greeting = servers::tcp::BannerBehavior::Banner(format!("220 {ip} ESMTP fleetprobe demo"));
        handles.push(
            servers::tcp::spawn(address, Arc::new(RwLock::new(greeting))).await.map_err(|e| bind_error(address, e))?,
        );
    }
    Ok(DemoServers { _handles: handles, zone, listeners: listener_hosts })
}

fn demo_page(fleet: &Fleet, idx: SiteIdx) -> String {
    let site = &fleet.sites[idx];
    let customer = &fleet.customers[site.customer];
    format!(
        "<!doctype html><title>{}</title><h1>{}</h1><p>Hosted on {} for customer {}.</p>\n",
        site.hostname, site.hostname, fleet.clusters[site.cluster].name, customer.id
    )
}

/// Failed checks by (site, check): the failure and its detail.
type Findings = BTreeMap<(SiteIdx, CheckKind), (Failure, String)>;

/// The failed checks of a run, read back from the store.
fn failed_checks(fleet: &Fleet, location: &StoreLocation, run_id: store::RunId) -> Result<Findings, Error> {
    let store = store::open(location).map_err(|e| Error::store(e.to_string()))?;
    let index: HashMap<&str, SiteIdx> = fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
    let mut found = BTreeMap::new();
    let filter = ResultFilter { run_id: Some(run_id), failed_only: true, ..ResultFilter::default() };
    store
        .results(&filter, &mut |r| {
            if let (Some(failure), Some(&site)) = (r.outcome.failure(), index.get(r.site.id.as_str())) {
                found.insert((site, r.check), (failure, r.detail.unwrap_or_default()));
            }
            Ok(())
        })
        .map_err(|e| Error::store(e.to_string()))?;
    Ok(found)
}

fn print_findings(
    fleet: &Fleet,
    faults: &[Fault],
    found: &Findings,
    report: &ProbeReport,
    dir: &Path,
    config_path: &Path,
) {
    let frontends: BTreeSet<String> =
        fleet.clusters.iter().flat_map(|c| c.frontends.iter().map(|f| f.to_string())).collect();
    println!(
        "fleetprobe demo: {} sites of {} customers on {} clusters, served on {}",
        fleet.sites.len(),
        fleet.customers.len(),
        fleet.clusters.len(),
        frontends.into_iter().collect::<Vec<_>>().join(", ")
    );
    println!(
        "probed {} checks in {:.1} s: {} failed, {} sites down (run {})\n",
        report.summary.checks,
        report.elapsed.as_secs_f64(),
        report.summary.failures,
        report.sites_down,
        report.run_id
    );
    println!("{:<12} {:<7} {:<5} {:<24} {:<36} detail", "site", "cluster", "check", "found", "broken on purpose");
    for ((site, check), (failure, detail)) in found {
        let s = &fleet.sites[*site];
        let fault = faults.iter().find(|f| f.site == *site).map_or("(not broken on purpose)", |f| f.what);
        let detail: String = detail.chars().take(70).collect();
        println!(
            "{:<12} {:<7} {:<5} {:<24} {:<36} {detail}",
            s.id,
            fleet.clusters[s.cluster].name,
            check.as_str(),
            failure.to_string(),
            fault
        );
    }
    let store = dir.join("fleetprobe.db");
    println!("\nstore: {}", store.display());
    println!("try:   fleetprobe results -c {} --failed", config_path.display());
    println!("       fleetprobe results -c {} --site {} --format csv", config_path.display(), fleet.sites[0].id);
}
