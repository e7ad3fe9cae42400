//! The emulator's tokens: minting, per-token state, and LINE's answers about them.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngExt;

/// LINE Login v2.1 access tokens live 30 days (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Header of every LINE access token: `{"alg":"HS256"}` (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const JWS_HEADER: &str = "eyJhbGciOiJIUzI1NiJ9";

/// What to issue: a channel, scopes, a lifetime and the profile behind the token.
///
/// ```
/// use std::time::Duration;
/// use line_auth_emulator::IssueToken;
///
/// let request = IssueToken::new("1234567890")
///     .scopes(["profile", "openid"])
///     .lifetime(Duration::from_secs(2))
///     .user_id("U4af4980629aabbccddeeff0011223344")
///     .display_name("Brown")
///     .picture_url("https://profile.line-scdn.net/abcdefghijklmn");
/// # let _ = request;
/// ```
#[derive(Clone)]
#[must_use]
pub struct IssueToken {
    channel_id: String,
    scopes: Vec<String>,
    lifetime: Duration,
    user_id: Option<String>,
    display_name: String,
    picture_url: Option<String>,
    status_message: Option<String>,
    friend: bool,
    value: Option<String>,
}

/// Shows no token value set with [`IssueToken::token_value`]: a test's failure output is logged.
impl std::fmt::Debug for IssueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssueToken")
            .field("channel_id", &self.channel_id)
            .field("scopes", &self.scopes)
            .field("lifetime", &self.lifetime)
            .field("user_id", &self.user_id)
            .field("display_name", &self.display_name)
            .field("picture_url", &self.picture_url)
            .field("status_message", &self.status_message)
            .field("friend", &self.friend)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl IssueToken {
    /// A 30-day token for `channel_id` with the `profile` scope and a generated user.
    pub fn new(channel_id: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            scopes: vec!["profile".to_owned()],
            lifetime: ACCESS_TOKEN_LIFETIME,
            user_id: None,
            display_name: "LINE User".to_owned(),
            picture_url: None,
            status_message: None,
            friend: false,
            value: None,
        }
    }

    /// The granted scopes (replacing `profile`). `email` is kept but, as at LINE, never listed
    /// in a `scope` answer. `["openid"]` alone is a LINE MINI App's token under channel consent
    /// simplification: `GET /v2/profile` refuses it, userinfo answers its `sub`.
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How long the token lives from now.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The user ID (default: a random `U` + 32 hex digits, LINE's format).
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// The display name (default `LINE User`).
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = name.into();
        self
    }

    /// The profile picture URL (default none, and then absent from the profile).
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }

    /// The status message (default none, and then absent from the profile).
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }

    /// Whether the user has added the channel's LINE Official Account as a friend (default no),
    /// for `GET /friendship/v1/status`.
    pub fn friend(mut self, friend: bool) -> Self {
        self.friend = friend;
        self
    }

    /// Issues exactly this token string instead of minting a JWS, e.g. an opaque v2.0-style
    /// value with `+`, `/` and `=`.
    pub fn token_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }
}

/// The profile the emulator serves for a token.
#[derive(Debug, Clone)]
pub(crate) struct EmulatedProfile {
    pub(crate) user_id: String,
    pub(crate) display_name: String,
    pub(crate) picture_url: Option<String>,
    pub(crate) status_message: Option<String>,
    pub(crate) friend: bool,
}

struct TokenRecord {
    channel_id: String,
    scopes: Vec<String>,
    expires_at: Instant,
    revoked: bool,
    /// The form of the `POST /oauth2/v2.1/revoke` that revoked it, if one did.
    revocation: Option<Revocation>,
    profile: EmulatedProfile,
}

/// What a client sent to `POST /oauth2/v2.1/revoke` for a token. Its `Debug` does not show the
/// secret (a failed `assert_eq!` prints it into CI logs).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The `client_id` sent.
    pub client_id: String,
    /// The `client_secret` sent, if any.
    pub client_secret: Option<String>,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why LINE refuses a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotJws,
    Expired,
    Revoked,
}

impl Refusal {
    /// `error_description` of `GET /oauth2/v2.1/verify` (<https://developers.line.biz/en/reference/line-login/#verify-access-token>, 2026 wording).
    pub(crate) fn verify_description(self) -> &'static str {
        match self {
            Self::NotJws => "The access token not JWS",
            Self::Expired => "The access token expired",
            Self::Revoked => "The access token revoked",
        }
    }
}

