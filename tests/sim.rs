//! `kplex sim` end to end: a kplex, a workspace, and the real `kplex sim` playing that
//! workspace as a cluster; the real kubectl (and Helm) then see what they would on a
//! cluster with nodes, kubelets and kube-controller-manager.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{Backend, Kplex, create_workspace, eventually, json, ws_ok, ws_ok_stdin};

/// A kplex with workspace `root:sim` played by `kplex sim` (two nodes); the simulator is
/// killed when this is dropped.
struct Cluster {
    k: Kplex,
    sim: Child,
}

const WS: &str = "root:sim";

impl Cluster {
    fn start() -> Self {
        let k = Kplex::start(Backend::Embedded);
        create_workspace(&k, "root", "sim", None);
        // Where kubelets keep their Leases (a workspace starts without it).
        ws_ok(&k, WS, &["create", "namespace", "kube-node-lease"]);
        // The admin kubeconfig, its current context pointed at the workspace.
        let admin = std::fs::read_to_string(k.kubeconfig()).unwrap();
        let root_url = k.url("/clusters/root");
        assert!(admin.contains(&format!("{root_url}\n")));
        let kubeconfig = k.root().join("sim.kubeconfig");
        std::fs::write(
            &kubeconfig,
            admin.replace(&format!("{root_url}\n"), &format!("{root_url}:sim\n")),
        )
        .unwrap();
        let log = std::fs::File::create(k.root().join("sim.log")).unwrap();
        let sim = Command::new(env!("CARGO_BIN_EXE_kplex"))
            .args(["sim", "--nodes", "2", "--kubeconfig"])
            .arg(&kubeconfig)
            .env("RUST_LOG", "info,kplex_sim=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let c = Self { k, sim };
        eventually(20, "two Ready sim nodes", || {
            let ready = c.ok(&[
                "get",
                "nodes",
                "-l",
                "kplex.io/simulated=true",
                "-o",
                "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            (ready == "True True").then_some(())
        });
        eventually(20, "the nodes' leases", || {
            let holders = c.ok(&[
                "get",
                "leases",
                "-n",
                "kube-node-lease",
                "-o",
                "jsonpath={.items[*].spec.holderIdentity}",
            ]);
            (holders == "sim-node-0 sim-node-1").then_some(())
        });
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        ws_ok(&self.k, WS, args)
    }

    /// (name, phase, node, pod IP) of the pods labelled `selector`.
    fn pods(&self, selector: &str) -> Vec<(String, String, String, String)> {
        let list = json(&self.ok(&["get", "pods", "-l", selector, "-o", "json"]));
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
                (
                    s(&p["metadata"]["name"]),
                    s(&p["status"]["phase"]),
                    s(&p["spec"]["nodeName"]),
                    s(&p["status"]["podIP"]),
                )
            })
            .collect()
    }

    /// Waits until exactly `n` pods labelled `selector` exist, all Running on sim nodes.
    fn running(&self, selector: &str, n: usize) -> Vec<(String, String, String, String)> {
        eventually(20, &format!("{n} running pods {selector}"), || {
            let pods = self.pods(selector);
            let all_running = pods.iter().all(|(_, phase, node, ip)| {
                phase == "Running" && node.starts_with("sim-node-") && !ip.is_empty()
            });
            (pods.len() == n && all_running).then_some(pods)
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.k.root().join("sim.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    /// The simulator's log is shown when a test fails (or with `SIM_LOG=1`).
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
        if std::thread::panicking() || std::env::var_os("SIM_LOG").is_some() {
            eprintln!("--- kplex sim log ---\n{}", self.log());
        }
    }
}

#[test]
fn kubectl_sees_a_working_cluster() {
    let c = Cluster::start();

    // A Deployment rolls out: ReplicaSet, pods bound to sim nodes, Running and Ready.
    c.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    c.ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=30s",
    ]);
    let pods = c.running("app=web", 2);
    assert_ne!(pods[0].3, pods[1].3, "pod IPs are unique: {pods:?}");
    let rs = json(&c.ok(&["get", "replicasets", "-l", "app=web", "-o", "json"]));
    let rs = &rs["items"][0];
    let hash = rs["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs["metadata"]["name"], format!("web-{hash}"));
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );

    // A new template rolls out as revision 2; the old ReplicaSet is scaled to 0.
    c.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    let revision = c.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    ]);
    assert_eq!(revision, "2");
    eventually(20, "the old ReplicaSet scaled to 0", || {
        let replicas = c.ok(&[
            "get",
            "replicasets",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.replicas}",
        ]);
        let mut r: Vec<&str> = replicas.split_whitespace().collect();
        r.sort();
        (r == ["0", "2"]).then_some(())
    });
    c.running("app=web", 2);

    // Scaling is followed both ways.
    c.ok(&["scale", "deployment/web", "--replicas=3"]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    c.running("app=web", 3);
    c.ok(&["scale", "deployment/web", "--replicas=1"]);
    c.ok(&["rollout", "status", "deployment/web", "--timeout=30s"]);
    let pods = c.running("app=web", 1);

    // A Service gets a cluster IP, Endpoints and an EndpointSlice with the ready pod.
    c.ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8080",
    ]);
    let ip = c.ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10."), "cluster IP {ip:?}");
    let pod_ip = pods[0].3.clone();
    eventually(20, "the service's endpoints", || {
        let e = c.ok(&[
            "get",
            "endpoints",
            "web",
            "--ignore-not-found",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}:{.subsets[*].ports[*].port}",
        ]);
        (e == format!("{pod_ip}:8080")).then_some(())
    });
    eventually(20, "the service's endpoint slice", || {
        let s = c.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[*].endpoints[*].addresses[*]}",
        ]);
        (s == pod_ip).then_some(())
    });

    // A Job completes; a StatefulSet and a DaemonSet become ready.
    c.ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    ws_ok_stdin(
        &c.k,
        WS,
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: postgres}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: agent, image: busybox}]}
"#,
    );
    c.ok(&[
        "wait",
        "--for=condition=Complete",
        "job/once",
        "--timeout=30s",
    ]);
    let succeeded = c.ok(&["get", "job", "once", "-o", "jsonpath={.status.succeeded}"]);
    assert_eq!(succeeded, "1");
    c.ok(&["rollout", "status", "statefulset/db", "--timeout=30s"]);
    let db = c.running("app=db", 2);
    let mut names: Vec<&str> = db.iter().map(|p| p.0.as_str()).collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1"]);
    c.ok(&["rollout", "status", "daemonset/agent", "--timeout=30s"]);
    let agents = c.running("app=agent", 2);
    assert_ne!(agents[0].2, agents[1].2, "one agent per node: {agents:?}");

    // Deleting a Deployment's pod: the ReplicaSet replaces it.
    c.ok(&["delete", "pod", &pods[0].0, "--wait=false"]);
    eventually(20, "a replacement pod", || {
        let now = c.running("app=web", 1);
        (now[0].0 != pods[0].0).then_some(())
    });
}

/// Helm 3: `$HELM` (scripts/test.sh fetches it), else `helm` on PATH.
fn helm_binary() -> PathBuf {
    std::env::var_os("HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "helm".into())
}

#[test]
fn helm_install_waits_for_a_chart_on_the_simulated_cluster() {
    let c = Cluster::start();
    let charts = c.k.root().join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    let helm = |args: &[&str]| {
        let out = Command::new(helm_binary())
            .args(args)
            .current_dir(&charts)
            .env("KUBECONFIG", c.k.kubeconfig())
            .env("HOME", c.k.home())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    helm(&["create", "demo"]);
    let ws = c.k.url(&format!("/clusters/{WS}"));
    helm(&[
        "install",
        "demo",
        "./demo",
        "--wait",
        "--timeout",
        "60s",
        "--kube-apiserver",
        &ws,
    ]);
    c.running("app.kubernetes.io/instance=demo", 1);
}
