//! LINE Login's JSON, once: the answers of every endpoint this crate calls, and LINE's two error
//! bodies. Unknown fields are ignored everywhere (<https://developers.line.biz/en/reference/line-login/>: LINE may add properties).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer};

/// A token LINE issued; its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// The token itself, to send to LINE or store encrypted.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The longest life read from an `expires_in`: far beyond any LINE token's (access tokens live 30
/// days, refresh tokens 90), and short enough to add to any clock. A larger value is read as this,
/// rather than overflow the clock it is added to.
const LONGEST_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A token's life as LINE gives it (an `expires_in`, or the time left until an ID token's
/// `exp`), at most [`LONGEST_LIFETIME`].
pub(crate) fn lifetime(given: Duration) -> Duration {
    given.min(LONGEST_LIFETIME)
}

/// The latest Unix time read from LINE: 9999-12-31T23:59:59Z, which every platform's clock holds.
const LATEST_UNIX_SECONDS: u64 = 253_402_300_799;

/// A Unix time from LINE in seconds (an ID token's `exp`), at most the end of year 9999.
pub(crate) fn unix_time(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds.min(LATEST_UNIX_SECONDS))
}

/// A number of seconds as LINE's SDKs read one: LINE sends whole seconds, but its iOS SDK reads
/// `expires_in` as a `TimeInterval` (a double), and RFC 7519 §2 lets a JWT's NumericDate be
/// fractional. A fraction is dropped (toward zero, so no life is read longer than given), and a
/// value past `i64` saturates, as an integer past it does.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    Ok(match (number.as_i64(), number.as_u64(), number.as_f64()) {
        (Some(whole), _, _) => whole,
        (None, Some(_), _) => i64::MAX,
        // `as` truncates toward zero and saturates.
        (None, None, fractional) => fractional.unwrap_or_default() as i64,
    })
}

/// [`seconds`] where a negative value is out of spec: a lifetime, or a Unix time.
fn unsigned_seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    match (number.as_u64(), number.as_f64()) {
        (Some(whole), _) => Ok(whole),
        (None, Some(fractional)) if fractional >= 0.0 => Ok(fractional as u64),
        (None, fractional) => Err(D::Error::invalid_value(
            Unexpected::Float(fractional.unwrap_or_default()),
            &"a number of seconds, not negative",
        )),
    }
}

/// A user ID: LINE's are `U` and 32 hex digits (fact sheet §1). One that is empty, or holds a
/// space, a control character or anything beyond visible ASCII, is read as an answer out of spec,
/// as one without the field is: never a user that every such answer would share, whose ID could
/// forge a log line, or who differs from the same user read elsewhere by a trailing space. Other
/// visible shapes are read as given, since only LINE decides its format.
fn user_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let id = non_empty(deserializer, "a user ID")?;
    if !id.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(D::Error::invalid_value(
            Unexpected::Other("a user ID with a space, a control or a non-ASCII character"),
            &"a user ID",
        ));
    }
    Ok(id)
}

/// A token from the token endpoint, which LINE never sends empty: an empty one is an answer out
/// of spec, not a token to hand out.
fn token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Token, D::Error> {
    Ok(Token(non_empty(deserializer, "a token")?))
}

/// An optional token: an empty one (or `null`) is none, as the field's absence, so a refresh
/// keeps the one held rather than replace it with nothing.
fn optional_token<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Token>, D::Error> {
    let token = Option::<String>::deserialize(deserializer)?;
    Ok(token.filter(|token| !token.is_empty()).map(Token))
}

/// A string LINE never sends empty; an empty one is refused as `expected`.
fn non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
    expected: &str,
) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Err(D::Error::invalid_value(Unexpected::Str(""), &expected));
    }
    Ok(text)
}

/// `POST /oauth2/v2.1/token`'s answer, both grants (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(deserialize_with = "token")]
    pub(crate) access_token: Token,
    #[serde(deserialize_with = "unsigned_seconds")]
    pub(crate) expires_in: u64,
    /// Optional on a refresh: LINE's reference says the same one comes back, LINE's Android SDK
    /// reads it as "a new one only if the current one must be replaced" and keeps the old one
    /// otherwise, as [`token_set`](crate::login) does.
    #[serde(default, deserialize_with = "optional_token")]
    pub(crate) refresh_token: Option<Token>,
    #[serde(default, deserialize_with = "optional_token")]
    pub(crate) id_token: Option<Token>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    pub(crate) token_type: String,
}

