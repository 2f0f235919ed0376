//! Bad input gets kube-apiserver's Status error (right code and reason), loses nothing, and
//! never stops the server from serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex};
use serde_json::Value;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[track_caller]
fn status(k: &Kplex, (code, body): (u16, String), want_code: u16, want_reason: &str) -> Value {
    let v: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("not a Status ({e}, HTTP {code}): {body:?}\n{}", k.log()));
    assert_eq!(code, want_code, "{body}");
    assert_eq!(
        (v["kind"].as_str(), v["status"].as_str()),
        (Some("Status"), Some("Failure")),
        "{body}"
    );
    assert_eq!(v["reason"], want_reason, "{body}");
    assert_eq!(v["code"], want_code, "{body}");
    v
}

#[test]
fn malformed_bodies_are_400_and_change_nothing() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "keep", "--from-literal=a=1"]);
    let rv = k.ok(&[
        "get",
        "cm",
        "keep",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    status(
        &k,
        k.http("POST", CMS, "application/json", b"{\"metadata\": {"),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http("POST", CMS, "application/yaml", b"metadata: [unclosed"),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/vnd.kubernetes.protobuf",
            b"k8s\x00\x0a\xff\xff",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/vnd.kubernetes.protobuf",
            b"not protobuf at all",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http("POST", CMS, "application/json", b"[1,2,3]"),
        400,
        "BadRequest",
    );
    let deep = format!(
        "{{\"metadata\":{{\"name\":\"deep\"}},\"data\":{}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    status(
        &k,
        k.http("POST", CMS, "application/json", deep.as_bytes()),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "PUT",
            &format!("{CMS}/keep"),
            "application/json",
            b"{\"kind\":",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "PATCH",
            &format!("{CMS}/keep"),
            "application/merge-patch+json",
            b"{oops",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "PATCH",
            &format!("{CMS}/keep"),
            "application/json-patch+json",
            b"{\"op\":1}",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http("PATCH", &format!("{CMS}/keep"), "text/plain", b"{}"),
        415,
        "UnsupportedMediaType",
    );
    status(
        &k,
        k.http("POST", CMS, "text/html", b"<p>hi</p>"),
        415,
        "UnsupportedMediaType",
    );
    // Nothing was written.
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "keep",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv
    );
    assert_eq!(
        k.ok(&["get", "cm", "-o", "name", common::NOT_ROOT_CA])
            .trim(),
        "configmap/keep"
    );
}

#[test]
fn wrong_types_names_and_namespaces() {
    let k = Kplex::start(Backend::Embedded);
    let v = status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
        ),
        400,
        "BadRequest",
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("does not match the expected kind"),
        "{v}"
    );
    status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#,
        ),
        400,
        "BadRequest",
    );
    let v = status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"metadata":{"name":"Not_A_DNS_Name"}}"#,
        ),
        422,
        "Invalid",
    );
    assert_eq!(v["details"]["causes"][0]["field"], "metadata.name", "{v}");
    assert!(v["message"].as_str().unwrap().contains("RFC 1123"), "{v}");
    status(
        &k,
        k.http("POST", CMS, "application/json", br#"{"metadata":{}}"#),
        422,
        "Invalid",
    );
    status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"metadata":{"name":"x","namespace":"other"}}"#,
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            "application/json",
            br#"{"metadata":{"name":"x"}}"#,
        ),
        404,
        "NotFound",
    );
    let v = status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"metadata":{"name":"bad-data"},"data":{"no/slash":"x"}}"#,
        ),
        422,
        "Invalid",
    );
    assert!(
        v["details"]["causes"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("data"),
        "{v}"
    );
    // Built-in kinds know their fields: Strict rejects unknown ones, Warn accepts with a warning.
    let v = status(
        &k,
        k.http(
            "POST",
            &format!("{CMS}?fieldValidation=Strict"),
            "application/json",
            br#"{"metadata":{"name":"u"},"bogus":1}"#,
        ),
        400,
        "BadRequest",
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"bogus\""),
        "{v}"
    );
    let (out, _) = k.curl(&[
        "-i",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"metadata":{"name":"w"},"bogus":1}"#,
        &k.url(&format!("{CMS}?fieldValidation=Warn")),
    ]);
    assert!(
        out.to_ascii_lowercase()
            .contains("warning: 299 - \"unknown field \\\"bogus\\\"\""),
        "{out}"
    );
    assert!(
        !k.ok(&["get", "cm", "w", "-o", "json"]).contains("bogus"),
        "unknown fields are dropped"
    );
    status(
        &k,
        k.http(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            "application/json",
            br#"{"metadata":{"name":"d"},"spec":{"replicas":"three"}}"#,
        ),
        422,
        "Invalid",
    );
}

