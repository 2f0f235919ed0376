//! The agent against a real kplex server (`$KPLEX_BIN`, default: the `kplex` binary of this
//! build, which `cargo nextest run --workspace` builds beside the test binaries), with
//! kcp's fake-workload-server trick: the downstream "cluster" is just another workspace of the
//! same server (`root:sink`), so nothing runs there and the test plays the downstream
//! controllers (it writes statuses and pods itself). Upstream: a SyncTarget and Location in
//! `root:compute`, a Placement in `root:team`. The agent runs in-process (`kplex_syncer::run`).
//!
//! It fails (never skips) when the server binary is missing or lacks the placement APIs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kplex_syncer::transform::{Target, downstream_namespace, locator};
use kplex_syncer::{ConflictPolicy, SyncerArgs};
use serde_json::Value;

/// The server, killed (and its directory removed) when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failed test keeps the server's directory (its log) for a look.
        if std::thread::panicking() {
            eprintln!("server directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `<target>/<profile>/kplex`: this test runs from `<target>/<profile>/deps/`.
fn built_kplex() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join(format!("kplex{}", std::env::consts::EXE_SUFFIX))
}

impl Server {
    fn start() -> Self {
        let bin = std::env::var_os("KPLEX_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(built_kplex);
        assert!(
            Path::new(&bin).exists(),
            "no kplex server binary at {bin:?} (set KPLEX_BIN)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("kplex-syncer-it-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(&bin)
            .args(["start", "--root-directory"])
            .arg(&dir)
            .args(["--secure-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let server = Self { child, dir, port };
        eventually("the server to serve", || {
            server.kubeconfig().exists() && server.try_kubectl("root", &["get", "ns"]).is_some()
        });
        server
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }

    /// A copy of the admin kubeconfig whose current server is workspace `path`.
    fn kubeconfig_for(&self, path: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.kubeconfig()).unwrap();
        let root = format!("server: https://127.0.0.1:{}/clusters/root\n", self.port);
        assert!(text.contains(&root), "unexpected admin kubeconfig:\n{text}");
        let out = self.dir.join(format!("{path}.kubeconfig"));
        let replaced = text.replace(
            &root,
            &format!("server: https://127.0.0.1:{}/clusters/{path}\n", self.port),
        );
        std::fs::write(&out, replaced).unwrap();
        out
    }

    fn try_kubectl_stdin(&self, ws: &str, args: &[&str], stdin: Option<&str>) -> Option<String> {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--server")
            .arg(format!("https://127.0.0.1:{}/clusters/{ws}", self.port))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl on PATH");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn try_kubectl(&self, ws: &str, args: &[&str]) -> Option<String> {
        self.try_kubectl_stdin(ws, args, None)
    }

    fn kubectl(&self, ws: &str, args: &[&str]) -> String {
        self.try_kubectl(ws, args)
            .unwrap_or_else(|| panic!("kubectl {args:?} in {ws} failed"))
    }

    fn apply(&self, ws: &str, yaml: &str) {
        self.try_kubectl_stdin(ws, &["apply", "-f", "-"], Some(yaml))
            .unwrap_or_else(|| panic!("kubectl apply in {ws} failed:\n{yaml}"));
    }

    fn get(&self, ws: &str, args: &[&str]) -> Option<Value> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        self.try_kubectl(ws, &all)
            // Nothing printed: not found, with --ignore-not-found.
            .map(|o| serde_json::from_str(&o).unwrap_or(Value::Null))
    }
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// The agent on its own runtime in a thread, stopped when dropped.
struct Agent(Option<tokio::sync::oneshot::Sender<()>>);

impl Agent {
    fn start(args: SyncerArgs) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                tokio::select! {
                    r = kplex_syncer::run(args) => r.expect("the agent stopped with an error"),
                    _ = rx => {}
                }
            });
            // Dropping the runtime aborts the agent's tasks.
        });
        Self(Some(tx))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

const COMPUTE: &str = "apiVersion: workload.kcp.io/v1alpha1
kind: SyncTarget
metadata: {name: east}
spec: {}
---
apiVersion: scheduling.kcp.io/v1alpha1
kind: Location
metadata: {name: default}
spec:
  resource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  instanceSelector: {}
";

const PLACEMENT: &str = "apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: compute}
spec:
  locationWorkspace: root:compute
  locationSelectors: [{}]
  namespaceSelector: {}
  locationResource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
";

const WORKLOAD: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {a: b}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
";

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn syncs_a_workspace_into_another_workspace() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = Server::start();
    for ws in ["compute", "team", "sink"] {
        server.apply(
            "root",
            &format!(
                "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {{name: {ws}}}\n"
            ),
        );
    }
    for ws in ["compute", "team", "sink"] {
        eventually(&format!("workspace {ws} Ready"), || {
            server
                .try_kubectl(
                    "root",
                    &["get", "workspace", ws, "-o", "jsonpath={.status.phase}"],
                )
                .is_some_and(|p| p == "Ready")
        });
    }
    assert!(
        server
            .try_kubectl("root:compute", &["get", "synctargets"])
            .is_some(),
        "the server at $KPLEX_BIN does not serve workload.kcp.io SyncTargets"
    );
    server.apply("root:compute", COMPUTE);
    let mut st = Value::Null;
    eventually("the SyncTarget's key and syncer URL", || {
        st = server
            .get("root:compute", &["get", "synctarget", "east"])
            .unwrap_or_default();
        !text(&st, "/metadata/labels/internal.workload.kcp.io~1key").is_empty()
            && !text(&st, "/status/virtualWorkspaces/0/syncerURL").is_empty()
    });
    let key = text(&st, "/metadata/labels/internal.workload.kcp.io~1key");
    let target = Target {
        cluster: text(&st, "/metadata/annotations/kcp.io~1cluster"),
        name: "east".into(),
        uid: text(&st, "/metadata/uid"),
        key: key.clone(),
    };
    let args = SyncerArgs {
        from_kubeconfig: server.kubeconfig_for("root:compute"),
        from_context: None,
        sync_target_name: "east".into(),
        sync_target_uid: target.uid.clone(),
        from_cluster: "root:compute".into(),
        to_kubeconfig: Some(server.kubeconfig_for("root:sink")),
        to_context: None,
        resources: vec![],
        heartbeat_interval: Duration::from_secs(1),
        api_import_poll_interval: Duration::from_secs(60),
        downstream_namespace_clean_delay: Duration::from_secs(2),
        downstream_namespace: None,
        conflict_policy: ConflictPolicy::Refuse,
    };
    // A wrong uid is refused at once, with a clear error.
    let wrong = SyncerArgs {
        sync_target_uid: "not-the-uid".into(),
        ..args.clone()
    };
    let err = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(kplex_syncer::run(wrong))
        .expect_err("a wrong uid must stop the agent");
    assert!(err.to_string().contains("re-created"), "{err}");

    let agent = Agent::start(args.clone());
    eventually("heartbeats and synced resources", || {
        let st = server
            .get("root:compute", &["get", "synctarget", "east"])
            .unwrap_or_default();
        !text(&st, "/status/lastSyncerHeartbeatTime").is_empty()
            && st.pointer("/status/syncedResources/0/resource") == Some(&"namespaces".into())
    });

    server.apply("root:team", PLACEMENT);
    server.apply("root:team", WORKLOAD);
    let team_cluster = {
        let ns = server.get("root:team", &["get", "ns", "default"]).unwrap();
        text(&ns, "/metadata/annotations/kcp.io~1cluster")
    };
    let down_ns = downstream_namespace(&locator(&target, &team_cluster, "default"));

    // Spec down, into kcp-<hash>, marked, with the locator.
    eventually("the downstream namespace and objects", || {
        server
            .try_kubectl("root:sink", &["get", "deployment", "web", "-n", &down_ns])
            .is_some()
            && server
                .try_kubectl(
                    "root:sink",
                    &["get", "configmap", "settings", "-n", &down_ns],
                )
                .is_some()
    });
    let ns = server.get("root:sink", &["get", "ns", &down_ns]).unwrap();
    assert_eq!(
        ns.pointer("/metadata/labels/internal.workload.kcp.io~1cluster"),
        Some(&Value::from(key.clone()))
    );
    let loc: Value = serde_json::from_str(&text(
        &ns,
        "/metadata/annotations/kcp.io~1namespace-locator",
    ))
    .unwrap();
    assert_eq!(loc, locator(&target, &team_cluster, "default"));
    let cm = server
        .get(
            "root:sink",
            &["get", "configmap", "settings", "-n", &down_ns],
        )
        .unwrap();
    assert_eq!(cm["data"]["a"], "b");
    // The upstream cluster annotation is not copied (the sink, a workspace, stamps its own).
    assert_ne!(
        text(&cm, "/metadata/annotations/kcp.io~1cluster"),
        team_cluster
    );
    assert!(cm.pointer("/metadata/finalizers").is_none());

    // The upstream object carries the agent's finalizer.
    let finalizer = format!("workload.kcp.io/syncer-{key}");
    eventually("the upstream finalizer", || {
        server
            .get("root:team", &["get", "configmap", "settings"])
            .and_then(|c| c.pointer("/metadata/finalizers").cloned())
            .is_some_and(|f| f.as_array().into_iter().flatten().any(|x| *x == *finalizer))
    });

    // Drift downstream is reverted.
    server.kubectl(
        "root:sink",
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            &down_ns,
            "--type=merge",
            "-p",
            r#"{"data":{"a":"drift"}}"#,
        ],
    );
    eventually("the drift to be reverted", || {
        server
            .get(
                "root:sink",
                &["get", "configmap", "settings", "-n", &down_ns],
            )
            .is_some_and(|c| c["data"]["a"] == "b")
    });

    // Status up (the test plays the downstream deployment controller).
    server.kubectl(
        "root:sink",
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            &down_ns,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"replicas":2,"readyReplicas":2,"availableReplicas":2}}"#,
        ],
    );
    eventually("the status upstream", || {
        server
            .get("root:team", &["get", "deployment", "web"])
            .is_some_and(|d| d.pointer("/status/readyReplicas") == Some(&2.into()))
    });

    // Pods made downstream are shown upstream, with their node and status, and go with them.
    server.apply(
        "root:sink",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: web-1, namespace: {down_ns}, labels: {{app: web}}}}\nspec:\n  nodeName: node-1\n  containers: [{{name: web, image: nginx}}]\n"
        ),
    );
    eventually("the pod upstream", || {
        server
            .get("root:team", &["get", "pod", "web-1"])
            .is_some_and(|p| {
                p["spec"]["nodeName"] == "node-1"
                    && p.pointer(&format!("/metadata/labels/state.workload.kcp.io~1{key}"))
                        == Some(&"Upsync".into())
            })
    });
    server.kubectl(
        "root:sink",
        &[
            "delete",
            "pod",
            "web-1",
            "-n",
            &down_ns,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ],
    );
    eventually("the pod gone upstream", || {
        server
            .try_kubectl(
                "root:team",
                &["get", "pod", "web-1", "--ignore-not-found", "-o", "name"],
            )
            .is_some_and(|o| o.trim().is_empty())
    });

    // An object that exists downstream without the agent's mark is refused and reported.
    server.apply(
        "root:sink",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: foreign, namespace: {down_ns}}}\ndata: {{owner: someone}}\n"),
    );
    server.kubectl(
        "root:team",
        &[
            "create",
            "configmap",
            "foreign",
            "--from-literal=owner=team",
        ],
    );
    // (A server older than main's 138cfb7 rewrites the target's conditions at each
    // heartbeat, dropping the agent's: this step then times out.)
    eventually(
        "the SyncConflicts condition (kept by the server since 138cfb7)",
        || {
            server
                .get("root:compute", &["get", "synctarget", "east"])
                .and_then(|st| st.pointer("/status/conditions").cloned())
                .is_some_and(|c| {
                    c.as_array().into_iter().flatten().any(|c| {
                        c["type"] == "SyncConflicts"
                            && c["status"] == "True"
                            && c["message"]
                                .as_str()
                                .unwrap_or_default()
                                .contains("foreign")
                    })
                })
        },
    );
    let foreign = server
        .get(
            "root:sink",
            &["get", "configmap", "foreign", "-n", &down_ns],
        )
        .unwrap();
    assert_eq!(foreign["data"]["owner"], "someone");

    // A namespace deleted upstream: its objects go downstream, then (after the clean delay)
    // its downstream namespace.
    // (The ConfigMap is created once the namespace is placed: one created in between is
    // not labelled by the server binary tested here, a race on the server side.)
    server.kubectl("root:team", &["create", "namespace", "extra"]);
    eventually("the second namespace placed", || {
        server
            .get("root:team", &["get", "ns", "extra"])
            .and_then(|n| {
                n.pointer(&format!("/metadata/labels/state.workload.kcp.io~1{key}"))
                    .cloned()
            })
            .is_some_and(|v| v == "Sync")
    });
    server.kubectl(
        "root:team",
        &[
            "create",
            "configmap",
            "c",
            "-n",
            "extra",
            "--from-literal=k=v",
        ],
    );
    let extra_ns = downstream_namespace(&locator(&target, &team_cluster, "extra"));
    eventually("the second namespace downstream", || {
        server
            .try_kubectl("root:sink", &["get", "configmap", "c", "-n", &extra_ns])
            .is_some()
    });
    server.kubectl(
        "root:team",
        &["delete", "namespace", "extra", "--wait=false"],
    );
    eventually("the second downstream namespace deleted", || {
        server
            .get("root:sink", &["get", "ns", &extra_ns, "--ignore-not-found"])
            .is_none_or(|ns| ns.is_null() || ns.pointer("/metadata/deletionTimestamp").is_some())
    });

    // A restarted agent deletes nothing while it (re)learns upstream.
    drop(agent);
    std::thread::sleep(Duration::from_millis(300));
    let agent = Agent::start(args);
    for _ in 0..5 {
        assert!(
            server
                .try_kubectl(
                    "root:sink",
                    &["get", "configmap", "settings", "-n", &down_ns]
                )
                .is_some(),
            "a restarted agent deleted a synced object"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Upstream deletion: the downstream copy goes, then the finalizer, then the object.
    server.kubectl(
        "root:team",
        &["delete", "configmap", "settings", "--wait=false"],
    );
    eventually(
        "the downstream copy and then the upstream object gone",
        || {
            server
                .try_kubectl(
                    "root:sink",
                    &[
                        "get",
                        "configmap",
                        "settings",
                        "-n",
                        &down_ns,
                        "--ignore-not-found",
                        "-o",
                        "name",
                    ],
                )
                .is_some_and(|o| o.trim().is_empty())
                && server
                    .try_kubectl(
                        "root:team",
                        &[
                            "get",
                            "configmap",
                            "settings",
                            "--ignore-not-found",
                            "-o",
                            "name",
                        ],
                    )
                    .is_some_and(|o| o.trim().is_empty())
        },
    );
    // The foreign object is never touched.
    assert!(
        server
            .try_kubectl(
                "root:sink",
                &["get", "configmap", "foreign", "-n", &down_ns]
            )
            .is_some()
    );
    drop(agent);
}
