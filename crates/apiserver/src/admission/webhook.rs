//! Calling one admission webhook: POST an `AdmissionReview` over HTTPS (HTTP/1.1), verified
//! against the configuration's `caBundle`, and read the `AdmissionReview` it answers.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Largest response body read from a webhook (kube-apiserver's limit for webhook replies).
const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// Where and how to reach a webhook: `clientConfig` resolved to a URL.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    /// PEM roots from `caBundle`; empty when none was given.
    pub ca_pem: Vec<u8>,
    pub timeout: Duration,
}

impl Target {
    /// `clientConfig` → target. `service` becomes `https://<name>.<namespace>.svc:<port><path>`,
    /// which only resolves where such names do (kplex has no cluster network of its own).
    pub fn from_client_config(cfg: &Value, timeout: Duration) -> Result<Self, String> {
        let url = match (cfg.get("url").and_then(Value::as_str), cfg.get("service")) {
            (Some(url), _) => url.to_string(),
            (None, Some(svc)) => {
                let s = |k: &str| svc.get(k).and_then(Value::as_str).unwrap_or("");
                let port = svc.get("port").and_then(Value::as_u64).unwrap_or(443);
                format!(
                    "https://{}.{}.svc:{port}{}",
                    s("name"),
                    s("namespace"),
                    s("path")
                )
            }
            (None, None) => return Err("clientConfig has neither url nor service".into()),
        };
        let ca_pem = match cfg.get("caBundle").and_then(Value::as_str) {
            Some(b64) if !b64.is_empty() => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("invalid caBundle: {e}"))?,
            _ => Vec::new(),
        };
        Ok(Self {
            url,
            ca_pem,
            timeout,
        })
    }

    /// The URL as kube-apiserver reports it in errors (it appends the timeout).
    fn display_url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}timeout={}s", self.url, self.timeout.as_secs())
    }
}

/// POSTs `review` to the target; the parsed reply, or why the call failed (kube's wording).
pub async fn call(target: &Target, review: &Value) -> Result<Value, String> {
    let shown = target.display_url();
    match tokio::time::timeout(target.timeout, post(target, review)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("failed to call webhook: Post \"{shown}\": {e}")),
        Err(_) => Err(format!(
            "failed to call webhook: Post \"{shown}\": context deadline exceeded"
        )),
    }
}

async fn post(target: &Target, review: &Value) -> Result<Value, String> {
    let uri: http::Uri = target
        .url
        .parse()
        .map_err(|e| format!("invalid URL {:?}: {e}", target.url))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("unsupported scheme in {:?}", target.url));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("no host in {:?}", target.url))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);

    let tcp = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| dial_error(bare_host, port, &e))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config(&target.ca_pem)?);
    let server_name = rustls::pki_types::ServerName::try_from(bare_host.to_string())
        .map_err(|e| format!("invalid server name {bare_host:?}: {e}"))?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    // The connection serves this one request; it ends when the exchange does.
    tokio::spawn(async move {
        let _ = conn.await;
    });

    let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let sep = if path.contains('?') { '&' } else { '?' };
    let req = http::Request::post(format!("{path}{sep}timeout={}s", target.timeout.as_secs()))
        .header(
            http::header::HOST,
            uri.authority().map_or(host, |a| a.as_str()),
        )
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!(
            "unexpected response status {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid AdmissionReview response: {e}"))
}

/// Go's dial error wording, which clients and tests match on.
fn dial_error(host: &str, port: u16, e: &std::io::Error) -> String {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {addr}: connect: connection refused")
        }
        _ => format!("dial tcp {addr}: {e}"),
    }
}

/// A client configuration trusting exactly the `caBundle` roots.
fn tls_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        let cert = cert.map_err(|e| format!("invalid caBundle: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("invalid caBundle: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
