//! A raw token or secret never appears in logs, at any level, from this crate or its HTTP stack,
//! nor in an error text or a `Debug` a caller sees. One exception, which a user must opt into:
//! reqwest's `connection_verbose(true)` on a client passed as `http_client` logs the bytes on the
//! wire at TRACE, tokens included, under its own target, and only there.

use std::collections::HashSet;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use line_auth::login::{LineLoginClient, LineLoginClientBuilder, Pkce};
use line_auth::{LineAuthConfig, LineAuthConfigBuilder, LineAuthLayer, TokenSource};
use line_auth_emulator::{
    EmulatedUser, Endpoint, Fault, IdTokenAlgorithm, IssueIdToken, IssueToken,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::field::{Field, Visit};
use tracing::{span, Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[cfg(feature = "redis")]
use crate::redis_server::{RedisServer, FLEET_KEY};
use crate::support::*;
use crate::transport::{sign_in, PKCE_VERIFIER};

/// The target of reqwest's `connection_verbose` records: every byte read and written.
const WIRE_TARGET: &str = "reqwest::connect::verbose";
const SECRET: &str = "channel-secret-for-the-logging-tests";
const COOKIE: &str = "line_token";
const QUERY: &str = "access_token";
const BROWN: &str = "U4af4980629aabbccddeeff0011223344";

/// With the default HTTP client: no fragment of any token or secret in any record, from any
/// target, nor in any error text, refusal or `Debug` a caller saw.
#[tokio::test(flavor = "current_thread")]
async fn with_the_default_client_no_token_or_secret_reaches_a_log_or_an_error_text() {
    let capture = Capture::install();

    let exercised = exercise_every_path(None).await;

    let records = capture.records();
    assert_saw_every_kind_of_event(&records);
    assert!(
        records
            .iter()
            .any(|r| r.target.starts_with("reqwest") || r.target.starts_with("hyper")),
        "the HTTP stack's records were captured"
    );
    let secrets = Fragments::of(&exercised.secrets);
    for record in &records {
        if let Some(fragment) = secrets.found_in(&record.text) {
            panic!("fragment {fragment:?} in a log record: {record:?}");
        }
    }
    exercised.assert_texts_carry_none(&secrets);
}

/// With a client that logs the wire (`connection_verbose(true)`, passed as `http_client`): tokens
/// and secrets show in reqwest's wire records (the verify URL, `Authorization` headers, revoke and
/// token-endpoint bodies) and nowhere else: not in line_auth's records, not in any other target.
#[tokio::test(flavor = "current_thread")]
async fn with_connection_verbose_tokens_show_only_in_reqwest_wire_records() {
    let capture = Capture::install();
    let verbose = reqwest::Client::builder()
        .connection_verbose(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let exercised = exercise_every_path(Some(verbose)).await;

    let records = capture.records();
    assert_saw_every_kind_of_event(&records);
    let secrets = Fragments::of(&exercised.secrets);
    let wire_leaks = records
        .iter()
        .filter(|r| r.target == WIRE_TARGET && secrets.found_in(&r.text).is_some())
        .count();
    assert!(
        records.iter().any(|r| r.target == WIRE_TARGET
            && r.text.contains("GET /oauth2/v2.1/verify?access_token=")
            && secrets.found_in(&r.text).is_some()),
        "the capture sees the wire, the verify URL and its token included \
         ({wire_leaks} wire records with a token)"
    );
    for record in &records {
        if let Some(fragment) = secrets.found_in(&record.text) {
            assert_eq!(
                record.target, WIRE_TARGET,
                "fragment {fragment:?} outside the wire records: {record:?}"
            );
        }
    }
    exercised.assert_texts_carry_none(&secrets);
}

/// The verification span's `elapsed_ms` is the time LINE took, in milliseconds.
#[tokio::test(flavor = "current_thread")]
async fn the_verification_span_gives_the_time_with_line_in_milliseconds() {
    const LATENCY: Duration = Duration::from_millis(40);
    let capture = Capture::install();
    let line = Line::start().await;
    let base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(line.config().build().unwrap())),
    )
    .await;
    line.emulator
        .inject(Endpoint::Verify, Fault::Latency(LATENCY));

    assert_eq!(
        get_bearer(&base, "/api/me", &line.token()).await.status,
        StatusCode::OK
    );

    let elapsed_ms: Vec<f64> = capture
        .records()
        .iter()
        .filter(|record| record.text.starts_with("line_auth.verify"))
        .filter_map(|record| record.text.split(" elapsed_ms=").nth(1))
        .map(|value| value.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(elapsed_ms.len(), 1, "recorded once");
    // At least LINE's latency; well under a second (in seconds it would read 0.04, in
    // microseconds 40,000).
    assert!(
        (LATENCY.as_millis() as f64..1_000.0).contains(&elapsed_ms[0]),
        "{elapsed_ms:?}"
    );
}

/// Decisions on a token are `line_auth.verify` spans saying how the cache took part: `miss` for
/// a verification, `coalesced` for a request that joined one, `hit` and `negative_hit` for those
/// the caches answered at the first lookup (at TRACE), with the outcome and the token's prefix.
#[tokio::test(flavor = "current_thread")]
async fn decisions_are_verify_spans_saying_how_the_cache_took_part() {
    let capture = Capture::install();
    let tokens = TwoTokens::start().await;

    tokens
        .verify_coalesce_then_hit(Duration::from_millis(50))
        .await;
    for _ in 0..2 {
        assert_eq!(
            get_bearer(&tokens.base, "/api/me", &tokens.revoked)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }

    let spans: Vec<String> = capture
        .records()
        .into_iter()
        .filter(|record| record.target.starts_with("line_auth"))
        .map(|record| record.text)
        .filter(|text| text.starts_with("line_auth.verify ") && text.contains(" cache="))
        .collect();
    let saying = |cache: &str| {
        spans
            .iter()
            .filter(|text| text.contains(&format!(" cache={cache}")))
            .collect::<Vec<_>>()
    };
    assert_eq!(saying("miss").len(), 2, "{spans:#?}");
    assert_eq!(saying("coalesced").len(), 1, "{spans:#?}");
    // Named as a verification names its token: the first 4 bytes of its SHA-256, in hex.
    let named = |token: &str| {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        format!(" token={hex} ")
    };
    let hits = saying("hit");
    assert_eq!(hits.len(), 1, "{spans:#?}");
    assert!(hits[0].contains(" outcome=verified"), "{spans:#?}");
    assert!(hits[0].contains(&named(&tokens.token)), "{spans:#?}");
    let negative_hits = saying("negative_hit");
    assert_eq!(negative_hits.len(), 1, "{spans:#?}");
    assert!(negative_hits[0].contains(" outcome=refused"), "{spans:#?}");
    assert!(
        negative_hits[0].contains(&named(&tokens.revoked)),
        "{spans:#?}"
    );
    assert!(
        saying("miss")
            .iter()
            .any(|miss| miss.contains(&named(&tokens.token))),
        "{spans:#?}"
    );
}

/// A run of requests LINE cannot verify, or that a full queue refuses, logs one warning a second
/// of each kind, not one a request: an outage or a flood of new tokens would otherwise cost a log
/// line per request. The first of each is logged at once.
#[tokio::test(flavor = "current_thread")]
async fn an_outage_or_a_full_queue_warns_once_a_second_not_once_a_request() {
    const OUTAGE: &str = "LINE could not verify the token";
    const FULL: &str = "too many verifications pending";
    let capture = Capture::install();
    let line = Line::start().await;
    // One try per call: the five requests take well under the second the throttle spans.
    let config = line
        .config()
        .max_pending_verifications(1)
        .upstream_max_attempts(1)
        .build()
        .unwrap();
    let base = serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config))).await;

    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for _ in 0..5 {
        let reply = get_bearer(&base, "/api/me", &line.token()).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    // One slow verification takes the one pending place; new tokens are refused meanwhile.
    line.emulator.clear_faults();
    // Long enough that a stall of the test does not see the place free again.
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Latency(Duration::from_millis(1_500)),
    );
    let asked = line.emulator.calls().verify;
    let hog = {
        let (base, token) = (base.clone(), line.token());
        tokio::spawn(async move { get_bearer(&base, "/api/me", &token).await.status })
    };
    assert!(
        eventually(Duration::from_secs(2), || line.emulator.calls().verify
            > asked)
        .await,
        "the slow verification reached LINE"
    );
    for _ in 0..5 {
        let reply = get_bearer(&base, "/api/me", &line.token()).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(hog.await.unwrap(), StatusCode::OK);

    let records = capture.records();
    let count = |text: &str| records.iter().filter(|r| r.text.contains(text)).count();
    assert_eq!(count(OUTAGE), 1, "one outage warning for five requests");
    assert!(
        records
            .iter()
            .any(|r| r.text.contains(OUTAGE) && r.text.contains("left_out=0")),
        "the first says none was left out"
    );
    assert_eq!(count(FULL), 1, "one full-queue warning for five refusals");
}

fn assert_saw_every_kind_of_event(records: &[LogRecord]) {
    let saw = |text: &str| records.iter().any(|r| r.text.contains(text));
    for (event, what) in [
        ("LINE answered", "LINE's answers"),
        ("LINE could not verify the token", "an outage"),
        ("accepting it as verified before", "a stale token served"),
        #[cfg(feature = "redis")]
        ("shared cache: could not", "the Redis failure"),
        ("could not revoke the token at LINE", "a failed logout"),
        ("fetched LINE's ID-token keys", "the key-set fetch"),
        ("line_auth.verify", "the verification span"),
    ] {
        assert!(saw(event), "the capture saw {what} ({event:?})");
    }
    // Every fault's warning was said (each on a layer of its own), so its text was checked.
    let outages = records
        .iter()
        .filter(|r| r.text.contains("outcome=unavailable"))
        .count();
    assert!(
        outages >= 2 * every_fault().len(),
        "{outages} outage warnings"
    );
    // The outage's warning names its cause: here LINE's 5xx.
    assert!(
        records
            .iter()
            .any(|r| r.text.contains("LINE could not verify the token")
                && r.text.contains("outcome=unavailable")
                && r.text.contains("error=LINE answered HTTP 5")),
        "the outage's warning says what LINE did"
    );
}

/// Every path a token or secret takes: the access-token layer (every verdict, every token source,
/// every fault LINE can show, the shared cache (feature `redis`), stale-if-error, logout, an
/// outage, a timeout), the ID-token layer (the key-set fetch and its faults) and `LineLoginClient`
/// (every call, and its faults). `http_client`, if given, is used for every call to LINE.
async fn exercise_every_path(http_client: Option<reqwest::Client>) -> Exercised {
    let mut seen = Exercised::default();
    seen.secret(SECRET);
    seen.secret(PKCE_VERIFIER);
    let with_client = |builder: LineAuthConfigBuilder| match &http_client {
        Some(client) => builder.http_client(client.clone()),
        None => builder,
    };
    let line = Line::start().await;
    line.emulator.register_channel(CHANNEL, SECRET);
    line.emulator
        .sign_in_as(EmulatedUser::new(BROWN, "Brown").friend(true));

    // Access tokens, from every source, with the shared cache (feature `redis`).
    let config = with_client(
        line.config()
            .channel_secret(SECRET)
            .upstream_timeout(Duration::from_secs(2)),
    );
    #[cfg(feature = "redis")]
    let mut redis = RedisServer::start();
    #[cfg(feature = "redis")]
    let config = {
        seen.secret(FLEET_KEY);
        config.redis_url(redis.url()).redis_signing_key(FLEET_KEY)
    };
    seen.debug(&config);
    let config = config.build().unwrap();
    seen.debug(&config);
    let layer = LineAuthLayer::new(config.clone()).token_sources([
        TokenSource::AuthorizationHeader,
        TokenSource::Cookie(COOKIE.into()),
        TokenSource::QueryParameter(QUERY.into()),
    ]);
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;

    let valid = seen.secret(line.token());
    let revoked = seen.secret(line.token());
    line.emulator.revoke(&revoked);
    let foreign = seen.secret(line.issue(IssueToken::new(OTHER_CHANNEL)));
    let opaque = seen.secret(
        line.issue(IssueToken::new(CHANNEL).token_value("bNl4YEFPI/hjFWhTqexp4MuEw5YPs+secret==")),
    );
    let unknown =
        seen.secret("eyJhbGciOiJIUzI1NiJ9.dW5rbm93bi10b2tlbi1wYXlsb2Fk.dW5rbm93bi1zaWduYXR1cmU");
    for (token, status) in [
        (&valid, StatusCode::OK),
        (&valid, StatusCode::OK),
        (&revoked, StatusCode::UNAUTHORIZED),
        (&foreign, StatusCode::UNAUTHORIZED),
        (&opaque, StatusCode::OK),
        (&unknown, StatusCode::UNAUTHORIZED),
    ] {
        seen.reply(&get_bearer(&base, "/api/me", token).await, status);
    }
    let in_cookie = seen.secret(line.token());
    let cookie = format!("theme=dark; {COOKIE}={in_cookie}");
    let reply = get_with_header(&format!("{base}/api/me"), "cookie", &cookie).await;
    seen.reply(&reply, StatusCode::OK);
    let in_query = seen.secret(line.token());
    let url = format!("{base}/api/me?{QUERY}={}", url_encode(&in_query));
    seen.reply(
        &get_with_header(&url, "accept", "*/*").await,
        StatusCode::OK,
    );
    let malformed = format!("Bearer {valid}&x");
    let reply = get_with(&base, "/api/me", &[malformed.as_bytes()]).await;
    seen.reply(&reply, StatusCode::BAD_REQUEST);

    for endpoint in [Endpoint::Verify, Endpoint::Profile] {
        for fault in every_fault() {
            // A layer of its own for each fault: one layer warns of an outage once a second, and
            // every fault's warning, its cause in full, is to be seen.
            let fault_base =
                serve(routes(&HandlerCalls::default()).layer(LineAuthLayer::new(config.clone())))
                    .await;
            line.emulator.inject(endpoint, fault.clone());
            let token = seen.secret(line.token());
            let reply = get_bearer(&fault_base, "/api/me", &token).await;
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{endpoint:?} {fault:?}"
            );
            seen.reply(&reply, StatusCode::SERVICE_UNAVAILABLE);
            line.emulator.clear_faults();
        }
    }

    // Logout: revoked at LINE; LINE answering 400; LINE failing.
    auth.logout(&valid).await.unwrap();
    auth.logout(&revoked).await.unwrap();
    let already_invalid = seen.secret(line.token());
    line.emulator
        .inject_times(Endpoint::Revoke, already_invalid_at_line(), 1);
    auth.logout(&already_invalid).await.unwrap();
    let not_revoked = seen.secret(line.token());
    line.emulator
        .inject(Endpoint::Revoke, Fault::Status(StatusCode::BAD_GATEWAY));
    seen.error(&auth.logout(&not_revoked).await.unwrap_err());
    line.emulator.clear_faults();

    #[cfg(feature = "redis")]
    {
        redis.kill();
        let redis_down = seen.secret(line.token());
        seen.reply(
            &get_bearer(&base, "/api/me", &redis_down).await,
            StatusCode::OK,
        );
        auth.forget(&redis_down);
    }

    // Stale-if-error: a token verified before, accepted while LINE fails.
    let stale_config = with_client(
        line.config()
            .cache_max_ttl(Duration::from_millis(100))
            .stale_if_error(Duration::from_secs(60))
            .upstream_timeout(Duration::from_secs(2)),
    );
    let stale_base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(stale_config.build().unwrap())),
    )
    .await;
    let kept_in = seen.secret(line.token());
    seen.reply(
        &get_bearer(&stale_base, "/api/me", &kept_in).await,
        StatusCode::OK,
    );
    tokio::time::sleep(Duration::from_millis(200)).await; // the entry goes stale
    line.emulator.inject(
        Endpoint::Verify,
        Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
    );
    seen.reply(
        &get_bearer(&stale_base, "/api/me", &kept_in).await,
        StatusCode::OK,
    );
    line.emulator.clear_faults();

    // LINE down, then LINE never answering.
    line.emulator.stop().await;
    let during_outage = seen.secret(line.token());
    let reply = get_bearer(&base, "/api/me", &during_outage).await;
    seen.reply(&reply, StatusCode::SERVICE_UNAVAILABLE);
    line.emulator.restart().await.unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_config = with_client(
        LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(format!("http://{}", silent.local_addr().unwrap()))
            .upstream_timeout(Duration::from_millis(200)),
    );
    let silent_base = serve(
        routes(&HandlerCalls::default()).layer(LineAuthLayer::new(silent_config.build().unwrap())),
    )
    .await;
    let unanswered = seen.secret(line.token());
    let reply = get_bearer(&silent_base, "/api/me", &unanswered).await;
    seen.reply(&reply, StatusCode::SERVICE_UNAVAILABLE);
    drop(silent);

    // ID tokens: ES256 (the key-set fetch, then a rotation), HS256, refused ones.
    let id_config = with_client(
        line.config()
            .channel_secret(SECRET)
            .hs256_id_tokens(CHANNEL)
            .jwks_refetch_floor(Duration::from_millis(1)),
    );
    let id_base = serve(
        routes(&HandlerCalls::default())
            .layer(LineAuthLayer::new(id_config.build().unwrap()).id_tokens()),
    )
    .await;
    let id_token = |request: IssueIdToken| line.emulator.issue_id_token(request.name("Brown"));
    let es256 = seen.secret(id_token(IssueIdToken::new(CHANNEL, BROWN)));
    let hs256 = seen.secret(id_token(
        IssueIdToken::new(CHANNEL, BROWN).algorithm(IdTokenAlgorithm::Hs256),
    ));
    let foreign_id = seen.secret(id_token(IssueIdToken::new(OTHER_CHANNEL, BROWN)));
    let flipped = if es256.ends_with('A') { 'B' } else { 'A' };
    let tampered = seen.secret(format!("{}{flipped}", &es256[..es256.len() - 1]));
    for (token, status) in [
        (&es256, StatusCode::OK),
        (&hs256, StatusCode::OK),
        (&foreign_id, StatusCode::UNAUTHORIZED),
        (&tampered, StatusCode::UNAUTHORIZED),
    ] {
        seen.reply(&get_bearer(&id_base, "/api/me", token).await, status);
    }
    line.emulator.rotate_signing_key();
    let rotated = seen.secret(id_token(IssueIdToken::new(CHANNEL, BROWN)));
    seen.reply(
        &get_bearer(&id_base, "/api/me", &rotated).await,
        StatusCode::OK,
    );
    for broken in broken_lines().await {
        let config = with_client(
            LineAuthConfig::builder()
                .channel_id(CHANNEL)
                .api_base(&broken)
                .upstream_timeout(Duration::from_millis(500)),
        );
        let base = serve(
            routes(&HandlerCalls::default())
                .layer(LineAuthLayer::new(config.build().unwrap()).id_tokens()),
        )
        .await;
        let token = seen.secret(id_token(IssueIdToken::new(CHANNEL, BROWN)));
        let reply = get_bearer(&base, "/api/me", &token).await;
        seen.reply(&reply, StatusCode::SERVICE_UNAVAILABLE);
    }

    // LineLoginClient: every call, then LINE misbehaving on each.
    let login_client = |api_base: &str| -> LineLoginClientBuilder {
        let builder = LineLoginClient::builder(CHANNEL)
            .channel_secret(SECRET)
            .api_base(api_base)
            .authorize_endpoint(format!(
                "{}/oauth2/v2.1/authorize",
                line.emulator.base_url()
            ))
            .timeout(Duration::from_secs(2));
        match &http_client {
            Some(client) => builder.http_client(client.clone()),
            None => builder,
        }
    };
    let builder = login_client(&line.emulator.base_url());
    seen.debug(&builder);
    let client = builder.build().unwrap();
    seen.debug(&client);
    let (tokens, code) = sign_in(&client, &["profile", "openid"]).await;
    seen.debug(&tokens);
    seen.secret(code.as_str());
    let access = seen.secret(tokens.access_token.secret());
    seen.secret(tokens.refresh_token.secret());
    let id_token = seen.secret(tokens.id_token.as_ref().unwrap().secret());
    client.verify_access_token(&access).await.unwrap();
    client.profile(&access).await.unwrap();
    client.userinfo(&access).await.unwrap();
    client.friendship_status(&access).await.unwrap();
    client
        .verify_id_token(&id_token, Some("n0nce"), Some(BROWN))
        .await
        .unwrap();
    let refreshed = client.refresh(&tokens).await.unwrap();
    let refreshed_access = seen.secret(refreshed.access_token.secret());
    for fault in every_fault() {
        for endpoint in [Endpoint::Verify, Endpoint::Profile, Endpoint::Revoke] {
            line.emulator.inject(endpoint, fault.clone());
        }
        seen.result(client.verify_access_token(&refreshed_access).await);
        seen.result(client.profile(&refreshed_access).await);
        seen.result(client.revoke_access_token(&refreshed_access).await);
        line.emulator.clear_faults();
    }
    let pkce = Pkce::from_verifier(PKCE_VERIFIER).unwrap();
    for broken in broken_lines().await {
        let client = login_client(&broken).build().unwrap();
        seen.result(client.refresh(&tokens).await);
        seen.result(
            client
                .exchange_code(&code, "https://app.example/callback", Some(&pkce))
                .await,
        );
        seen.result(client.verify_id_token(&id_token, None, None).await);
        seen.result(client.userinfo(&access).await);
    }
    client.revoke_access_token(&refreshed_access).await.unwrap();
    client
        .revoke_refresh_token(tokens.refresh_token.secret())
        .await
        .unwrap();
    seen
}

