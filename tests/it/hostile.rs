//! Hostile requests: raw bytes no HTTP client library would send. Each is refused without
//! calling LINE, and none reaches a handler.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use line_auth::rejection::MalformedReason;
use line_auth::LineAuthLayer;

use crate::support::*;

/// An answer read off the wire: its status and its `WWW-Authenticate` challenge, if any.
struct RawAnswer {
    status: u16,
    challenge: Option<String>,
}

/// Sends `head` (request line and headers, without the final blank line) over raw TCP and
/// reads the answer's head.
async fn raw_answer(base: &str, head: &[u8]) -> RawAnswer {
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
    let answer = String::from_utf8_lossy(&answer);
    let mut lines = answer.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let challenge = lines.take_while(|line| !line.is_empty()).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("www-authenticate")
            .then(|| value.trim().to_owned())
    });
    RawAnswer { status, challenge }
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

/// Who refuses a hostile request, and how.
enum Refusal {
    /// The layer: 400 with an `invalid_request` challenge naming this reason.
    Layer(MalformedReason),
    /// hyper, before any service sees the request: this status, and no challenge.
    Hyper(u16),
}

#[tokio::test]
async fn raw_hostile_headers_are_refused_before_line_and_the_handler() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let base =
        serve(routes(&calls).layer(LineAuthLayer::new(line.config().build().unwrap()))).await;
    let absurd = format!("Bearer {}", "A".repeat(200_000));
    let several: Vec<&[u8]> = vec![b"Bearer abc"; 3];
    let hundred: Vec<&[u8]> = vec![b"Bearer abc"; 100];
    use MalformedReason::{InvalidCharacters, MultipleHeaders, TooLong};
    let cases: Vec<(&str, Vec<&[u8]>, Refusal)> = vec![
        // httparse refuses controls other than tab in any header value.
        (
            "control character",
            vec![b"Bearer abc\x01def"],
            Refusal::Hyper(400),
        ),
        ("DEL", vec![b"Bearer abc\x7fdef"], Refusal::Hyper(400)),
        ("NUL", vec![b"Bearer abc\x00def"], Refusal::Hyper(400)),
        // 102 headers: over hyper's limit of 100.
        (
            "a hundred Authorization headers",
            hundred,
            Refusal::Hyper(431),
        ),
        (
            "non-UTF-8",
            vec![b"Bearer \xc3\x28abc"],
            Refusal::Layer(InvalidCharacters),
        ),
        (
            "latin-1",
            vec![b"Bearer caf\xe9"],
            Refusal::Layer(InvalidCharacters),
        ),
        (
            "absurd length",
            vec![absurd.as_bytes()],
            Refusal::Layer(TooLong),
        ),
        (
            "several Authorization headers",
            several,
            Refusal::Layer(MultipleHeaders),
        ),
        (
            "smuggled query",
            vec![b"Bearer abc&access_token=other"],
            Refusal::Layer(InvalidCharacters),
        ),
        (
            "smuggled fragment",
            vec![b"Bearer abc#frag"],
            Refusal::Layer(InvalidCharacters),
        ),
        (
            "percent-encoded",
            vec![b"Bearer abc%20def"],
            Refusal::Layer(InvalidCharacters),
        ),
        (
            "tab inside",
            vec![b"Bearer abc\tdef"],
            Refusal::Layer(InvalidCharacters),
        ),
    ];

    for (case, headers, refusal) in cases {
        let answer = raw_answer(&base, &request_with(&headers)).await;
        match refusal {
            Refusal::Layer(reason) => {
                assert_eq!(answer.status, 400, "{case}");
                assert_eq!(
                    answer.challenge.as_deref(),
                    Some(
                        format!(
                            r#"Bearer realm="line", error="invalid_request", error_description="{reason}""#
                        )
                        .as_str()
                    ),
                    "{case}"
                );
            }
            Refusal::Hyper(status) => {
                assert_eq!(answer.status, status, "{case}");
                assert_eq!(
                    answer.challenge, None,
                    "{case}: answered by hyper, not the layer"
                );
            }
        }
    }
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}
