//! TLS client configuration and certificate facts for HTTPS checks.
