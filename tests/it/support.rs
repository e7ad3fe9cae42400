//! Shared set-up: the emulator, a protected app served on loopback, and a plain HTTP client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use line_auth::{LineAuthConfig, LineAuthConfigBuilder, LineUser};
use line_auth_emulator::{IssueToken, LineEmulator};
use tokio::net::TcpListener;

/// The channel the test apps accept.
pub const CHANNEL: &str = "1234567890";
/// A channel the test apps do not accept.
pub const OTHER_CHANNEL: &str = "9876543210";

/// Serves `router` on a free loopback port and returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// A plain client for calling the app under test (no redirects, short timeout).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        // Loopback HTTP only: no root certificates to load. Loading the system's (reqwest 0.13's
        // default) takes ~100 ms in a debug build, a pause that upsets the tests timing a
        // request against a forget.
        .tls_certs_only([])
        .build()
        .unwrap()
}

/// Counts how often protected handlers ran, to prove a refused request never reached one.
#[derive(Clone, Default)]
pub struct HandlerCalls(Arc<AtomicU64>);

impl HandlerCalls {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `GET /api/me` (returns the `LineUser` as JSON) and `GET /health` (public), unprotected.
pub fn routes(calls: &HandlerCalls) -> Router {
    let calls = calls.clone();
    Router::new()
        .route(
            "/api/me",
            get(move |user: LineUser| async move {
                calls.0.fetch_add(1, Ordering::SeqCst);
                Json(user)
            }),
        )
        .route("/health", get(|| async { "ok" }))
}

/// The emulator plus a layer configuration pointed at it.
pub struct Line {
    pub emulator: LineEmulator,
}

/// The emulator, and the default app behind a default layer, served: the layer's handle and the
/// app's base URL.
async fn default_app() -> (Line, line_auth::LineAuthHandle, String) {
    let line = Line::start().await;
    let layer = line_auth::LineAuthLayer::new(line.config().build().unwrap());
    let auth = layer.handle();
    let base = serve(routes(&HandlerCalls::default()).layer(layer)).await;
    (line, auth, base)
}

/// A layer over the emulator, served, with a token LINE verifies and one it has revoked.
pub struct TwoTokens {
    pub line: Line,
    pub auth: line_auth::LineAuthHandle,
    pub base: String,
    pub token: String,
    pub revoked: String,
}

impl TwoTokens {
    pub async fn start() -> Self {
        let (line, auth, base) = default_app().await;
        let token = line.token();
        let revoked = line.token();
        line.emulator.revoke(&revoked);
        Self {
            line,
            auth,
            base,
            token,
            revoked,
        }
    }

    /// While LINE takes `latency` to verify: two requests at once with the good token (one
    /// verification, one coalesced wait), then one more (a hit), each let through.
    pub async fn verify_coalesce_then_hit(&self, latency: std::time::Duration) {
        self.line.emulator.inject(
            line_auth_emulator::Endpoint::Verify,
            line_auth_emulator::Fault::Latency(latency),
        );
        let (first, joined) = tokio::join!(
            get_bearer(&self.base, "/api/me", &self.token),
            get_bearer(&self.base, "/api/me", &self.token)
        );
        assert_eq!(
            (first.status, joined.status),
            (StatusCode::OK, StatusCode::OK)
        );
        let hit = get_bearer(&self.base, "/api/me", &self.token).await;
        assert_eq!(hit.status, StatusCode::OK);
    }
}

impl Line {
    pub async fn start() -> Self {
        Self {
            emulator: LineEmulator::start().await.unwrap(),
        }
    }

    /// A configuration accepting [`CHANNEL`], pointed at the emulator.
    pub fn config(&self) -> LineAuthConfigBuilder {
        LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(self.emulator.base_url())
    }

    /// A 30-day token for [`CHANNEL`] with the `profile` scope.
    pub fn token(&self) -> String {
        self.emulator.issue(IssueToken::new(CHANNEL))
    }

    pub fn issue(&self, request: IssueToken) -> String {
        self.emulator.issue(request)
    }

    /// (verify calls, profile calls) so far.
    pub fn calls(&self) -> (u64, u64) {
        let calls = self.emulator.calls();
        (calls.verify, calls.profile)
    }

    /// Waits until LINE has received `count` verify calls (counted as they arrive, before any
    /// injected latency), so a test can act while a verification is waiting for LINE.
    pub async fn wait_for_verify_calls(&self, count: u64) {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while self.calls().0 < count {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        });
        waited.await.expect("LINE never received the verify call");
    }
}

/// A response as a client sees it.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn challenge(&self) -> Option<&str> {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap())
    }
}

/// `GET {base}{path}` with the given `Authorization` values (none, one, or several).
pub async fn get_with(base: &str, path: &str, authorization: &[&[u8]]) -> Reply {
    let mut request = http().get(format!("{base}{path}"));
    for value in authorization {
        request = request.header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// `GET {base}{path}` with `Authorization: Bearer {token}`.
pub async fn get_bearer(base: &str, path: &str, token: &str) -> Reply {
    get_with(base, path, &[format!("Bearer {token}").as_bytes()]).await
}

/// `GET {base}{path}` with no credentials.
pub async fn get_anonymous(base: &str, path: &str) -> Reply {
    get_with(base, path, &[]).await
}

/// Fixed response headers for [`broken_line`].
pub type StaticHeaders = &'static [(&'static str, &'static str)];

/// A stand-in for a misbehaving LINE: every request gets the same status, headers and body.
pub async fn broken_line(status: StatusCode, headers: StaticHeaders, body: &'static str) -> String {
    let router = Router::new().fallback(move || async move {
        let mut response = axum::response::Response::new(axum::body::Body::from(body));
        *response.status_mut() = status;
        for (name, value) in headers {
            response.headers_mut().insert(*name, value.parse().unwrap());
        }
        response
    });
    serve(router).await
}

/// An example binary running as its own process; killed when dropped.
pub struct Example(Child);

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Example `name` (built by `cargo test` with the other examples) as a command, on a free
/// loopback port, with `env` over an environment cleared of the line-auth variables.
fn example_command(name: &str, env: &[(&str, &str)]) -> Command {
    let binary = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        binary.exists(),
        "build it first: cargo build --all-features --example {name}"
    );
    let mut command = Command::new(binary);
    // Every setting the example reads (`LineAuthConfig::from_env`'s, in demo mode too, and the
    // LIFF page's `LIFF_ID`) comes from the test alone, not from the shell that runs it.
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if name.starts_with("LINE_") || name.starts_with("REDIS_") || name == "LIFF_ID" {
            command.env_remove(&variable);
        }
    }
    command
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    command
}

