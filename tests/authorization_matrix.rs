//! The authorization matrix: users {admin, workspace-admin of A, viewer of A, admin of B,
//! unauthenticated, expired service-account token, certificate from a foreign CA} ×
//! workspaces {A, B, root} × verbs × resources. Every cell has an expected answer and every
//! cell is checked over the wire; `kubectl auth can-i` (with each user's own credentials)
//! agrees with the matrix; and nothing of A leaks to B's users through watches, the
//! wildcard view, discovery of A's CRDs, or error messages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{Backend, Kplex, Raw, create_workspace, kubectl_binary, ws_ok as ok, ws_ok_stdin};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const A: &str = "root:team-a";
const B: &str = "root:team-b";
const ROOT: &str = "root";

const TOKENS: &str = "alice-token,alice,1001\nvictor-token,victor,1002\nbob-token,bob,1003\n";

const GRANTS_A: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: enter}
rules: [{verbs: [access], nonResourceURLs: ["/"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: victor-enters}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: enter}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: victor}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: victor-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: victor}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.dev}
spec:
  group: example.dev
  scope: Namespaced
  names: {plural: widgets, kind: Widget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;

const GRANTS_B: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum User {
    Admin,
    Alice,
    Victor,
    Bob,
    Anonymous,
    Expired,
    ForeignCert,
}

const USERS: [User; 7] = [
    User::Admin,
    User::Alice,
    User::Victor,
    User::Bob,
    User::Anonymous,
    User::Expired,
    User::ForeignCert,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Delete,
}

const VERBS: [Verb; 6] = [
    Verb::Get,
    Verb::List,
    Verb::Watch,
    Verb::Create,
    Verb::Update,
    Verb::Delete,
];

/// (resource path under `/clusters/<ws>`, kind for bodies, apiVersion, served in every workspace)
const RESOURCES: [(&str, &str, &str, bool); 3] = [
    (
        "/api/v1/namespaces/default/configmaps",
        "ConfigMap",
        "v1",
        true,
    ),
    ("/api/v1/namespaces/default/secrets", "Secret", "v1", true),
    (
        "/apis/example.dev/v1/namespaces/default/widgets",
        "Widget",
        "example.dev/v1",
        false,
    ),
];

fn is_read(v: Verb) -> bool {
    matches!(v, Verb::Get | Verb::List | Verb::Watch)
}

/// The expected HTTP status of one cell.
fn expected(user: User, ws: &str, verb: Verb, resource: usize) -> u16 {
    let (_, kind, _, everywhere) = RESOURCES[resource];
    let allowed = match user {
        User::Anonymous | User::Expired | User::ForeignCert => return 401,
        User::Admin => true,
        User::Alice => ws == A,
        User::Bob => ws == B,
        // `view` reads workloads, not Secrets, and (as in kube) no custom resources.
        User::Victor => ws == A && is_read(verb) && kind == "ConfigMap",
    };
    if !allowed {
        return 403;
    }
    if !everywhere && ws != A {
        return 404;
    }
    match verb {
        Verb::Create => 201,
        _ => 200,
    }
}

struct World {
    k: Kplex,
    raw: Raw,
    foreign: Raw,
    expired: String,
}

impl World {
    fn headers(&self, user: User) -> Vec<(&'static str, String)> {
        let token = match user {
            User::Admin => self.k.token(),
            User::Alice => "alice-token".into(),
            User::Victor => "victor-token".into(),
            User::Bob => "bob-token".into(),
            User::Expired => self.expired.clone(),
            User::Anonymous | User::ForeignCert => return vec![],
        };
        vec![("Authorization", format!("Bearer {token}"))]
    }

    /// The current resourceVersion of the object at `path`, read as the admin ("" if none).
    fn resource_version(&self, path: &str) -> String {
        let a = self
            .raw
            .request("GET", path, &self.headers(User::Admin), b"")
            .unwrap_or_else(|| panic!("GET {path}: no answer"));
        serde_json::from_slice::<serde_json::Value>(&a.body)
            .ok()
            .and_then(|o| {
                o.pointer("/metadata/resourceVersion")
                    .and_then(|v| v.as_str())
                    .map(String::from)
            })
            .unwrap_or_default()
    }

    /// One cell over the wire: (code, body). Writes are dry runs, so the matrix changes
    /// nothing.
    fn cell(&self, user: User, ws: &str, verb: Verb, resource: usize) -> (u16, String) {
        let (path, kind, api_version, _) = RESOURCES[resource];
        let name = "probe";
        let base = format!("/clusters/{ws}{path}");
        let object = |name: &str, rv: &str| {
            format!(
                r#"{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{"name":"{name}","namespace":"default","resourceVersion":"{rv}"}}}}"#
            )
        };
        // A create names a free name and a PUT the version it replaces (as kube requires of
        // custom resources), so that what decides each cell is authorization alone.
        let body = match verb {
            Verb::Create => object("probe-new", ""),
            Verb::Update => object(name, &self.resource_version(&format!("{base}/{name}"))),
            _ => String::new(),
        };
        let (method, url, body) = match verb {
            Verb::Get => ("GET", format!("{base}/{name}"), String::new()),
            Verb::List => ("GET", base, String::new()),
            Verb::Watch => (
                "GET",
                format!("{base}?watch=true&timeoutSeconds=1"),
                String::new(),
            ),
            Verb::Create => ("POST", format!("{base}?dryRun=All"), body),
            Verb::Update => ("PUT", format!("{base}/{name}?dryRun=All"), body),
            Verb::Delete => ("DELETE", format!("{base}/{name}?dryRun=All"), String::new()),
        };
        let mut headers = self.headers(user);
        headers.push(("Content-Type", "application/json".into()));
        let client = if user == User::ForeignCert {
            &self.foreign
        } else {
            &self.raw
        };
        let a = client
            .request(method, &url, &headers, body.as_bytes())
            .unwrap_or_else(|| panic!("{user:?} {verb:?} {url}: no answer"));
        (a.code, String::from_utf8_lossy(&a.body).into_owned())
    }
}

/// A client certificate for `mallory` from a CA kplex does not trust.
fn foreign_client(k: &Kplex) -> Raw {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "foreign-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "mallory");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    let cert = params.signed_by(&key, &issuer).unwrap();
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Raw::with_config(k, |b| {
        b.with_client_auth_cert(vec![cert.der().clone()], der)
            .unwrap()
    })
}

/// A token for service account `robot` of A, signed by the server's own key, expired.
fn expired_token(k: &Kplex) -> String {
    ok(k, A, &["create", "serviceaccount", "robot"]);
    let sa = ok(k, A, &["get", "serviceaccount", "robot", "-o", "json"]);
    let cluster = ok(
        k,
        ROOT,
        &[
            "get",
            "workspace",
            "team-a",
            "-o",
            "jsonpath={.spec.cluster}",
        ],
    );
    let out = common::output_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_kplex"))
            .args([
                "debug",
                "expired-token",
                "--cluster",
                &cluster,
                "--root-directory",
            ])
            .arg(k.root()),
        &sa,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn world() -> (World, tempfile::NamedTempFile) {
    let tokens = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tokens.path(), TOKENS).unwrap();
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &["--token-auth-file", tokens.path().to_str().unwrap()],
    );
    create_workspace(&k, ROOT, "team-a", None);
    create_workspace(&k, ROOT, "team-b", None);
    ws_ok_stdin(&k, A, &["apply", "-f", "-"], GRANTS_A);
    ws_ok_stdin(&k, B, &["apply", "-f", "-"], GRANTS_B);
    common::eventually(10, "the CRD", || {
        let out = k.kubectl(&[
            "--server",
            &k.url(&format!("/clusters/{A}")),
            "get",
            "widgets",
        ]);
        out.status.success().then_some(())
    });
    for ws in [A, B, ROOT] {
        ok(
            &k,
            ws,
            &["create", "configmap", "probe", "--from-literal=where=here"],
        );
        ok(
            &k,
            ws,
            &["create", "secret", "generic", "probe", "--from-literal=k=v"],
        );
    }
    ws_ok_stdin(
        &k,
        A,
        &["create", "-f", "-"],
        "apiVersion: example.dev/v1\nkind: Widget\nmetadata: {name: probe, namespace: default}\n",
    );
    let expired = expired_token(&k);
    let raw = Raw::new(&k);
    let foreign = foreign_client(&k);
    (
        World {
            k,
            raw,
            foreign,
            expired,
        },
        tokens,
    )
}

