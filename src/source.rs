//! [`TokenSource`]: where the layer looks for the token. `Authorization: Bearer` by default.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, COOKIE, HOST, ORIGIN, UPGRADE};
use http::{HeaderMap, Method, Request, Uri};

use axum_core::extract::FromRequestParts;
use http::request::Parts;

use crate::rejection::{LineAuthError, MalformedReason};
use crate::token::{
    bearer_credentials, check_length, unchecked_bearer_credentials, validate_token, Credentials,
};
use crate::user::LineUser;

/// A place a request can carry its LINE token. Configure with
/// [`LineAuthLayer::token_sources`](crate::LineAuthLayer::token_sources). Sources are tried in
/// order and the first that holds a token wins; a malformed token there is refused (400), never
/// skipped for a later source. A bearer token in both `Authorization` and the query parameter,
/// RFC 6750's two methods here, is refused (400 `invalid_request`, §3.1: "more than one
/// method"), whichever source holds the first token. Another `Authorization` scheme (say
/// `Basic`) is not a token, and leaves the others to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer …` (RFC 6750 §2.1): the default, and what LIFF apps send.
    AuthorizationHeader,
    /// A cookie of this name holding the bare token, for a page whose backend set it. Opt-in.
    ///
    /// Cookies ride along on cross-site requests, so the layer defends against cross-site
    /// request forgery: a state-changing request (POST, PUT, PATCH, DELETE…) authenticated by the
    /// cookie is accepted only from this site (`Sec-Fetch-Site: same-origin` or `none`; from a
    /// browser sending no `Sec-Fetch-Site`, an `Origin` of `http://` or `https://` and the
    /// request's own `Host`) or an origin given to
    /// [`trusted_origins`](crate::LineAuthLayer::trusted_origins); any other gets 403. Use
    /// `SameSite` cookies as well. Two cookies of this name are refused (400). A response the
    /// cookie authenticated, or its refusal, says `Cache-Control: private` unless the handler's
    /// own says who may store it (`public`, an unqualified `private`, `no-store`, `s-maxage`).
    Cookie(String),
    /// A header of this name holding the bare token (no `Bearer `). Opt-in. As for a cookie, a
    /// response it authenticated says `Cache-Control: private` unless the handler's own says who
    /// may store it: unlike `Authorization` (RFC 9111 §3.5), nothing keeps it out of a shared
    /// cache.
    Header(HeaderName),
    /// A URI query parameter of this name (RFC 6750 §2.3). **Risky**: URLs end up in access
    /// logs, proxies, browser history and `Referer` headers, so the token leaks with them. Only
    /// for clients that cannot send headers (e.g. an `EventSource`), and explicitly.
    QueryParameter(String),
}

/// The token the layer verified for this request, whichever [`TokenSource`] it came from: what
/// a handler passes to [`LineAuthHandle::logout`](crate::LineAuthHandle::logout). Its `Debug` shows no part
/// of it.
///
/// As an extractor it rejects with 401 when no token was verified for the request (an anonymous
/// request in [`optional`](crate::LineAuthLayer::optional) mode, or a route the layer does not
/// cover).
///
/// ```
/// use axum::{extract::State, http::StatusCode, routing::post, Router};
/// use line_auth::{LineAuthHandle, LineAuthConfig, LineAuthError, LineAuthLayer, TokenSource, VerifiedToken};
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
/// let layer = LineAuthLayer::new(LineAuthConfig::builder().channel_id("1234567890").build()?)
///     .token_sources([TokenSource::Cookie("line_token".into())]);
/// let app: Router = Router::new()
///     .route("/api/logout", post(logout))
///     .route_layer(layer.clone())
///     .with_state(layer.handle());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct VerifiedToken(Arc<str>);

