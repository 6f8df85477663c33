//! `[notify]`: after every stored run, the incidents of the last day and the certificates about
//! to expire are announced to the configured targets. Webhook and Slack targets get each event
//! once: it is recorded in the store before the first attempt (a second prober recording the same
//! event records nothing), taken for one attempt at a time, and retried with backoff on later
//! runs until it is delivered or `notify.retry_for` has passed. Alertmanager targets get the open
//! incidents as alerts on every run (that keeps them firing) and each resolution once.
//!
//! Deliveries never fail the run and never hold it for long: all of them together get
//! `notify.deadline`; failures are logged and counted (`fleetprobe_notifications_total`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use super::{Error, Result};
use crate::analysis::incidents::Incident;
use crate::analysis::notify::{Subject, due_events, expiring_certificates, open_alerts};
use crate::analysis::period::{Availability, LOOKBACK_MS};
use crate::fleet::{Fleet, SiteIdx, TargetKind};
use crate::report::notify::{About, certificate_alert, incident_alert, slack_payload, webhook_payload};
use crate::store::{DeliveryOutcome, Notification, Store};

/// What one round of deliveries did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifyReport {
    /// Events recorded by this round.
    pub recorded: usize,
    pub delivered: usize,
    pub failed: usize,
    pub abandoned: usize,
    /// Alertmanager posts (each carrying every open alert of a target).
    pub alert_posts: usize,
    pub alert_posts_failed: usize,
}

