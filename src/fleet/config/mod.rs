//! The TOML configuration: raw structs as written, then checked settings.
//!
//! This file reads the whole file and checks stores, clusters, control targets, retention,
//! analysis and the status page; `probe.rs` holds the `[probe]` section and each check kind's
//! settings, `plans.rs` plans, goodwill and maintenance windows.

mod notify;
mod plans;
pub mod probe;

pub use notify::{NotifySettings, NotifyTarget, TargetKind};
pub(crate) use plans::resolve_maintenance;
use plans::{RawGoodwill, RawMaintenance, RawPlan};
use probe::{ProbeSettings, RawProbe, probe_settings};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::line_of;
use super::{Cluster, Control, ControlTarget, FleetError, FleetErrors, InvalidValue, Plan, PlanIdx, SiteUrl};

/// Where the configuration and the inventory files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A configuration file on disk; inventory paths are relative to its folder.
    Files { config_path: PathBuf, config_text: String },
    /// Files compiled into the binary (the demo fleet), looked up by name.
    Embedded { config_path: PathBuf, files: &'static [(&'static str, &'static str)] },
}

impl Source {
    pub fn config_path(&self) -> &Path {
        match self {
            Source::Files { config_path, .. } | Source::Embedded { config_path, .. } => config_path,
        }
    }

    fn config_text(&self) -> Result<&str, FleetError> {
        match self {
            Source::Files { config_text, .. } => Ok(config_text),
            Source::Embedded { config_path, files } => {
                let name = config_path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                files
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, text)| *text)
                    .ok_or_else(|| FleetError::file(config_path, "not among the embedded files"))
            }
        }
    }

    /// Resolves a path written in the configuration (relative to the configuration's folder).
    pub fn resolve(&self, relative: &str) -> PathBuf {
        let dir = self.config_path().parent().unwrap_or(Path::new(""));
        dir.join(relative)
    }

    /// Reads an inventory file named in the configuration; returns its display path and text.
    pub(crate) fn read(&self, relative: &str) -> Result<(PathBuf, String), FleetError> {
        let path = self.resolve(relative);
        match self {
            Source::Files { .. } => match std::fs::read(&path) {
                Ok(bytes) => {
                    super::error::utf8_text(&path, bytes, "a UTF-8 CSV export").map(|text| (path.clone(), text))
                }
                Err(e) => Err(FleetError::file(&path, format!("cannot read inventory file: {e}"))),
            },
            Source::Embedded { files, .. } => files
                .iter()
                .find(|(n, _)| Path::new(n) == Path::new(relative))
                .map(|(_, text)| (path.clone(), text.to_string()))
                .ok_or_else(|| FleetError::file(&path, "not among the embedded files")),
        }
    }
}

/// Where results are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreLocation {
    /// Parses `--store` or `store.url`: a path, `sqlite://PATH`, or `postgres://...`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<StoreLocation, InvalidValue> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(text.to_string()));
        }
        let path = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:")).unwrap_or(text);
        if path.is_empty() {
            return Err(InvalidValue::EmptyStorePath);
        }
        if path.contains("://") {
            return Err(InvalidValue::StoreUrl(text.to_string()));
        }
        Ok(StoreLocation::Sqlite(base_dir.join(path)))
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "{}", path.display()),
            StoreLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// How long stored data is kept (`[retention]`). Each level must be kept at least as long as
/// the one it is rolled up from, and raw data at least two days, so that a day can be rolled
/// up before its runs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Runs and their results.
    pub raw: Duration,
    /// Per-run histograms per cluster: sub-hour latency detail without decoding results. Older
    /// runs' histograms are computed from their results when asked for.
    pub run_histograms: Duration,
    /// Hour histograms per cluster.
    pub hourly: Duration,
    /// Day histograms per cluster and per site.
    pub daily: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Retention {
            raw: Duration::from_secs(35 * DAY),
            run_histograms: Duration::from_secs(2 * DAY),
            hourly: Duration::from_secs(400 * DAY),
            daily: Duration::from_secs(1_826 * DAY),
        }
    }
}

