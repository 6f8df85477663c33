//! HTTP(S) checks over our own TCP and TLS streams, each phase timed on its own.
