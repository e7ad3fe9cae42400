//! The emulator's sign-in side (<https://developers.line.biz/en/reference/line-login/#issue-access-token>): the authorization endpoint (auto-consent),
//! the token endpoint (both grants, PKCE S256), ID tokens (HS256, signed with the channel secret,
//! as for web login) and their verification by LINE, userinfo and friendship status.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::faults::Endpoint;
use super::handlers::{bearer_profile, injected_fault, message_error, oauth_error, OAuthForm};
use super::tokens::{scope_value, IssueToken};
use super::Shared;

/// Authorization codes live 10 minutes and are single use (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Access tokens: 30 days, `expires_in: 2592000` (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Refresh tokens: 90 days from the first issue, never extended (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// ID tokens: one hour (<https://developers.line.biz/en/reference/line-login/#issue-access-token>).
const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// The OIDC issuer (<https://developers.line.biz/en/reference/line-login/#verify-id-token>).
pub(crate) const ISSUER: &str = "https://access.line.me";

/// Who the authorization endpoint signs in, with automatic consent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EmulatedUser {
    /// The user ID (`U` + 32 hex digits).
    pub user_id: String,
    /// The display name.
    pub display_name: String,
    /// The picture URL, if any.
    pub picture_url: Option<String>,
    /// Whether the user has added the channel's LINE Official Account as a friend.
    pub friend: bool,
    /// The email address, if any: the ID token's `email` claim when the `email` scope was
    /// granted.
    pub email: Option<String>,
}

impl EmulatedUser {
    /// A user with this ID and display name, no picture, not a friend.
    pub fn new(user_id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            display_name: display_name.into(),
            picture_url: None,
            friend: false,
            email: None,
        }
    }

    /// With a picture URL.
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }

    /// As a friend of the channel's LINE Official Account, or not.
    pub fn friend(mut self, friend: bool) -> Self {
        self.friend = friend;
        self
    }

    /// With an email address, which the ID token carries when the `email` scope is granted.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

impl Default for EmulatedUser {
    fn default() -> Self {
        Self::new("U1234567890abcdef1234567890abcdef", "LINE User")
    }
}

struct CodeRecord {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    user: EmulatedUser,
    expires_at: Instant,
    used: bool,
}

struct RefreshRecord {
    client_id: String,
    scopes: Vec<String>,
    user: EmulatedUser,
    expires_at: Instant,
    revoked: bool,
    access_tokens: Vec<String>,
}

struct IdTokenRecord {
    claims: Map<String, Value>,
    expires_at: Instant,
}

/// The sign-in state: channels' secrets, codes, refresh tokens, issued ID tokens.
#[derive(Default)]
pub(crate) struct LoginState {
    inner: Mutex<LoginInner>,
}

#[derive(Default)]
struct LoginInner {
    /// ES256 keys by `kid`, all published at `/certs`; the last one signs.
    signing_keys: Vec<(String, SigningKey)>,
    secrets: HashMap<String, String>,
    /// Channels whose app types are not the default.
    channel_types: HashMap<String, ChannelType>,
    sign_in_as: Option<EmulatedUser>,
    codes: HashMap<String, CodeRecord>,
    refresh_tokens: HashMap<String, RefreshRecord>,
    id_tokens: HashMap<String, IdTokenRecord>,
    /// Refresh answers leave `refresh_token` out, as LINE's Android SDK allows.
    refresh_omits_refresh_token: bool,
}

