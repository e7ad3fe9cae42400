//! [`RequireScopesLayer`]: a per-route scope requirement on top of [`LineAuthLayer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::rejection::LineAuthError;
use crate::user::LineUser;

/// Requires scopes beyond the auth layer's. A request without a verified user gets 401, one
/// whose token lacks a scope 403 `insufficient_scope`. Behind a layer verifying access tokens,
/// `email` is never found: LINE does not list it in an access token's scope (require it of ID
/// tokens).
///
/// The auth layer checks what every route needs; a route that needs more (say `openid`, where
/// the others need only `profile`) adds this layer inside it. It reads the verified
/// [`LineUser`] the auth layer inserted, so it costs a scope comparison and never calls LINE.
///
/// ```
/// use axum::{routing::get, Router};
/// use line_auth::{LineAuthConfig, LineAuthLayer, LineUser, RequireScopesLayer};
///
/// # fn main() -> Result<(), line_auth::ConfigError> {
/// let config = LineAuthConfig::builder().channel_id("1234567890").build()?;
/// let app: Router = Router::new()
///     .route(
///         "/api/id",
///         get(|user: LineUser| async move { user.user_id().to_owned() })
///             .route_layer(RequireScopesLayer::new(["openid"])),
///     )
///     .route("/api/me", get(|user: LineUser| async move { user.display_name().unwrap_or_default().to_owned() }))
///     .route_layer(LineAuthLayer::new(config));
/// # Ok(())
/// # }
/// ```
///
/// [`LineAuthLayer`]: crate::LineAuthLayer
#[derive(Debug, Clone)]
pub struct RequireScopesLayer {
    scopes: Arc<[Box<str>]>,
    /// Space-separated, for the challenge's `scope` attribute.
    scope_list: Arc<str>,
}

impl RequireScopesLayer {
    /// Requires every one of `scopes`.
    ///
    /// # Panics
    ///
    /// If a scope is not an RFC 6750 scope-token (empty, or with a space, a quote, a backslash
    /// or a control character): it could not be named in the refusal's challenge. Scopes read
    /// from configuration go through [`try_new`](Self::try_new) instead.
    pub fn new<I>(scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        match Self::try_new(scopes) {
            Ok(layer) => layer,
            Err(error) => panic!("RequireScopesLayer::new: {error}, not an RFC 6750 scope-token"),
        }
    }

    /// Requires every one of `scopes`, or says which is not an RFC 6750 scope-token.
    ///
    /// ```
    /// use line_auth::{ConfigError, RequireScopesLayer};
    ///
    /// assert!(RequireScopesLayer::try_new(["openid"]).is_ok());
    /// assert_eq!(
    ///     RequireScopesLayer::try_new(["open id"]).unwrap_err(),
    ///     ConfigError::InvalidScope("open id".into())
    /// );
    /// ```
    pub fn try_new<I>(scopes: I) -> Result<Self, crate::ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let scopes: Arc<[Box<str>]> = scopes
            .into_iter()
            .map(|scope| {
                let scope = scope.into();
                if crate::config::is_scope_token(&scope) {
                    Ok(scope.into_boxed_str())
                } else {
                    Err(crate::ConfigError::InvalidScope(scope))
                }
            })
            .collect::<Result<_, _>>()?;
        let scope_list = scopes.join(" ").into();
        Ok(Self { scopes, scope_list })
    }
}

impl<S> Layer<S> for RequireScopesLayer {
    type Service = RequireScopes<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes {
            inner,
            requirement: self.clone(),
        }
    }
}

/// Middleware built by [`RequireScopesLayer`].
#[derive(Debug, Clone)]
pub struct RequireScopes<S> {
    inner: S,
    requirement: RequireScopesLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequireScopesFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let refusal = match request.extensions().get::<LineUser>() {
            None => Some(LineAuthError::MissingToken),
            Some(user)
                if !self
                    .requirement
                    .scopes
                    .iter()
                    .all(|scope| user.has_scope(scope)) =>
            {
                Some(LineAuthError::InsufficientScope {
                    required: Arc::clone(&self.requirement.scope_list),
                })
            }
            Some(_) => None,
        };
        match refusal {
            Some(error) => RequireScopesFuture {
                state: Outcome::Refused {
                    response: Some(error.into_marked_response()),
                },
            },
            None => RequireScopesFuture {
                state: Outcome::Called {
                    future: self.inner.call(request),
                },
            },
        }
    }
}

pin_project! {
    /// Response future of [`RequireScopes`].
    pub struct RequireScopesFuture<F, B> {
        #[pin]
        state: Outcome<F, B>,
    }
}

pin_project! {
    #[project = OutcomeProj]
    enum Outcome<F, B> {
        Called {
            #[pin]
            future: F,
        },
        Refused {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for RequireScopesFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            OutcomeProj::Called { future } => future.poll(cx),
            OutcomeProj::Refused { response } => {
                Poll::Ready(Ok(response.take().expect("future polled after completion")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tests::NeverReady;
    use std::task::Waker;

    /// A scope goes into the challenge's quoted `scope` attribute: one that is not an RFC 6750
    /// scope-token (a quote, a backslash, a space, a control character, nothing) would break it,
    /// or leave the 403 without its `WWW-Authenticate`. Caught where the layer is built, as
    /// tower-http's bearer layer catches a token that is no header value.
    #[test]
    fn a_scope_that_is_no_scope_token_is_refused_when_the_layer_is_built() {
        for bad in ["", "a\"b", "a\\b", "two words", "tab\there", "nul\0"] {
            let built = std::panic::catch_unwind(|| RequireScopesLayer::new([bad]));
            let message = built.expect_err(bad);
            let message = message
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| message.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            assert!(message.contains("scope-token"), "{bad:?}: {message}");
        }
        let _ = RequireScopesLayer::new(["openid", "chat_message.write", "a!#[]~"]);
    }

    /// As tower-http's futures: a second poll is the caller's bug, not a request to answer.
    #[test]
    #[should_panic(expected = "future polled after completion")]
    fn a_refusal_polled_after_completion_panics_rather_than_invent_an_answer() {
        use axum_core::body::Body;
        let inner = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        });
        let mut service = RequireScopesLayer::new(["openid"]).layer(inner);
        let mut future = std::pin::pin!(service.call(Request::new(Body::empty())));
        let mut context = Context::from_waker(Waker::noop());
        match future.as_mut().poll(&mut context) {
            Poll::Ready(Ok(response)) => assert_eq!(response.status(), 401),
            _ => panic!("a request without a LineUser is refused at once"),
        }
        let _ = future.as_mut().poll(&mut context);
    }

    #[test]
    fn it_is_ready_only_when_the_service_it_wraps_is() {
        let mut service = RequireScopesLayer::new(["openid"]).layer(NeverReady);
        let mut context = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut context).is_pending());
    }
}
