//! DNS checks: ask a site's nameservers for its name, time the answer, compare the addresses.
//!
//! Part of the probe stage. [`check`] is the DNS check of a site and returns a [`Probed`];
//! [`resolve`] gives the HTTP prober the addresses to connect to. Both go through [`query`], which
//! builds and parses messages with hickory-proto but owns its sockets, so the timestamps sit
//! right around the send and the receive. Nothing is cached: every check asks the network.
//!
//! Servers are asked in order. Each gets an equal share of the time left (two servers and a
//! 1 s timeout: 500 ms for the first, and whatever is left for the second), so a silent first
//! server cannot eat the whole budget, and one that fails fast leaves its time to the next.
//! NXDOMAIN and "no such record" settle the question; timeouts, network errors, SERVFAIL,
//! REFUSED and malformed replies move on to the next server, as resolvers do.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_resolver::config::{ProtocolConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::system_conf::read_system_conf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::stamp::StampedUdp;
use super::{Failure, Probed, Timings, micros};
use crate::fleet::{DnsSettings, ExpectedAddresses, Fleet, RecordKind, SiteIdx};

/// Replies without EDNS are at most 512 bytes; a larger buffer tolerates servers that ignore that.
const UDP_BUFFER: usize = 4096;
/// Longest CNAME chain followed inside one answer.
const MAX_CNAME_HOPS: usize = 16;
/// The resolver configuration `read_system_conf` reads, named in errors.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Asked when the system lists no nameserver, as the C library does.
const LOCAL_RESOLVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53);
/// hickory-resolver's error for a configuration that lists no nameserver (an `io::Error` message).
const NO_NAMESERVERS: &str = "no nameservers found in config";

/// A usable answer: NOERROR with at least one address of the asked type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The reply's response code (NOERROR for every answer; failures are [`DnsFailure`]s).
    pub rcode: ResponseCode,
    /// The addresses, in the order the server gave them, after following CNAMEs in the answer.
    pub addresses: Vec<IpAddr>,
    /// The server that answered.
    pub server: SocketAddr,
    /// From the first query sent to this reply received, including servers that failed before
    /// and a retry over TCP: the time a visitor's resolver would have waited.
    pub elapsed: Duration,
    /// The answer came over TCP after a truncated UDP reply.
    pub over_tcp: bool,
}

/// Why no usable answer came, for people and for the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure {
    pub failure: Failure,
    /// Short and human, e.g. "SERVFAIL from 127.0.0.1:53".
    pub detail: String,
    /// From the first query sent until the failure was known.
    pub elapsed: Duration,
}

impl DnsFailure {
    /// A query that could not even be sent (bad name, no servers): no time spent on the network.
    fn before_sending(detail: String) -> Self {
        DnsFailure { failure: Failure::DnsError, detail, elapsed: Duration::ZERO }
    }
}

