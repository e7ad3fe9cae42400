//! Logout and invalidation through the `LineAuthHandle` handle, over HTTP against the emulator.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use line_auth::{LineAuthError, LineAuthHandle, LineAuthLayer, LineUser, VerifiedToken};
use line_auth_emulator::{Endpoint, Fault, IssueToken};
use tokio::task::JoinHandle;

use crate::support::*;

/// The example server's routes: `/api/me`, and `POST /api/logout` revoking and forgetting.
pub(crate) fn app(layer: LineAuthLayer) -> Router {
    async fn logout(
        State(auth): State<LineAuthHandle>,
        token: VerifiedToken,
    ) -> Result<StatusCode, LineAuthError> {
        auth.logout(token.as_str()).await?;
        Ok(StatusCode::NO_CONTENT)
    }
    Router::new()
        .route("/api/me", get(|user: LineUser| async move { Json(user) }))
        .route("/api/logout", post(logout))
        .route_layer(layer.clone())
        .with_state(layer.handle())
}

/// [`app`] behind a layer built from `config`: the layer's handle and the app's address.
async fn served_with_handle(config: line_auth::LineAuthConfigBuilder) -> (LineAuthHandle, String) {
    let layer = LineAuthLayer::new(config.build().unwrap());
    let auth = layer.handle();
    (auth, serve(app(layer)).await)
}

