//! Load driver: runs `examples/server.rs` as a separate process against an in-process LINE
//! emulator that injects faults, and drives it with hundreds of concurrent connections carrying a
//! mix of valid, revoked, foreign, expiring, junk and malformed tokens.
//!
//! ```text
//! cargo run --release --example load -- --duration 30 --connections 256
//! ```
//!
//! It fails (exit 1) if any request without a valid token gets 200, if a 200 names the wrong
//! user, on any 500 or undocumented status, or if the server's resident memory grows past
//! `--max-rss-growth-mib` after warm-up. The server binary is built first if it is missing.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::emulator::{Endpoint, Fault, IssueToken, LineEmulator};
use rand::seq::IndexedRandom;
use rand::Rng;

const CHANNEL: &str = "1234567890";
const FOREIGN_CHANNEL: &str = "9876543210";
/// Lifetime of the expiring tokens: they must be refused once it has passed.
const SHORT_LIFETIME: Duration = Duration::from_secs(3);

struct Options {
    duration: Duration,
    connections: usize,
    max_rss_growth_mib: u64,
}

fn options() -> Result<Options, Box<dyn Error>> {
    let mut options = Options {
        duration: Duration::from_secs(10),
        connections: 256,
        max_rss_growth_mib: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => options.duration = Duration::from_secs(value.parse()?),
            "--connections" => options.connections = value.parse()?,
            "--max-rss-growth-mib" => options.max_rss_growth_mib = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
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

/// Cycles LINE through good and bad moods while the load runs.
async fn inject_faults(line: Arc<LineEmulator>, stop: Arc<AtomicBool>) {
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
        line.clear_faults();
        if let Some((endpoint, fault)) = mood {
            line.inject(*endpoint, fault.clone());
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    line.clear_faults();
}

fn server_binary() -> Result<PathBuf, Box<dyn Error>> {
    let dir = std::env::current_exe()?
        .parent()
        .ok_or("no directory for this executable")?
        .to_path_buf();
    let server = dir.join(format!("server{}", std::env::consts::EXE_SUFFIX));
    if !server.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let release = dir.components().any(|c| c.as_os_str() == "release");
        let mut build = Command::new(cargo);
        build.args(["build", "--example", "server"]);
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
    let mut child = Command::new(server_binary()?)
        .env("LINE_CHANNEL_ID", CHANNEL)
        .env("LINE_API_BASE", line_base)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LINE_UPSTREAM_TIMEOUT_MS", "1000")
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
    answers: BTreeMap<(Kind, u16), u64>,
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
        let path = if kind == Kind::Health {
            "/health"
        } else {
            "/api/me"
        };
        let mut request = client.get(format!("{base}{path}"));
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
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
        let mut tally = tally.lock().unwrap();
        *tally.answers.entry((kind, status)).or_default() += 1;
        if !allowed.contains(&status) {
            tally.violation(format!("{kind:?} answered {status}: {body}"));
        } else if status == 200 && kind != Kind::Health {
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let options = options()?;
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
    let faults = tokio::spawn(inject_faults(Arc::clone(&line), Arc::clone(&stop_faults)));
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
    server.kill()?;
    server.wait()?;

    let tally = tally.lock().unwrap();
    let total: u64 = tally.answers.values().sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "\n{total} requests in {elapsed:.1} s ({:.0}/s)",
        total as f64 / elapsed
    );
    println!("{:<10} {:>6} {:>9}", "kind", "status", "count");
    for ((kind, status), count) in tally.answers.iter() {
        println!("{:<10} {:>6} {:>9}", format!("{kind:?}"), status, count);
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
    let valid_ok = tally.answers.get(&(Kind::Valid, 200)).copied().unwrap_or(0);
    if valid_ok == 0 {
        failed = true;
        println!("FAIL: no valid token was ever accepted");
    }
    if failed {
        std::process::exit(1);
    }
    println!("load: PASS (no unverified request reached a handler, no 500, only documented statuses, memory flat)");
    Ok(())
}
