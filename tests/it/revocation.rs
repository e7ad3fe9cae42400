//! Revocation that sticks: a token LINE refused, or one a user logged out of, never comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::LineAuthLayer;
use line_auth_emulator::{Endpoint, Fault, IssueIdToken, IssueToken};

use crate::logout::app;
use crate::support::*;

#[tokio::test]
async fn stale_if_error_never_serves_a_token_line_refused() {
    let line = Line::start().await;
    let config = line
        .config()
        .stale_if_error(Duration::from_secs(120))
        .cache_max_ttl(Duration::from_secs(1))
        .negative_cache_ttl(Duration::from_secs(1))
        .build()
        .unwrap();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config))).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    line.emulator.revoke(&token);
    tokio::time::sleep(Duration::from_millis(1100)).await; // the verdict is stale now
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // the refusal has aged out
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );
    let status = get_bearer(&base, "/api/me", &token).await.status;

    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
        "a token LINE refused came back as {status}"
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_tokens_fast_but_neither_locks_out_nor_stands_in_for_a_recheck() {
    let line = Line::start().await;
    let config = line
        .config()
        .stale_if_error(Duration::from_secs(120))
        .cache_max_ttl(Duration::from_millis(300))
        .max_pending_verifications(1)
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let known = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &known).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(400)).await; // stale now
    line.emulator.revoke(&known);

    // Another token's verification fills the one pending place.
    let hog = fill_the_one_pending_place(&line, &base).await;

    // A new token: refused at once, LINE not asked.
    let reply = get_bearer(&base, "/api/me", &line.token()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.challenge(), None);
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(
        line.emulator.calls().verify,
        2,
        "the new token never reached LINE"
    );

    // The re-check of a known token still reaches LINE, and LINE's refusal stands: the stale
    // verdict does not stand in for it.
    let reply = get_bearer(&base, "/api/me", &known).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(line.emulator.calls().verify, 3);
    assert_eq!(auth.stats().served_stale, 0);
    assert_eq!(hog.await.unwrap(), StatusCode::OK);
}

/// A first-time token's verification, slowed by LINE to 1.5 s, taking the one pending place of
/// a layer with `max_pending_verifications(1)` whose one earlier verify call was the known
/// token's; its status, once LINE answers.
async fn fill_the_one_pending_place(
    line: &Line,
    base: &str,
) -> tokio::task::JoinHandle<StatusCode> {
    // Long enough that a stall of the test does not see the place free again, and within the
    // default upstream timeout (3 s).
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(1_500)),
    );
    let hog = {
        let (base, other) = (base.to_owned(), line.token());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &other).await.status })
    };
    assert!(
        eventually(Duration::from_secs(2), || line.emulator.calls().verify == 2).await,
        "the other token reached LINE"
    );
    hog
}

