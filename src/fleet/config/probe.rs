//! `[probe]`: how the prober runs a sweep, and each check kind's own section
//! (`[probe.http]`, `[probe.dns]`, `[probe.tcp]`), with the timeouts every phase is bounded by.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{At, WholeNumber, parse_socket_addr, parse_status_range, show};
use crate::fleet::checks::CheckKind;
use crate::fleet::{FleetError, FleetErrors};

/// How the prober runs a sweep.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Name of this prober (its vantage point), stored with every run.
    pub vantage: String,
    /// Expected time between runs; a longer gap is unmonitored time.
    pub interval: Duration,
    /// Check start times are spread over this window so the fleet is not hit all at once.
    pub spread: Duration,
    /// From the run's start: a check not finished by then is stored as not measured, so that a
    /// sweep always ends inside its interval.
    pub deadline: Duration,
    /// A check waiting this long on a server that has sent nothing back gives back its permits
    /// and waits on, parked.
    pub park_after: Duration,
    /// Parked checks per cluster at most (0: checks never park).
    pub parked_per_cluster: usize,
    /// Checks in flight at once, over the whole fleet.
    pub concurrency: usize,
    /// Checks in flight at once against one cluster.
    pub cluster_concurrency: usize,
    /// Extra attempts for a failed check within the same sweep.
    pub retries: u32,
    pub retry_delay: Duration,
    pub timeouts: Timeouts,
    /// Resolvers for HTTP checks that go through DNS, and for DNS checks of clusters without
    /// nameservers. Empty: the system's (/etc/resolv.conf).
    pub resolvers: Vec<SocketAddr>,
    /// Extra trusted CA certificates (PEM), e.g. a provider's internal CA.
    pub ca_file: Option<PathBuf>,
    pub http: HttpSettings,
    pub dns: DnsSettings,
    pub tcp: TcpSettings,
    /// Consecutive failed runs before a site outage is confirmed (plans may override).
    pub confirm_after: u32,
    /// The local address checks bind their sockets to before connecting (TCP and UDP).
    pub source_address: Option<std::net::IpAddr>,
    /// The part of the fleet this prober sweeps; none: all of it.
    pub shard: Option<Shard>,
}

/// Shard `index` of `count` (`K/N`, 1 ≤ K ≤ N ≤ 1024): the sites whose stable hash of their id
/// modulo `count` is `index - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most shards a fleet may be split into.
pub const MAX_SHARDS: u32 = 1024;

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let expected = || format!("{text:?} is not a shard; expected K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}, e.g. 2/4");
        let (k, n) = text.trim().split_once('/').ok_or_else(expected)?;
        let (index, count): (u32, u32) =
            (k.trim().parse().map_err(|_| expected())?, n.trim().parse().map_err(|_| expected())?);
        if index == 0 || index > count || count > MAX_SHARDS {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ProbeSettings {
    /// The port a kind that takes one ([`CheckKind::takes_port`]) connects to when the site
    /// names none: its section's `port`.
    pub fn default_port(&self, kind: CheckKind) -> Option<u16> {
        match kind {
            CheckKind::Http | CheckKind::Dns => None,
            CheckKind::Tcp => self.tcp.port,
        }
    }
}

/// A timeout for every phase of a check, and one for the whole check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub first_byte: Duration,
    pub body: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns: Duration::from_secs(2),
            connect: Duration::from_secs(3),
            tls: Duration::from_secs(3),
            first_byte: Duration::from_secs(5),
            body: Duration::from_secs(5),
            total: Duration::from_secs(10),
        }
    }
}

/// Where an HTTP check connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Resolve the site's hostname and connect to the answer (what a visitor does).
    Dns,
    /// Connect to the cluster's frontend address with the site's Host header and SNI, so the web
    /// tier is judged apart from DNS.
    Frontend,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub via: Via,
    /// Accepted status ranges, inclusive.
    pub expect_status: Vec<(u16, u16)>,
    /// A text the body must contain (sites may set their own).
    pub keyword: Option<String>,
    /// At most this many body bytes are read (the keyword must appear within them).
    pub max_body_bytes: usize,
    pub max_redirects: u32,
    pub user_agent: String,
    /// Networks and hostnames a redirect may reach besides public addresses, the site's own
    /// host and the fleet's frontends.
    pub redirect_allow: Vec<RedirectAllow>,
}

/// An entry of `probe.http.redirect_allow`: a network (`10.20.0.0/16`, one address) or a hostname.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAllow {
    /// Addresses whose first `prefix` bits are those of `address`.
    Network { address: IpAddr, prefix: u8 },
    /// A hostname (lower case), allowed whatever it resolves to.
    Host(String),
}

