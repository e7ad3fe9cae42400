//! ID tokens as the bearer credential (`LineAuthLayer::id_tokens`): verified locally against
//! the emulator's published keys (ES256) or the channel secret (HS256), never by LINE per token.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use line_auth::id_token::IdTokenVerifier;
use line_auth::rejection::InvalidReason;
use line_auth::{LineAuthConfig, LineAuthConfigBuilder, LineAuthError, LineAuthLayer};
use line_auth_emulator::{Endpoint, Fault, IdTokenAlgorithm, IssueIdToken};

use crate::support::*;

const BROWN: &str = "U4af4980629aabbccddeeff0011223344";

async fn app(config: LineAuthConfigBuilder) -> (String, HandlerCalls) {
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(config.build().unwrap()).id_tokens())).await;
    (base, calls)
}

#[tokio::test]
async fn a_liff_es256_id_token_is_accepted_without_asking_line() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let layer = LineAuthLayer::new(line.config().build().unwrap()).id_tokens();
    let auth = layer.handle();
    let base = serve(routes(&calls).layer(layer)).await;
    let id_token = line.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, BROWN)
            .name("Brown")
            .picture_url("https://profile.line-scdn.net/brown"),
    );

    let reply = get_bearer(&base, "/api/me", &id_token).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let user = reply.json();
    assert_eq!(
        (user["userId"].as_str(), user["displayName"].as_str()),
        (Some(BROWN), Some("Brown"))
    );
    assert_eq!(user["channelId"], CHANNEL);
    assert_eq!(user["scopes"], serde_json::json!(["openid", "profile"]));
    assert_eq!(
        get_bearer(&base, "/api/me", &id_token).await.status,
        StatusCode::OK
    );
    let stats = auth.stats();
    assert_eq!(
        (stats.misses, stats.cache_hits),
        (1, 1),
        "then cached, until the token's expiry"
    );
    assert_eq!(
        (line.calls(), calls.get()),
        ((0, 0), 2),
        "no verify or profile call"
    );
}

