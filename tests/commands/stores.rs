//! What the commands do to a store file: `probe` leaves another program's SQLite file exactly as
//! it was, and the reading commands open the store read-only.

use crate::fixtures::{Customer, FleetFiles, Site, ok, stderr};

fn fleet() -> FleetFiles {
    FleetFiles::new()
        .store("store.db")
        .probe("retries", 0)
        .probe("spread", "0s")
        .timeout("connect", "500ms")
        .cluster("one", &["127.0.0.1"])
        .plan("basic", 99.9, &[])
        .customer(Customer::new("c1", "Alpha GmbH", "basic", "10.00"))
        .site(Site::new("s1", "c1", "one", "www.alpha.test").url("http://127.0.0.1:1/").checks("http"))
}

#[test]
fn probe_leaves_another_programs_database_untouched() {
    let fleet = fleet().write_temp();
    let path = fleet.dir().join("store.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER, total TEXT); INSERT INTO invoices VALUES (1, '9.99');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let out = fleet.run(&["probe", "-q"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("another program, not a fleetprobe store"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before, "not even switched to WAL");
}

#[test]
fn reading_commands_change_nothing_in_the_store() {
    let fleet = fleet().write_temp().at("2026-10-01T12:00:00Z");
    ok(&fleet.run(&["probe", "-q", "--at", "2026-10-01T00:00:00Z"]));
    let path = fleet.dir().join("store.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    ok(&fleet.run(&["results", "--format", "csv"]));
    ok(&fleet.run(&["report", "clusters", "--last", "1d"]));
    assert_eq!(std::fs::read(&path).unwrap(), before, "opened read-only: not switched to WAL, nothing written");
}
