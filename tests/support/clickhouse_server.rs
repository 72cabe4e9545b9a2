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

/// The users: `default` (no password, loopback only), `reader`
/// (password `reader-secret`), whose profile is `readonly = 2` on the
/// server side: it may set query limits, never write, and `ingester`
/// (password `ingester-secret`), the ingest path's own user (servers of
/// this age grant by database, not by statement, so it can do what
/// `default` can; current servers grant it `INSERT` only).
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
    <ingester>
      <password>ingester-secret</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </ingester>
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
    /// Free ports are taken anew when another test took the ones picked
    /// first (they are free when picked, not reserved).
    pub fn start_in(dir: &Path, remote_servers: &str) -> ClickHouseServer {
        let mut attempt = 0;
        loop {
            match Self::try_start(dir, remote_servers, "", free_port(), free_port()) {
                Ok(s) => return s,
                Err(e) if attempt < 4 && e.contains("Address already in use") => attempt += 1,
                Err(e) => panic!("clickhouse-server did not start: {e}"),
            }
        }
    }

    /// Starts a server in `dir` on the given ports.
    pub fn start_with_ports(
        dir: &Path,
        remote_servers: &str,
        http_port: u16,
        tcp_port: u16,
    ) -> ClickHouseServer {
        Self::start_configured(dir, remote_servers, "", http_port, tcp_port)
    }

    /// Starts a server in `dir`; `extra` is more top-level config XML.
    fn start_configured(
        dir: &Path,
        remote_servers: &str,
        extra: &str,
        http_port: u16,
        tcp_port: u16,
    ) -> ClickHouseServer {
        Self::try_start(dir, remote_servers, extra, http_port, tcp_port)
            .unwrap_or_else(|e| panic!("clickhouse-server did not start: {e}"))
    }

    /// [`Self::start_configured`], saying why when the server does not
    /// come up (its log), having stopped it.
    fn try_start(
        dir: &Path,
        remote_servers: &str,
        extra: &str,
        http_port: u16,
        tcp_port: u16,
    ) -> Result<ClickHouseServer, String> {
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
  {extra}
</yandex>
"#
        );
        std::fs::write(dir.join("config.xml"), config).unwrap();
        std::fs::write(dir.join("users.xml"), USERS).unwrap();
        // The shell outlives this call on purpose: it is the server's keeper
        // (see the module comment), reaped by init when the tests end.
        #[allow(clippy::zombie_processes)]
        let (pid, stop) = keep(
            dir,
            &[
                binary().as_os_str(),
                std::ffi::OsStr::new("--config-file"),
                dir.join("config.xml").as_os_str(),
            ],
            &[],
        );
        let server = ClickHouseServer {
            http_url: format!("http://127.0.0.1:{http_port}"),
            http_port,
            tcp_port,
            dir: dir.to_path_buf(),
            pid,
            stop: Some(stop),
            _tmp: None,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.http_port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut out = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut out);
                if out.contains("Ok.") {
                    return Ok(());
                }
            }
            // Gone, or a zombie its keeper has not reaped yet: it exited.
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid));
            if stat.map_or(true, |s| s.split(' ').nth(2) == Some("Z")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.join("server.err.log")).unwrap_or_default();
        Err(format!("{log}\n{err}"))
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
        // And until the process is gone (it holds its data directory's lock
        // while it shuts down).
        while Instant::now() < deadline && Path::new(&format!("/proc/{}", self.pid)).exists() {
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

    /// Runs one statement in `database` over HTTP, returning the raw body
    /// (panics on an error status).
    pub fn sql_bytes(&self, database: &str, statement: &str) -> Vec<u8> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.http_port)).unwrap();
        let req = format!(
            "POST /?database={database} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{statement}",
            statement.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut out).unwrap();
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.len());
        let head = String::from_utf8_lossy(&out[..split]).to_string();
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{statement}: {}",
            String::from_utf8_lossy(&out)
        );
        out.split_off((split + 4).min(out.len()))
    }

    /// Runs one statement over HTTP, returning the body (panics on an error status).
    pub fn sql(&self, statement: &str) -> String {
        String::from_utf8(self.sql_bytes("default", statement)).unwrap()
    }
}

/// Starts `command` in `dir` (output to `stdout.log`) under a keeper
/// shell that kills it by PID once the returned pipe closes; the PID.
fn keep(
    dir: &Path,
    command: &[&std::ffi::OsStr],
    env: &[(&str, &std::ffi::OsStr)],
) -> (u32, ChildStdin) {
    // The shell outlives this call on purpose: it is the server's keeper
    // (see the module comment), reaped by init when the tests end.
    #[allow(clippy::zombie_processes)]
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("\"$@\" >stdout.log 2>&1 & pid=$!; echo $pid; read _ignored; kill $pid; wait $pid")
        .arg("sh")
        .args(command)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
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
    (line.trim().parse().unwrap(), child.stdin.take().unwrap())
}

