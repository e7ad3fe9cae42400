//! Strict compact JWS (RFC 7515 §7.1) for LINE's ID tokens, and nothing more.
//!
//! LINE signs ID tokens two ways (<https://developers.line.biz/en/docs/line-login/verify-id-token/>): ES256 with a published P-256 key named by
//! `kid`, and HS256 with the channel secret. Each key verifies its own algorithm only: a P-256 key
//! never checks an HS256 signature and the secret never an ES256 one, so a header cannot choose a
//! weaker check than the key was published for. Everything else a header may say is refused:
//! any other `alg` (`none` included), `crit`, a missing `kid` on ES256.
//!
//! Why not a JOSE crate: `jsonwebtoken`'s RustCrypto backend brings `rsa` (RUSTSEC-2023-0071)
//! whatever algorithms are used, and two algorithms over `p256` and `hmac` are a page of code.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;

/// Longest ID token read, in bytes. LINE's are around 1 KiB (claims, a 64-hex-digit `kid`); the
/// bound keeps a caller of the public verifier from making it decode megabytes.
pub(crate) const MAX_ID_TOKEN_LEN: usize = 8 * 1024;

/// Bytes of an ES256 signature: `r` and `s`, 32 bytes each, big-endian (RFC 7518 §3.4).
const ES256_SIGNATURE_LEN: usize = 64;
/// Bytes of an HS256 signature: one SHA-256 output.
const HS256_SIGNATURE_LEN: usize = 32;
/// Bytes of a P-256 coordinate in a JWK (RFC 7518 §6.2.1.2).
const P256_COORDINATE_LEN: usize = 32;

/// Why a token is not a JWS this verifier accepts. Never carries any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwsError {
    /// Longer than [`MAX_ID_TOKEN_LEN`].
    #[error("the ID token is too long")]
    TooLong,
    /// Not three segments of unpadded base64url.
    #[error("the ID token is not three base64url segments")]
    NotCompact,
    /// The header is not a JSON object with a string `alg`.
    #[error("the ID token's header is not a JWS header")]
    InvalidHeader,
    /// `alg` is neither ES256 nor HS256.
    #[error("the ID token's algorithm is not ES256 or HS256")]
    UnsupportedAlgorithm,
    /// The header lists critical extensions, none of which this verifier implements.
    #[error("the ID token's header has critical extensions")]
    CriticalExtensions,
    /// An ES256 header with no `kid`: there is no key to check it with.
    #[error("the ES256 ID token names no key")]
    MissingKeyId,
    /// The signature has the wrong length for its algorithm.
    #[error("the ID token's signature has the wrong length")]
    SignatureLength,
    /// The signature does not verify with the key.
    #[error("the ID token's signature does not verify")]
    BadSignature,
}

/// The key a token's header asks for: the algorithm comes with the kind of key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyChoice {
    /// ES256 with LINE's published P-256 key of this `kid`.
    Es256 {
        /// The key's ID in LINE's key set.
        kid: String,
    },
    /// HS256 with the channel secret.
    Hs256,
}

/// A compact JWS, split and decoded, its signature not yet checked. Its `Debug` shows the key
/// choice and lengths only: the rest is the ID token itself.
pub(crate) struct Jws<'a> {
    key: KeyChoice,
    /// `header.payload` as sent: what the signature covers.
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// The protected header's fields this verifier reads; others (`typ`) are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Whether `crit` is present at all (even as `null`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, JwsError> {
    // The no-pad engine refuses `=` and non-canonical trailing bits.
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwsError::NotCompact)
}

impl std::fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jws")
            .field("key", &self.key)
            .field("signing_input_bytes", &self.signing_input.len())
            .field("payload_bytes", &self.payload.len())
            .field("signature_bytes", &self.signature.len())
            .finish()
    }
}

