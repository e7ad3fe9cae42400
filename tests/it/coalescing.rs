//! Concurrent misses for one token share one verification.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use line_auth::emulator::{Endpoint, Fault};
use line_auth::LineAuthLayer;
use tower::ServiceExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_token_make_one_verify_and_one_profile_call() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let token = line.token();

    let requests = (0..200).map(|_| {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
    });
    let statuses = futures_join_all(requests).await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(line.calls(), (1, 1));
    assert_eq!(calls.get(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_a_bad_token_all_get_the_same_refusal() {
    let line = Line::start().await;
    let base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(line.config().build().unwrap())),
    )
    .await;
    let token = line.token();
    line.emulator.revoke(&token);

    let requests = (0..50).map(|_| {
        let (base, token) = (base.clone(), token.clone());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
    });
    let statuses = futures_join_all(requests).await;

    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(
        line.calls().1,
        0,
        "a refused token never reaches the profile call"
    );
}

/// One request straight into the router, bypassing the client side of HTTP so a thousand can be
/// in flight at once without a thousand sockets; LINE is still the emulator over HTTP.
async fn call(app: Router, token: String) -> StatusCode {
    let request = Request::get("/api/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app.oneshot(request).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_cold_requests_make_exactly_one_verify_and_one_profile_call() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let app = routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()));
    let token = line.token();
    // Keep the verification in flight while all thousand arrive.
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(300)));

    let requests = (0..1000).map(|_| tokio::spawn(call(app.clone(), token.clone())));
    let statuses = futures_join_all(requests).await;

    assert!(statuses.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(line.calls(), (1, 1));
    assert_eq!(calls.get(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_others_complete_when_the_request_that_started_verification_hangs_up() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let app = routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()));
    let token = line.token();
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(400)));

    let leader = tokio::spawn(call(app.clone(), token.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let followers: Vec<_> = (0..20)
        .map(|_| tokio::spawn(call(app.clone(), token.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());

    let statuses = tokio::time::timeout(
        Duration::from_secs(5),
        futures_join_all(followers.into_iter()),
    )
    .await
    .expect("no waiter hangs");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(
        line.calls(),
        (1, 1),
        "the cancelled leader's verification served everyone"
    );
    assert_eq!(calls.get(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_a_hanging_line_all_get_503_in_time() {
    let line = Line::start().await;
    let config = line
        .config()
        .upstream_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let app = routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config));
    let token = line.token();
    line.emulator.inject(Endpoint::Verify, Fault::Hang);

    let requests = (0..100).map(|_| tokio::spawn(call(app.clone(), token.clone())));
    let statuses = tokio::time::timeout(Duration::from_secs(5), futures_join_all(requests))
        .await
        .expect("no waiter hangs");

    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert_eq!(
        line.calls().0,
        1,
        "one verification, abandoned after one hanging try"
    );
}

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}
