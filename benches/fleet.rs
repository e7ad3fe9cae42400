//! The shared cache on Redis (a real `redis-server` on loopback, started here), rotated like
//! `rotating.rs`: a request whose token this replica has never seen but another replica verified
//! (a Redis hit), against the same request answered by LINE (the emulator) with no Redis, with a
//! Redis miss in front of LINE, and with an in-process hit. Then the number of LINE verifications
//! one token costs a fleet of N replicas, its first requests sent one replica after another and
//! to all replicas at once.
//!
//! `cargo bench --features testing,redis --bench fleet -- --batches 20 --requests 200 --repeats 3
//! --replicas 8`, and with `--cluster` the same against a 3-master Redis Cluster
//! (`REDIS_CLUSTER_URLS`); smoke mode (`cargo test --features testing,redis --benches`) runs one
//! tiny round on one server. Needs `redis-server` (`apt-get install redis-server`).

mod common;

#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;
#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)] // the tests also restart it
mod redis_server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use line_auth::{LineAuthConfig, LineAuthConfigBuilder, LineAuthLayer};
use line_auth_emulator::{Endpoint, Fault, IssueToken, LineEmulator};
use tower_layer::Layer;

use common::*;
use redis_cluster::RedisCluster;
use redis_server::{shared_key, RedisServer, FLEET_KEY};

/// The fleet's Redis: one server, or a 3-master cluster (`--cluster`). Kept alive by the
/// benchmark for its whole run.
#[derive(Clone)]
enum Shared {
    Server(Arc<RedisServer>),
    Cluster(Arc<RedisCluster>),
}

impl Shared {
    fn configure(&self, config: LineAuthConfigBuilder) -> LineAuthConfigBuilder {
        // Not the default 50 ms: a loaded machine stalls for longer, and each timeout turns Redis
        // off for a second, so requests would go to LINE and fail the counts asserted below. A
        // Redis that answers in time is read the same with either.
        let config = config
            .redis_signing_key(FLEET_KEY)
            .redis_timeout(Duration::from_secs(1));
        match self {
            Self::Server(server) => config.redis_url(server.url()),
            Self::Cluster(cluster) => config.redis_cluster_urls(cluster.urls()),
        }
    }

    /// How many of `keys` exist (on whichever node serves each).
    fn present(&self, keys: &[String]) -> usize {
        let exists = |connection: &mut redis::Connection, key: &str| -> bool {
            redis::cmd("EXISTS").arg(key).query(connection).unwrap()
        };
        match self {
            Self::Server(server) => {
                let mut connection = connect(server);
                keys.iter()
                    .filter(|key| exists(&mut connection, key))
                    .count()
            }
            Self::Cluster(cluster) => {
                // The cluster client routes each key to the master serving its slot.
                let mut connection = redis::cluster::ClusterClient::new(cluster.urls())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                keys.iter()
                    .filter(|key| {
                        redis::cmd("EXISTS")
                            .arg(key.as_str())
                            .query::<bool>(&mut connection)
                            .unwrap()
                    })
                    .count()
            }
        }
    }

    /// Replicas subscribed to the fleet's invalidations (on every node, for a cluster).
    fn subscribers(&self) -> usize {
        const INVALIDATIONS: &str = "line-auth:invalidate";
        match self {
            Self::Server(server) => {
                let mut connection = connect(server);
                let (_, subscribers): (String, usize) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(INVALIDATIONS)
                    .query(&mut connection)
                    .unwrap();
                subscribers
            }
            Self::Cluster(cluster) => cluster.subscribers(INVALIDATIONS),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Server(_) => "one Redis server",
            Self::Cluster(_) => "a 3-master Redis Cluster",
        }
    }
}

fn connect(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

struct Args {
    batches: usize,
    requests: usize,
    repeats: usize,
    replicas: usize,
    cluster: bool,
}

fn args() -> Args {
    if !std::env::args().any(|arg| arg == "--bench") {
        return Args {
            batches: 2,
            requests: 20,
            repeats: 1,
            replicas: 3,
            cluster: false,
        };
    }
    let mut args = Args {
        batches: 20,
        requests: 200,
        repeats: 3,
        replicas: 8,
        cluster: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || given.next().and_then(|v| v.parse().ok());
        match flag.as_str() {
            "--batches" => args.batches = value().unwrap_or(args.batches),
            "--requests" => args.requests = value().unwrap_or(args.requests),
            "--repeats" => args.repeats = value().unwrap_or(args.repeats),
            "--replicas" => args.replicas = value().unwrap_or(args.replicas),
            "--cluster" => args.cluster = true,
            _ => {}
        }
    }
    args
}

/// A replica's configuration: the emulator as LINE, and Redis if given.
fn config(line: &LineEmulator, shared: Option<&Shared>) -> LineAuthConfig {
    let mut config = LineAuthConfig::builder()
        .channel_id(CHANNEL)
        .api_base(line.base_url())
        .cache_max_entries(1 << 20);
    if let Some(shared) = shared {
        config = shared.configure(config);
    }
    config.build().unwrap()
}

fn fresh_tokens(line: &LineEmulator, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| format!("Bearer {}", line.issue(IssueToken::new(CHANNEL))))
        .collect()
}