#[test]
fn every_cell_of_the_matrix() {
    let (w, _tokens) = world();
    let mut failures = Vec::new();
    let mut cells = 0;
    for user in USERS {
        for ws in [A, B, ROOT] {
            for verb in VERBS {
                for (resource, (_, kind, _, _)) in RESOURCES.iter().enumerate() {
                    let want = expected(user, ws, verb, resource);
                    let (got, body) = w.cell(user, ws, verb, resource);
                    cells += 1;
                    if got != want {
                        failures.push(format!(
                            "{user:?} {verb:?} {kind} in {ws}: want {want}, got {got}: {body}"
                        ));
                    }
                    // A refusal never says whether the object exists.
                    if got == 403 || got == 401 {
                        for leak in ["not found", "already exists", "where", "here"] {
                            assert!(!body.contains(leak), "{user:?} {verb:?} in {ws}: {body}");
                        }
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cells} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // kubectl auth can-i, with each user's own credentials, agrees with the matrix.
    let ca = w.k.root().join("ca.crt");
    let empty = tempfile::NamedTempFile::new().unwrap();
    for (user, token) in [
        (User::Alice, "alice-token"),
        (User::Victor, "victor-token"),
        (User::Bob, "bob-token"),
    ] {
        for ws in [A, B, ROOT] {
            for (verb, kubectl_verb) in [
                (Verb::Get, "get"),
                (Verb::List, "list"),
                (Verb::Create, "create"),
                (Verb::Delete, "delete"),
            ] {
                for (resource, name) in [(0, "configmaps"), (1, "secrets")] {
                    let out = Command::new(kubectl_binary())
                        .env("KUBECONFIG", empty.path())
                        .args([
                            "--server",
                            &w.k.url(&format!("/clusters/{ws}")),
                            "--certificate-authority",
                        ])
                        .arg(&ca)
                        .args([
                            "--token",
                            token,
                            "auth",
                            "can-i",
                            kubectl_verb,
                            name,
                            "-n",
                            "default",
                        ])
                        .output()
                        .unwrap();
                    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
                    let allowed = matches!(expected(user, ws, verb, resource), 200 | 201);
                    let enters =
                        matches!((user, ws), (User::Alice | User::Victor, A) | (User::Bob, B));
                    if !enters {
                        // kcp: without `access` to a workspace nothing can be asked in it.
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            !out.status.success() && err.contains("cannot access workspace"),
                            "can-i as {user:?} in {ws}: {answer} {err}"
                        );
                        continue;
                    }
                    assert_eq!(
                        answer,
                        if allowed { "yes" } else { "no" },
                        "can-i {kubectl_verb} {name} as {user:?} in {ws}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
    }
}

#[test]
fn nothing_of_a_leaks_to_b() {
    let (w, _tokens) = world();
    let bob = w.headers(User::Bob);
    let get = |path: &str| {
        let a = w.raw.request("GET", path, &bob, b"").unwrap();
        (a.code, String::from_utf8_lossy(&a.body).into_owned())
    };
    // The wildcard view, lists and watches across workspaces are the admin's alone.
    for path in [
        "/clusters/*/api/v1/configmaps",
        "/clusters/*/api/v1/configmaps?watch=true&timeoutSeconds=1",
        "/clusters/*/apis/example.dev/v1/widgets",
    ] {
        let (code, body) = get(path);
        assert_eq!(code, 403, "{path}: {body}");
    }
    // A's discovery (and its CRD) is closed to bob; B's discovery does not mention it.
    for path in [
        "/clusters/root:team-a/apis",
        "/clusters/root:team-a/apis/example.dev/v1",
        "/clusters/root:team-a/openapi/v3",
    ] {
        let (code, body) = get(path);
        assert_eq!(code, 403, "{path}: {body}");
        assert!(!body.contains("widgets"), "{body}");
    }
    let (code, body) = get("/clusters/root:team-b/apis");
    assert_eq!(code, 200);
    assert!(!body.contains("example.dev"), "{body}");
    // Existing and missing objects of A are refused alike.
    let (c1, existing) = get("/clusters/root:team-a/api/v1/namespaces/default/configmaps/probe");
    let (c2, missing) = get("/clusters/root:team-a/api/v1/namespaces/default/configmaps/nothing");
    assert_eq!((c1, c2), (403, 403));
    assert_eq!(
        existing.replace("probe", "X"),
        missing.replace("nothing", "X")
    );
    // And by logical cluster name as by path.
    let cluster = ok(
        &w.k,
        ROOT,
        &[
            "get",
            "workspace",
            "team-a",
            "-o",
            "jsonpath={.spec.cluster}",
        ],
    );
    let (code, _) = get(&format!(
        "/clusters/{cluster}/api/v1/namespaces/default/configmaps"
    ));
    assert_eq!(code, 403);
    // Bob's own workspace shows only B's objects, through kubectl as well.
    let (code, body) = get("/clusters/root:team-b/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200);
    assert!(
        common::json(&body)["items"].as_array().unwrap().len() <= 2,
        "{body}"
    );
    let (_, wb) = get(
        "/clusters/root:team-b/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
    );
    assert!(!wb.contains(&cluster), "B's watch shows nothing of A: {wb}");
}
