//! Entry points for `cargo fuzz` (built with `--cfg fuzzing`, which cargo-fuzz sets, and for tests).
//!
//! Inputs are not judged as raw bytes: each is read as a described case (which scheme, separator
//! and token; which status and body), and the answer the case must get is derived from its
//! description, not from the code under test. The property tests in `token.rs` and `client.rs`
//! generate the same cases and assert the same exact answers.

use http::StatusCode;
use serde_json::{Map, Value};

use crate::client::{judge_profile, judge_verify};
use crate::line_api::Answer;
use crate::rejection::{InvalidReason, LineAuthError, MalformedReason, UpstreamError};
use crate::token::{parse_bearer, Credentials, MAX_TOKEN_LEN};

/// Fuzz target `bearer_header`: one `Authorization` value, read as a [`HeaderCase`].
pub fn bearer_header(input: &[u8]) {
    let case = HeaderCase::read(&mut Input(input));
    assert_eq!(header_answer(&case.value()), case.expected(), "{case:?}");
}

/// Fuzz target `line_answers`: one answer from LINE, read as an [`AnswerCase`], judged as the
/// verify and as the profile endpoint's answer.
pub fn line_answers(input: &[u8]) {
    let case = AnswerCase::read(&mut Input(input));
    let body = case.body.bytes();
    assert_eq!(
        verify_verdict(case.status, &body),
        case.expected_verify(),
        "{case:?}"
    );
    assert_eq!(
        profile_verdict(case.status, &body),
        case.expected_profile(),
        "{case:?}"
    );
}

/// Bytes RFC 6750's b64token allows before its `=` padding.
pub(crate) const B64TOKEN_BYTES: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";

/// Schemes that are not Bearer and no prefix of it, so no separator or token can make the
/// header's first word `bearer`.
pub(crate) const OTHER_SCHEMES: [&str; 6] =
    ["Basic", "Digest", "DPoP", "Token", "Bearerx", "Bear1"];

/// An `Authorization` value described by its parts.
#[derive(Debug, Clone)]
pub(crate) struct HeaderCase {
    /// A space before the scheme (hyper trims it off real headers; the parser still sees bytes).
    pub(crate) leading_space: bool,
    pub(crate) scheme: Scheme,
    pub(crate) separator: Separator,
    pub(crate) token: TokenPart,
    pub(crate) trailing: Trailing,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Scheme {
    /// `bearer`, letter `i` upper-cased where bit `i` of the mask is set (`1` is `Bearer`).
    Bearer { uppercase: u8 },
    /// One of [`OTHER_SCHEMES`].
    Other(&'static str),
}

/// What stands between the scheme and the token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Separator {
    /// 1 to 3 spaces (RFC 6750: `1*SP`).
    Spaces(usize),
    Tab,
    SpaceThenTab,
    TabThenSpace,
    Nothing,
}

/// The token part.
#[derive(Debug, Clone)]
pub(crate) enum TokenPart {
    /// A b64token (charset bytes, then 0 to 2 `=`), at most a few hundred bytes.
    Valid(String),
    Empty,
    /// A valid token with one byte outside b64token (never `=`, space or tab) inserted.
    ForeignByte {
        token: String,
        at: usize,
        byte: u8,
    },
    /// A valid token with one non-ASCII character (é for an ASCII one) inserted, as UTF-8.
    NonAsciiChar {
        token: String,
        at: usize,
        ch: char,
    },
    /// A valid token with a space or tab strictly inside it.
    InnerWhitespace {
        token: String,
        at: usize,
        tab: bool,
    },
    /// A valid token with `=` inserted before its last non-padding byte.
    MisplacedPadding {
        token: String,
        at: usize,
    },
    /// Valid bytes, `extra + 1` more than [`MAX_TOKEN_LEN`].
    TooLong {
        extra: usize,
    },
}

/// What follows the token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Trailing {
    Nothing,
    Spaces(usize),
    Tabs(usize),
    SpaceThenTab,
}

/// What the parser answered, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderAnswer {
    Bearer(String),
    OtherScheme,
    Malformed(MalformedReason),
    /// Anything else (a header value is never absent, and no other error is expected).
    Unexpected(String),
}

