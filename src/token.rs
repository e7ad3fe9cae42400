//! Bearer-token extraction (RFC 6750 §2.1) and the two forms of a token the layer keeps: the
//! keyed [`CacheKey`] of the in-memory cache, and the SHA-256 [`TokenDigest`] of everything else.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::OnceLock;

use http::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};

use crate::rejection::{LineAuthError, MalformedReason};

/// Longest bearer token accepted, in bytes. LINE's access tokens are a few hundred bytes and their
/// length is undocumented, so this leaves generous room while refusing abuse.
pub const MAX_TOKEN_LEN: usize = 2048;

/// Where the request stands on bearer credentials. Its `Debug` does not show the token.
#[derive(PartialEq, Eq)]
pub(crate) enum Credentials<T> {
    /// No `Authorization` header at all.
    Absent,
    /// An `Authorization` header with some other scheme (`Basic …`): not ours to judge.
    OtherScheme,
    /// A bearer token: checked whole as `&str`, or within its length only as `&[u8]`.
    Bearer(T),
}

impl<T> fmt::Debug for Credentials<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Absent => f.write_str("Absent"),
            Credentials::OtherScheme => f.write_str("OtherScheme"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Reads the bearer token from `Authorization`, per RFC 6750 §2.1:
/// `credentials = "Bearer" 1*SP b64token`, the scheme matched case-insensitively.
///
/// More than one `Authorization` header, an empty one, an empty token, a byte outside the
/// b64token charset or a token over [`MAX_TOKEN_LEN`] is malformed.
pub(crate) fn bearer_credentials(headers: &HeaderMap) -> Result<Credentials<&str>, LineAuthError> {
    checked(unchecked_bearer_credentials(headers)?)
}

/// [`bearer_credentials`] with the token's charset left unchecked (see [`check_charset`]): the
/// layer's hit path, where a token the verified-token cache knows needs no check.
pub(crate) fn unchecked_bearer_credentials(
    headers: &HeaderMap,
) -> Result<Credentials<&[u8]>, LineAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::Absent);
    };
    if values.next().is_some() {
        return Err(LineAuthError::Malformed(MalformedReason::MultipleHeaders));
    }
    parse_unchecked_bearer(value.as_bytes())
}

/// The bearer token in a request's `Authorization` header (RFC 6750 §2.1): `Ok(None)` when
/// there is none (no `Authorization` header, or another scheme), an error when it is malformed.
///
/// It reads `Authorization` only, whatever [`token_sources`](crate::LineAuthLayer::token_sources)
/// the layer reads. A handler that needs the token the layer verified, e.g. to
/// [`logout`](crate::LineAuthHandle::logout), takes [`VerifiedToken`](crate::VerifiedToken):
/// with a cookie or a custom header, this function finds nothing, and such a logout would
/// revoke nothing.
///
/// ```
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "Bearer abc.def".parse().unwrap());
/// assert_eq!(line_auth::bearer_token(&headers).unwrap(), Some("abc.def"));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, LineAuthError> {
    match bearer_credentials(headers)? {
        Credentials::Bearer(token) => Ok(Some(token)),
        Credentials::Absent | Credentials::OtherScheme => Ok(None),
    }
}

/// Parses one `Authorization` header value, as [`bearer_credentials`] does. For tests and
/// fuzzers.
#[cfg(any(fuzzing, test))]
pub(crate) fn parse_bearer(value: &[u8]) -> Result<Credentials<&str>, LineAuthError> {
    checked(parse_unchecked_bearer(value)?)
}

/// One `Authorization` value as [`bearer_credentials`] reads it, the token's charset left
/// unchecked.
fn parse_unchecked_bearer(value: &[u8]) -> Result<Credentials<&[u8]>, LineAuthError> {
    const SCHEME: &[u8] = b"bearer";
    // The scheme is what precedes the first space: "bearer" has none, so it is ours exactly when
    // the value starts with it and a space or nothing follows.
    match value.split_at_checked(SCHEME.len()) {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case(SCHEME) && matches!(rest.first(), None | Some(b' ')) =>
        {
            check_length(trim_ows(rest)).map(Credentials::Bearer)
        }
        // Credentials start with a scheme (RFC 7235 §2.1): a value with none is malformed, not
        // another scheme's. (Checked here, off the path of a bearer token.)
        _ if value.trim_ascii().is_empty() => Err(LineAuthError::Malformed(MalformedReason::Empty)),
        _ => Ok(Credentials::OtherScheme),
    }
}

