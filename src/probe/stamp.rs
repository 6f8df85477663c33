//! Timestamps taken by the kernel at the network events themselves.
//!
//! A check's phases are timed from the moment a packet was sent to the moment its answer
//! reached the machine, not to the moment the prober's task got around to reading it: under
//! load (hundreds of checks in flight on two cores) a ready socket may wait milliseconds for
//! its task to be polled, and that wait is the prober's, not the site's.
//!
//! On Linux, sockets get `SO_TIMESTAMPNS`: each `recvmsg` returns the time the kernel received
//! the data (`CLOCK_REALTIME`), which [`instant_of`] turns into an [`Instant`] by its age, so
//! the rest of the prober keeps one monotonic clock. Sends are stamped right before the send
//! system call. The TCP handshake's time comes from the kernel's own round-trip measurement
//! (`TCP_INFO`'s `tcpi_rtt`, see [`handshake_rtt`]). Where any of this is unavailable (another
//! system, a socket that refuses the option, or [`set_kernel_timestamps`]`(false)`), the same
//! code falls back to user-space stamps taken when the data is read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

static KERNEL_TIMESTAMPS: AtomicBool = AtomicBool::new(true);

/// Turns kernel timestamps on (the default) or off for sockets opened from now on, in the whole
/// process. Off, every phase is stamped in user space when its data is read.
pub fn set_kernel_timestamps(on: bool) {
    KERNEL_TIMESTAMPS.store(on, Ordering::Relaxed);
}

/// Whether new sockets ask the kernel for timestamps.
pub fn kernel_timestamps() -> bool {
    cfg!(target_os = "linux") && KERNEL_TIMESTAMPS.load(Ordering::Relaxed)
}

/// Where a stamp came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The kernel stamped the packet when it arrived.
    Kernel,
    /// The prober stamped it when its task read the data.
    User,
}

/// A kernel receive time older than this (or in the future) is not trusted: the wall clock
/// was stepped between the packet's arrival and now.
const MAX_AGE: Duration = Duration::from_secs(60);

/// The [`Instant`] at which something happened that the kernel stamped at `realtime_ns`
/// (nanoseconds since the Unix epoch, `CLOCK_REALTIME`): now, less its age. `None` when the age
/// is implausible (the wall clock was stepped).
pub fn instant_of(realtime_ns: i64) -> Option<Instant> {
    let now = Instant::now();
    let age = realtime_now_ns().checked_sub(realtime_ns)?;
    // A packet stamped a few microseconds "in the future" is a clock read race: age zero.
    let age = Duration::from_nanos(u64::try_from(age.max(0)).ok()?);
    if age > MAX_AGE {
        return None;
    }
    now.checked_sub(age)
}

fn realtime_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::RawFd;
    use std::time::Duration;

    /// Asks the kernel to stamp received data (`SO_TIMESTAMPNS`). False if it refuses.
    pub fn enable_rx_timestamps(fd: RawFd) -> bool {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&raw const on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        rc == 0
    }

    /// One `recvmsg` into `buf`: the bytes read and the kernel's receive time, if it gave one.
    pub fn recv_stamped(fd: RawFd, buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<i64>)> {
        // Room for one SCM_TIMESTAMPNS (a timespec) and then some.
        let mut control = [0u64; 16];
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
        // SAFETY: an all-zero msghdr is a valid empty one; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: msg points at a live iovec over `buf` and a live control buffer; the kernel writes
        // at most their lengths.
        let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut stamp = None;
        // SAFETY: CMSG_* walk the control buffer the kernel just filled, within msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    // time_t and c_long are narrower than i64 on some targets.
                    #[allow(clippy::useless_conversion)]
                    if ts.tv_sec != 0 || ts.tv_nsec != 0 {
                        stamp = Some(i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_nsec));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
            }
        }
        Ok((n as usize, stamp))
    }

    /// A non-blocking timerfd that becomes readable after `after` (monotonic clock).
    pub fn timer(after: Duration) -> Option<std::os::fd::OwnedFd> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain system calls on integers and a live itimerspec; the fd is owned once made.
        unsafe {
            let fd = libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC);
            if fd < 0 {
                return None;
            }
            let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: after.as_secs() as libc::time_t,
                    // A zero value would disarm the timer: at least one nanosecond.
                    tv_nsec: (after.subsec_nanos().max(1)) as libc::c_long,
                },
            };
            (libc::timerfd_settime(std::os::fd::AsRawFd::as_raw_fd(&fd), 0, &raw const spec, std::ptr::null_mut()) == 0)
                .then_some(fd)
        }
    }

    /// The kernel's measure of a fresh connection's handshake round trip: `tcpi_rtt` when no
    /// segment was retransmitted (a retransmitted SYN is not timed, and its wait is real).
    pub fn handshake_rtt(fd: RawFd) -> Option<Duration> {
        let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the zeroed tcp_info.
        let rc =
            unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &raw mut len) };
        if rc != 0 || (len as usize) < size_of::<libc::tcp_info>() {
            return None;
        }
        // SAFETY: zero-initialised and (partly) filled by the kernel: every bit pattern is valid.
        let info = unsafe { info.assume_init() };
        (info.tcpi_rtt > 0 && info.tcpi_total_retrans == 0).then(|| Duration::from_micros(u64::from(info.tcpi_rtt)))
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;
    use std::mem::MaybeUninit;
    use std::time::Duration;

    pub type RawFd = i32;

    pub fn enable_rx_timestamps(_fd: RawFd) -> bool {
        false
    }

    pub fn recv_stamped(_fd: RawFd, _buf: &mut [MaybeUninit<u8>]) -> io::Result<(usize, Option<i64>)> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no kernel timestamps here"))
    }

    pub fn handshake_rtt(_fd: RawFd) -> Option<Duration> {
        None
    }
}

