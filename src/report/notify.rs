//! The bodies of notifications: the webhook's JSON document, the Slack message and the
//! Alertmanager alerts, built from an incident (or an update, or a certificate) in plain values.

use serde_json::{Value, json};

use crate::analysis::incidents::Incident;
use crate::analysis::notify::{EventKind, classes_by_count};
use crate::fleet::{Fleet, SiteIdx};
use crate::store::IncidentUpdate;

/// Version of the webhook document; a change that breaks readers raises it.
pub const WEBHOOK_VERSION: u32 = 1;

/// RFC 3339 in UTC, to the second.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms.div_euclid(1000) * 1000).map(|t| t.to_string()).unwrap_or_default()
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// One line about an incident: where, how many sites and customers, why.
pub fn incident_summary(fleet: &Fleet, incident: &Incident) -> String {
    let classes: Vec<String> = classes_by_count(incident).into_iter().take(3).map(|(c, _)| c).collect();
    format!(
        "{} incident on {}: {} site{} down at peak, {} of {} customers affected ({}){}",
        incident.scope.as_str(),
        fleet.clusters[incident.cluster].name,
        incident.peak_sites_down,
        if incident.peak_sites_down == 1 { "" } else { "s" },
        incident.customers.len(),
        incident.cluster_customers,
        percent(incident.affected_customer_share),
        if classes.is_empty() { String::new() } else { format!("; {}", classes.join(", ")) }
    )
}

/// The status page's link to an incident, when `status.url` is set.
pub fn status_link(fleet: &Fleet, incident: &Incident) -> Option<String> {
    fleet.status.url.as_ref().map(|url| format!("{url}#{}", incident.id))
}

fn incident_json(fleet: &Fleet, incident: &Incident) -> Value {
    let classes: serde_json::Map<String, Value> =
        classes_by_count(incident).into_iter().map(|(class, n)| (class, json!(n))).collect();
    json!({
        "id": incident.id,
        "cluster": fleet.clusters[incident.cluster].name,
        "scope": incident.scope.as_str(),
        "start": time(incident.start_ms),
        "end": incident.end_ms.map(time),
        "ongoing": incident.ongoing(),
        "peak_sites_down": incident.peak_sites_down,
        "sites": incident.sites.iter().map(|&s| fleet.sites[s].id.as_str()).collect::<Vec<_>>(),
        "customers_affected": incident.customers.len(),
        "cluster_customers": incident.cluster_customers,
        "affected_customer_share": round(incident.affected_customer_share),
        "peak_customer_share": round(incident.peak_customer_share),
        "failure_classes": classes,
        "maintenance": incident.maintenance.as_str(),
        "status_url": status_link(fleet, incident),
    })
}

fn round(share: f64) -> f64 {
    (share * 10_000.0).round() / 10_000.0
}

/// What an event is about, spelled out for a message.
pub enum About<'a> {
    Incident(&'a Incident),
    Update(&'a Incident, &'a IncidentUpdate),
    Certificate { site: SiteIdx, not_after_s: i64 },
}

/// The facts of an event: a one-line text and the document's fields.
fn facts(fleet: &Fleet, kind: EventKind, about: &About, now_ms: i64) -> (String, Value) {
    match about {
        About::Incident(incident) => {
            let what = match kind {
                EventKind::Opened => "opened",
                EventKind::Updated => "grew",
                _ => "resolved",
            };
            let mut text = format!("[{}] {} {what}: {}", kind.as_str(), incident.id, incident_summary(fleet, incident));
            if let (EventKind::Resolved, Some(end)) = (kind, incident.end_ms) {
                text.push_str(&format!(", lasted {} min", (end - incident.start_ms) / 60_000));
            }
            (text, json!({ "incident": incident_json(fleet, incident) }))
        }
        About::Update(incident, update) => (
            format!("[update_posted] {}: {}", incident.id, update.text),
            json!({
                "incident": incident_json(fleet, incident),
                "update": {
                    "posted_at": time(update.posted_at_ms),
                    "text": update.text,
                    "title": update.title,
                    "cause": update.cause,
                },
            }),
        ),
        About::Certificate { site, not_after_s } => {
            let s = &fleet.sites[*site];
            let days = (not_after_s * 1000 - now_ms).div_euclid(86_400_000);
            let when = if days < 0 { "expired".to_string() } else { format!("expires in {days} days") };
            (
                format!(
                    "[cert_expiring] certificate of {} ({}, customer {}, cluster {}) {when}, on {}",
                    s.hostname,
                    s.id,
                    fleet.customers[s.customer].id,
                    fleet.clusters[s.cluster].name,
                    time(not_after_s * 1000)
                ),
                json!({
                    "certificate": {
                        "site": s.id,
                        "hostname": s.hostname,
                        "customer": fleet.customers[s.customer].id,
                        "cluster": fleet.clusters[s.cluster].name,
                        "not_after": time(not_after_s * 1000),
                        "days_left": days,
                    }
                }),
            )
        }
    }
}

