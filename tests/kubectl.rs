//! kubectl, unmodified, against kplex: the everyday commands, on the embedded store and on a
//! real etcd.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::time::Duration;

use common::{Backend, Kplex, eventually, set_finalizers, ws_succeeds};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg], categories: [all]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The widget's desired state.
            properties:
              size: {type: integer, description: How big the widget is., maximum: 10}
              color: {type: string, default: blue}
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

fn version_and_discovery(k: &Kplex) {
    let v = k.ok(&["version", "-o", "json"]);
    assert!(
        json(&v)["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .contains("kplex")
    );
    let resources = k.ok(&["api-resources"]);
    for name in [
        "configmaps",
        "deployments",
        "customresourcedefinitions",
        "rolebindings",
        "leases",
        "events",
    ] {
        assert!(
            resources.contains(name),
            "api-resources lacks {name}:\n{resources}"
        );
    }
    let versions = k.ok(&["api-versions"]);
    assert!(
        versions.contains("apps/v1") && versions.contains("v1\n"),
        "{versions}"
    );
}

fn create_generators_use_protobuf(k: &Kplex) {
    k.ok(&["create", "namespace", "team"]);
    k.ok(&[
        "create",
        "configmap",
        "cfg",
        "-n",
        "team",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "-n",
        "team",
        "--from-literal=password=s3cret",
    ]);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "team",
        "--image=nginx:1.25",
        "--replicas=2",
    ]);
    k.ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    let cm = json(&k.ok(&["get", "configmap", "cfg", "-n", "team", "-o", "json"]));
    assert_eq!(cm["data"]["b"], "2");
    let secret = json(&k.ok(&["get", "secret", "pw", "-n", "team", "-o", "json"]));
    assert_eq!(secret["data"]["password"], "czNjcmV0");
    let deploy = json(&k.ok(&["get", "deploy", "web", "-n", "team", "-o", "json"]));
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.25"
    );
    assert_eq!(deploy["metadata"]["generation"], 1);
    assert_eq!(deploy["metadata"]["annotations"]["kcp.io/cluster"], "root");
}

fn get_output_formats(k: &Kplex) {
    k.ok(&["create", "configmap", "one", "--from-literal=x=1"]);
    k.ok(&["label", "configmap", "one", "app=demo", "tier=web"]);
    k.ok(&["create", "configmap", "two"]);
    let table = k.ok(&["get", "configmaps"]);
    assert!(
        table.starts_with("NAME") && table.contains("DATA") && table.contains("AGE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("one ") && l.contains(" 1 ")),
        "{table}"
    );
    let yaml = k.ok(&["get", "cm", "one", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name", "-l", "app=demo"]).trim(),
        "configmap/one"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-l",
            "app!=demo,!tier",
            "-o",
            "name",
            common::NOT_ROOT_CA
        ])
        .trim(),
        "configmap/two"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-l",
            "tier in (web,db)",
            "-o",
            "jsonpath={.items[*].metadata.name}"
        ]),
        "one"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "--field-selector",
            "metadata.name=two",
            "-o",
            "name"
        ])
        .trim(),
        "configmap/two"
    );
    let wide = k.ok(&["get", "deploy", "-A", "-o", "wide"]);
    assert!(wide.is_empty() || wide.contains("CONTAINERS"), "{wide}");
    let all_ns = k.ok(&["get", "cm", "-A"]);
    assert!(all_ns.starts_with("NAMESPACE"), "{all_ns}");
    for i in 0..7 {
        k.ok(&["create", "configmap", &format!("page-{i}")]);
    }
    // Chunked listing follows continue tokens: every item arrives exactly once.
    let names = k.ok(&["get", "cm", "--chunk-size=2", "-o", "name"]);
    assert_eq!(names.lines().count(), 10, "nine and the CA's: {names}");
    assert!(names.contains("configmap/kube-root-ca.crt"), "{names}");
    let bad = k.fails(&["get", "cm", "--field-selector", "spec.nope=1"]);
    assert!(bad.contains("field label not supported"), "{bad}");
    let bad = k.fails(&["get", "cm", "-l", "a in (b"]);
    assert!(
        bad.to_lowercase().contains("parse") || bad.contains("BadRequest"),
        "{bad}"
    );
}