/// Issue 12: re-checks of tokens already known are not queued behind first-time tokens, with
/// the defaults too (no stale-if-error, which keeps a stale entry for its own reasons).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_of_a_known_token_passes_a_full_queue_without_stale_if_error() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(300))
        .max_pending_verifications(1)
        .build()
        .unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;
    let known = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &known).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(400)).await; // stale now

    // A first-time token's verification fills the one pending place.
    let hog = fill_the_one_pending_place(&line, &base).await;
    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the queue is full for first-time tokens"
    );

    let reply = get_bearer(&base, "/api/me", &known).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.emulator.calls().verify, 3, "the re-check asked LINE");
    assert_eq!(hog.await.unwrap(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_takes_effect_even_if_the_caller_hangs_up() {
    let line = Line::start().await;
    let base = serve(app(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::Latency(Duration::from_millis(1500)),
    );

    let logging_out = {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move {
            http()
                .post(format!("{base}/api/logout"))
                .bearer_auth(&token)
                .send()
                .await
        })
    };
    // Once the logout has reached LINE, which holds its answer, the caller hangs up.
    assert!(
        eventually(Duration::from_secs(4), || line.emulator.calls().revoke == 1).await,
        "the logout reached LINE"
    );
    logging_out.abort();
    assert!(
        logging_out
            .await
            .is_err_and(|hung_up| hung_up.is_cancelled()),
        "the caller hung up before LINE answered"
    );
    // Refused here from the moment logout was called…
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    // …and the revoke at LINE still runs to completion.
    assert!(
        eventually(Duration::from_secs(4), || line
            .emulator
            .revocation(&token)
            .is_some())
        .await,
        "LINE applied the revoke"
    );
    let reply = get_bearer(&base, "/api/me", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(line.emulator.calls().revoke, 1);
}

#[tokio::test]
async fn a_logout_is_refused_here_whatever_line_answers() {
    let Verified {
        line,
        auth,
        base,
        token,
    } = Verified::start().await;
    line.emulator.inject(
        Endpoint::Revoke,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );

    assert!(auth.logout(&token).await.is_err(), "LINE did not revoke it");

    // Still valid at LINE, but the user logged out here: it stays refused.
    for _ in 0..2 {
        assert_eq!(
            get_bearer(&base, "/api/me", &token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn logout_works_on_id_token_layers() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).id_tokens();
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let id_token = line.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, "U1234567890abcdef1234567890abcdef").name("Brown"),
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &id_token).await.status,
        StatusCode::OK
    );

    auth.logout(&id_token).await.ok();

    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        line.emulator.calls().revoke,
        0,
        "an ID token is not revoked at LINE"
    );
}

/// The other valid signature of an ES256 token: `(r, n − s)` for `(r, s)` (ECDSA is malleable).
fn es256_twin(token: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature =
        p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
    let (r, s) = signature.split_scalars();
    let twin = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-s).to_bytes()).unwrap();
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(twin.to_bytes())
    )
}

#[tokio::test]
async fn a_signed_out_id_token_does_not_come_back_as_its_malleable_twin() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).id_tokens();
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    for (sign_out_the_twin, user) in [
        (false, "U1234567890abcdef1234567890abcdef"),
        (true, "Uabcdef1234567890abcdef1234567890"),
    ] {
        // Another user each time: the emulator's ES256 signatures are deterministic (RFC 6979).
        let id_token = line
            .emulator
            .issue_id_token(IssueIdToken::new(CHANNEL, user).name("Brown"));
        let twin = es256_twin(&id_token);
        assert_ne!(twin, id_token);
        // Both signatures verify: the twin is the same token to LINE's key.
        for token in [&id_token, &twin] {
            assert_eq!(
                get_bearer(&base, "/api/me", token).await.status,
                StatusCode::OK
            );
        }

        let signed_out = if sign_out_the_twin { &twin } else { &id_token };
        auth.logout(signed_out).await.ok();

        for token in [&id_token, &twin] {
            assert_eq!(
                get_bearer(&base, "/api/me", token).await.status,
                StatusCode::UNAUTHORIZED,
                "signed out as {}",
                if sign_out_the_twin {
                    "the twin"
                } else {
                    "issued"
                }
            );
        }
    }
}

#[tokio::test]
async fn a_failed_key_set_fetch_is_line_unavailable_and_is_retried_soon() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).id_tokens();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let id_token = line.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, "U1234567890abcdef1234567890abcdef").name("Brown"),
    );
    line.emulator.stop().await;

    for _ in 0..3 {
        let reply = get_bearer(&base, "/api/me", &id_token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(reply.headers.contains_key("retry-after"));
    }
    line.emulator.restart().await.unwrap();

    let started = Instant::now();
    loop {
        let status = get_bearer(&base, "/api/me", &id_token).await.status;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the key set is fetched again well before the 60 s floor"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(line.emulator.calls().certs >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_stream_of_logouts_leaves_other_users_cached() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let tokens: Vec<String> = (0..20).map(|_| line.token()).collect();
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(300)));

    // 50 logouts a second, of tokens nobody else uses, while the others are verified.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (auth, stop) = (auth.clone(), Arc::clone(&stop));
        let logged_out: Vec<String> = (0..50).map(|_| line.token()).collect();
        tokio::spawn(async move {
            for token in logged_out.iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let auth = auth.clone();
                let token = token.clone();
                tokio::spawn(async move { auth.logout(&token).await });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let first_round = tokens.iter().map(|token| {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
    });
    for request in first_round.collect::<Vec<_>>() {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.await.unwrap();
    line.emulator.reset_calls();

    for token in &tokens {
        assert_eq!(
            get_bearer(&base, "/api/me", token).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        line.calls(),
        (0, 0),
        "every verified token was cached despite the logouts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_verifications_do_not_starve_the_next_user() {
    let line = Line::start().await;
    let base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(line.config().build().unwrap())),
    )
    .await;
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(500)));

    // 600 junk tokens, each sent whole on its own connection, closed 50 ms later.
    let address = base.trim_start_matches("http://").to_owned();
    let junk = (0..600).map(|i| {
        let address = address.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
            let request = format!(
                "GET /api/me HTTP/1.1\r\nhost: {address}\r\n\
                 authorization: Bearer junk-token-{i:04}-abcdefghijklmnopqrstuvwxyz\r\n\r\n"
            );
            connection.write_all(request.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        })
    });
    for request in junk.collect::<Vec<_>>() {
        request.await.unwrap();
    }
    // First-time tokens get three quarters of the 64 turns at LINE: all of them went to junk.
    assert!(
        eventually(Duration::from_secs(2), || line.emulator.calls().verify
            >= 48)
        .await,
        "the junk reached LINE"
    );

    let token = line.token();
    let started = Instant::now();
    let status = get_bearer(&base, "/api/me", &token).await.status;
    let took = started.elapsed();

    assert_eq!(status, StatusCode::OK);
    assert!(took <= Duration::from_millis(2500), "took {took:?}");
}

