//! HTTP(S) checks over our own TCP and TLS streams, each phase timed on its own.
//!
//! A check resolves the site's name (or goes straight to the cluster's frontend address with the
//! site's Host header and SNI) and connects (both in `connect`), shakes hands, sends one GET with hyper's low-level
//! connection API and reads a bounded body. Each phase has its own timeout, all bounded by the
//! check's total timeout. Phases are timed at the network events themselves (see `stamp`): the
//! connect phase is the kernel's measure of the TCP handshake, the first byte runs from the
//! request's send call to the kernel's arrival stamp of the first response byte, and the DNS
//! phase from the query's send to the answer's arrival; each falls back to user-space stamps
//! where the kernel gives none. Redirects are followed up to a limit, with loop detection; phase
//! timings add up over the hops.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::connect::{self, add, phase_limit};
use super::redirect::RedirectPolicy;
use super::stamp::{Exchange, StampedTcp};
use super::{Failure, Phase, Probed, Timings, micros, tls};
use crate::fleet::{Fleet, HttpSettings, InvalidValue, ProbeSettings, SiteIdx, SiteUrl, Timeouts, Via};

/// Everything an HTTP check needs that is the same for the whole sweep.
#[derive(Clone)]
pub struct HttpProber {
    pub settings: Arc<HttpSettings>,
    pub timeouts: Timeouts,
    /// Resolvers for checks that go through DNS (empty: the system's).
    pub resolvers: Vec<SocketAddr>,
    pub tls: Arc<ClientConfig>,
    /// The fleet's cluster frontend addresses, which redirects may reach (see `redirect`).
    pub fleet_frontends: Arc<[IpAddr]>,
}

/// What to fetch and how to reach it.
#[derive(Debug, Clone, Copy)]
pub struct HttpTarget<'a> {
    pub url: &'a SiteUrl,
    /// Connect to this address instead of resolving the URL's host (the cluster's frontend).
    pub connect_to: Option<IpAddr>,
    /// A text the body must contain.
    pub keyword: Option<&'a str>,
}

/// How one request/response exchange ended.
enum Hop {
    Done(Probed),
    /// A redirect from the server at `address`.
    Redirect {
        location: String,
        status: u16,
        address: IpAddr,
    },
}

impl HttpProber {
    /// The HTTP prober of a fleet's probe settings, trusting `tls` for HTTPS.
    pub fn new(fleet: &Fleet, tls: Arc<ClientConfig>) -> HttpProber {
        let probe: &ProbeSettings = &fleet.probe;
        HttpProber {
            settings: Arc::new(probe.http.clone()),
            timeouts: probe.timeouts,
            resolvers: probe.resolvers.clone(),
            tls,
            fleet_frontends: fleet.clusters.iter().flat_map(|c| c.frontends.iter().copied()).collect(),
        }
    }

    /// The HTTP check of a site: its URL, through DNS or straight to its cluster's frontend
    /// (`probe.http.via`), with the site's keyword.
    pub async fn check_site(&self, fleet: &Fleet, site_idx: SiteIdx) -> Probed {
        let site = &fleet.sites[site_idx];
        let connect_to = match self.settings.via {
            Via::Dns => None,
            Via::Frontend => super::frontend_of(fleet, site_idx),
        };
        self.check(&HttpTarget { url: &site.url, connect_to, keyword: site.keyword.as_deref() }).await
    }

