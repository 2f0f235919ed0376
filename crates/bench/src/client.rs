//! A small HTTP/2-over-TLS load client (what client-go does: one TLS connection, many
//! concurrent streams), and a bare hyper+rustls server that answers a fixed body — the
//! ceiling this machine allows for any server built on the same stack.
//!
//! The client speaks HTTP through hyper's own connection API (`hyper::client::conn::http2`
//! over tokio-rustls); what is written here is only opening a fixed set of connections and
//! spreading requests over them. hyper-util's pooled `Client` (over hyper-rustls, one pool per
//! connection) was measured in its place and not kept: in 14 alternating `kplex-bench api`
//! runs each, it took 18.0 µs of CPU per GET against 15.8 µs for this one (medians). Client
//! and server share the machine's cores, so the client's CPU is taken from the server it
//! measures — in the quietest runs GET fell from 51–52k/s to 50k/s and the bare server from
//! 92–96k/s to 89k/s — and a heavier client pushes every "vs" ratio towards 100%.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;

/// A pool of HTTP/2 connections to one server; requests go round-robin.
#[derive(Clone)]
pub struct Client {
    senders: Arc<Vec<SendRequest<Full<Bytes>>>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    authority: String,
    token: Option<String>,
}

fn tls_config(ca_pem: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots
            .add(cert.context("parse CA certificate")?)
            .context("add CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        ca_pem: &str,
        token: Option<String>,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let connector = tokio_rustls::TlsConnector::from(tls_config(ca_pem)?);
        let mut senders = Vec::new();
        for _ in 0..connections.max(1) {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .context("connect")?;
            tcp.set_nodelay(true)?;
            let tls = connector
                .connect(ServerName::IpAddress(addr.ip().into()), tcp)
                .await
                .context("TLS handshake")?;
            let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .max_concurrent_reset_streams(1000)
                .initial_stream_window_size(4 * 1024 * 1024)
                .initial_connection_window_size(16 * 1024 * 1024)
                .handshake(TokioIo::new(tls))
                .await
                .context("HTTP/2 handshake")?;
            tokio::spawn(conn);
            senders.push(sender);
        }
        Ok(Self {
            senders: Arc::new(senders),
            next: Arc::default(),
            authority: addr.to_string(),
            token,
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
            .header("accept", "application/json");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        Ok(req.body(Full::new(body))?)
    }

    fn sender(&self) -> SendRequest<Full<Bytes>> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.senders[i % self.senders.len()].clone()
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = self.request(method, path, content_type, body)?;
        let resp = self.sender().send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Opens a streaming request (a watch); returns its body.
    pub async fn stream(&self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let req = self.request(Method::GET, path, None, Bytes::new())?;
        let resp = self.sender().send_request(req).await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "watch answered {}",
            resp.status()
        );
        Ok(resp.into_body())
    }
}

/// A hyper+rustls server that answers every request with `body`; returns its address and CA.
pub async fn bare_server(body: Bytes) -> anyhow::Result<(SocketAddr, String)> {
    let key = rcgen::KeyPair::generate()?;
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])?;
    let cert = params.self_signed(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| anyhow::anyhow!(e))?,
        )?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, body) = (acceptor.clone(), body.clone());
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        let mut resp = hyper::Response::new(Full::new(body));
                        resp.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((addr, cert.pem()))
}
