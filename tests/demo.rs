//! `fleetprobe demo` end to end: the example fleet served in-process, one real sweep, and the
//! stored results compared site by site with the faults the demo injected.

use std::process::Command;

#[test]
fn demo_finds_exactly_the_sites_it_broke() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fleetprobe")).args(["demo", "--dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("403 sites of 145 customers on 4 clusters"), "{stdout}");
    assert!(stdout.contains("probed 806 checks"), "{stdout}");
    assert!(stdout.contains("10 failed, 7 sites down"), "{stdout}");

    // The store holds every check; read it back through the results command.
    let config = dir.path().join("fleetprobe.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_fleetprobe"))
        .args(["results", "--run", "latest", "--format", "csv", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let mut failed = std::collections::BTreeMap::new();
    let mut rows = 0;
    for row in csv.records() {
        let row = row.unwrap();
        rows += 1;
        if &row[8] != "ok" {
            failed.insert(format!("{} {}", &row[3], &row[7]), row[8].to_string());
        }
    }
    assert_eq!(rows, 806);
    let expected: std::collections::BTreeMap<String, String> = [
        ("c0002-s1 http", "redirect_loop"),
        ("c0003-s2 http", "dns_servfail"),
        ("c0003-s2 dns", "dns_servfail"),
        ("c0003-s11 http", "tls_expired"),
        ("c0003-s16 http", "http_status"),
        ("c0004-s1 http", "dns_nxdomain"),
        ("c0004-s1 dns", "dns_nxdomain"),
        ("c0006-s1 http", "connect_refused"),
        ("c0006-s1 dns", "dns_wrong_answer"),
        ("c0022-s1 http", "timeout(first_byte)"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(failed, expected);
}
