//! A complete LINE web sign-in with `LineLoginClient`: login link → LINE's authorization page →
//! callback → code exchange (PKCE) → ID token checked (nonce) → the session shows the profile →
//! refresh → logout (revoke).
//!
//! ```text
//! cargo run --example web_login
//! ```
//!
//! With no `LINE_CHANNEL_ID` it runs against the in-process LINE emulator, which signs you in at
//! once as a demo user. With `LINE_CHANNEL_ID` and `LINE_CHANNEL_SECRET` set it talks to the real
//! LINE; register `PUBLIC_URL/callback` (default `http://127.0.0.1:3001/callback`) as the
//! channel's callback URL. Env: `LISTEN_ADDR` (default `127.0.0.1:3001`), `PUBLIC_URL`,
//! `LINE_API_BASE` (a LINE of your own, such as the emulator run apart: the authorization page
//! is then its `/oauth2/v2.1/authorize` too), `LINE_AUTHORIZE_URL` (the authorization page, where
//! it is elsewhere), `RUST_LOG`.
//!
//! Sessions live in memory and are keyed by a random cookie, `Secure` when `PUBLIC_URL` is
//! `https://`; a real app keeps them in its own store. Signing in starts a new session (a cookie
//! set before it is not the signed-in one), and at most 1,000 sign-ins may be under way at once,
//! each for at most 10 minutes (the life of LINE's authorization code).

use std::collections::HashMap;
use std::error::Error;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use line_auth::login::{
    AuthorizeRequest, LineLoginClient, LineLoginError, Pkce, Profile, TokenSet,
};
use line_auth::rejection::UpstreamError;
use line_auth_emulator::{EmulatedUser, LineEmulator};
use rand::distr::{Alphanumeric, SampleString};
use tokio::net::TcpListener;

/// How many sign-ins may be under way at once: each `/login` holds one until its callback.
const MAX_PENDING_SIGN_INS: usize = 1_000;

/// How long a sign-in may stay under way: LINE's authorization code lives 10 minutes.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A sign-in between /login and /callback.
struct PendingSignIn {
    /// The CSRF `state`.
    state: String,
    /// The ID token's `nonce`.
    nonce: String,
    pkce: Pkce,
    started: Instant,
}

/// What the app remembers of a signed-in browser.
struct Session {
    tokens: TokenSet,
    profile: Profile,
}

#[derive(Clone)]
struct App {
    line: LineLoginClient,
    redirect_uri: String,
    /// Whether cookies are `Secure`: the app is served over HTTPS.
    secure_cookies: bool,
    /// By the cookie `/login` set.
    pending: Arc<Mutex<HashMap<String, PendingSignIn>>>,
    /// By the cookie the callback set.
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

impl App {
    /// The `Set-Cookie` value for session `id`.
    fn cookie(&self, id: &str) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!("session={id}; HttpOnly; SameSite=Lax; Path=/{secure}")
    }
}

fn random(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|cookie| cookie.trim().strip_prefix("session="))
        .map(str::to_owned)
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>line-auth web login</title><body style=\"font-family:sans-serif\">{body}</body>"
    ))
}

fn time_left(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::SystemTime::now())
        .map_or(0, |left| left.as_secs());
    format!("{} days {} hours", secs / 86_400, secs % 86_400 / 3_600)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Html<String> {
    let sessions = app.sessions.lock().unwrap();
    let signed_in = session_id(&headers)
        .and_then(|id| sessions.get(&id))
        .map(|session| (&session.profile, &session.tokens));
    match signed_in {
        Some((profile, tokens)) => page(&format!(
            "<h1>Hello, {name}</h1><p>User ID <code>{id}</code></p>{picture}\
             <p>The access token expires in {expires}, the refresh token in {refresh}.</p>\
             <form method=post action=/refresh><button>Refresh the access token</button></form>\
             <form method=post action=/logout><button>Log out</button></form>",
            name = escape(&profile.display_name),
            id = escape(&profile.user_id),
            picture = profile
                .picture_url
                .as_deref()
                .map(|url| format!("<img src=\"{}\" width=100>", escape(url)))
                .unwrap_or_default(),
            expires = time_left(tokens.access_expires_at),
            refresh = time_left(tokens.refresh_expires_at),
        )),
        None => page("<h1>line-auth web login</h1><p><a href=/login>Log in with LINE</a></p>"),
    }
}