/// Where a variant's requests must be answered from: checked after every batch on the replica's
/// counters and LINE's, so a figure cannot be timing another path than its name says.
#[derive(Debug, Clone, Copy)]
enum AnsweredBy {
    /// LINE, with no Redis configured.
    Line,
    /// The shared cache: another replica's verdict, no call to LINE.
    SharedCache,
    /// LINE, after the shared cache had nothing.
    LineAfterSharedMiss,
    /// The in-process cache (its one token is verified once, in the first batch).
    InProcessCache,
}

/// `requests` requests through a new layer's replica, each with a token from `tokens`, timed;
/// `prepare` runs first, untimed. Each request must be answered 200 by `answered_by`.
fn batch(
    line: Arc<LineEmulator>,
    shared: Option<Shared>,
    answered_by: AnsweredBy,
    mut prepare: impl FnMut(&LineEmulator, usize) -> Vec<String> + 'static,
) -> Batch {
    let rt = runtime();
    let layer = {
        let _inside = rt.enter(); // subscribes to invalidations on this runtime
        LineAuthLayer::new(config(&line, shared.as_ref()))
    };
    let auth = layer.handle();
    let layered = layer.layer(router());
    if let AnsweredBy::SharedCache = answered_by {
        // A new replica connects to Redis in the background, and asks LINE until it has: let it
        // connect (its first shared hit) before it is timed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while auth.stats().shared_hits == 0 {
            assert!(Instant::now() < deadline, "the replica never read Redis");
            let token = prepare(&line, 1).remove(0);
            rt.block_on(async {
                assert_eq!(call(&layered, request(Some(&token))).await, 200);
                tokio::time::sleep(Duration::from_millis(10)).await;
            });
        }
    }
    Box::new(move |requests| {
        let tokens = prepare(&line, requests);
        let (stats_before, verify_calls_before) = (auth.stats(), line.calls().verify);
        let started = Instant::now();
        rt.block_on(async {
            for token in &tokens {
                assert_eq!(call(&layered, request(Some(token))).await, 200);
            }
        });
        let elapsed = started.elapsed();
        let stats = auth.stats();
        let verify_calls = line.calls().verify - verify_calls_before;
        let requests = requests as u64;
        let shared_hits = stats.shared_hits - stats_before.shared_hits;
        let shared_misses = stats.shared_misses - stats_before.shared_misses;
        let cache_hits = stats.cache_hits - stats_before.cache_hits;
        let counted = (verify_calls, shared_hits, shared_misses);
        match answered_by {
            AnsweredBy::Line => assert_eq!(counted, (requests, 0, 0), "{answered_by:?}"),
            AnsweredBy::SharedCache => assert_eq!(counted, (0, requests, 0), "{answered_by:?}"),
            AnsweredBy::LineAfterSharedMiss => {
                assert_eq!(counted, (requests, 0, requests), "{answered_by:?}")
            }
            AnsweredBy::InProcessCache => assert!(
                verify_calls <= 1 && cache_hits >= requests - 1,
                "{answered_by:?}: {verify_calls} verify calls, {cache_hits} hits of {requests}"
            ),
        }
        elapsed.as_nanos() as f64 / requests as f64
    })
}

/// Fresh tokens already verified by another replica and shared in Redis.
fn shared_by_another_replica(
    line: &LineEmulator,
    shared: &Shared,
) -> impl FnMut(&LineEmulator, usize) -> Vec<String> + 'static {
    let rt = runtime();
    let other = {
        let _inside = rt.enter();
        LineAuthLayer::new(config(line, Some(shared))).layer(router())
    };
    let shared = shared.clone();
    move |line, requests| {
        let tokens = fresh_tokens(line, requests);
        rt.block_on(async {
            for token in &tokens {
                assert_eq!(call(&other, request(Some(token))).await, 200);
            }
        });
        // Verdicts are shared just after they are answered, by tasks on `rt`: let it run them
        // while Redis is read from outside it, until Redis has them all.
        let keys: Vec<String> = tokens
            .iter()
            .map(|bearer| shared_key("v", &bearer["Bearer ".len()..]))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(2)).await });
            let present = shared.present(&keys);
            if present == keys.len() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{present} of {} shared",
                keys.len()
            );
        }
        tokens
    }
}