/// Parses `value` and describes the answer.
pub(crate) fn header_answer(value: &[u8]) -> HeaderAnswer {
    match parse_bearer(value) {
        Ok(Credentials::Bearer(token)) => HeaderAnswer::Bearer(token.to_owned()),
        Ok(Credentials::OtherScheme) => HeaderAnswer::OtherScheme,
        Err(LineAuthError::Malformed(reason)) => HeaderAnswer::Malformed(reason),
        other => HeaderAnswer::Unexpected(format!("{other:?}")),
    }
}

/// Maps any byte onto a byte outside b64token that is also not `=`, space or tab.
fn foreign_byte(n: u8) -> u8 {
    let foreign: Vec<u8> = (0..=255u8)
        .filter(|b| !B64TOKEN_BYTES.contains(b) && !b"= \t".contains(b))
        .collect();
    foreign[usize::from(n) % foreign.len()]
}

fn inserted(token: &str, at: usize, byte: u8) -> Vec<u8> {
    let mut bytes = token.as_bytes().to_vec();
    bytes.insert(at, byte);
    bytes
}

impl TokenPart {
    fn bytes(&self) -> Vec<u8> {
        match self {
            TokenPart::Valid(token) => token.as_bytes().to_vec(),
            TokenPart::Empty => Vec::new(),
            TokenPart::ForeignByte { token, at, byte } => {
                inserted(token, at % (token.len() + 1), foreign_byte(*byte))
            }
            TokenPart::NonAsciiChar { token, at, ch } => {
                let mut bytes = token.as_bytes().to_vec();
                let mut utf8 = [0; 4];
                let ch = if ch.is_ascii() { '\u{e9}' } else { *ch };
                let at = at % (token.len() + 1);
                bytes.splice(at..at, ch.encode_utf8(&mut utf8).bytes());
                bytes
            }
            TokenPart::InnerWhitespace { token, at, tab } => {
                // Strictly inside: after the first byte, before the last.
                let at = 1 + at % token.len().saturating_sub(1).max(1);
                inserted(token, at, if *tab { b'\t' } else { b' ' })
            }
            TokenPart::MisplacedPadding { token, at } => {
                let last_body_byte = token.trim_end_matches('=').len() - 1;
                inserted(token, at % (last_body_byte + 1), b'=')
            }
            TokenPart::TooLong { extra } => vec![b'a'; MAX_TOKEN_LEN + 1 + extra],
        }
    }
}

impl HeaderCase {
    /// The header value.
    pub(crate) fn value(&self) -> Vec<u8> {
        let mut value = Vec::new();
        if self.leading_space {
            value.push(b' ');
        }
        match self.scheme {
            Scheme::Bearer { uppercase } => {
                value.extend(b"bearer".iter().enumerate().map(|(i, &letter)| {
                    if uppercase & (1 << i) != 0 {
                        letter.to_ascii_uppercase()
                    } else {
                        letter
                    }
                }))
            }
            Scheme::Other(scheme) => value.extend_from_slice(scheme.as_bytes()),
        }
        value.extend_from_slice(match self.separator {
            Separator::Spaces(n) => &b"   "[..n.clamp(1, 3)],
            Separator::Tab => b"\t",
            Separator::SpaceThenTab => b" \t",
            Separator::TabThenSpace => b"\t ",
            Separator::Nothing => b"",
        });
        value.extend(self.token.bytes());
        value.extend_from_slice(match self.trailing {
            Trailing::Nothing => b"",
            Trailing::Spaces(n) => &b"   "[..n.clamp(1, 3)],
            Trailing::Tabs(n) => &b"\t\t"[..n.clamp(1, 2)],
            Trailing::SpaceThenTab => b" \t",
        });
        value
    }

    /// The answer RFC 6750 §2.1 (`credentials = "Bearer" 1*SP b64token`, the scheme
    /// case-insensitive) and this crate's reading of it call for: only a space ends the scheme, so
    /// `Bearer<TAB>token` is another scheme; spaces before the token and spaces or tabs after it
    /// are skipped; anything else around the token is part of it, so `Bearer <TAB>token` is
    /// malformed.
    pub(crate) fn expected(&self) -> HeaderAnswer {
        use HeaderAnswer::{Bearer, Malformed, OtherScheme};
        if self.leading_space || matches!(self.scheme, Scheme::Other(_)) {
            return OtherScheme;
        }
        let tab_before_token = match self.separator {
            Separator::Spaces(_) => false,
            Separator::SpaceThenTab => true,
            Separator::Tab | Separator::TabThenSpace => return OtherScheme,
            Separator::Nothing => {
                return match (&self.token, self.trailing) {
                    // `Bearer<TAB>`: the scheme's word runs on.
                    (TokenPart::Empty, Trailing::Tabs(_)) => OtherScheme,
                    (TokenPart::Empty, _) => Malformed(MalformedReason::Empty),
                    // `Bearerabc`
                    _ => OtherScheme,
                };
            }
        };
        match &self.token {
            TokenPart::Empty => Malformed(MalformedReason::Empty),
            TokenPart::TooLong { .. } => Malformed(MalformedReason::TooLong),
            TokenPart::Valid(token) if !tab_before_token => Bearer(token.clone()),
            _ => Malformed(MalformedReason::InvalidCharacters),
        }
    }

