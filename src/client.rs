//! The two LINE Login calls the layer makes, their wire types, and how LINE's answers are judged.
//!
//! One `reqwest::Client` is shared by every request. Errors never carry a URL: the verify URL holds
//! the token in its query (fact sheet §3.1).

use std::time::Duration;

use http::StatusCode;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Url;
use serde::Deserialize;

use crate::clock::{self, Instant};
use crate::config::LineAuthConfig;
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
use crate::token::AccessToken;

/// Most bytes read from any LINE response. Real answers are well under 1 KiB; anything larger is
/// not LINE speaking, and reading it would let a broken upstream exhaust memory.
pub(crate) const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// `GET /oauth2/v2.1/verify` 200 body (fact sheet §3.1). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenVerification {
    /// Space-separated; "not always included" for channel tokens, so optional.
    #[serde(default)]
    pub(crate) scope: Option<String>,
    pub(crate) client_id: String,
    /// Seconds left at the time of the call.
    pub(crate) expires_in: i64,
}

impl TokenVerification {
    pub(crate) fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
    }
}

/// `GET /v2/profile` 200 body (fact sheet §3.2). `pictureUrl` and `statusMessage` may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Profile {
    pub(crate) user_id: String,
    pub(crate) display_name: String,
    #[serde(default)]
    pub(crate) picture_url: Option<String>,
    #[serde(default)]
    pub(crate) status_message: Option<String>,
}

/// LINE's OAuth-style error body (shape A, fact sheet §1).
#[derive(Debug, Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// Calls LINE on the layer's behalf.
#[derive(Debug, Clone)]
pub(crate) struct LineClient {
    http: reqwest::Client,
    verify_url: Url,
    profile_url: Url,
    revoke_url: Url,
    retry: RetryPolicy,
}

/// How transient failures are retried inside one overall deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Most tries of one call, the first included.
    pub(crate) max_attempts: u32,
    /// The longest one try may take (never past the overall deadline).
    pub(crate) attempt_timeout: Duration,
    /// The first backoff; each later one doubles, and each is jittered.
    pub(crate) base_backoff: Duration,
}

/// One answer from LINE, read in full (within [`MAX_RESPONSE_BYTES`]).
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
}

/// Which call, for URLs and logs.
#[derive(Debug, Clone, Copy)]
enum Call<'a> {
    Verify,
    Profile,
    /// `POST /oauth2/v2.1/revoke`: its form's `client_id` and optional `client_secret`.
    Revoke {
        channel_id: &'a str,
        secret: Option<&'a str>,
    },
}

impl Call<'_> {
    fn name(self) -> &'static str {
        match self {
            Call::Verify => "verify",
            Call::Profile => "profile",
            Call::Revoke { .. } => "revoke",
        }
    }
}

impl LineClient {
    pub(crate) fn new(config: &LineAuthConfig) -> Self {
        // The base is validated to be a directory URL, so joining cannot fail.
        let join = |path: &str| {
            config
                .api_base
                .join(path)
                .unwrap_or_else(|_| config.api_base.clone())
        };
        Self {
            http: config.http_client.clone(),
            verify_url: join("oauth2/v2.1/verify"),
            profile_url: join("v2/profile"),
            revoke_url: join("oauth2/v2.1/revoke"),
            retry: config.retry,
        }
    }

