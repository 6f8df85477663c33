//! Analysis: what the stored results mean. Fourth stage of the data flow, between the store
//! and the reports. Everything here is pure: no database, clock or file inside; callers pass in
//! what was read and the period it covers.

pub mod latency;
