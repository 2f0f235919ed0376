//! The load client — hyper-util's pooled `Client` over `hyper-rustls`, HTTP/2 only, one pool
//! per connection so that load spreads over several connections the way client-go's does (one
//! TLS connection, many concurrent streams) — and a bare hyper+rustls server that answers a
//! fixed body: the ceiling this machine allows for any server built on the same stack.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};

type Pool = legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// HTTP/2 connections to one server; requests go round-robin. Each connection is a pool of
/// its own (an HTTP/2 pool keeps one connection per host).
#[derive(Clone)]
pub struct Client {
    pools: Arc<Vec<Pool>>,
    next: Arc<AtomicUsize>,
    base: String,
    token: Option<HeaderValue>,
}

fn tls_config(ca_pem: &str) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots
            .add(cert.context("parse CA certificate")?)
            .context("add CA certificate")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Client {
    /// Opens `connections` connections now (one `GET /livez` on each), so that an unreachable
    /// server fails here and no measured request pays for a handshake.
    pub async fn connect(
        addr: SocketAddr,
        ca_pem: &str,
        token: Option<String>,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let tls = tls_config(ca_pem)?;
        let mut pools = Vec::new();
        for _ in 0..connections.max(1) {
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_only()
                .enable_http2()
                .wrap_connector(tcp);
            pools.push(
                legacy::Client::builder(TokioExecutor::new())
                    .http2_only(true)
                    .http2_max_concurrent_reset_streams(1000)
                    .http2_initial_stream_window_size(4 * 1024 * 1024)
                    .http2_initial_connection_window_size(16 * 1024 * 1024)
                    .build(https),
            );
        }
        let token = token
            .map(|t| HeaderValue::try_from(format!("Bearer {t}")))
            .transpose()
            .context("token as a header")?;
        let client = Self {
            pools: Arc::new(pools),
            next: Arc::default(),
            base: format!("https://{addr}"),
            token,
        };
        for pool in client.pools.iter() {
            let req = client.request(Method::GET, "/livez", None, Bytes::new())?;
            let resp = pool.request(req).await.context("connect")?;
            resp.into_body().collect().await?;
        }
        Ok(client)
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
            .uri(format!("{}{path}", self.base))
            .header("accept", "application/json");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            req = req.header("authorization", t.clone());
        }
        Ok(req.body(Full::new(body))?)
    }

    fn pool(&self) -> &Pool {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.pools[i % self.pools.len()]
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
        let resp = self.pool().request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// Opens a streaming request (a watch); returns its body.
    pub async fn stream(&self, path: &str) -> anyhow::Result<hyper::body::Incoming> {
        let req = self.request(Method::GET, path, None, Bytes::new())?;
        let resp = self.pool().request(req).await?;
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
