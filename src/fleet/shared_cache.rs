//! The shared cache on Redis: verdicts, refusals, sign-outs and forget marks, the claim that
//! lets one replica ask LINE for the fleet, and the invalidation channel with its keepalive.
//! What it stores and why is documented on [`crate::shared`].

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use tokio::sync::{mpsc, watch, Notify};

use crate::clock;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::config::{ConfigError, Secret};
use crate::log_throttle::LogThrottle;
use crate::rejection::InvalidReason;
use crate::stats::{Counters, Event};
use crate::token::{DigestHashBuilder, TokenDigest};
use crate::user::{LineUser, SerializedUser};

use super::outbox::{Outbox, OUTBOX_LIMIT};
use super::{Claim, Invalidation, Notice, SharedVerdict};

/// After a failed Redis call, Redis is skipped this long: an outage costs one timeout per second,
/// not one per request.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Bound on one attempt to connect (the command connection or the subscription).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait between attempts to connect the subscription. Until it subscribes again, a
/// replica hears no invalidation, even with Redis back and no call of its own to tell it so (all
/// its requests served from memory): this bounds the wait between attempts, and with it how long
/// it may serve a token logged out meanwhile where Redis refuses a connection at once (an attempt
/// at a Redis that does not answer takes up to the connect timeout).
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Shortest time between two attempts to connect the subscription, where Redis answering a call
/// again cuts a wait short (once per outage: should subscribing alone keep failing, the backoff
/// holds).
const MIN_RECONNECT_GAP: Duration = Duration::from_millis(100);
/// How often the subscription proves it is alive: the replica publishes on a channel of its own
/// and expects to hear it back on the subscription.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(1);
/// Nothing heard for this long: the subscription is taken for dead (a half-open connection
/// delivers nothing and reports nothing) and made anew.
const KEEPALIVE_DEADLINE: Duration = Duration::from_secs(3);

/// How many tokens verified without the fleet's sign-outs read are remembered one by one until
/// they are read; past that, every verdict this replica holds is dropped instead.
const UNREAD_LIMIT: usize = 4096;

/// How many of them one round of the courier reads at most, and for how long: a backlog costs
/// Redis a little at a time, and the invalidations the courier retries wait little.
const UNREAD_BATCH: usize = 256;
const UNREAD_ROUND_BUDGET: Duration = Duration::from_millis(250);
/// How long a forget is remembered in Redis at least, so that a verdict shared late by a replica
/// that started verifying before it is taken back: longer than any verification takes (the
/// upstream timeout, 3 s by default, plus the Redis calls; see `tombstone_ttl`).
const TOMBSTONE_TTL: Duration = Duration::from_secs(30);
/// How often a replica waiting on another's verification looks for its verdict.
const CLAIM_POLL: Duration = Duration::from_millis(10);
/// How far apart the clocks of a cluster's nodes may be, in milliseconds, for comparing a
/// forget's time with a verification's.
const CLUSTER_CLOCK_SKEW: u64 = 1000;
/// Keys deleted per round trip when clearing the shared cache.
const CLEAR_BATCH: usize = 500;

/// Reads a token's verdict, refusal and sign-out, Redis's clock, and claims the token when none of
/// the three is there: what a miss needs before asking LINE, in one round trip.
/// Returns `{verdict, refusal, sign-out, seconds, microseconds, claim}`, where claim is 1 (claimed
/// now), 0 (another replica holds it) or -1 (not tried: something is stored). A verdict or
/// refusal of another type than a string (which `GET` refuses) is read as none, as `MGET` reads
/// it, so that it costs a LINE call and is written over, not the script; a sign-out of any type
/// still counts.
const READ_AND_CLAIM: &str = r"
local function string_at(key)
  local value = redis.pcall('GET', key)
  if type(value) == 'table' and value.err then return false end
  return value
end
local verified = string_at(KEYS[1])
local refused = string_at(KEYS[2])
local signed_out = redis.call('EXISTS', KEYS[3]) == 1 and '1' or false
local now = redis.call('TIME')
local claim = -1
if not verified and not refused and not signed_out then
  if redis.call('SET', KEYS[4], '1', 'PX', ARGV[1], 'NX') then claim = 1 else claim = 0 end
end
return {verified, refused, signed_out, now[1], now[2], claim}
";

/// Shares a verified token's verdict unless a forget came since its verification began: writes
/// the verdict `KEYS[1]` (`ARGV[1]`, for `ARGV[2]` ms) and ends the claim `KEYS[2]`, unless one of
/// the forget marks `KEYS[3..]` holds a time at or after `ARGV[3]`, in which case it only ends the
/// claim. Returns 1 if it wrote the verdict, 0 if not. A replica waiting on the claim then never
/// reads a verdict the forget covered; where the marks are in other slots (a cluster's user and
/// "forget everything" marks), the check after the write takes such a verdict back.
const SHARE_UNLESS_FORGOTTEN: &str = r"
local since = tonumber(ARGV[3])
for i = 3, #KEYS do
  local at = tonumber(redis.call('GET', KEYS[i]))
  if at and at >= since then
    redis.call('DEL', KEYS[2])
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
";

/// What a separate claim (where scripts are refused) found.
pub(crate) enum Claimed {
    /// This replica asks LINE: it holds the claim, or Redis could not tell.
    Ours,
    /// Another replica holds the claim: wait for its verdict.
    Theirs,
    /// A verdict was shared between this replica's read and its claim.
    Known(SharedVerdict),
}

/// A reading of Redis's clock, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RedisTime(u64);

impl RedisTime {
    /// From the two numbers Redis's `TIME` answers: seconds and microseconds.
    fn of_time(secs: u64, micros: u64) -> Self {
        Self(secs * 1000 + micros / 1000)
    }
}

/// Where the fleet counts what its Redis calls did: the layer's counters on a request's path,
/// the notice channel from a background task.
pub(crate) trait Tally: Sync {
    fn count(&self, event: Event);
}

impl Tally for Counters {
    fn count(&self, event: Event) {
        self.record(event);
    }
}

impl Tally for mpsc::Sender<Notice> {
    fn count(&self, event: Event) {
        // A count lost to a full backlog is only a count; the invalidations are never dropped.
        let _ = self.try_send(Notice::Counted(event));
    }
}

/// The fleet's keys for signing what it shares in Redis: entries are signed with the current
/// key, and read under it or, until the overlap ends, under the previous one.
///
/// The MAC (HMAC-SHA256) covers the kind of entry, the token hash it is stored under and the
/// entry itself, so an entry forged without the key, or a genuine one copied onto another
/// token's key, is refused. Sign-outs, claims and forget marks are not signed: forging one can
/// only make a replica refuse a token or ask LINE, never accept one.
#[derive(Clone)]
pub(crate) struct SigningKeys {
    current: Arc<[u8]>,
    previous: Option<(Arc<[u8]>, clock::Instant)>,
    overlap: Duration,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys themselves are never shown.
        f.debug_struct("SigningKeys")
            .field(
                "previous_for",
                &self.previous.as_ref().map(|_| self.overlap),
            )
            .finish_non_exhaustive()
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl SigningKeys {
    pub(crate) fn new(current: &Secret, previous: Option<&Secret>, overlap: Duration) -> Self {
        let bytes = |key: &Secret| Arc::<[u8]>::from(key.expose().as_bytes());
        Self {
            current: bytes(current),
            previous: previous.map(|key| (bytes(key), clock::now() + overlap)),
            overlap,
        }
    }

    fn mac(key: &[u8], kind: &str, digest: &TokenDigest, payload: &str) -> HmacSha256 {
        use hmac::{KeyInit, Mac};
        // Any key length is valid for HMAC; the configuration insists on 32 bytes or more.
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(digest.as_bytes());
        mac.update(b":");
        mac.update(payload.as_bytes());
        mac
    }

    /// `payload`, signed for storing as a `kind` entry of `digest`: `{base64url MAC}.{payload}`.
    fn seal(&self, kind: &str, digest: &TokenDigest, payload: &str) -> String {
        use hmac::Mac;
        let tag = Self::mac(&self.current, kind, digest, payload)
            .finalize()
            .into_bytes();
        let mut sealed = URL_SAFE_NO_PAD.encode(tag);
        sealed.push('.');
        sealed.push_str(payload);
        sealed
    }

    /// The payload of a stored `kind` entry of `digest`, if a key of this fleet signed it for
    /// that very entry.
    fn open<'a>(&self, kind: &str, digest: &TokenDigest, stored: &'a str) -> Option<&'a str> {
        use hmac::Mac;
        let (tag, payload) = stored.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| clock::now() < *until)
            .map(|(key, _)| &**key);
        std::iter::once(&*self.current)
            .chain(previous)
            .any(|key| {
                Self::mac(key, kind, digest, payload)
                    .verify_slice(&tag)
                    .is_ok()
            })
            .then_some(payload)
    }
}

/// Where the shared cache lives: one Redis server, or a Redis Cluster.
// One per layer, built at start-up: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Target {
    Single(redis::Client),
    /// The cluster's client, and a plain client per configured node for the subscription (a
    /// message published on any node of a cluster reaches the subscribers of every node).
    Cluster {
        client: ClusterClient,
        nodes: Arc<[redis::Client]>,
    },
}

/// The `redis` part of [`LineAuthConfig`](crate::LineAuthConfig), checked when it is built.
#[derive(Clone)]
pub(crate) struct RedisSettings {
    target: Target,
    signing: SigningKeys,
    /// The URL with its password hidden, for `Debug` and errors.
    shown_url: Box<str>,
    key_prefix: Arc<str>,
    timeout: Duration,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.shown_url)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("signing", &self.signing)
            .finish()
    }
}

impl RedisSettings {
    pub(crate) fn new(
        url: &str,
        key_prefix: String,
        timeout: Duration,
        signing: SigningKeys,
    ) -> Result<Self, ConfigError> {
        let shown_url = without_password(url);
        let client = redis::Client::open(url).map_err(|error| ConfigError::InvalidRedisUrl {
            value: shown_url.clone(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            target: Target::Single(client),
            signing,
            shown_url: shown_url.into(),
            key_prefix: key_prefix.into(),
            timeout,
        })
    }

    /// A Redis Cluster reached through any of `urls` (its nodes, `redis://` or `rediss://`).
    pub(crate) fn cluster(
        urls: &[String],
        key_prefix: String,
        timeout: Duration,
        signing: SigningKeys,
    ) -> Result<Self, ConfigError> {
        let shown: Vec<String> = urls.iter().map(|url| without_password(url)).collect();
        let shown_url = shown.join(",");
        let invalid = |value: &str, error: redis::RedisError| ConfigError::InvalidRedisUrl {
            value: value.to_owned(),
            reason: error.to_string(),
        };
        let nodes = urls
            .iter()
            .zip(&shown)
            .map(|(url, shown)| {
                let node = redis::Client::open(url.as_str()).map_err(|e| invalid(shown, e))?;
                // Otherwise every connection would fail, on `SELECT`.
                if node.get_connection_info().redis_settings().db() != 0 {
                    return Err(ConfigError::InvalidRedisUrl {
                        value: shown.clone(),
                        reason: "a Redis Cluster has database 0 only".to_owned(),
                    });
                }
                Ok(node)
            })
            .collect::<Result<Arc<[_]>, _>>()?;
        let client = cluster_client(
            nodes.iter().map(|node| node.get_connection_info().clone()),
            timeout,
        )
        .map_err(|e| invalid(&shown_url, e))?;
        Ok(Self {
            target: Target::Cluster { client, nodes },
            signing,
            shown_url: shown_url.into(),
            key_prefix: key_prefix.into(),
            timeout,
        })
    }

    fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster { .. })
    }

    /// The servers the subscription may listen on, in the order they are tried (in a cluster,
    /// the configured nodes; the others are learned once subscribed, see
    /// [`other_masters`](Self::other_masters)).
    fn subscription_clients(&self) -> &[redis::Client] {
        match &self.target {
            Target::Single(client) => std::slice::from_ref(client),
            Target::Cluster { nodes, .. } => nodes,
        }
    }

    /// Clients for the masters a `CLUSTER NODES` listing names beyond the configured nodes,
    /// reached as those are (credentials, TLS): a fleet given a few nodes must outlive them.
    fn other_masters(&self, listing: &str) -> Vec<redis::Client> {
        let Target::Cluster { nodes, .. } = &self.target else {
            return Vec::new();
        };
        let Some(template) = nodes.first().map(redis::Client::get_connection_info) else {
            return Vec::new();
        };
        let mut masters = masters(listing);
        // Each node lists the cluster in an order of its own: the subscription's round must
        // not change with the node it was learned from.
        masters.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
        masters
            .into_iter()
            .filter_map(|master| {
                let address = match template.addr() {
                    redis::ConnectionAddr::Tcp(..) => {
                        redis::ConnectionAddr::Tcp(master.ip, master.port)
                    }
                    // The certificate is for the name the node announces, if it does.
                    redis::ConnectionAddr::TcpTls {
                        insecure,
                        tls_params,
                        ..
                    } => redis::ConnectionAddr::TcpTls {
                        host: master.hostname.unwrap_or(master.ip),
                        port: master.port,
                        insecure: *insecure,
                        tls_params: tls_params.clone(),
                    },
                    _ => return None,
                };
                let known = nodes
                    .iter()
                    .any(|node| *node.get_connection_info().addr() == address);
                if known {
                    return None;
                }
                redis::Client::open(template.clone().set_addr(address)).ok()
            })
            .collect()
    }
}