    fn read(input: &mut Input<'_>) -> Self {
        let leading_space = input.below(16) == 0;
        let scheme = match input.below(4) {
            0 => Scheme::Other(OTHER_SCHEMES[input.below(OTHER_SCHEMES.len())]),
            _ => Scheme::Bearer {
                uppercase: input.byte(),
            },
        };
        let separator = match input.below(8) {
            0 => Separator::Tab,
            1 => Separator::SpaceThenTab,
            2 => Separator::TabThenSpace,
            3 => Separator::Nothing,
            _ => Separator::Spaces(1 + input.below(3)),
        };
        let token = match input.below(11) {
            0 => TokenPart::Empty,
            1 => TokenPart::TooLong {
                extra: input.below(64),
            },
            2 | 3 => TokenPart::ForeignByte {
                byte: input.byte(),
                at: input.below(256),
                token: input.b64token(),
            },
            6 => TokenPart::NonAsciiChar {
                ch: char::from_u32(u32::from_be_bytes([
                    0,
                    input.byte(),
                    input.byte(),
                    input.byte(),
                ]))
                .unwrap_or('\u{e9}'),
                at: input.below(256),
                token: input.b64token(),
            },
            4 => TokenPart::InnerWhitespace {
                tab: input.byte() & 1 == 1,
                at: input.below(256),
                token: input.b64token(),
            },
            5 => TokenPart::MisplacedPadding {
                at: input.below(256),
                token: input.b64token(),
            },
            _ => TokenPart::Valid(input.b64token()),
        };
        let trailing = match input.below(6) {
            0 => Trailing::Spaces(1 + input.below(3)),
            1 => Trailing::Tabs(1 + input.below(2)),
            2 => Trailing::SpaceThenTab,
            _ => Trailing::Nothing,
        };
        Self {
            leading_space,
            scheme,
            separator,
            token,
            trailing,
        }
    }
}

/// One answer from LINE described by its parts.
#[derive(Debug, Clone)]
pub(crate) struct AnswerCase {
    pub(crate) status: StatusCode,
    pub(crate) body: BodyCase,
}

/// A body LINE (or something in its place) might send.
#[derive(Debug, Clone)]
pub(crate) enum BodyCase {
    /// The verify endpoint's 200 body (<https://developers.line.biz/en/reference/line-login/#verify-access-token>), with fields LINE may add.
    Verification {
        scope: ScopeField,
        client_id: String,
        expires_in: i64,
        unknown: Vec<(String, String)>,
    },
    /// The verify body with `client_id` as a JSON number: out of spec (LINE sends a string).
    NumericClientId { client_id: u64, expires_in: i64 },
    /// The profile endpoint's 200 body (<https://developers.line.biz/en/reference/line-login/#get-user-profile>), with fields LINE may add.
    Profile {
        user_id: String,
        display_name: String,
        picture_url: Option<String>,
        status_message: Option<String>,
        unknown: Vec<(String, String)>,
    },
    /// LINE's OAuth-style error (shape A, <https://developers.line.biz/en/reference/line-login/>).
    OAuthError {
        error: String,
        description: Description,
    },
    /// LINE's REST-style error (shape B, <https://developers.line.biz/en/reference/line-login/>).
    Message(String),
    /// A proxy's HTML page.
    Html(String),
    /// A verify body cut off before its end: never valid JSON.
    Truncated { client_id: String, keep: usize },
    /// Bytes that start with 0xFF, which no UTF-8 (so no JSON) has.
    NotUtf8(Vec<u8>),
}