impl RedirectAllow {
    /// Parses `10.20.0.0/16`, `2001:db8::/32`, `192.0.2.7` or `intranet.example.net`.
    pub fn parse(text: &str) -> Result<RedirectAllow, String> {
        let text = text.trim();
        let expected = "expected a network (e.g. \"10.20.0.0/16\" or \"fd00::/8\"), an address or a hostname";
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        if let Ok(address) = address.parse::<IpAddr>() {
            let max = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => match p.parse::<u8>() {
                    Ok(p) if p <= max => p,
                    _ => return Err(format!("`{text}`: the prefix length must be 0 to {max}; {expected}")),
                },
            };
            return Ok(RedirectAllow::Network { address, prefix });
        }
        if prefix.is_some() {
            return Err(format!("`{text}` is not a network; {expected}"));
        }
        crate::fleet::inventory::normalize_hostname(text)
            .map(RedirectAllow::Host)
            .map_err(|e| format!("{e}; {expected}"))
    }

    /// Whether `ip` is in this network (never, for a hostname).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let RedirectAllow::Network { address, prefix } = *self else { return false };
        match (address, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Record type a DNS check asks for (named as in DNS).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RecordKind {
    A,
    AAAA,
}

#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub record_type: RecordKind,
    /// Retry over TCP when a UDP answer is truncated.
    pub tcp_fallback: bool,
}

/// `[probe.tcp]`: a TCP check connects to the site's host and port and, when a banner is
/// expected, reads its first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSettings {
    /// Where the check connects: the site's hostname through DNS, or its cluster's frontend.
    pub via: Via,
    /// The port of sites that name none (`tcp` rather than `tcp:PORT` in the inventory).
    pub port: Option<u16>,
    /// Text the banner's first line must start with (`220` for SMTP, `SSH-` for SSH); `None`:
    /// connecting is enough.
    pub banner: Option<String>,
}

/// The longest banner prefix `[probe.tcp] banner` may ask for.
pub const MAX_BANNER_PREFIX: usize = 64;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    vantage: Option<String>,
    interval: Option<Spanned<String>>,
    spread: Option<Spanned<String>>,
    deadline: Option<Spanned<String>>,
    park_after: Option<Spanned<String>>,
    parked_per_cluster: Option<Spanned<WholeNumber>>,
    concurrency: Option<Spanned<WholeNumber>>,
    cluster_concurrency: Option<Spanned<WholeNumber>>,
    retries: Option<Spanned<WholeNumber>>,
    retry_delay: Option<Spanned<String>>,
    #[serde(default)]
    resolvers: Vec<Spanned<String>>,
    ca_file: Option<String>,
    confirm_after: Option<Spanned<WholeNumber>>,
    source_address: Option<Spanned<String>>,
    shard: Option<Spanned<String>>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    tcp: RawTcp,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    dns: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    first_byte: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    total: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    via: Option<Via>,
    expect_status: Option<Vec<Spanned<String>>>,
    keyword: Option<String>,
    max_body_bytes: Option<Spanned<WholeNumber>>,
    max_redirects: Option<Spanned<WholeNumber>>,
    user_agent: Option<String>,
    #[serde(default)]
    redirect_allow: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    record_type: Option<RecordKind>,
    tcp_fallback: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTcp {
    via: Option<Via>,
    port: Option<Spanned<i64>>,
    banner: Option<Spanned<String>>,
}

/// The bounds `check` holds every number of `[probe]` to (README "Configuration").
pub mod bounds {
    use std::time::Duration;

    pub const CONCURRENCY: std::ops::RangeInclusive<usize> = 1..=65_536;
    pub const PARKED: std::ops::RangeInclusive<usize> = 0..=65_536;
    pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
    pub const CONFIRM_AFTER: std::ops::RangeInclusive<u32> = 1..=100;
    pub const MAX_BODY_BYTES: std::ops::RangeInclusive<usize> = 0..=16 * 1024 * 1024;
    pub const MAX_REDIRECTS: std::ops::RangeInclusive<u32> = 0..=20;
    pub const TIMEOUT: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(5 * 60));
    pub const INTERVAL: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));
    pub const SPREAD: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(86_400));
    pub const DEADLINE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(86_400));
    pub const PARK_AFTER: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(5 * 60));
    pub const RETRY_DELAY: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(5 * 60));
}

