//! How the layer and `LineLoginClient` treat LINE's transport-level answers: redirects are never
//! followed (a token never reaches another host), `Retry-After` (its cap, its date form, its
//! default), a revoke LINE answers with 400, which calls are tried again after a 5xx, and
//! LINE's `x-line-request-id` in the logs, and the key set's own bound on its size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use line_auth::login::{AuthorizeRequest, LineLoginClient, LineLoginError, Pkce, TokenSet};
use line_auth::rejection::UpstreamError;
use line_auth::{LineAuthConfig, LineAuthError, LineAuthLayer};
use line_auth_emulator::{Endpoint, Fault, IssueIdToken};

use crate::logging::Capture;
use crate::support::*;

/// A request as a server received it.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    /// Path and query.
    uri: String,
    headers: String,
    body: String,
}

impl Received {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

/// A loopback server that records every request it gets.
struct Host {
    base: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Host {
    /// Serves `answer` for every request, recording each one first.
    async fn start(answer: impl Fn(&Received) -> Response + Clone + Send + Sync + 'static) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&received);
        let router = Router::new().fallback(move |request: Request| {
            let (record, answer) = (Arc::clone(&record), answer.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 64 * 1024)
                    .await
                    .unwrap_or_default();
                let request = Received {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: format!("{:?}", parts.headers),
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let response = answer(&request);
                record.lock().unwrap().push(request);
                response
            }
        });
        Self {
            base: serve(router).await,
            received,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How many requests to `path` it got.
    fn received_at(&self, path: &str) -> usize {
        self.received().iter().filter(|r| r.path() == path).count()
    }
}

/// One JSON body that passes for LINE's answer to every call (verify, profile, token, revoke),
/// so a redirect that were followed would end in success and the test would see it.
const ANY_LINE_ANSWER: &str = r#"{"client_id":"1234567890","expires_in":2592000,"scope":"profile openid","userId":"U00000000000000000000000000000000","displayName":"Thief","access_token":"eyJhbGciOiJIUzI1NiJ9.c3RvbGVu.c2ln","refresh_token":"stolen-refresh","token_type":"Bearer","sub":"U00000000000000000000000000000000","friendFlag":true}"#;

fn any_line_answer() -> Response {
    json_answer(Body::from(ANY_LINE_ANSWER))
}

/// A 200 answer with a JSON `body`.
fn json_answer(body: Body) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}

/// Another host, happy to receive tokens: it answers as LINE would and records what it got.
async fn elsewhere() -> Host {
    Host::start(|_| any_line_answer()).await
}

/// A LINE whose answers on `paths` redirect (`status`, `Location`) to the same path and query
/// on `to`; other paths get [`ANY_LINE_ANSWER`].
async fn line_redirecting(status: StatusCode, paths: &'static [&'static str], to: &Host) -> Host {
    let to = to.base.clone();
    Host::start(move |request| {
        if paths.contains(&request.path()) {
            Response::builder()
                .status(status)
                .header("location", format!("{to}{}", request.uri))
                .body(Body::empty())
                .unwrap()
        } else {
            any_line_answer()
        }
    })
    .await
}

const VERIFY: &str = "/oauth2/v2.1/verify";
const PROFILE: &str = "/v2/profile";
const REVOKE: &str = "/oauth2/v2.1/revoke";
const TOKEN: &str = "/oauth2/v2.1/token";
const CERTS: &str = "/oauth2/v2.1/certs";
const USERINFO: &str = "/oauth2/v2.1/userinfo";
const FRIENDSHIP: &str = "/friendship/v1/status";

/// A token in LINE's shape; no emulator is involved.
const TOKEN_VALUE: &str = "eyJhbGciOiJIUzI1NiJ9.dHJhbnNwb3J0LXRlc3Q.c2lnbmF0dXJlLXZhbHVl";

fn layer_for(line: &Host) -> LineAuthLayer {
    LineAuthLayer::new(
        LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(&line.base)
            .build()
            .unwrap(),
    )
}

fn assert_asked(line: &Host, path: &str) {
    assert!(
        line.received().iter().any(|request| request.path() == path),
        "LINE was asked {path}: {:?}",
        line.received()
    );
}

fn assert_nothing_reached(elsewhere: &Host) {
    let received: Vec<String> = elsewhere
        .received()
        .iter()
        .map(|r| format!("{} {} {} {}", r.method, r.uri, r.headers, r.body))
        .collect();
    assert!(
        received.is_empty(),
        "the other host received the token: {received:#?}"
    );
}

#[tokio::test]
async fn a_verify_answer_redirecting_to_another_host_is_not_followed() {
    let elsewhere = elsewhere().await;
    let line = line_redirecting(StatusCode::FOUND, &[VERIFY], &elsewhere).await;
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer_for(&line))).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(calls.get(), 0);
    assert_asked(&line, VERIFY);
    assert_nothing_reached(&elsewhere);
}

