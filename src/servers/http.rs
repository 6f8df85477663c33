//! Shared web frontends on loopback: HTTP/1.1 (optionally over TLS) virtual hosts whose
//! behaviour a scenario can change while they serve, and raw listeners that break the protocol.
//!
//! They play the fleet's frontends for the demo and the tests of `probe::http`. The Host header
//! (without port) picks a [`Behavior`] in [`VirtualHosts`]; the lock is held only to copy it.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::ReadBuf;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use hdrhistogram::Histogram;

use crate::probe::stamp;

use super::{ServerHandle, reap};

/// A client that has not finished the TLS handshake by then is dropped.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// How long a garbage-writing listener waits for the client to close after writing.
const GARBAGE_LINGER: Duration = Duration::from_secs(2);
/// What a garbage listener writes instead of an HTTP response.
const GARBAGE: &[u8] = b"\x00\xff\x13this is not HTTP\r\n\r\n";
/// One chunk of an endless body; static, so streaming it copies nothing.
static ENDLESS_CHUNK: [u8; 16 * 1024] = [b'~'; 16 * 1024];

/// What a virtual host answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// 200 with this body.
    Ok { body: String },
    /// This status with a short text body (an invalid code gives 500).
    Status(u16),
    /// Waits `delay` before sending anything, then behaves as `then`.
    SlowFirstByte { delay: Duration, then: Box<Behavior> },
    /// 302 to this Location.
    Redirect(String),
    /// 200 and a body that never ends (chunked), until the client disconnects.
    EndlessBody,
}

/// The virtual hosts of one frontend: host (lower case, no port) → behaviour, and a default.
#[derive(Debug, Clone)]
pub struct VirtualHosts {
    hosts: HashMap<String, Behavior>,
    default: Behavior,
    /// Clients whose connections are closed as soon as they are accepted: a broken path from
    /// one prober (by its source address) to this frontend, while the others get through.
    dropped_sources: HashSet<IpAddr>,
}

impl VirtualHosts {
    /// No hosts yet; every request gets `default` (e.g. `Status(421)`, misdirected request).
    pub fn new(default: Behavior) -> Self {
        VirtualHosts { hosts: HashMap::new(), default, dropped_sources: HashSet::new() }
    }

    /// Closes every new connection from these addresses at once (none: serve everyone).
    pub fn set_dropped_sources(&mut self, sources: impl IntoIterator<Item = IpAddr>) {
        self.dropped_sources = sources.into_iter().collect();
    }

    /// Whether connections from `source` are closed unanswered.
    pub fn drops(&self, source: IpAddr) -> bool {
        self.dropped_sources.contains(&source)
    }

    /// Sets the behaviour of one host; returns the previous one.
    pub fn set(&mut self, host: &str, behavior: Behavior) -> Option<Behavior> {
        self.hosts.insert(host.to_ascii_lowercase(), behavior)
    }

    pub fn remove(&mut self, host: &str) -> Option<Behavior> {
        self.hosts.remove(&host.to_ascii_lowercase())
    }

    /// The behaviour for hosts not in the table.
    pub fn set_default(&mut self, behavior: Behavior) {
        self.default = behavior;
    }

    /// What a request for `host` (lower case, no port) gets.
    pub fn behavior(&self, host: &str) -> &Behavior {
        self.hosts.get(host).unwrap_or(&self.default)
    }
}

/// Starts an HTTP/1.1 server on `addr` (port 0: any free port), over TLS when `tls` is given.
/// The hosts may be changed at any time; each request sees them as they are when it arrives.
pub async fn spawn(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    hosts: Arc<RwLock<VirtualHosts>>,
) -> io::Result<ServerHandle> {
    spawn_timed(addr, tls, hosts, None).await
}

/// [`spawn`], noting in `times` how long each response took the server: from the request's
/// arrival (the kernel's receive stamp of its last segment) to the send call of the response's
/// first bytes. Benchmarks use it to tell the server's own time from what the prober reports.
pub async fn spawn_timed(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    hosts: Arc<RwLock<VirtualHosts>>,
    times: Option<Arc<ResponseTimes>>,
) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_http(listener, tls.map(TlsAcceptor::from), hosts, times));
    Ok(ServerHandle::new(addr, vec![task.abort_handle()]))
}

/// Server-side response times, in microseconds (see [`spawn_timed`]).
/// Also counts the server's open connections, and the most open at once.
#[derive(Debug)]
pub struct ResponseTimes(Mutex<Histogram<u64>>, AtomicUsize, AtomicUsize);

impl ResponseTimes {
    pub fn new() -> Arc<ResponseTimes> {
        // 1 µs to 10 min, 3 significant digits.
        let histogram = Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds");
        Arc::new(ResponseTimes(Mutex::new(histogram), AtomicUsize::new(0), AtomicUsize::new(0)))
    }

