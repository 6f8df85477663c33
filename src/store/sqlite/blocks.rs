//! A run's stored columns read back: the rows of `run_results` one run at a time, and the
//! rosters they refer to, decoded once and shared.

use rusqlite::Connection;

use super::DataError;
use crate::probe::Outcome;
use crate::store::RunId;
use crate::store::columns;

/// One run's stored columns, borrowed from the row being read.
pub(super) struct BlockRef<'a> {
    pub(super) run_id: RunId,
    pub(super) started_at_ms: i64,
    pub(super) roster_id: i64,
    outcomes: &'a [u8],
    details: &'a [u8],
}

impl BlockRef<'_> {
    pub(super) fn failed(&self, roster: &columns::Roster) -> Result<Vec<(usize, Outcome)>, DataError> {
        columns::failed_rows(self.outcomes, roster.keys.len())
            .map_err(|m| DataError::Data(format!("results of run {}: {m}", self.run_id)))
    }

    pub(super) fn rows(&self, roster: &columns::Roster) -> Result<Vec<columns::Row>, DataError> {
        self.rows_in(roster, 0..roster.keys.len())
    }

    /// The rows in `range` (row indexes), inflating only the segments they are in.
    pub(super) fn rows_in(
        &self,
        roster: &columns::Roster,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<columns::Row>, DataError> {
        columns::decode_rows(roster, self.outcomes, self.details, range)
            .map_err(|m| DataError::Data(format!("results of run {}: {m}", self.run_id)))
    }
}

/// Calls `each` with the stored columns of every run matching `condition` (on `runs u`), in run
/// order, until it returns false.
pub(super) fn for_each_block(
    conn: &Connection,
    condition: &str,
    args: impl rusqlite::Params,
    each: &mut dyn FnMut(BlockRef<'_>) -> Result<bool, DataError>,
) -> Result<(), DataError> {
    let mut select = conn.prepare_cached(&format!(
        "SELECT u.id, u.started_at_ms, b.roster_id, b.outcomes, b.details FROM runs u \
         JOIN run_results b ON b.run_id = u.id WHERE {condition} ORDER BY u.id"
    ))?;
    let mut rows = select.query(args)?;
    while let Some(row) = rows.next()? {
        let block = BlockRef {
            run_id: row.get(0)?,
            started_at_ms: row.get(1)?,
            roster_id: row.get(2)?,
            outcomes: row.get_ref(3)?.as_blob()?,
            details: row.get_ref(4)?.as_blob()?,
        };
        if !each(block)? {
            break;
        }
    }
    Ok(())
}

/// Decoded rosters of recent runs by id: runs over an unchanged fleet share one, decoded once.
/// A few are kept, for probers that take turns with different shards.
#[derive(Default)]
pub(super) struct RosterCache {
    recent: Vec<(i64, std::sync::Arc<columns::Roster>)>,
}

impl RosterCache {
    const KEPT: usize = 8;

    pub(super) fn get(&mut self, conn: &Connection, id: i64) -> Result<std::sync::Arc<columns::Roster>, DataError> {
        if let Some(i) = self.recent.iter().position(|(known, _)| *known == id) {
            let entry = self.recent.remove(i);
            let roster = entry.1.clone();
            self.recent.insert(0, entry);
            return Ok(roster);
        }
        let (count, bytes): (i64, Vec<u8>) = conn
            .prepare_cached("SELECT count, roster FROM rosters WHERE id = ?1")?
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let roster = columns::decode_roster(&bytes, usize::try_from(count).unwrap_or(0))
            .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
        let roster = std::sync::Arc::new(roster);
        self.recent.insert(0, (id, roster.clone()));
        self.recent.truncate(Self::KEPT);
        Ok(roster)
    }
}
