//! A real `redis-server` (Debian's package) on a free loopback port, owned by a test or benchmark:
//! started, killed and restarted on the same port, so a layer's reconnection can be watched.
//!
//! Shared by `tests/it` and `benches/` through `#[path]`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The signing key every replica of a test fleet shares (`redis_signing_key`).
#[allow(dead_code)]
pub const FLEET_KEY: &str = "test-fleet-signing-key-of-32-bytes-or-more";

/// A `redis-server` process; killed when dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free loopback port, with no persistence.
    pub fn start() -> Self {
        // The port is free when asked for, but another test may take it before the server binds
        // it: then try another.
        for _ in 0..5 {
            let port = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .and_then(|listener| listener.local_addr())
                .expect("no free loopback port")
                .port();
            let mut server = Self { child: None, port };
            if server.launch() {
                return server;
            }
        }
        panic!("redis-server could not get a port of its own");
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to its clients), and waits until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new, empty server on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.launch(),
            "redis-server could not get port {} back",
            self.port
        );
    }

    /// Starts the server; `false` if the port turned out to be someone else's.
    fn launch(&mut self) -> bool {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {binary}: {error}. The shared-cache tests need a real Redis: \
                     `apt-get install redis-server` (`.ci/run` does), or set REDIS_SERVER"
                )
            });
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.pid_on_port() {
                Some(listening) if listening == pid => return true,
                Some(_) => break, // another test's server
                None => {}
            }
            if let Some(child) = &mut self.child {
                if child.try_wait().is_ok_and(|status| status.is_some()) {
                    break; // exited: the port was taken
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not open port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        false
    }

    /// The `process_id` of the Redis server answering on the port, if one does.
    fn pid_on_port(&self) -> Option<u32> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .ok()?;
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        while !answer.windows(11).any(|window| window == b"process_id:")
            || !answer.ends_with(b"\r\n")
        {
            let read = stream.read(&mut buffer).ok().filter(|&n| n > 0)?;
            answer.extend_from_slice(&buffer[..read]);
        }
        let answer = String::from_utf8_lossy(&answer);
        let line = answer
            .lines()
            .find(|line| line.starts_with("process_id:"))?;
        line["process_id:".len()..].trim().parse().ok()
    }
}

/// The shared-cache key of `kind` (`v`, `r`, `l`) for `token`, under the default prefix.
pub fn shared_key(kind: &str, token: &str) -> String {
    use sha2::{Digest, Sha256};
    let hex: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    // The token's hash is a hash tag: every key of one token is in one cluster slot.
    format!("line-auth:{kind}:{{{hex}}}")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
