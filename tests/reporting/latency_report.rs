//! `fleetprobe report latency` and `fleetprobe prune` end to end: two clusters served on
//! loopback, one answering its first byte 30 ms late, probed over several runs with `--at`;
//! the report must show the delay, charts must come out at the asked size, and the figures
//! must survive pruning the raw runs (they then come from the rollups).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fleetprobe::servers::http::{Behavior, VirtualHosts};

use crate::fixtures::{Customer, FleetFiles, Site, ok, run};

const DELAY_MS: f64 = 30.0;

/// Clusters `fast` and `slow`, two sites each, all of customer c1, served on the given ports.
fn two_speeds(fast_port: u16, slow_port: u16) -> FleetFiles {
    let site = |id: &str, cluster: &str, port: u16, path: &str| {
        Site::new(id, "c1", cluster, format!("www.{id}.test"))
            .url(format!("http://127.0.0.1:{port}/{path}"))
            .checks("http")
    };
    FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .retention("raw", "2d")
        .retention("hourly", "10d")
        .cluster("fast", &["127.0.0.1"])
        .cluster("slow", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha", "basic", "10.00"))
        .site(site("f1", "fast", fast_port, ""))
        .site(site("f2", "fast", fast_port, "two"))
        .site(site("s1", "slow", slow_port, ""))
        .site(site("s2", "slow", slow_port, "two"))
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
    let fleet = two_speeds(fast_server.addr().port(), slow_server.addr().port()).write_temp();
    let (dir, config) = (fleet.dir(), fleet.config().to_str().unwrap());

    for minute in 0..6 {
        let at = format!("2026-10-01T00:{minute:02}:00Z");
        ok(&run(&["probe", "-c", config, "--at", &at, "-q"]));
    }
    let report = |extra: &[&str]| {
        let mut args = vec!["report", "latency", "-c", config, "--cluster", "fast,slow", "--period", "2026-10-01"];
        args.extend_from_slice(extra);
        run(&args)
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
    assert!(
        csv.starts_with("scope,check,phase,from,to,count,p50_ms,p90_ms,p99_ms,max_ms,mean_ms,checks,failed\n"),
        "{csv}"
    );
    assert!(csv.contains("cluster slow,http,first_byte,2026-10-01T00:00:00Z,2026-10-01T01:00:00Z,12,"), "{csv}");

    // Charts: the extension picks the format, the size is as asked.
    for kind in ["bands", "heatmap", "phases", "cdf"] {
        let scope: &[&str] =
            if matches!(kind, "phases" | "cdf") { &["--cluster", "fast,slow"] } else { &["--cluster", "slow"] };
        let png = dir.join(format!("{kind}.png"));
        let mut args =
            vec!["report", "latency", "-c", config, "--from", "2026-10-01T00:00:00Z", "--to", "2026-10-01T00:10:00Z"];
        args.extend_from_slice(scope);
        args.extend_from_slice(&["--kind", kind, "--size", "800x400", "-o", png.to_str().unwrap()]);
        ok(&run(&args));
        assert_eq!(png_size(&png), (800, 400), "{kind}");
        let svg = dir.join(format!("{kind}.svg"));
        *args.last_mut().unwrap() = svg.to_str().unwrap();
        ok(&run(&args));
        roxmltree::Document::parse(&std::fs::read_to_string(&svg).unwrap()).unwrap();
    }
    let out = report(&["--kind", "bands", "-o", dir.join("x.png").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "bands of two clusters");
    assert!(String::from_utf8_lossy(&out.stderr).contains("charts one cluster or site"));
    let out = run(&["report", "latency", "-c", config, "--cluster", "nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown cluster `nowhere`; expected one of: fast, slow"));

    // Forty days on, the runs are gone and the same figures come from the rollups.
    let pruned = ok(&run(&["prune", "-c", config, "--now", "2026-11-10T00:00:00Z"]));
    assert!(pruned.contains("rolled up 1 hours, 1 days, 4 site days, 2 cluster days; removed 6 runs"), "{pruned}");
    let results = ok(&run(&["results", "-c", config]));
    assert!(results.contains("(no results match)"), "{results}");
    let after = ok(&report(&["--format", "json"]));
    assert_eq!(first_byte_p50(&after, "cluster slow"), (slow_p50, slow_count));
    let site =
        ok(&run(&["report", "latency", "-c", config, "--site", "s1", "--period", "2026-10-01", "--format", "json"]));
    let (site_p50, site_count) = first_byte_p50(&site, "site s1");
    assert_eq!(site_count, 6);
    assert!((DELAY_MS..DELAY_MS + 25.0).contains(&site_p50), "site s1 first byte p50 {site_p50} ms");
    drop((fast_server, slow_server));
}

/// Two vantages probe one cluster: `ams` while it answers at once, then `fra` while it answers
/// 30 ms late. Each vantage's figures are its own, the default merges both, and a vantage the
/// store never saw is an error naming the known ones.
#[test]
fn latency_per_vantage_is_each_vantages_own() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let body = Behavior::Ok { body: "hello".into() };
    let hosts = Arc::new(RwLock::new(VirtualHosts::new(body.clone())));
    let server = runtime
        .block_on(fleetprobe::servers::http::spawn((Ipv4Addr::LOCALHOST, 0).into(), None, Arc::clone(&hosts)))
        .unwrap();
    let fleet = two_speeds(server.addr().port(), server.addr().port()).probe("vantage", "ams").write_temp();
    let (dir, config) = (fleet.dir(), fleet.config().to_str().unwrap());
    let probe_minutes = |vantage: &str, second: u32| {
        let text = std::fs::read_to_string(config).unwrap();
        std::fs::write(config, text.replace("vantage = \"ams\"", &format!("vantage = \"{vantage}\""))).unwrap();
        for minute in 0..4 {
            ok(&run(&["probe", "-c", config, "--at", &format!("2026-10-01T00:{minute:02}:{second:02}Z"), "-q"]));
        }
    };
    probe_minutes("ams", 0);
    hosts
        .write()
        .unwrap()
        .set_default(Behavior::SlowFirstByte { delay: Duration::from_millis(DELAY_MS as u64), then: Box::new(body) });
    probe_minutes("fra", 30);

    let report = |extra: &[&str]| {
        let mut args = vec!["report", "latency", "-c", config, "--cluster", "slow", "--period", "2026-10-01"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let figures = |extra: &[&str]| {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        first_byte_p50(&ok(&report(&args)), "cluster slow")
    };
    let (ams_p50, ams_count) = figures(&["--vantage", "ams"]);
    let (fra_p50, fra_count) = figures(&["--vantage", "fra"]);
    assert_eq!((ams_count, fra_count), (8, 8), "2 sites × 4 runs of each vantage");
    assert!(ams_p50 < DELAY_MS / 2.0, "ams first byte p50 {ams_p50} ms");
    assert!((DELAY_MS..DELAY_MS + 25.0).contains(&fra_p50), "fra first byte p50 {fra_p50} ms");
    let (_, merged_count) = figures(&[]);
    assert_eq!(merged_count, 16, "both vantages merged");
    assert_eq!(figures(&["--vantage", "ams,fra"]).1, 16);
    assert_eq!(figures(&["--vantage", "fra", "--vantage", "ams"]).1, 16);

    let table = ok(&report(&[]));
    assert!(table.starts_with("http latency, 2026-10-01 (UTC), vantages: all (2)\n"), "{table}");
    let table = ok(&report(&["--vantage", "fra"]));
    assert!(table.starts_with("http latency, 2026-10-01 (UTC), vantage: fra\n"), "{table}");
    let svg = dir.join("fra.svg");
    ok(&report(&["--vantage", "fra", "--kind", "bands", "-o", svg.to_str().unwrap()]));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("vantage: fra"));

    let out = report(&["--vantage", "ams,lon"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--vantage: unknown vantage `lon`;") && stderr.contains("has runs of: ams, fra"),
        "{stderr}"
    );
    let out = run(&["report", "clusters", "-c", config, "--period", "2026-10-01", "--vantage", "lon"]);
    assert_eq!(out.status.code(), Some(2));
    let html = ok(&run(&[
        "report",
        "clusters",
        "-c",
        config,
        "--period",
        "2026-10-01",
        "--format",
        "html",
        "--vantage",
        "ams",
    ]));
    assert!(html.contains("vantage: ams"), "the latency charts say whose runs they show");
    drop(server);
}

/// The share of failed checks each cell of a chart's strip gives in its `<title>`, by the
/// cell's start ("10:15"); `None` for a cell with nothing measured.
fn strip_cells(svg: &str) -> Vec<(String, Option<f64>)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let titles: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect"))
        .filter_map(|n| n.children().find(|c| c.has_tag_name("title")).and_then(|t| t.text()).map(str::to_string))
        .skip(1) // the strip's own title
        .collect();
    titles
        .iter()
        .map(|title| {
            // "2026-10-01 10:00 – 10:15 UTC: all 10 checks failed"
            let (when, what) = title.split_once(": ").unwrap();
            let share = match what {
                w if w.starts_with("no data") => None,
                w if w.starts_with("no failed checks") => Some(0.0),
                w if w.starts_with("all ") => Some(1.0),
                w => {
                    let (failed, rest) = w.split_once(" of ").unwrap();
                    Some(failed.parse::<f64>().unwrap() / rest.split(' ').next().unwrap().parse::<f64>().unwrap())
                }
            };
            (when[11..16].to_string(), share)
        })
        .collect()
}

/// A day of runs every 15 minutes over clusters a and b: every site of a fails from 10:00 to
/// 12:00, and no run at all happens from 15:00 to 16:00. Both leave a gap in the latency, but
/// the strip under the bands and the heatmap marks the first two hours as failed (share 1) and
/// the third as no data, and every other bucket as clean; the hourly table counts them too.
#[test]
fn the_strip_marks_failed_hours_and_hours_without_runs() {
    let fleet = crate::fixtures::clusters_a_and_b().store("store.db").write_temp().at("2026-10-02T00:00:00Z");
    let dir = fleet.dir();
    let mut csv = String::from("run_started_at,site_id,check,outcome,http_status,first_byte_ms,total_ms\n");
    let sites: Vec<String> = (1..=10).map(|i| format!("a{i}")).chain((1..=5).map(|i| format!("b{i}"))).collect();
    for run in 0..96 {
        let minute = run * 15;
        if (15 * 60..16 * 60).contains(&minute) {
            continue;
        }
        let at = jiff::Timestamp::from_second(1_790_812_800 + minute * 60).unwrap(); // from 2026-10-01
        for site in &sites {
            if site.starts_with('a') && (10 * 60..12 * 60).contains(&minute) {
                csv.push_str(&format!("{at},{site},http,connect_refused,,,\n"));
            } else {
                csv.push_str(&format!("{at},{site},http,ok,200,20,22\n"));
            }
        }
    }
    std::fs::write(dir.join("results.csv"), csv).unwrap();
    ok(&fleet.run(&["import", "--valid", "yes", dir.join("results.csv").to_str().unwrap()]));

    for kind in ["bands", "heatmap"] {
        let svg = dir.join(format!("{kind}.svg"));
        let args = ["report", "latency", "--cluster", "a", "--period", "2026-10-01", "--kind", kind];
        ok(&fleet.run(&[&args[..], &["-o", svg.to_str().unwrap()]].concat()));
        let cells = strip_cells(&std::fs::read_to_string(&svg).unwrap());
        assert_eq!(cells.len(), 96, "{kind}: a cell per 15 minutes of the day");
        for (start, share) in &cells {
            let expected = match start.as_str() {
                s if ("10:00".."12:00").contains(&s) => Some(1.0),
                s if ("15:00".."16:00").contains(&s) => None,
                _ => Some(0.0),
            };
            assert_eq!(*share, expected, "{kind} at {start}");
        }
        // The PNG is drawn from the same picture.
        let png = dir.join(format!("{kind}.png"));
        ok(&fleet.run(&[&args[..], &["-o", png.to_str().unwrap()]].concat()));
        assert_eq!(png_size(&png), (1000, 500));
    }

    // Per hour, the table counts the checks and failures of each hour; the failed hours have a
    // row without percentiles, the hour without runs none.
    let json = fleet.ok(&[
        "report",
        "latency",
        "--cluster",
        "a",
        "--period",
        "2026-10-01",
        "--by",
        "hour",
        "--format",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let first_byte: Vec<&serde_json::Value> =
        rows.as_array().unwrap().iter().filter(|r| r["phase"] == "first_byte").collect();
    let hours: Vec<(String, u64, u64, bool)> = first_byte
        .iter()
        .map(|r| {
            let from = r["from"].as_str().unwrap()[11..16].to_string();
            (from, r["checks"].as_u64().unwrap(), r["failed"].as_u64().unwrap(), r["p50_ms"].is_number())
        })
        .collect();
    assert_eq!(hours.len(), 23, "{json}");
    for (from, checks, failed, timed) in &hours {
        let expected = if from == "10:00" || from == "11:00" { (40, 40, false) } else { (40, 0, true) };
        assert_eq!((*checks, *failed, *timed), expected, "hour {from}");
    }
    assert!(!hours.iter().any(|h| h.0 == "15:00"));
    let csv =
        fleet.ok(&["report", "latency", "--cluster", "a", "--period", "2026-10-01", "--by", "hour", "--format", "csv"]);
    assert!(
        csv.contains("cluster a,http,first_byte,2026-10-01T10:00:00Z,2026-10-01T11:00:00Z,0,,,,,,40,40\n"),
        "{csv}"
    );
}