/// Asks `servers` in order for the `record_type` addresses of `name`, within `timeout` overall.
/// UDP first; a truncated reply is retried over TCP when `tcp_fallback` is set.
pub async fn query(
    name: &str,
    record_type: RecordKind,
    servers: &[SocketAddr],
    timeout: Duration,
    tcp_fallback: bool,
) -> Result<DnsAnswer, DnsFailure> {
    let started = Instant::now();
    let deadline = started + timeout;
    let question = question(name, record_type).map_err(|e| DnsFailure::before_sending(e.to_string()))?;
    if servers.is_empty() {
        return Err(DnsFailure::before_sending("no nameserver to ask".into()));
    }
    let mut message = Message::query();
    // Recursion desired: recursive resolvers need it, authoritative servers ignore it.
    message.metadata.recursion_desired = true;
    message.add_query(question.clone());
    let id = message.metadata.id;
    let packet =
        message.to_vec().map_err(|e| DnsFailure::before_sending(format!("cannot encode a query for {name}: {e}")))?;

    let mut first_sent = None;
    let mut failed: Vec<Unusable> = Vec::new();
    for (index, &server) in servers.iter().enumerate() {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            break;
        }
        let share = left / u32::try_from(servers.len() - index).unwrap_or(u32::MAX);
        let exchange = Exchange { server, packet: &packet, id, question: &question, deadline: now + share };
        let reply = exchange.run(tcp_fallback, &mut first_sent).await;
        let since_first_send = |at: Instant| at.saturating_duration_since(first_sent.unwrap_or(started));
        let unusable = match reply {
            Ok(reply) => {
                let elapsed = since_first_send(reply.received);
                match judge(&reply, &question, server) {
                    Judged::Answer(addresses) => {
                        return Ok(DnsAnswer {
                            rcode: reply.message.metadata.response_code,
                            addresses,
                            server,
                            elapsed,
                            over_tcp: reply.over_tcp,
                        });
                    }
                    Judged::Settled(failure, detail) => return Err(DnsFailure { failure, detail, elapsed }),
                    Judged::Unusable(unusable) => unusable,
                }
            }
            Err(ExchangeError::Timeout) => {
                Unusable::silent(Failure::DnsTimeout, format!("no reply from {server} in {} ms", share.as_millis()))
            }
            Err(ExchangeError::Io(e)) => Unusable::local(format!("{} talking to {server}", e.kind())),
            Err(ExchangeError::Malformed(what)) => Unusable::spoken(Failure::DnsError, format!("{what} from {server}")),
        };
        failed.push(unusable);
    }
    let elapsed = Instant::now().saturating_duration_since(first_sent.unwrap_or(started));
    Err(summarize(failed, elapsed, timeout))
}

/// The DNS check of a site: `query`, then every answered address must be one of `expected`
/// (when `expected` is empty, any answer will do). With no `servers`, the system's resolvers.
/// The DNS check of a site: its hostname asked of its cluster's nameservers (or the probe's
/// resolvers), the answer judged against the site's expected addresses.
pub async fn check_site(fleet: &Fleet, site_idx: SiteIdx) -> Probed {
    let site = &fleet.sites[site_idx];
    let cluster = &fleet.clusters[site.cluster];
    let expected: &[IpAddr] = match &site.expected_addresses {
        ExpectedAddresses::ClusterFrontends => &cluster.frontends,
        ExpectedAddresses::Any => &[],
        ExpectedAddresses::List(list) => list,
    };
    let servers: &[SocketAddr] =
        if cluster.nameservers.is_empty() { &fleet.probe.resolvers } else { &cluster.nameservers };
    check(&site.hostname, expected, &fleet.probe.dns, servers, fleet.probe.timeouts.dns).await
}

