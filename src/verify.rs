//! The decision for one token: cache → coalesce → LINE → verdict, with the channel, scope and
//! expiry checks applied to fresh verdicts and cached ones alike.
//!
//! A cache hit is decided synchronously by [`Verifier::decide`]. A miss starts (or joins) one
//! verification task per token: it runs on its own, so a caller hanging up cannot cancel the
//! verification the other callers wait on, and every waiter receives the same verdict.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::sync::{oneshot, Semaphore};
use tracing::Instrument;

use crate::cache::{Cached, Grant, RefusedCache, VerifiedCache};
use crate::client::{LineClient, TokenVerification};
use crate::clock::{self, Instant};
use crate::config::LineAuthConfig;
use crate::id_token::IdTokenVerifier;
use crate::rejection::{InvalidReason, LineAuthError, UpstreamError};
#[cfg(feature = "redis")]
use crate::shared::{Invalidation, SharedCache, SharedVerdict};
use crate::stats::{Counters, Event, Stats};
use crate::token::{AccessToken, DigestHashBuilder, TokenDigest};
use crate::user::LineUser;

/// A verification's outcome, shared by every request that waited on it.
pub(crate) type Verdict = Result<LineUser, LineAuthError>;

/// What to do with a request, decided without waiting.
pub(crate) enum Decision {
    /// The token is verified (from the cache).
    Allow(LineUser),
    /// The token is refused.
    Reject(LineAuthError),
    /// LINE must be asked; the verdict arrives through this future.
    Pending(PendingVerdict),
}

type Waiters = Vec<oneshot::Sender<Verdict>>;

/// Shared by every clone of a layer and its services.
pub(crate) struct Verifier {
    channel_ids: Arc<[Box<str>]>,
    required_scopes: Arc<[Box<str>]>,
    /// One bit per required scope: what a token's [`Grant`] must cover.
    required_mask: u32,
    /// `required_scopes` space-separated, for the `scope` attribute of a 403 challenge.
    required_scope_list: Arc<str>,
    upstream_timeout: Duration,
    cache: VerifiedCache,
    refused: RefusedCache,
    stale_if_error: bool,
    /// Bounds verifications asking LINE at once, across all tokens.
    upstream_permits: Semaphore,
    in_flight: Mutex<HashMap<TokenDigest, Waiters, DigestHashBuilder>>,
    /// Bumped by every forget: a verification that started before one does not fill the
    /// caches, so a forgotten (logged-out) token cannot slip back in from an answer in flight.
    generation: AtomicU64,
    client: LineClient,
    channel_secret: Option<crate::config::Secret>,
    /// Set when the layer takes ID tokens instead of access tokens.
    id_tokens: Option<IdTokenVerifier>,
    /// The cache shared with other replicas through Redis.
    #[cfg(feature = "redis")]
    shared: Option<SharedCache>,
    pub(crate) counters: Counters,
}

/// Where a verdict came from, which decides whether the fleet is told of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// LINE answered.
    Line,
    /// Checked here, with no call to LINE (an ID token).
    Local,
    /// Another replica's verdict, read from the shared cache.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Shared,
}

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Self::Line => "line",
            Self::Local => "local",
            Self::Shared => "shared",
        }
    }
}

/// A verified token, with its deadlines.
struct Verified {
    user: LineUser,
    grant: Grant,
    /// When the verdict was reached (for LINE's answers: when the verify call was made).
    verified_at: Instant,
    /// When the token itself expires.
    token_expires: Instant,
    /// When the verdict must be asked for again, at the latest (further capped by the max TTL).
    fresh_until: Instant,
}

/// What the bearer credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A LINE Login access token, verified with LINE.
    AccessToken,
    /// A LINE ID token, verified locally.
    IdToken,
}

