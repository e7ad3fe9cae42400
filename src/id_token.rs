//! Local verification of LINE ID tokens (<https://developers.line.biz/en/docs/line-login/verify-id-token/>), with no call to LINE per token.
//!
//! - **ES256** (native apps, the LINE SDK, LIFF's `liff.getIDToken()`): the signature is checked
//!   against the key from `GET /oauth2/v2.1/certs` whose `kid` matches the token's. Keys are
//!   cached; an unknown `kid`, or keys held longer than
//!   [`jwks_max_age`](crate::LineAuthConfigBuilder::jwks_max_age) (default 24 h),
//!   triggers one refetch, at most once per
//!   [`jwks_refetch_floor`](crate::LineAuthConfigBuilder::jwks_refetch_floor) (default
//!   60 s). A key LINE no longer publishes then stops verifying; while the
//!   key set cannot be fetched, the keys held are still used.
//! - **HS256** (web login): the signature is checked with the channel secret. LINE's discovery
//!   document lists only ES256, so HS256 is an explicit opt-in
//!   ([`hs256_id_tokens`](crate::LineAuthConfigBuilder::hs256_id_tokens)), for the one channel
//!   whose secret it is: an HS256 token of any other channel is refused.
//!
//! Then `iss` must be `https://access.line.me`, `aud` one of the configured channels, `exp` in the
//! future and `iat` not in the future (both within [`ID_TOKEN_LEEWAY`]), and `nonce` the expected
//! one where the app sent one.
//!
//! [`LineAuthLayer::id_tokens`](crate::LineAuthLayer::id_tokens) accepts ID tokens as bearer
//! credentials through this verifier, until `exp` itself (the layer gives no leeway past it);
//! apps can also call [`IdTokenVerifier::verify`] directly, e.g. with the nonce of a web sign-in.

// Signatures are checked by the strict compact-JWS reader in `jws`, on RustCrypto's `p256` and
// `hmac`, rather than by a JOSE crate: jsonwebtoken's RustCrypto backend pulls in `rsa`
// (RUSTSEC-2023-0071), and its header picks the algorithm, where here each key has its own.
pub(crate) mod jws;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p256::ecdsa::VerifyingKey;
use serde::Deserialize;

use crate::clock::{self, Instant};
use crate::config::{LineAuthConfig, Secret};
use crate::line_api::wire::IdTokenClaims;
use crate::line_api::{Call, Retries, Transport};
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
use crate::user::LineUser;
use jws::{Jws, KeyChoice};

/// The issuer of every LINE ID token (<https://developers.line.biz/en/reference/line-login/#verify-id-token>).
pub const ISSUER: &str = "https://access.line.me";
/// Clock-skew allowance for `exp` and `iat`. LINE's iOS SDK allows 5 minutes; one is enough
/// between servers that keep time.
pub const ID_TOKEN_LEEWAY: Duration = Duration::from_secs(60);
/// Default least time between two fetches of LINE's key set, so tokens with made-up `kid`s
/// cannot make the layer hammer `/oauth2/v2.1/certs`
/// ([`jwks_refetch_floor`](crate::LineAuthConfigBuilder::jwks_refetch_floor)).
pub(crate) const JWKS_REFETCH_FLOOR: Duration = Duration::from_secs(60);
/// Default time LINE's key set is used before it is fetched again, so that a key LINE stops
/// publishing stops verifying ([`jwks_max_age`](crate::LineAuthConfigBuilder::jwks_max_age)).
pub(crate) const JWKS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// A verified ID token: its claims, and the user they describe.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedIdToken {
    /// The token's claims.
    pub claims: IdTokenClaims,
    /// The user, as the layer hands it to handlers.
    pub user: LineUser,
}

