//! Probing: one check of one site, and the sweep that runs them all.
//!
//! Second stage of the data flow. Each protocol has its own file with the same shape (`http.rs`,
//! `dns.rs`, `tcp.rs`): it builds its target from the fleet and the site, checks it and returns a
//! [`Probed`]. A failing site is data, never an error: every way a check can go wrong is a
//! [`Failure`] class. [`CheckKind`] (in `fleet`, re-exported here) says what the rest of the code
//! needs to know of a kind and [`Probers`] dispatches to each kind's file; `sweep.rs` schedules the checks of a whole fleet
//! under concurrency limits and knows nothing of any one kind.

mod connect;
pub mod dns;
pub mod http;
pub mod redirect;
pub mod silence;
pub mod source;
pub mod stamp;
pub mod sweep;
pub mod tcp;
pub mod tls;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::fleet::checks::{CheckKind, Phase, UnknownCheckKind};
use crate::fleet::{Fleet, SiteIdx};

/// Each kind's prober, built once for a sweep; [`Probers::check`] is the one place that picks a
/// kind's code. Each kind's file builds its own target from the fleet and the site.
#[derive(Clone)]
pub struct Probers {
    pub http: http::HttpProber,
    /// `probe.source_address`: every check's sockets are bound to it.
    pub source: Option<IpAddr>,
}

impl Probers {
    /// The probers for a fleet's probe settings, trusting `tls` for HTTPS.
    pub fn new(fleet: &Fleet, tls: Arc<rustls::ClientConfig>) -> Probers {
        Probers { http: http::HttpProber::new(fleet, tls), source: fleet.probe.source_address }
    }

    /// One attempt of one check of one site. Never fails: a failing site is a [`Failure`].
    pub async fn check(&self, fleet: &Fleet, site: SiteIdx, kind: CheckKind) -> Probed {
        source::scope(self.source, async {
            match kind {
                CheckKind::Http => self.http.check_site(fleet, site).await,
                CheckKind::Dns => dns::check_site(fleet, site).await,
                CheckKind::Tcp => tcp::check_site(fleet, site).await,
            }
        })
        .await
    }
}

/// The frontend of a site's cluster that checks connecting to "the frontend" use: one of
/// several, the same one every run.
pub fn frontend_of(fleet: &Fleet, site: SiteIdx) -> Option<IpAddr> {
    let site = &fleet.sites[site];
    let frontends = &fleet.clusters[site.cluster].frontends;
    if frontends.is_empty() {
        return None;
    }
    frontends.get((fnv1a(&site.id) % frontends.len() as u64) as usize).copied()
}

/// FNV-1a: a fixed hash, so offsets and frontend choices stay the same across builds.
/// Whether `shard` (none: the whole fleet) sweeps the site with this id: the site's stable
/// hash modulo the shard count is the shard's index minus one.
pub fn in_shard(shard: Option<crate::fleet::Shard>, site_id: &str) -> bool {
    shard.is_none_or(|s| fnv1a(site_id) % u64::from(s.count) == u64::from(s.index - 1))
}

pub(crate) fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Why a check failed. Stored as a number ([`Failure::code`]), shown as a class name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// The name does not exist (rcode NXDOMAIN).
    DnsNxdomain,
    /// The server failed (rcode SERVFAIL).
    DnsServfail,
    /// The server refused the query (rcode REFUSED), e.g. it is not authoritative for the zone.
    DnsRefused,
    /// No answer from any nameserver in time.
    DnsTimeout,
    /// An answer with addresses other than the expected ones.
    DnsWrongAnswer,
    /// NOERROR without any address of the asked type.
    DnsNoData,
    /// Any other DNS failure: a malformed reply, another rcode, a socket error.
    DnsError,
    /// The server actively refused the connection (RST).
    ConnectRefused,
    /// No connection in time.
    ConnectTimeout,
    /// Another connect failure (unreachable network or host).
    ConnectError,
    /// The certificate does not verify (unknown issuer, wrong name, bad handshake).
    TlsInvalid,
    /// The certificate has expired (or is not yet valid).
    TlsExpired,
    /// A phase after connect took longer than its timeout.
    Timeout(Phase),
    /// The status is outside the expected ranges.
    HttpStatus,
    /// The body does not contain the expected keyword.
    BodyMismatch,
    /// A redirect leads back to a URL already visited.
    RedirectLoop,
    /// More redirects than allowed.
    TooManyRedirects,
    /// A redirect to where the prober may not go (a private, loopback, link-local or metadata
    /// address, or a scheme other than http and https); nothing was sent there.
    RedirectBlocked,
    /// The server answered with something that is not HTTP, broke off mid-response, or closed
    /// the connection before sending the banner a TCP check waits for.
    ProtocolError,
    /// A TCP check's banner does not start with the expected text.
    BannerMismatch,
    /// The check had not finished when the sweep's deadline (`probe.deadline`) came: no
    /// observation. The site is unmonitored in that run for this check, never up or down.
    NotMeasured,
}

