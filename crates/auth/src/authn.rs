//! Authentication as kube-apiserver does it: client certificates (CN = user, O = groups)
//! verified against the client CA, bearer tokens (the admin token and `--token-auth-file`),
//! impersonation headers, and the `authentication.k8s.io/v1` reviews (`SelfSubjectReview`,
//! `TokenReview`), which are answered here and never stored.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, header};
use kplex_apimachinery::ApiError;
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use serde_json::{Value, json};

use kplex_apimachinery::UserInfo;
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};

use kplex_apimachinery::user::{ANONYMOUS, UNAUTHENTICATED};
pub use kplex_apimachinery::user::{AUTHENTICATED, MASTERS};
pub const ADMIN: &str = "kplex-admin";
const GROUP: &str = "authentication.k8s.io";

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("client CA file {path}: {reason}")]
    ClientCa { path: PathBuf, reason: String },
    #[error("token file {path}, line {line}: {reason}")]
    TokenFile {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What a TLS connection tells about its client; shared by every request on it.
#[derive(Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    /// The chain the client presented (leaf first), not yet verified against the client CA.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The chain is verified once per connection, on its first request.
    cert_user: OnceLock<Result<Option<UserInfo>, String>>,
}

impl ConnInfo {
    pub fn new(remote: SocketAddr, peer_certificates: Vec<CertificateDer<'static>>) -> Self {
        Self {
            remote,
            peer_certificates,
            cert_user: OnceLock::new(),
        }
    }
}

/// The authenticators of one server, in kube-apiserver's order: x509, then bearer tokens.
pub struct Authenticator {
    admin_token: String,
    tokens: HashMap<String, UserInfo>,
    /// Verifies client chains against the client CA (`None`: no client CA configured).
    chains: Option<Arc<dyn ClientCertVerifier>>,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
    /// Signs and verifies service-account tokens (`None`: none are issued or accepted).
    service_accounts: Option<Arc<crate::serviceaccount::Signer>>,
    /// OpenID Connect ID tokens of one issuer (`--oidc-*`).
    oidc: Option<Arc<crate::oidc::Oidc>>,
}