/// The webhook's document for an event.
pub fn webhook_payload(fleet: &Fleet, kind: EventKind, about: &About, now_ms: i64) -> String {
    let (summary, fields) = facts(fleet, kind, about, now_ms);
    let mut document = json!({
        "version": WEBHOOK_VERSION,
        "event": kind.as_str(),
        "at": time(now_ms),
        "vantage": fleet.probe.vantage,
        "summary": summary,
    });
    if let (Value::Object(document), Value::Object(fields)) = (&mut document, fields) {
        document.extend(fields);
    }
    document.to_string()
}

/// A Slack incoming-webhook message for an event: the line, and the facts as fields.
pub fn slack_payload(fleet: &Fleet, kind: EventKind, about: &About, now_ms: i64) -> String {
    let (summary, _) = facts(fleet, kind, about, now_ms);
    let mut fields: Vec<(String, String)> = Vec::new();
    let incident = match about {
        About::Incident(i) | About::Update(i, _) => Some(*i),
        About::Certificate { .. } => None,
    };
    if let Some(incident) = incident {
        fields.push(("Cluster".into(), fleet.clusters[incident.cluster].name.clone()));
        fields.push(("Scope".into(), incident.scope.as_str().into()));
        fields.push(("Sites down (peak)".into(), incident.peak_sites_down.to_string()));
        fields.push((
            "Customers affected".into(),
            format!(
                "{} of {} ({})",
                incident.customers.len(),
                incident.cluster_customers,
                percent(incident.affected_customer_share)
            ),
        ));
        fields.push(("Started".into(), time(incident.start_ms)));
        if let Some(end) = incident.end_ms {
            fields.push(("Ended".into(), time(end)));
        }
        let classes: Vec<String> = classes_by_count(incident).into_iter().take(3).map(|(c, _)| c).collect();
        if !classes.is_empty() {
            fields.push(("Failures".into(), classes.join(", ")));
        }
        if let Some(link) = status_link(fleet, incident) {
            fields.push(("Status page".into(), link));
        }
    }
    let color = match kind {
        EventKind::Resolved => "good",
        EventKind::CertExpiring => "warning",
        _ => "danger",
    };
    json!({
        "text": summary,
        "attachments": [{
            "color": color,
            "fallback": summary,
            "fields": fields.iter().map(|(t, v)| json!({ "title": t, "value": v, "short": v.len() < 40 })).collect::<Vec<_>>(),
        }],
    })
    .to_string()
}

/// RFC 3339 in UTC, to the millisecond, for Alertmanager (which wants `endsAt` after `startsAt`).
fn precise_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// An Alertmanager alert (API v2) for an incident, firing until `ends_at_ms`.
pub fn incident_alert(fleet: &Fleet, incident: &Incident, vantage: Option<&str>, ends_at_ms: i64) -> Value {
    let mut labels = json!({
        "alertname": "FleetprobeIncident",
        "cluster": fleet.clusters[incident.cluster].name,
        "scope": incident.scope.as_str(),
        "incident": incident.id,
    });
    if let (Some(v), Value::Object(l)) = (vantage, &mut labels) {
        l.insert("vantage".into(), json!(v));
    }
    let classes: Vec<String> = classes_by_count(incident).into_iter().take(3).map(|(c, _)| c).collect();
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": incident_summary(fleet, incident),
            "failure_classes": classes.join(", "),
            "affected_customer_share": format!("{:.4}", incident.affected_customer_share),
        },
        "startsAt": precise_time(incident.start_ms),
        "endsAt": precise_time(ends_at_ms.max(incident.start_ms + 1)),
    });
    if let Some(link) = status_link(fleet, incident) {
        alert["generatorURL"] = json!(link);
        alert["annotations"]["status_page"] = json!(link);
    }
    alert
}

/// An Alertmanager alert for a certificate that expires soon.
pub fn certificate_alert(fleet: &Fleet, site: SiteIdx, not_after_s: i64, now_ms: i64, ends_at_ms: i64) -> Value {
    let s = &fleet.sites[site];
    let (summary, _) = facts(fleet, EventKind::CertExpiring, &About::Certificate { site, not_after_s }, now_ms);
    json!({
        "labels": {
            "alertname": "FleetprobeCertificateExpiring",
            "cluster": fleet.clusters[s.cluster].name,
            "site": s.id,
            "customer": fleet.customers[s.customer].id,
        },
        "annotations": { "summary": summary, "not_after": time(not_after_s * 1000) },
        "startsAt": precise_time(now_ms),
        "endsAt": precise_time(ends_at_ms),
    })
}