fn latency(args: &Args, line: &Arc<LineEmulator>, shared: &Shared) {
    println!("\nthe fleet shares {}", shared.name());
    let mut variants: Vec<(&str, Batch)> = vec![
        (
            "emulator_miss_no_redis",
            batch(Arc::clone(line), None, AnsweredBy::Line, fresh_tokens),
        ),
        (
            "redis_hit",
            batch(
                Arc::clone(line),
                Some(shared.clone()),
                AnsweredBy::SharedCache,
                shared_by_another_replica(line, shared),
            ),
        ),
        (
            "redis_miss_then_emulator",
            batch(
                Arc::clone(line),
                Some(shared.clone()),
                AnsweredBy::LineAfterSharedMiss,
                fresh_tokens,
            ),
        ),
        ("in_process_hit", {
            let token = fresh_tokens(line, 1).remove(0);
            batch(
                Arc::clone(line),
                Some(shared.clone()),
                AnsweredBy::InProcessCache,
                move |_, requests| vec![token.clone(); requests],
            )
        }),
    ];
    for repeat in 1..=args.repeats {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        for _ in 0..args.batches {
            for (i, (_, run)) in variants.iter_mut().enumerate() {
                samples[i].push(run(args.requests));
            }
        }
        let medians: Vec<f64> = samples.iter_mut().map(|s| median(s)).collect();
        let baseline = medians[0];
        println!(
            "\nrepeat {repeat}/{}: {} batches x {} requests per variant, medians",
            args.repeats, args.batches, args.requests
        );
        println!("{:<28} {:>12} {:>10}", "variant", "µs/request", "ratio");
        for ((name, _), median) in variants.iter().zip(&medians) {
            println!(
                "{name:<28} {:>12.1} {:>10.3}",
                median / 1000.0,
                median / baseline
            );
        }
    }
}

/// LINE verifications for one token across `replicas` replicas: first requests one replica
/// after another, then (a new token) all at once, with LINE slow enough (50 ms) that they overlap.
fn line_calls_across_replicas(args: &Args, line: &Arc<LineEmulator>, shared: &Shared) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let replicas: Vec<_> = {
        let _inside = rt.enter();
        (0..args.replicas)
            .map(|_| LineAuthLayer::new(config(line, Some(shared))).layer(router()))
            .collect()
    };
    rt.block_on(async {
        // Every replica subscribed (so connected to Redis) before the first request.
        let deadline = Instant::now() + Duration::from_secs(10);
        while shared.subscribers() < args.replicas {
            assert!(Instant::now() < deadline, "the replicas never subscribed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let token = fresh_tokens(line, 1).remove(0);
        let verdict = [shared_key("v", &token["Bearer ".len()..])];
        let before = line.calls().verify;
        for replica in &replicas {
            assert_eq!(call(replica, request(Some(&token))).await, 200);
            // The verdict is shared just after the first replica answers, by a task of its own.
            while shared.present(&verdict) == 0 {
                assert!(Instant::now() < deadline, "the verdict was never shared");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let sequential = line.calls().verify - before;

        line.inject(Endpoint::Verify, Fault::Latency(Duration::from_millis(50)));
        let token = fresh_tokens(line, 1).remove(0);
        let before = line.calls().verify;
        let all_at_once: Vec<_> = replicas
            .iter()
            .map(|replica| {
                let (replica, request) = (replica.clone(), request(Some(&token)));
                tokio::spawn(async move { call(&replica, request).await })
            })
            .collect();
        for first_request in all_at_once {
            assert_eq!(first_request.await.unwrap(), 200);
        }
        let simultaneous = line.calls().verify - before;
        line.clear_faults();

        println!(
            "\nLINE verify calls for one token across {} replicas sharing Redis \
             (target 1): {sequential} with first requests one replica after another, \
             {simultaneous} with first requests on every replica at once",
            args.replicas
        );
        assert_eq!((sequential, simultaneous), (1, 1));
    });
}

fn main() {
    let args = args();
    let shared = if args.cluster {
        Shared::Cluster(Arc::new(RedisCluster::start()))
    } else {
        Shared::Server(Arc::new(RedisServer::start()))
    };
    // The emulator on a thread of its own, as LINE would be on a host of its own.
    let line_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let line = Arc::new(line_runtime.block_on(LineEmulator::start()).unwrap());
    latency(&args, &line, &shared);
    line_calls_across_replicas(&args, &line, &shared);
}
