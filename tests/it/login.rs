//! The token lifecycle with `LineLoginClient` against the emulator: sign-in with PKCE, refresh,
//! revoke, verify, ID tokens, userinfo, friendship; every emulator error path they meet; and how
//! the client types LINE's exact answers, each fed to it by a stand-in (`broken_line`).

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use line_auth::id_token::IdTokenVerifier;
use line_auth::login::{AuthorizeRequest, LineLoginClient, LineLoginError, Pkce, TokenSet};
use line_auth::rejection::UpstreamError;
use line_auth::LineAuthLayer;
use line_auth_emulator::{EmulatedUser, IssueToken};

use crate::support::*;

const SECRET: &str = "channel-secret-for-tests";
const REDIRECT: &str = "https://app.example/callback";
const VERIFIER: &str = "vErIfIeR-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG";
const BROWN: &str = "U4af4980629aabbccddeeff0011223344";

fn client(line: &Line) -> LineLoginClient {
    let base = line.emulator.base_url();
    LineLoginClient::builder(CHANNEL)
        .channel_secret(SECRET)
        .api_base(&base)
        .authorize_endpoint(format!("{base}/oauth2/v2.1/authorize"))
        .build()
        .unwrap()
}

async fn line_with_user() -> Line {
    let line = Line::start().await;
    line.emulator.register_channel(CHANNEL, SECRET);
    line.emulator.sign_in_as(
        EmulatedUser::new(BROWN, "Brown")
            .picture_url("https://profile.line-scdn.net/brown")
            .friend(true),
    );
    line
}

/// Follows the authorization URL as a browser would, returning the callback's query.
async fn authorize(url: reqwest::Url) -> Vec<(String, String)> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    reqwest::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn sign_in(line: &Line, scopes: &[&str], nonce: &str) -> TokenSet {
    let client = client(line);
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();
    let url = client.authorize_url(
        &AuthorizeRequest::new(REDIRECT, "st4te", scopes)
            .nonce(nonce)
            .pkce(&pkce),
    );
    let query = authorize(url).await;
    assert_eq!(param(&query, "state"), Some("st4te"));
    let code = param(&query, "code").expect("a code");
    client
        .exchange_code(code, REDIRECT, Some(&pkce))
        .await
        .unwrap()
}

fn assert_oauth_error(
    result: Result<impl std::fmt::Debug, LineLoginError>,
    error: &str,
    description: &str,
) {
    match result {
        Err(LineLoginError::OAuth {
            error: e,
            description: Some(d),
            ..
        }) => assert_eq!((e.as_str(), d.as_str()), (error, description)),
        other => panic!("expected {error} / {description}, got {other:?}"),
    }
}

#[tokio::test]
async fn sign_in_with_pkce_yields_tokens_the_layer_accepts() {
    let line = line_with_user().await;
    let started = SystemTime::now();

    let tokens = sign_in(&line, &["profile", "openid"], "n0nce").await;

    assert_eq!(tokens.scopes, ["profile", "openid"]);
    assert!(tokens.id_token.is_some(), "openid was granted");
    let access_left = tokens.access_expires_at.duration_since(started).unwrap();
    assert!(
        (Duration::from_secs(2_591_990)..=Duration::from_secs(2_592_010)).contains(&access_left)
    );
    let refresh_left = tokens.refresh_expires_at.duration_since(started).unwrap();
    assert!(
        refresh_left >= Duration::from_secs(90 * 86_400 - 10),
        "{refresh_left:?}"
    );
    assert!(!tokens.needs_refresh(Duration::from_secs(86_400)));

    let profile = client(&line)
        .profile(tokens.access_token.secret())
        .await
        .unwrap();
    assert_eq!(
        (profile.user_id.as_str(), profile.display_name.as_str()),
        (BROWN, "Brown")
    );
    let base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(line.config().build().unwrap())),
    )
    .await;
    let reply = get_bearer(&base, "/api/me", tokens.access_token.secret()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["userId"], BROWN);
}

#[tokio::test]
async fn without_openid_there_is_no_id_token() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, &["profile"], "n").await;
    assert!(tokens.id_token.is_none());
}

