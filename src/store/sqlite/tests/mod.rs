//! The SQLite store against a real file: runs written and read back, errors people see. Opening
//! and migrations are in `schema.rs`, latency rollups in `rollups.rs`.

pub(crate) mod notifications;
pub(crate) mod rollups;
mod schema;

use std::path::Path;

use super::*;
use crate::probe::{CheckKind, CheckResult, Failure, Outcome, Phase, Timings};
use crate::store::{RunSummary, columns, histogram, rollup};

fn site(id: &str, customer: &str, cluster: &str) -> SiteRecord {
    SiteRecord { id: id.into(), customer: customer.into(), cluster: cluster.into(), hostname: format!("{id}.example") }
}

fn fleet() -> Vec<SiteRecord> {
    vec![site("a", "acme", "web1"), site("b", "acme", "web1"), site("c", "bolt", "web2")]
}

fn ok(site: usize, check: CheckKind, started_at_ms: i64) -> CheckResult {
    CheckResult {
        site,
        check,
        outcome: Outcome::Ok,
        started_at_ms,
        attempts: 1,
        http_status: Some(200),
        timings: Timings {
            dns_us: Some(1_200),
            connect_us: Some(800),
            tls_us: Some(4_000),
            first_byte_us: Some(20_000),
            total_us: 26_000,
        },
        cert_not_after: Some(1_800_000_000),
        cert_issuer: None,
        detail: None,
    }
}

fn failed(site: usize, check: CheckKind, failure: Failure, started_at_ms: i64) -> CheckResult {
    CheckResult {
        site,
        check,
        outcome: Outcome::Failed(failure),
        started_at_ms,
        attempts: 3,
        http_status: None,
        timings: Timings { total_us: 5_000_000, ..Timings::default() },
        cert_not_after: None,
        cert_issuer: None,
        detail: Some(format!("{failure} on site #{site}")),
    }
}

fn summary(finished_at_ms: i64, results: &[CheckResult]) -> RunSummary {
    RunSummary {
        finished_at_ms,
        valid: true,
        invalid_reason: None,
        checks: results.len() as u64,
        failures: results.iter().filter(|r| !r.outcome.is_ok()).count() as u64,
    }
}

fn write_run(store: &mut dyn Store, started_at_ms: i64, sites: &[SiteRecord], results: &[CheckResult]) -> RunId {
    let meta = RunMeta { vantage: "probe-1".into(), started_at_ms };
    let mut writer = store.begin_run(&meta, sites).unwrap();
    for result in results {
        writer.insert(result).unwrap();
    }
    writer.finish(&summary(started_at_ms + 30_000, results), &[]).unwrap()
}

fn collect(store: &dyn Store, filter: &ResultFilter) -> Vec<StoredResult> {
    let mut found = Vec::new();
    store
        .results(filter, &mut |r| {
            found.push(r);
            Ok(())
        })
        .unwrap();
    found
}

fn open_temp() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("fleetprobe.db")).unwrap();
    (dir, store)
}

fn open_some() -> Option<(tempfile::TempDir, SqliteStore)> {
    Some(open_temp())
}

/// What the shared scenarios ask of a backend beyond the [`Store`] trait.
pub(crate) trait TestStore: Store {
    /// Rows in `table`.
    fn count(&self, table: &str) -> i64;
}

impl TestStore for SqliteStore {
    fn count(&self, table: &str) -> i64 {
        self.conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).unwrap()
    }
}

/// `#[test]`s that run the scenarios named (functions taking a store of the backend) against a
/// fresh store from `$open`, which gives `None` to skip.
macro_rules! store_scenarios {
    ($open:path; $($scenario:path => $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let Some((_guard, store)) = $open() else { return };
                $scenario(store)
            }
        )*
    };
}
pub(crate) use store_scenarios;

