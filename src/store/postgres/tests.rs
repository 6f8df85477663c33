//! The PostgreSQL store against a real server: the scenarios every backend passes (those of the
//! SQLite store's tests), the vantage lock, partitions, and copies to and from SQLite.
//!
//! Each test gets a database of its own on 127.0.0.1:5432 (user `postgres`; `FLEETPROBE_TEST_PG`
//! gives another server's URL, without a database name), dropped afterwards. With no server
//! there, the tests print `SKIPPED: no PostgreSQL at 127.0.0.1:5432` and pass, unless `CI` is
//! set: then they fail.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::probe::{CheckKind, CheckResult, Outcome, Timings};
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::tests::{TestStore, shared_scenarios};
use crate::store::{RunSummary, Store, rollup};

fn server() -> String {
    std::env::var("FLEETPROBE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database made for one test, dropped when this goes.
pub(crate) struct TestDatabase {
    name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (after saying so) when no server answers and `CI` is unset.
    pub(crate) fn create() -> Option<TestDatabase> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin = format!("{}/test?sslmode=disable", server());
        let mut client = match Client::connect(&admin, NoTls) {
            Ok(client) => client,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "no PostgreSQL at 127.0.0.1:5432 ({e}) and CI is set");
                println!("SKIPPED: no PostgreSQL at 127.0.0.1:5432");
                return None;
            }
        };
        let name = format!("fleetprobe_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = format!("{}/{name}?sslmode=disable", server());
        Some(TestDatabase { name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut client) = Client::connect(&format!("{}/test?sslmode=disable", server()), NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

impl TestStore for PostgresStore {
    fn count(&self, table: &str) -> i64 {
        self.with(|c| c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).unwrap().get(0))
    }
}

fn open_fresh() -> Option<(TestDatabase, PostgresStore)> {
    let db = TestDatabase::create()?;
    let store = PostgresStore::open(&db.url).unwrap();
    Some((db, store))
}

shared_scenarios!(open_fresh);

fn site(id: &str, cluster: &str) -> SiteRecord {
    SiteRecord { id: id.into(), customer: "acme".into(), cluster: cluster.into(), hostname: format!("{id}.example") }
}

fn write_run(store: &mut dyn Store, vantage: &str, at: i64, failed: bool) -> RunId {
    let sites = [site("a", "web1"), site("b", "web2")];
    let meta = RunMeta { vantage: vantage.into(), started_at_ms: at };
    let mut writer = store.begin_run(&meta, &sites).unwrap();
    for s in 0..2 {
        writer
            .insert(&CheckResult {
                site: s,
                check: CheckKind::Http,
                outcome: if failed && s == 1 {
                    Outcome::Failed(crate::probe::Failure::ConnectRefused)
                } else {
                    Outcome::Ok
                },
                started_at_ms: at + 10,
                attempts: 1,
                http_status: Some(200),
                timings: Timings { total_us: 2_000 + s as u32, ..Timings::default() },
                // Site a shows a certificate: its date and issuer travel with a copy.
                cert_not_after: (s == 0).then_some(1_800_000_000),
                cert_issuer: (s == 0).then(|| "R11 (Let's Encrypt)".to_string()),
                detail: (failed && s == 1).then(|| "refused".to_string()),
            })
            .unwrap();
    }
    let summary = RunSummary { finished_at_ms: at + 100, valid: true, invalid_reason: None, checks: 2, failures: 0 };
    writer.finish(&summary, &[]).unwrap()
}

#[test]
fn a_vantage_is_locked_against_itself_only() {
    let Some(db) = TestDatabase::create() else { return };
    let mut first = PostgresStore::open(&db.url).unwrap();
    let mut second = PostgresStore::open(&db.url).unwrap();
    first.lock_vantage("prober-1").unwrap();
    let error = second.lock_vantage("prober-1").unwrap_err();
    assert!(matches!(error, StoreError::Locked(_)), "{error:?}");
    assert!(error.to_string().contains(&format!("fleetprobe pid {}", std::process::id())), "{error}");
    second.lock_vantage("prober-2").unwrap();
    // Both write at once: a run each, while the other's lock is held.
    write_run(&mut first, "prober-1", 60_000, false);
    write_run(&mut second, "prober-2", 60_000, true);
    drop(first);
    let mut third = PostgresStore::open(&db.url).unwrap();
    third.lock_vantage("prober-1").unwrap();
    assert_eq!(third.runs(None, None).unwrap().len(), 2);
}

#[test]
fn runs_go_into_month_partitions_and_whole_months_are_dropped() {
    let Some((_db, mut store)) = open_fresh() else { return };
    let day = rollup::DAY_MS;
    // 2026-09-30, 2026-10-01 and 2026-11-15 (UTC).
    let (sep, oct, nov) = (1_790_726_400_000, 1_790_812_800_000, 1_794_700_800_000);
    for at in [sep, oct, oct + day, nov] {
        write_run(&mut store, "p", at, at == oct);
    }
    let parts: Vec<String> = store.with(|c| schema::partitions(c).unwrap()).into_iter().map(|p| p.0).collect();
    assert_eq!(parts, ["y2026m09", "y2026m10", "y2026m11"]);
    store.rollup(nov + 2 * day, None).unwrap();
    // Retention reaching back to 14 November: September and October go whole (whatever the
    // run budget), November stays.
    let retention = Retention { raw: std::time::Duration::from_secs(3 * 86_400), ..Retention::default() };
    // The status page's cluster days are computed above the store; here they are cleared as done.
    let days = store.pending_cluster_days(i64::MAX / 2).unwrap();
    store.put_cluster_days(&days, &[]).unwrap();
    let pruned = store.prune(nov + 2 * day, &retention, Some(1)).unwrap();
    assert_eq!((pruned.runs, pruned.runs_left), (3, 0));
    let parts: Vec<String> = store.with(|c| schema::partitions(c).unwrap()).into_iter().map(|p| p.0).collect();
    assert_eq!(parts, ["y2026m11"]);
    assert_eq!(store.count("result_details"), 0);
    assert_eq!(store.count("rosters"), 1);
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
}

#[test]
fn sslmode_require_is_refused_with_a_clear_message() {
    let error = match PostgresStore::open("postgres://postgres@127.0.0.1:5432/test?sslmode=require") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("sslmode=require must be refused"),
    };
    assert!(error.contains("TLS to PostgreSQL is not supported by this build; use sslmode=disable"), "{error}");
    assert_eq!(redact("postgresql://u:secret@h:5/db?x=1"), "postgresql://u:***@h:5/db?x=1");
}

/// Every row of a store, as exported.
fn dump(store: &dyn Store) -> Vec<RawRecord> {
    let mut rows = Vec::new();
    store
        .export(&mut |r| {
            rows.push(r);
            Ok(())
        })
        .unwrap();
    rows
}

fn copy(from: &dyn Store, to: &mut dyn Store) {
    let mut importer = to.import().unwrap();
    from.export(&mut |r| importer.add(r)).unwrap();
    importer.finish().unwrap();
}

#[test]
fn a_store_copies_to_postgres_and_back_unchanged() {
    let Some((_db, mut pg)) = open_fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sqlite = SqliteStore::open(&dir.path().join("a.db")).unwrap();
    for i in 0..30 {
        write_run(&mut sqlite, if i % 2 == 0 { "p1" } else { "p2" }, 1_790_000_000_000 + i * 600_000, i % 7 == 0);
    }
    sqlite.rollup(1_790_000_000_000 + 2 * rollup::DAY_MS, None).unwrap();
    sqlite
        .add_incident_update(&IncidentUpdate {
            incident_id: "web2-20260922T0000".into(),
            posted_at_ms: 1_790_000_100_000,
            text: "looking".into(),
            title: Some("Outage".into()),
            cause: None,
        })
        .unwrap();
    // Notification records and counts, one delivered and one pending.
    let event = |key: &str, delivered: Option<i64>| crate::store::Notification {
        target: "hook".into(),
        event_key: key.into(),
        kind: "opened".into(),
        subject: "web2-20260922T0000".into(),
        peak_sites: 1,
        peak_share: 0.5,
        payload: "{}".into(),
        created_at_ms: 1_790_000_000_000,
        attempts: 1,
        next_attempt_ms: 1_790_000_060_000,
        delivered_at_ms: delivered,
        abandoned_at_ms: None,
        last_error: delivered.is_none().then(|| "HTTP 503".into()),
    };
    sqlite.add_notifications(&[event("a/opened", Some(1_790_000_001_000)), event("b/opened", None)]).unwrap();
    sqlite.count_deliveries("hook", "ok", 3).unwrap();
    let original = dump(&sqlite);
    let kinds = |rows: &[RawRecord]| {
        let issuers = rows.iter().filter(|r| matches!(r, RawRecord::Site { cert_issuer: Some(_), .. })).count();
        let events = rows.iter().filter(|r| matches!(r, RawRecord::Notification(_))).count();
        let counts = rows.iter().filter(|r| matches!(r, RawRecord::NotificationCount { .. })).count();
        (issuers, events, counts)
    };
    assert_eq!(kinds(&original), (1, 2, 1), "the store to copy holds an issuer, two events and a count");
    copy(&sqlite, &mut pg);
    assert_eq!(dump(&pg), original);
    let mut back = SqliteStore::open(&dir.path().join("b.db")).unwrap();
    copy(&pg, &mut back);
    assert_eq!(dump(&back), original);
    // A copy goes only into an empty store.
    let error = pg.import().err().expect("pg is not empty").to_string();
    assert!(error.contains("already holds data"), "{error}");
    // New runs go on from the copied ids.
    let next = write_run(&mut pg, "p1", 1_790_000_000_000 + 40 * 600_000, false);
    assert_eq!(next, 31);
}

/// One ok HTTP result per site of `sites`, stored as a run of vantage "v".
fn write_fleet_run(store: &mut PostgresStore, sites: &[SiteRecord], at: i64) {
    let meta = RunMeta { vantage: "v".into(), started_at_ms: at };
    let mut writer = store.begin_run(&meta, sites).unwrap();
    for s in 0..sites.len() {
        writer
            .insert(&CheckResult {
                site: s,
                check: CheckKind::Http,
                outcome: Outcome::Ok,
                started_at_ms: at + 10,
                attempts: 1,
                http_status: Some(200),
                timings: Timings { total_us: 2_000, ..Timings::default() },
                cert_not_after: None,
                cert_issuer: None,
                detail: None,
            })
            .unwrap();
    }
    let checks = sites.len() as u64;
    let summary = RunSummary { finished_at_ms: at + 100, valid: true, invalid_reason: None, checks, failures: 0 };
    writer.finish(&summary, &[]).unwrap();
}

/// (site id → (key, cluster, hostname)) as stored.
fn stored_sites(store: &PostgresStore) -> std::collections::BTreeMap<String, (i64, String, String)> {
    store.with(|c| {
        c.query("SELECT site_id, key, cluster, hostname FROM sites", &[])
            .unwrap()
            .into_iter()
            .map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3))))
            .collect()
    })
}