const JSON: StaticHeaders = &[("content-type", "application/json")];
const HTML: StaticHeaders = &[("content-type", "text/html")];

/// A client of `CHANNEL` pointed at a stand-in LINE that answers every call with one fixed answer.
async fn client_of_broken_line(
    status: StatusCode,
    headers: StaticHeaders,
    body: &'static str,
) -> LineLoginClient {
    LineLoginClient::builder(CHANNEL)
        .channel_secret(SECRET)
        .api_base(broken_line(status, headers, body).await)
        .build()
        .unwrap()
}

/// The tokens of a code exchange LINE answers with `answer`.
async fn signed_in_with(answer: &'static str) -> TokenSet {
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();
    client_of_broken_line(StatusCode::OK, JSON, answer)
        .await
        .exchange_code("code", REDIRECT, Some(&pkce))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_one_sent() {
    // LINE's Android SDK: a new refresh token only when the current one must be replaced.
    let client = client_of_broken_line(
        StatusCode::OK,
        JSON,
        r#"{"access_token":"new-access","expires_in":2592000,"token_type":"Bearer","scope":"profile"}"#,
    )
    .await;
    let tokens = signed_in_with(
        r#"{"access_token":"old-access","expires_in":2592000,"refresh_token":"the-refresh-token","token_type":"Bearer","scope":"profile"}"#,
    )
    .await;
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();

    let refreshed = client.refresh(&tokens).await.unwrap();

    assert_eq!(refreshed.access_token.secret(), "new-access");
    assert_eq!(refreshed.refresh_token.secret(), "the-refresh-token");
    assert_eq!(refreshed.refresh_expires_at, tokens.refresh_expires_at);

    // A code exchange must bring one: there is none to keep.
    assert!(matches!(
        client.exchange_code("code", REDIRECT, Some(&pkce)).await,
        Err(LineLoginError::InvalidResponse(_))
    ));
}

/// A refresh answer without `scope` grants what was granted before (RFC 6749 §5.1 and §6: an
/// omitted scope is the one requested, and a refresh requests the original grant).
#[tokio::test]
async fn a_refresh_answer_without_a_scope_keeps_the_scopes_granted() {
    let tokens = signed_in_with(
        r#"{"access_token":"old-access","expires_in":2592000,"refresh_token":"the-refresh-token",
            "token_type":"Bearer","scope":"profile openid"}"#,
    )
    .await;
    let client = client_of_broken_line(
        StatusCode::OK,
        JSON,
        r#"{"access_token":"new-access","expires_in":2592000,"token_type":"Bearer"}"#,
    )
    .await;

    let refreshed = client.refresh(&tokens).await.unwrap();

    assert_eq!(refreshed.access_token.secret(), "new-access");
    assert_eq!(refreshed.scopes, ["profile", "openid"]);
}