/// A cluster client starting from `seeds`.
fn cluster_client(
    seeds: impl IntoIterator<Item = redis::ConnectionInfo>,
    timeout: Duration,
) -> redis::RedisResult<ClusterClient> {
    ClusterClientBuilder::new(seeds)
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(timeout)
        // Each call is bounded by the Redis timeout anyway; retries only within it.
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(u64::try_from(PAUSE_AFTER_FAILURE.as_millis()).unwrap_or(1000))
        .build()
}

/// A connection for commands: to the one server, or to the cluster, which routes each command
/// to the node of its key's slot, splits multi-key `MGET`, `DEL` and `UNLINK` by slot, follows
/// the slots when they move, and reconnects by itself. A pipeline sent to the cluster must keep
/// to one slot. `Node` is a plain connection to one node of the cluster, for `PUBLISH`.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Node(MultiplexedConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            Self::Node(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Node(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
            Self::Node(connection) => connection.get_db(),
        }
    }
}

/// `url` with any password replaced, so it can be shown.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            // redis-rs also reads `?pass=` (Unix-socket URLs): shown, the value is hidden too.
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(name, value)| {
                        let hidden = matches!(&*name, "pass" | "password");
                        let value = if hidden { "redacted".into() } else { value };
                        (name.into_owned(), value.into_owned())
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

impl Invalidation {
    /// The message published on the invalidation channel.
    fn message(&self) -> String {
        match self {
            Self::Token(digest) => format!("t:{}", digest.hex()),
            Self::Refused(digest) => format!("n:{}", digest.hex()),
            Self::Revoked(digest, lasting) => {
                format!("r:{}:{}", digest.hex(), lasting.as_millis())
            }
            Self::User(user_id) => format!("u:{user_id}"),
            Self::All => "*".to_owned(),
        }
    }

    /// Reads a message back; what another version might send and this one does not know is
    /// ignored rather than guessed at.
    pub(crate) fn parse(message: &str) -> Option<Self> {
        if message == "*" {
            return Some(Self::All);
        }
        if let Some(hex) = message.strip_prefix("t:") {
            return TokenDigest::from_hex(hex).map(Self::Token);
        }
        if let Some(hex) = message.strip_prefix("n:") {
            return TokenDigest::from_hex(hex).map(Self::Refused);
        }
        if let Some((hex, millis)) = message
            .strip_prefix("r:")
            .and_then(|rest| rest.split_once(':'))
        {
            let lasting = Duration::from_millis(millis.parse().ok()?);
            return TokenDigest::from_hex(hex).map(|digest| Self::Revoked(digest, lasting));
        }
        message
            .strip_prefix("u:")
            .filter(|user_id| !user_id.is_empty())
            .map(|user_id| Self::User(user_id.into()))
    }
}

/// The shared entry for a verified token.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredVerdict<'a> {
    user: &'a LineUser,
    /// Unix milliseconds after which LINE must be asked again.
    fresh_until_ms: u64,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadedVerdict {
    user: SerializedUser,
    fresh_until_ms: u64,
}

fn refusal_code(reason: InvalidReason) -> &'static str {
    match reason {
        InvalidReason::Expired => "expired",
        InvalidReason::Revoked => "revoked",
        InvalidReason::NotJws => "not_jws",
        InvalidReason::Rejected => "rejected",
    }
}

fn refusal_from_code(code: &str) -> InvalidReason {
    match code {
        "expired" => InvalidReason::Expired,
        "revoked" => InvalidReason::Revoked,
        "not_jws" => InvalidReason::NotJws,
        _ => InvalidReason::Rejected,
    }
}

fn unix_millis(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds from now until `time`, if it is in the future.
fn millis_until(time: SystemTime) -> Option<u64> {
    let left = time.duration_since(SystemTime::now()).ok()?;
    u64::try_from(left.as_millis()).ok().filter(|&ms| ms > 0)
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A shared verdict from the values of a token's keys; a refusal wins, since a logout leaves one
/// beside any verdict shared while it happened. Verdicts and refusals count only with this
/// fleet's signature for this very token; a sign-out counts as it is (forging one only denies).
/// Values are read as bytes: one that is not text (anyone may write under the prefix) is an
/// entry without the signature, not Redis failing.
fn read_verdict(
    signing: &SigningKeys,
    digest: &TokenDigest,
    verified: Option<Vec<u8>>,
    refused: Option<Vec<u8>>,
    signed_out: Option<Vec<u8>>,
) -> Option<SharedVerdict> {
    if signed_out.is_some() {
        return Some(SharedVerdict::Refused(InvalidReason::Revoked));
    }
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap_or_default();
    if let Some(sealed) = refused.map(text) {
        match signing.open("r", digest, &sealed) {
            Some(code) => return Some(SharedVerdict::Refused(refusal_from_code(code))),
            None => unsigned_entry(),
        }
    }
    let sealed = verified.map(text)?;
    let Some(json) = signing.open("v", digest, &sealed) else {
        unsigned_entry();
        return None;
    };
    match serde_json::from_str::<LoadedVerdict>(json) {
        Ok(loaded) => Some(SharedVerdict::Verified {
            user: loaded.user.into(),
            fresh_until: UNIX_EPOCH + Duration::from_millis(loaded.fresh_until_ms),
        }),
        Err(error) => {
            tracing::warn!(%error, "shared cache: ignoring an entry that does not parse");
            None
        }
    }
}

/// Says, at most once a second, that an entry without this fleet's signature was ignored: one
/// written with another key (a replica not yet rotated, another fleet sharing the prefix), or by
/// someone who can write to Redis and tried to make this replica accept a token.
fn unsigned_entry() {
    static UNSIGNED: LogThrottle = LogThrottle::new();
    if let Some(left_out) = UNSIGNED.admit() {
        tracing::warn!(
            left_out,
            "shared cache: ignoring an entry without this fleet's signature (another signing \
             key, or written by someone else); asking LINE instead"
        );
    }
}

/// A master of a cluster, as a `CLUSTER NODES` listing gives it.
#[derive(Debug, PartialEq, Eq)]
struct Master {
    /// The address the cluster's client knows it by (its `ip` field).
    ip: String,
    port: u16,
    /// The name it announces, if any: what its TLS certificate is for.
    hostname: Option<String>,
}

/// The masters in a `CLUSTER NODES` listing that serve slots and are not known to have failed
/// (the keys of one that has are unreachable until it is back).
fn masters(nodes: &str) -> Vec<Master> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?.split(',').collect::<Vec<_>>();
            let serving = fields.len() > 8;
            if !flags.contains(&"master")
                || flags.iter().any(|f| *f == "fail" || *f == "noaddr")
                || !serving
            {
                return None;
            }
            // `ip:port@cport[,hostname[,auxiliary_field=value]*]`
            let mut parts = fields[1].split(',');
            let address = parts.next()?.split('@').next()?;
            let hostname = parts.next().filter(|hostname| !hostname.is_empty());
            let (ip, port) = address.rsplit_once(':')?;
            Some(Master {
                ip: ip.to_owned(),
                port: port.parse().ok()?,
                hostname: hostname.map(str::to_owned),
            })
        })
        .collect()
}

/// Whether an error from the read-and-claim script says this Redis refuses scripts for good (an
/// ACL without them, scripting disabled), rather than failing for now (a failover, a slot on the
/// move, a server loading or out of memory), which is a failure like any other call's.
fn refuses_scripts(error: &redis::RedisError) -> bool {
    match error.kind() {
        redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => true,
        redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) => {
            let text = error.to_string().to_ascii_lowercase();
            text.contains("unknown command") || text.contains("disabled")
        }
        _ => false,
    }
}

/// A glob pattern matching every key that starts with `prefix`.
fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// Whether a clear under `prefix` deletes `key`: one of that fleet's verdicts, refusals, claims
/// or users' sets, told by the exact shape the fleet writes them in. Sign-outs and forget marks
/// outlive a clear. A prefix may nest in another fleet's (`app:` in `app:staging:`), whose keys
/// then also match the scan; the rest of such a key begins with the other fleet's own segment
/// and so never has this shape, and its keys, its sign-outs above all, are left alone.
fn clears(prefix: &str, key: &str) -> bool {
    match key
        .strip_prefix(prefix)
        .and_then(|rest| rest.split_once(':'))
    {
        Some(("v" | "r" | "l", tagged)) => tagged
            .strip_prefix('{')
            .and_then(|tagged| tagged.strip_suffix('}'))
            .and_then(TokenDigest::from_hex)
            .is_some(),
        // A LINE user ID (`U` and 32 hex digits) has no `:`; of a fleet nested as `<prefix>u:`,
        // only its "forget everything" mark has none either.
        Some(("u", user_id)) => !user_id.is_empty() && !user_id.contains(':') && user_id != "xall",
        _ => false,
    }
}

/// One layer's link to the shared cache. Its background tasks hold the [`Link`] and end when
/// this is dropped.
pub(crate) struct SharedCache {
    link: Arc<Link>,
    /// Dropped with this, which ends the background tasks.
    stop: watch::Sender<()>,
}

impl std::ops::Deref for SharedCache {
    type Target = Link;

    fn deref(&self) -> &Link {
        &self.link
    }
}

/// The connection to Redis and what goes through it, shared with the background tasks.
pub(crate) struct Link {
    settings: RedisSettings,
    /// Set once the first connection succeeds; the manager (or the cluster connection)
    /// reconnects by itself after that.
    connection: RwLock<Option<Connection>>,
    /// In a cluster, a connection to the node the subscription listens on, for `PUBLISH`: any
    /// node passes a message on to every other, and publishing where this replica listens lets
    /// its keepalive prove that node alive. Set by the subscriber.
    publisher: RwLock<Option<Connection>>,
    /// In a cluster, the masters beyond the configured nodes, as the node last subscribed on
    /// listed them: for the subscription, and to find the cluster again when the configured
    /// nodes are gone.
    learned: RwLock<Vec<redis::Client>>,
    /// Held while connecting, so the subscriber and the courier make one connection, not two.
    connecting: tokio::sync::Mutex<()>,
    /// [`clock::millis`] before which Redis is not tried, after a failure.
    paused_until: AtomicU64,
    /// How many times Redis use resumed: a call that fails pauses it only if it began after
    /// the latest resume.
    resumes: AtomicU64,
    /// Invalidations not yet published.
    outbox: Mutex<Outbox>,
    /// Wakes the courier.
    outbox_filled: Notify,
    started: AtomicBool,
    /// Whether the subscription has been up once. Until then a read waits for it (within the
    /// Redis timeout), so that no sign-out published after the read goes unheard.
    subscribed: watch::Sender<bool>,
    /// Whether the subscription is up now.
    listening: AtomicBool,
    /// Redis answered a call while the subscription was down: wakes the subscriber from its
    /// backoff. Back, Redis is used at once, but until the replica subscribes again every
    /// invalidation published is lost on it (a logged-out token served on).
    answered_unsubscribed: Notify,
    /// Set with that wake, cleared when the subscription comes up: a permit the `Notify` kept
    /// from before wakes nothing.
    answered_since_subscribed: AtomicBool,
    /// A verification went on before the first subscription was up (the wait for it ran out,
    /// or Redis could not be reached): that subscription then drops what was verified before
    /// it and what is under way.
    read_unsubscribed: AtomicBool,
    /// Tokens verified without their sign-out records read (Redis failed, or was left alone
    /// after a failure): the courier reads the records once Redis is used again, so that a
    /// sign-out this replica did not hear refuses the token then, not after the max TTL.
    unread: Mutex<Unread>,
    /// The read-and-claim script, and whether this Redis refused scripts (ACL, a managed service
    /// that disables them): then the read and the claim are two calls.
    read_and_claim: redis::Script,
    /// [`SHARE_UNLESS_FORGOTTEN`].
    share_unless_forgotten: redis::Script,
    scripts_refused: AtomicBool,
    /// How long a shared refusal stands.
    refused_ttl: Duration,
    /// How long the user sets live: the maximum TTL.
    max_ttl: Duration,
    /// How long a forget's mark stands: longer than any verification it must catch.
    tombstone_ttl: Duration,
}

