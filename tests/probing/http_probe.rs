//! The HTTP prober against in-process servers on 127.0.0.x, one per failure class: each check
//! must end in the right class with sane timings, and never take longer than its timeouts allow.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fleetprobe::fleet::{HttpSettings, SiteUrl, Timeouts};
use fleetprobe::probe::http::{HttpProber, HttpTarget};
use fleetprobe::probe::{Failure, Phase, Probed, tls};
use fleetprobe::servers::dns::{NameBehavior, Zone};
use fleetprobe::servers::http::{Behavior, RawFault, VirtualHosts};
use fleetprobe::servers::pki::{TestCa, Validity};
use fleetprobe::servers::{self, ServerHandle};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

fn timeouts() -> Timeouts {
    Timeouts {
        dns: Duration::from_millis(300),
        connect: Duration::from_millis(300),
        tls: Duration::from_millis(500),
        first_byte: Duration::from_millis(400),
        body: Duration::from_millis(400),
        total: Duration::from_secs(3),
    }
}

fn prober(tls: Arc<rustls::ClientConfig>, resolvers: Vec<SocketAddr>, timeouts: Timeouts) -> HttpProber {
    HttpProber {
        settings: Arc::new(HttpSettings {
            via: fleetprobe::fleet::Via::Dns,
            expect_status: vec![(200, 299)],
            keyword: None,
            max_body_bytes: 64 * 1024,
            max_redirects: 3,
            user_agent: "fleetprobe-test".into(),
            redirect_allow: Vec::new(),
        }),
        timeouts,
        resolvers,
        tls,
        fleet_frontends: Arc::from([]),
    }
}

fn plain_prober() -> HttpProber {
    prober(tls::client_config(None).unwrap(), Vec::new(), timeouts())
}

async fn vhost(behavior: Behavior) -> ServerHandle {
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    hosts.set("site.test", behavior);
    servers::http::spawn((LOOPBACK, 0).into(), None, Arc::new(RwLock::new(hosts))).await.unwrap()
}

/// Checks http://site.test:PORT/ by connecting straight to the server (no DNS phase).
async fn check(prober: &HttpProber, server: &ServerHandle, keyword: Option<&str>) -> (Probed, Duration) {
    let url = SiteUrl::parse(&format!("http://site.test:{}/", server.addr().port())).unwrap();
    let started = Instant::now();
    let probed = prober.check(&HttpTarget { url: &url, connect_to: Some(server.addr().ip()), keyword }).await;
    (probed, started.elapsed())
}

#[tokio::test]
async fn ok_with_every_phase_timed() {
    let server = vhost(Behavior::Ok { body: "hello fleet".into() }).await;
    let (probed, elapsed) = check(&plain_prober(), &server, Some("fleet")).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert_eq!(probed.http_status, Some(200));
    let t = probed.timings;
    assert_eq!(t.dns_us, None, "straight to the frontend: no DNS phase");
    assert_eq!(t.tls_us, None, "plain HTTP: no TLS phase");
    let (connect, first_byte) = (t.connect_us.unwrap(), t.first_byte_us.unwrap());
    assert!(connect > 0 && first_byte > 0, "{t:?}");
    assert!(connect + first_byte <= t.total_us, "{t:?}");
    assert!(u128::from(t.total_us) <= elapsed.as_micros(), "{t:?} vs {elapsed:?}");
}

#[tokio::test]
async fn status_503_is_http_status() {
    let server = vhost(Behavior::Status(503)).await;
    let (probed, _) = check(&plain_prober(), &server, None).await;
    assert_eq!((probed.failure, probed.http_status), (Some(Failure::HttpStatus), Some(503)), "{probed:?}");
    assert_eq!(probed.detail.as_deref(), Some("status 503"));
}

#[tokio::test]
async fn wrong_virtual_host_is_http_status() {
    let server = vhost(Behavior::Ok { body: "x".into() }).await;
    let url = SiteUrl::parse(&format!("http://other.test:{}/", server.addr().port())).unwrap();
    let probed = plain_prober().check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!((probed.failure, probed.http_status), (Some(Failure::HttpStatus), Some(421)));
}

