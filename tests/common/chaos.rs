//! The chaos run (issue 15, item 4): replicas (example servers, each its own process) sharing a
//! real Redis Cluster while a master is killed and restarted and another is stalled with
//! `CLIENT PAUSE`, under steady load with logouts. Checked throughout: no request gets a 500 (or
//! any status but 200, 401 and 503), a valid token is never refused, a logged-out token is
//! refused on the other replica within a second while the cluster is healthy and everywhere once
//! it is back; before and after the faults, with the cluster healthy, every fresh token costs
//! LINE one verification for all the replicas together.
//!
//! Shared by `tests/it/cluster.rs` (a short run) and `examples/load.rs --chaos` (60 s) through
//! `#[path]`; both declare `redis_cluster` at their crate's root.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use line_auth_emulator::{IssueToken, LineEmulator};
use rand::seq::IndexedRandom;
use rand::RngExt;

use crate::redis_cluster::RedisCluster;

/// How long a logout may take to reach another replica while the cluster is healthy.
const LOGOUT_DEADLINE: Duration = Duration::from_secs(1);
/// After a fault ends, how long the replicas may take to be whole again: the outbox retries
/// every second, the subscription reconnects within 2 s, a stalled keepalive is noticed in 3 s.
const RECOVERY: Duration = Duration::from_secs(5);
/// Longest a cycle of faults lasts; a longer run repeats it.
const CYCLE: Duration = Duration::from_secs(20);
/// Fresh tokens in each healthy-cluster probe of LINE calls per token.
const PROBE_TOKENS: usize = 30;

/// What the run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub logouts: u64,
    /// (tokens, LINE verifications) of each healthy-cluster probe.
    pub probes: Vec<(u64, u64)>,
    pub faults: Vec<String>,
    pub violations: Vec<String>,
}

impl Report {
    fn violation(&mut self, message: String) {
        if self.violations.len() < 20 {
            self.violations.push(message);
        }
    }
}

/// When the cluster was not whole: (start, end) of each fault, the current one open.
#[derive(Default)]
struct Faults(Mutex<Vec<(Instant, Option<Instant>)>>);

impl Faults {
    fn begin(&self) {
        self.0.lock().unwrap().push((Instant::now(), None));
    }

    fn end(&self) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.1 = Some(Instant::now());
        }
    }

    /// Whether a fault, or the recovery after one, touched `from..to`.
    fn near(&self, from: Instant, to: Instant) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|&(start, end)| start <= to && end.is_none_or(|end| end + RECOVERY > from))
    }
}

struct Shared {
    client: reqwest::Client,
    bases: Vec<String>,
    valid: Vec<String>,
    /// Logged-out tokens and when their logout was answered.
    logged_out: Mutex<HashMap<String, Instant>>,
    faults: Faults,
    report: Mutex<Report>,
    stop: AtomicBool,
    started: Instant,
}

impl Shared {
    async fn status(&self, base: &str, method: reqwest::Method, path: &str, token: &str) -> u16 {
        match self
            .client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            // A replica that does not answer at all is as bad as a 500.
            Err(_) => 0,
        }
    }

    fn count(&self, status: u16) {
        let mut report = self.report.lock().unwrap();
        report.requests += 1;
        *report.by_status.entry(status).or_default() += 1;
    }

    /// A violation, stamped with the time into the run.
    fn violation(&self, message: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.report
            .lock()
            .unwrap()
            .violation(format!("{at:>5.1}s {message}"));
    }
}

/// The servers' `LINE_REDIS_TIMEOUT_MS`. The default (50 ms) is below what a loaded test machine
/// stalls for, and each timeout turns Redis off for a second: the healthy-cluster probe would count
/// the second verifications that follow as the fleet's failure.
pub const REDIS_TIMEOUT_MS: &str = "500";