/// `GET /oauth2/v2.1/verify`'s answer (<https://developers.line.biz/en/reference/line-login/#verify-access-token>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenInfo {
    /// Granted scopes, space-separated; never lists `email`. May be absent ("not always
    /// included" for channel access tokens).
    #[serde(default)]
    pub scope: Option<String>,
    /// The channel the token was issued for: a JSON string of digits, never a number.
    pub client_id: String,
    /// Seconds left at the time of the call (a fractional answer is read in whole seconds).
    #[serde(deserialize_with = "seconds")]
    pub expires_in: i64,
}

impl AccessTokenInfo {
    /// The granted scopes, one by one.
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }
}

/// `GET /v2/profile`'s answer (<https://developers.line.biz/en/reference/line-login/#get-user-profile>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Profile {
    /// The user ID, never empty.
    #[serde(deserialize_with = "user_id")]
    pub user_id: String,
    /// The display name.
    pub display_name: String,
    /// The picture URL, absent if the user has none.
    #[serde(default)]
    pub picture_url: Option<String>,
    /// The status message, absent if the user has none.
    #[serde(default)]
    pub status_message: Option<String>,
}

/// The claims of a valid ID token, as `POST /oauth2/v2.1/verify` returns them and as the token
/// itself carries them (<https://developers.line.biz/en/reference/line-login/#verify-id-token>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct IdTokenClaims {
    /// Always `https://access.line.me`.
    pub iss: String,
    /// The user ID, never empty.
    #[serde(deserialize_with = "user_id")]
    pub sub: String,
    /// The channel ID.
    pub aud: String,
    /// Expiry, Unix seconds (a fractional one is read in whole seconds).
    #[serde(deserialize_with = "unsigned_seconds")]
    pub exp: u64,
    /// Issue time, Unix seconds (a fractional one is read in whole seconds).
    #[serde(deserialize_with = "unsigned_seconds")]
    pub iat: u64,
    /// The nonce of the authorization request, if one was sent.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Authentication methods, when LINE includes them.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub amr: Vec<String>,
    /// Display name, with the `profile` scope.
    #[serde(default)]
    pub name: Option<String>,
    /// Picture URL, with the `profile` scope.
    #[serde(default)]
    pub picture: Option<String>,
    /// Email, with the `email` scope.
    #[serde(default)]
    pub email: Option<String>,
}

/// A list LINE may send as `null`: read as empty, as when it leaves the claim out (the fact sheet
/// documents it as optional, not its `null`).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

/// `/oauth2/v2.1/userinfo`'s answer (<https://developers.line.biz/en/reference/line-login/#userinfo>).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// The user ID, never empty.
    #[serde(deserialize_with = "user_id")]
    pub sub: String,
    /// Display name, with the `profile` scope.
    #[serde(default)]
    pub name: Option<String>,
    /// Picture URL, with the `profile` scope.
    #[serde(default)]
    pub picture: Option<String>,
}

/// `GET /friendship/v1/status`'s answer (<https://developers.line.biz/en/reference/line-login/#get-friendship-status>).
#[derive(Deserialize)]
pub(crate) struct Friendship {
    #[serde(rename = "friendFlag")]
    pub(crate) friend_flag: bool,
}

/// An error body from LINE, in either of its two shapes (<https://developers.line.biz/en/reference/line-login/>), read as LINE's iOS SDK
/// reads them: the OAuth shape first, then the REST one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// Shape A, `/oauth2/v2.1/*`: `{"error", "error_description"}`.
    OAuth {
        error: String,
        description: Option<String>,
    },
    /// Shape B, REST endpoints: `{"message"}`.
    Message { message: String },
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct MessageErrorBody {
    message: String,
}

impl LineError {
    /// The error `body` holds, if it is one of LINE's two shapes.
    pub(crate) fn read(body: &[u8]) -> Option<Self> {
        if let Ok(oauth) = serde_json::from_slice::<OAuthErrorBody>(body) {
            return Some(Self::OAuth {
                error: oauth.error,
                description: oauth.error_description,
            });
        }
        serde_json::from_slice::<MessageErrorBody>(body)
            .ok()
            .map(|rest| Self::Message {
                message: rest.message,
            })
    }
}