/// The scenarios every backend passes, for [`store_scenarios!`].
macro_rules! shared_scenarios {
    ($open:path) => {
        $crate::store::sqlite::tests::store_scenarios!($open;
            $crate::store::sqlite::tests::a_run_round_trips_with_every_field => a_run_round_trips_with_every_field,
            $crate::store::sqlite::tests::invalid_runs_keep_their_reason => invalid_runs_keep_their_reason,
            $crate::store::sqlite::tests::filters_narrow_the_selection => filters_narrow_the_selection,
            $crate::store::sqlite::tests::a_dropped_writer_leaves_nothing_behind => a_dropped_writer_leaves_nothing_behind,
            $crate::store::sqlite::tests::a_result_for_an_unknown_site_index_is_an_error => a_result_for_an_unknown_site_index_is_an_error,
            $crate::store::sqlite::tests::a_site_moving_cluster_is_updated_in_place => a_site_moving_cluster_is_updated_in_place,
            $crate::store::sqlite::tests::histograms_round_trip => histograms_round_trip,
            $crate::store::sqlite::tests::incident_updates_read_back_by_time => incident_updates_read_back_by_time,
            $crate::store::sqlite::tests::certificate_dates_are_stored_when_they_change_and_read_back_per_run => certificate_dates_are_stored_when_they_change_and_read_back_per_run,
            $crate::store::sqlite::tests::two_results_for_one_site_and_check_are_refused => two_results_for_one_site_and_check_are_refused,
            $crate::store::sqlite::tests::run_outcomes_share_one_roster_between_runs_of_an_unchanged_fleet => run_outcomes_share_one_roster_between_runs_of_an_unchanged_fleet,
            $crate::store::sqlite::tests::check_counts_count_every_vantage_and_skip_invalid_runs => check_counts_count_every_vantage_and_skip_invalid_runs,
            $crate::store::sqlite::tests::notifications::notifications_are_recorded_once_taken_once_and_counted => notifications_are_recorded_once_taken_once_and_counted,
            $crate::store::sqlite::tests::notifications::site_certificates_are_the_latest_dates => site_certificates_are_the_latest_dates,
            $crate::store::sqlite::tests::notifications::old_notification_records_are_pruned_unless_pending => old_notification_records_are_pruned_unless_pending,
            $crate::store::sqlite::tests::rollups::rolled_up_latencies_equal_the_runs_merged_directly => rolled_up_latencies_equal_the_runs_merged_directly,
            $crate::store::sqlite::tests::rollups::a_late_run_reopens_its_hour_and_day_only => a_late_run_reopens_its_hour_and_day_only,
            $crate::store::sqlite::tests::rollups::pruned_run_histograms_are_computed_from_results_for_queries_and_late_rollups => pruned_run_histograms_are_computed_from_results_for_queries_and_late_rollups,
            $crate::store::sqlite::tests::rollups::site_days_are_built_within_the_budget_and_pending_data_stays_readable => site_days_are_built_within_the_budget_and_pending_data_stays_readable,
            $crate::store::sqlite::tests::rollups::latency_of_some_vantages_is_theirs_alone => latency_of_some_vantages_is_theirs_alone,
        );
    };
}
pub(crate) use shared_scenarios;

mod on_sqlite {
    super::shared_scenarios!(super::open_some);
}

fn open_message(path: &Path) -> String {
    match SqliteStore::open(path) {
        Err(e @ StoreError::Open { .. }) => e.to_string(),
        Err(e) => panic!("expected an Open error, got {e:?}"),
        Ok(_) => panic!("opening {} should fail", path.display()),
    }
}

pub(crate) fn a_run_round_trips_with_every_field<S: TestStore>(mut store: S) {
    let results = vec![
        ok(0, CheckKind::Http, 1_000),
        ok(0, CheckKind::Dns, 1_001),
        failed(1, CheckKind::Http, Failure::Timeout(Phase::FirstByte), 1_002),
        failed(2, CheckKind::Dns, Failure::DnsNxdomain, 1_003),
    ];
    let run_id = write_run(&mut store, 1_000, &fleet(), &results);

    let runs = store.runs(None, None).unwrap();
    let expected_run = StoredRun {
        id: run_id,
        vantage: "probe-1".into(),
        started_at_ms: 1_000,
        finished_at_ms: 31_000,
        valid: true,
        invalid_reason: None,
        checks: 4,
        failures: 2,
    };
    assert_eq!(runs, vec![expected_run]);

    let stored = collect(&store, &ResultFilter::default());
    let expected: Vec<StoredResult> = results
        .iter()
        .map(|r| StoredResult {
            run_id,
            site: fleet()[r.site].clone(),
            check: r.check,
            outcome: r.outcome,
            started_at_ms: r.started_at_ms,
            attempts: r.attempts,
            http_status: r.http_status,
            timings: columns::as_stored(&r.timings),
            cert_not_after: r.cert_not_after,
            detail: r.detail.clone(),
        })
        .collect();
    assert_eq!(stored, expected);
}

