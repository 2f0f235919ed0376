//! What a cluster serves beyond workloads, driven by the real kubectl: nodes and the
//! scheduler's `pods/binding`, `kubectl drain` (cordon and `pods/eviction` against a
//! disruption budget), `kubectl debug` (`pods/ephemeralcontainers`), `kubectl certificate
//! approve` (`certificatesigningrequests/approval`), legacy `kubectl apply --prune`, and
//! the storage, scheduling and networking kinds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex, json};

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node-role.kubernetes.io/worker: ""}}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v1.33.0, osImage: sim, kernelVersion: "6", containerRuntimeVersion: "sim://1",
    machineID: m, systemUUID: s, bootID: b, kubeProxyVersion: "", operatingSystem: linux, architecture: amd64}
"#;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec: {containers: [{name: c, image: nginx:1.27}]}
"#;

fn binding(node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"web"}},"target":{{"apiVersion":"v1","kind":"Node","name":"{node}"}}}}"#
    )
}

#[test]
fn every_kind_a_cluster_serves_is_listed_and_stored() {
    let k = Kplex::start(Backend::Embedded);
    let resources = k.ok(&["api-resources", "-o", "name"]);
    for r in [
        "nodes",
        "persistentvolumes",
        "podtemplates",
        "replicationcontrollers",
        "controllerrevisions.apps",
        "storageclasses.storage.k8s.io",
        "csidrivers.storage.k8s.io",
        "priorityclasses.scheduling.k8s.io",
        "runtimeclasses.node.k8s.io",
        "ingressclasses.networking.k8s.io",
        "endpointslices.discovery.k8s.io",
        "validatingadmissionpolicies.admissionregistration.k8s.io",
        "flowschemas.flowcontrol.apiserver.k8s.io",
    ] {
        assert!(
            resources.lines().any(|l| l == r),
            "{r} missing:\n{resources}"
        );
    }
    // Discovery names the subresources clients look for.
    let core = json(&k.ok(&["get", "--raw", "/api/v1"]));
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for sub in [
        "pods/binding",
        "pods/eviction",
        "pods/ephemeralcontainers",
        "serviceaccounts/token",
        "nodes/status",
    ] {
        assert!(names.contains(&sub), "{sub} missing from {names:?}");
    }

    // A node with its printer columns; a storage class with kube's defaults shown.
    k.ok_stdin(&["apply", "-f", "-"], NODE);
    let nodes = k.ok(&["get", "nodes"]);
    assert!(
        nodes.contains("n1") && nodes.contains("Ready") && nodes.contains("worker"),
        "{nodes}"
    );
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast}\nprovisioner: example.com/fast\n",
    );
    let sc = k.ok(&["get", "sc", "fast"]);
    assert!(
        sc.contains("example.com/fast") && sc.contains("Delete") && sc.contains("Immediate"),
        "{sc}"
    );
    // Validated like every built-in kind: a PriorityClass needs its value.
    let err = k.fails_stdin(
        &["apply", "-f", "-"],
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: high\n",
    );
    assert!(err.contains("value"), "{err}");

    // `kubectl get all` includes replication controllers.
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: legacy}\nspec:\n  replicas: 1\n  selector: {app: legacy}\n  template:\n    metadata: {labels: {app: legacy}}\n    spec: {containers: [{name: c, image: nginx}]}\n",
    );
    let all = k.ok(&["get", "all"]);
    assert!(all.contains("replicationcontroller/legacy"), "{all}");

    // Legacy prune walks kubectl's built-in list (which needs these kinds) and prunes.
    let manifests = k.write_file(
        "prune.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {set: p}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, labels: {set: p}}\n",
    );
    k.ok(&["apply", "-f", manifests.to_str().unwrap(), "-l", "set=p"]);
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {set: p}}\n",
    )
    .unwrap();
    let out = k.ok(&[
        "apply",
        "-f",
        manifests.to_str().unwrap(),
        "-l",
        "set=p",
        "--prune",
    ]);
    assert!(out.contains("configmap/b pruned"), "{out}");
}