/// The verify body's `scope`: "not always included".
#[derive(Debug, Clone)]
pub(crate) enum ScopeField {
    Absent,
    Null,
    /// These scopes, separated by single spaces.
    Scopes(Vec<String>),
}

/// An OAuth error's `error_description`.
#[derive(Debug, Clone)]
pub(crate) enum Description {
    Absent,
    Null,
    /// One of [`LINE_DESCRIPTIONS`], by index.
    Line(usize),
    /// A text without letters, so it names no reason.
    Unrecognised(String),
}

/// Descriptions LINE sends or sent (<https://developers.line.biz/en/reference/line-login/#verify-access-token>: the 2026 texts, the older lowercase one, the
/// channel-token one) and the reason each must be read as.
pub(crate) const LINE_DESCRIPTIONS: [(&str, InvalidReason); 6] = [
    ("The access token expired", InvalidReason::Expired),
    ("access token expired", InvalidReason::Expired),
    ("The access token revoked", InvalidReason::Revoked),
    ("The access token not JWS", InvalidReason::NotJws),
    ("The access token malformed", InvalidReason::NotJws),
    ("invalid token", InvalidReason::Rejected),
];

/// Characters an [`Description::Unrecognised`] text is made of.
pub(crate) const UNRECOGNISED_CHARS: &[u8] = b"0123456789 .,:;!?-()";

/// Characters of one generated scope.
pub(crate) const SCOPE_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789_.:";

impl Description {
    fn reason(&self) -> InvalidReason {
        match self {
            Description::Line(index) => LINE_DESCRIPTIONS[index % LINE_DESCRIPTIONS.len()].1,
            Description::Absent | Description::Null | Description::Unrecognised(_) => {
                InvalidReason::Rejected
            }
        }
    }
}

fn object(fields: impl IntoIterator<Item = (String, Value)>) -> Vec<u8> {
    let object: Map<String, Value> = fields.into_iter().collect();
    serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
}

/// Unknown fields, named so they never collide with a documented one.
fn unknown_fields(unknown: &[(String, String)]) -> impl Iterator<Item = (String, Value)> + '_ {
    unknown
        .iter()
        .map(|(name, value)| (format!("x_{name}"), Value::String(value.clone())))
}

fn verification_body(
    scope: &ScopeField,
    client_id: &str,
    expires_in: i64,
    unknown: &[(String, String)],
) -> Vec<u8> {
    let scope = match scope {
        ScopeField::Absent => None,
        ScopeField::Null => Some(Value::Null),
        ScopeField::Scopes(scopes) => Some(Value::String(scopes.join(" "))),
    };
    object(
        scope
            .map(|scope| ("scope".to_owned(), scope))
            .into_iter()
            .chain([
                ("client_id".to_owned(), Value::String(client_id.to_owned())),
                ("expires_in".to_owned(), Value::from(expires_in)),
            ])
            .chain(unknown_fields(unknown)),
    )
}

impl BodyCase {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        let text = |value: &str| Value::String(value.to_owned());
        match self {
            BodyCase::Verification {
                scope,
                client_id,
                expires_in,
                unknown,
            } => verification_body(scope, client_id, *expires_in, unknown),
            BodyCase::NumericClientId {
                client_id,
                expires_in,
            } => object([
                ("client_id".to_owned(), Value::from(*client_id)),
                ("expires_in".to_owned(), Value::from(*expires_in)),
            ]),
            BodyCase::Profile {
                user_id,
                display_name,
                picture_url,
                status_message,
                unknown,
            } => object(
                [
                    ("userId".to_owned(), text(user_id)),
                    ("displayName".to_owned(), text(display_name)),
                ]
                .into_iter()
                .chain(
                    picture_url
                        .as_deref()
                        .map(|url| ("pictureUrl".into(), text(url))),
                )
                .chain(
                    status_message
                        .as_deref()
                        .map(|message| ("statusMessage".into(), text(message))),
                )
                .chain(unknown_fields(unknown)),
            ),
            BodyCase::OAuthError { error, description } => {
                let description = match description {
                    Description::Absent => None,
                    Description::Null => Some(Value::Null),
                    Description::Line(index) => {
                        Some(text(LINE_DESCRIPTIONS[index % LINE_DESCRIPTIONS.len()].0))
                    }
                    Description::Unrecognised(description) => Some(text(description)),
                };
                object([("error".to_owned(), text(error))].into_iter().chain(
                    description.map(|description| ("error_description".into(), description)),
                ))
            }
            BodyCase::Message(message) => object([("message".to_owned(), text(message))]),
            BodyCase::Html(page) => format!("<html><body>{page}</body></html>").into_bytes(),
            BodyCase::Truncated { client_id, keep } => {
                let mut body = verification_body(&ScopeField::Absent, client_id, 1, &[]);
                body.truncate(keep % body.len());
                body
            }
            BodyCase::NotUtf8(bytes) => [&[0xff][..], bytes].concat(),
        }
    }
}

