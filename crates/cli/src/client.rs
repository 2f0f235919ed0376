//! A small HTTPS client for the kplex server as the kubeconfig describes it: CA (inline or
//! file), insecure-skip-tls-verify, bearer token, client certificate. HTTP/1.1 over one
//! kept-alive connection, reopened when the server closes it.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::{ApiStatus, Error, Result};
use crate::kubeconfig::Connection;

pub struct Client {
    /// `https://host:port` plus any path prefix before `/clusters/`.
    base: String,
    scheme_https: bool,
    host: String,
    port: u16,
    authority: String,
    path_prefix: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    token: Option<String>,
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

/// Verifies nothing: what `insecure-skip-tls-verify: true` asks for. Handshake signatures
/// are still checked so the session keys belong to whoever holds the presented key.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport(format!("{what}: {e}"))
}

fn tls_config(conn: &Connection) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS", e))?;
    let builder = if conn.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let Some(ca) = &conn.ca_pem else {
            return Err(Error::Transport(
                "the kubeconfig has no certificate-authority(-data) and does not skip TLS verification"
                    .into(),
            ));
        };
        for cert in rustls_pemfile::certs(&mut ca.as_slice()) {
            let cert = cert.map_err(|e| tls_err("certificate authority", e))?;
            roots
                .add(cert)
                .map_err(|e| tls_err("certificate authority", e))?;
        }
        if roots.is_empty() {
            return Err(Error::Transport(
                "certificate authority: no PEM certificate found".into(),
            ));
        }
        builder.with_root_certificates(roots)
    };
    match (&conn.client_cert_pem, &conn.client_key_pem) {
        (Some(cert), Some(key)) => {
            let certs = rustls_pemfile::certs(&mut cert.as_slice())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| tls_err("client certificate", e))?;
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key.as_slice())
                .map_err(|e| tls_err("client key", e))?
                .ok_or_else(|| Error::Transport("client key: no PEM private key found".into()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_err("client certificate", e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

impl Client {
    /// A client for the server of `conn`, addressing logical clusters under the part of the
    /// server URL before `/clusters/` (`base`).
    pub fn new(conn: &Connection, base: &str) -> Result<Self> {
        let uri: http::Uri = base
            .parse()
            .map_err(|e| Error::msg(format!("invalid server URL {base:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(Error::msg(format!("invalid server URL {base:?}"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::msg(format!("invalid server URL {base:?}")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = if https {
            let mut config = tls_config(conn)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = conn.tls_server_name.clone().unwrap_or_else(|| host.clone());
            let name = ServerName::try_from(name)
                .map_err(|e| Error::msg(format!("invalid server name: {e}")))?;
            Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            scheme_https: https,
            authority: uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_else(|| host.clone()),
            host,
            port,
            path_prefix: uri.path().trim_end_matches('/').to_string(),
            tls,
            token: conn.token.clone(),
            sender: Mutex::new(None),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Error::Transport(format!("dial {}: {e}", self.authority)))?;
        let _ = tcp.set_nodelay(true);
        let handshake = |e: hyper::Error| Error::Transport(format!("HTTP handshake: {e}"));
        let sender = match &self.tls {
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| {
                    Error::Transport(format!("TLS handshake with {}: {e}", self.authority))
                })?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(handshake)?;
                tokio::spawn(conn);
                sender
            }
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(handshake)?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(sender)
    }

    fn request(&self, method: &Method, path: &str, body: &Bytes) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.path_prefix))
            .header(http::header::HOST, &self.authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "kubectl-ws/kplex");
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(t) = &self.token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req.body(Full::new(body.clone()))
            .map_err(|e| Error::Transport(e.to_string()))
    }

    /// Sends one request (path relative to the server base) and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes)> {
        let body = match body {
            Some(v) => {
                Bytes::from(serde_json::to_vec(v).map_err(|e| Error::Transport(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let mut guard = self.sender.lock().await;
        // A kept-alive connection may have been closed by the server since the last request:
        // then the request is sent once more on a fresh connection.
        let reused = guard.take();
        let fresh = reused.is_none();
        let mut sender = match reused {
            Some(mut s) => match s.ready().await {
                Ok(()) => s,
                Err(_) => self.connect().await?,
            },
            None => self.connect().await?,
        };
        let resp = match sender
            .send_request(self.request(&method, path, &body)?)
            .await
        {
            Ok(r) => r,
            Err(e) if fresh => return Err(Error::Transport(format!("{}: {e}", self.authority))),
            Err(_) => {
                sender = self.connect().await?;
                sender
                    .send_request(self.request(&method, path, &body)?)
                    .await
                    .map_err(|e| Error::Transport(format!("{}: {e}", self.authority)))?
            }
        };
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("{}: {e}", self.authority)))?
            .to_bytes();
        *guard = Some(sender);
        Ok((status, bytes))
    }

    /// A JSON request whose non-2xx answers become `Error::Status`.
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
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

    pub fn uses_tls(&self) -> bool {
        self.scheme_https
    }
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

    /// A TLS server that answers every request with what it saw: method, path, the
    /// Authorization header, whether a client certificate came, and the body.
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
                            let text = match answer {
                            Some(a) => a.to_string(),
                            None => serde_json::json!({
                                "method": parts.method.as_str(),
                                "path": parts.uri.path(),
                                "auth": parts.headers.get("authorization").and_then(|v| v.to_str().ok()),
                                "contentType": parts.headers.get("content-type").and_then(|v| v.to_str().ok()),
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

    fn base(port: u16) -> String {
        format!("https://127.0.0.1:{port}")
    }

    #[tokio::test]
    async fn token_and_ca() {
        let pki = pki();
        let port = echo_server(&pki, 200, None).await;
        let conn = Connection {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            token: Some("t0k".into()),
            ..Default::default()
        };
        let c = Client::new(&conn, &base(port)).unwrap();
        let v = c.get("/clusters/root/apis").await.unwrap();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/clusters/root/apis");
        assert_eq!(v["auth"], "Bearer t0k");
        assert_eq!(v["clientCert"], false);
        // The kept-alive connection serves the next request, a POST with a JSON body.
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
        let port = echo_server(&pki, 200, None).await;
        let conn = Connection {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            client_cert_pem: Some(pki.client_cert_pem.clone().into_bytes()),
            client_key_pem: Some(pki.client_key_pem.clone().into_bytes()),
            ..Default::default()
        };
        let v = Client::new(&conn, &base(port))
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
        let port = echo_server(&pki, 200, None).await;
        // Another CA: the handshake fails.
        let other = pki_other_ca();
        let conn = Connection {
            ca_pem: Some(other.into_bytes()),
            ..Default::default()
        };
        let err = Client::new(&conn, &base(port))
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS handshake"), "{err}");
        // insecure-skip-tls-verify: no CA needed.
        let conn = Connection {
            insecure: true,
            ..Default::default()
        };
        let v = Client::new(&conn, &base(port))
            .unwrap()
            .get("/x")
            .await
            .unwrap();
        assert_eq!(v["path"], "/x");
        // Neither: refused before dialing.
        assert!(Client::new(&Connection::default(), &base(port)).is_err());
    }

    fn pki_other_ca() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    #[tokio::test]
    async fn status_errors() {
        let pki = pki();
        let conn = Connection {
            ca_pem: Some(pki.ca_pem.clone().into_bytes()),
            ..Default::default()
        };
        let port = echo_server(
            &pki,
            409,
            Some(
                r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"workspaces.tenancy.kcp.io \"a\" already exists","reason":"AlreadyExists","code":409}"#,
            ),
        )
        .await;
        let err = Client::new(&conn, &base(port))
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.is_already_exists());
        assert_eq!(
            err.to_string(),
            "workspaces.tenancy.kcp.io \"a\" already exists"
        );
        let port = echo_server(&pki, 403, Some("no")).await;
        let err = Client::new(&conn, &base(port))
            .unwrap()
            .get("/")
            .await
            .unwrap_err();
        assert!(err.is_forbidden() && !err.is_not_found());
        assert_eq!(err.to_string(), "forbidden");
    }
}
