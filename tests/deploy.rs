//! `deploy/`, used the way an operator uses it: the Kustomize overlays and the Helm chart are
//! rendered by the real `kubectl kustomize` and `helm`, every rendered object is accepted by
//! kplex itself (`kubectl apply --dry-run=server`, strict schema validation), and the pods
//! they describe are then run here as processes — each container's command line, volumes
//! (Secrets, emptyDirs, the volume claim) and environment reproduced in a temporary directory
//! — so that flags, mount paths, probes, the generated keys and the replica contract are
//! checked against a real `kplex start` on a real etcd. The Helm chart is also installed into
//! a kplex workspace; the systemd unit goes through `systemd-analyze verify` and runs its
//! ExecStart; the container recipe is checked against the manifests that run its image.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    Backend, EtcdServer, Kplex, create_workspace, eventually, free_port, kubectl_binary, ws_ok,
};
use serde_json::Value;

/// Where the Kustomize Secrets and the ServiceMonitor expect kplex: the Service's name.
const NAMESPACE: &str = "kplex";

/// The minimal ServiceMonitor CRD the rendered ServiceMonitors are validated against: the
/// fields deploy/ uses, with the types, enums and patterns of the Prometheus Operator's CRD
/// (monitoring.coreos.com_servicemonitors.yaml); structural, so an unknown or misspelt field
/// is refused (kubectl asks for strict field validation).
const SERVICE_MONITOR_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {plural: servicemonitors, singular: servicemonitor, kind: ServiceMonitor, listKind: ServiceMonitorList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          spec:
            type: object
            required: [endpoints, selector]
            properties:
              selector:
                type: object
                properties:
                  matchLabels: {type: object, additionalProperties: {type: string}}
              endpoints:
                type: array
                items:
                  type: object
                  properties:
                    port: {type: string}
                    path: {type: string}
                    scheme: {type: string, enum: [http, https]}
                    interval: {type: string, pattern: '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$'}
                    authorization:
                      type: object
                      properties:
                        type: {type: string}
                        credentials:
                          type: object
                          required: [key]
                          properties: {name: {type: string}, key: {type: string}}
                    tlsConfig:
                      type: object
                      properties:
                        serverName: {type: string}
                        ca:
                          type: object
                          properties:
                            secret:
                              type: object
                              required: [key]
                              properties: {name: {type: string}, key: {type: string}}
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

/// Runs `cmd` to completion within `secs` (killed and failed after), returning its output.
fn run_bounded(cmd: &mut Command, secs: u64) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// Runs `cmd` (at most 120 s), returning stdout; panics with its stderr when it fails.
#[track_caller]
fn run_ok(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, 120);
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` expecting failure; returns stdout and stderr together.
#[track_caller]
fn run_fails(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, 120);
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `kubectl kustomize DIR`, with its own HOME.
fn kustomize(dir: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(kubectl_binary())
            .arg("kustomize")
            .arg(dir)
            .env("HOME", home.path()),
    )
}

/// The first `name` on PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Helm 3: `$HELM` (scripts/test.sh fetches it), else `helm` on PATH.
fn helm_binary() -> PathBuf {
    std::env::var_os("HELM")
        .map(PathBuf::from)
        .or_else(|| on_path("helm"))
        .expect("Helm 3 is needed: set HELM or put helm on PATH (scripts/test.sh fetches it)")
}

/// A `helm` command with its own HOME, cache, configuration and data directories; talking to
/// `k` when given (its admin kubeconfig), else to no cluster at all.
fn helm(home: &Path, k: Option<&Kplex>) -> Command {
    let mut cmd = Command::new(helm_binary());
    cmd.env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env(
            "KUBECONFIG",
            k.map_or_else(|| home.join("no-cluster"), Kplex::kubeconfig),
        );
    cmd
}

/// Runs `deploy/kustomize/generate-secrets.sh` (extra options first) into a new directory
/// under `dir`; returns that directory (kplex-pki/, kplex-metrics/, secrets.yaml).
fn generate_secrets(dir: &Path, options: &[&str]) -> PathBuf {
    let out = dir.join("secrets");
    run_ok(
        Command::new("sh")
            .arg(deploy("kustomize/generate-secrets.sh"))
            .args(options)
            .arg(&out),
    );
    out
}

/// Standard base64 (Secret data), padding and line breaks ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' | b' ' => continue,
            _ => panic!("not base64: {text}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Makes namespace `kplex` and the ServiceMonitor API in workspace `ws` of `k`.
fn prepare_workspace(k: &Kplex, ws: &str) {
    common::ws_ok_stdin(k, ws, &["apply", "-f", "-"], SERVICE_MONITOR_CRD);
    ws_ok(
        k,
        ws,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com",
        ],
    );
    ws_ok(k, ws, &["create", "namespace", NAMESPACE]);
}

/// `kubectl apply --dry-run=server` of `yaml` in workspace `ws`: every object must be
/// accepted (schemas validate, strict fields); returns the objects as kplex would store them.
#[track_caller]
fn dry_run(k: &Kplex, ws: &str, yaml: &str) -> Vec<Value> {
    let out = common::ws_ok_stdin(
        k,
        ws,
        &["apply", "--dry-run=server", "-o", "json", "-f", "-"],
        yaml,
    );
    let answer = common::json(&out);
    let objects = match answer["kind"].as_str() {
        Some("List") => answer["items"].as_array().unwrap().clone(),
        _ => vec![answer],
    };
    let documents = yaml
        .split("\n---")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .count();
    assert_eq!(
        objects.len(),
        documents,
        "kplex should answer one object per rendered document: {out}"
    );
    objects
}

/// The kinds of `objects`, sorted (duplicates kept).
fn kinds(objects: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

fn sorted(kinds: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = kinds.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let mut found = objects.iter().filter(|o| o["kind"] == kind);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(objects)));
    assert!(found.next().is_none(), "more than one {kind}");
    first
}

fn find_named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(objects)))
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Whether every label of `selector` is among `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels[k] == *v)
}