impl Verifier {
    pub(crate) fn new(config: &LineAuthConfig, credential: Credential) -> Self {
        Self {
            channel_ids: config.channel_ids.clone(),
            required_scopes: config.required_scopes.clone(),
            required_mask: low_bits(config.required_scopes.len()),
            required_scope_list: config.required_scopes.join(" ").into(),
            upstream_timeout: config.upstream_timeout,
            cache: VerifiedCache::new(
                config.cache_max_entries,
                config.cache_max_ttl,
                config.stale_if_error,
            ),
            refused: RefusedCache::new(
                config.negative_cache_max_entries,
                config.negative_cache_ttl,
            ),
            stale_if_error: config.stale_if_error.is_some(),
            upstream_permits: Semaphore::new(config.max_concurrent_verifications),
            in_flight: Mutex::new(HashMap::default()),
            generation: AtomicU64::new(0),
            client: LineClient::new(config),
            channel_secret: config.channel_secret.clone(),
            id_tokens: (credential == Credential::IdToken).then(|| IdTokenVerifier::new(config)),
            #[cfg(feature = "redis")]
            shared: config.redis.clone().map(|settings| {
                SharedCache::new(settings, config.cache_max_ttl, config.negative_cache_ttl)
            }),
            counters: Counters::default(),
        }
    }

    /// A verifier for a new layer, listening for the fleet's invalidations at once if it shares
    /// a cache and runs inside a runtime (otherwise from its first verification).
    pub(crate) fn started(config: &LineAuthConfig, credential: Credential) -> Arc<Self> {
        let verifier = Arc::new(Self::new(config, credential));
        verifier.start_sharing();
        verifier
    }

