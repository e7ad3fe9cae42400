//! [`LineAuthConfig`]: which channels to trust, where LINE is, and how long to remember a verdict.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::line_api::RetryPolicy;

/// LINE's API host.
pub(crate) const DEFAULT_API_BASE: &str = "https://api.line.me";
/// Default upstream timeout: a request never waits on LINE longer than this.
pub(crate) const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// Default bound on opening a connection to LINE (the default HTTP client's): a connection that
/// does not open in time is tried again within the overall upstream timeout. Once open, a try
/// may take what is left of that timeout, unless `upstream_attempt_timeout` says less: a slow
/// LINE is asked once.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default number of tries of one LINE call, the first included.
pub(crate) const DEFAULT_UPSTREAM_MAX_ATTEMPTS: u32 = 3;
/// First backoff between tries; it doubles per try and is jittered.
const DEFAULT_RETRY_BASE_BACKOFF: Duration = Duration::from_millis(50);
/// Default bound on how long a token LINE refused is refused without asking again.
pub(crate) const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default bound on the number of refused tokens remembered.
pub(crate) const DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES: usize = 65_536;
/// The longest duration accepted anywhere: deadlines add durations to the clock.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The setting `name` as a duration deadlines may add to the clock without overflowing it: at
/// most [`MAX_DURATION`].
pub(crate) fn addable_to_the_clock(
    name: &'static str,
    duration: Duration,
) -> Result<(), ConfigError> {
    if duration > MAX_DURATION {
        return Err(ConfigError::TooLong(name));
    }
    Ok(())
}
/// Default bound on verifications asking LINE at once, across all tokens.
pub(crate) const DEFAULT_MAX_CONCURRENT_VERIFICATIONS: usize = 64;
/// Default bound on how long a verified token is trusted without asking LINE again.
pub(crate) const DEFAULT_CACHE_MAX_TTL: Duration = Duration::from_secs(5 * 60);
/// Default bound on the number of verified tokens kept in memory.
pub(crate) const DEFAULT_CACHE_MAX_ENTRIES: usize = 65_536;
/// Cache entries record a token's required scopes as bits of a `u32`.
const MAX_REQUIRED_SCOPES: usize = 32;
/// Cache entries record a token's channel as a `u16` index.
const MAX_CHANNELS: usize = 1024;
/// Default bound on every Redis call (feature `redis`); a slower Redis is skipped, not waited on.
#[cfg(feature = "redis")]
pub(crate) const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(50);
/// Default time a previous signing key of the shared cache is still accepted (feature `redis`).
#[cfg(feature = "redis")]
pub(crate) const DEFAULT_REDIS_SIGNING_KEY_OVERLAP: Duration = Duration::from_secs(60 * 60);
/// Least length of a shared cache's signing key: 256 bits, as HMAC-SHA256's output.
#[cfg(feature = "redis")]
pub(crate) const MIN_SIGNING_KEY_LEN: usize = 32;
/// Default prefix of the shared cache's Redis keys and invalidation channel (feature `redis`).
#[cfg(feature = "redis")]
pub(crate) const DEFAULT_REDIS_KEY_PREFIX: &str = "line-auth:";
/// `GET /v2/profile` needs `profile`, so that is the default requirement.
const DEFAULT_REQUIRED_SCOPE: &str = "profile";

/// Validated configuration for [`LineAuthLayer`](crate::LineAuthLayer).
///
/// Build it with [`LineAuthConfig::builder`] or [`LineAuthConfig::from_env`].
///
/// Everything is validated when the configuration is built, so a layer never fails later for a
/// reason that was knowable at start-up.
///
/// ```
/// use std::time::Duration;
/// use line_auth::LineAuthConfig;
///
/// let config = LineAuthConfig::builder()
///     .channel_id("1234567890")
///     .required_scopes(["profile", "openid"])
///     .upstream_timeout(Duration::from_secs(2))
///     .cache_max_ttl(Duration::from_secs(60))
///     .build()?;
/// assert_eq!(config.channel_ids(), ["1234567890"]);
///
/// // No channel is a configuration error, not a panic at the first request.
/// assert!(LineAuthConfig::builder().build().is_err());
/// # Ok::<(), line_auth::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct LineAuthConfig {
    pub(crate) channel_ids: Arc<[Box<str>]>,
    pub(crate) api_base: Url,
    pub(crate) required_scopes: Arc<[Box<str>]>,
    pub(crate) upstream_timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_concurrent_verifications: usize,
    pub(crate) max_pending_verifications: usize,
    pub(crate) cache_max_ttl: Duration,
    pub(crate) cache_max_entries: usize,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) negative_cache_max_entries: usize,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) channel_secret: Option<Secret>,
    /// The channel whose HS256 ID tokens are accepted, checked with `channel_secret`.
    pub(crate) hs256_channel: Option<Box<str>>,
    pub(crate) jwks_refetch_floor: Duration,
    pub(crate) jwks_max_age: Duration,
    pub(crate) http_client: reqwest::Client,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<crate::fleet::RedisSettings>,
}

/// A channel secret: its `Debug` never shows the value.
#[derive(Clone)]
pub(crate) struct Secret(Arc<str>);

impl Secret {
    pub(crate) fn new(secret: String) -> Self {
        Self(secret.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Empty or whitespace alone: no secret at all.
    pub(crate) fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Debug for LineAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("LineAuthConfig");
        out.field("channel_ids", &self.channel_ids)
            .field("api_base", &self.api_base.as_str())
            .field("required_scopes", &self.required_scopes)
            .field("upstream_timeout", &self.upstream_timeout)
            .field("retry", &self.retry)
            .field(
                "max_concurrent_verifications",
                &self.max_concurrent_verifications,
            )
            .field("max_pending_verifications", &self.max_pending_verifications)
            .field("cache_max_ttl", &self.cache_max_ttl)
            .field("cache_max_entries", &self.cache_max_entries)
            .field("negative_cache_ttl", &self.negative_cache_ttl)
            .field(
                "negative_cache_max_entries",
                &self.negative_cache_max_entries,
            )
            .field("stale_if_error", &self.stale_if_error)
            .field("channel_secret", &self.channel_secret)
            .field("hs256_channel", &self.hs256_channel);
        #[cfg(feature = "redis")]
        out.field("redis", &self.redis);
        out.finish_non_exhaustive()
    }
}

impl LineAuthConfig {
    /// Starts a configuration; at least one [`channel_id`](LineAuthConfigBuilder::channel_id) is
    /// required.
    pub fn builder() -> LineAuthConfigBuilder {
        LineAuthConfigBuilder::default()
    }

