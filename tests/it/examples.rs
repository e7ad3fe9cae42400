//! The examples as a new user meets them: a misconfiguration reads as a sentence.

use axum::http::StatusCode;

use crate::support::{get_bearer, http, run_failing_example, start_example};

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