/// What a judge decided, in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Verified {
        scopes: Vec<String>,
        client_id: String,
        expires_in: i64,
    },
    Profile {
        user_id: String,
        display_name: String,
        picture_url: Option<String>,
        status_message: Option<String>,
    },
    Invalid(InvalidReason),
    InsufficientScope(String),
    /// Unavailable: LINE answered a status that is no verdict (and named no wait).
    UnavailableStatus(StatusCode),
    /// Unavailable: the body is not the documented JSON.
    UnavailableBody,
    Unexpected(String),
}

fn refusal(error: LineAuthError) -> Verdict {
    match error {
        LineAuthError::InvalidToken(reason) => Verdict::Invalid(reason),
        LineAuthError::InsufficientScope { required } => {
            Verdict::InsufficientScope(required.to_string())
        }
        LineAuthError::Unavailable(UpstreamError::Status {
            status,
            retry_after: None,
        }) => Verdict::UnavailableStatus(status),
        LineAuthError::Unavailable(UpstreamError::InvalidBody(_)) => Verdict::UnavailableBody,
        other => Verdict::Unexpected(format!("{other:?}")),
    }
}

/// [`judge_verify`]'s decision.
pub(crate) fn verify_verdict(status: StatusCode, body: &[u8]) -> Verdict {
    match judge_verify(&Answer::new(status, body)) {
        Ok(verification) => Verdict::Verified {
            scopes: verification.scopes().map(str::to_owned).collect(),
            client_id: verification.client_id,
            expires_in: verification.expires_in,
        },
        Err(error) => refusal(error),
    }
}

/// [`judge_profile`]'s decision.
pub(crate) fn profile_verdict(status: StatusCode, body: &[u8]) -> Verdict {
    match judge_profile(&Answer::new(status, body)) {
        Ok(profile) => Verdict::Profile {
            user_id: profile.user_id,
            display_name: profile.display_name,
            picture_url: profile.picture_url,
            status_message: profile.status_message,
        },
        Err(error) => refusal(error),
    }
}

impl AnswerCase {
    /// Fact sheet §3.1: 200 with the documented JSON is the grant, 400 with an OAuth error the
    /// token's refusal (its reason read from the description), as is a 401 in either of LINE's
    /// error shapes (the call names no client); any other status, or a body out of spec,
    /// leaves LINE unavailable.
    pub(crate) fn expected_verify(&self) -> Verdict {
        match (self.status.as_u16(), &self.body) {
            (
                200,
                BodyCase::Verification {
                    scope,
                    client_id,
                    expires_in,
                    ..
                },
            ) => Verdict::Verified {
                scopes: match scope {
                    ScopeField::Scopes(scopes) => scopes.clone(),
                    ScopeField::Absent | ScopeField::Null => Vec::new(),
                },
                client_id: client_id.clone(),
                expires_in: *expires_in,
            },
            (400 | 401, BodyCase::OAuthError { description, .. }) => {
                Verdict::Invalid(description.reason())
            }
            (401, BodyCase::Message(_)) => Verdict::Invalid(InvalidReason::Rejected),
            (200, _) => Verdict::UnavailableBody,
            _ => Verdict::UnavailableStatus(self.status),
        }
    }

    /// Fact sheet §3.2: 200 with the documented JSON is the profile (a user ID, never empty, of
    /// visible ASCII only); 401 (whatever the body), or 400 with an OAuth error, the token went
    /// bad; 403 the `profile` scope is missing; anything else is unavailable.
    pub(crate) fn expected_profile(&self) -> Verdict {
        match (self.status.as_u16(), &self.body) {
            (
                200,
                BodyCase::Profile {
                    user_id,
                    display_name,
                    picture_url,
                    status_message,
                    ..
                },
            ) if !user_id.is_empty() && user_id.bytes().all(|byte| byte.is_ascii_graphic()) => {
                Verdict::Profile {
                    user_id: user_id.clone(),
                    display_name: display_name.clone(),
                    picture_url: picture_url.clone(),
                    status_message: status_message.clone(),
                }
            }
            (200, _) => Verdict::UnavailableBody,
            (401, _) | (400, BodyCase::OAuthError { .. }) => {
                Verdict::Invalid(InvalidReason::Rejected)
            }
            (403, _) => Verdict::InsufficientScope("profile".to_owned()),
            _ => Verdict::UnavailableStatus(self.status),
        }
    }