impl Authenticator {
    /// `client_ca` is a PEM bundle file; `token_file` kube-apiserver's static token CSV.
    pub fn new(
        admin_token: String,
        client_ca: Option<&Path>,
        token_file: Option<&Path>,
    ) -> Result<Self, AuthnError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let (chains, hints) = match client_ca {
            Some(path) => {
                let ca_error = |reason: String| AuthnError::ClientCa {
                    path: path.to_path_buf(),
                    reason,
                };
                let pem = read(path)?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
                    let cert = cert.map_err(|e| ca_error(e.to_string()))?;
                    roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(ca_error("no certificates".into()));
                }
                let hints = roots.subjects();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| ca_error(e.to_string()))?;
                (Some(verifier), hints)
            }
            None => (None, Vec::new()),
        };
        let tokens = match token_file {
            Some(path) => parse_token_file(path, &read(path)?)?,
            None => HashMap::new(),
        };
        Ok(Self {
            admin_token,
            tokens,
            chains,
            hints,
            algorithms,
            service_accounts: None,
            oidc: None,
        })
    }

    /// Issues and accepts service-account tokens signed with `signer`.
    pub fn with_service_accounts(mut self, signer: crate::serviceaccount::Signer) -> Self {
        self.service_accounts = Some(Arc::new(signer));
        self
    }

    /// Accepts ID tokens of an OpenID Connect issuer.
    pub fn with_oidc(mut self, oidc: Arc<crate::oidc::Oidc>) -> Self {
        self.oidc = Some(oidc);
        self
    }

    /// The signer of service-account tokens, if they are issued.
    pub fn service_account_signer(&self) -> Option<Arc<crate::serviceaccount::Signer>> {
        self.service_accounts.clone()
    }

    /// The TLS side: ask for a client certificate without requiring one, and check only
    /// that the client holds its key. The chain is judged per request by [`Self::certificate`],
    /// so a certificate from an unknown CA gets 401 as from kube-apiserver, not a failed
    /// handshake.
    pub fn tls_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(RequestClientCert {
            hints: self.hints.clone(),
            algorithms: self.algorithms,
        })
    }

    /// Who sent a request to logical cluster `cluster`: its client certificate, else its
    /// bearer token; 401 if neither authenticates (anonymous requests are refused).
    /// Service-account tokens authenticate only requests to their own logical cluster.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        conn: &ConnInfo,
        cluster: Option<&str>,
    ) -> Result<UserInfo, ApiError> {
        let from_cert = conn
            .cert_user
            .get_or_init(|| self.certificate(&conn.peer_certificates));
        if let Ok(Some(user)) = from_cert {
            return Ok(user.clone());
        }
        if let Some(token) = bearer_token(headers)
            && let Some(user) = self.token(token, cluster)
        {
            return Ok(user);
        }
        Err(ApiError::unauthorized("Unauthorized"))
    }

    /// The user a bearer token stands for, on a request to logical cluster `cluster`.
    pub fn token(&self, token: &str, cluster: Option<&str>) -> Option<UserInfo> {
        if !self.admin_token.is_empty()
            && constant_time_eq(token.as_bytes(), self.admin_token.as_bytes())
        {
            return Some(admin());
        }
        if let Some(user) = self.tokens.get(token) {
            return Some(user.clone());
        }
        if let Some(user) = self
            .oidc
            .as_ref()
            .and_then(|o| o.authenticate(token, crate::serviceaccount::now()))
        {
            return Some(authenticated(user));
        }
        self.service_account(token, cluster, &[crate::serviceaccount::ISSUER])
            .map(|c| c.user())
    }

    /// The claims of a valid service-account token bound to `cluster`, for one of
    /// `audiences`.
    // That the ServiceAccount still exists is checked by the callers, which can reach the
    // registry (`serviceaccount::check_still_exists`).
    fn service_account(
        &self,
        token: &str,
        cluster: Option<&str>,
        audiences: &[&str],
    ) -> Option<crate::serviceaccount::Claims> {
        let signer = self.service_accounts.as_ref()?;
        let cluster = cluster?;
        let claims = signer.verify(token, crate::serviceaccount::now(), audiences)?;
        if claims.cluster != cluster {
            tracing::debug!(bound = %claims.cluster, cluster, "service account token of another logical cluster");
            return None;
        }
        Some(claims)
    }

    /// The user of a verified client chain: CN is the name, O the groups. `Ok(None)` when
    /// there is no certificate or no CN (kube-apiserver then tries other authenticators).
    fn certificate(&self, chain: &[CertificateDer<'static>]) -> Result<Option<UserInfo>, String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        let Some(verifier) = &self.chains else {
            return Ok(None);
        };
        if let Err(e) = verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            tracing::debug!(error = %e, "client certificate rejected");
            return Err(format!("verifying certificate: {e}"));
        }
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("parsing certificate: {e}"))?;
        let subject = cert.subject();
        // Go's pkix.Name keeps the last CN when there are several.
        let Some(name) = subject
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .last()
            .filter(|n| !n.is_empty())
        else {
            return Ok(None);
        };
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(String::from)
            .collect();
        Ok(Some(authenticated(UserInfo {
            name: name.to_string(),
            groups,
            ..UserInfo::default()
        })))
    }

    /// `authentication.k8s.io/v1` reviews: answered here, never stored. `None` for every
    /// other resource.
    async fn answer_review(
        &self,
        accounts: crate::serviceaccount::Accounts<'_>,
        cluster: Option<&str>,
        kind: &str,
        user: &UserInfo,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let input = crate::codec::decode_typed(content_type, body, (GROUP, "v1", kind))?;
        if input
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k != kind)
        {
            return Err(ApiError::bad_request(format!(
                "the body of the request is not a {kind}"
            )));
        }
        let mut metadata = input.get("metadata").cloned().unwrap_or_else(|| json!({}));
        metadata["creationTimestamp"] = Value::Null;
        let mut out =
            json!({"kind": kind, "apiVersion": format!("{GROUP}/v1"), "metadata": metadata});
        if kind == "SelfSubjectReview" {
            out["status"] = json!({"userInfo": user_info(user)});
        } else {
            let spec = input.get("spec").cloned().unwrap_or_else(|| json!({}));
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let requested: Vec<&str> = spec
                .get("audiences")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let status = if let Some(u) = self.token(token, None) {
                let mut status = json!({"authenticated": true, "user": user_info(&u)});
                if !requested.is_empty() {
                    status["audiences"] = json!(requested);
                }
                status
            } else {
                // Service-account tokens of this logical cluster, for the requested audiences
                // (default: the API server's).
                let audiences = if requested.is_empty() {
                    vec![crate::serviceaccount::ISSUER]
                } else {
                    requested.clone()
                };
                let claims = self.service_account(token, cluster, &audiences);
                let live = match &claims {
                    Some(c) => {
                        crate::serviceaccount::check_still_exists(accounts, cluster, &c.user())
                            .await
                            .is_ok()
                    }
                    None => false,
                };
                match claims.filter(|_| live) {
                    Some(c) => json!({
                        "authenticated": true,
                        "user": user_info(&c.user()),
                        "audiences": c.audiences,
                    }),
                    None => json!({"user": {}}),
                }
            };
            out["spec"] = spec;
            out["status"] = status;
        }
        Ok(out)
    }
}

