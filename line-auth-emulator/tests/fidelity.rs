//! The emulator answers as LINE documents (fact sheet §1, §3, §8), over real HTTP.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use line_auth_emulator::{
    ChannelType, EmulatedUser, Endpoint, Fault, IssueIdToken, IssueToken, LineEmulator,
};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};

const CHANNEL: &str = "1234567890";

/// An emulator and a few shorthands for it.
struct Line {
    emulator: LineEmulator,
}

impl Line {
    async fn start() -> Self {
        Self {
            emulator: LineEmulator::start().await.unwrap(),
        }
    }

    /// A 30-day token for [`CHANNEL`] with the `profile` scope.
    fn token(&self) -> String {
        self.emulator.issue(IssueToken::new(CHANNEL))
    }

    fn issue(&self, request: IssueToken) -> String {
        self.emulator.issue(request)
    }

    /// (verify calls, profile calls) so far.
    fn calls(&self) -> (u64, u64) {
        let calls = self.emulator.calls();
        (calls.verify, calls.profile)
    }
}

/// A response as a client sees it.
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    async fn of(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

async fn verify(line: &Line, token: &str) -> Reply {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oauth2/v2.1/verify", line.emulator.base_url()),
        [("access_token", token)],
    )
    .unwrap();
    Reply::of(reqwest::get(url).await.unwrap()).await
}

async fn profile(line: &Line, token: &str) -> Reply {
    let response = reqwest::Client::new()
        .get(format!("{}/v2/profile", line.emulator.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    Reply::of(response).await
}

fn assert_request_id(reply: &Reply) {
    let id = reply.headers["x-line-request-id"].to_str().unwrap();
    assert!(
        id.len() == 16
            && id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{id}"
    );
}

#[tokio::test]
async fn issued_tokens_are_jws_shaped() {
    let line = Line::start().await;
    let token = line.token();
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(segments.len(), 3, "{token}");
    assert_eq!(
        segments[0], "eyJhbGciOiJIUzI1NiJ9",
        "header {{\"alg\":\"HS256\"}}"
    );
    assert!(segments.iter().all(|s| s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')));
    assert_ne!(token, line.token(), "every token is new");
}

#[tokio::test]
async fn verify_answers_scope_client_id_and_remaining_seconds() {
    let line = Line::start().await;
    let token = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid"]));

    let reply = verify(&line, &token).await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_request_id(&reply);
    let body = reply.json();
    assert_eq!(body["scope"], "profile openid");
    assert_eq!(body["client_id"], CHANNEL, "a JSON string");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(
        (2_591_990..2_592_000).contains(&expires_in),
        "counts down from 30 days: {expires_in}"
    );
}

/// Fact sheet §3.1: a verify answer for a token granted no scope (a channel access token of
/// the Messaging API) leaves `scope` out ("not always included"); it never reads `""`.
#[tokio::test]
async fn verify_leaves_scope_out_for_a_token_with_none() {
    let line = Line::start().await;
    let scopeless = line.issue(IssueToken::new(CHANNEL).scopes(Vec::<String>::new()));
    let email_only = line.issue(IssueToken::new(CHANNEL).scopes(["email"]));

    for token in [scopeless, email_only] {
        let reply = verify(&line, &token).await;
        assert_eq!(reply.status, StatusCode::OK);
        let body = reply.json();
        assert!(body.get("scope").is_none(), "{body}");
        assert_eq!(body["client_id"], CHANNEL);
    }
}

/// RFC 9110 §11.1: the scheme is case-insensitive, so LINE reads `bearer` as `Bearer`.
#[tokio::test]
async fn the_bearer_scheme_is_read_in_any_case() {
    let line = Line::start().await;
    let token = line.token();
    let expected = [
        ("bearer", StatusCode::OK),
        ("BEARER", StatusCode::OK),
        ("Bearer", StatusCode::OK),
        ("Basic", StatusCode::UNAUTHORIZED),
    ];
    for (scheme, status) in expected {
        let response = reqwest::Client::new()
            .get(format!("{}/v2/profile", line.emulator.base_url()))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{scheme}");
    }
}

#[tokio::test]
async fn verify_refusals_use_line_error_texts() {
    let line = Line::start().await;
    let revoked = line.token();
    line.emulator.revoke(&revoked);
    let expired = line.issue(IssueToken::new(CHANNEL).lifetime(Duration::from_secs(1)));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    for (token, description) in [
        (revoked.as_str(), "The access token revoked"),
        (expired.as_str(), "The access token expired"),
        ("not-a-token", "The access token not JWS"),
    ] {
        let reply = verify(&line, token).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{description}");
        assert_request_id(&reply);
        assert_eq!(
            reply.json(),
            serde_json::json!({"error": "invalid_request", "error_description": description})
        );
    }
}

#[tokio::test]
async fn profile_omits_absent_fields_and_refuses_in_message_shape() {
    let line = Line::start().await;
    let token = line.issue(
        IssueToken::new(CHANNEL)
            .user_id("U4af4980629aabbccddeeff0011223344")
            .display_name("Brown"),
    );
    let no_profile_scope = line.issue(IssueToken::new(CHANNEL).scopes(["openid"]));
    let revoked = line.token();
    line.emulator.revoke(&revoked);

    let reply = profile(&line, &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_request_id(&reply);
    assert_eq!(
        reply.json(),
        serde_json::json!({"userId": "U4af4980629aabbccddeeff0011223344", "displayName": "Brown"})
    );

    let reply = profile(&line, &revoked).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.json()["message"].is_string());

    let reply = profile(&line, &no_profile_scope).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.json()["message"].is_string());
}

#[tokio::test]
async fn generated_user_ids_follow_line_format() {
    let line = Line::start().await;
    let user_id = profile(&line, &line.token()).await.json()["userId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user_id.len() == 33 && user_id.starts_with('U'), "{user_id}");
    assert!(
        user_id[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{user_id}"
    );
}

#[tokio::test]
async fn counts_calls_per_endpoint() {
    let line = Line::start().await;
    let token = line.token();
    verify(&line, &token).await;
    verify(&line, &token).await;
    profile(&line, &token).await;
    assert_eq!(line.calls(), (2, 1));
    line.emulator.reset_calls();
    assert_eq!(line.calls(), (0, 0));
}

// The sign-in side: the authorization endpoint, the token endpoint, revoke, ID tokens and
// userinfo, as a web app's server calls them.

const SECRET: &str = "channel-secret-for-fidelity";
const REDIRECT: &str = "https://app.example/callback";
const BROWN: &str = "U4af4980629aabbccddeeff0011223344";

async fn post_form(line: &Line, path: &str, form: &[(&str, &str)]) -> Reply {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", line.emulator.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    Reply::of(response).await
}

/// A fresh authorization code for `channel`, as the browser brings it back from LINE's consent.
async fn authorize(line: &Line, channel: &str, scope: &str) -> String {
    let back = authorize_with(line, channel, scope, &[]).await;
    back.get("code").expect("a code").clone()
}

/// The query LINE's consent sends the browser back with, for these parameters besides the usual.
async fn authorize_with(
    line: &Line,
    channel: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> std::collections::HashMap<String, String> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", channel),
        ("redirect_uri", REDIRECT),
        ("state", "st4te"),
        ("scope", scope),
        ("nonce", "n0nce"),
    ];
    params.extend_from_slice(extra);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/oauth2/v2.1/authorize", line.emulator.base_url()),
        params,
    )
    .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    location.query_pairs().into_owned().collect()
}

/// `POST /oauth2/v2.1/token` for a code, with this `client_secret` or none.
async fn exchange(line: &Line, channel: &str, code: &str, secret: Option<&str>) -> Reply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", channel),
    ];
    form.extend(secret.map(|secret| ("client_secret", secret)));
    post_form(line, "/oauth2/v2.1/token", &form).await
}

/// `POST /oauth2/v2.1/token` with a refresh token, with this `client_secret` or none.
async fn refresh(line: &Line, channel: &str, refresh_token: &str, secret: Option<&str>) -> Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", channel),
    ];
    form.extend(secret.map(|secret| ("client_secret", secret)));
    post_form(line, "/oauth2/v2.1/token", &form).await
}