#[tokio::test]
async fn a_profile_answer_redirecting_to_another_host_is_not_followed() {
    let elsewhere = elsewhere().await;
    // 307 keeps the method and, with it, the Authorization header a redirect would carry on.
    let line = line_redirecting(StatusCode::TEMPORARY_REDIRECT, &[PROFILE], &elsewhere).await;
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer_for(&line))).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(calls.get(), 0);
    assert_asked(&line, PROFILE);
    assert_nothing_reached(&elsewhere);
}

#[tokio::test]
async fn a_revoke_answer_redirecting_to_another_host_is_not_followed() {
    let elsewhere = elsewhere().await;
    // 307 would re-send the form, token and all.
    let line = line_redirecting(StatusCode::TEMPORARY_REDIRECT, &[REVOKE], &elsewhere).await;
    let auth = layer_for(&line).handle();

    let result = auth.logout(TOKEN_VALUE).await;

    assert!(
        matches!(result, Err(LineAuthError::Unavailable(_))),
        "LINE was not told: {result:?}"
    );
    assert_asked(&line, REVOKE);
    assert_nothing_reached(&elsewhere);
}

#[tokio::test]
async fn a_key_set_answer_redirecting_to_another_host_is_not_followed() {
    // Keys from another host would let it sign any ID token.
    let emulator = Line::start().await;
    let id_token = emulator.emulator.issue_id_token(IssueIdToken::new(
        CHANNEL,
        "U4af4980629aabbccddeeff0011223344",
    ));
    let elsewhere = elsewhere().await;
    let line = line_redirecting(StatusCode::FOUND, &[CERTS], &elsewhere).await;
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer_for(&line).id_tokens())).await;

    let reply = get_bearer(&base, "/api/me", &id_token).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(calls.get(), 0);
    assert_asked(&line, CERTS);
    assert_nothing_reached(&elsewhere);
}

#[tokio::test]
async fn line_login_client_calls_never_follow_a_redirect_to_another_host() {
    let elsewhere = elsewhere().await;
    let line = line_redirecting(
        StatusCode::TEMPORARY_REDIRECT,
        &[VERIFY, PROFILE, REVOKE, TOKEN, USERINFO, FRIENDSHIP],
        &elsewhere,
    )
    .await;
    let client = LineLoginClient::builder(CHANNEL)
        .channel_secret("channel-secret")
        .api_base(&line.base)
        .build()
        .unwrap();
    let tokens = signed_in_through_the_emulator().await;

    let outcomes = [
        (
            "verify",
            client.verify_access_token(TOKEN_VALUE).await.err(),
        ),
        ("profile", client.profile(TOKEN_VALUE).await.err()),
        ("userinfo", client.userinfo(TOKEN_VALUE).await.err()),
        (
            "friendship",
            client.friendship_status(TOKEN_VALUE).await.err(),
        ),
        (
            "revoke",
            client.revoke_access_token(TOKEN_VALUE).await.err(),
        ),
        ("refresh", client.refresh(&tokens).await.err()),
        (
            "exchange",
            client
                .exchange_code("code-value", "https://app.example/callback", None)
                .await
                .err(),
        ),
        (
            "verify ID token",
            client.verify_id_token(TOKEN_VALUE, None, None).await.err(),
        ),
    ];

    for (call, error) in outcomes {
        assert!(
            matches!(
                error,
                Some(LineLoginError::Unavailable(_) | LineLoginError::InvalidResponse(_))
            ),
            "{call}: a redirect is an error, got {error:?}"
        );
    }
    assert_eq!(line.received().len(), 8, "every call asked LINE");
    assert_nothing_reached(&elsewhere);
}

