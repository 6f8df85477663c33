//! The sweep: every check of the fleet, once, under concurrency limits and spread over a window.
