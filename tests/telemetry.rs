//! Traces, end to end: kplex started with kube-apiserver's `--tracing-config-file` exports
//! its spans to an OTLP/HTTP receiver run by the test, continues the trace of a request's
//! W3C `traceparent`, and passes the trace on to an admission webhook.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::{Backend, HttpsServer, Kplex, eventually, json};
use serde_json::Value;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// The `traceparent` headers the webhook received.
static WEBHOOK_SAW: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn webhook(_path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> (u16, Vec<u8>) {
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok()) {
        WEBHOOK_SAW.lock().unwrap().push(tp.to_string());
    }
    let review: Value = serde_json::from_slice(body).unwrap();
    let reply = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": true}});
    (200, serde_json::to_vec(&reply).unwrap())
}

/// An OTLP/HTTP receiver: every POSTed body, parsed.
fn collector() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut line) = (0usize, String::new());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            while reader.read_line(&mut line).unwrap() > 2 {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert!(
                request_line.starts_with("POST /v1/traces "),
                "{request_line}"
            );
            store
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
            );
        }
    });
    (port, received)
}

fn spans(received: &Mutex<Vec<Value>>) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|doc| {
            doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)?["value"]["stringValue"]
        .as_str()
}

#[test]
fn spans_continue_the_callers_trace_and_reach_the_webhook() {
    let (port, received) = collector();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!("apiVersion: apiserver.config.k8s.io/v1\nkind: TracingConfiguration\nendpoint: 127.0.0.1:{port}\nsamplingRatePerMillion: 0\n"),
    )
    .unwrap();
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &["--tracing-config-file", config.path().to_str().unwrap()],
    );
    let hook = HttpsServer::start_with_headers(webhook);
    k.ok_stdin(&["apply", "-f", "-"], &format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: traced}}\nwebhooks:\n- name: traced.example.com\n  clientConfig: {{url: \"{}\", caBundle: \"{}\"}}\n  rules: [{{operations: [CREATE], apiGroups: [\"\"], apiVersions: [v1], resources: [configmaps]}}]\n  sideEffects: None\n  admissionReviewVersions: [v1]\n",
        hook.url("/validate"),
        common::base64(hook.ca_pem.as_bytes()),
    ));

    // A request carrying a sampled traceparent: traced although the rate is 0.
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"traced"}}"#;
    let body_file = k.write_file("cm.json", body);
    let (out, err) = k.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "-H",
        &format!("traceparent: {traceparent}"),
        "--data-binary",
        &format!("@{}", body_file.display()),
        &k.url("/clusters/root/api/v1/namespaces/default/configmaps"),
    ]);
    assert_eq!(json(&out)["metadata"]["name"], "traced", "{out} {err}");

    // The webhook was called in the same trace, with kplex's span as the parent.
    let seen = WEBHOOK_SAW.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let parts: Vec<&str> = seen[0].split('-').collect();
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", TRACE, "01"),
        "{seen:?}"
    );
    assert_ne!(parts[2], CALLER_SPAN);

    // The collector gets the request's span (a child of the caller's) and the webhook
    // call's (a child of the request's, whose id the webhook saw).
    let exported = eventually(20, "the trace exported", || {
        let mine: Vec<Value> = spans(&received)
            .into_iter()
            .filter(|s| s["traceId"] == TRACE)
            .collect();
        (mine.len() >= 2).then_some(mine)
    });
    let request = exported.iter().find(|s| s["name"] == "request").unwrap();
    assert_eq!(request["parentSpanId"], CALLER_SPAN);
    assert_eq!(request["kind"], 2);
    assert_eq!(attribute(request, "verb"), Some("create"));
    assert_eq!(attribute(request, "resource"), Some("configmaps"));
    let call = exported
        .iter()
        .find(|s| s["name"] == "admission_webhook")
        .unwrap();
    assert_eq!(call["parentSpanId"], request["spanId"]);
    assert_eq!(call["spanId"], parts[2]);
    assert!(
        call["startTimeUnixNano"].as_str().unwrap()
            >= request["startTimeUnixNano"].as_str().unwrap()
    );

    // Without a traceparent and at rate 0 nothing is traced: no other trace is exported.
    k.ok(&["get", "configmaps"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let others: Vec<Value> = spans(&received)
        .into_iter()
        .filter(|s| s["traceId"] != TRACE)
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

#[test]
fn a_bad_tracing_configuration_stops_the_start() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "kind: TracingConfiguration\nsamplingRatePerMillion: 2000000\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kplex"))
        .args([
            "start",
            "--tracing-config-file",
            config.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sampling rate must be between 0 and 1,000,000"),
        "{err}"
    );
}
