//! Bad input, in bulk: a generator of malformed requests (truncated and deeply nested JSON,
//! invalid UTF-8, huge numbers, duplicate keys, wrong content types, bogus protobuf, invalid
//! patches, path tricks in names, huge label values, absurd list parameters, oversized
//! bodies, random bytes) sent over raw HTTP/1.1+TLS, then thousands of idle connections.
//! Every answer is a Kubernetes Status with a 4xx code (a few read-only oddities may be
//! answered 200, as kube-apiserver does), the server never fails or dies, its RSS stays
//! bounded, and nothing stored changes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::{Answer, Backend, Kplex, Raw};
use serde_json::Value;

/// One request, and what may come back.
struct Case {
    what: String,
    method: &'static str,
    path: String,
    content_type: Option<String>,
    body: Vec<u8>,
    /// true: must be a 4xx Status; false: anything but a server error.
    client_error: bool,
}

fn send(raw: &Raw, token: &str, c: &Case) -> Answer {
    let mut headers = vec![("Authorization", format!("Bearer {token}"))];
    if let Some(ct) = &c.content_type {
        headers.push(("Content-Type", ct.clone()));
    }
    raw.request(c.method, &c.path, &headers, &c.body)
        .unwrap_or_else(|| panic!("{}: no HTTP answer", c.what))
}

use kplex_testing::Rng;

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn configmap(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"a":"b"}}}},"data":{{"k":"v"}}}}"#
    )
}

fn case(what: &str, method: &'static str, path: &str, ct: Option<&str>, body: Vec<u8>) -> Case {
    Case {
        what: what.to_string(),
        method,
        path: path.to_string(),
        content_type: ct.map(String::from),
        body,
        client_error: true,
    }
}

/// Read-only requests kube-apiserver may answer with 200 (e.g. a negative limit).
fn lenient(mut c: Case) -> Case {
    c.client_error = false;
    c
}

const JSON: Option<&str> = Some("application/json");
const PB: Option<&str> = Some("application/vnd.kubernetes.protobuf");

