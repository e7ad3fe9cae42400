//! LINE misbehaving (faults injected in the emulator), the negative cache, and stale-if-error.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::{LineAuthConfigBuilder, LineAuthLayer};
use line_auth_emulator::{Endpoint, Fault, IssueToken};

use crate::support::*;

async fn app(config: LineAuthConfigBuilder) -> (String, HandlerCalls) {
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config.build().unwrap()))).await;
    (base, calls)
}

/// The app, and a token it has verified (and cached) once.
/// An app with stale-if-error (60 s), holding a token verified past its 200 ms max TTL: the next
/// request for it asks LINE again, and LINE failing lets the stale entry stand in.
async fn app_with_a_stale_token(line: &Line) -> (String, String) {
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(200))
        .stale_if_error(Duration::from_secs(60))
        .upstream_timeout(Duration::from_millis(500));
    let (base, verified) = app_with_a_verified_token(line, config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    (base, verified)
}

async fn app_with_a_verified_token(line: &Line, config: LineAuthConfigBuilder) -> (String, String) {
    let (base, _) = app(config).await;
    let verified = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &verified).await.status,
        StatusCode::OK
    );
    (base, verified)
}

#[tokio::test]
async fn transient_5xx_is_retried_within_the_deadline() {
    let line = Line::start().await;
    let (base, _) = app(line.config()).await;
    line.emulator.inject_times(
        Endpoint::Verify,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
        2,
    );
    line.emulator.inject_times(
        Endpoint::Profile,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        1,
    );

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.calls(), (3, 2));
}

#[tokio::test]
async fn persistent_5xx_gives_503_after_the_configured_attempts() {
    let line = Line::start().await;
    let (base, calls) = app(line.config().upstream_max_attempts(4)).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!((line.calls(), calls.get()), ((4, 0), 0));
}

#[tokio::test]
async fn retries_can_be_turned_off() {
    let line = Line::start().await;
    let (base, _) = app(line.config().upstream_max_attempts(1)).await;
    line.emulator
        .inject_times(Endpoint::Verify, Fault::Status(StatusCode::BAD_GATEWAY), 1);

    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(line.calls(), (1, 0));
}

#[tokio::test]
async fn a_rate_limit_is_not_retried_within_the_request_and_passes_retry_after_on() {
    let line = Line::start().await;
    let (base, _) = app(line.config().upstream_timeout(Duration::from_secs(4))).await;
    line.emulator.inject_times(
        Endpoint::Verify,
        Fault::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        1,
    );

    let started = Instant::now();
    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "1", "LINE's own wait");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once, not after waiting: {:?}",
        started.elapsed()
    );
    assert_eq!(line.calls(), (1, 0), "LINE asked once");
}

#[tokio::test]
async fn rate_limit_longer_than_the_deadline_gives_503_passing_retry_after_on() {
    let line = Line::start().await;
    let (base, _) = app(line.config()).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        },
    );

    let started = Instant::now();
    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers["retry-after"], "30");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "gave up at once: {:?}",
        started.elapsed()
    );
    assert_eq!(line.calls(), (1, 0));
}

#[tokio::test]
async fn slow_try_is_abandoned_and_retried() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_attempt_timeout(Duration::from_secs(1))
        .upstream_timeout(Duration::from_secs(6));
    let (base, _) = app(config).await;
    line.emulator
        .inject_times(Endpoint::Verify, Fault::Latency(Duration::from_secs(5)), 1);

    let started = Instant::now();
    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    // The second try and the profile call each take well under the attempt timeout, even on a
    // stalled machine: a try abandoned twice would ask LINE more than the counts below.
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(line.calls(), (2, 1));
}

/// A LINE slower than a second but within the upstream timeout is LINE answering, not LINE
/// down: by default a try may take what is left of the upstream timeout, so the request is
/// served after one call, not refused after three.
#[tokio::test]
async fn a_line_answering_within_the_upstream_timeout_is_asked_once_and_served() {
    let line = Line::start().await;
    let (base, calls) = app(line.config()).await;
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(1300)),
    );

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.calls(), (1, 1));
    assert_eq!(calls.get(), 1);
}

