//! OpenID Connect ID tokens, end to end: an issuer run by the test (its discovery document and
//! keys over HTTPS, or its keys in a file), ES256 tokens it signs, the real kubectl presenting
//! them; users and groups as kube names them, RBAC on them, and every invalid token refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use common::{Backend, HttpsServer, Kplex, eventually};
use rcgen::{KeyPair, SigningKey};
use serde_json::{Value, json};

/// base64url without padding, as JWTs use.
fn b64url(data: &[u8]) -> String {
    common::base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// An ES256 signature as JWTs carry it (r ‖ s, 32 bytes each), from ring's DER.
fn fixed_signature(der: &[u8]) -> Vec<u8> {
    let int = |at: usize| {
        let len = der[at + 1] as usize;
        let v = &der[at + 2..at + 2 + len];
        let v = &v[v.len().saturating_sub(32)..];
        let mut out = vec![0u8; 32 - v.len()];
        out.extend_from_slice(v);
        (out, at + 2 + len)
    };
    let (r, next) = int(2);
    let (s, _) = int(next);
    [r, s].concat()
}

/// The test's issuer: one P-256 key.
struct Issuer {
    key: KeyPair,
    kid: String,
}

impl Issuer {
    fn new(kid: &str) -> Self {
        Self {
            key: KeyPair::generate().unwrap(),
            kid: kid.into(),
        }
    }

    fn jwks(&self) -> Value {
        let point = self.key.public_key_raw();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64url(&point[1..33]), "y": b64url(&point[33..65])}]})
    }

    fn token(&self, claims: &Value) -> String {
        let head = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let signed = format!(
            "{}.{}",
            b64url(head.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = fixed_signature(&self.key.sign(signed.as_bytes()).unwrap());
        format!("{signed}.{}", b64url(&sig))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(iss: &str, aud: &str, email: &str, exp: i64) -> Value {
    json!({"iss": iss, "aud": aud, "sub": "u-123", "email": email, "email_verified": true,
        "groups": ["dev"], "iat": now(), "exp": exp})
}

/// kubectl with a bearer token (and no other credentials).
fn with_token(k: &Kplex, token: &str, args: &[&str]) -> std::process::Output {
    let empty = k.write_file("empty.kubeconfig", "apiVersion: v1\nkind: Config\n");
    std::process::Command::new(common::kubectl_binary())
        .env("KUBECONFIG", empty)
        .args([
            "--server",
            &k.url("/clusters/root"),
            "--certificate-authority",
        ])
        .arg(k.root().join("ca.crt"))
        .args(["--token", token])
        .args(args)
        .output()
        .unwrap()
}

fn whoami(k: &Kplex, token: &str) -> Result<Value, String> {
    let out = with_token(k, token, &["auth", "whoami", "-o", "json"]);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const DEV_CAN_READ: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: oidc-dev}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "oidc:dev"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: oidc-dev-enters}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:kcp:workspace:access"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "oidc:dev"}]
"#;

#[test]
fn id_tokens_with_keys_from_a_file() {
    const ISS: &str = "https://issuer.example";
    let issuer = Issuer::new("k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, issuer.jwks().to_string()).unwrap();
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &[
            "--oidc-issuer-url",
            ISS,
            "--oidc-client-id",
            "kplex",
            "--oidc-username-claim",
            "email",
            "--oidc-groups-claim",
            "groups",
            "--oidc-groups-prefix",
            "oidc:",
            "--oidc-jwks-file",
            jwks.to_str().unwrap(),
        ],
    );
    let good = issuer.token(&claims(ISS, "kplex", "ann@example.com", now() + 600));
    let me = whoami(&k, &good).unwrap();
    assert_eq!(me["status"]["userInfo"]["username"], "ann@example.com");
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(
        groups.contains("oidc:dev") && groups.contains("system:authenticated"),
        "{groups}"
    );

    // RBAC applies to the user's groups.
    let out = with_token(&k, &good, &["get", "configmaps", "-n", "default"]);
    assert!(!out.status.success());
    k.ok_stdin(&["apply", "-f", "-"], DEV_CAN_READ);
    let out = with_token(&k, &good, &["get", "configmaps", "-n", "default"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every invalid token is refused.
    let other = Issuer::new("k1");
    let mut tampered = good.clone();
    tampered.replace_range(tampered.len() - 5.., "AAAAA");
    for (what, token) in [
        ("expired", issuer.token(&claims(ISS, "kplex", "ann@example.com", now() - 3600))),
        ("another audience", issuer.token(&claims(ISS, "someone-else", "ann@example.com", now() + 600))),
        ("another issuer", issuer.token(&claims("https://evil.example", "kplex", "ann@example.com", now() + 600))),
        ("another key", other.token(&claims(ISS, "kplex", "ann@example.com", now() + 600))),
        ("tampered", tampered),
        ("unverified email", issuer.token(&json!({"iss": ISS, "aud": "kplex", "email": "bob@example.com", "email_verified": false, "exp": now() + 600}))),
        ("not a JWT", "definitely.not.ajwt".to_string()),
    ] {
        let err = whoami(&k, &token).unwrap_err();
        assert!(err.contains("Unauthorized"), "{what}: {err}");
    }
}

static DISCOVERY: OnceLock<(String, Value)> = OnceLock::new();

/// The issuer's discovery document and keys (set before the server answers).
fn serve_issuer(path: &str, _body: &[u8]) -> (u16, Vec<u8>) {
    let Some((issuer, jwks)) = DISCOVERY.get() else {
        return (503, b"{}".to_vec());
    };
    match path {
        "/.well-known/openid-configuration" => (
            200,
            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")})
                .to_string()
                .into_bytes(),
        ),
        "/keys" => (200, jwks.to_string().into_bytes()),
        _ => (404, b"{}".to_vec()),
    }
}

#[test]
fn id_tokens_with_keys_from_the_issuer() {
    let issuer = Issuer::new("discovered");
    let server = HttpsServer::start(serve_issuer);
    let url = server.url("");
    DISCOVERY.set((url.clone(), issuer.jwks())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("issuer-ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &[
            "--oidc-issuer-url",
            &url,
            "--oidc-client-id",
            "kplex",
            "--oidc-ca-file",
            ca.to_str().unwrap(),
        ],
    );
    let token = issuer.token(&claims(&url, "kplex", "ann@example.com", now() + 600));
    // The username claim defaults to `sub`, prefixed with the issuer.
    let me = eventually(10, "the issuer's keys", || whoami(&k, &token).ok());
    assert_eq!(me["status"]["userInfo"]["username"], format!("{url}#u-123"));
}
