//! Notification records: recorded once per (target, event), taken for an attempt by one caller,
//! finished, counted; and the sites' latest certificate dates.

use super::{TestStore, fleet, ok, write_run};
use crate::probe::CheckKind;
use crate::store::{DeliveryOutcome, Notification};

fn event(target: &str, key: &str, at: i64) -> Notification {
    Notification {
        target: target.into(),
        event_key: key.into(),
        kind: "opened".into(),
        subject: "a-20261001T1000".into(),
        peak_sites: 3,
        peak_share: 0.25,
        payload: "{\"event\":\"opened\"}".into(),
        created_at_ms: at,
        attempts: 0,
        next_attempt_ms: at,
        delivered_at_ms: None,
        abandoned_at_ms: None,
        last_error: None,
    }
}

pub(crate) fn notifications_are_recorded_once_taken_once_and_counted<S: TestStore>(mut store: S) {
    let first = [event("hook", "a/opened", 1_000), event("slack", "a/opened", 1_000)];
    assert_eq!(store.add_notifications(&first).unwrap(), first.to_vec());
    // A second prober (or the next run) recording the same events records nothing.
    let again = [event("hook", "a/opened", 2_000), event("hook", "a/resolved/5", 2_000)];
    assert_eq!(store.add_notifications(&again).unwrap(), vec![again[1].clone()]);
    assert_eq!(store.count("notifications"), 3);

    assert!(store.claim_notification("hook", "a/opened", 2_000, 62_000).unwrap());
    assert!(!store.claim_notification("hook", "a/opened", 2_000, 62_000).unwrap(), "taken once");
    let retry = DeliveryOutcome::Failed { error: "HTTP 503".into(), next_attempt_ms: 90_000 };
    store.finish_notification("hook", "a/opened", &retry).unwrap();
    assert!(!store.claim_notification("hook", "a/opened", 60_000, 120_000).unwrap(), "not due yet");
    assert!(store.claim_notification("hook", "a/opened", 90_000, 150_000).unwrap());
    store.finish_notification("hook", "a/opened", &DeliveryOutcome::Delivered { at_ms: 90_000 }).unwrap();
    assert!(!store.claim_notification("hook", "a/opened", 200_000, 260_000).unwrap(), "delivered");
    assert!(store.claim_notification("slack", "a/opened", 90_000, 150_000).unwrap());
    let gone = DeliveryOutcome::Abandoned { error: "connection refused".into(), at_ms: 90_000 };
    store.finish_notification("slack", "a/opened", &gone).unwrap();
    store.count_deliveries("am", "ok", 2).unwrap();
    store.count_deliveries("am", "ok", 1).unwrap();

    let read = store.notifications(1_500).unwrap();
    let keys: Vec<(&str, &str, i64, Option<i64>, bool)> = read
        .iter()
        .map(|n| (n.target.as_str(), n.event_key.as_str(), n.attempts, n.delivered_at_ms, n.pending()))
        .collect();
    assert_eq!(keys, [("hook", "a/resolved/5", 0, None, true)], "recent ones and pending ones");
    let all = store.notifications(0).unwrap();
    assert_eq!(all.len(), 3);
    let opened = all.iter().find(|n| n.target == "hook" && n.event_key == "a/opened").unwrap();
    assert_eq!((opened.attempts, opened.delivered_at_ms, opened.last_error.as_deref()), (2, Some(90_000), None));
    assert_eq!((opened.payload.as_str(), opened.peak_sites, opened.peak_share), ("{\"event\":\"opened\"}", 3, 0.25));
    let counts = store.notification_counts().unwrap();
    let expected = [("am", "ok", 3), ("hook", "failed", 1), ("hook", "ok", 1), ("slack", "abandoned", 1)];
    let counts: Vec<(&str, &str, i64)> = counts.iter().map(|(t, r, n)| (t.as_str(), r.as_str(), *n)).collect();
    assert_eq!(counts, expected);
}

pub(crate) fn old_notification_records_are_pruned_unless_pending<S: TestStore>(mut store: S) {
    let events =
        [event("hook", "old/opened", 1_000), event("hook", "old/resolved", 2_000), event("hook", "new/opened", 9_000)];
    store.add_notifications(&events).unwrap();
    for key in ["old/opened", "new/opened"] {
        assert!(store.claim_notification("hook", key, 10_000, 20_000).unwrap());
        store.finish_notification("hook", key, &DeliveryOutcome::Delivered { at_ms: 10_000 }).unwrap();
    }
    // Before 5,000: the delivered old event goes; the old one still pending and the new one stay.
    assert_eq!(store.prune_notifications(5_000).unwrap(), 1);
    let left: Vec<String> = store.notifications(0).unwrap().into_iter().map(|n| n.event_key).collect();
    assert_eq!(left, ["old/resolved", "new/opened"]);
    assert_eq!(store.notification_counts().unwrap(), [("hook".to_string(), "ok".to_string(), 2)], "counts stay");
}

pub(crate) fn site_certificates_are_the_latest_dates<S: TestStore>(mut store: S) {
    // Site 0's certificate is renewed by another issuer; site 1's names no issuer; a third run
    // without certificates changes nothing.
    for (at, cert, issuer) in [(0, Some(100), "R10"), (60_000, Some(300), "R11 (Let's Encrypt)"), (120_000, None, "")] {
        let mut r = ok(0, CheckKind::Http, at);
        r.cert_not_after = cert;
        r.cert_issuer = cert.map(|_| issuer.to_string());
        let mut other = ok(1, CheckKind::Http, at);
        other.cert_not_after = cert.map(|_| 200);
        write_run(&mut store, at, &fleet(), &[r, other]);
    }
    let certs: Vec<(String, i64, Option<String>)> =
        store.site_certificates().unwrap().into_iter().map(|c| (c.site.id, c.not_after, c.issuer)).collect();
    assert_eq!(
        certs,
        [(fleet()[1].id.clone(), 200, None), (fleet()[0].id.clone(), 300, Some("R11 (Let's Encrypt)".to_string()))]
    );
}
