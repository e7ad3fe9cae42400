//! [`LineLoginClient`]: LINE Login's token lifecycle, typed
//! (<https://developers.line.biz/en/reference/line-login/>).
//!
//! Sign-in (authorization code with PKCE), refresh, revoke, verify, profile, ID-token verification
//! by LINE, userinfo and friendship status. Form-encoded where LINE expects it; LINE's two error
//! shapes become [`LineLoginError`]; unknown fields are ignored; tokens and secrets are redacted in
//! `Debug`. The calls go through the same transport as the layer's, each bounded by a timeout and
//! tried once: a token grant must not be sent twice, and whether to try again is the app's call.
//!
//! ```
//! use line_auth_emulator::{IssueToken, LineEmulator};
//! use line_auth::login::LineLoginClient;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let line = LineEmulator::start().await?;
//! let client = LineLoginClient::builder("1234567890").api_base(line.base_url()).build()?;
//! let token = line.issue(IssueToken::new("1234567890").display_name("Brown"));
//!
//! let verification = client.verify_access_token(&token).await?;
//! assert_eq!(verification.client_id, "1234567890");
//! assert_eq!(client.profile(&token).await?.display_name, "Brown");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use http::StatusCode;
use reqwest::Url;

use crate::clock;
use crate::config::{ConfigError, Secret, DEFAULT_API_BASE, DEFAULT_UPSTREAM_TIMEOUT};
use crate::line_api::wire::{self, Friendship, LineError, TokenAnswer};
use crate::line_api::{default_http_client, is_try_later, Answer, Call, Retries, Transport};
use crate::rejection::UpstreamError;

pub use crate::line_api::wire::{AccessTokenInfo, IdTokenClaims, Profile, Token, UserInfo};

/// LINE's authorization endpoint lives on `access.line.me`.
pub(crate) const DEFAULT_AUTHORIZE_ENDPOINT: &str = "https://access.line.me/oauth2/v2.1/authorize";
/// Refresh tokens live at most 90 days from the first issue; refreshing does not extend them
/// (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// A LINE Login API failure.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LineLoginError {
    /// LINE answered with its OAuth-style error body, `{"error", "error_description"}`.
    #[error("LINE answered {status}: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// The HTTP status.
        status: StatusCode,
        /// `error`, e.g. `invalid_grant`.
        error: String,
        /// `error_description`, e.g. `invalid refresh token`.
        description: Option<String>,
    },
    /// LINE answered with its REST-style error body, `{"message"}`.
    #[error("LINE answered {status}: {message}")]
    Message {
        /// The HTTP status.
        status: StatusCode,
        /// `message`.
        message: String,
    },
    /// LINE could not be reached, timed out, answered 429 or 5xx (with its `Retry-After`, in
    /// [`UpstreamError::Status`]), or answered another status with no error body.
    #[error("LINE could not be reached: {0}")]
    Unavailable(#[source] UpstreamError),
    /// LINE's answer was not the documented JSON.
    #[error("LINE's answer was not the documented JSON: {0}")]
    InvalidResponse(&'static str),
}

impl LineLoginError {
    /// Whether LINE refused because the grant (code or refresh token) is invalid or expired:
    /// the user must sign in again.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Self::OAuth { error, .. } if error == "invalid_grant")
    }
}

