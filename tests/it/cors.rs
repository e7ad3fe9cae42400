//! A LIFF app calls the API from another origin: preflights must pass without credentials and
//! without calling LINE, and refusals must still carry CORS headers so the page can read them.
//! The order that does it: `CorsLayer` outside `LineAuthLayer`.

use axum::http::{header, Method, StatusCode};
use line_auth::LineAuthLayer;
use tower_http::cors::{Any, CorsLayer};

use crate::support::*;

const ORIGIN: &str = "https://liff.example";

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

#[tokio::test]
async fn preflight_passes_without_credentials_and_without_calling_line() {
    let line = Line::start().await;
    let calls = HandlerCalls::default();
    let app = routes(&calls)
        .route_layer(LineAuthLayer::new(line.config().build().unwrap()))
        .layer(cors());
    let base = serve(app).await;

    let preflight = http()
        .request(Method::OPTIONS, format!("{base}/api/me"))
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .send()
        .await
        .unwrap();

    assert_eq!(preflight.status(), StatusCode::OK);
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*"
    );
    let allowed = preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert_eq!((line.calls(), calls.get()), ((0, 0), 0));
}

#[tokio::test]
async fn answers_and_refusals_both_carry_cors_headers() {
    let line = Line::start().await;
    let app = routes(&HandlerCalls::default())
        .route_layer(LineAuthLayer::new(line.config().build().unwrap()))
        .layer(cors());
    let base = serve(app).await;
    let cross_origin = |token: Option<String>| {
        let mut request = http()
            .get(format!("{base}/api/me"))
            .header(header::ORIGIN, ORIGIN);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let ok = cross_origin(Some(line.token())).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");

    let refused = cross_origin(None).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*",
        "the page can read the 401"
    );
}

#[tokio::test]
async fn with_the_layers_the_other_way_round_a_preflight_is_refused() {
    // Documents why the order matters: the auth layer outside CORS sees a credential-less OPTIONS.
    let line = Line::start().await;
    let app = routes(&HandlerCalls::default())
        .layer(cors())
        .layer(LineAuthLayer::new(line.config().build().unwrap()));
    let base = serve(app).await;

    let preflight = http()
        .request(Method::OPTIONS, format!("{base}/api/me"))
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .unwrap();

    assert_eq!(preflight.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(line.calls(), (0, 0));
}