pub async fn check(
    hostname: &str,
    expected: &[IpAddr],
    settings: &DnsSettings,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Probed {
    let started = Instant::now();
    let result = match or_system(servers) {
        Ok(servers) => query(hostname, settings.record_type, servers, timeout, settings.tcp_fallback).await,
        Err(unread) => Err(unread),
    };
    let total_us = micros(started.elapsed());
    match result {
        Ok(answer) => {
            // The DNS phase is timed from send to receive, the total from the call.
            let timings = Timings { dns_us: Some(micros(answer.elapsed)), total_us, ..Timings::default() };
            let wrong = !expected.is_empty() && answer.addresses.iter().any(|a| !expected.contains(a));
            if wrong {
                let detail = format!("answered {}, expected {}", list(&answer.addresses, "and"), list(expected, "or"));
                Probed { failure: Some(Failure::DnsWrongAnswer), detail: Some(detail), timings, ..Probed::default() }
            } else {
                Probed { timings, ..Probed::default() }
            }
        }
        Err(failed) => {
            // The time spent in a failed DNS phase is still time spent; the outcome tells them apart.
            let timings = Timings { dns_us: Some(micros(failed.elapsed)), total_us, ..Timings::default() };
            Probed { failure: Some(failed.failure), detail: Some(failed.detail), timings, ..Probed::default() }
        }
    }
}

/// The addresses to connect to for `hostname`, for the HTTP prober: A records, or AAAA records
/// when the name has no A record. An address literal is returned as is, without a query.
/// With no `servers`, the system's resolvers. The duration is the DNS phase's network time.
pub async fn resolve(
    hostname: &str,
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<(Vec<IpAddr>, Duration), DnsFailure> {
    let literal = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(hostname);
    if let Ok(address) = literal.parse::<IpAddr>() {
        return Ok((vec![address], Duration::ZERO));
    }
    let servers = or_system(servers)?;
    let started = Instant::now();
    match query(hostname, RecordKind::A, servers, timeout, true).await {
        Ok(answer) => Ok((answer.addresses, answer.elapsed)),
        Err(no_a) if no_a.failure == Failure::DnsNoData => {
            let left = timeout.saturating_sub(started.elapsed());
            match query(hostname, RecordKind::AAAA, servers, left, true).await {
                Ok(answer) => Ok((answer.addresses, no_a.elapsed + answer.elapsed)),
                Err(mut no_aaaa) => {
                    no_aaaa.elapsed += no_a.elapsed;
                    if no_aaaa.failure == Failure::DnsNoData {
                        no_aaaa.detail = format!("no A or AAAA record ({})", no_aaaa.detail);
                    }
                    Err(no_aaaa)
                }
            }
        }
        Err(failed) => Err(failed),
    }
}

/// `servers`, or the system's resolvers when it is empty.
fn or_system(servers: &[SocketAddr]) -> Result<&[SocketAddr], DnsFailure> {
    if !servers.is_empty() {
        return Ok(servers);
    }
    system_nameservers().map_err(|unread| DnsFailure::before_sending(unread.to_owned()))
}

/// The system's resolvers, read once per process by hickory-resolver's system configuration
/// reader. Only the list of addresses is used: queries are still built, sent and timed here.
fn system_nameservers() -> Result<&'static [SocketAddr], &'static str> {
    static SYSTEM: OnceLock<Result<Vec<SocketAddr>, String>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            // A small file read once; blocking the runtime for it is harmless.
            let read = system_resolvers(read_system_conf());
            if let Err(unread) = &read {
                log::warn!("{unread}");
            }
            read
        })
        .as_deref()
        .map_err(String::as_str)
}

/// The servers to ask, from what the system configuration reader returned: each listed
/// nameserver on its UDP port (53 for resolv.conf). Without any listed nameserver, or without the
/// file, 127.0.0.1:53, as the C library does. Link-local IPv6 addresses are skipped: the reader
/// drops their zone (`fe80::1%eth0`), and without it they cannot be reached. Any other error
/// (unreadable file, unparsable search domain) says which file and what to do instead.
fn system_resolvers(read: Result<(ResolverConfig, ResolverOpts), NetError>) -> Result<Vec<SocketAddr>, String> {
    let config = match read {
        Ok((config, _)) => config,
        Err(NetError::Io(e)) if e.kind() == io::ErrorKind::NotFound || e.to_string() == NO_NAMESERVERS => {
            return Ok(vec![LOCAL_RESOLVER]);
        }
        Err(e) => {
            return Err(format!(
                "cannot read the system's nameservers from {RESOLV_CONF}: {e}; list them in probe.resolvers"
            ));
        }
    };
    let listed: Vec<SocketAddr> = config
        .name_servers()
        .iter()
        .filter(|server| !matches!(server.ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .map(|server| {
            let udp = server.connections.iter().find(|c| matches!(c.protocol, ProtocolConfig::Udp));
            SocketAddr::new(server.ip, udp.map_or(53, |c| c.port))
        })
        .collect();
    Ok(if listed.is_empty() { vec![LOCAL_RESOLVER] } else { listed })
}

/// A name that cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BadName {
    #[error("empty host name")]
    Empty,
    #[error("`{name}` is not a DNS name: {reason}")]
    Syntax { name: String, reason: String },
}

fn question(name: &str, record_type: RecordKind) -> Result<Query, BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    // ASCII names (nearly all, punycode included) skip the IDNA mapping, which showed in the profile.
    let ascii = if name.is_ascii() { Name::from_ascii(name).ok() } else { None };
    let mut qname = match ascii {
        Some(qname) => qname,
        None => Name::from_str_relaxed(name)
            .map_err(|e| BadName::Syntax { name: name.to_string(), reason: e.to_string() })?,
    };
    qname.set_fqdn(true);
    let record_type = match record_type {
        RecordKind::A => RecordType::A,
        RecordKind::AAAA => RecordType::AAAA,
    };
    Ok(Query::query(qname, record_type))
}