/// `credentials` with its token's charset checked.
fn checked(credentials: Credentials<&[u8]>) -> Result<Credentials<&str>, LineAuthError> {
    Ok(match credentials {
        Credentials::Bearer(token) => Credentials::Bearer(check_charset(token)?),
        Credentials::Absent => Credentials::Absent,
        Credentials::OtherScheme => Credentials::OtherScheme,
    })
}

/// A token as found in any source: non-empty, at most [`MAX_TOKEN_LEN`] bytes, and in RFC 6750's
/// b64token charset (which keeps `&`, `#`, `%`, spaces and controls out of LINE's verify URL).
pub(crate) fn validate_token(token: &[u8]) -> Result<&str, LineAuthError> {
    check_charset(check_length(token)?)
}

/// The first half of [`validate_token`]: non-empty and at most [`MAX_TOKEN_LEN`] bytes, which
/// also bounds what hashing the token costs.
pub(crate) fn check_length(token: &[u8]) -> Result<&[u8], LineAuthError> {
    if token.is_empty() {
        return Err(LineAuthError::Malformed(MalformedReason::Empty));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(LineAuthError::Malformed(MalformedReason::TooLong));
    }
    Ok(token)
}

/// The second half of [`validate_token`]: the b64token charset, and so the token as text.
///
/// The layer leaves this to the verified-token cache's miss path. A hit needs no check: the
/// cache holds only tokens that passed it, and a hit means the bytes are those of a cached
/// token, as surely as it means that token's verdict applies (a [`CacheKey`] collision would be
/// a forged token passing as another's, which the cache's safety rests on not happening).
/// Every other token is checked before anything but its key is computed from it.
pub(crate) fn check_charset(token: &[u8]) -> Result<&str, LineAuthError> {
    if !is_b64token(token) {
        return Err(LineAuthError::Malformed(MalformedReason::InvalidCharacters));
    }
    // Every byte is ASCII (checked just above), so this cannot fail.
    std::str::from_utf8(token)
        .map_err(|_| LineAuthError::Malformed(MalformedReason::InvalidCharacters))
}

/// Strips the spaces between scheme and token, and optional whitespace at the end.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |last| last + 1);
    &bytes[start..end.max(start)]
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750 §2.1).
fn is_b64token(token: &[u8]) -> bool {
    let body_len = token.len() - token.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &token[..body_len];
    // Every byte of every token passes here, so it is checked 16 at a time with no early exit
    // (one vector pass per block); the bytes past the last whole block are checked as the
    // body's last 16 bytes, overlapping the block before them, or, in a body shorter than 16,
    // padded with a letter, rather than a byte at a time.
    let (blocks, rest) = body.as_chunks::<16>();
    let last = match body.last_chunk::<16>() {
        Some(last) => *last,
        None => {
            let mut padded = [b'a'; 16];
            padded[..rest.len()].copy_from_slice(rest);
            padded
        }
    };
    // One verdict per lane, combined across blocks and reduced once: a vector AND per block.
    let lanes = blocks.iter().fold([true; 16], and_b64token_lanes);
    let lanes = and_b64token_lanes(lanes, &last);
    !body.is_empty() & lanes.iter().fold(true, |valid, &lane| valid & lane)
}

/// `lanes`, each kept only where its byte of `block` may appear in a b64token before its padding.
#[inline(always)]
fn and_b64token_lanes(mut lanes: [bool; 16], block: &[u8; 16]) -> [bool; 16] {
    for (lane, &b) in lanes.iter_mut().zip(block) {
        *lane &= is_b64token_byte(b);
    }
    lanes
}