#[cfg(target_os = "linux")]
fn fd_of(socket: &impl std::os::fd::AsRawFd) -> i32 {
    socket.as_raw_fd()
}

#[cfg(not(target_os = "linux"))]
fn fd_of<T>(_socket: &T) -> i32 {
    -1
}

/// The time the TCP handshake of `stream` took as the kernel measured it, or `None` (fall back
/// to the time the connect call took).
pub fn handshake_rtt(stream: &TcpStream) -> Option<Duration> {
    if !kernel_timestamps() {
        return None;
    }
    sys::handshake_rtt(fd_of(stream))
}

/// A UDP socket whose received datagrams carry the kernel's receive time when it can.
pub struct StampedUdp {
    socket: tokio::net::UdpSocket,
    kernel: bool,
}

impl StampedUdp {
    pub fn new(socket: tokio::net::UdpSocket) -> Self {
        let kernel = kernel_timestamps() && sys::enable_rx_timestamps(fd_of(&socket));
        StampedUdp { socket, kernel }
    }

    /// Sends `packet` to the connected peer; returns the instant right before the send call.
    pub async fn send(&self, packet: &[u8]) -> io::Result<Instant> {
        loop {
            self.socket.writable().await?;
            let before = Instant::now();
            match self.socket.try_send(packet) {
                Ok(_) => return Ok(before),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one datagram: its length and when it arrived (kernel time, or now).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Instant, Source)> {
        if !self.kernel {
            let n = self.socket.recv(buf).await?;
            return Ok((n, Instant::now(), Source::User));
        }
        let fd = fd_of(&self.socket);
        let (n, stamp) = self
            .socket
            // ERROR too, as tokio's own `recv` does: an ICMP "port unreachable" is a socket
            // error, not readable data, and must end the wait at once.
            .async_io(Interest::READABLE | Interest::ERROR, || {
                // SAFETY: u8 and MaybeUninit<u8> have the same layout; recvmsg only writes into it.
                let uninit = unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [std::mem::MaybeUninit<u8>]) };
                sys::recv_stamped(fd, uninit)
            })
            .await?;
        Ok(match stamp.and_then(instant_of) {
            Some(at) => (n, at, Source::Kernel),
            None => (n, Instant::now(), Source::User),
        })
    }
}

/// What a [`StampedTcp`] saw of one request and its response.
#[derive(Debug, Default)]
struct Marks {
    /// Stamping starts when armed (after the TLS handshake, right before the request).
    armed: bool,
    /// Right before the send call that wrote the first bytes after arming.
    sent: Option<Instant>,
    /// The arrival of the data read by the latest read (kernel time) since the request was sent.
    last_read: Option<(Instant, Source)>,
    /// Stamp of the first response byte, once it has been read.
    first_byte: Option<(Instant, Source)>,
}

/// The shared view of a [`StampedTcp`]'s marks, kept by the check while hyper owns the stream.
#[derive(Debug, Clone, Default)]
pub struct Exchange(Arc<Mutex<Marks>>);

impl Exchange {
    fn with<T>(&self, f: impl FnOnce(&mut Marks) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Starts stamping: the next write is the request.
    pub fn arm(&self) {
        self.with(|m| m.armed = true);
    }

    /// When the request was sent, if it was.
    pub fn sent(&self) -> Option<Instant> {
        self.with(|m| m.sent)
    }

    /// Marks the first response byte as seen, by whoever decodes the stream (above TLS, the
    /// first plaintext byte): its arrival is that of the latest data read off the socket.
    pub fn first_byte_seen(&self) {
        self.with(|m| {
            if m.sent.is_some() && m.first_byte.is_none() {
                m.first_byte = Some(m.last_read.unwrap_or((Instant::now(), Source::User)));
            }
        });
    }

    /// Time from the request's send to the first response byte's arrival.
    pub fn first_byte(&self) -> Option<(Duration, Source)> {
        self.with(|m| {
            let sent = m.sent?;
            let (at, source) = m.first_byte?;
            Some((at.saturating_duration_since(sent), source))
        })
    }
}

/// A TCP stream that stamps the request's send and the response's arrival (see [`Exchange`]).
pub struct StampedTcp {
    stream: TcpStream,
    kernel: bool,
    /// Read the first response byte on its own (plain streams; see [`StampedTcp::short_first_read`]).
    short_first_read: bool,
    exchange: Exchange,
}

impl StampedTcp {
    pub fn new(stream: TcpStream) -> Self {
        let kernel = kernel_timestamps() && sys::enable_rx_timestamps(fd_of(&stream));
        StampedTcp { stream, kernel, short_first_read: false, exchange: Exchange::default() }
    }

