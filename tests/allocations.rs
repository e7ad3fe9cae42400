//! The layer allocates nothing of its own on a cache hit: the only allocations are those of
//! `http::Extensions` storing the `LineUser`, which any middleware inserting an extension pays.
//! A refusal allocates only the response's `HeaderMap`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use line_auth::{LineAuthConfig, LineAuthLayer, LineUser};
use tower::{service_fn, Layer, Service};

const TOKEN: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJhbGxvY2F0aW9ucyJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1mb3ItdGVzdHM";

fn request() -> Request<()> {
    Request::get("/")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(())
        .unwrap()
}

fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a cache hit completes without waiting"),
    }
}

#[test]
fn a_cache_hit_allocates_only_what_inserting_the_extension_costs() {
    let user = LineUser::builder("U0123456789abcdef0123456789abcdef", "1234567890").build();
    let config = LineAuthConfig::builder()
        .channel_id("1234567890")
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config).with_fixed_token(TOKEN, user.clone());
    // An inner service that allocates nothing: the count is the layer's alone.
    let inner = service_fn(|request: Request<()>| async move {
        assert!(request.extensions().get::<LineUser>().is_some());
        Ok::<_, Infallible>(Response::new(Bytes::new()))
    });
    let mut service = layer.layer(inner);
    // Warm up once (lazy statics, thread-locals).
    ready(service.call(request())).unwrap();

    let hit_request = request();
    let through_layer = allocation_counter::measure(|| {
        let response = ready(service.call(hit_request)).unwrap();
        assert_eq!(response.status(), 200);
    });
    let mut control_request = request();
    let extension_alone = allocation_counter::measure(|| {
        control_request.extensions_mut().insert(user.clone());
    });

    assert_eq!(
        through_layer.count_total, extension_alone.count_total,
        "layer: {through_layer:?}, extension insert alone: {extension_alone:?}"
    );
    assert!(through_layer.count_total <= 3, "{through_layer:?}");
}

#[test]
fn a_rejection_without_line_allocates_only_its_header_map() {
    let config = LineAuthConfig::builder()
        .channel_id("1234567890")
        .build()
        .unwrap();
    let inner =
        service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(Bytes::new())) });
    let mut service = LineAuthLayer::new(config).layer(inner);
    ready(service.call(Request::get("/").body(()).unwrap())).unwrap();

    let missing = Request::get("/").body(()).unwrap();
    let info = allocation_counter::measure(|| {
        let response = ready(service.call(missing)).unwrap();
        assert_eq!(response.status(), 401);
    });
    // The body and every header value are static; what is left is HeaderMap's own two tables.
    assert!(info.count_total <= 2, "{info:?}");
}
