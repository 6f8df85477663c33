//! The phases every connecting check shares: the DNS lookup of the host (unless an address is
//! given) and the TCP connect, each timed and bounded, and sorted into failure classes.
//!
//! `http.rs` and any other check over TCP call [`open`]; what they do on the stream is theirs.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Failure, Phase, Probed, Timings, dns, micros, silence, stamp};
use crate::fleet::Timeouts;

/// Resolves `host` through `resolvers` (skipped for an address literal or when `connect_to`
/// is given) and connects to `port` on the first address. The DNS phase is the network time
/// of the queries, the connect phase the kernel's measure of the handshake (or the wait for
/// it); both are added to `timings`. A failure is the check's result.
pub(crate) async fn open(
    host: &str,
    port: u16,
    connect_to: Option<IpAddr>,
    resolvers: &[SocketAddr],
    timeouts: &Timeouts,
    deadline: Instant,
    timings: &mut Timings,
) -> Result<(TcpStream, SocketAddr), Probed> {
    let ip = match connect_to {
        Some(ip) => ip,
        None => resolve(host, resolvers, timeouts, deadline, timings).await?,
    };
    connect(ip, port, timeouts, deadline, timings).await
}

/// The address `host` is reached at: the host itself when it is an address literal, else the
/// first address its lookup through `resolvers` answers (the DNS phase is added to `timings`).
pub(crate) async fn resolve(
    host: &str,
    resolvers: &[SocketAddr],
    timeouts: &Timeouts,
    deadline: Instant,
    timings: &mut Timings,
) -> Result<IpAddr, Probed> {
    if let Ok(literal) = host.parse::<IpAddr>() {
        return Ok(literal);
    }
    let (limit, _) = phase_limit(timeouts.dns, deadline);
    // The network time of the queries, from the first send to the answer's arrival.
    let resolved = dns::resolve(host, resolvers, limit).await;
    add(&mut timings.dns_us, resolved.as_ref().map_or_else(|e| e.elapsed, |(_, elapsed)| *elapsed));
    match resolved {
        Ok((addresses, _)) => match addresses.first() {
            Some(&ip) => Ok(ip),
            None => Err(Probed::failed(Failure::DnsNoData, format!("{host} has no address"))),
        },
        Err(e) => Err(Probed::failed(e.failure, format!("resolving {host}: {}", e.detail))),
    }
}

/// Connects to `port` on `ip`, timed and bounded; the connect phase is added to `timings`.
pub(crate) async fn connect(
    ip: IpAddr,
    port: u16,
    timeouts: &Timeouts,
    deadline: Instant,
    timings: &mut Timings,
) -> Result<(TcpStream, SocketAddr), Probed> {
    // TCP connect
    let address = SocketAddr::new(ip, port);
    let (limit, total_bound) = phase_limit(timeouts.connect, deadline);
    let started = Instant::now();
    silence::waiting();
    let connected = tokio::time::timeout(limit, super::source::connect_tcp(address)).await;
    if connected.is_ok() {
        silence::answered()
    } else {
        silence::gave_up()
    }
    let waited = started.elapsed();
    // The handshake as the kernel timed it, unless the wait for it was shorter (it cannot be).
    let handshake = connected.as_ref().ok().and_then(|c| c.as_ref().ok()).and_then(stamp::handshake_rtt);
    add(&mut timings.connect_us, handshake.filter(|&rtt| rtt <= waited).unwrap_or(waited));
    match connected {
        Err(_) if total_bound => {
            Err(Probed::failed(Failure::Timeout(Phase::Total), format!("connecting to {address}")))
        }
        Err(_) => Err(Probed::failed(Failure::ConnectTimeout, format!("no connection to {address} within {limit:?}"))),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            Err(Probed::failed(Failure::ConnectRefused, format!("{address} refused the connection")))
        }
        Ok(Err(e)) => Err(Probed::failed(Failure::ConnectError, format!("connecting to {address}: {e}"))),
        Ok(Ok(tcp)) => Ok((tcp, address)),
    }
}

/// The time a phase may take: its own timeout, or what is left of the total if that is less.
/// The flag says whether the total is the binding limit.
pub(crate) fn phase_limit(phase: Duration, deadline: Instant) -> (Duration, bool) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < phase { (left, true) } else { (phase, false) }
}

/// Adds a phase's time to its slot (phases add up over redirects).
pub(crate) fn add(slot: &mut Option<u32>, elapsed: Duration) {
    *slot = Some(slot.unwrap_or(0).saturating_add(micros(elapsed)));
}
