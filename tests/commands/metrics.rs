//! `[metrics] textfile`: the Prometheus file written after every run, checked by its content and
//! by `promtool check metrics` (Debian's `prometheus` package; SKIPPED without it unless `CI`).

use std::process::Command;

use crate::fixtures::{Customer, FleetFiles, Site, stderr};

#[test]
fn every_run_writes_a_metrics_file_that_promtool_accepts() {
    let fleet = FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe("vantage", "ams-probe")
        .timeout("connect", "500ms")
        .metrics("textfile", "metrics/fleetprobe.prom")
        .metrics("per_site", true)
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customers([Customer::new("c1", "Alpha", "basic", "10.00"), Customer::new("c2", "Beta", "basic", "10.00")])
        .sites([
            Site::new("s1", "c1", "one", "www.alpha.test").url("http://127.0.0.1:1/").checks("http"),
            Site::new("s2", "c2", "one", "www.beta.test").url("http://127.0.0.1:1/").checks("http"),
        ])
        .write_temp();
    std::fs::create_dir_all(fleet.dir().join("metrics")).unwrap();
    let path = fleet.dir().join("metrics/fleetprobe.prom");
    // Two failed runs a minute apart confirm the outage (confirm_after = 2).
    for at in ["2026-10-01T00:00:00Z", "2026-10-01T00:01:00Z"] {
        let out = fleet.run(&["probe", "-q", "--at", at]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let text = std::fs::read_to_string(&path).expect("the metrics file is written");
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let labels = "vantage=\"ams-probe\",cluster=\"one\"";
    assert_eq!(value("fleetprobe_last_run_start_timestamp_seconds{"), 1_790_812_860.0);
    assert_eq!(value("fleetprobe_last_run_valid{"), 1.0);
    assert_eq!(value(&format!("fleetprobe_run_checks{{{labels},check=\"http\",outcome=\"connect_refused\"}}")), 2.0);
    assert_eq!(value(&format!("fleetprobe_cluster_sites_down{{{labels}}}")), 2.0);
    assert_eq!(value(&format!("fleetprobe_cluster_customers_affected_ratio{{{labels}}}")), 1.0);
    assert_eq!(value(&format!("fleetprobe_cluster_open_incidents{{{labels}}}")), 1.0);
    assert_eq!(value(&format!("fleetprobe_site_up{{{labels},site=\"s1\"}}")), 0.0);
    let leftovers: Vec<_> =
        std::fs::read_dir(fleet.dir().join("metrics")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "only the file itself, no temporary left: {leftovers:?}");

    match Command::new("promtool").args(["check", "metrics"]).stdin(std::fs::File::open(&path).unwrap()).output() {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var_os("CI").is_some() => panic!("promtool (Debian package prometheus) is needed in CI"),
        Err(_) => println!("SKIPPED promtool check metrics: promtool not installed"),
    }
}
