//! The TCP check against real loopback listeners: a banner that matches, a refused port, a
//! listener that never speaks, a wrong banner, one that hangs up, connect-only mode; then a
//! fleet with TCP checks probed, stored and read back by `results` and `report latency`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fleetprobe::fleet::Timeouts;
use fleetprobe::probe::tcp::{self, TcpTarget};
use fleetprobe::probe::{Failure, Phase, Probed};
use fleetprobe::servers::ServerHandle;
use fleetprobe::servers::tcp::{BannerBehavior, closed_port, spawn};

use crate::fixtures::{self, Customer, FleetFiles, Site, ok};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn timeouts() -> Timeouts {
    Timeouts {
        dns: Duration::from_secs(1),
        connect: Duration::from_secs(1),
        tls: Duration::from_secs(1),
        first_byte: Duration::from_millis(300),
        body: Duration::from_secs(1),
        total: Duration::from_secs(3),
    }
}

async fn listener(behavior: BannerBehavior) -> ServerHandle {
    spawn((LOOPBACK, 0).into(), Arc::new(RwLock::new(behavior))).await.unwrap()
}

async fn check(addr: SocketAddr, banner: Option<&str>) -> Probed {
    let target = TcpTarget { host: "127.0.0.1", port: addr.port(), connect_to: None, banner };
    tcp::check(&target, &timeouts(), &[]).await
}

#[tokio::test]
async fn a_matching_banner_is_ok_and_timed_per_phase() {
    let server = listener(BannerBehavior::Banner("220 mail.example.test ESMTP".into())).await;
    let probed = check(server.addr(), Some("220")).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert_eq!(probed.timings.dns_us, None, "an address needs no lookup");
    assert!(probed.timings.connect_us.is_some());
    let first_byte = probed.timings.first_byte_us.expect("the banner's first byte is timed");
    assert!(first_byte <= probed.timings.total_us);
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let addr = closed_port(LOOPBACK).await.unwrap();
    let probed = check(addr, Some("220")).await;
    assert_eq!(probed.failure, Some(Failure::ConnectRefused), "{probed:?}");
}