impl LoginState {
    pub(crate) fn set_refresh_omits_refresh_token(&self, omit: bool) {
        self.lock().refresh_omits_refresh_token = omit;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoginInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn register_channel(&self, channel_id: &str, secret: &str) {
        self.lock()
            .secrets
            .insert(channel_id.to_owned(), secret.to_owned());
    }

    pub(crate) fn set_channel_type(&self, channel_id: &str, channel_type: ChannelType) {
        self.lock()
            .channel_types
            .insert(channel_id.to_owned(), channel_type);
    }

    /// LINE's refusal of a caller whose `client_secret` is missing or wrong, where `need` says
    /// the channel secret is required; `None` lets the call through (a secret that is not
    /// required is ignored, wrong or not).
    pub(crate) fn refuse_client(
        &self,
        channel_id: &str,
        given: Option<&str>,
        need: SecretNeed,
    ) -> Option<Response> {
        let login = self.lock();
        let required = match need {
            SecretNeed::Always => true,
            SecretNeed::IfWebAppOnly => {
                login
                    .channel_types
                    .get(channel_id)
                    .copied()
                    .unwrap_or_default()
                    == ChannelType::WebAppOnly
            }
        };
        let expected = login
            .secrets
            .get(channel_id)
            .cloned()
            .unwrap_or_else(|| default_channel_secret(channel_id));
        // LINE documents no error for a missing or wrong secret at these endpoints
        // (UNCONFIRMED): the OAuth shape with `invalid_client`, and the text LINE documents for
        // a wrong secret at the same host's channel-token endpoint, for both.
        (required && given != Some(expected.as_str()))
            .then(|| oauth_error("invalid_client", "invalid client_secret"))
    }

    pub(crate) fn sign_in_as(&self, user: EmulatedUser) {
        self.lock().sign_in_as = Some(user);
    }

    pub(crate) fn expire_refresh_token(&self, refresh_token: &str) -> bool {
        self.lock()
            .refresh_tokens
            .get_mut(refresh_token)
            .map(|record| record.expires_at = Instant::now())
            .is_some()
    }

    pub(crate) fn expire_id_token(&self, id_token: &str) -> bool {
        self.lock()
            .id_tokens
            .get_mut(id_token)
            .map(|record| record.expires_at = Instant::now())
            .is_some()
    }

    /// Adds a new ES256 signing key (the previous ones stay published) and returns its `kid`.
    pub(crate) fn rotate_signing_key(&self) -> String {
        let (kid, key) = new_signing_key();
        self.lock().signing_keys.push((kid.clone(), key));
        kid
    }

    /// Stops publishing the key `kid` and signing with it; whether it was published.
    pub(crate) fn retire_signing_key(&self, kid: &str) -> bool {
        let mut login = self.lock();
        let before = login.signing_keys.len();
        login.signing_keys.retain(|(published, _)| published != kid);
        login.signing_keys.len() < before
    }

    /// The JWK set of every signing key (<https://developers.line.biz/en/docs/line-login/verify-id-token/>).
    pub(crate) fn jwks(&self) -> Value {
        let mut login = self.lock();
        ensure_signing_key(&mut login);
        let keys: Vec<Value> = login
            .signing_keys
            .iter()
            .map(|(kid, key)| {
                let point = key.verifying_key().to_sec1_point(false);
                let coordinate = |c: Option<&p256::FieldBytes>| {
                    c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default()
                };
                json!({
                    "kty": "EC", "alg": "ES256", "use": "sig", "kid": kid, "crv": "P-256",
                    "x": coordinate(point.x()), "y": coordinate(point.y()),
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Issues an ID token as LINE would for `request`, and remembers it for `POST /verify`.
    pub(crate) fn issue_id_token(&self, request: IssueIdToken) -> String {
        let mut login = self.lock();
        let mut scopes = vec!["openid".to_owned()];
        if request.name.is_some() {
            scopes.push("profile".into());
        }
        if request.email.is_some() {
            scopes.push("email".into());
        }
        let user = EmulatedUser {
            user_id: request.user_id,
            display_name: request.name.unwrap_or_default(),
            picture_url: request.picture_url,
            friend: false,
            email: request.email,
        };
        let signer = match request.algorithm {
            IdTokenAlgorithm::Es256 => {
                ensure_signing_key(&mut login);
                let (kid, key) = login
                    .signing_keys
                    .last()
                    .cloned()
                    .expect("a signing key exists");
                IdTokenSigner::Es256 { kid, key }
            }
            IdTokenAlgorithm::Hs256 => IdTokenSigner::Hs256(
                login
                    .secrets
                    .get(&request.channel_id)
                    .cloned()
                    .unwrap_or_else(|| default_channel_secret(&request.channel_id)),
            ),
        };
        let (token, record) = id_token(
            &IdTokenContent {
                client_id: &request.channel_id,
                user: &user,
                scopes: &scopes,
                nonce: request.nonce.as_deref(),
                amr: request.amr.as_deref(),
                issued_at: request.issued_at.unwrap_or_else(SystemTime::now),
                lifetime: request.lifetime,
            },
            &signer,
        );
        login.id_tokens.insert(token.clone(), record);
        token
    }

    /// The channel `refresh_token` was issued for, if it is one of the emulator's.
    pub(crate) fn refresh_token_channel(&self, refresh_token: &str) -> Option<String> {
        Some(
            self.lock()
                .refresh_tokens
                .get(refresh_token)?
                .client_id
                .clone(),
        )
    }

    /// Ends every refresh token `user_id` holds for `channel_id`: the user unlinked the app.
    pub(crate) fn revoke_user_refresh_tokens(&self, channel_id: &str, user_id: &str) {
        for record in self.lock().refresh_tokens.values_mut() {
            if record.client_id == channel_id && record.user.user_id == user_id {
                record.revoked = true;
            }
        }
    }

    /// Revokes a refresh token and every access token issued from it; returns those.
    pub(crate) fn revoke_refresh_token(&self, refresh_token: &str) -> Vec<String> {
        match self.lock().refresh_tokens.get_mut(refresh_token) {
            Some(record) => {
                record.revoked = true;
                record.access_tokens.clone()
            }
            None => Vec::new(),
        }
    }

    /// The channel secret (registered, or one derived from the channel ID) that signs HS256 ID
    /// tokens for the channel.
    pub(crate) fn channel_secret(&self, channel_id: &str) -> String {
        self.lock()
            .secrets
            .get(channel_id)
            .cloned()
            .unwrap_or_else(|| default_channel_secret(channel_id))
    }
}

/// LINE sends the browser back with a 302 (`Found`).
fn found(location: &url::Url) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.as_str().to_owned())],
    )
        .into_response()
}

/// The secret of a channel nobody registered: deterministic, so tests can verify its ID tokens.
pub(crate) fn default_channel_secret(channel_id: &str) -> String {
    format!("emulator-channel-secret-{channel_id}")
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `GET /oauth2/v2.1/authorize` (on `access.line.me` at LINE): consents at once for the
/// signed-in user and redirects to `redirect_uri` with a single-use code and the `state`.
pub(super) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| query.get(name).filter(|value| !value.is_empty());
    let (Some(client_id), Some(redirect_uri), Some(state), Some(scope)) = (
        param("client_id"),
        param("redirect_uri"),
        param("state"),
        param("scope"),
    ) else {
        return message_error(
            StatusCode::BAD_REQUEST,
            "client_id, redirect_uri, state and scope are required",
        );
    };
    let mut redirect = match url::Url::parse(redirect_uri) {
        Ok(url) => url,
        Err(_) => return message_error(StatusCode::BAD_REQUEST, "invalid redirect_uri"),
    };
    let refuse = |mut redirect: url::Url, error: &str| {
        redirect
            .query_pairs_mut()
            .append_pair("error", error)
            .append_pair("state", state);
        found(&redirect)
    };
    if param("response_type").map(String::as_str) != Some("code") {
        return refuse(redirect, "unsupported_response_type");
    }
    let code_challenge = param("code_challenge").cloned();
    if code_challenge.is_some()
        && param("code_challenge_method").map(String::as_str) != Some("S256")
    {
        // LINE supports only S256 (fact sheet §3.3).
        return refuse(redirect, "invalid_request");
    }
    let code = Alphanumeric.sample_string(&mut rand::rng(), 20);
    let mut login = shared.login.lock();
    let user = login.sign_in_as.clone().unwrap_or_default();
    login.codes.insert(
        code.clone(),
        CodeRecord {
            client_id: client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            scopes: scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            nonce: param("nonce").cloned(),
            code_challenge,
            user,
            expires_at: Instant::now() + CODE_LIFETIME,
            used: false,
        },
    );
    drop(login);
    redirect
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    found(&redirect)
}

/// `POST /oauth2/v2.1/token`, both grants (<https://developers.line.biz/en/reference/line-login/#issue-access-token>). Error texts for the code grant are
/// the third-party observations the fact sheet lists; LINE does not document them.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    OAuthForm(form): OAuthForm,
) -> Response {
    if let Some(faulty) = injected_fault(&shared, Endpoint::Token).await {
        return faulty;
    }
    let param = |name: &str| form.get(name).filter(|value| !value.is_empty());
    let Some(client_id) = param("client_id") else {
        return oauth_error("invalid_request", "client_id is required");
    };
    // The code exchange always takes the channel secret; refresh only for channels whose app
    // types are "Web app" only, and it ignores the secret otherwise (LINE Login reference).
    let (need, answer): (SecretNeed, GrantAnswer) = match param("grant_type").map(String::as_str) {
        Some("authorization_code") => (SecretNeed::Always, exchange_code),
        Some("refresh_token") => (SecretNeed::IfWebAppOnly, refresh),
        _ => {
            return oauth_error(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
    };
    let secret = param("client_secret").map(String::as_str);
    if let Some(refused) = shared.login.refuse_client(client_id, secret, need) {
        return refused;
    }
    answer(&shared, client_id, &form)
}

/// A grant's answer to the token endpoint's form, for a `client_id` already let through.
type GrantAnswer = fn(&Shared, &str, &HashMap<String, String>) -> Response;

/// When LINE asks a caller for the channel secret.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecretNeed {
    /// Always (the code exchange).
    Always,
    /// Only for channels whose app types are "Web app" only (refresh and revoke).
    IfWebAppOnly,
}

fn exchange_code(shared: &Shared, client_id: &str, form: &HashMap<String, String>) -> Response {
    let (Some(code), Some(redirect_uri)) = (form.get("code"), form.get("redirect_uri")) else {
        return oauth_error("invalid_request", "code and redirect_uri are required");
    };
    let mut login = shared.login.lock();
    let Some(record) = login.codes.get_mut(code) else {
        return oauth_error("invalid_grant", "invalid authorization code");
    };
    if record.used || Instant::now() >= record.expires_at || record.client_id != client_id {
        return oauth_error("invalid_grant", "invalid authorization code");
    }
    record.used = true;
    if record.redirect_uri != *redirect_uri {
        return oauth_error("invalid_grant", "redirect_uri does not match");
    }
    if let Some(challenge) = &record.code_challenge {
        // 43 to 128 unreserved characters, the format LINE's PKCE page and RFC 7636 §4.1 give.
        // LINE's answer to another is undocumented; `invalid_grant` is RFC 7636 §4.6's, even
        // for one that hashes to the challenge.
        let verified = form.get("code_verifier").is_some_and(|verifier| {
            (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
        });
        if !verified {
            return oauth_error("invalid_grant", "invalid code_verifier");
        }
    }
    let (scopes, user, nonce) = (
        record.scopes.clone(),
        record.user.clone(),
        record.nonce.clone(),
    );
    let refresh_token = Alphanumeric.sample_string(&mut rand::rng(), 20);
    let access_token = issue_access_token(shared, client_id, &scopes, &user);
    login.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshRecord {
            client_id: client_id.to_owned(),
            scopes: scopes.clone(),
            user: user.clone(),
            expires_at: Instant::now() + REFRESH_TOKEN_LIFETIME,
            revoked: false,
            access_tokens: vec![access_token.clone()],
        },
    );
    let mut body = json!({
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(),
        "refresh_token": refresh_token,
        "scope": scope_value(&scopes),
        "token_type": "Bearer",
    });
    // An ID token only with `openid` (fact sheet §3.3).
    if scopes.iter().any(|scope| scope == "openid") {
        let secret = login
            .secrets
            .get(client_id)
            .cloned()
            .unwrap_or_else(|| default_channel_secret(client_id));
        let signer = IdTokenSigner::Hs256(secret);
        let (id_token, record) = id_token(
            &IdTokenContent {
                client_id,
                user: &user,
                scopes: &scopes,
                nonce: nonce.as_deref(),
                // Web login with a password. Which method LINE reports for a sign-in is
                // UNCONFIRMED; `pwd` is the one its example shows.
                amr: Some(&["pwd".to_owned()]),
                issued_at: SystemTime::now(),
                lifetime: ID_TOKEN_LIFETIME,
            },
            &signer,
        );
        login.id_tokens.insert(id_token.clone(), record);
        body["id_token"] = Value::String(id_token);
    }
    Json(body).into_response()
}

fn refresh(shared: &Shared, client_id: &str, form: &HashMap<String, String>) -> Response {
    let invalid = || oauth_error("invalid_grant", "invalid refresh token");
    let Some(refresh_token) = form.get("refresh_token").filter(|token| !token.is_empty()) else {
        return oauth_error("invalid_request", "refresh_token is required");
    };
    let mut login = shared.login.lock();
    let Some(record) = login.refresh_tokens.get_mut(refresh_token) else {
        return invalid();
    };
    if record.revoked || Instant::now() >= record.expires_at || record.client_id != client_id {
        return invalid();
    }
    let access_token = issue_access_token(shared, client_id, &record.scopes, &record.user);
    record.access_tokens.push(access_token.clone());
    // The same refresh token, its limit unchanged; no ID token (fact sheet §3.3 (b)).
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scope_value(&record.scopes),
        "access_token": access_token,
        "expires_in": ACCESS_TOKEN_LIFETIME.as_secs(),
        "refresh_token": refresh_token,
    });
    if login.refresh_omits_refresh_token {
        body.as_object_mut()
            .map(|fields| fields.remove("refresh_token"));
    }
    Json(body).into_response()
}

