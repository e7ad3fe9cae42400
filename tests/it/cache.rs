//! The verified-token cache as a client and LINE observe it.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::LineAuthLayer;
use line_auth_emulator::IssueToken;

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
    let max_ttl = Duration::from_millis(500);
    let config = line.config().cache_max_ttl(max_ttl).build().unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;
    let token = line.token();
    // The verdict is reached after this, so it is fresh until at least `max_ttl` after it.
    let before_verification = Instant::now();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );

    line.emulator.revoke(&token);
    // Within the TTL the cached verdict stands (the documented trade-off); then LINE is asked.
    let reply = loop {
        let reply = get_bearer(&base, "/api/me", &token).await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        assert!(
            before_verification.elapsed() < max_ttl + Duration::from_secs(3),
            "the revoked token is still served long after the max TTL"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let refused_after = before_verification.elapsed();

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        "the access token was revoked"
    );
    // The cache rounds its deadlines down to the millisecond.
    assert!(
        refused_after >= max_ttl - Duration::from_millis(1),
        "refused after {refused_after:?}: the cached verdict did not stand for the max TTL"
    );
    assert_eq!(line.calls(), (2, 1), "LINE asked again once, after the TTL");
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

/// LINE's verdicts and the fleet's are checked before they are cached, so a test-kit fixed token
/// is how a cached verdict that fails the layer's requirements is seen: the re-check on a hit is
/// what refuses it.
#[cfg(feature = "testing")]
#[tokio::test]
async fn a_cache_hit_is_rechecked_against_the_layers_channels_and_scopes_without_asking_line() {
    use line_auth::LineUser;

    let line = Line::start().await;
    let narrow = LineUser::builder("U0123456789abcdef0123456789abcdef", CHANNEL)
        .scopes(["profile"])
        .build();
    let foreign = LineUser::builder("U0123456789abcdef0123456789abcdee", OTHER_CHANNEL)
        .scopes(["profile", "openid"])
        .build();
    let config = line
        .config()
        .required_scopes(["profile", "openid"])
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config)
        .with_fixed_token("narrow-token", narrow)
        .with_fixed_token("foreign-token", foreign);
    let auth = layer.handle();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(layer)).await;

    for _ in 0..2 {
        let narrow = get_bearer(&base, "/api/me", "narrow-token").await;
        assert_eq!(narrow.status, StatusCode::FORBIDDEN);
        assert_eq!(narrow.json()["error"], "insufficient_scope");
        let foreign = get_bearer(&base, "/api/me", "foreign-token").await;
        assert_eq!(foreign.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            foreign.json()["error_description"],
            "the access token belongs to another channel"
        );
    }

    assert_eq!(auth.stats().misses, 0, "decided from the cache every time");
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}

/// `stats()` gives each verification's time with LINE as a histogram: one sample per
/// verification, a coalesced wait or a hit adding none, in the bucket of its milliseconds.
#[tokio::test]
async fn stats_give_each_verifications_time_with_line_as_a_histogram() {
    let tokens = TwoTokens::start().await;
    tokens
        .verify_coalesce_then_hit(Duration::from_millis(60))
        .await;
    assert_eq!(
        get_bearer(&tokens.base, "/api/me", &tokens.revoked)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let stats = tokens.auth.stats();
    assert_eq!((stats.misses, stats.coalesced), (2, 1), "{stats:?}");
    let latency = stats.upstream_latency;
    assert_eq!(latency.count, 2, "{latency:?}");
    assert_eq!(latency.counts.iter().sum::<u64>(), 2, "{latency:?}");
    // In milliseconds: at least LINE's latency, well under a second each (a loaded machine may
    // take more than the latency, not ten times more).
    assert!((2 * 60..2 * 1_000).contains(&latency.sum_ms), "{latency:?}");
    let in_buckets = |range: std::ops::Range<u64>| {
        latency
            .bounds_ms
            .iter()
            .zip(latency.counts)
            .filter(|(bound, _)| range.contains(bound))
            .map(|(_, count)| count)
            .sum::<u64>()
    };
    assert_eq!(
        in_buckets(0..60),
        0,
        "none under LINE's latency: {latency:?}"
    );
    assert_eq!(
        in_buckets(60..1_001),
        2,
        "both within a second: {latency:?}"
    );
}

#[tokio::test]
async fn stats_count_hits_misses_coalesced_waits_and_refusals_by_reason() {
    // The emulator is kept (`_line`), not dropped with the rest.
    let TwoTokens {
        line: _line,
        auth,
        base,
        token,
        revoked,
    } = TwoTokens::start().await;

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
