//! Loopback servers that the demo and the tests probe: HTTP virtual hosts and an authoritative
//! DNS server, each able to misbehave in the ways real fleets do.
pub mod pki;