/// With a shorter try set, the last try still gets what is left of the upstream timeout: cut
/// off, it would have no other after it.
#[tokio::test]
async fn the_last_try_may_use_what_is_left_of_the_upstream_timeout() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_attempt_timeout(Duration::from_millis(300))
        .upstream_max_attempts(1)
        .upstream_timeout(Duration::from_secs(3));
    let (base, _) = app(config).await;
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(600)));

    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(line.calls(), (1, 1));
}

#[tokio::test]
async fn hanging_line_gives_503_within_the_upstream_timeout() {
    let line = Line::start().await;
    let config = line.config().upstream_timeout(Duration::from_millis(800));
    let (base, calls) = app(config).await;
    line.emulator.inject(Endpoint::Profile, Fault::Hang);

    let started = Instant::now();
    let reply = get_bearer(&base, "/api/me", &line.token()).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn connection_broken_off_is_retried() {
    let line = Line::start().await;
    let (base, _) = app(line.config()).await;
    line.emulator
        .inject_times(Endpoint::Verify, Fault::Reset, 1);

    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::OK
    );
    assert_eq!(line.calls(), (2, 1));

    line.emulator.inject(Endpoint::Verify, Fault::Reset);
    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn out_of_spec_answers_give_503_without_retrying() {
    for fault in [Fault::NotJson, Fault::HugeBody(1 << 20)] {
        let line = Line::start().await;
        let (base, calls) = app(line.config()).await;
        line.emulator.inject(Endpoint::Verify, fault.clone());

        let reply = get_bearer(&base, "/api/me", &line.token()).await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{fault:?}");
        assert_eq!(
            (line.calls(), calls.get()),
            ((1, 0), 0),
            "{fault:?}: the same answer would come again"
        );
    }
}

#[tokio::test]
async fn refused_tokens_are_refused_again_without_asking_line() {
    let line = Line::start().await;
    let (base, _) = app(line.config().required_scopes(["profile", "openid"])).await;
    let revoked = line.token();
    line.emulator.revoke(&revoked);
    let foreign = line.issue(IssueToken::new(OTHER_CHANNEL));
    let narrow = line.token();
    let junk = "eyJhbGciOiJIUzI1NiJ9.anVuaw.anVuaw".to_owned();

    for _ in 0..5 {
        assert_eq!(
            get_bearer(&base, "/api/me", &revoked).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get_bearer(&base, "/api/me", &foreign).await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get_bearer(&base, "/api/me", &narrow).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            get_bearer(&base, "/api/me", &junk).await.status,
            StatusCode::UNAUTHORIZED
        );
    }

    assert_eq!(line.calls(), (4, 0));
}

#[tokio::test]
async fn refusal_is_forgotten_after_the_negative_ttl() {
    let line = Line::start().await;
    let negative_ttl = Duration::from_millis(300);
    let (base, _) = app(line.config().negative_cache_ttl(negative_ttl)).await;
    let junk = "eyJhbGciOiJIUzI1NiJ9.anVuaw.anVuaw";
    // LINE refuses after this, so the refusal stands until at least `negative_ttl` after it.
    let before_refusal = Instant::now();
    get_bearer(&base, "/api/me", junk).await;
    assert_eq!(line.calls(), (1, 0));

    // Refused from memory until the TTL passes; then LINE is asked again.
    while line.calls().0 == 1 {
        assert!(
            before_refusal.elapsed() < negative_ttl + Duration::from_secs(3),
            "the refusal is still remembered long after the negative TTL"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            get_bearer(&base, "/api/me", junk).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let asked_again_after = before_refusal.elapsed();

    // The cache rounds its deadlines down to the millisecond.
    assert!(
        asked_again_after >= negative_ttl - Duration::from_millis(1),
        "LINE asked again after {asked_again_after:?}, within the negative TTL"
    );
    assert_eq!(line.calls(), (2, 0));
}

#[tokio::test]
async fn stale_if_error_keeps_verified_users_in_while_line_is_down() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(200))
        .stale_if_error(Duration::from_secs(60))
        .upstream_timeout(Duration::from_millis(500));
    let (base, _) = app(config).await;
    let verified = line.token();
    let never_seen = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &verified).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );

    let reply = get_bearer(&base, "/api/me", &verified).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        get_bearer(&base, "/api/me", &never_seen).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Once LINE answers again its verdict wins, stale entry or not.
    line.emulator.clear_faults();
    line.emulator.revoke(&verified);
    assert_eq!(
        get_bearer(&base, "/api/me", &verified).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A LINE that does not answer within the budget, given a fair try, is LINE failing:
/// stale-if-error stands in.
#[tokio::test]
async fn stale_if_error_stands_in_when_line_does_not_answer_in_time() {
    let line = Line::start().await;
    let (base, verified) = app_with_a_stale_token(&line).await;
    line.emulator.inject(Endpoint::Verify, Fault::Hang);

    let reply = get_bearer(&base, "/api/me", &verified).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// Stale-if-error stands in for LINE, not for this layer's own queue: a re-check that waited for
/// its turn until too little of its budget was left to give LINE a fair try gets 503, even though
/// LINE then runs out the clock.
#[tokio::test]
async fn stale_if_error_does_not_stand_in_when_the_queue_left_line_no_time() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(200))
        .stale_if_error(Duration::from_secs(60))
        .upstream_timeout(Duration::from_secs(2))
        .upstream_attempt_timeout(Duration::from_secs(2))
        .max_concurrent_verifications(1);
    let (base, verified) = app_with_a_verified_token(&line, config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Each of the next two verify calls takes 1.7 s: LINE is slow, but answers within a budget
    // of its own (2 s).
    line.emulator.inject_times(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(1700)),
        2,
    );

    // A first-time token takes the only turn for 1.7 s; the stale token's re-check waits for it,
    // then has about a third of a second of its budget left, under a fair try (0.5 s).
    let first_time = tokio::spawn({
        let (base, token) = (base.clone(), line.token());
        async move { get_bearer(&base, "/api/me", &token).await.status }
    });
    // Its verify call has reached LINE: it holds the turn.
    line.wait_for_verify_calls(2).await;
    let reply = get_bearer(&base, "/api/me", &verified).await;

    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "served stale: {}",
        reply.body
    );
    first_time.await.unwrap();
}

