//! Hit cost as the cache grows (1k, 100k, 1M tokens, requests spread over the set), and both
//! cores hitting one cache at once.
//!
//! `cargo bench --features testing --bench scale`; in smoke mode (`cargo test --features testing
//! --benches`) only 1k tokens.

mod common;

use std::cell::Cell;
use std::time::{Duration, Instant};

use axum::http::{header::AUTHORIZATION, HeaderValue};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use tower_layer::Layer;

use common::*;

fn sizes() -> Vec<usize> {
    if std::env::args().any(|arg| arg == "--bench") {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000]
    }
}

/// A request carrying `token` in a header built just now, so its bytes are in the CPU cache
/// as they are for a request just read off the socket (only the cache lookup should be cold).
fn request_for(token: &str) -> axum::extract::Request {
    let mut request = request(None);
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    request.headers_mut().insert(AUTHORIZATION, value);
    request
}

/// Visits every index of `0..n` in a scrambled order (a full-period step), so consecutive
/// requests land far apart in the cache.
struct Spread {
    next: Cell<usize>,
    n: usize,
}

impl Spread {
    fn new(n: usize) -> Self {
        Self {
            next: Cell::new(0),
            n,
        }
    }

    fn take(&self) -> usize {
        let current = self.next.get();
        // 2654435761 is odd and, for the sizes used, coprime with n: a full cycle.
        self.next.set((current + 2_654_435_761) % self.n);
        current
    }
}

fn scaling(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("scaling");
    for n in sizes() {
        let tokens: Vec<String> = (0..n as u64).map(token_like).collect();
        let layered = layer_trusting(&tokens).layer(router());
        let bare = router();
        let spread = Spread::new(n);
        assert_eq!(
            rt.block_on(call(&layered, request_for(&tokens[n / 2]))),
            200
        );

        // Both variants check their status, so both pay for the comparison.
        group.bench_function(BenchmarkId::new("bare", n), |b| {
            b.to_async(&rt).iter_batched(
                || request_for(&tokens[spread.take()]),
                |request| async { assert_eq!(call(&bare, request).await, 200) },
                BatchSize::SmallInput,
            )
        });
        // Every request is a hit on a trusted token: 200, or the figure measures something else.
        group.bench_function(BenchmarkId::new("line_auth_hit", n), |b| {
            b.to_async(&rt).iter_batched(
                || request_for(&tokens[spread.take()]),
                |request| async { assert_eq!(call(&layered, request).await, 200) },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Throughput of cache hits on one thread against two threads sharing the layer: over 100k
/// tokens (distinct users), and on one hot token (both cores on the same cache entry).
fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention");
    for (label, n) in [("spread_100k", 100_000), ("one_hot_token", 1)] {
        let tokens: Vec<String> = (0..n as u64).map(token_like).collect();
        let layered = layer_trusting(&tokens).layer(router());
        let run = |threads: usize, iters: u64| -> Duration {
            let per_thread = iters / threads as u64 + 1;
            let started = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..threads {
                    let (layered, tokens) = (layered.clone(), &tokens);
                    scope.spawn(move || {
                        let rt = runtime();
                        let spread = Spread::new(n);
                        spread.next.set((thread * 7919) % n);
                        rt.block_on(async {
                            for _ in 0..per_thread {
                                let status =
                                    call(&layered, request_for(&tokens[spread.take()])).await;
                                // A hit, or the figure measures refusals instead.
                                assert_eq!(status, 200);
                            }
                        });
                    });
                }
            });
            started.elapsed()
        };
        for threads in [1, 2] {
            group.bench_function(
                BenchmarkId::new(format!("{label}_wall_time_per_request"), threads),
                |b| b.iter_custom(|iters| run(threads, iters)),
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = scaling, contention
}
criterion_main!(benches);
