//! `[notify]`: incidents announced to webhooks and to a real Alertmanager. A loopback receiver in
//! the test counts what arrives across many `fleetprobe probe` runs (each event exactly once,
//! retried after the receiver was down, a receiver that never answers holds a run for at most
//! `notify.deadline`); the Alertmanager part runs Debian's `prometheus-alertmanager` on a
//! loopback port (SKIPPED without it unless `CI` is set).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use toml::Value;

use crate::fixtures::{Customer, FleetFiles, Site, TempFleet, stderr};

/// How the loopback server answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Up,
    /// 503 to everything.
    Down,
    /// Reads the request and never answers.
    Silent,
}

/// A request as received: method, path, body, and the status it got (`None`: no answer).
#[derive(Clone, Debug)]
struct Received {
    method: String,
    body: String,
    status: Option<u16>,
}

/// A loopback HTTP/1.1 server: answers GET and POST by its mode, keeps what it received.
struct Server {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (m, r) = (mode.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (m, r) = (m.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &m, &r));
            }
        });
        Server { port, mode, received }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The JSON documents POSTed and answered 2xx.
    fn accepted(&self) -> Vec<serde_json::Value> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|r| r.method == "POST" && r.status.is_some_and(|s| s < 300))
            .map(|r| serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body)))
            .collect()
    }

    fn posts(&self) -> usize {
        self.received.lock().unwrap().iter().filter(|r| r.method == "POST").count()
    }
}

fn serve(stream: TcpStream, mode: &Mutex<Mode>, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let method = request_line.split(' ').next().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&body).into_owned();
    let now = *mode.lock().unwrap();
    let status = match now {
        Mode::Up => 200,
        Mode::Down => 503,
        Mode::Silent => {
            received.lock().unwrap().push(Received { method, body, status: None });
            std::thread::sleep(Duration::from_secs(20));
            return;
        }
    };
    received.lock().unwrap().push(Received { method, body, status: Some(status) });
    let mut stream = stream;
    let _ = write!(stream, "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
}

/// Two customers' sites on cluster `one`, both served by `site` (which the test turns up and
/// down), probed once a simulated minute.
fn fleet(site: &Server, configure: impl FnOnce(FleetFiles) -> FleetFiles) -> TempFleet {
    let files = FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .probe("vantage", "ams-probe")
        .timeout("connect", "500ms")
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customers([Customer::new("c1", "Alpha", "basic", "10.00"), Customer::new("c2", "Beta", "basic", "10.00")])
        .sites([
            Site::new("s1", "c1", "one", "www.alpha.test").url(site.url()).checks("http"),
            Site::new("s2", "c2", "one", "www.beta.test").url(site.url()).checks("http"),
        ]);
    configure(files).write_temp()
}

fn at(minute: usize) -> String {
    format!("2026-10-01T00:{minute:02}:00Z")
}

fn probe(fleet: &TempFleet, minute: usize) -> Duration {
    let start = Instant::now();
    let out = fleet.run(&["probe", "-q", "--at", &at(minute)]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "run at minute {minute}: {}", stderr(&out));
    took
}

