//! Scriptable misbehaviour per endpoint: what LINE does on a bad day.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::body::Bytes;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt as _;
use serde_json::json;

/// How long [`Fault::Reset`] leaves the head and the part of the body it sent before it breaks
/// the connection off.
const RESET_AFTER: Duration = Duration::from_millis(20);

/// An endpoint of the emulator, for [`LineEmulator::inject`](super::LineEmulator::inject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `GET /oauth2/v2.1/verify`.
    Verify,
    /// `GET /v2/profile`.
    Profile,
    /// `POST /oauth2/v2.1/revoke`.
    Revoke,
    /// `GET /oauth2/v2.1/certs`: the key set ES256 ID tokens are checked against.
    Certs,
    /// `GET` or `POST /oauth2/v2.1/userinfo`: the user of a token granted `openid` without
    /// `profile`.
    UserInfo,
    /// `POST /oauth2/v2.1/token`: the code exchange and the refresh.
    Token,
    /// `POST /oauth2/v2.1/verify`: LINE's ID-token verifier (not the access-token verify,
    /// which is a `GET` of the same path).
    VerifyIdToken,
    /// `GET /friendship/v1/status`.
    Friendship,
}

/// A way for an endpoint to misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answers normally, after this delay.
    Latency(Duration),
    /// Answers this status with a `{"message": …}` body, as LINE's 500 does.
    Status(StatusCode),
    /// Answers 429 Too Many Requests, as LINE does while it restricts a client over its
    /// undisclosed [rate limits](https://developers.line.biz/en/reference/line-login/#rate-limits),
    /// with `Retry-After` in whole seconds, rounded up (a header LINE Login does not document;
    /// it lets a test check that a client honours it).
    RateLimited {
        /// The wait LINE asks for.
        retry_after: Duration,
    },
    /// Answers this status with this JSON text (`Content-Type: application/json`): one of
    /// LINE's answers in another wording than the emulator's (say verify's pre-2026
    /// `{"error":"invalid_request","error_description":"access token expired"}`), or in a shape
    /// a client should still read.
    Json {
        /// The status.
        status: StatusCode,
        /// The body, sent as given.
        body: String,
    },
    /// Answers 200 with an HTML page instead of JSON, as a proxy error page would.
    NotJson,
    /// Answers 200 with a JSON body of about this many bytes, far beyond any real answer.
    HugeBody(usize),
    /// Sends the status line and headers, then breaks the connection off mid-body.
    Reset,
    /// Accepts the request and never answers.
    Hang,
}

impl Fault {
    /// A response that breaks its connection off before a byte of it is sent: the request is
    /// not answered, as by a server gone down.
    pub(crate) fn cut() -> Response {
        let failing: [Result<Bytes, std::io::Error>; 1] = [Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the emulator stopped",
        ))];
        Body::from_stream(futures_util::stream::iter(failing)).into_response()
    }

    /// The response for this fault, or `None` when the endpoint should then answer normally.
    pub(crate) async fn respond(self) -> Option<Response> {
        match self {
            Fault::Latency(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            Fault::Status(status) => {
                Some((status, Json(json!({"message": "Internal server error"}))).into_response())
            }
            Fault::RateLimited { retry_after } => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"message": "The API rate limit has been exceeded. Try again later."})),
                )
                    .into_response();
                // Whole seconds, a fraction rounded up: a client that waits what it is told
                // is never early.
                let seconds = retry_after
                    .as_secs()
                    .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                Some(response)
            }
            Fault::Json { status, body } => {
                Some((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
            Fault::NotJson => Some(
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                )
                    .into_response(),
            ),
            Fault::HugeBody(bytes) => {
                let body = format!(r#"{{"padding":"{}"}}"#, "x".repeat(bytes));
                Some(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
            Fault::Reset => {
                let part = futures_util::stream::once(async {
                    Ok::<_, std::io::Error>(Bytes::from_static(br#"{"scope":"pro"#))
                });
                // The break waits a moment: hyper sends what it holds once the body has nothing
                // ready, and a failure ready at once would drop the head and the part with the
                // connection.
                let break_off = futures_util::stream::once(async {
                    tokio::time::sleep(RESET_AFTER).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "reset by the emulator",
                    ))
                });
                let body = Body::from_stream(part.chain(break_off));
                Some(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
            Fault::Hang => std::future::pending().await,
        }
    }
}

/// A fault and how many more calls it applies to (`None`: until cleared).
struct Planned {
    fault: Fault,
    remaining: Option<u32>,
}

#[derive(Default)]
pub(crate) struct FaultPlan {
    planned: Mutex<HashMap<Endpoint, Planned>>,
}

impl FaultPlan {
    pub(crate) fn set(&self, endpoint: Endpoint, fault: Fault, times: Option<u32>) {
        let mut planned = self.planned.lock().unwrap_or_else(PoisonError::into_inner);
        if times == Some(0) {
            planned.remove(&endpoint);
        } else {
            planned.insert(
                endpoint,
                Planned {
                    fault,
                    remaining: times,
                },
            );
        }
    }

    pub(crate) fn clear(&self) {
        self.planned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The fault for this call to `endpoint`, if one is planned; counts it down.
    pub(crate) fn next(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut planned = self.planned.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = planned.get_mut(&endpoint)?;
        let fault = entry.fault.clone();
        if let Some(remaining) = &mut entry.remaining {
            *remaining -= 1;
            if *remaining == 0 {
                planned.remove(&endpoint);
            }
        }
        Some(fault)
    }
}