    /// Reads the configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `LINE_CHANNEL_ID` | accepted LINE Login channel IDs, comma-separated | required |
    /// | `LINE_API_BASE` | LINE API base URL | `https://api.line.me` |
    /// | `LINE_REQUIRED_SCOPES` | required scopes, space- or comma-separated (blank: the default) | `profile` |
    /// | `LINE_UPSTREAM_TIMEOUT_MS` | longest a request waits on LINE, retries included | `3000` |
    /// | `LINE_UPSTREAM_ATTEMPT_TIMEOUT_MS` | longest each try of a LINE call but the last may take | the upstream timeout |
    /// | `LINE_UPSTREAM_MAX_ATTEMPTS` | tries of one LINE call, the first included | `3` |
    /// | `LINE_MAX_CONCURRENT_VERIFICATIONS` | verifications asking LINE at once | `64` |
    /// | `LINE_CACHE_MAX_TTL_SECS` | longest time a verified token is trusted without LINE | `300` |
    /// | `LINE_CACHE_MAX_ENTRIES` | most verified tokens kept in memory | `65536` |
    /// | `LINE_NEGATIVE_CACHE_TTL_SECS` | how long a refused token is refused without LINE | `30` |
    /// | `LINE_NEGATIVE_CACHE_MAX_ENTRIES` | most refused tokens remembered | `65536` |
    /// | `LINE_STALE_IF_ERROR_SECS` | grace for verified tokens while LINE is down (opt-in) | off |
    /// | `LINE_CHANNEL_SECRET` | channel secret, for channels whose app type is web only | none |
    /// | `REDIS_URL` | shared cache on Redis (feature `redis`; an error without it) | off |
    /// | `REDIS_CLUSTER_URLS` | shared cache on a Redis Cluster: node URLs, comma-separated; not with `REDIS_URL` | off |
    /// | `LINE_REDIS_SIGNING_KEY` | the fleet's key for signing shared entries, at least 32 bytes | required with `REDIS_URL` or `REDIS_CLUSTER_URLS` |
    /// | `LINE_REDIS_PREVIOUS_SIGNING_KEY` | the key before it, still accepted during a rotation | none |
    /// | `LINE_REDIS_SIGNING_KEY_OVERLAP_SECS` | how long the previous key is accepted | `3600` |
    /// | `LINE_REDIS_KEY_PREFIX` | prefix of the shared cache's keys and channel | `line-auth:` |
    /// | `LINE_REDIS_TIMEOUT_MS` | longest one Redis call may take | `50` |
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any variable source: the same names, defaults and
    /// errors, read from a secrets store, a file, or the environment with some values set in
    /// code.
    ///
    /// ```
    /// use line_auth::LineAuthConfig;
    ///
    /// // Settings from anywhere: here a fixed list (a secrets store, a file, or the environment
    /// // with some values fixed in code would do as well).
    /// let settings = [("LINE_CHANNEL_ID", "1234567890"), ("LINE_CACHE_MAX_TTL_SECS", "60")];
    /// let config = LineAuthConfig::from_lookup(|name| {
    ///     settings
    ///         .iter()
    ///         .find(|(key, _)| *key == name)
    ///         .map(|(_, value)| value.to_string())
    /// })?;
    /// assert_eq!(config.channel_ids(), ["1234567890"]);
    /// assert_eq!(config.cache_max_ttl(), std::time::Duration::from_secs(60));
    /// # Ok::<(), line_auth::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut builder = Self::builder();
        if let Some(ids) = lookup("LINE_CHANNEL_ID") {
            builder =
                builder.channel_ids(ids.split(',').map(str::trim).filter(|id| !id.is_empty()));
        }
        if let Some(secret) =
            lookup("LINE_CHANNEL_SECRET").filter(|secret| !secret.trim().is_empty())
        {
            builder = builder.channel_secret(secret.trim());
        }
        if let Some(base) = lookup("LINE_API_BASE") {
            builder = builder.api_base(base.trim());
        }
        if let Some(scopes) = lookup("LINE_REQUIRED_SCOPES") {
            let scopes: Vec<&str> = scopes
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            // Blank is unset, as for the secret and the Redis URLs: the default stands, not "no
            // scope at all", which only `required_scopes([])` in code asks for.
            if !scopes.is_empty() {
                builder = builder.required_scopes(scopes);
            }
        }
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            lookup(name)
                .map(|value| parse_env(name, &value))
                .transpose()
        };
        let count = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
        if let Some(millis) = number("LINE_UPSTREAM_TIMEOUT_MS")? {
            builder = builder.upstream_timeout(Duration::from_millis(millis));
        }
        if let Some(millis) = number("LINE_UPSTREAM_ATTEMPT_TIMEOUT_MS")? {
            builder = builder.upstream_attempt_timeout(Duration::from_millis(millis));
        }
        if let Some(attempts) = number("LINE_UPSTREAM_MAX_ATTEMPTS")? {
            builder = builder.upstream_max_attempts(u32::try_from(attempts).unwrap_or(u32::MAX));
        }
        if let Some(limit) = number("LINE_MAX_CONCURRENT_VERIFICATIONS")? {
            builder = builder.max_concurrent_verifications(count(limit));
        }
        if let Some(secs) = number("LINE_CACHE_MAX_TTL_SECS")? {
            builder = builder.cache_max_ttl(Duration::from_secs(secs));
        }
        if let Some(entries) = number("LINE_CACHE_MAX_ENTRIES")? {
            builder = builder.cache_max_entries(count(entries));
        }
        if let Some(secs) = number("LINE_NEGATIVE_CACHE_TTL_SECS")? {
            builder = builder.negative_cache_ttl(Duration::from_secs(secs));
        }
        if let Some(entries) = number("LINE_NEGATIVE_CACHE_MAX_ENTRIES")? {
            builder = builder.negative_cache_max_entries(count(entries));
        }
        if let Some(secs) = number("LINE_STALE_IF_ERROR_SECS")? {
            builder = builder.stale_if_error(Duration::from_secs(secs));
        }
        let redis_url = lookup("REDIS_URL").filter(|url| !url.trim().is_empty());
        let cluster_urls = lookup("REDIS_CLUSTER_URLS").filter(|urls| !urls.trim().is_empty());
        #[cfg(feature = "redis")]
        {
            if let Some(url) = redis_url {
                builder = builder.redis_url(url.trim());
            }
            if let Some(urls) = cluster_urls {
                builder = builder.redis_cluster_urls(
                    urls.split(',')
                        .map(str::trim)
                        .filter(|url| !url.is_empty())
                        .map(str::to_owned),
                );
            }
            if let Some(key) = lookup("LINE_REDIS_SIGNING_KEY").filter(|key| !key.is_empty()) {
                builder = builder.redis_signing_key(key);
            }
            if let Some(key) =
                lookup("LINE_REDIS_PREVIOUS_SIGNING_KEY").filter(|key| !key.is_empty())
            {
                builder = builder.redis_previous_signing_key(key);
            }
            if let Some(secs) = number("LINE_REDIS_SIGNING_KEY_OVERLAP_SECS")? {
                builder = builder.redis_signing_key_overlap(Duration::from_secs(secs));
            }
            if let Some(prefix) = lookup("LINE_REDIS_KEY_PREFIX") {
                builder = builder.redis_key_prefix(prefix.trim());
            }
            if let Some(millis) = number("LINE_REDIS_TIMEOUT_MS")? {
                builder = builder.redis_timeout(Duration::from_millis(millis));
            }
        }
        // Asking for a fleet-wide cache (and fleet-wide logout) and silently not getting one
        // would be worse than not starting.
        #[cfg(not(feature = "redis"))]
        if redis_url.is_some() || cluster_urls.is_some() {
            return Err(ConfigError::RedisNotBuilt);
        }
        builder.build()
    }

    /// The accepted channel IDs.
    pub fn channel_ids(&self) -> Vec<&str> {
        self.channel_ids.iter().map(|id| &**id).collect()
    }

    /// The LINE API base URL, as set and without a trailing `/` (default `https://api.line.me`).
    pub fn api_base(&self) -> &str {
        // Held with the `/` that joining paths onto it needs; shown as users write it.
        self.api_base.as_str().trim_end_matches('/')
    }

    /// The scopes every token must carry.
    pub fn required_scopes(&self) -> Vec<&str> {
        self.required_scopes.iter().map(|scope| &**scope).collect()
    }

    /// The longest a request waits on LINE.
    pub fn upstream_timeout(&self) -> Duration {
        self.upstream_timeout
    }

    /// The longest a verified token is trusted without asking LINE again.
    pub fn cache_max_ttl(&self) -> Duration {
        self.cache_max_ttl
    }

    /// The most verified tokens kept in memory.
    pub fn cache_max_entries(&self) -> usize {
        self.cache_max_entries
    }

    /// How long a refused token is refused without asking LINE again.
    pub fn negative_cache_ttl(&self) -> Duration {
        self.negative_cache_ttl
    }

    /// The most refused tokens remembered.
    pub fn negative_cache_max_entries(&self) -> usize {
        self.negative_cache_max_entries
    }

    /// The stale-if-error grace, if enabled.
    pub fn stale_if_error(&self) -> Option<Duration> {
        self.stale_if_error
    }
}

