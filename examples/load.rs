//! Load driver: runs `examples/server.rs` as a separate process against an in-process LINE
//! emulator that injects faults, and drives it with hundreds of concurrent connections carrying a
//! mix of valid, revoked, foreign, expiring, junk and malformed tokens.
//!
//! ```text
//! cargo run --release --example load -- --duration 30 --connections 256
//! ```
//!
//! Token-bearing requests go to `GET /api/me` (whose `LineUser` extractor would refuse an
//! unverified request by itself) and to `GET /api/ping` (no extractor: only the layer refuses).
//!
//! It fails (exit 1) if any request without a valid token gets 200, if a 200 names the wrong
//! user, on any 500 or undocumented status, if the server ran its protected handlers a different
//! number of times than it answered 200 on them (read from its `GET /stats` at the end), if more
//! than a few percent of the requests sent while LINE is well get 503, or if the server's resident
//! memory grows past `--max-rss-growth-mib` after warm-up. The server binary is built first if it
//! is missing.
//!
//! `--chaos` runs the chaos test instead (issue 15, item 4; 60 s unless `--duration` says
//! otherwise): two example servers (built with `--features redis`) share a real three-master
//! Redis Cluster started here (Debian's `redis-server` and `redis-cli`), while a master is killed
//! and restarted and another stalled with `CLIENT PAUSE`, every 20 s, under load with a logout
//! every 300 ms. It fails on any 500, any refused valid token, a logout not honoured by the other
//! server within a second while the cluster is healthy or at all once it is back, and a fresh
//! token costing LINE more than one verification while the cluster is healthy (checked before
//! and after the faults). What is checked is in `tests/common/chaos.rs`, which `cargo test
//! --all-features` also runs, for 12 s.
//!
//! ```text
//! cargo run --release --example load -- --chaos
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth_emulator::{Endpoint, Fault, IssueToken, LineEmulator};
use rand::seq::IndexedRandom;
use rand::{Rng, RngExt};

#[path = "../tests/common/chaos.rs"]
mod chaos;
#[path = "../tests/common/redis_cluster.rs"]
mod redis_cluster;

const CHANNEL: &str = "1234567890";
const FOREIGN_CHANNEL: &str = "9876543210";
/// Lifetime of the expiring tokens: they must be refused once it has passed.
const SHORT_LIFETIME: Duration = Duration::from_secs(3);
/// The server's budget for one verification (`LINE_UPSTREAM_TIMEOUT_MS`), permit wait and
/// retries included: a verification started under a fault has ended this long after it cleared.
const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long each fault lasts.
const FAULT_PHASE: Duration = Duration::from_millis(700);
/// How long LINE stays well between faults: the first `UPSTREAM_TIMEOUT` of it lets the last
/// fault's verifications end, the rest is the calm window where 503s are counted.
const CALM_PHASE: Duration = Duration::from_millis(2000);
/// 503s allowed in calm windows, in percent of the token-bearing requests there. A request sent a
/// whole upstream budget after the last fault cleared, and answered before the next, was verified
/// (or joined a verification) entirely against a fault-free emulator with a full second's budget:
/// none should get 503. But on a loaded 2-core machine the emulator (in this process, beside 200
/// workers) can miss the 400 ms attempt timeout this driver sets (on every try but the last): up
/// to 2.3% of such requests were seen to get 503 with the machine's load average at 9 to 11,
/// usually under 0.2%. A layer still failing after LINE recovered (or a LINE left faulty) answers
/// 503 to at least every request that needs LINE, and a fifth of all requests carry a fresh junk
/// token that always does: 20% or more.
const MAX_CALM_503_PERCENT: u64 = 5;

struct Options {
    chaos: bool,
    duration: Duration,
    connections: usize,
    max_rss_growth_mib: u64,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut options = Options {
        chaos: false,
        duration: Duration::from_secs(10),
        connections: 256,
        max_rss_growth_mib: 64,
    };
    let mut args = std::env::args().skip(1);
    let mut duration_given = false;
    while let Some(flag) = args.next() {
        if flag == "--chaos" {
            options.chaos = true;
            continue;
        }
        duration_given |= flag == "--duration";
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--connections" => options.connections = value.parse()?,
            "--max-rss-growth-mib" => options.max_rss_growth_mib = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if options.chaos && !duration_given {
        options.duration = Duration::from_secs(60);
    }
    // The first calm window, where 503s are counted, is from 1 s to 2 s into the run.
    if options.duration < CALM_PHASE + Duration::from_secs(1) {
        return Err("--duration must be at least 3 seconds".into());
    }
    Ok(options)
}

/// What a request carries, and so what it may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Valid,
    Expiring,
    Revoked,
    Foreign,
    Junk,
    Malformed,
    Missing,
    Health,
}

