//! Replicas sharing one real Redis Cluster (three masters of Debian's `redis-server`, joined by
//! `redis-cli --cluster create` on free loopback ports): tokens in every slot, logouts, forgets
//! and clears across slots, and a master dying under load.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use line_auth::LineAuthConfigBuilder;
use line_auth_emulator::IssueToken;

use crate::fleet::{
    log_out_then_refused, time_until, wait_for_invalidations, Replica, STALL_TOLERANT_REDIS_TIMEOUT,
};
use crate::logout::post_bearer;
use crate::redis_cluster::RedisCluster;
use crate::redis_server::{shared_key, FLEET_KEY};
use crate::support::*;

/// How long a logout may take to reach the other replica: the issue asks for a second.
const LOGOUT_DEADLINE: Duration = Duration::from_secs(1);

/// A replica's settings for a cluster whose nodes are `urls`, the first its subscription's,
/// tolerant of a loaded machine's stalls.
fn settings_for(line: &Line, urls: impl IntoIterator<Item = String>) -> LineAuthConfigBuilder {
    line.config()
        .redis_cluster_urls(urls)
        .redis_signing_key(FLEET_KEY)
        .redis_timeout(STALL_TOLERANT_REDIS_TIMEOUT)
}

/// `n` replicas on the cluster, each subscribed (on node 0) before the test goes on.
async fn fleet(line: &Line, cluster: &RedisCluster, n: usize) -> Vec<Replica> {
    fleet_listening_on(line, cluster, 0, n).await
}

/// As [`fleet`], every replica subscribed on `node`: told of it first.
async fn fleet_listening_on(
    line: &Line,
    cluster: &RedisCluster,
    node: usize,
    n: usize,
) -> Vec<Replica> {
    let mut urls = cluster.urls();
    urls.rotate_left(node);
    let mut replicas = Vec::new();
    for _ in 0..n {
        replicas.push(Replica::with_config(settings_for(line, urls.clone())).await);
    }
    wait_for_subscribers(cluster, n).await;
    replicas
}

