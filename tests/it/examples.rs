//! The examples as a new user meets them: a misconfiguration reads as a sentence.

use axum::http::StatusCode;

use crate::support::{
    get_anonymous, get_bearer, http, run_failing_example, start_demo, start_example,
    startup_warnings,
};

#[test]
fn a_misconfigured_example_server_prints_the_error_as_a_sentence_and_exits_with_1() {
    let (status, stderr) = run_failing_example("server", &[("LINE_CHANNEL_ID", "abc")]);

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        r#"error: invalid LINE channel ID "abc": expected the numeric channel ID"#
    );
}

#[test]
fn an_example_server_with_a_bad_duration_names_the_variable() {
    let (status, stderr) = run_failing_example(
        "server",
        &[
            ("LINE_CHANNEL_ID", "1234567890"),
            ("LINE_CACHE_MAX_TTL_SECS", "soon"),
        ],
    );

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        r#"error: LINE_CACHE_MAX_TTL_SECS must be a whole number, got "soon""#
    );
}

#[test]
fn an_example_server_given_a_liff_id_says_which_channel_id_belongs_there() {
    let (status, stderr) =
        run_failing_example("server", &[("LINE_CHANNEL_ID", "1234567890-AbcdEfgh")]);

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is a LIFF ID, not a channel ID")
            && stderr.contains("LINE Login channel that holds the LIFF app"),
        "{stderr}"
    );
}

#[test]
fn the_web_login_example_with_a_bad_listen_addr_names_the_variable() {
    let (status, stderr) = run_failing_example("web_login", &[("LISTEN_ADDR", "bad")]);

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: LISTEN_ADDR: "), "{stderr}");
}

#[test]
fn an_example_server_with_a_malformed_liff_id_names_the_variable() {
    let (status, stderr) =
        run_failing_example("server", &[("LIFF_ID", "1234567890-Abcd\"</script>")]);

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: LIFF_ID must be a LIFF app's ID, such as 1234567890-AbcdEfgh"),
        "{stderr}"
    );
}

/// A LIFF app whose tokens the server would refuse, all of them, is told at start: in demo mode
/// (the emulator's channel is not the LIFF app's) and where `LINE_CHANNEL_ID` names other
/// channels. A LIFF app of a channel the server accepts starts without a word.
#[test]
fn an_example_server_warns_at_start_when_it_would_refuse_its_liff_apps_tokens() {
    const LIFF_ID: (&str, &str) = ("LIFF_ID", "1234567890-AbcdEfgh");
    // Configured, the server asks LINE nothing before a request; this address answers nothing.
    const NO_LINE: (&str, &str) = ("LINE_API_BASE", "http://127.0.0.1:9");

    let demo = startup_warnings("server", &[LIFF_ID]);
    assert!(
        demo.contains("LIFF_ID is set but LINE_CHANNEL_ID is not"),
        "{demo}"
    );

    let other_channel = startup_warnings(
        "server",
        &[LIFF_ID, NO_LINE, ("LINE_CHANNEL_ID", "2000000000")],
    );
    assert!(
        other_channel
            .contains("LIFF_ID belongs to channel 1234567890, which LINE_CHANNEL_ID does not name"),
        "{other_channel}"
    );

    let its_channel = startup_warnings(
        "server",
        &[
            LIFF_ID,
            NO_LINE,
            ("LINE_CHANNEL_ID", "2000000000,1234567890"),
        ],
    );
    assert!(!its_channel.contains("LIFF_ID"), "{its_channel}");
}

/// A LIFF page on another origin may read why it was refused: the CORS answer of a refusal
/// exposes the challenge of a 401 and the `Retry-After` of a 503, which CORS hides unless told.
#[tokio::test]
async fn the_example_servers_refusals_expose_their_challenge_and_retry_after_to_other_origins() {
    let (_server, base) = start_example("server", &[]);

    let refused = http()
        .get(format!("{base}/api/me"))
        .header("origin", "https://liff.line.me")
        .send()
        .await
        .unwrap();

    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let exposed = refused.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    let exposed: Vec<&str> = exposed.split(',').map(str::trim).collect();
    assert!(
        exposed.contains(&"www-authenticate") && exposed.contains(&"retry-after"),
        "{exposed:?}"
    );
}

