//! Memory: bytes per verified entry at 100k and 1M entries (allocation counting), and resident
//! memory under a flood of distinct junk tokens that LINE (the emulator) refuses.
//!
//! `cargo bench --features testing --bench memory` (1M junk tokens, about a minute); in smoke
//! mode (`cargo test --features testing --benches`) small sizes: 10,000 junk tokens through a
//! refused store bounded to 1,000. Both assert that the refused store fills up to its bound and
//! no further, and that the layer's heap stops growing once it is full.

mod common;

use std::time::Instant;

use line_auth::{LineAuthConfig, LineAuthLayer};
use line_auth_emulator::LineEmulator;
use tower_layer::Layer;

use common::*;

/// The negative cache's default bound (`negative_cache_max_entries`).
const DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES: usize = 65_536;

fn full_run() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// Heap bytes the layer holds per trusted token, the `LineUser` included.
///
/// The test kit that fills the cache also keeps a map of its fixed tokens (a 16-byte key and a
/// pointer to the user each), which no production layer has: a map of the same layout, filled
/// alike, is measured on its own and subtracted.
fn verified_entries(n: usize) {
    let tokens: Vec<String> = (0..n as u64).map(token_like).collect();
    let mut layer = None;
    let info = allocation_counter::measure(|| {
        layer = Some(layer_trusting(&tokens));
    });
    let user = std::sync::Arc::new(());
    let mut fixed_map = None;
    let test_kit = allocation_counter::measure(|| {
        let mut map = std::collections::HashMap::new();
        for i in 0..n as u64 {
            map.insert([i, !i], Some(std::sync::Arc::clone(&user)));
        }
        fixed_map = Some(map);
    });
    drop(fixed_map);
    let held = info.bytes_current - test_kit.bytes_current;
    // user_id (33) + "Brown" (5) + channel (10) + "profile" (7): the profile strings themselves.
    let profile_strings = 33 + 5 + 10 + 7;
    let per_entry = held as f64 / n as f64;
    println!(
        "verified entries {n:>9}: {:>7.1} MiB held, {per_entry:>6.1} B/entry, {:>6.1} B/entry beyond the {profile_strings} B of profile strings (the test kit's map, {:.1} B/entry, subtracted)",
        held as f64 / (1024.0 * 1024.0),
        per_entry - profile_strings as f64,
        test_kit.bytes_current as f64 / n as f64,
    );
    drop(layer);
}

/// Resident memory while `n` distinct junk tokens are refused by LINE and remembered in a refused
/// store bounded to `bound` entries, and the heap the layer holds (the emulator runs on runtime
/// threads of its own, so the thread-local allocation count is the layer's and its HTTP
/// client's alone). Asserts that the store never holds more than `bound`, that it fills up to it,
/// and that once it is full (twice `bound` tokens sent) the heap stops growing: a store that kept
/// every junk token would grow by over 100 bytes per token from there.
///
/// `in_flight` requests at a time: each may hold one of the HTTP client's pooled connections
/// (about 20 KiB of buffers). The pool grows whenever a finished request has not yet handed its
/// connection back, so with many in flight its growth swamps a small store's: with 256 in flight
/// and 5,000 tokens it read 9-39 B per token, and a one-off 1.7 MiB at 20,000.
fn junk_flood(n: usize, bound: usize, in_flight_max: usize) {
    assert!(n >= 4 * bound, "the flood must go well past the bound");
    let line_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let line = line_runtime.block_on(LineEmulator::start()).unwrap();
    let config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line.base_url())
        .max_concurrent_verifications(256)
        .negative_cache_max_entries(bound)
        .build()
        .unwrap();
    let layer = LineAuthLayer::new(config);
    let auth = layer.handle();
    let layered = layer.layer(router());
    let start_rss = rss_mib();
    println!(
        "junk flood: {n} distinct tokens, {in_flight_max} in flight, negative cache bound {bound} entries; RSS before {start_rss:.1} MiB"
    );
    let step = (n / 10).max(1);
    let started = Instant::now();
    let rt = runtime();
    // Heap held by the layer after each step, and when the store had just filled up.
    let mut heap_held: i64 = 0;
    let mut heap_when_full = None;
    let mut sent = 0;
    while sent < n {
        let chunk_end = (sent + step).min(n);
        let info = allocation_counter::measure(|| {
            rt.block_on(async {
                // At most `in_flight_max` requests, reaped as they finish: the driver holds
                // nothing.
                let mut in_flight = tokio::task::JoinSet::new();
                for i in sent..chunk_end {
                    if in_flight.len() >= in_flight_max {
                        assert_eq!(in_flight.join_next().await.unwrap().unwrap(), 401);
                    }
                    let layered = layered.clone();
                    let junk = format!("Bearer {}", token_like(1_000_000_000 + i as u64));
                    in_flight.spawn(async move { call(&layered, request(Some(&junk))).await });
                }
                while let Some(status) = in_flight.join_next().await {
                    assert_eq!(status.unwrap(), 401);
                }
            });
        });
        sent = chunk_end;
        heap_held += info.bytes_current;
        let remembered = auth.stats().refused_entries;
        println!(
            "  after {sent:>9} tokens: RSS {:>7.1} MiB (+{:.1}), layer heap {:>7.1} MiB, {remembered} refused held, {} verify calls, {:.0} tokens/s",
            rss_mib(),
            rss_mib() - start_rss,
            heap_held as f64 / (1024.0 * 1024.0),
            line.calls().verify,
            sent as f64 / started.elapsed().as_secs_f64()
        );
        assert!(
            remembered <= bound as u64,
            "{remembered} refused tokens held, over the bound of {bound}"
        );
        if sent >= 2 * bound && heap_when_full.is_none() {
            // Twice the bound: the store is full and has been evicting for as long again.
            assert!(
                remembered >= bound as u64 * 9 / 10,
                "the store filled up to its bound: {remembered} of {bound}"
            );
            heap_when_full = Some((sent, heap_held));
        }
    }
    assert_eq!(
        line.calls().verify,
        n as u64,
        "only LINE can tell a junk token: one verify call each"
    );
    let (full_at, heap_full) = heap_when_full.unwrap();
    let growth_per_token = (heap_held - heap_full) as f64 / (n - full_at) as f64;
    println!(
        "  layer heap held at the end: {:.1} MiB for at most {bound} refused tokens: {:.0} B/refused entry (HTTP client pool included); {growth_per_token:.1} B per token after the store was full",
        heap_held as f64 / (1024.0 * 1024.0),
        heap_held as f64 / bound as f64
    );
    // Seen: 3 B per token bounded (the HTTP client's pool settling), 150 B unbounded.
    assert!(
        growth_per_token < 32.0,
        "the layer's heap kept growing once the refused store was full: {growth_per_token:.1} B per token"
    );
}

fn main() {
    // The flood first: memory freed by the other measurements would hide its growth.
    if full_run() {
        junk_flood(1_000_000, DEFAULT_NEGATIVE_CACHE_MAX_ENTRIES, 256);
        verified_entries(100_000);
        verified_entries(1_000_000);
    } else {
        // Small enough to be quick (about 3 s), past the bound ten times over; few in flight, so
        // the HTTP client's pool stays small beside the store.
        junk_flood(10_000, 1_000, 16);
        verified_entries(1_000);
    }
}
