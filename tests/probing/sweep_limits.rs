//! The prober must not hurt the fleet: the global and per-cluster concurrency limits hold, and
//! check starts are spread over the configured window. Two clusters of counting servers on
//! loopback record how many requests they serve at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fleetprobe::fleet::Fleet;
use fleetprobe::probe::{CheckResult, Probers, sweep, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixtures::{Customer, FleetFiles, Site, temp_dir};

/// In-flight requests now, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A server that holds each request for `hold`, counting it in its cluster's gauge and the
/// fleet-wide one.
async fn counting_server(ip: [u8; 4], hold: Duration, cluster: Arc<Gauge>, fleet: Arc<Gauge>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0))).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (cluster, fleet) = (cluster.clone(), fleet.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                cluster.enter();
                fleet.enter();
                tokio::time::sleep(hold).await;
                cluster.leave();
                fleet.leave();
                let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
            });
        }
    });
    addr
}

/// Two clusters `c0` and `c1`, one per server, with `sites_per_cluster` sites each, checked
/// through the cluster's frontend; no retries.
fn two_clusters(servers: [SocketAddr; 2], sites_per_cluster: usize) -> FleetFiles {
    let mut fleet = FleetFiles::new()
        .probe("retries", 0)
        .probe_http("via", "frontend")
        .plan("p", 99.9, &[])
        .customer(Customer::new("k1", "K", "p", "1"));
    for (c, server) in servers.iter().enumerate() {
        let cluster = format!("c{c}");
        let sites = (0..sites_per_cluster).map(|i| {
            Site::new(format!("c{c}s{i}"), "k1", &cluster, format!("s{i}.c{c}.test"))
                .url(format!("http://s{i}.c{c}.test:{}/", server.port()))
                .checks("http")
        });
        fleet = fleet.cluster(&cluster, &[&server.ip().to_string()]).sites(sites);
    }
    fleet
}

fn load(fleet: FleetFiles) -> Fleet {
    let dir = temp_dir();
    Fleet::load(&fleet.write(dir.path())).unwrap()
}

async fn run_sweep(fleet: Fleet) -> Vec<CheckResult> {
    let fleet = Arc::new(fleet);
    let probers = Probers::new(&fleet, tls::client_config(None).unwrap());
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
    let sweep = tokio::spawn(sweep::sweep(fleet, probers, 0, sender));
    let mut results = Vec::new();
    while let Some(result) = receiver.recv().await {
        results.push(result);
    }
    sweep.await.unwrap();
    results
}

struct Setup {
    clusters: [Arc<Gauge>; 2],
    fleet_gauge: Arc<Gauge>,
    servers: [SocketAddr; 2],
}

