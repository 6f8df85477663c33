//! The DNS prober against the loopback authoritative server: one test per failure class, the
//! timing it reports, truncation and TCP, and failing over between nameservers.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use fleetprobe::fleet::{DnsSettings, RecordKind};
use fleetprobe::probe::dns::{check, query, resolve};
use fleetprobe::probe::{Failure, Probed};
use fleetprobe::servers::ServerHandle;
use fleetprobe::servers::dns::{NameBehavior, Zone, spawn};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_millis(300);
/// Slack for a loaded two-core machine when asserting how long a timeout took.
const MARGIN: Duration = Duration::from_millis(200);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn settings(tcp_fallback: bool) -> DnsSettings {
    DnsSettings { record_type: RecordKind::A, tcp_fallback }
}

/// The zone every test starts from.
fn zone() -> Zone {
    let mut zone = Zone::new(["example.test"]);
    zone.set("www.example.test", NameBehavior::Answer(vec![ip("127.0.10.1"), ip("::1")]));
    zone.set("moved.example.test", NameBehavior::Answer(vec![ip("127.0.9.9")]));
    zone.set("broken.example.test", NameBehavior::Servfail);
    zone.set("gone.example.test", NameBehavior::Nxdomain);
    zone.set("lame.example.test", NameBehavior::Refused);
    zone.set("quiet.example.test", NameBehavior::Silence);
    zone.set("big.example.test", NameBehavior::Truncate(vec![ip("127.0.10.1"), ip("127.0.10.2")]));
    zone.set("v6.example.test", NameBehavior::Answer(vec![ip("::1")]));
    zone
}

async fn server(zone: Zone) -> (ServerHandle, Arc<RwLock<Zone>>) {
    let zone = Arc::new(RwLock::new(zone));
    let handle = spawn("127.0.0.1:0".parse().unwrap(), Arc::clone(&zone)).await.unwrap();
    (handle, zone)
}

/// A UDP port nobody listens on: the kernel answers with "port unreachable".
async fn unbound() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap()
}

async fn check_one(name: &str, expected: &[IpAddr], ns: SocketAddr) -> Probed {
    check(name, expected, &settings(true), &[ns], TIMEOUT).await
}

#[tokio::test]
async fn right_answer_is_ok_and_timed() {
    let (ns, _) = server(zone()).await;
    let probed = check_one("www.example.test", &[ip("127.0.10.1")], ns.addr()).await;
    assert_eq!(probed.failure, None, "{:?}", probed.detail);
    let dns_us = probed.timings.dns_us.unwrap();
    assert!(dns_us > 0 && dns_us < 100_000, "dns_us = {dns_us}");
    assert!(probed.timings.total_us >= dns_us);
    assert_eq!((probed.timings.connect_us, probed.http_status), (None, None));
}

#[tokio::test]
async fn any_answer_will_do_when_nothing_is_expected() {
    let (ns, _) = server(zone()).await;
    assert_eq!(check_one("moved.example.test", &[], ns.addr()).await.failure, None);
}

#[tokio::test]
async fn wrong_address_is_a_wrong_answer() {
    let (ns, _) = server(zone()).await;
    let probed = check_one("moved.example.test", &[ip("127.0.10.1")], ns.addr()).await;
    assert_eq!(probed.failure, Some(Failure::DnsWrongAnswer));
    assert_eq!(probed.detail.as_deref(), Some("answered 127.0.9.9, expected 127.0.10.1"));
    assert!(probed.timings.dns_us.is_some());
}

#[tokio::test]
async fn negative_answers_map_to_their_classes() {
    let (ns, _) = server(zone()).await;
    let cases = [
        ("gone.example.test", Failure::DnsNxdomain),
        ("unlisted.example.test", Failure::DnsNxdomain),
        ("broken.example.test", Failure::DnsServfail),
        ("lame.example.test", Failure::DnsRefused),
        ("www.elsewhere.test", Failure::DnsRefused),
        ("v6.example.test", Failure::DnsNoData),
    ];
    for (name, failure) in cases {
        let probed = check_one(name, &[], ns.addr()).await;
        assert_eq!(probed.failure, Some(failure), "{name}: {:?}", probed.detail);
        let detail = probed.detail.unwrap_or_default();
        assert!(detail.contains(&ns.addr().to_string()), "{name}: {detail}");
    }
}

#[tokio::test]
async fn silence_is_a_timeout_within_the_budget() {
    let (ns, _) = server(zone()).await;
    let started = Instant::now();
    let probed = check_one("quiet.example.test", &[], ns.addr()).await;
    let took = started.elapsed();
    assert_eq!(probed.failure, Some(Failure::DnsTimeout));
    assert!(took >= TIMEOUT && took < TIMEOUT + MARGIN, "took {took:?}");
    assert!(probed.detail.unwrap_or_default().starts_with("no reply from"));
}