fn issue_access_token(
    shared: &Shared,
    client_id: &str,
    scopes: &[String],
    user: &EmulatedUser,
) -> String {
    let mut request = IssueToken::new(client_id)
        .scopes(scopes.iter().cloned())
        .lifetime(ACCESS_TOKEN_LIFETIME)
        .user_id(&user.user_id)
        .display_name(&user.display_name)
        .friend(user.friend);
    if let Some(url) = &user.picture_url {
        request = request.picture_url(url);
    }
    shared.tokens.issue(request)
}

/// A LINE Login channel's app types, as set in the LINE Developers Console: they decide whether
/// refresh and revoke require the channel secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChannelType {
    /// The app types include "Mobile app" (the default): refresh and revoke take
    /// `client_secret` optionally, and ignore it.
    #[default]
    IncludesMobileApp,
    /// "Web app" only: refresh and revoke require the channel's `client_secret`, and refuse
    /// the call with `invalid_client` when it is missing or wrong.
    WebAppOnly,
}

/// How an ID token is signed (<https://developers.line.biz/en/docs/line-login/verify-id-token/>): ES256 with a published key (native apps, LIFF),
/// HS256 with the channel secret and no `kid` (web login).
enum IdTokenSigner {
    Es256 { kid: String, key: SigningKey },
    Hs256(String),
}