    /// The most connections open at once since the last call, and a fresh start.
    pub fn take_peak_connections(&self) -> usize {
        self.2.swap(self.1.load(Ordering::Relaxed), Ordering::Relaxed)
    }

    fn opened(&self) {
        let open = self.1.fetch_add(1, Ordering::Relaxed) + 1;
        self.2.fetch_max(open, Ordering::Relaxed);
    }

    fn closed(&self) {
        self.1.fetch_sub(1, Ordering::Relaxed);
    }

    fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.0.lock().unwrap_or_else(PoisonError::into_inner).record(micros.min(600_000_000));
    }

    /// The times noted since the last take, and a fresh start.
    pub fn take(&self) -> Histogram<u64> {
        let mut histogram = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = histogram.clone();
        histogram.reset();
        taken
    }
}

async fn accept_http(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    hosts: Arc<RwLock<VirtualHosts>>,
    times: Option<Arc<ResponseTimes>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let Some(stream) = accept(&listener).await else { continue };
        reap(&mut connections);
        let dropped =
            stream.peer_addr().is_ok_and(|peer| hosts.read().unwrap_or_else(PoisonError::into_inner).drops(peer.ip()));
        if dropped {
            // Closed before a byte is read: the client's request or handshake finds the
            // connection gone.
            drop(stream);
            continue;
        }
        let hosts = Arc::clone(&hosts);
        let stream = ArrivalStream::new(stream, times.clone());
        let arrivals = stream.arrivals.clone();
        match &tls {
            None => connections.spawn(serve_http(stream, hosts, arrivals)),
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                connections.spawn(async move {
                    if let Ok(Ok(stream)) = tokio::time::timeout(TLS_HANDSHAKE, handshake).await {
                        serve_http(stream, hosts, arrivals).await;
                    }
                })
            }
        };
    }
}

/// When the data of a connection arrived, and the request being answered.
#[derive(Debug, Default)]
struct ConnectionTimes {
    /// Arrival of the data read last (the kernel's stamp where it gives one).
    last_read: Option<Instant>,
    /// Arrival of the request whose response is not yet sent.
    answering: Option<Instant>,
}

type Arrivals = Arc<Mutex<ConnectionTimes>>;

/// An accepted connection that knows when its requests arrived.
struct ArrivalStream {
    stream: TcpStream,
    kernel: bool,
    arrivals: Arrivals,
    times: Option<Arc<ResponseTimes>>,
}

impl ArrivalStream {
    fn new(stream: TcpStream, times: Option<Arc<ResponseTimes>>) -> Self {
        let kernel = stamp::enable_rx_timestamps(&stream);
        if let Some(times) = &times {
            times.opened();
        }
        ArrivalStream { stream, kernel, arrivals: Arrivals::default(), times }
    }
}

impl Drop for ArrivalStream {
    fn drop(&mut self) {
        if let Some(times) = &self.times {
            times.closed();
        }
    }
}

impl AsyncRead for ArrivalStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match stamp::poll_read_stamped(&mut this.stream, this.kernel, usize::MAX, cx, buf) {
            Poll::Ready(Ok(Some((at, _)))) => {
                this.arrivals.lock().unwrap_or_else(PoisonError::into_inner).last_read = Some(at);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(None)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ArrivalStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let before = Instant::now();
        let poll = Pin::new(&mut this.stream).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            let answered = this.arrivals.lock().unwrap_or_else(PoisonError::into_inner).answering.take();
            if let (Some(arrival), Some(times)) = (answered, &this.times) {
                times.record(before.saturating_duration_since(arrival));
            }
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// One accepted connection, or `None` after a pause when accepting failed (e.g. out of file
/// descriptors), so the loop does not spin.
async fn accept(listener: &TcpListener) -> Option<TcpStream> {
    match listener.accept().await {
        Ok((stream, _)) => {
            // Responses are small: Nagle would hold them back waiting for the client's ACK.
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            None
        }
    }
}

async fn serve_http<S>(stream: S, hosts: Arc<RwLock<VirtualHosts>>, arrivals: Arrivals)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let behavior = {
            let hosts = hosts.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            hosts.behavior(&host_of(&request)).clone()
        };
        // The request arrived with the data read last: hyper calls us once its head is complete.
        let arrival = {
            let mut times = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
            let arrival = times.last_read.unwrap_or_else(Instant::now);
            times.answering = Some(arrival);
            arrival
        };
        async move { Ok::<_, Infallible>(respond(behavior, arrival).await) }
    });
    // The timer lets hyper enforce its header read timeout on clients that stall mid-request.
    let _ = http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service).await;
}

/// The requested host, lower case, without port: from the Host header, else the request target.
fn host_of(request: &Request<Incoming>) -> String {
    let raw = request.headers().get(HOST).and_then(|h| h.to_str().ok()).or_else(|| request.uri().host()).unwrap_or("");
    strip_port(raw).to_ascii_lowercase()
}

