//! Every way a request can be refused, and the one place each becomes an HTTP response.
//!
//! | error | status | `WWW-Authenticate` |
//! |---|---|---|
//! | [`MissingToken`](LineAuthError::MissingToken), [`UnsupportedScheme`](LineAuthError::UnsupportedScheme) | 401 | `Bearer realm="line"` |
//! | [`Malformed`](LineAuthError::Malformed) | 400 | `… error="invalid_request"` |
//! | [`InvalidToken`](LineAuthError::InvalidToken), [`ForeignChannel`](LineAuthError::ForeignChannel) | 401 | `… error="invalid_token"` |
//! | [`InsufficientScope`](LineAuthError::InsufficientScope) | 403 | `… error="insufficient_scope", scope="…"` |
//! | [`Unavailable`](LineAuthError::Unavailable) | 503 | none; `Retry-After` instead (for a logout's revoke, only the one LINE sent: the layer retries a revoke itself, waiting as LINE asked) |
//! | [`CrossSiteRequest`](LineAuthError::CrossSiteRequest) | 403 | none (`error` is `cross_site_request`: no bearer token is at fault) |
//!
//! Every response also carries a JSON body `{"error": …, "error_description": …}`. No text here ever
//! contains the token: descriptions are fixed strings chosen by this crate.

use std::sync::Arc;
use std::time::Duration;

use axum_core::response::{IntoResponse, Response as AxumResponse};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// The realm named in every `WWW-Authenticate` challenge.
pub const REALM: &str = "line";

/// The description of every refusal: the one table that both `Display` and the response
/// (`error_description` in the body and the challenge) are written from. Texts hold no quotes or
/// backslashes, so they are valid inside both JSON strings and quoted-strings. (`Display` adds
/// the required scopes in quotes to `InsufficientScope`'s: escape it to put it in JSON.)
macro_rules! description {
    (MissingToken) => {
        "a LINE access token is required"
    };
    (UnsupportedScheme) => {
        "use the Bearer scheme with a LINE access token"
    };
    (Empty) => {
        "the bearer token is empty"
    };
    (InvalidCharacters) => {
        "the bearer token has characters outside the b64token set"
    };
    (TooLong) => {
        "the bearer token is too long"
    };
    (MultipleHeaders) => {
        "the request has more than one Authorization header"
    };
    (MultipleCookies) => {
        "the request has more than one token cookie"
    };
    (MultipleTokenHeaders) => {
        "the request has more than one token header"
    };
    (MultipleQueryParameters) => {
        "the request has more than one token query parameter"
    };
    (MultipleMethods) => {
        "the request carries a token in more than one place (header and query)"
    };
    (Expired) => {
        "the access token expired"
    };
    (Revoked) => {
        "the access token was revoked"
    };
    (NotJws) => {
        "the access token is not a LINE access token"
    };
    (Rejected) => {
        "LINE rejected the access token"
    };
    (ForeignChannel) => {
        "the access token belongs to another channel"
    };
    (InsufficientScope) => {
        "the access token lacks a required scope"
    };
    (Unavailable) => {
        "LINE could not verify the token"
    };
    (RevokeRefused) => {
        "LINE refused to revoke the token (a channel whose app type is Web app only needs its \
         channel secret); it stays refused here"
    };
    (RevokeFailed) => {
        "LINE could not be told of the logout: the revoke failed or did not reach LINE; the token \
         stays refused here"
    };
    (RevokeRetrying) => {
        "LINE could not be told of the logout yet: the revoke failed or did not reach LINE; the \
         token stays refused here, and the revoke is retried in the background"
    };
    (CrossSiteRequest) => {
        "a cookie-authenticated request that changes state must come from this site"
    };
}

