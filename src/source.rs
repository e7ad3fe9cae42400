//! [`TokenSource`]: where the layer looks for the token. `Authorization: Bearer` by default.

use std::borrow::Cow;
use std::sync::Arc;

use http::header::{HeaderName, COOKIE};
use http::Request;

use crate::rejection::{LineAuthError, MalformedReason};
use crate::token::{bearer_credentials, validate_token, Credentials};

/// A place a request can carry its LINE token. Configure with
/// [`LineAuthLayer::token_sources`](crate::LineAuthLayer::token_sources); sources are tried in
/// order and the first that holds a token wins. A malformed token in any source is refused
/// (400), never skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer …` (RFC 6750 §2.1): the default, and what LIFF apps send.
    AuthorizationHeader,
    /// A cookie of this name holding the bare token, for a page whose backend set it. Opt-in.
    /// Cookies ride along on cross-site requests: pair this with `SameSite` cookies or CSRF
    /// protection.
    Cookie(String),
    /// A header of this name holding the bare token (no `Bearer `). Opt-in.
    Header(HeaderName),
    /// A URI query parameter of this name (RFC 6750 §2.3). **Risky**: URLs end up in access
    /// logs, proxies, browser history and `Referer` headers, so the token leaks with them. Only
    /// for clients that cannot send headers (e.g. an `EventSource`), and explicitly.
    QueryParameter(String),
}

/// The configured sources, in order.
#[derive(Debug, Clone)]
pub(crate) struct TokenSources(Arc<[TokenSource]>);

impl Default for TokenSources {
    fn default() -> Self {
        Self(Arc::new([TokenSource::AuthorizationHeader]))
    }
}

impl TokenSources {
    pub(crate) fn new(sources: impl IntoIterator<Item = TokenSource>) -> Self {
        Self(sources.into_iter().collect())
    }

    /// The request's credentials: the first source holding a token, or what the absence of one
    /// means (another `Authorization` scheme is told apart from none at all).
    pub(crate) fn credentials<'r, B>(
        &self,
        request: &'r Request<B>,
    ) -> Result<Credentials<Cow<'r, str>>, LineAuthError> {
        let mut other_scheme = false;
        for source in self.0.iter() {
            let found = match source {
                TokenSource::AuthorizationHeader => match bearer_credentials(request.headers())? {
                    Credentials::Bearer(token) => Some(Cow::Borrowed(token)),
                    Credentials::OtherScheme => {
                        other_scheme = true;
                        None
                    }
                    Credentials::Absent => None,
                },
                TokenSource::Header(name) => {
                    let mut values = request.headers().get_all(name).iter();
                    match (values.next(), values.next()) {
                        (None, _) => None,
                        (Some(_), Some(_)) => {
                            return Err(LineAuthError::Malformed(MalformedReason::MultipleHeaders))
                        }
                        (Some(value), None) => Some(Cow::Borrowed(validate_token(
                            value.as_bytes().trim_ascii(),
                        )?)),
                    }
                }
                TokenSource::Cookie(name) => cookie(request, name)
                    .map(validate_token)
                    .transpose()?
                    .map(Cow::Borrowed),
                TokenSource::QueryParameter(name) => query_parameter(request, name)?,
            };
            if let Some(token) = found {
                return Ok(Credentials::Bearer(token));
            }
        }
        Ok(if other_scheme {
            Credentials::OtherScheme
        } else {
            Credentials::Absent
        })
    }
}

/// The first cookie named `name`, across every `Cookie` header.
fn cookie<'r, B>(request: &'r Request<B>, name: &str) -> Option<&'r [u8]> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
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
        })
}

/// The query parameter `name`, percent-decoded; more than one is ambiguous, so malformed.
fn query_parameter<'r, B>(
    request: &'r Request<B>,
    name: &str,
) -> Result<Option<Cow<'r, str>>, LineAuthError> {
    let Some(query) = request.uri().query() else {
        return Ok(None);
    };
    let mut values = form_urlencoded::parse(query.as_bytes()).filter(|(key, _)| key == name);
    let Some((_, value)) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(LineAuthError::Malformed(MalformedReason::MultipleHeaders));
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
        Ok(match sources.credentials(request)? {
            Credentials::Bearer(token) => Some(token.into_owned()),
            _ => None,
        })
    }

    #[test]
    fn sources_are_tried_in_order() {
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
            Err(LineAuthError::Malformed(_))
        ));
    }

    #[test]
    fn a_malformed_token_in_any_source_is_refused_not_skipped() {
        let list = [
            TokenSource::Cookie("line_token".into()),
            TokenSource::AuthorizationHeader,
        ];
        let request = Request::get("/")
            .header("cookie", "line_token=bad token")
            .header("authorization", "Bearer good")
            .body(())
            .unwrap();
        assert!(matches!(
            token_of(&sources(&list), &request),
            Err(LineAuthError::Malformed(_))
        ));
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
}