fn new_signing_key() -> (String, SigningKey) {
    let mut rng = rand::rng();
    let key = loop {
        let bytes: [u8; 32] = rand::RngExt::random(&mut rng);
        // Almost every 32-byte string is a valid P-256 scalar; retry the rare one that is not.
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            break key;
        }
    };
    // LINE's `kid`s are 64 hex digits (fact sheet §3.8).
    let kid: String = (0..4)
        .map(|_| format!("{:016x}", rand::RngExt::random::<u64>(&mut rng)))
        .collect();
    (kid, key)
}

fn ensure_signing_key(login: &mut LoginInner) {
    if login.signing_keys.is_empty() {
        login.signing_keys.push(new_signing_key());
    }
}

/// What an ID token says: LINE's claims (<https://developers.line.biz/en/reference/line-login/#verify-id-token>), each only where it applies.
struct IdTokenContent<'a> {
    client_id: &'a str,
    user: &'a EmulatedUser,
    /// The granted scopes: `profile` brings `name` and `picture`, `email` brings `email`.
    scopes: &'a [String],
    nonce: Option<&'a str>,
    /// How the user authenticated; `None` leaves `amr` out, as in LIFF's ID tokens.
    amr: Option<&'a [String]>,
    issued_at: SystemTime,
    lifetime: Duration,
}

