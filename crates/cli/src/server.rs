//! Requests to the kplex server through a [`kube::Client`]: kube does the kubeconfig's TLS
//! (CA data or file, insecure-skip-tls-verify, tls-server-name), credentials (token, token
//! file, client certificate) and connection pooling; this module adds the plugins' JSON
//! requests to arbitrary paths (`/clusters/<path>/apis/...`) and turns error answers into
//! client-go's messages.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;

use crate::error::{ApiStatus, Error, Result};

const USER_AGENT: &str = "kubectl-ws/kplex";

pub struct ApiClient {
    client: kube::Client,
    /// `https://host:port` plus any path prefix before `/clusters/`.
    base: String,
}

impl ApiClient {
    /// A client for the server `config` describes, sending requests (paths starting with
    /// `/clusters/`) under `base`: the part of the server URL before `/clusters/`. Call it
    /// within a Tokio runtime: kube's client spawns its request worker there.
    pub fn new(mut config: kube::Config, base: &str) -> Result<Self> {
        let uri: http::Uri = base
            .parse()
            .map_err(|e| Error::msg(format!("invalid server URL {base:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Error::msg(format!("invalid server URL {base:?}"))),
        };
        if uri.host().is_none() {
            return Err(Error::msg(format!("invalid server URL {base:?}")));
        }
        if https && !config.accept_invalid_certs {
            // Without a CA the platform's roots would be tried, which never sign a kplex
            // serving certificate: refuse before dialing, as the plugins always have.
            match &config.root_cert {
                None => {
                    return Err(Error::Transport(
                        "the kubeconfig has no certificate-authority(-data) and does not skip TLS verification"
                            .into(),
                    ));
                }
                Some(certs) if certs.is_empty() => {
                    return Err(Error::Transport(
                        "certificate authority: no PEM certificate found".into(),
                    ));
                }
                Some(_) => {}
            }
        }
        config.cluster_url = uri;
        // One request, one answer: no retries of 429/503/504, no proxy from the environment,
        // no client-side timeouts (a workspace may take its time to become ready).
        config.default_retry = false;
        config.proxy_url = None;
        config.connect_timeout = None;
        config.read_timeout = None;
        config.write_timeout = None;
        config
            .headers
            .push((header::USER_AGENT, HeaderValue::from_static(USER_AGENT)));
        let client = kube::Client::try_from(config).map_err(|e| transport(base, &e))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request (path relative to the server base) and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let body = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| Error::Transport(e.to_string()))?,
            None => Vec::new(),
        };
        let json = "application/json";
        self.send_bytes(method, path, body, json, json).await
    }

    /// Sends one request with a body of `content_type` (none when empty), asking for
    /// `accept`, and reads the whole answer.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        accept: &str,
    ) -> Result<(StatusCode, Bytes)> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, accept);
        if !body.is_empty() {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        let req = req
            .body(kube::client::Body::from(body))
            .map_err(|e| Error::Transport(e.to_string()))?;
        let resp = self
            .client
            .send(req)
            .await
            .map_err(|e| transport(&self.base, &e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| transport(&self.base, &e))?;
        Ok((status, bytes))
    }

    /// A JSON request whose non-2xx answers become `Error::Status`.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        // Not kube's `request`: its error carries the body's `code` (0 when absent) and takes
        // any JSON object for a Status; client-go's messages need the HTTP status.
        let (status, bytes) = self.send(method, path, body).await?;
        if !status.is_success() {
            return Err(status_error(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Transport(format!("decoding answer of {path}: {e}")))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.json(Method::POST, path, Some(body)).await
    }
}

/// A kube error as the chain of its causes, which name what actually failed (refused, TLS,
/// ...); kube's own wrapper (`ServiceError: ...`) only repeats its cause.
fn transport(base: &str, e: &kube::Error) -> Error {
    let mut causes: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = s.source();
    }
    if causes.is_empty() {
        causes.push(e.to_string());
    }
    Error::Transport(format!("{base}: {}", causes.join(": ")))
}