struct Tokens {
    valid: Vec<(String, String)>,
    expiring: Vec<(String, String)>,
    expiring_issued: Instant,
    revoked: Vec<String>,
    foreign: Vec<String>,
}

fn issue_tokens(line: &LineEmulator) -> Tokens {
    let with_user = |i: usize, lifetime: Option<Duration>| {
        let user_id = format!("U{i:032x}");
        let mut request = IssueToken::new(CHANNEL).user_id(&user_id);
        if let Some(lifetime) = lifetime {
            request = request.lifetime(lifetime);
        }
        (line.issue(request), user_id)
    };
    let valid = (0..50).map(|i| with_user(i, None)).collect();
    let expiring_issued = Instant::now();
    let expiring = (50..60)
        .map(|i| with_user(i, Some(SHORT_LIFETIME)))
        .collect();
    let revoked = (0..10)
        .map(|_| {
            let token = line.issue(IssueToken::new(CHANNEL));
            line.revoke(&token);
            token
        })
        .collect();
    let foreign = (0..10)
        .map(|_| line.issue(IssueToken::new(FOREIGN_CHANNEL)))
        .collect();
    Tokens {
        valid,
        expiring,
        expiring_issued,
        revoked,
        foreign,
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// `GET /api/me`: protected, its handler takes a `LineUser`.
    Me,
    /// `GET /api/ping`: protected, its handler takes nothing.
    Ping,
    /// `GET /health`: public.
    Health,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Me => "/api/me",
            Route::Ping => "/api/ping",
            Route::Health => "/health",
        }
    }
}

/// Since when LINE has been well (no fault injected); `None` while a fault is.
#[derive(Default)]
struct Calm(Mutex<Option<Instant>>);

impl Calm {
    fn since(&self) -> Option<Instant> {
        *self.0.lock().unwrap()
    }

    fn set(&self, since: Option<Instant>) {
        *self.0.lock().unwrap() = since;
    }
}

/// Cycles LINE through good and bad moods while the load runs, keeping `calm` up to date: it is
/// cleared before a fault is injected and set after faults are cleared, so a request that sees
/// the same `since` when sent and when answered never met a fault.
async fn inject_faults(line: Arc<LineEmulator>, calm: Arc<Calm>, stop: Arc<AtomicBool>) {
    let moods = [
        None,
        Some((Endpoint::Verify, Fault::Latency(Duration::from_millis(150)))),
        Some((
            Endpoint::Verify,
            Fault::Status(StatusCode::SERVICE_UNAVAILABLE),
        )),
        None,
        Some((
            Endpoint::Profile,
            Fault::Status(StatusCode::INTERNAL_SERVER_ERROR),
        )),
        Some((
            Endpoint::Verify,
            Fault::RateLimited {
                retry_after: Duration::from_secs(1),
            },
        )),
        None,
        Some((Endpoint::Verify, Fault::Reset)),
        Some((Endpoint::Profile, Fault::NotJson)),
        Some((Endpoint::Verify, Fault::Hang)),
    ];
    for mood in moods.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match mood {
            Some((endpoint, fault)) => {
                calm.set(None);
                line.clear_faults();
                line.inject(*endpoint, fault.clone());
                tokio::time::sleep(FAULT_PHASE).await;
            }
            None => {
                line.clear_faults();
                calm.set(Some(Instant::now()));
                tokio::time::sleep(CALM_PHASE).await;
            }
        }
    }
    line.clear_faults();
}

fn server_binary() -> Result<PathBuf, Box<dyn Error>> {
    server_binary_with(false)
}

/// The server example's binary, built first if missing, or always with `redis` (cargo keeps it
/// if it is up to date with the feature).
fn server_binary_with(redis: bool) -> Result<PathBuf, Box<dyn Error>> {
    let dir = std::env::current_exe()?
        .parent()
        .ok_or("no directory for this executable")?
        .to_path_buf();
    let server = dir.join(format!("server{}", std::env::consts::EXE_SUFFIX));
    if !server.exists() || redis {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let release = dir.components().any(|c| c.as_os_str() == "release");
        let mut build = Command::new(cargo);
        build.args(["build", "--example", "server"]);
        if redis {
            build.args(["--features", "redis"]);
        }
        if release {
            build.arg("--release");
        }
        if !build.status()?.success() {
            return Err("could not build the server example".into());
        }
    }
    Ok(server)
}

