//! Opening a store: the messages for places that cannot hold one, the schema version, and the
//! migrations from older files.

use rusqlite::Connection;

use super::rollups::{MIN, T0};
use super::*;
use crate::store::sqlite::schema::{MIGRATIONS, SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, user_version};

#[test]
fn the_schema_version_is_stored_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetprobe.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(user_version(&conn).unwrap(), MIGRATIONS.len() as i64);
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    assert_eq!(journal, "wal");
    // Reopening a current store is a no-op.
    drop(SqliteStore::open(&path).unwrap());

    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew { found: 99, supported, .. }) => assert_eq!(supported, MIGRATIONS.len() as i64),
        Err(e) => panic!("expected TooNew, got {e:?}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n").unwrap();
    let message = open_message(&text);
    assert!(message.contains("is not an SQLite database (file is not a database)"), "{message}");
    assert!(message.contains("notes.txt"), "{message}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>())
        .unwrap();
    assert!(open_message(&garbage).contains("is not an SQLite database"));
}

#[test]
fn a_database_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path).unwrap().execute_batch("CREATE TABLE recipes (name TEXT)").unwrap();
    let message = open_message(&path);
    assert!(message.contains("not a fleetprobe store"), "{message}");
}

#[test]
fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let message = open_message(&missing.join("fleetprobe.db"));
    assert!(message.contains(&format!("directory {} does not exist", missing.display())), "{message}");
    assert!(!missing.exists(), "the directory must not be created");
}

#[test]
fn unwritable_locations_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let message = open_message(&file.join("fleetprobe.db"));
    assert!(message.contains(&format!("{} is not a directory", file.display())), "{message}");

    let message = open_message(dir.path());
    assert!(message.contains(&dir.path().display().to_string()) && message.contains("is a directory"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root (as in many CI containers) writes regardless of permission bits: nothing to check.
    let writable = std::fs::write(locked.join("probe"), "x").is_ok();
    if !writable {
        let path = locked.join("fleetprobe.db");
        let message = open_message(&path);
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("cannot create the file"), "{message}");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_reader_does_not_wait_for_a_sweep_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetprobe.db");
    let mut sweep = SqliteStore::open(&path).unwrap();
    let first = write_run(&mut sweep, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
    let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 2_000 };
    let mut writer = sweep.begin_run(&meta, &fleet()).unwrap();
    writer.insert(&ok(1, CheckKind::Http, 2_000)).unwrap();

    let started = std::time::Instant::now();
    let report = SqliteStore::open(&path).unwrap();
    assert_eq!(report.runs(None, None).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>(), vec![first]);
    assert_eq!(collect(&report, &ResultFilter::default()).len(), 1);
    assert!(started.elapsed() < BUSY_TIMEOUT / 2, "the reader waited for the writer's lock");
    drop(writer);
}

#[test]
fn a_version_3_store_gets_its_results_converted_to_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetprobe.db");
    let conn = Connection::open(&path).unwrap();
    for step in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3] {
        conn.execute_batch(step).unwrap();
    }
    conn.execute_batch(
        "INSERT INTO sites (key, site_id, customer, cluster, hostname) VALUES \
           (1, 'a', 'c1', 'web1', 'a.example'), (2, 'b', 'c2', 'web1', 'b.example'); \
         INSERT INTO runs (id, vantage, started_at_ms, finished_at_ms, valid, checks, failures) VALUES \
           (1, 'p', 60000, 61000, 1, 3, 1), (2, 'p', 120000, 121000, 1, 1, 0); \
         INSERT INTO results VALUES \
           (1, 1, 0, 0, 60010, 1, 200, 100, 200, 300, 400, 500, 1800000000, NULL), \
           (1, 1, 1, 0, 60011, 1, NULL, NULL, NULL, NULL, NULL, 90, NULL, NULL), \
           (1, 2, 0, 40, 60020, 3, 503, 100, 200, 300, 400, 500, NULL, 'status 503'), \
           (2, 1, 0, 0, 120010, 1, 200, 100, 200, 300, 400, 500, 1900000000, NULL);",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 3).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let results = collect(&store, &ResultFilter::default());
    type Seen<'a> = (RunId, &'a str, CheckKind, u8, i64, Option<i64>, Option<&'a str>);
    let seen: Vec<Seen> = results
        .iter()
        .map(|r| {
            (
                r.run_id,
                r.site.id.as_str(),
                r.check,
                r.outcome.code(),
                r.started_at_ms,
                r.cert_not_after,
                r.detail.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (1, "a", CheckKind::Http, 0, 60_010, Some(1_800_000_000), None),
            (1, "a", CheckKind::Dns, 0, 60_011, None, None),
            (1, "b", CheckKind::Http, 40, 60_020, None, Some("status 503")),
            (2, "a", CheckKind::Http, 0, 120_010, Some(1_900_000_000), None),
        ]
    );
    assert_eq!(results[2].attempts, 3);
    assert_eq!(results[2].http_status, Some(503));
    assert_eq!(results[0].timings.first_byte_us, Some(400));
    let tables: i64 = store
        .conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name IN ('results', 'results_view')", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 0, "the row table is gone");
}

#[test]
fn a_version_1_store_gets_its_runs_rolled_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetprobe.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_V1).unwrap();
    conn.execute(
        "INSERT INTO runs (vantage, started_at_ms, finished_at_ms, valid) VALUES ('p', ?1, ?1, 1)",
        [T0 + 61 * MIN],
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let pending = store.pending().unwrap();
    assert_eq!(pending.hours, [T0 + rollup::HOUR_MS].into());
    assert_eq!((pending.days.clone(), pending.site_days), ([T0].into(), [T0].into()));
}

#[test]
fn another_programs_database_is_refused_before_anything_is_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('bread');").unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    assert!(open_message(&path).contains("not a fleetprobe store"));
    assert!(matches!(SqliteStore::open_read_only(&path), Err(StoreError::Open { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), before, "not switched to WAL, not touched at all");
    assert!(!dir.path().join("other.db-wal").exists());
}

#[test]
fn a_read_only_open_changes_nothing_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetprobe.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(conn.query_row("PRAGMA application_id", [], |row| row.get::<_, i64>(0)).unwrap(), 0x464C_5052);
    // Rollback journal, so that any change would show in the file itself.
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let mut store = SqliteStore::open_read_only(&path).unwrap();
    assert!(store.runs(None, None).unwrap().is_empty());
    assert!(store.rollup(T0, None).is_err() || std::fs::read(&path).unwrap() == before);
    drop(store);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file is as it was");
}
