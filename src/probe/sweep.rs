//! The sweep: every check of the fleet, once, under concurrency limits and spread over a window,
//! ended by a deadline.
//!
//! Each site gets a fixed start offset inside the spread window (a hash of its id), so it is
//! probed at the same point of every interval and the fleet never sees one burst. Each cluster
//! has a pool of workers (as many as its concurrency limit) that walk its checks in offset order;
//! each check takes a cluster permit, then a global permit (tokio's semaphore is fair, so clusters
//! take turns); a cluster that is slow to answer holds only its own permits and cannot starve the
//! others. Results stream out through a channel to a single
//! writer; the sweep itself never touches the store.
//!
//! The permits count what loads a server, not what waits: a check that has waited
//! `probe.park_after` on a server that sent nothing back (a query without a reply, a SYN without
//! its SYN-ACK; see `silence.rs`) gives its permits back and waits on *parked*, in one of its
//! cluster's `probe.parked_per_cluster` park slots, so silent servers do not stretch the sweep.
//! A server that answers, however slowly, holds its permits as before; a parked check that gets
//! an answer after all stops parking in its cluster for the rest of the sweep. At the deadline
//! every check still unfinished (or not started) is sent as not measured.

use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};

use super::http::HttpTarget;
use super::silence::Silence;
use super::{CheckKind, CheckResult, Failure, Probed, Probers, fnv1a};
use crate::fleet::{ControlTarget, Fleet, SiteIdx};

/// How the sweep kept to its schedule: whether any check started late.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Checks started (first attempts).
    pub checks: u64,
    /// The spread window the checks' planned starts fall in.
    pub spread: Duration,
    /// The latest first attempt's start, from the sweep's start, and its planned offset.
    pub latest_start: Duration,
    pub latest_start_planned: Duration,
    /// The most any check started after its planned offset (waiting for permits or the runtime).
    pub max_lateness: Duration,
    /// From the sweep's start until its last check was done.
    pub elapsed: Duration,
    /// Attempts that gave back their permits to wait on a silent server, parked.
    pub parked: u64,
    /// Clusters whose parked checks were answered after all (slow, not silent): their checks
    /// stopped parking for the rest of the sweep.
    pub parking_stopped: u64,
}

impl SweepStats {
    fn note(&mut self, planned: Duration, started: Duration) {
        self.checks += 1;
        if started >= self.latest_start {
            self.latest_start = started;
            self.latest_start_planned = planned;
        }
        self.max_lateness = self.max_lateness.max(started.saturating_sub(planned));
    }

    fn merge(&mut self, other: &SweepStats) {
        self.checks += other.checks;
        if other.checks > 0 && other.latest_start >= self.latest_start {
            self.latest_start = other.latest_start;
            self.latest_start_planned = other.latest_start_planned;
        }
        self.max_lateness = self.max_lateness.max(other.max_lateness);
    }
}

/// Runs every check of the fleet once and sends each result to `results`.
///
/// `started_at_ms` is the run's start on the wall (or simulated) clock; each result's own start is
/// that plus the real time elapsed since. Returns when every check has been sent, or early when
/// the receiver is gone (the writer failed), with how well the checks kept to their planned starts.
pub async fn sweep(
    fleet: Arc<Fleet>,
    probers: Probers,
    started_at_ms: i64,
    results: mpsc::Sender<CheckResult>,
) -> SweepStats {
    let deadline = Instant::now() + fleet.probe.deadline;
    sweep_until(fleet, probers, started_at_ms, deadline, results).await
}