/// Secret data by Secret name and key, decoded.
type Secrets = HashMap<String, HashMap<String, Vec<u8>>>;

fn secrets_of(objects: &[Value]) -> Secrets {
    objects
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .map(|s| {
            let data = s["data"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), base64_decode(str_of(v))))
                .collect();
            (str_of(&s["metadata"]["name"]).to_string(), data)
        })
        .collect()
}

/// What any deployment of kplex must get right, whichever tool rendered it; returns the
/// workload (the StatefulSet or the Deployment).
fn check_wiring(objects: &[Value]) -> Value {
    let workload = objects
        .iter()
        .find(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("no workload in {:?}", kinds(objects)))
        .clone();
    let pod = &workload["spec"]["template"];
    let spec = &pod["spec"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(
        &workload["spec"]["selector"]["matchLabels"],
        labels
    ));
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    // The image's entrypoint (deploy/Containerfile), `kplex start` on the root directory,
    // listening on every address of the pod.
    assert_eq!(c["command"], serde_json::json!(["/usr/local/bin/kplex"]));
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(str_of).collect();
    assert_eq!(args[0], "start");
    for flag in [
        "--root-directory=/var/lib/kplex",
        "--bind-address=0.0.0.0",
        "--secure-port=6443",
        "--token-auth-file=/etc/kplex/metrics/tokens.csv",
    ] {
        assert!(args.contains(&flag), "{flag} missing from {args:?}");
    }
    assert!(args.iter().any(|a| a.starts_with("--shard-external-url=")));
    let port = &c["ports"][0];
    assert_eq!(
        (port["name"].as_str(), port["containerPort"].as_i64()),
        (Some("https"), Some(6443))
    );
    // Probes: kubelet's GETs over HTTPS on the named port.
    for (probe, path) in [
        ("startupProbe", "/livez"),
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(
            (
                get["path"].as_str(),
                get["scheme"].as_str(),
                get["port"].as_str()
            ),
            (Some(path), Some("HTTPS"), Some("https")),
            "{probe}"
        );
    }
    // Requests from the benchmarks, a memory limit.
    for r in ["cpu", "memory"] {
        assert!(c["resources"]["requests"][r].is_string(), "{r} request");
    }
    assert!(c["resources"]["limits"]["memory"].is_string());
    // Non-root, read-only root filesystem, nothing to escalate to (Pod Security "restricted").
    let (psc, csc) = (&spec["securityContext"], &c["securityContext"]);
    assert_eq!(psc["runAsNonRoot"], true);
    assert!(psc["runAsUser"].as_i64().unwrap() > 0);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(spec["automountServiceAccountToken"], false);
    // The Service reaches the pods' https port; the PodDisruptionBudget counts them.
    let service = find(objects, "Service");
    assert!(selects(&service["spec"]["selector"], labels));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "https");
    let pdb = find(objects, "PodDisruptionBudget");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], labels));
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    // The ServiceMonitor scrapes that Service's port over HTTPS with a token, verifying the
    // certificate for the Service's cluster name.
    if let Some(sm) = objects.iter().find(|o| o["kind"] == "ServiceMonitor") {
        assert!(selects(
            &sm["spec"]["selector"]["matchLabels"],
            &service["metadata"]["labels"]
        ));
        let endpoint = &sm["spec"]["endpoints"][0];
        assert_eq!(endpoint["port"], service["spec"]["ports"][0]["name"]);
        assert_eq!(
            (endpoint["scheme"].as_str(), endpoint["path"].as_str()),
            (Some("https"), Some("/metrics"))
        );
        assert_eq!(
            str_of(&endpoint["tlsConfig"]["serverName"]),
            format!(
                "{}.{}.svc",
                str_of(&service["metadata"]["name"]),
                str_of(&service["metadata"]["namespace"])
            )
        );
    }
    workload
}

/// A process standing for one pod of a rendered workload (killed when dropped).
struct Pod {
    child: Option<Child>,
    port: u16,
    /// The local directory mounted at --root-directory.
    root: PathBuf,
    log: PathBuf,
    /// The container's arguments as rendered, with the environment expanded.
    rendered_args: Vec<String>,
    /// The Service's cluster DNS name, which clients verify the certificate for.
    host: String,
    /// The CA that signed the serving certificate (Secret data, as a file).
    ca: PathBuf,
    home: PathBuf,
}

impl Drop for Pod {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The local path `path` inside the container stands for, through `mounts`.
fn local_path(mounts: &[(String, PathBuf)], path: &str) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|(m, _)| path == m || path.starts_with(&format!("{m}/")))
        .max_by_key(|(m, _)| m.len())
        .map(|(m, dir)| dir.join(path[m.len()..].trim_start_matches('/')))
}

