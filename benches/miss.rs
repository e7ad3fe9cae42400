//! The miss path: what the layer adds over the two raw calls to LINE (the emulator on loopback),
//! and 1,000 concurrent cold requests for one token (wall time; upstream calls counted). Before
//! timing, one burst with LINE slowed so all 1,000 overlap asserts that 999 joined the first
//! one's verification; the timed bursts run at the emulator's speed, and print how many joined.
//!
//! `cargo bench --features testing --bench miss`.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use line_auth::{LineAuthConfig, LineAuthLayer};
use line_auth_emulator::{Endpoint, Fault, IssueToken, LineEmulator};
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

/// How long LINE takes in the burst that proves coalescing: long enough for all 1,000 requests to
/// be spawned and reach the layer while the first one's verification waits, so each either joins
/// it or starts its own; none can be a cache hit.
const OVERLAP_LATENCY: Duration = Duration::from_millis(500);

fn coalescing(c: &mut Criterion) {
    let rt = multi_thread_runtime();
    let line = rt.block_on(LineEmulator::start()).unwrap();
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line.base_url())
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let layered = layer.layer(router());
    let burst = |token: &str| -> (Duration, u64) {
        let token = format!("Bearer {token}");
        let (calls_before, stats_before) = (line.calls(), auth.stats());
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
        let elapsed = started.elapsed();
        let (calls, stats) = (line.calls(), auth.stats());
        assert_eq!(
            (
                calls.verify - calls_before.verify,
                calls.profile - calls_before.profile
            ),
            (1, 1),
            "exactly one verify and one profile call per 1,000 requests"
        );
        let misses = stats.misses - stats_before.misses;
        let coalesced = stats.coalesced - stats_before.coalesced;
        let cache_hits = stats.cache_hits - stats_before.cache_hits;
        assert_eq!(
            (misses, coalesced + cache_hits),
            (1, 999),
            "one request verifies, the others join it or hit the cache"
        );
        (elapsed, coalesced)
    };

    // With LINE slowed so that all 1,000 overlap, caching cannot stand in for coalescing: the
    // single verify call is only possible if the 999 others joined the first one's verification.
    line.inject(Endpoint::Verify, Fault::Latency(OVERLAP_LATENCY));
    let (_, coalesced) = burst(&line.issue(IssueToken::new(CHANNEL)));
    line.clear_faults();
    assert_eq!(coalesced, 999, "all 999 others joined the verification");

    let mut group = c.benchmark_group("coalescing");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    // Timed at LINE's (the emulator's) own speed: requests spawned after the verification ended
    // are cache hits, reported beside the figure.
    let (mut bursts, mut joined) = (0u64, 0u64);
    group.bench_function("1000_concurrent_cold_requests_one_token", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (elapsed, coalesced) = burst(&line.issue(IssueToken::new(CHANNEL)));
                total += elapsed;
                bursts += 1;
                joined += coalesced;
            }
            total
        })
    });
    group.finish();
    println!(
        "coalescing: of the 999 requests after the first, {:.0} joined its verification on average, the rest were cache hits",
        joined as f64 / bursts.max(1) as f64
    );
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = miss, coalescing
}
criterion_main!(benches);