/// Runs the chaos for `duration` against replicas at `bases`, all sharing `cluster`, with
/// `connections` concurrent clients; tokens for `channel` come from `line`.
pub async fn run(
    line: Arc<LineEmulator>,
    cluster: Arc<Mutex<RedisCluster>>,
    bases: Vec<String>,
    channel: &str,
    duration: Duration,
    connections: usize,
) -> Report {
    let issue = |i: usize| line.issue(IssueToken::new(channel).user_id(format!("U{i:032x}")));
    let shared = Arc::new(Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        bases,
        valid: (0..60).map(issue).collect(),
        logged_out: Mutex::new(HashMap::new()),
        faults: Faults::default(),
        report: Mutex::new(Report::default()),
        stop: AtomicBool::new(false),
        started: Instant::now(),
    });

    probe(&shared, &line, channel).await;

    let started = shared.started;
    let faults = {
        let (shared, cluster) = (Arc::clone(&shared), Arc::clone(&cluster));
        std::thread::spawn(move || inject_faults(&shared, &cluster, started, duration))
    };
    let workers: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    let logouts = {
        let (shared, line, channel) = (Arc::clone(&shared), Arc::clone(&line), channel.to_owned());
        tokio::spawn(async move { log_out(shared, line, channel).await })
    };

    tokio::time::sleep(duration).await;
    shared.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    logouts.await.unwrap();
    tokio::task::spawn_blocking(move || faults.join().unwrap())
        .await
        .unwrap();

    // The cluster is whole again: after the recovery time, every logout holds everywhere.
    tokio::time::sleep(RECOVERY).await;
    let logged_out: Vec<String> = shared.logged_out.lock().unwrap().keys().cloned().collect();
    for token in &logged_out {
        for base in &shared.bases {
            let status = shared
                .status(base, reqwest::Method::GET, "/api/me", token)
                .await;
            if status != 401 {
                shared.violation(format!(
                    "a logged-out token got {status} from {base} once Redis was back"
                ));
            }
        }
    }
    probe(&shared, &line, channel).await;

    let shared = Arc::into_inner(shared).expect("every task ended");
    shared.report.into_inner().unwrap()
}

/// With no other traffic and the cluster healthy: fresh tokens asked of every replica at once
/// must cost LINE one verification each.
async fn probe(shared: &Shared, line: &LineEmulator, channel: &str) {
    let tokens: Vec<String> = (0..PROBE_TOKENS)
        .map(|_| line.issue(IssueToken::new(channel)))
        .collect();
    let before = line.calls().verify;
    for token in &tokens {
        let asked = shared
            .bases
            .iter()
            .map(|base| shared.status(base, reqwest::Method::GET, "/api/me", token));
        for status in futures_util::future::join_all(asked).await {
            shared.count(status);
            if status != 200 {
                shared.violation(format!(
                    "a fresh valid token got {status} (healthy cluster)"
                ));
            }
        }
    }
    let calls = line.calls().verify - before;
    shared
        .report
        .lock()
        .unwrap()
        .probes
        .push((tokens.len() as u64, calls));
    if calls != tokens.len() as u64 {
        shared.violation(format!(
            "{} fresh tokens on {} replicas cost LINE {calls} verifications (healthy cluster)",
            tokens.len(),
            shared.bases.len()
        ));
    }
}

