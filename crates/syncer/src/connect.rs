//! One connection pool per server.
//!
//! kube's `Client::try_from(config)` gives every client a pool of its own. The agent needs a
//! client per upstream workspace it writes into (its writes go under `/clusters/<name>` of
//! its view) and one for each watch it restarts, so with a pool each, a new workspace or a
//! restart meant new TLS connections — a handshake on both ends, thousands of them when a
//! hundred agents start writing into a thousand workspaces. Clients made from one [`Pool`]
//! share its connections; only their base URL differs.

use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_timeout::TimeoutConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{Body, ConfigExt};
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

use crate::Error;

type Http =
    hyper_util::client::legacy::Client<TimeoutConnector<HttpsConnector<HttpConnector>>, Body>;

/// Connections to one server, and the credentials and settings to use them with.
#[derive(Clone)]
pub struct Pool {
    config: Config,
    /// `None` behind a proxy: kube's own stack knows proxies, so each client gets it.
    http: Option<Http>,
}

/// Idle connections are kept this long (hyper's default is 90 s): an agent writes into a
/// quiet workspace every few minutes, and a reconnect is a TLS handshake.
const IDLE: Duration = Duration::from_secs(300);

impl Pool {
    pub fn new(config: Config) -> Result<Self, Error> {
        let http = match config.proxy_url {
            Some(_) => None,
            None => Some(http(&config)?),
        };
        Ok(Self { config, http })
    }

    /// A client for the server's own URL.
    pub fn client(&self) -> Result<Client, Error> {
        self.with_config(self.config.clone())
    }

    /// A client sending its requests under `url` (a path of the same server).
    pub fn client_at(&self, url: &str) -> Result<Client, Error> {
        let mut config = self.config.clone();
        config.cluster_url = url.parse().map_err(|_| Error::Url(url.to_string()))?;
        self.with_config(config)
    }

    fn with_config(&self, config: Config) -> Result<Client, Error> {
        let Some(http) = &self.http else {
            return Ok(Client::try_from(config)?);
        };
        // kube's own stack, less its tracing: base URL, retries of 429/503/504, credentials.
        let retry = config.default_retry;
        let service = ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(retry.then(|| RetryLayer::new(RetryPolicy::server_retry())))
            .option_layer(config.auth_layer()?)
            .layer(config.extra_headers_layer()?)
            .map_err(BoxError::from)
            .service(http.clone());
        Ok(Client::new(service, config.default_namespace))
    }
}

/// The pooled HTTP client: kube's TLS settings and timeouts, HTTP/1.1 (as kube's own).
fn http(config: &Config) -> Result<Http, Error> {
    let mut connector = TimeoutConnector::new(config.rustls_https_connector()?);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .build(connector),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A plain HTTP/1.1 server answering every GET with a version document; it records the
    /// connections it accepted and the paths asked for.
    async fn server() -> (String, Arc<Mutex<(usize, Vec<String>)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let seen: Arc<Mutex<(usize, Vec<String>)>> = Arc::default();
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                log.lock().expect("log").0 += 1;
                let log = log.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            buf.drain(..end + 4);
                            let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                            log.lock().expect("log").1.push(path);
                            let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
                            let reply = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if socket.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn clients_of_one_pool_share_its_connections_and_keep_their_own_urls() {
        let (url, seen) = server().await;
        let pool = Pool::new(Config::new(url.parse().expect("a URL"))).expect("a pool");
        for cluster in ["root:a", "root:b", "root:a"] {
            let client = pool
                .client_at(&format!("{url}/services/x/clusters/{cluster}"))
                .expect("a client");
            client.apiserver_version().await.expect("the version");
        }
        pool.client()
            .expect("a client")
            .apiserver_version()
            .await
            .expect("the version");
        let (connections, paths) = seen.lock().expect("log").clone();
        assert_eq!(
            paths,
            [
                "/services/x/clusters/root:a/version",
                "/services/x/clusters/root:b/version",
                "/services/x/clusters/root:a/version",
                "/version"
            ]
        );
        assert_eq!(connections, 1, "one connection, reused by every client");
        assert!(matches!(pool.client_at("not a url"), Err(Error::Url(_))));
    }
}