/// The tokens of one sign-in, with absolute expiry times.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokenSet {
    /// The access token (30 days for LINE Login v2.1).
    pub access_token: Token,
    /// When the access token expires.
    pub access_expires_at: SystemTime,
    /// The refresh token.
    pub refresh_token: Token,
    /// When the refresh token expires: 90 days after the first issue, never extended.
    pub refresh_expires_at: SystemTime,
    /// The ID token, present when `openid` was granted; refreshing does not renew it.
    pub id_token: Option<Token>,
    /// The granted scopes.
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// The tokens of a sign-in as the application kept them (encrypted, in its database or
    /// session store), to [`refresh`](LineLoginClient::refresh) them in another process or
    /// after a restart. No ID token and no scopes: set [`id_token`](Self::id_token) and
    /// [`scopes`](Self::scopes) where they were kept too (a refresh answer without `scope`
    /// keeps those held).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use line_auth::login::TokenSet;
    ///
    /// let now = SystemTime::now();
    /// let mut tokens = TokenSet::new(
    ///     "stored-access-token".to_owned().into(),
    ///     now + Duration::from_secs(3_600),
    ///     "stored-refresh-token".to_owned().into(),
    ///     now + Duration::from_secs(80 * 86_400),
    /// );
    /// tokens.scopes = vec!["profile".into(), "openid".into()];
    /// assert!(!tokens.refresh_expired());
    /// ```
    pub fn new(
        access_token: Token,
        access_expires_at: SystemTime,
        refresh_token: Token,
        refresh_expires_at: SystemTime,
    ) -> Self {
        Self {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            id_token: None,
            scopes: Vec::new(),
        }
    }

    /// Whether the access token expires within `margin`, and so should be refreshed now.
    pub fn needs_refresh(&self, margin: Duration) -> bool {
        // A margin past any clock means now.
        SystemTime::now()
            .checked_add(margin)
            .is_none_or(|then| then >= self.access_expires_at)
    }

    /// Whether the refresh token has expired: the user must sign in again.
    pub fn refresh_expired(&self) -> bool {
        SystemTime::now() >= self.refresh_expires_at
    }
}

/// A PKCE pair for the authorization request (S256 only;
/// <https://developers.line.biz/en/docs/line-login/integrate-pkce/>).
#[derive(Clone)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    /// A PKCE pair from a code verifier: 43–128 characters of `[A-Za-z0-9-._~]`, at least
    /// 256 bits of randomness, chosen by you and kept for the code exchange.
    pub fn from_verifier(verifier: impl Into<String>) -> Option<Self> {
        use base64::Engine;
        use sha2::Digest;
        let verifier = verifier.into();
        let valid = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        valid.then(|| {
            let digest = sha2::Sha256::digest(verifier.as_bytes());
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
            Self {
                verifier,
                challenge,
            }
        })
    }

    /// The `code_verifier` to send with the code exchange.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The S256 `code_challenge` for the authorization URL.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// LINE Login's API for one channel. Cheap to clone.
#[derive(Clone)]
pub struct LineLoginClient {
    transport: Transport,
    authorize_endpoint: Url,
    channel_id: String,
    channel_secret: Option<Secret>,
    timeout: Duration,
}

impl fmt::Debug for LineLoginClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineLoginClient")
            .field("api_base", &self.transport.api_base().as_str())
            .field("channel_id", &self.channel_id)
            .field("channel_secret", &self.channel_secret)
            .finish_non_exhaustive()
    }
}

/// Builder for [`LineLoginClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LineLoginClientBuilder {
    channel_id: String,
    channel_secret: Option<Secret>,
    api_base: Option<String>,
    authorize_endpoint: Option<String>,
    timeout: Duration,
    http_client: Option<reqwest::Client>,
}

impl LineLoginClientBuilder {
    /// The channel secret: required by LINE for the code exchange, and for refresh and revoke
    /// on channels whose app type is web only; native-app channels do without. An empty or blank
    /// one fails [`build`](Self::build) ([`ConfigError::BlankChannelSecret`]).
    pub fn channel_secret(mut self, secret: impl Into<String>) -> Self {
        self.channel_secret = Some(Secret::new(secret.into()));
        self
    }

