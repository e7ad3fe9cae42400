//! The miss path: what the layer adds over the two raw calls to LINE (the emulator on loopback),
//! and 1,000 concurrent cold requests for one token (wall time; upstream calls counted).
//!
//! `cargo bench --bench miss`.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use line_auth::emulator::{IssueToken, LineEmulator};
use line_auth::{LineAuthConfig, LineAuthLayer};
use tower_layer::Layer;

use common::*;

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn miss(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let line = rt.block_on(LineEmulator::start()).unwrap();
    let base = line.base_url();
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(&base)
        .build()
        .unwrap();
    let layered = LineAuthLayer::new(config).layer(router());
    let bare = router();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = line.issue(IssueToken::new(CHANNEL));

    let mut group = c.benchmark_group("miss");
    group.bench_function("raw_verify_and_profile_calls", |b| {
        b.to_async(&rt)
            .iter(|| raw_line_calls(&client, &base, &token))
    });
    group.bench_function("bare_router_request", |b| {
        b.to_async(&rt).iter_batched(
            || request(Some("Bearer x")),
            |request| call(&bare, request),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("line_auth_cold_request", |b| {
        b.to_async(&rt).iter_batched(
            || {
                request(Some(&format!(
                    "Bearer {}",
                    line.issue(IssueToken::new(CHANNEL))
                )))
            },
            |request| async {
                assert_eq!(call(&layered, request).await, 200);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn coalescing(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let line = rt.block_on(LineEmulator::start()).unwrap();
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line.base_url())
        .build()
        .unwrap();
    let layered = LineAuthLayer::new(config).layer(router());

    let mut group = c.benchmark_group("coalescing");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("1000_concurrent_cold_requests_one_token", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let token = format!("Bearer {}", line.issue(IssueToken::new(CHANNEL)));
                let before = line.calls();
                let started = Instant::now();
                rt.block_on(async {
                    let burst: Vec<_> = (0..1000)
                        .map(|_| {
                            let (layered, request) = (layered.clone(), request(Some(&token)));
                            tokio::spawn(async move { call(&layered, request).await })
                        })
                        .collect();
                    for request in burst {
                        assert_eq!(request.await.unwrap(), 200);
                    }
                });
                total += started.elapsed();
                let after = line.calls();
                assert_eq!(
                    (after.verify - before.verify, after.profile - before.profile),
                    (1, 1),
                    "exactly one verify and one profile call per 1,000 requests"
                );
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = miss, coalescing
}
criterion_main!(benches);
