//! The miss path: LINE's verify and profile calls, and the checks on LINE's answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use line_auth::LineAuthLayer;
use line_auth_emulator::IssueToken;

use crate::support::*;

async fn app_with(config: line_auth::LineAuthConfigBuilder) -> (String, HandlerCalls) {
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config.build().unwrap()))).await;
    (base, calls)
}

/// An app on an emulator whose `endpoint` answers every call with `status` and the JSON text
/// `body`, and a token of the emulator's for it.
async fn app_where_line_answers(
    endpoint: line_auth_emulator::Endpoint,
    status: StatusCode,
    body: String,
) -> (Line, String, HandlerCalls, String) {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;
    let token = line.token();
    line.emulator
        .inject(endpoint, line_auth_emulator::Fault::Json { status, body });
    (line, base, calls, token)
}

#[tokio::test]
async fn valid_token_reaches_the_handler_with_the_line_user() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;
    let token = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["profile", "openid"])
            .user_id("U4af4980629aabbccddeeff0011223344")
            .display_name("Brown")
            .picture_url("https://profile.line-scdn.net/abcdefghijklmn"),
    );

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let user = reply.json();
    assert_eq!(user["userId"], "U4af4980629aabbccddeeff0011223344");
    assert_eq!(user["displayName"], "Brown");
    assert_eq!(
        user["pictureUrl"],
        "https://profile.line-scdn.net/abcdefghijklmn"
    );
    assert!(
        user.get("statusMessage").is_none(),
        "absent, not null: {user}"
    );
    assert_eq!(user["channelId"], CHANNEL);
    assert_eq!(user["scopes"], serde_json::json!(["profile", "openid"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = user["expiresAt"].as_u64().unwrap();
    assert!(
        (now + 30 * 86_400 - 5..=now + 30 * 86_400).contains(&expires_at),
        "{expires_at}"
    );
    assert_eq!((line.calls(), calls.get()), ((1, 1), 1));
}

#[tokio::test]
async fn unknown_token_gets_401_invalid_token() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;

    let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.bm90LWlzc3VlZA.c2ln").await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply
        .challenge()
        .unwrap()
        .contains(r#"error="invalid_token""#));
    assert_eq!(reply.json()["error"], "invalid_token");
    assert_eq!(
        (line.calls(), calls.get()),
        ((1, 0), 0),
        "no profile call for a refused token"
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_get_401_with_the_reason() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;
    let revoked = line.token();
    line.emulator.revoke(&revoked);
    let expired = line.token();
    line.emulator.expire(&expired);

    let reply = get_bearer(&base, "/api/me", &revoked).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );

    let reply = get_bearer(&base, "/api/me", &expired).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token expired"
    );
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn token_of_another_channel_gets_401_naming_the_cause() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;
    let foreign = line.issue(IssueToken::new(OTHER_CHANNEL));

    let reply = get_bearer(&base, "/api/me", &foreign).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply
        .challenge()
        .unwrap()
        .contains(r#"error="invalid_token""#));
    assert_eq!(
        reply.json()["error_description"],
        "the access token belongs to another channel"
    );
    assert_eq!((line.calls(), calls.get()), ((1, 0), 0));
}

#[tokio::test]
async fn any_configured_channel_is_accepted() {
    let line = Line::start().await;
    let (base, _) = app_with(line.config().channel_id(OTHER_CHANNEL)).await;

    for channel in [CHANNEL, OTHER_CHANNEL] {
        let reply = get_bearer(&base, "/api/me", &line.issue(IssueToken::new(channel))).await;
        assert_eq!(reply.status, StatusCode::OK, "{channel}");
        assert_eq!(reply.json()["channelId"], channel);
    }
}

#[tokio::test]
async fn missing_required_scope_gets_403_insufficient_scope() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config().required_scopes(["profile", "openid"])).await;
    let profile_only = line.token();

    let reply = get_bearer(&base, "/api/me", &profile_only).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer realm="line", error="insufficient_scope", error_description="the access token lacks a required scope", scope="profile openid""#
        )
    );
    assert_eq!(reply.json()["error"], "insufficient_scope");
    assert_eq!((line.calls(), calls.get()), ((1, 0), 0));
}

