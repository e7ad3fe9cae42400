//! Rotating harness for whole-request comparisons: every variant measured in turn, batch after
//! batch, medians per variant. On a VM whose speed drifts for seconds at a time, sequential
//! criterion groups can disagree; rotating spreads the drift over all variants alike. Each
//! variant's ratio to its baseline is printed twice: of the two medians ("ratio"), and the median
//! of each round's own ratio ("paired"), which a drift between rounds barely moves.
//!
//! `cargo bench --all-features --bench rotating -- --batches 40 --requests 20000 --repeats 3`;
//! smoke mode (`cargo test --all-features --benches`) runs one tiny round.

mod common;

use std::time::Instant;

use tower_layer::Layer;

use common::*;

struct Args {
    batches: usize,
    requests: usize,
    repeats: usize,
    /// Run only this variant (for profiling under callgrind), or only `miss`, or `scale`.
    only: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        batches: 40,
        requests: 20_000,
        repeats: 3,
        only: None,
    };
    if !std::env::args().any(|arg| arg == "--bench") {
        return Args {
            batches: 2,
            requests: 200,
            repeats: 1,
            only: None,
        };
    }
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--batches" => args.batches = value().unwrap_or(args.batches),
            "--requests" => args.requests = value().unwrap_or(args.requests),
            "--repeats" => args.repeats = value().unwrap_or(args.repeats),
            "--only" => args.only = given.next(),
            _ => {}
        }
    }
    args
}

/// A batch runner for `service`: `requests` requests, returning ns per request.
fn batch<S: App>(service: S, authorization: Option<String>, expected: u16) -> Batch {
    batch_to(service, "/api/me", authorization, expected)
}

/// [`batch`] for any path.
fn batch_to<S: App>(
    service: S,
    path: &'static str,
    authorization: Option<String>,
    expected: u16,
) -> Batch {
    let rt = runtime();
    assert_eq!(
        rt.block_on(call(&service, request_to(path, authorization.as_deref()))),
        expected
    );
    Box::new(move |requests| {
        let started = Instant::now();
        rt.block_on(async {
            for _ in 0..requests {
                call(&service, request_to(path, authorization.as_deref())).await;
            }
        });
        started.elapsed().as_nanos() as f64 / requests as f64
    })
}

/// The miss path, rotated the same way: the two raw LINE calls against a cold request through
/// the layer (whose cost includes those two calls). The emulator runs on a thread of its own.
fn miss(args: &Args) {
    use line_auth::{LineAuthConfig, LineAuthLayer};
    use line_auth_emulator::{IssueToken, LineEmulator};

    let line_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let line = std::sync::Arc::new(line_runtime.block_on(LineEmulator::start()).unwrap());
    let base = line.base_url();
    let requests = (args.requests / 100).max(20);
    let batches = (args.batches / 2).max(2);

    let raw: Batch = {
        let rt = runtime();
        let client = reqwest::Client::new();
        let token = line.issue(IssueToken::new(CHANNEL));
        let base = base.clone();
        Box::new(move |requests| {
            let started = Instant::now();
            rt.block_on(async {
                for _ in 0..requests {
                    raw_line_calls(&client, &base, &token).await;
                }
            });
            started.elapsed().as_nanos() as f64 / requests as f64
        })
    };
    let cold: Batch = {
        let rt = runtime();
        let config = LineAuthConfig::builder()
            .channel_id(CHANNEL)
            .api_base(&base)
            .build()
            .unwrap();
        let layered = LineAuthLayer::new(config).layer(router());
        let line = std::sync::Arc::clone(&line);
        Box::new(move |requests| {
            let fresh: Vec<String> = (0..requests)
                .map(|_| format!("Bearer {}", line.issue(IssueToken::new(CHANNEL))))
                .collect();
            let started = Instant::now();
            rt.block_on(async {
                for token in &fresh {
                    assert_eq!(call(&layered, request(Some(token))).await, 200);
                }
            });
            started.elapsed().as_nanos() as f64 / requests as f64
        })
    };
    let mut variants = [
        ("raw_verify_and_profile", raw),
        ("line_auth_cold_request", cold),
    ];
    for repeat in 1..=args.repeats {
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..batches {
            for (i, (_, run)) in variants.iter_mut().enumerate() {
                samples[i].push(run(requests));
            }
        }
        let raw = median(&mut samples[0]);
        let cold = median(&mut samples[1]);
        println!(
            "\nmiss repeat {repeat}/{}: {batches} batches x {requests} requests, medians",
            args.repeats
        );
        println!("{:<30} {:>12.1} µs", variants[0].0, raw / 1000.0);
        println!("{:<30} {:>12.1} µs", variants[1].0, cold / 1000.0);
        println!(
            "{:<30} {:>12.1} µs",
            "layer cost over the raw calls",
            (cold - raw) / 1000.0
        );
    }
}

