//! `fleetprobe store copy`: a day of results with rollups and an incident update, copied from
//! SQLite into PostgreSQL and back; the reports of all three stores are byte for byte the same.
//!
//! Needs the PostgreSQL server on 127.0.0.1:5432 (user `postgres`, database `test`, trust
//! auth; `FLEETPROBE_TEST_PG` gives another server's URL without a database name). Without one
//! it prints `SKIPPED: no PostgreSQL at 127.0.0.1:5432`, unless `CI` is set: then it fails.

use crate::fixtures::{ok, run};
use crate::reports::fault_day;

fn server() -> String {
    std::env::var("FLEETPROBE_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A new database, dropped with this.
pub struct Database {
    name: String,
    pub url: String,
}

impl Database {
    pub fn create() -> Option<Database> {
        Database::named("copy")
    }

    /// A new database whose name ends in `suffix`, so that tests running at once never share one.
    pub fn named(suffix: &str) -> Option<Database> {
        let admin = format!("{}/test?sslmode=disable", server());
        let mut client = match postgres::Client::connect(&admin, postgres::NoTls) {
            Ok(client) => client,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "no PostgreSQL at 127.0.0.1:5432 ({e}) and CI is set");
                println!("SKIPPED: no PostgreSQL at 127.0.0.1:5432");
                return None;
            }
        };
        let name = format!("fleetprobe_test_{}_{suffix}", std::process::id());
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = format!("{}/{name}?sslmode=disable", server());
        Some(Database { name, url })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let admin = format!("{}/test?sslmode=disable", server());
        if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[test]
fn reports_are_identical_after_copying_to_postgres_and_back() {
    let Some(db) = Database::create() else { return };
    let fleet = fault_day();
    let dir = fleet.dir();
    ok(&fleet.run(&["import", "--valid", "yes", dir.join("results.csv").to_str().unwrap()]));
    ok(&fleet.run(&["prune", "--now", "2026-10-02T06:00:00Z"]));
    ok(&fleet.run(&[
        "incident",
        "update",
        "b-20261001T0100",
        "Engineers are replacing the storage controller.",
        "--title",
        "Storage failure on b",
        "--at",
        "2026-10-01T02:00:00Z",
    ]));
    let sqlite = dir.join("store.db");
    let back = dir.join("back.db");
    let copied = ok(&run(&["store", "copy", sqlite.to_str().unwrap(), &db.url]));
    assert!(copied.contains("1440 runs"), "{copied}");
    ok(&run(&["store", "copy", &db.url, back.to_str().unwrap()]));
    // Into a store that holds data, nothing is copied.
    let refused = run(&["store", "copy", sqlite.to_str().unwrap(), &db.url]);
    assert_eq!(refused.status.code(), Some(3));

    let reports: [&[&str]; 5] = [
        &["report", "clusters", "--period", "2026-10-01", "--format", "json"],
        &["report", "incidents", "--period", "2026-10-01", "--format", "csv"],
        &["report", "sla", "--period", "2026-10", "--all", "--format", "csv"],
        &["report", "latency", "--cluster", "a,b", "--period", "2026-10-01", "--by", "hour", "--format", "csv"],
        &["results", "--failed", "--format", "csv"],
    ];
    for args in reports {
        let from_sqlite = ok(&fleet.run(&[args, &["--store", sqlite.to_str().unwrap()]].concat()));
        let from_postgres = ok(&fleet.run(&[args, &["--store", &db.url]].concat()));
        let from_back = ok(&fleet.run(&[args, &["--store", back.to_str().unwrap()]].concat()));
        assert!(from_sqlite.len() > 100, "{args:?}: {from_sqlite}");
        assert_eq!(from_postgres, from_sqlite, "{args:?}");
        assert_eq!(from_back, from_sqlite, "{args:?}");
    }
}