fn parse_env(name: &'static str, value: &str) -> Result<u64, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::InvalidNumber {
            name,
            value: value.to_owned(),
        })
}

/// Builder for [`LineAuthConfig`].
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct LineAuthConfigBuilder {
    channel_ids: Vec<String>,
    api_base: Option<String>,
    required_scopes: Option<Vec<String>>,
    upstream_timeout: Option<Duration>,
    upstream_attempt_timeout: Option<Duration>,
    upstream_max_attempts: Option<u32>,
    max_concurrent_verifications: Option<usize>,
    max_pending_verifications: Option<usize>,
    cache_max_ttl: Option<Duration>,
    cache_max_entries: Option<usize>,
    negative_cache_ttl: Option<Duration>,
    negative_cache_max_entries: Option<usize>,
    stale_if_error: Option<Duration>,
    channel_secret: Option<Secret>,
    hs256_channel: Option<String>,
    jwks_refetch_floor: Option<Duration>,
    jwks_max_age: Option<Duration>,
    http_client: Option<reqwest::Client>,
    #[cfg(feature = "redis")]
    redis_url: Option<Secret>,
    #[cfg(feature = "redis")]
    redis_cluster_urls: Option<Vec<Secret>>,
    #[cfg(feature = "redis")]
    redis_signing_key: Option<Secret>,
    #[cfg(feature = "redis")]
    redis_previous_signing_key: Option<Secret>,
    #[cfg(feature = "redis")]
    redis_signing_key_overlap: Option<Duration>,
    #[cfg(feature = "redis")]
    redis_key_prefix: Option<String>,
    #[cfg(feature = "redis")]
    redis_timeout: Option<Duration>,
}

impl LineAuthConfigBuilder {
    /// Accepts tokens issued for this channel (its numeric channel ID, from LINE Developers
    /// Console → the channel → Basic settings). Call it again to accept several channels.
    ///
    /// - For a LIFF app: the LINE Login channel that holds the LIFF app.
    /// - For a LINE MINI App: the MINI App channel.
    /// - Never the LIFF ID (`1234567890-AbcdEfgh`), which names an app, not a channel: it is a
    ///   [`ConfigError::LiffIdAsChannelId`].
    ///
    /// LINE revokes a LIFF app's token when the app closes; for LIFF, a
    /// [`cache_max_ttl`](Self::cache_max_ttl) of about a minute bounds how long a closed app's
    /// token is still accepted here.
    pub fn channel_id(mut self, channel_id: impl Into<String>) -> Self {
        self.channel_ids.push(channel_id.into());
        self
    }

    /// Accepts tokens issued for any of these channels, in addition to those already added.
    pub fn channel_ids<I>(mut self, channel_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.channel_ids
            .extend(channel_ids.into_iter().map(Into::into));
        self
    }

    /// The LINE API base URL: `https://api.line.me` unless you point it at the
    /// [emulator](https://docs.rs/line-auth-emulator) or a proxy.
    pub fn api_base(mut self, api_base: impl Into<String>) -> Self {
        self.api_base = Some(api_base.into());
        self
    }