/// The tokens of a sign-in through the emulator, whose authorization endpoint consents at once
/// (`client` must point at it), and the code they were exchanged for.
pub(crate) async fn sign_in(client: &LineLoginClient, scopes: &[&str]) -> (TokenSet, String) {
    const REDIRECT_URI: &str = "https://app.example/callback";
    let pkce = Pkce::from_verifier(PKCE_VERIFIER).unwrap();
    let url = client.authorize_url(
        &AuthorizeRequest::new(REDIRECT_URI, "st4te", scopes)
            .nonce("n0nce")
            .pkce(&pkce),
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = browser.get(url).send().await.unwrap();
    let location = reqwest::Url::parse(consent.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    let tokens = client
        .exchange_code(&code, REDIRECT_URI, Some(&pkce))
        .await
        .unwrap();
    (tokens, code)
}

/// Tokens of a sign-in through a fresh emulator (which stays up only while signing in). LINE
/// requires the channel secret at the token endpoint, so the client gives it.
async fn signed_in_through_the_emulator() -> TokenSet {
    let emulator = Line::start().await;
    let signing_in = LineLoginClient::builder(CHANNEL)
        .channel_secret(emulator.emulator.channel_secret(CHANNEL))
        .api_base(emulator.emulator.base_url())
        .authorize_endpoint(format!(
            "{}/oauth2/v2.1/authorize",
            emulator.emulator.base_url()
        ))
        .build()
        .unwrap();
    sign_in(&signing_in, &["profile"]).await.0
}

/// The PKCE verifier [`sign_in`] uses: a secret of the sign-in too.
pub(crate) const PKCE_VERIFIER: &str = "vErIfIeR-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG";

/// The `Retry-After` a refused client was told.
fn retry_after(reply: &Reply) -> &str {
    reply.headers["retry-after"].to_str().unwrap()
}

async fn app_for(line: &Line) -> String {
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    serve(routes(&HandlerCalls::default()).layer(layer)).await
}

#[tokio::test]
async fn line_retry_after_is_capped_at_an_hour() {
    let line = Line::start().await;
    let base = app_for(&line).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::RateLimited {
            retry_after: Duration::from_secs(86_400),
        },
    );

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&reply), "3600");
    assert_eq!(
        line.calls(),
        (1, 0),
        "an hour is past the deadline: no retry"
    );
}

#[tokio::test]
async fn a_retry_after_date_is_honoured_so_one_far_off_stops_the_retries_and_is_told_capped() {
    // The HTTP-date form counts as the wait until that date (here capped at an hour), so
    // trying again within the request's deadline is pointless. (A 503: a 429 is never tried
    // again within the request.)
    let line = Host::start(|_| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("retry-after", "Fri, 31 Dec 2100 23:59:59 GMT")
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"message":"The API rate limit has been exceeded."}"#,
            ))
            .unwrap()
    })
    .await;
    let base = serve(routes(&HandlerCalls::default()).layer(layer_for(&line))).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&reply), "3600");
    assert_eq!(
        line.received().len(),
        1,
        "no retry: the wait is past the deadline"
    );
}

#[tokio::test]
async fn without_retry_after_the_client_is_told_the_default_five_seconds() {
    let line = Line::start().await;
    let base = app_for(&line).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );

    let server_error = get_bearer(&base, "/api/me", &line.token()).await;
    line.emulator.stop().await;
    let unreachable = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(server_error.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&server_error), "5");
    assert_eq!(line.calls(), (3, 0), "the default three tries");
    assert_eq!(unreachable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&unreachable), "5");
}

#[tokio::test]
async fn a_zero_retry_after_still_tells_the_client_to_wait_a_second() {
    let line = Line::start().await;
    let base = app_for(&line).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::RateLimited {
            retry_after: Duration::ZERO,
        },
    );

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(retry_after(&reply), "1");
    assert_eq!(
        line.calls(),
        (1, 0),
        "a rate limit is not tried again within the request"
    );
}

#[tokio::test]
async fn logout_answered_400_counts_as_already_invalid_and_the_token_is_refused() {
    let Verified {
        line,
        auth,
        base,
        token,
    } = Verified::start().await;
    // Already invalid at LINE (the user unlinked the app), still cached here.
    line.emulator.revoke(&token);
    line.emulator
        .inject_times(Endpoint::Revoke, already_invalid_at_line(), 1);

    let result = auth.logout(&token).await;

    assert!(result.is_ok(), "a 400 means already invalid: {result:?}");
    assert_eq!(line.emulator.calls().revoke, 1);
    let reply = get_bearer(&base, "/api/me", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
}

#[tokio::test]
async fn line_login_client_revoke_answered_400_counts_as_already_invalid() {
    let line = Line::start().await;
    let client = LineLoginClient::builder(CHANNEL)
        .api_base(line.emulator.base_url())
        .build()
        .unwrap();
    let token = line.token();
    line.emulator.revoke(&token);
    line.emulator
        .inject_times(Endpoint::Revoke, already_invalid_at_line(), 2);

    let access = client.revoke_access_token(&token).await;
    let refresh = client.revoke_refresh_token("refresh-token-value").await;

    assert!(access.is_ok(), "{access:?}");
    assert!(refresh.is_ok(), "{refresh:?}");
    assert_eq!(line.emulator.calls().revoke, 2);
    let refused = client.verify_access_token(&token).await;
    assert!(
        matches!(&refused, Err(LineLoginError::OAuth { status, .. }) if *status == StatusCode::BAD_REQUEST),
        "{refused:?}"
    );
}
/// A LINE refusing the revoke call itself: the secret is missing or wrong (fact sheet §3.4).
async fn line_refusing_the_client() -> Host {
    Host::start(|request| {
        if request.path() == REVOKE {
            Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .header("content-type", "application/json")
                .body(Body::from(
                    r#"{"error":"invalid_client","error_description":"invalid client secret"}"#,
                ))
                .unwrap()
        } else {
            any_line_answer()
        }
    })
    .await
}

#[tokio::test]
async fn logout_refused_as_invalid_client_is_an_error_the_token_still_being_live() {
    let line = line_refusing_the_client().await;
    let auth = layer_for(&line).handle();

    let result = auth.logout(TOKEN_VALUE).await;

    assert!(
        matches!(result, Err(LineAuthError::Unavailable(_))),
        "LINE did not revoke it: {result:?}"
    );
    assert_asked(&line, REVOKE);
}

#[tokio::test]
async fn line_login_client_revoke_refused_as_invalid_client_is_an_error() {
    let line = line_refusing_the_client().await;
    let client = LineLoginClient::builder(CHANNEL)
        .api_base(&line.base)
        .build()
        .unwrap();

    let result = client.revoke_access_token(TOKEN_VALUE).await;

    assert!(
        matches!(&result, Err(LineLoginError::OAuth { error, .. }) if error == "invalid_client"),
        "LINE did not revoke it: {result:?}"
    );
}

/// A LINE answering every revoke `status` with `body` (and `Retry-After: 7` on a 429 or 5xx).
async fn line_answering_revoke(status: StatusCode, body: &'static str) -> Host {
    Host::start(move |request| {
        if request.path() != REVOKE {
            return any_line_answer();
        }
        let mut answer = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            answer = answer.header("retry-after", "7");
        }
        answer.body(Body::from(body)).unwrap()
    })
    .await
}