async fn login(State(app): State<App>) -> Response {
    let (id, state, nonce) = (random(32), random(24), random(24));
    let pkce = Pkce::from_verifier(random(64)).expect("64 alphanumerics make a valid verifier");
    let url = app.line.authorize_url(
        &AuthorizeRequest::new(&app.redirect_uri, &state, &["profile", "openid"])
            .nonce(&nonce)
            .pkce(&pkce),
    );
    {
        let mut pending = app.pending.lock().unwrap();
        pending.retain(|_, sign_in| sign_in.started.elapsed() < SIGN_IN_TIMEOUT);
        if pending.len() >= MAX_PENDING_SIGN_INS {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "60")],
                page("Too many sign-ins under way: try again in a minute."),
            )
                .into_response();
        }
        let sign_in = PendingSignIn {
            state,
            nonce,
            pkce,
            started: Instant::now(),
        };
        pending.insert(id.clone(), sign_in);
    }
    let cookie = app.cookie(&id);
    ([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response()
}

async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let fail = |message: &str| (StatusCode::BAD_REQUEST, page(&escape(message))).into_response();
    let Some(id) = session_id(&headers) else {
        return fail("no session: start at /login");
    };
    // Taken, not read: a sign-in's state, nonce and PKCE verifier serve one callback.
    let pending = app.pending.lock().unwrap().remove(&id);
    let Some(PendingSignIn {
        state,
        nonce,
        pkce,
        started,
    }) = pending
    else {
        return fail("no sign-in under way: start at /login");
    };
    if started.elapsed() >= SIGN_IN_TIMEOUT {
        return fail("the sign-in took too long: start again at /login");
    }
    if query.get("state") != Some(&state) {
        return fail("the state does not match: possible CSRF");
    }
    let Some(code) = query.get("code") else {
        return fail(&format!(
            "LINE refused: {}",
            query.get("error").map_or("no code", String::as_str)
        ));
    };
    let tokens = match app
        .line
        .exchange_code(code, &app.redirect_uri, Some(&pkce))
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => return fail(&format!("code exchange failed: {error}")),
    };
    // The ID token is checked with LINE, against the nonce of this sign-in (replay protection).
    if let Some(id_token) = &tokens.id_token {
        if let Err(error) = app
            .line
            .verify_id_token(id_token.secret(), Some(&nonce), None)
            .await
        {
            return fail(&format!("ID token refused: {error}"));
        }
    }
    let profile = match app.line.profile(tokens.access_token.secret()).await {
        Ok(profile) => profile,
        Err(error) => return fail(&format!("profile failed: {error}")),
    };
    // A new session ID at sign-in (OWASP session management): a cookie someone planted before
    // the sign-in does not become the signed-in session.
    let signed_in = random(32);
    app.sessions
        .lock()
        .unwrap()
        .insert(signed_in.clone(), Session { tokens, profile });
    let cookie = app.cookie(&signed_in);
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