/// TokenReview and SelfSubjectReview (`authentication.k8s.io/v1`, create only): answered by
/// the authenticators, never stored.
pub struct AuthnReviews {
    pub authn: Arc<Authenticator>,
    pub registry: crate::registry::Registry,
    pub served: Arc<crate::served::Served>,
}

#[async_trait::async_trait]
impl VirtualResource for AuthnReviews {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group == GROUP
            && req.namespace.is_none()
            && matches!(
                req.desc.plural.as_str(),
                "selfsubjectreviews" | "tokenreviews"
            )
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        let desc = req.desc;
        if req.verb != "create" || req.subresource.is_some() || req.name.is_some() {
            return Err(ApiError::method_not_supported(
                GROUP,
                &desc.plural,
                req.verb,
            ));
        }
        let accounts = crate::serviceaccount::Accounts {
            registry: &self.registry,
            served: &self.served,
        };
        let object = self
            .authn
            .answer_review(
                accounts,
                req.cluster,
                &desc.kind,
                req.user,
                req.content_type,
                req.body,
            )
            .await?;
        Ok(Answer { code: 201, object })
    }
}

/// The built-in admin.
pub fn admin() -> UserInfo {
    UserInfo {
        name: ADMIN.into(),
        groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        ..UserInfo::default()
    }
}

/// Every authenticated user is in `system:authenticated`.
fn authenticated(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED) {
        user.groups.push(AUTHENTICATED.into());
    }
    user
}