#[tokio::test]
async fn the_code_exchange_surfaces_each_line_answer_as_its_typed_error() {
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();
    let exchange = |client: LineLoginClient| {
        let pkce = pkce.clone();
        async move { client.exchange_code("c0de", REDIRECT, Some(&pkce)).await }
    };

    // LINE's OAuth-style body (fact sheet §3.3): typed, and a refused grant is recognisable.
    let refused = exchange(
        client_of_broken_line(
            StatusCode::BAD_REQUEST,
            JSON,
            r#"{"error":"invalid_grant","error_description":"invalid authorization code"}"#,
        )
        .await,
    )
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(LineLoginError::is_invalid_grant),
        "{refused:?}"
    );
    match refused {
        Err(LineLoginError::OAuth { status, .. }) => assert_eq!(status, StatusCode::BAD_REQUEST),
        other => panic!("expected the OAuth shape, got {other:?}"),
    }
    let bad_client = exchange(
        client_of_broken_line(
            StatusCode::BAD_REQUEST,
            JSON,
            r#"{"error":"invalid_client","error_description":"invalid client_secret"}"#,
        )
        .await,
    )
    .await;
    assert!(
        !bad_client
            .as_ref()
            .is_err_and(LineLoginError::is_invalid_grant),
        "a bad secret is no reason to sign the user in again"
    );
    assert_oauth_error(bad_client, "invalid_client", "invalid client_secret");

    // LINE failing is LINE unavailable, with the status it gave, whatever body came with it.
    for (status, body) in [
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"message":"Internal server error"}"#,
        ),
        (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"error":"too_many_requests","error_description":"slow down"}"#,
        ),
    ] {
        match exchange(client_of_broken_line(status, JSON, body).await).await {
            Err(LineLoginError::Unavailable(UpstreamError::Status { status: got, .. })) => {
                assert_eq!(got, status)
            }
            other => panic!("{status}: expected unavailable, got {other:?}"),
        }
    }
    // A client error keeps LINE's REST-style body: its status and message.
    match exchange(
        client_of_broken_line(StatusCode::FORBIDDEN, JSON, r#"{"message":"Not allowed"}"#).await,
    )
    .await
    {
        Err(LineLoginError::Message { status, message }) => assert_eq!(
            (status, message.as_str()),
            (StatusCode::FORBIDDEN, "Not allowed")
        ),
        other => panic!("expected the message shape, got {other:?}"),
    }

    // No error body at all (a proxy's page): LINE is unavailable, with the status it gave.
    match exchange(
        client_of_broken_line(
            StatusCode::SERVICE_UNAVAILABLE,
            HTML,
            "<html><body>503 Service Unavailable</body></html>",
        )
        .await,
    )
    .await
    {
        Err(LineLoginError::Unavailable(UpstreamError::Status { status, .. })) => {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE)
        }
        other => panic!("expected unavailable, got {other:?}"),
    }

    // A 200 that is not the documented answer is not a sign-in.
    for body in [
        r#"{"access_token":"a","expires_in":2592000,"refresh_token":"r","scope":"profile","token_type":"MAC"}"#,
        r#"{"access_token":"a","token_type":"Bearer"}"#,
    ] {
        let answer = exchange(client_of_broken_line(StatusCode::OK, JSON, body).await).await;
        assert!(
            matches!(answer, Err(LineLoginError::InvalidResponse(_))),
            "{body}: {answer:?}"
        );
    }
    // The token type is case-insensitive (RFC 6749 §5.1, §7.1).
    let lowercase = r#"{"access_token":"a","expires_in":2592000,"refresh_token":"r","scope":"profile","token_type":"bearer"}"#;
    let answer = exchange(client_of_broken_line(StatusCode::OK, JSON, lowercase).await).await;
    assert!(answer.is_ok(), "{answer:?}");
}

#[tokio::test]
async fn the_emulator_holds_a_code_to_one_use_its_redirect_uri_and_its_verifier() {
    let line = line_with_user().await;
    let client = client(&line);
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();
    let other = Pkce::from_verifier("another-verifier-0123456789-abcdefghijklmnopqrstuv").unwrap();
    let code = |query: Vec<(String, String)>| param(&query, "code").unwrap().to_owned();
    let request = AuthorizeRequest::new(REDIRECT, "s", &["profile"]).pkce(&pkce);

    let first = code(authorize(client.authorize_url(&request)).await);
    client
        .exchange_code(&first, REDIRECT, Some(&pkce))
        .await
        .unwrap();
    assert_oauth_error(
        client.exchange_code(&first, REDIRECT, Some(&pkce)).await,
        "invalid_grant",
        "invalid authorization code",
    );

    let second = code(authorize(client.authorize_url(&request)).await);
    assert_oauth_error(
        client
            .exchange_code(&second, "https://evil.example/callback", Some(&pkce))
            .await,
        "invalid_grant",
        "redirect_uri does not match",
    );

    let third = code(authorize(client.authorize_url(&request)).await);
    assert_oauth_error(
        client.exchange_code(&third, REDIRECT, Some(&other)).await,
        "invalid_grant",
        "invalid code_verifier",
    );

    let fourth = code(authorize(client.authorize_url(&request)).await);
    assert_oauth_error(
        client.exchange_code(&fourth, REDIRECT, None).await,
        "invalid_grant",
        "invalid code_verifier",
    );
}