#[test]
fn scheduling_draining_debugging_and_certificates() {
    let k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["apply", "-f", "-"], NODE);
    k.ok_stdin(&["apply", "-f", "-"], POD);
    let path = "/clusters/root/api/v1/namespaces/default/pods/web/binding";

    // The scheduler's binding places the pod once.
    let (code, body) = k.http("POST", path, "application/json", binding("n1").as_bytes());
    assert_eq!(code, 201, "{body}");
    let pod = json(&k.ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(pod["spec"]["nodeName"], "n1");
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["status"] == "True");
    assert!(scheduled, "{pod}");
    let (code, body) = k.http("POST", path, "application/json", binding("n2").as_bytes());
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already assigned to node"), "{body}");

    // A pod's spec is fixed but for its images; the node only moves through a binding.
    let err = k.fails(&["patch", "pod", "web", "-p", r#"{"spec":{"nodeName":"n2"}}"#]);
    assert!(err.contains("pod updates may not change fields"), "{err}");
    k.ok(&["set", "image", "pod/web", "c=nginx:1.28"]);

    // kubectl debug adds an ephemeral container through its subresource.
    k.ok(&["debug", "web", "--image=busybox", "--container=dbg"]);
    let pod = json(&k.ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(
        pod["spec"]["ephemeralContainers"][0]["name"], "dbg",
        "{pod}"
    );

    // Drain: a disruption budget that allows nothing holds the pod (429, retried) ...
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: web}\nspec: {minAvailable: 1, selector: {matchLabels: {app: web}}}\n",
    );
    let budget = |allowed: u32| {
        k.ok(&[
            "patch",
            "pdb",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(
                r#"{{"status":{{"observedGeneration":1,"disruptionsAllowed":{allowed},"currentHealthy":1,"desiredHealthy":1,"expectedPods":1}}}}"#
            ),
        ])
    };
    budget(0);
    let err = k.fails(&["drain", "n1", "--force", "--grace-period=0", "--timeout=3s"]);
    assert!(
        err.contains("would violate the pod's disruption budget"),
        "{err}"
    );
    let nodes = k.ok(&["get", "node", "n1"]);
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    // ... and once it allows one disruption, the drain evicts it.
    budget(1);
    k.ok(&[
        "drain",
        "n1",
        "--force",
        "--grace-period=0",
        "--timeout=20s",
    ]);
    assert!(
        k.kubectl(&["get", "pod", "web"]).status.code() == Some(1),
        "the pod was evicted"
    );

    // A CSR names its requester; `kubectl certificate approve` writes the condition.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: c1}}\nspec:\n  username: somebody-else\n  signerName: example.com/signer\n  usages: [client auth]\n  request: {}\n",
            common::base64(CSR_PEM.as_bytes())
        ),
    );
    let csr = json(&k.ok(&["get", "csr", "c1", "-o", "json"]));
    assert_ne!(csr["spec"]["username"], "somebody-else", "{csr}");
    assert!(csr["spec"]["groups"].as_array().is_some(), "{csr}");
    k.ok(&["certificate", "approve", "c1"]);
    let listed = k.ok(&["get", "csr", "c1"]);
    assert!(listed.contains("Approved"), "{listed}");
}

/// A certificate request for CN=demo (its contents are not checked by the server).
const CSR_PEM: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHeMIGGAgEAMA8xDTALBgNVBAMMBGRlbW8wWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAAQ8H3v0eQ4O2Vq3aRkqX7sT4S3WJ0V3a0b8c6m0S8FqkR8aY0S4Y7cJ2s3m
Vv6mQbGZ9j6Q9o0gWd3q3tS2cU1XoAAwCgYIKoZIzj0EAwIDRwAwRAIgZk8f0p0v
y5oR1W8d6j4VZQ2Y0r3iGm4I2xv7Yw7m8zQCIFcRk1mXH3Xq5bXq7q9n8Tj2aWmR
Xw8b3j8k3o3m5r6p
-----END CERTIFICATE REQUEST-----
";

