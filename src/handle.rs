//! [`LineAuthHandle`]: a handle on a layer's caches, for logout and invalidation.

use std::fmt;
use std::sync::Arc;

use crate::rejection::LineAuthError;
use crate::verify::Verifier;

/// A handle on one [`LineAuthLayer`](crate::LineAuthLayer)'s caches: forget a token, every token
/// of a user, or everything; sign a user out at LINE and here in one call.
///
#[cfg_attr(
    feature = "redis",
    doc = "With a shared cache (feature `redis`, see [`shared`](crate::shared)) every one of these acts"
)]
#[cfg_attr(
    not(feature = "redis"),
    doc = "With a shared cache (feature `redis`) every one of these acts"
)]
/// fleet-wide: the shared entries are deleted and every replica drops its in-process copy.
///
/// Get it with [`LineAuthLayer::handle`](crate::LineAuthLayer::handle) and give it to handlers as
/// axum state (`State<LineAuthHandle>`, or a field of your state with `FromRef`) or as an
/// `Extension`. Cloning is cheap; every clone acts on the same caches.
///
/// ```
/// use axum::{extract::State, http::StatusCode, routing::post, Router};
/// use line_auth::{LineAuthHandle, LineAuthConfig, LineAuthError, LineAuthLayer, VerifiedToken};
///
/// async fn logout(
///     State(auth): State<LineAuthHandle>,
///     token: VerifiedToken,
/// ) -> Result<StatusCode, LineAuthError> {
///     auth.logout(token.as_str()).await?;
///     Ok(StatusCode::NO_CONTENT)
/// }
///
/// # fn main() -> Result<(), line_auth::ConfigError> {
/// let layer = LineAuthLayer::new(LineAuthConfig::builder().channel_id("1234567890").build()?);
/// let app: Router = Router::new()
///     .route("/api/logout", post(logout))
///     .route_layer(layer.clone())
///     .with_state(layer.handle());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LineAuthHandle {
    verifier: Arc<Verifier>,
}

impl fmt::Debug for LineAuthHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineAuthHandle").finish_non_exhaustive()
    }
}

impl LineAuthHandle {
    pub(crate) fn new(verifier: Arc<Verifier>) -> Self {
        Self { verifier }
    }

    /// Forgets `token`: its next request is verified with LINE again. A verification of it
    /// already under way does not put it back.
    pub fn forget(&self, token: &str) {
        self.verifier.forget(token);
    }

    /// Forgets every cached token of `user_id` (a scan of the cache), e.g. when LINE tells you
    /// the user unlinked your app.
    pub fn forget_user(&self, user_id: &str) {
        self.verifier.forget_user(user_id);
    }

    /// What the layer has been doing: cache hits, misses, coalesced waits, verifications by
    /// outcome, refusals by reason, and the caches' sizes. Cheap: counters are per-thread and
    /// summed here.
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use line_auth::{LineAuthConfig, LineAuthLayer};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = LineAuthLayer::new(LineAuthConfig::builder().channel_id("1234567890").build()?);
    /// let auth = layer.handle();
    /// let app = Router::new().route("/", get(|| async { "ok" })).layer(layer);
    ///
    /// app.oneshot(Request::get("/").body(Body::empty())?).await?; // no token: refused
    ///
    /// let stats = auth.stats();
    /// assert_eq!(stats.rejections.missing_token, 1);
    /// assert_eq!(stats.cache_hits, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.verifier.stats()
    }

    /// Forgets every verified and every refused token. Sign-outs ([`logout`](Self::logout))
    /// stay in force.
    pub fn clear(&self) {
        self.verifier.clear();
    }

    /// Signs the token out. From this call on the token is refused here, and on every replica
    /// sharing a cache once the message arrives, until it expires (at least the cache's maximum
    /// TTL; 30 days, LINE's access-token lifetime, when its expiry is not known here), whatever
    /// LINE answers and whenever it answers.
    ///
    /// Then it is revoked at LINE (`POST /oauth2/v2.1/revoke`, with the channel secret if
    /// configured) in a task of its own, which runs to completion even if this future is dropped.
    /// The result says whether LINE revoked it: LINE's error saying the token is already invalid
    /// (expired, revoked, unknown; or a bare `invalid_request`, which LINE's SDK reads so) is
    /// success; `invalid_client` (the channel secret missing or wrong), any other error, or LINE
    /// being unreachable is an error (503 as a response, with LINE's `Retry-After` only where LINE
    /// sent one, as with a 429), and the token may stay valid at LINE, though refused here. The
    /// caller cannot try again through the layer, which refuses the token from now on, so a revoke
    /// LINE failed (a 5xx, a 429, no answer) is retried in the background
    /// ([`UpstreamError::RevokeRetrying`](crate::rejection::UpstreamError::RevokeRetrying)): waits
    /// doubling from 1 s to 5 minutes, never shorter than LINE's `Retry-After`, for up to an hour
    /// and no longer than the token is refused here, for at most 1,000 tokens at once per layer.
    /// Those retries live in the Tokio runtime: shutting it down drops them. ID tokens cannot be
    /// revoked at LINE: on an [`id_tokens`](crate::LineAuthLayer::id_tokens) layer the refusal is
    /// the whole of it.
    pub async fn logout(&self, token: &str) -> Result<(), LineAuthError> {
        self.verifier.logout(token).await
    }
}

#[cfg(test)]
mod tests {
    use crate::{LineAuthConfig, LineAuthLayer};

    #[test]
    fn its_debug_names_the_type_and_shows_nothing_else() {
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .build()
            .unwrap();
        let handle = LineAuthLayer::new(config).handle();
        assert_eq!(format!("{handle:?}"), "LineAuthHandle { .. }");
    }
}