#[tokio::test]
async fn refused_connection() {
    let listener = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = SiteUrl::parse(&format!("http://site.test:{port}/")).unwrap();
    let started = Instant::now();
    let probed = plain_prober().check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!(probed.failure, Some(Failure::ConnectRefused), "{probed:?}");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn accept_then_silence_times_out_waiting_for_the_first_byte() {
    let server = servers::http::spawn_raw((LOOPBACK, 0).into(), RawFault::AcceptThenSilence).await.unwrap();
    let (probed, elapsed) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, Some(Failure::Timeout(Phase::FirstByte)), "{probed:?}");
    let first_byte = Duration::from_micros(u64::from(probed.timings.first_byte_us.unwrap()));
    assert!(first_byte >= Duration::from_millis(400) && first_byte < Duration::from_millis(600), "{first_byte:?}");
    assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn slow_first_byte_past_the_timeout() {
    let slow = Behavior::SlowFirstByte { delay: Duration::from_secs(2), then: Box::new(Behavior::Status(200)) };
    let server = vhost(slow).await;
    let (probed, elapsed) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, Some(Failure::Timeout(Phase::FirstByte)), "{probed:?}");
    assert!(elapsed < Duration::from_millis(800), "{elapsed:?}");
}

#[tokio::test]
async fn slow_first_byte_within_the_timeout_is_measured() {
    let delay = Duration::from_millis(120);
    let slow = Behavior::SlowFirstByte { delay, then: Box::new(Behavior::Ok { body: "late".into() }) };
    let server = vhost(slow).await;
    let (probed, _) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    let first_byte = Duration::from_micros(u64::from(probed.timings.first_byte_us.unwrap()));
    assert!(first_byte >= delay && first_byte < delay + Duration::from_millis(60), "{first_byte:?}");
}

#[tokio::test]
async fn the_total_timeout_bounds_every_phase() {
    let server = servers::http::spawn_raw((LOOPBACK, 0).into(), RawFault::AcceptThenSilence).await.unwrap();
    let short_total = Timeouts { first_byte: Duration::from_secs(5), total: Duration::from_millis(250), ..timeouts() };
    let prober = prober(tls::client_config(None).unwrap(), Vec::new(), short_total);
    let (probed, elapsed) = check(&prober, &server, None).await;
    assert_eq!(probed.failure, Some(Failure::Timeout(Phase::Total)), "{probed:?}");
    assert!(elapsed < Duration::from_millis(500), "{elapsed:?}");
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_protocol_error() {
    let server = servers::http::spawn_raw((LOOPBACK, 0).into(), RawFault::Garbage).await.unwrap();
    let (probed, _) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, Some(Failure::ProtocolError), "{probed:?}");
    assert!(probed.detail.unwrap().contains("not a valid HTTP response"));
}

#[tokio::test]
async fn a_closed_connection_is_a_protocol_error() {
    let server = servers::http::spawn_raw((LOOPBACK, 0).into(), RawFault::CloseImmediately).await.unwrap();
    let (probed, _) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, Some(Failure::ProtocolError), "{probed:?}");
}

