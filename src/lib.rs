//! # line-auth
//!
//! Tower middleware that lets an axum or hyper API trust callers from LINE. LIFF web apps and
//! mobile apps send the user's LINE Login access token as `Authorization: Bearer …`;
//! [`LineAuthLayer`] verifies it with LINE and hands your handlers a verified [`LineUser`]
//! before any of them runs.
//!
//! ```
//! use axum::{routing::get, Json, Router};
//! use line_auth::{LineAuthConfig, LineAuthLayer, LineUser};
//!
//! async fn me(user: LineUser) -> Json<LineUser> {
//!     Json(user)
//! }
//!
//! # fn main() -> Result<(), line_auth::ConfigError> {
//! let config = LineAuthConfig::builder().channel_id("1234567890").build()?;
//! let app: Router = Router::new()
//!     .route("/api/me", get(me))
//!     .layer(LineAuthLayer::new(config));
//! # Ok(())
//! # }
//! ```
//!
//! ## What happens to a request
//!
//! 1. **Extract** the bearer token from `Authorization` (RFC 6750 §2.1). No header: 401 with a
//!    bare `Bearer realm="line"` challenge; another scheme: 401; malformed: 400
//!    `invalid_request`. LINE is not asked about any of these.
//! 2. **Cache**: a keyed hash of the token (SipHash-1-3-128 under a per-process random key) is
//!    looked up among verified tokens, synchronously. A hit
//!    re-checks the channel, the scopes and the token's expiry, and goes straight on.
//! 3. **Miss**: LINE's secure login procedure, once per token however many requests carry it:
//!    `GET /oauth2/v2.1/verify`, then `client_id` must be a configured channel, `expires_in`
//!    positive and the required scopes granted, then `GET /v2/profile` for the user ID
//!    (`GET /oauth2/v2.1/userinfo` for a token with `openid` but not `profile`, as LINE MINI
//!    Apps' are).
//! 4. **LINE unreachable** (timeout, connection error, 5xx, 429, an answer out of spec): 503 with
//!    `Retry-After`. The request is refused, and the token is not remembered as bad.
//! 5. **Success**: the [`LineUser`] is inserted as a request extension and the inner service runs.
//!
//! The statuses, challenges and bodies are listed in [`rejection`].
//!
//! ## Caching and revocation
//!
//! A verified token is trusted without asking LINE again until the earlier of its own expiry and
//! [`cache_max_ttl`](LineAuthConfigBuilder::cache_max_ttl) (default 5 minutes). That maximum is
//! the bound on how long a token revoked at LINE (logout, the user unlinking your app) is still
//! accepted here; shorten it for fresher revocation at the price of more calls to LINE.
//!
//! ## Logout
//!
//! [`LineAuthLayer::handle`] gives a [`LineAuthHandle`]: [`LineAuthHandle::logout`] signs a token
//! out (refused here from then on, and revoked at LINE); [`LineAuthHandle::forget`],
//! [`LineAuthHandle::forget_user`] and [`LineAuthHandle::clear`] drop cached verdicts.
//!
//! ## More than the default
//!
//! - [`LineAuthLayer::optional`]: anonymous requests pass, tokens are still verified.
//! - [`LineAuthLayer::id_tokens`] (combinable with `optional`): LINE ID tokens as the bearer credential, verified locally
//!   ([`id_token`]).
//! - [`LineAuthLayer::token_sources`]: a cookie, a custom header or (risky) a query parameter
//!   besides `Authorization` ([`TokenSource`]).
//! - [`LineAuthLayer::with_rejection`]: your own refusal responses.
//! - [`RequireScopesLayer`]: one route demanding more scopes than the rest.
//! - [`LineLoginClient`]: the sign-in side of the token lifecycle ([`login`]).
//! - [`LineAuthHandle::stats`], tracing spans, and the `metrics` feature: what the layer is doing.
//!
//! ## Features
//!
//! - `testing`: `LineUser::builder` and `LineAuthLayer::with_fixed_token`, for handler tests.
//! - `metrics`: counters and a latency histogram through the `metrics` facade.
//! - `redis`: `shared`, one verified-token cache and fleet-wide logout for every replica of a
//!   service, on Redis (`REDIS_URL`).
//!
//! ## Testing against LINE
//!
//! The crate [`line-auth-emulator`](https://docs.rs/line-auth-emulator), as a dev-dependency,
//! serves LINE Login's endpoints on loopback with scriptable faults, so tests never call (or
//! load) the real LINE. Point [`api_base`](LineAuthConfigBuilder::api_base) at it.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cache;
mod client;
mod clock;
mod config;
mod fleet;
mod handle;
pub mod id_token;
mod layer;
mod line_api;
mod log_throttle;
pub mod login;
pub mod rejection;
mod require;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod shared;
mod source;
mod stats;
mod token;
mod user;
mod verify;

pub mod future {
    //! The response futures of [`LineAuth`](crate::LineAuth) and
    //! [`RequireScopes`](crate::RequireScopes).
    pub use crate::layer::ResponseFuture;
    pub use crate::require::RequireScopesFuture;
}

// Compiled for tests too, so CI keeps the fuzz entry points building and exercised.
#[cfg(any(fuzzing, test))]
#[doc(hidden)]
pub mod fuzzing;

pub use config::{ConfigError, LineAuthConfig, LineAuthConfigBuilder};
pub use handle::LineAuthHandle;
pub use layer::{LineAuth, LineAuthLayer};
pub use login::LineLoginClient;
pub use rejection::LineAuthError;
pub use require::{RequireScopes, RequireScopesLayer};
pub use source::{TokenSource, VerifiedToken};
pub use stats::{Rejections, Stats, UpstreamLatency};
pub use token::{bearer_token, MAX_TOKEN_LEN};
pub use user::LineUser;
#[cfg(feature = "testing")]
pub use user::LineUserBuilder;
