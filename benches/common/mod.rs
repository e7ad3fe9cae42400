//! What the benchmarks share: token shapes, the handler, and the variants a user could write.
#![allow(dead_code)] // each bench uses its own subset

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header::AUTHORIZATION, Response, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use dashmap::DashMap;
use line_auth::{LineAuthConfig, LineAuthLayer, LineUser};
use sha2::{Digest, Sha256};
use tower_http::validate_request::ValidateRequestHeaderLayer;

pub const CHANNEL: &str = "1234567890";

/// A token shaped like LINE's (and the emulator's): `{"alg":"HS256"}` header, a payload, a
/// signature; 151 bytes. Distinct per `seed`.
pub fn token_like(seed: u64) -> String {
    format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJsaW5lLWF1dGgtZW11bGF0b3IiLCJqdGkiOiI{seed:016x}{:016x}In0.{:043x}",
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        u128::from(seed).wrapping_mul(0x2545_f491_4f6c_dd1d_1234_5678_9abc_def1)
    )
}

pub fn user(seed: u64) -> LineUser {
    LineUser::builder(format!("U{seed:032x}"), CHANNEL)
        .display_name("Brown")
        .build()
}

/// A layer that trusts `tokens` (the test kit), with room for all of them.
pub fn layer_trusting(tokens: &[String]) -> LineAuthLayer {
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        // Never called: every benchmarked token is trusted up front.
        .api_base("http://127.0.0.1:9")
        .cache_max_entries(tokens.len().max(1) * 2)
        .build()
        .unwrap();
    tokens
        .iter()
        .enumerate()
        .fold(LineAuthLayer::new(config), |layer, (i, token)| {
            layer.with_fixed_token(token, user(i as u64))
        })
}

/// The protected handler: as cheap as a handler gets, so the layer's cost stands out.
pub fn router() -> Router {
    Router::new().route("/api/me", get(|| async { "ok" }))
}

pub fn request(authorization: Option<&str>) -> Request {
    request_to("/api/me", authorization)
}

/// The example server's router (`examples/server.rs`): `/api/me` behind the layer returning the
/// `LineUser` as JSON, `/health` public.
pub fn example_server_router(layer: LineAuthLayer) -> Router {
    Router::new()
        .route(
            "/api/me",
            get(|user: LineUser| async move { axum::Json(user) }),
        )
        .route_layer(layer)
        .route("/health", get(|| async { "ok" }))
}

/// A request for `path` carrying `authorization`.
pub fn request_to(path: &str, authorization: Option<&str>) -> Request {
    let mut builder = axum::http::Request::get(path);
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value);
    }
    builder.body(Body::empty()).unwrap()
}

/// tower-http's `ValidateRequestHeaderLayer` with a custom check against one static token: what a
/// user writes for a shared secret. It authenticates nobody in particular.
pub fn tower_http_bearer(router: Router, token: &str) -> Router {
    router.layer(tower_http_bearer_layer(token))
}

/// [`tower_http_bearer`]'s layer alone, for `route_layer`.
// tower-http's ValidateRequest dictates the `Result<(), Response>` shape.
#[allow(clippy::result_large_err)]
pub fn tower_http_bearer_layer(
    token: &str,
) -> ValidateRequestHeaderLayer<
    impl Fn(&mut Request) -> Result<(), Response<Body>> + Clone + Send + Sync + 'static,
> {
    let expected = format!("Bearer {token}");
    ValidateRequestHeaderLayer::custom(move |request: &mut Request| -> Result<(), Response<Body>> {
        match request.headers().get(AUTHORIZATION) {
            Some(value) if value.as_bytes() == expected.as_bytes() => Ok(()),
            _ => Err(StatusCode::UNAUTHORIZED.into_response()),
        }
    })
}

