//! Service-account tokens end to end: `kubectl create serviceaccount` and `kubectl create
//! token` against a real kplex, the token used by kubectl in its own workspace, refused in
//! another workspace and when tampered with, and TokenReview. (Expiry is unit-tested on the
//! verifier with a fixed clock: TokenRequest does not go below ten minutes.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{Backend, Kplex, WHOAMI, eventually};
use serde_json::{Value, json};

/// A kubeconfig with only the server (workspace `path`) and the CA: no admin credentials.
fn bare_kubeconfig(k: &Kplex, path: &str) -> PathBuf {
    let ca = k.root().join("ca.crt");
    k.write_file(
        &format!("bare-{}.kubeconfig", path.replace(':', "-")),
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: k\n  context: {{cluster: k, user: u}}\ncurrent-context: k\nusers:\n- name: u\n  user: {{}}\n",
            k.url(&format!("/clusters/{path}")),
            ca.display()
        ),
    )
}

/// `kubectl auth whoami` with `token` against workspace `path`: Ok(json) or Err(stderr).
fn whoami(k: &Kplex, path: &str, token: &str) -> Result<Value, String> {
    let out = std::process::Command::new(common::kubectl_binary())
        .args(["auth", "whoami", "-o", "json", "--token", token])
        .env("KUBECONFIG", bare_kubeconfig(k, path))
        .env("HOME", k.home())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// (HTTP code, body) of a JSON POST to `path` with bearer `token`.
fn post(k: &Kplex, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let out = std::process::Command::new("curl")
        // HTTP/1.1: over HTTP/2, a 401 answered before the body is read resets the stream.
        .args(["-sS", "--http1.1", "--cacert"])
        .arg(k.root().join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "Content-Type: application/json", "-X", "POST"])
        .args(["--data-binary", &body.to_string()])
        .args(["-w", "\n%{http_code}", &k.url(path)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = out.rsplit_once('\n').unwrap();
    (
        code.trim()
            .parse()
            .ok()
            .filter(|c| *c != 0)
            .unwrap_or_else(|| panic!("curl: {err}\n{}", k.log())),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn service_account_tokens() {
    let k = Kplex::start(Backend::Embedded);
    assert!(k.root().join("sa.key").exists());
    k.ok_stdin(&["apply", "-f", "-"], WHOAMI);
    k.ok(&["create", "serviceaccount", "robot"]);
    let sa: Value = serde_json::from_str(&k.ok(&["get", "sa", "robot", "-o", "json"])).unwrap();
    let uid = sa["metadata"]["uid"].as_str().unwrap().to_string();

    // kubectl create token (a protobuf TokenRequest).
    let token = k.ok(&["create", "token", "robot"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "{token}");
    let review = whoami(&k, "root", &token).unwrap_or_else(|e| panic!("{e}\n{}", k.log()));
    let info = &review["status"]["userInfo"];
    assert_eq!(info["username"], "system:serviceaccount:default:robot");
    assert_eq!(info["uid"], uid.as_str());
    assert_eq!(
        info["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );

    // The TokenRequest answer, and its validation.
    let (code, answer) = post(
        &k,
        &k.token(),
        "/clusters/root/api/v1/namespaces/default/serviceaccounts/robot/token",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": 1200, "audiences": ["vault"]}}),
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["kind"], "TokenRequest");
    assert_eq!(answer["spec"]["audiences"], json!(["vault"]));
    assert!(answer["status"]["expirationTimestamp"].is_string());
    let vault_token = answer["status"]["token"].as_str().unwrap().to_string();
    // Not for the API server's audience.
    assert!(whoami(&k, "root", &vault_token).is_err());
    let (code, _) = post(
        &k,
        &k.token(),
        "/clusters/root/api/v1/namespaces/default/serviceaccounts/robot/token",
        &json!({"spec": {"expirationSeconds": 60}}),
    );
    assert_eq!(code, 400);
    let (code, _) = post(
        &k,
        &k.token(),
        "/clusters/root/api/v1/namespaces/default/serviceaccounts/nobody/token",
        &json!({}),
    );
    assert_eq!(code, 404);
    let fails = k.fails(&["create", "token", "nobody"]);
    assert!(fails.contains("not found"), "{fails}");

    // TokenReview in the token's workspace.
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                        "spec": {"token": token}});
    let (code, answer) = post(
        &k,
        &k.token(),
        "/clusters/root/apis/authentication.k8s.io/v1/tokenreviews",
        &review,
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["status"]["authenticated"], true, "{answer}");
    assert_eq!(
        answer["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );

    // Another workspace: the token is bound to root's logical cluster.
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: other}\nspec: {type: {name: universal}}\n",
    );
    eventually(20, "workspace other to be Ready", || {
        let phase = k.ok(&[
            "get",
            "workspace",
            "other",
            "-o",
            "jsonpath={.status.phase}",
        ]);
        (phase == "Ready").then_some(())
    });
    let err = whoami(&k, "root:other", &token).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");
    let (code, _) = post(
        &k,
        &token,
        "/clusters/root:other/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    );
    assert_eq!(code, 401);
    let (code, answer) = post(
        &k,
        &k.token(),
        "/clusters/root:other/apis/authentication.k8s.io/v1/tokenreviews",
        &review,
    );
    assert_eq!(code, 201);
    assert_ne!(answer["status"]["authenticated"], true, "{answer}");
    // Its own workspace still accepts it.
    assert!(whoami(&k, "root", &token).is_ok());

    // A tampered token: one character of the signature changed.
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let err = whoami(&k, "root", &tampered).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");
    let (code, _) = post(
        &k,
        &tampered,
        "/clusters/root/apis/authentication.k8s.io/v1/selfsubjectreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    );
    assert_eq!(code, 401);

    // Deleting the ServiceAccount revokes its tokens, and a new one of the same name (another
    // uid) does not revive them.
    k.ok(&["delete", "serviceaccount", "robot"]);
    let err = whoami(&k, "root", &token).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");
    let (code, answer) = post(
        &k,
        &k.token(),
        "/clusters/root/apis/authentication.k8s.io/v1/tokenreviews",
        &review,
    );
    assert_eq!(code, 201);
    assert_ne!(answer["status"]["authenticated"], true, "{answer}");
    k.ok(&["create", "serviceaccount", "robot"]);
    let err = whoami(&k, "root", &token).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");
    let fresh = k.ok(&["create", "token", "robot"]).trim().to_string();
    let review = whoami(&k, "root", &fresh).unwrap_or_else(|e| panic!("{e}\n{}", k.log()));
    assert_eq!(
        review["status"]["userInfo"]["extra"]["authentication.kubernetes.io/credential-id"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{review}"
    );
}

const TOKEN_SECRET: &str = r#"
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: robot-token
  annotations: {kubernetes.io/service-account.name: robot}
"#;

#[test]
fn legacy_token_secrets_and_bound_object_tokens() {
    let k = Kplex::start(Backend::Embedded);
    k.ok(&["create", "serviceaccount", "robot"]);
    // The token controller fills a token Secret; its token lives as long as the Secret.
    k.ok_stdin(&["apply", "-f", "-"], TOKEN_SECRET);
    let token = eventually(10, "the token controller", || {
        let t = k.ok(&[
            "get",
            "secret",
            "robot-token",
            "-o",
            "go-template={{if .data.token}}{{.data.token | base64decode}}{{end}}",
        ]);
        (!t.is_empty()).then_some(t)
    });
    let secret: Value =
        serde_json::from_str(&k.ok(&["get", "secret", "robot-token", "-o", "json"])).unwrap();
    assert!(secret["data"]["ca.crt"].is_string() && secret["data"]["namespace"].is_string());
    assert!(secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"].is_string());
    let me = whoami(&k, "root", &token).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["username"],
        "system:serviceaccount:default:robot"
    );
    k.ok(&["delete", "secret", "robot-token"]);
    assert!(
        whoami(&k, "root", &token)
            .unwrap_err()
            .contains("Unauthorized")
    );

    // A token Secret for a ServiceAccount that does not exist is removed, as kube does.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &TOKEN_SECRET
            .replace("robot-token", "ghost-token")
            .replace("name: robot}", "name: ghost}"),
    );
    eventually(10, "the orphan token Secret to go", || {
        let out = k.kubectl(&["get", "secret", "ghost-token"]);
        (!out.status.success()).then_some(())
    });

    // A token bound to a Pod dies with the Pod; whoami names the Pod as kube does.
    k.ok(&["run", "worker", "--image=busybox", "--restart=Never"]);
    let bound = k.ok(&[
        "create",
        "token",
        "robot",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "worker",
    ]);
    let me = whoami(&k, "root", bound.trim()).unwrap();
    assert_eq!(
        me["status"]["userInfo"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["worker"])
    );
    k.ok(&["delete", "pod", "worker", "--wait=false"]);
    eventually(10, "the bound token to stop working", || {
        whoami(&k, "root", bound.trim()).is_err().then_some(())
    });
    // Binding to an object that does not exist is refused.
    let out = k.kubectl(&[
        "create",
        "token",
        "robot",
        "--bound-object-kind",
        "Secret",
        "--bound-object-name",
        "nope",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

/// kube's `--service-account-key-file` and `--service-account-signing-key-file`: a signing
/// key rotated out keeps verifying the tokens it signed while it is listed, and the signing
/// key may live outside the root directory (a mounted Secret, for replicas).
#[test]
fn the_signing_key_rotates_without_logging_anyone_out() {
    let mut k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["apply", "-f", "-"], WHOAMI);
    k.ok(&["create", "serviceaccount", "robot"]);
    let old_token = k.ok(&["create", "token", "robot"]).trim().to_string();
    assert!(whoami(&k, "root", &old_token).is_ok());

    // Rotate: the old key leaves the root directory (a new one is generated) and is listed
    // as a verification key.
    let old_key = k.dir.path().join("old-sa.pem");
    std::fs::rename(k.root().join("sa.key"), &old_key).unwrap();
    let old_key = old_key.to_str().unwrap().to_string();
    k.restart_with_args(&["--service-account-key-file", &old_key]);
    assert!(k.root().join("sa.key").exists());
    let new_token = k.ok(&["create", "token", "robot"]).trim().to_string();
    assert!(whoami(&k, "root", &new_token).is_ok());
    assert!(
        whoami(&k, "root", &old_token).is_ok(),
        "a listed old key still verifies: {}",
        k.log()
    );

    // Dropped from the list, its tokens no longer authenticate.
    k.restart_with_args(&[]);
    assert!(whoami(&k, "root", &old_token).is_err());
    assert!(whoami(&k, "root", &new_token).is_ok());

    // The signing key given by path signs and verifies instead of `<root>/sa.key`.
    k.restart_with_args(&["--service-account-signing-key-file", &old_key]);
    assert!(whoami(&k, "root", &old_token).is_ok());
    assert!(whoami(&k, "root", &new_token).is_err());

    // A signing key that is not there is an error at start, naming the file.
    let missing = k.dir.path().join("missing.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kplex"))
        .args(["start", "--secure-port", "0", "--root-directory"])
        .arg(k.dir.path().join("other-root"))
        .arg("--service-account-signing-key-file")
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
}

/// What kube's serviceaccounts controller and root-ca-cert publisher give every namespace:
/// a `default` ServiceAccount (so `kubectl create token default` works at once) and the
/// `kube-root-ca.crt` ConfigMap with the CA that signs the server's certificate — in a new
/// workspace's `default` namespace and in every namespace created later, made again when
/// deleted.
#[test]
fn every_namespace_has_a_default_service_account_and_the_root_ca() {
    let k = Kplex::start(Backend::Embedded);
    common::create_workspace(&k, "root", "fresh", None);
    let ca = std::fs::read_to_string(k.root().join("ca.crt")).unwrap();
    // What a kubectl get prints, once it succeeds with something.
    let read = |args: &[&str]| {
        let args = common::in_ws(&k, "root:fresh", args);
        let out = k.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    for ns in ["default", "team"] {
        if ns != "default" {
            common::ws_ok(&k, "root:fresh", &["create", "namespace", ns]);
        }
        let account_uid = || {
            read(&[
                "get",
                "sa",
                "default",
                "-n",
                ns,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
        };
        let uid = eventually(10, "the default service account", account_uid);
        let published = eventually(10, "the root CA", || {
            read(&[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                ns,
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ])
        });
        assert_eq!(published.trim(), ca.trim(), "the server's CA, in {ns}");
        let token = common::ws_ok(&k, "root:fresh", &["create", "token", "default", "-n", ns]);
        let me = whoami(&k, "root:fresh", token.trim()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            me["status"]["userInfo"]["username"],
            format!("system:serviceaccount:{ns}:default")
        );
        // Deleted, it comes back (a new object).
        common::ws_ok(&k, "root:fresh", &["delete", "sa", "default", "-n", ns]);
        eventually(10, "the default service account again", || {
            account_uid().filter(|u| *u != uid)
        });
    }
}