/// `POST /oauth2/v2.1/revoke` of an access token, with this `client_secret` or none.
async fn revoke(line: &Line, channel: &str, token: &str, secret: Option<&str>) -> Reply {
    let mut form = vec![("access_token", token), ("client_id", channel)];
    form.extend(secret.map(|secret| ("client_secret", secret)));
    post_form(line, "/oauth2/v2.1/revoke", &form).await
}

/// The claims LINE's ID-token verifier (`POST /oauth2/v2.1/verify`) answers for `id_token`.
async fn id_token_claims(line: &Line, channel: &str, id_token: &str) -> serde_json::Value {
    let reply = post_form(
        line,
        "/oauth2/v2.1/verify",
        &[("id_token", id_token), ("client_id", channel)],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

/// A signed-in user's tokens for [`CHANNEL`] (registered with [`SECRET`]): the token answer.
async fn sign_in(line: &Line, scope: &str) -> serde_json::Value {
    let code = authorize(line, CHANNEL, scope).await;
    let reply = exchange(line, CHANNEL, &code, Some(SECRET)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.json()
}

async fn line_with_user() -> Line {
    let line = Line::start().await;
    line.emulator.register_channel(CHANNEL, SECRET);
    line.emulator.sign_in_as(
        EmulatedUser::new(BROWN, "Brown")
            .picture_url("https://profile.line-scdn.net/brown")
            .email("brown@example.com"),
    );
    line
}

fn assert_invalid_client(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client", "{}", reply.body);
    assert!(
        reply.json()["error_description"].is_string(),
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn scope_never_lists_email_though_the_token_carries_it() {
    let line = line_with_user().await;
    let issued = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid", "email"]));
    assert_eq!(
        verify(&line, &issued).await.json()["scope"],
        "profile openid"
    );

    let tokens = sign_in(&line, "profile openid email").await;
    assert_eq!(
        tokens["scope"], "profile openid",
        "the token answer neither"
    );
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        verify(&line, access_token).await.json()["scope"],
        "profile openid"
    );
    let refreshed = refresh(
        &line,
        CHANNEL,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(
        refreshed.json()["scope"],
        "profile openid",
        "nor the refresh answer"
    );

    // Granted all the same: the ID token has the address.
    let claims = id_token_claims(&line, CHANNEL, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["email"], "brown@example.com");
    let without_email = sign_in(&line, "profile openid").await;
    let claims = id_token_claims(&line, CHANNEL, without_email["id_token"].as_str().unwrap()).await;
    assert!(claims.get("email").is_none(), "{claims}");
}

#[tokio::test]
async fn amr_appears_only_when_it_applies() {
    let line = line_with_user().await;

    // As `liff.getIDToken()` hands one over: no `amr`, one hour.
    let liff = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN));
    let claims = id_token_claims(&line, CHANNEL, &liff).await;
    assert!(claims.get("amr").is_none(), "{claims}");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let with_amr = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).amr(["lineautologin", "mfa"]));
    let claims = id_token_claims(&line, CHANNEL, &with_amr).await;
    assert_eq!(claims["amr"], serde_json::json!(["lineautologin", "mfa"]));

    // Web login: the user signed in with a password.
    let tokens = sign_in(&line, "openid").await;
    let claims = id_token_claims(&line, CHANNEL, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
}

#[tokio::test]
async fn the_code_exchange_requires_the_channel_secret() {
    let line = line_with_user().await;
    let code = authorize(&line, CHANNEL, "profile").await;

    assert_invalid_client(&exchange(&line, CHANNEL, &code, None).await);
    assert_invalid_client(&exchange(&line, CHANNEL, &code, Some("")).await);
    assert_invalid_client(&exchange(&line, CHANNEL, &code, Some("wrong")).await);
    let reply = exchange(&line, CHANNEL, &code, Some(SECRET)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a refused call left the code unused"
    );

    // A channel nobody registered has a secret too, the one the emulator tells.
    const UNREGISTERED: &str = "2000000000";
    let code = authorize(&line, UNREGISTERED, "profile").await;
    assert_invalid_client(&exchange(&line, UNREGISTERED, &code, None).await);
    let secret = line.emulator.channel_secret(UNREGISTERED);
    let reply = exchange(&line, UNREGISTERED, &code, Some(&secret)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn refresh_requires_the_secret_only_on_web_app_only_channels() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, "profile").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // App types that include "Mobile app" (the default): the secret is optional and ignored.
    for secret in [None, Some("wrong"), Some(SECRET)] {
        let reply = refresh(&line, CHANNEL, refresh_token, secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret:?}: {}", reply.body);
    }

    line.emulator
        .set_channel_type(CHANNEL, ChannelType::WebAppOnly);
    assert_invalid_client(&refresh(&line, CHANNEL, refresh_token, None).await);
    assert_invalid_client(&refresh(&line, CHANNEL, refresh_token, Some("wrong")).await);
    let reply = refresh(&line, CHANNEL, refresh_token, Some(SECRET)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn revoke_requires_the_secret_only_on_web_app_only_channels() {
    let line = line_with_user().await;

    // App types that include "Mobile app" (the default): the secret is optional and ignored.
    for secret in [None, Some("wrong")] {
        let token = line.token();
        let reply = revoke(&line, CHANNEL, &token, secret).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret:?}: {}", reply.body);
        assert_eq!(reply.body, "", "200 with an empty body");
        assert_eq!(verify(&line, &token).await.status, StatusCode::BAD_REQUEST);
    }

    line.emulator
        .set_channel_type(CHANNEL, ChannelType::WebAppOnly);
    let token = line.token();
    for secret in [None, Some(""), Some("wrong")] {
        assert_invalid_client(&revoke(&line, CHANNEL, &token, secret).await);
        assert_eq!(
            verify(&line, &token).await.status,
            StatusCode::OK,
            "{secret:?}: refused, the token is still live"
        );
        assert_eq!(line.emulator.revocation(&token), None);
    }
    let tokens = sign_in(&line, "profile").await;
    let refused = post_form(
        &line,
        "/oauth2/v2.1/revoke",
        &[
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", CHANNEL),
        ],
    )
    .await;
    assert_invalid_client(&refused);
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(verify(&line, access_token).await.status, StatusCode::OK);

    let reply = revoke(&line, CHANNEL, &token, Some(SECRET)).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, ""));
    assert_eq!(
        verify(&line, &token).await.json()["error_description"],
        "The access token revoked"
    );
    let again = revoke(&line, CHANNEL, &token, Some(SECRET)).await;
    assert_eq!(again.status, StatusCode::OK, "already revoked: still 200");
}

/// A revoke names the channel the token was issued for (fact sheet §3.4): one naming another
/// channel is refused, as a wrong secret is, and leaves the token live, so that neither a
/// client sending the wrong channel nor a Web-app-only channel's missing secret passes here
/// where LINE would refuse it. (LINE's exact answer is undocumented; the emulator uses the
/// text LINE documents for a wrong `client_id` at the channel-token endpoint.)
#[tokio::test]
async fn a_revoke_naming_another_channel_is_refused_and_leaves_the_token_live() {
    let line = line_with_user().await;
    const OTHER: &str = "2000000000";
    line.emulator
        .set_channel_type(CHANNEL, ChannelType::WebAppOnly);
    let token = line.token();
    for secret in [None, Some(SECRET)] {
        let refused = revoke(&line, OTHER, &token, secret).await;
        assert_invalid_client(&refused);
        assert_eq!(refused.json()["error_description"], "invalid client_id");
        assert_eq!(verify(&line, &token).await.status, StatusCode::OK);
        assert_eq!(line.emulator.revocation(&token), None);
    }

    let tokens = sign_in(&line, "profile").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refused = post_form(
        &line,
        "/oauth2/v2.1/revoke",
        &[("refresh_token", refresh_token), ("client_id", OTHER)],
    )
    .await;
    assert_invalid_client(&refused);
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(verify(&line, access_token).await.status, StatusCode::OK);
    let refreshed = refresh(&line, CHANNEL, refresh_token, Some(SECRET)).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);

    // A token LINE does not know names no channel: nothing to refuse, as before.
    let unknown = revoke(&line, OTHER, "eyJhbGciOiJIUzI1NiJ9.bm8.c2ln", None).await;
    assert_eq!(unknown.status, StatusCode::OK, "{}", unknown.body);
}

