//! Integration tests over real HTTP on loopback, against the LINE emulator.

mod cache;
mod coalescing;
mod cors;
mod extraction;
mod fleet;
mod hostile;
mod id_tokens;
mod logging;
mod login;
mod logout;
mod modes;
mod outage;
#[path = "../common/redis_server.rs"]
mod redis_server;
mod resilience;
mod revocation;
mod scopes;
mod support;
mod transport;
mod verification;
mod web_login;
