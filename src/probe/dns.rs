//! DNS checks: ask a site's nameservers for its name, time the answer, compare the addresses.
