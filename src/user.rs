//! [`LineUser`]: the verified caller, and its extractors.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::rejection::LineAuthError;

/// A LINE user whose access token LINE has verified for one of the configured channels.
///
/// Cheap to clone (one reference count). Serializes with LINE's field names:
/// `{"userId", "displayName"?, "pictureUrl"?, "statusMessage"?, "channelId", "scopes", "expiresAt"}`,
/// where `scopes` is an array, `expiresAt` the token's expiry in Unix seconds, and a field marked
/// `?` is omitted when LINE gave none. A token without the `profile` scope (a LINE MINI App's
/// `openid`-only token) has a user ID and nothing else of the profile:
/// `{"userId": "U…", "channelId": "…", "scopes": ["openid"], "expiresAt": …}`.
///
/// The layer inserts a `LineUser` into the request's extensions once LINE has vouched for the
/// token. Handlers take it as an extractor:
///
/// - `LineUser`: rejects with 401 (RFC 6750 form) when there is none, e.g. in
///   [`optional`](crate::LineAuthLayer::optional) mode with no token, or on a route the layer does
///   not cover;
/// - `Option<LineUser>`: `None` for anonymous requests, never rejects.
///
/// ```
/// use line_auth::LineUser;
///
/// async fn me(user: LineUser) -> String {
///     format!("hello, {}", user.display_name().unwrap_or("LINE user"))
/// }
///
/// async fn greeting(user: Option<LineUser>) -> String {
///     match user {
///         Some(user) => format!("hello, {}", user.display_name().unwrap_or("LINE user")),
///         None => "hello, stranger".to_owned(),
///     }
/// }
/// # let _ = (me, greeting);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct LineUser(Arc<UserData>);

#[derive(PartialEq, Eq)]
struct UserData {
    user_id: Box<str>,
    display_name: Option<Box<str>>,
    picture_url: Option<Box<str>>,
    status_message: Option<Box<str>>,
    channel_id: Box<str>,
    /// Space-separated, as LINE sends them: one allocation however many scopes.
    scopes: Box<str>,
    /// Unix seconds: LINE's precision, in half the space of a `SystemTime`.
    expires_at: u64,
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn join_scopes<'a>(scopes: impl Iterator<Item = &'a str>) -> Box<str> {
    scopes
        .filter(|scope| !scope.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .into()
}

impl LineUser {
    pub(crate) fn new(
        profile: crate::line_api::Profile,
        verification: &crate::line_api::AccessTokenInfo,
        expires_at: SystemTime,
    ) -> Self {
        Self(Arc::new(UserData {
            user_id: profile.user_id.into(),
            display_name: Some(profile.display_name.into()),
            picture_url: profile.picture_url.map(Into::into),
            status_message: profile.status_message.map(Into::into),
            channel_id: verification.client_id.as_str().into(),
            scopes: join_scopes(verification.scopes()),
            expires_at: unix_seconds(expires_at),
        }))
    }

    /// For the crate's own tests: user `user_id` (display name `Brown`) of channel `1`, with the
    /// `profile` scope.
    #[cfg(test)]
    pub(crate) fn for_tests(user_id: &str) -> Self {
        let verification = crate::line_api::AccessTokenInfo {
            scope: Some("profile".into()),
            client_id: "1".into(),
            expires_in: 60,
        };
        let profile = crate::line_api::Profile {
            user_id: user_id.into(),
            display_name: "Brown".into(),
            picture_url: None,
            status_message: None,
        };
        Self::new(profile, &verification, SystemTime::now())
    }

    /// The user of a token without the `profile` scope, from `GET /oauth2/v2.1/userinfo`: `sub`,
    /// and `name` and `picture` where LINE gives them.
    pub(crate) fn from_userinfo(
        userinfo: crate::line_api::wire::UserInfo,
        verification: &crate::line_api::AccessTokenInfo,
        expires_at: SystemTime,
    ) -> Self {
        Self(Arc::new(UserData {
            user_id: userinfo.sub.into(),
            display_name: userinfo.name.map(Into::into),
            picture_url: userinfo.picture.map(Into::into),
            status_message: None,
            channel_id: verification.client_id.as_str().into(),
            scopes: join_scopes(verification.scopes()),
            expires_at: unix_seconds(expires_at),
        }))
    }

    /// The user an ID token describes: `sub`, `name`, `picture`, `aud`; its scopes are inferred
    /// from its claims (`openid` always, `profile` with a name, `email` with an email), since ID
    /// tokens carry no scope list; it expires with the token.
    pub(crate) fn from_id_token(claims: &crate::login::IdTokenClaims) -> Self {
        let mut scopes = vec!["openid"];
        if claims.name.is_some() {
            scopes.push("profile");
        }
        if claims.email.is_some() {
            scopes.push("email");
        }
        Self(Arc::new(UserData {
            user_id: claims.sub.as_str().into(),
            display_name: claims.name.as_deref().map(Into::into),
            picture_url: claims.picture.as_deref().map(Into::into),
            status_message: None,
            channel_id: claims.aud.as_str().into(),
            scopes: join_scopes(scopes.into_iter()),
            expires_at: claims.exp,
        }))
    }

    /// The user ID (`U` and 32 hex digits), unique per provider: the identity to key your data on.
    pub fn user_id(&self) -> &str {
        &self.0.user_id
    }

    /// The display name; absent when the token lacks the `profile` scope (a LINE MINI App's
    /// `openid`-only token, an ID token without `name`).
    pub fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    /// The profile image URL; absent when the user has none.
    pub fn picture_url(&self) -> Option<&str> {
        self.0.picture_url.as_deref()
    }

    /// The status message; absent when the user has none.
    pub fn status_message(&self) -> Option<&str> {
        self.0.status_message.as_deref()
    }

    /// The channel the token was issued for (one of the configured channels).
    pub fn channel_id(&self) -> &str {
        &self.0.channel_id
    }

    /// The scopes granted to the token. For an access token, as LINE lists them (never
    /// `email`); for an ID token, inferred from its claims (`email` when it has one).
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.0.scopes.split(' ').filter(|scope| !scope.is_empty())
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|granted| granted == scope)
    }

    /// When the access token expires, as LINE reported it.
    pub fn expires_at(&self) -> SystemTime {
        crate::line_api::wire::unix_time(self.0.expires_at)
    }
}

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
impl LineUser {
    /// Test kit (feature `testing`): builds a user, e.g. for
    /// [`LineAuthLayer::with_fixed_token`](crate::LineAuthLayer::with_fixed_token) or to insert
    /// into a request's extensions in handler tests. Defaults: display name `LINE User`, scope
    /// `profile`, no picture or status message, expiry in 30 days.
    pub fn builder(user_id: impl Into<String>, channel_id: impl Into<String>) -> LineUserBuilder {
        LineUserBuilder {
            user_id: user_id.into(),
            channel_id: channel_id.into(),
            display_name: Some("LINE User".to_owned()),
            picture_url: None,
            status_message: None,
            scopes: vec!["profile".to_owned()],
            expires_at: SystemTime::now() + Duration::from_secs(30 * 24 * 60 * 60),
        }
    }
}