/// `POST /api/logout` with `token`: the app's answer, its body read as JSON.
async fn logout_answer(base: &str, token: &str) -> (StatusCode, HeaderMap, serde_json::Value) {
    let answer = http()
        .post(format!("{base}/api/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (status, headers) = (answer.status(), answer.headers().clone());
    let body = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
    (status, headers, body)
}

pub(crate) async fn post_bearer(base: &str, path: &str, token: &str) -> StatusCode {
    http()
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn logout_revokes_at_line_and_the_token_is_refused_at_once() {
    let line = Line::start().await;
    let base = serve(app(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    assert_eq!(
        post_bearer(&base, "/api/logout", &token).await,
        StatusCode::NO_CONTENT
    );

    assert_eq!(line.emulator.calls().revoke, 1);
    let reply = get_bearer(&base, "/api/me", &token).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "not after the 5-minute cache TTL"
    );
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );
}

#[tokio::test]
async fn logout_sends_the_channel_of_the_token_and_the_secret() {
    let line = Line::start().await;
    let config = line
        .config()
        .channel_id(OTHER_CHANNEL)
        .channel_secret("channel-secret")
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let base = serve(app(layer)).await;
    let token = line.issue(IssueToken::new(OTHER_CHANNEL));
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    auth.logout(&token).await.unwrap();

    assert_eq!(line.emulator.calls().revoke, 1);
    let revocation = line
        .emulator
        .revocation(&token)
        .expect("revoked through the endpoint");
    assert_eq!(revocation.client_id, OTHER_CHANNEL);
    assert_eq!(revocation.client_secret.as_deref(), Some("channel-secret"));
}

#[tokio::test]
async fn logout_of_an_uncached_token_asks_line_for_its_channel() {
    let line = Line::start().await;
    let config = line.config().channel_id(OTHER_CHANNEL).build().unwrap();
    let auth = LineAuthLayer::new(config).handle();
    let token = line.issue(IssueToken::new(OTHER_CHANNEL));

    auth.logout(&token).await.unwrap();

    assert_eq!((line.calls(), line.emulator.calls().revoke), ((1, 0), 1));
    let revocation = line
        .emulator
        .revocation(&token)
        .expect("revoked through the endpoint");
    assert_eq!(
        (revocation.client_id.as_str(), revocation.client_secret),
        (OTHER_CHANNEL, None)
    );
}

#[tokio::test]
async fn logout_while_line_is_down_says_so_and_the_token_stays_refused_here() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let base = serve(app(layer)).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );

    assert_eq!(
        post_bearer(&base, "/api/logout", &token).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // LINE still knows the token as valid, but the user signed out here: refused, LINE not asked.
    line.emulator.clear_faults();
    let reply = get_bearer(&base, "/api/me", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );
    assert_eq!(line.calls(), (1, 1));
}

/// The expiry the cache learns errs early (LINE's `expires_in` counted from when the verify call
/// was made): a sign-out must err late instead, or a token LINE still vouches for (its revoke
/// failed) comes back in the last seconds of its life, by as long as its verification took.
#[tokio::test]
async fn a_signed_out_token_stays_refused_to_the_end_of_its_life_after_a_slow_verification() {
    let line = Line::start().await;
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    let config = line
        .config()
        .cache_max_ttl(Duration::from_secs(1))
        .negative_cache_ttl(Duration::ZERO)
        .upstream_timeout(Duration::from_secs(5))
        .upstream_max_attempts(1);
    let (auth, base) = served_with_handle(config).await;
    let lifetime = Duration::from_secs(6);
    let issued = tokio::time::Instant::now();
    let token = line.issue(IssueToken::new(CHANNEL).lifetime(lifetime));
    line.emulator
        .inject_times(Endpoint::Verify, Fault::Latency(Duration::from_secs(2)), 1);
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    assert!(
        auth.logout(&token).await.is_err(),
        "LINE failed the revoke: the token stays live there"
    );

    let mut served = Vec::new();
    while issued.elapsed() < lifetime + Duration::from_millis(500) {
        if get_bearer(&base, "/api/me", &token).await.status == StatusCode::OK {
            served.push(issued.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        served.is_empty(),
        "signed out, yet served at {served:?} after it was issued"
    );
}

/// Issue 14: a 429 is not asked again within the request, and the caller gets 503 with LINE's
/// `Retry-After`, a logout's revoke included (the layer retries it in the background, waiting as
/// LINE asked).
#[tokio::test]
async fn a_logout_line_rate_limited_passes_lines_retry_after_on() {
    let line = Line::start().await;
    let base = serve(app(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        },
    );

    let (status, headers, _) = logout_answer(&base, &token).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "30");
    assert_eq!(
        line.emulator.calls().revoke,
        1,
        "not asked again within the request"
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A logout whose revoke LINE failed (5xx) or never answered says that LINE was not told, not
/// that a verification failed, and no `Retry-After` where LINE named none: the layer retries the revoke itself.
#[tokio::test]
async fn a_logout_line_could_not_take_says_the_revoke_did_not_reach_line() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_timeout(Duration::from_millis(300))
        .upstream_max_attempts(1)
        .build()
        .unwrap();
    let base = serve(app(LineAuthLayer::new(config))).await;
    for fault in [
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Fault::Hang,
    ] {
        let token = line.token();
        line.emulator.inject(Endpoint::Revoke, fault);

        let (status, headers, body) = logout_answer(&base, &token).await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(headers.get("retry-after").is_none(), "{headers:?}");
        let said = body["error_description"].as_str().unwrap_or_default();
        assert!(
            said.contains("revoke") && !said.contains("verify"),
            "a revoke LINE could not take is not a failed verification: {body}"
        );
        line.emulator.clear_faults();
        assert_eq!(
            get_bearer(&base, "/api/me", &token).await.status,
            StatusCode::UNAUTHORIZED,
            "the token stays refused here"
        );
    }
}

/// [`app`] behind a layer asking LINE once a call (no transport retries, so each revoke the
/// emulator counts is one try of the layer's), its handle, its address, and a token it verified.
async fn verified_asking_line_once_a_call() -> (Line, LineAuthHandle, String, String) {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_timeout(Duration::from_secs(3))
        .upstream_max_attempts(1);
    let (auth, base) = served_with_handle(config).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    (line, auth, base, token)
}

/// A revoke LINE failed is retried in the background until LINE takes it: the caller cannot
/// retry, since from the logout on the layer refuses the token, the logout route's included.
#[tokio::test]
async fn a_revoke_line_failed_is_retried_in_the_background_until_line_takes_it() {
    let (line, _, base, token) = verified_asking_line_once_a_call().await;
    // The logout's own try and the first retry fail; the second retry reaches LINE.
    line.emulator.inject_times(
        Endpoint::Revoke,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        2,
    );

    let (status, headers, body) = logout_answer(&base, &token).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        headers.get("retry-after").is_none(),
        "nothing for the caller to retry: {headers:?}"
    );
    let said = body["error_description"].as_str().unwrap_or_default();
    assert!(said.contains("retried"), "{body}");
    assert_eq!(
        post_bearer(&base, "/api/logout", &token).await,
        StatusCode::UNAUTHORIZED,
        "a second logout with the token cannot get through the layer"
    );
    assert!(
        eventually(Duration::from_secs(10), || line
            .emulator
            .revocation(&token)
            .is_some())
        .await,
        "LINE never revoked the token"
    );
    assert_eq!(line.emulator.calls().revoke, 3);
}

/// A retry LINE refuses (`invalid_client`: the channel became Web app only, and this layer has
/// no secret) ends the retries: waiting would not change LINE's answer.
#[tokio::test]
async fn a_revoke_retry_line_refuses_is_not_retried_again() {
    let (line, auth, _, token) = verified_asking_line_once_a_call().await;
    line.emulator.inject_times(
        Endpoint::Revoke,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        1,
    );

    auth.logout(&token).await.unwrap_err();
    line.emulator
        .set_channel_type(CHANNEL, line_auth_emulator::ChannelType::WebAppOnly);

    assert!(eventually(Duration::from_secs(5), || line.emulator.calls().revoke == 2).await);
    // Were it retried again, the next try would come 1.5-2.5 s after the refused one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(line.emulator.calls().revoke, 2);
    assert!(line.emulator.revocation(&token).is_none());
}

#[tokio::test]
async fn forget_makes_the_next_request_ask_line() {
    let Verified {
        line,
        auth,
        base,
        token,
    } = Verified::start().await;
    line.emulator.revoke(&token);
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK,
        "cached"
    );

    auth.forget(&token);

    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(line.calls(), (2, 1));
}

#[tokio::test]
async fn forget_user_drops_every_token_of_that_user_only() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let brown = "U00000000000000000000000000000b01";
    let (phone, laptop) = (
        line.issue(IssueToken::new(CHANNEL).user_id(brown)),
        line.issue(IssueToken::new(CHANNEL).user_id(brown)),
    );
    let cony = line.issue(IssueToken::new(CHANNEL).user_id("U00000000000000000000000000000c02"));
    for token in [&phone, &laptop, &cony] {
        assert_eq!(
            get_bearer(&base, "/api/me", token).await.status,
            StatusCode::OK
        );
    }

    auth.forget_user(brown);
    for token in [&phone, &laptop, &cony] {
        assert_eq!(
            get_bearer(&base, "/api/me", token).await.status,
            StatusCode::OK
        );
    }

    assert_eq!(
        line.calls(),
        (5, 5),
        "Brown's two tokens were verified again, Cony's was not"
    );
}

#[tokio::test]
async fn clear_forgets_verified_and_refused_tokens() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let (good, bad) = (line.token(), "eyJhbGciOiJIUzI1NiJ9.YmFk.YmFk".to_owned());
    get_bearer(&base, "/api/me", &good).await;
    get_bearer(&base, "/api/me", &bad).await;

    auth.clear();
    get_bearer(&base, "/api/me", &good).await;
    get_bearer(&base, "/api/me", &bad).await;

    assert_eq!(line.calls(), (4, 2));
}