/// A ZooKeeper server of a test's own (ClickHouse's distributed DDL needs
/// one): foreground, free loopback port, its own data dir, stopped by PID.
pub struct ZooKeeper {
    /// The client port.
    pub port: u16,
    _stop: ChildStdin,
    _tmp: tempfile::TempDir,
}

impl ZooKeeper {
    /// Starts one and waits until it answers.
    pub fn start() -> ZooKeeper {
        let script = Path::new("/usr/share/zookeeper/bin/zkServer.sh");
        assert!(
            script.exists(),
            "ZooKeeper is not installed: tools/test installs Debian's zookeeper package"
        );
        let tmp = tempfile::Builder::new()
            .prefix("tokentally-zookeeper-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok\n\
                 maxClientCnxns=0\nmaxSessionTimeout=120000\nforceSync=no\n",
                dir.display()
            ),
        )
        .unwrap();
        let (_, stop) = keep(
            dir,
            &[
                script.as_os_str(),
                std::ffi::OsStr::new("start-foreground"),
                dir.join("zoo.cfg").as_os_str(),
            ],
            &[
                ("ZOO_LOG_DIR", dir.as_os_str()),
                ("ZOOCFGDIR", dir.as_os_str()),
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                // A connection taken while the server starts may never be
                // answered: give up on it and ask again.
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"ruok");
                let mut out = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut out);
                if out.contains("imok") {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start: {}",
                std::fs::read_to_string(dir.join("stdout.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        ZooKeeper {
            port,
            _stop: stop,
            _tmp: tmp,
        }
    }
}

/// Two servers as the two shards of cluster [`Cluster::NAME`], sharing a
/// ZooKeeper for `ON CLUSTER` statements.
pub struct Cluster {
    /// The shards (shard 1 first).
    pub shards: Vec<ClickHouseServer>,
    /// Their directories, to restart a stopped shard in.
    pub dirs: Vec<tempfile::TempDir>,
    /// The `<remote_servers>` XML every shard is started with.
    remote: String,
    _zookeeper: ZooKeeper,
}

impl Cluster {
    /// The cluster's `<remote_servers>` name.
    pub const NAME: &'static str = "two_shards";

    /// Starts ZooKeeper and both shards.
    pub fn start() -> Cluster {
        let zookeeper = ZooKeeper::start();
        let ports: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
        let shards: String = ports
            .iter()
            .map(|(_, tcp)| {
                format!(
                    "<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
                )
            })
            .collect();
        let remote = format!("<{0}>{shards}</{0}>", Self::NAME);
        let dirs: Vec<tempfile::TempDir> = (0..2)
            .map(|_| {
                tempfile::Builder::new()
                    .prefix("tokentally-shard-")
                    .tempdir()
                    .unwrap()
            })
            .collect();
        let shards = ports
            .iter()
            .zip(&dirs)
            .map(|((http, tcp), dir)| {
                ClickHouseServer::start_configured(
                    dir.path(),
                    &remote,
                    &Self::extra(zookeeper.port),
                    *http,
                    *tcp,
                )
            })
            .collect();
        Cluster {
            shards,
            dirs,
            remote,
            _zookeeper: zookeeper,
        }
    }

    fn extra(zookeeper: u16) -> String {
        format!(
            "<zookeeper><node><host>127.0.0.1</host><port>{zookeeper}</port></node>\
             <session_timeout_ms>120000</session_timeout_ms><operation_timeout_ms>30000</operation_timeout_ms></zookeeper>\
             <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>"
        )
    }

    /// A `clickhouse://` store URL for a new, empty database, through shard 1.
    pub fn fresh_database_url(&self) -> String {
        self.shards[0].fresh_database_url()
    }

    /// Starts shard `i` again (same directory, ports and data).
    pub fn restart(&mut self, i: usize) {
        let (http, tcp) = (self.shards[i].http_port, self.shards[i].tcp_port);
        self.shards[i].stop();
        self.shards[i] = ClickHouseServer::start_configured(
            self.dirs[i].path(),
            &self.remote,
            &Self::extra(self._zookeeper.port),
            http,
            tcp,
        );
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

/// The test binary's shared two-shard cluster, started on first use.
pub fn shared_cluster() -> &'static Cluster {
    static CLUSTER: std::sync::OnceLock<Cluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}
