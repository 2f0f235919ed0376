//! The kubectl plugins (`kubectl ws`, `kubectl create workspace`) end to end: the real
//! kubectl finds our binaries on PATH and drives a real kplex; messages are kcp's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Backend, Kplex, kubectl_binary};
use serde_json::Value;

const CURRENT: &str = "workspace.kcp.io/current";
const PREVIOUS: &str = "workspace.kcp.io/previous";

/// kubectl with our plugin binaries first on PATH.
fn run(k: &Kplex, args: &[&str]) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-ws"))
        .parent()
        .unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    Command::new(kubectl_binary())
        .args(args)
        .env("KUBECONFIG", k.kubeconfig())
        .env("HOME", k.home())
        .env("PATH", path)
        .output()
        .unwrap()
}

/// (stdout, stderr) of a successful run.
#[track_caller]
fn ok(k: &Kplex, args: &[&str]) -> (String, String) {
    let out = run(k, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stdout}\n{stderr}\nkplex log:\n{}",
        k.log()
    );
    (stdout, stderr)
}

/// stderr of a run that must fail with exit code 1.
#[track_caller]
fn fails(k: &Kplex, args: &[&str]) -> String {
    let out = run(k, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "kubectl {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kubectl ws ARGS` expecting exactly `want` on stdout.
#[track_caller]
fn ws(k: &Kplex, args: &[&str], want: &str) {
    let mut v = vec!["ws"];
    v.extend_from_slice(args);
    let (out, _) = ok(k, &v);
    assert_eq!(out, want, "kubectl ws {args:?}");
}

fn config(k: &Kplex) -> Value {
    serde_json::from_str(&ok(k, &["config", "view", "-o", "json"]).0).unwrap()
}

fn named<'a>(cfg: &'a Value, list: &str, name: &str) -> &'a Value {
    cfg[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {list} entry {name:?} in {cfg:#}"))
}

/// (cluster entry name, its server URL) of a context.
fn context_target(cfg: &Value, ctx: &str) -> (String, String) {
    let c = named(cfg, "contexts", ctx)["context"].clone();
    let cluster = c["cluster"].as_str().unwrap().to_string();
    assert_eq!(c["user"], "kplex-admin", "the context keeps its user");
    let server = named(cfg, "clusters", &cluster)["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    (cluster, server)
}

/// The kubeconfig after a switch: `current` is current and points at `cur`; `previous` at
/// `prev`.
#[track_caller]
fn assert_contexts(k: &Kplex, cur: &str, prev: &str) {
    let cfg = config(k);
    assert_eq!(cfg["current-context"], CURRENT);
    let (_, server) = context_target(&cfg, CURRENT);
    assert_eq!(server, k.url(&format!("/clusters/{cur}")), "current");
    let (_, server) = context_target(&cfg, PREVIOUS);
    assert_eq!(server, k.url(&format!("/clusters/{prev}")), "previous");
    // The admin entries are never rewritten.
    assert_eq!(context_target(&cfg, "root").1, k.url("/clusters/root"));
}

#[test]
fn workspace_plugins() {
    let k = Kplex::start(Backend::Embedded);

    // Before any switch: the admin context `root`.
    ws(&k, &["."], "Current workspace is 'root'.\n");
    ws(&k, &["current"], "Current workspace is 'root'.\n");
    ws(&k, &["current", "--short"], "root\n");
    let (out, _) = ok(&k, &["workspace", "."]);
    assert_eq!(
        out, "Current workspace is 'root'.\n",
        "the long plugin name"
    );
    assert_eq!(
        fails(&k, &["ws", "-"]),
        "Error: no previous workspace found in kubeconfig\n"
    );

    // kubectl create workspace --enter: create, wait, enter.
    let (out, _) = ok(
        &k,
        &[
            "create",
            "workspace",
            "org",
            "--type",
            "organization",
            "--enter",
        ],
    );
    assert_eq!(
        out,
        // Scheduled by its own POST: Ready in the create's answer, so no waiting line.
        "Workspace \"org\" (type root:organization) is ready to use.\n\
         Current workspace is 'root:org' (type root:organization).\n"
    );
    let cfg = config(&k);
    assert_eq!(
        context_target(&cfg, PREVIOUS).0,
        "root",
        "the first previous context is the admin context itself"
    );
    assert_contexts(&k, "root:org", "root");

    // ws create: created in the current workspace, which stays current.
    let (out, err) = ok(&k, &["ws", "create", "team-a"]);
    assert_eq!(
        out,
        "Workspace \"team-a\" (type root:universal) is ready to use.\n"
    );
    assert!(err.contains("Command \"create\" is deprecated"), "{err}");
    assert_contexts(&k, "root:org", "root");
    let (out, _) = ok(
        &k,
        &[
            "create",
            "workspace",
            "team-b",
            "--type=root:universal",
            "--enter",
        ],
    );
    assert!(
        out.ends_with("Current workspace is 'root:org:team-b' (type root:universal).\n"),
        "{out}"
    );
    assert_contexts(&k, "root:org:team-b", "root:org");
    // The rewritten kubeconfig is an ordinary one: plain kubectl works in the workspace.
    ws(
        &k,
        &[".."],
        "Current workspace is 'root:org' (type root:organization).\n",
    );
    let (names, _) = ok(&k, &["get", "workspaces", "-o", "name"]);
    assert_eq!(
        names,
        "workspace.tenancy.kcp.io/team-a\nworkspace.tenancy.kcp.io/team-b\n"
    );

    // Navigation in every form.
    ws(
        &k,
        &["team-a"],
        "Current workspace is 'root:org:team-a' (type root:universal).\n",
    );
    assert_contexts(&k, "root:org:team-a", "root:org");
    ws(&k, &["-"], "Current workspace is 'root:org'.\n");
    assert_contexts(&k, "root:org", "root:org:team-a");
    ws(&k, &["-"], "Current workspace is 'root:org:team-a'.\n");
    assert_contexts(&k, "root:org:team-a", "root:org");
    ws(
        &k,
        &["use", "..:team-b"],
        "Current workspace is 'root:org:team-b' (type root:universal).\n",
    );
    ws(
        &k,
        &["cd", "..:.."],
        "Current workspace is 'root' (type root).\n",
    );
    ws(
        &k,
        &["org:team-a"],
        "Current workspace is 'root:org:team-a' (type root:universal).\n",
    );
    ws(
        &k,
        &[":root:org"],
        "Current workspace is 'root:org' (type root:organization).\n",
    );
    ws(&k, &[":"], "Current workspace is 'root'.\n");
    ws(&k, &[".", "--short"], "root\n");
    let (out, err) = ok(&k, &["ws", "root:org:team-b"]);
    assert_eq!(
        out,
        "Current workspace is 'root:org:team-b' (type root:universal).\n"
    );
    assert_eq!(
        err,
        "Note: Using 'root:' to define an absolute path is no longer supported. Instead, use ':root' to specify an absolute path.\n"
    );
    ws(&k, &["current", "--short"], "root:org:team-b\n");

    // Home: `~`, and bare `ws` (cd semantics, with kcp's note).
    ws(&k, &["~"], "Current workspace is 'user:kplex-admin'.\n");
    assert_contexts(&k, "user:kplex-admin", "root:org:team-b");
    ws(&k, &["-"], "Current workspace is 'root:org:team-b'.\n");
    let (out, err) = ok(&k, &["ws"]);
    assert_eq!(out, "Current workspace is 'user:kplex-admin'.\n");
    assert!(
        err.starts_with("Note: 'kubectl ws' now matches 'cd' semantics"),
        "{err}"
    );
    ws(&k, &["current", "--short"], "user:kplex-admin\n");

    // Not found, denied paths and bad input leave the kubeconfig alone.
    ws(
        &k,
        &[":root:org"],
        "Current workspace is 'root:org' (type root:organization).\n",
    );
    assert_eq!(
        fails(&k, &["ws", "nope"]),
        "Error: workspace \"root:org:nope\" not found\n"
    );
    assert_eq!(
        fails(&k, &["ws", ":root:org:team-a:deeper:still"]),
        "Error: workspace \"root:org:team-a:deeper:still\" not found\n"
    );
    assert_eq!(
        fails(&k, &["ws", "Bad_Name"]),
        "Error: invalid workspace path: Bad_Name\n"
    );
    assert_eq!(
        fails(&k, &["ws", ":root:..:.."]),
        "Error: cannot go up from root\n"
    );
    assert_contexts(&k, "root:org", "user:kplex-admin");

    // Tree, from the current workspace down.
    ws(
        &k,
        &["tree"],
        ".\n└── org\n    ├── team-a\n    └── team-b\n\n",
    );
    ws(
        &k,
        &["tree", "--full"],
        ".\n└── root:org\n    ├── root:org:team-a\n    └── root:org:team-b\n\n",
    );
    ws(
        &k,
        &["team-a"],
        "Current workspace is 'root:org:team-a' (type root:universal).\n",
    );
    ok(&k, &["create", "workspace", "leaf"]);
    ws(&k, &[":root"], "Current workspace is 'root' (type root).\n");
    ws(
        &k,
        &["tree"],
        ".\n└── root\n    └── org\n        ├── team-a\n        │   └── leaf\n        └── team-b\n\n",
    );

    // Creating what exists: the server's error, or tolerated with --ignore-existing.
    ws(
        &k,
        &["org"],
        "Current workspace is 'root:org' (type root:organization).\n",
    );
    let err = fails(&k, &["create", "workspace", "team-a"]);
    assert!(
        err.starts_with("Error: ") && err.contains("\"team-a\" already exists"),
        "{err}"
    );
    let (out, _) = ok(
        &k,
        &[
            "create",
            "workspace",
            "team-a",
            "--ignore-existing",
            "--type",
            "root:universal",
        ],
    );
    assert_eq!(
        out,
        "Workspace \"team-a\" (type root:universal) already exists.\n\
         Workspace \"team-a\" (type root:universal) is ready to use.\n"
    );
    assert_eq!(
        fails(
            &k,
            &[
                "create",
                "workspace",
                "team-a",
                "--ignore-existing",
                "--type",
                "universal"
            ]
        ),
        "Error: --ignore-existing must not be used with non-absolute type path\n"
    );
    let err = fails(
        &k,
        &[
            "create",
            "workspace",
            "team-a",
            "--ignore-existing",
            "--type",
            "root:team",
        ],
    );
    assert_eq!(
        err,
        "Error: workspace \"team-a\" cannot be created with type root:team, it already exists with different type root:universal\n"
    );
    let err = fails(&k, &["create", "workspace", "x", "--type", "no-such-type"]);
    assert!(err.starts_with("Error: "), "{err}");
    assert_contexts(&k, "root:org", "root");

    // create-context: a named context for the current workspace, made current.
    let (out, _) = ok(&k, &["ws", "create-context"]);
    assert_eq!(out, "Created context \"root:org\" and switched to it.\n");
    let cfg = config(&k);
    assert_eq!(cfg["current-context"], "root:org");
    assert_eq!(
        context_target(&cfg, "root:org").1,
        k.url("/clusters/root:org")
    );
    assert_eq!(
        fails(&k, &["ws", "create-context", "root:org"]),
        "Error: context \"root:org\" already exists in kubeconfig, use --overwrite to update it\n"
    );
    let (out, _) = ok(&k, &["ws", "create-context", "root:org", "--overwrite"]);
    assert_eq!(out, "Updated context \"root:org\".\n");
    // Switching from a plain context keeps it as the previous one.
    ws(
        &k,
        &["team-b"],
        "Current workspace is 'root:org:team-b' (type root:universal).\n",
    );
    assert_contexts(&k, "root:org:team-b", "root:org");
    assert_eq!(context_target(&config(&k), PREVIOUS).0, "root:org");
    // --create-context: a context for the new workspace; the current one stays.
    let (out, _) = ok(
        &k,
        &["create", "workspace", "team-c", "--create-context", "c"],
    );
    assert!(
        out.ends_with("is ready to use.\nCreated context \"c\".\n"),
        "{out}"
    );
    let cfg = config(&k);
    assert_eq!(cfg["current-context"], CURRENT);
    assert!(context_target(&cfg, "c").1.contains("/clusters/"));
    ok(
        &k,
        &[
            "--context",
            "c",
            "create",
            "configmap",
            "in-c",
            "-n",
            "default",
        ],
    );
    ws(
        &k,
        &["team-c"],
        "Current workspace is 'root:org:team-b:team-c' (type root:universal).\n",
    );
    let (names, _) = ok(
        &k,
        &[
            "get",
            "configmaps",
            "-n",
            "default",
            "-o",
            "name",
            common::NOT_ROOT_CA,
        ],
    );
    assert_eq!(names, "configmap/in-c\n");
}

const CLAIMING_EXPORT: &str = r#"
apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata: {name: widgets}
spec:
  resources: [{name: widgets, group: example.dev, schema: v1.widgets.example.dev, storage: {crd: {}}}]
  permissionClaims: [{group: "", resource: configmaps, verbs: [get, list, watch]}]
"#;

const THINGS_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.dev}
spec:
  group: example.dev
  scope: Cluster
  names: {plural: things, kind: Thing}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object}}}}