impl VerifiedToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.into())
    }

    /// The token itself. Keep it out of logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedToken(..)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedToken {
    type Rejection = LineAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // A verified user marks a request the layer let through with a token.
        if parts.extensions.get::<LineUser>().is_none() {
            return Err(LineAuthError::MissingToken);
        }
        if let Some(token) = parts.extensions.get::<VerifiedToken>() {
            return Ok(token.clone());
        }
        // The layer hands on tokens from other sources; one from `Authorization` is read here.
        match bearer_credentials(&parts.headers)? {
            Credentials::Bearer(token) => Ok(Self::new(token)),
            Credentials::Absent | Credentials::OtherScheme => Err(LineAuthError::MissingToken),
        }
    }
}

/// The configured sources, in order, and the origins trusted to send state-changing requests
/// authenticated by a cookie.
#[derive(Debug, Clone)]
pub(crate) struct TokenSources(Arc<Sources>);

#[derive(Debug)]
struct Sources {
    list: Box<[TokenSource]>,
    trusted_origins: Box<[Box<str>]>,
    /// `list` is `Authorization` alone (known once, asked on every request).
    authorization_only: bool,
}

impl Default for TokenSources {
    fn default() -> Self {
        Self::new([TokenSource::AuthorizationHeader])
    }
}

/// What `Authorization` held where no source held a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nothing {
    Absent,
    /// Another scheme's credentials.
    OtherScheme,
    /// An empty value: malformed, unless a token is found elsewhere.
    EmptyAuthorization,
}

/// Where a request's token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// `Authorization`: sent only by code that means to, and a response to it is kept out of
    /// shared caches by HTTP itself (RFC 9111 §3.5).
    Authorization,
    /// A header of the application's own: sent only by code that means to, but nothing keeps a
    /// response to it out of a shared cache.
    Header,
    /// A cookie: the browser sends it along with any request to this site, cross-site ones too.
    Cookie,
    /// The URI's query: it ends up in logs and caches, so the response must not be stored.
    Query,
}

/// A token refused before LINE is asked, and where the request carried it: a refusal is kept
/// from caches as the token's own answer would be.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) error: LineAuthError,
    pub(crate) place: Place,
}

impl TokenSource {
    fn place(&self) -> Place {
        match self {
            Self::AuthorizationHeader => Place::Authorization,
            Self::Header(_) => Place::Header,
            Self::Cookie(_) => Place::Cookie,
            Self::QueryParameter(_) => Place::Query,
        }
    }
}

/// A token, and where the request carried it.
pub(crate) struct Found<'r> {
    /// Within [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN). A cookie's or the query's is checked
    /// whole; a header's charset is left to [`validate_token`] or the verifier's miss path
    /// (see [`check_charset`](crate::token::check_charset)).
    pub(crate) token: Cow<'r, [u8]>,
    pub(crate) place: Place,
}

impl TokenSources {
    pub(crate) fn new(sources: impl IntoIterator<Item = TokenSource>) -> Self {
        Self::of(sources, Box::default())
    }

    /// Other sources, still trusting the origins trusted here.
    pub(crate) fn reading(&self, sources: impl IntoIterator<Item = TokenSource>) -> Self {
        Self::of(sources, self.0.trusted_origins.clone())
    }

    fn of(
        sources: impl IntoIterator<Item = TokenSource>,
        trusted_origins: Box<[Box<str>]>,
    ) -> Self {
        let list: Box<[TokenSource]> = sources.into_iter().collect();
        Self(Arc::new(Sources {
            authorization_only: *list == [TokenSource::AuthorizationHeader],
            list,
            trusted_origins,
        }))
    }

    /// The same sources, trusting `origins` (e.g. `https://app.example.com`) to send
    /// state-changing requests authenticated by a cookie.
    pub(crate) fn trusting(&self, origins: impl IntoIterator<Item = String>) -> Self {
        Self(Arc::new(Sources {
            list: self.0.list.clone(),
            trusted_origins: origins.into_iter().map(String::into_boxed_str).collect(),
            authorization_only: self.0.authorization_only,
        }))
    }

    /// Whether `uri` names a query parameter this layer reads a token from, well formed or not:
    /// a refusal of a malformed one is kept out of caches as the token's own answer is.
    pub(crate) fn names_a_query_token(&self, uri: &Uri) -> bool {
        let Some(query) = uri.query() else {
            return false;
        };
        self.0.list.iter().any(|source| match source {
            TokenSource::QueryParameter(name) => {
                form_urlencoded::parse(query.as_bytes()).any(|(key, _)| key == name.as_str())
            }
            _ => false,
        })
    }

