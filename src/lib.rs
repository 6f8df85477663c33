//! fleetprobe: an uptime prober and SLA reporter for hosting fleets.
//!
//! The modules follow the data flow, one way: `fleet` (configuration and inventory) → `probe`
//! (checks and the sweep) → `store` (runs, results, histograms) → `analysis` (outages,
//! incidents, availability, latency percentiles) → `report`. `servers` holds the loopback HTTP and DNS servers that
//! the demo and the tests probe; `cli` wires the commands together.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod demo;
pub mod fleet;
pub mod probe;
pub mod report;
pub mod servers;
pub mod store;