    /// Reads the first byte after the request on its own, one extra system call: the kernel
    /// stamps a read with the arrival of the last segment it copies, so a one-byte read carries
    /// the first byte's own arrival even when more segments wait behind it. Only for streams
    /// whose first byte after the request is the response's (not under TLS, where a session
    /// ticket may come first and is read in large pieces).
    pub fn short_first_read(&mut self) {
        self.short_first_read = true;
    }

    pub fn exchange(&self) -> Exchange {
        self.exchange.clone()
    }

    /// Whether reads carry the kernel's receive time.
    pub fn kernel(&self) -> bool {
        self.kernel
    }

    fn note_read(&self, at: Instant, source: Source) {
        self.exchange.with(|m| {
            if m.sent.is_some() && m.first_byte.is_none() {
                m.last_read = Some((at, source));
            }
        });
    }

    fn awaiting_first_byte(&self) -> bool {
        self.exchange.with(|m| m.sent.is_some() && m.first_byte.is_none())
    }
}

impl AsyncRead for StampedTcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let awaiting = this.awaiting_first_byte();
        let kernel = this.kernel && awaiting;
        let limit = if awaiting && this.short_first_read { 1 } else { usize::MAX };
        match ready!(poll_read_stamped(&mut this.stream, kernel, limit, cx, buf)) {
            Ok(Some((at, source))) if awaiting => this.note_read(at, source),
            Ok(_) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        Poll::Ready(Ok(()))
    }
}

/// One read of at most `limit` bytes from `stream` into `buf`, with the arrival of the data read:
/// the kernel's stamp when `kernel` is set and the socket has timestamps on (see
/// [`enable_rx_timestamps`]), else now. `None` when nothing was read (end of stream).
pub fn poll_read_stamped(
    stream: &mut TcpStream,
    kernel: bool,
    limit: usize,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<Option<(Instant, Source)>>> {
    if !kernel && limit >= buf.remaining() {
        let before = buf.filled().len();
        ready!(Pin::new(stream).poll_read(cx, buf))?;
        let read = buf.filled().len() > before;
        return Poll::Ready(Ok(read.then(|| (Instant::now(), Source::User))));
    }
    let fd = fd_of(stream);
    loop {
        ready!(stream.poll_read_ready(cx))?;
        // SAFETY: the reads below only write into the unfilled part; we then mark what they wrote.
        let unfilled = unsafe { buf.unfilled_mut() };
        let limit = unfilled.len().min(limit);
        let read = stream.try_io(Interest::READABLE, || sys::recv_stamped(fd, &mut unfilled[..limit]));
        match read {
            Ok((n, stamp)) => {
                // SAFETY: the kernel initialised the first n bytes of the unfilled part.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                if n == 0 {
                    return Poll::Ready(Ok(None));
                }
                return Poll::Ready(Ok(Some(match stamp.and_then(instant_of) {
                    Some(at) => (at, Source::Kernel),
                    None => (Instant::now(), Source::User),
                })));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Turns on kernel receive timestamps for `stream` (unless they are switched off); false when
/// the kernel refuses or cannot.
pub fn enable_rx_timestamps(stream: &TcpStream) -> bool {
    kernel_timestamps() && sys::enable_rx_timestamps(fd_of(stream))
}

/// Sleeps until `deadline` to within tens of microseconds where the system has high-resolution
/// timers (Linux: a timerfd), instead of the runtime timer's whole milliseconds. For servers
/// that must add an exact delay.
pub async fn sleep_until(deadline: Instant) {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Some(timer) = sys::timer(left)
        // SAFETY: the AsyncFd owns the timer's fd, which is neither replaced nor closed while registered.
        && let Ok(timer) = unsafe { tokio::io::unix::AsyncFd::register_with_interest(timer, Interest::READABLE) }
    {
        let _ = timer.readable().await;
        return;
    }
    tokio::time::sleep_until(deadline).await;
}

impl StampedTcp {
    /// Runs one write; the first that sends request bytes once the exchange is armed stamps the
    /// request as sent at the moment before its call.
    fn stamped_write(
        &mut self,
        write: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let stamping = self.exchange.with(|m| m.armed && m.sent.is_none());
        let before = Instant::now();
        let poll = write(Pin::new(&mut self.stream));
        if stamping && matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.exchange.with(|m| m.sent = Some(before));
        }
        poll
    }
}

impl AsyncWrite for StampedTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().stamped_write(|stream| stream.poll_write(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().stamped_write(|stream| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
