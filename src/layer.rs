//! [`LineAuthLayer`]: verifies the bearer token of every request before the inner service runs.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT_RANGES, CACHE_CONTROL, ETAG, LAST_MODIFIED, RETRY_AFTER,
    TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::config::LineAuthConfig;
use crate::rejection::{LineAuthError, RefusedInside};
use crate::source::{Place, TokenSource, TokenSources, VerifiedToken};
use crate::token::{validate_token, Credentials};
use crate::verify::{Credential, Decision, PendingVerdict, Verifier};

/// What to do with a request that carries no bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anonymous {
    Reject,
    PassThrough,
}

/// Layer that verifies LINE access tokens before the inner service runs.
///
/// Clones share one cache and one HTTP client, so build it once and clone it freely.
///
/// # Example
///
/// ```
/// use axum::{routing::get, Router};
/// use line_auth_emulator::{IssueToken, LineEmulator};
/// use line_auth::{LineAuthConfig, LineAuthLayer, LineUser};
/// use tower::ServiceExt;
///
/// async fn me(user: LineUser) -> String {
///     user.display_name().unwrap_or_default().to_owned()
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A local stand-in for LINE; in production, leave `api_base` at its default.
/// let line = LineEmulator::start().await?;
/// let token = line.issue(IssueToken::new("1234567890").display_name("Brown"));
///
/// let config = LineAuthConfig::builder()
///     .channel_id("1234567890")
///     .api_base(line.base_url())
///     .build()?;
/// let app = Router::new()
///     .route("/api/me", get(me))
///     .layer(LineAuthLayer::new(config));
///
/// let request = http::Request::get("/api/me")
///     .header("authorization", format!("Bearer {token}"))
///     .body(axum::body::Body::empty())?;
/// let response = app.clone().oneshot(request).await?;
/// assert_eq!(response.status(), 200);
///
/// // No token: 401 with an RFC 6750 challenge, and the handler never runs.
/// let request = http::Request::get("/api/me").body(axum::body::Body::empty())?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 401);
/// assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="line""#);
/// # Ok(())
/// # }
/// ```
///
/// # Response bodies
///
/// The layer wraps any `tower::Service<http::Request<B>>` that is `Clone` and whose response is
/// `http::Response<R>` with `R: From<bytes::Bytes>`, so it can write its own JSON error bodies.
/// axum's `Body` and `http_body_util::Full<Bytes>` qualify.
///
/// # Readiness
///
/// As in tower-http's `AsyncRequireAuthorization`, a request whose token is being verified keeps
/// the inner service it was made ready for until LINE answers (up to `upstream_timeout`). Put a
/// concurrency limit (`tower::limit::ConcurrencyLimitLayer`, a `Buffer`) outside this layer,
/// not inside it: inside, slow verifications would hold its slots and hold up cached tokens too.
#[derive(Clone)]
pub struct LineAuthLayer {
    /// What every service this layer wraps shares, built here once: axum applies a layer given
    /// to `Router::layer` or `route_layer` to a router not yet given its state (`oneshot` in
    /// tests, a router called directly) for every request, so [`layer`](Layer::layer) must be
    /// no more than a reference count. Only one `Arc`: axum also clones the layer itself for
    /// each such request, and every `Arc` in it is an atomic increment and decrement.
    state: Arc<LayerState>,
}

/// A user-supplied answer to a refused request; see [`LineAuthLayer::with_rejection`].
type RejectionHandler = Arc<dyn Fn(&LineAuthError) -> Response<Bytes> + Send + Sync>;

/// The response for a refused request: the custom handler's, or the RFC 6750 default.
fn refusal<B: From<Bytes>>(
    error: &LineAuthError,
    handler: Option<&RejectionHandler>,
) -> Response<B> {
    match handler {
        Some(handler) => handler(error).map(B::from),
        None => error.to_response(),
    }
}

/// The refusal `response` is, if it is one made inside the layer (`RequireScopesLayer`, an
/// extractor, a handler returning the error) with the error's own status: a handler that set
/// another status answered for itself.
fn refused_inside<B>(response: &Response<B>) -> Option<&LineAuthError> {
    let RefusedInside(error) = response.extensions().get()?;
    (response.status() == error.status()).then_some(error)
}

/// [`refused_inside`], taken out of the response to be answered again.
fn take_inner_refusal<B>(response: &mut Response<B>) -> Option<LineAuthError> {
    let RefusedInside(error) = response.extensions_mut().remove()?;
    (response.status() == error.status()).then_some(error)
}

