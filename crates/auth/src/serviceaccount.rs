//! Service-account tokens, as kube-apiserver issues them (`TokenRequest`, the `token`
//! subresource of ServiceAccounts) and bound to their logical cluster as in kcp: ES256 JWTs
//! signed with `<root>/sa.key`, carrying kube's `kubernetes.io` claim plus the logical
//! cluster's name (`kubernetes.io.clusterName`). A token authenticates only requests to that
//! logical cluster.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use kplex_apimachinery::ApiError;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Value, json};

use std::sync::Arc;

use kplex_apimachinery::UserInfo;
use kplex_registry::served::Served;
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};

use crate::registry::{Registry, Scope};

/// The issuer (`iss`) of every token, and the audience the API server accepts.
pub const ISSUER: &str = "https://kplex.local";
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("service account key {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// The key that signs and verifies service-account tokens.
pub struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
    /// Further public keys (uncompressed P-256 points) whose tokens verify: kube's
    /// `--service-account-key-file`, for rotating the signing key without logging anyone out.
    verifying: Vec<Vec<u8>>,
}

/// The DER header of a P-256 public key (SubjectPublicKeyInfo: id-ecPublicKey, prime256v1,
/// a 66-byte BIT STRING); the uncompressed point follows it.
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl Signer {
    /// Reads the PKCS#8 PEM key at `path` (kube's `--service-account-signing-key-file`);
    /// only ECDSA P-256 (ES256) keys.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let pem = read_key_file(path)?;
        let der = rustls_pemfile::pkcs8_private_keys(&mut pem.as_slice())
            .next()
            .ok_or_else(|| invalid("no PKCS#8 private key".into()))?
            .map_err(|e| invalid(e.to_string()))?;
        Self::from_pkcs8(der.secret_pkcs8_der()).map_err(invalid)
    }

    /// Also accepts tokens signed by the keys in the PEM file at `path` (kube's
    /// `--service-account-key-file`): P-256 public keys (`PUBLIC KEY`) or private keys
    /// (`PRIVATE KEY`, PKCS#8), whose public half is used.
    pub fn accept_keys_from(mut self, path: &Path) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let pem = read_key_file(path)?;
        let before = self.verifying.len();
        for item in rustls_pemfile::read_all(&mut pem.as_slice()) {
            let point = match item.map_err(|e| invalid(e.to_string()))? {
                rustls_pemfile::Item::SubjectPublicKeyInfo(spki) => spki
                    .as_ref()
                    .strip_prefix(P256_SPKI_HEADER.as_slice())
                    .filter(|p| p.len() == 65)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| invalid("only ECDSA P-256 public keys are supported".into()))?,
                rustls_pemfile::Item::Pkcs8Key(key) => Self::from_pkcs8(key.secret_pkcs8_der())
                    .map_err(invalid)?
                    .key
                    .public_key()
                    .as_ref()
                    .to_vec(),
                _ => continue,
            };
            self.verifying.push(point);
        }
        if self.verifying.len() == before {
            return Err(invalid("no PUBLIC KEY or PRIVATE KEY block".into()));
        }
        Ok(self)
    }

    /// Reads the PKCS#8 PEM key at `path`, generating it (P-256) on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let invalid = |reason: String| KeyError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let io = |action| {
            move |source| KeyError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        if path.exists() {
            return Self::load(path);
        }
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|e| invalid(e.to_string()))?;
        let body = STANDARD.encode(doc.as_ref());
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            // Private from the start: created 0600, never world-readable.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| f.write_all(pem.as_bytes()))
                .map_err(io("write"))?;
        }
        Self::from_pkcs8(doc.as_ref()).map_err(invalid)
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| e.to_string())?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(Self {
            key,
            kid,
            rng,
            verifying: Vec::new(),
        })
    }

    /// A compact JWS (ES256) of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, ApiError> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| ApiError::internal("signing the token failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// The claims of a token we signed that is valid at `now` (Unix seconds) for one of
    /// `audiences`; `None` for anything else (foreign, tampered, expired, not a JWT).
    pub fn verify(&self, token: &str, now: i64, audiences: &[&str]) -> Option<Claims> {
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if head.get("alg").and_then(Value::as_str) != Some("ES256") {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
        std::iter::once(self.key.public_key().as_ref())
            .chain(self.verifying.iter().map(Vec::as_slice))
            .any(|key| {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
                    .verify(signed, &signature)
                    .is_ok()
            })
            .then_some(())?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        if claims.get("iss").and_then(Value::as_str) != Some(ISSUER) {
            return None;
        }
        // Legacy tokens (from a token Secret) never expire: they live as long as the Secret.
        let legacy = claims.pointer("/kubernetes.io/secret").is_some();
        let exp = match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) => exp,
            None if legacy => i64::MAX - 60,
            None => return None,
        };
        let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        // kube allows a minute of clock skew on either side.
        if now >= exp + 60 || now + 60 < nbf {
            return None;
        }
        let aud: Vec<&str> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => return None,
        };
        let accepted: Vec<String> = aud
            .iter()
            .filter(|a| audiences.contains(a))
            .map(|a| a.to_string())
            .collect();
        if accepted.is_empty() {
            return None;
        }
        let k = claims.get("kubernetes.io")?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
        let namespace = text(k.get("namespace"))?;
        let sa = k.get("serviceaccount")?;
        let name = text(sa.get("name"))?;
        let sub = format!("system:serviceaccount:{namespace}:{name}");
        if claims.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
            return None;
        }
        let bound = ["pod", "secret"].into_iter().find_map(|kind| {
            let o = k.get(kind)?;
            Some(BoundObject {
                kind: kind.to_string(),
                name: text(o.get("name"))?,
                uid: text(o.get("uid"))?,
            })
        });
        Some(Claims {
            namespace,
            name,
            uid: text(sa.get("uid")).unwrap_or_default(),
            jti: text(claims.get("jti")).unwrap_or_default(),
            cluster: text(k.get("clusterName"))?,
            audiences: accepted,
            bound,
        })
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The token's ID (`jti`), shown as the user's credential ID as in kube.
    pub jti: String,
    /// The logical cluster the token is bound to.
    pub cluster: String,
    /// The token's audiences that were accepted.
    pub audiences: Vec<String>,
    /// The object the token's life is bound to (a Pod, or a Secret: legacy token Secrets and
    /// TokenRequests bound to one).
    pub bound: Option<BoundObject>,
}