impl SharedCache {
    pub(crate) fn new(
        settings: RedisSettings,
        max_ttl: Duration,
        refused_ttl: Duration,
        upstream_timeout: Duration,
    ) -> Self {
        let link = Link {
            settings,
            connection: RwLock::new(None),
            publisher: RwLock::new(None),
            learned: RwLock::new(Vec::new()),
            connecting: tokio::sync::Mutex::new(()),
            paused_until: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            outbox: Mutex::new(Outbox::default()),
            outbox_filled: Notify::new(),
            started: AtomicBool::new(false),
            subscribed: watch::channel(false).0,
            listening: AtomicBool::new(false),
            answered_unsubscribed: Notify::new(),
            answered_since_subscribed: AtomicBool::new(false),
            read_unsubscribed: AtomicBool::new(false),
            unread: Mutex::new(Unread::default()),
            read_and_claim: redis::Script::new(READ_AND_CLAIM),
            share_unless_forgotten: redis::Script::new(SHARE_UNLESS_FORGOTTEN),
            scripts_refused: AtomicBool::new(false),
            refused_ttl,
            max_ttl,
            // A verification ends within the upstream timeout, and shares within the Redis
            // timeouts after: twice that, and never under the usual 30 s.
            tombstone_ttl: TOMBSTONE_TTL.max(upstream_timeout * 2 + Duration::from_secs(1)),
        };
        Self {
            link: Arc::new(link),
            stop: watch::channel(()).0,
        }
    }

    /// Starts the background tasks (subscription, courier) on `runtime`, once; whether this
    /// call started them. What they hear and do arrives on `notices`.
    pub(crate) fn start(
        &self,
        runtime: &tokio::runtime::Handle,
        notices: mpsc::Sender<Notice>,
    ) -> bool {
        if self.started.load(Ordering::Relaxed) || self.started.swap(true, Ordering::AcqRel) {
            return false;
        }
        let subscriber = Subscriber {
            link: Arc::clone(&self.link),
            notices: notices.clone(),
            channel: self.channel(),
            keepalive_channel: self.keepalive_channel(),
            stop: self.stop.subscribe(),
            node: 0,
        };
        runtime.spawn(subscriber.run());
        runtime.spawn(run_courier(
            Arc::clone(&self.link),
            notices,
            self.stop.subscribe(),
        ));
        true
    }
}