    /// The API base (default `https://api.line.me`; the emulator, a proxy).
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = Some(base.into());
        self
    }

    /// The authorization endpoint (default `https://access.line.me/oauth2/v2.1/authorize`).
    pub fn authorize_endpoint(mut self, url: impl Into<String>) -> Self {
        self.authorize_endpoint = Some(url.into());
        self
    }

    /// The bound on every call (default 3 s); `build` refuses zero and anything over 100 years.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Your own `reqwest::Client`; give it a no-redirect policy.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Validates and builds the client.
    pub fn build(self) -> Result<LineLoginClient, ConfigError> {
        if self.channel_id.is_empty() || !self.channel_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::InvalidChannelId(self.channel_id));
        }
        if self.channel_secret.as_ref().is_some_and(Secret::is_blank) {
            return Err(ConfigError::BlankChannelSecret);
        }
        let api_base =
            crate::config::parse_api_base(self.api_base.as_deref().unwrap_or(DEFAULT_API_BASE))?;
        let authorize = self
            .authorize_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_AUTHORIZE_ENDPOINT);
        let invalid = |reason| ConfigError::InvalidAuthorizeEndpoint {
            value: authorize.to_owned(),
            reason,
        };
        let authorize_endpoint =
            Url::parse(authorize).map_err(|_| invalid("not an absolute URL"))?;
        if !matches!(authorize_endpoint.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("timeout"));
        }
        crate::config::addable_to_the_clock("timeout", self.timeout)?;
        let http = match self.http_client {
            Some(client) => client,
            None => default_http_client(self.timeout).map_err(ConfigError::HttpClient)?,
        };
        Ok(LineLoginClient {
            transport: Transport::new(http, api_base),
            authorize_endpoint,
            channel_id: self.channel_id,
            channel_secret: self.channel_secret,
            timeout: self.timeout,
        })
    }
}

/// Parameters of the authorization URL.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthorizeRequest<'a> {
    /// Where LINE sends the user back with `code` and `state`.
    pub redirect_uri: &'a str,
    /// An unguessable value tied to the user's session, checked on the callback (CSRF).
    pub state: &'a str,
    /// Requested scopes, e.g. `["profile", "openid"]`.
    pub scopes: &'a [&'a str],
    /// A nonce for the ID token (replay protection), if `openid` is requested.
    pub nonce: Option<&'a str>,
    /// The PKCE pair, recommended.
    pub pkce: Option<&'a Pkce>,
}

impl<'a> AuthorizeRequest<'a> {
    /// An authorization request with the required parameters.
    pub fn new(redirect_uri: &'a str, state: &'a str, scopes: &'a [&'a str]) -> Self {
        Self {
            redirect_uri,
            state,
            scopes,
            nonce: None,
            pkce: None,
        }
    }

    /// With a nonce.
    pub fn nonce(mut self, nonce: &'a str) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// With PKCE (S256).
    pub fn pkce(mut self, pkce: &'a Pkce) -> Self {
        self.pkce = Some(pkce);
        self
    }
}

impl LineLoginClient {
    /// A client for `channel_id`.
    pub fn builder(channel_id: impl Into<String>) -> LineLoginClientBuilder {
        LineLoginClientBuilder {
            channel_id: channel_id.into(),
            channel_secret: None,
            api_base: None,
            authorize_endpoint: None,
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
            http_client: None,
        }
    }

