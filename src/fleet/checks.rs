//! The kinds of check and the phases they time: the vocabulary the inventory (`checks` column),
//! the prober, the store and the reports share. It lives on the lowest floor so that the fleet
//! can name a site's checks without reaching up into `probe`, which re-exports it.

use std::fmt;

/// The kinds of check fleetprobe runs against a site.
///
/// Everything the rest of the code asks of a kind is here: its name, its stable number in the
/// store, the phases it times and the one charts show first. Adding a kind is a variant, its
/// answers below, its own file in `probe/` and one arm in `probe::Probers::check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckKind {
    Http,
    Dns,
    Tcp,
}

impl CheckKind {
    pub const ALL: [CheckKind; 3] = [CheckKind::Http, CheckKind::Dns, CheckKind::Tcp];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Http => "http",
            CheckKind::Dns => "dns",
            CheckKind::Tcp => "tcp",
        }
    }

    /// Stable number used in the store.
    pub fn code(self) -> u8 {
        match self {
            CheckKind::Http => 0,
            CheckKind::Dns => 1,
            CheckKind::Tcp => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn parse(text: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The phases this kind times, in the order they happen.
    pub fn phases(self) -> &'static [Phase] {
        match self {
            CheckKind::Http => &[Phase::Dns, Phase::Connect, Phase::Tls, Phase::FirstByte, Phase::Total],
            CheckKind::Dns => &[Phase::Dns, Phase::Total],
            CheckKind::Tcp => &[Phase::Dns, Phase::Connect, Phase::FirstByte, Phase::Total],
        }
    }

    /// The phase a latency chart shows when none is asked for: the one that says most about
    /// the service behind the check.
    pub fn headline_phase(self) -> Phase {
        match self {
            CheckKind::Http => Phase::FirstByte,
            CheckKind::Dns => Phase::Dns,
            // Every TCP check connects; only those that wait for a banner have a first byte.
            CheckKind::Tcp => Phase::Connect,
        }
    }

    /// Whether a site may name the port this kind connects to (`kind:PORT` in the inventory).
    /// HTTP takes its port from the site's URL, DNS from the cluster's nameservers.
    pub fn takes_port(self) -> bool {
        match self {
            CheckKind::Http | CheckKind::Dns => false,
            CheckKind::Tcp => true,
        }
    }

    /// The kinds' names, for messages that list what is accepted ("http, dns").
    pub fn names() -> String {
        CheckKind::ALL.map(CheckKind::as_str).join(", ")
    }
}

/// A check kind's name that is none of [`CheckKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown check `{name}`; expected one of: {known}", known = CheckKind::names())]
pub struct UnknownCheckKind {
    pub name: String,
}

impl std::str::FromStr for CheckKind {
    type Err = UnknownCheckKind;

    fn from_str(text: &str) -> Result<CheckKind, UnknownCheckKind> {
        CheckKind::parse(&text.to_ascii_lowercase()).ok_or_else(|| UnknownCheckKind { name: text.to_string() })
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