fn watch_sees_added_modified_deleted(k: &Kplex) {
    k.ok(&["create", "configmap", "w1"]);
    let mut watch = k.spawn_kubectl(&[
        "get",
        "cm",
        "-w",
        "--output-watch-events",
        common::NOT_ROOT_CA,
    ]);
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let header = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(header.starts_with("EVENT"), "{header}");
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(
        first.starts_with("ADDED") && first.contains("w1"),
        "{first}"
    );
    k.ok(&["label", "cm", "w1", "x=y"]);
    k.ok(&["delete", "cm", "w1"]);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(rx.recv_timeout(Duration::from_secs(20)).unwrap());
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(seen[0].starts_with("MODIFIED"), "{seen:?}");
    assert!(seen[1].starts_with("DELETED"), "{seen:?}");
}

fn apply_patch_label_annotate_scale(k: &Kplex) {
    let deploy = |image: &str, extra_env: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      containers:\n      - name: main\n        image: {image}\n        env:\n        - {{name: A, value: '1'}}\n{extra_env}      - name: sidecar\n        image: busybox\n"
        )
    };
    assert!(
        k.ok_stdin(&["apply", "-f", "-"], &deploy("nginx:1", ""))
            .contains("created")
    );
    let out = k.ok_stdin(
        &["apply", "-f", "-"],
        &deploy("nginx:2", "        - {name: B, value: '2'}\n"),
    );
    assert!(out.contains("configured"), "{out}");
    let d = json(&k.ok(&["get", "deploy", "app", "-o", "json"]));
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(
        containers.len(),
        2,
        "strategic merge keeps both containers: {containers:?}"
    );
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
    assert_eq!(d["metadata"]["generation"], 2);
    assert!(
        k.ok_stdin(
            &["apply", "-f", "-"],
            &deploy("nginx:2", "        - {name: B, value: '2'}\n")
        )
        .contains("unchanged")
    );

    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  a: '1'\n  b: '2'\n";
    k.ok_stdin(&["apply", "-f", "-"], cm);
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  a: '9'\n",
    );
    let c = json(&k.ok(&["get", "cm", "conf", "-o", "json"]));
    assert_eq!(
        c["data"],
        serde_json::json!({"a": "9"}),
        "apply removes keys dropped from the manifest"
    );

    k.ok(&[
        "patch",
        "cm",
        "conf",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"m":"merged"}}"#,
    ]);
    k.ok(&[
        "patch",
        "cm",
        "conf",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/j","value":"json"}]"#,
    ]);
    k.ok(&[
        "patch",
        "deploy",
        "app",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:2"}]}}}}"#,
    ]);
    let c = json(&k.ok(&["get", "cm", "conf", "-o", "json"]));
    assert_eq!(
        (c["data"]["m"].as_str(), c["data"]["j"].as_str()),
        (Some("merged"), Some("json"))
    );
    let d = json(&k.ok(&["get", "deploy", "app", "-o", "json"]));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][1]["image"],
        "busybox:2"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let bad = k.fails(&[
        "patch",
        "cm",
        "conf",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/nope/x"}]"#,
    ]);
    assert!(!bad.is_empty());

    k.ok(&["label", "cm", "conf", "team=blue"]);
    k.ok(&["annotate", "cm", "conf", "note=hello"]);
    let c = json(&k.ok(&["get", "cm", "conf", "-o", "json"]));
    assert_eq!(c["metadata"]["labels"]["team"], "blue");
    assert_eq!(c["metadata"]["annotations"]["note"], "hello");
    k.ok(&["label", "cm", "conf", "team-"]);
    assert!(
        json(&k.ok(&["get", "cm", "conf", "-o", "json"]))["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("team").is_none())
    );

    k.ok(&["scale", "deploy", "app", "--replicas=5"]);
    assert_eq!(
        k.ok(&["get", "deploy", "app", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let scale = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/app/scale",
    ]));
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(5))
    );
}

fn edit_with_scripted_editor(k: &Kplex) {
    k.ok(&["create", "configmap", "ed", "--from-literal=k=old"]);
    let editor = k.write_file("editor.sh", "#!/bin/sh\nsed -i 's/k: old/k: new/' \"$1\"\n");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = std::process::Command::new(common::kubectl_binary())
        .args(["edit", "cm", "ed"])
        .env("KUBECONFIG", k.kubeconfig())
        .env("HOME", k.home())
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        k.ok(&["get", "cm", "ed", "-o", "jsonpath={.data.k}"]),
        "new"
    );
}