#[tokio::test]
async fn a_silent_listener_times_out_waiting_for_the_banner_within_the_bound() {
    let server = listener(BannerBehavior::Silent).await;
    let started = Instant::now();
    let probed = check(server.addr(), Some("220")).await;
    assert_eq!(probed.failure, Some(Failure::Timeout(Phase::FirstByte)), "{probed:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(1), "{waited:?}");
    assert!(probed.timings.first_byte_us.is_some_and(|us| us >= 290_000), "{probed:?}");
}

#[tokio::test]
async fn a_wrong_banner_is_a_mismatch_that_shows_what_came() {
    let server = listener(BannerBehavior::Banner("SSH-2.0-OpenSSH_9.6\u{7}".into())).await;
    let probed = check(server.addr(), Some("220")).await;
    assert_eq!(probed.failure, Some(Failure::BannerMismatch), "{probed:?}");
    let detail = probed.detail.unwrap();
    assert_eq!(detail, "banner \"SSH-2.0-OpenSSH_9.6\\u{7}\" does not start with \"220\"");
}

#[tokio::test]
async fn a_long_banner_is_read_only_up_to_its_bound() {
    let server = listener(BannerBehavior::Banner("x".repeat(100_000))).await;
    let probed = check(server.addr(), Some("220")).await;
    assert_eq!(probed.failure, Some(Failure::BannerMismatch), "{probed:?}");
    assert!(probed.detail.unwrap().len() < 200);
}

#[tokio::test]
async fn a_listener_that_hangs_up_before_its_banner_is_a_protocol_error() {
    let server = listener(BannerBehavior::Close).await;
    let probed = check(server.addr(), Some("220")).await;
    assert_eq!(probed.failure, Some(Failure::ProtocolError), "{probed:?}");
    assert!(probed.detail.unwrap().contains("closed the connection before a banner"));
}

#[tokio::test]
async fn without_a_banner_to_expect_connecting_is_enough() {
    let server = listener(BannerBehavior::Silent).await;
    let started = Instant::now();
    let probed = check(server.addr(), None).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert_eq!(probed.timings.first_byte_us, None);
    assert!(started.elapsed() < Duration::from_millis(300), "connect-only does not wait for a banner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_with_tcp_checks_is_probed_stored_and_reported() {
    let good = listener(BannerBehavior::Banner("220 mx.example.test ESMTP".into())).await;
    let wrong = listener(BannerBehavior::Banner("554 go away".into())).await;
    let refused = closed_port(LOOPBACK).await.unwrap();
    let fleet = FleetFiles::new()
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe_tcp("via", "frontend")
        .probe_tcp("port", i64::from(good.addr().port()))
        .probe_tcp("banner", "220")
        .cluster("mail", &["127.0.0.1"])
        .plan("p", 99.9, &[])
        .customer(Customer::new("k1", "K", "p", "1"))
        .sites([
            Site::new("mx1", "k1", "mail", "mx1.example.test").checks("tcp"),
            Site::new("mx2", "k1", "mail", "mx2.example.test").checks(format!("tcp:{}", wrong.addr().port())),
            Site::new("mx3", "k1", "mail", "mx3.example.test").checks(format!("tcp:{}", refused.port())),
        ])
        .write_temp();
    let config = fleet.config().to_path_buf();
    let fleetprobe =
        |args: &[&str], config: &Path| ok(&fixtures::fleetprobe().args(args).arg("-c").arg(config).output().unwrap());

    let checked = fleetprobe(&["check"], &config);
    assert!(checked.contains("mail"), "{checked}");
    // The prober is a separate process; the listeners keep serving on this runtime's threads.
    let config_for_probe = config.clone();
    tokio::task::spawn_blocking(move || fleetprobe(&["probe", "-q"], &config_for_probe)).await.unwrap();

    let csv = fleetprobe(&["results", "--run", "latest", "--format", "csv"], &config);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut outcomes = std::collections::BTreeMap::new();
    for row in reader.records() {
        let row = row.unwrap();
        assert_eq!(&row[column("check")], "tcp");
        outcomes.insert(row[column("site_id")].to_string(), row[column("outcome")].to_string());
        if &row[column("site_id")] == "mx1" {
            assert!(!row[column("connect_ms")].is_empty() && !row[column("first_byte_ms")].is_empty(), "{row:?}");
        }
    }
    let expected: std::collections::BTreeMap<String, String> =
        [("mx1", "ok"), ("mx2", "banner_mismatch"), ("mx3", "connect_refused")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(outcomes, expected);

    let latency = fleetprobe(&["report", "latency", "--cluster", "mail", "--check", "tcp", "--format", "csv"], &config);
    let phases: Vec<&str> = latency.lines().skip(1).filter_map(|l| l.split(',').nth(2)).collect();
    assert_eq!(phases, ["connect", "first_byte", "total"], "{latency}");
}

#[test]
fn tcp_settings_and_check_lists_are_validated_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "[probe.tcp]\nport = 70000\nbanner = \"\"\n\n[inventory]\nsites = \"sites.csv\"\ncustomers = \"customers.csv\"\n\n\
         [[cluster]]\nname = \"mail\"\nfrontends = [\"127.0.0.1\"]\n\n[[plan]]\nname = \"p\"\ntarget = 99.9\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("customers.csv"), "customer_id,name,plan,monthly_fee\nk1,K,p,1\n").unwrap();
    std::fs::write(
        dir.path().join("sites.csv"),
        "site_id,customer,cluster,hostname,checks\nmx1,k1,mail,mx1.test,tcp\nmx2,k1,mail,mx2.test,http icmp\n\
         mx3,k1,mail,mx3.test,tcp:0\n",
    )
    .unwrap();
    let out = fixtures::fleetprobe().arg("check").arg("-c").arg(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "fleet.toml:2: probe.tcp.port: 70000 is not a port; expected 1 to 65535",
        "fleet.toml:3: probe.tcp.banner: expected the text the banner starts with",
        "sites.csv:2: checks: the tcp check needs a port; expected `tcp:PORT` here or `port` in [probe.tcp]",
        "sites.csv:3: checks: unknown check `icmp`; expected one of: http, dns, tcp",
        "sites.csv:4: checks: `tcp:0`: `0` is not a port; expected tcp:PORT with PORT from 1 to 65535",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in:\n{stderr}");
    }
}

/// `probe.source_address`: the prober's TCP connections and DNS queries leave from that address
/// (servers see it as the peer), so a vantage can be given a path of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_leave_from_the_configured_source_address() {
    let tcp = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let udp = tokio::net::UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let (tcp_port, udp_address) = (tcp.local_addr().unwrap().port(), udp.local_addr().unwrap());
    let fleet = FleetFiles::new()
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe("source_address", "127.0.30.7")
        .probe_tcp("via", "frontend")
        .timeout("dns", "300ms")
        .cluster_with_nameservers("mail", &["127.0.0.1"], &[&udp_address.to_string()])
        .plan("p", 99.9, &[])
        .customer(Customer::new("k1", "K", "p", "1"))
        .site(Site::new("mx1", "k1", "mail", "mx1.example.test").checks(format!("tcp:{tcp_port} dns")))
        .write_temp();
    let config = fleet.config().to_path_buf();
    let probe = tokio::task::spawn_blocking(move || {
        ok(&fixtures::fleetprobe().args(["probe", "-q", "-c"]).arg(&config).output().unwrap())
    });
    let (_, tcp_peer) = tokio::time::timeout(Duration::from_secs(10), tcp.accept()).await.unwrap().unwrap();
    let mut buf = [0u8; 512];
    let (_, udp_peer) = tokio::time::timeout(Duration::from_secs(10), udp.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(tcp_peer.ip(), "127.0.30.7".parse::<IpAddr>().unwrap(), "the TCP check's source");
    assert_eq!(udp_peer.ip(), "127.0.30.7".parse::<IpAddr>().unwrap(), "the DNS query's source");
    probe.await.unwrap();
}
