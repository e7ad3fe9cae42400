//! The emulator's HTTP endpoints, answering as LINE documents (<https://developers.line.biz/en/reference/line-login/>);
//! the sign-in side is in `login.rs`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Form, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::RngExt;
use serde_json::{json, Map, Value};

use super::faults::{Endpoint, Fault};
use super::login::{self, SecretNeed};
use super::tokens::{scope_value, EmulatedProfile, Grant, Refusal, Revocation};
use super::Shared;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // One path, two endpoints: GET verifies access tokens, POST ID tokens (fact sheet §6).
        .route(
            "/oauth2/v2.1/verify",
            get(verify_access_token).post(login::verify_id_token),
        )
        .route("/v2/profile", get(profile))
        .route("/oauth2/v2.1/revoke", post(revoke))
        .route("/oauth2/v2.1/authorize", get(login::authorize))
        .route("/oauth2/v2.1/token", post(login::token))
        .route(
            "/oauth2/v2.1/userinfo",
            get(login::userinfo).post(login::userinfo),
        )
        .route("/friendship/v1/status", get(login::friendship))
        .route("/oauth2/v2.1/certs", get(login::certs))
        .route("/user/v1/deauthorize", post(deauthorize))
        .fallback(not_found)
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(shared)
}

/// Every LINE response carries `x-line-request-id`: 16 lowercase hex characters (<https://developers.line.biz/en/reference/line-login/>).
async fn with_request_id(mut response: Response) -> Response {
    let id = format!("{:016x}", rand::rng().random::<u64>());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-line-request-id", value);
    }
    response
}

/// The injected fault's response, if a fault is planned and it is not just a delay; a fault
/// that holds the request (a delay, a hang) is cut instead when the emulator stops.
pub(super) async fn injected_fault(shared: &Shared, endpoint: Endpoint) -> Option<Response> {
    let fault = shared.faults.next(endpoint)?;
    if !matches!(fault, Fault::Latency(_) | Fault::Hang) {
        return fault.respond().await;
    }
    // Waiting from before the check, so that a stop between the two is not missed.
    let stopping = shared.stopping.notified();
    if shared.stopped.load(Ordering::SeqCst) {
        return Some(Fault::cut());
    }
    let responding = std::pin::pin!(fault.respond());
    match futures_util::future::select(responding, std::pin::pin!(stopping)).await {
        futures_util::future::Either::Left((response, _)) => response,
        futures_util::future::Either::Right(_) => Some(Fault::cut()),
    }
}

/// OAuth-style error body, shape A (<https://developers.line.biz/en/reference/line-login/>), always with 400.
pub(super) fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// A form body (`application/x-www-form-urlencoded`, fact sheet §1), whose refusal answers in
/// the OAuth shape the form endpoints use for every error: axum's own status (415 for another
/// content type, 413 for a body past the limit), with `invalid_request`, not a plain-text page.
pub(super) struct OAuthForm(pub(super) HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::from_request(request, state).await {
            Ok(Form(form)) => Ok(Self(form)),
            Err(refused) => {
                let mut response = oauth_error("invalid_request", &refused.body_text());
                *response.status_mut() = refused.status();
                Err(response)
            }
        }
    }
}

/// REST-style error body, shape B (<https://developers.line.biz/en/reference/line-login/>).
pub(super) fn message_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

/// `GET /oauth2/v2.1/verify?access_token=…` (<https://developers.line.biz/en/reference/line-login/#verify-access-token>).
async fn verify_access_token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.verify_calls.fetch_add(1, Ordering::Relaxed);
    if let Some(faulty) = injected_fault(&shared, Endpoint::Verify).await {
        return faulty;
    }
    let Some(token) = query.get("access_token") else {
        return oauth_error("invalid_request", "access_token is required");
    };
    match shared.tokens.inspect(token) {
        Ok(Grant {
            channel_id,
            scopes,
            expires_in,
            ..
        }) => {
            let mut answer = json!({ "client_id": channel_id, "expires_in": expires_in });
            // Fact sheet §3.1: `scope` is "not always included"; left out where nothing is
            // granted (a channel access token's answer), never `""`.
            let scope = scope_value(&scopes);
            if !scope.is_empty() {
                answer["scope"] = scope.into();
            }
            Json(answer).into_response()
        }
        Err(refusal) => oauth_error("invalid_request", refusal.verify_description()),
    }
}

/// `GET /v2/profile` with `Authorization: Bearer …` (<https://developers.line.biz/en/reference/line-login/#get-user-profile>).
async fn profile(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    shared.profile_calls.fetch_add(1, Ordering::Relaxed);
    if let Some(faulty) = injected_fault(&shared, Endpoint::Profile).await {
        return faulty;
    }
    let profile = match bearer_profile(&shared, &headers, "profile") {
        Ok((profile, _)) => profile,
        Err((status, message)) => return message_error(status, &message),
    };
    let mut body = Map::new();
    body.insert("userId".into(), Value::String(profile.user_id));
    body.insert("displayName".into(), Value::String(profile.display_name));
    // Absent, not null, when the user has none (fact sheet §3.2).
    if let Some(url) = profile.picture_url {
        body.insert("pictureUrl".into(), Value::String(url));
    }
    if let Some(message) = profile.status_message {
        body.insert("statusMessage".into(), Value::String(message));
    }
    Json(Value::Object(body)).into_response()
}

