//! Where the layer sits: optional mode, `route_layer`, the extractors, and plain tower services.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use line_auth::{LineAuthLayer, LineUser};
use line_auth_emulator::{Endpoint, Fault};
use tower::{ServiceBuilder, ServiceExt};

use crate::support::*;

fn greeting_routes() -> Router {
    Router::new().route(
        "/greeting",
        get(|user: Option<LineUser>| async move {
            match user {
                Some(user) => format!("hello, {}", user.display_name().unwrap_or("LINE user")),
                None => "hello, stranger".to_owned(),
            }
        }),
    )
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_and_still_verifies_tokens() {
    let line = Line::start().await;
    let base = serve(
        greeting_routes().layer(LineAuthLayer::new(line.config().build().unwrap()).optional()),
    )
    .await;
    let token = line.issue(line_auth_emulator::IssueToken::new(CHANNEL).display_name("Brown"));
    let revoked = line.token();
    line.emulator.revoke(&revoked);

    let anonymous = get_anonymous(&base, "/greeting").await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (StatusCode::OK, "hello, stranger")
    );

    let known = get_bearer(&base, "/greeting", &token).await;
    assert_eq!(
        (known.status, known.body.as_str()),
        (StatusCode::OK, "hello, Brown")
    );

    assert_eq!(
        get_bearer(&base, "/greeting", &revoked).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&base, "/greeting", &[b"Bearer a b"]).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn optional_id_token_mode_lets_anonymous_requests_through_and_verifies_id_tokens() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .id_tokens()
        .optional();
    let base = serve(greeting_routes().layer(layer)).await;
    let id_token = line.emulator.issue_id_token(
        line_auth_emulator::IssueIdToken::new(CHANNEL, "U4af4980629aabbccddeeff0011223344")
            .name("Brown"),
    );
    let access_token =
        line.issue(line_auth_emulator::IssueToken::new(CHANNEL).display_name("Cony"));

    let anonymous = get_anonymous(&base, "/greeting").await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (StatusCode::OK, "hello, stranger")
    );
    let known = get_bearer(&base, "/greeting", &id_token).await;
    assert_eq!(
        (known.status, known.body.as_str()),
        (StatusCode::OK, "hello, Brown")
    );
    // An access token is not an ID token: present, so verified as one, and refused.
    assert_eq!(
        get_bearer(&base, "/greeting", &access_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(line.calls().0, 0, "ID tokens are verified without LINE");
}

#[tokio::test]
async fn optional_mode_treats_another_authorization_scheme_as_anonymous() {
    let line = Line::start().await;
    let base = serve(
        greeting_routes().layer(LineAuthLayer::new(line.config().build().unwrap()).optional()),
    )
    .await;

    // Not a bearer token, so nothing for this layer to verify: the request is anonymous, as
    // one without the header is (`LineAuthLayer::optional`), and the handler decides.
    let reply = get_with(&base, "/greeting", &[b"Basic dXNlcjpwYXNzd29yZA=="]).await;

    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello, stranger")
    );
    assert_eq!(line.calls(), (0, 0), "LINE was not asked");
}