"#;

#[test]
fn kplex_plugin_binds_manages_claims_and_snapshots_crds() {
    let k = Kplex::start(Backend::Embedded);
    let schema = k.write_file("schema.yaml", common::WIDGETS_SCHEMA);
    let export = k.write_file("export.yaml", CLAIMING_EXPORT);
    ok(&k, &["create", "workspace", "provider", "--enter"]);
    ok(&k, &["apply", "-f", common::path_str(&schema)]);
    ok(&k, &["apply", "-f", common::path_str(&export)]);
    ok(&k, &["ws", ":root"]);
    ok(&k, &["create", "workspace", "consumer", "--enter"]);

    // bind: waits for Bound, accepting the claim it is told to.
    let (out, err) = ok(
        &k,
        &[
            "kplex",
            "bind",
            "apiexport",
            "root:provider:widgets",
            "--accept-permission-claim",
            "configmaps",
        ],
    );
    assert_eq!(out, "apibinding.apis.kcp.io/widgets created and bound.\n");
    assert!(
        err.is_empty() || err.contains("Waiting for APIBinding widgets"),
        "{err}"
    );
    let (phase, _) = ok(
        &k,
        &[
            "get",
            "apibinding",
            "widgets",
            "-o",
            "jsonpath={.status.phase}",
        ],
    );
    assert_eq!(phase, "Bound");
    ok(&k, &["get", "widgets"]);

    // claims: listed with their state; rejecting one updates the binding.
    let (table, _) = ok(&k, &["kplex", "claims", "get", "apibinding", "widgets"]);
    let row = table
        .lines()
        .find(|l| l.contains("configmaps"))
        .unwrap_or("");
    assert!(
        row.contains("Accepted") && row.contains("get,list,watch"),
        "{table}"
    );
    let (out, _) = ok(
        &k,
        &[
            "kplex",
            "claims",
            "reject",
            "apibinding",
            "widgets",
            "configmaps",
        ],
    );
    assert_eq!(out, "apibinding.apis.kcp.io/widgets claims updated.\n");
    let (table, _) = ok(&k, &["kplex", "claims", "get", "apibinding", "widgets"]);
    assert!(table.contains("Rejected"), "{table}");

    // A second binding of the same export conflicts: bind reports why it never got Bound.
    let err = fails(
        &k,
        &[
            "kplex",
            "bind",
            "apiexport",
            "root:provider:widgets",
            "--name",
            "again",
            "--timeout",
            "3s",
        ],
    );
    assert!(
        err.contains("timed out waiting for APIBinding again to be bound"),
        "{err}"
    );
    assert!(err.contains("NamingConflicts"), "{err}");

    // crd snapshot: a CRD becomes an APIResourceSchema the server accepts.
    let crd = k.write_file("crd.yaml", THINGS_CRD);
    let (snapshot, _) = ok(
        &k,
        &[
            "kplex",
            "crd",
            "snapshot",
            "-f",
            common::path_str(&crd),
            "--prefix",
            "v1",
        ],
    );
    assert!(
        snapshot.contains("name: v1.things.example.dev"),
        "{snapshot}"
    );
    let file = k.write_file("snapshot.yaml", &snapshot);
    ok(&k, &["ws", ":root:provider"]);
    let (created, _) = ok(&k, &["create", "-f", common::path_str(&file)]);
    assert!(
        created.contains("apiresourceschema.apis.kcp.io/v1.things.example.dev created"),
        "{created}"
    );
}

