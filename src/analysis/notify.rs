//! Which events to announce: from the incidents of the recent past, the updates people posted,
//! the sites' certificate dates and what was already recorded for each target, the events that
//! are due and not recorded yet. Pure: no clock, no store, no network.
//!
//! Event keys are what makes an event once-only: a target never gets two records with the same
//! key. `ID/opened` (and `ID/opened/END` when an incident that was announced as resolved at END
//! comes back within the merge gap), `ID/updated/SITES/PERMILLE`, `ID/resolved/END`,
//! `ID/update/POSTED_MS`, `cert/SITE/NOT_AFTER`.

use std::collections::HashSet;

use super::incidents::{Incident, Scope};
use crate::fleet::{Fleet, NotifySettings, NotifyTarget, SiteIdx, TargetKind};
use crate::store::{IncidentUpdate, Notification};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Opened,
    /// The peak sites down or the peak customer share grew by a step since the last event.
    Updated,
    UpdatePosted,
    Resolved,
    /// A site's certificate expires within `notify.cert_within`.
    CertExpiring,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Updated => "updated",
            EventKind::UpdatePosted => "update_posted",
            EventKind::Resolved => "resolved",
            EventKind::CertExpiring => "cert_expiring",
        }
    }
}

/// What the event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// An index into the incidents given.
    Incident(usize),
    /// An incident and an index into the updates given.
    Update(usize, usize),
    /// A site and its certificate's expiry, Unix seconds.
    Certificate(SiteIdx, i64),
}

/// An event due for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Index into `fleet.notify.targets`.
    pub target: usize,
    pub key: String,
    pub kind: EventKind,
    pub subject: Subject,
}

/// Whether `target` wants to hear about `incident`.
pub fn wants(fleet: &Fleet, target: &NotifyTarget, incident: &Incident) -> bool {
    let scope = match target.min_scope {
        0 => Scope::Isolated,
        1 => Scope::Partial,
        _ => Scope::Major,
    };
    (target.clusters.is_empty() || target.clusters.iter().any(|c| *c == fleet.clusters[incident.cluster].name))
        && incident.scope >= scope
        && incident.peak_customer_share.max(incident.affected_customer_share) + 1e-9 >= target.min_share
}

/// Sites whose certificate expires before `now_ms + within` (and has not expired a week ago):
/// (site, expiry in Unix seconds), soonest first.
pub fn expiring_certificates(certs: &[(SiteIdx, i64)], settings: &NotifySettings, now_ms: i64) -> Vec<(SiteIdx, i64)> {
    let Some(within) = settings.cert_within else { return Vec::new() };
    let horizon_s = now_ms / 1000 + within.as_secs() as i64;
    let long_gone_s = now_ms / 1000 - 7 * 86_400;
    let mut found: Vec<(SiteIdx, i64)> =
        certs.iter().copied().filter(|&(_, not_after)| (long_gone_s..=horizon_s).contains(&not_after)).collect();
    found.sort_by_key(|&(site, not_after)| (not_after, site));
    found
}