/// [`TOKEN_VALUE`] revoked at `line` by the layer's logout and by `LineLoginClient`.
async fn revoke_both_ways(line: &Host) -> (Result<(), LineAuthError>, Result<(), LineLoginError>) {
    let auth = layer_for(line).handle();
    let client = LineLoginClient::builder(CHANNEL)
        .api_base(&line.base)
        .build()
        .unwrap();
    (
        auth.logout(TOKEN_VALUE).await,
        client.revoke_access_token(TOKEN_VALUE).await,
    )
}

#[tokio::test]
async fn a_revoke_answered_400_invalid_request_alone_counts_as_already_invalid() {
    // What LINE's iOS SDK reads as "the token itself is invalid" (fact sheet §3.4): its test
    // stub answers exactly this, and the SDK reports the revoke done.
    let line =
        line_answering_revoke(StatusCode::BAD_REQUEST, r#"{"error":"invalid_request"}"#).await;

    let (logout, access) = revoke_both_ways(&line).await;

    assert!(logout.is_ok(), "{logout:?}");
    assert!(access.is_ok(), "{access:?}");
    assert_eq!(asked_times(&line, REVOKE), 2);
}

/// Issue 14, item 4: a revoke is done when LINE's error says the token is already invalid, in
/// whatever words, and not otherwise: an answer naming no invalid token (a proxy's page, an empty
/// body, a REST-shaped validation error) leaves the token possibly live at LINE.
#[tokio::test]
async fn a_revoke_is_done_exactly_when_lines_error_says_the_token_is_already_invalid() {
    for (status, body, done) in [
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
            401,
            r#"{"error":"invalid_token","error_description":"The access token expired"}"#,
            true,
        ),
        (400, r#"{"message":"The access token expired"}"#, true),
        (400, r#"{"message":"Bad Request"}"#, false),
        (
            400,
            r#"{"message":"The request body has 1 error(s)","details":[{"message":"is required","property":"client_secret"}]}"#,
            false,
        ),
        (400, "", false),
        (400, "<html><body>400 Bad Request</body></html>", false),
    ] {
        let line = line_answering_revoke(StatusCode::from_u16(status).unwrap(), body).await;

        let (logout, access) = revoke_both_ways(&line).await;

        assert_eq!(logout.is_ok(), done, "{status} {body}: {logout:?}");
        assert_eq!(access.is_ok(), done, "{status} {body}: {access:?}");
        assert_eq!(asked_times(&line, REVOKE), 2, "{status} {body}");
    }
}

/// LINE's revoke answers 200 with an empty body (fact sheet §3.4); a 200 carrying an HTML page
/// is a proxy's or a captive portal's, not LINE's, and says nothing of the token: not done.
#[tokio::test]
async fn a_revoke_answered_200_with_an_html_page_is_not_done() {
    let line = line_answering_revoke(
        StatusCode::OK,
        "<html><body><h1>Sign in to the Wi-Fi</h1></body></html>",
    )
    .await;

    let (logout, access) = revoke_both_ways(&line).await;

    assert!(
        matches!(&logout, Err(LineAuthError::Unavailable(_))),
        "{logout:?}"
    );
    assert!(
        matches!(&access, Err(LineLoginError::InvalidResponse(_))),
        "{access:?}"
    );
}

/// A 401 is LINE refusing the caller's credentials (RFC 6749's status for `invalid_client`), with
/// or without a body to say so: the logout names the secret as the likely cause.
#[tokio::test]
async fn a_revoke_answered_401_without_a_body_blames_the_secret() {
    assert_logout_refused_as(StatusCode::UNAUTHORIZED, "", "a refusal of the client").await;
}

/// LINE's REST error shape may carry `details` (fact sheet §1): one naming the client's secret
/// is a refusal of the client, as a `message` naming it is.
#[tokio::test]
async fn a_revoke_refused_with_details_naming_the_client_secret_blames_the_secret() {
    assert_logout_refused_as(
        StatusCode::BAD_REQUEST,
        r#"{"message":"The request body has 1 error(s)","details":[{"message":"client_secret is required","property":"client_secret"}]}"#,
        "a refusal of the client",
    )
    .await;
}

#[tokio::test]
async fn a_revoke_refused_for_a_reason_not_about_the_token_is_an_error() {
    assert_logout_refused_as(
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_request","error_description":"client_id is required"}"#,
        "invalid_request",
    )
    .await;
}

/// A logout whose revoke LINE answers `status` with `body` is refused as LINE refusing the
/// client, naming `error`.
async fn assert_logout_refused_as(status: StatusCode, body: &'static str, error: &str) {
    let line = line_answering_revoke(status, body).await;
    let auth = layer_for(&line).handle();

    let result = auth.logout(TOKEN_VALUE).await;

    assert!(
        matches!(
            &result,
            Err(LineAuthError::Unavailable(line_auth::rejection::UpstreamError::RevokeRefused { error: named }))
                if &**named == error
        ),
        "{status} {body}: {result:?}"
    );
}

#[tokio::test]
async fn a_revoke_rate_limited_or_failing_at_line_is_unavailable_and_not_retried_before_lines_wait()
{
    // `/oauth2/v2.1/*` errors come in the OAuth shape (fact sheet §1), a 429's and a 5xx's too:
    // that shape alone must not make them "LINE refused the call" (which blames the secret and
    // drops LINE's `Retry-After`, which the layer's retry of the revoke waits for).
    for (status, body) in [
        (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"error":"too_many_requests","error_description":"rate limit exceeded"}"#,
        ),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"server_error","error_description":"internal error"}"#,
        ),
    ] {
        let line = line_answering_revoke(status, body).await;
        let auth = layer_for(&line).handle();

        let refused = auth.logout(TOKEN_VALUE).await.unwrap_err();

        // A logout's: the revoke failed, for LINE's answer.
        let LineAuthError::Unavailable(UpstreamError::RevokeRetrying(cause)) = &refused else {
            panic!("{status}: {refused:?}");
        };
        assert!(
            matches!(
                &**cause,
                UpstreamError::Status {
                    status: answered,
                    retry_after: Some(wait),
                    ..
                } if *answered == status && *wait == Duration::from_secs(7)
            ),
            "{status}: {refused:?}"
        );
        let response = refused.to_response::<Body>();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        // The layer retries the revoke, not before LINE's 7 s, though its own first wait would
        // be 1 s; the caller is told LINE's wait (issue 14: a 429's caller gets it).
        assert_eq!(response.headers()["retry-after"], "7", "{status}");
        let tried = line.received_at(REVOKE);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            line.received_at(REVOKE),
            tried,
            "{status}: retried before LINE's wait"
        );
    }
}