fn strip_port(host: &str) -> &str {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split_once(']').map_or(bracketed, |(literal, _)| literal);
    }
    host.split_once(':').map_or(host, |(name, _)| name)
}

type ResponseBody = Either<Full<Bytes>, EndlessBody>;

/// The response to a request that arrived at `arrival`.
async fn respond(mut behavior: Behavior, arrival: Instant) -> Response<ResponseBody> {
    // Delays may be nested and add up; they count from the request's arrival, so time the
    // server spent getting to the request is part of the delay, not added to it.
    let mut until = arrival;
    loop {
        match behavior {
            Behavior::SlowFirstByte { delay, then } => {
                until += delay;
                stamp::sleep_until(until).await;
                behavior = *then;
            }
            Behavior::Ok { body } => return text(StatusCode::OK, body),
            Behavior::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return text(status, format!("status {}\n", status.as_u16()));
            }
            Behavior::Redirect(location) => {
                let Ok(location) = HeaderValue::from_str(&location) else {
                    return text(StatusCode::INTERNAL_SERVER_ERROR, "redirect target is not a valid header\n".into());
                };
                let mut response = text(StatusCode::FOUND, "redirect\n".into());
                response.headers_mut().insert(LOCATION, location);
                return response;
            }
            Behavior::EndlessBody => {
                let mut response = Response::new(Either::Right(EndlessBody));
                response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                return response;
            }
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// A body that never ends. hyper stops polling it while the socket is full and drops it when
/// the client goes away, so it costs nothing once nobody reads.
#[derive(Debug)]
struct EndlessBody;

impl Body for EndlessBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&ENDLESS_CHUNK)))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }
}

/// Ways a listener breaks HTTP below the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawFault {
    /// Accepts the connection and never writes a byte (reads and discards until the client leaves).
    AcceptThenSilence,
    /// Writes bytes that are not HTTP, then closes.
    Garbage,
    /// Closes each connection as soon as it is accepted.
    CloseImmediately,
}

/// Starts a TCP listener on `addr` that answers every connection with `fault`.
pub async fn spawn_raw(addr: SocketAddr, fault: RawFault) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(accept_raw(listener, fault));
    Ok(ServerHandle::new(addr, vec![task.abort_handle()]))
}

async fn accept_raw(listener: TcpListener, fault: RawFault) {
    let mut connections = JoinSet::new();
    loop {
        let Some(mut stream) = accept(&listener).await else { continue };
        reap(&mut connections);
        match fault {
            RawFault::CloseImmediately => drop(stream),
            RawFault::AcceptThenSilence => {
                connections.spawn(async move { discard_until_closed(&mut stream).await });
            }
            RawFault::Garbage => {
                connections.spawn(async move {
                    if stream.write_all(GARBAGE).await.is_ok() && stream.shutdown().await.is_ok() {
                        // Closing with the request unread would reset the connection and the
                        // client might never see the garbage; wait for its side to close.
                        let _ = tokio::time::timeout(GARBAGE_LINGER, discard_until_closed(&mut stream)).await;
                    }
                });
            }
        }
    }
}

async fn discard_until_closed(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_matched_without_port_and_case() {
        assert_eq!(strip_port("Shop.Example.test:8443"), "Shop.Example.test");
        assert_eq!(strip_port("shop.example.test"), "shop.example.test");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("[::1]"), "::1");
        let mut hosts = VirtualHosts::new(Behavior::Status(421));
        hosts.set("Shop.Example.Test", Behavior::Status(503));
        assert_eq!(hosts.behavior("shop.example.test"), &Behavior::Status(503));
        assert_eq!(hosts.behavior("other.example.test"), &Behavior::Status(421));
    }

    /// A dropped source finds its connection closed unanswered; another source is served, and
    /// once the path is back the first one is too.
    #[tokio::test]
    async fn connections_from_a_dropped_source_are_closed() {
        let hosts = Arc::new(RwLock::new(VirtualHosts::new(Behavior::Ok { body: "hello".into() })));
        let server = spawn((IpAddr::from([127, 0, 0, 1]), 0).into(), None, Arc::clone(&hosts)).await.unwrap();
        let (broken, fine): (IpAddr, IpAddr) = ([127, 0, 31, 1].into(), [127, 0, 31, 2].into());
        hosts.write().unwrap().set_dropped_sources([broken]);
        let addr = server.addr();
        let get = |source: IpAddr| async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((source, 0).into()).unwrap();
            let mut stream = socket.connect(addr).await.unwrap();
            // The write may fail too when the close has already arrived.
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        };
        assert_eq!(get(broken).await, "");
        assert!(get(fine).await.starts_with("HTTP/1.1 200"));
        hosts.write().unwrap().set_dropped_sources([]);
        assert!(get(broken).await.starts_with("HTTP/1.1 200"));
    }
}
