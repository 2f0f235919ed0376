//! Logical clusters and the workspace tree, through the real kubectl: kcp's quickstart tour,
//! isolation between workspaces, wildcard views, home workspaces, initializers, and deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{
    Backend, Kplex, create_workspace, eventually, in_ws, json, set_finalizers, ws_fails as fails,
    ws_ok as ok, ws_ok_stdin as ok_stdin, ws_succeeds,
};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;

#[test]
fn quickstart_tour() {
    let mut k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "org", Some("organization"));
    create_workspace(&k, "root:org", "team-a", None);
    create_workspace(&k, "root:org", "team-b", Some("team"));
    let table = ok(&k, "root:org", &["get", "workspaces"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        vec!["NAME", "TYPE", "REGION", "PHASE", "URL", "AGE"],
        "{table}"
    );
    assert!(
        table.contains("team-b") && table.contains("team ") && table.contains("Ready"),
        "{table}"
    );
    assert!(
        table.contains(&k.url("/clusters/root:org:team-a")),
        "{table}"
    );
    // A type's limits hold: a team cannot sit directly under root.
    let denied = fails(&k, "root", &["create", "-f", common::path_str(&k.write_file("t.yaml", "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: stray}\nspec: {type: {name: team}}\n"))]);
    assert!(
        denied.contains("only allows [root:organization] parent workspaces"),
        "{denied}"
    );

    // A CRD and its objects in team-a are absent from team-b.
    ok_stdin(&k, "root:org:team-a", &["apply", "-f", "-"], CRD);
    ok(
        &k,
        "root:org:team-a",
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
        ],
    );
    ok_stdin(
        &k,
        "root:org:team-a",
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    );
    assert!(
        ok(&k, "root:org:team-a", &["get", "widgets", "-o", "name"])
            .contains("widget.example.com/w")
    );
    assert!(!ok(&k, "root:org:team-b", &["api-resources"]).contains("widgets"));
    assert!(
        fails(&k, "root:org:team-b", &["get", "widgets"]).contains("doesn't have a resource type")
    );

    // The wildcard view sees both teams' objects, each with its logical cluster.
    ok(&k, "root:org:team-a", &["create", "configmap", "from-a"]);
    ok(&k, "root:org:team-b", &["create", "configmap", "from-b"]);
    let cluster_a = ok(
        &k,
        "root:org",
        &[
            "get",
            "workspace",
            "team-a",
            "-o",
            "jsonpath={.spec.cluster}",
        ],
    );
    let cluster_b = ok(
        &k,
        "root:org",
        &[
            "get",
            "workspace",
            "team-b",
            "-o",
            "jsonpath={.spec.cluster}",
        ],
    );
    let all = json(&k.ok(&["get", "--raw", "/clusters/*/api/v1/configmaps"]));
    let seen: Vec<(String, String)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metadata"]["name"].as_str().unwrap().to_string(),
                i["metadata"]["annotations"]["kcp.io/cluster"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("from-a".into(), cluster_a.clone()))
            && seen.contains(&("from-b".into(), cluster_b.clone())),
        "{seen:?}"
    );
    // The same workspace answers by path and by logical cluster name.
    assert!(ok(&k, &cluster_a, &["get", "configmaps", "-o", "name"]).contains("configmap/from-a"));

    // A restart keeps the tree.
    k.restart();
    assert!(
        ok(&k, "root:org:team-b", &["get", "configmaps", "-o", "name"])
            .contains("configmap/from-b")
    );
    assert!(
        ok(&k, "root:org:team-a", &["get", "widgets", "-o", "name"])
            .contains("widget.example.com/w")
    );

    // Deleting org removes both teams and everything in them.
    ok(&k, "root", &["delete", "workspace", "org", "--timeout=60s"]);
    assert!(!ok(&k, "root", &["get", "workspaces", "-o", "name"]).contains("org"));
    fails(&k, "root:org:team-a", &["get", "configmaps"]);
    let all = k.ok(&["get", "--raw", "/clusters/*/api/v1/configmaps"]);
    assert!(!all.contains("from-a") && !all.contains("from-b"), "{all}");
    let lcs = k.ok(&[
        "get",
        "--raw",
        "/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters",
    ]);
    assert!(
        !lcs.contains(&cluster_a) && !lcs.contains(&cluster_b),
        "{lcs}"
    );
}