/// A request for a token whose verification takes 400 ms at LINE (well under the 1 s attempt
/// timeout, so it is answered, not tried again), and the token forgotten while that verification
/// is in the air: LINE, the app's base URL, the token and the request's status to come.
async fn forgotten_while_in_flight() -> (Line, String, String, JoinHandle<StatusCode>) {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let token = line.token();
    line.emulator.inject_times(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(400)),
        1,
    );
    let in_flight = request(&base, &token);
    line.wait_for_verify_calls(1).await;
    auth.forget(&token);
    (line, base, token, in_flight)
}

fn request(base: &str, token: &str) -> JoinHandle<StatusCode> {
    let (base, token) = (base.to_owned(), token.to_owned());
    tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
}

#[tokio::test]
async fn a_verification_in_flight_does_not_bring_a_forgotten_token_back() {
    let (line, base, token, in_flight) = forgotten_while_in_flight().await;
    assert_eq!(
        in_flight.await.unwrap(),
        StatusCode::OK,
        "its own caller still gets LINE's answer"
    );

    get_bearer(&base, "/api/me", &token).await;
    assert_eq!(line.calls(), (2, 2), "but the answer was not cached");
}

/// A request that arrives after a forget, while a verification begun before it is still waiting
/// for LINE, is not handed that verification's answer: LINE is asked again for it.
#[tokio::test]
async fn a_request_after_a_forget_does_not_join_the_verification_it_predates() {
    let (line, base, token, before) = forgotten_while_in_flight().await;
    let after = request(&base, &token);

    assert_eq!(before.await.unwrap(), StatusCode::OK);
    assert_eq!(after.await.unwrap(), StatusCode::OK);
    assert_eq!(
        line.calls(),
        (2, 2),
        "the request after the forget was verified with LINE on its own"
    );
}

