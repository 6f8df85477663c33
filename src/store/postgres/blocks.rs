//! A run's stored columns read back: `runs` rows a page at a time, and the rosters they refer
//! to, decoded once and shared.

use std::sync::Arc;

use postgres::GenericClient;
use postgres::types::ToSql;

use super::DataError;
use crate::probe::Outcome;
use crate::store::RunId;
use crate::store::columns;

/// Runs read per round trip: a run's columns are up to a few hundred kilobytes.
const PAGE: i64 = 16;

/// One run's stored columns.
pub(super) struct Block {
    pub(super) run_id: RunId,
    pub(super) started_at_ms: i64,
    pub(super) roster_id: i64,
    outcomes: Vec<u8>,
    details: Vec<u8>,
}

impl Block {
    pub(super) fn failed(&self, roster: &columns::Roster) -> Result<Vec<(usize, Outcome)>, DataError> {
        columns::failed_rows(&self.outcomes, roster.keys.len())
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
        columns::decode_rows(roster, &self.outcomes, &self.details, range)
            .map_err(|m| DataError::Data(format!("results of run {}: {m}", self.run_id)))
    }
}

/// Calls `each` with the stored columns of every run matching `condition` (on `runs u`, whose
/// parameters are `args`), in run order, until it returns false. Runs are fetched a page at a
/// time; `each` gets the client back for its own reads.
pub(super) fn for_each_block<C: GenericClient>(
    client: &mut C,
    condition: &str,
    args: &[&(dyn ToSql + Sync)],
    each: &mut dyn FnMut(&mut C, Block) -> Result<bool, DataError>,
) -> Result<(), DataError> {
    let n = args.len();
    let sql = format!(
        "SELECT u.id, u.started_at_ms, u.roster_id, u.outcomes, u.details FROM runs u \
         WHERE ({condition}) AND u.roster_id IS NOT NULL AND u.id > ${} ORDER BY u.id LIMIT ${}",
        n + 1,
        n + 2
    );
    let mut after = i64::MIN;
    loop {
        let mut params: Vec<&(dyn ToSql + Sync)> = args.to_vec();
        params.push(&after);
        params.push(&PAGE);
        let rows = client.query(sql.as_str(), &params)?;
        let full = rows.len() as i64 == PAGE;
        for row in rows {
            let block = Block {
                run_id: row.try_get(0)?,
                started_at_ms: row.try_get(1)?,
                roster_id: row.try_get(2)?,
                outcomes: row.try_get(3)?,
                details: row.try_get(4)?,
            };
            after = block.run_id;
            if !each(client, block)? {
                return Ok(());
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Decoded rosters of recent runs by id: runs over an unchanged fleet share one, decoded once.
#[derive(Default)]
pub(super) struct RosterCache {
    recent: Vec<(i64, Arc<columns::Roster>)>,
}

impl RosterCache {
    const KEPT: usize = 8;

    pub(super) fn get(&mut self, client: &mut impl GenericClient, id: i64) -> Result<Arc<columns::Roster>, DataError> {
        if let Some(i) = self.recent.iter().position(|(known, _)| *known == id) {
            let entry = self.recent.remove(i);
            let roster = entry.1.clone();
            self.recent.insert(0, entry);
            return Ok(roster);
        }
        let row = client
            .query_opt("SELECT count, roster FROM rosters WHERE id = $1", &[&id])?
            .ok_or_else(|| DataError::Data(format!("roster {id} is missing")))?;
        let (count, bytes): (i64, Vec<u8>) = (row.try_get(0)?, row.try_get(1)?);
        let roster = columns::decode_roster(&bytes, usize::try_from(count).unwrap_or(0))
            .map_err(|m| DataError::Data(format!("roster {id}: {m}")))?;
        let roster = Arc::new(roster);
        self.recent.insert(0, (id, roster.clone()));
        self.recent.truncate(Self::KEPT);
        Ok(roster)
    }
}