pub(crate) fn invalid_runs_keep_their_reason<S: TestStore>(mut store: S) {
    let meta = RunMeta { vantage: "probe-2".into(), started_at_ms: 5 };
    let writer = store.begin_run(&meta, &fleet()).unwrap();
    let summary = RunSummary {
        finished_at_ms: 9,
        valid: false,
        invalid_reason: Some("control targets unreachable".into()),
        checks: 0,
        failures: 0,
    };
    writer.finish(&summary, &[]).unwrap();
    let run = &store.runs(None, None).unwrap()[0];
    assert!(!run.valid);
    assert_eq!(run.invalid_reason.as_deref(), Some("control targets unreachable"));
}

pub(crate) fn filters_narrow_the_selection<S: TestStore>(mut store: S) {
    let run_results = |t| {
        vec![
            ok(0, CheckKind::Http, t),
            failed(1, CheckKind::Http, Failure::ConnectRefused, t),
            ok(2, CheckKind::Http, t),
            failed(2, CheckKind::Dns, Failure::DnsServfail, t),
        ]
    };
    let first = write_run(&mut store, 60_000, &fleet(), &run_results(60_000));
    let second = write_run(&mut store, 120_000, &fleet(), &run_results(120_000));
    let keys = |filter: ResultFilter| -> Vec<(RunId, String, CheckKind)> {
        collect(&store, &filter).into_iter().map(|r| (r.run_id, r.site.id, r.check)).collect()
    };
    let key = |run, site: &str, check| (run, site.to_string(), check);

    assert_eq!(keys(ResultFilter::default()).len(), 8);
    assert_eq!(keys(ResultFilter { run_id: Some(second), ..Default::default() }).len(), 4);
    assert_eq!(
        keys(ResultFilter { site_id: Some("c".into()), ..Default::default() }),
        vec![
            key(first, "c", CheckKind::Http),
            key(first, "c", CheckKind::Dns),
            key(second, "c", CheckKind::Http),
            key(second, "c", CheckKind::Dns)
        ]
    );
    assert_eq!(
        keys(ResultFilter { cluster: Some("web1".into()), failed_only: true, ..Default::default() }),
        vec![key(first, "b", CheckKind::Http), key(second, "b", CheckKind::Http)]
    );
    // Half-open: a run starting exactly at `to` is left out, one at `from` is kept.
    assert_eq!(
        keys(ResultFilter { from_ms: Some(60_000), to_ms: Some(120_000), failed_only: true, ..Default::default() }),
        vec![key(first, "b", CheckKind::Http), key(first, "c", CheckKind::Dns)]
    );
    assert_eq!(keys(ResultFilter { from_ms: Some(60_001), ..Default::default() }).len(), 4);
    assert_eq!(
        keys(ResultFilter { cluster: Some("web2".into()), limit: Some(3), ..Default::default() }),
        vec![key(first, "c", CheckKind::Http), key(first, "c", CheckKind::Dns), key(second, "c", CheckKind::Http)]
    );
    assert_eq!(
        keys(ResultFilter { cluster: Some("web1".into()), from_ms: Some(120_000), ..Default::default() }),
        vec![key(second, "a", CheckKind::Http), key(second, "b", CheckKind::Http)]
    );
    assert!(keys(ResultFilter { cluster: Some("nowhere".into()), ..Default::default() }).is_empty());
    assert!(keys(ResultFilter { from_ms: Some(500_000), ..Default::default() }).is_empty());

    let run_ids = |from, to| store.runs(from, to).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(run_ids(None, None), vec![first, second]);
    assert_eq!(run_ids(Some(60_000), Some(120_000)), vec![first]);
    assert_eq!(run_ids(Some(60_001), None), vec![second]);
}