/// A signed ID token (<https://developers.line.biz/en/reference/line-login/#verify-id-token>'s claims).
fn id_token(content: &IdTokenContent<'_>, signer: &IdTokenSigner) -> (String, IdTokenRecord) {
    let IdTokenContent {
        client_id,
        user,
        scopes,
        nonce,
        amr,
        issued_at,
        lifetime,
    } = *content;
    let granted = |wanted: &str| scopes.iter().any(|scope| scope == wanted);
    let iat = unix_seconds(issued_at);
    let mut claims = Map::new();
    claims.insert("iss".into(), ISSUER.into());
    claims.insert("sub".into(), user.user_id.clone().into());
    claims.insert("aud".into(), client_id.into());
    claims.insert("exp".into(), (iat + lifetime.as_secs()).into());
    claims.insert("iat".into(), iat.into());
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some(amr) = amr {
        claims.insert("amr".into(), json!(amr));
    }
    if granted("profile") {
        claims.insert("name".into(), user.display_name.clone().into());
        if let Some(url) = &user.picture_url {
            claims.insert("picture".into(), url.clone().into());
        }
    }
    if granted("email") {
        if let Some(email) = &user.email {
            claims.insert("email".into(), email.clone().into());
        }
    }
    let header = match signer {
        IdTokenSigner::Es256 { kid, .. } => json!({"typ": "JWT", "alg": "ES256", "kid": kid}),
        IdTokenSigner::Hs256(_) => json!({"typ": "JWT", "alg": "HS256"}),
    };
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = match signer {
        IdTokenSigner::Es256 { key, .. } => {
            // JWS ES256: the raw 64-byte r || s (RFC 7518 §3.4).
            let signature: Signature = key.sign(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        }
        IdTokenSigner::Hs256(secret) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes keys of any length");
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
    };
    let left = (issued_at + lifetime)
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    let record = IdTokenRecord {
        claims,
        expires_at: Instant::now() + left,
    };
    (format!("{signing_input}.{signature}"), record)
}

/// `GET /oauth2/v2.1/certs`: the keys ES256 ID tokens are signed with (<https://developers.line.biz/en/docs/line-login/verify-id-token/>).
pub(super) async fn certs(State(shared): State<Arc<Shared>>) -> Response {
    shared.certs_calls.fetch_add(1, Ordering::Relaxed);
    if let Some(faulty) = injected_fault(&shared, Endpoint::Certs).await {
        return faulty;
    }
    Json(shared.login.jwks()).into_response()
}

/// How the emulator signs an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenAlgorithm {
    /// ES256 with the key published at `/oauth2/v2.1/certs`: native apps, LIFF.
    Es256,
    /// HS256 with the channel secret, no `kid`: web login.
    Hs256,
}

