//! From results to figures and documents: availability against fault schedules, the latency,
//! cluster, incident and SLA reports, the SLA PDF read back, and the status page. One test
//! binary, so it links once.

#[path = "../fixtures/mod.rs"]
mod fixtures;
#[path = "../schedule/mod.rs"]
mod schedule;

mod availability;
mod availability_properties;
mod browser;
mod clusters_html;
mod latency_report;
mod reports;
mod sla_pdf;
mod status_page;
mod status_rollup;
mod store_copy;
mod vantages;
