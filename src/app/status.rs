//! `fleetprobe report status`: analyses the days the public status page shows and writes
//! `index.html` and `feed.atom`.

use std::path::{Path, PathBuf};

use super::{Error, Result};
use crate::analysis::period::LOOKBACK_MS;
use crate::fleet::Fleet;
use crate::report::status::{atom, build, html, window};
use crate::store::Store;

/// Analyzes the last `days` UTC days up to `now_ms` and writes `index.html` and `feed.atom` into
/// `dir` (created if missing). Returns the path of `index.html`. The demo calls this too.
pub fn write(fleet: &Fleet, store: &dyn Store, dir: &Path, now_ms: i64, days: u32) -> Result<PathBuf> {
    let days = days.max(1);
    let span = window(now_ms, days);
    let analysis = super::analyze::analyze(fleet, store, span.start, span.end, now_ms)?;
    let updates = store.incident_updates(Some(span.start - LOOKBACK_MS), Some(now_ms.saturating_add(1)))?;
    let page = build(fleet, &analysis, &updates, now_ms, days);
    let write_error = |path: &Path, e: std::io::Error| Error::internal(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    for (name, content) in [("index.html", html(&page)), ("feed.atom", atom(&page))] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| write_error(&path, e))?;
    }
    Ok(dir.join("index.html"))
}