#[tokio::test]
async fn the_demo_reads_the_same_settings_from_the_environment_as_a_configured_server() {
    // No LINE_CHANNEL_ID: the embedded emulator. Only the channel and LINE's address are the
    // demo's own; every other setting is read as `LineAuthConfig::from_env` reads it.
    let (_server, base) = start_example(
        "server",
        &[("LINE_REQUIRED_SCOPES", "profile chat_message.write")],
    );
    let token = http()
        .get(format!("{base}/liff/demo-token"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let reply = get_bearer(&base, "/api/me", &token).await;

    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("insufficient_scope"), "{}", reply.body);
}

#[test]
fn the_demo_refuses_a_bad_setting_as_a_configured_server_does() {
    let (status, stderr) = run_failing_example("server", &[("LINE_CACHE_MAX_TTL_SECS", "soon")]);

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        r#"error: LINE_CACHE_MAX_TTL_SECS must be a whole number, got "soon""#
    );
}

#[tokio::test]
async fn the_liff_page_is_found_at_liff_with_or_without_its_slash_and_as_index_html() {
    let (_server, base) = start_example("server", &[]);
    let page = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tls_certs_only([])
                .build()
                .unwrap()
                .get(url)
                .send()
                .await
                .unwrap();
            let location = response
                .headers()
                .get("location")
                .map(|value| value.to_str().unwrap().to_owned());
            (response.status(), location, response.text().await.unwrap())
        }
    };
    let (status, _, index) = page("/liff/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(index.contains("app.js"), "{index}");

    assert_eq!(
        page("/liff/index.html").await,
        (StatusCode::OK, None, index)
    );
    // A LIFF endpoint URL registered without the slash; LIFF's own parameters are kept, and the
    // page's relative script paths resolve under `/liff/`.
    let (status, location, _) = page("/liff?liff.state=%2Forders").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location.as_deref(), Some("/liff/?liff.state=%2Forders"));
    let (status, location, _) = page("/liff").await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location.as_deref(), Some("/liff/"));
}

/// README's first command, `cargo run --example server` with no configuration, prints a `curl`
/// line that works as printed against the demo's own emulator; and the demo's other routes do
/// what its docs say: `/health` is public, `/api/ping` answers the verified caller only,
/// `/stats` counts the protected handlers' runs, and CORS is open to any origin.
#[tokio::test]
async fn the_demo_prints_a_curl_line_that_works_as_printed() {
    let (_server, base, curl) = start_demo();
    // curl -H 'Authorization: Bearer <token>' http://<address>/api/me
    let (header, url) = curl
        .strip_prefix("curl -H '")
        .and_then(|rest| rest.split_once("' "))
        .unwrap_or_else(|| panic!("not a curl line with one header and a URL: {curl}"));
    let (name, value) = header.split_once(": ").unwrap();
    assert_eq!(url, format!("{base}/api/me"), "{curl}");
    let token = value.strip_prefix("Bearer ").unwrap();

    let reply = http().get(url).header(name, value).send().await.unwrap();

    assert_eq!(reply.status(), StatusCode::OK);
    let user: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    assert_eq!(
        user["userId"], "U4af4980629aabbccddeeff0011223344",
        "{user}"
    );
    assert_eq!(user["displayName"], "Brown", "{user}");

    assert_eq!(get_anonymous(&base, "/health").await.status, StatusCode::OK);
    assert_eq!(
        get_anonymous(&base, "/api/ping").await.status,
        StatusCode::UNAUTHORIZED
    );
    let pong = get_bearer(&base, "/api/ping", token).await;
    assert_eq!((pong.status, pong.body.as_str()), (StatusCode::OK, "pong"));
    let stats = get_anonymous(&base, "/stats").await.json();
    assert_eq!(stats["handler_runs"], 2, "{stats}");
    // The demo's one verification, timed: the histogram of `Stats::upstream_latency`.
    assert_eq!(stats["upstream_latency"]["count"], 1, "{stats}");
    assert!(stats["upstream_latency"]["bounds_ms"].is_array(), "{stats}");

    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{base}/api/me"))
        .header("origin", "https://liff.line.me")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}