#[tokio::test]
async fn optional_mode_answers_503_when_line_is_down_never_the_anonymous_path() {
    let line = Line::start().await;
    let base = serve(
        greeting_routes().layer(LineAuthLayer::new(line.config().build().unwrap()).optional()),
    )
    .await;
    let token = line.token();
    line.emulator.stop().await;

    let reply = get_bearer(&base, "/greeting", &token).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a token LINE could not judge is not an anonymous request: {}",
        reply.body
    );
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert!(reply.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn route_layer_protects_its_routes_and_leaves_the_others_public() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let app = routes(&calls)
        .route_layer(LineAuthLayer::new(line.config().build().unwrap()))
        .route("/public", get(|| async { "public" }));
    let base = serve(app).await;

    let reply = get_anonymous(&base, "/public").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "public")
    );
    assert_eq!(
        get_anonymous(&base, "/api/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::OK
    );
    // Unknown paths stay 404: route_layer only runs for matched routes.
    assert_eq!(
        get_anonymous(&base, "/nope").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn line_user_extractor_without_the_layer_rejects_in_rfc6750_form() {
    let app = Router::new()
        .route("/api/me", get(|user: LineUser| async move { Json(user) }))
        .merge(greeting_routes());
    let base = serve(app).await;

    let reply = get_anonymous(&base, "/api/me").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some(r#"Bearer realm="line""#));

    let reply = get_anonymous(&base, "/greeting").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello, stranger")
    );
}

#[tokio::test]
async fn wraps_a_plain_tower_service() {
    let line = Line::start().await;
    let service = ServiceBuilder::new()
        .layer(LineAuthLayer::new(line.config().build().unwrap()))
        .service_fn(|request: Request<Body>| async move {
            let user = request
                .extensions()
                .get::<LineUser>()
                .expect("the layer inserted the user");
            Ok::<_, Infallible>(Response::new(Body::from(user.user_id().to_owned())))
        });
    let token = line.issue(
        line_auth_emulator::IssueToken::new(CHANNEL).user_id("U0123456789abcdef0123456789abcdef"),
    );

    let request = Request::get("/")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"U0123456789abcdef0123456789abcdef");

    let response = service
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[cfg(feature = "testing")]
#[test]
#[should_panic(expected = "not a token a request could carry")]
fn a_fixed_token_no_request_could_carry_is_refused_at_setup() {
    // A hit skips the charset check, so the cache must hold only tokens that pass it.
    let user = LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL).build();
    let config = line_auth::LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .build()
        .unwrap();
    let _ = LineAuthLayer::new(config).with_fixed_token("fixed token", user);
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn test_kit_fixed_tokens_are_accepted_without_line_and_still_checked() {
    let line = Line::start().await;
    let user = LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL)
        .display_name("Fixed")
        .build();
    let foreign = LineUser::builder("U0123456789abcdef0123456789abcdee", OTHER_CHANNEL).build();
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .with_fixed_token("fixed-token", user)
        .with_fixed_token("foreign-token", foreign);
    let base = serve(greeting_routes().layer(layer)).await;

    let reply = get_bearer(&base, "/greeting", "fixed-token").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello, Fixed")
    );
    assert_eq!(
        get_bearer(&base, "/greeting", "foreign-token").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(line.calls(), (0, 0));
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn an_expired_test_kit_fixed_token_is_refused_401() {
    let line = Line::start().await;
    let expired = LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL)
        .expires_at(std::time::SystemTime::now() - std::time::Duration::from_secs(1))
        .build();
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .with_fixed_token("expired-fixed-token", expired);
    let base = serve(greeting_routes().layer(layer)).await;

    let reply = get_bearer(&base, "/greeting", "expired-fixed-token").await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        reply.json()["error_description"],
        "the access token expired"
    );
    assert_eq!(line.calls(), (0, 0));
}

#[cfg(feature = "testing")]
fn fixed_user(display_name: &str) -> LineUser {
    LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL)
        .display_name(display_name)
        .build()
}

/// A handler test of a logout route must not need LINE: a fixed token is signed out here alone,
/// never sent to LINE's revoke endpoint (the default `api_base` is the real LINE), and refused
/// from then on.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_test_kit_fixed_token_signs_out_without_line() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .with_fixed_token("fixed-token", fixed_user("Fixed"));
    let auth = layer.handle();
    let base = serve(greeting_routes().layer(layer)).await;
    assert_eq!(
        get_bearer(&base, "/greeting", "fixed-token").await.status,
        StatusCode::OK
    );

    auth.logout("fixed-token").await.unwrap();

    let reply = get_bearer(&base, "/greeting", "fixed-token").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        line.emulator.calls().revoke,
        0,
        "LINE was asked to revoke a fixed token"
    );
    assert_eq!(line.calls(), (0, 0));
}

/// The same with LINE unreachable: the sign-out succeeds, and stays.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_test_kit_fixed_token_signs_out_with_line_unreachable() {
    let config = line_auth::LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base("http://127.0.0.1:1")
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config).with_fixed_token("fixed-token", fixed_user("Fixed"));
    let auth = layer.handle();
    let base = serve(greeting_routes().layer(layer)).await;

    auth.logout("fixed-token").await.unwrap();
    auth.forget("fixed-token");
    auth.clear();

    let reply = get_bearer(&base, "/greeting", "fixed-token").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );
}