#[tokio::test]
async fn foreign_tampered_and_malformed_id_tokens_are_refused() {
    let line = Line::start().await;
    let (base, calls) = app(line.config()).await;
    let foreign = line
        .emulator
        .issue_id_token(IssueIdToken::new(OTHER_CHANNEL, BROWN).name("Brown"));
    let valid = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("Brown"));
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.rsplit_once('.').unwrap();
    let forged_payload = base64_url(&format!(
        r#"{{"iss":"https://access.line.me","sub":"Uevil","aud":"{CHANNEL}","exp":9999999999,"iat":1,"name":"Evil"}}"#
    ));
    let tampered = format!("{head}.{forged_payload}.{signature}");

    let reply = get_bearer(&base, "/api/me", &foreign).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token belongs to another channel"
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &tampered).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_bearer(&base, "/api/me", "not.a.jwt").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Outside the b64token charset: malformed (400), as for access tokens.
    let reply = get_bearer(&base, "/api/me", &format!("{valid}&x")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"], "invalid_request");
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn an_id_token_past_its_expiry_and_the_leeway_is_refused() {
    let line = Line::start().await;
    let verifier = IdTokenVerifier::new(&line.config().build().unwrap());
    let expired_at = |ago: u64| {
        line.emulator.issue_id_token(
            IssueIdToken::new(CHANNEL, BROWN)
                .name("B")
                .issued_at(SystemTime::now() - Duration::from_secs(3600 + ago))
                .lifetime(Duration::from_secs(3600)),
        )
    };
    // Well inside and well past the 60 s leeway, so a slow machine cannot blur the line.
    let within_leeway = expired_at(20);
    let past_leeway = expired_at(180);

    assert!(
        verifier.verify(&within_leeway, None).await.is_ok(),
        "clock skew within the leeway is tolerated"
    );
    assert!(matches!(
        verifier.verify(&past_leeway, None).await,
        Err(LineAuthError::InvalidToken(InvalidReason::Expired))
    ));

    let (base, calls) = app(line.config()).await;
    for id_token in [&past_leeway, &within_leeway] {
        let reply = get_bearer(&base, "/api/me", id_token).await;
        assert_eq!(
            (reply.status, reply.json()["error_description"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("the access token expired")),
            "the layer serves no token past its exp, leeway or not"
        );
    }
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn an_id_token_issued_in_the_future_beyond_the_leeway_is_refused() {
    let line = Line::start().await;
    let verifier = IdTokenVerifier::new(&line.config().build().unwrap());
    let issued_in = |ahead: u64| {
        line.emulator.issue_id_token(
            IssueIdToken::new(CHANNEL, BROWN)
                .name("B")
                .issued_at(SystemTime::now() + Duration::from_secs(ahead)),
        )
    };
    let within_leeway = issued_in(20);
    let beyond_leeway = issued_in(300);

    assert!(
        verifier.verify(&within_leeway, None).await.is_ok(),
        "an issuer's clock a little ahead is tolerated"
    );
    assert!(matches!(
        verifier.verify(&beyond_leeway, None).await,
        Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
    ));

    let (base, calls) = app(line.config()).await;
    assert_eq!(
        get_bearer(&base, "/api/me", &beyond_leeway).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &within_leeway).await.status,
        StatusCode::OK
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_once_then_rotation_works() {
    let line = Line::start().await;
    let (base, _) = app(line.config().jwks_refetch_floor(Duration::from_millis(200))).await;
    let issue = |user: &str| {
        line.emulator
            .issue_id_token(IssueIdToken::new(CHANNEL, user).name("Brown"))
    };
    let before = issue(BROWN);
    assert_eq!(
        get_bearer(&base, "/api/me", &before).await.status,
        StatusCode::OK
    );
    assert_eq!(line.emulator.calls().certs, 1, "the first kid: one fetch");

    line.emulator.rotate_signing_key();
    let after = issue(BROWN);
    let another_after = issue("U00000000000000000000000000000001");
    // Past the refetch floor since the first fetch: waiting is the set-up, the count the check.
    tokio::time::sleep(Duration::from_millis(250)).await;

    let reply = get_bearer(&base, "/api/me", &after).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "new kid, keys refetched: {}",
        reply.body
    );
    assert_eq!(line.emulator.calls().certs, 2, "the new kid: one refetch");
    assert_eq!(
        get_bearer(&base, "/api/me", &another_after).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get_bearer(
            &base,
            "/api/me",
            &issue("U00000000000000000000000000000002")
        )
        .await
        .status,
        StatusCode::OK
    );
    assert_eq!(
        line.emulator.calls().certs,
        2,
        "more tokens with the new kid use the refetched keys"
    );
}

/// A verifier whose keys age after `max_age` and may be fetched again every 50 ms, each fetch
/// given `line_timeout` (the default where `None`).
fn aging_keys(line: &Line, max_age: Duration, line_timeout: Option<Duration>) -> IdTokenVerifier {
    let mut config = line
        .config()
        .jwks_refetch_floor(Duration::from_millis(50))
        .jwks_max_age(max_age);
    if let Some(timeout) = line_timeout {
        config = config
            .upstream_timeout(timeout)
            .upstream_attempt_timeout(timeout);
    }
    IdTokenVerifier::new(&config.build().unwrap())
}

/// Verifies `token` in a task of its own, once the keys it needs have aged, and returns when
/// that verification has started the second fetch of LINE's keys.
async fn start_fetching_aged_keys(
    line: &Line,
    verifier: &std::sync::Arc<IdTokenVerifier>,
    token: String,
) -> tokio::task::JoinHandle<bool> {
    let verifying = {
        let verifier = std::sync::Arc::clone(verifier);
        tokio::spawn(async move { verifier.verify(&token, None).await.is_ok() })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while line.emulator.calls().certs < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no fetch of the aged keys"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    verifying
}

/// An ES256 ID token for Brown, signed with the emulator's current key.
fn brown_id_token(line: &Line) -> String {
    line.emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("B"))
}

/// A key LINE stops publishing stops verifying once the keys held are older than
/// `jwks_max_age`: the key set is fetched again then, not only for an unknown `kid`.
#[tokio::test]
async fn a_key_line_retires_stops_verifying_once_the_keys_held_are_older_than_their_max_age() {
    // Long enough for the first steps below on a loaded machine.
    const MAX_AGE: Duration = Duration::from_millis(1500);
    let line = Line::start().await;
    let verifier = aging_keys(&line, MAX_AGE, None);
    let retired = line.emulator.rotate_signing_key();
    let issue = || brown_id_token(&line);
    let (first, second) = (issue(), issue());
    assert!(verifier.verify(&first, None).await.is_ok(), "first fetch");

    line.emulator.rotate_signing_key();
    assert!(line.emulator.retire_signing_key(&retired));
    // Past the refetch floor, within the max age: no fetch yet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        verifier.verify(&second, None).await.is_ok(),
        "the keys held are younger than their max age"
    );
    assert_eq!(line.emulator.calls().certs, 1);

    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;
    assert!(
        verifier.verify(&second, None).await.is_err(),
        "a retired key kept verifying"
    );
    assert_eq!(
        line.emulator.calls().certs,
        2,
        "one fetch for the aged keys"
    );
    assert!(verifier.verify(&issue(), None).await.is_ok(), "the new key");
    assert_eq!(line.emulator.calls().certs, 2);
}

/// Aged keys whose fetch fails are still used: an outage of LINE's key endpoint does not refuse
/// tokens signed with a key held, and they are fetched again once it is back.
#[tokio::test]
async fn aged_keys_are_used_while_the_key_set_cannot_be_fetched() {
    const MAX_AGE: Duration = Duration::from_millis(500);
    let line = Line::start().await;
    let verifier = aging_keys(&line, MAX_AGE, None);
    let issue = || brown_id_token(&line);
    assert!(verifier.verify(&issue(), None).await.is_ok(), "first fetch");

    line.emulator.inject(
        Endpoint::Certs,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;
    let verified = verifier.verify(&issue(), None).await;
    assert!(verified.is_ok(), "{:?}", verified.err());
    assert_eq!(
        line.emulator.calls().certs,
        2,
        "the aged keys were asked for"
    );

    // Back, past the half-second backoff after the failure: fetched again.
    line.emulator.clear_faults();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(verifier.verify(&issue(), None).await.is_ok());
    assert_eq!(
        line.emulator.calls().certs,
        3,
        "fetched again once LINE is back"
    );
}

/// Only the verification that starts the fetch of aged keys waits for it: the others go on with
/// the key held.
#[tokio::test]
async fn only_the_verification_that_fetches_aged_keys_waits_for_them() {
    const MAX_AGE: Duration = Duration::from_millis(500);
    const SLOW_KEYS: Duration = Duration::from_secs(3);
    let line = Line::start().await;
    let verifier = std::sync::Arc::new(aging_keys(&line, MAX_AGE, Some(SLOW_KEYS * 2)));
    let issue = || brown_id_token(&line);
    assert!(verifier.verify(&issue(), None).await.is_ok(), "first fetch");
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;

    line.emulator
        .inject(Endpoint::Certs, Fault::Latency(SLOW_KEYS));
    let fetching = start_fetching_aged_keys(&line, &verifier, issue()).await;
    let other = tokio::time::timeout(SLOW_KEYS / 2, verifier.verify(&issue(), None)).await;
    assert!(
        other.expect("waited for the fetch under way").is_ok(),
        "the key held"
    );
    assert!(fetching.await.unwrap());
}

/// The verification that started the fetch of aged keys may be dropped (its client gone) with
/// the fetch under way: it is finished by a later verification once it has had its time, not
/// left hanging while the others go on with a key LINE retired.
#[tokio::test]
async fn a_fetch_of_aged_keys_whose_caller_left_is_finished_by_a_later_verification() {
    const MAX_AGE: Duration = Duration::from_millis(500);
    const LINE_TIMEOUT: Duration = Duration::from_secs(1);
    let line = Line::start().await;
    let verifier = std::sync::Arc::new(aging_keys(&line, MAX_AGE, Some(LINE_TIMEOUT)));
    let retired = line.emulator.rotate_signing_key();
    let signed_by_retired: Vec<String> = (0..100).map(|_| brown_id_token(&line)).collect();
    assert!(verifier.verify(&signed_by_retired[0], None).await.is_ok());
    line.emulator.rotate_signing_key();
    assert!(line.emulator.retire_signing_key(&retired));
    tokio::time::sleep(MAX_AGE + Duration::from_millis(100)).await;

    line.emulator
        .inject(Endpoint::Certs, Fault::Latency(LINE_TIMEOUT * 3));
    let left = start_fetching_aged_keys(&line, &verifier, signed_by_retired[1].clone()).await;
    left.abort();
    line.emulator.clear_faults();

    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    for token in &signed_by_retired[2..] {
        if verifier.verify(token, None).await.is_err() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the abandoned fetch was never finished: a retired key kept verifying"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("a retired key kept verifying");
}

#[tokio::test]
async fn unknown_kids_cannot_make_the_layer_hammer_the_key_endpoint() {
    let line = Line::start().await;
    let config = line.config().build().unwrap();
    let verifier = IdTokenVerifier::new(&config);
    let first = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("B"));
    assert!(verifier.verify(&first, None).await.is_ok(), "first fetch");

    line.emulator.rotate_signing_key();
    let rotated = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("B"));

    // The keys were fetched less than the floor ago: the new kid is refused, not fetched for.
    assert!(verifier.verify(&rotated, None).await.is_err());
    assert_eq!(line.emulator.calls().certs, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_key_set_fetch_is_not_repeated_within_its_backoff_and_is_after_it() {
    let line = Line::start().await;
    // The fetch that hangs times out after a second; each backoff counts from its failure.
    let (base, _) = app(line.config().upstream_timeout(Duration::from_secs(1))).await;
    let id_token = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("Brown"));
    line.emulator.inject_times(Endpoint::Certs, Fault::Hang, 1);

    // Four tokens (the layer would coalesce one token's requests) wait on one fetch, which
    // times out: one failure, however many waited.
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let base = base.clone();
            let id_token = line
                .emulator
                .issue_id_token(IssueIdToken::new(CHANNEL, format!("U{i:032x}")).name("Brown"));
            tokio::spawn(async move { get_bearer(&base, "/api/me", &id_token).await.status })
        })
        .collect();
    for request in waiting {
        assert_eq!(request.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(line.emulator.calls().certs, 1, "one fetch for the four");
    // Within the first failure's backoff (half a second) LINE is not asked again.
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        line.emulator.calls().certs,
        1,
        "not fetched within the backoff"
    );

    // Past it (and not past a backoff counted once per waiter), the key set is fetched again.
    // That fetch fails too: the backoff doubles, to a second.
    line.emulator.inject_times(
        Endpoint::Certs,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        1,
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        line.emulator.calls().certs,
        2,
        "fetched again past the backoff"
    );
    // Past the first backoff (half a second), within the second (a second).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        line.emulator.calls().certs,
        2,
        "the second backoff is a second"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.emulator.calls().certs, 3);
}

/// Issue 14, item 5: a 429 is not retried at once, and its caller gets LINE's `Retry-After`.
/// The key set is one fetch for every ID token, so LINE's wait holds for all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_key_set_fetch_passes_lines_retry_after_on_and_waits_it_out() {
    let line = Line::start().await;
    let (base, calls) = app(line.config()).await;
    let id_token = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).name("Brown"));
    line.emulator.inject_times(
        Endpoint::Certs,
        Fault::RateLimited {
            retry_after: Duration::from_secs(3),
        },
        1,
    );

    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "3");
    // Past the key set's own backoff (half a second, then a second), within LINE's wait: LINE
    // is not asked again, and the wait told is what is left of LINE's.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        line.emulator.calls().certs,
        1,
        "not fetched within LINE's wait"
    );
    let told: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=2).contains(&told),
        "what is left of LINE's 3 s: {told}"
    );
    assert_eq!(calls.get(), 0);

    // Past LINE's wait, the key set is fetched again and the token verified.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let reply = get_bearer(&base, "/api/me", &id_token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.emulator.calls().certs, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unknown_kids_share_one_key_fetch() {
    let line = Line::start().await;
    let verifier = std::sync::Arc::new(IdTokenVerifier::new(&line.config().build().unwrap()));
    let tokens: Vec<String> = (0..20)
        .map(|i| {
            line.emulator
                .issue_id_token(IssueIdToken::new(CHANNEL, format!("U{i:032x}")).name("B"))
        })
        .collect();

    let verifications: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let verifier = std::sync::Arc::clone(&verifier);
            tokio::spawn(async move { verifier.verify(&token, None).await.is_ok() })
        })
        .collect();
    for verification in verifications {
        assert!(verification.await.unwrap());
    }

    assert_eq!(line.emulator.calls().certs, 1);
}

