//! DNS checks (placeholder until the prober lands).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{Failure, Probed};
use crate::fleet::DnsSettings;

pub struct DnsFailure {
    pub failure: Failure,
    pub detail: String,
    pub elapsed: Duration,
}

pub async fn resolve(
    _hostname: &str,
    _servers: &[SocketAddr],
    _timeout: Duration,
) -> Result<(Vec<IpAddr>, Duration), DnsFailure> {
    Err(DnsFailure { failure: Failure::DnsError, detail: "not implemented".into(), elapsed: Duration::ZERO })
}

pub async fn check(
    _hostname: &str,
    _expected: &[IpAddr],
    _settings: &DnsSettings,
    _servers: &[SocketAddr],
    _timeout: Duration,
) -> Probed {
    Probed::failed(Failure::DnsError, "not implemented")
}