/// An object a token lives only as long as (`kind`: `pod` or `secret`).
#[derive(Debug, Clone, PartialEq)]
pub struct BoundObject {
    pub kind: String,
    pub name: String,
    pub uid: String,
}

/// The user-info extra keys naming a token's bound object, as kube's (`pod-name`, `pod-uid`).
fn bound_extra(kind: &str) -> (String, String) {
    (
        format!("authentication.kubernetes.io/{kind}-name"),
        format!("authentication.kubernetes.io/{kind}-uid"),
    )
}

impl Claims {
    /// The service account as a user, as kube's authenticator makes it.
    pub fn user(&self) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{}:{}", self.namespace, self.name),
            uid: self.uid.clone(),
            groups: vec![
                SERVICE_ACCOUNTS.into(),
                format!("{SERVICE_ACCOUNTS}:{}", self.namespace),
                crate::authn::AUTHENTICATED.into(),
            ],
            extra: {
                let mut extra: std::collections::BTreeMap<String, Vec<String>> = [
                    (CREDENTIAL_ID.to_string(), vec![format!("JTI={}", self.jti)]),
                    (CLUSTER_NAME.to_string(), vec![self.cluster.clone()]),
                ]
                .into();
                if let Some(b) = &self.bound {
                    let (name, uid) = bound_extra(&b.kind);
                    extra.insert(name, vec![b.name.clone()]);
                    extra.insert(uid, vec![b.uid.clone()]);
                }
                extra
            },
        }
    }
}

/// The user-info extra key naming the credential a request was authenticated with; its
/// presence marks a user as authenticated by a service-account token.
pub const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// kcp's user-info extra naming the logical cluster a service account belongs to: its
/// workspace lets it in (see `Authorizer::authorize_as`), no other does.
pub const CLUSTER_NAME: &str = "authentication.kcp.io/cluster-name";

/// The logical cluster `user` is a service account of, if it is one.
pub fn home_cluster(user: &UserInfo) -> Option<&str> {
    user.extra
        .get(CLUSTER_NAME)
        .and_then(|c| c.first())
        .map(String::as_str)
        .filter(|_| user.name.starts_with("system:serviceaccount:"))
}

/// Where ServiceAccounts are looked up.
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub registry: &'a Registry,
    pub served: &'a crate::served::Served,
}