/// A namespace chosen in one workspace (`kubens team1`) does not follow `kubectl ws` into
/// another, where it would name nothing; `kubectl ws -` brings it back with its workspace.
#[test]
fn switching_workspace_leaves_the_namespace_behind() {
    let k = Kplex::start(Backend::Embedded);
    ok(&k, &["create", "namespace", "team1"]);
    ok(
        &k,
        &["config", "set-context", "--current", "--namespace", "team1"],
    );
    ok(&k, &["create", "configmap", "in-team1"]);
    ok(&k, &["create", "workspace", "other"]);
    let namespace = |k: &Kplex| {
        ok(
            k,
            &["config", "view", "--minify", "-o", "jsonpath={..namespace}"],
        )
        .0
    };
    assert_eq!(namespace(&k), "team1");

    ok(&k, &["ws", "other"]);
    assert_eq!(namespace(&k), "");
    // kubectl's own default namespace works at once in the new workspace.
    ok(&k, &["create", "configmap", "in-other"]);
    ok(&k, &["get", "configmap", "in-other", "-n", "default"]);

    ok(&k, &["ws", "-"]);
    assert_eq!(namespace(&k), "team1");
    ok(&k, &["get", "configmap", "in-team1"]);
}

const SOURCE_OBJECTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team, labels: {app: shop}}
data: {color: blue}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: readers, namespace: team}
rules: [{verbs: [get], apiGroups: [""], resources: [configmaps]}]
"#;