/// One query to one server: UDP, then TCP if the reply is truncated.
struct Exchange<'a> {
    server: SocketAddr,
    packet: &'a [u8],
    id: u16,
    question: &'a Query,
    deadline: Instant,
}

struct Reply {
    message: Message,
    received: Instant,
    over_tcp: bool,
}

enum ExchangeError {
    Timeout,
    Io(io::Error),
    /// A reply with our id that does not parse.
    Malformed(String),
}

impl From<io::Error> for ExchangeError {
    fn from(e: io::Error) -> Self {
        ExchangeError::Io(e)
    }
}

impl Exchange<'_> {
    async fn run(&self, tcp_fallback: bool, first_sent: &mut Option<Instant>) -> Result<Reply, ExchangeError> {
        let reply = self.over_udp(first_sent).await?;
        if reply.message.metadata.truncation && tcp_fallback {
            return self.over_tcp().await;
        }
        Ok(reply)
    }

    async fn over_udp(&self, first_sent: &mut Option<Instant>) -> Result<Reply, ExchangeError> {
        let socket = UdpSocket::bind(super::source::local_for(self.server)?).await?;
        // Connected: the kernel drops datagrams from other addresses and reports ICMP errors.
        socket.connect(self.server).await?;
        // Stamped by the kernel on arrival where it can (see `stamp`): the answer's time is the
        // network's, not the time this task waited to be polled.
        let socket = StampedUdp::new(socket);
        let mut buf = vec![0u8; UDP_BUFFER];
        super::silence::waiting();
        let sent = socket.send(self.packet).await?;
        first_sent.get_or_insert(sent);
        // Bounded by the deadline: stray datagrams are skipped until the reply or the timeout.
        loop {
            let (len, received, _) = self.before_deadline(socket.recv(&mut buf)).await??;
            super::silence::answered();
            if let Some(message) = self.ours(buf.get(..len).unwrap_or_default())? {
                return Ok(Reply { message, received, over_tcp: false });
            }
        }
    }

    async fn over_tcp(&self) -> Result<Reply, ExchangeError> {
        super::silence::waiting();
        let mut stream = self.before_deadline(super::source::connect_tcp(self.server)).await??;
        super::silence::answered();
        let _ = stream.set_nodelay(true);
        let len = u16::try_from(self.packet.len()).map_err(|_| ExchangeError::Malformed("oversized query".into()))?;
        let mut framed = Vec::with_capacity(self.packet.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(self.packet);
        self.before_deadline(stream.write_all(&framed)).await??;
        // Bounded by the deadline, like the UDP wait.
        loop {
            let mut prefix = [0u8; 2];
            self.before_deadline(stream.read_exact(&mut prefix)).await??;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
            self.before_deadline(stream.read_exact(&mut reply)).await??;
            let received = Instant::now();
            if let Some(message) = self.ours(&reply)? {
                return Ok(Reply { message, received, over_tcp: true });
            }
        }
    }

    async fn before_deadline<T>(&self, future: impl Future<Output = T>) -> Result<T, ExchangeError> {
        timeout_at(self.deadline, future).await.map_err(|_| {
            super::silence::gave_up();
            ExchangeError::Timeout
        })
    }

    /// The reply to our query, `None` for a packet that is not (a stray or late datagram).
    fn ours(&self, packet: &[u8]) -> Result<Option<Message>, ExchangeError> {
        // The id is checked on the raw header first, so garbage with another id is only a stray.
        let id = packet.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        if id != Some(self.id) {
            return Ok(None);
        }
        let message =
            Message::from_vec(packet).map_err(|e| ExchangeError::Malformed(format!("malformed reply ({e})")))?;
        if message.metadata.message_type != MessageType::Response {
            return Ok(None);
        }
        let same_question = match message.queries.as_slice() {
            [q] => {
                q.name() == self.question.name()
                    && q.query_type() == self.question.query_type()
                    && q.query_class() == DNSClass::IN
            }
            // Some servers leave the question out of error replies.
            [] => message.metadata.response_code != ResponseCode::NoError,
            _ => false,
        };
        Ok(same_question.then_some(message))
    }
}