async fn wait_for_subscribers(cluster: &RedisCluster, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.subscribers("line-auth:invalidate") < n {
        assert!(Instant::now() < deadline, "{n} replicas did not subscribe");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Verifies one fresh token after another on the first replica, then on the second, until one
/// costs LINE a single call (the second read the first's verdict), within `limit`.
async fn until_shared(
    line: &Line,
    replicas: &[Replica],
    mut fresh: impl FnMut() -> String,
    limit: Duration,
    what: &str,
) {
    let deadline = Instant::now() + limit;
    loop {
        let token = fresh();
        let before = line.calls().0;
        assert_eq!(replicas[0].me(&token).await, StatusCode::OK);
        assert_eq!(replicas[1].me(&token).await, StatusCode::OK);
        if line.calls().0 == before + 1 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A fresh token whose keys are on master `node`.
fn token_on(line: &Line, cluster: &RedisCluster, node: usize) -> String {
    std::iter::repeat_with(|| line.token())
        .find(|token| cluster.node_of(&shared_key("v", token)) == node)
        .unwrap()
}

/// Tokens whose keys fall on every master, at least `per_node` on each.
fn tokens_on_every_master(line: &Line, cluster: &RedisCluster, per_node: usize) -> Vec<String> {
    let mut on = [0usize; 3];
    let mut tokens = Vec::new();
    while on.iter().any(|&count| count < per_node) {
        let token = line.token();
        let node = cluster.node_of(&shared_key("v", &token));
        if on[node] < per_node {
            on[node] += 1;
            tokens.push(token);
        }
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_on_every_master_cost_line_one_verification_for_two_replicas() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 3);

    for token in &tokens {
        assert_eq!(replicas[0].me(token).await, StatusCode::OK);
    }
    for token in &tokens {
        assert_eq!(replicas[1].me(token).await, StatusCode::OK);
    }
    let n = tokens.len() as u64;
    assert_eq!(line.calls(), (n, n), "one LINE verification per token");
    for node in 0..3 {
        assert!(
            cluster.keys_on(node, "line-auth:v:*").len() >= 3,
            "verdicts on node {node}"
        );
    }
    // Each token's keys share its slot: the claims are gone from where the verdicts are.
    for token in &tokens {
        let node = cluster.node_of(&shared_key("v", token));
        assert_eq!(node, cluster.node_of(&shared_key("l", token)));
        assert!(cluster.keys_on(node, &shared_key("l", token)).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_first_requests_on_both_replicas_cost_line_one_verification() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 2);

    for token in &tokens {
        let (first, second) = tokio::join!(replicas[0].me(token), replicas[1].me(token));
        assert_eq!((first, second), (StatusCode::OK, StatusCode::OK));
    }
    let n = tokens.len() as u64;
    assert_eq!(line.calls().0, n, "the claim holds across slots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_replica_is_refused_on_the_other_within_a_second_in_every_slot() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 1);
    for token in &tokens {
        for replica in &replicas {
            assert_eq!(replica.me(token).await, StatusCode::OK);
        }
    }

    for token in &tokens {
        log_out_then_refused(&replicas[1].base, &replicas[0].base, token, LOGOUT_DEADLINE).await;
        // The sign-out is recorded in the token's slot, for replicas that never heard it.
        let signed_out = shared_key("s", token);
        let node = cluster.node_of(&signed_out);
        assert_eq!(cluster.keys_on(node, &signed_out), [signed_out]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_of_a_token_whose_master_is_down_still_reaches_the_other_replica_within_a_second()
{
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    // Both subscribe on node 0 first: the token's master is another.
    let token = tokens_on_every_master(&line, &cluster, 1)
        .into_iter()
        .find(|token| cluster.node_of(&shared_key("v", token)) != 0)
        .unwrap();
    for replica in &replicas {
        assert_eq!(replica.me(&token).await, StatusCode::OK);
    }
    cluster.kill(cluster.node_of(&shared_key("v", &token)));

    // Honoured with the token's master down.
    log_out_then_refused(
        &replicas[1].base,
        &replicas[0].base,
        &token,
        LOGOUT_DEADLINE,
    )
    .await;
}

/// Two replicas given one node of the cluster, which the README says is enough: the rest are
/// discovered.
async fn fleet_told_of(line: &Line, cluster: &RedisCluster, node: usize) -> Vec<Replica> {
    let mut replicas = Vec::new();
    for _ in 0..2 {
        replicas.push(Replica::with_config(settings_for(line, [cluster.url(node)])).await);
    }
    wait_for_subscribers(cluster, 2).await;
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_of_one_node_the_fleet_outlives_it_and_a_logout_still_reaches_the_other_replica() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet_told_of(&line, &cluster, 0).await;
    let token = token_on(&line, &cluster, 1);
    for replica in &replicas {
        assert_eq!(replica.me(&token).await, StatusCode::OK);
    }
    assert_eq!(line.calls().0, 1, "shared through node 1, discovered");
    let fresh: Vec<String> = (0..30)
        .map(|_| line.token())
        .filter(|token| cluster.node_of(&shared_key("v", token)) != 0)
        .collect();
    let mut fresh = fresh.into_iter();
    // The only node the replicas were told of, where both listen, dies.
    cluster.kill(0);

    log_out_then_refused(
        &replicas[1].base,
        &replicas[0].base,
        &token,
        LOGOUT_DEADLINE,
    )
    .await;
    // And the fleet keeps serving, and shares verdicts again through the masters left once
    // the cluster has noticed.
    until_shared(
        &line,
        &replicas,
        || fresh.next().expect("tokens enough"),
        Duration::from_secs(10),
        "no sharing without node 0",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_as_the_token_master_and_the_signing_out_replicas_node_die_still_goes_out() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let told = |first: usize| {
        let mut urls = cluster.urls();
        urls.swap(0, first);
        settings_for(&line, urls)
    };
    // One listens on node 0, the other on node 1.
    let signing_out = Replica::with_config(told(0)).await;
    let other = Replica::with_config(told(1)).await;
    wait_for_subscribers(&cluster, 2).await;
    let token = token_on(&line, &cluster, 0);
    assert_eq!(signing_out.me(&token).await, StatusCode::OK);
    assert_eq!(other.me(&token).await, StatusCode::OK);
    // The node the first listens on, which is also the token's master, dies; the logout's
    // first announcement finds no subscription node, and its record no master.
    cluster.kill(0);

    log_out_then_refused(&signing_out.base, &other.base, &token, LOGOUT_DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_whose_record_fails_after_the_subscription_moved_goes_out_at_once() {
    // The record's master holds it past the Redis timeout: its failure pauses Redis use.
    log_out_while_the_subscription_moves(Duration::from_millis(1_500), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_whose_record_lands_in_a_pause_after_the_subscription_moved_goes_out_at_once() {
    // The record's master holds it within the Redis timeout, while a request for a token on the
    // dead node pauses Redis use.
    log_out_while_the_subscription_moves(Duration::from_millis(700), true).await;
}

/// Two replicas, the first listening on node 1, then on node 2, the other on node 2; a token on
/// node 0 held by both. The first's node dies, and node 2 holds its new subscription for a
/// moment: a logout on the first finds no node to announce on, so waits on its record, which
/// the token's master holds for `record_held`. By then the first listens on node 2 again, and
/// a pause of Redis use begun since (the record's failure, or where `pause_meanwhile`, a
/// request for a token on the dead node) must not hold the message back: the other refuses
/// the token within half a second of the logout's answer.
async fn log_out_while_the_subscription_moves(record_held: Duration, pause_meanwhile: bool) {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let urls = cluster.urls();
    let in_order = |order: [usize; 3]| settings_for(&line, order.map(|node| urls[node].clone()));
    let signing_out = Replica::with_config(in_order([1, 2, 0])).await;
    let other = Replica::with_config(in_order([2, 0, 1])).await;
    wait_for_subscribers(&cluster, 2).await;
    let token = token_on(&line, &cluster, 0);
    let on_the_dead_node = token_on(&line, &cluster, 1);
    assert_eq!(signing_out.me(&token).await, StatusCode::OK);
    assert_eq!(other.me(&token).await, StatusCode::OK);
    cluster.pause(0, record_held);
    cluster.pause(2, Duration::from_millis(300));
    cluster.kill(1);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let meanwhile = async {
        if pause_meanwhile {
            // 400 ms after the kill: after the new subscription (300 ms), before the record
            // lands (700 ms).
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(signing_out.me(&on_the_dead_node).await, StatusCode::OK);
        }
    };
    let logout = log_out_then_refused(
        &signing_out.base,
        &other.base,
        &token,
        Duration::from_millis(500),
    );
    tokio::join!(logout, meanwhile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_elsewhere_does_not_make_the_subscription_look_dead() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let replica = &fleet(&line, &cluster, 1).await[0];
    // The replica listens on node 0; node 2 dies, and requests for its slots keep failing,
    // which leaves Redis use paused second after second.
    cluster.kill(2);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let token = line.token();
        if cluster.node_of_slot(slot_of(&cluster, &token)) == 2 {
            assert_eq!(replica.me(&token).await, StatusCode::OK);
        }
        assert_eq!(
            cluster.subscribers("line-auth:invalidate"),
            1,
            "the subscription on node 0 was dropped as silent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn slot_of(cluster: &RedisCluster, token: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(shared_key("v", token))
        .query(&mut cluster.connection(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_forget_user_and_clear_reach_every_slot() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 1);
    // One user's tokens on every master.
    let user = "U00000000000000000000000000000077";
    let of_user: Vec<String> = {
        let mut on = [false; 3];
        let mut found = Vec::new();
        while on.iter().any(|found| !found) {
            let token = line.issue(IssueToken::new(CHANNEL).user_id(user));
            let node = cluster.node_of(&shared_key("v", &token));
            if !on[node] {
                on[node] = true;
                found.push(token);
            }
        }
        found
    };
    for token in tokens.iter().chain(&of_user) {
        for replica in &replicas {
            assert_eq!(replica.me(token).await, StatusCode::OK);
        }
    }
    let mut calls = line.calls().0;
    assert_eq!(calls, 6);

    replicas[0].auth.forget(&tokens[0]);
    wait_for_invalidations(&replicas[1], 1).await;
    assert_eq!(replicas[1].me(&tokens[0]).await, StatusCode::OK);
    calls += 1;
    assert_eq!(line.calls().0, calls, "forgotten in its slot and elsewhere");

    replicas[1].auth.forget_user(user);
    wait_for_invalidations(&replicas[0], 2).await;
    for token in &of_user {
        assert!(cluster.keys(&shared_key("v", token)).is_empty());
        assert_eq!(replicas[0].me(token).await, StatusCode::OK);
    }
    calls += 3;
    assert_eq!(line.calls().0, calls, "the user's tokens on every master");
    assert_eq!(replicas[0].me(&tokens[1]).await, StatusCode::OK);
    assert_eq!(line.calls().0, calls, "other users' tokens stay");

    replicas[0].auth.clear();
    wait_for_invalidations(&replicas[1], 3).await;
    let mut marks = vec![
        shared_key("x", &tokens[0]),
        "line-auth:xall".to_owned(),
        format!("line-auth:xu:{user}"),
    ];
    marks.sort();
    assert_eq!(
        cluster.keys("line-auth:*"),
        marks,
        "every master swept but for the forget marks"
    );
    for token in &tokens {
        assert_eq!(replicas[1].me(token).await, StatusCode::OK);
    }
    assert_eq!(line.calls().0, calls + 3, "cleared on every replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_forged_in_the_cluster_is_refused() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 1).await;
    let forged = r#"{"user":{"userId":"U00000000000000000000000000000000","displayName":"Mallory","channelId":"1234567890","scopes":["profile"],"expiresAt":4102444800},"freshUntilMs":4102444800000}"#;
    let token = "a-token-LINE-never-issued";
    let key = shared_key("v", token);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(format!("{}.{forged}", "A".repeat(43)))
        .arg("EX")
        .arg(60)
        .query(&mut cluster.connection(cluster.node_of(&key)))
        .unwrap();

    assert_eq!(replicas[0].me(token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(line.calls().0, 1, "LINE was asked, and refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_master_leaves_both_replicas_serving_and_its_return_is_picked_up() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 2);
    for token in &tokens {
        for replica in &replicas {
            assert_eq!(replica.me(token).await, StatusCode::OK);
        }
    }
    let victim = cluster.node_of(&shared_key("v", &tokens[0]));

    cluster.kill(victim);
    // Until the cluster notices and after: every request is answered, from Redis or from LINE.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for token in &tokens {
            for replica in &replicas {
                assert_eq!(replica.me(token).await, StatusCode::OK);
            }
        }
        let fresh = line.token();
        for replica in &replicas {
            assert_eq!(replica.me(&fresh).await, StatusCode::OK);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cluster.restart(victim);
    // Back: new tokens, in every slot the restarted master holds too, cost one call again.
    until_shared(
        &line,
        &replicas,
        || token_on(&line, &cluster, victim),
        Duration::from_secs(15),
        "the restarted master is not used again",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_example_servers_share_a_redis_cluster_through_redis_cluster_urls() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let base_url = line.emulator.base_url();
    let urls = cluster.env_value();
    let redis_timeout_ms = STALL_TOLERANT_REDIS_TIMEOUT.as_millis().to_string();
    let env = [
        ("LINE_CHANNEL_ID", CHANNEL),
        ("LINE_API_BASE", base_url.as_str()),
        ("REDIS_CLUSTER_URLS", urls.as_str()),
        ("LINE_REDIS_SIGNING_KEY", FLEET_KEY),
        ("LINE_REDIS_TIMEOUT_MS", redis_timeout_ms.as_str()),
    ];
    let (_first, first) = start_example("server", &env);
    let (_second, second) = start_example("server", &env);
    wait_for_subscribers(&cluster, 2).await;
    let tokens = tokens_on_every_master(&line, &cluster, 2);

    for token in &tokens {
        assert_eq!(
            get_bearer(&first, "/api/me", token).await.status,
            StatusCode::OK
        );
    }
    for token in &tokens {
        assert_eq!(
            get_bearer(&second, "/api/me", token).await.status,
            StatusCode::OK
        );
    }
    let n = tokens.len() as u64;
    assert_eq!(
        line.calls(),
        (n, n),
        "the second server asked Redis, not LINE"
    );

    log_out_then_refused(&second, &first, &tokens[0], LOGOUT_DEADLINE).await;

    // A node dies: both servers keep serving.
    cluster.kill(2);
    for _ in 0..20 {
        for token in &tokens[1..] {
            for base in [&first, &second] {
                assert_eq!(
                    get_bearer(base, "/api/me", token).await.status,
                    StatusCode::OK
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 15, item 4, short: two example servers on the cluster for 12 s while master 0 (where
/// both subscribe) is killed and restarted and master 1 is stalled; `cargo run --example load --
/// --chaos` runs the same for 60 s. What is checked: `tests/common/chaos.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_master_killed_restarted_and_stalled_under_load_with_logouts() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let base_url = line.emulator.base_url();
    let urls = cluster.env_value();
    let env = [
        ("LINE_CHANNEL_ID", CHANNEL),
        ("LINE_API_BASE", base_url.as_str()),
        ("REDIS_CLUSTER_URLS", urls.as_str()),
        ("LINE_REDIS_SIGNING_KEY", FLEET_KEY),
        ("LINE_REDIS_TIMEOUT_MS", crate::chaos::REDIS_TIMEOUT_MS),
    ];
    let (_first, first) = start_example("server", &env);
    let (_second, second) = start_example("server", &env);
    wait_for_subscribers(&cluster, 2).await;

    let report = crate::chaos::run(
        std::sync::Arc::new(line.emulator),
        std::sync::Arc::new(std::sync::Mutex::new(cluster)),
        vec![first, second],
        CHANNEL,
        Duration::from_secs(12),
        8,
    )
    .await;
    println!("{report:#?}");
    assert!(report.violations.is_empty(), "{report:#?}");
    assert!(report.logouts > 10, "{report:#?}");
    assert_eq!(report.by_status.get(&500), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_honoured_before_a_stalled_subscription_node_comes_back() {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let token = token_on(&line, &cluster, 1);
    for replica in &replicas {
        assert_eq!(replica.me(&token).await, StatusCode::OK);
    }
    // Both listen on node 0, which stops answering; the token's master is fine.
    let pause = Duration::from_secs(8);
    let paused = Instant::now();
    cluster.pause(0, pause);

    assert_eq!(
        post_bearer(&replicas[1].base, "/api/logout", &token).await,
        StatusCode::NO_CONTENT
    );
    // The silent subscription is left for another node (3 s without a keepalive), which
    // forgets what it may have missed: the sign-out record answers.
    time_until(
        &replicas[0].base,
        &token,
        StatusCode::UNAUTHORIZED,
        pause.saturating_sub(paused.elapsed()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn told_of_one_node_that_hangs_then_dies_the_fleet_shares_again_through_the_others() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    // Not the node of the fleet-wide forget mark, which a share reads.
    let told = (cluster.node_of("line-auth:xall") + 1) % 3;
    let replicas = fleet_told_of(&line, &cluster, told).await;
    // Tokens whose keys, their users' too, are all on the masters left.
    let fresh: Vec<String> = (0..60u32)
        .filter_map(|i| {
            let user = format!("U{:032x}", 0x5100 + i);
            let token = line.issue(IssueToken::new(CHANNEL).user_id(&user));
            let keys = [
                shared_key("v", &token),
                format!("line-auth:u:{user}"),
                format!("line-auth:xu:{user}"),
            ];
            keys.iter()
                .all(|key| cluster.node_of(key) != told)
                .then_some(token)
        })
        .collect();
    // The node hangs long enough for the subscriptions to leave it (and the command
    // connections to be dropped with them), then dies: a host gone, not a process.
    cluster.pause(told, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.kill(told);

    let mut fresh = fresh.into_iter();
    until_shared(
        &line,
        &replicas,
        || fresh.next().expect("tokens enough"),
        Duration::from_secs(10),
        "no sharing without the node told of",
    )
    .await;
}

/// Up to `n` tokens, each of its own user, whose keys (the token's, its user's set and mark)
/// are on masters other than `dead`; `user_on_dead`: but the user's set on `dead`.
fn tokens_away_from(
    line: &Line,
    cluster: &RedisCluster,
    dead: usize,
    user_on_dead: bool,
    n: usize,
) -> Vec<String> {
    (0..400u32)
        .filter_map(|i| {
            let user = format!("U{:032x}", 0x7a00 + i);
            let token = line.issue(IssueToken::new(CHANNEL).user_id(&user));
            let token_away = cluster.node_of(&shared_key("v", &token)) != dead;
            let users_keys = [
                format!("line-auth:u:{user}"),
                format!("line-auth:xu:{user}"),
            ];
            let user_away = users_keys.iter().all(|key| cluster.node_of(key) != dead);
            let user_dead = cluster.node_of(&users_keys[0]) == dead;
            let wanted = if user_on_dead { user_dead } else { user_away };
            (token_away && wanted).then_some(token)
        })
        .take(n)
        .collect()
}

/// With the master `dead` down, `tokens` verified on both replicas are taken back from Redis,
/// and then served for 3 s more without asking LINE again: a share that cannot be checked, or
/// half written, is taken back from Redis, not from every replica's memory (which would cost
/// each replica a LINE call per token about once a second while the master is down).
async fn served_from_memory_while_a_master_is_down(
    line: &Line,
    cluster: &RedisCluster,
    replicas: &[Replica],
    tokens: &[String],
) {
    for token in tokens {
        for replica in replicas {
            assert_eq!(replica.me(token).await, StatusCode::OK);
        }
    }
    // Past the second Redis is left alone after a failure: a take-back queued for then has
    // gone out.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for token in tokens {
        let verdict = shared_key("v", token);
        assert!(
            cluster
                .keys_on(cluster.node_of(&verdict), &verdict)
                .is_empty(),
            "a share that could not be checked is left in Redis"
        );
    }
    let before = line.calls().0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for token in tokens {
            for replica in replicas {
                assert_eq!(replica.me(token).await, StatusCode::OK);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked = line.calls().0 - before;
    assert!(
        asked <= 1,
        "{asked} LINE calls for {} tokens each replica already held",
        tokens.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_holding_the_forget_everything_mark_does_not_send_replicas_back_to_line() {
    // Every share reads `xall` after writing: with its master down, none can be checked.
    with_a_master_down_replicas_serve_from_memory(|marks| marks, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_holding_the_users_sets_does_not_send_replicas_back_to_line() {
    // A share adds the token to its user's set: with that set's master down, the write is half
    // done.
    with_a_master_down_replicas_serve_from_memory(|marks| (marks + 1) % 3, true).await;
}

/// Two replicas, the master `dead` (chosen from the forget marks' master) killed, then
/// [`served_from_memory_while_a_master_is_down`] with three tokens away from it, but for their
/// users' sets where `user_on_dead`.
async fn with_a_master_down_replicas_serve_from_memory(
    dead: impl FnOnce(usize) -> usize,
    user_on_dead: bool,
) {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let dead = dead(cluster.node_of("line-auth:xall"));
    // Both listen elsewhere: a subscription that moves drops what its replica holds, which
    // would send it back to LINE for a reason of its own, whenever the move lands.
    let replicas = fleet_listening_on(&line, &cluster, (dead + 1) % 3, 2).await;
    let tokens = tokens_away_from(&line, &cluster, dead, user_on_dead, 3);
    assert_eq!(tokens.len(), 3);
    cluster.kill(dead);
    wait_for_subscribers(&cluster, 2).await;

    served_from_memory_while_a_master_is_down(&line, &cluster, &replicas, &tokens).await;
}

/// A cluster and two replicas that both hold `held`, and the master to kill: neither the
/// subscriptions' node (the first configured) nor the forget marks' master, nor any of `held`'s.
async fn a_held_token_and_a_master_to_kill() -> (RedisCluster, Line, Vec<Replica>, usize, String) {
    let cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let marks = cluster.node_of("line-auth:xall");
    let dead = (1..3).find(|&node| node != marks).unwrap();
    let held = tokens_away_from(&line, &cluster, dead, false, 1).remove(0);
    for replica in &replicas {
        assert_eq!(replica.me(&held).await, StatusCode::OK);
    }
    (cluster, line, replicas, dead, held)
}

/// Waits up to 4 s for the second replica to hear the first one's forget.
async fn the_other_replica_hears_the_forget(replicas: &[Replica], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(4);
    while replicas[1].auth.stats().invalidations_received == 0 {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_goes_out_while_a_forget_before_it_waits_for_its_dead_master() {
    let (mut cluster, line, replicas, dead, held) = a_held_token_and_a_master_to_kill().await;
    let on_dead = token_on(&line, &cluster, dead);
    assert_eq!(replicas[0].me(&on_dead).await, StatusCode::OK);
    cluster.kill(dead);

    // The first forget waits for its master; the second, of a token on a live master, still
    // reaches the other replica.
    replicas[0].auth.forget(&on_dead);
    replicas[0].auth.forget(&held);
    the_other_replica_hears_the_forget(&replicas, "a forget waits behind one whose master is down")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_goes_out_while_requests_keep_failing_on_a_dead_master() {
    let (mut cluster, line, replicas, dead, held) = a_held_token_and_a_master_to_kill().await;
    // New tokens on the dead master, one every 10 ms: each first request fails on it and
    // leaves Redis alone for another second, moments after the last such pause ended.
    let on_dead: Vec<String> = std::iter::repeat_with(|| line.token())
        .filter(|token| cluster.node_of(&shared_key("v", token)) == dead)
        .take(600)
        .collect();
    cluster.kill(dead);
    let traffic = {
        let base = replicas[0].base.clone();
        tokio::spawn(async move {
            for token in on_dead {
                assert_eq!(
                    get_bearer(&base, "/api/me", &token).await.status,
                    StatusCode::OK
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    replicas[0].auth.forget(&held);
    the_other_replica_hears_the_forget(
        &replicas,
        "the forget waits while Redis is left alone again and again",
    )
    .await;
    assert!(!traffic.is_finished(), "the requests stopped early");
    traffic.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_goes_out_while_a_clear_waits_for_the_forget_marks_dead_master() {
    let mut cluster = RedisCluster::start();
    let line = Line::start().await;
    let replicas = fleet(&line, &cluster, 2).await;
    let dead = cluster.node_of("line-auth:xall");
    let held = tokens_away_from(&line, &cluster, dead, false, 1).remove(0);
    for replica in &replicas {
        assert_eq!(replica.me(&held).await, StatusCode::OK);
    }
    cluster.kill(dead);
    wait_for_subscribers(&cluster, 2).await;

    // "Forget everything" cannot go out (its mark's master is down, and it sweeps every master):
    // it must not hold up, or cover, a forget that can.
    replicas[0].auth.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    replicas[0].auth.forget(&held);
    the_other_replica_hears_the_forget(&replicas, "a forget waits behind a clear that cannot go")
        .await;
}

/// A forget reads Redis's clock on the master its mark is written to, not on any node: with a
/// master hung elsewhere, forgets of tokens on live masters each reach the other replica at
/// once, none held back for a second by a clock read sent to the hung master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgets_of_tokens_on_live_masters_go_out_at_once_while_another_master_hangs() {
    let (cluster, line, replicas, hung, _) = a_held_token_and_a_master_to_kill().await;
    // Ten: were the clock read on any node, each would go to the hung one one time in three.
    let tokens = tokens_away_from(&line, &cluster, hung, false, 10);
    assert_eq!(tokens.len(), 10);
    cluster.pause(hung, Duration::from_secs(30));

    let heard_before = replicas[1].auth.stats().invalidations_received;
    for (n, token) in (1..).zip(&tokens) {
        let forgotten = Instant::now();
        replicas[0].auth.forget(token);
        while replicas[1].auth.stats().invalidations_received < heard_before + n {
            assert!(
                forgotten.elapsed() < Duration::from_millis(800),
                "forget {n} of {} held back",
                tokens.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