    /// Scopes every token must carry (default `profile`, which the profile call needs). Replaces
    /// the default; an empty list requires only what naming the user takes: `profile` (the
    /// profile call) or `openid` (userinfo, for a LINE MINI App's `openid`-only token).
    ///
    /// `email` can be required of ID tokens only ([`id_tokens`](crate::LineAuthLayer::id_tokens)):
    /// LINE never lists it in an access token's scope, even when it was granted, so a layer
    /// verifying access tokens would refuse every one (it warns when it first wraps a service).
    pub fn required_scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.required_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// How long a request may wait on LINE in all, retries included (default 3 s). Past it the
    /// request gets 503.
    pub fn upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = Some(timeout);
        self
    }

    /// How long one try of the layer's LINE calls may take before it is abandoned and, time
    /// allowing, tried again (never longer than the upstream timeout). By default a try may take
    /// what is left of the upstream timeout: a LINE that answers in time is asked once, however
    /// slowly it answers, and only a connection not open within 1 s is tried again. A shorter
    /// try gets an answer sooner from a connection that went silent, at the cost of asking a
    /// slow LINE again; the last try may always use what is left.
    pub fn upstream_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_attempt_timeout = Some(timeout);
        self
    }

    /// Tries of one LINE call, the first included (default 3). Only transient failures are
    /// retried (connection errors, a try cut off by `upstream_attempt_timeout`, 5xx; a 429 is
    /// answered 503 at once), after a jittered backoff or LINE's `Retry-After`, and never past
    /// the upstream timeout. `1` turns retries off.
    pub fn upstream_max_attempts(mut self, attempts: u32) -> Self {
        self.upstream_max_attempts = Some(attempts);
        self
    }

    /// Most verifications asking LINE at once, across all tokens (default 64). Further ones wait
    /// their turn within the upstream timeout, so a flood of new tokens cannot hammer LINE,
    /// whose rate limits are undisclosed. A quarter of the turns (rounded down: none below 4)
    /// is kept for re-checks of tokens verified here before, so tokens never seen take at most
    /// the other three quarters, and a burst of first-time junk cannot queue known users out.
    pub fn max_concurrent_verifications(mut self, limit: usize) -> Self {
        self.max_concurrent_verifications = Some(limit);
        self
    }

    /// Most verifications pending at once, asking LINE or waiting their turn (one per token,
    /// besides older ones a forget set aside until they land)
    /// (default 16 × [`max_concurrent_verifications`](Self::max_concurrent_verifications)).
    /// Past it a new token is refused at once with 503 and `Retry-After: 1`, rather than queued
    /// behind a flood it cannot get through within the upstream timeout. Re-checks of tokens
    /// verified here before may go on up to twice the limit, so such a flood cannot lock them out.
    pub fn max_pending_verifications(mut self, limit: usize) -> Self {
        self.max_pending_verifications = Some(limit);
        self
    }

    /// The longest a verified token is trusted without asking LINE again (default 5 minutes).
    ///
    /// This bounds how long a token revoked at LINE (logout, unlinked app) is still accepted by
    /// this process: shorter means fresher revocation and more calls to LINE, whose rate limits
    /// are undisclosed. An entry never outlives the token's own expiry either way. Zero turns
    /// the cache off: every request asks LINE (concurrent requests still share one call).
    pub fn cache_max_ttl(mut self, ttl: Duration) -> Self {
        self.cache_max_ttl = Some(ttl);
        self
    }

    /// The most verified tokens kept in memory (default 65 536); tokens not read recently are
    /// evicted first, a token not read again since it was verified among the first. The bound
    /// is split evenly across internal shards, so eviction may begin a little below it.
    pub fn cache_max_entries(mut self, entries: usize) -> Self {
        self.cache_max_entries = Some(entries);
        self
    }

    /// How long a token LINE refused (invalid, expired, revoked, another channel, a missing
    /// scope) is refused again without asking LINE (default 30 s). Outages are never remembered
    /// as refusals. Zero turns the negative cache off.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = Some(ttl);
        self
    }

    /// The most refused tokens remembered (default 65 536), in a store of their own, so a flood
    /// of junk tokens cannot evict verified ones.
    pub fn negative_cache_max_entries(mut self, entries: usize) -> Self {
        self.negative_cache_max_entries = Some(entries);
        self
    }

    /// Opt-in stale-if-error: while LINE cannot be reached, a token verified before is still
    /// accepted if its own expiry has not passed and its cache entry went stale less than
    /// `grace` ago. Off by default.
    ///
    /// The trade-off: during an outage a token revoked at LINE within the last
    /// `cache_max_ttl + grace` is still accepted, in exchange for users staying signed in while
    /// LINE is down. Tokens never verified before still get 503.
    pub fn stale_if_error(mut self, grace: Duration) -> Self {
        self.stale_if_error = Some(grace);
        self
    }

    /// The channel secret, sent when revoking tokens ([`LineAuthHandle::logout`](crate::LineAuthHandle::logout)).
    /// LINE requires it for channels whose app type is web only and ignores it otherwise
    /// ([LINE's reference](https://developers.line.biz/en/reference/line-login/#revoke-access-token)).
    /// Never shown by `Debug`. An empty or blank one fails [`build`](Self::build)
    /// ([`ConfigError::BlankChannelSecret`]).
    pub fn channel_secret(mut self, secret: impl Into<String>) -> Self {
        self.channel_secret = Some(Secret::new(secret.into()));
        self
    }

    /// ID tokens: also accept HS256-signed ones (web login), checked with the
    /// [`channel_secret`](Self::channel_secret), for `channel_id` alone: it must be one of the
    /// configured channels and the one the secret belongs to. Off by default; LINE's discovery
    /// document lists ES256 only, and setting the secret (which revoking needs) does not switch
    /// this on.
    pub fn hs256_id_tokens(mut self, channel_id: impl Into<String>) -> Self {
        self.hs256_channel = Some(channel_id.into());
        self
    }

    /// ID tokens ([`LineAuthLayer::id_tokens`](crate::LineAuthLayer::id_tokens)): the least time
    /// between two fetches of LINE's signing keys (default 60 s). An unknown `kid` triggers a
    /// fetch; within the floor it is refused instead, so made-up `kid`s cannot make the layer
    /// hammer LINE. After LINE rotates its key, a token with the new `kid` is refused for at most
    /// this long. Zero turns that protection off: every unknown `kid` fetches the keys again (one
    /// fetch at a time), which only tests should want.
    pub fn jwks_refetch_floor(mut self, floor: Duration) -> Self {
        self.jwks_refetch_floor = Some(floor);
        self
    }

    /// ID tokens ([`LineAuthLayer::id_tokens`](crate::LineAuthLayer::id_tokens)): how long LINE's
    /// signing keys are used before they are fetched again (default 24 hours), so that a key
    /// LINE stops publishing stops verifying tokens. The fetch obeys
    /// [`jwks_refetch_floor`](Self::jwks_refetch_floor); while it fails, the keys held are
    /// kept, so an outage of LINE's key endpoint does not refuse tokens signed with them.
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = Some(max_age);
        self
    }

    /// Uses your own `reqwest::Client` (proxy, TLS roots, connection pool). The layer still bounds
    /// every call with its upstream timeout. The default client follows no redirects, so a token
    /// is never sent to another host; give yours the same policy.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Shares verified tokens with every replica through Redis (feature `redis`), e.g.
    /// `redis://127.0.0.1:6379/` or `rediss://:password@host/0`: see [`shared`](crate::shared).
    /// The URL is checked when the configuration is built; its password never shows in `Debug`.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(Secret::new(url.into()));
        self
    }

    /// Shares verified tokens through a Redis Cluster (feature `redis`): the URLs of some or all
    /// of its nodes (all `redis://` or all `rediss://`; the others are discovered from one that
    /// answers), instead of
    /// [`redis_url`](Self::redis_url), which is a configuration error alongside it. Every key of
    /// one token shares a slot; `clear` walks every master: see [`shared`](crate::shared).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_cluster_urls<I>(mut self, urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.redis_cluster_urls = Some(
            urls.into_iter()
                .map(|url| Secret::new(url.into()))
                .collect(),
        );
        self
    }

    /// The fleet's key for signing what it shares (required with [`redis_url`](Self::redis_url);
    /// at least 32 bytes, the same on every replica; never shown by `Debug`). Every verdict and
    /// refusal written to Redis carries an HMAC-SHA256 of itself and the token hash it is stored
    /// under, and a replica accepts only entries signed with its key: a party that can write to
    /// Redis can deny service, but cannot make a replica accept a token LINE never verified for
    /// this fleet (a genuine entry saved earlier can be replayed until it runs out: see
    /// [`shared`](crate::shared)). Generate it with, e.g.,
    /// `openssl rand -base64 32`.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_signing_key(mut self, key: impl Into<String>) -> Self {
        self.redis_signing_key = Some(Secret::new(key.into()));
        self
    }

    /// During a rotation of the signing key: the key before the current one, whose entries are
    /// still accepted for [`redis_signing_key_overlap`](Self::redis_signing_key_overlap) after the
    /// layer is configured. Nothing is written with it.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_previous_signing_key(mut self, key: impl Into<String>) -> Self {
        self.redis_previous_signing_key = Some(Secret::new(key.into()));
        self
    }

    /// How long the [previous signing key](Self::redis_previous_signing_key) is accepted
    /// (default 1 hour): long enough for every replica to take the new key, plus the maximum TTL
    /// of the entries the old one signed.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_signing_key_overlap(mut self, overlap: Duration) -> Self {
        self.redis_signing_key_overlap = Some(overlap);
        self
    }

    /// Prefix of the shared cache's keys and invalidation channel (default `line-auth:`). Services
    /// with different channels or scopes may share one Redis; give each fleet its own prefix.
    /// It must not be empty, and ends with `:` (added if missing), so that `clear` never reaches
    /// another fleet's keys; nor does it reach those of a fleet whose prefix nests in this one
    /// (`app:staging:` under `app:`), whose keys it tells from its own by their shape.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_key_prefix = Some(prefix.into());
        self
    }

    /// Bound on each Redis call (default 50 ms). A call that takes longer is abandoned, the request
    /// goes on to LINE, and Redis is left alone for a second.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = Some(timeout);
        self
    }

    /// Validates and builds the configuration.
    pub fn build(self) -> Result<LineAuthConfig, ConfigError> {
        for (name, duration) in [
            ("upstream_timeout", self.upstream_timeout),
            ("upstream_attempt_timeout", self.upstream_attempt_timeout),
            ("cache_max_ttl", self.cache_max_ttl),
            ("negative_cache_ttl", self.negative_cache_ttl),
            ("stale_if_error", self.stale_if_error),
            ("jwks_refetch_floor", self.jwks_refetch_floor),
            ("jwks_max_age", self.jwks_max_age),
            #[cfg(feature = "redis")]
            ("redis_timeout", self.redis_timeout),
            #[cfg(feature = "redis")]
            ("redis_signing_key_overlap", self.redis_signing_key_overlap),
        ] {
            if let Some(duration) = duration {
                addable_to_the_clock(name, duration)?;
            }
        }
        if self.channel_secret.as_ref().is_some_and(Secret::is_blank) {
            return Err(ConfigError::BlankChannelSecret);
        }
        if let Some(channel) = &self.hs256_channel {
            if self.channel_secret.is_none() || !self.channel_ids.contains(channel) {
                return Err(ConfigError::Hs256WithoutChannelSecret(channel.clone()));
            }
        }
        if self.channel_ids.is_empty() {
            return Err(ConfigError::NoChannel);
        }
        for id in &self.channel_ids {
            if is_liff_id(id) {
                return Err(ConfigError::LiffIdAsChannelId(id.clone()));
            }
            if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::InvalidChannelId(id.clone()));
            }
        }
        let api_base = parse_api_base(self.api_base.as_deref().unwrap_or(DEFAULT_API_BASE))?;
        let required_scopes = self
            .required_scopes
            .unwrap_or_else(|| vec![DEFAULT_REQUIRED_SCOPE.to_owned()]);
        for scope in &required_scopes {
            if !is_scope_token(scope) {
                return Err(ConfigError::InvalidScope(scope.clone()));
            }
        }
        if required_scopes.len() > MAX_REQUIRED_SCOPES {
            return Err(ConfigError::TooMany {
                what: "required scopes",
                max: MAX_REQUIRED_SCOPES,
            });
        }
        if self.channel_ids.len() > MAX_CHANNELS {
            return Err(ConfigError::TooMany {
                what: "channel IDs",
                max: MAX_CHANNELS,
            });
        }
        let upstream_timeout = self.upstream_timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT);
        if upstream_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("upstream_timeout"));
        }
        // Zero would make every verification past the refetch floor wait for LINE's keys.
        if self.jwks_max_age.is_some_and(|max_age| max_age.is_zero()) {
            return Err(ConfigError::ZeroDuration("jwks_max_age"));
        }
        let attempt_timeout = self
            .upstream_attempt_timeout
            .unwrap_or(upstream_timeout)
            .min(upstream_timeout);
        if attempt_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("upstream_attempt_timeout"));
        }
        let max_attempts = self
            .upstream_max_attempts
            .unwrap_or(DEFAULT_UPSTREAM_MAX_ATTEMPTS);
        if max_attempts == 0 {
            return Err(ConfigError::Zero("upstream_max_attempts"));
        }
        let max_concurrent_verifications = self
            .max_concurrent_verifications
            .unwrap_or(DEFAULT_MAX_CONCURRENT_VERIFICATIONS);
        if max_concurrent_verifications == 0 {
            return Err(ConfigError::Zero("max_concurrent_verifications"));
        }
        // Tokio's semaphore refuses more permits than this.
        let max_concurrent_verifications =
            max_concurrent_verifications.min(tokio::sync::Semaphore::MAX_PERMITS);
        let max_pending_verifications = self
            .max_pending_verifications
            .unwrap_or(max_concurrent_verifications.saturating_mul(16));
        if max_pending_verifications == 0 {
            return Err(ConfigError::Zero("max_pending_verifications"));
        }
        let cache_max_ttl = self.cache_max_ttl.unwrap_or(DEFAULT_CACHE_MAX_TTL);
        let cache_max_entries = self.cache_max_entries.unwrap_or(DEFAULT_CACHE_MAX_ENTRIES);
        if cache_max_entries == 0 {
            return Err(ConfigError::Zero("cache_max_entries"));
        }
        let negative_cache_ttl = self
            .negative_cache_ttl
            .unwrap_or(DEFAULT_NEGATIVE_CACHE_TTL);
        let negative_cache_max_entries = self
            .negative_cache_max_entries
            .unwrap_or(DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES);
        if negative_cache_max_entries == 0 {
            return Err(ConfigError::Zero("negative_cache_max_entries"));
        }
        let stale_if_error = self.stale_if_error.filter(|grace| !grace.is_zero());
        let http_client = match self.http_client {
            Some(client) => client,
            // A configured try bounds opening a connection too, as it always has; by default 1 s.
            None => crate::line_api::default_http_client(
                self.upstream_attempt_timeout
                    .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
                    .min(upstream_timeout),
            )
            .map_err(ConfigError::HttpClient)?,
        };
        #[cfg(feature = "redis")]
        let target = match (self.redis_url, self.redis_cluster_urls) {
            (Some(_), Some(_)) => return Err(ConfigError::RedisUrlAndClusterUrls),
            (Some(url), None) => Some(Ok(url)),
            (None, Some(urls)) if urls.is_empty() => return Err(ConfigError::NoRedisClusterUrls),
            (None, Some(urls)) => Some(Err(urls)),
            (None, None) => None,
        };
        #[cfg(feature = "redis")]
        let redis = match target {
            Some(target) => {
                let timeout = self.redis_timeout.unwrap_or(DEFAULT_REDIS_TIMEOUT);
                if timeout.is_zero() {
                    return Err(ConfigError::ZeroDuration("redis_timeout"));
                }
                let mut prefix = self
                    .redis_key_prefix
                    .unwrap_or_else(|| DEFAULT_REDIS_KEY_PREFIX.to_owned());
                if prefix.is_empty() {
                    return Err(ConfigError::EmptyRedisKeyPrefix);
                }
                // `clear` deletes `{prefix}*`: without a delimiter, prefix `app` would reach `app2…`.
                if !prefix.ends_with(':') {
                    prefix.push(':');
                }
                let key = self
                    .redis_signing_key
                    .ok_or(ConfigError::MissingRedisSigningKey)?;
                let previous = self.redis_previous_signing_key;
                for key in std::iter::once(&key).chain(&previous) {
                    if key.expose().len() < MIN_SIGNING_KEY_LEN {
                        return Err(ConfigError::ShortRedisSigningKey);
                    }
                }
                let overlap = self
                    .redis_signing_key_overlap
                    .unwrap_or(DEFAULT_REDIS_SIGNING_KEY_OVERLAP);
                let signing = crate::fleet::SigningKeys::new(&key, previous.as_ref(), overlap);
                Some(match target {
                    Ok(url) => {
                        crate::fleet::RedisSettings::new(url.expose(), prefix, timeout, signing)?
                    }
                    Err(urls) => {
                        // A brace in the prefix would make it, not the token hash, the hash tag.
                        if prefix.contains(['{', '}']) {
                            return Err(ConfigError::BraceInRedisKeyPrefix);
                        }
                        let urls: Vec<String> =
                            urls.iter().map(|url| url.expose().to_owned()).collect();
                        crate::fleet::RedisSettings::cluster(&urls, prefix, timeout, signing)?
                    }
                })
            }
            None => None,
        };
        let mut channel_ids = self.channel_ids;
        let mut seen = std::collections::HashSet::new();
        channel_ids.retain(|id| seen.insert(id.clone()));
        Ok(LineAuthConfig {
            channel_ids: channel_ids
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            api_base,
            required_scopes: required_scopes
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
            upstream_timeout,
            retry: RetryPolicy {
                max_attempts,
                attempt_timeout,
                base_backoff: DEFAULT_RETRY_BASE_BACKOFF,
            },
            max_concurrent_verifications,
            max_pending_verifications,
            cache_max_ttl,
            cache_max_entries,
            negative_cache_ttl,
            negative_cache_max_entries,
            stale_if_error,
            channel_secret: self.channel_secret,
            hs256_channel: self.hs256_channel.map(String::into_boxed_str),
            jwks_refetch_floor: self
                .jwks_refetch_floor
                .unwrap_or(crate::id_token::JWKS_REFETCH_FLOOR),
            jwks_max_age: self.jwks_max_age.unwrap_or(crate::id_token::JWKS_MAX_AGE),
            http_client,
            #[cfg(feature = "redis")]
            redis,
        })
    }
}

