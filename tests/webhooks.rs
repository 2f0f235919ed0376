//! Admission webhooks, end to end: a real kplex, the real kubectl, and an HTTPS webhook
//! server run by the test (self-signed certificate for 127.0.0.1, passed as `caBundle`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, HttpsServer, Kplex, eventually};
use serde_json::{Value, json};

/// The test's webhook: `/validate` denies ConfigMaps labelled `deny=yes`, `/mutate` labels
/// every ConfigMap `mutated=yes`.
struct Webhook {
    server: HttpsServer,
    ca_bundle: String,
}

impl Webhook {
    fn start() -> Self {
        let server = HttpsServer::start(handle);
        let ca_bundle = common::base64(server.ca_pem.as_bytes());
        Self { server, ca_bundle }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }
}

fn handle(path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let review: Value = serde_json::from_slice(body).unwrap();
    let request = &review["request"];
    let object = &request["object"];
    let mut response = json!({"uid": request["uid"], "allowed": true});
    if path == "/validate" && object["metadata"]["labels"]["deny"] == "yes" {
        response["allowed"] = json!(false);
        response["status"] =
            json!({"code": 403, "message": "configmaps labelled deny=yes are not allowed"});
    }
    if path == "/mutate" {
        let mut ops = Vec::new();
        if object["metadata"]["labels"].is_null() {
            ops.push(json!({"op": "add", "path": "/metadata/labels", "value": {}}));
        }
        ops.push(json!({"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}));
        // Who asked, as the review's userInfo says (label values cannot hold ':').
        let who = request["userInfo"]["username"]
            .as_str()
            .unwrap_or("")
            .replace(':', "-");
        ops.push(json!({"op": "add", "path": "/metadata/labels/requested-by", "value": who}));
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(common::base64(&serde_json::to_vec(&ops).unwrap()));
    }
    let reply = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    (200, serde_json::to_vec(&reply).unwrap())
}

fn args(k: &Kplex, ws: &str, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["--server".to_string(), k.url(&format!("/clusters/{ws}"))];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn ok(k: &Kplex, ws: &str, rest: &[&str]) -> String {
    let v = args(k, ws, rest);
    k.ok(&v.iter().map(String::as_str).collect::<Vec<_>>())
}

/// kubectl in a workspace: (success, stdout + stderr).
fn run(k: &Kplex, ws: &str, rest: &[&str]) -> (bool, String) {
    let v = args(k, ws, rest);
    let out = k.kubectl(&v.iter().map(String::as_str).collect::<Vec<_>>());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn create_workspace(k: &Kplex, name: &str) {
    let file = k.write_file(
        &format!("ws-{name}.yaml"),
        &format!(
            "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {{name: {name}}}\nspec: {{type: {{name: universal}}}}\n"
        ),
    );
    ok(k, "root", &["create", "-f", common::path_str(&file)]);
    eventually(30, &format!("workspace {name} to be Ready"), || {
        let phase = ok(
            k,
            "root",
            &["get", "workspace", name, "-o", "jsonpath={.status.phase}"],
        );
        (phase == "Ready").then_some(())
    });
}

fn configuration(kind: &str, name: &str, url: &str, ca: &str, failure: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: {kind}
metadata: {{name: {name}}}
webhooks:
- name: {name}
  clientConfig: {{url: "{url}", caBundle: "{ca}"}}
  rules:
  - operations: ["CREATE", "UPDATE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["configmaps"]
  failurePolicy: {failure}
  sideEffects: None
  admissionReviewVersions: ["v1"]
  timeoutSeconds: 5
"#
    )
}

fn register(k: &Kplex, ws: &str, file: &str, yaml: &str) {
    let path = k.write_file(file, yaml);
    ok(k, ws, &["apply", "-f", common::path_str(&path)]);
}

fn configmap(k: &Kplex, file: &str, name: &str, labels: &str) -> String {
    let path = k.write_file(
        file,
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default, labels: {{{labels}}}}}\ndata: {{a: b}}\n"),
    );
    common::path_str(&path).to_string()
}

fn label(k: &Kplex, ws: &str, name: &str, key: &str) -> String {
    ok(
        k,
        ws,
        &[
            "get",
            "configmap",
            name,
            "-n",
            "default",
            "-o",
            &format!("jsonpath={{.metadata.labels.{key}}}"),
        ],
    )
}

#[test]
fn mutating_and_validating_webhooks_of_a_workspace() {
    let hook = Webhook::start();
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "hooked");
    create_workspace(&k, "other");
    let ws = "root:hooked";
    register(
        &k,
        ws,
        "mutating.yaml",
        &configuration(
            "MutatingWebhookConfiguration",
            "label.example.com",
            &hook.url("/mutate"),
            &hook.ca_bundle,
            "Fail",
        ),
    );
    register(
        &k,
        ws,
        "validating.yaml",
        &configuration(
            "ValidatingWebhookConfiguration",
            "deny.example.com",
            &hook.url("/validate"),
            &hook.ca_bundle,
            "Fail",
        ),
    );

    // Configurations take effect once the server's cache has them.
    let mut n = 0;
    eventually(10, "the mutating webhook to apply", || {
        n += 1;
        let name = format!("probe-{n}");
        let file = configmap(&k, &format!("{name}.yaml"), &name, "app: x");
        ok(&k, ws, &["create", "-f", &file]);
        (label(&k, ws, &name, "mutated") == "yes").then_some(())
    });

    // Updates are mutated too: the label comes back after kubectl removes it.
    ok(
        &k,
        ws,
        &["label", "configmap", "probe-1", "-n", "default", "mutated-"],
    );
    assert_eq!(label(&k, ws, "probe-1", "mutated"), "yes");
    assert_eq!(
        label(&k, ws, "probe-1", "requested-by"),
        "kplex-admin",
        "the review carries the requester"
    );

    let denied = configmap(&k, "denied.yaml", "denied", "deny: \"yes\"");
    let (success, out) = run(&k, ws, &["create", "-f", &denied]);
    assert!(!success, "{out}");
    assert!(
        out.contains(&format!(
            "Error from server: error when creating \"{denied}\": admission webhook \"deny.example.com\" denied the request: configmaps labelled deny=yes are not allowed"
        )),
        "{out}"
    );
    // A denied update leaves the object as it was.
    let (success, out) = run(
        &k,
        ws,
        &["label", "configmap", "probe-1", "-n", "default", "deny=yes"],
    );
    assert!(!success, "{out}");
    assert!(
        out.contains("admission webhook \"deny.example.com\" denied the request"),
        "{out}"
    );
    assert_eq!(label(&k, ws, "probe-1", "deny"), "");

    // Each call's latency, as kube-apiserver's metric names it.
    let metrics = k.curl(&[&k.url("/metrics")]).0;
    for series in [
        r#"apiserver_admission_webhook_admission_duration_seconds_count{name="label.example.com",operation="CREATE",rejected="false",type="admit"}"#,
        r#"apiserver_admission_webhook_admission_duration_seconds_count{name="deny.example.com",operation="CREATE",rejected="true",type="validating"}"#,
        r#"apiserver_admission_webhook_admission_duration_seconds_bucket{le="+Inf",name="deny.example.com",operation="UPDATE",rejected="true",type="validating"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} not in:\n{metrics}");
    }

    // Another workspace has no webhooks: neither denied nor mutated.
    ok(&k, "root:other", &["create", "-f", &denied]);
    assert_eq!(label(&k, "root:other", "denied", "mutated"), "");
    assert_eq!(label(&k, "root:other", "denied", "deny"), "yes");
}

#[test]
fn failure_policy_when_the_webhook_is_down() {
    let hook = Webhook::start();
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "down");
    let ws = "root:down";
    let port = kplex_testing::free_port();
    let url = format!("https://127.0.0.1:{port}/validate");
    let config = |failure: &str| {
        configuration(
            "ValidatingWebhookConfiguration",
            "down.example.com",
            &url,
            &hook.ca_bundle,
            failure,
        )
    };
    register(&k, ws, "fail.yaml", &config("Fail"));
    let mut n = 0;
    let out = eventually(10, "the failing webhook to apply", || {
        n += 1;
        let name = format!("fail-{n}");
        let file = configmap(&k, &format!("{name}.yaml"), &name, "app: x");
        let (success, out) = run(&k, ws, &["create", "-f", &file]);
        (!success).then_some(out)
    });
    assert!(
        out.contains(&format!(
            "Internal error occurred: failed calling webhook \"down.example.com\": failed to call webhook: Post \"{url}?timeout=5s\": dial tcp 127.0.0.1:{port}: connect: connection refused"
        )),
        "{out}"
    );

    register(&k, ws, "ignore.yaml", &config("Ignore"));
    eventually(10, "failurePolicy Ignore to apply", || {
        n += 1;
        let name = format!("ignore-{n}");
        let file = configmap(&k, &format!("{name}.yaml"), &name, "app: x");
        run(&k, ws, &["create", "-f", &file]).0.then_some(())
    });
}