// ---- raw TOML -------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    probe: RawProbe,
    inventory: RawInventory,
    #[serde(default)]
    cluster: Vec<RawCluster>,
    #[serde(default)]
    plan: Vec<RawPlan>,
    #[serde(default)]
    maintenance: Vec<RawMaintenance>,
    #[serde(default)]
    control: RawControl,
    #[serde(default)]
    retention: RawRetention,
    #[serde(default)]
    analysis: RawAnalysis,
    #[serde(default)]
    goodwill: Vec<RawGoodwill>,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    sla: RawSla,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    notify: notify::RawNotify,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    textfile: Option<Spanned<String>>,
    #[serde(default)]
    per_site: bool,
}

/// `[metrics]`: the Prometheus textfile written after every run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where to write the node_exporter textfile collector's file (relative to the
    /// configuration's folder); `None`: no metrics file.
    pub textfile: Option<PathBuf>,
    /// One series per site as well (`fleetprobe_site_up`): a million sites are a million series,
    /// so it is off unless asked for.
    pub per_site: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSla {
    min_coverage: Option<Spanned<f64>>,
}

/// `[sla]`: when an SLA verdict may be computed at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaSettings {
    /// The share of a customer's site-time that must have been measured before its availability
    /// is judged against the target and a credit computed; below it the customer is marked for
    /// review instead.
    pub min_coverage: f64,
}

impl Default for SlaSettings {
    fn default() -> Self {
        SlaSettings { min_coverage: 0.9 }
    }
}

/// `[status]`: the public status page (`report status`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    title: Option<Spanned<String>>,
    description: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    #[serde(default)]
    show_customer_names: bool,
    slow_factor: Option<Spanned<f64>>,
    slow_above: Option<Spanned<String>>,
    slow_window: Option<Spanned<String>>,
}

/// What the public status page shows about itself and the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSettings {
    /// The page's heading and the feed's title.
    pub title: String,
    /// A line under the title.
    pub description: Option<String>,
    /// Where the page is published (absolute http(s) URL ending in `/`); links and feed ids use it.
    pub url: Option<String>,
    /// List affected customers (by name) and sites on the page; off by default.
    pub show_customer_names: bool,
    /// A cluster up but slow shows "Degraded performance": see [`SlowRule`].
    pub slow: SlowRule,
}

/// When a cluster counts as slow: its HTTP first-byte median over the last `window` is at least
/// `factor` times its median over the week before (and at least [`SlowRule::MIN_INCREASE`]
/// more), or above `above`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowRule {
    /// 0 turns the comparison with the cluster's own week off.
    pub factor: f64,
    pub above: Option<Duration>,
    pub window: Duration,
}

impl SlowRule {
    /// A median this much slower than usual at least, so that a fast cluster's noise (1 ms
    /// against 0.3 ms) is never "degraded".
    pub const MIN_INCREASE: Duration = Duration::from_millis(50);
}

impl Default for SlowRule {
    fn default() -> Self {
        SlowRule { factor: 3.0, above: None, window: Duration::from_secs(30 * 60) }
    }
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings {
            title: "Service status".into(),
            description: None,
            url: None,
            show_customer_names: false,
            slow: SlowRule::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    raw: Option<Spanned<String>>,
    run_histograms: Option<Spanned<String>>,
    hourly: Option<Spanned<String>>,
    daily: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAnalysis {
    incident_merge_gap: Option<Spanned<String>>,
    major_share: Option<Spanned<f64>>,
    quorum: Option<Spanned<RawQuorum>>,
}

/// `analysis.quorum` as written: a word or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawQuorum {
    Number(i64),
    Word(String),
}

/// How many of the vantages measuring a site must see it fail before it counts as down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    /// More than half: `⌊k/2⌋ + 1` of `k`.
    #[default]
    Majority,
    /// Every vantage measuring the site.
    All,
    /// One is enough.
    Any,
    /// At least this many (all of them when fewer measure).
    AtLeast(u32),
}

