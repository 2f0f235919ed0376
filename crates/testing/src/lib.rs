//! Test support shared by the store's conformance suite and the end-to-end tests: real
//! `etcd` processes on free loopback ports, each in its own temporary directory, killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// The `etcd` binary: `$ETCD_BIN`, else `etcd` on PATH (Debian's `etcd-server`).
pub fn etcd_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

/// etcd's command-line client (`ETCDCTL_BIN`, else `etcdctl` on PATH).
pub fn etcdctl_binary() -> PathBuf {
    std::env::var_os("ETCDCTL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcdctl"))
}

/// Client TLS material for an etcd started with [`EtcdServer::start_tls`].
pub struct EtcdTlsFiles {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// A real single-member etcd on loopback.
pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<EtcdTlsFiles>,
}

impl EtcdServer {
    /// Starts etcd (plain HTTP on loopback) and waits until it answers.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts etcd that requires TLS with client certificates.
    pub fn start_tls() -> Self {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let tls = tls.then(|| write_pki(dir.path()));
        let mut server = Self {
            child: None,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            tls,
        };
        server.spawn();
        server
    }

    /// `http(s)://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn tls(&self) -> Option<&EtcdTlsFiles> {
        self.tls.as_ref()
    }

    /// Kills etcd with SIGKILL (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `etcdctl snapshot save FILE`: etcd's own online backup of this member.
    pub fn snapshot_save(&self, file: &Path) {
        let out = Command::new(etcdctl_binary())
            .arg(format!("--endpoints={}", self.endpoint()))
            .args(["snapshot", "save"])
            .arg(file)
            .env("ETCDCTL_API", "3")
            .output()
            .unwrap_or_else(|e| panic!("etcdctl (apt-get install etcd-client): {e}"));
        assert!(
            out.status.success(),
            "etcdctl snapshot save: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kills etcd, replaces its data directory with `etcdctl snapshot restore FILE` (etcd's
    /// documented restore, as the same single member) and starts it again on the same ports.
    pub fn restore_from(&mut self, file: &Path) {
        self.kill();
        let data = self.dir.path().join("data");
        let _ = std::fs::remove_dir_all(&data);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let out = Command::new(etcdctl_binary())
            .args(["snapshot", "restore"])
            .arg(file)
            .arg(format!("--data-dir={}", data.display()))
            .args(["--name=test", &format!("--initial-cluster=test={peer}")])
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .env("ETCDCTL_API", "3")
            .output()
            .unwrap_or_else(|e| panic!("etcdctl (apt-get install etcd-client): {e}"));
        assert!(
            out.status.success(),
            "etcdctl snapshot restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.spawn();
    }

    fn spawn(&mut self) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut cmd = etcd_command(
            "test",
            self.dir.path(),
            &self.endpoint(),
            &peer,
            &format!("test={peer}"),
        );
        if let Some(tls) = &self.tls {
            let dir = self.dir.path();
            cmd.arg(format!("--cert-file={}", dir.join("server.crt").display()))
                .arg(format!("--key-file={}", dir.join("server.key").display()))
                .arg(format!("--trusted-ca-file={}", tls.ca.display()))
                .arg("--client-cert-auth");
        }
        self.child = Some(spawn_etcd(&mut cmd));
        wait_listening(&mut self.child, self.dir.path(), self.client_port);
    }
}

/// The etcd command for member `name` with its data and log in `dir`, serving clients at
/// `client` and peers at `peer`, in a cluster of `initial_cluster` (`name=peer-url,…`; only
/// read when the data directory is new).
fn etcd_command(
    name: &str,
    dir: &Path,
    client: &str,
    peer: &str,
    initial_cluster: &str,
) -> Command {
    let mut cmd = Command::new(etcd_binary());
    cmd.arg(format!("--name={name}"))
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client}"))
        .arg(format!("--advertise-client-urls={client}"))
        .arg(format!("--listen-peer-urls={peer}"))
        .arg(format!("--initial-advertise-peer-urls={peer}"))
        .arg(format!("--initial-cluster={initial_cluster}"))
        // Kubernetes objects go up to 1.5 MiB; etcd's default request cap is exactly that,
        // which a 1.5 MiB value plus its key would exceed.
        .arg("--max-request-bytes=10485760")
        .arg("--quota-backend-bytes=8589934592")
        .arg("--log-level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("etcd.log"))
                .unwrap_or_else(|e| panic!("etcd log: {e}")),
        ));
    cmd
}