/// The form endpoints answer errors in the OAuth shape (fact sheet §1), a body that is no form
/// or too large too: 415 or 413 with `{"error": "invalid_request", …}`, not a plain-text page,
/// and nothing done.
#[tokio::test]
async fn a_form_endpoint_sent_no_form_refuses_in_the_oauth_shape() {
    let line = line_with_user().await;
    let token = line.token();
    for path in [
        "/oauth2/v2.1/token",
        "/oauth2/v2.1/revoke",
        "/oauth2/v2.1/verify",
    ] {
        let url = format!("{}{path}", line.emulator.base_url());
        let json = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::json!({"access_token": token, "client_id": CHANNEL}).to_string());
        let bare = reqwest::Client::new()
            .post(&url)
            .body(format!("access_token={token}&client_id={CHANNEL}"));
        for request in [json, bare] {
            let reply = Reply::of(request.send().await.unwrap()).await;
            assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}");
            assert_eq!(
                reply.headers["content-type"], "application/json",
                "{path}: {}",
                reply.body
            );
            assert_eq!(reply.json()["error"], "invalid_request", "{path}");
            assert!(reply.json()["error_description"].is_string(), "{path}");
            assert_request_id(&reply);
        }
    }
    let oversized = post_form(
        &line,
        "/oauth2/v2.1/revoke",
        &[
            ("access_token", &token),
            ("client_id", CHANNEL),
            ("padding", &"x".repeat(3 << 20)),
        ],
    )
    .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(oversized.json()["error"], "invalid_request");
    assert_eq!(verify(&line, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_openid_only_token_has_no_profile_but_userinfo_answers_its_user() {
    let line = Line::start().await;
    // A LINE MINI App with channel consent simplification: the user consented to `openid` only.
    let mini_app = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["openid"])
            .user_id(BROWN)
            .display_name("Brown")
            .picture_url("https://profile.line-scdn.net/brown"),
    );
    let with_profile = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["openid", "profile"])
            .user_id(BROWN)
            .display_name("Brown")
            .picture_url("https://profile.line-scdn.net/brown"),
    );

    let verified = verify(&line, &mini_app).await;
    assert_eq!(verified.status, StatusCode::OK);
    assert_eq!(verified.json()["scope"], "openid");

    let refused = profile(&line, &mini_app).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json().as_object().unwrap().len(),
        1,
        "{}",
        refused.body
    );
    assert!(refused.json()["message"].is_string(), "{}", refused.body);

    for (token, expected) in [
        (&mini_app, serde_json::json!({"sub": BROWN})),
        (
            &with_profile,
            serde_json::json!({
                "sub": BROWN,
                "name": "Brown",
                "picture": "https://profile.line-scdn.net/brown",
            }),
        ),
    ] {
        for reply in userinfo(&line, token).await {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.json(), expected);
        }
    }

    // A sign-in asking for `openid` alone gets its tokens, and userinfo answers for them.
    let line = line_with_user().await;
    let tokens = sign_in(&line, "openid").await;
    assert_eq!(tokens["scope"], "openid");
    assert!(tokens["id_token"].is_string());
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        profile(&line, access_token).await.status,
        StatusCode::FORBIDDEN
    );
    for reply in userinfo(&line, access_token).await {
        assert_eq!(reply.json(), serde_json::json!({"sub": BROWN}));
    }
}