impl Quorum {
    /// The vantages that must agree when `measuring` vantages have a valid run (`measuring > 0`).
    pub fn needed(self, measuring: u32) -> u32 {
        match self {
            Quorum::Majority => measuring / 2 + 1,
            Quorum::All => measuring,
            Quorum::Any => 1,
            Quorum::AtLeast(n) => n.min(measuring),
        }
        .max(1)
    }
}

impl std::fmt::Display for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quorum::Majority => f.write_str("majority"),
            Quorum::All => f.write_str("all"),
            Quorum::Any => f.write_str("any"),
            Quorum::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

/// How outages become incidents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisSettings {
    /// Outages of one cluster separated by less than this are one incident.
    pub incident_merge_gap: Duration,
    /// An incident that hits more than this share of a cluster's customers is `major`.
    pub major_share: f64,
    /// With several vantages: how many must see a site fail for it to be down.
    pub quorum: Quorum,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    sites: String,
    customers: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Spanned<String>,
    #[serde(default)]
    frontends: Vec<Spanned<String>>,
    #[serde(default)]
    nameservers: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    min_ok: Option<Spanned<WholeNumber>>,
}

/// The configuration after its own checks, before the inventory is read.
pub(crate) struct Parsed {
    pub store: StoreLocation,
    pub probe: ProbeSettings,
    pub clusters: Vec<Cluster>,
    pub cluster_index: HashMap<String, usize>,
    pub plans: Vec<Plan>,
    pub plan_index: HashMap<String, PlanIdx>,
    pub inventory_sites: String,
    pub inventory_customers: String,
    pub control: Control,
    pub retention: Retention,
    pub analysis: AnalysisSettings,
    pub goodwill: Vec<super::Goodwill>,
    pub status: StatusSettings,
    pub sla: SlaSettings,
    pub metrics: MetricsSettings,
    pub notify: NotifySettings,
    raw_maintenance: Vec<RawMaintenance>,
}

/// Helper that turns spans into line numbers for one file.
struct At<'a> {
    path: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn err<T>(&self, spanned: &Spanned<T>, field: impl Into<String>, message: impl std::fmt::Display) -> FleetError {
        FleetError::at(self.path, Some(line_of(self.text, spanned.span().start)), field, message)
    }
}

