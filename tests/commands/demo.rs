//! `fleetprobe demo` end to end: the example fleet served in-process; one real sweep with its
//! stored results compared site by site with the faults the demo injected (`--once`), and a
//! short scenario over simulated time whose reports must exist and parse.

use std::process::Command;
use std::sync::Mutex;

use crate::fixtures::{TestDatabase, fleetprobe, stderr, temp_dir};

/// The demo serves fixed loopback addresses: its tests take turns.
static DEMO: Mutex<()> = Mutex::new(());

#[test]
fn demo_finds_exactly_the_sites_it_broke() {
    let _turn = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir();
    let out = fleetprobe().args(["demo", "--once", "--dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("403 sites of 145 customers on 4 clusters"), "{stdout}");
    assert!(stdout.contains("probed 810 checks"), "{stdout}");
    assert!(stdout.contains("10 failed, 7 sites down"), "{stdout}");

    // The store holds every check; read it back through the results command.
    let config = dir.path().join("fleetprobe.toml");
    let out = fleetprobe().args(["results", "--run", "latest", "--format", "csv", "-c"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
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
    assert_eq!(rows, 810);
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

#[test]
fn a_short_scenario_writes_reports_that_parse() {
    let _turn = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir();
    // Six simulated hours of 15-minute runs: a 503 storage failure on 40% of fra-1 for an hour.
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        "start = \"2026-10-14T20:00:00Z\"\nduration = \"6h\"\ninterval = \"15m\"\n\n\
         [[fault]]\nname = \"fra-1 storage\"\nkind = \"http_503\"\ncluster = \"fra-1\"\nshare = 0.4\n\
         from = \"2026-10-14T21:00:00Z\"\nto = \"2026-10-14T22:00:00Z\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("demo");
    let out = fleetprobe().args(["demo", "--scenario"]).arg(&scenario).arg("--dir").arg(&out_dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("24 runs of 403 sites"), "{stdout}");
    // Ops' side: the storage incident posted to the demo's webhook receiver once opened and once
    // resolved, and the metrics file written after the last run.
    assert!(stdout.contains("webhook: 2 events posted"), "{stdout}");
    assert!(
        stdout.contains("[opened] fra-1-20261014T2100 opened")
            && stdout.contains("[resolved] fra-1-20261014T2100 resolved"),
        "{stdout}"
    );
    let metrics = std::fs::read_to_string(out_dir.join("fleetprobe.prom")).expect("the metrics file");
    assert!(
        metrics.contains("fleetprobe_cluster_open_incidents{vantage=\"demo-prober\",cluster=\"fra-1\"} 0"),
        "{metrics}"
    );

    // The cluster report: HTML with inline SVG charts that parse as XML, and the incident.
    let html = std::fs::read_to_string(out_dir.join("clusters.html")).unwrap();
    assert!(html.contains("fra-1-20261014T2100"), "the storage incident is listed");
    let svgs: Vec<&str> = html.split("<svg").skip(1).map(|rest| rest.split("</svg>").next().unwrap()).collect();
    assert!(svgs.len() >= 4, "two charts per cluster");
    for svg in svgs {
        roxmltree::Document::parse(&format!("<svg{svg}</svg>")).expect("inline SVG is well-formed");
    }
    // Credits: one row per customer.
    let mut credits = csv::Reader::from_path(out_dir.join("credits.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = credits.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 145);
    // The SLA PDF is the worst-hit customer's: the lowest availability in credits.csv.
    let availability = |r: &csv::StringRecord| r[3].trim_end_matches('%').parse::<f64>().unwrap_or(f64::INFINITY);
    let worst = rows.iter().min_by(|a, b| availability(a).total_cmp(&availability(b))).unwrap();
    let pdf = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pdf"))
        .expect("an SLA PDF");
    let pdf_customer =
        pdf.file_name().unwrap().to_string_lossy().trim_start_matches("sla-").trim_end_matches(".pdf").to_string();
    let pdf_row = rows.iter().find(|r| r[0] == pdf_customer).expect("the PDF's customer is in credits.csv");
    assert_eq!(availability(pdf_row), availability(worst), "{pdf_row:?} is not the worst hit: {worst:?}");
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    match Command::new("pdftotext").arg(&pdf).arg("-").output() {
        Ok(text) if text.status.success() => {
            let text = String::from_utf8_lossy(&text.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                text.contains("below your 99.9% target")
                    || text.contains("below your 99.5% target")
                    || text.contains("below your 99.95% target"),
                "{text}"
            );
        }
        _ if std::env::var_os("CI").is_some() => panic!("pdftotext (poppler-utils) is needed in CI"),
        _ => println!("SKIPPED the PDF text check: pdftotext not installed"),
    }
    // Latency charts: PNG files.
    for name in ["latency-lon-1-bands.png", "latency-lon-1-heatmap.png"] {
        let png = std::fs::read(out_dir.join(name)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{name}");
    }
    // The status page and its feed.
    let page = std::fs::read_to_string(out_dir.join("status/index.html")).unwrap();
    assert!(page.contains("fra-1-20261014T2100") && page.contains("href=\"feed.atom\""));
    let feed = std::fs::read_to_string(out_dir.join("status/feed.atom")).unwrap();
    roxmltree::Document::parse(&feed).expect("feed.atom is well-formed");
}

#[test]
fn a_broken_scenario_is_refused_with_every_problem_named() {
    let dir = temp_dir();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        "start = \"2026-10-13T12:00:00Z\"\nduration = \"1h\"\ninterval = \"15m\"\n[[fault]]\nname = \"x\"\n\
         kind = \"meltdown\"\ncluster = \"zz\"\nfrom = \"2026-10-13T12:00:00Z\"\nto = \"soon\"\n\
         [path_break]\ncluster = \"yy\"\nfrom = \"2026-10-13T12:00:00Z\"\nto = \"2026-10-13T13:00:00Z\"\n",
    )
    .unwrap();
    let out = fleetprobe()
        .args(["demo", "--scenario"])
        .arg(&scenario)
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr(&out);
    for expected in [
        "scenario.toml:6: fault[0].kind: unknown kind `meltdown`",
        "scenario.toml:7: fault[0].cluster: unknown cluster `zz`",
        "scenario.toml:9: fault[0].to: `soon` is not a UTC time",
        "scenario.toml:11: path_break.cluster: unknown cluster `yy`",
        "4 problems found",
    ] {
        assert!(stderr.contains(expected), "missing `{expected}` in:\n{stderr}");
    }
}

/// Three vantages play the scenario that one played: the real fault gives the same incident,
/// figure for figure, and the hour in which the last vantage's path to lon-1 is broken is that
/// vantage's own failure (every lon-1 site, 60 minutes each), named as its path, not an outage.
#[test]
fn three_vantages_see_the_same_incidents_and_one_broken_path() {
    let _turn = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        "start = \"2026-10-14T20:00:00Z\"\nduration = \"6h\"\ninterval = \"15m\"\n\n\
         [[fault]]\nname = \"fra-1 storage\"\nkind = \"http_503\"\ncluster = \"fra-1\"\nshare = 0.4\n\
         from = \"2026-10-14T21:00:00Z\"\nto = \"2026-10-14T22:00:00Z\"\n\n\
         [path_break]\ncluster = \"lon-1\"\nfrom = \"2026-10-14T22:30:00Z\"\nto = \"2026-10-14T23:30:00Z\"\n",
    )
    .unwrap();
    let play = |name: &str, vantages: &str| {
        let out_dir = dir.path().join(name);
        let out = fleetprobe()
            .args(["demo", "--vantages", vantages, "--scenario"])
            .arg(&scenario)
            .arg("--dir")
            .arg(&out_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
        let config = out_dir.join("fleetprobe.toml");
        let report = |what: &str| -> serde_json::Value {
            let out = fleetprobe()
                .args(["report", what, "--from", "2026-10-14T20:00:00Z", "--to", "2026-10-15T02:00:00Z"])
                .args(["--format", "json", "-c"])
                .arg(&config)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        };
        (stdout, report("incidents"), report("clusters"))
    };
    let (one_out, one_incidents, one_clusters) = play("one", "1");
    let (three_out, three_incidents, three_clusters) = play("three", "3");
    assert!(one_out.contains("measured by 1 vantage (demo-prober)\n"), "{one_out}");
    assert!(
        three_out.contains("measured by 3 vantages (par-probe, waw-probe, mad-probe), down by majority (2 of 3)"),
        "{three_out}"
    );
    assert!(three_out.contains("mad-probe's path to lon-1 broken (127.0.20.3 refused"), "{three_out}");

    let incidents = three_incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{three_incidents}");
    assert_eq!(incidents[0]["id"], "fra-1-20261014T2100");
    assert_eq!(three_incidents, one_incidents, "the same incidents, shares and minutes");
    assert_eq!(three_clusters["clusters"], one_clusters["clusters"], "the same availability per cluster");
    assert_eq!(three_clusters["vantages"], 3);
    assert_eq!(one_clusters["vantage_local_failures"], serde_json::json!([]));
    assert_eq!(
        three_clusters["vantage_local_failures"],
        serde_json::json!([{
            "vantage": "mad-probe",
            "cluster": "lon-1",
            "sites": 126,
            "site_minutes": 126 * 60,
            "peak_sites": 126,
            "likely_vantage_path": true
        }])
    );
}

/// `--store postgres://...`: the scenario is played into that database, the demo's configuration
/// points at it so that reports read it, and a database that already holds data is refused.
#[test]
fn the_demo_plays_into_an_empty_postgres_database_only() {
    let Some(db) = TestDatabase::create("demo") else { return };
    let _turn = DEMO.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir();
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        "start = \"2026-10-14T20:30:00Z\"\nduration = \"2h\"\ninterval = \"15m\"\n\n\
         [[fault]]\nname = \"fra-1 storage\"\nkind = \"http_503\"\ncluster = \"fra-1\"\nshare = 0.4\n\
         from = \"2026-10-14T21:00:00Z\"\nto = \"2026-10-14T22:00:00Z\"\n",
    )
    .unwrap();
    let out_dir = dir.path().join("demo");
    let demo = |store: &str| {
        fleetprobe()
            .args(["demo", "--store", store, "--scenario"])
            .arg(&scenario)
            .arg("--dir")
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    let out = demo(&db.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", stderr(&out));
    assert!(stdout.contains("8 runs of 403 sites") && stdout.contains("store: postgres://"), "{stdout}");
    assert!(!out_dir.join("fleetprobe.db").exists(), "nothing written to SQLite");

    // The demo's configuration reads the same database.
    let config = std::fs::read_to_string(out_dir.join("fleetprobe.toml")).unwrap();
    assert!(config.contains(&format!("url = \"{}\"", db.url)), "{config}");
    let out = fleetprobe()
        .args(["report", "incidents", "--from", "2026-10-14T20:30:00Z", "--to", "2026-10-14T22:30:00Z"])
        .args(["--format", "json", "-c"])
        .arg(out_dir.join("fleetprobe.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let incidents: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(incidents[0]["id"], "fra-1-20261014T2100", "{incidents}");
    assert_eq!(incidents[0]["duration_minutes"], 60);
    let mut client = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let runs: i64 = client.query_one("SELECT count(*) FROM runs", &[]).unwrap().get(0);
    assert_eq!(runs, 8);

    // Played again into the same database: refused, nothing added.
    let out = demo(&db.url);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("the database already holds fleetprobe data (runs of demo-prober)")
            && message.contains("empty database only"),
        "{message}"
    );
    let runs: i64 = client.query_one("SELECT count(*) FROM runs", &[]).unwrap().get(0);
    assert_eq!(runs, 8);
    // Only PostgreSQL: the demo's SQLite file is its directory's.
    let out = demo("elsewhere.db");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--store elsewhere.db: expected a PostgreSQL URL"), "{}", stderr(&out));
}