fn cases(rng: &mut Rng) -> Vec<Case> {
    let mut out = Vec::new();
    let valid = configmap("fresh");
    // Truncated JSON: every cut of a valid object is invalid.
    for _ in 0..60 {
        let cut = 1 + rng.below(valid.len() - 2);
        out.push(case(
            "truncated JSON",
            "POST",
            CMS,
            JSON,
            valid.as_bytes()[..cut].to_vec(),
        ));
    }
    out.push(case("empty body", "POST", CMS, JSON, vec![]));
    // Deep nesting, in arrays and objects, in the body and in a patch.
    for depth in [100, 1_000, 10_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep"}},"x":{arrays}}}"#
        );
        out.push(case(
            "deeply nested arrays",
            "POST",
            CMS,
            JSON,
            body.into_bytes(),
        ));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        out.push(case(
            "deeply nested patch",
            "PATCH",
            &format!("{CMS}/seed"),
            Some("application/merge-patch+json"),
            format!(r#"{{"metadata":{{"annotations":{objects}}}}}"#).into_bytes(),
        ));
    }
    // Invalid UTF-8 in strings and keys.
    for bad in [
        &b"\xff"[..],
        b"\xc3\x28",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
    ] {
        let mut body =
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"utf"},"data":{"k":""#
                .to_vec();
        body.extend_from_slice(bad);
        body.extend_from_slice(br#""}}"#);
        out.push(case("invalid UTF-8", "POST", CMS, JSON, body.clone()));
        out.push(case(
            "invalid UTF-8 (YAML)",
            "POST",
            CMS,
            Some("application/yaml"),
            body,
        ));
    }
    // Huge numbers where integers belong.
    for n in [
        "1e400",
        "-1e400",
        "123456789012345678901234567890",
        "1.5",
        "-9223372036854775809",
    ] {
        let body = format!(
            r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"huge"}},"spec":{{"replicas":{n},"selector":{{"matchLabels":{{"a":"b"}}}},"template":{{"metadata":{{"labels":{{"a":"b"}}}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}}}}}"#
        );
        out.push(case(
            "huge number",
            "POST",
            DEPLOYS,
            JSON,
            body.into_bytes(),
        ));
    }
    // Duplicate keys, refused under strict field validation.
    out.push(case(
        "duplicate keys",
        "POST",
        &format!("{CMS}?fieldValidation=Strict"),
        JSON,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup2"},"data":{"k":"v"}}"#.to_vec(),
    ));
    // Wrong content types.
    for ct in [
        "text/plain",
        "application/xml",
        "garbage/////",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
    ] {
        out.push(case(
            "wrong content type",
            "POST",
            CMS,
            Some(ct),
            valid.as_bytes().to_vec(),
        ));
    }
    out.push(case(
        "patch with a create content type",
        "PATCH",
        &format!("{CMS}/seed"),
        JSON,
        b"{}".to_vec(),
    ));
    // Bogus protobuf envelopes.
    for _ in 0..30 {
        let mut body = if rng.below(2) == 0 {
            b"k8s\0".to_vec()
        } else {
            vec![]
        };
        let n = rng.below(200);
        body.extend(rng.bytes(n));
        out.push(case("bogus protobuf", "POST", CMS, PB, body));
    }
    out.push(case(
        "protobuf magic only",
        "POST",
        CMS,
        PB,
        b"k8s\0".to_vec(),
    ));
    out.push(case(
        "protobuf huge length",
        "POST",
        CMS,
        PB,
        b"k8s\0\x0a\xff\xff\xff\xff\x0f".to_vec(),
    ));
    // Invalid patches of an existing object (none of them may change it).
    let seed = format!("{CMS}/seed");
    for (ct, patch) in [
        (
            "application/json-patch+json",
            r#"[{"op":"nope","path":"/data"}]"#,
        ),
        ("application/json-patch+json", r#"{"not":"a list"}"#),
        (
            "application/json-patch+json",
            r#"[{"op":"test","path":"/data/k","value":"other"}]"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/nothing/here"}]"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"replace","path":"/metadata/name","value":"renamed"}]"#,
        ),
        (
            "application/json-patch+json",
            r#"[{"op":"add","path":"/data/x","value":1}]"#,
        ),
        ("application/merge-patch+json", "[1,2,3]"),
        (
            "application/merge-patch+json",
            r#"{"metadata":{"resourceVersion":"1"},"data":{"k":"w"}}"#,
        ),
        (
            "application/merge-patch+json",
            r#"{"metadata":{"name":"other"}}"#,
        ),
        (
            "application/merge-patch+json",
            r#"{"data":{"bad key!":"v"}}"#,
        ),
        (
            "application/strategic-merge-patch+json",
            r#"{"$patch":"nonsense"}"#,
        ),
        (
            "application/strategic-merge-patch+json",
            r#"{"data":"not a map"}"#,
        ),
        ("application/apply-patch+yaml", "{{{{"),
        (
            "application/apply-patch+yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: seed}\n",
        ),
        ("application/unknown-patch", "{}"),
    ] {
        out.push(case(
            "invalid patch",
            "PATCH",
            &seed,
            Some(ct),
            patch.as_bytes().to_vec(),
        ));
    }
    // Path tricks in names and namespaces.
    for path in [
        "/api/v1/namespaces/default/configmaps/..%2F..%2Fsecrets",
        "/api/v1/namespaces/..%2Fkube-system/configmaps/seed",
        "/api/v1/namespaces/default/configmaps/seed%00",
        "/api/v1/namespaces/default/configmaps/%2E%2E",
        "/api/v1/namespaces/default/configmaps/a/b/c/d",
        "/clusters/..%2Froot/api/v1/configmaps",
        "/clusters/root/clusters/root/api/v1/configmaps",
        "/apis/../../etc/passwd",
        "/api/v1/namespaces/default/configmaps/seed/status",
    ] {
        out.push(case("path trick (GET)", "GET", path, None, vec![]));
        out.push(case("path trick (DELETE)", "DELETE", path, None, vec![]));
        out.push(case(
            "path trick (PUT)",
            "PUT",
            path,
            JSON,
            configmap("seed").into_bytes(),
        ));
    }
    for name in [
        "../x",
        "a/b",
        "UPPER",
        ".",
        "..",
        "x".repeat(300).as_str(),
        "",
        "-a",
        "a_b",
    ] {
        out.push(case(
            "invalid name",
            "POST",
            CMS,
            JSON,
            configmap(name).into_bytes(),
        ));
    }
    // Label values and keys far too long.
    for (key, value) in [
        ("a", "x".repeat(10_000)),
        (&*"k".repeat(10_000), "v".to_string()),
        ("bad key", "v".to_string()),
    ] {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"labels","labels":{{"{key}":"{value}"}}}}}}"#
        );
        out.push(case("invalid label", "POST", CMS, JSON, body.into_bytes()));
    }
    // Absurd list and watch parameters.
    for q in [
        "limit=99999999999999999999999",
        "limit=abc",
        "continue=garbage",
        "continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6LTEsInN0YXJ0IjoiLi4vLi4vIn0",
        "resourceVersion=abc",
        "resourceVersion=-5",
        "resourceVersion=1&resourceVersionMatch=Bogus",
        "resourceVersionMatch=Exact",
        "labelSelector=a+in+(",
        "labelSelector=%%%",
        "fieldSelector=spec.nothing%3Dx",
        "fieldSelector===",
        "watch=true&timeoutSeconds=abc",
        "watch=true&resourceVersion=abc",
    ] {
        out.push(case(
            "absurd query",
            "GET",
            &format!("{CMS}?{q}"),
            None,
            vec![],
        ));
    }
    for q in [
        "limit=-1",
        "limit=0",
        "timeoutSeconds=99999999999",
        "pretty=maybe",
    ] {
        out.push(lenient(case(
            "odd but readable query",
            "GET",
            &format!("{CMS}?{q}"),
            None,
            vec![],
        )));
    }
    // Reviews and token requests with parts of the wrong type (answered, never stored).
    for (path, body) in [
        (
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            r#"{"metadata":5}"#,
        ),
        (
            "/apis/authentication.k8s.io/v1/tokenreviews",
            r#"{"metadata":[],"spec":{"token":"x"}}"#,
        ),
        (
            "/apis/authentication.k8s.io/v1/tokenreviews",
            r#"{"spec":"token"}"#,
        ),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            r#"{"spec":5}"#,
        ),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            r#"{"metadata":"x","spec":{"resourceAttributes":[1]}}"#,
        ),
        (
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            r#"{"spec":{"user":5,"resourceAttributes":"all"}}"#,
        ),
        (
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            r#"{"spec":{"namespace":[]}}"#,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            r#"{"spec":5}"#,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            r#"{"metadata":"x"}"#,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            r#"{"spec":{"boundObjectRef":"pod"}}"#,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            r#"{"spec":{"boundObjectRef":{"kind":"Pod","name":"nope"}}}"#,
        ),
        (
            "/api/v1/namespaces/default/serviceaccounts/robot/token",
            r#"{"spec":{"expirationSeconds":"soon","audiences":"all"}}"#,
        ),
        (
            "/apis/apis.kcp.io/v1alpha2/apibindings",
            r#"{"metadata":{"name":"b"},"spec":{"reference":5}}"#,
        ),
        (
            "/apis/apis.kcp.io/v1alpha1/apiresourceschemas",
            r#"{"metadata":{"name":"v1.x.y.z"},"spec":{"group":7,"versions":"v1"}}"#,
        ),
        (
            "/apis/apis.kcp.io/v1alpha2/apiexports",
            r#"{"metadata":{"name":"e"},"spec":{"resources":[5],"permissionClaims":"all"}}"#,
        ),
        (
            "/api/v1/namespaces/default/resourcequotas",
            r#"{"metadata":{"name":"q"},"spec":{"hard":[1]}}"#,
        ),
        (
            "/api/v1/namespaces/default/secrets",
            r#"{"metadata":{"name":"t","annotations":{"kubernetes.io/service-account.name":"robot"}},"type":"kubernetes.io/service-account-token","data":"x"}"#,
        ),
    ] {
        out.push(case(
            "wrong-typed review or token request",
            "POST",
            path,
            JSON,
            body.as_bytes().to_vec(),
        ));
    }
    // Far too big, and random bytes anywhere.
    out.push(case("4 MiB body", "POST", CMS, JSON, vec![b' '; 4 << 20]));
    for _ in 0..60 {
        let (method, path) = [
            ("POST", CMS.to_string()),
            ("PUT", seed.clone()),
            ("PATCH", seed.clone()),
            ("POST", DEPLOYS.to_string()),
        ][rng.below(4)]
        .clone();
        let n = 1 + rng.below(300);
        let ct = [
            "application/json",
            "application/yaml",
            "application/merge-patch+json",
            "application/json-patch+json",
            "application/apply-patch+yaml",
            "application/strategic-merge-patch+json",
        ][rng.below(6)];
        let ct = if method == "PATCH" {
            ct
        } else {
            ["application/json", "application/yaml"][rng.below(2)]
        };
        out.push(case("random bytes", method, &path, Some(ct), rng.bytes(n)));
    }
    out
}

