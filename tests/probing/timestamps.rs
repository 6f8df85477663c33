//! Kernel timestamps and their user-space fallback (`probe::stamp`): both give the known delay
//! of a server, and each says which it is. One test, first with kernel stamps, then without;
//! because the switch is process-wide, the test runs in a process of its own: the test binary
//! started again for this one test, so the other probing tests never see the switch turned off.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetprobe::fleet::{DnsSettings, HttpSettings, RecordKind, SiteUrl, Timeouts, Via};
use fleetprobe::probe::http::{HttpProber, HttpTarget};
use fleetprobe::probe::stamp::{self, Source, StampedTcp, StampedUdp};
use fleetprobe::probe::{dns, tls};
use fleetprobe::servers;
use fleetprobe::servers::dns::{NameBehavior, Zone};
use fleetprobe::servers::http::{Behavior, ResponseTimes, VirtualHosts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const DELAY: Duration = Duration::from_millis(40);
/// Slack above the delay on a busy test machine; the lower bound is exact.
const SLACK: Duration = Duration::from_millis(30);

/// Set in the process started for the test alone.
const ALONE: &str = "FLEETPROBE_TEST_TIMESTAMPS_ALONE";

#[test]
fn kernel_stamps_and_the_user_space_fallback_both_time_a_known_delay() {
    if std::env::var_os(ALONE).is_none() {
        let name = concat!(module_path!(), "::kernel_stamps_and_the_user_space_fallback_both_time_a_known_delay");
        let name = name.split_once("::").map_or(name, |(_, path)| path);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name, "--exact", "--test-threads=1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("test result: ok. 1 passed"), "the test ran in its own process:\n{stdout}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(both_sources_time_a_known_delay());
}

async fn both_sources_time_a_known_delay() {
    let kernel = cfg!(target_os = "linux");
    assert_eq!(stamp::kernel_timestamps(), kernel, "kernel timestamps are on by default on Linux");
    for (mode, expected) in
        [("kernel", if kernel { Source::Kernel } else { Source::User }), ("user space", Source::User)]
    {
        stamp::set_kernel_timestamps(mode == "kernel");
        tcp_first_byte(mode, expected).await;
        udp_answer(mode, expected).await;
        http_check(mode).await;
        dns_check(mode).await;
    }
    stamp::set_kernel_timestamps(true);
}

/// A raw TCP exchange: the server answers DELAY after the request; the stamped stream times it.
async fn tcp_first_byte(mode: &str, expected: Source) {
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 5];
        stream.read_exact(&mut request).await.unwrap();
        tokio::time::sleep(DELAY).await;
        stream.write_all(b"answer").await.unwrap();
    });
    let mut stream = StampedTcp::new(tokio::net::TcpStream::connect(address).await.unwrap());
    stream.short_first_read();
    assert_eq!(stream.kernel(), expected == Source::Kernel, "{mode}");
    let exchange = stream.exchange();
    exchange.arm();
    stream.write_all(b"hello").await.unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.unwrap();
    exchange.first_byte_seen();
    assert_eq!(reply, b"answer");
    let (waited, source) = exchange.first_byte().expect("a first byte");
    assert_eq!(source, expected, "{mode}");
    assert!(waited >= DELAY && waited < DELAY + SLACK, "{mode}: first byte after {waited:?}");
    server.await.unwrap();
}

/// A UDP datagram answered DELAY later: the receive stamp says when it arrived.
async fn udp_answer(mode: &str, expected: Source) {
    let peer = tokio::net::UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    let peer_address = peer.local_addr().unwrap();
    let socket = tokio::net::UdpSocket::bind((LOOPBACK, 0)).await.unwrap();
    socket.connect(peer_address).await.unwrap();
    let socket = StampedUdp::new(socket);
    let sent = socket.send(b"ping").await.unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = peer.recv_from(&mut buf).await.unwrap();
    tokio::time::sleep(DELAY).await;
    peer.send_to(&buf[..n], from).await.unwrap();
    // Read late: a kernel stamp still says when the answer came, the fallback says now.
    tokio::time::sleep(DELAY).await;
    let (n, received, source) = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(source, expected, "{mode}");
    let waited = received.duration_since(sent);
    match source {
        Source::Kernel => assert!(waited >= DELAY && waited < DELAY + SLACK, "{mode}: answer after {waited:?}"),
        Source::User => assert!(waited >= DELAY * 2, "{mode}: answer read after {waited:?}"),
    }
}

/// The HTTP check's first byte against a server that waits DELAY, as the server itself saw it.
async fn http_check(mode: &str) {
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    let ok = Behavior::Ok { body: "late".into() };
    hosts.set("site.test", Behavior::SlowFirstByte { delay: DELAY, then: Box::new(ok) });
    let times = ResponseTimes::new();
    let server =
        servers::http::spawn_timed((LOOPBACK, 0).into(), None, Arc::new(RwLock::new(hosts)), Some(times.clone()))
            .await
            .unwrap();
    let prober = HttpProber {
        settings: Arc::new(HttpSettings {
            via: Via::Frontend,
            expect_status: vec![(200, 299)],
            keyword: Some("late".into()),
            max_body_bytes: 1024,
            max_redirects: 0,
            user_agent: "fleetprobe-test".into(),
            redirect_allow: Vec::new(),
        }),
        timeouts: Timeouts {
            dns: Duration::from_secs(1),
            connect: Duration::from_secs(1),
            tls: Duration::from_secs(1),
            first_byte: Duration::from_secs(2),
            body: Duration::from_secs(1),
            total: Duration::from_secs(5),
        },
        resolvers: Vec::new(),
        tls: tls::client_config(None).unwrap(),
        fleet_frontends: Arc::from([]),
    };
    let url = SiteUrl::parse(&format!("http://site.test:{}/", server.addr().port())).unwrap();
    let probed = prober.check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!(probed.failure, None, "{mode}: {probed:?}");
    let first_byte = Duration::from_micros(u64::from(probed.timings.first_byte_us.expect("first byte")));
    let connect = Duration::from_micros(u64::from(probed.timings.connect_us.expect("connect")));
    assert!(first_byte >= DELAY && first_byte < DELAY + SLACK, "{mode}: first byte {first_byte:?}");
    assert!(connect < SLACK, "{mode}: connect {connect:?}");
    // The server's own count from the request's arrival to its response's send: the prober can
    // only see more than that (the network adds), and on loopback hardly more.
    let server_side = Duration::from_micros(times.take().max());
    assert!(server_side >= DELAY, "{mode}: the server answered after {server_side:?}");
    assert!(
        first_byte + Duration::from_millis(1) >= server_side && first_byte < server_side + Duration::from_millis(5),
        "{mode}: prober {first_byte:?}, server {server_side:?}"
    );
}

/// A DNS check: the phase is the network time, however late the answer is read.
async fn dns_check(mode: &str) {
    let mut zone = Zone::new(["test"]);
    zone.set("site.test", NameBehavior::Answer(vec![LOOPBACK]));
    let server = servers::dns::spawn((LOOPBACK, 0).into(), Arc::new(RwLock::new(zone))).await.unwrap();
    let servers: [SocketAddr; 1] = [server.addr()];
    let settings = DnsSettings { record_type: RecordKind::A, tcp_fallback: true };
    let probed = dns::check("site.test", &[LOOPBACK], &settings, &servers, Duration::from_secs(1)).await;
    assert_eq!(probed.failure, None, "{mode}: {probed:?}");
    let dns_us = probed.timings.dns_us.expect("a DNS phase");
    assert!(dns_us < 20_000, "{mode}: {dns_us} µs for a loopback query");
}
