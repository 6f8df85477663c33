//! Loopback servers that the demo and the tests probe: HTTP virtual hosts, an authoritative
//! DNS server and a banner listener for TCP checks, each able to misbehave in the ways real fleets do.
//!
//! They sit outside the data flow: they play the fleet that `probe` watches. Their behaviour
//! lives behind an `Arc<RwLock<..>>` so a scenario can flip faults while they serve.

pub mod dns;
pub mod http;
pub mod pki;
pub mod tcp;
pub mod webhook;

use std::net::SocketAddr;

use tokio::task::{AbortHandle, JoinSet};

/// A running server: its address, and the tasks that stop when the handle is dropped.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    tasks: Vec<AbortHandle>,
}

impl ServerHandle {
    fn new(addr: SocketAddr, tasks: Vec<AbortHandle>) -> Self {
        ServerHandle { addr, tasks }
    }

    /// The bound address (UDP and TCP share it for DNS).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server: the accept loops and every open connection. Same as dropping the handle.
    pub fn shutdown(self) {}
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Each accept loop owns a JoinSet of its connections, so aborting the loop ends them too.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Forgets finished connection tasks so a long-running accept loop does not accumulate them.
fn reap(connections: &mut JoinSet<()>) {
    while connections.try_join_next().is_some() {}
}