async fn refresh(State(app): State<App>, headers: HeaderMap) -> Response {
    let tokens = session_id(&headers)
        .and_then(|id| Some((app.sessions.lock().unwrap().get(&id)?.tokens.clone(), id)));
    let Some((tokens, id)) = tokens else {
        return Redirect::to("/").into_response();
    };
    match app.line.refresh(&tokens).await {
        Ok(refreshed) => {
            if let Some(session) = app.sessions.lock().unwrap().get_mut(&id) {
                session.tokens = refreshed;
            }
            Redirect::to("/").into_response()
        }
        // An expired refresh token (90 days after sign-in): sign in again.
        Err(error) if error.is_invalid_grant() => {
            app.sessions.lock().unwrap().remove(&id);
            Redirect::to("/login").into_response()
        }
        // LINE busy or out of reach: try again later, after LINE's wait where it named one.
        Err(LineLoginError::Unavailable(cause)) => {
            let wait = match &cause {
                UpstreamError::Status {
                    retry_after: Some(wait),
                    ..
                } => wait.as_secs().max(1),
                _ => 5,
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, wait.to_string())],
                page(&escape(&format!(
                    "LINE is unavailable, try again later: {cause}"
                ))),
            )
                .into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            page(&escape(&format!("refresh failed: {error}"))),
        )
            .into_response(),
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    let session = session_id(&headers).and_then(|id| app.sessions.lock().unwrap().remove(&id));
    if let Some(Session { tokens, .. }) = session {
        // The access token by the documented form, then the refresh token by the form LINE's
        // SDKs use (which takes the access tokens issued from it along, where LINE supports it).
        if let Err(error) = app
            .line
            .revoke_access_token(tokens.access_token.secret())
            .await
        {
            tracing::warn!(%error, "could not revoke the access token at LINE");
        }
        if let Err(error) = app
            .line
            .revoke_refresh_token(tokens.refresh_token.secret())
            .await
        {
            tracing::warn!(%error, "could not revoke the refresh token at LINE");
        }
    }
    let expired = format!("{}; Max-Age=0", app.cookie(""));
    ([(header::SET_COOKIE, expired)], Redirect::to("/")).into_response()
}

/// Prints what went wrong as a sentence (its `Display`, not `Debug`) and exits with status 1.
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let listen_addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".to_owned())
        .parse()
        .map_err(|error| format!("LISTEN_ADDR: {error}"))?;
    let listener = TcpListener::bind(listen_addr).await?;
    let addr = listener.local_addr()?;
    let public_url = std::env::var("PUBLIC_URL").unwrap_or_else(|_| format!("http://{addr}"));

    // Kept alive for the life of the server: dropping the emulator stops it.
    let mut emulator = None;
    // Trimmed, and blank as unset, as `LineAuthConfig::from_env` reads them.
    let setting = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let channel_id = setting("LINE_CHANNEL_ID");
    let line = match channel_id {
        Some(channel_id) => {
            let mut builder = LineLoginClient::builder(channel_id);
            if let Some(secret) = setting("LINE_CHANNEL_SECRET") {
                builder = builder.channel_secret(secret);
            }
            if let Ok(base) = std::env::var("LINE_API_BASE") {
                // A stand-in serves the authorization page beside the API; LINE itself serves
                // it from another host (the default), which `LINE_AUTHORIZE_URL` can name.
                let authorize = format!("{}/oauth2/v2.1/authorize", base.trim_end_matches('/'));
                builder = builder.api_base(base).authorize_endpoint(authorize);
            }
            if let Ok(authorize) = std::env::var("LINE_AUTHORIZE_URL") {
                builder = builder.authorize_endpoint(authorize);
            }
            builder.build()?
        }
        None => {
            let line = LineEmulator::start().await?;
            line.register_channel("1234567890", "demo-channel-secret");
            line.sign_in_as(EmulatedUser::new(
                "U4af4980629aabbccddeeff0011223344",
                "Brown",
            ));
            tracing::info!(line_api = %line.base_url(), "LINE_CHANNEL_ID is unset: using the LINE emulator");
            let client = LineLoginClient::builder("1234567890")
                .channel_secret("demo-channel-secret")
                .api_base(line.base_url())
                .authorize_endpoint(format!("{}/oauth2/v2.1/authorize", line.base_url()))
                .build()?;
            emulator = Some(line);
            client
        }
    };
    let app = App {
        line,
        redirect_uri: format!("{public_url}/callback"),
        secure_cookies: public_url.starts_with("https://"),
        pending: Arc::default(),
        sessions: Arc::default(),
    };
    let router = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .with_state(app);

    // A closed stdout (a supervisor that read what it needed) must not take the server down,
    // as `println!` would by panicking.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on http://{addr}");
    let _ = writeln!(stdout, "open {public_url}/ in a browser");
    let _ = stdout.flush();
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(emulator);
    Ok(())
}