/// [`sweep`] with its deadline given: the run's start plus `probe.deadline`, when the run did
/// something (its control round) before the sweep. A check not finished by then is sent as
/// [`Failure::NotMeasured`], so the sweep returns by the deadline (plus the time to send what
/// is left).
pub async fn sweep_until(
    fleet: Arc<Fleet>,
    probers: Probers,
    started_at_ms: i64,
    deadline: Instant,
    results: mpsc::Sender<CheckResult>,
) -> SweepStats {
    let start = Instant::now();
    let global = Arc::new(Semaphore::new(fleet.probe.concurrency));
    let mut per_cluster: Vec<Vec<(Duration, SiteIdx, CheckKind)>> = vec![Vec::new(); fleet.clusters.len()];
    for (idx, site) in fleet.sites.iter().enumerate() {
        if !super::in_shard(fleet.probe.shard, &site.id) {
            continue;
        }
        let offset = spread_offset(&site.id, fleet.probe.spread);
        for kind in site.checks.kinds() {
            per_cluster[site.cluster].push((offset, idx, kind));
        }
    }
    let busy_clusters = per_cluster.iter().filter(|c| !c.is_empty()).count();
    let parked_per_cluster =
        parked_within_open_files(fleet.probe.parked_per_cluster, fleet.probe.concurrency, busy_clusters);
    let mut workers = tokio::task::JoinSet::new();
    let mut clusters = Vec::new();
    for checks in per_cluster.into_iter().filter(|c| !c.is_empty()) {
        let mut checks = checks;
        checks.sort_unstable_by_key(|&(offset, idx, kind)| (offset, idx, kind));
        let count = fleet.probe.cluster_concurrency.min(fleet.probe.concurrency).min(checks.len()).max(1);
        let cluster = Arc::new(ClusterSweep {
            fleet: fleet.clone(),
            probers: probers.clone(),
            global: global.clone(),
            cluster_permits: Arc::new(Semaphore::new(fleet.probe.cluster_concurrency)),
            park_slots: (parked_per_cluster > 0).then(|| Arc::new(Semaphore::new(parked_per_cluster))),
            parking_stopped: AtomicBool::new(false),
            parked: AtomicU64::new(0),
            results: results.clone(),
            start,
            deadline,
            started_at_ms,
            checks,
            next: AtomicUsize::new(0),
        });
        for _ in 0..count {
            workers.spawn(cluster.clone().work());
        }
        clusters.push(cluster);
    }
    drop(results);
    // Each worker keeps its own figures (no lock shared by every check), merged here.
    let mut stats = SweepStats { spread: fleet.probe.spread, ..SweepStats::default() };
    while let Some(done) = workers.join_next().await {
        if let Ok(worker) = done {
            stats.merge(&worker);
        }
    }
    for cluster in &clusters {
        stats.parked += cluster.parked.load(Ordering::Relaxed);
        stats.parking_stopped += u64::from(cluster.parking_stopped.load(Ordering::Relaxed));
    }
    SweepStats { elapsed: start.elapsed(), ..stats }
}

/// The checks of one cluster and what its workers share. A cluster has as many workers as it may
/// have checks in flight; each takes the next check in offset order, waits for its planned
/// start, then for a cluster permit and a global one. Long-lived workers instead of a task per
/// check: a sweep is mostly waiting on the network, and a task per check cost more in spawns and
/// wake-ups than the check's own work.
struct ClusterSweep {
    fleet: Arc<Fleet>,
    probers: Probers,
    global: Arc<Semaphore>,
    cluster_permits: Arc<Semaphore>,
    /// Room for checks waiting on a silent server without permits (`None`: no parking).
    park_slots: Option<Arc<Semaphore>>,
    /// Set once a parked check of this cluster was answered: its servers are slow, not silent,
    /// and its checks hold their permits to the end as every check did before parking.
    parking_stopped: AtomicBool,
    parked: AtomicU64,
    results: mpsc::Sender<CheckResult>,
    start: Instant,
    /// Checks not finished by then are not measured.
    deadline: Instant,
    started_at_ms: i64,
    /// (planned offset, site, check), in offset order.
    checks: Vec<(Duration, SiteIdx, CheckKind)>,
    next: AtomicUsize,
}

type Permits = (OwnedSemaphorePermit, OwnedSemaphorePermit);

type CheckFuture = Pin<Box<dyn Future<Output = Probed> + Send>>;

/// An attempt that gave back its permits to wait on a silent server: it goes on, holding a park
/// slot of its cluster instead.
struct Parked {
    check: CheckFuture,
    _slot: OwnedSemaphorePermit,
    silence: Arc<Silence>,
    /// The start of the silent wait it was parked in.
    since: u64,
}