/// Suggested wait before retrying when LINE could not be reached and LINE named no wait itself.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why a request was refused. Converts into an RFC 6750 response with
/// [`IntoResponse`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LineAuthError {
    /// The request carries no token: no `Authorization` header, or nothing in any configured
    /// source. Also what the extractors and [`RequireScopesLayer`](crate::RequireScopesLayer)
    /// answer where the layer let no verified user through.
    #[error("{}", description!(MissingToken))]
    MissingToken,
    /// The `Authorization` header uses a scheme other than `Bearer`.
    #[error("{}", description!(UnsupportedScheme))]
    UnsupportedScheme,
    /// The bearer credentials break RFC 6750's syntax; LINE was not asked.
    #[error("{0}")]
    Malformed(MalformedReason),
    /// LINE does not accept the token, or it has expired.
    #[error("{0}")]
    InvalidToken(InvalidReason),
    /// The token is valid, but was issued for a channel this service does not accept.
    #[error("{}", description!(ForeignChannel))]
    ForeignChannel,
    /// The token lacks a scope this service requires.
    #[error("{} (requires \"{required}\")", description!(InsufficientScope))]
    InsufficientScope {
        /// The required scopes, space-separated, as sent in the challenge's `scope` attribute
        /// (left out of it unless each is an RFC 6750 scope-token).
        required: Arc<str>,
    },
    /// LINE could not be reached or answered out of spec; the request is refused, not judged.
    #[error("{description}: {0}", description = unavailable_description(.0))]
    Unavailable(#[source] UpstreamError),
    /// A state-changing request (POST, PUT, PATCH, DELETE) authenticated by a cookie came from
    /// another site: refused as a possible cross-site request forgery.
    #[error("{}", description!(CrossSiteRequest))]
    CrossSiteRequest,
}

/// What is wrong with the request's token, or the way it carries one: LINE was not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedReason {
    /// `Bearer` with no token after it, or an empty `Authorization` header (where no other
    /// source holds a token).
    #[error("{}", description!(Empty))]
    Empty,
    /// A byte outside RFC 6750's b64token charset.
    #[error("{}", description!(InvalidCharacters))]
    InvalidCharacters,
    /// Longer than [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN).
    #[error("{}", description!(TooLong))]
    TooLong,
    /// More than one `Authorization` header.
    #[error("{}", description!(MultipleHeaders))]
    MultipleHeaders,
    /// More than one cookie of the token's name.
    #[error("{}", description!(MultipleCookies))]
    MultipleCookies,
    /// More than one header of the token's name (a [`TokenSource::Header`](crate::TokenSource::Header)).
    #[error("{}", description!(MultipleTokenHeaders))]
    MultipleTokenHeaders,
    /// More than one query parameter of the token's name.
    #[error("{}", description!(MultipleQueryParameters))]
    MultipleQueryParameters,
    /// A token in both `Authorization` and the query parameter (RFC 6750 §3.1: "uses more than
    /// one method for including an access token").
    #[error("{}", description!(MultipleMethods))]
    MultipleMethods,
}

/// Why a token is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The token has expired (per LINE, or per the expiry LINE reported earlier).
    #[error("{}", description!(Expired))]
    Expired,
    /// LINE reports the token revoked.
    #[error("{}", description!(Revoked))]
    Revoked,
    /// LINE does not recognise the token's format.
    #[error("{}", description!(NotJws))]
    NotJws,
    /// LINE refused the token for another reason.
    #[error("{}", description!(Rejected))]
    Rejected,
}

impl InvalidReason {
    /// Classifies LINE's `error_description` (the verify endpoint's). LINE changed these texts in 2026, so
    /// matching is loose; anything unrecognised is still an invalid token, just less specific.
    pub(crate) fn from_line_description(description: &str) -> Self {
        let description = description.to_ascii_lowercase();
        if description.contains("expired") {
            Self::Expired
        } else if description.contains("revoked") {
            Self::Revoked
        } else if description.contains("jws") || description.contains("malformed") {
            Self::NotJws
        } else {
            Self::Rejected
        }
    }
}