#[tokio::test]
async fn a_token_with_neither_profile_nor_openid_is_refused_when_nothing_is_required() {
    let line = Line::start().await;
    let (base, calls) = app_with(line.config().required_scopes(Vec::<String>::new())).await;
    let neither = line.issue(IssueToken::new(CHANNEL).scopes(["chat_message.write"]));

    let reply = get_bearer(&base, "/api/me", &neither).await;

    // The user ID comes from the profile call (`profile`) or userinfo (`openid`): without
    // either, LINE names no user, and nothing reaches the handler. (An `openid`-only token is
    // served through userinfo: tests/it/mini_app.rs.)
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge().unwrap().contains(r#"scope="openid""#));
    assert_eq!(calls.get(), 0);
    // Decided here, not left to LINE's answer: userinfo is not asked.
    assert_eq!(line.emulator.calls().userinfo, 0);
}

/// `required_scopes([])` promises that a token still needs `profile` or `openid`, whatever
/// LINE's userinfo would say of one with neither: here a LINE that names its user anyway.
#[tokio::test]
async fn a_token_with_neither_profile_nor_openid_is_refused_whatever_userinfo_answers() {
    let line = line_naming_users(
        "chat_message.write",
        "/oauth2/v2.1/userinfo",
        StatusCode::OK,
        r#"{"sub":"U1"}"#,
    )
    .await;
    let config = line_auth::LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(&line)
        .required_scopes(Vec::<String>::new());
    let (base, calls) = app_with(config).await;

    let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.bmVpdGhlcg.c2ln").await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.challenge().unwrap().contains(r#"scope="openid""#));
    assert_eq!(calls.get(), 0);
}

/// The profile call's errors are undocumented (fact sheet §3.2), as userinfo's are, and read
/// alike: a 400 with an OAuth error body is the token going bad between verify and profile (401
/// `invalid_token`, never a stale 200); a 400 in another shape is LINE out of spec (503).
#[tokio::test]
async fn a_profile_400_with_an_oauth_error_is_401_and_in_another_shape_503() {
    for (body, expected) in [
        (
            r#"{"error":"invalid_request","error_description":"The access token expired"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            r#"{"message":"Bad Request"}"#,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ] {
        let line = line_naming_users("profile", "/v2/profile", StatusCode::BAD_REQUEST, body).await;
        let config = line_auth::LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(&line);
        let (base, calls) = app_with(config).await;

        let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.cHJvZmlsZQ.c2ln").await;

        assert_eq!(reply.status, expected, "{body}: {}", reply.body);
        assert_eq!(calls.get(), 0);
    }
}

/// A user ID with a space or a control character in it is out of LINE's format (`U` and 32 hex
/// digits, fact sheet §1): 503, never a user whose ID could forge a log line or differ from the
/// same user's ID read elsewhere.
#[tokio::test]
async fn a_profile_user_id_with_a_space_or_a_control_character_is_503() {
    for user_id in ["U8189cf6745fc0d808977bdb0b9f22995 ", "U81\n89", "U 1"] {
        let (_line, base, calls, token) = app_where_line_answers(
            line_auth_emulator::Endpoint::Profile,
            StatusCode::OK,
            serde_json::json!({"userId": user_id, "displayName": "Brown"}).to_string(),
        )
        .await;

        let reply = get_bearer(&base, "/api/me", &token).await;

        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{user_id:?}: {}",
            reply.body
        );
        assert_eq!(calls.get(), 0);
    }
}

/// Verify's errors are documented as 400s (fact sheet §3.1), but a 401 in LINE's error shapes
/// can only be about the token it carries (the call names no client): the token's refusal, 401
/// `invalid_token` and remembered as one. Without such a body it may be any proxy's: out of
/// spec, 503, as a 400 without one is, and asked again.
#[tokio::test]
async fn a_verify_401_in_lines_error_shapes_is_the_tokens_refusal_and_without_one_503() {
    const REFUSED: (StatusCode, u64) = (StatusCode::UNAUTHORIZED, 1);
    const OUT_OF_SPEC: (StatusCode, u64) = (StatusCode::SERVICE_UNAVAILABLE, 2);
    for (body, (status, verify_calls)) in [
        (
            r#"{"error":"invalid_token","error_description":"invalid token"}"#,
            REFUSED,
        ),
        (
            r#"{"error":"invalid_request","error_description":"The access token expired"}"#,
            REFUSED,
        ),
        (
            r#"{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}"#,
            REFUSED,
        ),
        ("", OUT_OF_SPEC),
        (
            "<html><body><h1>401 Authorization Required</h1></body></html>",
            OUT_OF_SPEC,
        ),
    ] {
        let (line, base, calls, token) = app_where_line_answers(
            line_auth_emulator::Endpoint::Verify,
            StatusCode::UNAUTHORIZED,
            body.to_owned(),
        )
        .await;

        // Twice: a refusal is remembered (one call to LINE), an answer out of spec is not.
        for _ in 0..2 {
            let reply = get_bearer(&base, "/api/me", &token).await;
            assert_eq!(reply.status, status, "{body}: {}", reply.body);
            if status == StatusCode::UNAUTHORIZED {
                assert!(
                    reply
                        .challenge()
                        .unwrap()
                        .contains(r#"error="invalid_token""#),
                    "{body}: {:?}",
                    reply.challenge()
                );
            }
        }
        assert_eq!(calls.get(), 0);
        assert_eq!(line.calls().0, verify_calls, "{body}");
    }
}

#[tokio::test]
async fn tokens_with_plus_slash_and_padding_reach_line_intact() {
    let line = Line::start().await;
    let (base, _) = app_with(line.config()).await;
    let opaque =
        line.issue(IssueToken::new(CHANNEL).token_value("bNl4YEFPI/hjFWhTqexp4MuEw5YPs+7c/a+b=="));

    let reply = get_bearer(&base, "/api/me", &opaque).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn profile_without_picture_or_status_is_accepted() {
    let line = Line::start().await;
    let (base, _) = app_with(line.config()).await;
    let token = line.issue(IssueToken::new(CHANNEL).status_message("Hello, LINE!"));

    let user = get_bearer(&base, "/api/me", &token).await.json();

    assert!(user.get("pictureUrl").is_none(), "{user}");
    assert_eq!(user["statusMessage"], "Hello, LINE!");
}

/// What a handler reads from `LineUser`'s accessors is what LINE's verify and profile said:
/// each profile field, present or absent, and the token's channel, scopes and expiry.
#[tokio::test]
async fn a_handler_reads_lines_answers_through_the_line_users_accessors() {
    use axum::routing::get;
    use line_auth::LineUser;

    let line = Line::start().await;
    let accessors = |user: LineUser| async move {
        let expires_in = user
            .expires_at()
            .duration_since(std::time::SystemTime::now())
            .map_or(0, |left| left.as_secs());
        format!(
            "{}|{:?}|{:?}|{:?}|{}|{:?}|{}|{}|{}",
            user.user_id(),
            user.display_name(),
            user.picture_url(),
            user.status_message(),
            user.channel_id(),
            user.scopes().collect::<Vec<_>>(),
            user.has_scope("openid"),
            user.has_scope("email"),
            // The emulator's tokens live LINE's 30 days.
            (30 * 86_400 - 60..=30 * 86_400).contains(&expires_in),
        )
    };
    let app = axum::Router::new()
        .route("/accessors", get(accessors))
        .layer(LineAuthLayer::new(line.config().build().unwrap()));
    let base = serve(app).await;
    let full = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["profile", "openid"])
            .user_id("U4af4980629aabbccddeeff0011223344")
            .display_name("Brown")
            .picture_url("https://profile.line-scdn.net/abcdefghijklmn")
            .status_message("Hello, LINE!"),
    );
    let bare = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["profile"])
            .user_id("U0123456789abcdef0123456789abcdef")
            .display_name("Cony"),
    );

    let full = get_bearer(&base, "/accessors", &full).await;
    let bare = get_bearer(&base, "/accessors", &bare).await;

    assert_eq!(
        full.body,
        format!(
            "U4af4980629aabbccddeeff0011223344|Some(\"Brown\")|\
             Some(\"https://profile.line-scdn.net/abcdefghijklmn\")|Some(\"Hello, LINE!\")|\
             {CHANNEL}|[\"profile\", \"openid\"]|true|false|true"
        )
    );
    assert_eq!(
        bare.body,
        format!(
            "U0123456789abcdef0123456789abcdef|Some(\"Cony\")|None|None|{CHANNEL}|[\"profile\"]|\
             false|false|true"
        )
    );
}