/// Runs after `fleetprobe probe` stored its run and wrote its metrics: announces, then adds the
/// delivery counters to the metrics file. Never fails the run: problems go to the log.
pub fn after_run(fleet: &Fleet, store: &mut dyn Store, recent: &Availability, now_ms: i64) {
    if fleet.notify.targets.is_empty() {
        return;
    }
    let result = notify(fleet, store, recent, now_ms).and_then(|report| {
        log::debug!("notifications: {report:?}");
        if let Some(path) = &fleet.metrics.textfile {
            let counts = store.notification_counts()?;
            super::metrics::append_notification_counts(path, &counts)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        log::warn!("notifications: {e}");
    }
}

/// One round: records the events due at `now_ms` (from `recent`, the analysis of the last day),
/// delivers what is due, records the outcomes.
/// The oldest time whose event records still matter (with every pending one): incidents of
/// the analysed day and its lookback, and certificates as long as they are inside the
/// threshold. Older records that are delivered or abandoned are never read again.
pub(crate) fn records_needed_since(settings: &crate::fleet::NotifySettings, now_ms: i64) -> i64 {
    let cert_ms = settings.cert_within.map_or(0, |d| d.as_millis() as i64);
    now_ms - (3 * LOOKBACK_MS).max(cert_ms + 15 * LOOKBACK_MS)
}

pub fn notify(fleet: &Fleet, store: &mut dyn Store, recent: &Availability, now_ms: i64) -> Result<NotifyReport> {
    let wall_start = Instant::now();
    let settings = &fleet.notify;
    let interval_ms = i64::try_from(fleet.probe.interval.as_millis()).unwrap_or(i64::MAX).max(1000);
    let analysis = recent;
    let incidents = &analysis.incidents;
    let updates = store.incident_updates(Some(now_ms - 2 * LOOKBACK_MS), Some(now_ms + 1))?;
    let certs: Vec<(SiteIdx, i64)> = if settings.cert_within.is_some() {
        let index: HashMap<&str, SiteIdx> = fleet.sites.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        store
            .site_certificates()?
            .into_iter()
            .filter_map(|cert| index.get(cert.site.id.as_str()).map(|&i| (i, cert.not_after)))
            .collect()
    } else {
        Vec::new()
    };
    let recorded = store.notifications(records_needed_since(settings, now_ms))?;

    let events = due_events(fleet, incidents, &updates, &certs, &recorded, now_ms);
    let fresh: Vec<Notification> = events
        .iter()
        .map(|event| {
            let target = &settings.targets[event.target];
            let (subject, peak_sites, peak_share, about) = match event.subject {
                Subject::Incident(i) => {
                    let incident = &incidents[i];
                    (
                        incident.id.clone(),
                        incident.peak_sites_down,
                        incident.peak_customer_share,
                        About::Incident(incident),
                    )
                }
                Subject::Update(i, u) => {
                    let incident = &incidents[i];
                    (
                        incident.id.clone(),
                        incident.peak_sites_down,
                        incident.peak_customer_share,
                        About::Update(incident, &updates[u]),
                    )
                }
                Subject::Certificate(site, not_after_s) => {
                    (fleet.sites[site].id.clone(), 0, 0.0, About::Certificate { site, not_after_s })
                }
            };
            let payload = match (target.kind, &about) {
                (TargetKind::Webhook, _) => webhook_payload(fleet, event.kind, &about, now_ms),
                (TargetKind::Slack, _) => slack_payload(fleet, event.kind, &about, now_ms),
                (TargetKind::Alertmanager, About::Incident(incident)) => {
                    let end = incident.end_ms.unwrap_or(now_ms);
                    serde_json::Value::Array(vec![incident_alert(fleet, incident, vantage(analysis), end)]).to_string()
                }
                (TargetKind::Alertmanager, _) => "[]".to_string(),
            };
            Notification {
                target: target.name.clone(),
                event_key: event.key.clone(),
                kind: event.kind.as_str().to_string(),
                subject,
                peak_sites: peak_sites as i64,
                peak_share,
                payload,
                created_at_ms: now_ms,
                attempts: 0,
                next_attempt_ms: now_ms,
                delivered_at_ms: None,
                abandoned_at_ms: None,
                last_error: None,
            }
        })
        .collect();
    let added = store.add_notifications(&fresh)?;
    let mut report = NotifyReport { recorded: added.len(), ..NotifyReport::default() };

    // Everything pending and due, per target in the order it should arrive.
    let rank = |kind: &str| {
        ["opened", "updated", "update_posted", "resolved", "cert_expiring"].iter().position(|k| *k == kind)
    };
    let mut pending: Vec<Notification> = recorded
        .into_iter()
        .filter(Notification::pending)
        .chain(added)
        .filter(|n| settings.targets.iter().any(|t| t.name == n.target))
        .collect();
    pending.sort_by_key(|n| (n.created_at_ms, rank(&n.kind)));
    // An event waits while an earlier one about the same subject is waiting for its retry: a
    // receiver never hears `resolved` before `opened`.
    let mut waiting: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    pending.retain(|n| {
        let key = (n.target.clone(), n.subject.clone());
        if waiting.contains(&key) {
            return false;
        }
        if n.next_attempt_ms > now_ms {
            waiting.insert(key);
            return false;
        }
        true
    });

    // Too old to be worth sending: dropped, and said so.
    let retry_ms = settings.retry_for.as_millis() as i64;
    let mut claimed: Vec<Notification> = Vec::new();
    for n in pending {
        let lease_ms = now_ms + interval_ms.max(settings.deadline.as_millis() as i64);
        if !store.claim_notification(&n.target, &n.event_key, now_ms, lease_ms)? {
            continue; // another prober has it
        }
        if n.created_at_ms + retry_ms <= now_ms {
            let error = n.last_error.clone().unwrap_or_else(|| "never attempted".into());
            log::warn!(
                "notification {} to {} dropped after {} attempts over {} min: {error}",
                n.event_key,
                n.target,
                n.attempts,
                settings.retry_for.as_secs() / 60
            );
            store.finish_notification(&n.target, &n.event_key, &DeliveryOutcome::Abandoned { error, at_ms: now_ms })?;
            report.abandoned += 1;
            continue;
        }
        claimed.push(n);
    }

    // The Alertmanager posts of this run: every open incident a target wants, and the
    // certificates that expire soon, firing for three intervals unless re-sent.
    let ends_at_ms = now_ms + 3 * interval_ms;
    let expiring = expiring_certificates(&certs, settings, now_ms);
    let mut alert_posts: Vec<(usize, String)> = Vec::new();
    for (t, target) in settings.targets.iter().enumerate() {
        if target.kind != TargetKind::Alertmanager {
            continue;
        }
        let open: Vec<&Incident> = open_alerts(fleet, target, incidents);
        let mut alerts: Vec<serde_json::Value> =
            open.iter().map(|i| incident_alert(fleet, i, vantage(analysis), ends_at_ms)).collect();
        if target.certs {
            alerts.extend(expiring.iter().map(|&(site, na)| certificate_alert(fleet, site, na, now_ms, ends_at_ms)));
        }
        if !alerts.is_empty() {
            alert_posts.push((t, serde_json::Value::Array(alerts).to_string()));
        }
    }

    let remaining = settings.deadline.saturating_sub(wall_start.elapsed());
    let outcomes = deliver(fleet, &claimed, &alert_posts, remaining)?;

    for (t, result) in &outcomes.alerts {
        let target = &settings.targets[*t];
        match result {
            Some(Ok(())) => {
                report.alert_posts += 1;
                store.count_deliveries(&target.name, "ok", 1)?;
            }
            Some(Err(e)) => {
                report.alert_posts_failed += 1;
                log::warn!("alerts to {} ({}) not delivered: {e}", target.name, target.url);
                store.count_deliveries(&target.name, "failed", 1)?;
            }
            None => {
                report.alert_posts_failed += 1;
                log::warn!("alerts to {} ({}) not sent within notify.deadline", target.name, target.url);
                store.count_deliveries(&target.name, "failed", 1)?;
            }
        }
    }
    for (n, state) in claimed.iter().zip(&outcomes.events) {
        let failed = |error: String| {
            let backoff = interval_ms.saturating_mul(1 << n.attempts.clamp(0, 12)).min(3_600_000);
            if n.created_at_ms + retry_ms <= now_ms + backoff - interval_ms / 2 {
                log::warn!(
                    "notification {} to {} dropped after {} attempts: {error}",
                    n.event_key,
                    n.target,
                    n.attempts + 1
                );
                DeliveryOutcome::Abandoned { error, at_ms: now_ms }
            } else {
                log::warn!("notification {} to {} failed (attempt {}): {error}", n.event_key, n.target, n.attempts + 1);
                DeliveryOutcome::Failed { error, next_attempt_ms: now_ms + backoff - interval_ms / 2 }
            }
        };
        let outcome = match state {
            Attempt::Done(Ok(())) => DeliveryOutcome::Delivered { at_ms: now_ms },
            Attempt::Done(Err(e)) => failed(e.clone()),
            Attempt::Started => failed("no answer within notify.deadline".into()),
            Attempt::NotStarted => {
                // Behind a failure of the same target, or out of time: due again next run.
                store.claim_notification(&n.target, &n.event_key, i64::MAX, now_ms)?;
                continue;
            }
        };
        match &outcome {
            DeliveryOutcome::Delivered { .. } => report.delivered += 1,
            DeliveryOutcome::Failed { .. } => report.failed += 1,
            DeliveryOutcome::Abandoned { .. } => report.abandoned += 1,
        }
        store.finish_notification(&n.target, &n.event_key, &outcome)?;
    }
    Ok(report)
}

/// The `vantage` label of alerts: the prober whose runs the verdict came from, when only one did.
fn vantage(analysis: &crate::analysis::period::Availability) -> Option<&str> {
    match analysis.vantages.len() {
        1 => analysis.vantages.first().map(|v| v.name.as_str()),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Attempt {
    NotStarted,
    Started,
    Done(std::result::Result<(), String>),
}

struct Outcomes {
    /// Per claimed event, in order.
    events: Vec<Attempt>,
    /// Per Alertmanager post: its result, `None` when the deadline came first.
    alerts: Vec<(usize, Option<std::result::Result<(), String>>)>,
}

/// Sends the claimed events (in order within a target; a failure holds back the rest of that
/// target's) and the alert posts, all targets at once, for at most `budget`.
fn deliver(
    fleet: &Fleet,
    claimed: &[Notification],
    alert_posts: &[(usize, String)],
    budget: Duration,
) -> Result<Outcomes> {
    let events = Arc::new(Mutex::new(vec![Attempt::NotStarted; claimed.len()]));
    let alerts = Arc::new(Mutex::new(vec![None; alert_posts.len()]));
    if claimed.is_empty() && alert_posts.is_empty() {
        return Ok(Outcomes { events: Vec::new(), alerts: Vec::new() });
    }
    let tls =
        crate::probe::tls::client_config(fleet.probe.ca_file.as_deref()).map_err(|e| Error::config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let deadline = tokio::time::Instant::now() + budget;
    let mut by_target: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, n) in claimed.iter().enumerate() {
        let t = fleet.notify.targets.iter().position(|t| t.name == n.target).unwrap_or(0);
        match by_target.iter_mut().find(|(target, _)| *target == t) {
            Some((_, list)) => list.push(i),
            None => by_target.push((t, vec![i])),
        }
    }
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (t, list) in by_target {
            let target = fleet.notify.targets[t].clone();
            let bodies: Vec<(usize, String)> = list.iter().map(|&i| (i, claimed[i].payload.clone())).collect();
            let (events, tls) = (events.clone(), tls.clone());
            tasks.spawn(async move {
                for (i, body) in bodies {
                    events.lock().unwrap_or_else(|e| e.into_inner())[i] = Attempt::Started;
                    let result = post(&delivery_url(&target), body, tls.clone(), deadline).await;
                    let ok = result.is_ok();
                    events.lock().unwrap_or_else(|e| e.into_inner())[i] = Attempt::Done(result);
                    if !ok {
                        break;
                    }
                }
            });
        }
        for (k, (t, body)) in alert_posts.iter().enumerate() {
            let url = delivery_url(&fleet.notify.targets[*t]);
            let (alerts, tls, body) = (alerts.clone(), tls.clone(), body.clone());
            tasks.spawn(async move {
                let result = post(&url, body, tls, deadline).await;
                alerts.lock().unwrap_or_else(|e| e.into_inner())[k] = Some(result);
            });
        }
        let _ = tokio::time::timeout_at(deadline, async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
    });
    drop(runtime);
    let events = events.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let alerts = alerts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Outcomes { events, alerts: alert_posts.iter().map(|(t, _)| *t).zip(alerts).collect() })
}

/// Where a target's documents go: its URL, or Alertmanager's alerts endpoint below it.
fn delivery_url(target: &crate::fleet::NotifyTarget) -> String {
    match target.kind {
        TargetKind::Alertmanager => format!("{}/api/v2/alerts", target.url.trim_end_matches('/')),
        _ => target.url.clone(),
    }
}

/// Where a URL points: TLS or not, host, port, and the path with its query.
struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    path: String,
}

fn endpoint(url: &str) -> std::result::Result<Endpoint, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("{url}: not an http(s) URL"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
        let port = after.strip_prefix(':').map(str::parse).transpose().map_err(|_| format!("{url}: bad port"))?;
        (host.to_string(), port.unwrap_or(default_port))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().map_err(|_| format!("{url}: bad port"))?),
            None => (authority.to_string(), default_port),
        }
    };
    Ok(Endpoint { tls, host, port, path })
}

