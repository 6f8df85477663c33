//! `fleetprobe store copy FROM TO`: a whole store moved to another backend or place (an SQLite
//! file into PostgreSQL when a fleet outgrows one prober, or back). Rows go through the
//! [`Store`](crate::store::Store) trait as they are stored: encoded results and histograms are
//! never decoded, so both stores give the same reports.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Error, Result};
use crate::fleet::StoreLocation;
use crate::store::{self, RawRecord};

/// What a copy moved, by kind of row, for the summary line.
pub struct CopyReport {
    pub rows: BTreeMap<&'static str, u64>,
}

/// Copies every row of the store at `from` into the new, empty store at `to`, in one transaction
/// on the receiving side: a failed copy leaves `to` as it was.
pub fn copy(from: &str, to: &str) -> Result<CopyReport> {
    let parse = |what: &str, text: &str| {
        StoreLocation::parse(text, Path::new("")).map_err(|e| Error::config(format!("{what}: {e}")))
    };
    let (from, to) = (parse("FROM", from)?, parse("TO", to)?);
    if from == to {
        return Err(Error::config("FROM and TO are the same store"));
    }
    if let StoreLocation::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(Error::store(format!("store {} does not exist", path.display())));
    }
    let source = store::open(&from)?;
    let mut target = store::open(&to)?;
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut importer = target.import()?;
    source.export(&mut |record| {
        let kind = match &record {
            RawRecord::Site { .. } => "sites",
            RawRecord::Roster { .. } => "rosters",
            RawRecord::Run { .. } => "runs",
            RawRecord::Detail { .. } => "result details",
            RawRecord::Histogram { .. } => "run histograms",
            RawRecord::Cert { .. } => "certificate dates",
            RawRecord::Rollup { .. } => "hour and day histograms",
            RawRecord::SiteDay { .. } => "site day histograms",
            RawRecord::Pending { .. } => "pending rollups",
            RawRecord::IncidentUpdate(_) => "incident updates",
            RawRecord::Notification(_) => "notifications",
            RawRecord::NotificationCount { .. } => "notification counts",
            RawRecord::ClusterDay(_) => "cluster days",
        };
        *rows.entry(kind).or_default() += 1;
        importer.add(record)
    })?;
    importer.finish()?;
    Ok(CopyReport { rows })
}