impl Failure {
    /// Every failure class, for listings and tests.
    pub const ALL: [Failure; 25] = [
        Failure::DnsNxdomain,
        Failure::DnsServfail,
        Failure::DnsRefused,
        Failure::DnsTimeout,
        Failure::DnsWrongAnswer,
        Failure::DnsNoData,
        Failure::DnsError,
        Failure::ConnectRefused,
        Failure::ConnectTimeout,
        Failure::ConnectError,
        Failure::TlsInvalid,
        Failure::TlsExpired,
        Failure::Timeout(Phase::Tls),
        Failure::Timeout(Phase::FirstByte),
        Failure::Timeout(Phase::Body),
        Failure::Timeout(Phase::Total),
        Failure::HttpStatus,
        Failure::BodyMismatch,
        Failure::RedirectLoop,
        Failure::TooManyRedirects,
        Failure::ProtocolError,
        Failure::Timeout(Phase::Dns),
        Failure::BannerMismatch,
        Failure::RedirectBlocked,
        Failure::NotMeasured,
    ];

    /// The class name used in reports, CSV and the store's views.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::DnsNxdomain => "dns_nxdomain",
            Failure::DnsServfail => "dns_servfail",
            Failure::DnsRefused => "dns_refused",
            Failure::DnsTimeout => "dns_timeout",
            Failure::DnsWrongAnswer => "dns_wrong_answer",
            Failure::DnsNoData => "dns_nodata",
            Failure::DnsError => "dns_error",
            Failure::ConnectRefused => "connect_refused",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::ConnectError => "connect_error",
            Failure::TlsInvalid => "tls_invalid",
            Failure::TlsExpired => "tls_expired",
            Failure::Timeout(_) => "timeout",
            Failure::HttpStatus => "http_status",
            Failure::BodyMismatch => "body_mismatch",
            Failure::RedirectLoop => "redirect_loop",
            Failure::TooManyRedirects => "too_many_redirects",
            Failure::ProtocolError => "protocol_error",
            Failure::BannerMismatch => "banner_mismatch",
            Failure::RedirectBlocked => "redirect_blocked",
            Failure::NotMeasured => "not_measured",
        }
    }

    /// The phase a timeout happened in, for display ("timeout (first_byte)").
    pub fn phase(self) -> Option<Phase> {
        match self {
            Failure::Timeout(phase) => Some(phase),
            _ => None,
        }
    }

    /// Stable number used in the store; 0 means ok.
    pub fn code(self) -> u8 {
        match self {
            Failure::DnsNxdomain => 1,
            Failure::DnsServfail => 2,
            Failure::DnsRefused => 3,
            Failure::DnsTimeout => 4,
            Failure::DnsWrongAnswer => 5,
            Failure::DnsNoData => 6,
            Failure::DnsError => 7,
            Failure::ConnectRefused => 10,
            Failure::ConnectTimeout => 11,
            Failure::ConnectError => 12,
            Failure::TlsInvalid => 20,
            Failure::TlsExpired => 21,
            Failure::Timeout(phase) => 30 + phase.code(),
            Failure::HttpStatus => 40,
            Failure::BodyMismatch => 41,
            Failure::RedirectLoop => 42,
            Failure::TooManyRedirects => 43,
            Failure::ProtocolError => 44,
            Failure::BannerMismatch => 45,
            Failure::RedirectBlocked => 46,
            Failure::NotMeasured => 50,
        }
    }

    /// Whether this is an observation of the site: every class but [`Failure::NotMeasured`].
    pub fn is_observation(self) -> bool {
        self != Failure::NotMeasured
    }

    pub fn from_code(code: u8) -> Option<Failure> {
        Failure::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Parses a class name as printed by [`fmt::Display`] (`timeout` alone means the total).
    pub fn parse(text: &str) -> Option<Failure> {
        if let Some(phase) = text.strip_prefix("timeout(").and_then(|p| p.strip_suffix(')')) {
            return Phase::parse(phase).map(Failure::Timeout);
        }
        if text == "timeout" {
            return Some(Failure::Timeout(Phase::Total));
        }
        Failure::ALL.into_iter().find(|f| f.phase().is_none() && f.as_str() == text)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.phase() {
            Some(phase) => write!(f, "timeout({})", phase.as_str()),
            None => f.write_str(self.as_str()),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Failed(Failure),
}

impl Outcome {
    pub fn is_ok(self) -> bool {
        matches!(self, Outcome::Ok)
    }

    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed(f) => f.code(),
        }
    }

    pub fn from_code(code: u8) -> Option<Outcome> {
        if code == 0 { Some(Outcome::Ok) } else { Failure::from_code(code).map(Outcome::Failed) }
    }

    pub fn failure(self) -> Option<Failure> {
        match self {
            Outcome::Ok => None,
            Outcome::Failed(f) => Some(f),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Failed(failure) => failure.fmt(f),
        }
    }
}

