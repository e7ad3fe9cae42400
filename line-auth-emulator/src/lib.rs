//! LINE Login's API on loopback, for tests: your tests, examples and benchmarks never call, or
//! load, the real LINE, which forbids load testing.
//!
//! [`LineEmulator`] is a real HTTP server on `127.0.0.1`. It answers LINE Login's endpoints the
//! way LINE documents them: access-token verify, profile, revoke, the authorization endpoint
//! (automatic consent, single-use 10-minute codes, PKCE S256), the token endpoint (both grants;
//! refresh keeps the refresh token and its 90-day limit), ES256 and HS256 ID tokens, the key set
//! at `/oauth2/v2.1/certs`, ID-token verification with LINE's error texts, userinfo,
//! friendship, and `/user/v1/deauthorize` (a user leaving the app: every token the user holds
//! for the channel ends). It issues JWS-shaped access tokens for a channel, scopes, lifetime and profile,
//! can expire and revoke them, counts calls per endpoint, and can be stopped and restarted to
//! play LINE being down.
//!
//! Point the code under test at [`LineEmulator::base_url`] where it would call
//! `https://api.line.me` (and `https://access.line.me` for the authorization page): for
//! `line-auth`, that is its configuration's `api_base`. The emulator itself depends on no LINE
//! client, so it serves any.
//!
//! # In a test
//!
//! Add it as a dev-dependency (`cargo add --dev line-auth-emulator`), start one emulator per
//! test (each takes a free port, so tests run in parallel), issue tokens, and call it:
//!
//! ```
//! use line_auth_emulator::{IssueToken, LineEmulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! // In a `#[tokio::test]`:
//! let line = LineEmulator::start().await?;
//! let token = line.issue(IssueToken::new("1234567890").scopes(["profile", "openid"]));
//!
//! let url = format!("{}/oauth2/v2.1/verify?access_token={token}", line.base_url());
//! let body = reqwest::get(url).await.unwrap().text().await.unwrap();
//! let body: serde_json::Value = serde_json::from_str(&body).unwrap();
//! assert_eq!(body["client_id"], "1234567890");
//! assert_eq!(body["scope"], "profile openid");
//! assert_eq!(line.calls().verify, 1);
//! # Ok(())
//! # }
//! ```
//!
//! The emulator runs on the Tokio runtime that starts it, so start it inside the test's runtime
//! and keep it alive for as long as the test needs LINE; dropping it stops the server.
//!
//! # LINE's rules it keeps
//!
//! - A `scope` answer (verify, the token endpoint) is space-separated and never lists `email`,
//!   even when it was granted; the token still has it, and the ID token's `email` claim
//!   depends on it.
//! - ID tokens carry `amr` only when it applies: one from [`issue_id_token`] has none unless
//!   [`IssueIdToken::amr`] sets it (LINE's LIFF ID tokens have none, and live an hour); those
//!   of the web-login code flow say `["pwd"]`.
//! - The code exchange requires the channel secret as `client_secret`; refresh and revoke
//!   require it only on a channel whose app types are "Web app" only
//!   ([`set_channel_type`] with [`ChannelType::WebAppOnly`]) and ignore it otherwise. A
//!   missing or wrong secret is a 400 `{"error": "invalid_client", …}`, and a refused revoke
//!   leaves the token live. A revoke naming another channel than the token's is refused the
//!   same way (`"invalid client_id"`). LINE documents no answer for either: these are the
//!   emulator's choices, strict so that a client sending the wrong channel or no secret fails
//!   here rather than in production.
//! - A token may hold `openid` alone: `GET /v2/profile` refuses it (403, `{"message": …}`),
//!   while `GET`/`POST /oauth2/v2.1/userinfo` answers its `{"sub": …}`, with `name` and
//!   `picture` only under `profile`.
//!
//! [`issue_id_token`]: LineEmulator::issue_id_token
//! [`set_channel_type`]: LineEmulator::set_channel_type
//!
//! ## A LINE MINI App's token
//!
//! With channel consent simplification, a LINE MINI App's user consents to `openid` alone at
//! first use, so the app's access token has no `profile`: the user ID comes from userinfo.
//! Issue such a token with `scopes(["openid"])`, and with LIFF's 12-hour life (a token's default
//! is LINE Login's 30 days):
//!
//! ```
//! use std::time::Duration;
//!
//! use line_auth_emulator::{IssueToken, LineEmulator};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let line = LineEmulator::start().await?;
//! let token = line.issue(
//!     IssueToken::new("1234567890")
//!         .scopes(["openid"])
//!         .user_id("U4af4980629aabbccddeeff0011223344")
//!         .lifetime(Duration::from_secs(12 * 60 * 60)),
//! );
//!
//! let http = reqwest::Client::new();
//! let profile = http.get(format!("{}/v2/profile", line.base_url())).bearer_auth(&token);
//! assert_eq!(profile.send().await.unwrap().status(), 403);
//! let userinfo = http
//!     .get(format!("{}/oauth2/v2.1/userinfo", line.base_url()))
//!     .bearer_auth(&token);
//! let body = userinfo.send().await.unwrap().text().await.unwrap();
//! assert_eq!(body, r#"{"sub":"U4af4980629aabbccddeeff0011223344"}"#);
//! # Ok(())
//! # }
//! ```
//!
//! # Faults
//!
//! [`inject`](LineEmulator::inject) scripts faults per endpoint ([`Fault`]): latency, 5xx, 429
//! with `Retry-After`, a non-JSON or huge body, a connection broken off, a hang.
//! [`stop`](LineEmulator::stop) and [`restart`](LineEmulator::restart) play an outage.
//!
//! # Where LINE is silent
//!
//! Where LINE's behaviour is undocumented, the emulator makes a documented choice: a token it
//! did not issue is answered with `"The access token not JWS"`; the profile endpoint's errors
//! use the `{"message": …}` body shape; a missing or wrong `client_secret` is described as
//! `"invalid client_secret"`; revoking an unknown or already invalid token answers 200; the
//! web-login code flow's `amr` is `["pwd"]`; and deauthorize, whose channel access token the
//! emulator cannot check (it issues none), takes any bearer token for it and acts on the user
//! access token's own channel.

