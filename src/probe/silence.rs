//! Whether a check is waiting on a server that has sent nothing back: a DNS query without a
//! reply, a TCP handshake without its SYN-ACK. Such a wait costs the server nothing, so the sweep
//! lets a check that has waited so for `probe.park_after` give back its permits (`sweep.rs`).
//!
//! The checks mark their waits through a task-local [`Silence`] that the sweep sets; outside a
//! sweep the marks do nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static SILENCE: Arc<Silence>;
}

const NOT_WAITING: u64 = u64::MAX;

/// The silent wait of one check, if it is in one.
pub struct Silence {
    base: Instant,
    /// Microseconds from `base` to the start of the current silent wait, or `NOT_WAITING`.
    since_us: AtomicU64,
    /// The start of the last silent wait that ended with an answer.
    answered_us: AtomicU64,
}

impl Silence {
    pub fn new() -> Arc<Silence> {
        Arc::new(Silence {
            base: Instant::now(),
            since_us: AtomicU64::new(NOT_WAITING),
            answered_us: AtomicU64::new(NOT_WAITING),
        })
    }

    /// Runs `future` with this as its task's silence.
    pub fn scope<F: Future>(self: Arc<Self>, future: F) -> impl Future<Output = F::Output> {
        SILENCE.scope(self, future)
    }

    /// When the current silent wait began (a mark to compare with [`Silence::answered`]).
    pub fn since(&self) -> Option<u64> {
        Some(self.since_us.load(Ordering::Relaxed)).filter(|&s| s != NOT_WAITING)
    }

    /// How long the check has waited without an answer, `None` when it is not in such a wait.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let since = self.since()?;
        Some(now.saturating_duration_since(self.base + Duration::from_micros(since)))
    }

    /// Whether the wait that began at `since` ended with an answer (the server was slow, not
    /// silent).
    pub fn answered(&self, since: u64) -> bool {
        self.answered_us.load(Ordering::Relaxed) == since
    }
}

fn with(f: impl FnOnce(&Silence)) {
    let _ = SILENCE.try_with(|s| f(s));
}

/// The check sent something a server has yet to answer (a query, a SYN).
pub fn waiting() {
    with(|s| {
        let now = u64::try_from(s.base.elapsed().as_micros()).unwrap_or(NOT_WAITING - 1);
        let _ = s.since_us.compare_exchange(NOT_WAITING, now, Ordering::Relaxed, Ordering::Relaxed);
    });
}

/// The server answered (a reply, a SYN-ACK, a reset or an ICMP error).
pub fn answered() {
    with(|s| {
        let since = s.since_us.swap(NOT_WAITING, Ordering::Relaxed);
        if since != NOT_WAITING {
            s.answered_us.store(since, Ordering::Relaxed);
        }
    });
}

/// The check gave up waiting (its timeout) without an answer; a next wait starts afresh.
pub fn gave_up() {
    with(|s| s.since_us.store(NOT_WAITING, Ordering::Relaxed));
}
