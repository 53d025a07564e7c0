//! A `redis-server` of a test's own on a free loopback port, persistence
//! off, killed on drop. Without `redis-server` on the `PATH`, tests say they
//! were skipped; with `DYNATA_TEST_REQUIRE_REDIS=1` (set by `.ci/run`) they
//! fail instead.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, killed on drop.
pub(crate) struct RedisServer {
    pub(crate) port: u16,
    password: Option<String>,
    /// For a server that speaks TLS only: the directory of its certificate
    /// (`server.pem`, `server.key`) and of the CA that issued it (`ca.pem`).
    tls: Option<PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server, or `None` (after saying why) where none can run.
    pub(crate) fn start(test: &str) -> Option<Self> {
        Self::start_with_password(test, None)
    }

    pub(crate) fn start_with_password(test: &str, password: Option<&str>) -> Option<Self> {
        Self::start_with(test, password, None)
    }

    /// A server that speaks TLS only, with a certificate for `127.0.0.1`
    /// issued by a CA of the test's own (`<dir>/ca.pem`), made in `dir` with
    /// the `openssl` command.
    pub(crate) fn start_tls(test: &str, dir: &Path, password: &str) -> Option<Self> {
        if !found(test, "openssl", "apt-get install openssl") {
            return None;
        }
        make_certificates(dir);
        Self::start_with(test, Some(password), Some(dir.to_path_buf()))
    }

    fn start_with(test: &str, password: Option<&str>, tls: Option<PathBuf>) -> Option<Self> {
        if !found(test, "redis-server", "apt-get install redis-server") {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = RedisServer {
            port,
            password: password.map(str::to_string),
            tls,
            child: None,
        };
        server.resume();
        Some(server)
    }

    /// The file a replication sync may write, in the temporary directory.
    fn rdb_name(&self) -> String {
        format!("dynata-test-redis-{}.rdb", self.port)
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}/", self.port),
            None => format!("{scheme}://127.0.0.1:{}/", self.port),
        }
    }

    /// Starts (again) on the same port, and waits until it accepts connections.
    pub(crate) fn resume(&mut self) {
        let mut command = Command::new("redis-server");
        let port = self.port.to_string();
        match &self.tls {
            None => command.args(["--port", &port]),
            Some(dir) => command
                .args([
                    "--port",
                    "0",
                    "--tls-port",
                    &port,
                    "--tls-auth-clients",
                    "no",
                ])
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem")),
        };
        command.args(["--bind", "127.0.0.1"]);
        command.args(["--save", "", "--appendonly", "no"]);
        // Never a file in the crate: a replica's sync (the failover test)
        // writes one whatever `--save` says.
        command
            .arg("--dir")
            .arg(std::env::temp_dir())
            .args(["--dbfilename", &self.rdb_name()]);
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
        if let Some(dir) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(dir.join("ca.pem"));
        }
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
        let _ = std::fs::remove_file(std::env::temp_dir().join(self.rdb_name()));
    }
}

/// Whether `program` runs; without it a test is skipped, saying so, or with
/// `DYNATA_TEST_REQUIRE_REDIS` set (as `.ci/run` does), fails.
fn found(test: &str, program: &str, install: &str) -> bool {
    let version = if program == "openssl" {
        "version"
    } else {
        "--version"
    };
    let runs = Command::new(program)
        .arg(version)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        assert!(
            std::env::var_os("DYNATA_TEST_REQUIRE_REDIS").is_none(),
            "{test}: {program} is not on the PATH, and DYNATA_TEST_REQUIRE_REDIS is set"
        );
        eprintln!("{test}: SKIPPED: {program} is not on the PATH ({install})");
    }
    runs
}

/// A CA (`ca.pem`), a certificate it issued for `127.0.0.1` (`server.pem`,
/// `server.key`), and a CA that issued nothing here (`other-ca.pem`).
fn make_certificates(dir: &Path) {
    std::fs::create_dir_all(dir).expect("certificate directory");
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: [&[&str]; 4] = [
        &[
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=dynata-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=another-ca",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
        ],
        &[
            "req",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    ];
    for step in steps {
        let mut command = Command::new("openssl");
        command.current_dir(dir).arg(step[0]);
        if step[0] == "req" {
            command.args(key);
        }
        let output = command.args(&step[1..]).output().expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {step:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