/// The custom answer to a refusal made inside, with the headers set on its way out (CORS, a
/// cleared cookie) that the custom answer does not set itself, but for those that described the
/// default answer: its body (a compression layer inside encodes it), its challenge and its wait.
fn answer_again<B: From<Bytes>>(
    inner: &Response<B>,
    error: &LineAuthError,
    handler: &RejectionHandler,
) -> Response<B> {
    let mut answer: Response<B> = refusal(error, Some(handler));
    let own: Vec<HeaderName> = answer.headers().keys().cloned().collect();
    for (name, value) in inner.headers() {
        if !described_the_default(name) && !own.contains(name) {
            answer.headers_mut().append(name.clone(), value.clone());
        }
    }
    answer
}

/// Whether a header of a refusal made inside described that answer, not the exchange.
fn described_the_default(name: &HeaderName) -> bool {
    name.as_str().starts_with("content-")
        || [
            ETAG,
            LAST_MODIFIED,
            ACCEPT_RANGES,
            TRANSFER_ENCODING,
            RETRY_AFTER,
            WWW_AUTHENTICATE,
        ]
        .contains(name)
}

impl std::fmt::Debug for LineAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineAuthLayer")
            .field("anonymous", &self.state.anonymous)
            .field("custom_rejection", &self.state.rejection.is_some())
            .finish_non_exhaustive()
    }
}

impl LineAuthLayer {
    /// Every request must carry a valid LINE Login access token; anything else is refused
    /// before the inner service. [`optional`](Self::optional) and [`id_tokens`](Self::id_tokens)
    /// change that, alone or together.
    pub fn new(config: LineAuthConfig) -> Self {
        let verifier = Verifier::numbered(&config, Credential::AccessToken);
        Self {
            state: Arc::new(LayerState {
                config: Arc::new(config),
                verifier,
                anonymous: Anonymous::Reject,
                rejection: None,
                sources: TokenSources::default(),
            }),
        }
    }

    /// Takes LINE **ID tokens** as the bearer credential instead of access tokens (a LIFF app's
    /// `liff.getIDToken()`, a native app's ID token), verified locally with no call to LINE per
    /// token: ES256 against LINE's published keys, or HS256 with the channel secret where
    /// [`hs256_id_tokens`](crate::LineAuthConfigBuilder::hs256_id_tokens) opts in
    /// (see [`id_token`](crate::id_token)). Verified tokens are cached and coalesced like access
    /// tokens; handlers get the same [`LineUser`](crate::LineUser), with scopes inferred from the
    /// claims (`openid`, plus `profile` when the token has a name): configure
    /// `required_scopes(["openid"])` for ID tokens issued without `profile`. An ID token is
    /// served until its `exp` and refused from then on, as an access token is: the layer does
    /// not extend it by the [`ID_TOKEN_LEEWAY`](crate::id_token::ID_TOKEN_LEEWAY) that
    /// [`IdTokenVerifier::verify`](crate::id_token::IdTokenVerifier::verify) allows for the
    /// clock skew of a token just received, since a verdict it caches never outlives the token.
    ///
    /// Call it right after [`new`](Self::new): it starts the layer's caches afresh, so a
    /// [`handle`](Self::handle) or a fixed token (test kit, `with_fixed_token`) from before
    /// belongs to the access-token layer it replaces.
    ///
    /// ```
    /// use line_auth::{LineAuthConfig, LineAuthLayer};
    ///
    /// # fn main() -> Result<(), line_auth::ConfigError> {
    /// let config = LineAuthConfig::builder()
    ///     .channel_id("1234567890")
    ///     .required_scopes(["openid"])
    ///     .build()?;
    /// // ID tokens where present; requests without one reach the handler as anonymous.
    /// let layer = LineAuthLayer::new(config).id_tokens().optional();
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn id_tokens(mut self) -> Self {
        let verifier = Verifier::numbered(&self.state.config, Credential::IdToken);
        Arc::make_mut(&mut self.state).verifier = verifier;
        self
    }

