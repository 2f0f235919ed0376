//! End-to-end harness: a real `kplex` process (embedded store or a real etcd) on a free
//! loopback port, in its own temporary root, driven by the real `/usr/bin/kubectl` with its
//! own HOME (so discovery caches never leak between tests).

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use kplex_testing::{EtcdServer, free_port};

/// RBAC that lets every authenticated user into the root workspace and ask who they are
/// (what kube's system:basic-user grants).
/// kubectl's flag that leaves out the CA ConfigMap every namespace has (as in kube), for
/// tests that list a namespace's ConfigMaps exactly.
pub const NOT_ROOT_CA: &str = "--field-selector=metadata.name!=kube-root-ca.crt";

pub const WHOAMI: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: whoami}
rules:
- {apiGroups: [authentication.k8s.io], resources: [selfsubjectreviews], verbs: [create]}
- {nonResourceURLs: ["/"], verbs: [access]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: whoami}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: whoami}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:authenticated"}
"#;

/// Which store a test's kplex runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Embedded,
    Etcd,
}

/// The APIResourceSchema of the widgets.example.dev API the provider tests export.
pub const WIDGETS_SCHEMA: &str = r#"
apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata: {name: v1.widgets.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      type: object
      properties:
        spec:
          type: object
          description: WidgetSpec is what the user wants.
          properties:
            size: {type: integer, description: size of the widget in units.}
        status:
          type: object
          properties:
            ready: {type: boolean}
"#;

pub struct Kplex {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    etcd: Option<EtcdServer>,
    /// The etcd a replica shares with the process it was copied from.
    shared_etcd: Option<String>,
    /// Extra `kplex start` arguments (see [`Kplex::start_with_args`]).
    extra_args: Vec<String>,
}

pub fn kubectl_binary() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/kubectl"))
}

impl Kplex {
    pub fn start(backend: Backend) -> Self {
        Self::start_with_args(backend, &[])
    }