/// PKCE's verifier is 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1; fact sheet
/// §3.3). The emulator refuses any other with `invalid_grant` (RFC 7636 §4.6; LINE's own answer
/// is undocumented), even one whose SHA-256 matches the challenge, so a client that makes bad
/// verifiers fails here rather than first at LINE.
#[tokio::test]
async fn the_emulator_refuses_a_verifier_outside_pkces_format_even_when_it_matches() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    async fn exchange(line: &Line, verifier: &str) -> (StatusCode, String) {
        let mut url =
            client(line).authorize_url(&AuthorizeRequest::new(REDIRECT, "s", &["profile"]));
        url.query_pairs_mut()
            .append_pair(
                "code_challenge",
                &URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)),
            )
            .append_pair("code_challenge_method", "S256");
        let query = authorize(url).await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", param(&query, "code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("client_id", CHANNEL),
            ("client_secret", SECRET),
            ("code_verifier", verifier),
        ];
        let answer = http()
            .post(format!("{}/oauth2/v2.1/token", line.emulator.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        (answer.status(), answer.text().await.unwrap())
    }
    let line = line_with_user().await;

    let (status, body) = exchange(&line, &"a".repeat(43)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = exchange(&line, &("A-._~9".repeat(21) + "xy")).await;
    assert_eq!(status, StatusCode::OK, "128 characters: {body}");
    for verifier in [
        "a".repeat(42),
        "a".repeat(129),
        "a".repeat(42) + "+",
        "a".repeat(42) + " ",
    ] {
        let (status, body) = exchange(&line, &verifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{verifier:?}: {body}");
        assert!(
            body.contains(r#""error":"invalid_grant""#),
            "{verifier:?}: {body}"
        );
    }
}

#[tokio::test]
async fn a_wrong_channel_secret_is_invalid_client() {
    let line = line_with_user().await;
    let base = line.emulator.base_url();
    let wrong = LineLoginClient::builder(CHANNEL)
        .channel_secret("wrong")
        .api_base(&base)
        .authorize_endpoint(format!("{base}/oauth2/v2.1/authorize"))
        .build()
        .unwrap();
    let query =
        authorize(wrong.authorize_url(&AuthorizeRequest::new(REDIRECT, "s", &["profile"]))).await;

    let result = wrong
        .exchange_code(param(&query, "code").unwrap(), REDIRECT, None)
        .await;

    assert_oauth_error(result, "invalid_client", "invalid client_secret");
}

#[tokio::test]
async fn the_authorization_url_asks_for_s256_the_only_method_line_accepts() {
    use base64::Engine;
    use sha2::Digest;
    let line = line_with_user().await;
    let pkce = Pkce::from_verifier(VERIFIER).unwrap();
    let url = client(&line)
        .authorize_url(&AuthorizeRequest::new(REDIRECT, "st4te", &["profile"]).pkce(&pkce));
    let sent: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(VERIFIER.as_bytes()));

    assert_eq!(
        (
            param(&sent, "code_challenge_method"),
            param(&sent, "code_challenge")
        ),
        (Some("S256"), Some(s256.as_str()))
    );
    let query = authorize(url.clone()).await;
    assert_eq!(param(&query, "error"), None, "{query:?}");
    assert!(param(&query, "code").is_some());

    // The stand-in refuses anything else, as LINE does, so a client asking for plain fails here.
    let mut plain = url;
    let kept: Vec<(String, String)> = sent
        .into_iter()
        .filter(|(name, _)| name != "code_challenge_method")
        .collect();
    plain
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("code_challenge_method", "plain");
    let query = authorize(plain).await;
    assert_eq!(param(&query, "error"), Some("invalid_request"));
    assert_eq!(param(&query, "state"), Some("st4te"));
}

#[tokio::test]
async fn a_refresh_answered_without_a_refresh_token_keeps_the_one_sent() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile"], "n").await;
    line.emulator.set_refresh_omits_refresh_token(true);

    let refreshed = client.refresh(&tokens).await.unwrap();

    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(refreshed.refresh_token, tokens.refresh_token);
    // And the kept one still refreshes.
    assert!(client.refresh(&refreshed).await.is_ok());
}

#[tokio::test]
async fn refresh_keeps_the_refresh_token_its_limit_and_the_id_token() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile", "openid"], "n").await;

    let refreshed = client.refresh(&tokens).await.unwrap();

    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_eq!(
        refreshed.refresh_token, tokens.refresh_token,
        "LINE returns the same refresh token"
    );
    assert_eq!(
        refreshed.refresh_expires_at, tokens.refresh_expires_at,
        "and does not extend it"
    );
    assert_eq!(
        refreshed.id_token, tokens.id_token,
        "a refresh brings no new ID token"
    );
    assert_eq!(
        client
            .profile(refreshed.access_token.secret())
            .await
            .unwrap()
            .user_id,
        BROWN
    );
}