#[test]
fn initializer_holds_workspace_until_removed_through_the_virtual_workspace() {
    let k = Kplex::start(Backend::Embedded);
    ok_stdin(
        &k,
        "root",
        &["create", "-f", "-"],
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: slow}\nspec: {initializer: true}\n",
    );
    ok_stdin(
        &k,
        "root",
        &["create", "-f", "-"],
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: w}\nspec: {type: {name: slow}}\n",
    );
    eventually(20, "Initializing", || {
        (ok(
            &k,
            "root",
            &["get", "ws", "w", "-o", "jsonpath={.status.phase}"],
        ) == "Initializing")
            .then_some(())
    });
    let vw = "/services/initializingworkspaces/root:slow";
    // A watch through the virtual workspace sees the cluster, then sees it leave.
    let mut watch = k.spawn_kubectl(&[
        "get",
        "--raw",
        &format!("{vw}/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters?watch=true"),
    ]);
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let added = json(&rx.recv_timeout(Duration::from_secs(20)).unwrap());
    assert_eq!(
        (
            added["type"].as_str(),
            added["object"]["metadata"]["annotations"]["kcp.io/path"].as_str()
        ),
        (Some("ADDED"), Some("root:w"))
    );
    let list = json(&k.ok(&[
        "get",
        "--raw",
        &format!("{vw}/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters"),
    ]));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let cluster = ok(
        &k,
        "root",
        &["get", "ws", "w", "-o", "jsonpath={.spec.cluster}"],
    );
    let through = format!("{vw}/clusters/{cluster}");
    // The content is reachable through the virtual workspace while initializing.
    let server = ["--server", &k.url(&through)];
    k.ok(&[server[0], server[1], "create", "configmap", "seeded"]);
    // Changing anything but our own initializer is refused.
    let denied = k.fails(&[
        server[0],
        server[1],
        "patch",
        "logicalcluster",
        "cluster",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready"}}"#,
    ]);
    assert!(
        denied.contains("only removing initializer root:slow"),
        "{denied}"
    );
    k.ok(&[
        server[0],
        server[1],
        "patch",
        "logicalcluster",
        "cluster",
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/status/initializers/0"}]"#,
    ]);
    eventually(20, "Ready", || {
        (ok(
            &k,
            "root",
            &["get", "ws", "w", "-o", "jsonpath={.status.phase}"],
        ) == "Ready")
            .then_some(())
    });
    let left = json(&rx.recv_timeout(Duration::from_secs(20)).unwrap());
    assert_eq!(left["type"], "DELETED", "{left}");
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(ok(&k, "root:w", &["get", "configmaps", "-o", "name"]).contains("configmap/seeded"));
    // Once Ready, the virtual workspace no longer serves the cluster.
    k.fails(&[server[0], server[1], "get", "configmaps"]);
}

#[test]
fn home_workspace() {
    let k = Kplex::start(Backend::Embedded);
    let home = json(&k.ok(&[
        "get",
        "--raw",
        "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/~",
    ]));
    assert_eq!(home["status"]["phase"], "Ready");
    assert_eq!(
        home["spec"]["URL"].as_str().unwrap(),
        k.url("/clusters/user:kplex-admin")
    );
    ok(&k, "user:kplex-admin", &["create", "configmap", "mine"]);
    let cluster = home["spec"]["cluster"].as_str().unwrap();
    assert!(ok(&k, cluster, &["get", "configmaps", "-o", "name"]).contains("configmap/mine"));
    let again = json(&k.ok(&[
        "get",
        "--raw",
        "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/~",
    ]));
    assert_eq!(
        again["spec"]["cluster"], home["spec"]["cluster"],
        "the same home every time"
    );
}

