//! Calling one admission webhook: POST an `AdmissionReview` over HTTPS (HTTP/1.1), verified
//! against the configuration's `caBundle`, and read the `AdmissionReview` it answers.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

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
    // A span per call, so a trace shows each webhook's share of a request.
    let span = tracing::debug_span!("admission_webhook", url = %target.url);
    let called = tracing::Instrument::instrument(post(target, review), span);
    match tokio::time::timeout(target.timeout, called).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("failed to call webhook: Post \"{shown}\": {e}")),
        Err(_) => Err(format!(
            "failed to call webhook: Post \"{shown}\": context deadline exceeded"
        )),
    }
}

async fn post(target: &Target, review: &Value) -> Result<Value, String> {
    let sep = if target.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}timeout={}s", target.url, target.timeout.as_secs());
    let body = serde_json::to_vec(review).map_err(|e| e.to_string())?;
    // The trace goes on to the webhook (W3C trace context), as kube-apiserver's does.
    let traceparent: Vec<(&'static str, String)> = kplex_telemetry::current_traceparent()
        .map(|tp| ("traceparent", tp.to_string()))
        .into_iter()
        .collect();
    let (status, bytes) = crate::https::request(
        http::Method::POST,
        &url,
        &target.ca_pem,
        Some(body),
        &traceparent,
    )
    .await?;
    if !status.is_success() {
        return Err(format!(
            "unexpected response status {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("invalid AdmissionReview response: {e}"))
}