/// kube's bootstrap ClusterRoles and bindings are in every workspace, shared rather than
/// stored: GET, LIST (paged too, and with selectors) and WATCH show them; writes are refused.
#[test]
fn bootstrap_policy_is_served_read_only_in_every_workspace() {
    let k = Kplex::start(Backend::Embedded);
    common::create_workspace(&k, "root", "team", None);
    let ws = |args: &[&str]| common::ws_ok(&k, "root:team", args);
    let role = json(&ws(&["get", "clusterrole", "cluster-admin", "-o", "json"]));
    assert_eq!(role["rules"][0]["verbs"][0], "*", "{role}");
    assert_eq!(
        role["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    assert!(!role["metadata"]["uid"].as_str().unwrap().is_empty());

    // Listed with the workspace's own, in name order, whole and page by page.
    ws(&[
        "create",
        "clusterrole",
        "reader",
        "--verb=get",
        "--resource=pods",
    ]);
    let names = ws(&["get", "clusterroles", "-o", "name"]);
    let names: Vec<&str> = names.lines().collect();
    for want in ["admin", "cluster-admin", "edit", "view", "reader"] {
        assert!(
            names.contains(&format!("clusterrole.rbac.authorization.k8s.io/{want}").as_str()),
            "{want} missing: {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let paged = ws(&["get", "clusterroles", "-o", "name", "--chunk-size=2"]);
    assert_eq!(paged.lines().collect::<Vec<_>>(), names);
    let labelled = ws(&[
        "get",
        "clusterroles",
        "-l",
        "kubernetes.io/bootstrapping=rbac-defaults",
        "-o",
        "name",
    ]);
    assert!(!labelled.contains("/reader"), "{labelled}");
    assert!(labelled.contains("/view"), "{labelled}");
    let bindings = ws(&["get", "clusterrolebindings", "-o", "name"]);
    assert!(bindings.contains("/system:discovery"), "{bindings}");

    // A watch's initial state has them too.
    let events = k.ok(&[
        "get",
        "--raw",
        "/clusters/root:team/apis/rbac.authorization.k8s.io/v1/clusterroles?watch=true&timeoutSeconds=1",
    ]);
    assert!(events.contains(r#""name":"cluster-admin""#), "{events}");
    assert!(events.contains(r#""name":"reader""#), "{events}");
    // A watch on one name (kube's `…/clusterroles/<name>?watch=1`) sees that object alone.
    let one = k.ok(&[
        "get",
        "--raw",
        "/clusters/root:team/apis/rbac.authorization.k8s.io/v1/clusterroles/view?watch=true&timeoutSeconds=1",
    ]);
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.contains(r#""name":"view""#), "{one}");

    // Read-only: they exist already, and may not be changed or deleted.
    let exists = common::ws_fails(
        &k,
        "root:team",
        &[
            "create",
            "clusterrole",
            "view",
            "--verb=get",
            "--resource=pods",
        ],
    );
    assert!(exists.contains("AlreadyExists"), "{exists}");
    for args in [
        &["delete", "clusterrole", "view"][..],
        &["label", "clusterrole", "view", "team=a"][..],
        &["delete", "clusterrolebinding", "system:discovery"][..],
    ] {
        let err = common::ws_fails(&k, "root:team", args);
        assert!(
            err.contains("Forbidden") && err.contains("read-only"),
            "{args:?}: {err}"
        );
    }
    assert!(ws(&["get", "clusterrole", "view", "-o", "name"]).contains("view"));
    // Deleting them all deletes the workspace's own; the shared ones stay, each refused.
    let args = common::in_ws(&k, "root:team", &["delete", "clusterroles", "--all"]);
    let out = k.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("\"reader\" deleted"), "{stdout}");
    assert!(stderr.contains("\"view\" is forbidden"), "{stderr}");
    let left = ws(&["get", "clusterroles", "-o", "name"]);
    assert!(
        left.contains("/view") && !left.contains("/reader"),
        "{left}"
    );
}

/// `kubectl get componentstatuses` probes the control plane's parts, as kube's does.
#[test]
fn component_statuses_report_health() {
    let k = Kplex::start(Backend::Embedded);
    let table = k.ok(&["get", "cs"]);
    let storage = table
        .lines()
        .find(|l| l.starts_with("storage"))
        .unwrap_or_else(|| panic!("no storage row:\n{table}"));
    assert!(
        storage.contains("Healthy") && storage.contains("ok"),
        "{table}"
    );
    assert!(table.contains("controller-manager"), "{table}");
    let one = json(&k.ok(&["get", "componentstatus", "storage", "-o", "json"]));
    assert_eq!(one["conditions"][0]["type"], "Healthy");
    assert_eq!(one["conditions"][0]["status"], "True");
    let missing = k.fails(&["get", "cs", "etcd-9"]);
    assert!(missing.contains("NotFound"), "{missing}");
    let refused = k.fails_stdin(
        &["create", "-f", "-"],
        r#"{"apiVersion":"v1","kind":"ComponentStatus","metadata":{"name":"x"}}"#,
    );
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not supported"),
        "{refused}"
    );
}

/// What kube's defaulting adds, seen through kubectl: a Deployment's rolling update strategy
/// (kubectl sends `strategy: {}`), a new Pod's `Pending` phase and QoS class, limits copied
/// into requests, bare volumes as emptyDir.
#[test]
fn created_objects_carry_kubes_defaults() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "deployment", "web", "--image=nginx:1.27"]);
    let deploy = json(&k.ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(
        deploy["spec"]["strategy"]["type"], "RollingUpdate",
        "{deploy}"
    );
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    // kubectl sent protobuf, where Go writes every plain field; kube's JSON drops the
    // zero ones (`omitempty`), and so does kplex.
    let template = &deploy["spec"]["template"];
    assert!(template["metadata"].get("generation").is_none(), "{deploy}");
    assert!(
        template["spec"]["containers"][0].get("stdin").is_none(),
        "{deploy}"
    );
    assert!(template["spec"].get("hostIPC").is_none(), "{deploy}");
    assert!(deploy["spec"].get("paused").is_none(), "{deploy}");
    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: sized}
spec:
  containers: [{name: c, image: nginx:1.27, resources: {limits: {cpu: "1", memory: 1Gi}}}]
  volumes: [{name: scratch}]
"#,
    );
    let pod = json(&k.ok(&["get", "pod", "sized", "-o", "json"]));
    assert_eq!(pod["status"]["phase"], "Pending", "{pod}");
    assert_eq!(pod["status"]["qosClass"], "Guaranteed");
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"]["memory"],
        "1Gi"
    );
    assert_eq!(pod["spec"]["volumes"][0]["emptyDir"], serde_json::json!({}));
    assert_eq!(pod["spec"]["enableServiceLinks"], true);
    let pending = k.ok(&[
        "get",
        "pods",
        "--field-selector",
        "status.phase=Pending",
        "-o",
        "name",
    ]);
    assert_eq!(pending.trim(), "pod/sized");

    // Times come back in UTC as kube's Go types marshal them: whole seconds, or
    // microseconds for MicroTime fields.
    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: timed}
spec: {holderIdentity: a, renewTime: "2026-01-02T05:04:05.25+02:00", acquireTime: "2026-01-02T05:04:05.25+02:00"}
---
apiVersion: v1
kind: Event
metadata: {name: timed}
involvedObject: {kind: Pod, name: sized, namespace: default}
reason: Tested
firstTimestamp: "2026-01-02T05:04:05.25+02:00"
"#,
    );
    let lease = json(&k.ok(&["get", "lease", "timed", "-o", "json"]));
    assert_eq!(lease["spec"]["renewTime"], "2026-01-02T03:04:05.250000Z");
    let event = json(&k.ok(&["get", "event", "timed", "-o", "json"]));
    assert_eq!(event["firstTimestamp"], "2026-01-02T03:04:05Z");
}

