//! The two LINE Login calls the layer makes, their wire types, and how LINE's answers are judged.
//!
//! One `reqwest::Client` is shared by every request. Errors never carry a URL: the verify URL holds
//! the token in its query (fact sheet §3.1).

use std::time::Duration;

use http::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Url;
use serde::Deserialize;

use crate::config::LineAuthConfig;
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
use crate::token::AccessToken;

/// Most bytes read from any LINE response. Real answers are well under 1 KiB; anything larger is
/// not LINE speaking, and reading it would let a broken upstream exhaust memory.
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// `GET /oauth2/v2.1/verify` 200 body (fact sheet §3.1). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenVerification {
    /// Space-separated; "not always included" for channel tokens, so optional.
    #[serde(default)]
    pub(crate) scope: Option<String>,
    pub(crate) client_id: String,
    /// Seconds left at the time of the call.
    pub(crate) expires_in: i64,
}

impl TokenVerification {
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }
}

/// `GET /v2/profile` 200 body (fact sheet §3.2). `pictureUrl` and `statusMessage` may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    pub(crate) user_id: String,
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) picture_url: Option<String>,
    #[serde(default)]
    pub(crate) status_message: Option<String>,
}

/// LINE's OAuth-style error body (shape A, fact sheet §1).
#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Calls LINE on the layer's behalf.
#[derive(Debug, Clone)]
pub(crate) struct LineClient {
    http: reqwest::Client,
    verify_url: Url,
    profile_url: Url,
}

impl LineClient {
    pub(crate) fn new(config: &LineAuthConfig) -> Self {
        // The base is validated to be a directory URL, so joining cannot fail.
        let join = |path: &str| {
            config
                .api_base
                .join(path)
                .unwrap_or_else(|_| config.api_base.clone())
        };
        Self {
            http: config.http_client.clone(),
            verify_url: join("oauth2/v2.1/verify"),
            profile_url: join("v2/profile"),
        }
    }

    /// `GET /oauth2/v2.1/verify?access_token=…`. A 400 is LINE's verdict that the token is not
    /// valid; any other non-200 answer is LINE being unavailable.
    pub(crate) async fn verify(
        &self,
        token: &AccessToken,
    ) -> Result<TokenVerification, LineAuthError> {
        let mut url = self.verify_url.clone();
        // Form-encodes the token, so `+`, `/` and `=` reach LINE intact.
        url.query_pairs_mut()
            .append_pair("access_token", token.expose());
        let response = self.http.get(url).send().await.map_err(unavailable)?;
        let status = response.status();
        log_request_id("verify", status, response.headers());
        let retry_after = retry_after(response.headers());
        let body = read_limited(response).await?;
        match status {
            StatusCode::OK => parse(&body),
            StatusCode::BAD_REQUEST => {
                let error: OAuthError = parse(&body)?;
                tracing::debug!(error = %error.error, "LINE refused the access token");
                let reason = error.error_description.as_deref().map_or(
                    InvalidReason::Rejected,
                    InvalidReason::from_line_description,
                );
                Err(LineAuthError::InvalidToken(reason))
            }
            status => Err(upstream_status(status, retry_after)),
        }
    }

    /// `GET /v2/profile` with the bearer token. 401 means the token went bad between the two calls;
    /// 403 means it may not read the profile (no `profile` scope).
    pub(crate) async fn profile(&self, token: &AccessToken) -> Result<Profile, LineAuthError> {
        let response = self
            .http
            .get(self.profile_url.clone())
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        log_request_id("profile", status, response.headers());
        let retry_after = retry_after(response.headers());
        let body = read_limited(response).await?;
        match status {
            StatusCode::OK => parse(&body),
            StatusCode::UNAUTHORIZED => Err(LineAuthError::InvalidToken(InvalidReason::Rejected)),
            StatusCode::FORBIDDEN => Err(LineAuthError::InsufficientScope {
                required: "profile".into(),
            }),
            status => Err(upstream_status(status, retry_after)),
        }
    }
}

fn unavailable(error: reqwest::Error) -> LineAuthError {
    LineAuthError::Unavailable(UpstreamError::transport(error))
}

fn upstream_status(status: StatusCode, retry_after: Option<Duration>) -> LineAuthError {
    LineAuthError::Unavailable(UpstreamError::Status {
        status,
        retry_after,
    })
}

/// LINE recommends logging `x-line-request-id` with every call (fact sheet §4.5).
fn log_request_id(endpoint: &'static str, status: StatusCode, headers: &HeaderMap) {
    let request_id = headers
        .get("x-line-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::debug!(
        endpoint,
        status = status.as_u16(),
        line_request_id = request_id,
        "LINE answered"
    );
}

/// `Retry-After` in seconds (LINE's 429, §1); the HTTP-date form is not worth honouring here.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// Reads the body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, LineAuthError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(LineAuthError::Unavailable(UpstreamError::InvalidBody(
            "the body is too large",
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(LineAuthError::Unavailable(UpstreamError::InvalidBody(
                "the body is too large",
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, LineAuthError> {
    serde_json::from_slice(body).map_err(|_| {
        LineAuthError::Unavailable(UpstreamError::InvalidBody("unexpected JSON shape"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_ignores_unknown_fields_and_tolerates_missing_scope() {
        let parsed: TokenVerification =
            serde_json::from_str(r#"{"client_id":"1","expires_in":5,"new_field":[1]}"#).unwrap();
        assert_eq!(parsed.scopes().count(), 0);
        let parsed: TokenVerification =
            serde_json::from_str(r#"{"scope":"profile  openid","client_id":"1","expires_in":5}"#)
                .unwrap();
        assert_eq!(parsed.scopes().collect::<Vec<_>>(), ["profile", "openid"]);
    }

    #[test]
    fn client_id_must_be_a_string() {
        // LINE sends the channel ID as a JSON string (fact sheet §1); a number is out of spec.
        assert!(parse::<TokenVerification>(br#"{"client_id":1,"expires_in":5}"#).is_err());
    }

    #[test]
    fn profile_optional_fields_may_be_absent() {
        let profile: Profile =
            serde_json::from_str(r#"{"userId":"Uabc","displayName":"Brown","language":"en"}"#)
                .unwrap();
        assert!(profile.picture_url.is_none() && profile.status_message.is_none());
    }

    #[test]
    fn verify_url_form_encodes_the_token() {
        let config = LineAuthConfig::builder()
            .channel_id("1")
            .api_base("http://127.0.0.1:1/prefix")
            .build()
            .unwrap();
        let client = LineClient::new(&config);
        let mut url = client.verify_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", "a+b/c==&x=1#f");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/prefix/oauth2/v2.1/verify?access_token=a%2Bb%2Fc%3D%3D%26x%3D1%23f"
        );
        assert_eq!(
            client.profile_url.as_str(),
            "http://127.0.0.1:1/prefix/v2/profile"
        );
    }
}