/// A field of an object in namespace `team` of the current workspace (`kubectl get -o
/// jsonpath`).
fn team_field(k: &Kplex, resource: &str, name: &str, path: &str) -> String {
    let path = format!("jsonpath={{{path}}}");
    ok(k, &["get", resource, name, "-n", "team", "-o", &path]).0
}

/// `kubectl ws snapshot`, `restore`, `fork` and `export` (issue 16 item 5): a workspace is
/// saved online, restored into itself after changes (what was added goes, what was deleted
/// comes back, uids kept), forked into a new workspace that serves the same objects and
/// custom resources while the source is untouched, and exported as manifests that
/// `kubectl apply` takes into an empty workspace. Another workspace is never touched.
#[test]
fn workspaces_snapshot_restore_fork_and_export() {
    let k = Kplex::start(Backend::Embedded);
    ok(&k, &["create", "workspace", "src", "--enter"]);
    let objects = k.write_file("objects.yaml", SOURCE_OBJECTS);
    ok(&k, &["apply", "-f", common::path_str(&objects)]);
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: team}\nspec: {size: 3}\n";
    let widget_file = k.write_file("widget.yaml", widget);
    common::eventually(20, "the CRD served", || {
        let out = run(&k, &["apply", "-f", common::path_str(&widget_file)]);
        out.status.success().then_some(())
    });
    let uid = |k: &Kplex| team_field(k, "cm", "settings", ".metadata.uid");
    let original_uid = uid(&k);
    // A neighbour that must stay as it is.
    ok(&k, &["ws", ":root"]);
    ok(&k, &["create", "workspace", "neighbour"]);
    ok(&k, &["ws", "neighbour"]);
    ok(&k, &["create", "configmap", "mine"]);
    ok(&k, &["ws", ":root"]);

    let snap = k.root().join("src.snap");
    let (_, saved) = ok(
        &k,
        &["ws", "snapshot", "src", "-o", common::path_str(&snap)],
    );
    assert!(saved.contains("Workspace \"root:src\" saved to"), "{saved}");

    // Changes after the snapshot, undone by restoring it.
    ok(&k, &["ws", "src"]);
    ok(&k, &["delete", "cm", "settings", "-n", "team"]);
    ok(&k, &["create", "configmap", "later", "-n", "team"]);
    ok(&k, &["ws", ":root"]);
    let (restored, _) = ok(&k, &["ws", "restore", common::path_str(&snap), "src"]);
    assert!(
        restored.contains("Workspace \"root:src\" restored from"),
        "{restored}"
    );
    ok(&k, &["ws", "src"]);
    assert_eq!(uid(&k), original_uid, "the restored object keeps its uid");
    let names = ok(
        &k,
        &["get", "cm", "-n", "team", "-o", "name", common::NOT_ROOT_CA],
    )
    .0;
    assert_eq!(names.trim(), "configmap/settings", "later is gone: {names}");

    // A fork serves the same objects, custom resources included, and is its own.
    ok(&k, &["ws", ":root"]);
    let (forked, _) = ok(&k, &["ws", "fork", "src", "preview"]);
    assert!(
        forked.contains("Workspace \"root:preview\" forked from \"root:src\""),
        "{forked}"
    );
    ok(&k, &["ws", "preview"]);
    let color = team_field(&k, "cm", "settings", ".data.color");
    assert_eq!(color, "blue");
    let cluster = team_field(
        &k,
        "cm",
        "settings",
        ".metadata.annotations.kcp\\.io/cluster",
    );
    let size = common::eventually(20, "the fork serves widgets", || {
        let out = run(
            &k,
            &[
                "get",
                "widgets",
                "w1",
                "-n",
                "team",
                "-o",
                "jsonpath={.spec.size}",
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(size, "3");
    ok(
        &k,
        &["create", "configmap", "only-in-preview", "-n", "team"],
    );
    ok(&k, &["ws", ":root:src"]);
    let src_cluster = team_field(
        &k,
        "cm",
        "settings",
        ".metadata.annotations.kcp\\.io/cluster",
    );
    assert_ne!(
        cluster, src_cluster,
        "the fork's objects name their own logical cluster"
    );
    assert!(
        !run(&k, &["get", "cm", "only-in-preview", "-n", "team"])
            .status
            .success()
    );

    // Export: manifests without server fields, which an empty workspace takes.
    let (yaml, _) = ok(&k, &["ws", "export"]);
    for field in [
        "uid:",
        "resourceVersion:",
        "managedFields",
        "kcp.io/cluster",
        "kube-root-ca.crt",
    ] {
        assert!(!yaml.contains(field), "{field} in the export:\n{yaml}");
    }
    assert!(yaml.contains("name: settings") && yaml.contains("kind: CustomResourceDefinition"));
    let exported = k.write_file("export.yaml", &yaml);
    ok(&k, &["ws", ":root"]);
    ok(&k, &["create", "workspace", "from-git", "--enter"]);
    // As with any manifest holding a CRD and its objects, the objects map once the CRD
    // is established: apply again until they do.
    common::eventually(20, "the export applied", || {
        let out = run(&k, &["apply", "-f", common::path_str(&exported)]);
        out.status.success().then_some(())
    });
    assert_eq!(team_field(&k, "widgets", "w1", ".spec.size"), "3");
    assert_eq!(team_field(&k, "cm", "settings", ".data.color"), "blue");

    // The neighbour saw none of it.
    ok(&k, &["ws", ":root:neighbour"]);
    let theirs = ok(&k, &["get", "cm", "-o", "name", common::NOT_ROOT_CA]).0;
    assert_eq!(theirs.trim(), "configmap/mine");
}
