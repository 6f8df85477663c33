//! The demo over simulated time: the scenario played run by run against the served fleet, then
//! every report written into one directory, and what to open printed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::scenario::{FaultKind, Scenario};
use super::{DemoServers, demo_page, serve_fleet, servers_runtime, write_example};
use crate::analysis::sla;
use crate::app::Error;
use crate::app::probe::run_probe;
use crate::fleet::{Fleet, StoreLocation};
use crate::probe::{CheckKind, Phase, tls};
use crate::report::chart::{self, ChartSize};
use crate::report::latency::{ChartKind, Vantages, build_chart};
use crate::report::pdf::{self, Branding};
use crate::report::period::Period;
use crate::report::{clusters, sla as sla_report, sla_document};
use crate::servers::dns::NameBehavior;
use crate::servers::http::Behavior;
use crate::servers::pki;
use crate::store::{self, LatencyScope};

/// Where the demo's webhook receiver listens.
const WEBHOOK: &str = "127.0.10.250:10080";

/// The probers of `--vantages N` (N ≥ 2): names and source addresses, distinct loopback
/// addresses so that the demo's servers can tell them apart.
const VANTAGES: [(&str, [u8; 4]); 5] = [
    ("par-probe", [127, 0, 20, 1]),
    ("waw-probe", [127, 0, 20, 2]),
    ("mad-probe", [127, 0, 20, 3]),
    ("cph-probe", [127, 0, 20, 4]),
    ("vie-probe", [127, 0, 20, 5]),
];

/// The fleet as each prober sees it: one vantage (the configuration's own) or `n`, each with its
/// name and source address.
fn probers(fleet: &Arc<Fleet>, n: u8) -> Vec<Arc<Fleet>> {
    if n <= 1 {
        return vec![Arc::clone(fleet)];
    }
    VANTAGES
        .iter()
        .take(usize::from(n))
        .map(|(name, address)| {
            let mut prober = Fleet::clone(fleet);
            prober.probe.vantage = (*name).to_string();
            prober.probe.source_address = Some(std::net::IpAddr::from(*address));
            Arc::new(prober)
        })
        .collect()
}