pub(crate) fn parse(source: &Source, errors: &mut FleetErrors) -> Option<Parsed> {
    let path = source.config_path();
    let text = match source.config_text() {
        Ok(text) => text,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            let field = e.span().and_then(|s| field_at(text, s.start));
            let message = super::error::cut_values(&e.message().replace("expected usize", "expected a whole number"));
            errors.push(FleetError { file: path.to_path_buf(), line, field, message });
            return None;
        }
    };
    let at = At { path, text };
    let base_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();

    let store = match raw.store.url.as_deref() {
        None => StoreLocation::Sqlite(base_dir.join("fleetprobe.db")),
        Some(url) => StoreLocation::parse(url, &base_dir).unwrap_or_else(|message| {
            errors.push(FleetError::at(path, None, "store.url", message));
            StoreLocation::Sqlite(base_dir.join("fleetprobe.db"))
        }),
    };

    let probe = probe_settings(raw.probe, &at, &base_dir, errors);
    let retention = retention(&raw.retention, &at, errors);

    let mut clusters = Vec::new();
    let mut cluster_index = HashMap::new();
    for (i, rc) in raw.cluster.into_iter().enumerate() {
        let field = |f: &str| format!("cluster[{i}].{f}");
        let name = rc.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            errors.push(at.err(
                &rc.name,
                field("name"),
                format!("`{name}` is not a valid cluster name; expected letters, digits, '-', '_' or '.'"),
            ));
        } else if cluster_index.contains_key(&name) {
            errors.push(at.err(&rc.name, field("name"), format!("duplicate cluster `{name}`")));
        }
        let mut frontends = Vec::new();
        for f in &rc.frontends {
            match f.get_ref().trim().parse::<IpAddr>() {
                Ok(ip) => frontends.push(ip),
                Err(_) => errors.push(at.err(
                    f,
                    field("frontends"),
                    format!("`{}` is not an IP address; expected e.g. 192.0.2.10 or 2001:db8::10", f.get_ref()),
                )),
            }
        }
        let mut nameservers = Vec::new();
        for ns in &rc.nameservers {
            match parse_socket_addr(ns.get_ref(), 53) {
                Ok(addr) => nameservers.push(addr),
                Err(m) => errors.push(at.err(ns, field("nameservers"), m)),
            }
        }
        cluster_index.insert(name.clone(), clusters.len());
        clusters.push(Cluster { name, frontends, nameservers });
    }
    if clusters.is_empty() {
        errors.push(FleetError::at(
            path,
            None,
            "cluster",
            "no clusters defined; expected at least one [[cluster]] table",
        ));
    }

    let (plans, plan_index) = plans::plans(raw.plan, &at, errors);

    // Without control targets there is nothing to require; with some, one answering is enough by default.
    let default_min_ok = usize::from(!raw.control.targets.is_empty());
    let min_ok =
        at.number(&raw.control.min_ok, "control.min_ok", 0..=raw.control.targets.len(), default_min_ok, errors);
    let mut control = Control { targets: Vec::new(), min_ok };
    for (i, t) in raw.control.targets.iter().enumerate() {
        let text = t.get_ref().trim();
        let target = if let Some(addr) = text.strip_prefix("tcp://") {
            parse_socket_addr(addr, 0).and_then(|a| {
                if a.port() == 0 { Err(InvalidValue::ControlTargetWithoutPort) } else { Ok(ControlTarget::Tcp(a)) }
            })
        } else {
            SiteUrl::parse(text).map(ControlTarget::Http)
        };
        match target {
            Ok(t) => control.targets.push(t),
            Err(m) => errors.push(at.err(t, format!("control.targets[{i}]"), m)),
        }
    }
    if control.min_ok > control.targets.len() {
        // Some targets were bad: the count is checked against the good ones.
        control.min_ok = control.targets.len();
    }

    let incident_merge_gap = at.duration(
        &raw.analysis.incident_merge_gap,
        "analysis.incident_merge_gap",
        (Duration::ZERO, Duration::from_secs(86_400)),
        Duration::from_secs(5 * 60),
        errors,
    );
    let major_share = match &raw.analysis.major_share {
        None => 0.5,
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            errors.push(at.err(
                v,
                "analysis.major_share",
                format!("{} is not a share; expected a number from 0 to 1, e.g. 0.5", v.get_ref()),
            ));
            0.5
        }
    };

    let quorum = match &raw.analysis.quorum {
        None => Quorum::default(),
        Some(v) => match v.get_ref() {
            RawQuorum::Word(w) if w == "majority" => Quorum::Majority,
            RawQuorum::Word(w) if w == "all" => Quorum::All,
            RawQuorum::Word(w) if w == "any" => Quorum::Any,
            RawQuorum::Number(n) if (1..=1024).contains(n) => Quorum::AtLeast(*n as u32),
            other => {
                let shown = match other {
                    RawQuorum::Word(w) => format!("{w:?}"),
                    RawQuorum::Number(n) => n.to_string(),
                };
                errors.push(at.err(
                    v,
                    "analysis.quorum",
                    format!("{shown} is not a quorum; expected \"majority\", \"all\", \"any\" or a number of vantages from 1 to 1024"),
                ));
                Quorum::default()
            }
        },
    };

    let goodwill = plans::goodwill(&raw.goodwill, &clusters, &at, errors);

    let status = status_settings(&raw.status, &at, errors);
    let metrics = MetricsSettings {
        textfile: match &raw.metrics.textfile {
            None => None,
            Some(v) if v.get_ref().trim().is_empty() || !v.get_ref().ends_with(".prom") => {
                errors.push(at.err(
                    v,
                    "metrics.textfile",
                    "expected a file name ending in .prom, as node_exporter's textfile collector reads, e.g. /var/lib/node_exporter/textfile/fleetprobe.prom",
                ));
                None
            }
            Some(v) => Some(base_dir.join(v.get_ref())),
        },
        per_site: raw.metrics.per_site,
    };
    let notify = notify::notify_settings(&raw.notify, &cluster_index, &at, errors);
    let sla = match &raw.sla.min_coverage {
        None => SlaSettings::default(),
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => SlaSettings { min_coverage: *v.get_ref() },
        Some(v) => {
            errors.push(at.err(
                v,
                "sla.min_coverage",
                format!("{} is not a share; expected a number from 0 to 1, e.g. 0.9", v.get_ref()),
            ));
            SlaSettings::default()
        }
    };

    Some(Parsed {
        store,
        probe,
        clusters,
        cluster_index,
        plans,
        plan_index,
        inventory_sites: raw.inventory.sites,
        inventory_customers: raw.inventory.customers,
        control,
        retention,
        analysis: AnalysisSettings { incident_merge_gap, major_share, quorum },
        goodwill,
        status,
        sla,
        metrics,
        notify,
        raw_maintenance: raw.maintenance,
    })
}