/// Minimal valid objects of many kinds, created in one workspace and looked for in another.
const OBJECTS: &[(&str, &str)] = &[
    (
        "configmaps",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak, namespace: default}\n",
    ),
    (
        "secrets",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: leak, namespace: default}\n",
    ),
    (
        "serviceaccounts",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: leak, namespace: default}\n",
    ),
    (
        "namespaces",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: leak}\n",
    ),
    (
        "services",
        "apiVersion: v1\nkind: Service\nmetadata: {name: leak, namespace: default}\nspec: {ports: [{port: 80}]}\n",
    ),
    (
        "pods",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: leak, namespace: default}\nspec: {containers: [{name: c, image: busybox}]}\n",
    ),
    (
        "deployments.apps",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: leak, namespace: default}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: busybox}]}}}\n",
    ),
    (
        "roles.rbac.authorization.k8s.io",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: leak, namespace: default}\nrules: []\n",
    ),
    (
        "clusterroles.rbac.authorization.k8s.io",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: leak}\nrules: []\n",
    ),
    (
        "clusterrolebindings.rbac.authorization.k8s.io",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: leak}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: leak}\nsubjects: [{kind: User, name: alice}]\n",
    ),
    (
        "leases.coordination.k8s.io",
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: leak, namespace: default}\n",
    ),
    (
        "workspaces.tenancy.kcp.io",
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: leak}\nspec: {type: {name: universal, path: root}}\n",
    ),
    (
        "workspacetypes.tenancy.kcp.io",
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: leak}\n",
    ),
    ("customresourcedefinitions.apiextensions.k8s.io", CRD),
];

#[test]
fn workspaces_are_isolated_for_every_verb_and_resource() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "a", Some("universal"));
    create_workspace(&k, "root", "b", Some("universal"));
    // A watch in b, started before anything happens in a, must stay silent.
    let mut watch = k.spawn_kubectl(&[
        "get",
        "--raw",
        "/clusters/root:b/api/v1/configmaps?watch=true&resourceVersion=1",
    ]);
    for (_, manifest) in OBJECTS {
        ok_stdin(&k, "root:a", &["create", "-f", "-"], manifest);
    }
    ok(
        &k,
        "root:a",
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
        ],
    );
    ok_stdin(
        &k,
        "root:a",
        &["create", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: leak, namespace: default}\n",
    );
    ok(&k, "root:a", &["label", "configmap", "leak", "touched=yes"]);

    // Every resource b serves: nothing of a's shows up in a list.
    let resources = ok(
        &k,
        "root:b",
        &["api-resources", "--verbs=list", "-o", "name"],
    );
    assert!(!resources.contains("widgets"), "a's CRD is not served in b");
    for resource in resources.lines() {
        let listed = ok(
            &k,
            "root:b",
            &["get", resource, "-A", "-o", "name", "--ignore-not-found"],
        );
        assert!(
            !listed.lines().any(|l| l.ends_with("/leak")),
            "{resource} leaks into b: {listed}"
        );
    }
    // Every verb on each of a's objects, from b: not found.
    for (resource, manifest) in OBJECTS {
        let ns: &[&str] = if manifest.contains("namespace: default") {
            &["-n", "default"]
        } else {
            &[]
        };
        let with = |verb: &[&str]| -> Vec<String> {
            verb.iter().chain(ns).map(|s| s.to_string()).collect()
        };
        for verb in [
            with(&["get", resource, "leak"]),
            with(&["delete", resource, "leak", "--wait=false"]),
            with(&["label", resource, "leak", "x=y"]),
            with(&["annotate", resource, "leak", "x=y"]),
            with(&[
                "patch",
                resource,
                "leak",
                "--type=merge",
                "-p",
                r#"{"metadata":{"labels":{"x":"y"}}}"#,
            ]),
        ] {
            let args: Vec<&str> = verb.iter().map(String::as_str).collect();
            let err = fails(&k, "root:b", &args);
            assert!(
                err.contains("NotFound") || err.contains("not found"),
                "{args:?} in b: {err}"
            );
        }
    }
    let replace = in_ws(
        &k,
        "root:b",
        &[
            "replace",
            "--validate=false",
            "-f",
            common::path_str(&k.write_file("cm.yaml", OBJECTS[0].1)),
        ],
    );
    let out = k.kubectl(&replace.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Deleting everything in b (deletecollection) leaves a's objects alone.
    ok(
        &k,
        "root:b",
        &["delete", "configmaps", "--all", "-n", "default"],
    );
    assert!(
        ok(
            &k,
            "root:a",
            &["get", "configmaps", "-n", "default", "-o", "name"]
        )
        .contains("configmap/leak")
    );
    // b's OpenAPI does not know a's CRD; a's does.
    assert!(
        !k.ok(&["get", "--raw", "/clusters/root:b/openapi/v3"])
            .contains("example.com")
    );
    assert!(
        k.ok(&["get", "--raw", "/clusters/root:a/openapi/v3"])
            .contains("apis/example.com/v1")
    );
    // The watch in b, replaying from the first revision, saw only b's own objects.
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let out = watch.wait_with_output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(
        !events.contains("\"leak\""),
        "b's watch saw a's objects: {events}"
    );
}