impl ClusterSweep {
    async fn work(self: Arc<Self>) -> SweepStats {
        let mut stats = SweepStats::default();
        let mut retrying = tokio::task::JoinSet::new();
        while let Some(&(offset, site, kind)) = self.checks.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let planned = self.start + offset;
            let permits = match timeout_at(self.deadline, async {
                tokio::time::sleep_until(planned).await;
                self.permits().await
            })
            .await
            {
                Ok(Some(permits)) => permits,
                Ok(None) => break,
                Err(_) => {
                    if !self.not_measured(site, kind, planned, 0, "not started by the sweep's deadline").await {
                        break;
                    }
                    continue;
                }
            };
            let attempt_start = Instant::now();
            stats.note(offset, attempt_start - self.start);
            let probed = match timeout_at(self.deadline, self.attempt(site, kind, permits)).await {
                Ok(Ok(probed)) => probed,
                Ok(Err(parked)) => {
                    // Finished (and retried) by a task of its own; this worker moves on.
                    self.parked.fetch_add(1, Ordering::Relaxed);
                    retrying.spawn(self.clone().after_parking(site, kind, parked, attempt_start));
                    while retrying.try_join_next().is_some() {}
                    continue;
                }
                Err(_) => {
                    if !self.not_measured(site, kind, attempt_start, 1, "not finished by the sweep's deadline").await {
                        break;
                    }
                    continue;
                }
            };
            if probed.failure.is_none() || self.fleet.probe.retries == 0 {
                if !self.send(site, kind, probed, attempt_start, 1).await {
                    break;
                }
            } else {
                // Retried by a task of its own, without permits while it waits; this worker moves on.
                retrying.spawn(self.clone().retry(site, kind, probed));
            }
            // Reap finished retries so the set does not grow with the fleet.
            while retrying.try_join_next().is_some() {}
        }
        while retrying.join_next().await.is_some() {}
        stats
    }

    /// The attempts after a failed first one, `retry_delay` apart; not measured when they
    /// have not settled it by the deadline.
    async fn retry(self: Arc<Self>, site: SiteIdx, kind: CheckKind, first: Probed) {
        let mut attempts = 1u8;
        let mut last_start = Instant::now();
        let settled = timeout_at(self.deadline, async {
            loop {
                tokio::time::sleep(self.fleet.probe.retry_delay).await;
                let permits = self.permits().await?;
                attempts = attempts.saturating_add(1);
                let attempt_start = Instant::now();
                last_start = attempt_start;
                let probed = match self.attempt(site, kind, permits).await {
                    Ok(probed) => probed,
                    Err(parked) => {
                        self.parked.fetch_add(1, Ordering::Relaxed);
                        self.finish_parked(parked).await
                    }
                };
                if probed.failure.is_none() || u32::from(attempts) > self.fleet.probe.retries {
                    return Some((probed, attempt_start));
                }
            }
        })
        .await;
        match settled {
            Ok(Some((probed, attempt_start))) => {
                self.send(site, kind, probed, attempt_start, attempts).await;
            }
            Ok(None) => {}
            Err(_) => {
                let first = first.failure.map_or_else(String::new, |f| format!("attempt 1: {f}; "));
                let detail = format!("{first}its retry had not settled it by the sweep's deadline");
                self.not_measured(site, kind, last_start, attempts, &detail).await;
            }
        }
    }

    /// One attempt under `permits`. An attempt that has waited `probe.park_after` on a server
    /// that sent nothing back (see `silence`) gives its permits back and is returned still
    /// running, parked, when its cluster has a park slot free (else it waits for one, or for its
    /// answer, holding its permits): silent servers do not hold up the checks of answering ones,
    /// and the parked checks of a cluster are bounded. A server that answers holds its permits.
    async fn attempt(self: &Arc<Self>, site: SiteIdx, kind: CheckKind, permits: Permits) -> Result<Probed, Parked> {
        let Some(slots) = self.park_slots.as_ref().filter(|_| !self.parking_stopped.load(Ordering::Relaxed)) else {
            return Ok(self.probers.check(&self.fleet, site, kind).await);
        };
        let park_after = self.fleet.probe.park_after;
        let silence = Silence::new();
        let me = self.clone();
        let mut check: CheckFuture =
            Box::pin(silence.clone().scope(async move { me.probers.check(&me.fleet, site, kind).await }));
        let mut look = Instant::now() + park_after;
        loop {
            tokio::select! {
                biased;
                probed = &mut check => return Ok(probed),
                () = tokio::time::sleep_until(look) => {}
            }
            let now = Instant::now();
            match silence.silent_for(now) {
                Some(silent) if silent >= park_after => {}
                Some(silent) => {
                    look = now + (park_after - silent);
                    continue;
                }
                None => {
                    look = now + park_after;
                    continue;
                }
            }
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => tokio::select! {
                    biased;
                    probed = &mut check => return Ok(probed),
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return Ok(check.await),
                    },
                },
            };
            if self.parking_stopped.load(Ordering::Relaxed) {
                return Ok(check.await);
            }
            match silence.since() {
                Some(since) if silence.silent_for(Instant::now()).is_some_and(|s| s >= park_after) => {
                    drop(permits);
                    return Err(Parked { check, _slot: slot, silence, since });
                }
                _ => look = Instant::now() + park_after,
            }
        }
    }

    /// Waits for a parked attempt's end; an answer to the wait it was parked in stops the
    /// cluster's parking.
    async fn finish_parked(&self, parked: Parked) -> Probed {
        let Parked { check, _slot, silence, since } = parked;
        let probed = check.await;
        if silence.answered(since) {
            self.parking_stopped.store(true, Ordering::Relaxed);
        }
        probed
    }

    /// A parked first attempt: its result, or its retries, as the worker would have done them.
    async fn after_parking(self: Arc<Self>, site: SiteIdx, kind: CheckKind, parked: Parked, attempt_start: Instant) {
        let Ok(probed) = timeout_at(self.deadline, self.finish_parked(parked)).await else {
            self.not_measured(site, kind, attempt_start, 1, "not finished by the sweep's deadline").await;
            return;
        };
        if probed.failure.is_none() || self.fleet.probe.retries == 0 {
            self.send(site, kind, probed, attempt_start, 1).await;
        } else {
            self.retry(site, kind, probed).await;
        }
    }

    /// Sends a check the deadline cut short as not measured.
    async fn not_measured(&self, site: SiteIdx, kind: CheckKind, at: Instant, attempts: u8, detail: &str) -> bool {
        let probed = Probed::failed(Failure::NotMeasured, detail);
        self.send(site, kind, probed, at, attempts).await
    }

    /// A cluster permit, then a global one (`None` once the sweep is torn down).
    async fn permits(&self) -> Option<Permits> {
        let cluster = self.cluster_permits.clone().acquire_owned().await.ok()?;
        let global = self.global.clone().acquire_owned().await.ok()?;
        Some((cluster, global))
    }

    /// Sends a check's result; false when the receiver is gone (the writer failed).
    async fn send(&self, site: SiteIdx, kind: CheckKind, probed: Probed, attempt_start: Instant, attempts: u8) -> bool {
        let started_at_ms = self.started_at_ms + attempt_start.saturating_duration_since(self.start).as_millis() as i64;
        let result = CheckResult {
            site,
            check: kind,
            outcome: probed.outcome(),
            started_at_ms,
            attempts,
            http_status: probed.http_status,
            timings: probed.timings,
            cert_not_after: probed.cert_not_after,
            cert_issuer: probed.cert_issuer,
            detail: probed.detail,
        };
        self.results.send(result).await.is_ok()
    }
}

