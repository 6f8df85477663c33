//! `fleetprobe check` against settings and inventories that parse but cannot work: every bad
//! value named with its file, line and field, and the range or form expected.

use crate::fixtures::{Customer, FleetFiles, Site, TempFleet, stderr};

/// One cluster on 127.0.0.1, one plan, one customer, one site.
fn fleet() -> FleetFiles {
    FleetFiles::new()
        .store("store.db")
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha GmbH", "basic", "10.00"))
        .site(Site::new("s1", "c1", "one", "www.alpha.test"))
}

/// The 1-based line of `fleet.toml` that contains `text`.
fn line_of(fleet: &TempFleet, text: &str) -> usize {
    let toml = std::fs::read_to_string(fleet.config()).unwrap();
    toml.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("`{text}` not in:\n{toml}")) + 1
}

/// Runs `check`, expects the configuration error exit code, returns stderr.
fn refused(fleet: &TempFleet) -> String {
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn redirect_allow_takes_networks_and_hostnames() {
    let allow = toml::Value::from(vec!["10.20.0.0/16", "fd00::/8", "intranet.example.net", "10.0.0.0/33", "bad host"]);
    let fleet = fleet().probe_http("redirect_allow", allow).write_temp();
    let errors = refused(&fleet);
    let line = line_of(&fleet, "10.0.0.0/33");
    let expected =
        format!("fleet.toml:{line}: probe.http.redirect_allow[3]: `10.0.0.0/33`: the prefix length must be 0 to 32");
    assert!(errors.contains(&expected), "missing `{expected}` in:\n{errors}");
    assert!(errors.contains("probe.http.redirect_allow[4]: `bad host` is not a valid DNS name"), "{errors}");
    assert!(errors.contains("2 problems found"), "{errors}");

    let allow = toml::Value::from(vec!["10.20.0.0/16", "192.0.2.7", "intranet.example.net"]);
    let fleet = self::fleet().probe_http("redirect_allow", allow).write_temp();
    let out = fleet.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