/// What a user writes by hand with `from_fn`: parse the header, SHA-256 it, look it up in a
/// `DashMap`, insert an `Arc` user.
pub fn naive_from_fn(router: Router, tokens: &[String]) -> Router {
    let users: Arc<DashMap<[u8; 32], Arc<String>>> = Arc::new(DashMap::new());
    for (i, token) in tokens.iter().enumerate() {
        users.insert(
            Sha256::digest(token.as_bytes()).into(),
            Arc::new(format!("U{i:032x}")),
        );
    }
    router.layer(from_fn_with_state(users, naive_middleware))
}

/// The bearer token as a hand-written middleware reads it: no RFC 6750 checks.
fn naive_bearer(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

async fn naive_middleware(
    State(users): State<Arc<DashMap<[u8; 32], Arc<String>>>>,
    mut request: Request,
    next: Next,
) -> Response<Body> {
    let Some(token) = naive_bearer(&request) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let Some(user) = users.get(&digest).map(|user| Arc::clone(&user)) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// Claims of a LINE-style ID token, for the HS256 JWT baseline.
#[derive(serde::Serialize, serde::Deserialize, Clone)]
pub struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    name: String,
    picture: String,
}

pub const JWT_SECRET: &[u8] = b"benchmark-channel-secret-0123456789";

/// An HS256 JWT shaped like a LINE web-login ID token.
pub fn hs256_jwt() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims {
        iss: "https://access.line.me".into(),
        sub: "U1234567890abcdef1234567890abcdef".into(),
        aud: CHANNEL.into(),
        exp: now + 3600,
        iat: now,
        name: "Taro Line".into(),
        picture: "https://profile.line-scdn.net/0h8pWWElvzZ19qLk3ywQYYCFZraw".into(),
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET),
    )
    .unwrap()
}

pub fn jwt_validation() -> jsonwebtoken::Validation {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&[CHANNEL]);
    validation.set_issuer(&["https://access.line.me"]);
    validation
}

/// Decodes and verifies an HS256 JWT: the per-request cost of local JWT verification.
pub fn verify_hs256(token: &str, validation: &jsonwebtoken::Validation) -> Option<Claims> {
    let key = jsonwebtoken::DecodingKey::from_secret(JWT_SECRET);
    jsonwebtoken::decode::<Claims>(token, &key, validation)
        .ok()
        .map(|data| data.claims)
}

/// A `from_fn` middleware verifying an HS256 JWT per request.
pub fn jwt_from_fn(router: Router) -> Router {
    router.layer(from_fn_with_state(
        Arc::new(jwt_validation()),
        jwt_middleware,
    ))
}

async fn jwt_middleware(
    State(validation): State<Arc<jsonwebtoken::Validation>>,
    mut request: Request,
    next: Next,
) -> Response<Body> {
    match naive_bearer(&request).and_then(|token| verify_hs256(token, &validation)) {
        Some(claims) => {
            request.extensions_mut().insert(Arc::new(claims));
            next.run(request).await
        }
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The two calls the layer makes on a miss, made directly: the floor a miss cannot go below.
pub async fn raw_line_calls(client: &reqwest::Client, base: &str, token: &str) {
    let verify = reqwest::Url::parse_with_params(
        &format!("{base}/oauth2/v2.1/verify"),
        [("access_token", token)],
    )
    .unwrap();
    let answer = client.get(verify).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
    let answer = client
        .get(format!("{base}/v2/profile"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.bytes().await.unwrap();
}

/// What every benchmarked variant is: a cloneable service from a request to a response.
pub trait App:
    tower::Service<Request, Response = Response<Body>, Error = Infallible> + Clone + 'static
{
}

impl<S> App for S where
    S: tower::Service<Request, Response = Response<Body>, Error = Infallible> + Clone + 'static
{
}

/// A rotating harness's variant: runs a batch of `n` requests, returns ns per request.
pub type Batch = Box<dyn FnMut(usize) -> f64>;

/// The median of a variant's batch figures.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs one request through `service` to completion.
pub async fn call<S: App>(service: &S, request: Request) -> StatusCode {
    use tower::ServiceExt;
    service.clone().oneshot(request).await.unwrap().status()
}

/// A current-thread runtime: one core, no work stealing, stable figures.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Criterion settings for a short, honest run on a noisy 2-vCPU VM.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}