/// The events due now and not recorded yet, per target in the order they should arrive: an
/// incident's `opened` before its `updated`, its updates and its `resolved`. `recorded` is what
/// the store holds for the recent past; incidents that ended more than `retry_for` ago are
/// history, not news.
pub fn due_events(
    fleet: &Fleet,
    incidents: &[Incident],
    updates: &[IncidentUpdate],
    certs: &[(SiteIdx, i64)],
    recorded: &[Notification],
    now_ms: i64,
) -> Vec<Event> {
    let settings = &fleet.notify;
    let recent_ms = now_ms - settings.retry_for.as_millis() as i64;
    let expiring = expiring_certificates(certs, settings, now_ms);
    let mut events = Vec::new();
    for (t, target) in settings.targets.iter().enumerate() {
        let mine: Vec<&Notification> = recorded.iter().filter(|n| n.target == target.name).collect();
        let keys: HashSet<&str> = mine.iter().map(|n| n.event_key.as_str()).collect();
        let push = |key: String, kind: EventKind, subject: Subject, events: &mut Vec<Event>| {
            if !keys.contains(key.as_str()) {
                events.push(Event { target: t, key, kind, subject });
            }
        };
        for (i, incident) in incidents.iter().enumerate() {
            if !wants(fleet, target, incident) || incident.end_ms.is_some_and(|end| end < recent_ms) {
                continue;
            }
            let id = &incident.id;
            if target.kind == TargetKind::Alertmanager {
                // Open incidents are alerts re-sent every run; only the resolution is an event.
                if let Some(end) = incident.end_ms {
                    push(format!("{id}/resolved/{end}"), EventKind::Resolved, Subject::Incident(i), &mut events);
                }
                continue;
            }
            let about: Vec<&&Notification> = mine.iter().filter(|n| n.subject == *id).collect();
            let last_resolved = about
                .iter()
                .filter(|n| n.kind == EventKind::Resolved.as_str())
                .filter_map(|n| n.event_key.rsplit('/').next()?.parse::<i64>().ok())
                .max();
            match (incident.end_ms, last_resolved) {
                // Announced as resolved, then back within the merge gap: opened again.
                (None, Some(end)) => {
                    push(format!("{id}/opened/{end}"), EventKind::Opened, Subject::Incident(i), &mut events)
                }
                _ => push(format!("{id}/opened"), EventKind::Opened, Subject::Incident(i), &mut events),
            }
            if incident.end_ms.is_none() {
                let (sites, share) = about
                    .iter()
                    .filter(|n| n.kind != EventKind::UpdatePosted.as_str())
                    .map(|n| (n.peak_sites, n.peak_share))
                    .fold((None, None), |(s, p): (Option<i64>, Option<f64>), (ns, np)| {
                        (Some(s.map_or(ns, |s| s.max(ns))), Some(p.map_or(np, |p| p.max(np))))
                    });
                if let (Some(sites), Some(share)) = (sites, share) {
                    let grew_sites = incident.peak_sites_down as i64 >= sites + settings.update_sites_step as i64;
                    let grew_share = incident.peak_customer_share + 1e-9 >= share + settings.update_share_step;
                    if grew_sites || grew_share {
                        let permille = (incident.peak_customer_share * 1000.0).round() as i64;
                        let key = format!("{id}/updated/{}/{permille}", incident.peak_sites_down);
                        push(key, EventKind::Updated, Subject::Incident(i), &mut events);
                    }
                }
            }
            for (u, update) in updates.iter().enumerate() {
                if update.incident_id == *id {
                    let key = format!("{id}/update/{}", update.posted_at_ms);
                    push(key, EventKind::UpdatePosted, Subject::Update(i, u), &mut events);
                }
            }
            if let Some(end) = incident.end_ms {
                push(format!("{id}/resolved/{end}"), EventKind::Resolved, Subject::Incident(i), &mut events);
            }
        }
        if target.certs && target.kind != TargetKind::Alertmanager {
            for &(site, not_after) in &expiring {
                let key = format!("cert/{}/{not_after}", fleet.sites[site].id);
                push(key, EventKind::CertExpiring, Subject::Certificate(site, not_after), &mut events);
            }
        }
    }
    events
}

/// The incidents an Alertmanager target alerts on now: open ones it wants.
pub fn open_alerts<'a>(fleet: &Fleet, target: &NotifyTarget, incidents: &'a [Incident]) -> Vec<&'a Incident> {
    incidents.iter().filter(|i| i.ongoing() && wants(fleet, target, i)).collect()
}

/// Failure classes of an incident, most failed checks first.
pub fn classes_by_count(incident: &Incident) -> Vec<(String, u32)> {
    let mut classes: Vec<(String, u32)> = incident.classes.iter().map(|(f, n)| (f.to_string(), *n)).collect();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    classes
}
