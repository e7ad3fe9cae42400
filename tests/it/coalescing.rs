//! Concurrent misses for one token share one verification.

use axum::http::StatusCode;
use line_auth::LineAuthLayer;

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

async fn futures_join_all<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await.unwrap());
    }
    results
}