/// Events are one resource in two versions: written through `events.k8s.io/v1`, read
/// through core/v1 (`kubectl get events`, `kubectl describe`) and back.
#[test]
fn events_are_one_resource_in_two_apis() {
    let k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["apply", "-f", "-"], POD);
    // `kubectl describe` finds a pod's events by its uid too.
    let uid = k.ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    k.ok_stdin(
        &["create", "-f", "-"],
        &r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: web.pulled}
eventTime: "2026-12-05T10:00:00.000000Z"
reportingController: kubelet
reportingInstance: node-1
action: Pulling
reason: Pulled
type: Normal
note: Successfully pulled image nginx:1.27
regarding: {apiVersion: v1, kind: Pod, name: web, namespace: default, uid: UID}
"#
        .replace("UID", &uid),
    );
    let core = json(&k.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/events/web.pulled",
    ]));
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "web", "{core}");
    assert_eq!(core["message"], "Successfully pulled image nginx:1.27");
    assert_eq!(core["reportingComponent"], "kubelet");
    let table = k.ok(&["get", "events"]);
    assert!(
        table.contains("Pulled") && table.contains("pod/web"),
        "{table}"
    );
    let described = k.ok(&["describe", "pod", "web"]);
    assert!(
        described.contains("Successfully pulled image"),
        "{described}"
    );
    let listed = k.ok(&["events", "--for", "pod/web"]);
    assert!(listed.contains("Pulled"), "{listed}");

    // A core event is an events.k8s.io one too, field selectors in each API's names.
    k.ok_stdin(
        &["create", "-f", "-"],
        r#"
apiVersion: v1
kind: Event
metadata: {name: web.killing}
involvedObject: {apiVersion: v1, kind: Pod, name: web, namespace: default}
reason: Killing
message: Stopping container c
type: Normal
source: {component: kubelet}
count: 3
"#,
    );
    let v1 = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/events.k8s.io/v1/namespaces/default/events/web.killing",
    ]));
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "web", "{v1}");
    assert_eq!(v1["note"], "Stopping container c");
    assert_eq!(v1["deprecatedCount"], 3);
    let selected = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/events.k8s.io/v1/namespaces/default/events?fieldSelector=reason%3DKilling,regarding.name%3Dweb",
    ]));
    assert_eq!(selected["items"].as_array().unwrap().len(), 1, "{selected}");
    assert_eq!(selected["items"][0]["note"], "Stopping container c");
    let both = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(both.lines().count(), 2, "{both}");
    // Deleted through one API, gone from both.
    k.ok(&["delete", "events.events.k8s.io", "web.killing"]);
    assert!(
        !k.ok(&["get", "events", "-o", "name"])
            .contains("web.killing")
    );
}

/// A CSR of `name` for the certificate request above.
fn csr_manifest(name: &str) -> String {
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  signerName: example.com/signer\n  usages: [client auth]\n  request: {}\n",
        common::base64(CSR_PEM.as_bytes())
    )
}