/// Starts the first container of `workload`'s pod template as a local process: its volumes
/// under `state` (Secrets from `secrets`, emptyDirs fresh on each start, a volume claim kept
/// across starts), its environment from the rendered ConfigMaps, its arguments with each
/// container path replaced by the local one, and, as a pod network would, its own port on
/// loopback and `etcd` in place of the rendered etcd endpoints. Waits until its readiness
/// probe answers 200.
fn start_pod(
    objects: &[Value],
    workload: &Value,
    secrets: &Secrets,
    state: &Path,
    etcd: Option<&str>,
) -> Pod {
    let spec = &workload["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    let volumes_dir = state.join("volumes");
    let claims: Vec<&str> = workload["spec"]["volumeClaimTemplates"]
        .as_array()
        .map(|t| t.iter().map(|t| str_of(&t["metadata"]["name"])).collect())
        .unwrap_or_default();
    let mut volumes: HashMap<String, PathBuf> = HashMap::new();
    for name in &claims {
        let dir = volumes_dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        volumes.insert(name.to_string(), dir);
    }
    for v in spec["volumes"].as_array().unwrap() {
        let name = str_of(&v["name"]);
        let dir = volumes_dir.join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(secret) = v["secret"]["secretName"].as_str() {
            let data = secrets.get(secret).unwrap_or_else(|| {
                panic!("the pod mounts Secret {secret}, which this installation does not make")
            });
            for (key, bytes) in data {
                std::fs::write(dir.join(key), bytes).unwrap();
            }
        } else {
            assert!(v["emptyDir"].is_object(), "unexpected volume {v}");
        }
        volumes.insert(name.to_string(), dir);
    }
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    for m in c["volumeMounts"].as_array().unwrap() {
        let (name, path) = (str_of(&m["name"]), str_of(&m["mountPath"]));
        let volume = volumes
            .get(name)
            .unwrap_or_else(|| panic!("volumeMount {name} has no volume"));
        match m["subPath"].as_str() {
            Some(sub) => {
                let source = volume.join(sub);
                assert!(
                    source.is_file(),
                    "{path} mounts {sub} of volume {name}, which has no such key"
                );
                let target = local_path(&mounts, path)
                    .unwrap_or_else(|| panic!("{path} is on the read-only root filesystem"));
                let _ = std::fs::remove_file(&target);
                std::fs::copy(&source, &target).unwrap();
            }
            None => mounts.push((path.to_string(), volume.clone())),
        }
    }
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let value = match (&e["value"], &e["valueFrom"]["configMapKeyRef"]) {
            (Value::String(v), _) => v.clone(),
            (_, r) if r.is_object() => {
                let cm = find_named(objects, "ConfigMap", str_of(&r["name"]));
                str_of(&cm["data"][str_of(&r["key"])]).to_string()
            }
            _ => panic!("unsupported env {e}"),
        };
        env.insert(str_of(&e["name"]).to_string(), value);
    }
    let rendered_args: Vec<String> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            env.iter().fold(str_of(a).to_string(), |a, (k, v)| {
                a.replace(&format!("$({k})"), v)
            })
        })
        .collect();
    let port = free_port();
    let mut args = vec![rendered_args[0].clone()];
    for arg in &rendered_args[1..] {
        let (flag, value) = arg
            .split_once('=')
            .unwrap_or_else(|| panic!("{arg}: flags are written --flag=value"));
        let value = match flag {
            "--secure-port" => port.to_string(),
            "--bind-address" => "127.0.0.1".to_string(),
            "--etcd-servers" => etcd.expect("an etcd for --etcd-servers").to_string(),
            _ if value.starts_with('/') => local_path(&mounts, value)
                .unwrap_or_else(|| panic!("{arg}: not on any volume"))
                .display()
                .to_string(),
            _ => value.to_string(),
        };
        args.push(format!("{flag}={value}"));
    }
    assert!(
        etcd.is_none()
            || rendered_args
                .iter()
                .any(|a| a.starts_with("--etcd-servers=")),
        "a pod on etcd needs --etcd-servers"
    );
    let root = local_path(&mounts, "/var/lib/kplex").unwrap();
    let log = state.join(format!("kplex-{port}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let service = find(objects, "Service");
    let host = format!(
        "{}.{}.svc",
        str_of(&service["metadata"]["name"]),
        str_of(&service["metadata"]["namespace"])
    );
    let pki = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "pki")
        .map(|v| str_of(&v["secret"]["secretName"]))
        .unwrap();
    let ca = state.join(format!("ca-{port}.crt"));
    std::fs::write(&ca, &secrets[pki]["ca.crt"]).unwrap();
    let home = state.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut pod = Pod {
        child: Some(child),
        port,
        root,
        log,
        rendered_args,
        host,
        ca,
        home,
    };
    let path = str_of(&c["readinessProbe"]["httpGet"]["path"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pod.probe(path) != 200 {
        if let Some(Ok(Some(status))) = pod.child.as_mut().map(Child::try_wait) {
            panic!("kplex {args:?} exited ({status}):\n{}", pod.log());
        }
        assert!(Instant::now() < deadline, "never ready:\n{}", pod.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    for probe in ["startupProbe", "livenessProbe"] {
        assert_eq!(
            pod.probe(str_of(&c[probe]["httpGet"]["path"])),
            200,
            "{probe}"
        );
    }
    pod
}

impl Pod {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What kubelet's HTTPS probe of `path` gets (kubelet does not verify the certificate).
    fn probe(&self, path: &str) -> u16 {
        let out = Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
            ])
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
    }

    /// curl as a client of the Service: `https://<host>:<port>` (resolved to this pod),
    /// verifying the certificate with the CA; returns (HTTP code, body).
    fn curl_as(&self, host: &str, ca: &Path, token: Option<&str>, path: &str) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code}",
            "--cacert",
        ])
        .arg(ca)
        .arg("--connect-to")
        .arg(format!("{host}:{}:127.0.0.1:{}", self.port, self.port));
        if let Some(token) = token {
            cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
        }
        let out = cmd
            .arg(format!("https://{host}:{}{path}", self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code = code.trim().parse().unwrap_or(0);
        assert!(
            code != 0,
            "https://{host}:{}{path}: {}",
            self.port,
            String::from_utf8_lossy(&out.stderr)
        );
        (code, body.to_string())
    }

    /// kubectl against this pod as a client of the Service (TLS verified for the Service's
    /// name with the installation's CA), in workspace `ws`, with `credentials`.
    fn kubectl(&self, ws: &str, credentials: &[&str], args: &[&str]) -> Output {
        let kubeconfig = self.home.join("empty.kubeconfig");
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
        run_bounded(
            Command::new(kubectl_binary())
                .env("HOME", &self.home)
                .arg(format!("--kubeconfig={}", kubeconfig.display()))
                .arg(format!(
                    "--server=https://127.0.0.1:{}/clusters/{ws}",
                    self.port
                ))
                .arg(format!("--tls-server-name={}", self.host))
                .arg(format!("--certificate-authority={}", self.ca.display()))
                .args(credentials)
                .args(args),
            60,
        )
    }

    #[track_caller]
    fn kubectl_ok(&self, ws: &str, credentials: &[&str], args: &[&str]) -> String {
        let out = self.kubectl(ws, credentials, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} through the pod on {} failed: {}\n{}",
            self.port,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// What an operator sees of a running installation, through one pod: the certificate is
/// valid for the Service's name, Prometheus (as the ServiceMonitor configures it) scrapes
/// /metrics and an anonymous client does not, and the admin token of the PKI Secret works.
fn check_serves(pod: &Pod, objects: &[Value], secrets: &Secrets) {
    let (code, _) = pod.curl_as(&pod.host, &pod.ca, None, "/readyz");
    assert_eq!(code, 200);
    let (code, _) = pod.curl_as(&pod.host, &pod.ca, None, "/metrics");
    assert_eq!(code, 401, "/metrics must not be anonymous");
    let admin = admin(secrets, objects);
    if let Some(sm) = objects.iter().find(|o| o["kind"] == "ServiceMonitor") {
        // As docs/operations.md says: once, in kplex's root workspace (another pod of the
        // installation may have done it already).
        let reader = deploy("metrics-reader.yaml");
        pod.kubectl_ok(
            "root",
            &[&admin],
            &["apply", "-f", reader.to_str().unwrap()],
        );
        let endpoint = &sm["spec"]["endpoints"][0];
        let credentials = &endpoint["authorization"]["credentials"];
        let token = &secrets[str_of(&credentials["name"])][str_of(&credentials["key"])];
        let ca_ref = &endpoint["tlsConfig"]["ca"]["secret"];
        let ca = pod.home.join("scrape-ca.crt");
        std::fs::write(
            &ca,
            &secrets[str_of(&ca_ref["name"])][str_of(&ca_ref["key"])],
        )
        .unwrap();
        let token = String::from_utf8_lossy(token).into_owned();
        let scrape = || {
            pod.curl_as(
                str_of(&endpoint["tlsConfig"]["serverName"]),
                &ca,
                Some(&token),
                str_of(&endpoint["path"]),
            )
        };
        // RBAC written through another pod reaches this one through the watch.
        let body = eventually(10, "a scrape as the ServiceMonitor says", || {
            let (code, body) = scrape();
            (code == 200).then_some(body)
        });
        assert!(body.contains("apiserver_request_total"), "{body}");
        // The scrape token reads /metrics and nothing else.
        let (code, _) = pod.curl_as(
            &pod.host,
            &pod.ca,
            Some(&token),
            "/clusters/root/api/v1/namespaces",
        );
        assert_eq!(code, 403, "the scrape token must not read objects");
    }
    let out = pod.kubectl_ok("root", &[&admin], &["get", "namespaces", "-o", "name"]);
    assert!(out.contains("namespace/default"), "{out}");
}

/// The kubectl flag of the admin token in the PKI Secret the workload mounts.
fn admin(secrets: &Secrets, objects: &[Value]) -> String {
    let pki = objects
        .iter()
        .filter(|o| o["kind"] == "StatefulSet" || o["kind"] == "Deployment")
        .flat_map(|w| w["spec"]["template"]["spec"]["volumes"].as_array().unwrap())
        .find(|v| v["name"] == "pki")
        .map(|v| str_of(&v["secret"]["secretName"]))
        .unwrap();
    let token = String::from_utf8(secrets[pki]["admin.token"].clone()).unwrap();
    format!("--token={}", token.trim())
}

/// The replica contract (docs/replicas.md) between two pods of one installation on one etcd:
/// what one writes the other serves; a service-account token one issues the other accepts;
/// the admin client certificate one signed at its start (with the shared CA) the other
/// accepts; and workspaces carry the external URL, not a pod's address.
fn check_replicas(a: &Pod, b: &Pod, objects: &[Value], secrets: &Secrets) {
    let admin = admin(secrets, objects);
    let admin = [admin.as_str()];
    // A replica's reads may lag another's writes by the watch's latency (docs/replicas.md).
    let eventually_on = |pod: &Pod, credentials: &[&str], args: &[&str]| {
        eventually(
            10,
            &format!("{args:?} through the pod on {}", pod.port),
            || {
                let out = pod.kubectl("root", credentials, args);
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            },
        )
    };
    a.kubectl_ok(
        "root",
        &admin,
        &["create", "configmap", "through-a", "--from-literal=k=v"],
    );
    let got = eventually_on(
        b,
        &admin,
        &["get", "configmap", "through-a", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(got, "v");

    a.kubectl_ok("root", &admin, &["create", "serviceaccount", "robot"]);
    let token = a.kubectl_ok("root", &admin, &["create", "token", "robot"]);
    let token = format!("--token={}", token.trim());
    let who = eventually_on(
        b,
        &[&token],
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert_eq!(who, "system:serviceaccount:default:robot");

    let cert = format!(
        "--client-certificate={}",
        b.root.join("admin.crt").display()
    );
    let key = format!("--client-key={}", b.root.join("admin.key").display());
    let who = a.kubectl_ok(
        "root",
        &[&cert, &key],
        &["auth", "whoami", "-o", "jsonpath={.status.userInfo.groups}"],
    );
    assert!(who.contains("system:masters"), "{who}");

    let url = b
        .rendered_args
        .iter()
        .find_map(|a| a.strip_prefix("--shard-external-url="))
        .unwrap();
    let workspace = b.home.join("workspace.yaml");
    std::fs::write(
        &workspace,
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: through-b}\n",
    )
    .unwrap();
    b.kubectl_ok(
        "root",
        &admin,
        &["create", "-f", workspace.to_str().unwrap()],
    );
    let spec_url = eventually_on(
        a,
        &admin,
        &[
            "get",
            "workspace",
            "through-b",
            "-o",
            "jsonpath={.spec.URL}",
        ],
    );
    assert!(
        spec_url.starts_with(url),
        "Workspace spec.URL {spec_url:?} should be under the external URL {url}"
    );
}

#[test]
fn kustomize_embedded_overlay_is_accepted_by_kplex_and_its_pod_keeps_its_store() {
    let k = Kplex::start(Backend::Embedded);
    let scratch = tempfile::tempdir().unwrap();
    let generated = generate_secrets(scratch.path(), &[]);
    let rendered = kustomize(&deploy("kustomize/overlays/embedded"));
    prepare_workspace(&k, "root");
    let secrets_yaml = std::fs::read_to_string(generated.join("secrets.yaml")).unwrap();
    let objects = dry_run(&k, "root", &format!("{secrets_yaml}\n---\n{rendered}"));
    assert_eq!(
        kinds(&objects),
        sorted(&[
            "ConfigMap",
            "PodDisruptionBudget",
            "Secret",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "StatefulSet"
        ])
    );
    // A dry run stores nothing.
    let left = ws_ok(
        &k,
        "root",
        &[
            "get",
            "statefulsets,services,secrets",
            "-n",
            NAMESPACE,
            "-o",
            "name",
        ],
    );
    assert_eq!(left, "");

    let sts = check_wiring(&objects);
    assert_eq!(
        sts["spec"]["replicas"], 1,
        "the embedded store cannot be shared"
    );
    let root_mount = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/kplex")
        .unwrap()
        .clone();
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], root_mount["name"],
        "the root directory (the store) is on the volume claim"
    );
    let args = sts["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--etcd-servers"), "{args}");

    let secrets = secrets_of(&objects);
    let state = tempfile::tempdir().unwrap();
    let pod = start_pod(&objects, &sts, &secrets, state.path(), None);
    check_serves(&pod, &objects, &secrets);
    let admin = admin(&secrets, &objects);
    let admin = [admin.as_str()];
    pod.kubectl_ok(
        "root",
        &admin,
        &["create", "configmap", "kept", "--from-literal=k=v"],
    );
    // The pod is replaced (an update, a node drain): the volume keeps the store.
    drop(pod);
    let pod = start_pod(&objects, &sts, &secrets, state.path(), None);
    let got = pod.kubectl_ok(
        "root",
        &admin,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(got, "v");
    check_serves(&pod, &objects, &secrets);
}

#[test]
fn kustomize_etcd_overlay_runs_replicas_that_share_one_identity() {
    let k = Kplex::start(Backend::Embedded);
    let scratch = tempfile::tempdir().unwrap();
    let generated = generate_secrets(
        scratch.path(),
        &["-H", "kplex.example.com", "-H", "192.0.2.10"],
    );
    let secrets_yaml = std::fs::read_to_string(generated.join("secrets.yaml")).unwrap();
    prepare_workspace(&k, "root");

    // The overlay as shipped: three replicas on the etcd named in the flags' ConfigMap.
    let plain = dry_run(
        &k,
        "root",
        &format!(
            "{secrets_yaml}\n---\n{}",
            kustomize(&deploy("kustomize/overlays/etcd"))
        ),
    );
    assert_eq!(
        kinds(&plain),
        sorted(&[
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Secret",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor"
        ])
    );
    let deployment = check_wiring(&plain);
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        find(&plain, "ConfigMap")["data"]["etcd-servers"],
        "http://etcd.kplex.svc:2379"
    );
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
        0
    );

    // As docs/operations.md says to: an overlay of the overlay naming the etcd endpoints,
    // with the etcd-tls component.
    let mine = tempfile::tempdir().unwrap();
    let up = "../".repeat(mine.path().components().count() - 1);
    let deploy_dir = deploy("kustomize");
    let deploy_rel = deploy_dir.to_str().unwrap().trim_start_matches('/');
    std::fs::write(
        mine.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {up}{deploy_rel}/overlays/etcd\ncomponents:\n- {up}{deploy_rel}/components/etcd-tls\nconfigMapGenerator:\n- name: kplex-config\n  behavior: merge\n  literals:\n  - etcd-servers=https://etcd-0.example:2379,https://etcd-1.example:2379\n  - external-url=https://kplex.example.com:6443\nreplicas:\n- name: kplex\n  count: 2\n"
        ),
    )
    .unwrap();
    let objects = dry_run(
        &k,
        "root",
        &format!("{secrets_yaml}\n---\n{}", kustomize(mine.path())),
    );
    let deployment = check_wiring(&objects);
    assert_eq!(deployment["spec"]["replicas"], 2);

    let etcd = EtcdServer::start_tls();
    let tls = etcd.tls().unwrap();
    let mut secrets = secrets_of(&objects);
    secrets.insert(
        "kplex-etcd-client".into(),
        HashMap::from([
            ("ca.crt".into(), std::fs::read(&tls.ca).unwrap()),
            ("tls.crt".into(), std::fs::read(&tls.client_cert).unwrap()),
            ("tls.key".into(), std::fs::read(&tls.client_key).unwrap()),
        ]),
    );
    let (sa, sb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_pod(
        &objects,
        &deployment,
        &secrets,
        sa.path(),
        Some(&etcd.endpoint()),
    );
    let b = start_pod(
        &objects,
        &deployment,
        &secrets,
        sb.path(),
        Some(&etcd.endpoint()),
    );
    assert!(
        a.rendered_args.contains(
            &"--etcd-servers=https://etcd-0.example:2379,https://etcd-1.example:2379".to_string()
        ),
        "{:?}",
        a.rendered_args
    );
    for pod in [&a, &b] {
        check_serves(pod, &objects, &secrets);
        // The serving certificate also covers the hosts given to generate-secrets.sh.
        for host in ["kplex.example.com", "192.0.2.10"] {
            let (code, _) = pod.curl_as(host, &pod.ca, None, "/readyz");
            assert_eq!(code, 200, "{host}");
        }
    }
    check_replicas(&a, &b, &objects, &secrets);
}