/// Time spent in each phase, in microseconds. A phase that did not happen is `None`
/// (no DNS phase when connecting to a frontend address; no TLS phase over plain HTTP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub dns_us: Option<u32>,
    pub connect_us: Option<u32>,
    pub tls_us: Option<u32>,
    pub first_byte_us: Option<u32>,
    pub total_us: u32,
}

impl Timings {
    pub fn get(&self, phase: Phase) -> Option<u32> {
        match phase {
            Phase::Dns => self.dns_us,
            Phase::Connect => self.connect_us,
            Phase::Tls => self.tls_us,
            Phase::FirstByte => self.first_byte_us,
            Phase::Body => None,
            Phase::Total => Some(self.total_us),
        }
    }
}

/// Microseconds of a duration, saturating (a check never lasts 71 minutes).
pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// The result of one check of one site in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub site: SiteIdx,
    pub check: CheckKind,
    pub outcome: Outcome,
    /// When the (last) attempt started, Unix milliseconds (simulated when the clock is overridden).
    pub started_at_ms: i64,
    /// Attempts made: 1, or more when a failed check was retried within the sweep.
    pub attempts: u8,
    pub http_status: Option<u16>,
    pub timings: Timings,
    /// Expiry of the server's certificate, Unix seconds (HTTPS only).
    pub cert_not_after: Option<i64>,
    /// Who issued the server's certificate ("R11 (Let's Encrypt)"; HTTPS only).
    pub cert_issuer: Option<String>,
    /// A short explanation for people ("status 503", "answered 192.0.2.9, expected 192.0.2.1").
    pub detail: Option<String>,
}

/// What a protocol prober returns before the sweep adds site, kind and time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probed {
    pub failure: Option<Failure>,
    pub http_status: Option<u16>,
    pub timings: Timings,
    pub cert_not_after: Option<i64>,
    pub cert_issuer: Option<String>,
    pub detail: Option<String>,
}

impl Probed {
    pub fn failed(failure: Failure, detail: impl Into<String>) -> Self {
        Probed { failure: Some(failure), detail: Some(detail.into()), ..Default::default() }
    }

    pub fn outcome(&self) -> Outcome {
        self.failure.map_or(Outcome::Ok, Outcome::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_fleet_once() {
        use crate::fleet::Shard;
        let ids: Vec<String> = (0..1000).map(|i| format!("site-{i}")).collect();
        let shards: Vec<Shard> = (1..=4).map(|k| format!("{k}/4").parse().unwrap()).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|&&s| in_shard(Some(s), id)).count(), 1, "{id}");
            assert!(in_shard(None, id));
        }
        let first = ids.iter().filter(|id| in_shard(Some(shards[0]), id)).count();
        assert!((150..350).contains(&first), "{first} of 1000 in shard 1/4");
        for bad in ["0/4", "5/4", "1/1025", "1", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("3/8".parse::<Shard>(), Ok(Shard { index: 3, count: 8 }));
    }

    #[test]
    fn failure_codes_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for f in Failure::ALL {
            assert!(codes.insert(f.code()), "duplicate code for {f}");
            assert_eq!(Failure::from_code(f.code()), Some(f));
            assert_eq!(Failure::parse(&f.to_string()), Some(f), "{f}");
        }
        assert_eq!(Outcome::from_code(0), Some(Outcome::Ok));
        // Stored codes never change meaning.
        assert_eq!(Failure::NotMeasured.code(), 50);
        assert_eq!(Failure::parse("not_measured"), Some(Failure::NotMeasured));
        assert!(!Failure::NotMeasured.is_observation() && Failure::DnsTimeout.is_observation());
        assert_eq!(Outcome::from_code(255), None);
    }

    #[test]
    fn check_kinds_round_trip_and_time_their_headline_phase() {
        let mut codes = std::collections::HashSet::new();
        for kind in CheckKind::ALL {
            assert!(codes.insert(kind.code()), "duplicate code for {kind}");
            assert_eq!(CheckKind::from_code(kind.code()), Some(kind));
            assert_eq!(kind.as_str().parse::<CheckKind>(), Ok(kind));
            assert!(kind.phases().contains(&kind.headline_phase()), "{kind}");
            assert_eq!(kind.phases().last(), Some(&Phase::Total), "{kind}");
        }
        let unknown = "icmp".parse::<CheckKind>().unwrap_err().to_string();
        assert_eq!(unknown, format!("unknown check `icmp`; expected one of: {}", CheckKind::names()));
    }
}
