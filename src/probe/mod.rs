//! Probing: one check of one site, and the sweep that runs them all.
//!
//! Second stage of the data flow. Each protocol has its own file with the same shape (`http.rs`,
//! `dns.rs`): it takes a target and the probe settings and returns a [`CheckResult`]. A failing
//! site is data, never an error: every way a check can go wrong is a [`Failure`] class.
//! `sweep.rs` schedules the checks of a whole fleet under concurrency limits.

pub mod dns;
pub mod http;
pub mod stamp;
pub mod sweep;
pub mod tls;

use std::fmt;
use std::time::Duration;

use crate::fleet::SiteIdx;

/// The kinds of check fleetprobe runs against a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckKind {
    Http,
    Dns,
}

impl CheckKind {
    pub const ALL: [CheckKind; 2] = [CheckKind::Http, CheckKind::Dns];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Dns => "dns",
        }
    }

    /// Stable number used in the store.
    pub fn code(self) -> u8 {
        match self {
            CheckKind::Http => 0,
            CheckKind::Dns => 1,
        }
    }

    pub fn from_code(code: u8) -> Option<CheckKind> {
        match code {
            0 => Some(CheckKind::Http),
            1 => Some(CheckKind::Dns),
            _ => None,
        }
    }

    pub fn parse(text: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phases of a check, each timed and each with its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Dns,
    Connect,
    Tls,
    FirstByte,
    Body,
    Total,
}

impl Phase {
    pub const ALL: [Phase; 6] = [Phase::Dns, Phase::Connect, Phase::Tls, Phase::FirstByte, Phase::Body, Phase::Total];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::FirstByte => "first_byte",
            Phase::Body => "body",
            Phase::Total => "total",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Phase> {
        Phase::ALL.get(code as usize).copied()
    }

    pub fn parse(text: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == text)
    }
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
    /// The server answered with something that is not HTTP, or broke off mid-response.
    ProtocolError,
}

impl Failure {
    /// Every failure class, for listings and tests.
    pub const ALL: [Failure; 22] = [
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
        }
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
    fn failure_codes_round_trip_and_are_unique() {
        let mut codes = std::collections::HashSet::new();
        for f in Failure::ALL {
            assert!(codes.insert(f.code()), "duplicate code for {f}");
            assert_eq!(Failure::from_code(f.code()), Some(f));
            assert_eq!(Failure::parse(&f.to_string()), Some(f), "{f}");
        }
        assert_eq!(Outcome::from_code(0), Some(Outcome::Ok));
        assert_eq!(Outcome::from_code(255), None);
    }
}