#[test]
fn helm_chart_lints_renders_both_modes_and_its_pods_serve() {
    let k = Kplex::start(Backend::Embedded);
    prepare_workspace(&k, "root");
    let home = tempfile::tempdir().unwrap();
    let chart = deploy("charts/kplex");
    let chart = chart.to_str().unwrap();
    let etcd_values = [
        "--set",
        "mode=etcd",
        "--set",
        "etcd.endpoints={https://etcd-0.example:2379,https://etcd-1.example:2379}",
        "--set",
        "etcd.tls.secretName=kplex-etcd-client",
        "--set",
        "replicas=2",
        "--set",
        "pki.extraHosts={kplex.example.com,192.0.2.10}",
        "--set",
        "externalURL=https://kplex.example.com:6443",
    ];
    for values in [&[][..], &etcd_values[..]] {
        let out = run_ok(
            helm(home.path(), None)
                .args(["lint", "--strict", chart])
                .args(values),
        );
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
    // Values that cannot work are refused, saying why.
    let template = |values: &[&str]| {
        let mut cmd = helm(home.path(), None);
        cmd.args(["template", "kplex", chart, "--namespace", NAMESPACE])
            .args(values);
        cmd
    };
    let err = run_fails(&mut template(&["--set", "mode=etcd"]));
    assert!(err.contains("mode etcd needs etcd.endpoints"), "{err}");
    let err = run_fails(&mut template(&["--set", "mode=replicated"]));
    assert!(err.contains("mode must be one of"), "{err}");
    let err = run_fails(&mut template(&["--set", "pki.existingSecret=mine"]));
    assert!(err.contains("metrics.existingSecret"), "{err}");

    // Embedded, the default: no ServiceMonitor unless the cluster serves the API.
    let embedded = dry_run(&k, "root", &run_ok(&mut template(&[])));
    assert_eq!(
        kinds(&embedded),
        sorted(&[
            "PodDisruptionBudget",
            "Secret",
            "Secret",
            "Service",
            "ServiceAccount",
            "StatefulSet"
        ])
    );
    let monitored = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"];
    let embedded = dry_run(&k, "root", &run_ok(&mut template(&monitored)));
    assert!(kinds(&embedded).contains(&"ServiceMonitor".to_string()));
    let sts = check_wiring(&embedded);
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );

    let secrets = secrets_of(&embedded);
    let state = tempfile::tempdir().unwrap();
    let pod = start_pod(&embedded, &sts, &secrets, state.path(), None);
    check_serves(&pod, &embedded, &secrets);
    drop(pod);

    // Bring-your-own keys: the Secrets generate-secrets.sh makes, named in the values.
    let scratch = tempfile::tempdir().unwrap();
    let generated = generate_secrets(scratch.path(), &[]);
    let own = [
        "--set",
        "pki.existingSecret=kplex-pki",
        "--set",
        "metrics.existingSecret=kplex-metrics",
    ];
    let secrets_yaml = std::fs::read_to_string(generated.join("secrets.yaml")).unwrap();
    let objects = dry_run(
        &k,
        "root",
        &format!(
            "{secrets_yaml}\n---\n{}",
            run_ok(&mut template(&[&own[..], &monitored[..]].concat()))
        ),
    );
    assert_eq!(
        kinds(&objects).iter().filter(|k| *k == "Secret").count(),
        2,
        "the chart makes no Secret of its own then"
    );
    let sts = check_wiring(&objects);
    let secrets = secrets_of(&objects);
    let state = tempfile::tempdir().unwrap();
    let pod = start_pod(&objects, &sts, &secrets, state.path(), None);
    check_serves(&pod, &objects, &secrets);
    drop(pod);

    // etcd: replicas with the keys the chart generated (no cert-manager), over etcd's TLS.
    let objects = dry_run(
        &k,
        "root",
        &run_ok(&mut template(&[&etcd_values[..], &monitored[..]].concat())),
    );
    let deployment = check_wiring(&objects);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let etcd = EtcdServer::start_tls();
    let tls = etcd.tls().unwrap();
    let mut secrets = secrets_of(&objects);
    secrets.insert(
        "kplex-etcd-client".into(),
        HashMap::from([
            ("ca.crt".into(), std::fs::read(&tls.ca).unwrap()),
            ("tls.crt".into(), std::fs::read(&tls.client_cert).unwrap()),
            ("tls.key".into(), std::fs::read(&tls.client_key).unwrap()),
        ]),
    );
    let (sa, sb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_pod(
        &objects,
        &deployment,
        &secrets,
        sa.path(),
        Some(&etcd.endpoint()),
    );
    let b = start_pod(
        &objects,
        &deployment,
        &secrets,
        sb.path(),
        Some(&etcd.endpoint()),
    );
    assert!(a.rendered_args.contains(
        &"--etcd-servers=https://etcd-0.example:2379,https://etcd-1.example:2379".to_string()
    ));
    for pod in [&a, &b] {
        check_serves(pod, &objects, &secrets);
        for host in ["kplex.example.com", "192.0.2.10"] {
            let (code, _) = pod.curl_as(host, &pod.ca, None, "/readyz");
            assert_eq!(code, 200, "{host}");
        }
    }
    check_replicas(&a, &b, &objects, &secrets);
}

#[test]
fn helm_install_upgrade_and_uninstall_in_a_kplex_workspace() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "platform", None);
    let ws = "root:platform";
    common::ws_ok_stdin(&k, ws, &["apply", "-f", "-"], SERVICE_MONITOR_CRD);
    ws_ok(
        &k,
        ws,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/servicemonitors.monitoring.coreos.com",
        ],
    );
    let home = tempfile::tempdir().unwrap();
    let chart = deploy("charts/kplex");
    let server = k.url(&format!("/clusters/{ws}"));
    let helm_in_ws = |args: &[&str]| {
        run_ok(helm(home.path(), Some(&k)).args(args).args([
            "--namespace",
            NAMESPACE,
            "--kube-apiserver",
            &server,
        ]))
    };
    let get = |args: &[&str]| ws_ok(&k, ws, &[&["get", "-n", NAMESPACE][..], args].concat());

    let out = helm_in_ws(&[
        "install",
        "kplex",
        chart.to_str().unwrap(),
        "--create-namespace",
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert!(
        out.contains("kubectl -n kplex port-forward svc/kplex"),
        "NOTES: {out}"
    );
    let names = get(&[
        "statefulsets,services,poddisruptionbudgets,serviceaccounts,secrets,servicemonitors",
        "-o",
        "name",
    ]);
    for expected in [
        "statefulset.apps/kplex",
        "service/kplex",
        "poddisruptionbudget.policy/kplex",
        "serviceaccount/kplex",
        "secret/kplex-pki",
        "secret/kplex-metrics",
        // The cluster serves the API, so the chart made one.
        "servicemonitor.monitoring.coreos.com/kplex",
    ] {
        assert!(
            names.lines().any(|l| l == expected),
            "{expected} missing:\n{names}"
        );
    }
    // In the workspace it was installed into, and nowhere else.
    assert!(!ws_ok(&k, "root", &["get", "namespaces", "-o", "name"]).contains("namespace/kplex"));
    let status = helm_in_ws(&["status", "kplex"]);
    assert!(status.contains("STATUS: deployed"), "{status}");

    // An upgrade to replicas on etcd keeps the generated keys: the same CA, service-account
    // key and admin token (a new CA would invalidate every kubeconfig and token issued).
    let keys = |name: &str| get(&["secret", name, "-o", "jsonpath={.data}"]);
    let (pki, metrics) = (keys("kplex-pki"), keys("kplex-metrics"));
    let out = helm_in_ws(&[
        "upgrade",
        "kplex",
        chart.to_str().unwrap(),
        "--set",
        "mode=etcd",
        "--set",
        "etcd.endpoints={http://etcd.kplex.svc:2379}",
    ]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert_eq!(
        get(&["deployment", "kplex", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    assert_eq!(get(&["statefulsets", "-o", "name"]), "");
    assert_eq!(keys("kplex-pki"), pki);
    assert_eq!(keys("kplex-metrics"), metrics);

    // Uninstalling removes the installation but keeps the keys.
    let out = helm_in_ws(&["uninstall", "kplex"]);
    assert!(out.contains("kept due to the resource policy"), "{out}");
    assert_eq!(
        get(&["deployments,services,servicemonitors", "-o", "name"]),
        ""
    );
    assert_eq!(keys("kplex-pki"), pki);
    // Installed again, the release adopts the keys it kept.
    let out = helm_in_ws(&["install", "kplex", chart.to_str().unwrap()]);
    assert!(out.contains("STATUS: deployed"), "{out}");
    assert_eq!(keys("kplex-pki"), pki);
    assert_eq!(keys("kplex-metrics"), metrics);
}

/// The systemd unit: `systemd-analyze verify` finds nothing to say (unknown keys, bad values
/// and missing dependencies all print), `systemd-analyze security` rates its exposure at most
/// 2.0 ("OK"), and its ExecStart, run as such, starts kplex on the state directory.
#[test]
fn systemd_unit_verifies_is_hardened_and_starts_kplex() {
    let unit_path = deploy("systemd/kplex.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=kplex",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(directive), "{directive} missing");
    }
    // kplex names itself after /proc/sys/kernel/hostname in the replicas' leader election.
    assert!(!unit.lines().any(|l| l.starts_with("ProcSubset=")));
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let words: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(
        words[0], "/usr/local/bin/kplex",
        "where deploy/Containerfile and docs install it"
    );
    assert!(
        words.contains(&"--root-directory=/var/lib/kplex"),
        "the StateDirectory"
    );

    let analyze = on_path("systemd-analyze")
        .expect("systemd-analyze is needed to verify the unit (Debian: apt-get install systemd)");
    // verify checks that ExecStart's binary exists: this machine has kplex where cargo built
    // it, not in /usr/local/bin, so the copy verified names that path; nothing else differs.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("kplex.service");
    std::fs::write(
        &copy,
        unit.replace(
            "ExecStart=/usr/local/bin/kplex ",
            &format!("ExecStart={} ", env!("CARGO_BIN_EXE_kplex")),
        ),
    )
    .unwrap();
    let out = run_bounded(
        Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(&copy),
        60,
    );
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_bounded(
        Command::new(&analyze)
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&copy),
        60,
    );
    assert!(
        out.status.success(),
        "exposure above 2.0: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // ExecStart with KPLEX_ARGS empty; the state directory here, a free port, loopback.
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let port = free_port();
    let args: Vec<String> = words[1..]
        .iter()
        .filter(|w| **w != "$KPLEX_ARGS")
        .map(|w| match w.split_once('=') {
            Some(("--root-directory", _)) => format!("--root-directory={}", state.display()),
            Some(("--secure-port", _)) => format!("--secure-port={port}"),
            Some(("--bind-address", _)) => "--bind-address=127.0.0.1".to_string(),
            _ => w.to_string(),
        })
        .collect();
    let _kplex = start_command_line(&args, &state, port);
}

/// The container recipe against the manifests that run its image: distroless or scratch, a
/// numeric non-root user (runAsNonRoot needs one), the binary where the manifests' command
/// says, a Rust new enough for the workspace, and its CMD a command line that starts kplex.
#[test]
fn container_image_recipe_matches_the_manifests() {
    let recipe = std::fs::read_to_string(deploy("Containerfile")).unwrap();
    let stages: Vec<&str> = recipe
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    let last = stages.last().unwrap();
    assert!(
        last.starts_with("gcr.io/distroless/") || last.starts_with("scratch"),
        "final stage {last}"
    );
    let user = recipe
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .unwrap();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert!(uid > 0);
    // The Kustomize and Helm pods run as that user.
    for manifest in [
        "kustomize/overlays/embedded/statefulset.yaml",
        "kustomize/overlays/etcd/deployment.yaml",
        "charts/kplex/values.yaml",
    ] {
        let text = std::fs::read_to_string(deploy(manifest)).unwrap();
        assert!(text.contains(&format!("runAsUser: {uid}")), "{manifest}");
    }
    assert!(recipe.contains("ENTRYPOINT [\"/usr/local/bin/kplex\"]"));
    assert!(recipe.contains("cargo build --release --locked --bin kplex"));
    assert!(recipe.contains("target/release/kplex /out/usr/local/bin/kplex"));
    assert!(recipe.contains("COPY --from=build /out/usr/local/bin/kplex /usr/local/bin/kplex"));
    // The toolchain image satisfies the workspace's rust-version.
    let version = |text: &str, key: &str| -> Vec<u32> {
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.split(['=', '"'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .nth(1)
            .unwrap()
            .split('.')
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    assert!(
        version(&recipe, "ARG RUST_VERSION=") >= version(&manifest, "rust-version"),
        "the build image's Rust is older than the workspace's rust-version"
    );
    let ignore = std::fs::read_to_string(deploy("Containerfile.dockerignore")).unwrap();
    assert!(
        ignore.lines().any(|l| l == "target"),
        "build output stays out of the context"
    );

    // ENTRYPOINT + CMD, as `docker run` would start it, with the volume here.
    let cmd_line = recipe.lines().find_map(|l| l.strip_prefix("CMD ")).unwrap();
    let cmd: Vec<String> = serde_json::from_str(cmd_line).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let args: Vec<String> = cmd
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("--root-directory", "/var/lib/kplex")) => {
                format!("--root-directory={}", dir.path().display())
            }
            Some(("--secure-port", _)) => format!("--secure-port={port}"),
            Some(("--bind-address", _)) => "--bind-address=127.0.0.1".to_string(),
            _ => a.clone(),
        })
        .collect();
    assert!(
        args.iter().any(|a| a.starts_with("--secure-port=")),
        "{cmd:?}"
    );
    let _kplex = start_command_line(&args, dir.path(), port);
}

/// A kplex started from a command line (the binary's arguments), killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kplex ARGS` with its root directory `root` on `port`; waits until /readyz answers
/// and the admin kubeconfig it wrote works.
fn start_command_line(args: &[String], root: &Path, port: u16) -> Process {
    let log = root.join("kplex.log");
    let mut p = Process(
        Command::new(env!("CARGO_BIN_EXE_kplex"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = p.0.try_wait() {
            panic!(
                "kplex {args:?} exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(root.join("ca.crt"))
            .arg(format!("https://127.0.0.1:{port}/readyz"))
            .output()
            .unwrap();
        if out.stdout == b"200" {
            break;
        }
        assert!(Instant::now() < deadline, "kplex {args:?} never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = run_ok(
        Command::new(kubectl_binary())
            .env("HOME", &home)
            .env("KUBECONFIG", root.join("admin.kubeconfig"))
            .args(["get", "namespaces", "-o", "name"]),
    );
    assert!(out.contains("namespace/default"), "{out}");
    p
}