    /// Answers refused requests with your own response instead of the RFC 6750 default (which
    /// [`LineAuthError::to_response`] builds, should you want to start from it). The handler
    /// sees why the request was refused; it runs for every refusal, including 503s, and for
    /// those decided inside the layer: a route's [`RequireScopesLayer`](crate::RequireScopesLayer),
    /// the [`LineUser`](crate::LineUser) and [`VerifiedToken`] extractors, and a handler
    /// returning a [`LineAuthError`] (with the error's own status: one that sets another keeps
    /// its answer). Such a refusal's headers (CORS, a cleared cookie) are kept where your
    /// response does not set them, but for those that described the default answer
    /// (`Content-*`, `ETag`, `Last-Modified`, `Accept-Ranges`, `Transfer-Encoding`,
    /// `Retry-After`, `WWW-Authenticate`).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::{Response, StatusCode};
    /// use line_auth::{LineAuthConfig, LineAuthLayer};
    ///
    /// # fn main() -> Result<(), line_auth::ConfigError> {
    /// let config = LineAuthConfig::builder().channel_id("1234567890").build()?;
    /// let layer = LineAuthLayer::new(config).with_rejection(|error| {
    ///     let mut response: Response<Bytes> = error.to_response();
    ///     let body = serde_json::json!({ "message": error.to_string() });
    ///     *response.body_mut() = Bytes::from(body.to_string());
    ///     response
    /// });
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_rejection<F>(mut self, handler: F) -> Self
    where
        F: Fn(&LineAuthError) -> Response<Bytes> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.state).rejection = Some(Arc::new(handler));
        self
    }

    /// Where to look for the token, in order (default: `Authorization: Bearer` only). Opt into a
    /// cookie or a custom header for pages whose backend hands the token over that way; a query
    /// parameter only knowing that URLs leak into logs (see [`TokenSource`]). A request with a
    /// token in both `Authorization` and the query is refused (400).
    ///
    /// ```
    /// use line_auth::{LineAuthConfig, LineAuthLayer, TokenSource};
    ///
    /// # fn main() -> Result<(), line_auth::ConfigError> {
    /// let config = LineAuthConfig::builder().channel_id("1234567890").build()?;
    /// let layer = LineAuthLayer::new(config).token_sources([
    ///     TokenSource::AuthorizationHeader,
    ///     TokenSource::Cookie("line_token".into()),
    /// ]);
    /// # let _ = layer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn token_sources(mut self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        let state = Arc::make_mut(&mut self.state);
        state.sources = state.sources.reading(sources);
        self
    }

    /// Origins (`scheme://host[:port]`, as browsers send them in `Origin`) trusted to send
    /// state-changing requests (POST, PUT, PATCH, DELETE) authenticated by a
    /// [`TokenSource::Cookie`], besides this site itself.
    ///
    /// This is the layer's CSRF defence for cookies: such a request is accepted only when the
    /// browser says it comes from this site (`Sec-Fetch-Site: same-origin`, or `none` for one the
    /// user made directly; from a browser sending no `Sec-Fetch-Site`, an `Origin` naming the
    /// request's own `Host`) or its `Origin` is one of these; any other gets 403
    /// `cross_site_request`, before LINE is asked. Tokens in headers need no such check:
    /// browsers never add them to cross-site requests by themselves.
    pub fn trusted_origins<I>(mut self, origins: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let state = Arc::make_mut(&mut self.state);
        state.sources = state.sources.trusting(origins.into_iter().map(Into::into));
        self
    }

    /// A handle on this layer's caches (shared by all its clones), for logout and invalidation.
    /// With a shared cache, the layer starts listening to the fleet here, if it has not yet.
    pub fn handle(&self) -> crate::LineAuthHandle {
        self.state.verifier.start_sharing();
        crate::LineAuthHandle::new(Arc::clone(&self.state.verifier))
    }

    /// Requests without a bearer token pass through with no [`LineUser`](crate::LineUser); a
    /// token that is present is still verified, and refused if bad. Handlers take
    /// `Option<LineUser>`.
    pub fn optional(mut self) -> Self {
        Arc::make_mut(&mut self.state).anonymous = Anonymous::PassThrough;
        self
    }
}

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
impl LineAuthLayer {
    /// Test kit (feature `testing`): accepts `token` as `user` without asking LINE, until the
    /// user's [`expires_at`](crate::LineUser::expires_at), in the spirit of Spring's
    /// `opaqueToken()`. The layer's channel and scope checks still apply. The token is never sent
    /// to LINE: when its cache entry goes (the cache's capacity, `forget`, `clear`), its next
    /// request finds it here again, and [`logout`](crate::LineAuthHandle::logout) signs it out
    /// here alone (no revoke at LINE, nor a word to a shared cache), refusing it from then on.
    /// For handler tests without HTTP and without Redis; never enable `testing` in production
    /// builds.
    ///
    /// # Panics
    ///
    /// If `token` is empty, or not an RFC 6750 b64token within
    /// [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) bytes: a request carrying it would be refused as
    /// malformed, and the cache must hold only tokens that pass that check (a hit skips it).
    ///
    /// ```
    /// use axum::{body::Body, http::Request, routing::get, Router};
    /// use line_auth::{LineAuthConfig, LineAuthLayer, LineUser};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let user = LineUser::builder("U4af4980629aabbccddeeff0011223344", "1234567890")
    ///     .display_name("Brown")
    ///     .build();
    /// let config = LineAuthConfig::builder().channel_id("1234567890").build()?;
    /// let layer = LineAuthLayer::new(config).with_fixed_token("test-token", user);
    /// let app = Router::new()
    ///     .route("/me", get(|user: LineUser| async move { user.display_name().unwrap_or_default().to_owned() }))
    ///     .layer(layer);
    ///
    /// let request = Request::get("/me").header("authorization", "Bearer test-token").body(Body::empty())?;
    /// assert_eq!(app.oneshot(request).await?.status(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_fixed_token(self, token: &str, user: crate::LineUser) -> Self {
        // The message leaves the token out, as every message does.
        validate_token(token.as_bytes()).expect(
            "with_fixed_token: not a token a request could carry (a b64token within MAX_TOKEN_LEN)",
        );
        self.state.verifier.accept_fixed_token(token, user);
        self
    }
}