    fn read(input: &mut Input<'_>) -> Self {
        let status = match input.below(8) {
            0 | 1 => 200,
            2 => 400,
            3 => 401,
            4 => 403,
            5 => 429,
            6 => 500 + input.below(100) as u16,
            _ => 100 + input.below(400) as u16,
        };
        let body = match input.below(12) {
            0..=2 => BodyCase::Verification {
                scope: match input.below(4) {
                    0 => ScopeField::Absent,
                    1 => ScopeField::Null,
                    _ => ScopeField::Scopes(
                        (0..input.below(4))
                            .map(|_| input.word(SCOPE_CHARS))
                            .collect(),
                    ),
                },
                client_id: input.text(),
                expires_in: input.i64(),
                unknown: input.unknown_fields(),
            },
            3..=5 => BodyCase::Profile {
                user_id: input.text(),
                display_name: input.text(),
                picture_url: input.maybe_text(),
                status_message: input.maybe_text(),
                unknown: input.unknown_fields(),
            },
            6..=8 => BodyCase::OAuthError {
                error: input.text(),
                description: match input.below(4) {
                    0 => Description::Absent,
                    1 => Description::Null,
                    2 => Description::Line(input.below(LINE_DESCRIPTIONS.len())),
                    _ => Description::Unrecognised(input.chars(UNRECOGNISED_CHARS, 0)),
                },
            },
            9 => BodyCase::Message(input.text()),
            10 => match input.below(3) {
                0 => BodyCase::Html(input.text()),
                1 => BodyCase::Truncated {
                    client_id: input.text(),
                    keep: input.below(256),
                },
                _ => BodyCase::NotUtf8(input.bytes(64).to_vec()),
            },
            _ => BodyCase::NumericClientId {
                client_id: input.i64().unsigned_abs(),
                expires_in: input.i64(),
            },
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        Self { status, body }
    }
}

/// Reads fuzzer bytes as choices; past the end every byte reads as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&first, rest)) => {
                self.0 = rest;
                first
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn bytes(&mut self, max: usize) -> &[u8] {
        let len = self.below(max + 1).min(self.0.len());
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        taken
    }

    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(std::array::from_fn(|_| self.byte()))
    }

    /// Any text, from up to 32 bytes read as (lossy) UTF-8.
    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes(32)).into_owned()
    }

    fn maybe_text(&mut self) -> Option<String> {
        (self.byte() & 1 == 1).then(|| self.text())
    }

    /// Up to 32 characters of `charset`, at least `min`.
    fn chars(&mut self, charset: &[u8], min: usize) -> String {
        let mut chosen: Vec<u8> = self
            .bytes(32)
            .iter()
            .map(|&b| charset[usize::from(b) % charset.len()])
            .collect();
        while chosen.len() < min {
            chosen.push(charset[0]);
        }
        String::from_utf8_lossy(&chosen).into_owned()
    }

    fn word(&mut self, charset: &[u8]) -> String {
        self.chars(charset, 1)
    }

    /// A b64token of 2 or more body bytes and 0 to 2 `=`.
    fn b64token(&mut self) -> String {
        let mut token = self.chars(B64TOKEN_BYTES, 2);
        token.push_str(&"=".repeat(self.below(3)));
        token
    }

    fn unknown_fields(&mut self) -> Vec<(String, String)> {
        (0..self.below(3))
            .map(|_| (self.text(), self.text()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_accept_seed_inputs() {
        for seed in [
            &b""[..],
            b"\x01\x01\x04\x00\x07\x03",
            b"\x00\x01\x01\x00\x09abc\x03",
            b"\x01\x00\x00\x07\x03\x05abcde\x02",
            &[0xff; 64],
        ] {
            super::bearer_header(seed);
            super::line_answers(seed);
        }
    }
}