#![deny(missing_docs)]

mod faults;
mod handlers;
mod login;
mod tokens;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

/// The status type of [`Fault::Status`] (the `http` crate's), so tests need not name `http`.
pub use axum::http::StatusCode;
use faults::FaultPlan;
pub use faults::{Endpoint, Fault};
use login::LoginState;
pub use login::{ChannelType, EmulatedUser, IdTokenAlgorithm, IssueIdToken};
use tokens::TokenStore;
pub use tokens::{IssueToken, Revocation};

/// How many calls each endpoint has answered since start (or the last
/// [`reset_calls`](LineEmulator::reset_calls)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EmulatorCalls {
    /// `GET /oauth2/v2.1/verify`.
    pub verify: u64,
    /// `GET /v2/profile`.
    pub profile: u64,
    /// `POST /oauth2/v2.1/revoke`.
    pub revoke: u64,
    /// `GET /oauth2/v2.1/certs`.
    pub certs: u64,
    /// `GET` or `POST /oauth2/v2.1/userinfo`.
    pub userinfo: u64,
}

/// State shared by the emulator's handlers and its handle.
#[derive(Default)]
struct Shared {
    tokens: TokenStore,
    login: LoginState,
    faults: FaultPlan,
    /// Set while stopped: a fault that would hold a request (latency, a hang) cuts it instead.
    stopped: AtomicBool,
    /// Wakes the requests such faults hold, to be cut when the emulator stops.
    stopping: Notify,
    verify_calls: AtomicU64,
    profile_calls: AtomicU64,
    revoke_calls: AtomicU64,
    certs_calls: AtomicU64,
    userinfo_calls: AtomicU64,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// LINE's API on loopback. Dropping it stops the server.
pub struct LineEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for LineEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl LineEmulator {
    /// Starts the emulator on a free port of `127.0.0.1`.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the emulator on `addr`.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let emulator = Self {
            addr: listener.local_addr()?,
            shared: Arc::default(),
            running: Mutex::new(None),
        };
        emulator.serve(listener);
        Ok(emulator)
    }

    fn serve(&self, listener: TcpListener) {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = handlers::router(Arc::clone(&self.shared));
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            // axum documents that this future never fails: accept errors are waited out.
            let _ = server.await;
        });
        *self.lock_running() = Some(Running { shutdown, task });
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The base URL to use in place of `https://api.line.me` (line-auth's `api_base`), e.g.
    /// `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the emulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Issues an access token and returns it.
    pub fn issue(&self, token: IssueToken) -> String {
        self.shared.tokens.issue(token)
    }

    /// Makes `token` expired from now on, as if its lifetime had run out.
    pub fn expire(&self, token: &str) -> bool {
        self.shared.tokens.expire(token)
    }

    /// Revokes the access token `token`, as `POST /oauth2/v2.1/revoke` with it would: verify
    /// and profile then refuse it. Its refresh token and the user's other tokens are untouched
    /// (LINE documents neither way for a revoke; unlinking the app, which ends them all, is not
    /// emulated).
    pub fn revoke(&self, token: &str) -> bool {
        self.shared.tokens.revoke(token)
    }

    /// Makes every call to `endpoint` misbehave with `fault`, until
    /// [`clear_faults`](Self::clear_faults). Calls are counted whatever the fault.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.shared.faults.set(endpoint, fault, None);
    }

    /// Makes the next `times` calls to `endpoint` misbehave with `fault`, then answers normally.
    pub fn inject_times(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        self.shared.faults.set(endpoint, fault, Some(times));
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Registers a channel's secret. The code exchange requires it as `client_secret` (missing
    /// or wrong: 400 `invalid_client`), as do refresh and revoke on a
    /// [`ChannelType::WebAppOnly`] channel; HS256 ID tokens for the channel are signed with it.
    /// A channel nobody registered has the secret `emulator-channel-secret-{channel_id}`
    /// ([`channel_secret`](Self::channel_secret)).
    pub fn register_channel(&self, channel_id: &str, secret: &str) {
        self.shared.login.register_channel(channel_id, secret);
    }

    /// Sets a channel's app types (default [`ChannelType::IncludesMobileApp`]): a
    /// [`ChannelType::WebAppOnly`] channel must send its secret to refresh and to revoke.
    pub fn set_channel_type(&self, channel_id: &str, channel_type: ChannelType) {
        self.shared.login.set_channel_type(channel_id, channel_type);
    }

    /// With `true`, refresh answers leave `refresh_token` out. LINE's reference says the same
    /// refresh token comes back; LINE's Android SDK reads the field as optional ("a new one only
    /// if the current one must be replaced") and keeps the old one, so a client must too.
    pub fn set_refresh_omits_refresh_token(&self, omit: bool) {
        self.shared.login.set_refresh_omits_refresh_token(omit);
    }

    /// The secret of `channel_id`: the one registered, or the one of a channel nobody
    /// registered. HS256 ID tokens are signed with it, and the token endpoint asks for it.
    pub fn channel_secret(&self, channel_id: &str) -> String {
        self.shared.login.channel_secret(channel_id)
    }

    /// Who the authorization endpoint signs in from now on (it consents at once).
    pub fn sign_in_as(&self, user: EmulatedUser) {
        self.shared.login.sign_in_as(user);
    }

    /// Issues an ID token directly (as `liff.getIDToken()` hands one to an app): ES256 with the
    /// key published at `/oauth2/v2.1/certs` unless HS256 is asked for.
    pub fn issue_id_token(&self, request: IssueIdToken) -> String {
        self.shared.login.issue_id_token(request)
    }

    /// Adds a new ES256 signing key, used from now on; earlier keys stay published. Returns
    /// its `kid`.
    pub fn rotate_signing_key(&self) -> String {
        self.shared.login.rotate_signing_key()
    }

    /// Stops publishing the ES256 key `kid` at `/oauth2/v2.1/certs` (and signing with it), as
    /// LINE would retire a key; whether it was published. Tokens it signed no longer verify
    /// against the published keys.
    pub fn retire_signing_key(&self, kid: &str) -> bool {
        self.shared.login.retire_signing_key(kid)
    }

    /// Makes a refresh token expired, as if its 90 days had run out.
    pub fn expire_refresh_token(&self, refresh_token: &str) -> bool {
        self.shared.login.expire_refresh_token(refresh_token)
    }

    /// Makes an ID token expired at `POST /oauth2/v2.1/verify`, as if its hour had run out. Its
    /// `exp` claim is signed and stays as it was, so a local verification still accepts it: for
    /// that, issue one already expired (`IssueIdToken::issued_at`).
    pub fn expire_id_token(&self, id_token: &str) -> bool {
        self.shared.login.expire_id_token(id_token)
    }

    /// What the `POST /oauth2/v2.1/revoke` that revoked `token` sent, if one did.
    pub fn revocation(&self, token: &str) -> Option<Revocation> {
        self.shared.tokens.revocation(token)
    }

    /// Calls answered per endpoint.
    pub fn calls(&self) -> EmulatorCalls {
        EmulatorCalls {
            verify: self.shared.verify_calls.load(Ordering::Relaxed),
            profile: self.shared.profile_calls.load(Ordering::Relaxed),
            revoke: self.shared.revoke_calls.load(Ordering::Relaxed),
            certs: self.shared.certs_calls.load(Ordering::Relaxed),
            userinfo: self.shared.userinfo_calls.load(Ordering::Relaxed),
        }
    }

    /// Sets every call counter back to zero.
    pub fn reset_calls(&self) {
        self.shared.verify_calls.store(0, Ordering::Relaxed);
        self.shared.profile_calls.store(0, Ordering::Relaxed);
        self.shared.revoke_calls.store(0, Ordering::Relaxed);
        self.shared.userinfo_calls.store(0, Ordering::Relaxed);
        self.shared.certs_calls.store(0, Ordering::Relaxed);
    }

    /// Stops answering: the port is closed and open connections are shut, so callers see
    /// LINE as unreachable; a request held by an injected latency or hang is cut, not answered.
    /// Issued tokens are kept for [`restart`](Self::restart).
    pub async fn stop(&self) {
        let running = self.lock_running().take();
        if let Some(Running { shutdown, task }) = running {
            self.cut_held_requests();
            let _ = shutdown.send(());
            // Answers being written get a moment to finish; then their connections are cut.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Serves again on the same address after [`stop`](Self::stop).
    pub async fn restart(&self) -> io::Result<()> {
        if self.lock_running().is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        self.shared.stopped.store(false, Ordering::SeqCst);
        self.serve(listener);
        Ok(())
    }

    /// Requests held by a fault are cut rather than answered late: LINE gone down answers
    /// nothing (the server's graceful shutdown would let them finish).
    fn cut_held_requests(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.stopping.notify_waiters();
    }
}

impl Drop for LineEmulator {
    fn drop(&mut self) {
        if let Some(Running { shutdown, task }) = self.lock_running().take() {
            self.cut_held_requests();
            let _ = shutdown.send(());
            task.abort();
        }
    }
}