#[test]
fn conflicts_and_limits() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "c"]);
    status(
        &k,
        k.http(
            "POST",
            CMS,
            "application/json",
            br#"{"metadata":{"name":"c"}}"#,
        ),
        409,
        "AlreadyExists",
    );
    status(
        &k,
        k.http(
            "PUT",
            &format!("{CMS}/c"),
            "application/json",
            br#"{"metadata":{"name":"c","resourceVersion":"1"}}"#,
        ),
        409,
        "Conflict",
    );
    status(
        &k,
        k.http(
            "PUT",
            &format!("{CMS}/c"),
            "application/json",
            br#"{"metadata":{"name":"other"}}"#,
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "DELETE",
            &format!("{CMS}/c"),
            "application/json",
            br#"{"preconditions":{"uid":"nope"}}"#,
        ),
        409,
        "Conflict",
    );
    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"x\":\"{}\"}}}}",
        "a".repeat(4 * 1024 * 1024)
    );
    status(
        &k,
        k.http("POST", CMS, "application/json", big.as_bytes()),
        413,
        "RequestEntityTooLarge",
    );
    status(
        &k,
        k.http(
            "GET",
            &format!("{CMS}?labelSelector=a%20in%20(b"),
            "application/json",
            b"",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "GET",
            &format!("{CMS}?continue=garbage"),
            "application/json",
            b"",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "GET",
            &format!("{CMS}?resourceVersionMatch=Exact"),
            "application/json",
            b"",
        ),
        400,
        "BadRequest",
    );
    status(
        &k,
        k.http(
            "PATCH",
            &format!("{CMS}/c?dryRun=Bogus"),
            "application/merge-patch+json",
            b"{}",
        ),
        400,
        "BadRequest",
    );
}

#[test]
fn routing_and_authentication() {
    let k = Kplex::start(Backend::Embedded);
    status(
        &k,
        k.http(
            "GET",
            "/clusters/nope/api/v1/namespaces",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
    );
    status(
        &k,
        k.http(
            "GET",
            "/clusters/root/clusters/root/api/v1/namespaces",
            "application/json",
            b"",
        ),
        404,
        "NotFound",
    );
    status(
        &k,
        k.http("GET", "/api/v1/nothings", "application/json", b""),
        404,
        "NotFound",
    );
    status(
        &k,
        k.http("GET", &format!("{CMS}/missing"), "application/json", b""),
        404,
        "NotFound",
    );
    status(
        &k,
        k.http(
            "POST",
            "/clusters/*/api/v1/namespaces/default/configmaps",
            "application/json",
            br#"{"metadata":{"name":"x"}}"#,
        ),
        405,
        "MethodNotAllowed",
    );
    let (out, _) = k.curl(&[
        "-H",
        "Accept: application/vnd.kubernetes.protobuf;as=Table",
        "-w",
        "\n%{http_code}",
        &k.url(CMS),
    ]);
    assert!(out.ends_with("406"), "{out}");
    // Without a token: 401, except the probes and /version.
    let ca = k.root().join("ca.crt");
    let anon = |path: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                common::path_str(&ca),
                &k.url(path),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(anon("/api/v1/namespaces"), "401");
    assert_eq!(anon("/readyz"), "200");
    assert_eq!(anon("/livez"), "200");
    assert_eq!(anon("/version"), "200");
    // Plain HTTP is refused: TLS only.
    let plain = std::process::Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{}/version", k.port),
        ])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    // After all that, the server still serves.
    assert!(
        k.ok(&["get", "ns", "-o", "name"])
            .contains("namespace/default")
    );
    let metrics = k.curl(&[&k.url("/metrics")]).0;
    assert!(metrics.contains("apiserver_request_total"), "{metrics}");
}