#[derive(Deserialize)]
struct KeySet {
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    kty: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    /// Where present, the one algorithm the key is for (RFC 7517 §4.4).
    #[serde(default)]
    alg: Option<String>,
    /// Where present, what the key is for: `sig` for signatures (RFC 7517 §4.2).
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

impl KeyEntry {
    /// The `kid` and key of a P-256 signing key; `None` for any other kind of key.
    fn into_es256_key(self) -> Option<(String, VerifyingKey)> {
        let is_es256 = self.kty.as_deref() == Some("EC")
            && self.crv.as_deref() == Some("P-256")
            && self.alg.as_deref().is_none_or(|alg| alg == "ES256")
            && self.usage.as_deref().is_none_or(|usage| usage == "sig");
        if !is_es256 {
            return None;
        }
        let key = jws::p256_key(self.x.as_deref()?, self.y.as_deref()?)?;
        Some((self.kid?, key))
    }
}

/// LINE's ES256 keys by `kid`: each verifies ES256 signatures and nothing else.
type Keys = HashMap<String, VerifyingKey>;

/// Verifies LINE ID tokens locally; see the [module docs](self). Cheap to share.
///
/// While LINE's key set cannot be fetched, a token whose key is not known yet is answered with
/// [`LineAuthError::Unavailable`] (503), never as invalid; the fetch is tried again after a
/// backoff from half a second to 8 s.
pub struct IdTokenVerifier {
    channel_ids: Arc<[Box<str>]>,
    /// The channel whose HS256 tokens are accepted, and its secret.
    hs256: Option<(Box<str>, Secret)>,
    transport: Transport,
    timeout: Duration,
    refetch_floor: Duration,
    max_age: Duration,
    /// A snapshot, read without waiting: a fetch swaps in a new one.
    keys: RwLock<HeldKeys>,
    /// The last fetch's start and the fetch under way, if any. Locked only to look or to start
    /// one, never across the fetch: every verification with an unknown `kid` awaits the same
    /// shared fetch; one whose key is held only when it starts a fetch of aged keys, or
    /// finishes one whose caller left.
    refetch: Mutex<Refetch>,
}

type KeyFetch = Shared<BoxFuture<'static, Result<Arc<Keys>, LineAuthError>>>;

/// The keys held, and when they were fetched (never: none held yet).
#[derive(Default)]
struct HeldKeys {
    keys: Arc<Keys>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct Refetch {
    last_started: Option<Instant>,
    in_flight: Option<KeyFetch>,
    /// The last fetch failed: why, and when the next may start. Until then LINE counts as
    /// unavailable, not the token as invalid.
    failed: Option<(LineAuthError, Instant)>,
    failures_in_a_row: u32,
}

/// The time now in Unix seconds, as ID tokens' `exp` and `iat` count it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The wait before fetching the key set again after `failures` failures in a row: from half a
/// second, doubling, at most 8 s, well under the refetch floor that applies once keys are known.
fn fetch_backoff(failures: u32) -> Duration {
    Duration::from_millis(500) * 2u32.pow(failures.saturating_sub(1).min(4))
}

/// The failure a verification meets while the key set is not fetched again (until `retry_at`):
/// the last fetch's, telling what is left of LINE's wait where LINE named one.
fn failed_until(error: &LineAuthError, retry_at: Instant, now: Instant) -> LineAuthError {
    match error {
        LineAuthError::Unavailable(UpstreamError::Status {
            status,
            retry_after: Some(_),
        }) => {
            let left = retry_at.saturating_duration_since(now);
            // In whole seconds, rounded up: a caller waiting what it is told does not come early.
            let left = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
            LineAuthError::Unavailable(UpstreamError::Status {
                status: *status,
                retry_after: Some(left),
            })
        }
        error => error.clone(),
    }
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("channel_ids", &self.channel_ids)
            .field("certs_url", &self.transport.url(Call::KeySet).as_str())
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// A verifier for the configuration's channels, API base and channel secret.
    pub fn new(config: &LineAuthConfig) -> Self {
        Self {
            channel_ids: config.channel_ids.clone(),
            hs256: config
                .hs256_channel
                .clone()
                .zip(config.channel_secret.clone()),
            transport: Transport::new(config.http_client.clone(), config.api_base.clone()),
            timeout: config.upstream_timeout,
            refetch_floor: config.jwks_refetch_floor,
            max_age: config.jwks_max_age,
            keys: RwLock::default(),
            refetch: Mutex::default(),
        }
    }

    /// Verifies `id_token`; with `Some(nonce)`, its `nonce` claim must equal it.
    ///
    /// ```
    /// use line_auth_emulator::{IssueIdToken, LineEmulator};
    /// use line_auth::id_token::IdTokenVerifier;
    /// use line_auth::LineAuthConfig;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let line = LineEmulator::start().await?;
    /// let config = LineAuthConfig::builder()
    ///     .channel_id("1234567890")
    ///     .api_base(line.base_url())
    ///     .build()?;
    /// let verifier = IdTokenVerifier::new(&config);
    /// let id_token = line.issue_id_token(
    ///     IssueIdToken::new("1234567890", "U4af4980629aabbccddeeff0011223344").nonce("n0nce"),
    /// );
    ///
    /// let verified = verifier.verify(&id_token, Some("n0nce")).await?;
    /// assert_eq!(verified.user.user_id(), "U4af4980629aabbccddeeff0011223344");
    /// assert!(verifier.verify(&id_token, Some("another")).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn verify(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdToken, LineAuthError> {
        let invalid = || LineAuthError::InvalidToken(InvalidReason::Rejected);
        let refused = |error: jws::JwsError| {
            tracing::debug!(%error, "ID token refused");
            invalid()
        };
        let jws = Jws::parse(id_token).map_err(refused)?;
        let claims = match jws.key() {
            KeyChoice::Es256 { kid } => {
                let key = self.es256_key(kid).await?;
                self.check(jws.verify_es256(&key).map_err(refused)?, unix_now())?
            }
            KeyChoice::Hs256 => {
                let (channel, secret) = self.hs256.as_ref().ok_or_else(invalid)?;
                let claims = self.check(
                    jws.verify_hs256(secret.expose().as_bytes())
                        .map_err(refused)?,
                    unix_now(),
                )?;
                // A secret vouches for its own channel's tokens only.
                if *claims.aud != **channel {
                    return Err(invalid());
                }
                claims
            }
        };
        if nonce.is_some() && claims.nonce.as_deref() != nonce {
            return Err(invalid());
        }
        let user = LineUser::from_id_token(&claims);
        Ok(VerifiedIdToken { claims, user })
    }

