//! The binary driven end to end on fixtures built by each test: validation errors, the run lock,
//! unusable stores, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fleetprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetprobe"))
        .args(args)
        .env_remove("FLEETPROBE_CONFIG")
        .env_remove("FLEETPROBE_STORE")
        .output()
        .expect("the fleetprobe binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const CUSTOMERS: &str = "customer_id,name,plan,monthly_fee,contact\nc1,Alpha GmbH,basic,10.00,a@example.net\n";
const SITES: &str = "site_id,customer,cluster,hostname,url,expected_addresses,checks,keyword\n\
                     s1,c1,one,www.alpha.test,http://127.0.0.1:1/,,http,\n";

/// A one-cluster, one-site fleet whose only check fails fast (connection refused on port 1).
fn write_fleet(dir: &Path, customers: &str, sites: &str) -> PathBuf {
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        r#"
[store]
url = "store.db"

[probe]
retries = 0
spread = "0s"

[probe.timeouts]
connect = "500ms"

[inventory]
sites = "sites.csv"
customers = "customers.csv"

[[cluster]]
name = "one"
frontends = ["127.0.0.1"]

[[plan]]
name = "basic"
target = 99.9
"#,
    )
    .unwrap();
    std::fs::write(dir.join("customers.csv"), customers).unwrap();
    std::fs::write(dir.join("sites.csv"), sites).unwrap();
    config
}

#[test]
fn check_summarizes_the_example_fleet() {
    let out = fleetprobe(&["check", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/probes/example.toml")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("403 sites, 145 customers, 4 clusters"), "{stdout}");
    let ams2: Vec<&str> = stdout.lines().find(|l| l.starts_with("ams-2")).unwrap().split_whitespace().collect();
    assert_eq!(ams2, ["ams-2", "137", "56"], "{stdout}");
}

#[test]
fn check_reports_every_inventory_problem_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let customers = "customer_id,name,plan,monthly_fee,contact\n\
                     c1,Alpha,basic,10.00,\n\
                     c2,Beta,gold,10.00,\n\
                     c1,Gamma,basic,1,\n\
                     c3,Delta,basic,1.234,\n\
                     c4,Epsilon,basic,1,x,extra\n";
    let sites = "site_id,customer,cluster,hostname,url,expected_addresses,checks,keyword\n\
                 s1,c1,one,www.a.test,,,,\n\
                 s1,c1,one,www.b.test,,,,\n\
                 s2,c9,two,bad_host!,ftp://x/,192.0.2.300,icmp,\n";
    let config = write_fleet(dir.path(), customers, sites);
    let out = fleetprobe(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for expected in [
        "customers.csv:3: plan: unknown plan `gold`; expected one of: basic",
        "customers.csv:4: customer_id: duplicate customer `c1` (first defined on line 2)",
        "customers.csv:5: monthly_fee: `1.234` is not an amount",
        "customers.csv:6: this row has 6 fields; expected 5 like the header",
        "sites.csv:3: site_id: duplicate site `s1` (first defined on line 2)",
        "sites.csv:4: customer: unknown customer `c9`",
        "sites.csv:4: cluster: unknown cluster `two`; expected one of: one",
        "sites.csv:4: hostname: `bad_host!` is not a valid DNS name",
        "sites.csv:4: url: scheme `ftp` is not supported",
        "sites.csv:4: expected_addresses: `192.0.2.300` is not an IP address",
        "sites.csv:4: checks: unknown check `icmp`",
        "11 problems found",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in:\n{stderr}");
    }
}

#[test]
fn check_reports_header_and_empty_file_problems() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), "id,name,plan,fee\nc1,A,basic,1\n", "");
    let out = fleetprobe(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("customers.csv:1: column 1: unknown column `id`; expected columns: customer_id,name,plan,monthly_fee,contact"), "{stderr}");
    assert!(stderr.contains("customers.csv:1: header: missing required column `monthly_fee`"), "{stderr}");
    assert!(stderr.contains("sites.csv: the file is empty; expected a header line"), "{stderr}");
}

#[test]
fn check_names_the_toml_line_of_a_bad_value() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let toml = std::fs::read_to_string(&config).unwrap().replace("connect = \"500ms\"", "connect = \"soon\"");
    std::fs::write(&config, toml).unwrap();
    let out = fleetprobe(&["check", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("fleet.toml:10: probe.timeouts.connect: `soon` is not a duration"), "{stderr}");
}

#[test]
fn byte_order_mark_and_crlf_exports_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let crlf = |s: &str| format!("\u{feff}{}", s.replace('\n', "\r\n"));
    let config = write_fleet(dir.path(), &crlf(CUSTOMERS), &crlf(SITES));
    let out = fleetprobe(&["check", "-c", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("1 sites, 1 customers, 1 clusters"));
}

