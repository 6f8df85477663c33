//! `fleetprobe report latency` and `fleetprobe prune` end to end: two clusters served on
//! loopback, one answering its first byte 30 ms late, probed over several runs with `--at`;
//! the report must show the delay, charts must come out at the asked size, and the figures
//! must survive pruning the raw runs (they then come from the rollups).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetprobe::servers::http::{Behavior, VirtualHosts};

const DELAY_MS: f64 = 30.0;

fn fleetprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetprobe"))
        .args(args)
        .env_remove("FLEETPROBE_CONFIG")
        .env_remove("FLEETPROBE_STORE")
        .env_remove("FLEETPROBE_NOW")
        .env_remove("FLEETPROBE_TZ")
        .output()
        .expect("the fleetprobe binary runs")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_fleet(dir: &Path, fast_port: u16, slow_port: u16) -> PathBuf {
    let config = dir.join("fleet.toml");
    std::fs::write(
        &config,
        r#"
[store]
url = "store.db"

[probe]
retries = 0
spread = "0s"

[retention]
raw = "2d"
hourly = "10d"

[inventory]
sites = "sites.csv"
customers = "customers.csv"

[[cluster]]
name = "fast"
frontends = ["127.0.0.1"]

[[cluster]]
name = "slow"
frontends = ["127.0.0.1"]

[[plan]]
name = "basic"
target = 99.9
"#,
    )
    .unwrap();
    std::fs::write(dir.join("customers.csv"), "customer_id,name,plan,monthly_fee\nc1,Alpha,basic,10.00\n").unwrap();
    std::fs::write(
        dir.join("sites.csv"),
        format!(
            "site_id,customer,cluster,hostname,url,checks\n\
             f1,c1,fast,www.f1.test,http://127.0.0.1:{fast_port}/,http\n\
             f2,c1,fast,www.f2.test,http://127.0.0.1:{fast_port}/two,http\n\
             s1,c1,slow,www.s1.test,http://127.0.0.1:{slow_port}/,http\n\
             s2,c1,slow,www.s2.test,http://127.0.0.1:{slow_port}/two,http\n"
        ),
    )
    .unwrap();
    config
}

fn first_byte_p50(json: &str, scope: &str) -> (f64, u64) {
    let rows: serde_json::Value = serde_json::from_str(json).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["scope"] == scope && r["phase"] == "first_byte")
        .unwrap_or_else(|| panic!("no first_byte row for {scope} in {json}"));
    (row["p50_ms"].as_f64().unwrap(), row["count"].as_u64().unwrap())
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

#[test]
fn the_latency_report_shows_a_slow_clusters_first_byte() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let body = Behavior::Ok { body: "hello".into() };
    let slow = Behavior::SlowFirstByte { delay: Duration::from_millis(DELAY_MS as u64), then: Box::new(body.clone()) };
    let (fast_server, slow_server) = runtime.block_on(async {
        let serve = |b: Behavior| {
            fleetprobe::servers::http::spawn((loopback, 0).into(), None, Arc::new(RwLock::new(VirtualHosts::new(b))))
        };
        (serve(body).await.unwrap(), serve(slow).await.unwrap())
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_fleet(dir.path(), fast_server.addr().port(), slow_server.addr().port());
    let config = config.to_str().unwrap();

    for minute in 0..6 {
        let at = format!("2026-10-01T00:{minute:02}:00Z");
        ok(&fleetprobe(&["probe", "-c", config, "--at", &at, "-q"]));
    }
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "latency", "-c", config, "--cluster", "fast,slow", "--period", "2026-10-01"];
        args.extend_from_slice(extra);
        fleetprobe(&args)
    };
    let json = ok(&report(&["--format", "json"]));
    let (slow_p50, slow_count) = first_byte_p50(&json, "cluster slow");
    let (fast_p50, fast_count) = first_byte_p50(&json, "cluster fast");
    assert_eq!((slow_count, fast_count), (12, 12), "2 sites × 6 runs each");
    assert!((DELAY_MS..DELAY_MS + 25.0).contains(&slow_p50), "slow first byte p50 {slow_p50} ms");
    assert!(fast_p50 < DELAY_MS / 2.0, "fast first byte p50 {fast_p50} ms");

    let table = ok(&report(&[]));
    assert!(table.contains("http latency, 2026-10-01"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("cluster slow") && l.contains("first_byte")), "{table}");
    let csv = ok(&report(&["--format", "csv", "--by", "hour"]));
    assert!(csv.starts_with("scope,check,phase,from,to,count,p50_ms,p90_ms,p99_ms,max_ms,mean_ms\n"), "{csv}");
    assert!(csv.contains("cluster slow,http,first_byte,2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,12,"), "{csv}");

    // Charts: the extension picks the format, the size is as asked.
    for kind in ["bands", "heatmap", "phases", "cdf"] {
        let scope: &[&str] =
            if matches!(kind, "phases" | "cdf") { &["--cluster", "fast,slow"] } else { &["--cluster", "slow"] };
        let png = dir.path().join(format!("{kind}.png"));
        let mut args =
            vec!["report", "latency", "-c", config, "--from", "2026-10-01T00:00:00Z", "--to", "2026-10-01T00:10:00Z"];
        args.extend_from_slice(scope);
        args.extend_from_slice(&["--kind", kind, "--size", "800x400", "-o", png.to_str().unwrap()]);
        ok(&fleetprobe(&args));
        assert_eq!(png_size(&png), (800, 400), "{kind}");
        let svg = dir.path().join(format!("{kind}.svg"));
        *args.last_mut().unwrap() = svg.to_str().unwrap();
        ok(&fleetprobe(&args));
        roxmltree::Document::parse(&std::fs::read_to_string(&svg).unwrap()).unwrap();
    }
    let out = report(&["--kind", "bands", "-o", dir.path().join("x.png").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "bands of two clusters");
    assert!(String::from_utf8_lossy(&out.stderr).contains("charts one cluster or site"));
    let out = fleetprobe(&["report", "latency", "-c", config, "--cluster", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown cluster `nowhere`; expected one of: fast, slow"));

    // Forty days on, the runs are gone and the same figures come from the rollups.
    let pruned = ok(&fleetprobe(&["prune", "-c", config, "--now", "2026-11-10T00:00:00Z"]));
    assert!(pruned.contains("rolled up 1 hours, 1 days, 4 site days; removed 6 runs"), "{pruned}");
    let results = ok(&fleetprobe(&["results", "-c", config]));
    assert!(results.contains("(no results match)"), "{results}");
    let after = ok(&report(&["--format", "json"]));
    assert_eq!(first_byte_p50(&after, "cluster slow"), (slow_p50, slow_count));
    let site = ok(&fleetprobe(&[
        "report",
        "latency",
        "-c",
        config,
        "--site",
        "s1",
        "--period",
        "2026-10-01",
        "--format",
        "json",
    ]));
    let (site_p50, site_count) = first_byte_p50(&site, "site s1");
    assert_eq!(site_count, 6);
    assert!((DELAY_MS..DELAY_MS + 25.0).contains(&site_p50), "site s1 first byte p50 {site_p50} ms");
    drop((fast_server, slow_server));
}