    /// Whether the request carries a token by both of RFC 6750's methods this layer reads, a
    /// bearer token in `Authorization` and one in the query parameter: `invalid_request` by
    /// §3.1 ("uses more than one method"), whichever source holds the first token. A cookie or a
    /// custom header is no such method: beside one of those the first source in the list wins,
    /// so that a cookie left behind (or planted by a sibling subdomain) cannot block a request
    /// sent with a header listed before it.
    fn carries_both_methods(&self, headers: &HeaderMap, uri: &Uri) -> bool {
        // Nothing to look at on the default, `Authorization` alone: the hit's path. The header
        // before the query, which is decoded (and may allocate) only with a bearer token beside.
        !self.0.authorization_only
            && self.0.list.contains(&TokenSource::AuthorizationHeader)
            // A broken bearer attempt (no token, an empty header, two headers, too long) is one
            // too: the request is ambiguous whichever source the list names first.
            && !matches!(
                unchecked_bearer_credentials(headers),
                Ok(Credentials::Absent | Credentials::OtherScheme)
            )
            && self.names_a_query_token(uri)
    }

    /// Whether only `Authorization` is read, where [`crate::bearer_token`] finds the same token.
    pub(crate) fn is_authorization_only(&self) -> bool {
        self.0.authorization_only
    }

    /// The request's credentials: the first source holding a token, or what the absence of one
    /// means (another `Authorization` scheme is told apart from none at all).
    pub(crate) fn credentials<'r, B>(
        &self,
        request: &'r Request<B>,
    ) -> Result<Credentials<Found<'r>>, Refused> {
        self.credentials_in(request.headers(), request.uri())
    }

    /// [`credentials`](Self::credentials) from a request's parts.
    pub(crate) fn credentials_in<'r>(
        &self,
        headers: &'r HeaderMap,
        uri: &'r Uri,
    ) -> Result<Credentials<Found<'r>>, Refused> {
        let mut nothing = Nothing::Absent;
        for source in self.0.list.iter() {
            let place = source.place();
            let found = Self::token_in(source, headers, uri, &mut nothing)
                .map_err(|error| Refused { error, place })?;
            if let Some(token) = found {
                if self.carries_both_methods(headers, uri) {
                    return Err(Refused {
                        error: LineAuthError::Malformed(MalformedReason::MultipleMethods),
                        place: Place::Query,
                    });
                }
                return Ok(Credentials::Bearer(Found { token, place }));
            }
        }
        match nothing {
            Nothing::Absent => Ok(Credentials::Absent),
            Nothing::OtherScheme => Ok(Credentials::OtherScheme),
            Nothing::EmptyAuthorization => Err(Refused {
                error: LineAuthError::Malformed(MalformedReason::Empty),
                place: Place::Authorization,
            }),
        }
    }

    /// What one source holds: a token, nothing (`nothing` told where `Authorization` holds
    /// another scheme's credentials, or is empty), or why what it holds is refused.
    fn token_in<'r>(
        source: &TokenSource,
        headers: &'r HeaderMap,
        uri: &'r Uri,
        nothing: &mut Nothing,
    ) -> Result<Option<Cow<'r, [u8]>>, LineAuthError> {
        Ok(match source {
            TokenSource::AuthorizationHeader => match unchecked_bearer_credentials(headers) {
                Ok(Credentials::Bearer(token)) => Some(Cow::Borrowed(token)),
                Ok(Credentials::OtherScheme) => {
                    *nothing = Nothing::OtherScheme;
                    None
                }
                Ok(Credentials::Absent) => None,
                // An empty header holds no token, as another scheme's holds none: a token in a
                // source after it is read; with none, the empty header is what is malformed.
                Err(LineAuthError::Malformed(MalformedReason::Empty))
                    if headers
                        .get(AUTHORIZATION)
                        .is_some_and(|value| value.as_bytes().trim_ascii().is_empty()) =>
                {
                    *nothing = Nothing::EmptyAuthorization;
                    None
                }
                Err(malformed) => return Err(malformed),
            },
            TokenSource::Header(name) => {
                let mut values = headers.get_all(name).iter();
                match (values.next(), values.next()) {
                    (None, _) => None,
                    (Some(_), Some(_)) => {
                        return Err(LineAuthError::Malformed(
                            MalformedReason::MultipleTokenHeaders,
                        ))
                    }
                    (Some(value), None) => {
                        Some(Cow::Borrowed(check_length(value.as_bytes().trim_ascii())?))
                    }
                }
            }
            TokenSource::Cookie(name) => cookie(headers, name)?
                .map(validate_token)
                .transpose()?
                .map(|token| Cow::Borrowed(token.as_bytes())),
            TokenSource::QueryParameter(name) => query_parameter(uri, name)?.map(into_bytes),
        })
    }

    /// The CSRF defence for cookies: a request that may change state (any method but GET,
    /// HEAD, OPTIONS and TRACE, and a WebSocket upgrade whatever its method) is accepted only
    /// from this site, as the browser reports it in `Sec-Fetch-Site` (`same-origin`, or `none`
    /// for one the user typed) or in an `Origin` naming this host (browsers without Fetch
    /// Metadata), or from a trusted `Origin`.
    pub(crate) fn allows_cookie_request(&self, method: &Method, headers: &HeaderMap) -> bool {
        if method.is_safe() && !headers.contains_key(UPGRADE) {
            return true;
        }
        if let Some(site) = headers.get("sec-fetch-site") {
            if site == "same-origin" || site == "none" {
                return true;
            }
        }
        let Some(origin) = headers.get(ORIGIN).map(HeaderValue::as_bytes) else {
            return false;
        };
        let this_host = headers.get(HOST).is_some_and(|host| {
            [&b"https://"[..], b"http://"]
                .iter()
                .any(|scheme| origin.strip_prefix(*scheme) == Some(host.as_bytes()))
        });
        // Where the browser says "cross-site", a same-host Origin is not enough (another port
        // or scheme); a trusted origin always is.
        let cross_site = headers
            .get("sec-fetch-site")
            .is_some_and(|site| site != "same-origin");
        (this_host && !cross_site)
            || self
                .0
                .trusted_origins
                .iter()
                .any(|trusted| origin == trusted.as_bytes())
    }
}