/// Checks `[status]`: a short one-line title and description, an absolute http(s) URL.
fn status_settings(raw: &RawStatus, at: &At, errors: &mut FleetErrors) -> StatusSettings {
    let mut status = StatusSettings { show_customer_names: raw.show_customer_names, ..StatusSettings::default() };
    let mut text = |value: &Option<Spanned<String>>, field: &str, max: usize| -> Option<String> {
        let v = value.as_ref()?;
        let trimmed = v.get_ref().trim();
        if trimmed.is_empty() || trimmed.chars().count() > max || trimmed.chars().any(char::is_control) {
            errors.push(at.err(
                v,
                field,
                format!("expected one line of text, 1 to {max} characters, e.g. \"Example Hosting status\""),
            ));
            return None;
        }
        Some(trimmed.to_string())
    };
    if let Some(title) = text(&raw.title, "status.title", 100) {
        status.title = title;
    }
    status.description = text(&raw.description, "status.description", 300);
    if let Some(url) = text(&raw.url, "status.url", 500) {
        let well_formed = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | '\\'));
        match raw.url.as_ref() {
            Some(v) if !well_formed => errors.push(at.err(
                v,
                "status.url",
                format!("`{url}` is not an http(s) URL; expected where the page is published, e.g. https://status.example.net/"),
            )),
            _ => status.url = Some(if url.ends_with('/') { url } else { format!("{url}/") }),
        }
    }
    let defaults = SlowRule::default();
    status.slow.factor = match &raw.slow_factor {
        None => defaults.factor,
        Some(v) if *v.get_ref() == 0.0 || (1.5..=100.0).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            errors.push(at.err(
                v,
                "status.slow_factor",
                format!("{} is out of range; expected 0 (off) or 1.5 to 100, e.g. 3", v.get_ref()),
            ));
            defaults.factor
        }
    };
    let hour = Duration::from_secs(3_600);
    status.slow.above = raw
        .slow_above
        .as_ref()
        .map(|_| at.duration(&raw.slow_above, "status.slow_above", (Duration::from_millis(1), hour), hour, errors));
    status.slow.window = at.duration(
        &raw.slow_window,
        "status.slow_window",
        (Duration::from_secs(60), Duration::from_secs(86_400)),
        defaults.window,
        errors,
    );
    status
}