/// Builder for a [`LineUser`] (test kit, feature `testing`).
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
#[derive(Debug, Clone)]
#[must_use]
pub struct LineUserBuilder {
    user_id: String,
    channel_id: String,
    display_name: Option<String>,
    picture_url: Option<String>,
    status_message: Option<String>,
    scopes: Vec<String>,
    expires_at: SystemTime,
}

#[cfg(feature = "testing")]
impl LineUserBuilder {
    /// The display name.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// No display name, as for a token without the `profile` scope.
    pub fn without_display_name(mut self) -> Self {
        self.display_name = None;
        self
    }

    /// The profile picture URL.
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }

    /// The status message.
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        self.status_message = Some(message.into());
        self
    }

    /// The granted scopes (replacing `profile`).
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// When the token expires.
    pub fn expires_at(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// The user.
    pub fn build(self) -> LineUser {
        LineUser(Arc::new(UserData {
            user_id: self.user_id.into(),
            display_name: self.display_name.map(Into::into),
            picture_url: self.picture_url.map(Into::into),
            status_message: self.status_message.map(Into::into),
            channel_id: self.channel_id.into(),
            scopes: join_scopes(self.scopes.iter().map(String::as_str)),
            expires_at: unix_seconds(self.expires_at),
        }))
    }
}

impl fmt::Debug for LineUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineUser")
            .field("user_id", &self.user_id())
            .field("display_name", &self.display_name())
            .field("channel_id", &self.channel_id())
            .field("scopes", &self.scopes().collect::<Vec<_>>())
            .field("expires_at", &self.expires_at())
            .finish_non_exhaustive()
    }
}

impl Serialize for LineUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let data = &self.0;
        let fields = 4
            + usize::from(data.display_name.is_some())
            + usize::from(data.picture_url.is_some())
            + usize::from(data.status_message.is_some());
        let mut out = serializer.serialize_struct("LineUser", fields)?;
        out.serialize_field("userId", &*data.user_id)?;
        match &data.display_name {
            Some(name) => out.serialize_field("displayName", &**name)?,
            None => out.skip_field("displayName")?,
        }
        match &data.picture_url {
            Some(url) => out.serialize_field("pictureUrl", &**url)?,
            None => out.skip_field("pictureUrl")?,
        }
        match &data.status_message {
            Some(message) => out.serialize_field("statusMessage", &**message)?,
            None => out.skip_field("statusMessage")?,
        }
        out.serialize_field("channelId", &*data.channel_id)?;
        out.serialize_field("scopes", &Scopes(self))?;
        let expires_at = self
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        out.serialize_field("expiresAt", &expires_at.as_secs())?;
        out.end()
    }
}

