//! The fleet: sites, customers, clusters, plans and maintenance windows, validated.
//!
//! First stage of the data flow. `load` reads the TOML configuration and the inventory CSVs it
//! points at, checks every reference between them, and returns a [`Fleet`] that cannot hold an
//! invalid state. Every problem found is collected (file, line, field, what was expected) and
//! returned together, so a provider fixing an export sees all of them in one pass.

pub mod checks;
mod config;
mod error;
mod inventory;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use config::probe::*;
pub use config::{
    AnalysisSettings, MetricsSettings, NotifySettings, NotifyTarget, Quorum, Retention, SlaSettings, SlowRule, Source,
    StatusSettings, StoreLocation, TargetKind,
};
pub use error::{FleetError, FleetErrors, InvalidValue};

use checks::CheckKind;

/// Index of a cluster in [`Fleet::clusters`].
pub type ClusterIdx = usize;
/// Index of a customer in [`Fleet::customers`].
pub type CustomerIdx = usize;
/// Index of a plan in [`Fleet::plans`].
pub type PlanIdx = usize;
/// Index of a site in [`Fleet::sites`].
pub type SiteIdx = usize;

/// Everything fleetprobe knows about the fleet it watches.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The configuration file this fleet was read from (used to resolve relative paths).
    pub config_path: PathBuf,
    pub store: StoreLocation,
    pub probe: ProbeSettings,
    pub clusters: Vec<Cluster>,
    pub plans: Vec<Plan>,
    pub customers: Vec<Customer>,
    pub sites: Vec<Site>,
    pub maintenance: Vec<MaintenanceWindow>,
    pub control: Control,
    /// How long runs, results and latency rollups are kept.
    pub retention: Retention,
    pub analysis: AnalysisSettings,
    /// Goodwill credits granted per incident.
    pub goodwill: Vec<Goodwill>,
    /// The public status page's settings (`[status]`).
    pub status: StatusSettings,
    /// `[sla]`: the coverage an SLA verdict needs.
    pub sla: SlaSettings,
    /// `[metrics]`: the Prometheus textfile.
    pub metrics: MetricsSettings,
    /// `[notify]`: where incidents and expiring certificates are announced.
    pub notify: NotifySettings,
}

/// A group of shared web frontends, and optionally the nameservers authoritative for its sites.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    /// Addresses of the web frontends; an HTTP check `via = "frontend"` connects here.
    pub frontends: Vec<IpAddr>,
    /// Nameservers the DNS check asks (address and port). Empty: the probe's resolvers.
    pub nameservers: Vec<SocketAddr>,
}

/// A service plan: the availability target and the credit owed when it is missed.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// Availability target in percent, e.g. 99.9.
    pub target_percent: f64,
    /// Credit tiers, sorted from the highest threshold down.
    pub credit_tiers: Vec<CreditTier>,
    /// Currency of the monthly fee, e.g. "EUR".
    pub currency: String,
    /// Consecutive failed runs before an outage is confirmed; `None` uses the global default.
    pub confirm_after: Option<u32>,
}

/// "Availability below `below_percent` earns `credit_percent` of the monthly fee."
#[derive(Debug, Clone, PartialEq)]
pub struct CreditTier {
    pub below_percent: f64,
    pub credit_percent: f64,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub name: String,
    pub plan: PlanIdx,
    /// Monthly fee in the plan's currency, in cents (hundredths), to keep money exact.
    pub monthly_fee_cents: i64,
    pub contact: String,
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub customer: CustomerIdx,
    pub cluster: ClusterIdx,
    /// The DNS name of the site, lower case, without a trailing dot.
    pub hostname: String,
    pub url: SiteUrl,
    pub expected_addresses: ExpectedAddresses,
    pub checks: Checks,
    /// A text the HTTP response body must contain (overrides `probe.http.keyword`).
    pub keyword: Option<String>,
}

/// An http or https URL, split into what the HTTP prober needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteUrl {
    pub tls: bool,
    /// Host as written in the URL (a name or an address literal), lower case.
    pub host: String,
    pub port: u16,
    /// Path and query, at least "/".
    pub path_and_query: String,
}

