//! `probe.source_address`: the local address the checks' sockets are bound to, so that a prober
//! (a vantage) leaves the machine by a path of its own. [`Probers::check`](super::Probers::check)
//! sets it for the check's task; the places that make sockets ask for it here.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

tokio::task_local! {
    static SOURCE: Option<IpAddr>;
}

/// Runs `future` with its sockets bound to `source` (when set).
pub(crate) async fn scope<F: Future>(source: Option<IpAddr>, future: F) -> F::Output {
    SOURCE.scope(source, future).await
}

/// The address the current check binds to, if any.
pub(crate) fn address() -> Option<IpAddr> {
    SOURCE.try_with(|s| *s).ok().flatten()
}

/// The local address a socket to `server` binds to: the source address when one is set (it must
/// be of the server's family), else any.
pub(crate) fn local_for(server: SocketAddr) -> io::Result<SocketAddr> {
    match (address(), server) {
        (Some(ip), _) if ip.is_ipv4() == server.is_ipv4() => Ok(SocketAddr::new(ip, 0)),
        (Some(ip), _) => Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("probe.source_address {ip} cannot reach {server} (another address family)"),
        )),
        (None, SocketAddr::V4(_)) => Ok((Ipv4Addr::UNSPECIFIED, 0).into()),
        (None, SocketAddr::V6(_)) => Ok((Ipv6Addr::UNSPECIFIED, 0).into()),
    }
}

/// A TCP connection to `server` from the source address (or any).
pub(crate) async fn connect_tcp(server: SocketAddr) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if address().is_some() {
        socket.bind(local_for(server)?)?;
    }
    socket.connect(server).await
}
