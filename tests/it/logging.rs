//! A raw token never appears in logs, at any level, from this crate or its HTTP stack.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use line_auth::emulator::IssueToken;
use line_auth::{LineAuthConfig, LineAuthLayer};
use tracing_subscriber::fmt::MakeWriter;

use crate::redis_server::RedisServer;
use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every path a token can take, with everything logged at TRACE (including `log` records from
/// reqwest and hyper), on one thread so the capture sees the server, the layer and the client.
#[tokio::test(flavor = "current_thread")]
async fn no_token_fragment_in_trace_logs_on_any_path() {
    let _ = tracing_log::LogTracer::init();
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(captured.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let line = Line::start().await;
    // The shared cache too: its keys, values and failures must not leak the token either.
    let mut redis = RedisServer::start();
    let layer = LineAuthLayer::new(line.config().redis_url(redis.url()).build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    let valid = line.token();
    let revoked = line.token();
    line.emulator.revoke(&revoked);
    let foreign = line.issue(IssueToken::new(OTHER_CHANNEL));
    let opaque =
        line.issue(IssueToken::new(CHANNEL).token_value("bNl4YEFPI/hjFWhTqexp4MuEw5YPs+secret=="));
    let unknown =
        "eyJhbGciOiJIUzI1NiJ9.dW5rbm93bi10b2tlbi1wYXlsb2Fk.dW5rbm93bi1zaWduYXR1cmU".to_owned();

    for token in [&valid, &valid, &revoked, &foreign, &opaque, &unknown] {
        get_bearer(&base, "/api/me", token).await;
    }
    auth.logout(&revoked).await.ok();
    auth.forget(&valid);
    redis.kill();
    let redis_down = line.token();
    assert_eq!(
        get_bearer(&base, "/api/me", &redis_down).await.status,
        StatusCode::OK
    );
    auth.forget(&redis_down);
    let malformed = format!("Bearer {valid}&x");
    get_with(&base, "/api/me", &[malformed.as_bytes()]).await;
    line.emulator.stop().await;
    let during_outage = line.token();
    let reply = get_bearer(&base, "/api/me", &during_outage).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);

    // A LINE that never answers, to log the timeout path too.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_base = format!("http://{}", silent.local_addr().unwrap());
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(silent_base)
        .upstream_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let timeout_base =
        serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;
    assert_eq!(
        get_bearer(&timeout_base, "/api/me", &valid).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    drop(silent);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("LINE answered"),
        "the capture saw the layer's own events:\n{logs}"
    );
    assert!(
        logs.contains("LINE could not verify the token"),
        "the outage was logged:\n{logs}"
    );
    assert!(
        logs.contains("shared cache: could not"),
        "the Redis failure was logged:\n{logs}"
    );
    assert!(
        logs.contains("hyper_util") || logs.contains("reqwest"),
        "the HTTP stack's records were captured:\n{logs}"
    );
    for token in [
        &valid,
        &revoked,
        &foreign,
        &opaque,
        &unknown,
        &during_outage,
        &redis_down,
    ] {
        // Any 12-byte window of the token is a leak, whole or in part, raw or URL-encoded.
        let encoded: String = url_encode(token);
        for source in [token.as_str(), encoded.as_str()] {
            for window in source.as_bytes().windows(12) {
                let fragment = std::str::from_utf8(window).unwrap();
                if "eyJhbGciOiJIUzI1NiJ9.".contains(fragment) {
                    continue; // the fixed JWS header shared by every token is no secret
                }
                assert!(
                    !logs.contains(fragment),
                    "token fragment {fragment:?} in logs:\n{logs}"
                );
            }
        }
    }
}

fn url_encode(token: &str) -> String {
    token
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
