//! Helpers of the end-to-end suite: the generated fleet and its fault truth, nginx and NSD as
//! child processes, nftables drops, a minimal DNS client, and the binary under test.

pub mod dns;
pub mod fleet;
pub mod fleetprobe;
pub mod nft;
pub mod nginx;
pub mod nsd;
pub mod observe;
pub mod process;
