//! API semantics beyond what kubectl's everyday commands show: CRD versions, protobuf and
//! metadata-only answers, gzip, deletecollection, bookmarks and timeouts, and watches ending
//! cleanly on shutdown. Driven with curl (the wire) and kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, Kplex};
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

const TWO_VERSIONS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1beta1, served: true, storage: false, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;

#[test]
fn crd_versions_share_objects_with_none_conversion() {
    let k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["apply", "-f", "-"], TWO_VERSIONS);
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gadgets.example.com",
        "--timeout=20s",
    ]);
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1beta1\nkind: Gadget\nmetadata: {name: g}\nspec: {x: 1}\n",
    );
    let v1 = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1/namespaces/default/gadgets/g",
    ]));
    assert_eq!(
        (v1["apiVersion"].as_str(), v1["spec"]["x"].as_i64()),
        (Some("example.com/v1"), Some(1))
    );
    let beta = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1beta1/namespaces/default/gadgets",
    ]));
    assert_eq!(beta["items"][0]["apiVersion"], "example.com/v1beta1");
    k.ok(&[
        "patch",
        "gadgets.v1.example.com",
        "g",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"x":2}}"#,
    ]);
    let beta = json(&k.ok(&[
        "get",
        "--raw",
        "/apis/example.com/v1beta1/namespaces/default/gadgets/g",
    ]));
    assert_eq!(
        (beta["apiVersion"].as_str(), beta["spec"]["x"].as_i64()),
        (Some("example.com/v1beta1"), Some(2))
    );
    let discovery = json(&k.ok(&["get", "--raw", "/apis/example.com"]));
    assert_eq!(discovery["preferredVersion"]["version"], "v1");
}

#[test]
fn protobuf_metadata_only_gzip_and_deletecollection() {
    let k = Kplex::start(Backend::Embedded);
    let items: Vec<Value> = (0..150)
        .map(|i| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i:03}")}, "data": {"payload": "x".repeat(900)}}))
        .collect();
    // A stream of documents (a `kind: List` needs /openapi/v2 in protobuf for kubectl's
    // client-side validation).
    let stream: String = items.iter().map(|i| format!("---\n{i}\n")).collect();
    k.ok_stdin(&["create", "-f", "-"], &stream);
    k.ok(&["label", "cm", "c000", "c001", "c002", "drop=yes"]);
    // Protobuf answers for built-in kinds, with the k8s\0 envelope.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            common::path_str(&k.root().join("ca.crt")),
            "-H",
            &format!("Authorization: Bearer {}", k.token()),
        ])
        .args([
            "-H",
            "Accept: application/vnd.kubernetes.protobuf",
            "-D",
            "-",
            &k.url("/api/v1/namespaces/default/configmaps/c001"),
        ])
        .output()
        .unwrap();
    let raw = out.stdout;
    let headers_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let headers = String::from_utf8_lossy(&raw[..headers_end]).to_ascii_lowercase();
    assert!(
        headers.contains("content-type: application/vnd.kubernetes.protobuf"),
        "{headers}"
    );
    assert_eq!(&raw[headers_end..headers_end + 4], b"k8s\0");
    // Metadata-only lists (what kubectl's garbage-collector-style clients ask for).
    let (out, _) = k.curl(&[
        "-H",
        "Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        &k.url("/api/v1/namespaces/default/configmaps?limit=2"),
    ]);
    let list = json(&out);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["items"][0].get("data").is_none());
    assert!(list["metadata"]["continue"].is_string());
    // Large answers are gzipped for clients that accept it.
    let (headers, _) = k.curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Accept-Encoding: gzip",
        &k.url("/api/v1/namespaces/default/configmaps"),
    ]);
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("content-encoding: gzip"),
        "{headers}"
    );
    let (body, _) = k.curl(&[
        "--compressed",
        &k.url("/api/v1/namespaces/default/configmaps"),
    ]);
    let items = json(&body)["items"].as_array().unwrap().clone();
    let ours = items
        .iter()
        .filter(|i| i["metadata"]["name"] != "kube-root-ca.crt");
    assert_eq!(ours.count(), 150);
    // DELETE on the collection, with a selector.
    let (out, _) = k.curl(&[
        "-X",
        "DELETE",
        &k.url("/api/v1/namespaces/default/configmaps?labelSelector=drop%3Dyes"),
    ]);
    assert_eq!(json(&out)["items"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name", common::NOT_ROOT_CA])
            .lines()
            .count(),
        147
    );
}

