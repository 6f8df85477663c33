//! Incident updates: the notes people post about an incident, kept in `incident_updates`.

use rusqlite::params;

use super::{SqliteStore, write_error};
use crate::store::{IncidentUpdate, StoreResult};

pub(super) fn add_incident_update(store: &mut SqliteStore, update: &IncidentUpdate) -> StoreResult<()> {
    store
        .conn
        .execute(
            "INSERT INTO incident_updates (incident_id, posted_at_ms, text, title, cause) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![update.incident_id, update.posted_at_ms, update.text, update.title, update.cause],
        )
        .map(|_| ())
        .map_err(|e| write_error(&store.path, "incident update", e))
}

pub(super) fn incident_updates(
    store: &SqliteStore,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
) -> StoreResult<Vec<IncidentUpdate>> {
    let error = |e| store.query_error("incident updates", e);
    let mut select = store
        .conn
        .prepare_cached(
            "SELECT incident_id, posted_at_ms, text, title, cause FROM incident_updates \
             WHERE posted_at_ms >= ?1 AND posted_at_ms < ?2 ORDER BY posted_at_ms, id",
        )
        .map_err(error)?;
    let rows = select
        .query_map(params![from_ms.unwrap_or(i64::MIN), to_ms.unwrap_or(i64::MAX)], |row| {
            Ok(IncidentUpdate {
                incident_id: row.get(0)?,
                posted_at_ms: row.get(1)?,
                text: row.get(2)?,
                title: row.get(3)?,
                cause: row.get(4)?,
            })
        })
        .map_err(error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(error)
}
