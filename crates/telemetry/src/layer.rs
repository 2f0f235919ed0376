//! The `tracing` layer that gives sampled spans W3C ids and hands finished ones to the
//! exporter.

use std::fmt;
use std::time::SystemTime;

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::config::TracingConfig;
use crate::context::TraceParent;
use crate::export::{FinishedSpan, Queue};

/// The span field a request's incoming `traceparent` header is recorded in.
const TRACEPARENT_FIELD: &str = "traceparent";

/// What a span carries while open (in the registry's extensions).
pub(crate) struct SpanState {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) sampled: bool,
    parent_id: Option<[u8; 8]>,
    start: SystemTime,
    attributes: Vec<(&'static str, String)>,
}

/// Exports sampled spans to the collector a [`TracingConfig`] names.
pub struct OtlpLayer {
    sampling_rate_per_million: u32,
    queue: Queue,
}

impl OtlpLayer {
    /// Starts the exporter's thread.
    pub fn new(config: &TracingConfig) -> Self {
        Self {
            sampling_rate_per_million: config.sampling_rate_per_million,
            queue: Queue::start(config.address()),
        }
    }

    /// kube's sampler for a trace that starts here: `TraceIDRatioBased(rate / 1e6)`.
    fn sample(&self) -> bool {
        rand::random_range(0..1_000_000) < self.sampling_rate_per_million
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let parent = span.parent().and_then(|p| {
            p.extensions()
                .get::<SpanState>()
                .map(|s| (s.trace_id, s.span_id, s.sampled))
        });
        // Parent-based, as kube's sampler: a local parent's decision, else a remote
        // caller's `traceparent`, else this server's rate.
        let (trace_id, parent_id, sampled) = match (parent, fields.traceparent) {
            (Some((trace, span_id, sampled)), _) => (trace, Some(span_id), sampled),
            (None, Some(remote)) => (remote.trace_id, Some(remote.span_id), remote.sampled),
            (None, None) => (rand::random(), None, self.sample()),
        };
        span.extensions_mut().insert(SpanState {
            trace_id,
            span_id: rand::random(),
            sampled,
            parent_id,
            start: SystemTime::now(),
            attributes: fields.attributes,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(state) = extensions.get_mut::<SpanState>().filter(|s| s.sampled) {
            let mut fields = Fields::default();
            values.record(&mut fields);
            state.attributes.extend(fields.attributes);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(state) = span.extensions_mut().remove::<SpanState>() else {
            return;
        };
        if !state.sampled {
            return;
        }
        self.queue.push(FinishedSpan {
            name: span.name(),
            kind: kind_of(span.name()),
            trace_id: state.trace_id,
            span_id: state.span_id,
            parent_id: state.parent_id,
            start: state.start,
            end: SystemTime::now(),
            attributes: state.attributes,
        });
    }
}

/// OTLP's span kind: a request served (SERVER), a webhook called (CLIENT), else INTERNAL.
fn kind_of(name: &str) -> u8 {
    match name {
        "request" => 2,
        "admission_webhook" => 3,
        _ => 1,
    }
}

/// A span's fields as string attributes, and the incoming `traceparent` if one is recorded.
#[derive(Default)]
struct Fields {
    attributes: Vec<(&'static str, String)>,
    traceparent: Option<TraceParent>,
}

impl Fields {
    fn add(&mut self, field: &Field, value: String) {
        if field.name() == TRACEPARENT_FIELD {
            self.traceparent = TraceParent::parse(value.trim_matches('"'));
        } else if !value.is_empty() {
            self.attributes.push((field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.add(field, format!("{value:?}"));
    }
}