/// A [`LineUser`] as serialized, read back from the shared cache (feature `redis`). Not a public
/// `Deserialize`: a `LineUser` means "verified", so only the layer's own store may produce one.
#[cfg(feature = "redis")]
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SerializedUser {
    user_id: String,
    #[serde(default)]
    display_name: Option<String>,
    picture_url: Option<String>,
    status_message: Option<String>,
    channel_id: String,
    scopes: Vec<String>,
    expires_at: u64,
}

#[cfg(feature = "redis")]
impl From<SerializedUser> for LineUser {
    fn from(user: SerializedUser) -> Self {
        Self(Arc::new(UserData {
            user_id: user.user_id.into(),
            display_name: user.display_name.map(Into::into),
            picture_url: user.picture_url.map(Into::into),
            status_message: user.status_message.map(Into::into),
            channel_id: user.channel_id.into(),
            scopes: join_scopes(user.scopes.iter().map(String::as_str)),
            expires_at: user.expires_at,
        }))
    }
}

/// Serializes a user's scopes as a JSON array.
struct Scopes<'a>(&'a LineUser);

impl Serialize for Scopes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.scopes())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LineUser {
    type Rejection = LineAuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<LineUser>()
            .cloned()
            .ok_or(LineAuthError::MissingToken)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for LineUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<LineUser>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_test::{assert_ser_tokens, Token};

    fn user(profile: Option<(&str, &str, &str)>) -> LineUser {
        LineUser(Arc::new(UserData {
            user_id: "U1".into(),
            display_name: profile.map(|(name, _, _)| name.into()),
            picture_url: profile.map(|(_, url, _)| url.into()),
            status_message: profile.map(|(_, _, message)| message.into()),
            channel_id: "1234567890".into(),
            scopes: "profile openid".into(),
            expires_at: 1_800_000_000,
        }))
    }

    /// Serialized call by call: LINE's field names, absent fields skipped, and the field count
    /// announced up front matching the fields written (a serializer that writes a map's length
    /// first relies on it).
    #[test]
    fn a_user_serializes_lines_field_names_and_announces_its_field_count() {
        let tail = [
            Token::Str("channelId"),
            Token::Str("1234567890"),
            Token::Str("scopes"),
            Token::Seq { len: None },
            Token::Str("profile"),
            Token::Str("openid"),
            Token::SeqEnd,
            Token::Str("expiresAt"),
            Token::U64(1_800_000_000),
            Token::StructEnd,
        ];
        let full = [
            Token::Struct {
                name: "LineUser",
                len: 7,
            },
            Token::Str("userId"),
            Token::Str("U1"),
            Token::Str("displayName"),
            Token::Str("Brown"),
            Token::Str("pictureUrl"),
            Token::Str("https://profile.line-scdn.net/p"),
            Token::Str("statusMessage"),
            Token::Str("Hello"),
        ];
        let bare = [
            Token::Struct {
                name: "LineUser",
                len: 4,
            },
            Token::Str("userId"),
            Token::Str("U1"),
        ];
        assert_ser_tokens(
            &user(Some(("Brown", "https://profile.line-scdn.net/p", "Hello"))),
            &[&full[..], &tail].concat(),
        );
        assert_ser_tokens(&user(None), &[&bare[..], &tail].concat());
    }

    #[test]
    fn debug_shows_who_the_user_is() {
        let debug = format!("{:?}", user(Some(("Brown", "https://p", "Hello"))));
        for part in [
            "LineUser",
            r#"user_id: "U1""#,
            r#"display_name: Some("Brown")"#,
            r#"channel_id: "1234567890""#,
            r#"scopes: ["profile", "openid"]"#,
        ] {
            assert!(debug.contains(part), "{part} in {debug}");
        }
        let expires_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(
            debug.contains(&format!("expires_at: {expires_at:?}")),
            "{debug}"
        );
    }

    /// The test kit's user lives, by default, as long as a LINE access token: 30 days.
    #[cfg(feature = "testing")]
    #[test]
    fn a_built_user_expires_in_30_days_by_default() {
        let thirty_days = Duration::from_secs(30 * 86_400);
        let before = SystemTime::now();
        let user = LineUser::builder("U1", "1234567890").build();
        let after = SystemTime::now();
        // Held in whole seconds, so up to a second short of 30 days from the build.
        let expires_at = user.expires_at();
        assert!(
            expires_at > before + thirty_days - Duration::from_secs(1)
                && expires_at <= after + thirty_days,
            "{expires_at:?}"
        );
    }

    /// A signed ID token's `exp` is the user's expiry; one too large for the clock is read as the
    /// latest time it can hold, not a panic.
    #[test]
    fn an_expiry_past_any_clock_is_read_as_the_latest_one() {
        let claims: crate::login::IdTokenClaims = serde_json::from_str(&format!(
            r#"{{"iss":"https://access.line.me","sub":"U1","aud":"1","exp":{},"iat":0}}"#,
            u64::MAX
        ))
        .unwrap();
        let user = LineUser::from_id_token(&claims);
        assert!(user.expires_at() > SystemTime::now() + Duration::from_secs(1000 * 365 * 86_400));
    }
}