    /// The shared cache on Redis, if configured.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(&self) -> Option<&SharedCache> {
        self.shared.as_ref()
    }

    /// Starts listening for the fleet's invalidations, if there is a fleet and a runtime.
    pub(crate) fn start_sharing(self: &Arc<Self>) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            SharedCache::start(self, shared);
        }
    }

    /// Tells the other replicas, without waiting.
    #[cfg(feature = "redis")]
    fn tell_fleet_later(&self, invalidation: Invalidation) {
        if let Some(shared) = &self.shared {
            shared.invalidate_later(invalidation);
        }
    }

    /// Test kit: trusts `token` as `user` until the user's expiry, without LINE.
    #[cfg(feature = "testing")]
    pub(crate) fn accept_fixed_token(&self, token: &str, user: LineUser) {
        let remaining = user
            .expires_at()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let grant = self.grant_of(user.channel_id(), |scope| user.has_scope(scope));
        self.cache.insert_until(
            TokenDigest::of(token),
            user,
            grant,
            clock::now() + remaining,
        );
    }

    /// Forgets one token, here and fleet-wide: its next request asks LINE again.
    pub(crate) fn forget(&self, token: &str) {
        let digest = TokenDigest::of(token);
        self.forget_locally(&digest);
        #[cfg(feature = "redis")]
        self.tell_fleet_later(Invalidation::Token(digest));
    }

    /// Forgets every cached token of one user, here and fleet-wide.
    pub(crate) fn forget_user(&self, user_id: &str) {
        self.forget_user_locally(user_id);
        #[cfg(feature = "redis")]
        self.tell_fleet_later(Invalidation::User(user_id.into()));
    }

    /// Forgets everything, here and fleet-wide.
    pub(crate) fn clear(&self) {
        self.clear_locally();
        #[cfg(feature = "redis")]
        self.tell_fleet_later(Invalidation::All);
    }

    fn forget_locally(&self, digest: &TokenDigest) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.remove(digest);
        self.refused.remove(digest);
    }

    fn forget_user_locally(&self, user_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.remove_user(user_id);
    }

    pub(crate) fn clear_locally(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
        self.refused.clear();
    }

    /// Applies an invalidation another replica (or this one) published.
    #[cfg(feature = "redis")]
    pub(crate) fn apply_invalidation(&self, invalidation: &Invalidation) {
        self.counters.record(Event::InvalidationReceived);
        match invalidation {
            Invalidation::Token(digest) | Invalidation::Revoked(digest) => {
                self.forget_locally(digest);
            }
            Invalidation::User(user_id) => self.forget_user_locally(user_id),
            Invalidation::All => self.clear_locally(),
        }
    }

    /// Revokes `token` at LINE (`POST /oauth2/v2.1/revoke`, fact sheet §3.4), then forgets it,
    /// so its next request is refused at once. The token's channel comes from the cache, the
    /// only configured channel, or LINE's verify answer; a token LINE already refuses needs no
    /// revoking. The local forget happens whatever LINE answers.
    pub(crate) async fn logout(&self, token: &str) -> Result<(), LineAuthError> {
        let access_token = AccessToken::new(token);
        let digest = TokenDigest::of(token);
        let deadline = clock::now() + self.upstream_timeout;
        let known_channel = self
            .cache
            .channel_of(&digest)
            .and_then(|index| self.channel_ids.get(usize::from(index)))
            .or(match &*self.channel_ids {
                [only] => Some(only),
                _ => None,
            })
            .map(|channel| channel.to_string());
        let revoked = async {
            let channel_id = match known_channel {
                Some(channel_id) => channel_id,
                None => match self.client.verify(&access_token, deadline).await {
                    Ok(verification) => verification.client_id,
                    Err(LineAuthError::InvalidToken(_)) => return Ok(()),
                    Err(error) => return Err(error),
                },
            };
            let secret = self.channel_secret.as_ref().map(|secret| secret.expose());
            self.client
                .revoke(&access_token, &channel_id, secret, deadline)
                .await
        }
        .await;
        self.forget_locally(&digest);
        // Revoked at LINE: leave a refusal for the fleet. Not revoked: the token is still valid
        // at LINE, so the fleet just forgets it, as here.
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let invalidation = match revoked {
                Ok(()) => Invalidation::Revoked(digest),
                Err(_) => Invalidation::Token(digest),
            };
            shared.invalidate(invalidation, &self.counters).await;
        }
        if let Err(error) = &revoked {
            tracing::warn!(error = %error, "could not revoke the token at LINE; forgotten locally");
        }
        revoked
    }

    /// Decides from the cache, or starts (or joins) the verification of `token`.
    pub(crate) fn decide(self: &Arc<Self>, token: &str) -> Decision {
        let digest = TokenDigest::of(token);
        match self.cached_verdict(&digest) {
            Some(Ok(user)) => {
                self.counters.record(Event::CacheHit);
                Decision::Allow(user)
            }
            Some(Err(error)) => {
                self.counters.record(Event::NegativeHit);
                self.counters.reject(&error, 1);
                Decision::Reject(error)
            }
            None => Decision::Pending(self.verify_once(token, digest)),
        }
    }

    /// The counters, with the caches' current sizes.
    pub(crate) fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.cache.len() as u64, self.refused.len() as u64)
    }

    /// The verdict the caches hold: verified (re-checked), expired, or refused before.
    fn cached_verdict(&self, digest: &TokenDigest) -> Option<Verdict> {
        let now = clock::now();
        match self.cache.get(digest, now) {
            Cached::Fresh(user, grant) => Some(self.check_grant(grant).map(|()| user)),
            Cached::Expired => Some(Err(LineAuthError::InvalidToken(InvalidReason::Expired))),
            Cached::Unknown => self.refused.get(digest, now).map(Err),
        }
    }

    /// What a token with this channel and these scopes is granted, in this layer's terms.
    fn grant_of(&self, channel_id: &str, has_scope: impl Fn(&str) -> bool) -> Grant {
        let channel = self
            .channel_ids
            .iter()
            .position(|accepted| **accepted == *channel_id)
            .and_then(|index| u16::try_from(index).ok())
            .unwrap_or(u16::MAX);
        let scopes = self
            .required_scopes
            .iter()
            .enumerate()
            .filter(|(_, scope)| has_scope(scope))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        Grant { channel, scopes }
    }

    /// The channel and scope requirements, applied to every verdict, fresh or cached.
    fn check_grant(&self, grant: Grant) -> Result<(), LineAuthError> {
        if usize::from(grant.channel) >= self.channel_ids.len() {
            return Err(LineAuthError::ForeignChannel);
        }
        if grant.scopes & self.required_mask != self.required_mask {
            return Err(LineAuthError::InsufficientScope {
                required: self.required_scope_list.clone(),
            });
        }
        Ok(())
    }

    /// Joins the verification of this token already under way, or starts one.
    fn verify_once(self: &Arc<Self>, token: &str, digest: TokenDigest) -> PendingVerdict {
        let (sender, receiver) = oneshot::channel();
        let pending = PendingVerdict { receiver };
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(waiters) = in_flight.get_mut(&digest) {
            tracing::trace!(token = %digest.short_hex(), "joining a verification under way");
            waiters.push(sender);
            self.counters.record(Event::Coalesced);
            return pending;
        }
        // A verification may have finished between the cache lookup and taking the lock: it
        // fills the cache before it leaves `in_flight`, so looking again here is conclusive.
        if let Some(verdict) = self.cached_verdict(&digest) {
            let _ = sender.send(verdict);
            return pending;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            let _ = sender.send(Err(LineAuthError::Unavailable(UpstreamError::Abandoned)));
            tracing::error!("LineAuthLayer needs a Tokio runtime to verify tokens");
            return pending;
        };
        in_flight.insert(digest, vec![sender]);
        drop(in_flight);
        self.counters.record(Event::Miss);
        self.start_sharing();

        let task = VerificationTask {
            verifier: Arc::clone(self),
            digest,
            generation: self.generation.load(Ordering::Acquire),
            finished: false,
        };
        let token = AccessToken::new(token);
        let span = tracing::debug_span!(
            "line_auth.verify",
            token = %digest.short_hex(),
            credential = if self.id_tokens.is_some() { "id_token" } else { "access_token" },
            outcome = tracing::field::Empty,
            source = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
            waiters = tracing::field::Empty,
        );
        runtime.spawn(task.run(token).instrument(span));
        pending
    }

    /// The verdict on a token not in the caches: an ID token verified locally, or an access
    /// token verified by another replica (the shared cache) or with LINE.
    async fn resolve(
        &self,
        digest: &TokenDigest,
        token: &AccessToken,
    ) -> (Result<Verified, LineAuthError>, Origin) {
        if let Some(id_tokens) = &self.id_tokens {
            return (self.check_id_token(id_tokens, token).await, Origin::Local);
        }
        // One budget for the whole request, however much of it the fleet takes.
        let deadline = clock::now() + self.upstream_timeout;
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            match self.ask_fleet(shared, digest).await {
                Some(verdict) => {
                    self.counters.record(Event::SharedHit);
                    return (verdict, Origin::Shared);
                }
                None => self.counters.record(Event::SharedMiss),
            }
        }
        #[cfg(not(feature = "redis"))]
        let _ = digest;
        (self.ask_line(token, deadline).await, Origin::Line)
    }

    /// The fleet's verdict on the token: shared already, or being reached by another replica,
    /// which is waited for (at most half the upstream budget, so this replica can still ask LINE
    /// itself if that replica got nowhere). `None`: this replica asks LINE.
    #[cfg(feature = "redis")]
    async fn ask_fleet(
        &self,
        shared: &SharedCache,
        digest: &TokenDigest,
    ) -> Option<Result<Verified, LineAuthError>> {
        let wait_until = clock::now() + self.upstream_timeout / 2;
        if let Some(verdict) = shared.lookup(digest, &self.counters).await {
            if let Some(verdict) = self.judge_shared(verdict) {
                return Some(verdict);
            }
        }
        if shared
            .claim(digest, self.upstream_timeout, &self.counters)
            .await
        {
            return None;
        }
        let verdict = shared
            .wait_for_verdict(digest, wait_until, &self.counters)
            .await?;
        self.judge_shared(verdict)
    }

    async fn check_id_token(
        &self,
        id_tokens: &IdTokenVerifier,
        token: &AccessToken,
    ) -> Result<Verified, LineAuthError> {
        let verified_at = clock::now();
        let user = id_tokens.verify(token.expose(), None).await?.user;
        let grant = self.grant_of(user.channel_id(), |scope| user.has_scope(scope));
        self.check_grant(grant)?;
        let token_expires = verified_at + time_left(user.expires_at())?;
        Ok(Verified {
            user,
            grant,
            verified_at,
            token_expires,
            fresh_until: token_expires,
        })
    }

    /// Another replica's verdict, held to this layer's channels and scopes; `None` if it has
    /// run out meanwhile.
    #[cfg(feature = "redis")]
    fn judge_shared(&self, verdict: SharedVerdict) -> Option<Result<Verified, LineAuthError>> {
        let (user, fresh_until) = match verdict {
            SharedVerdict::Refused(reason) => {
                return Some(Err(LineAuthError::InvalidToken(reason)))
            }
            SharedVerdict::Verified { user, fresh_until } => (user, fresh_until),
        };
        let now = clock::now();
        let token_expires = now + time_left(user.expires_at()).ok()?;
        let fresh_until = now + time_left(fresh_until).ok()?;
        let grant = self.grant_of(user.channel_id(), |scope| user.has_scope(scope));
        Some(self.check_grant(grant).map(|()| Verified {
            user,
            grant,
            verified_at: now,
            token_expires,
            fresh_until,
        }))
    }

    /// Asks LINE about the token: verify, check, then fetch the profile (fact sheet §4), all
    /// within the upstream timeout, waiting first for a turn among the concurrent verifications.
    async fn ask_line(
        &self,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Verified, LineAuthError> {
        let exchange = async {
            let _permit = self
                .upstream_permits
                .acquire()
                .await
                .map_err(|_| LineAuthError::Unavailable(UpstreamError::Abandoned))?;
            // `expires_in` counts from the verify call, so the expiry is taken from its start.
            let verified_at = clock::now();
            let verified_at_wall = SystemTime::now();
            let verification = self.client.verify(token, deadline).await?;
            let (grant, expires_in) = self.check_verification(&verification)?;
            let profile = self.client.profile(token, deadline).await?;
            let user = LineUser::new(profile, &verification, verified_at_wall + expires_in);
            Ok::<_, LineAuthError>(Verified {
                user,
                grant,
                verified_at,
                token_expires: verified_at + expires_in,
                fresh_until: verified_at + expires_in,
            })
        };
        tokio::time::timeout_at(deadline.into(), exchange)
            .await
            .map_err(|_| LineAuthError::Unavailable(UpstreamError::Timeout))?
    }

    /// LINE's own checklist on a 200 verify (fact sheet §4): `client_id` is ours, `expires_in > 0`;
    /// then this service's required scopes.
    fn check_verification(
        &self,
        verification: &TokenVerification,
    ) -> Result<(Grant, Duration), LineAuthError> {
        let grant = self.grant_of(&verification.client_id, |scope| {
            verification.scopes().any(|granted| granted == scope)
        });
        if usize::from(grant.channel) >= self.channel_ids.len() {
            return Err(LineAuthError::ForeignChannel);
        }
        let expires_in = u64::try_from(verification.expires_in)
            .ok()
            .filter(|&secs| secs > 0)
            .ok_or(LineAuthError::InvalidToken(InvalidReason::Expired))?;
        self.check_grant(grant)?;
        Ok((grant, Duration::from_secs(expires_in)))
    }
}