/// `GET` and `POST /oauth2/v2.1/userinfo` with `token`.
async fn userinfo(line: &Line, token: &str) -> [Reply; 2] {
    let client = reqwest::Client::new();
    let url = format!("{}/oauth2/v2.1/userinfo", line.emulator.base_url());
    let get = client.get(&url).bearer_auth(token).send().await.unwrap();
    let post = client.post(&url).bearer_auth(token).send().await.unwrap();
    [Reply::of(get).await, Reply::of(post).await]
}

/// Asserts LINE's `invalid_grant`, the token endpoint's answer to a code or refresh token it
/// will not honour.
fn assert_invalid_grant(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_grant", "{}", reply.body);
}

#[tokio::test]
async fn an_authorization_code_is_single_use_and_bound_to_its_channel_and_redirect_uri() {
    let line = line_with_user().await;
    const OTHER: &str = "2000000000";
    line.emulator.register_channel(OTHER, "other-secret");

    let code = authorize(&line, CHANNEL, "profile").await;
    assert_invalid_grant(&exchange(&line, OTHER, &code, Some("other-secret")).await);
    let tokens = exchange(&line, CHANNEL, &code, Some(SECRET)).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(tokens.json()["expires_in"], 2_592_000, "30 days");
    assert_eq!(tokens.json()["token_type"], "Bearer");
    assert_invalid_grant(&exchange(&line, CHANNEL, &code, Some(SECRET)).await);

    let code = authorize(&line, CHANNEL, "profile").await;
    let elsewhere = post_form(
        &line,
        "/oauth2/v2.1/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/elsewhere"),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_invalid_grant(&elsewhere);
    assert_invalid_grant(&exchange(&line, CHANNEL, "no-such-code", Some(SECRET)).await);
}