pub(super) fn probe_settings(raw: RawProbe, at: &At, base_dir: &Path, errors: &mut FleetErrors) -> ProbeSettings {
    let defaults = Timeouts::default();
    let mut timeout = |value: &Option<Spanned<String>>, field: &str, default: Duration| {
        at.duration(value, field, bounds::TIMEOUT, default, errors)
    };
    let timeouts = Timeouts {
        dns: timeout(&raw.timeouts.dns, "probe.timeouts.dns", defaults.dns),
        connect: timeout(&raw.timeouts.connect, "probe.timeouts.connect", defaults.connect),
        tls: timeout(&raw.timeouts.tls, "probe.timeouts.tls", defaults.tls),
        first_byte: timeout(&raw.timeouts.first_byte, "probe.timeouts.first_byte", defaults.first_byte),
        body: timeout(&raw.timeouts.body, "probe.timeouts.body", defaults.body),
        total: timeout(&raw.timeouts.total, "probe.timeouts.total", defaults.total),
    };
    let interval = at.duration(&raw.interval, "probe.interval", bounds::INTERVAL, Duration::from_secs(60), errors);
    let spread = at.duration(&raw.spread, "probe.spread", bounds::SPREAD, Duration::from_secs(20), errors);
    // Unset, the deadline leaves checks planned late in a long spread some time to finish.
    let default = default_deadline(interval).max(spread + interval.saturating_sub(spread) / 2).min(interval);
    let deadline = at.duration(&raw.deadline, "probe.deadline", bounds::DEADLINE, default, errors);
    if raw.deadline.is_some() && deadline >= interval {
        errors.push(FleetError::at(
            at.path,
            at.line(&raw.deadline),
            "probe.deadline",
            format!(
                "deadline ({}) must be shorter than the interval ({}) or a sweep could still run when the next one starts",
                show(deadline),
                show(interval)
            ),
        ));
    } else if raw.deadline.is_some() && deadline <= spread {
        errors.push(FleetError::at(
            at.path,
            at.line(&raw.deadline),
            "probe.deadline",
            format!(
                "deadline ({}) must be longer than the spread ({}) or checks planned after it would never start",
                show(deadline),
                show(spread)
            ),
        ));
    }
    let park_after = at.duration(
        &raw.park_after,
        "probe.park_after",
        bounds::PARK_AFTER,
        Duration::from_millis(DEFAULT_PARK_AFTER_MS),
        errors,
    );
    let parked_per_cluster = at.number(
        &raw.parked_per_cluster,
        "probe.parked_per_cluster",
        bounds::PARKED,
        DEFAULT_PARKED_PER_CLUSTER,
        errors,
    );
    let retry_delay =
        at.duration(&raw.retry_delay, "probe.retry_delay", bounds::RETRY_DELAY, Duration::from_secs(2), errors);
    if spread >= interval {
        errors.push(FleetError::at(
            at.path,
            at.line(&raw.spread).or(at.line(&raw.interval)),
            "probe.spread",
            format!(
                "spread ({}) must be shorter than the interval ({}) or sweeps would overlap",
                show(spread),
                show(interval)
            ),
        ));
    }

    let mut resolvers = Vec::new();
    for r in &raw.resolvers {
        match parse_socket_addr(r.get_ref(), 53) {
            Ok(addr) => resolvers.push(addr),
            Err(m) => errors.push(at.err(r, "probe.resolvers", m)),
        }
    }

    let mut expect_status = Vec::new();
    for s in raw.http.expect_status.as_deref().unwrap_or_default() {
        match parse_status_range(s.get_ref()) {
            Ok(range) => expect_status.push(range),
            Err(m) => errors.push(at.err(s, "probe.http.expect_status", m)),
        }
    }
    if raw.http.expect_status.is_none() {
        expect_status.push((200, 399));
    }

    let mut redirect_allow = Vec::new();
    for (i, entry) in raw.http.redirect_allow.iter().enumerate() {
        match RedirectAllow::parse(entry.get_ref()) {
            Ok(allow) => redirect_allow.push(allow),
            Err(m) => errors.push(at.err(entry, format!("probe.http.redirect_allow[{i}]"), m)),
        }
    }

    let concurrency = at.number(&raw.concurrency, "probe.concurrency", bounds::CONCURRENCY, 256, errors);
    // A per-cluster limit above the global one is the global one.
    let cluster_concurrency = at
        .number(&raw.cluster_concurrency, "probe.cluster_concurrency", bounds::CONCURRENCY, 64, errors)
        .min(concurrency);
    let confirm_after = at.number(&raw.confirm_after, "probe.confirm_after", bounds::CONFIRM_AFTER, 2, errors);
    let retries = at.number(&raw.retries, "probe.retries", bounds::RETRIES, 1, errors);
    let max_body_bytes =
        at.number(&raw.http.max_body_bytes, "probe.http.max_body_bytes", bounds::MAX_BODY_BYTES, 64 * 1024, errors);
    let max_redirects =
        at.number(&raw.http.max_redirects, "probe.http.max_redirects", bounds::MAX_REDIRECTS, 5, errors);
    let source_address = raw.source_address.as_ref().and_then(|v| match v.get_ref().trim().parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            errors.push(at.err(
                v,
                "probe.source_address",
                format!("{:?} is not an IP address; expected one of this machine's, e.g. 192.0.2.10", v.get_ref()),
            ));
            None
        }
    });
    let shard = raw.shard.as_ref().and_then(|v| match v.get_ref().parse::<Shard>() {
        Ok(shard) => Some(shard),
        Err(m) => {
            errors.push(at.err(v, "probe.shard", m));
            None
        }
    });

    ProbeSettings {
        source_address,
        shard,
        vantage: raw.vantage.unwrap_or_else(default_vantage),
        interval,
        spread,
        deadline,
        park_after,
        parked_per_cluster,
        concurrency,
        cluster_concurrency,
        retries,
        retry_delay,
        timeouts,
        resolvers,
        ca_file: raw.ca_file.map(|f| base_dir.join(f)),
        http: HttpSettings {
            via: raw.http.via.unwrap_or(Via::Dns),
            expect_status,
            keyword: raw.http.keyword.filter(|k| !k.is_empty()),
            max_body_bytes,
            max_redirects,
            user_agent: raw.http.user_agent.unwrap_or_else(|| format!("fleetprobe/{}", env!("CARGO_PKG_VERSION"))),
            redirect_allow,
        },
        dns: DnsSettings {
            record_type: raw.dns.record_type.unwrap_or(RecordKind::A),
            tcp_fallback: raw.dns.tcp_fallback.unwrap_or(true),
        },
        tcp: tcp_settings(&raw.tcp, at, errors),
        confirm_after,
    }
}