    /// `GET /oauth2/v2.1/verify?access_token=…`; see [`judge_verify`].
    pub(crate) async fn verify(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<TokenVerification, LineAuthError> {
        let answer = self.fetch(Call::Verify, token, deadline).await?;
        judge_verify(answer.status, &answer.body)
    }

    /// `GET /v2/profile` with the bearer token; see [`judge_profile`].
    pub(crate) async fn profile(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Profile, LineAuthError> {
        let answer = self.fetch(Call::Profile, token, deadline).await?;
        judge_profile(answer.status, &answer.body)
    }

    /// `POST /oauth2/v2.1/revoke` (fact sheet §3.4): 200 with an empty body. A 400 means the
    /// token is already invalid, which is what revoking wants (LINE's iOS SDK reads it so too),
    /// unless it is `invalid_client`: LINE refused the caller, and the token is still live.
    pub(crate) async fn revoke(
        &self,
        token: &AccessToken,
        channel_id: &str,
        secret: Option<&str>,
        deadline: Instant,
    ) -> Result<(), LineAuthError> {
        let call = Call::Revoke { channel_id, secret };
        let answer = self.fetch(call, token, deadline).await?;
        match answer.status {
            StatusCode::OK => Ok(()),
            StatusCode::BAD_REQUEST if !refuses_the_client(&answer.body) => Ok(()),
            status => Err(upstream_status(status, None)),
        }
    }

    /// One call with retries: transient failures (connection trouble, a try timing out, 5xx, 429)
    /// are tried again after a jittered backoff, or LINE's `Retry-After`, while the deadline
    /// allows. Every call is idempotent (two reads, and revoking twice revokes once), so a retry
    /// cannot do harm.
    async fn fetch(
        &self,
        call: Call<'_>,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Answer, LineAuthError> {
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(clock::now());
            if remaining.is_zero() {
                return Err(LineAuthError::Unavailable(UpstreamError::Timeout));
            }
            // A revoke cut off mid-call may never reach LINE: it gets the whole budget at once.
            let attempt_timeout = match call {
                Call::Revoke { .. } => remaining,
                Call::Verify | Call::Profile => remaining.min(self.retry.attempt_timeout),
            };
            let try_once = self.fetch_once(call, token);
            let failure = match tokio::time::timeout(attempt_timeout, try_once).await {
                Ok(Ok(answer)) if is_transient(answer.status) => UpstreamError::Status {
                    status: answer.status,
                    retry_after: answer.retry_after,
                },
                Ok(Ok(answer)) => {
                    return Ok(Answer {
                        status: answer.status,
                        body: answer.body,
                    })
                }
                Ok(Err(Attempt::Final(error))) => return Err(LineAuthError::Unavailable(error)),
                Ok(Err(Attempt::Transient(error))) => error,
                Err(_elapsed) => UpstreamError::Timeout,
            };
            let wait = match &failure {
                UpstreamError::Status {
                    retry_after: Some(wait),
                    ..
                } => *wait,
                _ => jittered_backoff(self.retry.base_backoff, attempt),
            };
            let gives_up = attempt >= self.retry.max_attempts || clock::now() + wait >= deadline;
            tracing::debug!(call = call.name(), attempt, error = %failure, gives_up, "LINE call failed");
            if gives_up {
                return Err(LineAuthError::Unavailable(failure));
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn fetch_once(&self, call: Call<'_>, token: &AccessToken) -> Result<RawAnswer, Attempt> {
        let request = match call {
            Call::Verify => {
                let mut url = self.verify_url.clone();
                // Form-encodes the token, so `+`, `/` and `=` reach LINE intact.
                url.query_pairs_mut()
                    .append_pair("access_token", token.expose());
                self.http.get(url)
            }
            Call::Profile => self
                .http
                .get(self.profile_url.clone())
                .bearer_auth(token.expose()),
            Call::Revoke { channel_id, secret } => {
                let mut form = vec![("access_token", token.expose()), ("client_id", channel_id)];
                form.extend(secret.map(|secret| ("client_secret", secret)));
                post_form(&self.http, self.revoke_url.clone(), &form)
            }
        };
        let response = request.send().await.map_err(Attempt::from_reqwest)?;
        let status = response.status();
        log_request_id(call.name(), status, response.headers());
        let retry_after = retry_after(response.headers());
        let body = read_limited(response).await?;
        Ok(RawAnswer {
            status,
            retry_after,
            body,
        })
    }
}

/// LINE's verdict from a final verify answer (fact sheet §3.1): 200 is the grant, 400 the
/// token's refusal; anything else, or a body out of spec, is LINE being unavailable.
pub(crate) fn judge_verify(
    status: StatusCode,
    body: &[u8],
) -> Result<TokenVerification, LineAuthError> {
    match status {
        StatusCode::OK => parse(body),
        StatusCode::BAD_REQUEST => {
            let error: OAuthError = parse(body)?;
            tracing::debug!(error = %error.error, "LINE refused the access token");
            let reason = error.error_description.as_deref().map_or(
                InvalidReason::Rejected,
                InvalidReason::from_line_description,
            );
            Err(LineAuthError::InvalidToken(reason))
        }
        status => Err(upstream_status(status, None)),
    }
}

/// LINE's verdict from a final profile answer (fact sheet §3.2): 401 means the token went bad
/// between the two calls; 403 that it may not read the profile (no `profile` scope).
pub(crate) fn judge_profile(status: StatusCode, body: &[u8]) -> Result<Profile, LineAuthError> {
    match status {
        StatusCode::OK => parse(body),
        StatusCode::UNAUTHORIZED => Err(LineAuthError::InvalidToken(InvalidReason::Rejected)),
        StatusCode::FORBIDDEN => Err(LineAuthError::InsufficientScope {
            required: "profile".into(),
        }),
        status => Err(upstream_status(status, None)),
    }
}

/// An answer before the retry policy has judged it.
struct RawAnswer {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// How one try failed.
enum Attempt {
    /// Worth another try: the connection failed or broke off.
    Transient(UpstreamError),
    /// Would fail the same way again: the answer itself is out of spec.
    Final(UpstreamError),
}

impl Attempt {
    fn from_reqwest(error: reqwest::Error) -> Self {
        if error.is_builder() {
            Attempt::Final(UpstreamError::transport(error))
        } else {
            Attempt::Transient(UpstreamError::transport(error))
        }
    }
}

/// Whether a 400 refuses the caller (`invalid_client`: the channel secret missing or wrong,
/// fact sheet §3.4) rather than the token.
fn refuses_the_client(body: &[u8]) -> bool {
    serde_json::from_slice::<OAuthError>(body).is_ok_and(|error| error.error == "invalid_client")
}

/// 5xx and 429 are LINE's own "try again later" (fact sheet §1).
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Full jitter over an exponential step: a uniformly drawn wait in `[0, base × 2^(attempt-1)]`,
/// so many layers retrying at once spread out instead of hitting LINE in lockstep.
fn jittered_backoff(base: Duration, attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = base.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    // A fresh RandomState is randomly keyed: enough entropy for jitter, no RNG dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    ceiling.mul_f64(fraction)
}

fn upstream_status(status: StatusCode, retry_after: Option<Duration>) -> LineAuthError {
    LineAuthError::Unavailable(UpstreamError::Status {
        status,
        retry_after,
    })
}

/// LINE recommends logging `x-line-request-id` with every call (fact sheet §4.5).
fn log_request_id(endpoint: &'static str, status: StatusCode, headers: &HeaderMap) {
    let request_id = headers
        .get("x-line-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::debug!(
        endpoint,
        status = status.as_u16(),
        line_request_id = request_id,
        "LINE answered"
    );
}

/// A POST with an `application/x-www-form-urlencoded` body, as LINE's token, revoke and ID-token
/// verify endpoints take (fact sheet §1); encoded here rather than by reqwest's `form` feature,
/// which would add a dependency for these few pairs.
pub(crate) fn post_form(
    http: &reqwest::Client,
    url: Url,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    http.post(url)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
}

/// `Retry-After` in seconds (LINE's 429, §1); the HTTP-date form is not worth honouring here.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// Reads the body, refusing more than [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Attempt> {
    let too_large = || Attempt::Final(UpstreamError::InvalidBody("the body is too large"));
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Attempt::from_reqwest)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, LineAuthError> {
    serde_json::from_slice(body).map_err(|_| {
        LineAuthError::Unavailable(UpstreamError::InvalidBody("unexpected JSON shape"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn verification_ignores_unknown_fields_and_tolerates_missing_scope() {
        let parsed: TokenVerification =
            serde_json::from_str(r#"{"client_id":"1","expires_in":5,"new_field":[1]}"#).unwrap();
        assert_eq!(parsed.scopes().count(), 0);
        let parsed: TokenVerification =
            serde_json::from_str(r#"{"scope":"profile  openid","client_id":"1","expires_in":5}"#)
                .unwrap();
        assert_eq!(parsed.scopes().collect::<Vec<_>>(), ["profile", "openid"]);
    }

    #[test]
    fn client_id_must_be_a_string() {
        // LINE sends the channel ID as a JSON string (fact sheet §1); a number is out of spec.
        assert!(parse::<TokenVerification>(br#"{"client_id":1,"expires_in":5}"#).is_err());
    }

    #[test]
    fn profile_optional_fields_may_be_absent() {
        let profile: Profile =
            serde_json::from_str(r#"{"userId":"Uabc","displayName":"Brown","language":"en"}"#)
                .unwrap();
        assert!(profile.picture_url.is_none() && profile.status_message.is_none());
    }

    /// A stand-in for LINE on loopback that records each request's path, query and
    /// `Authorization`, and answers every request with `body`.
    async fn recording_line(body: &'static str) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let record = record.clone();
            async move {
                let authorization = request
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .map(|value| value.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                record
                    .lock()
                    .unwrap()
                    .push((request.uri().to_string(), authorization));
                body
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    fn deadline() -> Instant {
        clock::now() + Duration::from_secs(5)
    }

    /// A client whose API base is `{line}/prefix`, so the tests see paths are joined under it.
    fn client_under_prefix(line: &str) -> LineClient {
        let config = LineAuthConfig::builder()
            .channel_id("1")
            .api_base(format!("{line}/prefix"))
            .build()
            .unwrap();
        LineClient::new(&config)
    }

    #[tokio::test]
    async fn verify_sends_the_token_form_encoded_under_the_api_base_path() {
        let (line, seen) =
            recording_line(r#"{"scope":"profile","client_id":"1","expires_in":5}"#).await;
        let client = client_under_prefix(&line);
        // Not a b64token, but the client must not rely on that: `+` would read as a space,
        // `&` would start a second parameter and `#` a fragment LINE never sees.
        let token = AccessToken::new("a+b/c==&x=1#f");

        let verification = client.verify(&token, deadline()).await.unwrap();

        assert_eq!(verification.client_id, "1");
        assert_eq!(
            *seen.lock().unwrap(),
            [(
                "/prefix/oauth2/v2.1/verify?access_token=a%2Bb%2Fc%3D%3D%26x%3D1%23f".to_owned(),
                String::new()
            )]
        );
    }

    #[tokio::test]
    async fn profile_sends_the_token_as_bearer_under_the_api_base_path() {
        let (line, seen) = recording_line(r#"{"userId":"U1","displayName":"Brown"}"#).await;
        let client = client_under_prefix(&line);

        let profile = client
            .profile(&AccessToken::new("a+b/c=="), deadline())
            .await
            .unwrap();

        assert_eq!(profile.user_id, "U1");
        assert_eq!(
            *seen.lock().unwrap(),
            [("/prefix/v2/profile".to_owned(), "Bearer a+b/c==".to_owned())]
        );
    }

    /// How many times the client asks the emulator's verify endpoint when it always answers
    /// `status`, with three tries allowed.
    #[cfg(feature = "emulator")]
    async fn verify_calls_when_line_answers(status: StatusCode) -> u64 {
        use crate::emulator::{Endpoint, Fault, LineEmulator};
        let line = LineEmulator::start().await.unwrap();
        line.inject(Endpoint::Verify, Fault::Status(status));
        let config = LineAuthConfig::builder()
            .channel_id("1")
            .api_base(line.base_url())
            .upstream_max_attempts(3)
            .build()
            .unwrap();
        let client = LineClient::new(&config);
        let answer = client.verify(&AccessToken::new("token"), deadline()).await;
        assert!(
            matches!(answer, Err(LineAuthError::Unavailable(_))),
            "{status}: {answer:?}"
        );
        line.calls().verify
    }

    #[cfg(feature = "emulator")]
    #[tokio::test]
    async fn line_busy_or_failing_is_asked_again_up_to_the_attempt_limit() {
        for status in [429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(verify_calls_when_line_answers(status).await, 3, "{status}");
        }
    }

    #[cfg(feature = "emulator")]
    #[tokio::test]
    async fn other_statuses_are_final_and_asked_once() {
        // 400 here carries `{"message"}`, not an OAuth error: out of spec, so unavailable too.
        for status in [201, 301, 400, 401, 403, 404, 418] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(verify_calls_when_line_answers(status).await, 1, "{status}");
        }
    }

    #[test]
    fn backoff_doubles_per_attempt_up_to_1024_times_the_base_and_is_jittered() {
        let base = Duration::from_millis(50);
        for (attempt, ceiling_ms) in [(1, 50), (2, 100), (3, 200), (11, 51_200), (40, 51_200)] {
            let ceiling = Duration::from_millis(ceiling_ms);
            let waits: Vec<Duration> = (0..200).map(|_| jittered_backoff(base, attempt)).collect();
            let (shortest, longest) = (*waits.iter().min().unwrap(), *waits.iter().max().unwrap());
            assert!(longest <= ceiling, "attempt {attempt}: {longest:?}");
            // Full jitter: 200 uniform draws land in both the top and the bottom quarter (a miss
            // has odds of 0.75^200).
            assert!(longest > ceiling * 3 / 4, "attempt {attempt}: {longest:?}");
            assert!(shortest < ceiling / 4, "attempt {attempt}: {shortest:?}");
        }
    }

    mod properties {
        use super::*;
        use crate::fuzzing::{
            profile_verdict, verify_verdict, AnswerCase, BodyCase, Description, ScopeField,
            Verdict, LINE_DESCRIPTIONS,
        };
        use proptest::prelude::*;

        /// Weighted towards the statuses LINE's two endpoints document, so each verdict branch
        /// comes up often; "other" is any status with no meaning here.
        fn status() -> impl Strategy<Value = StatusCode> {
            let other = (100u16..500).prop_filter("no documented meaning", |code| {
                ![200, 400, 401, 403, 429].contains(code)
            });
            prop_oneof![
                4 => Just(200u16),
                4 => Just(400),
                2 => Just(401),
                2 => Just(403),
                1 => Just(429),
                2 => 500u16..600,
                2 => other,
            ]
            .prop_map(|code| StatusCode::from_u16(code).unwrap())
        }

        fn text() -> impl Strategy<Value = String> {
            any::<String>()
        }

        fn unknown_fields() -> impl Strategy<Value = Vec<(String, String)>> {
            proptest::collection::vec((text(), text()), 0..3)
        }

        fn body() -> impl Strategy<Value = BodyCase> {
            let scope = prop_oneof![
                Just(ScopeField::Absent),
                Just(ScopeField::Null),
                proptest::collection::vec("[a-z0-9_.:]{1,16}", 0..4).prop_map(ScopeField::Scopes),
            ];
            let description = prop_oneof![
                1 => Just(Description::Absent),
                1 => Just(Description::Null),
                2 => (0..LINE_DESCRIPTIONS.len()).prop_map(Description::Line),
                1 => "[0-9 .,:;!?()-]{0,32}".prop_map(Description::Unrecognised),
            ];
            prop_oneof![
                4 => (scope, text(), any::<i64>(), unknown_fields()).prop_map(
                    |(scope, client_id, expires_in, unknown)| BodyCase::Verification {
                        scope,
                        client_id,
                        expires_in,
                        unknown,
                    }
                ),
                3 => (
                    text(),
                    text(),
                    proptest::option::of(text()),
                    proptest::option::of(text()),
                    unknown_fields(),
                )
                    .prop_map(
                        |(user_id, display_name, picture_url, status_message, unknown)| {
                            BodyCase::Profile {
                                user_id,
                                display_name,
                                picture_url,
                                status_message,
                                unknown,
                            }
                        }
                    ),
                3 => (text(), description)
                    .prop_map(|(error, description)| BodyCase::OAuthError { error, description }),
                1 => text().prop_map(BodyCase::Message),
                1 => (any::<u64>(), any::<i64>()).prop_map(|(client_id, expires_in)| {
                    BodyCase::NumericClientId {
                        client_id,
                        expires_in,
                    }
                }),
                1 => text().prop_map(BodyCase::Html),
                1 => (text(), any::<usize>())
                    .prop_map(|(client_id, keep)| BodyCase::Truncated { client_id, keep }),
                1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(BodyCase::NotUtf8),
            ]
        }

        fn answer() -> impl Strategy<Value = AnswerCase> {
            (status(), body()).prop_map(|(status, body)| AnswerCase { status, body })
        }

        /// The kind of a verdict, without its data.
        fn kind(verdict: &Verdict) -> String {
            match verdict {
                Verdict::Verified { .. } => "Verified".to_owned(),
                Verdict::Profile { .. } => "Profile".to_owned(),
                Verdict::UnavailableStatus(_) => "UnavailableStatus".to_owned(),
                other => format!("{other:?}"),
            }
        }

        #[test]
        fn answer_cases_reach_every_verdict() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let (mut verify, mut profile) = (
                std::collections::BTreeSet::new(),
                std::collections::BTreeSet::new(),
            );
            for _ in 0..512 {
                let case = answer().new_tree(&mut runner).unwrap().current();
                verify.insert(kind(&case.expected_verify()));
                profile.insert(kind(&case.expected_profile()));
            }
            assert_eq!(
                verify.into_iter().collect::<Vec<_>>(),
                [
                    "Invalid(Expired)",
                    "Invalid(NotJws)",
                    "Invalid(Rejected)",
                    "Invalid(Revoked)",
                    "UnavailableBody",
                    "UnavailableStatus",
                    "Verified",
                ]
            );
            assert_eq!(
                profile.into_iter().collect::<Vec<_>>(),
                [
                    "InsufficientScope(\"profile\")",
                    "Invalid(Rejected)",
                    "Profile",
                    "UnavailableBody",
                    "UnavailableStatus",
                ]
            );
        }

        proptest! {
            #[test]
            fn every_verify_answer_gets_the_verdict_its_status_and_body_call_for(case in answer()) {
                prop_assert_eq!(
                    verify_verdict(case.status, &case.body.bytes()),
                    case.expected_verify(),
                    "{:?}",
                    case
                );
            }

            #[test]
            fn every_profile_answer_gets_the_verdict_its_status_and_body_call_for(case in answer()) {
                prop_assert_eq!(
                    profile_verdict(case.status, &case.body.bytes()),
                    case.expected_profile(),
                    "{:?}",
                    case
                );
            }
        }
    }
}
