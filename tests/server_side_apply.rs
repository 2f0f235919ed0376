//! Server-side apply as GitOps tools and controllers use it: field ownership per manager,
//! conflicts and force, pruning, list-map merges, dry run, the client-side to server-side
//! migration, status managers — with the real kubectl and the `kube` crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn apply(k: &Kplex, manager: &str, manifest: &str) -> String {
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "-",
        ],
        manifest,
    )
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const BASE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: nginx\n        image: nginx:1\n        ports:\n        - {containerPort: 80}\n";

#[test]
fn managers_conflicts_force_and_pruning_on_a_deployment() {
    let k = Kplex::start(Backend::Embedded);
    apply(
        &k,
        "team-a",
        &BASE.replace("spec:\n  selector", "spec:\n  replicas: 2\n  selector"),
    );
    // A second manager owns a disjoint field: a second container and a label.
    let sidecar = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {owner: team-b}\nspec:\n  template:\n    spec:\n      containers:\n      - name: sidecar\n        image: busybox\n";
    apply(&k, "team-b", sidecar);
    let d = json(&k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["nginx", "sidecar"], "containers merge by name");
    assert_eq!(d["metadata"]["labels"]["owner"], "team-b");
    let m = managers(&d);
    assert!(
        m.contains(&("team-a".into(), "Apply".into()))
            && m.contains(&("team-b".into(), "Apply".into())),
        "{m:?}"
    );

    // team-b changing team-a's replicas conflicts, with kubectl's message.
    let steal =
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 5\n";
    let err = k.fails(&[
        "apply",
        "--server-side",
        "--field-manager",
        "team-b",
        "-f",
        common::path_str(&k.write_file("steal.yaml", steal)),
    ]);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"team-a\": .spec.replicas"),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    // --force-conflicts takes ownership.
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager",
        "team-b",
        "--force-conflicts",
        "-f",
        common::path_str(&k.write_file("steal.yaml", steal)),
    ]);
    assert_eq!(
        k.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let fields = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let d = json(&fields);
    let a = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "team-a")
        .unwrap();
    assert!(
        a["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "team-a lost .spec.replicas: {a}"
    );
    let b = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "team-b")
        .unwrap();
    assert!(b["fieldsV1"]["f:spec"].get("f:replicas").is_some(), "{b}");

    // Dropping a field from a manifest removes it only if nobody else owns it: team-b stops
    // applying its label and sidecar — both go; team-a's container stays.
    apply(&k, "team-b", steal);
    let d = json(&k.ok(&["get", "deploy", "web", "-o", "json"]));
    assert!(
        d["metadata"]["labels"]
            .get("owner")
            .is_none_or(Value::is_null),
        "{d}"
    );
    let names: Vec<&str> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["nginx"]);
    // Ports merge by containerPort+protocol.
    let ports = BASE.replace(
        "        - {containerPort: 80}\n",
        "        - {containerPort: 80}\n        - {containerPort: 80, protocol: UDP}\n",
    );
    apply(&k, "team-a", &ports);
    let d = json(&k.ok(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A no-op apply writes nothing; dry run writes nothing.
    let rv = k.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    apply(&k, "team-a", &ports);
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "team-a",
            "--dry-run=server",
            "-f",
            "-",
        ],
        &ports.replace("nginx:1", "nginx:2"),
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv
    );
    // kubectl diff uses server-side dry-run.
    let diff = k.kubectl(&[
        "diff",
        "--server-side",
        "--field-manager",
        "team-a",
        "-f",
        common::path_str(&k.write_file("d2.yaml", &ports.replace("nginx:1", "nginx:2"))),
    ]);
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("nginx:2"),
        "{}",
        String::from_utf8_lossy(&diff.stderr)
    );
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              parts:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items: {type: object, required: [name], properties: {name: {type: string}, count: {type: integer}}}
          status:
            type: object
            properties:
              ready: {type: boolean}
"#;

#[test]
fn custom_resources_list_maps_status_managers_and_migration() {
    let k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["apply", "-f", "-"], CRD);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gizmos.example.com",
    ]);
    apply(
        &k,
        "a",
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\nspec:\n  size: 1\n  parts: [{name: wheel, count: 4}]\n",
    );
    apply(
        &k,
        "b",
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\nspec:\n  parts: [{name: seat, count: 1}]\n",
    );
    let g = json(&k.ok(&["get", "gizmo", "g", "-o", "json"]));
    let parts: Vec<&str> = g["spec"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parts, vec!["wheel", "seat"], "listType=map merges by key");
    // The status subresource has managers of its own.
    k.ok_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "status-writer",
            "--subresource=status",
            "-f",
            "-",
        ],
        "apiVersion: example.com/v1\nkind: Gizmo\nmetadata: {name: g}\nstatus: {ready: true}\n",
    );
    let g = json(&k.ok(&["get", "gizmo", "g", "-o", "json", "--show-managed-fields"]));
    assert_eq!(g["status"]["ready"], true);
    let entry = g["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "status-writer")
        .unwrap();
    assert_eq!(entry["subresource"], "status");

    // Client-side apply, then server-side: ownership moves from kubectl-client-side-apply.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: migrate}\ndata: {a: '1'}\n";
    k.ok_stdin(&["apply", "-f", "-"], cm);
    let before = json(&k.ok(&[
        "get",
        "cm",
        "migrate",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    assert!(
        managers(&before).contains(&("kubectl-client-side-apply".into(), "Update".into())),
        "{:?}",
        managers(&before)
    );
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], cm);
    let after = json(&k.ok(&[
        "get",
        "cm",
        "migrate",
        "-o",
        "json",
        "--show-managed-fields",
    ]));
    assert!(
        managers(&after)
            .iter()
            .any(|(m, op)| m == "kubectl" && op == "Apply"),
        "{:?}",
        managers(&after)
    );
    // Changing the value no longer conflicts with the client-side manager.
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &cm.replace("'1'", "'2'"),
    );
    assert_eq!(
        k.ok(&["get", "cm", "migrate", "-o", "jsonpath={.data.a}"]),
        "2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_crate_patch_apply_as_a_controller_would() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    let k = Kplex::start(Backend::Embedded);
    let kubeconfig = kube::config::Kubeconfig::read_from(k.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    let desired = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ctl"}, "data": {"k": "v"}});
    let params = PatchParams::apply("my-controller");
    let created = api
        .patch("ctl", &params, &Patch::Apply(&desired))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone();
    assert_eq!(created.data.unwrap()["k"], "v");
    let fields = created.metadata.managed_fields.unwrap();
    assert_eq!(
        (fields[0].manager.as_deref(), fields[0].operation.as_deref()),
        (Some("my-controller"), Some("Apply"))
    );
    // Re-applying the same state is a no-op: same resourceVersion.
    let again = api
        .patch("ctl", &params, &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, rv);
}