pub(crate) fn a_dropped_writer_leaves_nothing_behind<S: TestStore>(mut store: S) {
    {
        let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
        let mut writer = store.begin_run(&meta, &fleet()).unwrap();
        writer.insert(&ok(0, CheckKind::Http, 1_000)).unwrap();
        // Dropped here, as when the sweep fails halfway.
    }
    assert!(store.runs(None, None).unwrap().is_empty());
    assert!(collect(&store, &ResultFilter::default()).is_empty());
    let sites: i64 = store.count("sites");
    assert_eq!(sites, 0);

    let run_id = write_run(&mut store, 2_000, &fleet(), &[ok(2, CheckKind::Dns, 2_000)]);
    assert_eq!(store.runs(None, None).unwrap().len(), 1);
    let stored = collect(&store, &ResultFilter::default());
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].run_id, stored[0].site.id.as_str()), (run_id, "c"));
}

pub(crate) fn a_result_for_an_unknown_site_index_is_an_error<S: TestStore>(mut store: S) {
    let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
    let mut writer = store.begin_run(&meta, &fleet()).unwrap();
    let error = writer.insert(&ok(7, CheckKind::Http, 1_000)).unwrap_err();
    assert!(matches!(error, StoreError::Query { .. }), "{error:?}");
}

pub(crate) fn a_site_moving_cluster_is_updated_in_place<S: TestStore>(mut store: S) {
    write_run(&mut store, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
    let mut moved = fleet();
    moved[0].cluster = "web2".into();
    moved.push(site("d", "corn", "web3"));
    let second = write_run(&mut store, 2_000, &moved, &[ok(0, CheckKind::Http, 2_000), ok(3, CheckKind::Http, 2_000)]);

    let in_web2 =
        collect(&store, &ResultFilter { run_id: Some(second), cluster: Some("web2".into()), ..Default::default() });
    assert_eq!(in_web2.len(), 1);
    assert_eq!(in_web2[0].site, moved[0]);
    let sites: i64 = store.count("sites");
    assert_eq!(sites, 4);
    // Both runs' results stay attached to the one site.
    assert_eq!(collect(&store, &ResultFilter { site_id: Some("a".into()), ..Default::default() }).len(), 2);
}

pub(crate) fn histograms_round_trip<S: TestStore>(mut store: S) {
    let mut records = Vec::new();
    for (cluster, check, phase) in [
        ("web1", CheckKind::Http, Phase::FirstByte),
        ("web1", CheckKind::Http, Phase::Total),
        ("web2", CheckKind::Dns, Phase::Dns),
    ] {
        let mut h = histogram::new_latency_histogram();
        for v in 1..=500u64 {
            histogram::record_micros(&mut h, v * 97);
        }
        records.push(HistogramRecord { cluster: cluster.into(), check, phase, histogram: h });
    }
    let meta = RunMeta { vantage: "probe-1".into(), started_at_ms: 1_000 };
    let writer = store.begin_run(&meta, &fleet()).unwrap();
    let run_id = writer.finish(&summary(2_000, &[]), &records).unwrap();

    let stored = store.run_histograms(run_id).unwrap();
    assert_eq!(stored.len(), records.len());
    for (got, want) in stored.iter().zip(&records) {
        assert_eq!((got.cluster.as_str(), got.check, got.phase), (want.cluster.as_str(), want.check, want.phase));
        assert_eq!(got.histogram, want.histogram);
    }
    assert!(store.run_histograms(run_id + 1).unwrap().is_empty());
}

#[test]
fn unknown_codes_are_reported_as_corrupt() {
    let (_dir, mut store) = open_temp();
    let run_id = write_run(&mut store, 1_000, &fleet(), &[ok(0, CheckKind::Http, 1_000)]);
    // A run whose outcome column names a code no build ever wrote.
    store.conn.execute("UPDATE run_results SET outcomes = x'6301'", []).unwrap();
    let error = store.results(&ResultFilter::default(), &mut |_| Ok(())).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("run {run_id}")), "{error}");
    assert!(error.to_string().contains("unknown outcome code 99"), "{error}");
    let error = store.run_outcomes(None, None, &mut |_, _| Ok(())).unwrap_err();
    assert!(error.to_string().contains("unknown outcome code 99"), "{error}");

    store.conn.execute("UPDATE rosters SET roster = x'00ff'", []).unwrap();
    store.conn.execute("UPDATE run_results SET outcomes = x'0001'", []).unwrap();
    let error = store.results(&ResultFilter::default(), &mut |_| Ok(())).unwrap_err();
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains("roster"), "{error}");
}

