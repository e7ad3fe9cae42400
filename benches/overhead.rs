//! Per-request cost of `LineAuthLayer` on a cached token, against a bare router and the
//! middlewares a user would otherwise write; and the cost of refusing without calling LINE.
//!
//! `cargo bench --features testing --bench overhead`. Overheads are differences against `bare`
//! in the same run; see BENCHMARKS.md.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use line_auth::{LineAuthConfig, LineAuthLayer};
use line_auth_emulator::LineEmulator;
use tower_layer::Layer;

use common::*;

fn hit(c: &mut Criterion) {
    let rt = runtime();
    let token = token_like(1);
    let bearer = format!("Bearer {token}");
    let tokens = vec![token.clone()];
    let jwt = format!("Bearer {}", hs256_jwt());

    let bare = router();
    let layer_wrapping_router = layer_trusting(&tokens).layer(router());
    let layer_via_router_layer = router().layer(layer_trusting(&tokens));
    let tower_http = tower_http_bearer(router(), &token);
    let naive = naive_from_fn(router(), &tokens);
    let jwt_middleware = jwt_from_fn(router());

    let mut group = c.benchmark_group("hit");
    macro_rules! variant {
        ($name:literal, $service:expr, $authorization:expr) => {
            let service = $service;
            assert_eq!(
                rt.block_on(call(&service, request(Some($authorization)))),
                200,
                $name
            );
            group.bench_function($name, |b| {
                b.to_async(&rt).iter_batched(
                    || request(Some($authorization)),
                    |request| call(&service, request),
                    BatchSize::SmallInput,
                )
            });
        };
    }
    variant!("bare", bare, &bearer);
    variant!("line_auth_wrapping_router", layer_wrapping_router, &bearer);
    variant!(
        "line_auth_via_router_layer",
        layer_via_router_layer,
        &bearer
    );
    variant!("tower_http_static_bearer", tower_http, &bearer);
    variant!("naive_from_fn_sha256_dashmap", naive, &bearer);
    variant!("from_fn_hs256_jwt", jwt_middleware, &jwt);
    group.finish();

    let validation = jwt_validation();
    let raw_jwt = hs256_jwt();
    c.bench_function("hs256_jwt_decode_verify_alone", |b| {
        b.iter(|| verify_hs256(std::hint::black_box(&raw_jwt), &validation))
    });
    c.bench_function("sha256_of_token_alone", |b| {
        b.iter(|| <sha2::Sha256 as sha2::Digest>::digest(std::hint::black_box(token.as_bytes())))
    });
}

fn reject(c: &mut Criterion) {
    let rt = runtime();
    // A refused token, remembered by the negative cache after one real verification.
    let line = rt.block_on(LineEmulator::start()).unwrap();
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line.base_url())
        .build()
        .unwrap();
    let refused = format!("Bearer {}", token_like(99));
    let layered = LineAuthLayer::new(config).layer(router());
    assert_eq!(rt.block_on(call(&layered, request(Some(&refused)))), 401);
    assert_eq!(line.calls().verify, 1);
    let bare = router();
    let malformed = format!("Bearer {}&smuggled=1", token_like(1));

    let mut group = c.benchmark_group("reject");
    macro_rules! variant {
        ($name:literal, $service:expr, $authorization:expr, $status:literal) => {
            assert_eq!(
                rt.block_on(call(&$service, request($authorization))),
                $status,
                $name
            );
            group.bench_function($name, |b| {
                b.to_async(&rt).iter_batched(
                    || request($authorization),
                    |request| call(&$service, request),
                    BatchSize::SmallInput,
                )
            });
        };
    }
    variant!("bare_no_header", bare, None, 200);
    variant!("missing_token", layered, None, 401);
    variant!("bare_malformed_header", bare, Some(&malformed), 200);
    variant!("malformed_token", layered, Some(&malformed), 400);
    variant!("bare_refused_header", bare, Some(&refused), 200);
    variant!("negative_cache_hit", layered, Some(&refused), 401);
    group.finish();
    assert_eq!(
        line.calls().verify,
        1,
        "no rejection above asked LINE again"
    );
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = hit, reject
}
criterion_main!(benches);