fn retention(raw: &RawRetention, at: &At, errors: &mut FleetErrors) -> Retention {
    let defaults = Retention::default();
    // Up to a century: longer ones would overflow date arithmetic.
    let bounds = (Duration::ZERO, Duration::from_secs(36_500 * 86_400));
    let mut duration = |value: &Option<Spanned<String>>, field: &str, default: Duration| {
        at.duration(value, field, bounds, default, errors)
    };
    let kept = Retention {
        raw: duration(&raw.raw, "retention.raw", defaults.raw),
        run_histograms: duration(&raw.run_histograms, "retention.run_histograms", defaults.run_histograms),
        hourly: duration(&raw.hourly, "retention.hourly", defaults.hourly),
        daily: duration(&raw.daily, "retention.daily", defaults.daily),
    };
    let days = |d: Duration| format!("{}d", d.as_secs() as f64 / 86_400.0);
    let mut check = |ok: bool, value: &Option<Spanned<String>>, field: &str, message: String| {
        if !ok {
            match value {
                Some(v) => errors.push(at.err(v, field, message)),
                None => errors.push(FleetError::at(at.path, at.line(&raw.raw), field, message)),
            }
        }
    };
    check(
        kept.raw >= Duration::from_secs(2 * 86_400),
        &raw.raw,
        "retention.raw",
        format!(
            "{} is too short; expected at least \"2d\" so each day is rolled up before its runs go",
            days(kept.raw)
        ),
    );
    check(
        kept.hourly >= kept.raw,
        &raw.hourly,
        "retention.hourly",
        format!("{} is shorter than retention.raw ({}); expected at least as long", days(kept.hourly), days(kept.raw)),
    );
    check(
        kept.daily >= kept.hourly,
        &raw.daily,
        "retention.daily",
        format!(
            "{} is shorter than retention.hourly ({}); expected at least as long",
            days(kept.daily),
            days(kept.hourly)
        ),
    );
    kept
}

/// The key path (`probe.concurrency`, `cluster[1].frontends[0]`) of the value or key at byte
/// `offset` of a TOML text, for errors the TOML reader reports with a position only.
fn field_at(text: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    fn in_table(table: &DeTable, offset: usize, path: &str) -> Option<String> {
        table.iter().find_map(|(key, value)| {
            let here = if path.is_empty() { key.get_ref().to_string() } else { format!("{path}.{}", key.get_ref()) };
            in_value(value, offset, &here)
                .or_else(|| (key.span().contains(&offset) || value.span().contains(&offset)).then_some(here))
        })
    }
    fn in_value(value: &Spanned<DeValue>, offset: usize, path: &str) -> Option<String> {
        match value.get_ref() {
            DeValue::Table(table) => in_table(table, offset, path),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let here = format!("{path}[{i}]");
                in_value(item, offset, &here).or_else(|| item.span().contains(&offset).then_some(here))
            }),
            _ => None,
        }
    }
    let document = DeTable::parse(text).ok()?;
    in_table(document.get_ref(), offset, "")
}

/// A whole number as written, however large or negative, so that its range is checked with
/// the field's own words rather than by the TOML reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WholeNumber(pub i128);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(i128::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(i128::from(v)))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl At<'_> {
    /// A whole number within `range` (`default` when absent); out of range is an error naming
    /// the field, the line and the range, and gives `default`.
    fn number<T>(
        &self,
        value: &Option<Spanned<WholeNumber>>,
        field: &str,
        range: std::ops::RangeInclusive<T>,
        default: T,
        errors: &mut FleetErrors,
    ) -> T
    where
        T: Copy + TryInto<i128> + TryFrom<i128> + std::fmt::Display,
    {
        let Some(v) = value else { return default };
        let n = v.get_ref().0;
        let (low, high) = ((*range.start()).try_into().ok(), (*range.end()).try_into().ok());
        if low.is_none_or(|low| n < low) || high.is_none_or(|high| n > high) {
            errors.push(self.err(
                v,
                field,
                format!("{n} is out of range; expected {} to {}", range.start(), range.end()),
            ));
            return default;
        }
        T::try_from(n).unwrap_or(default)
    }

    /// A duration within `min..=max` (`default` when absent or bad), each error with its line.
    fn duration(
        &self,
        value: &Option<Spanned<String>>,
        field: &str,
        (min, max): (Duration, Duration),
        default: Duration,
        errors: &mut FleetErrors,
    ) -> Duration {
        let Some(v) = value else { return default };
        match super::parse_duration(v.get_ref()) {
            Ok(d) if d < min || d > max => {
                errors.push(self.err(
                    v,
                    field,
                    format!("{} is out of range; expected {} to {}", cut(v.get_ref()), show(min), show(max)),
                ));
                default
            }
            Ok(d) => d,
            Err(m) => {
                errors.push(self.err(v, field, m));
                default
            }
        }
    }

    /// The line of a value, for errors that compare it with another field.
    fn line<T>(&self, value: &Option<Spanned<T>>) -> Option<u64> {
        value.as_ref().map(|v| line_of(self.text, v.span().start))
    }
}

