//! Incident updates: the notes people post about an incident, kept in `incident_updates`.

use super::{PostgresStore, write_error};
use crate::store::{IncidentUpdate, StoreResult};

pub(super) fn add_incident_update(store: &mut PostgresStore, update: &IncidentUpdate) -> StoreResult<()> {
    store
        .client
        .get_mut()
        .execute(
            "INSERT INTO incident_updates (incident_id, posted_at_ms, text, title, cause) VALUES ($1, $2, $3, $4, $5)",
            &[&update.incident_id, &update.posted_at_ms, &update.text, &update.title, &update.cause],
        )
        .map(|_| ())
        .map_err(|e| write_error(&store.location, "incident update", e))
}

pub(super) fn incident_updates(
    store: &PostgresStore,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> StoreResult<Vec<IncidentUpdate>> {
    let error = |e| store.query_error("incident updates", e);
    let (from, to) = (from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX));
    let rows = store
        .with(|c| {
            c.query(
                "SELECT incident_id, posted_at_ms, text, title, cause FROM incident_updates \
                 WHERE posted_at_ms >= $1 AND posted_at_ms < $2 ORDER BY posted_at_ms, id",
                &[&from, &to],
            )
        })
        .map_err(error)?;
    rows.iter()
        .map(|row| {
            Ok(IncidentUpdate {
                incident_id: row.try_get(0)?,
                posted_at_ms: row.try_get(1)?,
                text: row.try_get(2)?,
                title: row.try_get(3)?,
                cause: row.try_get(4)?,
            })
        })
        .collect::<Result<_, postgres::Error>>()
        .map_err(error)
}
