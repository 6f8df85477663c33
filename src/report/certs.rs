//! `fleetprobe report certs`: the sites whose certificate expires soon, soonest first, from the
//! latest certificate dates the checks recorded.

use std::io::Write;

use serde::Serialize;

use super::render::{Render, write_json};
use super::table::{Align, Table};
use crate::fleet::{Fleet, SiteIdx};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertRow {
    pub site: String,
    pub hostname: String,
    pub customer: String,
    pub cluster: String,
    /// RFC 3339, UTC.
    pub expires: String,
    /// Whole days from now to the expiry; negative once expired.
    pub days_left: i64,
    /// Who issued the certificate ("R11 (Let's Encrypt)"), as the latest check saw it.
    pub issuer: Option<String>,
}

#[derive(Serialize)]
#[serde(transparent)]
pub struct CertList {
    pub rows: Vec<CertRow>,
    #[serde(skip)]
    pub within_days: i64,
}

/// The sites of `expiring` (site, expiry in Unix seconds, issuer), soonest first, as of `now_ms`.
pub fn build(fleet: &Fleet, expiring: &[(SiteIdx, i64, Option<String>)], now_ms: i64, within_days: i64) -> CertList {
    let rows = expiring
        .iter()
        .map(|(s, not_after, issuer)| {
            let (s, not_after) = (*s, *not_after);
            let site = &fleet.sites[s];
            CertRow {
                site: site.id.clone(),
                hostname: site.hostname.clone(),
                customer: fleet.customers[site.customer].id.clone(),
                cluster: fleet.clusters[site.cluster].name.clone(),
                expires: super::notify::time(not_after * 1000),
                days_left: (not_after * 1000 - now_ms).div_euclid(86_400_000),
                issuer: issuer.clone(),
            }
        })
        .collect();
    CertList { rows, within_days }
}

impl CertList {
    fn rows_table(&self) -> Table {
        let mut table = Table::new(&[
            ("site", Align::Left),
            ("hostname", Align::Left),
            ("customer", Align::Left),
            ("cluster", Align::Left),
            ("expires", Align::Left),
            ("days_left", Align::Right),
            ("issuer", Align::Left),
        ]);
        for r in &self.rows {
            table.push(vec![
                r.site.clone(),
                r.hostname.clone(),
                r.customer.clone(),
                r.cluster.clone(),
                r.expires.clone(),
                r.days_left.to_string(),
                r.issuer.clone().unwrap_or_default(),
            ]);
        }
        table
    }
}

impl Render for CertList {
    fn table(&self) -> Table {
        self.rows_table()
    }
    fn text(&self) -> String {
        if self.rows.is_empty() {
            format!("no certificate expires within {} days\n", self.within_days)
        } else {
            self.table().text(60)
        }
    }
    fn json(&self, out: &mut dyn Write) -> std::io::Result<()> {
        write_json(out, &self.rows)
    }
}