/// A user as `userInfo` (reviews, AdmissionReview): empty fields omitted, as Go does.
pub fn user_info(user: &UserInfo) -> Value {
    let mut info = json!({"username": user.name});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.groups.is_empty() {
        info["groups"] = json!(user.groups);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// Whether `user` may impersonate anyone without asking RBAC (`system:masters`); everyone
/// else needs the `impersonate` verb in the workspace (see `Api::authorize_impersonation`).
pub fn may_impersonate(user: &UserInfo) -> bool {
    user.groups.iter().any(|g| g == MASTERS)
}

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_EXTRA: &str = "impersonate-extra-";

/// An impersonation still to be authorized in the request's workspace: `by` needs the
/// `impersonate` verb on every one of `targets` (kube's impersonation filter).
#[derive(Clone, Debug)]
pub struct Impersonation {
    pub by: UserInfo,
    pub targets: Vec<crate::authz::ResourceAttrs>,
}

impl Impersonation {
    /// The RBAC requests that must all be allowed, one per impersonated attribute.
    pub fn requests(&self) -> impl Iterator<Item = crate::authz::Request> + '_ {
        self.targets.iter().map(|t| crate::authz::Request {
            user: self.by.name.clone(),
            groups: self.by.groups.clone(),
            verb: "impersonate".into(),
            resource: Some(t.clone()),
            ..Default::default()
        })
    }
}

/// What an impersonated user stands for, as kube's filter checks it: the user (or service
/// account), each group, the uid and each extra value.
fn impersonation_targets(user: &UserInfo) -> Vec<crate::authz::ResourceAttrs> {
    let target = |group: &str, resource: &str, sub: Option<&str>, ns: Option<&str>, name: &str| {
        crate::authz::ResourceAttrs {
            namespace: ns.map(String::from),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.map(String::from),
            name: Some(name.into()),
        }
    };
    let mut out = vec![match user
        .name
        .strip_prefix("system:serviceaccount:")
        .and_then(|sa| sa.split_once(':'))
    {
        Some((ns, name)) => target("", "serviceaccounts", None, Some(ns), name),
        None => target("", "users", None, None, &user.name),
    }];
    let implied = [AUTHENTICATED, "system:serviceaccounts"];
    out.extend(
        user.groups
            .iter()
            .filter(|g| !implied.contains(&g.as_str()) && !g.starts_with("system:serviceaccounts:"))
            .map(|g| target("", "groups", None, None, g)),
    );
    if !user.uid.is_empty() {
        out.push(target(GROUP, "uids", None, None, &user.uid));
    }
    for (key, values) in &user.extra {
        for v in values {
            out.push(target(GROUP, "userextras", Some(key), None, v));
        }
    }
    out
}

/// Applies the `Impersonate-*` headers: the user the request then acts as and, if it
/// impersonates, who asked (to authorize and audit); 400 for groups, uid or extra without a
/// user.
pub fn impersonate(
    user: UserInfo,
    headers: &HeaderMap,
) -> Result<(UserInfo, Option<Impersonation>), ApiError> {
    let text = |name: &str| -> Result<Vec<String>, ApiError> {
        headers
            .get_all(name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| ApiError::bad_request(format!("invalid {name} header")))
            })
            .collect()
    };
    let name = text(IMPERSONATE_USER)?.into_iter().next();
    let uid = text(IMPERSONATE_UID)?.into_iter().next();
    let groups = text(IMPERSONATE_GROUP)?;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (header_name, value) in headers {
        if let Some(key) = header_name.as_str().strip_prefix(IMPERSONATE_EXTRA) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .into_owned();
            let value = value
                .to_str()
                .map_err(|_| ApiError::bad_request(format!("invalid {header_name} header")))?;
            extra.entry(key).or_default().push(value.to_string());
        }
    }
    let Some(name) = name else {
        if uid.is_some() || !groups.is_empty() || !extra.is_empty() {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok((user, None));
    };
    tracing::debug!(by = %user.name, as_user = %name, "impersonation");
    let mut groups = groups;
    if let Some(sa) = name.strip_prefix("system:serviceaccount:")
        && let Some((namespace, _)) = sa.split_once(':')
    {
        for g in [
            "system:serviceaccounts".to_string(),
            format!("system:serviceaccounts:{namespace}"),
        ] {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    let extra_group = if name == ANONYMOUS {
        UNAUTHENTICATED
    } else {
        AUTHENTICATED
    };
    if !groups.iter().any(|g| g == extra_group) {
        groups.push(extra_group.into());
    }
    let impersonated = UserInfo {
        name,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    };
    let check = Impersonation {
        targets: impersonation_targets(&impersonated),
        by: user,
    };
    Ok((impersonated, Some(check)))
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, as in kube).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn read(path: &Path) -> Result<String, AuthnError> {
    std::fs::read_to_string(path).map_err(|source| AuthnError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// kube-apiserver's `--token-auth-file`: CSV lines `token,user,uid[,"group1,group2"]`.
fn parse_token_file(path: &Path, text: &str) -> Result<HashMap<String, UserInfo>, AuthnError> {
    let mut tokens = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let error = |reason: String| AuthnError::TokenFile {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields = csv_fields(line).map_err(error)?;
        if fields.len() < 3 {
            return Err(error(format!(
                "must have at least 3 columns (token, user name, user uid), found {}",
                fields.len()
            )));
        }
        if fields[0].is_empty() {
            tracing::warn!(path = %path.display(), line = i + 1, "empty token in token file");
            continue;
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let user = authenticated(UserInfo {
            name: fields[1].clone(),
            uid: fields[2].clone(),
            groups,
            extra: BTreeMap::new(),
        });
        if tokens.insert(fields[0].clone(), user).is_some() {
            tracing::warn!(path = %path.display(), line = i + 1, "duplicate token in token file");
        }
    }
    Ok(tokens)
}

/// One CSV record as Go's encoding/csv reads it with `TrimLeadingSpace`: commas separate,
/// double quotes enclose fields that contain commas, `""` is a quote inside them.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '"' {
                    return Err("bare \" in a non-quoted field".into());
                }
                field.push(c);
            }
        }
        fields.push(field);
        match chars.next() {
            None => return Ok(fields),
            Some(',') => {}
            Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
        }
    }
}