pub fn run(dir: &Path, scenario_path: Option<&Path>, options: &super::Options) -> Result<(), Error> {
    let started = std::time::Instant::now();
    let config_path = write_example(dir)?;
    let (scenario_path, scenario_text) = match scenario_path {
        Some(path) => (
            path.to_path_buf(),
            std::fs::read_to_string(path).map_err(|e| Error::config(format!("{}: {e}", path.display())))?,
        ),
        None => (
            dir.join("demo-scenario.toml"),
            super::EXAMPLE_FILES
                .iter()
                .find(|(n, _)| *n == "demo-scenario.toml")
                .map_or(String::new(), |(_, t)| t.to_string()),
        ),
    };
    // The scenario's runs are real sweeps back to back: no spread, no retries, and the interval
    // the scenario simulates, written into the demo's configuration so that reports agree.
    let fleet_probe = Fleet::load(&config_path).map_err(|e| Error::config(format!("demo fleet: {e}")))?;
    let scenario = Scenario::parse(&scenario_path, &scenario_text, &fleet_probe)
        .map_err(|e| Error::config(format!("demo scenario:\n{e}")))?;
    let location = demo_store(dir, options.store.as_deref())?;
    let config = std::fs::read_to_string(&config_path).map_err(|e| Error::internal(e.to_string()))?;
    // Reports run on the demo's configuration afterwards read the store the demo played into.
    let store_url = match &location {
        StoreLocation::Postgres(url) => toml::Value::String(url.clone()).to_string(),
        StoreLocation::Sqlite(_) => "\"fleetprobe.db\"".to_string(),
    };
    let config = config
        .replace("url = \"fleetprobe.db\"", &format!("url = {store_url}"))
        .replace("interval = \"60s\"", &format!("interval = \"{}s\"", scenario.interval.as_secs()))
        .replace("spread = \"2s\"", "spread = \"0s\"")
        .replace("retries = 1 ", "retries = 0 ");
    // Ops' side too: the metrics file after the last run, and the incident events posted to a
    // webhook receiver the demo runs itself.
    let config = format!(
        "{config}\n[metrics]\ntextfile = \"fleetprobe.prom\"\n\n[notify]\ndeadline = \"2s\"\n\n\
         [[notify.target]]\nname = \"demo-webhook\"\nkind = \"webhook\"\nurl = \"http://{WEBHOOK}/\"\n"
    );
    std::fs::write(&config_path, config).map_err(|e| Error::internal(e.to_string()))?;
    let fleet = Arc::new(Fleet::load(&config_path).map_err(|e| Error::config(format!("demo fleet: {e}")))?);
    let probers = probers(&fleet, options.vantages);
    // The path break is the last vantage's, and played only when others can outvote it.
    let broken_source = probers.last().filter(|_| probers.len() > 1).and_then(|p| p.probe.source_address);

    let ca = pki::TestCa::new("fleetprobe demo CA").map_err(|e| Error::internal(format!("demo CA: {e}")))?;
    std::fs::write(dir.join("demo-ca.pem"), ca.cert_pem()).map_err(|e| Error::internal(e.to_string()))?;
    let servers_runtime = servers_runtime()?;
    let servers = servers_runtime.block_on(serve_fleet(&fleet, &[], &ca))?;
    let webhook: std::net::SocketAddr = WEBHOOK.parse().map_err(|e| Error::internal(format!("{WEBHOOK}: {e}")))?;
    let received = servers_runtime
        .block_on(crate::servers::webhook::spawn(webhook))
        .map_err(|e| Error::internal(format!("cannot serve {WEBHOOK}: {e} (is another demo running?)")))?;
    let pages: Vec<String> = (0..fleet.sites.len()).map(|i| demo_page(&fleet, i)).collect();
    let client_tls = tls::client_config_with_roots(ca.roots()).map_err(|e| Error::internal(e.to_string()))?;

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(u64::from(scenario.runs));
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} simulating {msg} [{bar:30}] {pos}/{len} runs ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    for n in 0..scenario.runs {
        let at_ms = scenario.run_at(n);
        let broken = broken_source.and_then(|source| scenario.broken_path(at_ms).map(|cluster| (cluster, source)));
        apply(&fleet, &servers, &scenario, &pages, at_ms, broken);
        let at = jiff::Timestamp::from_millisecond(at_ms).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(bar) = &bar {
            bar.set_message(at.strftime("%Y-%m-%d %H:%M").to_string());
        }
        // Every vantage sweeps at the same simulated time, one after the other.
        let mut report = None;
        for prober in &probers {
            report = Some(run_probe(Arc::clone(prober), &location, client_tls.clone(), Some(at), false)?);
        }
        let report = report.ok_or_else(|| Error::internal("the demo has no prober"))?;
        let now_ms = report.started_at_ms + report.elapsed.as_millis() as i64;
        let mut store = store::open(&location)?;
        let recent = crate::app::analyze::recent(&fleet, store.as_ref(), now_ms)?;
        crate::app::notify::notify(&fleet, store.as_mut(), &recent, now_ms)?;
        if n + 1 == scenario.runs
            && let Some(path) = &fleet.metrics.textfile
        {
            crate::app::metrics::write(&fleet, &recent, &report, path)?;
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    drop(servers);
    let swept = started.elapsed();
    let written = write_reports(dir, &fleet, &location, &scenario)?;
    let names: Vec<&str> = probers.iter().map(|p| p.probe.vantage.as_str()).collect();
    println!(
        "fleetprobe demo: {} runs of {} sites ({} checks each) over {} simulated hours, probed for real in {:.1} s",
        scenario.runs,
        fleet.sites.len(),
        fleet.check_count(),
        scenario.runs as u64 * scenario.interval.as_secs() / 3600,
        swept.as_secs_f64()
    );
    let quorum = fleet.analysis.quorum;
    let rule = u32::try_from(names.len())
        .ok()
        .filter(|&n| n > 1)
        .map_or(String::new(), |n| format!(", down by {quorum} ({} of {n})", quorum.needed(n)));
    let plural = if names.len() == 1 { "" } else { "s" };
    println!("measured by {} vantage{plural} ({}){rule}", names.len(), names.join(", "));
    let shown = match &location {
        StoreLocation::Postgres(url) => store::postgres::redact(url),
        StoreLocation::Sqlite(path) => path.display().to_string(),
    };
    println!("store: {shown}");
    for fault in &scenario.faults {
        println!("  played: {} ({} sites)", fault.name, fault.sites.len());
    }
    if let (Some(path), Some(source), Some(prober)) = (&scenario.path_break, broken_source, probers.last()) {
        let show = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms).map_or(String::new(), |t| t.strftime("%Y-%m-%d %H:%M").to_string())
        };
        println!(
            "  played: {}'s path to {} broken ({source} refused by its frontends) {} – {} UTC: vantage-local, not an outage",
            prober.probe.vantage,
            fleet.clusters[path.cluster].name,
            show(path.from_ms),
            show(path.to_ms),
        );
    }
    println!("\nopen:");
    for (what, path) in &written {
        println!("  {:<44} {}", what, path.display());
    }
    let events = received.lock().map(|bodies| bodies.clone()).unwrap_or_default();
    println!(
        "\nwebhook: {} events posted to the demo's receiver at http://{WEBHOOK}/ (`[[notify.target]]`):",
        events.len()
    );
    for body in events.iter().take(12) {
        let event: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        println!(
            "  {:<9} {}",
            event["event"].as_str().unwrap_or("?"),
            event["summary"].as_str().unwrap_or(body.as_str())
        );
    }
    if events.len() > 12 {
        println!("  … and {} more", events.len() - 12);
    }
    if let Some(path) = &fleet.metrics.textfile {
        println!("metrics: {} (Prometheus text format, after the last run)", path.display());
    }
    println!("\ntry:   fleetprobe report incidents -c {} --from 2026-10-13 --to 2026-10-16", config_path.display());
    Ok(())
}