/// A duration as written in the configuration (`"300ms"`, `"5m"`, `"1d"`).
pub(crate) fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".into(),
        _ if ms.is_multiple_of(86_400_000) => format!("\"{}d\"", ms / 86_400_000),
        _ if ms.is_multiple_of(3_600_000) => format!("\"{}h\"", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("\"{}m\"", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("\"{}s\"", ms / 1000),
        _ => format!("\"{ms}ms\""),
    }
}

/// A value shown in an error: cut at 80 characters.
pub(crate) fn cut(text: &str) -> String {
    super::error::cut(text)
}

/// Names of clusters, plans: printable, no spaces, usable in file names and URLs.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

pub(crate) fn known<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    let shown: Vec<&str> = names.iter().take(10).copied().collect();
    let more = if names.len() > 10 { format!(" (and {} more)", names.len() - 10) } else { String::new() };
    if shown.is_empty() { "(none defined)".into() } else { format!("{}{more}", shown.join(", ")) }
}

/// Parses `192.0.2.1`, `192.0.2.1:5353`, `[2001:db8::1]:53` or `2001:db8::1`.
pub(crate) fn parse_socket_addr(text: &str, default_port: u16) -> Result<SocketAddr, InvalidValue> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(InvalidValue::SocketAddr(text.to_string()))
}

/// Parses "200", "200-299" or "2xx".
pub(crate) fn parse_status_range(text: &str) -> Result<(u16, u16), InvalidValue> {
    let text = text.trim();
    let bad = || InvalidValue::StatusRange(text.to_string());
    let status = |s: &str| s.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    if let Some(class) = text.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()).filter(|c| (1..=5).contains(c)) {
        return Ok((class * 100, class * 100 + 99));
    }
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (status(a).ok_or_else(bad)?, status(b).ok_or_else(bad)?);
        return if a <= b { Ok((a, b)) } else { Err(bad()) };
    }
    status(text).map(|s| (s, s)).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200").unwrap(), (200, 200));
        assert_eq!(parse_status_range("200-399").unwrap(), (200, 399));
        assert_eq!(parse_status_range("2xx").unwrap(), (200, 299));
        assert!(parse_status_range("399-200").is_err());
        assert!(parse_status_range("99").is_err());
        assert!(parse_status_range("abc").is_err());
    }

    #[test]
    fn socket_addrs() {
        assert_eq!(parse_socket_addr("127.0.0.1", 53).unwrap(), "127.0.0.1:53".parse().unwrap());
        assert_eq!(parse_socket_addr("127.0.0.1:5353", 53).unwrap(), "127.0.0.1:5353".parse().unwrap());
        assert_eq!(parse_socket_addr("::1", 53).unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_socket_addr("ns1.example", 53).is_err());
    }

    #[test]
    fn store_locations() {
        let base = Path::new("/etc/fleetprobe");
        assert_eq!(StoreLocation::parse("fp.db", base).unwrap(), StoreLocation::Sqlite("/etc/fleetprobe/fp.db".into()));
        assert_eq!(
            StoreLocation::parse("sqlite:///var/lib/fp.db", base).unwrap(),
            StoreLocation::Sqlite("/var/lib/fp.db".into())
        );
        assert!(matches!(StoreLocation::parse("postgres://u@h/db", base).unwrap(), StoreLocation::Postgres(_)));
        assert!(StoreLocation::parse("mysql://x", base).is_err());
    }
}