#[test]
fn list_manifests_and_openapi_v2_for_kubectl() {
    // kubectl validates `kind: List` against /openapi/v2, which it reads only as protobuf.
    let k = Kplex::start(Backend::Embedded);
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l1"},"data":{"a":"1"}},
        {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l2"}}]}"#;
    let out = k.ok_stdin(&["create", "-f", "-"], list);
    assert!(
        out.contains("configmap/l1 created") && out.contains("configmap/l2 created"),
        "{out}"
    );
    let bad = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"l3"},"dataa":{}}]}"#;
    let out = k.kubectl(&[
        "create",
        "-f",
        common::path_str(&k.write_file("bad.json", bad)),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dataa"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let explain = k.ok(&[
        "explain",
        "--output=plaintext-openapiv2",
        "deployment.spec.replicas",
    ]);
    assert!(explain.contains("replicas"), "{explain}");
}

#[test]
fn watch_timeouts_bookmarks_and_streaming_lists() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "w"]);
    let started = Instant::now();
    let (out, _) = k.curl(&[
        "-N",
        &k.url("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dw"),
    ]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
    let first = json(out.lines().next().unwrap());
    assert_eq!(
        (
            first["type"].as_str(),
            first["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("w"))
    );
    // A streaming list ends its initial events with an annotated bookmark.
    let (out, _) = k.curl(&["-N", &k.url("/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1")]);
    let events: Vec<Value> = out.lines().map(json).collect();
    // Our ConfigMap and the namespace's CA ConfigMap, then the bookmark.
    let bookmark = events.iter().position(|e| e["type"] == "BOOKMARK").unwrap();
    assert!(bookmark >= 1 && events[..bookmark].iter().all(|e| e["type"] == "ADDED"));
    assert_eq!(
        events[bookmark]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[test]
fn sigterm_ends_watches_cleanly() {
    let mut k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "w"]);
    let mut watch = Command::new("curl")
        .args([
            "-sS",
            "-N",
            "--cacert",
            common::path_str(&k.root().join("ca.crt")),
            "-H",
            &format!("Authorization: Bearer {}", k.token()),
        ])
        .arg(k.url("/api/v1/namespaces/default/configmaps?watch=true"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    k.stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited for the watch"
    );
    let status = watch.wait().unwrap();
    let mut stderr = String::new();
    watch
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "the watch stream ended cleanly, not with an error: {stderr}"
    );
    let mut stdout = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(stdout.contains("\"ADDED\""), "{stdout}");
}

/// A namespace's `finalize` subresource (the namespace controller's, and kube's way to drop
/// a stuck `kubernetes` finalizer) changes `spec.finalizers` and nothing else; other kinds
/// have no such subresource.
#[test]
fn namespace_finalize_subresource_changes_only_spec_finalizers() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "namespace", "fin"]);
    let ns = json(&k.ok(&["get", "namespace", "fin", "-o", "json"]));
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    let mut body = ns.clone();
    body["spec"]["finalizers"] = serde_json::json!([]);
    body["metadata"]["labels"] = serde_json::json!({"ignored": "yes"});
    let (code, answer) = k.http(
        "PUT",
        "/clusters/root/api/v1/namespaces/fin/finalize",
        "application/json",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{answer}");
    let after = json(&k.ok(&["get", "namespace", "fin", "-o", "json"]));
    assert_eq!(after["spec"]["finalizers"], serde_json::json!([]));
    assert!(
        after["metadata"]["labels"].get("ignored").is_none(),
        "{after}"
    );
    k.ok(&["create", "configmap", "c", "-n", "fin"]);
    let (code, _) = k.http(
        "PUT",
        "/clusters/root/api/v1/namespaces/fin/configmaps/c/finalize",
        "application/json",
        b"{}",
    );
    assert_eq!(code, 404);
}