/// Why LINE could not give a verdict. Never carries the request URL (it holds the token).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// No answer within the configured upstream timeout.
    #[error("LINE did not answer within the upstream timeout")]
    Timeout,
    /// The connection failed, or the exchange broke off.
    #[error("could not reach LINE")]
    Transport(#[source] Arc<reqwest::Error>),
    /// LINE answered with a status that is not a verdict (5xx, 429, or one it does not document).
    #[error("LINE answered HTTP {status}")]
    Status {
        /// The status LINE answered with.
        status: StatusCode,
        /// LINE's `Retry-After`, where it sent one.
        retry_after: Option<Duration>,
    },
    /// LINE's answer was not the documented JSON.
    #[error("LINE's answer was not the documented JSON: {0}")]
    InvalidBody(&'static str),
    /// The layer's verification task ended without a verdict (e.g. the runtime shut down).
    #[error("the verification was abandoned")]
    Abandoned,
    /// Too many verifications were waiting for LINE: this layer's own bound, not LINE failing.
    #[error("too many verifications are waiting for LINE")]
    Busy,
    /// LINE refused a revoke call itself (on logout), naming an OAuth error: the token is still
    /// live at LINE (and stays refused here). `invalid_client` almost always means the channel
    /// secret: channels whose app type is Web app only require it at revoke.
    #[error(
        "LINE answered {error} to the revoke; set LINE_CHANNEL_SECRET (channel_secret()) if the \
         channel's app type is Web app only"
    )]
    RevokeRefused {
        /// The OAuth error LINE named (`invalid_client`, `invalid_request`, …), or, for LINE's
        /// `{"message"}` shape naming the client and for a 401 naming no OAuth error, `a refusal
        /// of the client` (LINE's own text is not repeated).
        error: Box<str>,
    },
    /// A revoke (on logout) that did not reach LINE or that LINE failed, for this cause, and
    /// that is not retried (the cause is not one a wait would cure, or too many revokes already
    /// wait for a retry): the token may still be live at LINE, and stays refused here.
    #[error(transparent)]
    RevokeFailed(Box<UpstreamError>),
    /// A revoke (on logout) that LINE failed, for this cause, and that the layer retries in the
    /// background for up to an hour: the token stays refused here meanwhile. The caller cannot
    /// retry it, the layer refusing the token from the logout on.
    #[error(transparent)]
    RevokeRetrying(Box<UpstreamError>),
}

/// What the response to a [`LineAuthError::Unavailable`] says, which its text begins with.
fn unavailable_description(error: &UpstreamError) -> &'static str {
    match error {
        UpstreamError::RevokeRefused { .. } => description!(RevokeRefused),
        UpstreamError::RevokeFailed(_) => description!(RevokeFailed),
        UpstreamError::RevokeRetrying(_) => description!(RevokeRetrying),
        _ => description!(Unavailable),
    }
}

impl UpstreamError {
    /// Wraps a reqwest error after stripping its URL, which carries the token on the verify call.
    pub(crate) fn transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(Arc::new(error.without_url()))
        }
    }

    /// The wait a 503 for this error tells its caller (`Retry-After`), if any.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            // The queue drains within an upstream timeout (3 s by default).
            Self::Busy => Some(Duration::from_secs(1)),
            // A logout's revoke LINE refused: a wait would not change its answer.
            Self::RevokeRefused { .. } => None,
            // A logout's revoke LINE failed: the layer retries it itself where a wait may help,
            // so only LINE's own wait is passed on (issue 14: a 429's caller gets it).
            Self::RevokeFailed(_) | Self::RevokeRetrying(_) => self.line_asked_to_wait(),
            _ => Some(self.line_asked_to_wait().unwrap_or(DEFAULT_RETRY_AFTER)),
        }
    }

    /// The wait LINE named (`Retry-After`), if it named one.
    pub(crate) fn line_asked_to_wait(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            Self::RevokeFailed(cause) | Self::RevokeRetrying(cause) => cause.line_asked_to_wait(),
            _ => None,
        }
    }
}

/// An error's fixed texts: the JSON body and the `WWW-Authenticate` challenge ("" for none).
struct Answer {
    body: &'static str,
    challenge: &'static str,
}

/// Assembles an [`Answer`] at compile time. With an RFC 6750 code the challenge carries it;
/// `answer!(None, name, description)` is for answers whose challenge has no `error` (401 without
/// credentials) or that have none (503).
macro_rules! answer {
    (None, "cross_site_request", $description:expr) => {
        Answer {
            body: json_body!("cross_site_request", $description),
            challenge: "",
        }
    };
    (None, "temporarily_unavailable", $description:expr) => {
        Answer {
            body: json_body!("temporarily_unavailable", $description),
            challenge: "",
        }
    };
    (None, $name:literal, $description:expr) => {
        Answer {
            body: json_body!($name, $description),
            challenge: r#"Bearer realm="line""#,
        }
    };
    ($code:literal, $description:expr) => {
        Answer {
            body: json_body!($code, $description),
            challenge: concat!(
                r#"Bearer realm="line", error=""#,
                $code,
                r#"", error_description=""#,
                $description,
                r#"""#
            ),
        }
    };
}

/// The JSON body of every refusal, assembled at compile time.
macro_rules! json_body {
    ($error:literal, $description:expr) => {
        concat!(
            r#"{"error":""#,
            $error,
            r#"","error_description":""#,
            $description,
            r#""}"#
        )
    };
}