/// How long until `time`; an expired token if it has passed.
fn time_left(time: SystemTime) -> Result<Duration, LineAuthError> {
    time.duration_since(SystemTime::now())
        .ok()
        .filter(|left| !left.is_zero())
        .ok_or(LineAuthError::InvalidToken(InvalidReason::Expired))
}

/// A mask of the lowest `n` bits (`n` ≤ 32, checked at configuration).
fn low_bits(n: usize) -> u32 {
    match n {
        0 => 0,
        n => u32::MAX >> (32 - n.min(32)),
    }
}

/// Shows an error with its causes, `a: b: c`. Safe for upstream errors: they carry no URL.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// The one verification of a token, run as its own task.
struct VerificationTask {
    verifier: Arc<Verifier>,
    digest: TokenDigest,
    /// The verifier's generation when this started; caches are filled only if it still holds.
    generation: u64,
    finished: bool,
}

impl VerificationTask {
    async fn run(mut self, token: AccessToken) {
        let verifier = &self.verifier;
        let started = clock::now();
        let (resolved, origin) = verifier.resolve(&self.digest, &token).await;
        let span = tracing::Span::current();
        span.record("elapsed_ms", started.elapsed().as_secs_f64() * 1000.0);
        span.record("source", origin.name());
        let mut outcome = "verified";
        #[cfg(feature = "metrics")]
        if origin != Origin::Shared {
            crate::stats::record_upstream_latency(
                match &resolved {
                    Ok(_) => "verified",
                    Err(LineAuthError::Unavailable(_)) => "unavailable",
                    Err(_) => "refused",
                },
                started.elapsed().as_secs_f64(),
            );
        }
        // What to tell the fleet once the waiters have their verdict.
        #[cfg(feature = "redis")]
        let mut to_share = None;
        let verdict = match resolved {
            Ok(verified) => {
                verifier.counters.record(Event::Verified);
                if self.nothing_forgotten_since_start() {
                    // Shared with the deadline the cache applies: the token's expiry or the
                    // maximum TTL, whichever comes first.
                    #[cfg_attr(not(feature = "redis"), allow(unused_variables))]
                    let cached_until = verifier.cache.insert_until_fresh(
                        self.digest,
                        verified.user.clone(),
                        verified.grant,
                        verified.verified_at,
                        verified.token_expires,
                        verified.fresh_until,
                    );
                    #[cfg(feature = "redis")]
                    if let (Origin::Line, Some(fresh_until)) = (origin, cached_until) {
                        to_share = Some(Ok((verified.user.clone(), fresh_until)));
                    }
                }
                tracing::debug!(outcome = "verified", "token verified");
                Ok(verified.user)
            }
            Err(LineAuthError::Unavailable(cause)) => {
                verifier.counters.record(Event::Unavailable);
                let stale = verifier
                    .stale_if_error
                    .then(|| verifier.cache.stale(&self.digest, clock::now()));
                match stale.flatten() {
                    Some((user, grant)) => {
                        outcome = "stale";
                        verifier.counters.record(Event::ServedStale);
                        tracing::warn!(
                            outcome = "stale",
                            error = %ErrorChain(&cause),
                            "LINE could not verify the token; accepting it as verified before"
                        );
                        verifier.check_grant(grant).map(|()| user)
                    }
                    // The token expired while LINE was being asked: known without LINE, and
                    // "retry later" would only earn a 401.
                    None if matches!(
                        verifier.cache.get(&self.digest, clock::now()),
                        Cached::Expired
                    ) =>
                    {
                        outcome = "refused";
                        Err(LineAuthError::InvalidToken(InvalidReason::Expired))
                    }
                    None => {
                        outcome = "unavailable";
                        tracing::warn!(
                            outcome = "unavailable",
                            error = %ErrorChain(&cause),
                            "LINE could not verify the token"
                        );
                        Err(LineAuthError::Unavailable(cause))
                    }
                }
            }
            Err(refused) => {
                outcome = "refused";
                verifier.counters.record(Event::Refused);
                if self.nothing_forgotten_since_start() {
                    verifier.refused.insert(self.digest, &refused, clock::now());
                    #[cfg(feature = "redis")]
                    if let (Origin::Line, LineAuthError::InvalidToken(reason)) = (origin, &refused)
                    {
                        to_share = Some(Err(*reason));
                    }
                }
                tracing::debug!(outcome = "refused", reason = %refused, "token refused");
                Err(refused)
            }
        };
        self.finished = true;
        let waiters = self.take_waiters();
        span.record("outcome", outcome);
        span.record("waiters", waiters.len());
        tracing::debug!("verification finished");
        if let Err(error) = &verdict {
            self.verifier.counters.reject(error, waiters.len() as u64);
        }
        for waiter in waiters {
            // A waiter whose caller hung up has dropped its receiver; nothing to do for it.
            let _ = waiter.send(verdict.clone());
        }
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.verifier.shared {
            match to_share.filter(|_| self.nothing_forgotten_since_start()) {
                Some(Ok((user, fresh_until))) => {
                    let fresh_until_wall =
                        SystemTime::now() + fresh_until.saturating_duration_since(clock::now());
                    shared
                        .store_verified(
                            &self.digest,
                            &user,
                            fresh_until_wall,
                            &self.verifier.counters,
                        )
                        .await;
                }
                Some(Err(reason)) => {
                    shared
                        .store_refused(&self.digest, reason, &self.verifier.counters)
                        .await;
                }
                // Nothing to share: let replicas waiting on this one ask LINE themselves.
                None if origin == Origin::Line => {
                    shared.release(&self.digest, &self.verifier.counters).await;
                }
                None => {}
            }
        }
    }

