//! An HTTPS/1.1 client for the server's own outgoing calls (admission webhooks, OIDC
//! discovery): one connection per request, trusting exactly the given PEM roots, with Go's
//! wording for dial errors (clients and tests match on it).

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

/// Largest response body read (kube-apiserver's limit for webhook replies).
const MAX_RESPONSE: usize = 3 * 1024 * 1024;

/// Sends one request to `url` (https only); the status and body of the answer.
pub async fn request(
    method: Method,
    url: &str,
    ca_pem: &[u8],
    body: Option<Vec<u8>>,
    headers: &[(&'static str, String)],
) -> Result<(StatusCode, Bytes), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("unsupported scheme in {url:?}"));
    }
    let host = uri.host().ok_or_else(|| format!("no host in {url:?}"))?;
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(443);

    let tcp = tokio::net::TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| dial_error(bare_host, port, &e))?;
    let connector = tokio_rustls::TlsConnector::from(tls_config(ca_pem)?);
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

    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header(
            http::header::HOST,
            uri.authority().map_or(host, |a| a.as_str()),
        )
        .header(http::header::ACCEPT, "application/json");
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, bytes))
}

/// Go's dial error wording.
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

/// A client configuration trusting exactly the `ca_pem` roots.
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
