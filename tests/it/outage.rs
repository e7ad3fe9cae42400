//! LINE unreachable or out of spec: 503 with Retry-After, fail closed, nothing remembered as bad.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::{LineAuthConfig, LineAuthLayer};
use tokio::net::TcpListener;

use crate::support::*;

fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn line_stopped_gives_503_and_service_recovers_when_it_returns() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let cached = line.token();
    let fresh = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &cached).await.status,
        StatusCode::OK
    );

    line.emulator.stop().await;
    let reply = get_bearer(&base, "/api/me", &fresh).await;
    assert_unavailable(&reply);
    assert!(
        reply.challenge().is_none(),
        "an outage is not a verdict on the token"
    );
    // A token verified before the outage is still served from the cache.
    assert_eq!(
        get_bearer(&base, "/api/me", &cached).await.status,
        StatusCode::OK
    );

    line.emulator.restart().await.unwrap();
    assert_eq!(
        get_bearer(&base, "/api/me", &fresh).await.status,
        StatusCode::OK,
        "not cached as invalid"
    );
    assert_eq!(calls.get(), 3);
}

#[tokio::test]
async fn line_that_never_answers_gives_503_within_the_upstream_timeout() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(format!("http://{silent_addr}"))
        .upstream_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config))).await;

    let started = Instant::now();
    let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln").await;

    assert_unavailable(&reply);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(calls.get(), 0);
}

#[tokio::test]
async fn line_errors_and_nonsense_give_503_not_401() {
    let cases: [(&str, StatusCode, StaticHeaders, &str); 6] = [
        (
            "500",
            StatusCode::INTERNAL_SERVER_ERROR,
            &[],
            r#"{"message":"error"}"#,
        ),
        (
            "502",
            StatusCode::BAD_GATEWAY,
            &[],
            "<html>bad gateway</html>",
        ),
        (
            "429",
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "7")],
            r#"{"message":"Too many requests"}"#,
        ),
        ("200 not JSON", StatusCode::OK, &[], "<html>hello</html>"),
        (
            "200 wrong JSON",
            StatusCode::OK,
            &[],
            r#"{"client_id":1234567890,"expires_in":"soon"}"#,
        ),
        (
            "400 not OAuth JSON",
            StatusCode::BAD_REQUEST,
            &[],
            "bad request",
        ),
    ];
    for (case, status, headers, body) in cases {
        let (reply, calls) = request_through_broken_line(status, headers, body).await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
        assert_unavailable(&reply);
        if case == "429" {
            assert_eq!(
                reply.headers["retry-after"], "7",
                "LINE's Retry-After is passed on"
            );
        }
        assert_eq!(calls, 0, "{case}");
    }
}

/// One request with a token through the layer, in front of a LINE that always answers `status`,
/// `headers` and `body`: the reply, and how many times the handler ran.
async fn request_through_broken_line(
    status: StatusCode,
    headers: StaticHeaders,
    body: &'static str,
) -> (Reply, u64) {
    let line_base = broken_line(status, headers, body).await;
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line_base)
        .build()
        .unwrap();
    let calls = HandlerCalls::default();
    let base = serve(routes(&calls).layer(LineAuthLayer::new(config))).await;
    let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln").await;
    (reply, calls.get())
}

/// An `expires_in` too large to add to any clock (LINE's tokens live 30 days) is read as a long
/// life, not a panic: the request is let through, as for any valid token. One body answers both
/// the verify call and the profile call.
#[tokio::test]
async fn an_expires_in_past_any_clock_is_read_as_a_long_life_not_a_panic() {
    let (reply, handler_runs) = request_through_broken_line(
        StatusCode::OK,
        &[],
        r#"{"scope":"profile","client_id":"1234567890","expires_in":9223372036854775807,
            "userId":"U00000000000000000000000000000001","displayName":"Brown"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(handler_runs, 1);
}

/// RFC 9110 §10.2.3: `Retry-After` is seconds or an HTTP-date. LINE documents neither, so both are
/// read: a date is turned into the wait until it, in whole seconds rounded up, and passed on.
#[tokio::test]
async fn a_retry_after_given_as_an_http_date_is_passed_on_as_the_wait_until_it() {
    let now = std::time::SystemTime::now();
    let half_a_minute = Duration::from_secs(30);
    // Ahead: at most the 30 s asked for (a slow machine may take some of them to get there),
    // not the default 5 s. Past: no wait, told as the least whole second.
    for (when, expected) in [(now + half_a_minute, 25..=30), (now - half_a_minute, 1..=1)] {
        let date: &'static str = Box::leak(httpdate::fmt_http_date(when).into_boxed_str());
        let headers: StaticHeaders = Box::leak(Box::new([("retry-after", date)]));
        let (reply, calls) = request_through_broken_line(
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            r#"{"message":"Too many requests"}"#,
        )
        .await;

        assert_unavailable(&reply);
        let wait: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            expected.contains(&wait),
            "LINE asked for {date}; passed on: {wait} s"
        );
        assert_eq!(calls, 0);
    }
}

#[tokio::test]
async fn oversized_line_answer_gives_503() {
    let huge: &'static str =
        Box::leak(format!(r#"{{"pad":"{}"}}"#, "x".repeat(1 << 20)).into_boxed_str());
    let line_base = broken_line(StatusCode::OK, &[], huge).await;
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line_base)
        .build()
        .unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;

    let reply = get_bearer(&base, "/api/me", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln").await;

    assert_unavailable(&reply);
}
