//! Entry points for `cargo fuzz` (built only with `--cfg fuzzing`, which cargo-fuzz sets).
//! Each asserts the same invariants as the property tests.

use http::StatusCode;

use crate::client::{judge_profile, judge_verify};
use crate::rejection::LineAuthError;
use crate::token::{parse_bearer, Credentials, MAX_TOKEN_LEN};

/// Parses one `Authorization` header value.
pub fn bearer_header(value: &[u8]) {
    match parse_bearer(value) {
        Ok(Credentials::Bearer(token)) => {
            assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN);
            assert!(!token
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'&' || b == b'#' || b == b'%'));
        }
        Ok(Credentials::OtherScheme) | Err(LineAuthError::Malformed(_)) => {}
        Ok(Credentials::Absent) => unreachable!("a header value is never absent"),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// Judges one answer from LINE, as the verify and as the profile endpoint.
pub fn line_answers(status: u16, body: &[u8]) {
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    match judge_verify(status, body) {
        Ok(_) => assert_eq!(status, StatusCode::OK),
        Err(LineAuthError::InvalidToken(_)) => assert_eq!(status, StatusCode::BAD_REQUEST),
        Err(LineAuthError::Unavailable(_)) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
    match judge_profile(status, body) {
        Ok(_) => assert_eq!(status, StatusCode::OK),
        Err(LineAuthError::InvalidToken(_)) => assert_eq!(status, StatusCode::UNAUTHORIZED),
        Err(LineAuthError::InsufficientScope { .. }) => assert_eq!(status, StatusCode::FORBIDDEN),
        Err(LineAuthError::Unavailable(_)) => {}
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_accept_seed_inputs() {
        for seed in [
            &b""[..],
            b"Bearer",
            b"Bearer abc",
            b"bearer a+b/c==",
            b"Basic x",
            b"Bearer \xff",
            b"Bearer a b",
        ] {
            super::bearer_header(seed);
        }
        for (status, body) in [
            (
                200,
                &br#"{"scope":"profile","client_id":"1","expires_in":1}"#[..],
            ),
            (
                400,
                br#"{"error":"invalid_request","error_description":"The access token expired"}"#,
            ),
            (401, br#"{"message":"x"}"#),
            (403, b""),
            (429, b"<html>"),
            (999, b"{}"),
            (0, b""),
        ] {
            super::line_answers(status, body);
        }
    }
}
