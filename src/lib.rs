//! fleetprobe: an uptime prober and SLA reporter for hosting fleets.
//!
//! The modules follow the data flow, one way, each importing only from those before it: `fleet`
//! (configuration and inventory) → `probe` (checks and the sweep) → `store` (runs, results,
//! histograms; SQLite or PostgreSQL) → `analysis` (outages, the verdict of several vantages,
//! incidents, availability, SLA, latency percentiles) → `report` (one model per report and its
//! renderers) → `app` (the use cases the commands share) → `cli` and `demo`. `servers` holds the
//! loopback HTTP, DNS and TCP servers that the demo and the tests probe.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod demo;
pub mod fleet;
pub mod probe;
pub mod report;
pub mod servers;
pub mod store;