impl<S> Layer<S> for LineAuthLayer {
    type Service = LineAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // With a shared cache, the fleet is heard from the moment the layer wraps a service
        // (normally inside the runtime), not only from the first verification.
        self.state.verifier.start_sharing();
        self.state.verifier.warn_of_unmeetable_scopes();
        LineAuth {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// What a [`LineAuth`] service needs besides its inner service, behind one `Arc` shared with
/// its layer: axum clones the service for every request, so this is one reference count to
/// bump, not four. The layer's builder methods copy it on write.
#[derive(Clone)]
struct LayerState {
    /// Kept to build the verifier anew when [`id_tokens`](LineAuthLayer::id_tokens) changes
    /// what it takes.
    config: Arc<LineAuthConfig>,
    verifier: Arc<Verifier>,
    anonymous: Anonymous,
    rejection: Option<RejectionHandler>,
    sources: TokenSources,
}

/// Middleware that verifies LINE access tokens; built by [`LineAuthLayer`].
#[derive(Clone)]
pub struct LineAuth<S> {
    inner: S,
    state: Arc<LayerState>,
}

impl<S> LineAuth<S> {
    /// The state for the response future to find the custom rejection in, if there is one: a
    /// thin pointer, so the future grows by 8 bytes, and no reference count without a handler.
    fn rejecting(&self) -> Option<Arc<LayerState>> {
        self.state
            .rejection
            .is_some()
            .then(|| Arc::clone(&self.state))
    }

    /// Refuses on the request's credentials alone, counting why.
    fn refuse(&self, error: LineAuthError) -> Decision {
        self.state.verifier.counters.reject(&error, 1);
        Decision::Reject(error)
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for LineAuth<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineAuth")
            .field("inner", &self.inner)
            .field("anonymous", &self.state.anonymous)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LineAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's alone: it never waits on LINE.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let state = &*self.state;
        let mut credential = None;
        let mut caching = Caching::Untouched;
        let decision = match state.sources.credentials(&request) {
            Ok(Credentials::Bearer(found)) => {
                caching = Caching::for_token_in(found.place);
                if found.place == Place::Cookie
                    && !state
                        .sources
                        .allows_cookie_request(request.method(), request.headers())
                {
                    self.refuse(LineAuthError::CrossSiteRequest)
                } else if state.sources.is_authorization_only() {
                    // Handlers find an `Authorization` token themselves (`bearer_token`).
                    state.verifier.decide(&found.token)
                } else {
                    // With sources besides `Authorization` configured, the token is handed on
                    // (`VerifiedToken`), so it is checked and read as text now.
                    match validate_token(&found.token) {
                        Ok(token) => {
                            credential = Some(VerifiedToken::new(token));
                            state.verifier.decide(token.as_bytes())
                        }
                        Err(malformed) => self.refuse(malformed),
                    }
                }
            }
            Ok(Credentials::Absent | Credentials::OtherScheme)
                if state.anonymous == Anonymous::PassThrough =>
            {
                return ResponseFuture::called(
                    self.inner.call(request),
                    self.rejecting(),
                    state.verifier.number(),
                );
            }
            Ok(Credentials::Absent) => self.refuse(LineAuthError::MissingToken),
            Ok(Credentials::OtherScheme) => self.refuse(LineAuthError::UnsupportedScheme),
            Err(refused) => {
                // A query token in the URL is kept from caches whichever source was refused.
                caching = if state.sources.names_a_query_token(request.uri()) {
                    Caching::NoStore
                } else {
                    Caching::for_token_in(refused.place)
                };
                self.refuse(refused.error)
            }
        };
        if let Some(credential) = credential {
            request.extensions_mut().insert(credential);
        }
        // Built in place: the inner future is moved once, not again to set a flag.
        let state = match decision {
            Decision::Allow(user) => {
                request.extensions_mut().insert(user);
                State::Called {
                    future: self.inner.call(request),
                }
            }
            Decision::Reject(error) => State::Rejected {
                response: Some(refusal(&error, self.state.rejection.as_ref())),
            },
            Decision::Pending(verdict) => {
                // The inner service was made ready for this call; keep that one for when the
                // verdict arrives and leave a fresh clone in its place.
                let clone = self.inner.clone();
                State::Verifying {
                    verdict,
                    request: Some(request),
                    service: mem::replace(&mut self.inner, clone),
                }
            }
        };
        ResponseFuture {
            state,
            caching,
            rejecting: self.rejecting(),
            verifier: self.state.verifier.number(),
        }
    }
}

/// What the layer says of caching the response, by where the request carried its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caching {
    /// `Authorization` (RFC 9111 §3.5 keeps shared caches from storing the answer), or none.
    Untouched,
    /// A cookie or a custom header: nothing in HTTP keeps a shared cache from storing a
    /// personal answer, so it says `private` (a refusal too), unless the handler said who may
    /// store it.
    Private,
    /// The URL's query: the token must not be stored with the response it authenticated, nor
    /// with its refusal, whatever the handler said.
    NoStore,
}

impl Caching {
    fn for_token_in(place: Place) -> Self {
        match place {
            Place::Authorization => Self::Untouched,
            Place::Header | Place::Cookie => Self::Private,
            Place::Query => Self::NoStore,
        }
    }