/// A fixed token whose cache entry went (evicted, forgotten, cleared) is the test kit's again at
/// its next request: it is never sent to LINE's verify endpoint.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_test_kit_fixed_token_out_of_the_cache_is_not_sent_to_line() {
    let line = Line::start().await;
    let config = line.config().cache_max_entries(1).build().unwrap();
    let layer = LineAuthLayer::new(config)
        .with_fixed_token("first-token", fixed_user("First"))
        .with_fixed_token("second-token", fixed_user("Second"));
    let auth = layer.handle();
    let base = serve(greeting_routes().layer(layer)).await;

    for _ in 0..3 {
        for (token, name) in [("first-token", "First"), ("second-token", "Second")] {
            let reply = get_bearer(&base, "/greeting", token).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (StatusCode::OK, format!("hello, {name}").as_str())
            );
        }
    }
    auth.forget("first-token");
    auth.forget_user("U0123456789abcdef0123456789abcdef");
    auth.clear();
    let reply = get_bearer(&base, "/greeting", "first-token").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello, First")
    );
    assert_eq!(line.calls(), (0, 0), "a fixed token reached LINE");
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn a_test_kit_fixed_token_lacking_a_required_scope_is_refused_403() {
    let line = Line::start().await;
    let openid_only = LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL)
        .scopes(["openid"])
        .build();
    let both = LineUser::builder("U0123456789abcdef0123456789abcdee", CHANNEL)
        .display_name("Both")
        .scopes(["openid", "profile"])
        .build();
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .with_fixed_token("openid-only-token", openid_only)
        .with_fixed_token("both-scopes-token", both);
    let base = serve(greeting_routes().layer(layer)).await;

    let reply = get_bearer(&base, "/greeting", "openid-only-token").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply.challenge().unwrap().ends_with(r#"scope="profile""#),
        "{:?}",
        reply.challenge()
    );
    let reply = get_bearer(&base, "/greeting", "both-scopes-token").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "hello, Both")
    );
    assert_eq!(line.calls(), (0, 0));
}

/// The custom answer, or a panic naming the refusal that got the default one.
async fn custom_answer(base: &str, token: Option<&str>, refusal: &str) -> (StatusCode, String) {
    let reply = match token {
        Some(token) => get_bearer(base, "/api/me", token).await,
        None => get_anonymous(base, "/api/me").await,
    };
    assert_eq!(
        reply.headers.get("x-custom").map(|v| v.to_str().unwrap()),
        Some("yes"),
        "{refusal}: {}",
        reply.body
    );
    let body = reply.json();
    assert_eq!(body["code"], reply.status.as_u16(), "{refusal}");
    (reply.status, body["why"].as_str().unwrap().to_owned())
}

/// The custom rejection of these tests: JSON of its own, marked `x-custom: yes`.
fn custom_refusal(error: &line_auth::LineAuthError) -> Response<bytes::Bytes> {
    let body = serde_json::json!({"code": error.status().as_u16(), "why": error.to_string()});
    let mut response = Response::new(bytes::Bytes::from(body.to_string()));
    *response.status_mut() = error.status();
    response
        .headers_mut()
        .insert("x-custom", "yes".parse().unwrap());
    response
}

#[tokio::test]
async fn custom_rejections_answer_every_refusal_immediate_or_after_line() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).with_rejection(custom_refusal);
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let revoked = line.token();
    line.emulator.revoke(&revoked);
    let foreign = line.issue(line_auth_emulator::IssueToken::new(OTHER_CHANNEL));
    let openid_only = line.issue(line_auth_emulator::IssueToken::new(CHANNEL).scopes(["openid"]));
    let while_line_is_down = line.token();

    let (status, why) = custom_answer(&base, None, "no token").await;
    assert_eq!(
        (status, why.as_str()),
        (StatusCode::UNAUTHORIZED, "a LINE access token is required")
    );

    let (status, why) = custom_answer(&base, Some(&revoked), "revoked, said LINE").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(why.contains("revoked"), "{why}");
    let verify_calls = line.calls().0;
    let (status, why) = custom_answer(&base, Some(&revoked), "revoked, negative cache").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(why.contains("revoked"), "{why}");
    assert_eq!(
        line.calls().0,
        verify_calls,
        "answered from the negative cache"
    );

    let (status, why) = custom_answer(&base, Some(&foreign), "foreign channel").await;
    assert_eq!(
        (status, why.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            "the access token belongs to another channel"
        )
    );

    let (status, why) = custom_answer(&base, Some(&openid_only), "missing scope").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(why.contains("lacks a required scope"), "{why}");

    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    let (status, why) = custom_answer(&base, Some(&while_line_is_down), "LINE down").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(why.starts_with("LINE could not verify the token"), "{why}");
    line.emulator.clear_faults();

    let ok = get_bearer(&base, "/api/me", &line.token()).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(!ok.headers.contains_key("x-custom"));
}

