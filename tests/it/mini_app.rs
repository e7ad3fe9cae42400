//! LINE MINI App tokens: with channel consent simplification the user consents to `openid`
//! alone, so the token has no `profile` scope and `GET /v2/profile` refuses it. The layer names
//! the user through `GET /oauth2/v2.1/userinfo` instead.

use axum::http::StatusCode;
use line_auth::LineAuthLayer;
use line_auth_emulator::{IssueToken, LineEmulator};

use crate::logging::Capture;
use crate::support::*;

const USER: &str = "U4af4980629aabbccddeeff0011223344";

fn mini_app_token(line: &Line) -> String {
    line.issue(IssueToken::new(CHANNEL).scopes(["openid"]).user_id(USER))
}

#[tokio::test]
async fn an_openid_only_token_is_served_through_userinfo_when_openid_is_the_requirement() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let layer = LineAuthLayer::new(line.config().required_scopes(["openid"]).build().unwrap());
    let base = serve(routes(&calls).layer(layer)).await;
    let token = mini_app_token(&line);

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let user = reply.json();
    assert_eq!(user["userId"], USER);
    assert_eq!(user["scopes"], serde_json::json!(["openid"]));
    assert!(user.get("displayName").is_none(), "{user}");
    let asked = line.emulator.calls();
    assert_eq!(
        (asked.verify, asked.profile, asked.userinfo),
        (1, 0, 1),
        "verify, then userinfo; never the profile call that would refuse it"
    );

    // One verification, one cache entry, as for any token.
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    let asked = line.emulator.calls();
    assert_eq!((asked.verify, asked.userinfo), (1, 1));
    assert_eq!(calls.get(), 2);
}

#[tokio::test]
async fn a_token_with_profile_still_uses_the_profile_call() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().required_scopes(["openid"]).build().unwrap());
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let token = line.issue(
        IssueToken::new(CHANNEL)
            .scopes(["openid", "profile"])
            .display_name("Brown"),
    );

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.json()["displayName"], "Brown");
    let asked = line.emulator.calls();
    assert_eq!((asked.verify, asked.profile, asked.userinfo), (1, 1, 0));
}

#[tokio::test]
async fn by_default_profile_is_required_and_an_openid_only_token_gets_403() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;

    let reply = get_bearer(&base, "/api/me", &mini_app_token(&line)).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["error"], "insufficient_scope");
    let asked = line.emulator.calls();
    assert_eq!((asked.verify, asked.profile, asked.userinfo), (1, 0, 0));
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn the_verification_span_says_where_the_verdict_came_from_and_which_endpoint_named_the_user()
{
    let capture = Capture::install();
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().required_scopes(["openid"]).build().unwrap());
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;

    assert_eq!(
        get_bearer(&base, "/api/me", &mini_app_token(&line))
            .await
            .status,
        StatusCode::OK
    );

    let records = capture.records();
    // Each field is recorded on the span as it becomes known, one record apiece.
    for field in ["source=line", "user_endpoint=userinfo"] {
        assert!(
            records
                .iter()
                .any(|record| record.text.contains("line_auth.verify")
                    && record.text.contains(field)),
            "{field}: {:#?}",
            records.iter().map(|r| &r.text).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn a_mini_app_users_request_to_the_example_server_returns_their_user_id() {
    let line = LineEmulator::start().await.unwrap();
    let base_url = line.base_url();
    let (_server, base) = start_example(
        "server",
        &[
            ("LINE_CHANNEL_ID", CHANNEL),
            ("LINE_API_BASE", base_url.as_str()),
            ("LINE_REQUIRED_SCOPES", "openid"),
        ],
    );
    let token = line.issue(IssueToken::new(CHANNEL).scopes(["openid"]).user_id(USER));

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["userId"], USER);
    assert_eq!(line.calls().userinfo, 1);
}

/// A LINE whose verify vouches for an `openid`-only token of [`CHANNEL`] and whose userinfo
/// answers `status` with `body`.
async fn line_answering_userinfo(status: StatusCode, body: &'static str) -> String {
    line_naming_users("openid", "/oauth2/v2.1/userinfo", status, body).await
}

/// The token every request to a [`line_answering_userinfo`] carries (that LINE vouches for any).
const MINI_APP_TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.bWluaS1hcHA.c2ln";

/// The test app behind a layer requiring `openid`, pointed at the LINE at `line`.
async fn app_requiring_openid_of(line: &str) -> (String, HandlerCalls) {
    let config = line_auth::LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line)
        .required_scopes(["openid"])
        .build()
        .unwrap();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config))).await;
    (base, calls)
}