/// An ID token to issue directly, as `liff.getIDToken()` would hand one to an app.
#[derive(Debug, Clone)]
#[must_use]
pub struct IssueIdToken {
    channel_id: String,
    user_id: String,
    name: Option<String>,
    picture_url: Option<String>,
    nonce: Option<String>,
    email: Option<String>,
    amr: Option<Vec<String>>,
    issued_at: Option<SystemTime>,
    lifetime: Duration,
    algorithm: IdTokenAlgorithm,
}

impl IssueIdToken {
    /// An ES256 ID token for `user_id` on `channel_id`, valid one hour, with neither `profile`
    /// claims nor `amr`: what `liff.getIDToken()` hands a LIFF app.
    pub fn new(channel_id: impl Into<String>, user_id: impl Into<String>) -> Self {
        Self {
            channel_id: channel_id.into(),
            user_id: user_id.into(),
            name: None,
            picture_url: None,
            nonce: None,
            email: None,
            amr: None,
            issued_at: None,
            lifetime: ID_TOKEN_LIFETIME,
            algorithm: IdTokenAlgorithm::Es256,
        }
    }

    /// With the `profile` claims: a name (and the `profile` scope it implies).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// With a picture URL (shown only with a name).
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }

    /// With a nonce.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// With the `email` claim (and the `email` scope it implies).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With an `amr` claim: how the user authenticated, among the values LINE documents
    /// (`pwd`, `lineautologin`, `lineqr`, `linesso`, `mfa`). Without this call the token has no
    /// `amr`, as LINE's own LIFF ID tokens have none: LINE includes it only where it applies.
    pub fn amr<I>(mut self, methods: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.amr = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// Valid this long from its issue time (a zero lifetime issues an expired token).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Issued at `at` instead of now (`iat`; `exp` follows with the lifetime): a token that
    /// expired long ago, or one from an issuer whose clock runs ahead.
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.issued_at = Some(at);
        self
    }

    /// Signed this way (default ES256).
    pub fn algorithm(mut self, algorithm: IdTokenAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }
}