/// Namespaces as kube keeps them: labelled with their own name on every write (namespace
/// selectors rely on it), and `default`, `kube-system`, `kube-public` never deleted by a
/// client (kube's NamespaceLifecycle), while deleting a workspace still empties it.
#[test]
fn namespaces_carry_their_name_label_and_the_standard_ones_stay() {
    let k = Kplex::start(Backend::Embedded);
    let label = |ns: &str| {
        k.ok(&[
            "get",
            "namespace",
            ns,
            "-o",
            r"jsonpath={.metadata.labels.kubernetes\.io/metadata\.name}",
        ])
    };
    k.ok(&["create", "namespace", "team-a"]);
    assert_eq!(label("team-a"), "team-a");
    // A client cannot make it lie.
    k.ok(&[
        "label",
        "namespace",
        "team-a",
        "kubernetes.io/metadata.name=other",
        "--overwrite",
    ]);
    assert_eq!(label("team-a"), "team-a");
    for ns in ["default", "kube-system", "kube-public"] {
        let err = k.fails(&["delete", "namespace", ns, "--wait=false"]);
        assert!(
            err.contains(&format!(
                "namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )),
            "{err}"
        );
        k.ok(&["get", "namespace", ns]);
    }
    k.ok(&["delete", "namespace", "team-a", "--wait=true"]);
    // The root workspace has a cluster's four; node leases may go there.
    assert_eq!(label("kube-node-lease"), "kube-node-lease");

    // A new workspace's `default` namespace has the label too; the workspace still deletes.
    common::create_workspace(&k, "root", "labelled", None);
    assert_eq!(
        common::ws_ok(
            &k,
            "root:labelled",
            &[
                "get",
                "namespace",
                "default",
                "-o",
                r"jsonpath={.metadata.labels.kubernetes\.io/metadata\.name}",
            ],
        ),
        "default"
    );
    k.ok(&["delete", "workspace", "labelled", "--wait=true"]);
}

/// Indented JSON as kube-apiserver gives it: for `?pretty=true`, and for curl, Wget and
/// browsers unless `?pretty=false`; compact for programs (kubectl, client libraries).
#[test]
fn pretty_json_for_people_compact_for_programs() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "shown", "--from-literal=a=1"]);
    let path = "/api/v1/namespaces/default/configmaps/shown";
    let indented = |body: &str| body.contains("\n  \"metadata\": {\n");
    // curl's own user agent.
    let (body, _) = k.curl(&[&k.url(path)]);
    assert!(indented(&body), "{body}");
    assert_eq!(json(&body)["data"]["a"], "1");
    let (body, _) = k.curl(&[&k.url(&format!("{path}?pretty=false"))]);
    assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    // A program's user agent: compact unless asked.
    let program = ["-A", "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"];
    let (body, _) = k.curl(&[program[0], program[1], &k.url(path)]);
    assert_eq!(body.trim_end().lines().count(), 1, "{body}");
    let (body, _) = k.curl(&[
        program[0],
        program[1],
        &k.url(&format!("{path}?pretty=true")),
    ]);
    assert!(indented(&body), "{body}");
    // Lists and errors too.
    let (body, _) = k.curl(&[&k.url("/api/v1/namespaces/default/configmaps?pretty=1")]);
    assert!(body.contains("\n  \"items\": ["), "{body}");
    let (body, _) = k.curl(&[&k.url("/api/v1/namespaces/default/configmaps/missing")]);
    assert!(body.contains("\n  \"reason\": \"NotFound\""), "{body}");
}

/// kube's cacher sends a BOOKMARK shortly before a watch's `timeoutSeconds` deadline, at
/// the revision it has reached — also for a watcher whose selector matched none of the
/// writes meanwhile — so the client resumes from there instead of falling behind compaction.
#[test]
fn a_watch_gets_a_bookmark_before_its_deadline_at_the_latest_revision() {
    let k = Kplex::start(Backend::Embedded);
    let url = k.url(
        "/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true\
         &labelSelector=app%3Dnothing&timeoutSeconds=5",
    );
    let (out, last_rv) = std::thread::scope(|s| {
        let watch = s.spawn(|| k.curl(&["-N", &url]).0);
        std::thread::sleep(Duration::from_millis(300));
        let mut rv = String::new();
        for name in ["c1", "c2", "c3"] {
            rv = k.ok(&[
                "create",
                "configmap",
                name,
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ]);
        }
        (watch.join().unwrap(), rv.parse::<i64>().unwrap())
    });
    let events: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(events.len(), 1, "one bookmark and nothing else: {out}");
    assert_eq!(events[0]["type"], "BOOKMARK");
    let rv: i64 = events[0]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv >= last_rv, "bookmark at {rv}, last write at {last_rv}");
}
