//! An API behind `LineAuthLayer`: `GET /health` is public, `GET /api/me` returns the caller,
//! `GET /api/ping` answers `pong` to any verified caller (a protected route whose handler reads no
//! `LineUser`), `POST /api/logout` revokes the caller's token at LINE and forgets it here (204).
//! CORS is open to any origin for the demo (a LIFF page on another origin calls it). `GET /stats`
//! shows the layer's counters and `handler_runs`, how many requests the layer let through to a
//! protected handler (keep it private in production). `GET /liff/` serves the LIFF page of
//! `examples/liff/` (`/liff` redirects there): it gets the user's token from LIFF (or, in demo
//! mode, from a stand-in backed by the emulator), calls `/api/me` and shows the profile or the
//! error.
//!
//! ```text
//! cargo run --example server
//! ```
//!
//! With no `LINE_CHANNEL_ID` it starts the LINE emulator in-process, issues a demo token and prints
//! a `curl` line that works. With `LINE_CHANNEL_ID` set it verifies real tokens with LINE
//! (`LINE_API_BASE` to point elsewhere).
//!
//! Environment: every variable of `LineAuthConfig::from_env`, in demo mode too, where only
//! `LINE_CHANNEL_ID` and `LINE_API_BASE` are the demo's own. Among them `REDIS_URL` (or
//! `REDIS_CLUSTER_URLS`, a Redis Cluster's node URLs, comma-separated) with
//! `LINE_REDIS_SIGNING_KEY`: replicas share verified tokens and logouts through that Redis (needs
//! `--features redis`). Besides: `LIFF_ID`, your LIFF app's ID, which the LIFF page runs under
//! (LINE opens the page at its endpoint URL, which carries no ID); `LISTEN_ADDR` (default
//! `127.0.0.1:3000`); `RUST_LOG` (default `info`).

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{FromRef, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use line_auth::{
    LineAuthConfig, LineAuthError, LineAuthHandle, LineAuthLayer, LineUser, VerifiedToken,
};
use line_auth_emulator::{IssueToken, LineEmulator};
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tracing_subscriber::EnvFilter;

/// The channel the demo emulator issues tokens for.
const DEMO_CHANNEL_ID: &str = "1234567890";

/// The demo user's picture: a green circle with a B.
const DEMO_PICTURE: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 96 96'%3E%3Ccircle cx='48' cy='48' r='48' fill='%2306C755'/%3E%3Ctext x='48' y='64' font-size='48' text-anchor='middle' fill='white' font-family='sans-serif'%3EB%3C/text%3E%3C/svg%3E";

/// The demo user the emulator issues tokens for.
fn demo_user() -> IssueToken {
    IssueToken::new(DEMO_CHANNEL_ID)
        .scopes(["profile", "openid"])
        .user_id("U4af4980629aabbccddeeff0011223344")
        .display_name("Brown")
        // Inline, so the LIFF page shows it without reaching LINE's image host.
        .picture_url(DEMO_PICTURE)
        .status_message("Hello, LINE!")
}

async fn me(user: LineUser) -> Json<LineUser> {
    Json(user)
}

/// Protected, but reads no `LineUser`: only the layer stands between a refused token and `pong`.
async fn ping() -> &'static str {
    "pong"
}