/// The server's Status, or one client-go would synthesize from the code alone.
pub fn status_error(code: StatusCode, body: &[u8]) -> Error {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let status = v.filter(|v| v.get("kind").and_then(Value::as_str) == Some("Status"));
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (reason, message) = match &status {
        Some(v) => (s(v, "reason"), s(v, "message")),
        None => (String::new(), String::new()),
    };
    let message = if message.is_empty() {
        // client-go's wording for an answer without a Status body.
        let text = String::from_utf8_lossy(body).trim().to_string();
        match code {
            StatusCode::NOT_FOUND => "the server could not find the requested resource".to_string(),
            StatusCode::FORBIDDEN => "forbidden".to_string(),
            StatusCode::UNAUTHORIZED => {
                "the server has asked for the client to provide credentials".to_string()
            }
            _ if !text.is_empty() => text,
            _ => format!("the server returned {code}"),
        }
    } else {
        message
    };
    let reason = if reason.is_empty() {
        match code {
            StatusCode::NOT_FOUND => "NotFound".into(),
            StatusCode::FORBIDDEN => "Forbidden".into(),
            StatusCode::UNAUTHORIZED => "Unauthorized".into(),
            StatusCode::CONFLICT => "Conflict".into(),
            _ => String::new(),
        }
    } else {
        reason
    };
    Error::Status(Box::new(ApiStatus {
        code: code.as_u16(),
        reason,
        message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::path::Path;
    use std::sync::Arc;

    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use crate::kubeconfig::Kubeconfig;

    struct Pki {
        ca_pem: String,
        server_cert: CertificateDer<'static>,
        server_key: PrivateKeyDer<'static>,
        client_cert_pem: String,
        client_key_pem: String,
    }

    fn pki() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let client = client_params.signed_by(&client_key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_cert: server.der().clone(),
            server_key: PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn other_ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    /// A TLS server that answers every request with what it saw: method, path, the
    /// Authorization, Content-Type and User-Agent headers, whether a client certificate came,
    /// and the body.
    async fn echo_server(pki: &Pki, status: u16, answer: Option<&'static str>) -> u16 {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let has_cert = tls.get_ref().1.peer_certificates().is_some();
                    let service = hyper::service::service_fn(
                        move |req: Request<hyper::body::Incoming>| async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let header = |name: &str| {
                                parts
                                    .headers
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            };
                            let text = match answer {
                                Some(a) => a.to_string(),
                                None => serde_json::json!({
                                    "method": parts.method.as_str(),
                                    "path": parts.uri.path(),
                                    "auth": header("authorization"),
                                    "contentType": header("content-type"),
                                    "userAgent": header("user-agent"),
                                    "clientCert": has_cert,
                                    "body": String::from_utf8_lossy(&body),
                                })
                                .to_string(),
                            };
                            let mut resp = hyper::Response::new(Full::new(Bytes::from(text)));
                            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        port
    }

    /// A client through a kubeconfig in `dir` whose cluster and user entries are `cluster`
    /// and `user` (YAML flow mappings), for the server on `port` (path prefix `/p`).
    fn client(dir: &Path, port: u16, cluster: &str, user: &str) -> Result<ApiClient> {
        let text = format!(
            "clusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:{port}/p/clusters/root', {cluster}}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\nusers:\n- name: u\n  user: {{{user}}}\n"
        );
        let conn = Kubeconfig::parse(&dir.join("config"), &text)
            .unwrap()
            .connection()?;
        ApiClient::new(conn.config, &format!("https://127.0.0.1:{port}/p"))
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[tokio::test]
    async fn token_and_ca() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.crt", &pki.ca_pem);
        let port = echo_server(&pki, 200, None).await;
        let c = client(
            dir.path(),
            port,
            "certificate-authority: ca.crt",
            "token: t0k",
        )
        .unwrap();
        let v = c.get("/clusters/root/apis").await.unwrap();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/p/clusters/root/apis");
        assert_eq!(v["auth"], "Bearer t0k");
        assert_eq!(v["userAgent"], USER_AGENT);
        assert_eq!(v["clientCert"], false);
        // The next request, a POST with a JSON body.
        let v = c
            .post("/clusters/root/x", &serde_json::json!({"a": 1}))
            .await
            .unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["contentType"], "application/json");
        assert_eq!(v["body"], "{\"a\":1}");
    }

    #[tokio::test]
    async fn client_certificate() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.crt", &pki.ca_pem);
        write(dir.path(), "client.crt", &pki.client_cert_pem);
        write(dir.path(), "client.key", &pki.client_key_pem);
        let port = echo_server(&pki, 200, None).await;
        let v = client(
            dir.path(),
            port,
            "certificate-authority: ca.crt",
            "client-certificate: client.crt, client-key: client.key",
        )
        .unwrap()
        .get("/")
        .await
        .unwrap();
        assert_eq!(v["clientCert"], true);
        assert_eq!(v["auth"], Value::Null);
    }

    #[tokio::test]
    async fn verification() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "other.crt", &other_ca_pem());
        let port = echo_server(&pki, 200, None).await;
        // Another CA: the handshake fails.
        let err = client(dir.path(), port, "certificate-authority: other.crt", "")
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Transport(_)) && err.to_string().contains("certificate"),
            "{err}"
        );
        // insecure-skip-tls-verify: no CA needed.
        let v = client(dir.path(), port, "insecure-skip-tls-verify: true", "")
            .unwrap()
            .get("/x")
            .await
            .unwrap();
        assert_eq!(v["path"], "/p/x");
        // Neither: refused before dialing.
        assert_eq!(
            client(dir.path(), port, "tls-server-name: x", "")
                .err()
                .map(|e| e.to_string()),
            Some(
                "the kubeconfig has no certificate-authority(-data) and does not skip TLS verification"
                    .to_string()
            )
        );
    }

    #[tokio::test]
    async fn status_errors() {
        let pki = pki();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ca.crt", &pki.ca_pem);
        let port = echo_server(
            &pki,
            409,
            Some(
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"workspaces.tenancy.kcp.io \"a\" already exists","reason":"AlreadyExists","code":409}"#,
            ),
        )
        .await;
        let ca = "certificate-authority: ca.crt";
        let err = client(dir.path(), port, ca, "")
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.is_already_exists());
        assert_eq!(
            err.to_string(),
            "workspaces.tenancy.kcp.io \"a\" already exists"
        );
        // Not a Status: client-go's words for the HTTP code.
        let port = echo_server(&pki, 403, Some("no")).await;
        let err = client(dir.path(), port, ca, "")
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.is_forbidden() && !err.is_not_found());
        assert_eq!(err.to_string(), "forbidden");
        // A Status without a code still has the answer's.
        let port = echo_server(&pki, 404, Some(r#"{"kind":"Status","message":"gone"}"#)).await;
        let err = client(dir.path(), port, ca, "")
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.is_not_found());
        assert_eq!(err.to_string(), "gone");
        let port = echo_server(&pki, 500, Some("boom\n")).await;
        let err = client(dir.path(), port, ca, "")
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.to_string()),
            (Some(500), "boom".to_string())
        );
    }
}