    /// The claims of a payload whose signature has been checked: `exp` (then `iss`, `aud`, `iat`)
    /// as LINE's SDKs check them (<https://developers.line.biz/en/docs/line-login/verify-id-token/>),
    /// within [`ID_TOKEN_LEEWAY`] of `now` (Unix seconds).
    fn check(&self, payload: &[u8], now: u64) -> Result<IdTokenClaims, LineAuthError> {
        let rejected = || LineAuthError::InvalidToken(InvalidReason::Rejected);
        // serde reads a struct from a JSON array too; the claims are an object (RFC 7519 §7.2).
        if !payload.trim_ascii_start().starts_with(b"{") {
            return Err(rejected());
        }
        let claims: IdTokenClaims = serde_json::from_slice(payload).map_err(|_| rejected())?;
        if claims.exp.saturating_add(ID_TOKEN_LEEWAY.as_secs()) < now {
            return Err(LineAuthError::InvalidToken(InvalidReason::Expired));
        }
        if claims.iss != ISSUER {
            return Err(rejected());
        }
        // `aud` is checked apart, to tell a foreign channel from a bad token.
        if !self
            .channel_ids
            .iter()
            .any(|channel| **channel == *claims.aud)
        {
            return Err(LineAuthError::ForeignChannel);
        }
        if claims.iat > now.saturating_add(ID_TOKEN_LEEWAY.as_secs()) {
            return Err(LineAuthError::InvalidToken(InvalidReason::Rejected));
        }
        Ok(claims)
    }

    /// The key held for `kid`, if any, and whether the keys held are still young enough to be
    /// used without fetching them again.
    fn cached_key(&self, kid: &str, now: Instant) -> (Option<VerifyingKey>, bool) {
        let held = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let young = held.fetched_at.is_some_and(|at| now < at + self.max_age);
        (held.keys.get(kid).cloned(), young)
    }

