//! OpenID Connect ID tokens as bearer tokens, as kube-apiserver's `--oidc-*` flags accept
//! them: signed (RS256 or ES256) by a key of the issuer's JWKS, `iss` = the issuer URL,
//! `aud` naming the client ID, not expired; the user is the username claim (prefixed with
//! `<issuer>#` unless it is `email`, or as `--oidc-username-prefix` says), the groups come
//! from the groups claim.
//!
//! Keys come from `--oidc-jwks-file`, or from the issuer's discovery document
//! (`/.well-known/openid-configuration` → `jwks_uri`) fetched over HTTPS trusting
//! `--oidc-ca-file`, at start and every few minutes (and soon after a token names an unknown
//! key), so that the request path never waits on the network.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use serde_json::Value;

use kplex_apimachinery::UserInfo;

/// How often keys fetched from the issuer are refreshed.
const REFRESH: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Default)]
pub struct OidcConfig {
    pub issuer_url: String,
    pub client_id: String,
    /// `sub` unless set.
    pub username_claim: String,
    /// None: kube's default (`<issuer>#` unless the claim is `email`); `-`: no prefix.
    pub username_prefix: Option<String>,
    pub groups_claim: Option<String>,
    pub groups_prefix: String,
    /// Roots for fetching the discovery document and keys.
    pub ca_file: Option<PathBuf>,
    /// Keys from a file instead of the issuer.
    pub jwks_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("--oidc-issuer-url must be an https URL, got {0:?}")]
    Issuer(String),
    #[error("--oidc-client-id is required with --oidc-issuer-url")]
    ClientId,
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JWKS {0}")]
    Jwks(String),
}

/// One verification key of the issuer.
#[derive(Clone, Debug)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed P-256 point (0x04 ‖ x ‖ y).
    Ec(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

fn b64(v: Option<&Value>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(v?.as_str()?).ok()
}

/// The usable keys of a JWKS document (`{"keys": [...]}`); others are skipped.
fn parse_jwks(doc: &Value) -> Vec<Jwk> {
    doc.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let key = match k.get("kty").and_then(Value::as_str)? {
                "RSA" => Key::Rsa {
                    n: b64(k.get("n"))?,
                    e: b64(k.get("e"))?,
                },
                "EC" if k.get("crv").and_then(Value::as_str) == Some("P-256") => {
                    let mut point = vec![4u8];
                    point.extend(b64(k.get("x"))?);
                    point.extend(b64(k.get("y"))?);
                    Key::Ec(point)
                }
                _ => return None,
            };
            Some(Jwk {
                kid: k.get("kid").and_then(Value::as_str).map(String::from),
                key,
            })
        })
        .collect()
}

pub struct Oidc {
    config: OidcConfig,
    keys: RwLock<Vec<Jwk>>,
    /// Wakes the refresher early (a token named a key we do not have).
    wake: tokio::sync::Notify,
}