async fn setup(hold: Duration, ips: [[u8; 4]; 2]) -> Setup {
    let fleet_gauge = Arc::new(Gauge::default());
    let clusters = [Arc::new(Gauge::default()), Arc::new(Gauge::default())];
    let servers = [
        counting_server(ips[0], hold, clusters[0].clone(), fleet_gauge.clone()).await,
        counting_server(ips[1], hold, clusters[1].clone(), fleet_gauge.clone()).await,
    ];
    Setup { clusters, fleet_gauge, servers }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_cluster_limit_holds() {
    let s = setup(Duration::from_millis(40), [[127, 0, 0, 71], [127, 0, 0, 72]]).await;
    let fleet =
        two_clusters(s.servers, 30).probe("spread", "0s").probe("concurrency", 100).probe("cluster_concurrency", 3);
    let fleet = load(fleet);
    let results = run_sweep(fleet).await;
    assert_eq!(results.len(), 60);
    assert!(results.iter().all(|r| r.outcome.is_ok()), "{results:?}");
    for gauge in &s.clusters {
        assert!(gauge.peak() <= 3, "a cluster saw {} requests at once", gauge.peak());
        assert!(gauge.peak() >= 2, "the limit should still allow parallel checks");
    }
    // Each cluster is limited on its own: both ran at once.
    assert!(s.fleet_gauge.peak() > 3, "clusters should not wait for each other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_holds_across_clusters() {
    let s = setup(Duration::from_millis(40), [[127, 0, 0, 73], [127, 0, 0, 74]]).await;
    let fleet =
        two_clusters(s.servers, 20).probe("spread", "0s").probe("concurrency", 4).probe("cluster_concurrency", 10);
    let fleet = load(fleet);
    let results = run_sweep(fleet).await;
    assert_eq!(results.len(), 40);
    assert!(s.fleet_gauge.peak() <= 4, "the fleet saw {} requests at once", s.fleet_gauge.peak());
    // The fair semaphore lets both clusters in, not one after the other.
    assert!(s.clusters.iter().all(|g| g.peak() >= 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_starts_are_spread_over_the_window() {
    let s = setup(Duration::from_millis(1), [[127, 0, 0, 75], [127, 0, 0, 76]]).await;
    let fleet = load(two_clusters(s.servers, 40).probe("spread", "800ms").probe("concurrency", 100));
    let results = run_sweep(fleet).await;
    assert_eq!(results.len(), 80);
    let starts: Vec<i64> = results.iter().map(|r| r.started_at_ms).collect();
    let (first, last) = (*starts.iter().min().unwrap(), *starts.iter().max().unwrap());
    assert!(last < 800 + 200, "every check starts within the window (last at {last} ms)");
    assert!(last - first > 400, "starts are spread, not bunched ({first}..{last} ms)");
    // The same site starts at the same offset every run.
    let offset = sweep::spread_offset("c0s1", Duration::from_millis(800)).as_millis() as i64;
    let start = results.iter().find(|r| r.site == 1).unwrap().started_at_ms;
    assert!((start - offset).abs() < 150, "site c0s1 started at {start} ms, its offset is {offset} ms");
}

/// A frontend that drops new connections: a listener that never accepts, with room for one
/// connection in its queue, so that the kernel drops the SYNs after it (the client times out).
fn dropping_frontend(ip: [u8; 4]) -> (tokio::net::TcpListener, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// A nameserver that never answers: a bound UDP socket nobody reads.
fn silent_nameserver(ip: [u8; 4]) -> (std::net::UdpSocket, SocketAddr) {
    let socket = std::net::UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// `count` sites of one cluster with a DNS check against `nameserver`, no retries.
fn dns_fleet(nameserver: SocketAddr, count: usize) -> FleetFiles {
    let sites = (0..count).map(|i| Site::new(format!("s{i}"), "k1", "c0", format!("s{i}.silent.test")).checks("dns"));
    FleetFiles::new()
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe("concurrency", 4)
        .probe("cluster_concurrency", 4)
        .timeout("dns", "1s")
        .plan("p", 99.9, &[])
        .customer(Customer::new("k1", "K", "p", "1"))
        .cluster_with_nameservers("c0", &[], &[&nameserver.to_string()])
        .sites(sites)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_nameserver_does_not_stretch_the_sweep() {
    // 100 checks of 1 s each, 4 in flight: 25 s if each held its permits while it waited.
    let (_socket, nameserver) = silent_nameserver([127, 0, 0, 81]);
    let fleet = load(dns_fleet(nameserver, 100).probe("park_after", "50ms"));
    let started = std::time::Instant::now();
    let results = run_sweep(fleet).await;
    let took = started.elapsed();
    assert_eq!(results.len(), 100);
    assert!(
        results.iter().all(|r| r.outcome.failure() == Some(fleetprobe::probe::Failure::DnsTimeout)),
        "every check is a DNS timeout: {results:?}"
    );
    assert!(took < Duration::from_secs(8), "the sweep took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropping_cluster_does_not_hold_up_an_answering_one_which_keeps_its_limit() {
    let fleet_gauge = Arc::new(Gauge::default());
    let answering = Arc::new(Gauge::default());
    let good = counting_server([127, 0, 0, 82], Duration::from_millis(20), answering.clone(), fleet_gauge).await;
    let (_listener, dropping) = dropping_frontend([127, 0, 0, 83]);
    let fleet = two_clusters([good, dropping], 40)
        .probe("spread", "0s")
        .probe("concurrency", 4)
        .probe("cluster_concurrency", 2)
        .probe("park_after", "50ms")
        .timeout("connect", "1s")
        .timeout("first_byte", "1s");
    let started = std::time::Instant::now();
    let results = run_sweep(load(fleet)).await;
    let took = started.elapsed();
    assert_eq!(results.len(), 80);
    let (c0, c1): (Vec<&CheckResult>, Vec<&CheckResult>) = results.iter().partition(|r| r.site < 40);
    assert!(c0.iter().all(|r| r.outcome.is_ok()), "{c0:?}");
    assert!(answering.peak() <= 2, "the answering cluster saw {} requests at once", answering.peak());
    // Every dropped check is its timeout: the handshake's, or the first byte's for the one or
    // two connections the listener's queue took.
    use fleetprobe::probe::{Failure, Phase};
    let connect_timeouts = c1.iter().filter(|r| r.outcome.failure() == Some(Failure::ConnectTimeout)).count();
    let first_byte = c1.iter().filter(|r| r.outcome.failure() == Some(Failure::Timeout(Phase::FirstByte))).count();
    assert_eq!(connect_timeouts + first_byte, 40, "{c1:?}");
    assert!(first_byte <= 2, "{first_byte} connections were taken");
    // Held permits: 40 × 1 s / 2 = 20 s; parked, about 1 s plus 40 × 50 ms / 2.
    assert!(took < Duration::from_secs(10), "the sweep took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_unfinished_at_the_deadline_are_not_measured() {
    // Without parking, 100 checks of 1 s with 4 in flight need 25 s; the deadline is 2 s.
    let (_socket, nameserver) = silent_nameserver([127, 0, 0, 84]);
    let fleet = load(dns_fleet(nameserver, 100).probe("parked_per_cluster", 0).probe("deadline", "2s"));
    let started = std::time::Instant::now();
    let results = run_sweep(fleet).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "the sweep took {took:?}");
    assert_eq!(results.len(), 100, "every check has a result");
    use fleetprobe::probe::Failure;
    let timeouts = results.iter().filter(|r| r.outcome.failure() == Some(Failure::DnsTimeout)).count();
    let not_measured: Vec<&CheckResult> =
        results.iter().filter(|r| r.outcome.failure() == Some(Failure::NotMeasured)).collect();
    assert_eq!(timeouts + not_measured.len(), 100, "{results:?}");
    assert!((4..=12).contains(&timeouts), "{timeouts} checks finished before the deadline");
    assert!(not_measured.iter().all(|r| r.detail.as_deref().is_some_and(|d| d.contains("deadline"))));
}