/// Whether `b` may appear in a b64token before its padding; branch-free, so it vectorizes.
/// Two ranges and three bytes: `-` `.` `/` and the digits are the contiguous `0x2D..=0x39`.
#[inline(always)]
fn is_b64token_byte(b: u8) -> bool {
    // Setting bit 5 folds ASCII capitals onto lowercase and moves no other byte into a..=z.
    let folded = b | 0x20;
    (folded.wrapping_sub(b'a') <= b'z' - b'a')
        | (b.wrapping_sub(b'-') <= b'9' - b'-')
        | (b == b'+')
        | (b == b'_')
        | (b == b'~')
}

/// The in-memory verified-token cache's key for a token: SipHash-1-3 with 128-bit output, under a
/// 128-bit key drawn at random once per process. Computed on every request, so it is what a cache
/// hit pays instead of SHA-256 (~55 ns against ~150 ns for a 151-byte token on the 2-vCPU VM).
///
/// Why a keyed PRF is as safe here as SHA-256 was:
///
/// - **No raw token is stored.** The cache keeps 128 bits of PRF output, from which the token
///   cannot be recovered (LINE's tokens are long random strings, and the key is secret).
/// - **A collision needs the key.** Two tokens with one key would share a verdict, so a forged
///   token colliding with a cached one would pass as that user. Without the key the outputs are
///   indistinguishable from random: an attacker sending `q` tokens against `n` cached ones
///   collides with probability about `q·n / 2^128` (2^-60 for a trillion tokens against a
///   million entries). The key lives only in this process's memory; whoever reads that memory
///   can read the channel secret and the tokens in flight as well.
/// - **No hash flooding.** The cache's table places entries by those bits as they are (see
///   [`halves`](Self::halves)), which an attacker without the key cannot aim either.
/// - **Per process.** The key never leaves the process, so nothing else may depend on it: what
///   is shared with other replicas (Redis keys, invalidations), the single flights, sign-outs,
///   the refused-token cache and log fields all use [`TokenDigest`], computed on the miss path.
///
/// The key comes from std's [`RandomState`](std::collections::hash_map::RandomState), which
/// std seeds per process from the operating system's secure randomness (`getrandom(2)` on
/// Linux) for `HashMap`'s HashDoS resistance: no extra dependency, and no reading of
/// `/dev/urandom` by hand. Two of its hashes of fixed inputs make the 128-bit SipHash key; they
/// are SipHash outputs under std's own secret 128-bit key, so as unpredictable as it is.
/// SipHash comes from the `siphasher` crate (a small, dependency-free, widely used
/// implementation with the reference test vectors) rather than hand-written rounds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u64; 2]);

impl CacheKey {
    #[inline]
    pub(crate) fn of(token: &[u8]) -> Self {
        let (k0, k1) = *process_key();
        let hash = siphasher::sip128::SipHasher13::new_with_keys(k0, k1).hash(token);
        Self([hash.h1, hash.h2])
    }

    /// The key's two 64-bit words: uniform, so the cache's table places entries by them as
    /// they are.
    #[inline]
    pub(crate) fn halves(&self) -> (u64, u64) {
        (self.0[0], self.0[1])
    }

    /// A key made of two chosen words: tests place entries in the cache's table exactly.
    #[cfg(test)]
    pub(crate) fn from_halves(first: u64, second: u64) -> Self {
        Self([first, second])
    }
}

/// The per-process SipHash key of [`CacheKey`].
fn process_key() -> &'static (u64, u64) {
    static KEY: OnceLock<(u64, u64)> = OnceLock::new();
    KEY.get_or_init(|| {
        let random = std::collections::hash_map::RandomState::new();
        (
            random.hash_one(0x6c69_6e65_2d61_7574_u64),
            random.hash_one(0x6361_6368_652d_6b65_u64),
        )
    })
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

/// Both forms of a token in hand: its [`CacheKey`] and its [`TokenDigest`] (the miss path).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenIds {
    pub(crate) key: CacheKey,
    pub(crate) digest: TokenDigest,
}