/// Answers read at most (enough for an error message).
const MAX_ANSWER_BYTES: usize = 4096;
/// Connecting takes at most this long (and never past the deadline).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// POSTs `body` (JSON) to `url` over a fresh HTTP/1.1 connection; a 2xx answer before
/// `deadline` is success.
pub async fn post(
    url: &str,
    body: String,
    tls: Arc<rustls::ClientConfig>,
    deadline: tokio::time::Instant,
) -> std::result::Result<(), String> {
    let endpoint = endpoint(url)?;
    let connect_until = deadline.min(tokio::time::Instant::now() + CONNECT_TIMEOUT);
    let tcp =
        tokio::time::timeout_at(connect_until, tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port)))
            .await
            .map_err(|_| format!("connecting to {url}: timed out"))?
            .map_err(|e| format!("connecting to {url}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let exchange = async {
        if endpoint.tls {
            let name =
                rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| format!("{url}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {url}: {e}"))?;
            exchange(url, &endpoint, stream, body).await
        } else {
            exchange(url, &endpoint, tcp, body).await
        }
    };
    tokio::time::timeout_at(deadline, exchange).await.map_err(|_| format!("{url}: no answer within notify.deadline"))?
}

async fn exchange<S>(url: &str, endpoint: &Endpoint, stream: S, body: String) -> std::result::Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let host = if endpoint.host.contains(':') { format!("[{}]", endpoint.host) } else { endpoint.host.clone() };
    let default_port = if endpoint.tls { 443 } else { 80 };
    let host = if endpoint.port == default_port { host } else { format!("{host}:{}", endpoint.port) };
    let request = hyper::Request::post(endpoint.path.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("fleetprobe/", env!("CARGO_PKG_VERSION")))
        .header(hyper::header::CONTENT_LENGTH, body.len())
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let mut answer = Vec::new();
    let mut incoming = response.into_body();
    while answer.len() < MAX_ANSWER_BYTES {
        match incoming.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    answer.extend_from_slice(data);
                }
            }
            _ => break,
        }
    }
    driver.abort();
    if status.is_success() {
        Ok(())
    } else {
        let text: String = String::from_utf8_lossy(&answer).chars().filter(|c| !c.is_control()).take(200).collect();
        Err(format!(
            "{url}: HTTP {}{}",
            status.as_u16(),
            if text.is_empty() { String::new() } else { format!(": {text}") }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_split_into_host_port_and_path() {
        let e = endpoint("http://127.0.0.1:9093").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port, e.path.as_str()), (false, "127.0.0.1", 9093, "/"));
        let e = endpoint("https://hooks.example.net/services/T0/B0?x=1").unwrap();
        assert_eq!(
            (e.tls, e.host.as_str(), e.port, e.path.as_str()),
            (true, "hooks.example.net", 443, "/services/T0/B0?x=1")
        );
        let e = endpoint("http://[::1]:8080/hook").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("::1", 8080, "/hook"));
        assert!(endpoint("ftp://x/").is_err());
    }
}