    fn nothing_forgotten_since_start(&self) -> bool {
        self.verifier.generation.load(Ordering::Acquire) == self.generation
    }

    fn take_waiters(&self) -> Waiters {
        let mut in_flight = self
            .verifier
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        in_flight.remove(&self.digest).unwrap_or_default()
    }
}

impl Drop for VerificationTask {
    /// A task dropped before its verdict (runtime shutting down, a panic) still leaves `in_flight`,
    /// and dropping the senders wakes every waiter with [`UpstreamError::Abandoned`].
    fn drop(&mut self) {
        if !self.finished {
            drop(self.take_waiters());
        }
    }
}

/// Resolves to the verdict of a verification under way.
pub(crate) struct PendingVerdict {
    receiver: oneshot::Receiver<Verdict>,
}

impl Future for PendingVerdict {
    type Output = Verdict;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        let received = ready!(Pin::new(&mut self.receiver).poll(cx));
        Poll::Ready(received.unwrap_or(Err(LineAuthError::Unavailable(UpstreamError::Abandoned))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(scopes: &[&str]) -> Verifier {
        let config = LineAuthConfig::builder()
            .channel_ids(["111", "222"])
            .required_scopes(scopes.iter().copied())
            .build()
            .unwrap();
        Verifier::new(&config, Credential::AccessToken)
    }

    #[test]
    fn low_bits_covers_zero_to_thirty_two() {
        assert_eq!(low_bits(0), 0);
        assert_eq!(low_bits(1), 1);
        assert_eq!(low_bits(3), 0b111);
        assert_eq!(low_bits(32), u32::MAX);
    }

    #[test]
    fn grant_passes_only_with_a_configured_channel_and_every_required_scope() {
        let verifier = verifier(&["profile", "openid"]);
        let both = |scope: &str| scope == "profile" || scope == "openid";
        assert!(verifier.check_grant(verifier.grant_of("222", both)).is_ok());
        assert!(matches!(
            verifier.check_grant(verifier.grant_of("333", both)),
            Err(LineAuthError::ForeignChannel)
        ));
        assert!(matches!(
            verifier.check_grant(verifier.grant_of("111", |scope| scope == "profile")),
            Err(LineAuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn no_required_scope_means_any_grant_of_a_configured_channel_passes() {
        let verifier = verifier(&[]);
        assert!(verifier
            .check_grant(verifier.grant_of("111", |_| false))
            .is_ok());
    }
}
