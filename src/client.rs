//! The LINE Login calls the layer makes (verify, profile, and revoke on logout), and how LINE's
//! answers are judged. The calls go through the one [`Transport`]; verification is retried there.

use http::StatusCode;

use crate::clock::Instant;
use crate::config::LineAuthConfig;
use crate::line_api::{
    is_try_later, wire, AccessTokenInfo, Answer, Call, Retries, RetryPolicy, Transport,
};
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
use crate::token::AccessToken;

use crate::line_api::wire::UserInfo;
pub(crate) use crate::line_api::Profile;

/// Calls LINE on the layer's behalf.
#[derive(Debug, Clone)]
pub(crate) struct LineClient {
    transport: Transport,
    retry: RetryPolicy,
}

impl LineClient {
    pub(crate) fn new(config: &LineAuthConfig) -> Self {
        Self {
            transport: Transport::new(config.http_client.clone(), config.api_base.clone()),
            retry: config.retry,
        }
    }

    /// The longest each try at LINE but the last may take (the upstream timeout by default).
    pub(crate) fn attempt_timeout(&self) -> std::time::Duration {
        self.retry.attempt_timeout
    }

    /// `GET /oauth2/v2.1/verify?access_token=…`, retried; see [`judge_verify`].
    pub(crate) async fn verify(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<AccessTokenInfo, LineAuthError> {
        let call = Call::Verify {
            access_token: token.expose(),
        };
        judge_verify(
            &self
                .call(call, Retries::Verification(self.retry), deadline)
                .await?,
        )
    }

    /// `GET /v2/profile` with the bearer token, retried; see [`judge_profile`].
    pub(crate) async fn profile(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Profile, LineAuthError> {
        let call = Call::Profile {
            access_token: token.expose(),
        };
        judge_profile(
            &self
                .call(call, Retries::Verification(self.retry), deadline)
                .await?,
        )
    }

    /// `GET /oauth2/v2.1/userinfo` with the bearer token, retried: the user of a token without
    /// the `profile` scope (a LINE MINI App's `openid`-only token, which `/v2/profile` refuses);
    /// see [`judge_userinfo`].
    pub(crate) async fn userinfo(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<UserInfo, LineAuthError> {
        let call = Call::UserInfo {
            access_token: token.expose(),
        };
        judge_userinfo(
            &self
                .call(call, Retries::Verification(self.retry), deadline)
                .await?,
        )
    }

    /// `POST /oauth2/v2.1/revoke` (<https://developers.line.biz/en/reference/line-login/#revoke-access-token>), retried (revoking twice revokes once); done
    /// as [`wire::revoked`] reads LINE's answer.
    pub(crate) async fn revoke(
        &self,
        token: &AccessToken,
        channel_id: &str,
        secret: Option<&str>,
        deadline: Instant,
    ) -> Result<(), LineAuthError> {
        let mut form = vec![("access_token", token.expose()), ("client_id", channel_id)];
        form.extend(secret.map(|secret| ("client_secret", secret)));
        let call = Call::Revoke { form: &form };
        let answer = self
            .call(call, Retries::Revoke(self.retry), deadline)
            .await?;
        if wire::revoked(answer.status, &answer.body) {
            return Ok(());
        }
        if answer.status.is_success() {
            return Err(LineAuthError::Unavailable(UpstreamError::InvalidBody(
                wire::NOT_LINES_ANSWER,
            )));
        }
        // A 429 or 5xx comes in the OAuth shape too (fact sheet §1): LINE is unavailable, and its
        // `Retry-After` stands. Only another client error names a refusal of the call itself.
        let refused_the_call = answer.status.is_client_error() && !is_try_later(answer.status);
        let cause =
            match wire::revoke_refusal(answer.status, &answer.body).filter(|_| refused_the_call) {
                Some(error) => UpstreamError::RevokeRefused {
                    error: error.into(),
                },
                None => answer.unavailable(),
            };
        Err(LineAuthError::Unavailable(cause))
    }

    async fn call(
        &self,
        call: Call<'_>,
        retries: Retries,
        deadline: Instant,
    ) -> Result<Answer, LineAuthError> {
        self.transport
            .call(call, retries, deadline)
            .await
            .map_err(LineAuthError::Unavailable)
    }
}

/// LINE's verdict from a final verify answer (<https://developers.line.biz/en/reference/line-login/#verify-access-token>): 200 is the grant, 400 the
/// token's refusal; anything else, or a body out of spec, is LINE being unavailable. A 401 is
/// undocumented here, but the call names no client, so one in either of LINE's error shapes
/// can only refuse the token; without one it may be any proxy's, and is out of spec as a 400
/// without one is (a refusal would be remembered, and would drop the verdict stale-if-error
/// keeps).
pub(crate) fn judge_verify(answer: &Answer) -> Result<AccessTokenInfo, LineAuthError> {
    match answer.status {
        StatusCode::OK => parse(answer),
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => match answer.line_error() {
            Some(wire::LineError::OAuth { error, description }) => {
                tracing::debug!(error = %error, "LINE refused the access token");
                let reason = description.as_deref().map_or(
                    InvalidReason::Rejected,
                    InvalidReason::from_line_description,
                );
                Err(LineAuthError::InvalidToken(reason))
            }
            Some(wire::LineError::Message { .. }) if answer.status == StatusCode::UNAUTHORIZED => {
                Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
            }
            // Out of spec, and not a verdict; its status kept, so stale-if-error knows it for a
            // client error and does not stand in.
            _ => Err(LineAuthError::Unavailable(answer.unavailable())),
        },
        _ => Err(LineAuthError::Unavailable(answer.unavailable())),
    }
}

/// LINE's verdict from a final profile answer (<https://developers.line.biz/en/reference/line-login/#get-user-profile>): 401 (or an OAuth error body on
/// 400, as for userinfo: its errors are undocumented) means the token went bad between the two
/// calls; 403 that it may not read the profile (no `profile` scope).
pub(crate) fn judge_profile(answer: &Answer) -> Result<Profile, LineAuthError> {
    match answer.status {
        StatusCode::OK => parse(answer),
        StatusCode::UNAUTHORIZED => Err(LineAuthError::InvalidToken(InvalidReason::Rejected)),
        StatusCode::BAD_REQUEST
            if matches!(answer.line_error(), Some(wire::LineError::OAuth { .. })) =>
        {
            Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
        }
        StatusCode::FORBIDDEN => Err(LineAuthError::InsufficientScope {
            required: "profile".into(),
        }),
        _ => Err(LineAuthError::Unavailable(answer.unavailable())),
    }
}

/// LINE's verdict from a final userinfo answer. Its errors are undocumented: 401 (or an OAuth
/// error body on 400) is the token going bad between the calls, 403 a token without `openid`;
/// anything else, or a body without `sub`, is LINE being unavailable.
pub(crate) fn judge_userinfo(answer: &Answer) -> Result<UserInfo, LineAuthError> {
    match answer.status {
        StatusCode::OK => parse(answer),
        StatusCode::UNAUTHORIZED => Err(LineAuthError::InvalidToken(InvalidReason::Rejected)),
        StatusCode::BAD_REQUEST
            if matches!(answer.line_error(), Some(wire::LineError::OAuth { .. })) =>
        {
            Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
        }
        StatusCode::FORBIDDEN => Err(LineAuthError::InsufficientScope {
            required: "openid".into(),
        }),
        _ => Err(LineAuthError::Unavailable(answer.unavailable())),
    }
}

fn unexpected_json() -> LineAuthError {
    LineAuthError::Unavailable(UpstreamError::InvalidBody("unexpected JSON shape"))
}

fn parse<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, LineAuthError> {
    answer.json().ok_or_else(unexpected_json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

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
    async fn verify_calls_when_line_answers(status: StatusCode) -> u64 {
        use line_auth_emulator::{Endpoint, Fault, LineEmulator};
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

    #[tokio::test]
    async fn line_failing_is_asked_again_up_to_the_attempt_limit_and_a_rate_limit_once() {
        for status in [500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(verify_calls_when_line_answers(status).await, 3, "{status}");
        }
        // Asking again at once would only add to LINE's rate limit.
        assert_eq!(
            verify_calls_when_line_answers(StatusCode::TOO_MANY_REQUESTS).await,
            1
        );
    }

    #[tokio::test]
    async fn other_statuses_are_final_and_asked_once() {
        // 400 here carries `{"message"}`, not an OAuth error: out of spec, so unavailable too.
        // (A 401 in LINE's error shapes, as the emulator's is, is the token's refusal, asked
        // once too: `verification::a_verify_401_…`.)
        for status in [201, 301, 400, 403, 404, 418] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(verify_calls_when_line_answers(status).await, 1, "{status}");
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