fn events(accepted: &[serde_json::Value]) -> Vec<(String, String)> {
    accepted
        .iter()
        .map(|d| (d["event"].as_str().unwrap().to_string(), d["incident"]["id"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[test]
fn each_incident_is_opened_and_resolved_exactly_once_across_runs() {
    let site = Server::start(Mode::Down);
    let hook = Server::start(Mode::Up);
    let other = Server::start(Mode::Up);
    let fleet = fleet(&site, |f| {
        f.notify_target("webhook", &hook.url(), &[("name", "ops-hook".into())]).notify_target(
            "webhook",
            &other.url(),
            &[("name", "majors".into()), ("scope", "major".into())],
        )
    });
    for minute in 0..10 {
        site.set(if minute < 4 { Mode::Down } else { Mode::Up });
        probe(&fleet, minute);
    }
    let accepted = hook.accepted();
    let id = "one-20261001T0000";
    assert_eq!(events(&accepted), [("opened".into(), id.into()), ("resolved".into(), id.into())], "{accepted:#?}");
    let opened = &accepted[0];
    assert_eq!(opened["version"], 1);
    assert_eq!(opened["incident"]["cluster"], "one");
    assert_eq!(opened["incident"]["scope"], "major");
    assert_eq!(opened["incident"]["peak_sites_down"], 2);
    assert_eq!(opened["incident"]["affected_customer_share"], 1.0);
    assert_eq!(opened["incident"]["failure_classes"]["http_status"], 4);
    assert_eq!(accepted[1]["incident"]["end"], "2026-10-01T00:04:00Z");
    // Both sites of both customers: major, so the second target hears of it too, once.
    assert_eq!(events(&other.accepted()).len(), 2);
    assert_eq!(hook.posts(), 2, "nothing re-sent");
}

/// Two probers (vantages) sharing one PostgreSQL store, each running every minute: the incident
/// both see is announced once, opened and resolved, never once per prober.
#[test]
fn two_vantages_sharing_a_postgres_store_announce_each_event_once() {
    let Some(db) = crate::fixtures::TestDatabase::create("notify_vantages") else { return };
    let site = Server::start(Mode::Down);
    let hook = Server::start(Mode::Up);
    let prober = |vantage: &str| {
        fleet(&site, |f| {
            f.store(&db.url).probe("vantage", vantage).notify_target(
                "webhook",
                &hook.url(),
                &[("name", "ops-hook".into())],
            )
        })
    };
    let (ams, fra) = (prober("ams-probe"), prober("fra-probe"));
    for minute in 0..10 {
        site.set(if minute < 4 { Mode::Down } else { Mode::Up });
        // Alternating which prober runs first: either may be the one that announces.
        let order = if minute % 2 == 0 { [&ams, &fra] } else { [&fra, &ams] };
        for fleet in order {
            probe(fleet, minute);
        }
    }
    let accepted = hook.accepted();
    let id = "one-20261001T0000";
    assert_eq!(events(&accepted), [("opened".into(), id.into()), ("resolved".into(), id.into())], "{accepted:#?}");
    assert_eq!(hook.posts(), 2, "one delivery per event across both probers");
    assert_eq!(accepted[1]["incident"]["end"], "2026-10-01T00:04:00Z");
}

#[test]
fn a_receiver_down_for_two_runs_gets_the_event_later_once_and_the_failures_are_counted() {
    let site = Server::start(Mode::Down);
    let hook = Server::start(Mode::Down);
    let fleet = fleet(&site, |f| {
        f.metrics("textfile", "fleetprobe.prom").notify_target("webhook", &hook.url(), &[("name", "hook".into())])
    });
    // Confirmed at minute 1: the receiver is down at minutes 1 and 2.
    for minute in 0..12 {
        site.set(if minute < 6 { Mode::Down } else { Mode::Up });
        hook.set(if (1..=2).contains(&minute) { Mode::Down } else { Mode::Up });
        probe(&fleet, minute);
    }
    let id = "one-20261001T0000";
    assert_eq!(events(&hook.accepted()), [("opened".into(), id.into()), ("resolved".into(), id.into())]);
    assert_eq!(hook.posts(), 4, "two refused attempts, then one of each event");
    let metrics = std::fs::read_to_string(fleet.dir().join("fleetprobe.prom")).unwrap();
    assert!(metrics.contains("fleetprobe_notifications_total{target=\"hook\",result=\"failed\"} 2"), "{metrics}");
    assert!(metrics.contains("fleetprobe_notifications_total{target=\"hook\",result=\"ok\"} 2"), "{metrics}");

    // The store says what was delivered, when, and after how many attempts.
    let db = rusqlite::Connection::open(fleet.dir().join("store.db")).unwrap();
    let mut select = db
        .prepare("SELECT event_key, attempts, delivered_at_ms IS NOT NULL FROM notifications ORDER BY created_at_ms")
        .unwrap();
    let rows: Vec<(String, i64, bool)> =
        select.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    assert_eq!(rows, [(format!("{id}/opened"), 3, true), (format!("{id}/resolved/1790813160000"), 1, true)]);
}

#[test]
fn a_receiver_that_never_answers_holds_a_run_no_longer_than_the_deadline() {
    let site = Server::start(Mode::Down);
    let hook = Server::start(Mode::Silent);
    let fleet =
        fleet(&site, |f| f.notify("deadline", "1s").notify_target("webhook", &hook.url(), &[("name", "hook".into())]));
    probe(&fleet, 0);
    let start = Instant::now();
    let out = fleet.run(&["probe", "-q", "--at", &at(1)]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(hook.posts(), 1, "the event was sent");
    assert!(took < Duration::from_millis(1000 + 1500), "the run took {took:?} with notify.deadline = 1s");
    assert!(stderr(&out).contains("no answer within notify.deadline"), "{}", stderr(&out));
}

#[test]
fn invalid_targets_are_refused_with_their_field() {
    let site = Server::start(Mode::Up);
    let fleet = fleet(&site, |f| {
        f.notify_target("pager", "http://127.0.0.1:1/", &[])
            .notify_target("webhook", "hooks.example.net", &[("scope", "huge".into())])
            .notify_target("slack", "https://hooks.slack.com/x", &[("clusters", Value::Array(vec!["nope".into()]))])
    });
    let out = fleet.run(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for expected in [
        "notify.target[0].kind: `pager` is not a kind of target",
        "notify.target[1].url: `hooks.example.net` is not an http(s) URL",
        "notify.target[1].scope: `huge` is not a scope",
        "notify.target[2].clusters: unknown cluster `nope`",
    ] {
        assert!(err.contains(expected), "no {expected:?} in:\n{err}");
    }
}

/// Debian's Alertmanager on a loopback port, single-node, with a throwaway storage folder.
struct Alertmanager {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start() -> Option<Alertmanager> {
        let binary = std::path::Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.exists() {
            assert!(std::env::var_os("CI").is_none(), "prometheus-alertmanager (Debian package) is needed in CI");
            println!("SKIPPED: /usr/bin/prometheus-alertmanager not installed");
            return None;
        }
        let dir = crate::fixtures::temp_dir();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, "route:\n  receiver: none\nreceivers:\n  - name: none\n").unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("alertmanager.log")).unwrap())
            .spawn()
            .expect("alertmanager starts");
        let am = Alertmanager { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if am.get("/-/ready").is_some_and(|(status, _)| status == 200) {
                return Some(am);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("alertmanager did not become ready on port {port}");
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let status = text.split(' ').nth(1)?.parse().ok()?;
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        Some((status, body))
    }

    /// The alerts Alertmanager holds as firing now.
    fn alerts(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get("/api/v2/alerts").expect("alertmanager answers");
        assert_eq!(status, 200, "{body}");
        let alerts: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        alerts.into_iter().filter(|a| a["status"]["state"] != "resolved").collect()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn alertmanager_shows_one_alert_while_the_fault_holds_and_none_once_it_cleared() {
    let Some(am) = Alertmanager::start() else { return };
    let site = Server::start(Mode::Down);
    // Real time: Alertmanager judges `endsAt` by its own clock.
    let fleet = fleet(&site, |f| {
        f.status("url", "https://status.example.net/").notify_target(
            "alertmanager",
            &format!("http://127.0.0.1:{}", am.port),
            &[("name", "am".into())],
        )
    });
    let run = || {
        let out = fleet.run(&["probe", "-q"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    };
    for _ in 0..4 {
        run();
        std::thread::sleep(Duration::from_millis(300));
    }
    let alerts = am.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "FleetprobeIncident");
    assert_eq!(labels["cluster"], "one");
    assert_eq!(labels["scope"], "major");
    assert_eq!(labels["vantage"], "ams-probe");
    assert!(labels["incident"].as_str().unwrap().starts_with("one-"), "{labels}");
    let summary = alerts[0]["annotations"]["summary"].as_str().unwrap();
    assert!(summary.contains("2 sites down at peak, 2 of 2 customers affected (100.0%); http_status"), "{summary}");
    assert!(alerts[0]["generatorURL"].as_str().unwrap().starts_with("https://status.example.net/#one-"));

    site.set(Mode::Up);
    run();
    std::thread::sleep(Duration::from_millis(1100));
    run();
    let alerts = am.alerts();
    assert!(alerts.is_empty(), "resolved, so no longer firing: {alerts:#?}");
}

#[test]
fn report_certs_lists_the_certificates_expiring_within_the_threshold() {
    let site = Server::start(Mode::Up);
    let fleet = fleet(&site, |f| f);
    let csv = fleet.dir().join("results.csv");
    std::fs::write(
        &csv,
        "site_id,check,outcome,run_started_at,vantage,cert_expires,run_valid\n\
         s1,http,ok,2026-10-01T00:00:00Z,v,2026-10-15,true\n\
         s2,http,ok,2026-10-01T00:00:00Z,v,2027-01-15,true\n",
    )
    .unwrap();
    let imported = fleet.run(&["import", csv.to_str().unwrap()]);
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    let now = "2026-10-01T12:00:00Z";
    let out = crate::fixtures::ok(&fleet.run(&["report", "certs", "--within", "21d", "--now", now, "--format", "csv"]));
    assert_eq!(
        out,
        "site,hostname,customer,cluster,expires,days_left,issuer\n\
         s1,www.alpha.test,c1,one,2026-10-15T00:00:00Z,13,\n"
    );
    let out = crate::fixtures::ok(&fleet.run(&["report", "certs", "--within", "7d", "--now", now]));
    assert_eq!(out, "no certificate expires within 7 days\n");
}