    /// Like [`Kplex::start`], with extra `kplex start` arguments (kept across restarts).
    pub fn start_with_args(backend: Backend, args: &[&str]) -> Self {
        let etcd = matches!(backend, Backend::Etcd).then(EtcdServer::start);
        let mut k = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            etcd,
            shared_etcd: None,
            extra_args: args.iter().map(|a| a.to_string()).collect(),
        };
        std::fs::create_dir_all(k.home()).unwrap();
        k.spawn();
        k
    }

    /// A kplex on an etcd someone else runs (`endpoints`: `--etcd-servers`, e.g. a cluster's
    /// members), with extra `kplex start` arguments; its replicas share it.
    pub fn start_on_etcd(endpoints: &str, args: &[&str]) -> Self {
        let mut k = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            etcd: None,
            shared_etcd: Some(endpoints.to_string()),
            extra_args: args.iter().map(|a| a.to_string()).collect(),
        };
        std::fs::create_dir_all(k.home()).unwrap();
        k.spawn();
        k
    }

    /// Kills kplex with SIGKILL (a crash); [`Kplex::restart`] starts it again.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A replica: a second process started from a copy of this one's root directory (CA,
    /// serving certificate, service-account key, admin credentials) on the same etcd, with
    /// the same extra arguments — the replica contract.
    pub fn replica(&self) -> Self {
        let endpoint = self
            .etcd
            .as_ref()
            .map(|e| e.endpoint())
            .or_else(|| self.shared_etcd.clone())
            .unwrap_or_else(|| panic!("replicas need etcd"));
        let mut k = Self {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            etcd: None,
            shared_etcd: Some(endpoint),
            extra_args: self.extra_args.clone(),
        };
        std::fs::create_dir_all(k.home()).unwrap();
        std::fs::create_dir_all(k.root()).unwrap();
        for entry in std::fs::read_dir(self.root()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, k.root().join(path.file_name().unwrap())).unwrap();
            }
        }
        k.spawn();
        k
    }

    /// The kplex process id (for /proc readings).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.root().join("admin.kubeconfig")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.root().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kplex"));
        cmd.arg("start")
            .arg("--root-directory")
            .arg(self.root())
            .arg("--secure-port")
            .arg(self.port.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.dir.path().join("kplex.log")).unwrap(),
            ));
        if let Some(endpoint) = self
            .etcd
            .as_ref()
            .map(|e| e.endpoint())
            .or(self.shared_etcd.clone())
        {
            cmd.arg("--etcd-servers").arg(endpoint);
        }
        cmd.args(&self.extra_args);
        self.child = Some(cmd.spawn().unwrap());
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("kplex exited ({status}): {}", self.log());
            }
            // Probing readiness only: whatever certificate the server was given to serve.
            if self.kubeconfig().exists()
                && self
                    .curl(&[
                        "--insecure",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        &self.url("/readyz"),
                    ])
                    .0
                    == "200"
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("kplex did not become ready: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kplex.log")).unwrap_or_default()
    }

    /// Restarts (as [`Kplex::restart`]) with these extra `kplex start` arguments instead.
    /// The etcd this kplex was started on (`Backend::Etcd`).
    pub fn etcd_mut(&mut self) -> &mut EtcdServer {
        self.etcd
            .as_mut()
            .unwrap_or_else(|| panic!("kplex was not started on its own etcd"))
    }

    pub fn restart_with_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|a| a.to_string()).collect();
        self.restart();
    }

    /// Stops kplex with SIGTERM (graceful) and starts it again on the same root and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_binary());
        cmd.args(args)
            .env("PATH", plugin_path())
            .env("KUBECONFIG", self.kubeconfig())
            .env("HOME", self.home())
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args).output().unwrap()
    }

    /// Runs kubectl and returns stdout; panics with stderr when it fails.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}\nkplex log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// kubectl with `input` on stdin (e.g. `apply -f -`).
    #[track_caller]
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = output_with_stdin(&mut self.kubectl_command(args), input);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubectl with `input` on stdin, expecting failure; returns stderr.
    #[track_caller]
    pub fn fails_stdin(&self, args: &[&str], input: &str) -> String {
        let out = output_with_stdin(&mut self.kubectl_command(args), input);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// A kubectl process left running (e.g. `get -w`), with stdout piped.
    pub fn spawn_kubectl(&self, args: &[&str]) -> Child {
        self.kubectl_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// curl against the server with the admin token; returns (stdout, stderr).
    pub fn curl(&self, args: &[&str]) -> (String, String) {
        let ca = self.root().join("ca.crt");
        let mut cmd = Command::new("curl");
        cmd.arg("-sS").arg("--cacert").arg(&ca);
        if let Ok(token) = std::fs::read_to_string(self.root().join("admin.token")) {
            cmd.arg("-H")
                .arg(format!("Authorization: Bearer {}", token.trim()));
        }
        let out = cmd.args(args).output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// (HTTP code, body) of a request with a body.
    pub fn http(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
        let file = self.dir.path().join(format!("body-{}", rand_suffix()));
        std::fs::write(&file, body).unwrap();
        let (out, err) = self.curl(&[
            "-X",
            method,
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            &format!("@{}", file.display()),
            "-w",
            "\n%{http_code}",
            &self.url(path),
        ]);
        let (body, code) = out
            .rsplit_once('\n')
            .unwrap_or_else(|| panic!("curl: {err}"));
        let code: u16 = code.trim().parse().unwrap_or(0);
        assert!(
            code != 0,
            "{method} {path}: no response in {out:?}; curl: {err}"
        );
        (code, body.to_string())
    }

    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

impl Drop for Kplex {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` until it returns Some, or panics after `secs`.
#[track_caller]
/// Runs `cmd` with `input` on its stdin; its stdout and stderr are captured.
pub fn output_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// What a sync target's agent sends: a heartbeat (a Ready target takes new namespaces).
pub fn heartbeat(k: &Kplex, workspace: &str, target: &str) {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let now = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let patch = format!(r#"{{"status":{{"lastSyncerHeartbeatTime":"{now}"}}}}"#);
    ws_ok(
        k,
        workspace,
        &[
            "patch",
            "synctarget",
            target,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch,
        ],
    );
}

/// PATH with this build's kubectl plugins (`kubectl ws`, `kubectl kplex`) first.
pub fn plugin_path() -> std::ffi::OsString {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-kplex"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap_or_default()
}

pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// kubectl against one workspace (`--server …/clusters/<path>`).
pub fn in_ws(k: &Kplex, path: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["--server".to_string(), k.url(&format!("/clusters/{path}"))];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

pub fn ws_ok(k: &Kplex, path: &str, args: &[&str]) -> String {
    let v = in_ws(k, path, args);
    k.ok(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

pub fn ws_fails(k: &Kplex, path: &str, args: &[&str]) -> String {
    let v = in_ws(k, path, args);
    k.fails(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

pub fn ws_ok_stdin(k: &Kplex, path: &str, args: &[&str], input: &str) -> String {
    let v = in_ws(k, path, args);
    k.ok_stdin(&v.iter().map(String::as_str).collect::<Vec<_>>(), input)
}

/// Whether kubectl succeeds in workspace `path` (e.g. `get` of something that may be gone).
pub fn ws_succeeds(k: &Kplex, path: &str, args: &[&str]) -> bool {
    let v = in_ws(k, path, args);
    k.kubectl(&v.iter().map(String::as_str).collect::<Vec<_>>())
        .status
        .success()
}

/// Replaces the finalizers of `resource/name` in workspace `path` (none: removes them all).
pub fn set_finalizers(k: &Kplex, path: &str, resource: &str, name: &str, finalizers: &[&str]) {
    let value = if finalizers.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(finalizers)
    };
    let patch = serde_json::json!({"metadata": {"finalizers": value}}).to_string();
    ws_ok(
        k,
        path,
        &["patch", resource, name, "--type=merge", "-p", &patch],
    );
}

pub fn create_workspace(k: &Kplex, parent: &str, name: &str, type_: Option<&str>) {
    let spec = type_
        .map(|t| format!("spec: {{type: {{name: {t}}}}}\n"))
        .unwrap_or_default();
    ws_ok_stdin(
        k,
        parent,
        &["create", "-f", "-"],
        &format!(
            "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {{name: {name}}}\n{spec}"
        ),
    );
    eventually(20, &format!("workspace {name} to be Ready"), || {
        let phase = ws_ok(
            k,
            parent,
            &["get", "workspace", name, "-o", "jsonpath={.status.phase}"],
        );
        (phase == "Ready").then_some(())
    });
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Expands to one test per backend for each listed test function `fn(&Kplex)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $case() { let k = $crate::common::Kplex::start($crate::common::Backend::Embedded); super::$case(&k); } )*
        }
        mod etcd {
            $( #[test] fn $case() { let k = $crate::common::Kplex::start($crate::common::Backend::Etcd); super::$case(&k); } )*
        }
    };
}

/// An answer to a raw request: status code and (de-chunked) body.
pub struct Answer {
    pub code: u16,
    pub body: Vec<u8>,
}

/// A bare HTTP/1.1-over-TLS client: one connection per request, any bytes on the wire, any
/// client certificate — for tests of what kubectl cannot send.
pub struct Raw {
    tls: std::sync::Arc<rustls::ClientConfig>,
    port: u16,
}

impl Raw {
    /// Trusts kplex's CA; presents no client certificate.
    pub fn new(k: &Kplex) -> Self {
        Self::with_config(k, |b| b.with_no_client_auth())
    }

    /// Trusts kplex's CA; `auth` picks the client certificate (if any).
    pub fn with_config(
        k: &Kplex,
        auth: impl FnOnce(
            rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>,
        ) -> rustls::ClientConfig,
    ) -> Self {
        let pem = std::fs::read(k.root().join("ca.crt")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = auth(builder);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: std::sync::Arc::new(config),
            port: k.port,
        }
    }

    /// Sends one request (`Connection: close`); None when no HTTP answer came back.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Option<Answer> {
        use std::io::Read;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).unwrap();
        let tcp = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(body);
        // The server may answer (413, 401) before reading everything: a failed write is fine.
        let _ = stream.write_all(&wire);
        let _ = stream.flush();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        parse_response(&raw)
    }
}

