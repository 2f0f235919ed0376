//! Replicas: two `kplex start` processes on one etcd, the second started from a copy of the
//! first's root directory (the replica contract), and what one embedded store refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Kplex, create_workspace, eventually, free_port, json, ws_ok};

const LB: &str = "https://lb.example.test:6443";

/// What `GET /clusters/<path>/api/v1/namespaces/default` answers on `k`.
fn default_namespace(k: &Kplex, path: &str) -> u16 {
    k.http(
        "GET",
        &format!("/clusters/{path}/api/v1/namespaces/default"),
        "",
        b"",
    )
    .0
}

#[test]
fn a_workspace_made_through_one_replica_is_served_by_the_other() {
    let a = Kplex::start_with_args(Backend::Etcd, &["--shard-external-url", LB]);
    let b = a.replica();

    create_workspace(&b, "root", "r2", None);
    // A serves it at once: from its watch of the store, or — if that event has not arrived
    // yet — from the store itself before it would answer 404.
    assert_eq!(default_namespace(&a, "root:r2"), 200, "{}", a.log());
    assert_eq!(
        ws_ok(
            &a,
            "root",
            &["get", "workspace", "r2", "-o", "jsonpath={.spec.URL}"]
        ),
        format!("{LB}/clusters/root:r2"),
        "every replica writes the load balancer's URL"
    );
    // Both replicas' controllers saw the Workspace; one logical cluster was made for it.
    let (code, body) = a.http(
        "GET",
        "/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters",
        "",
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let for_r2 = json(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|lc| lc["metadata"]["annotations"]["kcp.io/path"] == "root:r2")
        .count();
    assert_eq!(for_r2, 1, "{body}");
    ws_ok(&a, "root:r2", &["create", "configmap", "made-on-a"]);
    // Reads without a resourceVersion are consistent: B answers from etcd, not a cache
    // that may lag, so a write acknowledged by A is in B's next GET and LIST.
    ws_ok(&b, "root:r2", &["get", "configmap", "made-on-a"]);
    let rv = ws_ok(
        &a,
        "root:r2",
        &[
            "get",
            "configmap",
            "made-on-a",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    for i in 0..3 {
        ws_ok(
            &a,
            "root:r2",
            &["create", "configmap", &format!("later-{i}")],
        );
    }
    let listed = ws_ok(&b, "root:r2", &["get", "configmaps", "-o", "name"]);
    assert!(listed.contains("configmap/later-2"), "{listed}");
    // A watch resumed on B from what A answered gets every later event once, in order.
    let (code, events) = b.http(
        "GET",
        &format!(
            "/clusters/root:r2/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=2"
        ),
        "",
        b"",
    );
    assert_eq!(code, 200, "{events}");
    let names: Vec<String> = events
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            json(l)["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(names, ["later-0", "later-1", "later-2"], "{events}");
    // A watch without a resourceVersion starts from what etcd holds (a consistent read),
    // not from B's watch cache: a write through A just before is in its initial events.
    ws_ok(&a, "root:r2", &["create", "configmap", "latest"]);
    let (code, events) = b.http(
        "GET",
        "/clusters/root:r2/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
        "",
        b"",
    );
    assert_eq!(code, 200, "{events}");
    assert!(events.contains(r#""name":"latest""#), "{events}");

    // Deleted through A: B stops serving it too.
    ws_ok(&a, "root", &["delete", "workspace", "r2", "--wait=true"]);
    eventually(20, "replica B to forget root:r2", || {
        (default_namespace(&b, "root:r2") == 404).then_some(())
    });
}

/// POSTs a ConfigMap into `path`'s `namespace` through `k`; the answer's code and body.
fn post_configmap(k: &Kplex, path: &str, namespace: &str, name: &str) -> (u16, String) {
    let cm = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#);
    k.http(
        "POST",
        &format!("/clusters/{path}/api/v1/namespaces/{namespace}/configmaps"),
        "application/json",
        cm.as_bytes(),
    )
}

/// A workspace's object limit and a namespace's ResourceQuota hold when writes arrive
/// through two replicas: each replica's count follows the store's watch, not only its own
/// writes.
#[test]
fn object_limits_count_the_writes_of_every_replica() {
    let a = Kplex::start_with_args(
        Backend::Etcd,
        &["--logical-cluster-total-object-limit", "40"],
    );
    let b = a.replica();
    create_workspace(&a, "root", "capped", None);
    let path = "root:capped";
    // B counts the workspace now, with one write of its own.
    assert_eq!(post_configmap(&b, path, "default", "from-b").0, 201);
    // A fills it up.
    let mut made = 0;
    let refused = loop {
        let (code, body) = post_configmap(&a, path, "default", &format!("cm-{made}"));
        if code != 201 {
            break body;
        }
        made += 1;
        assert!(made < 40, "A never refused");
    };
    assert!(refused.contains("limit of 40 objects"), "{refused}");
    // B saw A's writes through the store: full for B too (the issue's 1 s to propagate).
    std::thread::sleep(Duration::from_secs(1));
    let (code, body) = post_configmap(&b, path, "default", "one-too-many");
    assert_eq!(code, 403, "B took a write over the limit: {body}");
    // Room made through A is room for B, exactly.
    for i in 0..2 {
        ws_ok(&a, path, &["delete", "configmap", &format!("cm-{i}")]);
    }
    std::thread::sleep(Duration::from_secs(1));
    let codes: Vec<u16> = (0..3)
        .map(|i| post_configmap(&b, path, "default", &format!("again-{i}")).0)
        .collect();
    assert_eq!(codes, [201, 201, 403]);

    // A ResourceQuota made through A binds writes through B.
    create_workspace(&a, "root", "quota", None);
    ws_ok(
        &a,
        "root:quota",
        &["create", "quota", "q", "--hard=count/configmaps=2"],
    );
    std::thread::sleep(Duration::from_secs(1));
    // The namespace's kube-root-ca.crt is one of the two.
    let codes: Vec<u16> = (0..2)
        .map(|i| post_configmap(&b, "root:quota", "default", &format!("q-{i}")).0)
        .collect();
    assert_eq!(codes, [201, 403], "{}", b.log());
}

/// Publishes the widgets export in `root:provider` (once) and binds it into `path`
/// through `k`: Bound (the leader's status write) and served through `k`.
fn bind_widgets(k: &Kplex, path: &str) {
    if !ws_ok(k, "root", &["get", "workspaces", "-o", "name"]).contains("provider") {
        create_workspace(k, "root", "provider", None);
        common::ws_ok_stdin(
            k,
            "root:provider",
            &["apply", "-f", "-"],
            &format!(
                "{}\n---\napiVersion: apis.kcp.io/v1alpha1\nkind: APIExport\nmetadata: {{name: widgets}}\nspec:\n  latestResourceSchemas: [v1.widgets.example.dev]\n",
                common::WIDGETS_SCHEMA
            ),
        );
    }
    common::ws_ok_stdin(
        k,
        path,
        &["apply", "-f", "-"],
        "apiVersion: apis.kcp.io/v1alpha2\nkind: APIBinding\nmetadata: {name: widgets}\nspec:\n  reference: {export: {path: 'root:provider', name: widgets}}\n",
    );
    common::wait_bound(k, path, "widgets");
    ws_ok(k, path, &["get", "widgets"]);
}

/// The controllers' Lease holder (`kube-system/kplex-controllers` in root), as seen by `k`.
fn leader(k: &Kplex) -> String {
    let (code, body) = k.http(
        "GET",
        "/clusters/root/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kplex-controllers",
        "",
        b"",
    );
    if code != 200 {
        return String::new();
    }
    json(&body)["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// How many reconciles controller `name`'s workers ran on replica `k` (its metrics).
fn reconciles(k: &Kplex, name: &str) -> u64 {
    let (_, text) = k.http("GET", "/metrics", "", b"");
    let series = format!("workqueue_work_duration_seconds_count{{name=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn port_of(k: &Kplex) -> String {
    k.url("").rsplit(':').next().unwrap().to_string()
}

fn state_labelled(k: &Kplex, ns: &str) -> bool {
    let labels = ws_ok(
        k,
        "root:team",
        &["get", "ns", ns, "-o", "jsonpath={.metadata.labels}"],
    );
    labels.contains("state.workload.kcp.io/")
}

#[test]
fn leader_only_controllers_run_on_one_replica_and_fail_over() {
    let a = Kplex::start(Backend::Etcd);
    let b = a.replica();
    let holder = eventually(10, "a leader", || {
        Some(leader(&a)).filter(|h| !h.is_empty())
    });
    assert_eq!(leader(&b), holder, "both replicas see one Lease");
    let (leading, follower) = if holder.ends_with(&format!("_{}", port_of(&a))) {
        (a, b)
    } else {
        (b, a)
    };
    // Placement (leader-only) works whichever replica takes the writes.
    create_workspace(&follower, "root", "compute", None);
    create_workspace(&follower, "root", "team", None);
    common::ws_ok_stdin(
        &follower,
        "root:compute",
        &["apply", "-f", "-"],
        "apiVersion: workload.kcp.io/v1alpha1\nkind: SyncTarget\nmetadata: {name: east}\n---\napiVersion: scheduling.kcp.io/v1alpha1\nkind: Location\nmetadata: {name: default}\nspec:\n  resource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}\n",
    );
    common::heartbeat(&follower, "root:compute", "east");
    let team = follower.url("/clusters/root:team");
    follower.ok(&[
        "kplex",
        "bind",
        "compute",
        "root:compute",
        "--server",
        &team,
    ]);
    eventually(10, "the placement to schedule default", || {
        state_labelled(&follower, "default").then_some(())
    });
    // Namespace deletion (a writing controller) is the leader's work too: a namespace
    // deleted through the follower goes, and only the leader's workers reconciled.
    ws_ok(&follower, "root:team", &["create", "namespace", "doomed"]);
    ws_ok(
        &follower,
        "root:team",
        &["create", "configmap", "c", "-n", "doomed"],
    );
    ws_ok(
        &follower,
        "root:team",
        &["delete", "namespace", "doomed", "--wait=true"],
    );
    assert_eq!(reconciles(&follower, "builtins"), 0);
    assert!(reconciles(&leading, "builtins") > 0);
    // So is the workspace lifecycle's: a workspace deleted through the follower is torn
    // down by the leader.
    create_workspace(&follower, "root", "brief", None);
    ws_ok(
        &follower,
        "root",
        &["delete", "workspace", "brief", "--wait=true"],
    );
    assert_eq!(reconciles(&follower, "tenancy"), 0);
    assert!(reconciles(&leading, "tenancy") > 0);

    // Bindings made through the follower: the leader writes their status, the follower
    // serves what they bind.
    bind_widgets(&follower, "root:team");

    // kill -9 the leader: the follower takes the Lease within 10 s and carries on.
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-9", &leading.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let new_holder = eventually(12, "the follower to lead", || {
        Some(leader(&follower)).filter(|h| h.ends_with(&format!("_{}", port_of(&follower))))
    });
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "took {:?}",
        killed.elapsed()
    );
    assert_ne!(new_holder, holder);
    common::heartbeat(&follower, "root:compute", "east");
    ws_ok(&follower, "root:team", &["create", "namespace", "later"]);
    eventually(10, "the new leader to schedule a new namespace", || {
        state_labelled(&follower, "later").then_some(())
    });
    ws_ok(
        &follower,
        "root:team",
        &["delete", "namespace", "later", "--wait=true"],
    );
    assert!(reconciles(&follower, "builtins") > 0);
    // The new leader binds too: a binding made now is Bound, and served.
    create_workspace(&follower, "root", "team2", None);
    bind_widgets(&follower, "root:team2");
    ws_ok(
        &follower,
        "root",
        &["delete", "workspace", "team", "--wait=true"],
    );
    assert!(reconciles(&follower, "tenancy") > 0);
    drop(leading);
}

#[test]
fn a_second_process_on_one_embedded_store_is_refused_and_harms_nothing() {
    let a = Kplex::start(Backend::Embedded);
    a.ok(&["create", "configmap", "kept"]);
    let started = Instant::now();
    let second = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .arg("start")
        .arg("--root-directory")
        .arg(a.root())
        .arg("--secure-port")
        .arg(free_port().to_string())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second process must not start");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it fails at once"
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("in use by another kplex process") && stderr.contains("--etcd-servers"),
        "a clear message: {stderr}"
    );
    // The first process goes on serving what it stored.
    a.ok(&["get", "configmap", "kept"]);
    a.ok(&["create", "configmap", "after"]);
}