fn spawn_etcd(cmd: &mut Command) -> Child {
    cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "start {:?} (apt-get install etcd-server): {e}",
            etcd_binary()
        )
    })
}

/// Waits until etcd listens on `port`; panics with its log if it exits first.
fn wait_listening(child: &mut Option<Child>, dir: &Path, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = format!("127.0.0.1:{port}");
    while Instant::now() < deadline {
        if let Some(child) = child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            let log = std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default();
            panic!("etcd exited early ({status}): {log}");
        }
        if std::net::TcpStream::connect(&addr).is_ok() {
            // The port opens slightly before etcd serves; a short pause avoids flakes.
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("etcd did not start listening on {addr}");
}

/// A real etcd cluster of several members on loopback (plain HTTP), each in its own
/// directory: members can be killed, restarted on their data, or frozen (SIGSTOP: cut off
/// from clients and peers alike, as a partition of that member would).
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
}

struct Member {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Member {
    fn name(&self) -> String {
        format!("m{}", self.peer_port)
    }

    fn client(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    fn peer(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

impl EtcdCluster {
    /// Starts `size` members and waits until each listens.
    pub fn start(size: usize) -> Self {
        let members: Vec<Member> = (0..size)
            .map(|_| Member {
                child: None,
                dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
                client_port: free_port(),
                peer_port: free_port(),
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name(), m.peer()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            members,
            initial_cluster,
        };
        // All first: a member waits for a quorum before it serves.
        for i in 0..size {
            cluster.spawn(i);
        }
        for m in &mut cluster.members {
            wait_listening(&mut m.child, m.dir.path(), m.client_port);
        }
        cluster
    }

    /// Every member's client URL, comma-separated (`--etcd-servers`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Member::client)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let m = &mut self.members[i];
        let mut cmd = etcd_command(
            &m.name(),
            m.dir.path(),
            &m.client(),
            &m.peer(),
            &self.initial_cluster,
        );
        m.child = Some(spawn_etcd(&mut cmd));
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data directory (it rejoins and catches up).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        let m = &mut self.members[i];
        wait_listening(&mut m.child, m.dir.path(), m.client_port);
    }

    /// Freezes (`true`: SIGSTOP) or thaws (SIGCONT) member `i`.
    pub fn freeze(&mut self, i: usize, frozen: bool) {
        if let Some(child) = &self.members[i].child {
            let signal = if frozen { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.freeze(i, false);
            self.kill(i);
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn write_pki(dir: &Path) -> EtcdTlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let fail = |e: rcgen::Error| -> ! { panic!("generate test certificates: {e}") };
    let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(e));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(e));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap_or_else(|e| fail(e));
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap_or_else(|e| fail(e));
        let params = CertificateParams::new(names).unwrap_or_else(|e| fail(e));
        let cert = params.signed_by(&key, &issuer).unwrap_or_else(|e| fail(e));
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["kplex".into()]);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap_or_else(|e| panic!("write {name}: {e}"));
        path
    };
    write("server.crt", &server_cert);
    write("server.key", &server_key);
    EtcdTlsFiles {
        ca: write("ca.crt", &ca_cert.pem()),
        client_cert: write("client.crt", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

/// A small deterministic generator (xorshift) for dependency-free fuzzing in tests: a seed
/// replays a failure exactly.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
