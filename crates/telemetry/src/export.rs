//! The exporter: a thread that batches finished spans and POSTs them to the collector as an
//! OTLP `ExportTraceServiceRequest` in JSON (`/v1/traces`). Spans that do not fit the
//! bounded queue are dropped (tracing never slows a request down).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::context::to_hex;

/// Finished spans waiting for the exporter.
const QUEUE: usize = 4096;
/// Spans per POST at most.
const MAX_BATCH: usize = 512;
/// How long a span waits for others to share its POST.
const BATCH_DELAY: Duration = Duration::from_millis(500);
/// Connect, write and read deadline of one POST.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct FinishedSpan {
    pub(crate) name: &'static str,
    pub(crate) kind: u8,
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) parent_id: Option<[u8; 8]>,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Vec<(&'static str, String)>,
}

pub(crate) struct Queue {
    tx: SyncSender<FinishedSpan>,
}

impl Queue {
    /// Starts the exporter thread for the collector at (host, port, path prefix).
    pub(crate) fn start(address: (String, u16, String)) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || run(&rx, &address));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "tracing: no exporter thread; spans are dropped");
        }
        Self { tx }
    }

    pub(crate) fn push(&self, span: FinishedSpan) {
        // Full or gone: the span is dropped rather than waited for.
        let _ = self.tx.try_send(span);
    }
}

fn run(rx: &Receiver<FinishedSpan>, (host, port, prefix): &(String, u16, String)) {
    let path = format!("{prefix}/v1/traces");
    let mut failures: u64 = 0;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = Instant::now() + BATCH_DELAY;
        let mut closed = false;
        while batch.len() < MAX_BATCH {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(span) => batch.push(span),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        let body = encode(&batch).to_string();
        match post(host, *port, &path, body.as_bytes()) {
            Ok(code) if (200..300).contains(&code) => {}
            outcome => {
                // The first failure and then every hundredth: a missing collector must not
                // flood the log.
                if failures.is_multiple_of(100) {
                    let why = match outcome {
                        Ok(code) => format!("HTTP {code}"),
                        Err(e) => e.to_string(),
                    };
                    tracing::warn!(collector = %format!("{host}:{port}{path}"), %why, spans = batch.len(), "tracing: export failed; spans dropped");
                }
                failures += 1;
            }
        }
        if closed {
            return;
        }
    }
}

/// One HTTP/1.1 POST on a fresh connection; the status code.
fn post(host: &str, port: u16, path: &str, body: &[u8]) -> std::io::Result<u16> {
    use std::net::ToSocketAddrs;
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{host}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    let status_line = reply.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(status_line)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status in the collector's answer"))
}

/// OTLP/JSON (`opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest`): ids in
/// hex, times as decimal strings (proto3 JSON's 64-bit integers).
fn encode(spans: &[FinishedSpan]) -> Value {
    let nanos = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default()
    };
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let attributes: Vec<Value> = s
                .attributes
                .iter()
                .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
                .collect();
            let mut span = json!({
                "traceId": to_hex(&s.trace_id),
                "spanId": to_hex(&s.span_id),
                "name": s.name,
                "kind": s.kind,
                "startTimeUnixNano": nanos(s.start),
                "endTimeUnixNano": nanos(s.end),
                "attributes": attributes,
            });
            if let (Some(parent), Some(map)) = (s.parent_id, span.as_object_mut()) {
                map.insert("parentSpanId".into(), to_hex(&parent).into());
            }
            span
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "kplex"}}]},
        "scopeSpans": [{"scope": {"name": "kplex"}, "spans": spans}],
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_otlp_json() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_000);
        let doc = encode(&[FinishedSpan {
            name: "request",
            kind: 2,
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            parent_id: Some([0x02; 8]),
            start,
            end: start + Duration::from_nanos(5),
            attributes: vec![("verb", "get".into())],
        }]);
        let span = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "ab".repeat(16));
        assert_eq!(span["parentSpanId"], "02".repeat(8));
        assert_eq!(span["startTimeUnixNano"], "1000");
        assert_eq!(span["endTimeUnixNano"], "1005");
        assert_eq!(span["attributes"][0]["value"]["stringValue"], "get");
    }
}