fn is_status(a: &Answer) -> bool {
    serde_json::from_slice::<Value>(&a.body)
        .ok()
        .is_some_and(|s| s["kind"] == "Status" && s["code"].as_u64() == Some(u64::from(a.code)))
}

/// GET `path` as the admin; the JSON answer.
fn get_json(raw: &Raw, token: &str, path: &str) -> Value {
    let a = send(
        raw,
        token,
        &lenient(case("snapshot", "GET", path, None, vec![])),
    );
    assert_eq!(a.code, 200, "{path}: {}", String::from_utf8_lossy(&a.body));
    serde_json::from_slice(&a.body).unwrap()
}

/// A digest of everything stored (every listable resource across all logical clusters) and
/// the store's revision.
fn snapshot(raw: &Raw, token: &str) -> (u64, String) {
    digest_without(raw, token, &[])
}

/// [`snapshot`] leaving out resources named in `skip`.
fn digest_without(raw: &Raw, token: &str, skip: &[&str]) -> (u64, String) {
    let mut h = DefaultHasher::new();
    let mut revision = String::new();
    let groups = get_json(raw, token, "/clusters/root/apis");
    let mut versions = vec!["/api/v1".to_string()];
    for g in groups["groups"].as_array().unwrap() {
        for v in g["versions"].as_array().unwrap() {
            versions.push(format!("/apis/{}", v["groupVersion"].as_str().unwrap()));
        }
    }
    for gv in versions {
        let list = get_json(raw, token, &format!("/clusters/root{gv}"));
        for r in list["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            let listable = r["verbs"].as_array().unwrap().iter().any(|v| v == "list");
            if name.contains('/') || !listable || skip.contains(&name) {
                continue;
            }
            let items = get_json(raw, token, &format!("/clusters/*{gv}/{name}"));
            revision = items["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let mut all: Vec<String> = items["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect();
            all.sort();
            (gv.as_str(), name, all).hash(&mut h);
        }
    }
    (h.finish(), revision)
}

/// How many idle connections this process can hold: 3,000, or fewer under a low hard
/// limit on open files (the soft one is raised first).
fn idle_connections() -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    );
    getrlimit(Resource::Nofile)
        .current
        .map_or(3000, |n| (n as usize).saturating_sub(512).min(3000))
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn malformed_requests_in_bulk_change_nothing_and_never_fail_the_server() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "configmap", "seed", "--from-literal=k=v"]);
    k.ok(&["create", "deployment", "web", "--image=nginx"]);
    k.ok(&["create", "serviceaccount", "robot"]);
    std::thread::sleep(Duration::from_millis(300));
    let raw = Raw::new(&k);
    let token = k.token();
    let before = snapshot(&raw, &token);
    let rss_before = rss_kib(k.pid());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let all = cases(&mut rng);
    let total = all.len();
    let chunks: Vec<Vec<Case>> = {
        let mut v: Vec<Vec<Case>> = (0..8).map(|_| Vec::new()).collect();
        for (i, c) in all.into_iter().enumerate() {
            v[i % 8].push(c);
        }
        v
    };
    std::thread::scope(|s| {
        for chunk in &chunks {
            let (raw, token) = (&raw, &token);
            s.spawn(move || {
                for c in chunk {
                    let started = std::time::Instant::now();
                    let a = send(raw, token, c);
                    if started.elapsed() > Duration::from_secs(2) {
                        eprintln!(
                            "slow: {} {} {} took {:?}",
                            c.what,
                            c.method,
                            c.path,
                            started.elapsed()
                        );
                    }
                    let body = String::from_utf8_lossy(&a.body);
                    assert!(
                        a.code < 500,
                        "{} {} {}: server error {}: {body}",
                        c.what,
                        c.method,
                        c.path,
                        a.code
                    );
                    if c.client_error {
                        assert!(
                            (400..500).contains(&a.code) && is_status(&a),
                            "{} {} {}: want a 4xx Status, got {}: {body}",
                            c.what,
                            c.method,
                            c.path,
                            a.code
                        );
                    }
                }
            });
        }
    });

    // Thousands of idle connections: some silent, some stuck mid-handshake (as many as this
    // process may open, up to 3,000; kplex raises its own limit at start).
    let mut idle = Vec::new();
    for i in 0..idle_connections() {
        let mut tcp = TcpStream::connect(("127.0.0.1", k.port)).unwrap();
        if i % 2 == 0 {
            let _ = tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
        }
        idle.push(tcp);
    }
    // The server still answers while they are held.
    assert!(
        k.ok(&["get", "configmap", "seed", "-o", "name"])
            .contains("seed")
    );
    let rss_during = rss_kib(k.pid());
    drop(idle);

    let after = snapshot(&raw, &token);
    assert_eq!(before, after, "stored objects (digest, revision) changed");
    let rss_after = rss_kib(k.pid());
    assert!(
        rss_during < rss_before + 256 * 1024 && rss_after < rss_before + 128 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB (idle connections) and {rss_after} KiB"
    );
    assert!(
        k.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        k.log()
    );
    eprintln!("{total} malformed requests; RSS {rss_before} → {rss_during} → {rss_after} KiB");
}