/// `probe.park_after` unless set: a hundred times a round trip inside one network.
pub const DEFAULT_PARK_AFTER_MS: u64 = 100;
/// `probe.parked_per_cluster` unless set.
pub const DEFAULT_PARKED_PER_CLUSTER: usize = 2048;

/// `probe.deadline` unless set: the interval less a margin for the control round after the
/// sweep and the store's commit, of 10 % and at least 5 s (at most half the interval).
pub fn default_deadline(interval: Duration) -> Duration {
    let margin = (interval / 10).max(Duration::from_secs(5)).min(interval / 2);
    interval - margin
}

/// Checks `[probe.tcp]`: a port from 1 to 65535, a banner prefix of printable text.
fn tcp_settings(raw: &RawTcp, at: &At, errors: &mut FleetErrors) -> TcpSettings {
    let port = raw.port.as_ref().and_then(|p| match u16::try_from(*p.get_ref()) {
        Ok(port) if port > 0 => Some(port),
        _ => {
            errors.push(at.err(p, "probe.tcp.port", format!("{} is not a port; expected 1 to 65535", p.get_ref())));
            None
        }
    });
    let banner = raw.banner.as_ref().and_then(|b| {
        let text = b.get_ref();
        if text.is_empty() || text.len() > MAX_BANNER_PREFIX || text.chars().any(|c| c.is_control()) {
            errors.push(at.err(
                b,
                "probe.tcp.banner",
                format!(
                    "expected the text the banner starts with, 1 to {MAX_BANNER_PREFIX} printable characters, \
                     e.g. \"220\" (SMTP) or \"SSH-\"; leave it out to only connect"
                ),
            ));
            return None;
        }
        Some(text.clone())
    });
    TcpSettings { via: raw.via.unwrap_or(Via::Dns), port, banner }
}

fn default_vantage() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_deadline_leaves_a_margin_of_ten_percent_and_at_least_five_seconds() {
        let s = Duration::from_secs;
        assert_eq!(default_deadline(s(60)), s(54));
        assert_eq!(default_deadline(s(300)), s(270));
        assert_eq!(default_deadline(s(30)), s(25));
        // Short intervals keep at least half of themselves.
        assert_eq!(default_deadline(s(5)), Duration::from_millis(2500));
        assert!(default_deadline(s(1)) > Duration::ZERO);
    }
}