/// Every way the emulator can make a call fail quickly: 5xx, 429, not JSON, too large, reset.
fn every_fault() -> [Fault; 5] {
    [
        Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        },
        Fault::NotJson,
        Fault::HugeBody(32 * 1024),
        Fault::Reset,
    ]
}

/// LINEs answering every call with a 5xx, a 429, a page that is not JSON, or a broken-off body.
async fn broken_lines() -> [String; 4] {
    [
        broken_line(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[("content-type", "application/json")],
            r#"{"message":"Internal server error"}"#,
        )
        .await,
        broken_line(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", "30")],
            r#"{"message":"The API rate limit has been exceeded."}"#,
        )
        .await,
        broken_line(
            StatusCode::OK,
            &[("content-type", "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
        .await,
        resetting_line().await,
    ]
}

/// A LINE that sends a status line and headers, then breaks the connection off mid-body.
async fn resetting_line() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0; 8192];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"keys\":[";
                let _ = stream.write_all(head.as_bytes()).await;
            });
        }
    });
    base
}

/// `GET url` with one extra header.
async fn get_with_header(url: &str, name: &str, value: &str) -> Reply {
    let response = http().get(url).header(name, value).send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// What a pass used, and what its callers saw.
#[derive(Default)]
struct Exercised {
    /// Every token, code and secret that crossed the layer, the login client or LINE.
    secrets: Vec<String>,
    /// Every refusal, error text and `Debug` a caller saw.
    texts: Vec<String>,
}

impl Exercised {
    fn secret(&mut self, secret: impl Into<String>) -> String {
        let secret = secret.into();
        self.secrets.push(secret.clone());
        secret
    }

    fn reply(&mut self, reply: &Reply, status: StatusCode) {
        assert_eq!(reply.status, status, "{}", reply.body);
        self.texts
            .push(format!("{:?} {}", reply.headers, reply.body));
    }

    fn debug(&mut self, value: &impl fmt::Debug) {
        self.texts.push(format!("{value:?}"));
    }

    /// Display and `Debug` of the error and of every error under it.
    fn error(&mut self, error: &dyn std::error::Error) {
        let mut text = format!("{error} {error:?}");
        let mut source = error.source();
        while let Some(cause) = source {
            let _ = write!(text, " {cause} {cause:?}");
            source = cause.source();
        }
        self.texts.push(text);
    }

    fn result<T: fmt::Debug, E: std::error::Error>(&mut self, result: Result<T, E>) {
        match result {
            Ok(value) => self.debug(&value),
            Err(error) => self.error(&error),
        }
    }

    fn assert_texts_carry_none(&self, secrets: &Fragments) {
        assert!(self.texts.len() > 50, "the pass saw its callers' texts");
        for text in &self.texts {
            if let Some(fragment) = secrets.found_in(text) {
                panic!("fragment {fragment:?} in what a caller saw: {text}");
            }
        }
    }
}

/// Every 12-byte window of each secret, raw and percent-encoded: a leak whole or in part.
struct Fragments(HashSet<Vec<u8>>);

impl Fragments {
    fn of(secrets: &[String]) -> Self {
        let mut fragments = HashSet::new();
        for secret in secrets {
            // A JWS header is the same for every token of its kind and secret to no one.
            let parts: Vec<&str> = secret.split('.').collect();
            let public = if parts.len() == 3 {
                parts[0].len() + 1
            } else {
                0
            };
            for form in [secret.clone(), url_encode(secret)] {
                for (start, window) in form.as_bytes().windows(12).enumerate() {
                    if start + 12 > public {
                        fragments.insert(window.to_vec());
                    }
                }
            }
        }
        Self(fragments)
    }

    fn found_in(&self, text: &str) -> Option<String> {
        text.as_bytes()
            .windows(12)
            .find(|window| self.0.contains(*window))
            .map(|window| String::from_utf8_lossy(window).into_owned())
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

/// One thing a subscriber was told: an event, a new span or a span's new values, with the target
/// of the code that said it (`log` records, reqwest's among them, under their own target).
#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    pub(crate) target: String,
    pub(crate) text: String,
}

/// Records everything at every level on this thread (the test's runtime is single-threaded, so
/// that is the server, the layer, LINE and every client), `log` records included.
pub(crate) struct Capture {
    records: Arc<Mutex<Vec<LogRecord>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Capture {
    pub(crate) fn install() -> Self {
        let _ = tracing_log::LogTracer::init();
        let records = Arc::new(Mutex::new(Vec::new()));
        // While only one subscriber exists, tracing-core decides whether a callsite is on from
        // the subscriber of whichever thread hits it first: a test without a capture would turn
        // a callsite off for good, this capture included. A second, idle subscriber, alive for the
        // whole run, makes it ask every subscriber; the rebuild then re-asks the callsites other
        // threads registered before this one.
        static IDLE: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        IDLE.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let subscriber = tracing_subscriber::registry().with(Recorder(Arc::clone(&records)));
        let guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        Self {
            records,
            _guard: guard,
        }
    }

    pub(crate) fn records(&self) -> Vec<LogRecord> {
        self.records.lock().unwrap().clone()
    }
}

struct Recorder(Arc<Mutex<Vec<LogRecord>>>);

impl Recorder {
    fn push(&self, target: &str, text: String) {
        self.0.lock().unwrap().push(LogRecord {
            target: target.to_owned(),
            text,
        });
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attributes: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        let mut text = attributes.metadata().name().to_owned();
        attributes.record(&mut Text(&mut text));
        self.push(attributes.metadata().target(), text);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, context: Context<'_, S>) {
        let Some(metadata) = context.metadata(id) else {
            return;
        };
        let mut text = metadata.name().to_owned();
        values.record(&mut Text(&mut text));
        self.push(metadata.target(), text);
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let normalized = event.normalized_metadata();
        let target = normalized
            .as_ref()
            .map_or(event.metadata().target(), |metadata| metadata.target());
        let mut text = String::new();
        event.record(&mut Text(&mut text));
        self.push(target, text);
    }
}

/// Every field as `name=value`, values as a formatter would print them, errors with their causes.
struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.0, " {}={value}", field.name());
        let mut source = value.source();
        while let Some(cause) = source {
            let _ = write!(self.0, ": {cause}");
            source = cause.source();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}
