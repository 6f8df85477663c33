//! A banner listener for TCP checks: a mail or SSH server in miniature that greets every
//! connection with a line, stays silent, or hangs up, as [`BannerBehavior`] says at the time.
//! A refused connection is a port nobody listens on: [`closed_port`].

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::{ServerHandle, reap};

/// What the listener does with each connection it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerBehavior {
    /// Sends this line (a line end is added) and keeps the connection open until the client
    /// closes it. A wrong banner is just another line.
    Banner(String),
    /// Accepts and never sends anything.
    Silent,
    /// Accepts and closes at once, before any banner.
    Close,
}

/// Starts a banner listener on `addr` (port 0: any free port).
pub async fn spawn(addr: SocketAddr, behavior: Arc<RwLock<BannerBehavior>>) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept(listener, behavior));
    Ok(ServerHandle::new(addr, vec![task.abort_handle()]))
}

async fn accept(listener: TcpListener, behavior: Arc<RwLock<BannerBehavior>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        reap(&mut connections);
        let now = behavior.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        connections.spawn(async move {
            match now {
                BannerBehavior::Close => drop(stream),
                BannerBehavior::Silent => hold(&mut stream).await,
                BannerBehavior::Banner(line) => {
                    if stream.write_all(format!("{line}\r\n").as_bytes()).await.is_ok() {
                        hold(&mut stream).await;
                    }
                }
            }
        });
    }
}

/// Keeps a connection open, reading and dropping whatever comes, until the client closes it.
async fn hold(stream: &mut tokio::net::TcpStream) {
    let mut sink = [0u8; 256];
    while let Ok(n) = tokio::io::AsyncReadExt::read(stream, &mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// A loopback port nobody listens on (bound, then released), for refused connections.
pub async fn closed_port(ip: std::net::IpAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((ip, 0)).await?;
    listener.local_addr()
}