#[tokio::test]
async fn logout_through_a_cookie_revokes_the_token_it_verified() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .token_sources([line_auth::TokenSource::Cookie("line_token".into())]);
    let base = serve(app(layer)).await;
    let token = line.issue(IssueToken::new(CHANNEL));
    let cookie = format!("line_token={token}");
    let get = |cookie: String| {
        let base = base.clone();
        async move {
            http()
                .get(format!("{base}/api/me"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get(cookie.clone()).await, StatusCode::OK);

    let logout = http()
        .post(format!("{base}/api/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    assert!(
        line.emulator.revocation(&token).is_some(),
        "revoked at LINE"
    );
    assert_eq!(get(cookie).await, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_duration_that_would_overflow_the_clock_is_a_configuration_error() {
    let builder = || line_auth::LineAuthConfig::builder().channel_id(CHANNEL);
    for built in [
        builder().cache_max_ttl(Duration::MAX).build(),
        builder().negative_cache_ttl(Duration::MAX).build(),
        builder().stale_if_error(Duration::MAX).build(),
        builder().upstream_timeout(Duration::MAX).build(),
        builder().upstream_attempt_timeout(Duration::MAX).build(),
        builder().jwks_refetch_floor(Duration::MAX).build(),
    ] {
        let error = built.expect_err("refused when built, not when a request adds it to now");
        assert!(error.to_string().contains("too long"), "{error}");
    }
    assert!(builder()
        .cache_max_ttl(Duration::from_secs(365 * 24 * 60 * 60))
        .build()
        .is_ok());
}

#[tokio::test]
async fn a_response_to_a_request_authenticated_by_a_query_parameter_is_not_stored() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap()).token_sources([
        line_auth::TokenSource::AuthorizationHeader,
        line_auth::TokenSource::QueryParameter("access_token".into()),
    ]);
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let token = line.token();
    let get = |url: String, bearer: Option<String>| async move {
        let mut request = http().get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            response.headers().get("cache-control").cloned(),
        )
    };

    let (status, cache_control) = get(format!("{base}/api/me?access_token={token}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cache_control.unwrap(), "no-store");
    let (status, cache_control) = get(format!("{base}/api/me?access_token={token}x"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cache_control.unwrap(), "no-store", "refusals too");
    for malformed in [
        "access_token=a&access_token=b",
        "access_token=",
        "access_token=a%00b",
    ] {
        let (status, cache_control) = get(format!("{base}/api/me?{malformed}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{malformed}");
        assert_eq!(
            cache_control.as_ref().map(|value| value.to_str().unwrap()),
            Some("no-store"),
            "a malformed token in the URL too: {malformed}"
        );
    }

    let twice = http()
        .get(format!("{base}/api/me?page=2"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        twice.headers().get("cache-control"),
        None,
        "a refusal of header tokens names nothing in the URL"
    );
    let (status, cache_control) = get(format!("{base}/api/me"), Some(token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cache_control, None,
        "a header token leaves caching to the app"
    );
}

#[tokio::test]
async fn two_cookies_of_the_tokens_name_are_refused_400() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .token_sources([line_auth::TokenSource::Cookie("line_token".into())]);
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let (token, other) = (line.token(), line.token());

    let reply = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("line_token={token}; line_token={other}"))
        .send()
        .await
        .unwrap();

    assert_eq!(reply.status(), StatusCode::BAD_REQUEST);
    assert_eq!(line.calls(), (0, 0));
}

#[tokio::test]
async fn a_cookie_authenticated_state_change_must_come_from_this_site() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let layer = LineAuthLayer::new(line.config().build().unwrap())
        .token_sources([line_auth::TokenSource::Cookie("line_token".into())])
        .trusted_origins(["https://app.example.com"]);
    let router = axum::Router::new()
        .route(
            "/api/note",
            axum::routing::post({
                let calls = calls.clone();
                move |_user: line_auth::LineUser| async move {
                    let _ = calls;
                    StatusCode::CREATED
                }
            }),
        )
        .merge(routes(&calls))
        .layer(layer);
    let base = serve(router).await;
    let token = line.token();
    let post = |headers: &'static [(&'static str, &'static str)]| {
        let (base, cookie) = (base.clone(), format!("line_token={token}"));
        async move {
            let mut request = http()
                .post(format!("{base}/api/note"))
                .header("cookie", cookie);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            request.send().await.unwrap().status()
        }
    };

    assert_eq!(
        post(&[("sec-fetch-site", "same-origin")]).await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&[("sec-fetch-site", "none")]).await,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://app.example.com")
        ])
        .await,
        StatusCode::CREATED,
        "a trusted origin"
    );
    for refused in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
        &[],
    ] {
        assert_eq!(post(refused).await, StatusCode::FORBIDDEN, "{refused:?}");
    }
    // A browser without Fetch Metadata says where it comes from in `Origin` alone.
    let own_origin = format!("http://{}", base.trim_start_matches("http://"));
    let reply = http()
        .post(format!("{base}/api/note"))
        .header("cookie", format!("line_token={token}"))
        .header("origin", own_origin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        StatusCode::CREATED,
        "this site's own origin"
    );
    // A cross-site WebSocket upgrade is a GET that changes state all the same.
    let reply = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("line_token={token}"))
        .header("sec-fetch-site", "cross-site")
        .header("upgrade", "websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        StatusCode::FORBIDDEN,
        "a cross-site upgrade"
    );
    // A safe method needs no such proof.
    let reply = http()
        .get(format!("{base}/api/me"))
        .header("cookie", format!("line_token={token}"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(line.calls(), (1, 1), "refused before LINE was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_on_a_verification_when_its_token_is_signed_out_is_refused() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;
    let token = line.token();
    // Long enough for the logout below to come first on a stalled machine; within the upstream
    // timeout (3 s).
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(2_000)),
    );
    let waiting = {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
    };
    assert!(eventually(Duration::from_secs(2), || line.emulator.calls().verify == 1).await);

    auth.logout(&token).await.unwrap();

    assert_eq!(waiting.await.unwrap(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.get(), 0, "no handler ran for the signed-out token");
    let stats = auth.stats();
    assert_eq!(
        (stats.verified, stats.refused),
        (0, 1),
        "the verification ended refused: {stats:?}"
    );
}

/// As above, with LINE failing to answer that verification: the token is signed out, which is
/// known here without LINE, so its waiters hear 401, not "retry later".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_on_line_when_its_token_is_signed_out_is_refused_even_if_line_fails() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;
    let token = line.token();
    line.emulator.inject(Endpoint::Verify, Fault::Hang);
    let waiting = {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await })
    };
    assert!(eventually(Duration::from_secs(2), || line.emulator.calls().verify >= 1).await);

    auth.logout(&token).await.unwrap();

    let answer = waiting.await.unwrap();
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{:?}", answer.body);
    assert!(answer.body.contains("revoked"), "{:?}", answer.body);
    assert_eq!(calls.get(), 0, "no handler ran for the signed-out token");
}