fn crd_lifecycle_explain_and_get_all(k: &Kplex) {
    k.ok_stdin(&["apply", "-f", "-"], CRD);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
    );
    let table = k.ok(&["get", "widgets"]);
    assert!(
        table.contains("SIZE") && table.contains("w1") && table.contains('3'),
        "{table}"
    );
    let w = json(&k.ok(&["get", "wg", "w1", "-o", "json"]));
    assert_eq!(w["spec"]["color"], "blue", "defaulted from the schema");
    assert_eq!(w["metadata"]["generation"], 1);
    let invalid = k.fails(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":11}}"#,
    ]);
    assert!(
        invalid.contains("spec.size") && invalid.contains("less than or equal to 10"),
        "{invalid}"
    );
    let unknown = k.fails(&[
        "create",
        "--validate=strict",
        "-f",
        common::path_str(&k.write_file(
            "bogus.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  bogus: 1\n",
        )),
    ]);
    assert!(unknown.contains("unknown field"), "{unknown}");
    let smp = k.fails(&["patch", "widget", "w1", "-p", r#"{"spec":{"size":4}}"#]);
    assert!(
        smp.contains("UnsupportedMediaType")
            || smp.contains("unknown format")
            || smp.contains("accepted media types"),
        "{smp}"
    );
    let explain = k.ok(&["explain", "widgets.spec.size"]);
    assert!(explain.contains("How big the widget is."), "{explain}");
    let explain = k.ok(&["explain", "deployment.spec.replicas"]);
    assert!(explain.to_lowercase().contains("replicas"), "{explain}");
    let all = k.ok(&["get", "all"]);
    assert!(all.contains("widget.example.com/w1"), "{all}");
    // Status subresource: the main endpoint ignores status, /status only changes status.
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(
        k.ok(&["get", "widget", "w1", "-o", "jsonpath={.status.ready}"]),
        ""
    );
    k.ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type",
        "merge",
        "-p",
        r#"{"status":{"ready":true}}"#,
    ]);
    assert_eq!(
        k.ok(&["get", "widget", "w1", "-o", "jsonpath={.status.ready}"]),
        "true"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "widget",
            "w1",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "1"
    );
    k.ok(&["delete", "crd", "widgets.example.com"]);
    eventually(20, "widgets to disappear from discovery", || {
        let out = k.kubectl(&["api-resources", "--api-group=example.com"]);
        (!String::from_utf8_lossy(&out.stdout).contains("widgets")).then_some(())
    });
    let gone = k.kubectl(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/widgets/w1",
    ]);
    assert!(!gone.status.success());
}

/// A ConfigMap named `name` owned by the ConfigMap `owner` (which must exist).
fn create_owned(k: &Kplex, name: &str, owner: &str) {
    let uid = k.ok(&["get", "cm", owner, "-o", "jsonpath={.metadata.uid}"]);
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: {owner}, uid: {uid}, blockOwnerDeletion: true}}\n"
    );
    k.ok_stdin(&["create", "-f", "-"], &manifest);
}

fn delete_cascades_and_namespaces(k: &Kplex) {
    // Foreground: the dependent goes first, then the owner.
    k.ok(&["create", "configmap", "owner"]);
    create_owned(k, "owned", "owner");
    k.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--timeout=30s",
    ]);
    assert!(
        !ws_succeeds(k, "root", &["get", "cm", "owned"]),
        "foreground deletion removed the dependent"
    );
    // Orphan: the dependent stays, without the owner reference.
    k.ok(&["create", "configmap", "owner2"]);
    create_owned(k, "kept", "owner2");
    k.ok(&[
        "delete",
        "cm",
        "owner2",
        "--cascade=orphan",
        "--timeout=30s",
    ]);
    let kept = json(&k.ok(&["get", "cm", "kept", "-o", "json"]));
    assert!(
        kept["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r.as_array().is_none_or(Vec::is_empty)),
        "orphaned: {kept}"
    );
    // Background (the default): the garbage collector removes the dependent afterwards.
    k.ok(&["create", "configmap", "owner3"]);
    create_owned(k, "collected", "owner3");
    k.ok(&["delete", "cm", "owner3"]);
    eventually(20, "the garbage collector to delete the dependent", || {
        (!ws_succeeds(k, "root", &["get", "cm", "collected"])).then_some(())
    });
    // A namespace with contents: Terminating, emptied, gone.
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&["create", "configmap", "inside", "-n", "doomed"]);
    k.ok(&["create", "deployment", "d", "-n", "doomed", "--image=nginx"]);
    k.ok(&["delete", "namespace", "doomed", "--timeout=60s"]);
    assert!(!ws_succeeds(k, "root", &["get", "namespace", "doomed"]));
    let create_in_gone = k.fails(&["create", "configmap", "x", "-n", "doomed"]);
    assert!(create_in_gone.contains("not found"), "{create_in_gone}");
    k.ok(&["create", "namespace", "doomed"]);
    assert!(
        !ws_succeeds(k, "root", &["get", "cm", "inside", "-n", "doomed"]),
        "contents do not come back with a new namespace of the same name"
    );
}