impl LineAuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::UnsupportedScheme => StatusCode::UNAUTHORIZED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::InvalidToken(_) | Self::ForeignChannel => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } | Self::CrossSiteRequest => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code (`invalid_request`, `invalid_token`, `insufficient_scope`), if any.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken
            | Self::UnsupportedScheme
            | Self::Unavailable(_)
            | Self::CrossSiteRequest => None,
            Self::Malformed(_) => Some("invalid_request"),
            Self::InvalidToken(_) | Self::ForeignChannel => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }

    /// The fixed texts of this error's answer. Every one is a compile-time constant, so
    /// refusing a request formats nothing and allocates no body.
    fn answer(&self) -> Answer {
        match self {
            Self::MissingToken => answer!(None, "unauthorized", description!(MissingToken)),
            Self::UnsupportedScheme => {
                answer!(None, "unauthorized", description!(UnsupportedScheme))
            }
            Self::Malformed(MalformedReason::Empty) => {
                answer!("invalid_request", description!(Empty))
            }
            Self::Malformed(MalformedReason::InvalidCharacters) => {
                answer!("invalid_request", description!(InvalidCharacters))
            }
            Self::Malformed(MalformedReason::TooLong) => {
                answer!("invalid_request", description!(TooLong))
            }
            Self::Malformed(MalformedReason::MultipleHeaders) => {
                answer!("invalid_request", description!(MultipleHeaders))
            }
            Self::Malformed(MalformedReason::MultipleCookies) => {
                answer!("invalid_request", description!(MultipleCookies))
            }
            Self::Malformed(MalformedReason::MultipleTokenHeaders) => {
                answer!("invalid_request", description!(MultipleTokenHeaders))
            }
            Self::Malformed(MalformedReason::MultipleQueryParameters) => {
                answer!("invalid_request", description!(MultipleQueryParameters))
            }
            Self::Malformed(MalformedReason::MultipleMethods) => {
                answer!("invalid_request", description!(MultipleMethods))
            }
            Self::InvalidToken(InvalidReason::Expired) => {
                answer!("invalid_token", description!(Expired))
            }
            Self::InvalidToken(InvalidReason::Revoked) => {
                answer!("invalid_token", description!(Revoked))
            }
            Self::InvalidToken(InvalidReason::NotJws) => {
                answer!("invalid_token", description!(NotJws))
            }
            Self::InvalidToken(InvalidReason::Rejected) => {
                answer!("invalid_token", description!(Rejected))
            }
            Self::ForeignChannel => answer!("invalid_token", description!(ForeignChannel)),
            Self::InsufficientScope { .. } => {
                answer!("insufficient_scope", description!(InsufficientScope))
            }
            // A logout's revoke that LINE refused: no verification failed, and waiting will not
            // help while the secret is missing, so say what will.
            Self::Unavailable(UpstreamError::RevokeRefused { .. }) => {
                answer!(None, "temporarily_unavailable", description!(RevokeRefused))
            }
            // A logout's revoke: the caller cannot retry it, the layer refusing the token from
            // now on; the layer retries it where a wait may help.
            Self::Unavailable(UpstreamError::RevokeFailed(_)) => {
                answer!(None, "temporarily_unavailable", description!(RevokeFailed))
            }
            Self::Unavailable(UpstreamError::RevokeRetrying(_)) => {
                answer!(
                    None,
                    "temporarily_unavailable",
                    description!(RevokeRetrying)
                )
            }
            Self::Unavailable(_) => answer!(
                None,
                "temporarily_unavailable",
                concat!(description!(Unavailable), "; retry later")
            ),
            Self::CrossSiteRequest => {
                answer!(None, "cross_site_request", description!(CrossSiteRequest))
            }
        }
    }

    /// Builds the response for this error, with any body type that can hold bytes.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Response;
    /// use line_auth::LineAuthError;
    ///
    /// let response: Response<Bytes> = LineAuthError::ForeignChannel.to_response();
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(
    ///     response.headers()["www-authenticate"],
    ///     r#"Bearer realm="line", error="invalid_token", error_description="the access token belongs to another channel""#
    /// );
    /// assert_eq!(
    ///     response.body(),
    ///     r#"{"error":"invalid_token","error_description":"the access token belongs to another channel"}"#
    /// );
    /// ```
    pub fn to_response<B: From<Bytes>>(&self) -> Response<B> {
        let answer = self.answer();
        let mut response = Response::new(B::from(Bytes::from_static(answer.body.as_bytes())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            Self::Unavailable(upstream) => {
                if let Some(wait) = upstream.retry_after() {
                    headers.insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
                }
            }
            Self::InsufficientScope { required } => {
                // The crate's own scopes are checked when configured; an error built elsewhere
                // may hold anything, and only scope-tokens may be named in the quoted attribute.
                let value = if required.split(' ').all(crate::config::is_scope_token) {
                    HeaderValue::from_str(&format!(r#"{}, scope="{required}""#, answer.challenge))
                        .ok()
                } else {
                    None
                };
                headers.insert(
                    WWW_AUTHENTICATE,
                    value.unwrap_or_else(|| HeaderValue::from_static(answer.challenge)),
                );
            }
            _ if !answer.challenge.is_empty() => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(answer.challenge));
            }
            _ => {}
        }
        response
    }
}

/// Marks a refusal made inside the layer (by [`RequireScopesLayer`](crate::RequireScopesLayer),
/// an extractor, or a handler returning the error), so that the layer around it can answer with
/// its custom rejection instead: one format for clients wherever the refusal was decided.
#[derive(Clone)]
pub(crate) struct RefusedInside(pub(crate) LineAuthError);

impl LineAuthError {
    /// The default response, marked for the layer's custom rejection (see [`RefusedInside`]).
    pub(crate) fn into_marked_response<B: From<Bytes>>(self) -> Response<B> {
        let mut response = self.to_response();
        response.extensions_mut().insert(RefusedInside(self));
        response
    }
}

impl IntoResponse for LineAuthError {
    fn into_response(self) -> AxumResponse {
        self.into_marked_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(error: &LineAuthError) -> String {
        let response: Response<Bytes> = error.to_response();
        response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn missing_token_challenge_has_no_error_code() {
        assert_eq!(
            challenge(&LineAuthError::MissingToken),
            r#"Bearer realm="line""#
        );
    }

    #[test]
    fn insufficient_scope_names_the_scopes() {
        let error = LineAuthError::InsufficientScope {
            required: "profile openid".into(),
        };
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert!(challenge(&error).ends_with(r#"error="insufficient_scope", error_description="the access token lacks a required scope", scope="profile openid""#));
    }

    /// `InsufficientScope` can be built outside the crate, with any text: one that is no list
    /// of scope-tokens must neither add attributes to the challenge nor lose the challenge.
    #[test]
    fn insufficient_scope_names_only_scope_tokens() {
        for required in [
            r#"x", error="invalid_token"#,
            "a\\b",
            "tab\there",
            "nul\0",
            "",
            "two  spaces",
        ] {
            let error = LineAuthError::InsufficientScope {
                required: required.into(),
            };
            assert_eq!(
                challenge(&error),
                r#"Bearer realm="line", error="insufficient_scope", error_description="the access token lacks a required scope""#,
                "{required:?}"
            );
        }
    }

    #[test]
    fn unavailable_uses_line_retry_after() {
        let error = LineAuthError::Unavailable(UpstreamError::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after: Some(Duration::from_secs(42)),
        });
        let response: Response<Bytes> = error.to_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "42");
        assert!(!response.headers().contains_key(WWW_AUTHENTICATE));
    }

    /// A refusal of each kind.
    fn one_of_each() -> [LineAuthError; 11] {
        [
            LineAuthError::MissingToken,
            LineAuthError::UnsupportedScheme,
            LineAuthError::Malformed(MalformedReason::TooLong),
            LineAuthError::InvalidToken(InvalidReason::Revoked),
            LineAuthError::ForeignChannel,
            LineAuthError::InsufficientScope {
                required: "profile".into(),
            },
            LineAuthError::Unavailable(UpstreamError::Timeout),
            LineAuthError::Unavailable(UpstreamError::RevokeRefused {
                error: "invalid_client".into(),
            }),
            LineAuthError::Unavailable(UpstreamError::RevokeFailed(Box::new(
                UpstreamError::Status {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    retry_after: Some(Duration::from_secs(42)),
                },
            ))),
            LineAuthError::CrossSiteRequest,
            LineAuthError::Unavailable(UpstreamError::RevokeRetrying(Box::new(
                UpstreamError::Timeout,
            ))),
        ]
    }

    #[test]
    fn every_body_is_json_with_error_and_description() {
        for error in one_of_each() {
            let response: Response<Bytes> = error.to_response();
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert!(
                body["error"].is_string() && body["error_description"].is_string(),
                "{body}"
            );
        }
    }

    /// One table of descriptions feeds both: an error's text begins with what its response
    /// says, then adds what only a log should carry (LINE's own words, the remedy).
    #[test]
    fn each_errors_text_begins_with_its_responses_description() {
        for error in one_of_each() {
            let response: Response<Bytes> = error.to_response();
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            let description = body["error_description"].as_str().unwrap();
            let said = error.to_string();
            let shared = description.trim_end_matches("; retry later");
            assert!(said.starts_with(shared), "{said:?} / {description:?}");
        }
        let refused = LineAuthError::Unavailable(UpstreamError::RevokeRefused {
            error: "invalid_client".into(),
        })
        .to_string();
        assert!(
            refused.contains("invalid_client") && refused.contains("LINE_CHANNEL_SECRET"),
            "{refused}"
        );
        // A revoke LINE failed names its cause, retried or not. Only LINE's own `Retry-After`
        // is passed on: the layer, where it retries, waits as LINE asks.
        let [.., failed, _, retrying] = one_of_each();
        assert!(failed
            .to_string()
            .ends_with(": LINE answered HTTP 429 Too Many Requests"));
        assert!(retrying.to_string().ends_with(
            "retried in the background: LINE did not answer within the upstream timeout"
        ));
        let response: Response<Bytes> = failed.to_response();
        assert_eq!(response.headers()[RETRY_AFTER], "42", "{failed}");
        let response: Response<Bytes> = retrying.to_response();
        assert_eq!(response.headers().get(RETRY_AFTER), None, "{retrying}");
        let LineAuthError::Unavailable(cause) = failed else {
            unreachable!("one_of_each's ninth is a revoke LINE failed")
        };
        assert_eq!(cause.line_asked_to_wait(), Some(Duration::from_secs(42)));
    }

    /// LINE's texts, old and new (the 2026 ones, the older lowercase one, the channel-token
    /// ones), as the fuzzers' and the properties' table holds them, and one it never sent: the
    /// table must agree with the classifier, since they judge the client by it and a stale entry
    /// would fail them only on the input reaching it.
    #[test]
    fn line_descriptions_old_and_new_are_classified_as_the_fuzzers_table_says() {
        let unknown = [("something new", InvalidReason::Rejected)];
        for (description, reason) in crate::fuzzing::LINE_DESCRIPTIONS.into_iter().chain(unknown) {
            assert_eq!(
                InvalidReason::from_line_description(description),
                reason,
                "{description}"
            );
        }
    }

    #[test]
    fn each_refusal_has_its_rfc_6750_code_and_only_refusals_of_a_token_have_a_challenge_code() {
        let cases = [
            (LineAuthError::MissingToken, None, true),
            (LineAuthError::UnsupportedScheme, None, true),
            (
                LineAuthError::Malformed(MalformedReason::MultipleCookies),
                Some("invalid_request"),
                true,
            ),
            (
                LineAuthError::InvalidToken(InvalidReason::Revoked),
                Some("invalid_token"),
                true,
            ),
            (LineAuthError::ForeignChannel, Some("invalid_token"), true),
            (
                LineAuthError::InsufficientScope {
                    required: "profile".into(),
                },
                Some("insufficient_scope"),
                true,
            ),
            (LineAuthError::Unavailable(UpstreamError::Busy), None, false),
            (LineAuthError::CrossSiteRequest, None, false),
        ];
        for (error, code, challenged) in cases {
            assert_eq!(error.error_code(), code, "{error:?}");
            let response: Response<Bytes> = error.to_response();
            assert_eq!(
                response.headers().contains_key("www-authenticate"),
                challenged,
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_busy_layer_asks_for_a_second_and_a_cross_site_request_is_forbidden() {
        let busy: Response<Bytes> = LineAuthError::Unavailable(UpstreamError::Busy).to_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()["retry-after"], "1");
        let cross_site: Response<Bytes> = LineAuthError::CrossSiteRequest.to_response();
        assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(cross_site.body()).unwrap();
        assert_eq!(body["error"], "cross_site_request");
    }
}
