//! An authoritative DNS server on loopback, UDP and TCP on one address, whose answers a
//! scenario can change (or break) while it runs.
//!
//! It plays the fleet's nameservers for the demo and the tests of `probe::dns`: each name has a
//! [`NameBehavior`] (answer, NXDOMAIN, SERVFAIL, REFUSED, silence, truncation), looked up in a
//! [`Zone`] behind a lock that the server only holds while it builds one reply.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::{ServerHandle, reap};

/// TTL of every answer; nothing caches in fleetprobe, so it only has to look plausible.
const TTL: u32 = 60;
/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Large enough for any query; EDNS clients advertise at most 4096 in practice.
const UDP_BUFFER: usize = 4096;
/// Kernel receive buffer asked for the UDP socket (the kernel caps it at `net.core.rmem_max`): a
/// sweep sends hundreds of queries at once, and the default buffer drops part of such a burst,
/// which the prober would report as timeouts that never happened on a real nameserver.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;
/// Tasks answering on the UDP socket: one per core of the machines this runs on, so answering
/// keeps up with a sweep on a multi-threaded runtime.
const UDP_WORKERS: usize = 2;

/// What the server does when asked about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameBehavior {
    /// NOERROR with the addresses of the asked family (A: IPv4, AAAA: IPv6).
    Answer(Vec<IpAddr>),
    Nxdomain,
    Servfail,
    Refused,
    /// No reply at all: the client times out.
    Silence,
    /// Over UDP a truncated reply (TC bit, no answers), so the client must retry over TCP; over
    /// TCP the addresses, as with `Answer`.
    Truncate(Vec<IpAddr>),
}

static NXDOMAIN: NameBehavior = NameBehavior::Nxdomain;
static REFUSED: NameBehavior = NameBehavior::Refused;

/// The names the server knows, and what it does for the others.
///
/// Names are stored lower case without a trailing dot. A name not in the table gets NXDOMAIN
/// when it lies under one of the served suffixes (the server is authoritative there), REFUSED
/// otherwise. A server-wide fault, when set, wins over everything.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    names: HashMap<String, NameBehavior>,
    suffixes: Vec<String>,
    fault: Option<NameBehavior>,
}

impl Zone {
    /// An empty zone authoritative for `suffixes` (e.g. `["example.test"]`).
    pub fn new<S: AsRef<str>>(suffixes: impl IntoIterator<Item = S>) -> Zone {
        Zone { suffixes: suffixes.into_iter().map(|s| normalize(s.as_ref())).collect(), ..Zone::default() }
    }

    /// Sets the behaviour of one name; returns the previous one.
    pub fn set(&mut self, name: &str, behavior: NameBehavior) -> Option<NameBehavior> {
        self.names.insert(normalize(name), behavior)
    }

    /// Forgets a name (it falls back to NXDOMAIN or REFUSED).
    pub fn remove(&mut self, name: &str) -> Option<NameBehavior> {
        self.names.remove(&normalize(name))
    }

    /// A behaviour for every query, whatever the name (`None` to clear): a whole nameserver
    /// failing, e.g. `Silence` for one that stopped answering.
    pub fn set_fault(&mut self, fault: Option<NameBehavior>) {
        self.fault = fault;
    }

    /// What the server does for `name` (lower case, no trailing dot).
    pub fn lookup(&self, name: &str) -> &NameBehavior {
        if let Some(fault) = &self.fault {
            return fault;
        }
        if let Some(behavior) = self.names.get(name) {
            return behavior;
        }
        let served = self
            .suffixes
            .iter()
            .any(|suffix| name == suffix || name.strip_suffix(suffix.as_str()).is_some_and(|head| head.ends_with('.')));
        if served { &NXDOMAIN } else { &REFUSED }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Starts the server on `addr`, UDP and TCP on the same port. With port 0 the system picks a port
/// free for both. The zone may be changed at any time; each query sees the zone as it is then.
pub async fn spawn(addr: SocketAddr, zone: Arc<RwLock<Zone>>) -> io::Result<ServerHandle> {
    let (udp, tcp) = bind_pair(addr).await?;
    let addr = udp.local_addr()?;
    let udp = Arc::new(udp);
    let mut tasks: Vec<_> =
        (0..UDP_WORKERS).map(|_| tokio::spawn(serve_udp(Arc::clone(&udp), Arc::clone(&zone))).abort_handle()).collect();
    tasks.push(tokio::spawn(serve_tcp(tcp, zone)).abort_handle());
    Ok(ServerHandle::new(addr, tasks))
}

/// Binds UDP first, then TCP on the port UDP got; with port 0 that port may be taken for TCP,
/// so a few fresh ports are tried.
async fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    const ATTEMPTS: usize = 16;
    let mut last_error = None;
    for _ in 0..ATTEMPTS {
        let udp = bind_udp(addr)?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "no port free for both UDP and TCP")))
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer still works, it only drops bursts sooner.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