impl<'a> Jws<'a> {
    /// Splits and decodes `token`, refusing anything but ES256 (with a `kid`) and HS256.
    pub(crate) fn parse(token: &'a str) -> Result<Self, JwsError> {
        if token.len() > MAX_ID_TOKEN_LEN {
            return Err(JwsError::TooLong);
        }
        let mut segments = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(JwsError::NotCompact);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header_json = decode_segment(header)?;
        let payload = decode_segment(payload)?;
        let signature = decode_segment(signature)?;

        // serde reads a struct from a JSON array too; a JWS header is an object (RFC 7515 §4).
        if !header_json.trim_ascii_start().starts_with(b"{") {
            return Err(JwsError::InvalidHeader);
        }
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|_| JwsError::InvalidHeader)?;
        if header.crit {
            return Err(JwsError::CriticalExtensions);
        }
        let (key, signature_len) = match header.alg.as_str() {
            "ES256" => {
                let kid = header.kid.ok_or(JwsError::MissingKeyId)?;
                (KeyChoice::Es256 { kid }, ES256_SIGNATURE_LEN)
            }
            "HS256" => (KeyChoice::Hs256, HS256_SIGNATURE_LEN),
            _ => return Err(JwsError::UnsupportedAlgorithm),
        };
        if signature.len() != signature_len {
            return Err(JwsError::SignatureLength);
        }
        Ok(Self {
            key,
            signing_input,
            payload,
            signature,
        })
    }

    /// The key the header asks for.
    pub(crate) fn key(&self) -> &KeyChoice {
        &self.key
    }

    /// The payload, if this is an ES256 token and `key` signed it.
    pub(crate) fn verify_es256(&self, key: &VerifyingKey) -> Result<&[u8], JwsError> {
        if !matches!(self.key, KeyChoice::Es256 { .. }) {
            return Err(JwsError::UnsupportedAlgorithm);
        }
        let signature =
            Signature::from_slice(&self.signature).map_err(|_| JwsError::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &signature)
            .map_err(|_| JwsError::BadSignature)?;
        Ok(&self.payload)
    }

    /// The payload, if this is an HS256 token and `secret` signed it (compared in constant time).
    pub(crate) fn verify_hs256(&self, secret: &[u8]) -> Result<&[u8], JwsError> {
        if self.key != KeyChoice::Hs256 {
            return Err(JwsError::UnsupportedAlgorithm);
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| JwsError::BadSignature)?;
        mac.update(self.signing_input.as_bytes());
        mac.verify_slice(&self.signature)
            .map_err(|_| JwsError::BadSignature)?;
        Ok(&self.payload)
    }
}

/// A P-256 public key from a JWK's `x` and `y` (unpadded base64url, 32 bytes each), if they name
/// a point on the curve.
/// The one form of an ES256-shaped token whose signature has a high `s`: the same token with
/// `(r, n − s)`, which verifies exactly when the original does (ECDSA signatures are malleable,
/// and `p256` accepts both). `None` when the token is already in that form or is not a compact
/// JWS with a 64-byte signature.
///
/// Without it, a signed-out ID token would come back as its twin: another string, so another
/// digest, unknown to the revocation records, and as valid at LINE's key. An ID-token layer
/// names every token by this form (see `Verifier::canonical`).
pub(crate) fn low_s_form(token: &str) -> Option<String> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    if signature.len() != 86 || signing_input.matches('.').count() != 1 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(signature).ok()?;
    let signature = Signature::from_slice(&bytes).ok()?;
    let low = signature.normalize_s();
    if low.to_bytes() == signature.to_bytes() {
        return None;
    }
    Some(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(low.to_bytes())
    ))
}