/// A run of a fleet the store has seen reads its keys from the fleet's snapshot, not the sites
/// table; a changed fleet writes its sites and replaces every snapshot; keys never change.
#[test]
fn an_unchanged_fleet_reads_its_snapshot_and_a_changed_one_writes_its_sites() {
    let Some((_db, mut store)) = open_fresh() else { return };
    let fleet = [site("a", "web1"), site("b", "web2")];
    write_fleet_run(&mut store, &fleet, 60_000);
    let first = stored_sites(&store);
    assert_eq!(first.len(), 2);
    assert_eq!(store.count("site_snapshots"), 1);
    // Changed behind the store's back: a run of the same fleet reads the snapshot and leaves
    // the table alone (it does not read it).
    store.with(|c| c.execute("UPDATE sites SET hostname = 'elsewhere' WHERE site_id = 'a'", &[]).unwrap());
    write_fleet_run(&mut store, &fleet, 120_000);
    assert_eq!(stored_sites(&store)["a"].2, "elsewhere");
    // Site b moves to web3 and c joins: the table follows the fleet (a's record is written
    // again too), the old snapshot goes, the keys of a and b stay.
    let moved = [site("a", "web1"), site("b", "web3"), site("c", "web1")];
    write_fleet_run(&mut store, &moved, 180_000);
    let now = stored_sites(&store);
    assert_eq!(now["a"], (first["a"].0, "web1".to_string(), "a.example".to_string()));
    assert_eq!(now["b"], (first["b"].0, "web3".to_string(), "b.example".to_string()));
    assert!(now["c"].0 > first["b"].0.max(first["a"].0));
    assert_eq!(store.count("site_snapshots"), 1);
    // The first fleet again: its snapshot is gone, so its records are written back.
    write_fleet_run(&mut store, &fleet, 240_000);
    assert_eq!(stored_sites(&store)["b"].1, "web2");
    assert_eq!(store.count("site_snapshots"), 1);
    // Every run's results kept their sites: b is in every run, c only in the third.
    let runs = store.runs(None, None).unwrap();
    assert_eq!(runs.len(), 4);
    for (run, expected) in runs.iter().zip([2, 2, 3, 2]) {
        let mut results = 0;
        let filter = crate::store::ResultFilter { run_id: Some(run.id), ..Default::default() };
        store
            .results(&filter, &mut |_| {
                results += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(results, expected, "run {}", run.id);
    }
}

#[test]
fn site_keys_encode_and_decode() {
    let keys = [1, 2, 3, 7, 5, 1_000_000_000_000, -4, 0, i64::MAX, i64::MIN];
    let bytes = writer::tests::encode(&keys);
    assert_eq!(writer::tests::decode(&bytes, keys.len()), Some(keys.to_vec()));
    // A fleet counting up by one costs a byte a site.
    let counting: Vec<i64> = (1..=1000).collect();
    assert_eq!(writer::tests::encode(&counting).len(), 1000);
    assert_eq!(writer::tests::decode(&bytes, keys.len() - 1), None, "a count that does not match");
    assert_eq!(writer::tests::decode(&bytes[..bytes.len() - 1], keys.len()), None, "cut short");
}