impl SiteUrl {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(text: &str) -> Result<SiteUrl, InvalidValue> {
        let uri: hyper::Uri =
            text.parse().map_err(|e: hyper::http::uri::InvalidUri| InvalidValue::Url(e.to_string()))?;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(other) => return Err(InvalidValue::UrlScheme(other.to_string())),
            None => return Err(InvalidValue::UrlWithoutScheme),
        };
        let host = uri.host().filter(|h| !h.is_empty()).ok_or(InvalidValue::UrlWithoutHost)?;
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(InvalidValue::UrlUserInfo);
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path_and_query = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
        let path_and_query = if path_and_query.is_empty() { "/".to_string() } else { path_and_query };
        Ok(SiteUrl { tls, host, port, path_and_query })
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The Host header value: the host, with the port when it is not the scheme's default.
    pub fn authority(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default_port { host } else { format!("{host}:{}", self.port) }
    }
}

impl std::fmt::Display for SiteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme(), self.authority(), self.path_and_query)
    }
}

/// What the DNS check accepts as a right answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedAddresses {
    /// The addresses of the site's cluster frontends (the default when the column is empty).
    ClusterFrontends,
    /// Any non-empty answer (`*` in the inventory).
    Any,
    /// Exactly these addresses (every answered address must be one of them).
    List(Vec<IpAddr>),
}

/// A goodwill credit granted for an incident, from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Goodwill {
    pub incident: String,
    /// Months of the monthly fee credited to every affected customer.
    pub months: f64,
    pub note: String,
}

/// Which checks run for a site, and the port of each check that takes one from the site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    /// One bit per kind, by [`CheckKind::code`].
    kinds: u32,
    /// `kind:PORT` from the inventory; empty for most sites (and then without an allocation).
    ports: Vec<(CheckKind, u16)>,
}

impl Checks {
    /// What a site runs when its `checks` column is empty: HTTP and DNS.
    pub fn default_for_site() -> Checks {
        [CheckKind::Http, CheckKind::Dns].into_iter().collect()
    }

    pub fn insert(&mut self, kind: CheckKind) {
        self.kinds |= 1 << kind.code();
    }

    /// Runs `kind` against `port` rather than the kind's configured one.
    pub fn insert_with_port(&mut self, kind: CheckKind, port: u16) {
        self.insert(kind);
        self.ports.retain(|(k, _)| *k != kind);
        self.ports.push((kind, port));
    }

    pub fn contains(&self, kind: CheckKind) -> bool {
        self.kinds & (1 << kind.code()) != 0
    }

    /// The port the site gives for `kind`, if it gives one.
    pub fn port(&self, kind: CheckKind) -> Option<u16> {
        self.ports.iter().find(|(k, _)| *k == kind).map(|&(_, port)| port)
    }

    /// The kinds that run, in [`CheckKind::ALL`] order.
    pub fn kinds(&self) -> impl Iterator<Item = CheckKind> + '_ {
        CheckKind::ALL.into_iter().filter(|&kind| self.contains(kind))
    }

    pub fn len(&self) -> usize {
        self.kinds.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.kinds == 0
    }
}

impl FromIterator<CheckKind> for Checks {
    fn from_iter<I: IntoIterator<Item = CheckKind>>(kinds: I) -> Checks {
        let mut checks = Checks::default();
        for kind in kinds {
            checks.insert(kind);
        }
        checks
    }
}

/// A scheduled maintenance window on a cluster or on a list of sites. Half-open [start, end).
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    pub scope: MaintenanceScope,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceScope {
    Cluster(ClusterIdx),
    Sites(Vec<SiteIdx>),
}

/// Control targets: the prober checks its own network with these before and after a sweep. A run
/// where fewer than `min_ok` of them answer is stored as invalid and never counts as an outage.
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub targets: Vec<ControlTarget>,
    pub min_ok: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlTarget {
    /// An HTTP(S) URL fetched through DNS; any status below 500 counts as reachable.
    Http(SiteUrl),
    /// A TCP connect to an address.
    Tcp(SocketAddr),
}