/// A revoke answered with what a wait would not change (a 404: a wrong `LINE_API_BASE`, say) is
/// not retried, and the logout says so: no "retried in the background".
#[tokio::test]
async fn a_revoke_answered_404_or_a_redirect_is_not_retried() {
    // LINE's API redirects nothing: a 3xx is a proxy or a wrong base talking, as a 404 is.
    for answered in [StatusCode::NOT_FOUND, StatusCode::FOUND] {
        let line = line_answering_revoke(answered, "{}").await;
        let auth = layer_for(&line).handle();

        let refused = auth.logout(TOKEN_VALUE).await.unwrap_err();

        let LineAuthError::Unavailable(UpstreamError::RevokeFailed(cause)) = &refused else {
            panic!("{answered}: {refused:?}");
        };
        assert!(
            matches!(
                &**cause,
                UpstreamError::Status { status, .. } if *status == answered
            ),
            "{refused:?}"
        );
        assert!(!refused.to_string().contains("retried"), "{refused}");
        // A retry would come after about a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(line.received_at(REVOKE), 1, "{answered}");
    }
}

/// The `x-line-request-id` the stand-in LINE below sends: LINE's documented example (fact sheet §1).
const LINE_REQUEST_ID: &str = "8d48c8577e739b9c";

/// A LINE answering every call with [`ANY_LINE_ANSWER`] and [`LINE_REQUEST_ID`].
async fn line_with_request_id() -> Host {
    Host::start(|_| {
        let mut response = any_line_answer();
        response.headers_mut().insert(
            "x-line-request-id",
            HeaderValue::from_static(LINE_REQUEST_ID),
        );
        response
    })
    .await
}