/// Signs the caller out: its token is refused from now on, here and on every replica, and is
/// revoked at LINE (which runs to completion even if the caller hangs up).
async fn logout(
    State(auth): State<LineAuthHandle>,
    token: VerifiedToken,
) -> Result<StatusCode, LineAuthError> {
    auth.logout(token.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the handlers share: the layer's handle, and a count of the requests it let through.
#[derive(Clone)]
struct AppState {
    auth: LineAuthHandle,
    handler_runs: Arc<AtomicU64>,
}

impl FromRef<AppState> for LineAuthHandle {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Counts every request that reaches a protected handler. It sits inside the auth layer and
/// before the handlers' extractors, so a refused request the layer let through is counted even
/// when an extractor then refuses it: the load driver checks this count against its 200s.
async fn count_handler_run(
    State(handler_runs): State<Arc<AtomicU64>>,
    request: Request,
    next: Next,
) -> Response {
    handler_runs.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

/// The layer's counters and the handlers' runs, as `GET /stats` shows them.
#[derive(serde::Serialize)]
struct ServerStats {
    #[serde(flatten)]
    layer: line_auth::Stats,
    /// Requests the layer let through to a protected handler.
    handler_runs: u64,
}

/// The layer's counters (hits, misses, refusals by reason…) and the protected handlers' runs as
/// JSON, for operators.
async fn stats(State(state): State<AppState>) -> Json<ServerStats> {
    Json(ServerStats {
        layer: state.auth.stats(),
        handler_runs: state.handler_runs.load(Ordering::Relaxed),
    })
}

/// The LIFF page (`examples/liff/`), served as static files, and what it learns from the server
/// (`/liff/config.js`): the LIFF ID to run under, and whether the demo's stand-in for LIFF may be
/// used instead. LINE opens the page at its endpoint URL as registered, with no ID in it.
fn liff_page(liff_id: Option<&str>, demo: bool) -> Router<AppState> {
    let file = |content_type: &'static str, body: String| {
        get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) })
    };
    let page = || {
        file(
            "text/html; charset=utf-8",
            include_str!("liff/index.html").into(),
        )
    };
    let config = serde_json::json!({ "liffId": liff_id, "demo": demo });
    Router::new()
        .route("/liff", get(to_the_liff_page))
        .route("/liff/", page())
        .route("/liff/index.html", page())
        .route(
            "/liff/config.js",
            get(move || async move {
                // It follows the server's environment: no cache may keep an old one.
                let headers = [
                    (header::CONTENT_TYPE, "text/javascript"),
                    (header::CACHE_CONTROL, "no-store"),
                ];
                (headers, format!("window.LIFF_CONFIG = {config};\n"))
            }),
        )
        .route(
            "/liff/app.js",
            file("text/javascript", include_str!("liff/app.js").into()),
        )
        .route(
            "/liff/liff-stub.js",
            file("text/javascript", include_str!("liff/liff-stub.js").into()),
        )
}

/// `LIFF_ID`, the LIFF app's ID (`1234567890-AbcdEfgh`: its LINE Login channel's ID, a hyphen,
/// and LINE's own part), if set.
fn liff_id_from_env() -> Result<Option<String>, String> {
    let Some(liff_id) = std::env::var("LIFF_ID")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    let well_formed = liff_id.split_once('-').is_some_and(|(channel, own)| {
        !channel.is_empty()
            && channel.bytes().all(|byte| byte.is_ascii_digit())
            && !own.is_empty()
            && own.bytes().all(|byte| byte.is_ascii_alphanumeric())
    });
    if well_formed {
        Ok(Some(liff_id))
    } else {
        Err(format!(
            "LIFF_ID must be a LIFF app's ID, such as 1234567890-AbcdEfgh, got {liff_id:?}"
        ))
    }
}

/// `/liff`, as a LIFF endpoint URL may be registered: the page's scripts are relative to
/// `/liff/`, so the browser is sent there, with LIFF's query parameters (`liff.state`).
async fn to_the_liff_page(uri: Uri) -> Redirect {
    match uri.query() {
        Some(query) => Redirect::permanent(&format!("/liff/?{query}")),
        None => Redirect::permanent("/liff/"),
    }
}