/// What kube's `test/cmd/certificate.sh` and `authorization.sh`
/// (`run_certificates_tests`, `run_impersonation_tests`) check, written here: approve and
/// deny by name and from a file; a CSR created while impersonating names the impersonated
/// user and groups; groups without a user are refused.
#[test]
fn certificates_and_impersonation_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    let conditions = |name: &str| {
        k.ok(&[
            "get",
            "csr",
            name,
            "-o",
            "jsonpath={range .status.conditions[*]}{.type}{end}",
        ])
    };
    for (verb, want) in [("approve", "Approved"), ("deny", "Denied")] {
        let file = k.write_file(&format!("{verb}.yaml"), &csr_manifest(verb));
        let file = common::path_str(&file);
        k.ok(&["create", "-f", file]);
        assert_eq!(conditions(verb), "");
        k.ok(&["certificate", verb, verb]);
        assert_eq!(conditions(verb), want);
        k.ok(&["delete", "-f", file]);
        // From the file, too.
        k.ok(&["create", "-f", file]);
        k.ok(&["certificate", verb, "-f", file]);
        assert_eq!(conditions(verb), want);
        k.ok(&["delete", "-f", file]);
    }
    let err = k.fails(&["get", "pods", "--as-group=foo"]);
    assert!(err.contains("without impersonating a user"), "{err}");
    // kube's test server allows everyone everything; here user1 needs a role to create.
    k.ok(&[
        "create",
        "clusterrolebinding",
        "user1-admin",
        "--clusterrole=cluster-admin",
        "--user=user1",
    ]);
    let file = k.write_file("as.yaml", &csr_manifest("as"));
    k.ok(&[
        "create",
        "-f",
        common::path_str(&file),
        "--as=user1",
        "--as-group=group2",
        "--as-group=group1",
        "--as-group=,,,chameleon",
    ]);
    assert_eq!(
        k.ok(&["get", "csr", "as", "-o", "jsonpath={.spec.username}"]),
        "user1"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "csr",
            "as",
            "-o",
            "jsonpath={range .spec.groups[*]}{@} {end}"
        ]),
        "group2 group1 ,,,chameleon system:authenticated "
    );
}

/// What kube's `test/cmd/template-output.sh` (`run_template_output_tests`) checks of the
/// server's answers, written here: commands that write print the object the server returned
/// through `--template` — create, patch, label, annotate, apply, taint, rollout pause and
/// resume, create clusterrole and clusterrolebinding.
#[test]
fn commands_print_the_servers_answer_through_a_template() {
    let k = Kplex::start(Backend::Embedded);
    let t = "--template={{ .metadata.name }}:";
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: valid-pod}\nspec: {containers: [{name: c, image: nginx}]}\n";
    let pod_file = k.write_file("pod.yaml", pod);
    let pod_file = common::path_str(&pod_file);
    assert_eq!(k.ok(&["create", "-f", pod_file, t]), "valid-pod:");
    for args in [
        vec![
            "patch",
            "pods/valid-pod",
            "-p",
            r#"{"metadata":{"labels":{"a":"b"}}}"#,
            "--type=merge",
        ],
        vec!["label", "pods/valid-pod", "label=value"],
        vec!["annotate", "pods/valid-pod", "annotation=value"],
        vec!["apply", "-f", pod_file],
        vec!["create", "deployment", "deploy", "--image=nginx"],
        vec!["rollout", "pause", "deploy/deploy"],
        vec!["rollout", "resume", "deploy/deploy"],
        vec![
            "create",
            "clusterrole",
            "myclusterrole",
            "--verb=get",
            "--resource=pods",
        ],
        vec![
            "create",
            "clusterrolebinding",
            "foo",
            "--clusterrole=myclusterrole",
        ],
        vec![
            "set",
            "image",
            "pod/valid-pod",
            "c=nginx:2",
            "--dry-run=server",
        ],
    ] {
        let mut args = args;
        args.push(t);
        let out = k.ok(&args);
        assert!(out.ends_with(':') && !out.contains(' '), "{args:?}: {out}");
    }
    let node = "apiVersion: v1\nkind: Node\nmetadata: {name: node-1}\n";
    k.ok_stdin(&["create", "-f", "-"], node);
    assert_eq!(
        k.ok(&[
            "taint",
            "node",
            "node-1",
            "dedicated=foo:PreferNoSchedule",
            t
        ]),
        "node-1:"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "node",
            "node-1",
            "-o",
            "jsonpath={.spec.taints[0].key}"
        ]),
        "dedicated"
    );
    assert_eq!(
        k.ok(&["get", "deploy", "deploy", "-o", "jsonpath={.spec.paused}"]),
        "",
        "resumed"
    );
}