/// Each cycle: kill a master at 15%, restart it at 40%, stall another with `CLIENT PAUSE` for
/// 1.5 s at 60%. Node 0 goes first: every replica subscribes there first.
fn inject_faults(
    shared: &Shared,
    cluster: &Mutex<RedisCluster>,
    started: Instant,
    duration: Duration,
) {
    let cycle = duration.min(CYCLE);
    let cycles = (duration.as_secs_f64() / cycle.as_secs_f64())
        .floor()
        .max(1.0) as u32;
    let at = |n: u32, fraction: f64| started + cycle * n + cycle.mul_f64(fraction);
    let sleep_until = |when: Instant| {
        std::thread::sleep(when.saturating_duration_since(Instant::now()));
    };
    let note = |what: String| {
        let mut report = shared.report.lock().unwrap();
        report
            .faults
            .push(format!("{:>5.1}s {what}", started.elapsed().as_secs_f64()));
    };
    for n in 0..cycles {
        let victim = (n % 3) as usize;
        let stalled = ((n + 1) % 3) as usize;
        sleep_until(at(n, 0.15));
        shared.faults.begin();
        cluster.lock().unwrap().kill(victim);
        note(format!("killed master {victim}"));
        sleep_until(at(n, 0.40));
        cluster.lock().unwrap().restart(victim);
        shared.faults.end();
        note(format!("master {victim} back, empty"));
        sleep_until(at(n, 0.60));
        shared.faults.begin();
        let pause = Duration::from_millis(1500);
        cluster.lock().unwrap().pause(stalled, pause);
        note(format!("CLIENT PAUSE on master {stalled} for {pause:?}"));
        std::thread::sleep(pause);
        shared.faults.end();
    }
}

/// Steady load: valid tokens, and tokens logged out, on any replica.
async fn worker(shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let (token, logged_out_at) = {
            let mut rng = rand::rng();
            let logged_out = shared.logged_out.lock().unwrap();
            match logged_out
                .iter()
                .nth(if logged_out.is_empty() || rng.random_bool(0.7) {
                    usize::MAX
                } else {
                    rng.random_range(0..logged_out.len())
                }) {
                Some((token, at)) => (token.clone(), Some(*at)),
                None => (shared.valid.choose(&mut rng).unwrap().clone(), None),
            }
        };
        let base = shared.bases.choose(&mut rand::rng()).unwrap().clone();
        let sent = Instant::now();
        let status = shared
            .status(&base, reqwest::Method::GET, "/api/me", &token)
            .await;
        shared.count(status);
        match (status, logged_out_at) {
            (200, Some(at)) => {
                if sent > at + LOGOUT_DEADLINE && !shared.faults.near(at, sent) {
                    shared.violation(format!(
                        "a token logged out {:?} before was accepted by {base} (healthy cluster)",
                        sent - at
                    ));
                }
            }
            (401, None) => shared.violation(format!("a valid token got 401 from {base}")),
            // 503: LINE is healthy, so none is expected; counted in the report.
            (200 | 401 | 503, _) => {}
            (status, _) => shared.violation(format!("{status} from {base}")),
        }
    }
}

/// A logout every 300 ms: a fresh token used on one replica, logged out on another, then watched
/// on the first until refused.
async fn log_out(shared: Arc<Shared>, line: Arc<LineEmulator>, channel: String) {
    let mut n = 0usize;
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        n += 1;
        let token = line.issue(IssueToken::new(&channel).user_id(format!("U{:032x}", 1000 + n)));
        let (first, second) = (&shared.bases[n % 2], &shared.bases[(n + 1) % 2]);
        let status = shared
            .status(first, reqwest::Method::GET, "/api/me", &token)
            .await;
        shared.count(status);
        if status != 200 && status != 503 {
            shared.violation(format!("a fresh valid token got {status} from {first}"));
        }
        let status = shared
            .status(second, reqwest::Method::POST, "/api/logout", &token)
            .await;
        shared.count(status);
        if status != 204 {
            // LINE is healthy: a logout always succeeds, Redis or not.
            shared.violation(format!("logout answered {status} by {second}"));
            continue;
        }
        let at = Instant::now();
        shared.report.lock().unwrap().logouts += 1;
        shared.logged_out.lock().unwrap().insert(token.clone(), at);
        loop {
            let status = shared
                .status(first, reqwest::Method::GET, "/api/me", &token)
                .await;
            shared.count(status);
            if status == 401 {
                break;
            }
            if at.elapsed() > LOGOUT_DEADLINE && !shared.faults.near(at, Instant::now()) {
                shared.violation(format!(
                    "a logout on {second} not honoured by {first} within {LOGOUT_DEADLINE:?} \
                     (healthy cluster)"
                ));
                break;
            }
            if at.elapsed() > RECOVERY * 3 || shared.stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