#[tokio::test]
async fn emulator_revoke_answers_200_for_unknown_tokens_and_400_without_parameters() {
    let line = Line::start().await;
    let url = format!("{}/oauth2/v2.1/revoke", line.emulator.base_url());

    let unknown = http()
        .post(&url)
        .form(&[("access_token", "unknown"), ("client_id", CHANNEL)])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(unknown.text().await.unwrap(), "", "an empty body");

    let missing = http()
        .post(&url)
        .form(&[("client_id", CHANNEL)])
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_on_a_web_app_only_channel_without_its_secret_says_so_and_the_token_stays_refused() {
    let line = Line::start().await;
    line.emulator
        .set_channel_type(CHANNEL, line_auth_emulator::ChannelType::WebAppOnly);
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(app(layer)).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    let refused = auth.logout(&token).await.unwrap_err();

    assert!(
        matches!(
            &refused,
            LineAuthError::Unavailable(line_auth::rejection::UpstreamError::RevokeRefused { error })
                if &**error == "invalid_client"
        ),
        "{refused:?}"
    );
    let said = refused.to_string();
    assert!(
        said.contains("channel secret") && said.contains("Web app only"),
        "{said}"
    );
    assert_eq!(
        line.emulator.calls().revoke,
        1,
        "not retried: LINE answered"
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        line.emulator.revocation(&token).is_none(),
        "still live at LINE"
    );
}

#[tokio::test]
async fn logout_on_a_web_app_only_channel_with_its_secret_revokes_at_line() {
    let line = Line::start().await;
    line.emulator
        .set_channel_type(CHANNEL, line_auth_emulator::ChannelType::WebAppOnly);
    let secret = line.emulator.channel_secret(CHANNEL);
    let layer = LineAuthLayer::new(line.config().channel_secret(secret).build().unwrap());
    let auth = layer.handle();
    let token = line.token();

    auth.logout(&token).await.unwrap();

    assert_eq!(line.emulator.calls().revoke, 1);
    assert!(
        line.emulator.revocation(&token).is_some(),
        "revoked at LINE"
    );
}

#[tokio::test]
async fn a_logout_line_refused_answers_the_caller_with_the_likely_cause() {
    let line = Line::start().await;
    line.emulator
        .set_channel_type(CHANNEL, line_auth_emulator::ChannelType::WebAppOnly);
    let base = serve(app(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();

    let (status, headers, body) = logout_answer(&base, &token).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        headers.get("retry-after"),
        None,
        "waiting will not change LINE's answer"
    );
    let said = body["error_description"].as_str().unwrap_or_default();
    assert!(
        said.contains("revoke") && said.contains("channel secret"),
        "a refused revoke is not LINE failing to verify: {body}"
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED,
        "the token stays refused here"
    );
}

/// Issue 14, item 4: any error other than "this token is already invalid" is not success. LINE's
/// REST shape (`{"message"}`), naming the client secret, is a refusal as `invalid_client` is.
#[tokio::test]
async fn a_logout_line_refused_in_its_message_shape_is_not_reported_done() {
    let line = Line::start().await;
    let auth = LineAuthLayer::new(line.config().build().unwrap());
    let handle = auth.handle();
    let token = line.token();
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::Json {
            status: StatusCode::BAD_REQUEST,
            body: r#"{"message":"client_secret is required"}"#.to_owned(),
        },
    );

    let refused = handle.logout(&token).await.unwrap_err();

    assert!(
        matches!(
            refused,
            LineAuthError::Unavailable(line_auth::rejection::UpstreamError::RevokeRefused { .. })
        ),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("LINE_CHANNEL_SECRET"),
        "{refused}"
    );
}