    /// The channel ID.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The URL to send the user to for sign-in (response type `code`, scopes `%20`-separated).
    pub fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Url {
        let mut url = self.authorize_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.channel_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("state", request.state)
                .append_pair("scope", &request.scopes.join(" "));
            if let Some(nonce) = request.nonce {
                query.append_pair("nonce", nonce);
            }
            if let Some(pkce) = request.pkce {
                query
                    .append_pair("code_challenge", pkce.challenge())
                    .append_pair("code_challenge_method", "S256");
            }
        }
        // `url` encodes spaces in query values as `+`; LINE documents `%20` between scopes.
        let encoded = url.as_str().replace('+', "%20");
        Url::parse(&encoded).unwrap_or(url)
    }

    /// Exchanges the callback's `code` for tokens (`grant_type=authorization_code`), with the
    /// PKCE verifier if the authorization request had a challenge.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        pkce: Option<&Pkce>,
    ) -> Result<TokenSet, LineLoginError> {
        let issued_at = SystemTime::now();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &self.channel_id),
        ];
        form.extend(
            self.channel_secret
                .as_ref()
                .map(|s| ("client_secret", s.expose())),
        );
        form.extend(pkce.map(|pkce| ("code_verifier", pkce.verifier())));
        let answer: TokenAnswer = self.json(Call::Token { form: &form }).await?;
        token_set(answer, issued_at, issued_at + REFRESH_TOKEN_LIFETIME, None)
    }

    /// Refreshes the access token (`grant_type=refresh_token`). LINE returns the same refresh
    /// token, whose 90-day limit from the first issue stands, or none (then the one sent is kept,
    /// as LINE's Android SDK does), and no new ID token, so the previous one is kept; an answer
    /// without `scope` keeps the scopes granted before (RFC 6749 §6). An expired refresh token is
    /// [`LineLoginError::is_invalid_grant`].
    pub async fn refresh(&self, tokens: &TokenSet) -> Result<TokenSet, LineLoginError> {
        let issued_at = SystemTime::now();
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.secret()),
            ("client_id", &self.channel_id),
        ];
        form.extend(
            self.channel_secret
                .as_ref()
                .map(|s| ("client_secret", s.expose())),
        );
        let answer: TokenAnswer = self.json(Call::Token { form: &form }).await?;
        token_set(answer, issued_at, tokens.refresh_expires_at, Some(tokens))
    }

    /// Revokes an access token (`POST /oauth2/v2.1/revoke`). Unknown or already invalid tokens
    /// count as revoked (LINE may answer them 400, with an error saying the token is invalid);
    /// `invalid_client` (the channel secret missing or wrong), or any other error, is an error:
    /// the token may still be live.
    pub async fn revoke_access_token(&self, access_token: &str) -> Result<(), LineLoginError> {
        self.revoke(("access_token", access_token)).await
    }

    /// Revokes a refresh token and every access token issued from it (the form LINE's SDKs use).
    pub async fn revoke_refresh_token(&self, refresh_token: &str) -> Result<(), LineLoginError> {
        self.revoke(("refresh_token", refresh_token)).await
    }

    async fn revoke(&self, token: (&str, &str)) -> Result<(), LineLoginError> {
        let mut form = vec![token, ("client_id", &self.channel_id)];
        form.extend(
            self.channel_secret
                .as_ref()
                .map(|s| ("client_secret", s.expose())),
        );
        let answer = self.call(Call::Revoke { form: &form }).await?;
        if wire::revoked(answer.status, &answer.body) {
            Ok(())
        } else if answer.status.is_success() {
            Err(LineLoginError::InvalidResponse(wire::NOT_LINES_ANSWER))
        } else {
            Err(refusal(&answer))
        }
    }

    /// `GET /oauth2/v2.1/verify`: the token's channel, scopes and remaining lifetime. Check
    /// both yourself, as LINE's secure login process says: `client_id` is your channel and
    /// `expires_in` is above zero (or use [`LineAuthLayer`](crate::LineAuthLayer), which does).
    pub async fn verify_access_token(
        &self,
        access_token: &str,
    ) -> Result<AccessTokenInfo, LineLoginError> {
        self.json(Call::Verify { access_token }).await
    }

    /// `GET /v2/profile`.
    pub async fn profile(&self, access_token: &str) -> Result<Profile, LineLoginError> {
        self.json(Call::Profile { access_token }).await
    }

    /// `POST /oauth2/v2.1/verify` for an ID token: LINE checks signature, issuer, expiry,
    /// audience (this channel), and the nonce and user ID if given.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<IdTokenClaims, LineLoginError> {
        let mut form = vec![("id_token", id_token), ("client_id", &self.channel_id)];
        form.extend(nonce.map(|nonce| ("nonce", nonce)));
        form.extend(user_id.map(|user_id| ("user_id", user_id)));
        self.json(Call::VerifyIdToken { form: &form }).await
    }

    /// `GET /oauth2/v2.1/userinfo` (needs `openid`).
    pub async fn userinfo(&self, access_token: &str) -> Result<UserInfo, LineLoginError> {
        self.json(Call::UserInfo { access_token }).await
    }

    /// `GET /friendship/v1/status`: whether the user has added the channel's LINE Official
    /// Account as a friend and not blocked it.
    pub async fn friendship_status(&self, access_token: &str) -> Result<bool, LineLoginError> {
        let friendship: Friendship = self.json(Call::Friendship { access_token }).await?;
        Ok(friendship.friend_flag)
    }

    /// One try of `call` within the timeout.
    async fn call(&self, call: Call<'_>) -> Result<Answer, LineLoginError> {
        // `build` bounded the timeout, so the deadline cannot overflow.
        let deadline = clock::now() + self.timeout;
        self.transport
            .call(call, Retries::Never, deadline)
            .await
            .map_err(|error| match error {
                UpstreamError::InvalidBody(what) => LineLoginError::InvalidResponse(what),
                error => LineLoginError::Unavailable(error),
            })
    }

    /// A 2xx answer's body as `T`, or LINE's error as a typed error.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        call: Call<'_>,
    ) -> Result<T, LineLoginError> {
        let answer = self.call(call).await?;
        if !answer.status.is_success() {
            return Err(refusal(&answer));
        }
        answer
            .json()
            .ok_or(LineLoginError::InvalidResponse("unexpected JSON shape"))
    }
}