/// What a reply means for the check.
enum Judged {
    Answer(Vec<IpAddr>),
    /// A definite negative answer: asking another server would not change it.
    Settled(Failure, String),
    Unusable(Unusable),
}

/// Why one server gave no usable answer.
struct Unusable {
    failure: Failure,
    detail: String,
    /// Which failure to report when every server failed: a server that spoke (2) says more than
    /// one that stayed silent (1), which says more than a local network error (0).
    rank: u8,
}

impl Unusable {
    fn spoken(failure: Failure, detail: String) -> Self {
        Unusable { failure, detail, rank: 2 }
    }

    fn silent(failure: Failure, detail: String) -> Self {
        Unusable { failure, detail, rank: 1 }
    }

    fn local(detail: String) -> Self {
        Unusable { failure: Failure::DnsError, detail, rank: 0 }
    }
}

fn judge(reply: &Reply, question: &Query, server: SocketAddr) -> Judged {
    let message = &reply.message;
    match message.metadata.response_code {
        ResponseCode::NoError => {
            let addresses = addresses(message, question);
            if !addresses.is_empty() {
                Judged::Answer(addresses)
            } else if message.metadata.truncation {
                Judged::Unusable(Unusable::spoken(
                    Failure::DnsError,
                    format!("truncated reply from {server} and TCP fallback is off"),
                ))
            } else {
                Judged::Settled(Failure::DnsNoData, format!("no {} record from {server}", question.query_type()))
            }
        }
        ResponseCode::NXDomain => Judged::Settled(Failure::DnsNxdomain, format!("NXDOMAIN from {server}")),
        ResponseCode::ServFail => {
            Judged::Unusable(Unusable::spoken(Failure::DnsServfail, format!("SERVFAIL from {server}")))
        }
        ResponseCode::Refused => {
            Judged::Unusable(Unusable::spoken(Failure::DnsRefused, format!("REFUSED from {server}")))
        }
        other => Judged::Unusable(Unusable::spoken(
            Failure::DnsError,
            format!("rcode {} ({other}) from {server}", u16::from(other)),
        )),
    }
}

/// The addresses of the asked type for the asked name, following CNAMEs within the answer
/// section (a resolver puts the whole chain there).
fn addresses(message: &Message, question: &Query) -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut current = question.name();
    for _ in 0..MAX_CNAME_HOPS {
        let mut alias = None;
        for record in message.answers.iter().filter(|r| r.name == *current) {
            match (&record.data, question.query_type()) {
                (RData::A(a), RecordType::A) => found.push(IpAddr::V4(a.0)),
                (RData::AAAA(aaaa), RecordType::AAAA) => found.push(IpAddr::V6(aaaa.0)),
                (RData::CNAME(target), _) => alias = Some(&target.0),
                _ => {}
            }
        }
        match alias {
            Some(target) if found.is_empty() => current = target,
            _ => break,
        }
    }
    found
}

/// The failure reported when no server gave a usable answer: the most telling one, with every
/// server's story in the detail.
fn summarize(failed: Vec<Unusable>, elapsed: Duration, timeout: Duration) -> DnsFailure {
    let Some(worst) = failed.iter().enumerate().max_by_key(|(i, u)| (u.rank, std::cmp::Reverse(*i))) else {
        return DnsFailure {
            failure: Failure::DnsTimeout,
            detail: format!("no time to ask any nameserver within {} ms", timeout.as_millis()),
            elapsed,
        };
    };
    let failure = worst.1.failure;
    let detail = failed.iter().map(|u| u.detail.as_str()).collect::<Vec<_>>().join("; ");
    DnsFailure { failure, detail, elapsed }
}