#[tokio::test]
async fn truncated_reply_is_retried_over_tcp() {
    let (ns, _) = server(zone()).await;
    let answer = query("big.example.test", RecordKind::A, &[ns.addr()], TIMEOUT, true).await.unwrap();
    assert!(answer.over_tcp);
    assert_eq!(answer.rcode, ResponseCode::NoError);
    assert_eq!(answer.addresses, vec![ip("127.0.10.1"), ip("127.0.10.2")]);
    assert_eq!(answer.server, ns.addr());

    let udp_only = query("big.example.test", RecordKind::A, &[ns.addr()], TIMEOUT, false).await.unwrap_err();
    assert_eq!(udp_only.failure, Failure::DnsError);
    assert!(udp_only.detail.contains("truncated"), "{}", udp_only.detail);

    let plain = query("www.example.test", RecordKind::A, &[ns.addr()], TIMEOUT, true).await.unwrap();
    assert!(!plain.over_tcp);
}

#[tokio::test]
async fn addresses_follow_the_asked_family() {
    let (ns, _) = server(zone()).await;
    let v4 = query("www.example.test", RecordKind::A, &[ns.addr()], TIMEOUT, true).await.unwrap();
    let v6 = query("www.example.test", RecordKind::AAAA, &[ns.addr()], TIMEOUT, true).await.unwrap();
    assert_eq!((v4.addresses, v6.addresses), (vec![ip("127.0.10.1")], vec![ip("::1")]));
}

#[tokio::test]
async fn a_silent_first_server_costs_its_share_then_the_second_answers() {
    let (silent, silent_zone) = server(zone()).await;
    silent_zone.write().unwrap().set_fault(Some(NameBehavior::Silence));
    let (good, _) = server(zone()).await;
    let started = Instant::now();
    let answer = query("www.example.test", RecordKind::A, &[silent.addr(), good.addr()], TIMEOUT, true).await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.server, good.addr());
    // Two servers: the first gets half the budget.
    let share = TIMEOUT / 2;
    assert!(took >= share && took < share + MARGIN, "took {took:?}");
    assert!(answer.elapsed >= share, "the visitor waited for the silent server too: {:?}", answer.elapsed);
}

#[tokio::test]
async fn an_unbound_first_server_fails_fast() {
    let (good, _) = server(zone()).await;
    let dead = unbound().await;
    let answer = query("www.example.test", RecordKind::A, &[dead, good.addr()], TIMEOUT, true).await.unwrap();
    assert_eq!(answer.server, good.addr());
    assert!(answer.elapsed < TIMEOUT / 2, "{:?}", answer.elapsed);
}

#[tokio::test]
async fn servfail_moves_on_but_nxdomain_settles() {
    let (first, first_zone) = server(zone()).await;
    let (second, _) = server(zone()).await;
    let servers = [first.addr(), second.addr()];
    first_zone.write().unwrap().set("www.example.test", NameBehavior::Servfail);
    let answer = query("www.example.test", RecordKind::A, &servers, TIMEOUT, true).await.unwrap();
    assert_eq!(answer.server, second.addr());

    first_zone.write().unwrap().set("www.example.test", NameBehavior::Nxdomain);
    let settled = query("www.example.test", RecordKind::A, &servers, TIMEOUT, true).await.unwrap_err();
    assert_eq!(settled.failure, Failure::DnsNxdomain);
    assert!(settled.detail.contains(&first.addr().to_string()));
}

#[tokio::test]
async fn when_every_server_fails_the_one_that_spoke_is_reported() {
    let (refusing, refusing_zone) = server(zone()).await;
    refusing_zone.write().unwrap().set_fault(Some(NameBehavior::Refused));
    let dead = unbound().await;
    let failed = query("www.example.test", RecordKind::A, &[dead, refusing.addr()], TIMEOUT, true).await.unwrap_err();
    assert_eq!(failed.failure, Failure::DnsRefused);
    assert!(failed.detail.contains(&dead.to_string()) && failed.detail.contains("REFUSED"), "{}", failed.detail);

    let both_dead = query("www.example.test", RecordKind::A, &[dead, dead], TIMEOUT, true).await.unwrap_err();
    assert_eq!(both_dead.failure, Failure::DnsError);
    assert!(both_dead.elapsed < TIMEOUT);
}