/// LINE's refusal as a typed error: its error body in either shape, or, with none, LINE
/// unavailable with the status it gave. A 429 or 5xx is LINE unavailable whatever its body, so
/// that its `Retry-After` reaches the caller (fact sheet §1).
fn refusal(answer: &Answer) -> LineLoginError {
    if is_try_later(answer.status) {
        return LineLoginError::Unavailable(answer.unavailable());
    }
    match answer.line_error() {
        Some(LineError::OAuth { error, description }) => LineLoginError::OAuth {
            status: answer.status,
            error,
            description,
        },
        Some(LineError::Message { message }) => LineLoginError::Message {
            status: answer.status,
            message,
        },
        None => LineLoginError::Unavailable(answer.unavailable()),
    }
}

/// The tokens of a token-endpoint answer. On a refresh, what LINE leaves out (the refresh token,
/// the ID token, the scopes) is what `held` holds.
fn token_set(
    answer: TokenAnswer,
    issued_at: SystemTime,
    refresh_expires_at: SystemTime,
    held: Option<&TokenSet>,
) -> Result<TokenSet, LineLoginError> {
    // LINE's Android SDK rejects anything but Bearer (fact sheet §3.3); the type is
    // case-insensitive (RFC 6749 §5.1).
    if !answer.token_type.eq_ignore_ascii_case("Bearer") {
        return Err(LineLoginError::InvalidResponse("token_type is not Bearer"));
    }
    let Some(refresh_token) = answer
        .refresh_token
        .or_else(|| held.map(|held| held.refresh_token.clone()))
    else {
        return Err(LineLoginError::InvalidResponse("no refresh_token"));
    };
    let scopes = match answer.scope.filter(|scope| !scope.trim().is_empty()) {
        Some(scope) => scope
            .split(' ')
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect(),
        // RFC 6749 §5.1: left out (or empty, as an empty token is none) when it is what was
        // requested; a refresh asks for the grant.
        None => held.map(|held| held.scopes.clone()).unwrap_or_default(),
    };
    Ok(TokenSet {
        access_token: answer.access_token,
        access_expires_at: issued_at + wire::lifetime(Duration::from_secs(answer.expires_in)),
        refresh_token,
        refresh_expires_at,
        id_token: answer
            .id_token
            .or_else(|| held.and_then(|held| held.id_token.clone())),
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCE verifier, and its challenge computed independently:
    /// base64url(hashlib.sha256(verifier)), unpadded.
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1qWkqH2qtMPL3bxKYA6Ga4xkM";
    const CHALLENGE: &str = "6bmPnqCSuqZuCNCqtX8e7_3rGfJBF_VbpbtV6vJsap8";

    /// A bad authorization endpoint is named as such, not as the API base, and must be http(s).
    #[test]
    fn a_bad_authorization_endpoint_is_refused_under_its_own_name() {
        for (endpoint, reason) in [
            ("notaurl", "not an absolute URL"),
            (
                "ftp://access.line.me/oauth2/v2.1/authorize",
                "the scheme must be http or https",
            ),
        ] {
            let error = LineLoginClient::builder("1234567890")
                .authorize_endpoint(endpoint)
                .build()
                .unwrap_err();
            assert_eq!(
                error,
                ConfigError::InvalidAuthorizeEndpoint {
                    value: endpoint.to_owned(),
                    reason,
                }
            );
            assert_eq!(
                error.to_string(),
                format!("invalid LINE authorization endpoint {endpoint:?}: {reason}")
            );
        }
    }

    /// A timeout is a configuration like the layer's (issue 12 item 13): none at all, or one so
    /// long that a deadline would overflow the clock, is refused by `build`, not met by a client
    /// that quietly waits on LINE for ever. The longest allowed builds.
    #[test]
    fn a_timeout_of_zero_or_past_any_clock_is_a_configuration_error() {
        let build = |timeout| {
            LineLoginClient::builder("1234567890")
                .timeout(timeout)
                .build()
                .map(|_| ())
        };
        assert_eq!(
            build(Duration::ZERO),
            Err(ConfigError::ZeroDuration("timeout"))
        );
        for too_long in [Duration::MAX, Duration::from_secs(101 * 365 * 24 * 60 * 60)] {
            assert_eq!(build(too_long), Err(ConfigError::TooLong("timeout")));
        }
        assert_eq!(build(Duration::from_secs(100 * 365 * 24 * 60 * 60)), Ok(()));
    }

    /// LINE's access tokens live 30 days; an `expires_in` too large to add to the clock is read
    /// as a long life rather than panicking in the caller's handler.
    #[test]
    fn an_expires_in_past_any_clock_is_read_as_a_long_life() {
        let answer: TokenAnswer = serde_json::from_str(&format!(
            r#"{{"access_token":"a","expires_in":{},"refresh_token":"r","token_type":"Bearer"}}"#,
            u64::MAX
        ))
        .unwrap();
        let now = SystemTime::now();
        let tokens = token_set(answer, now, now, None).unwrap();
        assert!(tokens.access_expires_at > now + Duration::from_secs(365 * 24 * 60 * 60));
    }

    /// An empty `scope` on a refresh is none, as an empty token is: the grant held stands.
    #[test]
    fn an_empty_scope_in_a_refresh_answer_keeps_the_grant() {
        let answer = |body: &str| serde_json::from_str::<TokenAnswer>(body).unwrap();
        let now = SystemTime::now();
        let held = token_set(
            answer(
                r#"{"access_token":"h","expires_in":5,"refresh_token":"r","token_type":"Bearer",
                    "scope":"profile openid"}"#,
            ),
            now,
            now,
            None,
        )
        .unwrap();
        let refreshed =
            answer(r#"{"access_token":"a","expires_in":5,"token_type":"Bearer","scope":" "}"#);
        let tokens = token_set(refreshed, now, now, Some(&held)).unwrap();
        assert_eq!(tokens.scopes, ["profile", "openid"]);
    }

    /// A margin past any clock means "refresh now", not a panic in the caller's handler.
    #[test]
    fn a_margin_past_any_clock_needs_a_refresh() {
        let answer: TokenAnswer = serde_json::from_str(
            r#"{"access_token":"a","expires_in":3600,"refresh_token":"r","token_type":"Bearer"}"#,
        )
        .unwrap();
        let now = SystemTime::now();
        let tokens = token_set(answer, now, now, None).unwrap();
        assert!(!tokens.needs_refresh(Duration::from_secs(60)));
        assert!(tokens.needs_refresh(Duration::from_secs(3600)));
        assert!(tokens.needs_refresh(Duration::MAX));
    }

    /// An empty token is none: a refresh answering `"refresh_token": ""` keeps the one held, as
    /// one leaving it out does (an empty one sent back would only earn `invalid_grant`), and an
    /// answer whose access token is empty is out of spec.
    #[test]
    fn an_empty_token_in_a_token_answer_is_no_token() {
        let answer = |body: &str| serde_json::from_str::<TokenAnswer>(body);
        let now = SystemTime::now();
        let refreshed = answer(
            r#"{"access_token":"a","expires_in":5,"refresh_token":"","id_token":"",
                "token_type":"Bearer"}"#,
        )
        .unwrap();
        let held = token_set(
            answer(
                r#"{"access_token":"h","expires_in":5,"refresh_token":"held-r",
                    "id_token":"held-id","token_type":"Bearer"}"#,
            )
            .unwrap(),
            now,
            now,
            None,
        )
        .unwrap();
        let tokens = token_set(refreshed, now, now, Some(&held)).unwrap();
        assert_eq!(tokens.refresh_token.secret(), "held-r");
        assert_eq!(
            tokens
                .id_token
                .map(|token| token.secret().to_owned())
                .as_deref(),
            Some("held-id")
        );

        let first = answer(
            r#"{"access_token":"a","expires_in":5,"refresh_token":"","token_type":"Bearer"}"#,
        );
        assert!(token_set(first.unwrap(), now, now, None).is_err());
        assert!(answer(
            r#"{"access_token":"","expires_in":5,"refresh_token":"r","token_type":"Bearer"}"#
        )
        .is_err());
    }

    #[test]
    fn pkce_challenge_is_base64url_of_the_verifiers_sha256() {
        let pkce = Pkce::from_verifier(VERIFIER).unwrap();
        assert_eq!(pkce.challenge(), CHALLENGE);
        assert!(Pkce::from_verifier("too-short").is_none());
        assert!(Pkce::from_verifier("a".repeat(43) + " ").is_none());
    }

    #[test]
    fn authorize_url_carries_every_parameter_with_scopes_space_encoded() {
        let client = LineLoginClient::builder("1234567890").build().unwrap();
        let pkce = Pkce::from_verifier(VERIFIER).unwrap();
        let url = client.authorize_url(
            &AuthorizeRequest::new(
                "https://app.example/callback",
                "st4te",
                &["profile", "openid"],
            )
            .nonce("n0nce")
            .pkce(&pkce),
        );
        assert!(url.as_str().starts_with(&format!("https://access.line.me/oauth2/v2.1/authorize?response_type=code&client_id=1234567890&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&state=st4te&scope=profile%20openid&nonce=n0nce&code_challenge={CHALLENGE}&code_challenge_method=S256")), "{url}");
    }

    #[test]
    fn a_blank_channel_secret_is_refused() {
        for blank in ["", "  "] {
            let built = LineLoginClient::builder("1").channel_secret(blank).build();
            assert!(
                matches!(built, Err(ConfigError::BlankChannelSecret)),
                "{blank:?}"
            );
        }
    }

    #[test]
    fn tokens_and_secrets_are_redacted() {
        let client = LineLoginClient::builder("1")
            .channel_secret("s3cr3t")
            .build()
            .unwrap();
        let token = Token::from("t0ken-value".to_owned());
        let shown = format!("{client:?} {token:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("t0ken"),
            "{shown}"
        );
        // What is not secret is shown: where the client calls, and for which channel.
        assert!(
            shown.contains("LineLoginClient")
                && shown.contains(r#"channel_id: "1""#)
                && shown.contains("https://api.line.me/"),
            "{shown}"
        );
    }

    /// A channel ID is LINE's: all digits, never empty (a LIFF ID or a name is a mistake).
    #[test]
    fn the_client_is_built_only_for_a_channel_id_of_digits() {
        for wrong in ["", "1234567890-AbCdEfGh", "line"] {
            assert!(
                matches!(
                    LineLoginClient::builder(wrong).build(),
                    Err(ConfigError::InvalidChannelId(id)) if id == wrong
                ),
                "{wrong:?}"
            );
        }
        let client = LineLoginClient::builder("1234567890").build().unwrap();
        assert_eq!(client.channel_id(), "1234567890");
    }

    #[test]
    fn needs_refresh_compares_against_the_absolute_expiry() {
        let now = SystemTime::now();
        let tokens = TokenSet {
            access_token: Token::from("a".to_owned()),
            access_expires_at: now + Duration::from_secs(600),
            refresh_token: Token::from("r".to_owned()),
            refresh_expires_at: now + Duration::from_secs(3600),
            id_token: None,
            scopes: vec![],
        };
        assert!(!tokens.needs_refresh(Duration::from_secs(60)));
        assert!(tokens.needs_refresh(Duration::from_secs(601)));
        assert!(!tokens.refresh_expired());
        let refresh_token_expired = TokenSet {
            refresh_expires_at: now - Duration::from_secs(1),
            ..tokens
        };
        assert!(refresh_token_expired.refresh_expired());
    }

    /// The challenge is sent in the authorization URL anyway; the verifier is the secret half.
    #[test]
    fn pkce_debug_shows_the_challenge_and_never_the_verifier() {
        let pkce = Pkce::from_verifier(VERIFIER).unwrap();
        let shown = format!("{pkce:?}");
        assert!(
            shown.contains("Pkce") && shown.contains(CHALLENGE),
            "{shown}"
        );
        assert!(!shown.contains(VERIFIER), "{shown}");
    }
}
