//! The TOML configuration: raw structs as written, then checked settings.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::line_of;
use super::{
    Cluster, Control, ControlTarget, CreditTier, FleetError, FleetErrors, InvalidValue, MaintenanceScope,
    MaintenanceWindow, Plan, PlanIdx, SiteIdx, SiteUrl, parse_duration,
};

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
                Ok(bytes) => String::from_utf8(bytes).map(|text| (path.clone(), text)).map_err(|e| {
                    FleetError::file(
                        &path,
                        format!(
                            "not UTF-8 text (invalid byte at offset {}); expected a UTF-8 CSV export",
                            e.utf8_error().valid_up_to()
                        ),
                    )
                }),
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

/// How the prober runs a sweep.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// Name of this prober (its vantage point), stored with every run.
    pub vantage: String,
    /// Expected time between runs; a longer gap is unmonitored time.
    pub interval: Duration,
    /// Check start times are spread over this window so the fleet is not hit all at once.
    pub spread: Duration,
    /// Checks in flight at once, over the whole fleet.
    pub concurrency: usize,
    /// Checks in flight at once against one cluster.
    pub cluster_concurrency: usize,
    /// Extra attempts for a failed check within the same sweep.
    pub retries: u32,
    pub retry_delay: Duration,
    pub timeouts: Timeouts,
    /// Resolvers for HTTP checks that go through DNS, and for DNS checks of clusters without
    /// nameservers. Empty: the system's (/etc/resolv.conf).
    pub resolvers: Vec<SocketAddr>,
    /// Extra trusted CA certificates (PEM), e.g. a provider's internal CA.
    pub ca_file: Option<PathBuf>,
    pub http: HttpSettings,
    pub dns: DnsSettings,
    /// Consecutive failed runs before a site outage is confirmed (plans may override).
    pub confirm_after: u32,
}

/// A timeout for every phase of a check, and one for the whole check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub first_byte: Duration,
    pub body: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            dns: Duration::from_secs(2),
            connect: Duration::from_secs(3),
            tls: Duration::from_secs(3),
            first_byte: Duration::from_secs(5),
            body: Duration::from_secs(5),
            total: Duration::from_secs(10),
        }
    }
}

/// Where an HTTP check connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Resolve the site's hostname and connect to the answer (what a visitor does).
    Dns,
    /// Connect to the cluster's frontend address with the site's Host header and SNI, so the web
    /// tier is judged apart from DNS.
    Frontend,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub via: Via,
    /// Accepted status ranges, inclusive.
    pub expect_status: Vec<(u16, u16)>,
    /// A text the body must contain (sites may set their own).
    pub keyword: Option<String>,
    /// At most this many body bytes are read (the keyword must appear within them).
    pub max_body_bytes: usize,
    pub max_redirects: u32,
    pub user_agent: String,
}

/// Record type a DNS check asks for (named as in DNS).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum RecordKind {
    A,
    AAAA,
}

#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub record_type: RecordKind,
    /// Retry over TCP when a UDP answer is truncated.
    pub tcp_fallback: bool,
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
}

/// What the public status page shows about itself and the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSettings {
    /// The page's heading and the feed's title.
    pub title: String,
    /// A line under the title.
    pub description: Option<String>,
    /// Where the page is published (absolute http(s) URL ending in `/`); links and feed ids use it.
    pub url: Option<String>,
    /// List affected customers (by name) and sites on the page; off by default.
    pub show_customer_names: bool,
}

impl Default for StatusSettings {
    fn default() -> Self {
        StatusSettings { title: "Service status".into(), description: None, url: None, show_customer_names: false }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGoodwill {
    incident: Spanned<String>,
    months: Spanned<f64>,
    #[serde(default)]
    note: String,
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
}

/// How outages become incidents.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisSettings {
    /// Outages of one cluster separated by less than this are one incident.
    pub incident_merge_gap: Duration,
    /// An incident that hits more than this share of a cluster's customers is `major`.
    pub major_share: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    vantage: Option<String>,
    interval: Option<Spanned<String>>,
    spread: Option<Spanned<String>>,
    concurrency: Option<usize>,
    cluster_concurrency: Option<usize>,
    retries: Option<u32>,
    retry_delay: Option<Spanned<String>>,
    #[serde(default)]
    resolvers: Vec<Spanned<String>>,
    ca_file: Option<String>,
    confirm_after: Option<u32>,
    #[serde(default)]
    timeouts: RawTimeouts,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    dns: RawDns,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    dns: Option<Spanned<String>>,
    connect: Option<Spanned<String>>,
    tls: Option<Spanned<String>>,
    first_byte: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    total: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    via: Option<Via>,
    expect_status: Option<Vec<Spanned<String>>>,
    keyword: Option<String>,
    max_body_bytes: Option<usize>,
    max_redirects: Option<u32>,
    user_agent: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDns {
    record_type: Option<RecordKind>,
    tcp_fallback: Option<bool>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: Spanned<String>,
    target: Spanned<f64>,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default)]
    credits: Vec<RawCredit>,
    confirm_after: Option<u32>,
}