#[tokio::test]
async fn without_stale_if_error_a_stale_token_gets_503_while_line_is_down() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(200))
        .upstream_timeout(Duration::from_millis(500));
    let (base, verified) = app_with_a_verified_token(&line, config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    line.emulator.stop().await;

    assert_eq!(
        get_bearer(&base, "/api/me", &verified).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn stale_if_error_never_outlives_the_grace() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(100))
        .stale_if_error(Duration::from_millis(400))
        .upstream_timeout(Duration::from_millis(300));
    let (base, verified) = app_with_a_verified_token(&line, config).await;
    line.emulator.stop().await;

    tokio::time::sleep(Duration::from_millis(600)).await;

    assert_eq!(
        get_bearer(&base, "/api/me", &verified).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn stale_if_error_never_outlives_the_token() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(100))
        .stale_if_error(Duration::from_secs(60))
        .upstream_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let lifetime = Duration::from_millis(2900);
    let short_lived = line.issue(IssueToken::new(CHANNEL).lifetime(lifetime));
    // The token expires at LINE no later than this.
    let expired_by = Instant::now() + lifetime;
    assert_eq!(
        get_bearer(&base, "/api/me", &short_lived).await.status,
        StatusCode::OK
    );
    line.emulator.stop().await;

    // Served (stale, after the 100 ms max TTL) while the token lives; never past its expiry,
    // however long the 60 s grace.
    let reply = loop {
        let sent_at = Instant::now();
        let reply = get_bearer(&base, "/api/me", &short_lived).await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        assert!(
            sent_at < expired_by,
            "served {:?} after the token expired",
            sent_at - expired_by
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    assert_eq!(
        reply.json()["error_description"],
        "the access token expired"
    );
    assert!(
        auth.stats().served_stale >= 1,
        "the token was served stale while it lived"
    );
}

#[tokio::test]
async fn verifications_asking_line_at_once_are_bounded() {
    let line = Line::start().await;
    let config = line
        .config()
        .max_concurrent_verifications(2)
        .upstream_timeout(Duration::from_secs(10));
    let (base, _) = app(config).await;
    let latency = Duration::from_secs(1);
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(latency));
    let tokens: Vec<String> = (0..6).map(|_| line.token()).collect();

    let started = Instant::now();
    let requests: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let base = base.clone();
            tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    let took = started.elapsed();

    // Six verifications, two at a time: three rounds of LINE's latency. One at a time would
    // take six rounds, three at a time two. The upper bound leaves two rounds for a stalled
    // machine.
    assert!(took >= 3 * latency, "fewer than three rounds: {took:?}");
    assert!(took < 5 * latency, "more than three rounds: {took:?}");
    assert_eq!(line.calls(), (6, 6));
}

/// Stale-if-error stands in for LINE failing, not for LINE answering about the token: a 4xx
/// LINE does not document for verify (here a 400 or 404 without its OAuth error body) may be a
/// refusal in another shape, and a 3xx (LINE's API redirects nothing) is someone else's answer,
/// so the token once verified is not served from the stale entry. A 429 is LINE being busy, and
/// still is.
#[tokio::test]
async fn stale_if_error_does_not_stand_in_for_an_undocumented_client_error_or_a_redirect() {
    // A proxy's page too large to read changes nothing: the status still says what it is.
    let huge_page = Fault::Json {
        status: StatusCode::NOT_FOUND,
        body: format!("<html>{}</html>", "x".repeat(64 * 1024)),
    };
    for (case, fault, stale_allowed) in [
        ("400", Fault::Status(StatusCode::BAD_REQUEST), false),
        ("404", Fault::Status(StatusCode::NOT_FOUND), false),
        ("404, a page too large", huge_page, false),
        // LINE's API redirects nothing: a proxy's or a captive portal's answer, as a 404.
        ("302", Fault::Status(StatusCode::FOUND), false),
        ("307", Fault::Status(StatusCode::TEMPORARY_REDIRECT), false),
        ("429", Fault::Status(StatusCode::TOO_MANY_REQUESTS), true),
    ] {
        let line = Line::start().await;
        let (base, verified) = app_with_a_stale_token(&line).await;
        line.emulator.inject(Endpoint::Verify, fault);

        let reply = get_bearer(&base, "/api/me", &verified).await;

        if stale_allowed {
            assert_eq!(reply.status, StatusCode::OK, "{case}: {}", reply.body);
        } else {
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{case}: {}",
                reply.body
            );
        }
    }
}

/// Nor does the entry that did not stand in for such an answer stand in at LINE's next outage:
/// the answer may have been a refusal, and the entry goes as a refusal's would.
#[tokio::test]
async fn an_answer_that_may_be_a_refusal_ends_stale_if_error_for_the_token() {
    let invalid = || Fault::Json {
        status: StatusCode::BAD_REQUEST,
        body: r#"{"message":"invalid token"}"#.to_owned(),
    };
    for (case, endpoint, fault) in [
        ("verify 400 in another shape", Endpoint::Verify, invalid()),
        (
            "verify 404",
            Endpoint::Verify,
            Fault::Status(StatusCode::NOT_FOUND),
        ),
        ("profile 400 in another shape", Endpoint::Profile, invalid()),
    ] {
        let line = Line::start().await;
        let (base, verified) = app_with_a_stale_token(&line).await;
        line.emulator.inject_times(endpoint, fault, 1);
        let reply = get_bearer(&base, "/api/me", &verified).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");

        line.emulator.inject(
            Endpoint::Verify,
            Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        );
        let reply = get_bearer(&base, "/api/me", &verified).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{case}, then LINE down: {}",
            reply.body
        );
    }
}
