//! Tracing to an OpenTelemetry collector, configured as kube-apiserver's
//! `--tracing-config-file` (a `TracingConfiguration`: `endpoint`,
//! `samplingRatePerMillion`).
//!
//! kplex's spans are `tracing` spans (one per request, per admission webhook call, per
//! reconcile). [`OtlpLayer`] gives each sampled span a W3C trace and span id — continuing
//! the trace of a request's `traceparent` header, as kube-apiserver does — and exports the
//! finished spans in OTLP's JSON encoding over HTTP (`POST <endpoint>/v1/traces`) from a
//! thread of its own, so a slow or absent collector never holds a request up: spans beyond
//! a bounded queue are dropped and counted. [`current_traceparent`] is what outgoing calls
//! (webhooks) send on.
//!
//! kube-apiserver exports over OTLP/gRPC (`localhost:4317` by default); collectors accept
//! OTLP/HTTP beside it (`4318`), which needs no gRPC stack here.

mod config;
mod context;
mod export;
mod layer;

pub use config::{ConfigError, TracingConfig};
pub use context::{TraceParent, current_traceparent};
pub use layer::OtlpLayer;