#[tokio::test]
async fn pkce_is_s256_only_and_checked_at_the_code_exchange() {
    let line = &line_with_user().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk0123456789";
    let challenge = |verifier: &str| URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let with_challenge = |challenge: String| async move {
        let back = authorize_with(
            line,
            CHANNEL,
            "profile",
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        back.get("code").expect("a code").clone()
    };
    let exchange_with = |code: String, verifier: Option<&'static str>| async move {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
        ];
        form.extend(verifier.map(|verifier| ("code_verifier", verifier)));
        post_form(line, "/oauth2/v2.1/token", &form).await
    };

    // Only S256: `plain` is refused at the consent, back at the app with LINE's error.
    let refused = authorize_with(
        line,
        CHANNEL,
        "profile",
        &[
            ("code_challenge", verifier),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    assert_eq!(
        refused.get("error").map(String::as_str),
        Some("invalid_request")
    );
    assert_eq!(refused.get("code"), None);

    let code = with_challenge(challenge(verifier)).await;
    assert_invalid_grant(&exchange_with(code, None).await);
    let wrong = "0000000000000000000000000000000000000000000";
    let code = with_challenge(challenge(verifier)).await;
    assert_invalid_grant(&exchange_with(code, Some(wrong)).await);
    // RFC 7636 §4.1: 43 to 128 unreserved characters, even when it hashes to the challenge.
    let too_long: &'static str = "a".repeat(129).leak();
    for malformed in [
        "too-short-0123456789012345678901234567890",
        too_long,
        "+234567890123456789012345678901234567890123",
    ] {
        let code = with_challenge(challenge(malformed)).await;
        assert_invalid_grant(&exchange_with(code, Some(malformed)).await);
    }
    // The bounds themselves are allowed.
    for bound in ["a".repeat(43), "a".repeat(128)] {
        let bound: &'static str = bound.leak();
        let code = with_challenge(challenge(bound)).await;
        let reply = exchange_with(code, Some(bound)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {}",
            bound.len(),
            reply.body
        );
    }
    let code = with_challenge(challenge(verifier)).await;
    let reply = exchange_with(code, Some(verifier)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn a_refresh_token_is_refused_once_revoked_expired_or_for_another_channel() {
    let line = line_with_user().await;
    const OTHER: &str = "2000000000";
    line.emulator.register_channel(OTHER, "other-secret");
    let tokens = sign_in(&line, "profile").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    assert_invalid_grant(&refresh(&line, OTHER, refresh_token, Some("other-secret")).await);
    let refreshed = refresh(&line, CHANNEL, refresh_token, None).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(
        refreshed.json()["refresh_token"],
        refresh_token,
        "the same one"
    );
    assert_eq!(refreshed.json()["expires_in"], 2_592_000);
    assert!(line.emulator.expire_refresh_token(refresh_token));
    assert!(!line.emulator.expire_refresh_token("no-such-token"));
    assert_invalid_grant(&refresh(&line, CHANNEL, refresh_token, None).await);

    // Revoking a refresh token (the form LINE's SDKs send on logout) ends, here, the access
    // tokens issued from it, the refreshed one too: LINE does not document either way.
    let tokens = sign_in(&line, "profile").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let refreshed = refresh(&line, CHANNEL, refresh_token, None).await.json();
    let revoked = post_form(
        &line,
        "/oauth2/v2.1/revoke",
        &[("refresh_token", refresh_token), ("client_id", CHANNEL)],
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    for access_token in [&tokens["access_token"], &refreshed["access_token"]] {
        let reply = verify(&line, access_token.as_str().unwrap()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    assert_invalid_grant(&refresh(&line, CHANNEL, refresh_token, None).await);
}

#[tokio::test]
async fn the_id_token_verifier_checks_nonce_user_id_and_expiry() {
    let line = &line_with_user().await;
    let tokens = sign_in(line, "openid profile").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let check = |extra: &'static [(&'static str, &'static str)]| async move {
        let mut form = vec![("id_token", id_token), ("client_id", CHANNEL)];
        form.extend_from_slice(extra);
        post_form(line, "/oauth2/v2.1/verify", &form).await
    };
    let refused = |reply: Reply, description: &str| {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_request", "{}", reply.body);
        assert_eq!(
            reply.json()["error_description"],
            description,
            "{}",
            reply.body
        );
    };

    let reply = check(&[("nonce", "n0nce"), ("user_id", BROWN)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["sub"], BROWN);
    assert_eq!(reply.json()["nonce"], "n0nce");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let issued_at = reply.json()["iat"].as_u64().unwrap();
    assert!(issued_at.abs_diff(now) <= 60, "iat {issued_at}, now {now}");
    refused(check(&[("nonce", "other")]).await, "Invalid IdToken Nonce.");
    refused(
        check(&[("user_id", "U00000000000000000000000000000000")]).await,
        "Invalid IdToken Subject Identifier.",
    );

    assert!(line.emulator.expire_id_token(id_token));
    assert!(!line.emulator.expire_id_token("no-such-token"));
    refused(check(&[]).await, "IdToken expired.");
}

#[tokio::test]
async fn friendship_tells_whether_the_user_is_a_friend_of_the_channels_account() {
    let line = Line::start().await;
    line.emulator.register_channel(CHANNEL, SECRET);
    for friend in [false, true] {
        line.emulator
            .sign_in_as(EmulatedUser::new(BROWN, "Brown").friend(friend));
        let tokens = sign_in(&line, "profile").await;
        let reply = reqwest::Client::new()
            .get(format!("{}/friendship/v1/status", line.emulator.base_url()))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let reply = Reply::of(reply).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json(), serde_json::json!({"friendFlag": friend}));
    }
}

/// Faults reach the ID-token verifier and the friendship status as every other endpoint's, and
/// only them: `POST /oauth2/v2.1/verify` shares its path with the access-token verify, which
/// goes on answering.
#[tokio::test]
async fn the_id_token_verifier_and_friendship_take_faults_of_their_own() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, "profile openid").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let form = [("id_token", id_token), ("client_id", CHANNEL)];
    let verify_id_token = || post_form(&line, "/oauth2/v2.1/verify", &form);
    let friendship = || async {
        let response = reqwest::Client::new()
            .get(format!("{}/friendship/v1/status", line.emulator.base_url()))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        Reply::of(response).await
    };

    line.emulator.inject(
        Endpoint::VerifyIdToken,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );
    line.emulator.inject(Endpoint::Friendship, Fault::NotJson);
    assert_eq!(
        verify_id_token().await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let page = friendship().await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.starts_with("<html>"), "{}", page.body);
    assert_eq!(verify(&line, access_token).await.status, StatusCode::OK);
    assert_eq!(profile(&line, access_token).await.status, StatusCode::OK);

    line.emulator.clear_faults();
    assert_eq!(verify_id_token().await.status, StatusCode::OK);
    assert_eq!(friendship().await.json()["friendFlag"], false);
}

/// `POST /user/v1/deauthorize` (fact sheet §3.4, what LINE's guidelines ask of an app a user
/// leaves): with a channel access token, a user's access token ends the user's consent to that
/// channel, and with it every access and refresh token the user holds for it (§2: unlinking the
/// app deactivates them all). 204, then 400 `{"message": "invalid token"}` once done.
#[tokio::test]
async fn deauthorize_ends_every_token_of_the_user_for_the_channel() {
    let line = line_with_user().await;
    const OTHER: &str = "2000000000";
    let tokens = sign_in(&line, "profile").await;
    let access_token = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let same_user = line.issue(IssueToken::new(CHANNEL).user_id(BROWN));
    let other_channel = line.issue(IssueToken::new(OTHER).user_id(BROWN));
    let other_user = line.token();
    line.emulator.sign_in_as(EmulatedUser::new(
        "U0123456789abcdef0123456789abcdef",
        "Cony",
    ));
    let other_users_refresh_token = sign_in(&line, "profile").await["refresh_token"].clone();
    let deauthorize = |authorization: Option<&str>, body: serde_json::Value| {
        let mut request = reqwest::Client::new()
            .post(format!("{}/user/v1/deauthorize", line.emulator.base_url()))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        async move { Reply::of(request.send().await.unwrap()).await }
    };
    let user_token = serde_json::json!({ "userAccessToken": access_token });

    for unauthenticated in [None, Some("Basic Y2hhbm5lbA=="), Some("Bearer ")] {
        let refused = deauthorize(unauthenticated, user_token.clone()).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{unauthenticated:?}"
        );
        assert!(refused.json()["message"].is_string());
    }
    let no_token = deauthorize(Some("Bearer channel-access-token"), serde_json::json!({})).await;
    assert_eq!(no_token.status, StatusCode::BAD_REQUEST);
    assert_eq!(verify(&line, access_token).await.status, StatusCode::OK);

    let done = deauthorize(Some("Bearer channel-access-token"), user_token.clone()).await;
    assert_eq!(
        (done.status, done.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_request_id(&done);
    for ended in [access_token, same_user.as_str()] {
        assert_eq!(
            verify(&line, ended).await.json()["error_description"],
            "The access token revoked"
        );
    }
    assert_invalid_grant(&refresh(&line, CHANNEL, refresh_token, Some(SECRET)).await);
    for kept in [&other_channel, &other_user] {
        assert_eq!(verify(&line, kept).await.status, StatusCode::OK);
    }
    let other_users_refresh_token = other_users_refresh_token.as_str().unwrap();
    let refreshed = refresh(&line, CHANNEL, other_users_refresh_token, Some(SECRET)).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);

    let again = deauthorize(Some("Bearer channel-access-token"), user_token).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.json()["message"], "invalid token");
}

#[tokio::test]
async fn certs_publish_every_signing_key_until_it_is_retired() {
    let line = Line::start().await;
    let kids = || async {
        let reply = Reply::of(
            reqwest::get(format!("{}/oauth2/v2.1/certs", line.emulator.base_url()))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let keys = reply.json()["keys"].as_array().unwrap().clone();
        for key in &keys {
            assert_eq!(
                (&key["kty"], &key["crv"], &key["alg"], &key["use"]),
                (
                    &serde_json::json!("EC"),
                    &serde_json::json!("P-256"),
                    &serde_json::json!("ES256"),
                    &serde_json::json!("sig")
                ),
                "{key}"
            );
        }
        let kids: Vec<String> = keys
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        kids
    };

    let first = kids().await;
    assert_eq!(first.len(), 1, "{first:?}");
    let rotated = line.emulator.rotate_signing_key();
    assert!(!rotated.is_empty() && !first.contains(&rotated));
    assert_eq!(kids().await, [first[0].clone(), rotated.clone()]);
    assert!(line.emulator.retire_signing_key(&first[0]));
    assert!(!line.emulator.retire_signing_key(&first[0]), "gone already");
    assert_eq!(kids().await, [rotated]);
}

#[tokio::test]
async fn an_injected_fault_answers_as_many_times_as_asked_or_until_cleared() {
    let line = Line::start().await;
    let token = line.token();

    line.emulator.inject_times(
        Endpoint::Verify,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        2,
    );
    for _ in 0..2 {
        let reply = verify(&line, &token).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.json()["message"].is_string(), "{}", reply.body);
    }
    assert_eq!(verify(&line, &token).await.status, StatusCode::OK);
    assert_eq!(
        profile(&line, &token).await.status,
        StatusCode::OK,
        "one endpoint only"
    );

    line.emulator
        .inject(Endpoint::Profile, Fault::Status(StatusCode::BAD_GATEWAY));
    line.emulator
        .inject_times(Endpoint::Verify, Fault::NotJson, 0);
    for _ in 0..3 {
        assert_eq!(profile(&line, &token).await.status, StatusCode::BAD_GATEWAY);
    }
    assert_eq!(
        verify(&line, &token).await.status,
        StatusCode::OK,
        "0 times: none"
    );
    line.emulator.clear_faults();
    assert_eq!(profile(&line, &token).await.status, StatusCode::OK);
}

/// `Fault::Reset` is a body broken off: the status line, the headers and part of the JSON
/// arrive before the connection goes, so a client's read of a body cut short is what it tests
/// (not a connection closed before any answer, which a stopped emulator plays).
#[tokio::test]
async fn a_reset_sends_the_head_and_part_of_the_body_then_breaks_off() {
    let line = Line::start().await;
    let token = line.token();
    for _ in 0..3 {
        line.emulator
            .inject_times(Endpoint::Verify, Fault::Reset, 1);
        let (addr, token) = (line.emulator.addr(), token.clone());
        let received = tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Write as _};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .write_all(
                    format!(
                        "GET /oauth2/v2.1/verify?access_token={token} HTTP/1.1\r\nHost: l\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .unwrap();
            let mut received = Vec::new();
            // Ends at the break, cleanly or by a reset: what came before it is what counts.
            let _ = stream.read_to_end(&mut received);
            received
        })
        .await
        .unwrap();
        let received = String::from_utf8_lossy(&received);
        assert!(received.starts_with("HTTP/1.1 200"), "{received:?}");
        assert!(received.contains(r#"{"scope":"pro"#), "{received:?}");
    }

    line.emulator
        .inject_times(Endpoint::Verify, Fault::Reset, 1);
    let response = reqwest::get(format!(
        "{}/oauth2/v2.1/verify?access_token={token}",
        line.emulator.base_url()
    ))
    .await
    .expect("a response head arrives");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.is_err(), "the body is broken off");
}

#[tokio::test]
async fn a_rate_limit_asks_for_at_least_the_wait_it_was_given() {
    let line = Line::start().await;
    let token = line.token();
    // Whole seconds as given; a fraction rounds up, so that a client waiting exactly the
    // `Retry-After` it was told is not early.
    for (wait, told) in [
        (Duration::from_secs(2), "2"),
        (Duration::from_millis(1_500), "2"),
        (Duration::from_millis(1), "1"),
        (Duration::ZERO, "0"),
        (Duration::MAX, "18446744073709551615"),
    ] {
        line.emulator.inject_times(
            Endpoint::Verify,
            Fault::RateLimited { retry_after: wait },
            1,
        );
        let reply = verify(&line, &token).await;
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{wait:?}");
        assert_eq!(reply.headers["retry-after"], told, "{wait:?}");
        assert!(reply.json()["message"].is_string(), "{}", reply.body);
    }
}

#[tokio::test]
async fn the_test_controls_end_a_token_as_line_would() {
    let line = Line::start().await;
    let token = line.token();
    assert!(line.emulator.expire(&token));
    assert!(!line.emulator.expire("no-such-token"));
    let reply = verify(&line, &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(
        reply.json()["error_description"],
        "The access token expired"
    );

    // What the revoke that ended a token sent, for a test to check.
    let token = line.token();
    assert_eq!(line.emulator.revocation(&token), None);
    let reply = revoke(&line, CHANNEL, &token, Some("s3cret")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let revocation = line.emulator.revocation(&token).expect("revoked by a call");
    assert_eq!(revocation.client_id, CHANNEL);
    assert_eq!(revocation.client_secret.as_deref(), Some("s3cret"));
}

#[tokio::test]
async fn a_refresh_answer_may_leave_the_refresh_token_out_as_line_may() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, "profile").await;
    line.emulator.set_refresh_omits_refresh_token(true);
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let reply = refresh(&line, CHANNEL, refresh_token, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply.json().get("refresh_token").is_none(),
        "{}",
        reply.body
    );
    assert!(reply.json()["access_token"].is_string(), "{}", reply.body);
}

/// A request LINE is slow to answer when the emulator stops, or is dropped, fails as against a
/// LINE gone down: it is not answered afterwards as if LINE were still there.
#[tokio::test]
async fn stopping_or_dropping_the_emulator_cuts_the_requests_it_was_answering() {
    for dropped in [false, true] {
        let line = Line::start().await;
        let token = line.token();
        line.emulator
            .inject(Endpoint::Verify, Fault::Latency(Duration::from_secs(4)));
        let url = format!(
            "{}/oauth2/v2.1/verify?access_token={token}",
            line.emulator.base_url()
        );
        let pending = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
        while line.calls().0 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let stopped = std::time::Instant::now();
        let stopped_line = if dropped {
            drop(line);
            None
        } else {
            line.emulator.stop().await;
            Some(line)
        };
        let outcome = pending.await.unwrap();

        assert!(outcome.is_err(), "dropped {dropped}: answered {outcome:?}");
        assert!(
            stopped.elapsed() < Duration::from_secs(1),
            "dropped {dropped}: cut after {:?}",
            stopped.elapsed()
        );
        if let Some(line) = stopped_line {
            // Restarted, it answers again, a slow answer too.
            line.emulator.restart().await.unwrap();
            line.emulator
                .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(100)));
            assert_eq!(verify(&line, &token).await.status, StatusCode::OK);
        }
    }
}
