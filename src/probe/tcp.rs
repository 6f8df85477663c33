//! TCP checks: connect to a site's host and port and, when a banner is expected, read its first
//! line and match its start (`220` for SMTP, `SSH-` for SSH).
//!
//! Part of the probe stage, the same shape as `http.rs` and `dns.rs`. The host is the site's
//! hostname resolved through the probe's resolvers, or the cluster's frontend
//! (`[probe.tcp] via`); the DNS and connect phases are the HTTP check's own (`connect`). The
//! first byte phase runs from the established connection to the kernel's arrival stamp of the
//! banner's first byte (see `stamp`). At most [`MAX_BANNER_BYTES`] are read, and only up to the
//! end of the first line.

use std::net::{IpAddr, SocketAddr};
use std::task::Poll;

use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::connect::{self, phase_limit};
use super::{CheckKind, Failure, Phase, Probed, Timings, micros, stamp};
use crate::fleet::{Fleet, SiteIdx, Timeouts, Via};

/// Bytes of a banner read at most.
pub const MAX_BANNER_BYTES: usize = 512;
/// Characters of an unexpected banner shown in a result's detail.
const SHOWN_BANNER_CHARS: usize = 80;

/// Where to connect and what to expect.
#[derive(Debug, Clone, Copy)]
pub struct TcpTarget<'a> {
    /// A DNS name, or an address literal.
    pub host: &'a str,
    pub port: u16,
    /// Connect to this address instead of resolving the host (the cluster's frontend).
    pub connect_to: Option<IpAddr>,
    /// Text the banner's first line must start with; `None`: connecting is enough.
    pub banner: Option<&'a str>,
}

/// The TCP check of a site: its hostname (or its cluster's frontend) on the site's port, else
/// `[probe.tcp] port`.
pub async fn check_site(fleet: &Fleet, site_idx: SiteIdx) -> Probed {
    let site = &fleet.sites[site_idx];
    let settings = &fleet.probe.tcp;
    // Loading the fleet checked that every TCP check has a port; this is only a guard.
    let Some(port) = site.checks.port(CheckKind::Tcp).or(settings.port) else {
        return Probed::failed(Failure::ConnectError, "no port to connect to");
    };
    let connect_to = match settings.via {
        Via::Dns => None,
        Via::Frontend => super::frontend_of(fleet, site_idx),
    };
    let target = TcpTarget { host: &site.hostname, port, connect_to, banner: settings.banner.as_deref() };
    check(&target, &fleet.probe.timeouts, &fleet.probe.resolvers).await
}

/// Runs one TCP check. Never fails: every problem is a [`Failure`] in the result.
pub async fn check(target: &TcpTarget<'_>, timeouts: &Timeouts, resolvers: &[SocketAddr]) -> Probed {
    let start = Instant::now();
    let deadline = start + timeouts.total;
    let mut timings = Timings::default();
    let mut probed = exchange(target, timeouts, resolvers, deadline, &mut timings).await;
    timings.total_us = micros(start.elapsed());
    probed.timings = timings;
    probed
}

async fn exchange(
    target: &TcpTarget<'_>,
    timeouts: &Timeouts,
    resolvers: &[SocketAddr],
    deadline: Instant,
    timings: &mut Timings,
) -> Probed {
    let (mut tcp, address) = match connect::open(
        target.host,
        target.port,
        target.connect_to,
        resolvers,
        timeouts,
        deadline,
        timings,
    )
    .await
    {
        Ok(opened) => opened,
        Err(failed) => return failed,
    };
    let Some(prefix) = target.banner else { return Probed::default() };
    let connected = Instant::now();

    let (limit, total_bound) = phase_limit(timeouts.first_byte, deadline);
    match read_banner(&mut tcp, connected + limit).await {
        Banner::Line { line, first_byte_at } => {
            timings.first_byte_us = Some(micros(first_byte_at.saturating_duration_since(connected)));
            if line.starts_with(prefix.as_bytes()) {
                Probed::default()
            } else {
                Probed::failed(
                    Failure::BannerMismatch,
                    format!("banner \"{}\" does not start with \"{prefix}\"", shown(&line)),
                )
            }
        }
        Banner::Silent => {
            timings.first_byte_us = Some(micros(connected.elapsed()));
            let phase = if total_bound { Phase::Total } else { Phase::FirstByte };
            Probed::failed(Failure::Timeout(phase), format!("no banner from {address} within {limit:?}"))
        }
        Banner::Closed => {
            Probed::failed(Failure::ProtocolError, format!("{address} closed the connection before a banner"))
        }
        Banner::Broken(e) => Probed::failed(Failure::ProtocolError, format!("reading the banner from {address}: {e}")),
    }
}

/// How waiting for a banner ended.
enum Banner {
    /// The first line (without its line end), or what came before the connection went quiet,
    /// closed or filled [`MAX_BANNER_BYTES`]; with the arrival of its first byte.
    Line { line: Vec<u8>, first_byte_at: Instant },
    /// Nothing came before the deadline.
    Silent,
    /// The server closed the connection without sending anything.
    Closed,
    /// The connection failed before anything came.
    Broken(std::io::Error),
}

/// Reads until the end of the first line, [`MAX_BANNER_BYTES`], the end of the stream, or
/// `deadline`, whichever comes first.
async fn read_banner(tcp: &mut TcpStream, deadline: Instant) -> Banner {
    let kernel = stamp::enable_rx_timestamps(tcp);
    let mut buf = [0u8; MAX_BANNER_BYTES];
    let mut len = 0;
    let mut first_byte_at = None;
    loop {
        let read = tokio::time::timeout_at(
            deadline,
            std::future::poll_fn(|cx| {
                let mut unfilled = ReadBuf::new(&mut buf[len..]);
                match stamp::poll_read_stamped(tcp, kernel, usize::MAX, cx, &mut unfilled) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(read) => Poll::Ready(read.map(|arrived| (unfilled.filled().len(), arrived))),
                }
            }),
        )
        .await;
        match (read, first_byte_at) {
            (Ok(Ok((n, Some((at, _))))), _) if n > 0 => {
                first_byte_at.get_or_insert(at);
                len += n;
                if buf[..len].contains(&b'\n') || len == buf.len() {
                    break;
                }
            }
            (Err(_), None) => return Banner::Silent,
            (Ok(Ok(_)), None) => return Banner::Closed,
            (Ok(Err(e)), None) => return Banner::Broken(e),
            // Part of a line, then quiet, closed or broken: judge what came.
            (_, Some(_)) => break,
        }
    }
    let line = buf[..len].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
    Banner::Line { line, first_byte_at: first_byte_at.unwrap_or_else(Instant::now) }
}

/// A banner as shown to people: valid UTF-8 or replacement characters, control characters
/// escaped, at most [`SHOWN_BANNER_CHARS`] characters.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut shown = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == SHOWN_BANNER_CHARS {
            shown.push('…');
            break;
        }
        if c.is_control() || c == '"' || c == '\\' {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_are_shown_escaped_and_bounded() {
        assert_eq!(shown(b"220 mail.example.test ESMTP"), "220 mail.example.test ESMTP");
        assert_eq!(shown(b"\x1b[31mhi\"\\"), "\\u{1b}[31mhi\\\"\\\\");
        assert_eq!(shown(b"ab\xffc"), "ab\u{fffd}c");
        let long = shown(&[b'x'; 300]);
        assert_eq!(long.chars().count(), SHOWN_BANNER_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
