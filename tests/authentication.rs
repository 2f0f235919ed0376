//! Authentication end to end: a real `kplex start` with a token file, real kubectl and curl.
//! Client certificates (signed by the root directory's CA, and by a foreign one), static
//! tokens, anonymous requests, impersonation, SelfSubjectReview and TokenReview.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

const TOKENS: &str = "\
alice-token,alice,1001,\"dev,ops\"
bob-token,bob,1002
";

/// A kplex started with `--token-auth-file` (the shared harness has no such flag).
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = kplex_testing::free_port();
        let tokens = dir.path().join("tokens.csv");
        std::fs::write(&tokens, TOKENS).unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kplex"))
            .arg("start")
            .arg("--root-directory")
            .arg(dir.path().join("root"))
            .arg("--secure-port")
            .arg(port.to_string())
            .arg("--token-auth-file")
            .arg(&tokens)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("kplex.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let mut server = Self { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("kplex exited ({status}): {}", server.log());
            }
            if server.root().join("admin.kubeconfig").exists()
                && server
                    .curl(&[
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        &server.url("/readyz"),
                    ])
                    .0
                    == "200"
            {
                server.grant_whoami();
                return server;
            }
            assert!(Instant::now() < deadline, "not ready: {}", server.log());
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Lets every authenticated user into the root workspace and ask who they are (what
    /// kube's system:basic-user grants), whatever authorization is in force.
    fn grant_whoami(&self) {
        let file = self.dir.path().join("whoami.yaml");
        std::fs::write(&file, common::WHOAMI).unwrap();
        let out = self.kubectl(
            &self.root().join("admin.kubeconfig"),
            &["apply", "-f", file.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kplex.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.root().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// curl trusting the server's CA, with no credentials but those in `args`; (stdout, code).
    fn curl(&self, args: &[&str]) -> (String, String) {
        let out = Command::new("curl")
            .arg("-sS")
            .arg("--cacert")
            .arg(self.root().join("ca.crt"))
            .args(args)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// (HTTP code, body) of a GET or a JSON POST with extra curl arguments (credentials).
    fn request(&self, creds: &[&str], path: &str, post: Option<&Value>) -> (u16, String) {
        let mut args: Vec<String> = creds.iter().map(|s| s.to_string()).collect();
        if let Some(body) = post {
            args.extend([
                "-X".into(),
                "POST".into(),
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                body.to_string(),
            ]);
        }
        args.extend(["-w".into(), "\n%{http_code}".into(), self.url(path)]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, err) = self.curl(&args);
        let (body, code) = out
            .rsplit_once('\n')
            .unwrap_or_else(|| panic!("curl: {err}"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// A kubeconfig for `user` (YAML `user:` body), pointing at the root workspace.
    fn kubeconfig(&self, name: &str, user: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        let ca = self.root().join("ca.crt");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: k\n  context: {{cluster: k, user: u}}\ncurrent-context: k\nusers:\n- name: u\n  user:\n{user}",
                self.url("/clusters/root"),
                ca.display()
            ),
        )
        .unwrap();
        path
    }

    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(common::kubectl_binary())
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .output()
            .unwrap()
    }

    /// `kubectl auth whoami -o json` → (username, groups).
    #[track_caller]
    fn whoami(&self, kubeconfig: &Path, extra: &[&str]) -> (String, Vec<String>) {
        let mut args = vec!["auth", "whoami", "-o", "json"];
        args.extend_from_slice(extra);
        let out = self.kubectl(kubeconfig, &args);
        assert!(
            out.status.success(),
            "whoami failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let review: Value = serde_json::from_slice(&out.stdout).unwrap();
        let info = &review["status"]["userInfo"];
        let groups = info["groups"]
            .as_array()
            .map(|g| g.iter().map(|g| g.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        (info["username"].as_str().unwrap().to_string(), groups)
    }

    /// A client certificate and key written under the test directory; `ca` signs it.
    fn client_cert(
        &self,
        name: &str,
        cn: &str,
        orgs: &[&str],
        ca: &Issuer<'_, KeyPair>,
    ) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        // rcgen keeps one value per attribute type: the second O goes in by its OID.
        if let Some(o) = orgs.first() {
            params.distinguished_name.push(DnType::OrganizationName, *o);
        }
        if let Some(o) = orgs.get(1) {
            params
                .distinguished_name
                .push(DnType::CustomDnType(vec![2, 5, 4, 10]), *o);
        }
        let cert = params.signed_by(&key, ca).unwrap();
        let (crt, key_path) = (
            self.dir.path().join(format!("{name}.crt")),
            self.dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (crt, key_path)
    }

    fn root_ca(&self) -> Issuer<'static, KeyPair> {
        let pem = |f: &str| std::fs::read_to_string(self.root().join(f)).unwrap();
        Issuer::from_ca_cert_pem(&pem("ca.crt"), KeyPair::from_pem(&pem("ca.key")).unwrap())
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn foreign_ca() -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "foreign-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Issuer::new(params, key)
}

fn cert_user(crt: &Path, key: &Path) -> String {
    format!(
        "    client-certificate: {}\n    client-key: {}\n",
        crt.display(),
        key.display()
    )
}

#[test]
fn client_certificates() {
    let s = Server::start();
    // A user certificate signed by the root directory's CA: CN is the user, O the groups.
    let (crt, key) = s.client_cert("carol", "carol", &["dev", "qa"], &s.root_ca());
    let kc = s.kubeconfig("carol", &cert_user(&crt, &key));
    let (name, groups) = s.whoami(&kc, &[]);
    assert_eq!(name, "carol");
    assert_eq!(groups, ["dev", "qa", "system:authenticated"]);
    let out = s.kubectl(&kc, &["auth", "whoami"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("carol") && table.contains("system:authenticated"),
        "{table}"
    );

    // The admin kubeconfig's certificate user is the admin too.
    let admin = s.root().join("admin.kubeconfig");
    let (name, groups) = s.whoami(&admin, &["--user", "kplex-admin-cert"]);
    assert_eq!(name, "kplex-admin");
    assert_eq!(groups, ["system:masters", "system:authenticated"]);
    let out = s.kubectl(&admin, &["--user", "kplex-admin-cert", "get", "namespaces"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Same names, foreign CA: refused (curl sends the certificate whatever the CA hints say).
    let (crt, key) = s.client_cert("mallory", "carol", &["system:masters"], &foreign_ca());
    let (code, body) = s.request(
        &[
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        "/api/v1/namespaces",
        None,
    );
    assert_eq!(code, 401, "{body}");
    let (code, _) = s.request(
        &[
            "--cert",
            crt.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        "/livez",
        None,
    );
    assert_eq!(code, 200);
}

#[test]
fn tokens_and_anonymous() {
    let s = Server::start();
    let kc = s.kubeconfig("alice", "    token: alice-token\n");
    let (name, groups) = s.whoami(&kc, &[]);
    assert_eq!(name, "alice");
    assert_eq!(groups, ["dev", "ops", "system:authenticated"]);
    let (code, body) = s.request(
        &["-H", "Authorization: Bearer alice-token"],
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    );
    assert_eq!(code, 201, "{body}");
    let review: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(review["status"]["userInfo"]["uid"], "1001");

    // Wrong token: 401, also with kubectl.
    let (code, body) = s.request(&["-H", "Authorization: Bearer nope"], "/api", None);
    assert_eq!(code, 401, "{body}");
    let bad = s.kubeconfig("bad", "    token: nope\n");
    let out = s.kubectl(&bad, &["get", "namespaces"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Anonymous: only the probes and the version.
    for path in ["/livez", "/readyz", "/healthz", "/version"] {
        assert_eq!(s.request(&[], path, None).0, 200, "{path}");
    }
    for path in [
        "/api",
        "/apis",
        "/metrics",
        "/api/v1/namespaces",
        "/openapi/v2",
    ] {
        assert_eq!(s.request(&[], path, None).0, 401, "{path}");
    }
}

#[test]
fn impersonation() {
    let s = Server::start();
    let admin = s.root().join("admin.kubeconfig");
    let (name, groups) = s.whoami(&admin, &["--as", "alice"]);
    assert_eq!(name, "alice");
    assert_eq!(groups, ["system:authenticated"]);
    let (name, groups) = s.whoami(&admin, &["--as", "dave", "--as-group", "dev"]);
    assert_eq!(
        (name.as_str(), groups),
        (
            "dave",
            vec!["dev".to_string(), "system:authenticated".into()]
        )
    );
    let out = s.kubectl(
        &admin,
        &[
            "auth", "whoami", "-o", "json", "--as", "erin", "--as-uid", "42",
        ],
    );
    let review: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(review["status"]["userInfo"]["uid"], "42");

    // bob is no master: 403 with kube-apiserver's message.
    let bob = s.kubeconfig("bob", "    token: bob-token\n");
    // kubectl words any refusal of whoami its own way; the status is kube-apiserver's.
    let out = s.kubectl(&bob, &["auth", "whoami", "--as", "alice"]);
    assert!(!out.status.success());
    let out = s.kubectl(&bob, &["get", "namespaces", "--as", "alice"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    let (code, body) = s.request(
        &[
            "-H",
            "Authorization: Bearer bob-token",
            "-H",
            "Impersonate-User: alice",
        ],
        "/api",
        None,
    );
    assert_eq!(code, 403, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["reason"], "Forbidden");
    assert_eq!(status["details"]["kind"], "users");

    // RBAC's `impersonate` verb, in the workspace of the request: bob may act as alice and
    // as group dev, nothing else.
    let grant = s.dir.path().join("impersonate.yaml");
    std::fs::write(
        &grant,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-alice}
rules:
- {apiGroups: [""], resources: [users], resourceNames: [alice], verbs: [impersonate]}
- {apiGroups: [""], resources: [groups], resourceNames: [dev], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-impersonates-alice}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-alice}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
"#,
    )
    .unwrap();
    let out = s.kubectl(&admin, &["apply", "-f", grant.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (name, groups) = s.whoami(&bob, &["--as", "alice", "--as-group", "dev"]);
    assert_eq!(
        (name.as_str(), groups),
        (
            "alice",
            vec!["dev".to_string(), "system:authenticated".into()]
        )
    );
    let out = s.kubectl(&bob, &["get", "namespaces", "--as", "carol"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"users "carol" is forbidden: User "bob" cannot impersonate resource "users""#
        ),
        "{err}"
    );
    let out = s.kubectl(
        &bob,
        &["get", "namespaces", "--as", "alice", "--as-group", "ops"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"groups "ops" is forbidden: User "bob" cannot impersonate resource "groups""#
        ),
        "{err}"
    );
}

#[test]
fn token_review() {
    let s = Server::start();
    let token = s.admin_token();
    let auth = format!("Authorization: Bearer {token}");
    let review = |t: &str| {
        let (code, body) = s.request(
            &["-H", &auth],
            "/apis/authentication.k8s.io/v1/tokenreviews",
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": t}})),
        );
        assert_eq!(code, 201, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let ok = review("alice-token");
    assert_eq!(ok["status"]["authenticated"], true);
    assert_eq!(ok["status"]["user"]["username"], "alice");
    assert_eq!(ok["status"]["user"]["uid"], "1001");
    assert_eq!(
        ok["status"]["user"]["groups"],
        json!(["dev", "ops", "system:authenticated"])
    );
    let admin = review(&token);
    assert_eq!(admin["status"]["user"]["username"], "kplex-admin");
    let bad = review("not-a-token");
    assert_ne!(bad["status"]["authenticated"], true);
    assert_eq!(bad["status"]["user"], json!({}));

    // Create-only: discovery lists them with verb create, and other verbs are refused.
    let (code, body) = s.request(&["-H", &auth], "/apis/authentication.k8s.io/v1", None);
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<_> = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["verbs"].clone()))
        .collect();
    assert!(
        names.contains(&("tokenreviews", json!(["create"]))),
        "{names:?}"
    );
    assert!(
        names.contains(&("selfsubjectreviews", json!(["create"]))),
        "{names:?}"
    );
    let (code, _) = s.request(
        &["-H", &auth],
        "/apis/authentication.k8s.io/v1/tokenreviews",
        None,
    );
    assert_eq!(code, 405);
}

#[test]
fn serving_certificate_from_files() {
    // A CA of the user's and a serving certificate it signed for 127.0.0.1.
    let ca = {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "my-ca");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    };
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "my-server");
    let leaf = params.signed_by(&key, &ca.1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (chain, key_file, ca_file) = (
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        dir.path().join("my-ca.crt"),
    );
    std::fs::write(&chain, format!("{}{}", leaf.pem(), ca.0)).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    std::fs::write(&ca_file, &ca.0).unwrap();
    let k = common::Kplex::start_with_args(
        common::Backend::Embedded,
        &[
            "--tls-cert-file",
            chain.to_str().unwrap(),
            "--tls-private-key-file",
            key_file.to_str().unwrap(),
        ],
    );
    // kubectl with admin.kubeconfig trusts the chain's CA.
    assert!(
        k.ok(&["get", "namespaces", "-o", "name"])
            .contains("namespace/default")
    );
    // The server presents the given certificate: the user's CA verifies it, kplex's does not.
    let probe = |cacert: &Path| {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(cacert)
            .arg(k.url("/version"))
            .output()
            .unwrap()
    };
    let out = probe(&ca_file);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let out = probe(&k.root().join("ca.crt"));
    assert!(
        !out.status.success(),
        "kplex's own CA must not verify the user's certificate"
    );
}