    /// Runs one HTTP check. Never fails: every problem is a [`Failure`] in the result.
    pub async fn check(&self, target: &HttpTarget<'_>) -> Probed {
        let start = Instant::now();
        let deadline = start + self.timeouts.total;
        let mut timings = Timings::default();
        let mut url = target.url.clone();
        let mut connect_to = target.connect_to;
        let mut visited = vec![url.to_string()];
        let policy = RedirectPolicy { allow: &self.settings.redirect_allow, frontends: &self.fleet_frontends };
        // Where the site's own host was checked: a redirect may come back there under another name.
        let mut site_addresses = Vec::new();
        let mut probed = loop {
            match self.exchange(&url, connect_to, target.keyword, deadline, &mut timings).await {
                Hop::Done(probed) => break probed,
                Hop::Redirect { location, status, address } => {
                    if url.host == target.url.host {
                        site_addresses.push(address);
                    }
                    let failed = |failure, detail: String| Probed {
                        http_status: Some(status),
                        ..Probed::failed(failure, detail)
                    };
                    let next = match join_location(&url, &location) {
                        Ok(next) => next,
                        Err(InvalidValue::UrlScheme(scheme)) => {
                            break failed(
                                Failure::RedirectBlocked,
                                format!(
                                    "redirect to {} blocked: scheme `{}` is not http or https",
                                    shorten(location.trim()),
                                    shorten(&scheme)
                                ),
                            );
                        }
                        Err(e) => break failed(Failure::ProtocolError, format!("bad redirect: {e}")),
                    };
                    let next_text = next.to_string();
                    if visited.contains(&next_text) {
                        break failed(Failure::RedirectLoop, format!("redirect loop back to {}", shorten(&next_text)));
                    }
                    if visited.len() > self.settings.max_redirects as usize {
                        break failed(
                            Failure::TooManyRedirects,
                            format!("more than {} redirects", self.settings.max_redirects),
                        );
                    }
                    connect_to = if next.host == target.url.host {
                        // The site's own host, checked there already: reached as the site is.
                        target.connect_to
                    } else if policy.allows_host(&next.host) {
                        None
                    } else {
                        // Resolved once; the address judged is the address connected to.
                        let ip =
                            match connect::resolve(&next.host, &self.resolvers, &self.timeouts, deadline, &mut timings)
                                .await
                            {
                                Ok(ip) => ip,
                                Err(failed) => break failed,
                            };
                        if let Err(why) = policy.judge(ip, &site_addresses) {
                            break failed(
                                Failure::RedirectBlocked,
                                format!("redirect to {} blocked: {why}", shorten(&next_text)),
                            );
                        }
                        Some(ip)
                    };
                    visited.push(next_text);
                    url = next;
                }
            }
        };
        timings.total_us = micros(start.elapsed());
        probed.timings = timings;
        probed
    }