/// "a, b and 2 more" style listing for details, cut short so a detail stays one line.
fn list(addresses: &[IpAddr], conjunction: &str) -> String {
    const SHOWN: usize = 4;
    let mut words: Vec<String> = addresses.iter().take(SHOWN).map(IpAddr::to_string).collect();
    if addresses.len() > SHOWN {
        words.push(format!("{} more", addresses.len() - SHOWN));
    }
    match words.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} {conjunction} {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapping from hickory-resolver's reading of a resolv.conf text.
    fn from_text(text: &str) -> Result<Vec<SocketAddr>, String> {
        system_resolvers(hickory_resolver::system_conf::parse_resolv_conf(text))
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nsearch example.test\nnameserver 127.0.0.53\n  nameserver\t::1 # local\n\
                    nameserver fe80::1%eth0\nnameserver not-an-address\n;nameserver 127.0.0.9\noptions edns0\n\
                    nameserver 127.0.0.54 ; trailing";
        let expected: Vec<SocketAddr> =
            vec!["127.0.0.53:53".parse().unwrap(), "[::1]:53".parse().unwrap(), "127.0.0.54:53".parse().unwrap()];
        assert_eq!(from_text(text), Ok(expected));
    }

    #[test]
    fn no_listed_nameserver_means_the_local_one() {
        let local = Ok(vec![LOCAL_RESOLVER]);
        assert_eq!(from_text(""), local);
        assert_eq!(from_text("search example.test\noptions edns0\n"), local);
        assert_eq!(from_text("nameserver fe80::1%eth0\n"), local);
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(system_resolvers(Err(missing.into())), local);
    }

    #[test]
    fn an_unreadable_configuration_is_a_clear_error() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let unread = system_resolvers(Err(denied.into())).unwrap_err();
        assert!(unread.starts_with("cannot read the system's nameservers from /etc/resolv.conf: "), "{unread}");
        assert!(unread.ends_with("; list them in probe.resolvers"), "{unread}");
    }

    #[test]
    fn this_machine_has_nameservers_on_port_53() {
        // Whatever /etc/resolv.conf holds here (or its absence), the system list is usable.
        let servers = system_nameservers().expect("the system's resolver configuration reads");
        assert!(!servers.is_empty());
        assert!(servers.iter().all(|s| s.port() == 53), "{servers:?}");
        // Given servers are used as they are.
        let given: [SocketAddr; 1] = ["127.0.0.9:5353".parse().unwrap()];
        assert_eq!(or_system(&given).unwrap(), &given);
        assert_eq!(or_system(&[]).unwrap(), servers);
    }

    #[test]
    fn address_lists_read_as_text() {
        let a: IpAddr = "127.0.9.9".parse().unwrap();
        let b: IpAddr = "127.0.9.8".parse().unwrap();
        assert_eq!(list(&[a], "and"), "127.0.9.9");
        assert_eq!(list(&[a, b], "or"), "127.0.9.9 or 127.0.9.8");
        assert_eq!(list(&[a, b, a], "and"), "127.0.9.9, 127.0.9.8 and 127.0.9.9");
        assert_eq!(list(&[a; 6], "and"), "127.0.9.9, 127.0.9.9, 127.0.9.9, 127.0.9.9 and 2 more");
    }

    #[test]
    fn bad_names_are_dns_errors_not_panics() {
        assert!(question("", RecordKind::A).is_err());
        assert!(question("a..b", RecordKind::A).is_err());
        let q = question("WWW.Example.Test", RecordKind::AAAA).unwrap();
        assert!(q.name().is_fqdn());
        assert_eq!(q.query_type(), RecordType::AAAA);
    }
}