impl TokenIds {
    pub(crate) fn of(token: &str) -> Self {
        Self {
            key: CacheKey::of(token.as_bytes()),
            digest: TokenDigest::of(token),
        }
    }
}

/// SHA-256 of an access token: its name everywhere but the in-memory verified-token cache (the
/// shared cache's key and invalidations, single flights, sign-outs, the refused-token cache, log
/// fields), so the raw token is never stored. Computed on the miss path, and on a hit only for
/// its TRACE span, where that is enabled (`trace_settled` in `verify`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub(crate) fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest's bytes (what the shared cache's signatures cover).
    #[cfg(feature = "redis")]
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first bytes as hex, enough to correlate log lines without identifying the token.
    pub(crate) fn short_hex(&self) -> ShortHex<'_> {
        ShortHex(&self.0[..4])
    }

    /// The whole digest as lowercase hex: the shared cache's key and invalidation message.
    #[cfg(feature = "redis")]
    pub(crate) fn hex(&self) -> ShortHex<'_> {
        ShortHex(&self.0)
    }

    /// Reads back [`hex`](Self::hex); `None` unless it is exactly 64 hex digits.
    #[cfg(feature = "redis")]
    pub(crate) fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(digest))
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenDigest({}…)", self.short_hex())
    }
}

/// Hex rendering of a digest (or its prefix, for log fields).
pub(crate) struct ShortHex<'a>(&'a [u8]);

impl fmt::Display for ShortHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// [`std::hash::BuildHasher`] for maps keyed by [`TokenDigest`] (refusals, sign-outs, flights,
/// the fleet's index): the standard library's SipHash-1-3 under random keys, one per map.
///
/// Not the digest's own bytes, uniform as they are: a table indexes by some twenty of its bits,
/// and tokens whose SHA-256 digests agree in twenty bits take an attacker about a million hashes
/// to find, enough to pile junk tokens into one bucket. These maps are off the hit path.
pub(crate) type DigestHashBuilder = std::hash::RandomState;

/// An access token on its way to LINE. Its `Debug` never shows the value.
#[derive(Clone)]
pub(crate) struct AccessToken(Box<str>);