/// A Workspace POST answers with the workspace already scheduled and Ready (its own request
/// gives it its logical cluster), and a burst of concurrent creations — where the
/// controller wakes for each one too — still yields exactly one logical cluster per
/// workspace.
#[test]
fn concurrent_creations_answer_ready_with_one_logical_cluster_each() {
    let k = Kplex::start(Backend::Embedded);
    // A dry run shows the phase a Workspace is created in, before scheduling.
    let (code, body) = k.http(
        "POST",
        "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces?dryRun=All",
        "application/json",
        br#"{"apiVersion":"tenancy.kcp.io/v1alpha1","kind":"Workspace","metadata":{"name":"dry"}}"#,
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(json(&body)["status"]["phase"], "Scheduling", "{body}");
    assert!(json(&body)["spec"]["cluster"].is_null(), "{body}");
    let names: Vec<String> = (0..24).map(|i| format!("burst-{i}")).collect();
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let k = &k;
                s.spawn(move || {
                    let body = format!(
                        r#"{{"apiVersion":"tenancy.kcp.io/v1alpha1","kind":"Workspace","metadata":{{"name":"{name}"}}}}"#
                    );
                    k.http(
                        "POST",
                        "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces",
                        "application/json",
                        body.as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (code, body) in &answers {
        assert_eq!(*code, 201, "{body}");
        let ws = json(body);
        assert_eq!(ws["status"]["phase"], "Ready", "{body}");
        assert!(
            ws["spec"]["cluster"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(
            ws["spec"]["URL"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!(
                    "/clusters/root:{}",
                    ws["metadata"]["name"].as_str().unwrap()
                )))
        );
    }
    // Give the controller time to act on every creation event, then count.
    std::thread::sleep(Duration::from_secs(2));
    let list = json(&k.ok(&[
        "get",
        "--raw",
        "/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters",
    ]));
    for (name, (_, body)) in names.iter().zip(&answers) {
        let owned: Vec<&serde_json::Value> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|lc| lc["spec"]["owner"]["name"] == name.as_str())
            .collect();
        assert_eq!(owned.len(), 1, "logical clusters of {name}: {owned:?}");
        assert_eq!(
            owned[0]["metadata"]["annotations"]["kcp.io/cluster"],
            json(body)["spec"]["cluster"]
        );
    }
}

/// A workspace whose deletion is held by a finalizer inside it when kplex restarts finishes
/// deleting once the finalizer goes: the controllers pick up workspaces left mid-way.
#[test]
fn deletion_in_progress_resumes_after_a_restart() {
    let mut k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "doomed", None);
    ok_stdin(
        &k,
        "root:doomed",
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: default, finalizers: [example.com/hold]}\n",
    );
    ok(
        &k,
        "root",
        &["delete", "workspace", "doomed", "--wait=false"],
    );
    eventually(20, "the held ConfigMap to be terminating", || {
        let ts = ok(
            &k,
            "root:doomed",
            &[
                "get",
                "configmap",
                "held",
                "-o",
                "jsonpath={.metadata.deletionTimestamp}",
            ],
        );
        (!ts.is_empty()).then_some(())
    });
    k.restart();
    assert_eq!(
        ok(
            &k,
            "root",
            &[
                "get",
                "workspace",
                "doomed",
                "-o",
                "jsonpath={.status.phase}"
            ]
        ),
        "Terminating"
    );
    set_finalizers(&k, "root:doomed", "configmap", "held", &[]);
    eventually(20, "the workspace to be gone", || {
        (!ws_succeeds(&k, "root", &["get", "workspace", "doomed"])).then_some(())
    });
}

/// Workspaces deleted while their POST is still scheduling them are deleted whole: no
/// logical cluster, and nothing of one, is left behind.
#[test]
fn workspaces_deleted_during_creation_leave_nothing_behind() {
    let k = Kplex::start(Backend::Embedded);
    let path = "/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces";
    let names: Vec<String> = (0..16).map(|i| format!("brief-{i}")).collect();
    std::thread::scope(|s| {
        for name in &names {
            let k = &k;
            let body = format!(
                r#"{{"apiVersion":"tenancy.kcp.io/v1alpha1","kind":"Workspace","metadata":{{"name":"{name}"}}}}"#
            );
            s.spawn(move || {
                let (code, out) = k.http("POST", path, "application/json", body.as_bytes());
                assert_eq!(code, 201, "{out}");
            });
            // The DELETE races the POST: retried until the Workspace exists.
            s.spawn(move || {
                for _ in 0..2000 {
                    let (code, _) =
                        k.http("DELETE", &format!("{path}/{name}"), "application/json", b"");
                    if code == 200 || code == 202 {
                        return;
                    }
                }
                panic!("{name} was never deleted");
            });
        }
    });
    let items = |raw: &str| -> Vec<serde_json::Value> {
        json(&k.ok(&["get", "--raw", raw]))["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    eventually(
        30,
        "every workspace and everything of it to be gone",
        || {
            let clusters = items("/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters");
            let brief_clusters = clusters
                .iter()
                .filter(|lc| {
                    lc["spec"]["owner"]["name"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("brief-"))
                })
                .count();
            let live: Vec<&str> = clusters
                .iter()
                .filter_map(|lc| lc["metadata"]["annotations"]["kcp.io/cluster"].as_str())
                .collect();
            let orphans: Vec<String> = items("/clusters/*/api/v1/namespaces")
                .iter()
                .filter_map(|ns| ns["metadata"]["annotations"]["kcp.io/cluster"].as_str())
                .filter(|c| *c != "root" && !live.contains(c))
                .map(String::from)
                .collect();
            let workspaces = ok(&k, "root", &["get", "workspaces", "-o", "name"]);
            (brief_clusters == 0 && orphans.is_empty() && !workspaces.contains("brief-"))
                .then_some(())
        },
    );
}

/// A watch in a workspace ends when the workspace is deleted, with an error that names it,
/// instead of staying open and silent.
#[test]
fn a_watch_ends_when_its_workspace_is_deleted() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "doomed", None);
    ok(&k, "root:doomed", &["create", "configmap", "before"]);
    let mut watch = k.spawn_kubectl(&[
        "get",
        "--raw",
        "/clusters/root:doomed/api/v1/namespaces/default/configmaps?watch=true",
    ]);
    // The watch is open before the workspace goes: its first event has arrived.
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(r#""name":"before""#), "{first}");
    ok(
        &k,
        "root",
        &["delete", "workspace", "doomed", "--wait=true"],
    );
    eventually(20, "the watch to end", || {
        watch.try_wait().unwrap().map(|_| ())
    });
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let last = rest.last().cloned().unwrap_or_default();
    assert!(
        last.contains(r#""type":"ERROR""#) && last.contains("root:doomed"),
        "{rest:?}"
    );
}

/// Across workspaces (`/clusters/*`) a custom resource is listed at a version only from the
/// workspaces whose CRD serves that version: never shown in a version its workspace lacks.
#[test]
fn wildcard_lists_show_each_workspace_at_the_versions_it_serves() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "old", None);
    create_workspace(&k, "root", "new", None);
    ok_stdin(&k, "root:old", &["apply", "-f", "-"], CRD);
    ok_stdin(
        &k,
        "root:new",
        &["apply", "-f", "-"],
        &CRD.replace("name: v1,", "name: v2,"),
    );
    for ws in ["old", "new"] {
        let version = if ws == "old" { "v1" } else { "v2" };
        eventually(20, "the CRD to be served", || {
            ws_succeeds(&k, &format!("root:{ws}"), &["get", "widgets"]).then_some(())
        });
        ok_stdin(
            &k,
            &format!("root:{ws}"),
            &["apply", "-f", "-"],
            &format!(
                "apiVersion: example.com/{version}\nkind: Widget\nmetadata: {{name: w-{ws}}}\n"
            ),
        );
    }
    let names = |version: &str| -> Vec<String> {
        let list = json(&k.ok(&[
            "get",
            "--raw",
            &format!("/clusters/*/apis/example.com/{version}/widgets"),
        ]));
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                assert_eq!(i["apiVersion"], format!("example.com/{version}"));
                i["metadata"]["name"].as_str().unwrap().to_string()
            })
            .collect()
    };
    assert_eq!(names("v1"), ["w-old"]);
    assert_eq!(names("v2"), ["w-new"]);
}