/// A custom rejection answers refusals made inside the layer too: a route's
/// `RequireScopesLayer`, and the `LineUser` extractor of an optional layer's anonymous request.
/// One format for clients, wherever the refusal was decided.
#[tokio::test]
async fn custom_rejections_answer_refusals_made_inside_the_layer() {
    use line_auth::RequireScopesLayer;
    let line = Line::start().await;
    let app = |layer: LineAuthLayer| {
        Router::new()
            .route(
                "/api/me",
                get(|user: LineUser| async move { user.user_id().to_owned() })
                    .route_layer(RequireScopesLayer::new(["openid"])),
            )
            .route(
                "/api/extractor",
                get(|user: LineUser| async move { user.user_id().to_owned() }),
            )
            .route(
                "/api/token",
                get(|_: line_auth::VerifiedToken| async { "token" }),
            )
            .route(
                "/api/handler-refuses",
                get(|| async {
                    // A handler's own refusal, with a header of its own (a session cookie
                    // cleared): the header stays with the custom answer. Those describing the
                    // default answer's body (as a compression layer inside would set) do not.
                    (
                        [
                            ("set-cookie", "session=; Max-Age=0"),
                            ("content-encoding", "gzip"),
                            ("etag", "\"default\""),
                            ("retry-after", "7"),
                        ],
                        line_auth::LineAuthError::ForeignChannel,
                    )
                }),
            )
            .route(
                "/api/handler-answers-404",
                get(|| async {
                    // The handler chose another status: its answer, not a refusal to replace.
                    (
                        StatusCode::NOT_FOUND,
                        line_auth::LineAuthError::MissingToken,
                    )
                }),
            )
            .layer(layer)
    };
    let config = || line.config().build().unwrap();
    let required = serve(app(
        LineAuthLayer::new(config()).with_rejection(custom_refusal)
    ))
    .await;
    let optional = serve(app(LineAuthLayer::new(config())
        .optional()
        .with_rejection(custom_refusal)))
    .await;

    let (status, why) = custom_answer(&required, Some(&line.token()), "route's scope").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(why.contains("lacks a required scope"), "{why}");

    for extractor in ["/api/extractor", "/api/token"] {
        let reply = get_anonymous(&optional, extractor).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{extractor}");
        assert_eq!(
            reply.headers.get("x-custom").map(|v| v.to_str().unwrap()),
            Some("yes"),
            "{extractor}'s refusal: {}",
            reply.body
        );
    }

    let reply = get_bearer(&required, "/api/handler-refuses", &line.token()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers.get("x-custom").map(|v| v.to_str().unwrap()),
        Some("yes"),
        "the handler's refusal: {}",
        reply.body
    );
    assert_eq!(
        reply.headers.get("set-cookie").map(|v| v.to_str().unwrap()),
        Some("session=; Max-Age=0"),
        "the handler's own header"
    );
    for describing_the_default in ["content-encoding", "etag", "retry-after"] {
        assert!(
            !reply.headers.contains_key(describing_the_default),
            "{describing_the_default} kept"
        );
    }

    let reply = get_bearer(&required, "/api/handler-answers-404", &line.token()).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(!reply.headers.contains_key("x-custom"));

    let with_openid =
        line.issue(line_auth_emulator::IssueToken::new(CHANNEL).scopes(["profile", "openid"]));
    let ok = get_bearer(&required, "/api/me", &with_openid).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(!ok.headers.contains_key("x-custom"));
}

