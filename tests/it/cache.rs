//! The verified-token cache as a client and LINE observe it.

use std::time::Duration;

use axum::http::StatusCode;
use line_auth::emulator::IssueToken;
use line_auth::LineAuthLayer;

use crate::support::*;

#[tokio::test]
async fn cache_hit_makes_no_upstream_call() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();

    for _ in 0..5 {
        assert_eq!(
            get_bearer(&base, "/api/me", &token).await.status,
            StatusCode::OK
        );
    }

    assert_eq!(line.calls(), (1, 1));
    assert_eq!(calls.get(), 5);
}

#[tokio::test]
async fn cached_token_is_refused_once_its_own_lifetime_ends() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.issue(IssueToken::new(CHANNEL).lifetime(Duration::from_secs(2)));

    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token expired"
    );
    assert_eq!(
        line.calls(),
        (1, 1),
        "the expiry LINE reported is enforced locally"
    );
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn revocation_at_line_is_seen_once_the_max_ttl_passes() {
    let line = Line::start().await;
    let config = line
        .config()
        .cache_max_ttl(Duration::from_millis(500))
        .build()
        .unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    line.emulator.revoke(&token);
    // Within the TTL the cached verdict stands: the documented trade-off.
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );
    assert_eq!(line.calls(), (2, 1));
}

#[tokio::test]
async fn zero_max_ttl_asks_line_every_time() {
    let line = Line::start().await;
    let config = line.config().cache_max_ttl(Duration::ZERO).build().unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;
    let token = line.token();

    for _ in 0..3 {
        assert_eq!(
            get_bearer(&base, "/api/me", &token).await.status,
            StatusCode::OK
        );
    }

    assert_eq!(line.calls(), (3, 3));
}

#[tokio::test]
async fn cached_verdict_is_rechecked_against_each_layers_requirements() {
    let line = Line::start().await;
    let lenient = LineAuthLayer::new(line.config().build().unwrap());
    let strict = LineAuthLayer::new(
        line.config()
            .required_scopes(["profile", "openid"])
            .build()
            .unwrap(),
    );
    let calls = HandlerCalls::default();
    let lenient_base = serve(routes(&calls).layer(lenient)).await;
    let strict_base = serve(routes(&calls).layer(strict)).await;
    let token = line.token();

    assert_eq!(
        get_bearer(&lenient_base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    for _ in 0..2 {
        assert_eq!(
            get_bearer(&strict_base, "/api/me", &token).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn stats_count_hits_misses_coalesced_waits_and_refusals_by_reason() {
    let line = Line::start().await;
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let token = line.token();
    let revoked = line.token();
    line.emulator.revoke(&revoked);

    for _ in 0..3 {
        get_bearer(&base, "/api/me", &token).await;
    }
    for _ in 0..2 {
        get_bearer(&base, "/api/me", &revoked).await;
    }
    get_anonymous(&base, "/api/me").await;
    get_with(&base, "/api/me", &[b"Bearer a b"]).await;

    let stats = auth.stats();
    assert_eq!(
        (stats.misses, stats.cache_hits, stats.negative_hits),
        (2, 2, 1)
    );
    assert_eq!(
        (stats.verified, stats.refused, stats.unavailable),
        (1, 1, 0)
    );
    assert_eq!(stats.rejections.invalid_token, 2);
    assert_eq!(
        (stats.rejections.missing_token, stats.rejections.malformed),
        (1, 1)
    );
    assert_eq!((stats.verified_entries, stats.refused_entries), (1, 1));
}
