//! The SQLite backend.

use std::path::Path;

use super::*;

pub struct SqliteStore;

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        Err(StoreError::Open { path: path.display().to_string(), message: "not implemented".into() })
    }
}

impl Store for SqliteStore {
    fn begin_run<'a>(&'a mut self, _meta: &RunMeta, _sites: &[SiteRecord]) -> StoreResult<Box<dyn RunWriter + 'a>> {
        unimplemented!()
    }
    fn runs(&self, _from_ms: Option<i64>, _to_ms: Option<i64>) -> StoreResult<Vec<StoredRun>> {
        unimplemented!()
    }
    fn results(&self, _filter: &ResultFilter, _each: &mut dyn FnMut(StoredResult) -> StoreResult<()>) -> StoreResult<()> {
        unimplemented!()
    }
    fn run_histograms(&self, _run_id: RunId) -> StoreResult<Vec<HistogramRecord>> {
        unimplemented!()
    }
    fn location(&self) -> String {
        unimplemented!()
    }
}