/// Requests a client certificate without requiring one; checks possession of its key (the
/// handshake signature) and leaves the chain to [`Authenticator::authenticate`].
#[derive(Debug)]
struct RequestClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records() {
        assert_eq!(
            csv_fields(r#"tok,alice,1001,"dev,ops""#).unwrap(),
            ["tok", "alice", "1001", "dev,ops"]
        );
        assert_eq!(csv_fields("a, b,c").unwrap(), ["a", "b", "c"]);
        assert_eq!(csv_fields("a,b,").unwrap(), ["a", "b", ""]);
        assert_eq!(csv_fields(r#"a,"x""y",c"#).unwrap(), ["a", "x\"y", "c"]);
        assert!(csv_fields(r#"a,"b"#).is_err());
    }

    #[test]
    fn token_file() {
        let text = "t1,alice,1,\"dev,ops\"\n\nt2,bob,2\n";
        let tokens = parse_token_file(Path::new("f"), text).unwrap();
        assert_eq!(tokens["t1"].groups, ["dev", "ops", AUTHENTICATED]);
        assert_eq!(tokens["t2"].uid, "2");
        assert!(parse_token_file(Path::new("f"), "t1,alice\n").is_err());
    }

    #[test]
    fn impersonation() {
        let mut h = HeaderMap::new();
        h.insert("impersonate-user", "alice".parse().unwrap());
        h.append("impersonate-group", "dev".parse().unwrap());
        h.insert("impersonate-extra-scopes%2Fa", "x".parse().unwrap());
        let (u, check) = impersonate(admin(), &h).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, ["dev", AUTHENTICATED]);
        assert_eq!(u.extra["scopes/a"], ["x"]);
        assert!(check.is_some_and(|c| may_impersonate(&c.by)));
        let bob = UserInfo {
            name: "bob".into(),
            ..UserInfo::default()
        };
        let (_, check) = impersonate(bob, &h).unwrap();
        let wanted: Vec<String> = check
            .unwrap()
            .requests()
            .map(|r| {
                let t = r.resource.unwrap();
                format!(
                    "{}/{}/{}",
                    t.resource,
                    t.subresource.unwrap_or_default(),
                    t.name.unwrap()
                )
            })
            .collect();
        assert_eq!(
            wanted,
            ["users//alice", "groups//dev", "userextras/scopes/a/x"]
        );
        let mut h = HeaderMap::new();
        h.insert("impersonate-group", "dev".parse().unwrap());
        assert_eq!(impersonate(admin(), &h).unwrap_err().code, 400);
    }
}