/// `POST /oauth2/v2.1/revoke`, form `access_token`, `client_id`, `client_secret`?
/// (<https://developers.line.biz/en/reference/line-login/#revoke-access-token>): 200 with an empty body, for unknown or already revoked tokens too; `invalid_client`
/// when a "Web app"-only channel's secret is missing or wrong (the token stays live).
async fn revoke(State(shared): State<Arc<Shared>>, OAuthForm(form): OAuthForm) -> Response {
    shared.revoke_calls.fetch_add(1, Ordering::Relaxed);
    if let Some(faulty) = injected_fault(&shared, Endpoint::Revoke).await {
        return faulty;
    }
    let Some(client_id) = form.get("client_id") else {
        return oauth_error("invalid_request", "client_id is required");
    };
    // "Web app"-only channels must send their secret; others may, and it is ignored.
    let secret = form
        .get("client_secret")
        .map(String::as_str)
        .filter(|secret| !secret.is_empty());
    if let Some(refused) = shared
        .login
        .refuse_client(client_id, secret, SecretNeed::IfWebAppOnly)
    {
        return refused;
    }
    // A token of another channel than the one named is refused, as a wrong secret is, so that
    // naming another channel neither revokes it nor escapes its channel's need for the secret.
    // (Undocumented: the text is the one LINE documents for a wrong `client_id` at this host's
    // channel-token endpoint.) A token LINE does not know names no channel.
    let issued_for = match form.get("refresh_token") {
        Some(refresh_token) => shared.login.refresh_token_channel(refresh_token),
        None => form
            .get("access_token")
            .and_then(|token| shared.tokens.channel_of(token)),
    };
    if issued_for.is_some_and(|channel| channel != *client_id) {
        return oauth_error("invalid_client", "invalid client_id");
    }
    // The refresh-token form the official SDKs use revokes it and its access tokens (§3.4).
    if let Some(refresh_token) = form.get("refresh_token") {
        for access_token in shared.login.revoke_refresh_token(refresh_token) {
            shared.tokens.revoke(&access_token);
        }
        return StatusCode::OK.into_response();
    }
    let Some(token) = form.get("access_token") else {
        return oauth_error(
            "invalid_request",
            "access_token or refresh_token is required",
        );
    };
    let revocation = Revocation {
        client_id: client_id.clone(),
        client_secret: form.get("client_secret").cloned(),
    };
    shared.tokens.revoke_with(token, revocation);
    StatusCode::OK.into_response()
}

/// `POST /user/v1/deauthorize` (<https://developers.line.biz/en/reference/line-login/#deauthorize>,
/// fact sheet §3.4): the user's consent to the channel ends, and with it every access and
/// refresh token the user holds for it. 204; 400 `{"message": "invalid token"}` for a user
/// access token that is no longer valid. The emulator issues no channel access tokens, so any
/// bearer token stands for the channel's, and the channel is the user access token's own.
async fn deauthorize(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if bearer_token(&headers).is_none_or(|token| token.trim().is_empty()) {
        return message_error(StatusCode::UNAUTHORIZED, "Authentication failed");
    }
    let body = serde_json::from_slice::<Value>(&body).ok();
    let user_token = body
        .as_ref()
        .and_then(|body| body.get("userAccessToken")?.as_str());
    let Some(user_token) = user_token else {
        return message_error(
            StatusCode::BAD_REQUEST,
            "The request body has 1 error(s): userAccessToken is required",
        );
    };
    match shared.tokens.inspect(user_token) {
        Ok(grant) => {
            let (channel, user) = (&grant.channel_id, &grant.profile.user_id);
            shared.tokens.revoke_user(channel, user);
            shared.login.revoke_user_refresh_tokens(channel, user);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(_) => message_error(StatusCode::BAD_REQUEST, "invalid token"),
    }
}

/// The token of a request's `Authorization: Bearer …`, if it has one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .and_then(|value| value.split_once(' '))
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token))
}

/// A refusal in the `{"message"}` shape: its status and message.
pub(super) type Refused = (StatusCode, String);

/// The profile and scopes behind a bearer token, or LINE's 401/403.
pub(super) fn bearer_profile(
    shared: &Shared,
    headers: &HeaderMap,
    scope: &str,
) -> Result<(EmulatedProfile, Vec<String>), Refused> {
    const UNAUTHENTICATED: &str =
        "Authentication failed. Confirm that the access token in the authorization header is valid.";
    let token =
        bearer_token(headers).ok_or((StatusCode::UNAUTHORIZED, UNAUTHENTICATED.to_owned()))?;
    let grant = shared.tokens.inspect(token).map_err(|refusal| {
        let message = match refusal {
            Refusal::Expired => "The access token expired",
            Refusal::Revoked => "The access token revoked",
            Refusal::NotJws => UNAUTHENTICATED,
        };
        (StatusCode::UNAUTHORIZED, message.to_owned())
    })?;
    if !grant.scopes.iter().any(|granted| granted == scope) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("The access token does not have the required scope: {scope}"),
        ));
    }
    Ok((grant.profile, grant.scopes))
}

async fn not_found() -> Response {
    message_error(StatusCode::NOT_FOUND, "Not found")
}