/// What kube's `test/cmd/get.sh` (`run_kubectl_sort_by_tests`, and the subresource checks
/// of `run_kubectl_get_tests`) asks of the server, written here: `--sort-by` works on the
/// table rows' objects for any field, and `get --subresource` reads a served subresource
/// and refuses one the kind lacks.
#[test]
fn get_sorts_by_any_field_and_reads_subresources() {
    let k = Kplex::start(Backend::Embedded);
    // (name, its `name` label, its container's name, its memory request)
    for (name, label, container, memory) in [
        ("sorted-pod1", "c", "kitten", "100Mi"),
        ("sorted-pod2", "b", "cat", "200Mi"),
        ("sorted-pod3", "a", "lion", "10Mi"),
    ] {
        k.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{name: {label}}}}}\nspec: {{containers: [{{name: {container}, image: nginx, resources: {{requests: {{memory: {memory}}}}}}}]}}\n"
            ),
        );
    }
    let order = |by: &str| -> Vec<String> {
        k.ok(&["get", "pods", "--no-headers", &format!("--sort-by={by}")])
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .collect()
    };
    assert_eq!(
        order("{metadata.name}"),
        ["sorted-pod1", "sorted-pod2", "sorted-pod3"]
    );
    assert_eq!(
        order("{metadata.labels.name}"),
        ["sorted-pod3", "sorted-pod2", "sorted-pod1"]
    );
    assert_eq!(
        order("{spec.containers[0].name}"),
        ["sorted-pod2", "sorted-pod1", "sorted-pod3"]
    );
    assert_eq!(
        order("{.spec.containers[0].resources.requests.memory}"),
        ["sorted-pod3", "sorted-pod1", "sorted-pod2"]
    );
    let status = k.ok(&["get", "pod", "sorted-pod1", "--subresource=status"]);
    assert!(status.contains("sorted-pod1"), "{status}");
    let err = k.fails(&["get", "pod", "sorted-pod1", "--subresource=scale"]);
    assert!(
        err.contains("the server could not find the requested resource"),
        "{err}"
    );
}

/// What kube's `test/cmd/discovery.sh` (`run_assert_short_name_tests`,
/// `run_assert_singular_name_tests`) and `core.sh` (`run_secrets_test`, the forced replace of
/// `run_pod_tests`) ask of the server, written here: a CRD whose short name or singular is
/// `pod` never takes `kubectl get pod` over; Secrets of every `kubectl create secret` form;
/// `replace --force` deletes and creates again.
#[test]
fn crds_never_hide_built_in_names_and_secrets_of_every_form() {
    let k = Kplex::start(Backend::Embedded);
    for (name, names) in [
        (
            "examples.test.com",
            "{plural: examples, singular: example, kind: Example, shortNames: [pod]}",
        ),
        (
            "samples.test2.com",
            "{plural: samples, singular: pod, kind: Sample}",
        ),
    ] {
        let group = name.split_once('.').map_or("", |(_, g)| g);
        k.ok_stdin(
            &["create", "-f", "-"],
            &format!(
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: {name}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {names}\n  versions: [{{name: v1, served: true, storage: true, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}]\n"
            ),
        );
    }
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Pod\nmetadata: {name: real-pod}\nspec: {containers: [{name: c, image: nginx}]}\n",
    );
    common::eventually(20, "the CRDs served", || {
        k.kubectl(&["get", "examples,samples"])
            .status
            .success()
            .then_some(())
    });
    k.ok(&["api-resources"]);
    for _ in 0..2 {
        let pods = k.ok(&["get", "pod", "-o", "name"]);
        assert_eq!(pods.trim(), "pod/real-pod", "{pods}");
    }

    let dir = k.dir.path();
    let cert = rcgen::generate_simple_self_signed(vec!["example.com".to_string()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), cert.signing_key.serialize_pem()).unwrap();
    let (crt, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    k.ok(&[
        "create",
        "secret",
        "tls",
        "web-tls",
        "--cert",
        common::path_str(&crt),
        "--key",
        common::path_str(&key),
    ]);
    k.ok(&[
        "create",
        "secret",
        "docker-registry",
        "pull",
        "--docker-username=user",
        "--docker-password=pass",
        "--docker-email=a@b.c",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "plain",
        "--from-literal=key1=value1",
    ]);
    let types = k.ok(&[
        "get",
        "secrets",
        "web-tls",
        "pull",
        "plain",
        "-o",
        "jsonpath={range .items[*]}{.type} {end}",
    ]);
    assert_eq!(
        types, "kubernetes.io/tls kubernetes.io/dockerconfigjson Opaque ",
        "{types}"
    );
    // A TLS Secret without its key is refused, as kube validates the type's keys.
    let err = k.fails_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata: {name: broken}\ntype: kubernetes.io/tls\ndata: {tls.crt: eA==}\n",
    );
    assert!(err.contains("tls.key"), "{err}");

    let uid = k.ok(&["get", "pod", "real-pod", "-o", "jsonpath={.metadata.uid}"]);
    let pod = k
        .ok(&["get", "pod", "real-pod", "-o", "json"])
        .replace("\"name\": \"c\"", "\"name\": \"replaced\"");
    k.ok_stdin(&["replace", "--force", "-f", "-"], &pod);
    assert_eq!(
        k.ok(&[
            "get",
            "pod",
            "real-pod",
            "-o",
            "jsonpath={.spec.containers[0].name}"
        ]),
        "replaced"
    );
    assert_ne!(
        k.ok(&["get", "pod", "real-pod", "-o", "jsonpath={.metadata.uid}"]),
        uid
    );
}