/// Userinfo's errors are undocumented (fact sheet §3.6), so the bodies here are guessed shapes:
/// a 401, or a 400 with an OAuth error body, is the token going bad between the two calls (401
/// `invalid_token`); a 400 in any other shape is LINE out of spec (503), not the caller's fault.
#[tokio::test]
async fn userinfo_refusing_the_token_is_401_and_a_400_without_an_oauth_error_is_503() {
    let cases: [(StatusCode, &str, StatusCode); 5] = [
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_token","error_description":"The access token expired"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            StatusCode::UNAUTHORIZED,
            r#"{"message":"Authentication failed"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_request","error_description":"access token expired"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            StatusCode::BAD_REQUEST,
            r#"{"message":"Bad Request"}"#,
            StatusCode::SERVICE_UNAVAILABLE,
        ),
        (
            StatusCode::BAD_REQUEST,
            "<html>Bad Request</html>",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    ];
    for (status, body, expected) in cases {
        let (base, calls) =
            app_requiring_openid_of(&line_answering_userinfo(status, body).await).await;

        let reply = get_bearer(&base, "/api/me", MINI_APP_TOKEN).await;

        assert_eq!(
            reply.status, expected,
            "userinfo {status} {body}: {}",
            reply.body
        );
        if expected == StatusCode::UNAUTHORIZED {
            let challenge = reply.challenge().unwrap();
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{challenge}"
            );
        }
        assert_eq!(calls.get(), 0);
    }
}

/// A userinfo answer naming no one (`"sub": ""`) is LINE out of spec, as one without `sub` is:
/// 503, never a `LineUser` whose empty ID every such caller would share.
#[tokio::test]
async fn userinfo_with_an_empty_sub_is_503_and_never_reaches_the_handler() {
    for body in [r#"{"sub":""}"#, r#"{"name":"Brown"}"#] {
        let line = line_answering_userinfo(StatusCode::OK, body).await;
        let (base, calls) = app_requiring_openid_of(&line).await;

        let reply = get_bearer(&base, "/api/me", MINI_APP_TOKEN).await;

        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{body}: {}",
            reply.body
        );
        assert_eq!(calls.get(), 0, "{body}");
    }
}

/// LINE failing on userinfo is LINE unavailable for an `openid`-only token: 503 with LINE's
/// `Retry-After` or the layer's own, never 401 and never the handler; a 5xx is asked again.
#[tokio::test]
async fn userinfo_failing_is_503_and_a_5xx_is_asked_again() {
    use line_auth_emulator::{Endpoint, Fault};
    let cases = [
        (Fault::Status(StatusCode::SERVICE_UNAVAILABLE), "5", 2),
        (
            Fault::RateLimited {
                retry_after: std::time::Duration::from_secs(7),
            },
            "7",
            1,
        ),
        (Fault::Hang, "5", 1),
    ];
    for (fault, retry_after, asked) in cases {
        let line = Line::start().await;
        let token = mini_app_token(&line);
        line.emulator.inject(Endpoint::UserInfo, fault.clone());
        let config = line
            .config()
            .required_scopes(["openid"])
            .upstream_max_attempts(2)
            .upstream_timeout(std::time::Duration::from_millis(800));
        let calls = HandlerCalls::default();
        let base = serve(routes(&calls).layer(LineAuthLayer::new(config.build().unwrap()))).await;

        let reply = get_bearer(&base, "/api/me", &token).await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{fault:?}");
        assert_eq!(reply.headers["retry-after"], retry_after, "{fault:?}");
        assert_eq!(line.emulator.calls().userinfo, asked, "{fault:?}");
        assert_eq!(calls.get(), 0, "{fault:?}");
    }
}
