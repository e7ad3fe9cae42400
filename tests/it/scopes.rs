//! `RequireScopesLayer` where no verified user reaches it: it refuses, never lets the request by.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use line_auth::{LineAuthLayer, RequireScopesLayer};
use line_auth_emulator::IssueToken;

use crate::support::*;

/// `GET /api/id` behind `RequireScopesLayer(["openid"])`. The handler takes no `LineUser`, so
/// only the scope layer stands between a request and it.
fn scoped_routes(calls: &Arc<AtomicU64>) -> Router {
    let calls = Arc::clone(calls);
    Router::new().route(
        "/api/id",
        get(move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            "the scoped resource"
        })
        .route_layer(RequireScopesLayer::new(["openid"])),
    )
}

#[tokio::test]
async fn require_scopes_without_an_auth_layer_refuses_even_a_valid_token() {
    let line = Line::start().await;
    let calls = Arc::new(AtomicU64::new(0));
    let base = serve(scoped_routes(&calls)).await;
    let with_openid = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid"]));

    for reply in [
        get_bearer(&base, "/api/id", &with_openid).await,
        get_anonymous(&base, "/api/id").await,
    ] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.challenge(), Some(r#"Bearer realm="line""#));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(line.calls(), (0, 0), "nothing verified the token");
}

#[tokio::test]
async fn require_scopes_under_an_optional_layer_refuses_anonymous_requests() {
    let line = Line::start().await;
    let calls = Arc::new(AtomicU64::new(0));
    let layer = LineAuthLayer::new(line.config().build().unwrap()).optional();
    let auth = layer.handle();
    let base = serve(scoped_routes(&calls).layer(layer)).await;
    let with_openid = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid"]));

    let anonymous = get_anonymous(&base, "/api/id").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.challenge(), Some(r#"Bearer realm="line""#));
    assert_eq!(
        get_with(&base, "/api/id", &[b"Basic dXNlcjpwYXNzd29yZA=="])
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "another scheme is anonymous to the optional layer, so refused here too"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Refused inside the layer, and counted by it.
    assert_eq!(
        auth.stats().rejections.missing_token,
        2,
        "{:?}",
        auth.stats()
    );

    let reply = get_bearer(&base, "/api/id", &with_openid).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "the scoped resource")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// `RequireScopesLayer::new` requires every one of its scopes, not any one of them: a token
/// with one of two gets 403 naming both; a token with both reaches the handler.
#[tokio::test]
async fn require_scopes_requires_every_scope_it_names() {
    let line = Line::start().await;
    let calls = Arc::new(AtomicU64::new(0));
    let handler_calls = Arc::clone(&calls);
    let routes = Router::new().route(
        "/api/both",
        get(move || async move {
            handler_calls.fetch_add(1, Ordering::SeqCst);
            "both"
        })
        .route_layer(RequireScopesLayer::new(["openid", "chat_message.write"])),
    );
    let layer = LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes.layer(layer)).await;
    let one = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid"]));
    let both =
        line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid", "chat_message.write"]));

    let refused = get_bearer(&base, "/api/both", &one).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused
            .challenge()
            .unwrap()
            .contains(r#"scope="openid chat_message.write""#),
        "{:?}",
        refused.challenge()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Refused inside the layer, and counted by it, once.
    assert_eq!(
        auth.stats().rejections.insufficient_scope,
        1,
        "{:?}",
        auth.stats()
    );

    let served = get_bearer(&base, "/api/both", &both).await;
    assert_eq!(served.status, StatusCode::OK, "{}", served.body);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// A refusal made inside a layer is counted by that layer, not by another built before or after
/// it in the same process, and a layer built later leaves the earlier one counting.
#[tokio::test]
async fn a_refusal_made_inside_is_counted_by_the_layer_it_passed_through() {
    let line = Line::start().await;
    let scoped = |layer: LineAuthLayer| {
        Router::new()
            .route(
                "/api/both",
                get(|| async { "both" })
                    .route_layer(RequireScopesLayer::new(["openid", "chat_message.write"])),
            )
            .layer(layer)
    };
    let first = LineAuthLayer::new(line.config().build().unwrap());
    let first_auth = first.handle();
    let second = LineAuthLayer::new(line.config().build().unwrap());
    let second_auth = second.handle();
    let first_base = serve(scoped(first)).await;
    let second_base = serve(scoped(second)).await;
    let narrow = line.issue(IssueToken::new(CHANNEL).scopes(["profile", "openid"]));

    let refused = get_bearer(&second_base, "/api/both", &narrow).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(second_auth.stats().rejections.insufficient_scope, 1);
    assert_eq!(first_auth.stats().rejections.insufficient_scope, 0);

    let refused = get_bearer(&first_base, "/api/both", &narrow).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(first_auth.stats().rejections.insufficient_scope, 1);
    assert_eq!(second_auth.stats().rejections.insufficient_scope, 1);
}
