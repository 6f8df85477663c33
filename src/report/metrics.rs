//! The Prometheus text exposition of one run, for node_exporter's textfile collector: what ops
//! graph and alert on between runs. Names follow Prometheus conventions (`fleetprobe_` prefix,
//! base units, `_total`, `_seconds`, `_timestamp_seconds`), each family with HELP and TYPE.
//!
//! Cardinality stays bounded by the fleet's shape: series per cluster, check, phase and outcome,
//! never per site unless asked for.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What one run's metrics say, in plain values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    pub vantage: String,
    pub started_at_ms: i64,
    pub duration_seconds: f64,
    pub valid: bool,
    /// Clusters in the fleet's order; every per-cluster series has all of them.
    pub clusters: Vec<ClusterMetrics>,
    /// (site, cluster, up) for `fleetprobe_site_up`, only with `metrics.per_site`.
    pub sites: Vec<(String, String, bool)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterMetrics {
    pub name: String,
    /// (check, outcome) → checks in the run.
    pub checks: BTreeMap<(String, String), u64>,
    pub sites: usize,
    pub sites_down: usize,
    /// Share of the cluster's customers with a site in a confirmed outage now (0 to 1).
    pub customers_affected_share: f64,
    pub open_incidents: usize,
    /// Per check and phase: the run's latency of successful checks.
    pub latency: Vec<LatencySummary>,
    /// The earliest certificate expiry seen on the cluster in the run, Unix seconds.
    pub earliest_certificate_expiry: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LatencySummary {
    pub check: String,
    pub phase: String,
    pub count: u64,
    pub sum_seconds: f64,
    /// (quantile, seconds): 0.5, 0.9, 0.99.
    pub quantiles: Vec<(f64, f64)>,
}

/// One per-cluster gauge's value.
type ClusterValue = fn(&ClusterMetrics) -> String;

/// The exposition text.
pub fn render(m: &RunMetrics) -> String {
    let mut out = String::new();
    let vantage = format!("vantage=\"{}\"", label_value(&m.vantage));
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(&mut out, "fleetprobe_last_run_start_timestamp_seconds", "gauge", "When the last run's sweep started.");
    let _ = writeln!(out, "fleetprobe_last_run_start_timestamp_seconds{{{vantage}}} {}", seconds(m.started_at_ms));
    family(&mut out, "fleetprobe_last_run_duration_seconds", "gauge", "How long the last run took, sweep and store.");
    let _ = writeln!(out, "fleetprobe_last_run_duration_seconds{{{vantage}}} {}", number(m.duration_seconds));
    family(
        &mut out,
        "fleetprobe_last_run_valid",
        "gauge",
        "1 when the last run counts; 0 when the prober's own control targets failed.",
    );
    let _ = writeln!(out, "fleetprobe_last_run_valid{{{vantage}}} {}", u8::from(m.valid));

    family(&mut out, "fleetprobe_run_checks", "gauge", "Checks in the last run, by cluster, check and outcome.");
    for c in &m.clusters {
        for ((check, outcome), count) in &c.checks {
            let _ = writeln!(
                out,
                "fleetprobe_run_checks{{{vantage},cluster=\"{}\",check=\"{}\",outcome=\"{}\"}} {count}",
                label_value(&c.name),
                label_value(check),
                label_value(outcome)
            );
        }
    }
    let per_cluster: [(&str, &str, ClusterValue); 4] = [
        ("fleetprobe_cluster_sites", "Sites on the cluster.", |c| c.sites.to_string()),
        ("fleetprobe_cluster_sites_down", "Sites of the cluster with a failed check in the last run.", |c| {
            c.sites_down.to_string()
        }),
        (
            "fleetprobe_cluster_customers_affected_ratio",
            "Share of the cluster's customers with a site in a confirmed outage now.",
            |c| number(c.customers_affected_share),
        ),
        ("fleetprobe_cluster_open_incidents", "Incidents on the cluster still open.", |c| c.open_incidents.to_string()),
    ];
    for (name, help, value) in per_cluster {
        family(&mut out, name, "gauge", help);
        for c in &m.clusters {
            let _ = writeln!(out, "{name}{{{vantage},cluster=\"{}\"}} {}", label_value(&c.name), value(c));
        }
    }

    family(
        &mut out,
        "fleetprobe_check_phase_duration_seconds",
        "summary",
        "Latency of the last run's successful checks, by cluster, check and phase.",
    );
    for c in &m.clusters {
        for l in &c.latency {
            let labels = format!(
                "{vantage},cluster=\"{}\",check=\"{}\",phase=\"{}\"",
                label_value(&c.name),
                label_value(&l.check),
                label_value(&l.phase)
            );
            for (quantile, value) in &l.quantiles {
                let _ = writeln!(
                    out,
                    "fleetprobe_check_phase_duration_seconds{{{labels},quantile=\"{quantile}\"}} {}",
                    number(*value)
                );
            }
            let _ = writeln!(out, "fleetprobe_check_phase_duration_seconds_sum{{{labels}}} {}", number(l.sum_seconds));
            let _ = writeln!(out, "fleetprobe_check_phase_duration_seconds_count{{{labels}}} {}", l.count);
        }
    }

    family(
        &mut out,
        "fleetprobe_cluster_certificate_expiry_timestamp_seconds",
        "gauge",
        "The earliest certificate expiry seen on the cluster in the last run.",
    );
    for c in &m.clusters {
        if let Some(expiry) = c.earliest_certificate_expiry {
            let _ = writeln!(
                out,
                "fleetprobe_cluster_certificate_expiry_timestamp_seconds{{{vantage},cluster=\"{}\"}} {expiry}",
                label_value(&c.name)
            );
        }
    }

    if !m.sites.is_empty() {
        family(&mut out, "fleetprobe_site_up", "gauge", "1 when every check of the site passed in the last run.");
        for (site, cluster, up) in &m.sites {
            let _ = writeln!(
                out,
                "fleetprobe_site_up{{{vantage},cluster=\"{}\",site=\"{}\"}} {}",
                label_value(cluster),
                label_value(site),
                u8::from(*up)
            );
        }
    }
    out
}

/// The delivery counters of the notification targets, (target, result, count), for the end of
/// the metrics file: `fleetprobe_notifications_total{target,result}`, counted in the store so
/// they keep growing across runs (store-wide: probers sharing a store show the same counts).
pub fn render_notification_counts(counts: &[(String, String, i64)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP fleetprobe_notifications_total Deliveries to notification targets, by result (ok, failed, abandoned).\n\
         # TYPE fleetprobe_notifications_total counter"
    );
    for (target, result, count) in counts {
        let _ = writeln!(
            out,
            "fleetprobe_notifications_total{{target=\"{}\",result=\"{}\"}} {count}",
            label_value(target),
            label_value(result)
        );
    }
    out
}

/// Milliseconds as seconds with the millisecond kept.
fn seconds(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// A float as Prometheus reads it; never NaN or infinite in our figures, but say so if it were.
fn number(value: f64) -> String {
    if value.is_finite() { format!("{value}") } else { "NaN".to_string() }
}

/// A label value escaped as the exposition format asks: backslash, double quote, line feed.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_have_help_and_type_and_labels_are_escaped() {
        let mut checks = BTreeMap::new();
        checks.insert(("http".to_string(), "ok".to_string()), 9);
        checks.insert(("http".to_string(), "connect_refused".to_string()), 1);
        let m = RunMetrics {
            vantage: "ams \"a\"".into(),
            started_at_ms: 1_790_812_800_250,
            duration_seconds: 1.5,
            valid: true,
            clusters: vec![ClusterMetrics {
                name: "c1".into(),
                checks,
                sites: 10,
                sites_down: 1,
                customers_affected_share: 0.25,
                open_incidents: 1,
                latency: vec![LatencySummary {
                    check: "http".into(),
                    phase: "first_byte".into(),
                    count: 9,
                    sum_seconds: 0.09,
                    quantiles: vec![(0.5, 0.01), (0.99, 0.02)],
                }],
                earliest_certificate_expiry: Some(1_800_000_000),
            }],
            sites: Vec::new(),
        };
        let text = render(&m);
        assert!(text.contains("fleetprobe_last_run_start_timestamp_seconds{vantage=\"ams \\\"a\\\"\"} 1790812800.250"));
        assert!(text.contains("fleetprobe_run_checks{vantage=\"ams \\\"a\\\"\",cluster=\"c1\",check=\"http\",outcome=\"connect_refused\"} 1"));
        assert!(
            text.contains("fleetprobe_cluster_customers_affected_ratio{vantage=\"ams \\\"a\\\"\",cluster=\"c1\"} 0.25")
        );
        assert!(text.contains("quantile=\"0.99\"} 0.02"));
        assert!(text.contains("fleetprobe_check_phase_duration_seconds_count{"));
        assert!(!text.contains("fleetprobe_site_up"), "no per-site series unless asked for");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name.trim_end_matches("_sum").trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{name} has no TYPE");
        }
    }
}
