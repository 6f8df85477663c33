//! Where redirects may lead: a site that redirects into the provider's own network (loopback,
//! private, link-local, metadata addresses, or a name resolving to one) ends as
//! `redirect_blocked` and the target never sees a connection; the site's own host, the fleet's
//! frontends and `probe.http.redirect_allow` stay reachable. Every server here is on 127.0.0.x;
//! the addresses a redirect must not reach stand in for the private networks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetprobe::fleet::{HttpSettings, RedirectAllow, SiteUrl, Timeouts, Via};
use fleetprobe::probe::http::{HttpProber, HttpTarget};
use fleetprobe::probe::{Failure, Probed, tls};
use fleetprobe::servers::dns::{NameBehavior, Zone};
use fleetprobe::servers::http::{Behavior, VirtualHosts};
use fleetprobe::servers::{self, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SITE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Stands in for an address inside the provider's network.
const INSIDE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 20, 4));

/// A listener that counts its connections and answers each with `200 ok`.
struct Logger {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Logger {
    async fn spawn(ip: IpAddr) -> Logger {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ =
                        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
                });
            }
        });
        Logger { addr, connections }
    }

    /// Connections so far, after a moment for any in flight to arrive.
    async fn connections(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.connections.load(Ordering::SeqCst)
    }
}

fn prober(resolvers: Vec<SocketAddr>, allow: &[&str], frontends: &[IpAddr]) -> HttpProber {
    HttpProber {
        settings: Arc::new(HttpSettings {
            via: Via::Frontend,
            expect_status: vec![(200, 299)],
            keyword: None,
            max_body_bytes: 1024,
            max_redirects: 5,
            user_agent: "fleetprobe-test".into(),
            redirect_allow: allow.iter().map(|a| RedirectAllow::parse(a).unwrap()).collect(),
        }),
        timeouts: Timeouts {
            dns: Duration::from_millis(300),
            connect: Duration::from_millis(300),
            tls: Duration::from_millis(300),
            first_byte: Duration::from_millis(500),
            body: Duration::from_millis(500),
            total: Duration::from_secs(3),
        },
        resolvers,
        tls: tls::client_config(None).unwrap(),
        fleet_frontends: frontends.into(),
    }
}

/// The site `site.test` on 127.0.0.1, redirecting to `location`.
async fn site_redirecting_to(location: &str) -> ServerHandle {
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    hosts.set("site.test", Behavior::Redirect(location.into()));
    servers::http::spawn((SITE, 0).into(), None, Arc::new(RwLock::new(hosts))).await.unwrap()
}

/// A resolver answering `names` with `ip`.
async fn resolver(names: &[&str], ip: IpAddr) -> ServerHandle {
    let mut zone = Zone::new(["test"]);
    for name in names {
        zone.set(name, NameBehavior::Answer(vec![ip]));
    }
    servers::dns::spawn((SITE, 0).into(), Arc::new(RwLock::new(zone))).await.unwrap()
}

async fn check(prober: &HttpProber, site: &ServerHandle) -> Probed {
    let url = SiteUrl::parse(&format!("http://site.test:{}/", site.addr().port())).unwrap();
    prober.check(&HttpTarget { url: &url, connect_to: Some(SITE), keyword: None }).await
}

#[tokio::test]
async fn a_redirect_to_an_inside_address_is_blocked_before_connecting() {
    let inside = Logger::spawn(INSIDE).await;
    let target = format!("http://{}/admin/delete?all=1", inside.addr);
    let site = site_redirecting_to(&target).await;
    let probed = check(&prober(Vec::new(), &[], &[]), &site).await;
    assert_eq!((probed.failure, probed.http_status), (Some(Failure::RedirectBlocked), Some(302)), "{probed:?}");
    let detail = probed.detail.unwrap();
    assert!(detail.contains(&target) && detail.contains("127.0.20.4 is a loopback address"), "{detail}");
    assert_eq!(inside.connections().await, 0, "the inside address must never see the request");
}