fn assert_request_id_logged(capture: &Capture, endpoint: &str) {
    let records = capture.records();
    assert!(
        records
            .iter()
            .any(|record| record.target.starts_with("line_auth")
                && record.text.contains(&format!("endpoint={endpoint} "))
                && record
                    .text
                    .contains(&format!("line_request_id={LINE_REQUEST_ID}"))),
        "LINE's request ID logged with the {endpoint} call: {records:#?}"
    );
}

/// The verification's span itself carries what LINE answered last (the profile call, after
/// verify), its status and its request ID, once, beside `cache=miss`: a trace shows them without
/// looking at the span's events, and a text subscriber, which appends what a span records,
/// shows one pair.
#[tokio::test(flavor = "current_thread")]
async fn the_verification_span_carries_lines_last_status_and_request_id() {
    const VERIFY_REQUEST_ID: &str = "0123456789abcdef";
    let capture = Capture::install();
    let line = Host::start(|request| {
        let mut response = any_line_answer();
        let request_id = if request.uri.contains("/verify") {
            VERIFY_REQUEST_ID
        } else {
            LINE_REQUEST_ID
        };
        response
            .headers_mut()
            .insert("x-line-request-id", HeaderValue::from_static(request_id));
        response
    })
    .await;
    let base = serve(routes(&HandlerCalls::default()).layer(layer_for(&line))).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        line.received_at("/v2/profile"),
        1,
        "the profile call came last"
    );
    let span = capture
        .records()
        .into_iter()
        .filter(|record| record.text.starts_with("line_auth.verify "))
        .map(|record| record.text)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(span.contains(" cache=miss"), "{span}");
    assert_eq!(span.matches(" upstream_status=").count(), 1, "{span}");
    assert!(span.contains(" upstream_status=200"), "{span}");
    assert_eq!(span.matches(" line_request_id=").count(), 1, "{span}");
    assert!(
        span.contains(&format!(" line_request_id={LINE_REQUEST_ID}")),
        "{span}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_id_line_sends_is_logged_for_each_call_of_a_verification() {
    let capture = Capture::install();
    let line = line_with_request_id().await;
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer_for(&line))).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_request_id_logged(&capture, "verify");
    assert_request_id_logged(&capture, "profile");
}

#[tokio::test(flavor = "current_thread")]
async fn the_request_id_line_sends_is_logged_for_line_login_client_calls() {
    let capture = Capture::install();
    let line = line_with_request_id().await;
    let client = LineLoginClient::builder(CHANNEL)
        .channel_secret("channel-secret")
        .api_base(&line.base)
        .build()
        .unwrap();

    let tokens = client
        .exchange_code("code-value", "https://app.example/callback", None)
        .await
        .unwrap();
    client
        .revoke_access_token(tokens.access_token.secret())
        .await
        .unwrap();

    assert_request_id_logged(&capture, "token");
    assert_request_id_logged(&capture, "revoke");
}

/// A LINE answering every call 503 with LINE's REST-style body, as its 5xx come.
async fn line_unavailable() -> Host {
    Host::start(|_| {
        Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("content-type", "application/json")
            .header("retry-after", "9")
            .body(Body::from(r#"{"message":"Service unavailable"}"#))
            .unwrap()
    })
    .await
}

/// How many requests for `path` LINE received.
fn asked_times(line: &Host, path: &str) -> usize {
    line.received()
        .iter()
        .filter(|request| request.path() == path)
        .count()
}

#[tokio::test]
async fn line_login_client_grants_and_revokes_are_not_tried_again_after_a_5xx() {
    let line = line_unavailable().await;
    let client = LineLoginClient::builder(CHANNEL)
        .channel_secret("channel-secret")
        .api_base(&line.base)
        .build()
        .unwrap();
    let tokens = signed_in_through_the_emulator().await;

    let outcomes = [
        (
            "exchange",
            client
                .exchange_code("code-value", "https://app.example/callback", None)
                .await
                .err(),
        ),
        ("refresh", client.refresh(&tokens).await.err()),
        (
            "revoke access token",
            client.revoke_access_token(TOKEN_VALUE).await.err(),
        ),
        (
            "revoke refresh token",
            client
                .revoke_refresh_token("refresh-token-value")
                .await
                .err(),
        ),
    ];

    for (call, error) in outcomes {
        // LINE unavailable, whatever body came with it, and when to try again (fact sheet §1:
        // a 429 or 5xx is "LINE unavailable", with LINE's `Retry-After`).
        assert!(
            matches!(
                &error,
                Some(LineLoginError::Unavailable(UpstreamError::Status { status, retry_after }))
                    if *status == StatusCode::SERVICE_UNAVAILABLE
                        && *retry_after == Some(Duration::from_secs(9))
            ),
            "{call}: LINE's 503 is LINE unavailable, got {error:?}"
        );
    }
    assert_eq!(
        (asked_times(&line, TOKEN), asked_times(&line, REVOKE)),
        (2, 2),
        "each grant and revoke asked LINE once"
    );
}

#[tokio::test]
async fn the_layer_tries_verify_and_profile_again_after_a_5xx() {
    let (verify_failures, profile_failures) =
        (Arc::new(AtomicUsize::new(2)), Arc::new(AtomicUsize::new(1)));
    let line = Host::start(move |request| {
        let failures = match request.path() {
            VERIFY => &verify_failures,
            PROFILE => &profile_failures,
            _ => return any_line_answer(),
        };
        let fails = failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if fails {
            Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::empty())
                .unwrap()
        } else {
            any_line_answer()
        }
    })
    .await;
    let layer = LineAuthLayer::new(
        LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(&line.base)
            .upstream_max_attempts(3)
            .build()
            .unwrap(),
    );
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (asked_times(&line, VERIFY), asked_times(&line, PROFILE)),
        (3, 2),
        "verify failed twice, profile once, each then asked again"
    );
}