fn default_currency() -> String {
    "EUR".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredit {
    below: Spanned<f64>,
    credit: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenance {
    cluster: Option<Spanned<String>>,
    sites: Option<Vec<Spanned<String>>>,
    start: Spanned<String>,
    end: Spanned<String>,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    #[serde(default)]
    targets: Vec<Spanned<String>>,
    min_ok: Option<usize>,
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
    pub goodwill: Vec<crate::analysis::sla::Goodwill>,
    pub status: StatusSettings,
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
            let message = e.message().to_string();
            errors.push(FleetError { file: path.to_path_buf(), line, field: None, message });
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

    let mut plans = Vec::new();
    let mut plan_index = HashMap::new();
    for (i, rp) in raw.plan.into_iter().enumerate() {
        let field = |f: &str| format!("plan[{i}].{f}");
        let name = rp.name.get_ref().trim().to_string();
        if !valid_name(&name) {
            errors.push(at.err(
                &rp.name,
                field("name"),
                format!("`{name}` is not a valid plan name; expected letters, digits, '-', '_' or '.'"),
            ));
        } else if plan_index.contains_key(&name) {
            errors.push(at.err(&rp.name, field("name"), format!("duplicate plan `{name}`")));
        }
        let target = *rp.target.get_ref();
        if !(0.0..=100.0).contains(&target) {
            errors.push(at.err(
                &rp.target,
                field("target"),
                format!("{target} is not a percentage; expected e.g. 99.9"),
            ));
        }
        let mut credit_tiers = Vec::new();
        for (j, c) in rp.credits.iter().enumerate() {
            let below = *c.below.get_ref();
            if !(0.0..=100.0).contains(&below) || !(0.0..=100.0).contains(&c.credit) {
                errors.push(at.err(
                    &c.below,
                    format!("plan[{i}].credits[{j}]"),
                    "`below` and `credit` are percentages; expected values from 0 to 100",
                ));
            }
            credit_tiers.push(CreditTier { below_percent: below, credit_percent: c.credit });
        }
        credit_tiers.sort_by(|a, b| b.below_percent.total_cmp(&a.below_percent));
        if rp.currency.len() != 3 || !rp.currency.chars().all(|c| c.is_ascii_uppercase()) {
            errors.push(at.err(
                &rp.name,
                field("currency"),
                format!("`{}` is not a currency code; expected three capital letters such as EUR", rp.currency),
            ));
        }
        if rp.confirm_after == Some(0) {
            errors.push(at.err(&rp.name, field("confirm_after"), "must be at least 1"));
        }
        plan_index.insert(name.clone(), plans.len());
        plans.push(Plan {
            name,
            target_percent: target,
            credit_tiers,
            currency: rp.currency,
            confirm_after: rp.confirm_after,
        });
    }
    if plans.is_empty() {
        errors.push(FleetError::at(path, None, "plan", "no plans defined; expected at least one [[plan]] table"));
    }

    // Without control targets there is nothing to require; with some, one answering is enough by default.
    let default_min_ok = usize::from(!raw.control.targets.is_empty());
    let mut control = Control { targets: Vec::new(), min_ok: raw.control.min_ok.unwrap_or(default_min_ok) };
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
        errors.push(FleetError::at(
            path,
            None,
            "control.min_ok",
            format!("{} is more than the {} control targets", control.min_ok, control.targets.len()),
        ));
    }

    let incident_merge_gap = match &raw.analysis.incident_merge_gap {
        None => Duration::from_secs(5 * 60),
        Some(v) => parse_duration(v.get_ref()).unwrap_or_else(|m| {
            errors.push(at.err(v, "analysis.incident_merge_gap", m));
            Duration::from_secs(5 * 60)
        }),
    };
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

    let mut goodwill = Vec::new();
    for (i, g) in raw.goodwill.iter().enumerate() {
        let id = g.incident.get_ref().trim();
        let cluster_known = clusters.iter().any(|c| {
            id.strip_prefix(c.name.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|stamp| jiff::civil::DateTime::strptime("%Y%m%dT%H%M", stamp).is_ok())
        });
        if !cluster_known {
            errors.push(at.err(&g.incident, format!("goodwill[{i}].incident"), format!("`{id}` is not an incident id; expected a cluster name and the start in UTC, e.g. fra-1-20261014T2200 (see `report incidents`)")));
        }
        if !(*g.months.get_ref() > 0.0 && *g.months.get_ref() <= 24.0) {
            errors.push(at.err(
                &g.months,
                format!("goodwill[{i}].months"),
                format!("{} is not a number of months from 0 to 24", g.months.get_ref()),
            ));
        }
        goodwill.push(crate::analysis::sla::Goodwill {
            incident: id.to_string(),
            months: *g.months.get_ref(),
            note: g.note.clone(),
        });
    }

    let status = status_settings(&raw.status, &at, errors);

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
        analysis: AnalysisSettings { incident_merge_gap, major_share },
        goodwill,
        status,
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
    status
}

fn retention(raw: &RawRetention, at: &At, errors: &mut FleetErrors) -> Retention {
    let defaults = Retention::default();
    let mut duration = |value: &Option<Spanned<String>>, field: &str, default: Duration| match value {
        None => default,
        Some(v) => match parse_duration(v.get_ref()) {
            Ok(d) => d,
            Err(m) => {
                errors.push(at.err(v, field, m));
                default
            }
        },
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
                None => errors.push(FleetError::at(at.path, None, field, message)),
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

fn probe_settings(raw: RawProbe, at: &At, base_dir: &Path, errors: &mut FleetErrors) -> ProbeSettings {
    let mut duration = |value: &Option<Spanned<String>>, field: &str, default: Duration| -> Duration {
        match value {
            None => default,
            Some(v) => match parse_duration(v.get_ref()) {
                Ok(d) if d.is_zero() && field.starts_with("probe.timeouts") => {
                    errors.push(at.err(
                        v,
                        field,
                        "a timeout of zero would fail every check; expected a positive duration",
                    ));
                    default
                }
                Ok(d) => d,
                Err(m) => {
                    errors.push(at.err(v, field, m));
                    default
                }
            },
        }
    };
    let defaults = Timeouts::default();
    let timeouts = Timeouts {
        dns: duration(&raw.timeouts.dns, "probe.timeouts.dns", defaults.dns),
        connect: duration(&raw.timeouts.connect, "probe.timeouts.connect", defaults.connect),
        tls: duration(&raw.timeouts.tls, "probe.timeouts.tls", defaults.tls),
        first_byte: duration(&raw.timeouts.first_byte, "probe.timeouts.first_byte", defaults.first_byte),
        body: duration(&raw.timeouts.body, "probe.timeouts.body", defaults.body),
        total: duration(&raw.timeouts.total, "probe.timeouts.total", defaults.total),
    };
    let interval = duration(&raw.interval, "probe.interval", Duration::from_secs(60));
    let spread = duration(&raw.spread, "probe.spread", Duration::from_secs(20));
    let retry_delay = duration(&raw.retry_delay, "probe.retry_delay", Duration::from_secs(2));
    if spread >= interval {
        errors.push(FleetError::at(
            at.path,
            None,
            "probe.spread",
            format!("spread ({spread:?}) must be shorter than the interval ({interval:?}) or sweeps would overlap"),
        ));
    }

    let mut resolvers = Vec::new();
    for r in &raw.resolvers {
        match parse_socket_addr(r.get_ref(), 53) {
            Ok(addr) => resolvers.push(addr),
            Err(m) => errors.push(at.err(r, "probe.resolvers", m)),
        }
    }

    let mut expect_status = Vec::new();
    for s in raw.http.expect_status.as_deref().unwrap_or_default() {
        match parse_status_range(s.get_ref()) {
            Ok(range) => expect_status.push(range),
            Err(m) => errors.push(at.err(s, "probe.http.expect_status", m)),
        }
    }
    if raw.http.expect_status.is_none() {
        expect_status.push((200, 399));
    }

    let concurrency = raw.concurrency.unwrap_or(256);
    let cluster_concurrency = raw.cluster_concurrency.unwrap_or(64);
    if concurrency == 0 || cluster_concurrency == 0 {
        errors.push(FleetError::at(at.path, None, "probe.concurrency", "concurrency limits must be at least 1"));
    }
    let confirm_after = raw.confirm_after.unwrap_or(2);
    if confirm_after == 0 {
        errors.push(FleetError::at(at.path, None, "probe.confirm_after", "must be at least 1"));
    }

    ProbeSettings {
        vantage: raw.vantage.unwrap_or_else(default_vantage),
        interval,
        spread,
        concurrency: concurrency.max(1),
        cluster_concurrency: cluster_concurrency.max(1),
        retries: raw.retries.unwrap_or(1),
        retry_delay,
        timeouts,
        resolvers,
        ca_file: raw.ca_file.map(|f| base_dir.join(f)),
        http: HttpSettings {
            via: raw.http.via.unwrap_or(Via::Dns),
            expect_status,
            keyword: raw.http.keyword.filter(|k| !k.is_empty()),
            max_body_bytes: raw.http.max_body_bytes.unwrap_or(64 * 1024),
            max_redirects: raw.http.max_redirects.unwrap_or(5),
            user_agent: raw.http.user_agent.unwrap_or_else(|| format!("fleetprobe/{}", env!("CARGO_PKG_VERSION"))),
        },
        dns: DnsSettings {
            record_type: raw.dns.record_type.unwrap_or(RecordKind::A),
            tcp_fallback: raw.dns.tcp_fallback.unwrap_or(true),
        },
        confirm_after: confirm_after.max(1),
    }
}

pub(crate) fn resolve_maintenance(
    source: &Source,
    parsed: &Parsed,
    site_index: &HashMap<&str, SiteIdx>,
    errors: &mut FleetErrors,
) -> Vec<MaintenanceWindow> {
    let path = source.config_path();
    let Ok(text) = source.config_text() else { return Vec::new() };
    let at = At { path, text };
    let mut windows = Vec::new();
    for (i, m) in parsed.raw_maintenance.iter().enumerate() {
        let field = |f: &str| format!("maintenance[{i}].{f}");
        let time = |v: &Spanned<String>, f: &str, errors: &mut FleetErrors| match v.get_ref().parse::<jiff::Timestamp>()
        {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(at.err(
                    v,
                    field(f),
                    format!("`{}` is not a UTC timestamp; expected e.g. 2026-10-14T22:00:00Z", v.get_ref()),
                ));
                None
            }
        };
        let start = time(&m.start, "start", errors);
        let end = time(&m.end, "end", errors);
        let scope = match (&m.cluster, &m.sites) {
            (Some(c), None) => match parsed.cluster_index.get(c.get_ref().trim()) {
                Some(&idx) => Some(MaintenanceScope::Cluster(idx)),
                None => {
                    errors.push(at.err(
                        c,
                        field("cluster"),
                        format!(
                            "unknown cluster `{}`; expected one of: {}",
                            c.get_ref(),
                            known(parsed.clusters.iter().map(|c| c.name.as_str()))
                        ),
                    ));
                    None
                }
            },
            (None, Some(sites)) if !sites.is_empty() => {
                let mut idx = Vec::new();
                for s in sites {
                    match site_index.get(s.get_ref().trim()) {
                        Some(&i) => idx.push(i),
                        None => errors.push(at.err(
                            s,
                            field("sites"),
                            format!("unknown site `{}`; expected a site id from the sites inventory", s.get_ref()),
                        )),
                    }
                }
                Some(MaintenanceScope::Sites(idx))
            }
            _ => {
                errors.push(at.err(
                    &m.start,
                    format!("maintenance[{i}]"),
                    "expected exactly one of `cluster` or a non-empty `sites` list",
                ));
                None
            }
        };
        if let (Some(start), Some(end), Some(scope)) = (start, end, scope) {
            if end <= start {
                errors.push(at.err(&m.end, field("end"), format!("end {end} is not after start {start}")));
                continue;
            }
            windows.push(MaintenanceWindow { scope, start, end, note: m.note.clone() });
        }
    }
    windows
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

fn default_vantage() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "local".into())
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