    /// One request and response: DNS, connect, TLS, first byte, body.
    async fn exchange(
        &self,
        url: &SiteUrl,
        connect_to: Option<IpAddr>,
        keyword: Option<&str>,
        deadline: Instant,
        timings: &mut Timings,
    ) -> Hop {
        // DNS and TCP connect
        let (tcp, address) =
            match connect::open(&url.host, url.port, connect_to, &self.resolvers, &self.timeouts, deadline, timings)
                .await
            {
                Ok(opened) => opened,
                Err(failed) => return Hop::Done(failed),
            };
        let _ = tcp.set_nodelay(true);
        let mut tcp = StampedTcp::new(tcp);
        let exchange = tcp.exchange();
        if !url.tls {
            tcp.short_first_read();
        }

        // TLS handshake
        let (mut cert_not_after, mut cert_issuer) = (None, None);
        let stream = if url.tls {
            let server_name = match ServerName::try_from(url.host.clone()) {
                Ok(name) => name,
                Err(_) => return done(Failure::TlsInvalid, format!("`{}` cannot be a TLS server name", url.host)),
            };
            let (limit, total_bound) = phase_limit(self.timeouts.tls, deadline);
            let started = Instant::now();
            let handshake =
                tokio::time::timeout(limit, TlsConnector::from(self.tls.clone()).connect(server_name, tcp)).await;
            add(&mut timings.tls_us, started.elapsed());
            match handshake {
                Err(_) => {
                    let phase = if total_bound { Phase::Total } else { Phase::Tls };
                    return done(Failure::Timeout(phase), format!("TLS handshake with {address} took over {limit:?}"));
                }
                Ok(Err(e)) => {
                    let (failure, detail) = tls::classify_handshake_error(&e);
                    return done(failure, detail);
                }
                Ok(Ok(tls_stream)) => {
                    let leaf = tls_stream.get_ref().1.peer_certificates().and_then(|chain| chain.first());
                    cert_not_after = leaf.and_then(|leaf| tls::cert_not_after(leaf));
                    cert_issuer = leaf.and_then(|leaf| tls::cert_issuer(leaf));
                    MaybeTls::Tls(Box::new(tls_stream))
                }
            }
        } else {
            MaybeTls::Plain(tcp)
        };

        // Request, up to the first response byte: from the request's send call to the arrival of
        // the segment that brought the first response byte (see `stamp`).
        exchange.arm();
        let io = TokioIo::new(StampedStream { inner: stream, exchange: exchange.clone(), seen: false });
        let (mut sender, connection) = match hyper::client::conn::http1::handshake(io).await {
            Ok(pair) => pair,
            Err(e) => return done(Failure::ProtocolError, format!("HTTP setup: {e}")),
        };
        // The connection is driven in this task, while the request and the body are awaited: no
        // task of its own, so no wake-ups across tasks (and threads) for every check.
        let connection = std::pin::pin!(connection);
        let mut connection = Driven { connection, done: false };
        let request = match hyper::Request::get(url.path_and_query.as_str())
            .header(hyper::header::HOST, url.authority())
            .header(hyper::header::USER_AGENT, self.settings.user_agent.as_str())
            .header(hyper::header::ACCEPT, "*/*")
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
        {
            Ok(request) => request,
            Err(e) => return done(Failure::ProtocolError, format!("cannot build request: {e}")),
        };
        let (limit, total_bound) = phase_limit(self.timeouts.first_byte, deadline);
        let sending = Instant::now();
        let response = tokio::time::timeout(limit, connection.run(sender.send_request(request))).await;
        let first_byte = exchange.first_byte().map(|(waited, _)| waited);
        let response = match response {
            Err(_) => {
                add(&mut timings.first_byte_us, exchange.sent().unwrap_or(sending).elapsed());
                let phase = if total_bound { Phase::Total } else { Phase::FirstByte };
                return done(Failure::Timeout(phase), format!("no response within {limit:?}"));
            }
            Ok(Err(e)) => {
                return done(Failure::ProtocolError, format!("not a valid HTTP response: {}", error_chain(&e)));
            }
            Ok(Ok(response)) => response,
        };
        add(&mut timings.first_byte_us, first_byte.unwrap_or_else(|| sending.elapsed()));
        let status = response.status().as_u16();

        if response.status().is_redirection()
            && self.settings.max_redirects > 0
            && let Some(location) = response.headers().get(hyper::header::LOCATION)
        {
            return match location.to_str() {
                Ok(location) => Hop::Redirect { location: location.to_string(), status, address: address.ip() },
                Err(_) => Hop::Done(Probed {
                    http_status: Some(status),
                    ..Probed::failed(Failure::ProtocolError, "redirect Location is not text")
                }),
            };
        }

        // Body, bounded in size and time
        let (limit, total_bound) = phase_limit(self.timeouts.body, deadline);
        let body = connection
            .run(read_bounded(response.into_body(), self.settings.max_body_bytes, Instant::now() + limit))
            .await;
        let mut probed = Probed { http_status: Some(status), cert_not_after, cert_issuer, ..Probed::default() };
        let status_ok = self.settings.expect_status.iter().any(|&(low, high)| (low..=high).contains(&status));
        let fail = |failure, detail: String| {
            Hop::Done(Probed { failure: Some(failure), detail: Some(detail), ..probed.clone() })
        };
        if !status_ok {
            return fail(Failure::HttpStatus, format!("status {status}"));
        }
        let body = match body {
            Ok(body) => body,
            Err(BodyError::Timeout) => {
                let phase = if total_bound { Phase::Total } else { Phase::Body };
                return fail(Failure::Timeout(phase), format!("body not complete within {limit:?}"));
            }
            Err(BodyError::Broken(e)) => return fail(Failure::ProtocolError, format!("body broken off: {e}")),
        };
        if let Some(keyword) = keyword.or(self.settings.keyword.as_deref())
            && !contains(&body, keyword.as_bytes())
        {
            return fail(
                Failure::BodyMismatch,
                format!("`{}` not in the first {} bytes", keyword.chars().take(40).collect::<String>(), body.len()),
            );
        }
        probed.failure = None;
        Hop::Done(probed)
    }
}

