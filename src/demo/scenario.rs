//! The demo's scenario: what breaks, where and when, in simulated time. Read from a TOML file
//! (`probes/demo-scenario.toml`) that a user can edit; validated with file, line and field.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::fleet::{ClusterIdx, Fleet, FleetError, FleetErrors, SiteIdx, parse_duration};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    start: Spanned<String>,
    duration: Spanned<String>,
    interval: Spanned<String>,
    #[serde(default)]
    fault: Vec<RawFault>,
    path_break: Option<RawPathBreak>,
}

/// With several vantages: the last vantage's path to one cluster breaks over [from, to).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPathBreak {
    cluster: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    name: String,
    kind: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<String>,
    cluster: Option<Spanned<String>>,
    /// Share of the cluster's sites hit (the first ones in inventory order), 0 to 1.
    share: Option<f64>,
    customers: Option<Vec<Spanned<String>>>,
    /// For `slow`: the delay before the first byte.
    delay: Option<Spanned<String>>,
}

/// How a faulty site misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The web server answers 503.
    Http503,
    /// The web server answers after a delay (latency, not an outage).
    Slow(Duration),
    /// The site's name is gone from its zone.
    Nxdomain,
    /// The nameserver answers SERVFAIL for the site.
    Servfail,
}

#[derive(Debug, Clone)]
pub struct ScenarioFault {
    pub name: String,
    pub kind: FaultKind,
    pub from_ms: i64,
    pub to_ms: i64,
    pub sites: HashSet<SiteIdx>,
}

/// The last vantage's connections to one cluster's frontends are closed unanswered over
/// [from, to): its own path is broken, the cluster is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathBreak {
    pub cluster: ClusterIdx,
    pub from_ms: i64,
    pub to_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub start_ms: i64,
    pub runs: u32,
    pub interval: Duration,
    pub faults: Vec<ScenarioFault>,
    /// Played only with several vantages.
    pub path_break: Option<PathBreak>,
}