/// The store the demo plays into: a fresh SQLite file in `dir` (an earlier demo's is removed: its
/// runs would clash with the scenario's), or the PostgreSQL database at `url`, which must hold
/// no fleetprobe data: the demo never deletes what it did not write in this run.
fn demo_store(dir: &Path, url: Option<&str>) -> Result<StoreLocation, Error> {
    let Some(url) = url else {
        let path = dir.join("fleetprobe.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        return Ok(StoreLocation::Sqlite(path));
    };
    let location = match StoreLocation::parse(url, dir) {
        Ok(location @ StoreLocation::Postgres(_)) => location,
        _ => {
            return Err(Error::config(format!(
                "--store {url}: expected a PostgreSQL URL (postgres://...); without --store the demo plays into {}",
                dir.join("fleetprobe.db").display()
            )));
        }
    };
    let store = store::open(&location)?;
    let vantages = store.vantages()?;
    if !vantages.is_empty() || !store.site_keys()?.is_empty() || !store.incident_updates(None, None)?.is_empty() {
        let runs = if vantages.is_empty() { String::new() } else { format!(" (runs of {})", vantages.join(", ")) };
        return Err(Error::store(format!(
            "--store {}: the database already holds fleetprobe data{runs}; the demo plays its scenario into an \
             empty database only, so that its simulated runs never mix with real ones. Give a new database \
             (e.g. `createdb fleetprobe_demo`)",
            store.location()
        )));
    }
    Ok(location)
}

/// Sets every site's behaviour for the moment `at_ms`: healthy unless a fault is active; and
/// with `broken` = (cluster, source address), that cluster's frontends drop that prober.
fn apply(
    fleet: &Fleet,
    servers: &DemoServers,
    scenario: &Scenario,
    pages: &[String],
    at_ms: i64,
    broken: Option<(crate::fleet::ClusterIdx, std::net::IpAddr)>,
) {
    let mut http: Vec<Behavior> = pages.iter().map(|p| Behavior::Ok { body: p.clone() }).collect();
    let mut dns: Vec<NameBehavior> =
        fleet.sites.iter().map(|s| NameBehavior::Answer(fleet.clusters[s.cluster].frontends.clone())).collect();
    for fault in scenario.active(at_ms) {
        for &site in &fault.sites {
            match fault.kind {
                FaultKind::Http503 => http[site] = Behavior::Status(503),
                FaultKind::Slow(delay) => {
                    http[site] =
                        Behavior::SlowFirstByte { delay, then: Box::new(Behavior::Ok { body: pages[site].clone() }) }
                }
                FaultKind::Nxdomain => dns[site] = NameBehavior::Nxdomain,
                FaultKind::Servfail => dns[site] = NameBehavior::Servfail,
            }
        }
    }
    if let Ok(mut zone) = servers.zone.write() {
        for (site, behavior) in dns.into_iter().enumerate() {
            match behavior {
                NameBehavior::Nxdomain => {
                    zone.remove(&fleet.sites[site].hostname);
                }
                other => {
                    zone.set(&fleet.sites[site].hostname, other);
                }
            }
        }
    }
    for (sites, hosts) in &servers.listeners {
        if let Ok(mut hosts) = hosts.write() {
            for &site in sites {
                hosts.set(&fleet.sites[site].url.host, http[site].clone());
            }
            // A listener serves one frontend address, which belongs to one cluster.
            let cluster = sites.first().map(|&site| fleet.sites[site].cluster);
            hosts.set_dropped_sources(broken.filter(|(c, _)| Some(*c) == cluster).map(|(_, source)| source));
        }
    }
}

/// Writes the cluster report, the worst-hit customer's SLA PDF, credits.csv and latency charts.
fn write_reports(
    dir: &Path,
    fleet: &Fleet,
    location: &StoreLocation,
    scenario: &Scenario,
) -> Result<Vec<(&'static str, PathBuf)>, Error> {
    let io = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    let end_ms = scenario.run_at(scenario.runs);
    let ts = |ms: i64| jiff::Timestamp::from_millisecond(ms).map_err(|e| Error::internal(e.to_string()));
    let period = Period {
        start: ts(scenario.start_ms)?,
        end: ts(end_ms)?,
        label: format!(
            "{} – {}",
            ts(scenario.start_ms)?.strftime("%Y-%m-%d %H:%M"),
            ts(end_ms)?.strftime("%Y-%m-%d %H:%M UTC")
        ),
        tz: jiff::tz::TimeZone::UTC,
        now: ts(end_ms)?,
    };
    let store = store::open(location)?;
    let analysis = crate::app::analyze::analyze_period(fleet, store.as_ref(), &period)?;
    let mut written = Vec::new();

    let report = clusters::build(fleet, &period, &analysis);
    let html_path = dir.join("clusters.html");
    let charts = clusters::charts(fleet, &period, &analysis, store.as_ref(), &Vantages::all(store.as_ref())?);
    std::fs::write(&html_path, clusters::html(&report, &charts)).map_err(|e| io(&html_path, e))?;
    written.push(("cluster report (HTML, charts inline)", html_path));

    let slas: Vec<sla::CustomerSla> = (0..fleet.customers.len()).map(|c| analysis.customer_sla(fleet, c)).collect();
    let credits_path = dir.join("credits.csv");
    let rows: Vec<_> = slas.iter().map(|s| sla_report::credit_row(fleet, &period, s)).collect();
    let mut file = std::fs::File::create(&credits_path).map_err(|e| io(&credits_path, e))?;
    sla_report::credits_csv(&rows).write_csv(&mut file).map_err(|e| io(&credits_path, e))?;
    written.push(("credits for billing (CSV)", credits_path));

    // The worst-hit customer: the lowest availability, then the longest downtime, then the
    // largest credit.
    if let Some(worst) = slas.iter().filter(|s| s.availability.is_some()).min_by(|a, b| {
        a.availability
            .unwrap_or(1.0)
            .total_cmp(&b.availability.unwrap_or(1.0))
            .then(b.downtime_ms.cmp(&a.downtime_ms))
            .then(b.total_credit_cents().cmp(&a.total_credit_cents()))
    }) {
        let branding = Branding::load(Some(&dir.join("reports"))).map_err(|e| Error::config(e.to_string()))?;
        let doc = sla_document::document(
            fleet,
            &period,
            &analysis,
            worst,
            store.as_ref(),
            &mut crate::report::sla_charts::LatencyCharts::default(),
        );
        let bytes = pdf::render_sla_pdf(&doc, &branding).map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.join(format!("sla-{}.pdf", fleet.customers[worst.customer].id));
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        written.push(("SLA PDF of the worst-hit customer", path));
    }

    // The public status page as of the scenario's end, with bars for the days it covers.
    let day = |ms: i64| ms.div_euclid(24 * 3600 * 1000);
    let days = u32::try_from(day(end_ms) - day(scenario.start_ms) + 1).unwrap_or(90).clamp(1, 90);
    let index = crate::app::status::write(fleet, store.as_ref(), &dir.join("status"), end_ms, days)?;
    written.push(("public status page (and its Atom feed)", index));

    let vantages = Vantages::all(store.as_ref())?;
    for (kind, name) in [(ChartKind::Bands, "bands"), (ChartKind::Heatmap, "heatmap")] {
        let scope = LatencyScope::Cluster("lon-1".into());
        if let Ok(chart) = build_chart(
            store.as_ref(),
            &vantages,
            None,
            &[scope],
            CheckKind::Http,
            Some(Phase::FirstByte),
            kind,
            &period,
        ) {
            let path = dir.join(format!("latency-lon-1-{name}.png"));
            chart::write_file(&chart, &path, ChartSize::default()).map_err(|e| Error::internal(e.0))?;
            written.push(if name == "bands" {
                ("latency of the slow cluster (percentile bands)", path)
            } else {
                ("latency of the slow cluster (heatmap)", path)
            });
        }
    }
    Ok(written)
}
