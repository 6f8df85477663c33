//! What `results --format csv` writes, `import` reads back unchanged: the vantage and whether
//! each run counts. A file that does not say whether its runs count is refused unless
//! `--valid` says so.

use crate::fixtures::{Customer, FleetFiles, Site, TempFleet, ok, stderr};
use fleetprobe::fleet::StoreLocation;

/// One site whose check is refused, and a control target that is refused too: every run is
/// stored as invalid.
fn invalid_runs() -> FleetFiles {
    FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe("vantage", "fra-probe")
        .timeout("connect", "500ms")
        .control_targets(&["tcp://127.0.0.1:1"])
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha GmbH", "basic", "10.00"))
        .site(Site::new("s1", "c1", "one", "www.alpha.test").url("http://127.0.0.1:1/").checks("http"))
}

/// (vantage, valid) of every run in a fleet's store.
fn runs(fleet: &TempFleet) -> Vec<(String, bool)> {
    let store = fleetprobe::store::open(&StoreLocation::Sqlite(fleet.dir().join("store.db"))).unwrap();
    store.runs(None, None).unwrap().into_iter().map(|r| (r.vantage, r.valid)).collect()
}

#[test]
fn an_invalid_run_stays_invalid_through_export_and_import() {
    let probed = invalid_runs().write_temp();
    let out = probed.run(&["probe", "-q", "--at", "2026-10-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let exported = probed.dir().join("results.csv");
    ok(&probed.run(&["results", "--format", "csv", "-o", exported.to_str().unwrap()]));
    let csv = std::fs::read_to_string(&exported).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",detail,run_valid"), "{csv}");

    let imported = invalid_runs().write_temp();
    ok(&imported.run(&["import", exported.to_str().unwrap()]));
    assert_eq!(runs(&imported), [("fra-probe".to_string(), false)]);
}

#[test]
fn rows_that_do_not_say_whether_their_run_counts_need_valid() {
    let fleet = invalid_runs().write_temp();
    let file = fleet.dir().join("other.csv");
    std::fs::write(&file, "run_started_at,site_id,check,outcome\n2026-10-01T00:00:00Z,s1,http,ok\n").unwrap();
    let out = fleet.run(&["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("other.csv:1: header: missing column `run_valid`"), "{}", stderr(&out));
    assert!(!fleet.dir().join("store.db").exists() || runs(&fleet).is_empty(), "nothing imported");

    ok(&fleet.run(&["import", "--valid", "no", file.to_str().unwrap()]));
    assert_eq!(runs(&fleet), [("import".to_string(), false)]);
}