#[tokio::test]
async fn redirect_loops_and_chains() {
    // Bind first to learn the port, then fill in hosts that redirect among themselves.
    let shared = Arc::new(RwLock::new(VirtualHosts::new(Behavior::Status(421))));
    let server = servers::http::spawn((LOOPBACK, 0).into(), None, shared.clone()).await.unwrap();
    let port = server.addr().port();
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    hosts.set("loop.test", Behavior::Redirect(format!("http://loop.test:{port}/")));
    hosts.set("a.test", Behavior::Redirect("/next".into()));
    hosts.set("b.test", Behavior::Redirect(format!("http://c.test:{port}/1")));
    *shared.write().unwrap() = hosts;
    let prober = plain_prober();
    let url = |host: &str| SiteUrl::parse(&format!("http://{host}:{port}/")).unwrap();

    let looping = url("loop.test");
    let probed = prober.check(&HttpTarget { url: &looping, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!((probed.failure, probed.http_status), (Some(Failure::RedirectLoop), Some(302)), "{probed:?}");

    // a.test/ -> a.test/next -> a.test/next (a loop on the second hop)
    let chain = url("a.test");
    let probed = prober.check(&HttpTarget { url: &chain, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!(probed.failure, Some(Failure::RedirectLoop), "{probed:?}");

    // b.test -> c.test (another host: resolved through DNS, which has no resolvers here and fails)
    let cross = url("b.test");
    let probed = prober.check(&HttpTarget { url: &cross, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert!(probed.failure.is_some_and(|f| f.as_str().starts_with("dns_")), "{probed:?}");
}

#[tokio::test]
async fn too_many_redirects() {
    let shared = Arc::new(RwLock::new(VirtualHosts::new(Behavior::Status(421))));
    let server = servers::http::spawn((LOOPBACK, 0).into(), None, shared.clone()).await.unwrap();
    let port = server.addr().port();
    {
        let mut hosts = shared.write().unwrap();
        for i in 0..10 {
            hosts.set(&format!("r{i}.test"), Behavior::Redirect(format!("http://r{}.test:{port}/", i + 1)));
        }
    }
    // Each hop's host differs from the frontend's first, so answer every name from a resolver.
    let mut zone = Zone::new(["test"]);
    for i in 0..=10 {
        zone.set(&format!("r{i}.test"), NameBehavior::Answer(vec![LOOPBACK]));
    }
    let dns = servers::dns::spawn((LOOPBACK, 0).into(), Arc::new(RwLock::new(zone))).await.unwrap();
    let prober = prober(tls::client_config(None).unwrap(), vec![dns.addr()], timeouts());
    let url = SiteUrl::parse(&format!("http://r0.test:{port}/")).unwrap();
    let probed = prober.check(&HttpTarget { url: &url, connect_to: None, keyword: None }).await;
    assert_eq!(probed.failure, Some(Failure::TooManyRedirects), "{probed:?}");
    assert!(probed.timings.dns_us.is_some(), "DNS time adds up over the hops");
}

#[tokio::test]
async fn an_endless_body_is_read_only_up_to_the_limit() {
    let server = vhost(Behavior::EndlessBody).await;
    let (probed, elapsed) = check(&plain_prober(), &server, None).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert!(elapsed < Duration::from_millis(300), "{elapsed:?}");
    let (probed, _) = check(&plain_prober(), &server, Some("never there")).await;
    assert_eq!(probed.failure, Some(Failure::BodyMismatch), "{probed:?}");
    assert!(probed.detail.unwrap().contains("not in the first 65536 bytes"));
}

#[tokio::test]
async fn missing_keyword_is_body_mismatch() {
    let server = vhost(Behavior::Ok { body: "maintenance page".into() }).await;
    let (probed, _) = check(&plain_prober(), &server, Some("Welcome")).await;
    assert_eq!((probed.failure, probed.http_status), (Some(Failure::BodyMismatch), Some(200)));
}

#[tokio::test]
async fn through_dns_the_dns_phase_is_timed_and_its_failures_classed() {
    let server = vhost(Behavior::Ok { body: "ok".into() }).await;
    let mut zone = Zone::new(["test"]);
    zone.set("site.test", NameBehavior::Answer(vec![LOOPBACK]));
    zone.set("broken.test", NameBehavior::Servfail);
    let dns = servers::dns::spawn((LOOPBACK, 0).into(), Arc::new(RwLock::new(zone))).await.unwrap();
    let prober = prober(tls::client_config(None).unwrap(), vec![dns.addr()], timeouts());
    let port = server.addr().port();

    let url = SiteUrl::parse(&format!("http://site.test:{port}/")).unwrap();
    let probed = prober.check(&HttpTarget { url: &url, connect_to: None, keyword: None }).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert!(probed.timings.dns_us.is_some_and(|us| us > 0), "{probed:?}");

    for (host, failure) in [("gone.test", Failure::DnsNxdomain), ("broken.test", Failure::DnsServfail)] {
        let url = SiteUrl::parse(&format!("http://{host}:{port}/")).unwrap();
        let probed = prober.check(&HttpTarget { url: &url, connect_to: None, keyword: None }).await;
        assert_eq!(probed.failure, Some(failure), "{host}: {probed:?}");
        assert!(probed.timings.connect_us.is_none(), "no connect after a failed lookup");
    }
}

mod https {
    use super::*;

    async fn serve(ca: &TestCa, names: &[&str], validity: Validity) -> ServerHandle {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let config = ca.server_config(&names, validity).unwrap();
        let mut hosts = VirtualHosts::new(Behavior::Status(421));
        hosts.set("secure.test", Behavior::Ok { body: "secure".into() });
        servers::http::spawn((LOOPBACK, 0).into(), Some(config), Arc::new(RwLock::new(hosts))).await.unwrap()
    }

    async fn check_tls(client: Arc<rustls::ClientConfig>, server: &ServerHandle) -> Probed {
        let url = SiteUrl::parse(&format!("https://secure.test:{}/", server.addr().port())).unwrap();
        prober(client, Vec::new(), timeouts())
            .check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None })
            .await
    }

    #[tokio::test]
    async fn valid_certificate_records_its_expiry_and_the_handshake_time() {
        let ca = TestCa::new("test CA").unwrap();
        let server = serve(&ca, &["secure.test"], Validity::Current).await;
        let probed = check_tls(tls::client_config_with_roots(ca.roots()).unwrap(), &server).await;
        assert_eq!(probed.failure, None, "{probed:?}");
        assert!(probed.timings.tls_us.is_some_and(|us| us > 0));
        let expected = "2049-12-31T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(probed.cert_not_after, Some(expected));
        assert_eq!(probed.cert_issuer.as_deref(), Some("test CA"));
    }

    #[tokio::test]
    async fn expired_certificate() {
        let ca = TestCa::new("test CA").unwrap();
        let server = serve(&ca, &["secure.test"], Validity::Expired).await;
        let probed = check_tls(tls::client_config_with_roots(ca.roots()).unwrap(), &server).await;
        assert_eq!(probed.failure, Some(Failure::TlsExpired), "{probed:?}");
    }

    #[tokio::test]
    async fn certificate_for_another_name() {
        let ca = TestCa::new("test CA").unwrap();
        let server = serve(&ca, &["other.test"], Validity::Current).await;
        let probed = check_tls(tls::client_config_with_roots(ca.roots()).unwrap(), &server).await;
        assert_eq!(probed.failure, Some(Failure::TlsInvalid), "{probed:?}");
    }

    #[tokio::test]
    async fn certificate_from_an_unknown_authority() {
        let ca = TestCa::new("test CA").unwrap();
        let server = serve(&ca, &["secure.test"], Validity::Current).await;
        let probed = check_tls(tls::client_config(None).unwrap(), &server).await;
        assert_eq!(probed.failure, Some(Failure::TlsInvalid), "{probed:?}");
    }

    #[tokio::test]
    async fn plain_http_on_a_tls_port_is_a_protocol_error() {
        let server = vhost(Behavior::Ok { body: "x".into() }).await;
        let url = SiteUrl::parse(&format!("https://site.test:{}/", server.addr().port())).unwrap();
        let probed = plain_prober().check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
        assert_eq!(probed.failure, Some(Failure::ProtocolError), "{probed:?}");
    }

    #[tokio::test]
    async fn silence_during_the_handshake_is_a_tls_timeout() {
        let server = servers::http::spawn_raw((LOOPBACK, 0).into(), RawFault::AcceptThenSilence).await.unwrap();
        let url = SiteUrl::parse(&format!("https://site.test:{}/", server.addr().port())).unwrap();
        let probed = plain_prober().check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
        assert_eq!(probed.failure, Some(Failure::Timeout(Phase::Tls)), "{probed:?}");
    }
}

#[tokio::test]
async fn a_full_accept_queue_is_a_connect_timeout() {
    // A listener that never accepts, with a backlog of one: once its queue is full the kernel
    // drops further SYNs, so a new connection neither succeeds nor is refused.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from((LOOPBACK, 0)).into()).unwrap();
    socket.listen(0).unwrap();
    let addr: SocketAddr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let url = SiteUrl::parse(&format!("http://site.test:{}/", addr.port())).unwrap();
    let started = Instant::now();
    let probed = plain_prober().check(&HttpTarget { url: &url, connect_to: Some(LOOPBACK), keyword: None }).await;
    assert_eq!(probed.failure, Some(Failure::ConnectTimeout), "{probed:?}");
    let connect = Duration::from_micros(u64::from(probed.timings.connect_us.unwrap()));
    assert!(connect >= Duration::from_millis(300) && started.elapsed() < Duration::from_millis(600), "{connect:?}");
    drop(socket);
}