impl Link {
    /// The key of a `kind` entry of a token. The token's hash is a hash tag (`{…}`): in a
    /// cluster every key of one token is in one slot, so one script or pipeline reaches them all.
    fn key(&self, kind: &str, digest: &TokenDigest) -> String {
        format!("{}{kind}:{{{}}}", self.settings.key_prefix, digest.hex())
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}u:{user_id}", self.settings.key_prefix)
    }

    fn channel(&self) -> String {
        format!("{}invalidate", self.settings.key_prefix)
    }

    /// A channel only this replica listens on, for its keepalive.
    fn keepalive_channel(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}keepalive:{}-{started}-{id}",
            self.settings.key_prefix,
            std::process::id()
        )
    }

    /// Publishes a keepalive for this replica's own subscription to hear.
    async fn keepalive(&self, channel: &str, counters: &dyn Tally) {
        // Sent even while Redis use is paused: a failure elsewhere (a master down in a cluster,
        // writes refused, one slow answer after another) pauses it, the subscription may be
        // fine all along, and keepalives skipped for 3 s would take it for dead.
        let Some(mut connection) = self.publisher_despite_a_pause() else {
            return;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg("keepalive");
        let published = publish.query_async::<i64>(&mut connection);
        self.run(counters, "publish a keepalive", published).await;
    }

    /// Drops the command connection, so the next use connects anew: after a subscription went
    /// silent, the command connection may be just as dead without knowing it.
    fn reconnect(&self) {
        *self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.set_publisher(None);
    }

    /// The masters learned beyond the configured nodes, as the node last subscribed on listed
    /// them.
    fn learned(&self) -> Vec<redis::Client> {
        self.learned
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn learn(&self, masters: Vec<redis::Client>) {
        *self.learned.write().unwrap_or_else(PoisonError::into_inner) = masters;
    }

    fn set_publisher(&self, publisher: Option<Connection>) {
        *self
            .publisher
            .write()
            .unwrap_or_else(PoisonError::into_inner) = publisher;
    }

    /// The connection for `PUBLISH` (see [`publisher`](Self::publisher)), paused or not.
    fn publisher_despite_a_pause(&self) -> Option<Connection> {
        if !self.settings.is_cluster() {
            return self.connection_despite_a_pause();
        }
        self.publisher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connection for `PUBLISH`: the command connection, or in a cluster the one to the
    /// node the subscription listens on; none while Redis is paused.
    fn publisher(&self) -> Option<Connection> {
        if !self.settings.is_cluster() {
            return self.connection();
        }
        if self.paused() {
            return None;
        }
        self.publisher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The command connection, paused or not (none before Redis was first reached).
    fn connection_despite_a_pause(&self) -> Option<Connection> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether Redis use is paused: it failed within the last second.
    fn paused(&self) -> bool {
        self.pause_left().is_some()
    }

    /// How long Redis use stays paused, if it is.
    fn pause_left(&self) -> Option<Duration> {
        let left = self
            .paused_until
            .load(Ordering::Relaxed)
            .saturating_sub(clock::millis(clock::now()));
        (left > 0).then(|| Duration::from_millis(left))
    }

    /// The connection, unless Redis failed within the last second or was never reached.
    fn connection(&self) -> Option<Connection> {
        if self.paused() {
            return None;
        }
        self.connection_despite_a_pause()
    }

    /// The connection for a read that may find a sign-out: as [`connection`](Self::connection),
    /// but a replica that has not reached Redis yet (it has just started) waits for it, within
    /// the Redis timeout, rather than go to LINE without the fleet's sign-outs. If it cannot,
    /// Redis is left alone for a second, as after any failure. It waits for its first
    /// subscription the same way: a sign-out published between this read and that subscription
    /// would go unheard.
    async fn connection_for_reading(&self, counters: &dyn Tally) -> Option<Connection> {
        let Some(connection) = self.connected_for_reading(counters).await else {
            // Verified without Redis, nothing heard yet either.
            self.note_read_unsubscribed();
            return None;
        };
        self.await_first_subscription().await;
        Some(connection)
    }

    /// Waits for the first subscription, within the Redis timeout, once: a read that goes on
    /// without it is remembered, and the subscription drops what was verified meanwhile.
    async fn await_first_subscription(&self) {
        if *self.subscribed.borrow() || self.read_unsubscribed.load(Ordering::SeqCst) {
            return;
        }
        let mut subscribed = self.subscribed.subscribe();
        let waited = tokio::time::timeout(self.settings.timeout, subscribed.wait_for(|up| *up));
        if !matches!(waited.await, Ok(Ok(_))) {
            self.note_read_unsubscribed();
        }
    }

    /// Remembers, before the first subscription, that a verification goes on without it.
    /// Stored before the verification reads or asks anything, and the subscriber marks itself
    /// up before looking: if it misses this, the subscription was up before the read.
    fn note_read_unsubscribed(&self) {
        if !*self.subscribed.borrow() {
            self.read_unsubscribed.store(true, Ordering::SeqCst);
        }
    }

    /// Remembers that `digest` is verified without its sign-out record read. Stored before the
    /// verification asks LINE: if the sign-out is read first, the verification under way keeps
    /// nothing.
    fn note_unread(&self, digest: &TokenDigest) {
        self.unread().note(*digest);
    }

    /// The tokens verified without their sign-out records read. Each change is one call on
    /// [`Unread`], so a panic elsewhere while it was held leaves it whole.
    fn unread(&self) -> std::sync::MutexGuard<'_, Unread> {
        self.unread.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the sign-out records of tokens verified without them, unless Redis is left alone:
    /// a notice for each signed out. At most [`UNREAD_BATCH`] for at most
    /// [`UNREAD_ROUND_BUDGET`]; a record that cannot be read goes to the back, for a later
    /// round. That does not leave Redis alone (a master down in a cluster would then keep every
    /// request from Redis), but is counted. Past [`UNREAD_LIMIT`] tokens, every verdict held is
    /// dropped instead.
    async fn read_unread_sign_outs(&self, counters: &dyn Tally) -> Vec<Notice> {
        let Some(mut connection) = self.connection() else {
            return Vec::new();
        };
        let taken = self.unread().take(UNREAD_BATCH);
        let Some(batch) = taken else {
            tracing::warn!(
                "shared cache: over {UNREAD_LIMIT} tokens verified without the fleet's \
                 sign-outs read; forgetting every in-process verdict"
            );
            return vec![Notice::MayHaveMissed];
        };
        let started = clock::now();
        let mut notices = Vec::new();
        let mut failed = false;
        // One at a time, not a pipeline (a cluster takes one only within a slot) nor all at
        // once: requests to a failed master pile up in the cluster connection, and delay others.
        for (read, digest) in batch.iter().enumerate() {
            if clock::now() > started + UNREAD_ROUND_BUDGET {
                for digest in &batch[read..] {
                    self.note_unread(digest);
                }
                break;
            }
            let mut pttl = redis::cmd("PTTL");
            pttl.arg(self.key("s", digest));
            let answer = pttl.query_async::<i64>(&mut connection);
            match tokio::time::timeout(self.settings.timeout, answer).await {
                // -2: no sign-out; -1: one without an expiry, held as long as a token lives.
                Ok(Ok(-2)) => {}
                Ok(Ok(-1)) => notices.push(Notice::SignedOut(*digest, Duration::MAX)),
                Ok(Ok(millis)) => {
                    let lasting = Duration::from_millis(u64::try_from(millis).unwrap_or(0));
                    notices.push(Notice::SignedOut(*digest, lasting));
                }
                Ok(Err(_)) | Err(_) => {
                    failed = true;
                    self.note_unread(digest);
                }
            }
        }
        if failed {
            counters.count(Event::SharedError);
        }
        notices
    }

    /// Whether the first subscription must drop what was verified before it (see
    /// [`await_first_subscription`](Self::await_first_subscription)); marks the subscription up.
    fn first_subscribed(&self) -> bool {
        let first = !self.subscribed.send_replace(true);
        first && self.read_unsubscribed.load(Ordering::SeqCst)
    }

    async fn connected_for_reading(&self, counters: &dyn Tally) -> Option<Connection> {
        if let Some(connection) = self.connection() {
            return Some(connection);
        }
        if self.paused() {
            return None;
        }
        let connecting = async {
            if self.connect().await {
                Ok(())
            } else {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "could not connect",
                )))
            }
        };
        self.run(counters, "connect", connecting).await?;
        self.connection()
    }

    /// Runs one Redis call within the timeout; a failure pauses Redis use for a second, unless
    /// Redis use resumed while the call was under way.
    async fn run<T>(
        &self,
        counters: &dyn Tally,
        what: &'static str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        let resumes_before = self.resumes.load(Ordering::SeqCst);
        let ended = tokio::time::timeout(self.settings.timeout, call).await;
        self.settle(counters, what, resumes_before, ended)
    }

    /// A Redis call's value, or its failure counted and, unless Redis use resumed since the
    /// call began (`resumes_before`, read then), Redis use paused for a second.
    fn settle<T>(
        &self,
        counters: &dyn Tally,
        what: &'static str,
        resumes_before: u64,
        ended: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Option<T> {
        let error = match ended {
            Ok(Ok(value)) => {
                if !self.listening.load(Ordering::Relaxed) {
                    self.answered_since_subscribed.store(true, Ordering::SeqCst);
                    self.answered_unsubscribed.notify_one();
                }
                return Some(value);
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {:?}", self.settings.timeout),
        };
        counters.count(Event::SharedError);
        if self.resumes.load(Ordering::SeqCst) != resumes_before {
            // The failure is of what was given up when Redis use resumed (a cluster master that
            // died, the node a moved subscription left): pausing would hold back for a second
            // the calls that Redis, answering again, would answer.
            tracing::debug!(
                redis = %self.settings.shown_url,
                %error,
                "shared cache: could not {what}, a call begun before Redis use resumed"
            );
            return None;
        }
        let resume = clock::millis(clock::now() + PAUSE_AFTER_FAILURE);
        let previous = self.paused_until.swap(resume, Ordering::Relaxed);
        // One warning per episode, not one per request.
        if previous < clock::millis(clock::now()) {
            tracing::warn!(
                redis = %self.settings.shown_url,
                %error,
                "shared cache: could not {what}; going on without Redis for {PAUSE_AFTER_FAILURE:?}"
            );
        }
        None
    }

    /// What the fleet knows about the token, if anything and if Redis answers in time, read
    /// with Redis's clock; when nothing is stored, the token is claimed for this replica for at
    /// most `hold` in the same round trip (a script), or left to [`claim`](Self::claim) where
    /// scripts are refused.
    pub(crate) async fn lookup(
        &self,
        digest: &TokenDigest,
        hold: Duration,
        counters: &dyn Tally,
    ) -> (Option<SharedVerdict>, Option<RedisTime>, Claim) {
        let Some(mut connection) = self.connection_for_reading(counters).await else {
            self.note_unread(digest);
            return (None, None, Claim::NotRead);
        };
        let keys = [
            self.key("v", digest),
            self.key("r", digest),
            self.key("s", digest),
        ];
        if !self.scripts_refused.load(Ordering::Relaxed) {
            let mut invocation = self.read_and_claim.prepare_invoke();
            invocation
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .key(self.key("l", digest))
                .arg(millis_of(hold));
            type Read = (
                Option<Vec<u8>>,
                Option<Vec<u8>>,
                Option<Vec<u8>>,
                u64,
                u64,
                i64,
            );
            // Not through `run`: a refusal of scripts is an answer, not a failure.
            let resumes_before = self.resumes.load(Ordering::SeqCst);
            let read = invocation.invoke_async::<Read>(&mut connection);
            match tokio::time::timeout(self.settings.timeout, read).await {
                Ok(Err(error)) if refuses_scripts(&error) => {
                    // Redis answered, and refused: no scripts here. Read as two calls from now on.
                    self.scripts_refused.store(true, Ordering::Relaxed);
                    tracing::info!(
                        %error,
                        "shared cache: Redis refuses scripts; reading and claiming in two calls"
                    );
                }
                ended => {
                    let read =
                        self.settle(counters, "read a shared verdict", resumes_before, ended);
                    let Some((verified, refused, signed_out, secs, micros, claim)) = read else {
                        self.note_unread(digest);
                        return (None, None, Claim::NotRead);
                    };
                    let verdict = read_verdict(
                        &self.settings.signing,
                        digest,
                        verified,
                        refused,
                        signed_out,
                    );
                    let claim = match claim {
                        1 => Claim::Ours,
                        0 => Claim::Theirs,
                        _ => Claim::NotTried,
                    };
                    return (verdict, Some(RedisTime::of_time(secs, micros)), claim);
                }
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("MGET").arg(&keys).cmd("TIME");
        type Read = (
            (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>),
            (u64, u64),
        );
        let read = pipe.query_async::<Read>(&mut connection);
        match self.run(counters, "read a shared verdict", read).await {
            Some(((verified, refused, signed_out), (secs, micros))) => (
                read_verdict(
                    &self.settings.signing,
                    digest,
                    verified,
                    refused,
                    signed_out,
                ),
                Some(RedisTime::of_time(secs, micros)),
                Claim::NotTried,
            ),
            None => {
                self.note_unread(digest);
                (None, None, Claim::NotRead)
            }
        }
    }

    /// Redis's own clock, so every replica's forgets and verifications are ordered by one clock,
    /// read on the master of `mark`, the key the time is written to. In a cluster any node would
    /// tell the time, but a hung one fails the call and pauses Redis use for every slot; the
    /// mark's master fails only a write that would fail anyway. A token's mark is in the token's
    /// slot, so its time is read on the clock its verifications read (while the slot map is
    /// current: `TIME` is not redirected).
    async fn time(
        &self,
        connection: &mut Connection,
        mark: &str,
        counters: &dyn Tally,
    ) -> Option<RedisTime> {
        let command = redis::cmd("TIME");
        let time = async {
            match connection {
                Connection::Cluster(cluster) => {
                    let master = Route::with_key(mark, SlotAddr::Master);
                    let on_master =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(master));
                    let value = cluster.route_command(command, on_master).await?;
                    redis::from_redis_value::<(u64, u64)>(value.extract_error()?)
                        .map_err(redis::RedisError::from)
                }
                _ => command.query_async::<(u64, u64)>(connection).await,
            }
        };
        let (secs, micros) = self.run(counters, "read Redis's clock", time).await?;
        Some(RedisTime::of_time(secs, micros))
    }

    /// Marks `key` forgotten at `at`, for verdicts shared late to find.
    fn mark_forgotten(&self, pipe: &mut redis::Pipeline, key: String, at: RedisTime) {
        pipe.cmd("SET")
            .arg(key)
            .arg(at.0)
            .arg("PX")
            .arg(millis_of(self.tombstone_ttl))
            .ignore();
    }

    /// Claims the asking of LINE about this token for the fleet, for at most `hold`, and reads
    /// what is stored in the same pipeline, after the claim: a replica shares its verdict before
    /// it deletes its claim, so a claim won here either came first or finds that verdict.
    /// Reading before claiming, as [`lookup`](Self::lookup) does where scripts are refused,
    /// leaves a window in which another replica claims, asks LINE, shares and lets go.
    pub(crate) async fn claim(
        &self,
        digest: &TokenDigest,
        hold: Duration,
        counters: &dyn Tally,
    ) -> Claimed {
        let Some(mut connection) = self.connection() else {
            return Claimed::Ours;
        };
        let mut claim_then_read = redis::pipe();
        claim_then_read
            .cmd("SET")
            .arg(self.key("l", digest))
            .arg(1)
            .arg("PX")
            .arg(millis_of(hold))
            .arg("NX")
            .cmd("MGET")
            .arg(self.key("v", digest))
            .arg(self.key("r", digest))
            .arg(self.key("s", digest));
        type Answer = (
            Option<String>,
            (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>),
        );
        let answer = claim_then_read.query_async::<Answer>(&mut connection);
        // `None`: Redis failed, ask LINE.
        let Some((claimed, (verified, refused, signed_out))) =
            self.run(counters, "claim a verification", answer).await
        else {
            return Claimed::Ours;
        };
        // `claimed` is `None` when the claim key exists: someone else asks.
        let ours = claimed.is_some();
        match read_verdict(
            &self.settings.signing,
            digest,
            verified,
            refused,
            signed_out,
        ) {
            Some(verdict) => {
                if ours {
                    self.release(digest, counters).await;
                }
                Claimed::Known(verdict)
            }
            None if ours => Claimed::Ours,
            None => Claimed::Theirs,
        }
    }

    /// Waits for the verdict of the replica that claimed this token, polling until it appears,
    /// the claim ends without one (that replica got no shareable verdict) or `deadline` passes.
    pub(crate) async fn wait_for_verdict(
        &self,
        digest: &TokenDigest,
        deadline: clock::Instant,
        counters: &dyn Tally,
    ) -> Option<SharedVerdict> {
        let keys = [
            self.key("v", digest),
            self.key("r", digest),
            self.key("s", digest),
        ];
        let claim = self.key("l", digest);
        while clock::now() + CLAIM_POLL < deadline {
            tokio::time::sleep(CLAIM_POLL).await;
            let mut connection = self.connection()?;
            let mut poll = redis::pipe();
            poll.cmd("MGET").arg(&keys).cmd("EXISTS").arg(&claim);
            type Polled = ((Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>), bool);
            let ((verified, refused, signed_out), claimed): Polled = self
                .run(
                    counters,
                    "wait for a shared verdict",
                    poll.query_async(&mut connection),
                )
                .await?;
            if let Some(verdict) = read_verdict(
                &self.settings.signing,
                digest,
                verified,
                refused,
                signed_out,
            ) {
                return Some(verdict);
            }
            if !claimed {
                return None;
            }
        }
        None
    }

    /// Ends this replica's claim when it has no verdict to share (LINE unreachable, a refusal
    /// that depends on this replica's requirements), so waiting replicas ask LINE themselves.
    pub(crate) async fn release(&self, digest: &TokenDigest, counters: &dyn Tally) {
        let mut release = redis::pipe();
        release.cmd("DEL").arg(self.key("l", digest)).ignore();
        self.write(&release, counters, "release a claim").await;
    }

    /// Sends commands whose answers nothing needs; whether Redis took them.
    async fn write(
        &self,
        pipe: &redis::Pipeline,
        counters: &dyn Tally,
        what: &'static str,
    ) -> bool {
        let Some(mut connection) = self.connection() else {
            return false;
        };
        self.write_on(&mut connection, pipe, counters, what).await
    }

    /// [`write`](Self::write) on `connection`, which the caller chose.
    async fn write_on(
        &self,
        connection: &mut Connection,
        pipe: &redis::Pipeline,
        counters: &dyn Tally,
        what: &'static str,
    ) -> bool {
        self.run(counters, what, pipe.query_async::<()>(connection))
            .await
            .is_some()
    }

    /// Shares a verified token until `fresh_until` (the token's expiry or the maximum TTL).
    /// `since`: when, by Redis's clock, the verification began; a forget of the token, its user
    /// or everything since then takes the verdict back (unknown: any forget still remembered).
    pub(crate) async fn store_verified(
        &self,
        digest: &TokenDigest,
        user: &LineUser,
        fresh_until: SystemTime,
        since: Option<RedisTime>,
        counters: &dyn Tally,
    ) {
        let Some(ttl_ms) = millis_until(fresh_until) else {
            return;
        };
        let value = StoredVerdict {
            user,
            fresh_until_ms: unix_millis(fresh_until),
        };
        let Ok(json) = serde_json::to_string(&value) else {
            return;
        };
        let sealed = self.settings.signing.seal("v", digest, &json);
        let user_key = self.user_key(user.user_id());
        // In a cluster the marks and `since` come from the clocks of different nodes (a user's
        // or everything's mark; a token's after its slot moved, until the slot map follows): a
        // forget up to a second older than it looks takes the verdict back too.
        let skew = if self.settings.is_cluster() {
            CLUSTER_CLOCK_SKEW
        } else {
            0
        };
        let since = since.map_or(0, |since| since.0.saturating_sub(skew));
        let marks = [
            self.key("x", digest),
            self.tombstone_of_user(user.user_id()),
            self.tombstone_of_everything(),
        ];
        // Two writes, one per slot (the token's keys, the user's set), sent together.
        let mut of_user = redis::pipe();
        of_user
            .cmd("SADD")
            .arg(&user_key)
            .arg(digest.hex().to_string())
            .ignore()
            .cmd("PEXPIRE")
            .arg(&user_key)
            .arg(millis_of(self.max_ttl))
            .ignore();
        let Some(connection) = self.connection() else {
            return;
        };
        let (mut for_token, mut for_user) = (connection.clone(), connection.clone());
        let verdict_written = async {
            if !self.scripts_refused.load(Ordering::Relaxed) {
                let mut invocation = self.share_unless_forgotten.prepare_invoke();
                invocation
                    .key(self.key("v", digest))
                    .key(self.key("l", digest));
                // A script's keys share a slot: in a cluster, the token's own mark only.
                let checked_marks = if self.settings.is_cluster() {
                    1
                } else {
                    marks.len()
                };
                for mark in &marks[..checked_marks] {
                    invocation.key(mark);
                }
                invocation.arg(&sealed).arg(ttl_ms).arg(since);
                match invocation.invoke_async::<i64>(&mut for_token).await {
                    Ok(written) => return Ok(written == 1),
                    Err(error) if refuses_scripts(&error) => {
                        self.scripts_refused.store(true, Ordering::Relaxed);
                        tracing::info!(
                            %error,
                            "shared cache: Redis refuses scripts; sharing, then checking for \
                             forgets"
                        );
                    }
                    Err(error) => return Err(error),
                }
            }
            // Where scripts are refused: written unchecked, then checked below.
            let mut token = redis::pipe();
            token
                .cmd("SET")
                .arg(self.key("v", digest))
                .arg(&sealed)
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .cmd("DEL")
                .arg(self.key("l", digest))
                .ignore();
            token.query_async::<()>(&mut for_token).await.map(|()| true)
        };
        let written =
            async { tokio::try_join!(verdict_written, of_user.query_async::<()>(&mut for_user)) };
        match self.run(counters, "share a verdict", written).await {
            // A forget came first: nothing shared, and the claim ended.
            Some((false, ())) => return,
            Some((true, ())) => {}
            None => {
                // Either write may have landed without the other (a verdict missing from its
                // user's set escapes `forget_user`), and the check below was not made.
                self.take_back(digest, counters).await;
                return;
            }
        }
        // Written, then checked: for the marks the script could not read (a cluster's user and
        // "forget everything" marks; any, where scripts are refused), and on one server for a
        // forget of the user that came after the script but listed the user's set before this
        // share's entry reached it. A forget after this check deletes the verdict itself.
        let mut read_marks = redis::cmd("MGET");
        read_marks.arg(&marks);
        let mut connection = connection;
        let read = read_marks.query_async::<Vec<Option<u64>>>(&mut connection);
        let Some(forgotten_at) = self.run(counters, "share a verdict", read).await else {
            // No telling whether a forget came in between: fail closed.
            self.take_back(digest, counters).await;
            return;
        };
        if forgotten_at.into_iter().flatten().any(|at| at >= since) {
            // Forgotten since this replica started verifying.
            self.take_back(digest, counters).await;
        }
    }

    /// Deletes a verdict just shared that a forget may have missed. Only Redis's copy: the
    /// replicas heard the forget itself, and this replica's flight keeps nothing a forget came
    /// after. A replica that read the copy meanwhile keeps it, as where the forget's mark is
    /// seen. Telling every replica to drop the token instead would, while a master holding the
    /// forget marks or the user's set is down, cost each of them a LINE call per token about once
    /// a second, since every share fails that way. Even while Redis use is paused (the failure
    /// that brings this here paused it); should the delete fail too, the courier forgets the
    /// token fleet-wide once Redis answers.
    async fn take_back(&self, digest: &TokenDigest, counters: &dyn Tally) {
        // The claim too: a share that failed may not have ended it, and replicas wait on it.
        let mut take_back = redis::pipe();
        take_back
            .cmd("DEL")
            .arg(self.key("v", digest))
            .arg(self.key("l", digest))
            .ignore();
        let taken_back = match self.connection_despite_a_pause() {
            Some(mut connection) => {
                self.write_on(&mut connection, &take_back, counters, "take back a verdict")
                    .await
            }
            None => false,
        };
        if !taken_back {
            self.invalidate_later(Invalidation::Token(*digest));
        }
    }

    /// Whether `digest` was signed out on any replica (for ID tokens, checked here, not at LINE).
    pub(crate) async fn signed_out(&self, digest: &TokenDigest, counters: &dyn Tally) -> bool {
        let Some(mut connection) = self.connection_for_reading(counters).await else {
            self.note_unread(digest);
            return false;
        };
        let mut exists = redis::cmd("EXISTS");
        exists.arg(self.key("s", digest));
        let read = exists.query_async::<bool>(&mut connection);
        match self.run(counters, "read a sign-out", read).await {
            Some(signed_out) => signed_out,
            None => {
                self.note_unread(digest);
                false
            }
        }
    }

    /// Marks that a user's tokens were forgotten, for verdicts shared late.
    fn tombstone_of_user(&self, user_id: &str) -> String {
        format!("{}xu:{user_id}", self.settings.key_prefix)
    }

    /// Marks that everything was forgotten, for verdicts shared late.
    fn tombstone_of_everything(&self) -> String {
        format!("{}xall", self.settings.key_prefix)
    }

    /// Shares LINE's refusal of a token for the negative-cache TTL, unless a refusal is shared
    /// already (`NX`: it keeps its own TTL). A logout's sign-out is a key of its own (`s:`).
    pub(crate) async fn store_refused(
        &self,
        digest: &TokenDigest,
        reason: InvalidReason,
        counters: &dyn Tally,
    ) {
        if self.refused_ttl.is_zero() {
            return self.release(digest, counters).await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.key("r", digest))
            .arg(
                self.settings
                    .signing
                    .seal("r", digest, refusal_code(reason)),
            )
            .arg("PX")
            .arg(millis_of(self.refused_ttl))
            .arg("NX")
            .ignore()
            .cmd("DEL")
            .arg(self.key("l", digest))
            .ignore();
        self.write(&pipe, counters, "share a refusal").await;
    }

    /// Publishes an invalidation now if Redis answers, otherwise leaves it in the outbox for the
    /// courier. Returns whether it was published.
    pub(crate) async fn invalidate(
        &self,
        invalidation: Invalidation,
        counters: &dyn Tally,
    ) -> bool {
        if self.publish(&invalidation, counters, Attempt::First).await {
            return true;
        }
        self.invalidate_later(invalidation);
        false
    }

    /// Leaves an invalidation in the outbox, which the courier task publishes at once or when
    /// Redis is back. For callers that cannot wait.
    pub(crate) fn invalidate_later(&self, invalidation: Invalidation) {
        let overflowed = self.outbox().leave(invalidation);
        if overflowed {
            tracing::warn!(
                "shared cache: over {OUTBOX_LIMIT} invalidations wait for Redis; \
                 replacing the forgets with one that forgets everything"
            );
        }
        self.outbox_filled.notify_one();
    }

    /// The outbox, locked (its changes cannot panic half-way, so a poisoned lock is taken as is).
    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Deletes what the fleet shares about the invalidated tokens and tells every replica.
    async fn publish(
        &self,
        invalidation: &Invalidation,
        counters: &dyn Tally,
        attempt: Attempt,
    ) -> bool {
        // A sign-out's first attempt goes even while Redis use is paused: one timeout, or a
        // failure on one master of a cluster, pauses it for a second, and the outbox would hold
        // the sign-out that long. The courier's retries wait the pause out, so a hung Redis costs
        // a sign-out one timeout (two where a cluster's subscription moved to a node that hangs),
        // not one after another.
        let sign_out = matches!(invalidation, Invalidation::Revoked(..));
        let signing_out = attempt == Attempt::First && sign_out;
        // In a cluster, a sign-out's message first, on the subscription's node (the record's
        // master may be the one that failed), on every attempt: the first may have found no
        // subscription node, and the record may wait for its master to come back. A replica
        // that hears it refuses the token on its own, whatever Redis holds, so the message need
        // not wait for the record, which follows for the replicas that did not hear it. One
        // server takes the record first, as every invalidation: a replica subscribing between
        // the two then reads the record.
        let announcement = if sign_out && self.settings.is_cluster() {
            self.announce(invalidation, counters, signing_out).await
        } else {
            Announcement::NotTried
        };
        let despite_a_pause = signing_out && !self.settings.is_cluster();
        let connection = if despite_a_pause {
            self.connection_despite_a_pause()
        } else {
            self.connection()
        };
        let Some(mut connection) = connection else {
            return false;
        };
        // The deletes, in one slot (a token's keys) or as one command that a cluster splits by
        // slot, then the message: a replica that hears it finds the entries gone.
        let mut pipe = redis::pipe();
        match invalidation {
            Invalidation::Token(digest) => {
                let mark = self.key("x", digest);
                let Some(now) = self.time(&mut connection, &mark, counters).await else {
                    return false;
                };
                self.mark_forgotten(&mut pipe, mark, now);
                pipe.cmd("DEL")
                    .arg(self.key("v", digest))
                    .arg(self.key("r", digest))
                    .ignore();
            }
            Invalidation::Refused(digest) => {
                // The verdict goes; the shared refusal (`r`) stays for the other replicas.
                let mark = self.key("x", digest);
                let Some(now) = self.time(&mut connection, &mark, counters).await else {
                    return false;
                };
                self.mark_forgotten(&mut pipe, mark, now);
                pipe.cmd("DEL").arg(self.key("v", digest)).ignore();
            }
            Invalidation::Revoked(digest, lasting) => {
                // A key of its own, which no forget or clear deletes. `logout` made `lasting` at
                // least the cache's maximum TTL.
                pipe.cmd("SET")
                    .arg(self.key("s", digest))
                    .arg(refusal_code(InvalidReason::Revoked))
                    .arg("PX")
                    .arg(millis_of(*lasting))
                    .ignore()
                    .cmd("DEL")
                    .arg(self.key("v", digest))
                    .ignore();
            }
            Invalidation::User(user_id) => {
                let user_key = self.user_key(user_id);
                // The mark first: a verdict shared after it takes itself back, one shared before
                // it is in the user's set.
                let tombstone = self.tombstone_of_user(user_id);
                let Some(now) = self.time(&mut connection, &tombstone, counters).await else {
                    return false;
                };
                let mut mark = redis::pipe();
                self.mark_forgotten(&mut mark, tombstone, now);
                if !self.write(&mark, counters, "mark a user forgotten").await {
                    return false;
                }
                let Some(hashes) = self
                    .run(
                        counters,
                        "list a user's tokens",
                        redis::cmd("SMEMBERS")
                            .arg(&user_key)
                            .query_async::<Vec<Vec<u8>>>(&mut connection),
                    )
                    .await
                else {
                    return false;
                };
                // Members that are not a digest's hex (not even text) are someone else's.
                let keys: Vec<String> = hashes
                    .iter()
                    .filter_map(|hex| TokenDigest::from_hex(std::str::from_utf8(hex).ok()?))
                    .map(|digest| self.key("v", &digest))
                    .chain([user_key])
                    .collect();
                if self
                    .run(
                        counters,
                        "delete a user's tokens",
                        redis::cmd("DEL")
                            .arg(keys)
                            .query_async::<()>(&mut connection),
                    )
                    .await
                    .is_none()
                {
                    return false;
                }
            }
            Invalidation::All => {
                // The mark first, as for a user; the sweep leaves it.
                let tombstone = self.tombstone_of_everything();
                let Some(now) = self.time(&mut connection, &tombstone, counters).await else {
                    return false;
                };
                let mut mark = redis::pipe();
                self.mark_forgotten(&mut mark, tombstone, now);
                if !self
                    .write(&mark, counters, "mark everything forgotten")
                    .await
                    || !self.delete_everything(&mut connection, counters).await
                {
                    return false;
                }
            }
        }
        let recorded = pipe.is_empty()
            || self
                .write_on(&mut connection, &pipe, counters, "delete shared entries")
                .await;
        // In a cluster, a message that found no subscription node before the record is tried
        // again after it, even while Redis use is paused: the subscription may have moved to a
        // live node while the record was written, and a pause begun since (the record's master
        // failing, other requests to a master that is down) would hold the message back.
        let announce_despite_a_pause = despite_a_pause || announcement == Announcement::NoNode;
        if !recorded {
            // One server refusing the record (full under `noeviction`, read-only) may still take
            // the message: a sign-out's first attempt sends it anyway, and the outbox retries
            // the record, and the message with it, once Redis takes writes.
            if announce_despite_a_pause {
                self.announce(invalidation, counters, true).await;
            }
            return false;
        }
        announcement == Announcement::Published
            || self
                .announce(invalidation, counters, announce_despite_a_pause)
                .await
                == Announcement::Published
    }

    /// Publishes the invalidation's message; `despite_a_pause`: even while Redis use is paused.
    async fn announce(
        &self,
        invalidation: &Invalidation,
        counters: &dyn Tally,
        despite_a_pause: bool,
    ) -> Announcement {
        let publisher = if despite_a_pause {
            self.publisher_despite_a_pause()
        } else {
            self.publisher()
        };
        let Some(mut publisher) = publisher else {
            return Announcement::NoNode;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(self.channel()).arg(invalidation.message());
        let published = self
            .run(
                counters,
                "publish an invalidation",
                publish.query_async::<i64>(&mut publisher),
            )
            .await
            .is_some();
        if published {
            counters.count(Event::InvalidationPublished);
            Announcement::Published
        } else {
            Announcement::Failed
        }
    }

    /// Deletes every key under the prefix, a batch per round trip: on the one server, or on
    /// every master of a cluster in turn.
    async fn delete_everything(&self, connection: &mut Connection, counters: &dyn Tally) -> bool {
        let Connection::Cluster(cluster) = connection else {
            return self.delete_everything_on(connection, None, counters).await;
        };
        let Some(nodes) = self
            .run(
                counters,
                "list the cluster's nodes",
                redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async::<String>(cluster),
            )
            .await
        else {
            return false;
        };
        let mut cluster = connection.clone();
        for Master { ip, port, .. } in masters(&nodes) {
            let node = SingleNodeRoutingInfo::ByAddress { host: ip, port };
            if !self
                .delete_everything_on(&mut cluster, Some(node), counters)
                .await
            {
                return false;
            }
        }
        true
    }

    /// Deletes every key under the prefix on one server: the connection's, or the cluster
    /// `node`.
    async fn delete_everything_on(
        &self,
        connection: &mut Connection,
        node: Option<SingleNodeRoutingInfo>,
        counters: &dyn Tally,
    ) -> bool {
        let pattern = prefix_pattern(&self.settings.key_prefix);
        let mut cursor = 0u64;
        loop {
            let mut scan = redis::cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(CLEAR_BATCH);
            let scanned = async {
                match (&node, &mut *connection) {
                    (Some(node), Connection::Cluster(cluster)) => {
                        let value = cluster
                            .route_command(scan, RoutingInfo::SingleNode(node.clone()))
                            .await?;
                        redis::from_redis_value::<(u64, Vec<Vec<u8>>)>(value.extract_error()?)
                            .map_err(redis::RedisError::from)
                    }
                    _ => scan.query_async::<(u64, Vec<Vec<u8>>)>(connection).await,
                }
            };
            let Some((next, keys)) = self.run(counters, "list the shared entries", scanned).await
            else {
                return false;
            };
            // A name that is not text is none of this fleet's: skipped, as another's is.
            let keys: Vec<String> = keys
                .into_iter()
                .filter_map(|key| String::from_utf8(key).ok())
                .filter(|key| clears(&self.settings.key_prefix, key))
                .collect();
            if !keys.is_empty()
                && self
                    .run(
                        counters,
                        "delete the shared entries",
                        redis::cmd("UNLINK").arg(keys).query_async::<()>(connection),
                    )
                    .await
                    .is_none()
            {
                return false;
            }
            if next == 0 {
                return true;
            }
            cursor = next;
        }
    }

    /// Connects the command connection if it is not yet. The manager reconnects by itself once
    /// it exists.
    async fn connect(&self) -> bool {
        let _connecting = self.connecting.lock().await;
        if self
            .connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return true;
        }
        let connecting = async {
            match &self.settings.target {
                Target::Single(client) => {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(CONNECT_TIMEOUT))
                        .set_response_timeout(Some(self.settings.timeout))
                        .set_number_of_retries(2)
                        .set_min_delay(Duration::from_millis(50))
                        .set_max_delay(PAUSE_AFTER_FAILURE);
                    client
                        .get_connection_manager_with_config(config)
                        .await
                        .map(Connection::Single)
                }
                Target::Cluster { client, nodes } => {
                    // Started from the masters learned too: the configured nodes may be gone.
                    let learned = self.learned();
                    let client = if learned.is_empty() {
                        client.clone()
                    } else {
                        let seeds = nodes.iter().chain(&learned);
                        // Settings accepted once already; should they fail, the configured nodes.
                        cluster_client(
                            seeds.map(|node| node.get_connection_info().clone()),
                            self.settings.timeout,
                        )
                        .unwrap_or_else(|_| client.clone())
                    };
                    let config = redis::cluster::ClusterConfig::new()
                        .set_connection_timeout(CONNECT_TIMEOUT)
                        .set_response_timeout(self.settings.timeout);
                    client
                        .get_async_connection_with_config(config)
                        .await
                        .map(Connection::Cluster)
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT * 4, connecting).await {
            Ok(Ok(connection)) => {
                *self
                    .connection
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(connection);
                true
            }
            _ => false,
        }
    }

    /// Redis answered again: use it at once rather than after the pause.
    fn resume(&self) {
        self.resumes.fetch_add(1, Ordering::SeqCst);
        self.paused_until.store(0, Ordering::Relaxed);
        self.outbox_filled.notify_one();
    }
}

/// Tokens verified without their sign-out records read, oldest first, each once.
#[derive(Debug, Default)]
struct Unread {
    queue: VecDeque<TokenDigest>,
    queued: HashSet<TokenDigest, DigestHashBuilder>,
    /// More than [`UNREAD_LIMIT`] were.
    overflowed: bool,
}

impl Unread {
    /// Adds `digest` at the back, unless it waits already; past the limit, marks the overflow.
    fn note(&mut self, digest: TokenDigest) {
        if self.queued.contains(&digest) {
            return;
        }
        if self.queue.len() >= UNREAD_LIMIT {
            self.overflowed = true;
            return;
        }
        self.queued.insert(digest);
        self.queue.push_back(digest);
    }

    /// The oldest `n` to read, or `None` after an overflow, which empties the queue (the
    /// caller drops every verdict instead).
    fn take(&mut self, n: usize) -> Option<Vec<TokenDigest>> {
        if mem::take(&mut self.overflowed) {
            self.clear();
            return None;
        }
        let batch: Vec<_> = self.queue.drain(..n.min(self.queue.len())).collect();
        for digest in &batch {
            self.queued.remove(digest);
        }
        Some(batch)
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.queued.clear();
        self.overflowed = false;
    }
}

/// How a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The connection closed.
    Closed,
    /// Nothing arrived, keepalives included: the connection may be half-open, and so may the
    /// command connection beside it.
    Silent,
}

/// Listens on the invalidation channel and passes on what arrives, reconnecting whenever the
/// subscription is lost.
struct Subscriber {
    link: Arc<Link>,
    notices: mpsc::Sender<Notice>,
    channel: String,
    keepalive_channel: String,
    stop: watch::Receiver<()>,
    /// Which server to subscribe on next: in a cluster, after a node fails the next one is
    /// tried, the configured nodes first, then those learned (see [`Link::learned`]).
    node: usize,
}

impl Subscriber {
    async fn run(mut self) {
        // Invalidations published while this replica was not listening are lost: after a failed
        // attempt or a lost subscription, what they might have covered is dropped on subscribing.
        // So is what a replica just started verified, or is verifying, where a verification went
        // on before its first subscription.
        let mut may_have_missed = false;
        let mut delay = Duration::from_millis(50);
        let mut warned = false;
        let mut woken_early = false;
        loop {
            let attempted = tokio::time::Instant::now();
            match self.subscribe().await {
                Ok(pubsub) => {
                    self.link.listening.store(true, Ordering::Relaxed);
                    self.link
                        .answered_since_subscribed
                        .store(false, Ordering::SeqCst);
                    self.link.resume();
                    let read_unsubscribed = self.link.first_subscribed();
                    let notice = if may_have_missed {
                        tracing::warn!(
                            "shared cache: subscribed to invalidations after a time without; \
                             forgetting in-process verdicts, which some may have covered"
                        );
                        Some(Notice::MayHaveMissed)
                    } else if read_unsubscribed {
                        tracing::debug!(
                            "shared cache: subscribed to invalidations after verifying without; \
                             forgetting in-process verdicts from before"
                        );
                        Some(Notice::MayHaveMissed)
                    } else {
                        tracing::debug!("shared cache: subscribed to invalidations");
                        None
                    };
                    if let Some(notice) = notice {
                        // Every verdict goes: the tokens verified without their sign-outs read
                        // need not be read (verifications under way keep nothing either).
                        self.link.unread().clear();
                        if self.notices.send(notice).await.is_err() {
                            return;
                        }
                    }
                    may_have_missed = true;
                    delay = Duration::from_millis(50);
                    warned = false;
                    woken_early = false;
                    let std::ops::ControlFlow::Continue(ended) = self.listen(pubsub).await else {
                        return;
                    };
                    tracing::warn!("shared cache: lost the invalidation channel; reconnecting");
                    self.link.listening.store(false, Ordering::Relaxed);
                    self.link.set_publisher(None);
                    if ended == Ended::Silent {
                        self.link.reconnect();
                    }
                    self.node = self.node.wrapping_add(1);
                }
                Err(error) => {
                    may_have_missed = true;
                    self.node = self.node.wrapping_add(1);
                    if !warned {
                        tracing::warn!(%error, "shared cache: cannot subscribe to invalidations; retrying");
                        warned = true;
                    }
                }
            }
            let redis_back = async {
                loop {
                    self.link.answered_unsubscribed.notified().await;
                    if self
                        .link
                        .answered_since_subscribed
                        .swap(false, Ordering::SeqCst)
                    {
                        break;
                    }
                }
                tokio::time::sleep_until(attempted + MIN_RECONNECT_GAP).await;
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = redis_back, if !woken_early => woken_early = true,
                _ = self.stop.changed() => return,
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    async fn subscribe(&mut self) -> Result<redis::aio::PubSub, String> {
        // The command connection first: once subscribed, this replica is fully in the fleet.
        self.link.connect().await;
        let learned = self.link.learned();
        let client = nth_candidate(
            self.link.settings.subscription_clients(),
            &learned,
            self.node,
        );
        let cluster = self.link.settings.is_cluster();
        let subscribing = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&self.channel).await?;
            pubsub.subscribe(&self.keepalive_channel).await?;
            // In a cluster, publish where this replica listens (see `Link::publisher`).
            let publisher = if cluster {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(self.link.settings.timeout));
                let mut connection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                // The cluster as this node sees it, for when the configured nodes are gone
                // (an ACL may forbid asking: then the configured nodes are all there is).
                let listing = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async::<String>(&mut connection)
                    .await
                    .ok();
                Some((Connection::Node(connection), listing))
            } else {
                None
            };
            Ok::<_, redis::RedisError>((pubsub, publisher))
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, subscribing).await {
            Ok(Ok((pubsub, publisher))) => {
                if let Some((publisher, listing)) = publisher {
                    self.link.set_publisher(Some(publisher));
                    if let Some(listing) = listing {
                        self.link.learn(self.link.settings.other_masters(&listing));
                    }
                }
                Ok(pubsub)
            }
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
        }
    }

    /// Passes messages on until the subscription ends or goes silent (continue) or the layer
    /// is gone (break).
    async fn listen(&mut self, pubsub: redis::aio::PubSub) -> std::ops::ControlFlow<(), Ended> {
        let mut messages = pubsub.into_on_message();
        let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = tokio::time::Instant::now();
        loop {
            let message = tokio::select! {
                message = messages.next() => message,
                _ = keepalive.tick() => {
                    if last_heard.elapsed() > KEEPALIVE_DEADLINE {
                        tracing::warn!("shared cache: the invalidation channel went silent");
                        return std::ops::ControlFlow::Continue(Ended::Silent);
                    }
                    self.link.keepalive(&self.keepalive_channel, &self.notices).await;
                    continue;
                }
                _ = self.stop.changed() => return std::ops::ControlFlow::Break(()),
            };
            let Some(message) = message else {
                return std::ops::ControlFlow::Continue(Ended::Closed);
            };
            last_heard = tokio::time::Instant::now();
            if message.get_channel_name() == self.keepalive_channel {
                continue;
            }
            match message
                .get_payload::<String>()
                .ok()
                .as_deref()
                .and_then(Invalidation::parse)
            {
                Some(invalidation) => {
                    if self
                        .notices
                        .send(Notice::Invalidated(invalidation))
                        .await
                        .is_err()
                    {
                        return std::ops::ControlFlow::Break(());
                    }
                }
                None => tracing::debug!("shared cache: ignoring an unknown invalidation message"),
            }
        }
    }
}

/// The `n`th server to try for the subscription, round and round: the configured ones first,
/// then the others learned.
fn nth_candidate<'a>(
    configured: &'a [redis::Client],
    others: &'a [redis::Client],
    n: usize,
) -> &'a redis::Client {
    let index = n % (configured.len() + others.len());
    configured
        .get(index)
        .unwrap_or_else(|| &others[index - configured.len()])
}

/// What became of an invalidation's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announcement {
    /// Published.
    Published,
    /// The node refused it or did not answer.
    Failed,
    /// No node to publish on: none reached yet, or, in a cluster, the subscription's node was
    /// lost and no other subscribed on yet. Or Redis use is paused, where that was asked: the
    /// courier asks only once it found Redis use not paused, and a pause begun since keeps the
    /// record back too.
    NoNode,
    /// Not tried: the message goes after the record.
    NotTried,
}