/// A backend keeps a sign-in's tokens (encrypted, in its database) and refreshes them in
/// another process, or after a restart: the token set is made again from what it stored.
#[tokio::test]
async fn a_sign_in_kept_as_text_is_refreshed_and_revoked_by_another_process() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, &["profile", "openid"], "n").await;
    let stored = (
        tokens.access_token.secret().to_owned(),
        tokens.access_expires_at,
        tokens.refresh_token.secret().to_owned(),
        tokens.refresh_expires_at,
    );
    drop(tokens);

    let later = client(&line);
    let (access, access_expires_at, refresh, refresh_expires_at) = stored;
    let restored = TokenSet::new(
        access.clone().into(),
        access_expires_at,
        refresh.clone().into(),
        refresh_expires_at,
    );
    assert_eq!(restored.access_token.secret(), access);
    assert!(restored.id_token.is_none() && restored.scopes.is_empty());
    assert!(!restored.needs_refresh(Duration::from_secs(60)));

    let refreshed = later.refresh(&restored).await.unwrap();
    assert_ne!(refreshed.access_token.secret(), access);
    assert_eq!(refreshed.refresh_token.secret(), refresh);
    assert_eq!(refreshed.refresh_expires_at, refresh_expires_at);
    assert_eq!(
        later
            .profile(refreshed.access_token.secret())
            .await
            .unwrap()
            .user_id,
        BROWN
    );
    later.revoke_refresh_token(&refresh).await.unwrap();
    assert!(later.refresh(&restored).await.is_err(), "revoked");
}

#[tokio::test]
async fn an_expired_refresh_token_means_signing_in_again() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile"], "n").await;
    line.emulator
        .expire_refresh_token(tokens.refresh_token.secret());

    let result = client.refresh(&tokens).await;

    assert!(
        result.as_ref().is_err_and(LineLoginError::is_invalid_grant),
        "{result:?}"
    );
    assert_oauth_error(result, "invalid_grant", "invalid refresh token");
}

#[tokio::test]
async fn revoking_the_access_token_or_the_refresh_token() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile"], "n").await;

    client
        .revoke_access_token(tokens.access_token.secret())
        .await
        .unwrap();
    assert_oauth_error(
        client
            .verify_access_token(tokens.access_token.secret())
            .await,
        "invalid_request",
        "The access token revoked",
    );

    let refreshed = client.refresh(&tokens).await.unwrap();
    client
        .revoke_refresh_token(refreshed.refresh_token.secret())
        .await
        .unwrap();
    assert!(
        client
            .verify_access_token(refreshed.access_token.secret())
            .await
            .is_err(),
        "its access tokens go too"
    );
    assert!(client
        .refresh(&tokens)
        .await
        .is_err_and(|e| e.is_invalid_grant()));

    client
        .revoke_access_token("never-issued")
        .await
        .expect("unknown tokens count as revoked");
}