/// Whether LINE's answer to `POST /oauth2/v2.1/revoke` means the token is no longer live (fact
/// sheet §3.4): a 2xx revoked it, and an error saying the token is already invalid means there
/// was nothing left to revoke. Any other error is not success (issue 14): the token may still be
/// live at LINE, so it is reported, not taken as done. "Already invalid" is what LINE's iOS SDK
/// reads a 400 as, and its own test answers a bare `invalid_request`, so that counts; otherwise
/// the error must say it: `invalid_token` or `invalid_grant`, or a text naming an expired,
/// revoked or invalid token (LINE documents no body, so any wording of that is taken). An error
/// naming the client (`invalid_client`, a missing or wrong `client_secret`) never counts, nor
/// does an answer that names nothing (an empty body, a proxy's page).
pub(crate) fn revoked(status: StatusCode, body: &[u8]) -> bool {
    if status.is_success() {
        // LINE's success is an empty body; an HTML page is a proxy's or a captive portal's,
        // and an error body is no success whatever the status.
        return !is_html_page(body) && LineError::read(body).is_none();
    }
    match LineError::read(body) {
        // RFC 6750's status for an invalid token is 401; its error code says it either way.
        Some(LineError::OAuth { error, .. }) if status == StatusCode::UNAUTHORIZED => {
            error == "invalid_token"
        }
        Some(LineError::OAuth { error, description }) if status == StatusCode::BAD_REQUEST => {
            match description.as_deref() {
                None if error == "invalid_request" => true,
                description => says_the_token_is_invalid(&error, description),
            }
        }
        Some(LineError::Message { message }) if status == StatusCode::BAD_REQUEST => {
            let details = message_details(body);
            !details.iter().any(|text| names_the_client(text))
                && says_the_token_is_invalid("", Some(&message))
        }
        _ => false,
    }
}

/// The wording of a revoke answered 2xx with an HTML page or an error body: not LINE's answer.
pub(crate) const NOT_LINES_ANSWER: &str = "a 2xx with an HTML page or an error, not LINE's answer";

/// Whether `body` is an HTML page (what a proxy or a captive portal answers in LINE's stead).
fn is_html_page(body: &[u8]) -> bool {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    body.trim_ascii_start().first() == Some(&b'<')
}