#[tokio::test]
async fn a_route_can_require_more_scopes_than_the_layer() {
    use line_auth::RequireScopesLayer;
    let line = Line::start().await;
    let app = Router::new()
        .route(
            "/api/id",
            get(|user: LineUser| async move { user.user_id().to_owned() })
                .route_layer(RequireScopesLayer::new(["openid"])),
        )
        .route("/api/me", get(|user: LineUser| async move { Json(user) }))
        .route_layer(LineAuthLayer::new(line.config().build().unwrap()));
    let base = serve(app).await;
    let profile_only = line.token();
    let with_openid =
        line.issue(line_auth_emulator::IssueToken::new(CHANNEL).scopes(["profile", "openid"]));

    assert_eq!(
        get_bearer(&base, "/api/me", &profile_only).await.status,
        StatusCode::OK
    );
    let reply = get_bearer(&base, "/api/id", &profile_only).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge().unwrap().ends_with(r#"scope="openid""#));
    assert_eq!(
        get_bearer(&base, "/api/id", &with_openid).await.status,
        StatusCode::OK
    );
    assert_eq!(
        line.calls(),
        (2, 2),
        "the route's check used the verified user, not LINE"
    );
}

#[tokio::test]
async fn opt_in_token_sources_are_read_and_verified_like_the_header() {
    use line_auth::TokenSource;
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).token_sources([
        TokenSource::AuthorizationHeader,
        TokenSource::Cookie("line_token".into()),
        TokenSource::QueryParameter("access_token".into()),
    ]);
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let opaque =
        line.issue(line_auth_emulator::IssueToken::new(CHANNEL).token_value("abc+def/ghi=="));
    let revoked = line.token();
    line.emulator.revoke(&revoked);

    let by_cookie = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("theme=dark; line_token={}", line.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);

    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/me"),
        [("access_token", opaque.as_str())],
    )
    .unwrap();
    assert_eq!(
        http().get(url).send().await.unwrap().status(),
        StatusCode::OK,
        "percent-decoded"
    );

    let revoked_cookie = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("line_token={revoked}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked_cookie.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        get_anonymous(&base, "/api/me").await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// RFC 6750 §3.1: a request that "uses more than one method for including an access token" (here
/// `Authorization` and the query) is `invalid_request` (400), and so is a duplicated query
/// parameter or custom header, each named as what it is. A cookie or a custom header is no such
/// method: the first source in the list wins, so a cookie left behind (or planted by a sibling
/// subdomain) does not block a request sent with a header. No refusal reaches LINE or the
/// handler.
#[tokio::test]
async fn a_header_token_with_a_query_token_is_refused_400_and_otherwise_the_first_source_wins() {
    use line_auth::TokenSource;
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let layer = LineAuthLayer::new(line.config().build().unwrap()).token_sources([
        TokenSource::AuthorizationHeader,
        TokenSource::Cookie("line_token".into()),
        TokenSource::Header(axum::http::HeaderName::from_static("x-line-token")),
        TokenSource::QueryParameter("access_token".into()),
    ]);
    let base = serve(routes(&calls).layer(layer)).await;
    let token = line.token();
    let with_query = |query: &str| format!("{base}/api/me?{query}");

    let refused = [
        (
            "header and query",
            http()
                .get(with_query(&format!("access_token={token}")))
                .bearer_auth(&token),
            "more than one place",
        ),
        (
            "a good header, a malformed query token",
            http()
                .get(with_query("access_token=a%20b"))
                .bearer_auth(&token),
            "more than one place",
        ),
        (
            "two query parameters",
            http().get(with_query(&format!(
                "access_token={token}&access_token={token}"
            ))),
            "more than one token query parameter",
        ),
        (
            "two custom headers",
            http()
                .get(format!("{base}/api/me"))
                .header("x-line-token", &token)
                .header("x-line-token", &token),
            "more than one token header",
        ),
    ];
    for (case, request, description) in refused {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"invalid_request\""),
            "{case}: {challenge}"
        );
        assert!(challenge.contains(description), "{case}: {challenge}");
    }
    assert_eq!(line.calls(), (0, 0), "no refusal asked LINE");
    assert_eq!(calls.get(), 0, "no refused request reached the handler");

    let served = [
        (
            "a header, and a stale cookie",
            http()
                .get(format!("{base}/api/me"))
                .bearer_auth(&token)
                .header("cookie", "line_token=left-behind"),
        ),
        (
            "a header, and a malformed cookie",
            http()
                .get(format!("{base}/api/me"))
                .bearer_auth(&token)
                .header("cookie", "line_token=\"bad token\""),
        ),
        (
            "a cookie, and a custom header",
            http()
                .get(format!("{base}/api/me"))
                .header("cookie", format!("line_token={token}"))
                .header("x-line-token", "ignored"),
        ),
    ];
    for (case, request) in served {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{case}");
    }
}