async fn health() -> &'static str {
    "ok"
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
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let listen_addr: SocketAddr = std::env::var("LISTEN_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".to_owned())
        .parse()
        .map_err(|error| format!("LISTEN_ADDR: {error}"))?;

    let liff_id = liff_id_from_env()?;
    // Kept alive for the life of the server: dropping the emulator stops it.
    let mut demo: Option<(Arc<LineEmulator>, String)> = None;
    let configured = std::env::var("LINE_CHANNEL_ID").is_ok_and(|ids| !ids.trim().is_empty());
    let config = if configured {
        LineAuthConfig::from_env()?
    } else {
        let emulator = Arc::new(LineEmulator::start().await?);
        let token = emulator.issue(demo_user());
        tracing::info!(line_api = %emulator.base_url(), "LINE_CHANNEL_ID is unset: using the LINE emulator");
        // The demo's own channel and LINE; every other setting as `from_env` reads it.
        let api_base = emulator.base_url();
        let config = LineAuthConfig::from_lookup(|name| match name {
            "LINE_CHANNEL_ID" => Some(DEMO_CHANNEL_ID.to_owned()),
            "LINE_API_BASE" => Some(api_base.clone()),
            _ => std::env::var(name).ok(),
        })?;
        demo = Some((emulator, token));
        config
    };

    if let Some(liff_id) = &liff_id {
        // Either way every token the LIFF app hands the page would be refused.
        let liff_channel = liff_id.split_once('-').map_or("", |(channel, _)| channel);
        if demo.is_some() {
            tracing::warn!(
                "LIFF_ID is set but LINE_CHANNEL_ID is not: the demo's emulator checks tokens, \
                 so your LIFF app's tokens are refused; set LINE_CHANNEL_ID too"
            );
        } else if !config.channel_ids().contains(&liff_channel) {
            tracing::warn!(
                liff_id,
                "LIFF_ID belongs to channel {liff_channel}, which LINE_CHANNEL_ID does not name: \
                 its tokens are refused"
            );
        }
    }
    if std::env::var_os("REDIS_URL").is_some() {
        tracing::info!("sharing verified tokens and logouts with other replicas through REDIS_URL");
    }
    if std::env::var_os("REDIS_CLUSTER_URLS").is_some() {
        tracing::info!(
            "sharing verified tokens and logouts with other replicas through the Redis Cluster \
             of REDIS_CLUSTER_URLS"
        );
    }
    let layer = LineAuthLayer::new(config);
    // A LIFF page calls this API from its own origin. CORS goes outside the auth layer, so
    // preflights (which carry no token) are answered without it, and refusals still carry CORS
    // headers the page can read. Allow your LIFF app's origin only, in production.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Why a request was refused, and when to ask again.
        .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER]);
    let handler_runs = Arc::new(AtomicU64::new(0));
    let mut app = Router::new()
        .route("/api/me", get(me))
        .route("/api/ping", get(ping))
        .route("/api/logout", post(logout))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&handler_runs),
            count_handler_run,
        ))
        .route_layer(layer.clone())
        .route("/health", get(health))
        .route("/stats", get(stats))
        .merge(liff_page(liff_id.as_deref(), demo.is_some()));
    if let Some((emulator, _)) = &demo {
        // Demo mode only: a fresh emulator token for the LIFF page's stand-in `liff` object.
        let emulator = Arc::clone(emulator);
        app = app.route(
            "/liff/demo-token",
            get(move || async move { emulator.issue(demo_user()) }),
        );
    }
    let app = app.layer(cors).with_state(AppState {
        auth: layer.handle(),
        handler_runs,
    });

    let listener = TcpListener::bind(listen_addr).await?;
    let addr = listener.local_addr()?;
    // A closed stdout (a supervisor that read what it needed) must not take the server down,
    // as `println!` would by panicking.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on http://{addr}");
    let _ = writeln!(stdout, "LIFF page: http://{addr}/liff/");
    if let Some((_, token)) = &demo {
        let _ = writeln!(stdout, "# a demo token from the LINE emulator; try:");
        let _ = writeln!(
            stdout,
            "curl -H 'Authorization: Bearer {token}' http://{addr}/api/me"
        );
    }
    let _ = stdout.flush();

    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
