//! `[probe]`: how the prober runs a sweep, and each check kind's own section
//! (`[probe.http]`, `[probe.dns]`, `[probe.tcp]`), with the timeouts every phase is bounded by.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{At, parse_socket_addr, parse_status_range};
use crate::fleet::checks::CheckKind;
use crate::fleet::{FleetError, FleetErrors, parse_duration};

/// How the prober runs a sweep.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Name of this prober (its vantage point), stored with every run.
    pub vantage: String,
    /// Expected time between runs; a longer gap is unmonitored time.
    pub interval: Duration,
    /// Check start times are spread over this window so the fleet is not hit all at once.
    pub spread: Duration,
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
    concurrency: Option<usize>,
    cluster_concurrency: Option<usize>,
    retries: Option<u32>,
    retry_delay: Option<Spanned<String>>,
    #[serde(default)]
    resolvers: Vec<Spanned<String>>,
    ca_file: Option<String>,
    confirm_after: Option<u32>,
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
    max_body_bytes: Option<usize>,
    max_redirects: Option<u32>,
    user_agent: Option<String>,
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

pub(super) fn probe_settings(raw: RawProbe, at: &At, base_dir: &Path, errors: &mut FleetErrors) -> ProbeSettings {
    let mut duration = |value: &Option<Spanned<String>>, field: &str, default: Duration| -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) if d.is_zero() && field.starts_with("probe.timeouts") => {
                    errors.push(at.err(
                        v,
                        field,
                        "a timeout of zero would fail every check; expected a positive duration",
                    ));
                    default
                }
                Ok(d) => d,
                Err(m) => {
                    errors.push(at.err(v, field, m));
                    default
                }
            },
        }
    };
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        dns: duration(&raw.timeouts.dns, "probe.timeouts.dns", defaults.dns),
        connect: duration(&raw.timeouts.connect, "probe.timeouts.connect", defaults.connect),
        tls: duration(&raw.timeouts.tls, "probe.timeouts.tls", defaults.tls),
        first_byte: duration(&raw.timeouts.first_byte, "probe.timeouts.first_byte", defaults.first_byte),
        body: duration(&raw.timeouts.body, "probe.timeouts.body", defaults.body),
        total: duration(&raw.timeouts.total, "probe.timeouts.total", defaults.total),
    };
    let interval = duration(&raw.interval, "probe.interval", Duration::from_secs(60));
    let spread = duration(&raw.spread, "probe.spread", Duration::from_secs(20));
    let retry_delay = duration(&raw.retry_delay, "probe.retry_delay", Duration::from_secs(2));
    if spread >= interval {
        errors.push(FleetError::at(
            at.path,
            None,
            "probe.spread",
            format!("spread ({spread:?}) must be shorter than the interval ({interval:?}) or sweeps would overlap"),
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

    let concurrency = raw.concurrency.unwrap_or(256);
    let cluster_concurrency = raw.cluster_concurrency.unwrap_or(64);
    if concurrency == 0 || cluster_concurrency == 0 {
        errors.push(FleetError::at(at.path, None, "probe.concurrency", "concurrency limits must be at least 1"));
    }
    let confirm_after = raw.confirm_after.unwrap_or(2);
    if confirm_after == 0 {
        errors.push(FleetError::at(at.path, None, "probe.confirm_after", "must be at least 1"));
    }

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
        concurrency: concurrency.max(1),
        cluster_concurrency: cluster_concurrency.max(1),
        retries: raw.retries.unwrap_or(1),
        retry_delay,
        timeouts,
        resolvers,
        ca_file: raw.ca_file.map(|f| base_dir.join(f)),
        http: HttpSettings {
            via: raw.http.via.unwrap_or(Via::Dns),
            expect_status,
            keyword: raw.http.keyword.filter(|k| !k.is_empty()),
            max_body_bytes: raw.http.max_body_bytes.unwrap_or(64 * 1024),
            max_redirects: raw.http.max_redirects.unwrap_or(5),
            user_agent: raw.http.user_agent.unwrap_or_else(|| format!("fleetprobe/{}", env!("CARGO_PKG_VERSION"))),
        },
        dns: DnsSettings {
            record_type: raw.dns.record_type.unwrap_or(RecordKind::A),
            tcp_fallback: raw.dns.tcp_fallback.unwrap_or(true),
        },
        tcp: tcp_settings(&raw.tcp, at, errors),
        confirm_after: confirm_after.max(1),
    }
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
