//! A `kplex start` child process on a temporary root, shared by the benches that load kplex
//! over the API, and what they read about it from outside: RSS and store size.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use http::{Method, StatusCode};

use super::client::Client;

/// Which `kplex` binary the benches start.
#[derive(Args)]
pub struct KplexBinary {
    /// The `kplex` binary to start (default: `kplex` next to this executable, i.e. in the
    /// same target directory).
    #[arg(long, env = "KPLEX_BINARY")]
    kplex_binary: Option<PathBuf>,
}

impl KplexBinary {
    /// The path to start: the one given, or `kplex` beside this executable.
    pub(super) fn path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.kplex_binary {
            return Ok(path.clone());
        }
        let me = std::env::current_exe().context("find this executable")?;
        let path = me.with_file_name(format!("kplex{}", std::env::consts::EXE_SUFFIX));
        anyhow::ensure!(
            path.is_file(),
            "no kplex binary at {}: build it beside kplex-bench \
             (cargo build --release -p kplex -p kplex-bench) or pass --kplex-binary",
            path.display()
        );
        Ok(path)
    }
}

/// A `kplex start` child on a temporary root.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    pub started_in: Duration,
    binary: std::path::PathBuf,
    args: Vec<std::ffi::OsString>,
}

fn spawn(binary: &Path, args: &[std::ffi::OsString]) -> anyhow::Result<Child> {
    let mut cmd = Command::new(binary);
    cmd.args(args);
    logged(&mut cmd, "kplex")?;
    cmd.spawn()
        .with_context(|| format!("spawn {} start", binary.display()))
}

/// A child's logs: discarded, unless `KPLEX_BENCH_LOGS` names a directory — then appended
/// to `<dir>/<name>-<pid of the bench>.log` at `KPLEX_BENCH_RUST_LOG` (default `info`), to
/// see what the processes did during a run.
pub fn logged(cmd: &mut Command, name: &str) -> anyhow::Result<()> {
    cmd.stdout(Stdio::null());
    let Some(dir) = std::env::var_os("KPLEX_BENCH_LOGS") else {
        cmd.env("RUST_LOG", "warn").stderr(Stdio::null());
        return Ok(());
    };
    let filter = std::env::var("KPLEX_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
    let path = Path::new(&dir).join(format!("{name}-{}.log", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    cmd.env("RUST_LOG", filter).stderr(file);
    Ok(())
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    pub async fn start(kplex: &KplexBinary, etcd: &[String]) -> anyhow::Result<Self> {
        Self::start_with(kplex, etcd, &[]).await
    }

    /// [`Server::start`] with extra `kplex start` arguments.
    pub async fn start_with(
        kplex: &KplexBinary,
        etcd: &[String],
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let binary = kplex.path()?;
        eprintln!("starting {} start …", binary.display());
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut args: Vec<std::ffi::OsString> = vec![
            "start".into(),
            "--root-directory".into(),
            dir.path().into(),
            "--secure-port".into(),
            port.to_string().into(),
        ];
        if !etcd.is_empty() {
            args.extend(["--etcd-servers".into(), etcd.join(",").into()]);
        }
        args.extend(extra.iter().map(Into::into));
        let started = Instant::now();
        let child = spawn(&binary, &args)?;
        let mut server = Self {
            child,
            dir,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            started_in: Duration::ZERO,
            binary,
            args,
        };
        server.wait_ready(started).await?;
        Ok(server)
    }

    /// Another replica of this server: a `kplex start` on a copy of its root directory (the
    /// replica contract: CA, keys, credentials) and a port of its own, with the same
    /// arguments otherwise (the same etcd).
    pub async fn replica(&self) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        for entry in std::fs::read_dir(self.dir.path())? {
            let path = entry?.path();
            if path.is_file()
                && let Some(name) = path.file_name()
            {
                std::fs::copy(&path, dir.path().join(name))?;
            }
        }
        let port = free_port()?;
        let mut args = self.args.clone();
        for (i, flag) in self.args.iter().enumerate() {
            let value = match flag.to_str() {
                Some("--root-directory") => dir.path().into(),
                Some("--secure-port") => port.to_string().into(),
                _ => continue,
            };
            if let Some(slot) = args.get_mut(i + 1) {
                *slot = value;
            }
        }
        let started = Instant::now();
        let child = spawn(&self.binary, &args)?;
        let mut server = Self {
            child,
            dir,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            started_in: Duration::ZERO,
            binary: self.binary.clone(),
            args,
        };
        server.wait_ready(started).await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Kills the server (SIGKILL, as a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same root and port; `started_in` is
    /// then the time from the kill until it is ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.binary, &self.args)?;
        self.wait_ready(started).await
    }

    async fn wait_ready(&mut self, started: Instant) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            anyhow::ensure!(Instant::now() < deadline, "kplex did not become ready");
            if let Ok(client) = self.client(1).await
                && let Ok((StatusCode::OK, _)) = client
                    .send(Method::GET, "/readyz", None, Bytes::new())
                    .await
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.started_in = started.elapsed();
        Ok(())
    }

    pub async fn client(&self, connections: usize) -> anyhow::Result<Client> {
        let ca = std::fs::read_to_string(self.dir.path().join("ca.crt"))?;
        let token = std::fs::read_to_string(self.dir.path().join("admin.token"))?
            .trim()
            .to_string();
        Client::connect(self.addr, &ca, Some(token), connections).await
    }

    /// A kubeconfig (admin) for the logical cluster at `path` (e.g. `root:compute`).
    pub fn kubeconfig(&self, path: &str) -> anyhow::Result<String> {
        use base64::Engine;
        let ca = std::fs::read(self.dir.path().join("ca.crt"))?;
        let token = std::fs::read_to_string(self.dir.path().join("admin.token"))?;
        let ca = base64::engine::general_purpose::STANDARD.encode(ca);
        Ok(format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://{}/clusters/{path}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            self.addr,
            token.trim()
        ))
    }

    /// The child's resident set size.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(
            &Path::new("/proc")
                .join(self.child.id().to_string())
                .join("status"),
        )
    }

    /// CPU time (user + system) the child has used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(
            &Path::new("/proc")
                .join(self.child.id().to_string())
                .join("stat"),
        )
    }

    /// Size of the embedded store's file; None when kplex runs on etcd.
    pub fn store_bytes(&self) -> Option<u64> {
        std::fs::metadata(self.dir.path().join("store.db"))
            .ok()
            .map(|m| m.len())
    }
}

pub fn rss_kib(status: &Path) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime from a `/proc/<pid>/stat` file, in USER_HZ ticks (100 per second on every
/// Linux architecture we run on).
pub fn cpu_time(stat: &Path) -> Duration {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // Fields after the command name, which may itself hold spaces and parentheses.
    let fields: Vec<u64> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// Sends one request; fails unless it is answered with `want`.
pub async fn expect(
    client: &Client,
    method: Method,
    path: &str,
    body: Bytes,
    want: StatusCode,
) -> anyhow::Result<Bytes> {
    let ct = (!body.is_empty()).then_some("application/json");
    expect_typed(client, method, path, ct, body, want).await
}

/// [`expect`] with a body of `content_type` (a patch's, a snapshot file's).
pub async fn expect_typed(
    client: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
    want: StatusCode,
) -> anyhow::Result<Bytes> {
    let (status, resp) = client.send(method, path, content_type, body).await?;
    anyhow::ensure!(
        status == want,
        "{path}: {status}: {}",
        String::from_utf8_lossy(&resp)
    );
    Ok(resp)
}
