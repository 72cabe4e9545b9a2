//! A real `clickhouse-server` for tests: started in the foreground with a
//! config and data directory of its own under a temp dir, on free loopback
//! ports, never the system service. It is stopped by PID when the test
//! process ends: a shell keeps the server's PID and kills it once the
//! pipe from the test process closes (whatever way the process ends).
//!
//! Shared by the library's unit tests and the behaviour tests (included
//! with `#[path]`), one server per test binary.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A running server.
pub struct ClickHouseServer {
    /// `http://127.0.0.1:PORT`
    pub http_url: String,
    /// The HTTP port.
    pub http_port: u16,
    /// The native protocol port (for `Distributed` tables between servers).
    pub tcp_port: u16,
    /// Its directory (config, data, log).
    pub dir: PathBuf,
    /// The server's PID.
    pub pid: u32,
    /// Closing this stops the server.
    stop: Option<ChildStdin>,
    _tmp: Option<tempfile::TempDir>,
}

/// Where Debian's package puts the server.
fn binary() -> PathBuf {
    for p in ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "clickhouse-server is not installed: tools/test installs Debian's clickhouse-server package"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The users: `default` (no password, loopback only) and `reader`
/// (password `reader-secret`), whose profile is `readonly = 2` on the
/// server side: it may set query limits, never write.
const USERS: &str = r#"<?xml version="1.0"?>
<yandex>
  <profiles>
    <default></default>
    <readonly><readonly>2</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <reader>
      <password>reader-secret</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>readonly</profile>
      <quota>default</quota>
    </reader>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#;

impl ClickHouseServer {
    /// Starts a server; `remote_servers` is extra `<remote_servers>` XML (a
    /// cluster of several test servers), if any.
    pub fn start(remote_servers: &str) -> ClickHouseServer {
        let tmp = tempfile::Builder::new()
            .prefix("tokentally-clickhouse-")
            .tempdir()
            .unwrap();
        let mut s = Self::start_in(tmp.path(), remote_servers);
        s._tmp = Some(tmp);
        s
    }

    /// Starts (or restarts) a server in `dir` (its data kept between runs).
    pub fn start_in(dir: &Path, remote_servers: &str) -> ClickHouseServer {
        Self::start_with_ports(dir, remote_servers, free_port(), free_port())
    }

    /// Starts a server in `dir` on the given ports.
    pub fn start_with_ports(
        dir: &Path,
        remote_servers: &str,
        http_port: u16,
        tcp_port: u16,
    ) -> ClickHouseServer {
        for sub in ["data", "tmp", "user_files", "format_schemas"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog></logger>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <mark_cache_size>16777216</mark_cache_size>
  <uncompressed_cache_size>16777216</uncompressed_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <remote_servers>{remote_servers}</remote_servers>
</yandex>
"#
        );
        std::fs::write(dir.join("config.xml"), config).unwrap();
        std::fs::write(dir.join("users.xml"), USERS).unwrap();
        // The shell outlives this call on purpose: it is the server's keeper
        // (see the module comment), reaped by init when the tests end.
        #[allow(clippy::zombie_processes)]
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                "\"$1\" --config-file=\"$2\" >\"$3\" 2>&1 & pid=$!; echo $pid; \
                 read _ignored; kill $pid; wait $pid",
            )
            .arg("sh")
            .arg(binary())
            .arg(dir.join("config.xml"))
            .arg(dir.join("stdout.log"))
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let pid: u32 = line.trim().parse().unwrap();
        let server = ClickHouseServer {
            http_url: format!("http://127.0.0.1:{http_port}"),
            http_port,
            tcp_port,
            dir: dir.to_path_buf(),
            pid,
            stop: child.stdin.take(),
            _tmp: None,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) {
                let _ = s.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut out = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut out);
                if out.contains("Ok.") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join("server.err.log")).unwrap_or_default();
        panic!("clickhouse-server did not start: {log}\n{err}");
    }

    /// Stops the server (by PID) and waits until its port is closed.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline
            && std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A `clickhouse://` store URL for a new, empty database on this server.
    pub fn fresh_database_url(&self) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        format!(
            "clickhouse://default@127.0.0.1:{}/t{}_{n}",
            self.http_port,
            std::process::id()
        )
    }

    /// Runs one statement over HTTP, returning the body (panics on an error status).
    pub fn sql(&self, statement: &str) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).unwrap();
        let req = format!(
            "POST / HTTP/1.0\r\nContent-Length: {}\r\n\r\n{statement}",
            statement.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{statement}: {out}"
        );
        body.to_string()
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test binary's shared server, started on first use.
pub fn shared() -> &'static ClickHouseServer {
    static SERVER: std::sync::OnceLock<ClickHouseServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| ClickHouseServer::start(""))
}
