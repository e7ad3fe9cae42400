//! Integration tests over real HTTP on loopback, against the LINE emulator.
//!
//! `cargo test` runs them all but the test kit's (feature `testing`), the shared cache's
//! (feature `redis`, which also needs `redis-server` installed) and the `metrics` feature's;
//! `cargo test --all-features` runs everything.

mod cache;
#[cfg(feature = "redis")]
#[path = "../common/chaos.rs"]
mod chaos;
// Needs redis-server and redis-cli, and the `redis` feature.
#[cfg(feature = "redis")]
mod cluster;
mod coalescing;
mod cors;
mod examples;
mod extraction;
// Needs redis-server, and the `redis` feature for the shared cache.
#[cfg(feature = "redis")]
mod fleet;
mod hostile;
mod id_tokens;
mod logging;
mod login;
mod logout;
// The `metrics` feature's counters and histogram.
#[cfg(feature = "metrics")]
mod metric_export;
mod mini_app;
mod modes;
mod outage;
#[cfg(feature = "redis")]
#[path = "../common/redis_cluster.rs"]
mod redis_cluster;
#[cfg(feature = "redis")]
#[path = "../common/redis_server.rs"]
mod redis_server;
mod resilience;
mod revocation;
mod scopes;
mod support;
mod transport;
mod verification;
mod web_login;
