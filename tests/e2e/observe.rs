//! What the servers themselves say about a site, asked directly, without the code under test.
//! Shown next to a result that differs from the truth, to tell a harness fault from a prober bug.

use std::net::SocketAddr;
use std::time::Duration;

use super::dns::{NOERROR, query_a};
use super::fleet::Fleet;
use super::nginx::get;

/// A one-line description: the DNS answer, then the HTTP answer from the address it gave.
pub fn observe(fleet: &Fleet, site: usize) -> String {
    let s = &fleet.sites[site];
    let reply = match query_a(fleet.net.nameserver(), &s.hostname, Duration::from_secs(1)) {
        Ok(reply) => reply,
        Err(e) => return format!("DNS query failed: {e}"),
    };
    let Some(&address) = reply.addresses.first().filter(|_| reply.rcode == NOERROR) else {
        return format!("DNS rcode {} with {:?}", reply.rcode, reply.addresses);
    };
    let http = match get(SocketAddr::from((address, fleet.net.port)), &format!("{}:{}", s.hostname, fleet.net.port)) {
        Ok((status, body)) => format!("HTTP {status} {:?}", body.trim()),
        Err(e) => format!("HTTP failed: {e} (kind {:?})", e.kind()),
    };
    format!("DNS {address}; {http}")
}