#[tokio::test]
async fn hs256_web_login_id_tokens_need_the_opt_in_and_the_channel_secret() {
    let line = Line::start().await;
    let secret = line.emulator.channel_secret(CHANNEL);
    let hs256 = line.emulator.issue_id_token(
        IssueIdToken::new(CHANNEL, BROWN)
            .name("Brown")
            .algorithm(IdTokenAlgorithm::Hs256),
    );

    let (opted_in, _) = app(line
        .config()
        .channel_secret(&secret)
        .hs256_id_tokens(CHANNEL))
    .await;
    assert_eq!(
        get_bearer(&opted_in, "/api/me", &hs256).await.status,
        StatusCode::OK
    );

    // The secret revoke needs does not switch HS256 on.
    let (secret_only, _) = app(line.config().channel_secret(&secret)).await;
    assert_eq!(
        get_bearer(&secret_only, "/api/me", &hs256).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (wrong_secret, _) = app(line
        .config()
        .channel_secret("not-the-secret")
        .hs256_id_tokens(CHANNEL))
    .await;
    assert_eq!(
        get_bearer(&wrong_secret, "/api/me", &hs256).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn hs256_id_tokens_are_bound_to_the_channel_whose_secret_it_is() {
    let line = Line::start().await;
    // Another accepted channel that happens to have the same secret.
    let secret = line.emulator.channel_secret(CHANNEL);
    line.emulator.register_channel(OTHER_CHANNEL, &secret);
    let other = line.emulator.issue_id_token(
        IssueIdToken::new(OTHER_CHANNEL, BROWN)
            .name("Brown")
            .algorithm(IdTokenAlgorithm::Hs256),
    );
    let config = line
        .config()
        .channel_ids([CHANNEL, OTHER_CHANNEL])
        .channel_secret(&secret)
        .hs256_id_tokens(CHANNEL);
    let (base, calls) = app(config).await;

    assert_eq!(
        get_bearer(&base, "/api/me", &other).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(calls.get(), 0);
}

#[test]
fn hs256_id_tokens_without_a_secret_or_for_another_channel_are_configuration_errors() {
    let builder = || LineAuthConfig::builder().channel_id(CHANNEL);
    assert!(builder().hs256_id_tokens(CHANNEL).build().is_err());
    assert!(builder()
        .channel_secret("s")
        .hs256_id_tokens(OTHER_CHANNEL)
        .build()
        .is_err());
    assert!(builder()
        .channel_secret("s")
        .hs256_id_tokens(CHANNEL)
        .build()
        .is_ok());
}

#[tokio::test]
async fn the_verifier_checks_the_nonce_where_the_app_uses_one() {
    let line = Line::start().await;
    let verifier = IdTokenVerifier::new(&line.config().build().unwrap());
    let id_token = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN).nonce("n0nce"));

    let verified = verifier.verify(&id_token, Some("n0nce")).await.unwrap();
    assert_eq!(
        (verified.claims.sub.as_str(), verified.user.user_id()),
        (BROWN, BROWN)
    );
    assert!(verifier.verify(&id_token, Some("replayed")).await.is_err());
}

#[tokio::test]
async fn id_tokens_without_profile_need_openid_as_the_requirement() {
    let line = Line::start().await;
    let openid_only = line
        .emulator
        .issue_id_token(IssueIdToken::new(CHANNEL, BROWN));

    let (default_scopes, _) = app(line.config()).await;
    assert_eq!(
        get_bearer(&default_scopes, "/api/me", &openid_only)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    let (openid_required, _) = app(line.config().required_scopes(["openid"])).await;
    let reply = get_bearer(&openid_required, "/api/me", &openid_only).await;
    assert_eq!(reply.status, StatusCode::OK);
    // No name: the user has an ID and no display name, which the JSON omits.
    let user = reply.json();
    assert_eq!(user["userId"], BROWN);
    assert_eq!(user["scopes"], serde_json::json!(["openid"]));
    assert!(user.get("displayName").is_none(), "{user}");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// A verification that finds the key set lacking its `kid` just as another one's fetch of the
/// set lands must use the fetched set, not refuse the token because the set was "fetched too
/// recently" to fetch again. The window is narrow, so many rounds of concurrent first
/// verifications, each on a verifier with no keys yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_racing_a_landing_key_fetch_uses_the_fetched_keys() {
    let line = Line::start().await;
    let config = line.config().build().unwrap();
    let tokens: Vec<String> = (0..8)
        .map(|i| {
            line.emulator
                .issue_id_token(IssueIdToken::new(CHANNEL, format!("U{i:032x}")).name("B"))
        })
        .collect();
    for round in 0..200 {
        let verifier = std::sync::Arc::new(IdTokenVerifier::new(&config));
        let verifications: Vec<_> = tokens
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, token)| {
                let verifier = std::sync::Arc::clone(&verifier);
                tokio::spawn(async move {
                    // Staggered, so some arrive while the fetch is landing.
                    for _ in 0..i * 20 {
                        tokio::task::yield_now().await;
                    }
                    verifier.verify(&token, None).await.map(|_| ())
                })
            })
            .collect();
        for (i, verification) in verifications.into_iter().enumerate() {
            let outcome = verification.await.unwrap();
            assert!(outcome.is_ok(), "round {round}, token {i}: {outcome:?}");
        }
    }
}
