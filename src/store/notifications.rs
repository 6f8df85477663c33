//! What was announced where: one row per (target, event), so that an event is delivered once
//! whatever the number of runs or probers, and a failed delivery is retried on later runs.

/// An event for one target, as recorded before its first delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The target's name (`[[notify.target]] name`).
    pub target: String,
    /// Unique per target: `INCIDENT/opened`, `INCIDENT/updated/3`, `cert/SITE/NOT_AFTER`, ...
    pub event_key: String,
    /// `opened`, `updated`, `resolved`, `update_posted`, `cert_expiring`.
    pub kind: String,
    /// The incident (or site, for certificates) the event is about.
    pub subject: String,
    /// The incident's peak sites down and peak affected customer share when the event was made.
    pub peak_sites: i64,
    pub peak_share: f64,
    /// The body to send, exactly as it will be sent on every attempt.
    pub payload: String,
    pub created_at_ms: i64,
    /// Delivery state.
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub delivered_at_ms: Option<i64>,
    /// Set when the event aged out undelivered.
    pub abandoned_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

impl Notification {
    /// Still waiting for a delivery.
    pub fn pending(&self) -> bool {
        self.delivered_at_ms.is_none() && self.abandoned_at_ms.is_none()
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Delivered {
        at_ms: i64,
    },
    /// Failed; try again from `next_attempt_ms` on.
    Failed {
        error: String,
        next_attempt_ms: i64,
    },
    /// Failed for the last time: the event is too old to be worth sending.
    Abandoned {
        error: String,
        at_ms: i64,
    },
}