#[tokio::test]
async fn id_token_verification_by_line_and_its_error_texts() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile", "openid"], "n0nce").await;
    let id_token = tokens.id_token.unwrap();
    let id_token = id_token.secret();

    let claims = client
        .verify_id_token(id_token, Some("n0nce"), Some(BROWN))
        .await
        .unwrap();
    assert_eq!(
        (
            claims.iss.as_str(),
            claims.sub.as_str(),
            claims.aud.as_str()
        ),
        ("https://access.line.me", BROWN, CHANNEL)
    );
    assert_eq!(
        (claims.name.as_deref(), claims.nonce.as_deref()),
        (Some("Brown"), Some("n0nce"))
    );
    assert!(claims.exp > claims.iat);

    let bad = [
        (
            client.verify_id_token("not.an.idtoken", None, None).await,
            "Invalid IdToken.",
        ),
        (
            client.verify_id_token(id_token, Some("other"), None).await,
            "Invalid IdToken Nonce.",
        ),
        (
            client.verify_id_token(id_token, None, Some("Uother")).await,
            "Invalid IdToken Subject Identifier.",
        ),
    ];
    for (result, description) in bad {
        assert_oauth_error(result, "invalid_request", description);
    }
    let other_channel = LineLoginClient::builder(OTHER_CHANNEL)
        .api_base(line.emulator.base_url())
        .build()
        .unwrap();
    assert_oauth_error(
        other_channel.verify_id_token(id_token, None, None).await,
        "invalid_request",
        "Invalid IdToken Audience.",
    );
    line.emulator.expire_id_token(id_token);
    assert_oauth_error(
        client.verify_id_token(id_token, None, None).await,
        "invalid_request",
        "IdToken expired.",
    );
}

#[tokio::test]
async fn the_web_login_id_token_verifies_with_the_channel_secret_and_the_nonce() {
    let line = line_with_user().await;
    let tokens = sign_in(&line, &["profile", "openid"], "n0nce").await;
    let id_token = tokens.id_token.expect("openid was granted");
    let verifier =
        |config: line_auth::LineAuthConfigBuilder| IdTokenVerifier::new(&config.build().unwrap());

    let verified = verifier(
        line.config()
            .channel_secret(SECRET)
            .hs256_id_tokens(CHANNEL),
    )
    .verify(id_token.secret(), Some("n0nce"))
    .await
    .unwrap();
    assert_eq!(
        (verified.claims.sub.as_str(), verified.claims.aud.as_str()),
        (BROWN, CHANNEL)
    );
    assert_eq!(verified.user.display_name(), Some("Brown"));
    assert_eq!(line.emulator.calls().certs, 0, "HS256: no key set needed");
    assert!(
        verifier(
            line.config()
                .channel_secret(SECRET)
                .hs256_id_tokens(CHANNEL)
        )
        .verify(id_token.secret(), Some("another-sign-in"))
        .await
        .is_err(),
        "the nonce ties the ID token to its sign-in"
    );

    assert!(verifier(line.config())
        .verify(id_token.secret(), None)
        .await
        .is_err());
    assert!(verifier(
        line.config()
            .channel_secret("another-secret")
            .hs256_id_tokens(CHANNEL)
    )
    .verify(id_token.secret(), None)
    .await
    .is_err());
}