#[tokio::test]
async fn faults_flip_while_the_server_runs() {
    let (ns, zone) = server(zone()).await;
    let expected = [ip("127.0.10.1")];
    assert_eq!(check_one("www.example.test", &expected, ns.addr()).await.failure, None);
    zone.write().unwrap().set("www.example.test", NameBehavior::Servfail);
    assert_eq!(check_one("www.example.test", &expected, ns.addr()).await.failure, Some(Failure::DnsServfail));
    zone.write().unwrap().set("www.example.test", NameBehavior::Answer(expected.to_vec()));
    assert_eq!(check_one("www.example.test", &expected, ns.addr()).await.failure, None);
}

#[tokio::test]
async fn resolve_prefers_a_then_aaaa_and_passes_literals() {
    let (ns, _) = server(zone()).await;
    let (v4, took) = resolve("www.example.test", &[ns.addr()], TIMEOUT).await.unwrap();
    assert_eq!(v4, vec![ip("127.0.10.1")]);
    assert!(took > Duration::ZERO && took < TIMEOUT);
    let (v6, _) = resolve("v6.example.test", &[ns.addr()], TIMEOUT).await.unwrap();
    assert_eq!(v6, vec![ip("::1")]);
    assert_eq!(resolve("127.0.0.7", &[], TIMEOUT).await.unwrap(), (vec![ip("127.0.0.7")], Duration::ZERO));
    assert_eq!(resolve("[::1]", &[], TIMEOUT).await.unwrap().0, vec![ip("::1")]);
    let gone = resolve("gone.example.test", &[ns.addr()], TIMEOUT).await.unwrap_err();
    assert_eq!(gone.failure, Failure::DnsNxdomain);
}

/// A one-query UDP server that first sends a stray reply (wrong id), then `reply` built from
/// the query: checks that the prober skips strays and reads what a real resolver sends.
async fn scripted(
    reply: impl FnOnce(&Message) -> Vec<u8> + Send + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let Ok(Ok((len, peer))) = tokio::time::timeout(TIMEOUT, socket.recv_from(&mut buf)).await else { return };
        let request = Message::from_vec(&buf[..len]).unwrap();
        let mut stray = Message::response(request.metadata.id.wrapping_add(1), request.metadata.op_code);
        stray.add_queries(request.queries.iter().cloned());
        stray.add_answer(Record::from_rdata(
            request.queries[0].name().clone(),
            60,
            RData::A(A("127.0.6.6".parse().unwrap())),
        ));
        socket.send_to(&stray.to_vec().unwrap(), peer).await.unwrap();
        socket.send_to(&reply(&request), peer).await.unwrap();
    });
    (addr, task)
}

#[tokio::test]
async fn cname_chains_are_followed_and_strays_skipped() {
    let (addr, task) = scripted(|request| {
        let asked = request.queries[0].name().clone();
        let middle = Name::from_ascii("edge.cdn.test.").unwrap();
        let last = Name::from_ascii("node.cdn.test.").unwrap();
        let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
        reply.add_queries(request.queries.iter().cloned());
        reply.add_answer(Record::from_rdata(asked, 60, RData::CNAME(CNAME(middle.clone()))));
        reply.add_answer(Record::from_rdata(middle, 60, RData::CNAME(CNAME(last.clone()))));
        reply.add_answer(Record::from_rdata(last, 60, RData::A(A("127.0.10.3".parse().unwrap()))));
        reply.to_vec().unwrap()
    })
    .await;
    let answer = query("www.example.test", RecordKind::A, &[addr], TIMEOUT, true).await.unwrap();
    assert_eq!(answer.addresses, vec![ip("127.0.10.3")]);
    task.await.unwrap();
}

#[tokio::test]
async fn a_malformed_reply_is_a_dns_error() {
    let (addr, task) = scripted(|request| {
        let mut garbage = request.metadata.id.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 9, 0, 0]);
        garbage
    })
    .await;
    let failed = query("www.example.test", RecordKind::A, &[addr], TIMEOUT, true).await.unwrap_err();
    assert_eq!(failed.failure, Failure::DnsError);
    assert!(failed.detail.starts_with("malformed reply"), "{}", failed.detail);
    task.await.unwrap();
}

#[tokio::test]
async fn no_servers_or_a_bad_name_is_an_error_not_a_panic() {
    let no_servers = query("www.example.test", RecordKind::A, &[], TIMEOUT, true).await.unwrap_err();
    assert_eq!(no_servers.failure, Failure::DnsError);
    let (ns, _) = server(zone()).await;
    let bad = query("a..b", RecordKind::A, &[ns.addr()], TIMEOUT, true).await.unwrap_err();
    assert_eq!(bad.failure, Failure::DnsError);
}