/// What kube's `test/cmd` checks of stored kinds that need no kubelet, written here
/// (`core.sh`, `storage.sh`, `discovery.sh`, `authorization.sh`, `debug.sh`): PodTemplates,
/// PersistentVolumes and claims; a CRD made again with another scope; `get all -l` and
/// `delete all -l`; a SubjectAccessReview about someone else; a patch's resourceVersion as a
/// precondition, a no-op patch, and a Node replaced with resourceVersion "0"; Secret
/// `stringData`; `kubectl debug node`; pods deleted at once without a kubelet.
#[test]
fn stored_kinds_behave_as_kube_test_cmd_expects_without_a_kubelet() {
    let k = Kplex::start(Backend::Embedded);
    let names = |what: &str| k.ok(&["get", what, "-o", "name"]);
    // PodTemplates, PersistentVolumes and claims: created, listed, deleted.
    k.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: PodTemplate\nmetadata: {name: nginx}\ntemplate:\n  metadata: {labels: {name: nginx}}\n  spec: {containers: [{name: nginx, image: nginx}]}\n");
    assert_eq!(names("podtemplates").trim(), "podtemplate/nginx");
    k.ok(&["delete", "podtemplate", "nginx"]);
    k.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv0001}\nspec: {capacity: {storage: 1Gi}, accessModes: [ReadWriteOnce], hostPath: {path: /tmp/data01}}\n");
    k.ok_stdin(&["create", "-f", "-"], r#"{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "myclaim-1"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}"#);
    assert_eq!(names("pv").trim(), "persistentvolume/pv0001");
    assert_eq!(names("pvc").trim(), "persistentvolumeclaim/myclaim-1");
    let out = k.ok(&["delete", "pv", "-n", "test", "--all"]);
    assert!(out.contains("persistentvolume \"pv0001\" deleted"), "{out}");
    k.ok(&["delete", "pvc", "myclaim-1"]);
    assert_eq!(names("pv,pvc").trim(), "");

    // A CRD made again with another scope serves objects of that scope.
    let crd = |scope: &str| {
        format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: examples.scope.test}}\nspec:\n  group: scope.test\n  scope: {scope}\n  names: {{plural: examples, singular: example, kind: Example}}\n  versions: [{{name: v1, served: true, storage: true, schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}}}]\n"
        )
    };
    let example = "apiVersion: scope.test/v1\nkind: Example\nmetadata: {name: ex}\n";
    for scope in ["Cluster", "Namespaced"] {
        k.ok_stdin(&["apply", "-f", "-"], &crd(scope));
        common::eventually(20, "the CRD served", || {
            // kubectl caches discovery; as kube's test does, refresh it.
            k.ok(&["api-resources"]);
            let out = common::output_with_stdin(
                std::process::Command::new(common::kubectl_binary())
                    .args(["apply", "-f", "-"])
                    .env("KUBECONFIG", k.kubeconfig())
                    .env("HOME", k.home()),
                example,
            );
            out.status.success().then_some(())
        });
        let ns = k.ok(&[
            "get",
            "examples",
            "ex",
            "-o",
            "jsonpath={.metadata.namespace}",
        ]);
        assert_eq!(ns.is_empty(), scope == "Cluster", "{scope}: {ns:?}");
        k.ok(&["delete", "crd", "examples.scope.test"]);
        common::eventually(20, "the CRD gone", || {
            (!k.kubectl(&["get", "crd", "examples.scope.test"])
                .status
                .success())
            .then_some(())
        });
    }

    // `all` with a selector, for get and delete.
    k.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Service\nmetadata: {name: cassandra, labels: {app: cassandra}}\nspec: {ports: [{port: 9042}], selector: {app: cassandra}}\n---\napiVersion: v1\nkind: ReplicationController\nmetadata: {name: cassandra, labels: {app: cassandra}}\nspec:\n  replicas: 2\n  selector: {app: cassandra}\n  template:\n    metadata: {labels: {app: cassandra}}\n    spec: {containers: [{name: cassandra, image: cassandra}]}\n");
    let all = k.ok(&["get", "all", "-l", "app=cassandra", "-o", "name"]);
    assert!(
        all.contains("service/cassandra") && all.contains("replicationcontroller/cassandra"),
        "{all}"
    );
    k.ok(&["delete", "all", "-l", "app=cassandra"]);
    assert_eq!(
        k.ok(&["get", "all", "-l", "app=cassandra", "-o", "name"])
            .trim(),
        ""
    );

    // A SubjectAccessReview about another user: answered with what RBAC allows them.
    let sar = |user: &str| {
        format!(
            r#"{{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {{"user": "{user}", "groups": ["system:authenticated"], "resourceAttributes": {{"verb": "list", "resource": "configmaps", "namespace": "default"}}}}}}"#
        )
    };
    // (kcp's rule: entering the workspace is a permission of its own.)
    k.ok(&[
        "create",
        "clusterrolebinding",
        "bob-views",
        "--clusterrole=view",
        "--user=bob",
    ]);
    k.ok(&[
        "create",
        "clusterrolebinding",
        "bob-enters",
        "--clusterrole=system:kcp:workspace:access",
        "--user=bob",
    ]);
    for (user, allowed) in [("bob", "true"), ("mallory", "false")] {
        let out = k.ok_stdin(
            &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
            &sar(user),
        );
        assert_eq!(out, allowed, "{user}");
    }

    // Patches: a stale resourceVersion is refused, a no-op changes nothing.
    k.ok(&["create", "configmap", "p", "--from-literal=a=1"]);
    let rv = k.ok(&[
        "get",
        "cm",
        "p",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let stale = format!(
        r#"{{"metadata": {{"resourceVersion": "{}"}}, "data": {{"a": "2"}}}}"#,
        rv.parse::<u64>().unwrap() + 100
    );
    let err = k.fails(&["patch", "cm", "p", "--type=merge", "-p", &stale]);
    assert!(err.contains("the object has been modified; please apply your changes to the latest version and try again"), "{err}");
    let current = format!(r#"{{"metadata": {{"resourceVersion": "{rv}"}}, "data": {{"a": "2"}}}}"#);
    k.ok(&["patch", "cm", "p", "--type=merge", "-p", &current]);
    let rv = k.ok(&[
        "get",
        "cm",
        "p",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let out = k.ok(&[
        "patch",
        "cm",
        "p",
        "--type=merge",
        "-p",
        r#"{"data": {"a": "2"}}"#,
    ]);
    assert!(out.contains("patched (no change)"), "{out}");
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "p",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv
    );

    // A Node replaced with resourceVersion "0": unconditional.
    k.ok_stdin(
        &["create", "-f", "-"],
        r#"{"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-v1-test"}}"#,
    );
    k.ok_stdin(&["replace", "-f", "-"], r#"{"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-v1-test", "annotations": {"a": "b"}, "resourceVersion": "0"}}"#);
    assert_eq!(
        k.ok(&[
            "get",
            "node",
            "node-v1-test",
            "-o",
            "jsonpath={.metadata.annotations.a}"
        ]),
        "b"
    );

    // stringData is merged into data and not stored.
    k.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Secret\nmetadata: {name: merged}\ndata: {k1: djE=, k2: ''}\nstringData: {k2: v2}\n");
    let secret = json(&k.ok(&["get", "secret", "merged", "-o", "json"]));
    assert_eq!(secret["data"]["k1"], "djE=");
    assert_eq!(secret["data"]["k2"], "djI=");
    assert!(secret.get("stringData").is_none(), "{secret}");

    // `kubectl debug node`: a pod bound to the node at creation.
    let out = k.ok(&[
        "debug",
        "node/node-v1-test",
        "--image=busybox",
        "--attach=false",
        "--",
        "true",
    ]);
    let pod = out
        .split_whitespace()
        .find(|w| w.starts_with("node-debugger-"))
        .unwrap_or_else(|| panic!("{out}"))
        .trim_end_matches('.')
        .to_string();
    assert_eq!(
        k.ok(&["get", "pod", &pod, "-o", "jsonpath={.spec.nodeName}"]),
        "node-v1-test"
    );
    // Without a kubelet, deleting a pod does not wait for one.
    k.ok(&["delete", "pod", &pod, "--now"]);
    assert!(!k.kubectl(&["get", "pod", &pod]).status.success());
}