#[tokio::test]
async fn the_token_answer_becomes_a_token_set_and_a_refresh_keeps_the_id_token() {
    let answer = client_of_broken_line(
        StatusCode::OK,
        JSON,
        r#"{"access_token":"bNl4YEFPI/hjFWhTqexp4MuEw5YPs","expires_in":2592000,"id_token":"eyJhbGciOiJIUzI1NiJ9.e30.c2ln","refresh_token":"Aa1FdeggRhTnPNNpxr8p","scope":"profile openid","token_type":"Bearer","unknown":1}"#,
    )
    .await;
    let started = SystemTime::now();

    let tokens = answer.exchange_code("c0de", REDIRECT, None).await.unwrap();

    assert_eq!(
        (
            tokens.access_token.secret(),
            tokens.refresh_token.secret(),
            tokens.id_token.as_ref().map(|t| t.secret())
        ),
        (
            "bNl4YEFPI/hjFWhTqexp4MuEw5YPs",
            "Aa1FdeggRhTnPNNpxr8p",
            Some("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
        )
    );
    assert_eq!(tokens.scopes, ["profile", "openid"]);
    let access_left = tokens.access_expires_at.duration_since(started).unwrap();
    assert!(
        (Duration::from_secs(2_591_990)..=Duration::from_secs(2_592_010)).contains(&access_left),
        "{access_left:?}"
    );

    // LINE's refresh answer has no ID token (fact sheet §3.3 (b)): the sign-in's is kept.
    let refresh_answer = client_of_broken_line(
        StatusCode::OK,
        JSON,
        r#"{"token_type":"Bearer","scope":"profile","access_token":"new-access","expires_in":2591977,"refresh_token":"Aa1FdeggRhTnPNNpxr8p"}"#,
    )
    .await;
    let refreshed = refresh_answer.refresh(&tokens).await.unwrap();
    assert_eq!(refreshed.access_token.secret(), "new-access");
    assert_eq!(refreshed.id_token, tokens.id_token);
    assert_eq!(refreshed.refresh_expires_at, tokens.refresh_expires_at);
}

#[tokio::test]
async fn userinfo_needs_openid_and_friendship_reports_the_flag() {
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile", "openid"], "n").await;
    let profile_only = line.issue(IssueToken::new(CHANNEL));

    let info = client.userinfo(tokens.access_token.secret()).await.unwrap();
    assert_eq!(
        (info.sub.as_str(), info.name.as_deref()),
        (BROWN, Some("Brown"))
    );
    assert_eq!(
        info.picture.as_deref(),
        Some("https://profile.line-scdn.net/brown")
    );
    match client.userinfo(&profile_only).await {
        Err(LineLoginError::Message { status, .. }) => assert_eq!(status, StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }

    assert!(client
        .friendship_status(tokens.access_token.secret())
        .await
        .unwrap());
    assert!(!client.friendship_status(&profile_only).await.unwrap());
}

#[tokio::test]
async fn refused_tokens_surface_as_typed_errors() {
    let line = line_with_user().await;
    let client = client(&line);
    let revoked = line.token();
    line.emulator.revoke(&revoked);

    match client.profile(&revoked).await {
        Err(LineLoginError::Message { status, message }) => {
            assert_eq!(
                (status, message.as_str()),
                (StatusCode::UNAUTHORIZED, "The access token revoked")
            );
        }
        other => panic!("expected the message shape, got {other:?}"),
    }
    line.emulator.stop().await;
    assert!(matches!(
        client.profile(&revoked).await,
        Err(LineLoginError::Unavailable(_))
    ));
}

/// A timeout too large to add to the clock is a configuration error (issue 12 item 13), as the
/// layer's are; the longest allowed is a bound far off, not a call that has run out of time
/// before it starts.
#[tokio::test]
async fn a_client_with_a_timeout_past_any_clock_is_refused_and_the_longest_still_calls_line() {
    let line = Line::start().await;
    let builder = || LineLoginClient::builder(CHANNEL).api_base(line.emulator.base_url());
    assert_eq!(
        builder().timeout(Duration::MAX).build().unwrap_err(),
        line_auth::ConfigError::TooLong("timeout")
    );
    let client = builder()
        .timeout(Duration::from_secs(100 * 365 * 24 * 60 * 60))
        .build()
        .unwrap();
    let token = line.token();

    let verified = client.verify_access_token(&token).await.unwrap();

    assert_eq!(verified.client_id, CHANNEL);
}

/// The token endpoint rate-limiting a refresh is LINE unavailable with its wait, not a refusal
/// of the refresh token: the user need not sign in again, and the refresh works once LINE does.
#[tokio::test]
async fn a_rate_limited_refresh_is_unavailable_with_its_wait_and_works_after() {
    use line_auth_emulator::{Endpoint, Fault};
    let line = line_with_user().await;
    let client = client(&line);
    let tokens = sign_in(&line, &["profile"], "n").await;
    line.emulator.inject_times(
        Endpoint::Token,
        Fault::RateLimited {
            retry_after: std::time::Duration::from_secs(30),
        },
        1,
    );

    match client.refresh(&tokens).await {
        Err(error @ LineLoginError::Unavailable(UpstreamError::Status { .. })) => {
            assert!(!error.is_invalid_grant());
            let LineLoginError::Unavailable(UpstreamError::Status {
                status,
                retry_after,
            }) = error
            else {
                unreachable!()
            };
            assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(retry_after, Some(std::time::Duration::from_secs(30)));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(client.refresh(&tokens).await.is_ok());
}