/// Starts the example server pointed at `line_base`; returns it and the URL it printed.
fn start_server(line_base: &str) -> Result<(Child, String), Box<dyn Error>> {
    let command = Command::new(server_binary()?);
    start_server_with(command, line_base)
}

fn start_server_with(
    mut command: Command,
    line_base: &str,
) -> Result<(Child, String), Box<dyn Error>> {
    let mut child = command
        .env("LINE_CHANNEL_ID", CHANNEL)
        .env("LINE_API_BASE", line_base)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "LINE_UPSTREAM_TIMEOUT_MS",
            UPSTREAM_TIMEOUT.as_millis().to_string(),
        )
        .env("LINE_UPSTREAM_ATTEMPT_TIMEOUT_MS", "400")
        .env("LINE_CACHE_MAX_TTL_SECS", "2")
        .env("LINE_NEGATIVE_CACHE_TTL_SECS", "5")
        .env("LINE_NEGATIVE_CACHE_MAX_ENTRIES", "20000")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().ok_or("the server exited before listening")??;
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.to_owned();
        }
    };
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((child, addr))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    answers: BTreeMap<(Kind, Route, u16), u64>,
    /// Token-bearing requests sent and answered within a calm window, and their 503s.
    calm_requests: u64,
    calm_503s: u64,
    violations: Vec<String>,
}

impl Tally {
    fn violation(&mut self, message: String) {
        if self.violations.len() < 20 {
            self.violations.push(message);
        }
    }
}

fn junk_token(rng: &mut impl Rng) -> String {
    format!(
        "eyJhbGciOiJIUzI1NiJ9.{:032x}.{:032x}",
        rng.random::<u128>(),
        rng.random::<u128>()
    )
}

async fn worker(
    client: reqwest::Client,
    base: String,
    tokens: Arc<Tokens>,
    calm: Arc<Calm>,
    until: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let kinds = [
        (Kind::Valid, 40),
        (Kind::Expiring, 10),
        (Kind::Revoked, 8),
        (Kind::Foreign, 8),
        (Kind::Junk, 20),
        (Kind::Malformed, 6),
        (Kind::Missing, 4),
        (Kind::Health, 4),
    ];
    while Instant::now() < until {
        let (kind, authorization, expected_user) = {
            let mut rng = rand::rng();
            let kind = kinds
                .choose_weighted(&mut rng, |(_, weight)| *weight)
                .map(|(kind, _)| *kind)
                .unwrap_or(Kind::Valid);
            let pick = |list: &Vec<(String, String)>, rng: &mut rand::rngs::ThreadRng| {
                list.choose(rng).cloned().unwrap_or_default()
            };
            match kind {
                Kind::Valid => {
                    let (token, user) = pick(&tokens.valid, &mut rng);
                    (kind, Some(format!("Bearer {token}")), Some(user))
                }
                Kind::Expiring => {
                    let (token, user) = pick(&tokens.expiring, &mut rng);
                    (kind, Some(format!("Bearer {token}")), Some(user))
                }
                Kind::Revoked => (
                    kind,
                    tokens
                        .revoked
                        .choose(&mut rng)
                        .map(|t| format!("Bearer {t}")),
                    None,
                ),
                Kind::Foreign => (
                    kind,
                    tokens
                        .foreign
                        .choose(&mut rng)
                        .map(|t| format!("Bearer {t}")),
                    None,
                ),
                Kind::Junk => (kind, Some(format!("Bearer {}", junk_token(&mut rng))), None),
                Kind::Malformed => (
                    kind,
                    Some(format!(
                        "Bearer {}&x={}",
                        junk_token(&mut rng),
                        rng.random::<u16>()
                    )),
                    None,
                ),
                Kind::Missing | Kind::Health => (kind, None, None),
            }
        };
        let route = match kind {
            Kind::Health => Route::Health,
            _ if rand::rng().random_bool(0.5) => Route::Ping,
            _ => Route::Me,
        };
        let mut request = client.get(format!("{base}{}", route.path()));
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        // Calm long enough that no verification from the last fault is still running.
        let calm_since = calm
            .since()
            .filter(|since| since.elapsed() >= UPSTREAM_TIMEOUT);
        let sent = Instant::now();
        let (status, body) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.text().await.unwrap_or_default())
            }
            Err(error) => {
                tally
                    .lock()
                    .unwrap()
                    .violation(format!("{kind:?}: transport error {}", error.without_url()));
                continue;
            }
        };
        let expired = sent.duration_since(tokens.expiring_issued)
            > SHORT_LIFETIME + Duration::from_millis(100);
        let allowed: &[u16] = match kind {
            Kind::Valid => &[200, 503],
            Kind::Expiring if expired => &[401, 503],
            Kind::Expiring => &[200, 401, 503],
            Kind::Revoked | Kind::Foreign | Kind::Junk => &[401, 503],
            Kind::Malformed => &[400],
            Kind::Missing => &[401],
            Kind::Health => &[200],
        };
        let answered_in_calm = calm_since.is_some() && calm.since() == calm_since;
        let mut tally = tally.lock().unwrap();
        *tally.answers.entry((kind, route, status)).or_default() += 1;
        if answered_in_calm && route != Route::Health {
            tally.calm_requests += 1;
            tally.calm_503s += u64::from(status == 503);
        }
        if !allowed.contains(&status) {
            tally.violation(format!("{kind:?} {route:?} answered {status}: {body}"));
        } else if status == 200 && route == Route::Ping {
            if body != "pong" {
                tally.violation(format!("{kind:?} Ping 200 with body {body:?}"));
            }
        } else if status == 200 && route == Route::Me {
            let user = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json["userId"].as_str().map(str::to_owned));
            if user != expected_user {
                tally.violation(format!(
                    "{kind:?} 200 for user {user:?}, expected {expected_user:?}"
                ));
            }
        }
    }
}