fn parse_response(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Some(Answer { code, body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..(start + size).min(b.len())]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// A small HTTPS server run by a test (self-signed certificate for 127.0.0.1): webhooks,
/// an OIDC issuer. `handler(path, body)` gives (status, JSON body).
pub struct HttpsServer {
    pub addr: std::net::SocketAddr,
    /// The certificate, to trust it.
    pub ca_pem: String,
    _runtime: tokio::runtime::Runtime,
}

/// A handler that also sees the request's headers: (path, headers, body) → (status, body).
pub type HeaderHandler = fn(&str, &hyper::HeaderMap, &[u8]) -> (u16, Vec<u8>);

/// A test server's answer to (path, request headers, body): (status, JSON body).
type Handler =
    std::sync::Arc<dyn Fn(&str, &hyper::HeaderMap, &[u8]) -> (u16, Vec<u8>) + Send + Sync>;

impl HttpsServer {
    pub fn start(handler: fn(&str, &[u8]) -> (u16, Vec<u8>)) -> Self {
        Self::serve(std::sync::Arc::new(move |path, _, body| {
            handler(path, body)
        }))
    }

    /// A server whose handler also sees the request's headers.
    pub fn start_with_headers(handler: HeaderHandler) -> Self {
        Self::serve(std::sync::Arc::new(handler))
    }

    fn serve(handler: Handler) -> Self {
        use http_body_util::BodyExt;
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert_pem = cert.cert.pem();
        let certs = rustls_pemfile::certs(&mut cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pemfile::private_key(&mut cert.signing_key.serialize_pem().as_bytes())
            .unwrap()
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let handler = handler.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let headers = req.headers().clone();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let (code, reply) = handler(&path, &headers, &body);
                                let mut resp = hyper::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from(reply),
                                ));
                                *resp.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            ca_pem: cert_pem,
            _runtime: runtime,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// Standard base64 with padding (tests need no crate for it).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `kube` crate's configuration for `k`'s admin at workspace `path` (`/clusters/<path>`),
/// from its kubeconfig.
pub async fn kube_config(k: &Kplex, path: &str) -> kube::Config {
    let kubeconfig = kube::config::Kubeconfig::read_from(k.kubeconfig()).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some("base".into()),
        ..Default::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    config.cluster_url = k.url(path).parse().unwrap();
    config
}

/// Waits (10 s at most) until APIBinding `name` in `path` is Bound.
pub fn wait_bound(k: &Kplex, path: &str, name: &str) {
    eventually(
        10,
        &format!("APIBinding {name} in {path} to be Bound"),
        || {
            let phase = ws_ok(
                k,
                path,
                &["get", "apibinding", name, "-o", "jsonpath={.status.phase}"],
            );
            (phase == "Bound").then_some(())
        },
    );
}
