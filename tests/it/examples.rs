//! The examples as a new user meets them: a misconfiguration reads as a sentence.

use crate::support::run_failing_example;

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