/// `POST /oauth2/v2.1/verify` for ID tokens, checked in the fact sheet's table order, with
/// LINE's exact error descriptions (§3.5).
pub(super) async fn verify_id_token(
    State(shared): State<Arc<Shared>>,
    OAuthForm(form): OAuthForm,
) -> Response {
    if let Some(faulty) = injected_fault(&shared, Endpoint::VerifyIdToken).await {
        return faulty;
    }
    let invalid = |description: &str| oauth_error("invalid_request", description);
    let (Some(id_token), Some(client_id)) = (form.get("id_token"), form.get("client_id")) else {
        return invalid("id_token and client_id are required");
    };
    let login = shared.login.lock();
    let Some(record) = login.id_tokens.get(id_token) else {
        return invalid("Invalid IdToken.");
    };
    let claim = |name: &str| record.claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(ISSUER) {
        return invalid("Invalid IdToken Issuer.");
    }
    if Instant::now() >= record.expires_at {
        return invalid("IdToken expired.");
    }
    if claim("aud") != Some(client_id.as_str()) {
        return invalid("Invalid IdToken Audience.");
    }
    if let Some(nonce) = form.get("nonce") {
        if claim("nonce") != Some(nonce.as_str()) {
            return invalid("Invalid IdToken Nonce.");
        }
    }
    if let Some(user_id) = form.get("user_id") {
        if claim("sub") != Some(user_id.as_str()) {
            return invalid("Invalid IdToken Subject Identifier.");
        }
    }
    Json(Value::Object(record.claims.clone())).into_response()
}

/// `GET`/`POST /oauth2/v2.1/userinfo` (<https://developers.line.biz/en/reference/line-login/#userinfo>): needs `openid`; `name` and `picture`
/// only with `profile`.
pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.userinfo_calls.fetch_add(1, Ordering::Relaxed);
    if let Some(faulty) = injected_fault(&shared, Endpoint::UserInfo).await {
        return faulty;
    }
    let (profile, scopes) = match bearer_profile(&shared, &headers, "openid") {
        Ok(found) => found,
        Err((status, message)) => return message_error(status, &message),
    };
    let mut body = Map::new();
    body.insert("sub".into(), profile.user_id.into());
    if scopes.iter().any(|scope| scope == "profile") {
        body.insert("name".into(), profile.display_name.into());
        if let Some(url) = profile.picture_url {
            body.insert("picture".into(), url.into());
        }
    }
    Json(Value::Object(body)).into_response()
}

/// `GET /friendship/v1/status` (<https://developers.line.biz/en/reference/line-login/#get-friendship-status>): needs `profile`.
pub(super) async fn friendship(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(faulty) = injected_fault(&shared, Endpoint::Friendship).await {
        return faulty;
    }
    match bearer_profile(&shared, &headers, "profile") {
        Ok((profile, _)) => Json(json!({"friendFlag": profile.friend})).into_response(),
        Err((status, message)) => message_error(status, &message),
    }
}
