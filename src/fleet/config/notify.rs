//! `[notify]`: where incidents and expiring certificates are announced (Alertmanager, webhooks,
//! Slack), with the filters of each target and the bounds of a run's deliveries.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{At, valid_name};
use crate::fleet::FleetErrors;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    deadline: Option<Spanned<String>>,
    cert_within: Option<Spanned<String>>,
    retry_for: Option<Spanned<String>>,
    update_sites_step: Option<Spanned<super::WholeNumber>>,
    update_share_step: Option<Spanned<f64>>,
    #[serde(default)]
    target: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: Option<Spanned<String>>,
    kind: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    clusters: Vec<Spanned<String>>,
    scope: Option<Spanned<String>>,
    share: Option<Spanned<f64>>,
    certs: Option<bool>,
}

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Alertmanager's API v2: the open incidents as alerts, re-sent every run.
    Alertmanager,
    /// A JSON document per event.
    Webhook,
    /// A Slack incoming webhook: one message per event.
    Slack,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Alertmanager => "alertmanager",
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
        }
    }
}

/// One `[[notify.target]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyTarget {
    /// Unique among the targets: deliveries are recorded under it (default: the kind).
    pub name: String,
    pub kind: TargetKind,
    /// `http://` or `https://`; for Alertmanager its base (`/api/v2/alerts` is added).
    pub url: String,
    /// Only incidents of these clusters (empty: every cluster).
    pub clusters: Vec<String>,
    /// Only incidents of at least this scope: 0 isolated, 1 partial, 2 major.
    pub min_scope: u8,
    /// Only incidents whose peak affected customer share reached this.
    pub min_share: f64,
    /// Also announce certificates expiring within `cert_within` (default: true).
    pub certs: bool,
}

/// `[notify]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifySettings {
    pub targets: Vec<NotifyTarget>,
    /// All of a run's deliveries together take at most this long.
    pub deadline: Duration,
    /// Certificates expiring within this are announced; `None`: no certificate events.
    pub cert_within: Option<Duration>,
    /// A failed delivery is retried on later runs for this long after its event, then dropped.
    pub retry_for: Duration,
    /// An `updated` event when the peak sites down grew by this many since the last one sent.
    pub update_sites_step: usize,
    /// ... or the peak affected customer share grew by this much.
    pub update_share_step: f64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            targets: Vec::new(),
            deadline: Duration::from_secs(5),
            cert_within: None,
            retry_for: Duration::from_secs(6 * 3600),
            update_sites_step: 10,
            update_share_step: 0.1,
        }
    }
}

pub(super) fn notify_settings(
    raw: &RawNotify,
    clusters: &std::collections::HashMap<String, usize>,
    at: &At,
    errors: &mut FleetErrors,
) -> NotifySettings {
    let defaults = NotifySettings::default();
    let deadline = at.duration(
        &raw.deadline,
        "notify.deadline",
        (Duration::from_millis(100), Duration::from_secs(60)),
        defaults.deadline,
        errors,
    );
    let cert_within = raw.cert_within.as_ref().map(|_| {
        at.duration(
            &raw.cert_within,
            "notify.cert_within",
            (Duration::from_secs(3600), Duration::from_secs(365 * 86_400)),
            Duration::from_secs(21 * 86_400),
            errors,
        )
    });
    let retry_for = at.duration(
        &raw.retry_for,
        "notify.retry_for",
        (Duration::from_secs(60), Duration::from_secs(7 * 86_400)),
        defaults.retry_for,
        errors,
    );
    let update_sites_step = at.number(
        &raw.update_sites_step,
        "notify.update_sites_step",
        1..=1_000_000,
        defaults.update_sites_step,
        errors,
    );
    let update_share_step = match &raw.update_share_step {
        None => defaults.update_share_step,
        Some(v) if *v.get_ref() > 0.0 && *v.get_ref() <= 1.0 => *v.get_ref(),
        Some(v) => {
            errors.push(at.err(
                v,
                "notify.update_share_step",
                format!("{} is not a share above 0; expected a number above 0 up to 1, e.g. 0.1", v.get_ref()),
            ));
            defaults.update_share_step
        }
    };
    let mut targets: Vec<NotifyTarget> = Vec::new();
    for (i, t) in raw.target.iter().enumerate() {
        let field = |f: &str| format!("notify.target[{i}].{f}");
        let kind = match t.kind.get_ref().trim() {
            "alertmanager" => TargetKind::Alertmanager,
            "webhook" => TargetKind::Webhook,
            "slack" => TargetKind::Slack,
            other => {
                errors.push(at.err(
                    &t.kind,
                    field("kind"),
                    format!("`{other}` is not a kind of target; expected alertmanager, webhook or slack"),
                ));
                continue;
            }
        };
        let url = t.url.get_ref().trim().to_string();
        if let Err(message) = check_url(&url) {
            errors.push(at.err(&t.url, field("url"), message));
        }
        for c in &t.clusters {
            if !clusters.contains_key(c.get_ref().trim()) {
                errors.push(at.err(c, field("clusters"), format!("unknown cluster `{}`", c.get_ref().trim())));
            }
        }
        let name = match &t.name {
            None => kind.as_str().to_string(),
            Some(n) => {
                let name = n.get_ref().trim().to_string();
                if !valid_name(&name) {
                    errors.push(at.err(
                        n,
                        field("name"),
                        format!("`{name}` is not a valid target name; expected letters, digits, '-', '_' or '.'"),
                    ));
                }
                name
            }
        };
        if targets.iter().any(|other| other.name == name) {
            let message = format!("duplicate target name `{name}`; give each target its own `name`");
            match &t.name {
                Some(n) => errors.push(at.err(n, field("name"), message)),
                None => errors.push(at.err(&t.kind, field("name"), message)),
            }
        }
        let min_scope = match &t.scope {
            None => 0,
            Some(s) => match s.get_ref().trim() {
                "isolated" => 0,
                "partial" => 1,
                "major" => 2,
                other => {
                    errors.push(at.err(
                        s,
                        field("scope"),
                        format!("`{other}` is not a scope; expected isolated, partial or major"),
                    ));
                    0
                }
            },
        };
        let min_share = match &t.share {
            None => 0.0,
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
            Some(v) => {
                errors.push(at.err(
                    v,
                    field("share"),
                    format!("{} is not a share; expected a number from 0 to 1, e.g. 0.2", v.get_ref()),
                ));
                0.0
            }
        };
        targets.push(NotifyTarget {
            name,
            kind,
            url,
            clusters: t.clusters.iter().map(|c| c.get_ref().trim().to_string()).collect(),
            min_scope,
            min_share,
            certs: t.certs.unwrap_or(true),
        });
    }
    NotifySettings { targets, deadline, cert_within, retry_for, update_sites_step, update_share_step }
}

/// An absolute `http://` or `https://` URL with a host, as the delivery client can reach.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split(['/', '?']).next().unwrap_or("");
        !host.is_empty() && !host.contains('@')
    }) && !url.contains(|c: char| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{url}` is not an http(s) URL; expected e.g. http://127.0.0.1:9093 or https://hooks.example.net/fleetprobe"
        ))
    }
}
