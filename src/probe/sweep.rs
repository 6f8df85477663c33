//! The sweep: every check of the fleet, once, under concurrency limits and spread over a window.
//!
//! Each site gets a fixed start offset inside the spread window (a hash of its id), so it is
//! probed at the same point of every interval and the fleet never sees one burst. One dispatcher
//! per cluster walks its sites in offset order and takes a cluster permit, then a global permit
//! (tokio's semaphore is fair, so clusters take turns); a cluster that is slow to answer holds only
//! its own permits and cannot starve the others. Results stream out through a channel to a single
//! writer; the sweep itself never touches the store.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use super::http::{HttpProber, HttpTarget};
use super::{CheckKind, CheckResult, Probed, dns};
use crate::fleet::{ControlTarget, ExpectedAddresses, Fleet, SiteIdx, Via};

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
}

/// Runs every check of the fleet once and sends each result to `results`.
///
/// `started_at_ms` is the run's start on the wall (or simulated) clock; each result's own start is
/// that plus the real time elapsed since. Returns when every check has been sent, or early when
/// the receiver is gone (the writer failed), with how well the checks kept to their planned starts.
pub async fn sweep(
    fleet: Arc<Fleet>,
    http: HttpProber,
    started_at_ms: i64,
    results: mpsc::Sender<CheckResult>,
) -> SweepStats {
    let start = Instant::now();
    let stats = Arc::new(std::sync::Mutex::new(SweepStats { spread: fleet.probe.spread, ..SweepStats::default() }));
    let global = Arc::new(Semaphore::new(fleet.probe.concurrency));
    let mut per_cluster: Vec<Vec<(Duration, SiteIdx, CheckKind)>> = vec![Vec::new(); fleet.clusters.len()];
    for (idx, site) in fleet.sites.iter().enumerate() {
        let offset = spread_offset(&site.id, fleet.probe.spread);
        for kind in CheckKind::ALL {
            let wanted = match kind {
                CheckKind::Http => site.checks.http,
                CheckKind::Dns => site.checks.dns,
            };
            if wanted {
                per_cluster[site.cluster].push((offset, idx, kind));
            }
        }
    }
    let mut dispatchers = tokio::task::JoinSet::new();
    for checks in per_cluster.into_iter().filter(|c| !c.is_empty()) {
        let mut checks = checks;
        checks.sort_unstable_by_key(|&(offset, idx, kind)| (offset, idx, kind));
        let cluster_permits = Arc::new(Semaphore::new(fleet.probe.cluster_concurrency));
        let (fleet, http, global, results) = (fleet.clone(), http.clone(), global.clone(), results.clone());
        let stats = stats.clone();
        dispatchers.spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            for (offset, site, kind) in checks {
                tokio::time::sleep_until(start + offset).await;
                let Ok(cluster_permit) = cluster_permits.clone().acquire_owned().await else { return };
                let Ok(global_permit) = global.clone().acquire_owned().await else { return };
                let (fleet, http, sender) = (fleet.clone(), http.clone(), results.clone());
                let (cluster_permits, global, stats) = (cluster_permits.clone(), global.clone(), stats.clone());
                running.spawn(async move {
                    let mut permits = Some((cluster_permit, global_permit));
                    let mut attempts = 1u8;
                    loop {
                        let attempt_start = Instant::now();
                        if attempts == 1 {
                            let started = attempt_start - start;
                            stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner).note(offset, started);
                        }
                        let probed = check_once(&fleet, &http, site, kind).await;
                        let out_of_attempts = u32::from(attempts) > fleet.probe.retries;
                        if probed.failure.is_none() || out_of_attempts {
                            drop(permits.take());
                            let started_at_ms = started_at_ms + (attempt_start - start).as_millis() as i64;
                            let result = CheckResult {
                                site,
                                check: kind,
                                outcome: probed.outcome(),
                                started_at_ms,
                                attempts,
                                http_status: probed.http_status,
                                timings: probed.timings,
                                cert_not_after: probed.cert_not_after,
                                detail: probed.detail,
                            };
                            let _ = sender.send(result).await;
                            return;
                        }
                        // Let other checks use the permits while this one waits to retry.
                        drop(permits.take());
                        tokio::time::sleep(fleet.probe.retry_delay).await;
                        let Ok(c) = cluster_permits.clone().acquire_owned().await else { return };
                        let Ok(g) = global.clone().acquire_owned().await else { return };
                        permits = Some((c, g));
                        attempts = attempts.saturating_add(1);
                    }
                });
                if results.is_closed() {
                    return;
                }
                // Reap finished checks so the set does not grow with the fleet.
                while running.try_join_next().is_some() {}
            }
            while running.join_next().await.is_some() {}
        });
    }
    while dispatchers.join_next().await.is_some() {}
    let stats = *stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    SweepStats { elapsed: start.elapsed(), ..stats }
}

/// One attempt of one check of one site.
pub async fn check_once(fleet: &Fleet, http: &HttpProber, site_idx: SiteIdx, kind: CheckKind) -> Probed {
    let site = &fleet.sites[site_idx];
    let cluster = &fleet.clusters[site.cluster];
    match kind {
        CheckKind::Http => {
            let connect_to = match fleet.probe.http.via {
                Via::Dns => None,
                Via::Frontend => pick(&cluster.frontends, &site.id),
            };
            let target = HttpTarget { url: &site.url, connect_to, keyword: site.keyword.as_deref() };
            http.check(&target).await
        }
        CheckKind::Dns => {
            let expected: &[IpAddr] = match &site.expected_addresses {
                ExpectedAddresses::ClusterFrontends => &cluster.frontends,
                ExpectedAddresses::Any => &[],
                ExpectedAddresses::List(list) => list,
            };
            let servers: &[SocketAddr] =
                if cluster.nameservers.is_empty() { &fleet.probe.resolvers } else { &cluster.nameservers };
            dns::check(&site.hostname, expected, &fleet.probe.dns, servers, fleet.probe.timeouts.dns).await
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

/// Picks one of several frontends for a site, the same one every run.
fn pick(frontends: &[IpAddr], site_id: &str) -> Option<IpAddr> {
    if frontends.is_empty() {
        return None;
    }
    frontends.get((fnv1a(site_id) % frontends.len() as u64) as usize).copied()
}

/// FNV-1a: a fixed hash, so offsets and frontend choices stay the same across builds.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
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
pub async fn control_round(fleet: &Fleet, http: &HttpProber) -> ControlRound {
    let mut checks = tokio::task::JoinSet::new();
    for target in fleet.control.targets.clone() {
        let http = http.clone();
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