/// Whether a token's ServiceAccount still exists with the uid the token names: kube refuses
/// the tokens of a deleted (or deleted and re-created) ServiceAccount. `Ok` for users not
/// authenticated by a service-account token.
pub async fn check_still_exists(
    accounts: Accounts<'_>,
    cluster: Option<&str>,
    user: &UserInfo,
) -> Result<(), ApiError> {
    let Accounts { registry, served } = accounts;
    if !user.extra.contains_key(CREDENTIAL_ID) {
        return Ok(());
    }
    let Some(rest) = user.name.strip_prefix("system:serviceaccount:") else {
        return Ok(());
    };
    let (namespace, name) = rest.split_once(':').unwrap_or((rest, ""));
    let desc = served
        .lookup(cluster, "", "v1", "serviceaccounts")
        .ok_or_else(|| ApiError::unauthorized("Unauthorized"))?;
    let scope = Scope {
        cluster: cluster.map(String::from),
        desc,
        namespace: Some(namespace.to_string()),
    };
    let uid = match registry.get(&scope, name).await {
        Ok(stored) => stored.decode()?["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Err(e) if e.is_not_found() => String::new(),
        Err(e) => return Err(e),
    };
    if uid.is_empty() || uid != user.uid {
        tracing::debug!(user = %user.name, "token of a deleted service account");
        return Err(ApiError::unauthorized("Unauthorized"));
    }
    // A token bound to a Pod or Secret dies with it (legacy token Secrets included).
    for (kind, plural) in [("pod", "pods"), ("secret", "secrets")] {
        let (name_key, uid_key) = bound_extra(kind);
        let (Some(object), Some(want)) = (
            user.extra.get(&name_key).and_then(|v| v.first()),
            user.extra.get(&uid_key).and_then(|v| v.first()),
        ) else {
            continue;
        };
        if object_uid(accounts, cluster, namespace, plural, object).await? != *want {
            tracing::debug!(user = %user.name, kind, object, "token of a deleted bound object");
            return Err(ApiError::unauthorized("Unauthorized"));
        }
    }
    Ok(())
}

/// The uid of a core object, "" when it does not exist.
async fn object_uid(
    accounts: Accounts<'_>,
    cluster: Option<&str>,
    namespace: &str,
    plural: &str,
    name: &str,
) -> Result<String, ApiError> {
    let Some(desc) = accounts.served.lookup(cluster, "", "v1", plural) else {
        return Ok(String::new());
    };
    let scope = Scope {
        cluster: cluster.map(String::from),
        desc,
        namespace: Some(namespace.to_string()),
    };
    match accounts.registry.get(&scope, name).await {
        Ok(stored) => Ok(stored.decode()?["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string()),
        Err(e) if e.is_not_found() => Ok(String::new()),
        Err(e) => Err(e),
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The claims of a token for service account `sa` (a stored ServiceAccount) of logical
/// cluster `cluster`, issued at `now`.
pub fn claims(cluster: &str, sa: &Value, audiences: &[String], now: i64, expiration: i64) -> Value {
    let meta = &sa["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or_default();
    let name = meta["name"].as_str().unwrap_or_default();
    json!({
        "aud": audiences,
        "exp": now + expiration,
        "iat": now,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": meta["uid"].as_str().unwrap_or_default()},
            "clusterName": cluster,
        },
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
    })
}

/// The uid of the Pod or Secret a TokenRequest binds its token to (in the service account's
/// namespace); it must exist, with the uid the request names if it names one.
async fn bind_to_object(
    registry: &Registry,
    served: &Served,
    scope: &Scope,
    r: &Value,
) -> Result<String, ApiError> {
    let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = r.get("name").and_then(Value::as_str).unwrap_or("");
    let plural = match kind {
        "Pod" => "pods",
        "Secret" => "secrets",
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {other}: only Pod and Secret are supported"
            )));
        }
    };
    let desc = served
        .lookup(scope.cluster.as_deref(), "", "v1", plural)
        .ok_or_else(|| ApiError::internal("no core kinds"))?;
    let object_scope = Scope {
        desc,
        ..scope.clone()
    };
    let obj = registry.get(&object_scope, name).await?.decode()?;
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(want) = r
        .get("uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        && want != uid
    {
        return Err(ApiError::conflict(
            "",
            plural,
            name,
            &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record ({uid}). The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(uid)
}

/// The claims of a legacy token Secret's token: no expiry, bound to the Secret.
pub fn legacy_claims(cluster: &str, sa: &Value, secret: &Value) -> Value {
    let mut c = claims(cluster, sa, &[ISSUER.to_string()], now(), 0);
    if let Some(m) = c.as_object_mut() {
        m.remove("exp");
        m.remove("nbf");
    }
    c["kubernetes.io"]["secret"] = json!({
        "name": secret["metadata"]["name"],
        "uid": secret["metadata"]["uid"],
    });
    c
}

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest answered with a signed token for
/// the ServiceAccount (404 when it does not exist in the logical cluster).
/// TokenRequest (`serviceaccounts/<name>/token`, create only): a token for the
/// ServiceAccount, signed by the server, never stored.
pub struct TokenRequests {
    pub registry: Registry,
    pub served: Arc<Served>,
    /// `None`: no service-account tokens are issued (every request is 405).
    pub signer: Option<Arc<Signer>>,
}

#[async_trait::async_trait]
impl VirtualResource for TokenRequests {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group.is_empty()
            && req.desc.plural == "serviceaccounts"
            && req.subresource == Some("token")
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        if req.verb != "create" {
            return Err(ApiError::method_not_supported(
                "",
                "serviceaccounts/token",
                req.verb,
            ));
        }
        let scope = Scope {
            cluster: req.cluster.map(String::from),
            desc: req.desc.clone(),
            namespace: req.namespace.map(String::from),
        };
        let object = token_request(
            &self.registry,
            &self.served,
            self.signer.as_deref(),
            &scope,
            req,
        )
        .await?;
        Ok(Answer { code: 201, object })
    }
}

async fn token_request(
    registry: &Registry,
    served: &Served,
    signer: Option<&Signer>,
    scope: &Scope,
    req: &VirtualRequest<'_>,
) -> Result<Value, ApiError> {
    let signer = signer
        .ok_or_else(|| ApiError::method_not_supported("", "serviceaccounts/token", req.verb))?;
    let cluster = scope
        .cluster
        .as_deref()
        .ok_or_else(|| ApiError::method_not_supported("", "serviceaccounts/token", "create"))?;
    let name = req.name.unwrap_or_default().to_string();
    let sa = registry.get(scope, &name).await?.decode()?;
    let (content_type, body) = (req.content_type, req.body);
    let input = if body.is_empty() {
        json!({})
    } else {
        crate::codec::decode_typed(
            content_type,
            body,
            ("authentication.k8s.io", "v1", "TokenRequest"),
        )?
    };
    if input
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "TokenRequest")
    {
        return Err(ApiError::bad_request(
            "the body of the request is not a TokenRequest",
        ));
    }
    let spec = input.get("spec").cloned().unwrap_or_else(|| json!({}));
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION);
    if expiration < MIN_EXPIRATION {
        return Err(ApiError::bad_request(
            "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION {
        return Err(ApiError::bad_request(
            "spec.expirationSeconds: Invalid value: may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(ISSUER.into());
    }
    let now = now();
    let mut claims = claims(cluster, &sa, &audiences, now, expiration);
    let mut spec = spec;
    if let Some(r) = spec.get("boundObjectRef").filter(|r| !r.is_null()).cloned() {
        let uid = bind_to_object(registry, served, scope, &r).await?;
        let kind = r["kind"].as_str().unwrap_or("").to_ascii_lowercase();
        claims["kubernetes.io"][kind.as_str()] = json!({"name": r["name"], "uid": uid});
        spec["boundObjectRef"]["uid"] = json!(uid);
    }
    let token = signer.sign(&claims)?;
    let mut metadata = input.get("metadata").cloned().unwrap_or_else(|| json!({}));
    metadata["name"] = json!(name);
    if let Some(ns) = &scope.namespace {
        metadata["namespace"] = json!(ns);
    }
    metadata["creationTimestamp"] = Value::Null;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    if spec.get("boundObjectRef").is_none() {
        spec["boundObjectRef"] = Value::Null;
    }
    let out = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": metadata,
        "spec": spec,
        "status": {
            "token": token,
            "expirationTimestamp": kplex_apimachinery::meta::format_rfc3339(now + expiration),
        },
    });
    Ok(out)
}

/// What the token controller needs to fill legacy token Secrets.
pub struct LegacyTokens {
    pub signer: Signer,
    /// The CA bundle put in each Secret as `ca.crt`.
    pub ca_pem: Vec<u8>,
}

/// The annotation naming a token Secret's ServiceAccount (and the one recording its uid).
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SA_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";

/// Whether a Secret is a legacy token Secret the token controller has yet to fill.
pub fn needs_token(secret: &Value) -> bool {
    secret.get("type").and_then(Value::as_str) == Some(TOKEN_SECRET_TYPE)
        && secret.pointer("/data/token").is_none()
}

/// The legacy token controller, for one Secret of type `kubernetes.io/service-account-token`:
/// fill `data.token` (a token that lives as long as the Secret), `ca.crt` and `namespace`,
/// and record the ServiceAccount's uid — or delete the Secret when its ServiceAccount does
/// not exist (or is another one by now), as kube's controller does.
pub async fn fill_token_secret(
    accounts: Accounts<'_>,
    tokens: &LegacyTokens,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Result<bool, ApiError> {
    use base64::engine::general_purpose::STANDARD;
    let Some(secrets) = accounts.served.lookup(Some(cluster), "", "v1", "secrets") else {
        return Ok(true);
    };
    let scope = Scope {
        cluster: Some(cluster.to_string()),
        desc: secrets,
        namespace: Some(namespace.to_string()),
    };
    let secret = match accounts.registry.get(&scope, name).await {
        Ok(s) => s.decode()?,
        Err(e) if e.is_not_found() => return Ok(true),
        Err(e) => return Err(e),
    };
    if !needs_token(&secret) {
        return Ok(true);
    }
    let sa_name = kplex_apimachinery::meta::annotation(&secret, SA_NAME_ANNOTATION).unwrap_or("");
    let sa_uid = object_uid(
        accounts,
        Some(cluster),
        namespace,
        "serviceaccounts",
        sa_name,
    )
    .await?;
    let recorded = kplex_apimachinery::meta::annotation(&secret, SA_UID_ANNOTATION);
    if sa_uid.is_empty() || recorded.is_some_and(|u| u != sa_uid) {
        let deleted = accounts
            .registry
            .delete(&scope, name, &crate::registry::DeleteOptions::default())
            .await;
        return match deleted {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        };
    }
    let sa = json!({"metadata": {"name": sa_name, "namespace": namespace, "uid": sa_uid}});
    let token = tokens.signer.sign(&legacy_claims(cluster, &sa, &secret))?;
    let data = json!({
        "token": STANDARD.encode(token),
        "ca.crt": STANDARD.encode(&tokens.ca_pem),
        "namespace": STANDARD.encode(namespace),
    });
    accounts
        .registry
        .update_with(
            &scope,
            name,
            &crate::registry::WriteOptions::default(),
            |cur, _| {
                let mut next = cur.clone();
                for (k, v) in data.as_object().into_iter().flatten() {
                    next["data"][k] = v.clone();
                }
                let mut annotations = kplex_apimachinery::meta::annotations(&next);
                annotations.insert(SA_UID_ANNOTATION.into(), json!(sa_uid));
                kplex_apimachinery::meta::set_annotations(&mut next, annotations);
                Ok(next)
            },
        )
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn sa() -> Value {
        json!({"metadata": {"name": "robot", "namespace": "default", "uid": "u-1"}})
    }

    #[test]
    fn round_trip_and_expiry() {
        let s = signer();
        let t0 = 1_800_000_000;
        let token = s
            .sign(&claims("abc", &sa(), &[ISSUER.into()], t0, 600))
            .unwrap();
        let c = s.verify(&token, t0 + 10, &[ISSUER]).unwrap();
        assert_eq!(c.cluster, "abc");
        assert_eq!(c.user().name, "system:serviceaccount:default:robot");
        assert_eq!(c.user().uid, "u-1");
        assert_eq!(
            c.user().groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        // Expired (past the minute of skew), and not yet valid.
        assert!(s.verify(&token, t0 + 600 + 61, &[ISSUER]).is_none());
        assert!(s.verify(&token, t0 + 600 + 59, &[ISSUER]).is_some());
        assert!(s.verify(&token, t0 - 120, &[ISSUER]).is_none());
        // Another audience.
        assert!(s.verify(&token, t0, &["vault"]).is_none());
        // Another key.
        assert!(signer().verify(&token, t0, &[ISSUER]).is_none());
        // Tampered claims.
        let parts: Vec<&str> = token.split('.').collect();
        let forged = claims("other", &sa(), &[ISSUER.into()], t0, 600);
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged.to_string()),
            parts[2]
        );
        assert!(s.verify(&forged, t0, &[ISSUER]).is_none());
        assert!(s.verify("not-a-jwt", t0, &[ISSUER]).is_none());
    }

    #[test]
    fn key_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sa.key");
        let a = Signer::load_or_create(&path).unwrap();
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.kid, b.kid);
        let token = a
            .sign(&claims("c", &sa(), &[ISSUER.into()], 1000, 600))
            .unwrap();
        assert!(b.verify(&token, 1000, &[ISSUER]).is_some());
    }
}