/// The parked checks per cluster the process's open-file limit leaves room for: each holds a
/// socket, besides the `concurrency` checks with permits and some for the store and the runtime.
fn parked_within_open_files(configured: usize, concurrency: usize, clusters: usize) -> usize {
    // SAFETY: getrlimit fills the struct it is given.
    let soft = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) != 0 {
            return configured;
        }
        limit.rlim_cur
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let room = soft.saturating_sub(concurrency.saturating_mul(2)).saturating_sub(256);
    configured.min(room / clusters.max(1))
}

/// Raises the soft limit of open files to the hard one: parked checks each hold a socket.
pub fn raise_open_files_limit() {
    // SAFETY: getrlimit and setrlimit read and write the struct they are given.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit);
        }
    }
}

/// A site's fixed start offset within the spread window.
pub fn spread_offset(site_id: &str, spread: Duration) -> Duration {
    if spread.is_zero() {
        return Duration::ZERO;
    }
    let millis = spread.as_millis().max(1) as u64;
    Duration::from_millis(fnv1a(site_id) % millis)
}

/// Outcome of checking the prober's own network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRound {
    pub ok: usize,
    pub total: usize,
    /// One line per failed target.
    pub failures: Vec<String>,
}

impl ControlRound {
    pub fn passed(&self, min_ok: usize) -> bool {
        self.ok >= min_ok
    }
}