/// `kplex snapshot save` (online, and from a stopped root directory) and `kplex snapshot
/// restore`: the restored store serves every object, resourceVersion and workspace as they
/// were; only cluster admins, and only at the root, get a snapshot.
#[test]
fn a_snapshot_restores_every_object_and_resource_version() {
    let mut k = Kplex::start(Backend::Embedded);
    common::create_workspace(&k, "root", "team", None);
    k.ok_stdin(&["apply", "-f", "-"], common::WIDGETS_SCHEMA);
    for i in 0..20 {
        common::ws_ok(
            &k,
            "root:team",
            &[
                "create",
                "configmap",
                &format!("c{i}"),
                "--from-literal=k=v",
            ],
        );
    }
    common::ws_ok(&k, "root:team", &["delete", "configmap", "c3"]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=password=x",
    ]);
    let raw = Raw::new(&k);
    let token = k.token();
    let before = snapshot(&raw, &token);

    let kplex = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kplex"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let in_root = |verb: &str, file: &std::path::Path, root: &std::path::Path| {
        kplex(&[
            "snapshot",
            verb,
            file.to_str().unwrap(),
            "--root-directory",
            root.to_str().unwrap(),
        ])
    };
    let online = k.dir.path().join("online.snap");
    let kubeconfig = k.kubeconfig();
    let (ok, out) = kplex(&[
        "snapshot",
        "save",
        online.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let (ok, status) = kplex(&["snapshot", "status", online.to_str().unwrap()]);
    assert!(
        ok && status.contains(&format!("revision {}", before.1)),
        "{status} vs {before:?}"
    );
    // Through a workspace, only that workspace (`kubectl ws snapshot`): the whole store's
    // file is the root's alone.
    let bearer = [("Authorization", format!("Bearer {token}"))];
    let a = raw
        .request("GET", "/clusters/root:team/snapshot", &bearer, b"")
        .unwrap();
    assert_eq!(a.code, 200);
    let team = k.root().join("team.snap");
    std::fs::write(&team, &a.body).unwrap();
    let (ok, status) = kplex(&["snapshot", "status", team.to_str().unwrap()]);
    assert!(ok && status.contains("of workspace root:team"), "{status}");
    let keys = |status: &str| -> u64 {
        let at = status.find(" keys").unwrap();
        status[..at].rsplit(' ').next().unwrap().parse().unwrap()
    };
    let whole = kplex(&["snapshot", "status", online.to_str().unwrap()]).1;
    assert!(keys(&status) < keys(&whole), "{status} vs {whole}");
    let restore_whole = raw
        .request(
            "PUT",
            "/clusters/root:team/snapshot",
            &bearer,
            &std::fs::read(&online).unwrap(),
        )
        .unwrap();
    assert_eq!(
        restore_whole.code, 400,
        "a whole-store file is not a workspace's"
    );
    let a = raw.request("GET", "/snapshot", &[], b"").unwrap();
    assert_eq!(a.code, 401);
    // The store in use cannot be read behind the server's back.
    let (ok, out) = in_root("save", std::path::Path::new("/dev/null"), &k.root());
    assert!(!ok && out.contains("running"), "{out}");

    // Stopped: the directory's store gives the same snapshot; restored, the same objects.
    k.stop();
    let offline = k.dir.path().join("offline.snap");
    let (ok, out) = in_root("save", &offline, &k.root());
    assert!(ok, "{out}");
    let (_, offline_status) = kplex(&["snapshot", "status", offline.to_str().unwrap()]);
    assert!(
        offline_status.contains(&format!("revision {}", before.1)),
        "{offline_status}"
    );
    std::fs::rename(k.root().join("store.db"), k.dir.path().join("store.db.old")).unwrap();
    let (ok, out) = in_root("restore", &online, &k.root());
    assert!(ok, "{out}");
    // Never over a store.
    let (ok, out) = in_root("restore", &online, &k.root());
    assert!(!ok && out.contains("exists"), "{out}");
    k.restart();
    let raw = Raw::new(&k);
    assert_eq!(snapshot(&raw, &token), before, "the restored store differs");
    assert_eq!(
        common::ws_ok(
            &k,
            "root:team",
            &["get", "configmap", "c7", "-o", "jsonpath={.data.k}"]
        ),
        "v"
    );
    // Writes go on from the saved revision.
    k.ok(&["create", "configmap", "after-restore"]);
    // Restoring writes below admission: not for a workspace's own admin.
    common::ws_ok(
        &k,
        "root:team",
        &[
            "create",
            "clusterrolebinding",
            "alice-admin",
            "--clusterrole=cluster-admin",
            "--user=alice",
        ],
    );
    let alice = [
        ("Authorization", format!("Bearer {token}")),
        ("Impersonate-User", "alice".to_string()),
        ("Impersonate-Group", "system:authenticated".to_string()),
    ];
    let read = raw
        .request("GET", "/clusters/root:team/snapshot", &alice, b"")
        .unwrap();
    assert_eq!(read.code, 200, "alice may read her workspace");
    let restore = raw
        .request(
            "PUT",
            "/clusters/root:team/snapshot",
            &alice,
            &std::fs::read(&team).unwrap(),
        )
        .unwrap();
    let message = String::from_utf8_lossy(&restore.body).into_owned();
    assert_eq!(restore.code, 403, "{message}");
    assert!(message.contains("only cluster administrators"), "{message}");

    // A damaged file is refused and restores nothing.
    let mut bytes = std::fs::read(&online).unwrap();
    bytes.truncate(bytes.len() / 2);
    let damaged = k.dir.path().join("damaged.snap");
    std::fs::write(&damaged, bytes).unwrap();
    let elsewhere = k.dir.path().join("elsewhere");
    let (ok, out) = in_root("restore", &damaged, &elsewhere);
    assert!(!ok && out.contains("damaged"), "{out}");
    assert!(!elsewhere.join("store.db").exists());
}

/// etcd's own backup (`etcdctl snapshot save`, then `etcdctl snapshot restore` into a new
/// data directory — what docs/operations.md tells operators on etcd to do): a kplex started
/// on the restored etcd serves every object as it was at the backup, and nothing written
/// after it. (Leases are left out of the comparison: the restarted kplex renews its leader
/// Lease at once.)
#[test]
fn an_etcd_snapshot_restores_what_kplex_served() {
    let mut k = Kplex::start(Backend::Etcd);
    common::create_workspace(&k, "root", "team", None);
    k.ok_stdin(&["apply", "-f", "-"], common::WIDGETS_SCHEMA);
    for i in 0..10 {
        common::ws_ok(&k, "root:team", &["create", "configmap", &format!("c{i}")]);
    }
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=password=x",
    ]);
    let token = k.token();
    let file = k.root().join("etcd-backup.db");
    // A backup taken while nothing else is written: the digest before and after it agree.
    let before = loop {
        let raw = Raw::new(&k);
        let before = digest_without(&raw, &token, &["leases"]);
        k.etcd_mut().snapshot_save(&file);
        if digest_without(&raw, &token, &["leases"]).0 == before.0 {
            break before;
        }
    };
    common::ws_ok(
        &k,
        "root:team",
        &["create", "configmap", "after-the-backup"],
    );
    k.stop();
    k.etcd_mut().restore_from(&file);
    k.restart();
    let after = digest_without(&Raw::new(&k), &token, &["leases"]);
    assert_eq!(after.0, before.0, "the restored store serves other objects");
    assert!(
        !common::ws_succeeds(&k, "root:team", &["get", "configmap", "after-the-backup"]),
        "a write after the backup survived the restore"
    );
    assert!(common::ws_succeeds(
        &k,
        "root:team",
        &["get", "configmap", "c9"]
    ));
}