pub(crate) fn incident_updates_read_back_by_time<S: TestStore>(mut store: S) {
    let update = |at: i64, text: &str, title: Option<&str>| IncidentUpdate {
        incident_id: "a-20261001T1000".into(),
        posted_at_ms: at,
        text: text.into(),
        title: title.map(String::from),
        cause: None,
    };
    store.add_incident_update(&update(2_000, "later <b>", Some("Storage"))).unwrap();
    store.add_incident_update(&update(1_000, "first", None)).unwrap();
    store.add_incident_update(&update(3_000, "too late", None)).unwrap();
    let read = store.incident_updates(Some(1_000), Some(3_000)).unwrap();
    assert_eq!(read, vec![update(1_000, "first", None), update(2_000, "later <b>", Some("Storage"))]);
    assert_eq!(store.incident_updates(None, None).unwrap().len(), 3);
}
pub(crate) fn certificate_dates_are_stored_when_they_change_and_read_back_per_run<S: TestStore>(mut store: S) {
    let with_cert = |at: i64, cert: i64| {
        let mut r = ok(0, CheckKind::Http, at);
        r.cert_not_after = Some(cert);
        vec![r]
    };
    for (at, cert) in [(0, 100), (60_000, 100), (120_000, 200), (180_000, 200)] {
        write_run(&mut store, at, &fleet(), &with_cert(at, cert));
    }
    let certs: Vec<Option<i64>> = collect(&store, &ResultFilter::default()).iter().map(|r| r.cert_not_after).collect();
    assert_eq!(certs, [Some(100), Some(100), Some(200), Some(200)]);
    let rows: i64 = store.count("site_certs");
    assert_eq!(rows, 2, "one row per change, not per run");
}

pub(crate) fn two_results_for_one_site_and_check_are_refused<S: TestStore>(mut store: S) {
    let meta = RunMeta { vantage: "p".into(), started_at_ms: 0 };
    let mut writer = store.begin_run(&meta, &fleet()).unwrap();
    writer.insert(&ok(1, CheckKind::Dns, 0)).unwrap();
    writer.insert(&ok(1, CheckKind::Dns, 5)).unwrap();
    let results = [ok(1, CheckKind::Dns, 0), ok(1, CheckKind::Dns, 5)];
    let error = writer.finish(&summary(10, &results), &[]).unwrap_err().to_string();
    assert!(error.contains("two dns results for site"), "{error}");
    assert!(store.runs(None, None).unwrap().is_empty());
}

