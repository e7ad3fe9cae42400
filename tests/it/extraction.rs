//! RFC 6750 §2.1 extraction: what is refused before LINE is ever asked.

use axum::http::StatusCode;
use line_auth::{LineAuthLayer, MAX_TOKEN_LEN};

use crate::support::*;

async fn protected_app() -> (Line, String, HandlerCalls) {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    (line, base, calls)
}

#[tokio::test]
async fn no_authorization_header_gets_401_with_a_bare_challenge() {
    let (line, base, calls) = protected_app().await;

    let reply = get_anonymous(&base, "/api/me").await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some(r#"Bearer realm="line""#));
    assert_eq!(
        reply.json()["error_description"],
        "a LINE access token is required"
    );
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}

#[tokio::test]
async fn another_scheme_gets_401_without_an_error_code() {
    let (line, base, calls) = protected_app().await;

    let reply = get_with(&base, "/api/me", &[b"Basic dXNlcjpwYXNz"]).await;

    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some(r#"Bearer realm="line""#));
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}

#[tokio::test]
async fn bearer_scheme_is_matched_case_insensitively() {
    let (line, base, _) = protected_app().await;
    let token = line.token();

    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let reply = get_with(&base, "/api/me", &[format!("{scheme} {token}").as_bytes()]).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn a_token_the_cache_knows_does_not_let_its_malformed_variants_skip_the_check() {
    // A hit skips the charset check; a token one character off a cached one is a miss, checked.
    let (line, base, calls) = protected_app().await;
    let token = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    let verified = line.calls();

    for malformed in [
        format!("{token}&x"),
        format!("{token} x"),
        format!("{token}=x"),
        format!("{token}\u{e9}"),
    ] {
        let header = format!("Bearer {malformed}");
        let reply = get_with(&base, "/api/me", &[header.as_bytes()]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{malformed:?}");
        assert_eq!(reply.json()["error"], "invalid_request", "{malformed:?}");
    }
    assert_eq!(
        line.calls(),
        verified,
        "no LINE call for the malformed ones"
    );
    assert_eq!(
        get_bearer(&base, "/api/me", &token).await.status,
        StatusCode::OK
    );
    assert_eq!(line.calls(), verified, "still a hit");
    assert_eq!(calls.get(), 2, "the handler ran for the valid token only");
}

#[tokio::test]
async fn malformed_credentials_get_400_invalid_request_without_calling_line() {
    let (line, base, calls) = protected_app().await;
    let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
    let cases: Vec<(&str, Vec<&[u8]>)> = vec![
        ("empty", vec![b"Bearer"]),
        // No scheme at all is not another scheme (RFC 7235 §2.1: credentials start with one).
        ("an empty header", vec![b""]),
        ("only spaces", vec![b"Bearer    "]),
        ("space inside", vec![b"Bearer abc def"]),
        ("query smuggling", vec![b"Bearer abc&client_id=1"]),
        ("fragment", vec![b"Bearer abc#x"]),
        ("percent", vec![b"Bearer abc%26x"]),
        ("padding inside", vec![b"Bearer ab=c"]),
        ("non-UTF-8", vec![b"Bearer abc\xff\xfe"]),
        ("too long", vec![too_long.as_bytes()]),
        ("two headers", vec![b"Bearer abc", b"Bearer def"]),
        (
            "two headers, one not bearer",
            vec![b"Basic abc", b"Bearer def"],
        ),
    ];

    for (case, headers) in cases {
        let reply = get_with(&base, "/api/me", &headers).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}");
        let challenge = reply.challenge().unwrap_or_default();
        assert!(
            challenge.starts_with(
                r#"Bearer realm="line", error="invalid_request", error_description=""#
            ),
            "{case}: {challenge}"
        );
        assert_eq!(reply.json()["error"], "invalid_request", "{case}");
    }
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}