/// A URL or scheme from a server, cut for a detail line.
fn shorten(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX { text.to_string() } else { text.chars().take(MAX).chain(['…']).collect() }
}

fn done(failure: Failure, detail: String) -> Hop {
    Hop::Done(Probed::failed(failure, detail))
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text.chars().take(200).collect()
}

enum BodyError {
    Timeout,
    Broken(String),
}

/// Reads at most `max_bytes` of the body before `deadline`; stops early rather than reading an
/// endless body.
async fn read_bounded(mut body: Incoming, max_bytes: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
    let mut bytes = Vec::new();
    while bytes.len() < max_bytes {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Broken(error_chain(&e))),
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let take = data.len().min(max_bytes - bytes.len());
                    bytes.extend_from_slice(&data[..take]);
                }
            }
        }
    }
    Ok(bytes)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Resolves a Location header against the URL that sent it.
fn join_location(base: &SiteUrl, location: &str) -> Result<SiteUrl, InvalidValue> {
    let location = location.trim();
    let has_scheme = location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return SiteUrl::parse(location);
    }
    if let Some(rest) = location.strip_prefix("//") {
        return SiteUrl::parse(&format!("{}://{rest}", base.scheme()));
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let current = base.path_and_query.split('?').next().unwrap_or("/");
        let dir = &current[..current.rfind('/').map_or(0, |i| i + 1)];
        format!("{}{location}", if dir.is_empty() { "/" } else { dir })
    };
    SiteUrl::parse(&format!("{}://{}{path}", base.scheme(), base.authority()))
}

/// hyper's connection future, polled alongside whatever waits on it; dropped (closing the
/// connection) when the check is done with it.
struct Driven<'a, C> {
    connection: Pin<&'a mut C>,
    done: bool,
}

impl<C: Future> Driven<'_, C> {
    /// Awaits `future` while driving the connection (until it ends; a request it can no longer
    /// serve then fails on its own).
    async fn run<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            if !self.done && self.connection.as_mut().poll(cx).is_ready() {
                self.done = true;
            }
            future.as_mut().poll(cx)
        })
        .await
    }
}

/// A plain or TLS stream.
enum MaybeTls {
    Plain(StampedTcp),
    Tls(Box<TlsStream<StampedTcp>>),
}

/// A stream that tells the [`Exchange`] when the first response byte has been decoded (above
/// TLS: the first plaintext byte); the exchange knows when the bytes that brought it arrived.
struct StampedStream {
    inner: MaybeTls,
    exchange: Exchange,
    seen: bool,
}

impl AsyncRead for StampedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = match &mut this.inner {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if !this.seen
            && let Poll::Ready(Ok(())) = poll
            && buf.filled().len() > before
        {
            this.seen = true;
            this.exchange.first_byte_seen();
        }
        poll
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations() {
        let base = SiteUrl::parse("https://a.test/shop/cart?x=1").unwrap();
        assert_eq!(join_location(&base, "/login").unwrap().to_string(), "https://a.test/login");
        assert_eq!(join_location(&base, "checkout").unwrap().to_string(), "https://a.test/shop/checkout");
        assert_eq!(join_location(&base, "//b.test/x").unwrap().to_string(), "https://b.test/x");
        assert_eq!(join_location(&base, "http://c.test:8080/").unwrap().to_string(), "http://c.test:8080/");
        assert!(join_location(&base, "ftp://d.test/").is_err());
    }

    #[test]
    fn keyword_search() {
        assert!(contains(b"hello world", b"world"));
        assert!(!contains(b"hello", b"world"));
        assert!(contains(b"", b""));
    }
}