/// A batch runner for `service` whose requests spread over all of `tokens` (a full-period
/// stride, so consecutive requests land far apart in the cache). As in `benches/scale.rs`,
/// requests are built outside the timed part, a hundred at a time, so their bytes are warm as
/// for requests just read off the socket, and only the lookups are cold; reading a cold token to
/// build its request is not timed.
fn spread_batch<S: App>(service: S, tokens: std::sync::Arc<Vec<String>>) -> Batch {
    const CHUNK: usize = 100;
    let rt = runtime();
    let n = tokens.len();
    let mut next = 0;
    Box::new(move |requests| {
        let mut timed = std::time::Duration::ZERO;
        rt.block_on(async {
            let mut chunk = Vec::with_capacity(CHUNK);
            for _ in 0..requests.div_ceil(CHUNK) {
                chunk.extend((0..CHUNK).map(|_| {
                    let authorization = format!("Bearer {}", tokens[next]);
                    // 2654435761 is odd and coprime with 5: a full cycle for 1,000 and 1,000,000.
                    next = (next + 2_654_435_761) % n;
                    request(Some(&authorization))
                }));
                let started = Instant::now();
                for request in chunk.drain(..) {
                    // A hit, or the figure measures something else.
                    assert_eq!(call(&service, request).await, 200);
                }
                timed += started.elapsed();
            }
        });
        timed.as_nanos() as f64 / (requests.div_ceil(CHUNK) * CHUNK) as f64
    })
}

/// `router` as `axum::serve` runs it (`Router::into_make_service` calls `with_state(())`).
fn served(router: axum::Router) -> axum::Router {
    router.with_state(())
}

/// Hit cost as the cache grows, rotated: the bare router and the layer wrapping it, over 1,000
/// and over 1,000,000 cached tokens, each against the bare router fed the same tokens.
fn scale(args: &Args) {
    let sizes = if std::env::args().any(|arg| arg == "--bench") {
        [1_000, 1_000_000]
    } else {
        [1_000, 2_000]
    };
    let mut variants: Vec<(String, Batch)> = Vec::new();
    for n in sizes {
        let tokens = std::sync::Arc::new((0..n as u64).map(token_like).collect::<Vec<_>>());
        let layered = layer_trusting(&tokens).layer(router());
        variants.push((format!("bare_{n}"), spread_batch(router(), tokens.clone())));
        variants.push((format!("line_auth_hit_{n}"), spread_batch(layered, tokens)));
    }
    for repeat in 1..=args.repeats {
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(args.batches); variants.len()];
        for _ in 0..args.batches {
            for (i, (_, run)) in variants.iter_mut().enumerate() {
                samples[i].push(run(args.requests));
            }
        }
        let m: Vec<f64> = samples.iter().map(|s| median(&mut s.clone())).collect();
        // Each round's own quotient, as the main rotation's "paired" column.
        let mut paired: Vec<f64> = samples[3]
            .iter()
            .zip(&samples[1])
            .map(|(large, small)| large / small)
            .collect();
        println!(
            "\nscale repeat {repeat}/{}: {} batches x {} requests per variant, medians",
            args.repeats, args.batches, args.requests
        );
        for (i, (name, _)) in variants.iter().enumerate() {
            let bare = m[i - i % 2];
            println!(
                "{name:<30} {:>10.0} ns {:>10.0} ns overhead {:>6.2} ratio",
                m[i],
                m[i] - bare,
                m[i] / bare
            );
        }
        println!(
            "{:<30} whole request {:.2}x (paired {:.2}x), overhead {:.2}x",
            format!("{} vs {}", sizes[1], sizes[0]),
            m[3] / m[1],
            median(&mut paired),
            (m[3] - m[2]) / (m[1] - m[0])
        );
    }
}