/// Starts example `name` (see [`example_command`]) and returns its base URL once it prints
/// `listening on …`.
pub fn start_example(name: &str, env: &[(&str, &str)]) -> (Example, String) {
    let (example, base, _) = start_example_reading(name, env, "listening on ");
    (example, base)
}

/// Starts the example server in demo mode (no `LINE_CHANNEL_ID`: the embedded emulator), as
/// README's first command does, and returns its base URL with the `curl` line it printed.
pub fn start_demo() -> (Example, String, String) {
    start_example_reading("server", &[], "curl ")
}

/// Starts example `name` and reads what it prints up to the first line starting with `last`:
/// returns the example, its base URL (from `listening on …`) and that line.
fn start_example_reading(
    name: &str,
    env: &[(&str, &str)],
    last: &str,
) -> (Example, String, String) {
    let mut child = example_command(name, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let example = Example(child);
    let mut base = None;
    let found = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("example {name} printed no line starting {last:?}"))
            .unwrap();
        if let Some(address) = line.strip_prefix("listening on ") {
            base = Some(address.to_owned());
        }
        if line.starts_with(last) {
            break line;
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let base = base.unwrap_or_else(|| panic!("example {name} printed no address"));
    (example, base, found)
}

/// Everything `child` prints on its (piped) stderr, read on a thread of its own until it ends.
fn all_it_says(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut said = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
        said
    })
}

/// What example `name` logged on stderr (at `warn` and above) before it printed `listening on …`:
/// the warnings of its start. The example is stopped once it listens.
pub fn startup_warnings(name: &str, env: &[(&str, &str)]) -> String {
    let mut child = example_command(name, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = all_it_says(&mut child);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let example = Example(child);
    let listening = lines
        .map(Result::unwrap)
        .any(|line| line.starts_with("listening on "));
    drop(example);
    let said = said.join().unwrap();
    assert!(listening, "example {name} never listened: {said}");
    said
}

/// Runs example `name` with `env` (over an environment cleared of the line-auth variables) until
/// it exits, as a misconfigured one should at once; its exit status and what it printed on stderr.
pub fn run_failing_example(name: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let mut child = example_command(name, env)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let said = all_it_says(&mut child);
    // One that starts serving instead would otherwise hang the suite.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("example {name} was expected to exit at once, and was still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status, said.join().unwrap())
}

/// The emulator, the default app behind a default layer, that layer's handle, and one token the
/// app has verified already: the start of every logout and invalidation test.
pub struct Verified {
    pub line: Line,
    pub auth: line_auth::LineAuthHandle,
    pub base: String,
    pub token: String,
}

impl Verified {
    pub async fn start() -> Self {
        let (line, auth, base) = default_app().await;
        let token = line.token();
        assert_eq!(
            get_bearer(&base, "/api/me", &token).await.status,
            StatusCode::OK
        );
        Self {
            line,
            auth,
            base,
            token,
        }
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; whether it held.
pub(crate) async fn eventually(
    limit: std::time::Duration,
    mut condition: impl FnMut() -> bool,
) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    condition()
}

/// LINE's answer to a revoke of a token it already refuses, where it answers with an error (it
/// may answer 200 too, fact sheet §3.4): an error saying the token is invalid, which issue 14
/// counts as done.
pub fn already_invalid_at_line() -> line_auth_emulator::Fault {
    line_auth_emulator::Fault::Json {
        status: StatusCode::BAD_REQUEST,
        body: r#"{"error":"invalid_request","error_description":"The access token revoked"}"#
            .to_owned(),
    }
}

/// A LINE whose verify vouches for any token of [`CHANNEL`] with `scope`, and whose `user_path`
/// (the profile call or userinfo) answers `status` with `body`.
pub async fn line_naming_users(
    scope: &str,
    user_path: &str,
    status: StatusCode,
    body: &'static str,
) -> String {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let answer = get(move || async move { (status, [(CONTENT_TYPE, "application/json")], body) });
    line_vouching(scope, 3600, user_path, answer).await
}

/// A LINE whose verify vouches for any token of [`CHANNEL`] with `scope` for `expires_in`
/// seconds, and whose `user_path` (the profile call or userinfo) `answers`; its base URL.
pub async fn line_vouching(
    scope: &str,
    expires_in: u64,
    user_path: &str,
    answers: axum::routing::MethodRouter,
) -> String {
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;
    let verified =
        format!(r#"{{"scope":"{scope}","client_id":"{CHANNEL}","expires_in":{expires_in}}}"#);
    serve(
        axum::Router::new()
            .route(
                "/oauth2/v2.1/verify",
                get(move || async move { ([(CONTENT_TYPE, "application/json")], verified) }),
            )
            .route(user_path, answers),
    )
    .await
}