/// Checks every control target once, concurrently.
pub async fn control_round(fleet: &Fleet, probers: &Probers) -> ControlRound {
    let mut checks = tokio::task::JoinSet::new();
    for target in fleet.control.targets.clone() {
        let http = probers.http.clone();
        let connect_timeout = fleet.probe.timeouts.connect;
        checks.spawn(async move {
            match &target {
                ControlTarget::Tcp(address) => {
                    match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("tcp://{address}: {e}")),
                        Err(_) => Err(format!("tcp://{address}: no connection within {connect_timeout:?}")),
                    }
                }
                ControlTarget::Http(url) => {
                    let probed = http.check(&HttpTarget { url, connect_to: None, keyword: None }).await;
                    // Any answer below 500 shows the network works, whatever the page says.
                    match (probed.failure, probed.http_status) {
                        (None, _) => Ok(()),
                        (Some(_), Some(status)) if status < 500 => Ok(()),
                        (Some(failure), _) => Err(format!("{url}: {failure} {}", probed.detail.unwrap_or_default())
                            .trim_end()
                            .to_string()),
                    }
                }
            }
        });
    }
    let mut round = ControlRound { ok: 0, total: fleet.control.targets.len(), failures: Vec::new() };
    while let Some(joined) = checks.join_next().await {
        match joined {
            Ok(Ok(())) => round.ok += 1,
            Ok(Err(line)) => round.failures.push(line),
            Err(e) => round.failures.push(format!("control check failed: {e}")),
        }
    }
    round
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_statistics_keep_the_latest_start_and_the_worst_lateness() {
        let ms = Duration::from_millis;
        let mut stats = SweepStats { spread: ms(1000), ..SweepStats::default() };
        stats.note(ms(100), ms(150)); // 50 ms late
        stats.note(ms(900), ms(905)); // the latest start, 5 ms late
        stats.note(ms(300), ms(300)); // on time
        assert_eq!(stats.checks, 3);
        assert_eq!((stats.latest_start, stats.latest_start_planned), (ms(905), ms(900)));
        assert_eq!(stats.max_lateness, ms(50));

        let mut other = SweepStats::default();
        other.note(ms(950), ms(951));
        let mut merged = SweepStats { spread: ms(1000), ..SweepStats::default() };
        merged.merge(&other);
        merged.merge(&stats);
        merged.merge(&SweepStats::default());
        assert_eq!(merged.checks, 4);
        assert_eq!((merged.latest_start, merged.latest_start_planned), (ms(951), ms(950)));
        assert_eq!(merged.max_lateness, ms(50));
    }

    #[test]
    fn offsets_are_stable_and_inside_the_window() {
        let spread = Duration::from_secs(20);
        for id in ["a", "b", "c0001-s1", "a-very-long-site-id-0123456789"] {
            let offset = spread_offset(id, spread);
            assert!(offset < spread);
            assert_eq!(offset, spread_offset(id, spread));
        }
        assert_eq!(spread_offset("a", Duration::ZERO), Duration::ZERO);
        // Offsets of many sites cover the window rather than bunching up.
        let offsets: Vec<u128> = (0..1000).map(|i| spread_offset(&format!("s{i}"), spread).as_millis()).collect();
        let first_half = offsets.iter().filter(|&&o| o < 10_000).count();
        assert!((400..=600).contains(&first_half), "{first_half}");
    }
}