fn diff_and_dry_run(k: &Kplex) {
    k.ok(&["create", "configmap", "d", "--from-literal=a=1"]);
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\ndata:\n  a: '2'\n";
    let file = k.write_file("d.yaml", manifest);
    let diff = k.kubectl(&["diff", "-f", common::path_str(&file)]);
    // kubectl diff exits 1 when there are differences.
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("+  a: \"2\""),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );
    let rv_before = k.ok(&[
        "get",
        "cm",
        "d",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.ok(&["apply", "-f", common::path_str(&file), "--dry-run=server"]);
    k.ok(&["create", "configmap", "dry", "--dry-run=server"]);
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "d",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv_before
    );
    assert!(!k.kubectl(&["get", "cm", "dry"]).status.success());
}

on_both_backends!(
    version_and_discovery,
    create_generators_use_protobuf,
    get_output_formats,
    watch_sees_added_modified_deleted,
    apply_patch_label_annotate_scale,
    edit_with_scripted_editor,
    crd_lifecycle_explain_and_get_all,
    delete_cascades_and_namespaces,
    diff_and_dry_run,
);

#[test]
fn restart_keeps_data_and_resource_versions_rise() {
    let mut k = Kplex::start(common::Backend::Embedded);
    k.ok(&["create", "configmap", "persist", "--from-literal=a=1"]);
    let rv1: i64 = k
        .ok(&[
            "get",
            "cm",
            "persist",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    k.restart();
    assert_eq!(
        k.ok(&["get", "cm", "persist", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    k.ok(&["label", "cm", "persist", "after=restart"]);
    let rv2: i64 = k
        .ok(&[
            "get",
            "cm",
            "persist",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "{rv2} > {rv1}");
}

/// A foreground deletion waiting on a dependent (held by its own finalizer) when kplex
/// restarts completes once the dependent goes: unfinished deletions are taken up at start.
#[test]
fn foreground_deletion_in_progress_resumes_after_a_restart() {
    let mut k = Kplex::start(common::Backend::Embedded);
    k.ok(&["create", "configmap", "owner"]);
    create_owned(&k, "held", "owner");
    set_finalizers(&k, "root", "cm", "held", &["example.com/hold"]);
    k.ok(&[
        "delete",
        "cm",
        "owner",
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually(20, "the dependent to be terminating", || {
        let ts = k.ok(&[
            "get",
            "cm",
            "held",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ]);
        (!ts.is_empty()).then_some(())
    });
    k.restart();
    assert!(
        ws_succeeds(&k, "root", &["get", "cm", "owner"]),
        "the owner waits for its dependent"
    );
    set_finalizers(&k, "root", "cm", "held", &[]);
    eventually(20, "the owner to be deleted", || {
        (!ws_succeeds(&k, "root", &["get", "cm", "owner"])).then_some(())
    });
}

/// kube's `run_kubectl_create_error_tests`: a body that does not decode as the resource's
/// kind is "the object provided is unrecognized", naming the kind and showing the bytes.
#[test]
fn an_undecodable_body_is_an_unrecognized_object() {
    let k = Kplex::start(Backend::Embedded);
    let pod = k.write_file(
        "valid-pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: valid-pod}\nspec: {containers: [{name: c, image: nginx}]}\n",
    );
    let out = k.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces",
        "-f",
        pod.to_str().unwrap(),
    ]);
    assert!(
        out.contains("the object provided is unrecognized (must be of type Namespace)"),
        "{out}"
    );
    assert!(out.contains("(61706956657273696f6e"), "{out}");
}