#[tokio::test]
async fn a_key_set_past_the_bound_for_other_answers_is_read_and_one_past_its_own_is_not() {
    // A key set may list keys of any kind, so it may be larger than LINE's other answers (16 KiB
    // is their bound): one of ~40 KiB is read whole, one of ~100 KiB not at all.
    let emulator = Line::start().await;
    let id_token = emulator.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, "U4af4980629aabbccddeeff0011223344").name("Brown"),
    );
    let published: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("{}{CERTS}", emulator.emulator.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let key_set_of = |bytes: usize| {
        // RSA keys first, as LINE's SDK fixtures list them; ES256 verification skips them.
        let filler =
            serde_json::json!({"kty": "RSA", "kid": "rsa", "e": "AQAB", "n": "x".repeat(342)});
        let mut keys = vec![filler; bytes / 400];
        keys.extend(published["keys"].as_array().unwrap().iter().cloned());
        serde_json::to_string(&serde_json::json!({ "keys": keys })).unwrap()
    };
    for (bytes, expected) in [
        (40 * 1024, StatusCode::OK),
        (100 * 1024, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let key_set = key_set_of(bytes);
        assert!(key_set.len() > bytes * 9 / 10, "{}", key_set.len());
        let line = Host::start(move |_| json_answer(Body::from(key_set.clone()))).await;
        let base =
            serve(routes(&HandlerCalls::default()).layer(layer_for(&line).id_tokens())).await;

        let reply = get_bearer(&base, "/api/me", &id_token).await;

        assert_eq!(reply.status, expected, "{bytes} bytes: {}", reply.body);
        assert_asked(&line, CERTS);
    }
}

#[tokio::test]
async fn an_answer_of_exactly_the_size_bound_is_read_and_one_byte_more_is_not() {
    // LINE's answers are read up to 16 KiB, whether their length is announced or not.
    const BOUND: usize = 16 * 1024;
    for streamed in [false, true] {
        for (bytes, expected) in [
            (BOUND, StatusCode::OK),
            (BOUND + 1, StatusCode::SERVICE_UNAVAILABLE),
        ] {
            // JSON ignores the spaces that pad it to the size.
            let answer = format!("{ANY_LINE_ANSWER:<bytes$}");
            let line = Host::start(move |_| {
                let body = if streamed {
                    // Two chunks and no `Content-Length`: the bound holds on what arrives.
                    let (first, second) = answer.split_at(answer.len() / 2);
                    let chunks = [first.to_owned(), second.to_owned()]
                        .map(|chunk| Ok::<_, std::io::Error>(axum::body::Bytes::from(chunk)));
                    Body::from_stream(futures_util::stream::iter(chunks))
                } else {
                    Body::from(answer.clone())
                };
                json_answer(body)
            })
            .await;
            let base = serve(routes(&HandlerCalls::default()).layer(layer_for(&line))).await;

            let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

            assert_eq!(
                reply.status, expected,
                "{bytes} bytes, streamed: {streamed}: {}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn a_key_set_with_no_usable_key_is_line_unavailable_and_fetched_again_after_its_backoff() {
    // Issue 12: while no usable key is known, 503 with Retry-After, never 401; and the next
    // fetch comes after the failure's backoff (half a second), not the 60 s refetch floor.
    let emulator = Line::start().await;
    let id_token = emulator.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, "U4af4980629aabbccddeeff0011223344").name("Brown"),
    );
    for key_set in [
        r#"{"keys":[]}"#,
        r#"{"keys":[{"kty":"RSA","kid":"rsa","e":"AQAB","n":"xyz"}]}"#,
    ] {
        let line = Host::start(move |_| json_answer(Body::from(key_set))).await;
        let base =
            serve(routes(&HandlerCalls::default()).layer(layer_for(&line).id_tokens())).await;

        let reply = get_bearer(&base, "/api/me", &id_token).await;

        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{key_set}: {}",
            reply.body
        );
        assert!(!retry_after(&reply).is_empty(), "{key_set}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        let again = get_bearer(&base, "/api/me", &id_token).await;
        assert_eq!(again.status, StatusCode::SERVICE_UNAVAILABLE, "{key_set}");
        assert_eq!(
            asked_times(&line, CERTS),
            2,
            "{key_set}: fetched again past the backoff"
        );
    }
}

#[tokio::test]
async fn a_key_set_with_no_usable_key_leaves_the_keys_held_before_in_use() {
    let emulator = Line::start().await;
    let issue = |user: &str| {
        emulator
            .emulator
            .issue_id_token(IssueIdToken::new(CHANNEL, user).name("Brown"))
    };
    let (first, second_same_kid) = (
        issue("U00000000000000000000000000000001"),
        issue("U00000000000000000000000000000002"),
    );
    let published = reqwest::get(format!("{}{CERTS}", emulator.emulator.base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    emulator.emulator.rotate_signing_key();
    let new_kid = issue("U00000000000000000000000000000003");
    // The first fetch finds the key; every later one a set with nothing usable.
    let fetched = Arc::new(AtomicUsize::new(0));
    let line = Host::start(move |_| {
        if fetched.fetch_add(1, Ordering::Relaxed) == 0 {
            json_answer(Body::from(published.clone()))
        } else {
            json_answer(Body::from(r#"{"keys":[]}"#))
        }
    })
    .await;
    let layer = LineAuthLayer::new(
        LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(&line.base)
            .jwks_refetch_floor(Duration::ZERO)
            .build()
            .unwrap(),
    )
    .id_tokens();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;

    assert_eq!(
        get_bearer(&base, "/api/me", &first).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &new_kid).await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "an unknown kid, and a refetch that finds no usable key"
    );
    assert_eq!(asked_times(&line, CERTS), 2);

    let reply = get_bearer(&base, "/api/me", &second_same_kid).await;

    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the key held before still verifies: {}",
        reply.body
    );
}

/// An HTML error page (a proxy's, a CDN's) far beyond what any call reads from LINE.
fn huge_error_page() -> &'static str {
    format!("<html>{}</html>", "x".repeat(64 * 1024)).leak()
}

/// A 429 or 5xx whose body is a page too large to read (a proxy's or a CDN's HTML error page)
/// still says what its status says: LINE's `Retry-After` is passed on, and a 5xx is tried again.
#[tokio::test]
async fn an_error_answer_too_large_to_read_keeps_its_status_and_retry_after() {
    let page = huge_error_page();
    for (status, wait, asked) in [
        (StatusCode::TOO_MANY_REQUESTS, "42", 1),
        (StatusCode::SERVICE_UNAVAILABLE, "1", 2),
    ] {
        let line = Host::start(move |_| {
            Response::builder()
                .status(status)
                .header("retry-after", wait)
                .header("content-type", "text/html")
                .body(Body::from(page))
                .unwrap()
        })
        .await;
        let layer = LineAuthLayer::new(
            LineAuthConfig::builder()
                .channel_id(CHANNEL)
                .api_base(&line.base)
                .upstream_timeout(Duration::from_secs(3))
                .upstream_max_attempts(2)
                .build()
                .unwrap(),
        );
        let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;

        let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{status}");
        assert_eq!(retry_after(&reply), wait, "{status}");
        assert_eq!(line.received().len(), asked, "{status}: LINE asked");
    }
}

/// A client error too large to read is not read as what its status would say with a body: a
/// profile 401 behind a proxy's huge page is LINE unavailable (503), not the token refused, and
/// a revoke's 400 is not "already invalid" (the logout is not reported done).
#[tokio::test]
async fn a_client_error_too_large_to_read_is_unavailable_not_a_verdict() {
    let page = huge_error_page();
    let line = Host::start(move |request| {
        if request.path() == VERIFY {
            return any_line_answer();
        }
        let status = if request.path() == REVOKE {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        Response::builder()
            .status(status)
            .header("content-type", "text/html")
            .body(Body::from(page))
            .unwrap()
    })
    .await;
    let layer = layer_for(&line);
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;

    let reply = get_bearer(&base, "/api/me", TOKEN_VALUE).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );

    let logout = auth.logout(TOKEN_VALUE).await;
    assert!(
        matches!(&logout, Err(LineAuthError::Unavailable(_))),
        "{logout:?}"
    );
}
