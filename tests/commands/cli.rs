//! The binary driven end to end on fixtures built by each test: validation errors, the run lock,
//! unusable stores, exit codes.

use std::process::Command;

use crate::fixtures::{Customer, FleetFiles, Site, fleetprobe, run, stderr, stdout};

/// One cluster on 127.0.0.1, one plan, one customer; no retries, no spread.
fn one_cluster() -> FleetFiles {
    FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha GmbH", "basic", "10.00").contact("a@example.net"))
}

/// A one-site fleet whose only check fails fast (connection refused on port 1).
fn refused_fleet() -> FleetFiles {
    one_cluster()
        .timeout("connect", "500ms")
        .site(Site::new("s1", "c1", "one", "www.alpha.test").url("http://127.0.0.1:1/").checks("http"))
}

/// The one-site fleet's inventory as text, for the tests about the text.
const CUSTOMERS: &str = "customer_id,name,plan,monthly_fee,contact\nc1,Alpha GmbH,basic,10.00,a@example.net\n";
const SITES: &str = "site_id,customer,cluster,hostname,url,expected_addresses,checks,keyword\n\
                     s1,c1,one,www.alpha.test,http://127.0.0.1:1/,,http,\n";

#[test]
fn check_summarizes_the_example_fleet() {
    let out = run(&["check", "-c", concat!(env!("CARGO_MANIFEST_DIR"), "/probes/example.toml")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(stdout.contains("403 sites, 145 customers, 4 clusters"), "{stdout}");
    let ams2: Vec<&str> = stdout.lines().find(|l| l.starts_with("ams-2")).unwrap().split_whitespace().collect();
    assert_eq!(ams2, ["ams-2", "137", "56"], "{stdout}");
}

#[test]
fn check_reports_every_inventory_problem_with_file_line_and_field() {
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
    let fleet = refused_fleet().customers_csv(customers).sites_csv(sites).write_temp();
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr(&out);
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
    let fleet = refused_fleet().customers_csv("id,name,plan,fee\nc1,A,basic,1\n").sites_csv("").write_temp();
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr(&out);
    assert!(stderr.contains("customers.csv:1: column 1: unknown column `id`; expected columns: customer_id,name,plan,monthly_fee,contact"), "{stderr}");
    assert!(stderr.contains("customers.csv:1: header: missing required column `monthly_fee`"), "{stderr}");
    assert!(stderr.contains("sites.csv: the file is empty; expected a header line"), "{stderr}");
}

#[test]
fn check_names_the_toml_line_of_a_bad_value() {
    let fleet = refused_fleet().write_temp();
    // The error names line 10 of exactly this text.
    let toml = r#"
[store]
url = "store.db"

[probe]
retries = 0
spread = "0s"

[probe.timeouts]
connect = "soon"

[inventory]
sites = "sites.csv"
customers = "customers.csv"

[[cluster]]
name = "one"
frontends = ["127.0.0.1"]

[[plan]]
name = "basic"
target = 99.9
"#;
    std::fs::write(fleet.config(), toml).unwrap();
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr(&out);
    assert!(stderr.contains("fleet.toml:10: probe.timeouts.connect: `soon` is not a duration"), "{stderr}");
}

#[test]
fn byte_order_mark_and_crlf_exports_are_accepted() {
    let crlf = |s: &str| format!("\u{feff}{}", s.replace('\n', "\r\n"));
    let fleet = refused_fleet().customers_csv(crlf(CUSTOMERS)).sites_csv(crlf(SITES)).write_temp();
    let out = fleet.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 sites, 1 customers, 1 clusters"));
}

#[test]
fn probe_stores_a_failed_site_as_data_and_exits_zero() {
    let fleet = refused_fleet().write_temp();
    let out = fleet.run(&["probe", "--at", "2026-10-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = stdout(&out);
    assert!(stdout.contains("1 of 1 checks failed"), "{stdout}");
    assert!(stdout.contains("connect_refused"), "{stdout}");

    let out = fleet.run(&["results", "--run", "latest", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = crate::fixtures::stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("run_id,run_started_at,vantage,site_id,"), "{csv}");
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((row[1], row[3], row[7], row[8]), ("2026-10-01T00:00:00Z", "s1", "http", "connect_refused"), "{csv}");
}

#[test]
fn a_second_probe_does_not_overlap_a_running_one() {
    let fleet = refused_fleet().write_temp();
    let lock = std::fs::File::create(fleet.dir().join("store.db.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = fleet.run(&["probe"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("another fleetprobe run holds the lock"), "{}", stderr(&out));
    assert!(!fleet.dir().join("store.db").exists(), "nothing may be written while locked");
    drop(lock);
    let out = fleet.run(&["probe", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "-q prints nothing");
}

#[test]
fn an_unwritable_store_path_is_a_store_error() {
    let fleet = refused_fleet().write_temp();
    std::fs::write(fleet.dir().join("not-a-dir"), "").unwrap();
    let store = fleet.dir().join("not-a-dir/store.db");
    let out = fleet.run(&["probe", "--store", store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("not-a-dir"), "{}", stderr(&out));
}

#[test]
fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
    let fleet = refused_fleet().write_temp();
    let garbage = b"this is a text file, not a database\n".repeat(200);
    std::fs::write(fleet.dir().join("store.db"), &garbage).unwrap();
    let out = fleet.run(&["probe"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("store.db"), "{}", stderr(&out));
    assert_eq!(std::fs::read(fleet.dir().join("store.db")).unwrap(), garbage, "the file must not be touched");
}

#[test]
fn results_without_a_store_says_so() {
    let fleet = refused_fleet().write_temp();
    let out = fleet.run(&["results"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("does not exist yet; run `fleetprobe probe` first"), "{}", stderr(&out));
}

#[test]
fn missing_configuration_is_a_usage_error() {
    let out = fleetprobe()
        .args(["check"])
        .env("HOME", "/nonexistent")
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no configuration given; pass -c FILE"), "{}", stderr(&out));
}

#[test]
fn a_run_whose_control_targets_fail_is_stored_as_invalid() {
    // Port 1 on loopback refuses: the prober's "own network" is down.
    let fleet = refused_fleet().control_targets(&["tcp://127.0.0.1:1"]).write_temp();
    let out = fleet.run(&["probe", "-q"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let stderr = stderr(&out);
    assert!(stderr.contains("run 1 stored as invalid: 0 of 1 control targets answered before the sweep"), "{stderr}");

    // The run and its results are kept (for coverage), flagged invalid.
    let store =
        fleetprobe::store::open(&fleetprobe::fleet::StoreLocation::Sqlite(fleet.dir().join("store.db"))).unwrap();
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
    let sites = (0..20).map(|i| {
        Site::new(format!("s{i}"), "c1", "one", format!("www{i}.alpha.test"))
            .url(format!("http://127.0.0.1:{port}/"))
            .checks("http")
    });
    let fleet = one_cluster().timeout("first_byte", "30s").timeout("total", "30s").sites(sites).write_temp();
    let (dir, config) = (fleet.dir(), fleet.config());

    let mut child =
        Command::new(env!("CARGO_BIN_EXE_fleetprobe")).args(["probe", "-q", "-c"]).arg(config).spawn().unwrap();
    // Wait until the sweep has begun writing (the store exists), then kill it mid-run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dir.join("store.db-wal").exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "the sweep must still be running");
    child.kill().unwrap();
    child.wait().unwrap();

    let location = fleetprobe::fleet::StoreLocation::Sqlite(dir.join("store.db"));
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
    let out = fleet.run(&["probe", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let store = fleetprobe::store::open(&location).unwrap();
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
}

/// `fleetprobe results | head -1`: the reader goes away after one line; the command ends quietly
/// and successfully, as Unix tools do, in both formats.
#[test]
fn a_reader_that_stops_early_ends_results_quietly() {
    use std::io::{BufRead, BufReader};

    let fleet = refused_fleet().write_temp();
    let mut csv = String::from("run_started_at,site_id,check,outcome\n");
    for run in 0..4000 {
        let at = jiff::Timestamp::from_second(1_790_812_800 + run * 60).unwrap();
        csv.push_str(&format!("{at},s1,http,connect_refused\n"));
    }
    let file = fleet.dir().join("results.csv");
    std::fs::write(&file, csv).unwrap();
    let out = fleet.run(&["import", "--valid", "yes", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for format in ["csv", "table"] {
        let mut child = fleetprobe()
            .args(["results", "--format", format, "-c"])
            .arg(fleet.config())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with("run_id"), "{first}");
        // The reader is dropped here, as `head -1` exits.
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{format}: {}", stderr(&out));
    }
}

#[test]
fn check_names_the_line_of_a_bad_quorum_shard_or_source_address() {
    let fleet = refused_fleet().write_temp();
    let text = std::fs::read_to_string(fleet.config()).unwrap();
    let text = format!("{text}\n[analysis]\nquorum = \"most\"\n",).replacen(
        "[probe]\n",
        "[probe]\nshard = \"3/2\"\nsource_address = \"here\"\n",
        1,
    );
    std::fs::write(fleet.config(), &text).unwrap();
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let stderr = stderr(&out);
    let line = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    for (key, field, what) in [
        ("quorum", "analysis.quorum", "is not a quorum"),
        ("shard", "probe.shard", "is not a shard"),
        ("source_address", "probe.source_address", "is not an IP address"),
    ] {
        let expected = format!("fleet.toml:{}: {field}: ", line(key));
        assert!(stderr.contains(&expected) && stderr.contains(what), "{expected} {what}: {stderr}");
    }
}

#[test]
fn shards_split_the_sites_between_probers() {
    let fleet = refused_fleet().write_temp();
    let first = fleet.run(&["probe", "--shard", "1/2", "--at", "2026-10-01T00:00:00Z"]);
    let second = fleet.run(&["probe", "--shard", "2/2", "--at", "2026-10-01T00:01:00Z"]);
    assert_eq!((first.status.code(), second.status.code()), (Some(0), Some(0)), "{}", stderr(&second));
    // The one site is in exactly one of the two shards.
    let failed = [stdout(&first), stdout(&second)].iter().filter(|o| o.contains("1 of 1 checks failed")).count();
    assert_eq!(failed, 1);
    let out = fleet.run(&["probe", "--shard", "0/2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