/// Whether `scope` is an RFC 6750 §3 scope-token, `1*( %x21 / %x23-5B / %x5D-7E )`: safe inside
/// the challenge's quoted `scope` attribute and in a header value.
pub(crate) fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

pub(crate) fn parse_api_base(value: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: &'static str| ConfigError::InvalidApiBase {
        value: value.to_owned(),
        reason,
    };
    let mut url = Url::parse(value).map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("it must not have a query or fragment"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("it must name a host"));
    }
    // Endpoint paths are joined onto the base, so make its path a directory.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Whether `id` has the shape of a LIFF ID: the channel's numeric ID, a dash, and eight letters
/// or digits (`1234567890-AbcdEfgh`).
fn is_liff_id(id: &str) -> bool {
    id.split_once('-').is_some_and(|(channel, app)| {
        !channel.is_empty()
            && channel.bytes().all(|b| b.is_ascii_digit())
            && app.len() == 8
            && app.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A configuration that cannot work, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No channel ID was given (`LINE_CHANNEL_ID` unset or empty).
    #[error("no LINE channel ID configured: set LINE_CHANNEL_ID or call channel_id()")]
    NoChannel,
    /// A channel ID is not the numeric ID shown in the LINE Developers Console.
    #[error("invalid LINE channel ID {0:?}: expected the numeric channel ID")]
    InvalidChannelId(String),
    /// A LIFF ID (`{channel ID}-{8 letters or digits}`) was given where a channel ID belongs.
    #[error(
        "{0:?} is a LIFF ID, not a channel ID: configure the ID of the LINE Login channel that \
         holds the LIFF app (or of the MINI App channel)"
    )]
    LiffIdAsChannelId(String),
    /// The API base is not a usable http(s) URL.
    #[error("invalid LINE API base {value:?}: {reason}")]
    InvalidApiBase {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The authorization endpoint of a [`LineLoginClient`](crate::LineLoginClient) is not an
    /// http(s) URL.
    #[error("invalid LINE authorization endpoint {value:?}: {reason}")]
    InvalidAuthorizeEndpoint {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A required scope is empty or has characters RFC 6750 does not allow in a scope.
    #[error("invalid required scope {0:?}")]
    InvalidScope(String),
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A count that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A duration so long that adding it to the clock would overflow.
    #[error("{0} is too long: at most 100 years")]
    TooLong(&'static str),
    /// HS256 ID tokens need the channel secret and one of the configured channels.
    #[error("HS256 ID tokens for channel {0:?} need channel_secret() and that channel among channel_ids()")]
    Hs256WithoutChannelSecret(String),
    /// The channel secret is empty or blank: HS256 ID tokens signed with it could be made by
    /// anyone, and LINE would refuse the calls that send it.
    #[error("the channel secret is empty or blank")]
    BlankChannelSecret,
    /// The Redis key prefix is empty (feature `redis`): `clear` would scan every key.
    #[error("the Redis key prefix must not be empty")]
    EmptyRedisKeyPrefix,
    /// An environment variable that must be a whole number is not one.
    #[error("{name} must be a whole number, got {value:?}")]
    InvalidNumber {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// More than this crate supports, e.g. over 32 required scopes.
    #[error("too many {what}: at most {max}")]
    TooMany {
        /// What there are too many of.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    /// A shared cache is configured without the key its entries are signed with (feature `redis`).
    #[error(
        "a shared cache needs a signing key: set LINE_REDIS_SIGNING_KEY (or call \
         redis_signing_key()) to the same secret of at least 32 bytes on every replica"
    )]
    MissingRedisSigningKey,
    /// A signing key of the shared cache is shorter than 32 bytes (feature `redis`).
    #[error("the shared cache's signing key must be at least 32 bytes")]
    ShortRedisSigningKey,
    /// The Redis URL cannot be used (feature `redis`).
    #[error("invalid Redis URL {value}: {reason}")]
    InvalidRedisUrl {
        /// The URL, its password hidden.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `REDIS_URL` or `REDIS_CLUSTER_URLS` is set, but this build of line-auth lacks the
    /// `redis` feature.
    #[error(
        "REDIS_URL or REDIS_CLUSTER_URLS is set, but line-auth was built without its `redis` feature"
    )]
    RedisNotBuilt,
    /// Both a Redis URL and Redis Cluster URLs are configured (feature `redis`).
    #[error(
        "REDIS_URL (redis_url) and REDIS_CLUSTER_URLS (redis_cluster_urls) are mutually \
         exclusive: give one server or the nodes of one cluster"
    )]
    RedisUrlAndClusterUrls,
    /// Redis Cluster is configured with no node URL (feature `redis`).
    #[error("REDIS_CLUSTER_URLS (redis_cluster_urls) names no node")]
    NoRedisClusterUrls,
    /// With Redis Cluster, the key prefix holds `{` or `}` (feature `redis`), which would make
    /// it the hash tag of every key.
    #[error("with Redis Cluster the Redis key prefix must not contain `{{` or `}}`")]
    BraceInRedisKeyPrefix,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from_vars(vars: &[(&str, &str)]) -> Result<LineAuthConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LineAuthConfig::from_lookup(|name| vars.get(name).cloned())
    }

    /// A blank `LINE_REQUIRED_SCOPES` is unset, as a blank secret or Redis URL is: the default
    /// `profile` stands, rather than no requirement at all. Fewer scopes are asked for by name.
    #[test]
    fn blank_required_scopes_in_the_environment_keep_the_default() {
        for blank in ["", "  ", " , "] {
            let config = from_vars(&[
                ("LINE_CHANNEL_ID", "1440057261"),
                ("LINE_REQUIRED_SCOPES", blank),
            ])
            .unwrap();
            assert_eq!(config.required_scopes(), ["profile"], "{blank:?}");
        }
        let openid = from_vars(&[
            ("LINE_CHANNEL_ID", "1440057261"),
            ("LINE_REQUIRED_SCOPES", "openid"),
        ])
        .unwrap();
        assert_eq!(openid.required_scopes(), ["openid"]);
    }

    #[test]
    fn defaults_follow_line() {
        let config = LineAuthConfig::builder()
            .channel_id("1440057261")
            .build()
            .unwrap();
        assert_eq!(config.api_base(), "https://api.line.me");
        assert_eq!(config.required_scopes(), ["profile"]);
        assert_eq!(config.cache_max_ttl(), Duration::from_secs(300));
        assert_eq!(config.upstream_timeout(), DEFAULT_UPSTREAM_TIMEOUT);
        // The rest of README's configuration table, default by default.
        assert_eq!(config.upstream_timeout(), Duration::from_millis(3000));
        assert_eq!(config.retry.attempt_timeout, Duration::from_millis(3000));
        assert_eq!(config.retry.max_attempts, 3);
        assert_eq!(config.max_concurrent_verifications, 64);
        assert_eq!(config.max_pending_verifications, 16 * 64);
        assert_eq!(config.cache_max_entries, 65_536);
        assert_eq!(config.negative_cache_ttl, Duration::from_secs(30));
        assert_eq!(config.negative_cache_max_entries, 65_536);
        assert_eq!(config.stale_if_error, None);
        assert!(config.channel_secret.is_none());
        assert_eq!(config.jwks_refetch_floor, Duration::from_secs(60));
        assert_eq!(config.jwks_max_age, Duration::from_secs(24 * 60 * 60));
        assert_eq!(config.hs256_channel, None);
    }

    /// Every variable [`LineAuthConfig::from_env`]'s table documents, and a value for each that
    /// differs from its default.
    const SIGNING_KEY: &str = "fleet-signing-key-of-at-least-32-bytes";
    const PREVIOUS_SIGNING_KEY: &str = "the-previous-fleet-signing-key-0123";

    fn every_documented_variable() -> Vec<(&'static str, &'static str)> {
        vec![
            ("LINE_CHANNEL_ID", " 1440057261, 1234567890 ,"),
            ("LINE_API_BASE", " http://127.0.0.1:9/line "),
            ("LINE_REQUIRED_SCOPES", "profile openid,email"),
            ("LINE_UPSTREAM_TIMEOUT_MS", "1500"),
            ("LINE_UPSTREAM_ATTEMPT_TIMEOUT_MS", "400"),
            ("LINE_UPSTREAM_MAX_ATTEMPTS", "5"),
            ("LINE_MAX_CONCURRENT_VERIFICATIONS", "7"),
            ("LINE_CACHE_MAX_TTL_SECS", "60"),
            ("LINE_CACHE_MAX_ENTRIES", "100"),
            ("LINE_NEGATIVE_CACHE_TTL_SECS", "9"),
            ("LINE_NEGATIVE_CACHE_MAX_ENTRIES", "11"),
            ("LINE_STALE_IF_ERROR_SECS", "120"),
            ("LINE_CHANNEL_SECRET", " s3cr3t-value "),
            ("REDIS_URL", " redis://:hunter2@cache.internal:6380/2 "),
            // Exclusive of REDIS_URL: blank counts as unset (its own test gives it a value).
            ("REDIS_CLUSTER_URLS", " "),
            ("LINE_REDIS_SIGNING_KEY", SIGNING_KEY),
            ("LINE_REDIS_PREVIOUS_SIGNING_KEY", PREVIOUS_SIGNING_KEY),
            ("LINE_REDIS_SIGNING_KEY_OVERLAP_SECS", "600"),
            ("LINE_REDIS_KEY_PREFIX", "api-a:"),
            ("LINE_REDIS_TIMEOUT_MS", "20"),
        ]
    }

    #[test]
    fn every_variable_the_env_table_documents_is_given_above() {
        // The table in `from_env`'s docs, read from this file: a variable documented later
        // without a value above fails here, not silently in production.
        let source = include_str!("config.rs");
        let table = &source[source.find("/// | variable | meaning | default |").unwrap()..];
        let table = &table[..table.find("pub fn from_env").unwrap()];
        let documented: Vec<&str> = table
            .lines()
            .filter_map(|line| line.trim().strip_prefix("/// | `"))
            .filter_map(|row| row.split('`').next())
            .collect();
        let given: Vec<&str> = every_documented_variable()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(documented, given);
    }

    #[test]
    fn env_reads_every_documented_variable_into_the_config() {
        let vars = every_documented_variable();
        let asked = std::sync::Mutex::new(Vec::new());
        let built = LineAuthConfig::from_lookup(|name| {
            asked.lock().unwrap().push(name.to_owned());
            vars.iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, value)| value.to_string())
        });
        #[cfg(not(feature = "redis"))]
        {
            // Without the feature a Redis URL is refused; every other variable is still read.
            assert_eq!(built.unwrap_err(), ConfigError::RedisNotBuilt);
        }
        #[cfg(feature = "redis")]
        {
            let config = built.unwrap();
            let mut asked = asked.into_inner().unwrap();
            asked.sort();
            let mut documented: Vec<String> =
                vars.iter().map(|(name, _)| name.to_string()).collect();
            documented.sort();
            assert_eq!(asked, documented, "each variable is looked up once");

            assert_eq!(config.channel_ids(), ["1440057261", "1234567890"]);
            assert_eq!(config.api_base(), "http://127.0.0.1:9/line");
            assert_eq!(config.required_scopes(), ["profile", "openid", "email"]);
            assert_eq!(config.upstream_timeout(), Duration::from_millis(1500));
            assert_eq!(config.retry.attempt_timeout, Duration::from_millis(400));
            assert_eq!(config.retry.max_attempts, 5);
            assert_eq!(config.max_concurrent_verifications, 7);
            assert_eq!(config.cache_max_ttl(), Duration::from_secs(60));
            assert_eq!(config.cache_max_entries(), 100);
            assert_eq!(config.negative_cache_ttl(), Duration::from_secs(9));
            assert_eq!(config.negative_cache_max_entries(), 11);
            assert_eq!(config.stale_if_error(), Some(Duration::from_secs(120)));
            assert_eq!(
                config.channel_secret.as_ref().map(Secret::expose),
                Some("s3cr3t-value")
            );
            // The settings' fields are private to `shared`; their `Debug` shows each one.
            assert_eq!(
                format!("{:?}", config.redis.unwrap()),
                r#"RedisSettings { url: "redis://:redacted@cache.internal:6380/2", key_prefix: "api-a:", timeout: 20ms, signing: SigningKeys { previous_for: Some(600s), .. } }"#
            );
        }
    }

    #[test]
    fn channel_secret_is_read_from_env_and_never_shown() {
        let config = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            ("LINE_CHANNEL_SECRET", "s3cr3t-value"),
        ])
        .unwrap();
        assert_eq!(
            config.channel_secret.as_ref().map(Secret::expose),
            Some("s3cr3t-value")
        );
        let shown = format!(
            "{config:?} {:?}",
            LineAuthConfig::builder().channel_secret("s3cr3t-value")
        );
        assert!(!shown.contains("s3cr3t"), "{shown}");
        // Shown as set, its value hidden.
        assert!(shown.contains("Some(Secret(<redacted>))"), "{shown}");
    }

    /// An empty secret would make HS256 ID tokens anyone can sign: HMAC under an empty key.
    #[test]
    fn a_blank_channel_secret_is_refused() {
        for blank in ["", "   ", "\t"] {
            let with_secret = |secret: &str| {
                LineAuthConfig::builder()
                    .channel_id("1234567890")
                    .channel_secret(secret)
            };
            assert!(
                matches!(
                    with_secret(blank).build(),
                    Err(ConfigError::BlankChannelSecret)
                ),
                "{blank:?}"
            );
            assert!(
                matches!(
                    with_secret(blank).hs256_id_tokens("1234567890").build(),
                    Err(ConfigError::BlankChannelSecret)
                ),
                "{blank:?} with HS256"
            );
        }
        assert!(LineAuthConfig::builder()
            .channel_id("1234567890")
            .channel_secret("s3cr3t")
            .hs256_id_tokens("1234567890")
            .build()
            .is_ok());
    }

    #[test]
    fn durations_up_to_a_century_are_accepted_and_none_longer() {
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let with_ttl = |ttl| {
            LineAuthConfig::builder()
                .channel_id("1")
                .cache_max_ttl(ttl)
                .build()
        };
        assert!(with_ttl(century).is_ok());
        assert_eq!(
            with_ttl(century + Duration::from_secs(1)).unwrap_err(),
            ConfigError::TooLong("cache_max_ttl")
        );
    }

    /// Without the `redis` feature, either way of asking for the shared cache is refused.
    #[cfg(not(feature = "redis"))]
    #[test]
    fn a_redis_url_of_either_kind_is_refused_without_the_feature() {
        for variable in ["REDIS_URL", "REDIS_CLUSTER_URLS"] {
            assert_eq!(
                from_vars(&[
                    ("LINE_CHANNEL_ID", "1"),
                    (variable, "redis://127.0.0.1:6379")
                ])
                .unwrap_err(),
                ConfigError::RedisNotBuilt,
                "{variable}"
            );
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_settings_come_from_the_environment_and_hide_the_password() {
        let config = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            ("REDIS_URL", " redis://:hunter2@cache.internal:6380/2 "),
            ("LINE_REDIS_SIGNING_KEY", SIGNING_KEY),
            ("LINE_REDIS_KEY_PREFIX", "api-a:"),
            ("LINE_REDIS_TIMEOUT_MS", "20"),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache.internal:6380"), "{shown}");
        assert!(
            shown.contains("api-a:") && shown.contains("20ms"),
            "{shown}"
        );
        assert!(
            format!("{:?}", from_vars(&[("LINE_CHANNEL_ID", "1")]).unwrap())
                .contains("redis: None")
        );
        let tls = LineAuthConfig::builder()
            .channel_id("1")
            .redis_url("rediss://:hunter2@cache.example:6380/0")
            .redis_signing_key(SIGNING_KEY)
            .build();
        assert!(tls.is_ok(), "TLS URLs are supported: {tls:?}");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_cluster_urls_come_from_the_environment_exclusive_of_redis_url() {
        let config = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            (
                "REDIS_CLUSTER_URLS",
                " rediss://:hunter2@10.0.0.1:7000/, rediss://:hunter2@10.0.0.2:7001 ,",
            ),
            ("LINE_REDIS_SIGNING_KEY", SIGNING_KEY),
        ])
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("10.0.0.1:7000") && shown.contains("10.0.0.2:7001"),
            "{shown}"
        );
        let both = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            ("REDIS_URL", "redis://127.0.0.1/"),
            ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000/"),
            ("LINE_REDIS_SIGNING_KEY", SIGNING_KEY),
        ])
        .unwrap_err();
        assert_eq!(both, ConfigError::RedisUrlAndClusterUrls);
        assert!(both.to_string().contains("mutually exclusive"), "{both}");
        let cluster = || {
            LineAuthConfig::builder()
                .channel_id("1")
                .redis_cluster_urls(["redis://127.0.0.1:7000/"])
        };
        assert_eq!(
            cluster().build().unwrap_err(),
            ConfigError::MissingRedisSigningKey
        );
        assert_eq!(
            cluster()
                .redis_signing_key(SIGNING_KEY)
                .redis_key_prefix("app{1}:")
                .build()
                .unwrap_err(),
            ConfigError::BraceInRedisKeyPrefix
        );
        assert_eq!(
            LineAuthConfig::builder()
                .channel_id("1")
                .redis_cluster_urls(Vec::<String>::new())
                .redis_signing_key(SIGNING_KEY)
                .build()
                .unwrap_err(),
            ConfigError::NoRedisClusterUrls
        );
        let error = cluster()
            .redis_cluster_urls(["redis://127.0.0.1:7000/", "rediss://:hunter2@x/"])
            .redis_signing_key(SIGNING_KEY)
            .build()
            .unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidRedisUrl { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"), "{error}");
        // A cluster has database 0 alone: another would fail on every connection instead.
        let error = cluster()
            .redis_cluster_urls(["redis://:hunter2@127.0.0.1:7001/2"])
            .redis_signing_key(SIGNING_KEY)
            .build()
            .unwrap_err();
        assert_eq!(
            error,
            ConfigError::InvalidRedisUrl {
                value: "redis://:redacted@127.0.0.1:7001/2".to_owned(),
                reason: "a Redis Cluster has database 0 only".to_owned(),
            }
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn unusable_redis_settings_are_refused_at_start_up() {
        let error = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            ("REDIS_URL", "http://:hunter2@cache.internal/"),
            ("LINE_REDIS_SIGNING_KEY", SIGNING_KEY),
        ])
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::InvalidRedisUrl { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(
            LineAuthConfig::builder()
                .channel_id("1")
                .redis_url("redis://127.0.0.1/")
                .redis_signing_key(SIGNING_KEY)
                .redis_timeout(Duration::ZERO)
                .build()
                .unwrap_err(),
            ConfigError::ZeroDuration("redis_timeout")
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_shared_cache_needs_a_signing_key_of_32_bytes_that_is_never_shown() {
        let redis = || {
            LineAuthConfig::builder()
                .channel_id("1")
                .redis_url("redis://127.0.0.1/")
        };
        assert_eq!(
            redis().build().unwrap_err(),
            ConfigError::MissingRedisSigningKey
        );
        assert_eq!(
            redis()
                .redis_signing_key("x".repeat(31))
                .build()
                .unwrap_err(),
            ConfigError::ShortRedisSigningKey
        );
        assert!(redis().redis_signing_key("x".repeat(32)).build().is_ok());
        assert_eq!(
            redis()
                .redis_signing_key(SIGNING_KEY)
                .redis_previous_signing_key("too short")
                .build()
                .unwrap_err(),
            ConfigError::ShortRedisSigningKey
        );
        let config = redis()
            .redis_signing_key(SIGNING_KEY)
            .redis_previous_signing_key(PREVIOUS_SIGNING_KEY)
            .build()
            .unwrap();
        let shown = format!("{config:?}");
        assert!(
            !shown.contains(SIGNING_KEY) && !shown.contains(PREVIOUS_SIGNING_KEY),
            "{shown}"
        );
        assert!(shown.contains("previous_for: Some(3600s)"), "{shown}");
        let from_env = from_vars(&[
            ("LINE_CHANNEL_ID", "1"),
            ("REDIS_URL", "redis://127.0.0.1/"),
        ]);
        assert_eq!(from_env.unwrap_err(), ConfigError::MissingRedisSigningKey);
    }

    #[test]
    fn env_without_channel_is_an_error() {
        assert_eq!(from_vars(&[]).unwrap_err(), ConfigError::NoChannel);
        assert_eq!(
            from_vars(&[("LINE_CHANNEL_ID", " , ")]).unwrap_err(),
            ConfigError::NoChannel
        );
    }

    #[test]
    fn env_with_bad_number_names_the_variable() {
        let error =
            from_vars(&[("LINE_CHANNEL_ID", "1"), ("LINE_CACHE_MAX_TTL_SECS", "5m")]).unwrap_err();
        assert!(
            error.to_string().contains("LINE_CACHE_MAX_TTL_SECS"),
            "{error}"
        );
    }

    #[test]
    fn invalid_values_are_rejected_at_build() {
        assert_eq!(
            LineAuthConfig::builder()
                .channel_id("1234567890-AbcdEfgh")
                .build()
                .unwrap_err(),
            ConfigError::LiffIdAsChannelId("1234567890-AbcdEfgh".into())
        );
        for not_a_liff_id in [
            "1234567890-Abcd",
            "-AbcdEfgh",
            "12a-AbcdEfgh",
            "1234567890-AbcdEfg!",
        ] {
            assert!(
                matches!(
                    LineAuthConfig::builder().channel_id(not_a_liff_id).build(),
                    Err(ConfigError::InvalidChannelId(_))
                ),
                "{not_a_liff_id}"
            );
        }
        let base = || LineAuthConfig::builder().channel_id("1");
        assert!(matches!(
            LineAuthConfig::builder().channel_id("abc").build(),
            Err(ConfigError::InvalidChannelId(_))
        ));
        for bad in [
            "ftp://x",
            "not a url",
            "http://x/?q=1",
            "http://x/#top",
            "mailto:a@b",
        ] {
            assert!(
                matches!(
                    base().api_base(bad).build(),
                    Err(ConfigError::InvalidApiBase { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            base().required_scopes(["pro file"]).build(),
            Err(ConfigError::InvalidScope(_))
        ));
        assert!(matches!(
            base().required_scopes(["a\"b"]).build(),
            Err(ConfigError::InvalidScope(_))
        ));
        assert_eq!(
            base().jwks_max_age(Duration::ZERO).build().unwrap_err(),
            ConfigError::ZeroDuration("jwks_max_age")
        );
        assert_eq!(
            base().upstream_timeout(Duration::ZERO).build().unwrap_err(),
            ConfigError::ZeroDuration("upstream_timeout")
        );
        assert_eq!(
            base().cache_max_entries(0).build().unwrap_err(),
            ConfigError::Zero("cache_max_entries")
        );
    }

    #[test]
    fn a_channel_id_is_one_to_32_digits() {
        let with_id = |id: &str| LineAuthConfig::builder().channel_id(id).build();
        assert!(with_id("1").is_ok());
        assert!(with_id(&"9".repeat(32)).is_ok());
        for bad in [String::new(), "9".repeat(33)] {
            assert_eq!(
                with_id(&bad).unwrap_err(),
                ConfigError::InvalidChannelId(bad.clone())
            );
        }
    }

    /// RFC 6750 §3: a scope is one or more of `%x21 / %x23-5B / %x5D-7E`.
    #[test]
    fn a_required_scope_is_made_of_rfc_6750_scope_characters() {
        let with_scope = |scope: &str| {
            LineAuthConfig::builder()
                .channel_id("1")
                .required_scopes([scope])
                .build()
        };
        for good in ["!", "#", "[", "]", "~", "chat_message.write", "A-Z:0"] {
            assert!(with_scope(good).is_ok(), "{good}");
        }
        for bad in ["", " ", "\"", "\\", "\u{7f}", "é"] {
            assert_eq!(
                with_scope(bad).unwrap_err(),
                ConfigError::InvalidScope(bad.to_owned()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn at_most_32_required_scopes_and_1024_channels() {
        let scopes = |n: usize| {
            LineAuthConfig::builder()
                .channel_id("1")
                .required_scopes((0..n).map(|i| format!("s{i}")))
                .build()
        };
        assert!(scopes(32).is_ok());
        assert_eq!(
            scopes(33).unwrap_err(),
            ConfigError::TooMany {
                what: "required scopes",
                max: 32
            }
        );
        let channels = |n: u32| {
            LineAuthConfig::builder()
                .channel_ids((1..=n).map(|id| id.to_string()))
                .build()
        };
        assert!(channels(1024).is_ok());
        assert_eq!(
            channels(1025).unwrap_err(),
            ConfigError::TooMany {
                what: "channel IDs",
                max: 1024
            }
        );
    }
}