/// RFC 9111 §3.5 keeps shared caches from storing a response to a request with `Authorization`;
/// nothing keeps them from storing one authenticated by a cookie or a custom header. Such a
/// response is personal, so it says `Cache-Control: private`, unless the handler said who may
/// store it (`public`, `private`, `no-store`, `s-maxage`); a handler's `max-age` alone, or a
/// `private` naming fields, gets `private` added.
#[tokio::test]
async fn a_response_authenticated_by_a_cookie_or_a_custom_header_is_private() {
    use line_auth::TokenSource;
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).token_sources([
        TokenSource::AuthorizationHeader,
        TokenSource::Cookie("line_token".into()),
        TokenSource::Header(axum::http::HeaderName::from_static("x-line-token")),
    ]);
    let app = routes(&HandlerCalls::default())
        .route(
            "/api/public",
            get(|_: LineUser| async { ([("cache-control", "public, max-age=60")], "ok") }),
        )
        .route(
            "/api/fresh",
            get(|_: LineUser| async { ([("cache-control", "max-age=60")], "ok") }),
        )
        .route(
            "/api/private-cookie",
            get(|_: LineUser| async {
                (
                    [("cache-control", r#"private="Set-Cookie, X-Id", max-age=60"#)],
                    "ok",
                )
            }),
        )
        .route(
            "/api/two-lines",
            get(|_: LineUser| async {
                (
                    axum::response::AppendHeaders([
                        ("cache-control", "max-age=60"),
                        ("cache-control", "no-store"),
                    ]),
                    "ok",
                )
            }),
        )
        .layer(layer);
    let base = serve(app).await;
    let token = line.token();
    // Every `Cache-Control` line, as one list.
    let cache_control = |response: &reqwest::Response| {
        let lines: Vec<&str> = response
            .headers()
            .get_all("cache-control")
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        (!lines.is_empty()).then(|| lines.join(", "))
    };

    let by_cookie = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("line_token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    assert_eq!(cache_control(&by_cookie).as_deref(), Some("private"));

    // Its refusal too: nothing personal, but nothing for a shared cache either.
    let refused = http()
        .get(format!("{base}/api/me"))
        .header("cookie", "line_token=eyJhbGciOiJIUzI1NiJ9.am5r.am5r")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cache_control(&refused).as_deref(), Some("private"));

    // And a refusal of what a cookie or a custom header held malformed, read before LINE is
    // asked; a malformed `Authorization` needs nothing (RFC 9111 §3.5).
    let malformed = [
        (
            "a malformed cookie",
            vec![("cookie", "line_token=bad!!")],
            Some("private"),
        ),
        (
            "an empty cookie",
            vec![("cookie", "line_token=")],
            Some("private"),
        ),
        (
            "two token cookies",
            vec![("cookie", "line_token=abc; line_token=def")],
            Some("private"),
        ),
        (
            "an empty custom header",
            vec![("x-line-token", "")],
            Some("private"),
        ),
        (
            "two custom headers",
            vec![("x-line-token", "abc"), ("x-line-token", "def")],
            Some("private"),
        ),
        (
            "a malformed Authorization",
            vec![("authorization", "Bearer bad!!")],
            None,
        ),
    ];
    for (case, headers, expected) in malformed {
        let mut request = http().get(format!("{base}/api/me"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(cache_control(&refused).as_deref(), expected, "{case}");
    }

    let by_header = http()
        .get(format!("{base}/api/me"))
        .header("x-line-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::OK);
    assert_eq!(cache_control(&by_header).as_deref(), Some("private"));

    let by_authorization = http()
        .get(format!("{base}/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_authorization.status(), StatusCode::OK);
    assert_eq!(
        cache_control(&by_authorization),
        None,
        "RFC 9111 §3.5 covers it"
    );

    for (path, expected) in [
        ("/api/public", "public, max-age=60"),
        ("/api/fresh", "max-age=60, private"),
        ("/api/two-lines", "max-age=60, no-store"),
        // A `private` naming fields keeps only those from shared caches, not the body
        // (RFC 9111 §5.2.2.7), so it does not say who may store the response.
        (
            "/api/private-cookie",
            r#"private="Set-Cookie, X-Id", max-age=60, private"#,
        ),
    ] {
        let handler_said = http()
            .get(format!("{base}{path}"))
            .header("cookie", format!("line_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(handler_said.status(), StatusCode::OK, "{path}");
        assert_eq!(
            cache_control(&handler_said).as_deref(),
            Some(expected),
            "{path}"
        );
    }
}