/// How many requests the server let through to its protected handlers (`handler_runs` of its
/// `GET /stats`).
async fn handler_runs(client: &reqwest::Client, base: &str) -> Result<u64, Box<dyn Error>> {
    let body = client
        .get(format!("{base}/stats"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let stats: serde_json::Value = serde_json::from_str(&body)?;
    stats["handler_runs"]
        .as_u64()
        .ok_or_else(|| "no handler_runs in GET /stats (is the server binary stale? rebuild it: cargo build --all-features --example server)".into())
}

/// Prints what went wrong as a sentence (its `Display`, not `Debug`) and exits with status 1.
#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let options = options()?;
    if options.chaos {
        return run_chaos(&options).await;
    }
    let line = Arc::new(LineEmulator::start().await?);
    let tokens = Arc::new(issue_tokens(&line));
    let (mut server, base) = start_server(&line.base_url())?;
    let pid = server.id();
    println!(
        "load: {} connections for {:?} against {base} (LINE emulator {}, faults cycling)",
        options.connections,
        options.duration,
        line.base_url()
    );

    let stop_faults = Arc::new(AtomicBool::new(false));
    let calm = Arc::new(Calm::default());
    let faults = tokio::spawn(inject_faults(
        Arc::clone(&line),
        Arc::clone(&calm),
        Arc::clone(&stop_faults),
    ));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(options.connections)
        .build()?;
    let started = Instant::now();
    let until = started + options.duration;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..options.connections)
        .map(|_| {
            tokio::spawn(worker(
                client.clone(),
                base.clone(),
                Arc::clone(&tokens),
                Arc::clone(&calm),
                until,
                Arc::clone(&tally),
            ))
        })
        .collect();

    // Memory after warm-up (caches and connection pools filled), then its peak.
    tokio::time::sleep(options.duration / 4).await;
    let warm_rss = rss_kib(pid);
    let mut peak_rss = warm_rss;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss_kib(pid));
    }
    for worker in workers {
        worker.await?;
    }
    stop_faults.store(true, Ordering::Relaxed);
    faults.await?;
    let end_rss = rss_kib(pid);
    let handler_runs = handler_runs(&client, &base).await;
    server.kill()?;
    server.wait()?;

    let tally = tally.lock().unwrap();
    let total: u64 = tally.answers.values().sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n{total} requests in {elapsed:.1} s ({:.0}/s)",
        total as f64 / elapsed
    );
    println!(
        "{:<10} {:<6} {:>6} {:>9}",
        "kind", "route", "status", "count"
    );
    for ((kind, route, status), count) in tally.answers.iter() {
        println!(
            "{:<10} {:<6} {:>6} {:>9}",
            format!("{kind:?}"),
            format!("{route:?}"),
            status,
            count
        );
    }
    let calls = line.calls();
    println!(
        "LINE calls: verify {}, profile {}",
        calls.verify, calls.profile
    );
    let growth_mib = end_rss.saturating_sub(warm_rss) / 1024;
    println!(
        "server RSS: {} MiB after warm-up, {} MiB peak, {} MiB at the end (growth {growth_mib} MiB, limit {})",
        warm_rss / 1024,
        peak_rss / 1024,
        end_rss / 1024,
        options.max_rss_growth_mib
    );

    let mut failed = false;
    if !tally.violations.is_empty() {
        failed = true;
        println!("\nVIOLATIONS:");
        for violation in &tally.violations {
            println!("  {violation}");
        }
    }
    if growth_mib > options.max_rss_growth_mib {
        failed = true;
        println!("FAIL: server memory grew {growth_mib} MiB after warm-up");
    }
    let protected_200s: u64 = tally
        .answers
        .iter()
        .filter(|((_, route, status), _)| *route != Route::Health && *status == 200)
        .map(|(_, count)| count)
        .sum();
    match handler_runs {
        Ok(runs) => {
            println!("server: protected handlers ran {runs} times, {protected_200s} 200s on protected routes");
            if runs != protected_200s {
                failed = true;
                println!("FAIL: the layer let {runs} requests through to a protected handler, but {protected_200s} were answered 200");
            }
        }
        Err(error) => {
            failed = true;
            println!("FAIL: could not read the server's handler runs from GET /stats: {error}");
        }
    }
    let calm_limit = tally.calm_requests * MAX_CALM_503_PERCENT / 100;
    println!(
        "LINE well: {} 503s in {} requests (limit {calm_limit}, {MAX_CALM_503_PERCENT}%)",
        tally.calm_503s, tally.calm_requests
    );
    if tally.calm_requests == 0 {
        failed = true;
        println!("FAIL: no request was sent and answered while LINE was well");
    } else if tally.calm_503s > calm_limit {
        failed = true;
        println!(
            "FAIL: {} requests got 503 while LINE was well",
            tally.calm_503s
        );
    }
    for route in [Route::Me, Route::Ping] {
        if !tally.answers.contains_key(&(Kind::Valid, route, 200)) {
            failed = true;
            println!("FAIL: no valid token was ever accepted on {}", route.path());
        }
    }
    if failed {
        std::process::exit(1);
    }
    println!("load: PASS (no unverified request reached a handler, handler runs = 200s, no 500, only documented statuses, few 503s while LINE was well, memory flat)");
    Ok(())
}

