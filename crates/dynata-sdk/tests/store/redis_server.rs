//! A `redis-server` of a test's own on a free loopback port, persistence
//! off, killed on drop. Without `redis-server` on the `PATH`, tests say they
//! were skipped; with `DYNATA_TEST_REQUIRE_REDIS=1` (set by `.ci/run`) they
//! fail instead.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, killed on drop.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    password: Option<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server, or `None` (after saying why) where none can run.
    pub(crate) fn start(test: &str) -> Option<Self> {
        Self::start_with_password(test, None)
    }

    pub(crate) fn start_with_password(test: &str, password: Option<&str>) -> Option<Self> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("DYNATA_TEST_REQUIRE_REDIS").is_none(),
                "{test}: redis-server is not on the PATH, and DYNATA_TEST_REQUIRE_REDIS is set"
            );
            eprintln!(
                "{test}: SKIPPED: redis-server is not on the PATH (apt-get install redis-server)"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            port,
            password: password.map(str::to_string),
            child: None,
        };
        server.resume();
        Some(server)
    }

    pub(crate) fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// Starts (again) on the same port, and waits until it accepts connections.
    pub(crate) fn resume(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no"]);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (as a crash would).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against the server; its output, trimmed.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(password) = &self.password {
            command.args(["--no-auth-warning", "-a", password]);
        }
        let output = command.args(args).output().expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
