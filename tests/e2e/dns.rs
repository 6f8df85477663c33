//! A minimal DNS client over UDP, to see what NSD answers independently of the code under test.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const NOERROR: u8 = 0;
pub const NXDOMAIN: u8 = 3;

/// The parts of a reply the suite looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub rcode: u8,
    pub addresses: Vec<Ipv4Addr>,
}

/// Asks `server` for the A records of `name` (one UDP query, no recursion).
pub fn query_a(server: SocketAddr, name: &str, timeout: Duration) -> io::Result<Reply> {
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.connect(server)?;
    let id = (SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos() & 0xffff) as u16;
    socket.send(&encode_query(id, name)?)?;
    let mut buf = [0u8; 4096];
    // Bounded: a few stray datagrams (late replies to earlier ids) are skipped, then we give up.
    for _ in 0..4 {
        let len = socket.recv(&mut buf)?;
        if let Some(reply) = decode_reply(id, &buf[..len]) {
            return Ok(reply);
        }
    }
    Err(io::Error::other(format!("no matching reply from {server} for {name}")))
}

fn encode_query(id: u16, name: &str) -> io::Result<Vec<u8>> {
    let mut packet = Vec::with_capacity(64);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // flags 0 (no RD), QDCOUNT 1
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad DNS name {name:?}")));
        }
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]); // root, QTYPE A, QCLASS IN
    Ok(packet)
}

fn decode_reply(id: u16, packet: &[u8]) -> Option<Reply> {
    if packet.len() < 12 || u16::from_be_bytes([packet[0], packet[1]]) != id || packet[2] & 0x80 == 0 {
        return None;
    }
    let rcode = packet[3] & 0x0f;
    let questions = u16::from_be_bytes([packet[4], packet[5]]);
    let answers = u16::from_be_bytes([packet[6], packet[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        at = skip_name(packet, at)?;
        let header = packet.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([header[0], header[1]]);
        let rdlength = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let rdata = packet.get(at + 10..at + 10 + rdlength)?;
        if rtype == 1 && rdlength == 4 {
            addresses.push(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3]));
        }
        at += 10 + rdlength;
    }
    Some(Reply { rcode, addresses })
}

/// Position just after the (possibly compressed) name starting at `at`.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    for _ in 0..128 {
        let len = *packet.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
    None
}