/// The texts of a `{"message"}` error's optional `details` (fact sheet §1), each entry's
/// `message` and `property`; none where it has none, or not in that form.
fn message_details(body: &[u8]) -> Vec<String> {
    #[derive(Deserialize)]
    struct Details {
        details: Vec<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        property: Option<String>,
    }
    serde_json::from_slice::<Details>(body)
        .map(|read| {
            read.details
                .into_iter()
                .flat_map(|detail| [detail.message, detail.property])
                .flatten()
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an error text is about the calling client (its ID or secret), not the token.
fn names_the_client(text: &str) -> bool {
    text.to_ascii_lowercase().contains("client")
}

/// Whether an error text is about the caller (its client, its channel or its secret).
fn names_the_caller(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["client", "channel", "secret"]
        .iter()
        .any(|word| text.contains(word))
}

/// Whether an error (its OAuth code, if any, and its text) says the token is what is wrong.
fn says_the_token_is_invalid(error: &str, description: Option<&str>) -> bool {
    if matches!(error, "invalid_token" | "invalid_grant") {
        return true;
    }
    // `invalid_client`, `unauthorized_client`: the caller, whatever the text says.
    if error.contains("client") {
        return false;
    }
    description.is_some_and(|description| {
        if names_the_caller(description) {
            return false;
        }
        let description = description.to_ascii_lowercase();
        // States only a token has here, whether or not the text says "token".
        if ["revoked", "expired"]
            .iter()
            .any(|word| description.contains(word))
        {
            return true;
        }
        // Otherwise the token must be named, as a word or as the parameter carrying it; not
        // `token_type_hint`, which is the call's.
        let names_the_token = description
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| matches!(word, "token" | "access_token" | "refresh_token"));
        names_the_token
            && [
                "invalid",
                "not valid",
                "unknown",
                "not found",
                "not jws",
                "malformed",
            ]
            .iter()
            .any(|word| description.contains(word))
    })
}

/// The OAuth error LINE refused a revoke with, if it named one; a refusal of the client named
/// otherwise (a `{"message"}` about it, in its text or its `details`, or a 401, RFC 6749's status
/// for a client that failed to authenticate) is named by a fixed phrase, not LINE's free text.
pub(crate) fn revoke_refusal(status: StatusCode, body: &[u8]) -> Option<String> {
    const OF_THE_CLIENT: &str = "a refusal of the client";
    match LineError::read(body) {
        Some(LineError::OAuth { error, .. }) => Some(error),
        Some(LineError::Message { message })
            if names_the_client(&message)
                || message_details(body)
                    .iter()
                    .any(|text| names_the_client(text)) =>
        {
            Some(OF_THE_CLIENT.to_owned())
        }
        _ if status == StatusCode::UNAUTHORIZED => Some(OF_THE_CLIENT.to_owned()),
        Some(LineError::Message { .. }) | None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_token_claims_read_a_null_optional_claim_as_absent() {
        let claims: IdTokenClaims = serde_json::from_str(
            r#"{"iss":"https://access.line.me","sub":"U1","aud":"1","exp":2,"iat":1,
                "nonce":null,"amr":null,"name":null,"picture":null,"email":null}"#,
        )
        .unwrap();
        assert!(claims.amr.is_empty() && claims.nonce.is_none() && claims.name.is_none());
        let claims: IdTokenClaims = serde_json::from_str(
            r#"{"iss":"https://access.line.me","sub":"U1","aud":"1","exp":2,"iat":1,"amr":["pwd"]}"#,
        )
        .unwrap();
        assert_eq!(claims.amr, ["pwd"]);
    }

    /// A user ID is an identity handlers compare, store and log: LINE's are `U` and 32 hex
    /// digits (fact sheet §1), so one with a space, a control character or anything beyond
    /// visible ASCII is an answer out of spec (503), never a user. Other visible shapes are
    /// read as given, since only LINE decides its format.
    #[test]
    fn a_user_id_is_visible_ascii_without_spaces_wherever_it_is_read() {
        let profile = |id: &str| {
            serde_json::from_value::<Profile>(
                serde_json::json!({"userId": id, "displayName": "Brown"}),
            )
            .map(|profile| profile.user_id)
        };
        let userinfo = |id: &str| {
            serde_json::from_value::<UserInfo>(serde_json::json!({"sub": id})).map(|info| info.sub)
        };
        let claims = |id: &str| {
            serde_json::from_value::<IdTokenClaims>(serde_json::json!({
                "iss": "https://access.line.me", "sub": id, "aud": "1", "exp": 2, "iat": 1
            }))
            .map(|claims| claims.sub)
        };
        for read in [&profile as &dyn Fn(&str) -> _, &userinfo, &claims] {
            for kept in ["U8189cf6745fc0d808977bdb0b9f22995", "U1", "U4af4980629..."] {
                assert_eq!(read(kept).unwrap(), kept);
            }
            for refused in [
                "",
                " ",
                "U 1",
                " U1",
                "U8189cf6745fc0d808977bdb0b9f22995 ",
                "U81\n89",
                "U1\t",
                "U1\u{7f}",
                "U1\u{0}",
                "U\u{ff21}1",
            ] {
                assert!(read(refused).is_err(), "{refused:?}");
            }
        }
    }

    #[test]
    fn verification_ignores_unknown_fields_and_tolerates_missing_scope() {
        let parsed: AccessTokenInfo =
            serde_json::from_str(r#"{"client_id":"1","expires_in":5,"new_field":[1]}"#).unwrap();
        assert_eq!(parsed.scopes().count(), 0);
        let parsed: AccessTokenInfo =
            serde_json::from_str(r#"{"scope":"profile  openid","client_id":"1","expires_in":5}"#)
                .unwrap();
        assert_eq!(parsed.scopes().collect::<Vec<_>>(), ["profile", "openid"]);
    }

    /// LINE's iOS SDK reads `expires_in` as a `TimeInterval` (a double): a fractional one is read
    /// in whole seconds, its fraction dropped; one past the type's range saturates, as an integer
    /// past it does not overflow. A negative lifetime is no token's.
    #[test]
    fn a_fractional_expires_in_is_read_in_whole_seconds() {
        let verified = |expires_in: &str| {
            serde_json::from_str::<AccessTokenInfo>(&format!(
                r#"{{"client_id":"1","expires_in":{expires_in}}}"#
            ))
            .map(|info| info.expires_in)
            .ok()
        };
        assert_eq!(verified("3600.75"), Some(3600));
        assert_eq!(verified("-0.5"), Some(0));
        assert_eq!(verified("-7"), Some(-7));
        assert_eq!(verified("1e30"), Some(i64::MAX));
        assert_eq!(verified("18446744073709551615"), Some(i64::MAX));
        assert_eq!(
            verified(r#""3600""#),
            None,
            "a string is not a number of seconds"
        );

        let issued = |expires_in: &str| {
            serde_json::from_str::<TokenAnswer>(&format!(
                r#"{{"access_token":"a","expires_in":{expires_in},"token_type":"Bearer"}}"#
            ))
            .map(|answer| answer.expires_in)
            .ok()
        };
        assert_eq!(issued("2592000.9"), Some(2_592_000));
        assert_eq!(issued("1e30"), Some(u64::MAX));
        assert_eq!(issued("-1"), None);
        assert_eq!(issued("-0.5"), None);
    }

    /// A user ID LINE sends empty is no user's: the answer is out of spec, as without the field.
    #[test]
    fn an_empty_user_id_is_no_user() {
        let profile = |body: &str| serde_json::from_str::<Profile>(body).ok();
        assert!(profile(r#"{"userId":"U1","displayName":"Brown"}"#).is_some());
        assert!(profile(r#"{"userId":"","displayName":"Brown"}"#).is_none());
        assert!(serde_json::from_str::<UserInfo>(r#"{"sub":"U1"}"#).is_ok());
        assert!(serde_json::from_str::<UserInfo>(r#"{"sub":""}"#).is_err());
    }

    #[test]
    fn client_id_must_be_a_string() {
        // LINE sends the channel ID as a JSON string (fact sheet §1); a number is out of spec.
        assert!(
            serde_json::from_slice::<AccessTokenInfo>(br#"{"client_id":1,"expires_in":5}"#)
                .is_err()
        );
    }

    #[test]
    fn profile_optional_fields_may_be_absent() {
        let profile: Profile =
            serde_json::from_str(r#"{"userId":"Uabc","displayName":"Brown","language":"en"}"#)
                .unwrap();
        assert!(profile.picture_url.is_none() && profile.status_message.is_none());
    }

    #[test]
    fn error_bodies_are_read_in_either_shape_oauth_first() {
        assert_eq!(
            LineError::read(br#"{"error":"invalid_grant","error_description":"expired"}"#),
            Some(LineError::OAuth {
                error: "invalid_grant".into(),
                description: Some("expired".into())
            })
        );
        assert_eq!(
            LineError::read(br#"{"error":"invalid_request","message":"m"}"#),
            Some(LineError::OAuth {
                error: "invalid_request".into(),
                description: None
            })
        );
        assert_eq!(
            LineError::read(br#"{"message":"The access token expired"}"#),
            Some(LineError::Message {
                message: "The access token expired".into()
            })
        );
        for junk in [&b"<html>"[..], br#"{"error":1}"#, b"", br#"{"details":[]}"#] {
            assert_eq!(LineError::read(junk), None);
        }
    }

    #[test]
    fn a_revoke_is_done_on_2xx_and_on_an_error_saying_the_token_is_already_invalid() {
        for (status, body, revoked_it) in [
            (200, "", true),
            (204, "", true),
            (200, "{}", true),
            (200, "OK", true),
            (
                200,
                " <html><body>Sign in to the Wi-Fi</body></html>",
                false,
            ),
            (
                200,
                "\u{feff}<html><body>a proxy's page</body></html>",
                false,
            ),
            // An error on a 2xx is no success either.
            (200, r#"{"error":"invalid_client"}"#, false),
            (200, r#"{"message":"client_secret is required"}"#, false),
            // An error about the caller (its client, channel or secret), whatever the words.
            (
                400,
                r#"{"error":"unauthorized_client","error_description":"channel revoked"}"#,
                false,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"channel secret expired"}"#,
                false,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"request already in progress"}"#,
                false,
            ),
            // What LINE's iOS SDK test answers for a token already invalid, and reads as done.
            (400, r#"{"error":"invalid_request"}"#, true),
            // An error about the call, not the token (issue 14): LINE refused the caller.
            (
                400,
                r#"{"error":"invalid_request","error_description":"client_id is required"}"#,
                false,
            ),
            // A word about validity is about the token only when the token is what it names.
            (
                400,
                r#"{"error":"invalid_request","error_description":"invalid client_id"}"#,
                false,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"token_type_hint is not supported"}"#,
                false,
            ),
            // The parameter named, not the token: the call was refused, the token stays live.
            (
                400,
                r#"{"error":"invalid_request","error_description":"Invalid token_type_hint"}"#,
                false,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"invalid refresh_token"}"#,
                true,
            ),
            (400, r#"{"error":"invalid_token"}"#, true),
            (
                400,
                r#"{"error":"invalid_request","error_description":"The access token expired"}"#,
                true,
            ),
            // Verify's text for a token that is no LINE token, and the channel-token revoke's
            // (fact sheet §3.1): nothing to revoke, so nothing left live.
            (
                400,
                r#"{"error":"invalid_request","error_description":"The access token not JWS"}"#,
                true,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"The access token malformed"}"#,
                true,
            ),
            // "Already invalid" in other words (issue 14: only that is success).
            (
                400,
                r#"{"error":"invalid_request","error_description":"already revoked"}"#,
                true,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"unknown access token"}"#,
                true,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"The access token is not valid"}"#,
                true,
            ),
            (
                400,
                r#"{"error":"invalid_request","error_description":"client_secret expired"}"#,
                false,
            ),
            (
                401,
                r#"{"error":"invalid_token","error_description":"The access token expired"}"#,
                true,
            ),
            (401, r#"{"error":"invalid_client"}"#, false),
            // Only a 400 (or a 401 `invalid_token`) says so: not a 403, a 404 or a 5xx.
            (403, r#"{"error":"invalid_request"}"#, false),
            (
                500,
                r#"{"error":"invalid_request","error_description":"The access token revoked"}"#,
                false,
            ),
            // An answer that names no error, or none about the token: not done.
            (400, "", false),
            (400, "<html>", false),
            (400, r#"{"message":"Bad Request"}"#, false),
            (400, r#"{"message":"invalid token"}"#, true),
            (400, r#"{"message":"The access token expired"}"#, true),
            (401, r#"{"message":"The access token expired"}"#, false),
            (400, r#"{"message":"client_secret is required"}"#, false),
            (400, r#"{"message":"Invalid client_id"}"#, false),
            (
                400,
                r#"{"message":"The access token expired","details":[{"property":"client_secret"}]}"#,
                false,
            ),
            (
                400,
                r#"{"message":"The access token expired","details":"client"}"#,
                true,
            ),
            (400, r#"{"error":"invalid_client"}"#, false),
            (400, r#"{"error":"unauthorized_client"}"#, false),
            (401, r#"{"error":"invalid_request"}"#, false),
            (500, r#"{"message":"Internal server error"}"#, false),
            (302, "", false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                revoked(status, body.as_bytes()),
                revoked_it,
                "{status} {body}"
            );
        }
    }

    /// Only an error naming the client, or a 401, blames the caller's credentials: a
    /// `{"message"}` that does not (a proxy's 403, say) leaves the answer to be read as LINE
    /// unavailable.
    #[test]
    fn a_revoke_refusal_names_an_oauth_error_or_the_client() {
        assert_eq!(
            revoke_refusal(StatusCode::BAD_REQUEST, br#"{"error":"invalid_client"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(
            revoke_refusal(
                StatusCode::BAD_REQUEST,
                br#"{"message":"client_secret is required"}"#
            )
            .as_deref(),
            Some("a refusal of the client")
        );
        assert_eq!(
            revoke_refusal(
                StatusCode::BAD_REQUEST,
                br#"{"message":"The request body has 1 error(s)","details":[{"message":"is required","property":"client_secret"}]}"#
            )
            .as_deref(),
            Some("a refusal of the client")
        );
        assert_eq!(
            revoke_refusal(StatusCode::BAD_REQUEST, br#"{"message":"Forbidden"}"#),
            None
        );
        assert_eq!(revoke_refusal(StatusCode::BAD_REQUEST, b"<html>"), None);
        assert_eq!(
            revoke_refusal(StatusCode::UNAUTHORIZED, b"").as_deref(),
            Some("a refusal of the client")
        );
        assert_eq!(revoke_refusal(StatusCode::FORBIDDEN, b""), None);
    }
}
