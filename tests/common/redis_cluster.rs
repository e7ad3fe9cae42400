//! A real Redis Cluster of three masters and no replicas (Debian's `redis-server`, joined with
//! `redis-cli --cluster create`) on free loopback ports, owned by a test: each node can be
//! killed, paused (`CLIENT PAUSE`) and restarted on its ports, rejoining with its slots.
//!
//! The nodes run with `cluster-require-full-coverage no`, so while one master is down the others
//! keep serving their slots, and a 1 s node timeout, so the others notice within seconds.
//!
//! Shared by `tests/it` and `examples/load.rs` through `#[path]`; each uses part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node of the cluster; its process is killed when dropped.
struct Node {
    port: u16,
    bus_port: u16,
    child: Option<Child>,
}

/// Three masters holding every slot between them. Killed, and their files removed, when dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .and_then(|listener| listener.local_addr())
        .expect("no free loopback port")
        .port()
}

fn binary(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

impl RedisCluster {
    /// Starts three nodes and joins them into one cluster, waiting until it serves every slot.
    pub fn start() -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "line-auth-cluster-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            // A port another test takes before the node binds it: try others.
            let node = (0..5)
                .find_map(|_| {
                    let mut node = Node {
                        port: free_port(),
                        bus_port: free_port(),
                        child: None,
                    };
                    cluster.launch(&mut node).then_some(node)
                })
                .expect("redis-server could not get ports of its own");
            cluster.nodes.push(node);
        }
        let status = Command::new(binary("REDIS_CLI", "redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(
                cluster
                    .nodes
                    .iter()
                    .map(|node| format!("127.0.0.1:{}", node.port)),
            )
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("cannot run redis-cli (Debian's redis-server package has it)");
        assert!(status.success(), "redis-cli --cluster create failed");
        for index in 0..3 {
            cluster.wait_until_ok(index);
        }
        cluster
    }

    /// The nodes' URLs, `redis://127.0.0.1:{port}/`.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|index| self.url(index)).collect()
    }

    /// `REDIS_CLUSTER_URLS`: the nodes' URLs, comma-separated.
    pub fn env_value(&self) -> String {
        self.urls().join(",")
    }

    pub fn url(&self, index: usize) -> String {
        format!("redis://127.0.0.1:{}/", self.nodes[index].port)
    }

    /// A plain connection to one node (for `CLIENT PAUSE`, `PUBSUB`, `KEYS` on that node).
    pub fn connection(&self, index: usize) -> redis::Connection {
        let client = redis::Client::open(self.url(index)).unwrap();
        let connection = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        connection
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        connection
    }

    /// A node that is up, to ask about the cluster.
    fn live(&self) -> usize {
        (0..self.nodes.len())
            .find(|&index| self.nodes[index].child.is_some())
            .expect("every node is down")
    }

    /// Which node serves `key`'s slot.
    pub fn node_of(&self, key: &str) -> usize {
        let mut connection = self.connection(self.live());
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut connection)
            .unwrap();
        self.node_of_slot(slot)
    }

    /// Which node serves `slot`.
    pub fn node_of_slot(&self, slot: u16) -> usize {
        let mut connection = self.connection(self.live());
        let slots: Vec<(u16, u16, (String, u16))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut connection)
            .unwrap()
            .into_iter()
            .map(|range| {
                let (start, end, master, ..): (u16, u16, Vec<redis::Value>) =
                    redis::from_redis_value(range).unwrap();
                let (host, port): (String, u16) = (
                    redis::from_redis_value(master[0].clone()).unwrap(),
                    redis::from_redis_value(master[1].clone()).unwrap(),
                );
                (start, end, (host, port))
            })
            .collect();
        let (_, _, (_, port)) = slots
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .expect("every slot is served");
        self.nodes
            .iter()
            .position(|node| node.port == *port)
            .unwrap()
    }

    /// Every key on one node matching `pattern`.
    pub fn keys_on(&self, index: usize, pattern: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.connection(index))
            .unwrap()
    }

    /// Every key of the cluster matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = (0..self.nodes.len())
            .flat_map(|index| self.keys_on(index, pattern))
            .collect();
        keys.sort();
        keys
    }

    /// Subscribers of `channel` on every node, added up.
    pub fn subscribers(&self, channel: &str) -> usize {
        (0..self.nodes.len())
            .filter(|&index| self.nodes[index].child.is_some())
            .map(|index| {
                let (_, count): (String, usize) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(channel)
                    .query(&mut self.connection(index))
                    .unwrap();
                count
            })
            .sum()
    }

    /// Kills one node (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed node again on its ports: it rejoins with its slots, empty.
    pub fn restart(&mut self, index: usize) {
        self.kill(index);
        let mut node = Node {
            port: self.nodes[index].port,
            bus_port: self.nodes[index].bus_port,
            child: None,
        };
        assert!(
            self.launch(&mut node),
            "redis-server could not get port {} back",
            node.port
        );
        self.nodes[index] = node;
        for index in 0..self.nodes.len() {
            self.wait_until_ok(index);
        }
    }

    /// `CLIENT PAUSE` on one node: it holds every client's commands for `pause`.
    pub fn pause(&self, index: usize, pause: Duration) {
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(pause.as_millis() as u64)
            .arg("ALL")
            .query(&mut self.connection(index))
            .unwrap();
    }

    /// Waits until `index` says `cluster_state:ok` and knows every slot served.
    pub fn wait_until_ok(&self, index: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = redis::Client::open(self.url(index))
                .ok()
                .and_then(|client| {
                    client
                        .get_connection_with_timeout(Duration::from_secs(1))
                        .ok()
                })
                .and_then(|mut connection| {
                    redis::cmd("CLUSTER")
                        .arg("INFO")
                        .query::<String>(&mut connection)
                        .ok()
                });
            if info.as_deref().is_some_and(|info| {
                info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
            }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {index} of the cluster is not ok: {info:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a node; `false` if its ports turned out to be taken.
    fn launch(&self, node: &mut Node) -> bool {
        let binary = binary("REDIS_SERVER", "redis-server");
        let child = Command::new(&binary)
            .args(["--port", &node.port.to_string()])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-enabled", "yes"])
            .args([
                "--cluster-config-file",
                &self
                    .dir
                    .join(format!("nodes-{}.conf", node.port))
                    .to_string_lossy(),
            ])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {binary}: {error}. The cluster tests need a real Redis: \
                     `apt-get install redis-server` (`.ci/run` does), or set REDIS_SERVER"
                )
            });
        node.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = node.child.as_mut().unwrap();
            if child.try_wait().is_ok_and(|status| status.is_some()) {
                node.child = None;
                return false; // exited: a port was taken
            }
            let answered = redis::Client::open(format!("redis://127.0.0.1:{}/", node.port))
                .ok()
                .and_then(|client| {
                    client
                        .get_connection_with_timeout(Duration::from_millis(200))
                        .ok()
                })
                .and_then(|mut connection| {
                    redis::cmd("INFO")
                        .arg("server")
                        .query::<String>(&mut connection)
                        .ok()
                });
            if let Some(info) = answered {
                let pid = node.child.as_ref().unwrap().id();
                if info.contains(&format!("process_id:{pid}\r\n")) {
                    return true;
                }
                // Another test's server on this port.
                let mut child = node.child.take().unwrap();
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not open port {}",
                node.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