/// The fact sheet gives `expires_in` as whole seconds, but LINE's iOS SDK reads it as a
/// `TimeInterval` (a double), so a fractional one from LINE, or from a stand-in that computes it
/// from a clock, is a grant: its fraction of a second is dropped, never rounded up.
#[tokio::test]
async fn a_fractional_expires_in_is_a_grant_read_in_whole_seconds() {
    use line_auth_emulator::{Endpoint, Fault};
    let line = Line::start().await;
    let (base, calls) = app_with(line.config()).await;
    let token = line.token();
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Json {
            status: StatusCode::OK,
            body: format!(r#"{{"scope":"profile","client_id":"{CHANNEL}","expires_in":3600.75}}"#),
        },
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let reply = get_bearer(&base, "/api/me", &token).await;
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let expires_at = reply.json()["expiresAt"].as_u64().unwrap();
    // 3,600 s from the verify call, which fell within these two readings of the clock.
    assert!(
        (now + 3600..=after + 3600).contains(&expires_at),
        "{expires_at} for 3600.75 from between {now} and {after}"
    );
    assert_eq!(calls.get(), 1);
}

/// A profile naming no one (`"userId": ""`) is LINE out of spec, as one without `userId` is:
/// 503, never a `LineUser` whose empty ID every such caller would share.
#[tokio::test]
async fn a_profile_with_an_empty_user_id_is_503_and_never_reaches_the_handler() {
    let (_line, base, calls, token) = app_where_line_answers(
        line_auth_emulator::Endpoint::Profile,
        StatusCode::OK,
        r#"{"userId":"","displayName":"Brown"}"#.to_owned(),
    )
    .await;

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(calls.get(), 0);
}

/// An app on a scripted LINE that vouches for any token for `expires_in` seconds and takes
/// `profile_takes` over the profile; its handle, its base URL, its handler's calls, and whether
/// the profile was asked for yet.
async fn app_on_a_line_slow_over_the_profile(
    expires_in: u64,
    profile_takes: std::time::Duration,
) -> (
    line_auth::LineAuthHandle,
    String,
    HandlerCalls,
    Arc<AtomicBool>,
) {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;

    let profile_asked = Arc::new(AtomicBool::new(false));
    let slow_profile = get({
        let profile_asked = profile_asked.clone();
        move || async move {
            profile_asked.store(true, Ordering::SeqCst);
            tokio::time::sleep(profile_takes).await;
            (
                [(CONTENT_TYPE, "application/json")],
                r#"{"userId":"U4af4980629a1b2c3d4e5f6a7b8c9d0e1","displayName":"Brown"}"#,
            )
        }
    });
    let line_base = line_vouching("profile", expires_in, "/v2/profile", slow_profile).await;
    let config = line_auth::LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(&line_base);
    let layer = LineAuthLayer::new(config.build().unwrap());
    let auth = layer.handle();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;
    (auth, base, calls, profile_asked)
}

/// LINE vouches for a token, then takes 1.5 s over its profile, and the token is signed out
/// here meanwhile (LINE, scripted, does not hear of it): the verdict lands after the sign-out,
/// so the request waiting on it is refused, and the verification counts as refused.
#[tokio::test]
async fn a_verdict_landing_after_a_sign_out_lets_no_one_through() {
    use std::time::Duration;

    let (auth, base, calls, profile_asked) =
        app_on_a_line_slow_over_the_profile(3600, Duration::from_millis(1_500)).await;
    let token = "scripted-access-token-0123456789";

    let waiting = tokio::spawn({
        let base = base.clone();
        async move { get_bearer(&base, "/api/me", token).await }
    });
    let asked = || profile_asked.load(Ordering::SeqCst);
    assert!(eventually(Duration::from_secs(2), asked).await);
    // The scripted LINE has no revoke: the sign-out here stands all the same.
    let _ = auth.logout(token).await;

    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert!(reply.body.contains("revoked"), "{}", reply.body);
    assert_eq!(calls.get(), 0);
    let stats = auth.stats();
    assert_eq!((stats.verified, stats.refused), (0, 1), "{stats:?}");
}

/// LINE vouches for a token with a second left (`expires_in: 1`), then takes 1.6 s over its
/// profile: the verdict lands after the token's expiry. Neither the request that began the
/// verification nor one that joined it after the expiry reaches the handler, as none after it
/// does, and the verification counts as refused, not verified.
#[tokio::test]
async fn a_verdict_landing_after_the_tokens_expiry_lets_no_one_through() {
    use std::time::Duration;

    let (auth, base, calls, _) =
        app_on_a_line_slow_over_the_profile(1, Duration::from_millis(1_600)).await;
    let token = "scripted-access-token-0123456789";

    let first = tokio::spawn({
        let base = base.clone();
        async move { get_bearer(&base, "/api/me", token).await }
    });
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let joined = get_bearer(&base, "/api/me", token).await;
    let first = first.await.unwrap();
    let after = get_bearer(&base, "/api/me", token).await;

    for (reply, which) in [(first, "first"), (joined, "joined"), (after, "after")] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{which}");
        assert_eq!(
            reply.json()["error_description"],
            "the access token expired",
            "{which}"
        );
    }
    assert_eq!(calls.get(), 0);
    let stats = auth.stats();
    assert_eq!((stats.verified, stats.refused), (0, 1), "{stats:?}");
}