    /// Marks `response`, the handler's or the layer's own refusal.
    fn apply<B>(self, response: &mut Response<B>) {
        match self {
            Self::Untouched => {}
            Self::Private => {
                let headers = response.headers_mut();
                // Every line of it: a list split over several is one list (RFC 9110 §5.3).
                if !headers
                    .get_all(CACHE_CONTROL)
                    .iter()
                    .any(says_who_may_store)
                {
                    // The handler's own directives stand; who may store it is added.
                    headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
                }
            }
            Self::NoStore => {
                response
                    .headers_mut()
                    .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
        }
    }
}

/// Whether a `Cache-Control` value says who may store the response: `public`, `private`,
/// `no-store` or `s-maxage` (RFC 9111 §5.2.2), any case, alone or with arguments; but not a
/// `private` naming fields, which leaves the body storable by shared caches (§5.2.2.7).
fn says_who_may_store(value: &HeaderValue) -> bool {
    directives(value.as_bytes()).any(|directive| {
        let (name, qualified) = match directive.iter().position(|&b| b == b'=') {
            Some(at) => (&directive[..at], true),
            None => (directive, false),
        };
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(b"private") {
            return !qualified;
        }
        [&b"public"[..], b"no-store", b"s-maxage"]
            .iter()
            .any(|known| name.eq_ignore_ascii_case(known))
    })
}

/// The comma-separated directives of a `Cache-Control` value, commas inside a quoted argument
/// (`private="Set-Cookie, X-Id"`) left within their directive.
fn directives(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    let mut escaped = false;
    value.split(move |&b| {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => return true,
            _ => {}
        }
        false
    })
}

pin_project! {
    /// Response future of [`LineAuth`].
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody>,
        caching: Caching,
        // The layer's state where it has a custom rejection, which also answers refusals made
        // inside (`RequireScopesLayer`, the extractors).
        rejecting: Option<Arc<LayerState>>,
        // The layer's verifier, by number, to count a refusal made inside: a reference would
        // cost every request a reference count.
        verifier: u64,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        Verifying {
            verdict: PendingVerdict,
            request: Option<Request<ReqBody>>,
            service: S,
        },
        Called {
            #[pin]
            future: S::Future,
        },
        Rejected {
            response: Option<S::Response>,
        },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn called(future: S::Future, rejecting: Option<Arc<LayerState>>, verifier: u64) -> Self {
        Self {
            state: State::Called { future },
            caching: Caching::Untouched,
            rejecting,
            verifier,
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let handler = this
            .rejecting
            .as_ref()
            .and_then(|state| state.rejection.as_ref());
        loop {
            match this.state.as_mut().project() {
                StateProj::Verifying {
                    verdict,
                    request,
                    service,
                } => {
                    let verdict = ready!(Pin::new(verdict).poll(cx));
                    let mut request = request.take().expect("future polled after completion");
                    match verdict {
                        Ok(user) => {
                            request.extensions_mut().insert(user);
                            let future = service.call(request);
                            this.state.set(State::Called { future });
                        }
                        Err(error) => {
                            let response = refusal(&error, handler);
                            this.state.set(State::Rejected {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Called { future } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(error) = refused_inside(&response) {
                        Verifier::count_refused_inside(*this.verifier, error);
                    }
                    if let Some(handler) = handler {
                        if let Some(error) = take_inner_refusal(&mut response) {
                            response = answer_again(&response, &error, handler);
                        }
                    }
                    this.caching.apply(&mut response);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Rejected { response } => {
                    let mut response = response.take().expect("future polled after completion");
                    this.caching.apply(&mut response);
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::convert::Infallible;
    use std::task::Waker;

    use super::*;

    fn layer() -> LineAuthLayer {
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .build()
            .unwrap();
        LineAuthLayer::new(config)
    }

    /// The builder's order does not matter: choosing the sources keeps the trusted origins.
    #[test]
    fn trusted_origins_set_before_the_token_sources_are_kept() {
        let layer = layer()
            .trusted_origins(["https://app.example.com"])
            .token_sources([crate::TokenSource::Cookie("line_token".into())]);
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "sec-fetch-site",
            http::HeaderValue::from_static("cross-site"),
        );
        headers.insert(
            "origin",
            http::HeaderValue::from_static("https://app.example.com"),
        );
        assert!(layer
            .state
            .sources
            .allows_cookie_request(&http::Method::POST, &headers));
    }

    /// An inner service that is never ready, as one at its concurrency limit (also for
    /// `require`'s tests).
    #[derive(Clone, Debug)]
    pub(crate) struct NeverReady;

    impl Service<Request<()>> for NeverReady {
        type Response = Response<Bytes>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Bytes>, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Pending
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            unreachable!("never ready")
        }
    }

    #[test]
    fn readiness_is_the_inner_services() {
        let mut service = layer().layer(NeverReady);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(service.poll_ready(&mut cx).is_pending());
    }

    #[test]
    fn debug_names_the_layer_and_the_service_and_shows_no_secret() {
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .build()
            .unwrap();
        let layer = LineAuthLayer::new(config).optional();
        assert_eq!(
            format!("{layer:?}"),
            "LineAuthLayer { anonymous: PassThrough, custom_rejection: false, .. }"
        );
        let service = layer.layer(NeverReady);
        assert_eq!(
            format!("{service:?}"),
            "LineAuth { inner: NeverReady, anonymous: PassThrough, .. }"
        );
    }

    #[test]
    fn who_may_store_is_read_from_whole_directives_quotes_and_all() {
        let says = |value: &'static str| says_who_may_store(&HeaderValue::from_static(value));
        for said in [
            "public",
            "Private",
            "max-age=60, no-store",
            "s-maxage=60",
            r#"no-cache="a, b", private"#,
            // A backslash quotes only inside a quoted string (RFC 9110 §5.6.4).
            r"max-age=1\, public",
        ] {
            assert!(says(said), "{said}");
        }
        for unsaid in [
            "max-age=60",
            r#"private="Set-Cookie""#,
            r#"private="Set-Cookie, X-Id", max-age=60"#,
            r#"no-cache="a, public, b""#,
            r#"no-cache="a\", public, b", max-age=1"#,
            "publicity",
        ] {
            assert!(!says(unsaid), "{unsaid}");
        }
    }
}
