//! The probers and the loopback servers they are tested against: HTTP, DNS and TCP checks per failure
//! class, what the servers put on the wire, the sweep's concurrency limits and spread, and the
//! kernel timestamps behind the phase timings. One test binary, so it links once.

#[path = "../fixtures/mod.rs"]
mod fixtures;

mod dns_probe;
mod http_probe;
mod http_server;
mod redirects;
mod sweep_limits;
mod tcp_probe;
mod timestamps;