    /// The ES256 key for `kid`: the one held, unless it is unknown or the keys held are older
    /// than `max_age`; then LINE's key set is fetched again (once, shared, at most once per
    /// floor), and only the verifications that need it wait for it: the one that started it, and
    /// those with a `kid` not held. While that cannot be done, a key held is still used: only a
    /// key set LINE actually published without it retires a key.
    async fn es256_key(&self, kid: &str) -> Result<VerifyingKey, LineAuthError> {
        if let (Some(key), true) = self.cached_key(kid, clock::now()) {
            return Ok(key);
        }
        let (fetch, held) = {
            let mut refetch = self.refetch.lock().unwrap_or_else(PoisonError::into_inner);
            match &refetch.in_flight {
                Some(fetch) => {
                    // Only the verification that started the fetch waits for aged keys, while
                    // the fetch has its time: after that, its caller may have left without
                    // finishing it (a fetch runs only while awaited), so this one does.
                    let now = clock::now();
                    let held = self.cached_key(kid, now).0;
                    let driven = refetch
                        .last_started
                        .is_some_and(|at| now < at + self.timeout);
                    match held {
                        Some(held) if driven => return Ok(held),
                        held => (fetch.clone(), held),
                    }
                }
                None => {
                    let now = clock::now();
                    // A fetch may have landed since the look-up above: its keys are stored
                    // before it stops being the one in flight, so they are seen here.
                    let (held, young) = self.cached_key(kid, now);
                    if let (Some(key), true) = (&held, young) {
                        return Ok(*key);
                    }
                    if let Some((error, retry_at)) = &refetch.failed {
                        if now < *retry_at {
                            return held.ok_or_else(|| failed_until(error, *retry_at, now));
                        }
                    } else if refetch
                        .last_started
                        .is_some_and(|at| now < at + self.refetch_floor)
                    {
                        if held.is_none() {
                            tracing::debug!(
                                kid,
                                "unknown kid; the keys were fetched too recently to fetch again"
                            );
                        }
                        return held.ok_or(LineAuthError::InvalidToken(InvalidReason::Rejected));
                    }
                    refetch.last_started = Some(now);
                    let fetch = fetch_keys(self.transport.clone(), self.timeout)
                        .boxed()
                        .shared();
                    refetch.in_flight = Some(fetch.clone());
                    (fetch, held)
                }
            }
        };
        let fetched = fetch.clone().await;
        {
            let mut refetch = self.refetch.lock().unwrap_or_else(PoisonError::into_inner);
            // Every waiter on one fetch gets here; the first one (whose fetch is still the one
            // under way) records its outcome, once.
            let ours = refetch
                .in_flight
                .as_ref()
                .is_some_and(|in_flight| in_flight.ptr_eq(&fetch));
            if ours {
                match &fetched {
                    Ok(keys) => {
                        // Stored while the fetch is still the one in flight, so a verification
                        // that then finds none in flight finds these keys (see above). Aged
                        // from the fetch's start: a key retired while it ran is not kept longer.
                        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = HeldKeys {
                            keys: Arc::clone(keys),
                            fetched_at: refetch.last_started,
                        };
                        refetch.failed = None;
                        refetch.failures_in_a_row = 0;
                    }
                    Err(error) => {
                        refetch.failures_in_a_row += 1;
                        // LINE's `Retry-After`, where longer: a rate-limited key set is asked
                        // again only once LINE's wait is over (issue 14), for every ID token.
                        let lines_wait = match error {
                            LineAuthError::Unavailable(cause) => cause.line_asked_to_wait(),
                            _ => None,
                        };
                        let wait = fetch_backoff(refetch.failures_in_a_row)
                            .max(lines_wait.unwrap_or_default());
                        let retry_at = clock::now() + wait;
                        refetch.failed = Some((error.clone(), retry_at));
                    }
                }
                refetch.in_flight = None;
            }
        }
        match fetched {
            Ok(keys) => keys
                .get(kid)
                .cloned()
                .ok_or(LineAuthError::InvalidToken(InvalidReason::Rejected)),
            Err(error) => held.ok_or(error),
        }
    }
}

/// `GET /oauth2/v2.1/certs`: the P-256 keys, by `kid` (<https://developers.line.biz/en/docs/line-login/verify-id-token/>). One try: a failure
/// has its own backoff across verifications (`fetch_backoff`).
async fn fetch_keys(transport: Transport, timeout: Duration) -> Result<Arc<Keys>, LineAuthError> {
    let unavailable = |error: UpstreamError| LineAuthError::Unavailable(error);
    let answer = transport
        .call(Call::KeySet, Retries::Never, clock::now() + timeout)
        .await
        .map_err(|error| match error {
            UpstreamError::InvalidBody(_) => {
                unavailable(UpstreamError::InvalidBody("the key set is too large"))
            }
            error => unavailable(error),
        })?;
    if !answer.status.is_success() {
        // The next fetch waits for the key set's own backoff, or LINE's wait where longer.
        return Err(unavailable(answer.unavailable()));
    }
    let set: KeySet = answer
        .json()
        .ok_or_else(|| unavailable(UpstreamError::InvalidBody("the key set is not a JWK set")))?;
    // Keep the P-256 keys; others (the SDK fixtures show RSA ones) cannot sign ES256.
    let keys: Keys = set
        .keys
        .into_iter()
        .filter_map(KeyEntry::into_es256_key)
        .collect();
    // A set with nothing to verify with leaves no usable key known: LINE unavailable (issue 12),
    // fetched again after the failure's backoff, and the keys held before are kept.
    if keys.is_empty() {
        return Err(unavailable(UpstreamError::InvalidBody(
            "the key set holds no P-256 signing key",
        )));
    }
    tracing::debug!(keys = keys.len(), "fetched LINE's ID-token keys");
    Ok(Arc::new(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_key_fetch_tells_what_is_left_of_lines_wait_rounded_up() {
        let now = clock::now();
        let told = |asked: Option<Duration>, left: Duration| {
            let error = LineAuthError::Unavailable(UpstreamError::Status {
                status: http::StatusCode::TOO_MANY_REQUESTS,
                retry_after: asked,
            });
            match failed_until(&error, now + left, now) {
                LineAuthError::Unavailable(UpstreamError::Status { retry_after, .. }) => {
                    retry_after
                }
                other => panic!("{other:?}"),
            }
        };
        let asked = Some(Duration::from_secs(30));
        assert_eq!(told(asked, Duration::from_millis(1_400)), Some(secs(2)));
        assert_eq!(told(asked, Duration::from_millis(400)), Some(secs(1)));
        assert_eq!(told(asked, secs(2)), Some(secs(2)), "whole seconds stay");
        assert_eq!(
            told(None, secs(2)),
            None,
            "no wait made up where LINE named none"
        );
    }

    fn secs(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn only_p256_signing_keys_for_es256_are_kept_from_the_key_set() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let point = p256::ecdsa::SigningKey::from_slice(&[7; 32])
            .unwrap()
            .verifying_key()
            .to_sec1_point(false);
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        );
        let entry = |extra: &str| {
            serde_json::from_str::<KeyEntry>(&format!(
                r#"{{"kid":"k","kty":"EC","crv":"P-256","x":"{x}","y":"{y}"{extra}}}"#
            ))
            .unwrap()
            .into_es256_key()
            .map(|(kid, _)| kid)
        };
        assert_eq!(entry(""), Some("k".to_owned()), "alg and use are optional");
        assert_eq!(entry(r#","alg":"ES256","use":"sig""#), Some("k".to_owned()));
        assert_eq!(
            entry(r#","alg":"ES384""#),
            None,
            "a key for another algorithm"
        );
        assert_eq!(entry(r#","use":"enc""#), None, "an encryption key");
    }

    /// A payload of LINE's shape for channel `1234567890`, with these `exp` and `iat`.
    fn claims(exp: u64, iat: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "iss": ISSUER,
            "sub": "U1234567890abcdef1234567890abcdef",
            "aud": "1234567890",
            "exp": exp,
            "iat": iat,
        }))
        .unwrap()
    }

    fn verifier() -> IdTokenVerifier {
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .api_base("http://127.0.0.1:9")
            .build()
            .unwrap();
        IdTokenVerifier::new(&config)
    }

    #[test]
    fn exp_and_iat_are_allowed_the_leeway_to_the_second_and_not_one_more() {
        let (verifier, now, leeway) = (verifier(), 1_800_000_000, ID_TOKEN_LEEWAY.as_secs());
        let check = |exp, iat| match verifier.check(&claims(exp, iat), now) {
            Ok(_) => "accepted",
            Err(LineAuthError::InvalidToken(InvalidReason::Expired)) => "expired",
            Err(LineAuthError::InvalidToken(InvalidReason::Rejected)) => "rejected",
            Err(other) => panic!("unexpected refusal: {other:?}"),
        };

        assert_eq!(check(now - leeway, now - 3600), "accepted");
        assert_eq!(check(now - leeway - 1, now - 3600), "expired");
        assert_eq!(check(now + 3600, now + leeway), "accepted");
        assert_eq!(
            check(now + 3600, now + leeway + 1),
            "rejected",
            "issued in the future"
        );
        assert_eq!(
            check(u64::MAX, now),
            "accepted",
            "no overflow adding the leeway"
        );
        assert_eq!(check(u64::MAX, u64::MAX), "rejected");
    }

    /// An ID token naming no one (`"sub": ""`) is refused, as one without `sub` is: never a
    /// `LineUser` whose empty ID every such caller would share.
    #[test]
    fn a_token_with_an_empty_or_no_subject_is_refused() {
        let (verifier, now) = (verifier(), 1_800_000_000);
        let mut payload: serde_json::Value =
            serde_json::from_slice(&claims(now + 60, now)).unwrap();
        assert!(verifier
            .check(&payload.to_string().into_bytes(), now)
            .is_ok());
        payload["sub"] = "".into();
        let refused = verifier.check(&payload.to_string().into_bytes(), now);
        assert!(
            matches!(
                refused,
                Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
            ),
            "{refused:?}"
        );
        payload.as_object_mut().unwrap().remove("sub");
        assert!(verifier
            .check(&payload.to_string().into_bytes(), now)
            .is_err());
    }

    /// Only LINE's issuer, exactly: not another, nor one differing by a slash or a letter's case.
    #[test]
    fn a_token_from_another_issuer_is_refused() {
        let (verifier, now) = (verifier(), 1_800_000_000);
        let mut payload: serde_json::Value =
            serde_json::from_slice(&claims(now + 60, now)).unwrap();
        for issuer in [
            "https://evil.example",
            "https://access.line.me/",
            "https://ACCESS.line.me",
            "",
        ] {
            payload["iss"] = issuer.into();
            let refused = verifier.check(&payload.to_string().into_bytes(), now);
            assert!(
                matches!(
                    refused,
                    Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
                ),
                "{issuer:?}: {refused:?}"
            );
        }
    }

    /// The claims are a JSON object (RFC 7519 §7.2), not an array of their values in order,
    /// which serde would otherwise read into the same struct.
    #[test]
    fn claims_as_an_array_are_refused() {
        let (verifier, now) = (verifier(), 1_800_000_000);
        let as_array = serde_json::json!([
            ISSUER,
            "U1234567890abcdef1234567890abcdef",
            "1234567890",
            now + 60,
            now
        ]);
        let refused = verifier.check(&as_array.to_string().into_bytes(), now);
        assert!(
            matches!(
                refused,
                Err(LineAuthError::InvalidToken(InvalidReason::Rejected))
            ),
            "{refused:?}"
        );
    }

    /// RFC 7519 §2 lets a NumericDate be fractional: `exp` and `iat` are read in whole seconds,
    /// the fraction dropped, and the leeway holds to the second as for whole ones.
    #[test]
    fn fractional_exp_and_iat_are_read_in_whole_seconds() {
        let (verifier, now, leeway) = (verifier(), 1_800_000_000, ID_TOKEN_LEEWAY.as_secs());
        let check = |exp: f64, iat: f64| {
            let payload = serde_json::json!({
                "iss": ISSUER,
                "sub": "U1234567890abcdef1234567890abcdef",
                "aud": "1234567890",
                "exp": exp,
                "iat": iat,
            });
            verifier
                .check(&payload.to_string().into_bytes(), now)
                .map(|claims| (claims.exp, claims.iat))
        };
        let (now_f, leeway_f) = (now as f64, leeway as f64);

        assert_eq!(
            check(now_f + 3600.5, now_f - 0.25).unwrap(),
            (now + 3600, now - 1)
        );
        assert!(
            check(now_f - leeway_f - 0.5, now_f - 3600.0).is_err(),
            "expired"
        );
        assert!(
            check(now_f + 3600.0, now_f + leeway_f + 1.5).is_err(),
            "issued ahead"
        );
        assert!(check(-1.5, now_f).is_err(), "a negative exp is out of spec");
    }

    #[test]
    fn debug_names_the_channels_and_the_key_set_but_not_the_secret() {
        let config = LineAuthConfig::builder()
            .channel_id("1234567890")
            .channel_secret("s3cr3t-channel-secret")
            .hs256_id_tokens("1234567890")
            .api_base("http://127.0.0.1:9")
            .build()
            .unwrap();
        let shown = format!("{:?}", IdTokenVerifier::new(&config));
        assert!(shown.contains("1234567890"), "{shown}");
        assert!(
            shown.contains("http://127.0.0.1:9/oauth2/v2.1/certs"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn the_fetch_backoff_doubles_from_half_a_second_to_eight() {
        let waits: Vec<u64> = (1..=7)
            .map(|failures| fetch_backoff(failures).as_millis() as u64)
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
    }
}
