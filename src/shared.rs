//! The shared cache (feature `redis`): verdicts and invalidations shared by every replica of a
//! service through Redis, so a fleet behind a load balancer asks LINE about a token once and a
//! logout on any replica is honoured by all of them.
//!
//! Give every replica the same [`redis_url`](crate::LineAuthConfigBuilder::redis_url) (or
//! `REDIS_URL` with [`from_env`](crate::LineAuthConfig::from_env)):
//!
//! ```no_run
//! use line_auth::{LineAuthConfig, LineAuthLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), line_auth::ConfigError> {
//! let config = LineAuthConfig::builder()
//!     .channel_id("1234567890")
//!     .redis_url("redis://127.0.0.1:6379/")
//!     .redis_signing_key("the same secret of 32 bytes or more on every replica")
//!     .build()?;
//! let layer = LineAuthLayer::new(config); // build it inside the runtime: it subscribes at once
//! # let _ = layer;
//! # Ok(())
//! # }
//! ```
//!
//! A Redis Cluster instead: [`redis_cluster_urls`](crate::LineAuthConfigBuilder::redis_cluster_urls)
//! (or `REDIS_CLUSTER_URLS`, comma-separated), some or all of its nodes. Each token's keys share
//! a slot (a hash tag on the token hash, below); users' sets and forget marks are in slots of
//! their own, and what spans slots is sent per slot. `clear` scans every master. Invalidations
//! are published and heard on one node at a time (a cluster passes a `PUBLISH` to every node),
//! the next configured node taking over when that one dies, then the other masters the last
//! node listed (which also seed the command connection made anew), so a running fleet told of
//! one node outlives it; a replica starting needs a configured node to answer. While a master
//! is down, its entries are out of reach and a call failing on it leaves Redis alone for a
//! second, as when a single Redis is down; a logout is announced at once all the same (the
//! message first, through the subscription's node; the record when it can be written).
//! Sentinel is not supported.
//!
//! # How a request is decided
//!
//! 1. The in-process cache, synchronously, as without Redis: a hit never touches Redis.
//! 2. On a miss, the one verification of that token in this process (concurrent requests for it
//!    wait on it) reads Redis: a verdict another replica shared answers it with no call to LINE.
//! 3. Otherwise this replica claims the token (`SET … NX`) and asks LINE, then writes the verdict
//!    to Redis for the others. If another replica holds the claim, this one waits for that
//!    replica's verdict (polling every 10 ms, for at most half the upstream timeout) and asks LINE
//!    itself only if none comes: first requests for one token arriving on every replica at once
//!    still cost LINE one verification.
//!
//! # What is stored
//!
//! Keys are the prefix (default `line-auth:`) and the token's SHA-256, never the token. The hash
//! stands between braces, a Redis Cluster hash tag, so every key of one token lives in one slot
//! (`line-auth:v:{9f86d0…}`); below, `<…>` marks what is filled in:
//!
//! | key | value | expires |
//! |---|---|---|
//! | `<prefix>v:{<sha256 hex>}` | `{mac}.{"user": <LineUser as serialized>, "freshUntilMs": …}` | when the token does, or after the maximum TTL if sooner |
//! | `<prefix>r:{<sha256 hex>}` | `{mac}.` and why LINE refused the token (`expired`, `revoked`, `not_jws`, `rejected`) | after the negative-cache TTL |
//! | `<prefix>s:{<sha256 hex>}` | a sign-out (`logout`); no forget or clear deletes it | when the token expires (at least the maximum TTL) |
//! | `<prefix>u:<user ID>` | set of that user's token hashes, for [`forget_user`](crate::LineAuthHandle::forget_user) | after the maximum TTL |
//! | `<prefix>l:{<sha256 hex>}` | a replica's claim to be asking LINE about the token | when it shares its verdict, or after the upstream timeout |
//! | `<prefix>x:{<sha256 hex>}`, `<prefix>xu:<user ID>`, `<prefix>xall` | when (Redis's clock, Unix ms) the token, the user's tokens or everything was forgotten | after 30 s |
//!
//! Each replica re-checks a shared verdict against its own channels and required scopes, so
//! replicas with different requirements may share entries; refusals that depend on those
//! requirements (another channel, a missing scope) are not shared.
//!
//! # Invalidation
//!
//! [`forget`](crate::LineAuthHandle::forget), [`forget_user`](crate::LineAuthHandle::forget_user),
//! [`clear`](crate::LineAuthHandle::clear) and [`logout`](crate::LineAuthHandle::logout) delete the shared
//! entries and publish on `<prefix>invalidate`; every replica drops its in-process copy when the
//! message arrives (milliseconds on a LAN). A logout also leaves a refusal in Redis until the
//! token expires, so no replica accepts it again. A forget leaves a mark with the time, by Redis's
//! clock; a replica writes a verdict only if no mark came since its verification began (in one
//! script: on one server every mark, in a cluster the token's own, which shares its slot), then
//! reads the marks and takes the verdict back if the token, its user or everything was forgotten
//! after its verification began. Whichever of the share and the forget reaches Redis second
//! removes the verdict, so a verification under way cannot undo a forget; and a replica waiting
//! on the verifying one's claim is not handed a verdict the token's forget covered.
//!
//! A replica that hears LINE refuse a token it held, or one LINE calls revoked or expired (LINE
//! ends tokens early) or refuses in words not recognised here, publishes that refusal too (with a
//! forget's mark): every replica drops its verdict, stale ones included, while the refusal,
//! shared and remembered, stands.
//!
//! Every replica publishes a keepalive on a channel of its own (`<prefix>keepalive:…`) each
//! second and expects to hear it, so a Redis ACL must allow `PUBLISH` and `SUBSCRIBE` on
//! `<prefix>*` channels. A subscription silent for 3 s (a half-open connection) is made anew. On
//! every subscription after a time without one (a lost connection, a start while Redis was down)
//! the replica drops its in-process verdicts, which a message it could not hear may have covered.
//!
//! # When Redis is in trouble
//!
//! Redis is an optimisation, never a dependency of a request: every Redis call is bounded by
//! [`redis_timeout`](crate::LineAuthConfigBuilder::redis_timeout) (50 ms by default), and after a
//! failure Redis is left alone for a second, so an outage costs at most one timeout per second
//! while requests go to LINE as without Redis (a failure of a call begun before a lost
//! subscription came back is of what was given up, a dead node, and leaves Redis in use).
//! Failures are logged (`warn`, once per episode; one of a call from before a resume at
//! `debug`) and counted ([`Stats::shared_errors`](crate::Stats::shared_errors)). The
//! connection and the subscription reconnect by themselves, the subscription trying at least
//! every half second and at once when Redis answers a call again (until then the replica misses
//! invalidations).
//! Invalidations that could not be published wait in a bounded outbox and are published when
//! Redis is back (one that fails again waits behind the others, so a cluster master down holds
//! up only its own); a replica that lost its subscription
//! drops its in-process verified tokens when it resubscribes, since it may have missed some.
//! A token verified while Redis could not be read is verified without the fleet's sign-outs:
//! its sign-out record is read (`PTTL`) once Redis is used again, within a second or, for a
//! backlog, up to 256 a second, and refuses it from then on. Failures of these reads are
//! counted, not logged. Past 4,096 such tokens, every in-process verdict is dropped instead.
//!
//! # Trust
//!
//! Every verdict and refusal is stored as `{base64url HMAC-SHA256}.{entry}`, the MAC taken under
//! the fleet's [signing key](crate::LineAuthConfigBuilder::redis_signing_key) over the kind of
//! entry, the token hash it is stored under and the entry itself. A replica takes an entry for a
//! verdict only if the MAC checks out under its key (or, during a rotation, the
//! [previous key](crate::LineAuthConfigBuilder::redis_previous_signing_key)): whoever can write
//! to Redis without the key can make replicas refuse tokens or ask LINE again (denial of service),
//! but cannot make one accept a token LINE never verified for this fleet, nor accept it as
//! another user. They can replay a genuine entry saved earlier, for the same token, until the
//! freshness it was signed with runs out (at most the maximum TTL). Sign-outs, claims, forget
//! marks and the invalidation channel are not signed: forging them only ever denies. Whoever can
//! read Redis learns token hashes and the profiles of verified users, so give it a password or an
//! ACL user, keep it off public networks, and use `rediss://` (TLS, with the system's and
//! Mozilla's root certificates) when it is reached over one. The URL's password and the signing
//! keys never appear in `Debug` or in errors.
//!
//! # ID tokens
//!
//! ID-token layers ([`LineAuthLayer::id_tokens`](crate::LineAuthLayer::id_tokens)) verify
//! locally with no call to LINE, so they share invalidations but not verdicts; a forgotten ID
//! token is verified again, and accepted while its signature and expiry hold.