impl Scenario {
    pub fn parse(path: &Path, text: &str, fleet: &Fleet) -> Result<Scenario, FleetErrors> {
        let mut errors = FleetErrors::default();
        let line = |offset: usize| text[..offset.min(text.len())].matches('\n').count() as u64 + 1;
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            FleetErrors::one(FleetError {
                file: path.to_path_buf(),
                line: e.span().map(|s| line(s.start)),
                field: None,
                message: e.message().to_string(),
            })
        })?;
        let mut err = |span: std::ops::Range<usize>, field: String, message: String| {
            errors.push(FleetError::at(path, Some(line(span.start)), field, message));
        };
        let time = |v: &Spanned<String>, field: &str, err: &mut dyn FnMut(std::ops::Range<usize>, String, String)| {
            v.get_ref().parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).unwrap_or_else(|_| {
                err(
                    v.span(),
                    field.into(),
                    format!("`{}` is not a UTC time; expected e.g. 2026-10-14T22:00:00Z", v.get_ref()),
                );
                0
            })
        };
        let span = |v: &Spanned<String>, field: &str, err: &mut dyn FnMut(std::ops::Range<usize>, String, String)| {
            parse_duration(v.get_ref()).unwrap_or_else(|m| {
                err(v.span(), field.into(), m.to_string());
                Duration::from_secs(60)
            })
        };
        let start_ms = time(&raw.start, "start", &mut err);
        let duration = span(&raw.duration, "duration", &mut err);
        let interval = span(&raw.interval, "interval", &mut err).max(Duration::from_secs(1));
        let runs = (duration.as_secs() / interval.as_secs().max(1)).min(20_000) as u32;
        let mut faults = Vec::new();
        for (i, f) in raw.fault.iter().enumerate() {
            let field = |name: &str| format!("fault[{i}].{name}");
            let kind = match f.kind.get_ref().as_str() {
                "http_503" => FaultKind::Http503,
                "nxdomain" => FaultKind::Nxdomain,
                "servfail" => FaultKind::Servfail,
                "slow" => match &f.delay {
                    Some(d) => FaultKind::Slow(span(d, &field("delay"), &mut err)),
                    None => {
                        err(f.kind.span(), field("delay"), "a `slow` fault needs a `delay`, e.g. \"150ms\"".into());
                        FaultKind::Slow(Duration::ZERO)
                    }
                },
                other => {
                    err(
                        f.kind.span(),
                        field("kind"),
                        format!("unknown kind `{other}`; expected http_503, slow, nxdomain or servfail"),
                    );
                    // Reported; the rest of the fault is still checked, so every problem shows at once.
                    FaultKind::Http503
                }
            };
            let from_ms = time(&f.from, &field("from"), &mut err);
            let to_ms = time(&f.to, &field("to"), &mut err);
            let mut sites = HashSet::new();
            if let Some(cluster) = &f.cluster {
                match fleet.cluster_index(cluster.get_ref()) {
                    Some(c) => sites.extend(share_of_cluster(fleet, c, f.share.unwrap_or(1.0))),
                    None => err(cluster.span(), field("cluster"), format!("unknown cluster `{}`", cluster.get_ref())),
                }
            }
            for customer in f.customers.iter().flatten() {
                match fleet.customers.iter().position(|c| &c.id == customer.get_ref()) {
                    Some(c) => sites.extend((0..fleet.sites.len()).filter(|&s| fleet.sites[s].customer == c)),
                    None => {
                        err(customer.span(), field("customers"), format!("unknown customer `{}`", customer.get_ref()))
                    }
                }
            }
            if sites.is_empty() && f.cluster.is_none() && f.customers.is_none() {
                err(
                    f.kind.span(),
                    format!("fault[{i}]"),
                    "expected a `cluster` (with an optional `share`) or `customers`".into(),
                );
            }
            faults.push(ScenarioFault { name: f.name.clone(), kind, from_ms, to_ms, sites });
        }
        let path_break = raw.path_break.as_ref().and_then(|p| {
            let from_ms = time(&p.from, "path_break.from", &mut err);
            let to_ms = time(&p.to, "path_break.to", &mut err);
            match fleet.cluster_index(p.cluster.get_ref()) {
                Some(cluster) => Some(PathBreak { cluster, from_ms, to_ms }),
                None => {
                    err(
                        p.cluster.span(),
                        "path_break.cluster".into(),
                        format!("unknown cluster `{}`", p.cluster.get_ref()),
                    );
                    None
                }
            }
        });
        if errors.is_empty() { Ok(Scenario { start_ms, runs, interval, faults, path_break }) } else { Err(errors) }
    }

    /// The start of run `n` in simulated time.
    pub fn run_at(&self, n: u32) -> i64 {
        self.start_ms + i64::from(n) * self.interval.as_millis() as i64
    }

    /// The cluster the last vantage cannot reach at `at_ms`, if its path is broken then.
    pub fn broken_path(&self, at_ms: i64) -> Option<ClusterIdx> {
        self.path_break.as_ref().filter(|p| p.from_ms <= at_ms && at_ms < p.to_ms).map(|p| p.cluster)
    }

    /// What is wrong with each site at `at_ms`: the faults active then, in file order.
    pub fn active(&self, at_ms: i64) -> impl Iterator<Item = &ScenarioFault> {
        self.faults.iter().filter(move |f| f.from_ms <= at_ms && at_ms < f.to_ms)
    }
}

/// The first `share` of a cluster's sites in inventory order (at least one when share > 0).
fn share_of_cluster(fleet: &Fleet, cluster: ClusterIdx, share: f64) -> Vec<SiteIdx> {
    let sites: Vec<SiteIdx> = (0..fleet.sites.len()).filter(|&s| fleet.sites[s].cluster == cluster).collect();
    let count = ((sites.len() as f64 * share.clamp(0.0, 1.0)).round() as usize).max(usize::from(share > 0.0));
    sites.into_iter().take(count).collect()
}