fn main() {
    let args = args();
    if args.only.as_deref() == Some("scale") {
        scale(&args);
        return;
    }
    let token = token_like(1);
    let bearer = Some(format!("Bearer {token}"));
    let tokens = vec![token.clone()];
    let jwt = Some(format!("Bearer {}", hs256_jwt()));
    let mut variants: Vec<(&str, Batch)> = vec![
        ("bare", batch(router(), bearer.clone(), 200)),
        (
            "line_auth_wrapping_router",
            batch(layer_trusting(&tokens).layer(router()), bearer.clone(), 200),
        ),
        (
            "line_auth_via_router_layer",
            batch(router().layer(layer_trusting(&tokens)), bearer.clone(), 200),
        ),
        (
            "line_auth_via_route_layer",
            batch(
                router().route_layer(layer_trusting(&tokens)),
                bearer.clone(),
                200,
            ),
        ),
        (
            "tower_http_static_bearer",
            batch(tower_http_bearer(router(), &token), bearer.clone(), 200),
        ),
        // What `route_layer` costs any layer, per request: one that does nothing, and
        // tower-http's static compare, so the layer's own share of its figure can be read off.
        (
            "noop_layer_via_route_layer",
            batch(
                router().route_layer(tower::util::MapRequestLayer::new(
                    |request: axum::extract::Request| request,
                )),
                bearer.clone(),
                200,
            ),
        ),
        (
            "noop_inserting_via_route_layer",
            batch(
                router().route_layer(tower::util::MapRequestLayer::new({
                    let user = std::sync::Arc::new([0u64; 8]);
                    move |mut request: axum::extract::Request| {
                        request.extensions_mut().insert(user.clone());
                        request
                    }
                })),
                bearer.clone(),
                200,
            ),
        ),
        (
            "tower_http_via_route_layer",
            batch(
                router().route_layer(tower_http_bearer_layer(&token)),
                bearer.clone(),
                200,
            ),
        ),
        (
            "naive_from_fn_sha256_dashmap",
            batch(naive_from_fn(router(), &tokens), bearer.clone(), 200),
        ),
        ("from_fn_hs256_jwt", batch(jwt_from_fn(router()), jwt, 200)),
        // As `axum::serve` runs a router: `into_make_service` calls `with_state(())`, which turns
        // each handler into its route once, instead of per request (with the route's layers).
        (
            "bare_as_served",
            batch(served(router()), bearer.clone(), 200),
        ),
        (
            "line_auth_wrapping_as_served",
            batch(
                layer_trusting(&tokens).layer(served(router())),
                bearer.clone(),
                200,
            ),
        ),
        (
            "line_auth_route_layer_as_served",
            batch(
                served(router().route_layer(layer_trusting(&tokens))),
                bearer.clone(),
                200,
            ),
        ),
        (
            "tower_http_as_served",
            batch(
                tower_http_bearer(served(router()), &token),
                bearer.clone(),
                200,
            ),
        ),
        ("bare_no_header", batch(router(), None, 200)),
        (
            "example_server_health",
            batch_to(
                example_server_router(layer_trusting(&tokens)),
                "/health",
                None,
                200,
            ),
        ),
        (
            "example_server_api_me",
            batch_to(
                example_server_router(layer_trusting(&tokens)),
                "/api/me",
                bearer.clone(),
                200,
            ),
        ),
        (
            "line_auth_missing_token",
            batch(layer_trusting(&tokens).layer(router()), None, 401),
        ),
    ];

    if let Some(only) = &args.only {
        if only == "miss" {
            miss(&args);
            return;
        }
        let (name, run) = variants
            .iter_mut()
            .find(|(name, _)| name == only)
            .expect("--only names a variant");
        let ns: f64 =
            (0..args.batches).map(|_| run(args.requests)).sum::<f64>() / args.batches as f64;
        println!("{name}: {ns:.0} ns/request over {} batches", args.batches);
        return;
    }
    for repeat in 1..=args.repeats {
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(args.batches); variants.len()];
        for _ in 0..args.batches {
            for (i, (_, run)) in variants.iter_mut().enumerate() {
                samples[i].push(run(args.requests));
            }
        }
        // On copies: the samples stay in round order for the paired ratios below.
        let medians: Vec<f64> = samples.iter().map(|s| median(&mut s.clone())).collect();
        println!(
            "\nrepeat {repeat}/{}: {} batches x {} requests per variant, medians",
            args.repeats, args.batches, args.requests
        );
        println!(
            "{:<30} {:>10} {:>14} {:>8} {:>8}",
            "variant", "ns/request", "overhead ns", "ratio", "paired"
        );
        for (i, ((name, _), &variant)) in variants.iter().zip(&medians).enumerate() {
            let baseline_name = if name.ends_with("no_header")
                || name.ends_with("missing_token")
                || name == &"example_server_health"
            {
                "bare_no_header"
            } else if name == &"example_server_api_me" {
                "example_server_health"
            } else if name.ends_with("as_served") {
                "bare_as_served"
            } else {
                "bare"
            };
            // The VM's speed drifts for seconds at a time, and a variant's median and its
            // baseline's can come from different phases; each round runs both within a second,
            // so the median of the rounds' own ratios is the steadier figure.
            let base = variants
                .iter()
                .position(|(name, _)| *name == baseline_name)
                .expect("a variant of this name");
            let baseline = medians[base];
            let mut paired: Vec<f64> = samples[i]
                .iter()
                .zip(&samples[base])
                .map(|(variant, baseline)| variant / baseline)
                .collect();
            println!(
                "{name:<30} {variant:>10.0} {:>14.0} {:>8.2} {:>8.2}",
                variant - baseline,
                variant / baseline,
                median(&mut paired)
            );
        }
    }
    miss(&args);
    if !std::env::args().any(|arg| arg == "--bench") {
        // Smoke mode runs the scale rotation too, over 1,000 and 2,000 tokens.
        scale(&args);
    }
}