impl Oidc {
    pub fn new(mut config: OidcConfig) -> Result<Arc<Self>, OidcError> {
        if !config.issuer_url.starts_with("https://") {
            return Err(OidcError::Issuer(config.issuer_url));
        }
        if config.client_id.is_empty() {
            return Err(OidcError::ClientId);
        }
        if config.username_claim.is_empty() {
            config.username_claim = "sub".into();
        }
        let keys = match &config.jwks_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| OidcError::Read {
                    path: path.clone(),
                    source,
                })?;
                let doc: Value =
                    serde_json::from_str(&text).map_err(|e| OidcError::Jwks(e.to_string()))?;
                let keys = parse_jwks(&doc);
                if keys.is_empty() {
                    return Err(OidcError::Jwks(format!(
                        "{}: no usable keys",
                        path.display()
                    )));
                }
                keys
            }
            None => Vec::new(),
        };
        Ok(Arc::new(Self {
            config,
            keys: RwLock::new(keys),
            wake: tokio::sync::Notify::new(),
        }))
    }

    /// Keeps the issuer's keys fresh (nothing to do when they come from a file).
    pub fn spawn_refresh(self: &Arc<Self>) {
        if self.config.jwks_file.is_some() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.fetch().await {
                    Ok(keys) => {
                        if let Ok(mut k) = this.keys.write() {
                            *k = keys;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(issuer = %this.config.issuer_url, error = %e, "fetching OIDC keys")
                    }
                }
                let _ = tokio::time::timeout(REFRESH, this.wake.notified()).await;
                // Not more than once a second, however many unknown keys arrive.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, String> {
        let ca = match &self.config.ca_file {
            Some(path) => std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?,
            None => Vec::new(),
        };
        let get = |url: String| {
            let ca = ca.clone();
            async move {
                let (status, body) =
                    crate::https::request(http::Method::GET, &url, &ca, None, &[]).await?;
                if !status.is_success() {
                    return Err(format!("{url}: {status}"));
                }
                serde_json::from_slice::<Value>(&body).map_err(|e| format!("{url}: {e}"))
            }
        };
        let discovery = get(format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer_url.trim_end_matches('/')
        ))
        .await?;
        if discovery.get("issuer").and_then(Value::as_str) != Some(self.config.issuer_url.as_str())
        {
            return Err("the discovery document names another issuer".into());
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        Ok(parse_jwks(&get(jwks_uri.to_string()).await?))
    }

    /// The user an ID token stands for; None if it is not a valid token of this issuer.
    pub fn authenticate(&self, token: &str, now: i64) -> Option<UserInfo> {
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        // Cheap checks first: tokens of other issuers (service accounts) end here.
        if claims.get("iss").and_then(Value::as_str) != Some(self.config.issuer_url.as_str()) {
            return None;
        }
        let head: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
        if !self.verify(&head, signed, &signature) {
            return None;
        }
        let exp = claims.get("exp").and_then(Value::as_i64)?;
        let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        if now >= exp + 60 || now + 60 < nbf {
            return None;
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.config.client_id,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&self.config.client_id)),
            _ => false,
        };
        if !audience_ok {
            return None;
        }
        self.user(&claims)
    }

    fn verify(&self, head: &Value, signed: &[u8], signature: &[u8]) -> bool {
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = head.get("kid").and_then(Value::as_str);
        let Ok(keys) = self.keys.read() else {
            return false;
        };
        let candidates: Vec<&Jwk> = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
            .collect();
        if candidates.is_empty() {
            self.wake.notify_one();
        }
        candidates.iter().any(|k| match (&k.key, alg) {
            (Key::Rsa { n, e }, "RS256") => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, signed, signature)
                .is_ok(),
            (Key::Ec(point), "ES256") => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, signature)
                .is_ok(),
            _ => false,
        })
    }

    /// The user of verified claims, named as kube-apiserver names it.
    fn user(&self, claims: &Value) -> Option<UserInfo> {
        let c = &self.config;
        let name = claims.get(&c.username_claim)?.as_str()?;
        if c.username_claim == "email"
            && claims.get("email_verified").and_then(Value::as_bool) == Some(false)
        {
            return None;
        }
        let prefix = match c.username_prefix.as_deref() {
            Some("-") => String::new(),
            Some(p) => p.to_string(),
            None if c.username_claim == "email" => String::new(),
            None => format!("{}#", c.issuer_url),
        };
        let groups = match c.groups_claim.as_deref().and_then(|g| claims.get(g)) {
            Some(Value::String(g)) => vec![g.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => vec![],
        };
        Some(UserInfo {
            name: format!("{prefix}{name}"),
            groups: groups
                .into_iter()
                .map(|g| format!("{}{g}", c.groups_prefix))
                .collect(),
            ..UserInfo::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn oidc(prefix: Option<&str>, claim: &str) -> Arc<Oidc> {
        Oidc::new(OidcConfig {
            issuer_url: "https://issuer.example".into(),
            client_id: "kplex".into(),
            username_claim: claim.into(),
            username_prefix: prefix.map(String::from),
            groups_claim: Some("groups".into()),
            groups_prefix: "oidc:".into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn users_are_named_as_kube_names_them() {
        let claims = json!({"sub": "1234", "email": "ann@example.com", "groups": ["dev", "ops"]});
        let u = oidc(None, "sub").user(&claims).unwrap();
        assert_eq!(u.name, "https://issuer.example#1234");
        assert_eq!(u.groups, vec!["oidc:dev", "oidc:ops"]);
        assert_eq!(
            oidc(None, "email").user(&claims).unwrap().name,
            "ann@example.com"
        );
        assert_eq!(oidc(Some("-"), "sub").user(&claims).unwrap().name, "1234");
        assert_eq!(
            oidc(Some("o:"), "sub").user(&claims).unwrap().name,
            "o:1234"
        );
        let unverified = json!({"email": "x@y", "email_verified": false});
        assert!(oidc(None, "email").user(&unverified).is_none());
    }

    #[test]
    fn config_is_checked() {
        assert!(
            Oidc::new(OidcConfig {
                issuer_url: "http://plain".into(),
                client_id: "c".into(),
                ..Default::default()
            })
            .is_err()
        );
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "a", "x": "AQ", "y": "Ag"}, {"kty": "oct"}]});
        assert_eq!(parse_jwks(&jwks).len(), 1);
    }
}