#[tokio::test]
async fn a_name_that_resolves_inside_is_blocked_at_the_address_it_resolved_to() {
    let inside = Logger::spawn(INSIDE).await;
    let dns = resolver(&["metadata.test"], INSIDE).await;
    let site = site_redirecting_to(&format!("http://metadata.test:{}/latest/", inside.addr.port())).await;
    let probed = check(&prober(vec![dns.addr()], &[], &[]), &site).await;
    assert_eq!(probed.failure, Some(Failure::RedirectBlocked), "{probed:?}");
    assert!(probed.detail.as_deref().unwrap_or_default().contains("127.0.20.4"), "{probed:?}");
    assert!(probed.timings.dns_us.is_some(), "the name was resolved once, to judge it");
    assert_eq!(inside.connections().await, 0);
}

#[tokio::test]
async fn ipv6_loopback_and_other_schemes_are_blocked() {
    let site = site_redirecting_to("http://[::1]:18131/admin").await;
    let probed = check(&prober(Vec::new(), &[], &[]), &site).await;
    assert_eq!(probed.failure, Some(Failure::RedirectBlocked), "{probed:?}");
    assert!(probed.detail.as_deref().unwrap_or_default().contains("::1 is a loopback address"), "{probed:?}");

    let inside = Logger::spawn(INSIDE).await;
    let site = site_redirecting_to(&format!("gopher://{}/1", inside.addr)).await;
    let probed = check(&prober(Vec::new(), &[], &[]), &site).await;
    assert_eq!(probed.failure, Some(Failure::RedirectBlocked), "{probed:?}");
    assert!(probed.detail.as_deref().unwrap_or_default().contains("scheme `gopher`"), "{probed:?}");
    assert_eq!(inside.connections().await, 0);
}

#[tokio::test]
async fn the_allow_list_and_the_fleet_frontends_are_reached() {
    let inside = Logger::spawn(INSIDE).await;
    let site = site_redirecting_to(&format!("http://{}/", inside.addr)).await;

    let probed = check(&prober(Vec::new(), &["127.0.20.0/24"], &[]), &site).await;
    assert_eq!((probed.failure, probed.http_status), (None, Some(200)), "{probed:?}");
    assert_eq!(inside.connections().await, 1);

    let probed = check(&prober(Vec::new(), &[], &[INSIDE]), &site).await;
    assert_eq!(probed.failure, None, "a fleet frontend: {probed:?}");
    assert_eq!(inside.connections().await, 2);

    let probed = check(&prober(Vec::new(), &["127.0.21.0/24"], &[SITE]), &site).await;
    assert_eq!(probed.failure, Some(Failure::RedirectBlocked), "another network: {probed:?}");
    assert_eq!(inside.connections().await, 2);
}

#[tokio::test]
async fn an_allowed_hostname_is_reached_whatever_it_resolves_to() {
    let inside = Logger::spawn(INSIDE).await;
    let dns = resolver(&["intranet.test", "other.test"], INSIDE).await;
    let site = site_redirecting_to(&format!("http://intranet.test:{}/", inside.addr.port())).await;
    let probed = check(&prober(vec![dns.addr()], &["intranet.test"], &[]), &site).await;
    assert_eq!(probed.failure, None, "{probed:?}");
    assert_eq!(inside.connections().await, 1);

    let site = site_redirecting_to(&format!("http://other.test:{}/", inside.addr.port())).await;
    let probed = check(&prober(vec![dns.addr()], &["intranet.test"], &[]), &site).await;
    assert_eq!(probed.failure, Some(Failure::RedirectBlocked), "{probed:?}");
    assert_eq!(inside.connections().await, 1);
}

#[tokio::test]
async fn the_sites_own_host_is_followed_wherever_it_is() {
    // site.test on 127.0.0.1 redirects to itself on another path, which answers.
    let mut hosts = VirtualHosts::new(Behavior::Status(421));
    hosts.set("site.test", Behavior::Ok { body: "home".into() });
    let site = servers::http::spawn((SITE, 0).into(), None, Arc::new(RwLock::new(hosts.clone()))).await.unwrap();
    let shared = Arc::new(RwLock::new(VirtualHosts::new(Behavior::Status(421))));
    let entry = servers::http::spawn((SITE, 0).into(), None, shared.clone()).await.unwrap();
    shared
        .write()
        .unwrap()
        .set("site.test", Behavior::Redirect(format!("http://site.test:{}/home", site.addr().port())));
    let probed = check(&prober(Vec::new(), &[], &[]), &entry).await;
    assert_eq!((probed.failure, probed.http_status), (None, Some(200)), "{probed:?}");
}