pub(crate) fn run_outcomes_share_one_roster_between_runs_of_an_unchanged_fleet<S: TestStore>(mut store: S) {
    let healthy = |t| vec![ok(0, CheckKind::Http, t), ok(1, CheckKind::Http, t), ok(2, CheckKind::Dns, t)];
    write_run(&mut store, 0, &fleet(), &healthy(0));
    let mut second = healthy(60_000);
    second[1] = failed(1, CheckKind::Http, Failure::ConnectRefused, 60_000);
    write_run(&mut store, 60_000, &fleet(), &second);
    let mut third = healthy(120_000);
    third.pop();
    write_run(&mut store, 120_000, &fleet(), &third);
    let mut seen = Vec::new();
    store
        .run_outcomes(None, None, &mut |run, outcomes| {
            seen.push((run.started_at_ms, outcomes.roster.clone(), outcomes.failed.clone()));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen.len(), 3);
    assert!(std::sync::Arc::ptr_eq(&seen[0].1, &seen[1].1), "same roster, decoded once");
    assert_eq!(seen[2].1.len(), 2, "the third run checked one result less");
    let rosters: i64 = store.count("rosters");
    assert_eq!(rosters, 2, "one roster stored per change of the fleet, not per run");
    assert_eq!(seen[0].2, vec![]);
    assert_eq!(seen[1].2, vec![(1, Outcome::Failed(Failure::ConnectRefused))]);
}

pub(crate) fn check_counts_count_every_vantage_and_skip_invalid_runs<S: TestStore>(mut store: S) {
    use crate::store::{CheckCounts, CheckQuery, LatencyScope};
    const HOUR: i64 = 3_600_000;
    let mut write = |vantage: &str, at: i64, valid: bool, results: &[CheckResult]| {
        let meta = RunMeta { vantage: vantage.into(), started_at_ms: at };
        let mut writer = store.begin_run(&meta, &fleet()).unwrap();
        for result in results {
            writer.insert(result).unwrap();
        }
        let summary = RunSummary {
            valid,
            invalid_reason: (!valid).then(|| "control targets".into()),
            ..summary(at + 30_000, results)
        };
        writer.finish(&summary, &[]).unwrap();
    };
    // Hour 0: two vantages. probe-1 sees b fail on web1 (and c on web2); probe-2 sees a fail and
    // did not get to measure b.
    let http = CheckKind::Http;
    write(
        "probe-1",
        0,
        true,
        &[
            ok(0, http, 0),
            ok(0, CheckKind::Dns, 0),
            failed(1, http, Failure::Timeout(Phase::Total), 0),
            failed(2, http, Failure::ConnectRefused, 0),
        ],
    );
    write(
        "probe-2",
        60_000,
        true,
        &[failed(0, http, Failure::ConnectRefused, 60_000), failed(1, http, Failure::NotMeasured, 60_000)],
    );
    // Hour 1: no run. Hour 2: an invalid run, which says nothing about the fleet.
    write(
        "probe-1",
        2 * HOUR,
        false,
        &[failed(0, http, Failure::ConnectTimeout, 2 * HOUR), failed(1, http, Failure::ConnectTimeout, 2 * HOUR)],
    );
    // Hour 3: healthy.
    write("probe-1", 3 * HOUR, true, &[ok(0, http, 3 * HOUR), ok(1, http, 3 * HOUR), ok(2, http, 3 * HOUR)]);

    let query = |scopes: &[LatencyScope], check: CheckKind, vantages: &[&str]| CheckQuery {
        scopes: scopes.to_vec(),
        check,
        from_ms: 0,
        to_ms: 4 * HOUR,
        bucket_ms: Some(HOUR),
        vantages: vantages.iter().map(|v| v.to_string()).collect(),
    };
    let bucket = |hour: i64, checks: u64, failed: u64| CheckCounts {
        start_ms: hour * HOUR,
        end_ms: (hour + 1) * HOUR,
        checks,
        failed,
    };
    let (web1, web2, b) =
        (LatencyScope::Cluster("web1".into()), LatencyScope::Cluster("web2".into()), LatencyScope::Site("b".into()));
    // Every scope in one pass, in the order asked.
    let counts = store.check_counts(&query(&[web1.clone(), b.clone(), web2.clone()], http, &[])).unwrap();
    assert_eq!(counts[0], vec![bucket(0, 3, 2), bucket(3, 2, 0)], "web1");
    assert_eq!(counts[1], vec![bucket(0, 1, 1), bucket(3, 1, 0)], "site b");
    assert_eq!(counts[2], vec![bucket(0, 1, 1), bucket(3, 1, 0)], "web2");
    let web1_only = |q: CheckQuery| store.check_counts(&q).unwrap().remove(0);
    assert_eq!(web1_only(query(std::slice::from_ref(&web1), http, &["probe-2"])), vec![bucket(0, 1, 1)]);
    assert_eq!(web1_only(query(std::slice::from_ref(&web1), CheckKind::Dns, &[])), vec![bucket(0, 1, 0)]);
    // Buckets are cut at the query's edges.
    let edge = CheckQuery { from_ms: 30 * 60_000, ..query(std::slice::from_ref(&web1), http, &[]) };
    assert_eq!(web1_only(edge), vec![bucket(3, 2, 0)]);
    let whole = CheckQuery { bucket_ms: None, ..query(std::slice::from_ref(&web1), http, &[]) };
    assert_eq!(web1_only(whole), vec![CheckCounts { end_ms: 4 * HOUR, ..bucket(0, 5, 2) }]);
}