impl Fleet {
    /// Reads and validates a configuration file and the inventory it points at.
    pub fn load(path: &Path) -> Result<Fleet, FleetErrors> {
        let bytes = std::fs::read(path)
            .map_err(|e| FleetErrors::one(FleetError::file(path, format!("cannot read configuration: {e}"))))?;
        let text = error::utf8_text(path, bytes, "a UTF-8 TOML file").map_err(FleetErrors::one)?;
        Self::from_source(&Source::Files { config_path: path.to_path_buf(), config_text: text })
    }

    /// Validates a fleet from any source (files on disk, or the embedded demo fleet).
    pub fn from_source(source: &Source) -> Result<Fleet, FleetErrors> {
        let mut errors = FleetErrors::default();
        let parsed = config::parse(source, &mut errors);
        let Some(parsed) = parsed else { return Err(errors) };
        let customers = inventory::read_customers(source, &parsed.inventory_customers, &parsed.plan_index, &mut errors);
        let sites = inventory::read_sites(source, &parsed.inventory_sites, &parsed, &customers, &mut errors);
        let site_index: HashMap<&str, SiteIdx> = sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        let maintenance = config::resolve_maintenance(source, &parsed, &site_index, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let customers = customers.into_iter().map(|(c, _line)| c).collect();
        Ok(Fleet {
            config_path: source.config_path().to_path_buf(),
            store: parsed.store,
            probe: parsed.probe,
            clusters: parsed.clusters,
            plans: parsed.plans,
            customers,
            sites,
            maintenance,
            control: parsed.control,
            retention: parsed.retention,
            analysis: parsed.analysis,
            goodwill: parsed.goodwill,
            status: parsed.status,
            sla: parsed.sla,
            metrics: parsed.metrics,
            notify: parsed.notify,
        })
    }

    pub fn cluster_index(&self, name: &str) -> Option<ClusterIdx> {
        self.clusters.iter().position(|c| c.name == name)
    }

    pub fn site_index(&self, id: &str) -> Option<SiteIdx> {
        self.sites.iter().position(|s| s.id == id)
    }

    /// Number of checks one sweep performs.
    pub fn check_count(&self) -> usize {
        self.sites.iter().map(|s| s.checks.len()).sum()
    }

    /// Per cluster: (sites, distinct customers).
    pub fn cluster_summary(&self) -> Vec<(usize, usize)> {
        let mut sites = vec![0usize; self.clusters.len()];
        let mut customers: Vec<std::collections::HashSet<CustomerIdx>> = vec![Default::default(); self.clusters.len()];
        for site in &self.sites {
            sites[site.cluster] += 1;
            customers[site.cluster].insert(site.customer);
        }
        sites.into_iter().zip(customers).map(|(s, c)| (s, c.len())).collect()
    }

    /// The confirmation threshold for a customer's sites.
    pub fn confirm_after(&self, customer: CustomerIdx) -> u32 {
        self.plans[self.customers[customer].plan].confirm_after.unwrap_or(self.probe.confirm_after)
    }
}

/// Parses durations written as "60s", "1m 30s", "500ms", "7d" (a day is 24 hours here) or ISO 8601.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidValue> {
    let bad = || InvalidValue::Duration(text.to_string());
    let span: jiff::Span = text.trim().parse().map_err(|_| bad())?;
    let signed = span.to_duration(jiff::SpanRelativeTo::days_are_24_hours()).map_err(|_| bad())?;
    Duration::try_from(signed).map_err(|_| InvalidValue::NegativeDuration(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_url_parsing() {
        let u = SiteUrl::parse("https://Shop.Example.com/health?x=1").unwrap();
        assert_eq!(
            u,
            SiteUrl { tls: true, host: "shop.example.com".into(), port: 443, path_and_query: "/health?x=1".into() }
        );
        assert_eq!(u.authority(), "shop.example.com");
        let u = SiteUrl::parse("http://a.test:8080").unwrap();
        assert_eq!((u.port, u.path_and_query.as_str(), u.authority().as_str()), (8080, "/", "a.test:8080"));
        assert!(SiteUrl::parse("ftp://a.test/").unwrap_err().to_string().contains("scheme `ftp`"));
        assert!(SiteUrl::parse("www.example.com").unwrap_err().to_string().contains("missing scheme"));
        assert!(SiteUrl::parse("http://u:p@a.test/").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert!(parse_duration("1mo").is_err(), "months have no fixed length");
        assert!(parse_duration("ten").is_err());
    }
}