#[test]
fn probe_stores_a_failed_site_as_data_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap(), "--at", "2026-10-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 of 1 checks failed"), "{stdout}");
    assert!(stdout.contains("connect_refused"), "{stdout}");

    let out = fleetprobe(&["results", "-c", config.to_str().unwrap(), "--run", "latest", "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("run_id,run_started_at,vantage,site_id,"), "{csv}");
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((row[1], row[3], row[7], row[8]), ("2026-10-01T00:00:00Z", "s1", "http", "connect_refused"), "{csv}");
}

#[test]
fn a_second_probe_does_not_overlap_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let lock = std::fs::File::create(dir.path().join("store.db.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("another fleetprobe run holds the lock"), "{}", text(&out.stderr));
    assert!(!dir.path().join("store.db").exists(), "nothing may be written while locked");
    drop(lock);
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "-q prints nothing");
}

#[test]
fn an_unwritable_store_path_is_a_store_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let store = dir.path().join("not-a-dir/store.db");
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap(), "--store", store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not-a-dir"), "{}", text(&out.stderr));
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let garbage = b"this is a text file, not a database\n".repeat(200);
    std::fs::write(dir.path().join("store.db"), &garbage).unwrap();
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("store.db"), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("store.db")).unwrap(), garbage, "the file must not be touched");
}

#[test]
fn results_without_a_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let out = fleetprobe(&["results", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("does not exist yet; run `fleetprobe probe` first"), "{}", text(&out.stderr));
}

#[test]
fn missing_configuration_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetprobe"))
        .args(["check"])
        .env_remove("FLEETPROBE_CONFIG")
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no configuration given; pass -c FILE"), "{}", text(&out.stderr));
}

#[test]
fn a_run_whose_control_targets_fail_is_stored_as_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), CUSTOMERS, SITES);
    let mut toml = std::fs::read_to_string(&config).unwrap();
    // Port 1 on loopback refuses: the prober's "own network" is down.
    toml.push_str("\n[control]\ntargets = [\"tcp://127.0.0.1:1\"]\n");
    std::fs::write(&config, toml).unwrap();
    let out = fleetprobe(&["probe", "-c", config.to_str().unwrap(), "-q"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("run 1 stored as invalid: 0 of 1 control targets answered before the sweep"), "{stderr}");

    // The run and its results are kept (for coverage), flagged invalid.
    let store =
        fleetprobe::store::open(&fleetprobe::fleet::StoreLocation::Sqlite(dir.path().join("store.db"))).unwrap();
    let runs = store.runs(None, None).unwrap();
    assert_eq!(runs.len(), 1);
    assert!(!runs[0].valid);
    assert!(runs[0].invalid_reason.as_deref().unwrap().contains("tcp://127.0.0.1:1"), "{:?}", runs[0]);
    assert_eq!(runs[0].checks, 1);
}

#[test]
fn a_killed_probe_leaves_no_half_run_behind() {
    use fleetprobe::servers::http::{Behavior, VirtualHosts};
    use std::sync::{Arc, RwLock};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every site answers after 20 s: the sweep is still running when the prober is killed.
    let slow =
        Behavior::SlowFirstByte { delay: std::time::Duration::from_secs(20), then: Box::new(Behavior::Status(200)) };
    let server = runtime
        .block_on(fleetprobe::servers::http::spawn(
            ([127, 0, 0, 1], 0).into(),
            None,
            Arc::new(RwLock::new(VirtualHosts::new(slow))),
        ))
        .unwrap();
    let port = server.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let mut sites = String::from("site_id,customer,cluster,hostname,url,checks\n");
    for i in 0..20 {
        sites.push_str(&format!("s{i},c1,one,www{i}.alpha.test,http://127.0.0.1:{port}/,http\n"));
    }
    let config = write_fleet(dir.path(), CUSTOMERS, &sites);
    let toml = std::fs::read_to_string(&config)
        .unwrap()
        .replace("connect = \"500ms\"", "first_byte = \"30s\"\ntotal = \"30s\"");
    std::fs::write(&config, toml).unwrap();

    let mut child =
        Command::new(env!("CARGO_BIN_EXE_fleetprobe")).args(["probe", "-q", "-c"]).arg(&config).spawn().unwrap();
    // Wait until the sweep has begun writing (the store exists), then kill it mid-run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.path().join("store.db-wal").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the sweep must still be running");
    child.kill().unwrap();
    child.wait().unwrap();

    let location = fleetprobe::fleet::StoreLocation::Sqlite(dir.path().join("store.db"));
    let store = fleetprobe::store::open(&location).unwrap();
    assert!(store.runs(None, None).unwrap().is_empty(), "no trace of the killed run");
    let mut results = 0;
    store
        .results(&Default::default(), &mut |_| {
            results += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(results, 0);
    drop(store);

    // The lock died with the process: the next run goes ahead (against a fast site this time).
    drop(server);
    let out = fleetprobe(&["probe", "-q", "-c", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let store = fleetprobe::store::open(&location).unwrap();
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
}