/// The signing key the chaos run's servers share.
const CHAOS_SIGNING_KEY: &str = "load-chaos-fleet-signing-key-of-32-bytes-or-more";

/// `--chaos`: two example servers on a real three-master Redis Cluster, faults on the cluster.
async fn run_chaos(options: &Options) -> Result<(), Box<dyn Error>> {
    let line = Arc::new(LineEmulator::start().await?);
    let binary = server_binary_with(true)?;
    let cluster = tokio::task::spawn_blocking(redis_cluster::RedisCluster::start).await?;
    let urls = cluster.env_value();
    let start = || {
        let mut command = Command::new(&binary);
        command
            .env("REDIS_CLUSTER_URLS", &urls)
            .env("LINE_REDIS_SIGNING_KEY", CHAOS_SIGNING_KEY)
            .env("LINE_REDIS_TIMEOUT_MS", chaos::REDIS_TIMEOUT_MS);
        start_server_with(command, &line.base_url())
    };
    let (mut first, first_base) = start()?;
    let (mut second, second_base) = start()?;
    // Both subscribed (on node 0, where each starts) before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.subscribers("line-auth:invalidate") < 2 {
        if Instant::now() > deadline {
            return Err("the servers did not subscribe to the cluster".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "load --chaos: {} connections for {:?} against {first_base} and {second_base}, sharing \
         the Redis Cluster {urls} (LINE emulator {})",
        options.connections,
        options.duration,
        line.base_url()
    );
    let report = chaos::run(
        Arc::clone(&line),
        Arc::new(Mutex::new(cluster)),
        vec![first_base, second_base],
        CHANNEL,
        options.duration,
        options.connections,
    )
    .await;
    for server in [&mut first, &mut second] {
        server.kill()?;
        server.wait()?;
    }
    println!("{report:#?}");
    if !report.violations.is_empty() {
        println!("load --chaos: FAIL");
        std::process::exit(1);
    }
    println!(
        "load --chaos: PASS (no 500, valid tokens always accepted, logouts honoured within a \
         second while healthy and everywhere once Redis was back, one LINE verification per \
         fresh token while healthy)"
    );
    Ok(())
}