async fn serve_udp(socket: Arc<UdpSocket>, zone: Arc<RwLock<Zone>>) {
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            // A datagram-level error (e.g. a late ICMP report) concerns one peer, not the server.
            Err(_) => {
                tokio::task::yield_now().await;
                continue;
            }
        };
        if let Some(reply) = respond(&buf[..len], &zone, Transport::Udp) {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: Arc<RwLock<Zone>>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // E.g. out of file descriptors: pause rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        reap(&mut connections);
        connections.spawn(serve_tcp_connection(stream, Arc::clone(&zone)));
    }
}

/// Answers length-prefixed queries on one connection until the client closes it or goes idle.
async fn serve_tcp_connection(mut stream: TcpStream, zone: Arc<RwLock<Zone>>) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut prefix = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut prefix)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut packet = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut packet)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = respond(&packet, &zone, Transport::Tcp) else { continue };
        let Ok(len) = u16::try_from(reply.len()) else { continue };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The reply to one query, or `None` to stay silent (unparseable packets are dropped, as real
/// servers do with garbage).
fn respond(packet: &[u8], zone: &RwLock<Zone>, transport: Transport) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        // EDNS clients (dig) expect an OPT record back.
        response.set_edns(Edns::new());
    }
    let query = match (request.metadata.op_code, request.queries.as_slice()) {
        (OpCode::Query, [query]) => query,
        (OpCode::Query, _) => return error_reply(response, ResponseCode::FormErr),
        _ => return error_reply(response, ResponseCode::NotImp),
    };
    let name = normalize(&query.name().to_ascii());
    {
        // A poisoned lock only means a scenario panicked mid-edit; the zone itself is still usable.
        let zone = zone.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        match zone.lookup(&name) {
            NameBehavior::Silence => return None,
            NameBehavior::Nxdomain => {
                response.metadata.authoritative = true;
                response.metadata.response_code = ResponseCode::NXDomain;
            }
            NameBehavior::Servfail => response.metadata.response_code = ResponseCode::ServFail,
            NameBehavior::Refused => response.metadata.response_code = ResponseCode::Refused,
            NameBehavior::Truncate(_) if transport == Transport::Udp => {
                response.metadata.authoritative = true;
                response.metadata.truncation = true;
            }
            NameBehavior::Answer(addresses) | NameBehavior::Truncate(addresses) => {
                response.metadata.authoritative = true;
                for address in addresses {
                    let data = match (query.query_type(), address) {
                        (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
                        (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    response.add_answer(Record::from_rdata(query.name().clone(), TTL, data));
                }
            }
        }
    }
    response.to_vec().ok()
}

fn error_reply(mut response: Message, code: ResponseCode) -> Option<Vec<u8>> {
    response.metadata.response_code = code;
    response.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_defaults_follow_the_served_suffixes() {
        let mut zone = Zone::new(["Example.Test."]);
        zone.set("WWW.example.test.", NameBehavior::Servfail);
        assert_eq!(zone.lookup("www.example.test"), &NameBehavior::Servfail);
        assert_eq!(zone.lookup("other.example.test"), &NameBehavior::Nxdomain);
        assert_eq!(zone.lookup("example.test"), &NameBehavior::Nxdomain);
        assert_eq!(zone.lookup("badexample.test"), &NameBehavior::Refused);
        assert_eq!(zone.lookup("example.org"), &NameBehavior::Refused);
        zone.set_fault(Some(NameBehavior::Silence));
        assert_eq!(zone.lookup("www.example.test"), &NameBehavior::Silence);
        zone.set_fault(None);
        assert_eq!(zone.remove("www.example.test"), Some(NameBehavior::Servfail));
        assert_eq!(zone.lookup("www.example.test"), &NameBehavior::Nxdomain);
    }
}