/// The cookie named `name`, across every `Cookie` header; more than one is ambiguous.
fn cookie<'r>(headers: &'r HeaderMap, name: &str) -> Result<Option<&'r [u8]>, LineAuthError> {
    let mut values = headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let (key, value) = pair.split_at(pair.iter().position(|&b| b == b'=')?);
            (key == name.as_bytes()).then(|| {
                let value = &value[1..];
                // RFC 6265 allows a value in double quotes.
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value)
            })
        });
    let first = values.next();
    if values.next().is_some() {
        return Err(LineAuthError::Malformed(MalformedReason::MultipleCookies));
    }
    Ok(first)
}

/// `text` as bytes, borrowed or owned as it was.
fn into_bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

/// The query parameter `name`, percent-decoded; more than one is ambiguous, so malformed.
fn query_parameter<'r>(uri: &'r Uri, name: &str) -> Result<Option<Cow<'r, str>>, LineAuthError> {
    let Some(query) = uri.query() else {
        return Ok(None);
    };
    let mut values = form_urlencoded::parse(query.as_bytes()).filter(|(key, _)| key == name);
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(LineAuthError::Malformed(
            MalformedReason::MultipleQueryParameters,
        ));
    }
    validate_token(value.as_bytes())?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(list: &[TokenSource]) -> TokenSources {
        TokenSources::new(list.iter().cloned())
    }

    fn token_of(
        sources: &TokenSources,
        request: &Request<()>,
    ) -> Result<Option<String>, LineAuthError> {
        let credentials = sources
            .credentials(request)
            .map_err(|refused| refused.error)?;
        Ok(match credentials {
            Credentials::Bearer(found) => Some(validate_token(&found.token)?.to_owned()),
            _ => None,
        })
    }

    /// A broken bearer attempt in `Authorization` (no token, two headers, too long) beside a
    /// query token is refused as with the header listed first: the order of the list does not
    /// decide whether an ambiguous request gets through (RFC 6750 §3.1, `invalid_request`).
    #[test]
    fn a_broken_authorization_header_beside_a_query_token_is_refused_whatever_the_order() {
        let query_first = sources(&[
            TokenSource::QueryParameter("access_token".into()),
            TokenSource::AuthorizationHeader,
        ]);
        let too_long = format!("Bearer {}", "a".repeat(4096));
        for headers in [
            vec!["Bearer"],
            vec!["Bearer a", "Bearer b"],
            vec![too_long.as_str()],
        ] {
            let mut request = Request::get("/?access_token=from-query");
            for value in &headers {
                request = request.header("authorization", *value);
            }
            let request = request.body(()).unwrap();
            assert!(
                matches!(
                    token_of(&query_first, &request),
                    Err(LineAuthError::Malformed(_))
                ),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn sources_are_tried_in_order_but_a_header_token_with_a_query_token_is_refused() {
        let request = Request::get("/?access_token=from-query")
            .header("cookie", "theme=dark; line_token=\"from-cookie\"")
            .header("x-line-token", "from-header")
            .body(())
            .unwrap();
        let all = [
            TokenSource::AuthorizationHeader,
            TokenSource::Cookie("line_token".into()),
            TokenSource::Header(HeaderName::from_static("x-line-token")),
            TokenSource::QueryParameter("access_token".into()),
        ];
        assert_eq!(
            token_of(&sources(&all), &request).unwrap().as_deref(),
            Some("from-cookie")
        );
        assert_eq!(
            token_of(&sources(&all[2..]), &request).unwrap().as_deref(),
            Some("from-header")
        );
        assert_eq!(
            token_of(&sources(&all[3..]), &request).unwrap().as_deref(),
            Some("from-query")
        );
        assert_eq!(token_of(&TokenSources::default(), &request).unwrap(), None);

        // RFC 6750's two methods at once, in either order of the list.
        let with_header = Request::get("/?access_token=from-query")
            .header("authorization", "Bearer from-authorization")
            .body(())
            .unwrap();
        let (header, query) = (all[0].clone(), all[3].clone());
        for list in [[header.clone(), query.clone()], [query, header]] {
            assert!(matches!(
                token_of(&sources(&list), &with_header),
                Err(LineAuthError::Malformed(MalformedReason::MultipleMethods))
            ));
        }
        // Whichever source holds the first token: a cookie listed first does not hide them.
        let with_cookie = Request::get("/?access_token=from-query")
            .header("authorization", "Bearer from-authorization")
            .header("cookie", "line_token=from-cookie")
            .body(())
            .unwrap();
        assert!(matches!(
            token_of(
                &sources(&[all[1].clone(), all[0].clone(), all[3].clone()]),
                &with_cookie
            ),
            Err(LineAuthError::Malformed(MalformedReason::MultipleMethods))
        ));
        // Only when both are read: the query alone configured takes its token.
        assert_eq!(
            token_of(&sources(&all[3..]), &with_header)
                .unwrap()
                .as_deref(),
            Some("from-query")
        );
        // Another scheme beside the query is no second method.
        let basic = Request::get("/?access_token=from-query")
            .header("authorization", "Basic abc")
            .body(())
            .unwrap();
        assert_eq!(
            token_of(&sources(&[all[3].clone(), all[0].clone()]), &basic)
                .unwrap()
                .as_deref(),
            Some("from-query")
        );
    }

    #[test]
    fn query_tokens_are_percent_decoded_and_still_validated() {
        let query = [TokenSource::QueryParameter("access_token".into())];
        let request = Request::get("/?access_token=a%2Bb%2Fc%3D%3D")
            .body(())
            .unwrap();
        assert_eq!(
            token_of(&sources(&query), &request).unwrap().as_deref(),
            Some("a+b/c==")
        );
        let smuggled = Request::get("/?access_token=a%26client_id%3D1")
            .body(())
            .unwrap();
        assert!(matches!(
            token_of(&sources(&query), &smuggled),
            Err(LineAuthError::Malformed(_))
        ));
        let twice = Request::get("/?access_token=a&access_token=b")
            .body(())
            .unwrap();
        assert!(matches!(
            token_of(&sources(&query), &twice),
            Err(LineAuthError::Malformed(
                MalformedReason::MultipleQueryParameters
            ))
        ));
    }

    #[test]
    fn a_malformed_token_where_one_is_first_found_is_refused_not_skipped() {
        let request = Request::get("/")
            .header("cookie", "line_token=bad token")
            .header("authorization", "Bearer good")
            .body(())
            .unwrap();
        let cookie = TokenSource::Cookie("line_token".into());
        let header = TokenSource::AuthorizationHeader;
        assert!(matches!(
            token_of(&sources(&[cookie.clone(), header.clone()]), &request),
            Err(LineAuthError::Malformed(MalformedReason::InvalidCharacters))
        ));
        // A cookie left behind, or planted by a sibling subdomain, does not block a request
        // sent with a header listed before it.
        assert_eq!(
            token_of(&sources(&[header, cookie]), &request)
                .unwrap()
                .as_deref(),
            Some("good")
        );
    }

    #[test]
    fn another_authorization_scheme_leaves_a_token_elsewhere_to_be_read() {
        let list = [
            TokenSource::AuthorizationHeader,
            TokenSource::Cookie("t".into()),
        ];
        let request = Request::get("/")
            .header("authorization", "Basic abc")
            .header("cookie", "t=from-cookie")
            .body(())
            .unwrap();
        assert_eq!(
            token_of(&sources(&list), &request).unwrap().as_deref(),
            Some("from-cookie")
        );
    }

    #[test]
    fn another_authorization_scheme_is_remembered_when_no_source_has_a_token() {
        let list = [
            TokenSource::AuthorizationHeader,
            TokenSource::Cookie("t".into()),
        ];
        let request = Request::get("/")
            .header("authorization", "Basic abc")
            .body(())
            .unwrap();
        assert!(matches!(
            sources(&list).credentials(&request),
            Ok(Credentials::OtherScheme)
        ));
    }

    /// An empty `Authorization` header holds no token: a token elsewhere is read, as beside
    /// another scheme; with none anywhere, the empty header is what is malformed (400).
    #[test]
    fn an_empty_authorization_header_leaves_a_token_elsewhere_to_be_read() {
        let list = [
            TokenSource::AuthorizationHeader,
            TokenSource::Cookie("t".into()),
        ];
        let with_cookie = Request::get("/")
            .header("authorization", "")
            .header("cookie", "t=from-cookie")
            .body(())
            .unwrap();
        assert_eq!(
            token_of(&sources(&list), &with_cookie).unwrap().as_deref(),
            Some("from-cookie")
        );
        let alone = Request::get("/")
            .header("authorization", " ")
            .body(())
            .unwrap();
        for list in [&list[..], &list[..1]] {
            assert!(
                matches!(
                    token_of(&sources(list), &alone),
                    Err(LineAuthError::Malformed(MalformedReason::Empty))
                ),
                "{list:?}"
            );
        }
    }

    #[test]
    fn a_verified_token_shows_none_of_itself() {
        let token = VerifiedToken::new("eyJhbGciOiJIUzI1NiJ9.secret");
        assert_eq!(format!("{token:?}"), "VerifiedToken(..)");
        assert_eq!(token.as_str(), "eyJhbGciOiJIUzI1NiJ9.secret");
    }

    #[test]
    fn only_the_default_reads_authorization_alone() {
        assert!(TokenSources::default().is_authorization_only());
        assert!(!sources(&[TokenSource::Cookie("t".into())]).is_authorization_only());
        assert!(!sources(&[
            TokenSource::AuthorizationHeader,
            TokenSource::QueryParameter("access_token".into()),
        ])
        .is_authorization_only());
    }
}
