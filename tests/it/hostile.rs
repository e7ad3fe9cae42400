//! Hostile requests: raw bytes no HTTP client library would send. Each is refused without
//! calling LINE, and none reaches a handler.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use line_auth::LineAuthLayer;

use crate::support::*;

/// Sends `head` (request line and headers, without the final blank line) over raw TCP and
/// returns the status code of the answer.
async fn raw_status(base: &str, head: &[u8]) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream.write_all(b"\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await.unwrap() {
            0 => break,
            read => answer.extend_from_slice(&buffer[..read]),
        }
    }
    let status_line = String::from_utf8_lossy(&answer);
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"))
}

fn request_with(authorization: &[&[u8]]) -> Vec<u8> {
    let mut head = b"GET /api/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n".to_vec();
    for value in authorization {
        head.extend_from_slice(b"Authorization: ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head
}

#[tokio::test]
async fn raw_hostile_headers_are_refused_before_line_and_the_handler() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let absurd = format!("Bearer {}", "A".repeat(200_000));
    let many: Vec<&[u8]> = vec![b"Bearer abc"; 100];
    let cases: Vec<(&str, Vec<&[u8]>)> = vec![
        ("control character", vec![b"Bearer abc\x01def"]),
        ("DEL", vec![b"Bearer abc\x7fdef"]),
        ("non-UTF-8", vec![b"Bearer \xc3\x28abc"]),
        ("latin-1", vec![b"Bearer caf\xe9"]),
        ("NUL", vec![b"Bearer abc\x00def"]),
        ("absurd length", vec![absurd.as_bytes()]),
        ("a hundred Authorization headers", many),
        ("smuggled query", vec![b"Bearer abc&access_token=other"]),
        ("smuggled fragment", vec![b"Bearer abc#frag"]),
        ("percent-encoded", vec![b"Bearer abc%20def"]),
        ("tab inside", vec![b"Bearer abc\tdef"]),
    ];

    for (case, headers) in cases {
        let status = raw_status(&base, &request_with(&headers)).await;
        // hyper answers some itself (400, 431) before the layer sees them; either way, refused.
        assert!(matches!(status, 400 | 401 | 431), "{case}: {status}");
    }
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}