impl AccessToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(token.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn parse(value: &str) -> Result<Credentials<&str>, LineAuthError> {
        parse_bearer(value.as_bytes())
    }

    #[test]
    fn credentials_debug_does_not_show_the_token() {
        let shown = format!("{:?}", parse("Bearer s3cr3t.t0ken").unwrap());
        assert_eq!(shown, "Bearer(<redacted>)");
        assert_eq!(format!("{:?}", parse("Basic abc").unwrap()), "OtherScheme");
    }

    fn malformed(value: &str) -> MalformedReason {
        match parse(value) {
            Err(LineAuthError::Malformed(reason)) => reason,
            other => panic!("expected a malformed-token error for {value:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_digest_maps_hash_is_keyed_so_chosen_digests_cannot_be_aimed_at_one_bucket() {
        // Finding tokens whose SHA-256 digests agree in the ~20 bits a table indexes by takes
        // an attacker about a million hashes: cheap. Keyed, those bits cannot be aimed at.
        let digest = TokenDigest::of("token");
        let (one, other) = (DigestHashBuilder::default(), DigestHashBuilder::default());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.0[..8]);
        assert_ne!(one.hash_one(digest), u64::from_ne_bytes(first));
        assert_ne!(
            one.hash_one(digest),
            other.hash_one(digest),
            "one key per map"
        );
        assert_eq!(one.hash_one(digest), one.hash_one(TokenDigest::of("token")));
    }

    #[cfg(feature = "redis")]
    #[test]
    fn digest_hex_round_trips_and_rejects_anything_else() {
        let digest = TokenDigest::of("token");
        let hex = digest.hex().to_string();
        assert_eq!(hex.len(), 64);
        assert!(TokenDigest::from_hex(&hex) == Some(digest));
        assert!(TokenDigest::from_hex(&hex[..62]).is_none());
        assert!(TokenDigest::from_hex(&format!("+f{}", &hex[2..])).is_none());
        assert!(TokenDigest::from_hex(&format!("zz{}", &hex[2..])).is_none());
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            assert_eq!(
                parse(&format!("{scheme} abc")).unwrap(),
                Credentials::Bearer("abc")
            );
        }
    }

    #[test]
    fn b64token_charset_including_padding_is_accepted() {
        let token = "eyJhbGciOiJIUzI1NiJ9.a-b_c~d+e/f==";
        assert_eq!(
            parse(&format!("Bearer {token}")).unwrap(),
            Credentials::Bearer(token)
        );
    }

    #[test]
    fn the_block_wise_check_reads_every_byte_of_every_length() {
        // Lengths around the 16-byte blocks: short bodies (padded), whole blocks, and tails
        // checked as an overlapping last block.
        let alphabet = b"ABCxyz0189-._~+/";
        for len in 1..=50 {
            let body: Vec<u8> = (0..len).map(|i| alphabet[i % alphabet.len()]).collect();
            for padding in 0..=2 {
                let mut token = body.clone();
                token.extend(std::iter::repeat_n(b'=', padding));
                assert!(is_b64token(&token), "length {len}, padding {padding}");
                for at in 0..len {
                    for foreign in [b'&', b' ', b'=', b'%', 0x80, 0xff] {
                        if foreign == b'=' && at == len - 1 {
                            continue; // more padding, not a foreign byte
                        }
                        let mut bad = token.clone();
                        bad[at] = foreign;
                        assert!(!is_b64token(&bad), "{foreign:#x} at {at} of {len}");
                    }
                }
            }
        }
        assert!(!is_b64token(b""));
        assert!(!is_b64token(b"="));
        assert!(!is_b64token(&[b'='; 40]));
    }

    #[test]
    fn extra_spaces_around_the_token_are_tolerated() {
        assert_eq!(parse("Bearer   abc  ").unwrap(), Credentials::Bearer("abc"));
    }

    #[test]
    fn only_spaces_separate_the_scheme_from_the_token() {
        // RFC 6750 §2.1: `"Bearer" 1*SP b64token`. A tab does not end the scheme's word, so
        // the value is some other scheme; a tab after the space is part of the token.
        assert_eq!(parse("Bearer\tabc").unwrap(), Credentials::OtherScheme);
        assert_eq!(
            malformed("Bearer \tabc"),
            MalformedReason::InvalidCharacters
        );
        // Trailing whitespace (spaces or tabs) is not part of the token.
        assert_eq!(parse("Bearer abc \t").unwrap(), Credentials::Bearer("abc"));
    }

    #[test]
    fn other_schemes_are_not_bearer() {
        assert_eq!(
            parse("Basic dXNlcjpwYXNz").unwrap(),
            Credentials::OtherScheme
        );
        assert_eq!(parse("Bearerx abc").unwrap(), Credentials::OtherScheme);
        assert_eq!(parse("Token").unwrap(), Credentials::OtherScheme);
    }

    #[test]
    fn empty_token_is_malformed() {
        assert_eq!(malformed("Bearer"), MalformedReason::Empty);
        assert_eq!(malformed("Bearer    "), MalformedReason::Empty);
    }

    #[test]
    fn characters_outside_b64token_are_malformed() {
        for bad in [
            "a b", "a&b=c", "a#b", "a%41", "a,b", "==abc", "abc=def", "\"abc\"", "a\tb",
        ] {
            assert_eq!(
                malformed(&format!("Bearer {bad}")),
                MalformedReason::InvalidCharacters,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn non_ascii_bytes_are_malformed() {
        assert_eq!(
            parse_bearer(b"Bearer abc\xff").unwrap_err().to_string(),
            LineAuthError::Malformed(MalformedReason::InvalidCharacters).to_string()
        );
    }

    #[test]
    fn overlong_token_is_malformed() {
        let at_limit = "a".repeat(MAX_TOKEN_LEN);
        assert!(parse(&format!("Bearer {at_limit}")).is_ok());
        assert_eq!(
            malformed(&format!("Bearer {at_limit}a")),
            MalformedReason::TooLong
        );
    }

    #[test]
    fn two_authorization_headers_are_malformed() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(
            bearer_credentials(&headers),
            Err(LineAuthError::Malformed(MalformedReason::MultipleHeaders))
        ));
    }

    #[test]
    fn no_header_is_absent() {
        assert_eq!(
            bearer_credentials(&HeaderMap::new()).unwrap(),
            Credentials::Absent
        );
    }

    #[test]
    fn cache_key_is_stable_in_a_process_and_tells_tokens_apart() {
        assert!(CacheKey::of(b"token") == CacheKey::of(b"token"));
        assert!(CacheKey::of(b"token") != CacheKey::of(b"token2"));
        assert!(CacheKey::of(b"") != CacheKey::of(b"a"));
        assert_eq!(format!("{:?}", CacheKey::of(b"secret")), "CacheKey(..)");
    }

    #[test]
    fn digest_debug_shows_only_a_prefix() {
        let digest = TokenDigest::of("secret-token");
        let shown = format!("{digest:?}");
        assert!(
            shown.starts_with("TokenDigest(") && shown.len() < 30,
            "{shown}"
        );
    }

    #[test]
    fn access_token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", AccessToken::new("secret-token")),
            "AccessToken(<redacted>)"
        );
    }

    #[test]
    fn byte_classifier_matches_the_rfc_charset_for_every_byte() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token_byte(b), expected, "byte {b:#04x}");
        }
    }

    mod properties {
        use super::*;
        use crate::fuzzing::{
            header_answer, HeaderAnswer, HeaderCase, Scheme, Separator, TokenPart, Trailing,
            OTHER_SCHEMES,
        };
        use proptest::prelude::*;

        fn b64token() -> impl Strategy<Value = String> {
            let body = proptest::collection::vec(
                proptest::sample::select(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
                        .to_vec(),
                ),
                1..300,
            );
            (body, 0..3usize).prop_map(|(body, padding)| {
                let mut token = String::from_utf8(body).unwrap();
                token.push_str(&"=".repeat(padding));
                token
            })
        }

        /// At least two bytes, so whitespace can go strictly inside.
        fn b64token_of_two_or_more() -> impl Strategy<Value = String> {
            b64token().prop_filter("two bytes or more", |token| token.len() >= 2)
        }

        /// `Authorization` values described by their parts, weighted towards the bearer scheme
        /// so every answer (token, other scheme, each malformed reason) comes up often.
        fn header_case() -> impl Strategy<Value = HeaderCase> {
            let scheme = prop_oneof![
                3 => Just(Scheme::Bearer { uppercase: 0b000001 }), // Bearer
                1 => Just(Scheme::Bearer { uppercase: 0 }),        // bearer
                1 => Just(Scheme::Bearer { uppercase: 0b111111 }), // BEARER
                2 => any::<u8>().prop_map(|uppercase| Scheme::Bearer { uppercase }),
                2 => proptest::sample::select(OTHER_SCHEMES.to_vec()).prop_map(Scheme::Other),
            ];
            let separator = prop_oneof![
                6 => (1..=3usize).prop_map(Separator::Spaces),
                1 => Just(Separator::Tab),
                1 => Just(Separator::SpaceThenTab),
                1 => Just(Separator::TabThenSpace),
                1 => Just(Separator::Nothing),
            ];
            let token = prop_oneof![
                5 => b64token().prop_map(TokenPart::Valid),
                1 => Just(TokenPart::Empty),
                2 => (b64token(), any::<usize>(), any::<u8>())
                    .prop_map(|(token, at, byte)| TokenPart::ForeignByte { token, at, byte }),
                1 => (b64token(), any::<usize>(), any::<char>())
                    .prop_map(|(token, at, ch)| TokenPart::NonAsciiChar { token, at, ch }),
                1 => (b64token_of_two_or_more(), any::<usize>(), any::<bool>())
                    .prop_map(|(token, at, tab)| TokenPart::InnerWhitespace { token, at, tab }),
                1 => (b64token(), any::<usize>())
                    .prop_map(|(token, at)| TokenPart::MisplacedPadding { token, at }),
                1 => (0..64usize).prop_map(|extra| TokenPart::TooLong { extra }),
            ];
            let trailing = prop_oneof![
                4 => Just(Trailing::Nothing),
                2 => (1..=3usize).prop_map(Trailing::Spaces),
                1 => (1..=2usize).prop_map(Trailing::Tabs),
                1 => Just(Trailing::SpaceThenTab),
            ];
            (
                proptest::bool::weighted(0.05),
                scheme,
                separator,
                token,
                trailing,
            )
                .prop_map(|(leading_space, scheme, separator, token, trailing)| {
                    HeaderCase {
                        leading_space,
                        scheme,
                        separator,
                        token,
                        trailing,
                    }
                })
        }

        #[test]
        fn header_cases_reach_every_answer() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let mut seen = std::collections::HashSet::new();
            for _ in 0..256 {
                let case = header_case().new_tree(&mut runner).unwrap().current();
                seen.insert(match case.expected() {
                    HeaderAnswer::Bearer(_) => "bearer".to_owned(),
                    other => format!("{other:?}"),
                });
            }
            let mut seen: Vec<_> = seen.into_iter().collect();
            seen.sort();
            assert_eq!(
                seen,
                [
                    "Malformed(Empty)",
                    "Malformed(InvalidCharacters)",
                    "Malformed(TooLong)",
                    "OtherScheme",
                    "bearer"
                ]
            );
        }

        proptest! {
            #[test]
            fn every_authorization_value_gets_the_answer_its_scheme_separator_and_token_call_for(
                case in header_case(),
            ) {
                prop_assert_eq!(header_answer(&case.value()), case.expected(), "{:?}", case);
            }

            #[test]
            fn every_valid_token_is_extracted_verbatim(token in b64token(), spaces in 1..4usize) {
                let header = format!("Bearer{}{token}", " ".repeat(spaces));
                prop_assert_eq!(parse_bearer(header.as_bytes()).unwrap(), Credentials::Bearer(token.as_str()));
            }

            #[test]
            fn a_token_with_any_byte_outside_the_charset_is_malformed(
                token in b64token(),
                at in any::<prop::sample::Index>(),
                byte in any::<u8>().prop_filter("outside b64token", |b| {
                    !(b.is_ascii_alphanumeric() || b"-._~+/= \t".contains(b))
                }),
            ) {
                let mut bytes = token.into_bytes();
                let position = at.index(bytes.len());
                bytes.insert(position, byte);
                let mut header = b"Bearer ".to_vec();
                header.extend_from_slice(&bytes);
                prop_assert!(matches!(parse_bearer(&header), Err(LineAuthError::Malformed(_))));
            }
        }
    }

    #[test]
    fn bearer_token_reads_the_authorization_header_as_the_layer_does() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers).unwrap(), None);
        headers.insert(AUTHORIZATION, "Bearer abc.def".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), Some("abc.def"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), None);
        headers.insert(AUTHORIZATION, "Bearer a b".parse().unwrap());
        assert!(bearer_token(&headers).is_err());
    }

    #[test]
    fn a_token_of_padding_alone_is_malformed() {
        for header in ["Bearer =", "Bearer ==="] {
            assert!(
                matches!(
                    parse_bearer(header.as_bytes()),
                    Err(LineAuthError::Malformed(MalformedReason::InvalidCharacters))
                ),
                "{header}"
            );
        }
        assert!(parse_bearer(b"Bearer a==").is_ok());
    }

    /// A value with no scheme at all is malformed, not another scheme's (RFC 7235 §2.1).
    #[test]
    fn an_empty_value_is_malformed_and_another_scheme_is_not() {
        for empty in [&b""[..], b" ", b"\t", b"  \t "] {
            assert!(
                matches!(
                    parse_bearer(empty),
                    Err(LineAuthError::Malformed(MalformedReason::Empty))
                ),
                "{empty:?}"
            );
        }
        assert!(matches!(
            parse_bearer(b"Basic abc"),
            Ok(Credentials::OtherScheme)
        ));
    }
}