/// Which attempt at publishing an invalidation this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// The caller's own, at once.
    First,
    /// The courier's, from the outbox.
    Retry,
}

/// Connects the command connection, then publishes what waits in the outbox, and reads the
/// sign-outs of tokens verified without them: at once, and again every second, or the moment
/// Redis use resumes after a failure.
async fn run_courier(
    link: Arc<Link>,
    notices: mpsc::Sender<Notice>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let wake = link.outbox_filled.notified();
        // Nothing is tried while Redis use is paused: the try would fail without reaching
        // Redis, and send the invalidation behind the ones that failed.
        while link.connect().await && !link.paused() {
            let Some(invalidation) = link.outbox().take() else {
                break;
            };
            if !link.publish(&invalidation, &notices, Attempt::Retry).await {
                link.outbox().put_back(invalidation);
                break;
            }
        }
        // Here, not in the subscriber: reading them must not hold up the invalidations it hears.
        for notice in link.read_unread_sign_outs(&notices).await {
            if notices.send(notice).await.is_err() {
                return;
            }
        }
        // Where Redis use is paused, back the moment it resumes: requests failing on a cluster
        // master that is down pause it again and again, and the pauses leave little between them.
        let next_round = link.pause_left().unwrap_or(PAUSE_AFTER_FAILURE);
        tokio::select! {
            _ = wake => {}
            _ = tokio::time::sleep(next_round) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_time_is_read_in_milliseconds() {
        assert_eq!(
            RedisTime::of_time(1_700_000_000, 123_456),
            RedisTime(1_700_000_000_123)
        );
        assert!(RedisTime::of_time(5, 999_999) < RedisTime::of_time(6, 0));
    }

    #[test]
    fn a_time_less_than_a_millisecond_ahead_is_not_ahead() {
        // Redis refuses `PX 0`: a verdict fresh for less than a millisecond is not shared.
        assert_eq!(
            millis_until(SystemTime::now() + Duration::from_micros(500)),
            None
        );
        let ten_seconds = millis_until(SystemTime::now() + Duration::from_secs(10)).unwrap();
        assert!((9_000..=10_000).contains(&ten_seconds), "{ten_seconds}");
        assert_eq!(
            millis_until(SystemTime::now() - Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn invalidation_messages_round_trip() {
        let digest = TokenDigest::of("token");
        for invalidation in [
            Invalidation::Token(digest),
            Invalidation::Refused(digest),
            Invalidation::Revoked(digest, Duration::from_millis(86_400_000)),
            Invalidation::User("U4af4980629".into()),
            Invalidation::All,
        ] {
            assert_eq!(
                Invalidation::parse(&invalidation.message()),
                Some(invalidation)
            );
        }
        for junk in ["", "t:", "t:xyz", "u:", "?", "**", "r:", "r:xyz:1"] {
            assert_eq!(Invalidation::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn an_overflowing_outbox_collapses_into_forgetting_everything() {
        let shared = unreachable_fleet();
        for i in 0..OUTBOX_LIMIT {
            shared.invalidate_later(Invalidation::Token(TokenDigest::of(&i.to_string())));
        }
        assert_eq!(shared.outbox.lock().unwrap().len(), OUTBOX_LIMIT);
        shared.invalidate_later(Invalidation::User("U1".into()));
        shared.invalidate_later(Invalidation::Token(TokenDigest::of("later")));
        assert_eq!(
            outbox(&shared),
            [Invalidation::All],
            "one invalidation covering all of them, and everything after"
        );
    }

    fn unreachable_fleet() -> SharedCache {
        unreachable_fleet_with_timeout(Duration::from_millis(5))
    }

    fn unreachable_fleet_with_timeout(timeout: Duration) -> SharedCache {
        let settings = RedisSettings::new(
            "redis://127.0.0.1:1/",
            "t:".into(),
            timeout,
            keys(KEY, None, Duration::ZERO),
        )
        .unwrap();
        SharedCache::new(
            settings,
            Duration::from_secs(60),
            Duration::from_secs(1),
            Duration::from_secs(3),
        )
    }

    /// A call that fails pauses Redis use, unless Redis use resumed while it was under way: its
    /// failure then tells of the node or the connection given up since (a cluster master that
    /// died, a subscription that moved), and pausing on it would hold back for a second the
    /// calls the resumed Redis answers. A failure of a call begun after the resume pauses.
    #[tokio::test]
    async fn a_call_failing_after_redis_use_resumed_pauses_it_only_if_begun_after_the_resume() {
        let counters = Counters::default();
        let shared = unreachable_fleet_with_timeout(Duration::from_secs(60));
        let failing = |started: tokio::sync::oneshot::Receiver<()>| async move {
            let _ = started.await;
            Err::<(), _>(redis::RedisError::from((redis::ErrorKind::Io, "gone")))
        };

        let (fail, failure) = tokio::sync::oneshot::channel();
        let call = shared.run(&counters, "test", failing(failure));
        let resume_then_fail = async {
            tokio::task::yield_now().await;
            shared.resume();
            fail.send(()).unwrap();
        };
        let (answer, ()) = tokio::join!(call, resume_then_fail);
        assert!(answer.is_none(), "the call failed");
        assert!(
            !shared.paused(),
            "a failure from before the resume paused Redis use"
        );
        assert_eq!(
            counters.snapshot(0, 0).shared_errors,
            1,
            "the failure is counted"
        );

        let (fail, failure) = tokio::sync::oneshot::channel();
        fail.send(()).unwrap();
        assert!(shared
            .run(&counters, "test", failing(failure))
            .await
            .is_none());
        assert!(
            shared.paused(),
            "a failure after the resume pauses Redis use"
        );
    }

    /// A Redis stand-in on loopback: `+OK` to every command but `EVALSHA`, which it holds, telling
    /// `script_arrived`, until `hang_up` is sent; then it closes the connection.
    async fn redis_holding_scripts() -> (String, Arc<Notify>, watch::Sender<bool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/", listener.local_addr().unwrap());
        let script_arrived = Arc::new(Notify::new());
        let (hang_up, hung_up) = watch::channel(false);
        let arrived = script_arrived.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (arrived, mut hung_up) = (arrived.clone(), hung_up.clone());
                tokio::spawn(async move {
                    let mut read = Vec::new();
                    let mut chunk = [0; 4096];
                    while let Ok(n @ 1..) = socket.read(&mut chunk).await {
                        read.extend_from_slice(&chunk[..n]);
                        while let Some(command) = take_command(&mut read) {
                            if command.eq_ignore_ascii_case(b"EVALSHA") {
                                arrived.notify_one();
                                let _ = hung_up.wait_for(|hung_up| *hung_up).await;
                                return;
                            }
                            let _ = socket.write_all(b"+OK\r\n").await;
                        }
                    }
                });
            }
        });
        (url, script_arrived, hang_up)
    }

    /// The name of the first whole command in `read` (a RESP array of bulk strings), taken out.
    fn take_command(read: &mut Vec<u8>) -> Option<Vec<u8>> {
        fn line(read: &[u8], from: usize) -> Option<(&[u8], usize)> {
            let end = from + read.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
            Some((&read[from..end], end + 2))
        }
        let number = |text: &[u8]| std::str::from_utf8(text).ok()?.parse::<usize>().ok();
        let (header, mut at) = line(read, 0)?;
        let parts = number(header.strip_prefix(b"*")?)?;
        let mut name = None;
        for _ in 0..parts {
            let (header, start) = line(read, at)?;
            let len = number(header.strip_prefix(b"$")?)?;
            let part = read.get(start..start + len)?;
            name.get_or_insert_with(|| part.to_vec());
            at = start + len + 2;
        }
        if read.len() < at {
            return None;
        }
        read.drain(..at);
        Some(name.unwrap_or_default())
    }

    /// As for any call, a shared verdict's read that fails pauses Redis use only if it began
    /// after Redis use last resumed (the read is run outside [`Link::run`], for its answer's
    /// refusal of scripts).
    #[tokio::test]
    async fn a_read_failing_after_redis_use_resumed_pauses_it_only_if_begun_after_the_resume() {
        let counters = Counters::default();
        let (url, script_arrived, hang_up) = redis_holding_scripts().await;
        let settings = RedisSettings::new(
            &url,
            "t:".into(),
            Duration::from_secs(60),
            keys(KEY, None, Duration::ZERO),
        )
        .unwrap();
        let shared = SharedCache::new(
            settings,
            Duration::from_secs(60),
            Duration::from_secs(1),
            Duration::from_secs(3),
        );
        // No subscriber runs here: the read does not wait for one.
        shared.note_read_unsubscribed();
        let digest = TokenDigest::of("a-token");

        let read = shared.lookup(&digest, Duration::from_secs(1), &counters);
        let resume_then_fail = async {
            tokio::time::timeout(Duration::from_secs(10), script_arrived.notified())
                .await
                .expect("the read's script never reached Redis");
            shared.resume();
            hang_up.send_replace(true);
        };
        let ((verdict, read_at, claim), ()) = tokio::join!(read, resume_then_fail);
        assert!(verdict.is_none() && read_at.is_none(), "the read failed");
        assert_eq!(claim, Claim::NotRead, "nothing claimed after a failed read");
        assert_eq!(
            counters.snapshot(0, 0).shared_errors,
            1,
            "the failure is counted"
        );
        assert!(
            !shared.paused(),
            "a failure from before the resume paused Redis use"
        );
    }

    /// A read that could not wait for the first subscription makes that subscription, and only
    /// it, drop what was verified before it.
    #[tokio::test]
    async fn a_read_that_could_not_wait_for_the_first_subscription_makes_it_drop_verdicts() {
        let shared = unreachable_fleet();
        shared.await_first_subscription().await;
        assert!(shared.first_subscribed(), "a read went on without it");
        assert!(!shared.first_subscribed(), "only the first subscription");
    }

    /// Once a read went on without the first subscription, the reads after it do not wait
    /// again: one timeout per replica, not one per request until Redis answers.
    #[tokio::test]
    async fn after_one_read_went_on_without_the_first_subscription_none_waits_for_it() {
        let shared = unreachable_fleet_with_timeout(Duration::from_secs(60));
        shared.note_read_unsubscribed();
        tokio::time::timeout(Duration::from_secs(5), shared.await_first_subscription())
            .await
            .expect("waited again");
    }

    /// Tokens verified without their sign-outs read are remembered, once each, until Redis is
    /// used again (here it never is, so they wait).
    #[tokio::test]
    async fn tokens_verified_without_their_sign_outs_read_wait_for_redis() {
        let counters = Counters::default();
        let shared = unreachable_fleet();
        let digest = TokenDigest::of("a-token");
        assert!(!shared.signed_out(&digest, &counters).await);
        let (verdict, _, _) = shared
            .lookup(&digest, Duration::from_secs(1), &counters)
            .await;
        assert!(verdict.is_none());
        assert!(shared.read_unread_sign_outs(&counters).await.is_empty());
        let unread = shared.unread.lock().unwrap().take(UNREAD_BATCH);
        assert_eq!(
            unread,
            Some(vec![digest]),
            "once each, kept until Redis is used"
        );
    }

    /// Oldest first, each once, a batch at a time, a digest put back going to the back; past
    /// the limit, the overflow, which empties the queue once taken.
    #[test]
    fn unread_tokens_queue_in_order_up_to_the_limit() {
        let digest = |n: usize| TokenDigest::of(&n.to_string());
        let mut unread = Unread::default();
        for n in [1, 2, 3, 1] {
            unread.note(digest(n));
        }
        assert_eq!(unread.take(2), Some(vec![digest(1), digest(2)]));
        unread.note(digest(1));
        assert_eq!(unread.take(5), Some(vec![digest(3), digest(1)]));
        assert_eq!(unread.take(5), Some(vec![]));

        for n in 0..UNREAD_LIMIT {
            unread.note(digest(n));
        }
        unread.note(digest(0));
        assert!(!unread.overflowed, "at the limit, a repeat included");
        unread.note(digest(UNREAD_LIMIT));
        assert_eq!(unread.take(1), None, "overflowed");
        assert_eq!(unread.take(1), Some(vec![]), "emptied");
    }

    /// A verification that goes on without Redis before the first subscription (Redis could not
    /// be reached) makes that subscription drop what was verified; one after it, while Redis is
    /// left alone after a failure, does not (later subscriptions drop only after a time without).
    #[tokio::test]
    async fn going_on_without_redis_counts_only_before_the_first_subscription() {
        let counters = Counters::default();
        let shared = unreachable_fleet();
        assert!(shared.connection_for_reading(&counters).await.is_none());
        assert!(
            shared.first_subscribed(),
            "verified without Redis before it"
        );

        let shared = unreachable_fleet();
        assert!(!shared.first_subscribed(), "nothing before it");
        assert!(shared.connection_for_reading(&counters).await.is_none());
        assert!(
            !shared.read_unsubscribed.load(Ordering::SeqCst),
            "after the first subscription"
        );
    }

    /// A read waits for the first subscription; it then has nothing to drop, and later reads
    /// wait no more.
    #[tokio::test]
    async fn a_read_waits_for_the_first_subscription_which_then_drops_nothing() {
        let shared = Arc::new(unreachable_fleet_with_timeout(Duration::from_secs(60)));
        let reading = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { shared.await_first_subscription().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!reading.is_finished(), "the read waits");
        assert!(!shared.first_subscribed(), "no read went on without it");
        tokio::time::timeout(Duration::from_secs(5), reading)
            .await
            .expect("the subscription ends the wait")
            .unwrap();
        tokio::time::timeout(
            Duration::from_millis(500),
            shared.await_first_subscription(),
        )
        .await
        .expect("no wait once subscribed");
    }

    fn outbox(shared: &SharedCache) -> Vec<Invalidation> {
        shared.outbox().in_order()
    }

    const KEY: &str = "fleet-signing-key-of-at-least-32-bytes";
    const OTHER_KEY: &str = "another-fleet-signing-key-32-bytes!!";

    fn keys(current: &str, previous: Option<&str>, overlap: Duration) -> SigningKeys {
        let previous = previous.map(|key| Secret::new(key.into()));
        SigningKeys::new(&Secret::new(current.into()), previous.as_ref(), overlap)
    }

    #[test]
    fn a_sealed_entry_opens_only_under_its_key_kind_and_token() {
        let signing = keys(KEY, None, Duration::ZERO);
        let token = TokenDigest::of("token");
        let other_token = TokenDigest::of("other token");
        let sealed = signing.seal("v", &token, r#"{"user":{}}"#);

        assert_eq!(signing.open("v", &token, &sealed), Some(r#"{"user":{}}"#));
        assert_eq!(signing.open("v", &other_token, &sealed), None, "copied");
        assert_eq!(signing.open("r", &token, &sealed), None, "another kind");
        assert_eq!(
            keys(OTHER_KEY, None, Duration::ZERO).open("v", &token, &sealed),
            None
        );
        let (tag, _) = sealed.split_once('.').unwrap();
        let altered = format!("{tag}.{{\"user\":{{\"userId\":\"U0\"}}}}");
        assert_eq!(signing.open("v", &token, &altered), None, "altered payload");
        for unsigned in ["", r#"{"user":{}}"#, ".{}", "AAAA.{}"] {
            assert_eq!(signing.open("v", &token, unsigned), None, "{unsigned:?}");
        }
    }

    #[test]
    fn a_previous_key_is_accepted_only_during_the_overlap() {
        let token = TokenDigest::of("token");
        let old = keys(OTHER_KEY, None, Duration::ZERO).seal("r", &token, "revoked");

        let rotating = keys(KEY, Some(OTHER_KEY), Duration::from_secs(60));
        assert_eq!(rotating.open("r", &token, &old), Some("revoked"));
        let over = keys(KEY, Some(OTHER_KEY), Duration::ZERO);
        assert_eq!(over.open("r", &token, &old), None);
        // What a rotating replica writes, the others (already on the new key) read.
        let new = rotating.seal("r", &token, "expired");
        assert_eq!(
            keys(KEY, None, Duration::ZERO).open("r", &token, &new),
            Some("expired")
        );
    }

    #[test]
    fn only_a_refusal_for_good_turns_the_script_off() {
        use redis::{ErrorKind, RedisError, ServerErrorKind};
        let server = |kind, text: &str| -> RedisError {
            RedisError::from((ErrorKind::Server(kind), "server", text.to_owned()))
        };
        assert!(refuses_scripts(&server(
            ServerErrorKind::NoPerm,
            "this user has no permissions to run the 'evalsha' command"
        )));
        assert!(refuses_scripts(&server(
            ServerErrorKind::ResponseError,
            "unknown command 'EVALSHA'"
        )));
        for passing in [
            ServerErrorKind::TryAgain,
            ServerErrorKind::ClusterDown,
            ServerErrorKind::MasterDown,
            ServerErrorKind::BusyLoading,
            ServerErrorKind::ReadOnly,
        ] {
            assert!(!refuses_scripts(&server(passing, "for now")), "{passing:?}");
        }
        assert!(!refuses_scripts(&server(
            ServerErrorKind::ResponseError,
            "OOM command not allowed when used memory > 'maxmemory'"
        )));
        assert!(!refuses_scripts(&RedisError::from((
            ErrorKind::Io,
            "reset"
        ))));
    }

    #[test]
    fn shown_url_hides_the_password() {
        let shown = without_password("redis://user:hunter2@cache.internal:6380/2");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache.internal:6380"), "{shown}");
        assert_eq!(without_password("not a url"), "<not a URL>");
        let socket = without_password("redis+unix:///run/redis.sock?db=2&pass=hunter2&user=app");
        assert!(!socket.contains("hunter2"), "{socket}");
        assert!(
            socket.contains("db=2") && socket.contains("user=app"),
            "{socket}"
        );
    }

    #[test]
    fn clearing_a_cluster_walks_the_masters_that_serve_slots_and_have_not_failed() {
        let nodes = "\
07c37dfeb2352e0b 127.0.0.1:30004@31004,node-4 slave e7d1eecce10fd6bb 0 1426238317239 4 connected
67ed2db8d677e59e 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5 127.0.0.1:30003@31003,cache-3 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ff 127.0.0.1:30005@31005 master,fail - 1426238316232 0 5 disconnected 0-100
824fe116063bc5fc 127.0.0.1:30006@31006 master - 0 1426238316232 6 connected
e7d1eecce10fd6bb ::1:30001@31001 myself,master - 0 0 1 connected 101-5460 [93-<-292f8b]
8a1b2c3d4e5f6a7b 10.0.0.7:7007@17007,node-7.cache,shard-id=9f3e master - 0 0 7 connected 1-2
9a1b2c3d4e5f6a7b 10.0.0.8:7008@17008,,shard-id=1a2b master - 0 0 8 connected 3-4
";
        let master = |ip: &str, port, hostname: Option<&str>| Master {
            ip: ip.to_owned(),
            port,
            hostname: hostname.map(str::to_owned),
        };
        assert_eq!(
            masters(nodes),
            [
                master("127.0.0.1", 30002, None),
                master("127.0.0.1", 30003, Some("cache-3")),
                master("::1", 30001, None),
                master("10.0.0.7", 7007, Some("node-7.cache")),
                master("10.0.0.8", 7008, None),
            ]
        );
    }

    const THREE_MASTERS: &str = "\
c 10.0.0.3:7002@17002,node-c.cache master - 0 0 3 connected 10923-16383
a 10.0.0.1:7000@17000,node-a.cache myself,master - 0 0 1 connected 0-5460
b 10.0.0.2:7001@17001,node-b.cache master - 0 0 2 connected 5461-10922
";

    fn cluster_settings(urls: &[&str]) -> RedisSettings {
        let urls: Vec<String> = urls.iter().map(|url| (*url).to_owned()).collect();
        let keys = keys(KEY, None, Duration::ZERO);
        RedisSettings::cluster(&urls, "p:".into(), Duration::from_secs(1), keys).unwrap()
    }

    #[test]
    fn a_fleet_told_of_one_node_learns_the_others_and_reaches_them_as_it_does_that_one() {
        let settings = cluster_settings(&["redis://app:hunter2@10.0.0.1:7000"]);
        let others = settings.other_masters(THREE_MASTERS);
        let infos: Vec<&redis::ConnectionInfo> = others
            .iter()
            .map(redis::Client::get_connection_info)
            .collect();
        assert_eq!(
            infos
                .iter()
                .map(|info| info.addr().clone())
                .collect::<Vec<_>>(),
            [
                redis::ConnectionAddr::Tcp("10.0.0.2".into(), 7001),
                redis::ConnectionAddr::Tcp("10.0.0.3".into(), 7002),
            ]
        );
        for info in infos {
            assert_eq!(
                (
                    info.redis_settings().username(),
                    info.redis_settings().password()
                ),
                (Some("app"), Some("hunter2"))
            );
        }
        // Over TLS, by the names the nodes announce: their certificates are for those.
        let settings = cluster_settings(&["rediss://app:hunter2@node-b.cache:7001/#insecure"]);
        let others = settings.other_masters(THREE_MASTERS);
        let hosts: Vec<String> = others
            .iter()
            .map(|client| {
                let info = client.get_connection_info();
                assert_eq!(info.redis_settings().password(), Some("hunter2"));
                match info.addr() {
                    redis::ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: true,
                        ..
                    } => format!("{host}:{port}"),
                    other => panic!("not TLS as configured: {other:?}"),
                }
            })
            .collect();
        assert_eq!(hosts, ["node-a.cache:7000", "node-c.cache:7002"]);
        // Not one server alone.
        let single = RedisSettings::new(
            "redis://10.0.0.1:7000",
            "p:".into(),
            Duration::from_secs(1),
            keys(KEY, None, Duration::ZERO),
        )
        .unwrap();
        assert!(single.other_masters(THREE_MASTERS).is_empty());
    }

    #[test]
    fn the_subscription_tries_the_configured_nodes_then_the_others_round_and_round() {
        let client = |port| redis::Client::open(format!("redis://10.0.0.1:{port}")).unwrap();
        let configured = [client(7000), client(7001)];
        let others = [client(7002), client(7003)];
        let ports: Vec<String> = (0..9)
            .map(|n| {
                match nth_candidate(&configured, &others, n)
                    .get_connection_info()
                    .addr()
                {
                    redis::ConnectionAddr::Tcp(_, port) => port.to_string(),
                    other => format!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(
            ports,
            ["7000", "7001", "7002", "7003", "7000", "7001", "7002", "7003", "7000"]
        );
        assert_eq!(
            nth_candidate(&configured, &[], 3)
                .get_connection_info()
                .addr(),
            configured[1].get_connection_info().addr()
        );
    }

    #[test]
    fn a_clear_deletes_its_own_fleets_entries_and_nothing_of_a_fleet_nested_under_it() {
        let hex = "ab".repeat(32);
        let tagged = |kind: &str| format!("app:{kind}:{{{hex}}}");
        for kind in ["v", "r", "l"] {
            assert!(clears("app:", &tagged(kind)), "{kind}");
        }
        assert!(clears("app:", "app:u:U4af4980629b1eabc8b7e3b2b0a0f5c1d"));
        // Sign-outs and forget marks outlive a clear.
        for kept in [
            tagged("s"),
            tagged("x"),
            "app:xu:U1".to_owned(),
            "app:xall".to_owned(),
        ] {
            assert!(!clears("app:", &kept), "{kept}");
        }
        // Another fleet's, its prefix nesting in this one's: whatever its segment.
        for segment in ["staging", "v", "u", "u:x", "v{1}"] {
            for kind in ["v", "r", "l", "s", "x"] {
                let theirs = format!("app:{segment}:{kind}:{{{hex}}}");
                assert!(!clears("app:", &theirs), "{theirs}");
            }
            for theirs in [
                format!("app:{segment}:u:U1"),
                format!("app:{segment}:xu:U1"),
                format!("app:{segment}:xall"),
            ] {
                assert!(!clears("app:", &theirs), "{theirs}");
            }
        }
        // Not this fleet's shape at all.
        for other in [
            "app:v:kept",
            "app:v:{abc}",
            "app:u:",
            "app:invalidate",
            "app2:v:x",
            "other:u:U1",
        ] {
            assert!(!clears("app:", other), "{other}");
        }
    }

    #[test]
    fn clearing_matches_only_the_prefix_taken_literally() {
        assert_eq!(prefix_pattern("line-auth:"), "line-auth:*");
        assert_eq!(prefix_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }

    #[test]
    fn refusal_codes_round_trip() {
        for reason in [
            InvalidReason::Expired,
            InvalidReason::Revoked,
            InvalidReason::NotJws,
            InvalidReason::Rejected,
        ] {
            assert_eq!(refusal_from_code(refusal_code(reason)), reason);
        }
    }
}