pub(crate) fn p256_key(x: &str, y: &str) -> Option<VerifyingKey> {
    let (x, y) = (decode_segment(x).ok()?, decode_segment(y).ok()?);
    if x.len() != P256_COORDINATE_LEN || y.len() != P256_COORDINATE_LEN {
        return None;
    }
    // SEC1 uncompressed point: 0x04, x, y.
    let mut point = Vec::with_capacity(1 + 2 * P256_COORDINATE_LEN);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    VerifyingKey::from_sec1_bytes(&point).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;

    const SECRET: &[u8] = b"channel-secret";

    fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn signing_key() -> SigningKey {
        SigningKey::from_slice(&[7; 32]).unwrap()
    }

    /// `header.payload.signature` with `header` as given, signed as ES256 by [`signing_key`].
    fn es256_token(header: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(r#"{"sub":"U1"}"#));
        let signature: Signature = signing_key().sign(input.as_bytes());
        format!("{input}.{}", b64(signature.to_bytes()))
    }

    /// `header.payload.signature` with `header` as given, signed as HS256 with [`SECRET`].
    fn hs256_token(header: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(r#"{"sub":"U1"}"#));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(mac.finalize().into_bytes()))
    }

    fn verifying_key() -> VerifyingKey {
        *signing_key().verifying_key()
    }

    #[test]
    fn debug_shows_no_part_of_the_token() {
        let token = es256_token(r#"{"typ":"JWT","alg":"ES256","kid":"k1"}"#);
        let shown = format!("{:?}", Jws::parse(&token).unwrap());
        for part in token.split('.') {
            assert!(!shown.contains(&part[..12]), "{shown}");
        }
        assert!(!shown.contains("U1"), "{shown}");
        assert!(
            shown.starts_with("Jws") && shown.contains("k1") && shown.contains("payload_bytes"),
            "the key choice and the lengths are shown: {shown}"
        );
    }

    #[test]
    fn an_es256_token_verifies_with_its_key_and_yields_the_payload() {
        let token = es256_token(r#"{"typ":"JWT","alg":"ES256","kid":"k1"}"#);
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.key(), &KeyChoice::Es256 { kid: "k1".into() });
        assert_eq!(
            jws.verify_es256(&verifying_key()).unwrap(),
            br#"{"sub":"U1"}"#
        );
    }

    #[test]
    fn an_es256_token_fails_with_another_key() {
        let token = es256_token(r#"{"alg":"ES256","kid":"k1"}"#);
        let other = *SigningKey::from_slice(&[9; 32]).unwrap().verifying_key();
        assert_eq!(
            Jws::parse(&token).unwrap().verify_es256(&other),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn an_hs256_token_verifies_with_the_secret_only() {
        let token = hs256_token(r#"{"typ":"JWT","alg":"HS256"}"#);
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.key(), &KeyChoice::Hs256);
        assert_eq!(jws.verify_hs256(SECRET).unwrap(), br#"{"sub":"U1"}"#);
        assert_eq!(
            jws.verify_hs256(b"another-secret"),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_fails() {
        let token = hs256_token(r#"{"alg":"HS256"}"#);
        let (head, rest) = token.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = format!("{head}.{}.{signature}", b64(r#"{"sub":"Uevil"}"#));
        assert_eq!(
            Jws::parse(&forged).unwrap().verify_hs256(SECRET),
            Err(JwsError::BadSignature)
        );
    }

    #[test]
    fn each_key_checks_its_own_algorithm_only() {
        let hs256 = hs256_token(r#"{"alg":"HS256"}"#);
        assert_eq!(
            Jws::parse(&hs256).unwrap().verify_es256(&verifying_key()),
            Err(JwsError::UnsupportedAlgorithm)
        );
        let es256 = es256_token(r#"{"alg":"ES256","kid":"k1"}"#);
        assert_eq!(
            Jws::parse(&es256).unwrap().verify_hs256(SECRET),
            Err(JwsError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn algorithms_other_than_es256_and_hs256_are_refused() {
        for alg in [
            "none", "None", "es256", "RS256", "HS512", "ES384", "PS256", "EdDSA", "",
        ] {
            let token = format!("{}.{}.", b64(format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert_eq!(
                Jws::parse(&token).unwrap_err(),
                JwsError::UnsupportedAlgorithm,
                "{alg}"
            );
        }
    }

    #[test]
    fn a_header_without_a_string_alg_is_refused() {
        for header in [
            r#"{"kid":"k1"}"#,
            r#"{"alg":null}"#,
            r#"{"alg":256}"#,
            r#"["ES256","k1",false]"#,
            r#"{"alg":"HS256","alg":"HS256"}"#,
            "not json",
        ] {
            let token = format!("{}.{}.{}", b64(header), b64("{}"), b64([0; 32]));
            assert_eq!(
                Jws::parse(&token).unwrap_err(),
                JwsError::InvalidHeader,
                "{header}"
            );
        }
    }

    #[test]
    fn a_header_with_crit_is_refused_even_when_signed() {
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"HS256","crit":null}"#,
        ] {
            assert_eq!(
                Jws::parse(&hs256_token(header)).unwrap_err(),
                JwsError::CriticalExtensions,
                "{header}"
            );
        }
    }

    #[test]
    fn an_es256_header_without_kid_is_refused() {
        for header in [r#"{"alg":"ES256"}"#, r#"{"alg":"ES256","kid":null}"#] {
            assert_eq!(
                Jws::parse(&es256_token(header)).unwrap_err(),
                JwsError::MissingKeyId,
                "{header}"
            );
        }
    }

    #[test]
    fn anything_but_three_segments_is_refused() {
        let token = hs256_token(r#"{"alg":"HS256"}"#);
        let (head, rest) = token.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        for malformed in [
            format!("{head}.{payload}"),
            format!("{head}.{payload}.{signature}.{signature}"),
            format!("{head}.{payload}.{signature}."),
            head.to_owned(),
            String::new(),
        ] {
            assert_eq!(
                Jws::parse(&malformed).unwrap_err(),
                JwsError::NotCompact,
                "{malformed}"
            );
        }
    }

    #[test]
    fn padding_and_characters_outside_base64url_are_refused_in_every_segment() {
        let token = hs256_token(r#"{"alg":"HS256"}"#);
        let segments: Vec<&str> = token.split('.').collect();
        for index in 0..3 {
            for bad in [
                format!("{}=", segments[index]),
                format!("{}==", segments[index]),
                segments[index].replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1),
                segments[index].replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1),
                format!("{}!", segments[index]),
                // A length of 1 mod 4 is never whole bytes.
                segments[index].to_owned() + &"A".repeat((5 - segments[index].len() % 4) % 4),
            ] {
                let mut parts = segments.clone();
                parts[index] = &bad;
                assert_eq!(
                    Jws::parse(&parts.join(".")).unwrap_err(),
                    JwsError::NotCompact,
                    "segment {index}: {bad}"
                );
            }
        }
    }

    #[test]
    fn non_canonical_trailing_bits_are_refused() {
        // "e30" is `{}`; "e31" decodes to the same bytes with a stray bit set.
        let token = format!("{}.e31.{}", b64(r#"{"alg":"HS256"}"#), b64([0; 32]));
        assert_eq!(Jws::parse(&token).unwrap_err(), JwsError::NotCompact);
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_refused() {
        for (header, length) in [
            (r#"{"alg":"ES256","kid":"k1"}"#, 63),
            (r#"{"alg":"ES256","kid":"k1"}"#, 65),
            (r#"{"alg":"ES256","kid":"k1"}"#, 0),
            // A DER-encoded ECDSA signature is not a JWS one.
            (r#"{"alg":"ES256","kid":"k1"}"#, 72),
            (r#"{"alg":"HS256"}"#, 31),
            (r#"{"alg":"HS256"}"#, 64),
        ] {
            let token = format!("{}.{}.{}", b64(header), b64("{}"), b64(vec![1; length]));
            assert_eq!(
                Jws::parse(&token).unwrap_err(),
                JwsError::SignatureLength,
                "{header}: {length}"
            );
        }
    }

    #[test]
    fn an_es256_signature_with_r_or_s_zero_does_not_verify() {
        let token = es256_token(r#"{"alg":"ES256","kid":"k1"}"#);
        let (input, _) = token.rsplit_once('.').unwrap();
        for signature in [[0u8; 64], [0xff; 64]] {
            let forged = format!("{input}.{}", b64(signature));
            assert_eq!(
                Jws::parse(&forged).unwrap().verify_es256(&verifying_key()),
                Err(JwsError::BadSignature)
            );
        }
    }

    #[test]
    fn the_low_s_form_is_one_for_both_twins_and_none_for_anything_else() {
        let token = es256_token(r#"{"alg":"ES256","kid":"k1"}"#);
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).unwrap()).unwrap();
        let (r, s) = signature.split_scalars();
        let flipped = Signature::from_scalars(r.to_bytes(), (-s).to_bytes()).unwrap();
        let twin = format!("{input}.{}", URL_SAFE_NO_PAD.encode(flipped.to_bytes()));
        let (low, high) = match low_s_form(&token) {
            None => (token.clone(), twin),
            Some(_) => (twin, token.clone()),
        };
        assert_eq!(low_s_form(&low), None, "already the low form");
        assert_eq!(low_s_form(&high).as_deref(), Some(low.as_str()));
        let (_, high_signature) = high.rsplit_once('.').unwrap();
        // A high-s signature after anything but `header.payload` is no compact JWS.
        let four_segments = format!("{input}.extra.{high_signature}");
        for other in [
            "",
            "a.b",
            "a.b.c",
            "not a token",
            &format!("{input}.AAAA"),
            &four_segments,
        ] {
            assert_eq!(low_s_form(other), None, "{other}");
        }
    }

    #[test]
    fn a_high_s_signature_verifies_as_p256_allows_it() {
        // ECDSA signatures are malleable: (r, n − s) verifies too. It proves nothing new, but it
        // is another string: an ID-token layer names both by `low_s_form`, or a signed-out token
        // would come back as its twin (tests/it/revocation.rs).
        let token = es256_token(r#"{"alg":"ES256","kid":"k1"}"#);
        let (input, signature) = token.rsplit_once('.').unwrap();
        let signature = Signature::from_slice(&decode_segment(signature).unwrap()).unwrap();
        let (r, s) = signature.split_scalars();
        let flipped = Signature::from_scalars(r, -*s).unwrap();
        let other = format!("{input}.{}", b64(flipped.to_bytes()));
        assert!(Jws::parse(&other)
            .unwrap()
            .verify_es256(&verifying_key())
            .is_ok());
    }

    #[test]
    fn a_token_over_the_size_bound_is_refused_before_decoding() {
        let token = hs256_token(&format!(
            r#"{{"alg":"HS256","pad":"{}"}}"#,
            "a".repeat(MAX_ID_TOKEN_LEN)
        ));
        assert_eq!(Jws::parse(&token).unwrap_err(), JwsError::TooLong);
    }

    #[test]
    fn a_token_of_exactly_the_size_bound_is_read() {
        // Unpadded base64 is never 4k + 1 characters long; headers whose encodings differ by two
        // leave the payload a length it can have with one or the other.
        let (header, pad) = [r#"{"alg":"HS256"}"#, r#"{"alg":"HS256" }"#]
            .into_iter()
            .find_map(|header| {
                let signature = b64([0; HS256_SIGNATURE_LEN]).len();
                let payload = MAX_ID_TOKEN_LEN - b64(header).len() - signature - 2;
                (0..payload)
                    .find(|&pad| base64::encoded_len(pad, false) == Some(payload))
                    .map(|pad| (header, pad))
            })
            .unwrap();
        let input = format!("{}.{}", b64(header), b64("a".repeat(pad)));
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        let sized = format!("{input}.{}", b64(mac.finalize().into_bytes()));
        assert_eq!(sized.len(), MAX_ID_TOKEN_LEN);
        assert!(Jws::parse(&sized).is_ok());
        assert_eq!(
            Jws::parse(&format!("{sized}=")).unwrap_err(),
            JwsError::TooLong
        );
        // LINE's are around a kilobyte, and grow with their claims: one of 3 KiB is read too.
        let large = hs256_token(&format!(
            r#"{{"alg":"HS256","pad":"{}"}}"#,
            "a".repeat(2400)
        ));
        assert!(large.len() > 3 * 1024);
        assert!(Jws::parse(&large).is_ok());
    }

    #[test]
    fn a_jwk_point_must_be_two_32_byte_coordinates_on_the_curve() {
        let point = verifying_key().to_sec1_point(false);
        let (x, y) = (b64(point.x().unwrap()), b64(point.y().unwrap()));
        assert_eq!(p256_key(&x, &y), Some(verifying_key()));
        assert_eq!(p256_key(&y, &x), None, "not on the curve");
        assert_eq!(p256_key(&x, &b64([1; 31])), None, "short");
        assert_eq!(p256_key(&format!("{x}="), &y), None, "padded");
    }
}
