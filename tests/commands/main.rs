//! The binary's commands driven end to end: validation errors, the run lock, unusable stores,
//! exit codes, and `fleetprobe demo`. One test binary, so it links once.

#[path = "../fixtures/mod.rs"]
mod fixtures;

mod cli;
mod demo;
mod metrics;
mod notify;
mod round_trip;
mod stores;
mod validation;