/// The `scope` LINE answers for `scopes`: space-separated, and never listing `email`, even when
/// it was granted (the token still carries it: it decides the ID token's `email` claim).
pub(crate) fn scope_value(scopes: &[String]) -> String {
    scopes
        .iter()
        .map(String::as_str)
        .filter(|scope| *scope != "email")
        .collect::<Vec<_>>()
        .join(" ")
}

/// A valid token, as the verify and profile endpoints describe it.
pub(crate) struct Grant {
    pub(crate) channel_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_in: u64,
    pub(crate) profile: EmulatedProfile,
}

#[derive(Default)]
pub(crate) struct TokenStore {
    tokens: Mutex<HashMap<String, TokenRecord>>,
}

impl TokenStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TokenRecord>> {
        self.tokens.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn issue(&self, request: IssueToken) -> String {
        let mut rng = rand::rng();
        let value = request.value.unwrap_or_else(|| {
            let payload = format!(
                r#"{{"iss":"line-auth-emulator","jti":"{:032x}"}}"#,
                rng.random::<u128>()
            );
            let signature: [u8; 32] = rng.random();
            format!(
                "{JWS_HEADER}.{}.{}",
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode(signature)
            )
        });
        let user_id = request
            .user_id
            .unwrap_or_else(|| format!("U{:032x}", rng.random::<u128>()));
        let record = TokenRecord {
            channel_id: request.channel_id,
            scopes: request.scopes,
            expires_at: Instant::now() + request.lifetime,
            revoked: false,
            revocation: None,
            profile: EmulatedProfile {
                user_id,
                display_name: request.display_name,
                picture_url: request.picture_url,
                status_message: request.status_message,
                friend: request.friend,
            },
        };
        self.lock().insert(value.clone(), record);
        value
    }

    pub(crate) fn expire(&self, token: &str) -> bool {
        self.lock()
            .get_mut(token)
            .map(|record| record.expires_at = Instant::now())
            .is_some()
    }

    pub(crate) fn revoke(&self, token: &str) -> bool {
        self.lock()
            .get_mut(token)
            .map(|record| record.revoked = true)
            .is_some()
    }

    /// Revokes through the revoke endpoint, remembering what the client sent.
    pub(crate) fn revoke_with(&self, token: &str, revocation: Revocation) {
        if let Some(record) = self.lock().get_mut(token) {
            record.revoked = true;
            record.revocation = Some(revocation);
        }
    }

    /// Ends every access token `user_id` holds for `channel_id`: the user unlinked the app.
    pub(crate) fn revoke_user(&self, channel_id: &str, user_id: &str) {
        for record in self.lock().values_mut() {
            if record.channel_id == channel_id && record.profile.user_id == user_id {
                record.revoked = true;
            }
        }
    }

    /// The channel `token` was issued for, if it is one of the emulator's.
    pub(crate) fn channel_of(&self, token: &str) -> Option<String> {
        Some(self.lock().get(token)?.channel_id.clone())
    }

    pub(crate) fn revocation(&self, token: &str) -> Option<Revocation> {
        self.lock().get(token)?.revocation.clone()
    }

    /// What LINE knows of `token` now.
    pub(crate) fn inspect(&self, token: &str) -> Result<Grant, Refusal> {
        let tokens = self.lock();
        let record = tokens.get(token).ok_or(Refusal::NotJws)?;
        if record.revoked {
            return Err(Refusal::Revoked);
        }
        let remaining = record.expires_at.saturating_duration_since(Instant::now());
        // `expires_in` is whole seconds; a token with under a second left reads as expired.
        if remaining.as_secs() == 0 {
            return Err(Refusal::Expired);
        }
        Ok(Grant {
            channel_id: record.channel_id.clone(),
            scopes: record.scopes.clone(),
            expires_in: remaining.as_secs(),
            profile: record.profile.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_a_set_token_nor_a_client_secret() {
        let shown = format!("{:?}", IssueToken::new("1").token_value("s3cr3t-token"));
        assert!(
            !shown.contains("s3cr3t") && shown.contains("<redacted>"),
            "{shown}"
        );
        let revocation = Revocation {
            client_id: "1".into(),
            client_secret: Some("s3cr3t-secret".into()),
        };
        let shown = format!("{revocation:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
