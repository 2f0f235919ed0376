//! kube-apiserver's `TracingConfiguration` file (`apiserver.config.k8s.io`, versions
//! `v1`, `v1beta1`, `v1alpha1`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// kube's default collector address; kplex speaks OTLP/HTTP to it (see the crate docs).
const DEFAULT_ENDPOINT: &str = "localhost:4317";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading tracing configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tracing configuration {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    api_version: Option<String>,
    kind: Option<String>,
    endpoint: Option<String>,
    sampling_rate_per_million: Option<i64>,
}

/// Where spans go and how many traces are sampled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracingConfig {
    /// `host:port`, or a URL with `http://`.
    pub endpoint: String,
    /// Traces sampled per million that start here (kube's default: none); a request that
    /// arrives with a sampled `traceparent` is always traced.
    pub sampling_rate_per_million: u32,
}

impl TracingConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|msg| ConfigError::Invalid {
            path: path.to_path_buf(),
            msg,
        })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
        match file.kind.as_deref() {
            None | Some("TracingConfiguration") => {}
            Some(other) => return Err(format!("kind {other:?} is not TracingConfiguration")),
        }
        match file.api_version.as_deref() {
            None
            | Some(
                "apiserver.config.k8s.io/v1"
                | "apiserver.config.k8s.io/v1beta1"
                | "apiserver.config.k8s.io/v1alpha1",
            ) => {}
            Some(other) => {
                return Err(format!(
                    "apiVersion {other:?} is not apiserver.config.k8s.io"
                ));
            }
        }
        let rate = file.sampling_rate_per_million.unwrap_or(0);
        if !(0..=1_000_000).contains(&rate) {
            // kube's validation message.
            return Err(format!(
                "samplingRatePerMillion: Invalid value: {rate}: sampling rate must be between 0 and 1,000,000"
            ));
        }
        let endpoint = file
            .endpoint
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        if endpoint.starts_with("https://") {
            return Err(format!(
                "endpoint {endpoint:?}: kplex exports over plain HTTP to a local collector; give host:port or http://…"
            ));
        }
        Ok(Self {
            endpoint,
            sampling_rate_per_million: u32::try_from(rate).unwrap_or(0),
        })
    }

    /// (host, port, path prefix) of the collector.
    pub(crate) fn address(&self) -> (String, u16, String) {
        let rest = self
            .endpoint
            .strip_prefix("http://")
            .unwrap_or(&self.endpoint);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/').to_string()),
            None => (rest, String::new()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().unwrap_or(4318)),
            None => (authority, 4318),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (host.to_string(), port, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubes_file_and_refuses_bad_rates() {
        let c = TracingConfig::parse(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: TracingConfiguration\nendpoint: 127.0.0.1:4318\nsamplingRatePerMillion: 1000000\n",
        )
        .unwrap();
        assert_eq!(c.sampling_rate_per_million, 1_000_000);
        assert_eq!(c.address(), ("127.0.0.1".into(), 4318, String::new()));
        let d = TracingConfig::parse("kind: TracingConfiguration\n").unwrap();
        assert_eq!(
            (d.endpoint.as_str(), d.sampling_rate_per_million),
            ("localhost:4317", 0)
        );
        assert!(TracingConfig::parse("samplingRatePerMillion: 2000000\n").is_err());
        assert!(TracingConfig::parse("kind: Policy\n").is_err());
        let u = TracingConfig::parse("endpoint: http://collector:4318/otlp/\n").unwrap();
        assert_eq!(u.address(), ("collector".into(), 4318, "/otlp".into()));
    }
}
